//! Which tests matter for a target function: tests that reference it by name (found with the
//! same tree-sitter extraction the index uses), then the tests of its matching test module
//! (`test_<module>.py`, `mod tests` in its file, `<Class>Test.java`), capped; plus docstring
//! examples run as doctests. Pure over the file texts it is handed. How a test is named for its
//! runner is the runner's (`runner/<runner>.rs`).

pub use crate::selected::{SelectedTest, TestReason};
use codeforge_syntax::{Language, Symbol, SymbolKind, extract};

/// The chain of enclosing symbol names of `sym` inside its file (outermost first).
fn parents(symbols: &[Symbol], sym: &Symbol) -> Vec<String> {
    let mut chain = Vec::new();
    let mut p = sym.parent;
    while let Some(i) = p {
        let Some(s) = symbols.get(i) else { break };
        chain.push(s.name.clone());
        p = s.parent;
    }
    chain.reverse();
    chain
}

/// The runner's id for a test symbol.
pub fn test_id(lang: Language, rel_path: &str, symbols: &[Symbol], sym: &Symbol) -> String {
    crate::runner::for_language(lang).test_id(rel_path, parents(symbols, sym), &sym.name)
}

fn file_name(rel: &str) -> &str {
    rel.rsplit('/').next().unwrap_or(rel)
}

/// Whether `rel` is one of the test files `patterns` name for `module` / `class`.
pub fn is_matching_test_file(
    patterns: &[String],
    rel: &str,
    module: &str,
    class: Option<&str>,
) -> bool {
    patterns.iter().any(|p| {
        if p.contains("{class}") {
            let Some(c) = class else { return false };
            let f = p.replace("{class}", c);
            file_name(rel) == file_name(&f) && (!f.contains('/') || rel.ends_with(&f))
        } else {
            let f = p.replace("{module}", module);
            if f.contains('/') {
                rel == f || rel.ends_with(&format!("/{f}"))
            } else {
                file_name(rel) == f
            }
        }
    })
}

/// Whether `text` calls `name` (`name(` at a word boundary): catches calls the reference query
/// cannot see, such as those inside Rust macros (`assert_eq!(fib(2), 1)`).
pub fn calls_textually(text: &str, name: &str) -> bool {
    let ident = |c: char| c.is_alphanumeric() || c == '_';
    let mut from = 0;
    while let Some(i) = text[from..].find(name) {
        let at = from + i;
        let before_ok = text[..at].chars().next_back().is_none_or(|c| !ident(c));
        let after = text[at + name.len()..].trim_start();
        if before_ok && (after.starts_with('(') || after.starts_with("::<")) {
            return true;
        }
        from = at + name.len();
    }
    false
}

/// Test-like symbols of one file that a runner can collect: not defined inside another function
/// (`def test_x(): def test(): …` is a helper pytest cannot collect; naming it sinks the whole run).
/// The enclosing test, whose body holds the nested one, is selected in its place.
fn tests_in(symbols: &[Symbol]) -> impl Iterator<Item = &Symbol> {
    let nested_in_function = |s: &Symbol| {
        let mut p = s.parent;
        while let Some(i) = p {
            let Some(a) = symbols.get(i) else { break };
            if matches!(a.kind, SymbolKind::Function | SymbolKind::Method) {
                return true;
            }
            p = a.parent;
        }
        false
    };
    symbols.iter().filter(move |s| {
        s.is_test
            && matches!(s.kind, SymbolKind::Function | SymbolKind::Method)
            && !nested_in_function(s)
    })
}

/// How far callers are followed from the target, and how many caller names are kept.
const CALLER_DEPTH: usize = 2;
const MAX_CALLERS: usize = 24;

/// Names of the functions (not tests) that call `name`, directly or through each other, up to
/// [`CALLER_DEPTH`] calls away: a test that calls one of them reaches the target through it. Only
/// files that mention a name of the frontier are parsed.
fn callers_of(lang: Language, name: &str, files: &[(String, String)]) -> Vec<String> {
    let mut known: Vec<String> = vec![name.to_string()];
    let mut frontier: Vec<String> = vec![name.to_string()];
    let mut parsed: std::collections::HashMap<&str, Vec<Symbol>> = Default::default();
    for _ in 0..CALLER_DEPTH {
        let mut next = Vec::new();
        for (rel, text) in files {
            if !frontier.iter().any(|f| text.contains(f.as_str())) {
                continue;
            }
            let symbols = parsed
                .entry(rel.as_str())
                .or_insert_with(|| extract(lang, rel, text).symbols);
            for s in symbols.iter() {
                if s.is_test
                    || !s.kind.is_callable()
                    // A short, common name (`get`, `new`) would pull in half the suite.
                    || s.name.len() < 4
                    || known.contains(&s.name)
                    || next.contains(&s.name)
                {
                    continue;
                }
                // Calls inside macros (`format!`, `assert!`) are not in the tree's references.
                let body = text.get(s.start_byte..s.end_byte).unwrap_or("");
                if s.references.iter().any(|r| frontier.contains(r))
                    || frontier.iter().any(|f| calls_textually(body, f))
                {
                    next.push(s.name.clone());
                }
            }
        }
        if next.is_empty() {
            break;
        }
        known.extend(next.iter().cloned());
        frontier = next;
        if known.len() > MAX_CALLERS {
            break;
        }
    }
    known.remove(0);
    known.truncate(MAX_CALLERS);
    known
}

/// Selects up to `max` tests for the function `name` defined in `target_rel` (whose enclosing
/// type, if any, is `class`). `files` are (workspace-relative path, text) of candidate test files
/// of the same language, the target's own file included.
pub fn select_tests(
    lang: Language,
    target_rel: &str,
    name: &str,
    class: Option<&str>,
    files: &[(String, String)],
    max: usize,
) -> Vec<SelectedTest> {
    let spec = lang.spec();
    let module = file_name(target_rel)
        .rsplit_once('.')
        .map_or(file_name(target_rel), |(s, _)| s);
    let class_for_files = class
        .map(str::to_string)
        .or_else(|| spec.verify.file_is_class.then(|| module.to_string()));
    let callers = callers_of(lang, name, files);
    let mut by_ref: Vec<SelectedTest> = Vec::new();
    let mut by_caller: Vec<SelectedTest> = Vec::new();
    let mut by_module: Vec<SelectedTest> = Vec::new();
    for (rel, text) in files {
        let same_file = rel == target_rel;
        let matching = is_matching_test_file(
            &spec.verify.test_files,
            rel,
            module,
            class_for_files.as_deref(),
        );
        let names_a_caller = callers.iter().any(|c| text.contains(c.as_str()));
        if !same_file && !matching && !text.contains(name) && !names_a_caller {
            continue;
        }
        let ex = extract(lang, rel, text);
        for t in tests_in(&ex.symbols) {
            let sel = |reason| SelectedTest {
                id: test_id(lang, rel, &ex.symbols, t),
                name: t.name.clone(),
                file: rel.clone(),
                reason,
            };
            let body = text.get(t.start_byte..t.end_byte).unwrap_or("");
            if t.references.iter().any(|r| r == name) || calls_textually(body, name) {
                by_ref.push(sel(TestReason::References));
            } else if callers
                .iter()
                .any(|c| t.references.contains(c) || calls_textually(body, c))
            {
                by_caller.push(sel(TestReason::ThroughCaller));
            } else if matching {
                by_module.push(sel(TestReason::TestModule));
            } else if same_file {
                by_module.push(sel(TestReason::SameFile));
            }
        }
    }
    let mut out = by_ref;
    out.extend(by_caller);
    out.extend(by_module);
    let mut seen = std::collections::HashSet::new();
    out.retain(|t| seen.insert(t.id.clone()));
    out.truncate(max);
    out
}

/// Whether the function's documentation holds runnable examples.
pub fn has_doc_examples(lang: Language, doc: Option<&str>) -> bool {
    let marker = &lang.spec().verify.doctest_marker;
    !marker.is_empty() && doc.is_some_and(|d| d.contains(marker.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(rel: &str, text: &str) -> (String, String) {
        (rel.to_string(), text.to_string())
    }

    #[test]
    fn tests_that_reach_the_target_through_callers_come_after_direct_ones() {
        let files = vec![
            f(
                "src/lib.rs",
                "pub fn area(r: f64) -> f64 { todo!() }\npub fn volume(r: f64, h: f64) -> f64 { area(r) * h }\npub fn report(r: f64) -> String { format!(\"{}\", volume(r, 1.0)) }\n",
            ),
            f(
                "tests/shapes.rs",
                "use shapes::*;\n#[test]\nfn direct() { assert_eq!(area(1.0), 3.14); }\n#[test]\nfn via_report() { assert!(!report(2.0).is_empty()); }\n#[test]\nfn unrelated() { assert_eq!(1, 1); }\n",
            ),
        ];
        let s = select_tests(Language::Rust, "src/lib.rs", "area", None, &files, 10);
        let got: Vec<(&str, &str)> = s
            .iter()
            .map(|t| (t.name.as_str(), t.reason.as_str()))
            .collect();
        assert_eq!(
            got,
            [("direct", "references"), ("via_report", "through caller")],
            "{s:?}"
        );
        assert_eq!(
            callers_of(Language::Rust, "area", &files),
            ["volume", "report"]
        );
    }

    #[test]
    fn functions_nested_in_tests_are_never_selected_their_test_is() {
        let files = vec![
            f("pkg/fmt.py", "def wrap(text):\n    pass\n"),
            f(
                "tests/test_fmt.py",
                "from pkg.fmt import wrap\n\ndef test_prompts():\n    def test(x):\n        return wrap(x)\n    assert test('a') == 'a'\n",
            ),
        ];
        let s = select_tests(Language::Python, "pkg/fmt.py", "wrap", None, &files, 10);
        let ids: Vec<&str> = s.iter().map(|t| t.id.as_str()).collect();
        assert_eq!(ids, ["tests/test_fmt.py::test_prompts"], "{s:?}");
        assert_eq!(s[0].reason.as_str(), "references");
    }

    #[test]
    fn python_references_first_then_module() {
        let files = vec![
            f("shop/cart.py", "def total(items):\n    pass\n"),
            f(
                "tests/test_cart.py",
                "from shop.cart import total\n\ndef test_other():\n    assert 1\n\nclass TestCart:\n    def test_total(self):\n        assert total([1]) == 1\n",
            ),
            f(
                "tests/test_misc.py",
                "from shop.cart import total\n\ndef test_uses_total():\n    assert total([]) == 0\n\ndef test_unrelated():\n    pass\n",
            ),
        ];
        let s = select_tests(Language::Python, "shop/cart.py", "total", None, &files, 10);
        let ids: Vec<&str> = s.iter().map(|t| t.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "tests/test_cart.py::TestCart::test_total",
                "tests/test_misc.py::test_uses_total",
                "tests/test_cart.py::test_other"
            ]
        );
        assert_eq!(s[2].reason.as_str(), "test module");
        let s = select_tests(Language::Python, "shop/cart.py", "total", None, &files, 1);
        assert_eq!(s.len(), 1);
    }

    #[test]
    fn rust_mod_tests_in_the_same_file() {
        let src = "pub fn add(a: i32, b: i32) -> i32 {\n    todo!()\n}\n\n#[cfg(test)]\nmod tests {\n    use super::*;\n    #[test]\n    fn adds() {\n        assert_eq!(add(1, 2), 3);\n    }\n    #[test]\n    fn other() {}\n}\n";
        let files = vec![f("src/lib.rs", src)];
        let s = select_tests(Language::Rust, "src/lib.rs", "add", None, &files, 10);
        let ids: Vec<&str> = s.iter().map(|t| t.id.as_str()).collect();
        assert_eq!(ids, ["tests::adds", "tests::other"]);
    }

    #[test]
    fn java_class_test_file() {
        let util = "package com.acme;\npublic class Util {\n    /** Reverses. */\n    public static String reverse(String s) {\n        throw new UnsupportedOperationException();\n    }\n}\n";
        let test = "package com.acme;\nimport org.junit.Test;\nimport static org.junit.Assert.*;\npublic class UtilTest {\n    @Test\n    public void reverses() {\n        assertEquals(\"cba\", Util.reverse(\"abc\"));\n    }\n    @Test\n    public void other() {}\n}\n";
        let files = vec![
            f("src/main/java/com/acme/Util.java", util),
            f("src/test/java/com/acme/UtilTest.java", test),
        ];
        let s = select_tests(
            Language::Java,
            "src/main/java/com/acme/Util.java",
            "reverse",
            Some("Util"),
            &files,
            10,
        );
        let ids: Vec<&str> = s.iter().map(|t| t.id.as_str()).collect();
        assert_eq!(ids, ["UtilTest#reverses", "UtilTest#other"]);
    }

    #[test]
    fn reasons_serialize_as_they_always_did() {
        for r in [
            TestReason::References,
            TestReason::TestModule,
            TestReason::SameFile,
            TestReason::Generated,
        ] {
            assert_eq!(serde_json::to_value(r).unwrap(), r.as_str());
        }
        assert_eq!(TestReason::TestModule.as_str(), "test module");
    }

    #[test]
    fn textual_calls() {
        assert!(calls_textually("assert_eq!(fib(2), 1);", "fib"));
        assert!(calls_textually("x = m.fib (3)", "fib"));
        assert!(!calls_textually("fibonacci(3); my_fib(2); fib = 3", "fib"));
    }

    #[test]
    fn doc_examples() {
        assert!(has_doc_examples(
            Language::Python,
            Some("Adds.\n>>> add(1, 2)\n3")
        ));
        assert!(!has_doc_examples(Language::Python, Some("Adds.")));
        assert!(has_doc_examples(
            Language::Rust,
            Some("```\nassert_eq!(add(1, 2), 3);\n```")
        ));
        assert!(!has_doc_examples(Language::Java, Some("```")));
    }
}

//! Auto-import: which repository symbols (found by retrieval) an answer uses without the file
//! importing them, and the import line for each (`import_template` in the grammars data).
//! Conservative by design: a name the file already mentions, the answer defines or imports, the
//! language provides (`builtin_names`), or two symbols share is never imported. Pure.

use crate::{Language, SymbolKind};

/// A repository symbol an answer may use, with the line that imports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Importable {
    /// The name the code uses (a function, or the class/struct of a method).
    pub name: String,
    /// The import line (`from pkg.util import helper`).
    pub import: String,
}

/// The importable unit of a symbol `qualified_name` of `kind` defined in `path`, for a file
/// `rel_path` of `lang`; `None` where it needs no import (same file, Java's same package),
/// cannot be imported from there (another Rust crate) or the language has no template.
pub fn importable(
    lang: Language,
    rel_path: &str,
    path: &str,
    qualified_name: &str,
    kind: SymbolKind,
) -> Option<Importable> {
    let spec = lang.spec();
    let template = &spec.generation.import_template;
    if template.is_empty() {
        return None;
    }
    let member = spec.member_separator.as_str();
    let scope = spec.scope_separator.as_str();
    // A method is used through its class (struct, impl target).
    let unit = match kind {
        SymbolKind::Method | SymbolKind::Constructor => {
            let sep = if !member.is_empty() && qualified_name.contains(member) {
                member
            } else {
                scope
            };
            qualified_name.rsplit_once(sep)?.0
        }
        SymbolKind::Function
        | SymbolKind::Class
        | SymbolKind::Struct
        | SymbolKind::Enum
        | SymbolKind::Trait
        | SymbolKind::Interface
        | SymbolKind::Record => qualified_name,
        SymbolKind::Module => return None,
    };
    let (module, name) = unit.rsplit_once(scope)?;
    if module.is_empty() || name.is_empty() || !is_identifier(name) {
        return None;
    }
    // Same file, another Rust crate, Java's own package: `lang/<lang>.rs` says.
    if !lang.support().import_needed(rel_path, path, module) {
        return None;
    }
    Some(Importable {
        name: name.to_string(),
        import: template.replace("{module}", module).replace("{name}", name),
    })
}

/// The import lines `code` (an answer: the function, maybe helpers and imports) needs from
/// `importable`: names it uses (called, or followed by `.`, `::` or ` {`) that `file_source`
/// never mentions, the answer neither defines nor imports (`answer_imports`), and that only one
/// importable symbol carries.
pub fn missing_imports(
    lang: Language,
    file_source: &str,
    code: &str,
    answer_imports: &[String],
    importable: &[Importable],
) -> Vec<String> {
    let spec = lang.spec();
    let mut out: Vec<String> = Vec::new();
    for imp in importable {
        let name = imp.name.as_str();
        let shared = importable
            .iter()
            .any(|o| o.name == name && o.import != imp.import);
        if shared
            || spec.generation.builtin_names.iter().any(|b| b == name)
            || mentions(file_source, name)
            || answer_imports.iter().any(|l| mentions(l, name))
            || defines(code, name)
            || !uses(code, name)
            || out.contains(&imp.import)
        {
            continue;
        }
        out.push(imp.import.clone());
    }
    out
}

fn is_ident_char(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

fn is_identifier(s: &str) -> bool {
    s.chars()
        .next()
        .is_some_and(|c| c.is_alphabetic() || c == '_')
        && s.chars().all(is_ident_char)
}

/// Each whole-word occurrence of `name` in `text`: the text after it.
fn occurrences<'a>(text: &'a str, name: &'a str) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
    let mut from = 0;
    std::iter::from_fn(move || {
        while let Some(i) = text.get(from..)?.find(name) {
            let at = from + i;
            from = at + name.len();
            let before = &text[..at];
            let after = &text[at + name.len()..];
            let bounded = !before.chars().next_back().is_some_and(is_ident_char)
                && !after.chars().next().is_some_and(is_ident_char);
            if bounded {
                return Some((before, after));
            }
        }
        None
    })
}

fn mentions(text: &str, name: &str) -> bool {
    occurrences(text, name).next().is_some()
}

/// `name` used as a callee, a qualifier (`name.x`, `name::x`) or a struct literal.
fn uses(code: &str, name: &str) -> bool {
    occurrences(code, name).any(|(before, after)| {
        // `x.name(...)` is a method of something else.
        let qualified = before.ends_with('.') || before.ends_with("::");
        let a = after.trim_start();
        !qualified
            && (a.starts_with('(')
                || after.starts_with('.')
                || after.starts_with("::")
                || (a.starts_with('{') && name.starts_with(char::is_uppercase)))
    })
}

/// The answer defines or binds `name` itself (a helper, a class, a local).
fn defines(code: &str, name: &str) -> bool {
    occurrences(code, name).any(|(before, after)| {
        let b = before.trim_end();
        let word_before = b.rsplit(|c: char| !is_ident_char(c)).next().unwrap_or("");
        matches!(
            word_before,
            "def"
                | "class"
                | "fn"
                | "struct"
                | "enum"
                | "trait"
                | "interface"
                | "let"
                | "mut"
                | "for"
                | "as"
                | "import"
        ) || {
            let a = after.trim_start();
            a.starts_with('=') && !a.starts_with("==")
        }
    })
}

/// The names a file's imports bring in (`from m import a` gives `a`, `use a::{B, C}` gives `B`
/// and `C`, `import a.b.C;` gives `C`), each once, in order; module imports give nothing. A
/// statement runs on over lines while its brackets are open or its line ends with `\\`.
pub fn imported_names(lang: Language, source: &str) -> Vec<String> {
    let spec = lang.spec();
    let prefixes = &spec.generation.import_prefixes;
    let mut out: Vec<String> = Vec::new();
    let mut lines = source.lines();
    while let Some(line) = lines.next() {
        let t = line.trim_start();
        if !prefixes.iter().any(|p| t.starts_with(p.as_str())) {
            continue;
        }
        let mut stmt = t.to_string();
        let open =
            |s: &str| s.matches(['(', '{']).count() as i64 - s.matches([')', '}']).count() as i64;
        for _ in 0..200 {
            if open(&stmt) <= 0 && !stmt.trim_end().ends_with('\\') {
                break;
            }
            let Some(next) = lines.next() else { break };
            stmt.push(' ');
            stmt.push_str(next.trim());
        }
        let stmt = stmt.split("//").next().unwrap_or("");
        for name in lang.support().imported_names(stmt) {
            if !name.is_empty()
                && name != "*"
                && name != "self"
                && is_identifier(&name)
                && !out.contains(&name)
            {
                out.push(name);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn imp(lang: Language, rel: &str, path: &str, qn: &str, kind: SymbolKind) -> Option<String> {
        importable(lang, rel, path, qn, kind).map(|i| i.import)
    }

    #[test]
    fn each_language_imports_its_way() {
        assert_eq!(
            imp(
                Language::Python,
                "src/pkg/core.py",
                "src/pkg/util.py",
                "pkg.util.helper",
                SymbolKind::Function
            ),
            Some("from pkg.util import helper".into())
        );
        assert_eq!(
            imp(
                Language::Python,
                "src/pkg/core.py",
                "src/pkg/shapes.py",
                "pkg.shapes.Circle.area",
                SymbolKind::Method
            ),
            Some("from pkg.shapes import Circle".into())
        );
        assert_eq!(
            imp(
                Language::Rust,
                "src/core.rs",
                "src/util.rs",
                "crate::util::helper",
                SymbolKind::Function
            ),
            Some("use crate::util::helper;".into())
        );
        assert_eq!(
            imp(
                Language::Rust,
                "src/core.rs",
                "src/word.rs",
                "crate::word::Word::len",
                SymbolKind::Method
            ),
            Some("use crate::word::Word;".into())
        );
        assert_eq!(
            imp(
                Language::Java,
                "src/main/java/com/acme/a/A.java",
                "src/main/java/com/acme/b/Geometry.java",
                "com.acme.b.Geometry#area",
                SymbolKind::Method
            ),
            Some("import com.acme.b.Geometry;".into())
        );
    }

    #[test]
    fn no_import_where_none_is_needed_or_possible() {
        // Same file; Java's own package; another crate of a Cargo workspace.
        assert_eq!(
            imp(
                Language::Python,
                "pkg/a.py",
                "pkg/a.py",
                "pkg.a.f",
                SymbolKind::Function
            ),
            None
        );
        assert_eq!(
            imp(
                Language::Java,
                "src/main/java/com/acme/A.java",
                "src/main/java/com/acme/B.java",
                "com.acme.B#f",
                SymbolKind::Method
            ),
            None
        );
        assert_eq!(
            imp(
                Language::Rust,
                "report/src/lib.rs",
                "geometry/src/lib.rs",
                "crate::area",
                SymbolKind::Function
            ),
            None
        );
    }

    fn py(name: &str, import: &str) -> Importable {
        Importable {
            name: name.into(),
            import: import.into(),
        }
    }

    #[test]
    fn only_what_the_answer_uses_and_nothing_can_resolve() {
        let importable = [
            py("helper", "from pkg.util import helper"),
            py("Circle", "from pkg.shapes import Circle"),
            py("unused", "from pkg.util import unused"),
            py("filter", "from pkg.util import filter"),
            py("dup", "from pkg.a import dup"),
            py("dup", "from pkg.b import dup"),
            py("known", "from pkg.util import known"),
            py("local", "from pkg.util import local"),
        ];
        let file = "from pkg.util import known\n\ndef target(xs):\n    pass\n";
        let code = "def target(xs):\n    local = 2\n    c = Circle(1)\n    ys = filter(None, xs)\n    return helper(xs) + dup(1) + known(2) + local + xs.unused()\n";
        assert_eq!(
            missing_imports(Language::Python, file, code, &[], &importable),
            [
                "from pkg.util import helper",
                "from pkg.shapes import Circle"
            ]
        );
        // The answer imported it itself.
        assert_eq!(
            missing_imports(
                Language::Python,
                file,
                code,
                &["from pkg.util import helper".into()],
                &importable
            ),
            ["from pkg.shapes import Circle"]
        );
    }

    #[test]
    fn a_rust_path_or_struct_literal_is_a_use() {
        let importable = [
            Importable {
                name: "Word".into(),
                import: "use crate::word::Word;".into(),
            },
            Importable {
                name: "Vec".into(),
                import: "use crate::vec::Vec;".into(),
            },
        ];
        let code = "fn f() -> usize {\n    let w = Word::new(\"a\");\n    let v = Vec::new();\n    w.len()\n}\n";
        assert_eq!(
            missing_imports(
                Language::Rust,
                "fn f() -> usize {\n    todo!()\n}\n",
                code,
                &[],
                &importable
            ),
            ["use crate::word::Word;"]
        );
    }

    #[test]
    fn imported_names_are_the_names_imports_bring() {
        let py =
            "import os\nfrom a.b import c, d as e\nfrom .x import (\n    F,\n    g,  # note\n)\n";
        assert_eq!(imported_names(Language::Python, py), ["c", "d", "F", "g"]);
        let rs = "use std::io;\npub use crate::a::{B, c::D as E,\n    self};\nuse x::*;\nextern crate z;\n";
        assert_eq!(imported_names(Language::Rust, rs), ["io", "B", "D"]);
        let java = "package a.b;\nimport java.util.List;\nimport static a.B.max;\nimport a.b.*;\n";
        assert_eq!(imported_names(Language::Java, java), ["List", "max"]);
    }
}

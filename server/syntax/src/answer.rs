//! What a model's answer brings besides the target's body: the imports it starts with and the
//! helper functions it defines next to the target, and the edits that put them into the file
//! (imports merged into the file's import block, deduplicated; helpers at the top level before
//! the target's outermost definition, or beside the target where the language wants members).
//! Without them a right answer that uses `heapq` or its own helper fails with a `NameError`.
//! Pure: text in, edits out. What an import looks like per language is data
//! (`[generation] import_prefixes`, `helpers_beside_target`).

use tree_sitter::Node;

use crate::stub::{dedent, indent_of_line, parse};
use crate::{BodyEdit, FunctionTarget, Language, ParsedFile};

/// A helper function from the answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Helper {
    pub name: String,
    /// Its text, dedented.
    pub text: String,
}

/// Imports and helpers an answer defines around the target.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AnswerExtras {
    /// Import lines (a parenthesised Python import spans several), as written.
    pub imports: Vec<String>,
    pub helpers: Vec<Helper>,
}

impl AnswerExtras {
    pub fn is_empty(&self) -> bool {
        self.imports.is_empty() && self.helpers.is_empty()
    }
}

fn is_import(lang: Language, line: &str) -> bool {
    // `package` names where a file is, not what it brings in.
    !line.starts_with("package ")
        && lang
            .spec()
            .generation
            .import_prefixes
            .iter()
            .any(|p| line.starts_with(p.as_str()))
}

/// Top-level import statements of `code` (column 0), each with its continuation lines.
fn import_lines(lang: Language, code: &str) -> Vec<(usize, usize, String)> {
    let lines: Vec<&str> = code.split_inclusive('\n').collect();
    let mut out = Vec::new();
    let mut offset = 0;
    let mut i = 0;
    while i < lines.len() {
        let start = offset;
        let line = lines[i];
        offset += line.len();
        i += 1;
        if !is_import(lang, line) {
            continue;
        }
        let mut text = line.to_string();
        // `from x import (a,\n b)`: up to the closing parenthesis.
        if text.contains('(') && !text.contains(')') {
            while i < lines.len() {
                text.push_str(lines[i]);
                offset += lines[i].len();
                i += 1;
                if text.contains(')') {
                    break;
                }
            }
        }
        out.push((start, offset, text.trim_end().to_string()));
    }
    out
}

fn name_of<'t>(node: Node<'t>, code: &'t str) -> Option<&'t str> {
    node.child_by_field_name("name")
        .and_then(|n| n.utf8_text(code.as_bytes()).ok())
}

/// The imports and the helpers `code` (a model's code block) defines around the function
/// `name`. Helpers are the functions beside it (same parent in the answer's tree), with a
/// definition's decorators; nothing when `name` is not found (a bare body has no surroundings).
pub fn answer_extras(lang: Language, code: &str, name: &str) -> AnswerExtras {
    let Some(tree) = parse(lang, code) else {
        return AnswerExtras::default();
    };
    let g = &lang.spec().generation;
    let is_fn = |n: Node| g.function_kinds.iter().any(|k| k == n.kind());
    let mut stack = vec![tree.root_node()];
    let mut cursor = tree.walk();
    let mut target = None;
    while let Some(n) = stack.pop() {
        if is_fn(n) && name_of(n, code) == Some(name) {
            target = Some(n);
            break;
        }
        stack.extend(
            n.named_children(&mut cursor)
                .collect::<Vec<_>>()
                .into_iter()
                .rev(),
        );
    }
    let Some(target) = target else {
        return AnswerExtras::default();
    };
    // A decorated definition's wrapper is the sibling that counts.
    let target_outer = match target.parent() {
        Some(p) if !is_fn(p) && p.child_by_field_name("definition") == Some(target) => p,
        _ => target,
    };
    let mut helpers = Vec::new();
    if let Some(parent) = target_outer.parent() {
        let mut c = parent.walk();
        for sib in parent.named_children(&mut c) {
            let func = if is_fn(sib) {
                Some(sib)
            } else {
                sib.child_by_field_name("definition").filter(|d| is_fn(*d))
            };
            let Some(func) = func else { continue };
            if sib.id() == target_outer.id() || sib.has_error() {
                continue;
            }
            let Some(n) = name_of(func, code) else {
                continue;
            };
            if n == name {
                continue;
            }
            let start = code[..sib.start_byte()].rfind('\n').map_or(0, |i| i + 1);
            helpers.push(Helper {
                name: n.to_string(),
                text: dedent(&code[start..sib.end_byte()]),
            });
        }
    }
    AnswerExtras {
        imports: import_lines(lang, code)
            .into_iter()
            .map(|(_, _, t)| t)
            .collect(),
        helpers,
    }
}

impl ParsedFile {
    /// Where the file's imports end (after the last top-level import), or where a first import
    /// goes (after leading comments, attributes, a `package` line and a module docstring).
    fn import_point(&self) -> usize {
        let lang = self.language();
        let src = self.source();
        if let Some((_, end, _)) = import_lines(lang, src).last() {
            return *end;
        }
        let comment = lang.spec().generation.line_comment.as_str();
        let mut offset = 0;
        let mut in_doc: Option<&str> = None;
        for line in src.split_inclusive('\n') {
            let t = line.trim();
            if let Some(q) = in_doc {
                offset += line.len();
                if t.contains(q) {
                    in_doc = None;
                }
                continue;
            }
            let doc_quote = ["\"\"\"", "'''"].into_iter().find(|q| t.starts_with(q));
            if let Some(q) = doc_quote {
                offset += line.len();
                if !(t.len() >= 6 && t[3..].contains(q)) {
                    in_doc = Some(q);
                }
                continue;
            }
            // An item's own doc comment belongs to the item: imports go above it.
            let item_doc = t.starts_with("///") || t.starts_with("/**");
            let leading = !item_doc
                && (t.is_empty()
                    || t.starts_with(comment)
                    || t.starts_with("/*")
                    || t.starts_with('*')
                    || t.starts_with("#!")
                    || t.starts_with("package "));
            if !leading {
                break;
            }
            offset += line.len();
        }
        offset
    }

    /// The edits that bring `extras` into the file with `target`'s new body: imports the file
    /// does not already have, and helpers it does not already define. Each edit inserts
    /// (`start == end`); none overlaps the target's body.
    pub fn extra_edits(&self, target: &FunctionTarget, extras: &AnswerExtras) -> Vec<BodyEdit> {
        let lang = self.language();
        let src = self.source();
        let mut edits = Vec::new();
        let have: Vec<String> = import_lines(lang, src)
            .into_iter()
            .map(|(_, _, t)| t)
            .collect();
        let mut new_imports: Vec<&String> = Vec::new();
        for i in &extras.imports {
            if !have.contains(i) && !new_imports.contains(&i) {
                new_imports.push(i);
            }
        }
        if !new_imports.is_empty() {
            let at = self.import_point().min(target.doc_start_byte);
            let mut text: String = new_imports.iter().map(|i| format!("{i}\n")).collect();
            if at > 0 && !src[..at].ends_with('\n') {
                text.insert(0, '\n');
            }
            // A first import block is set apart from what follows.
            if import_lines(lang, src).is_empty() {
                text.push('\n');
            }
            edits.push(BodyEdit {
                start: at,
                end: at,
                new_text: text,
            });
        }
        let defined: Vec<&str> = self
            .extracted()
            .symbols
            .iter()
            .map(|s| s.name.as_str())
            .collect();
        let helpers: Vec<&Helper> = extras
            .helpers
            .iter()
            .filter(|h| !defined.contains(&h.name.as_str()))
            .collect();
        if !helpers.is_empty() {
            let g = &lang.spec().generation;
            let (at, indent) = if g.helpers_beside_target {
                (target.doc_start_byte, target.def_indent.clone())
            } else {
                // Before the outermost definition holding the target, at the top level.
                let mut outermost = &target.symbol;
                while let Some(p) = outermost
                    .parent
                    .and_then(|i| self.extracted().symbols.get(i))
                {
                    if p.kind == crate::SymbolKind::Module {
                        break;
                    }
                    outermost = p;
                }
                let start = if outermost.qualified_name == target.symbol.qualified_name {
                    target.doc_start_byte
                } else {
                    crate::stub::doc_start(lang, src, outermost.start_byte)
                };
                (start, indent_of_line(src, start))
            };
            let gap = if g.body_style == crate::BodyStyle::Indented && indent.is_empty() {
                "\n\n"
            } else {
                "\n"
            };
            let mut text = String::new();
            for h in helpers {
                for l in h.text.lines() {
                    if l.trim().is_empty() {
                        text.push('\n');
                    } else {
                        text.push_str(&format!("{indent}{l}\n"));
                    }
                }
                text.push_str(gap);
            }
            // The insertion starts at the line's start: the target's own indentation follows it.
            let line_start = src[..at].rfind('\n').map_or(0, |i| i + 1);
            edits.push(BodyEdit {
                start: line_start,
                end: line_start,
                new_text: text,
            });
        }
        edits
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply(p: &ParsedFile, main: &BodyEdit, extra: &[BodyEdit]) -> String {
        let mut all = extra.to_vec();
        all.push(main.clone());
        p.with_edits(&all)
    }

    #[test]
    fn python_imports_and_helpers_travel_with_the_body() {
        let src = "\"\"\"Tools.\"\"\"\nimport os\n\n\nclass Q:\n    def top(self, xs, k):\n        \"\"\"The k largest.\"\"\"\n        pass\n";
        let answer = "import heapq as hq\nimport os\nfrom itertools import (\n    groupby,\n)\n\ndef _key(x):\n    return -x\n\nclass Q:\n    def top(self, xs, k):\n        return hq.nlargest(k, xs, key=_key)\n";
        let extras = answer_extras(Language::Python, answer, "top");
        assert_eq!(
            extras.imports,
            [
                "import heapq as hq",
                "import os",
                "from itertools import (\n    groupby,\n)"
            ]
        );
        assert!(
            extras.helpers.is_empty(),
            "`_key` is beside the class, not the method"
        );
        let flat = "import heapq as hq\n\ndef _key(x):\n    return -x\n\ndef top(self, xs, k):\n    return hq.nlargest(k, xs, key=_key)\n";
        let extras = answer_extras(Language::Python, flat, "top");
        assert_eq!(extras.helpers.len(), 1);
        assert_eq!(extras.helpers[0].name, "_key");
        let p = ParsedFile::parse(Language::Python, "q.py", src);
        let t = p.function_at_line(6).unwrap();
        let main = crate::splice_body(&t, "return hq.nlargest(k, xs, key=_key)");
        let edits = p.extra_edits(&t, &extras);
        let out = apply(&p, &main, &edits);
        assert_eq!(
            out,
            "\"\"\"Tools.\"\"\"\nimport os\nimport heapq as hq\n\n\ndef _key(x):\n    return -x\n\n\nclass Q:\n    def top(self, xs, k):\n        \"\"\"The k largest.\"\"\"\n        return hq.nlargest(k, xs, key=_key)\n"
        );
        assert_eq!(crate::count_syntax_errors(Language::Python, &out), 0);
    }

    #[test]
    fn rust_use_and_java_import_and_members() {
        let src = "//! Lib.\n\n/// Sum.\npub fn total(xs: &[i64]) -> i64 {\n    todo!()\n}\n";
        let answer = "use std::iter::Sum;\n\nfn add(a: i64, b: i64) -> i64 { a + b }\n\npub fn total(xs: &[i64]) -> i64 {\n    xs.iter().fold(0, |a, b| add(a, *b))\n}\n";
        let p = ParsedFile::parse(Language::Rust, "src/lib.rs", src);
        let t = p.function_at_line(3).unwrap();
        let extras = answer_extras(Language::Rust, answer, "total");
        let main = crate::splice_body(&t, "xs.iter().fold(0, |a, b| add(a, *b))");
        let out = apply(&p, &main, &p.extra_edits(&t, &extras));
        assert!(
            out.starts_with("//! Lib.\n\nuse std::iter::Sum;\n\n"),
            "{out}"
        );
        assert!(
            out.contains("fn add(a: i64, b: i64) -> i64 { a + b }\n\n/// Sum.\npub fn total"),
            "{out}"
        );
        assert_eq!(crate::count_syntax_errors(Language::Rust, &out), 0);

        let src = "package a;\n\nimport java.util.List;\n\nclass S {\n    /** Max. */\n    int max(List<Integer> xs) {\n        throw new UnsupportedOperationException();\n    }\n}\n";
        let answer = "import java.util.List;\nimport java.util.Collections;\n\nclass S {\n    private static int id(int x) { return x; }\n    int max(List<Integer> xs) {\n        return id(Collections.max(xs));\n    }\n}\n";
        let p = ParsedFile::parse(Language::Java, "a/S.java", src);
        let t = p.function_at_line(6).unwrap();
        let extras = answer_extras(Language::Java, answer, "max");
        assert_eq!(extras.helpers.len(), 1);
        let main = crate::splice_body(&t, "return id(Collections.max(xs));");
        let out = apply(&p, &main, &p.extra_edits(&t, &extras));
        assert!(
            out.contains("import java.util.List;\nimport java.util.Collections;\n"),
            "{out}"
        );
        assert!(
            out.contains("    private static int id(int x) { return x; }\n\n    /** Max. */"),
            "{out}"
        );
        assert_eq!(crate::count_syntax_errors(Language::Java, &out), 0);
    }

    #[test]
    fn nothing_is_added_twice_or_for_a_bare_body() {
        let src =
            "import math\n\ndef f(x):\n    \"\"\"Root.\"\"\"\n    pass\n\ndef g():\n    return 1\n";
        let p = ParsedFile::parse(Language::Python, "m.py", src);
        let t = p.function_at_line(2).unwrap();
        let answer =
            "import math\n\ndef g():\n    return 2\n\ndef f(x):\n    return math.sqrt(x) + g()\n";
        let extras = answer_extras(Language::Python, answer, "f");
        assert!(
            p.extra_edits(&t, &extras).is_empty(),
            "math is imported and g defined"
        );
        assert!(answer_extras(Language::Python, "return x", "f").is_empty());
    }
}

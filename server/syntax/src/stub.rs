//! Functions as targets for generation: finds the function at a line or every documented stub
//! (empty, `pass`, `...`, `raise NotImplementedError`, `todo!()`, `unimplemented!()`, an empty Java
//! body, `throw new UnsupportedOperationException(…)`, a Python docstring with no body), takes the
//! body out of a model's answer, and splices a new body in. Pure: text in, text out. What a stub
//! looks like per language is data in `grammars/<lang>/language.toml` (`[generation]`).

use tree_sitter::{Node, Parser, Tree};

use crate::{BodyStyle, DocStyle, Language, Symbol};

/// What the body of a target function holds now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StubKind {
    /// `{}` or nothing after the docstring.
    Empty,
    /// Only placeholder statements (`pass`, `todo!()`, …).
    Placeholder,
    /// A real body: generation would replace working code.
    Implemented,
}

/// A function that generation can fill, with where its body goes.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct FunctionTarget {
    pub symbol: Symbol,
    pub stub: StubKind,
    /// Start of the doc comment above the definition (Rust/Java) or the definition itself.
    pub doc_start_byte: usize,
    pub doc_start_line: usize,
    /// Bytes replaced by a new body.
    pub replace_start: usize,
    pub replace_end: usize,
    /// Indentation of body lines and of the definition line.
    pub body_indent: String,
    pub def_indent: String,
    /// The body is written between braces (Rust, Java) rather than after a docstring/colon.
    pub braces: bool,
    /// A declaration with no body at all (a Rust trait method `fn f();`): the `;` is replaced by
    /// a braced body.
    pub signature_only: bool,
    /// Text the edit writes before the body (a Java interface method: `default ` and the rest of
    /// its declaration, the replaced range then starting at its result type).
    pub lead: String,
}

impl FunctionTarget {
    /// The definition as the user wrote it, doc comments included.
    pub fn text<'a>(&self, source: &'a str) -> &'a str {
        &source[self.doc_start_byte..self.symbol.end_byte.min(source.len())]
    }
}

/// One text replacement in the source.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct BodyEdit {
    pub start: usize,
    pub end: usize,
    pub new_text: String,
}

pub(crate) fn parse(lang: Language, source: &str) -> Option<Tree> {
    let mut p = Parser::new();
    p.set_language(&lang.grammar()).ok()?;
    p.parse(source, None)
}

/// ERROR and MISSING nodes in a parse of `source`.
pub fn count_syntax_errors(lang: Language, source: &str) -> usize {
    match crate::parse::parse_file(lang, source, None) {
        Some(tree) => count_tree_errors(&tree),
        None => usize::MAX,
    }
}

/// ERROR and MISSING nodes in a tree.
pub(crate) fn count_tree_errors(tree: &Tree) -> usize {
    tree_error_spans(tree).len()
}

/// The byte ranges of a tree's ERROR and MISSING nodes (nested ones too).
pub(crate) fn tree_error_spans(tree: &Tree) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut cursor = tree.walk();
    let mut stack = vec![tree.root_node()];
    while let Some(node) = stack.pop() {
        if node.is_error() || node.is_missing() {
            out.push((node.start_byte(), node.end_byte()));
        }
        if node.has_error() {
            for c in node.children(&mut cursor) {
                stack.push(c);
            }
        }
    }
    out
}

fn line_start(source: &str, byte: usize) -> usize {
    source[..byte].rfind('\n').map(|i| i + 1).unwrap_or(0)
}

pub(crate) fn indent_of_line(source: &str, byte: usize) -> String {
    let s = line_start(source, byte);
    source[s..]
        .chars()
        .take_while(|c| *c == ' ' || *c == '\t')
        .collect()
}

/// Lines of doc comment directly above `start` (Rust `///`, Javadoc); the line of `start` where
/// documentation lives in the body (Python).
pub(crate) fn doc_start(lang: Language, source: &str, start: usize) -> usize {
    if lang.spec().doc_style == DocStyle::BodyString {
        return line_start(source, start);
    }
    let mut cur = line_start(source, start);
    while cur > 0 {
        let prev = line_start(source, cur - 1);
        let t = source[prev..cur].trim();
        let is_doc = t.starts_with("///")
            || t.starts_with("/**")
            || t.starts_with('*')
            || t.starts_with("//!");
        if !is_doc {
            break;
        }
        cur = prev;
    }
    cur
}

fn is_placeholder(lang: Language, text: &str) -> bool {
    let g = &lang.spec().generation;
    let t = text.trim();
    g.stub_statements.iter().any(|s| s == t)
        || g.stub_prefixes.iter().any(|p| t.starts_with(p.as_str()))
}

pub(crate) fn is_docstring_stmt(node: Node) -> bool {
    node.kind() == "expression_statement"
        && node.named_child_count() == 1
        && node
            .named_child(0)
            .is_some_and(|c| c.kind() == "string" || c.kind() == "concatenated_string")
}

fn function_node<'t>(lang: Language, root: Node<'t>, sym: &Symbol) -> Option<Node<'t>> {
    let kinds = &lang.spec().generation.function_kinds;
    let mut n = root.descendant_for_byte_range(sym.name_start_byte, sym.name_end_byte)?;
    loop {
        if kinds.iter().any(|k| k == n.kind()) {
            return Some(n);
        }
        n = n.parent()?;
    }
}

pub(crate) fn target_for(
    lang: Language,
    source: &str,
    root: Node,
    sym: &Symbol,
) -> Option<FunctionTarget> {
    if !sym.kind.is_callable() {
        return None;
    }
    let func = function_node(lang, root, sym)?;
    let def_indent = indent_of_line(source, sym.start_byte);
    let doc_start_byte = doc_start(lang, source, sym.start_byte);
    let doc_start_line =
        sym.start_line - source[doc_start_byte..sym.start_byte].matches('\n').count();
    let Some(body) = func.child_by_field_name(lang.spec().generation.body_field.as_str()) else {
        // No body: only a declaration ending in `;` can take one.
        let text = &source[func.byte_range()];
        let braced = lang.spec().generation.body_style == BodyStyle::Braces;
        if !braced || !text.trim_end().ends_with(';') {
            return None;
        }
        let semi = func.start_byte() + text.trim_end().len() - 1;
        let g = &lang.spec().generation;
        let mut cursor = func.walk();
        let deliberate = func.children(&mut cursor).any(|c| {
            c.kind() == "modifiers" && {
                let mut mc = c.walk();
                c.children(&mut mc)
                    .any(|m| g.bodyless_never.iter().any(|k| k == m.kind()))
            }
        });
        if deliberate {
            return None;
        }
        let (start, lead) = if g.bodyless_prefix.is_empty() {
            (semi, String::new())
        } else {
            let prefix = g.bodyless_prefix.get(func.parent()?.kind())?;
            let at = g
                .bodyless_insert_before
                .iter()
                .find_map(|f| func.child_by_field_name(f.as_str()))
                .map_or(func.start_byte(), |n| n.start_byte());
            (at, format!("{prefix}{}", &source[at..semi]))
        };
        return Some(FunctionTarget {
            symbol: sym.clone(),
            stub: StubKind::Empty,
            doc_start_byte,
            doc_start_line,
            replace_start: start,
            replace_end: semi + 1,
            lead,
            body_indent: format!("{def_indent}    "),
            def_indent,
            braces: true,
            signature_only: true,
        });
    };
    let unit = "    ";
    let mut cursor = body.walk();
    let children: Vec<Node> = body.named_children(&mut cursor).collect();
    let (stmts, docstring): (Vec<Node>, Option<Node>) =
        if lang.spec().doc_style == DocStyle::BodyString {
            // Imports written above the docstring stay where they are (HumanEval/115 does this).
            let preamble = &lang.spec().generation.doc_preamble_kinds;
            let lead = children
                .iter()
                .take_while(|c| preamble.iter().any(|k| k == c.kind()))
                .count();
            match children.get(lead) {
                Some(doc) if is_docstring_stmt(*doc) => (children[lead + 1..].to_vec(), Some(*doc)),
                _ => (children.clone(), None),
            }
        } else {
            (children.clone(), None)
        };
    let real: Vec<&Node> = stmts
        .iter()
        .filter(|n| !n.kind().contains("comment"))
        .collect();
    let stub = if real.is_empty() {
        StubKind::Empty
    } else if real
        .iter()
        .all(|n| is_placeholder(lang, &source[n.byte_range()]))
    {
        StubKind::Placeholder
    } else {
        StubKind::Implemented
    };
    let braces = lang.spec().generation.body_style == BodyStyle::Braces;
    let (replace_start, replace_end, body_indent) = if braces {
        // Interior of `{ … }`.
        let open = body.start_byte() + 1;
        let close = body.end_byte().saturating_sub(1);
        if !source[body.byte_range()].starts_with('{') || !source[body.byte_range()].ends_with('}')
        {
            return None;
        }
        let indent = stmts
            .first()
            .filter(|n| {
                source[line_start(source, n.start_byte())..n.start_byte()]
                    .trim()
                    .is_empty()
            })
            .map(|n| indent_of_line(source, n.start_byte()))
            .unwrap_or_else(|| format!("{def_indent}{unit}"));
        (open, close, indent)
    } else {
        let indent = docstring
            .or(stmts.first().copied())
            .filter(|n| {
                source[line_start(source, n.start_byte())..n.start_byte()]
                    .trim()
                    .is_empty()
            })
            .map(|n| indent_of_line(source, n.start_byte()))
            .unwrap_or_else(|| format!("{def_indent}{unit}"));
        match docstring {
            Some(d) => (d.end_byte(), body.end_byte().max(d.end_byte()), indent),
            None => {
                let mut s = body.start_byte();
                while s > 0 && source.as_bytes()[s - 1] == b' ' {
                    s -= 1;
                }
                (s, body.end_byte(), indent)
            }
        }
    };
    Some(FunctionTarget {
        symbol: sym.clone(),
        stub,
        doc_start_byte,
        doc_start_line,
        replace_start,
        replace_end,
        body_indent,
        def_indent,
        braces,
        signature_only: false,
        lead: String::new(),
    })
}

pub(crate) fn dedent(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let min = lines
        .iter()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.len() - l.trim_start().len())
        .min()
        .unwrap_or(0);
    let mut out: Vec<&str> = lines
        .iter()
        .map(|l| {
            if l.len() >= min && l.is_char_boundary(min) {
                l[min..].trim_end()
            } else {
                l.trim()
            }
        })
        .collect();
    while out.first().is_some_and(|l| l.trim().is_empty()) {
        out.remove(0);
    }
    while out.last().is_some_and(|l| l.trim().is_empty()) {
        out.pop();
    }
    out.join("\n")
}

/// The body of the function `name` in a model's code (its docstring dropped), dedented; or the
/// code itself when it is a bare body. `None` when nothing usable parses.
pub fn body_from_generated(lang: Language, code: &str, name: &str) -> Option<String> {
    let tree = parse(lang, code)?;
    let g = &lang.spec().generation;
    let mut stack = vec![tree.root_node()];
    let mut cursor = tree.walk();
    let mut found = None;
    while let Some(n) = stack.pop() {
        if g.function_kinds.iter().any(|k| k == n.kind())
            && n.child_by_field_name("name")
                .is_some_and(|c| &code[c.byte_range()] == name)
            && n.child_by_field_name(g.body_field.as_str()).is_some()
        {
            found = Some(n);
            break;
        }
        let kids: Vec<Node> = n.named_children(&mut cursor).collect();
        stack.extend(kids.into_iter().rev());
    }
    if let Some(func) = found {
        let body = func.child_by_field_name(g.body_field.as_str())?;
        if body.has_error() {
            return None;
        }
        let text = if g.body_style == BodyStyle::Indented {
            let mut c = body.walk();
            let kids: Vec<Node> = body.named_children(&mut c).collect();
            let first = kids.iter().find(|k| !is_docstring_stmt(**k))?;
            code[line_start(code, first.start_byte())..body.end_byte()].to_string()
        } else {
            let r = body.byte_range();
            code[r.start + 1..r.end.saturating_sub(1)].to_string()
        };
        let body = dedent(&text);
        return (!body.trim().is_empty()).then_some(body);
    }
    // Small models sometimes define the function under its qualified name, as the prompt names
    // it (`def solution.sum_to_n(`, `fn crate::m::f(`): the same function.
    if let Some(fixed) = unqualify_definition(code, name) {
        return body_from_generated(lang, &fixed, name);
    }
    // A bare body: it must parse inside a function of the language.
    let body = dedent(code);
    if body.trim().is_empty() {
        return None;
    }
    let indented: String = body.lines().map(|l| format!("    {l}\n")).collect();
    let wrapped = g.bare_body_wrapper.replace("{body}", &indented);
    (count_syntax_errors(lang, &wrapped) == 0).then_some(body)
}

/// `code` with definitions of `….name(` / `…::name(` renamed to `name(`; `None` when there is none.
fn unqualify_definition(code: &str, name: &str) -> Option<String> {
    let mut changed = false;
    let lines: Vec<String> = code
        .lines()
        .map(|l| {
            let t = l.trim_start();
            let indent = &l[..l.len() - t.len()];
            for kw in ["async def ", "def ", "pub fn ", "fn "] {
                let Some(rest) = t.strip_prefix(kw) else {
                    continue;
                };
                let Some(paren) = rest.find('(') else {
                    continue;
                };
                let head = &rest[..paren];
                let qualified =
                    head.ends_with(&format!(".{name}")) || head.ends_with(&format!("::{name}"));
                if qualified && !head.contains(char::is_whitespace) {
                    changed = true;
                    return format!("{indent}{kw}{name}{}", &rest[paren..]);
                }
                break;
            }
            l.to_string()
        })
        .collect();
    changed.then(|| lines.join("\n"))
}

/// Whether a body is nothing but placeholders (a model that "answered" with `pass`).
pub fn is_stub_body(lang: Language, body: &str) -> bool {
    let lines: Vec<&str> = body
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with(lang.spec().generation.line_comment.as_str()))
        .collect();
    lines.is_empty() || lines.iter().all(|l| is_placeholder(lang, l))
}

/// The edit that puts `body` (dedented, as from [`body_from_generated`]) into the target.
pub fn splice_body(target: &FunctionTarget, body: &str) -> BodyEdit {
    let indented: Vec<String> = body
        .lines()
        .map(|l| {
            if l.trim().is_empty() {
                String::new()
            } else {
                format!("{}{l}", target.body_indent)
            }
        })
        .collect();
    let new_text = if target.signature_only {
        format!(
            "{} {{\n{}\n{}}}",
            target.lead,
            indented.join("\n"),
            target.def_indent
        )
    } else if target.braces {
        format!("\n{}\n{}", indented.join("\n"), target.def_indent)
    } else {
        format!("\n{}", indented.join("\n"))
    };
    BodyEdit {
        start: target.replace_start,
        end: target.replace_end,
        new_text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{function_at_line, stub_functions};

    fn apply(src: &str, e: &BodyEdit) -> String {
        format!("{}{}{}", &src[..e.start], e.new_text, &src[e.end..])
    }

    #[test]
    fn python_stubs_are_found_and_filled() {
        let src = "import os\n\nclass A:\n    def f(self, x):\n        \"\"\"Double x.\"\"\"\n        pass\n\n    def g(self):\n        \"\"\"Real.\"\"\"\n        return 1\n\ndef h(a):\n    \"\"\"Doc only.\"\"\"\n\ndef k():\n    \"\"\"Raise.\"\"\"\n    raise NotImplementedError(\"later\")\n";
        let stubs = stub_functions(Language::Python, "m.py", src);
        let names: Vec<&str> = stubs.iter().map(|t| t.symbol.name.as_str()).collect();
        assert_eq!(names, ["f", "h", "k"]);
        let f = &stubs[0];
        assert_eq!(f.stub, StubKind::Placeholder);
        assert_eq!(f.body_indent, "        ");
        let out = apply(src, &splice_body(f, "y = x * 2\nreturn y"));
        assert!(
            out.contains(
                "        \"\"\"Double x.\"\"\"\n        y = x * 2\n        return y\n\n    def g"
            ),
            "{out}"
        );
        assert_eq!(count_syntax_errors(Language::Python, &out), 0);
        let h = &stubs[1];
        assert_eq!(h.stub, StubKind::Empty);
        let out = apply(src, &splice_body(h, "return a"));
        assert!(
            out.contains("    \"\"\"Doc only.\"\"\"\n    return a\n\ndef k"),
            "{out}"
        );
        let t = function_at_line(Language::Python, "m.py", src, 9).unwrap();
        assert_eq!(
            (t.symbol.name.as_str(), t.stub),
            ("g", StubKind::Implemented)
        );
    }

    #[test]
    fn rust_and_java_stubs() {
        let src = "/// Adds.\n///\n/// More.\npub fn add(a: i32, b: i32) -> i32 {\n    todo!()\n}\n\nimpl S {\n    /// Empty.\n    fn e(&self) {}\n}\n";
        let stubs = stub_functions(Language::Rust, "src/lib.rs", src);
        assert_eq!(stubs.len(), 2);
        assert_eq!(stubs[0].doc_start_byte, 0);
        assert_eq!(stubs[0].doc_start_line, 0);
        let out = apply(src, &splice_body(&stubs[0], "a + b"));
        assert!(
            out.starts_with(
                "/// Adds.\n///\n/// More.\npub fn add(a: i32, b: i32) -> i32 {\n    a + b\n}\n"
            ),
            "{out}"
        );
        let out = apply(
            src,
            &splice_body(&stubs[1], "let x = 1;\nprintln!(\"{x}\");"),
        );
        assert!(
            out.contains(
                "    fn e(&self) {\n        let x = 1;\n        println!(\"{x}\");\n    }\n}"
            ),
            "{out}"
        );
        assert_eq!(
            function_at_line(Language::Rust, "src/lib.rs", src, 1)
                .unwrap()
                .symbol
                .name,
            "add"
        );

        // A trait method with no body gets a default body.
        let tr =
            "pub trait Shape {\n    /// Area in square units.\n    fn area(&self) -> f64;\n}\n";
        let stubs = stub_functions(Language::Rust, "src/lib.rs", tr);
        assert_eq!(stubs.len(), 1);
        assert!(stubs[0].signature_only);
        let out = apply(tr, &splice_body(&stubs[0], "0.0"));
        assert_eq!(
            out,
            "pub trait Shape {\n    /// Area in square units.\n    fn area(&self) -> f64 {\n        0.0\n    }\n}\n"
        );
        assert_eq!(count_syntax_errors(Language::Rust, &out), 0);

        let java = "class U {\n    /** Parses. */\n    int parse(String s) {\n        throw new UnsupportedOperationException(\"todo\");\n    }\n    /** Ok. */\n    int ok() { return 1; }\n}\n";
        let stubs = stub_functions(Language::Java, "U.java", java);
        assert_eq!(stubs.len(), 1);
        let out = apply(java, &splice_body(&stubs[0], "return Integer.parseInt(s);"));
        assert!(
            out.contains("    int parse(String s) {\n        return Integer.parseInt(s);\n    }\n"),
            "{out}"
        );
        assert_eq!(count_syntax_errors(Language::Java, &out), 0);
    }

    #[test]
    fn java_interface_methods_become_default_methods_and_abstract_ones_are_left_alone() {
        let java = "interface Shape {\n    /** Area. */\n    double area();\n    /** Scaled. */\n    @Deprecated\n    public <T> T scaled(T by);\n}\nabstract class Base {\n    /** Must be overridden. */\n    abstract int size();\n    /** Native. */\n    native int raw();\n}\n";
        let stubs = stub_functions(Language::Java, "Shape.java", java);
        let names: Vec<&str> = stubs.iter().map(|t| t.symbol.name.as_str()).collect();
        assert_eq!(names, ["area", "scaled"]);
        let out = apply(java, &splice_body(&stubs[0], "return 0.0;"));
        assert!(
            out.contains(
                "    /** Area. */\n    default double area() {\n        return 0.0;\n    }\n"
            ),
            "{out}"
        );
        assert_eq!(count_syntax_errors(Language::Java, &out), 0);
        let out = apply(java, &splice_body(&stubs[1], "return by;"));
        assert!(
            out.contains("    @Deprecated\n    public default <T> T scaled(T by) {\n        return by;\n    }\n"),
            "{out}"
        );
        assert_eq!(count_syntax_errors(Language::Java, &out), 0);
    }

    #[test]
    fn python_imports_above_the_docstring_keep_it_a_stub() {
        // HumanEval/115's shape: `import math` is written before the docstring.
        let src = "def max_fill(grid, capacity):\n    import math\n    \"\"\"Count the buckets.\"\"\"\n\n\ndef g():\n    import os\n    return os.sep\n";
        let stubs = stub_functions(Language::Python, "m.py", src);
        assert_eq!(stubs.len(), 1, "{stubs:?}");
        assert_eq!(stubs[0].stub, StubKind::Empty);
        assert_eq!(
            stubs[0].symbol.docstring.as_deref(),
            Some("Count the buckets.")
        );
        let out = apply(src, &splice_body(&stubs[0], "return math.ceil(1)"));
        assert!(
            out.starts_with("def max_fill(grid, capacity):\n    import math\n    \"\"\"Count the buckets.\"\"\"\n    return math.ceil(1)\n"),
            "{out}"
        );
        let g = function_at_line(Language::Python, "m.py", src, 6).unwrap();
        assert_eq!(g.stub, StubKind::Implemented);
    }

    #[test]
    fn a_function_defined_under_its_qualified_name_is_still_found() {
        let code = "def solution.sum_to_n(n: int):\n    \"\"\"Sum.\"\"\"\n    return sum(range(1, n + 1))\n";
        assert_eq!(
            body_from_generated(Language::Python, code, "sum_to_n").as_deref(),
            Some("return sum(range(1, n + 1))")
        );
        let rs = "pub fn crate::m::add(a: i32, b: i32) -> i32 {\n    a + b\n}\n";
        assert_eq!(
            body_from_generated(Language::Rust, rs, "add").as_deref(),
            Some("a + b")
        );
        assert!(
            body_from_generated(Language::Python, "def other.thing(x):\n    return x\n", "f")
                .is_none()
        );
    }

    #[test]
    fn bodies_come_out_of_model_answers() {
        let code = "def f(self, x):\n    \"\"\"Double x.\"\"\"\n    if x:\n        return x * 2\n    return 0\n";
        assert_eq!(
            body_from_generated(Language::Python, code, "f").unwrap(),
            "if x:\n    return x * 2\nreturn 0"
        );
        assert_eq!(
            body_from_generated(Language::Python, "return x * 2\n", "f").unwrap(),
            "return x * 2"
        );
        assert_eq!(
            body_from_generated(Language::Python, "def f(:\n  ??", "f"),
            None
        );
        let rs = "pub fn add(a: i32, b: i32) -> i32 {\n    let s = a + b;\n    s\n}";
        assert_eq!(
            body_from_generated(Language::Rust, rs, "add").unwrap(),
            "let s = a + b;\ns"
        );
        assert_eq!(
            body_from_generated(Language::Rust, "a + b", "add").unwrap(),
            "a + b"
        );
        let tr =
            "trait T { fn add(&self) -> i32; }\nimpl T for S { fn add(&self) -> i32 { 1 + 2 } }";
        assert_eq!(
            body_from_generated(Language::Rust, tr, "add").unwrap(),
            "1 + 2",
            "declarations are skipped"
        );
        let j = "class X { int parse(String s) { return Integer.parseInt(s); } }";
        assert_eq!(
            body_from_generated(Language::Java, j, "parse").unwrap(),
            "return Integer.parseInt(s);"
        );
        assert!(is_stub_body(Language::Python, "pass"));
        assert!(is_stub_body(Language::Rust, "// later\ntodo!()"));
        assert!(!is_stub_body(Language::Rust, "a + b"));
    }
}

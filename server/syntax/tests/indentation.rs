//! Python's indentation rules, which tree-sitter's grammar accepts broken without an error node:
//! each document's expected count of indentation errors, and none for braced languages.

use codeforge_syntax::{CursorSyntax, Language, indentation_errors};

fn count(lang: Language, src: &str) -> usize {
    let mut p = tree_sitter::Parser::new();
    p.set_language(&lang.grammar()).unwrap();
    let t = p.parse(src, None).unwrap();
    indentation_errors(lang, &t, src)
}

#[test]
fn statements_at_a_depth_python_refuses_are_counted() {
    let cases = [
        // Well indented, with a one-line block, a continuation line and a comment out of line.
        (
            "def total(xs):\n    n = 0\n    for x in xs:\n        n += x\n    return n\n",
            0,
        ),
        (
            "def f(n):\n    if n: m = 1\n# note\n    return (n,\n  2)\n",
            0,
        ),
        // A loop whose body is at the loop's own depth: expected an indented block.
        (
            "def total(xs):\n    n = 0\n    for x in xs:\n    n += x\n    return n\n",
            1,
        ),
        (
            "def total(xs):\n    n = 0\n    for x in xs:\n\n    return n\n",
            1,
        ),
        // Unexpected indent; unindent that matches no outer level.
        (
            "def total(xs):\n    n = 0\n        m = 1\n    return n\n",
            1,
        ),
        (
            "def f(n):\n    if n:\n        m = 1\n      k = 2\n    return n\n",
            1,
        ),
        // Out of the function at column 0, then an indented line at the top level.
        (
            "def total(xs):\n    n = 0\n    for x in xs:\nn += x\n    return n\n",
            2,
        ),
    ];
    for (src, want) in cases {
        assert_eq!(count(Language::Python, src), want, "{src:?}");
    }
    // Braces decide in Rust and Java.
    assert_eq!(
        count(Language::Rust, "fn f() {\nlet x = 1;\n      x\n}\n"),
        0
    );
    // The cursor's parse counts them with the tree's own errors, before and after an insertion.
    let src = "def total(xs):\n    for x in xs:\n\n    return 0\n";
    let at = src.find(":\n\n").unwrap() + 2;
    let s = CursorSyntax::parse(Language::Python, src).unwrap();
    assert_eq!(s.errors(), 1);
    assert_eq!(s.errors_with_insert(src, at, "    print(x)"), 1);
    assert_eq!(s.errors_with_insert(src, at, "        print(x)"), 0);
}

/// The errors around a cursor (the line of code above, the cursor's line, the next line of
/// code), in the document and once an insertion is made: what a completion there should mend.
/// An error elsewhere in the file is not counted.
#[test]
fn errors_near_the_cursor_and_what_an_insertion_leaves_of_them() {
    // The hole took a loop's header: the next line is indented past the docstring's depth.
    let src = "def f(n):\n    \"\"\"Doc.\"\"\"\n\n        if n:\n            return 1\n    return 0\n\nx = (\n";
    let at = src.find("\"\"\"\n\n").unwrap() + 4;
    let s = CursorSyntax::parse(Language::Python, src).unwrap();
    assert_eq!(
        s.errors_near(src, at),
        1,
        "the unexpected indent, not `x = (`"
    );
    assert!(s.errors() > 1);
    assert_eq!(s.errors_near_with_insert(src, at, "    ret = []"), 1);
    assert_eq!(
        s.errors_near_with_insert(src, at, "    ret = []\n    for i in range(n):"),
        0
    );
    // The hole took a loop's body: the header above has none.
    let src = "def f(s):\n    r = ''\n    for c in s:\n\n    return r\n";
    let at = src.find(":\n\n").unwrap() + 2;
    let s = CursorSyntax::parse(Language::Python, src).unwrap();
    assert_eq!(s.errors_near(src, at), 1);
    assert_eq!(s.errors_near_with_insert(src, at, "        if c:"), 1);
    assert_eq!(
        s.errors_near_with_insert(src, at, "        if c:\n            r += c"),
        0
    );
    // Nothing broken at a cursor in a clean function.
    let src = "def f(s):\n    r = ''\n\n    return r\n";
    let at = src.find("''\n").unwrap() + 3;
    let s = CursorSyntax::parse(Language::Python, src).unwrap();
    assert_eq!(s.errors_near(src, at), 0);
    assert_eq!(s.errors_near_with_insert(src, at, "    r = s"), 0);
}

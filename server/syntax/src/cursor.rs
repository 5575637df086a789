//! The syntax around a completion cursor: one parse of the document, the function that encloses
//! the cursor (the text that says what it does), and, by incremental re-parse of the document
//! with a candidate insertion, its parse errors and where its block and function end, so
//! checking several insertions in a 10k-line file costs little more than the one parse. Pure:
//! text in, facts out.

use tree_sitter::{InputEdit, Node, Parser, Point, Tree};

use crate::Language;
use crate::stub::{count_tree_errors, doc_start, is_docstring_stmt, parse, tree_error_spans};

/// Statements at a depth the language's indentation rules refuse, which tree-sitter's grammar
/// for an indented language accepts without an error node: a block with no statement (`for x
/// in xs:` followed by a line at its own depth), a statement not indented past its block's
/// header (not counted again where the header holds a parse error), statements of one block at
/// different depths (`unexpected indent`, `unindent does not
/// match`), and top-level statements not at column 0. Zero for braced languages. A block on its
/// header's line (`if x: return 1`) is not checked; comments are not statements.
pub fn indentation_errors(lang: Language, tree: &Tree, source: &str) -> usize {
    indentation_error_sites(lang, tree, source).len()
}

/// Where each of [`indentation_errors`] is: the statement at the wrong depth, or the header of
/// a block with no statement.
fn indentation_error_sites(lang: Language, tree: &Tree, source: &str) -> Vec<usize> {
    let g = &lang.spec().generation;
    if g.body_style != crate::BodyStyle::Indented {
        return Vec::new();
    }
    let line_start = |byte: usize| source[..byte].rfind('\n').map_or(0, |i| i + 1);
    let indent_at = |byte: usize| {
        let s = line_start(byte);
        source[s..].len() - source[s..].trim_start_matches([' ', '\t']).len()
    };
    // The statements of a block (or the module) that start their line, with their columns.
    let statements = |node: Node| -> Vec<(usize, usize)> {
        let mut cur = node.walk();
        node.named_children(&mut cur)
            .filter(|c| !c.is_extra())
            .map(|c| (c.start_byte(), c.start_byte() - line_start(c.start_byte())))
            .collect()
    };
    let mut errors = Vec::new();
    let root = tree.root_node();
    errors.extend(
        statements(root)
            .iter()
            .filter(|(b, col)| *col != 0 && indent_at(*b) == *col)
            .map(|(b, _)| *b),
    );
    let mut stack = vec![root];
    while let Some(node) = stack.pop() {
        let mut cur = node.walk();
        stack.extend(node.children(&mut cur));
        if !g.block_kinds.iter().any(|k| k == node.kind()) {
            continue;
        }
        let Some(header) = node.parent() else {
            continue;
        };
        let stmts = statements(node);
        let Some(&(first, first_col)) = stmts.first() else {
            // (Where the header holds a parse error, that error is this one.)
            if !header.has_error() {
                errors.push(header.start_byte());
            }
            continue;
        };
        if line_start(first) == line_start(header.start_byte()) || indent_at(first) != first_col {
            continue;
        }
        if first_col <= indent_at(header.start_byte()) {
            errors.push(first);
        }
        errors.extend(
            stmts
                .iter()
                .filter(|(b, col)| indent_at(*b) == *col && *col != first_col)
                .map(|(b, _)| *b),
        );
    }
    errors
}

/// The lines around an insertion of `len` bytes at `offset` of `source` (which holds it): from
/// the last line of code before the cursor's line to the first line of code after the line
/// where the insertion ends, as a byte range.
fn window(source: &str, offset: usize, len: usize) -> (usize, usize) {
    let code = |l: &str| {
        let t = l.trim();
        !t.is_empty() && !t.starts_with('#') && !t.starts_with("//")
    };
    let line_start = source[..offset].rfind('\n').map_or(0, |i| i + 1);
    let mut lo = line_start;
    let mut end = line_start;
    for l in source[..line_start].split_inclusive('\n').rev() {
        end -= l.len();
        if code(l) {
            lo = end;
            break;
        }
    }
    let after = offset + len;
    let mut hi = source.len();
    if let Some(nl) = source[after..].find('\n') {
        let mut at = after + nl + 1;
        for l in source[at..].split_inclusive('\n') {
            at += l.len();
            if code(l) {
                hi = at;
                break;
            }
        }
    }
    (lo, hi)
}

/// A parsed document, ready for questions about one cursor.
pub struct CursorSyntax {
    lang: Language,
    tree: Tree,
    errors: usize,
}

/// Errors in `[lo, hi)`: parse errors whose range meets it (a zero-width MISSING node at `hi`,
/// the end of the file, too), not those that hold all of it (an unclosed bracket far above is
/// nothing an insertion here mends), and indentation errors in it.
fn errors_in(lang: Language, tree: &Tree, source: &str, (lo, hi): (usize, usize)) -> usize {
    tree_error_spans(tree)
        .into_iter()
        .filter(|&(a, b)| {
            let meets = (a < hi && b > lo) || (a == b && (lo..=hi).contains(&a));
            let holds = a < lo && b >= hi;
            meets && !holds
        })
        .count()
        + indentation_error_sites(lang, tree, source)
            .into_iter()
            .filter(|b| (lo..hi).contains(b))
            .count()
}

/// Where an insertion's units end (byte lengths within it); see [`CursorSyntax::unit_ends`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct UnitEnds {
    pub block: Option<usize>,
    pub function: Option<usize>,
}

/// The function or method around the cursor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnclosingFunction {
    /// Its doc comment, signature and docstring, whitespace collapsed, at most 600 characters:
    /// what it is for, stable while the user types in its body.
    pub summary: String,
}

fn point_at(source: &str, byte: usize) -> Point {
    let before = &source[..byte];
    let row = before.matches('\n').count();
    let column = byte - before.rfind('\n').map_or(0, |i| i + 1);
    Point { row, column }
}

impl CursorSyntax {
    pub fn parse(lang: Language, source: &str) -> Option<Self> {
        let tree = parse(lang, source)?;
        let errors = count_tree_errors(&tree) + indentation_errors(lang, &tree, source);
        Some(CursorSyntax { lang, tree, errors })
    }

    /// ERROR and MISSING nodes in the document as it is, and where blocks are indented, the
    /// indentation errors ([`indentation_errors`]).
    pub fn errors(&self) -> usize {
        self.errors
    }

    /// [`Self::errors`] once `text` is inserted at `offset` (a re-parse that reuses the
    /// unchanged parts of the tree).
    pub fn errors_with_insert(&self, source: &str, offset: usize, text: &str) -> usize {
        let offset = offset.min(source.len());
        match self.reparse_with(source, offset, text) {
            Some(t) => {
                let new_source = format!("{}{text}{}", &source[..offset], &source[offset..]);
                count_tree_errors(&t) + indentation_errors(self.lang, &t, &new_source)
            }
            None => usize::MAX,
        }
    }

    /// The errors of the document as it is around the cursor at `offset`: on the last line of
    /// code before the cursor's line, on that line, and on the first line of code after it.
    /// What a completion there should mend, and not leave as it is.
    pub fn errors_near(&self, source: &str, offset: usize) -> usize {
        let offset = offset.min(source.len());
        errors_in(self.lang, &self.tree, source, window(source, offset, 0))
    }

    /// [`Self::errors_near`] once `text` is inserted at `offset`: on the last line of code
    /// before the cursor's line, the lines of the insertion, and the first line of code after.
    pub fn errors_near_with_insert(&self, source: &str, offset: usize, text: &str) -> usize {
        let offset = offset.min(source.len());
        match self.reparse_with(source, offset, text) {
            Some(t) => {
                let new_source = format!("{}{text}{}", &source[..offset], &source[offset..]);
                let w = window(&new_source, offset, text.len());
                errors_in(self.lang, &t, &new_source, w)
            }
            None => usize::MAX,
        }
    }

    /// Where `text`, inserted at `offset`, ends its units, from the (incremental) parse of the
    /// document with it: the rest of the innermost block holding its first code, and the rest
    /// of the innermost function's body holding it. Each is a byte length within `text`,
    /// ending at the unit's last statement that lies in the insertion (so a closing brace the
    /// document already has stays out); `None` where no such unit holds the first code.
    pub fn unit_ends(&self, source: &str, offset: usize, text: &str) -> UnitEnds {
        let none = UnitEnds::default();
        let offset = offset.min(source.len());
        let Some(first) = text.find(|c: char| !c.is_whitespace()) else {
            return none;
        };
        let Some(tree) = self.reparse_with(source, offset, text) else {
            return none;
        };
        let g = &self.lang.spec().generation;
        let (lo, hi) = (offset, offset + text.len());
        let at = lo + first;
        // The end of the last named child of `c` that overlaps the insertion from its first code
        // on, clamped to the insertion.
        let last_statement_end = |c: Node| -> Option<usize> {
            let mut cur = c.walk();
            c.named_children(&mut cur)
                .filter(|n| n.start_byte() < hi && n.end_byte() > at)
                .map(|n| n.end_byte().min(hi))
                .max()
                .map(|e| e - lo)
        };
        let mut out = none;
        let mut n = tree.root_node().descendant_for_byte_range(at, at + 1);
        while let Some(node) = n {
            let kind = node.kind();
            if out.block.is_none() && g.block_kinds.iter().any(|k| k == kind) {
                out.block = last_statement_end(node);
            }
            if g.function_kinds.iter().any(|k| k == kind) {
                if let Some(body) = node.child_by_field_name(g.body_field.as_str()) {
                    out.function = last_statement_end(body);
                }
                break;
            }
            n = node.parent();
        }
        if out.block.is_none() {
            // Top-level code: the file is the block.
            out.block = last_statement_end(tree.root_node());
        }
        out
    }

    /// The document with `text` inserted at `offset`, re-parsed from the old tree.
    fn reparse_with(&self, source: &str, offset: usize, text: &str) -> Option<Tree> {
        // `offset` is clamped by the callers.
        let new_source = format!("{}{text}{}", &source[..offset], &source[offset..]);
        let start = point_at(source, offset);
        let mut old = self.tree.clone();
        old.edit(&InputEdit {
            start_byte: offset,
            old_end_byte: offset,
            new_end_byte: offset + text.len(),
            start_position: start,
            old_end_position: start,
            new_end_position: point_at(&new_source, offset + text.len()),
        });
        let mut p = Parser::new();
        p.set_language(&self.lang.grammar()).ok()?;
        p.parse(&new_source, Some(&old))
    }

    /// The innermost function whose definition starts on a line before the cursor's and whose
    /// range holds the cursor.
    pub fn enclosing_function(&self, source: &str, offset: usize) -> Option<EnclosingFunction> {
        let offset = offset.min(source.len());
        let g = &self.lang.spec().generation;
        let cursor_row = point_at(source, offset).row;
        let leaf = self
            .tree
            .root_node()
            .descendant_for_byte_range(offset.saturating_sub(1), offset)?;
        let mut n: Option<Node> = Some(leaf);
        while let Some(node) = n {
            if g.function_kinds.iter().any(|k| k == node.kind())
                && node.start_position().row < cursor_row
                && node.end_byte() >= offset
            {
                return Some(self.describe(source, node));
            }
            n = node.parent();
        }
        None
    }

    fn describe(&self, source: &str, func: Node) -> EnclosingFunction {
        let g = &self.lang.spec().generation;
        let body = func.child_by_field_name(g.body_field.as_str());
        let head_end = body.map_or(func.end_byte(), |b| b.start_byte());
        let mut text =
            source[doc_start(self.lang, source, func.start_byte())..head_end].to_string();
        if let Some(b) = body
            && let Some(first) = b.named_child(0)
            && is_docstring_stmt(first)
        {
            text.push(' ');
            text.push_str(&source[first.byte_range()]);
        }
        let summary: String = text
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .chars()
            .take(600)
            .collect();
        EnclosingFunction { summary }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::count_syntax_errors;

    #[test]
    fn the_enclosing_function_and_insertions_are_judged_from_one_parse() {
        let src = "import os\n\nclass A:\n    def total(self, xs):\n        \"\"\"Sum of xs.\"\"\"\n        t = 0\n        for x in xs:\n            \n        return t\n";
        let cursor = src.find("            \n").unwrap() + 12;
        let s = CursorSyntax::parse(Language::Python, src).unwrap();
        let f = s.enclosing_function(src, cursor).unwrap();
        assert_eq!(f.summary, "def total(self, xs): \"\"\"Sum of xs.\"\"\"");
        assert!(
            s.enclosing_function(src, 3).is_none(),
            "not inside a function"
        );
        for insert in ["t += x", "t +=", "if x:\n                t += x", ")", "\n"] {
            let whole = format!("{}{insert}{}", &src[..cursor], &src[cursor..]);
            let tree = parse(Language::Python, &whole).unwrap();
            assert_eq!(
                s.errors_with_insert(src, cursor, insert),
                count_syntax_errors(Language::Python, &whole)
                    + indentation_errors(Language::Python, &tree, &whole),
                "{insert:?}"
            );
        }

        let rs = "/// Adds.\nfn add(a: i32, b: i32) -> i32 {\n    let c = a;\n    \n}\n";
        let cursor = rs.find("    \n}").unwrap() + 4;
        let s = CursorSyntax::parse(Language::Rust, rs).unwrap();
        let f = s.enclosing_function(rs, cursor).unwrap();
        assert_eq!(f.summary, "/// Adds. fn add(a: i32, b: i32) -> i32");
        assert_eq!(s.errors_with_insert(rs, cursor, "c + b"), 0);
        assert!(s.errors_with_insert(rs, cursor, "c + }") > 0);
    }
}

//! One parse of one file version, shared by everything a request asks of it: the tree, its
//! symbols, its error count and its line index, the function at a line, the stubs in it, and the
//! errors an edit would leave (an incremental re-parse of the same tree). Requests build one
//! [`ParsedFile`] and hand it down instead of parsing again. Pure: text in, facts out.

use tree_sitter::{InputEdit, Point, Tree};

use crate::parse::parse_file;
use crate::stub::{count_tree_errors, target_for};
use crate::{BodyEdit, ExtractedFile, FunctionTarget, Language, StubKind, extract::extract_tree};

/// A file version, parsed once.
pub struct ParsedFile {
    language: Language,
    rel_path: String,
    source: String,
    tree: Option<Tree>,
    file: ExtractedFile,
    errors: usize,
    line_starts: Vec<usize>,
}

impl std::fmt::Debug for ParsedFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParsedFile")
            .field("language", &self.language)
            .field("rel_path", &self.rel_path)
            .field("bytes", &self.source.len())
            .field("symbols", &self.file.symbols.len())
            .field("errors", &self.errors)
            .finish()
    }
}

fn point_at(source: &str, byte: usize) -> Point {
    let before = &source[..byte];
    let row = before.matches('\n').count();
    let column = byte - before.rfind('\n').map_or(0, |i| i + 1);
    Point { row, column }
}

impl ParsedFile {
    /// Parses `source` (workspace-relative `rel_path`, for module paths and test rules). Never
    /// fails: broken code yields what the tree allows.
    pub fn parse(language: Language, rel_path: &str, source: &str) -> ParsedFile {
        let tree = parse_file(language, source, None);
        let (file, errors) = match &tree {
            Some(t) => (
                extract_tree(language, rel_path, source, t),
                count_tree_errors(t),
            ),
            None => (ExtractedFile::default(), usize::MAX),
        };
        let line_starts = std::iter::once(0)
            .chain(source.match_indices('\n').map(|(i, _)| i + 1))
            .collect();
        ParsedFile {
            language,
            rel_path: rel_path.to_string(),
            source: source.to_string(),
            tree,
            file,
            errors,
            line_starts,
        }
    }

    pub fn language(&self) -> Language {
        self.language
    }

    pub fn rel_path(&self) -> &str {
        &self.rel_path
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    /// The file's symbols.
    pub fn extracted(&self) -> &ExtractedFile {
        &self.file
    }

    /// ERROR and MISSING nodes in the file as it is.
    pub fn errors(&self) -> usize {
        self.errors
    }

    /// Number of lines (a file with no newline has one).
    pub fn line_count(&self) -> usize {
        self.line_starts.len()
    }

    /// The 0-based line holding `byte`.
    pub fn line_of(&self, byte: usize) -> usize {
        match self.line_starts.binary_search(&byte) {
            Ok(l) => l,
            Err(l) => l - 1,
        }
    }

    /// Byte where the 0-based `line` starts (the end of the file past the last line).
    pub fn line_start(&self, line: usize) -> usize {
        self.line_starts
            .get(line)
            .copied()
            .unwrap_or(self.source.len())
    }

    /// The innermost function or method whose definition (doc comment included) spans `line`.
    pub fn function_at_line(&self, line: usize) -> Option<FunctionTarget> {
        let root = self.tree.as_ref()?.root_node();
        self.file
            .symbols
            .iter()
            .filter(|s| s.kind.is_callable() && s.end_line >= line)
            .filter_map(|s| target_for(self.language, &self.source, root, s))
            .filter(|t| t.doc_start_line <= line)
            .min_by_key(|t| t.symbol.end_byte - t.symbol.start_byte)
    }

    /// Every documented function whose body is a stub: the targets of "Generate function from
    /// docstring".
    pub fn stub_functions(&self) -> Vec<FunctionTarget> {
        let Some(tree) = &self.tree else {
            return Vec::new();
        };
        self.file
            .symbols
            .iter()
            .filter(|s| {
                s.kind.is_callable() && s.docstring.as_deref().is_some_and(|d| !d.trim().is_empty())
            })
            .filter_map(|s| target_for(self.language, &self.source, tree.root_node(), s))
            .filter(|t| t.stub != StubKind::Implemented)
            .collect()
    }

    /// The file's text with `edit` applied.
    pub fn with_edit(&self, edit: &BodyEdit) -> String {
        let (start, end) = self.clamp(edit);
        format!(
            "{}{}{}",
            &self.source[..start],
            edit.new_text,
            &self.source[end..]
        )
    }

    /// The file's text with every edit applied (non-overlapping; two inserting at the same place
    /// land in list order).
    pub fn with_edits(&self, edits: &[BodyEdit]) -> String {
        let mut order: Vec<usize> = (0..edits.len()).collect();
        order.sort_by_key(|i| std::cmp::Reverse((edits[*i].start, *i)));
        let mut s = self.source.clone();
        for i in order {
            let (start, end) = self.clamp(&edits[i]);
            s.replace_range(start..end, &edits[i].new_text);
        }
        s
    }

    fn clamp(&self, edit: &BodyEdit) -> (usize, usize) {
        let end = edit.end.min(self.source.len());
        (edit.start.min(end), end)
    }

    /// ERROR and MISSING nodes once every edit is applied: one parse (incremental for one edit).
    pub fn errors_after_edits(&self, edits: &[BodyEdit]) -> usize {
        match edits {
            [] => self.errors,
            [one] => self.errors_after(one),
            _ => match parse_file(self.language, &self.with_edits(edits), None) {
                Some(t) => count_tree_errors(&t),
                None => usize::MAX,
            },
        }
    }

    /// ERROR and MISSING nodes once `edit` is applied: one incremental re-parse that reuses the
    /// unchanged parts of this file's tree.
    pub fn errors_after(&self, edit: &BodyEdit) -> usize {
        let Some(tree) = &self.tree else {
            return usize::MAX;
        };
        let (start, end) = self.clamp(edit);
        let new_source = self.with_edit(edit);
        let new_end = start + edit.new_text.len();
        let mut old = tree.clone();
        old.edit(&InputEdit {
            start_byte: start,
            old_end_byte: end,
            new_end_byte: new_end,
            start_position: point_at(&self.source, start),
            old_end_position: point_at(&self.source, end),
            new_end_position: point_at(&new_source, new_end),
        });
        match parse_file(self.language, &new_source, Some(&old)) {
            Some(t) => count_tree_errors(&t),
            None => usize::MAX,
        }
    }
}

/// The innermost function or method whose definition spans `line` (one parse; a caller with a
/// [`ParsedFile`] asks it instead).
pub fn function_at_line(
    lang: Language,
    rel_path: &str,
    source: &str,
    line: usize,
) -> Option<FunctionTarget> {
    ParsedFile::parse(lang, rel_path, source).function_at_line(line)
}

/// Every documented stub in a file (one parse; a caller with a [`ParsedFile`] asks it instead).
pub fn stub_functions(lang: Language, rel_path: &str, source: &str) -> Vec<FunctionTarget> {
    ParsedFile::parse(lang, rel_path, source).stub_functions()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::count_syntax_errors;
    use crate::file_parses;

    const SRC: &str = "def f(x):\n    \"\"\"Twice x.\"\"\"\n    pass\n\n\ndef g():\n    return 1\n";

    #[test]
    fn one_parse_answers_every_question() {
        let before = file_parses();
        let p = ParsedFile::parse(Language::Python, "m.py", SRC);
        assert_eq!(p.function_at_line(1).unwrap().symbol.name, "f");
        assert_eq!(p.function_at_line(6).unwrap().symbol.name, "g");
        assert_eq!(p.stub_functions().len(), 1);
        assert_eq!(p.extracted().symbols.len(), 2);
        assert_eq!(p.errors(), 0);
        assert_eq!(file_parses() - before, 1);
    }

    #[test]
    fn errors_after_an_edit_match_a_fresh_parse() {
        let p = ParsedFile::parse(Language::Python, "m.py", SRC);
        let t = p.function_at_line(0).unwrap();
        for body in [
            "return x * 2",
            "return (x *",
            "if x:\n    return 1\nreturn 0",
        ] {
            let edit = crate::splice_body(&t, body);
            let whole = p.with_edit(&edit);
            assert_eq!(
                p.errors_after(&edit),
                count_syntax_errors(Language::Python, &whole),
                "{body}"
            );
        }
    }

    #[test]
    fn line_index() {
        let p = ParsedFile::parse(Language::Python, "m.py", "a\nbc\n");
        assert_eq!(p.line_count(), 3);
        assert_eq!(p.line_of(0), 0);
        assert_eq!(p.line_of(2), 1);
        assert_eq!(p.line_of(3), 1);
        assert_eq!(p.line_start(1), 2);
        assert_eq!(p.line_start(9), 5);
    }
}

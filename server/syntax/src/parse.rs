//! The one place a whole file is parsed, counting full-file parses per thread so tests can hold
//! the "one parse per file version" invariant (a model's answer or a chunk inside a file is not
//! a file version and is not counted). Pure.

use std::cell::Cell;

use tree_sitter::{Parser, Tree};

use crate::Language;

thread_local! {
    static FILE_PARSES: Cell<u64> = const { Cell::new(0) };
}

/// Full-file parses (first parses and incremental re-parses of a file version) on this thread
/// so far.
pub fn file_parses() -> u64 {
    FILE_PARSES.with(Cell::get)
}

/// Parses a whole file (re-using `old`, already edited, when given).
pub(crate) fn parse_file(lang: Language, source: &str, old: Option<&Tree>) -> Option<Tree> {
    FILE_PARSES.with(|c| c.set(c.get() + 1));
    let mut p = Parser::new();
    p.set_language(&lang.grammar()).ok()?;
    p.parse(source, old)
}

//! The one place a whole file is parsed, counting full-file parses per thread so tests can hold
//! the "one parse per file version" invariant (a model's answer or a chunk inside a file is not
//! a file version and is not counted). Pure.

use std::cell::{Cell, RefCell};

use tree_sitter::{Parser, Tree};

use crate::Language;

thread_local! {
    static FILE_PARSES: Cell<u64> = const { Cell::new(0) };
    /// One parser per thread: a new one per file re-grew its stacks and buffers each time.
    static PARSER: RefCell<Option<Parser>> = const { RefCell::new(None) };
}

/// Full-file parses (first parses and incremental re-parses of a file version) on this thread
/// so far.
pub fn file_parses() -> u64 {
    FILE_PARSES.with(Cell::get)
}

/// Routes tree-sitter's own allocations (each node of each tree is a `malloc`, each dropped tree
/// a `free` per node) to mimalloc: the extraction pass spent about a tenth of its time in glibc's
/// allocator. Rust's allocations stay with the system allocator (its arenas are set in `main`).
///
/// # Safety
/// Call first thing in `main`, before any thread starts and before any tree-sitter object
/// exists (tree-sitter's `set_allocator` contract); at most once.
pub unsafe fn install_tree_allocator() {
    // SAFETY: the caller guarantees no tree-sitter object exists yet and no other thread runs;
    // the four functions are one allocator family with malloc's alignment.
    unsafe {
        tree_sitter::set_allocator(Some(tree_sitter::Allocator {
            malloc: libmimalloc_sys::mi_malloc,
            calloc: libmimalloc_sys::mi_calloc,
            realloc: libmimalloc_sys::mi_realloc,
            free: libmimalloc_sys::mi_free,
        }));
    }
}

/// Parses a whole file (re-using `old`, already edited, when given).
pub(crate) fn parse_file(lang: Language, source: &str, old: Option<&Tree>) -> Option<Tree> {
    FILE_PARSES.with(|c| c.set(c.get() + 1));
    PARSER.with(|cell| {
        // Parsing calls nothing back, so the parser is never borrowed twice.
        let mut slot = cell.borrow_mut();
        let p = slot.get_or_insert_with(Parser::new);
        p.set_language(&lang.grammar()).ok()?;
        p.parse(source, old)
    })
}

//! Giving freed heap back to the system after the index's large phases. glibc keeps what a
//! phase freed (the parse batches, LanceDB's write and scan buffers) in its arenas, so without this
//! the process keeps the lexical phase's peak as its floor for the rest of its life.

/// Returns free pages of every malloc arena to the kernel (`malloc_trim(0)`: a few milliseconds
/// for a heap of some hundred MB). Call after a phase that allocated much and freed it; not on
/// the edit path.
pub(crate) fn release_freed() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks the allocator's own free lists; any thread may call it.
    unsafe {
        libc::malloc_trim(0);
    }
}

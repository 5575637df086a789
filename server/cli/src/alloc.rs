//! The allocator's arenas: glibc gives each thread that allocates its own arena, up to 8 per
//! core, and memory freed in one is not reused by another. The index's threads (tokio, the model's
//! pool, LanceDB's) then left Django's cold index with vectors at 831 MB peak RSS instead of 433
//! at the same speed (bench_index, 2 cores). One arena per core, at most 8, before any thread.
//! `MALLOC_ARENA_MAX` in the environment wins.
//!
//! And LanceDB's read-ahead: a scan buffers up to `LANCE_DEFAULT_IO_BUFFER_SIZE` (2 GiB unless
//! set) of column data ahead of its consumer, so reading the JDK's 336 MB of vectors into the name
//! layer held most of them twice at the peak (846 MB serving). [`limit_scan_buffers`] caps it.

/// Call first thing in `main`, before any thread starts.
pub fn limit_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        if std::env::var_os("MALLOC_ARENA_MAX").is_some() {
            return;
        }
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        // SAFETY: mallopt only sets a tunable; no thread has allocated yet.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, cores.clamp(2, 8) as libc::c_int);
        }
    }
}

/// LanceDB's scan read-ahead, when the environment does not set one: enough to keep a local disk
/// busy, small beside the index.
const SCAN_BUFFER_BYTES: u64 = 32 << 20;

/// Call first thing in `main`, before any thread starts (it sets an environment variable).
pub fn limit_scan_buffers() {
    const VAR: &str = "LANCE_DEFAULT_IO_BUFFER_SIZE";
    if std::env::var_os(VAR).is_none() {
        // SAFETY: no other thread exists yet to read the environment concurrently.
        unsafe { std::env::set_var(VAR, SCAN_BUFFER_BYTES.to_string()) };
    }
}

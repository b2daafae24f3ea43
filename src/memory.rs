//! Keeps the process's resident memory flat however long an upload runs.
//!
//! glibc gives threads that allocate their own malloc arenas (up to eight per core) and keeps
//! freed buffers cached in each. An upload passes 256 KiB buffers between the async workers and
//! the blocking pool, so over a long upload more arenas end up holding freed buffers and resident
//! memory creeps up with the file size: 25 MiB for 1 GiB, 28 MiB for 10 GiB, measured with
//! `bench/compare.sh` (workload C). Two arenas keep it flat — 20.5 MiB for both — at no
//! measurable cost in speed (BENCHMARKS.md).

/// Caps glibc's malloc arenas at two. Call first thing in `main`, before any thread starts.
pub fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes a tuning parameter of glibc's allocator; it is called before
    // the process starts other threads.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

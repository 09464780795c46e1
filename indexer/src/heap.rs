//! The process heap, handed back to the operating system after a transient peak.
//!
//! glibc keeps what a thread frees in that thread's arena for reuse, so memory a phase
//! needed only briefly (optimising the model's graph, tantivy's indexing threads) stays in
//! the resident set for the process's life unless it is trimmed.

/// Returns the heap's free memory to the operating system; nothing on other platforms.
pub fn release_freed() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        unsafe extern "C" {
            fn malloc_trim(pad: usize) -> std::ffi::c_int;
        }
        // SAFETY: glibc's `malloc_trim` takes a byte count, touches only the allocator's
        // own free lists under their locks, and may be called from any thread at any time.
        unsafe {
            malloc_trim(0);
        }
    }
}

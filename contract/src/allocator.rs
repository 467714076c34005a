//! The allocator's settings: every lanner binary keeps the memory it frees for its next
//! allocations instead of handing it back to the kernel.
//!
//! mimalloc (the global allocator of every lanner binary) returns freed memory to the
//! kernel soon after it was freed. The stages allocate and free the same amount for every
//! batch (and a query hundreds of MB of Arrow buffers), so the next batch or query
//! faulted the same memory in again, and the kernel zeroed it first (transparent huge
//! pages: 2 MiB at a time): 7–12 % of lanner-query's CPU in a run of the hunting queries
//! and ~5 % of a JSON-lines replay's (`perf`, `clear_page_erms`). A process keeps its
//! peak size instead, which its batch sizes (and a query session's memory limit) bound.
//! `MIMALLOC_PURGE_DELAY` in the environment (milliseconds, as mimalloc reads it) takes
//! precedence.
//!
//! Call [`keep_freed_memory`] first thing in `main`.
#![allow(unsafe_code)]

/// mimalloc's `mi_option_purge_delay` (v3 numbering, checked by a test against the
/// option's documented default).
const PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Keeps freed memory (see the module docs), unless `MIMALLOC_PURGE_DELAY` is set.
pub fn keep_freed_memory() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: sets one of mimalloc's options; any value is valid for this one.
        unsafe { libmimalloc_sys::mi_option_set(PURGE_DELAY, -1) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_option_is_the_purge_delay() {
        // SAFETY: reads an option.
        let default = unsafe { libmimalloc_sys::mi_option_get(PURGE_DELAY) };
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
            // mimalloc v3's documented default purge delay, in milliseconds.
            assert_eq!(default, 1000);
        }
        keep_freed_memory();
        // SAFETY: reads an option.
        let now = unsafe { libmimalloc_sys::mi_option_get(PURGE_DELAY) };
        if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
            assert_eq!(now, -1);
        }
    }
}

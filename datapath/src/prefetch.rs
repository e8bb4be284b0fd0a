//! Cache prefetch hints: ask for a cache line before the code that needs it runs.
//!
//! With thousands of connections, each received segment's table bucket, table entry,
//! socket slot and `Tcb` are usually cold; looked up one after another they cost a
//! chain of dependent cache misses per frame. The engine walks a received burst once
//! ahead of processing it and asks for those lines (`surge_stack`'s `engine::prefetch`),
//! so the misses of one burst overlap instead of queuing (DPDK's `rte_hash_lookup_bulk`
//! does the same). It lives here because the stack keeps no `unsafe` of its own.

/// Asks the CPU to bring the cache line holding `p` into all cache levels. Only a hint:
/// the line may not arrive, and nothing is read into the program.
#[inline(always)]
pub fn prefetch<T>(p: *const T) {
    #[cfg(target_arch = "x86_64")]
    // Safety: PREFETCHT0 never faults, whatever the address (Intel SDM, PREFETCHh:
    // "prefetches ... do not cause exceptions"), and it neither reads memory into the
    // program nor writes any; SSE is part of the x86_64 baseline.
    unsafe {
        core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(p.cast());
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}

/// Prefetches the `lines` cache lines starting at the one that holds `p`.
#[inline(always)]
pub fn prefetch_lines<T>(p: *const T, lines: usize) {
    let base = p.cast::<u8>();
    for i in 0..lines {
        prefetch(base.wrapping_add(i * 64));
    }
}

//! A counting global allocator for the memory and no-allocation tests and for
//! `surge-bench idle-memory`: it forwards every call to the system allocator unchanged
//! and keeps, beside it, the process's live heap bytes (allocated minus freed) and the
//! number of allocations made by a thread inside [`count_allocations`].
//!
//! It lives here because `datapath/` is where surge's `unsafe` is allowed; a test binary
//! installs it without any `unsafe` of its own:
//!
//! ```
//! #[global_allocator]
//! static ALLOCATOR: surge_datapath::alloc_count::CountingAllocator =
//!     surge_datapath::alloc_count::CountingAllocator;
//!
//! let before = surge_datapath::alloc_count::live_bytes();
//! let block = vec![1u8; 1 << 20];
//! assert!(surge_datapath::alloc_count::live_bytes() >= before + (1 << 20) as isize);
//! drop(block);
//! ```
//!
//! The counts mean something only in a binary that installed it; keep one measuring test
//! per binary, since the live-byte count is process-wide.

use std::{
    alloc::{GlobalAlloc, Layout, System},
    cell::Cell,
    sync::atomic::{AtomicIsize, AtomicU64, Ordering},
};

/// The system allocator with counters beside it (see the module doc).
#[derive(Debug, Clone, Copy, Default)]
pub struct CountingAllocator;

static LIVE: AtomicIsize = AtomicIsize::new(0);
static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);
static ALL_ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

thread_local! {
    static WATCHING: Cell<bool> = const { Cell::new(false) };
}

fn counted_allocation() {
    ALL_ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
    if WATCHING.with(Cell::get) {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
    }
}

// Safety: every call is forwarded unchanged to the system allocator; only counters are
// updated beside it.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        counted_allocation();
        // Safety: same contract as ours.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        counted_allocation();
        // Safety: same contract as ours.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // Safety: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        counted_allocation();
        // Safety: same contract as ours.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            LIVE.fetch_add(
                new_size as isize - layout.size() as isize,
                Ordering::Relaxed,
            );
        }
        p
    }
}

/// Heap bytes live in the process now (requested sizes, without the allocator's overhead).
pub fn live_bytes() -> isize {
    LIVE.load(Ordering::Relaxed)
}

/// Allocations and reallocations made by every thread of the process so far (for
/// benchmarks that count allocations per request across threads).
pub fn total_allocations() -> u64 {
    ALL_ALLOCATIONS.load(Ordering::Relaxed)
}

/// Runs `f` on this thread and returns its result with the number of allocations and
/// reallocations it made.
pub fn count_allocations<R>(f: impl FnOnce() -> R) -> (R, u64) {
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    WATCHING.with(|w| w.set(true));
    let result = f();
    WATCHING.with(|w| w.set(false));
    (result, ALLOCATIONS.load(Ordering::Relaxed) - before)
}

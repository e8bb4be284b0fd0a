//! [`BufferPool`]: the ring buffers' storage, reused instead of allocated per connection.
//!
//! Each new connection used to allocate and zero its rings (2 x 256 KiB) on its first
//! byte and free them at close, and the kernel faulted the pages in again every time:
//! under `Connection: close` that was most of the server's CPU. Now a ring takes its
//! storage from the pool of the thread that runs its engine and gives it back when it
//! is dropped (connection freed) or drained ([`super::Tcb::release_idle_buffers`]): once
//! warm there is no allocation, no zeroing and no page fault per connection, and an
//! idle connection holds no buffer memory.
//!
//! Storage comes in size classes, powers of two from [`MIN_CLASS`] bytes: a ring of
//! capacity `c` takes the smallest class that holds `c`. That is also the seam for
//! autotuning (issue 14: a receive buffer grown from rate x RTT, a send buffer following
//! cwnd): growing a ring means taking a block of a larger class, copying the queued
//! bytes over and giving the small block back; shrinking is the reverse. No class ever
//! needs a block of another.
//!
//! The pool keeps idle blocks up to the larger of [`BufferPool::idle_limit`] (the engine
//! sets it from its configuration, `EngineConfig::buffer_pool_bytes`) and its working
//! set: the most bytes its rings held at once lately (over the last [`EPOCH_GIVES`]
//! blocks given back, or the epoch before). Blocks given back beyond that are freed.
//! Keeping the working set costs no memory the connections did not just hold, and 10,000
//! request/response connections, whose rings drain and fill again on every request, then
//! take their blocks from the pool instead of from `calloc` and fresh pages (before, with
//! 64 MiB kept, 10,000 connections ran at a third of one connection's rate in memory;
//! now at about 0.6 to 0.7 of it). When the load falls, the next epochs trim the pool
//! to the new working set. Blocks in use are the connections' own and are bounded by
//! their buffer sizes and the connection limits.
//!
//! The pool is per thread, and an engine runs on one thread, so it is the engine's
//! pool without a lock or an atomic. Reused blocks are not zeroed: a ring only reads
//! bytes it wrote.

use std::cell::{Cell, RefCell};

/// The smallest block (bytes).
pub const MIN_CLASS: usize = 256;
/// Size classes: 256 B .. 2^(8 + CLASSES - 1) bytes (64 MiB); larger rings are
/// allocated and freed directly.
const CLASSES: usize = 19;
/// Idle bytes kept when nobody configured the pool.
pub const DEFAULT_IDLE_LIMIT: usize = 64 << 20;
/// Blocks given back per working-set epoch: the idle cap follows the peak of bytes lent
/// out over the current and the previous epoch.
pub const EPOCH_GIVES: u32 = 1 << 16;

/// Counters of one pool, plain integers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BufferPoolStats {
    /// Blocks handed out from the idle lists (no allocation).
    pub reused: u64,
    /// Blocks allocated because the class had none idle.
    pub allocated: u64,
    /// Blocks given back and kept.
    pub returned: u64,
    /// Blocks given back and freed: the idle limit was reached.
    pub freed: u64,
}

/// Idle ring storage by size class.
#[derive(Debug)]
pub struct BufferPool {
    idle: [Vec<Box<[u8]>>; CLASSES],
    idle_bytes: usize,
    idle_limit: usize,
    /// Bytes of classed blocks handed out and not given back.
    lent_bytes: usize,
    /// The most bytes lent at once in this epoch.
    epoch_peak: usize,
    /// The working set: the peak of this epoch and the previous one.
    working_set: usize,
    /// Blocks given back in this epoch.
    epoch_gives: u32,
    /// Traffic.
    pub stats: BufferPoolStats,
}

impl Default for BufferPool {
    fn default() -> Self {
        BufferPool::new(DEFAULT_IDLE_LIMIT)
    }
}

/// The class index and block size for a ring of `capacity` bytes (`None`: too large
/// for a class).
fn class_of(capacity: usize) -> Option<(usize, usize)> {
    let size = capacity.max(MIN_CLASS).checked_next_power_of_two()?;
    let index = (size.trailing_zeros() - MIN_CLASS.trailing_zeros()) as usize;
    (index < CLASSES).then_some((index, size))
}

impl BufferPool {
    /// A pool keeping at most `idle_limit` bytes of idle blocks.
    pub fn new(idle_limit: usize) -> Self {
        BufferPool {
            idle: Default::default(),
            idle_bytes: 0,
            idle_limit,
            lent_bytes: 0,
            epoch_peak: 0,
            working_set: 0,
            epoch_gives: 0,
            stats: BufferPoolStats::default(),
        }
    }

    /// The most idle bytes kept.
    pub fn idle_limit(&self) -> usize {
        self.idle_limit
    }

    /// Idle bytes held now.
    pub fn idle_bytes(&self) -> usize {
        self.idle_bytes
    }

    /// Bytes of classed blocks lent to rings now (held by connections).
    pub fn lent_bytes(&self) -> usize {
        self.lent_bytes
    }

    /// The most idle bytes kept now: the idle limit or the working set, the larger.
    pub fn idle_cap(&self) -> usize {
        self.idle_limit.max(self.working_set)
    }

    /// Changes the idle limit, freeing idle blocks beyond the new cap.
    pub fn set_idle_limit(&mut self, limit: usize) {
        self.idle_limit = limit;
        self.trim();
    }

    /// Frees idle blocks, largest classes first, until the idle bytes fit the cap.
    fn trim(&mut self) {
        let cap = self.idle_cap();
        for class in self.idle.iter_mut().rev() {
            while self.idle_bytes > cap {
                let Some(block) = class.pop() else { break };
                self.idle_bytes -= block.len();
                self.stats.freed += 1;
            }
        }
    }

    /// A block of at least `capacity` bytes (its class size; contents unspecified).
    pub fn take(&mut self, capacity: usize) -> Box<[u8]> {
        let Some((index, size)) = class_of(capacity) else {
            self.stats.allocated += 1;
            return vec![0; capacity].into_boxed_slice();
        };
        self.lent_bytes += size;
        self.epoch_peak = self.epoch_peak.max(self.lent_bytes);
        self.working_set = self.working_set.max(self.lent_bytes);
        if let Some(block) = self.idle[index].pop() {
            self.idle_bytes -= block.len();
            self.stats.reused += 1;
            return block;
        }
        self.stats.allocated += 1;
        vec![0; size].into_boxed_slice()
    }

    /// Gives a block back: kept for reuse within the idle cap ([`Self::idle_cap`]), freed
    /// beyond it.
    pub fn give(&mut self, block: Box<[u8]>) {
        let len = block.len();
        let classed = class_of(len).filter(|&(_, size)| size == len);
        if classed.is_some() {
            self.lent_bytes = self.lent_bytes.saturating_sub(len);
            self.epoch_gives += 1;
            if self.epoch_gives >= EPOCH_GIVES {
                // A new epoch: the working set is the peak of the one that ended and
                // of this one so far (what is lent now).
                self.working_set = self.epoch_peak.max(self.lent_bytes);
                self.epoch_peak = self.lent_bytes;
                self.epoch_gives = 0;
                self.trim();
            }
        }
        match classed {
            Some((index, _)) if self.idle_bytes + len <= self.idle_cap() => {
                self.idle_bytes += len;
                self.idle[index].push(block);
                self.stats.returned += 1;
            }
            _ => self.stats.freed += 1,
        }
    }
}

thread_local! {
    static POOL: RefCell<BufferPool> = RefCell::new(BufferPool::default());
    /// A copy of `POOL`'s [`BufferPool::lent_bytes`], updated by every access to the
    /// pool below (the only ones). Constant-initialised and without drop glue, so a read
    /// is one load: `POOL`, lazily initialised and dropped at thread exit, is checked for
    /// both on every access (the settling of each connection asks, after every segment
    /// in and out: some 8 instructions each time).
    static LENT: Cell<usize> = const { Cell::new(0) };
}

/// Runs `f` on this thread's pool.
pub fn with_pool<R>(f: impl FnOnce(&mut BufferPool) -> R) -> R {
    POOL.with(|p| {
        let mut p = p.borrow_mut();
        let r = f(&mut p);
        LENT.set(p.lent_bytes);
        r
    })
}

/// This thread's pool's [`BufferPool::lent_bytes`], without touching the pool.
#[inline(always)]
pub(super) fn lent_bytes() -> usize {
    LENT.get()
}

/// A block from this thread's pool (see [`BufferPool::take`]).
pub(super) fn take(capacity: usize) -> Box<[u8]> {
    // `try_with`: during thread teardown the pool may be gone; allocate then.
    POOL.try_with(|p| {
        let mut p = p.borrow_mut();
        let block = p.take(capacity);
        LENT.set(p.lent_bytes);
        block
    })
    .unwrap_or_else(|_| vec![0; capacity].into_boxed_slice())
}

/// Gives a block back to this thread's pool (see [`BufferPool::give`]).
pub(super) fn give(block: Box<[u8]>) {
    // During thread teardown the block is simply freed.
    let _ = POOL.try_with(|p| {
        let mut p = p.borrow_mut();
        p.give(block);
        LENT.set(p.lent_bytes);
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_are_powers_of_two_from_256_bytes() {
        assert_eq!(class_of(1), Some((0, 256)));
        assert_eq!(class_of(256), Some((0, 256)));
        assert_eq!(class_of(257), Some((1, 512)));
        assert_eq!(class_of(4097), Some((5, 8192)));
        assert_eq!(class_of(256 * 1024), Some((10, 256 * 1024)));
        assert_eq!(class_of(64 << 20), Some((18, 64 << 20)));
        assert_eq!(class_of((64 << 20) + 1), None);
    }

    #[test]
    fn blocks_are_reused_within_the_working_set() {
        let mut pool = BufferPool::new(3 * 8192);
        let a = pool.take(5000);
        assert_eq!(a.len(), 8192);
        let (b, c, d) = (pool.take(8192), pool.take(8000), pool.take(6000));
        assert_eq!(pool.stats.allocated, 4);
        assert_eq!(
            pool.idle_cap(),
            4 * 8192,
            "the working set is above the limit"
        );
        for block in [a, b, c, d] {
            pool.give(block);
        }
        assert_eq!(
            pool.stats.returned, 4,
            "all four were held at once: all kept"
        );
        assert_eq!(pool.stats.freed, 0);
        assert_eq!(pool.idle_bytes(), 4 * 8192);
        let again = pool.take(7000);
        assert_eq!(again.len(), 8192);
        assert_eq!(pool.stats.reused, 1);
        assert_eq!(pool.stats.allocated, 4, "no new allocation");
        // Another class does not take from this one.
        let small = pool.take(100);
        assert_eq!(small.len(), 256);
        assert_eq!(pool.stats.allocated, 5);
        // The working set (4 x 8 KiB) still holds the three idle ones.
        pool.set_idle_limit(8192);
        assert_eq!(pool.idle_bytes(), 3 * 8192);
    }

    #[test]
    fn the_working_set_follows_the_load_down() {
        let mut pool = BufferPool::new(0);
        // A burst: 1,000 rings hold a block at once, then all drain.
        let blocks: Vec<_> = (0..1000).map(|_| pool.take(4096)).collect();
        blocks.into_iter().for_each(|b| pool.give(b));
        assert_eq!(
            pool.idle_bytes(),
            1000 * 4096,
            "the burst's blocks are kept"
        );
        // Then two epochs of one ring at a time: the pool shrinks to that.
        for _ in 0..2 * EPOCH_GIVES {
            let b = pool.take(4096);
            pool.give(b);
        }
        assert_eq!(pool.stats.allocated, 1000, "every take reused a block");
        assert!(pool.idle_cap() <= 4096, "cap {}", pool.idle_cap());
        assert!(pool.idle_bytes() <= 4096, "idle {}", pool.idle_bytes());
        assert!(pool.stats.freed >= 999);
    }

    #[test]
    fn the_lent_copy_follows_the_thread_pool() {
        // Each test runs on its own thread: a pool of its own.
        let pooled = || with_pool(|p| p.lent_bytes());
        assert_eq!(lent_bytes(), pooled());
        let a = take(5000);
        let b = take(100);
        // An unclassed block (too large) is not lent from a class.
        let huge = take((64 << 20) + 1);
        assert_eq!(pooled(), 8192 + 256);
        assert_eq!(lent_bytes(), pooled());
        give(a);
        assert_eq!(lent_bytes(), 256);
        give(huge);
        give(b);
        assert_eq!(lent_bytes(), 0);
        assert_eq!(lent_bytes(), pooled());
        // A change made through `with_pool` is seen too.
        let c = with_pool(|p| p.take(300));
        assert_eq!(lent_bytes(), 512);
        give(c);
        assert_eq!(lent_bytes(), pooled());
    }
}

//! Single-producer / single-consumer descriptor rings shared with the kernel.
//!
//! An AF_XDP socket has four rings: fill and TX (we produce, the kernel
//! consumes), RX and completion (the kernel produces, we consume). The two
//! newtypes [`ProducerRing`] and [`ConsumerRing`] make using a ring from the
//! wrong side a type error. Both cache the other side's index so the shared
//! cache line is read only when the cached view runs out, as libxdp does.
//!
//! The rings work over any memory laid out as `producer`, `consumer`, `flags`
//! words plus a power-of-two descriptor array, so they are unit-tested over
//! anonymous memory with no NIC (see the tests at the bottom).

use std::{
    marker::PhantomData,
    ptr::NonNull,
    sync::atomic::{AtomicU32, Ordering},
};

use crate::mmap::Mmap;

/// One RX/TX descriptor (`struct xdp_desc` of `linux/if_xdp.h`).
#[repr(C)]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct XdpDesc {
    /// Offset of the packet in the UMEM.
    pub addr: u64,
    /// Packet length.
    pub len: u32,
    /// Option bits (`XDP_PKT_CONTD`, `XDP_TX_METADATA`).
    pub options: u32,
}

/// Pointers into the memory of one ring.
#[derive(Debug)]
pub(crate) struct RingMem<T> {
    producer: NonNull<AtomicU32>,
    consumer: NonNull<AtomicU32>,
    flags: NonNull<AtomicU32>,
    descs: NonNull<T>,
    size: u32,
    /// Keeps the memory mapped for as long as the ring lives.
    _map: Mmap,
}

// Safety: the ring memory is owned by `_map`; the atomics are shared with the
// kernel (or a test peer) only through the SPSC protocol below, and exactly one
// Rust value owns each side.
unsafe impl<T: Send> Send for RingMem<T> {}

impl<T> RingMem<T> {
    /// Builds ring pointers from a mapping and the byte offsets of its parts.
    ///
    /// # Safety
    /// `map` must hold, at the given offsets, three naturally aligned `u32`
    /// words and `size` (a power of two) aligned `T`s, all inside the mapping.
    pub(crate) unsafe fn new(
        map: Mmap,
        producer: usize,
        consumer: usize,
        flags: usize,
        descs: usize,
        size: u32,
    ) -> Self {
        let base = map.as_ptr();
        // Safety: the caller guarantees every offset lies inside `map`, so the
        // `add`s stay in bounds and the pointers are non-null.
        unsafe {
            Self {
                producer: NonNull::new_unchecked(base.add(producer).cast()),
                consumer: NonNull::new_unchecked(base.add(consumer).cast()),
                flags: NonNull::new_unchecked(base.add(flags).cast()),
                descs: NonNull::new_unchecked(base.add(descs).cast()),
                size,
                _map: map,
            }
        }
    }

    fn producer(&self) -> &AtomicU32 {
        // Safety: valid, aligned and alive for `self`'s lifetime (constructor contract).
        unsafe { self.producer.as_ref() }
    }

    fn consumer(&self) -> &AtomicU32 {
        // Safety: as for `producer`.
        unsafe { self.consumer.as_ref() }
    }

    fn flags(&self) -> &AtomicU32 {
        // Safety: as for `producer`.
        unsafe { self.flags.as_ref() }
    }

    fn slot(&self, index: u32) -> *mut T {
        // Safety: the index is masked to `size - 1` and the array holds `size`
        // elements (constructor contract), so the pointer stays in bounds.
        unsafe { self.descs.as_ptr().add((index & (self.size - 1)) as usize) }
    }
}

/// The side of a ring we produce into (fill, TX).
#[derive(Debug)]
pub(crate) struct ProducerRing<T> {
    mem: RingMem<T>,
    /// Our producer index (published on `submit`).
    cached_producer: u32,
    /// The consumer index plus `size`: we may write up to here.
    cached_limit: u32,
    _marker: PhantomData<T>,
}

impl<T: Copy> ProducerRing<T> {
    /// Wraps the memory of a ring we produce into.
    pub(crate) fn new(mem: RingMem<T>) -> Self {
        let cached_producer = mem.producer().load(Ordering::Relaxed);
        let cached_limit = mem
            .consumer()
            .load(Ordering::Acquire)
            .wrapping_add(mem.size);
        Self {
            mem,
            cached_producer,
            cached_limit,
            _marker: PhantomData,
        }
    }

    /// Free slots, refreshing the consumer index only when fewer than `want` are cached.
    #[inline]
    pub(crate) fn free(&mut self, want: u32) -> u32 {
        let free = self.cached_limit.wrapping_sub(self.cached_producer);
        if free >= want {
            return free;
        }
        self.cached_limit = self
            .mem
            .consumer()
            .load(Ordering::Acquire)
            .wrapping_add(self.mem.size);
        self.cached_limit.wrapping_sub(self.cached_producer)
    }

    /// Writes slot `i` past the producer index; call `free` first, `i < free`.
    #[inline]
    pub(crate) fn write(&mut self, i: u32, value: T) {
        debug_assert!(i < self.cached_limit.wrapping_sub(self.cached_producer));
        let slot = self.mem.slot(self.cached_producer.wrapping_add(i));
        // Safety: `slot` is in bounds (masked) and, since `i` is below the free
        // count, the consumer has released it: nobody else reads or writes it.
        unsafe { slot.write(value) };
    }

    /// Publishes `n` written slots to the consumer.
    #[inline]
    pub(crate) fn submit(&mut self, n: u32) {
        self.cached_producer = self.cached_producer.wrapping_add(n);
        self.mem
            .producer()
            .store(self.cached_producer, Ordering::Release);
    }

    /// Whether the kernel asked for a wakeup (`XDP_RING_NEED_WAKEUP`).
    #[inline]
    pub(crate) fn needs_wakeup(&self) -> bool {
        self.mem.flags().load(Ordering::Relaxed) & libc::XDP_RING_NEED_WAKEUP != 0
    }

    /// Entries published but not yet consumed by the other side.
    #[inline]
    pub(crate) fn outstanding(&self) -> u32 {
        self.cached_producer
            .wrapping_sub(self.mem.consumer().load(Ordering::Acquire))
    }

    /// Ring size.
    pub(crate) fn size(&self) -> u32 {
        self.mem.size
    }
}

/// The side of a ring we consume from (RX, completion).
#[derive(Debug)]
pub(crate) struct ConsumerRing<T> {
    mem: RingMem<T>,
    cached_consumer: u32,
    cached_producer: u32,
    _marker: PhantomData<T>,
}

impl<T: Copy> ConsumerRing<T> {
    /// Wraps the memory of a ring we consume from.
    pub(crate) fn new(mem: RingMem<T>) -> Self {
        let cached_consumer = mem.consumer().load(Ordering::Relaxed);
        let cached_producer = mem.producer().load(Ordering::Acquire);
        Self {
            mem,
            cached_consumer,
            cached_producer,
            _marker: PhantomData,
        }
    }

    /// Entries ready to read (at most `want`), refreshing the producer index
    /// only when fewer than `want` are cached.
    #[inline]
    pub(crate) fn available(&mut self, want: u32) -> u32 {
        let mut n = self.cached_producer.wrapping_sub(self.cached_consumer);
        if n < want {
            self.cached_producer = self.mem.producer().load(Ordering::Acquire);
            n = self.cached_producer.wrapping_sub(self.cached_consumer);
        }
        // A peer that publishes a producer index more than `size` ahead is
        // broken; never read more than one ring's worth.
        n.min(want).min(self.mem.size)
    }

    /// Reads entry `i` past the consumer index; `i < available`.
    #[inline]
    pub(crate) fn read(&self, i: u32) -> T {
        let slot = self.mem.slot(self.cached_consumer.wrapping_add(i));
        // Safety: in bounds (masked); the producer published this slot
        // (Acquire above) and will not reuse it until we release it.
        unsafe { slot.read() }
    }

    /// Hands `n` read entries back to the producer.
    #[inline]
    pub(crate) fn release(&mut self, n: u32) {
        self.cached_consumer = self.cached_consumer.wrapping_add(n);
        self.mem
            .consumer()
            .store(self.cached_consumer, Ordering::Release);
    }

    /// Whether the kernel asked for a wakeup (`XDP_RING_NEED_WAKEUP`).
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) fn needs_wakeup(&self) -> bool {
        self.mem.flags().load(Ordering::Relaxed) & libc::XDP_RING_NEED_WAKEUP != 0
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    const PRODUCER: usize = 0;
    const CONSUMER: usize = 64;
    const FLAGS: usize = 128;
    const DESCS: usize = 192;

    /// A ring over anonymous memory, seen from both sides, as the kernel would.
    pub(crate) fn ring_pair<T: Copy>(size: u32) -> (ProducerRing<T>, ConsumerRing<T>) {
        let len = DESCS + size as usize * std::mem::size_of::<T>();
        let map = Mmap::anonymous(len, false).expect("anonymous mmap");
        let base = map.as_ptr();
        // Safety: the second view aliases the first mapping, which the
        // producer ring keeps alive; the test drops the consumer first or both
        // together, and neither view unmaps on its own (see below).
        let alias = unsafe { Mmap::alias_for_tests(base, len) };
        // Safety: offsets are inside the `len`-byte mapping and aligned.
        let producer = unsafe { RingMem::new(map, PRODUCER, CONSUMER, FLAGS, DESCS, size) };
        // Safety: as above.
        let consumer = unsafe { RingMem::new(alias, PRODUCER, CONSUMER, FLAGS, DESCS, size) };
        (ProducerRing::new(producer), ConsumerRing::new(consumer))
    }

    #[test]
    fn empty_ring_has_nothing_to_read_and_all_slots_free() {
        let (mut p, mut c) = ring_pair::<u64>(8);
        assert_eq!(c.available(64), 0);
        assert_eq!(p.free(1), 8);
    }

    #[test]
    fn produce_then_consume_in_order_across_wraparound() {
        let (mut p, mut c) = ring_pair::<u64>(8);
        let mut next_in = 0u64;
        let mut next_out = 0u64;
        for round in 0..20u32 {
            let want = 1 + round % 7;
            let free = p.free(want).min(want);
            for i in 0..free {
                p.write(i, next_in);
                next_in += 1;
            }
            p.submit(free);
            let n = c.available(64);
            for i in 0..n {
                assert_eq!(c.read(i), next_out);
                next_out += 1;
            }
            c.release(n);
        }
        assert_eq!(next_in, next_out);
        assert!(next_in > 8 * 3, "wrapped several times");
    }

    #[test]
    fn full_ring_refuses_more_until_consumer_releases() {
        let (mut p, mut c) = ring_pair::<XdpDesc>(4);
        let free = p.free(4);
        assert_eq!(free, 4);
        for i in 0..4 {
            p.write(
                i,
                XdpDesc {
                    addr: u64::from(i),
                    len: 60,
                    options: 0,
                },
            );
        }
        p.submit(4);
        assert_eq!(p.free(1), 0, "ring full");
        assert_eq!(p.outstanding(), 4);
        assert_eq!(c.available(2), 2, "bounded by want");
        assert_eq!(c.read(1).addr, 1);
        c.release(2);
        assert_eq!(p.free(1), 2);
        assert_eq!(p.outstanding(), 2);
    }

    #[test]
    fn consumer_never_reads_more_than_one_ring_from_a_broken_producer() {
        let (p, mut c) = ring_pair::<u64>(4);
        // A broken producer publishes an index far ahead.
        p.mem.producer().store(1000, Ordering::Release);
        assert_eq!(c.available(u32::MAX), 4);
    }

    #[test]
    fn need_wakeup_flag_is_seen_by_both_sides() {
        let (p, c) = ring_pair::<u64>(4);
        assert!(!p.needs_wakeup());
        p.mem
            .flags()
            .store(libc::XDP_RING_NEED_WAKEUP, Ordering::Relaxed);
        assert!(p.needs_wakeup());
        assert!(c.needs_wakeup());
    }

    proptest::proptest! {
        #[test]
        fn any_batch_sequence_preserves_fifo_and_never_overfills(batches in proptest::collection::vec((0u32..20, 0u32..20), 1..60)) {
            let (mut p, mut c) = ring_pair::<u64>(16);
            let (mut next_in, mut next_out) = (0u64, 0u64);
            for (produce, consume) in batches {
                let n = p.free(produce).min(produce);
                proptest::prop_assert!(next_in - next_out + u64::from(n) <= 16);
                for i in 0..n { p.write(i, next_in); next_in += 1; }
                p.submit(n);
                let m = c.available(consume);
                proptest::prop_assert!(m <= consume);
                for i in 0..m { proptest::prop_assert_eq!(c.read(i), next_out); next_out += 1; }
                c.release(m);
            }
        }
    }
}

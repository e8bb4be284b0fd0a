//! Byte ring buffers for the send and receive queues, of a logical capacity that only
//! grows (buffer autotuning, see `autotune.rs`).
//!
//! A ring's storage is taken from the engine thread's [`super::buffer_pool`] on its
//! first write and given back when the ring is dropped or, once drained, by
//! [`Tcb::release_idle_buffers`]: an idle connection holds no buffer memory, and a
//! warm engine allocates, zeroes and faults in nothing per connection.
//!
//! The storage follows what is queued, not the capacity: the first write takes the
//! smallest pool class that holds it (256 bytes for a short request or response), and
//! a write beyond the block moves the ring into a block of the next class that fits
//! (the queued and out-of-order bytes keep their offsets from the head). A 64-byte
//! exchange on 10,000 connections then holds 10,000 blocks of 256 bytes, 16 to a
//! page, instead of 10,000 blocks of the full 256 KiB, which the pool could not keep
//! and the kernel had to fault in and zero again on every request (nor 10,000 pages
//! of 4 KiB blocks, the smallest class before).
use super::buffer_pool;
use super::tcb::Tcb;
use crate::time::Instant;

/// A byte ring of a capacity that can grow: bytes `[head, head + len)` (modulo the storage's
/// length) are queued.
#[derive(Clone)]
pub struct RingBuffer {
    /// Empty until the first byte is written; then a pool block that holds every byte
    /// written so far (queued or out of order), grown as writes need: the ring wraps at
    /// its length.
    storage: Box<[u8]>,
    capacity: usize,
    head: usize,
    len: usize,
}

impl core::fmt::Debug for RingBuffer {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // The bytes themselves would drown every log line.
        f.debug_struct("RingBuffer")
            .field("capacity", &self.capacity())
            .field("len", &self.len)
            .finish()
    }
}

impl RingBuffer {
    /// A ring holding up to `capacity` bytes (at least one).
    pub fn new(capacity: usize) -> Self {
        RingBuffer {
            storage: Box::default(),
            capacity: capacity.max(1),
            head: 0,
            len: 0,
        }
    }

    /// Total bytes the ring can hold.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Raises the capacity to `capacity` (never lowers it): autotuning. The storage is not
    /// touched; it keeps following what is written.
    pub fn grow_capacity(&mut self, capacity: usize) {
        self.capacity = self.capacity.max(capacity);
    }

    /// Whether the storage has been allocated (the first write does it).
    pub fn is_allocated(&self) -> bool {
        !self.storage.is_empty()
    }

    /// Makes the storage hold at least `end` bytes from the head: the first block, or a
    /// larger one with the ring's bytes moved over (linearised from the head, so every
    /// offset from the head stays valid).
    #[inline]
    fn reserve(&mut self, end: usize) {
        if end > self.storage.len() {
            self.grow_storage(end);
        }
    }

    /// [`Self::reserve`]'s slow path, out of line: a block from the pool.
    #[cold]
    #[inline(never)]
    fn grow_storage(&mut self, end: usize) {
        let size = self.storage.len();
        let mut block = buffer_pool::take(end);
        if size > 0 {
            let tail = size - self.head;
            block[..tail].copy_from_slice(&self.storage[self.head..]);
            block[tail..size].copy_from_slice(&self.storage[..self.head]);
            buffer_pool::give(core::mem::replace(&mut self.storage, block));
        } else {
            self.storage = block;
        }
        self.head = 0;
    }

    /// Gives the storage back to the pool when nothing is queued (the next write takes
    /// a block again). The caller makes sure no bytes are held beyond the queued ones
    /// (the receive side's out-of-order data). Returns true when it released storage.
    pub fn release_if_empty(&mut self) -> bool {
        if self.len != 0 || self.storage.is_empty() {
            return false;
        }
        buffer_pool::give(core::mem::take(&mut self.storage));
        self.head = 0;
        true
    }

    /// Bytes queued.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Room left.
    pub fn free(&self) -> usize {
        self.capacity() - self.len
    }

    fn index(&self, offset: usize) -> usize {
        // offset <= the storage's length by every caller's bounds, so one subtraction
        // suffices.
        let size = self.storage.len();
        let i = self.head + offset;
        if i >= size { i - size } else { i }
    }

    /// Appends as much of `data` as fits; returns the count.
    // Inlined into its one caller, `Tcb::send` (every `send`): the short copy is a
    // few instructions, less than the call's register saves.
    #[inline]
    pub fn push(&mut self, data: &[u8]) -> usize {
        let n = self.write_at(self.len, data);
        self.len += n;
        n
    }

    /// Copies bytes into the free region starting `offset` bytes after the head, without
    /// queueing them (the receive side commits them later with [`RingBuffer::commit`]).
    /// Bytes that would not fit are dropped; returns the count written.
    #[inline]
    pub fn write_at(&mut self, offset: usize, data: &[u8]) -> usize {
        let n = data.len();
        // A short write that fits whole in the capacity and in the storage without
        // wrapping (a request or response of an echo): the same outcome as the general
        // path below gives it, inline and without a call.
        if SHORT_COPY.contains(&n) && offset >= self.len && offset + n <= self.capacity {
            let start = self.head + offset;
            if let Some(dst) = self.storage.get_mut(start..start + n) {
                copy_short(dst, data);
                return n;
            }
        }
        self.write_at_any(offset, data)
    }

    /// [`Self::write_at`] for any write, out of line.
    #[inline(never)]
    fn write_at_any(&mut self, offset: usize, data: &[u8]) -> usize {
        let cap = self.capacity();
        if offset < self.len || offset >= cap {
            return 0;
        }
        let n = data.len().min(cap - offset);
        if n == 0 {
            return 0;
        }
        self.reserve(offset + n);
        let size = self.storage.len();
        let start = self.index(offset);
        let first = n.min(size - start);
        self.storage[start..start + first].copy_from_slice(&data[..first]);
        // The wrapped part, when there is one (no empty copy call otherwise).
        if first < n {
            self.storage[..n - first].copy_from_slice(&data[first..n]);
        }
        n
    }

    /// Queues `n` bytes previously written with [`RingBuffer::write_at`] right after the tail.
    pub fn commit(&mut self, n: usize) {
        let len = (self.len + n).min(self.capacity());
        self.reserve(len);
        self.len = len;
    }

    /// Copies queued bytes starting `offset` bytes after the head into `out`; returns the count.
    #[inline]
    pub fn peek_at(&self, offset: usize, out: &mut [u8]) -> usize {
        // A short read of bytes that do not wrap (a request or response of an echo):
        // the same outcome as the general path below gives it, inline, without a call.
        if offset < self.len {
            let n = out.len().min(self.len - offset);
            let start = self.head + offset;
            if let (true, Some(src)) = (SHORT_COPY.contains(&n), self.storage.get(start..start + n))
            {
                copy_short(&mut out[..n], src);
                return n;
            }
        }
        self.peek_at_any(offset, out)
    }

    /// [`Self::peek_at`] for any read, out of line.
    #[inline(never)]
    fn peek_at_any(&self, offset: usize, out: &mut [u8]) -> usize {
        if offset >= self.len || self.storage.is_empty() {
            return 0;
        }
        let size = self.storage.len();
        let n = out.len().min(self.len - offset);
        let start = self.index(offset);
        let first = n.min(size - start);
        out[..first].copy_from_slice(&self.storage[start..start + first]);
        if first < n {
            out[first..n].copy_from_slice(&self.storage[..n - first]);
        }
        n
    }

    /// Drops up to `n` bytes from the head; returns the count.
    pub fn consume(&mut self, n: usize) -> usize {
        let n = n.min(self.len);
        self.head = self.index(n);
        // The head is not reset when the ring empties: the receive side may hold
        // out-of-order bytes beyond the queued ones, at positions relative to the head.
        self.len -= n;
        n
    }

    /// Moves queued bytes into `out`; returns the count.
    // Inlined into its one caller, `Tcb::recv` (every `recv`), as `push` is.
    #[inline]
    pub fn pop(&mut self, out: &mut [u8]) -> usize {
        let n = self.peek_at(0, out);
        self.consume(n)
    }
}

/// Lengths [`copy_short`] takes.
const SHORT_COPY: core::ops::RangeInclusive<usize> = 16..=64;

/// Copies `src` into `dst`, of the same length in [`SHORT_COPY`], as two pairs of
/// overlapping fixed-size moves: for the short copies of a request/response exchange
/// (each payload crosses a ring twice at each end) cheaper than the call into
/// `memcpy`, and it leaves the ring's fast paths without a call.
#[inline(always)]
fn copy_short(dst: &mut [u8], src: &[u8]) {
    let n = src.len();
    debug_assert!(dst.len() == n && SHORT_COPY.contains(&n));
    // The two halves overlap when `n` is below twice the chunk: the bytes in the
    // middle are written twice, with the same values.
    if n >= 32 {
        dst[..32].copy_from_slice(&src[..32]);
        dst[n - 32..].copy_from_slice(&src[n - 32..]);
    } else {
        dst[..16].copy_from_slice(&src[..16]);
        dst[n - 16..].copy_from_slice(&src[n - 16..]);
    }
}

impl Drop for RingBuffer {
    fn drop(&mut self) {
        if !self.storage.is_empty() {
            buffer_pool::give(core::mem::take(&mut self.storage));
        }
    }
}

/// Ring storage lent by the engine's pool below which a busy connection keeps its drained
/// rings (see [`Tcb::release_idle_buffers`]): about a hundred connections' small rings at
/// both ends of an in-memory link (64 KiB cost the 100-connection echo about 450
/// instructions in pool traffic; 256 KiB lost about 10 % at 10,000 connections).
pub const KEEP_WHILE_LENT_BELOW: usize = 128 * 1024;

impl Tcb {
    /// Gives drained rings' storage back to the engine's pool: the send ring once all is
    /// acknowledged, the receive ring once read and with no out-of-order data waiting;
    /// both only once the connection is quiet: nothing of ours in flight and no ACK owed
    /// to the peer. The engine calls it after each connection's output; an idle
    /// connection then holds no buffer memory.
    ///
    /// The quiet test is the hysteresis: a request/response connection drains both
    /// rings on every exchange, and giving them back and taking them again each time
    /// cost about 650 instructions per echo (eight pool calls). While data is in flight
    /// (the RTO or its ACK comes) or an ACK is owed (the delayed-ACK timer fires, or the
    /// next segment we send carries it) the engine is sure to run this again, so a
    /// connection that goes idle still ends with no buffer memory.
    ///
    /// The hysteresis holds only while the engine's rings are few (less than
    /// `KEEP_WHILE_LENT_BELOW` lent): with thousands of busy connections, each keeping
    /// its own blocks spreads the rings over megabytes of cold memory, while giving them
    /// back lets the next connection take the block just used, still in the cache (in
    /// memory, 10,000 connections made 390k requests/s with the hysteresis always on and
    /// 470k without it; with this bound 440k, and one connection 830k against 770k).
    #[inline]
    pub fn release_idle_buffers(&mut self) {
        let busy = self.snd_una != self.snd_max || self.delack_deadline.is_some();
        if busy && buffer_pool::lent_bytes() < KEEP_WHILE_LENT_BELOW {
            return;
        }
        self.send_buf.release_if_empty();
        if self.ooo.is_empty() && self.ooo_fin.is_none() {
            self.recv_buf.release_if_empty();
        }
    }

    /// The settling of an ESTABLISHED connection after input, as the engine's output pass
    /// would settle it, when nothing is owed to the peer: gives drained rings back
    /// ([`release_idle_buffers`](Self::release_idle_buffers)) and returns the next
    /// deadline ([`poll_at`](Self::poll_at)). `None`, having done nothing, when the
    /// connection is in another state or [`may_transmit`](Self::may_transmit) says yes:
    /// the caller then marks it for output.
    ///
    /// Inlined into the engine's segment input with `may_transmit`'s ESTABLISHED branch
    /// asked directly (that call is out of line there: some 38 instructions a segment).
    #[inline(always)]
    pub fn settle_quiet_established(&mut self) -> Option<Option<Instant>> {
        // `may_transmit`'s first branch: ESTABLISHED, no RST pending, nothing owed.
        if self.established_owes() != Some(false) {
            return None;
        }
        debug_assert!(!self.may_transmit(), "quiet, but may_transmit says yes");
        self.release_idle_buffers();
        Some(self.poll_at())
    }

    /// Bytes of ring storage this connection holds now.
    pub fn buffer_bytes(&self) -> usize {
        self.send_buf.storage_bytes() + self.recv_buf.storage_bytes()
    }
}

impl RingBuffer {
    /// Bytes of storage held (0 until the first write and after a release).
    pub fn storage_bytes(&self) -> usize {
        self.storage.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn storage_comes_with_the_first_byte() {
        let mut r = RingBuffer::new(1 << 20);
        assert!(!r.is_allocated());
        assert_eq!(r.push(&[]), 0);
        let mut out = [0u8; 4];
        assert_eq!(r.peek_at(0, &mut out), 0);
        assert!(!r.is_allocated(), "reads and empty writes allocate nothing");
        assert_eq!(r.push(b"ab"), 2);
        assert!(r.is_allocated());
        assert_eq!(r.pop(&mut out), 2);
        assert_eq!(&out[..2], b"ab");
    }

    #[test]
    fn storage_goes_back_to_the_pool_when_drained_and_is_reused() {
        let mut r = RingBuffer::new(300_000);
        r.push(b"abc");
        assert_eq!(r.storage_bytes(), 256, "the smallest class that holds it");
        assert!(!r.release_if_empty(), "bytes queued");
        let mut out = [0u8; 3];
        r.pop(&mut out);
        let before = buffer_pool::with_pool(|p| p.stats);
        assert!(r.release_if_empty());
        assert!(!r.is_allocated());
        r.push(b"xyz");
        let after = buffer_pool::with_pool(|p| p.stats);
        assert_eq!(after.reused, before.reused + 1, "the block came back");
        assert_eq!(after.allocated, before.allocated);
        assert_eq!(r.pop(&mut out), 3);
        assert_eq!(&out, b"xyz");
        drop(r);
        assert_eq!(
            buffer_pool::with_pool(|p| p.stats).returned,
            after.returned + 1,
            "dropping gives it back"
        );
    }

    #[test]
    fn wraps_around() {
        let mut r = RingBuffer::new(8);
        assert_eq!(r.push(b"abcdef"), 6);
        let mut out = [0u8; 4];
        assert_eq!(r.pop(&mut out), 4);
        assert_eq!(&out, b"abcd");
        assert_eq!(r.push(b"ghijklmn"), 6);
        assert_eq!(r.len(), 8);
        assert_eq!(r.free(), 0);
        let mut all = [0u8; 8];
        assert_eq!(r.peek_at(0, &mut all), 8);
        assert_eq!(&all, b"efghijkl");
        assert_eq!(r.peek_at(8, &mut all), 0);
    }

    #[test]
    fn write_at_then_commit() {
        let mut r = RingBuffer::new(8);
        r.push(b"ab");
        assert_eq!(r.write_at(4, b"efghij"), 4);
        assert_eq!(r.write_at(1, b"x"), 0, "cannot overwrite queued bytes");
        assert_eq!(r.write_at(2, b"cd"), 2);
        r.commit(6);
        let mut out = [0u8; 8];
        assert_eq!(r.pop(&mut out), 8);
        assert_eq!(&out, b"abcdefgh");
    }

    #[test]
    fn storage_grows_with_what_is_written_and_keeps_offsets() {
        let mut r = RingBuffer::new(100_000);
        let data: Vec<u8> = (0..20_000u32).map(|i| (i % 251) as u8).collect();
        assert_eq!(r.push(&data[..3000]), 3000);
        assert_eq!(r.storage_bytes(), 4096);
        let mut out = vec![0u8; 20_000];
        assert_eq!(r.pop(&mut out[..2500]), 2500);
        // Wraps inside the 4 KiB block, then an out-of-order write past it grows the
        // block while 500 bytes are queued across the wrap.
        assert_eq!(r.push(&data[3000..4000]), 1000);
        // Queued: stream bytes 2500..4000. Bytes 7500..10000 arrive out of order.
        assert_eq!(r.write_at(5000, &data[7500..10_000]), 2500);
        assert_eq!(r.storage_bytes(), 8192);
        // The hole 4000..7500 fills; the whole run is queued.
        assert_eq!(r.write_at(1500, &data[4000..7500]), 3500);
        r.commit(6000);
        assert_eq!(r.len(), 7500);
        assert_eq!(r.pop(&mut out[..7500]), 7500);
        assert!(out[..7500] == data[2500..10_000], "the stream in order");
        // The capacity, not the block, bounds what is queued.
        assert_eq!(r.push(&vec![7u8; 200_000]), 100_000);
        assert_eq!(r.storage_bytes(), 128 * 1024);
        assert_eq!(r.free(), 0);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn grows_like_a_fifo_with_out_of_order_writes(
            ops in proptest::collection::vec((0u8..3, 0usize..6000, 0usize..3000), 1..60),
        ) {
            // A receive queue: in-order pushes, out-of-order writes that a later commit
            // queues, pops; the model is the byte stream by absolute position.
            const CAP: usize = 20_000;
            let mut r = RingBuffer::new(CAP);
            let mut model: std::collections::BTreeMap<u64, u8> = Default::default();
            let (mut head, mut next) = (0u64, 0u64);
            let byte = |pos: u64| (pos.wrapping_mul(31) % 253) as u8;
            for (op, n, gap) in ops {
                match op {
                    0 => {
                        let data: Vec<u8> = (0..n as u64).map(|i| byte(next + i)).collect();
                        let k = r.push(&data);
                        prop_assert_eq!(k, n.min(CAP - r.len() + k));
                        for i in 0..k as u64 { model.insert(next + i, byte(next + i)); }
                        next += k as u64;
                    }
                    1 => {
                        // Out of order: `gap` bytes after the tail; then fill the gap and
                        // commit both, as the receive side does when the hole closes.
                        let off = r.len() + gap;
                        let data: Vec<u8> = (0..n as u64).map(|i| byte(next + gap as u64 + i)).collect();
                        let k = r.write_at(off, &data);
                        let fill: Vec<u8> = (0..gap as u64).map(|i| byte(next + i)).collect();
                        let f = r.write_at(r.len(), &fill);
                        if f == gap {
                            r.commit(gap + k);
                            for i in 0..(gap + k) as u64 { model.insert(next + i, byte(next + i)); }
                            next += (gap + k) as u64;
                        }
                    }
                    _ => {
                        let mut out = vec![0; n];
                        let k = r.pop(&mut out);
                        let expect: Vec<u8> = (head..head + k as u64).map(|p| model.remove(&p).unwrap_or(0)).collect();
                        prop_assert_eq!(&out[..k], &expect[..]);
                        prop_assert_eq!(k as u64, n.min((next - head) as usize) as u64);
                        head += k as u64;
                    }
                }
                prop_assert_eq!(r.len() as u64, next - head);
                prop_assert!(r.storage_bytes() <= 32 * 1024, "the class that holds the capacity at most");
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn short_copies_behave_like_a_fifo(
            ops in proptest::collection::vec((any::<bool>(), 0usize..80, 0usize..80), 1..80),
        ) {
            // Lengths around the short copies' (16..=64), wrapping around a 256-byte
            // block; peeks at an offset too.
            let mut r = RingBuffer::new(200);
            let mut model = std::collections::VecDeque::new();
            let mut next = 0u8;
            for (is_push, n, at) in ops {
                if is_push {
                    let data: Vec<u8> = (0..n).map(|_| { next = next.wrapping_add(1); next }).collect();
                    let k = r.push(&data);
                    prop_assert_eq!(k, n.min(200 - model.len()));
                    model.extend(&data[..k]);
                } else {
                    let mut out = vec![0; n];
                    let k = r.peek_at(at, &mut out);
                    let expect: Vec<u8> = model.iter().skip(at).take(n).copied().collect();
                    prop_assert_eq!(&out[..k], &expect[..]);
                    let k = r.pop(&mut out);
                    let expect: Vec<u8> = model.drain(..n.min(model.len())).collect();
                    prop_assert_eq!(&out[..k], &expect[..]);
                }
                prop_assert_eq!(r.len(), model.len());
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn behaves_like_a_fifo(ops in proptest::collection::vec((any::<bool>(), 0usize..20), 1..60)) {
            let mut r = RingBuffer::new(16);
            let mut model = std::collections::VecDeque::new();
            let mut next = 0u8;
            for (is_push, n) in ops {
                if is_push {
                    let data: Vec<u8> = (0..n).map(|_| { next = next.wrapping_add(1); next }).collect();
                    let k = r.push(&data);
                    prop_assert_eq!(k, n.min(16 - model.len()));
                    model.extend(&data[..k]);
                } else {
                    let mut out = vec![0; n];
                    let k = r.pop(&mut out);
                    let expect: Vec<u8> = model.drain(..n.min(model.len())).collect();
                    prop_assert_eq!(&out[..k], &expect[..]);
                }
                prop_assert_eq!(r.len(), model.len());
            }
        }
    }
}

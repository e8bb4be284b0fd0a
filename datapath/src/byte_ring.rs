//! A lock-free single-producer single-consumer byte ring, for the bytes an
//! application thread and an engine's loop hand each other (the runtime's
//! per-stream rings: the app writes what it sends, the engine what it received).
//!
//! [`byte_ring`] makes a ring of a power-of-two capacity and returns its two
//! ends. The [`ByteProducer`] and the [`ByteConsumer`] are separate types that
//! are `Send` but not `Clone`, so only one thread can write and one can read: a
//! misuse is a type error. Positions are free-running counters (`head`: bytes
//! consumed, `tail`: bytes produced, both wrapping); the slot of a position is
//! `position & (capacity - 1)`. The producer publishes bytes with a `Release`
//! store of `tail` after writing them, the consumer reads `tail` with `Acquire`
//! before reading them; the same pair on `head` hands freed space back.
//!
//! Both ends can work in place: [`ByteProducer::writable`] /
//! [`ByteProducer::commit`] to receive into the ring, [`ByteConsumer::readable`] /
//! [`ByteConsumer::consume`] to send from it, so the engine copies once.
//!
//! ```
//! let (mut tx, mut rx) = surge_datapath::byte_ring::byte_ring(8).unwrap();
//! assert_eq!(tx.write(b"hello world"), 8);
//! let mut buf = [0u8; 16];
//! assert_eq!(rx.read(&mut buf), 8);
//! assert_eq!(&buf[..8], b"hello wo");
//! ```

use std::cell::UnsafeCell;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// A counter alone on its cache line (the two ends write different counters).
#[derive(Debug, Default)]
#[repr(align(64))]
struct Padded(AtomicUsize);

/// The shared part: the bytes and the two positions.
struct Inner {
    /// Bytes consumed (written by the consumer only).
    head: Padded,
    /// Bytes produced (written by the producer only).
    tail: Padded,
    mask: usize,
    bytes: Box<[UnsafeCell<u8>]>,
}

// Safety: the bytes are only touched through the two ends; the producer writes
// only the free span [tail, head + capacity) and the consumer reads only the
// filled span [head, tail). The positions are atomics, and a span changes hands
// only through a Release store of a position that the other end loads with
// Acquire, so no byte is accessed by both ends at once.
unsafe impl Sync for Inner {}
// Safety: as above; `UnsafeCell<u8>` is `Send`.
unsafe impl Send for Inner {}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ByteRing")
            .field("capacity", &(self.mask + 1))
            .field("head", &self.head.0.load(Ordering::Relaxed))
            .field("tail", &self.tail.0.load(Ordering::Relaxed))
            .finish()
    }
}

impl Inner {
    fn capacity(&self) -> usize {
        self.mask + 1
    }

    fn base(&self) -> *mut u8 {
        // `UnsafeCell<u8>` has the layout of `u8`, and a pointer from `UnsafeCell`
        // may be written through.
        UnsafeCell::raw_get(self.bytes.as_ptr())
    }

    /// The ring's bytes from position `from` for `len` bytes, as up to two
    /// pieces (before and after the end of the buffer).
    fn spans(&self, from: usize, len: usize) -> ((usize, usize), (usize, usize)) {
        let at = from & self.mask;
        let first = len.min(self.capacity() - at);
        ((at, first), (0, len - first))
    }
}

/// Why a ring could not be made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a byte ring's capacity must be a power of two between 1 and 2^30, not {0}")]
pub struct CapacityError(pub usize);

/// Makes a ring of `capacity` bytes (a power of two, at most 2^30) and returns
/// its two ends.
pub fn byte_ring(capacity: usize) -> Result<(ByteProducer, ByteConsumer), CapacityError> {
    if !capacity.is_power_of_two() || capacity > 1 << 30 {
        return Err(CapacityError(capacity));
    }
    let bytes: Box<[UnsafeCell<u8>]> = (0..capacity).map(|_| UnsafeCell::new(0)).collect();
    let inner = Arc::new(Inner {
        head: Padded::default(),
        tail: Padded::default(),
        mask: capacity - 1,
        bytes,
    });
    Ok((
        ByteProducer {
            inner: Arc::clone(&inner),
            tail: 0,
            head: 0,
        },
        ByteConsumer {
            inner,
            head: 0,
            tail: 0,
        },
    ))
}

/// The writing end of a byte ring.
#[derive(Debug)]
pub struct ByteProducer {
    inner: Arc<Inner>,
    /// Our own position (the shared `tail` is a copy of it).
    tail: usize,
    /// The consumer's position as last loaded.
    head: usize,
}

impl ByteProducer {
    /// The ring's capacity in bytes.
    pub fn capacity(&self) -> usize {
        self.inner.capacity()
    }

    /// Bytes that can be written now (loads the consumer's position).
    pub fn free(&mut self) -> usize {
        self.head = self.inner.head.0.load(Ordering::Acquire);
        self.capacity() - self.tail.wrapping_sub(self.head)
    }

    /// True when the consumer has taken every byte written (loads its position).
    pub fn is_empty(&mut self) -> bool {
        self.free() == self.capacity()
    }

    /// Copies as much of `data` as fits; the number of bytes written.
    pub fn write(&mut self, data: &[u8]) -> usize {
        let (a, b) = self.writable();
        let first = a.len().min(data.len());
        a[..first].copy_from_slice(&data[..first]);
        let second = b.len().min(data.len() - first);
        b[..second].copy_from_slice(&data[first..first + second]);
        self.commit(first + second);
        first + second
    }

    /// The free space, in up to two pieces, to fill in place before
    /// [`commit`](Self::commit). What is written there is not visible to the
    /// consumer until committed.
    pub fn writable(&mut self) -> (&mut [u8], &mut [u8]) {
        let free = self.free();
        let ((a, alen), (b, blen)) = self.inner.spans(self.tail, free);
        let base = self.inner.base();
        // Safety: [tail, tail + free) is the free span, which only the producer
        // touches (the consumer reads only below `tail`, and gave this space back
        // with a Release store of `head` that `free` loaded with Acquire). The two
        // pieces do not overlap and lie inside the buffer (`spans`), and `&mut
        // self` keeps them the only references until the next call.
        unsafe {
            (
                std::slice::from_raw_parts_mut(base.add(a), alen),
                std::slice::from_raw_parts_mut(base.add(b), blen),
            )
        }
    }

    /// Publishes `n` bytes written through [`writable`](Self::writable)
    /// (clamped to the free space). Returns true when the ring was empty
    /// before (the consumer may need waking).
    pub fn commit(&mut self, n: usize) -> bool {
        self.head = self.inner.head.0.load(Ordering::Acquire);
        let used = self.tail.wrapping_sub(self.head);
        let n = n.min(self.capacity() - used);
        let was_empty = used == 0;
        self.tail = self.tail.wrapping_add(n);
        self.inner.tail.0.store(self.tail, Ordering::Release);
        was_empty
    }
}

/// The reading end of a byte ring.
#[derive(Debug)]
pub struct ByteConsumer {
    inner: Arc<Inner>,
    /// Our own position (the shared `head` is a copy of it).
    head: usize,
    /// The producer's position as last loaded.
    tail: usize,
}

impl ByteConsumer {
    /// The ring's capacity in bytes.
    pub fn capacity(&self) -> usize {
        self.inner.capacity()
    }

    /// Bytes that can be read now (loads the producer's position).
    pub fn len(&mut self) -> usize {
        self.tail = self.inner.tail.0.load(Ordering::Acquire);
        self.tail.wrapping_sub(self.head)
    }

    /// True when nothing can be read now.
    pub fn is_empty(&mut self) -> bool {
        self.len() == 0
    }

    /// Copies up to `buf.len()` bytes out; the number of bytes read.
    pub fn read(&mut self, buf: &mut [u8]) -> usize {
        let (a, b) = self.readable();
        let first = a.len().min(buf.len());
        buf[..first].copy_from_slice(&a[..first]);
        let second = b.len().min(buf.len() - first);
        buf[first..first + second].copy_from_slice(&b[..second]);
        self.consume(first + second);
        first + second
    }

    /// The bytes ready to read, in up to two pieces, to use in place before
    /// [`consume`](Self::consume).
    pub fn readable(&mut self) -> (&[u8], &[u8]) {
        let len = self.len();
        let ((a, alen), (b, blen)) = self.inner.spans(self.head, len);
        let base = self.inner.base();
        // Safety: [head, head + len) is the filled span: the producer wrote it
        // before its Release store of `tail`, which `len` loaded with Acquire, and
        // does not touch it again until `head` moves past it (our Release store in
        // `consume`). The pieces lie inside the buffer (`spans`); `&mut self`
        // keeps `consume` from running while they are borrowed.
        unsafe {
            (
                std::slice::from_raw_parts(base.add(a), alen),
                std::slice::from_raw_parts(base.add(b), blen),
            )
        }
    }

    /// Frees `n` bytes read through [`readable`](Self::readable) (clamped to
    /// what is there). Returns true when the ring was full before (the producer
    /// may need waking).
    pub fn consume(&mut self, n: usize) -> bool {
        self.tail = self.inner.tail.0.load(Ordering::Acquire);
        let used = self.tail.wrapping_sub(self.head);
        let n = n.min(used);
        let was_full = used == self.capacity();
        self.head = self.head.wrapping_add(n);
        self.inner.head.0.store(self.head, Ordering::Release);
        was_full
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn capacity_must_be_a_power_of_two() {
        assert_eq!(byte_ring(0).err(), Some(CapacityError(0)));
        assert_eq!(byte_ring(12).err(), Some(CapacityError(12)));
        assert_eq!(byte_ring(1 << 31).err(), Some(CapacityError(1 << 31)));
        let (tx, rx) = byte_ring(16).expect("16");
        assert_eq!((tx.capacity(), rx.capacity()), (16, 16));
    }

    #[test]
    fn write_fills_then_read_frees() {
        let (mut tx, mut rx) = byte_ring(8).expect("ring");
        assert!(tx.is_empty());
        assert!(rx.is_empty());
        assert_eq!(tx.write(b"abc"), 3);
        assert_eq!(rx.len(), 3);
        assert_eq!(tx.write(b"defghij"), 5, "only the free space is taken");
        assert_eq!(tx.free(), 0);
        assert_eq!(tx.write(b"x"), 0);
        let mut buf = [0u8; 3];
        assert_eq!(rx.read(&mut buf), 3);
        assert_eq!(&buf, b"abc");
        assert_eq!(tx.free(), 3);
        let mut rest = [0u8; 10];
        assert_eq!(rx.read(&mut rest), 5);
        assert_eq!(&rest[..5], b"defgh");
        assert_eq!(rx.read(&mut rest), 0);
        assert!(tx.is_empty());
    }

    #[test]
    fn wraparound_keeps_the_order_in_two_pieces() {
        let (mut tx, mut rx) = byte_ring(8).expect("ring");
        let mut out = Vec::new();
        let mut buf = [0u8; 5];
        // Positions walk around the buffer many times, at a step that does not
        // divide the capacity, so every split point is crossed.
        let data: Vec<u8> = (0..=255u8).cycle().take(1000).collect();
        let mut written = 0;
        while out.len() < data.len() {
            written += tx.write(&data[written..(written + 5).min(data.len())]);
            let n = rx.read(&mut buf);
            out.extend_from_slice(&buf[..n]);
        }
        assert_eq!(out, data);
        // A read that straddles the end sees two pieces.
        let (mut tx, mut rx) = byte_ring(8).expect("ring");
        assert_eq!(tx.write(b"123456"), 6);
        assert_eq!(rx.read(&mut [0u8; 6]), 6);
        assert_eq!(tx.write(b"abcde"), 5);
        let (a, b) = rx.readable();
        assert_eq!((a, b), (&b"ab"[..], &b"cde"[..]));
        assert!(!rx.consume(5), "the ring was not full");
    }

    #[test]
    fn in_place_commit_and_consume_report_the_edges() {
        let (mut tx, mut rx) = byte_ring(4).expect("ring");
        let (a, b) = tx.writable();
        assert_eq!((a.len(), b.len()), (4, 0));
        a[..2].copy_from_slice(b"hi");
        assert!(tx.commit(2), "the ring was empty");
        assert!(!tx.commit(2), "not any more");
        assert!(!tx.commit(9), "over-commit is clamped");
        assert_eq!(rx.len(), 4);
        assert!(rx.consume(1), "the ring was full");
        assert!(!rx.consume(100));
        assert_eq!(rx.len(), 0, "over-consume is clamped");
    }

    #[test]
    fn two_threads_pass_every_byte_in_order() {
        const TOTAL: usize = 4 << 20;
        let (mut tx, mut rx) = byte_ring(1024).expect("ring");
        let limit = Duration::from_secs(30);
        let producer = std::thread::spawn(move || {
            let started = Instant::now();
            let mut sent = 0usize;
            let mut chunk = [0u8; 333];
            while sent < TOTAL && started.elapsed() < limit {
                let n = chunk.len().min(TOTAL - sent);
                for (i, b) in chunk[..n].iter_mut().enumerate() {
                    *b = ((sent + i) % 251) as u8;
                }
                let mut off = 0;
                while off < n && started.elapsed() < limit {
                    let w = tx.write(&chunk[off..n]);
                    if w == 0 {
                        std::thread::yield_now();
                    }
                    off += w;
                }
                sent += off;
            }
            sent
        });
        let started = Instant::now();
        let mut got = 0usize;
        let mut buf = [0u8; 500];
        while got < TOTAL && started.elapsed() < limit {
            let n = rx.read(&mut buf);
            if n == 0 {
                std::thread::yield_now();
            }
            for (i, b) in buf[..n].iter().enumerate() {
                assert_eq!(*b, ((got + i) % 251) as u8, "byte {}", got + i);
            }
            got += n;
        }
        assert_eq!(producer.join().expect("producer"), TOTAL);
        assert_eq!(got, TOTAL, "every byte arrived within the time limit");
    }
}

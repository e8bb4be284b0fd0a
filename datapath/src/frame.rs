//! The frame handle the stack holds: an owned slot of a [`crate::FramePool`].

/// A received or to-be-sent frame: a handle on one UMEM frame (or, for a
/// packet longer than a UMEM frame, on one of the pool's large frames; see
/// [`crate::FramePool::enable_large_frames`]), never a pointer.
///
/// Read it with [`crate::Device::frame`], write it with
/// [`crate::Device::frame_mut`] and [`Frame::set_len`]. A frame is not `Clone`:
/// whoever holds it owns the buffer until it goes back to the device
/// (`release`, `tx_burst`). Dropping a frame instead leaks its buffer until the
/// device is dropped; the accounting in [`crate::FrameAccounting`] shows it.
///
/// Two 64-bit words, read through accessors: a struct of two scalars is kept in
/// registers and moved as two words. With its six fields it lived on the stack,
/// built and changed (`set_len`) in 1- to 4-byte stores and then copied into a
/// burst by one 16-byte load, which no store forwards: the store of the frame into
/// the TX burst was the output pass's hottest instruction (12 % of its samples at
/// one connection, `perf record -e cpu-clock`).
#[derive(PartialEq, Eq)]
#[must_use = "a frame must go back to its device (release or tx_burst), or its buffer leaks"]
pub struct Frame {
    /// Bits 0-31: offset of the first packet byte in the pool's memory (a pool is at
    /// most 2^20 frames of 4 KiB, so every offset fits 32 bits); for a large frame,
    /// the offset in the pool's large-frame area. Bits 32-47: bytes of packet data.
    /// Bits 48-63: bytes available from the offset to the end of the UMEM frame.
    place: u64,
    /// Bits 0-31: which pool this frame belongs to. Bit 32: a TX checksum request
    /// sits in the frame's metadata area (set by
    /// [`crate::Device::request_tx_checksum`]). Bit 33: this is a large frame
    /// (outside the UMEM, for multi-buffer packets).
    owner: u64,
}

/// [`Frame::owner`]'s bit for a TX checksum request.
const TX_CHECKSUM: u64 = 1 << 32;
/// [`Frame::owner`]'s bit for a large frame.
const LARGE: u64 = 1 << 33;

impl Frame {
    /// A handle on the packet buffer at `addr` of pool `pool`, holding `len` bytes of
    /// at most `capacity`, without a TX checksum request.
    #[inline]
    pub(crate) fn new(addr: u32, len: u16, capacity: u16, pool: u32, large: bool) -> Frame {
        Frame {
            place: u64::from(addr) | u64::from(len) << 32 | u64::from(capacity) << 48,
            owner: u64::from(pool) | if large { LARGE } else { 0 },
        }
    }

    /// Offset of the first packet byte in the pool's memory (or large-frame area).
    #[inline]
    pub(crate) fn addr(&self) -> u32 {
        self.place as u32
    }

    /// Which pool this frame belongs to.
    #[inline]
    pub(crate) fn pool_id(&self) -> u32 {
        self.owner as u32
    }

    /// Marks a TX checksum request as written in the frame's metadata area.
    #[inline]
    pub(crate) fn set_tx_checksum(&mut self) {
        self.owner |= TX_CHECKSUM;
    }

    /// Packet length in bytes.
    #[inline]
    pub fn len(&self) -> usize {
        usize::from((self.place >> 32) as u16)
    }

    /// Whether the frame holds no packet bytes.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The largest packet this frame can hold.
    #[inline]
    pub fn capacity(&self) -> usize {
        usize::from((self.place >> 48) as u16)
    }

    /// Whether this frame is one of the pool's large frames: a packet longer
    /// than one UMEM frame, received as (or to be sent as) several chained
    /// descriptors and copied to or from this contiguous buffer.
    #[inline]
    pub fn is_large(&self) -> bool {
        self.owner & LARGE != 0
    }

    /// Whether the device was asked to complete this frame's transport
    /// checksum on transmit ([`crate::Device::request_tx_checksum`]).
    #[inline]
    pub fn tx_checksum_requested(&self) -> bool {
        self.owner & TX_CHECKSUM != 0
    }

    /// Sets the packet length after writing in place; returns `false` (and
    /// changes nothing) if `len` exceeds [`Frame::capacity`].
    #[inline]
    #[must_use]
    pub fn set_len(&mut self, len: usize) -> bool {
        if len > self.capacity() {
            return false;
        }
        // `len <= capacity <= u16::MAX`, so this never truncates.
        self.place = self.place & !(0xffff << 32) | (len as u64) << 32;
        true
    }
}

impl core::fmt::Debug for Frame {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Frame")
            .field("addr", &self.addr())
            .field("len", &self.len())
            .field("capacity", &self.capacity())
            .field("pool", &self.pool_id())
            .field("tx_checksum", &self.tx_checksum_requested())
            .field("large", &self.is_large())
            .finish()
    }
}

/// A batch of at most [`crate::BURST`] frames, reused from iteration to
/// iteration so the loop never allocates.
#[derive(Debug)]
pub struct Burst {
    frames: Vec<Frame>,
}

impl Default for Burst {
    fn default() -> Self {
        Self::new()
    }
}

impl Burst {
    /// An empty burst with room for [`crate::BURST`] frames (the only allocation).
    pub fn new() -> Self {
        Self {
            frames: Vec::with_capacity(crate::BURST),
        }
    }

    /// Number of frames in the burst.
    #[inline]
    pub fn len(&self) -> usize {
        self.frames.len()
    }

    /// Whether the burst is empty.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.frames.is_empty()
    }

    /// Free places left (up to [`crate::BURST`]).
    #[inline]
    pub fn remaining(&self) -> usize {
        crate::BURST.saturating_sub(self.frames.len())
    }

    /// Appends a frame, or gives it back if the burst is full.
    #[inline]
    pub fn push(&mut self, frame: Frame) -> Result<(), Frame> {
        if self.frames.len() >= crate::BURST {
            return Err(frame);
        }
        self.frames.push(frame);
        Ok(())
    }

    /// Removes and returns the last frame.
    #[inline]
    pub fn pop(&mut self) -> Option<Frame> {
        self.frames.pop()
    }

    /// Iterates over the frames.
    pub fn iter(&self) -> std::slice::Iter<'_, Frame> {
        self.frames.iter()
    }

    /// Iterates mutably over the frames (to set lengths).
    pub fn iter_mut(&mut self) -> std::slice::IterMut<'_, Frame> {
        self.frames.iter_mut()
    }

    /// Takes every frame out, in order (the burst keeps its capacity).
    pub fn drain(&mut self) -> std::vec::Drain<'_, Frame> {
        self.frames.drain(..)
    }

    /// The frames as a slice.
    pub fn as_slice(&self) -> &[Frame] {
        &self.frames
    }

    /// Removes the first `n` frames (already handed to the kernel).
    pub(crate) fn consume_front(&mut self, n: usize) {
        let n = n.min(self.frames.len());
        // The first `n` frames were moved into the ring by value (their
        // addresses); dropping the handles here is the hand-over.
        self.frames.drain(..n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every field reads back as written at its extremes, and changing the length or
    /// the checksum mark leaves the others as they were.
    #[test]
    fn packed_fields_read_back_and_stay_apart() {
        for (addr, len, capacity, pool, large) in [
            (0, 0, 0, 0, false),
            (u32::MAX, u16::MAX, u16::MAX, u32::MAX, true),
            (0x0012_3456, 64, 3840, 7, false),
            (1, 1, 2, 1, true),
        ] {
            let mut frame = Frame::new(addr, len, capacity, pool, large);
            let fields = |f: &Frame| (f.addr(), f.len(), f.capacity(), f.pool_id(), f.is_large());
            let want = (addr, usize::from(len), usize::from(capacity), pool, large);
            assert_eq!(fields(&frame), want);
            assert!(!frame.tx_checksum_requested());
            frame.set_tx_checksum();
            assert!(frame.tx_checksum_requested());
            assert_eq!(fields(&frame), want);
            for new_len in [0, usize::from(capacity) / 2, usize::from(capacity)] {
                assert!(frame.set_len(new_len));
                assert_eq!(frame.len(), new_len);
                let (a, _, c, p, l) = fields(&frame);
                assert_eq!((a, c, p, l), (addr, usize::from(capacity), pool, large));
                assert!(frame.tx_checksum_requested());
            }
            if capacity < u16::MAX {
                assert!(!frame.set_len(usize::from(capacity) + 1));
                assert_eq!(frame.len(), usize::from(capacity));
            }
        }
    }
}

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
#[derive(Debug, PartialEq, Eq)]
#[must_use = "a frame must go back to its device (release or tx_burst), or its buffer leaks"]
pub struct Frame {
    /// Offset of the first packet byte in the pool's memory (a pool is at most
    /// 2^20 frames of 4 KiB, so every offset fits 32 bits); for a large frame,
    /// the offset in the pool's large-frame area.
    pub(crate) addr: u32,
    /// Bytes of packet data.
    pub(crate) len: u16,
    /// Bytes available from `addr` to the end of the UMEM frame.
    pub(crate) capacity: u16,
    /// Which pool this frame belongs to.
    pub(crate) pool: u32,
    /// Whether a TX checksum request sits in the frame's metadata area
    /// (set by [`crate::Device::request_tx_checksum`]).
    pub(crate) tx_checksum: bool,
    /// Whether this is a large frame (outside the UMEM, for multi-buffer packets).
    pub(crate) large: bool,
}

impl Frame {
    /// Packet length in bytes.
    #[inline]
    pub fn len(&self) -> usize {
        usize::from(self.len)
    }

    /// Whether the frame holds no packet bytes.
    #[inline]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The largest packet this frame can hold.
    #[inline]
    pub fn capacity(&self) -> usize {
        usize::from(self.capacity)
    }

    /// Whether this frame is one of the pool's large frames: a packet longer
    /// than one UMEM frame, received as (or to be sent as) several chained
    /// descriptors and copied to or from this contiguous buffer.
    #[inline]
    pub fn is_large(&self) -> bool {
        self.large
    }

    /// Whether the device was asked to complete this frame's transport
    /// checksum on transmit ([`crate::Device::request_tx_checksum`]).
    #[inline]
    pub fn tx_checksum_requested(&self) -> bool {
        self.tx_checksum
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
        self.len = len as u16;
        true
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

//! `LargeFrames`: contiguous buffers for packets longer than one UMEM frame.
//!
//! With an MTU above one UMEM frame (9000 on 4 KiB frames) the kernel hands a
//! packet over as a chain of descriptors (`XDP_PKT_CONTD`, see
//! [`crate::chain`]) and takes one the same way. The stack reads and writes
//! packets as one contiguous slice, so such a packet lives in a large frame:
//! the RX chain is copied into one, and a large frame being sent is copied out
//! into as many UMEM frames as it needs. Single-frame packets never come here.
//!
//! The area is one allocation made when the pool is set up; taking and
//! returning a large frame is a push or pop on a free list, as for UMEM frames.

/// A slab of equal large buffers and its free list (LIFO, like the UMEM's).
#[derive(Debug, Default)]
pub(crate) struct LargeFrames {
    slab: Vec<u8>,
    free: Vec<u32>,
    /// Each buffer's TX checksum request `(csum_start, csum_offset)`, valid
    /// while its frame is marked as carrying one.
    checksum_requests: Vec<(u16, u16)>,
    slot_size: u32,
    count: u32,
}

impl LargeFrames {
    /// `count` buffers of `slot_size` bytes each.
    pub(crate) fn new(count: u32, slot_size: u32) -> Self {
        Self {
            slab: vec![0; count as usize * slot_size as usize],
            free: (0..count).rev().collect(),
            checksum_requests: vec![(0, 0); count as usize],
            slot_size,
            count,
        }
    }

    /// Bytes per buffer (0 when the pool has none).
    pub(crate) fn slot_size(&self) -> u32 {
        self.slot_size
    }

    /// Buffers in the area.
    pub(crate) fn count(&self) -> u32 {
        self.count
    }

    /// Buffers on the free list.
    pub(crate) fn free_count(&self) -> u32 {
        self.free.len() as u32
    }

    /// Takes a free buffer; returns its offset in the slab.
    #[inline]
    pub(crate) fn alloc(&mut self) -> Option<u32> {
        // `count * slot_size` was allocated, so every offset fits a `usize`;
        // `enable_large_frames` keeps it below 2^32.
        self.free.pop().map(|slot| slot * self.slot_size)
    }

    /// Returns the buffer at `offset`; `false` if it is not one (a foreign or
    /// corrupted handle) or the free list is already full (a double free).
    #[inline]
    pub(crate) fn free(&mut self, offset: u32) -> bool {
        if self.slot_size == 0 || offset % self.slot_size != 0 {
            return false;
        }
        let slot = offset / self.slot_size;
        if slot >= self.count || self.free.len() >= self.count as usize {
            return false;
        }
        self.free.push(slot);
        true
    }

    /// Records the TX checksum request of the buffer at `offset`; `false` if
    /// it is not one.
    pub(crate) fn set_checksum_request(&mut self, offset: u32, request: (u16, u16)) -> bool {
        let slot = offset.checked_div(self.slot_size).unwrap_or(u32::MAX) as usize;
        match self.checksum_requests.get_mut(slot) {
            Some(entry) => {
                *entry = request;
                true
            }
            None => false,
        }
    }

    /// The TX checksum request last recorded for the buffer at `offset`.
    pub(crate) fn checksum_request(&self, offset: u32) -> Option<(u16, u16)> {
        let slot = offset.checked_div(self.slot_size)? as usize;
        self.checksum_requests.get(slot).copied()
    }

    /// `len` bytes of the buffer at `offset` (empty if out of range).
    #[inline]
    pub(crate) fn bytes(&self, offset: u32, len: usize) -> &[u8] {
        let start = offset as usize;
        self.slab
            .get(start..start.saturating_add(len))
            .unwrap_or_default()
    }

    /// The whole buffer at `offset` (empty if out of range).
    #[inline]
    pub(crate) fn bytes_mut(&mut self, offset: u32) -> &mut [u8] {
        let start = offset as usize;
        let end = start.saturating_add(self.slot_size as usize);
        self.slab.get_mut(start..end).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buffers_are_disjoint_and_come_back() {
        let mut large = LargeFrames::new(3, 9216);
        let a = large.alloc().unwrap();
        let b = large.alloc().unwrap();
        assert_ne!(a, b);
        large.bytes_mut(a).fill(1);
        large.bytes_mut(b).fill(2);
        assert!(large.bytes(a, 9216).iter().all(|&x| x == 1));
        assert!(large.bytes(b, 9216).iter().all(|&x| x == 2));
        assert_eq!(large.free_count(), 1);
        assert!(large.free(a) && large.free(b));
        assert_eq!(large.free_count(), 3);
    }

    #[test]
    fn bad_offsets_and_double_frees_are_refused() {
        let mut large = LargeFrames::new(2, 100);
        assert!(!large.free(50), "not a slot boundary");
        assert!(!large.free(200), "past the end");
        assert!(!large.free(0), "already free: the list is full");
        assert_eq!(large.free_count(), 2);
        assert!(large.bytes(1000, 10).is_empty());
        assert!(large.bytes_mut(1000).is_empty());
        let mut none = LargeFrames::default();
        assert_eq!(none.alloc(), None);
        assert!(!none.free(0));
    }
}

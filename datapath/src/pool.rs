//! `FramePool`: the UMEM area cut into equal frames, and the free list.

use std::sync::atomic::{AtomicU32, Ordering};

use crate::{DatapathError, Frame, mmap::Mmap};

/// Headroom the kernel reserves in front of every packet it writes (`XDP_PACKET_HEADROOM`).
pub const XDP_PACKET_HEADROOM: u32 = 256;

/// How a [`FramePool`] is cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolConfig {
    /// Bytes per UMEM frame: a power of two from 2048 to 4096 (the kernel's
    /// limits for an aligned UMEM on 4 KiB pages).
    pub frame_size: u32,
    /// Number of frames.
    pub frame_count: u32,
    /// Extra headroom we reserve before the kernel's 256 bytes (for example
    /// for metadata); 0 by default.
    pub headroom: u32,
    /// Try hugepages first (falls back to normal pages silently; see
    /// [`FramePool::huge_pages`]).
    pub huge_pages: bool,
}

impl Default for PoolConfig {
    fn default() -> Self {
        Self {
            frame_size: 4096,
            frame_count: 4096,
            headroom: 0,
            huge_pages: true,
        }
    }
}

impl PoolConfig {
    /// Offset of the packet inside a frame.
    pub fn data_offset(&self) -> u32 {
        XDP_PACKET_HEADROOM + self.headroom
    }

    /// The largest packet (Ethernet frame) one UMEM frame holds.
    pub fn max_frame_len(&self) -> u32 {
        self.frame_size.saturating_sub(self.data_offset())
    }

    fn validate(&self) -> Result<(), DatapathError> {
        if !self.frame_size.is_power_of_two() || !(2048..=4096).contains(&self.frame_size) {
            return Err(DatapathError::BadPoolConfig(format!(
                "frame size {} is not a power of two between 2048 and 4096",
                self.frame_size
            )));
        }
        if self.frame_count == 0 || self.frame_count > (1 << 20) {
            return Err(DatapathError::BadPoolConfig(format!(
                "frame count {} is not between 1 and {}",
                self.frame_count,
                1 << 20
            )));
        }
        if self.max_frame_len() < 64 {
            return Err(DatapathError::BadPoolConfig(format!(
                "headroom {} leaves less than 64 bytes per frame",
                self.headroom
            )));
        }
        Ok(())
    }
}

static NEXT_POOL_ID: AtomicU32 = AtomicU32::new(1);

/// A region of memory cut into `frame_count` frames, with a free list.
///
/// Free frames are a stack of frame indices (LIFO, so recently used, cache-warm
/// frames go out first). Nothing allocates after construction.
#[derive(Debug)]
pub struct FramePool {
    map: Mmap,
    config: PoolConfig,
    free: Vec<u32>,
    id: u32,
    shift: u32,
}

impl FramePool {
    /// Maps the memory and puts every frame on the free list.
    pub fn new(config: PoolConfig) -> Result<Self, DatapathError> {
        config.validate()?;
        let len = config.frame_size as usize * config.frame_count as usize;
        let map =
            Mmap::anonymous(len, config.huge_pages).map_err(|source| DatapathError::Syscall {
                what: "mapping the UMEM area",
                source,
            })?;
        Ok(Self {
            map,
            config,
            free: (0..config.frame_count).rev().collect(),
            id: NEXT_POOL_ID.fetch_add(1, Ordering::Relaxed),
            shift: config.frame_size.trailing_zeros(),
        })
    }

    /// The configuration the pool was built with.
    pub fn config(&self) -> &PoolConfig {
        &self.config
    }

    /// Whether the memory is backed by hugepages.
    pub fn huge_pages(&self) -> bool {
        self.map.huge_pages()
    }

    /// Total frames in the pool.
    pub fn size(&self) -> u32 {
        self.config.frame_count
    }

    /// Frames on the free list.
    pub fn free_count(&self) -> u32 {
        self.free.len() as u32
    }

    /// Start and length of the memory (for `XDP_UMEM_REG`).
    pub(crate) fn memory(&self) -> (*mut u8, usize) {
        (self.map.as_ptr(), self.map.len())
    }

    /// Takes a free frame as an empty packet buffer.
    #[inline]
    pub fn alloc(&mut self) -> Option<Frame> {
        let index = self.free.pop()?;
        let addr = (u64::from(index) << self.shift) + u64::from(self.config.data_offset());
        Some(Frame {
            addr,
            len: 0,
            capacity: self.config.max_frame_len() as u16,
            pool: self.id,
        })
    }

    /// Takes a free frame's base address (for the fill ring).
    #[inline]
    pub(crate) fn alloc_addr(&mut self) -> Option<u64> {
        self.free.pop().map(|index| u64::from(index) << self.shift)
    }

    /// Returns a frame to the free list; a frame of another pool is refused and returned.
    #[inline]
    pub fn free(&mut self, frame: Frame) -> Result<(), Frame> {
        if frame.pool != self.id || !self.free_addr(frame.addr) {
            return Err(frame);
        }
        Ok(())
    }

    /// Returns the frame containing `addr` (from a ring) to the free list;
    /// `false` if `addr` is outside the pool (a bad descriptor).
    #[inline]
    pub(crate) fn free_addr(&mut self, addr: u64) -> bool {
        let index = addr >> self.shift;
        if index >= u64::from(self.config.frame_count) || self.free.len() >= self.free.capacity() {
            return false;
        }
        self.free.push(index as u32);
        true
    }

    /// Turns a descriptor the kernel handed us into a frame handle, or `None`
    /// if the address or length does not fit inside one frame (a bad descriptor).
    #[inline]
    pub(crate) fn frame_from_desc(&self, addr: u64, len: u32) -> Option<Frame> {
        let index = addr >> self.shift;
        if index >= u64::from(self.config.frame_count) {
            return None;
        }
        let end_of_frame = (index + 1) << self.shift;
        let capacity = end_of_frame - addr;
        if u64::from(len) > capacity {
            return None;
        }
        Some(Frame {
            addr,
            len: len as u16,
            capacity: capacity as u16,
            pool: self.id,
        })
    }

    /// Whether `frame` is one of ours.
    #[inline]
    pub fn owns(&self, frame: &Frame) -> bool {
        frame.pool == self.id
    }

    /// The packet bytes of `frame` (empty if the frame belongs to another pool).
    #[inline]
    pub fn bytes(&self, frame: &Frame) -> &[u8] {
        if frame.pool != self.id {
            return &[];
        }
        // Safety: `frame` was made by this pool (`pool` id matches), so
        // `addr + capacity` lies inside the mapping and `len <= capacity`. The
        // frame is owned by userspace (a handle exists only while it is off
        // every ring), so the kernel does not write it concurrently.
        unsafe {
            std::slice::from_raw_parts(self.map.as_ptr().add(frame.addr as usize), frame.len())
        }
    }

    /// The whole writable buffer of `frame` (its capacity), to write a packet
    /// in place before [`Frame::set_len`]. Empty if the frame belongs to another pool.
    #[inline]
    pub fn bytes_mut(&mut self, frame: &Frame) -> &mut [u8] {
        if frame.pool != self.id {
            return &mut [];
        }
        // Safety: as in `bytes`; `&mut self` makes this the only live slice
        // into the mapping.
        unsafe {
            std::slice::from_raw_parts_mut(
                self.map.as_ptr().add(frame.addr as usize),
                frame.capacity(),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn small() -> PoolConfig {
        PoolConfig {
            frame_size: 2048,
            frame_count: 8,
            headroom: 0,
            huge_pages: false,
        }
    }

    #[test]
    fn alloc_until_empty_then_free_all_back() {
        let mut pool = FramePool::new(small()).unwrap();
        let mut frames = Vec::new();
        while let Some(f) = pool.alloc() {
            assert_eq!(f.capacity(), 2048 - 256);
            frames.push(f);
        }
        assert_eq!(frames.len(), 8);
        assert_eq!(pool.free_count(), 0);
        for f in frames {
            pool.free(f).unwrap();
        }
        assert_eq!(pool.free_count(), 8);
    }

    #[test]
    fn write_in_place_and_read_back() {
        let mut pool = FramePool::new(small()).unwrap();
        let mut f = pool.alloc().unwrap();
        pool.bytes_mut(&f)[..4].copy_from_slice(&[1, 2, 3, 4]);
        assert!(f.set_len(4));
        assert_eq!(pool.bytes(&f), &[1, 2, 3, 4]);
        assert!(!f.set_len(5000), "longer than the frame is refused");
        assert_eq!(f.len(), 4);
        pool.free(f).unwrap();
    }

    #[test]
    fn foreign_frames_are_refused_and_read_as_empty() {
        let mut a = FramePool::new(small()).unwrap();
        let mut b = FramePool::new(small()).unwrap();
        let mut f = a.alloc().unwrap();
        assert!(f.set_len(10));
        assert!(b.bytes(&f).is_empty());
        assert!(b.bytes_mut(&f).is_empty());
        let f = b.free(f).unwrap_err();
        assert_eq!(b.free_count(), 8);
        a.free(f).unwrap();
        assert_eq!(a.free_count(), 8);
    }

    #[test]
    fn bad_descriptors_are_rejected() {
        let pool = FramePool::new(small()).unwrap();
        assert!(pool.frame_from_desc(8 * 2048, 60).is_none(), "past the end");
        assert!(
            pool.frame_from_desc(2048 + 256, 2048).is_none(),
            "crosses a frame"
        );
        let f = pool.frame_from_desc(2048 + 256, 60).unwrap();
        assert_eq!(f.capacity(), 2048 - 256);
        drop(f);
    }

    #[test]
    fn free_list_never_grows_past_the_pool() {
        let mut pool = FramePool::new(small()).unwrap();
        // A buggy or hostile completion ring repeating an address cannot make
        // the free list grow (and allocate) beyond the pool size.
        assert!(!pool.free_addr(0));
        assert_eq!(pool.free_count(), 8);
    }

    #[test]
    fn bad_configs_are_clear_errors() {
        for config in [
            PoolConfig {
                frame_size: 3000,
                ..small()
            },
            PoolConfig {
                frame_size: 8192,
                ..small()
            },
            PoolConfig {
                frame_count: 0,
                ..small()
            },
            PoolConfig {
                headroom: 2000,
                ..small()
            },
        ] {
            assert!(
                matches!(FramePool::new(config), Err(DatapathError::BadPoolConfig(_))),
                "{config:?}"
            );
        }
    }
}

//! `FramePool`: the UMEM area cut into equal frames, and the free list.

use std::sync::atomic::{AtomicU32, Ordering};

use crate::{
    DatapathError, Frame,
    large::LargeFrames,
    mmap::Mmap,
    tx_checksum::{TX_METADATA_LEN, XDP_TXMD_FLAGS_CHECKSUM, request_fits},
};

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
            frame_count: 32768,
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
    /// Buffers for packets longer than one UMEM frame (none unless enabled).
    large: LargeFrames,
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
            large: LargeFrames::default(),
        })
    }

    /// Adds `count` large frames of `len` bytes each, for packets longer than
    /// one UMEM frame (an MTU above [`PoolConfig::max_frame_len`] with
    /// multi-buffer descriptors). One allocation, made here; replaces any
    /// large frames added before (call it before handing out frames).
    pub fn enable_large_frames(&mut self, count: u32, len: u32) -> Result<(), DatapathError> {
        if len <= self.config.max_frame_len() || len > u32::from(u16::MAX) || count == 0 {
            return Err(DatapathError::BadPoolConfig(format!(
                "{count} large frames of {len} bytes: need at least one, longer than a UMEM \
                 frame's {} bytes and at most {}",
                self.config.max_frame_len(),
                u16::MAX
            )));
        }
        if u64::from(count) * u64::from(len) > u64::from(u32::MAX) {
            return Err(DatapathError::BadPoolConfig(format!(
                "{count} large frames of {len} bytes exceed 4 GiB"
            )));
        }
        self.large = LargeFrames::new(count, len);
        Ok(())
    }

    /// Bytes one large frame holds (0: the pool has none).
    pub fn large_frame_len(&self) -> u32 {
        self.large.slot_size()
    }

    /// Large frames in the pool.
    pub fn large_size(&self) -> u32 {
        self.large.count()
    }

    /// Large frames on their free list.
    pub fn large_free_count(&self) -> u32 {
        self.large.free_count()
    }

    /// Takes a free large frame as an empty packet buffer (`None` when the
    /// pool has none, or none is free).
    #[inline]
    pub fn alloc_large(&mut self) -> Option<Frame> {
        let addr = self.large.alloc()?;
        // `enable_large_frames` keeps the length within `u16`.
        let capacity = self.large.slot_size() as u16;
        Some(Frame::new(addr, 0, capacity, self.id, true))
    }

    /// A free frame that holds `len` bytes: a UMEM frame when one is enough,
    /// else a large frame (`None` when neither is free or `len` fits neither).
    #[inline]
    pub fn alloc_for(&mut self, len: usize) -> Option<Frame> {
        if len <= self.config.max_frame_len() as usize {
            self.alloc()
        } else if len <= self.large.slot_size() as usize {
            self.alloc_large()
        } else {
            None
        }
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
        // At most 2^20 frames of at most 4 KiB: every offset fits 32 bits.
        let addr = (index << self.shift) + self.config.data_offset();
        let capacity = self.config.max_frame_len() as u16;
        Some(Frame::new(addr, 0, capacity, self.id, false))
    }

    /// Takes a free frame's base address (for the fill ring).
    #[inline]
    pub(crate) fn alloc_addr(&mut self) -> Option<u64> {
        self.free.pop().map(|index| u64::from(index) << self.shift)
    }

    /// Returns a frame to the free list; a frame of another pool is refused and returned.
    #[inline]
    pub fn free(&mut self, frame: Frame) -> Result<(), Frame> {
        if frame.pool_id() != self.id {
            return Err(frame);
        }
        let freed = if frame.is_large() {
            self.large.free(frame.addr())
        } else {
            self.free_addr(u64::from(frame.addr()))
        };
        if !freed {
            return Err(frame);
        }
        Ok(())
    }

    /// Returns the large frame `frame` is a handle on to its free list, when
    /// the handle is about to be dropped without being given back
    /// ([`FramePool::free`] takes it by value); `false` if it is not one of ours.
    pub(crate) fn free_large(&mut self, frame: &Frame) -> bool {
        frame.is_large() && frame.pool_id() == self.id && self.large.free(frame.addr())
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
        // `index < frame_count <= 2^20` and frames are at most 4 KiB.
        Some(Frame::new(
            addr as u32,
            len as u16,
            capacity as u16,
            self.id,
            false,
        ))
    }

    /// Writes a TX checksum request (`struct xsk_tx_metadata` with
    /// `XDP_TXMD_FLAGS_CHECKSUM`) in the [`TX_METADATA_LEN`] bytes right before
    /// the packet and marks the frame (a large frame keeps it beside its
    /// buffer, for its chain's first descriptor); `false` (nothing written) for
    /// a frame of another pool, a packet with less headroom than that, or a
    /// request that does not fit the packet's current length.
    pub(crate) fn write_tx_checksum(&mut self, frame: &mut Frame, start: u16, offset: u16) -> bool {
        if frame.is_large() {
            // Kept beside the large frame; the port puts it in front of the
            // chain's first descriptor (see `chain::write_tx_chain`).
            if frame.pool_id() != self.id
                || !request_fits(start, offset, frame.len())
                || !self
                    .large
                    .set_checksum_request(frame.addr(), (start, offset))
            {
                return false;
            }
            frame.set_tx_checksum();
            return true;
        }
        let in_frame = frame.addr() & ((1u32 << self.shift) - 1);
        if frame.pool_id() != self.id
            || in_frame < TX_METADATA_LEN
            || !request_fits(start, offset, frame.len())
        {
            return false;
        }
        let mut meta = [0u8; TX_METADATA_LEN as usize];
        meta[..8].copy_from_slice(&XDP_TXMD_FLAGS_CHECKSUM.to_ne_bytes());
        meta[8..10].copy_from_slice(&start.to_ne_bytes());
        meta[10..12].copy_from_slice(&offset.to_ne_bytes());
        // Safety: the frame is this pool's (id checked) and off every ring (a
        // handle exists), and `in_frame >= TX_METADATA_LEN` puts the metadata
        // inside the same UMEM frame, before the packet; `&mut self` makes this
        // the only access to the mapping.
        unsafe {
            std::ptr::copy_nonoverlapping(
                meta.as_ptr(),
                self.map
                    .as_ptr()
                    .add((frame.addr() - TX_METADATA_LEN) as usize),
                meta.len(),
            );
        }
        frame.set_tx_checksum();
        true
    }

    /// The `(csum_start, csum_offset)` of the request written for `frame`, if
    /// it is marked as carrying one.
    pub(crate) fn tx_checksum_request(&self, frame: &Frame) -> Option<(u16, u16)> {
        let in_frame = frame.addr() & ((1u32 << self.shift) - 1);
        if frame.is_large() && frame.tx_checksum_requested() && frame.pool_id() == self.id {
            return self.large.checksum_request(frame.addr());
        }
        if !frame.tx_checksum_requested()
            || frame.is_large()
            || frame.pool_id() != self.id
            || in_frame < TX_METADATA_LEN
        {
            return None;
        }
        let mut meta = [0u8; 12];
        // Safety: as in `write_tx_checksum`; a read of 12 bytes inside the frame.
        unsafe {
            std::ptr::copy_nonoverlapping(
                self.map
                    .as_ptr()
                    .add((frame.addr() - TX_METADATA_LEN) as usize),
                meta.as_mut_ptr(),
                meta.len(),
            );
        }
        let flags = u64::from_ne_bytes(meta[..8].try_into().unwrap_or([0; 8]));
        (flags == XDP_TXMD_FLAGS_CHECKSUM).then(|| {
            (
                u16::from_ne_bytes([meta[8], meta[9]]),
                u16::from_ne_bytes([meta[10], meta[11]]),
            )
        })
    }

    /// Appends the bytes of UMEM frame `part` to large frame `joined` (RX:
    /// joining a descriptor chain); `false`, nothing copied, if either is not
    /// of the expected kind and this pool's, or the result would not fit.
    pub(crate) fn join_part(&mut self, part: &Frame, joined: &mut Frame) -> bool {
        if part.is_large()
            || !joined.is_large()
            || part.pool_id() != self.id
            || joined.pool_id() != self.id
        {
            return false;
        }
        let (at, end) = (joined.len(), joined.len() + part.len());
        if end > joined.capacity() {
            return false;
        }
        // Safety: as in `bytes`: `part` is this pool's UMEM frame, off every
        // ring, and `addr + len` lies inside the mapping. The large area is a
        // separate allocation, so the two slices do not overlap.
        let src = unsafe {
            std::slice::from_raw_parts(self.map.as_ptr().add(part.addr() as usize), part.len())
        };
        let Some(dst) = self.large.bytes_mut(joined.addr()).get_mut(at..end) else {
            return false;
        };
        dst.copy_from_slice(src);
        joined.set_len(end)
    }

    /// Copies bytes of large frame `whole` from `start` into UMEM frame `part`
    /// (TX: cutting a packet into a descriptor chain), as many as `part` holds,
    /// and sets its length; returns how many (0 if either is not of the
    /// expected kind and this pool's, or `start` is past the end).
    pub(crate) fn cut_part(&mut self, whole: &Frame, start: usize, part: &mut Frame) -> usize {
        if part.is_large()
            || !whole.is_large()
            || part.pool_id() != self.id
            || whole.pool_id() != self.id
        {
            return 0;
        }
        let n = whole.len().saturating_sub(start).min(part.capacity());
        let Some(src) = self
            .large
            .bytes(whole.addr(), whole.len())
            .get(start..start + n)
        else {
            return 0;
        };
        // Safety: as in `bytes_mut`: `part` is this pool's UMEM frame, off
        // every ring, `addr + capacity` lies inside the mapping and `n <=
        // capacity`; the large area is a separate allocation.
        let dst = unsafe {
            std::slice::from_raw_parts_mut(self.map.as_ptr().add(part.addr() as usize), n)
        };
        dst.copy_from_slice(src);
        if part.set_len(n) { n } else { 0 }
    }

    /// `len` bytes of the mapping at `offset`, for tests that check what the
    /// kernel would read outside a packet (metadata).
    #[cfg(test)]
    pub(crate) fn bytes_at_for_tests(&self, offset: usize, len: usize) -> &[u8] {
        assert!(offset + len <= self.map.len());
        // Safety: in bounds (asserted); tests only read frames no ring holds.
        unsafe { std::slice::from_raw_parts(self.map.as_ptr().add(offset), len) }
    }

    /// Whether `frame` is one of ours.
    #[inline]
    pub fn owns(&self, frame: &Frame) -> bool {
        frame.pool_id() == self.id
    }

    /// The packet bytes of `frame` (empty if the frame belongs to another pool).
    #[inline]
    pub fn bytes(&self, frame: &Frame) -> &[u8] {
        if frame.pool_id() != self.id {
            return &[];
        }
        if frame.is_large() {
            return self.large.bytes(frame.addr(), frame.len());
        }
        // Safety: `frame` was made by this pool (`pool` id matches), so
        // `addr + capacity` lies inside the mapping and `len <= capacity`. The
        // frame is owned by userspace (a handle exists only while it is off
        // every ring), so the kernel does not write it concurrently.
        unsafe {
            std::slice::from_raw_parts(self.map.as_ptr().add(frame.addr() as usize), frame.len())
        }
    }

    /// The whole writable buffer of `frame` (its capacity), to write a packet
    /// in place before [`Frame::set_len`]. Empty if the frame belongs to another pool.
    #[inline]
    pub fn bytes_mut(&mut self, frame: &Frame) -> &mut [u8] {
        if frame.pool_id() != self.id {
            return &mut [];
        }
        if frame.is_large() {
            return self.large.bytes_mut(frame.addr());
        }
        // Safety: as in `bytes`; `&mut self` makes this the only live slice
        // into the mapping.
        unsafe {
            std::slice::from_raw_parts_mut(
                self.map.as_ptr().add(frame.addr() as usize),
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
    fn tx_checksum_requests_sit_before_the_packet_and_read_back() {
        let mut pool = FramePool::new(small()).unwrap();
        let mut f = pool.alloc().unwrap();
        assert_eq!(
            pool.tx_checksum_request(&f),
            None,
            "fresh frames carry none"
        );
        assert!(f.set_len(60));
        pool.bytes_mut(&f)[..60].fill(0x5a);
        assert!(pool.write_tx_checksum(&mut f, 34, 16));
        assert!(f.tx_checksum_requested());
        assert_eq!(pool.tx_checksum_request(&f), Some((34, 16)));
        assert_eq!(pool.bytes(&f), &[0x5a; 60], "the packet is untouched");
        // The kernel's layout: flags (u64), csum_start, csum_offset (u16), native endian.
        let meta_at = (f.addr() - TX_METADATA_LEN) as usize;
        // Safety: the test reads 12 bytes of the pool's own mapping, inside frame 0's headroom.
        let meta = unsafe { std::slice::from_raw_parts(pool.map.as_ptr().add(meta_at), 12) };
        assert_eq!(&meta[..8], &XDP_TXMD_FLAGS_CHECKSUM.to_ne_bytes());
        assert_eq!(&meta[8..10], &34u16.to_ne_bytes());
        assert_eq!(&meta[10..12], &16u16.to_ne_bytes());
        pool.free(f).unwrap();
    }

    #[test]
    fn tx_checksum_requests_that_do_not_fit_are_refused() {
        let mut a = FramePool::new(small()).unwrap();
        let mut b = FramePool::new(small()).unwrap();
        let mut f = a.alloc().unwrap();
        assert!(f.set_len(40));
        assert!(
            !a.write_tx_checksum(&mut f, 34, 16),
            "past the packet's end"
        );
        assert!(!b.write_tx_checksum(&mut f, 0, 2), "another pool's frame");
        assert!(!f.tx_checksum_requested());
        // A packet starting at the very beginning of its UMEM frame has no room.
        let mut bare = a.frame_from_desc(2048, 60).unwrap();
        assert!(!a.write_tx_checksum(&mut bare, 34, 6));
        drop(bare);
        a.free(f).unwrap();
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

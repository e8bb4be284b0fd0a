//! Multi-buffer packets: descriptor chains joined into one large frame on RX,
//! and a large frame cut into a descriptor chain on TX.
//!
//! Linux's `Documentation/networking/af_xdp.rst` ("Multi-Buffer Support"): a
//! socket bound with `XDP_USE_SG` may see a packet as several descriptors, each
//! one UMEM frame; every descriptor but the packet's last has `XDP_PKT_CONTD`
//! in `options`. The kernel puts all of a packet's RX descriptors in the ring
//! at once (or drops the packet), but a reader that takes a bounded batch can
//! still find a chain cut at the batch's end, so [`RxChain`] keeps a packet
//! being joined from one `rx_burst` to the next. On TX the whole chain must be
//! submitted together; the kernel completes each descriptor separately, so
//! every UMEM frame of a chain comes back through the completion ring.

use crate::{
    ETHERNET_HEADER_LEN, Frame, FramePool, complete_partial_checksum,
    ring::XdpDesc,
    tx_checksum::{XDP_TX_METADATA, request_fits},
};

/// `XDP_PKT_CONTD` (`linux/if_xdp.h`): more descriptors of this packet follow.
pub(crate) const XDP_PKT_CONTD: u32 = 1;

/// `XDP_USE_SG` (`linux/if_xdp.h`, Linux 6.6): the bind flag saying the
/// socket handles packets of several descriptors.
pub(crate) const XDP_USE_SG: u16 = 1 << 4;

/// Why a descriptor chain was dropped instead of handed to the stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ChainDrop {
    /// No large frame was free to join the packet into.
    NoLargeFrame,
    /// The packet is longer than a large frame (longer than the MTU allows).
    TooLong,
    /// One of its descriptors did not fit the pool (a bad descriptor).
    BadPart,
    /// The joined packet is shorter than an Ethernet header.
    Runt,
}

/// What one descriptor did to the chain being joined.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum ChainStep {
    /// Part of a packet; more descriptors follow.
    Pending,
    /// The packet's last descriptor: here it is, joined.
    Complete(Frame),
    /// The chain ended and was dropped (counted by the caller).
    Dropped(ChainDrop),
}

/// A packet being joined from its RX descriptors, copied into a large frame as
/// each part arrives; every part's UMEM frame goes straight back to the pool.
#[derive(Debug, Default)]
pub(crate) struct RxChain {
    /// The large frame being filled (its `len` is the bytes joined so far).
    frame: Option<Frame>,
    /// Why the rest of the current chain is being thrown away, if it is.
    dropping: Option<ChainDrop>,
}

impl RxChain {
    /// Whether a chain is under way (its next descriptor continues it).
    #[inline]
    pub(crate) fn in_progress(&self) -> bool {
        self.frame.is_some() || self.dropping.is_some()
    }

    /// Whether a large frame holds the part of a packet joined so far.
    #[inline]
    pub(crate) fn holds_frame(&self) -> bool {
        self.frame.is_some()
    }

    /// Takes the next descriptor of a chain (or the first of one). Its UMEM
    /// frame is copied from and returned to `pool` whatever happens; a bad
    /// descriptor (outside the pool) is reported as [`ChainDrop::BadPart`].
    pub(crate) fn push(&mut self, pool: &mut FramePool, desc: XdpDesc) -> ChainStep {
        let last = desc.options & XDP_PKT_CONTD == 0;
        match pool.frame_from_desc(desc.addr, desc.len) {
            Some(part) => {
                if self.dropping.is_none() {
                    self.append(pool, &part);
                }
                // The part's bytes are copied (or not wanted): its frame goes back.
                let _ = pool.free(part);
            }
            None => {
                // Not ours to free when out of range; `free_addr` refuses it then.
                pool.free_addr(desc.addr);
                self.drop_rest(pool, ChainDrop::BadPart);
            }
        }
        if !last {
            return ChainStep::Pending;
        }
        if let Some(reason) = self.dropping.take() {
            return ChainStep::Dropped(reason);
        }
        match self.frame.take() {
            Some(frame) if frame.len() >= ETHERNET_HEADER_LEN => ChainStep::Complete(frame),
            Some(frame) => {
                let _ = pool.free(frame);
                ChainStep::Dropped(ChainDrop::Runt)
            }
            None => ChainStep::Dropped(ChainDrop::Runt),
        }
    }

    /// Copies one part at the end of the packet joined so far.
    fn append(&mut self, pool: &mut FramePool, part: &Frame) {
        if self.frame.is_none() {
            match pool.alloc_large() {
                Some(frame) => self.frame = Some(frame),
                None => return self.drop_rest(pool, ChainDrop::NoLargeFrame),
            }
        }
        let Some(mut frame) = self.frame.take() else {
            return;
        };
        if !pool.join_part(part, &mut frame) {
            let _ = pool.free(frame);
            return self.drop_rest(pool, ChainDrop::TooLong);
        }
        self.frame = Some(frame);
    }

    /// Throws away the packet joined so far and every part until its last.
    fn drop_rest(&mut self, pool: &mut FramePool, reason: ChainDrop) {
        if let Some(frame) = self.frame.take() {
            let _ = pool.free(frame);
        }
        self.dropping.get_or_insert(reason);
    }
}

/// Descriptors a packet of `len` bytes needs when each holds at most `part` bytes.
#[inline]
pub(crate) fn parts_needed(len: usize, part: usize) -> usize {
    len.div_ceil(part.max(1)).max(1)
}

/// How a chain's transport checksum is completed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ChainChecksum {
    /// The packet's checksum is complete (none was requested).
    None,
    /// The request went in front of the first descriptor (`XDP_TX_METADATA`):
    /// the kernel reads it there for the whole packet (copy mode:
    /// `xsk_build_skb` → `xsk_skb_metadata` on the first descriptor only).
    Offloaded,
    /// The request did not fit the first part: completed here, in software.
    Software,
}

/// Copies the large frame `frame` out into UMEM frames from `pool`, and hands
/// each part's descriptor to `write` in order (`XDP_PKT_CONTD` on all but the
/// last). A checksum `request` (`csum_start`, `csum_offset`, already checked
/// against the packet) is put in front of the first part when it lies inside
/// it, and completed in software otherwise. The caller checked that the ring
/// has room for [`parts_needed`] descriptors; `None`, with nothing taken or
/// written, when the pool has fewer free frames than that. Returns the number
/// of descriptors written and what became of the checksum.
pub(crate) fn write_tx_chain(
    pool: &mut FramePool,
    frame: &Frame,
    request: Option<(u16, u16)>,
    mut write: impl FnMut(u32, XdpDesc),
) -> Option<(u32, ChainChecksum)> {
    let part_len = pool.config().max_frame_len() as usize;
    let parts = parts_needed(frame.len(), part_len);
    if pool.free_count() < parts as u32 {
        return None;
    }
    let first_len = frame.len().min(part_len);
    let mut checksum = ChainChecksum::None;
    if let Some((start, offset)) = request {
        if !request_fits(start, offset, first_len) {
            let len = frame.len();
            if let Some(packet) = pool.bytes_mut(frame).get_mut(..len) {
                complete_partial_checksum(packet, start, offset);
            }
            checksum = ChainChecksum::Software;
        }
    }
    for i in 0..parts {
        // Checked above: the pool has `parts` free frames.
        let mut part = pool.alloc()?;
        let n = pool.cut_part(frame, i * part_len, &mut part);
        let mut options = if i + 1 < parts { XDP_PKT_CONTD } else { 0 };
        if let (0, Some((start, offset)), ChainChecksum::None) = (i, request, checksum) {
            // Fits (checked above) and the part has the UMEM headroom.
            if pool.write_tx_checksum(&mut part, start, offset) {
                options |= XDP_TX_METADATA;
                checksum = ChainChecksum::Offloaded;
            }
        }
        write(
            i as u32,
            XdpDesc {
                addr: u64::from(part.addr()),
                len: n as u32,
                options,
            },
        );
        // The handle's job is done: the descriptor now owns the UMEM frame
        // until the completion ring hands its address back.
        drop(part);
    }
    Some((parts as u32, checksum))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{PoolConfig, ring::tests::ring_pair};

    /// 16 frames of 4 KiB (3840 bytes of packet each) and 2 large frames of 9018.
    fn pool() -> FramePool {
        let mut pool = FramePool::new(PoolConfig {
            frame_size: 4096,
            frame_count: 16,
            headroom: 0,
            huge_pages: false,
        })
        .unwrap();
        pool.enable_large_frames(2, 9018).unwrap();
        pool
    }

    /// A packet of `len` bytes whose byte `i` is `(i * 7 + seed) as u8`.
    fn packet(len: usize, seed: u8) -> Vec<u8> {
        (0..len).map(|i| (i * 7) as u8 ^ seed).collect()
    }

    /// What the kernel does on RX: the packet cut into fill-ring frames, as descriptors.
    fn kernel_rx(pool: &mut FramePool, bytes: &[u8]) -> Vec<XdpDesc> {
        let part = pool.config().max_frame_len() as usize;
        let chunks: Vec<&[u8]> = bytes.chunks(part).collect();
        let last = chunks.len() - 1;
        chunks
            .iter()
            .enumerate()
            .map(|(i, chunk)| {
                let mut frame = pool.alloc().expect("a fill frame");
                pool.bytes_mut(&frame)[..chunk.len()].copy_from_slice(chunk);
                assert!(frame.set_len(chunk.len()));
                let desc = XdpDesc {
                    addr: u64::from(frame.addr()),
                    len: chunk.len() as u32,
                    options: if i < last { XDP_PKT_CONTD } else { 0 },
                };
                drop(frame); // now "in the RX ring"
                desc
            })
            .collect()
    }

    fn all_free(pool: &FramePool) -> bool {
        pool.free_count() == pool.size() && pool.large_free_count() == pool.large_size()
    }

    #[test]
    fn a_three_part_packet_is_joined_in_order_and_every_frame_comes_back() {
        let mut pool = pool();
        let bytes = packet(9014, 3);
        let descs = kernel_rx(&mut pool, &bytes);
        assert_eq!(descs.len(), 3);
        let mut chain = RxChain::default();
        assert_eq!(chain.push(&mut pool, descs[0]), ChainStep::Pending);
        assert!(chain.in_progress() && chain.holds_frame());
        assert_eq!(chain.push(&mut pool, descs[1]), ChainStep::Pending);
        let ChainStep::Complete(frame) = chain.push(&mut pool, descs[2]) else {
            panic!("the last part completes the packet");
        };
        assert!(!chain.in_progress());
        assert!(frame.is_large());
        assert_eq!(pool.bytes(&frame), &bytes[..]);
        assert_eq!(pool.free_count(), 16, "every part's UMEM frame is back");
        pool.free(frame).unwrap();
        assert!(all_free(&pool));
    }

    #[test]
    fn a_chain_cut_by_the_end_of_a_ring_batch_continues_in_the_next() {
        // The RX ring wraps in the middle of a packet and the reader takes
        // bounded batches: the chain must survive from one batch to the next.
        let mut pool = pool();
        let (mut kernel, mut rx) = ring_pair::<XdpDesc>(4);
        let mut chain = RxChain::default();
        let mut received = Vec::new();
        let packets: Vec<Vec<u8>> = (0..5u8)
            .map(|i| packet([9014, 60, 5000, 3840, 7681][usize::from(i)], i))
            .collect();
        let mut pending: Vec<XdpDesc> = Vec::new();
        let mut next_packet = 0;
        for _round in 0..64 {
            // The kernel produces whole packets when the ring has room for them.
            if pending.is_empty() && next_packet < packets.len() {
                pending = kernel_rx(&mut pool, &packets[next_packet]);
                next_packet += 1;
            }
            let parts = pending.len() as u32;
            if parts > 0 && kernel.free(parts) >= parts {
                for (i, desc) in pending.drain(..).enumerate() {
                    kernel.write(i as u32, desc);
                }
                kernel.submit(parts);
            }
            // The reader takes at most two descriptors at a time.
            let n = rx.available(2);
            for i in 0..n {
                match chain.push(&mut pool, rx.read(i)) {
                    ChainStep::Pending => {}
                    ChainStep::Complete(frame) => {
                        received.push(pool.bytes(&frame).to_vec());
                        pool.free(frame).unwrap();
                    }
                    ChainStep::Dropped(reason) => panic!("dropped: {reason:?}"),
                }
            }
            rx.release(n);
            if received.len() == packets.len() {
                break;
            }
        }
        // Single-descriptor packets (60 and 3840 bytes) went through the chain
        // code here too; the port sends them down the zero-copy path instead.
        assert_eq!(received, packets);
        assert!(all_free(&pool));
    }

    #[test]
    fn chains_that_cannot_be_joined_are_dropped_by_reason_without_leaking() {
        let mut pool = pool();
        let mut chain = RxChain::default();
        let run = |pool: &mut FramePool, chain: &mut RxChain, descs: &[XdpDesc]| {
            let mut last = ChainStep::Pending;
            for (i, desc) in descs.iter().enumerate() {
                last = chain.push(pool, *desc);
                if i + 1 < descs.len() {
                    assert_eq!(last, ChainStep::Pending, "part {i}");
                }
            }
            last
        };
        // Longer than a large frame (a peer ignoring the MTU): 4 parts of 3840.
        let descs = kernel_rx(&mut pool, &packet(4 * 3840, 1));
        assert_eq!(
            run(&mut pool, &mut chain, &descs),
            ChainStep::Dropped(ChainDrop::TooLong)
        );
        assert!(all_free(&pool) && !chain.in_progress());

        // A bad descriptor in the middle: the whole packet goes, the rest of
        // its parts come back, and the next packet is joined normally.
        let mut descs = kernel_rx(&mut pool, &packet(9000, 2));
        let good_middle = descs[1];
        descs[1].addr = 1 << 30;
        assert_eq!(
            run(&mut pool, &mut chain, &descs),
            ChainStep::Dropped(ChainDrop::BadPart)
        );
        pool.free_addr(good_middle.addr); // the kernel's copy of it, never seen by us
        assert!(all_free(&pool));

        // No large frame free: both are held by the stack.
        let held = [pool.alloc_large().unwrap(), pool.alloc_large().unwrap()];
        let descs = kernel_rx(&mut pool, &packet(5000, 3));
        assert_eq!(
            run(&mut pool, &mut chain, &descs),
            ChainStep::Dropped(ChainDrop::NoLargeFrame)
        );
        for frame in held {
            pool.free(frame).unwrap();
        }
        assert!(all_free(&pool));

        // A chain whose parts add up to less than an Ethernet header.
        let mut descs = kernel_rx(&mut pool, &packet(4000, 4));
        descs[0].len = 4;
        descs[1].len = 4;
        assert_eq!(
            run(&mut pool, &mut chain, &descs),
            ChainStep::Dropped(ChainDrop::Runt)
        );
        assert!(all_free(&pool));

        // And after all that, a good packet still comes through whole.
        let bytes = packet(7000, 5);
        let descs = kernel_rx(&mut pool, &bytes);
        let ChainStep::Complete(frame) = run(&mut pool, &mut chain, &descs) else {
            panic!("a good packet after the drops");
        };
        assert_eq!(pool.bytes(&frame), &bytes[..]);
        pool.free(frame).unwrap();
        assert!(all_free(&pool));
    }

    #[test]
    fn a_large_frame_is_cut_into_contd_descriptors_that_add_up_to_it() {
        let mut pool = pool();
        for len in [60usize, 3840, 3841, 7680, 9014, 9018] {
            let bytes = packet(len, len as u8);
            let mut frame = pool.alloc_large().unwrap();
            pool.bytes_mut(&frame)[..len].copy_from_slice(&bytes);
            assert!(frame.set_len(len));
            let mut descs = Vec::new();
            let n = write_tx_chain(&mut pool, &frame, None, |i, d| {
                assert_eq!(i as usize, descs.len());
                descs.push(d);
            })
            .expect("the pool has frames");
            assert_eq!(n, (descs.len() as u32, ChainChecksum::None));
            assert_eq!(descs.len(), parts_needed(len, 3840), "{len}");
            let mut joined = Vec::new();
            for (i, d) in descs.iter().enumerate() {
                let contd = d.options & XDP_PKT_CONTD != 0;
                assert_eq!(contd, i + 1 < descs.len(), "CONTD on all but the last");
                assert!(d.len > 0 && d.len <= 3840);
                // Each part lies inside one UMEM frame, after its headroom.
                let in_frame = d.addr % 4096;
                assert!(in_frame >= 256 && in_frame + u64::from(d.len) <= 4096);
                let part = pool.frame_from_desc(d.addr, d.len).unwrap();
                joined.extend_from_slice(pool.bytes(&part));
                // The completion ring hands each part back.
                assert!(pool.free_addr(d.addr));
                drop(part);
            }
            assert_eq!(joined, bytes, "{len}");
            pool.free(frame).unwrap();
            assert!(all_free(&pool));
        }
    }

    #[test]
    fn a_chain_is_not_written_without_enough_free_frames() {
        let mut pool = pool();
        let mut frame = pool.alloc_large().unwrap();
        assert!(frame.set_len(9000));
        let mut taken: Vec<Frame> = (0..14).map(|_| pool.alloc().unwrap()).collect();
        let mut wrote = 0;
        assert_eq!(
            write_tx_chain(&mut pool, &frame, None, |_, _| wrote += 1),
            None
        );
        assert_eq!(wrote, 0);
        assert_eq!(pool.free_count(), 2, "nothing taken");
        pool.free(taken.pop().unwrap()).unwrap();
        assert_eq!(
            write_tx_chain(&mut pool, &frame, None, |_, _| wrote += 1),
            Some((3, ChainChecksum::None))
        );
        assert_eq!(wrote, 3);
        for f in taken {
            pool.free(f).unwrap();
        }
        pool.free(frame).unwrap();
    }

    #[test]
    fn a_checksum_request_goes_in_front_of_the_first_part_or_is_completed_here() {
        use crate::tx_checksum::{TX_METADATA_LEN, XDP_TXMD_FLAGS_CHECKSUM};
        let mut pool = pool();
        let bytes = packet(9000, 7);
        for (request, expect) in [
            ((34u16, 16u16), ChainChecksum::Offloaded),
            // A field beyond the first 3840 bytes: completed in software.
            ((4000, 6), ChainChecksum::Software),
        ] {
            let mut frame = pool.alloc_large().unwrap();
            pool.bytes_mut(&frame)[..9000].copy_from_slice(&bytes);
            assert!(frame.set_len(9000));
            assert!(pool.write_tx_checksum(&mut frame, request.0, request.1));
            assert_eq!(pool.tx_checksum_request(&frame), Some(request));
            let mut descs = Vec::new();
            let (n, checksum) =
                write_tx_chain(&mut pool, &frame, Some(request), |_, d| descs.push(d))
                    .expect("frames");
            assert_eq!((n, checksum), (3, expect));
            let first = descs[0];
            assert_eq!(
                first.options & XDP_TX_METADATA != 0,
                expect == ChainChecksum::Offloaded
            );
            assert!(descs[1..].iter().all(|d| d.options & XDP_TX_METADATA == 0));
            let mut joined = Vec::new();
            for d in &descs {
                let part = pool.frame_from_desc(d.addr, d.len).unwrap();
                joined.extend_from_slice(pool.bytes(&part));
                drop(part);
            }
            let mut expected = bytes.clone();
            match expect {
                ChainChecksum::Offloaded => {
                    // The kernel's layout, right before the first part's packet.
                    let part = pool.frame_from_desc(first.addr, first.len).unwrap();
                    let meta_at = first.addr as usize - TX_METADATA_LEN as usize;
                    let meta = pool.bytes_at_for_tests(meta_at, 12);
                    assert_eq!(&meta[..8], &XDP_TXMD_FLAGS_CHECKSUM.to_ne_bytes());
                    assert_eq!(&meta[8..10], &34u16.to_ne_bytes());
                    assert_eq!(&meta[10..12], &16u16.to_ne_bytes());
                    drop(part);
                }
                _ => assert!(complete_partial_checksum(
                    &mut expected,
                    request.0,
                    request.1
                )),
            }
            assert_eq!(joined, expected, "{request:?}");
            for d in &descs {
                assert!(pool.free_addr(d.addr));
            }
            pool.free(frame).unwrap();
            assert!(all_free(&pool));
        }
    }
}

//! `PipeDevice`: two in-memory devices joined back to back, with seeded
//! impairments (loss, duplication, reordering, corruption, delay) in virtual
//! time, for the TCP/engine tests and the in-memory benchmark.
//!
//! Time never comes from a clock: the caller sets it with
//! [`PipeDevice::set_now`] (microseconds) and asks [`PipeDevice::poll_at`]
//! when the next frame is due. The same seed gives the same packets.

use std::{
    cmp::Reverse,
    collections::{BinaryHeap, VecDeque},
    sync::{Arc, Mutex},
};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::{
    Burst, DatapathError, Device, DeviceCaps, DeviceStats, ETHERNET_HEADER_LEN, Frame,
    FrameAccounting, FramePool, LARGE_FRAME_SLACK, PoolConfig, TxChecksumOff, TxChecksumOffload,
    complete_partial_checksum,
};

/// What the link does to frames, each decided per frame from the seeded generator.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Impairments {
    /// Probability a frame is lost.
    pub loss: f64,
    /// Probability a frame is delivered twice.
    pub duplicate: f64,
    /// Probability a frame is held back by `reorder_delay_us` (so later frames overtake it).
    pub reorder: f64,
    /// Probability one bit of the frame is flipped.
    pub corrupt: f64,
    /// Fixed one-way delay in microseconds.
    pub delay_us: u64,
    /// Extra uniform random delay in `0..=jitter_us` microseconds (may reorder).
    pub jitter_us: u64,
    /// Extra delay of a reordered frame.
    pub reorder_delay_us: u64,
}

/// How to build a pipe.
#[derive(Debug, Clone, PartialEq)]
pub struct PipeConfig {
    /// Pool of each side.
    pub pool: PoolConfig,
    /// MTU reported by `caps`. Above one pool frame, each side gets large
    /// frames (as an AF_XDP port with multi-buffer descriptors does) and
    /// hands them out for longer packets.
    pub mtu: u32,
    /// Frames each direction can hold in flight; more are dropped and counted.
    pub link_capacity: u32,
    /// Impairments, the same in both directions.
    pub impairments: Impairments,
    /// Seed of the impairment generators.
    pub seed: u64,
    /// Advertise TX checksum offload and complete requested checksums in
    /// software at `tx_burst` (off by default), so the stack's offload path
    /// runs over the pipe with valid checksums on the wire.
    pub tx_checksum_offload: bool,
}

impl Default for PipeConfig {
    fn default() -> Self {
        Self {
            pool: PoolConfig {
                frame_size: 2048,
                frame_count: 1024,
                headroom: 0,
                huge_pages: false,
            },
            mtu: 1500,
            link_capacity: 512,
            impairments: Impairments::default(),
            seed: 0,
            tx_checksum_offload: false,
        }
    }
}

/// A frame in flight: `(deliver_at_us, sequence, slot, len)`; ordered by delivery time,
/// then by when it was sent.
type InFlight = (u64, u64, u32, u16);

/// One direction of the link: a slab of frame-sized slots and the frames in flight,
/// delivered earliest first (ties in the order they were sent).
///
/// Frames whose delivery times only rise (no jitter, no reordering: the common case)
/// wait in a FIFO, in O(1); the others in a heap. With 10,000 frames in flight a heap
/// costs a cold sift through 14 levels per frame, which the in-memory benchmarks at
/// 10,000 connections measured as part of every request.
#[derive(Debug)]
struct Channel {
    fifo: VecDeque<InFlight>,
    heap: BinaryHeap<Reverse<InFlight>>,
    slab: Vec<u8>,
    free_slots: Vec<u32>,
    slot_size: usize,
    sequence: u64,
}

impl Channel {
    fn new(capacity: u32, slot_size: usize) -> Self {
        Self {
            fifo: VecDeque::with_capacity(capacity as usize),
            heap: BinaryHeap::new(),
            slab: vec![0; capacity as usize * slot_size],
            free_slots: (0..capacity).rev().collect(),
            slot_size,
            sequence: 0,
        }
    }

    /// Queues a frame: in the FIFO when it is due no earlier than the FIFO's last.
    fn push(&mut self, frame: InFlight) {
        if self.fifo.back().is_none_or(|last| last.0 <= frame.0) {
            self.fifo.push_back(frame);
        } else {
            self.heap.push(Reverse(frame));
        }
    }

    /// The next frame to deliver, without taking it.
    fn peek(&self) -> Option<InFlight> {
        match (self.fifo.front(), self.heap.peek()) {
            (Some(&f), Some(&Reverse(h))) => Some(f.min(h)),
            (Some(&f), None) => Some(f),
            (None, Some(&Reverse(h))) => Some(h),
            (None, None) => None,
        }
    }

    /// Takes the frame [`Channel::peek`] returned.
    fn pop(&mut self) {
        let from_heap = match (self.fifo.front(), self.heap.peek()) {
            (Some(f), Some(Reverse(h))) => h < f,
            (None, Some(_)) => true,
            _ => false,
        };
        if from_heap {
            self.heap.pop();
        } else {
            self.fifo.pop_front();
        }
    }

    fn len(&self) -> usize {
        self.fifo.len() + self.heap.len()
    }

    fn slot_mut(&mut self, slot: u32) -> &mut [u8] {
        let start = slot as usize * self.slot_size;
        self.slab
            .get_mut(start..start + self.slot_size)
            .unwrap_or_default()
    }
}

/// One end of an in-memory link; see [`PipeDevice::pair`].
#[derive(Debug)]
pub struct PipeDevice {
    outbound: Arc<Mutex<Channel>>,
    inbound: Arc<Mutex<Channel>>,
    /// Everything else, apart from the channels: `tx_burst` and `rx_burst` hold a
    /// channel's lock while they work on this, borrowing the two fields separately
    /// instead of cloning the channel's `Arc` (two locked instructions per call).
    end: End,
}

/// A [`PipeDevice`]'s own state: its frames, its impairment generator, its clock, its
/// counters.
#[derive(Debug)]
struct End {
    pool: FramePool,
    rng: ChaCha8Rng,
    impairments: Impairments,
    now_us: u64,
    caps: DeviceCaps,
    held: u32,
    large_held: u32,
    stats: DeviceStats,
}

/// Large frames per side of a pipe whose MTU exceeds one pool frame.
const PIPE_LARGE_FRAMES: u32 = 256;

impl PipeDevice {
    /// Two devices joined back to back: what one sends, the other receives.
    pub fn pair(config: &PipeConfig) -> Result<(Self, Self), DatapathError> {
        let i = &config.impairments;
        for (name, p) in [
            ("loss", i.loss),
            ("duplicate", i.duplicate),
            ("reorder", i.reorder),
            ("corrupt", i.corrupt),
        ] {
            if !(0.0..=1.0).contains(&p) {
                return Err(DatapathError::BadPipeConfig(format!(
                    "{name} probability {p} is not in 0..=1"
                )));
            }
        }
        if config.link_capacity == 0 {
            return Err(DatapathError::BadPipeConfig("link capacity is zero".into()));
        }
        // An MTU above one pool frame gets large frames, as an AF_XDP port
        // with multi-buffer descriptors does (the link carries whole frames).
        let umem_frame = config.pool.max_frame_len();
        let large_len =
            (config.mtu as usize + ETHERNET_HEADER_LEN > umem_frame as usize).then(|| {
                config
                    .mtu
                    .saturating_add((ETHERNET_HEADER_LEN + LARGE_FRAME_SLACK) as u32)
            });
        let max_frame = large_len.unwrap_or(umem_frame);
        let a_to_b = Arc::new(Mutex::new(Channel::new(
            config.link_capacity,
            max_frame as usize,
        )));
        let b_to_a = Arc::new(Mutex::new(Channel::new(
            config.link_capacity,
            max_frame as usize,
        )));
        let new_pool = || {
            let mut pool = FramePool::new(config.pool)?;
            if let Some(len) = large_len {
                pool.enable_large_frames(PIPE_LARGE_FRAMES, len)
                    .map_err(|e| {
                        DatapathError::BadPipeConfig(format!("MTU {}: {e}", config.mtu))
                    })?;
            }
            Ok::<_, DatapathError>(pool)
        };
        let side =
            |outbound: &Arc<Mutex<Channel>>, inbound: &Arc<Mutex<Channel>>, seed: u64, queue_id| {
                Ok::<_, DatapathError>(Self {
                    outbound: Arc::clone(outbound),
                    inbound: Arc::clone(inbound),
                    end: End {
                        pool: new_pool()?,
                        rng: ChaCha8Rng::seed_from_u64(seed),
                        impairments: config.impairments,
                        now_us: 0,
                        caps: DeviceCaps {
                            mtu: config.mtu,
                            max_frame_len: max_frame,
                            tx_checksum_offload: config.tx_checksum_offload,
                            queue_id,
                        },
                        held: 0,
                        large_held: 0,
                        stats: DeviceStats::default(),
                    },
                })
            };
        let a = side(&a_to_b, &b_to_a, config.seed, 0)?;
        let b = side(&b_to_a, &a_to_b, config.seed ^ 0x9e37_79b9_7f4a_7c15, 0)?;
        Ok((a, b))
    }

    /// Sets this side's virtual time, in microseconds.
    pub fn set_now(&mut self, now_us: u64) {
        self.end.now_us = now_us;
    }

    /// When the next frame for this side is due (microseconds), if any is in flight.
    pub fn poll_at(&self) -> Option<u64> {
        let inbound = self.inbound.lock().unwrap_or_else(|e| e.into_inner());
        inbound.peek().map(|(at, ..)| at)
    }

    /// Whether this side completes requested checksums, or why not.
    pub fn tx_checksum_offload(&self) -> TxChecksumOffload {
        if self.end.caps.tx_checksum_offload {
            TxChecksumOffload::Software
        } else {
            TxChecksumOffload::Off(TxChecksumOff::NotRequested)
        }
    }

    /// Frames in flight towards this side.
    pub fn in_flight(&self) -> usize {
        self.inbound.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

impl End {
    /// Completes the checksum requested for `frame` in place, as a NIC would;
    /// `false` if the request no longer fits the packet.
    fn complete_checksum(&mut self, frame: &Frame) -> bool {
        let Some((start, offset)) = self.pool.tx_checksum_request(frame) else {
            return false;
        };
        let len = frame.len();
        let done = self
            .pool
            .bytes_mut(frame)
            .get_mut(..len)
            .is_some_and(|packet| complete_partial_checksum(packet, start, offset));
        if done {
            self.stats.tx_checksum_offloaded += 1;
        }
        done
    }

    fn send_one(&mut self, channel: &mut Channel, frame: &Frame) {
        let imp = self.impairments;
        if imp.loss > 0.0 && self.rng.random_bool(imp.loss) {
            self.stats.link_drops += 1;
            return;
        }
        let copies = if imp.duplicate > 0.0 && self.rng.random_bool(imp.duplicate) {
            2
        } else {
            1
        };
        for _ in 0..copies {
            let Some(slot) = channel.free_slots.pop() else {
                self.stats.link_drops += 1;
                return;
            };
            let bytes = self.pool.bytes(frame);
            let len = bytes.len();
            let buf = channel.slot_mut(slot);
            let Some(dst) = buf.get_mut(..len) else {
                channel.free_slots.push(slot);
                self.stats.tx_bad_length += 1;
                return;
            };
            dst.copy_from_slice(bytes);
            if imp.corrupt > 0.0 && self.rng.random_bool(imp.corrupt) && len > 0 {
                let byte = self.rng.random_range(0..len);
                let bit = self.rng.random_range(0..8u32);
                if let Some(b) = dst.get_mut(byte) {
                    *b ^= 1 << bit;
                }
            }
            let mut at = self.now_us + imp.delay_us;
            if imp.jitter_us > 0 {
                at += self.rng.random_range(0..=imp.jitter_us);
            }
            if imp.reorder > 0.0 && self.rng.random_bool(imp.reorder) {
                at += imp.reorder_delay_us;
            }
            channel.sequence += 1;
            let sequence = channel.sequence;
            channel.push((at, sequence, slot, len as u16));
        }
    }

    /// Gives `frame` back to this end's pool and counts it off what the stack holds
    /// (a frame of another pool is counted and dropped).
    fn release_one(&mut self, frame: Frame) {
        let large = frame.is_large();
        match self.pool.free(frame) {
            Ok(()) if large => self.large_held -= 1.min(self.large_held),
            Ok(()) => self.held -= 1.min(self.held),
            Err(foreign) => {
                self.stats.tx_bad_length += 1;
                drop(foreign);
            }
        }
    }
}

impl Device for PipeDevice {
    fn caps(&self) -> DeviceCaps {
        self.end.caps
    }

    fn rx_burst(&mut self, out: &mut Burst) -> usize {
        // The lock borrows one field, the loop others: no `Arc` clone (two locked
        // instructions per call) to get the channel out of `self`'s borrow.
        let mut channel = self.inbound.lock().unwrap_or_else(|e| e.into_inner());
        let mut delivered = 0u32;
        while out.remaining() > 0 {
            let Some((at, _, slot, len)) = channel.peek() else {
                break;
            };
            if at > self.end.now_us {
                break;
            }
            let Some(mut frame) = self.end.pool.alloc_for(usize::from(len)) else {
                self.end.stats.pool_empty += 1;
                break;
            };
            channel.pop();
            let len = usize::from(len);
            let src = channel.slot_mut(slot).get(..len).unwrap_or_default();
            let dst = self.end.pool.bytes_mut(&frame);
            let copied = src.len().min(dst.len());
            if let (Some(d), Some(s)) = (dst.get_mut(..copied), src.get(..copied)) {
                d.copy_from_slice(s);
            }
            channel.free_slots.push(slot);
            if copied < ETHERNET_HEADER_LEN || !frame.set_len(copied) {
                self.end.stats.rx_runts += 1;
                let _ = self.end.pool.free(frame);
                continue;
            }
            self.end.stats.rx_bytes += copied as u64;
            if frame.is_large() {
                self.end.stats.rx_multi_buffer += 1;
            }
            let large = frame.is_large();
            match out.push(frame) {
                Ok(()) if large => {
                    delivered += 1;
                    self.end.large_held += 1;
                }
                Ok(()) => {
                    delivered += 1;
                    self.end.held += 1;
                }
                Err(frame) => {
                    let _ = self.end.pool.free(frame);
                }
            }
        }
        if delivered > 0 {
            self.end.stats.rx_packets += u64::from(delivered);
            self.end.stats.rx_batches += 1;
        }
        delivered as usize
    }

    fn frame(&self, frame: &Frame) -> &[u8] {
        self.end.pool.bytes(frame)
    }

    fn request_tx_checksum(
        &mut self,
        frame: &mut Frame,
        csum_start: u16,
        csum_offset: u16,
    ) -> bool {
        self.end.caps.tx_checksum_offload
            && self
                .end
                .pool
                .write_tx_checksum(frame, csum_start, csum_offset)
    }

    fn frame_mut(&mut self, frame: &Frame) -> &mut [u8] {
        self.end.pool.bytes_mut(frame)
    }

    fn alloc_tx(&mut self) -> Option<Frame> {
        match self.end.pool.alloc() {
            Some(frame) => {
                self.end.held += 1;
                Some(frame)
            }
            None => {
                self.end.stats.pool_empty += 1;
                None
            }
        }
    }

    fn alloc_tx_for(&mut self, len: usize) -> Option<Frame> {
        if len <= self.end.pool.config().max_frame_len() as usize || self.end.pool.large_size() == 0
        {
            return self.alloc_tx();
        }
        match self.end.pool.alloc_large() {
            Some(frame) => {
                self.end.large_held += 1;
                Some(frame)
            }
            None => {
                self.end.stats.pool_empty += 1;
                None
            }
        }
    }

    fn release(&mut self, frames: &mut Burst) {
        for frame in frames.drain() {
            self.end.release_one(frame);
        }
    }

    fn release_one(&mut self, frame: Frame) {
        self.end.release_one(frame);
    }

    fn tx_burst(&mut self, tx: &mut Burst) -> usize {
        if tx.is_empty() {
            return 0;
        }
        let mut channel = self.outbound.lock().unwrap_or_else(|e| e.into_inner());
        let mut sent = 0;
        for frame in tx.drain() {
            if frame.len() < ETHERNET_HEADER_LEN || !self.end.pool.owns(&frame) {
                self.end.stats.tx_bad_length += 1;
            } else if frame.tx_checksum_requested() && !self.end.complete_checksum(&frame) {
                self.end.stats.tx_bad_checksum_request += 1;
            } else {
                self.end.send_one(&mut channel, &frame);
                if frame.is_large() {
                    self.end.stats.tx_multi_buffer += 1;
                }
                self.end.stats.tx_packets += 1;
                self.end.stats.tx_bytes += frame.len() as u64;
                sent += 1;
            }
            // The wire copied the bytes: the frame completes at once.
            self.end.release_one(frame);
        }
        drop(channel);
        if sent > 0 {
            self.end.stats.tx_batches += 1;
        }
        sent
    }

    fn stats(&self) -> DeviceStats {
        self.end.stats
    }

    fn accounting(&self) -> FrameAccounting {
        FrameAccounting {
            total: self.end.pool.size(),
            free: self.end.pool.free_count(),
            fill_ring: 0,
            held: self.end.held,
            tx_ring: 0,
            large_total: self.end.pool.large_size(),
            large_free: self.end.pool.large_free_count(),
            large_held: self.end.large_held,
        }
    }
}

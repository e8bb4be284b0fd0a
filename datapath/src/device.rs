//! The `Device` trait: batched, token-style frame I/O for one core's loop.

use crate::{Burst, DeviceStats, Frame};

/// Largest burst moved by one `rx_burst` / `tx_burst` call.
pub const BURST: usize = 64;

/// Length of an Ethernet II header; shorter frames are dropped and counted.
pub const ETHERNET_HEADER_LEN: usize = 14;

/// Bytes a large frame holds beyond Ethernet header + MTU: room for an
/// 802.1Q tag on RX, and for a writer that builds a packet in place after
/// room for its largest header and then moves it down (the engine's TCP
/// output reserves 60 bytes for a header that is usually 32).
pub const LARGE_FRAME_SLACK: usize = 128;

/// What a device can do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DeviceCaps {
    /// IP MTU of the link (the interface MTU).
    pub mtu: u32,
    /// Largest Ethernet frame (headers included, FCS excluded) one frame holds.
    pub max_frame_len: u32,
    /// Whether the device completes transport checksums on transmit for
    /// frames passed to [`Device::request_tx_checksum`]; when `false` the
    /// stack must write complete checksums in software.
    pub tx_checksum_offload: bool,
    /// The RX queue this device serves.
    pub queue_id: u32,
}

/// Where every frame of a pool is, to check nothing leaks:
/// `free + fill_ring + rx_ring_and_held + tx_ring == total` and
/// `large_free + large_held == large_total` at all times, and `held == 0`
/// and `large_held == 0` once the stack has returned everything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FrameAccounting {
    /// Frames in the pool.
    pub total: u32,
    /// Frames on the free list.
    pub free: u32,
    /// Frames given to the kernel for receiving (fill ring, or being filled).
    pub fill_ring: u32,
    /// Frames handed to the stack and not yet returned.
    pub held: u32,
    /// Frames given to the kernel for sending, not yet completed.
    pub tx_ring: u32,
    /// Large frames (for packets longer than one UMEM frame; 0 without).
    pub large_total: u32,
    /// Large frames on their free list.
    pub large_free: u32,
    /// Large frames handed to the stack, or holding a packet being joined.
    pub large_held: u32,
}

impl FrameAccounting {
    /// Whether every frame is accounted for (UMEM frames and large frames).
    pub fn balanced(&self) -> bool {
        self.free + self.fill_ring + self.held + self.tx_ring == self.total
            && self.large_free + self.large_held == self.large_total
    }
}

/// A batched frame device, driven by one core's run-to-completion loop.
///
/// Frames are [`Frame`] handles into the device's pool; the stack reads and
/// writes them through the device ([`Device::frame`], [`Device::frame_mut`])
/// and never sees a pointer. Every frame handed out must come back through
/// [`Device::release`] (dropped) or [`Device::tx_burst`] (sent).
pub trait Device {
    /// Capabilities (MTU, frame size, checksum offload, queue).
    fn caps(&self) -> DeviceCaps;

    /// Moves up to `rx.remaining()` received frames (at most [`BURST`]) into
    /// `rx`; returns how many. Refills the kernel's receive ring in batches
    /// and wakes the kernel only when it asks. Never blocks.
    fn rx_burst(&mut self, rx: &mut Burst) -> usize;

    /// The packet bytes of a frame (empty if the frame is not this device's).
    fn frame(&self, frame: &Frame) -> &[u8];

    /// The whole writable buffer of a frame (its capacity), to write headers
    /// and payload in place; then call [`Frame::set_len`]. A received frame
    /// turned into a reply keeps its bytes, so an in-place edit works.
    fn frame_mut(&mut self, frame: &Frame) -> &mut [u8];

    /// A free frame to send from (length 0), or `None` when the pool is empty
    /// (recycles completed sends first).
    fn alloc_tx(&mut self) -> Option<Frame>;

    /// A free frame to send a packet of up to `len` bytes from (length 0):
    /// where one UMEM frame is too short and the device has large frames
    /// (an MTU above one frame, sent as several chained descriptors), a large
    /// frame; else as [`Device::alloc_tx`], whose capacity may be shorter.
    fn alloc_tx_for(&mut self, len: usize) -> Option<Frame> {
        let _ = len;
        self.alloc_tx()
    }

    /// Asks the device to complete the transport checksum of `frame` when it
    /// is sent (Linux's `CHECKSUM_PARTIAL`): the field at `csum_start +
    /// csum_offset` must already hold the pseudo-header sum (folded, not
    /// complemented); the device replaces it with the complemented
    /// one's-complement sum of the packet from `csum_start` to its end. Call
    /// it after [`Frame::set_len`] and do not shorten the frame afterwards.
    ///
    /// Returns `false`, and changes nothing, when the device has no offload
    /// ([`DeviceCaps::tx_checksum_offload`]) or the request does not fit the
    /// packet: the caller must then write the checksum itself.
    fn request_tx_checksum(&mut self, frame: &mut Frame, csum_start: u16, csum_offset: u16)
    -> bool;

    /// Gives frames the stack is done with back to the device (emptying `frames`).
    fn release(&mut self, frames: &mut Burst);

    /// Gives one frame back to the device.
    fn release_one(&mut self, frame: Frame);

    /// Submits the frames of `tx` in order, as many as the ring takes; sent
    /// frames leave `tx`, frames that did not fit stay at its front for the
    /// next call. Recycles completed sends and kicks the kernel when it asks.
    /// Call it every loop iteration, even with an empty burst.
    fn tx_burst(&mut self, tx: &mut Burst) -> usize;

    /// Counters of this device.
    fn stats(&self) -> DeviceStats;

    /// Where every frame is (for the no-leak check).
    fn accounting(&self) -> FrameAccounting;
}

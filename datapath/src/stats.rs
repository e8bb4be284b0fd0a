//! Per-device counters (plain integers, owned by one core) and the kernel's
//! `XDP_STATISTICS`.

/// Counters of one device. Plain integers: a device belongs to one core.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DeviceStats {
    /// Frames received and handed to the stack.
    pub rx_packets: u64,
    /// Bytes of those frames.
    pub rx_bytes: u64,
    /// `rx_burst` calls that returned at least one frame.
    pub rx_batches: u64,
    /// Frames submitted for sending.
    pub tx_packets: u64,
    /// Bytes of those frames.
    pub tx_bytes: u64,
    /// `tx_burst` calls that submitted at least one frame.
    pub tx_batches: u64,
    /// Received frames shorter than an Ethernet header, dropped.
    pub rx_runts: u64,
    /// Descriptors from the kernel (RX or completion) that did not fit the pool, dropped.
    pub bad_descriptors: u64,
    /// Frames released with a length the device could not send (empty or too long).
    pub tx_bad_length: u64,
    /// Times the fill ring had to be refilled while empty (we were too slow).
    pub fill_ring_empty: u64,
    /// Times `tx_burst` could not submit everything because the TX ring was full.
    pub tx_ring_full: u64,
    /// Times `alloc_tx` found no free frame.
    pub pool_empty: u64,
    /// Wakeup syscalls made because the kernel asked (`needs_wakeup`).
    pub wakeups: u64,
    /// `recvfrom` calls made on an empty RX ring with busy polling on (each may run the
    /// queue's NAPI on this core; see [`crate::BusyPoll`]).
    pub busy_polls: u64,
    /// Frames sent with a transport checksum request the device honoured
    /// ([`crate::Device::request_tx_checksum`]): proof the offload was used.
    pub tx_checksum_offloaded: u64,
    /// Frames dropped at `tx_burst` because their checksum request no longer
    /// fitted the packet (its length changed after the request).
    pub tx_bad_checksum_request: u64,
    /// Packets received as several descriptors (`XDP_PKT_CONTD`) and joined
    /// into one large frame.
    pub rx_multi_buffer: u64,
    /// Packets sent as several chained descriptors (from a large frame).
    pub tx_multi_buffer: u64,
    /// Descriptor chains dropped because no large frame was free to join them.
    pub rx_chain_no_large_frame: u64,
    /// Descriptor chains dropped because the packet was longer than a large frame.
    pub rx_chain_too_long: u64,
    /// Descriptor chains dropped because one of their descriptors was bad
    /// (also counted in `bad_descriptors`).
    pub rx_chain_bad_part: u64,
    /// Frames dropped by an impairment or a full link (pipe devices only).
    pub link_drops: u64,
    /// The kernel's own counters, when the device has them.
    pub kernel: Option<KernelXdpStats>,
}

/// The kernel's `XDP_STATISTICS` for one AF_XDP socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct KernelXdpStats {
    /// Frames dropped for reasons other than invalid descriptors.
    pub rx_dropped: u64,
    /// Invalid descriptors on the fill ring.
    pub rx_invalid_descs: u64,
    /// Invalid descriptors on the TX ring.
    pub tx_invalid_descs: u64,
    /// Frames dropped because the RX ring was full.
    pub rx_ring_full: u64,
    /// Times the kernel found the fill ring empty.
    pub fill_ring_empty: u64,
    /// Times the kernel found the TX ring empty.
    pub tx_ring_empty: u64,
}

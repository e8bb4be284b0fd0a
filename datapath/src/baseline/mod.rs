//! Reference loops for `surge-bench datapath`, kept here because they need
//! `unsafe` (only the device layer and the loader may have it): a minimal
//! AF_XDP loop written directly on `xsk-rs`, and a kernel AF_PACKET
//! sender/receiver. Not for the stack; built only with the `baseline` feature.

mod af_packet;
mod xsk_rs;

use std::time::Instant;

pub use af_packet::{PacketReceiver, PacketSender};
pub use xsk_rs::{XskRsReceiver, XskRsSender};

/// What one side of a benchmark run did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoopResult {
    /// Frames sent or received.
    pub frames: u64,
    /// When the loop started.
    pub started: Instant,
    /// When the last frame was handled (`started` if none was).
    pub last_frame: Instant,
    /// Ring operations (or `sendmmsg`/`recvmmsg` calls) that moved at least one frame.
    pub batches: u64,
    /// Syscalls made: AF_XDP wakeups (`sendto`/`recvfrom`), or `sendmmsg`/`recvmmsg` calls.
    pub syscalls: u64,
    /// The kernel's `XDP_STATISTICS` of the socket at the end (AF_XDP only).
    pub kernel: Option<crate::KernelXdpStats>,
}

/// How long a receiver waits after the senders finished for stragglers.
pub const RECEIVE_GRACE: std::time::Duration = std::time::Duration::from_millis(300);

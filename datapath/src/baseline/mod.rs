//! Reference loops for `surge-bench datapath`, kept here because they need
//! `unsafe` (only the device layer and the loader may have it): a minimal
//! AF_XDP loop written directly on `xsk-rs`, and a kernel AF_PACKET
//! sender/receiver. Not for the stack; built only with the `baseline` feature.

mod af_packet;
mod xsk_rs;

use std::{
    sync::atomic::{AtomicU64, Ordering},
    time::{Duration, Instant},
};

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

/// Closed-loop pacing shared by the senders and receivers of one run: the
/// senders keep at most `window` frames in flight (sent and not yet received,
/// summed over queues), so no receiver ring overflows and a run measures the
/// loops' cost rather than how many frames the scheduler let the receivers
/// drop. A window of 0 is the open loop (send as fast as the kernel takes).
#[derive(Debug, Default)]
pub struct Credit {
    window: u64,
    sent: AtomicU64,
    received: AtomicU64,
}

/// How long senders wait for credit before writing the frames in flight off as lost.
const CREDIT_STALL: Duration = Duration::from_millis(200);

impl Credit {
    /// Pacing with `window` frames in flight at most (0: none).
    pub fn new(window: u64) -> Self {
        Self {
            window,
            ..Self::default()
        }
    }

    /// Frames a sender may send now. When there has been no credit for
    /// `CREDIT_STALL` (frames lost on the way), the frames in flight are
    /// written off so the run goes on.
    pub fn allowance(&self, stalled_since: &mut Option<Instant>) -> u64 {
        if self.window == 0 {
            return u64::MAX;
        }
        let sent = self.sent.load(Ordering::Relaxed);
        let in_flight = sent.saturating_sub(self.received.load(Ordering::Relaxed));
        let allowance = self.window.saturating_sub(in_flight);
        if allowance > 0 {
            *stalled_since = None;
        } else if stalled_since.get_or_insert_with(Instant::now).elapsed() > CREDIT_STALL {
            self.received.fetch_add(in_flight, Ordering::Relaxed);
            *stalled_since = None;
        }
        allowance
    }

    /// Records `n` frames handed to the kernel.
    pub fn sent(&self, n: u64) {
        if self.window > 0 && n > 0 {
            self.sent.fetch_add(n, Ordering::Relaxed);
        }
    }

    /// Records `n` frames received.
    pub fn received(&self, n: u64) {
        if self.window > 0 && n > 0 {
            self.received.fetch_add(n, Ordering::Relaxed);
        }
    }
}

/// How long a receiver waits after the senders finished for stragglers.
pub const RECEIVE_GRACE: std::time::Duration = std::time::Duration::from_millis(300);

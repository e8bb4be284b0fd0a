//! Sans-IO TCP (RFC 9293).
//!
//! A [`Tcb`] is one connection. The engine feeds it segments ([`Tcb::handle_segment`]),
//! timeouts ([`Tcb::handle_timeout`] at [`Tcb::poll_at`]) and user calls
//! ([`Tcb::send`], [`Tcb::recv`], [`Tcb::close`], ...), then drains
//! [`Tcb::poll_transmit`] until it returns `None`. Nothing here reads a clock or
//! touches a device; `now` is always an argument, randomness (the ISN) comes in
//! from the caller.
//!
//! How an engine drives it:
//! - Demultiplex by 4-tuple: a connection, else a [`TimeWait`] record
//!   ([`TimeWaitTable`]), else a half-open [`RequestSock`] ([`SynQueue`]; the ACK that
//!   completes it makes the connection with [`Tcb::from_request`]). None: a listener runs
//!   [`listen_action`] (SYN -> [`SynQueue::admit`] with an ISS from [`IsnGenerator`], or a
//!   [`SynCookies`] SYN-ACK when the queue is full; an ACK may carry a cookie); otherwise
//!   answer with [`reply_to_unknown`]. A connection the user closed that reaches
//!   TIME-WAIT becomes a [`TimeWait`] record ([`TimeWait::from_tcb`]). A SYN for a TIME-WAIT connection may reopen it when
//!   [`Tcb::time_wait_accepts_syn`] says so; an active open may take a TIME-WAIT tuple when
//!   [`Tcb::can_reuse_time_wait`] (ISS from [`Tcb::time_wait_reuse_iss`]).
//! - After every input, timeout or user call, drain `poll_transmit` (give a buffer of at
//!   least one MSS) and re-arm the connection's timer-wheel entry at `poll_at`.
//! - Remove the connection once [`Tcb::is_closed`] (CLOSED and no pending output).
//! - ICMP errors quoting the connection go to [`Tcb::handle_icmp_frag_needed`] and
//!   [`Tcb::handle_icmp_unreachable`]. `SO_LINGER` with a zero timeout is [`Tcb::abort`].
//!
//! ```
//! use std::net::{Ipv4Addr, SocketAddrV4};
//! use surge_stack::FourTuple;
//! use surge_stack::tcp::{State, Tcb, TcpConfig};
//! use surge_stack::time::Instant;
//!
//! let tuple = FourTuple::new(
//!     SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 1), 40000),
//!     SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 2), 80),
//! );
//! let mut tcb = Tcb::connect(tuple, 1000, Instant::ZERO, &TcpConfig::default());
//! let mut buf = [0u8; 1500];
//! let syn = tcb.poll_transmit(Instant::ZERO, &mut buf).unwrap();
//! assert_eq!(syn.repr.seq_number, 1000);
//! assert_eq!(tcb.state(), State::SynSent);
//! ```

mod autotune;
mod bbr;
mod buffer;
pub mod buffer_pool;
mod config;
mod congestion;
mod cubic;
mod ecn;
mod error;
mod fast;
mod icmp;
mod info;
mod input;
mod isn;
mod ooo;
mod options;
mod output;
mod pacing;
mod rack;
mod rate;
mod recovery;
pub mod request;
mod rtt;
mod sack;
mod sent;
mod seq;
mod stats;
pub mod syn_cookie;
mod tcb;
pub mod time_wait;
mod timers;

pub use bbr::{Bbr, BbrMode};
pub use buffer::RingBuffer;
pub use buffer_pool::{BufferPool, BufferPoolStats};
pub use config::{CongestionAlgorithm, KeepaliveConfig, LossRecovery, SharedConfigs, TcpConfig};
pub use congestion::{AckSample, BbrInfo, CongestionControl, NewReno, RecoveryState};
pub use cubic::Cubic;
pub use ecn::Ecn;
pub use error::TcpError;
pub use icmp::IcmpUnreachable;
pub use info::TcpInfo;
pub use isn::{IsnGenerator, TimestampOffsets};
pub use ooo::OutOfOrderQueue;
pub use options::{DEFAULT_MSS, header_len};
pub use output::Transmit;
pub(crate) use output::WriteSegment;
pub use rate::RateSample;
pub use request::{
    AdmitError, RequestAction, RequestSock, RequestTimeout, SynQueue, SynQueueCounters,
};
pub use rtt::RttEstimator;
pub use sack::{SackScoreboard, SackSummary};
pub use seq::SeqNumber;
pub use stats::TcpStats;
pub use syn_cookie::{CookieConnection, CookieError, CookieOptions, SynCookies};
pub use tcb::Tcb;
pub use time_wait::{TimeWait, TimeWaitAck, TimeWaitAction, TimeWaitCounters, TimeWaitTable};

use crate::wire::{TcpFlags, TcpRepr};

/// Connection states (RFC 9293 §3.3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    /// No connection.
    Closed,
    /// Waiting for a SYN (held by the engine's listener, not by a `Tcb`).
    Listen,
    /// SYN sent, waiting for SYN-ACK.
    SynSent,
    /// SYN received and SYN-ACK sent, waiting for the ACK.
    SynReceived,
    /// Open: data flows both ways.
    Established,
    /// We sent FIN; waiting for its ACK or the peer's FIN.
    FinWait1,
    /// Our FIN is acknowledged; waiting for the peer's FIN.
    FinWait2,
    /// The peer sent FIN; we may still send.
    CloseWait,
    /// Both sent FIN at once; waiting for the ACK of ours.
    Closing,
    /// We sent FIN after the peer's; waiting for its ACK.
    LastAck,
    /// Both FINs acknowledged; lingering 2*MSL for stray segments.
    TimeWait,
}

/// RFC 9293 §3.10.7.1: the RST that answers `seg` when no connection exists (CLOSED).
/// Returns `None` for a segment that itself carries RST. Ports are swapped.
pub fn reply_to_unknown(seg: &TcpRepr, payload_len: usize) -> Option<TcpRepr> {
    if seg.flags.contains(TcpFlags::RST) {
        return None;
    }
    let base = TcpRepr {
        src_port: seg.dst_port,
        dst_port: seg.src_port,
        ..TcpRepr::default()
    };
    if seg.flags.contains(TcpFlags::ACK) {
        // <SEQ=SEG.ACK><CTL=RST>
        Some(TcpRepr {
            seq_number: seg.ack_number,
            flags: TcpFlags::RST,
            ..base
        })
    } else {
        // <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>
        let seg_len = payload_len
            + usize::from(seg.flags.contains(TcpFlags::SYN))
            + usize::from(seg.flags.contains(TcpFlags::FIN));
        let ack = SeqNumber(seg.seq_number) + seg_len;
        Some(TcpRepr {
            seq_number: 0,
            ack_number: ack.0,
            flags: TcpFlags::RST | TcpFlags::ACK,
            ..base
        })
    }
}

/// What a listener does with a segment (RFC 9293 §3.10.7.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListenAction {
    /// Drop silently.
    Ignore,
    /// Answer with this RST.
    Reset(TcpRepr),
    /// A SYN: create a connection with [`Tcb::accept_syn`] (if the SYN queue has room).
    Accept,
}

/// RFC 9293 §3.10.7.2: LISTEN-state processing of `seg`.
pub fn listen_action(seg: &TcpRepr, payload_len: usize) -> ListenAction {
    let f = seg.flags;
    if f.contains(TcpFlags::RST) {
        return ListenAction::Ignore;
    }
    if f.contains(TcpFlags::ACK) {
        return reply_to_unknown(seg, payload_len)
            .map_or(ListenAction::Ignore, ListenAction::Reset);
    }
    if f.contains(TcpFlags::SYN) {
        ListenAction::Accept
    } else {
        ListenAction::Ignore
    }
}

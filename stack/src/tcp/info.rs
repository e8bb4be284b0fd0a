//! `TcpInfo`: a connection's state and estimates under the names Linux's `struct tcp_info`
//! uses (`tcpi_*` without the prefix), in Linux's units: microseconds, segments, bytes.

use super::State;
use super::config::CongestionAlgorithm;
use super::congestion::BbrInfo;
use super::tcb::Tcb;
use crate::time::Instant;
use core::time::Duration;

/// RFC 8985 / RFC 5681 DupThresh: the reordering degree Linux starts from.
const DEFAULT_REORDERING: u32 = 3;
/// Linux caps `tcpi_reordering` at `tcp_max_reordering` (300).
const MAX_REORDERING: u32 = 300;

/// A snapshot of one connection, field by field as Linux's `TCP_INFO`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpInfo {
    /// `tcpi_state`.
    pub state: State,
    /// `tcpi_retransmits`: consecutive retransmission timeouts (RTO backoff).
    pub retransmits: u32,
    /// `tcpi_rto`, microseconds, with backoff.
    pub rto: u32,
    /// `tcpi_snd_mss`.
    pub snd_mss: u32,
    /// `tcpi_rcv_mss`.
    pub rcv_mss: u32,
    /// `tcpi_unacked`: segments sent and not cumulatively acknowledged.
    pub unacked: u32,
    /// `tcpi_sacked`: of those, segments the peer SACKed.
    pub sacked: u32,
    /// `tcpi_lost`: of those, segments marked lost.
    pub lost: u32,
    /// `tcpi_rtt`: smoothed RTT, microseconds.
    pub rtt: u32,
    /// `tcpi_rttvar`, microseconds.
    pub rttvar: u32,
    /// `tcpi_snd_ssthresh`, segments (`u32::MAX / snd_mss` before the first loss, as Linux's
    /// "infinite" 0x7fffffff).
    pub snd_ssthresh: u32,
    /// `tcpi_snd_cwnd`, segments.
    pub snd_cwnd: u32,
    /// `tcpi_reordering`: how many segments the network reorders by (3 until seen).
    pub reordering: u32,
    /// `tcpi_total_retrans`: segments retransmitted over the connection's life.
    pub total_retrans: u32,
    /// `tcpi_bytes_acked`.
    pub bytes_acked: u64,
    /// `tcpi_bytes_received`.
    pub bytes_received: u64,
    /// `tcpi_delivery_rate`, bytes per second over the last round trip.
    pub delivery_rate: u64,
    /// `tcpi_delivery_rate_app_limited`: the application, not the network, limited that rate.
    pub delivery_rate_app_limited: bool,
    /// `tcpi_rcv_rtt`: the receiver's RTT estimate (from timestamps), microseconds; 0
    /// until measured.
    pub rcv_rtt: u32,
    /// `tcpi_rcv_space`: the most bytes the application read in one round trip, as
    /// receive-buffer autotuning measured it (the initial guess until then).
    pub rcv_space: u32,
    /// `tcpi_snd_wnd`: the peer's last advertised window, bytes.
    pub snd_wnd: u32,
    /// `tcpi_rcv_wnd`: the window we last advertised, bytes from `RCV.NXT`.
    pub rcv_wnd: u32,
    /// The send buffer's size now, bytes: what `getsockopt(SO_SNDBUF)` reads on Linux (not
    /// part of its `tcp_info`); autotuning grows it with cwnd.
    pub snd_buf: u32,
    /// The receive buffer's size now, bytes (Linux `SO_RCVBUF`); autotuning grows it.
    pub rcv_buf: u32,
    /// ECN was negotiated (RFC 3168; Linux `tcpi_options & TCPI_OPT_ECN`).
    pub ecn: bool,
    /// `tcpi_pacing_rate`, bytes per second; 0 when unpaced (Linux reports ~0 for
    /// "unlimited").
    pub pacing_rate: u64,
    /// The congestion-control algorithm in use (`TCP_CONGESTION`).
    pub congestion: CongestionAlgorithm,
    /// `tcp_bbr_info` (`INET_DIAG_BBRINFO`) for a BBR connection.
    pub bbr: Option<BbrInfo>,
}

fn saturate(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

fn micros(d: Duration) -> u32 {
    u32::try_from(d.as_micros()).unwrap_or(u32::MAX)
}

impl Tcb {
    /// `getsockopt(TCP_INFO)`: state, estimates and counters with Linux's names.
    pub fn info(&self) -> TcpInfo {
        let mss = self.snd_mss.max(1);
        let flight = self.snd_max.since(self.snd_una);
        let (unacked, sacked, lost) = if self.rack_mode() {
            (
                u32::try_from(self.sent.len()).unwrap_or(u32::MAX),
                self.sent.sacked_segments,
                self.sent.lost.div_ceil(mss),
            )
        } else {
            (flight.div_ceil(mss), 0, 0)
        };
        let reordering = if self.rack.reordering_seen {
            (self.rack.reordering_bytes / mss).clamp(DEFAULT_REORDERING, MAX_REORDERING)
        } else {
            DEFAULT_REORDERING
        };
        TcpInfo {
            state: self.state,
            retransmits: self.backoff,
            rto: micros(self.rtt.backed_off(self.backoff)),
            snd_mss: self.snd_mss,
            rcv_mss: self.rcv_mss,
            unacked,
            sacked,
            lost,
            rtt: micros(self.rtt.srtt().unwrap_or_default()),
            rttvar: micros(self.rtt.rttvar()),
            snd_ssthresh: self.cc.ssthresh() / mss,
            snd_cwnd: self.cc.window() / mss,
            reordering,
            total_retrans: self.stats.retransmits,
            bytes_acked: self.stats.bytes_acked,
            bytes_received: self.stats.bytes_in,
            delivery_rate: self.delivery_rate,
            delivery_rate_app_limited: self.rate_app_limited,
            rcv_rtt: self.rcv_rtt >> 3,
            rcv_space: if self.rcvq_space == 0 {
                let segments = 10 * u32::from(self.cfg.mss);
                segments.min(saturate(self.recv_buf.capacity()))
            } else {
                self.rcvq_space
            },
            snd_wnd: self.snd_wnd,
            rcv_wnd: self.rcv_adv.since(self.rcv_nxt),
            snd_buf: saturate(self.send_buf.capacity()),
            rcv_buf: saturate(self.recv_buf.capacity()),
            ecn: self.ecn_ok,
            pacing_rate: self.sender.as_ref().map_or(0, |s| s.pacer.rate()),
            congestion: self.effective_congestion(),
            bbr: self.cc.bbr_info(),
        }
    }

    /// Counts `bytes` newly delivered to the peer and closes a delivery-rate sample once a
    /// round trip (at least 1 ms) has passed since it began. In integers (this runs on every
    /// ACK): the round in nanoseconds against the time elapsed, exactly as `Duration`s.
    pub(super) fn on_delivered(&mut self, now: Instant, bytes: u64) {
        self.delivered = self.delivered.saturating_add(bytes);
        let (start, at_start) = self.rate_sample_start;
        let elapsed_micros = now.micros_since(start);
        if elapsed_micros < 1000 {
            // Within the 1 ms every round lasts at least: the SRTT need not be looked at.
            return;
        }
        let round_nanos = self.rtt.srtt_nanos().unwrap_or(0).max(1_000_000);
        // Saturating: a span too long for a u64 of nanoseconds exceeds every round.
        if elapsed_micros.saturating_mul(1000) >= round_nanos {
            let micros = elapsed_micros.max(1);
            self.delivery_rate = (self.delivered - at_start).saturating_mul(1_000_000) / micros;
            self.rate_app_limited = self.app_limited_now;
            self.app_limited_now = false;
            self.rate_sample_start = (now, self.delivered);
        }
    }
}

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

/// Bytes per second for `bytes` delivered in `micros` microseconds (saturating; 0 for an
/// empty span, which only the initial `(0, 0)` sample has).
fn delivery_rate(bytes: u64, micros: u64) -> u64 {
    bytes.saturating_mul(1_000_000) / micros.max(1)
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
            delivery_rate: self.delivery_rate(),
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

    /// `tcpi_delivery_rate`: the last closed sample's bytes per second (0 before the first).
    fn delivery_rate(&self) -> u64 {
        let (bytes, micros) = self.rate_sample;
        delivery_rate(bytes, micros)
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
            // At least 1000 µs here: `delivery_rate` divides by it when `TcpInfo` is read.
            self.rate_sample = (self.delivered - at_start, elapsed_micros);
            self.rate_app_limited = self.app_limited_now;
            self.app_limited_now = false;
            self.rate_sample_start = (now, self.delivered);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::TcpConfig;
    use super::*;
    use crate::FourTuple;
    use core::net::Ipv4Addr;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// The sampler as it was when every closing ACK divided: `(delivered, start,
    /// rate, app_limited_now, rate_app_limited)` after one delivery.
    struct DividingSampler {
        delivered: u64,
        start: (Instant, u64),
        rate: u64,
        app_limited_now: bool,
        rate_app_limited: bool,
    }

    impl DividingSampler {
        fn on_delivered(&mut self, now: Instant, bytes: u64, srtt_nanos: Option<u64>) {
            self.delivered = self.delivered.saturating_add(bytes);
            let (start, at_start) = self.start;
            let elapsed = Duration::from_micros(now.micros_since(start));
            let round = Duration::from_nanos(srtt_nanos.unwrap_or(0)).max(Duration::from_millis(1));
            if elapsed >= round {
                let micros = u64::try_from(elapsed.as_micros()).unwrap().max(1);
                self.rate = (self.delivered - at_start).saturating_mul(1_000_000) / micros;
                self.rate_app_limited = self.app_limited_now;
                self.app_limited_now = false;
                self.start = (now, self.delivered);
            }
        }
    }

    /// `TcpInfo`'s delivery rate, divided when read, is the rate the sampler dividing on
    /// every closing ACK gave, over random deliveries (tiny and huge counts, gaps within
    /// and beyond the round, RTT samples moving the round, the clock standing still).
    #[test]
    fn delivery_rate_divided_when_read_matches_dividing_on_every_ack() {
        let tuple = FourTuple {
            local_addr: Ipv4Addr::new(10, 0, 0, 1),
            local_port: 1000,
            remote_addr: Ipv4Addr::new(10, 0, 0, 2),
            remote_port: 2000,
        };
        let mut closed = 0;
        for seed in 0..50 {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            let mut now = Instant::from_micros(rng.random_range(0..1_000_000));
            let mut tcb = Tcb::connect(tuple, 1, now, &TcpConfig::default());
            let mut old = DividingSampler {
                delivered: 0,
                start: (now, 0),
                rate: 0,
                app_limited_now: false,
                rate_app_limited: false,
            };
            assert_eq!(tcb.info().delivery_rate, 0);
            for _ in 0..2000 {
                if rng.random_ratio(1, 4) {
                    let rtt = match rng.random_range(0..100) {
                        0..33 => rng.random_range(0..2_000),
                        33..66 => rng.random_range(0..50_000),
                        66..99 => rng.random_range(0..2_000_000),
                        _ => rng.random_range(0..u64::MAX / 1000),
                    };
                    tcb.rtt.sample_micros(rtt, false);
                }
                if rng.random_ratio(1, 8) {
                    let limited = rng.random();
                    tcb.app_limited_now = limited;
                    old.app_limited_now = limited;
                }
                now = Instant::from_micros(now.total_micros().saturating_add(
                    match rng.random_range(0..1000) {
                        0..200 => 0,
                        200..500 => rng.random_range(0..1_000),
                        500..800 => rng.random_range(0..20_000),
                        800..999 => rng.random_range(0..3_000_000),
                        _ => rng.random_range(0..u64::MAX / 4),
                    },
                ));
                let bytes = match rng.random_range(0..4) {
                    0 => 0,
                    1 => rng.random_range(1..1500),
                    2 => rng.random_range(0..1 << 40),
                    _ => rng.random(),
                };
                let before = old.start;
                old.on_delivered(now, bytes, tcb.rtt.srtt_nanos());
                tcb.on_delivered(now, bytes);
                closed += usize::from(old.start != before);
                let info = tcb.info();
                assert_eq!(info.delivery_rate, old.rate, "seed {seed}");
                assert_eq!(info.delivery_rate_app_limited, old.rate_app_limited);
                assert_eq!(tcb.delivered, old.delivered);
                assert_eq!(tcb.rate_sample_start, old.start);
                assert_eq!(tcb.app_limited_now, old.app_limited_now);
            }
        }
        assert!(closed > 5_000, "only {closed} samples closed");
    }
}

//! Congestion control behind a small trait: RFC 5681 NewReno here, CUBIC (RFC 9438) with
//! HyStart++ (RFC 9406) in `cubic.rs`, BBR v1 in `bbr.rs`.
//!
//! Loss detection and recovery (duplicate ACKs, RACK, the `recover` point, RFC 6582's window
//! inflation) live in the connection; an algorithm owns the window arithmetic: how the window
//! grows on ACKs and how far it falls on a congestion event. A model-based algorithm (BBR)
//! also sets a pacing rate and keeps the window during recovery itself
//! ([`CongestionControl::controls_recovery`]).

use super::rate::RateSample;
use super::seq::SeqNumber;
use crate::time::Instant;
use core::fmt::Debug;
use core::time::Duration;

/// What one ACK of new data tells the algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AckSample {
    /// Arrival time.
    pub now: Instant,
    /// Bytes newly acknowledged (cumulatively).
    pub acked: u32,
    /// Sender MSS.
    pub mss: u32,
    /// The cumulative ACK.
    pub ack: SeqNumber,
    /// Highest sequence number sent plus one.
    pub snd_max: SeqNumber,
    /// The RTT measured from this ACK, if any.
    pub rtt: Option<Duration>,
    /// Smoothed RTT (zero before the first sample).
    pub srtt: Duration,
    /// Bytes newly delivered by this ACK: acknowledged plus newly SACKed (RFC 6937
    /// DeliveredData). With SACK-based recovery only (0 otherwise).
    pub newly_delivered: u32,
    /// Bytes delivered over the connection's life after this ACK (the rate sampler's
    /// `C.delivered`).
    pub delivered: u64,
    /// Bytes newly marked lost while this ACK was processed.
    pub newly_lost: u32,
    /// Bytes in flight (RFC 6675 `pipe`) before this ACK.
    pub prior_inflight: u32,
    /// Bytes in flight after it.
    pub inflight: u32,
    /// This ACK's delivery-rate sample, when valid (`rate.rs`).
    pub rate: Option<RateSample>,
    /// The loss-recovery state after this ACK.
    pub recovery: RecoveryState,
}

impl AckSample {
    /// A sample of what CUBIC and NewReno read; the rest empty (no SACK-based recovery).
    pub fn basic(
        now: Instant,
        acked: u32,
        mss: u32,
        ack: SeqNumber,
        snd_max: SeqNumber,
        rtt: Option<Duration>,
        srtt: Duration,
    ) -> Self {
        AckSample {
            now,
            acked,
            mss,
            ack,
            snd_max,
            rtt,
            srtt,
            newly_delivered: 0,
            delivered: 0,
            newly_lost: 0,
            prior_inflight: 0,
            inflight: 0,
            rate: None,
            recovery: RecoveryState::Open,
        }
    }
}

/// The connection's loss-recovery state (Linux `icsk_ca_state`, without Disorder and CWR).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub enum RecoveryState {
    /// No loss being repaired.
    #[default]
    Open,
    /// Fast recovery (RFC 6675 / RACK).
    Recovery,
    /// After a retransmission timeout, until what was outstanding then is acknowledged.
    Loss,
}

/// What `tcp_bbr_info` reports: the model of a BBR connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BbrInfo {
    /// `bbr_bw_lo/hi`: the bottleneck bandwidth estimate, bytes per second.
    pub bw: u64,
    /// `bbr_min_rtt`: the round-trip propagation estimate, microseconds (0 unknown).
    pub min_rtt: u32,
    /// `bbr_pacing_gain` in 1/256ths.
    pub pacing_gain: u32,
    /// `bbr_cwnd_gain` in 1/256ths.
    pub cwnd_gain: u32,
}

/// Window arithmetic of a congestion-control algorithm. All sizes are bytes.
pub trait CongestionControl: Debug + Send {
    /// Congestion window.
    fn window(&self) -> u32;
    /// Slow-start threshold.
    fn ssthresh(&self) -> u32;
    /// Sets the window (loss recovery inflates and deflates it, RFC 6582 §3.2).
    fn set_window(&mut self, cwnd: u32);
    /// New data was cumulatively acknowledged outside recovery.
    fn on_ack(&mut self, ack: &AckSample);
    /// Loss detected (fast retransmit, RACK): lower ssthresh and set cwnd to it.
    fn on_congestion_event(&mut self, now: Instant, flight: u32, mss: u32);
    /// The retransmission timer expired with `flight` bytes outstanding.
    fn on_rto(&mut self, now: Instant, flight: u32, mss: u32);
    /// The last congestion event was spurious (RFC 5682 F-RTO, D-SACK): restore the window
    /// and threshold from before it.
    fn on_spurious(&mut self);
    /// Sending resumes after an idle period longer than the RTO.
    fn on_idle_restart(&mut self, restart_window: u32);
    /// The MSS changed (e.g. after a path-MTU update).
    fn on_mss_change(&mut self, mss: u32);
    /// The rate to pace at, bytes per second; `None`: unpaced (or the connection's own
    /// window-based pacing when `TcpConfig::pacing` is on).
    fn pacing_rate(&self) -> Option<u64> {
        None
    }
    /// True when the algorithm sets the window on every ACK, in recovery too (RFC 6937 PRR
    /// and the cwnd = ssthresh on leaving recovery are skipped), as Linux's `cong_control`
    /// hook: `on_ack` then sees every ACK, not only those of new data outside recovery.
    fn controls_recovery(&self) -> bool {
        false
    }
    /// True when `on_ack` needs delivery-rate samples (`AckSample::rate`): only then does
    /// a connection without pacing keep the sampler (it costs every send and ACK).
    fn uses_rate_samples(&self) -> bool {
        self.controls_recovery()
    }
    /// True while rate samples would understate the path (BBR's PROBE_RTT): the connection
    /// marks itself app-limited.
    fn wants_app_limited(&self) -> bool {
        false
    }
    /// The model of a BBR connection (`tcp_bbr_info`), for `TcpInfo`.
    fn bbr_info(&self) -> Option<BbrInfo> {
        None
    }
}

/// RFC 5681 + RFC 6582 NewReno.
#[derive(Debug, Clone)]
pub struct NewReno {
    cwnd: u32,
    ssthresh: u32,
    /// Bytes acknowledged since cwnd last grew in congestion avoidance.
    bytes_acked: u32,
    /// Window and threshold before the last congestion event (for an undo).
    prior: Option<(u32, u32)>,
}

impl NewReno {
    /// Starts with `initial_window` bytes (RFC 5681 §3.1 IW, RFC 6928) and an arbitrarily high ssthresh.
    pub fn new(initial_window: u32) -> Self {
        NewReno {
            cwnd: initial_window,
            ssthresh: u32::MAX,
            bytes_acked: 0,
            prior: None,
        }
    }

    /// RFC 5681 §3.1 equation (4): ssthresh = max(FlightSize / 2, 2*SMSS).
    fn halve(flight: u32, mss: u32) -> u32 {
        (flight / 2).max(2 * mss)
    }
}

impl CongestionControl for NewReno {
    fn window(&self) -> u32 {
        self.cwnd
    }

    fn ssthresh(&self) -> u32 {
        self.ssthresh
    }

    fn set_window(&mut self, cwnd: u32) {
        self.cwnd = cwnd;
    }

    fn on_ack(&mut self, ack: &AckSample) {
        let (acked, mss) = (ack.acked, ack.mss);
        if self.cwnd < self.ssthresh {
            // RFC 5681 §3.1 slow start, RFC 3465 ABC with L = 2*SMSS.
            self.cwnd = self.cwnd.saturating_add(acked.min(2 * mss));
        } else {
            // RFC 5681 §3.1 congestion avoidance: one SMSS per cwnd acknowledged.
            self.bytes_acked = self.bytes_acked.saturating_add(acked);
            if self.bytes_acked >= self.cwnd {
                self.bytes_acked -= self.cwnd;
                self.cwnd = self.cwnd.saturating_add(mss);
            }
        }
    }

    fn on_congestion_event(&mut self, _now: Instant, flight: u32, mss: u32) {
        self.prior = Some((self.cwnd, self.ssthresh));
        // RFC 5681 §3.2 step 2: ssthresh = max(FlightSize / 2, 2*SMSS).
        self.ssthresh = Self::halve(flight, mss);
        self.cwnd = self.ssthresh;
        self.bytes_acked = 0;
    }

    fn on_rto(&mut self, _now: Instant, flight: u32, mss: u32) {
        self.prior = Some((self.cwnd, self.ssthresh));
        // RFC 5681 §3.1 equation (4) and loss window LW = 1 SMSS.
        self.ssthresh = Self::halve(flight, mss);
        self.cwnd = mss;
        self.bytes_acked = 0;
    }

    fn on_spurious(&mut self) {
        if let Some((cwnd, ssthresh)) = self.prior.take() {
            self.cwnd = self.cwnd.max(cwnd);
            self.ssthresh = self.ssthresh.max(ssthresh);
        }
    }

    fn on_idle_restart(&mut self, restart_window: u32) {
        // RFC 5681 §4.1: cwnd = min(RW, cwnd).
        self.cwnd = self.cwnd.min(restart_window);
    }

    fn on_mss_change(&mut self, mss: u32) {
        self.cwnd = self.cwnd.max(mss);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An ACK of `acked` bytes with a 1000-byte MSS.
    pub(crate) fn ack(acked: u32) -> AckSample {
        AckSample::basic(
            Instant::ZERO,
            acked,
            1000,
            SeqNumber(0),
            SeqNumber(0),
            None,
            Duration::ZERO,
        )
    }

    #[test]
    fn slow_start_then_avoidance() {
        let mut c = NewReno::new(10 * 1000);
        c.on_ack(&ack(1000));
        assert_eq!(c.window(), 11_000);
        c.on_rto(Instant::ZERO, 20_000, 1000);
        assert_eq!(c.ssthresh(), 10_000);
        assert_eq!(c.window(), 1000);
        for _ in 0..9 {
            c.on_ack(&ack(1000));
        }
        assert_eq!(c.window(), 10_000);
        // Congestion avoidance: +1 MSS after a full window is acked.
        for _ in 0..9 {
            c.on_ack(&ack(1000));
        }
        assert_eq!(c.window(), 10_000);
        c.on_ack(&ack(1000));
        assert_eq!(c.window(), 11_000);
    }

    #[test]
    fn rfc5681_3_2_congestion_event_halves_flight_and_undo_restores() {
        let mut c = NewReno::new(20_000);
        c.on_congestion_event(Instant::ZERO, 20_000, 1000);
        assert_eq!(c.ssthresh(), 10_000);
        assert_eq!(c.window(), 10_000);
        c.on_spurious();
        assert_eq!(c.window(), 20_000);
        assert_eq!(c.ssthresh(), u32::MAX);
        c.on_idle_restart(4000);
        assert_eq!(c.window(), 4000);
    }
}

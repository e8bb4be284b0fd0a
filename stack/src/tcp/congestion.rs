//! Congestion control behind a small trait: RFC 5681 NewReno here, CUBIC (RFC 9438) with
//! HyStart++ (RFC 9406) in `cubic.rs`.
//!
//! Loss detection and recovery (duplicate ACKs, RACK, the `recover` point, RFC 6582's window
//! inflation) live in the connection; an algorithm owns the window arithmetic: how the window
//! grows on ACKs and how far it falls on a congestion event.

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
        AckSample {
            now: Instant::ZERO,
            acked,
            mss: 1000,
            ack: SeqNumber(0),
            snd_max: SeqNumber(0),
            rtt: None,
            srtt: Duration::ZERO,
        }
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

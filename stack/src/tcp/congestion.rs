//! Congestion control behind a small trait: RFC 5681 with RFC 6582 NewReno recovery.
//!
//! Loss detection (duplicate-ACK counting, the `recover` point) lives in the connection;
//! the algorithm only owns the window arithmetic.

use core::fmt::Debug;

/// Window arithmetic of a congestion-control algorithm. All sizes are bytes.
pub trait CongestionControl: Debug + Send {
    /// Congestion window.
    fn window(&self) -> u32;
    /// Slow-start threshold.
    fn ssthresh(&self) -> u32;
    /// New data was cumulatively acknowledged outside recovery.
    fn on_ack(&mut self, acked: u32, mss: u32);
    /// Third duplicate ACK: enter fast recovery with `flight` bytes outstanding.
    fn on_enter_recovery(&mut self, flight: u32, mss: u32);
    /// Another duplicate ACK during fast recovery.
    fn on_dup_ack_in_recovery(&mut self, mss: u32);
    /// A partial ACK during recovery acknowledged `acked` bytes.
    fn on_partial_ack(&mut self, acked: u32, mss: u32);
    /// A full ACK ended recovery with `flight` bytes still outstanding.
    fn on_exit_recovery(&mut self, flight: u32, mss: u32);
    /// The retransmission timer expired with `flight` bytes outstanding.
    fn on_rto(&mut self, flight: u32, mss: u32);
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
}

impl NewReno {
    /// Starts with `initial_window` bytes (RFC 5681 §3.1 IW, RFC 6928) and an arbitrarily high ssthresh.
    pub fn new(initial_window: u32) -> Self {
        NewReno {
            cwnd: initial_window,
            ssthresh: u32::MAX,
            bytes_acked: 0,
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

    fn on_ack(&mut self, acked: u32, mss: u32) {
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

    fn on_enter_recovery(&mut self, flight: u32, mss: u32) {
        // RFC 6582 §3.2 step 2 / RFC 5681 §3.2 steps 2-3.
        self.ssthresh = Self::halve(flight, mss);
        self.cwnd = self.ssthresh + 3 * mss;
        self.bytes_acked = 0;
    }

    fn on_dup_ack_in_recovery(&mut self, mss: u32) {
        // RFC 6582 §3.2 step 3: artificially inflate cwnd.
        self.cwnd = self.cwnd.saturating_add(mss);
    }

    fn on_partial_ack(&mut self, acked: u32, mss: u32) {
        // RFC 6582 §3.2 step 5: deflate by the amount acked, add back one SMSS if >= SMSS acked.
        self.cwnd = self.cwnd.saturating_sub(acked);
        if acked >= mss {
            self.cwnd = self.cwnd.saturating_add(mss);
        }
        self.cwnd = self.cwnd.max(mss);
    }

    fn on_exit_recovery(&mut self, flight: u32, mss: u32) {
        // RFC 6582 §3.2 step 4 option (1): cwnd = min(ssthresh, max(FlightSize, SMSS) + SMSS).
        self.cwnd = self.ssthresh.min(flight.max(mss) + mss);
    }

    fn on_rto(&mut self, flight: u32, mss: u32) {
        // RFC 5681 §3.1 equation (4) and loss window LW = 1 SMSS.
        self.ssthresh = Self::halve(flight, mss);
        self.cwnd = mss;
        self.bytes_acked = 0;
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

    #[test]
    fn slow_start_then_avoidance() {
        let mut c = NewReno::new(10 * 1000);
        c.on_ack(1000, 1000);
        assert_eq!(c.window(), 11_000);
        c.on_rto(20_000, 1000);
        assert_eq!(c.ssthresh(), 10_000);
        assert_eq!(c.window(), 1000);
        for _ in 0..9 {
            c.on_ack(1000, 1000);
        }
        assert_eq!(c.window(), 10_000);
        // Congestion avoidance: +1 MSS after a full window is acked.
        for _ in 0..9 {
            c.on_ack(1000, 1000);
        }
        assert_eq!(c.window(), 10_000);
        c.on_ack(1000, 1000);
        assert_eq!(c.window(), 11_000);
    }

    #[test]
    fn newreno_recovery() {
        let mut c = NewReno::new(20_000);
        c.on_enter_recovery(20_000, 1000);
        assert_eq!(c.ssthresh(), 10_000);
        assert_eq!(c.window(), 13_000);
        c.on_dup_ack_in_recovery(1000);
        assert_eq!(c.window(), 14_000);
        c.on_partial_ack(3000, 1000);
        assert_eq!(c.window(), 12_000);
        c.on_exit_recovery(5000, 1000);
        assert_eq!(c.window(), 6000);
        c.on_idle_restart(4000);
        assert_eq!(c.window(), 4000);
    }
}

//! Pacing: spreading a connection's data over time at a rate instead of sending a window
//! at once (Linux's internal TCP pacing, `tcp_wstamp_ns`, with TSO autosizing's burst).
//!
//! The pacer keeps the time the next segment may leave. Each segment sent moves it on by
//! `len / rate`; a sender that fell behind (it was idle, or its timer fired late) may catch
//! up by at most one burst quantum, `max(2 segments, rate × 1 ms)`, like Linux's
//! `tcp_tso_autosize` (the engine's timer wheel has 1 ms ticks, so a quantum of a tick keeps
//! a paced connection at its rate when polled once per tick).

use super::tcb::Tcb;
use crate::time::Instant;
use core::time::Duration;

/// The burst a paced connection may send at once, in time at its rate.
const BURST_TIME: Duration = Duration::from_millis(1);
/// The smallest burst, in segments.
const MIN_BURST_SEGMENTS: u64 = 2;

/// A next-send-time pacer (bytes per second).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Pacer {
    /// Bytes per second; 0 while unknown (unpaced).
    rate: u64,
    /// When the next segment may leave, nanoseconds on the engine clock.
    next_send_ns: u64,
}

impl Pacer {
    /// An unpaced pacer.
    pub const fn new() -> Self {
        Pacer {
            rate: 0,
            next_send_ns: 0,
        }
    }

    /// The pacing rate in bytes per second (0: unpaced).
    pub fn rate(&self) -> u64 {
        self.rate
    }

    /// Sets the rate (`None` or 0: unpaced).
    pub fn set_rate(&mut self, rate: Option<u64>) {
        self.rate = rate.unwrap_or(0);
    }

    /// The burst quantum in bytes for `mss`-sized segments.
    pub fn quantum(&self, mss: u32) -> u64 {
        let per_burst = self.rate.saturating_mul(BURST_TIME.as_micros() as u64) / 1_000_000;
        per_burst.max(MIN_BURST_SEGMENTS * u64::from(mss.max(1)))
    }

    /// When a segment may leave: `None` now, else the release time.
    pub fn release_time(&self, now: Instant) -> Option<Instant> {
        if self.rate == 0 {
            return None;
        }
        let now_ns = now.total_micros().saturating_mul(1000);
        (self.next_send_ns > now_ns).then(|| Instant::from_micros(self.next_send_ns.div_ceil(1000)))
    }

    /// A segment of `len` bytes left at `now`.
    pub fn on_sent(&mut self, now: Instant, len: u32, mss: u32) {
        if self.rate == 0 {
            return;
        }
        let now_ns = now.total_micros().saturating_mul(1000);
        // A late or idle sender keeps the credit of one quantum at most: this segment and
        // what follows it at once add up to the quantum.
        let quantum_ns = self.quantum(mss).saturating_mul(1_000_000_000) / self.rate;
        let spacing = u64::from(len).saturating_mul(1_000_000_000) / self.rate;
        let credit = quantum_ns.saturating_sub(spacing);
        let start = self.next_send_ns.max(now_ns.saturating_sub(credit));
        self.next_send_ns = start.saturating_add(spacing);
    }
}

/// Linux `tcp_update_pacing_rate`: cwnd / SRTT times this in slow start (percent) ...
const SLOW_START_PACING_PERCENT: u64 = 200;
/// ... and this in congestion avoidance.
const AVOIDANCE_PACING_PERCENT: u64 = 120;

impl Tcb {
    /// The rate to pace at now: the algorithm's (BBR), or with `TcpConfig::pacing` a
    /// multiple of cwnd / SRTT as Linux's; `None`: unpaced.
    pub(super) fn pacing_rate(&self) -> Option<u64> {
        if self.cc_model {
            if let Some(rate) = self.cc.pacing_rate() {
                return Some(rate);
            }
        }
        if !self.cfg.pacing {
            return None;
        }
        let srtt_nanos = self.rtt.srtt_nanos().filter(|&s| s > 0)?;
        let cwnd = u64::from(self.cc.window());
        let percent = if cwnd < u64::from(self.cc.ssthresh()) / 2 {
            SLOW_START_PACING_PERCENT
        } else {
            AVOIDANCE_PACING_PERCENT
        };
        let micros = (srtt_nanos / 1000).max(1);
        Some(cwnd.saturating_mul(1_000_000) / micros * percent / 100)
    }

    /// Follows the congestion controller's rate (after each ACK). Inlined: a connection
    /// that neither paces nor has a rate to follow (CUBIC or NewReno without
    /// `TcpConfig::pacing`, the common case) is told by three loads.
    #[inline]
    pub(super) fn update_pacing_rate(&mut self) {
        if !self.cc_model && !self.cfg.pacing && self.sender.is_none() {
            return;
        }
        self.follow_pacing_rate();
    }

    /// [`Self::update_pacing_rate`] for a connection that may pace.
    #[inline(never)]
    fn follow_pacing_rate(&mut self) {
        let rate = self.pacing_rate();
        if rate.is_none() && self.sender.is_none() {
            return;
        }
        let now = self.last_send.max(self.last_recv);
        let model = self.sender_model(now);
        model.pacer.set_rate(rate);
        if rate.is_none() {
            model.pacing_release = None;
        }
    }

    /// True when the pacer holds data back at `now`; the connection then asks to be polled
    /// at the release time (`poll_at`).
    pub(super) fn paced(&mut self, now: Instant) -> bool {
        let Some(model) = &mut self.sender else {
            return false;
        };
        model.pacing_release = model.pacer.release_time(now);
        model.pacing_release.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn us(n: u64) -> Instant {
        Instant::from_micros(n)
    }

    #[test]
    fn unpaced_never_waits() {
        let mut p = Pacer::new();
        for _ in 0..100 {
            p.on_sent(us(0), 1500, 1500);
        }
        assert_eq!(p.release_time(us(0)), None);
    }

    #[test]
    fn release_times_follow_the_rate_after_one_quantum() {
        // 15 MB/s with 1500-byte segments: 100 µs per segment; quantum = 15 kB = 10 segments.
        let mut p = Pacer::new();
        p.set_rate(Some(15_000_000));
        assert_eq!(p.quantum(1500), 15_000);
        // Idle since long before t = 10 ms: ten segments leave at once (the quantum).
        let now = us(10_000);
        let mut sent = 0;
        while p.release_time(now).is_none() && sent < 100 {
            p.on_sent(now, 1500, 1500);
            sent += 1;
        }
        assert_eq!(sent, 10);
        // From here one segment per 100 µs.
        assert_eq!(p.release_time(now), Some(us(10_100)));
        assert_eq!(p.release_time(us(10_099)), Some(us(10_100)));
        assert_eq!(p.release_time(us(10_100)), None);
        p.on_sent(us(10_100), 1500, 1500);
        assert_eq!(p.release_time(us(10_100)), Some(us(10_200)));
    }

    #[test]
    fn minimum_burst_is_two_segments() {
        // 150 kB/s: 10 ms per 1500-byte segment; rate × 1 ms = 150 bytes < 2 segments.
        let mut p = Pacer::new();
        p.set_rate(Some(150_000));
        assert_eq!(p.quantum(1500), 3000);
        let now = us(1_000_000);
        p.on_sent(now, 1500, 1500);
        assert_eq!(p.release_time(now), None, "second segment of the burst");
        p.on_sent(now, 1500, 1500);
        assert_eq!(p.release_time(now), Some(us(1_000_000 + 10_000)));
        // Released at 1.01 s; the next after that at 1.02 s.
        let t = us(1_010_000);
        assert_eq!(p.release_time(t), None);
        p.on_sent(t, 1500, 1500);
        assert_eq!(p.release_time(t), Some(us(1_020_000)));
        // A late poll (at 1.025 s) keeps at most one quantum of credit.
        let late = us(1_025_000);
        assert_eq!(p.release_time(late), None);
        p.on_sent(late, 1500, 1500);
        assert_eq!(p.release_time(late), Some(us(1_030_000)));
    }
}

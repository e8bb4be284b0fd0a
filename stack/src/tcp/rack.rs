//! RACK: time-based loss detection (RFC 8985 §6). A segment is lost when a segment sent
//! after it was delivered and more than one RTT plus a reordering window has passed since it
//! was sent.

use super::sent::{SentQueue, SentSegment};
use super::seq::SeqNumber;
use crate::time::Instant;
use core::time::Duration;

/// RFC 8985 §6.2 step 4: the reordering window is kept for this many recoveries after a D-SACK.
const REO_WND_PERSIST: u32 = 16;

/// RACK state of one connection.
#[derive(Debug, Clone, Copy)]
pub(super) struct Rack {
    /// Send time of the most recently sent segment known delivered.
    xmit_ts: Option<Instant>,
    /// Its end sequence number (ties between equal send times).
    end_seq: SeqNumber,
    /// RTT of the most recently delivered segment, in microseconds (the clock's unit:
    /// no `Duration` conversions on every ACK).
    rtt_us: u64,
    /// Minimum RTT seen, in microseconds.
    min_rtt_us: Option<u64>,
    /// Highest SACKed sequence number plus one (RFC 8985 "RACK.fack").
    fack: SeqNumber,
    /// Reordering was observed (RFC 8985 §6.2 step 3).
    pub reordering_seen: bool,
    /// The largest distance, in bytes, by which a segment was overtaken.
    pub reordering_bytes: u32,
    reo_wnd_mult: u32,
    reo_wnd_persist: u32,
    /// RACK state advanced since the last loss detection.
    advanced: bool,
}

/// What [`Rack::detect_loss`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) struct Detection {
    /// Records newly marked lost.
    pub lost: u32,
    /// When to look again (a segment not yet overdue but due soon), RFC 8985 §6.2 step 5.
    pub reorder_timeout: Option<Duration>,
}

/// RFC 8985 §6.2: `t1`/`e1` was sent after `t2`/`e2`.
fn sent_after(t1: Instant, e1: SeqNumber, t2: Instant, e2: SeqNumber) -> bool {
    t1 > t2 || (t1 == t2 && e1 > e2)
}

impl Rack {
    /// Fresh state; `iss` starts the sequence space.
    pub fn new(iss: SeqNumber) -> Self {
        Rack {
            xmit_ts: None,
            end_seq: iss,
            rtt_us: 0,
            min_rtt_us: None,
            fack: iss,
            reordering_seen: false,
            reordering_bytes: 0,
            reo_wnd_mult: 1,
            reo_wnd_persist: 0,
            advanced: false,
        }
    }

    /// The minimum RTT seen (RFC 8985 §6.2 step 2's `min_RTT`; Linux `tcp_min_rtt`).
    pub fn min_rtt(&self) -> Option<Duration> {
        self.min_rtt_us.map(Duration::from_micros)
    }

    /// RFC 8985 §6.2 steps 2-3 for one newly delivered (SACKed or acknowledged) segment.
    /// Inlined: every ACK of new data runs it, from the record walk and beside it.
    #[inline(always)]
    pub fn on_delivered(&mut self, seg: &SentSegment, now: Instant, sacked: bool) {
        // `now - seg.sent_at`, saturating at zero, in the clock's microseconds.
        let rtt = now
            .total_micros()
            .saturating_sub(seg.sent_at.total_micros());
        // Step 2: a retransmitted segment delivered faster than the minimum RTT was the
        // original's delivery; its time says nothing.
        if seg.retransmitted && self.min_rtt_us.is_some_and(|m| rtt < m) {
            return;
        }
        if !seg.retransmitted {
            self.min_rtt_us = Some(self.min_rtt_us.map_or(rtt, |m| m.min(rtt)));
        }
        self.rtt_us = rtt;
        let newer = match self.xmit_ts {
            None => true,
            Some(t) => sent_after(seg.sent_at, seg.end, t, self.end_seq),
        };
        if newer {
            self.xmit_ts = Some(seg.sent_at);
            self.end_seq = seg.end;
            self.advanced = true;
        }
        // Step 3: delivered below the highest SACK without having been retransmitted.
        if seg.end < self.fack && !seg.retransmitted {
            self.reordering_seen = true;
            // How far it was overtaken (Linux tp->reordering, here in bytes).
            self.reordering_bytes = self.reordering_bytes.max(self.fack.since(seg.end));
        }
        if sacked {
            self.fack = self.fack.max_seq(seg.end);
        }
    }

    /// The cumulative ACK passed `una` (keeps `fack` within the window).
    pub fn on_cumulative_ack(&mut self, una: SeqNumber) {
        self.fack = self.fack.max_seq(una);
    }

    /// RFC 8985 §6.2 step 4 on a D-SACK: widen the reordering window for a while.
    pub fn on_dsack(&mut self) {
        self.reordering_seen = true;
        self.reo_wnd_mult = (self.reo_wnd_mult + 1).min(8);
        self.reo_wnd_persist = REO_WND_PERSIST;
    }

    /// RFC 8985 §6.2 step 4: a recovery ended; the widened window decays after 16 of them.
    pub fn on_recovery_end(&mut self) {
        if self.reo_wnd_persist > 0 {
            self.reo_wnd_persist -= 1;
            if self.reo_wnd_persist == 0 {
                self.reo_wnd_mult = 1;
            }
        }
    }

    /// RFC 8985 §6.2 step 4: the reordering window.
    fn reo_wnd(&self, in_recovery: bool, sacked_segments: u32, srtt: Duration) -> Duration {
        // RFC 8985: DupThresh = 3.
        if !self.reordering_seen && (in_recovery || sacked_segments >= 3) {
            return Duration::ZERO;
        }
        let min_rtt = self.min_rtt().unwrap_or(srtt);
        (min_rtt / 4 * self.reo_wnd_mult).min(srtt.max(min_rtt))
    }

    /// Whether loss detection has anything new to look at.
    pub fn advanced(&self) -> bool {
        self.advanced
    }

    /// RFC 8985 §6.2 step 5: marks lost every record sent before the most recently delivered
    /// one and overdue by RTT + reordering window. `srtt` is asked only when a record is
    /// outstanding. Inlined up to that test: every ACK of a request/response exchange
    /// acknowledges everything, and learns so without a call.
    #[inline]
    pub fn detect_loss(
        &mut self,
        q: &mut SentQueue,
        now: Instant,
        in_recovery: bool,
        srtt: impl FnOnce() -> Duration,
    ) -> Detection {
        self.advanced = false;
        let Some(xmit_ts) = self.xmit_ts else {
            return Detection::default();
        };
        if q.len() == 0 {
            // Everything sent is acknowledged (the common case of a request/response
            // exchange): no record can be lost and no reordering timer is needed.
            return Detection::default();
        }
        self.detect_overdue(q, now, in_recovery, srtt(), xmit_ts)
    }

    /// [`Self::detect_loss`] with records outstanding; `xmit_ts` is RACK.xmit_ts.
    #[inline(never)]
    fn detect_overdue(
        &mut self,
        q: &mut SentQueue,
        now: Instant,
        in_recovery: bool,
        srtt: Duration,
        xmit_ts: Instant,
    ) -> Detection {
        let mut d = Detection::default();
        let reo_wnd = self.reo_wnd(in_recovery, q.sacked_segments, srtt);
        // A record is overdue RTT + reo_wnd after it was sent.
        let wait = Duration::from_micros(self.rtt_us).saturating_add(reo_wnd);
        let mut timeout = Duration::ZERO;
        for i in 0..q.len() {
            let Some(&seg) = q.get(i) else { break };
            if seg.sacked || (seg.lost && !seg.retrans_in_flight) {
                continue;
            }
            if !sent_after(xmit_ts, self.end_seq, seg.sent_at, seg.end) {
                continue;
            }
            let due = seg.sent_at + wait;
            if due <= now {
                q.mark_lost(i);
                d.lost += 1;
            } else {
                timeout = timeout.max(due - now);
            }
        }
        if !timeout.is_zero() {
            d.reorder_timeout = Some(timeout);
        }
        d
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tcp::rate::RateSnapshot;

    const RS: RateSnapshot = RateSnapshot::empty(Instant::ZERO);

    fn s(n: u32) -> SeqNumber {
        SeqNumber(n)
    }

    fn ms(n: u64) -> Instant {
        Instant::from_millis(n)
    }

    /// Four segments sent 1 ms apart starting at t = 0.
    fn four() -> SentQueue {
        let mut q = SentQueue::new(100);
        for i in 0..4u32 {
            q.push(s(100 * i), s(100 * (i + 1)), false, ms(u64::from(i)), RS);
        }
        q
    }

    fn sack(rack: &mut Rack, q: &mut SentQueue, l: u32, r: u32, now: Instant) {
        let covers = |a: SeqNumber, b: SeqNumber| a >= s(l) && b <= s(r);
        q.mark_sacked(s(l), s(r), covers, |g| rack.on_delivered(g, now, true));
    }

    #[test]
    fn rfc8985_6_2_segment_sent_before_a_delivered_one_is_lost_after_rtt_plus_reo_wnd() {
        let mut q = four();
        let mut rack = Rack::new(s(0));
        let srtt = Duration::from_millis(40);
        // Segment 2 (sent at 2 ms) is SACKed at 42 ms: RTT 40 ms. Segments 0 and 1 were sent
        // before it. One SACKed segment: reo_wnd = min_rtt / 4 = 10 ms.
        sack(&mut rack, &mut q, 200, 300, ms(42));
        let d = rack.detect_loss(&mut q, ms(42), false, || srtt);
        assert_eq!(d.lost, 0, "within the reordering window");
        // Segment 1 is due at 1 + 40 + 10 = 51 ms, segment 0 at 50 ms.
        assert_eq!(d.reorder_timeout, Some(Duration::from_millis(9)));
        let d = rack.detect_loss(&mut q, ms(50), false, || srtt);
        assert_eq!(d.lost, 1);
        let d = rack.detect_loss(&mut q, ms(51), false, || srtt);
        assert_eq!(d.lost, 1);
        assert_eq!(q.lost, 200);
        assert!(!q.get(3).is_some_and(|g| g.lost), "sent after: not judged");
    }

    #[test]
    fn rfc8985_6_2_reo_wnd_is_zero_in_recovery_without_reordering() {
        let mut q = four();
        let mut rack = Rack::new(s(0));
        sack(&mut rack, &mut q, 300, 400, ms(43));
        let d = rack.detect_loss(&mut q, ms(43), true, || Duration::from_millis(40));
        assert_eq!(d.lost, 3);
    }

    #[test]
    fn rfc8985_6_2_reordering_observed_and_dsack_widen_the_window() {
        let mut q = four();
        let mut rack = Rack::new(s(0));
        sack(&mut rack, &mut q, 300, 400, ms(43));
        // Segment 1 arrives late, never retransmitted: reordering.
        sack(&mut rack, &mut q, 100, 200, ms(44));
        assert!(rack.reordering_seen);
        rack.on_dsack();
        // reo_wnd = 40/4 * 2 = 20 ms even in recovery; segment 0 due at 0 + 43 + 20.
        let d = rack.detect_loss(&mut q, ms(44), true, || Duration::from_millis(40));
        assert_eq!(d.lost, 0);
        assert!(d.reorder_timeout.is_some());
        let d = rack.detect_loss(&mut q, ms(63), true, || Duration::from_millis(40));
        assert_eq!(d.lost, 1);
    }

    #[test]
    fn rfc8985_6_2_lost_retransmission_is_detected() {
        let mut q = four();
        let mut rack = Rack::new(s(0));
        sack(&mut rack, &mut q, 100, 400, ms(43));
        assert_eq!(
            rack.detect_loss(&mut q, ms(43), true, || Duration::from_millis(40))
                .lost,
            1
        );
        q.retransmitted(0, ms(43), RS);
        // New data sent after the retransmission is delivered; the retransmission is not.
        q.push(s(400), s(500), false, ms(44), RS);
        sack(&mut rack, &mut q, 400, 500, ms(84));
        let d = rack.detect_loss(&mut q, ms(84), true, || Duration::from_millis(40));
        assert_eq!(d.lost, 1, "the retransmission at 43 ms is overdue");
        assert_eq!(q.next_lost(0), Some(0));
    }
}

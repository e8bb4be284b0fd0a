//! Delivery-rate sampling (draft-cheng-iccrg-delivery-rate-estimation, Linux `tcp_rate.c`).
//!
//! Every segment sent carries a snapshot of the connection's delivery counters ([`RateSnapshot`]);
//! when an ACK or SACK reports it delivered, the snapshot of the most recently sent segment it
//! covers tells how many bytes were delivered, and over how long, between that segment's send
//! and this ACK. The interval is the longer of the send interval (first to last segment of the
//! "flight" the sample spans) and the ACK interval, so that neither a burst of ACKs nor a
//! burst of sends overestimates the rate (draft §3.3). A sample taken while the application
//! had nothing to send is marked app-limited: it may underestimate the path (draft §3.4).
//!
//! Counters are in bytes (Linux counts packets).

use super::sent::SentSegment;
use crate::time::Instant;
use core::time::Duration;

/// What a segment remembers of the sampler when it is (re)sent (draft §3.2, Linux
/// `tcp_skb_cb.tx`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) struct RateSnapshot {
    /// `C.delivered` when the segment was sent.
    pub delivered: u64,
    /// `C.delivered_time` when the segment was sent.
    pub delivered_time: Instant,
    /// `C.first_sent_time` when the segment was sent.
    pub first_sent_time: Instant,
    /// The connection was app-limited when the segment was sent.
    pub app_limited: bool,
}

impl RateSnapshot {
    /// A snapshot with nothing delivered at `now`.
    pub const fn empty(now: Instant) -> Self {
        RateSnapshot {
            delivered: 0,
            delivered_time: now,
            first_sent_time: now,
            app_limited: false,
        }
    }
}

/// One delivery-rate sample, produced per ACK that delivered data (Linux `struct rate_sample`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateSample {
    /// Bytes per second: `delivered / interval`.
    pub delivery_rate: u64,
    /// The sample's interval: max(send interval, ACK interval).
    pub interval: Duration,
    /// Bytes delivered over the interval.
    pub delivered: u64,
    /// `C.delivered` when the newest segment this ACK delivered was sent.
    pub prior_delivered: u64,
    /// RTT of the newest segment this ACK delivered (never retransmitted), if any.
    pub rtt: Option<Duration>,
    /// The flight the sample spans was app-limited: the rate may be below the path's.
    pub is_app_limited: bool,
}

/// The connection's delivery counters and the sample being built from one ACK.
#[derive(Debug, Clone)]
pub(super) struct RateSampler {
    /// `C.delivered`: bytes delivered (cumulatively acknowledged or SACKed) so far.
    pub delivered: u64,
    /// `C.delivered_time`: when `delivered` last grew.
    pub delivered_time: Instant,
    /// `C.first_sent_time`: send time of the newest segment delivered (start of the current
    /// send interval).
    pub first_sent_time: Instant,
    /// `C.app_limited`: nonzero while the delivered count is below the end of an app-limited
    /// phase (then samples are app-limited).
    pub app_limited: u64,
    /// The sample being built: the newest segment delivered by this ACK, if any.
    pending: Option<Pending>,
}

/// The newest delivered segment of the ACK being processed (draft §3.3 `UpdateRateSample`).
#[derive(Debug, Clone, Copy)]
struct Pending {
    snapshot: RateSnapshot,
    sent_at: Instant,
    retransmitted: bool,
}

impl RateSampler {
    /// Nothing delivered yet at `now`.
    pub fn new(now: Instant) -> Self {
        RateSampler {
            delivered: 0,
            delivered_time: now,
            first_sent_time: now,
            app_limited: 0,
            pending: None,
        }
    }

    /// Draft §3.2 `OnPacketSent`: the snapshot for a segment sent at `now`; `nothing_in_flight`
    /// restarts the send and ACK intervals (the sample after an idle period must not span it).
    pub fn on_sent(&mut self, now: Instant, nothing_in_flight: bool) -> RateSnapshot {
        if nothing_in_flight {
            self.first_sent_time = now;
            self.delivered_time = now;
        }
        RateSnapshot {
            delivered: self.delivered,
            delivered_time: self.delivered_time,
            first_sent_time: self.first_sent_time,
            app_limited: self.app_limited != 0,
        }
    }

    /// Draft §3.4: the application has nothing more to send and the window has room, with
    /// `in_flight` bytes outstanding: samples until that flight is delivered are app-limited.
    pub fn mark_app_limited(&mut self, in_flight: u32) {
        self.app_limited = (self.delivered + u64::from(in_flight)).max(1);
    }

    /// Draft §3.3 `UpdateRateSample`: `seg` was delivered (SACKed or acknowledged) by the ACK
    /// being processed. The most recently sent of these gives the sample.
    pub fn on_segment_delivered(&mut self, seg: &SentSegment) {
        let newer = match &self.pending {
            None => true,
            Some(p) => {
                seg.rate.delivered > p.snapshot.delivered
                    || (seg.rate.delivered == p.snapshot.delivered && seg.sent_at > p.sent_at)
            }
        };
        if newer {
            self.pending = Some(Pending {
                snapshot: seg.rate,
                sent_at: seg.sent_at,
                retransmitted: seg.retransmitted,
            });
            // The next sample's send interval starts at this segment's send time.
            self.first_sent_time = seg.sent_at;
        }
    }

    /// Draft §3.3 `GenerateRateSample`: the ACK at `now` delivered `newly_delivered` bytes;
    /// returns the sample, if one is valid (at least one segment delivered, an interval no
    /// shorter than `min_rtt`, as Linux requires).
    pub fn generate(
        &mut self,
        now: Instant,
        newly_delivered: u64,
        min_rtt: Option<Duration>,
    ) -> Option<RateSample> {
        if newly_delivered > 0 {
            self.delivered = self.delivered.saturating_add(newly_delivered);
            self.delivered_time = now;
        }
        // Draft §3.4: the app-limited phase ends once its flight is delivered.
        if self.app_limited != 0 && self.delivered > self.app_limited {
            self.app_limited = 0;
        }
        let p = self.pending.take()?;
        let send_interval = p
            .sent_at
            .saturating_duration_since(p.snapshot.first_sent_time);
        let ack_interval = now.saturating_duration_since(p.snapshot.delivered_time);
        let interval = send_interval.max(ack_interval);
        let delivered = self.delivered.saturating_sub(p.snapshot.delivered);
        // Linux tcp_rate_gen: an interval shorter than the minimum RTT is an artifact
        // (e.g. the ACK of a retransmission sent long after the original).
        if interval.is_zero() || min_rtt.is_some_and(|m| interval < m) {
            return None;
        }
        let micros = u64::try_from(interval.as_micros())
            .unwrap_or(u64::MAX)
            .max(1);
        Some(RateSample {
            delivery_rate: delivered.saturating_mul(1_000_000) / micros,
            interval,
            delivered,
            prior_delivered: p.snapshot.delivered,
            rtt: (!p.retransmitted).then(|| now.saturating_duration_since(p.sent_at)),
            is_app_limited: p.snapshot.app_limited,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tcp::seq::SeqNumber;

    fn ms(n: u64) -> Instant {
        Instant::from_millis(n)
    }

    fn seg(start: u32, sent_at: Instant, rate: RateSnapshot) -> SentSegment {
        let mut s = SentSegment::new(SeqNumber(start), SeqNumber(start + 1000), false, sent_at);
        s.rate = rate;
        s
    }

    #[test]
    fn draft_3_3_sample_over_one_round_trip() {
        // Ten 1000-byte segments sent 1 ms apart from t=0, each ACKed 50 ms after it went out.
        let mut r = RateSampler::new(ms(0));
        let mut segs = Vec::new();
        for i in 0..10u32 {
            let snap = r.on_sent(ms(u64::from(i)), i == 0);
            segs.push(seg(i * 1000, ms(u64::from(i)), snap));
        }
        // The first ACK: snapshot (0, t0, t0); send interval 0, ACK interval 50 ms.
        r.on_segment_delivered(&segs[0]);
        let s = r.generate(ms(50), 1000, None).expect("a sample");
        assert_eq!(s.delivered, 1000);
        assert_eq!(s.interval, Duration::from_millis(50));
        assert_eq!(s.delivery_rate, 20_000);
        assert_eq!(s.rtt, Some(Duration::from_millis(50)));
        assert!(!s.is_app_limited);
        // A segment sent after the first was delivered carries delivered = 1000 at t=50.
        let snap = r.on_sent(ms(50), false);
        assert_eq!(
            snap,
            RateSnapshot {
                delivered: 1000,
                delivered_time: ms(50),
                first_sent_time: ms(0),
                app_limited: false
            }
        );
        // The ACK of segments 1..=9 at t=59: newest is segment 9 (delivered 0, sent 9 ms):
        // 10000 bytes over max(9 - 0, 59 - 0) = 59 ms.
        for s in &segs[1..] {
            r.on_segment_delivered(s);
        }
        let s = r.generate(ms(59), 9000, None).expect("a sample");
        assert_eq!(s.delivered, 10_000);
        assert_eq!(s.interval, Duration::from_millis(59));
        assert_eq!(s.delivery_rate, 10_000 * 1000 / 59);
        // The segment sent at t=50 acknowledged at t=100: send interval 50 - 0 (its
        // snapshot's first_sent_time), ACK interval 100 - 50.
        let late = seg(10_000, ms(50), snap);
        r.on_segment_delivered(&late);
        let s = r.generate(ms(100), 1000, None).expect("a sample");
        assert_eq!(
            (s.delivered, s.interval),
            (10_000, Duration::from_millis(50))
        );
        assert_eq!(s.prior_delivered, 1000);
    }

    #[test]
    fn draft_3_4_app_limited_until_the_flight_is_delivered() {
        let mut r = RateSampler::new(ms(0));
        let a = seg(0, ms(0), r.on_sent(ms(0), true));
        // Nothing more to send with 1000 bytes in flight.
        r.mark_app_limited(1000);
        let b = seg(1000, ms(1), r.on_sent(ms(1), false));
        assert!(!a.rate.app_limited && b.rate.app_limited);
        r.on_segment_delivered(&a);
        let s = r.generate(ms(10), 1000, None).expect("a sample");
        assert!(!s.is_app_limited, "sent before the app-limited mark");
        assert_eq!(r.app_limited, 1000, "not yet past the app-limited flight");
        r.on_segment_delivered(&b);
        let s = r.generate(ms(11), 1000, None).expect("a sample");
        assert!(s.is_app_limited);
        assert_eq!(r.app_limited, 0, "the app-limited flight was delivered");
        let c = seg(2000, ms(12), r.on_sent(ms(12), true));
        assert!(!c.rate.app_limited);
    }

    #[test]
    fn no_sample_without_a_delivered_segment_or_below_min_rtt() {
        let mut r = RateSampler::new(ms(0));
        assert_eq!(r.generate(ms(5), 0, None), None);
        let mut a = seg(0, ms(0), r.on_sent(ms(0), true));
        a.retransmitted = true;
        a.sent_at = ms(40);
        r.on_segment_delivered(&a);
        // ACK interval 41 ms >= min_rtt 30 ms: valid, but no RTT from a retransmission.
        let s = r
            .generate(ms(41), 1000, Some(Duration::from_millis(30)))
            .expect("a sample");
        assert_eq!(s.rtt, None);
        let b = seg(1000, ms(41), r.on_sent(ms(41), true));
        r.on_segment_delivered(&b);
        assert_eq!(
            r.generate(ms(51), 1000, Some(Duration::from_millis(30))),
            None,
            "10 ms interval is below the minimum RTT"
        );
        assert_eq!(r.delivered, 2000, "the bytes still count");
    }
}

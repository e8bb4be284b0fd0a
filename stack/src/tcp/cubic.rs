//! CUBIC congestion control (RFC 9438) with HyStart++ slow start (RFC 9406).

use super::congestion::{AckSample, CongestionControl};
use super::seq::SeqNumber;
use crate::time::Instant;
use core::time::Duration;

/// RFC 9438 §4.1: C = 0.4 (segments / s^3).
const C: f64 = 0.4;
/// RFC 9438 §4.6: multiplicative decrease factor.
const BETA: f64 = 0.7;
/// RFC 9438 §4.3: additive increase of the Reno-friendly estimate, 3 (1 - β) / (1 + β).
const ALPHA: f64 = 3.0 * (1.0 - BETA) / (1.0 + BETA);

/// RFC 9406 §4.3 constants.
const MIN_RTT_THRESH: Duration = Duration::from_millis(4);
const MAX_RTT_THRESH: Duration = Duration::from_millis(16);
const MIN_RTT_DIVISOR: u32 = 8;
const N_RTT_SAMPLE: u32 = 8;
const CSS_GROWTH_DIVISOR: u32 = 4;
const CSS_ROUNDS: u32 = 5;
/// RFC 9406 §4.3: L, the per-ACK growth limit in segments without pacing.
const L: u32 = 8;

/// HyStart++ state (RFC 9406 §4.2).
#[derive(Debug, Clone, Copy, Default)]
struct HyStart {
    window_end: Option<SeqNumber>,
    last_round_min_rtt: Option<Duration>,
    current_round_min_rtt: Option<Duration>,
    rtt_sample_count: u32,
    /// In Conservative Slow Start, with its baseline RTT.
    css_baseline_min_rtt: Option<Duration>,
    css_rounds: u32,
    /// Set once slow start ended by HyStart++ (for tests and counters).
    exited: bool,
}

/// The state a spurious-congestion undo restores (RFC 9438 §4.9).
#[derive(Debug, Clone, Copy)]
struct Prior {
    cwnd: u32,
    ssthresh: u32,
    w_max: f64,
    k: f64,
    epoch: Option<Instant>,
    cwnd_epoch: f64,
    w_est: f64,
}

/// RFC 9438 CUBIC.
#[derive(Debug, Clone)]
pub struct Cubic {
    cwnd: u32,
    ssthresh: u32,
    /// Fractional bytes of window growth not yet applied.
    carry: f64,
    /// RFC 9438 §4.2 W_max, in segments.
    w_max: f64,
    /// RFC 9438 §4.2 K, in seconds.
    k: f64,
    /// Start of the current congestion-avoidance epoch.
    epoch: Option<Instant>,
    /// cwnd at the start of the epoch, in segments.
    cwnd_epoch: f64,
    /// RFC 9438 §4.3 W_est, in segments.
    w_est: f64,
    hystart: HyStart,
    prior: Option<Prior>,
}

impl Cubic {
    /// Starts with `initial_window` bytes and an infinite ssthresh (HyStart++ decides when slow
    /// start ends).
    pub fn new(initial_window: u32) -> Self {
        Cubic {
            cwnd: initial_window,
            ssthresh: u32::MAX,
            carry: 0.0,
            w_max: 0.0,
            k: 0.0,
            epoch: None,
            cwnd_epoch: 0.0,
            w_est: 0.0,
            hystart: HyStart::default(),
            prior: None,
        }
    }

    /// RFC 9438 §4.2 equation (1): W_cubic(t) in segments, `t` seconds into the epoch.
    pub fn w_cubic(&self, t: f64) -> f64 {
        C * (t - self.k).powi(3) + self.w_max
    }

    /// RFC 9438 §4.2 K in seconds.
    pub fn k(&self) -> f64 {
        self.k
    }

    /// RFC 9438 W_max in segments.
    pub fn w_max(&self) -> f64 {
        self.w_max
    }

    /// True once HyStart++ ended slow start (RFC 9406 §4.2).
    pub fn hystart_exited(&self) -> bool {
        self.hystart.exited
    }

    /// True while HyStart++ is in Conservative Slow Start.
    pub fn in_css(&self) -> bool {
        self.hystart.css_baseline_min_rtt.is_some()
    }

    fn grow(&mut self, bytes: f64) {
        self.carry += bytes.max(0.0);
        let whole = self.carry.floor();
        self.carry -= whole;
        let add = u32::try_from(whole as u64).unwrap_or(u32::MAX);
        self.cwnd = self.cwnd.saturating_add(add);
    }

    /// RFC 9406 §4.2: slow start with the round-by-round delay-increase check.
    fn slow_start(&mut self, ack: &AckSample) {
        let hs = &mut self.hystart;
        let hystart_on = self.ssthresh == u32::MAX;
        if hystart_on && hs.window_end.is_none_or(|end| ack.ack >= end) {
            // A round ended: the next one lasts until what is sent now is acknowledged.
            hs.window_end = Some(ack.snd_max);
            hs.last_round_min_rtt = hs.current_round_min_rtt;
            hs.current_round_min_rtt = None;
            hs.rtt_sample_count = 0;
            if hs.css_baseline_min_rtt.is_some() {
                hs.css_rounds += 1;
                if hs.css_rounds >= CSS_ROUNDS {
                    // RFC 9406 §4.2: CSS_ROUNDS in CSS: enter congestion avoidance.
                    hs.css_baseline_min_rtt = None;
                    hs.exited = true;
                    self.ssthresh = self.cwnd;
                    return;
                }
            }
        }
        if hystart_on {
            if let Some(rtt) = ack.rtt {
                hs.current_round_min_rtt =
                    Some(hs.current_round_min_rtt.map_or(rtt, |m| m.min(rtt)));
                hs.rtt_sample_count += 1;
            }
            if hs.rtt_sample_count >= N_RTT_SAMPLE {
                if let (Some(cur), Some(last)) = (hs.current_round_min_rtt, hs.last_round_min_rtt) {
                    match hs.css_baseline_min_rtt {
                        None => {
                            let thresh =
                                (last / MIN_RTT_DIVISOR).clamp(MIN_RTT_THRESH, MAX_RTT_THRESH);
                            if cur >= last + thresh {
                                // RFC 9406 §4.2: delay grew: Conservative Slow Start.
                                hs.css_baseline_min_rtt = Some(cur);
                                hs.css_rounds = 0;
                            }
                        }
                        Some(base) if cur < base => {
                            // RFC 9406 §4.2: the increase was spurious: back to slow start.
                            hs.css_baseline_min_rtt = None;
                        }
                        Some(_) => {}
                    }
                }
            }
        }
        // RFC 5681 §3.1 / RFC 3465 ABC, limited to L segments per ACK (RFC 9406 §4.2).
        let mut inc = ack.acked.min(L * ack.mss);
        if self.hystart.css_baseline_min_rtt.is_some() {
            inc /= CSS_GROWTH_DIVISOR;
        }
        self.cwnd = self.cwnd.saturating_add(inc);
    }

    /// RFC 9438 §4.2-§4.5: congestion avoidance.
    fn avoid_congestion(&mut self, ack: &AckSample) {
        let mss = f64::from(ack.mss.max(1));
        let cwnd = f64::from(self.cwnd) / mss;
        let epoch = *self.epoch.get_or_insert_with(|| {
            // RFC 9438 §4.2: a new epoch; K from W_max and the window now.
            self.cwnd_epoch = cwnd;
            self.w_est = cwnd;
            self.k = if self.w_max > cwnd {
                ((self.w_max - cwnd) / C).cbrt()
            } else {
                0.0
            };
            if self.w_max < cwnd {
                self.w_max = cwnd;
            }
            ack.now
        });
        let acked_segments = f64::from(ack.acked) / mss;
        // RFC 9438 §4.3: the Reno-friendly estimate; α = 1 once it passed W_max.
        let alpha = if self.w_est >= self.w_max { 1.0 } else { ALPHA };
        self.w_est += alpha * acked_segments / cwnd;
        let t = (ack.now - epoch + ack.srtt).as_secs_f64();
        // RFC 9438 §4.4-§4.5: target = W_cubic(t + RTT), within [cwnd, 1.5 cwnd].
        let target = self.w_cubic(t).clamp(cwnd, 1.5 * cwnd);
        let cubic_inc = (target - cwnd) / cwnd * acked_segments;
        let new = if self.w_est > cwnd + cubic_inc {
            // RFC 9438 §4.3: the Reno-friendly region.
            self.w_est
        } else {
            cwnd + cubic_inc
        };
        self.grow((new - cwnd) * mss);
    }

    fn remember(&mut self) {
        self.prior = Some(Prior {
            cwnd: self.cwnd,
            ssthresh: self.ssthresh,
            w_max: self.w_max,
            k: self.k,
            epoch: self.epoch,
            cwnd_epoch: self.cwnd_epoch,
            w_est: self.w_est,
        });
    }

    /// RFC 9438 §4.6-§4.7: W_max with fast convergence, ssthresh = β cwnd, a new epoch.
    fn reduce(&mut self, mss: u32) {
        self.remember();
        let cwnd = f64::from(self.cwnd) / f64::from(mss.max(1));
        // RFC 9438 §4.7 fast convergence: release bandwidth when W_max keeps shrinking.
        self.w_max = if cwnd < self.w_max {
            cwnd * (1.0 + BETA) / 2.0
        } else {
            cwnd
        };
        let reduced = (f64::from(self.cwnd) * BETA) as u32;
        self.ssthresh = reduced.max(2 * mss);
        self.epoch = None;
        self.carry = 0.0;
        self.hystart.css_baseline_min_rtt = None;
    }
}

impl CongestionControl for Cubic {
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
        if self.cwnd < self.ssthresh {
            self.slow_start(ack);
        } else {
            self.avoid_congestion(ack);
        }
    }

    fn on_congestion_event(&mut self, _now: Instant, _flight: u32, mss: u32) {
        self.reduce(mss);
        // RFC 9438 §4.6: cwnd = ssthresh.
        self.cwnd = self.ssthresh;
    }

    fn on_rto(&mut self, _now: Instant, _flight: u32, mss: u32) {
        // RFC 9438 §4.8: as a congestion event, then cwnd = 1 SMSS (RFC 5681 loss window).
        self.reduce(mss);
        self.cwnd = mss;
    }

    fn on_spurious(&mut self) {
        // RFC 9438 §4.9: restore the state from before the congestion event.
        if let Some(p) = self.prior.take() {
            self.cwnd = self.cwnd.max(p.cwnd);
            self.ssthresh = p.ssthresh;
            self.w_max = p.w_max;
            self.k = p.k;
            self.epoch = p.epoch;
            self.cwnd_epoch = p.cwnd_epoch;
            self.w_est = p.w_est;
        }
    }

    fn on_idle_restart(&mut self, restart_window: u32) {
        // RFC 5681 §4.1; RFC 9438 §5.8: a new epoch after idle.
        self.cwnd = self.cwnd.min(restart_window);
        self.epoch = None;
    }

    fn on_mss_change(&mut self, mss: u32) {
        self.cwnd = self.cwnd.max(mss);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSS: u32 = 1000;

    fn ack(now: Instant, acked: u32, ack: u32, snd_max: u32, rtt: Option<u64>) -> AckSample {
        AckSample::basic(
            now,
            acked,
            MSS,
            SeqNumber(ack),
            SeqNumber(snd_max),
            rtt.map(Duration::from_millis),
            Duration::from_millis(100),
        )
    }

    #[test]
    fn rfc9438_4_6_congestion_event_sets_w_max_ssthresh_and_k() {
        let mut c = Cubic::new(100 * MSS);
        c.on_congestion_event(Instant::ZERO, 100 * MSS, MSS);
        assert_eq!(c.window(), 70 * MSS);
        assert_eq!(c.ssthresh(), 70 * MSS);
        assert!((c.w_max() - 100.0).abs() < 1e-9);
        // A second loss below W_max: fast convergence, W_max = 70 (1 + 0.7) / 2 = 59.5.
        c.on_congestion_event(Instant::ZERO, 70 * MSS, MSS);
        assert!((c.w_max() - 59.5).abs() < 1e-9);
        assert_eq!(c.window(), 49 * MSS);
        c.on_spurious();
        assert_eq!(c.window(), 70 * MSS);
        assert!((c.w_max() - 100.0).abs() < 1e-9);
    }

    #[test]
    fn rfc9438_4_2_window_follows_the_cubic_curve() {
        let mut c = Cubic::new(100 * MSS);
        c.on_congestion_event(Instant::ZERO, 100 * MSS, MSS);
        // K = cbrt((100 - 70) / 0.4) = cbrt(75).
        let mut now = Instant::from_millis(1000);
        // One ACK per MSS, a window's worth per 100 ms RTT.
        let mut checks = 0;
        for round in 0..100u64 {
            let segs = c.window() / MSS;
            for _ in 0..segs {
                c.on_ack(&ack(now, MSS, 0, 0, None));
            }
            now += Duration::from_millis(100);
            if round == 0 {
                assert!((c.k() - 75f64.cbrt()).abs() < 1e-9, "K = {}", c.k());
            }
            // cwnd tracks W_cubic(t + RTT) one RTT later, within a few segments.
            let t = (now - Instant::from_millis(1000)).as_secs_f64();
            let expect = c.w_cubic(t).max(70.0);
            let got = f64::from(c.window()) / f64::from(MSS);
            if round > 2 && expect < 140.0 {
                assert!(
                    (got - expect).abs() < 0.05 * expect + 2.0,
                    "t {t}: cwnd {got}, W_cubic {expect}"
                );
                checks += 1;
            }
        }
        assert!(checks > 40);
        // Concave then convex: the plateau at W_max (100 segments) around t = K = 4.2 s.
        assert!(f64::from(c.window()) / f64::from(MSS) > 140.0);
    }

    #[test]
    fn rfc9438_4_3_reno_friendly_region_for_small_windows() {
        // A tiny W_max: W_cubic grows slower than Reno, so W_est drives the window.
        let mut c = Cubic::new(4 * MSS);
        c.on_congestion_event(Instant::ZERO, 4 * MSS, MSS);
        let start = c.window();
        let mut now = Instant::from_millis(10);
        for _ in 0..10 {
            for _ in 0..c.window() / MSS {
                c.on_ack(&ack(now, MSS, 0, 0, None));
            }
            now += Duration::from_millis(10);
        }
        // About α = 0.53 segments per RTT at first, 1 per RTT past W_max.
        let grown = (c.window() - start) / MSS;
        assert!(
            (4..=10).contains(&grown),
            "grew {grown} segments in 10 RTTs"
        );
    }

    #[test]
    fn rfc9406_4_2_delay_increase_enters_css_then_congestion_avoidance() {
        let mut c = Cubic::new(10 * MSS);
        let mut now = Instant::ZERO;
        let mut snd_max = 10 * MSS;
        let mut acked_to = 0;
        let mut rounds = 0;
        // Rounds of 10 ms RTT; from round 3 on the RTT is 30 ms (a queue builds).
        while c.ssthresh() == u32::MAX && rounds < 30 {
            let rtt = if rounds >= 3 { 30 } else { 10 };
            let segs = (snd_max - acked_to) / MSS;
            let round_end = snd_max;
            for _ in 0..segs {
                acked_to += MSS;
                snd_max += 2 * MSS;
                c.on_ack(&ack(now, MSS, acked_to, snd_max, Some(rtt)));
                if rounds == 3 && acked_to >= round_end {
                    assert!(c.in_css(), "CSS after the first round with 30 ms");
                }
            }
            now += Duration::from_millis(rtt);
            rounds += 1;
        }
        assert!(c.hystart_exited(), "HyStart++ ended slow start");
        // 3 rounds of slow start, then CSS_ROUNDS of conservative growth.
        assert!((8..=10).contains(&rounds), "ended after {rounds} rounds");
        assert!(c.ssthresh() <= c.window());
        // Without the delay increase, slow start would have run all 30 rounds or overflowed:
        // cwnd doubles per round, so it stays far below 2^rounds segments.
        assert!(c.ssthresh() < (10 << 8) * MSS, "ssthresh {}", c.ssthresh());
    }

    #[test]
    fn rfc9406_4_2_spurious_delay_increase_returns_to_slow_start() {
        let mut c = Cubic::new(10 * MSS);
        let mut snd_max = 10 * MSS;
        let mut acked_to = 0;
        for (round, rtt) in [10u64, 10, 30, 10, 10].into_iter().enumerate() {
            let segs = (snd_max - acked_to) / MSS;
            for _ in 0..segs {
                acked_to += MSS;
                snd_max += 2 * MSS;
                c.on_ack(&ack(Instant::ZERO, MSS, acked_to, snd_max, Some(rtt)));
            }
            if round == 2 {
                assert!(c.in_css());
            }
        }
        assert!(
            !c.in_css(),
            "RTT fell below the CSS baseline: slow start again"
        );
        assert_eq!(c.ssthresh(), u32::MAX);
    }
}

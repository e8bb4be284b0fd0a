//! BBR v1 congestion control (draft-cardwell-iccrg-bbr-congestion-control-00, Linux
//! `tcp_bbr.c`): a model of the path — the bottleneck bandwidth (windowed maximum of the
//! delivery rate over 10 round trips) and the round-trip propagation time (windowed minimum
//! RTT over 10 s) — sets the pacing rate (`pacing_gain × bw`) and the window
//! (`cwnd_gain × bw × min_rtt` plus a quantization budget). Random loss does not shrink the
//! model, so BBR keeps its rate where a loss-based algorithm halves it.
//!
//! States: STARTUP (gain 2/ln 2 until the bandwidth stops growing by 25 % for three rounds),
//! DRAIN (the inverse gain until the queue STARTUP built is gone), PROBE_BW (an eight-phase
//! gain cycle 5/4, 3/4, 1 × 6) and PROBE_RTT (a window of 4 segments for 200 ms and a round
//! when the minimum RTT was not refreshed for 10 s). In loss recovery the window follows
//! packet conservation for a round, then returns to the model (and to the window before the
//! loss on leaving recovery).
//!
//! Sizes are bytes (Linux counts packets); gains are in 1/256ths (`BBR_UNIT`). Linux's
//! long-term bandwidth sampling for token-bucket policers (`lt_bw`) is not implemented.
//! BBR needs SACK for its delivery and loss accounting: a connection whose peer does not
//! offer SACK uses CUBIC instead (see `Tcb::negotiate`).

use super::congestion::{AckSample, BbrInfo, CongestionControl, RecoveryState};
use crate::time::Instant;
use core::time::Duration;

/// Gains are fixed point with this unit (Linux `BBR_UNIT`).
const UNIT: u64 = 256;
/// STARTUP's gain, 2/ln(2) (Linux `bbr_high_gain`).
const HIGH_GAIN: u64 = UNIT * 2885 / 1000 + 1;
/// DRAIN's pacing gain, the inverse of `HIGH_GAIN` (Linux `bbr_drain_gain`).
const DRAIN_GAIN: u64 = UNIT * 1000 / 2885;
/// PROBE_BW's cwnd gain (Linux `bbr_cwnd_gain`).
const CWND_GAIN: u64 = UNIT * 2;
/// PROBE_BW's pacing-gain cycle (Linux `bbr_pacing_gain`).
const PACING_GAIN_CYCLE: [u64; 8] = [
    UNIT * 5 / 4,
    UNIT * 3 / 4,
    UNIT,
    UNIT,
    UNIT,
    UNIT,
    UNIT,
    UNIT,
];
/// The phase PROBE_BW may start in is drawn from this many (never the draining 3/4 phase).
const CYCLE_RAND: u32 = 7;
/// Round trips the bandwidth filter spans (Linux `bbr_bw_rtts`).
const BW_FILTER_ROUNDS: u64 = 10;
/// How long a minimum RTT stays valid (Linux `bbr_min_rtt_win_sec`).
const MIN_RTT_WINDOW: Duration = Duration::from_secs(10);
/// How long PROBE_RTT keeps the window at its minimum (Linux `bbr_probe_rtt_mode_ms`).
const PROBE_RTT_TIME: Duration = Duration::from_millis(200);
/// The smallest window, in segments (Linux `bbr_cwnd_min_target`).
const MIN_CWND_SEGMENTS: u32 = 4;
/// STARTUP ends when the bandwidth grew less than this (5/4) ...
const FULL_BW_THRESH: u64 = UNIT * 5 / 4;
/// ... for this many rounds in a row (Linux `bbr_full_bw_cnt`).
const FULL_BW_COUNT: u32 = 3;
/// The pacing rate is this fraction (99 %) of `gain × bw`, to keep the queue empty
/// (Linux `bbr_pacing_margin_percent`).
const PACING_MARGIN_PERCENT: u64 = 1;
/// The window before the model has an RTT, in segments (Linux `TCP_INIT_CWND`).
const INIT_CWND_SEGMENTS: u64 = 10;
/// The largest burst the quantization budget allows for, bytes (Linux's GSO limit).
const MAX_BURST_BYTES: u64 = 64 * 1024;
/// ACK aggregation: round trips per window of the extra-acked filter, its cap in time at
/// the bottleneck rate (Linux `bbr_extra_acked_win_rtts`, `bbr_extra_acked_max_us`).
const EXTRA_ACKED_WINDOW_ROUNDS: u32 = 5;
const EXTRA_ACKED_MAX: Duration = Duration::from_millis(100);

/// BBR's state machine (draft §4.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BbrMode {
    /// Exponential search for the bottleneck bandwidth.
    Startup,
    /// Drains the queue STARTUP built.
    Drain,
    /// Cycles the pacing gain to probe for more bandwidth and drain what probing queued.
    ProbeBw,
    /// Cuts the window to 4 segments to measure the propagation RTT.
    ProbeRtt,
}

/// Kathleen Nichols' windowed running maximum over three samples (Linux `lib/minmax.c`).
#[derive(Debug, Clone, Copy, Default)]
struct MaxFilter {
    /// (time in rounds, value), best first.
    s: [(u64, u64); 3],
}

impl MaxFilter {
    fn get(&self) -> u64 {
        self.s[0].1
    }

    fn reset(&mut self, t: u64, v: u64) {
        self.s = [(t, v); 3];
    }

    /// `minmax_running_max`: a new measurement `v` at `t`, with a window of `win`.
    fn update(&mut self, win: u64, t: u64, v: u64) {
        let val = (t, v);
        if v >= self.s[0].1 || t.saturating_sub(self.s[2].0) > win {
            self.reset(t, v);
            return;
        }
        if v >= self.s[1].1 {
            self.s[1] = val;
            self.s[2] = val;
        } else if v >= self.s[2].1 {
            self.s[2] = val;
        }
        // minmax_subwin_update: keep the three samples spread over the window.
        let dt = t.saturating_sub(self.s[0].0);
        if dt > win {
            self.s[0] = self.s[1];
            self.s[1] = self.s[2];
            self.s[2] = val;
            if t.saturating_sub(self.s[0].0) > win {
                self.s[0] = self.s[1];
                self.s[1] = self.s[2];
                self.s[2] = val;
            }
        } else if self.s[1].0 == self.s[0].0 && dt > win / 4 {
            self.s[1] = val;
            self.s[2] = val;
        } else if self.s[2].0 == self.s[1].0 && dt > win / 2 {
            self.s[2] = val;
        }
    }
}

/// A BBR v1 sender.
#[derive(Debug, Clone)]
pub struct Bbr {
    cwnd: u32,
    mss: u32,
    mode: BbrMode,
    /// Windowed maximum delivery rate, bytes per second, over `BW_FILTER_ROUNDS` rounds.
    bw: MaxFilter,
    min_rtt: Option<Duration>,
    min_rtt_stamp: Instant,
    probe_rtt_done_stamp: Option<Instant>,
    probe_rtt_round_done: bool,
    /// Round trips counted by the delivered count (draft §4.1.1.3).
    round_count: u64,
    next_round_delivered: u64,
    round_start: bool,
    packet_conservation: bool,
    prev_recovery: RecoveryState,
    /// The window before loss recovery or PROBE_RTT cut it.
    prior_cwnd: u32,
    pacing_gain: u64,
    cwnd_gain: u64,
    pacing_rate: u64,
    has_seen_rtt: bool,
    full_bw: u64,
    full_bw_count: u32,
    full_bw_reached: bool,
    cycle_index: usize,
    cycle_stamp: Instant,
    idle_restart: bool,
    /// ACK aggregation (Linux `extra_acked`): the two windows' maxima, the current one, rounds
    /// in it, and the epoch's start and bytes.
    extra_acked: [u64; 2],
    extra_acked_index: usize,
    extra_acked_rounds: u32,
    ack_epoch_stamp: Instant,
    ack_epoch_acked: u64,
    /// xorshift state for the PROBE_BW start phase (seeded by the connection).
    rng: u32,
}

impl Bbr {
    /// A sender starting with `initial_window` bytes at `now`; `seed` picks PROBE_BW's first
    /// phase (the engine passes a random value, tests a fixed one).
    pub fn new(initial_window: u32, mss: u32, now: Instant, seed: u32) -> Self {
        let mut bbr = Bbr {
            cwnd: initial_window,
            mss: mss.max(1),
            mode: BbrMode::Startup,
            bw: MaxFilter::default(),
            min_rtt: None,
            min_rtt_stamp: now,
            probe_rtt_done_stamp: None,
            probe_rtt_round_done: false,
            round_count: 0,
            next_round_delivered: 0,
            round_start: false,
            packet_conservation: false,
            prev_recovery: RecoveryState::Open,
            prior_cwnd: 0,
            pacing_gain: HIGH_GAIN,
            cwnd_gain: HIGH_GAIN,
            pacing_rate: 0,
            has_seen_rtt: false,
            full_bw: 0,
            full_bw_count: 0,
            full_bw_reached: false,
            cycle_index: 0,
            cycle_stamp: now,
            idle_restart: false,
            extra_acked: [0; 2],
            extra_acked_index: 0,
            extra_acked_rounds: 0,
            ack_epoch_stamp: now,
            ack_epoch_acked: 0,
            rng: seed | 1,
        };
        bbr.init_pacing_rate(None);
        bbr
    }

    /// The current state.
    pub fn mode(&self) -> BbrMode {
        self.mode
    }

    /// The bottleneck bandwidth estimate, bytes per second.
    pub fn bandwidth(&self) -> u64 {
        self.bw.get()
    }

    /// The propagation RTT estimate.
    pub fn min_rtt(&self) -> Option<Duration> {
        self.min_rtt
    }

    /// STARTUP found the bottleneck bandwidth.
    pub fn full_bandwidth_reached(&self) -> bool {
        self.full_bw_reached
    }

    /// The pacing gain in 1/256ths.
    pub fn pacing_gain(&self) -> u64 {
        self.pacing_gain
    }

    fn random_phase(&mut self) -> u32 {
        // xorshift32
        let mut x = self.rng;
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        self.rng = x;
        x % CYCLE_RAND
    }

    /// Linux `bbr_init_pacing_rate_from_rtt`: high_gain × cwnd / (SRTT or 1 ms).
    fn init_pacing_rate(&mut self, srtt: Option<Duration>) {
        let rtt = match srtt {
            Some(r) if !r.is_zero() => {
                self.has_seen_rtt = true;
                r
            }
            _ => Duration::from_millis(1),
        };
        let micros = u64::try_from(rtt.as_micros()).unwrap_or(u64::MAX).max(1);
        let bw = u64::from(self.cwnd).saturating_mul(1_000_000) / micros;
        self.pacing_rate = Self::rate_with_gain(bw, HIGH_GAIN);
    }

    /// `gain × bw` less the pacing margin.
    fn rate_with_gain(bw: u64, gain: u64) -> u64 {
        bw.saturating_mul(gain) / UNIT * (100 - PACING_MARGIN_PERCENT) / 100
    }

    /// Linux `bbr_set_pacing_rate`: never lowered before the bandwidth is known.
    fn set_pacing_rate(&mut self, bw: u64, gain: u64, srtt: Duration) {
        if !self.has_seen_rtt && !srtt.is_zero() {
            self.init_pacing_rate(Some(srtt));
        }
        let rate = Self::rate_with_gain(bw, gain);
        if rate > 0 && (self.full_bw_reached || rate > self.pacing_rate) {
            self.pacing_rate = rate;
        }
    }

    /// Linux `bbr_bdp`: gain × bw × min_rtt, bytes (the initial window before an RTT).
    fn bdp(&self, bw: u64, gain: u64) -> u64 {
        let Some(min_rtt) = self.min_rtt else {
            return INIT_CWND_SEGMENTS * u64::from(self.mss);
        };
        let micros = u64::try_from(min_rtt.as_micros()).unwrap_or(u64::MAX);
        (bw.saturating_mul(micros) / 1_000_000)
            .saturating_mul(gain)
            .div_ceil(UNIT)
    }

    /// Linux `bbr_tso_segs_goal`: the segments the pacer sends at once (1 ms at the pacing
    /// rate, at most 64 KiB, at least 2 segments).
    fn burst_segments(&self) -> u64 {
        let mss = u64::from(self.mss);
        (self.pacing_rate / 1000).min(MAX_BURST_BYTES) / mss
    }

    /// Linux `bbr_quantization_budget`: room for the bursts in flight at both ends.
    fn quantization_budget(&self, cwnd: u64) -> u64 {
        let mss = u64::from(self.mss);
        let mut cwnd = cwnd + 3 * self.burst_segments().max(2) * mss;
        if self.mode == BbrMode::ProbeBw && self.cycle_index == 0 {
            // Probing for bandwidth needs a little more in flight.
            cwnd += 2 * mss;
        }
        cwnd
    }

    /// Linux `bbr_inflight`: what the model says is in flight at `gain`.
    fn inflight(&self, bw: u64, gain: u64) -> u64 {
        self.quantization_budget(self.bdp(bw, gain))
    }

    /// Linux `bbr_save_cwnd`.
    fn save_cwnd(&mut self) {
        if self.prev_recovery == RecoveryState::Open && self.mode != BbrMode::ProbeRtt {
            self.prior_cwnd = self.cwnd;
        } else {
            self.prior_cwnd = self.prior_cwnd.max(self.cwnd);
        }
    }

    fn min_cwnd(&self) -> u32 {
        MIN_CWND_SEGMENTS * self.mss
    }

    /// Draft §4.1.1.3 / Linux `bbr_update_bw`: round counting and the bandwidth filter.
    fn update_bw(&mut self, a: &AckSample) {
        self.round_start = false;
        let Some(rs) = a.rate else { return };
        if rs.prior_delivered >= self.next_round_delivered {
            self.next_round_delivered = a.delivered;
            self.round_count += 1;
            self.round_start = true;
            self.packet_conservation = false;
        }
        let bw = rs.delivery_rate;
        // An app-limited sample counts only when it is higher than the estimate.
        if !rs.is_app_limited || bw >= self.bw.get() {
            self.bw.update(BW_FILTER_ROUNDS, self.round_count, bw);
        }
    }

    /// Linux `bbr_update_ack_aggregation`: how much more than the model's rate ACKs
    /// delivered in bursts (the window gets that much more, so ACK aggregation does not
    /// starve the sender).
    fn update_ack_aggregation(&mut self, a: &AckSample) {
        if a.newly_delivered == 0 || a.rate.is_none() {
            return;
        }
        if self.round_start {
            self.extra_acked_rounds = (self.extra_acked_rounds + 1).min(31);
            if self.extra_acked_rounds >= EXTRA_ACKED_WINDOW_ROUNDS {
                self.extra_acked_rounds = 0;
                self.extra_acked_index ^= 1;
                self.extra_acked[self.extra_acked_index] = 0;
            }
        }
        let epoch = a.now.saturating_duration_since(self.ack_epoch_stamp);
        let epoch_micros = u64::try_from(epoch.as_micros()).unwrap_or(u64::MAX);
        let mut expected = self.bw.get().saturating_mul(epoch_micros) / 1_000_000;
        if self.ack_epoch_acked <= expected {
            // The ACK rate is at or below the model's: a new epoch.
            self.ack_epoch_acked = 0;
            self.ack_epoch_stamp = a.now;
            expected = 0;
        }
        self.ack_epoch_acked = self
            .ack_epoch_acked
            .saturating_add(u64::from(a.newly_delivered));
        let extra = (self.ack_epoch_acked - expected).min(u64::from(self.cwnd));
        let slot = &mut self.extra_acked[self.extra_acked_index];
        *slot = (*slot).max(extra);
    }

    /// Linux `bbr_ack_aggregation_cwnd`.
    fn aggregation_cwnd(&self) -> u64 {
        if !self.full_bw_reached {
            return 0;
        }
        let max = self
            .bw
            .get()
            .saturating_mul(EXTRA_ACKED_MAX.as_micros() as u64)
            / 1_000_000;
        self.extra_acked[0].max(self.extra_acked[1]).min(max)
    }

    /// Draft §4.3.4.3 / Linux `bbr_is_next_cycle_phase`.
    fn is_next_cycle_phase(&self, a: &AckSample) -> bool {
        let full_length = self
            .min_rtt
            .is_some_and(|m| a.now.saturating_duration_since(self.cycle_stamp) > m);
        let bw = self.bw.get();
        let inflight = u64::from(a.prior_inflight);
        if self.pacing_gain == UNIT {
            full_length
        } else if self.pacing_gain > UNIT {
            // Probing: until a round passed and the extra is in flight, or loss says it
            // overflowed the queue.
            full_length && (a.newly_lost > 0 || inflight >= self.inflight(bw, self.pacing_gain))
        } else {
            // Draining: a round, or as soon as the queue is gone.
            full_length || inflight <= self.inflight(bw, UNIT)
        }
    }

    fn advance_cycle_phase(&mut self, now: Instant) {
        self.cycle_index = (self.cycle_index + 1) % PACING_GAIN_CYCLE.len();
        self.cycle_stamp = now;
    }

    fn enter_probe_bw(&mut self, now: Instant) {
        self.mode = BbrMode::ProbeBw;
        let r = self.random_phase() as usize;
        self.cycle_index = PACING_GAIN_CYCLE.len() - 1 - r;
        self.advance_cycle_phase(now);
    }

    /// Linux `bbr_reset_mode`: back to STARTUP or PROBE_BW after PROBE_RTT.
    fn reset_mode(&mut self, now: Instant) {
        if self.full_bw_reached {
            self.enter_probe_bw(now);
        } else {
            self.mode = BbrMode::Startup;
        }
    }

    /// Draft §4.3.2.2 / Linux `bbr_check_full_bw_reached`.
    fn check_full_bw_reached(&mut self, a: &AckSample) {
        let app_limited = a.rate.is_some_and(|r| r.is_app_limited);
        if self.full_bw_reached || !self.round_start || app_limited {
            return;
        }
        let thresh = self.full_bw.saturating_mul(FULL_BW_THRESH) / UNIT;
        if self.bw.get() >= thresh {
            self.full_bw = self.bw.get();
            self.full_bw_count = 0;
            return;
        }
        self.full_bw_count += 1;
        self.full_bw_reached = self.full_bw_count >= FULL_BW_COUNT;
    }

    /// Draft §4.3.3 / Linux `bbr_check_drain`.
    fn check_drain(&mut self, a: &AckSample) {
        if self.mode == BbrMode::Startup && self.full_bw_reached {
            self.mode = BbrMode::Drain;
        }
        if self.mode == BbrMode::Drain
            && u64::from(a.inflight) <= self.inflight(self.bw.get(), UNIT)
        {
            self.enter_probe_bw(a.now);
        }
    }

    /// Linux `bbr_check_probe_rtt_done`.
    fn check_probe_rtt_done(&mut self, now: Instant) {
        if self.probe_rtt_done_stamp.is_none_or(|d| now <= d) {
            return;
        }
        // Wait a while until the next PROBE_RTT.
        self.min_rtt_stamp = now;
        self.cwnd = self.cwnd.max(self.prior_cwnd);
        self.reset_mode(now);
    }

    /// Draft §4.3.5 / Linux `bbr_update_min_rtt`: the min_rtt filter and PROBE_RTT.
    fn update_min_rtt(&mut self, a: &AckSample) {
        let now = a.now;
        let expired = now > self.min_rtt_stamp + MIN_RTT_WINDOW;
        let rtt = a.rate.and_then(|r| r.rtt).or(a.rtt);
        if let Some(rtt) = rtt {
            if self.min_rtt.is_none_or(|m| rtt < m) || expired {
                self.min_rtt = Some(rtt);
                self.min_rtt_stamp = now;
            }
        }
        if expired && !self.idle_restart && self.mode != BbrMode::ProbeRtt {
            self.mode = BbrMode::ProbeRtt;
            self.save_cwnd();
            self.probe_rtt_done_stamp = None;
        }
        if self.mode == BbrMode::ProbeRtt {
            if self.probe_rtt_done_stamp.is_none() && a.inflight <= self.min_cwnd() {
                // Keep the minimum in flight for max(200 ms, one round).
                self.probe_rtt_done_stamp = Some(now + PROBE_RTT_TIME);
                self.probe_rtt_round_done = false;
                self.next_round_delivered = a.delivered;
            } else if self.probe_rtt_done_stamp.is_some() {
                if self.round_start {
                    self.probe_rtt_round_done = true;
                }
                if self.probe_rtt_round_done {
                    self.check_probe_rtt_done(now);
                }
            }
        }
        if a.newly_delivered > 0 {
            self.idle_restart = false;
        }
    }

    /// Linux `bbr_update_gains`.
    fn update_gains(&mut self) {
        (self.pacing_gain, self.cwnd_gain) = match self.mode {
            BbrMode::Startup => (HIGH_GAIN, HIGH_GAIN),
            BbrMode::Drain => (DRAIN_GAIN, HIGH_GAIN),
            BbrMode::ProbeBw => (PACING_GAIN_CYCLE[self.cycle_index], CWND_GAIN),
            BbrMode::ProbeRtt => (UNIT, UNIT),
        };
    }

    /// Linux `bbr_set_cwnd_to_recover_or_restore`: packet conservation for the first round
    /// of recovery, the prior window restored after it. True when conservation decided.
    fn recover_or_restore(&mut self, a: &AckSample, cwnd: &mut u32) -> bool {
        let acked = a.newly_delivered;
        let (prev, state) = (self.prev_recovery, a.recovery);
        if a.newly_lost > 0 {
            *cwnd = cwnd.saturating_sub(a.newly_lost).max(self.mss);
        }
        if state == RecoveryState::Recovery && prev != RecoveryState::Recovery {
            // Draft §4.2.3.4: packet conservation; the round starts now.
            self.packet_conservation = true;
            self.next_round_delivered = a.delivered;
            *cwnd = a.inflight.saturating_add(acked);
        } else if prev >= RecoveryState::Recovery && state < RecoveryState::Recovery {
            // Leaving recovery: back to the window before it.
            *cwnd = (*cwnd).max(self.prior_cwnd);
            self.packet_conservation = false;
        }
        self.prev_recovery = state;
        if self.packet_conservation {
            *cwnd = (*cwnd).max(a.inflight.saturating_add(acked));
            return true;
        }
        false
    }

    /// Draft §4.2.3 / Linux `bbr_set_cwnd`.
    fn set_cwnd(&mut self, a: &AckSample) {
        let acked = a.newly_delivered;
        let mut cwnd = self.cwnd;
        if acked > 0 && !self.recover_or_restore(a, &mut cwnd) {
            let target = self.bdp(self.bw.get(), self.cwnd_gain) + self.aggregation_cwnd();
            let target = u32::try_from(self.quantization_budget(target)).unwrap_or(u32::MAX);
            if self.full_bw_reached {
                cwnd = cwnd.saturating_add(acked).min(target);
            } else if cwnd < target || a.delivered < INIT_CWND_SEGMENTS * u64::from(self.mss) {
                cwnd = cwnd.saturating_add(acked);
            }
            cwnd = cwnd.max(self.min_cwnd());
        }
        if self.mode == BbrMode::ProbeRtt {
            cwnd = cwnd.min(self.min_cwnd());
        }
        self.cwnd = cwnd;
    }
}

impl CongestionControl for Bbr {
    fn window(&self) -> u32 {
        self.cwnd
    }

    fn ssthresh(&self) -> u32 {
        // Linux reports BBR's ssthresh as "infinite" until DRAIN sets it; it plays no part.
        if self.full_bw_reached {
            u32::try_from(self.inflight(self.bw.get(), UNIT)).unwrap_or(u32::MAX)
        } else {
            u32::MAX
        }
    }

    fn set_window(&mut self, cwnd: u32) {
        self.cwnd = cwnd;
    }

    /// Linux `bbr_main`: update the model, then the pacing rate and the window.
    fn on_ack(&mut self, a: &AckSample) {
        self.mss = a.mss.max(1);
        self.update_bw(a);
        self.update_ack_aggregation(a);
        if self.mode == BbrMode::ProbeBw && self.is_next_cycle_phase(a) {
            self.advance_cycle_phase(a.now);
        }
        self.check_full_bw_reached(a);
        self.check_drain(a);
        self.update_min_rtt(a);
        self.update_gains();
        self.set_pacing_rate(self.bw.get(), self.pacing_gain, a.srtt);
        self.set_cwnd(a);
    }

    fn on_congestion_event(&mut self, _now: Instant, _flight: u32, _mss: u32) {
        // Linux `bbr_ssthresh`: remember the window; packet conservation on the next ACK
        // (which reports the recovery state) sets the new one.
        self.save_cwnd();
    }

    fn on_rto(&mut self, _now: Instant, _flight: u32, mss: u32) {
        // Linux tcp_enter_loss with `bbr_set_state(TCP_CA_Loss)`: one segment, and the
        // bandwidth plateau test starts over.
        self.save_cwnd();
        self.cwnd = mss.max(1);
        self.prev_recovery = RecoveryState::Loss;
        self.full_bw = 0;
        self.round_start = true;
    }

    fn on_spurious(&mut self) {
        // Linux `bbr_undo_cwnd`: the window comes back when recovery ends (prior_cwnd).
        self.full_bw = 0;
        self.full_bw_count = 0;
        self.cwnd = self.cwnd.max(self.prior_cwnd);
    }

    fn on_idle_restart(&mut self, restart_window: u32) {
        // Linux CA_EVENT_TX_START after an app-limited idle period (and tcp_cwnd_restart).
        self.idle_restart = true;
        self.cwnd = self.cwnd.min(restart_window.max(self.min_cwnd()));
        if self.mode == BbrMode::ProbeBw {
            self.pacing_rate = Self::rate_with_gain(self.bw.get(), UNIT).max(1);
        }
    }

    fn on_mss_change(&mut self, mss: u32) {
        self.mss = mss.max(1);
        self.cwnd = self.cwnd.max(mss);
    }

    fn pacing_rate(&self) -> Option<u64> {
        Some(self.pacing_rate.max(1))
    }

    fn controls_recovery(&self) -> bool {
        true
    }

    fn wants_app_limited(&self) -> bool {
        self.mode == BbrMode::ProbeRtt
    }

    fn bbr_info(&self) -> Option<BbrInfo> {
        Some(BbrInfo {
            bw: self.bw.get(),
            min_rtt: self
                .min_rtt
                .map_or(0, |m| u32::try_from(m.as_micros()).unwrap_or(u32::MAX)),
            pacing_gain: u32::try_from(self.pacing_gain).unwrap_or(u32::MAX),
            cwnd_gain: u32::try_from(self.cwnd_gain).unwrap_or(u32::MAX),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tcp::rate::RateSample;
    use crate::tcp::seq::SeqNumber;

    const MSS: u32 = 1000;
    /// The path: 1 MB/s, 10 ms: a BDP of 10,000 bytes.
    const BW: u64 = 1_000_000;
    const RTT: Duration = Duration::from_millis(10);
    /// ACKs per round trip.
    const ACKS: u32 = 10;

    /// Feeds a BBR sender ACKs of an evenly clocked path.
    struct Driver {
        bbr: Bbr,
        now: Instant,
        delivered: u64,
        /// Delivered when the current round began: every ACK of a round reports segments
        /// sent then (so each `round` is one BBR round trip).
        round_delivered: u64,
    }

    impl Driver {
        fn new() -> Self {
            Driver {
                bbr: Bbr::new(10 * MSS, MSS, Instant::ZERO, 1),
                now: Instant::ZERO,
                delivered: 0,
                round_delivered: 0,
            }
        }

        /// One ACK a tenth of `rtt` after the last, delivering a tenth of `bw × rtt` sent
        /// at the start of the round; `inflight` bytes remain.
        fn ack(&mut self, bw: u64, rtt: Duration, inflight: u32, recovery: RecoveryState) {
            self.ack_lost(bw, rtt, inflight, recovery, 0);
        }

        fn ack_lost(
            &mut self,
            bw: u64,
            rtt: Duration,
            inflight: u32,
            recovery: RecoveryState,
            lost: u32,
        ) {
            let bytes = bw * rtt.as_micros() as u64 / 1_000_000 / u64::from(ACKS);
            self.now += rtt / ACKS;
            self.delivered += bytes;
            let prior = self.round_delivered;
            let sample = AckSample {
                newly_delivered: bytes as u32,
                delivered: self.delivered,
                newly_lost: lost,
                prior_inflight: inflight + bytes as u32,
                inflight,
                rate: Some(RateSample {
                    delivery_rate: bw,
                    interval: rtt,
                    delivered: self.delivered - prior,
                    prior_delivered: prior,
                    rtt: Some(rtt),
                    is_app_limited: false,
                }),
                recovery,
                ..AckSample::basic(
                    self.now,
                    bytes as u32,
                    MSS,
                    SeqNumber(0),
                    SeqNumber(0),
                    Some(rtt),
                    rtt,
                )
            };
            self.bbr.on_ack(&sample);
        }

        fn round(&mut self, bw: u64, rtt: Duration, inflight: u32) {
            self.round_delivered = self.delivered;
            for _ in 0..ACKS {
                self.ack(bw, rtt, inflight, RecoveryState::Open);
            }
        }

        /// STARTUP with the bandwidth doubling, then a plateau until PROBE_BW.
        fn reach_probe_bw(&mut self) {
            for i in 0..4 {
                self.round(BW >> (4 - i), RTT, 50_000);
                assert_eq!(self.bbr.mode(), BbrMode::Startup);
            }
            for _ in 0..4 {
                self.round(BW, RTT, 50_000);
            }
            assert!(self.bbr.full_bandwidth_reached());
            assert_eq!(
                self.bbr.mode(),
                BbrMode::Drain,
                "the queue STARTUP built is still in flight"
            );
            self.ack(BW, RTT, 10_000, RecoveryState::Open);
            assert_eq!(self.bbr.mode(), BbrMode::ProbeBw, "drained to one BDP");
        }
    }

    #[test]
    fn startup_exits_on_a_plateau_through_drain_into_probe_bw() {
        let mut d = Driver::new();
        assert_eq!(d.bbr.pacing_gain(), HIGH_GAIN);
        // Before any RTT: high gain × initial window / 1 ms.
        assert_eq!(
            d.bbr.pacing_rate(),
            Some(10_000 * 1000 * HIGH_GAIN / UNIT * 99 / 100)
        );
        // Growth of 25 % or more keeps STARTUP going.
        for i in 0..4 {
            d.round(BW >> (4 - i), RTT, 50_000);
        }
        assert!(!d.bbr.full_bandwidth_reached());
        // The first round at the top rate still grew; two flat rounds after it are not yet a
        // plateau, the third is (draft §4.3.2.2).
        d.round(BW, RTT, 50_000);
        d.round(BW, RTT, 50_000);
        d.round(BW, RTT, 50_000);
        assert!(!d.bbr.full_bandwidth_reached());
        assert_eq!(d.bbr.mode(), BbrMode::Startup);
        d.round(BW, RTT, 50_000);
        assert_eq!(d.bbr.mode(), BbrMode::Drain);
        assert_eq!(d.bbr.pacing_gain(), DRAIN_GAIN);
        assert_eq!(d.bbr.bandwidth(), BW);
        assert_eq!(d.bbr.min_rtt(), Some(RTT));
        // DRAIN lasts while more than the model's BDP (plus bursts) is in flight.
        d.ack(BW, RTT, 30_000, RecoveryState::Open);
        assert_eq!(d.bbr.mode(), BbrMode::Drain);
        d.ack(BW, RTT, 10_000, RecoveryState::Open);
        assert_eq!(d.bbr.mode(), BbrMode::ProbeBw);
        assert_ne!(
            d.bbr.cycle_index, 1,
            "PROBE_BW never starts in the draining phase"
        );
    }

    #[test]
    fn probe_bw_window_and_pacing_follow_the_model() {
        let mut d = Driver::new();
        d.reach_probe_bw();
        for _ in 0..16 {
            d.round(BW, RTT, 10_000);
            let gain = PACING_GAIN_CYCLE[d.bbr.cycle_index];
            assert_eq!(d.bbr.pacing_gain(), gain);
            // pacing = gain × bw less 1 %.
            assert_eq!(d.bbr.pacing_rate(), Some(BW * gain / UNIT * 99 / 100));
            // cwnd = 2 × BDP (20,000) + ACK aggregation (one ACK's worth, 1,000) + 3 bursts
            // of 2 segments (6,000), + 2 segments while probing.
            let probing = if d.bbr.cycle_index == 0 { 2 * MSS } else { 0 };
            assert_eq!(d.bbr.window(), 27_000 + probing);
        }
        // The gain cycle went round: each of the eight phases lasts a min_rtt here.
        let bw_info = d.bbr.bbr_info().expect("bbr info");
        assert_eq!(
            (bw_info.bw, bw_info.min_rtt, bw_info.cwnd_gain),
            (BW, 10_000, 512)
        );
    }

    #[test]
    fn probe_rtt_after_ten_seconds_without_a_lower_rtt() {
        let mut d = Driver::new();
        d.reach_probe_bw();
        let before = d.bbr.window();
        // The RTT is now 12 ms: no new minimum. Within 10 s of the last one, no PROBE_RTT.
        let slower = Duration::from_millis(12);
        let start = d.now;
        while d.now < start + Duration::from_millis(9_800) {
            d.round(BW, slower, 12_000);
            assert_eq!(d.bbr.mode(), BbrMode::ProbeBw);
        }
        assert_eq!(d.bbr.min_rtt(), Some(RTT));
        let mut rounds = 0;
        while d.bbr.mode() != BbrMode::ProbeRtt && rounds < 100 {
            d.round(BW, slower, 12_000);
            rounds += 1;
        }
        assert_eq!(d.bbr.mode(), BbrMode::ProbeRtt);
        assert_eq!(d.bbr.window(), 4 * MSS, "4 segments in PROBE_RTT");
        assert_eq!(
            d.bbr.min_rtt(),
            Some(slower),
            "the expired minimum takes the new sample"
        );
        assert!(d.bbr.wants_app_limited(), "samples now understate the path");
        // With the window down to 4 segments for 200 ms and a round, PROBE_RTT ends.
        let entered = d.now;
        while d.bbr.mode() == BbrMode::ProbeRtt && d.now < entered + Duration::from_secs(1) {
            d.round(BW, slower, 4 * MSS);
            assert!(d.bbr.window() <= 4 * MSS || d.bbr.mode() != BbrMode::ProbeRtt);
        }
        assert_eq!(d.bbr.mode(), BbrMode::ProbeBw, "back to PROBE_BW");
        assert!(d.now - entered >= PROBE_RTT_TIME);
        assert!(
            d.bbr.window() >= before,
            "the window before PROBE_RTT is back"
        );
    }

    #[test]
    fn recovery_conserves_packets_then_restores_the_window() {
        let mut d = Driver::new();
        d.reach_probe_bw();
        d.round(BW, RTT, 10_000);
        let before = d.bbr.window();
        // Loss detected: the connection reports the congestion event, then the ACK.
        d.bbr.on_congestion_event(d.now, 15_000, MSS);
        d.ack_lost(BW, RTT, 15_000, RecoveryState::Recovery, 2 * MSS);
        // Draft §4.2.3.4: cwnd = inflight + newly delivered.
        assert_eq!(d.bbr.window(), 16_000);
        // Conservation: never below what is in flight plus what was delivered.
        d.ack(BW, RTT, 3_000, RecoveryState::Recovery);
        assert_eq!(d.bbr.window(), 16_000);
        d.ack(BW, RTT, 20_000, RecoveryState::Recovery);
        assert_eq!(d.bbr.window(), 21_000);
        // Recovery ends: the window from before it (then the model's target, which may be
        // 2 segments more in the probing phase).
        d.ack(BW, RTT, 10_000, RecoveryState::Open);
        assert!(d.bbr.window() >= before, "{} < {before}", d.bbr.window());
        assert!(d.bbr.window() <= 29_000);
        // The model never moved: random loss does not shrink BBR's bandwidth.
        assert_eq!(d.bbr.bandwidth(), BW);
    }

    #[test]
    fn rto_cuts_to_one_segment_and_restores_on_leaving_loss() {
        let mut d = Driver::new();
        d.reach_probe_bw();
        d.round(BW, RTT, 10_000);
        let before = d.bbr.window();
        d.bbr.on_rto(d.now, 20_000, MSS);
        assert_eq!(d.bbr.window(), MSS);
        d.ack(BW, RTT, 0, RecoveryState::Loss);
        assert_eq!(d.bbr.window(), 4 * MSS, "the minimum window");
        d.ack(BW, RTT, 0, RecoveryState::Open);
        assert!(d.bbr.window() >= before, "{} < {before}", d.bbr.window());
        assert!(d.bbr.window() <= 29_000);
    }

    #[test]
    fn max_filter_keeps_the_best_of_the_window() {
        let mut f = MaxFilter::default();
        f.update(10, 1, 100);
        f.update(10, 2, 50);
        assert_eq!(f.get(), 100);
        f.update(10, 11, 60);
        assert_eq!(f.get(), 100, "round 1 is still within 10 rounds of 11");
        f.update(10, 12, 40);
        assert_eq!(f.get(), 60, "100 aged out after 10 rounds");
        f.update(10, 13, 200);
        assert_eq!(f.get(), 200);
    }
}

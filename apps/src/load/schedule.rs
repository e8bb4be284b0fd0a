//! The open-loop schedule of one connection slot.
//!
//! A run at R requests/s over C connection slots gives slot g (its global index, 0..C) the
//! arrivals that belong to it, as a function of (g, C, R, the arrival process, the seed)
//! alone, never of how slots are shared among threads or agents. So any split of the slots
//! (threads of one `surge load`, agents of a distributed test) intends exactly the same send
//! times as a single run:
//! - constant: the whole run's n-th arrival is at n/R s; slot g takes n = g, g + C, g + 2C...
//! - Poisson: slot g draws exponential gaps at rate R/C from its own seeded generator; the
//!   superposition of C independent Poisson processes of rate R/C is a Poisson process of
//!   rate R.
//!
//! Times are offsets from the run's start (plus the slot's ramp-up offset).

use std::time::Duration;

use rand::{Rng, SeedableRng, rngs::StdRng};

use super::config::Arrivals;

/// The longest Poisson gap (keeps a pathological draw from stalling a slot for good).
const MAX_GAP: Duration = Duration::from_secs(3600);

/// The whole run's `n`-th constant arrival at `rate` requests/s, from the run's start.
pub fn constant_arrival(n: u64, rate: f64) -> Duration {
    Duration::from_nanos((n as f64 * 1e9 / rate) as u64)
}

/// One slot's arrivals, in order.
#[derive(Debug)]
pub struct SlotSchedule {
    arrivals: Arrivals,
    /// The slot's global index.
    global: u64,
    /// Slots in the whole run.
    connections: u64,
    /// The whole run's rate, requests/s.
    rate: f64,
    /// Ramp-up offset of the slot.
    base: Duration,
    /// Arrivals of this slot consumed so far.
    taken: u64,
    /// Poisson: the next arrival (without `base`).
    poisson_next: Duration,
    rng: StdRng,
}

impl SlotSchedule {
    /// The schedule of slot `global` of `connections` in a run at `rate` requests/s, shifted
    /// by `base` (its ramp-up offset).
    pub fn new(
        arrivals: Arrivals,
        seed: u64,
        global: usize,
        connections: usize,
        rate: f64,
        base: Duration,
    ) -> SlotSchedule {
        // One generator per slot, seeded by (seed, slot): SplitMix-style spreading so
        // neighbouring slots get unrelated streams.
        let slot_seed = seed
            .wrapping_mul(0x9e37_79b9_7f4a_7c15)
            .wrapping_add(global as u64)
            .wrapping_mul(0xbf58_476d_1ce4_e5b9);
        let mut schedule = SlotSchedule {
            arrivals,
            global: global as u64,
            connections: connections.max(1) as u64,
            rate,
            base,
            taken: 0,
            poisson_next: Duration::ZERO,
            rng: StdRng::seed_from_u64(slot_seed),
        };
        if arrivals == Arrivals::Poisson {
            schedule.poisson_next = schedule.exponential_gap();
        }
        schedule
    }

    /// An exponential gap with mean `C/R` seconds.
    fn exponential_gap(&mut self) -> Duration {
        let u: f64 = self.rng.random();
        let slot_rate = self.rate / self.connections as f64;
        Duration::from_secs_f64(-(1.0 - u).ln() / slot_rate).min(MAX_GAP)
    }

    /// When the next arrival is due, from the run's start.
    pub fn next_due(&self) -> Duration {
        self.base
            + match self.arrivals {
                Arrivals::Constant => {
                    constant_arrival(self.global + self.taken * self.connections, self.rate)
                }
                Arrivals::Poisson => self.poisson_next,
            }
    }

    /// Consumes the next arrival and returns when it was due.
    pub fn take(&mut self) -> Duration {
        let due = self.next_due();
        self.taken += 1;
        if self.arrivals == Arrivals::Poisson {
            let gap = self.exponential_gap();
            self.poisson_next += gap;
        }
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every arrival before `end` of slots `slots` of `c`, sorted.
    fn union(
        arrivals: Arrivals,
        slots: std::ops::Range<usize>,
        c: usize,
        rate: f64,
        end: Duration,
    ) -> Vec<Duration> {
        let mut all = Vec::new();
        for g in slots {
            let mut s = SlotSchedule::new(arrivals, 7, g, c, rate, Duration::ZERO);
            while s.next_due() < end {
                all.push(s.take());
            }
        }
        all.sort();
        all
    }

    #[test]
    fn constant_slots_together_are_every_nth_of_the_whole_rate() {
        let end = Duration::from_secs(2);
        let all = union(Arrivals::Constant, 0..7, 7, 300.0, end);
        let expected: Vec<Duration> = (0..600).map(|n| constant_arrival(n, 300.0)).collect();
        assert_eq!(all, expected);
    }

    #[test]
    fn any_split_of_the_slots_intends_the_same_times() {
        for arrivals in [Arrivals::Constant, Arrivals::Poisson] {
            let end = Duration::from_secs(3);
            let whole = union(arrivals, 0..10, 10, 500.0, end);
            let mut parts = Vec::new();
            for (first, count) in [(0, 4), (4, 3), (7, 3)] {
                parts.extend(union(arrivals, first..first + count, 10, 500.0, end));
            }
            parts.sort();
            assert_eq!(parts, whole, "{arrivals:?}");
        }
    }

    #[test]
    fn poisson_union_has_the_asked_rate() {
        let end = Duration::from_secs(20);
        let all = union(Arrivals::Poisson, 0..8, 8, 1000.0, end);
        // 20 000 expected; a Poisson count has a standard deviation of about 141.
        assert!((19_300..=20_700).contains(&all.len()), "{}", all.len());
        let gaps: Vec<f64> = all
            .windows(2)
            .map(|w| (w[1] - w[0]).as_secs_f64())
            .collect();
        let mean = gaps.iter().sum::<f64>() / gaps.len() as f64;
        let var = gaps.iter().map(|g| (g - mean).powi(2)).sum::<f64>() / gaps.len() as f64;
        // Exponential gaps: the standard deviation equals the mean.
        assert!(
            (var.sqrt() / mean - 1.0).abs() < 0.05,
            "cv {}",
            var.sqrt() / mean
        );
    }
}

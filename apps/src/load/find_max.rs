//! `--find-max --p99 T`: the highest open-loop rate whose p99 latency stays under `T`.
//!
//! Doubling from the start rate until a trial fails, then bisection between the best
//! passing and the lowest failing rate, for at most `max_trials` timed trials.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use serde::Serialize;

use super::config::LoadConfig;
use super::run::{Outcome, run_once};
use crate::backend::Backend;
use crate::report::format_micros;

/// Rate used for the first trial when `--rate` is not given.
const START_RATE: f64 = 1000.0;
/// Stop bisecting when the bracket is this narrow, relative to the passing rate.
const PRECISION: f64 = 0.05;
/// A trial must send at least this share of the asked rate to pass.
const RATE_KEPT: f64 = 0.95;

/// One trial of the search.
#[derive(Clone, Debug, Serialize)]
pub struct Trial {
    /// Asked rate, requests per second.
    pub rate: f64,
    /// Achieved rate (answered per second).
    pub achieved: f64,
    /// Corrected p99 latency, microseconds.
    pub p99_us: u64,
    /// Failed requests.
    pub errors: u64,
    /// Whether the trial met the target.
    pub passed: bool,
}

/// The result of the search.
#[derive(Clone, Debug, Serialize)]
pub struct FindMaxResult {
    /// The p99 target, microseconds.
    pub target_p99_us: u64,
    /// The highest passing rate, if any trial passed.
    pub max_rate: Option<f64>,
    /// Every trial in order.
    pub trials: Vec<Trial>,
}

impl FindMaxResult {
    /// The one-line answer.
    pub fn summary_line(&self) -> String {
        let target = format_micros(self.target_p99_us as f64);
        match self.max_rate {
            Some(rate) => format!(
                "find-max: highest rate with p99 <= {target}: {rate:.0} req/s ({} trials)",
                self.trials.len()
            ),
            None => format!(
                "find-max: no rate tried kept p99 <= {target} ({} trials; lowest tried {:.0} req/s)",
                self.trials.len(),
                self.trials
                    .iter()
                    .map(|t| t.rate)
                    .fold(f64::INFINITY, f64::min)
            ),
        }
    }
}

/// Runs the search; the returned outcome is the best passing trial (else the last one).
pub fn find_max<B: Backend>(
    backend: &B,
    config: &LoadConfig,
    target: Duration,
    max_trials: usize,
    stop: &AtomicBool,
) -> anyhow::Result<Outcome> {
    let target_us = u64::try_from(target.as_micros()).unwrap_or(u64::MAX);
    let mut rate = config.rate.unwrap_or(START_RATE);
    let (mut best, mut lowest_fail): (Option<(f64, Outcome)>, Option<f64>) = (None, None);
    let mut last = None;
    let mut trials = Vec::new();
    for _ in 0..max_trials {
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let mut trial_config = config.clone();
        trial_config.rate = Some(rate);
        trial_config.progress = false;
        let outcome = run_once(backend, &trial_config, stop)?;
        let r = &outcome.report;
        let sent_rate = r.requests_sent as f64 / r.duration_s;
        let passed = r.errors_total == 0
            && r.answered > 0
            && r.latency_us.p99 <= target_us
            && sent_rate >= rate * RATE_KEPT;
        eprintln!(
            "find-max: trial {:>2} at {rate:>10.0} req/s: p99 {:>10}, {:>10.0} req/s answered, {} errors -> {}",
            trials.len() + 1,
            format_micros(r.latency_us.p99 as f64),
            r.requests_per_second,
            r.errors_total,
            if passed { "pass" } else { "fail" }
        );
        trials.push(Trial {
            rate,
            achieved: r.requests_per_second,
            p99_us: r.latency_us.p99,
            errors: r.errors_total,
            passed,
        });
        if passed {
            best = Some((rate, outcome));
        } else {
            lowest_fail = Some(lowest_fail.map_or(rate, |f: f64| f.min(rate)));
            last = Some(outcome);
        }
        let good = best.as_ref().map_or(0.0, |(r, _)| *r);
        rate = match lowest_fail {
            None => rate * 2.0,
            Some(fail) => {
                if good > 0.0 && (fail - good) <= good * PRECISION {
                    break;
                }
                (good + fail) / 2.0
            }
        };
        if rate < 1.0 {
            break;
        }
    }
    let max_rate = best.as_ref().map(|(r, _)| *r);
    let mut outcome = match (best, last) {
        (Some((_, o)), _) | (None, Some(o)) => o,
        (None, None) => anyhow::bail!("--find-max ran no trial (stopped before the first)"),
    };
    outcome.find_max = Some(FindMaxResult {
        target_p99_us: target_us,
        max_rate,
        trials,
    });
    Ok(outcome)
}

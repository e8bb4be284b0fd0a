//! One `surge load` run: threads, live progress, merging, and the report.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::sync::atomic::AtomicBool;
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime};

use anyhow::Context;
use hdrhistogram::Histogram;

use super::config::{LoadConfig, LoadMode};
use super::counts::{Counts, IntervalMsg, ThreadPlan, ThreadResult};
use super::find_max::FindMaxResult;
use super::worker::run_thread;
use crate::backend::Backend;
use crate::report::hgrm::percentile_rows;
use crate::report::hlog::Interval;
use crate::report::load_report::{IntervalLine, LoadReport};
use crate::report::{LatencySet, Summary, format_bytes, format_micros, new_histogram};

/// A finished run: the report and the raw histograms behind it.
pub struct Outcome {
    /// The report.
    pub report: LoadReport,
    /// The merged latency histogram (microseconds).
    pub latency: Histogram<u64>,
    /// Per-second histograms for the `.hlog`.
    pub intervals: Vec<Interval>,
    /// Wall-clock start of the run.
    pub start_time: SystemTime,
    /// The rate search, when `--find-max` ran.
    pub find_max: Option<FindMaxResult>,
    /// Every histogram of the run (latency, uncorrected, time to first byte, connect).
    pub latencies: LatencySet,
    /// `--record-schedule`: the intended send times, nanoseconds after `start_time`, sorted.
    pub schedule: Vec<u64>,
    /// How long after `--start-at` the run actually began (zero when on time or not asked).
    pub late_start: Duration,
}

/// One second, summed over threads.
struct SecondAgg {
    histogram: Histogram<u64>,
    line: IntervalLine,
}

/// Splits `total` into `parts` shares that differ by at most one.
fn share(total: u64, parts: usize, index: usize) -> u64 {
    let parts = parts.max(1) as u64;
    total / parts + u64::from((index as u64) < total % parts)
}

/// Sleeps until the wall clock reaches `at` (or `stop` is raised), in steps of at most
/// 50 ms.
fn wait_until(at: SystemTime, stop: &AtomicBool) -> anyhow::Result<()> {
    // Bounded: `check_start_at` refused instants more than a day ahead.
    while let Ok(left) = at.duration_since(SystemTime::now()) {
        anyhow::ensure!(
            !stop.load(std::sync::atomic::Ordering::Relaxed),
            "stopped before the --start-at instant"
        );
        if left.is_zero() {
            break;
        }
        std::thread::sleep(left.min(Duration::from_millis(50)));
    }
    Ok(())
}

/// The run's origin: now, or the `--start-at` instant (waited for; a late agent keeps the
/// common origin, so its schedule stays on absolute time and its first requests are late).
fn origin(
    config: &LoadConfig,
    stop: &AtomicBool,
) -> anyhow::Result<(Instant, SystemTime, Duration)> {
    let Some(at) = config.start_at else {
        return Ok((Instant::now(), SystemTime::now(), Duration::ZERO));
    };
    wait_until(at, stop)?;
    let (now, wall) = (Instant::now(), SystemTime::now());
    let late = wall.duration_since(at).unwrap_or_default();
    let start = now.checked_sub(late).unwrap_or(now);
    if late > Duration::from_millis(100) {
        eprintln!(
            "surge load: started {:.3} s after --start-at; the schedule keeps the common origin",
            late.as_secs_f64()
        );
    }
    Ok((start, at, late))
}

/// Runs the load once with `config` on `backend`.
pub fn run_once<B: Backend>(
    backend: &B,
    config: &LoadConfig,
    stop: &AtomicBool,
) -> anyhow::Result<Outcome> {
    let counters_before = backend.counters();
    let (tx, rx) = mpsc::channel::<IntervalMsg>();
    let (start, start_time, late_start) = origin(config, stop)?;
    let mut plans = Vec::new();
    let mut first = config.slice.first;
    for index in 0..config.threads {
        let connections = share(config.slice.count as u64, config.threads, index) as usize;
        plans.push(ThreadPlan {
            index,
            first_connection: first,
            connections,
            requests: config.requests.map(|r| share(r, config.threads, index)),
        });
        first += connections;
    }
    let mut seconds: BTreeMap<u64, SecondAgg> = BTreeMap::new();
    let mut reported = vec![None::<u64>; config.threads];
    let mut printed_up_to = 0u64;
    let results: Vec<anyhow::Result<ThreadResult>> = std::thread::scope(|scope| {
        let handles: Vec<_> = plans
            .iter()
            .map(|plan| {
                let tx = tx.clone();
                scope.spawn(move || -> anyhow::Result<ThreadResult> {
                    let worker = backend
                        .worker(plan.index)
                        .with_context(|| format!("starting load thread {}", plan.index))?;
                    run_thread(config, plan, worker, start, stop, &tx)
                        .with_context(|| format!("load thread {}", plan.index))
                })
            })
            .collect();
        drop(tx);
        // Bounded: every worker ends by duration + drain; the channel closes when they do.
        loop {
            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(msg) => {
                    add_second(&mut seconds, &msg, config);
                    if let Some(r) = reported.get_mut(msg.thread) {
                        *r = Some(r.map_or(msg.second, |old| old.max(msg.second)));
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
            if config.progress {
                // A second is complete once every thread has reported it.
                let complete = reported
                    .iter()
                    .map(|r| r.map_or(0, |s| s + 1))
                    .min()
                    .unwrap_or(0);
                print_progress(&seconds, &mut printed_up_to, complete, config);
            }
        }
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("a load thread panicked")))
            })
            .collect()
    });
    if config.progress {
        print_progress(&seconds, &mut printed_up_to, u64::MAX, config);
    }
    let finished = Instant::now();
    let mut latencies = LatencySet::default();
    let mut counts = Counts::default();
    let mut schedule = Vec::new();
    for result in results {
        let result = result?;
        latencies.merge(&result.latencies);
        counts.merge(&result.counts);
        schedule.extend(result.schedule);
    }
    schedule.sort_unstable();
    let counters_after = backend.counters();
    let stack_counters = counters_after
        .iter()
        .map(|(k, after)| {
            let before = counters_before.get(k).copied().unwrap_or(0);
            (k.clone(), *after as i64 - before as i64)
        })
        .collect();
    let stopped_early = stop.load(std::sync::atomic::Ordering::Relaxed);
    let window_end = finished.min(start + config.duration);
    let measured = window_end
        .saturating_duration_since(start + config.warmup)
        .as_secs_f64()
        .max(1e-6);
    let total_time = finished.duration_since(start).as_secs_f64().max(1e-6);
    // Warm-up seconds are left out unless they hold measured samples (a second that the
    // warm-up's end cuts in two).
    let intervals = seconds
        .iter()
        .filter(|(_, agg)| !agg.line.warmup || !agg.histogram.is_empty())
        .map(|(second, agg)| Interval {
            start: Duration::from_secs(*second),
            length: Duration::from_secs(1),
            histogram: agg.histogram.clone(),
        })
        .collect();
    let report = LoadReport {
        stack: backend.name().to_string(),
        target: config.target.to_string(),
        mode: config.mode.name().to_string(),
        threads: config.threads,
        connections: config.slice.count,
        pipeline: config.pipeline,
        request_size: config.request_size,
        response_size: config.response_size,
        direction: (config.mode == LoadMode::Stream)
            .then(|| format!("{:?}", config.direction).to_lowercase()),
        // An agent's share of the rate: its slots' part of the whole.
        rate: config
            .rate
            .map(|r| r * config.slice.count as f64 / config.connections as f64),
        arrivals: config
            .rate
            .map(|_| format!("{:?}", config.arrivals).to_lowercase()),
        duration_s: measured,
        warmup_s: config.warmup.as_secs_f64(),
        stopped_early,
        requests_sent: counts.requests_sent,
        answered: counts.answered,
        errors_total: counts.errors_total(),
        errors: counts.errors.clone(),
        non_2xx: counts.non_2xx,
        http_status: (config.mode == LoadMode::Http).then_some(counts.http_status),
        method: (config.mode == LoadMode::Http).then(|| config.http.method.clone()),
        connect_attempts: counts.connect_attempts,
        connects: counts.connects,
        connect_errors: counts.connect_errors.clone(),
        warmup_requests_sent: counts.warmup_sent,
        warmup_answered: counts.warmup_answered,
        warmup_errors: counts.warmup_errors,
        bytes_sent: counts.bytes_sent,
        bytes_received: counts.bytes_received,
        streams_verified: counts.streams_verified,
        streams_mismatched: counts.streams_mismatched,
        streams_closed_cleanly: counts.streams_closed_cleanly,
        requests_per_second: counts.answered as f64 / measured,
        bytes_received_per_second: counts.bytes_received as f64 / total_time,
        bytes_sent_per_second: counts.bytes_sent as f64 / total_time,
        latency_us: Summary::of(&latencies.latency),
        uncorrected_latency_us: Summary::of(&latencies.uncorrected),
        ttfb_us: Summary::of(&latencies.ttfb),
        connect_us: Summary::of(&latencies.connect),
        latency_percentiles: percentile_rows(&latencies.latency),
        stack_counters,
        intervals: seconds.values().map(|agg| agg.line.clone()).collect(),
    };
    Ok(Outcome {
        report,
        latency: latencies.latency.clone(),
        intervals,
        start_time,
        find_max: None,
        latencies,
        schedule,
        late_start,
    })
}

/// Adds one thread's second to the totals.
fn add_second(seconds: &mut BTreeMap<u64, SecondAgg>, msg: &IntervalMsg, config: &LoadConfig) {
    let agg = seconds.entry(msg.second).or_insert_with(|| SecondAgg {
        histogram: new_histogram(),
        line: IntervalLine {
            second: msg.second + 1,
            warmup: Duration::from_secs(msg.second) < config.warmup,
            ..IntervalLine::default()
        },
    });
    let _ = agg.histogram.add(&msg.histogram);
    agg.line.answered += msg.answered;
    agg.line.errors += msg.errors;
    agg.line.bytes_received += msg.bytes_received;
    agg.line.bytes_sent += msg.bytes_sent;
    agg.line.p99_us = if agg.histogram.is_empty() {
        0
    } else {
        agg.histogram.value_at_quantile(0.99)
    };
}

/// Prints the progress lines of every second before `complete` not printed yet.
fn print_progress(
    seconds: &BTreeMap<u64, SecondAgg>,
    printed_up_to: &mut u64,
    complete: u64,
    config: &LoadConfig,
) {
    use std::io::IsTerminal as _;
    let mut stderr = std::io::stderr().lock();
    // On a terminal the line rewrites itself; otherwise (files, pipes, CI) one line per second.
    let tty = stderr.is_terminal();
    for (second, agg) in seconds.range(*printed_up_to..) {
        if *second >= complete {
            break;
        }
        let l = &agg.line;
        let latency = if config.mode == LoadMode::Stream {
            String::new()
        } else if l.p99_us == 0 {
            "p99 -".to_string()
        } else {
            format!("p99 {}", format_micros(l.p99_us as f64))
        };
        let _ = write!(
            stderr,
            "{}[{:>4}s] {:>15}  {latency:<14} errors {:<6} read {}/s  written {}/s{}{}",
            if tty { "\r\x1b[2K" } else { "" },
            l.second,
            if config.mode == LoadMode::Stream {
                String::new()
            } else {
                format!("{} req/s", l.answered)
            },
            l.errors,
            format_bytes(l.bytes_received as f64),
            format_bytes(l.bytes_sent as f64),
            if l.warmup { "  (warm-up)" } else { "" },
            if tty { "" } else { "\n" }
        );
        *printed_up_to = second + 1;
    }
    if tty && complete == u64::MAX && *printed_up_to > 0 {
        let _ = writeln!(stderr);
    }
}

//! `surge report merge`: one report from the files the agents of one test wrote.
//!
//! Each agent (`surge load --agents N --agent-index I --test-id ID --results-dir DIR`)
//! writes `agent-<I>-of-<N>.json` (its report, counters and full histograms) and `.hlog`
//! (one histogram per second). The merge refuses inputs that are not one whole test
//! (different test ids, different agent counts, an index twice, overlapping connection
//! slices, missing agents unless `--allow-missing`), adds the histograms exactly (HdrHistogram
//! addition loses nothing) and aligns the per-second histograms on absolute time, then
//! prints the report `surge load` prints plus one row per agent.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail, ensure};
use serde::Serialize;

use super::agent_record::{AGENT_FORMAT, AgentRecord};
use super::hgrm::percentile_rows;
use super::hlog::{Interval, read_interval_histograms};
use super::load_report::{IntervalLine, LoadReport};
use super::{LatencySet, Summary, format_micros, merge_counts, new_histogram};

/// One agent's files, read.
#[derive(Clone, Debug)]
pub struct AgentInput {
    /// The `.json` it came from.
    pub source: PathBuf,
    /// Its record.
    pub record: AgentRecord,
    /// Its `.hlog` intervals (start relative to `record.start_unix_ns`).
    pub intervals: Vec<Interval>,
}

/// One agent's row in the merged report.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct AgentRow {
    /// The agent's index.
    pub index: usize,
    /// Its stack.
    pub stack: String,
    /// Global index of its first connection slot.
    pub first_connection: usize,
    /// Its connection slots.
    pub connections: usize,
    /// Requests it wrote (measured window).
    pub requests_sent: u64,
    /// Responses it received.
    pub answered: u64,
    /// Its failed requests.
    pub errors_total: u64,
    /// Its failed connects.
    pub connect_errors_total: u64,
    /// Its answered requests per second.
    pub requests_per_second: f64,
    /// Its latency median, microseconds.
    pub p50_us: u64,
    /// Its 99th percentile, microseconds.
    pub p99_us: u64,
    /// Its largest latency, microseconds.
    pub max_us: u64,
    /// How late it began after the common start, milliseconds.
    pub late_start_ms: f64,
}

/// The merged test.
#[derive(Clone, Debug)]
pub struct MergedRun {
    /// The test id all inputs share.
    pub test_id: String,
    /// Agents the test had.
    pub agents: usize,
    /// Indexes merged.
    pub merged: Vec<usize>,
    /// Indexes missing (only with `allow_missing`).
    pub missing: Vec<usize>,
    /// The merged report.
    pub report: LoadReport,
    /// The merged histograms.
    pub latencies: LatencySet,
    /// The merged per-second histograms, start relative to `start_time`.
    pub intervals: Vec<Interval>,
    /// The earliest agent origin (the common `--start-at` when all agents had it).
    pub start_time: SystemTime,
    /// Whether the agents' origins differ (no common `--start-at`).
    pub origins_differ: bool,
    /// One row per merged agent.
    pub rows: Vec<AgentRow>,
}

/// What `--json` of a merge holds: the load report's fields plus the merge's own.
#[derive(Serialize)]
struct MergedJson<'a> {
    test_id: &'a str,
    agents: usize,
    merged_agents: &'a [usize],
    missing_agents: &'a [usize],
    start_unix_ns: u64,
    #[serde(flatten)]
    report: &'a LoadReport,
    per_agent: &'a [AgentRow],
}

/// `agent-<I>-of-<N>.json` → (I, N).
pub fn parse_agent_file_name(name: &str) -> Option<(usize, usize)> {
    let rest = name.strip_prefix("agent-")?.strip_suffix(".json")?;
    let (index, count) = rest.split_once("-of-")?;
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(index) || !digits(count) {
        return None;
    }
    Some((index.parse().ok()?, count.parse().ok()?))
}

/// Reads the agents' files: each path is a results directory (every `agent-*-of-*.json`
/// in it) or one agent's `.json`; each `.json` needs its `.hlog` beside it.
pub fn read_inputs(paths: &[PathBuf]) -> anyhow::Result<Vec<AgentInput>> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let mut found = Vec::new();
            for entry in
                std::fs::read_dir(path).with_context(|| format!("reading {}", path.display()))?
            {
                let entry = entry.with_context(|| format!("reading {}", path.display()))?;
                let name = entry.file_name();
                if parse_agent_file_name(&name.to_string_lossy()).is_some() {
                    found.push(entry.path());
                }
            }
            ensure!(
                !found.is_empty(),
                "no agent results (agent-<I>-of-<N>.json) in {}",
                path.display()
            );
            found.sort();
            files.extend(found);
        } else {
            files.push(path.clone());
        }
    }
    ensure!(!files.is_empty(), "no agent results given");
    files.iter().map(|f| read_input(f)).collect()
}

/// Reads one agent's `.json` and the `.hlog` beside it.
fn read_input(json: &Path) -> anyhow::Result<AgentInput> {
    let text =
        std::fs::read_to_string(json).with_context(|| format!("reading {}", json.display()))?;
    let record: AgentRecord = serde_json::from_str(&text).with_context(|| {
        format!(
            "{}: not an agent's results file (surge load --results-dir writes them)",
            json.display()
        )
    })?;
    ensure!(
        record.format == AGENT_FORMAT,
        "{}: format {:?}, this surge reads {AGENT_FORMAT:?}",
        json.display(),
        record.format
    );
    if let Some((index, count)) = json
        .file_name()
        .and_then(|n| parse_agent_file_name(&n.to_string_lossy()))
    {
        ensure!(
            (index, count) == (record.agent_index, record.agents),
            "{} says it is agent {} of {}: the name and the content disagree",
            json.display(),
            record.agent_index,
            record.agents
        );
    }
    let hlog = json.with_extension("hlog");
    let log = std::fs::read(&hlog).with_context(|| {
        format!(
            "reading {} (each agent's .json needs its .hlog)",
            hlog.display()
        )
    })?;
    let intervals =
        read_interval_histograms(&log).with_context(|| format!("{}", hlog.display()))?;
    Ok(AgentInput {
        source: json.to_path_buf(),
        record,
        intervals,
    })
}

/// The file name of an input, for messages.
fn name_of(input: &AgentInput) -> String {
    input.source.file_name().map_or_else(
        || input.source.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// Refuses inputs that are not (part of) one test; returns the missing indexes.
fn check_inputs(inputs: &[AgentInput], allow_missing: bool) -> anyhow::Result<Vec<usize>> {
    let first = inputs.first().context("no agent results to merge")?;
    let mut ids: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for input in inputs {
        ids.entry(input.record.test_id.as_str())
            .or_default()
            .push(name_of(input));
    }
    if ids.len() > 1 {
        let list: Vec<String> = ids
            .iter()
            .map(|(id, files)| format!("{id:?} ({})", files.join(", ")))
            .collect();
        bail!(
            "the files are from different tests: {}; merge one test at a time",
            list.join("; ")
        );
    }
    let count = first.record.agents;
    for input in inputs {
        let r = &input.record;
        ensure!(
            r.agents == count,
            "{} is agent {} of {}, {} is of {count}: one test has one number of agents",
            name_of(input),
            r.agent_index,
            r.agents,
            name_of(first)
        );
        ensure!(
            r.agent_index < count,
            "{}: agent index {} is outside 0..{count}",
            name_of(input),
            r.agent_index
        );
        ensure!(
            r.connections_total == first.record.connections_total
                && r.rate_total == first.record.rate_total
                && r.report.mode == first.record.report.mode
                && r.report.target == first.record.report.target,
            "{} ran {} connections, rate {:?}, mode {} against {}; {} ran {}, {:?}, {} against {}: not one test",
            name_of(input),
            r.connections_total,
            r.rate_total,
            r.report.mode,
            r.report.target,
            name_of(first),
            first.record.connections_total,
            first.record.rate_total,
            first.record.report.mode,
            first.record.report.target
        );
    }
    let mut seen: BTreeMap<usize, String> = BTreeMap::new();
    for input in inputs {
        if let Some(other) = seen.insert(input.record.agent_index, name_of(input)) {
            bail!(
                "agent {} of {count} appears twice: {} and {} ({})",
                input.record.agent_index,
                other,
                name_of(input),
                input.source.display()
            );
        }
    }
    let mut slices: Vec<(usize, usize, usize)> = inputs
        .iter()
        .map(|i| {
            let r = &i.record;
            (
                r.first_connection,
                r.first_connection + r.connections,
                r.agent_index,
            )
        })
        .collect();
    slices.sort_unstable();
    for pair in slices.windows(2) {
        if let [(_, end, a), (start, _, b)] = pair {
            ensure!(
                start >= end,
                "agents {a} and {b} overlap: both drove connection slot {start} (were they given the same index?)"
            );
        }
    }
    let missing: Vec<usize> = (0..count).filter(|i| !seen.contains_key(i)).collect();
    if !missing.is_empty() && !allow_missing {
        let names: Vec<String> = missing
            .iter()
            .map(|i| format!("agent-{i}-of-{count}.json"))
            .collect();
        bail!(
            "missing agent(s) {} of {count}: no {} among the inputs (--allow-missing merges the \
             others and says so in the report)",
            missing
                .iter()
                .map(usize::to_string)
                .collect::<Vec<_>>()
                .join(", "),
            names.join(", ")
        );
    }
    Ok(missing)
}

const NANOS_PER_SECOND: u64 = 1_000_000_000;

/// Merges the agents of one test.
pub fn merge(inputs: &[AgentInput], allow_missing: bool) -> anyhow::Result<MergedRun> {
    let missing = check_inputs(inputs, allow_missing)?;
    let mut inputs: Vec<&AgentInput> = inputs.iter().collect();
    inputs.sort_by_key(|i| i.record.agent_index);
    let first = inputs.first().context("no agent results to merge")?;
    let origin = inputs
        .iter()
        .map(|i| i.record.start_unix_ns)
        .min()
        .unwrap_or_default();
    let origins_differ = inputs.iter().any(|i| i.record.start_unix_ns != origin);
    let mut latencies = LatencySet::default();
    // Absolute second (after `origin`) -> merged histogram; the same -> merged line.
    let mut seconds: BTreeMap<u64, Interval> = BTreeMap::new();
    let mut lines: BTreeMap<u64, IntervalLine> = BTreeMap::new();
    let mut rows = Vec::new();
    let mut r = LoadReport {
        target: first.record.report.target.clone(),
        mode: first.record.report.mode.clone(),
        pipeline: first.record.report.pipeline,
        request_size: first.record.report.request_size,
        response_size: first.record.report.response_size,
        direction: first.record.report.direction.clone(),
        arrivals: first.record.report.arrivals.clone(),
        method: first.record.report.method.clone(),
        warmup_s: first.record.report.warmup_s,
        ..LoadReport::default()
    };
    let mut stacks = BTreeSet::new();
    for input in &inputs {
        let rec = &input.record;
        let a = &rec.report;
        let set = rec
            .histograms
            .decode()
            .with_context(|| format!("{}", input.source.display()))?;
        latencies.merge(&set);
        let shift = rec.start_unix_ns - origin;
        for interval in &input.intervals {
            let at = shift + u64::try_from(interval.start.as_nanos()).unwrap_or(u64::MAX);
            let second = at / NANOS_PER_SECOND;
            let merged = seconds.entry(second).or_insert_with(|| Interval {
                start: Duration::from_secs(second),
                length: Duration::from_secs(1),
                histogram: new_histogram(),
            });
            merged
                .histogram
                .add(&interval.histogram)
                .map_err(|e| anyhow::anyhow!("{}: an interval: {e:?}", input.source.display()))?;
        }
        for line in &a.intervals {
            let second =
                (shift + line.second.saturating_sub(1) * NANOS_PER_SECOND) / NANOS_PER_SECOND;
            let merged = lines.entry(second).or_insert_with(|| IntervalLine {
                second: second + 1,
                ..IntervalLine::default()
            });
            merged.warmup |= line.warmup;
            merged.answered += line.answered;
            merged.errors += line.errors;
            merged.bytes_received += line.bytes_received;
            merged.bytes_sent += line.bytes_sent;
        }
        stacks.insert(a.stack.clone());
        r.threads += a.threads;
        r.connections += a.connections;
        if let Some(rate) = a.rate {
            r.rate = Some(r.rate.unwrap_or(0.0) + rate);
        }
        r.duration_s = r.duration_s.max(a.duration_s);
        r.stopped_early |= a.stopped_early;
        r.requests_sent += a.requests_sent;
        r.answered += a.answered;
        r.errors_total += a.errors_total;
        merge_counts(&mut r.errors, &a.errors);
        r.non_2xx += a.non_2xx;
        if let Some(status) = &a.http_status {
            r.http_status.get_or_insert_default().merge(status);
        }
        r.connect_attempts += a.connect_attempts;
        r.connects += a.connects;
        merge_counts(&mut r.connect_errors, &a.connect_errors);
        r.warmup_requests_sent += a.warmup_requests_sent;
        r.warmup_answered += a.warmup_answered;
        r.warmup_errors += a.warmup_errors;
        r.bytes_sent += a.bytes_sent;
        r.bytes_received += a.bytes_received;
        r.streams_verified += a.streams_verified;
        r.streams_mismatched += a.streams_mismatched;
        r.streams_closed_cleanly += a.streams_closed_cleanly;
        r.bytes_received_per_second += a.bytes_received_per_second;
        r.bytes_sent_per_second += a.bytes_sent_per_second;
        for (k, v) in &a.stack_counters {
            *r.stack_counters.entry(k.clone()).or_insert(0) += v;
        }
        rows.push(AgentRow {
            index: rec.agent_index,
            stack: a.stack.clone(),
            first_connection: rec.first_connection,
            connections: rec.connections,
            requests_sent: a.requests_sent,
            answered: a.answered,
            errors_total: a.errors_total,
            connect_errors_total: a.connect_errors.values().sum(),
            requests_per_second: a.requests_per_second,
            p50_us: set.latency.value_at_quantile(0.5),
            p99_us: set.latency.value_at_quantile(0.99),
            max_us: set.latency.max(),
            late_start_ms: rec.late_start_ns as f64 / 1e6,
        });
    }
    for (second, line) in lines.iter_mut() {
        line.p99_us = seconds
            .get(second)
            .filter(|i| !i.histogram.is_empty())
            .map_or(0, |i| i.histogram.value_at_quantile(0.99));
    }
    r.stack = stacks.into_iter().collect::<Vec<_>>().join("+");
    r.requests_per_second = r.answered as f64 / r.duration_s.max(1e-6);
    r.latency_us = Summary::of(&latencies.latency);
    r.uncorrected_latency_us = Summary::of(&latencies.uncorrected);
    r.ttfb_us = Summary::of(&latencies.ttfb);
    r.connect_us = Summary::of(&latencies.connect);
    r.latency_percentiles = percentile_rows(&latencies.latency);
    r.intervals = lines.into_values().collect();
    Ok(MergedRun {
        test_id: first.record.test_id.clone(),
        agents: first.record.agents,
        merged: inputs.iter().map(|i| i.record.agent_index).collect(),
        missing,
        report: r,
        latencies,
        intervals: seconds.into_values().collect(),
        start_time: UNIX_EPOCH + Duration::from_nanos(origin),
        origins_differ,
        rows,
    })
}

impl MergedRun {
    /// The merge's own lines and the per-agent table (printed after the load report).
    pub fn format_agents(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "  Merged {} of {} agents of test {}{}",
            self.merged.len(),
            self.agents,
            self.test_id,
            if self.missing.is_empty() {
                String::new()
            } else {
                format!(
                    " -- INCOMPLETE, missing agent(s) {} (--allow-missing)",
                    self.missing
                        .iter()
                        .map(usize::to_string)
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            }
        );
        if self.origins_differ {
            let _ = writeln!(
                out,
                "  The agents had different origins (no common --start-at): seconds are aligned \
                 on absolute time, to the second"
            );
        }
        let _ = writeln!(
            out,
            "  {:>5} {:>7} {:>11} {:>9} {:>9} {:>7} {:>10} {:>9} {:>9} {:>9} {:>8}",
            "agent",
            "stack",
            "connections",
            "sent",
            "answered",
            "errors",
            "req/s",
            "p50",
            "p99",
            "max",
            "late"
        );
        for row in &self.rows {
            let _ = writeln!(
                out,
                "  {:>5} {:>7} {:>11} {:>9} {:>9} {:>7} {:>10.1} {:>9} {:>9} {:>9} {:>6.1}ms",
                row.index,
                row.stack,
                format!("{}+{}", row.first_connection, row.connections),
                row.requests_sent,
                row.answered,
                row.errors_total + row.connect_errors_total,
                row.requests_per_second,
                format_micros(row.p50_us as f64),
                format_micros(row.p99_us as f64),
                format_micros(row.max_us as f64),
                row.late_start_ms
            );
        }
        let _ = writeln!(out, "  Per second (merged, aligned on absolute time)");
        for line in &self.report.intervals {
            let _ = writeln!(
                out,
                "    [{:>4}s] {:>9} answered  p99 {:>9}  errors {}{}",
                line.second,
                line.answered,
                if line.p99_us == 0 {
                    "-".to_string()
                } else {
                    format_micros(line.p99_us as f64)
                },
                line.errors,
                if line.warmup { "  (warm-up)" } else { "" }
            );
        }
        out
    }

    /// The merged JSON: the load report's fields plus test id, agents, missing ones and
    /// the per-agent rows.
    pub fn to_json(&self) -> anyhow::Result<String> {
        let json = MergedJson {
            test_id: &self.test_id,
            agents: self.agents,
            merged_agents: &self.merged,
            missing_agents: &self.missing,
            start_unix_ns: u64::try_from(
                self.start_time
                    .duration_since(UNIX_EPOCH)
                    .unwrap_or_default()
                    .as_nanos(),
            )
            .unwrap_or(u64::MAX),
            report: &self.report,
            per_agent: &self.rows,
        };
        Ok(serde_json::to_string_pretty(&json)? + "\n")
    }
}

#[cfg(test)]
mod tests;

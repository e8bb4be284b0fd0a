//! Merging agents: exact histograms (property test), and refusals of inputs that are not
//! one whole test.

use std::time::Duration;

use proptest::prelude::*;

use super::*;
use crate::report::agent_record::EncodedHistograms;
use crate::report::hlog::format_hlog;
use crate::report::record;

const ORIGIN_NS: u64 = 1_796_464_800_000_000_000;

/// Agent `index` of `count` that answered `samples` (second of the run, latency in µs),
/// two connections each.
fn agent(index: usize, count: usize, test_id: &str, samples: &[(u64, u64)]) -> AgentInput {
    let mut set = LatencySet::default();
    let mut per_second: BTreeMap<u64, Interval> = BTreeMap::new();
    let mut lines: BTreeMap<u64, IntervalLine> = BTreeMap::new();
    for &(second, value) in samples {
        record(&mut set.latency, value);
        record(&mut set.uncorrected, value / 2 + 1);
        let interval = per_second.entry(second).or_insert_with(|| Interval {
            start: Duration::from_secs(second),
            length: Duration::from_secs(1),
            histogram: new_histogram(),
        });
        record(&mut interval.histogram, value);
        let line = lines.entry(second).or_insert_with(|| IntervalLine {
            second: second + 1,
            ..IntervalLine::default()
        });
        line.answered += 1;
    }
    let answered = samples.len() as u64;
    let report = LoadReport {
        stack: "kernel".into(),
        target: "198.18.0.2:7".into(),
        mode: "rr".into(),
        threads: 1,
        connections: 2,
        duration_s: 4.0,
        requests_sent: answered,
        answered,
        requests_per_second: answered as f64 / 4.0,
        intervals: lines.into_values().collect(),
        ..LoadReport::default()
    };
    AgentInput {
        source: PathBuf::from(format!("agent-{index}-of-{count}.json")),
        record: AgentRecord {
            format: AGENT_FORMAT.into(),
            test_id: test_id.into(),
            agent_index: index,
            agents: count,
            start_unix_ns: ORIGIN_NS,
            late_start_ns: 0,
            first_connection: index * 2,
            connections: 2,
            connections_total: count * 2,
            rate_total: None,
            requests_total: None,
            histograms: EncodedHistograms::of(&set).expect("encode"),
            report,
        },
        intervals: per_second.into_values().collect(),
    }
}

fn samples_strategy() -> impl Strategy<Value = Vec<Vec<(u64, u64)>>> {
    prop::collection::vec(
        prop::collection::vec((0u64..5, 1u64..50_000_000), 0..150),
        1..6,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// Merging N agents' histograms gives exactly the histogram of the union of their
    /// samples, overall and second by second.
    #[test]
    fn merged_histograms_are_the_histograms_of_the_union(agents in samples_strategy()) {
        let count = agents.len();
        let inputs: Vec<AgentInput> = agents
            .iter()
            .enumerate()
            .map(|(i, samples)| agent(i, count, "prop", samples))
            .collect();
        let merged = merge(&inputs, false).expect("merge");
        let mut union = new_histogram();
        let mut union_seconds: BTreeMap<u64, Histogram> = BTreeMap::new();
        for &(second, value) in agents.iter().flatten() {
            record(&mut union, value);
            record(
                union_seconds.entry(second).or_insert_with(new_histogram),
                value,
            );
        }
        prop_assert_eq!(&merged.latencies.latency, &union);
        prop_assert_eq!(merged.report.answered, union.len());
        prop_assert_eq!(merged.report.latency_us.clone(), Summary::of(&union));
        let seconds: BTreeMap<u64, Histogram> = merged
            .intervals
            .iter()
            .map(|i| (i.start.as_secs(), i.histogram.clone()))
            .collect();
        prop_assert_eq!(seconds, union_seconds);
        let per_second: u64 = merged.report.intervals.iter().map(|l| l.answered).sum();
        prop_assert_eq!(per_second, union.len());
        prop_assert_eq!(merged.rows.len(), count);
        prop_assert_eq!(merged.report.connections, 2 * count);
    }
}

type Histogram = hdrhistogram::Histogram<u64>;

#[test]
fn intervals_align_on_absolute_time() {
    let mut early = agent(0, 2, "t", &[(0, 100), (1, 200)]);
    let mut late = agent(1, 2, "t", &[(0, 300)]);
    // Agent 1 began exactly one second after agent 0: its second 0 is the test's second 1.
    early.record.start_unix_ns = ORIGIN_NS;
    late.record.start_unix_ns = ORIGIN_NS + 1_000_000_000;
    let merged = merge(&[early, late], false).expect("merge");
    assert!(merged.origins_differ);
    let counts: Vec<(u64, u64)> = merged
        .intervals
        .iter()
        .map(|i| (i.start.as_secs(), i.histogram.len()))
        .collect();
    assert_eq!(counts, vec![(0, 1), (1, 2)]);
    let lines: Vec<(u64, u64)> = merged
        .report
        .intervals
        .iter()
        .map(|l| (l.second, l.answered))
        .collect();
    assert_eq!(lines, vec![(1, 1), (2, 2)]);
}

#[test]
fn inputs_from_different_tests_are_refused() {
    let e =
        merge(&[agent(0, 2, "one", &[]), agent(1, 2, "two", &[])], false).expect_err("mixed tests");
    let text = e.to_string();
    assert!(text.contains("different tests"), "{text}");
    assert!(
        text.contains("\"one\"") && text.contains("\"two\""),
        "{text}"
    );
}

#[test]
fn duplicate_and_overlapping_agents_are_refused() {
    let e = merge(
        &[
            agent(1, 3, "t", &[]),
            agent(1, 3, "t", &[]),
            agent(0, 3, "t", &[]),
        ],
        false,
    )
    .expect_err("duplicate");
    assert!(e.to_string().contains("agent 1 of 3 appears twice"), "{e}");
    let mut overlapping = agent(2, 3, "t", &[]);
    overlapping.record.first_connection = 3;
    let e = merge(
        &[agent(0, 3, "t", &[]), agent(1, 3, "t", &[]), overlapping],
        false,
    )
    .expect_err("overlap");
    assert!(e.to_string().contains("overlap"), "{e}");
    let e = merge(&[agent(0, 3, "t", &[]), agent(1, 2, "t", &[])], false).expect_err("counts");
    assert!(e.to_string().contains("number of agents"), "{e}");
}

#[test]
fn missing_agents_are_named_and_merged_only_when_allowed() {
    let inputs = [agent(0, 4, "t", &[(0, 10)]), agent(2, 4, "t", &[(0, 20)])];
    let e = merge(&inputs, false).expect_err("missing");
    let text = e.to_string();
    assert!(text.contains("missing agent(s) 1, 3 of 4"), "{text}");
    assert!(
        text.contains("agent-1-of-4.json, agent-3-of-4.json"),
        "{text}"
    );
    let merged = merge(&inputs, true).expect("allowed");
    assert_eq!(merged.missing, vec![1, 3]);
    assert_eq!(merged.report.answered, 2);
    assert!(
        merged
            .format_agents()
            .contains("INCOMPLETE, missing agent(s) 1, 3")
    );
    let json: serde_json::Value =
        serde_json::from_str(&merged.to_json().expect("json")).expect("parse");
    assert_eq!(json["missing_agents"], serde_json::json!([1, 3]));
    assert_eq!(json["answered"], 2);
}

#[test]
fn files_round_trip_through_a_results_directory() {
    let dir = std::env::temp_dir().join(format!("surge-merge-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("dir");
    let inputs = [
        agent(0, 2, "t", &[(0, 10), (1, 30)]),
        agent(1, 2, "t", &[(1, 20)]),
    ];
    for input in &inputs {
        let stem = dir.join(format!("agent-{}-of-2", input.record.agent_index));
        let json = serde_json::to_string(&input.record).expect("json");
        std::fs::write(stem.with_extension("json"), json).expect("write json");
        let log = format_hlog(input.record.start_time(), &input.intervals).expect("hlog");
        std::fs::write(stem.with_extension("hlog"), log).expect("write hlog");
    }
    std::fs::write(dir.join("unrelated.json"), "{}").expect("other file");
    let read = read_inputs(std::slice::from_ref(&dir)).expect("read");
    assert_eq!(read.len(), 2);
    let merged = merge(&read, false).expect("merge");
    assert_eq!(
        merged.latencies.latency,
        merge(&inputs, false).expect("m").latencies.latency
    );
    // A .json without its .hlog, a file whose name and content disagree, garbage: refused.
    std::fs::remove_file(dir.join("agent-1-of-2.hlog")).expect("rm");
    assert!(read_inputs(std::slice::from_ref(&dir)).is_err());
    std::fs::rename(dir.join("agent-0-of-2.json"), dir.join("agent-1-of-2.json")).expect("mv");
    let e = read_inputs(std::slice::from_ref(&dir)).expect_err("name");
    assert!(format!("{e:#}").contains("disagree"), "{e:#}");
    std::fs::write(dir.join("agent-1-of-2.json"), "not json").expect("garbage");
    assert!(read_inputs(std::slice::from_ref(&dir)).is_err());
    let empty = dir.join("empty");
    std::fs::create_dir_all(&empty).expect("empty dir");
    assert!(
        read_inputs(&[empty])
            .expect_err("empty")
            .to_string()
            .contains("no agent results")
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn agent_file_names_parse() {
    assert_eq!(parse_agent_file_name("agent-2-of-3.json"), Some((2, 3)));
    for bad in [
        "agent-2-of-3.hlog",
        "agent--of-3.json",
        "agent-x-of-3.json",
        "a-1-of-2.json",
    ] {
        assert_eq!(parse_agent_file_name(bad), None, "{bad}");
    }
}

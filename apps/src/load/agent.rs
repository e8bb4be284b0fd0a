//! The agent contract: one `surge load` among N that together run one test.
//!
//! Any orchestrator can run agents: each learns its index and the count from flags
//! (`--agent-index I --agents N`) or from the environment the orchestrator sets
//! (Kubernetes Indexed Jobs: `JOB_COMPLETION_INDEX`; Slurm job arrays:
//! `SLURM_ARRAY_TASK_ID` minus `SLURM_ARRAY_TASK_MIN`, and `SLURM_ARRAY_TASK_COUNT`). Agent
//! I of N takes its slice of the connections (global connection indexes, the remainder
//! spread over the first agents), hence of the open-loop rate: a connection slot's
//! schedule depends only on its global index (see `schedule.rs`), so the union of the
//! agents' intended send times is the schedule one `surge load` would have. All begin at
//! one `--start-at` instant and write `agent-<I>-of-<N>.json` and `.hlog` (and with
//! `--record-schedule` the intended send times) into `--results-dir`, for
//! `surge report merge`.

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail, ensure};
use clap::Args;

/// The most agents one test may have.
pub const MAX_AGENTS: usize = 10_000;
/// How far ahead `--start-at` may lie.
const MAX_START_AHEAD: Duration = Duration::from_secs(24 * 3600);

/// Options of the agent contract (part of `surge load`).
#[derive(Args, Debug, Clone, Default)]
pub struct AgentArgs {
    /// Agent mode: this agent's index, 0..N (default: from JOB_COMPLETION_INDEX or
    /// SLURM_ARRAY_TASK_ID - SLURM_ARRAY_TASK_MIN).
    #[arg(long, value_name = "I")]
    pub agent_index: Option<usize>,
    /// Agent mode: how many agents run the test (default: SLURM_ARRAY_TASK_COUNT).
    #[arg(long, value_name = "N")]
    pub agents: Option<usize>,
    /// Begin at this wall-clock instant: RFC 3339 (2026-12-05T10:00:00Z) or Unix seconds.
    #[arg(long, value_name = "TIME", value_parser = parse_start_at)]
    pub start_at: Option<SystemTime>,
    /// Agent mode: the test's id, written in every agent's files (merge refuses a mix).
    #[arg(long, value_name = "ID")]
    pub test_id: Option<String>,
    /// Agent mode: write agent-I-of-N.json and .hlog into this directory.
    #[arg(long, value_name = "DIR")]
    pub results_dir: Option<PathBuf>,
    /// Agent mode: also write every intended send time (agent-I-of-N.schedule).
    #[arg(long)]
    pub record_schedule: bool,
}

/// A resolved agent: who it is and where its results go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Agent {
    /// This agent's index, `0..count`.
    pub index: usize,
    /// Agents in the test.
    pub count: usize,
    /// The test's id.
    pub test_id: String,
    /// Where its files go.
    pub results_dir: PathBuf,
    /// Whether to record the intended send times.
    pub record_schedule: bool,
}

impl Agent {
    /// The stem of this agent's files, `agent-<I>-of-<N>`.
    pub fn file_stem(&self) -> String {
        file_stem(self.index, self.count)
    }
}

/// The stem of agent `index` of `count`'s files.
pub fn file_stem(index: usize, count: usize) -> String {
    format!("agent-{index}-of-{count}")
}

/// Parses an integer environment variable, naming it in the error.
fn env_number(env: &dyn Fn(&str) -> Option<String>, name: &str) -> anyhow::Result<Option<i64>> {
    match env(name) {
        None => Ok(None),
        Some(v) => v
            .trim()
            .parse::<i64>()
            .map(Some)
            .map_err(|_| anyhow::anyhow!("{name}={v:?} is not an integer")),
    }
}

/// The index and count the orchestrator gave through the environment, each if present.
fn from_env(env: &dyn Fn(&str) -> Option<String>) -> anyhow::Result<(Option<i64>, Option<i64>)> {
    if let Some(index) = env_number(env, "JOB_COMPLETION_INDEX")? {
        return Ok((Some(index), None));
    }
    let task = env_number(env, "SLURM_ARRAY_TASK_ID")?;
    let min = env_number(env, "SLURM_ARRAY_TASK_MIN")?.unwrap_or(0);
    let count = env_number(env, "SLURM_ARRAY_TASK_COUNT")?;
    Ok((task.map(|t| t - min), count))
}

impl AgentArgs {
    /// Whether any agent option was given.
    pub fn any(&self) -> bool {
        self.agent_index.is_some()
            || self.agents.is_some()
            || self.test_id.is_some()
            || self.results_dir.is_some()
            || self.record_schedule
    }

    /// The agent these options (and the orchestrator's environment `env`) describe, or
    /// `None` for an ordinary run.
    pub fn resolve(&self, env: &dyn Fn(&str) -> Option<String>) -> anyhow::Result<Option<Agent>> {
        if !self.any() {
            return Ok(None);
        }
        let (env_index, env_count) = from_env(env)?;
        let count = match (self.agents, env_count) {
            (Some(n), _) => n as i64,
            (None, Some(n)) => n,
            (None, None) => bail!(
                "agent mode needs the number of agents: --agents N (or SLURM_ARRAY_TASK_COUNT)"
            ),
        };
        ensure!(
            (1..=MAX_AGENTS as i64).contains(&count),
            "--agents must be between 1 and {MAX_AGENTS}, not {count}"
        );
        let index = match (self.agent_index, env_index) {
            (Some(i), _) => i as i64,
            (None, Some(i)) => i,
            (None, None) => bail!(
                "agent mode needs this agent's index: --agent-index I (or JOB_COMPLETION_INDEX, \
                 SLURM_ARRAY_TASK_ID)"
            ),
        };
        ensure!(
            (0..count).contains(&index),
            "the agent index {index} is outside 0..{count}"
        );
        let test_id = self
            .test_id
            .clone()
            .context("agent mode needs --test-id ID (every agent of one test gives the same)")?;
        ensure!(
            !test_id.is_empty()
                && test_id.len() <= 128
                && test_id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.:".contains(c)),
            "--test-id {test_id:?}: 1 to 128 characters of A-Z a-z 0-9 - _ . :"
        );
        let results_dir = self
            .results_dir
            .clone()
            .context("agent mode needs --results-dir DIR for the agent's files")?;
        Ok(Some(Agent {
            index: index as usize,
            count: count as usize,
            test_id,
            results_dir,
            record_schedule: self.record_schedule,
        }))
    }
}

/// Agent `index` of `parts`'s slice of `total` items: (first, count). Slices are
/// contiguous, cover `0..total`, and differ by at most one (the first agents take the
/// remainder).
pub fn slice(total: u64, parts: usize, index: usize) -> (u64, u64) {
    let parts = parts.max(1) as u64;
    let index = index as u64;
    let base = total / parts;
    let extra = total % parts;
    let first = index * base + index.min(extra);
    (first, base + u64::from(index < extra))
}

/// An agent's slice of the `--source` addresses (every agent takes its own addresses, so
/// no two agents open connections from one address); no addresses give none.
pub fn source_slice(
    all: &[std::net::Ipv4Addr],
    agent: &Agent,
) -> anyhow::Result<Vec<std::net::Ipv4Addr>> {
    if all.is_empty() {
        return Ok(Vec::new());
    }
    ensure!(
        all.len() >= agent.count,
        "--source gives {} address(es) for {} agents: each agent needs at least one",
        all.len(),
        agent.count
    );
    let (first, count) = slice(all.len() as u64, agent.count, agent.index);
    Ok(all
        .iter()
        .skip(first as usize)
        .take(count as usize)
        .copied()
        .collect())
}

/// Parses `--start-at`: RFC 3339 with a `Z` or `±hh:mm` offset and optional fraction, or
/// Unix seconds (with an optional fraction).
pub fn parse_start_at(s: &str) -> Result<SystemTime, String> {
    let s = s.trim();
    if let Ok(seconds) = s.parse::<f64>() {
        if !(0.0..1e11).contains(&seconds) {
            return Err(format!("--start-at {s}: Unix seconds out of range"));
        }
        return Ok(UNIX_EPOCH + Duration::from_secs_f64(seconds));
    }
    parse_rfc3339(s).ok_or_else(|| {
        format!("--start-at {s:?}: want RFC 3339 (2026-12-05T10:00:00Z) or Unix seconds")
    })
}

/// Days from 1970-01-01 to the civil date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// RFC 3339 §5.6 `date-time` (`T` or space between date and time), as a system time.
fn parse_rfc3339(s: &str) -> Option<SystemTime> {
    let b = s.as_bytes();
    let digits = |range: std::ops::Range<usize>| -> Option<i64> {
        let part = s.get(range)?;
        if part.bytes().all(|c| c.is_ascii_digit()) {
            part.parse().ok()
        } else {
            None
        }
    };
    if b.len() < 20
        || b.get(4) != Some(&b'-')
        || b.get(7) != Some(&b'-')
        || !matches!(b.get(10), Some(b'T' | b't' | b' '))
        || b.get(13) != Some(&b':')
        || b.get(16) != Some(&b':')
    {
        return None;
    }
    let (year, month, day) = (digits(0..4)?, digits(5..7)?, digits(8..10)?);
    let (hour, minute, second) = (digits(11..13)?, digits(14..16)?, digits(17..19)?);
    let month_days = [
        31,
        28 + i64::from(year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)),
        31,
        30,
        31,
        30,
        31,
        31,
        30,
        31,
        30,
        31,
    ];
    let max_day = *month_days.get(usize::try_from(month - 1).ok()?)?;
    if !(1..=max_day).contains(&day) || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let mut rest = s.get(19..)?;
    let mut nanos = 0u64;
    if let Some(fraction) = rest.strip_prefix('.') {
        let len = fraction.bytes().take_while(u8::is_ascii_digit).count();
        if len == 0 {
            return None;
        }
        let text = fraction.get(..len.min(9))?;
        nanos = text.parse::<u64>().ok()? * 10u64.pow(9 - text.len() as u32);
        rest = fraction.get(len..)?;
    }
    let offset = match rest {
        "Z" | "z" => 0,
        _ => {
            let sign = match rest.as_bytes().first() {
                Some(b'+') => 1,
                Some(b'-') => -1,
                _ => return None,
            };
            let tz = rest.get(1..)?;
            if tz.len() != 5 || tz.as_bytes().get(2) != Some(&b':') {
                return None;
            }
            let (h, m) = (
                tz.get(0..2)?.parse::<i64>().ok()?,
                tz.get(3..5)?.parse::<i64>().ok()?,
            );
            if h > 23 || m > 59 {
                return None;
            }
            sign * (h * 3600 + m * 60)
        }
    };
    let seconds =
        days_from_civil(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second.min(59)
            - offset;
    let seconds = u64::try_from(seconds).ok()?;
    Some(UNIX_EPOCH + Duration::from_secs(seconds) + Duration::from_nanos(nanos))
}

/// Checks a start instant against now: not more than a day ahead, and not so far past
/// that the whole run (`duration`) is already over.
pub fn check_start_at(at: SystemTime, now: SystemTime, duration: Duration) -> anyhow::Result<()> {
    if let Ok(ahead) = at.duration_since(now) {
        ensure!(
            ahead <= MAX_START_AHEAD,
            "--start-at lies {:.0} s ahead (at most a day)",
            ahead.as_secs_f64()
        );
    } else if let Ok(late) = now.duration_since(at) {
        ensure!(
            late < duration,
            "--start-at was {:.3} s ago: the whole run ({:.3} s) is already over",
            late.as_secs_f64(),
            duration.as_secs_f64()
        );
    }
    Ok(())
}

/// Nanoseconds since the Unix epoch (0 before it).
pub fn unix_nanos(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |k| {
            pairs
                .iter()
                .find(|(name, _)| *name == k)
                .map(|(_, v)| v.to_string())
        }
    }

    fn agent_args() -> AgentArgs {
        AgentArgs {
            test_id: Some("t1".into()),
            results_dir: Some("/tmp/r".into()),
            ..AgentArgs::default()
        }
    }

    #[test]
    fn slices_cover_everything_once_and_differ_by_at_most_one() {
        for total in 0..40u64 {
            for parts in 1..9usize {
                let mut next = 0;
                let mut sizes = Vec::new();
                for i in 0..parts {
                    let (first, count) = slice(total, parts, i);
                    assert_eq!(first, next, "{total} over {parts}: slice {i}");
                    next += count;
                    sizes.push(count);
                }
                assert_eq!(next, total);
                let (lo, hi) = (sizes.iter().min(), sizes.iter().max());
                assert!(hi.zip(lo).is_some_and(|(h, l)| h - l <= 1));
                assert!(sizes.windows(2).all(|w| w[0] >= w[1]), "remainder first");
            }
        }
        assert_eq!(slice(10, 3, 0), (0, 4));
        assert_eq!(slice(10, 3, 2), (7, 3));
    }

    #[test]
    fn each_agent_takes_its_own_source_addresses() {
        let all: Vec<std::net::Ipv4Addr> = (10..=16)
            .map(|i| std::net::Ipv4Addr::new(198, 18, 0, i))
            .collect();
        let agent = |index| Agent {
            index,
            count: 3,
            test_id: "t".into(),
            results_dir: "/r".into(),
            record_schedule: false,
        };
        let slices: Vec<Vec<u8>> = (0..3)
            .map(|i| {
                source_slice(&all, &agent(i))
                    .expect("slice")
                    .iter()
                    .map(|a| a.octets()[3])
                    .collect()
            })
            .collect();
        assert_eq!(slices, [vec![10, 11, 12], vec![13, 14], vec![15, 16]]);
        assert!(source_slice(&[], &agent(1)).expect("none").is_empty());
        let e = source_slice(&all[..2], &agent(0)).expect_err("too few");
        assert!(e.to_string().contains("2 address(es) for 3 agents"), "{e}");
    }

    #[test]
    fn index_and_count_come_from_flags_or_the_orchestrator() {
        let none = env_of(&[]);
        assert_eq!(AgentArgs::default().resolve(&none).expect("plain"), None);
        let mut args = agent_args();
        args.agent_index = Some(2);
        args.agents = Some(3);
        let a = args.resolve(&none).expect("flags").expect("agent");
        assert_eq!((a.index, a.count), (2, 3));
        assert_eq!(a.file_stem(), "agent-2-of-3");
        // Kubernetes: the index from the Job, the count from --agents.
        let mut args = agent_args();
        args.agents = Some(4);
        let k8s = env_of(&[("JOB_COMPLETION_INDEX", "3")]);
        let a = args.resolve(&k8s).expect("k8s").expect("agent");
        assert_eq!((a.index, a.count), (3, 4));
        // Slurm: --array=5-7 gives task ids 5, 6, 7 and a count of 3.
        let slurm = env_of(&[
            ("SLURM_ARRAY_TASK_ID", "6"),
            ("SLURM_ARRAY_TASK_MIN", "5"),
            ("SLURM_ARRAY_TASK_COUNT", "3"),
        ]);
        let a = agent_args().resolve(&slurm).expect("slurm").expect("agent");
        assert_eq!((a.index, a.count), (1, 3));
        // Flags win over the environment.
        let mut args = agent_args();
        args.agent_index = Some(0);
        let a = args.resolve(&slurm).expect("flags win").expect("agent");
        assert_eq!((a.index, a.count), (0, 3));
    }

    #[test]
    fn bad_agent_options_are_refused_with_the_reason() {
        let none = env_of(&[]);
        let cases: Vec<(AgentArgs, &str)> = vec![
            (agent_args(), "number of agents"),
            (
                AgentArgs {
                    agents: Some(3),
                    ..agent_args()
                },
                "this agent's index",
            ),
            (
                AgentArgs {
                    agents: Some(3),
                    agent_index: Some(3),
                    ..agent_args()
                },
                "outside 0..3",
            ),
            (
                AgentArgs {
                    agents: Some(0),
                    agent_index: Some(0),
                    ..agent_args()
                },
                "between 1 and",
            ),
            (
                AgentArgs {
                    agents: Some(2),
                    agent_index: Some(0),
                    test_id: None,
                    ..agent_args()
                },
                "--test-id",
            ),
            (
                AgentArgs {
                    agents: Some(2),
                    agent_index: Some(0),
                    test_id: Some("a b".into()),
                    ..agent_args()
                },
                "--test-id",
            ),
            (
                AgentArgs {
                    agents: Some(2),
                    agent_index: Some(0),
                    results_dir: None,
                    ..agent_args()
                },
                "--results-dir",
            ),
        ];
        for (args, why) in cases {
            let e = args.resolve(&none).expect_err(why).to_string();
            assert!(e.contains(why), "{why}: {e}");
        }
        let bad_env = env_of(&[("JOB_COMPLETION_INDEX", "x")]);
        let e = AgentArgs {
            agents: Some(2),
            ..agent_args()
        }
        .resolve(&bad_env)
        .expect_err("not a number");
        assert!(e.to_string().contains("JOB_COMPLETION_INDEX"));
        let negative = env_of(&[
            ("SLURM_ARRAY_TASK_ID", "1"),
            ("SLURM_ARRAY_TASK_MIN", "2"),
            ("SLURM_ARRAY_TASK_COUNT", "3"),
        ]);
        assert!(agent_args().resolve(&negative).is_err());
    }

    #[test]
    fn start_instants_parse_in_both_forms() {
        let at = |s: &str| unix_nanos(parse_start_at(s).expect(s));
        assert_eq!(at("1765000000"), 1_765_000_000_000_000_000);
        assert_eq!(at("1765000000.25"), 1_765_000_000_250_000_000);
        assert_eq!(at("1970-01-01T00:00:00Z"), 0);
        assert_eq!(at("2026-12-05T10:00:00Z"), 1_796_464_800 * 1_000_000_000);
        assert_eq!(at("2026-12-05T11:00:00+01:00"), at("2026-12-05T10:00:00Z"));
        assert_eq!(at("2026-12-05 09:30:00-00:30"), at("2026-12-05T10:00:00Z"));
        assert_eq!(
            at("2000-02-29T00:00:00.123456789Z"),
            951_782_400_123_456_789
        );
        for bad in [
            "",
            "tomorrow",
            "2026-12-05",
            "2026-12-05T10:00:00",
            "2026-13-05T10:00:00Z",
            "2026-02-30T10:00:00Z",
            "2026-12-05T24:00:00Z",
            "2026-12-05T10:00:00.Z",
            "2026-12-05T10:00:00+1:00",
            "-5",
            "1e30",
            "NaN",
        ] {
            assert!(parse_start_at(bad).is_err(), "{bad:?} accepted");
        }
    }

    #[test]
    fn start_instants_too_far_ahead_or_past_the_run_are_refused() {
        let now = UNIX_EPOCH + Duration::from_secs(1_000_000);
        let d = Duration::from_secs(10);
        assert!(check_start_at(now + Duration::from_secs(5), now, d).is_ok());
        assert!(check_start_at(now - Duration::from_secs(5), now, d).is_ok());
        assert!(check_start_at(now - Duration::from_secs(10), now, d).is_err());
        assert!(check_start_at(now + Duration::from_secs(90_000), now, d).is_err());
    }
}

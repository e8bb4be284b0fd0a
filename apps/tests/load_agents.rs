//! Root test of the agent contract under a real orchestrator: a single-node Slurm
//! (`ci/slurm start`) runs a job array of 3 `surge load` agents, each in its own client host
//! of a fan lab, against one `surge serve` in the server host, all started together by
//! `--start-at` with no warm-up. After the drain: the merged report's answered count equals
//! the server's count and the sum of the agents'; the agents' recorded intended send times
//! together are exactly the asked open-loop schedule (n/R for every n with n/R < duration);
//! a missing agent is reported by `surge report merge`, not silently merged.

mod load_support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use load_support::*;
use surge_lab::{FanLab, LabSpec, Topology};

const AGENTS: usize = 3;
const CONNECTIONS: usize = 6;
const RATE: f64 = 300.0;
const DURATION_S: u64 = 3;
/// Lead time of the common start: Slurm starts array tasks within about 2.5 s here.
const START_LEAD: Duration = Duration::from_secs(6);
/// The whole job array must end within this.
const JOB_LIMIT: Duration = Duration::from_secs(60);

fn slurm_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../ci/slurm")
}

/// The single-node Slurm, started for the test; stopped on drop if this test started it.
struct Slurm {
    conf: String,
    started_here: bool,
}

impl Slurm {
    fn start() -> Slurm {
        let out = Command::new(slurm_script())
            .arg("start")
            .output()
            .expect("running ci/slurm start");
        assert!(
            out.status.success(),
            "Slurm could not start (ci/slurm start), so the agents cannot run under it:\n{}",
            text(&out)
        );
        let env = Command::new(slurm_script())
            .arg("env")
            .output()
            .expect("ci/slurm env");
        let conf = String::from_utf8_lossy(&env.stdout)
            .trim()
            .strip_prefix("export SLURM_CONF=")
            .expect("ci/slurm env prints export SLURM_CONF=...")
            .to_string();
        Slurm {
            conf,
            started_here: String::from_utf8_lossy(&out.stdout).contains("slurmctld started"),
        }
    }

    fn command(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        c.env("SLURM_CONF", &self.conf);
        c
    }
}

impl Drop for Slurm {
    fn drop(&mut self) {
        if self.started_here {
            let _ = Command::new(slurm_script()).arg("stop").output();
        }
    }
}

/// A submitted job array, cancelled on drop if still running.
struct Job<'a> {
    slurm: &'a Slurm,
    id: String,
}

impl Drop for Job<'_> {
    fn drop(&mut self) {
        let _ = self.slurm.command("scancel").arg(&self.id).output();
    }
}

/// Submits the array and waits (bounded) until no task of it is left in the queue.
fn run_array<'a>(slurm: &'a Slurm, script: &Path, logs: &Path) -> Job<'a> {
    let out = slurm
        .command("sbatch")
        .args(["--parsable", "--array", &format!("0-{}", AGENTS - 1)])
        .args(["--job-name", "surge-agents", "--time", "2"])
        .arg(format!("--output={}/slurm-%A_%a.log", logs.display()))
        .arg(script)
        .stdin(Stdio::null())
        .output()
        .expect("sbatch");
    assert!(out.status.success(), "sbatch failed: {}", text(&out));
    let id = String::from_utf8_lossy(&out.stdout)
        .trim()
        .split(';')
        .next()
        .unwrap_or_default()
        .to_string();
    assert!(!id.is_empty(), "sbatch gave no job id: {}", text(&out));
    let job = Job { slurm, id };
    let deadline = Instant::now() + JOB_LIMIT;
    loop {
        let q = slurm
            .command("squeue")
            .args(["-h", "-j", &job.id, "-o", "%i %T"])
            .output()
            .expect("squeue");
        let queue = String::from_utf8_lossy(&q.stdout).trim().to_string();
        if q.status.success() && queue.is_empty() {
            return job;
        }
        assert!(
            Instant::now() < deadline,
            "the job array {} did not finish in {JOB_LIMIT:?}: {queue}",
            job.id
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn surge(args: &[&str]) -> Output {
    Command::new(SURGE)
        .args(args)
        .output()
        .expect("running surge")
}

#[test]
fn three_agents_under_slurm_merge_to_the_servers_count_and_the_asked_schedule() {
    let slurm = Slurm::start();
    let name = LabSpec::unique("agents", Topology::Routed).name;
    let lab = FanLab::up(&name, AGENTS).expect("fan lab");
    let scratch = Scratch::new("agents");
    let results = scratch.path("results");
    std::fs::create_dir_all(&results).expect("results dir");
    let server_json = scratch.path("server.json");
    let port = 7300;
    let target = format!("{}:{port}", lab.server().addr);
    let mut serve = FanLab::command_in(&lab.server().netns, SURGE);
    serve
        .args([
            "serve", "--stack", "kernel", "--listen", &target, "--mode", "rr",
        ])
        .args(["--threads", "2", "--quiet", "--json"])
        .arg(&server_json)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let server = spawn_serve(&mut serve, Duration::from_secs(10));

    // Each array task enters its own client host; the agent learns its index and the
    // count from Slurm's SLURM_ARRAY_TASK_* variables.
    let start_at = SystemTime::now() + START_LEAD;
    let start_s = start_at
        .duration_since(UNIX_EPOCH)
        .expect("after the epoch")
        .as_secs_f64();
    let test_id = format!("slurm-{}", std::process::id());
    let script = scratch.path("agent.sh");
    let client_ns_prefix = format!("surge-{name}-c");
    std::fs::write(
        &script,
        format!(
            "#!/bin/bash\n\
             set -eu\n\
             i=$((SLURM_ARRAY_TASK_ID - SLURM_ARRAY_TASK_MIN))\n\
             exec ip netns exec {client_ns_prefix}$i {SURGE} load --stack kernel \
             --target {target} --connections {CONNECTIONS} --duration {DURATION_S}s \
             --rate {RATE} --arrivals constant --test-id {test_id} --results-dir {results} \
             --start-at {start_s:.6} --record-schedule --quiet\n",
            results = results.display()
        ),
    )
    .expect("writing the agent script");
    let job = run_array(&slurm, &script, &scratch.0);
    // The agents are done (drained and closed): the server's count is final.
    server.stop();
    drop(job);
    let logs: Vec<String> = (0..AGENTS)
        .filter_map(|i| {
            std::fs::read_dir(&scratch.0)
                .ok()?
                .filter_map(Result::ok)
                .find(|e| {
                    e.file_name()
                        .to_string_lossy()
                        .ends_with(&format!("_{i}.log"))
                })
                .and_then(|e| std::fs::read_to_string(e.path()).ok())
        })
        .collect();
    for i in 0..AGENTS {
        assert!(
            results.join(format!("agent-{i}-of-{AGENTS}.json")).exists(),
            "agent {i} wrote no results; task logs:\n{}",
            logs.join("\n---\n")
        );
    }

    // Counts: server == merged == sum of the agents.
    let server_report = read_json(&server_json);
    let merged_dir = scratch.path("merged");
    let out = surge(&[
        "report",
        "merge",
        results.to_str().expect("utf-8 path"),
        "--output-dir",
        merged_dir.to_str().expect("utf-8 path"),
    ]);
    assert!(out.status.success(), "merge failed: {}", text(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("Requests/sec:"), "no report: {stdout}");
    assert!(stdout.contains("Merged 3 of 3 agents"), "{stdout}");
    println!("{stdout}");
    let merged = read_json(&merged_dir.join("merged.json"));
    let mut agents_answered = 0;
    let mut late = Vec::new();
    for i in 0..AGENTS {
        let agent = read_json(&results.join(format!("agent-{i}-of-{AGENTS}.json")));
        assert_eq!(num(&agent, "agent_index"), i as u64);
        assert_eq!(agent["test_id"], test_id.as_str());
        let report = &agent["report"];
        assert_eq!(num(report, "errors_total"), 0, "agent {i}: {report}");
        agents_answered += num(report, "answered");
        late.push(num(&agent, "late_start_ns") as f64 / 1e6);
    }
    println!("agents began {late:?} ms after --start-at");
    assert_eq!(num(&merged, "errors_total"), 0, "{merged}");
    assert!(agents_answered > 0);
    assert_eq!(
        num(&merged, "answered"),
        agents_answered,
        "merged vs agents"
    );
    assert_eq!(
        num(&server_report, "requests"),
        num(&merged, "answered"),
        "server vs merged: {server_report}"
    );
    assert_eq!(
        num(&merged["latency_us"], "count"),
        agents_answered,
        "every answer in the merged histogram"
    );
    assert_eq!(num(&merged, "connections"), CONNECTIONS as u64);
    assert!(merged_dir.join("merged.hgrm").exists() && merged_dir.join("merged.hlog").exists());

    // The union of the intended send times is the asked schedule: arrival n at n/R.
    let mut union = Vec::new();
    for i in 0..AGENTS {
        let text = std::fs::read_to_string(results.join(format!("agent-{i}-of-{AGENTS}.schedule")))
            .expect("schedule file");
        union.extend(
            text.lines()
                .filter(|l| !l.starts_with('#'))
                .map(|l| l.trim().parse::<u64>().expect("a time in ns")),
        );
    }
    union.sort_unstable();
    let expected: Vec<u64> = (0..)
        .map(|n: u64| (n as f64 * 1e9 / RATE) as u64)
        .take_while(|&t| t < DURATION_S * 1_000_000_000)
        .collect();
    assert_eq!(union.len(), expected.len(), "intended sends vs schedule");
    assert_eq!(union, expected, "the agents' intended send times");
    println!(
        "achieved {:.1} req/s of {RATE} asked",
        merged["requests_per_second"].as_f64().unwrap_or_default()
    );

    // A missing agent is reported, and merged only when asked, saying so.
    std::fs::rename(
        results.join(format!("agent-1-of-{AGENTS}.json")),
        scratch.path("agent-1-aside.json"),
    )
    .expect("moving agent 1 aside");
    let out = surge(&["report", "merge", results.to_str().expect("utf-8")]);
    assert!(!out.status.success(), "merged with an agent missing");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("missing agent(s) 1 of 3") && err.contains("agent-1-of-3.json"),
        "{err}"
    );
    let out = surge(&[
        "report",
        "merge",
        results.to_str().expect("utf-8"),
        "--allow-missing",
        "--output-dir",
        merged_dir.to_str().expect("utf-8"),
    ]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("INCOMPLETE, missing agent(s) 1"));
    let partial = read_json(&merged_dir.join("merged.json"));
    assert_eq!(partial["missing_agents"], serde_json::json!([1]));
    assert!(num(&partial, "answered") < agents_answered);
    lab.down().expect("removing the lab");
}

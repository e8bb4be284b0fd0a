//! `surge load`: a load generator with HdrHistogram latency reports, closed and open loop.

pub mod agent;
pub mod config;
pub mod counts;
mod find_max;
pub mod kubernetes;
pub mod protocol;
mod run;
pub mod schedule;
pub mod url;
mod verified;
pub mod worker;
#[cfg(test)]
mod worker_tests;

pub use config::LoadArgs;

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use anyhow::{Context, bail, ensure};

use crate::backend::kernel::KernelBackend;
use crate::backend::surge::SurgeBackend;
use crate::backend::{Backend, StackChoice};
use crate::report::plot::write_plot;
use crate::report::table::format_table;

/// One load run (or a find-max search) on `backend`.
fn execute<B: Backend>(
    backend: &B,
    args: &LoadArgs,
    config: &config::LoadConfig,
    stop: &AtomicBool,
) -> anyhow::Result<run::Outcome> {
    if args.find_max {
        let target = args.p99.unwrap_or_default();
        find_max::find_max(backend, config, target, args.max_trials, stop)
    } else {
        run::run_once(backend, config, stop)
    }
}

/// `--emit-kubernetes`: prints the manifest that runs this load as `--agents N` agents.
fn emit_kubernetes(args: &LoadArgs) -> anyhow::Result<()> {
    use std::time::{Duration, SystemTime};
    let agents = args
        .agent
        .agents
        .context("--emit-kubernetes needs --agents N: how many pods share the load")?;
    ensure!(
        args.connections >= agents,
        "--connections ({}) must be at least --agents ({agents})",
        args.connections
    );
    let now = SystemTime::now();
    let test_id = args.agent.test_id.clone().unwrap_or_else(|| {
        format!(
            "surge-{}",
            now.duration_since(SystemTime::UNIX_EPOCH)
                .unwrap_or_default()
                .as_secs()
        )
    });
    // The pods check the same rules; refuse a bad id here, before anything is applied.
    let check = agent::AgentArgs {
        agent_index: Some(0),
        agents: Some(agents),
        test_id: Some(test_id.clone()),
        results_dir: Some("/results".into()),
        ..agent::AgentArgs::default()
    };
    check.resolve(&|_| None)?;
    let start_at = match args.agent.start_at {
        Some(at) => at,
        None => {
            let at = now + Duration::from_secs(120);
            eprintln!(
                "surge load: no --start-at given: the agents start at {} (2 minutes from now); \
                 apply the manifest before then",
                kubernetes::rfc3339(at)
            );
            at
        }
    };
    let argv: Vec<String> = std::env::args().collect();
    let user = argv
        .iter()
        .skip(1)
        .position(|a| a == "load")
        .and_then(|i| argv.get(i + 2..))
        .unwrap_or_default();
    let plan = kubernetes::Plan {
        agents,
        test_id: test_id.clone(),
        start_at,
        now,
        duration: args.duration,
        load_arguments: kubernetes::agent_arguments(user),
        kubernetes: args.kubernetes.clone(),
    };
    let header = format!(
        "surge load as {agents} agents on Kubernetes, test {test_id}, start {}.\n\
         kubectl apply -f this file; the merged report is in the logs of job surge-merge-*\n\
         and in /results/{test_id}/merged.* on the claim {}.",
        kubernetes::rfc3339(start_at),
        args.kubernetes.results_claim
    );
    print!(
        "{}",
        kubernetes::to_yaml(&kubernetes::manifest(&plan)?, &header)
    );
    Ok(())
}

/// Runs `surge load`.
pub fn run(args: LoadArgs, stop: Arc<AtomicBool>) -> anyhow::Result<()> {
    if args.kubernetes.emit_kubernetes {
        return emit_kubernetes(&args);
    }
    let config = args.config()?;
    let outcome = match args.stack {
        StackChoice::Kernel => {
            if args.surge.any() || args.source.is_some() {
                bail!(
                    "--interface, --address, --gateway, --netns, --local-port-range, --ecn, --busy-poll and --source apply to --stack surge only"
                );
            }
            let backend = KernelBackend::new(args.surge.congestion).context("--congestion")?;
            execute(&backend, &args, &config, &stop)?
        }
        StackChoice::Surge => {
            let mut options = args.surge.options(Vec::new())?;
            options.sources = args.source.map(|r| r.addrs()).unwrap_or_default();
            if let Some(agent) = &config.agent {
                options.sources = agent::source_slice(&options.sources, agent)?;
            }
            let backend = SurgeBackend::new(options)?;
            ensure!(
                config.threads <= backend.queues(),
                "--threads {}: {} has {} RX queue(s), and surge runs one engine per queue",
                config.threads,
                args.surge.interface.as_deref().unwrap_or("?"),
                backend.queues()
            );
            backend.start_idle_engines(config.threads)?;
            execute(&backend, &args, &config, &stop)?
        }
    };
    print!("{}", format_table(&outcome.report));
    if let Some(found) = &outcome.find_max {
        println!("{}", found.summary_line());
    }
    if let Some(path) = &args.hgrm {
        std::fs::write(path, crate::report::hgrm::format_hgrm(&outcome.latency))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(path) = &args.hlog {
        let text = crate::report::hlog::format_hlog(outcome.start_time, &outcome.intervals)?;
        std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(path) = &args.plot {
        write_plot(path, &outcome.report.latency_percentiles)
            .with_context(|| format!("plotting {}", path.display()))?;
    }
    if let Some(path) = &args.json {
        let mut value = serde_json::to_value(&outcome.report)?;
        if let (Some(found), Some(map)) = (&outcome.find_max, value.as_object_mut()) {
            map.insert("find_max".to_string(), serde_json::to_value(found)?);
        }
        let text = serde_json::to_string_pretty(&value)?;
        std::fs::write(path, text + "\n").with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(agent) = &config.agent {
        write_agent_files(agent, &args, &config, &outcome)?;
    }
    Ok(())
}

/// Writes an agent's `agent-<I>-of-<N>.json`, `.hlog` and (with `--record-schedule`)
/// `.schedule` into its results directory.
fn write_agent_files(
    agent: &agent::Agent,
    args: &LoadArgs,
    config: &config::LoadConfig,
    outcome: &run::Outcome,
) -> anyhow::Result<()> {
    use crate::report::agent_record::{AGENT_FORMAT, AgentRecord, EncodedHistograms};
    let dir = &agent.results_dir;
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let path = |ext: &str| dir.join(format!("{}.{ext}", agent.file_stem()));
    let record = AgentRecord {
        format: AGENT_FORMAT.to_string(),
        test_id: agent.test_id.clone(),
        agent_index: agent.index,
        agents: agent.count,
        start_unix_ns: agent::unix_nanos(outcome.start_time),
        late_start_ns: u64::try_from(outcome.late_start.as_nanos()).unwrap_or(u64::MAX),
        first_connection: config.slice.first,
        connections: config.slice.count,
        connections_total: config.connections,
        rate_total: config.rate,
        requests_total: args.requests,
        histograms: EncodedHistograms::of(&outcome.latencies)?,
        report: outcome.report.clone(),
    };
    let json = path("json");
    std::fs::write(&json, serde_json::to_string_pretty(&record)? + "\n")
        .with_context(|| format!("writing {}", json.display()))?;
    let hlog = path("hlog");
    let text = crate::report::hlog::format_hlog(outcome.start_time, &outcome.intervals)?;
    std::fs::write(&hlog, text).with_context(|| format!("writing {}", hlog.display()))?;
    if agent.record_schedule {
        let schedule = path("schedule");
        let mut text = format!(
            "# surge load agent {} of {}, test {}: intended send times, ns after {} ns since the epoch\n",
            agent.index, agent.count, agent.test_id, record.start_unix_ns
        );
        for due in &outcome.schedule {
            text.push_str(&due.to_string());
            text.push('\n');
        }
        std::fs::write(&schedule, text)
            .with_context(|| format!("writing {}", schedule.display()))?;
    }
    eprintln!(
        "surge load: agent {} of {} wrote {}",
        agent.index,
        agent.count,
        json.display()
    );
    Ok(())
}

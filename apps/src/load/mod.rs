//! `surge load`: a load generator with HdrHistogram latency reports, closed and open loop.

pub mod config;
pub mod counts;
mod find_max;
pub mod protocol;
mod run;
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

/// Runs `surge load`.
pub fn run(args: LoadArgs, stop: Arc<AtomicBool>) -> anyhow::Result<()> {
    let config = args.config()?;
    let outcome = match args.stack {
        StackChoice::Kernel => {
            if args.surge.any() || args.source.is_some() {
                bail!(
                    "--interface, --address, --gateway, --netns, --local-port-range and --source apply to --stack surge only"
                );
            }
            execute(&KernelBackend, &args, &config, &stop)?
        }
        StackChoice::Surge => {
            let mut options = args.surge.options(Vec::new())?;
            options.sources = args.source.map(|r| r.addrs()).unwrap_or_default();
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
    Ok(())
}

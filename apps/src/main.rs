//! `surge`: the command-line front of the surge stack.

mod backend;
mod demo;
mod http;
mod lab_cmd;
mod load;
use surge::report;
mod seeded_stream;
mod serve;
mod xdp_cmd;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use clap::{Parser, Subcommand};

/// surge: a userspace TCP/IP stack on AF_XDP, and the tools built on it.
#[derive(Parser)]
#[command(name = "surge", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Build, inspect and remove labs: network namespaces joined by veth pairs.
    Lab(lab_cmd::LabArgs),
    /// Inspect or remove surge's XDP program on an interface.
    Xdp(xdp_cmd::XdpArgs),
    /// Serve echo, discard, HTTP, request/response or stream traffic.
    Serve(Box<serve::ServeArgs>),
    /// Load a server and report latency histograms (closed or open loop).
    Load(Box<load::LoadArgs>),
    /// Serve on surge's stack and on the kernel's in a fresh lab, load both, compare.
    Demo(demo::DemoArgs),
    /// Charts from the files `surge load` writes (several runs in one picture).
    Report(report::command::ReportArgs),
}

/// A flag raised by Ctrl-C or SIGTERM, for `serve` and `load` to stop and report.
fn stop_flag() -> anyhow::Result<Arc<AtomicBool>> {
    let stop = Arc::new(AtomicBool::new(false));
    let raised = stop.clone();
    ctrlc::set_handler(move || raised.store(true, Ordering::Relaxed))
        .map_err(|e| anyhow::anyhow!("installing the Ctrl-C handler: {e}"))?;
    Ok(stop)
}

fn main() {
    // The heap on transparent huge pages (fewer TLB misses with many connections);
    // `SURGE_HUGE_PAGES=0` opts out. Returns only when the program was not restarted.
    let _ = surge_stack::runtime::huge_pages::reexec_with_huge_pages();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Lab(args) => lab_cmd::run(args),
        Command::Xdp(args) => xdp_cmd::run(args),
        Command::Serve(args) => stop_flag().and_then(|stop| serve::run(*args, stop)),
        Command::Load(args) => stop_flag().and_then(|stop| load::run(*args, stop)),
        Command::Demo(args) => demo::run(args),
        Command::Report(args) => report::command::run(args),
    };
    if let Err(err) = result {
        eprintln!("surge: error: {err:#}");
        std::process::exit(1);
    }
}

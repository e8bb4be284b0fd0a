//! `surge-bench`: side-by-side system benchmarks (criterion micro-benchmarks live in `benches/`).

mod datapath;

use clap::{Parser, Subcommand};

/// surge's system benchmarks; each prints a table of ratios from one run.
#[derive(Parser)]
#[command(name = "surge-bench", about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// XSK to XSK across one veth pair: surge-datapath vs a direct xsk-rs loop vs AF_PACKET.
    Datapath(datapath::DatapathArgs),
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Datapath(args) => datapath::run(args),
    }
}

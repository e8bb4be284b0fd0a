//! `surge`: the command-line front of the surge stack.

mod lab_cmd;
mod xdp_cmd;

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
}

fn main() {
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
    };
    if let Err(err) = result {
        eprintln!("surge: error: {err:#}");
        std::process::exit(1);
    }
}

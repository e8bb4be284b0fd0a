//! `surge xdp`: inspect or remove surge's XDP program on an interface (for
//! example after a crash left it attached), and watch what it would steer.

use std::{
    net::Ipv4Addr,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::Context;
use surge_bpf::{AttachMode, Counter, SteerConfig, SteerProgram};

/// Arguments of `surge xdp`.
#[derive(clap::Args)]
pub struct XdpArgs {
    #[command(subcommand)]
    command: XdpCommand,
}

#[derive(clap::Subcommand)]
enum XdpCommand {
    /// Show the XDP program attached to an interface.
    Status(Target),
    /// Remove surge's XDP program from an interface (`--force`: any program).
    Detach {
        #[command(flatten)]
        target: Target,
        /// Remove the program even if it is not surge's.
        #[arg(long)]
        force: bool,
    },
    /// Attach the steering program without sockets (so everything still reaches
    /// the kernel) and print what it would steer, until Ctrl-C or `--seconds`.
    Watch {
        #[command(flatten)]
        target: Target,
        /// An address only surge would have (repeatable).
        #[arg(long = "addr")]
        addrs: Vec<Ipv4Addr>,
        /// A TCP port surge would own (repeatable).
        #[arg(long = "tcp-port")]
        tcp_ports: Vec<u16>,
        /// A UDP port surge would own (repeatable).
        #[arg(long = "udp-port")]
        udp_ports: Vec<u16>,
        /// ICMP to our addresses would be surge's.
        #[arg(long)]
        icmp: bool,
        /// Stop after this many seconds.
        #[arg(long, default_value_t = 60)]
        seconds: u64,
    },
}

#[derive(clap::Args)]
struct Target {
    /// Interface name.
    iface: String,
    /// Network namespace the interface lives in (as `ip netns` names it).
    #[arg(long)]
    netns: Option<String>,
}

/// Runs `surge xdp`.
pub fn run(args: XdpArgs) -> anyhow::Result<()> {
    match args.command {
        XdpCommand::Status(target) => {
            let _ns = enter(&target)?;
            match surge_bpf::attached_program(&target.iface)
                .with_context(|| format!("querying XDP on {}", target.iface))?
            {
                None => println!("{}: no XDP program", target.iface),
                Some(p) => println!(
                    "{}: XDP program id {} {:?} ({} mode){}",
                    target.iface,
                    p.prog_id,
                    p.name,
                    p.mode,
                    if p.is_surge() {
                        ", surge's steering program"
                    } else {
                        ", not surge's"
                    }
                ),
            }
            Ok(())
        }
        XdpCommand::Detach { target, force } => {
            let _ns = enter(&target)?;
            match surge_bpf::detach_program(&target.iface, force)
                .with_context(|| format!("detaching the XDP program from {}", target.iface))?
            {
                None => println!("{}: no XDP program, nothing to do", target.iface),
                Some(p) => println!(
                    "{}: detached XDP program id {} {:?}",
                    target.iface, p.prog_id, p.name
                ),
            }
            Ok(())
        }
        XdpCommand::Watch {
            target,
            addrs,
            tcp_ports,
            udp_ports,
            icmp,
            seconds,
        } => {
            let _ns = enter(&target)?;
            let config = SteerConfig {
                local_addrs: addrs,
                tcp_ports,
                udp_ports,
                icmp,
                ..SteerConfig::default()
            };
            let program = SteerProgram::attach(&target.iface, &config, AttachMode::Auto)
                .with_context(|| format!("attaching the XDP program to {}", target.iface))?;
            let stop = Arc::new(AtomicBool::new(false));
            let flag = Arc::clone(&stop);
            // Ctrl-C only sets a flag: the loop ends and `program` is dropped, which detaches it.
            ctrlc::set_handler(move || flag.store(true, Ordering::Relaxed))
                .context("installing the Ctrl-C handler")?;
            println!(
                "{}: watching ({} mode); Ctrl-C to stop",
                target.iface,
                match program.mode() {
                    Some(surge_bpf::AttachedMode::Native) => "native",
                    Some(surge_bpf::AttachedMode::Generic) => "generic",
                    None => "unattached",
                }
            );
            let deadline = Instant::now() + Duration::from_secs(seconds);
            let mut next_print = Instant::now();
            while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                if Instant::now() >= next_print {
                    print_counters(&program)?;
                    next_print += Duration::from_secs(1);
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            print_counters(&program)?;
            program
                .detach()
                .with_context(|| format!("detaching from {}", target.iface))?;
            println!("{}: detached", target.iface);
            Ok(())
        }
    }
}

fn enter(target: &Target) -> anyhow::Result<Option<surge_lab::NetnsGuard>> {
    target
        .netns
        .as_deref()
        .map(|ns| {
            surge_lab::enter_netns(ns).with_context(|| format!("entering network namespace {ns}"))
        })
        .transpose()
}

fn print_counters(program: &SteerProgram) -> anyhow::Result<()> {
    let counters = program.counters().context("reading the counters")?;
    let line: Vec<String> = Counter::ALL
        .iter()
        .filter(|&&c| counters.get(c) > 0)
        .map(|&c| format!("{}={}", c.name(), counters.get(c)))
        .collect();
    println!(
        "{}",
        if line.is_empty() {
            "(no frames yet)".to_owned()
        } else {
            line.join(" ")
        }
    );
    Ok(())
}

//! `surge lab`: build, inspect, use and remove labs (namespaces joined by veth pairs).
//!
//! Every error is one line on stderr with a non-zero exit; `up` removes whatever it made
//! when it fails or is interrupted (Ctrl-C, SIGTERM, SIGHUP).

use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use surge_lab::{
    DelaySpec, HostId, Impairment, Lab, LabSpec, Topology, down_by_name, list_labs, netns_name,
    parse_duration, parse_percent, require_root,
};

/// Arguments of `surge lab`.
#[derive(clap::Args)]
pub struct LabArgs {
    #[command(subcommand)]
    command: LabCommand,
}

/// The `surge lab` subcommands.
#[derive(clap::Subcommand)]
enum LabCommand {
    /// Build a lab: namespaces A and B (and a router R for `routed`) joined by veths.
    Up(Box<UpArgs>),
    /// Remove a lab and everything in it (safe to run twice).
    Down(NameArgs),
    /// Show namespaces, interfaces, addresses, queues, XDP programs and impairments.
    Status(StatusArgs),
    /// Run a command inside a host's namespace: `surge lab exec A -- ping 198.18.0.2`.
    Exec(ExecArgs),
    /// List the labs that exist.
    List,
    /// Hold packets in a kept lab's router for its delay (started by `lab up`).
    #[command(hide = true)]
    DelayQueue(DelayQueueArgs),
}

/// Options of `surge lab up`.
#[derive(clap::Args)]
struct UpArgs {
    /// Lab name: a-z, 0-9 and '-', at most 32 characters.
    #[arg(long, default_value = "surge")]
    name: String,
    /// `pair` (A — B), `routed` (A — router — B) or `fan` (--clients hosts C0, C1, ... —
    /// router — B).
    #[arg(long, default_value = "pair")]
    topology: String,
    /// Client hosts of a `fan` lab (1 to 64), each in its own namespace and subnet.
    #[arg(long)]
    clients: Option<usize>,
    /// RX and TX queues per veth.
    #[arg(long, default_value_t = 1)]
    queues: u16,
    /// MTU of every veth.
    #[arg(long, default_value_t = 1500)]
    mtu: u32,
    /// One-way delay added by the router in each direction (e.g. 1ms, 500us). Routed only.
    #[arg(long)]
    delay: Option<String>,
    /// Uniform jitter around the delay (e.g. 200us). Routed only.
    #[arg(long)]
    jitter: Option<String>,
    /// Packet loss in the router (e.g. 1%). Routed only.
    #[arg(long)]
    loss: Option<String>,
    /// Share of packets that skip the delay and overtake others (e.g. 5%). Routed only.
    #[arg(long)]
    reorder: Option<String>,
    /// Share of packets duplicated by the router (e.g. 1%). Routed only.
    #[arg(long)]
    duplicate: Option<String>,
    /// Share of packets with one byte of their IP payload inverted (e.g. 0.1%). Routed only.
    #[arg(long)]
    corrupt: Option<String>,
    /// Share of ECN-capable packets the router marks CE (e.g. 5%). Routed only.
    #[arg(long)]
    ce_mark: Option<String>,
    /// Rate limit per direction in the router (e.g. 100mbit). Routed only.
    #[arg(long)]
    rate: Option<String>,
    /// Turn on threaded NAPI on A's and B's veths.
    #[arg(long)]
    threaded_napi: bool,
    /// NAPI deferral on A's and B's veths, IRQS:TIMEOUT_US (napi_defer_hard_irqs,
    /// gro_flush_timeout), the kernel's companion to busy polling (`surge serve
    /// --busy-poll`); the kernel's starting point is 2:200. On veth it only delays
    /// frames: see the README's busy-polling measurement.
    #[arg(long, value_name = "IRQS:TIMEOUT_US")]
    napi_defer: Option<surge_lab::NapiDeferral>,
}

/// `--name` of a lab.
#[derive(clap::Args)]
struct NameArgs {
    /// Lab name.
    #[arg(long, default_value = "surge")]
    name: String,
}

/// Options of `surge lab status`.
#[derive(clap::Args)]
struct StatusArgs {
    /// Lab name; every lab when left out.
    #[arg(long)]
    name: Option<String>,
}

/// Options of `surge lab exec`.
#[derive(clap::Args)]
struct ExecArgs {
    /// Lab name.
    #[arg(long, default_value = "surge")]
    name: String,
    /// Host: A, B, R (the router of a routed or fan lab) or C0, C1, ... (a fan lab's clients).
    host: String,
    /// The command and its arguments, after `--`.
    #[arg(last = true, required = true)]
    command: Vec<String>,
}

/// Options of the hidden `surge lab delay-queue`.
#[derive(clap::Args)]
struct DelayQueueArgs {
    /// Lab name.
    #[arg(long)]
    name: String,
    /// Delay in microseconds.
    #[arg(long)]
    delay_us: u64,
    /// Jitter in microseconds.
    #[arg(long, default_value_t = 0)]
    jitter_us: u64,
    /// Share of packets corrupted, in percent.
    #[arg(long, default_value_t = 0.0)]
    corrupt_percent: f64,
    /// Share of ECN-capable packets marked CE, in percent.
    #[arg(long, default_value_t = 0.0)]
    ce_mark_percent: f64,
}

/// Runs `surge lab`.
pub fn run(args: LabArgs) -> anyhow::Result<()> {
    match args.command {
        LabCommand::Up(up_args) => up(&up_args),
        LabCommand::Down(NameArgs { name }) => down(&name),
        LabCommand::Status(StatusArgs { name }) => status(name.as_deref()),
        LabCommand::Exec(exec_args) => exec(&exec_args),
        LabCommand::List => {
            for name in list_labs() {
                println!("{name}");
            }
            Ok(())
        }
        LabCommand::DelayQueue(delay_args) => delay_queue(&delay_args),
    }
}

/// Parses an optional option with `parse`, naming the option in the error.
fn optional<T>(
    flag: &str,
    value: Option<&String>,
    parse: fn(&str) -> Result<T, String>,
) -> anyhow::Result<Option<T>> {
    value
        .map(|v| parse(v).map_err(|e| anyhow::anyhow!("--{flag}: {e}")))
        .transpose()
}

/// The spec that `surge lab up` options describe.
fn spec_from(args: &UpArgs) -> anyhow::Result<LabSpec> {
    let topology: Topology = args.topology.parse()?;
    let mut spec = LabSpec::new(&args.name, topology);
    spec.queues = args.queues;
    spec.mtu = args.mtu;
    spec.threaded_napi = args.threaded_napi;
    spec.napi_deferral = args.napi_defer;
    spec.impairment = Impairment {
        delay: optional("delay", args.delay.as_ref(), parse_duration)?,
        jitter: optional("jitter", args.jitter.as_ref(), parse_duration)?,
        loss_percent: optional("loss", args.loss.as_ref(), parse_percent)?,
        reorder_percent: optional("reorder", args.reorder.as_ref(), parse_percent)?,
        duplicate_percent: optional("duplicate", args.duplicate.as_ref(), parse_percent)?,
        corrupt_percent: optional("corrupt", args.corrupt.as_ref(), parse_percent)?,
        ce_mark_percent: optional("ce-mark", args.ce_mark.as_ref(), parse_percent)?,
        rate: args.rate.clone(),
    };
    Ok(spec)
}

/// Held while `up` builds; the Ctrl-C handler takes it before tearing down.
static BUILDING: Mutex<()> = Mutex::new(());
/// Set by the Ctrl-C handler.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);
/// Set once the lab is complete and handed over (Ctrl-C after that leaves it up).
static FINISHED: AtomicBool = AtomicBool::new(false);

/// `surge lab up --topology fan --clients N`: a server host and N client hosts.
fn up_fan(args: &UpArgs) -> anyhow::Result<()> {
    let clients = args
        .clients
        .context("--topology fan needs --clients N (1 to 64)")?;
    let impaired = [
        &args.delay,
        &args.jitter,
        &args.loss,
        &args.reorder,
        &args.duplicate,
        &args.corrupt,
        &args.ce_mark,
        &args.rate,
    ]
    .iter()
    .any(|o| o.is_some());
    if impaired
        || args.queues != 1
        || args.mtu != 1500
        || args.threaded_napi
        || args.napi_defer.is_some()
    {
        bail!("a fan lab takes --name and --clients only (no impairments, queues, MTU or NAPI)");
    }
    surge_lab::validate_name(&args.name)?;
    require_root()?;
    let name = args.name.clone();
    ctrlc::set_handler(move || {
        INTERRUPTED.store(true, Ordering::SeqCst);
        let _building = BUILDING
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !FINISHED.load(Ordering::SeqCst) {
            let _ = down_by_name(&name);
            eprintln!("surge: interrupted: lab {name} removed");
        }
        std::process::exit(130);
    })
    .context("installing the Ctrl-C handler")?;
    let building = BUILDING
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let lab = surge_lab::FanLab::up(&args.name, clients)?;
    if INTERRUPTED.load(Ordering::SeqCst) {
        drop(lab);
        bail!("interrupted: lab {} removed", args.name);
    }
    let mut out = format!("lab {} is up (fan, {clients} clients)\n", lab.name());
    let server = lab.server();
    out.push_str(&format!(
        "  B   {:<24} {:<13} {}/{} via {}\n",
        server.netns,
        server.ifname,
        server.addr,
        server.prefix_len,
        server.gateway.map(|g| g.to_string()).unwrap_or_default()
    ));
    for (i, c) in lab.clients().iter().enumerate() {
        out.push_str(&format!(
            "  C{i:<2} {:<24} {:<13} {}/{} via {}\n",
            c.netns,
            c.ifname,
            c.addr,
            c.prefix_len,
            c.gateway.map(|g| g.to_string()).unwrap_or_default()
        ));
    }
    out.push_str(&format!(
        "run commands with `surge lab exec --name {0} C0 -- ...`; remove with `surge lab down --name {0}`\n",
        lab.name()
    ));
    lab.keep();
    FINISHED.store(true, Ordering::SeqCst);
    drop(building);
    print!("{out}");
    Ok(())
}

/// `surge lab up`.
fn up(args: &UpArgs) -> anyhow::Result<()> {
    if args.topology == "fan" {
        return up_fan(args);
    }
    if args.clients.is_some() {
        bail!("--clients is for --topology fan");
    }
    let spec = spec_from(args)?;
    require_root()?;
    let name = spec.name.clone();
    ctrlc::set_handler(move || {
        INTERRUPTED.store(true, Ordering::SeqCst);
        let _building = BUILDING
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !FINISHED.load(Ordering::SeqCst) {
            let _ = down_by_name(&name);
            eprintln!("surge: interrupted: lab {name} removed");
        }
        std::process::exit(130);
    })
    .context("installing the Ctrl-C handler")?;

    let building = BUILDING
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let lab = Lab::up(&spec)?;
    if INTERRUPTED.load(Ordering::SeqCst) {
        drop(lab);
        bail!("interrupted: lab {} removed", spec.name);
    }
    let summary = summary(&lab);
    let delayed = lab.has_delay_thread();
    lab.keep();
    if delayed {
        if let Err(err) = start_delay_daemon(&spec) {
            let _ = down_by_name(&spec.name);
            return Err(err.context(format!("lab {} removed", spec.name)));
        }
    }
    FINISHED.store(true, Ordering::SeqCst);
    drop(building);
    print!("{summary}");
    Ok(())
}

/// What `up` prints: where each host lives.
fn summary(lab: &Lab) -> String {
    let mut out = format!("lab {} is up ({})\n", lab.name(), lab.topology());
    for id in [HostId::A, HostId::Router, HostId::B] {
        if let Some(host) = lab.host(id) {
            let gateway = host
                .gateway
                .map(|g| format!(" via {g}"))
                .unwrap_or_default();
            out.push_str(&format!(
                "  {id}  {:<24} {:<13} {}/{}{gateway}\n",
                host.netns, host.ifname, host.addr, host.prefix_len
            ));
        }
    }
    if let Some(host) = lab.router_towards_b() {
        out.push_str(&format!(
            "  R  {:<24} {:<13} {}/{}\n",
            host.netns, host.ifname, host.addr, host.prefix_len
        ));
    }
    out.push_str(&format!(
        "run commands with `surge lab exec --name {0} A -- ...`; remove with `surge lab down --name {0}`\n",
        lab.name()
    ));
    out
}

/// Starts `surge lab delay-queue` detached (new session, no stdio) and waits until it has
/// bound the router's queue.
fn start_delay_daemon(spec: &LabSpec) -> anyhow::Result<()> {
    let exe = std::env::current_exe().context("finding the surge binary")?;
    let delay = spec.impairment.delay.unwrap_or_default();
    let jitter = spec.impairment.jitter.unwrap_or_default();
    let status = Command::new("setsid")
        .arg("-f")
        .arg(&exe)
        .args(["lab", "delay-queue", "--name", &spec.name])
        .arg(format!("--delay-us={}", delay.as_micros()))
        .arg(format!("--jitter-us={}", jitter.as_micros()))
        .arg(format!(
            "--corrupt-percent={}",
            spec.impairment.corrupt_percent.unwrap_or(0.0)
        ))
        .arg(format!(
            "--ce-mark-percent={}",
            spec.impairment.ce_mark_percent.unwrap_or(0.0)
        ))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .context("starting the delay queue with setsid")?;
    if !status.success() {
        bail!("starting the delay queue: setsid exited with {status}");
    }
    let router = netns_name(&spec.name, HostId::Router);
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline {
        let queues = Command::new("ip")
            .args([
                "netns",
                "exec",
                &router,
                "cat",
                "/proc/net/netfilter/nfnetlink_queue",
            ])
            .output()
            .context("reading the router's nfnetlink_queue")?;
        if !String::from_utf8_lossy(&queues.stdout).trim().is_empty() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    bail!("the delay queue did not start within 3 s")
}

/// `surge lab delay-queue`: runs until the lab's router namespace is removed.
fn delay_queue(args: &DelayQueueArgs) -> anyhow::Result<()> {
    let spec = DelaySpec {
        delay: Duration::from_micros(args.delay_us),
        jitter: Duration::from_micros(args.jitter_us),
        corrupt: args.corrupt_percent / 100.0,
        ce_mark: args.ce_mark_percent / 100.0,
    };
    surge_lab::serve_delay_queue(&netns_name(&args.name, HostId::Router), spec)?;
    Ok(())
}

/// `surge lab down`.
fn down(name: &str) -> anyhow::Result<()> {
    // Deleting a veth detaches any XDP program on it, and deleting the namespace deletes its
    // veths; a delay queue process exits once the router namespace is gone.
    if down_by_name(name)? {
        println!("lab {name} removed (its namespaces, veths and any XDP programs on them)");
    } else {
        println!("no lab named {name}; nothing to remove");
    }
    Ok(())
}

/// `surge lab status`.
fn status(name: Option<&str>) -> anyhow::Result<()> {
    require_root()?;
    let names = match name {
        Some(name) => vec![name.to_string()],
        None => list_labs(),
    };
    if names.is_empty() {
        println!("no labs");
    }
    for (i, name) in names.iter().enumerate() {
        if i > 0 {
            println!();
        }
        print!("{}", Lab::attach(name)?.status()?);
    }
    Ok(())
}

/// `surge lab exec`: the command's exit code becomes ours.
fn exec(args: &ExecArgs) -> anyhow::Result<()> {
    require_root()?;
    let (program, rest) = args
        .command
        .split_first()
        .context("no command given after --")?;
    // A fan lab's client host: C0, C1, ...
    let client = args
        .host
        .strip_prefix(['C', 'c'])
        .and_then(|i| i.parse::<usize>().ok());
    let (mut command, netns) = match client {
        Some(i) => {
            surge_lab::validate_name(&args.name)?;
            let netns = surge_lab::client_netns_name(&args.name, i);
            if !surge_lab::netns_exists(&netns) {
                bail!("lab {} has no client host C{i} ({netns})", args.name);
            }
            (surge_lab::FanLab::command_in(&netns, program), netns)
        }
        None => {
            let host: HostId = args.host.parse().map_err(anyhow::Error::msg)?;
            let lab = Lab::attach(&args.name)?;
            (lab.command(host, program)?, netns_name(&args.name, host))
        }
    };
    let status = command
        .args(rest)
        .status()
        .with_context(|| format!("running {program} in {netns}"))?;
    if status.success() {
        return Ok(());
    }
    let code = status.code().unwrap_or_else(|| {
        use std::os::unix::process::ExitStatusExt;
        128 + status.signal().unwrap_or(0)
    });
    std::process::exit(code);
}

//! `surge-bench compare`: surge against the tools a user would pick instead, on one fresh
//! lab veth pair (one queue), server pinned to one core and client to another, rounds
//! alternating the order of the contenders:
//!
//! - HTTP keep-alive and `Connection: close`, 50 connections: wrk and `surge load` each
//!   against nginx and against `surge serve --mode http`;
//! - 1,000 and 10,000 rr connections from one kernel client thread against surge's server
//!   and the kernel's;
//! - 64-byte ping-pong latency: sockperf's client against sockperf's server and against
//!   `surge serve --mode sockperf`;
//! - bulk: iperf3 kernel to kernel beside `surge load --mode stream` to `surge serve` (both
//!   ends on surge: iperf3 cannot run on surge's stack);
//! - the raw AF_XDP frame rate of the same veth pair, the ceiling for connection rates;
//! - the raw AF_XDP frame echo of the same veth pair (a reflector in A, a client in B, no
//!   stack, pinned like the contenders), the ceiling for request/response rates.
//!
//! It prints one markdown table (medians, min–max over rounds, ratios to the row's
//! baseline, and which side saturated: the busy share of the server's and the client's CPU
//! over each run's measured interval, from `/proc/stat`), writes JSON, and draws charts
//! (one bar chart per row group, latency by percentile of the `surge load` runs).

pub(crate) mod contenders;
pub(crate) mod cpu;
pub(crate) mod parse;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, bail, ensure};
use serde_json::json;
use surge::report::hgrm::parse_hgrm;
use surge::report::plot::{Bar, PercentileRun, write_bars, write_percentiles};
use surge_lab::{HostId, Lab, LabSpec, NapiDeferral, Topology};

use contenders::{Client, Env, HTTP_CONNECTIONS, RunFiles, Server, measured_window, run_case};
use cpu::{CpuBusy, SATURATED_PERCENT};
use parse::Measurement;

/// Frames each way per `Connection: close` request: SYN, ACK + request, FIN, ACK one way,
/// SYN-ACK, response, FIN, ACK the other (about four; piggybacking makes it fewer).
const FRAMES_PER_CONNECTION: f64 = 4.0;

/// How long the two CPUs' busy share is sampled before the lab is built, with nothing of
/// compare's running.
const BACKGROUND_PERIOD: std::time::Duration = std::time::Duration::from_secs(1);

/// Arguments of `surge-bench compare`.
#[derive(clap::Args, Debug)]
pub struct CompareArgs {
    /// Rounds (each runs every contender once; medians and spreads are over rounds).
    #[arg(long, default_value_t = 3)]
    rounds: u32,
    /// Measured seconds per run.
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
    /// Row groups to run, comma-separated (default: all): http-keepalive, http-close,
    /// rr-1k, rr-10k, latency, bulk, frames, echo, busy-poll.
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// A short run that checks the table is produced (CI): 1 round of 1 s, fewer frames.
    #[arg(long)]
    smoke: bool,
    /// Write the results as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Where the charts and every run's output go.
    #[arg(long, default_value = "results/compare")]
    out: PathBuf,
    /// The `surge` binary (default: the one beside this binary).
    #[arg(long)]
    surge: Option<PathBuf>,
    /// Core of the servers.
    #[arg(long, default_value_t = 0)]
    server_core: usize,
    /// Core of the clients.
    #[arg(long, default_value_t = 1)]
    client_core: usize,
}

/// One contender of a row group.
struct Case {
    /// The table's name for it (`wrk -> nginx`).
    label: &'static str,
    server: Server,
    client: Client,
    /// Which side runs on surge (highlighted in charts).
    surge: bool,
    /// Busy polling and the lab's NAPI deferral for this case (the busy-poll row).
    tuning: Tuning,
    /// Every round's measurement.
    runs: Vec<Measurement>,
    /// The `.hgrm` of its last run, when its client writes one.
    hgrm: Option<PathBuf>,
}

impl Case {
    fn new(label: &'static str, server: Server, client: Client, surge: bool) -> Self {
        Self {
            label,
            server,
            client,
            surge,
            tuning: Tuning::Default,
            runs: Vec::new(),
            hgrm: None,
        }
    }

    fn tuned(mut self, tuning: Tuning) -> Self {
        self.tuning = tuning;
        self
    }
}

/// How the surge processes and the lab's veths are tuned for a case.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Tuning {
    /// surge's defaults, the kernel's NAPI settings.
    Default,
    /// `--busy-poll` on the surge processes.
    BusyPoll,
    /// The lab's NAPI deferral on both veths (no busy polling).
    Deferral,
    /// Both: the kernel's documented busy-polling set-up.
    BusyPollDeferral,
}

/// `--busy-poll` of the busy-poll row: SO_BUSY_POLL 50 µs, budget 64.
const BUSY_POLL: &str = "50:64";

impl Tuning {
    fn busy_poll(self) -> Option<&'static str> {
        matches!(self, Tuning::BusyPoll | Tuning::BusyPollDeferral).then_some(BUSY_POLL)
    }

    fn deferral(self) -> bool {
        matches!(self, Tuning::Deferral | Tuning::BusyPollDeferral)
    }
}

/// Holds the lab's veths at the busy-polling NAPI deferral; back to the kernel's
/// defaults when dropped (after the case, or when it fails).
struct Deferred<'a>(&'a Lab);

impl<'a> Deferred<'a> {
    fn set(lab: &'a Lab) -> anyhow::Result<Self> {
        lab.set_napi_deferral(NapiDeferral::BUSY_POLL)
            .context("setting the veths' NAPI deferral")?;
        Ok(Deferred(lab))
    }
}

impl Drop for Deferred<'_> {
    fn drop(&mut self) {
        if let Err(e) = self.0.set_napi_deferral(NapiDeferral::OFF) {
            eprintln!("resetting the veths' NAPI deferral: {e}");
        }
    }
}

/// A group of rows measured in one unit; ratios are to its first case.
struct Group {
    /// Name for `--only` and the files.
    id: &'static str,
    /// What the group measures.
    title: &'static str,
    /// The unit of its figure.
    unit: &'static str,
    /// Lower figures are better (latency).
    lower_is_better: bool,
    /// What the reader should know (printed under the table).
    note: &'static str,
    /// Its servers and clients are pinned to the server and client cores; false for the
    /// frame-rate row, whose threads go where the scheduler puts them (its CPU busy is then
    /// per CPU, not per side).
    pinned: bool,
    cases: Vec<Case>,
}

/// Every row group, in table order.
fn groups() -> Vec<Group> {
    use Client as C;
    use Server as S;
    let http = |close: bool| {
        vec![
            Case::new("wrk -> nginx", S::Nginx, C::Wrk { close }, false),
            Case::new("wrk -> surge serve", S::SurgeHttp, C::Wrk { close }, true),
            Case::new(
                "surge load -> nginx",
                S::Nginx,
                C::SurgeHttp { close },
                true,
            ),
            Case::new(
                "surge load -> surge serve",
                S::SurgeHttp,
                C::SurgeHttp { close },
                true,
            ),
        ]
    };
    let rr = |connections: usize| {
        vec![
            Case::new(
                "kernel client -> kernel server",
                S::KernelRr,
                C::KernelRr { connections },
                false,
            ),
            Case::new(
                "kernel client -> surge server",
                S::SurgeRr,
                C::KernelRr { connections },
                true,
            ),
        ]
    };
    vec![
        Group {
            id: "http-keepalive",
            title: "HTTP keep-alive, 50 connections, 64-byte body",
            unit: "requests/s",
            lower_is_better: false,
            note: "surge load and surge serve run on surge's stack (AF_XDP); wrk and nginx on the kernel's",
            pinned: true,
            cases: http(false),
        },
        Group {
            id: "http-close",
            title: "HTTP `Connection: close`, 50 connections",
            unit: "connections/s",
            lower_is_better: false,
            note: "one connection per request; share of ceiling = connections/s x 4 frames / the AF_XDP frame rate",
            pinned: true,
            cases: http(true),
        },
        Group {
            id: "rr-1k",
            title: "rr 64 B, 1,000 connections, one kernel client thread",
            unit: "requests/s",
            lower_is_better: false,
            note: "surge load --stack kernel -t 1 -c 1000 against surge serve --mode rr on each stack",
            pinned: true,
            cases: rr(1000),
        },
        Group {
            id: "rr-10k",
            title: "rr 64 B, 10,000 connections, one kernel client thread",
            unit: "requests/s",
            lower_is_better: false,
            note: "as rr-1k with -c 10000 (the open-files limit here is 20,000)",
            pinned: true,
            cases: rr(10_000),
        },
        Group {
            id: "latency",
            title: "64-byte TCP ping-pong, sockperf client (lower is better)",
            unit: "µs one way (median)",
            lower_is_better: true,
            note: "sockperf reports half the round trip; surge serve --mode sockperf answers sockperf's own message format",
            pinned: true,
            cases: vec![
                Case::new(
                    "sockperf -> sockperf server",
                    S::Sockperf,
                    C::Sockperf,
                    false,
                ),
                Case::new(
                    "sockperf -> surge serve",
                    S::SurgeSockperf,
                    C::Sockperf,
                    true,
                ),
            ],
        },
        Group {
            id: "bulk",
            title: "bulk TCP, one connection, client to server",
            unit: "Gbit/s",
            lower_is_better: false,
            note: "not the same program: iperf3 kernel to kernel beside surge load --mode stream to surge serve, both ends on surge",
            pinned: true,
            cases: vec![
                Case::new(
                    "iperf3 -> iperf3 (kernel)",
                    S::Iperf3,
                    C::Iperf3 { reverse: false },
                    false,
                ),
                Case::new(
                    "surge load -> surge serve (stream)",
                    S::SurgeStream,
                    C::SurgeStream,
                    true,
                ),
            ],
        },
        Group {
            id: "frames",
            title: "raw AF_XDP frame rate of the same veth pair, 64-byte frames, A to B",
            unit: "frames/s",
            lower_is_better: false,
            note: "surge-datapath XSK to XSK, closed loop (surge-bench datapath's code): the ceiling for the rows above",
            pinned: false,
            cases: vec![Case::new(
                "surge-datapath, A -> B",
                S::None,
                Client::Frames {
                    len: contenders::SMALL_FRAME,
                },
                true,
            )],
        },
        Group {
            id: "echo",
            title: "raw AF_XDP frame echo of the same veth pair, 64-byte frames, A <-> B",
            unit: "round trips/s",
            lower_is_better: false,
            note: "surge-datapath XSK to XSK and back, no stack: a client in B keeps N frames in flight, a reflector in A \
                   swaps the addresses in place and sends the same frame back; pinned like the contenders. \
                   The ceiling for one request frame and one response frame per exchange: the best of its rows",
            pinned: true,
            cases: ECHO_WINDOWS
                .iter()
                .map(|&(label, window)| Case::new(label, S::None, Client::Echo { window }, true))
                .collect(),
        },
        Group {
            id: "busy-poll",
            title: "HTTP keep-alive, 50 connections, surge load -> surge serve: busy polling",
            unit: "requests/s",
            lower_is_better: false,
            note: "--busy-poll 50:64 on both surge processes (SO_PREFER_BUSY_POLL, SO_BUSY_POLL 50 µs, \
                   SO_BUSY_POLL_BUDGET 64; an empty RX ring makes a recvfrom that may run the queue's NAPI); \
                   NAPI deferral: napi_defer_hard_irqs 2, gro_flush_timeout 200 µs on both veths \
                   (surge lab up --napi-defer 2:200)",
            pinned: true,
            cases: [
                ("defaults", Tuning::Default),
                ("busy polling", Tuning::BusyPoll),
                ("NAPI deferral", Tuning::Deferral),
                ("busy polling + NAPI deferral", Tuning::BusyPollDeferral),
            ]
            .into_iter()
            .map(|(label, tuning)| {
                Case::new(label, S::SurgeHttp, C::SurgeHttp { close: false }, true).tuned(tuning)
            })
            .collect(),
        },
    ]
}

/// The echo row's windows (frames in flight) and their labels: the HTTP rows' 50
/// connections with one request each, and a deeper window to find the pair's maximum.
const ECHO_WINDOWS: [(&str, u64); 2] = [
    ("surge-datapath echo, 50 in flight", HTTP_CONNECTIONS as u64),
    ("surge-datapath echo, 256 in flight", 256),
];

/// The `surge` binary: `--surge`, else the one beside this binary.
pub(crate) fn surge_binary(given: Option<&Path>) -> anyhow::Result<PathBuf> {
    let path = match given {
        Some(p) => p.to_path_buf(),
        None => std::env::current_exe()
            .context("finding surge-bench's own path")?
            .with_file_name("surge"),
    };
    ensure!(
        path.is_file(),
        "{} not found: build it (cargo build -p surge, with --release for a release surge-bench) or pass --surge PATH",
        path.display()
    );
    Ok(path)
}

/// Median and (min, max) of `values` (NaN when empty).
pub(crate) fn spread(values: &[f64]) -> (f64, f64, f64) {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return (f64::NAN, f64::NAN, f64::NAN);
    }
    v.sort_by(f64::total_cmp);
    (v[v.len() / 2], v[0], v[v.len() - 1])
}

/// `12,345`-style figures: no decimals from 100 up, two below.
pub(crate) fn figure(v: f64) -> String {
    if !v.is_finite() {
        return "-".into();
    }
    if v.abs() >= 100.0 {
        let digits = format!("{:.0}", v.abs());
        let mut grouped = String::new();
        for (i, c) in digits.chars().enumerate() {
            if i > 0 && (digits.len() - i) % 3 == 0 {
                grouped.push(',');
            }
            grouped.push(c);
        }
        if v < 0.0 {
            format!("-{grouped}")
        } else {
            grouped
        }
    } else {
        format!("{v:.2}")
    }
}

/// Runs `surge-bench compare`.
pub fn run(mut args: CompareArgs) -> anyhow::Result<()> {
    if args.smoke {
        args.rounds = 1;
        args.seconds = args.seconds.min(1.0);
    }
    ensure!(args.rounds >= 1, "--rounds must be at least 1");
    ensure!(
        args.seconds > 0.0 && args.seconds <= 600.0,
        "--seconds must be in (0, 600]"
    );
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    ensure!(
        args.server_core < cpus && args.client_core < cpus,
        "--server-core and --client-core must be below {cpus} (the CPUs here)"
    );
    let mut groups = groups();
    let known: Vec<&str> = groups.iter().map(|g| g.id).collect();
    if let Some(bad) = args.only.iter().find(|o| !known.contains(&o.as_str())) {
        bail!("--only {bad}: the rows are {}", known.join(", "));
    }
    if !args.only.is_empty() {
        groups.retain(|g| args.only.iter().any(|o| o == g.id));
    }
    surge_lab::require_root()?;
    let surge = surge_binary(args.surge.as_deref())?;
    let servers: Vec<Server> = groups
        .iter()
        .flat_map(|g| g.cases.iter().map(|c| c.server))
        .collect();
    let clients: Vec<Client> = groups
        .iter()
        .flat_map(|g| g.cases.iter().map(|c| c.client))
        .collect();
    contenders::check_tools(&contenders::tools_needed(&servers, &clients))?;
    let runs_dir = args.out.join("runs");
    std::fs::create_dir_all(&runs_dir)
        .with_context(|| format!("creating {}", runs_dir.display()))?;
    // Absolute: nginx reads a relative `-c` against its `-p` prefix (a relative
    // `--out`, the default, named the configuration twice over).
    let runs_dir = runs_dir
        .canonicalize()
        .with_context(|| format!("resolving {}", runs_dir.display()))?;
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = Arc::clone(&stop);
        // The children get the same SIGINT; servers stop when their guards drop and the lab
        // is removed by its own guard.
        let _ = ctrlc::set_handler(move || stop.store(true, Ordering::Relaxed));
    }
    // What the two CPUs do without us: the runs' busy shares include it.
    let background = cpu::busy_over((args.server_core, args.client_core), BACKGROUND_PERIOD)?;
    if let Some(b) = background {
        eprintln!(
            "CPU busy before the runs (other work): CPU {} {:.0}%, CPU {} {:.0}%",
            args.server_core, b.server_percent, args.client_core, b.client_percent
        );
    }
    let lab = Lab::up(&LabSpec::unique("cmp", Topology::Pair))
        .context("building the lab (needs root)")?;
    // The kernel clients in B may reuse their own TIME-WAIT ports for new connections
    // (`tcp_tw_reuse=1`, as load testers set it): without it, a 10,000-connection run
    // started seconds after another to the same server completed 1,024 connects and
    // timed out the other 8,976 (the first run's 10,000 TIME-WAIT sockets hold the
    // ports). Both contenders of a row see the same client.
    let reuse = lab
        .exec(
            HostId::B,
            &["sysctl", "-q", "-w", "net.ipv4.tcp_tw_reuse=1"],
        )
        .context("setting tcp_tw_reuse in the client's namespace")?;
    ensure!(
        reuse.status.success(),
        "sysctl tcp_tw_reuse: {}",
        String::from_utf8_lossy(&reuse.stderr)
    );
    eprintln!(
        "lab {}: {} ({}) <-> {} ({}); surge at {} (server) and {} (client); server core {}, client core {}",
        lab.name(),
        lab.a().ifname,
        lab.a().addr,
        lab.b().ifname,
        lab.b().addr,
        contenders::SURGE_SERVER,
        contenders::SURGE_CLIENT,
        args.server_core,
        args.client_core
    );
    let warmup = if args.smoke { 0.5 } else { 1.0 };
    let env = Env {
        lab: &lab,
        surge: &surge,
        out: &runs_dir,
        seconds: args.seconds,
        warmup,
        frames: if args.smoke { 200_000 } else { 2_000_000 },
        cores: (args.server_core, args.client_core),
        stop: &stop,
        busy_poll: None,
    };
    let started = std::time::Instant::now();
    for round in 0..args.rounds {
        for group in &mut groups {
            let mut order: Vec<usize> = (0..group.cases.len()).collect();
            if round % 2 == 1 {
                order.reverse();
            }
            for i in order {
                ensure!(
                    !stop.load(Ordering::Relaxed),
                    "interrupted; the lab was removed"
                );
                let case = &mut group.cases[i];
                let name = format!("{}-{i}-round{round}", group.id);
                let files = RunFiles::new(&runs_dir, &name);
                let case_env = Env {
                    busy_poll: case.tuning.busy_poll(),
                    ..env
                };
                let deferred = case
                    .tuning
                    .deferral()
                    .then(|| Deferred::set(&lab))
                    .transpose()?;
                let m = run_case(&case_env, case.server, case.client, &files)
                    .with_context(|| format!("{}: {} (round {round})", group.title, case.label))?;
                drop(deferred);
                let (busy, saturated) = busy_cells(m.cpu_busy, group.pinned, env.cores);
                let sides = sides(group.pinned, env.cores);
                eprintln!(
                    "  round {round}: {} | {}: {} {}, p99 {} µs, errors {}, {sides} CPU busy {busy}, saturated: {saturated}",
                    group.id,
                    case.label,
                    figure(m.value),
                    group.unit,
                    m.p99_us.map_or("-".into(), figure),
                    m.errors
                );
                append_busy_to_log(&files.log, &sides, &busy, &saturated)?;
                case.runs.push(m);
                if files.hgrm.is_file() {
                    case.hgrm = Some(files.hgrm);
                }
            }
        }
    }
    lab.down().context("removing the lab")?;
    let elapsed = started.elapsed().as_secs_f64();
    let table = table(&groups, &args, warmup, elapsed, background);
    println!("{table}");
    let charts = draw_charts(&groups, &args.out)?;
    println!("charts: {}", charts.join(", "));
    if let Some(path) = &args.json {
        let text =
            serde_json::to_string_pretty(&to_json(&groups, &args, warmup, elapsed, background))?;
        std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
        println!("json: {}", path.display());
    }
    Ok(())
}

/// `server / client` where the sides are pinned, else the two CPUs (`CPU 0 / CPU 1`).
fn sides(pinned: bool, (server, client): (usize, usize)) -> String {
    if pinned {
        "server / client".into()
    } else {
        format!("CPU {server} / CPU {client}")
    }
}

/// The table's two cells for CPU busy: `98% / 100%` and the saturated side (`-` for both
/// when no busy share was measured).
fn busy_cells(busy: Option<CpuBusy>, pinned: bool, cores: (usize, usize)) -> (String, String) {
    busy.map_or(("-".into(), "-".into()), |b| {
        (b.cell(), b.saturated().name(pinned, cores))
    })
}

/// Adds the run's CPU busy shares to the end of its log (after the client's own output,
/// which has been read by then; the frame-rate row's log holds only this line).
fn append_busy_to_log(log: &Path, sides: &str, busy: &str, saturated: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .with_context(|| format!("opening {}", log.display()))?;
    writeln!(
        file,
        "surge-bench compare: {sides} CPU busy over the measured window {busy}, saturated (>= {SATURATED_PERCENT}%): {saturated}"
    )
    .with_context(|| format!("writing {}", log.display()))
}

/// The median server and client busy shares over a case's runs (each side's own median),
/// if any run measured them.
fn median_busy(runs: &[Measurement]) -> Option<CpuBusy> {
    let busy: Vec<CpuBusy> = runs.iter().filter_map(|m| m.cpu_busy).collect();
    if busy.is_empty() {
        return None;
    }
    let side = |f: fn(&CpuBusy) -> f64| spread(&busy.iter().map(f).collect::<Vec<_>>()).0;
    Some(CpuBusy {
        server_percent: side(|b| b.server_percent),
        client_percent: side(|b| b.client_percent),
    })
}

/// The median of a case's rounds, if it has a finite one.
fn case_median(case: &Case) -> Option<f64> {
    let values: Vec<f64> = case.runs.iter().map(|m| m.value).collect();
    Some(spread(&values).0).filter(|v| v.is_finite())
}

/// The frame rate measured in this run (median), if the frames row ran.
fn frame_ceiling(groups: &[Group]) -> Option<f64> {
    let frames = groups.iter().find(|g| g.id == "frames")?;
    case_median(frames.cases.first()?)
}

/// The echo rate measured in this run, if the echo row ran: the best median of its windows
/// (the pair's ceiling for one frame each way is its maximum).
fn echo_ceiling(groups: &[Group]) -> Option<f64> {
    let echo = groups.iter().find(|g| g.id == "echo")?;
    echo.cases
        .iter()
        .filter_map(case_median)
        .max_by(f64::total_cmp)
}

/// Per-round ratios of case `i` to the group's first case: (median, min, max).
fn ratios(group: &Group, i: usize) -> (f64, f64, f64) {
    let base = &group.cases[0].runs;
    let ours = &group.cases[i].runs;
    let r: Vec<f64> = ours
        .iter()
        .zip(base)
        .map(|(o, b)| o.value / b.value)
        .collect();
    spread(&r)
}

/// The markdown table, with the machine, the date and the command above it.
fn table(
    groups: &[Group],
    args: &CompareArgs,
    warmup: f64,
    elapsed: f64,
    background: Option<CpuBusy>,
) -> String {
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load: Vec<&str> = load.split_whitespace().take(3).collect();
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let ceiling = frame_ceiling(groups);
    let echo = echo_ceiling(groups);
    let mut out = String::new();
    let mut line = |s: String| {
        out.push_str(&s);
        out.push('\n');
    };
    line(String::new());
    line(format!(
        "surge-bench compare: {} round(s) of {} s per run, contenders alternating, server on CPU {}, client on CPU {}; \
         {cpus} CPUs, load average {} at the end; took {elapsed:.0} s",
        args.rounds,
        args.seconds,
        args.server_core,
        args.client_core,
        load.join(" ")
    ));
    line(String::new());
    line(format!(
        "| row | contender | median | spread (min–max) | unit | vs first in row: median (min–max) | p99 latency µs | errors | server / client CPU busy | saturated (≥ {SATURATED_PERCENT:.0}% busy) | note |"
    ));
    line("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |".into());
    for group in groups {
        for (i, case) in group.cases.iter().enumerate() {
            let values: Vec<f64> = case.runs.iter().map(|m| m.value).collect();
            let (median, min, max) = spread(&values);
            let ratio = if i == 0 || group.cases.len() < 2 {
                "1.00x".to_string()
            } else {
                let (r, lo, hi) = ratios(group, i);
                format!("{r:.2}x ({lo:.2}–{hi:.2})")
            };
            let p99: Vec<f64> = case.runs.iter().filter_map(|m| m.p99_us).collect();
            let errors: u64 = case.runs.iter().map(|m| m.errors).sum();
            let note = match (group.id, ceiling, echo) {
                ("http-keepalive" | "busy-poll", _, Some(best)) => {
                    format!("{:.1}% of the echo ceiling", median / best * 100.0)
                }
                ("echo", _, Some(best)) if median == best => {
                    "the echo ceiling (the keep-alive rows' ceiling: one frame each way)".into()
                }
                ("echo", _, Some(best)) => {
                    format!("{:.0}% of the echo ceiling", median / best * 100.0)
                }
                ("http-close", Some(pps), _) => format!(
                    "{:.1}% of the frame ceiling",
                    median * FRAMES_PER_CONNECTION / pps * 100.0
                ),
                ("frames", _, _) => format!(
                    "ceiling ≈ {} connections/s at 4 frames each way; CPU busy is {} (threads not pinned)",
                    figure(median / FRAMES_PER_CONNECTION),
                    sides(group.pinned, (args.server_core, args.client_core))
                ),
                ("bulk", _, _) if case.surge => "surge's stream mode, not iperf3".into(),
                ("latency", _, _) => "sockperf's half round trip".into(),
                _ => String::new(),
            };
            let (busy, saturated) = busy_cells(
                median_busy(&case.runs),
                group.pinned,
                (args.server_core, args.client_core),
            );
            line(format!(
                "| {} | {} | {} | {}–{} | {} | {ratio} | {} | {errors} | {busy} | {saturated} | {note} |",
                group.title,
                case.label,
                figure(median),
                figure(min),
                figure(max),
                group.unit,
                figure(spread(&p99).0),
            ));
        }
    }
    line(String::new());
    for group in groups {
        line(format!("- {}: {}", group.id, group.note));
    }
    line(format!(
        "- HTTP clients: one thread, {HTTP_CONNECTIONS} connections, no warm-up (wrk has none); rr rows: {warmup} s warm-up (connection set-up) not measured"
    ));
    line(format!(
        "- CPU busy: the share of CPU {} (server) and CPU {} (client) that was not idle (/proc/stat: user, nice, system, irq, softirq, steal) \
         over each run's measured window (rr rows: after the warm-up; sockperf: without its first 400 ms and last 50 ms; frames: the whole run), \
         median over rounds; a side at ≥ {SATURATED_PERCENT:.0}% is saturated, and a figure with the client saturated may be the client's limit. \
         It is the CPU, not the process: on veth the sender's CPU runs the receiver's kernel RX work, and other work on the machine counts too",
        args.server_core, args.client_core
    ));
    line(format!(
        "- Other work: in the {:.0} s before the lab was built, with nothing of compare's running, CPU {} was {} busy and CPU {} {}",
        BACKGROUND_PERIOD.as_secs_f64(),
        args.server_core,
        background.map_or("-".into(), |b| format!("{:.0}%", b.server_percent)),
        args.client_core,
        background.map_or("-".into(), |b| format!("{:.0}%", b.client_percent)),
    ));
    out
}

/// One bar chart per group and the percentile chart of the `surge load` runs of the
/// keep-alive and 10k rows; returns the files written.
fn draw_charts(groups: &[Group], out: &Path) -> anyhow::Result<Vec<String>> {
    let mut written = Vec::new();
    for group in groups {
        let bars: Vec<Bar> = group
            .cases
            .iter()
            .map(|case| {
                let values: Vec<f64> = case.runs.iter().map(|m| m.value).collect();
                let (median, min, max) = spread(&values);
                Bar {
                    label: case.label.to_string(),
                    median,
                    min,
                    max,
                    accent: case.surge,
                }
            })
            .collect();
        let path = out.join(format!("{}.png", group.id));
        write_bars(&path, group.title, group.unit, &bars)?;
        written.push(path.display().to_string());
        let runs: Vec<PercentileRun> = group
            .cases
            .iter()
            .filter_map(|case| {
                let text = std::fs::read_to_string(case.hgrm.as_ref()?).ok()?;
                Some(PercentileRun {
                    label: format!("{} (surge load, last round)", case.label),
                    rows: parse_hgrm(&text).ok()?,
                })
            })
            .collect();
        if runs.len() >= 2 {
            let path = out.join(format!("{}-latency.png", group.id));
            let title = format!("{}: latency by percentile", group.title);
            write_percentiles(&path, &title, &runs)?;
            written.push(path.display().to_string());
        }
    }
    Ok(written)
}

/// A run's or a case's CPU busy shares as JSON (`null` when not measured).
fn busy_json(busy: Option<CpuBusy>, pinned: bool, cores: (usize, usize)) -> serde_json::Value {
    busy.map_or(serde_json::Value::Null, |b| {
        json!({
            "server_pct": b.server_percent,
            "client_pct": b.client_percent,
            "saturated": b.saturated().name(pinned, cores),
        })
    })
}

/// The results as JSON: every run of every case, medians, spreads, ratios, CPU busy and
/// which side saturated.
fn to_json(
    groups: &[Group],
    args: &CompareArgs,
    warmup: f64,
    elapsed: f64,
    background: Option<CpuBusy>,
) -> serde_json::Value {
    let cores = (args.server_core, args.client_core);
    let rows: Vec<serde_json::Value> = groups
        .iter()
        .map(|group| {
            let cases: Vec<serde_json::Value> = group
                .cases
                .iter()
                .enumerate()
                .map(|(i, case)| {
                    let values: Vec<f64> = case.runs.iter().map(|m| m.value).collect();
                    let (median, min, max) = spread(&values);
                    let (ratio, ratio_min, ratio_max) = ratios(group, i);
                    json!({
                        "contender": case.label,
                        "surge": case.surge,
                        "median": median,
                        "min": min,
                        "max": max,
                        "ratio_to_first": {"median": ratio, "min": ratio_min, "max": ratio_max},
                        "cpu_busy": busy_json(median_busy(&case.runs), group.pinned, cores),
                        "cpu_window_s": group.pinned.then(|| {
                            let w = measured_window(case.client, args.seconds, warmup);
                            json!({
                                "from": w.skip.as_secs_f64(),
                                "to": (w.skip + w.length).as_secs_f64(),
                            })
                        }),
                        "runs": case.runs.iter().map(|m| json!({
                            "value": m.value,
                            "p50_us": m.p50_us,
                            "p99_us": m.p99_us,
                            "errors": m.errors,
                            "cpu_busy": busy_json(m.cpu_busy, group.pinned, cores),
                        })).collect::<Vec<_>>(),
                    })
                })
                .collect();
            json!({
                "id": group.id,
                "title": group.title,
                "unit": group.unit,
                "lower_is_better": group.lower_is_better,
                "note": group.note,
                "pinned": group.pinned,
                "cpu_placement": if group.pinned {
                    format!("servers in A pinned to CPU {}, clients in B pinned to CPU {}", cores.0, cores.1)
                } else {
                    format!("sender (A) and receiver (B) threads not pinned; server_pct is CPU {}, client_pct CPU {}, over the whole run", cores.0, cores.1)
                },
                "cases": cases,
            })
        })
        .collect();
    json!({
        "rounds": args.rounds,
        "seconds": args.seconds,
        "server_core": args.server_core,
        "client_core": args.client_core,
        "elapsed_s": elapsed,
        "saturated_at_pct": SATURATED_PERCENT,
        "background_cpu_busy": background.map(|b| json!({
            "server_pct": b.server_percent,
            "client_pct": b.client_percent,
            "period_s": BACKGROUND_PERIOD.as_secs_f64(),
        })),
        "frame_ceiling_pps": frame_ceiling(groups),
        "echo_ceiling_round_trips_per_s": echo_ceiling(groups),
        "rows": rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The arguments the table tests print under: 3 rounds of 5 s, cores 0 and 1.
    fn table_args() -> CompareArgs {
        CompareArgs {
            rounds: 3,
            seconds: 5.0,
            only: Vec::new(),
            smoke: false,
            json: None,
            out: PathBuf::from("unused"),
            surge: None,
            server_core: 0,
            client_core: 1,
        }
    }

    #[test]
    fn spreads_and_figures() {
        assert_eq!(spread(&[3.0, 1.0, 2.0]), (2.0, 1.0, 3.0));
        assert!(spread(&[]).0.is_nan());
        assert_eq!(figure(1234567.4), "1,234,567");
        assert_eq!(figure(123.4), "123");
        assert_eq!(figure(9.456), "9.46");
        assert_eq!(figure(f64::NAN), "-");
    }

    #[test]
    fn every_group_has_a_unique_id_and_a_baseline() {
        let groups = groups();
        let mut ids: Vec<&str> = groups.iter().map(|g| g.id).collect();
        ids.sort_unstable();
        ids.dedup();
        assert_eq!(ids.len(), groups.len());
        assert!(groups.iter().all(|g| !g.cases.is_empty()));
    }

    #[test]
    fn ratios_are_per_round() {
        let mut group = groups().remove(0);
        for (case, values) in group.cases.iter_mut().zip([[10.0, 20.0], [20.0, 20.0]]) {
            case.runs = values
                .iter()
                .map(|&value| Measurement {
                    value,
                    ..Measurement::default()
                })
                .collect();
        }
        // Round 0: 20/10 = 2, round 1: 20/20 = 1; the median of two is the upper one.
        assert_eq!(ratios(&group, 1), (2.0, 1.0, 2.0));
    }

    #[test]
    fn keep_alive_rows_are_set_against_the_best_echo_row() {
        let run = |value| Measurement {
            value,
            ..Measurement::default()
        };
        let mut all = groups();
        all.retain(|g| g.id == "http-keepalive" || g.id == "echo");
        for (case, value) in all[0].cases.iter_mut().zip([1e5, 2e5, 3e5, 4e5]) {
            case.runs = vec![run(value)];
        }
        // The deeper window is the higher: it is the ceiling.
        all[1].cases[0].runs = vec![run(7e5), run(6e5), run(7.5e5)];
        all[1].cases[1].runs = vec![run(8e5), run(7.9e5), run(8.1e5)];
        assert_eq!(echo_ceiling(&all), Some(8e5));
        let args = table_args();
        let text = table(&all, &args, 1.0, 60.0, None);
        let row = |label: &str| {
            text.lines()
                .find(|l| l.contains(label))
                .unwrap_or_else(|| panic!("{label} in {text}"))
                .to_string()
        };
        assert!(row("| surge load -> surge serve |").contains("| 50.0% of the echo ceiling |"));
        assert!(row("| wrk -> nginx |").contains("| 12.5% of the echo ceiling |"));
        assert!(row("echo, 50 in flight").contains("| 88% of the echo ceiling |"));
        assert!(row("echo, 256 in flight").contains("| the echo ceiling (the keep-alive rows'"));
        // The echo threads are pinned like the contenders: server and client sides.
        assert!(row("echo, 256 in flight").contains("| - | - |"));
        let json = to_json(&all, &args, 1.0, 60.0, None);
        assert_eq!(json["echo_ceiling_round_trips_per_s"], 8e5);
        assert!(json["frame_ceiling_pps"].is_null());
        // Without the echo row, the keep-alive rows say nothing of a ceiling.
        all.retain(|g| g.id == "http-keepalive");
        assert!(!table(&all, &args, 1.0, 60.0, None).contains("echo ceiling"));
    }

    #[test]
    fn echo_labels_name_their_windows() {
        for (label, window) in ECHO_WINDOWS {
            assert!(label.contains(&format!(" {window} in flight")), "{label}");
        }
        assert_eq!(ECHO_WINDOWS[0].1, HTTP_CONNECTIONS as u64);
    }

    #[test]
    fn the_table_and_the_json_say_which_side_saturated() {
        let busy = |server_percent, client_percent| {
            Some(CpuBusy {
                server_percent,
                client_percent,
            })
        };
        let run = |value, cpu_busy| Measurement {
            value,
            cpu_busy,
            ..Measurement::default()
        };
        let mut all = groups();
        all.retain(|g| g.id == "rr-10k" || g.id == "frames");
        // Each side's median over three rounds: server 60, client 99.
        all[0].cases[0].runs = vec![
            run(10.0, busy(50.0, 99.0)),
            run(11.0, busy(60.0, 100.0)),
            run(12.0, busy(70.0, 97.0)),
        ];
        // One round without a measured share does not hide the others.
        all[0].cases[1].runs = vec![
            run(10.0, busy(96.0, 40.0)),
            run(11.0, None),
            run(12.0, busy(97.0, 30.0)),
        ];
        all[1].cases[0].runs = vec![run(5e5, busy(99.0, 98.0))];
        assert_eq!(median_busy(&all[0].cases[0].runs), busy(60.0, 99.0));
        assert_eq!(median_busy(&[run(1.0, None)]), None);
        let args = table_args();
        let text = table(&all, &args, 1.0, 60.0, busy(12.0, 3.0));
        let row = |label: &str| {
            text.lines()
                .find(|l| l.contains(label))
                .unwrap_or_else(|| panic!("{label} in {text}"))
                .to_string()
        };
        assert!(text.contains("| server / client CPU busy | saturated (≥ 95% busy) |"));
        assert!(row("kernel client -> kernel server").contains("| 60% / 99% | client |"));
        assert!(row("kernel client -> surge server").contains("| 97% / 40% | server |"));
        assert!(row("surge-datapath").contains("| 99% / 98% | both |"));
        assert!(row("surge-datapath").contains("CPU busy is CPU 0 / CPU 1"));

        assert!(text.contains("CPU 0 was 12% busy and CPU 1 3%"), "{text}");
        let json = to_json(&all, &args, 1.0, 60.0, busy(12.0, 3.0));
        assert_eq!(json["background_cpu_busy"]["client_pct"], 3.0);
        let rr = &json["rows"][0]["cases"][0];
        assert_eq!(rr["cpu_busy"]["saturated"], "client");
        assert_eq!(rr["runs"][1]["cpu_busy"]["client_pct"], 100.0);
        assert_eq!(rr["cpu_window_s"]["from"], 1.0);
        assert_eq!(rr["cpu_window_s"]["to"], 6.0);
        assert!(json["rows"][0]["cases"][1]["runs"][1]["cpu_busy"].is_null());
        assert_eq!(json["rows"][1]["pinned"], false);
        assert!(json["rows"][1]["cases"][0]["cpu_window_s"].is_null());
        // One CPU saturated in the unpinned row is named by its number.
        assert_eq!(busy_cells(busy(99.0, 10.0), false, (0, 1)).1, "CPU 0");
    }
}

//! `surge-bench bulk`: one bulk TCP connection on surge against the kernel, and against the
//! raw AF_XDP frame rate of the same veth pair, per MTU (issue 14's bulk target).
//!
//! For each MTU (1500 and 9000 by default) a fresh `pair` lab (one queue); in every round,
//! on each lab, alternating the order of the contenders:
//!
//! - `surge serve --mode stream` in A against `surge serve --stack kernel --mode stream` in
//!   A, each with the kernel client `surge load --stack kernel --mode stream -c 1` in B,
//!   `--direction up` (the server receives) and `--direction down` (the server sends);
//! - iperf3 kernel to kernel, B to A and A to B (`-R`);
//! - the raw AF_XDP frame rate one way (A to B) at the MTU's full frame size (MTU + 14
//!   bytes; at 9000 a multi-buffer chain per frame, as surge's own segments), through
//!   surge-datapath, closed loop: `crate::datapath::frame_rate`.
//!
//! The kernel's veth path moves 64 KB GSO superframes while surge in copy mode sends and
//! receives one frame per MSS, so the frame rate is a ceiling surge cannot pass; the
//! target is surge ≥ 0.9x the kernel, or ≥ 0.9x the frame rate (as TCP payload) where
//! that is lower. The table gives surge/kernel and surge/raw, each the median of the
//! per-round ratios.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, bail, ensure};
use surge_lab::{Lab, LabSpec, Topology};

use crate::compare::contenders::{self, Client, Env, RunFiles, Server, run_case};
use crate::compare::{figure, spread, surge_binary};

/// Ethernet header bytes in front of an MTU-sized IPv4 packet.
const ETHERNET_HEADER: usize = 14;
/// IPv4 (20) and TCP with timestamps (32) headers: what a full frame carries besides
/// payload (surge and Linux both send timestamps by default).
const TCP_IP_HEADERS: usize = 52;

/// Arguments of `surge-bench bulk`.
#[derive(clap::Args, Debug)]
pub struct BulkArgs {
    /// Rounds (each runs every contender once per MTU; medians and spreads are over rounds).
    #[arg(long, default_value_t = 3)]
    rounds: u32,
    /// Measured seconds per TCP run.
    #[arg(long, default_value_t = 10.0)]
    seconds: f64,
    /// MTUs, one lab each, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1500,9000")]
    mtu: Vec<u32>,
    /// Frames per frame-rate run at MTU 1500 (scaled down with the frame size above it).
    #[arg(long, default_value_t = 2_000_000)]
    frames: u64,
    /// A short run that checks the table is produced (CI): 1 round of 1 s, fewer frames.
    #[arg(long)]
    smoke: bool,
    /// Where every run's output goes.
    #[arg(long, default_value = "results/bulk")]
    out: PathBuf,
    /// The `surge` binary (default: the one beside this binary).
    #[arg(long)]
    surge: Option<PathBuf>,
    /// Core of the servers (and of the frame-rate run's threads: they are not pinned).
    #[arg(long, default_value_t = 0)]
    server_core: usize,
    /// Core of the clients.
    #[arg(long, default_value_t = 1)]
    client_core: usize,
}

/// The contenders of one MTU, in the order of the first round.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Contender {
    /// `surge serve` in A, kernel client in B; `down`: the server sends.
    Surge { down: bool },
    /// `surge serve --stack kernel` in A, the same client.
    Kernel { down: bool },
    /// iperf3 kernel to kernel; `down`: A sends (`-R`).
    Iperf3 { down: bool },
    /// The raw AF_XDP frame rate, A to B, full-size frames.
    Frames,
}

impl Contender {
    const ALL: [Contender; 7] = [
        Contender::Surge { down: false },
        Contender::Kernel { down: false },
        Contender::Surge { down: true },
        Contender::Kernel { down: true },
        Contender::Iperf3 { down: false },
        Contender::Iperf3 { down: true },
        Contender::Frames,
    ];

    fn server_and_client(self, frame_len: usize) -> (Server, Client) {
        match self {
            Contender::Surge { down } => (Server::SurgeStream, Client::KernelStream { down }),
            Contender::Kernel { down } => (Server::KernelStream, Client::KernelStream { down }),
            Contender::Iperf3 { down } => (Server::Iperf3, Client::Iperf3 { reverse: down }),
            Contender::Frames => (Server::None, Client::Frames { len: frame_len }),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Contender::Surge { down: false } => "surge-up",
            Contender::Surge { down: true } => "surge-down",
            Contender::Kernel { down: false } => "kernel-up",
            Contender::Kernel { down: true } => "kernel-down",
            Contender::Iperf3 { down: false } => "iperf3-up",
            Contender::Iperf3 { down: true } => "iperf3-down",
            Contender::Frames => "frames",
        }
    }
}

/// Every round's figure of every contender at one MTU: Gbit/s, frames/s for `Frames`.
struct MtuRuns {
    mtu: u32,
    runs: Vec<(Contender, f64)>,
}

impl MtuRuns {
    fn values(&self, who: Contender) -> Vec<f64> {
        self.runs
            .iter()
            .filter(|(c, _)| *c == who)
            .map(|(_, v)| *v)
            .collect()
    }

    /// TCP payload per full-size frame.
    fn payload_per_frame(&self) -> f64 {
        (self.mtu as usize).saturating_sub(TCP_IP_HEADERS) as f64
    }

    /// The frame rate of each round as Gbit/s of TCP payload.
    fn raw_gbit(&self) -> Vec<f64> {
        let payload = self.payload_per_frame();
        self.values(Contender::Frames)
            .iter()
            .map(|fps| fps * payload * 8.0 / 1e9)
            .collect()
    }
}

/// Per-round ratios `a[i] / b[i]`: (median, min, max).
fn paired(a: &[f64], b: &[f64]) -> (f64, f64, f64) {
    let r: Vec<f64> = a.iter().zip(b).map(|(x, y)| x / y).collect();
    spread(&r)
}

/// Frames per frame-rate run at `mtu`: `base` at 1500, fewer for larger frames (the run
/// takes about as long).
fn frames_for(base: u64, mtu: u32) -> u64 {
    (base * 1500 / u64::from(mtu.max(1500))).max(1000)
}

/// Runs `surge-bench bulk`.
pub fn run(mut args: BulkArgs) -> anyhow::Result<()> {
    if args.smoke {
        args.rounds = 1;
        args.seconds = args.seconds.min(1.0);
        args.frames = args.frames.min(100_000);
    }
    ensure!(args.rounds >= 1, "--rounds must be at least 1");
    ensure!(
        args.seconds > 0.0 && args.seconds <= 600.0,
        "--seconds must be in (0, 600]"
    );
    ensure!(!args.mtu.is_empty(), "--mtu: at least one");
    if let Some(bad) = args.mtu.iter().find(|m| !(576..=9000).contains(*m)) {
        bail!("--mtu {bad}: from 576 to 9000");
    }
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    ensure!(
        args.server_core < cpus && args.client_core < cpus,
        "--server-core and --client-core must be below {cpus} (the CPUs here)"
    );
    surge_lab::require_root()?;
    let surge = surge_binary(args.surge.as_deref())?;
    let pairs: Vec<(Server, Client)> = Contender::ALL
        .iter()
        .map(|c| c.server_and_client(0))
        .collect();
    let servers: Vec<Server> = pairs.iter().map(|p| p.0).collect();
    let clients: Vec<Client> = pairs.iter().map(|p| p.1).collect();
    contenders::check_tools(&contenders::tools_needed(&servers, &clients))?;
    let runs_dir = args.out.join("runs");
    std::fs::create_dir_all(&runs_dir)
        .with_context(|| format!("creating {}", runs_dir.display()))?;
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = Arc::clone(&stop);
        // The children get the same SIGINT; the labs are removed by their guards.
        let _ = ctrlc::set_handler(move || stop.store(true, Ordering::Relaxed));
    }
    // One fresh lab per MTU, all up for the whole run so the rounds can alternate MTUs.
    let mut labs = Vec::new();
    for &mtu in &args.mtu {
        let mut spec = LabSpec::unique(&format!("bulk{mtu}"), Topology::Pair);
        spec.mtu = mtu;
        let lab =
            Lab::up(&spec).with_context(|| format!("building the MTU {mtu} lab (needs root)"))?;
        eprintln!(
            "lab {}: MTU {mtu}, {} ({}) <-> {} ({}); surge at {}",
            lab.name(),
            lab.a().ifname,
            lab.a().addr,
            lab.b().ifname,
            lab.b().addr,
            contenders::SURGE_SERVER,
        );
        labs.push((mtu, lab));
    }
    let mut results: Vec<MtuRuns> = args
        .mtu
        .iter()
        .map(|&mtu| MtuRuns {
            mtu,
            runs: Vec::new(),
        })
        .collect();
    let started = std::time::Instant::now();
    for round in 0..args.rounds {
        for (i, (mtu, lab)) in labs.iter().enumerate() {
            let env = Env {
                lab,
                surge: &surge,
                out: &runs_dir,
                seconds: args.seconds,
                warmup: 0.0,
                frames: frames_for(args.frames, *mtu),
                cores: (args.server_core, args.client_core),
                stop: &stop,
                busy_poll: None,
            };
            let frame_len = *mtu as usize + ETHERNET_HEADER;
            let mut order = Contender::ALL.to_vec();
            order.rotate_left(round as usize % Contender::ALL.len());
            if round % 2 == 1 {
                order.reverse();
            }
            for who in order {
                ensure!(
                    !stop.load(Ordering::Relaxed),
                    "interrupted; the labs were removed"
                );
                let (server, client) = who.server_and_client(frame_len);
                let name = format!("mtu{mtu}-{}-round{round}", who.name());
                let files = RunFiles::new(&runs_dir, &name);
                let m = run_case(&env, server, client, &files)
                    .with_context(|| format!("MTU {mtu}: {} (round {round})", who.name()))?;
                let unit = if who == Contender::Frames {
                    "frames/s"
                } else {
                    "Gbit/s"
                };
                eprintln!(
                    "  round {round}: MTU {mtu} {}: {} {unit}",
                    who.name(),
                    figure(m.value)
                );
                results[i].runs.push((who, m.value));
            }
        }
    }
    for (_, lab) in labs {
        lab.down().context("removing a lab")?;
    }
    let elapsed = started.elapsed().as_secs_f64();
    println!("{}", table(&results, &args, elapsed));
    Ok(())
}

/// `median (min–max)` of `values`, two decimals.
fn cell(values: &[f64]) -> String {
    let (m, lo, hi) = spread(values);
    format!("{} ({}–{})", figure(m), figure(lo), figure(hi))
}

/// `0.63x (0.60–0.70)`.
fn ratio_cell((m, lo, hi): (f64, f64, f64)) -> String {
    format!("{m:.2}x ({lo:.2}–{hi:.2})")
}

/// The markdown table, with the machine and the run above it.
fn table(results: &[MtuRuns], args: &BulkArgs, elapsed: f64) -> String {
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let load: Vec<&str> = load.split_whitespace().take(3).collect();
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let mut out = String::new();
    let mut line = |s: String| {
        out.push_str(&s);
        out.push('\n');
    };
    line(String::new());
    line(format!(
        "surge-bench bulk: {} round(s) of {} s per TCP run, contenders alternating, servers on CPU {}, clients on CPU {}; \
         {cpus} CPUs, load average {} at the end; took {elapsed:.0} s",
        args.rounds,
        args.seconds,
        args.server_core,
        args.client_core,
        load.join(" ")
    ));
    line(String::new());
    line("Gbit/s of TCP payload, median (min–max) over rounds; ratios are medians of per-round ratios.".into());
    line(String::new());
    line("| MTU | direction | surge | kernel | iperf3 | raw AF_XDP frames/s | raw as TCP payload | surge / kernel | surge / raw | target (0.9x the lower) |".into());
    line("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |".into());
    for r in results {
        let raw = r.raw_gbit();
        for down in [false, true] {
            let surge = r.values(Contender::Surge { down });
            let kernel = r.values(Contender::Kernel { down });
            let iperf = r.values(Contender::Iperf3 { down });
            let vs_kernel = paired(&surge, &kernel);
            let vs_raw = paired(&surge, &raw);
            let (kernel_m, raw_m, surge_m) = (spread(&kernel).0, spread(&raw).0, spread(&surge).0);
            let target = 0.9 * kernel_m.min(raw_m);
            let verdict = if surge_m >= target { "met" } else { "not met" };
            line(format!(
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} {verdict} |",
                r.mtu,
                if down {
                    "down (surge sends)"
                } else {
                    "up (surge receives)"
                },
                cell(&surge),
                cell(&kernel),
                cell(&iperf),
                cell(&r.values(Contender::Frames)),
                cell(&raw),
                ratio_cell(vs_kernel),
                ratio_cell(vs_raw),
                figure(target),
            ));
        }
    }
    line(String::new());
    line(
        "- surge and kernel: `surge serve [--stack kernel] --mode stream --threads 1` in A, \
         `surge load --stack kernel --mode stream -c 1 --direction up|down` in B; iperf3: `-c` in B (up: B -> A; down: `-R`)"
            .to_string(),
    );
    line(format!(
        "- raw: surge-datapath XSK to XSK, A -> B, frames of MTU + {ETHERNET_HEADER} bytes (multi-buffer chains above one 4 KiB UMEM frame), \
         closed loop (1024 descriptors in flight); as TCP payload: frames/s x (MTU - {TCP_IP_HEADERS}) bytes"
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_counts_scale_with_the_frame() {
        assert_eq!(frames_for(2_000_000, 1500), 2_000_000);
        assert_eq!(frames_for(2_000_000, 9000), 333_333);
        assert_eq!(frames_for(2_000_000, 576), 2_000_000);
        assert_eq!(frames_for(10, 9000), 1000);
    }

    #[test]
    fn raw_rates_become_payload_rates() {
        let r = MtuRuns {
            mtu: 1500,
            runs: vec![
                (Contender::Frames, 1e6),
                (Contender::Surge { down: true }, 5.0),
            ],
        };
        // 1448 payload bytes per frame.
        assert_eq!(r.raw_gbit(), vec![1e6 * 1448.0 * 8.0 / 1e9]);
        assert_eq!(r.values(Contender::Surge { down: true }), vec![5.0]);
        assert_eq!(paired(&[2.0, 3.0], &[1.0, 3.0]), (2.0, 1.0, 2.0));
    }

    #[test]
    fn every_contender_has_a_distinct_name() {
        let mut names: Vec<&str> = Contender::ALL.iter().map(|c| c.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Contender::ALL.len());
    }
}

//! `surge-bench frame-echo`: the raw AF_XDP frame echo of a fresh lab veth pair (see
//! [`crate::datapath::echo_rate`]) at one or more windows, reflector in A and client in B
//! pinned as `surge-bench compare` pins its servers and clients: the ceiling of a
//! request/response workload with one frame each way, with the loop counters of both
//! ends. Prints a table; writes every run as JSON when asked.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, ensure};
use serde_json::json;
use surge_lab::{Lab, LabSpec, Topology};

use crate::compare::{figure, spread};
use crate::datapath::{EchoConfig, EchoRun, echo_rate};

/// Arguments of `surge-bench frame-echo`.
#[derive(clap::Args, Debug)]
pub struct FrameEchoArgs {
    /// Seconds the client sends, per run.
    #[arg(long, default_value_t = 3.0)]
    seconds: f64,
    /// Windows (requests in flight) to run, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "50,256")]
    windows: Vec<u64>,
    /// Rounds (each runs every window once; the median is reported).
    #[arg(long, default_value_t = 1)]
    rounds: u32,
    /// Frame length without the FCS (60: 64-byte frames on the wire).
    #[arg(long, default_value_t = 60)]
    frame_len: usize,
    /// Core of the reflector (in A).
    #[arg(long, default_value_t = 0)]
    server_core: usize,
    /// Core of the client (in B).
    #[arg(long, default_value_t = 1)]
    client_core: usize,
    /// Leave the threads where the scheduler puts them.
    #[arg(long)]
    unpinned: bool,
    /// Write every run as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
}

/// Runs `surge-bench frame-echo`.
pub fn run(args: FrameEchoArgs) -> anyhow::Result<()> {
    ensure!(
        args.seconds > 0.0 && args.seconds <= 600.0,
        "--seconds must be in (0, 600]"
    );
    ensure!(args.rounds >= 1, "--rounds must be at least 1");
    ensure!(
        !args.windows.is_empty() && args.windows.iter().all(|&w| (1..=1024).contains(&w)),
        "--windows must be 1 to 1024 each"
    );
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    ensure!(
        args.unpinned || (args.server_core < cpus && args.client_core < cpus),
        "--server-core and --client-core must be below {cpus} (the CPUs here), or pass --unpinned"
    );
    surge_lab::require_root()?;
    let lab = Lab::up(&LabSpec::unique("echo", Topology::Pair))
        .context("building the lab (needs root)")?;
    eprintln!(
        "lab {}: {} <-> {}; reflector {}, client {}",
        lab.name(),
        lab.a().ifname,
        lab.b().ifname,
        core_name(&args, args.server_core),
        core_name(&args, args.client_core)
    );
    let duration = Duration::from_secs_f64(args.seconds);
    let mut runs: Vec<EchoRun> = Vec::new();
    for round in 0..args.rounds {
        // Alternate the order so no window always runs first.
        let mut windows = args.windows.clone();
        if round % 2 == 1 {
            windows.reverse();
        }
        for window in windows {
            let config = EchoConfig {
                duration,
                frame_len: args.frame_len,
                window,
                cores: (!args.unpinned).then_some((args.server_core, args.client_core)),
                limit: duration + Duration::from_secs(30),
            };
            let run = echo_rate(&lab, &config)
                .with_context(|| format!("echo with {window} in flight (round {round})"))?;
            eprintln!("  round {round}: {}", run.describe());
            runs.push(run);
        }
    }
    lab.down().context("removing the lab")?;
    println!("{}", table(&args, &runs));
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(&to_json(&args, &runs))?;
        std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
        println!("json: {}", path.display());
    }
    Ok(())
}

/// `CPU 0`, or `not pinned`.
fn core_name(args: &FrameEchoArgs, core: usize) -> String {
    if args.unpinned {
        "not pinned".into()
    } else {
        format!("on CPU {core}")
    }
}

/// One row per window: the median rate over rounds, its spread, and the median run's
/// counters.
fn table(args: &FrameEchoArgs, runs: &[EchoRun]) -> String {
    let mut out = format!(
        "surge-bench frame-echo: {}-byte frames ({} B + FCS), B -> A -> B, {} round(s) of {} s, \
         reflector (A) {}, client (B) {}\n\n",
        args.frame_len + 4,
        args.frame_len,
        args.rounds,
        args.seconds,
        core_name(args, args.server_core),
        core_name(args, args.client_core)
    );
    out.push_str(
        "| in flight | round trips/s (median) | min–max | client wakeups / round trip | reflector wakeups / round trip \
         | reflector RX batch | lost, unanswered | kernel rx ring full: client, reflector | fill ring empty: client, reflector |\n",
    );
    out.push_str("| --- | --- | --- | --- | --- | --- | --- | --- | --- |\n");
    for &window in &args.windows {
        let mut mine: Vec<&EchoRun> = runs.iter().filter(|r| r.window == window).collect();
        mine.sort_by(|x, y| x.rate.total_cmp(&y.rate));
        let Some(mid) = mine.get(mine.len() / 2) else {
            continue;
        };
        let rates: Vec<f64> = mine.iter().map(|r| r.rate).collect();
        let (median, min, max) = spread(&rates);
        let (c, r) = (&mid.client, &mid.reflector);
        let per = |n: u64| n as f64 / c.received.max(1) as f64;
        let kernel = |f: fn(&surge_datapath::KernelXdpStats) -> u64| {
            let side = |k: Option<surge_datapath::KernelXdpStats>| {
                k.as_ref().map_or("-".into(), |k| f(k).to_string())
            };
            format!("{}, {}", side(c.device.kernel), side(r.device.kernel))
        };
        out.push_str(&format!(
            "| {window} | {} | {}–{} | {:.3} | {:.3} | {:.1} | {}, {} | {} | {} |\n",
            figure(median),
            figure(min),
            figure(max),
            per(c.device.wakeups),
            per(r.device.wakeups),
            r.device.rx_packets as f64 / r.device.rx_batches.max(1) as f64,
            c.lost,
            c.unanswered,
            kernel(|k| k.rx_ring_full),
            kernel(|k| k.fill_ring_empty),
        ));
    }
    out
}

/// Every run with both ends' counters.
fn to_json(args: &FrameEchoArgs, runs: &[EchoRun]) -> serde_json::Value {
    let kernel = |k: Option<surge_datapath::KernelXdpStats>| {
        k.map(|k| {
            json!({
                "rx_dropped": k.rx_dropped,
                "rx_ring_full": k.rx_ring_full,
                "fill_ring_empty": k.fill_ring_empty,
                "tx_ring_empty": k.tx_ring_empty,
            })
        })
    };
    let device = |d: &surge_datapath::DeviceStats| {
        json!({
            "rx_packets": d.rx_packets,
            "rx_batches": d.rx_batches,
            "tx_packets": d.tx_packets,
            "tx_batches": d.tx_batches,
            "wakeups": d.wakeups,
            "pool_empty": d.pool_empty,
            "tx_ring_full": d.tx_ring_full,
            "kernel": kernel(d.kernel),
        })
    };
    let runs: Vec<serde_json::Value> = runs
        .iter()
        .map(|run| {
            let (c, r) = (&run.client, &run.reflector);
            json!({
                "window": run.window,
                "round_trips": run.round_trips,
                "seconds": run.seconds,
                "round_trips_per_s": run.rate,
                "requests_accounted": run.requests_accounted(),
                "client": {
                    "sent": c.sent,
                    "received": c.received,
                    "lost": c.lost,
                    "unanswered": c.unanswered,
                    "strays": c.strays,
                    "frames_balanced": c.frames_balanced,
                    "device": device(&c.device),
                },
                "reflector": {
                    "received": r.received,
                    "reflected": r.reflected,
                    "dropped": r.dropped,
                    "sent": r.sent,
                    "unsent": r.unsent,
                    "frames_balanced": r.frames_balanced,
                    "device": device(&r.device),
                },
            })
        })
        .collect();
    json!({
        "seconds": args.seconds,
        "rounds": args.rounds,
        "frame_len": args.frame_len,
        "server_core": (!args.unpinned).then_some(args.server_core),
        "client_core": (!args.unpinned).then_some(args.client_core),
        "runs": runs,
    })
}

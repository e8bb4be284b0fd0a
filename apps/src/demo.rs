//! `surge demo`: the README's first command. In a fresh lab (a veth pair between two
//! namespaces, two queues) it runs request/response with both ends on surge's stack,
//! then both ends on the kernel's; then surge's server and the kernel's server under
//! the same kernel client. It prints the reports side by side
//! with the ratios. Files land in `results/`; the labs are removed on exit, on
//! failure and on Ctrl-C.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use clap::Args;
use serde_json::Value;
use surge::child::Reaped;
use surge::report::hgrm::parse_hgrm;
use surge::report::plot::{PercentileRun, write_percentiles};
use surge_lab::{HostId, Lab, LabSpec, Topology, parse_duration};

/// surge's address in host A (the kernel of A keeps its own, 198.18.0.1).
const SURGE_ADDR: &str = "198.18.0.10";
/// surge's address in host B when it is the client (B's kernel keeps 198.18.0.2).
const SURGE_CLIENT_ADDR: &str = "198.18.0.20";
const PORT: u16 = 8080;
/// Each load's length (after warm-up) when neither `-d` nor the variable below says.
const DEFAULT_DURATION: Duration = Duration::from_secs(5);
/// Seconds per load when `-d` is not given: CI runs the README's command as written and
/// shortens it with this.
const DURATION_VARIABLE: &str = "SURGE_DEMO_SECONDS";

/// Each load's length: `-d`, else `$SURGE_DEMO_SECONDS`, else 5 s.
fn load_duration(given: Option<Duration>, variable: Option<&str>) -> anyhow::Result<Duration> {
    if let Some(d) = given {
        return Ok(d);
    }
    let Some(text) = variable else {
        return Ok(DEFAULT_DURATION);
    };
    let seconds: f64 = text
        .trim()
        .parse()
        .ok()
        .filter(|s: &f64| s.is_finite() && *s > 0.0 && *s <= 3600.0)
        .with_context(|| {
            format!("{DURATION_VARIABLE}={text:?}: expected seconds, more than 0 and at most 3600")
        })?;
    Ok(Duration::from_secs_f64(seconds))
}

/// Arguments of `surge demo`.
#[derive(Args, Debug, Clone)]
pub struct DemoArgs {
    /// How long each load runs (after a 1 s warm-up) [default: $SURGE_DEMO_SECONDS seconds, else 5s].
    #[arg(short = 'd', long, value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Concurrent connections of the load.
    #[arg(short = 'c', long, default_value_t = 50)]
    pub connections: usize,
    /// veth queues, and server threads on each stack.
    #[arg(long, default_value_t = 2)]
    pub queues: u16,
    /// Where the reports go.
    #[arg(long, default_value = "results")]
    pub results: PathBuf,
}

fn exe() -> anyhow::Result<String> {
    let exe = std::env::current_exe().context("finding the surge binary")?;
    Ok(exe.to_string_lossy().into_owned())
}

/// Waits until a TCP connect from host B to `addr:PORT` succeeds (bounded).
fn wait_listening(lab: &Lab, addr: &str, stop: &AtomicBool) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline && !stop.load(Ordering::Relaxed) {
        let out = lab
            .exec(HostId::B, &["nc", "-z", "-w", "1", addr, &PORT.to_string()])
            .context("probing the server")?;
        if out.status.success() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    bail!("the server at {addr}:{PORT} did not start listening within 15 s")
}

/// One measured round: who serves in host A, who loads from host B.
struct Round<'a> {
    /// Name of the report files (`results/<name>.json`, ...).
    name: &'a str,
    /// The server's stack and address.
    server_stack: &'a str,
    server_addr: &'a str,
    /// The client's stack (and its address, for `surge`).
    client_stack: &'a str,
    client_addr: &'a str,
    /// Server threads (one engine per queue on surge).
    threads: u16,
    /// Load threads.
    client_threads: u16,
}

/// Runs one round: a server in host A, the load from host B; returns the load's JSON.
fn round(
    lab: &Lab,
    args: &DemoArgs,
    duration: Duration,
    r: &Round<'_>,
    stop: &AtomicBool,
) -> anyhow::Result<Value> {
    let exe = exe()?;
    let threads = r.threads.to_string();
    let listen = format!("{}:{PORT}", r.server_addr);
    let mut serve = lab.command(HostId::A, &exe)?;
    serve.args([
        "serve",
        "--stack",
        r.server_stack,
        "--listen",
        &listen,
        "--mode",
        "rr",
        "--threads",
        &threads,
        "--quiet",
    ]);
    if r.server_stack == "surge" {
        serve.args([
            "--interface",
            &lab.a().ifname,
            "--address",
            &format!("{}/24", r.server_addr),
        ]);
    }
    let server = Reaped(
        serve
            .stdout(Stdio::null())
            .spawn()
            .with_context(|| format!("starting surge serve --stack {}", r.server_stack))?,
    );
    wait_listening(lab, r.server_addr, stop)?;
    let prefix = args.results.join(r.name);
    let json = prefix.with_extension("json");
    let path = |ext: &str| prefix.with_extension(ext).to_string_lossy().into_owned();
    let mut load = lab.command(HostId::B, &exe)?;
    load.args([
        "load",
        "--stack",
        r.client_stack,
        "--target",
        &listen,
        "--mode",
        "rr",
        "-c",
        &args.connections.to_string(),
        "-t",
        &r.client_threads.to_string(),
        "-d",
        // The load's duration includes its warm-up: measure `duration` after 1 s.
        &format!("{}ms", duration.as_millis() + 1000),
        "--warmup",
        "1s",
        "--json",
        &path("json"),
        "--hgrm",
        &path("hgrm"),
        "--plot",
        &path("png"),
        "--quiet",
    ]);
    if r.client_stack == "surge" {
        load.args([
            "--interface",
            &lab.b().ifname,
            "--address",
            &format!("{}/24", r.client_addr),
        ]);
    }
    println!(
        "== {} server at {listen} ({} thread(s)), {} client ({} thread(s)): {} connections, {:?}",
        r.server_stack, r.threads, r.client_stack, r.client_threads, args.connections, duration
    );
    let status = load.status().context("running surge load")?;
    drop(server);
    ensure!(
        status.success(),
        "surge load ({} client, {} server) failed ({status})",
        r.client_stack,
        r.server_stack
    );
    read_json(&json)
}

fn read_json(path: &Path) -> anyhow::Result<Value> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))
}

fn num(v: &Value, path: &[&str]) -> f64 {
    path.iter()
        .try_fold(v, |v, k| v.get(*k))
        .and_then(Value::as_f64)
        .unwrap_or(f64::NAN)
}

/// The side-by-side table.
fn print_comparison(surge: &Value, kernel: &Value, headers: [&str; 3], note: &str) {
    let rows: [(&str, &[&str], bool); 8] = [
        ("requests/s", &["requests_per_second"], true),
        ("p50 latency (us)", &["latency_us", "p50"], false),
        ("p90 latency (us)", &["latency_us", "p90"], false),
        ("p99 latency (us)", &["latency_us", "p99"], false),
        ("p99.9 latency (us)", &["latency_us", "p99_9"], false),
        ("max latency (us)", &["latency_us", "max"], false),
        ("answered", &["answered"], true),
        ("errors", &["errors_total"], false),
    ];
    println!();
    println!(
        "{:<20} {:>14} {:>14} {:>14}",
        "", headers[0], headers[1], headers[2]
    );
    for (name, key, _) in rows {
        let (s, k) = (num(surge, key), num(kernel, key));
        let ratio = if k > 0.0 {
            format!("{:.2}x", s / k)
        } else {
            "-".to_owned()
        };
        println!("{name:<20} {s:>14.1} {k:>14.1} {ratio:>14}");
    }
    println!("({note}; latency is from the intended send time)");
}

/// Runs `surge demo`.
pub fn run(args: DemoArgs) -> anyhow::Result<()> {
    surge_lab::require_root()?;
    let duration = load_duration(
        args.duration,
        std::env::var(DURATION_VARIABLE).ok().as_deref(),
    )?;
    ensure!(
        args.connections > 0 && args.queues > 0,
        "connections and queues must be at least 1"
    );
    std::fs::create_dir_all(&args.results)
        .with_context(|| format!("creating {}", args.results.display()))?;
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = Arc::clone(&stop);
        // The children get the same SIGINT; the lab goes when `lab` drops below.
        let _ = ctrlc::set_handler(move || stop.store(true, Ordering::Relaxed));
    }
    let started = Instant::now();

    // One lab with `queues` queues on each veth, one engine (or thread) per queue.
    let mut spec = LabSpec::unique("demo", Topology::Pair);
    spec.queues = args.queues;
    println!(
        "building lab {} (veth pair, {} queues, 198.18.0.0/24)",
        spec.name, spec.queues
    );
    let lab = Lab::up(&spec).context("building the demo lab")?;
    let (kernel_a, kernel_b) = (lab.a().addr.to_string(), lab.b().addr.to_string());
    let q = args.queues;
    // Part 1: both ends on surge against both ends on the kernel.
    let surge_both = Round {
        name: "surge-surge",
        server_stack: "surge",
        server_addr: SURGE_ADDR,
        client_stack: "surge",
        client_addr: SURGE_CLIENT_ADDR,
        threads: q,
        client_threads: q,
    };
    let surge_both = round(&lab, &args, duration, &surge_both, &stop)?;
    ensure!(!stop.load(Ordering::Relaxed), "interrupted");
    let kernel_both = Round {
        name: "kernel-kernel",
        server_stack: "kernel",
        server_addr: &kernel_a,
        client_stack: "kernel",
        client_addr: &kernel_b,
        threads: q,
        client_threads: q,
    };
    let kernel_both = round(&lab, &args, duration, &kernel_both, &stop)?;
    ensure!(!stop.load(Ordering::Relaxed), "interrupted");

    // Part 2: the servers alone under the same kernel client.
    let surge_server = Round {
        name: "surge-server",
        server_stack: "surge",
        server_addr: SURGE_ADDR,
        client_stack: "kernel",
        client_addr: "",
        threads: q,
        client_threads: 1,
    };
    let surge_server = round(&lab, &args, duration, &surge_server, &stop)?;
    ensure!(!stop.load(Ordering::Relaxed), "interrupted");
    let kernel_server = Round {
        name: "kernel-server",
        server_stack: "kernel",
        server_addr: &kernel_a,
        client_stack: "kernel",
        client_addr: "",
        threads: q,
        client_threads: 1,
    };
    let kernel_server = round(&lab, &args, duration, &kernel_server, &stop)?;
    lab.down().context("removing the demo lab")?;

    print_comparison(
        &surge_both,
        &kernel_both,
        ["surge<->surge", "kernel<->kernel", "surge/kernel"],
        &format!(
            "client and server on the same stack, {} queues, same veth pair",
            args.queues
        ),
    );
    print_comparison(
        &surge_server,
        &kernel_server,
        ["surge server", "kernel server", "surge/kernel"],
        &format!(
            "same kernel client in host B, {} queues, same veth pair",
            args.queues
        ),
    );
    let charts = [
        (
            "both-ends",
            "Latency by percentile: both ends on one stack",
            [
                ("surge-surge", "surge <-> surge"),
                ("kernel-kernel", "kernel <-> kernel"),
            ],
        ),
        (
            "servers",
            "Latency by percentile: surge's and the kernel's server, same kernel client",
            [
                ("surge-server", "surge server"),
                ("kernel-server", "kernel server"),
            ],
        ),
    ];
    for (name, title, runs) in charts {
        let runs = runs
            .iter()
            .map(|(file, label)| {
                let path = args.results.join(file).with_extension("hgrm");
                let text = std::fs::read_to_string(&path)
                    .with_context(|| format!("reading {}", path.display()))?;
                Ok(PercentileRun {
                    label: (*label).to_owned(),
                    rows: parse_hgrm(&text).with_context(|| format!("{}", path.display()))?,
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        write_percentiles(&args.results.join(format!("{name}.png")), title, &runs)?;
    }
    println!(
        "reports: {}/{{surge-surge,kernel-kernel,surge-server,kernel-server}}.{{json,hgrm,png}}; \
         charts side by side: {}/{{both-ends,servers}}.png; demo took {:.1} s; lab removed",
        args.results.display(),
        args.results.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duration_comes_from_the_flag_then_the_variable_then_the_default() {
        let one = Duration::from_secs(1);
        assert_eq!(load_duration(Some(one), Some("9")).ok(), Some(one));
        assert_eq!(
            load_duration(None, Some("0.5")).ok(),
            Some(Duration::from_millis(500))
        );
        assert_eq!(load_duration(None, None).ok(), Some(DEFAULT_DURATION));
        for bad in ["", "x", "0", "-1", "inf", "NaN", "3601"] {
            assert!(load_duration(None, Some(bad)).is_err(), "{bad:?}");
        }
    }
}

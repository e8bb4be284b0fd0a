//! `surge demo`: the README's first command. Builds a lab (a veth pair with two
//! queues in two fresh namespaces), serves request/response on surge's stack on
//! one side and loads it from the other with the kernel's stack, then runs the
//! same load against a server on the kernel's stack on the same veth pair, and
//! prints both reports side by side with the ratio. Files land in `results/`;
//! the lab is removed on exit, on failure and on Ctrl-C.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use clap::Args;
use serde_json::Value;
use surge_lab::{HostId, Lab, LabSpec, Topology, parse_duration};

/// surge's address in host A (the kernel of A keeps its own, 198.18.0.1).
const SURGE_ADDR: &str = "198.18.0.10";
const PORT: u16 = 8080;

/// Arguments of `surge demo`.
#[derive(Args, Debug, Clone)]
pub struct DemoArgs {
    /// How long each load runs (after a 1 s warm-up).
    #[arg(short = 'd', long, default_value = "5s", value_parser = parse_duration)]
    pub duration: Duration,
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

/// A child process killed (SIGTERM, then SIGKILL) when dropped.
struct Reaped(Child);

impl Drop for Reaped {
    fn drop(&mut self) {
        // SIGTERM lets `surge serve` print its summary and detach its XDP program.
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
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

/// Runs one round: a server on `stack` in host A, the load from host B.
fn round(
    lab: &Lab,
    args: &DemoArgs,
    stack: &str,
    addr: &str,
    stop: &AtomicBool,
) -> anyhow::Result<Value> {
    let exe = exe()?;
    let a = lab.a();
    let threads = args.queues.to_string();
    let listen = format!("{addr}:{PORT}");
    let mut serve = lab.command(HostId::A, &exe)?;
    serve.args([
        "serve",
        "--stack",
        stack,
        "--listen",
        &listen,
        "--mode",
        "rr",
        "--threads",
        &threads,
        "--quiet",
    ]);
    if stack == "surge" {
        serve.args(["--interface", &a.ifname, "--address", &format!("{addr}/24")]);
    }
    let server = Reaped(
        serve
            .stdout(Stdio::null())
            .spawn()
            .with_context(|| format!("starting surge serve --stack {stack}"))?,
    );
    wait_listening(lab, addr, stop)?;
    let prefix = args.results.join(stack);
    let json = prefix.with_extension("json");
    let path = |ext: &str| prefix.with_extension(ext).to_string_lossy().into_owned();
    let mut load = lab.command(HostId::B, &exe)?;
    load.args([
        "load",
        "--stack",
        "kernel",
        "--target",
        &listen,
        "--mode",
        "rr",
        "-c",
        &args.connections.to_string(),
        "-t",
        "1",
        "-d",
        &format!("{}ms", args.duration.as_millis()),
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
    println!(
        "== {stack} server at {listen}, kernel client: {} connections, {:?}",
        args.connections, args.duration
    );
    let status = load.status().context("running surge load")?;
    drop(server);
    ensure!(
        status.success(),
        "surge load against the {stack} server failed ({status})"
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
fn print_comparison(surge: &Value, kernel: &Value) {
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
        "", "surge server", "kernel server", "surge/kernel"
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
    println!(
        "(same kernel client in host B, same veth pair; latency is from the intended send time)"
    );
}

/// Runs `surge demo`.
pub fn run(args: DemoArgs) -> anyhow::Result<()> {
    surge_lab::require_root()?;
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
    let mut spec = LabSpec::unique("demo", Topology::Pair);
    spec.queues = args.queues;
    let started = Instant::now();
    println!(
        "building lab {} (veth pair, {} queues, 198.18.0.0/24)",
        spec.name, spec.queues
    );
    let lab = Lab::up(&spec).context("building the demo lab")?;
    let kernel_addr = lab.a().addr.to_string();
    let surge = round(&lab, &args, "surge", SURGE_ADDR, &stop)?;
    ensure!(!stop.load(Ordering::Relaxed), "interrupted");
    let kernel = round(&lab, &args, "kernel", &kernel_addr, &stop)?;
    print_comparison(&surge, &kernel);
    lab.down().context("removing the demo lab")?;
    println!(
        "reports: {}/{{surge,kernel}}.{{json,hgrm,png}}; demo took {:.1} s; lab removed",
        args.results.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

//! `surge serve`: echo, discard, HTTP/1.1, request/response and stream servers, with a live
//! status line, a summary and a service-time histogram.

pub mod http;
pub mod sockperf;
mod worker;

use std::collections::BTreeMap;
use std::io::Write as _;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use clap::{Args, ValueEnum};
use serde::Serialize;
use surge_lab::parse_duration;

use crate::backend::kernel::KernelBackend;
use crate::backend::surge::SurgeBackend;
use crate::backend::{Backend, StackChoice};
use crate::report::{LatencySet, Summary, format_bytes};
use worker::{ServeConfig, ServeStats, bind, serve_thread};

/// What the server does with a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ServeMode {
    /// Send back what arrives.
    Echo,
    /// Read and drop.
    Discard,
    /// HTTP/1.1 keep-alive (and close on request) with a fixed-size body.
    Http,
    /// Fixed-size requests, fixed-size responses (netperf TCP_RR).
    Rr,
    /// Bulk: first byte `U` = the client sends (we sink), `D` = we send (source).
    Stream,
    /// sockperf's TCP ping-pong: each ping answered as `sockperf server` does.
    Sockperf,
}

impl ServeMode {
    /// The mode's name, as typed on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Self::Echo => "echo",
            Self::Discard => "discard",
            Self::Http => "http",
            Self::Rr => "rr",
            Self::Stream => "stream",
            Self::Sockperf => "sockperf",
        }
    }
}

/// `surge serve`: answer `surge load` (or any client).
#[derive(Args, Debug, Clone)]
pub struct ServeArgs {
    /// The TCP stack to run on.
    #[arg(long, value_enum, default_value = "kernel")]
    pub stack: StackChoice,
    /// Address to listen on, ADDR:PORT.
    #[arg(long)]
    pub listen: SocketAddr,
    /// What to do with connections.
    #[arg(long, value_enum, default_value = "http")]
    pub mode: ServeMode,
    /// Serving threads (default: kernel, one per core; surge, one per RX queue of --interface).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Response size in bytes (rr; http body). Default 64.
    #[arg(long)]
    pub response_size: Option<usize>,
    /// Request size in bytes (rr). Default 64.
    #[arg(long)]
    pub request_size: Option<usize>,
    /// Stop after this long (default: until Ctrl-C or SIGTERM).
    #[arg(long, value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Write the summary as JSON here on exit.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// No per-second status lines.
    #[arg(short, long)]
    pub quiet: bool,
    /// Options of `--stack surge`.
    #[command(flatten)]
    pub surge: crate::backend::surge::SurgeArgs,
}

/// What `surge serve` reports on exit.
#[derive(Debug, Serialize)]
pub struct ServeSummary {
    /// Stack name.
    pub stack: String,
    /// Listening address.
    pub listen: String,
    /// Mode.
    pub mode: ServeMode,
    /// Threads.
    pub threads: usize,
    /// How long it served, seconds.
    pub duration_s: f64,
    /// Connections accepted.
    pub connections: u64,
    /// Connections closed.
    pub connections_closed: u64,
    /// Requests answered (rr, http).
    pub requests: u64,
    /// Bytes read.
    pub bytes_received: u64,
    /// Bytes written.
    pub bytes_sent: u64,
    /// Checked streams (`load --verify-bytes`) received whose SHA-256 matched.
    pub streams_verified: u64,
    /// Checked streams received whose SHA-256 or length did not match.
    pub streams_mismatched: u64,
    /// Errors by kind (`io`: reset or other I/O error; `malformed`; `accept`).
    pub errors: BTreeMap<&'static str, u64>,
    /// Request arrival to response queued, nanoseconds (rr, http).
    pub service_time_ns: Summary,
    /// The stack's own counters at exit, as `surge load --json` reports them (`--stack
    /// surge`: every engine and TCP counter and drops by reason; the kernel: its
    /// namespace's TCP counters from `/proc/net/snmp` and `/proc/net/netstat`).
    pub stack_counters: BTreeMap<String, u64>,
}

/// Sums the counters of every thread.
fn totals(stats: &[ServeStats]) -> [u64; 10] {
    let mut t = [0u64; 10];
    for s in stats {
        for (slot, counter) in t.iter_mut().zip([
            &s.accepted,
            &s.closed,
            &s.requests,
            &s.bytes_received,
            &s.bytes_sent,
            &s.errors_io,
            &s.errors_malformed,
            &s.errors_accept,
            &s.streams_verified,
            &s.streams_mismatched,
        ]) {
            *slot += counter.load(Ordering::Relaxed);
        }
    }
    t
}

/// Runs `surge serve`.
pub fn run(args: ServeArgs, stop: Arc<AtomicBool>) -> anyhow::Result<()> {
    if let Some(threads) = args.threads {
        ensure!(
            (1..=1024).contains(&threads),
            "--threads must be between 1 and 1024"
        );
    }
    if args.request_size.is_some() {
        ensure!(
            args.mode == ServeMode::Rr,
            "--request-size applies to --mode rr only"
        );
    }
    if args.response_size.is_some() {
        ensure!(
            matches!(args.mode, ServeMode::Rr | ServeMode::Http),
            "--response-size applies to --mode rr and http only"
        );
    }
    let request_size = args.request_size.unwrap_or(64);
    let response_size = args.response_size.unwrap_or(64);
    ensure!(
        (1..=64 << 20).contains(&request_size),
        "--request-size must be between 1 and 64 MiB"
    );
    ensure!(
        response_size <= 64 << 20 && (response_size > 0 || args.mode == ServeMode::Http),
        "--response-size must be between 1 and 64 MiB (0 allowed for http)"
    );
    if let Some(d) = args.duration {
        ensure!(!d.is_zero(), "--duration must be positive");
    }
    let config = ServeConfig {
        listen: args.listen,
        mode: args.mode,
        request_size,
        response_size,
    };
    match args.stack {
        StackChoice::Kernel => {
            if args.surge.any() {
                bail!(
                    "--interface, --address, --gateway, --netns, --local-port-range, --ecn and --busy-poll apply to --stack surge only"
                );
            }
            let backend = KernelBackend::new(args.surge.congestion).context("--congestion")?;
            let threads = args.threads.unwrap_or_else(crate::backend::available_cores);
            serve(&backend, &args, &config, threads, &stop)
        }
        StackChoice::Surge => {
            let backend = SurgeBackend::new(args.surge.options(vec![args.listen.port()])?)?;
            // One engine per RX queue: by default, as many threads as the interface has queues.
            let threads = args.threads.unwrap_or_else(|| backend.queues());
            ensure!(
                threads <= backend.queues(),
                "--threads {threads}: {} has {} RX queue(s), and surge runs one engine per queue",
                args.surge.interface.as_deref().unwrap_or("?"),
                backend.queues()
            );
            backend.start_idle_engines(threads)?;
            serve(&backend, &args, &config, threads, &stop)
        }
    }
}

/// Serves on `backend` until stopped, then prints (and writes) the summary.
fn serve<B: Backend>(
    backend: &B,
    args: &ServeArgs,
    config: &ServeConfig,
    threads: usize,
    stop: &AtomicBool,
) -> anyhow::Result<()> {
    // Bind every listener first, so a bind error is one clear line and nothing runs.
    let mut workers = Vec::new();
    for index in 0..threads {
        let mut worker = backend
            .worker(index)
            .with_context(|| format!("starting serve thread {index}"))?;
        let listener = bind(&mut worker, config.listen)
            .with_context(|| format!("listening on {}", config.listen))?;
        workers.push((worker, listener));
    }
    let stats: Vec<ServeStats> = (0..threads).map(|_| ServeStats::default()).collect();
    let start = Instant::now();
    eprintln!(
        "surge serve: listening on {} (mode {}, {threads} threads, {} stack)",
        config.listen,
        config.mode.name(),
        backend.name()
    );
    let histograms = std::thread::scope(|scope| -> anyhow::Result<Vec<_>> {
        let handles: Vec<_> = workers
            .into_iter()
            .zip(&stats)
            .map(|((worker, listener), s)| {
                scope.spawn(move || serve_thread(config, worker, listener, s, stop))
            })
            .collect();
        let mut last = totals(&stats);
        let mut next_status = start + Duration::from_secs(1);
        // Bounded by --duration or the stop flag (Ctrl-C / SIGTERM).
        while !stop.load(Ordering::Relaxed) && !handles.iter().any(|h| h.is_finished()) {
            std::thread::sleep(Duration::from_millis(50));
            let now = Instant::now();
            if args
                .duration
                .is_some_and(|d| now.duration_since(start) >= d)
            {
                stop.store(true, Ordering::Relaxed);
            }
            if now >= next_status {
                next_status += Duration::from_secs(1);
                let t = totals(&stats);
                if !args.quiet {
                    let mut err = std::io::stderr().lock();
                    let _ = writeln!(
                        err,
                        "[{:>4}s] conns {:>6} open {:>6}  {:>9} req/s  read {}/s  written {}/s  errors {}",
                        now.duration_since(start).as_secs(),
                        t[0],
                        t[0].saturating_sub(t[1]),
                        t[2] - last[2],
                        format_bytes((t[3] - last[3]) as f64),
                        format_bytes((t[4] - last[4]) as f64),
                        t[5] + t[6] + t[7]
                    );
                }
                last = t;
            }
        }
        stop.store(true, Ordering::Relaxed);
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(std::io::Error::other("a serve thread panicked")))
                    .context("serve thread")
            })
            .collect()
    })?;
    let mut service = LatencySet::default().latency;
    for h in &histograms {
        let _ = service.add(h);
    }
    let t = totals(&stats);
    let mut errors = BTreeMap::new();
    for (name, n) in [("io", t[5]), ("malformed", t[6]), ("accept", t[7])] {
        if n > 0 {
            errors.insert(name, n);
        }
    }
    let summary = ServeSummary {
        stack: backend.name().to_string(),
        listen: config.listen.to_string(),
        mode: config.mode,
        threads,
        duration_s: start.elapsed().as_secs_f64(),
        connections: t[0],
        connections_closed: t[1],
        requests: t[2],
        bytes_received: t[3],
        bytes_sent: t[4],
        streams_verified: t[8],
        streams_mismatched: t[9],
        errors,
        service_time_ns: Summary::of(&service),
        stack_counters: backend.counters(),
    };
    print_summary(&summary);
    if let Some(path) = &args.json {
        let text = serde_json::to_string_pretty(&summary)?;
        std::fs::write(path, text + "\n").with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// The summary printed on exit.
fn print_summary(s: &ServeSummary) {
    println!(
        "surge serve ({}, {} stack) on {} for {:.2}s",
        s.mode.name(),
        s.stack,
        s.listen,
        s.duration_s
    );
    println!(
        "  connections {} (closed {}), requests {}, read {}, written {}",
        s.connections,
        s.connections_closed,
        s.requests,
        format_bytes(s.bytes_received as f64),
        format_bytes(s.bytes_sent as f64)
    );
    let errors = if s.errors.is_empty() {
        "none".to_string()
    } else {
        s.errors
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    println!("  errors: {errors}");
    // The headline counters the stack has (the kernel's report has no drop reasons).
    let headline: Vec<String> = [
        ("retransmitted segments", "tcp_RetransSegs"),
        ("frames dropped", "drops_total"),
        ("kernel XDP drops", "xdp_rx_dropped"),
        ("SYN cookies", "syn_cookies_sent"),
        ("listen overflows", "listen_overflows"),
    ]
    .iter()
    .filter_map(|(label, key)| s.stack_counters.get(*key).map(|n| format!("{label} {n}")))
    .collect();
    if !headline.is_empty() {
        println!("  stack: {}", headline.join(", "));
    }
    let st = &s.service_time_ns;
    if st.count > 0 {
        println!(
            "  service time: p50 {:.2}us  p99 {:.2}us  p99.9 {:.2}us  max {:.2}us ({} samples)",
            st.p50 as f64 / 1000.0,
            st.p99 as f64 / 1000.0,
            st.p99_9 as f64 / 1000.0,
            st.max as f64 / 1000.0,
            st.count
        );
    }
}

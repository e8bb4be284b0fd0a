//! `surge-bench engine`: 64-byte echo request/response, closed loop, with one
//! connection and with 50.
//!
//! 1. Over a lab veth pair: the same kernel client (host B) against surge's
//!    in-loop engine on AF_XDP (host A, 198.18.0.10) and against a kernel echo
//!    server (host A, 198.18.0.1), server and client threads pinned to the same
//!    cores in both cases.
//! 2. On one core, both ends in one thread over the in-memory link
//!    (`surge_datapath::PipeDevice`): two surge engines, and two smoltcp
//!    interfaces over the same pipe.
//!
//! Every pair of contenders runs back to back in each round (order rotated
//! every round); the table shows medians over rounds and the median of the
//! per-round ratios.

mod churn;
mod kernel;
mod lab;
mod memory;
mod smoltcp_echo;
mod xthread;

use std::{
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use hdrhistogram::Histogram;
use surge_datapath::Device;
use surge_stack::{engine::Engine, errno::Errno, socket::SocketHandle};

/// The request and the response: 64 bytes of payload.
pub(crate) const MESSAGE_LEN: usize = 64;
/// The TCP port every echo server listens on.
pub(crate) const ECHO_PORT: u16 = 7007;

/// Values by socket, indexed by the socket's slot (`SocketHandle::id`): a direct
/// lookup, so the benchmark loops add no hashing to the stacks' cost per request (a
/// std `HashMap` cost them 4% of the instructions per connection under churn).
pub(crate) struct HandleMap<V>(Vec<Option<(SocketHandle, V)>>);

impl<V> HandleMap<V> {
    pub(crate) fn new() -> Self {
        HandleMap(Vec::new())
    }

    pub(crate) fn insert(&mut self, handle: SocketHandle, value: V) {
        let slot = handle.id().0 as usize;
        if self.0.len() <= slot {
            self.0.resize_with(slot + 1, || None);
        }
        self.0[slot] = Some((handle, value));
    }

    pub(crate) fn get(&self, handle: SocketHandle) -> Option<&V> {
        match self.0.get(handle.id().0 as usize) {
            Some(Some((h, v))) if *h == handle => Some(v),
            _ => None,
        }
    }

    pub(crate) fn get_mut(&mut self, handle: SocketHandle) -> Option<&mut V> {
        match self.0.get_mut(handle.id().0 as usize) {
            Some(Some((h, v))) if *h == handle => Some(v),
            _ => None,
        }
    }

    pub(crate) fn remove(&mut self, handle: SocketHandle) -> Option<V> {
        let entry = self.0.get_mut(handle.id().0 as usize)?;
        if entry.as_ref().is_some_and(|(h, _)| *h == handle) {
            entry.take().map(|(_, v)| v)
        } else {
            None
        }
    }
}

/// Which parts to run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Part {
    /// Everything.
    All,
    /// Only the lab (kernel client against surge and against the kernel).
    Lab,
    /// Only the in-memory link (surge and smoltcp).
    Memory,
    /// Only surge <-> surge on the in-memory link (for profiling).
    SurgeMemory,
    /// Only smoltcp <-> smoltcp on the in-memory link.
    SmoltcpMemory,
    /// surge <-> surge on the in-memory link with a new connection per
    /// request (connect, 64-byte echo, the server closes): connection churn.
    SurgeChurn,
    /// The cross-thread API against the in-loop API: two runtimes on the
    /// in-memory link, an in-loop client, and an echo server either in the
    /// server's loop or on blocking threads through `runtime::TcpStream`.
    Xthread,
}

/// Arguments of `surge-bench engine`.
#[derive(clap::Args, Debug)]
pub struct EngineArgs {
    /// Measured seconds per case (after the warm-up).
    #[arg(long, default_value_t = 3.0)]
    seconds: f64,
    /// Warm-up seconds per case (requests run, not counted).
    #[arg(long, default_value_t = 0.5)]
    warmup: f64,
    /// Rounds (each runs every case once; medians are reported).
    #[arg(long, default_value_t = 3)]
    rounds: u32,
    /// Connection counts to run, comma-separated.
    #[arg(long, value_delimiter = ',', default_values_t = vec![1usize, 50])]
    connections: Vec<usize>,
    /// Which parts to run.
    #[arg(long, value_enum, default_value_t = Part::All)]
    part: Part,
    /// In-memory cases: stop after this many measured requests (the time limit
    /// still applies); for profiling with a fixed amount of work.
    #[arg(long)]
    requests: Option<u64>,
    /// Core of the server threads in the lab.
    #[arg(long, default_value_t = 0)]
    server_core: usize,
    /// Core of the client thread in the lab, and of the in-memory runs.
    #[arg(long, default_value_t = 1)]
    client_core: usize,
    /// Lab: the surge server sleeps this long when a poll found nothing to do
    /// (0: busy-poll; `surge serve` uses 20 on this shared machine).
    #[arg(long, default_value_t = 0)]
    surge_idle_us: u64,
    /// xthread: leave the cross-thread echo threads unpinned (the scheduler may
    /// run them on the client's core too) instead of on the server core.
    #[arg(long)]
    apps_float: bool,
    /// xthread: run only the in-loop server or only the cross-thread one (for
    /// profiling one of them).
    #[arg(long, value_enum)]
    only: Option<xthread::Server>,
}

/// How long one case runs and how much it measures.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Plan {
    pub(crate) warmup: Duration,
    pub(crate) measure: Duration,
    /// Stop after this many measured requests.
    pub(crate) max_requests: u64,
}

impl Plan {
    /// A hard limit for anything the case waits on (setup, threads).
    pub(crate) fn limit(&self) -> Duration {
        self.warmup + self.measure + Duration::from_secs(10)
    }
}

/// What one case measured.
#[derive(Clone, Debug)]
pub(crate) struct Outcome {
    /// Requests answered inside the measured window.
    pub(crate) requests: u64,
    /// Length of the measured window.
    pub(crate) seconds: f64,
    /// Latency of those requests, nanoseconds.
    pub(crate) latency: Histogram<u64>,
}

impl Outcome {
    pub(crate) fn rate(&self) -> f64 {
        self.requests as f64 / self.seconds.max(1e-9)
    }

    fn quantile_us(&self, q: f64) -> f64 {
        if self.latency.is_empty() {
            return f64::NAN;
        }
        self.latency.value_at_quantile(q) as f64 / 1000.0
    }

    pub(crate) fn p50_us(&self) -> f64 {
        self.quantile_us(0.50)
    }

    pub(crate) fn p99_us(&self) -> f64 {
        self.quantile_us(0.99)
    }
}

/// Counts answered requests and their latency inside the measured window.
pub(crate) struct Recorder {
    from: Instant,
    end: Instant,
    max_requests: u64,
    requests: u64,
    latency: Histogram<u64>,
    last: Instant,
}

impl Recorder {
    /// A recorder whose window opens `plan.warmup` after `start`.
    pub(crate) fn new(plan: &Plan, start: Instant) -> anyhow::Result<Self> {
        let from = start + plan.warmup;
        Ok(Self {
            from,
            end: from + plan.measure,
            max_requests: plan.max_requests,
            requests: 0,
            // 1 ns .. 60 s, 3 significant digits.
            latency: Histogram::new_with_bounds(1, 60_000_000_000, 3)
                .context("creating the latency histogram")?,
            last: from,
        })
    }

    /// A request sent at `sent` was answered at `now`.
    #[inline]
    pub(crate) fn answered(&mut self, sent: Instant, now: Instant) {
        if now >= self.from && now < self.end {
            let ns = now.saturating_duration_since(sent).as_nanos() as u64;
            self.latency.saturating_record(ns.max(1));
            self.requests += 1;
            self.last = now;
        }
    }

    /// The window is over (by time or by count).
    #[inline]
    pub(crate) fn done(&self, now: Instant) -> bool {
        now >= self.end || self.requests >= self.max_requests
    }

    /// The outcome; the window ends at `end` or at the last counted answer
    /// when the request budget ran out first.
    pub(crate) fn finish(self) -> Outcome {
        let close = if self.requests >= self.max_requests {
            self.last
        } else {
            self.end
        };
        Outcome {
            requests: self.requests,
            seconds: close.saturating_duration_since(self.from).as_secs_f64(),
            latency: self.latency,
        }
    }
}

/// One request/response on one connection, from the client's side.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Exchange {
    /// When the current request was started.
    pub(crate) sent_at: Instant,
    /// Bytes of the current request written so far.
    pub(crate) written: usize,
    /// Bytes of the current response read so far.
    pub(crate) read: usize,
    /// A request is outstanding.
    pub(crate) busy: bool,
}

impl Exchange {
    pub(crate) fn idle(now: Instant) -> Self {
        Self {
            sent_at: now,
            written: 0,
            read: 0,
            busy: false,
        }
    }

    /// Starts a new request at `now`.
    pub(crate) fn start(&mut self, now: Instant) {
        *self = Self {
            sent_at: now,
            written: 0,
            read: 0,
            busy: true,
        };
    }

    /// Checks `data` (just read) against the request; true when the whole
    /// response is in. Errors if the bytes are not an echo of the request.
    pub(crate) fn on_read(&mut self, data: &[u8]) -> anyhow::Result<bool> {
        let end = self.read + data.len();
        match REQUEST.get(self.read..end) {
            Some(expected) if expected == data => {}
            _ => bail!(
                "the echo is not the request ({} bytes after {})",
                data.len(),
                self.read
            ),
        }
        self.read = end;
        if end == MESSAGE_LEN {
            self.busy = false;
            return Ok(true);
        }
        Ok(false)
    }

    /// The part of the request still to write.
    pub(crate) fn unwritten(&self) -> &'static [u8] {
        REQUEST.get(self.written..).unwrap_or_default()
    }

    /// The closed-loop client's step on connection `c` of `engine` at `now`: reads what
    /// has come of the echo (recording the request once it is whole), then starts the
    /// next request and writes what fits.
    pub(crate) fn drive<D: Device>(
        &mut self,
        engine: &mut Engine<D>,
        c: SocketHandle,
        buf: &mut [u8],
        recorder: &mut Recorder,
        now: Instant,
    ) -> anyhow::Result<()> {
        if self.busy {
            loop {
                let want = MESSAGE_LEN - self.read;
                match engine.recv(c, &mut buf[..want]) {
                    Ok(0) => bail!("the server closed a connection"),
                    Ok(n) => {
                        if self.on_read(&buf[..n])? {
                            recorder.answered(self.sent_at, now);
                            break;
                        }
                    }
                    Err(Errno::EAGAIN) => break,
                    Err(e) => return Err(e).context("client recv"),
                }
            }
        }
        if !self.busy {
            self.start(now);
        }
        while self.written < MESSAGE_LEN {
            match engine.send(c, self.unwritten()) {
                Ok(n) => self.written += n,
                Err(Errno::EAGAIN) => break,
                Err(e) => return Err(e).context("client send"),
            }
        }
        Ok(())
    }
}

/// Reads what `conn` has and sends it back; false once the connection is done
/// (then it is closed). The echo server's step, on the lab and in memory.
pub(crate) fn surge_echo_once<D: Device>(
    engine: &mut Engine<D>,
    conn: SocketHandle,
    pending: &mut Vec<u8>,
    buf: &mut [u8],
) -> bool {
    loop {
        while !pending.is_empty() {
            match engine.send(conn, pending) {
                Ok(n) => {
                    pending.drain(..n);
                }
                Err(Errno::EAGAIN) => return true,
                Err(_) => {
                    let _ = engine.close(conn);
                    return false;
                }
            }
        }
        match engine.recv(conn, buf) {
            Ok(0) => {
                let _ = engine.close(conn);
                return false;
            }
            // A read shorter than the buffer emptied the receive queue: no second
            // read to learn so (nginx's `ngx_unix_recv` rule; the smoltcp server's
            // `can_recv` check is the same knowledge).
            Ok(n) => match engine.send(conn, &buf[..n]) {
                Ok(sent) if sent == n && n < buf.len() => return true,
                Ok(sent) if sent == n => {}
                Ok(sent) => pending.extend_from_slice(&buf[sent..n]),
                Err(Errno::EAGAIN) => pending.extend_from_slice(&buf[..n]),
                Err(_) => {
                    let _ = engine.close(conn);
                    return false;
                }
            },
            Err(Errno::EAGAIN) => return true,
            Err(_) => {
                let _ = engine.close(conn);
                return false;
            }
        }
    }
}

/// The request every client sends.
pub(crate) const REQUEST: [u8; MESSAGE_LEN] = {
    let mut r = [0u8; MESSAGE_LEN];
    let mut i = 0;
    while i < MESSAGE_LEN {
        r[i] = (i as u8).wrapping_mul(37).wrapping_add(11);
        i += 1;
    }
    r
};

/// Pins the calling thread to `core`.
pub(crate) fn pin_to(core: usize) -> anyhow::Result<()> {
    let mut set = nix::sched::CpuSet::new();
    set.set(core)
        .with_context(|| format!("core {core} is out of range"))?;
    nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &set)
        .with_context(|| format!("pinning to core {core}"))
}

/// CPUs of the machine, read before any thread is pinned.
static CPUS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// One row of the table: a connection count, surge's runs and the other
/// contender's runs (one per round).
pub(crate) struct Row {
    pub(crate) conns: usize,
    pub(crate) surge: Vec<Outcome>,
    pub(crate) other: Vec<Outcome>,
}

impl Row {
    /// Empty rows, one per connection count.
    pub(crate) fn for_each(connections: &[usize]) -> Vec<Row> {
        connections
            .iter()
            .map(|&conns| Row {
                conns,
                surge: Vec::new(),
                other: Vec::new(),
            })
            .collect()
    }
}

/// The rows of the final table.
#[derive(Default)]
struct Results {
    /// Other = the kernel echo server.
    lab: Vec<Row>,
    /// Other = smoltcp.
    memory: Vec<Row>,
    /// A new connection per request; no other contender yet.
    churn: Vec<Row>,
}

/// Runs the engine benchmark.
pub fn run(args: EngineArgs) -> anyhow::Result<()> {
    if args.rounds == 0 || args.connections.is_empty() || args.connections.contains(&0) {
        bail!("--rounds and every --connections value must be at least 1");
    }
    if !(args.seconds > 0.0 && args.seconds <= 600.0 && (0.0..=60.0).contains(&args.warmup)) {
        bail!("--seconds must be in (0, 600] and --warmup in [0, 60]");
    }
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    CPUS.store(cpus, Ordering::Relaxed);
    if args.server_core >= cpus || args.client_core >= cpus {
        bail!("--server-core and --client-core must be below {cpus} (the CPUs here)");
    }
    let plan = Plan {
        warmup: Duration::from_secs_f64(args.warmup),
        measure: Duration::from_secs_f64(args.seconds),
        max_requests: args.requests.unwrap_or(u64::MAX).max(1),
    };
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = Arc::clone(&stop);
        // Ctrl-C only raises the flag: every loop checks it, and the lab is
        // removed by its drop guard on the way out.
        ctrlc::set_handler(move || stop.store(true, Ordering::Relaxed))
            .context("installing the Ctrl-C handler")?;
    }
    let mut results = Results::default();
    let lab_part = matches!(args.part, Part::All | Part::Lab);
    let surge_memory = matches!(args.part, Part::All | Part::Memory | Part::SurgeMemory);
    let smoltcp_memory = matches!(args.part, Part::All | Part::Memory | Part::SmoltcpMemory);
    let interrupted = || stop.load(Ordering::Relaxed);
    if lab_part {
        let lab = lab::run(&args, &plan, &stop);
        if interrupted() {
            bail!("interrupted; the lab was removed");
        }
        results.lab = lab?;
    }
    if surge_memory || smoltcp_memory {
        let memory = run_memory(&args, &plan, &stop, surge_memory, smoltcp_memory);
        if interrupted() {
            bail!("interrupted");
        }
        results.memory = memory?;
    }
    if args.part == Part::SurgeChurn {
        pin_to(args.client_core)?;
        let mut rows = Row::for_each(&args.connections);
        for round in 0..args.rounds {
            for row in &mut rows {
                if interrupted() {
                    bail!("interrupted");
                }
                let o = churn::surge_churn(row.conns, &plan, &stop)
                    .with_context(|| format!("surge churn in memory, {} slot(s)", row.conns))?;
                report_case(
                    round,
                    "memory surge<->surge, a connection per request",
                    row.conns,
                    &o,
                );
                row.surge.push(o);
            }
        }
        results.churn = rows;
    }
    if args.part == Part::Xthread {
        return run_xthread(&args, &plan, &stop);
    }
    print_table(&args, &results);
    Ok(())
}

/// The cross-thread part: every round, each connection count, the in-loop
/// server then the cross-thread one (order rotated every round).
fn run_xthread(args: &EngineArgs, plan: &Plan, stop: &AtomicBool) -> anyhow::Result<()> {
    use xthread::Server;
    // (in-loop runs, cross-thread runs, allocations per request of each) per count.
    let mut rows = Row::for_each(&args.connections);
    let mut allocations: Vec<(Vec<f64>, Vec<f64>)> =
        vec![(Vec::new(), Vec::new()); args.connections.len()];
    let mut switches: Vec<(Vec<f64>, Vec<f64>)> =
        vec![(Vec::new(), Vec::new()); args.connections.len()];
    // The handoff floor of each count, every round (see `xthread::handoff_floor`).
    let mut floors: Vec<Vec<xthread::HandoffFloor>> =
        (0..args.connections.len()).map(|_| Vec::new()).collect();
    for round in 0..args.rounds {
        for (((row, allocs), switched), floor) in rows
            .iter_mut()
            .zip(&mut allocations)
            .zip(&mut switches)
            .zip(&mut floors)
        {
            let mut order = [Server::InLoop, Server::CrossThread];
            if round % 2 == 1 {
                order.reverse();
            }
            for server in order {
                if args.only.is_some_and(|only| only != server) {
                    continue;
                }
                if stop.load(Ordering::Relaxed) {
                    bail!("interrupted");
                }
                let o = xthread::xthread_echo(
                    server,
                    row.conns,
                    plan,
                    stop,
                    args.server_core,
                    args.client_core,
                    args.apps_float,
                )
                .with_context(|| format!("{server:?} server, {} connection(s)", row.conns))?;
                let what = match server {
                    Server::InLoop => "xthread bench, in-loop server",
                    Server::CrossThread => "xthread bench, cross-thread blocking server",
                };
                report_case(round, what, row.conns, &o.outcome);
                eprintln!(
                    "    per request (whole process): {:.3} allocations, {:.2} context switches",
                    o.allocations_per_request, o.switches_per_request
                );
                match server {
                    Server::InLoop => {
                        row.other.push(o.outcome);
                        allocs.0.push(o.allocations_per_request);
                        switched.0.push(o.switches_per_request);
                    }
                    Server::CrossThread => {
                        row.surge.push(o.outcome);
                        allocs.1.push(o.allocations_per_request);
                        switched.1.push(o.switches_per_request);
                    }
                }
            }
            if args.only.is_none() && !stop.load(Ordering::Relaxed) {
                let f = xthread::handoff_floor(row.conns, args.server_core, plan, stop)
                    .with_context(|| format!("handoff floor, {} thread(s)", row.conns))?;
                eprintln!(
                    "  round {round}: xthread bench, handoff floor, {} app thread(s) on core {}: {:.0} handoffs/s, \
                     {:.2} context switches per handoff",
                    row.conns, args.server_core, f.rate, f.switches_per_handoff
                );
                floor.push(f);
            }
        }
    }
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!();
    println!(
        "machine: {} CPUs, load average {}",
        CPUS.load(Ordering::Relaxed),
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    println!(
        "surge-bench engine --part xthread: 64-byte echo, in-memory link, two runtimes; client = in-loop handler \
         on core {}; server engine on core {}, echo in its loop or on blocking threads (one per connection, \
         core {}); {} s measured after {} s warm-up, median of {} round(s)",
        args.client_core,
        args.server_core,
        args.server_core,
        args.seconds,
        args.warmup,
        args.rounds
    );
    println!(
        "handoff floor: the same core with no network, a loop thread handing a token to as many app threads \
         as connections and waiting for the answers (park/unpark, as the stream rings do); ceiling = what \
         in-loop requests plus one such handoff each would give, over in-loop (per round, median)"
    );
    println!();
    println!(
        "| conns | in-loop req/s | cross-thread req/s | cross-thread / in-loop | per-round ratios | in-loop p99 µs | cross-thread p99 µs | allocations/request in-loop | allocations/request cross-thread | context switches/request in-loop | context switches/request cross-thread | handoff floor handoffs/s | switches/handoff | ceiling / in-loop | cross-thread / ceiling |"
    );
    println!(
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"
    );
    for (((row, allocs), switched), floor) in
        rows.iter().zip(&allocations).zip(&switches).zip(&floors)
    {
        // Per round: in-loop requests each followed by one floor handoff.
        let ceilings: Vec<f64> = row
            .other
            .iter()
            .zip(floor)
            .map(|(l, f)| f.rate / (l.rate() + f.rate))
            .collect();
        let of_ceiling: Vec<f64> = row
            .surge
            .iter()
            .zip(&row.other)
            .zip(floor)
            .map(|((x, l), f)| x.rate() / (1.0 / (1.0 / l.rate() + 1.0 / f.rate)))
            .collect();
        let (x_rate, _, x_p99) = medians(&row.surge);
        let (l_rate, _, l_p99) = medians(&row.other);
        let per_round: Vec<String> = row
            .surge
            .iter()
            .zip(&row.other)
            .map(|(x, l)| format!("{:.2}", x.rate() / l.rate()))
            .collect();
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            row.conns,
            fmt(l_rate, 0),
            fmt(x_rate, 0),
            ratio(paired(&row.surge, &row.other, Outcome::rate)),
            per_round.join(" "),
            fmt(l_p99, 1),
            fmt(x_p99, 1),
            fmt(median(allocs.0.clone()), 3),
            fmt(median(allocs.1.clone()), 3),
            fmt(median(switched.0.clone()), 2),
            fmt(median(switched.1.clone()), 2),
            fmt(median(floor.iter().map(|f| f.rate).collect()), 0),
            fmt(
                median(floor.iter().map(|f| f.switches_per_handoff).collect()),
                2
            ),
            ratio(median(ceilings)),
            fmt(median(of_ceiling), 2),
        );
    }
    Ok(())
}

/// The in-memory part: every round, each connection count, surge then
/// smoltcp (order rotated every round), on the client core.
fn run_memory(
    args: &EngineArgs,
    plan: &Plan,
    stop: &AtomicBool,
    surge: bool,
    smoltcp: bool,
) -> anyhow::Result<Vec<Row>> {
    pin_to(args.client_core)?;
    let mut rows = Row::for_each(&args.connections);
    for round in 0..args.rounds {
        for Row {
            conns,
            surge: surge_runs,
            other: smoltcp_runs,
        } in &mut rows
        {
            let mut order = [true, false];
            if round % 2 == 1 {
                order.reverse();
            }
            for is_surge in order {
                if stop.load(Ordering::Relaxed) {
                    return Ok(rows);
                }
                if is_surge && surge {
                    let o = memory::surge_echo(*conns, plan, stop)
                        .with_context(|| format!("surge in memory, {conns} connection(s)"))?;
                    report_case(round, "memory surge<->surge", *conns, &o);
                    surge_runs.push(o);
                } else if !is_surge && smoltcp {
                    let o = smoltcp_echo::smoltcp_echo(*conns, plan, stop)
                        .with_context(|| format!("smoltcp in memory, {conns} connection(s)"))?;
                    report_case(round, "memory smoltcp<->smoltcp", *conns, &o);
                    smoltcp_runs.push(o);
                }
            }
        }
    }
    Ok(rows)
}

/// One line on stderr per case, as it finishes.
pub(crate) fn report_case(round: u32, what: &str, conns: usize, o: &Outcome) {
    eprintln!(
        "  round {round}: {what}, {conns} conn: {} requests in {:.2} s -> {:.0} req/s, p50 {:.1} us, p90 {:.1} us, \
         p99 {:.1} us, p99.9 {:.1} us, max {:.1} us",
        o.requests,
        o.seconds,
        o.rate(),
        o.p50_us(),
        o.quantile_us(0.90),
        o.p99_us(),
        o.quantile_us(0.999),
        o.latency.max() as f64 / 1000.0,
    );
}

fn median(mut values: Vec<f64>) -> f64 {
    values.retain(|v| !v.is_nan());
    if values.is_empty() {
        return f64::NAN;
    }
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// Medians of (requests/s, p50 µs, p99 µs) over rounds.
fn medians(runs: &[Outcome]) -> (f64, f64, f64) {
    (
        median(runs.iter().map(Outcome::rate).collect()),
        median(runs.iter().map(Outcome::p50_us).collect()),
        median(runs.iter().map(Outcome::p99_us).collect()),
    )
}

/// Median over rounds of `f(ours) / f(theirs)` in the same round.
fn paired(ours: &[Outcome], theirs: &[Outcome], f: fn(&Outcome) -> f64) -> f64 {
    median(
        ours.iter()
            .zip(theirs)
            .map(|(o, t)| f(o) / f(t))
            .filter(|r| r.is_finite())
            .collect(),
    )
}

fn fmt(v: f64, decimals: usize) -> String {
    if v.is_nan() {
        "-".to_string()
    } else {
        format!("{v:.decimals$}")
    }
}

fn ratio(v: f64) -> String {
    if v.is_nan() {
        "-".to_string()
    } else {
        format!("{v:.2}x")
    }
}

fn print_table(args: &EngineArgs, results: &Results) {
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let cpus = CPUS.load(Ordering::Relaxed);
    println!();
    println!(
        "machine: {cpus} CPUs, load average {}",
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    println!(
        "surge-bench engine: 64-byte echo request/response, closed loop, {} s measured after {} s warm-up, \
         median of {} round(s) (ratios: median of per-round ratios)",
        args.seconds, args.warmup, args.rounds
    );
    println!();
    println!(
        "| setup | conns | surge req/s | other req/s | surge / other req/s | surge p50 µs | other p50 µs | surge p99 µs | other p99 µs | surge / other p99 |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    let rows = [
        (
            "lab veth, kernel client; other = kernel echo server",
            &results.lab,
        ),
        (
            "in-memory link, both ends on one core; other = smoltcp 0.12",
            &results.memory,
        ),
        (
            "in-memory link, one core, a new connection per request (req/s = connections/s); no other contender",
            &results.churn,
        ),
    ];
    for (setup, table) in rows {
        for Row {
            conns,
            surge: ours,
            other: theirs,
        } in table
        {
            let (s_rate, s_p50, s_p99) = medians(ours);
            let (o_rate, o_p50, o_p99) = medians(theirs);
            println!(
                "| {setup} | {conns} | {} | {} | {} | {} | {} | {} | {} | {} |",
                fmt(s_rate, 0),
                fmt(o_rate, 0),
                ratio(paired(ours, theirs, Outcome::rate)),
                fmt(s_p50, 1),
                fmt(o_p50, 1),
                fmt(s_p99, 1),
                fmt(o_p99, 1),
                ratio(paired(ours, theirs, Outcome::p99_us)),
            );
        }
    }
    if !results.lab.is_empty() {
        println!();
        println!(
            "lab: server thread on core {}, client thread (one epoll loop for all connections) on core {}; \
             surge = one in-loop engine on AF_XDP (copy mode), {}; kernel = one epoll thread",
            args.server_core,
            args.client_core,
            if args.surge_idle_us == 0 {
                "busy-polling".to_string()
            } else {
                format!("sleeping {} us when idle", args.surge_idle_us)
            }
        );
    }
    if !results.memory.is_empty() {
        println!(
            "in-memory: client and server stacks in one thread on core {} over surge_datapath::PipeDevice \
             (smoltcp through a phy::Device adapter on the same pipe); latency includes both stacks",
            args.client_core
        );
    }
}

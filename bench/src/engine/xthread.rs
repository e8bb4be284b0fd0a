//! The cross-thread API against the in-loop API: the same 64-byte echo over the
//! in-memory link, with two runtimes (`surge_stack::runtime::Stack`), each
//! engine on its own thread.
//!
//! - The client is always an in-loop [`Handler`] on the client stack (pinned to
//!   `--client-core`), closed loop on every connection.
//! - The server stack's engine is pinned to `--server-core`, and either
//!   - **in-loop**: a [`Handler`] in the server's loop accepts and echoes with
//!     the engine's non-blocking calls, or
//!   - **cross-thread**: one thread per connection, pinned to the server core
//!     too, runs a blocking `read_exact` / `write_all` echo on a
//!     `runtime::TcpStream`.
//!
//! Both cases use the same cores, so the ratio is the price of the cross-thread
//! API. Allocations per request are counted process-wide by the counting
//! allocator (`surge_datapath::alloc_count::total_allocations`) over the
//! measured window.

use std::{
    io::{Read, Write},
    net::{Ipv4Addr, SocketAddrV4},
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use surge_datapath::{PipeDevice, alloc_count};
use surge_stack::{
    Errno,
    engine::{Engine, SocketEvent},
    runtime::{Handler, IdlePolicy, RuntimeConfig, Stack},
    socket::SocketHandle,
    table::BindOptions,
    time::Instant as EngineInstant,
};

use super::{
    ECHO_PORT, Exchange, HandleMap, MESSAGE_LEN, Outcome, Plan, Recorder,
    memory::{IP_SERVER, pipe_engines},
    surge_echo_once,
};

/// Which server a case runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Server {
    /// An in-loop handler in the server's engine thread.
    InLoop,
    /// Blocking threads on the cross-thread API, one per connection.
    CrossThread,
}

/// What one case measured, beyond the outcome.
pub(crate) struct XthreadOutcome {
    /// Requests and latency.
    pub(crate) outcome: Outcome,
    /// Allocations (whole process) per measured request.
    pub(crate) allocations_per_request: f64,
    /// Context switches (every thread of the process) per measured request.
    pub(crate) switches_per_request: f64,
}

/// Context switches, voluntary and not, of every live thread of the process
/// (`/proc/self/task/*/status`).
fn context_switches() -> u64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0;
    };
    tasks
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("status")).ok())
        .map(|status| {
            status
                .lines()
                .filter(|l| l.contains("ctxt_switches:"))
                .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
                .sum::<u64>()
        })
        .sum()
}

/// What the client handler hands back when its window closes.
struct ClientResult {
    outcome: anyhow::Result<Outcome>,
    allocations: u64,
    switches: u64,
}

/// The closed-loop client, inside the client stack's loop.
struct Client {
    conns: usize,
    plan: Plan,
    /// The server is ready for requests (listening, and in the cross-thread
    /// case every connection has its thread).
    server_ready: Arc<AtomicBool>,
    sockets: Vec<SocketHandle>,
    index: HandleMap<usize>,
    exchanges: Vec<Exchange>,
    work: Vec<usize>,
    recorder: Option<Recorder>,
    /// Process allocations and context switches when the measured window opened.
    allocations_at_open: Option<(u64, u64)>,
    buf: Vec<u8>,
    result: Arc<Mutex<Option<ClientResult>>>,
    finished: bool,
    setup_end: Instant,
}

impl Client {
    fn finish(&mut self, outcome: anyhow::Result<Outcome>) {
        let (allocations, switches) = self.allocations_at_open.map_or((0, 0), |(a, c)| {
            (
                alloc_count::total_allocations() - a,
                context_switches().saturating_sub(c),
            )
        });
        if let Ok(mut slot) = self.result.lock() {
            *slot = Some(ClientResult {
                outcome,
                allocations,
                switches,
            });
        }
        self.finished = true;
    }

    fn step(&mut self, engine: &mut Engine<PipeDevice>) -> anyhow::Result<()> {
        if self.sockets.is_empty() {
            if !self.server_ready.load(Ordering::Acquire) {
                return Ok(());
            }
            for _ in 0..self.conns {
                let c = engine.tcp_socket()?;
                let mut options = engine.tcp_options(c)?;
                options.nodelay = true;
                engine.set_tcp_options(c, options)?;
                match engine.connect(c, SocketAddrV4::new(IP_SERVER, ECHO_PORT)) {
                    Err(Errno::EINPROGRESS) | Ok(()) => {}
                    Err(e) => return Err(e).context("connect"),
                }
                self.index.insert(c, self.sockets.len());
                self.sockets.push(c);
            }
            return Ok(());
        }
        let now = Instant::now();
        let Some(recorder) = self.recorder.as_mut() else {
            let connected = self
                .sockets
                .iter()
                .filter(|&&c| engine.readiness(c).is_ok_and(|r| r.writable))
                .count();
            if connected == self.conns {
                self.recorder = Some(Recorder::new(&self.plan, now)?);
                self.exchanges = vec![Exchange::idle(now); self.conns];
                self.work = (0..self.conns).collect();
            } else if now >= self.setup_end {
                bail!("{connected} of {} connections established", self.conns);
            }
            return Ok(());
        };
        if self.allocations_at_open.is_none() && now >= recorder.from {
            let switches = context_switches();
            self.allocations_at_open = Some((alloc_count::total_allocations(), switches));
        }
        for i in self.work.drain(..) {
            self.exchanges[i].drive(engine, self.sockets[i], &mut self.buf, recorder, now)?;
        }
        if recorder.done(now) {
            if let Some(r) = self.recorder.take() {
                self.finish(Ok(r.finish()));
            }
        }
        Ok(())
    }
}

impl Handler<PipeDevice> for Client {
    fn poll(&mut self, engine: &mut Engine<PipeDevice>, _now: EngineInstant) -> bool {
        if self.finished {
            return false;
        }
        let before = self.work.len();
        if let Err(e) = self.step(engine) {
            self.finish(Err(e));
        }
        before > 0 || self.recorder.is_none()
    }

    fn events(&mut self, _engine: &mut Engine<PipeDevice>, events: &[SocketEvent]) {
        self.work.extend(
            events
                .iter()
                .filter_map(|e| self.index.get(e.handle).copied()),
        );
    }
}

/// The in-loop echo server, inside the server stack's loop.
struct InLoopServer {
    listener: Option<SocketHandle>,
    listening: Arc<AtomicBool>,
    served: HandleMap<Vec<u8>>,
    buf: Vec<u8>,
    failed: Arc<AtomicBool>,
}

impl InLoopServer {
    fn listen(&mut self, engine: &mut Engine<PipeDevice>) -> Result<(), Errno> {
        let l = engine.tcp_socket()?;
        engine.bind(
            l,
            SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, ECHO_PORT),
            BindOptions::default(),
        )?;
        engine.listen(l, 4096)?;
        self.listener = Some(l);
        self.listening.store(true, Ordering::Release);
        Ok(())
    }
}

impl Handler<PipeDevice> for InLoopServer {
    fn poll(&mut self, engine: &mut Engine<PipeDevice>, _now: EngineInstant) -> bool {
        if self.listener.is_none() && self.listen(engine).is_err() {
            self.failed.store(true, Ordering::Release);
        }
        false
    }

    fn events(&mut self, engine: &mut Engine<PipeDevice>, events: &[SocketEvent]) {
        for e in events {
            if Some(e.handle) == self.listener {
                while let Ok((conn, _)) = engine.accept(e.handle) {
                    if let Ok(mut options) = engine.tcp_options(conn) {
                        options.nodelay = true;
                        let _ = engine.set_tcp_options(conn, options);
                    }
                    self.served.insert(conn, Vec::new());
                }
            } else if let Some(pending) = self.served.get_mut(e.handle) {
                if !surge_echo_once(engine, e.handle, pending, &mut self.buf) {
                    self.served.remove(e.handle);
                }
            }
        }
    }
}

fn runtime(core: usize) -> RuntimeConfig {
    RuntimeConfig {
        pin: Some(vec![core]),
        // The default idle policy: an engine that found nothing to do spins a
        // little, then sleeps, so that the server core's other threads run.
        idle: IdlePolicy::Backoff {
            spins: 200,
            sleep: Duration::from_micros(20),
        },
        linger: Duration::from_millis(100),
        ..RuntimeConfig::default()
    }
}

/// Runs one case: `conns` connections against `server`.
pub(crate) fn xthread_echo(
    server: Server,
    conns: usize,
    plan: &Plan,
    stop: &AtomicBool,
    server_core: usize,
    client_core: usize,
    apps_float: bool,
) -> anyhow::Result<XthreadOutcome> {
    let (client_engine, server_engine) = pipe_engines(conns)?;
    let server_ready = Arc::new(AtomicBool::new(false));
    let failed = Arc::new(AtomicBool::new(false));
    let deadline = Instant::now() + plan.limit();
    // The server stack, and in the cross-thread case its listener.
    let (server_stack, listener) = match server {
        Server::InLoop => {
            let handler = InLoopServer {
                listener: None,
                listening: Arc::clone(&server_ready),
                served: HandleMap::new(),
                buf: vec![0u8; 16 * 1024],
                failed: Arc::clone(&failed),
            };
            let stack = Stack::start_with(
                vec![server_engine],
                runtime(server_core),
                vec![Box::new(handler)],
            )?;
            (stack, None)
        }
        Server::CrossThread => {
            let stack = Stack::start(vec![server_engine], runtime(server_core))?;
            let listener = stack
                .tcp_listen(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, ECHO_PORT), 4096)
                .map_err(std::io::Error::from)
                .context("listen")?;
            server_ready.store(true, Ordering::Release);
            (stack, Some(listener))
        }
    };
    let result = Arc::new(Mutex::new(None));
    let client = Client {
        conns,
        plan: *plan,
        server_ready: Arc::clone(&server_ready),
        sockets: Vec::with_capacity(conns),
        index: HandleMap::new(),
        exchanges: Vec::new(),
        work: Vec::with_capacity(conns),
        recorder: None,
        allocations_at_open: None,
        buf: vec![0u8; 16 * 1024],
        result: Arc::clone(&result),
        finished: false,
        setup_end: deadline,
    };
    let client_stack = Stack::start_with(
        vec![client_engine],
        runtime(client_core),
        vec![Box::new(client)],
    )?;
    // Cross-thread: accept every connection and give each its echo thread.
    let mut threads = Vec::new();
    let echoed = Arc::new(AtomicU64::new(0));
    let alive = Arc::new(AtomicUsize::new(0));
    if let Some(listener) = listener {
        for _ in 0..conns {
            let (stream, _) = listener
                .accept()
                .map_err(std::io::Error::from)
                .context("accept")?;
            stream
                .set_nodelay(true)
                .map_err(std::io::Error::from)
                .context("nodelay")?;
            let echoed = Arc::clone(&echoed);
            let alive = Arc::clone(&alive);
            alive.fetch_add(1, Ordering::AcqRel);
            threads.push(
                std::thread::Builder::new()
                    .name("xthread-echo".into())
                    .spawn(move || {
                        if !apps_float {
                            let _ = super::pin_to(server_core);
                        }
                        let mut stream = stream;
                        let mut buf = [0u8; MESSAGE_LEN];
                        loop {
                            if stream.read_exact(&mut buf).is_err() {
                                break;
                            }
                            if stream.write_all(&buf).is_err() {
                                break;
                            }
                            echoed.fetch_add(1, Ordering::Relaxed);
                        }
                        alive.fetch_sub(1, Ordering::AcqRel);
                    })?,
            );
        }
    }
    // Wait for the client's verdict, bounded.
    let outcome = loop {
        if let Some(r) = result.lock().ok().and_then(|mut r| r.take()) {
            break r;
        }
        if failed.load(Ordering::Acquire) {
            bail!("the in-loop server could not listen");
        }
        if stop.load(Ordering::Relaxed) || Instant::now() >= deadline {
            bail!("the client did not finish in time");
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    drop(client_stack);
    drop(server_stack);
    for t in threads {
        let _ = t.join();
    }
    let o = outcome.outcome?;
    if o.requests == 0 {
        bail!("no request was answered");
    }
    Ok(XthreadOutcome {
        allocations_per_request: outcome.allocations as f64 / o.requests as f64,
        switches_per_request: outcome.switches as f64 / o.requests as f64,
        outcome: o,
    })
}

/// What the handoff floor measured.
pub(crate) struct HandoffFloor {
    /// Handoffs (a token to an app thread and its answer back) per second.
    pub(crate) rate: f64,
    /// Context switches (every thread of the process) per handoff.
    pub(crate) switches_per_handoff: f64,
}

/// One app thread's side of the floor: the token it was handed, its answer,
/// and whether it is parked (as `runtime::stream::WaitSlot` says it waits).
#[derive(Default)]
struct FloorSlot {
    token: AtomicU64,
    answer: AtomicU64,
    waiting: AtomicBool,
}

/// The floor under a thread-per-connection server whose threads share the
/// engine's core: no network, no engine, only the handoff. A "loop" thread
/// and `apps` app threads, all pinned to `core`; each round the loop hands
/// every app a token (unparking those that wait, as the runtime's stream
/// rings do), yields, and yields again until every app answered; an app
/// answers and waits for its next token the way a blocked `TcpStream::recv`
/// does (a few spins, then it says it waits and parks). Each handoff costs
/// what a cross-thread request cannot avoid on one core: a futex wake, a
/// switch to the app thread and one back (shared by the apps of a round when
/// the scheduler runs them back to back).
pub(crate) fn handoff_floor(
    apps: usize,
    core: usize,
    plan: &Plan,
    stop: &AtomicBool,
) -> anyhow::Result<HandoffFloor> {
    let slots: Arc<Vec<FloorSlot>> = Arc::new((0..apps).map(|_| FloorSlot::default()).collect());
    let done = Arc::new(AtomicBool::new(false));
    let mut threads = Vec::with_capacity(apps);
    for i in 0..apps {
        let slots = Arc::clone(&slots);
        let done = Arc::clone(&done);
        threads.push(
            std::thread::Builder::new()
                .name("floor-app".into())
                .spawn(move || {
                    let _ = super::pin_to(core);
                    let slot = &slots[i];
                    let mut seen = 0;
                    'outer: loop {
                        let mut spins = 0;
                        let token = loop {
                            let t = slot.token.load(Ordering::Acquire);
                            if t > seen {
                                break t;
                            }
                            if done.load(Ordering::Acquire) {
                                break 'outer;
                            }
                            if spins < 8 {
                                spins += 1;
                                std::hint::spin_loop();
                                continue;
                            }
                            slot.waiting.store(true, Ordering::SeqCst);
                            if slot.token.load(Ordering::SeqCst) == seen {
                                std::thread::park_timeout(Duration::from_millis(5));
                            }
                            slot.waiting.store(false, Ordering::SeqCst);
                        };
                        seen = token;
                        slot.answer.store(token, Ordering::Release);
                    }
                })?,
        );
    }
    let app_threads: Vec<std::thread::Thread> =
        threads.iter().map(|t| t.thread().clone()).collect();
    // The loop runs on this thread, pinned to the core for the case and
    // unpinned again afterwards.
    let before = nix::sched::sched_getaffinity(nix::unistd::Pid::from_raw(0))
        .context("reading this thread's affinity")?;
    super::pin_to(core)?;
    let warm_end = Instant::now() + plan.warmup;
    let mut round = 0u64;
    let mut handoffs = 0u64;
    let mut measuring: Option<(Instant, u64)> = None;
    let mut result = Err(anyhow::anyhow!("the handoff floor was interrupted"));
    loop {
        let now = Instant::now();
        if measuring.is_none() && now >= warm_end {
            measuring = Some((now, context_switches()));
            handoffs = 0;
        }
        if let Some((from, switches)) = measuring {
            if now >= from + plan.measure || handoffs >= plan.max_requests {
                let seconds = now.duration_since(from).as_secs_f64();
                result = Ok(HandoffFloor {
                    rate: handoffs as f64 / seconds,
                    switches_per_handoff: context_switches().saturating_sub(switches) as f64
                        / handoffs.max(1) as f64,
                });
                break;
            }
        }
        if stop.load(Ordering::Relaxed) {
            break;
        }
        round += 1;
        for slot in slots.iter() {
            slot.token.store(round, Ordering::SeqCst);
        }
        for (slot, t) in slots.iter().zip(&app_threads) {
            if slot.waiting.load(Ordering::SeqCst) {
                t.unpark();
            }
        }
        for slot in slots.iter() {
            while slot.answer.load(Ordering::Acquire) < round {
                std::thread::yield_now();
            }
        }
        handoffs += apps as u64;
    }
    done.store(true, Ordering::Release);
    for t in &app_threads {
        t.unpark();
    }
    for t in threads {
        let _ = t.join();
    }
    nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &before)
        .context("restoring this thread's affinity")?;
    result
}

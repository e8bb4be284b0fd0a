//! The per-core runtime: one engine per core on its own pinned thread, and the
//! cross-thread sockets API (DESIGN.md "Per-core model" and "The API").
//!
//! [`Stack::start`] takes one [`Engine`] per device queue, joins them in a
//! [`ForwardMesh`] so a frame that lands on
//! the wrong queue reaches its owner, and runs each on a thread pinned with
//! `core_affinity`. Each loop never blocks: RX burst, protocol work, due timers,
//! then the API commands other threads queued (`crossbeam_queue::ArrayQueue`)
//! and the streams whose byte rings have work (the doorbell queue), then TX
//! flush; when idle it spins, yielding the CPU to threads that share its core,
//! then parks for a bounded time ([`IdlePolicy`]); a queued command or a
//! doorbell unparks it.
//!
//! Two ways in, one socket model:
//! - **in-loop**: pass a [`Handler`] per core to [`Stack::start_with`]; it runs
//!   inside the loop every iteration with `&mut Engine` and calls the
//!   non-blocking engine functions directly (EAGAIN, EINPROGRESS);
//! - **cross-thread**: [`TcpSocket`], [`TcpListener`], [`TcpStream`] and
//!   [`UdpSocket`] handles usable from any thread; a stream's `send`/`recv`
//!   copy through per-stream byte rings the loop drains and fills (no command,
//!   no allocation), every other call is a command on the owning core's queue
//!   answered through the calling thread's reply slot; blocking by default,
//!   non-blocking on request; `std::io::Read`/`Write` on streams; a [`Poller`]
//!   waits on many sockets.
//!
//! ```no_run
//! use std::io::{Read, Write};
//! use surge_datapath::{PipeConfig, PipeDevice};
//! use surge_stack::engine::{Engine, EngineConfig};
//! use surge_stack::iface::{InterfaceConfig, Ipv4Cidr};
//! use surge_stack::runtime::{RuntimeConfig, Stack};
//! use surge_stack::wire::EthernetAddress;
//!
//! let (a, b) = PipeDevice::pair(&PipeConfig::default()).unwrap();
//! let engine = |dev, last: u8| {
//!     let ip = core::net::Ipv4Addr::new(198, 18, 0, last);
//!     let iface = InterfaceConfig::new(
//!         EthernetAddress([2, 0, 0, 0, 0, last]),
//!         Ipv4Cidr::new(ip, 24).unwrap(),
//!         None,
//!         1500,
//!     )
//!     .unwrap();
//!     Engine::new(dev, EngineConfig::new(iface)).unwrap()
//! };
//! let server = Stack::start(vec![engine(a, 1)], RuntimeConfig::default()).unwrap();
//! let client = Stack::start(vec![engine(b, 2)], RuntimeConfig::default()).unwrap();
//! let listener = server.tcp_listen("198.18.0.1:7".parse().unwrap(), 16).unwrap();
//! let mut stream = client.tcp_connect("198.18.0.1:7".parse().unwrap()).unwrap();
//! let (mut accepted, _peer) = listener.accept().unwrap();
//! stream.write_all(b"ping").unwrap();
//! let mut buf = [0u8; 4];
//! accepted.read_exact(&mut buf).unwrap();
//! assert_eq!(&buf, b"ping");
//! ```

mod bits;
pub mod boot;
mod command;
pub mod huge_pages;
mod net;
mod poller;
mod shared;
mod stream;
mod watch;
#[cfg(feature = "xdp")]
pub mod xdp;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_queue::ArrayQueue;
use surge_datapath::Device;

use crate::engine::forward::ForwardMesh;
use crate::engine::{Engine, EngineStats, SocketEvent, TcpEngineStats};
use crate::errno::Errno;
use crate::time::Instant;
use command::{Op, Outcome};
use shared::{CoreLink, Shared};
use stream::Streams;
use watch::{Board, Waiters, Watched};

pub use bits::{ERROR, HANGUP, READABLE, WRITABLE};
pub use net::{TcpListener, TcpSocket, TcpStream, UdpSocket};
pub use poller::{Event, Interest, Poller, Source};
pub use stream::STREAM_RING_BYTES;

/// What an engine's loop does when an iteration found no work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdlePolicy {
    /// Never sleep: lowest latency, one core at 100 %.
    BusyPoll,
    /// Spin `spins` idle iterations (each yields the CPU, which returns at once
    /// when no other thread waits for this core), then park up to `sleep` (or
    /// until the next timer, a queued command or a doorbell) per idle iteration.
    Backoff {
        /// Idle iterations before the first sleep.
        spins: u32,
        /// Longest sleep; bounds the latency added to a frame that arrives then.
        sleep: Duration,
    },
}

/// How the runtime runs its engines.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// CPU to pin engine `i` to (`core_affinity`); `None`: no pinning. Must name
    /// one CPU per engine.
    pub pin: Option<Vec<usize>>,
    /// The idle policy of every loop.
    pub idle: IdlePolicy,
    /// Commands each core's queue holds (a full queue gives `ENOBUFS`).
    pub command_queue: usize,
    /// Frames each core's forwarding inbox holds.
    pub forward_queue: usize,
    /// Buffers shared by all forwarding inboxes.
    pub forward_buffers: usize,
    /// On shutdown, how long the loops keep running so closed connections can
    /// deliver what they queued (as the kernel does for a process that exits).
    pub linger: Duration,
    /// Longest a blocked stream `send`/`recv` parks before it looks at its ring
    /// again. The loop wakes it when its ring changes, so this only bounds the
    /// cost of a wake-up that never came (tests set it long, so that a lost
    /// wake-up shows as a timeout).
    pub stream_park: Duration,
}

impl Default for RuntimeConfig {
    fn default() -> Self {
        RuntimeConfig {
            pin: None,
            idle: IdlePolicy::Backoff {
                spins: 200,
                sleep: Duration::from_micros(20),
            },
            command_queue: 4096,
            forward_queue: 1024,
            forward_buffers: 2048,
            linger: Duration::from_secs(2),
            stream_park: Duration::from_millis(5),
        }
    }
}

/// Why a runtime could not start.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// No engine was given.
    #[error("a stack needs at least one engine")]
    NoEngines,
    /// Engine `index` is configured as another core, or for another core count.
    #[error(
        "engine {index} is configured as core {core} of {cores}, but is engine {index} of {count}"
    )]
    CoreMismatch {
        /// Position of the engine in the list.
        index: usize,
        /// Its configured core.
        core: u16,
        /// Its configured core count.
        cores: u16,
        /// How many engines were given.
        count: usize,
    },
    /// The engines disagree on their stack identity.
    #[error("engines of one stack must share one stack_id")]
    StackIdMismatch,
    /// The pin list does not name one CPU per engine, or names a CPU that does not exist.
    #[error("pinning: {0}")]
    Pin(String),
    /// A queue could not be made.
    #[error("forwarding mesh: {0}")]
    Mesh(Errno),
    /// The OS refused a thread.
    #[error("spawning engine thread: {0}")]
    Spawn(#[from] std::io::Error),
}

/// Work an embedding program runs inside a core's loop (the in-loop API).
///
/// The loop drains the engine's events (`Engine::poll_events`) to publish the
/// readiness of cross-thread sockets, so a handler must not drain them itself:
/// it gets them in [`events`](Self::events) instead.
pub trait Handler<D: Device>: Send {
    /// Called once per iteration after the engine polled, with its clock.
    /// Returns true when it did work (for the idle policy).
    fn poll(&mut self, engine: &mut Engine<D>, now: Instant) -> bool;

    /// Called before [`poll`](Self::poll) in an iteration that drained events:
    /// every socket (the handler's own too) whose readiness changed.
    fn events(&mut self, _engine: &mut Engine<D>, _events: &[SocketEvent]) {}
}

impl<D: Device, F: FnMut(&mut Engine<D>, Instant) -> bool + Send> Handler<D> for F {
    fn poll(&mut self, engine: &mut Engine<D>, now: Instant) -> bool {
        self(engine, now)
    }
}

/// A running stack: its engines on their threads, and the way into them.
///
/// Dropping it (or [`Stack::shutdown`]) stops the loops; handles still held
/// then answer `ESHUTDOWN`.
pub struct Stack<D: Device + Send + 'static> {
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<Engine<D>>>,
}

impl<D: Device + Send + 'static> std::fmt::Debug for Stack<D> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stack")
            .field("cores", &self.shared.cores())
            .finish_non_exhaustive()
    }
}

impl<D: Device + Send + 'static> Stack<D> {
    /// Starts one loop per engine (engine `i` must be configured as core `i` of
    /// `engines.len()`), for cross-thread use only.
    pub fn start(engines: Vec<Engine<D>>, config: RuntimeConfig) -> Result<Self, RuntimeError> {
        let handlers = engines.iter().map(|_| None).collect();
        Self::start_inner(engines, config, handlers)
    }

    /// Starts one loop per engine, each also running its in-loop `handler`.
    pub fn start_with(
        engines: Vec<Engine<D>>,
        config: RuntimeConfig,
        handlers: Vec<Box<dyn Handler<D>>>,
    ) -> Result<Self, RuntimeError> {
        if handlers.len() != engines.len() {
            return Err(RuntimeError::Pin(format!(
                "{} handlers for {} engines",
                handlers.len(),
                engines.len()
            )));
        }
        Self::start_inner(engines, config, handlers.into_iter().map(Some).collect())
    }

    fn start_inner(
        mut engines: Vec<Engine<D>>,
        config: RuntimeConfig,
        handlers: Vec<Option<Box<dyn Handler<D>>>>,
    ) -> Result<Self, RuntimeError> {
        let count = engines.len();
        if count == 0 {
            return Err(RuntimeError::NoEngines);
        }
        let stack_id = engines[0].config().stack_id;
        for (index, e) in engines.iter().enumerate() {
            let c = e.config();
            if usize::from(c.core) != index || usize::from(c.cores) != count {
                return Err(RuntimeError::CoreMismatch {
                    index,
                    core: c.core,
                    cores: c.cores,
                    count,
                });
            }
            if c.stack_id != stack_id {
                return Err(RuntimeError::StackIdMismatch);
            }
        }
        let pins = match &config.pin {
            None => vec![None; count],
            Some(list) => {
                if list.len() != count {
                    return Err(RuntimeError::Pin(format!(
                        "{} CPUs named for {count} engines",
                        list.len()
                    )));
                }
                let available: Vec<usize> = core_affinity::get_core_ids()
                    .unwrap_or_default()
                    .into_iter()
                    .map(|c| c.id)
                    .collect();
                if let Some(cpu) = list.iter().find(|c| !available.contains(c)) {
                    return Err(RuntimeError::Pin(format!(
                        "CPU {cpu} is not available (this process may use {available:?})"
                    )));
                }
                list.iter().copied().map(Some).collect()
            }
        };
        if count > 1 {
            let mtu = engines[0].config().iface.mtu as usize;
            let mesh = ForwardMesh::new(
                count,
                config.forward_queue,
                config.forward_buffers,
                mtu + 18,
            )
            .map_err(RuntimeError::Mesh)?;
            for e in &mut engines {
                e.join_mesh(Arc::clone(&mesh)).map_err(RuntimeError::Mesh)?;
            }
        }
        let slots = engines
            .iter()
            .map(|e| e.config().max_sockets)
            .max()
            .unwrap_or(0);
        let shared = Arc::new(Shared {
            cores: (0..count)
                .map(|_| CoreLink {
                    commands: ArrayQueue::new(config.command_queue.max(1)),
                    doorbells: ArrayQueue::new(slots.max(1)),
                    thread: OnceLock::new(),
                })
                .collect(),
            stop: AtomicBool::new(false),
            board: Board::new(count, slots),
            waiters: Waiters::default(),
            next_core: AtomicUsize::new(0),
            stream_park: config.stream_park,
        });
        let epoch = std::time::Instant::now();
        let mut threads = Vec::with_capacity(count);
        for (index, ((engine, handler), pin)) in
            engines.into_iter().zip(handlers).zip(pins).enumerate()
        {
            let shared_for_thread = Arc::clone(&shared);
            let idle = config.idle;
            let linger = config.linger;
            let spawned = std::thread::Builder::new()
                .name(format!("surge-core{index}"))
                .spawn(move || {
                    let core = CoreLoop {
                        shared: &shared_for_thread,
                        index,
                        pin,
                        idle,
                        linger,
                        epoch,
                    };
                    core.run(engine, handler)
                });
            match spawned {
                Ok(t) => threads.push(t),
                Err(e) => {
                    shared.stop.store(true, Ordering::Release);
                    for t in threads {
                        let _ = t.join();
                    }
                    return Err(RuntimeError::Spawn(e));
                }
            }
        }
        Ok(Stack { shared, threads })
    }

    /// The number of engines (cores).
    pub fn cores(&self) -> usize {
        self.shared.cores()
    }

    /// Every engine's counters, summed (a command to each core).
    pub fn stats(&self) -> Result<(EngineStats, TcpEngineStats), Errno> {
        let mut sum = (EngineStats::default(), TcpEngineStats::default());
        for (engine, tcp) in self.stats_per_core()? {
            sum.0.add(&engine);
            sum.1.add(&tcp);
        }
        Ok(sum)
    }

    /// Each engine's counters.
    pub fn stats_per_core(&self) -> Result<Vec<(EngineStats, TcpEngineStats)>, Errno> {
        (0..self.cores())
            .map(|core| match self.shared.call(core, None, Op::Stats)? {
                Outcome::Stats(s) => Ok(*s),
                _ => Err(Errno::EINVAL),
            })
            .collect()
    }

    /// `socket(AF_INET, SOCK_STREAM, 0)`: a TCP socket to bind, listen or connect.
    pub fn tcp_socket(&self) -> TcpSocket {
        TcpSocket::new(Arc::clone(&self.shared))
    }

    /// socket + bind + listen on every core (connections are accepted on the core
    /// whose queue received their SYN; [`TcpListener::accept`] takes from all).
    pub fn tcp_listen(
        &self,
        addr: core::net::SocketAddrV4,
        backlog: i32,
    ) -> Result<TcpListener, Errno> {
        let mut s = self.tcp_socket();
        s.bind(addr)?;
        s.listen(backlog)
    }

    /// socket + connect, blocking until established or failed.
    pub fn tcp_connect(&self, addr: core::net::SocketAddrV4) -> Result<TcpStream, Errno> {
        self.tcp_socket().connect(addr)
    }

    /// `socket(AF_INET, SOCK_DGRAM, 0)` + `bind(addr)` on one core.
    pub fn udp_bind(&self, addr: core::net::SocketAddrV4) -> Result<UdpSocket, Errno> {
        UdpSocket::bind(Arc::clone(&self.shared), addr)
    }

    /// A poller over sockets of this stack.
    pub fn poller(&self) -> Poller {
        Poller::new(Arc::clone(&self.shared))
    }

    /// Stops the loops and gives the engines back (tests check them for leaks).
    /// Sockets that cross-thread handles left open are closed first.
    pub fn shutdown(mut self) -> Vec<Engine<D>> {
        self.stop_threads()
    }

    fn stop_threads(&mut self) -> Vec<Engine<D>> {
        self.shared.stop.store(true, Ordering::Release);
        for link in &self.shared.cores {
            if let Some(t) = link.thread.get() {
                t.unpark();
            }
        }
        self.shared.waiters.wake_all();
        self.threads
            .drain(..)
            .filter_map(|t| t.join().ok())
            .collect()
    }
}

impl<D: Device + Send + 'static> Drop for Stack<D> {
    fn drop(&mut self) {
        self.stop_threads();
    }
}

/// Commands a loop runs per iteration at most (the rest wait for the next).
const COMMANDS_PER_ITERATION: usize = 256;

/// One core's loop and what it needs.
struct CoreLoop<'a> {
    shared: &'a Shared,
    index: usize,
    pin: Option<usize>,
    idle: IdlePolicy,
    linger: Duration,
    epoch: std::time::Instant,
}

impl CoreLoop<'_> {
    fn now(&self) -> Instant {
        Instant::from_micros(self.epoch.elapsed().as_micros() as u64)
    }

    fn run<D: Device>(
        &self,
        mut engine: Engine<D>,
        mut handler: Option<Box<dyn Handler<D>>>,
    ) -> Engine<D> {
        let shared = self.shared;
        if let Some(cpu) = self.pin {
            if !core_affinity::set_for_current(core_affinity::CoreId { id: cpu }) {
                tracing::warn!(core = self.index, cpu, "could not pin the engine thread");
            }
        }
        let Some(link) = shared.cores.get(self.index) else {
            return engine;
        };
        let _ = link.thread.set(std::thread::current());
        let mut watched = Watched::default();
        let mut streams = Streams::default();
        let mut events: Vec<SocketEvent> = Vec::with_capacity(256);
        let mut idle_iterations: u32 = 0;
        while shared.alive() {
            let now = self.now();
            let mut busy = engine.poll(now);
            let mut ran = 0;
            while ran < COMMANDS_PER_ITERATION {
                let Some(cmd) = link.commands.pop() else {
                    break;
                };
                command::execute(
                    &mut engine,
                    &mut watched,
                    &mut streams,
                    &shared.board,
                    &shared.waiters,
                    cmd,
                );
                ran += 1;
            }
            if ran > 0 {
                busy = true;
                // Send what the commands queued now rather than an iteration
                // later, and report the readiness they changed below.
                engine.poll(now);
            }
            // Readiness changes with traffic, timers (a connect that times out)
            // and calls: the engine's events name exactly the sockets that
            // changed, so publication costs what happened, not what exists.
            events.clear();
            let mut flush = false;
            if engine.poll_events(&mut events) > 0 {
                // Streams with rings move their bytes first, so the board
                // shows what the application will find.
                for e in &events {
                    if streams.contains(e.handle) {
                        streams.on_event(&mut engine, e.handle, Some(e.readiness));
                        flush = true;
                    }
                }
                watched.publish_events(&events, &mut streams, &shared.board, &shared.waiters);
                if let Some(h) = handler.as_mut() {
                    h.events(&mut engine, &events);
                }
            }
            if let Some(h) = handler.as_mut() {
                busy |= h.poll(&mut engine, now);
            }
            // Wake the readers and writers of this iteration's moves together
            // (see `Streams::wake_pending`). Those that share the core run at
            // the yield, back to back, so that what they write (a reply) is
            // drained below and leaves with this iteration's flush.
            if streams.wake_pending() {
                std::thread::yield_now();
            }
            // Streams whose application wrote (or made room to read).
            let mut rung = 0;
            while rung < COMMANDS_PER_ITERATION {
                let Some(h) = link.doorbells.pop() else {
                    break;
                };
                streams.doorbell(&mut engine, h);
                watched.publish_one(&mut engine, &mut streams, &shared.board, &shared.waiters, h);
                rung += 1;
            }
            if rung > 0 || flush {
                busy = true;
                // One flush for the bytes moved both ways: the window update
                // of what the rings took and the replies rung for above.
                engine.poll(now);
            }
            if streams.wakes_pending() > 0 {
                // The doorbells' moves owe wakes too (a writer that waited for
                // room): at the next iteration's wake point, which comes at
                // once rather than after a sleep.
                busy = true;
            }
            if busy {
                idle_iterations = 0;
                continue;
            }
            idle_iterations = idle_iterations.saturating_add(1);
            if let IdlePolicy::Backoff { spins, sleep } = self.idle {
                if idle_iterations > spins {
                    let until_timer = engine
                        .poll_at()
                        .map_or(sleep, |at| at.saturating_duration_since(now));
                    std::thread::park_timeout(sleep.min(until_timer));
                } else {
                    // Application threads may share the core (one the loop
                    // woke, one that rang while it ran): let them run now
                    // rather than after the spins; returns at once when
                    // nothing else is runnable here.
                    std::thread::yield_now();
                }
            }
        }
        // The stack stopped: what cross-thread handles left open is closed (their
        // owners get ESHUTDOWN from now on), and the loop lingers until every
        // connection has delivered what it queued, or `linger` passes.
        streams.stop(&mut engine);
        for h in watched.handles() {
            if !streams.contains(h) {
                let _ = engine.close(h);
            }
        }
        let until = std::time::Instant::now() + self.linger;
        let mut rings_pending = streams.push_pending(&mut engine);
        while (engine.draining() > 0 || rings_pending > 0) && std::time::Instant::now() < until {
            streams.wake_pending();
            if !engine.poll(self.now()) {
                std::thread::sleep(Duration::from_micros(50));
            }
            rings_pending = streams.push_pending(&mut engine);
        }
        streams.wake_pending();
        streams.close_all(&mut engine);
        engine
    }
}

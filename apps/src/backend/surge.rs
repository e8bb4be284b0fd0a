//! surge's own stack as an app backend: each worker thread owns one engine on one
//! AF_XDP queue of the interface and runs it in-loop (DESIGN.md's embedding mode):
//! [`Worker::poll`] is the engine's run-to-completion loop, and the socket calls
//! go straight to the engine, with no queue or lock in between.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use surge_datapath::XdpPort;
use surge_stack::Errno;
use surge_stack::engine::forward::ForwardMesh;
use surge_stack::engine::{Engine, Readiness, SocketEvent};
use surge_stack::iface::Ipv4Cidr;
use surge_stack::runtime::xdp::{XdpConfig, XdpInterface};
use surge_stack::socket::{SocketHandle, TcpSocketOptions};
use surge_stack::table::{BindOptions, EphemeralRange};
use surge_stack::tcp::CongestionAlgorithm;
use surge_stack::time::Instant;
use surge_stack::wire::EthernetAddress;

use super::slab::SocketSlab;
use super::surge_counters::{ConnectionTotals, WorkerCounters};
use super::{Backend, Event, SocketId, Worker};
use surge_datapath::BusyPoll;
use surge_datapath::Device as _;

/// Where and as what surge's stack runs.
#[derive(Debug, Clone)]
pub struct SurgeOptions {
    /// Network namespace the interface lives in (`None`: the current one).
    pub netns: Option<String>,
    /// The interface whose queues the engines take.
    pub interface: String,
    /// surge's address on it (the kernel must not use the same one).
    pub address: Ipv4Cidr,
    /// Default gateway.
    pub gateway: Option<Ipv4Addr>,
    /// surge's MAC (default: the interface's own).
    pub mac: Option<[u8; 6]>,
    /// TCP ports surge serves (the XDP program steers them to us).
    pub tcp_ports: Vec<u16>,
    /// Addresses connections are opened from, in turn (besides `address`, surge
    /// answers on each, with `address`'s prefix); empty: `address` alone.
    pub sources: Vec<Ipv4Addr>,
    /// Ephemeral ports (Linux `ip_local_port_range`); default 32768-60999.
    pub local_port_range: Option<EphemeralRange>,
    /// Congestion control of every connection (default: the stack's, CUBIC).
    pub congestion: Option<CongestionAlgorithm>,
    /// RFC 3168 ECN on every connection: offered and accepted on the handshake.
    pub ecn: bool,
    /// Busy polling on the AF_XDP sockets (off by default).
    pub busy_poll: Option<BusyPoll>,
}

/// The surge backend: the steering program, and one engine per worker.
pub struct SurgeBackend {
    options: SurgeOptions,
    queues: u32,
    /// The steering program and the engines' configuration (the library's
    /// one way to open AF_XDP ports and engines).
    interface: Mutex<XdpInterface>,
    epoch: std::time::Instant,
    counters: Counters,
    /// The engines' inboxes for frames that land on another engine's queue.
    mesh: Option<Arc<ForwardMesh>>,
    /// Engines of queues no worker takes: they answer ARP and ping and hand
    /// everything else to its owner.
    idle: Mutex<Vec<std::thread::JoinHandle<()>>>,
    stop_idle: Arc<AtomicBool>,
}

/// Each worker's last published counters.
type Counters = Arc<Mutex<BTreeMap<usize, WorkerCounters>>>;

impl std::fmt::Debug for SurgeBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SurgeBackend")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

fn io_err(e: impl std::fmt::Display) -> io::Error {
    io::Error::other(e.to_string())
}

fn errno(e: Errno) -> io::Error {
    io::Error::from(e)
}

/// Enters `netns` for the current thread, if one is given.
fn enter(netns: Option<&str>) -> io::Result<Option<surge_lab::NetnsGuard>> {
    netns
        .map(|ns| surge_lab::enter_netns(ns).map_err(io_err))
        .transpose()
}

impl SurgeBackend {
    /// Attaches the steering program to the interface and prepares the engines.
    pub fn new(options: SurgeOptions) -> io::Result<Self> {
        let _ns = enter(options.netns.as_deref())?;
        let xdp = XdpConfig {
            gateway: options.gateway,
            mac: options.mac.map(EthernetAddress),
            tcp_ports: options.tcp_ports.clone(),
            busy_poll: options.busy_poll,
            ..XdpConfig::new(&options.interface, options.address)
        };
        let addresses = options.addresses();
        let local_port_range = options.local_port_range;
        let congestion = options.congestion;
        let ecn = options.ecn;
        let interface = XdpInterface::attach(&xdp, |config| {
            config.privileged = true;
            config.iface.addrs = addresses;
            if let Some(range) = local_port_range {
                config.ephemeral = range;
            }
            if let Some(congestion) = congestion {
                config.tcp.congestion = congestion;
            }
            config.tcp.ecn |= ecn;
        })
        .map_err(|e| io_err(format!("attaching XDP to {}: {e}", options.interface)))?;
        let queues = interface.queues();
        let mtu = interface.config().iface.mtu;
        let mesh = if queues > 1 {
            let frame = mtu as usize + 18;
            Some(ForwardMesh::new(queues as usize, 1024, 4096, frame).map_err(errno)?)
        } else {
            None
        };
        Ok(SurgeBackend {
            options,
            queues,
            interface: Mutex::new(interface),
            epoch: std::time::Instant::now(),
            counters: Arc::new(Mutex::new(BTreeMap::new())),
            mesh,
            idle: Mutex::new(Vec::new()),
            stop_idle: Arc::new(AtomicBool::new(false)),
        })
    }

    /// Opens queue `queue`'s port and engine (core `queue` of the interface's queues).
    fn engine(&self, queue: u32) -> io::Result<Engine<XdpPort>> {
        let mut engine = {
            let _ns = enter(self.options.netns.as_deref())?;
            self.interface
                .lock()
                .map_err(io_err)?
                .open_engine(queue)
                .map_err(|e| io_err(format!("queue {queue}: {e}")))?
        };
        if let Some(mesh) = &self.mesh {
            engine.join_mesh(Arc::clone(mesh)).map_err(errno)?;
        }
        Ok(engine)
    }

    /// Runs plain engines (no app sockets) on the queues from `first` on, so
    /// that with fewer threads than queues every queue still has an engine:
    /// they answer ARP and ping and hand segments to the engine that owns them.
    pub fn start_idle_engines(&self, first: usize) -> io::Result<()> {
        let mut idle = self.idle.lock().map_err(io_err)?;
        for queue in first as u32..self.queues {
            let mut engine = self.engine(queue)?;
            let stop = Arc::clone(&self.stop_idle);
            let epoch = self.epoch;
            idle.push(std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let now = Instant::from_micros(epoch.elapsed().as_micros() as u64);
                    if !engine.poll(now) {
                        std::thread::sleep(Duration::from_micros(50));
                    }
                }
            }));
        }
        Ok(())
    }

    /// RX queues of the interface (one engine each at most).
    pub fn queues(&self) -> usize {
        self.queues as usize
    }
}

impl SurgeOptions {
    /// Every address surge answers on: `address` first, then each source (with
    /// `address`'s prefix) not already in the list.
    pub fn addresses(&self) -> Vec<Ipv4Cidr> {
        let mut all = vec![self.address];
        for &source in &self.sources {
            if !all.iter().any(|c| c.addr() == source) {
                if let Ok(cidr) = Ipv4Cidr::new(source, self.address.prefix_len()) {
                    all.push(cidr);
                }
            }
        }
        all
    }
}

impl Drop for SurgeBackend {
    fn drop(&mut self) {
        self.stop_idle.store(true, Ordering::Relaxed);
        if let Ok(mut idle) = self.idle.lock() {
            for t in idle.drain(..) {
                let _ = t.join();
            }
        }
    }
}

impl Backend for SurgeBackend {
    type Worker = SurgeWorker;

    fn name(&self) -> &'static str {
        "surge"
    }

    fn worker(&self, index: usize) -> io::Result<SurgeWorker> {
        let queue = u32::try_from(index).map_err(io_err)?;
        if queue >= self.queues {
            return Err(io_err(format!(
                "worker {index} has no queue: {} has {} RX queue(s); use at most that many threads",
                self.options.interface, self.queues
            )));
        }
        let engine = self.engine(queue)?;
        let mut worker = SurgeWorker::new(engine, index, self.epoch, Arc::clone(&self.counters));
        worker.sources = self.options.sources.clone();
        worker.shares_queues = self.mesh.is_some();
        Ok(worker)
    }

    fn counters(&self) -> BTreeMap<String, u64> {
        let mut out = BTreeMap::new();
        let Ok(all) = self.counters.lock() else {
            return out;
        };
        let mut sum = WorkerCounters::default();
        for w in all.values() {
            sum.add(w);
        }
        out.extend(sum.named());
        out
    }
}

#[derive(Debug)]
struct Entry {
    handle: SocketHandle,
    listener: bool,
    connecting: bool,
    last: Readiness,
    /// The app's last send hit WouldBlock: report Writable when room comes back.
    want_write: bool,
    /// In the worker's `again` list: looked at in the next `collect` whatever the
    /// events say (it was readable, acceptable or hung up last time).
    again: bool,
}

/// One thread's engine, driven in-loop.
pub struct SurgeWorker {
    engine: Engine<XdpPort>,
    index: usize,
    epoch: std::time::Instant,
    /// The app's sockets; ids are reused, so they stay below the number open at once.
    sockets: SocketSlab<Entry>,
    /// The app's id of each engine socket, for the events.
    ids: HashMap<SocketHandle, SocketId>,
    counters: Counters,
    /// The connections the app closed, summed.
    closed_connections: ConnectionTotals,
    published: std::time::Instant,
    /// Addresses to connect from, in turn (empty: the route's source).
    sources: Vec<Ipv4Addr>,
    /// The next of `sources` to use.
    next_source: usize,
    /// The engine's events of this poll (kept for its capacity).
    events: Vec<SocketEvent>,
    /// Sockets to look at in the next `collect` although no event names them:
    /// those still readable (or acceptable, or hung up) when last looked at,
    /// since readable is level-triggered for the apps.
    again: Vec<SocketId>,
    /// The sockets looked at in one `collect` (kept for its capacity).
    candidates: Vec<SocketId>,
    /// Other engines forward frames to this one (more than one queue): an idle wait
    /// cannot rely on the socket alone.
    shares_queues: bool,
}

impl std::fmt::Debug for SurgeWorker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SurgeWorker")
            .field("index", &self.index)
            .finish_non_exhaustive()
    }
}

/// Adds connection `handle`'s `TCP_INFO` and counters to `totals` (nothing if it has no
/// connection).
fn account(engine: &mut Engine<XdpPort>, handle: SocketHandle, totals: &mut ConnectionTotals) {
    if let (Ok(info), Ok(stats)) = (engine.tcp_info(handle), engine.tcp_socket_stats(handle)) {
        totals.add_connection(&info, &stats);
    }
}

impl SurgeWorker {
    fn new(
        engine: Engine<XdpPort>,
        index: usize,
        epoch: std::time::Instant,
        counters: Counters,
    ) -> Self {
        SurgeWorker {
            engine,
            index,
            epoch,
            sockets: SocketSlab::default(),
            ids: HashMap::new(),
            counters,
            closed_connections: ConnectionTotals::default(),
            published: std::time::Instant::now(),
            sources: Vec::new(),
            next_source: 0,
            events: Vec::with_capacity(256),
            again: Vec::new(),
            candidates: Vec::new(),
            shares_queues: false,
        }
    }

    /// Publishes the worker's counters. The connection totals are those of the closed
    /// connections: the worker closes (and counts) every connection before its last
    /// publish, and a periodic publish stays O(1) with 10,000 connections open.
    fn publish(&mut self) {
        let connections = self.closed_connections;
        let counters = WorkerCounters {
            engine: self.engine.stats(),
            tcp: self.engine.tcp_stats(),
            connections,
            device: self.engine.device().stats(),
        };
        if let Ok(mut all) = self.counters.lock() {
            all.insert(self.index, counters);
        }
        self.published = std::time::Instant::now();
    }

    /// Counts a connection the app closes into the worker's totals (what it retransmits
    /// while closing is not counted).
    fn close_handle(&mut self, handle: SocketHandle) {
        account(&mut self.engine, handle, &mut self.closed_connections);
        let _ = self.engine.close(handle);
    }

    /// Waits, with nothing to do, for at most `left`. This machine shares its cores with
    /// the peer under test, so an idle worker gives its core away rather than spin. With
    /// one engine it blocks on its AF_XDP socket until a frame arrives or the engine's
    /// next timer is due: the kernel wakes it at once, as epoll wakes a kernel-stack
    /// server. A fixed 20 µs sleep (what it did before) made each frame that came in
    /// during the sleep wait out the rest of it, plus the timer slack. With engines on
    /// other queues, frames they forward land in an inbox that does not wake the
    /// socket: then it still polls every 20 µs. Frames left on the TX ring need no
    /// wake-up of their own: in copy mode the kernel's `poll` of the socket transmits
    /// them (with `XDP_USE_NEED_WAKEUP`, surge's default). Nothing else should need the
    /// worker before a frame or a timer, but no wait is longer than 1 ms.
    fn idle(&mut self, left: Duration) {
        const FORWARD_POLL: Duration = Duration::from_micros(20);
        const LONGEST: Duration = Duration::from_millis(1);
        let mut wait = left.min(LONGEST);
        if let Some(at) = self.engine.poll_at() {
            let now = self.now();
            wait = wait.min(at.saturating_duration_since(now));
        }
        if self.shares_queues {
            wait = wait.min(FORWARD_POLL);
        }
        if wait.is_zero() {
            // A timer is due: the next poll runs it.
            return;
        }
        if self.engine.device().wait_readable(wait).is_err() {
            std::thread::sleep(wait.min(FORWARD_POLL));
        }
    }

    fn now(&self) -> Instant {
        Instant::from_micros(self.epoch.elapsed().as_micros() as u64)
    }

    fn insert(&mut self, handle: SocketHandle, listener: bool, connecting: bool) -> SocketId {
        let id = self.sockets.insert(Entry {
            handle,
            listener,
            connecting,
            last: Readiness::default(),
            want_write: false,
            again: false,
        });
        self.ids.insert(handle, id);
        id
    }

    fn handle(&self, id: SocketId) -> io::Result<SocketHandle> {
        self.sockets
            .get(id)
            .map(|e| e.handle)
            .ok_or_else(|| errno(Errno::EBADF))
    }

    /// Turns the engine's events (and the sockets still readable from last
    /// time) into the apps' events: the cost follows what changed, not the
    /// number of sockets.
    fn collect(&mut self, out: &mut Vec<Event>) {
        self.events.clear();
        self.engine.poll_events(&mut self.events);
        let mut candidates = core::mem::take(&mut self.candidates);
        candidates.append(&mut self.again);
        for e in &self.events {
            if let Some(&id) = self.ids.get(&e.handle) {
                if let Some(entry) = self.sockets.get_mut(id) {
                    if !entry.again {
                        entry.again = true;
                        candidates.push(id);
                    }
                }
            }
        }
        for id in candidates.drain(..) {
            // Only sockets marked `again` are candidates: an id listed twice (or closed
            // and handed to a new socket since it was listed) is looked at once.
            let Some(entry) = self.sockets.get_mut(id).filter(|e| e.again) else {
                continue;
            };
            entry.again = false;
            let Ok(now) = self.engine.readiness(entry.handle) else {
                continue;
            };
            let id = &id;
            if entry.listener {
                if now.readable {
                    out.push(Event::Acceptable(*id));
                }
            } else if entry.connecting {
                if now.error {
                    let err = self
                        .engine
                        .take_error(entry.handle)
                        .ok()
                        .flatten()
                        .unwrap_or(Errno::ECONNREFUSED);
                    entry.connecting = false;
                    out.push(Event::ConnectFailed(*id, errno(err)));
                } else if now.writable {
                    entry.connecting = false;
                    out.push(Event::Connected(*id));
                }
            } else {
                // Readable is level-triggered here (the apps read until WouldBlock).
                // Writable fires on the edge, and, as epoll's edge-triggered mode does
                // (a wakeup reports the whole mask), beside every Readable.
                let readable = now.readable || now.error || now.hangup;
                if readable {
                    out.push(Event::Readable(*id));
                }
                // And always once the app has hit WouldBlock and room came back:
                // sampling alone can miss a full-then-drained buffer between polls.
                if now.writable && (entry.want_write || !entry.last.writable || readable) {
                    entry.want_write = false;
                    out.push(Event::Writable(*id));
                }
            }
            entry.last = now;
            // Level-triggered readable (and acceptable): look again next time.
            let level = if entry.listener {
                now.readable
            } else {
                !entry.connecting && (now.readable || now.error || now.hangup)
            };
            if level {
                entry.again = true;
                self.again.push(*id);
            }
        }
        self.candidates = candidates;
    }
}

/// How long a worker that goes away lets its connections finish closing.
const CLOSE_GRACE: Duration = Duration::from_millis(500);

impl Drop for SurgeWorker {
    /// Closes what the app left open and runs the engine until every close
    /// handshake is done (at most [`CLOSE_GRACE`]), as the kernel finishes the
    /// closes of a process that exits: otherwise the server keeps half-closed
    /// connections on 4-tuples that the next run reuses, and answers its SYNs with
    /// ACKs instead of SYN-ACKs (a RST and a 1 s SYN retransmission each).
    fn drop(&mut self) {
        let handles: Vec<SocketHandle> = self
            .sockets
            .take_all()
            .into_iter()
            .map(|e| e.handle)
            .collect();
        for handle in handles {
            self.close_handle(handle);
        }
        let deadline = std::time::Instant::now() + CLOSE_GRACE;
        while self.engine.draining() > 0 && std::time::Instant::now() < deadline {
            let now = self.now();
            if !self.engine.poll(now) {
                std::thread::sleep(Duration::from_micros(100));
            }
        }
        self.publish();
    }
}

impl Worker for SurgeWorker {
    fn listen(&mut self, addr: SocketAddr) -> io::Result<SocketId> {
        let SocketAddr::V4(addr) = addr else {
            return Err(errno(Errno::EAFNOSUPPORT));
        };
        let h = self.engine.tcp_socket().map_err(errno)?;
        let options = BindOptions {
            reuse_addr: true,
            reuse_port: true,
            privileged: true,
            owner: 0,
        };
        self.engine.bind(h, addr, options).map_err(errno)?;
        self.engine.listen(h, 4096).map_err(errno)?;
        Ok(self.insert(h, true, false))
    }

    fn accept(&mut self, listener: SocketId) -> io::Result<Option<SocketId>> {
        let h = self.handle(listener)?;
        match self.engine.accept(h) {
            Ok((child, _)) => {
                let opts = TcpSocketOptions {
                    nodelay: true,
                    ..self.engine.tcp_options(child).map_err(errno)?
                };
                self.engine.set_tcp_options(child, opts).map_err(errno)?;
                Ok(Some(self.insert(child, false, false)))
            }
            Err(Errno::EAGAIN) => Ok(None),
            Err(e) => Err(errno(e)),
        }
    }

    fn connect(&mut self, addr: SocketAddr) -> io::Result<SocketId> {
        let SocketAddr::V4(addr) = addr else {
            return Err(errno(Errno::EAFNOSUPPORT));
        };
        let h = self.engine.tcp_socket().map_err(errno)?;
        let opts = TcpSocketOptions {
            nodelay: true,
            ..TcpSocketOptions::default()
        };
        self.engine.set_tcp_options(h, opts).map_err(errno)?;
        let remote = SocketAddrV4::new(*addr.ip(), addr.port());
        let result = match self.sources.get(self.next_source) {
            Some(&source) => {
                self.next_source = (self.next_source + 1) % self.sources.len();
                self.engine.connect_from(h, source, remote)
            }
            None => self.engine.connect(h, remote),
        };
        match result {
            Err(Errno::EINPROGRESS) | Ok(()) => Ok(self.insert(h, false, true)),
            Err(e) => {
                let _ = self.engine.close(h);
                Err(errno(e))
            }
        }
    }

    fn send(&mut self, id: SocketId, buf: &[u8]) -> io::Result<usize> {
        let h = self.handle(id)?;
        let result = self.engine.send(h, buf);
        if result == Err(Errno::EAGAIN) {
            if let Some(entry) = self.sockets.get_mut(id) {
                entry.want_write = true;
            }
        }
        result.map_err(errno)
    }

    fn recv(&mut self, id: SocketId, buf: &mut [u8]) -> io::Result<usize> {
        let h = self.handle(id)?;
        self.engine.recv(h, buf).map_err(errno)
    }

    fn shutdown_write(&mut self, id: SocketId) -> io::Result<()> {
        let h = self.handle(id)?;
        self.engine.shutdown_write(h).map_err(errno)
    }

    fn close(&mut self, id: SocketId) {
        if let Some(entry) = self.sockets.remove(id) {
            self.ids.remove(&entry.handle);
            self.close_handle(entry.handle);
        }
    }

    fn poll(&mut self, events: &mut Vec<Event>, timeout: Duration) -> io::Result<()> {
        let start = std::time::Instant::now();
        loop {
            let now = self.now();
            let busy = self.engine.poll(now);
            self.collect(events);
            if self.published.elapsed() >= Duration::from_millis(200) {
                self.publish();
            }
            if !events.is_empty() || start.elapsed() >= timeout {
                return Ok(());
            }
            if !busy {
                let left = timeout.saturating_sub(start.elapsed());
                self.idle(left);
            }
        }
    }
}

/// Command-line options of the surge backend (`--stack surge`).
#[derive(clap::Args, Debug, Clone, Default)]
pub struct SurgeArgs {
    /// surge: the interface whose AF_XDP queues the engines take (one thread per queue).
    #[arg(long)]
    pub interface: Option<String>,
    /// surge: its IPv4 address with prefix, e.g. 198.18.0.10/24 (not one the kernel uses).
    #[arg(long)]
    pub address: Option<String>,
    /// surge: default gateway.
    #[arg(long)]
    pub gateway: Option<Ipv4Addr>,
    /// surge: the network namespace of the interface (default: the current one).
    #[arg(long)]
    pub netns: Option<String>,
    /// surge: ephemeral ports LOW-HIGH (Linux ip_local_port_range; default 32768-60999).
    #[arg(long, value_parser = parse_port_range)]
    pub local_port_range: Option<EphemeralRange>,
    /// Congestion control, cubic, newreno (or reno) or bbr. surge: default cubic; bbr is
    /// paced and needs SACK, else CUBIC. The kernel stack: TCP_CONGESTION on every socket
    /// (listeners pass it to what they accept); default net.ipv4.tcp_congestion_control.
    #[arg(long, value_parser = parse_congestion)]
    pub congestion: Option<CongestionAlgorithm>,
    /// surge: RFC 3168 ECN, offered on connects and accepted from peers that offer it
    /// (off by default; the kernel stack uses net.ipv4.tcp_ecn).
    #[arg(long)]
    pub ecn: bool,
    /// surge: busy polling on the AF_XDP sockets, USECS[:BUDGET] (SO_PREFER_BUSY_POLL,
    /// SO_BUSY_POLL=USECS, SO_BUSY_POLL_BUDGET=BUDGET, default 64): an engine whose RX
    /// ring is empty runs its queue's NAPI itself. With NAPI deferral on the device
    /// (`surge lab up --napi-defer 2:200`). Off by default: see the
    /// README's measurement.
    #[arg(long, value_parser = parse_busy_poll)]
    pub busy_poll: Option<BusyPoll>,
}

/// Parses `USECS[:BUDGET]` busy-poll settings.
fn parse_busy_poll(s: &str) -> Result<BusyPoll, String> {
    let bad = || format!("'{s}' is not USECS[:BUDGET] with 1 <= USECS and 1 <= BUDGET <= 1024");
    let (usecs, budget) = s.split_once(':').unwrap_or((s, "64"));
    let usecs: u32 = usecs.trim().parse().map_err(|_| bad())?;
    let budget: u32 = budget.trim().parse().map_err(|_| bad())?;
    if usecs == 0 || budget == 0 || budget > 1024 {
        return Err(bad());
    }
    Ok(BusyPoll { usecs, budget })
}

/// Parses a `TCP_CONGESTION` name.
fn parse_congestion(s: &str) -> Result<CongestionAlgorithm, String> {
    CongestionAlgorithm::from_name(s)
        .ok_or_else(|| format!("'{s}' is not a congestion control: cubic, newreno, bbr"))
}

/// Parses `LOW-HIGH` into an ephemeral port range.
fn parse_port_range(s: &str) -> Result<EphemeralRange, String> {
    let bad = || format!("'{s}' is not a port range LOW-HIGH with 1 <= LOW <= HIGH <= 65535");
    let (low, high) = s.split_once('-').ok_or_else(bad)?;
    let low: u16 = low.trim().parse().map_err(|_| bad())?;
    let high: u16 = high.trim().parse().map_err(|_| bad())?;
    EphemeralRange::new(low, high).map_err(|_| bad())
}

impl SurgeArgs {
    /// The backend options, checked; `tcp_ports` are the ports the XDP program steers to us.
    pub fn options(&self, tcp_ports: Vec<u16>) -> anyhow::Result<SurgeOptions> {
        let interface = self
            .interface
            .clone()
            .ok_or_else(|| anyhow::anyhow!("--stack surge needs --interface IFACE"))?;
        let address = self
            .address
            .as_deref()
            .ok_or_else(|| anyhow::anyhow!("--stack surge needs --address A.B.C.D/LEN"))?
            .parse::<Ipv4Cidr>()?;
        Ok(SurgeOptions {
            netns: self.netns.clone(),
            interface,
            address,
            gateway: self.gateway,
            mac: None,
            tcp_ports,
            sources: Vec::new(),
            local_port_range: self.local_port_range,
            congestion: self.congestion,
            ecn: self.ecn,
            busy_poll: self.busy_poll,
        })
    }

    /// True when any surge-only option was given (an error with `--stack kernel`; not
    /// `--congestion`, which both stacks take).
    pub fn any(&self) -> bool {
        self.interface.is_some()
            || self.address.is_some()
            || self.gateway.is_some()
            || self.netns.is_some()
            || self.local_port_range.is_some()
            || self.ecn
            || self.busy_poll.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn busy_poll_takes_usecs_and_an_optional_budget() {
        assert_eq!(
            parse_busy_poll("50"),
            Ok(BusyPoll {
                usecs: 50,
                budget: 64
            })
        );
        assert_eq!(
            parse_busy_poll("20:16"),
            Ok(BusyPoll {
                usecs: 20,
                budget: 16
            })
        );
        for bad in ["", "0", "50:0", "50:1025", "x", "50:y", "-5"] {
            let err = parse_busy_poll(bad).expect_err(bad);
            assert!(err.contains("USECS[:BUDGET]"), "{bad}: {err}");
        }
    }
}

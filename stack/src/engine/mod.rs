//! The per-core engine: one run-to-completion loop over one device.
//!
//! An [`Engine`] owns its [`Device`] (one AF_XDP port, or a pipe in tests), the
//! interface configuration, the ARP cache, the socket table and the tables, and
//! its counters. [`Engine::poll`] is one iteration of the loop, and never blocks:
//!
//! 1. `rx_burst`: up to 64 frames, no copy;
//! 2. each frame is parsed and handled — ARP and ICMP echo are answered in place,
//!    in the received frame; UDP goes to its socket's queue; TCP to its connection;
//! 3. due timers run (ARP retries, TCP timers);
//! 4. what waits to be sent is written straight into TX frames, and `tx_burst`
//!    hands the batch to the device.
//!
//! The in-loop socket calls ([`Engine::udp_socket`], [`Engine::bind`],
//! [`Engine::send_to`], ...) are non-blocking and return an [`Errno`] as the
//! Linux calls would.

mod arp;
mod config;
mod control;
mod event;
pub mod forward;
mod icmp;
mod input;
mod output;
mod prefetch;
mod state;
pub mod stats;
mod tcp;
mod tx_path;
mod udp;

use core::net::{Ipv4Addr, SocketAddrV4};
use std::collections::HashMap;
use std::sync::Arc;

use surge_datapath::{Burst, Device};

use crate::Errno;
use crate::iface::IfaceError;
use crate::neighbor::NeighborCache;
use crate::socket::{SharedAcceptQueue, SocketHandle, SocketSet, TcpSocketOptions, UdpSock};
use crate::table::{
    BindConfig, BindOptions, BindTable, ConnTable, ConnTableConfig, EphemeralPorts, ListenTable,
};
use crate::tcp::{
    IsnGenerator, SynCookies, SynQueue, TcpInfo, TcpStats, TimeWaitTable, TimestampOffsets,
};
use crate::time::Instant;
use crate::timer::TimerWheel;
use crate::wire::TxChecksum;

pub use crate::socket::Readiness;
pub use config::EngineConfig;
pub use event::SocketEvent;
pub use state::Socket;
pub use stats::{DropReason, EngineStats, TcpEngineStats};

use forward::{ForwardMesh, Forwarding};
use state::{Core, Outgoing, TcpEngine};
use tcp::{calls, listener};

/// Why an engine could not be built.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The interface configuration is invalid.
    #[error("interface configuration: {0}")]
    Iface(#[from] IfaceError),
    /// The device's MTU is smaller than the configured one.
    #[error("the device carries an MTU of {device}, the configuration asks for {configured}")]
    MtuTooLarge {
        /// The device's MTU.
        device: u32,
        /// The configured MTU.
        configured: u32,
    },
    /// A table refused its configuration (e.g. an empty ephemeral slice).
    #[error("table configuration: {0}")]
    Table(Errno),
}

/// One core's engine over device `D`.
pub struct Engine<D: Device> {
    device: D,
    core: Core,
    rx: Burst,
    tx: Burst,
    /// Copies of ARP frames the kernel got (see [`ArpTap`]).
    arp_tap: Option<Box<dyn ArpTap>>,
}

/// A source of ARP frames that reached the host but not this engine: on an AF_XDP
/// interface, the steering program passes a neighbour's gratuitous ARP (and its
/// requests for other hosts, and ARP for an address surge shares with the kernel) to
/// the kernel, and copies it to a ring that `surge_bpf::ArpSeen` reads. An engine
/// given a tap ([`Engine::set_arp_tap`]) drains it on every poll and merges each
/// sender into its neighbour cache (RFC 826: update the entry if known), and with
/// several engines copies the frame to the others, so a neighbour that changes its
/// MAC and announces it is reached at the new one at once.
pub trait ArpTap: Send {
    /// Hands each waiting frame (Ethernet header and ARP body) to `f`; returns how
    /// many.
    fn drain(&mut self, f: &mut dyn FnMut(&[u8])) -> usize;
}

/// Hands every frame `tap` holds to [`input::observed_arp`]; returns how many. Out of
/// line: only an engine sharing its interface with the kernel has a tap.
#[inline(never)]
fn drain_arp_tap(core: &mut Core, now: Instant, tap: &mut dyn ArpTap) -> usize {
    tap.drain(&mut |bytes| input::observed_arp(core, now, bytes))
}

impl<D: Device> core::fmt::Debug for Engine<D> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Engine")
            .field("core", &self.core)
            .finish_non_exhaustive()
    }
}

/// Most RX bursts one [`Engine::poll`] takes (at most 4 x 64 frames).
const RX_BURSTS_PER_POLL: usize = 4;

impl<D: Device> Engine<D> {
    /// An engine over `device` with `config`.
    pub fn new(device: D, config: EngineConfig) -> Result<Self, EngineError> {
        config.iface.validate()?;
        let caps = device.caps();
        if caps.mtu < config.iface.mtu {
            return Err(EngineError::MtuTooLarge {
                device: caps.mtu,
                configured: config.iface.mtu,
            });
        }
        let key = config.secrets.table_key();
        let local: Vec<Ipv4Addr> = config.iface.addrs.iter().map(|c| c.addr()).collect();
        let ephemeral = EphemeralPorts::new(
            config.ephemeral,
            usize::from(config.core),
            usize::from(config.cores.max(1)),
            config.secrets.port_key(),
        )
        .map_err(EngineError::Table)?;
        // The pool belongs to the thread; an engine runs on the thread that makes it.
        crate::tcp::buffer_pool::with_pool(|p| p.set_idle_limit(config.buffer_pool_bytes));
        let tcp = TcpEngine {
            config: config.tcp,
            binds: BindTable::new(
                BindConfig {
                    privileged: config.privileged,
                    ..BindConfig::new(local.clone())
                },
                key,
            ),
            listeners: ListenTable::new(config.listen, key),
            conns: ConnTable::with_config(
                ConnTableConfig {
                    capacity: config.max_connections,
                    max_bytes: config.conn_table_memory,
                },
                key,
            )
            .map_err(EngineError::Table)?,
            syn_queue: SynQueue::new(ConnTableConfig::entries(config.max_half_open), key)
                .map_err(EngineError::Table)?,
            time_wait: TimeWaitTable::new(
                ConnTableConfig::entries(config.max_time_wait),
                key,
                config.tcp.time_wait,
            )
            .map_err(EngineError::Table)?,
            cookies: config
                .syn_cookies
                .then(|| SynCookies::new(config.secrets.cookie_key())),
            last_cookie: None,
            synacks: Vec::new(),
            timers: TimerWheel::new(
                Instant::ZERO,
                config.timer_tick,
                config.max_connections.saturating_add(1024),
            ),
            isn: IsnGenerator::with_clock_base(config.secrets.isn_key(), config.clock_base),
            ts_offsets: TimestampOffsets::new(config.secrets.timestamp_key(), config.clock_base),
            configs: crate::tcp::SharedConfigs::default(),
            dirty: Vec::with_capacity(256),
            held: Vec::with_capacity(256),
            blocked: Vec::new(),
            expired: Vec::with_capacity(256),
        };
        let mut core = Core {
            tcp,
            tcp_stats: TcpEngineStats::default(),
            neighbors: NeighborCache::new(config.neighbor),
            tx_path: tx_path::TxPath::default(),
            sockets: SocketSet::new(config.stack_id, config.core, config.max_sockets),
            udp_binds: BindTable::new(
                BindConfig {
                    privileged: config.privileged,
                    ..BindConfig::udp(local)
                },
                key,
            ),
            ephemeral,
            stats: EngineStats::default(),
            out: Vec::with_capacity(64),
            scratch: Vec::with_capacity(2048),
            icmp_tokens: config.icmp_error_rate,
            icmp_refill: Instant::ZERO,
            ready: Vec::with_capacity(256),
            now: Instant::ZERO,
            tick_start_us: state::NO_TICK_YET,
            tick_us: crate::time::duration_micros(config.timer_tick).max(1),
            udp_ports: HashMap::new(),
            forward: None,
            visited: 0,
            arp_defended_at: None,
            reassembly: crate::reassembly::Reassembly::new(config.reassembly, key),
            tx_checksum: if caps.tx_checksum_offload {
                TxChecksum::Offload
            } else {
                TxChecksum::Compute
            },
            config,
        };
        for &(ip, mac) in &core.config.static_neighbors {
            core.neighbors.insert_static(ip, mac);
        }
        if core.config.gratuitous_arp && core.config.core == 0 {
            // Sent with the first poll: sender and target are both our address.
            for cidr in &core.config.iface.addrs {
                core.out.push(Outgoing::ArpRequest(cidr.addr()));
            }
        }
        Ok(Engine {
            device,
            core,
            rx: Burst::new(),
            tx: Burst::new(),
            arp_tap: None,
        })
    }

    /// The device (for its counters).
    pub fn device(&self) -> &D {
        &self.device
    }

    /// The device, mutably (tests drive the pipe's clock through it).
    pub fn device_mut(&mut self) -> &mut D {
        &mut self.device
    }

    /// The configuration.
    pub fn config(&self) -> &EngineConfig {
        &self.core.config
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> EngineStats {
        self.core.stats
    }

    /// The ARP cache's counters.
    pub fn neighbor_stats(&self) -> crate::neighbor::NeighborStats {
        self.core.neighbors.stats()
    }

    /// Number of open sockets.
    pub fn socket_count(&self) -> usize {
        self.core.sockets.len()
    }

    /// Number of TIME-WAIT records held: closed connections whose 4-tuple stays
    /// taken until the record expires (or `tcp_tw_reuse` takes it over). These are
    /// not sockets and do not count in [`Engine::socket_count`].
    pub fn time_wait_count(&self) -> usize {
        self.core.tcp.time_wait.len()
    }

    /// What happened to this engine's TIME-WAIT records: inserted, expired, ended by a
    /// RST (Linux's default: `tcp_rfc1337` off), reopened by a SYN (RFC 6191), reused
    /// by an active open, refused at the limit; PAWS rejections and ACKs sent.
    pub fn time_wait_counters(&self) -> crate::tcp::time_wait::TimeWaitCounters {
        self.core.tcp.time_wait.counters
    }

    /// One iteration of the loop (see the module docs). Returns true when it
    /// did any work (received a frame or sent one), for the idle policy.
    pub fn poll(&mut self, now: Instant) -> bool {
        let Engine {
            device,
            core,
            rx,
            tx,
            arp_tap,
        } = self;
        core.now = now;
        // ACKs held by the last iteration go out first, on the answers written since.
        tcp::output::flush_held(core, device, tx, now);
        let mut forwarded = input::drain_inbox(core, now);
        if let Some(tap) = arp_tap {
            forwarded += drain_arp_tap(core, now, tap.as_mut());
        }
        // Up to RX_BURSTS_PER_POLL full bursts (NAPI's budget idea): a backlog larger
        // than one burst is taken in this iteration, not left a whole iteration behind.
        let mut received = 0;
        for _ in 0..RX_BURSTS_PER_POLL {
            let got = device.rx_burst(rx);
            received += got;
            // Half the iterations of a request/response exchange find nothing.
            if !rx.is_empty() {
                prefetch::burst(core, device, rx);
                for frame in rx.drain() {
                    input::handle_frame(core, device, tx, now, frame);
                }
            }
            if got < surge_datapath::BURST {
                break;
            }
        }
        let us = now.total_micros();
        // Outside the tick the timers last ran in (or before it: time set back).
        if us.wrapping_sub(core.tick_start_us) >= core.tick_us {
            core.tick_start_us = us / core.tick_us * core.tick_us;
            core.poll_timers(now);
            tcp::timers::poll_timers(core, now);
        }
        tcp::output::process_dirty(core, device, tx, now, true);
        let sent = control::flush(core, device, tx, now);
        received > 0 || sent > 0 || forwarded > 0 || !core.tcp.held.is_empty()
    }

    /// Gives this engine the copies of the ARP frames the kernel gets on its
    /// interface (see [`ArpTap`]); one engine per interface takes them.
    pub fn set_arp_tap(&mut self, tap: Box<dyn ArpTap>) {
        self.arp_tap = Some(tap);
    }

    /// Joins this engine to `mesh`, the inboxes of a multi-queue stack's engines
    /// (see [`forward`]): frames that miss here are handed to their owner.
    /// EINVAL when the mesh's size is not the configured number of cores.
    pub fn join_mesh(&mut self, mesh: Arc<ForwardMesh>) -> Result<(), Errno> {
        let core = usize::from(self.core.config.core);
        if mesh.cores() != usize::from(self.core.config.cores) || core >= mesh.cores() {
            return Err(Errno::EINVAL);
        }
        self.core.forward = Some(Forwarding { mesh, core });
        Ok(())
    }

    /// When the engine next has timed work, if any (the loop may sleep until then
    /// when idle).
    pub fn poll_at(&self) -> Option<Instant> {
        let due = [
            self.core.neighbors.poll_at(),
            tcp::timers::poll_at(&self.core),
            self.core.reassembly.poll_at(),
        ]
        .into_iter()
        .flatten()
        .min()?;
        if !self.core.tcp.dirty.is_empty() {
            return Some(due);
        }
        if !self.core.tcp.held.is_empty() {
            return Some(self.core.now);
        }
        // Timers run once per tick: one due in the tick they last ran in waits for the
        // next tick's start.
        let start = self.core.tick_start_us;
        let next_tick = start.saturating_add(self.core.tick_us);
        if start != state::NO_TICK_YET && due.total_micros() < next_tick {
            Some(Instant::from_micros(next_tick))
        } else {
            Some(due)
        }
    }

    /// TCP connections still open or still sending (data or FIN not yet
    /// acknowledged): a loop that stops should wait for this to reach 0.
    pub fn draining(&self) -> usize {
        calls::draining(&self.core)
    }

    /// TCP counters of this engine.
    pub fn tcp_stats(&self) -> TcpEngineStats {
        self.core.tcp_stats
    }

    // ---- in-loop socket calls (TCP) ----

    /// `socket(AF_INET, SOCK_STREAM, 0)`.
    pub fn tcp_socket(&mut self) -> Result<SocketHandle, Errno> {
        let socket = calls::socket(&mut self.core);
        self.count_socket_refusal(&socket);
        socket
    }

    /// Counts a `socket` call refused at `max_sockets`.
    fn count_socket_refusal(&mut self, result: &Result<SocketHandle, Errno>) {
        if *result == Err(Errno::EMFILE) {
            self.core.stats.sockets_refused += 1;
        }
    }

    /// Counts a `connect` refused at the connection table's limit.
    fn count_connect_refusal(&mut self, result: Result<(), Errno>) -> Result<(), Errno> {
        if result == Err(Errno::ENOBUFS) {
            self.core.tcp_stats.connects_refused += 1;
        }
        result
    }

    /// `listen(2)`: auto-binds an unbound socket; the accept queue holds
    /// `min(backlog, somaxconn)` connections.
    pub fn listen(&mut self, handle: SocketHandle, backlog: i32) -> Result<(), Errno> {
        listener::listen(&mut self.core, handle, backlog, None)
    }

    /// `listen(2)` for one engine's part of a socket that listens in several
    /// engines (the same address bound in each): `queue` is shared by all of them,
    /// so the backlog bounds the connections queued for `accept` in all engines
    /// together (`backlog + 1`, as Linux's `sk_acceptq_is_full`); beyond it SYNs
    /// and handshake-completing ACKs are dropped as on a full Linux accept queue.
    pub fn listen_shared(
        &mut self,
        handle: SocketHandle,
        backlog: i32,
        queue: SharedAcceptQueue,
    ) -> Result<(), Errno> {
        listener::listen(&mut self.core, handle, backlog, Some(queue))
    }

    /// `accept(2)`, non-blocking: a new connection's handle and peer, or EAGAIN.
    pub fn accept(&mut self, handle: SocketHandle) -> Result<(SocketHandle, SocketAddrV4), Errno> {
        listener::accept(&mut self.core, handle)
    }

    /// `connect(2)`, non-blocking: returns `EINPROGRESS`; the socket turns
    /// writable when the handshake completes, or [`take_error`](Self::take_error)
    /// says why it failed (ECONNREFUSED, ETIMEDOUT, ...).
    pub fn connect(&mut self, handle: SocketHandle, remote: SocketAddrV4) -> Result<(), Errno> {
        let now = self.core.now;
        match self.core.sockets.get(handle)? {
            Socket::Udp(_) => self.connect_udp(handle, remote),
            Socket::Tcp(_) => {
                let result = calls::connect(&mut self.core, handle, None, remote, now);
                self.count_connect_refusal(result)
            }
        }
    }

    /// A TCP `connect` from one of our addresses, `source`, with an ephemeral port
    /// (Linux `bind(source:0)` with `IP_BIND_ADDRESS_NO_PORT`, then `connect`): the
    /// port is chosen for the whole 4-tuple, so a client with several addresses opens
    /// a port range's worth of connections to one server from each. EADDRNOTAVAIL if
    /// `source` is not ours, EINVAL if the socket is already bound.
    pub fn connect_from(
        &mut self,
        handle: SocketHandle,
        source: Ipv4Addr,
        remote: SocketAddrV4,
    ) -> Result<(), Errno> {
        let now = self.core.now;
        match self.core.sockets.get(handle)? {
            Socket::Udp(_) => Err(Errno::EOPNOTSUPP),
            Socket::Tcp(_) => {
                let result = calls::connect(&mut self.core, handle, Some(source), remote, now);
                self.count_connect_refusal(result)
            }
        }
    }

    /// `send(2)` on a stream: bytes taken into the send buffer, or EAGAIN when full.
    pub fn send(&mut self, handle: SocketHandle, data: &[u8]) -> Result<usize, Errno> {
        // TCP first, with one lookup: a UDP socket answers EOPNOTSUPP there.
        match calls::send(&mut self.core, handle, data) {
            Err(Errno::EOPNOTSUPP) => self.send_not_tcp(handle, data),
            result => result,
        }
    }

    /// [`Self::send`] on a socket that is not TCP: a UDP socket's `send`; out of
    /// line, so the TCP call keeps a small frame.
    #[cold]
    #[inline(never)]
    fn send_not_tcp(&mut self, handle: SocketHandle, data: &[u8]) -> Result<usize, Errno> {
        match self.is_udp(handle) {
            true => self.send_to(handle, data, None),
            false => Err(Errno::EOPNOTSUPP),
        }
    }

    /// True when `handle` is an open UDP socket.
    fn is_udp(&self, handle: SocketHandle) -> bool {
        matches!(self.core.sockets.get(handle), Ok(Socket::Udp(_)))
    }

    /// `recv(2)` on a stream: bytes read, 0 at end of stream, or EAGAIN.
    pub fn recv(&mut self, handle: SocketHandle, buf: &mut [u8]) -> Result<usize, Errno> {
        match calls::recv(&mut self.core, handle, buf) {
            Err(Errno::EOPNOTSUPP) => self.recv_not_tcp(handle, buf),
            result => result,
        }
    }

    /// [`Self::recv`] on a socket that is not TCP: a UDP socket's `recv`; out of
    /// line, so the TCP call keeps a small frame.
    #[cold]
    #[inline(never)]
    fn recv_not_tcp(&mut self, handle: SocketHandle, buf: &mut [u8]) -> Result<usize, Errno> {
        match self.is_udp(handle) {
            true => self.recv_from(handle, buf).map(|r| r.0),
            false => Err(Errno::EOPNOTSUPP),
        }
    }

    /// `shutdown(SHUT_WR)`.
    pub fn shutdown_write(&mut self, handle: SocketHandle) -> Result<(), Errno> {
        calls::shutdown_write(&mut self.core, handle)
    }

    /// `getsockopt(SO_ERROR)` (a UDP socket's pending error is cleared by it).
    pub fn take_error(&mut self, handle: SocketHandle) -> Result<Option<Errno>, Errno> {
        if let Socket::Udp(s) = self.core.sockets.get_mut(handle)? {
            return Ok(s.take_error());
        }
        calls::take_error(&mut self.core, handle)
    }

    /// `getpeername(2)`.
    pub fn peer_addr(&mut self, handle: SocketHandle) -> Result<SocketAddrV4, Errno> {
        calls::peer_addr(&mut self.core, handle)
    }

    /// Readiness (epoll-like, level-triggered) of a socket, computed now. A UDP
    /// socket is readable when a datagram is queued and always writable.
    pub fn readiness(&mut self, handle: SocketHandle) -> Result<Readiness, Errno> {
        match self.core.sockets.get(handle)? {
            Socket::Tcp(s) if s.orphan => Err(Errno::EBADF),
            socket => Ok(event::readiness_of(socket)),
        }
    }

    /// Appends to `events` every socket whose readiness changed since it was
    /// last reported, with its readiness now; returns how many it appended. The
    /// cost follows what happened since the last call, not the number of sockets.
    ///
    /// **Edge-triggered**, on the whole readiness: a socket is reported when its
    /// readiness differs from the one last reported for it. A call counts as a
    /// report of its direction as the call left it: after a `recv`/`recv_from`/
    /// `accept` that emptied the socket (or answered EAGAIN) it is "not
    /// readable", after a `send` that filled the buffer (or answered EAGAIN) "not
    /// writable"; so the socket is reported again as soon as it becomes ready,
    /// even if that happens before the next drain. A socket
    /// created by `tcp_socket`/`udp_socket` or returned by `accept` is reported
    /// once with its readiness; sockets the program does not hold (closed, or not
    /// accepted yet) are never reported.
    ///
    /// **Level** information is in each event (the whole mask), and
    /// [`readiness`](Self::readiness) answers at any time; a program that stops
    /// reading before EAGAIN (or before the mask changes) must remember the
    /// socket itself, as with `EPOLLET`: the engine will not report it again
    /// while it stays readable (a `recv` that leaves data behind changes nothing).
    pub fn poll_events(&mut self, events: &mut Vec<SocketEvent>) -> usize {
        event::drain(&mut self.core, events)
    }

    /// `setsockopt` for TCP sockets: SO_REUSEADDR, SO_REUSEPORT, TCP_NODELAY,
    /// SO_LINGER, SO_KEEPALIVE, SO_SNDBUF, SO_RCVBUF, TCP_USER_TIMEOUT.
    pub fn set_tcp_options(
        &mut self,
        handle: SocketHandle,
        options: TcpSocketOptions,
    ) -> Result<(), Errno> {
        calls::set_options(&mut self.core, handle, options)
    }

    /// `getsockopt` for TCP sockets.
    pub fn tcp_options(&mut self, handle: SocketHandle) -> Result<TcpSocketOptions, Errno> {
        calls::options(&mut self.core, handle)
    }

    /// `getsockopt(TCP_INFO)`: the connection's state and estimates under Linux's names.
    pub fn tcp_info(&mut self, handle: SocketHandle) -> Result<TcpInfo, Errno> {
        calls::info(&mut self.core, handle)
    }

    /// The connection's own counters (retransmits by cause, SACK, drops by reason, ...).
    pub fn tcp_socket_stats(&mut self, handle: SocketHandle) -> Result<TcpStats, Errno> {
        calls::stats(&mut self.core, handle)
    }

    // ---- in-loop socket calls (UDP) ----

    /// `socket(AF_INET, SOCK_DGRAM, 0)`.
    pub fn udp_socket(&mut self) -> Result<SocketHandle, Errno> {
        let rcvbuf = self.core.config.udp_rcvbuf;
        let handle = self.core.sockets.insert(Socket::Udp(UdpSock::new(rcvbuf)));
        self.count_socket_refusal(&handle);
        let handle = handle?;
        self.core.queue_ready(handle.id());
        Ok(handle)
    }

    fn udp_mut(&mut self, handle: SocketHandle) -> Result<&mut UdpSock, Errno> {
        match self.core.sockets.get_mut(handle)? {
            Socket::Udp(s) => Ok(s),
            Socket::Tcp(_) => Err(Errno::EOPNOTSUPP),
        }
    }

    /// `bind(2)`: Linux rules (EADDRINUSE, EINVAL when already bound,
    /// EADDRNOTAVAIL for an address not ours, EACCES below 1024, port 0 = ephemeral).
    pub fn bind(
        &mut self,
        handle: SocketHandle,
        addr: SocketAddrV4,
        options: BindOptions,
    ) -> Result<SocketAddrV4, Errno> {
        if let Socket::Tcp(_) = self.core.sockets.get(handle)? {
            let mut current = calls::options(&mut self.core, handle)?;
            current.bind = options;
            calls::set_options(&mut self.core, handle, current)?;
            return calls::bind(&mut self.core, handle, addr);
        }
        let core = &mut self.core;
        let bound = core.udp_binds.bind(
            handle.id(),
            *addr.ip(),
            addr.port(),
            options,
            &mut core.ephemeral,
        )?;
        core.udp_ports
            .entry(bound.port())
            .or_default()
            .push(handle.id());
        self.udp_mut(handle)?.set_local(bound);
        Ok(bound)
    }

    /// `connect(2)` on a UDP socket: sets the default peer (auto-binds if needed).
    pub fn connect_udp(&mut self, handle: SocketHandle, remote: SocketAddrV4) -> Result<(), Errno> {
        if remote.port() == 0 || remote.ip().is_unspecified() {
            return Err(Errno::EINVAL);
        }
        self.core
            .config
            .iface
            .route(*remote.ip())
            .map_err(|_| Errno::ENETUNREACH)?;
        if self.udp_mut(handle)?.local().is_none() {
            self.bind(
                handle,
                SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0),
                BindOptions::default(),
            )?;
        }
        self.udp_mut(handle)?.set_remote(Some(remote));
        Ok(())
    }

    /// `getsockname(2)`.
    pub fn local_addr(&self, handle: SocketHandle) -> Result<SocketAddrV4, Errno> {
        let unbound = SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0);
        match self.core.sockets.get(handle)? {
            Socket::Udp(s) => Ok(s.local().unwrap_or(unbound)),
            Socket::Tcp(s) if !s.orphan => Ok(s.local.unwrap_or(unbound)),
            Socket::Tcp(_) => Err(Errno::EBADF),
        }
    }

    /// `sendto(2)` (or `send` on a connected socket with `dst = None`).
    ///
    /// The datagram is written straight into a TX frame; when the next hop's MAC is
    /// not known yet it waits in the ARP queue (a few per neighbour, as Linux).
    /// `EMSGSIZE` above the MTU (no fragmentation), `EDESTADDRREQ` without a
    /// destination, `ENETUNREACH` without a route, `ENOBUFS` when no frame is free.
    pub fn send_to(
        &mut self,
        handle: SocketHandle,
        payload: &[u8],
        dst: Option<SocketAddrV4>,
    ) -> Result<usize, Errno> {
        let (local, remote) = {
            let s = self.udp_mut(handle)?;
            // Linux `sock_alloc_send_pskb`: a pending error fails the next send.
            if let Some(error) = s.take_error() {
                return Err(error);
            }
            (s.local(), s.remote())
        };
        let dst = dst.or(remote).ok_or(Errno::EDESTADDRREQ)?;
        if dst.port() == 0 {
            return Err(Errno::EINVAL);
        }
        let max = self.core.config.iface.mtu as usize - 20 - 8;
        if payload.len() > max {
            return Err(Errno::EMSGSIZE);
        }
        let local = match local {
            Some(l) => l,
            None => self.bind(
                handle,
                SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0),
                BindOptions::default(),
            )?,
        };
        let Engine {
            device, core, tx, ..
        } = self;
        udp::send(core, device, tx, local, dst, payload)?;
        if let Socket::Udp(s) = core.sockets.get_mut(handle)? {
            s.count_sent();
        }
        Ok(payload.len())
    }

    /// `recvfrom(2)`: (bytes copied, datagram length, source); `EAGAIN` when empty.
    pub fn recv_from(
        &mut self,
        handle: SocketHandle,
        buf: &mut [u8],
    ) -> Result<(usize, usize, SocketAddrV4), Errno> {
        let result = self.udp_mut(handle)?.recv_from(buf);
        self.core.called(handle.id(), true, false);
        result
    }

    /// A UDP socket's counters.
    pub fn udp_stats(&self, handle: SocketHandle) -> Result<crate::socket::UdpStats, Errno> {
        match self.core.sockets.get(handle)? {
            Socket::Udp(s) => Ok(s.stats()),
            Socket::Tcp(_) => Err(Errno::EOPNOTSUPP),
        }
    }

    /// The first half of a lingering `close` (SO_LINGER > 0, Linux `tcp_close`
    /// then `sk_stream_wait_close`): the FIN goes after the queued data while the
    /// caller keeps the handle to wait for its ACK (`tcp_info` leaves FIN-WAIT-1,
    /// CLOSING or LAST-ACK), then calls [`close`](Self::close). True when there is
    /// such an ACK to wait for; false when the socket was closed as `close` does
    /// (no linger or a zero one, unread data, no connection).
    pub(crate) fn close_lingering(&mut self, handle: SocketHandle) -> Result<bool, Errno> {
        if let Socket::Tcp(_) = self.core.sockets.get(handle)? {
            return calls::close_lingering(&mut self.core, handle);
        }
        self.close(handle).map(|()| false)
    }

    /// `close(2)`: frees the socket and its port; the handle is `EBADF` afterwards.
    /// A TCP connection goes on as an orphan until it ends: FIN after the queued
    /// data, or RST (queued data dropped) when data was left unread or SO_LINGER is
    /// zero. An in-loop call never blocks, so a non-zero SO_LINGER does not make
    /// `close` wait for the peer's ACK here (Linux blocks in `close` even on a
    /// non-blocking socket): the call returns at once and the orphan delivers its
    /// data as without SO_LINGER. The runtime's `TcpStream::close` waits as Linux.
    pub fn close(&mut self, handle: SocketHandle) -> Result<(), Errno> {
        if let Socket::Tcp(_) = self.core.sockets.get(handle)? {
            return calls::close(&mut self.core, handle);
        }
        match self.core.sockets.remove(handle)? {
            Socket::Tcp(_) => {}
            Socket::Udp(s) => {
                self.core.udp_binds.unbind(handle.id());
                if let Some(port) = s.local().map(|l| l.port()) {
                    if let Some(ids) = self.core.udp_ports.get_mut(&port) {
                        ids.retain(|id| *id != handle.id());
                        if ids.is_empty() {
                            self.core.udp_ports.remove(&port);
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

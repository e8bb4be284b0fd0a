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
pub mod forward;
mod icmp;
mod output;
pub mod stats;
mod tcp;
mod udp;

use core::net::{Ipv4Addr, SocketAddrV4};
use core::time::Duration;
use std::collections::HashMap;
use std::sync::Arc;

use surge_datapath::{Burst, Device, Frame};

use crate::Errno;
use crate::iface::{IfaceError, InterfaceConfig};
use crate::neighbor::{NeighborCache, NeighborConfig};
use crate::secrets::Secrets;
use crate::socket::{SocketHandle, SocketSet, TcpSock, TcpSocketOptions, UdpSock};
use crate::table::{
    BindConfig, BindOptions, BindTable, ConnTable, EphemeralPorts, EphemeralRange, ListenConfig,
    ListenTable, SocketId,
};
use crate::tcp::{IsnGenerator, State, TcpConfig, TcpStats, TimestampOffsets};
use crate::time::Instant;
use crate::timer::TimerWheel;
use crate::wire::frame::{Network, Transport, parse_frame};
use crate::wire::{ChecksumMode, EthernetAddress, TxChecksum};

pub use stats::{DropReason, EngineStats};
pub use tcp::{Readiness, TcpEngineStats};

use forward::{ForwardMesh, Forwarding};
use output::Outgoing;

/// How an engine is set up.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// The interface: MAC, addresses, gateway, MTU.
    pub iface: InterfaceConfig,
    /// Identity of the stack the engine belongs to (handles of other stacks are `EBADF`).
    pub stack_id: u32,
    /// This engine's core index (0-based) and the number of cores of the stack.
    pub core: u16,
    /// Number of engines in the stack (ephemeral ports are sliced among them).
    pub cores: u16,
    /// Most sockets this engine holds (`EMFILE` beyond).
    pub max_sockets: usize,
    /// Receive queue of each UDP socket, bytes (`SO_RCVBUF`).
    pub udp_rcvbuf: usize,
    /// ARP cache knobs.
    pub neighbor: NeighborConfig,
    /// Ephemeral port range of the whole stack.
    pub ephemeral: EphemeralRange,
    /// The keys of every keyed hash and unpredictable choice (ISNs, timestamp
    /// offsets, ports, table hashes, SYN cookies); the runtime loads this boot's
    /// (`runtime::boot::boot_secrets`), tests use `Secrets::from_seed`.
    pub secrets: Secrets,
    /// The boot-time clock (`CLOCK_BOOTTIME`) at this engine's `Instant::ZERO`, read
    /// by the runtime at or before that moment: the ISN and timestamp clocks count
    /// from boot, so they keep rising across restarts (RFC 6528 §3, RFC 7323 §5.4).
    pub clock_base: Duration,
    /// Linux `tcp_tw_reuse` for active opens: a connect may take a 4-tuple our own
    /// TIME-WAIT holds when timestamps make it safe (Linux `tcp_twsk_unique`).
    pub tw_reuse: bool,
    /// Verify received checksums, or trust the device.
    pub rx_checksum: ChecksumMode,
    /// Answer ICMP echo requests.
    pub answer_ping: bool,
    /// TTL of packets we originate.
    pub ttl: u8,
    /// ICMP errors sent per second at most (Linux `icmp_ratelimit`-like token bucket).
    pub icmp_error_rate: u32,
    /// TCP defaults for every connection (the MSS is clamped to the MTU).
    pub tcp: TcpConfig,
    /// Listen limits (somaxconn, SYN backlog).
    pub listen: ListenConfig,
    /// Most TCP connections in the connection table.
    pub max_connections: usize,
    /// Tick of the TCP timer wheel.
    pub timer_tick: Duration,
    /// Every socket may bind below port 1024 (as if it had
    /// CAP_NET_BIND_SERVICE); otherwise that takes `BindOptions::privileged`.
    pub privileged: bool,
    /// The device's RSS (Toeplitz key and indirection table), when known: active
    /// opens then pick source ports whose replies the device steers to this
    /// engine's queue (`core`), so nothing needs forwarding.
    pub rss: Option<crate::table::toeplitz::Rss>,
    /// Neighbours known from the start, never expiring (`ip neigh add ... permanent`).
    pub static_neighbors: Vec<(Ipv4Addr, EthernetAddress)>,
    /// Announce our addresses with a gratuitous ARP request at start (RFC 5227
    /// §3 "ARP Announcement"); core 0 of a stack only.
    pub gratuitous_arp: bool,
}

impl EngineConfig {
    /// Defaults for a single-core engine on `iface`.
    pub fn new(iface: InterfaceConfig) -> Self {
        EngineConfig {
            iface,
            stack_id: 1,
            core: 0,
            cores: 1,
            max_sockets: 65_536,
            udp_rcvbuf: 212_992,
            neighbor: NeighborConfig::default(),
            ephemeral: EphemeralRange::LINUX_DEFAULT,
            secrets: Secrets::from_seed(0x5eed),
            clock_base: Duration::ZERO,
            tw_reuse: true,
            rx_checksum: ChecksumMode::Verify,
            answer_ping: true,
            ttl: 64,
            icmp_error_rate: 1000,
            tcp: TcpConfig::default(),
            listen: ListenConfig {
                somaxconn: 4096,
                max_syn_backlog: 2048,
            },
            max_connections: 65_536,
            timer_tick: Duration::from_millis(1),
            privileged: false,
            rss: None,
            static_neighbors: Vec::new(),
            gratuitous_arp: true,
        }
    }
}

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

/// A socket of the engine.
#[derive(Debug)]
pub enum Socket {
    /// A UDP socket.
    Udp(UdpSock),
    /// A TCP socket.
    Tcp(TcpSock),
}

/// Everything an engine owns except its device and bursts, so the two can be
/// borrowed apart (frames are read from the device while the core changes).
#[derive(Debug)]
pub(crate) struct Core {
    pub(crate) config: EngineConfig,
    pub(crate) neighbors: NeighborCache,
    pub(crate) sockets: SocketSet<Socket>,
    pub(crate) udp_binds: BindTable,
    pub(crate) ephemeral: EphemeralPorts,
    pub(crate) stats: EngineStats,
    pub(crate) out: Vec<Outgoing>,
    pub(crate) scratch: Vec<u8>,
    pub(crate) icmp_tokens: u32,
    pub(crate) icmp_refill: Instant,
    pub(crate) tx_checksum: TxChecksum,
    /// The time of the current (or last) iteration; in-loop calls use it.
    pub(crate) now: Instant,
    /// UDP sockets by bound port, for the input lookup.
    pub(crate) udp_ports: HashMap<u16, Vec<SocketId>>,
    /// TCP tables, timers and defaults.
    pub(crate) tcp: tcp::TcpEngine,
    /// TCP counters.
    pub(crate) tcp_stats: TcpEngineStats,
    /// This engine's place among the engines of a multi-queue stack.
    pub(crate) forward: Option<Forwarding>,
    /// Engines that already looked at the frame being handled (0: it came from
    /// our own device).
    pub(crate) visited: u64,
}

/// What to do with a received frame once it has been looked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Give it back to the device.
    Release,
    /// Rewrite it into an ARP reply and send it.
    ArpReply(crate::wire::ArpRepr),
    /// Rewrite it into an ICMP echo reply and send it.
    EchoReply,
    /// Not ours: hand a copy to this engine (see [`forward`]).
    Forward(usize),
}

/// One core's engine over device `D`.
pub struct Engine<D: Device> {
    device: D,
    core: Core,
    rx: Burst,
    tx: Burst,
}

impl<D: Device> core::fmt::Debug for Engine<D> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Engine")
            .field("core", &self.core)
            .finish_non_exhaustive()
    }
}

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
        let tcp = tcp::TcpEngine {
            config: config.tcp,
            binds: BindTable::new(
                BindConfig {
                    privileged: config.privileged,
                    ..BindConfig::new(local.clone())
                },
                key,
            ),
            listeners: ListenTable::new(config.listen, key),
            conns: ConnTable::new(config.max_connections, key).map_err(EngineError::Table)?,
            timers: TimerWheel::new(
                Instant::ZERO,
                config.timer_tick,
                config.max_connections.saturating_add(1024),
            ),
            isn: IsnGenerator::with_clock_base(config.secrets.isn_key(), config.clock_base),
            ts_offsets: TimestampOffsets::new(config.secrets.timestamp_key(), config.clock_base),
            dirty: Vec::with_capacity(256),
            expired: Vec::with_capacity(256),
        };
        let mut core = Core {
            tcp,
            tcp_stats: TcpEngineStats::default(),
            neighbors: NeighborCache::new(config.neighbor),
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
            now: Instant::ZERO,
            udp_ports: HashMap::new(),
            forward: None,
            visited: 0,
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

    /// One iteration of the loop (see the module docs). Returns true when it
    /// did any work (received a frame or sent one), for the idle policy.
    pub fn poll(&mut self, now: Instant) -> bool {
        let Engine {
            device,
            core,
            rx,
            tx,
        } = self;
        core.now = now;
        let forwarded = drain_inbox(core, now);
        let received = device.rx_burst(rx);
        for frame in rx.drain() {
            handle_frame(core, device, tx, now, frame);
        }
        core.poll_timers(now);
        tcp::poll_timers(core, now);
        tcp::process_dirty(core, device, tx, now);
        let sent = output::flush(core, device, tx, now);
        received > 0 || sent > 0 || forwarded > 0
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
        [self.core.neighbors.poll_at(), tcp::poll_at(&self.core)]
            .into_iter()
            .flatten()
            .min()
    }

    /// TCP connections still open or still sending (data or FIN not yet
    /// acknowledged): a loop that stops should wait for this to reach 0.
    pub fn draining(&self) -> usize {
        tcp::draining(&self.core)
    }

    /// TCP counters of this engine.
    pub fn tcp_stats(&self) -> TcpEngineStats {
        self.core.tcp_stats
    }

    // ---- in-loop socket calls (TCP) ----

    /// `socket(AF_INET, SOCK_STREAM, 0)`.
    pub fn tcp_socket(&mut self) -> Result<SocketHandle, Errno> {
        tcp::socket(&mut self.core)
    }

    /// `listen(2)`: auto-binds an unbound socket; the accept queue holds
    /// `min(backlog, somaxconn)` connections.
    pub fn listen(&mut self, handle: SocketHandle, backlog: i32) -> Result<(), Errno> {
        tcp::listen(&mut self.core, handle, backlog)
    }

    /// `accept(2)`, non-blocking: a new connection's handle and peer, or EAGAIN.
    pub fn accept(&mut self, handle: SocketHandle) -> Result<(SocketHandle, SocketAddrV4), Errno> {
        tcp::accept(&mut self.core, handle)
    }

    /// `connect(2)`, non-blocking: returns `EINPROGRESS`; the socket turns
    /// writable when the handshake completes, or [`take_error`](Self::take_error)
    /// says why it failed (ECONNREFUSED, ETIMEDOUT, ...).
    pub fn connect(&mut self, handle: SocketHandle, remote: SocketAddrV4) -> Result<(), Errno> {
        let now = self.core.now;
        match self.core.sockets.get(handle)? {
            Socket::Udp(_) => self.connect_udp(handle, remote),
            Socket::Tcp(_) => tcp::connect(&mut self.core, handle, None, remote, now),
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
            Socket::Tcp(_) => tcp::connect(&mut self.core, handle, Some(source), remote, now),
        }
    }

    /// `send(2)` on a stream: bytes taken into the send buffer, or EAGAIN when full.
    pub fn send(&mut self, handle: SocketHandle, data: &[u8]) -> Result<usize, Errno> {
        match self.core.sockets.get(handle)? {
            Socket::Udp(_) => self.send_to(handle, data, None),
            Socket::Tcp(_) => tcp::send(&mut self.core, handle, data),
        }
    }

    /// `recv(2)` on a stream: bytes read, 0 at end of stream, or EAGAIN.
    pub fn recv(&mut self, handle: SocketHandle, buf: &mut [u8]) -> Result<usize, Errno> {
        match self.core.sockets.get(handle)? {
            Socket::Udp(_) => self.recv_from(handle, buf).map(|r| r.0),
            Socket::Tcp(_) => tcp::recv(&mut self.core, handle, buf),
        }
    }

    /// `shutdown(SHUT_WR)`.
    pub fn shutdown_write(&mut self, handle: SocketHandle) -> Result<(), Errno> {
        tcp::shutdown_write(&mut self.core, handle)
    }

    /// `getsockopt(SO_ERROR)`.
    pub fn take_error(&mut self, handle: SocketHandle) -> Result<Option<Errno>, Errno> {
        tcp::take_error(&mut self.core, handle)
    }

    /// `getpeername(2)`.
    pub fn peer_addr(&mut self, handle: SocketHandle) -> Result<SocketAddrV4, Errno> {
        tcp::peer_addr(&mut self.core, handle)
    }

    /// Readiness (epoll-like, level-triggered) of a socket. A UDP socket is
    /// readable when a datagram is queued and always writable.
    pub fn readiness(&mut self, handle: SocketHandle) -> Result<Readiness, Errno> {
        if let Socket::Udp(s) = self.core.sockets.get(handle)? {
            return Ok(Readiness {
                readable: s.is_readable(),
                writable: true,
                ..Readiness::default()
            });
        }
        tcp::readiness(&mut self.core, handle)
    }

    /// `setsockopt` for TCP sockets: SO_REUSEADDR, SO_REUSEPORT, TCP_NODELAY,
    /// SO_LINGER, SO_KEEPALIVE, SO_SNDBUF, SO_RCVBUF, TCP_USER_TIMEOUT.
    pub fn set_tcp_options(
        &mut self,
        handle: SocketHandle,
        options: TcpSocketOptions,
    ) -> Result<(), Errno> {
        tcp::set_options(&mut self.core, handle, options)
    }

    /// `getsockopt` for TCP sockets.
    pub fn tcp_options(&mut self, handle: SocketHandle) -> Result<TcpSocketOptions, Errno> {
        tcp::options(&mut self.core, handle)
    }

    /// TCP_INFO: the connection's state and counters.
    pub fn tcp_info(&mut self, handle: SocketHandle) -> Result<(State, TcpStats), Errno> {
        tcp::info(&mut self.core, handle)
    }

    // ---- in-loop socket calls (UDP) ----

    /// `socket(AF_INET, SOCK_DGRAM, 0)`.
    pub fn udp_socket(&mut self) -> Result<SocketHandle, Errno> {
        let rcvbuf = self.core.config.udp_rcvbuf;
        self.core.sockets.insert(Socket::Udp(UdpSock::new(rcvbuf)))
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
            let mut current = tcp::options(&mut self.core, handle)?;
            current.bind = options;
            tcp::set_options(&mut self.core, handle, current)?;
            return tcp::bind(&mut self.core, handle, addr);
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
        self.udp_mut(handle)?.recv_from(buf)
    }

    /// A UDP socket's counters.
    pub fn udp_stats(&self, handle: SocketHandle) -> Result<crate::socket::UdpStats, Errno> {
        match self.core.sockets.get(handle)? {
            Socket::Udp(s) => Ok(s.stats()),
            Socket::Tcp(_) => Err(Errno::EOPNOTSUPP),
        }
    }

    /// `close(2)`: frees the socket and its port; the handle is `EBADF` afterwards.
    pub fn close(&mut self, handle: SocketHandle) -> Result<(), Errno> {
        if let Socket::Tcp(_) = self.core.sockets.get(handle)? {
            return tcp::close(&mut self.core, handle);
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

impl Core {
    /// Parks an ICMP port unreachable about `ip_bytes` (the received IP packet)
    /// until flush time, when a TX frame can be taken.
    pub(crate) fn pending_unreachable(&mut self, ip_bytes: &[u8]) {
        let header_len = ip_bytes.first().map_or(20, |b| usize::from(b & 0x0f) * 4);
        let len = (header_len + 8).min(ip_bytes.len()).min(output::QUOTE_MAX);
        let mut quote = [0u8; output::QUOTE_MAX];
        quote[..len].copy_from_slice(&ip_bytes[..len]);
        self.out.push(Outgoing::Unreachable {
            reason: crate::wire::DstUnreachable::PortUnreachable,
            quote,
            len,
        });
    }

    /// The engine a frame to `dst_port` that missed here goes to next, if any
    /// (see [`forward`]).
    pub(crate) fn forward_hop(&self, dst_port: u16) -> Option<usize> {
        let f = self.forward.as_ref()?;
        let owner = self
            .ephemeral
            .range()
            .core_of_port(dst_port, f.mesh.cores());
        f.next_hop(self.visited, owner)
    }

    fn poll_timers(&mut self, now: Instant) {
        if self.neighbors.poll_at().is_some_and(|t| t <= now) {
            let polled = self.neighbors.poll(now);
            for ip in polled.requests {
                self.out.push(Outgoing::ArpRequest(ip));
            }
        }
    }

    /// Takes one ICMP-error token (RFC 1812 §4.3.2.8: rate-limit ICMP errors).
    pub(crate) fn take_icmp_token(&mut self, now: Instant) -> bool {
        if now.saturating_duration_since(self.icmp_refill).as_secs() >= 1 {
            self.icmp_tokens = self.config.icmp_error_rate;
            self.icmp_refill = now;
        }
        if self.icmp_tokens == 0 {
            return false;
        }
        self.icmp_tokens -= 1;
        true
    }
}

/// Handles one received frame: answer in place, deliver, forward, or release.
fn handle_frame<D: Device>(
    core: &mut Core,
    device: &mut D,
    tx: &mut Burst,
    now: Instant,
    frame: Frame,
) {
    let verdict = {
        let bytes = device.frame(&frame);
        core.stats.rx_frames += 1;
        core.stats.rx_bytes += bytes.len() as u64;
        // The destination MAC first, as a NIC's filter would: frames for others
        // are not parsed at all.
        let dst_mac = bytes
            .get(..6)
            .map(|b| EthernetAddress([b[0], b[1], b[2], b[3], b[4], b[5]]));
        let for_us = dst_mac.is_some_and(|m| m == core.config.iface.mac || m.is_broadcast());
        if dst_mac.is_some() && !for_us {
            core.stats.drop(DropReason::NotOurMac);
            device.release_one(frame);
            return;
        }
        let verdict = classify(core, now, bytes);
        if let Verdict::Forward(target) = verdict {
            forward_copy(core, target, bytes, false);
            Verdict::Release
        } else {
            if core.forward.is_some() && bytes.get(12..14) == Some(&[0x08, 0x06][..]) {
                share_arp(core, bytes);
            }
            verdict
        }
    };
    match verdict {
        Verdict::Release | Verdict::Forward(_) => device.release_one(frame),
        Verdict::ArpReply(reply) => arp::reply_in_place(core, device, tx, frame, &reply),
        Verdict::EchoReply => icmp::echo_reply_in_place(core, device, tx, frame),
    }
}

/// Copies `bytes` to engine `target`'s inbox, counting the outcome.
fn forward_copy(core: &mut Core, target: usize, bytes: &[u8], learn_only: bool) {
    let Some(f) = core.forward.as_ref() else {
        return;
    };
    if f.mesh
        .push(target, bytes, core.visited | f.own_bit(), learn_only)
    {
        core.stats.forwarded_out += 1;
    } else {
        core.stats.forward_dropped += 1;
    }
}

/// An ARP frame that reached us: every other engine learns from it too (the
/// reply to one engine's request may land on another engine's queue).
fn share_arp(core: &mut Core, bytes: &[u8]) {
    let cores = core.forward.as_ref().map_or(0, |f| f.mesh.cores());
    let own = core.forward.as_ref().map_or(0, |f| f.core);
    for target in (0..cores).filter(|t| *t != own) {
        forward_copy(core, target, bytes, true);
    }
}

/// Handles the frames other engines handed to this one (at most a burst).
/// Returns how many there were.
fn drain_inbox(core: &mut Core, now: Instant) -> usize {
    // The usual case, nothing handed over, costs one load and no reference count.
    let Some(fwd) = core
        .forward
        .as_ref()
        .filter(|f| f.mesh.has_frames_for(f.core))
    else {
        return 0;
    };
    let (mesh, own) = (Arc::clone(&fwd.mesh), fwd.core);
    let mut handled = 0;
    while handled < surge_datapath::BURST {
        let Some(msg) = mesh.pop(own) else { break };
        handled += 1;
        core.stats.forwarded_in += 1;
        core.visited = msg.visited;
        if msg.learn_only {
            // ARP from another queue: learn only, the receiving engine answered.
            if let Ok(parsed) = parse_frame(&msg.bytes, ChecksumMode::Trust) {
                if let Network::Arp(arp) = parsed.network {
                    arp::learn(core, now, &arp);
                }
            }
        } else if let Verdict::Forward(target) = classify(core, now, &msg.bytes) {
            forward_copy(core, target, &msg.bytes, false);
        }
        // Echo and ARP replies are never forwarded, so no other verdict needs
        // a frame here.
        core.visited = 0;
        mesh.recycle(msg.bytes);
    }
    handled
}

/// Parses a frame already known to be for our MAC and hands it to its protocol.
fn classify(core: &mut Core, now: Instant, bytes: &[u8]) -> Verdict {
    let parsed = match parse_frame(bytes, core.config.rx_checksum) {
        Err(e) => {
            tracing::trace!(error = ?e, len = bytes.len(), "dropped a malformed frame");
            core.stats.drop(e.into());
            return Verdict::Release;
        }
        Ok(parsed) => parsed,
    };
    let eth = parsed.ethernet;
    let (header, transport) = match parsed.network {
        Network::Arp(arp) => return arp::input(core, now, &arp),
        Network::Ipv4 { header, transport } => (header, transport),
    };
    if !core.config.iface.is_local(header.dst_addr) {
        core.stats.drop(DropReason::NotOurIp);
        return Verdict::Release;
    }
    if header.src_addr.is_broadcast()
        || header.src_addr.is_multicast()
        || header.src_addr.is_unspecified()
        || core.config.iface.is_local(header.src_addr)
    {
        core.stats.drop(DropReason::BadSource);
        return Verdict::Release;
    }
    // An on-link sender's frame carries the MAC its answer goes to: learn it if
    // nothing is known yet (a SYN on one queue while the ARP reply went to
    // another engine's queue).
    if core
        .config
        .iface
        .route(header.src_addr)
        .is_ok_and(|r| r.next_hop == header.src_addr)
        && eth.src_addr.is_unicast()
    {
        for frame in core
            .neighbors
            .learn_if_unknown(header.src_addr, eth.src_addr, now)
        {
            core.out.push(Outgoing::Released {
                mac: eth.src_addr,
                frame,
            });
        }
    }
    match transport {
        Transport::Icmp(icmp) => icmp::input(core, now, &header, &icmp),
        Transport::Udp {
            header: udp,
            payload,
        } => {
            let ip_bytes = &bytes[eth.header_len()..];
            udp::input(core, now, &header, &udp, payload, ip_bytes)
        }
        Transport::Tcp {
            header: seg,
            payload,
        } => tcp::input(core, now, &header, &seg, payload),
        Transport::Fragment { .. } => {
            core.stats.drop(DropReason::Fragment);
            Verdict::Release
        }
        Transport::Other { .. } => {
            core.stats.drop(DropReason::Unsupported);
            Verdict::Release
        }
    }
}

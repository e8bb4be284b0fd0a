//! How an engine is set up: [`EngineConfig`].

use core::net::Ipv4Addr;
use core::time::Duration;

use crate::iface::InterfaceConfig;
use crate::neighbor::NeighborConfig;
use crate::secrets::Secrets;
use crate::table::{EphemeralRange, ListenConfig};
use crate::tcp::TcpConfig;
use crate::wire::{ChecksumMode, EthernetAddress};

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
    /// TCP defaults for every connection (the MSS starts as the interface's,
    /// MTU - 40, and is clamped to it).
    pub tcp: TcpConfig,
    /// Listen limits (somaxconn, SYN backlog).
    pub listen: ListenConfig,
    /// Most TCP connections in the connection table.
    pub max_connections: usize,
    /// Most bytes the connection table may use (ENOBUFS and a counter beyond; the
    /// table grows by linear hashing up to it, see `table::conn`).
    pub conn_table_memory: usize,
    /// Most connections in TIME-WAIT records (Linux `tcp_max_tw_buckets`); beyond it a
    /// closing connection skips TIME-WAIT, counted.
    pub max_time_wait: usize,
    /// Most half-open connections (request records) of all listeners together.
    pub max_half_open: usize,
    /// Answer SYNs with SYN cookies when a listener's SYN queue is full (RFC 4987 §3.6,
    /// Linux `tcp_syncookies = 1`).
    pub syn_cookies: bool,
    /// Idle ring-buffer bytes the engine's thread keeps for reuse at least
    /// (`tcp::buffer_pool`): it keeps up to its recent working set when that is larger.
    pub buffer_pool_bytes: usize,
    /// Tick of the TCP timer wheel, and how often the engine looks at its timers: once
    /// per tick, in the first `poll` of the tick, not on every iteration (a deadline is
    /// rounded up to a tick, so timers fire within one tick after they are due).
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
    /// IPv4 reassembly limits (memory per source and in total, timeout).
    pub reassembly: crate::reassembly::ReassemblyConfig,
}

impl EngineConfig {
    /// Defaults for a single-core engine on `iface`; TCP's MSS is the
    /// interface's (MTU - 40: 1460 at 1500, 8960 at 9000), as Linux's
    /// `tcp_mss_clamp`/`advmss` come from the device MTU.
    pub fn new(iface: InterfaceConfig) -> Self {
        let tcp = TcpConfig {
            mss: iface.mss(),
            ..TcpConfig::default()
        };
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
            tcp,
            listen: ListenConfig {
                somaxconn: 4096,
                max_syn_backlog: 2048,
            },
            max_connections: 65_536,
            conn_table_memory: usize::MAX,
            max_time_wait: 262_144,
            max_half_open: 262_144,
            syn_cookies: true,
            buffer_pool_bytes: crate::tcp::buffer_pool::DEFAULT_IDLE_LIMIT,
            timer_tick: Duration::from_millis(1),
            privileged: false,
            rss: None,
            static_neighbors: Vec::new(),
            gratuitous_arp: true,
            reassembly: crate::reassembly::ReassemblyConfig::default(),
        }
    }
}

//! What an engine holds between iterations: the sockets, the tables, the
//! control packets waiting for a TX frame, the counters. Every other file of the
//! engine works on a [`Core`]; this one calls none of them.

use core::net::Ipv4Addr;
use std::collections::HashMap;

use super::config::EngineConfig;
use super::forward::Forwarding;
use super::stats::{EngineStats, TcpEngineStats};
use crate::neighbor::NeighborCache;
use crate::socket::{ReadyMark, SocketSet, TcpSock, UdpSock};
use crate::table::{BindTable, ConnTable, EphemeralPorts, ListenTable, SocketId};
use crate::tcp::{IsnGenerator, SynCookies, SynQueue, TcpConfig, TimeWaitTable, TimestampOffsets};
use crate::time::Instant;
use crate::timer::TimerWheel;
use crate::wire::{DstUnreachable, EthernetAddress, TcpRepr, TxChecksum};

/// A socket of the engine.
#[derive(Debug)]
pub enum Socket {
    /// A UDP socket.
    Udp(UdpSock),
    /// A TCP socket.
    Tcp(TcpSock),
}

impl Socket {
    /// The socket's place in the ready list.
    pub(crate) fn ready_mark(&mut self) -> &mut ReadyMark {
        match self {
            Socket::Udp(s) => &mut s.ready,
            Socket::Tcp(s) => &mut s.ready,
        }
    }
}

/// [`Core::tick_start_us`] before the timers first ran: any time below 2^63 µs is
/// at least a tick past it (`now - NO_TICK_YET` wraps to at least 2^63).
pub(crate) const NO_TICK_YET: u64 = 1 << 63;

/// Everything an engine owns except its device and bursts, so the two can be
/// borrowed apart (frames are read from the device while the core changes).
#[derive(Debug)]
pub(crate) struct Core {
    pub(crate) config: EngineConfig,
    pub(crate) neighbors: NeighborCache,
    /// The last destination's route, neighbour and headers (see [`super::tx_path`]).
    pub(crate) tx_path: super::tx_path::TxPath,
    pub(crate) sockets: SocketSet<Socket>,
    pub(crate) udp_binds: BindTable,
    pub(crate) ephemeral: EphemeralPorts,
    pub(crate) stats: EngineStats,
    pub(crate) out: Vec<Outgoing>,
    pub(crate) scratch: Vec<u8>,
    pub(crate) icmp_tokens: u32,
    pub(crate) icmp_refill: Instant,
    pub(crate) tx_checksum: TxChecksum,
    /// Sockets whose readiness may have changed since events were last drained.
    pub(crate) ready: Vec<SocketId>,
    /// The time of the current (or last) iteration; in-loop calls use it.
    pub(crate) now: Instant,
    /// The start, in microseconds, of the timer tick (`EngineConfig::timer_tick`) in
    /// which the timers last ran ([`NO_TICK_YET`] before the first run): they run once
    /// per tick, not on every iteration (a timer due within the tick it was armed in
    /// fires in the next one, as the wheel rounds deadlines up to ticks anyway). An
    /// iteration still inside it is told by one subtraction, without a division.
    pub(crate) tick_start_us: u64,
    /// `EngineConfig::timer_tick` in microseconds (at least 1).
    pub(crate) tick_us: u64,
    /// UDP sockets by bound port, for the input lookup.
    pub(crate) udp_ports: HashMap<u16, Vec<SocketId>>,
    /// TCP tables, timers and defaults.
    pub(crate) tcp: TcpEngine,
    /// TCP counters.
    pub(crate) tcp_stats: TcpEngineStats,
    /// This engine's place among the engines of a multi-queue stack.
    pub(crate) forward: Option<Forwarding>,
    /// Engines that already looked at the frame being handled (0: it came from
    /// our own device).
    pub(crate) visited: u64,
    /// When we last defended one of our addresses against an ARP conflict (RFC 5227).
    pub(crate) arp_defended_at: Option<Instant>,
    /// IPv4 datagrams being reassembled (RFC 791, RFC 815).
    pub(crate) reassembly: crate::reassembly::Reassembly,
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
    /// Not ours: hand a copy to this engine (see [`super::forward`]).
    Forward(usize),
}

/// The engine's TCP state: tables, timers and defaults.
#[derive(Debug)]
pub(crate) struct TcpEngine {
    pub(crate) config: TcpConfig,
    pub(crate) binds: BindTable,
    pub(crate) listeners: ListenTable,
    pub(crate) conns: ConnTable<SocketId>,
    /// Half-open connections (request records).
    pub(crate) syn_queue: SynQueue,
    /// Connections in TIME-WAIT (compact records).
    pub(crate) time_wait: TimeWaitTable,
    /// SYN cookies for listeners whose SYN queue is full.
    pub(crate) cookies: Option<SynCookies>,
    /// When the last SYN cookie was sent: cookie ACKs are looked for only within the
    /// cookies' lifetime after it (Linux `tcp_synq_no_recent_overflow`).
    pub(crate) last_cookie: Option<Instant>,
    /// SYN-ACK retransmissions collected during a timer run (kept for its capacity).
    pub(crate) synacks: Vec<(crate::FourTuple, TcpRepr)>,
    pub(crate) timers: TimerWheel<SocketId>,
    pub(crate) isn: IsnGenerator,
    /// RFC 7323 §5.4 timestamp offsets per address pair.
    pub(crate) ts_offsets: TimestampOffsets,
    /// The configurations connections share (`Tcb::cfg`).
    pub(crate) configs: crate::tcp::SharedConfigs,
    /// Connections to run output and bookkeeping for in this iteration.
    pub(crate) dirty: Vec<SocketId>,
    /// Scratch for connections that found no TX frame (empty between iterations).
    pub(crate) blocked: Vec<SocketId>,
    /// Connections whose only output is a pure ACK of a request the application
    /// may answer: still marked, they are worked on at the start of the next
    /// iteration, so the answer carries the ACK (`Tcb::ack_may_wait`).
    pub(crate) held: Vec<SocketId>,
    pub(crate) expired: Vec<SocketId>,
}

/// Marks a connection for output and bookkeeping in this iteration (once).
#[inline]
pub(crate) fn mark(dirty: &mut Vec<SocketId>, sock: &mut TcpSock, id: SocketId) {
    mark_flag(dirty, &mut sock.dirty, id);
}

/// [`mark`] on the socket's `dirty` flag alone (for a caller that holds the
/// socket's other fields apart).
#[inline]
pub(crate) fn mark_flag(dirty: &mut Vec<SocketId>, flag: &mut bool, id: SocketId) {
    if !*flag {
        *flag = true;
        dirty.push(id);
    }
}

/// Control packets waiting for a TX frame (built at flush time).
#[derive(Debug)]
pub(crate) enum Outgoing {
    /// Ask who has this address.
    ArpRequest(Ipv4Addr),
    /// A whole frame parked while its next hop resolved; fill in the MAC and send.
    Released {
        /// The resolved MAC.
        mac: EthernetAddress,
        /// The frame, with a placeholder destination MAC.
        frame: Vec<u8>,
    },
    /// A segment without a connection behind it: an RST answering a segment for no
    /// connection (RFC 9293 §3.10.7.1), or a SYN-ACK or ACK of a request or TIME-WAIT
    /// record.
    TcpRst {
        /// Our address (the segment's destination).
        local: Ipv4Addr,
        /// The sender of the segment.
        remote: Ipv4Addr,
        /// The RST.
        repr: TcpRepr,
    },
    /// An ICMP destination unreachable about the quoted packet.
    Unreachable {
        /// The code.
        reason: DstUnreachable,
        /// The offending packet's IP header and first 8 payload bytes.
        quote: [u8; QUOTE_MAX],
        /// Bytes of `quote` used.
        len: usize,
    },
}

/// Longest quote an ICMP error carries: a 60-byte IP header and 8 bytes (RFC 792).
pub(crate) const QUOTE_MAX: usize = 68;

impl Core {
    /// Parks an ICMP destination unreachable (`reason`) about `ip_bytes` (the
    /// received IP packet) until flush time, when a TX frame can be taken.
    pub(crate) fn pending_unreachable(&mut self, reason: DstUnreachable, ip_bytes: &[u8]) {
        let header_len = ip_bytes.first().map_or(20, |b| usize::from(b & 0x0f) * 4);
        let len = (header_len + 8).min(ip_bytes.len()).min(QUOTE_MAX);
        let mut quote = [0u8; QUOTE_MAX];
        quote[..len].copy_from_slice(&ip_bytes[..len]);
        self.out.push(Outgoing::Unreachable { reason, quote, len });
    }

    /// The engine a frame to `dst_port` that missed here goes to next, if any
    /// (see [`super::forward`]).
    pub(crate) fn forward_hop(&self, dst_port: u16) -> Option<usize> {
        let f = self.forward.as_ref()?;
        let owner = self
            .ephemeral
            .range()
            .core_of_port(dst_port, f.mesh.cores());
        f.next_hop(self.visited, owner)
    }

    /// Runs the ARP cache's due retries and expiries.
    pub(crate) fn poll_timers(&mut self, now: Instant) {
        if self.neighbors.poll_at().is_some_and(|t| t <= now) {
            let polled = self.neighbors.poll(now);
            for ip in polled.requests {
                self.out.push(Outgoing::ArpRequest(ip));
            }
        }
        if self.reassembly.poll_at().is_some_and(|t| t <= now) {
            // RFC 791: the reassembly timer ran out; the fragments held go.
            for _ in 0..self.reassembly.poll(now) {
                self.stats.drop(super::stats::DropReason::FragmentTimeout);
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

    /// Queues an RST answering a segment from `remote` to `local` (built at
    /// flush time, RFC 9293 §3.10.7.1).
    /// Queues a segment that no `Tcb` sends (a request's SYN-ACK, a TIME-WAIT ACK).
    pub(crate) fn queue_tcp_control(&mut self, local: Ipv4Addr, remote: Ipv4Addr, repr: TcpRepr) {
        self.queue_rst(local, remote, repr);
    }

    pub(crate) fn queue_rst(&mut self, local: Ipv4Addr, remote: Ipv4Addr, rst: TcpRepr) {
        self.out.push(Outgoing::TcpRst {
            local,
            remote,
            repr: rst,
        });
    }
}

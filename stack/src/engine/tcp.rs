//! TCP in the engine: segment dispatch (connection, then listener, then RST),
//! the listeners' SYN and accept queues, output for every connection with work,
//! timers, and the socket calls (`tcp_usrreq.c` / `af_inet.c` territory).

use core::net::{Ipv4Addr, SocketAddrV4};
use core::time::Duration;

use surge_datapath::{Burst, Device};

use super::output::{Outgoing, send_ipv4};
use super::{Core, DropReason, Socket, Verdict};
use crate::socket::{
    ListenState, SocketHandle, SocketSet, TcpSock, TcpSocketOptions, TcpSocketState,
};
use crate::table::{BindTable, ConnTable, ListenTable, SocketId};
use crate::tcp::IcmpUnreachable;
use crate::tcp::{
    self, IsnGenerator, ListenAction, State, Tcb, TcpConfig, TcpError, TimestampOffsets,
};
use crate::time::Instant;
use crate::timer::TimerWheel;
use crate::wire::{DstUnreachable, TcpFlags};
use crate::wire::{IpProtocol, Ipv4Repr, TcpPacket, TcpRepr, TxChecksum, WireError};
use crate::{Errno, FourTuple};

/// Room reserved for the TCP header when a segment's payload is written: the
/// header's length is known only once the segment is, so the payload goes after
/// the largest header and moves down once (one short `memmove` per segment).
const MAX_TCP_HEADER: usize = 60;
/// Segments one connection may emit per loop iteration (fairness between connections).
const SEGMENTS_PER_POLL: usize = 64;

/// The engine's TCP state: tables, timers and defaults.
#[derive(Debug)]
pub(crate) struct TcpEngine {
    pub(crate) config: TcpConfig,
    pub(crate) binds: BindTable,
    pub(crate) listeners: ListenTable,
    pub(crate) conns: ConnTable<SocketId>,
    pub(crate) timers: TimerWheel<SocketId>,
    pub(crate) isn: IsnGenerator,
    /// RFC 7323 §5.4 timestamp offsets per address pair.
    pub(crate) ts_offsets: TimestampOffsets,
    pub(crate) dirty: Vec<SocketId>,
    pub(crate) expired: Vec<SocketId>,
}

/// Counters of the engine's TCP layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TcpEngineStats {
    /// Connections opened actively (`connect`).
    pub active_opens: u64,
    /// Connections opened passively (SYN to a listener).
    pub passive_opens: u64,
    /// Connections handed to the application by `accept`.
    pub accepted: u64,
    /// Connections that ended (reached CLOSED) and were freed.
    pub closed: u64,
    /// SYNs dropped: SYN queue or accept queue full.
    pub listen_overflows: u64,
    /// SYNs dropped: socket table or connection table full.
    pub table_full: u64,
    /// Segments not sent because no TX frame was free (retransmission recovers them).
    pub tx_blocked: u64,
    /// Active opens that took over a 4-tuple from our own TIME-WAIT (`tcp_tw_reuse`;
    /// Linux `TcpExtTWRecycled`).
    pub time_wait_reused: u64,
}

impl TcpEngineStats {
    /// Adds another engine's counters (for the stack-wide sum).
    pub fn add(&mut self, other: &TcpEngineStats) {
        self.active_opens += other.active_opens;
        self.passive_opens += other.passive_opens;
        self.accepted += other.accepted;
        self.closed += other.closed;
        self.listen_overflows += other.listen_overflows;
        self.table_full += other.table_full;
        self.tx_blocked += other.tx_blocked;
        self.time_wait_reused += other.time_wait_reused;
    }
}

/// The errno a TCP error reads as.
pub(crate) fn errno_of(e: TcpError) -> Errno {
    match e {
        TcpError::ConnectionRefused => Errno::ECONNREFUSED,
        TcpError::ConnectionReset => Errno::ECONNRESET,
        TcpError::ConnectionAborted => Errno::ECONNABORTED,
        TcpError::TimedOut => Errno::ETIMEDOUT,
        TcpError::BrokenPipe => Errno::EPIPE,
        TcpError::NotConnected => Errno::ENOTCONN,
        TcpError::WouldBlock => Errno::EAGAIN,
        TcpError::HostUnreachable => Errno::EHOSTUNREACH,
        TcpError::NetworkUnreachable => Errno::ENETUNREACH,
        TcpError::InvalidInput => Errno::EINVAL,
    }
}

/// Marks a connection for output and bookkeeping in this iteration (once).
fn mark(dirty: &mut Vec<SocketId>, sock: &mut TcpSock, id: SocketId) {
    if !sock.dirty {
        sock.dirty = true;
        dirty.push(id);
    }
}

/// Queues an RST (or RST-ACK) answering a segment from `remote` to `local`.
fn queue_rst(core: &mut Core, local: Ipv4Addr, remote: Ipv4Addr, rst: TcpRepr) {
    core.out.push(Outgoing::TcpRst {
        local,
        remote,
        repr: rst,
    });
}

/// A received segment (RFC 9293 §3.10.7): to its connection, else to a listener
/// (§3.10.7.2), else answered with RST (§3.10.7.1).
pub(crate) fn input(
    core: &mut Core,
    now: Instant,
    ip: &Ipv4Repr,
    seg: &TcpRepr,
    payload: &[u8],
) -> Verdict {
    if seg.src_port == 0 || seg.dst_port == 0 {
        core.stats.drop(DropReason::TcpRejected);
        return Verdict::Release;
    }
    let tuple = FourTuple {
        local_addr: ip.dst_addr,
        local_port: seg.dst_port,
        remote_addr: ip.src_addr,
        remote_port: seg.src_port,
    };
    if let Some(&id) = core.tcp.conns.get(&tuple) {
        if let Some(Socket::Tcp(sock)) = core.sockets.by_id_mut(id) {
            if let Some(tcb) = sock.tcb_mut() {
                // RFC 6191: a new SYN may reopen a TIME-WAIT connection.
                if tcb.state() == State::TimeWait && tcb.time_wait_accepts_syn(seg) {
                    let iss = tcb.time_wait_reuse_iss();
                    free_connection(core, id);
                    if let Some(listener) = core.tcp.listeners.lookup(&tuple).map(|l| l.id) {
                        accept_syn(core, now, listener, tuple, seg, Some(iss));
                    }
                    return Verdict::Release;
                }
                tcb.handle_segment(now, seg, payload);
                mark(&mut core.tcp.dirty, sock, id);
                return Verdict::Release;
            }
        }
    }
    let listener = core.tcp.listeners.lookup(&tuple).map(|l| l.id);
    // Multi-queue: a segment that is not a SYN for one of our listeners may
    // belong to another engine's connection (see `engine::forward`).
    let syn_for_us = listener.is_some()
        && seg.flags.contains(TcpFlags::SYN)
        && !seg.flags.contains(TcpFlags::ACK);
    if !syn_for_us {
        if let Some(target) = core.forward_hop(seg.dst_port) {
            return Verdict::Forward(target);
        }
    }
    if let Some(listener) = listener {
        match tcp::listen_action(seg, payload.len()) {
            ListenAction::Ignore => core.stats.drop(DropReason::TcpRejected),
            ListenAction::Reset(rst) => queue_rst(core, ip.dst_addr, ip.src_addr, rst),
            ListenAction::Accept => accept_syn(core, now, listener, tuple, seg, None),
        }
        return Verdict::Release;
    }
    core.stats.drop(DropReason::TcpNoConnection);
    if let Some(rst) = tcp::reply_to_unknown(seg, payload.len()) {
        queue_rst(core, ip.dst_addr, ip.src_addr, rst);
    }
    Verdict::Release
}

/// An ICMP destination unreachable quoting one of our TCP segments (RFC 1122
/// §4.2.3.9, RFC 5927): fragmentation needed lowers the path MTU (RFC 1191),
/// the others are soft errors (hard in SYN-SENT for port/protocol), handed to the
/// connection the quoted 4-tuple names; the TCB checks the quoted sequence number.
pub(crate) fn icmp_error(
    core: &mut Core,
    now: Instant,
    reason: DstUnreachable,
    next_hop_mtu: u16,
    quoted: &Ipv4Repr,
    data: &[u8],
) -> Verdict {
    // The first 8 bytes of the quoted TCP header: ports and sequence number.
    let Some(head) = data.get(..8) else {
        core.stats.drop(DropReason::IcmpIgnored);
        return Verdict::Release;
    };
    let local_port = u16::from_be_bytes([head[0], head[1]]);
    let remote_port = u16::from_be_bytes([head[2], head[3]]);
    let seq = u32::from_be_bytes([head[4], head[5], head[6], head[7]]);
    let tuple = FourTuple {
        local_addr: quoted.src_addr,
        local_port,
        remote_addr: quoted.dst_addr,
        remote_port,
    };
    let Some(&id) = core.tcp.conns.get(&tuple) else {
        if let Some(target) = core.forward_hop(local_port) {
            return Verdict::Forward(target);
        }
        core.stats.drop(DropReason::IcmpIgnored);
        return Verdict::Release;
    };
    let Some(Socket::Tcp(sock)) = core.sockets.by_id_mut(id) else {
        return Verdict::Release;
    };
    let Some(tcb) = sock.tcb_mut() else {
        return Verdict::Release;
    };
    let kind = match reason {
        DstUnreachable::FragRequired => {
            tcb.handle_icmp_frag_needed(now, next_hop_mtu, seq);
            None
        }
        DstUnreachable::NetUnreachable => Some(IcmpUnreachable::Network),
        DstUnreachable::HostUnreachable => Some(IcmpUnreachable::Host),
        DstUnreachable::ProtoUnreachable => Some(IcmpUnreachable::Protocol),
        DstUnreachable::PortUnreachable => Some(IcmpUnreachable::Port),
        DstUnreachable::AdminProhibited => Some(IcmpUnreachable::Prohibited),
        DstUnreachable::Other(_) => {
            core.stats.drop(DropReason::IcmpIgnored);
            return Verdict::Release;
        }
    };
    if let Some(kind) = kind {
        tcb.handle_icmp_unreachable(now, kind, seq);
    }
    mark(&mut core.tcp.dirty, sock, id);
    Verdict::Release
}

/// The TCP configuration for a socket with `options`, clamped to the interface.
fn config_for(core: &Core, options: &TcpSocketOptions) -> TcpConfig {
    let mut cfg = core.tcp.config;
    cfg.mss = cfg.mss.min(core.config.iface.mss());
    cfg.nodelay = options.nodelay || cfg.nodelay;
    if options.send_buffer > 0 {
        cfg.send_buffer = options.send_buffer;
    }
    if options.recv_buffer > 0 {
        cfg.recv_buffer = options.recv_buffer;
    }
    if options.keepalive.is_some() {
        cfg.keepalive = options.keepalive;
    }
    if options.user_timeout.is_some() {
        cfg.user_timeout = options.user_timeout;
    }
    cfg
}

/// A SYN for a listener: a child connection in SYN-RECEIVED, counted against the
/// listener's SYN queue (dropped when it or the accept queue is full, as Linux).
fn accept_syn(
    core: &mut Core,
    now: Instant,
    listener: SocketId,
    tuple: FourTuple,
    syn: &TcpRepr,
    iss: Option<u32>,
) {
    let Some(Socket::Tcp(parent)) = core.sockets.by_id_mut(listener) else {
        return;
    };
    let options = parent.options;
    let Some(queues) = parent.listen_state() else {
        return;
    };
    // Linux `inet_csk_reqsk_queue_is_full` / `sk_acceptq_is_full`: "full" is
    // `queued > backlog`, so a backlog of n holds n + 1.
    if queues.syn_pending > queues.syn_backlog
        || queues.accept_queue.len() as u64 > u64::from(queues.accept_backlog)
    {
        core.tcp_stats.listen_overflows += 1;
        core.stats.drop(DropReason::TcpListenOverflow);
        return;
    }
    let iss = iss.unwrap_or_else(|| core.tcp.isn.generate(&tuple, now));
    let cfg = config_for(core, &options);
    let mut tcb = Tcb::accept_syn(tuple, syn, iss, now, &cfg);
    tcb.set_ts_offset(
        core.tcp
            .ts_offsets
            .offset(tuple.local_addr, tuple.remote_addr),
    );
    let mut child = TcpSock::new();
    child.state = TcpSocketState::Connection(Box::new(tcb));
    child.options = options;
    child.local = Some(tuple.local());
    child.parent = Some(listener);
    let Ok(handle) = core.sockets.insert(Socket::Tcp(child)) else {
        core.tcp_stats.table_full += 1;
        core.stats.drop(DropReason::TcpListenOverflow);
        return;
    };
    let id = handle.id();
    if core.tcp.conns.insert(tuple, id).is_err() {
        core.sockets.remove_id(id);
        core.tcp_stats.table_full += 1;
        core.stats.drop(DropReason::TcpListenOverflow);
        return;
    }
    // The child shares the listener's port (Linux `__inet_inherit_port`); a
    // failure here only means the port accounting is off, never a lost SYN.
    let _ = core.tcp.binds.inherit_port(id, &tuple, options.bind);
    if let Some(Socket::Tcp(parent)) = core.sockets.by_id_mut(listener) {
        if let Some(q) = parent.listen_state() {
            q.syn_pending += 1;
        }
    }
    core.tcp_stats.passive_opens += 1;
    if let Some(Socket::Tcp(sock)) = core.sockets.by_id_mut(id) {
        sock.hashed = true;
        mark(&mut core.tcp.dirty, sock, id);
    }
}

/// Runs expired TCP timers (the wheel holds one per connection: its `poll_at`).
pub(crate) fn poll_timers(core: &mut Core, now: Instant) {
    let mut expired = core::mem::take(&mut core.tcp.expired);
    core.tcp.timers.advance(now, |_, id| expired.push(id));
    for id in expired.drain(..) {
        if let Some(Socket::Tcp(sock)) = core.sockets.by_id_mut(id) {
            sock.timer = None;
            if let Some(tcb) = sock.tcb_mut() {
                tcb.handle_timeout(now);
            }
            mark(&mut core.tcp.dirty, sock, id);
        }
    }
    core.tcp.expired = expired;
}

/// Output and bookkeeping for every connection marked this iteration.
pub(crate) fn process_dirty<D: Device>(
    core: &mut Core,
    device: &mut D,
    tx: &mut Burst,
    now: Instant,
) {
    let mut dirty = core::mem::take(&mut core.tcp.dirty);
    // Connections that found no free TX frame: they try again next iteration.
    let mut blocked = Vec::new();
    // Bookkeeping may mark more (a listener whose child closed); loop until quiet.
    for _ in 0..4 {
        if dirty.is_empty() {
            break;
        }
        for id in dirty.drain(..) {
            let tcb = match core.sockets.by_id_mut(id) {
                Some(Socket::Tcp(sock)) => {
                    sock.dirty = false;
                    match core::mem::replace(&mut sock.state, TcpSocketState::Closed) {
                        TcpSocketState::Connection(tcb) => tcb,
                        other => {
                            sock.state = other;
                            continue;
                        }
                    }
                }
                _ => continue,
            };
            let mut tcb = tcb;
            let no_frame = transmit(core, device, tx, now, &mut tcb);
            settle(core, now, id, tcb);
            if no_frame {
                if let Some(Socket::Tcp(sock)) = core.sockets.by_id_mut(id) {
                    mark(&mut blocked, sock, id);
                }
            }
        }
        core::mem::swap(&mut dirty, &mut core.tcp.dirty);
    }
    // Anything still marked waits for the next iteration.
    core.tcp.dirty.append(&mut dirty);
    core.tcp.dirty.append(&mut blocked);
}

/// Writes every segment the connection has into TX frames. Returns true when it
/// stopped because no TX frame was free before the next segment was built: that
/// segment (a SYN, data, a FIN, an ACK) was never sent and no timer covers it,
/// so the connection must be polled again.
fn transmit<D: Device>(
    core: &mut Core,
    device: &mut D,
    tx: &mut Burst,
    now: Instant,
    tcb: &mut Tcb,
) -> bool {
    let tuple = tcb.tuple();
    let remote = *&tuple.remote_addr;
    let offload = core.tx_checksum;
    for _ in 0..SEGMENTS_PER_POLL {
        // Nothing to send: no route, neighbour or frame work at all.
        if !tcb.may_transmit() {
            break;
        }
        let mut produced = false;
        let result = send_ipv4(
            core,
            device,
            tx,
            now,
            (Some(tuple.local_addr), remote),
            IpProtocol::Tcp,
            |buf, src| {
                let room = buf
                    .len()
                    .saturating_sub(MAX_TCP_HEADER)
                    .min(usize::from(u16::MAX));
                let Some(t) =
                    tcb.poll_transmit(now, &mut buf[MAX_TCP_HEADER..MAX_TCP_HEADER + room])
                else {
                    return Ok(0);
                };
                produced = true;
                let header_len = t.repr.header_len();
                let total = header_len + t.payload_len;
                buf.copy_within(MAX_TCP_HEADER..MAX_TCP_HEADER + t.payload_len, header_len);
                t.repr
                    .emit(&mut TcpPacket::new_unchecked(&mut buf[..header_len]))?;
                if offload == TxChecksum::Compute {
                    crate::wire::tcp::fill_checksum(
                        buf.get_mut(..total).ok_or(WireError::Truncated)?,
                        src,
                        remote,
                    )?;
                }
                Ok(total)
            },
        );
        if result == Err(Errno::ENOBUFS) && !produced {
            return true;
        }
        if result.is_err() {
            core.tcp_stats.tx_blocked += u64::from(produced);
            break;
        }
        if !produced {
            break;
        }
    }
    false
}

/// After a connection's input, timers or output: re-arm its timer, move a
/// finished handshake to the accept queue, free what has ended.
fn settle(core: &mut Core, now: Instant, id: SocketId, tcb: Box<Tcb>) {
    let state = tcb.state();
    let deadline = tcb.poll_at();
    let Some(Socket::Tcp(sock)) = core.sockets.by_id_mut(id) else {
        return;
    };
    sock.state = TcpSocketState::Connection(tcb);
    // Re-arm the timer only when its deadline moved earlier (or there was none):
    // a later deadline (the RTO restarting on every ACK) keeps the wheel entry,
    // which then fires early, finds nothing due, and re-arms for the real
    // deadline once; a deadline that went away leaves the entry to fire
    // harmlessly. This spares a cancel and an insert per segment.
    let current = sock.timer.map(|(_, d)| d);
    let keep = match (current, deadline) {
        (Some(scheduled), Some(d)) => d >= scheduled,
        (Some(_), None) => true,
        (None, _) => false,
    };
    if !keep && current != deadline {
        if let Some((handle, _)) = sock.timer.take() {
            core.tcp.timers.cancel(handle);
        }
        if let Some(d) = deadline {
            match core.tcp.timers.insert(d.max(now), id) {
                Ok(handle) => sock.timer = Some((handle, d)),
                // A full wheel: poll the connection next iteration instead.
                Err(_) => mark(&mut core.tcp.dirty, sock, id),
            }
        }
    }
    let parent = sock.parent;
    let queued = sock.queued_for_accept;
    let orphan = sock.orphan;
    if state == State::TimeWait {
        let _ = core.tcp.binds.enter_time_wait(id);
    }
    match state {
        State::Closed => {
            let user_holds_it = !orphan && (parent.is_none() || queued);
            if let Some(parent) = parent.filter(|_| !queued) {
                // An embryonic connection failed: it leaves the SYN queue.
                if let Some(Socket::Tcp(l)) = core.sockets.by_id_mut(parent) {
                    if let Some(q) = l.listen_state() {
                        q.syn_pending = q.syn_pending.saturating_sub(1);
                    }
                }
            }
            if user_holds_it {
                // The application still has the handle: unhash, keep the socket
                // for its error or EOF, free the port unless bound by the user.
                unhash(core, id);
            } else {
                free_connection(core, id);
            }
        }
        State::Established | State::CloseWait if parent.is_some() && !queued => {
            let parent = parent.unwrap_or(SocketId(u32::MAX));
            let moved = match core.sockets.by_id_mut(parent) {
                Some(Socket::Tcp(l)) => match l.listen_state() {
                    Some(q) if q.accept_queue.len() as u64 <= u64::from(q.accept_backlog) => {
                        q.accept_queue.push_back(id);
                        q.syn_pending = q.syn_pending.saturating_sub(1);
                        true
                    }
                    _ => false,
                },
                _ => false,
            };
            if moved {
                if let Some(Socket::Tcp(sock)) = core.sockets.by_id_mut(id) {
                    sock.queued_for_accept = true;
                }
            }
        }
        _ => {}
    }
}

/// Removes a connection from the connection table and the timer wheel.
fn unhash(core: &mut Core, id: SocketId) {
    let Some(Socket::Tcp(sock)) = core.sockets.by_id_mut(id) else {
        return;
    };
    if let Some((handle, _)) = sock.timer.take() {
        core.tcp.timers.cancel(handle);
    }
    if sock.hashed {
        sock.hashed = false;
        if let Some(tcb) = sock.tcb() {
            core.tcp.conns.remove(&tcb.tuple());
        }
        core.tcp.binds.disconnect(id);
    }
}

/// Frees a connection whose socket nobody holds any more.
fn free_connection(core: &mut Core, id: SocketId) {
    unhash(core, id);
    core.tcp.binds.unbind(id);
    if core.sockets.remove_id(id).is_some() {
        core.tcp_stats.closed += 1;
    }
}

/// Builds a queued RST (from no connection) into a TX frame.
pub(crate) fn send_rst<D: Device>(
    core: &mut Core,
    device: &mut D,
    tx: &mut Burst,
    now: Instant,
    local: Ipv4Addr,
    remote: Ipv4Addr,
    repr: &TcpRepr,
) {
    let offload = core.tx_checksum;
    let sent = send_ipv4(
        core,
        device,
        tx,
        now,
        (Some(local), remote),
        IpProtocol::Tcp,
        |buf, src| {
            let len = repr.header_len();
            let out = buf.get_mut(..len).ok_or(WireError::Truncated)?;
            repr.emit(&mut TcpPacket::new_unchecked(&mut *out))?;
            if offload == TxChecksum::Compute {
                crate::wire::tcp::fill_checksum(
                    out,
                    if src == local { src } else { local },
                    remote,
                )?;
            }
            Ok(len)
        },
    );
    if sent.is_ok() {
        core.stats.tcp_rst_sent += 1;
    }
}

// ---- socket calls ----

fn tcp_sock(sockets: &mut SocketSet<Socket>, handle: SocketHandle) -> Result<&mut TcpSock, Errno> {
    match sockets.get_mut(handle)? {
        Socket::Tcp(s) if !s.orphan => Ok(s),
        Socket::Tcp(_) => Err(Errno::EBADF),
        Socket::Udp(_) => Err(Errno::EOPNOTSUPP),
    }
}

/// `socket(AF_INET, SOCK_STREAM, 0)`.
pub(crate) fn socket(core: &mut Core) -> Result<SocketHandle, Errno> {
    core.sockets.insert(Socket::Tcp(TcpSock::new()))
}

/// `bind(2)`.
pub(crate) fn bind(
    core: &mut Core,
    handle: SocketHandle,
    addr: SocketAddrV4,
) -> Result<SocketAddrV4, Errno> {
    let options = tcp_sock(&mut core.sockets, handle)?.options.bind;
    let bound = core.tcp.binds.bind(
        handle.id(),
        *addr.ip(),
        addr.port(),
        options,
        &mut core.ephemeral,
    )?;
    tcp_sock(&mut core.sockets, handle)?.local = Some(bound);
    Ok(bound)
}

/// `listen(2)`: auto-binds an unbound socket; backlog = min(backlog, somaxconn).
/// A second `listen` updates the backlog. EINVAL on a connected socket.
pub(crate) fn listen(core: &mut Core, handle: SocketHandle, backlog: i32) -> Result<(), Errno> {
    let sock = tcp_sock(&mut core.sockets, handle)?;
    let options = sock.options.bind;
    match sock.state {
        TcpSocketState::Connection(_) => return Err(Errno::EINVAL),
        TcpSocketState::Listening(_) => {
            let l = core.tcp.listeners.set_backlog(handle.id(), backlog)?;
            let (accept, syn) = (l.accept_backlog, l.syn_backlog);
            if let Some(q) = tcp_sock(&mut core.sockets, handle)?.listen_state() {
                q.accept_backlog = accept;
                q.syn_backlog = syn;
            }
            return Ok(());
        }
        TcpSocketState::Closed => {}
    }
    let local = core
        .tcp
        .binds
        .listen(handle.id(), options, &mut core.ephemeral)?;
    let listener = core.tcp.listeners.insert(
        handle.id(),
        local,
        backlog,
        options.reuse_port,
        options.owner,
    )?;
    let queues = ListenState {
        accept_backlog: listener.accept_backlog,
        syn_backlog: listener.syn_backlog,
        ..ListenState::default()
    };
    let sock = tcp_sock(&mut core.sockets, handle)?;
    sock.local = Some(local);
    sock.state = TcpSocketState::Listening(queues);
    Ok(())
}

/// `accept(2)`, non-blocking: the next established connection, or EAGAIN.
pub(crate) fn accept(
    core: &mut Core,
    handle: SocketHandle,
) -> Result<(SocketHandle, SocketAddrV4), Errno> {
    let sock = tcp_sock(&mut core.sockets, handle)?;
    let q = sock.listen_state().ok_or(Errno::EINVAL)?;
    let id = q.accept_queue.pop_front().ok_or(Errno::EAGAIN)?;
    let child = core.sockets.handle_of(id).ok_or(Errno::ECONNABORTED)?;
    let Some(Socket::Tcp(c)) = core.sockets.by_id_mut(id) else {
        return Err(Errno::ECONNABORTED);
    };
    c.parent = None;
    c.queued_for_accept = false;
    let peer = c
        .tcb()
        .map(|t| t.tuple().remote())
        .ok_or(Errno::ECONNABORTED)?;
    core.tcp_stats.accepted += 1;
    Ok((child, peer))
}

/// `connect(2)`, non-blocking: starts the handshake and returns EINPROGRESS;
/// completion shows as writable (or an error from `take_error`). An unbound socket
/// connects from `source` when given (one of our addresses), else from the route's.
pub(crate) fn connect(
    core: &mut Core,
    handle: SocketHandle,
    source: Option<Ipv4Addr>,
    remote: SocketAddrV4,
    now: Instant,
) -> Result<(), Errno> {
    let sock = tcp_sock(&mut core.sockets, handle)?;
    match &sock.state {
        TcpSocketState::Listening(_) => return Err(Errno::EISCONN),
        TcpSocketState::Connection(tcb) => {
            return Err(match tcb.state() {
                State::SynSent | State::SynReceived => Errno::EALREADY,
                _ => Errno::EISCONN,
            });
        }
        TcpSocketState::Closed => {}
    }
    if remote.port() == 0
        || remote.ip().is_unspecified()
        || remote.ip().is_broadcast()
        || remote.ip().is_multicast()
    {
        return Err(Errno::EINVAL);
    }
    let options = sock.options;
    let bound = sock.local;
    let mut route = core
        .config
        .iface
        .route(*remote.ip())
        .map_err(|_| Errno::ENETUNREACH)?;
    if let Some(source) = source {
        if bound.is_some() {
            return Err(Errno::EINVAL);
        }
        if !core.config.iface.is_local(source) {
            return Err(Errno::EADDRNOTAVAIL);
        }
        route.source = source;
    }
    let id = handle.id();
    let conns = &core.tcp.conns;
    let sockets = &core.sockets;
    let rss = core.config.rss.as_ref();
    let queue = core.config.core;
    let tw_reuse = core.config.tw_reuse;
    // Linux `__inet_check_established`: a 4-tuple is free when no connection holds
    // it, or when our own TIME-WAIT holds it and `tcp_tw_reuse` may take it over.
    let tuple_unused = |t: &FourTuple| match conns.get(t) {
        None => true,
        Some(&other) => tw_reuse && time_wait_reusable(sockets, other, now),
    };
    // With a known RSS, only ports whose replies come back to our queue.
    let tuple_free =
        |t: &FourTuple| tuple_unused(t) && rss.is_none_or(|r| r.reply_queue(t) == queue);
    let local = match bound {
        Some(_) => core
            .tcp
            .binds
            .connect_bound(id, route.source, remote, tuple_unused)?,
        None => {
            let port = core.tcp.binds.ephemeral_for_connect(
                id,
                options.bind,
                route.source,
                remote,
                &mut core.ephemeral,
                tuple_free,
            )?;
            SocketAddrV4::new(route.source, port)
        }
    };
    let tuple = FourTuple::new(local, remote);
    // Linux `tcp_twsk_unique`: the new incarnation starts beyond anything the old
    // one sent, plus a maximal window; the TIME-WAIT goes.
    let reused_iss = match core.tcp.conns.get(&tuple) {
        Some(&tw) => {
            let iss = tcb_of(&core.sockets, tw).map(Tcb::time_wait_reuse_iss);
            free_connection(core, tw);
            core.tcp_stats.time_wait_reused += 1;
            iss
        }
        None => None,
    };
    let iss = reused_iss.unwrap_or_else(|| core.tcp.isn.generate(&tuple, now));
    let cfg = config_for(core, &options);
    let mut tcb = Tcb::connect(tuple, iss, now, &cfg);
    tcb.set_ts_offset(core.tcp.ts_offsets.offset(*local.ip(), *remote.ip()));
    if core.tcp.conns.insert(tuple, id).is_err() {
        core.tcp.binds.disconnect(id);
        return Err(Errno::ENOBUFS);
    }
    let sock = tcp_sock(&mut core.sockets, handle)?;
    sock.local = Some(local);
    sock.state = TcpSocketState::Connection(Box::new(tcb));
    sock.hashed = true;
    mark(&mut core.tcp.dirty, sock, id);
    core.tcp_stats.active_opens += 1;
    Err(Errno::EINPROGRESS)
}

/// The TCB of connection `id`, if it has one.
fn tcb_of(sockets: &SocketSet<Socket>, id: SocketId) -> Option<&Tcb> {
    match sockets.by_id(id) {
        Some(Socket::Tcp(sock)) => sock.tcb(),
        _ => None,
    }
}

/// Linux `tcp_twsk_unique` with `tcp_tw_reuse` on: connection `id` is an orphaned
/// TIME-WAIT whose peer sent timestamps, the last of them at least a second ago, so
/// the peer's PAWS tells the old incarnation's duplicates from the new one's
/// segments (RFC 7323 §5, RFC 6191).
fn time_wait_reusable(sockets: &SocketSet<Socket>, id: SocketId, now: Instant) -> bool {
    match sockets.by_id(id) {
        Some(Socket::Tcp(sock)) => {
            sock.orphan && sock.tcb().is_some_and(|tcb| tcb.can_reuse_time_wait(now))
        }
        _ => false,
    }
}

fn with_tcb<R>(
    core: &mut Core,
    handle: SocketHandle,
    f: impl FnOnce(&mut Tcb) -> Result<R, Errno>,
) -> Result<R, Errno> {
    let sock = tcp_sock(&mut core.sockets, handle)?;
    let result = match &mut sock.state {
        TcpSocketState::Connection(tcb) => f(tcb),
        TcpSocketState::Listening(_) | TcpSocketState::Closed => Err(Errno::ENOTCONN),
    };
    mark(&mut core.tcp.dirty, sock, handle.id());
    result
}

/// `send(2)`, non-blocking: bytes accepted into the send buffer, or EAGAIN.
pub(crate) fn send(core: &mut Core, handle: SocketHandle, data: &[u8]) -> Result<usize, Errno> {
    with_tcb(core, handle, |tcb| match tcb.state() {
        State::SynSent | State::SynReceived => Err(Errno::EAGAIN),
        _ => tcb.send(data).map_err(errno_of),
    })
}

/// `recv(2)`, non-blocking: bytes read, 0 at end of stream, or EAGAIN.
pub(crate) fn recv(core: &mut Core, handle: SocketHandle, buf: &mut [u8]) -> Result<usize, Errno> {
    with_tcb(core, handle, |tcb| match tcb.state() {
        State::SynSent | State::SynReceived => Err(Errno::EAGAIN),
        _ => tcb.recv(buf).map_err(errno_of),
    })
}

/// `shutdown(SHUT_WR)`: FIN after the queued data.
pub(crate) fn shutdown_write(core: &mut Core, handle: SocketHandle) -> Result<(), Errno> {
    with_tcb(core, handle, |tcb| {
        tcb.shutdown_write();
        Ok(())
    })
}

/// `getsockopt(SO_ERROR)`: the pending error, cleared by reading it.
pub(crate) fn take_error(core: &mut Core, handle: SocketHandle) -> Result<Option<Errno>, Errno> {
    let sock = tcp_sock(&mut core.sockets, handle)?;
    Ok(sock.tcb().and_then(|t| t.error()).map(errno_of))
}

/// `getpeername(2)`.
pub(crate) fn peer_addr(core: &mut Core, handle: SocketHandle) -> Result<SocketAddrV4, Errno> {
    let sock = tcp_sock(&mut core.sockets, handle)?;
    match sock.tcb() {
        Some(t) if t.state() != State::Closed && t.state() != State::SynSent => {
            Ok(t.tuple().remote())
        }
        _ => Err(Errno::ENOTCONN),
    }
}

/// `close(2)`: a listener closes with its unaccepted children (RST to each); a
/// connection goes on as an orphan until it ends (FIN, or RST when data was left
/// unread or SO_LINGER is zero, RFC 2525 §2.17).
pub(crate) fn close(core: &mut Core, handle: SocketHandle) -> Result<(), Errno> {
    let sock = tcp_sock(&mut core.sockets, handle)?;
    let id = handle.id();
    match &mut sock.state {
        TcpSocketState::Closed => {
            core.tcp.binds.unbind(id);
            core.sockets.remove_id(id);
        }
        TcpSocketState::Listening(q) => {
            let children: Vec<SocketId> = q.accept_queue.drain(..).collect();
            core.tcp.listeners.remove(id);
            core.tcp.binds.unbind(id);
            core.sockets.remove_id(id);
            // Embryonic children: find them by parent (rare, close of a listener).
            let embryos: Vec<SocketId> = core
                .sockets
                .iter()
                .filter_map(|(cid, s)| match s {
                    Socket::Tcp(t) if t.parent == Some(id) => Some(cid),
                    _ => None,
                })
                .collect();
            for child in children.into_iter().chain(embryos) {
                if let Some(Socket::Tcp(c)) = core.sockets.by_id_mut(child) {
                    c.orphan = true;
                    c.parent = None;
                    if let Some(tcb) = c.tcb_mut() {
                        tcb.abort();
                    }
                    mark(&mut core.tcp.dirty, c, child);
                }
            }
        }
        TcpSocketState::Connection(tcb) => {
            if sock.options.linger == Some(Duration::ZERO) {
                tcb.abort();
            } else {
                tcb.close();
            }
            sock.orphan = true;
            mark(&mut core.tcp.dirty, sock, id);
        }
    }
    Ok(())
}

/// Readiness of a socket, epoll-style.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Readiness {
    /// `recv` (or `accept`) would not block.
    pub readable: bool,
    /// `send` would not block (or a connect completed).
    pub writable: bool,
    /// An error is pending (SO_ERROR).
    pub error: bool,
    /// The connection is closed both ways (EPOLLHUP).
    pub hangup: bool,
}

/// The readiness of `handle`.
pub(crate) fn readiness(core: &mut Core, handle: SocketHandle) -> Result<Readiness, Errno> {
    let sock = tcp_sock(&mut core.sockets, handle)?;
    Ok(match &sock.state {
        TcpSocketState::Closed => Readiness {
            hangup: true,
            ..Readiness::default()
        },
        TcpSocketState::Listening(q) => Readiness {
            readable: !q.accept_queue.is_empty(),
            ..Readiness::default()
        },
        TcpSocketState::Connection(tcb) => Readiness {
            readable: tcb.is_readable(),
            writable: tcb.is_writable(),
            error: tcb.error().is_some(),
            hangup: tcb.state() == State::Closed,
        },
    })
}

/// Sets socket options (before `bind`/`connect` for those that need it).
pub(crate) fn set_options(
    core: &mut Core,
    handle: SocketHandle,
    options: TcpSocketOptions,
) -> Result<(), Errno> {
    let sock = tcp_sock(&mut core.sockets, handle)?;
    sock.options = options;
    if let Some(tcb) = sock.tcb_mut() {
        tcb.set_nodelay(options.nodelay);
        tcb.set_keepalive(options.keepalive);
        tcb.set_user_timeout(options.user_timeout);
        mark(&mut core.tcp.dirty, sock, handle.id());
    }
    Ok(())
}

/// Reads the socket options.
pub(crate) fn options(core: &mut Core, handle: SocketHandle) -> Result<TcpSocketOptions, Errno> {
    Ok(tcp_sock(&mut core.sockets, handle)?.options)
}

/// Connections whose own data or FIN the peer has not acknowledged yet
/// (what a stack that stops now would lose).
pub(crate) fn draining(core: &Core) -> usize {
    core.sockets
        .iter()
        .filter(|(_, s)| match s {
            Socket::Tcp(t) => t.tcb().is_some_and(|tcb| {
                matches!(
                    tcb.state(),
                    State::SynSent
                        | State::SynReceived
                        | State::Established
                        | State::CloseWait
                        | State::FinWait1
                        | State::Closing
                        | State::LastAck
                )
            }),
            Socket::Udp(_) => false,
        })
        .count()
}

/// The connection's counters (TCP_INFO-like).
pub(crate) fn info(core: &mut Core, handle: SocketHandle) -> Result<(State, tcp::TcpStats), Errno> {
    let sock = tcp_sock(&mut core.sockets, handle)?;
    let tcb = sock.tcb().ok_or(Errno::ENOTCONN)?;
    Ok((tcb.state(), *tcb.stats()))
}

/// When the TCP layer next needs to run.
pub(crate) fn poll_at(core: &Core) -> Option<Instant> {
    if core.tcp.dirty.is_empty() {
        core.tcp.timers.next_deadline()
    } else {
        Some(Instant::ZERO)
    }
}

//! Listeners: `listen`, the SYN queue (embryonic connections) and the accept
//! queue, `accept`, and closing a listener (Linux `inet_connection_sock.c`).

use core::net::SocketAddrV4;

use super::{config_for, tcp_sock};
use crate::engine::state::{Core, Socket, mark};
use crate::engine::stats::DropReason;
use crate::socket::{
    ListenState, SharedAcceptQueue, SocketHandle, TcpSock, TcpSocketOptions, TcpSocketState,
};
use crate::table::SocketId;
use crate::tcp::syn_cookie::cookie_timestamp;
use crate::tcp::{
    AdmitError, CookieError, CookieOptions, RequestAction, RequestSock, Tcb, TcpConfig,
};
use crate::time::Instant;
use crate::wire::{TcpFlags, TcpRepr};
use crate::{Errno, FourTuple};
use core::time::Duration;

/// The listener's socket options and queue limits, when `listener` still listens.
fn listener_of(core: &mut Core, listener: SocketId) -> Option<(TcpSocketOptions, u32, bool)> {
    let Some(Socket::Tcp(parent)) = core.sockets.by_id_mut(listener) else {
        return None;
    };
    let options = parent.options;
    let q = parent.listen_state()?;
    // Linux `sk_acceptq_is_full`: "full" is `queued > backlog` (in every engine
    // together when the listener is shared).
    Some((options, q.syn_backlog, q.is_full()))
}

/// The TCP configuration of `listener`'s children (the engine's default when it is gone).
pub(crate) fn listener_config(core: &Core, listener: SocketId) -> TcpConfig {
    match core.sockets.by_id(listener) {
        Some(Socket::Tcp(parent)) => config_for(core, &parent.options),
        _ => config_for(core, &TcpSocketOptions::default()),
    }
}

/// A SYN for a listener (RFC 9293 §3.10.7.2): a request record and its SYN-ACK
/// (Linux `tcp_conn_request`), or, when the SYN queue is full, a SYN cookie (RFC 4987
/// §3.6) and no state at all. Dropped when the accept queue is full, as Linux.
pub(crate) fn accept_syn(
    core: &mut Core,
    now: Instant,
    listener: SocketId,
    tuple: FourTuple,
    syn: &TcpRepr,
    iss: Option<u32>,
) {
    let Some((options, syn_backlog, accept_full)) = listener_of(core, listener) else {
        return;
    };
    if accept_full {
        core.tcp_stats.listen_overflows += 1;
        core.stats.drop(DropReason::TcpListenOverflow);
        return;
    }
    let mut cfg = config_for(core, &options);
    cfg.ts_offset = core
        .tcp
        .ts_offsets
        .offset(tuple.local_addr, tuple.remote_addr);
    let iss = iss.unwrap_or_else(|| core.tcp.isn.generate(&tuple, now));
    let refused = match core
        .tcp
        .syn_queue
        .admit(listener, syn_backlog, tuple, syn, iss, now, &cfg)
    {
        Ok(synack) => {
            core.queue_tcp_control(tuple.local_addr, tuple.remote_addr, synack);
            return;
        }
        // A retransmitted SYN always finds its request first (see `demux`).
        Err(AdmitError::Duplicate) => return,
        Err(AdmitError::QueueFull) => {
            core.tcp_stats.listen_overflows += 1;
            DropReason::TcpListenOverflow
        }
        Err(AdmitError::NoBuffers(_)) => {
            core.tcp_stats.table_full += 1;
            DropReason::TcpListenOverflow
        }
    };
    let Some(cookies) = core.tcp.cookies.as_ref() else {
        core.stats.drop(refused);
        return;
    };
    // RFC 4987 §3.6: the SYN-ACK carries the state; nothing is kept.
    let (iss, mss) = cookies.iss(&tuple, syn, now);
    let mut kept = *syn;
    kept.options.mss = Some(mss);
    let timestamps = cfg.timestamps && syn.options.timestamp.is_some();
    if !timestamps {
        // Without timestamps a cookie cannot carry window scale or SACK (Linux
        // `tcp_clear_options`): offer neither.
        kept.options.window_scale = None;
        kept.options.sack_permitted = false;
    }
    let req = RequestSock::new(tuple, listener, &kept, iss, now, &cfg);
    let mut synack = req.synack(now, &cfg);
    if let Some((tsval, tsecr)) = synack.options.timestamp {
        let opts = CookieOptions::from_syn(&kept);
        synack.options.timestamp = Some((cookie_timestamp(tsval, opts), tsecr));
    }
    core.tcp.last_cookie = Some(now);
    core.tcp_stats.syn_cookies_sent += 1;
    core.queue_tcp_control(tuple.local_addr, tuple.remote_addr, synack);
}

/// A segment for a half-open connection: the request record answers it; the ACK that
/// completes the handshake makes the connection (Linux `tcp_check_req`).
pub(crate) fn request_input(
    core: &mut Core,
    now: Instant,
    tuple: FourTuple,
    seg: &TcpRepr,
    payload: &[u8],
) {
    let Some(listener) = core.tcp.syn_queue.get(&tuple).map(|r| r.listener()) else {
        return;
    };
    let cfg = listener_config(core, listener);
    let completes =
        seg.flags.contains(TcpFlags::ACK) && !seg.flags.intersects(TcpFlags::SYN | TcpFlags::RST);
    if completes && listener_of(core, listener).is_some_and(|(_, _, full)| full) {
        // Linux (`tcp_abort_on_overflow` off): the accept queue is full, drop the ACK and
        // keep the request; the peer's retransmission tries again.
        core.tcp_stats.listen_overflows += 1;
        core.stats.drop(DropReason::TcpListenOverflow);
        return;
    }
    let Some((action, done)) =
        core.tcp
            .syn_queue
            .handle_segment(&tuple, now, seg, payload.len(), &cfg)
    else {
        return;
    };
    match action {
        RequestAction::SynAck(repr) | RequestAction::Ack(repr) | RequestAction::Reset(repr) => {
            core.queue_tcp_control(tuple.local_addr, tuple.remote_addr, repr);
        }
        RequestAction::Complete => {
            if let Some(req) = done {
                establish(core, now, &req, seg, payload, &cfg);
            }
        }
        RequestAction::Drop | RequestAction::Aborted => {}
    }
}

/// An ACK for a listener that may carry a SYN cookie (RFC 4987 §3.6). Returns true
/// when it was handled here: a valid cookie made the connection, or a stale or forged
/// one was counted and dropped. False when no cookie was sent lately or the segment is
/// not a plain ACK: the caller answers as LISTEN does.
pub(crate) fn cookie_input(
    core: &mut Core,
    now: Instant,
    listener: SocketId,
    tuple: FourTuple,
    seg: &TcpRepr,
    payload: &[u8],
) -> bool {
    let recent = core.tcp.last_cookie.is_some_and(|t| {
        now - t
            < Duration::from_secs(60 * u64::from(crate::tcp::syn_cookie::COOKIE_MAX_AGE_MINUTES))
    });
    let Some(cookies) = core.tcp.cookies.as_ref().filter(|_| recent) else {
        return false;
    };
    let conn = match cookies.check(&tuple, seg, now) {
        Ok(conn) => conn,
        Err(CookieError::NotAnAck) => return false,
        Err(CookieError::Expired | CookieError::Invalid) => {
            core.tcp_stats.syn_cookies_rejected += 1;
            core.stats.drop(DropReason::TcpRejected);
            return true;
        }
    };
    let Some((_, _, accept_full)) = listener_of(core, listener) else {
        return false;
    };
    let mut cfg = listener_config(core, listener);
    cfg.ts_offset = core
        .tcp
        .ts_offsets
        .offset(tuple.local_addr, tuple.remote_addr);
    let syn = conn.reconstructed_syn(seg);
    if accept_full {
        core.tcp_stats.listen_overflows += 1;
        core.stats.drop(DropReason::TcpListenOverflow);
        // The ACK is dropped (Linux `tcp_v4_syn_recv_sock` on overflow), but a
        // cookie keeps no state: the peer, ESTABLISHED on its side, would wait in
        // silence until it sends data (Linux's clients do). Keep a request record
        // instead, as if the SYN came now (its SYN-ACK, already sent, is not
        // repeated): its retransmission draws a new ACK, which gets in once an
        // `accept` made room, as for any request. Beyond the SYN backlog: the ACK
        // proved the peer's address, so spoofed SYNs cannot make such records;
        // the record table's capacity bounds them, and new SYNs meeting the full
        // SYN queue still get cookies (RFC 4987 §3.6).
        let _ = core
            .tcp
            .syn_queue
            .admit(listener, u32::MAX, tuple, &syn, conn.iss, now, &cfg);
        return true;
    }
    let req = RequestSock::new(tuple, listener, &syn, conn.iss, now, &cfg).without_rtt_sample();
    core.tcp_stats.syn_cookies_accepted += 1;
    establish(core, now, &req, seg, payload, &cfg);
    true
}

/// The handshake of `req` completed with `ack`: a connection socket for the listener
/// (Linux `tcp_v4_syn_recv_sock`), given `ack` itself, in the connection table. When the
/// listener is gone or a table is full the peer gets a RST.
fn establish(
    core: &mut Core,
    now: Instant,
    req: &RequestSock,
    ack: &TcpRepr,
    payload: &[u8],
    cfg: &TcpConfig,
) {
    let tuple = req.tuple();
    let listener = req.listener();
    let Some((options, _, _)) = listener_of(core, listener) else {
        if let Some(rst) = crate::tcp::reply_to_unknown(ack, payload.len()) {
            core.queue_rst(tuple.local_addr, tuple.remote_addr, rst);
        }
        return;
    };
    let mut tcb = Tcb::from_request_shared(req, now, core.tcp.configs.share(cfg));
    tcb.handle_segment(now, ack, payload);
    let mut child = TcpSock::new();
    child.state = TcpSocketState::Connection(Box::new(tcb));
    child.options = options;
    child.local = Some(tuple.local());
    child.parent = Some(listener);
    let refuse = |core: &mut Core| {
        core.tcp_stats.table_full += 1;
        core.stats.drop(DropReason::TcpListenOverflow);
        if let Some(rst) = crate::tcp::reply_to_unknown(ack, payload.len()) {
            core.queue_rst(tuple.local_addr, tuple.remote_addr, rst);
        }
    };
    let Ok(handle) = core.sockets.insert(Socket::Tcp(child)) else {
        refuse(core);
        return;
    };
    let id = handle.id();
    if core.tcp.conns.insert(tuple, id).is_err() {
        core.sockets.remove_id(id);
        refuse(core);
        return;
    }
    // The child shares the listener's port (Linux `__inet_inherit_port`); a
    // failure here only means the port accounting is off, never a lost connection.
    let _ = core.tcp.binds.inherit_port(id, &tuple, options.bind);
    if let Some(Socket::Tcp(parent)) = core.sockets.by_id_mut(listener) {
        if let Some(q) = parent.listen_state() {
            // `handshake_done` moves it from the SYN queue count to the accept queue.
            q.syn_pending += 1;
        }
    }
    core.tcp_stats.passive_opens += 1;
    if let Some(Socket::Tcp(sock)) = core.sockets.by_id_mut(id) {
        sock.hashed = true;
        mark(&mut core.tcp.dirty, sock, id);
    }
}

/// `listen(2)`: auto-binds an unbound socket; backlog = min(backlog, somaxconn).
/// A second `listen` updates the backlog. EINVAL on a connected socket.
/// With `shared`, the accept queue's count is shared with other engines' listeners
/// of the same socket (see [`SharedAcceptQueue`]).
pub(crate) fn listen(
    core: &mut Core,
    handle: SocketHandle,
    backlog: i32,
    shared: Option<SharedAcceptQueue>,
) -> Result<(), Errno> {
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
        shared,
        ..ListenState::default()
    };
    let sock = tcp_sock(&mut core.sockets, handle)?;
    sock.local = Some(local);
    sock.state = TcpSocketState::Listening(queues);
    core.queue_ready(handle.id());
    Ok(())
}

/// `accept(2)`, non-blocking: the next established connection, or EAGAIN.
pub(crate) fn accept(
    core: &mut Core,
    handle: SocketHandle,
) -> Result<(SocketHandle, SocketAddrV4), Errno> {
    let result = take_accepted(core, handle);
    match &result {
        Ok((child, _)) => {
            core.called(handle.id(), true, false);
            // The program holds the child from now on: its first event says all.
            core.report_afresh(child.id());
        }
        Err(Errno::EAGAIN | Errno::ECONNABORTED) => core.called(handle.id(), true, false),
        Err(_) => {}
    }
    result
}

/// Pops the accept queue of the listener `handle`.
fn take_accepted(
    core: &mut Core,
    handle: SocketHandle,
) -> Result<(SocketHandle, SocketAddrV4), Errno> {
    let sock = tcp_sock(&mut core.sockets, handle)?;
    let q = sock.listen_state().ok_or(Errno::EINVAL)?;
    let id = q.pop().ok_or(Errno::EAGAIN)?;
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

/// An embryonic connection of `listener` failed: it leaves the SYN queue.
pub(crate) fn embryo_failed(core: &mut Core, listener: SocketId) {
    if let Some(Socket::Tcp(l)) = core.sockets.by_id_mut(listener) {
        if let Some(q) = l.listen_state() {
            q.syn_pending = q.syn_pending.saturating_sub(1);
        }
    }
}

/// A child of `listener` finished its handshake: it moves from the SYN queue to
/// the accept queue. When the accept queue is full it waits, retried every
/// iteration, until an `accept` makes room.
pub(crate) fn handshake_done(core: &mut Core, listener: SocketId, id: SocketId) {
    let moved = match core.sockets.by_id_mut(listener) {
        Some(Socket::Tcp(l)) => l.listen_state().is_some_and(|q| {
            let queued = q.push(id);
            if queued {
                q.syn_pending = q.syn_pending.saturating_sub(1);
            }
            queued
        }),
        _ => false,
    };
    let Some(Socket::Tcp(sock)) = core.sockets.by_id_mut(id) else {
        return;
    };
    if moved {
        sock.queued_for_accept = true;
        core.queue_ready(listener);
    } else if sock.parent.is_some() {
        // The queue filled between this handshake's check (`request_input`,
        // `cookie_input`) and now: by another engine's child (a shared queue), or
        // by one completed earlier in the same RX burst. The peer, ESTABLISHED,
        // sends nothing more, so nothing else would bring it back: retry on the
        // next iteration (a burst's worth of children at most).
        mark(&mut core.tcp.dirty, sock, id);
    }
}

/// `close(2)` of a listener: its unaccepted children, queued or embryonic, are
/// aborted (RST to each) and freed as they end.
pub(crate) fn close(core: &mut Core, id: SocketId) {
    let children: Vec<SocketId> = match core.sockets.by_id_mut(id) {
        Some(Socket::Tcp(sock)) => sock
            .listen_state()
            .map(ListenState::drain)
            .unwrap_or_default(),
        _ => return,
    };
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

//! Listeners: `listen`, the SYN queue (embryonic connections) and the accept
//! queue, `accept`, and closing a listener (Linux `inet_connection_sock.c`).

use core::net::SocketAddrV4;

use super::{config_for, tcp_sock};
use crate::engine::state::{Core, Socket, mark};
use crate::engine::stats::DropReason;
use crate::socket::{ListenState, SocketHandle, TcpSock, TcpSocketState};
use crate::table::SocketId;
use crate::tcp::Tcb;
use crate::time::Instant;
use crate::wire::TcpRepr;
use crate::{Errno, FourTuple};

/// A SYN for a listener: a child connection in SYN-RECEIVED, counted against the
/// listener's SYN queue (dropped when it or the accept queue is full, as Linux).
pub(crate) fn accept_syn(
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
    let tcb = Tcb::accept_syn(tuple, syn, iss, now, &cfg);
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

/// An embryonic connection of `listener` failed: it leaves the SYN queue.
pub(crate) fn embryo_failed(core: &mut Core, listener: SocketId) {
    if let Some(Socket::Tcp(l)) = core.sockets.by_id_mut(listener) {
        if let Some(q) = l.listen_state() {
            q.syn_pending = q.syn_pending.saturating_sub(1);
        }
    }
}

/// A child of `listener` finished its handshake: it moves from the SYN queue to
/// the accept queue (when the accept queue is full it stays embryonic, and the
/// next segment tries again).
pub(crate) fn handshake_done(core: &mut Core, listener: SocketId, id: SocketId) {
    let moved = match core.sockets.by_id_mut(listener) {
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
        core.queue_ready(listener);
    }
}

/// `close(2)` of a listener: its unaccepted children, queued or embryonic, are
/// aborted (RST to each) and freed as they end.
pub(crate) fn close(core: &mut Core, id: SocketId) {
    let children: Vec<SocketId> = match core.sockets.by_id_mut(id) {
        Some(Socket::Tcp(sock)) => sock
            .listen_state()
            .map(|q| q.accept_queue.drain(..).collect())
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

//! Taking a connection out of the tables, and freeing it.

use super::listener;
use super::timers;
use crate::engine::state::{Core, Socket};
use crate::table::SocketId;
use crate::tcp::{Tcb, TimeWait};
use crate::time::Instant;

/// Removes a connection from the connection table and the timer wheel.
pub(crate) fn unhash(core: &mut Core, id: SocketId) {
    let Some(Socket::Tcp(sock)) = core.sockets.by_id_mut(id) else {
        return;
    };
    timers::disarm(&mut core.tcp, sock);
    if sock.hashed {
        sock.hashed = false;
        if let Some(tcb) = sock.tcb() {
            core.tcp.conns.remove(&tcb.tuple());
        }
        core.tcp.binds.disconnect(id);
    }
}

/// A connection reached CLOSED. A socket the application still holds (or that
/// waits in an accept queue) is unhashed and kept for its error or EOF until its
/// `close`, its port freed unless the user bound it; one nobody holds is freed. An
/// embryo leaves its listener's SYN queue. Returns whether the socket was kept.
pub(crate) fn connection_closed(core: &mut Core, id: SocketId) -> bool {
    let Some(Socket::Tcp(sock)) = core.sockets.by_id_mut(id) else {
        return false;
    };
    let (parent, queued, orphan) = (sock.parent, sock.queued_for_accept, sock.orphan);
    if let Some(parent) = parent.filter(|_| !queued) {
        listener::embryo_failed(core, parent);
    }
    let kept = !orphan && (parent.is_none() || queued);
    if kept {
        unhash(core, id);
    } else {
        free_connection(core, id);
    }
    kept
}

/// Frees a connection whose socket nobody holds any more.
pub(crate) fn free_connection(core: &mut Core, id: SocketId) {
    unhash(core, id);
    core.tcp.binds.unbind(id);
    if core.sockets.remove_id(id).is_some() {
        core.tcp_stats.closed += 1;
    }
}

/// A connection the application closed has reached TIME-WAIT: it becomes a compact
/// record (Linux `tcp_time_wait`) and its socket, buffers and timer are freed. Returns
/// false when it is not such a connection (the application still holds it). At the
/// TIME-WAIT table's limit the connection closes without TIME-WAIT, counted (Linux
/// `tcp_max_tw_buckets`).
pub(crate) fn enter_time_wait(core: &mut Core, now: Instant, id: SocketId, tcb: &Tcb) -> bool {
    let Some(Socket::Tcp(sock)) = core.sockets.by_id_mut(id) else {
        return false;
    };
    if !sock.orphan {
        return false;
    }
    let Some(record) = TimeWait::from_tcb(tcb, now) else {
        return false;
    };
    timers::disarm(&mut core.tcp, sock);
    if sock.hashed {
        sock.hashed = false;
        core.tcp.conns.remove(&tcb.tuple());
    }
    core.tcp.binds.disconnect(id);
    core.tcp.binds.unbind(id);
    if core.sockets.remove_id(id).is_some() {
        core.tcp_stats.closed += 1;
    }
    if core.tcp.time_wait.insert(record).is_ok() {
        core.tcp_stats.time_wait_records += 1;
    } else {
        core.tcp_stats.time_wait_overflow += 1;
    }
    true
}

//! Taking a connection out of the tables, and freeing it.

use crate::engine::state::{Core, Socket};
use crate::table::SocketId;

/// Removes a connection from the connection table and the timer wheel.
pub(crate) fn unhash(core: &mut Core, id: SocketId) {
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
pub(crate) fn free_connection(core: &mut Core, id: SocketId) {
    unhash(core, id);
    core.tcp.binds.unbind(id);
    if core.sockets.remove_id(id).is_some() {
        core.tcp_stats.closed += 1;
    }
}

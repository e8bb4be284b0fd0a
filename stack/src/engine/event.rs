//! Events: the sockets whose readiness changed, so a program never scans its
//! sockets (see [`super::Engine::poll_events`]).
//!
//! The engine keeps a ready list: a socket is queued there (once) when something
//! that may change its readiness happens to it — a segment or datagram in, a
//! timer, output and bookkeeping (a connect that completes, a connection that
//! ends), a socket call (a `recv` that empties the buffer, a `send` that fills
//! it, `listen`, `accept`), a handshake that lands in a listener's accept queue,
//! a socket created. Draining the list compares each socket's readiness with the
//! readiness last reported for it and reports the ones that differ, so the work
//! follows what happened, never the number of sockets.

use super::state::{Core, Socket};
use crate::socket::{Readiness, SocketHandle, TcpSock, TcpSocketState};
use crate::table::SocketId;
use crate::tcp::State;

/// A socket whose readiness changed, and its readiness now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SocketEvent {
    /// The socket.
    pub handle: SocketHandle,
    /// What it is ready for now (the whole mask, not only what changed).
    pub readiness: Readiness,
}

/// A socket's readiness, computed from its state (the full scan's answer).
pub(crate) fn readiness_of(socket: &Socket) -> Readiness {
    match socket {
        // A UDP socket is readable when a datagram is queued, and always writable.
        Socket::Udp(s) => Readiness {
            readable: s.is_readable(),
            writable: true,
            ..Readiness::default()
        },
        Socket::Tcp(s) => match &s.state {
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
                error: s.pending_error().is_some(),
                hangup: tcb.state() == State::Closed,
            },
        },
    }
}

/// `readiness_of(socket).readable`, without working out the rest.
fn readable_of(socket: &Socket) -> bool {
    match socket {
        Socket::Udp(s) => s.is_readable(),
        Socket::Tcp(s) => tcp_readable(s),
    }
}

/// `readiness_of(socket).writable`, without working out the rest.
fn writable_of(socket: &Socket) -> bool {
    match socket {
        Socket::Udp(_) => true,
        Socket::Tcp(s) => tcp_writable(s),
    }
}

/// A TCP socket's `readiness_of(..).readable` alone (every `recv` asks).
pub(crate) fn tcp_readable(s: &TcpSock) -> bool {
    match &s.state {
        TcpSocketState::Closed => false,
        TcpSocketState::Listening(q) => !q.accept_queue.is_empty(),
        TcpSocketState::Connection(tcb) => tcb.is_readable(),
    }
}

/// A TCP socket's `readiness_of(..).writable` alone (every `send` asks).
pub(crate) fn tcp_writable(s: &TcpSock) -> bool {
    match &s.state {
        TcpSocketState::Closed | TcpSocketState::Listening(_) => false,
        TcpSocketState::Connection(tcb) => tcb.is_writable(),
    }
}

impl Core {
    /// Queues socket `id` in the ready list: its readiness may have changed.
    pub(crate) fn queue_ready(&mut self, id: SocketId) {
        if let Some(socket) = self.sockets.by_id_mut(id) {
            socket.ready_mark().queue(&mut self.ready, id);
        }
    }

    /// A call on socket `id` read (`read`: recv, recv_from, accept) or wrote
    /// (`write`: send): what it left is what the program knows of that direction
    /// (a recv that emptied the buffer, or answered EAGAIN, says "not
    /// readable"), so becoming ready again is a change to report, even if it
    /// happened before the next drain.
    pub(crate) fn called(&mut self, id: SocketId, read: bool, write: bool) {
        if let Some(socket) = self.sockets.by_id_mut(id) {
            // Only the asked directions: the same bits `readiness_of` gives.
            let readable = read && readable_of(socket);
            let writable = write && writable_of(socket);
            debug_assert!(!read || readable == readiness_of(socket).readable);
            debug_assert!(!write || writable == readiness_of(socket).writable);
            let mark = socket.ready_mark();
            if read {
                mark.reported.readable = readable;
            }
            if write {
                mark.reported.writable = writable;
            }
            mark.queue(&mut self.ready, id);
        }
    }

    /// Forgets what was reported for socket `id` and queues it: its next event
    /// reports its whole readiness (a connection just accepted).
    pub(crate) fn report_afresh(&mut self, id: SocketId) {
        if let Some(socket) = self.sockets.by_id_mut(id) {
            let mark = socket.ready_mark();
            mark.reported = Readiness::default();
            mark.queue(&mut self.ready, id);
        }
    }
}

/// Drains the ready list into `events` (see [`super::Engine::poll_events`]).
pub(crate) fn drain(core: &mut Core, events: &mut Vec<SocketEvent>) -> usize {
    let before = events.len();
    // The list is walked in place (nothing here queues a socket) and keeps its
    // capacity: no allocation, and no swap of the list, per iteration.
    let Core { ready, sockets, .. } = core;
    for &id in ready.iter() {
        let Some((handle, socket)) = sockets.by_id_with_handle_mut(id) else {
            continue;
        };
        socket.ready_mark().queued = false;
        // An orphan (closed by the program, still ending) or a connection not
        // accepted yet has no handle the program holds.
        if matches!(socket, Socket::Tcp(t) if t.orphan || t.parent.is_some()) {
            continue;
        }
        let readiness = readiness_of(socket);
        let mark = socket.ready_mark();
        if readiness == mark.reported {
            continue;
        }
        mark.reported = readiness;
        events.push(SocketEvent { handle, readiness });
    }
    ready.clear();
    events.len() - before
}

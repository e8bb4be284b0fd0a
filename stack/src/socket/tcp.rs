//! TCP sockets: the per-socket state the sockets layer keeps around a [`Tcb`]
//! (4.4BSD's `socket` + `inpcb` around the `tcpcb`).

use core::net::SocketAddrV4;
use core::time::Duration;
use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use super::ReadyMark;
use crate::table::{BindOptions, SocketId};
use crate::tcp::{CongestionAlgorithm, KeepaliveConfig, Tcb, TcpError};
use crate::time::Instant;
use crate::timer::TimerHandle;

/// Options set with `setsockopt` that outlive any one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TcpSocketOptions {
    /// SO_REUSEADDR, SO_REUSEPORT, owner, privilege.
    pub bind: BindOptions,
    /// TCP_NODELAY.
    pub nodelay: bool,
    /// SO_LINGER: `Some(ZERO)` makes close send RST (abortive close).
    pub linger: Option<Duration>,
    /// SO_KEEPALIVE with its timings.
    pub keepalive: Option<KeepaliveConfig>,
    /// SO_SNDBUF in bytes (0: the stack's default).
    pub send_buffer: usize,
    /// SO_RCVBUF in bytes (0: the stack's default).
    pub recv_buffer: usize,
    /// TCP_USER_TIMEOUT.
    pub user_timeout: Option<Duration>,
    /// TCP_CONGESTION (`None`: the stack's default).
    pub congestion: Option<CongestionAlgorithm>,
}

/// The number of connections waiting for `accept` in every engine that serves one
/// listening socket (the runtime's listener has a listener in each engine): with
/// it, a backlog of N bounds the connections queued in all engines together, as
/// Linux's one accept queue does, not N in each. Clones share the count.
#[derive(Debug, Clone, Default)]
pub struct SharedAcceptQueue(Arc<AtomicU32>);

impl SharedAcceptQueue {
    /// A count at zero, to hand to each engine's `listen`.
    pub fn new() -> Self {
        SharedAcceptQueue::default()
    }

    /// Connections queued for `accept` in all engines.
    pub fn len(&self) -> u32 {
        self.0.load(Ordering::Acquire)
    }

    /// True when nothing is queued anywhere.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Takes a place unless the queue is full (Linux `sk_acceptq_is_full`:
    /// `queued > backlog`); one atomic step, so engines never overshoot together.
    fn try_add(&self, backlog: u32) -> bool {
        self.0
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |q| {
                (q <= backlog).then_some(q + 1)
            })
            .is_ok()
    }

    /// Gives `n` places back.
    fn remove(&self, n: u32) {
        let _ = self
            .0
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |q| {
                Some(q.saturating_sub(n))
            });
    }
}

/// A listening socket's queues (Linux `inet_connection_sock`'s request and accept queues).
#[derive(Debug, Default)]
pub struct ListenState {
    /// Connections accepted by the handshake, waiting for `accept` (in this engine).
    pub accept_queue: VecDeque<SocketId>,
    /// Embryonic connections (SYN-RECEIVED) owned by this listener.
    pub syn_pending: u32,
    /// Accept queue limit: `min(backlog, somaxconn)`.
    pub accept_backlog: u32,
    /// SYN queue limit.
    pub syn_backlog: u32,
    /// The count shared with the other engines' listeners of the same socket, if any.
    pub shared: Option<SharedAcceptQueue>,
}

impl ListenState {
    /// Connections queued for `accept`: in every engine when the count is shared.
    pub fn queued(&self) -> u64 {
        match &self.shared {
            Some(shared) => u64::from(shared.len()),
            None => self.accept_queue.len() as u64,
        }
    }

    /// The accept queue is full (Linux `sk_acceptq_is_full`: `queued > backlog`).
    pub fn is_full(&self) -> bool {
        self.queued() > u64::from(self.accept_backlog)
    }

    /// Queues a connection whose handshake is done; false (nothing queued) when full.
    pub fn push(&mut self, id: SocketId) -> bool {
        let room = match &self.shared {
            Some(shared) => shared.try_add(self.accept_backlog),
            None => !self.is_full(),
        };
        if room {
            self.accept_queue.push_back(id);
        }
        room
    }

    /// The oldest queued connection, for `accept`.
    pub fn pop(&mut self) -> Option<SocketId> {
        let id = self.accept_queue.pop_front()?;
        if let Some(shared) = &self.shared {
            shared.remove(1);
        }
        Some(id)
    }

    /// Empties the queue (the listener closes).
    pub fn drain(&mut self) -> Vec<SocketId> {
        let all: Vec<SocketId> = self.accept_queue.drain(..).collect();
        if let Some(shared) = &self.shared {
            shared.remove(u32::try_from(all.len()).unwrap_or(u32::MAX));
        }
        all
    }
}

/// What a TCP socket is.
#[derive(Debug)]
pub enum TcpSocketState {
    /// Created (maybe bound), neither listening nor connected.
    Closed,
    /// Listening.
    Listening(ListenState),
    /// A connection, from `connect` or from a listener.
    Connection(Box<Tcb>),
}

/// One TCP socket's state inside its engine (Linux's `struct sock`); the handle an
/// application thread holds is [`crate::runtime::TcpSocket`].
///
/// Laid out in the order written (`repr(C)`): what the engine reads for every segment,
/// socket call and event first, in the slot's first two cache lines (the slab aligns
/// its slots, `super::set`): the state (its tag and the `Tcb`'s box lead it), the
/// ready mark and the flags, the parent, the timer and the deadline. The options and
/// the local address, read on `bind`, `connect`, `listen` and `accept`, come last. In
/// the compiler's order the hot fields were spread over the slot's four lines, each a
/// miss with a hundred connections.
#[derive(Debug)]
#[repr(C)]
pub struct TcpSock {
    /// Listening, connected or neither.
    pub state: TcpSocketState,
    /// Its place in the engine's ready list (events).
    pub ready: ReadyMark,
    /// The application closed its handle: the socket lives on only until the
    /// connection ends (an orphan, as in Linux after `close(fd)`).
    pub orphan: bool,
    /// Marked for output / bookkeeping in this loop iteration.
    pub dirty: bool,
    /// The connection sits in its listener's accept queue.
    pub queued_for_accept: bool,
    /// The connection is in the connection table under this tuple.
    pub hashed: bool,
    /// The connection's error was reported once (by `SO_ERROR`, `recv`, `send` or
    /// `connect`): Linux clears `sk_err` when it reads it, and so do we.
    pub error_reported: bool,
    /// `connect` started and its outcome was not yet reported by a second `connect`
    /// (Linux `SS_CONNECTING`).
    pub connecting: bool,
    /// A lingering `close` (SO_LINGER > 0) sent the FIN; the final `close` only orphans it.
    pub lingering: bool,
    /// The listener this connection came from while it is not yet accepted.
    pub parent: Option<SocketId>,
    /// The armed timer and its deadline.
    pub timer: Option<(TimerHandle, Instant)>,
    /// The connection's own next deadline as last settled (`Tcb::poll_at`). The
    /// wheel entry may be earlier (it is not moved later on every ACK); when it
    /// fires before this, the entry is moved here without touching the `Tcb`.
    pub due: Option<Instant>,
    /// Options.
    pub options: TcpSocketOptions,
    /// Local address once bound.
    pub local: Option<SocketAddrV4>,
}

impl TcpSock {
    /// A fresh socket (`socket(AF_INET, SOCK_STREAM, 0)`).
    pub fn new() -> Self {
        TcpSock {
            state: TcpSocketState::Closed,
            options: TcpSocketOptions::default(),
            local: None,
            parent: None,
            queued_for_accept: false,
            orphan: false,
            dirty: false,
            timer: None,
            due: None,
            hashed: false,
            ready: ReadyMark::default(),
            error_reported: false,
            connecting: false,
            lingering: false,
        }
    }

    /// The connection's error not yet reported (Linux `sk_err`).
    pub fn pending_error(&self) -> Option<TcpError> {
        match self.error_reported {
            true => None,
            false => self.tcb().and_then(Tcb::error),
        }
    }

    /// The pending error, cleared by reading it (Linux `sock_error`).
    pub fn take_error(&mut self) -> Option<TcpError> {
        match &self.state {
            TcpSocketState::Connection(tcb) => {
                Self::take_connection_error(tcb, &mut self.error_reported)
            }
            _ => None,
        }
    }

    /// [`Self::take_error`] of a connected socket, on its parts: the connection and
    /// the socket's `error_reported` (for a caller that holds both apart).
    #[inline]
    pub fn take_connection_error(tcb: &Tcb, error_reported: &mut bool) -> Option<TcpError> {
        let error = match *error_reported {
            true => None,
            false => tcb.error(),
        };
        *error_reported |= error.is_some();
        error
    }

    /// The connection, if this socket has one.
    pub fn tcb(&self) -> Option<&Tcb> {
        match &self.state {
            TcpSocketState::Connection(tcb) => Some(tcb),
            _ => None,
        }
    }

    /// The connection, mutably.
    pub fn tcb_mut(&mut self) -> Option<&mut Tcb> {
        match &mut self.state {
            TcpSocketState::Connection(tcb) => Some(tcb),
            _ => None,
        }
    }

    /// The listening state, if listening.
    pub fn listen_state(&mut self) -> Option<&mut ListenState> {
        match &mut self.state {
            TcpSocketState::Listening(l) => Some(l),
            _ => None,
        }
    }
}

impl Default for TcpSock {
    fn default() -> Self {
        TcpSock::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listen_state(backlog: u32, shared: &SharedAcceptQueue) -> ListenState {
        ListenState {
            accept_backlog: backlog,
            shared: Some(shared.clone()),
            ..ListenState::default()
        }
    }

    #[test]
    fn a_shared_backlog_bounds_every_engine_together() {
        let shared = SharedAcceptQueue::new();
        let mut a = listen_state(2, &shared);
        let mut b = listen_state(2, &shared);
        // Linux `sk_acceptq_is_full` is `queued > backlog`: backlog + 1 fit.
        assert!(a.push(SocketId(1)));
        assert!(b.push(SocketId(2)));
        assert!(a.push(SocketId(3)));
        assert!(a.is_full() && b.is_full());
        assert!(!b.push(SocketId(4)), "full across both");
        assert_eq!(b.accept_queue.len(), 1);
        assert_eq!(a.pop(), Some(SocketId(1)));
        assert!(!b.is_full());
        assert!(b.push(SocketId(5)));
        assert_eq!(a.drain().len(), 1);
        assert_eq!(shared.len(), 2);
        assert_eq!(b.pop(), Some(SocketId(2)));
        assert_eq!(b.pop(), Some(SocketId(5)));
        assert_eq!(b.pop(), None);
        assert!(shared.is_empty());
    }

    #[test]
    fn an_unshared_backlog_counts_its_own_queue() {
        let mut q = ListenState {
            accept_backlog: 1,
            ..ListenState::default()
        };
        assert!(q.push(SocketId(1)) && q.push(SocketId(2)));
        assert!(!q.push(SocketId(3)));
        assert_eq!(q.queued(), 2);
    }
}

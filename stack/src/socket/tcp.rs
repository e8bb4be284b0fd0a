//! TCP sockets: the per-socket state the sockets layer keeps around a [`Tcb`]
//! (4.4BSD's `socket` + `inpcb` around the `tcpcb`).

use core::net::SocketAddrV4;
use core::time::Duration;
use std::collections::VecDeque;

use super::ReadyMark;
use crate::table::{BindOptions, SocketId};
use crate::tcp::{KeepaliveConfig, Tcb, TcpError};
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
}

/// A listening socket's queues (Linux `inet_connection_sock`'s request and accept queues).
#[derive(Debug, Default)]
pub struct ListenState {
    /// Connections accepted by the handshake, waiting for `accept`.
    pub accept_queue: VecDeque<SocketId>,
    /// Embryonic connections (SYN-RECEIVED) owned by this listener.
    pub syn_pending: u32,
    /// Accept queue limit: `min(backlog, somaxconn)`.
    pub accept_backlog: u32,
    /// SYN queue limit.
    pub syn_backlog: u32,
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
#[derive(Debug)]
pub struct TcpSock {
    /// Listening, connected or neither.
    pub state: TcpSocketState,
    /// Options.
    pub options: TcpSocketOptions,
    /// Local address once bound.
    pub local: Option<SocketAddrV4>,
    /// The listener this connection came from while it is not yet accepted.
    pub parent: Option<SocketId>,
    /// The connection sits in its listener's accept queue.
    pub queued_for_accept: bool,
    /// The application closed its handle: the socket lives on only until the
    /// connection ends (an orphan, as in Linux after `close(fd)`).
    pub orphan: bool,
    /// Marked for output / bookkeeping in this loop iteration.
    pub dirty: bool,
    /// The armed timer and its deadline.
    pub timer: Option<(TimerHandle, Instant)>,
    /// The connection is in the connection table under this tuple.
    pub hashed: bool,
    /// Its place in the engine's ready list (events).
    pub ready: ReadyMark,
    /// The connection's error was reported once (by `SO_ERROR`, `recv`, `send` or
    /// `connect`): Linux clears `sk_err` when it reads it, and so do we.
    pub error_reported: bool,
    /// `connect` started and its outcome was not yet reported by a second `connect`
    /// (Linux `SS_CONNECTING`).
    pub connecting: bool,
    /// A lingering `close` (SO_LINGER > 0) sent the FIN; the final `close` only orphans it.
    pub lingering: bool,
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
        let error = self.pending_error();
        self.error_reported |= error.is_some();
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

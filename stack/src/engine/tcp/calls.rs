//! The socket calls on TCP sockets other than listen and accept.

use core::net::{Ipv4Addr, SocketAddrV4};
use core::time::Duration;

use super::{config_for, errno_of, listener, tcp_sock, teardown};
use crate::engine::event;
use crate::engine::state::{Core, Socket, mark, mark_flag};
use crate::socket::{SocketHandle, TcpSock, TcpSocketOptions, TcpSocketState};
use crate::table::SocketId;
use crate::tcp::{self, State, Tcb};
use crate::time::Instant;
use crate::{Errno, FourTuple};

// ---- socket calls ----

/// `socket(AF_INET, SOCK_STREAM, 0)`.
pub(crate) fn socket(core: &mut Core) -> Result<SocketHandle, Errno> {
    let handle = core.sockets.insert(Socket::Tcp(TcpSock::new()))?;
    core.queue_ready(handle.id());
    Ok(handle)
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
    // Linux `__inet_stream_connect`: a second `connect` reports how the first went.
    let state = sock.tcb().map(Tcb::state);
    match (&sock.state, state) {
        (TcpSocketState::Listening(_), _) => return Err(Errno::EISCONN),
        (TcpSocketState::Connection(_), _) if !sock.connecting => return Err(Errno::EISCONN),
        (TcpSocketState::Connection(_), Some(State::SynSent | State::SynReceived)) => {
            return Err(Errno::EALREADY);
        }
        // It failed: its error (or ECONNABORTED once read), and the socket is
        // unconnected again (a third `connect` starts afresh).
        (TcpSocketState::Connection(_), Some(State::Closed)) => {
            let error = sock.take_error().map_or(Errno::ECONNABORTED, errno_of);
            disconnect(core, handle.id());
            return Err(error);
        }
        // It completed: this call says so, the next one says EISCONN.
        (TcpSocketState::Connection(_), _) => {
            sock.connecting = false;
            return Ok(());
        }
        (TcpSocketState::Closed, _) => {}
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
    let time_wait = &core.tcp.time_wait;
    let tw_reuse = core.config.tw_reuse;
    let rss = core.config.rss.as_ref();
    let queue = core.config.core;
    // Linux `__inet_check_established`: a 4-tuple is free when no connection holds it
    // and no TIME-WAIT record does, unless `tcp_tw_reuse` may take the record over
    // (`tcp_twsk_unique`: timestamps on, the peer's last one at least a second old).
    let tuple_unused = |t: &FourTuple| {
        !conns.contains(t)
            && time_wait
                .get(t)
                .is_none_or(|tw| tw_reuse && tw.can_reuse(now))
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
    // Linux `tcp_twsk_unique`: the new incarnation starts beyond anything the old one
    // sent, plus a maximal window; the TIME-WAIT record goes.
    let reused_iss = match tw_reuse {
        true => core.tcp.time_wait.take_for_reuse(&tuple, now),
        false => None,
    }
    .map(|tw| {
        core.tcp_stats.time_wait_reused += 1;
        tw.reuse_iss()
    });
    let iss = reused_iss.unwrap_or_else(|| core.tcp.isn.generate(&tuple, now));
    let cfg = core.tcp.configs.share(&config_for(core, &options));
    let ts_offset = core.tcp.ts_offsets.offset(*local.ip(), *remote.ip());
    let tcb = Tcb::connect_shared(tuple, iss, now, cfg, ts_offset);
    if core.tcp.conns.insert(tuple, id).is_err() {
        core.tcp.binds.disconnect(id);
        return Err(Errno::ENOBUFS);
    }
    let sock = tcp_sock(&mut core.sockets, handle)?;
    sock.local = Some(local);
    sock.state = TcpSocketState::Connection(Box::new(tcb));
    sock.hashed = true;
    sock.connecting = true;
    sock.error_reported = false;
    mark(&mut core.tcp.dirty, sock, id);
    core.queue_ready(id);
    core.tcp_stats.active_opens += 1;
    Err(Errno::EINPROGRESS)
}

/// A failed connection's socket becomes unconnected again (Linux `tcp_disconnect`
/// after a failed connect): out of the tables, still bound if the user bound it.
fn disconnect(core: &mut Core, id: SocketId) {
    teardown::unhash(core, id);
    let local = core.tcp.binds.local_addr(id);
    if let Some(Socket::Tcp(sock)) = core.sockets.by_id_mut(id) {
        sock.state = TcpSocketState::Closed;
        sock.local = local;
        sock.connecting = false;
        sock.error_reported = false;
    }
    core.queue_ready(id);
}

/// Runs a call on a connected socket, then marks it for output and events.
fn with_sock<R>(
    core: &mut Core,
    handle: SocketHandle,
    f: impl FnOnce(&mut TcpSock) -> Result<R, Errno>,
) -> Result<R, Errno> {
    let sock = tcp_sock(&mut core.sockets, handle)?;
    let result = f(sock);
    if sock.tcb().is_some() {
        mark(&mut core.tcp.dirty, sock, handle.id());
    }
    core.queue_ready(handle.id());
    result
}

/// `send(2)`, non-blocking: bytes accepted into the send buffer, or EAGAIN.
///
/// Then, on the socket it already looked up (one lookup per call): marks the
/// connection for output unless the call would block (then it changed nothing the
/// output needs to look at), records "writable" as reported (see [`Core::called`])
/// and queues the socket for events. Inlined into `Engine::send`, with
/// [`Tcb::send`], so a call is one frame.
#[inline]
pub(crate) fn send(core: &mut Core, handle: SocketHandle, data: &[u8]) -> Result<usize, Errno> {
    let id = handle.id();
    let sock = tcp_sock(&mut core.sockets, handle)?;
    // Linux `sk_stream_wait_connect`: sending on a socket that is neither
    // connected nor connecting (a listener, a fresh socket) is EPIPE.
    let TcpSock {
        state: TcpSocketState::Connection(tcb),
        error_reported,
        dirty,
        ready,
        ..
    } = sock
    else {
        return Err(Errno::EPIPE);
    };
    let result = send_on(tcb, error_reported, data);
    if !matches!(result, Err(Errno::EAGAIN)) {
        mark_flag(&mut core.tcp.dirty, dirty, id);
    }
    ready.reported.writable = tcb.is_writable();
    ready.queue(&mut core.ready, id);
    result
}

#[inline]
fn send_on(tcb: &mut Tcb, error_reported: &mut bool, data: &[u8]) -> Result<usize, Errno> {
    // Linux `sk_stream_wait_connect` / `sk_stream_error`: a pending error is
    // reported (and cleared) first; a closed connection then says EPIPE.
    if let Some(error) = TcpSock::take_connection_error(tcb, error_reported) {
        return Err(errno_of(error));
    }
    match tcb.state() {
        State::SynSent | State::SynReceived => Err(Errno::EAGAIN),
        State::Closed => Err(Errno::EPIPE),
        _ => tcb.send(data).map_err(errno_of),
    }
}

/// `recv(2)`, non-blocking: bytes read, 0 at end of stream, or EAGAIN.
///
/// Then, as [`send`]: marks the connection for output unless the call would block,
/// records "readable" as reported and queues the socket for events. Inlined into
/// `Engine::recv`, with [`Tcb::recv`].
#[inline]
pub(crate) fn recv(core: &mut Core, handle: SocketHandle, buf: &mut [u8]) -> Result<usize, Errno> {
    let id = handle.id();
    let sock = tcp_sock(&mut core.sockets, handle)?;
    let TcpSock {
        state: TcpSocketState::Connection(tcb),
        error_reported,
        dirty,
        ready,
        ..
    } = sock
    else {
        return recv_unconnected(&mut core.ready, sock, id);
    };
    let result = recv_on(tcb, error_reported, buf);
    if !matches!(result, Err(Errno::EAGAIN)) {
        mark_flag(&mut core.tcp.dirty, dirty, id);
    }
    ready.reported.readable = tcb.is_readable();
    ready.queue(&mut core.ready, id);
    result
}

/// [`recv`] on a socket without a connection: ENOTCONN, and the socket's readiness
/// to read (a listener's accept queue) is recorded as reported.
#[cold]
#[inline(never)]
fn recv_unconnected(
    ready: &mut Vec<SocketId>,
    sock: &mut TcpSock,
    id: SocketId,
) -> Result<usize, Errno> {
    sock.ready.reported.readable = event::tcp_readable(sock);
    sock.ready.queue(ready, id);
    Err(Errno::ENOTCONN)
}

#[inline]
fn recv_on(tcb: &mut Tcb, error_reported: &mut bool, buf: &mut [u8]) -> Result<usize, Errno> {
    match tcb.state() {
        State::SynSent | State::SynReceived => Err(Errno::EAGAIN),
        _ => match tcb.recv(buf) {
            // Linux `tcp_recvmsg`: the error that closed the connection is
            // reported once; then it reads as the end of the stream.
            Err(e) if tcb.error() == Some(e) => match *error_reported {
                true => Ok(0),
                false => {
                    *error_reported = true;
                    Err(errno_of(e))
                }
            },
            other => other.map_err(errno_of),
        },
    }
}

/// `shutdown(SHUT_WR)`: FIN after the queued data. As Linux `inet_shutdown`:
/// ENOTCONN on a socket never connected or whose connection is closed, nothing
/// at all on a listener.
pub(crate) fn shutdown_write(core: &mut Core, handle: SocketHandle) -> Result<(), Errno> {
    with_sock(core, handle, |sock| match &mut sock.state {
        TcpSocketState::Listening(_) => Ok(()),
        TcpSocketState::Connection(tcb) if tcb.state() != State::Closed => {
            tcb.shutdown_write();
            Ok(())
        }
        TcpSocketState::Connection(_) | TcpSocketState::Closed => Err(Errno::ENOTCONN),
    })
}

/// `getsockopt(SO_ERROR)`: the pending error, cleared by reading it (Linux
/// `sock_error`): a second call says `None`.
pub(crate) fn take_error(core: &mut Core, handle: SocketHandle) -> Result<Option<Errno>, Errno> {
    let sock = tcp_sock(&mut core.sockets, handle)?;
    let error = sock.take_error().map(errno_of);
    if error.is_some() {
        core.queue_ready(handle.id());
    }
    Ok(error)
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
        TcpSocketState::Listening(_) => listener::close(core, id),
        TcpSocketState::Connection(tcb) => {
            if sock.lingering {
                // `close_lingering` closed it already: the socket only lets go.
            } else if sock.options.linger == Some(Duration::ZERO) {
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

/// See `Engine::close_lingering`: with SO_LINGER > 0, no unread data and a
/// connection whose FIN will need an ACK, closes it but leaves the socket to the
/// caller (true); otherwise `close` (false).
pub(crate) fn close_lingering(core: &mut Core, handle: SocketHandle) -> Result<bool, Errno> {
    let sock = tcp_sock(&mut core.sockets, handle)?;
    let linger = sock.options.linger.is_some_and(|d| !d.is_zero());
    let id = handle.id();
    let Some(tcb) = sock.tcb_mut().filter(|t| {
        linger
            && t.recv_queue_len() == 0
            && matches!(t.state(), State::Established | State::CloseWait)
    }) else {
        close(core, handle)?;
        return Ok(false);
    };
    tcb.close();
    let waits = matches!(
        tcb.state(),
        State::FinWait1 | State::Closing | State::LastAck
    );
    sock.lingering = true;
    mark(&mut core.tcp.dirty, sock, id);
    core.queue_ready(id);
    if !waits {
        close(core, handle)?;
    }
    Ok(waits)
}

/// Sets socket options (before `bind`/`connect` for those that need it).
pub(crate) fn set_options(
    core: &mut Core,
    handle: SocketHandle,
    options: TcpSocketOptions,
) -> Result<(), Errno> {
    let sock = tcp_sock(&mut core.sockets, handle)?;
    let before = sock.options;
    sock.options = options;
    if let Some(tcb) = sock.tcb_mut() {
        // SO_SNDBUF / SO_RCVBUF on a connection pin that direction's buffer (Linux
        // SOCK_SNDBUF_LOCK / SOCK_RCVBUF_LOCK): autotuning stops.
        if options.send_buffer > 0 && options.send_buffer != before.send_buffer {
            tcb.pin_send_buffer(options.send_buffer);
        }
        if options.recv_buffer > 0 && options.recv_buffer != before.recv_buffer {
            tcb.pin_recv_buffer(options.recv_buffer);
        }
        tcb.set_nodelay(options.nodelay);
        tcb.set_keepalive(options.keepalive);
        tcb.set_user_timeout(options.user_timeout);
        if let Some(congestion) = options.congestion {
            tcb.set_congestion(congestion);
        }
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

/// `getsockopt(TCP_INFO)`: the connection's state and estimates with Linux's names.
pub(crate) fn info(core: &mut Core, handle: SocketHandle) -> Result<tcp::TcpInfo, Errno> {
    let sock = tcp_sock(&mut core.sockets, handle)?;
    let tcb = sock.tcb().ok_or(Errno::ENOTCONN)?;
    Ok(tcb.info())
}

/// The connection's own counters (surge's, more than `TCP_INFO` carries).
pub(crate) fn stats(core: &mut Core, handle: SocketHandle) -> Result<tcp::TcpStats, Errno> {
    let sock = tcp_sock(&mut core.sockets, handle)?;
    let tcb = sock.tcb().ok_or(Errno::ENOTCONN)?;
    Ok(tcb.stats())
}

//! TCP in the engine (`tcp_usrreq.c` / `af_inet.c` / `inet_connection_sock.c`
//! territory), one concern per file:
//!
//! - [`demux`]: a received segment goes to its connection, else to a listener,
//!   else is answered with RST;
//! - [`listener`]: listen, the SYN and accept queues, accept;
//! - [`output`]: output and bookkeeping of every connection with work;
//! - [`timers`]: the timer wheel of the connections;
//! - [`teardown`]: taking a connection out of the tables and freeing it;
//! - [`icmp`]: ICMP errors about our segments;
//! - [`calls`]: the other socket calls and readiness.
//!
//! The files above depend on this one and on [`super::state`], never the other
//! way round (`ci/check-import-cycles` keeps it so).

pub(super) mod calls;
pub(super) mod demux;
pub(super) mod icmp;
pub(super) mod listener;
pub(super) mod output;
pub(super) mod teardown;
pub(super) mod timers;

use super::state::{Core, Socket};
use crate::Errno;
use crate::socket::{SocketHandle, SocketSet, TcpSock, TcpSocketOptions};
use crate::tcp::{TcpConfig, TcpError};

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

/// The TCP configuration for a socket with `options`, clamped to the interface.
pub(super) fn config_for(core: &Core, options: &TcpSocketOptions) -> TcpConfig {
    config_with(core.tcp.config, core.config.iface.mss(), options)
}

/// [`config_for`] from its parts (for callers that hold other parts of the core).
pub(super) fn config_with(
    defaults: TcpConfig,
    iface_mss: u16,
    options: &TcpSocketOptions,
) -> TcpConfig {
    let mut cfg = defaults;
    cfg.mss = cfg.mss.min(iface_mss);
    cfg.nodelay = options.nodelay || cfg.nodelay;
    // Linux SOCK_SNDBUF_LOCK / SOCK_RCVBUF_LOCK: a size the application set is kept,
    // autotuning leaves that direction alone (its maximum is its size).
    if options.send_buffer > 0 {
        cfg.send_buffer = options.send_buffer;
        cfg.send_buffer_max = options.send_buffer;
    }
    if options.recv_buffer > 0 {
        cfg.recv_buffer = options.recv_buffer;
        cfg.recv_buffer_max = options.recv_buffer;
    }
    if options.keepalive.is_some() {
        cfg.keepalive = options.keepalive;
    }
    if options.user_timeout.is_some() {
        cfg.user_timeout = options.user_timeout;
    }
    if let Some(congestion) = options.congestion {
        cfg.congestion = congestion;
    }
    cfg
}

/// The TCP socket behind `handle`: EBADF once closed, EOPNOTSUPP for UDP.
#[inline]
pub(super) fn tcp_sock(
    sockets: &mut SocketSet<Socket>,
    handle: SocketHandle,
) -> Result<&mut TcpSock, Errno> {
    match sockets.get_mut(handle)? {
        Socket::Tcp(s) if !s.orphan => Ok(s),
        Socket::Tcp(_) => Err(Errno::EBADF),
        Socket::Udp(_) => Err(Errno::EOPNOTSUPP),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn so_rcvbuf_and_so_sndbuf_pin_their_direction() {
        let defaults = TcpConfig::default();
        let cfg = config_with(defaults, 1460, &TcpSocketOptions::default());
        assert!(cfg.autotune);
        assert_eq!(cfg.recv_buffer_limit(), defaults.recv_buffer_max);
        assert_eq!(cfg.send_buffer_limit(), defaults.send_buffer_max);
        let rcv = TcpSocketOptions {
            recv_buffer: 100_000,
            ..TcpSocketOptions::default()
        };
        let cfg = config_with(defaults, 1460, &rcv);
        assert_eq!(
            (cfg.recv_buffer, cfg.recv_buffer_limit()),
            (100_000, 100_000)
        );
        assert_eq!(cfg.recv_window_shift(), 1, "the scale fits the pinned size");
        assert_eq!(
            cfg.send_buffer_limit(),
            defaults.send_buffer_max,
            "the other direction still autotunes"
        );
        let snd = TcpSocketOptions {
            send_buffer: 50_000,
            ..TcpSocketOptions::default()
        };
        let cfg = config_with(defaults, 1460, &snd);
        assert_eq!((cfg.send_buffer, cfg.send_buffer_limit()), (50_000, 50_000));
        assert_eq!(cfg.recv_buffer_limit(), defaults.recv_buffer_max);
    }
}

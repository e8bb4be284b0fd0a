//! Errors a TCP connection reports to its user, errno-style.

use std::io::ErrorKind;

/// Errors from socket calls and connection failures; each maps to one errno.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum TcpError {
    /// The peer answered our SYN with a RST (ECONNREFUSED).
    #[error("connection refused")]
    ConnectionRefused,
    /// The peer reset an established connection (ECONNRESET).
    #[error("connection reset by peer")]
    ConnectionReset,
    /// The connection was aborted locally (ECONNABORTED).
    #[error("connection aborted")]
    ConnectionAborted,
    /// Retransmissions, keepalives or the user timeout ran out (ETIMEDOUT).
    #[error("connection timed out")]
    TimedOut,
    /// Sending after shutdown or after the connection closed (EPIPE).
    #[error("broken pipe")]
    BrokenPipe,
    /// The socket is not connected (ENOTCONN).
    #[error("not connected")]
    NotConnected,
    /// Nothing can be done right now; try again after a readiness event (EAGAIN).
    #[error("operation would block")]
    WouldBlock,
    /// ICMP host unreachable reported while the connection failed (EHOSTUNREACH).
    #[error("no route to host")]
    HostUnreachable,
    /// ICMP network unreachable reported while the connection failed (ENETUNREACH).
    #[error("network is unreachable")]
    NetworkUnreachable,
    /// The call is not valid in this state (EINVAL).
    #[error("invalid argument")]
    InvalidInput,
}

impl TcpError {
    /// The Linux errno value.
    pub const fn errno(self) -> i32 {
        match self {
            TcpError::ConnectionRefused => 111,
            TcpError::ConnectionReset => 104,
            TcpError::ConnectionAborted => 103,
            TcpError::TimedOut => 110,
            TcpError::BrokenPipe => 32,
            TcpError::NotConnected => 107,
            TcpError::WouldBlock => 11,
            TcpError::HostUnreachable => 113,
            TcpError::NetworkUnreachable => 101,
            TcpError::InvalidInput => 22,
        }
    }

    /// The matching `std::io::ErrorKind`.
    pub const fn kind(self) -> ErrorKind {
        match self {
            TcpError::ConnectionRefused => ErrorKind::ConnectionRefused,
            TcpError::ConnectionReset => ErrorKind::ConnectionReset,
            TcpError::ConnectionAborted => ErrorKind::ConnectionAborted,
            TcpError::TimedOut => ErrorKind::TimedOut,
            TcpError::BrokenPipe => ErrorKind::BrokenPipe,
            TcpError::NotConnected => ErrorKind::NotConnected,
            TcpError::WouldBlock => ErrorKind::WouldBlock,
            TcpError::HostUnreachable => ErrorKind::HostUnreachable,
            TcpError::NetworkUnreachable => ErrorKind::NetworkUnreachable,
            TcpError::InvalidInput => ErrorKind::InvalidInput,
        }
    }
}

impl From<TcpError> for std::io::Error {
    fn from(e: TcpError) -> std::io::Error {
        std::io::Error::new(e.kind(), e)
    }
}

//! [`Errno`]: the errno-style error every socket call in surge returns.
//!
//! The values are the host's (`libc`) errno numbers, so [`Errno::raw_os_error`] is
//! what a kernel socket would have put in `errno`, and the conversion into
//! [`std::io::Error`] goes through [`std::io::Error::from_raw_os_error`]: the
//! `ErrorKind` and the message are exactly those a kernel socket error would give.

use core::fmt;

/// An errno value a socket call can fail with (Linux names and numbers).
///
/// The names are the POSIX ones on purpose: a reader of `man 2 bind` greps for them.
#[allow(clippy::upper_case_acronyms)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Errno {
    /// Operation not permitted.
    EPERM,
    /// No such file or directory (`TCP_CONGESTION` with an unknown algorithm, as Linux).
    ENOENT,
    /// Bad file descriptor: a closed or foreign socket handle.
    EBADF,
    /// Resource temporarily unavailable (also `EWOULDBLOCK`).
    EAGAIN,
    /// Cannot allocate memory.
    ENOMEM,
    /// Permission denied (e.g. a privileged port).
    EACCES,
    /// Invalid argument (e.g. binding an already-bound socket).
    EINVAL,
    /// Too many open files (the per-process socket table is full).
    EMFILE,
    /// Too many open files in system (the stack-wide socket table is full).
    ENFILE,
    /// Broken pipe: send after the write side was shut down.
    EPIPE,
    /// Socket operation on non-socket.
    ENOTSOCK,
    /// Destination address required.
    EDESTADDRREQ,
    /// Message too long.
    EMSGSIZE,
    /// Protocol wrong type for socket.
    EPROTOTYPE,
    /// Protocol not available (unknown socket option).
    ENOPROTOOPT,
    /// Protocol not supported.
    EPROTONOSUPPORT,
    /// Operation not supported on this socket (also `ENOTSUP` on Linux).
    EOPNOTSUPP,
    /// Address family not supported by protocol.
    EAFNOSUPPORT,
    /// Address already in use.
    EADDRINUSE,
    /// Cannot assign requested address.
    EADDRNOTAVAIL,
    /// Network is down.
    ENETDOWN,
    /// Network is unreachable.
    ENETUNREACH,
    /// Software caused connection abort.
    ECONNABORTED,
    /// Connection reset by peer.
    ECONNRESET,
    /// No buffer space available (a table or pool is full).
    ENOBUFS,
    /// Transport endpoint is already connected.
    EISCONN,
    /// Transport endpoint is not connected.
    ENOTCONN,
    /// Cannot send after transport endpoint shutdown.
    ESHUTDOWN,
    /// Connection timed out.
    ETIMEDOUT,
    /// Connection refused.
    ECONNREFUSED,
    /// Host is down.
    EHOSTDOWN,
    /// No route to host.
    EHOSTUNREACH,
    /// Operation already in progress (a second connect while one is pending).
    EALREADY,
    /// Operation now in progress (non-blocking connect started).
    EINPROGRESS,
}

impl Errno {
    /// Every variant, in declaration order (for tests and tables).
    pub const ALL: [Errno; 34] = [
        Errno::EPERM,
        Errno::ENOENT,
        Errno::EBADF,
        Errno::EAGAIN,
        Errno::ENOMEM,
        Errno::EACCES,
        Errno::EINVAL,
        Errno::EMFILE,
        Errno::ENFILE,
        Errno::EPIPE,
        Errno::ENOTSOCK,
        Errno::EDESTADDRREQ,
        Errno::EMSGSIZE,
        Errno::EPROTOTYPE,
        Errno::ENOPROTOOPT,
        Errno::EPROTONOSUPPORT,
        Errno::EOPNOTSUPP,
        Errno::EAFNOSUPPORT,
        Errno::EADDRINUSE,
        Errno::EADDRNOTAVAIL,
        Errno::ENETDOWN,
        Errno::ENETUNREACH,
        Errno::ECONNABORTED,
        Errno::ECONNRESET,
        Errno::ENOBUFS,
        Errno::EISCONN,
        Errno::ENOTCONN,
        Errno::ESHUTDOWN,
        Errno::ETIMEDOUT,
        Errno::ECONNREFUSED,
        Errno::EHOSTDOWN,
        Errno::EHOSTUNREACH,
        Errno::EALREADY,
        Errno::EINPROGRESS,
    ];

    /// The raw errno value (`libc::EADDRINUSE` etc.), as the kernel would report it.
    pub const fn raw_os_error(self) -> i32 {
        match self {
            Errno::EPERM => libc::EPERM,
            Errno::EBADF => libc::EBADF,
            Errno::ENOENT => libc::ENOENT,
            Errno::EAGAIN => libc::EAGAIN,
            Errno::ENOMEM => libc::ENOMEM,
            Errno::EACCES => libc::EACCES,
            Errno::EINVAL => libc::EINVAL,
            Errno::EMFILE => libc::EMFILE,
            Errno::ENFILE => libc::ENFILE,
            Errno::EPIPE => libc::EPIPE,
            Errno::ENOTSOCK => libc::ENOTSOCK,
            Errno::EDESTADDRREQ => libc::EDESTADDRREQ,
            Errno::EMSGSIZE => libc::EMSGSIZE,
            Errno::EPROTOTYPE => libc::EPROTOTYPE,
            Errno::ENOPROTOOPT => libc::ENOPROTOOPT,
            Errno::EPROTONOSUPPORT => libc::EPROTONOSUPPORT,
            Errno::EOPNOTSUPP => libc::EOPNOTSUPP,
            Errno::EAFNOSUPPORT => libc::EAFNOSUPPORT,
            Errno::EADDRINUSE => libc::EADDRINUSE,
            Errno::EADDRNOTAVAIL => libc::EADDRNOTAVAIL,
            Errno::ENETDOWN => libc::ENETDOWN,
            Errno::ENETUNREACH => libc::ENETUNREACH,
            Errno::ECONNABORTED => libc::ECONNABORTED,
            Errno::ECONNRESET => libc::ECONNRESET,
            Errno::ENOBUFS => libc::ENOBUFS,
            Errno::EISCONN => libc::EISCONN,
            Errno::ENOTCONN => libc::ENOTCONN,
            Errno::ESHUTDOWN => libc::ESHUTDOWN,
            Errno::ETIMEDOUT => libc::ETIMEDOUT,
            Errno::ECONNREFUSED => libc::ECONNREFUSED,
            Errno::EHOSTDOWN => libc::EHOSTDOWN,
            Errno::EHOSTUNREACH => libc::EHOSTUNREACH,
            Errno::EALREADY => libc::EALREADY,
            Errno::EINPROGRESS => libc::EINPROGRESS,
        }
    }

    /// The variant for a raw errno value, if surge knows it (`EWOULDBLOCK` is `EAGAIN`).
    pub fn from_raw_os_error(raw: i32) -> Option<Errno> {
        Errno::ALL.into_iter().find(|e| e.raw_os_error() == raw)
    }

    /// The errno's symbolic name, e.g. `"EADDRINUSE"`.
    pub const fn name(self) -> &'static str {
        match self {
            Errno::EPERM => "EPERM",
            Errno::EBADF => "EBADF",
            Errno::ENOENT => "ENOENT",
            Errno::EAGAIN => "EAGAIN",
            Errno::ENOMEM => "ENOMEM",
            Errno::EACCES => "EACCES",
            Errno::EINVAL => "EINVAL",
            Errno::EMFILE => "EMFILE",
            Errno::ENFILE => "ENFILE",
            Errno::EPIPE => "EPIPE",
            Errno::ENOTSOCK => "ENOTSOCK",
            Errno::EDESTADDRREQ => "EDESTADDRREQ",
            Errno::EMSGSIZE => "EMSGSIZE",
            Errno::EPROTOTYPE => "EPROTOTYPE",
            Errno::ENOPROTOOPT => "ENOPROTOOPT",
            Errno::EPROTONOSUPPORT => "EPROTONOSUPPORT",
            Errno::EOPNOTSUPP => "EOPNOTSUPP",
            Errno::EAFNOSUPPORT => "EAFNOSUPPORT",
            Errno::EADDRINUSE => "EADDRINUSE",
            Errno::EADDRNOTAVAIL => "EADDRNOTAVAIL",
            Errno::ENETDOWN => "ENETDOWN",
            Errno::ENETUNREACH => "ENETUNREACH",
            Errno::ECONNABORTED => "ECONNABORTED",
            Errno::ECONNRESET => "ECONNRESET",
            Errno::ENOBUFS => "ENOBUFS",
            Errno::EISCONN => "EISCONN",
            Errno::ENOTCONN => "ENOTCONN",
            Errno::ESHUTDOWN => "ESHUTDOWN",
            Errno::ETIMEDOUT => "ETIMEDOUT",
            Errno::ECONNREFUSED => "ECONNREFUSED",
            Errno::EHOSTDOWN => "EHOSTDOWN",
            Errno::EHOSTUNREACH => "EHOSTUNREACH",
            Errno::EALREADY => "EALREADY",
            Errno::EINPROGRESS => "EINPROGRESS",
        }
    }

    /// The message glibc's `strerror` gives for this errno.
    pub const fn message(self) -> &'static str {
        match self {
            Errno::EPERM => "Operation not permitted",
            Errno::EBADF => "Bad file descriptor",
            Errno::ENOENT => "No such file or directory",
            Errno::EAGAIN => "Resource temporarily unavailable",
            Errno::ENOMEM => "Cannot allocate memory",
            Errno::EACCES => "Permission denied",
            Errno::EINVAL => "Invalid argument",
            Errno::EMFILE => "Too many open files",
            Errno::ENFILE => "Too many open files in system",
            Errno::EPIPE => "Broken pipe",
            Errno::ENOTSOCK => "Socket operation on non-socket",
            Errno::EDESTADDRREQ => "Destination address required",
            Errno::EMSGSIZE => "Message too long",
            Errno::EPROTOTYPE => "Protocol wrong type for socket",
            Errno::ENOPROTOOPT => "Protocol not available",
            Errno::EPROTONOSUPPORT => "Protocol not supported",
            Errno::EOPNOTSUPP => "Operation not supported",
            Errno::EAFNOSUPPORT => "Address family not supported by protocol",
            Errno::EADDRINUSE => "Address already in use",
            Errno::EADDRNOTAVAIL => "Cannot assign requested address",
            Errno::ENETDOWN => "Network is down",
            Errno::ENETUNREACH => "Network is unreachable",
            Errno::ECONNABORTED => "Software caused connection abort",
            Errno::ECONNRESET => "Connection reset by peer",
            Errno::ENOBUFS => "No buffer space available",
            Errno::EISCONN => "Transport endpoint is already connected",
            Errno::ENOTCONN => "Transport endpoint is not connected",
            Errno::ESHUTDOWN => "Cannot send after transport endpoint shutdown",
            Errno::ETIMEDOUT => "Connection timed out",
            Errno::ECONNREFUSED => "Connection refused",
            Errno::EHOSTDOWN => "Host is down",
            Errno::EHOSTUNREACH => "No route to host",
            Errno::EALREADY => "Operation already in progress",
            Errno::EINPROGRESS => "Operation now in progress",
        }
    }

    /// The `std::io::ErrorKind` a kernel socket failing with this errno would give.
    pub fn kind(self) -> std::io::ErrorKind {
        std::io::Error::from_raw_os_error(self.raw_os_error()).kind()
    }
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

impl std::error::Error for Errno {}

impl From<Errno> for std::io::Error {
    fn from(errno: Errno) -> Self {
        std::io::Error::from_raw_os_error(errno.raw_os_error())
    }
}

impl TryFrom<&std::io::Error> for Errno {
    type Error = ();

    /// The errno inside an `io::Error` built from a raw OS error, if surge knows it.
    fn try_from(error: &std::io::Error) -> Result<Self, ()> {
        error
            .raw_os_error()
            .and_then(Errno::from_raw_os_error)
            .ok_or(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::io::ErrorKind;

    /// The Linux x86_64 numbers (asm-generic/errno*.h), pinned so a wrong libc
    /// mapping or a reordered match shows.
    #[test]
    fn raw_values_are_linux_x86_64_errno_h() {
        let expected = [
            (Errno::EPERM, 1),
            (Errno::ENOENT, 2),
            (Errno::EBADF, 9),
            (Errno::EAGAIN, 11),
            (Errno::ENOMEM, 12),
            (Errno::EACCES, 13),
            (Errno::EINVAL, 22),
            (Errno::EMFILE, 24),
            (Errno::ENFILE, 23),
            (Errno::EPIPE, 32),
            (Errno::ENOTSOCK, 88),
            (Errno::EDESTADDRREQ, 89),
            (Errno::EMSGSIZE, 90),
            (Errno::EPROTOTYPE, 91),
            (Errno::ENOPROTOOPT, 92),
            (Errno::EPROTONOSUPPORT, 93),
            (Errno::EOPNOTSUPP, 95),
            (Errno::EAFNOSUPPORT, 97),
            (Errno::EADDRINUSE, 98),
            (Errno::EADDRNOTAVAIL, 99),
            (Errno::ENETDOWN, 100),
            (Errno::ENETUNREACH, 101),
            (Errno::ECONNABORTED, 103),
            (Errno::ECONNRESET, 104),
            (Errno::ENOBUFS, 105),
            (Errno::EISCONN, 106),
            (Errno::ENOTCONN, 107),
            (Errno::ESHUTDOWN, 108),
            (Errno::ETIMEDOUT, 110),
            (Errno::ECONNREFUSED, 111),
            (Errno::EHOSTDOWN, 112),
            (Errno::EHOSTUNREACH, 113),
            (Errno::EALREADY, 114),
            (Errno::EINPROGRESS, 115),
        ];
        assert_eq!(expected.len(), Errno::ALL.len());
        for (errno, raw) in expected {
            assert_eq!(errno.raw_os_error(), raw, "{errno:?}");
        }
    }

    #[test]
    fn all_is_complete_and_values_are_distinct() {
        let raws: HashSet<i32> = Errno::ALL.iter().map(|e| e.raw_os_error()).collect();
        assert_eq!(raws.len(), Errno::ALL.len());
        let names: HashSet<&str> = Errno::ALL.iter().map(|e| e.name()).collect();
        assert_eq!(names.len(), Errno::ALL.len());
        for e in Errno::ALL {
            assert_eq!(Errno::from_raw_os_error(e.raw_os_error()), Some(e));
        }
        assert_eq!(Errno::from_raw_os_error(0), None);
        assert_eq!(Errno::from_raw_os_error(-1), None);
        assert_eq!(
            Errno::from_raw_os_error(libc::EWOULDBLOCK),
            Some(Errno::EAGAIN)
        );
    }

    /// Display must be the C library's strerror text: std's io::Error Display for a raw
    /// OS error calls strerror_r, so compare against it.
    #[test]
    fn display_matches_strerror() {
        for e in Errno::ALL {
            let io = std::io::Error::from_raw_os_error(e.raw_os_error()).to_string();
            let want = format!("{} (os error {})", e, e.raw_os_error());
            assert_eq!(io, want, "{e:?}");
        }
    }

    #[test]
    fn into_io_error_keeps_errno_and_kind() {
        let cases = [
            (Errno::EADDRINUSE, ErrorKind::AddrInUse),
            (Errno::EADDRNOTAVAIL, ErrorKind::AddrNotAvailable),
            (Errno::EAGAIN, ErrorKind::WouldBlock),
            (Errno::EACCES, ErrorKind::PermissionDenied),
            (Errno::EPERM, ErrorKind::PermissionDenied),
            (Errno::EINVAL, ErrorKind::InvalidInput),
            (Errno::ECONNREFUSED, ErrorKind::ConnectionRefused),
            (Errno::ECONNRESET, ErrorKind::ConnectionReset),
            (Errno::ECONNABORTED, ErrorKind::ConnectionAborted),
            (Errno::ENOTCONN, ErrorKind::NotConnected),
            (Errno::EPIPE, ErrorKind::BrokenPipe),
            (Errno::ETIMEDOUT, ErrorKind::TimedOut),
            (Errno::EHOSTUNREACH, ErrorKind::HostUnreachable),
            (Errno::ENETUNREACH, ErrorKind::NetworkUnreachable),
            (Errno::ENETDOWN, ErrorKind::NetworkDown),
            (Errno::ENOMEM, ErrorKind::OutOfMemory),
            (Errno::EOPNOTSUPP, ErrorKind::Unsupported),
        ];
        for (e, kind) in cases {
            let io: std::io::Error = e.into();
            assert_eq!(io.raw_os_error(), Some(e.raw_os_error()));
            assert_eq!(io.kind(), kind, "{e:?}");
            assert_eq!(e.kind(), kind, "{e:?}");
            assert_eq!(Errno::try_from(&io), Ok(e));
        }
        let custom = std::io::Error::other("not an errno");
        assert_eq!(Errno::try_from(&custom), Err(()));
    }
}

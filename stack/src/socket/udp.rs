//! UDP sockets: a bound local address, an optional connected peer, and a
//! receive queue of whole datagrams kept in one byte ring allocated once
//! (`SO_RCVBUF` bytes), so receiving allocates nothing per datagram.

use core::net::{Ipv4Addr, SocketAddrV4};

use super::ReadyMark;
use crate::errno::Errno;

/// Bytes of bookkeeping stored before each queued datagram (length, source address, port).
const RECORD_HEADER: usize = 2 + 4 + 2;

/// Counters of one UDP socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct UdpStats {
    /// Datagrams queued for the application.
    pub datagrams_in: u64,
    /// Datagrams handed to the application.
    pub datagrams_delivered: u64,
    /// Datagrams dropped because the receive queue was full (Linux `RcvbufErrors`).
    pub rcvbuf_errors: u64,
    /// Datagrams sent.
    pub datagrams_out: u64,
}

/// One UDP socket's state inside its engine (Linux's `struct sock`); the handle an
/// application thread holds is [`crate::runtime::UdpSocket`].
#[derive(Debug)]
pub struct UdpSock {
    /// Its place in the engine's ready list (events).
    pub ready: ReadyMark,
    local: Option<SocketAddrV4>,
    remote: Option<SocketAddrV4>,
    ring: Vec<u8>,
    head: usize,
    used: usize,
    queued: usize,
    stats: UdpStats,
    /// A pending error from an ICMP message (`SO_ERROR`), reported once.
    error: Option<Errno>,
}

impl UdpSock {
    /// An unbound socket whose receive queue holds `rcvbuf` bytes of datagrams.
    pub fn new(rcvbuf: usize) -> Self {
        UdpSock {
            ready: ReadyMark::default(),
            local: None,
            remote: None,
            ring: vec![0; rcvbuf.max(RECORD_HEADER + 1)],
            head: 0,
            used: 0,
            queued: 0,
            stats: UdpStats::default(),
            error: None,
        }
    }

    /// The bound local address, if bound.
    pub fn local(&self) -> Option<SocketAddrV4> {
        self.local
    }

    /// Records the bound local address (the bind table has granted it).
    pub fn set_local(&mut self, local: SocketAddrV4) {
        self.local = Some(local);
    }

    /// The connected peer, if any.
    pub fn remote(&self) -> Option<SocketAddrV4> {
        self.remote
    }

    /// Connects (filters input to this peer, default destination for `send`);
    /// `None` dissolves the association (`connect` with `AF_UNSPEC`).
    pub fn set_remote(&mut self, remote: Option<SocketAddrV4>) {
        self.remote = remote;
    }

    /// Counters.
    pub fn stats(&self) -> UdpStats {
        self.stats
    }

    /// Datagrams waiting.
    pub fn queued(&self) -> usize {
        self.queued
    }

    /// True when a `recv` would return a datagram.
    pub fn is_readable(&self) -> bool {
        self.queued > 0 || self.error.is_some()
    }

    /// Records an error an ICMP message reported (RFC 1122 §4.1.3.3).
    pub fn set_error(&mut self, error: Errno) {
        self.error = Some(error);
    }

    /// Takes the pending error, clearing it (`getsockopt(SO_ERROR)`).
    pub fn take_error(&mut self) -> Option<Errno> {
        self.error.take()
    }

    /// Whether a datagram from `src` to `dst` is for this socket (bound address
    /// matches or is the wildcard; a connected socket only hears its peer).
    pub fn accepts(&self, src: SocketAddrV4, dst: SocketAddrV4) -> bool {
        let Some(local) = self.local else {
            return false;
        };
        let addr_ok = local.ip().is_unspecified() || *local.ip() == *dst.ip();
        let peer_ok = self.remote.is_none_or(|r| r == src);
        addr_ok && local.port() == dst.port() && peer_ok
    }

    fn write_wrapped(&mut self, at: usize, bytes: &[u8]) {
        let cap = self.ring.len();
        let start = at % cap;
        let first = bytes.len().min(cap - start);
        self.ring[start..start + first].copy_from_slice(&bytes[..first]);
        self.ring[..bytes.len() - first].copy_from_slice(&bytes[first..]);
    }

    fn read_wrapped(&self, at: usize, out: &mut [u8]) {
        let cap = self.ring.len();
        let start = at % cap;
        let first = out.len().min(cap - start);
        out[..first].copy_from_slice(&self.ring[start..start + first]);
        let rest = out.len() - first;
        out[first..].copy_from_slice(&self.ring[..rest]);
    }

    /// Queues a received datagram; `false` (and a counted drop) when it does not fit.
    pub fn enqueue(&mut self, src: SocketAddrV4, payload: &[u8]) -> bool {
        let need = RECORD_HEADER + payload.len();
        if payload.len() > usize::from(u16::MAX) || need > self.ring.len() - self.used {
            self.stats.rcvbuf_errors += 1;
            return false;
        }
        let mut header = [0u8; RECORD_HEADER];
        header[..2].copy_from_slice(&(payload.len() as u16).to_be_bytes());
        header[2..6].copy_from_slice(&src.ip().octets());
        header[6..8].copy_from_slice(&src.port().to_be_bytes());
        let tail = self.head + self.used;
        self.write_wrapped(tail, &header);
        self.write_wrapped(tail + RECORD_HEADER, payload);
        self.used += need;
        self.queued += 1;
        self.stats.datagrams_in += 1;
        true
    }

    /// Takes the oldest datagram: copies as much as fits into `buf` (the rest
    /// is discarded, as `recvfrom` without `MSG_PEEK`) and returns
    /// (bytes copied, full datagram length, source). `EAGAIN` when empty.
    pub fn recv_from(&mut self, buf: &mut [u8]) -> Result<(usize, usize, SocketAddrV4), Errno> {
        // Linux `sock_error`: a pending error is reported once, before data.
        if let Some(error) = self.error.take() {
            return Err(error);
        }
        if self.queued == 0 {
            return Err(Errno::EAGAIN);
        }
        let mut header = [0u8; RECORD_HEADER];
        self.read_wrapped(self.head, &mut header);
        let len = usize::from(u16::from_be_bytes([header[0], header[1]]));
        let src = SocketAddrV4::new(
            Ipv4Addr::new(header[2], header[3], header[4], header[5]),
            u16::from_be_bytes([header[6], header[7]]),
        );
        let n = len.min(buf.len());
        self.read_wrapped(self.head + RECORD_HEADER, &mut buf[..n]);
        self.head = (self.head + RECORD_HEADER + len) % self.ring.len();
        self.used -= RECORD_HEADER + len;
        self.queued -= 1;
        if self.queued == 0 {
            self.head = 0;
        }
        self.stats.datagrams_delivered += 1;
        Ok((n, len, src))
    }

    /// Counts a datagram sent.
    pub fn count_sent(&mut self) {
        self.stats.datagrams_out += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(last: u8, port: u16) -> SocketAddrV4 {
        SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, last), port)
    }

    #[test]
    fn datagrams_come_out_whole_and_in_order_with_their_source() {
        let mut s = UdpSock::new(256);
        assert!(s.enqueue(addr(2, 1000), b"hello"));
        assert!(s.enqueue(addr(3, 2000), b""));
        assert!(s.enqueue(addr(4, 3000), b"world!"));
        let mut buf = [0u8; 64];
        assert_eq!(s.recv_from(&mut buf), Ok((5, 5, addr(2, 1000))));
        assert_eq!(&buf[..5], b"hello");
        assert_eq!(s.recv_from(&mut buf), Ok((0, 0, addr(3, 2000))));
        assert_eq!(s.recv_from(&mut buf), Ok((6, 6, addr(4, 3000))));
        assert_eq!(&buf[..6], b"world!");
        assert_eq!(s.recv_from(&mut buf), Err(Errno::EAGAIN));
    }

    #[test]
    fn short_buffer_truncates_the_datagram_like_recvfrom() {
        let mut s = UdpSock::new(256);
        s.enqueue(addr(2, 1), b"abcdef");
        s.enqueue(addr(2, 1), b"next");
        let mut buf = [0u8; 3];
        assert_eq!(s.recv_from(&mut buf), Ok((3, 6, addr(2, 1))));
        assert_eq!(&buf, b"abc");
        let mut buf = [0u8; 8];
        assert_eq!(s.recv_from(&mut buf), Ok((4, 4, addr(2, 1))));
        assert_eq!(&buf[..4], b"next");
    }

    #[test]
    fn full_queue_drops_and_counts_and_wraps_correctly() {
        let mut s = UdpSock::new(40);
        // Each record is 8 + 10 = 18 bytes: two fit, the third does not.
        assert!(s.enqueue(addr(2, 1), &[1; 10]));
        assert!(s.enqueue(addr(2, 1), &[2; 10]));
        assert!(!s.enqueue(addr(2, 1), &[3; 10]));
        assert_eq!(s.stats().rcvbuf_errors, 1);
        let mut buf = [0u8; 16];
        assert_eq!(s.recv_from(&mut buf).map(|r| r.0), Ok(10));
        // This record wraps around the end of the ring.
        assert!(s.enqueue(addr(5, 9), &[4; 10]));
        assert_eq!(s.recv_from(&mut buf).map(|r| r.0), Ok(10));
        assert_eq!(buf[..10], [2; 10]);
        assert_eq!(s.recv_from(&mut buf), Ok((10, 10, addr(5, 9))));
        assert_eq!(buf[..10], [4; 10]);
        assert_eq!(s.queued(), 0);
    }

    #[test]
    fn bound_and_connected_filters() {
        let mut s = UdpSock::new(64);
        assert!(
            !s.accepts(addr(2, 5), addr(1, 53)),
            "unbound sockets hear nothing"
        );
        s.set_local(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 53));
        assert!(s.accepts(addr(2, 5), addr(1, 53)));
        assert!(!s.accepts(addr(2, 5), addr(1, 54)));
        s.set_local(addr(1, 53));
        assert!(!s.accepts(addr(2, 5), addr(9, 53)));
        s.set_remote(Some(addr(2, 5)));
        assert!(s.accepts(addr(2, 5), addr(1, 53)));
        assert!(!s.accepts(addr(3, 5), addr(1, 53)));
    }
}

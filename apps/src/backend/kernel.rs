//! The kernel backend: ordinary TCP sockets driven by `mio` (epoll), one `Poll` per thread.

use std::collections::BTreeMap;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::time::Duration;

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};
use socket2::{Domain, Protocol, Socket, Type};

use surge_stack::tcp::CongestionAlgorithm;

use super::slab::SocketSlab;
use super::{Backend, Event, SocketId, Worker};

/// The Linux kernel's TCP stack.
#[derive(Debug, Default, Clone, Copy)]
pub struct KernelBackend {
    /// `TCP_CONGESTION` of every socket it opens (`None`: the namespace's
    /// `net.ipv4.tcp_congestion_control`).
    congestion: Option<CongestionAlgorithm>,
}

impl KernelBackend {
    /// A backend whose sockets run `congestion`, checked once here on a scratch socket so
    /// that a kernel without the algorithm is one clear error at start-up, not an error per
    /// connection.
    pub fn new(congestion: Option<CongestionAlgorithm>) -> io::Result<KernelBackend> {
        if let Some(algorithm) = congestion {
            let probe = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP))?;
            set_congestion(&probe, algorithm)?;
        }
        Ok(KernelBackend { congestion })
    }
}

/// Sets `TCP_CONGESTION` on `socket`, with the reason spelled out when the kernel refuses.
fn set_congestion(socket: &Socket, algorithm: CongestionAlgorithm) -> io::Result<()> {
    let name = algorithm.name();
    socket.set_tcp_congestion(name.as_bytes()).map_err(|err| {
        // tcp_set_congestion_control: ENOENT when no such module is loaded (or loadable),
        // EPERM when it is not in tcp_allowed_congestion_control and we lack CAP_NET_ADMIN.
        let why = match err.kind() {
            io::ErrorKind::NotFound => format!(
                "the kernel has no congestion control '{name}' (not in \
                 net.ipv4.tcp_available_congestion_control; try modprobe tcp_{name})"
            ),
            io::ErrorKind::PermissionDenied => format!(
                "'{name}' is not in net.ipv4.tcp_allowed_congestion_control and this \
                 process lacks CAP_NET_ADMIN"
            ),
            _ => format!("setting TCP_CONGESTION to '{name}'"),
        };
        io::Error::new(err.kind(), format!("{why}: {err}"))
    })
}

impl Backend for KernelBackend {
    type Worker = KernelWorker;

    fn name(&self) -> &'static str {
        "kernel"
    }

    fn worker(&self, _index: usize) -> io::Result<KernelWorker> {
        Ok(KernelWorker {
            poll: Poll::new()?,
            events: Events::with_capacity(1024),
            sockets: SocketSlab::default(),
            congestion: self.congestion,
        })
    }

    fn counters(&self) -> BTreeMap<String, u64> {
        let mut counters = std::fs::read_to_string("/proc/self/net/snmp")
            .map(|text| parse_snmp_tcp(&text))
            .unwrap_or_default();
        if let Ok(text) = std::fs::read_to_string("/proc/self/net/netstat") {
            counters.extend(parse_netstat_tcp_ext(&text));
        }
        counters
    }
}

/// The `Tcp:` counters of `/proc/net/snmp` (of the caller's network namespace).
pub fn parse_snmp_tcp(text: &str) -> BTreeMap<String, u64> {
    let mut lines = text.lines().filter(|l| l.starts_with("Tcp:"));
    let (Some(names), Some(values)) = (lines.next(), lines.next()) else {
        return BTreeMap::new();
    };
    names
        .split_whitespace()
        .zip(values.split_whitespace())
        .skip(1)
        .filter_map(|(n, v)| Some((format!("tcp_{n}"), v.parse::<u64>().ok()?)))
        .filter(|(n, _)| n != "tcp_MaxConn" && n != "tcp_CurrEstab" && !n.starts_with("tcp_Rto"))
        .collect()
}

/// The `TcpExt:` counters of `/proc/net/netstat` that explain drops and retransmits.
pub fn parse_netstat_tcp_ext(text: &str) -> BTreeMap<String, u64> {
    const WANTED: [&str; 10] = [
        "ListenOverflows",
        "ListenDrops",
        "TCPTimeouts",
        "TCPLossProbes",
        "TCPSynRetrans",
        "TCPFastRetrans",
        "TCPAbortOnData",
        "TCPAbortOnTimeout",
        "TCPBacklogDrop",
        "TCPRcvQDrop",
    ];
    let mut lines = text.lines().filter(|l| l.starts_with("TcpExt:"));
    let (Some(names), Some(values)) = (lines.next(), lines.next()) else {
        return BTreeMap::new();
    };
    names
        .split_whitespace()
        .zip(values.split_whitespace())
        .skip(1)
        .filter(|(n, _)| WANTED.contains(n))
        .filter_map(|(n, v)| Some((format!("tcpext_{n}"), v.parse::<u64>().ok()?)))
        .collect()
}

/// One socket of a kernel worker.
#[derive(Debug)]
enum Entry {
    Listener(TcpListener),
    Stream { stream: TcpStream, connecting: bool },
}

/// One thread's epoll instance and its sockets, indexed by `SocketId`.
#[derive(Debug)]
pub struct KernelWorker {
    poll: Poll,
    events: Events,
    sockets: SocketSlab<Entry>,
    /// `TCP_CONGESTION` for new sockets (accepted ones inherit the listener's).
    congestion: Option<CongestionAlgorithm>,
}

/// The error for a socket id this worker does not hold.
fn unknown(id: SocketId) -> io::Error {
    io::Error::new(io::ErrorKind::NotFound, format!("no socket {id}"))
}

impl KernelWorker {
    /// Stores a socket and registers it with epoll under its id.
    fn insert(&mut self, entry: Entry) -> io::Result<SocketId> {
        let id = self.sockets.insert(entry);
        let registry = self.poll.registry();
        let registered = match self.sockets.get_mut(id) {
            Some(Entry::Listener(l)) => registry.register(l, Token(id), Interest::READABLE),
            Some(Entry::Stream { stream, .. }) => {
                registry.register(stream, Token(id), Interest::READABLE | Interest::WRITABLE)
            }
            None => Err(unknown(id)),
        };
        if let Err(err) = registered {
            self.sockets.remove(id);
            return Err(err);
        }
        Ok(id)
    }

    /// The stream behind `id`.
    fn stream(&mut self, id: SocketId) -> io::Result<&mut TcpStream> {
        match self.sockets.get_mut(id) {
            Some(Entry::Stream { stream, .. }) => Ok(stream),
            _ => Err(unknown(id)),
        }
    }
}

impl Worker for KernelWorker {
    fn listen(&mut self, addr: SocketAddr) -> io::Result<SocketId> {
        let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
        socket.set_reuse_address(true)?;
        // One listener per thread on the same port; the kernel spreads connections.
        socket.set_reuse_port(true)?;
        socket.set_nonblocking(true)?;
        // Accepted sockets inherit the listener's congestion control (tcp_create_openreq_child
        // copies icsk_ca_ops).
        if let Some(algorithm) = self.congestion {
            set_congestion(&socket, algorithm)?;
        }
        socket.bind(&addr.into())?;
        socket.listen(4096)?;
        let listener = TcpListener::from_std(socket.into());
        self.insert(Entry::Listener(listener))
    }

    fn accept(&mut self, listener: SocketId) -> io::Result<Option<SocketId>> {
        let accepted = match self.sockets.get_mut(listener) {
            Some(Entry::Listener(l)) => l.accept(),
            _ => return Err(unknown(listener)),
        };
        match accepted {
            Ok((stream, _peer)) => {
                stream.set_nodelay(true)?;
                self.insert(Entry::Stream {
                    stream,
                    connecting: false,
                })
                .map(Some)
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn connect(&mut self, addr: SocketAddr) -> io::Result<SocketId> {
        let stream = match self.congestion {
            None => TcpStream::connect(addr)?,
            Some(algorithm) => {
                // As mio's connect, with TCP_CONGESTION set before the SYN.
                let socket =
                    Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
                socket.set_nonblocking(true)?;
                set_congestion(&socket, algorithm)?;
                match socket.connect(&addr.into()) {
                    Ok(()) => {}
                    Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
                    Err(e) => return Err(e),
                }
                TcpStream::from_std(socket.into())
            }
        };
        stream.set_nodelay(true)?;
        self.insert(Entry::Stream {
            stream,
            connecting: true,
        })
    }

    fn send(&mut self, id: SocketId, buf: &[u8]) -> io::Result<usize> {
        self.stream(id)?.write(buf)
    }

    fn recv(&mut self, id: SocketId, buf: &mut [u8]) -> io::Result<usize> {
        self.stream(id)?.read(buf)
    }

    fn shutdown_write(&mut self, id: SocketId) -> io::Result<()> {
        self.stream(id)?.shutdown(Shutdown::Write)
    }

    fn close(&mut self, id: SocketId) {
        let Some(entry) = self.sockets.remove(id) else {
            return;
        };
        let registry = self.poll.registry();
        // Deregistering cannot fail for a registered socket; the fd closes on drop anyway.
        let _ = match entry {
            Entry::Listener(mut l) => registry.deregister(&mut l),
            Entry::Stream { mut stream, .. } => registry.deregister(&mut stream),
        };
    }

    fn poll(&mut self, out: &mut Vec<Event>, timeout: Duration) -> io::Result<()> {
        match self.poll.poll(&mut self.events, Some(timeout)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(()),
            Err(e) => return Err(e),
        }
        for event in self.events.iter() {
            let id = event.token().0;
            match self.sockets.get_mut(id) {
                Some(Entry::Listener(_)) => out.push(Event::Acceptable(id)),
                Some(Entry::Stream { stream, connecting }) => {
                    if *connecting {
                        // A non-blocking connect finished when the socket turns writable or
                        // reports an error: SO_ERROR says how.
                        match stream.take_error() {
                            Ok(Some(err)) | Err(err) => {
                                out.push(Event::ConnectFailed(id, err));
                                continue;
                            }
                            Ok(None) => {}
                        }
                        match stream.peer_addr() {
                            Ok(_) => {
                                *connecting = false;
                                out.push(Event::Connected(id));
                            }
                            Err(_) if event.is_error() || event.is_write_closed() => {
                                out.push(Event::ConnectFailed(
                                    id,
                                    io::Error::from(io::ErrorKind::ConnectionRefused),
                                ));
                                continue;
                            }
                            Err(_) => continue,
                        }
                    }
                    if event.is_readable() || event.is_read_closed() || event.is_error() {
                        out.push(Event::Readable(id));
                    }
                    if event.is_writable() {
                        out.push(Event::Writable(id));
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use socket2::SockRef;

    /// The name `getsockopt(TCP_CONGESTION)` reports for `id`'s stream.
    fn congestion_of(worker: &mut KernelWorker, id: SocketId) -> String {
        let stream = worker.stream(id).expect("a stream");
        let name = SockRef::from(&*stream)
            .tcp_congestion()
            .expect("getsockopt TCP_CONGESTION");
        // Linux fills the TCP_CA_NAME_MAX (16) bytes, NUL-padded.
        let end = name.iter().position(|&b| b == 0).unwrap_or(name.len());
        String::from_utf8_lossy(&name[..end]).into_owned()
    }

    /// Names in a `/proc/sys/net/ipv4/tcp_*_congestion_control` list.
    fn sysctl_list(name: &str) -> Vec<String> {
        std::fs::read_to_string(format!("/proc/sys/net/ipv4/{name}"))
            .unwrap_or_default()
            .split_whitespace()
            .map(str::to_string)
            .collect()
    }

    #[test]
    fn congestion_option_reaches_accepted_and_connecting_sockets() {
        let mut worked = Vec::new();
        for algorithm in [
            CongestionAlgorithm::NewReno,
            CongestionAlgorithm::Cubic,
            CongestionAlgorithm::Bbr,
        ] {
            let name = algorithm.name();
            let backend = match KernelBackend::new(Some(algorithm)) {
                Ok(backend) => backend,
                Err(err) => {
                    // Refused only with a reason: not built (ENOENT) or not allowed to an
                    // unprivileged process (EPERM). Linux's reno is always allowed.
                    assert_ne!(algorithm, CongestionAlgorithm::NewReno, "{err}");
                    let text = err.to_string();
                    assert!(
                        text.contains("tcp_available_congestion_control")
                            || text.contains("tcp_allowed_congestion_control"),
                        "{text}"
                    );
                    assert!(
                        !sysctl_list("tcp_allowed_congestion_control").contains(&name.into()),
                        "{name} is allowed, yet: {text}"
                    );
                    continue;
                }
            };
            let mut worker = backend.worker(0).expect("worker");
            let listener = worker
                .listen("127.0.0.1:0".parse().unwrap())
                .expect("listen");
            let addr = match worker.sockets.get_mut(listener) {
                Some(Entry::Listener(l)) => l.local_addr().expect("local_addr"),
                _ => unreachable!("a listener"),
            };
            // Our own active open, through the same backend.
            let client = worker.connect(addr).expect("connect");
            let mut events = Vec::new();
            let mut polls = 0;
            let accepted = loop {
                if let Some(id) = worker.accept(listener).expect("accept") {
                    break id;
                }
                polls += 1;
                assert!(polls < 100, "no connection to accept on loopback");
                worker
                    .poll(&mut events, Duration::from_millis(100))
                    .expect("poll");
            };
            assert_eq!(congestion_of(&mut worker, accepted), name, "accepted");
            assert_eq!(congestion_of(&mut worker, client), name, "connecting");
            worked.push(name);
        }
        assert!(worked.contains(&"reno"), "{worked:?}");
    }

    #[test]
    fn snmp_tcp_counters_parse() {
        let text = "Ip: Forwarding DefaultTTL\nIp: 1 64\nTcp: RtoAlgorithm RtoMin RtoMax MaxConn ActiveOpens RetransSegs\nTcp: 1 200 120000 -1 7 3\nUdp: InDatagrams\nUdp: 1\n";
        let counters = parse_snmp_tcp(text);
        assert_eq!(counters.get("tcp_ActiveOpens"), Some(&7));
        assert_eq!(counters.get("tcp_RetransSegs"), Some(&3));
        assert!(!counters.contains_key("tcp_MaxConn"));
        assert!(parse_snmp_tcp("garbage").is_empty());
        let netstat = "TcpExt: SyncookiesSent ListenDrops TCPTimeouts\nTcpExt: 0 4 9\n";
        let ext = parse_netstat_tcp_ext(netstat);
        assert_eq!(ext.get("tcpext_ListenDrops"), Some(&4));
        assert_eq!(ext.get("tcpext_TCPTimeouts"), Some(&9));
        assert!(!ext.contains_key("tcpext_SyncookiesSent"));
    }
}

//! The cross-thread API's errnos, as Linux answers the same calls: a
//! non-blocking `connect` returns EINPROGRESS and a second one reports how it
//! went, SO_ERROR (`take_error`) clears what it reads.

mod support;

use core::net::SocketAddrV4;
use std::io::{Read, Write};
use std::time::Duration;

use support::runtime::{SERVER_IP, stacks};
use surge_stack::errno::Errno;
use surge_stack::runtime::{Interest, STREAM_RING_BYTES};
use surge_stack::socket::TcpSocketOptions;

fn addr(port: u16) -> SocketAddrV4 {
    SocketAddrV4::new(SERVER_IP, port)
}

#[test]
fn nonblocking_connect_says_einprogress_then_how_it_went() {
    let (server, client) = stacks(2);
    let listener = server.tcp_listen(addr(7100), 8).expect("listen");
    let mut socket = client.tcp_socket();
    assert_eq!(
        socket.take_error(),
        Ok(None),
        "nothing pending before connect"
    );
    assert_eq!(
        socket.connect_nonblocking(addr(7100)),
        Err(Errno::EINPROGRESS)
    );
    let mut poller = client.poller();
    poller
        .register(&socket, 1, Interest::WRITABLE)
        .expect("register");
    let mut events = Vec::new();
    let mut writable = false;
    for _ in 0..100 {
        events.clear();
        poller
            .wait(&mut events, Some(Duration::from_secs(5)))
            .expect("wait");
        if events.iter().any(|e| e.token == 1 && e.writable) {
            writable = true;
            break;
        }
    }
    assert!(
        writable,
        "the socket turns writable when the handshake ends"
    );
    poller.deregister(1);
    assert_eq!(socket.take_error(), Ok(None));
    assert_eq!(socket.connect_nonblocking(addr(7100)), Ok(()), "done");
    assert_eq!(
        socket.connect_nonblocking(addr(7100)),
        Err(Errno::EISCONN),
        "then connected"
    );
    assert_eq!(socket.bind(addr(0)), Err(Errno::EINVAL));
    let mut stream = socket.into_stream().expect("stream");
    let (mut accepted, _) = listener.accept().expect("accept");
    stream.write_all(b"ping").expect("write");
    let mut buf = [0u8; 4];
    accepted.read_exact(&mut buf).expect("read");
    assert_eq!(&buf, b"ping");
}

#[test]
fn refused_nonblocking_connect_is_reported_once() {
    let (_server, client) = stacks(2);
    let mut socket = client.tcp_socket();
    assert_eq!(
        socket.connect_nonblocking(addr(7101)),
        Err(Errno::EINPROGRESS)
    );
    let mut poller = client.poller();
    poller
        .register(&socket, 7, Interest::WRITABLE)
        .expect("register");
    let mut events = Vec::new();
    let mut failed = false;
    for _ in 0..100 {
        events.clear();
        poller
            .wait(&mut events, Some(Duration::from_secs(5)))
            .expect("wait");
        if events.iter().any(|e| e.token == 7 && e.error) {
            failed = true;
            break;
        }
    }
    assert!(failed, "the refused connect shows as an error");
    poller.deregister(7);
    assert_eq!(socket.take_error(), Ok(Some(Errno::ECONNREFUSED)));
    assert_eq!(socket.take_error(), Ok(None), "SO_ERROR clears it");
    assert_eq!(
        socket.connect_nonblocking(addr(7101)),
        Err(Errno::ECONNABORTED),
        "a second connect: the error was read already"
    );
    assert_eq!(
        socket.connect_nonblocking(addr(7101)),
        Err(Errno::EINPROGRESS),
        "a third starts afresh"
    );
    let mut outcome = Ok(());
    for _ in 0..500 {
        outcome = socket.connect_nonblocking(addr(7101));
        if outcome != Err(Errno::EALREADY) {
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    assert_eq!(
        outcome,
        Err(Errno::ECONNREFUSED),
        "refused again, reported by connect"
    );
    assert_eq!(socket.take_error(), Ok(None));
}

#[test]
fn socket_misuse_before_and_after_connect() {
    let (_server, client) = stacks(1);
    let socket = client.tcp_socket();
    assert_eq!(socket.into_stream().err(), Some(Errno::ENOTCONN));
    let mut socket = client.tcp_socket();
    assert_eq!(
        socket.connect_nonblocking(addr(7102)),
        Err(Errno::EINPROGRESS)
    );
    assert_eq!(
        socket.listen(8).err(),
        Some(Errno::EINVAL),
        "listen after connect"
    );
    // A blocking connect's failure is read by the connect itself.
    assert_eq!(
        client.tcp_connect(addr(7102)).err(),
        Some(Errno::ECONNREFUSED)
    );
}

#[test]
fn stream_take_error_clears_the_reset() {
    let (server, client) = stacks(2);
    let listener = server.tcp_listen(addr(7103), 8).expect("listen");
    let stream = client.tcp_connect(addr(7103)).expect("connect");
    let (accepted, _) = listener.accept().expect("accept");
    let options = TcpSocketOptions {
        linger: Some(Duration::ZERO),
        ..accepted.options().expect("options")
    };
    accepted.set_options(options).expect("linger 0");
    accepted.close().expect("close");
    let mut error = None;
    for _ in 0..500 {
        error = stream.take_error().expect("take_error");
        if error.is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    assert_eq!(error, Some(Errno::ECONNRESET));
    assert_eq!(stream.take_error(), Ok(None), "cleared by reading it");
    let mut buf = [0u8; 4];
    assert_eq!(stream.recv(&mut buf), Ok(0), "then end of stream");
    assert_eq!(stream.send(b"x"), Err(Errno::EPIPE), "and EPIPE");
    assert_eq!(stream.shutdown_write(), Err(Errno::ENOTCONN));
}

#[test]
fn a_backlog_bounds_the_connections_queued_in_all_engines_together() {
    const BACKLOG: usize = 2;
    const CLIENTS: usize = 8;
    // Generous, for a loaded machine: no step below waits on a timing, only on a
    // condition; the refused get in by SYN and SYN-ACK retransmissions (1 s, 3 s,
    // 7 s, 15 s, ... after their first try).
    const DEADLINE: Duration = Duration::from_secs(60);
    let (server, client) = stacks(2);
    let mut listener = server
        .tcp_listen(addr(7104), BACKLOG as i32)
        .expect("listen");
    listener.set_nonblocking(true);
    let mut sockets = Vec::new();
    for _ in 0..CLIENTS {
        let mut s = client.tcp_socket();
        assert_eq!(s.connect_nonblocking(addr(7104)), Err(Errno::EINPROGRESS));
        sockets.push(s);
    }
    let homes: std::collections::HashSet<usize> = sockets.iter().map(|s| s.home_core()).collect();
    assert_eq!(homes.len(), 2, "the SYNs reach both server engines");
    let tcp_stats = || server.stats().expect("stats").1;
    // Nothing is accepted yet: the queue fills to backlog + 1 connections in both
    // engines together (Linux `sk_acceptq_is_full` is `queued > backlog`), never
    // more (without the shared count it would be backlog + 1 per engine, 6), and
    // every other handshake is refused (SYN or ACK dropped) or its connection
    // held back until there is room.
    let deadline = std::time::Instant::now() + DEADLINE;
    loop {
        let queued = listener.queued();
        assert!(queued <= BACKLOG + 1, "{queued} queued: over backlog + 1");
        let tcp = tcp_stats();
        if queued == BACKLOG + 1 && tcp.passive_opens + tcp.listen_overflows >= CLIENTS as u64 {
            assert_eq!(tcp.accepted, 0);
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the queue did not fill: {queued} queued, {tcp:?}"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    // Accepting makes room: the held-back connections move in, the refused get in
    // by retransmission, and the queue still never holds more than backlog + 1.
    let deadline = std::time::Instant::now() + DEADLINE;
    let mut accepted = Vec::new();
    while accepted.len() < CLIENTS {
        let queued = listener.queued();
        assert!(queued <= BACKLOG + 1, "{queued} queued: over backlog + 1");
        match listener.accept() {
            Ok((conn, peer)) => accepted.push((conn, peer)),
            Err(Errno::EAGAIN) => {
                assert!(
                    std::time::Instant::now() < deadline,
                    "{} of {CLIENTS} clients got in: {:?}",
                    accepted.len(),
                    tcp_stats()
                );
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => panic!("accept: {e}"),
        }
    }
    let peers: std::collections::HashSet<SocketAddrV4> =
        accepted.iter().map(|(_, peer)| *peer).collect();
    assert_eq!(peers.len(), CLIENTS, "every client got in once");
}

/// A listener whose connections have a small receive buffer, and a client stream
/// with SO_LINGER `linger` connected to it: (client, accepted).
fn lingering_pair(
    server: &surge_stack::runtime::Stack<surge_datapath::PipeDevice>,
    client: &surge_stack::runtime::Stack<surge_datapath::PipeDevice>,
    port: u16,
    linger: Duration,
) -> (
    surge_stack::runtime::TcpStream,
    surge_stack::runtime::TcpStream,
) {
    let mut socket = server.tcp_socket();
    let options = TcpSocketOptions {
        recv_buffer: RECV_BUFFER,
        ..*socket.options()
    };
    socket.set_options(options).expect("options");
    socket.bind(addr(port)).expect("bind");
    let listener = socket.listen(8).expect("listen");
    let mut socket = client.tcp_socket();
    let options = TcpSocketOptions {
        linger: Some(linger),
        ..*socket.options()
    };
    socket.set_options(options).expect("linger");
    let stream = socket.connect(addr(port)).expect("connect");
    let (accepted, _) = listener.accept().expect("accept");
    (stream, accepted)
}

const RECV_BUFFER: usize = 8 * 1024;

/// Reads until end of stream or an error: the bytes and how it ended.
fn read_all(stream: &surge_stack::runtime::TcpStream) -> (usize, Result<(), Errno>) {
    let mut buf = vec![0u8; 16 * 1024];
    let mut total = 0;
    loop {
        match stream.recv(&mut buf) {
            Ok(0) => return (total, Ok(())),
            Ok(n) => total += n,
            Err(e) => return (total, Err(e)),
        }
    }
}

#[test]
fn so_linger_close_waits_until_the_peer_acknowledged_everything() {
    const TOTAL: usize = 256 * 1024;
    const READ_CHUNK: usize = 4096;
    // Generous (close returns as soon as the FIN is acknowledged): a loaded
    // machine must not make it give up instead.
    let linger = Duration::from_secs(60);
    let (server, client) = stacks(1);
    let (stream, accepted) = lingering_pair(&server, &client, 7105, linger);
    let received = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let reader = {
        let received = std::sync::Arc::clone(&received);
        std::thread::spawn(move || {
            let mut buf = vec![0u8; READ_CHUNK];
            loop {
                match accepted.recv(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        received.fetch_add(n, std::sync::atomic::Ordering::SeqCst);
                    }
                }
            }
        })
    };
    (&stream).write_all(&vec![7u8; TOTAL]).expect("write");
    let started = std::time::Instant::now();
    stream.close().expect("close");
    assert!(
        started.elapsed() < linger,
        "close gave up: linger time passed"
    );
    // The FIN was acknowledged, so all data sits at least in the peer's receive
    // buffer or its stream's receive ring: the reader has counted all but that
    // much, and the chunk its last `recv` may have returned without being
    // counted yet.
    let got = received.load(std::sync::atomic::Ordering::SeqCst);
    assert!(
        got + RECV_BUFFER + STREAM_RING_BYTES + READ_CHUNK >= TOTAL,
        "close returned with {} bytes not yet acknowledged",
        TOTAL - got
    );
    reader.join().expect("reader");
    assert_eq!(received.load(std::sync::atomic::Ordering::SeqCst), TOTAL);
}

#[test]
fn so_linger_close_gives_up_after_the_linger_time_and_the_data_still_goes() {
    const TOTAL: usize = 64 * 1024;
    let linger = Duration::from_millis(300);
    let (server, client) = stacks(1);
    let (stream, accepted) = lingering_pair(&server, &client, 7106, linger);
    (&stream).write_all(&vec![7u8; TOTAL]).expect("write");
    // Nobody reads: the window closes and the FIN cannot be acknowledged.
    let started = std::time::Instant::now();
    drop(stream);
    assert!(
        started.elapsed() >= linger,
        "dropping a stream with SO_LINGER waited for its ACK or the linger time"
    );
    // The connection went on alone: reading now gets every byte, then the FIN.
    assert_eq!(read_all(&accepted), (TOTAL, Ok(())));
}

#[test]
fn so_linger_zero_resets_and_drops_queued_data() {
    const TOTAL: usize = 64 * 1024;
    let (server, client) = stacks(1);
    let (stream, accepted) = lingering_pair(&server, &client, 7107, Duration::ZERO);
    (&stream).write_all(&vec![7u8; TOTAL]).expect("write");
    std::thread::sleep(Duration::from_millis(50));
    stream.close().expect("close");
    let (got, end) = read_all(&accepted);
    assert_eq!(end, Err(Errno::ECONNRESET), "the peer sees a RST");
    // What the peer had received before the RST: its receive buffer and its
    // stream's receive ring, never the rest of the 64 KiB.
    assert!(
        got <= RECV_BUFFER + STREAM_RING_BYTES,
        "queued data was dropped: {got} bytes arrived"
    );
}

#[test]
fn tcp_congestion_by_name_and_enoent_for_an_unknown_one() {
    let (server, client) = stacks(2);
    let listener = server.tcp_listen(addr(7110), 8).expect("listen");
    let mut socket = client.tcp_socket();
    assert_eq!(socket.congestion(), "cubic", "the default");
    // Linux: setsockopt(TCP_CONGESTION) with an algorithm it does not know is ENOENT.
    assert_eq!(socket.set_congestion("vegas"), Err(Errno::ENOENT));
    assert_eq!(socket.set_congestion(""), Err(Errno::ENOENT));
    assert_eq!(
        socket.congestion(),
        "cubic",
        "unchanged by the failed calls"
    );
    socket.set_congestion("bbr").expect("bbr");
    assert_eq!(socket.congestion(), "bbr");
    let stream = socket.connect(addr(7110)).expect("connect");
    let (accepted, _) = listener.accept().expect("accept");
    assert_eq!(stream.congestion(), Ok("bbr"), "SACK negotiated: BBR runs");
    assert!(
        stream.tcp_info().expect("info").bbr.is_some(),
        "tcp_bbr_info"
    );
    assert_eq!(accepted.congestion(), Ok("cubic"));
    assert_eq!(
        accepted.set_congestion("BBR"),
        Err(Errno::ENOENT),
        "names are lower case"
    );
    accepted.set_congestion("newreno").expect("newreno");
    assert_eq!(accepted.congestion(), Ok("reno"), "Linux's name for it");
    assert_eq!(accepted.tcp_info().expect("info").bbr, None);
}

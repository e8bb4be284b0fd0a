//! TCP through two engines on the in-memory link: the sockets calls end to end
//! (socket, bind, listen, accept, connect, send, recv, shutdown, close), echo
//! with and without loss, many connections, refused connects, backlog
//! overflow, RST on close with unread data, and no leaked sockets or frames.

mod support;

use core::net::SocketAddrV4;
use core::time::Duration;

use sha2::{Digest, Sha256};
use support::{IP_B, Net, any};
use surge_datapath::{Device, Impairments, PipeConfig, PipeDevice};
use surge_stack::Errno;
use surge_stack::engine::Engine;
use surge_stack::socket::SocketHandle;
use surge_stack::table::BindOptions;
use surge_stack::tcp::State;

const PORT: u16 = 8080;

fn server(net: &mut Net, backlog: i32) -> SocketHandle {
    let l = net.b.tcp_socket().expect("socket");
    net.b
        .bind(l, any(PORT), BindOptions::default())
        .expect("bind");
    net.b.listen(l, backlog).expect("listen");
    l
}

fn connect(net: &mut Net) -> SocketHandle {
    let c = net.a.tcp_socket().expect("socket");
    assert_eq!(
        net.a.connect(c, SocketAddrV4::new(IP_B, PORT)),
        Err(Errno::EINPROGRESS)
    );
    c
}

fn established(e: &mut Engine<PipeDevice>, h: SocketHandle) -> bool {
    e.readiness(h).is_ok_and(|r| r.writable)
}

/// Sends `data` from `from` and reads it back as `to` echoes it; returns what
/// came back. Bounded by `max_steps` steps of 100 µs of virtual time.
fn echo(
    net: &mut Net,
    client: SocketHandle,
    conn: SocketHandle,
    data: &[u8],
    max_steps: usize,
) -> Vec<u8> {
    let (mut sent, mut back) = (0usize, Vec::with_capacity(data.len()));
    let mut buf = vec![0u8; 65536];
    let mut pending: Vec<u8> = Vec::new();
    for _ in 0..max_steps {
        if sent < data.len() {
            if let Ok(n) = net.a.send(client, &data[sent..]) {
                sent += n;
            }
        }
        // The server echoes what it reads.
        while let Ok(n) = net.b.recv(conn, &mut buf) {
            if n == 0 {
                break;
            }
            pending.extend_from_slice(&buf[..n]);
        }
        while !pending.is_empty() {
            match net.b.send(conn, &pending) {
                Ok(n) => {
                    pending.drain(..n);
                }
                Err(_) => break,
            }
        }
        while let Ok(n) = net.a.recv(client, &mut buf) {
            if n == 0 {
                break;
            }
            back.extend_from_slice(&buf[..n]);
        }
        if back.len() >= data.len() {
            break;
        }
        net.step(Duration::from_micros(100));
    }
    back
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

#[test]
fn connect_accept_echo_and_close_leave_nothing_behind() {
    let mut net = Net::new();
    let listener = server(&mut net, 16);
    let client = connect(&mut net);
    assert_eq!(
        net.a.connect(client, SocketAddrV4::new(IP_B, PORT)),
        Err(Errno::EALREADY)
    );
    assert_eq!(net.b.accept(listener), Err(Errno::EAGAIN));
    assert!(net.run_until(1000, |n| established(&mut n.a, client)));
    let mut accepted = None;
    assert!(net.run_until(1000, |n| {
        accepted = n.b.accept(listener).ok();
        accepted.is_some()
    }));
    let (conn, peer) = accepted.expect("accepted");
    assert_eq!(
        peer,
        net.a.local_addr(client).expect("bound"),
        "accept reports the client's address"
    );
    assert_eq!(net.b.peer_addr(conn), Ok(peer));
    // Linux `__inet_stream_connect`: the first `connect` after a non-blocking one
    // completed reports success, the next ones EISCONN.
    assert_eq!(net.a.connect(client, SocketAddrV4::new(IP_B, PORT)), Ok(()));
    assert_eq!(
        net.a.connect(client, SocketAddrV4::new(IP_B, PORT)),
        Err(Errno::EISCONN)
    );
    assert_eq!(
        net.b.connect(conn, SocketAddrV4::new(IP_B, PORT)),
        Err(Errno::EISCONN),
        "an accepted connection is connected"
    );

    let data = pattern(256 * 1024, 7);
    let back = echo(&mut net, client, conn, &data, 100_000);
    assert_eq!(Sha256::digest(&back), Sha256::digest(&data));
    // No loss, no SACK blocks: every payload was written where its header ended.
    assert_eq!(net.a.tcp_stats().payload_moves, 0);
    assert_eq!(net.b.tcp_stats().payload_moves, 0);

    // Orderly close: client first (it ends in TIME-WAIT), then the server.
    net.a.shutdown_write(client).expect("shutdown");
    let mut buf = [0u8; 16];
    assert!(
        net.run_until(1000, |n| n.b.recv(conn, &mut buf) == Ok(0)),
        "server sees EOF"
    );
    net.b.close(conn).expect("close");
    assert!(
        net.run_until(1000, |n| n.a.recv(client, &mut buf) == Ok(0)),
        "client sees EOF"
    );
    assert_eq!(net.a.tcp_info(client).map(|i| i.state), Ok(State::TimeWait));
    net.a.close(client).expect("close");
    assert_eq!(
        net.a.send(client, b"x"),
        Err(Errno::EBADF),
        "a closed handle is EBADF"
    );
    // TIME-WAIT lasts 2*MSL (60 s); virtual time makes it cheap.
    for _ in 0..70 {
        net.step(Duration::from_secs(1));
    }
    assert_eq!(
        net.a.socket_count(),
        0,
        "the client's socket is freed after TIME-WAIT"
    );
    assert_eq!(net.b.socket_count(), 1, "only the listener is left");
    assert_eq!(net.a.tcp_stats().closed, 1);
    assert!(net.a.device().accounting().balanced() && net.b.device().accounting().balanced());
}

#[test]
fn connect_to_a_closed_port_is_refused() {
    let mut net = Net::new();
    let c = net.a.tcp_socket().expect("socket");
    assert_eq!(
        net.a.connect(c, SocketAddrV4::new(IP_B, 9)),
        Err(Errno::EINPROGRESS)
    );
    assert!(net.run_until(1000, |n| n.a.readiness(c).is_ok_and(|r| r.error)));
    assert_eq!(net.a.take_error(c), Ok(Some(Errno::ECONNREFUSED)));
    assert_eq!(net.b.stats().tcp_rst_sent, 1);
    net.a.close(c).expect("close");
    net.step(Duration::from_millis(1));
    assert_eq!(net.a.socket_count(), 0);
}

#[test]
fn lossy_link_still_delivers_every_byte_in_order() {
    let pipe = PipeConfig {
        impairments: Impairments {
            loss: 0.02,
            duplicate: 0.01,
            reorder: 0.02,
            reorder_delay_us: 300,
            delay_us: 200,
            ..Impairments::default()
        },
        seed: 42,
        ..PipeConfig::default()
    };
    let mut net = Net::with_pipe(&pipe);
    let listener = server(&mut net, 16);
    let client = connect(&mut net);
    let mut conn = None;
    assert!(net.run_until(200_000, |n| {
        if conn.is_none() {
            conn = n.b.accept(listener).ok().map(|c| c.0);
        }
        conn.is_some() && established(&mut n.a, client)
    }));
    let conn = conn.expect("accepted");
    let data = pattern(512 * 1024, 3);
    let back = echo(&mut net, client, conn, &data, 2_000_000);
    assert_eq!(back.len(), data.len());
    assert_eq!(Sha256::digest(&back), Sha256::digest(&data));
    let stats = net.a.tcp_socket_stats(client).expect("stats");
    assert!(
        stats.retransmits > 0,
        "2% loss must have cost retransmissions: {stats:?}"
    );
    // Data segments sent while out-of-order data was held carried SACK blocks the
    // header hint did not foresee: their payload moved, and every byte still arrived.
    let moves = net.a.tcp_stats().payload_moves + net.b.tcp_stats().payload_moves;
    assert!(moves > 0, "no payload moved");
}

#[test]
fn many_connections_then_no_leaked_sockets_ports_or_frames() {
    let mut net = Net::new();
    let listener = server(&mut net, 1024);
    let clients: Vec<SocketHandle> = (0..200).map(|_| connect(&mut net)).collect();
    let mut conns = Vec::new();
    assert!(net.run_until(20_000, |n| {
        while let Ok((c, _)) = n.b.accept(listener) {
            conns.push(c);
        }
        conns.len() == clients.len()
    }));
    let mut ports: Vec<u16> = clients
        .iter()
        .map(|c| net.a.local_addr(*c).expect("bound").port())
        .collect();
    ports.sort_unstable();
    ports.dedup();
    assert_eq!(
        ports.len(),
        clients.len(),
        "every connection has its own ephemeral port"
    );
    for (i, c) in clients.iter().enumerate() {
        assert_eq!(net.a.send(*c, &[i as u8; 100]), Ok(100));
    }
    let mut buf = [0u8; 200];
    let mut got = 0;
    assert!(net.run_until(20_000, |n| {
        for c in &conns {
            if let Ok(k) = n.b.recv(*c, &mut buf) {
                got += k;
            }
        }
        got == 200 * 100
    }));
    // The server closes first this time: its sockets go through TIME-WAIT.
    for c in conns {
        net.b.close(c).expect("close");
    }
    for c in clients {
        assert!(net.run_until(1000, |n| n.a.recv(c, &mut buf) == Ok(0)));
        net.a.close(c).expect("close");
    }
    for _ in 0..70 {
        net.step(Duration::from_secs(1));
    }
    assert_eq!(net.a.socket_count(), 0);
    assert_eq!(net.b.socket_count(), 1);
    assert_eq!(net.b.tcp_stats().passive_opens, 200);
    assert_eq!(net.b.tcp_stats().accepted, 200);
    assert!(net.a.device().accounting().balanced() && net.b.device().accounting().balanced());
    // All ports came back: the same 200 connections can be made again.
    let again: Vec<SocketHandle> = (0..200).map(|_| connect(&mut net)).collect();
    assert!(net.run_until(20_000, |n| again.iter().all(|c| established(&mut n.a, *c))));
}

#[test]
fn full_accept_queue_drops_syns_and_the_client_retries() {
    let mut net = Net::new();
    let listener = server(&mut net, 2);
    let clients: Vec<SocketHandle> = (0..4).map(|_| connect(&mut net)).collect();
    net.run_until(2000, |_| false);
    assert!(
        net.b.tcp_stats().listen_overflows > 0,
        "SYNs beyond the backlog are dropped"
    );
    // A client whose SYN got a cookie (RFC 4987: the SYN queue was full) believes it
    // is connected; its ACK was dropped while the accept queue was full, and its first
    // data segment carries the cookie again (a silent one gets in by the request
    // record kept then: see below). Dropped clients' SYN retransmissions get in once
    // accepting makes room.
    for c in &clients {
        let _ = net.a.send(*c, b"x");
    }
    let mut accepted = 0;
    assert!(net.run_until(100_000, |n| {
        while n.b.accept(listener).is_ok() {
            accepted += 1;
        }
        accepted == 4
    }));
    assert!(clients.iter().all(|c| established(&mut net.a, *c)));
}

#[test]
fn close_with_unread_data_resets_the_peer() {
    let mut net = Net::new();
    let listener = server(&mut net, 4);
    let client = connect(&mut net);
    let mut conn = None;
    assert!(net.run_until(1000, |n| {
        conn = n.b.accept(listener).ok().map(|c| c.0);
        conn.is_some()
    }));
    let conn = conn.expect("accepted");
    assert_eq!(net.a.send(client, b"never read"), Ok(10));
    net.run_until(100, |_| false);
    // RFC 2525 §2.17: closing with unread data sends RST, not FIN.
    net.b.close(conn).expect("close");
    assert!(net.run_until(1000, |n| {
        n.a.readiness(client).is_ok_and(|r| r.error || r.hangup)
    }));
    let mut buf = [0u8; 8];
    assert_eq!(net.a.recv(client, &mut buf), Err(Errno::ECONNRESET));
}

#[test]
fn socket_call_misuse_returns_linux_errnos() {
    let mut net = Net::new();
    let l = server(&mut net, 4);
    let mut buf = [0u8; 4];
    assert_eq!(
        net.b.send(l, b"x"),
        Err(Errno::EPIPE),
        "send on a listener (Linux: EPIPE)"
    );
    assert_eq!(net.b.recv(l, &mut buf), Err(Errno::ENOTCONN));
    let fresh = net.b.tcp_socket().expect("socket");
    assert_eq!(
        net.b.accept(fresh),
        Err(Errno::EINVAL),
        "accept on a socket that is not listening"
    );
    assert_eq!(
        net.b.bind(fresh, any(PORT), BindOptions::default()),
        Err(Errno::EADDRINUSE)
    );
    assert_eq!(net.b.peer_addr(fresh), Err(Errno::ENOTCONN));
    assert_eq!(
        net.b.send(fresh, b"x"),
        Err(Errno::EPIPE),
        "send before connect"
    );
    // listen on an unbound socket auto-binds an ephemeral port.
    net.b.listen(fresh, 1).expect("listen");
    assert_ne!(net.b.local_addr(fresh).map(|a| a.port()), Ok(0));
    let c = net.a.tcp_socket().expect("socket");
    assert_eq!(
        net.a.connect(c, SocketAddrV4::new(IP_B, 0)),
        Err(Errno::EINVAL)
    );
    let off_net = SocketAddrV4::new(core::net::Ipv4Addr::new(198, 19, 1, 1), 80);
    assert_eq!(net.a.connect(c, off_net), Err(Errno::ENETUNREACH));
    net.a.close(c).expect("close");
    assert_eq!(net.a.close(c), Err(Errno::EBADF));
}

#[test]
fn a_child_that_found_the_accept_queue_full_waits_for_room_though_its_client_is_silent() {
    let mut net = Net::new();
    let listener = server(&mut net, 2);
    // Four handshakes end in one burst: each ACK passes the "accept queue full"
    // check before the first child is queued, so the fourth child finds the
    // queue (backlog + 1 = 3) full. Its client, ESTABLISHED, sends nothing.
    let clients: Vec<SocketHandle> = (0..4).map(|_| connect(&mut net)).collect();
    assert!(net.run_until(2000, |n| clients.iter().all(|c| established(&mut n.a, *c))));
    assert!(net.run_until(2000, |n| n.b.tcp_stats().passive_opens == 4));
    let mut accepted = 0;
    assert!(
        net.run_until(100_000, |n| {
            while n.b.accept(listener).is_ok() {
                accepted += 1;
            }
            accepted == 4
        }),
        "{accepted} of 4 accepted: {:?}",
        net.b.tcp_stats()
    );
}

#[test]
fn cookie_acks_that_met_a_full_accept_queue_get_in_once_there_is_room() {
    let mut net = Net::new();
    // Backlog 0: one connection fits in the accept queue, one request in the SYN queue.
    let listener = server(&mut net, 0);
    // A connection first, accepted: both sides know each other's MAC from now on,
    // so each step below moves every segment one hop.
    let warm = connect(&mut net);
    assert!(net.run_until(2000, |n| established(&mut n.a, warm)));
    assert!(net.run_until(2000, |n| n.b.accept(listener).is_ok()));
    let first = connect(&mut net);
    net.step(Duration::from_micros(100));
    // The next two SYNs find the first's request in the SYN queue (full): they get
    // SYN cookies (RFC 4987 §3.6), and their ACKs come after the first connection
    // filled the accept queue; the first ACK's request fills the SYN queue again
    // for the second. The clients are ESTABLISHED and send nothing.
    let cookies = [connect(&mut net), connect(&mut net)];
    assert!(net.run_until(2000, |n| {
        established(&mut n.a, first) && cookies.iter().all(|c| established(&mut n.a, *c))
    }));
    assert!(net.run_until(2000, |n| n.b.tcp_stats().listen_overflows >= 2));
    let stats = net.b.tcp_stats();
    assert_eq!(
        (
            stats.syn_cookies_sent,
            stats.syn_cookies_accepted,
            stats.passive_opens
        ),
        (2, 0, 2),
        "both cookies' ACKs were refused: {stats:?}"
    );
    let mut accepted = 0;
    assert!(
        net.run_until(300_000, |n| {
            while n.b.accept(listener).is_ok() {
                accepted += 1;
            }
            accepted == 3
        }),
        "{accepted} of 3 accepted: {:?}",
        net.b.tcp_stats()
    );
}

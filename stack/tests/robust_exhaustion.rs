//! Resource exhaustion (issue 15), two engines on the in-memory link with a virtual
//! clock: the socket limit (EMFILE from `socket`, as at Linux's fd limit), the
//! connection table's limit (ENOBUFS from `connect`; a server at its limit answers the
//! final ACK of an extra handshake with RST, counted, and lets a new client in once a
//! slot frees), and an empty frame pool (ENOBUFS from `send_to`, TCP output held back and
//! counted). Each refusal is counted, and the connections already established keep
//! working, before and after.

mod support;

use core::net::SocketAddrV4;
use core::time::Duration;

use support::{IP_A, IP_B, MAC_A, MAC_B, Net, any, config};
use surge_datapath::{Device, PipeConfig, PipeDevice, PoolConfig};
use surge_stack::Errno;
use surge_stack::engine::{Engine, EngineConfig};
use surge_stack::socket::SocketHandle;
use surge_stack::table::BindOptions;
use surge_stack::time::Instant;

const PORT: u16 = 8080;

/// Two engines whose configurations `a` and `b` adjust, over a pipe with `pipe`.
fn net_with(
    pipe: &PipeConfig,
    a: impl FnOnce(&mut EngineConfig),
    b: impl FnOnce(&mut EngineConfig),
) -> Net {
    let (da, db) = PipeDevice::pair(pipe).expect("pipe");
    let (mut ca, mut cb) = (config(MAC_A, IP_A, 1), config(MAC_B, IP_B, 2));
    a(&mut ca);
    b(&mut cb);
    Net {
        a: Engine::new(da, ca).expect("engine a"),
        b: Engine::new(db, cb).expect("engine b"),
        now: Instant::ZERO,
    }
}

fn listen_on_b(net: &mut Net) -> SocketHandle {
    let listener = net.b.tcp_socket().expect("socket");
    net.b
        .bind(listener, any(PORT), BindOptions::default())
        .expect("bind");
    net.b.listen(listener, 128).expect("listen");
    listener
}

/// A connects to B's listener (non-blocking).
fn connect(net: &mut Net) -> SocketHandle {
    let c = net.a.tcp_socket().expect("socket");
    assert_eq!(
        net.a.connect(c, SocketAddrV4::new(IP_B, PORT)),
        Err(Errno::EINPROGRESS)
    );
    c
}

/// Accepts on B until `n` connections are in `accepted` (at most 1 s of virtual time).
fn accept_n(net: &mut Net, listener: SocketHandle, accepted: &mut Vec<SocketHandle>, n: usize) {
    let ok = net.run_until(10_000, |net| {
        while let Ok((c, _)) = net.b.accept(listener) {
            accepted.push(c);
        }
        accepted.len() >= n
    });
    assert!(ok, "accepted {} of {n}", accepted.len());
}

/// Every pair (client on A, server on B) echoes `len` bytes: A sends, B sends back what
/// it reads, A checks. Bounded by `max_steps` of 100 µs.
fn echo_all(net: &mut Net, pairs: &[(SocketHandle, SocketHandle)], len: usize, max_steps: usize) {
    let message: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
    let mut sent = vec![0usize; pairs.len()];
    let mut back = vec![Vec::new(); pairs.len()];
    let mut buf = vec![0u8; 65536];
    let done = net.run_until(max_steps, |net| {
        for (i, &(client, server)) in pairs.iter().enumerate() {
            if sent[i] < len
                && let Ok(n) = net.a.send(client, &message[sent[i]..])
            {
                sent[i] += n;
            }
            while let Ok(n @ 1..) = net.b.recv(server, &mut buf) {
                let mut off = 0;
                while off < n {
                    match net.b.send(server, &buf[off..n]) {
                        Ok(m) => off += m,
                        Err(e) => panic!("server send: {e:?}"),
                    }
                }
            }
            while let Ok(n @ 1..) = net.a.recv(client, &mut buf) {
                back[i].extend_from_slice(&buf[..n]);
            }
        }
        back.iter().all(|b| b.len() >= len)
    });
    assert!(
        done,
        "echoes incomplete: {:?} of {len}",
        back.iter().map(Vec::len).collect::<Vec<_>>()
    );
    for b in &back {
        assert_eq!(b[..], message[..], "the echo differs");
    }
}

#[test]
fn at_the_socket_limit_socket_fails_with_emfile_counted_and_the_others_keep_working() {
    const LIMIT: usize = 8;
    let mut net = net_with(&PipeConfig::default(), |a| a.max_sockets = LIMIT, |_| {});
    let listener = listen_on_b(&mut net);
    let clients: Vec<SocketHandle> = (0..LIMIT).map(|_| connect(&mut net)).collect();
    let mut accepted = Vec::new();
    accept_n(&mut net, listener, &mut accepted, LIMIT);
    // The limit: EMFILE for TCP and UDP alike, counted, nothing else disturbed.
    assert_eq!(net.a.tcp_socket(), Err(Errno::EMFILE));
    assert_eq!(net.a.udp_socket(), Err(Errno::EMFILE));
    assert_eq!(net.a.stats().sockets_refused, 2);
    assert_eq!(net.a.socket_count(), LIMIT);
    let pairs: Vec<_> = clients
        .iter()
        .copied()
        .zip(accepted.iter().copied())
        .collect();
    echo_all(&mut net, &pairs, 20_000, 20_000);
    // A closed connection gives its socket back once it is over; then `socket` works.
    net.a.close(clients[0]).expect("close");
    net.b.close(accepted[0]).expect("close");
    assert!(
        net.run_until(20_000, |n| n.a.socket_count() < LIMIT),
        "the closed socket was never freed"
    );
    let again = net.a.tcp_socket().expect("a socket once one is free");
    assert_eq!(
        net.a.connect(again, SocketAddrV4::new(IP_B, PORT)),
        Err(Errno::EINPROGRESS)
    );
    let mut more = Vec::new();
    accept_n(&mut net, listener, &mut more, 1);
    let mut pairs: Vec<_> = pairs[1..].to_vec();
    pairs.push((again, more[0]));
    echo_all(&mut net, &pairs, 5_000, 20_000);
    assert_eq!(net.a.stats().sockets_refused, 2);
}

#[test]
fn at_the_connection_table_limit_connect_fails_with_enobufs_and_a_full_server_resets_the_extra() {
    const LIMIT: usize = 4;
    let mut net = net_with(
        &PipeConfig::default(),
        |a| a.max_connections = LIMIT,
        |b| b.max_connections = LIMIT,
    );
    let listener = listen_on_b(&mut net);
    let clients: Vec<SocketHandle> = (0..LIMIT).map(|_| connect(&mut net)).collect();
    let mut accepted = Vec::new();
    accept_n(&mut net, listener, &mut accepted, LIMIT);
    // The client's table is full: ENOBUFS, counted; the socket stays usable.
    let extra = net.a.tcp_socket().expect("socket");
    assert_eq!(
        net.a.connect(extra, SocketAddrV4::new(IP_B, PORT)),
        Err(Errno::ENOBUFS)
    );
    assert_eq!(net.a.tcp_stats().connects_refused, 1);
    net.a.close(extra).expect("close");
    let pairs: Vec<_> = clients
        .iter()
        .copied()
        .zip(accepted.iter().copied())
        .collect();
    echo_all(&mut net, &pairs, 20_000, 20_000);

    // The server's table is full: a fifth client's handshake cannot finish there.
    let mut second = net_with(
        &PipeConfig::default(),
        |_| {},
        |b| b.max_connections = LIMIT,
    );
    let listener = listen_on_b(&mut second);
    let clients: Vec<SocketHandle> = (0..=LIMIT).map(|_| connect(&mut second)).collect();
    let mut accepted = Vec::new();
    accept_n(&mut second, listener, &mut accepted, LIMIT);
    second.run_until(1000, |_| false);
    // The fifth handshake cannot finish on the server: its final ACK finds no room, is
    // counted and answered with RST, so the client learns at once (ECONNRESET; Linux
    // does this with `tcp_abort_on_overflow = 1`, and by default drops the ACK silently).
    assert!(
        second.b.tcp_stats().table_full >= 1,
        "{:?}",
        second.b.tcp_stats()
    );
    let mut pairs = Vec::new();
    for &server in &accepted {
        let peer = second.b.peer_addr(server).expect("peer");
        let client = clients
            .iter()
            .copied()
            .find(|c| second.a.local_addr(*c).ok() == Some(peer))
            .expect("the client of an accepted connection");
        pairs.push((client, server));
    }
    let waiting: Vec<_> = clients
        .iter()
        .copied()
        .filter(|c| !pairs.iter().any(|(client, _)| client == c))
        .collect();
    assert_eq!(waiting.len(), 1, "one client did not get in");
    assert_eq!(
        second.a.take_error(waiting[0]),
        Ok(Some(Errno::ECONNRESET)),
        "and was told"
    );
    second.a.close(waiting[0]).expect("close");
    assert!(matches!(second.b.accept(listener), Err(Errno::EAGAIN)));
    // The established ones are unaffected.
    echo_all(&mut second, &pairs, 20_000, 20_000);
    // Room again: one connection ends, and a new connection gets in.
    let (gone_client, gone_server) = pairs.remove(0);
    second.a.close(gone_client).expect("close");
    second.b.close(gone_server).expect("close");
    second.run_until(1000, |_| false);
    let retry = connect(&mut second);
    let mut late = Vec::new();
    let ok = second.run_until(20_000, |net| {
        while let Ok((c, _)) = net.b.accept(listener) {
            late.push(c);
        }
        !late.is_empty()
    });
    assert!(
        ok,
        "the new client never got in: {:?}",
        second.b.tcp_stats()
    );
    pairs.push((retry, late[0]));
    echo_all(&mut second, &pairs, 5_000, 20_000);
}

#[test]
fn an_empty_frame_pool_gives_enobufs_and_holds_output_until_frames_return() {
    let pipe = PipeConfig {
        pool: PoolConfig {
            frame_count: 128,
            ..PipeConfig::default().pool
        },
        ..PipeConfig::default()
    };
    let mut net = Net::with_pipe(&pipe);
    let listener = listen_on_b(&mut net);
    let clients: Vec<SocketHandle> = (0..4).map(|_| connect(&mut net)).collect();
    let mut accepted = Vec::new();
    accept_n(&mut net, listener, &mut accepted, 4);
    let pairs: Vec<_> = clients
        .iter()
        .copied()
        .zip(accepted.iter().copied())
        .collect();
    echo_all(&mut net, &pairs, 5_000, 20_000);
    let udp = net.a.udp_socket().expect("udp socket");

    // Someone (here the test) holds every free frame of both pools.
    let mut held_a = Vec::new();
    while let Some(f) = net.a.device_mut().alloc_tx() {
        held_a.push(f);
    }
    let mut held_b = Vec::new();
    while let Some(f) = net.b.device_mut().alloc_tx() {
        held_b.push(f);
    }
    let no_frame_before = net.a.stats().tx_no_frame;
    assert_eq!(
        net.a
            .send_to(udp, b"no frame", Some(SocketAddrV4::new(IP_B, 9))),
        Err(Errno::ENOBUFS),
        "UDP: ENOBUFS with no frame, as Linux when no buffer is left"
    );
    let no_frame_udp = net.a.stats().tx_no_frame;
    assert_eq!(no_frame_udp, no_frame_before + 1, "counted");
    // TCP takes data into its buffers; nothing can leave for 500 ms (RTOs fire in vain).
    let message: Vec<u8> = (0..30_000).map(|i| (i % 251) as u8).collect();
    for &(client, _) in &pairs {
        assert_eq!(net.a.send(client, &message), Ok(message.len()));
    }
    for _ in 0..5_000 {
        net.step(Duration::from_micros(100));
    }
    assert!(
        net.a.stats().tx_no_frame > no_frame_udp,
        "held-back segments are counted: {:?}",
        net.a.stats()
    );
    assert!(net.a.device().stats().pool_empty > 0);
    let mut buf = vec![0u8; 65536];
    for &(client, server) in &pairs {
        assert_eq!(
            net.b.recv(server, &mut buf),
            Err(Errno::EAGAIN),
            "nothing arrived"
        );
        assert_eq!(
            net.a.take_error(client),
            Ok(None),
            "the connection is alive"
        );
    }
    // The frames come back: everything goes through, connections intact.
    for f in held_a.drain(..) {
        net.a.device_mut().release_one(f);
    }
    for f in held_b.drain(..) {
        net.b.device_mut().release_one(f);
    }
    let mut got = vec![Vec::new(); pairs.len()];
    let ok = net.run_until(100_000, |net| {
        for (i, &(_, server)) in pairs.iter().enumerate() {
            while let Ok(n @ 1..) = net.b.recv(server, &mut buf) {
                got[i].extend_from_slice(&buf[..n]);
            }
        }
        got.iter().all(|g| g.len() >= message.len())
    });
    assert!(
        ok,
        "after the frames came back: {:?} of {}",
        got.iter().map(Vec::len).collect::<Vec<_>>(),
        message.len()
    );
    for g in &got {
        assert_eq!(g[..], message[..]);
    }
    echo_all(&mut net, &pairs, 5_000, 20_000);
    assert_eq!(
        net.a
            .send_to(udp, b"frames again", Some(SocketAddrV4::new(IP_B, 9))),
        Ok(12)
    );
    assert!(net.a.device().accounting().balanced());
    assert!(net.b.device().accounting().balanced());
}

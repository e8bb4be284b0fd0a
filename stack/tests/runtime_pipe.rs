//! The runtime and its cross-thread API over the in-memory link: two stacks, each
//! with its engines on their own threads, joined by `PipeDevice` pairs (one pair
//! per queue). Blocking and non-blocking calls, `Read`/`Write`, the poller, the
//! in-loop handler mode, UDP, errors and clean-up.

use core::net::{Ipv4Addr, SocketAddrV4};
use std::io::{Read, Write};
use std::time::Duration;

use sha2::{Digest, Sha256};
use surge_datapath::{Device, PipeConfig, PipeDevice};
use surge_stack::engine::Engine;
use surge_stack::errno::Errno;
use surge_stack::runtime::{Interest, RuntimeConfig, Stack, TcpStream};
use surge_stack::socket::TcpSocketOptions;
use surge_stack::tcp::State;
use surge_stack::time::Instant;

mod support;
use support::runtime::{CLIENT_IP, SERVER_IP, engine, stacks};

fn addr(ip: Ipv4Addr, port: u16) -> SocketAddrV4 {
    SocketAddrV4::new(ip, port)
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

/// Echoes every accepted stream on its own thread until end of stream.
fn echo_server(listener: surge_stack::runtime::TcpListener, connections: usize) {
    std::thread::spawn(move || {
        let mut workers = Vec::new();
        for _ in 0..connections {
            let Ok((mut stream, _)) = listener.accept() else {
                return;
            };
            workers.push(std::thread::spawn(move || {
                let mut buf = vec![0u8; 16 * 1024];
                loop {
                    match stream.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            if stream.write_all(&buf[..n]).is_err() {
                                break;
                            }
                        }
                    }
                }
                let _ = stream.shutdown_write();
            }));
        }
        for w in workers {
            let _ = w.join();
        }
    });
}

#[test]
fn blocking_echo_of_two_megabytes_keeps_every_byte() {
    let (server, client) = stacks(1);
    let listener = server
        .tcp_listen(addr(Ipv4Addr::UNSPECIFIED, 7007), 16)
        .expect("listen");
    assert_eq!(listener.local_addr().port(), 7007);
    echo_server(listener, 1);
    let stream = client.tcp_connect(addr(SERVER_IP, 7007)).expect("connect");
    assert_eq!(stream.peer_addr(), Ok(addr(SERVER_IP, 7007)));
    let local = stream.local_addr().expect("local");
    assert_eq!(*local.ip(), CLIENT_IP);
    assert!((32768..=60999).contains(&local.port()), "{local}");
    let data = pattern(2 << 20, 7);
    let writer_data = data.clone();
    // Write on one thread while reading on this one (both through `&TcpStream`).
    let stream = std::sync::Arc::new(stream);
    let writer = {
        let stream = std::sync::Arc::clone(&stream);
        std::thread::spawn(move || {
            (&*stream).write_all(&writer_data).expect("write");
            stream.shutdown_write().expect("shutdown");
        })
    };
    let mut back = Vec::new();
    (&*stream).read_to_end(&mut back).expect("read");
    writer.join().expect("writer");
    assert_eq!(back.len(), data.len());
    assert_eq!(Sha256::digest(&back), Sha256::digest(&data));
}

#[test]
fn tcp_info_through_the_runtime_after_an_echo() {
    let (server, client) = stacks(1);
    let listener = server
        .tcp_listen(addr(Ipv4Addr::UNSPECIFIED, 7010), 4)
        .expect("listen");
    echo_server(listener, 1);
    let stream = std::sync::Arc::new(client.tcp_connect(addr(SERVER_IP, 7010)).expect("connect"));
    let data = pattern(300_000, 5);
    let writer = {
        let data = data.clone();
        let stream = std::sync::Arc::clone(&stream);
        std::thread::spawn(move || (&*stream).write_all(&data))
    };
    let mut back = vec![0u8; data.len()];
    (&*stream).read_exact(&mut back).expect("read");
    writer.join().expect("writer").expect("write");
    assert_eq!(back, data);
    // Everything echoed was acknowledged before it came back; the ACK of the
    // last echoed byte may still be in flight, not our data.
    let info = stream.tcp_info().expect("info");
    assert_eq!(info.state, State::Established);
    assert_eq!(info.bytes_acked, data.len() as u64);
    assert_eq!(info.bytes_received, data.len() as u64);
    assert_eq!(info.snd_mss, 1448);
    assert_eq!((info.total_retrans, info.lost, info.unacked), (0, 0, 0));
    assert!(info.rtt > 0, "an RTT was measured: {info:?}");
    let stats = stream.tcp_socket_stats().expect("stats");
    assert_eq!(stats.bytes_acked, info.bytes_acked);
    assert_eq!(stats.bytes_in, info.bytes_received);
    stream.shutdown_write().expect("shutdown");
    let mut rest = Vec::new();
    (&*stream).read_to_end(&mut rest).expect("eof");
    assert!(rest.is_empty());
    // The peer's FIN came after ours was acknowledged: TIME-WAIT, as Linux reports it.
    assert_eq!(stream.tcp_info().map(|i| i.state), Ok(State::TimeWait));
}

#[test]
fn many_connections_on_two_queues_then_nothing_is_left() {
    let (server, client) = stacks(2);
    let listener = server
        .tcp_listen(addr(SERVER_IP, 9000), 128)
        .expect("listen");
    const N: usize = 40;
    echo_server(listener, N);
    let mut streams: Vec<TcpStream> = (0..N)
        .map(|_| client.tcp_connect(addr(SERVER_IP, 9000)).expect("connect"))
        .collect();
    let cores: std::collections::HashSet<usize> = streams.iter().map(|s| s.core()).collect();
    assert_eq!(cores.len(), 2, "connections spread over both client cores");
    for (i, s) in streams.iter_mut().enumerate() {
        let msg = pattern(100 + i, i as u8);
        s.write_all(&msg).expect("write");
        let mut back = vec![0u8; msg.len()];
        s.read_exact(&mut back).expect("read");
        assert_eq!(back, msg, "connection {i}");
    }
    for s in &streams {
        s.shutdown_write().expect("shutdown");
    }
    for s in &mut streams {
        let mut rest = Vec::new();
        s.read_to_end(&mut rest).expect("eof");
        assert!(rest.is_empty());
    }
    drop(streams);
    let (server_stats, server_tcp) = server.stats().expect("stats");
    assert_eq!(server_tcp.passive_opens, N as u64);
    assert_eq!(server_tcp.accepted, N as u64);
    assert_eq!(server_stats.forward_dropped, 0);
    // Let TIME-WAIT (200 ms here) run out, then every socket and frame is back.
    std::thread::sleep(Duration::from_millis(600));
    for (name, stack) in [("client", client), ("server", server)] {
        for mut e in stack.shutdown() {
            // The loops stopped: finish what closing the handles started.
            for t in 0..2000u64 {
                e.poll(Instant::from_micros(10_000_000 + t * 1000));
            }
            assert_eq!(e.socket_count(), 0, "{name} core {}", e.config().core);
            let acc = e.device().accounting();
            assert!(acc.balanced(), "{name}: frames leaked: {acc:?}");
        }
    }
}

#[test]
fn errors_are_the_linux_errnos() {
    let (server, client) = stacks(2);
    // Nobody listens: the SYN is answered with RST.
    assert_eq!(
        client.tcp_connect(addr(SERVER_IP, 8081)).err(),
        Some(Errno::ECONNREFUSED)
    );
    // Below 1024 without privilege: EACCES, as Linux without CAP_NET_BIND_SERVICE.
    assert_eq!(
        server.tcp_listen(addr(SERVER_IP, 80), 8).err(),
        Some(Errno::EACCES)
    );
    let mut privileged = server.tcp_socket();
    let mut options = *privileged.options();
    options.bind.privileged = true;
    privileged.set_options(options).expect("options");
    let low = privileged
        .bind(addr(SERVER_IP, 80))
        .expect("privileged bind");
    assert_eq!(low.port(), 80);
    drop(privileged);
    // A port is bound on every core: a second bind fails whatever its home core.
    let first = server.tcp_listen(addr(SERVER_IP, 8080), 8).expect("listen");
    for _ in 0..3 {
        let mut again = server.tcp_socket();
        assert_eq!(again.bind(addr(SERVER_IP, 8080)), Err(Errno::EADDRINUSE));
    }
    // An address that is not ours.
    let mut other = server.tcp_socket();
    assert_eq!(
        other.bind(addr(Ipv4Addr::new(198, 18, 9, 9), 8080)),
        Err(Errno::EADDRNOTAVAIL)
    );
    // Binding twice.
    let mut twice = server.tcp_socket();
    twice.bind(addr(SERVER_IP, 0)).expect("bind 0");
    assert_eq!(twice.bind(addr(SERVER_IP, 0)), Err(Errno::EINVAL));
    // After closing the listener the port is free again.
    drop(first);
    let mut ok = None;
    for _ in 0..100 {
        let mut s = server.tcp_socket();
        if s.bind(addr(SERVER_IP, 8080)).is_ok() {
            ok = Some(s);
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    assert!(ok.is_some(), "port 8080 free after the listener closed");
    // Non-blocking accept with nothing queued.
    let mut l = server.tcp_listen(addr(SERVER_IP, 8082), 8).expect("listen");
    l.set_nonblocking(true);
    assert_eq!(l.accept().err(), Some(Errno::EAGAIN));
    // A read timeout gives EAGAIN, as SO_RCVTIMEO.
    l.set_nonblocking(false);
    let mut c = client.tcp_connect(addr(SERVER_IP, 8082)).expect("connect");
    let _accepted = l.accept().expect("accept");
    c.set_read_timeout(Some(Duration::from_millis(50)));
    let mut buf = [0u8; 8];
    assert_eq!(c.recv(&mut buf), Err(Errno::EAGAIN));
    // After the stack stops, every call says ESHUTDOWN.
    drop(server);
    let s = c.send(b"x");
    assert!(s.is_ok(), "the client stack still runs: {s:?}");
    drop(client);
    assert_eq!(c.send(b"x"), Err(Errno::ESHUTDOWN));
}

#[test]
fn poller_reports_the_ready_sockets() {
    let (server, client) = stacks(1);
    let listener = server.tcp_listen(addr(SERVER_IP, 5000), 8).expect("listen");
    let mut poller = server.poller();
    poller
        .register(&listener, 1, Interest::READABLE)
        .expect("register");
    let mut events = Vec::new();
    assert_eq!(
        poller.wait(&mut events, Some(Duration::from_millis(20))),
        Ok(0)
    );
    let a = client
        .tcp_connect(addr(SERVER_IP, 5000))
        .expect("connect a");
    let b = client
        .tcp_connect(addr(SERVER_IP, 5000))
        .expect("connect b");
    assert_eq!(
        poller.wait(&mut events, Some(Duration::from_secs(5))),
        Ok(1)
    );
    assert!(events[0].readable && events[0].token == 1);
    let (sa, _) = listener.accept().expect("accept a");
    let (sb, _) = listener.accept().expect("accept b");
    poller.register(&sa, 10, Interest::READABLE).expect("reg");
    poller.register(&sb, 11, Interest::READABLE).expect("reg");
    assert_eq!(
        poller.register(&sb, 11, Interest::READABLE),
        Err(Errno::EINVAL)
    );
    poller.deregister(1);
    (&b).write_all(b"to b").expect("write");
    events.clear();
    let mut ready = Vec::new();
    for _ in 0..100 {
        events.clear();
        poller
            .wait(&mut events, Some(Duration::from_secs(5)))
            .expect("wait");
        ready = events
            .iter()
            .filter(|e| e.readable)
            .map(|e| e.token)
            .collect();
        if !ready.is_empty() {
            break;
        }
    }
    assert_eq!(ready, vec![11], "only b's peer has data");
    let mut buf = [0u8; 4];
    (&sb).read_exact(&mut buf).expect("read");
    assert_eq!(&buf, b"to b");
    drop(a);
}

#[test]
fn in_loop_handler_serves_while_threads_use_the_same_stack() {
    let (s_dev, c_dev) = PipeDevice::pair(&PipeConfig::default()).expect("pipe");
    // An in-loop UDP echo server on port 5353.
    let mut state: Option<surge_stack::socket::SocketHandle> = None;
    let handler = move |e: &mut Engine<PipeDevice>, _now: Instant| -> bool {
        let h = match state {
            Some(h) => h,
            None => {
                let h = e.udp_socket().expect("udp");
                e.bind(h, addr(SERVER_IP, 5353), Default::default())
                    .expect("bind");
                state = Some(h);
                h
            }
        };
        let mut buf = [0u8; 2048];
        let mut did = false;
        while let Ok((n, _, src)) = e.recv_from(h, &mut buf) {
            let _ = e.send_to(h, &buf[..n], Some(src));
            did = true;
        }
        did
    };
    let server = Stack::start_with(
        vec![engine(s_dev, SERVER_IP, 0, 1)],
        RuntimeConfig::default(),
        vec![Box::new(handler)],
    )
    .expect("server");
    let client = Stack::start(
        vec![engine(c_dev, CLIENT_IP, 0, 1)],
        RuntimeConfig::default(),
    )
    .expect("client");
    let mut udp = client.udp_bind(addr(CLIENT_IP, 0)).expect("udp bind");
    udp.set_read_timeout(Some(Duration::from_secs(5)));
    for i in 0..20u8 {
        let msg = pattern(10 + usize::from(i), i);
        udp.send_to(&msg, addr(SERVER_IP, 5353)).expect("send");
        let mut buf = [0u8; 100];
        let (n, src) = udp.recv_from(&mut buf).expect("echo");
        assert_eq!(src, addr(SERVER_IP, 5353));
        assert_eq!(&buf[..n], &msg[..]);
    }
    // The cross-thread API of the same stack works beside the handler.
    let l = server.tcp_listen(addr(SERVER_IP, 8080), 4).expect("listen");
    let c = client.tcp_connect(addr(SERVER_IP, 8080)).expect("connect");
    let (s, peer) = l.accept().expect("accept");
    assert_eq!(Ok(peer), c.local_addr());
    (&c).write_all(b"hello").expect("write");
    let mut buf = [0u8; 5];
    (&s).read_exact(&mut buf).expect("read");
    assert_eq!(&buf, b"hello");
    // Options round-trip through the engine.
    let opts = TcpSocketOptions {
        nodelay: true,
        ..s.options().expect("options")
    };
    s.set_options(opts).expect("set");
    assert!(s.options().expect("options").nodelay);
    let (server_stats, _) = server.stats().expect("stats");
    assert!(server_stats.rx_frames > 0);
}

#[test]
fn a_stack_refuses_engines_configured_for_other_cores() {
    let (a, _b) = PipeDevice::pair(&PipeConfig::default()).expect("pipe");
    let e = engine(a, SERVER_IP, 1, 2);
    let err = Stack::start(vec![e], RuntimeConfig::default()).err();
    assert!(
        matches!(
            err,
            Some(surge_stack::runtime::RuntimeError::CoreMismatch {
                index: 0,
                core: 1,
                ..
            })
        ),
        "{err:?}"
    );
    let (a, _b) = PipeDevice::pair(&PipeConfig::default()).expect("pipe");
    let config = RuntimeConfig {
        pin: Some(vec![4096]),
        ..RuntimeConfig::default()
    };
    let err = Stack::start(vec![engine(a, SERVER_IP, 0, 1)], config).err();
    assert!(
        matches!(err, Some(surge_stack::runtime::RuntimeError::Pin(_))),
        "{err:?}"
    );
}

#[test]
fn shutdown_lingers_until_queued_data_is_delivered() {
    let (server, client) = stacks(1);
    let listener = server.tcp_listen(addr(SERVER_IP, 6000), 4).expect("listen");
    let mut c = client.tcp_connect(addr(SERVER_IP, 6000)).expect("connect");
    let (s, _) = listener.accept().expect("accept");
    let data = pattern(300_000, 3);
    // The client reads as the data comes.
    let reader = std::thread::spawn(move || {
        let mut back = Vec::new();
        c.set_read_timeout(Some(Duration::from_secs(5)));
        c.read_to_end(&mut back).map(|_| back)
    });
    // Queue it all, close, and stop the server stack at once: its loop must
    // keep sending until the peer has acknowledged everything.
    (&s).write_all(&data).expect("write");
    s.shutdown_write().expect("shutdown");
    drop(s);
    drop(listener);
    let engines = server.shutdown();
    assert_eq!(
        engines[0].draining(),
        0,
        "the loop lingered until all was acknowledged"
    );
    let back = reader.join().expect("reader").expect("read");
    assert_eq!(back.len(), data.len());
    assert!(back == data);
    drop(client);
}

#[test]
fn close_races_end_cleanly_on_both_sides() {
    let (server, client) = stacks(2);
    let listener = server
        .tcp_listen(addr(SERVER_IP, 6100), 64)
        .expect("listen");
    const N: usize = 12;
    let clients: Vec<TcpStream> = (0..N)
        .map(|_| client.tcp_connect(addr(SERVER_IP, 6100)).expect("connect"))
        .collect();
    let accepted: Vec<TcpStream> = (0..N)
        .map(|_| listener.accept().expect("accept").0)
        .collect();
    let mut writers = Vec::new();
    for (i, (c, s)) in clients.into_iter().zip(accepted).enumerate() {
        writers.push(std::thread::spawn(move || {
            let chunk = pattern(8192, i as u8);
            match i % 3 {
                // The server closes with unread data while the client writes:
                // RST (RFC 9293 §3.10.4), and the client's writes fail.
                0 => {
                    (&c).write_all(&chunk).expect("first write");
                    std::thread::sleep(Duration::from_millis(20));
                    drop(s);
                    let mut failed = None;
                    for _ in 0..2000 {
                        if let Err(e) = c.send(&chunk) {
                            failed = Some(e);
                            break;
                        }
                    }
                    let e = failed.expect("writes fail after the peer's RST");
                    assert!(
                        matches!(e, Errno::ECONNRESET | Errno::EPIPE),
                        "connection {i}: {e}"
                    );
                }
                // Both sides close at once (simultaneous FINs).
                1 => {
                    let t = std::thread::spawn(move || {
                        s.shutdown_write().expect("server shutdown");
                        drop(s);
                    });
                    c.shutdown_write().expect("client shutdown");
                    t.join().expect("server side");
                    drop(c);
                }
                // The client closes while the server still sends.
                _ => {
                    let mut s = s;
                    s.set_write_timeout(Some(Duration::from_secs(10)));
                    let t = std::thread::spawn(move || {
                        let mut sent = 0usize;
                        for _ in 0..200 {
                            match s.send(&chunk) {
                                Ok(n) => sent += n,
                                Err(_) => break,
                            }
                        }
                        sent
                    });
                    std::thread::sleep(Duration::from_millis(5));
                    drop(c);
                    assert!(t.join().expect("server sender") > 0);
                }
            }
        }));
    }
    for w in writers {
        w.join().expect("close race");
    }
    drop(listener);
    std::thread::sleep(Duration::from_millis(300));
    for (name, stack) in [("client", client), ("server", server)] {
        for mut e in stack.shutdown() {
            for t in 0..3000u64 {
                e.poll(Instant::from_micros(20_000_000 + t * 1000));
            }
            assert_eq!(e.socket_count(), 0, "{name} core {}", e.config().core);
            let acc = e.device().accounting();
            assert!(acc.balanced(), "{name}: frames leaked: {acc:?}");
        }
    }
}

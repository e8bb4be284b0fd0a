//! The cross-thread stream's byte rings (runtime/stream.rs) over the in-memory
//! link: echo and a large transfer across threads, end of stream, reset and
//! close while bytes sit in the rings, many streams at once, non-blocking
//! EAGAIN on an empty and a full ring, and no allocation per call once running.
//!
//! Every wait is bounded (read/write timeouts, counted loops).

use core::net::SocketAddrV4;
use std::io::{Read, Write};
use std::sync::Arc;
use std::time::Duration;

use sha2::{Digest, Sha256};
use surge_datapath::alloc_count::{CountingAllocator, count_allocations};
use surge_stack::errno::Errno;
use surge_stack::runtime::{STREAM_RING_BYTES, TcpStream};
use surge_stack::socket::TcpSocketOptions;

mod support;
use support::runtime::{SERVER_IP, stacks};

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

/// Longest any single blocking call may wait here.
const CALL_LIMIT: Duration = Duration::from_secs(10);

fn addr(port: u16) -> SocketAddrV4 {
    SocketAddrV4::new(SERVER_IP, port)
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(61).wrapping_add(seed) ^ ((i >> 9) as u8))
        .collect()
}

/// Sets both timeouts so that no call here can hang.
fn bounded(mut s: TcpStream) -> TcpStream {
    s.set_read_timeout(Some(CALL_LIMIT));
    s.set_write_timeout(Some(CALL_LIMIT));
    s
}

/// A connected pair: (client stream, accepted server stream), the server
/// side's options set before `listen` (inherited by the accepted stream).
fn pair(
    server: &surge_stack::runtime::Stack<surge_datapath::PipeDevice>,
    client: &surge_stack::runtime::Stack<surge_datapath::PipeDevice>,
    port: u16,
    server_options: Option<TcpSocketOptions>,
) -> (TcpStream, TcpStream) {
    let mut socket = server.tcp_socket();
    if let Some(o) = server_options {
        socket.set_options(o).expect("server options");
    }
    socket.bind(addr(port)).expect("bind");
    let listener = socket.listen(8).expect("listen");
    let c = client.tcp_connect(addr(port)).expect("connect");
    let (s, _) = listener.accept().expect("accept");
    (bounded(c), bounded(s))
}

/// Reads until end of stream or an error: the bytes and how it ended.
fn read_all(stream: &TcpStream) -> (Vec<u8>, Result<(), Errno>) {
    let mut out = Vec::new();
    let mut buf = vec![0u8; 7000];
    for _ in 0..100_000 {
        match stream.recv(&mut buf) {
            Ok(0) => return (out, Ok(())),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) => return (out, Err(e)),
        }
    }
    panic!("no end of stream after 100,000 reads");
}

#[test]
fn echo_across_threads_in_small_messages() {
    let (server, client) = stacks(1);
    let (c, s) = pair(&server, &client, 8001, None);
    let echo = std::thread::spawn(move || {
        let mut s = s;
        let mut buf = [0u8; 64];
        let mut echoed = 0;
        while s.read_exact(&mut buf).is_ok() {
            s.write_all(&buf).expect("echo write");
            echoed += 1;
        }
        echoed
    });
    let mut c = c;
    for i in 0..2000u32 {
        let msg = pattern(64, i as u8);
        c.write_all(&msg).expect("request");
        let mut back = [0u8; 64];
        c.read_exact(&mut back).expect("echo");
        assert_eq!(&back[..], &msg[..], "echo {i}");
    }
    c.shutdown_write().expect("shutdown");
    let mut rest = [0u8; 1];
    assert_eq!(c.recv(&mut rest), Ok(0), "the server closed after our FIN");
    assert_eq!(echo.join().expect("echo thread"), 2000);
}

#[test]
fn large_transfer_both_ways_is_intact() {
    const LEN: usize = 3 << 20;
    let (server, client) = stacks(1);
    let (c, s) = pair(&server, &client, 8002, None);
    let up = pattern(LEN, 1);
    let down = pattern(LEN, 2);
    let (c, s) = (Arc::new(c), Arc::new(s));
    // Four threads: each side writes on one and reads on another (a stream
    // is used through `&TcpStream` from two threads at once).
    let writer = |stream: Arc<TcpStream>, data: Vec<u8>| {
        std::thread::spawn(move || {
            // Odd chunk sizes, so the rings wrap at every offset.
            for chunk in data.chunks(4099) {
                (&*stream).write_all(chunk).expect("write");
            }
            stream.shutdown_write().expect("shutdown");
        })
    };
    let reader = |stream: Arc<TcpStream>| std::thread::spawn(move || read_all(&stream));
    let w1 = writer(Arc::clone(&c), up.clone());
    let w2 = writer(Arc::clone(&s), down.clone());
    let r1 = reader(Arc::clone(&s));
    let r2 = reader(Arc::clone(&c));
    w1.join().expect("client writer");
    w2.join().expect("server writer");
    let (got_up, end_up) = r1.join().expect("server reader");
    let (got_down, end_down) = r2.join().expect("client reader");
    assert_eq!((end_up, end_down), (Ok(()), Ok(())));
    assert_eq!(got_up.len(), LEN);
    assert_eq!(got_down.len(), LEN);
    assert_eq!(Sha256::digest(&got_up), Sha256::digest(&up));
    assert_eq!(Sha256::digest(&got_down), Sha256::digest(&down));
}

#[test]
fn end_of_stream_comes_after_the_bytes_in_the_ring() {
    let (server, client) = stacks(1);
    let (c, s) = pair(&server, &client, 8003, None);
    // Less than the ring: it all sits in the client's RX ring with the FIN
    // behind it before the client reads anything.
    let data = pattern(STREAM_RING_BYTES / 2, 3);
    (&s).write_all(&data).expect("write");
    s.close().expect("close");
    std::thread::sleep(Duration::from_millis(50));
    let (got, end) = read_all(&c);
    assert_eq!(end, Ok(()));
    assert_eq!(got, data);
    // End of stream stays: every later read says 0.
    let mut buf = [0u8; 8];
    assert_eq!(c.recv(&mut buf), Ok(0));
    assert_eq!(c.recv(&mut buf), Ok(0));
}

#[test]
fn close_waits_for_the_tx_ring_then_the_peer_sees_end_of_stream() {
    // The peer's receive buffer is small, so most of the data is still in
    // the writer's TX ring and send buffer when it closes.
    const LEN: usize = 400 * 1024;
    let small = TcpSocketOptions {
        recv_buffer: 4096,
        ..TcpSocketOptions::default()
    };
    let (server, client) = stacks(1);
    let (c, s) = pair(&server, &client, 8004, Some(small));
    let data = pattern(LEN, 4);
    let writer = {
        let data = data.clone();
        std::thread::spawn(move || {
            (&c).write_all(&data).expect("write");
            // Returns at once: the loop closes once the TX ring drained.
            drop(c);
        })
    };
    std::thread::sleep(Duration::from_millis(20));
    let (got, end) = read_all(&s);
    writer.join().expect("writer");
    assert_eq!(end, Ok(()));
    assert_eq!(got.len(), LEN);
    assert_eq!(Sha256::digest(&got), Sha256::digest(&data));
}

#[test]
fn reset_while_bytes_wait_in_the_rx_ring() {
    let (server, client) = stacks(1);
    let (c, s) = pair(&server, &client, 8005, None);
    let data = pattern(6000, 5);
    (&c).write_all(&data).expect("write");
    // The server has not read: the bytes are in its RX ring. The client
    // aborts.
    std::thread::sleep(Duration::from_millis(50));
    let options = TcpSocketOptions {
        linger: Some(Duration::ZERO),
        ..c.options().expect("options")
    };
    c.set_options(options).expect("linger 0");
    c.close().expect("close");
    std::thread::sleep(Duration::from_millis(50));
    // The bytes received before the RST are read first (as Linux returns
    // queued data before the error), then the reset, then end of stream.
    let (got, end) = read_all(&s);
    assert_eq!(end, Err(Errno::ECONNRESET));
    assert_eq!(got, data);
    let mut buf = [0u8; 8];
    assert_eq!(s.recv(&mut buf), Ok(0), "after the reset was reported");
    assert_eq!(s.send(b"x"), Err(Errno::EPIPE));
}

#[test]
fn closing_with_unread_bytes_in_the_rx_ring_resets_the_peer() {
    let (server, client) = stacks(1);
    let (c, s) = pair(&server, &client, 8006, None);
    (&c).write_all(&pattern(3000, 6)).expect("write");
    // Wait until the server's loop moved them into its RX ring (the server's
    // stream is readable), then close without reading: RFC 9293 §3.10.4 /
    // Linux `tcp_close` send a RST when received data is discarded.
    let mut ready = false;
    for _ in 0..500 {
        if s.tcp_info().expect("info").bytes_received >= 3000 {
            ready = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    assert!(ready, "the server received the bytes");
    drop(s);
    let mut buf = [0u8; 16];
    assert_eq!(c.recv(&mut buf), Err(Errno::ECONNRESET));
}

#[test]
fn nonblocking_calls_say_eagain_on_an_empty_and_a_full_ring() {
    let (server, client) = stacks(1);
    let (mut c, s) = pair(&server, &client, 8007, None);
    c.set_nonblocking(true);
    let mut buf = [0u8; 32];
    assert_eq!(c.recv(&mut buf), Err(Errno::EAGAIN), "nothing sent yet");
    // Nobody reads on the server: the client's TX ring, its send buffer,
    // the server's receive buffer and its RX ring fill, then EAGAIN.
    let chunk = vec![9u8; 8192];
    let mut sent = 0usize;
    let mut refused = false;
    for _ in 0..10_000 {
        match c.send(&chunk) {
            Ok(n) => sent += n,
            Err(Errno::EAGAIN) => {
                refused = true;
                break;
            }
            Err(e) => panic!("send: {e}"),
        }
    }
    assert!(refused, "a full ring says EAGAIN ({sent} bytes taken)");
    assert!(sent >= STREAM_RING_BYTES, "at least the ring was taken");
    // The server reads everything the client got in; then the client can
    // send again.
    let mut got = 0usize;
    let mut big = vec![0u8; 16 * 1024];
    while got < sent {
        got += s.recv(&mut big).expect("server read");
    }
    assert_eq!(got, sent);
    let mut again = Err(Errno::EAGAIN);
    for _ in 0..1000 {
        again = c.send(b"more");
        if again.is_ok() {
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    assert_eq!(again, Ok(4));
}

#[test]
fn many_streams_echo_at_once_on_two_cores() {
    const STREAMS: usize = 40;
    const ROUNDS: usize = 50;
    let (server, client) = stacks(2);
    let listener = server.tcp_listen(addr(8008), 64).expect("listen");
    let clients: Vec<TcpStream> = (0..STREAMS)
        .map(|_| bounded(client.tcp_connect(addr(8008)).expect("connect")))
        .collect();
    let mut threads = Vec::new();
    for _ in 0..STREAMS {
        let (s, _) = listener.accept().expect("accept");
        let mut s = bounded(s);
        threads.push(std::thread::spawn(move || {
            let mut buf = [0u8; 100];
            let mut n = 0;
            while s.read_exact(&mut buf).is_ok() && s.write_all(&buf).is_ok() {
                n += 1;
            }
            n
        }));
    }
    let drivers: Vec<_> = clients
        .into_iter()
        .enumerate()
        .map(|(i, mut c)| {
            std::thread::spawn(move || {
                for r in 0..ROUNDS {
                    let msg = pattern(100, (i * 7 + r) as u8);
                    c.write_all(&msg).expect("write");
                    let mut back = [0u8; 100];
                    c.read_exact(&mut back).expect("read");
                    assert_eq!(&back[..], &msg[..], "stream {i} round {r}");
                }
            })
        })
        .collect();
    for d in drivers {
        d.join().expect("driver");
    }
    for t in threads {
        assert_eq!(t.join().expect("echo"), ROUNDS);
    }
}

#[test]
fn blocking_send_and_recv_allocate_nothing_once_running() {
    let (server, client) = stacks(1);
    let (c, s) = pair(&server, &client, 8009, None);
    let echo = std::thread::spawn(move || {
        let mut s = s;
        let mut buf = [0u8; 64];
        while s.read_exact(&mut buf).is_ok() {
            if s.write_all(&buf).is_err() {
                break;
            }
        }
    });
    let mut c = c;
    let msg = [7u8; 64];
    let mut back = [0u8; 64];
    let mut round = |c: &mut TcpStream| {
        c.write_all(&msg).expect("write");
        c.read_exact(&mut back).expect("read");
        assert_eq!(back, msg);
    };
    // Warm up: the first calls set up the thread's handle for parking.
    for _ in 0..100 {
        round(&mut c);
    }
    let ((), allocations) = count_allocations(|| {
        for _ in 0..2000 {
            round(&mut c);
        }
    });
    assert_eq!(
        allocations, 0,
        "2000 blocking send + recv made {allocations} allocations"
    );
    drop(c);
    echo.join().expect("echo");
}

#[test]
fn a_poller_sees_the_rings_readiness() {
    use surge_stack::runtime::Interest;
    let (server, client) = stacks(1);
    let (c, s) = pair(&server, &client, 8010, None);
    let mut poller = server.poller();
    poller
        .register(&s, 7, Interest::READABLE)
        .expect("register");
    let mut events = Vec::new();
    assert_eq!(
        poller.wait(&mut events, Some(Duration::from_millis(30))),
        Ok(0),
        "nothing to read yet"
    );
    (&c).write_all(b"ping").expect("write");
    // The bytes go into the server's RX ring: readable.
    let mut readable = false;
    for _ in 0..100 {
        events.clear();
        poller
            .wait(&mut events, Some(Duration::from_secs(1)))
            .expect("wait");
        if events.iter().any(|e| e.token == 7 && e.readable) {
            readable = true;
            break;
        }
    }
    assert!(readable, "bytes in the ring make the stream readable");
    let mut buf = [0u8; 4];
    (&s).read_exact(&mut buf).expect("read");
    assert_eq!(&buf, b"ping");
    // Emptied by the read: no longer readable (level-triggered).
    events.clear();
    assert_eq!(
        poller.wait(&mut events, Some(Duration::from_millis(30))),
        Ok(0),
        "the ring is empty: {events:?}"
    );
    // Writable interest: a connected stream with room in its TX ring.
    poller
        .reregister(7, Interest::WRITABLE)
        .expect("reregister");
    events.clear();
    assert_eq!(
        poller.wait(&mut events, Some(Duration::from_secs(1))),
        Ok(1)
    );
    assert!(events[0].writable);
}

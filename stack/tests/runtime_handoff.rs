//! The hand-off between an engine's loop and the application threads of its
//! cross-thread streams (runtime/mod.rs, runtime/stream.rs): the loop moves
//! the bytes of an iteration, then wakes every reader and writer those moves
//! owe a wake in one pass (`Streams::wake_pending`), yields, and flushes what
//! they wrote in the same iteration.
//!
//! A blocked stream call parks at most `RuntimeConfig::stream_park` between
//! looks at its ring, so with the default (5 ms) a wake-up the loop forgot
//! costs only latency. These tests set it to a minute and every call's
//! timeout to ten seconds: a forgotten wake-up fails the call with EAGAIN.

use core::net::SocketAddrV4;
use std::io::{Read, Write};
use std::time::Duration;

use surge_datapath::PipeDevice;
use surge_stack::runtime::{RuntimeConfig, STREAM_RING_BYTES, Stack, TcpStream};

mod support;
use support::runtime::{SERVER_IP, stacks_with};

/// Longest any single blocking call may wait here.
const CALL_LIMIT: Duration = Duration::from_secs(10);

/// A liveness bound, not a speed check: a blocked call whose wake-up was lost
/// still returns once its timeout ran out if the bytes are there by then, so
/// a transfer of many blocking calls would crawl rather than fail; it passes
/// in about a second, and fails once this much time went by.
const TRANSFER_LIMIT: Duration = Duration::from_secs(60);

/// Runtimes whose blocked stream calls are never woken by their park bound
/// within a call's time limit: only the loop's wake-ups move them.
fn wake_only_stacks(queues: u16) -> (Stack<PipeDevice>, Stack<PipeDevice>) {
    let config = RuntimeConfig {
        stream_park: Duration::from_secs(60),
        ..RuntimeConfig::default()
    };
    stacks_with(queues, &config)
}

fn bounded(mut s: TcpStream) -> TcpStream {
    s.set_read_timeout(Some(CALL_LIMIT));
    s.set_write_timeout(Some(CALL_LIMIT));
    s
}

/// `count` connected pairs on `port`: (client streams, accepted server streams).
fn pairs(
    server: &Stack<PipeDevice>,
    client: &Stack<PipeDevice>,
    port: u16,
    count: usize,
) -> (Vec<TcpStream>, Vec<TcpStream>) {
    let addr = SocketAddrV4::new(SERVER_IP, port);
    let listener = server.tcp_listen(addr, 128).expect("listen");
    let clients: Vec<TcpStream> = (0..count)
        .map(|_| bounded(client.tcp_connect(addr).expect("connect")))
        .collect();
    let servers = (0..count)
        .map(|_| bounded(listener.accept().expect("accept").0))
        .collect();
    (clients, servers)
}

/// A blocking echo thread per stream; each returns how many messages it echoed.
fn echo_threads(streams: Vec<TcpStream>, len: usize) -> Vec<std::thread::JoinHandle<usize>> {
    streams
        .into_iter()
        .map(|mut s| {
            std::thread::spawn(move || {
                let mut buf = vec![0u8; len];
                let mut n = 0;
                while s.read_exact(&mut buf).is_ok() && s.write_all(&buf).is_ok() {
                    n += 1;
                }
                n
            })
        })
        .collect()
}

#[test]
fn one_stream_echoes_on_wake_ups_alone() {
    const ROUNDS: usize = 3000;
    let (server, client) = wake_only_stacks(1);
    let (mut clients, servers) = pairs(&server, &client, 8200, 1);
    let echo = echo_threads(servers, 64);
    let mut c = clients.remove(0);
    c.set_nodelay(true).expect("nodelay");
    let mut back = [0u8; 64];
    for r in 0..ROUNDS {
        let msg = [r as u8; 64];
        c.write_all(&msg).expect("write");
        c.read_exact(&mut back)
            .unwrap_or_else(|e| panic!("round {r}: {e}"));
        assert_eq!(back, msg, "round {r}");
    }
    drop(c);
    for t in echo {
        assert_eq!(t.join().expect("echo"), ROUNDS);
    }
}

#[test]
fn many_streams_woken_in_one_pass_all_answer() {
    // More streams than one RX burst carries, so one iteration's wake pass
    // holds many threads, on both engines of a two-core stack.
    const STREAMS: usize = 48;
    const ROUNDS: usize = 40;
    let (server, client) = wake_only_stacks(2);
    let (mut clients, servers) = pairs(&server, &client, 8201, STREAMS);
    let echo = echo_threads(servers, 32);
    let mut back = [0u8; 32];
    for r in 0..ROUNDS {
        // Every request first, then every answer: the server's loop sees
        // many streams readable at once.
        for (i, c) in clients.iter_mut().enumerate() {
            c.write_all(&[(i + r) as u8; 32]).expect("write");
        }
        for (i, c) in clients.iter_mut().enumerate() {
            c.read_exact(&mut back)
                .unwrap_or_else(|e| panic!("stream {i} round {r}: {e}"));
            assert_eq!(back, [(i + r) as u8; 32], "stream {i} round {r}");
        }
    }
    drop(clients);
    for t in echo {
        assert_eq!(t.join().expect("echo"), ROUNDS);
    }
}

#[test]
fn a_writer_waiting_for_room_and_a_reader_of_a_full_ring_are_woken() {
    // Far more than both rings and the socket buffers hold: the writer blocks
    // on a full TX ring (woken when the loop drains it, after a doorbell or a
    // writable event), and the RX ring fills while the reader sleeps between
    // reads (the reader's doorbell makes the loop pull again, then wake it).
    const TOTAL: usize = 64 * STREAM_RING_BYTES;
    let (server, client) = wake_only_stacks(1);
    let (mut clients, mut servers) = pairs(&server, &client, 8202, 1);
    let mut c = clients.remove(0);
    let s = servers.remove(0);
    let started = std::time::Instant::now();
    let reader = std::thread::spawn(move || {
        let mut s = s;
        let mut buf = vec![0u8; 3000];
        let mut got = 0usize;
        let mut sum = 0u64;
        while got < TOTAL {
            let n = s.read(&mut buf).expect("read");
            assert!(n > 0, "end of stream after {got} bytes");
            assert!(
                started.elapsed() < TRANSFER_LIMIT,
                "{got} bytes read after {TRANSFER_LIMIT:?}: wake-ups were lost"
            );
            sum += buf[..n].iter().map(|&b| u64::from(b)).sum::<u64>();
            got += n;
            if got % (8 * STREAM_RING_BYTES) < n {
                // Let the RX ring fill up behind us now and then.
                std::thread::sleep(Duration::from_millis(2));
            }
        }
        sum
    });
    let chunk: Vec<u8> = (0..4096).map(|i| (i * 7) as u8).collect();
    let mut sent_sum = 0u64;
    for _ in 0..TOTAL / chunk.len() {
        c.write_all(&chunk).expect("write");
        assert!(
            started.elapsed() < TRANSFER_LIMIT,
            "still writing after {TRANSFER_LIMIT:?}: wake-ups were lost"
        );
        sent_sum += chunk.iter().map(|&b| u64::from(b)).sum::<u64>();
    }
    assert_eq!(reader.join().expect("reader"), sent_sum);
}

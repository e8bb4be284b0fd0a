//! A request's ACK rides on its answer: the engine holds the pure ACK of in-order
//! data until the start of its next iteration, and an application that answers in
//! between sends one frame (answer + ACK) instead of two. An unanswered request is
//! still acknowledged on the next iteration.

mod support;

use core::time::Duration;

use support::{Net, connected_pair};
use surge_stack::socket::SocketHandle;

const PORT: u16 = 8080;
const STEP: Duration = Duration::from_micros(100);

/// A connection from A to B's listener, accepted; the link quiet afterwards.
fn connected(net: &mut Net) -> (SocketHandle, SocketHandle) {
    let pair = connected_pair(net, PORT);
    for _ in 0..10 {
        net.step(STEP);
    }
    pair
}

/// Steps until B has held one more ACK than `held`; at most 100 steps.
fn until_held(net: &mut Net, held: u64) {
    assert!(
        net.run_until(100, |n| n.b.tcp_stats().acks_held > held),
        "B never held the request's ACK"
    );
}

#[test]
fn an_answer_written_in_the_same_turn_carries_the_requests_ack() {
    let mut net = Net::new();
    let (client, conn) = connected(&mut net);
    let request = b"GET / HTTP/1.1\r\nHost: b\r\n\r\n";
    let answer = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    let mut buf = [0u8; 256];

    for round in 0..3u64 {
        let frames = net.b.stats().tx_frames;
        let held = net.b.tcp_stats().acks_held;
        assert_eq!(net.a.send(client, request), Ok(request.len()));
        until_held(&mut net, held);
        assert_eq!(
            net.b.stats().tx_frames,
            frames,
            "round {round}: the ACK was held, not sent"
        );
        // The application's turn: read the request, answer it.
        assert_eq!(net.b.recv(conn, &mut buf), Ok(request.len()));
        assert_eq!(net.b.send(conn, answer), Ok(answer.len()));
        assert!(net.run_until(100, |n| {
            n.a.tcp_info(client).is_ok_and(|i| i.unacked == 0)
                && n.a.readiness(client).is_ok_and(|r| r.readable)
        }));
        assert_eq!(net.a.recv(client, &mut buf), Ok(answer.len()));
        assert_eq!(&buf[..answer.len()], answer);
        assert_eq!(
            net.b.stats().tx_frames,
            frames + 1,
            "round {round}: one frame carried both the answer and the ACK"
        );
        assert_eq!(net.b.tcp_stats().acks_merged, round + 1);
    }
}

#[test]
fn an_unanswered_request_is_acknowledged_on_the_next_iteration() {
    let mut net = Net::new();
    let (client, conn) = connected(&mut net);
    let frames = net.b.stats().tx_frames;
    let held = net.b.tcp_stats().acks_held;
    assert_eq!(net.a.send(client, b"ping"), Ok(4));
    until_held(&mut net, held);
    assert_eq!(net.b.stats().tx_frames, frames);
    // The application does nothing: B's next iteration sends the pure ACK.
    net.step(STEP);
    assert_eq!(net.b.stats().tx_frames, frames + 1, "a pure ACK went out");
    assert_eq!(net.b.tcp_stats().acks_merged, 0);
    assert!(net.run_until(10, |n| n.a.tcp_info(client).is_ok_and(|i| i.unacked == 0)));
    // The data is still there for the application, and no more frames follow.
    for _ in 0..5 {
        net.step(STEP);
    }
    assert_eq!(net.b.stats().tx_frames, frames + 1);
    let mut buf = [0u8; 16];
    assert_eq!(net.b.recv(conn, &mut buf), Ok(4));
}

#[test]
fn a_held_ack_keeps_the_engine_busy_until_it_is_sent() {
    let mut net = Net::new();
    let (client, _conn) = connected(&mut net);
    let held = net.b.tcp_stats().acks_held;
    assert_eq!(net.a.send(client, b"ping"), Ok(4));
    until_held(&mut net, held);
    // A loop that sleeps until `poll_at` must come back at once for the held ACK.
    let at = net.b.poll_at().expect("a held ACK is timed work");
    assert!(
        at <= net.now,
        "poll_at {at:?} is later than now {:?}",
        net.now
    );
}

/// Data whose ACK is delayed (the quick-ACK budget spent, the request left
/// unread) is settled as it arrives, outside the dirty list: B reports it readable
/// at once, sends nothing, and its delayed ACK leaves when the timer armed on
/// input fires, not before.
#[test]
fn a_delayed_ack_armed_on_input_leaves_when_its_timer_fires() {
    let mut net = Net::new();
    let (client, conn) = connected(&mut net);
    let delack = surge_stack::tcp::TcpConfig::default().delayed_ack;
    let mut buf = [0u8; 64];
    // Spend B's quick ACKs: one-byte requests, each read and acknowledged.
    for _ in 0..64 {
        assert_eq!(net.a.send(client, b"q"), Ok(1));
        assert!(net.run_until(5_000, |n| n.b.readiness(conn).is_ok_and(|r| r.readable)));
        assert_eq!(net.b.recv(conn, &mut buf), Ok(1));
        assert!(net.run_until(5_000, |n| {
            n.a.tcp_info(client).is_ok_and(|i| i.unacked == 0)
        }));
    }
    let frames = net.b.stats().tx_frames;
    assert_eq!(net.a.send(client, b"late"), Ok(4));
    assert!(net.run_until(100, |n| n.b.readiness(conn).is_ok_and(|r| r.readable)));
    let arrived = net.now;
    assert_eq!(
        net.b.stats().tx_frames,
        frames,
        "the ACK is delayed, not sent"
    );
    assert!(
        net.run_until(5_000, |n| n.b.stats().tx_frames > frames),
        "the delayed ACK never left"
    );
    let waited = net.now - arrived;
    assert!(
        waited + STEP >= delack,
        "the ACK left after {waited:?}, before the {delack:?} delay"
    );
    assert!(
        waited <= delack + Duration::from_millis(20),
        "late: {waited:?}"
    );
    assert!(net.run_until(100, |n| n.a.tcp_info(client).is_ok_and(|i| i.unacked == 0)));
}

//! Delayed ACKs (RFC 1122 §4.2.3.2, RFC 5681 §4.2) and Nagle's algorithm (RFC 896,
//! RFC 1122 §4.2.3.4) with `TCP_NODELAY`.

mod tcp_support;

use core::time::Duration;
use surge_stack::tcp::TcpConfig;
use tcp_support::plain;
use tcp_support::script::{LOCAL_ISS, PEER_ISS, Script, seg};

const D: u32 = LOCAL_ISS + 1;
const P: u32 = PEER_ISS + 1;

fn delack() -> TcpConfig {
    TcpConfig {
        quickack_segments: 0,
        ..plain()
    }
}

#[test]
fn rfc1122_4_2_3_2_single_segment_acked_after_delay() {
    let mut s = Script::established(&delack());
    s.inject(200, seg("P.").seq(P).ack(D).len(100));
    s.expect_none_until(239);
    s.expect(240, seg(".").ack(P + 100));
    assert_eq!(s.tcb.stats().delayed_acks, 1);
}

#[test]
fn rfc1122_4_2_3_2_delay_is_configurable() {
    let mut s = Script::established(&TcpConfig {
        delayed_ack: Duration::from_millis(200),
        ..delack()
    });
    s.inject(200, seg("P.").seq(P).ack(D).len(100));
    s.expect_none_until(399);
    s.expect(400, seg(".").ack(P + 100));
}

#[test]
fn rfc5681_4_2_every_second_full_segment_is_acked_at_once() {
    let mut s = Script::established(&delack());
    s.inject(200, seg(".").seq(P).ack(D).len(1460));
    s.expect_none();
    s.inject(201, seg(".").seq(P + 1460).ack(D).len(1460));
    s.expect(201, seg(".").ack(P + 2920));
    s.inject(202, seg(".").seq(P + 2920).ack(D).len(1460));
    s.expect_none();
    s.expect(242, seg(".").ack(P + 4380));
}

#[test]
fn rfc1122_4_2_3_2_timer_runs_from_first_unacked_segment() {
    let mut s = Script::established(&delack());
    s.inject(200, seg("P.").seq(P).ack(D).len(10));
    s.inject(230, seg("P.").seq(P + 10).ack(D).len(10));
    s.expect(240, seg(".").ack(P + 20));
}

#[test]
fn quickack_at_start_acks_first_segments_immediately() {
    let mut s = Script::established(&TcpConfig {
        quickack_segments: 2,
        ..plain()
    });
    s.inject(200, seg("P.").seq(P).ack(D).len(10));
    s.expect(200, seg(".").ack(P + 10));
    s.inject(210, seg("P.").seq(P + 10).ack(D).len(10));
    s.expect(210, seg(".").ack(P + 20));
    s.inject(220, seg("P.").seq(P + 20).ack(D).len(10));
    s.expect_none();
    s.expect(260, seg(".").ack(P + 30));
}

#[test]
fn quickack_after_loss_acks_immediately_until_hole_filled() {
    let mut s = Script::established(&TcpConfig {
        quickack_segments: 3,
        ..plain()
    });
    for i in 0..3u32 {
        s.inject(200, seg("P.").seq(P + i * 10).ack(D).len(10));
        s.expect(200, seg(".").ack(P + (i + 1) * 10));
    }
    // Quick-ack budget used up: delayed again.
    s.inject(210, seg("P.").seq(P + 30).ack(D).len(10));
    s.expect(250, seg(".").ack(P + 40));
    // A hole: duplicate ACK at once, and quick-ack mode again after it fills.
    s.inject(300, seg("P.").seq(P + 50).ack(D).len(10));
    s.expect(300, seg(".").ack(P + 40));
    s.inject(301, seg("P.").seq(P + 40).ack(D).len(10));
    s.expect(301, seg(".").ack(P + 60));
    s.inject(302, seg("P.").seq(P + 60).ack(D).len(10));
    s.expect(302, seg(".").ack(P + 70));
}

#[test]
fn rfc1122_4_2_3_2_delayed_ack_rides_on_data() {
    let mut s = Script::established(&delack());
    s.inject(200, seg("P.").seq(P).ack(D).len(10));
    s.send(220, b"reply");
    s.expect(220, seg("P.").seq(D).ack(P + 10).len(5));
    s.expect_none_until(500);
}

#[test]
fn rfc896_nagle_holds_small_segment_while_data_unacked() {
    let mut s = Script::established(&plain());
    s.send(200, b"first");
    s.expect(200, seg("P.").seq(D).data(b"first"));
    s.send(210, b"second");
    s.expect_none();
    s.inject(250, seg(".").seq(P).ack(D + 5));
    s.expect(250, seg("P.").seq(D + 5).data(b"second"));
}

#[test]
fn rfc896_nagle_coalesces_small_writes() {
    let mut s = Script::established(&plain());
    s.send(200, b"a");
    s.expect(200, seg("P.").len(1));
    for _ in 0..5 {
        s.send(210, b"bc");
    }
    s.expect_none();
    s.inject(250, seg(".").seq(P).ack(D + 1));
    s.expect(250, seg("P.").seq(D + 1).data(b"bcbcbcbcbc"));
}

#[test]
fn rfc1122_4_2_3_4_nagle_never_holds_full_segments() {
    let mut s = Script::established(&plain());
    s.send(200, b"a");
    s.expect(200, seg("P.").len(1));
    s.send(210, &[0u8; 3000]);
    s.expect(210, seg(".").seq(D + 1).len(1460));
    s.expect(210, seg(".").seq(D + 1461).len(1460));
    s.expect_none();
    s.inject(260, seg(".").seq(P).ack(D + 2921));
    s.expect(260, seg("P.").seq(D + 2921).len(80));
}

#[test]
fn tcp_nodelay_sends_small_segments_at_once() {
    let mut s = Script::established(&TcpConfig {
        nodelay: true,
        ..plain()
    });
    s.send(200, b"first");
    s.expect(200, seg("P.").data(b"first"));
    s.send(210, b"second");
    s.expect(210, seg("P.").seq(D + 5).data(b"second"));
}

#[test]
fn tcp_nodelay_can_be_set_at_runtime() {
    let mut s = Script::established(&plain());
    s.send(200, b"first");
    s.expect(200, seg("P."));
    s.send(210, b"second");
    s.expect_none();
    s.call(220, |t| t.set_nodelay(true));
    s.expect(220, seg("P.").data(b"second"));
}

#[test]
fn nagle_lets_the_final_segment_with_fin_go() {
    let mut s = Script::established(&plain());
    s.send(200, b"first");
    s.expect(200, seg("P."));
    s.send(210, b"tail");
    s.expect_none();
    s.call(220, |t| t.shutdown_write());
    s.expect(220, seg("FP.").seq(D + 5).data(b"tail"));
}

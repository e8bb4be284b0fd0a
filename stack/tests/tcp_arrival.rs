//! Segment arrival in synchronized states, RFC 9293 §3.10.7.4 in order: sequence check,
//! RST, SYN (RFC 5961 §4), ACK (RFC 5961 §5), text, FIN.

mod tcp_support;

use surge_stack::tcp::{State, TcpConfig};
use tcp_support::plain;
use tcp_support::script::{LOCAL_ISS, PEER_ISS, Script, seg};

fn quick() -> TcpConfig {
    TcpConfig {
        quickack_segments: 0,
        ..plain()
    }
}

#[test]
fn rfc9293_3_10_7_4_first_segment_left_of_window_gets_ack_and_dropped() {
    let mut s = Script::established(&plain());
    s.inject(
        200,
        seg("P.")
            .seq(PEER_ISS - 100)
            .ack(LOCAL_ISS + 1)
            .data(b"old"),
    );
    s.expect(200, seg(".").seq(LOCAL_ISS + 1).ack(PEER_ISS + 1));
    assert_eq!(s.tcb.recv_queue_len(), 0);
    assert_eq!(s.tcb.stats().unacceptable, 1);
}

#[test]
fn rfc9293_3_10_7_4_first_segment_right_of_window_gets_ack_and_dropped() {
    let mut s = Script::established(&plain());
    s.inject(
        200,
        seg("P.")
            .seq(PEER_ISS + 1 + 70_000)
            .ack(LOCAL_ISS + 1)
            .data(b"far"),
    );
    s.expect(200, seg(".").ack(PEER_ISS + 1));
    assert_eq!(s.tcb.stats().ooo_bytes, 0);
}

#[test]
fn rfc9293_3_10_7_4_first_unacceptable_rst_is_not_answered() {
    let mut s = Script::established(&plain());
    s.inject(200, seg("R.").seq(PEER_ISS - 5).ack(LOCAL_ISS + 1));
    s.expect_none();
}

#[test]
fn rfc9293_3_10_7_4_first_zero_length_segment_at_rcv_nxt_is_acceptable() {
    let mut s = Script::established(&plain());
    s.inject(200, seg(".").seq(PEER_ISS + 1).ack(LOCAL_ISS + 1));
    s.expect_none();
}

#[test]
fn rfc9293_3_10_7_4_overlapping_segment_is_trimmed_on_the_left() {
    let mut s = Script::established(&quick());
    s.inject(
        200,
        seg("P.").seq(PEER_ISS + 1).ack(LOCAL_ISS + 1).data(b"abcd"),
    );
    s.inject(
        210,
        seg("P.")
            .seq(PEER_ISS + 3)
            .ack(LOCAL_ISS + 1)
            .data(b"cdefgh"),
    );
    // Delayed ACK (armed at 200 ms) covers both.
    s.expect(240, seg(".").ack(PEER_ISS + 9));
    assert_eq!(s.recv(250, 100), b"abcdefgh");
}

#[test]
fn rfc9293_3_10_7_4_text_beyond_window_is_trimmed_on_the_right() {
    let mut s = Script::established(&TcpConfig {
        recv_buffer: 8,
        ..quick()
    });
    // Our SYN announced an 8-byte window.
    s.inject(
        200,
        seg("P.")
            .seq(PEER_ISS + 1)
            .ack(LOCAL_ISS + 1)
            .data(b"0123456789"),
    );
    s.expect(200, seg(".").ack(PEER_ISS + 9).win(0));
    assert_eq!(s.recv(210, 100), b"01234567");
}

#[test]
fn rfc9293_3_10_7_4_duplicate_data_is_acked_at_once() {
    let mut s = Script::established(&TcpConfig {
        quickack_segments: 1,
        ..plain()
    });
    s.inject(
        200,
        seg("P.").seq(PEER_ISS + 1).ack(LOCAL_ISS + 1).data(b"abcd"),
    );
    s.expect(200, seg(".").ack(PEER_ISS + 5));
    s.inject(
        300,
        seg("P.").seq(PEER_ISS + 1).ack(LOCAL_ISS + 1).data(b"abcd"),
    );
    s.expect(300, seg(".").ack(PEER_ISS + 5));
    assert_eq!(s.recv(310, 100), b"abcd", "delivered once");
}

#[test]
fn rfc5961_4_2_syn_in_established_gets_challenge_ack() {
    let mut s = Script::established(&plain());
    s.inject(200, seg("S").seq(PEER_ISS + 1));
    s.expect(200, seg(".").seq(LOCAL_ISS + 1).ack(PEER_ISS + 1));
    assert_eq!(s.tcb.state(), State::Established);
    s.inject(210, seg("S").seq(PEER_ISS + 900_000));
    s.expect(210, seg(".").ack(PEER_ISS + 1));
    assert_eq!(
        s.tcb.stats().challenge_acks,
        1,
        "out of window: plain ACK, not a challenge"
    );
}

#[test]
fn rfc5961_4_2_syn_ack_in_established_gets_challenge_ack() {
    let mut s = Script::established(&plain());
    s.inject(200, seg("S.").seq(PEER_ISS + 1).ack(LOCAL_ISS + 1));
    s.expect(200, seg(".").ack(PEER_ISS + 1));
    assert_eq!(s.tcb.stats().challenge_acks, 1);
    assert_eq!(s.tcb.state(), State::Established);
}

#[test]
fn rfc5961_7_challenge_acks_are_rate_limited_per_connection() {
    let mut s = Script::established(&TcpConfig {
        challenge_ack_limit: 3,
        ..plain()
    });
    for _ in 0..10 {
        s.inject(200, seg("S").seq(PEER_ISS + 1));
    }
    for _ in 0..3 {
        s.expect(200, seg(".").ack(PEER_ISS + 1));
    }
    s.expect_none();
    assert_eq!(s.tcb.stats().challenge_acks, 3);
    assert_eq!(s.tcb.stats().challenge_acks_suppressed, 7);
    // A new one-second budget.
    s.inject(1200, seg("S").seq(PEER_ISS + 1));
    s.expect(1200, seg(".").ack(PEER_ISS + 1));
}

#[test]
fn rfc5961_5_2_ack_of_unsent_data_gets_challenge_and_is_dropped() {
    let mut s = Script::established(&quick());
    s.inject(
        200,
        seg("P.")
            .seq(PEER_ISS + 1)
            .ack(LOCAL_ISS + 5000)
            .data(b"bogus"),
    );
    s.expect(200, seg(".").seq(LOCAL_ISS + 1).ack(PEER_ISS + 1));
    assert_eq!(
        s.tcb.recv_queue_len(),
        0,
        "the text of a segment with a bad ACK is dropped"
    );
    assert_eq!(s.tcb.stats().ack_too_new, 1);
}

#[test]
fn rfc5961_5_2_too_old_ack_gets_challenge_and_is_dropped() {
    let mut s = Script::established(&quick());
    // MAX.SND.WND is 65535: an ACK 100000 below SND.UNA is too old.
    s.inject(
        200,
        seg("P.")
            .seq(PEER_ISS + 1)
            .ack((LOCAL_ISS + 1).wrapping_sub(100_000))
            .data(b"bogus"),
    );
    s.expect(200, seg(".").ack(PEER_ISS + 1));
    assert_eq!(s.tcb.recv_queue_len(), 0);
    assert_eq!(s.tcb.stats().ack_too_old, 1);
}

#[test]
fn rfc5961_5_2_old_but_plausible_ack_still_delivers_text() {
    let mut s = Script::established(&TcpConfig {
        quickack_segments: 16,
        ..plain()
    });
    s.inject(
        200,
        seg("P.").seq(PEER_ISS + 1).ack(LOCAL_ISS - 10).data(b"ok"),
    );
    s.expect(200, seg(".").ack(PEER_ISS + 3));
    assert_eq!(s.recv(210, 10), b"ok");
}

#[test]
fn rfc9293_3_10_7_4_fifth_segment_without_ack_is_dropped() {
    let mut s = Script::established(&quick());
    s.inject(200, seg("P").seq(PEER_ISS + 1).data(b"noack"));
    s.expect_none();
    assert_eq!(s.tcb.recv_queue_len(), 0);
    assert_eq!(s.tcb.stats().no_ack_dropped, 1);
}

#[test]
fn rfc9293_3_10_7_4_sixth_urgent_data_is_ordinary_data() {
    let mut s = Script::established(&TcpConfig {
        quickack_segments: 4,
        ..plain()
    });
    s.inject(
        200,
        seg("PU.")
            .seq(PEER_ISS + 1)
            .ack(LOCAL_ISS + 1)
            .data(b"urgent"),
    );
    s.expect(200, seg(".").ack(PEER_ISS + 7));
    assert_eq!(s.recv(210, 10), b"urgent");
}

#[test]
fn rfc9293_3_10_7_4_eighth_fin_moves_established_to_close_wait() {
    let mut s = Script::established(&plain());
    s.inject(200, seg("F.").seq(PEER_ISS + 1).ack(LOCAL_ISS + 1));
    s.expect(200, seg(".").ack(PEER_ISS + 2));
    assert_eq!(s.tcb.state(), State::CloseWait);
    let mut b = [0u8; 4];
    assert_eq!(s.tcb.recv(&mut b), Ok(0), "EOF");
    assert!(s.tcb.is_readable());
    assert_eq!(s.tcb.send(b"still"), Ok(5), "half-close: we may still send");
}

#[test]
fn rfc9293_3_10_7_4_eighth_fin_with_data_delivers_data_then_eof() {
    let mut s = Script::established(&plain());
    s.inject(
        200,
        seg("FP.").seq(PEER_ISS + 1).ack(LOCAL_ISS + 1).data(b"bye"),
    );
    s.expect(200, seg(".").ack(PEER_ISS + 5));
    assert_eq!(s.recv(210, 10), b"bye");
    assert_eq!(s.recv(210, 10), b"");
}

#[test]
fn rfc9293_3_10_7_4_eighth_out_of_order_fin_waits_for_the_gap() {
    let mut s = Script::established(&quick());
    s.inject(200, seg("F.").seq(PEER_ISS + 4).ack(LOCAL_ISS + 1));
    s.expect(200, seg(".").ack(PEER_ISS + 1));
    assert_eq!(s.tcb.state(), State::Established);
    s.inject(
        210,
        seg("P.").seq(PEER_ISS + 1).ack(LOCAL_ISS + 1).data(b"abc"),
    );
    s.expect(210, seg(".").ack(PEER_ISS + 5));
    assert_eq!(s.tcb.state(), State::CloseWait);
}

#[test]
fn rfc9293_3_10_7_4_retransmitted_fin_is_acked_again() {
    let mut s = Script::established(&plain());
    s.inject(200, seg("F.").seq(PEER_ISS + 1).ack(LOCAL_ISS + 1));
    s.expect(200, seg(".").ack(PEER_ISS + 2));
    s.inject(400, seg("F.").seq(PEER_ISS + 1).ack(LOCAL_ISS + 1));
    s.expect(400, seg(".").ack(PEER_ISS + 2));
    assert_eq!(s.tcb.state(), State::CloseWait);
}

#[test]
fn rfc9293_3_10_7_4_zero_window_still_accepts_ack_and_fin() {
    let mut s = Script::established(&TcpConfig {
        recv_buffer: 4,
        ..quick()
    });
    s.inject(
        200,
        seg("P.").seq(PEER_ISS + 1).ack(LOCAL_ISS + 1).data(b"full"),
    );
    s.send(210, b"data");
    // The delayed ACK rides on our data.
    s.expect(
        210,
        seg("P.").seq(LOCAL_ISS + 1).ack(PEER_ISS + 5).win(0).len(4),
    );
    // Zero receive window: a data segment at RCV.NXT is not acceptable, but its ACK is used.
    s.inject(
        250,
        seg("P.").seq(PEER_ISS + 5).ack(LOCAL_ISS + 5).data(b"x"),
    );
    s.expect(250, seg(".").ack(PEER_ISS + 5).win(0));
    assert_eq!(s.tcb.send_queue_len(), 0, "the ACK freed our send buffer");
    s.inject(260, seg("F.").seq(PEER_ISS + 5).ack(LOCAL_ISS + 5));
    s.expect(260, seg(".").ack(PEER_ISS + 6));
    assert_eq!(s.tcb.state(), State::CloseWait);
}

#[test]
fn rfc5681_4_2_out_of_order_segment_gets_immediate_duplicate_ack() {
    let mut s = Script::established(&quick());
    s.inject(
        200,
        seg("P.").seq(PEER_ISS + 1001).ack(LOCAL_ISS + 1).len(500),
    );
    s.expect(200, seg(".").ack(PEER_ISS + 1));
    s.inject(
        201,
        seg("P.").seq(PEER_ISS + 1501).ack(LOCAL_ISS + 1).len(500),
    );
    s.expect(201, seg(".").ack(PEER_ISS + 1));
    // Filling the hole is acknowledged at once, cumulatively.
    s.inject(
        202,
        seg("P.").seq(PEER_ISS + 1).ack(LOCAL_ISS + 1).len(1000),
    );
    s.expect(202, seg(".").ack(PEER_ISS + 2001));
    assert_eq!(s.recv(210, 5000).len(), 2000);
    assert_eq!(s.tcb.stats().ooo_bytes, 1000);
}

#[test]
fn rfc2018_sack_blocks_describe_out_of_order_data_latest_first() {
    let cfg = TcpConfig {
        sack: true,
        quickack_segments: 0,
        ..plain()
    };
    let mut s = Script::established_with(
        &cfg,
        seg("S.")
            .seq(PEER_ISS)
            .ack(LOCAL_ISS + 1)
            .mss(1460)
            .sack_perm(true),
    );
    let b = PEER_ISS + 1;
    s.inject(200, seg(".").seq(b + 100).ack(LOCAL_ISS + 1).len(100));
    s.expect(200, seg(".").ack(b).sack(&[(b + 100, b + 200)]));
    s.inject(201, seg(".").seq(b + 300).ack(LOCAL_ISS + 1).len(100));
    s.expect(
        201,
        seg(".")
            .ack(b)
            .sack(&[(b + 300, b + 400), (b + 100, b + 200)]),
    );
    s.inject(202, seg(".").seq(b + 200).ack(LOCAL_ISS + 1).len(100));
    s.expect(202, seg(".").ack(b).sack(&[(b + 100, b + 400)]));
    s.inject(203, seg(".").seq(b).ack(LOCAL_ISS + 1).len(100));
    s.expect(203, seg(".").ack(b + 400).sack(&[]));
}

#[test]
fn rfc2018_no_sack_blocks_unless_permitted() {
    let mut s = Script::established(&TcpConfig {
        sack: true,
        quickack_segments: 0,
        ..plain()
    });
    s.inject(
        200,
        seg(".").seq(PEER_ISS + 101).ack(LOCAL_ISS + 1).len(100),
    );
    s.expect(200, seg(".").ack(PEER_ISS + 1).sack(&[]));
}

#[test]
fn ooo_queue_is_bounded_by_ranges_and_bytes() {
    let cfg = TcpConfig {
        ooo_max_ranges: 2,
        ooo_max_bytes: 250,
        quickack_segments: 0,
        ..plain()
    };
    let mut s = Script::established(&cfg);
    let b = PEER_ISS + 1;
    s.inject(200, seg(".").seq(b + 100).ack(LOCAL_ISS + 1).len(100));
    s.inject(200, seg(".").seq(b + 300).ack(LOCAL_ISS + 1).len(100));
    s.inject(200, seg(".").seq(b + 500).ack(LOCAL_ISS + 1).len(10));
    s.inject(200, seg(".").seq(b + 200).ack(LOCAL_ISS + 1).len(100));
    let st = s.tcb.stats();
    // A third range above the others is refused; data below the highest range that
    // would pass the byte bound makes room by forgetting that range (Linux's
    // tcp_prune_ofo_queue: what lies nearer RCV.NXT fills the hole first).
    assert_eq!(
        st.ooo_dropped, 1,
        "a third range above the others is refused"
    );
    assert_eq!(st.ooo_pruned, 1, "the byte bound forgot the highest range");
    assert_eq!(st.ooo_bytes, 300);
    s.inject(200, seg(".").seq(b).ack(LOCAL_ISS + 1).len(100));
    assert_eq!(
        s.tcb.recv_queue_len(),
        300,
        "the hole and the ranges kept below the forgotten one are delivered"
    );
}

#[test]
fn rfc9293_3_10_7_4_seventh_text_after_fin_is_ignored() {
    let mut s = Script::established(&plain());
    s.inject(200, seg("F.").seq(PEER_ISS + 1).ack(LOCAL_ISS + 1));
    s.expect(200, seg(".").ack(PEER_ISS + 2));
    s.inject(
        210,
        seg("P.")
            .seq(PEER_ISS + 2)
            .ack(LOCAL_ISS + 1)
            .data(b"after fin"),
    );
    assert_eq!(s.tcb.recv_queue_len(), 0);
    assert_eq!(s.tcb.state(), State::CloseWait);
}

#[test]
fn rfc9293_3_10_7_4_fin_on_handshake_ack_goes_to_close_wait() {
    let mut s = Script::server(&plain(), seg("S").seq(PEER_ISS).mss(1460));
    s.expect(0, seg("S.").seq(LOCAL_ISS));
    s.inject(10, seg("F.").seq(PEER_ISS + 1).ack(LOCAL_ISS + 1));
    s.expect(10, seg(".").seq(LOCAL_ISS + 1).ack(PEER_ISS + 2));
    assert_eq!(s.tcb.state(), State::CloseWait);
}

#[test]
fn rfc5961_3_2_inexact_rst_in_syn_received_gets_challenge_ack() {
    let mut s = Script::server(&plain(), seg("S").seq(PEER_ISS).mss(1460));
    s.expect(0, seg("S."));
    s.inject(10, seg("R").seq(PEER_ISS + 50));
    s.expect(10, seg(".").seq(LOCAL_ISS + 1).ack(PEER_ISS + 1));
    assert_eq!(s.tcb.state(), State::SynReceived);
}

#[test]
fn rfc5961_4_2_syn_with_new_sequence_in_syn_received_gets_challenge_ack() {
    let mut s = Script::server(&plain(), seg("S").seq(PEER_ISS).mss(1460));
    s.expect(0, seg("S."));
    s.inject(10, seg("S").seq(PEER_ISS + 10));
    s.expect(10, seg(".").ack(PEER_ISS + 1));
    assert_eq!(s.tcb.stats().challenge_acks, 1);
}

#[test]
fn rfc7323_2_3_our_window_is_scaled_after_the_handshake() {
    let cfg = TcpConfig {
        window_scaling: true,
        ..plain()
    };
    let mut s = Script::client(&cfg);
    // 256 KiB buffer: shift 3; the SYN itself carries the unscaled 65535.
    s.expect(0, seg("S").ws(3).win(65535));
    s.inject(
        100,
        seg("S.").seq(PEER_ISS).ack(LOCAL_ISS + 1).mss(1460).ws(0),
    );
    s.expect(100, seg(".").win(32768));
    // Without the peer's option, no scaling in either direction.
    let mut s = Script::client(&cfg);
    s.expect(0, seg("S"));
    s.inject(100, seg("S.").seq(PEER_ISS).ack(LOCAL_ISS + 1).mss(1460));
    s.expect(100, seg(".").win(65535));
}

#[test]
fn rfc9293_3_8_6_2_2_advertised_right_edge_never_moves_left() {
    let mut s = Script::established(&TcpConfig {
        recv_buffer: 10_000,
        quickack_segments: 100,
        ..plain()
    });
    let mut right = PEER_ISS + 1 + 10_000;
    for i in 0..9u32 {
        s.inject(
            200,
            seg(".")
                .seq(PEER_ISS + 1 + i * 1000)
                .ack(LOCAL_ISS + 1)
                .len(1000),
        );
        let (r, _) = s.expect(200, seg("."));
        let edge = r.ack_number + u32::from(r.window_len);
        assert!(edge >= right, "window shrank: {edge} < {right}");
        right = edge;
    }
}

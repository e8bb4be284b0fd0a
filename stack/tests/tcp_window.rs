//! Flow control: RFC 9293 §3.8.6 windows, zero-window probing (§3.8.6.1), silly window
//! syndrome avoidance on both sides (RFC 1122 §4.2.3.3 and §4.2.3.4), window updates.

mod tcp_support;

use surge_stack::tcp::{State, TcpConfig, TcpError};
use tcp_support::plain;
use tcp_support::script::{LOCAL_ISS, PEER_ISS, Script, seg};

const D: u32 = LOCAL_ISS + 1;
const P: u32 = PEER_ISS + 1;

#[test]
fn rfc9293_3_8_6_send_window_limits_output() {
    let cfg = TcpConfig {
        nodelay: true,
        ..plain()
    };
    let mut s = Script::established_with(&cfg, seg("S.").seq(PEER_ISS).ack(D).win(1000).mss(1460));
    s.send(200, &[1u8; 3000]);
    s.expect(200, seg(".").seq(D).len(1000));
    s.expect_none();
    s.inject(250, seg(".").seq(P).ack(D + 1000).win(2000));
    s.expect(250, seg(".").seq(D + 1000).len(1460));
    s.expect(250, seg("P.").seq(D + 2460).len(540));
}

#[test]
fn rfc9293_3_8_6_1_zero_window_probes_back_off() {
    let mut s = Script::established(&plain());
    s.inject(150, seg(".").seq(P).ack(D).win(0));
    s.send(200, b"blocked");
    s.expect_none();
    // Persist timer: RTO (300 ms) then doubling; probes are SEG.SEQ = SND.UNA - 1, no data.
    s.expect(500, seg(".").seq(D - 1).ack(P).len(0));
    s.inject(510, seg(".").seq(P).ack(D).win(0));
    s.expect(1100, seg(".").seq(D - 1).len(0));
    s.inject(1110, seg(".").seq(P).ack(D).win(0));
    s.expect(2300, seg(".").seq(D - 1).len(0));
    assert_eq!(s.tcb.stats().window_probes, 3);
    assert_eq!(
        s.tcb.state(),
        State::Established,
        "a peer that answers probes is never dropped"
    );
    // The window opens: data flows at once.
    s.inject(2400, seg(".").seq(P).ack(D).win(1000));
    s.expect(2400, seg("P.").seq(D).data(b"blocked"));
}

/// After an RTO, go-back-N pulls SND.NXT back to SND.UNA; when the peer then acknowledges
/// the retransmission and closes its window, SND.UNA = SND.NXT < SND.MAX, and the next RTO
/// finds nothing it may send. Only the persist timer can then learn that the window
/// reopened (the peer's update may be lost): it counts "nothing in flight" from SND.NXT.
/// (Counted from SND.MAX, neither timer ran again and the connection waited forever.)
#[test]
fn rfc9293_3_8_6_1_zero_window_after_a_timeout_is_probed() {
    let cfg = TcpConfig {
        nodelay: true,
        ..plain()
    };
    let mut s = Script::established(&cfg);
    s.send(200, &[7u8; 2000]);
    s.expect(200, seg(".").seq(D).len(1460));
    s.expect(200, seg("P.").seq(D + 1460).len(540));
    // Nothing is acknowledged: the RTO retransmits from SND.UNA (go-back-N).
    let (r, p) = s.expect_next();
    assert_eq!((r.seq_number, p.len()), (D, 1460), "the retransmission");
    // The retransmission is acknowledged with the window closed.
    let t = s.now_ms() + 10;
    s.inject(t, seg(".").seq(P).ack(D + 1460).win(0));
    // From here on only window probes go out (SEG.SEQ = SND.UNA - 1, no data).
    for _ in 0..3 {
        let (r, p) = s.expect_next();
        assert_eq!((r.seq_number, p.len()), (D + 1460 - 1, 0), "a window probe");
    }
    assert!(s.tcb.stats().window_probes >= 3);
    // The probe's answer opens the window: the rest goes out.
    let t = s.now_ms() + 10;
    s.inject(t, seg(".").seq(P).ack(D + 1460).win(1000));
    s.expect(t, seg("P.").seq(D + 1460).len(540));
}

#[test]
fn rfc9293_3_8_6_1_zero_window_forever_keeps_probing_with_capped_interval() {
    let mut s = Script::established(&TcpConfig {
        rto_max: std::time::Duration::from_secs(2),
        ..plain()
    });
    s.inject(150, seg(".").seq(P).ack(D).win(0));
    s.send(200, b"x");
    let mut t = 200;
    for _ in 0..50 {
        let (r, _) = s.expect_next();
        assert_eq!(r.seq_number, D - 1);
        s.inject(s.now_ms(), seg(".").seq(P).ack(D).win(0));
        t = s.now_ms();
    }
    assert!(
        t < 200 + 50 * 2000 + 5000,
        "probe interval capped at rto_max"
    );
    assert_eq!(s.tcb.send_queue_len(), 1, "memory does not grow");
}

#[test]
fn rfc9293_3_8_6_1_unanswered_probes_eventually_time_out() {
    let mut s = Script::established(&TcpConfig {
        data_retries: 3,
        ..plain()
    });
    s.inject(150, seg(".").seq(P).ack(D).win(0));
    s.send(200, b"x");
    s.expect(500, seg(".").seq(D - 1));
    s.expect(1100, seg(".").seq(D - 1));
    s.expect(2300, seg(".").seq(D - 1));
    s.advance(4700);
    assert_eq!(s.tcb.error(), Some(TcpError::TimedOut));
}

#[test]
fn rfc9293_3_8_6_1_zero_window_probe_is_answered_with_window() {
    let mut s = Script::established(&TcpConfig {
        recv_buffer: 100,
        quickack_segments: 0,
        ..plain()
    });
    s.inject(200, seg("P.").seq(P).ack(D).len(100));
    s.expect(240, seg(".").ack(P + 100).win(0));
    // A probe at RCV.NXT - 1 is unacceptable: answered with an ACK showing the window.
    s.inject(500, seg(".").seq(P + 99).ack(D));
    s.expect(500, seg(".").ack(P + 100).win(0));
    // A 1-byte probe at RCV.NXT (BSD style) is also answered, its byte not taken.
    s.inject(600, seg(".").seq(P + 100).ack(D).len(1));
    s.expect(600, seg(".").ack(P + 100).win(0));
    assert_eq!(s.tcb.recv_queue_len(), 100);
}

#[test]
fn rfc9293_3_8_6_2_window_update_after_read_opens_zero_window() {
    let mut s = Script::established(&TcpConfig {
        recv_buffer: 4000,
        quickack_segments: 0,
        ..plain()
    });
    s.inject(200, seg(".").seq(P).ack(D).len(1460));
    s.inject(200, seg(".").seq(P + 1460).ack(D).len(1460));
    s.expect(200, seg(".").ack(P + 2920).win(1080));
    s.inject(210, seg("P.").seq(P + 2920).ack(D).len(1080));
    s.expect(250, seg(".").ack(P + 4000).win(0));
    assert_eq!(s.recv(300, 4000).len(), 4000);
    s.expect(300, seg(".").ack(P + 4000).win(4000));
}

#[test]
fn rfc1122_4_2_3_3_receiver_does_not_advertise_small_window_increases() {
    let mut s = Script::established(&TcpConfig {
        recv_buffer: 4000,
        quickack_segments: 0,
        ..plain()
    });
    s.inject(200, seg(".").seq(P).ack(D).len(1460));
    s.inject(200, seg(".").seq(P + 1460).ack(D).len(1460));
    s.expect(200, seg(".").ack(P + 2920).win(1080));
    s.inject(210, seg("P.").seq(P + 2920).ack(D).len(1080));
    s.expect(250, seg(".").ack(P + 4000).win(0));
    // Reading 100 bytes frees less than min(RCV.BUFF/2, MSS): no update, window stays 0.
    assert_eq!(s.recv(300, 100).len(), 100);
    s.expect_none();
    s.inject(400, seg(".").seq(P + 3999).ack(D));
    s.expect(400, seg(".").ack(P + 4000).win(0));
    // Reading 1500 more frees 1600 >= 1460: the window reopens.
    assert_eq!(s.recv(500, 1500).len(), 1500);
    s.expect(500, seg(".").ack(P + 4000).win(1600));
}

#[test]
fn rfc1122_4_2_3_4_sender_avoids_silly_window_then_override_timer_sends() {
    let mut s = Script::established(&plain());
    // The peer had a 65535 window, now only 300 bytes: below MSS and below half the max.
    s.inject(150, seg(".").seq(P).ack(D).win(300));
    s.send(200, &[5u8; 2000]);
    s.expect_none();
    // The persist/override timer forces out what fits.
    s.expect(500, seg(".").seq(D).len(300));
}

#[test]
fn rfc1122_4_2_3_4_sender_sends_when_half_the_max_window_fits() {
    let mut s = Script::established(&plain());
    s.inject(150, seg(".").seq(P).ack(D).win(40000));
    s.inject(160, seg(".").seq(P).ack(D).win(1000));
    // max window was 65535: 1000 < 32767, held back.
    s.send(200, &[0u8; 5000]);
    s.expect_none();
    s.inject(210, seg(".").seq(P).ack(D).win(1460));
    s.expect(210, seg(".").seq(D).len(1460));
}

#[test]
fn rfc9293_3_10_7_4_old_window_updates_are_ignored() {
    let cfg = TcpConfig {
        nodelay: true,
        ..plain()
    };
    let mut s = Script::established_with(&cfg, seg("S.").seq(PEER_ISS).ack(D).win(1000).mss(1460));
    // A newer segment (SND.WL1 = P + 100) keeps the window at 1000 ...
    s.inject(150, seg("P.").seq(P + 100).ack(D).win(1000).len(10));
    s.expect(150, seg(".").ack(P));
    // ... and a reordered older one (SEG.SEQ < SND.WL1) must not open it to 65535.
    s.inject(151, seg(".").seq(P).ack(D).win(65535));
    s.expect_none();
    s.send(200, &[0u8; 3000]);
    s.expect(200, seg(".").seq(D).len(1000));
    s.expect_none();
}

#[test]
fn send_buffer_full_would_block_and_frees_on_ack() {
    let mut s = Script::established(&TcpConfig {
        send_buffer: 1000,
        ..plain()
    });
    assert_eq!(s.send(200, &[0u8; 1500]), 1000);
    assert_eq!(s.tcb.send(b"x"), Err(TcpError::WouldBlock));
    assert!(!s.tcb.is_writable());
    s.expect(200, seg("P.").len(1000));
    s.inject(250, seg(".").seq(P).ack(D + 400));
    assert!(s.tcb.is_writable());
    assert_eq!(s.send(260, &[0u8; 1500]), 400);
}

#[test]
fn recv_on_empty_buffer_would_block() {
    let mut s = Script::established(&plain());
    let mut b = [0u8; 10];
    assert_eq!(s.tcb.recv(&mut b), Err(TcpError::WouldBlock));
    assert!(!s.tcb.is_readable());
}

//! Retransmission (RFC 6298), congestion control (RFC 5681, RFC 6582 NewReno), restart after
//! idle (RFC 5681 §4.1) and the user timeout (RFC 5482).

mod tcp_support;

use core::time::Duration;
use surge_stack::tcp::{State, TcpConfig, TcpError};
use tcp_support::plain;
use tcp_support::script::{LOCAL_ISS, PEER_ISS, Script, seg};

const MSS: u32 = 1460;
const D: u32 = LOCAL_ISS + 1;

fn ack(n: u32) -> tcp_support::script::Seg {
    seg(".").seq(PEER_ISS + 1).ack(n)
}

#[test]
fn rfc6298_5_rto_expiry_retransmits_with_backoff() {
    let mut s = Script::established(&plain());
    s.send(200, b"hello");
    s.expect(200, seg("P.").seq(D).data(b"hello"));
    // RTO = 300 ms from the handshake sample; doubled on each expiry (RFC 6298 §5.5).
    s.expect(500, seg("P.").seq(D).data(b"hello"));
    s.expect(1100, seg("P.").seq(D).data(b"hello"));
    s.expect(2300, seg("P.").seq(D).data(b"hello"));
    assert_eq!(s.tcb.stats().rto_expirations, 3);
    assert_eq!(s.tcb.stats().retransmits, 3);
}

#[test]
fn rfc6298_5_data_retries_exhausted_gives_etimedout() {
    let mut s = Script::established(&TcpConfig {
        data_retries: 3,
        ..plain()
    });
    s.send(200, b"x");
    for t in [200, 500, 1100, 2300] {
        s.expect(t, seg("P.").seq(D).len(1));
    }
    s.expect_none_until(4699);
    assert_eq!(s.tcb.state(), State::Established);
    s.advance(4700);
    assert_eq!(s.tcb.state(), State::Closed);
    assert_eq!(s.tcb.error(), Some(TcpError::TimedOut));
    assert_eq!(s.tcb.send(b"y"), Err(TcpError::TimedOut));
    s.expect_none();
}

#[test]
fn rfc6298_2_5_backoff_capped_at_rto_max() {
    let mut s = Script::established(&TcpConfig {
        rto_max: Duration::from_millis(1000),
        ..plain()
    });
    s.send(200, b"x");
    for t in [200, 500, 1100, 2100, 3100, 4100] {
        s.expect(t, seg("P.").seq(D).len(1));
    }
}

#[test]
fn rfc6298_2_4_rto_never_below_minimum() {
    let mut s = Script::established_with(&plain(), seg("S.").seq(PEER_ISS).ack(D).mss(1460));
    // Handshake RTT was 100 ms. Fast ACKs (1 ms) pull SRTT down; RTO stays >= 200 ms.
    for i in 0..20u32 {
        let t = 200 + u64::from(i) * 10;
        s.send(t, b"a");
        s.expect(t, seg("P.").seq(D + i).len(1));
        s.inject(t + 1, ack(D + i + 1));
    }
    assert!(s.tcb.stats().srtt < Duration::from_millis(20));
    assert_eq!(s.tcb.stats().rto, Duration::from_millis(200));
}

#[test]
fn rfc6298_2_3_rtt_sample_updates_srtt_and_rto() {
    let mut s = Script::established(&plain());
    s.send(200, b"abc");
    s.expect(200, seg("P."));
    s.inject(250, ack(D + 3));
    let st = s.tcb.stats();
    // SRTT = 7/8 * 100 + 1/8 * 50; RTTVAR = 3/4 * 50 + 1/4 * 50.
    assert_eq!(st.srtt, Duration::from_micros(93_750));
    assert_eq!(st.rttvar, Duration::from_millis(50));
    assert_eq!(st.rto, Duration::from_micros(293_750));
}

#[test]
fn rfc6298_3_karn_ack_of_retransmission_gives_no_sample() {
    let mut s = Script::established(&plain());
    s.send(200, b"abc");
    s.expect(200, seg("P."));
    s.expect(500, seg("P."));
    s.inject(900, ack(D + 3));
    assert_eq!(
        s.tcb.stats().srtt,
        Duration::from_millis(100),
        "ambiguous: no sample"
    );
}

#[test]
fn rfc6298_5_3_ack_of_new_data_restarts_timer() {
    let mut s = Script::established(&TcpConfig {
        nodelay: true,
        ..plain()
    });
    s.send(200, b"a");
    s.expect(200, seg("P.").seq(D));
    s.send(300, b"b");
    s.expect(300, seg("P.").seq(D + 1));
    s.inject(300, ack(D + 1));
    // The timer restarts at 300 with the new RTO (sample 100 ms: SRTT 100, RTTVAR 37.5),
    // not at 300 ms after the first send.
    assert_eq!(s.tcb.stats().rto, Duration::from_millis(250));
    s.expect_none_until(549);
    s.expect(550, seg("P.").seq(D + 1));
}

#[test]
fn rfc6298_5_2_all_acked_stops_timer() {
    let mut s = Script::established(&plain());
    s.send(200, b"a");
    s.expect(200, seg("P."));
    s.inject(210, ack(D + 1));
    assert_eq!(s.tcb.poll_at(), None);
    s.expect_none_until(60_000);
}

#[test]
fn rfc5681_3_1_rto_collapses_cwnd_and_goes_back_n() {
    let mut s = Script::established(&plain());
    s.send(200, &[1u8; 3 * 1460]);
    for i in 0..3 {
        s.expect(200, seg(".").seq(D + i * MSS).len(1460));
    }
    s.expect_none();
    // RTO: ssthresh = max(FlightSize / 2, 2 * SMSS) = 2920, cwnd = 1 SMSS.
    s.expect(500, seg(".").seq(D).len(1460));
    s.expect_none();
    assert_eq!(s.tcb.stats().cwnd, MSS);
    assert_eq!(s.tcb.stats().ssthresh, 2 * MSS);
    // Slow start from the ACK: the rest follows.
    s.inject(600, ack(D + MSS));
    s.expect(600, seg(".").seq(D + MSS).len(1460));
    s.expect(600, seg(".").seq(D + 2 * MSS).len(1460));
}

#[test]
fn rfc5681_3_1_initial_window_is_ten_segments() {
    let mut s = Script::established(&plain());
    s.send(200, &[0u8; 20 * 1460]);
    for i in 0..10 {
        s.expect(200, seg(".").seq(D + i * MSS).len(1460));
    }
    s.expect_none();
}

#[test]
fn rfc5681_3_1_slow_start_grows_cwnd_per_ack() {
    let mut s = Script::established(&TcpConfig {
        initial_window: 2,
        ..plain()
    });
    s.send(200, &[0u8; 10 * 1460]);
    s.expect(200, seg(".").seq(D).len(1460));
    s.expect(200, seg(".").seq(D + MSS).len(1460));
    s.expect_none();
    s.inject(300, ack(D + MSS));
    // ACK of one segment: cwnd 3 segments, 1 in flight -> two more.
    s.expect(300, seg(".").seq(D + 2 * MSS));
    s.expect(300, seg(".").seq(D + 3 * MSS));
    s.expect_none();
    assert_eq!(s.tcb.stats().cwnd, 3 * MSS);
}

fn five_segments_sent() -> Script {
    let mut s = Script::established(&plain());
    s.send(200, &[9u8; 5 * 1460]);
    for i in 0..5 {
        s.expect(200, seg(".").seq(D + i * MSS).len(1460));
    }
    // RTT sample 100 ms: SRTT 100, RTTVAR 37.5, RTO 250 ms.
    s.inject(300, ack(D + MSS));
    s
}

#[test]
fn rfc5681_3_2_third_duplicate_ack_triggers_fast_retransmit() {
    let mut s = five_segments_sent();
    s.inject(301, ack(D + MSS));
    s.inject(302, ack(D + MSS));
    s.expect_none();
    s.inject(303, ack(D + MSS));
    s.expect(303, seg(".").seq(D + MSS).len(1460));
    let st = s.tcb.stats();
    assert_eq!(st.fast_retransmits, 1);
    assert_eq!(st.dup_acks, 3);
    // RFC 6582: ssthresh = max(FlightSize/2, 2 SMSS) = 2920; cwnd = ssthresh + 3 SMSS.
    assert_eq!(st.ssthresh, 2 * MSS);
    assert_eq!(st.cwnd, 5 * MSS);
}

#[test]
fn rfc5681_2_ack_with_window_change_is_not_duplicate() {
    let mut s = five_segments_sent();
    for w in [60000, 61000, 62000] {
        s.inject(301, ack(D + MSS).win(w));
    }
    s.expect_none();
    assert_eq!(s.tcb.stats().dup_acks, 0);
}

#[test]
fn rfc5681_2_ack_carrying_data_is_not_duplicate() {
    let mut s = five_segments_sent();
    for i in 0..3 {
        s.inject(301, seg("P.").seq(PEER_ISS + 1 + i).ack(D + MSS).len(1));
    }
    assert_eq!(s.tcb.stats().dup_acks, 0);
    assert_eq!(s.tcb.stats().fast_retransmits, 0);
}

#[test]
fn rfc6582_3_2_dup_acks_in_recovery_inflate_cwnd_and_send_new_data() {
    let mut s = five_segments_sent();
    s.send(300, &[1u8; 10 * 1460]);
    // cwnd is still 10 segments after the ACK (5 of the 10 were used: window validation
    // grows it only up to twice the most in flight), 4 in flight: 6 new segments go out.
    for i in 5..11 {
        s.expect(300, seg(".").seq(D + i * MSS).len(1460));
    }
    s.expect_none();
    // RFC 3042: the first two duplicates each release one new segment.
    s.inject(301, ack(D + MSS));
    s.expect(301, seg(".").seq(D + 11 * MSS).len(1460));
    s.inject(302, ack(D + MSS));
    s.expect(302, seg(".").seq(D + 12 * MSS).len(1460));
    s.inject(303, ack(D + MSS));
    s.expect(303, seg(".").seq(D + MSS).len(1460));
    // Flight 12 segments: ssthresh 6, cwnd = ssthresh + 3 = 9 segments: nothing new.
    s.expect_none();
    for t in 304..=306 {
        s.inject(t, ack(D + MSS));
    }
    s.expect_none();
    // The 4th extra duplicate lifts cwnd to 13 segments: one new segment fits.
    s.inject(307, ack(D + MSS));
    s.expect(307, seg(".").seq(D + 13 * MSS).len(1460));
}

#[test]
fn rfc6582_3_2_partial_ack_retransmits_next_hole() {
    let mut s = five_segments_sent();
    for t in 301..=303 {
        s.inject(t, ack(D + MSS));
    }
    s.expect(303, seg(".").seq(D + MSS));
    // Partial ACK: covers the retransmission but not everything sent before recovery.
    s.inject(350, ack(D + 2 * MSS));
    s.expect(350, seg(".").seq(D + 2 * MSS).len(1460));
    assert_eq!(s.tcb.stats().fast_retransmits, 1, "no new recovery episode");
    // Full ACK ends recovery: cwnd = min(ssthresh, max(FlightSize, SMSS) + SMSS).
    s.inject(400, ack(D + 5 * MSS));
    assert_eq!(s.tcb.stats().cwnd, 2 * MSS);
    assert_eq!(s.tcb.poll_at(), None);
}

#[test]
fn rfc6582_4_no_fast_retransmit_for_dup_acks_after_timeout() {
    let mut s = five_segments_sent();
    s.expect(550, seg(".").seq(D + MSS).len(1460));
    // Duplicates of the old ACK after the RTO do not start a recovery (recover = snd_max).
    for t in 560..563 {
        s.inject(t, ack(D + MSS));
    }
    s.expect_none();
    assert_eq!(s.tcb.stats().fast_retransmits, 0);
}

#[test]
fn rfc5681_4_1_restart_after_idle_resets_cwnd_to_initial_window() {
    let cfg = TcpConfig {
        initial_window: 2,
        ..plain()
    };
    let mut s = Script::established(&cfg);
    s.send(200, &[0u8; 4 * 1460]);
    s.expect(200, seg(".").len(1460));
    s.expect(200, seg(".").len(1460));
    s.inject(300, ack(D + 2 * MSS));
    s.expect(300, seg(".").len(1460));
    s.expect(300, seg(".").len(1460));
    s.inject(400, ack(D + 4 * MSS));
    // The first round filled the window (+2 segments); the second used 2 of 4, and slow
    // start grows a window only up to twice the most in flight (Linux
    // `tcp_is_cwnd_limited`): 4 segments.
    assert_eq!(s.tcb.stats().cwnd, 4 * MSS);
    // Idle for far longer than the RTO: only the restart window goes out.
    s.send(10_000, &[0u8; 6 * 1460]);
    s.expect(10_000, seg(".").len(1460));
    s.expect(10_000, seg(".").len(1460));
    s.expect_none();
}

#[test]
fn rfc5681_4_1_restart_after_idle_can_be_disabled() {
    let cfg = TcpConfig {
        initial_window: 2,
        slow_start_after_idle: false,
        ..plain()
    };
    let mut s = Script::established(&cfg);
    s.send(200, &[0u8; 4 * 1460]);
    s.expect(200, seg(".").len(1460));
    s.expect(200, seg(".").len(1460));
    s.inject(300, ack(D + 2 * MSS));
    s.expect(300, seg(".").len(1460));
    s.expect(300, seg(".").len(1460));
    s.inject(400, ack(D + 4 * MSS));
    // The window kept over the idle period: 4 segments (as in the test above).
    s.send(10_000, &[0u8; 6 * 1460]);
    for _ in 0..4 {
        s.expect(10_000, seg(".").len(1460));
    }
    s.expect_none();
}

#[test]
fn rfc5482_user_timeout_aborts_unacknowledged_data() {
    let mut s = Script::established(&TcpConfig {
        user_timeout: Some(Duration::from_secs(2)),
        ..plain()
    });
    s.send(200, b"x");
    s.expect(200, seg("P."));
    s.expect(500, seg("P."));
    s.expect(1100, seg("P."));
    s.advance(2199);
    assert_eq!(s.tcb.state(), State::Established);
    s.advance(2200);
    assert_eq!(s.tcb.error(), Some(TcpError::TimedOut));
}

#[test]
fn rfc5482_user_timeout_restarts_on_progress() {
    let mut s = Script::established(&TcpConfig {
        user_timeout: Some(Duration::from_secs(2)),
        nodelay: true,
        ..plain()
    });
    s.send(200, b"x");
    s.expect(200, seg("P."));
    s.expect(500, seg("P."));
    s.send(1000, b"y");
    s.expect(1000, seg("P."));
    s.inject(1500, ack(D + 1));
    s.advance(3000);
    assert_eq!(
        s.tcb.state(),
        State::Established,
        "progress at 1.5 s moved the deadline to 3.5 s"
    );
    s.advance(3600);
    assert_eq!(s.tcb.error(), Some(TcpError::TimedOut));
}

#[test]
fn peer_acking_partial_segment_is_handled() {
    let mut s = Script::established(&plain());
    s.send(200, b"0123456789");
    s.expect(200, seg("P.").seq(D).len(10));
    s.inject(300, ack(D + 4));
    assert_eq!(s.tcb.send_queue_len(), 6);
    // The ACK does not cover the timed segment: no sample, RTO still 300 ms from the ACK.
    s.expect(600, seg("P.").seq(D + 4).data(b"456789"));
}

#[test]
fn rfc3042_limited_transmit_sends_new_data_on_first_two_dup_acks() {
    let mut s = Script::established(&TcpConfig {
        initial_window: 3,
        ..plain()
    });
    s.send(200, &[4u8; 8 * 1460]);
    for i in 0..3 {
        s.expect(200, seg(".").seq(D + i * MSS).len(1460));
    }
    s.expect_none();
    // The first segment is lost: duplicates for the 2nd and 3rd each release one new segment.
    s.inject(300, ack(D));
    s.expect(300, seg(".").seq(D + 3 * MSS).len(1460));
    s.inject(301, ack(D));
    s.expect(301, seg(".").seq(D + 4 * MSS).len(1460));
    // Their duplicates complete the three: fast retransmit instead of a timeout.
    s.inject(400, ack(D));
    s.expect(400, seg(".").seq(D).len(1460));
    assert_eq!(s.tcb.stats().fast_retransmits, 1);
    assert_eq!(s.tcb.stats().rto_expirations, 0);
}

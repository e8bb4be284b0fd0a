//! Opening connections: RFC 9293 §3.5 handshakes, §3.10.7.3 SYN-SENT rules, option
//! negotiation (RFC 9293 §3.7.1, RFC 7323, RFC 2018) and SYN retransmission (RFC 6298).

mod tcp_support;

use surge_stack::tcp::{State, TcpConfig, TcpError};
use tcp_support::pair::{LinkConfig, Pair};
use tcp_support::plain;
use tcp_support::script::{LOCAL_ISS, PEER_ISS, Script, seg};

#[test]
fn rfc9293_3_5_active_open_three_way_handshake() {
    let mut s = Script::client(&plain());
    assert_eq!(s.tcb.state(), State::SynSent);
    s.expect(
        0,
        seg("S")
            .seq(LOCAL_ISS)
            .ack(0)
            .mss(1460)
            .no_ws()
            .no_ts()
            .sack_perm(false),
    );
    s.inject(
        50,
        seg("S.")
            .seq(PEER_ISS)
            .ack(LOCAL_ISS + 1)
            .win(65535)
            .mss(1460),
    );
    s.expect(50, seg(".").seq(LOCAL_ISS + 1).ack(PEER_ISS + 1));
    assert_eq!(s.tcb.state(), State::Established);
    assert!(s.tcb.is_writable());
}

#[test]
fn rfc9293_3_5_passive_open_three_way_handshake() {
    let mut s = Script::server(&plain(), seg("S").seq(PEER_ISS).mss(1000));
    assert_eq!(s.tcb.state(), State::SynReceived);
    s.expect(0, seg("S.").seq(LOCAL_ISS).ack(PEER_ISS + 1).mss(1460));
    s.inject(10, seg(".").seq(PEER_ISS + 1).ack(LOCAL_ISS + 1));
    s.expect_none();
    assert_eq!(s.tcb.state(), State::Established);
    assert_eq!(
        s.tcb.send_mss(),
        1000,
        "RFC 9293 §3.7.1: send MSS is the peer's"
    );
}

#[test]
fn rfc9293_3_5_data_on_the_handshake_ack_is_accepted() {
    let mut s = Script::server(&plain(), seg("S").seq(PEER_ISS).mss(1460));
    s.expect(0, seg("S.").seq(LOCAL_ISS).ack(PEER_ISS + 1));
    s.inject(
        10,
        seg("P.")
            .seq(PEER_ISS + 1)
            .ack(LOCAL_ISS + 1)
            .data(b"GET /"),
    );
    assert_eq!(s.tcb.state(), State::Established);
    assert_eq!(s.recv(10, 100), b"GET /");
}

#[test]
fn rfc9293_3_7_1_default_mss_is_536_without_option() {
    let mut s = Script::server(&plain(), seg("S").seq(PEER_ISS).no_mss());
    s.expect(0, seg("S.").seq(LOCAL_ISS));
    assert_eq!(s.tcb.send_mss(), 536);
}

#[test]
fn rfc9293_3_7_1_tiny_mss_option_is_clamped_to_minimum() {
    let mut s = Script::server(&plain(), seg("S").seq(PEER_ISS).mss(1));
    s.expect(0, seg("S.").seq(LOCAL_ISS));
    assert_eq!(s.tcb.send_mss(), 48, "Linux tcp_min_snd_mss");
}

#[test]
fn rfc9293_3_7_1_mss_never_above_our_own() {
    let mut s = Script::server(&plain(), seg("S").seq(PEER_ISS).mss(9000));
    s.expect(0, seg("S.").seq(LOCAL_ISS).mss(1460));
    assert_eq!(s.tcb.send_mss(), 1460);
}

#[test]
fn rfc7323_syn_offers_all_options_by_default() {
    let mut s = Script::client(&TcpConfig::default());
    // The 6 MiB the receive buffer may autotune to needs shift 7 (RFC 7323 §2.3).
    s.expect(
        0,
        seg("S")
            .seq(LOCAL_ISS)
            .mss(1460)
            .ws(7)
            .sack_perm(true)
            .ts(0, 0)
            .win(65535),
    );
}

#[test]
fn rfc7323_2_2_synack_carries_options_only_if_offered() {
    let mut s = Script::server(&TcpConfig::default(), seg("S").seq(PEER_ISS).mss(1460));
    s.expect(0, seg("S.").seq(LOCAL_ISS).no_ws().no_ts().sack_perm(false));
    let mut s = Script::server(
        &TcpConfig::default(),
        seg("S")
            .seq(PEER_ISS)
            .mss(1460)
            .ws(7)
            .sack_perm(true)
            .ts(777, 0),
    );
    s.expect(0, seg("S.").seq(LOCAL_ISS).ws(7).sack_perm(true).ts(0, 777));
}

#[test]
fn rfc7323_2_2_window_scale_applies_after_handshake_not_on_syn() {
    let mut s = Script::established_with(
        &TcpConfig {
            timestamps: false,
            nodelay: true,
            ..TcpConfig::default()
        },
        seg("S.")
            .seq(PEER_ISS)
            .ack(LOCAL_ISS + 1)
            .win(1000)
            .mss(1460)
            .ws(2),
    );
    // SYN-ACK window 1000 is unscaled: only 1000 bytes may go out.
    s.send(200, &[7u8; 5000]);
    let (_, p) = s.expect(200, seg(".").seq(LOCAL_ISS + 1));
    assert_eq!(p.len(), 1000);
    s.expect_none();
    // Later windows are scaled by 4: 1000 << 2 = 4000 bytes.
    s.inject(
        300,
        seg(".").seq(PEER_ISS + 1).ack(LOCAL_ISS + 1001).win(1000),
    );
    s.expect(300, seg(".").seq(LOCAL_ISS + 1001).len(1460));
    s.expect(300, seg(".").seq(LOCAL_ISS + 2461).len(1460));
    s.expect(300, seg("P.").seq(LOCAL_ISS + 3921).len(1080));
}

#[test]
fn rfc7323_2_3_shift_above_14_is_used_as_14() {
    let mut s = Script::established_with(
        &TcpConfig {
            timestamps: false,
            initial_window: 40,
            ..TcpConfig::default()
        },
        seg("S.")
            .seq(PEER_ISS)
            .ack(LOCAL_ISS + 1)
            .win(1000)
            .mss(1460)
            .ws(15),
    );
    s.inject(150, seg(".").seq(PEER_ISS + 1).ack(LOCAL_ISS + 1).win(1));
    // 1 << 14 = 16384 bytes of window; cwnd (10 segments) is larger.
    s.send(200, &[0u8; 20000]);
    let mut total = 0;
    while s.pending() > 0 {
        total += s
            .expect(200, seg(".").seq(LOCAL_ISS + 1 + total as u32))
            .1
            .len();
    }
    // 16384 bytes of window: 11 full segments; sender SWS avoidance (RFC 1122 §4.2.3.4)
    // holds back the 324-byte remainder.
    assert_eq!(total, 11 * 1460);
}

#[test]
fn rfc9293_3_10_7_3_synack_with_bad_ack_gets_reset() {
    let mut s = Script::client(&plain());
    s.expect(0, seg("S").seq(LOCAL_ISS));
    s.inject(10, seg("S.").seq(PEER_ISS).ack(LOCAL_ISS + 77));
    s.expect(10, seg("R").seq(LOCAL_ISS + 77));
    assert_eq!(
        s.tcb.state(),
        State::SynSent,
        "the connection attempt goes on"
    );
}

#[test]
fn rfc9293_3_10_7_3_ack_of_iss_is_not_acceptable() {
    let mut s = Script::client(&plain());
    s.expect(0, seg("S").seq(LOCAL_ISS));
    s.inject(10, seg(".").seq(PEER_ISS).ack(LOCAL_ISS));
    s.expect(10, seg("R").seq(LOCAL_ISS));
}

#[test]
fn rfc9293_3_10_7_3_rst_with_acceptable_ack_refuses_connection() {
    let mut s = Script::client(&plain());
    s.expect(0, seg("S").seq(LOCAL_ISS));
    s.inject(10, seg("R.").seq(0).ack(LOCAL_ISS + 1));
    s.expect_none();
    assert_eq!(s.tcb.state(), State::Closed);
    assert_eq!(s.tcb.error(), Some(TcpError::ConnectionRefused));
    assert_eq!(s.tcb.send(b"x"), Err(TcpError::ConnectionRefused));
    assert_eq!(s.tcb.poll_at(), None, "no timers after close");
}

#[test]
fn rfc5961_3_2_rst_without_ack_in_syn_sent_is_ignored() {
    let mut s = Script::client(&plain());
    s.expect(0, seg("S").seq(LOCAL_ISS));
    s.inject(10, seg("R").seq(PEER_ISS));
    s.expect_none();
    assert_eq!(s.tcb.state(), State::SynSent);
}

#[test]
fn rfc9293_3_10_7_3_rst_with_bad_ack_is_ignored() {
    let mut s = Script::client(&plain());
    s.expect(0, seg("S").seq(LOCAL_ISS));
    s.inject(10, seg("R.").seq(0).ack(LOCAL_ISS + 5));
    s.expect_none();
    assert_eq!(s.tcb.state(), State::SynSent);
}

#[test]
fn rfc9293_3_10_7_3_segment_without_syn_or_rst_is_dropped() {
    let mut s = Script::client(&plain());
    s.expect(0, seg("S").seq(LOCAL_ISS));
    s.inject(10, seg("P.").seq(PEER_ISS).ack(LOCAL_ISS + 1).data(b"hi"));
    s.expect_none();
    assert_eq!(s.tcb.state(), State::SynSent);
}

#[test]
fn rfc6298_5_syn_retransmitted_with_exponential_backoff_then_etimedout() {
    let mut s = Script::client(&plain());
    s.expect(0, seg("S").seq(LOCAL_ISS));
    // RFC 6298 §2.1 initial RTO 1 s, doubled per retry (§5.5); 6 retries like Linux.
    for t in [1000, 3000, 7000, 15000, 31000, 63000] {
        s.expect(t, seg("S").seq(LOCAL_ISS).mss(1460));
    }
    s.expect_none_until(126_999);
    assert_eq!(s.tcb.state(), State::SynSent);
    s.advance(127_000);
    s.expect_none();
    assert_eq!(s.tcb.state(), State::Closed);
    assert_eq!(s.tcb.error(), Some(TcpError::TimedOut));
    assert_eq!(s.tcb.stats().retransmits, 6);
}

#[test]
fn rfc6298_syn_retries_are_configurable() {
    let mut s = Script::client(&TcpConfig {
        syn_retries: 1,
        ..plain()
    });
    s.expect(0, seg("S"));
    s.expect(1000, seg("S"));
    s.advance(3000);
    assert_eq!(s.tcb.error(), Some(TcpError::TimedOut));
}

#[test]
fn rfc6298_5_7_karn_no_rtt_sample_from_retransmitted_syn() {
    let mut s = Script::client(&plain());
    s.expect(0, seg("S"));
    s.expect(1000, seg("S"));
    s.inject(1050, seg("S.").seq(PEER_ISS).ack(LOCAL_ISS + 1).mss(1460));
    s.expect(1050, seg("."));
    assert_eq!(
        s.tcb.stats().srtt,
        core::time::Duration::ZERO,
        "ambiguous sample skipped"
    );
}

#[test]
fn rfc6298_5_7_rto_is_three_seconds_after_syn_loss() {
    let mut s = Script::client(&plain());
    s.expect(0, seg("S"));
    s.expect(1000, seg("S"));
    s.inject(1050, seg("S.").seq(PEER_ISS).ack(LOCAL_ISS + 1).mss(1460));
    s.expect(1050, seg("."));
    assert_eq!(s.tcb.stats().rto, core::time::Duration::from_secs(3));
    s.send(2000, b"x");
    s.expect(2000, seg("P.").seq(LOCAL_ISS + 1));
    s.expect(5000, seg("P.").seq(LOCAL_ISS + 1));
}

#[test]
fn rfc6298_rtt_sample_from_first_syn() {
    let s = Script::established(&plain());
    assert_eq!(s.tcb.stats().srtt, core::time::Duration::from_millis(100));
    assert_eq!(s.tcb.stats().rto, core::time::Duration::from_millis(300));
}

#[test]
fn rfc9293_3_5_synack_retransmitted_then_gives_up() {
    let mut s = Script::server(&plain(), seg("S").seq(PEER_ISS));
    s.expect(0, seg("S.").seq(LOCAL_ISS).ack(PEER_ISS + 1));
    for t in [1000, 3000, 7000, 15000, 31000] {
        s.expect(t, seg("S.").seq(LOCAL_ISS).ack(PEER_ISS + 1));
    }
    s.advance(63_000);
    assert_eq!(s.tcb.state(), State::Closed);
    assert_eq!(s.tcb.error(), Some(TcpError::TimedOut));
}

#[test]
fn rfc9293_3_5_retransmitted_syn_in_syn_received_resends_synack() {
    let mut s = Script::server(&plain(), seg("S").seq(PEER_ISS));
    s.expect(0, seg("S.").seq(LOCAL_ISS).ack(PEER_ISS + 1));
    s.inject(500, seg("S").seq(PEER_ISS));
    s.expect(500, seg("S.").seq(LOCAL_ISS).ack(PEER_ISS + 1));
}

#[test]
fn rfc9293_3_10_7_4_bad_ack_in_syn_received_gets_reset() {
    let mut s = Script::server(&plain(), seg("S").seq(PEER_ISS));
    s.expect(0, seg("S.").seq(LOCAL_ISS));
    s.inject(10, seg(".").seq(PEER_ISS + 1).ack(LOCAL_ISS + 500));
    s.expect(10, seg("R").seq(LOCAL_ISS + 500));
    assert_eq!(s.tcb.state(), State::SynReceived);
    s.inject(20, seg(".").seq(PEER_ISS + 1).ack(LOCAL_ISS));
    s.expect(20, seg("R").seq(LOCAL_ISS));
}

#[test]
fn rfc9293_3_10_7_4_rst_in_syn_received_from_passive_open_closes_quietly() {
    let mut s = Script::server(&plain(), seg("S").seq(PEER_ISS));
    s.expect(0, seg("S."));
    s.inject(10, seg("R").seq(PEER_ISS + 1));
    assert_eq!(s.tcb.state(), State::Closed);
    assert_eq!(
        s.tcb.error(),
        None,
        "passive open returns to LISTEN: nothing to report"
    );
}

#[test]
fn rfc9293_3_5_simultaneous_open_script() {
    let mut s = Script::client(&plain());
    s.expect(0, seg("S").seq(LOCAL_ISS));
    s.inject(10, seg("S").seq(PEER_ISS).mss(1460));
    assert_eq!(s.tcb.state(), State::SynReceived);
    s.expect(10, seg("S.").seq(LOCAL_ISS).ack(PEER_ISS + 1));
    s.inject(20, seg("S.").seq(PEER_ISS).ack(LOCAL_ISS + 1).mss(1460));
    assert_eq!(s.tcb.state(), State::Established);
    s.expect_none();
}

#[test]
fn rfc9293_3_5_simultaneous_open_two_endpoints() {
    use surge_stack::tcp::Tcb;
    use surge_stack::time::Instant;
    let cfg = TcpConfig::default();
    let mut a = Tcb::connect(tcp_support::client_tuple(), 100, Instant::ZERO, &cfg);
    let mut b = Tcb::connect(tcp_support::server_tuple(), 900, Instant::ZERO, &cfg);
    let mut buf = [0u8; 2000];
    let mut now = Instant::ZERO;
    for _ in 0..10 {
        now += core::time::Duration::from_millis(5);
        let mut ab = Vec::new();
        while let Some(t) = a.poll_transmit(now, &mut buf) {
            ab.push(t.repr);
        }
        let mut ba = Vec::new();
        while let Some(t) = b.poll_transmit(now, &mut buf) {
            ba.push(t.repr);
        }
        for r in ab {
            b.handle_segment(now, &r, &[]);
        }
        for r in ba {
            a.handle_segment(now, &r, &[]);
        }
    }
    assert_eq!(a.state(), State::Established);
    assert_eq!(b.state(), State::Established);
}

#[test]
fn rfc9293_3_10_1_send_before_established_would_block() {
    let mut s = Script::client(&plain());
    assert_eq!(s.tcb.send(b"x"), Err(TcpError::WouldBlock));
    let mut b = [0u8; 4];
    assert_eq!(s.tcb.recv(&mut b), Err(TcpError::WouldBlock));
}

#[test]
fn rfc9293_3_10_4_close_in_syn_sent_closes_without_rst() {
    let mut s = Script::client(&plain());
    s.expect(0, seg("S"));
    s.call(10, |t| t.close());
    s.expect_none();
    assert_eq!(s.tcb.state(), State::Closed);
}

#[test]
fn rfc9293_3_10_4_shutdown_in_syn_sent_sends_fin_after_handshake() {
    let mut s = Script::client(&plain());
    s.expect(0, seg("S"));
    s.call(10, |t| t.shutdown_write());
    s.inject(20, seg("S.").seq(PEER_ISS).ack(LOCAL_ISS + 1).mss(1460));
    assert_eq!(s.tcb.state(), State::FinWait1);
    s.expect(20, seg("F.").seq(LOCAL_ISS + 1).ack(PEER_ISS + 1));
}

#[test]
fn pair_handshake_and_small_exchange() {
    let mut p = Pair::new(
        &TcpConfig::default(),
        &TcpConfig::default(),
        LinkConfig::default(),
        1,
    );
    p.handshake();
    assert_eq!(p.client.send(b"hello").unwrap(), 5);
    p.drive_until(1000, core::time::Duration::from_secs(10), |p| {
        p.server().recv_queue_len() == 5
    });
    let mut b = [0u8; 16];
    assert_eq!(p.server().recv(&mut b).unwrap(), 5);
    assert_eq!(&b[..5], b"hello");
}

#[test]
fn rfc9293_3_10_7_3_text_and_fin_on_synack_are_processed() {
    let mut s = Script::client(&plain());
    s.expect(0, seg("S"));
    s.inject(
        10,
        seg("FS.")
            .seq(PEER_ISS)
            .ack(LOCAL_ISS + 1)
            .mss(1460)
            .data(b"banner"),
    );
    s.expect(10, seg(".").seq(LOCAL_ISS + 1).ack(PEER_ISS + 8));
    assert_eq!(s.tcb.state(), State::CloseWait);
    assert_eq!(s.recv(20, 100), b"banner");
    assert_eq!(s.recv(20, 100), b"");
}

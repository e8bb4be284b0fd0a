//! RFC 7323 timestamps (RTTM §4, PAWS §5), keepalive (RFC 1122 §4.2.3.6), path MTU
//! (RFC 1191) and ICMP soft errors (RFC 5927, RFC 1122 §4.2.3.9).

mod tcp_support;

use core::time::Duration;
use surge_stack::tcp::{IcmpUnreachable, KeepaliveConfig, State, TcpConfig, TcpError};
use tcp_support::plain;
use tcp_support::script::{LOCAL_ISS, PEER_ISS, Script, seg};

const D: u32 = LOCAL_ISS + 1;
const P: u32 = PEER_ISS + 1;

fn ts() -> Script {
    let cfg = TcpConfig {
        timestamps: true,
        quickack_segments: 16,
        ..plain()
    };
    let mut s = Script::client(&cfg);
    s.expect(0, seg("S").ts(0, 0));
    s.inject(100, seg("S.").seq(PEER_ISS).ack(D).mss(1460).ts(700, 0));
    s.expect(100, seg(".").seq(D).ack(P).ts(100, 700));
    s
}

#[test]
fn rfc7323_3_2_every_segment_carries_timestamps_echoing_ts_recent() {
    let mut s = ts();
    s.send(200, b"x");
    s.expect(200, seg("P.").ts(200, 700));
    s.inject(220, seg("P.").seq(P).ack(D + 1).ts(720, 200).len(3));
    s.expect(220, seg(".").ack(P + 3).ts(220, 720));
}

#[test]
fn rfc7323_3_2_no_timestamps_unless_both_syns_carry_them() {
    let cfg = TcpConfig {
        timestamps: true,
        ..plain()
    };
    let mut s = Script::established(&cfg);
    s.send(200, b"x");
    s.expect(200, seg("P.").no_ts());
}

#[test]
fn rfc7323_send_mss_accounts_for_timestamp_option() {
    let s = ts();
    assert_eq!(s.tcb.send_mss(), 1448);
}

#[test]
fn rfc7323_5_3_paws_drops_old_timestamp_and_acks() {
    let mut s = ts();
    s.inject(200, seg("P.").seq(P).ack(D).ts(600, 100).data(b"old"));
    s.expect(200, seg(".").ack(P).ts(200, 700));
    assert_eq!(s.tcb.recv_queue_len(), 0);
    assert_eq!(s.tcb.stats().paws_rejected, 1);
}

#[test]
fn rfc7323_5_3_paws_accepts_equal_and_newer_timestamps() {
    let mut s = ts();
    s.inject(200, seg("P.").seq(P).ack(D).ts(700, 100).data(b"a"));
    s.inject(200, seg("P.").seq(P + 1).ack(D).ts(701, 100).data(b"b"));
    assert_eq!(s.recv(210, 10), b"ab");
}

#[test]
fn rfc7323_5_3_paws_handles_timestamp_wraparound() {
    let cfg = TcpConfig {
        timestamps: true,
        ..plain()
    };
    let mut s = Script::client(&cfg);
    s.expect(0, seg("S"));
    s.inject(
        100,
        seg("S.").seq(PEER_ISS).ack(D).mss(1460).ts(u32::MAX - 5, 0),
    );
    s.expect(100, seg("."));
    s.inject(200, seg("P.").seq(P).ack(D).ts(3, 100).data(b"wrapped"));
    assert_eq!(s.recv(210, 10), b"wrapped", "3 is after 2^32 - 6");
}

#[test]
fn rfc7323_5_3_paws_does_not_apply_to_rst() {
    let mut s = ts();
    s.inject(200, seg("R").seq(P).ts(1, 0));
    assert_eq!(s.tcb.error(), Some(TcpError::ConnectionReset));
}

#[test]
fn rfc7323_4_3_ts_recent_only_from_segments_at_last_ack_sent() {
    let mut s = ts();
    // Out of order (beyond Last.ACK.sent): its TSval is not recorded.
    s.inject(200, seg("P.").seq(P + 10).ack(D).ts(900, 100).len(5));
    s.expect(200, seg(".").ack(P).ts(200, 700));
    s.inject(210, seg("P.").seq(P).ack(D).ts(800, 100).len(10));
    s.expect(210, seg(".").ack(P + 15).ts(210, 800));
}

#[test]
fn rfc7323_4_1_rttm_measures_retransmitted_segments_via_tsecr() {
    let mut s = ts();
    s.send(200, b"x");
    s.expect(200, seg("P.").ts(200, 700));
    s.expect(500, seg("P.").ts(500, 700));
    // The echo tells which transmission is acknowledged: RTT = 50 ms, no Karn ambiguity.
    s.inject(550, seg(".").seq(P).ack(D + 1).ts(800, 500));
    assert_eq!(s.tcb.stats().srtt, Duration::from_micros(93_750));
}

#[test]
fn rfc1122_4_2_3_6_keepalive_is_off_by_default() {
    let mut s = Script::established(&plain());
    s.expect_none_until(10_000_000);
    assert_eq!(s.tcb.poll_at(), None);
}

fn keepalive() -> Script {
    let ka = KeepaliveConfig {
        idle: Duration::from_secs(10),
        interval: Duration::from_secs(1),
        count: 3,
    };
    Script::established(&TcpConfig {
        keepalive: Some(ka),
        ..plain()
    })
}

#[test]
fn rfc1122_4_2_3_6_keepalive_probe_after_idle_and_answer_resets() {
    let mut s = keepalive();
    s.expect(10_100, seg(".").seq(D - 1).ack(P).len(0));
    s.inject(10_150, seg(".").seq(P).ack(D));
    s.expect(20_150, seg(".").seq(D - 1));
    assert_eq!(s.tcb.stats().keepalive_probes, 2);
    assert_eq!(s.tcb.state(), State::Established);
}

#[test]
fn rfc1122_4_2_3_6_unanswered_keepalives_drop_connection() {
    let mut s = keepalive();
    s.expect(10_100, seg(".").seq(D - 1));
    s.expect(11_100, seg(".").seq(D - 1));
    s.expect(12_100, seg(".").seq(D - 1));
    s.advance(13_099);
    assert_eq!(s.tcb.state(), State::Established);
    s.advance(13_100);
    assert_eq!(s.tcb.error(), Some(TcpError::TimedOut));
}

#[test]
fn rfc1122_4_2_3_6_keepalive_can_be_enabled_later() {
    let mut s = Script::established(&plain());
    s.call(5000, |t| {
        t.set_keepalive(Some(KeepaliveConfig {
            idle: Duration::from_secs(10),
            ..KeepaliveConfig::default()
        }))
    });
    // Idle is measured from the last segment received (100 ms).
    s.expect(10_100, seg(".").seq(D - 1));
}

#[test]
fn rfc1122_4_2_3_6_keepalive_waits_while_data_is_outstanding() {
    let mut s = keepalive();
    s.inject(9000, seg(".").seq(P).ack(D).win(0));
    s.send(9000, b"stuck");
    // Zero window: the persist timer, not keepalive, probes.
    let (r, _) = s.expect_next();
    assert_eq!(r.seq_number, D - 1);
    assert_eq!(s.tcb.stats().keepalive_probes, 0);
    assert_eq!(s.tcb.stats().window_probes, 1);
}

fn nodelay_with_data() -> Script {
    let mut s = Script::established(&TcpConfig {
        nodelay: true,
        ..plain()
    });
    s.send(200, &[3u8; 2000]);
    s.expect(200, seg(".").seq(D).len(1460));
    s.expect(200, seg("P.").seq(D + 1460).len(540));
    s
}

#[test]
fn rfc1191_frag_needed_lowers_mss_and_resends_smaller() {
    let mut s = nodelay_with_data();
    s.call(210, |t| t.handle_icmp_frag_needed(t_now(210), 1000, D));
    assert_eq!(s.tcb.send_mss(), 960);
    s.expect(210, seg(".").seq(D).len(960));
    s.expect(210, seg(".").seq(D + 960).len(960));
    s.expect(210, seg("P.").seq(D + 1920).len(80));
    assert_eq!(s.tcb.stats().pmtu_updates, 1);
    assert_eq!(s.tcb.stats().cwnd, 14600, "not treated as congestion");
}

fn t_now(ms: u64) -> surge_stack::time::Instant {
    surge_stack::time::Instant::from_millis(ms)
}

#[test]
fn rfc5927_4_1_icmp_quoting_sequence_not_in_flight_is_ignored() {
    let mut s = nodelay_with_data();
    s.call(210, |t| {
        t.handle_icmp_frag_needed(t_now(210), 1000, D + 5000)
    });
    s.call(210, |t| t.handle_icmp_frag_needed(t_now(210), 1000, D - 1));
    assert_eq!(s.tcb.send_mss(), 1460);
    assert_eq!(s.tcb.stats().icmp_ignored, 2);
    s.expect_none();
}

#[test]
fn rfc1191_6_3_frag_needed_never_raises_mss_and_bogus_mtu_ignored() {
    let mut s = nodelay_with_data();
    s.call(210, |t| t.handle_icmp_frag_needed(t_now(210), 9000, D));
    s.call(210, |t| t.handle_icmp_frag_needed(t_now(210), 20, D));
    assert_eq!(s.tcb.send_mss(), 1460);
    s.call(220, |t| t.handle_icmp_frag_needed(t_now(220), 576, D));
    assert_eq!(s.tcb.send_mss(), 536);
}

#[test]
fn rfc1191_frag_needed_with_tiny_mtu_clamped_to_minimum_mss() {
    let mut s = nodelay_with_data();
    s.call(210, |t| t.handle_icmp_frag_needed(t_now(210), 68, D));
    assert_eq!(s.tcb.send_mss(), 48);
}

#[test]
fn rfc5927_soft_error_is_reported_when_connection_times_out() {
    let mut s = Script::established(&TcpConfig {
        data_retries: 2,
        ..plain()
    });
    s.send(200, b"x");
    s.expect(200, seg("P."));
    s.call(210, |t| {
        t.handle_icmp_unreachable(t_now(210), IcmpUnreachable::Host, D)
    });
    assert_eq!(
        s.tcb.state(),
        State::Established,
        "soft error: the connection lives on"
    );
    s.advance(10_000);
    assert_eq!(s.tcb.error(), Some(TcpError::HostUnreachable));
}

#[test]
fn rfc1122_4_2_3_9_port_unreachable_is_soft_when_established() {
    let mut s = nodelay_with_data();
    s.call(210, |t| {
        t.handle_icmp_unreachable(t_now(210), IcmpUnreachable::Port, D)
    });
    assert_eq!(s.tcb.state(), State::Established);
}

#[test]
fn linux_port_unreachable_aborts_syn_sent() {
    let mut s = Script::client(&plain());
    s.expect(0, seg("S"));
    s.call(10, |t| {
        t.handle_icmp_unreachable(t_now(10), IcmpUnreachable::Port, LOCAL_ISS)
    });
    assert_eq!(s.tcb.state(), State::Closed);
    assert_eq!(s.tcb.error(), Some(TcpError::ConnectionRefused));
}

#[test]
fn rfc5927_network_unreachable_during_syn_sent_reported_on_timeout() {
    let mut s = Script::client(&TcpConfig {
        syn_retries: 1,
        ..plain()
    });
    s.expect(0, seg("S"));
    s.call(10, |t| {
        t.handle_icmp_unreachable(t_now(10), IcmpUnreachable::Network, LOCAL_ISS)
    });
    assert_eq!(s.tcb.state(), State::SynSent);
    s.advance(5000);
    assert_eq!(s.tcb.error(), Some(TcpError::NetworkUnreachable));
}

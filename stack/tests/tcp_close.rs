//! Closing: RFC 9293 §3.6 (active, passive, simultaneous close), §3.10.4 CLOSE,
//! TIME-WAIT (§3.10.7.4 eighth, 2*MSL) and its reuse (RFC 6191, Linux tcp_tw_reuse).

mod tcp_support;

use core::time::Duration;
use surge_stack::tcp::{State, TcpConfig, TcpError};
use surge_stack::wire::{TcpFlags, TcpRepr};
use tcp_support::plain;
use tcp_support::script::{LOCAL_ISS, PEER_ISS, Script, seg};

const D: u32 = LOCAL_ISS + 1;
const P: u32 = PEER_ISS + 1;

fn active_closed_to_fin_wait_2(cfg: &TcpConfig) -> Script {
    let mut s = Script::established(cfg);
    s.call(200, |t| t.close());
    assert_eq!(s.tcb.state(), State::FinWait1);
    s.expect(200, seg("F.").seq(D).ack(P));
    s.inject(250, seg(".").seq(P).ack(D + 1));
    assert_eq!(s.tcb.state(), State::FinWait2);
    s
}

#[test]
fn rfc9293_3_6_active_close_through_time_wait() {
    let mut s = active_closed_to_fin_wait_2(&plain());
    s.inject(300, seg("F.").seq(P).ack(D + 1));
    s.expect(300, seg(".").seq(D + 1).ack(P + 1));
    assert_eq!(s.tcb.state(), State::TimeWait);
    // 2*MSL = 60 s (Linux).
    s.advance(60_299);
    assert_eq!(s.tcb.state(), State::TimeWait);
    s.advance(60_300);
    assert_eq!(s.tcb.state(), State::Closed);
    assert_eq!(s.tcb.error(), None);
    assert_eq!(s.tcb.poll_at(), None);
}

#[test]
fn rfc9293_3_6_time_wait_duration_is_configurable() {
    let mut s = active_closed_to_fin_wait_2(&TcpConfig {
        time_wait: Duration::from_secs(1),
        ..plain()
    });
    s.inject(300, seg("F.").seq(P).ack(D + 1));
    s.expect(300, seg("."));
    s.advance(1300);
    assert_eq!(s.tcb.state(), State::Closed);
}

#[test]
fn rfc9293_3_10_7_4_retransmitted_fin_in_time_wait_is_acked_and_restarts_timer() {
    let mut s = active_closed_to_fin_wait_2(&plain());
    s.inject(300, seg("F.").seq(P).ack(D + 1));
    s.expect(300, seg(".").ack(P + 1));
    s.inject(10_000, seg("F.").seq(P).ack(D + 1));
    s.expect(10_000, seg(".").seq(D + 1).ack(P + 1));
    s.advance(60_300);
    assert_eq!(s.tcb.state(), State::TimeWait, "timer restarted at 10 s");
    s.advance(70_000);
    assert_eq!(s.tcb.state(), State::Closed);
}

#[test]
fn rfc9293_3_6_fin_ack_together_goes_straight_to_time_wait() {
    let mut s = Script::established(&plain());
    s.call(200, |t| t.close());
    s.expect(200, seg("F.").seq(D));
    s.inject(250, seg("F.").seq(P).ack(D + 1));
    s.expect(250, seg(".").ack(P + 1));
    assert_eq!(s.tcb.state(), State::TimeWait);
}

#[test]
fn rfc9293_3_6_simultaneous_close_through_closing() {
    let mut s = Script::established(&plain());
    s.call(200, |t| t.close());
    s.expect(200, seg("F.").seq(D).ack(P));
    s.inject(210, seg("F.").seq(P).ack(D));
    s.expect(210, seg(".").seq(D + 1).ack(P + 1));
    assert_eq!(s.tcb.state(), State::Closing);
    s.inject(220, seg(".").seq(P + 1).ack(D + 1));
    assert_eq!(s.tcb.state(), State::TimeWait);
}

#[test]
fn rfc9293_3_6_passive_close_through_last_ack() {
    let mut s = Script::established(&plain());
    s.inject(200, seg("F.").seq(P).ack(D));
    s.expect(200, seg(".").ack(P + 1));
    assert_eq!(s.tcb.state(), State::CloseWait);
    s.call(300, |t| t.close());
    assert_eq!(s.tcb.state(), State::LastAck);
    s.expect(300, seg("F.").seq(D).ack(P + 1));
    s.inject(350, seg(".").seq(P + 1).ack(D + 1));
    assert_eq!(s.tcb.state(), State::Closed);
    assert_eq!(s.tcb.error(), None);
}

#[test]
fn rfc9293_3_6_fin_is_retransmitted_on_rto() {
    let mut s = Script::established(&plain());
    s.call(200, |t| t.close());
    s.expect(200, seg("F.").seq(D));
    s.expect(500, seg("F.").seq(D));
    s.expect(1100, seg("F.").seq(D));
}

#[test]
fn rfc9293_3_6_last_ack_fin_is_retransmitted_until_acked() {
    let mut s = Script::established(&plain());
    s.inject(200, seg("F.").seq(P).ack(D));
    s.expect(200, seg("."));
    s.call(210, |t| t.close());
    s.expect(210, seg("F.").seq(D));
    s.expect(510, seg("F.").seq(D));
    s.inject(520, seg(".").seq(P + 1).ack(D + 1));
    assert_eq!(s.tcb.state(), State::Closed);
}

#[test]
fn rfc9293_3_10_4_queued_data_goes_before_fin() {
    let mut s = Script::established(&plain());
    s.send(200, b"last words");
    s.expect(200, seg("P.").data(b"last words"));
    s.send(201, b"more");
    s.call(202, |t| t.close());
    // Nagle held "more"; the FIN carries it out together.
    s.expect(202, seg("FP.").seq(D + 10).data(b"more"));
    s.inject(250, seg(".").seq(P).ack(D + 15));
    assert_eq!(s.tcb.state(), State::FinWait2);
}

#[test]
fn rfc9293_3_10_4_fin_after_data_in_one_segment() {
    let mut s = Script::established(&plain());
    s.send(200, b"");
    s.call(200, |t| {
        t.send(b"abc").unwrap();
        t.shutdown_write();
    });
    s.expect(200, seg("FP.").seq(D).data(b"abc"));
}

#[test]
fn linux_fin_wait_2_times_out_after_close() {
    let mut s = active_closed_to_fin_wait_2(&plain());
    s.advance(60_249);
    assert_eq!(s.tcb.state(), State::FinWait2);
    s.advance(60_250);
    assert_eq!(s.tcb.state(), State::Closed);
}

#[test]
fn rfc9293_3_10_4_half_closed_fin_wait_2_has_no_timeout() {
    let mut s = Script::established(&plain());
    s.call(200, |t| t.shutdown_write());
    s.expect(200, seg("F."));
    s.inject(250, seg(".").seq(P).ack(D + 1));
    s.advance(600_000);
    assert_eq!(s.tcb.state(), State::FinWait2);
    s.inject(600_001, seg("P.").seq(P).ack(D + 1).data(b"late reply"));
    assert_eq!(s.recv(600_002, 100), b"late reply");
}

#[test]
fn rfc9293_3_10_2_send_after_shutdown_is_broken_pipe() {
    let mut s = Script::established(&plain());
    s.call(200, |t| t.shutdown_write());
    assert_eq!(s.tcb.send(b"x"), Err(TcpError::BrokenPipe));
    assert!(!s.tcb.is_writable());
}

#[test]
fn rfc9293_3_10_3_recv_after_fin_returns_eof_repeatedly() {
    let mut s = Script::established(&plain());
    s.inject(200, seg("F.").seq(P).ack(D));
    let mut b = [0u8; 8];
    assert_eq!(s.tcb.recv(&mut b), Ok(0));
    assert_eq!(s.tcb.recv(&mut b), Ok(0));
}

#[test]
fn rfc9293_3_10_4_close_twice_is_harmless() {
    let mut s = active_closed_to_fin_wait_2(&plain());
    s.call(260, |t| t.close());
    s.call(260, |t| t.shutdown_write());
    s.expect_none();
    assert_eq!(s.tcb.state(), State::FinWait2);
}

fn ts_cfg() -> TcpConfig {
    TcpConfig {
        timestamps: true,
        ..plain()
    }
}

fn ts_time_wait() -> Script {
    let mut s = Script::established_with(
        &ts_cfg(),
        seg("S.").seq(PEER_ISS).ack(D).mss(1460).ts(700, 0),
    );
    s.call(200, |t| t.close());
    s.expect(200, seg("F.").ts(200, 700));
    s.inject(250, seg("F.").seq(P).ack(D + 1).ts(750, 200));
    s.expect(250, seg(".").ts(250, 750));
    assert_eq!(s.tcb.state(), State::TimeWait);
    s
}

#[test]
fn linux_tw_reuse_needs_timestamps_and_one_second() {
    let mut s = ts_time_wait();
    assert!(!s.tcb.can_reuse_time_wait(s.now));
    s.advance(1249);
    assert!(!s.tcb.can_reuse_time_wait(s.now));
    s.advance(1250);
    assert!(s.tcb.can_reuse_time_wait(s.now));
    let iss = s.tcb.time_wait_reuse_iss();
    assert_eq!(iss, D + 1 + 65535 + 2);
    let mut plain_tw = active_closed_to_fin_wait_2(&plain());
    plain_tw.inject(300, seg("F.").seq(P).ack(D + 1));
    plain_tw.advance(5000);
    assert!(
        !plain_tw.tcb.can_reuse_time_wait(plain_tw.now),
        "no timestamps: no reuse"
    );
}

fn syn(seq: u32, ts: Option<u32>) -> TcpRepr {
    let mut r = TcpRepr {
        seq_number: seq,
        flags: TcpFlags::SYN,
        ..TcpRepr::default()
    };
    r.options.timestamp = ts.map(|v| (v, 0));
    r
}

#[test]
fn rfc6191_time_wait_accepts_syn_with_newer_timestamp() {
    let s = ts_time_wait();
    assert!(s.tcb.time_wait_accepts_syn(&syn(1, Some(751))));
    assert!(!s.tcb.time_wait_accepts_syn(&syn(P + 100, Some(749))));
    let mut not_syn = syn(1, Some(751));
    not_syn.flags = TcpFlags::SYN | TcpFlags::ACK;
    assert!(!s.tcb.time_wait_accepts_syn(&not_syn));
}

#[test]
fn rfc9293_appendix_b_time_wait_accepts_syn_beyond_old_sequence() {
    let mut s = active_closed_to_fin_wait_2(&plain());
    s.inject(300, seg("F.").seq(P).ack(D + 1));
    assert!(s.tcb.time_wait_accepts_syn(&syn(P + 10, None)));
    assert!(!s.tcb.time_wait_accepts_syn(&syn(P - 10, None)));
}

#[test]
fn rfc5961_4_syn_in_time_wait_without_engine_gets_ack() {
    let mut s = active_closed_to_fin_wait_2(&plain());
    s.inject(300, seg("F.").seq(P).ack(D + 1));
    s.expect(300, seg("."));
    s.inject(400, seg("S").seq(P + 1));
    s.expect(400, seg(".").seq(D + 1).ack(P + 1));
    assert_eq!(s.tcb.state(), State::TimeWait);
}

#[test]
fn rfc9293_3_6_closing_retransmits_fin_until_acked() {
    let mut s = Script::established(&plain());
    s.call(200, |t| t.close());
    s.expect(200, seg("F.").seq(D).ack(P));
    s.inject(210, seg("F.").seq(P).ack(D));
    s.expect(210, seg(".").ack(P + 1));
    assert_eq!(s.tcb.state(), State::Closing);
    s.expect(500, seg("F.").seq(D).ack(P + 1));
    s.inject(520, seg(".").seq(P + 1).ack(D + 1));
    assert_eq!(s.tcb.state(), State::TimeWait);
}

#[test]
fn rfc9293_3_6_last_ack_gives_up_after_retries() {
    let mut s = Script::established(&TcpConfig {
        data_retries: 2,
        ..plain()
    });
    s.inject(200, seg("F.").seq(P).ack(D));
    s.expect(200, seg("."));
    s.call(210, |t| t.close());
    s.expect(210, seg("F."));
    s.expect(510, seg("F."));
    s.expect(1110, seg("F."));
    s.advance(2310);
    assert_eq!(s.tcb.state(), State::Closed);
    assert_eq!(s.tcb.error(), Some(TcpError::TimedOut));
}

#[test]
fn rfc9293_3_6_fin_wait_1_retransmits_data_and_fin_together() {
    let mut s = Script::established(&plain());
    s.send(200, b"data");
    s.expect(200, seg("P.").seq(D).data(b"data"));
    s.call(201, |t| t.close());
    // A bare FIN is not held by Nagle: it follows at once.
    s.expect(201, seg("F.").seq(D + 4));
    // Nothing is acknowledged: going back N resends the data with the FIN in one segment.
    s.expect(500, seg("FP.").seq(D).data(b"data"));
    s.inject(550, seg(".").seq(P).ack(D + 4));
    assert_eq!(s.tcb.state(), State::FinWait1);
    s.inject(560, seg(".").seq(P).ack(D + 5));
    assert_eq!(s.tcb.state(), State::FinWait2);
}

#[test]
fn rfc9293_3_10_7_4_ack_of_fin_in_fin_wait_1_before_peer_fin() {
    let mut s = Script::established(&plain());
    s.call(200, |t| t.shutdown_write());
    s.expect(200, seg("F.").seq(D));
    // An ACK that does not cover the FIN leaves us in FIN-WAIT-1.
    s.inject(210, seg(".").seq(P).ack(D));
    assert_eq!(s.tcb.state(), State::FinWait1);
    s.inject(220, seg(".").seq(P).ack(D + 1));
    assert_eq!(s.tcb.state(), State::FinWait2);
}

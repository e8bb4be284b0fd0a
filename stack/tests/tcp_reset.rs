//! RST handling: RFC 9293 §3.10.7.1 (no connection), §3.10.7.2 (LISTEN), §3.10.7.4 second
//! check with RFC 5961 §3.2, user aborts (§3.10.5), RFC 2525 §2.17 close with unread data.

mod tcp_support;

use surge_stack::tcp::{ListenAction, State, TcpError, listen_action, reply_to_unknown};
use surge_stack::wire::{TcpFlags, TcpRepr};
use tcp_support::plain;
use tcp_support::script::{LOCAL_ISS, PEER_ISS, Script, seg};

fn repr(flags: TcpFlags, seq: u32, ack: u32) -> TcpRepr {
    TcpRepr {
        src_port: 1234,
        dst_port: 80,
        seq_number: seq,
        ack_number: ack,
        flags,
        ..TcpRepr::default()
    }
}

#[test]
fn rfc9293_3_10_7_1_ack_segment_gets_rst_with_seq_of_ack() {
    let r = reply_to_unknown(&repr(TcpFlags::ACK, 10, 777), 5).unwrap();
    assert_eq!(
        (r.flags, r.seq_number, r.src_port, r.dst_port),
        (TcpFlags::RST, 777, 80, 1234)
    );
}

#[test]
fn rfc9293_3_10_7_1_non_ack_segment_gets_rst_ack_covering_it() {
    let r = reply_to_unknown(&repr(TcpFlags::SYN, 10, 0), 0).unwrap();
    assert_eq!(
        (r.flags, r.seq_number, r.ack_number),
        (TcpFlags::RST | TcpFlags::ACK, 0, 11)
    );
    let r = reply_to_unknown(&repr(TcpFlags::SYN | TcpFlags::FIN, 10, 0), 100).unwrap();
    assert_eq!(r.ack_number, 112, "SEG.LEN counts SYN, FIN and the payload");
    let r = reply_to_unknown(&repr(TcpFlags::NONE, u32::MAX, 0), 3).unwrap();
    assert_eq!(r.ack_number, 2, "sequence arithmetic wraps");
}

#[test]
fn rfc9293_3_10_7_1_rst_is_never_answered() {
    assert_eq!(reply_to_unknown(&repr(TcpFlags::RST, 10, 0), 0), None);
    assert_eq!(
        reply_to_unknown(&repr(TcpFlags::RST | TcpFlags::ACK, 10, 5), 0),
        None
    );
}

#[test]
fn rfc9293_3_10_7_2_listen_rules() {
    assert_eq!(
        listen_action(&repr(TcpFlags::RST, 1, 0), 0),
        ListenAction::Ignore
    );
    assert_eq!(
        listen_action(&repr(TcpFlags::SYN, 1, 0), 0),
        ListenAction::Accept
    );
    assert_eq!(
        listen_action(&repr(TcpFlags::FIN, 1, 0), 0),
        ListenAction::Ignore
    );
    match listen_action(&repr(TcpFlags::ACK, 1, 99), 0) {
        ListenAction::Reset(r) => assert_eq!((r.flags, r.seq_number), (TcpFlags::RST, 99)),
        other => panic!("expected reset, got {other:?}"),
    }
    // SYN+ACK to a listener: the ACK rule comes first.
    assert!(matches!(
        listen_action(&repr(TcpFlags::SYN | TcpFlags::ACK, 1, 5), 0),
        ListenAction::Reset(_)
    ));
}

#[test]
fn rfc9293_3_10_7_4_exact_rst_resets_established() {
    let mut s = Script::established(&plain());
    s.inject(200, seg("R").seq(PEER_ISS + 1));
    s.expect_none();
    assert_eq!(s.tcb.state(), State::Closed);
    assert_eq!(s.tcb.error(), Some(TcpError::ConnectionReset));
    let mut b = [0u8; 8];
    assert_eq!(s.tcb.recv(&mut b), Err(TcpError::ConnectionReset));
    assert_eq!(s.tcb.send(b"x"), Err(TcpError::ConnectionReset));
    assert!(
        s.tcb.is_readable() && s.tcb.is_writable(),
        "errors wake readers and writers"
    );
}

#[test]
fn rfc5961_3_2_in_window_inexact_rst_gets_challenge_ack() {
    let mut s = Script::established(&plain());
    s.inject(200, seg("R").seq(PEER_ISS + 100));
    s.expect(200, seg(".").seq(LOCAL_ISS + 1).ack(PEER_ISS + 1));
    assert_eq!(s.tcb.state(), State::Established);
    assert_eq!(s.tcb.stats().challenge_acks, 1);
}

#[test]
fn rfc5961_3_2_out_of_window_rst_is_silently_dropped() {
    let mut s = Script::established(&plain());
    s.inject(200, seg("R").seq(PEER_ISS + 1_000_000));
    s.inject(200, seg("R").seq(PEER_ISS - 10));
    s.expect_none();
    assert_eq!(s.tcb.state(), State::Established);
}

#[test]
fn rfc5961_3_2_rst_with_ack_bit_follows_same_rules() {
    let mut s = Script::established(&plain());
    s.inject(200, seg("R.").seq(PEER_ISS + 2).ack(LOCAL_ISS + 1));
    s.expect(200, seg(".").ack(PEER_ISS + 1));
    s.inject(300, seg("R.").seq(PEER_ISS + 1).ack(LOCAL_ISS + 1));
    assert_eq!(s.tcb.error(), Some(TcpError::ConnectionReset));
}

#[test]
fn rfc9293_3_10_7_4_rst_in_close_wait_resets() {
    let mut s = Script::established(&plain());
    s.inject(200, seg("F.").seq(PEER_ISS + 1).ack(LOCAL_ISS + 1));
    s.expect(200, seg(".").ack(PEER_ISS + 2));
    assert_eq!(s.tcb.state(), State::CloseWait);
    s.inject(300, seg("R").seq(PEER_ISS + 2));
    assert_eq!(s.tcb.state(), State::Closed);
    assert_eq!(s.tcb.error(), Some(TcpError::ConnectionReset));
}

#[test]
fn rfc9293_3_10_7_4_rst_in_last_ack_closes_without_error() {
    let mut s = Script::established(&plain());
    s.inject(200, seg("F.").seq(PEER_ISS + 1).ack(LOCAL_ISS + 1));
    s.expect(200, seg(".").ack(PEER_ISS + 2));
    s.call(210, |t| t.close());
    s.expect(210, seg("F.").seq(LOCAL_ISS + 1).ack(PEER_ISS + 2));
    assert_eq!(s.tcb.state(), State::LastAck);
    s.inject(220, seg("R").seq(PEER_ISS + 2));
    assert_eq!(s.tcb.state(), State::Closed);
    assert_eq!(s.tcb.error(), None);
}

#[test]
fn rfc9293_3_10_7_4_rst_in_time_wait_closes() {
    let mut s = Script::established(&plain());
    s.call(200, |t| t.close());
    s.expect(200, seg("F.").seq(LOCAL_ISS + 1));
    s.inject(210, seg("F.").seq(PEER_ISS + 1).ack(LOCAL_ISS + 2));
    s.expect(210, seg(".").ack(PEER_ISS + 2));
    assert_eq!(s.tcb.state(), State::TimeWait);
    s.inject(220, seg("R").seq(PEER_ISS + 2));
    assert_eq!(s.tcb.state(), State::Closed);
}

#[test]
fn rfc9293_3_10_7_1_closed_connection_answers_with_rst() {
    let mut s = Script::established(&plain());
    s.inject(200, seg("R").seq(PEER_ISS + 1));
    s.inject(
        300,
        seg("P.").seq(PEER_ISS + 1).ack(LOCAL_ISS + 1).data(b"late"),
    );
    s.expect(300, seg("R").seq(LOCAL_ISS + 1));
    s.inject(310, seg("R").seq(PEER_ISS + 1));
    s.expect_none();
}

#[test]
fn rfc9293_3_10_5_abort_sends_rst_and_closes() {
    let mut s = Script::established(&plain());
    s.send(200, b"queued");
    s.expect(200, seg("P.").len(6));
    s.call(210, |t| t.abort());
    s.expect(210, seg("R.").seq(LOCAL_ISS + 7).ack(PEER_ISS + 1));
    assert_eq!(s.tcb.state(), State::Closed);
    assert_eq!(s.tcb.poll_at(), None);
    s.expect_none_until(5000);
    assert_eq!(s.tcb.stats().rsts_out, 1);
}

#[test]
fn rfc9293_3_10_5_abort_in_syn_sent_sends_nothing() {
    let mut s = Script::client(&plain());
    s.expect(0, seg("S"));
    s.call(10, |t| t.abort());
    s.expect_none_until(10_000);
    assert_eq!(s.tcb.state(), State::Closed);
}

#[test]
fn rfc2525_2_17_close_with_unread_data_sends_rst() {
    let mut s = Script::established(&TcpConfig {
        quickack_segments: 0,
        ..plain()
    });
    s.inject(
        200,
        seg("P.")
            .seq(PEER_ISS + 1)
            .ack(LOCAL_ISS + 1)
            .data(b"unread"),
    );
    s.call(210, |t| t.close());
    s.expect(210, seg("R.").seq(LOCAL_ISS + 1).ack(PEER_ISS + 7));
    assert_eq!(s.tcb.state(), State::Closed);
    s.expect_none_until(5000);
}

#[test]
fn rfc2525_2_17_close_after_reading_everything_sends_fin() {
    let mut s = Script::established(&plain());
    s.inject(
        200,
        seg("P.").seq(PEER_ISS + 1).ack(LOCAL_ISS + 1).data(b"read"),
    );
    s.expect(200, seg(".").ack(PEER_ISS + 5));
    assert_eq!(s.recv(205, 100), b"read");
    s.call(210, |t| t.close());
    s.expect(210, seg("F.").seq(LOCAL_ISS + 1).ack(PEER_ISS + 5));
}

#[test]
fn rfc9293_3_10_7_4_data_after_close_is_answered_with_rst() {
    let mut s = Script::established(&plain());
    s.call(200, |t| t.close());
    s.expect(200, seg("F.").seq(LOCAL_ISS + 1));
    s.inject(210, seg(".").seq(PEER_ISS + 1).ack(LOCAL_ISS + 2));
    assert_eq!(s.tcb.state(), State::FinWait2);
    s.inject(
        220,
        seg("P.")
            .seq(PEER_ISS + 1)
            .ack(LOCAL_ISS + 2)
            .data(b"too late"),
    );
    s.expect(220, seg("R").seq(LOCAL_ISS + 2));
    assert_eq!(s.tcb.state(), State::Closed);
}

#[test]
fn rfc9293_3_10_4_half_close_still_receives_data() {
    let mut s = Script::established(&plain());
    s.call(200, |t| t.shutdown_write());
    s.expect(200, seg("F.").seq(LOCAL_ISS + 1));
    s.inject(
        210,
        seg("P.").seq(PEER_ISS + 1).ack(LOCAL_ISS + 2).data(b"more"),
    );
    s.expect(210, seg(".").ack(PEER_ISS + 5));
    assert_eq!(s.tcb.state(), State::FinWait2);
    assert_eq!(s.recv(220, 10), b"more");
    assert_eq!(s.tcb.send(b"x"), Err(TcpError::BrokenPipe));
}

use surge_stack::tcp::TcpConfig;

#[test]
fn rst_from_closed_connection_uses_connection_ports() {
    let mut s = Script::established(&plain());
    s.inject(200, seg("R").seq(PEER_ISS + 1));
    s.inject(210, seg("S").seq(9));
    let (r, _) = s.expect(210, seg("R.").seq(0).ack(10));
    assert_eq!(
        (r.src_port, r.dst_port),
        (tcp_support::CLIENT.port(), tcp_support::SERVER.port())
    );
}

//! Opening connections: RFC 9293 §3.5 handshakes, option negotiation, SYN retransmission.

mod tcp_support;

use surge_stack::tcp::{State, TcpConfig, TcpError};
use tcp_support::script::{LOCAL_ISS, PEER_ISS, Script, seg};
use tcp_support::{
    pair::{LinkConfig, Pair},
    plain,
};

#[test]
fn rfc9293_3_5_active_open_three_way_handshake() {
    let mut s = Script::client(&plain());
    assert_eq!(s.tcb.state(), State::SynSent);
    s.expect(
        0,
        seg("S")
            .seq(LOCAL_ISS)
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
    let _ = TcpError::WouldBlock;
}

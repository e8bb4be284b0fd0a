//! RFC 3168 ECN (off by default): negotiation on the handshake, ECT(0) on new data, CE
//! echoed with ECE until CWR, and the sender's once-per-window reduction with CWR.

mod tcp_support;

use surge_stack::table::SocketId;
use surge_stack::tcp::{Ecn, RequestSock, TcpConfig};
use surge_stack::time::Instant;
use surge_stack::wire::TcpFlags;
use tcp_support::script::{LOCAL_ISS, PEER_ISS, Script, Seg, ms, seg};
use tcp_support::{CLIENT, SERVER, server_tuple};

const D: u32 = LOCAL_ISS + 1;
const P: u32 = PEER_ISS + 1;

fn ecn() -> TcpConfig {
    TcpConfig {
        ecn: true,
        timestamps: false,
        sack: false,
        window_scaling: false,
        nodelay: true,
        ..TcpConfig::default()
    }
}

/// An active open with an ECN-setup SYN-ACK (`E` without `W`) or a plain one.
fn established(cfg: &TcpConfig, peer_agrees: bool) -> Script {
    let mut s = Script::client(cfg);
    let syn = if cfg.ecn { "SEW" } else { "S" };
    s.expect(0, seg(syn).seq(LOCAL_ISS));
    let synack = if peer_agrees { "S.E" } else { "S." };
    s.inject(100, seg(synack).seq(PEER_ISS).ack(D).win(65535).mss(1460));
    s.expect(100, seg(".").seq(D).ack(P));
    s
}

/// Queues `data` at `at` ms and returns every segment it produces with its ECN field.
fn send_and_poll(s: &mut Script, at: u64, data: &[u8]) -> Vec<(TcpFlags, usize, Ecn)> {
    s.call(at, |tcb| {
        let now = ms(at);
        tcb.send(data).expect("send");
        let mut buf = vec![0u8; 2000];
        let mut out = Vec::new();
        while let Some(t) = tcb.poll_transmit(now, &mut buf) {
            out.push((t.repr.flags, t.payload_len, t.ecn));
        }
        out
    })
}

/// A segment from the peer arriving with `ecn` in its IP header.
fn inject_ecn(s: &mut Script, at: u64, segment: Seg, ecn: Ecn) {
    let repr = segment.to_repr(SERVER.port(), CLIENT.port());
    let payload = segment.payload();
    s.call(at, |tcb| {
        tcb.handle_segment_ecn(ms(at), &repr, &payload, ecn)
    });
}

#[test]
fn rfc3168_6_1_1_ecn_setup_syn_and_synack() {
    let mut s = established(&ecn(), true);
    let out = send_and_poll(&mut s, 200, &[1u8; 1000]);
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].2, Ecn::Ect0, "new data is ECN-capable");
    assert!(!out[0].0.intersects(TcpFlags::ECE | TcpFlags::CWR));
    assert!(s.tcb.info().ecn, "negotiated");
}

#[test]
fn rfc3168_6_1_1_no_ecn_without_the_peers_echo_or_our_offer() {
    // The peer's SYN-ACK has no ECE: data goes out Not-ECT.
    let mut s = established(&ecn(), false);
    let out = send_and_poll(&mut s, 200, &[1u8; 100]);
    assert_eq!(out[0].2, Ecn::NotEct);
    assert!(!s.tcb.info().ecn);
    // ECN off (the default): a plain SYN, and an ECE in the SYN-ACK changes nothing.
    let off = TcpConfig {
        ecn: false,
        ..ecn()
    };
    assert!(!TcpConfig::default().ecn, "off by default");
    let mut s = established(&off, true);
    let out = send_and_poll(&mut s, 200, &[1u8; 100]);
    assert_eq!(out[0].2, Ecn::NotEct);
    // A SYN-ACK with both ECE and CWR is not an ECN-setup SYN-ACK (§6.1.1).
    let mut s = Script::client(&ecn());
    s.expect(0, seg("SEW").seq(LOCAL_ISS));
    s.inject(100, seg("S.EW").seq(PEER_ISS).ack(D).win(65535).mss(1460));
    s.expect(100, seg(".").seq(D).ack(P));
    assert!(!s.tcb.info().ecn);
}

#[test]
fn rfc3168_6_1_1_passive_open_answers_ece_only() {
    let mut s = Script::server(&ecn(), seg("SEW").seq(PEER_ISS).win(65535).mss(1460));
    s.expect(0, seg("S.E").seq(LOCAL_ISS).ack(P));
    let mut s = Script::server(&ecn(), seg("S").seq(PEER_ISS).win(65535).mss(1460));
    s.expect(0, seg("S.").seq(LOCAL_ISS).ack(P));
    // The listener's request record answers the same way, and the connection it becomes
    // uses ECN.
    let syn = seg("SEW")
        .seq(PEER_ISS)
        .win(65535)
        .mss(1460)
        .to_repr(CLIENT.port(), SERVER.port());
    let req = RequestSock::new(
        server_tuple(),
        SocketId(1),
        &syn,
        LOCAL_ISS,
        Instant::ZERO,
        &ecn(),
    );
    let synack = req.synack(Instant::ZERO, &ecn());
    assert_eq!(synack.flags, TcpFlags::SYN | TcpFlags::ACK | TcpFlags::ECE);
    let plain_listener = TcpConfig {
        ecn: false,
        ..ecn()
    };
    assert_eq!(
        req.synack(Instant::ZERO, &plain_listener).flags,
        TcpFlags::SYN | TcpFlags::ACK
    );
}

/// Every segment sent so far, drained.
fn drain(s: &mut Script) -> Vec<TcpFlags> {
    let mut flags = Vec::new();
    while s.pending() > 0 {
        flags.push(s.expect_next().0.flags);
    }
    flags
}

#[test]
fn rfc3168_6_1_3_ce_on_data_is_echoed_until_cwr() {
    let mut s = established(&ecn(), true);
    inject_ecn(&mut s, 200, seg(".").seq(P).ack(D).len(100), Ecn::Ce);
    // The first mark is acknowledged at once, with ECE.
    s.expect(200, seg(".E").seq(D).ack(P + 100));
    assert_eq!(s.tcb.stats().ecn_ce_received, 1);
    // Later ACKs keep ECE while no CWR came.
    inject_ecn(
        &mut s,
        210,
        seg(".").seq(P + 100).ack(D).len(1460),
        Ecn::Ect0,
    );
    inject_ecn(
        &mut s,
        211,
        seg(".").seq(P + 1560).ack(D).len(1460),
        Ecn::Ect0,
    );
    let acks = drain(&mut s);
    assert!(!acks.is_empty());
    assert!(acks.iter().all(|f| f.contains(TcpFlags::ECE)), "{acks:?}");
    // CWR from the sender ends the echo.
    inject_ecn(
        &mut s,
        300,
        seg(".W").seq(P + 3020).ack(D).len(1460),
        Ecn::Ect0,
    );
    inject_ecn(
        &mut s,
        301,
        seg(".").seq(P + 4480).ack(D).len(1460),
        Ecn::Ect0,
    );
    s.advance(400);
    let acks = drain(&mut s);
    assert!(!acks.is_empty());
    assert!(acks.iter().all(|f| !f.contains(TcpFlags::ECE)), "{acks:?}");
    // A CE mark on a pure ACK (not ECN-capable) is not data: no echo.
    inject_ecn(&mut s, 500, seg(".").seq(P + 5940).ack(D), Ecn::Ce);
    assert_eq!(s.tcb.stats().ecn_ce_received, 1);
    s.advance(600);
    assert!(drain(&mut s).iter().all(|f| !f.contains(TcpFlags::ECE)));
}

#[test]
fn rfc3168_6_1_2_ece_halves_cwnd_once_per_window_and_sets_cwr() {
    let mut s = established(&ecn(), true);
    let out = send_and_poll(&mut s, 200, &[1u8; 10 * 1460]);
    assert_eq!(out.len(), 10);
    assert!(out.iter().all(|o| o.2 == Ecn::Ect0));
    let cwnd = s.tcb.info().snd_cwnd;
    assert_eq!(cwnd, 10);
    // The peer saw CE: its ACK of the first segment carries ECE.
    s.inject(300, seg(".E").seq(P).ack(D + 1460).win(65535));
    let after = s.tcb.info().snd_cwnd;
    assert!(
        after < cwnd && after >= cwnd / 2 - 1,
        "cwnd {cwnd} -> {after}"
    );
    assert_eq!(s.tcb.stats().ecn_reductions, 1);
    assert_eq!(
        s.tcb.stats().retransmits,
        0,
        "a mark is not a loss: nothing resent"
    );
    // More echoes for the same window: no further reduction.
    s.inject(301, seg(".E").seq(P).ack(D + 2920).win(65535));
    s.inject(302, seg(".E").seq(P).ack(D + 8 * 1460).win(65535));
    assert_eq!(s.tcb.stats().ecn_reductions, 1);
    drain(&mut s);
    // The next new data segment carries CWR, once.
    let out = send_and_poll(&mut s, 303, &[2u8; 3000]);
    assert_eq!(out.len(), 3, "{out:?}");
    assert!(out[0].0.contains(TcpFlags::CWR), "{out:?}");
    assert!(out[1..].iter().all(|o| !o.0.contains(TcpFlags::CWR)));
    // An echo that acknowledges up to the end of the reduced window: still that window.
    s.inject(400, seg(".E").seq(P).ack(D + 10 * 1460).win(65535));
    assert_eq!(s.tcb.stats().ecn_reductions, 1);
    // Past it (data sent after the reduction), a new echo reduces again.
    s.inject(401, seg(".E").seq(P).ack(D + 10 * 1460 + 1460).win(65535));
    assert_eq!(s.tcb.stats().ecn_reductions, 2);
}

#[test]
fn rfc3168_6_1_5_retransmissions_and_pure_acks_are_not_ect() {
    let mut s = established(&ecn(), true);
    let out = send_and_poll(&mut s, 200, &[1u8; 1000]);
    assert_eq!(out[0].2, Ecn::Ect0);
    // The retransmission timeout resends it: Not-ECT.
    let t = s.call(201, |tcb| {
        let due = tcb.poll_at().expect("the RTO is armed");
        tcb.handle_timeout(due);
        let mut buf = vec![0u8; 2000];
        tcb.poll_transmit(due, &mut buf)
    });
    let t = t.expect("the retransmission");
    assert_eq!(t.payload_len, 1000);
    assert_eq!(t.ecn, Ecn::NotEct);
    assert_eq!(s.tcb.stats().retransmits, 1);
    // Pure ACKs are never ECN-capable.
    let t = s.call(900, |tcb| {
        let seg = seg(".").seq(P).ack(D + 1000).len(10);
        let repr = seg.to_repr(SERVER.port(), CLIENT.port());
        tcb.handle_segment_ecn(ms(900), &repr, &seg.payload(), Ecn::Ect0);
        let mut buf = vec![0u8; 2000];
        tcb.poll_transmit(ms(900), &mut buf)
    });
    let t = t.expect("the ACK of the data");
    assert_eq!(t.payload_len, 0);
    assert_eq!(t.ecn, Ecn::NotEct);
}

//! `Tcb::info`, Linux's `TCP_INFO` fields, against scripted connections.

mod tcp_support;

use surge_stack::tcp::{State, TcpConfig};
use tcp_support::script::{LOCAL_ISS, PEER_ISS, Script, Seg, seg};

const MSS: u32 = 1460;
const D: u32 = LOCAL_ISS + 1;

fn cfg() -> TcpConfig {
    TcpConfig {
        timestamps: false,
        window_scaling: false,
        ..TcpConfig::default()
    }
}

fn ack(n: u32) -> Seg {
    seg(".").seq(PEER_ISS + 1).ack(n)
}

fn block(i: u32) -> (u32, u32) {
    (D + i * MSS, D + (i + 1) * MSS)
}

/// Established at 100 ms (RTT 100 ms) with a SACK peer; ten segments out at 200 ms, the
/// first acknowledged at 300 ms.
fn ten_sent() -> Script {
    let mut s = Script::established_with(
        &cfg(),
        seg("S.")
            .seq(PEER_ISS)
            .ack(LOCAL_ISS + 1)
            .win(65535)
            .mss(1460)
            .sack_perm(true),
    );
    s.send(200, &[7u8; 10 * 1460]);
    for i in 0..10 {
        s.expect(200, seg(".").seq(D + i * MSS).len(1460));
    }
    s.inject(300, ack(D + MSS));
    s
}

#[test]
fn tcp_info_reports_state_rtt_window_and_loss_like_linux() {
    let mut s = ten_sent();
    let i = s.tcb.info();
    assert_eq!(i.state, State::Established);
    assert_eq!(i.snd_mss, 1460);
    // Two 100 ms samples: SRTT 100 ms, RTTVAR 3/4 * 50 = 37.5 ms, RTO = 100 +
    // max(4 * 37.5, 200) as Linux's tcp_set_rto.
    assert_eq!(i.rtt, 100_000);
    assert_eq!(i.rttvar, 37_500);
    assert_eq!(i.rto, 300_000);
    assert_eq!(i.retransmits, 0);
    assert_eq!(i.unacked, 9);
    assert_eq!((i.sacked, i.lost, i.total_retrans), (0, 0, 0));
    assert_eq!(i.snd_cwnd, 11, "slow start: IW 10 + 1 acknowledged");
    assert_eq!(i.bytes_acked, u64::from(MSS));
    assert_eq!(i.reordering, 3);
    // The first delivery-rate sample: 1460 bytes over the 300 ms since the open; the
    // application had nothing more to send when the handshake completed.
    assert_eq!(i.delivery_rate, 1460 * 1000 / 300);
    assert!(i.delivery_rate_app_limited);
    // Segment 1 lost: three SACKs, RACK marks it, it is retransmitted.
    for (k, t) in [301u64, 302, 303].into_iter().enumerate() {
        s.inject(t, ack(D + MSS).sack(&[(block(2).0, block(2 + k as u32).1)]));
    }
    s.expect(303, seg(".").seq(D + MSS).len(1460));
    let i = s.tcb.info();
    assert_eq!((i.sacked, i.lost, i.total_retrans), (3, 1, 1));
    assert_eq!(i.snd_ssthresh, 7, "CUBIC: 0.7 * 11 segments");
    // An RTO backs off: tcpi_retransmits counts it, tcpi_rto doubles.
    let (r, _) = s.expect_next();
    assert_eq!(r.seq_number, D + MSS);
    let i = s.tcb.info();
    assert_eq!(i.retransmits, 1);
    assert_eq!(i.rto, 600_000);
}

#[test]
fn tcp_info_reordering_degree_and_bytes_received() {
    let mut s = ten_sent();
    // Segment 1 overtaken by one segment: reordering seen.
    s.inject(301, ack(D + MSS).sack(&[block(2)]));
    s.inject(302, ack(D + 3 * MSS));
    assert_eq!(s.tcb.info().reordering, 3, "one segment: below the default");
    // Segment 3 overtaken by six (within the widened reordering window, so not retransmitted).
    s.inject(303, ack(D + 3 * MSS).sack(&[(block(4).0, block(9).1)]));
    s.inject(310, ack(D + 10 * MSS));
    let i = s.tcb.info();
    assert_eq!(i.total_retrans, 0);
    assert_eq!(i.reordering, 6);
    // Received bytes count what the peer sent in order.
    s.inject(
        320,
        seg("P.").seq(PEER_ISS + 1).ack(D + 10 * MSS).data(b"hello"),
    );
    assert_eq!(s.tcb.info().bytes_received, 5);
}

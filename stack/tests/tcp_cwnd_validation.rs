//! Congestion-window validation (Linux `tcp_cwnd_validate` / `tcp_is_cwnd_limited`,
//! RFC 9438 §5.8, RFC 7661): CUBIC and NewReno grow the window only while the sender
//! uses it. A request/response connection keeps its initial window however many
//! requests it answers; a sender that fills the window grows it as before.

mod tcp_support;

use surge_stack::tcp::{CongestionAlgorithm, TcpConfig};
use tcp_support::script::{LOCAL_ISS, PEER_ISS, Script, Seg, seg};

const MSS: u32 = 1460;
const D: u32 = LOCAL_ISS + 1;
/// The initial window: ten segments (RFC 6928).
const IW: u32 = 10;

fn cfg(sack: bool, congestion: CongestionAlgorithm) -> TcpConfig {
    TcpConfig {
        timestamps: false,
        window_scaling: false,
        sack,
        congestion,
        ..TcpConfig::default()
    }
}

fn established(sack: bool, congestion: CongestionAlgorithm) -> Script {
    Script::established_with(
        &cfg(sack, congestion),
        seg("S.")
            .seq(PEER_ISS)
            .ack(LOCAL_ISS + 1)
            .win(65535)
            .mss(1460)
            .sack_perm(sack),
    )
}

fn ack(n: u32) -> Seg {
    seg(".").seq(PEER_ISS + 1).ack(n)
}

fn cwnd_segments(s: &mut Script) -> u32 {
    s.tcb.info().snd_cwnd
}

/// 64-byte requests, one at a time, each acknowledged before the next: the window is
/// never used beyond one small segment, so it stays where it started.
fn request_response(sack: bool, congestion: CongestionAlgorithm) {
    let mut s = established(sack, congestion);
    let mut t = 200;
    let mut seq = D;
    for _ in 0..200 {
        s.send(t, &[5u8; 64]);
        s.expect(t, seg(".").seq(seq).len(64));
        seq += 64;
        t += 10;
        s.inject(t, ack(seq));
        t += 10;
    }
    assert_eq!(
        cwnd_segments(&mut s),
        IW,
        "{congestion:?}, SACK {sack}: 200 acknowledged requests of 64 bytes, never more than \
         one in flight: no growth (before validation: +64 bytes per ACK)"
    );
}

#[test]
fn an_application_limited_connection_keeps_its_initial_window() {
    for congestion in [CongestionAlgorithm::Cubic, CongestionAlgorithm::NewReno] {
        for sack in [true, false] {
            request_response(sack, congestion);
        }
    }
}

/// `sent` full segments out at once, all acknowledged one by one: the window after.
fn after_burst(sent: u32, sack: bool) -> u32 {
    let mut s = established(sack, CongestionAlgorithm::Cubic);
    s.send(200, &vec![7u8; (sent * MSS) as usize]);
    for i in 0..sent {
        s.expect(200, seg(".").seq(D + i * MSS).len(MSS as usize));
    }
    for i in 1..=sent {
        s.inject(300 + u64::from(i), ack(D + i * MSS));
    }
    cwnd_segments(&mut s)
}

#[test]
fn slow_start_grows_a_window_the_sender_filled_or_half_filled() {
    for sack in [true, false] {
        // The whole window in flight: cwnd-limited, one segment more per segment acked.
        assert_eq!(after_burst(IW, sack), 2 * IW, "SACK {sack}");
        // Six of ten: the window grows to twice the most in flight (Linux: while
        // cwnd < 2 * max_packets_out), no further.
        assert_eq!(after_burst(6, sack), 2 * 6, "SACK {sack}");
        // Four of ten: the window is already more than twice what the sender used.
        assert_eq!(after_burst(4, sack), IW, "SACK {sack}");
    }
}

//! Pacing (issue 14): a paced connection holds data back although its window has room,
//! reports the release time through `poll_at` (what the engine's timer wheel polls it at),
//! and sends again once that time comes. Two endpoints in virtual time, 10 ms RTT.

mod tcp_support;

use core::time::Duration;
use surge_stack::tcp::{CongestionAlgorithm, TcpConfig};
use surge_stack::time::Instant;
use tcp_support::pair::{LinkConfig, Pair};

fn link() -> LinkConfig {
    LinkConfig {
        delay: Duration::from_millis(5),
        ..LinkConfig::default()
    }
}

/// A pair after the handshake and one acknowledged byte (so the client has an SRTT and,
/// when paced, a pacing rate); returns it with the client's first 64 KiB queued.
fn warmed_up(cfg: &TcpConfig) -> Pair {
    let mut p = Pair::new(cfg, cfg, link(), 1);
    p.handshake();
    assert_eq!(p.client.send(b"x"), Ok(1));
    p.drive_until(10_000, Duration::from_secs(10), |p| {
        p.client.info().bytes_acked == 1
    });
    let mut buf = [0u8; 1];
    let server = p.server();
    assert_eq!(server.recv(&mut buf), Ok(1));
    assert_eq!(p.client.send(&[7u8; 64 * 1024]), Ok(64 * 1024));
    p
}

/// Segments the client sends at `now` until it holds back.
fn burst(p: &mut Pair, now: Instant) -> usize {
    let mut buf = vec![0u8; 2048];
    let mut n = 0;
    while let Some(t) = p.client.poll_transmit(now, &mut buf) {
        assert!(t.payload_len > 0, "data, not a bare ACK");
        n += 1;
        assert!(n < 1000, "bounded");
    }
    n
}

#[test]
fn paced_connection_waits_for_its_release_time_then_sends() {
    let cfg = TcpConfig {
        pacing: true,
        ..TcpConfig::default()
    };
    let mut p = warmed_up(&cfg);
    let info = p.client.info();
    // Linux tcp_update_pacing_rate in slow start: 2 × cwnd / SRTT = 2 × 14,600 B / 10 ms.
    assert!(info.snd_cwnd >= 10, "the window allows 10 segments");
    let rate = info.pacing_rate;
    assert!(
        (2_500_000..=3_100_000).contains(&rate),
        "pacing rate {rate} B/s"
    );
    let now = p.now;
    // The burst quantum at ~2.9 MB/s is 2 segments (rate × 1 ms < 2 MSS).
    assert_eq!(burst(&mut p, now), 2);
    let release = p.client.poll_at().expect("a release time");
    let spacing = Duration::from_micros(1_000_000 * 1448 / rate);
    assert!(release > now, "held back");
    assert!(
        release <= now + spacing + Duration::from_micros(1),
        "released one segment's time later: {:?} after",
        release - now
    );
    // Not before the release time...
    assert_eq!(burst(&mut p, release - Duration::from_micros(1)), 0);
    // ...and at it, the next segment.
    p.client.handle_timeout(release);
    assert_eq!(burst(&mut p, release), 1);
    assert!(p.client.poll_at().is_some_and(|t| t > release));
}

#[test]
fn unpaced_connection_sends_its_window_at_once() {
    let cfg = TcpConfig::default();
    let mut p = warmed_up(&cfg);
    assert_eq!(p.client.info().pacing_rate, 0);
    let now = p.now;
    let window = p.client.info().snd_cwnd as usize;
    assert!(burst(&mut p, now) >= window.min(10));
}

#[test]
fn bbr_paces_from_the_first_ack() {
    let cfg = TcpConfig {
        congestion: CongestionAlgorithm::Bbr,
        ..TcpConfig::default()
    };
    let mut p = warmed_up(&cfg);
    let info = p.client.info();
    assert_eq!(info.congestion, CongestionAlgorithm::Bbr);
    let bbr = info.bbr.expect("tcp_bbr_info");
    assert_eq!(bbr.pacing_gain, 739, "STARTUP's 2/ln 2 in 1/256ths");
    assert!(info.pacing_rate > 0);
    let now = p.now;
    let sent = burst(&mut p, now);
    assert!(sent >= 2, "a quantum goes at once");
    assert!(
        sent < info.snd_cwnd as usize,
        "but not the whole window ({sent} of {})",
        info.snd_cwnd
    );
    assert!(p.client.poll_at().is_some_and(|t| t > now));
}

#[test]
fn bbr_without_sack_runs_cubic() {
    let cfg = TcpConfig {
        congestion: CongestionAlgorithm::Bbr,
        ..TcpConfig::default()
    };
    let peer = TcpConfig {
        sack: false,
        ..TcpConfig::default()
    };
    let mut p = Pair::new(&cfg, &peer, link(), 1);
    p.handshake();
    let info = p.client.info();
    assert_eq!(info.congestion, CongestionAlgorithm::Cubic);
    assert_eq!(info.bbr, None);
    assert_eq!(info.pacing_rate, 0);
}

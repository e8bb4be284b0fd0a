//! Buffer autotuning (issue 14): the receive buffer grows with the rate the application
//! reads at (Linux DRS, `tcp_rcv_space_adjust`), the send buffer with cwnd
//! (`tcp_sndbuf_expand`), both within their maxima; `SO_RCVBUF`/`SO_SNDBUF` pin them; the
//! window scale is chosen for the maximum. Scripts for the rules, and the two-endpoint
//! harness in virtual time for what it buys on a long fat path.

mod tcp_support;

use core::time::Duration;
use sha2::{Digest, Sha256};
use surge_stack::tcp::{TcpConfig, buffer_pool};
use tcp_support::pair::{LinkConfig, Pair, Source, drain_into};
use tcp_support::script::{LOCAL_ISS, PEER_ISS, Script, seg};

const D: u32 = LOCAL_ISS + 1;
const P: u32 = PEER_ISS + 1;
const MSS: usize = 1460;
/// The window scale our SYN offers for a 1 MiB maximum (1 MiB >> 5 = 32768 <= 65535).
const WS: u8 = 5;

/// Autotuning on, no timestamps (the receiver paces itself by the handshake's RTT,
/// 100 ms in scripts), 64 KiB to start, 1 MiB at most.
fn tuned() -> TcpConfig {
    TcpConfig {
        timestamps: false,
        sack: false,
        recv_buffer: 64 * 1024,
        recv_buffer_max: 1 << 20,
        send_buffer: 16 * 1024,
        send_buffer_max: 1 << 20,
        ..TcpConfig::default()
    }
}

/// An established connection whose peer offered window scale 7.
fn established(cfg: &TcpConfig) -> Script {
    let mut s = Script::client(cfg);
    let (syn, _) = s.expect(0, seg("S").seq(LOCAL_ISS));
    assert_eq!(syn.options.window_scale, Some(cfg.recv_window_shift()));
    s.inject(
        100,
        seg("S.").seq(PEER_ISS).ack(D).win(65535).mss(1460).ws(7),
    );
    s.expect(100, seg(".").seq(D).ack(P));
    s
}

/// The peer sends `segments` full segments from `seq` at `at` ms; the application reads
/// `read` bytes after each one (or all that is queued, for `usize::MAX`). Returns the
/// next sequence number and the window (bytes) of the last segment we sent.
fn round(s: &mut Script, at: u64, seq: u32, segments: usize, read: usize) -> (u32, u64) {
    let mut seq = seq;
    for _ in 0..segments {
        s.inject(at, seg(".").seq(seq).ack(D).len(MSS));
        seq += MSS as u32;
        if read > 0 {
            s.recv(at, read.min(s.tcb.recv_queue_len()));
        }
    }
    let mut window = None;
    while s.pending() > 0 {
        let (r, _) = s.expect_next();
        window = Some(u64::from(r.window_len) << WS);
    }
    (seq, window.unwrap_or(0))
}

#[test]
fn window_scale_is_chosen_for_the_maximum_not_the_initial_buffer() {
    assert_eq!(tuned().recv_window_shift(), WS);
    let default = TcpConfig::default();
    assert_eq!(default.recv_buffer, 256 * 1024);
    assert_eq!(
        default.recv_window_shift(),
        7,
        "6 MiB >> 7 fits 16 bits, as Linux"
    );
    let fixed = TcpConfig {
        autotune: false,
        ..default
    };
    assert_eq!(fixed.recv_window_shift(), 3, "256 KiB >> 3 fits");
    let pinned = TcpConfig {
        recv_buffer_max: default.recv_buffer,
        ..default
    };
    assert_eq!(
        pinned.recv_window_shift(),
        3,
        "a pinned buffer is its own maximum"
    );
}

#[test]
fn drs_grows_the_receive_window_when_the_application_reads_fast() {
    let mut s = established(&tuned());
    assert_eq!(s.tcb.info().rcv_buf, 64 * 1024);
    assert_eq!(
        s.tcb.info().rcv_space,
        10 * 1460,
        "Linux's first guess: ten segments"
    );
    // Round trips of 100 ms: the peer fills 40 segments (58,400 bytes) into the 64 KiB
    // window, the application reads each at once.
    let (seq, w1) = round(&mut s, 200, P, 40, usize::MAX);
    assert!(
        w1 <= 64 * 1024 + 31,
        "first round: the initial window, {w1}"
    );
    let (_, w2) = round(&mut s, 300, seq, 40, usize::MAX);
    let info = s.tcb.info();
    // rcvwin = 2 x 58,400 read in the round trip + 16 segments = 140,160, plus twice the
    // growth over the last measurement (14,600 -> 58,400, 3x) on top: 981,120 (< 1 MiB).
    assert_eq!(
        info.rcv_space,
        40 * 1460,
        "what the application read in one round trip"
    );
    assert_eq!(info.rcv_buf, 981_120);
    assert!(w2 > 900_000, "the advertised window follows: {w2}");
    // The last ACK left one segment unacknowledged (delayed ACK): same right edge.
    assert_eq!(u64::from(info.rcv_wnd) + MSS as u64, w2);
}

#[test]
fn drs_does_not_grow_for_a_slow_reader() {
    let mut s = established(&tuned());
    // Ten segments per round trip arrive; the application reads 700 bytes after each,
    // 7,000 per round trip, under the 14,600 it started from.
    let mut seq = P;
    for r in 0..6 {
        let (next, _) = round(&mut s, 200 + 100 * r, seq, 10, 700);
        seq = next;
    }
    let info = s.tcb.info();
    assert_eq!(info.rcv_buf, 64 * 1024, "never grown");
    assert_eq!(info.rcv_space, 10 * 1460);
    assert!(
        s.tcb.recv_queue_len() > 40_000,
        "the backlog the reader left"
    );
}

#[test]
fn drs_is_bounded_by_the_maximum_and_the_window_never_shrinks() {
    let cfg = TcpConfig {
        recv_buffer_max: 128 * 1024,
        ..tuned()
    };
    let mut s = established(&cfg);
    let mut seq = P;
    let mut last_right_edge = 0u64;
    for r in 0..8u64 {
        // As much as the last window allowed, capped at 80 segments.
        let (next, window) = round(&mut s, 200 + 100 * r, seq, 40, usize::MAX);
        seq = next;
        let right = u64::from(seq.wrapping_sub(P)) + window;
        assert!(
            right >= last_right_edge,
            "RFC 9293 §3.8.6.2.2: the right edge never moves left"
        );
        last_right_edge = right;
        assert!(s.tcb.info().rcv_buf <= 128 * 1024);
    }
    assert_eq!(
        s.tcb.info().rcv_buf,
        128 * 1024,
        "grown to the maximum, no further"
    );
}

#[test]
fn so_rcvbuf_pins_the_receive_buffer() {
    let mut s = established(&tuned());
    s.call(150, |tcb| tcb.pin_recv_buffer(64 * 1024));
    let mut seq = P;
    for r in 0..4 {
        let (next, window) = round(&mut s, 200 + 100 * r, seq, 40, usize::MAX);
        seq = next;
        assert!(window <= 64 * 1024 + 31, "window {window}");
    }
    assert_eq!(
        s.tcb.info().rcv_buf,
        64 * 1024,
        "autotuning is off for this socket"
    );
    assert_eq!(s.tcb.config().recv_buffer_max, 64 * 1024);
}

#[test]
fn autotune_off_keeps_both_buffers_fixed() {
    let cfg = TcpConfig {
        autotune: false,
        ..tuned()
    };
    let mut s = established(&cfg);
    let mut seq = P;
    for r in 0..4 {
        seq = round(&mut s, 200 + 100 * r, seq, 40, usize::MAX).0;
    }
    assert_eq!(s.tcb.info().rcv_buf, 64 * 1024);
}

/// Sends what the buffer takes and acknowledges every segment at once, for `rounds` round
/// trips of 100 ms; returns the bytes the application could queue in all.
fn send_rounds(s: &mut Script, rounds: u64) -> usize {
    let mut queued = 0;
    let chunk = vec![7u8; 64 * 1024];
    for r in 0..rounds {
        let at = 200 + 100 * r;
        queued += s.call(at, |tcb| tcb.send(&chunk).unwrap_or(0));
        let mut acks = Vec::new();
        while s.pending() > 0 {
            let (repr, payload) = s.expect_next();
            acks.push(repr.seq_number.wrapping_add(payload.len() as u32));
        }
        for ack in acks {
            s.inject(at + 100, seg(".").seq(P).ack(ack).win(65535));
            let info = s.tcb.info();
            // tcp_sndbuf_expand: twice the congestion window, within the maximum.
            let cwnd = u64::from(info.snd_cwnd * info.snd_mss);
            assert!(
                u64::from(info.snd_buf) >= (2 * cwnd).min(1 << 20),
                "send buffer {} behind cwnd {cwnd}",
                info.snd_buf
            );
        }
        queued += s.call(at + 100, |tcb| tcb.send(&chunk).unwrap_or(0));
    }
    queued
}

#[test]
fn send_buffer_follows_cwnd() {
    let mut s = established(&tuned());
    assert_eq!(s.tcb.info().snd_buf, 16 * 1024);
    let queued = send_rounds(&mut s, 5);
    let info = s.tcb.info();
    assert!(
        info.snd_cwnd > 40,
        "slow start grew cwnd: {}",
        info.snd_cwnd
    );
    assert!(info.snd_buf > 64 * 1024, "grown: {}", info.snd_buf);
    assert!(info.snd_buf <= 1 << 20);
    assert!(queued > 64 * 1024, "the application queued {queued}");
}

#[test]
fn so_sndbuf_pins_the_send_buffer() {
    let mut s = established(&tuned());
    s.call(150, |tcb| tcb.pin_send_buffer(16 * 1024));
    let chunk = vec![7u8; 64 * 1024];
    for r in 0..5u64 {
        let at = 200 + 100 * r;
        s.call(at, |tcb| tcb.send(&chunk).unwrap_or(0));
        let mut acks = Vec::new();
        while s.pending() > 0 {
            let (repr, payload) = s.expect_next();
            acks.push(repr.seq_number.wrapping_add(payload.len() as u32));
        }
        for ack in acks {
            s.inject(at + 100, seg(".").seq(P).ack(ack).win(65535));
        }
    }
    // The pinned buffer, not the window, limits the sender: slow start took cwnd to
    // twice the most in flight (about 2 x 16 KiB) and no further (window validation,
    // RFC 9438 §5.8, as Linux's `tcp_is_cwnd_limited`).
    let info = s.tcb.info();
    let cwnd_bytes = info.snd_cwnd * info.snd_mss;
    assert!(
        cwnd_bytes > 16 * 1024 && cwnd_bytes <= 2 * 16 * 1024 + info.snd_mss,
        "cwnd {} segments of {}",
        info.snd_cwnd,
        info.snd_mss
    );
    assert_eq!(
        s.tcb.info().snd_buf,
        16 * 1024,
        "autotuning is off for this socket"
    );
}

/// 100 Mbit/s (80 ns per byte), 25 ms each way: a 50 ms RTT, a bandwidth-delay product of
/// 625,000 bytes, and a drop-tail queue of one BDP.
fn long_fat_path() -> (LinkConfig, LinkConfig) {
    let data = LinkConfig {
        delay: Duration::from_millis(25),
        nanos_per_byte: 80,
        max_queue: Some(Duration::from_millis(50)),
        ..LinkConfig::default()
    };
    let acks = LinkConfig {
        delay: Duration::from_millis(25),
        ..LinkConfig::default()
    };
    (data, acks)
}

const LEN: u64 = 64 << 20;

/// One client-to-server transfer of `LEN` bytes over the long fat path: goodput in Mbit/s
/// (virtual time) and the most ring storage either end held at once.
fn transfer(cfg: &TcpConfig) -> (f64, usize) {
    let (c2s, s2c) = long_fat_path();
    let mut p = Pair::with_links(cfg, cfg, c2s, s2c, 7);
    p.handshake();
    let start = p.now;
    let mut src = Source::new(7, LEN);
    let (mut sent, mut got) = (Sha256::new(), Sha256::new());
    let mut received = 0u64;
    let mut held = 0usize;
    let mut buf = vec![0u8; 64 * 1024];
    for _ in 0..50_000_000u64 {
        src.pump(&mut p.client, |b| sent.update(b));
        let server = p.server.as_mut().expect("server");
        received += drain_into(server, &mut buf, |b| got.update(b)).0 as u64;
        held = held.max(p.client.buffer_bytes() + p.server().buffer_bytes());
        if received == LEN {
            break;
        }
        assert!(p.step(), "idle before the transfer finished");
        assert!(
            p.now - start < Duration::from_secs(600),
            "ten minutes of virtual time"
        );
    }
    assert_eq!(received, LEN);
    assert_eq!(sent.finalize(), got.finalize(), "the bytes arrived intact");
    let secs = (p.now - start).as_secs_f64();
    (LEN as f64 * 8.0 / secs / 1e6, held)
}

#[test]
fn autotuning_fills_a_long_fat_path_that_fixed_buffers_cannot() {
    let fixed = TcpConfig {
        autotune: false,
        ..TcpConfig::default()
    };
    let (fixed_mbps, fixed_held) = transfer(&fixed);
    let (tuned_mbps, tuned_held) = transfer(&TcpConfig::default());
    println!(
        "100 Mbit/s x 50 ms, {} MiB: fixed 256 KiB {fixed_mbps:.1} Mbit/s (held {fixed_held} B), \
         autotuned {tuned_mbps:.1} Mbit/s (held {tuned_held} B)",
        LEN >> 20
    );
    // One 256 KiB window per 50 ms round trip is 41.9 Mbit/s at most.
    let window_bound = 256.0 * 1024.0 * 8.0 / 0.050 / 1e6;
    assert!(
        fixed_mbps <= window_bound,
        "fixed {fixed_mbps} above its window bound"
    );
    // The path's BDP (625,000 bytes) is 2.4 such windows: autotuning must get well past the
    // fixed buffers' ceiling (slow start and the first queue overflow included).
    assert!(
        tuned_mbps > 1.8 * fixed_mbps,
        "autotuned {tuned_mbps} vs fixed {fixed_mbps}"
    );
    assert!(tuned_mbps > 0.8 * 100.0, "near the link rate: {tuned_mbps}");
    // Memory: the rings hold what is queued, at most the two maxima's pool classes.
    assert!(tuned_held <= (8 << 20) + (4 << 20), "held {tuned_held}");
    let pool = buffer_pool::with_pool(|p| p.idle_bytes());
    assert!(pool <= buffer_pool::with_pool(|p| p.idle_cap()));
}

//! Bad input never panics nor grows memory: random segments (any flags, sequence and
//! acknowledgment numbers near and far from the window, bogus options, odd sizes) and random
//! timing thrown at connections in every state.

mod tcp_support;

use core::time::Duration;
use proptest::prelude::*;
use surge_stack::tcp::{State, Tcb, TcpConfig};
use surge_stack::time::Instant;
use surge_stack::wire::{SackBlocks, TcpFlags, TcpOptions, TcpRepr};
use tcp_support::script::{LOCAL_ISS, PEER_ISS, Script, seg};
use tcp_support::{client_tuple, plain, server_tuple};

#[derive(Debug, Clone)]
struct Input {
    flags: u8,
    seq_near: bool,
    seq_off: i32,
    seq_any: u32,
    ack_near: bool,
    ack_off: i32,
    ack_any: u32,
    window: u16,
    mss: Option<u16>,
    ws: Option<u8>,
    sack_perm: bool,
    ts: Option<(u32, u32)>,
    sack: Vec<(u32, u32)>,
    len: usize,
    advance_ms: u64,
    user: u8,
}

fn input() -> impl Strategy<Value = Input> {
    (
        (
            any::<u8>(),
            any::<bool>(),
            -70_000i32..70_000,
            any::<u32>(),
            any::<bool>(),
            -70_000i32..70_000,
            any::<u32>(),
        ),
        (
            any::<u16>(),
            any::<Option<u16>>(),
            any::<Option<u8>>(),
            any::<bool>(),
            any::<Option<(u32, u32)>>(),
        ),
        (
            proptest::collection::vec(any::<(u32, u32)>(), 0..5),
            0usize..3000,
            prop_oneof![Just(0u64), 0u64..50, 0u64..5000],
            any::<u8>(),
        ),
    )
        .prop_map(
            |(
                (flags, seq_near, seq_off, seq_any, ack_near, ack_off, ack_any),
                (window, mss, ws, sack_perm, ts),
                (sack, len, advance_ms, user),
            )| Input {
                flags,
                seq_near,
                seq_off,
                seq_any,
                ack_near,
                ack_off,
                ack_any,
                window,
                mss,
                ws,
                sack_perm,
                ts,
                sack,
                len,
                advance_ms,
                user,
            },
        )
}

fn to_repr(i: &Input, tcb: &Tcb) -> TcpRepr {
    let t = tcb.tuple();
    let mut sack = SackBlocks::new();
    for &(l, r) in &i.sack {
        sack.push(l, r);
    }
    // "Near" numbers are relative to the ISNs both sides use in these tests.
    let seq = if i.seq_near {
        (PEER_ISS + 1).wrapping_add_signed(i.seq_off)
    } else {
        i.seq_any
    };
    let ack = if i.ack_near {
        (LOCAL_ISS + 1).wrapping_add_signed(i.ack_off)
    } else {
        i.ack_any
    };
    TcpRepr {
        src_port: t.remote_port,
        dst_port: t.local_port,
        seq_number: seq,
        ack_number: ack,
        flags: TcpFlags(i.flags),
        window_len: i.window,
        urgent_pointer: 0,
        options: TcpOptions {
            mss: i.mss,
            window_scale: i.ws,
            sack_permitted: i.sack_perm,
            sack_blocks: sack,
            timestamp: i.ts,
        },
    }
}

fn start(kind: u8, cfg: &TcpConfig) -> (Tcb, Instant) {
    let now = Instant::from_millis(100);
    match kind % 4 {
        0 => (Script::established(cfg).tcb, now),
        1 => (
            Tcb::connect(client_tuple(), LOCAL_ISS, Instant::ZERO, cfg),
            Instant::ZERO,
        ),
        2 => {
            let syn = seg("S").seq(PEER_ISS).mss(1460).to_repr(40000, 80);
            (
                Tcb::accept_syn(server_tuple(), &syn, LOCAL_ISS, Instant::ZERO, cfg),
                Instant::ZERO,
            )
        }
        _ => {
            let mut s = Script::established(cfg);
            s.call(150, |t| t.close());
            (s.tcb, s.now)
        }
    }
}

fn run(kind: u8, cfg: TcpConfig, inputs: Vec<Input>) {
    let (mut tcb, mut now) = start(kind, &cfg);
    let payload = vec![0x5au8; 3000];
    let mut out = vec![0u8; 70_000];
    let mut rbuf = vec![0u8; 4096];
    for i in &inputs {
        now += Duration::from_millis(i.advance_ms);
        if tcb.poll_at().is_some_and(|d| d <= now) {
            tcb.handle_timeout(now);
        }
        let repr = to_repr(i, &tcb);
        tcb.handle_segment(now, &repr, &payload[..i.len]);
        match i.user % 8 {
            0 => {
                let _ = tcb.send(&payload[..i.len]);
            }
            1 => {
                let _ = tcb.recv(&mut rbuf);
            }
            2 if i.user > 250 => tcb.close(),
            3 if i.user > 250 => tcb.abort(),
            4 if i.user > 250 => tcb.shutdown_write(),
            _ => {}
        }
        let mut n = 0;
        while let Some(t) = tcb.poll_transmit(now, &mut out) {
            assert!(
                t.payload_len <= usize::from(cfg.mss),
                "segment larger than MSS"
            );
            n += 1;
            assert!(n < 1000, "runaway output for one input");
        }
        assert!(tcb.recv_queue_len() <= cfg.recv_buffer_limit());
        assert!(tcb.send_queue_len() <= cfg.send_buffer_limit());
        if let Some(d) = tcb.poll_at() {
            assert!(
                d >= now || tcb.state() != State::Closed,
                "closed connections keep no timers"
            );
        }
    }
    // Let every timer run out: the connection must end up quiet and bounded.
    for _ in 0..200 {
        let Some(d) = tcb.poll_at() else { break };
        now = now.max(d);
        tcb.handle_timeout(now);
        while tcb.poll_transmit(now, &mut out).is_some() {}
    }
    if tcb.state() == State::Closed {
        assert_eq!(tcb.poll_at(), None);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]
    #[test]
    fn random_segments_never_panic_plain(kind in any::<u8>(), inputs in proptest::collection::vec(input(), 1..80)) {
        run(kind, TcpConfig { recv_buffer: 8192, send_buffer: 8192, ..plain() }, inputs);
    }

    #[test]
    fn random_segments_never_panic_all_options(kind in any::<u8>(), inputs in proptest::collection::vec(input(), 1..80)) {
        let cfg = TcpConfig { recv_buffer: 100_000, send_buffer: 8192, ooo_max_ranges: 4, ooo_max_bytes: 5000, ..TcpConfig::default() };
        run(kind, cfg, inputs);
    }
}

#[test]
fn peer_that_never_acks_is_dropped_and_buffers_stay_bounded() {
    let mut s = Script::established(&TcpConfig {
        send_buffer: 4096,
        ..plain()
    });
    assert_eq!(s.send(200, &[0u8; 10_000]), 4096);
    s.advance(2_000_000);
    assert_eq!(s.tcb.state(), State::Closed);
    assert!(s.tcb.stats().retransmits >= 15);
}

#[test]
fn flood_of_out_of_window_segments_is_answered_but_bounded() {
    let mut s = Script::established(&TcpConfig {
        quickack_segments: 0,
        ..plain()
    });
    for i in 0..10_000u32 {
        s.inject(
            200,
            seg("P.")
                .seq(PEER_ISS + 1_000_000 + i * 10)
                .ack(LOCAL_ISS + 1)
                .len(100),
        );
        s.expect(200, seg(".").ack(PEER_ISS + 1));
    }
    assert_eq!(s.tcb.recv_queue_len(), 0);
    assert_eq!(s.tcb.stats().unacceptable, 10_000);
}

#[test]
fn extreme_configuration_values_do_not_panic() {
    let ka = surge_stack::tcp::KeepaliveConfig {
        idle: Duration::MAX,
        interval: Duration::MAX,
        count: u32::MAX,
    };
    let cfg = TcpConfig {
        initial_window: u32::MAX,
        mss: 0,
        min_mss: 0,
        send_buffer: 0,
        recv_buffer: 0,
        ooo_max_ranges: 0,
        ooo_max_bytes: 0,
        keepalive: Some(ka),
        user_timeout: Some(Duration::MAX),
        rto_min: Duration::MAX,
        rto_max: Duration::ZERO,
        rto_initial: Duration::MAX,
        delayed_ack: Duration::MAX,
        time_wait: Duration::MAX,
        ..TcpConfig::default()
    };
    for cfg in [
        cfg,
        TcpConfig {
            rto_min: Duration::from_millis(1),
            ..cfg
        },
    ] {
        let mut c = Tcb::connect(client_tuple(), LOCAL_ISS, Instant::ZERO, &cfg);
        let mut out = [0u8; 100];
        let mut now = Instant::ZERO;
        let synack = seg("S.")
            .seq(PEER_ISS)
            .ack(LOCAL_ISS + 1)
            .mss(0)
            .ws(200)
            .to_repr(80, 40000);
        let data = seg("P.")
            .seq(PEER_ISS + 1)
            .ack(LOCAL_ISS + 1)
            .to_repr(80, 40000);
        for step in 0..50u64 {
            while c.poll_transmit(now, &mut out).is_some() {}
            match step {
                1 => c.handle_segment(now, &synack, &[]),
                2..=10 => c.handle_segment(now, &data, b"0123456789"),
                _ => {}
            }
            let _ = c.send(b"abc");
            let mut r = [0u8; 4];
            let _ = c.recv(&mut r);
            now = c.poll_at().unwrap_or(now + Duration::from_secs(1)).max(now);
            c.handle_timeout(now);
        }
        c.handle_timeout(Instant::MAX);
        let _ = c.poll_at();
    }
}

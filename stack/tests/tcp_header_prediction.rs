//! Header prediction (`TcpConfig::header_prediction`, `stack/src/tcp/fast.rs`) is a short
//! path with exactly the effects of the full RFC 9293 §3.10.7 processing. Differential
//! tests: the same seeded scenario runs twice in lockstep, prediction on and off, and after
//! every step both connections of the two runs must be in the same state (their whole
//! `Debug` form, which shows every field of the `Tcb` but the buffers' bytes) apart from the
//! prediction counter and the flag itself; at the end the segment logs, `TcpStats` and
//! `TcpInfo` must be equal. Script tests check that the short path runs where it should and
//! not where it must not.
//!
//! Both ends' ISSs in the pair (`CLIENT_ISS`, `SERVER_ISS`) lie just below 2^32, so every
//! pair scenario also crosses the sequence-number wrap.

mod tcp_support;

use core::time::Duration;
use proptest::prelude::*;
use surge_stack::tcp::{CongestionAlgorithm, Ecn, LossRecovery, Tcb, TcpConfig};
use tcp_support::lockstep::{
    Scenario, Switch, Workload, bulk, link, link_strategy, normalized, rr, run_both,
    workload_strategy,
};
use tcp_support::pair::LinkConfig;
use tcp_support::script::{LOCAL_ISS, PEER_ISS, Script, Seg, ms, seg};
use tcp_support::{CLIENT, SERVER};

/// Header prediction on and off: a switch in the configuration, its count in the stats.
const SWITCH: Switch = Switch {
    config: |cfg, on| TcpConfig {
        header_prediction: on,
        ..*cfg
    },
    ignored: &["predicted: ", "header_prediction: "],
    count: |tcb| tcb.stats().predicted,
    strip: |mut stats| {
        stats.predicted = 0;
        stats
    },
};

#[test]
fn request_response_on_a_clean_link_is_almost_all_predicted() {
    for (cfg, request, response) in [
        (TcpConfig::default(), 64, 64),
        (TcpConfig::default(), 100, 3000),
        (
            TcpConfig {
                nodelay: true,
                ..TcpConfig::default()
            },
            64,
            64,
        ),
    ] {
        let s = Scenario::new(cfg, link(5), 1, rr(300, request, response));
        let o = run_both(&s, &SWITCH);
        // Not predicted: the handshake's SYN-ACK and ACK, the FINs and their ACKs, and
        // the odd segment whose window field changed.
        assert!(
            o.predicted * 100 >= o.segs_in() * 90,
            "{s:?}: {} of {} segments predicted",
            o.predicted,
            o.segs_in()
        );
        assert_eq!(o.stats[0].bytes_in, 300 * response as u64);
    }
}

#[test]
fn bulk_transfers_agree_both_ways() {
    for (seed, workload) in [
        (2, bulk(1 << 20, 0)),
        (3, bulk(0, 1 << 20)),
        (4, bulk(512 << 10, 512 << 10)),
    ] {
        let o = run_both(
            &Scenario::new(TcpConfig::default(), link(10), seed, workload),
            &SWITCH,
        );
        assert!(o.predicted * 2 > o.segs_in(), "{workload:?}: {o:?}");
    }
}

#[test]
fn loss_reordering_and_jitter_agree() {
    let lossy = LinkConfig {
        loss: 0.03,
        reorder: 0.05,
        reorder_delay: Duration::from_millis(4),
        ..link(10)
    };
    let jitter = LinkConfig {
        reorder: 1.0,
        reorder_delay: Duration::from_millis(3),
        ..link(5)
    };
    for (seed, l, workload) in [
        (5, lossy, bulk(400 << 10, 0)),
        (6, lossy, bulk(200 << 10, 200 << 10)),
        (7, lossy, rr(200, 200, 2000)),
        (8, jitter, bulk(400 << 10, 0)),
        (9, jitter, rr(200, 64, 64)),
    ] {
        let o = run_both(
            &Scenario::new(TcpConfig::default(), l, seed, workload),
            &SWITCH,
        );
        assert!(o.predicted > 0, "{workload:?}: {o:?}");
        if let Workload::RequestResponse { .. } = workload {
            // One segment in flight at a time: nothing to reorder, maybe nothing lost.
            continue;
        }
        assert!(
            o.stats[0].retransmits + o.stats[1].retransmits > 0
                || o.stats[0].ooo_bytes + o.stats[1].ooo_bytes > 0,
            "{workload:?}: the link impaired nothing"
        );
    }
}

#[test]
fn small_and_zero_windows_agree() {
    let small = TcpConfig {
        recv_buffer: 4096,
        autotune: false,
        window_scaling: false,
        ..TcpConfig::default()
    };
    for (read_every, workload) in [(1, bulk(200 << 10, 0)), (40, bulk(100 << 10, 100 << 10))] {
        let mut s = Scenario::new(small, link(2), 10, workload);
        s.read_every = read_every;
        let o = run_both(&s, &SWITCH);
        assert!(o.predicted > 0, "{s:?}: {o:?}");
        if read_every > 1 {
            assert!(
                o.stats[0].window_probes + o.stats[1].window_probes > 0,
                "{s:?}: the window never closed"
            );
        }
    }
}

#[test]
fn every_option_combination_agrees() {
    let d = TcpConfig::default();
    let configs = [
        TcpConfig {
            timestamps: false,
            ..d
        },
        TcpConfig { sack: false, ..d },
        TcpConfig { ecn: true, ..d },
        TcpConfig {
            window_scaling: false,
            ..d
        },
        TcpConfig {
            congestion: CongestionAlgorithm::NewReno,
            ..d
        },
        TcpConfig {
            congestion: CongestionAlgorithm::Bbr,
            ..d
        },
        TcpConfig { pacing: true, ..d },
        TcpConfig {
            loss_recovery: LossRecovery::NewReno,
            ..d
        },
        TcpConfig {
            timestamps: false,
            sack: false,
            window_scaling: false,
            ..d
        },
    ];
    let lossy = LinkConfig {
        loss: 0.02,
        reorder: 0.05,
        ..link(5)
    };
    for (i, cfg) in configs.into_iter().enumerate() {
        for (l, workload) in [
            (link(5), rr(100, 300, 3000)),
            (lossy, bulk(300 << 10, 100 << 10)),
        ] {
            let s = Scenario::new(cfg, l, 20 + i as u64, workload);
            let o = run_both(&s, &SWITCH);
            if cfg.congestion != CongestionAlgorithm::Bbr && !cfg.pacing {
                assert!(o.predicted > 0, "{s:?}: {o:?}");
            }
        }
    }
}

fn config_strategy() -> impl Strategy<Value = TcpConfig> {
    (
        any::<[bool; 5]>(),
        prop_oneof![
            Just(CongestionAlgorithm::Cubic),
            Just(CongestionAlgorithm::NewReno),
            Just(CongestionAlgorithm::Bbr)
        ],
        prop_oneof![Just(None), Just(Some(4096usize)), Just(Some(20_000))],
    )
        .prop_map(|([ts, sack, ecn, ws, nodelay], congestion, buffer)| {
            let d = TcpConfig::default();
            TcpConfig {
                timestamps: ts,
                sack,
                ecn,
                window_scaling: ws,
                nodelay,
                congestion,
                recv_buffer: buffer.unwrap_or(d.recv_buffer),
                autotune: buffer.is_none(),
                ..d
            }
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 40, ..ProptestConfig::default() })]

    #[test]
    fn random_scenarios_agree(
        client in config_strategy(),
        server in config_strategy(),
        c2s in link_strategy(),
        s2c in link_strategy(),
        seed in any::<u64>(),
        workload in workload_strategy(),
        read_every in prop_oneof![Just(1u64), Just(1), Just(7), Just(31)],
    ) {
        let s = Scenario { client, server, c2s, s2c, seed, workload, read_every };
        run_both(&s, &SWITCH);
    }
}

// Script tests: where the short path must and must not run. Each segment goes to two
// connections, prediction on and off; they must stay alike, and the counter tells whether
// the short path took the segment.

const D: u32 = LOCAL_ISS + 1;
const P: u32 = PEER_ISS + 1;

/// Two scripted connections fed the same segments.
struct Twin {
    on: Script,
    off: Script,
}

impl Twin {
    /// Established clients (our next sequence number `D`, the peer's `P`), with `cfg`
    /// and a SYN-ACK carrying `synack`'s options.
    fn established(cfg: &TcpConfig, synack: Seg) -> Twin {
        Twin::opened(cfg, "S", synack)
    }

    /// Like [`Twin::established`], our SYN carrying `syn_flags`.
    fn opened(cfg: &TcpConfig, syn_flags: &str, synack: Seg) -> Twin {
        let open = |on: bool| {
            let mut s = Script::client(&(SWITCH.config)(cfg, on));
            s.expect(0, seg(syn_flags).seq(LOCAL_ISS));
            s.inject(100, synack.clone());
            s.expect(100, seg(".").seq(D).ack(P));
            s
        };
        Twin {
            on: open(true),
            off: open(false),
        }
    }

    fn predicted(&self) -> u64 {
        self.on.tcb.stats().predicted
    }

    /// `s` arrives at `at` ms with `ecn`; returns whether the short path took it.
    fn inject(&mut self, at: u64, s: Seg, ecn: Ecn) -> bool {
        let before = self.predicted();
        let repr = s.to_repr(SERVER.port(), CLIENT.port());
        let payload = s.payload();
        for script in [&mut self.on, &mut self.off] {
            script.call(at, |tcb| {
                tcb.handle_segment_ecn(ms(at), &repr, &payload, ecn)
            });
        }
        assert_eq!(
            normalized(&self.on.tcb, &SWITCH),
            normalized(&self.off.tcb, &SWITCH),
            "state differs after {s:?}"
        );
        self.predicted() - before == 1
    }

    /// The user sends `n` bytes at `at` ms on both.
    fn send(&mut self, at: u64, n: usize) {
        let data = vec![7u8; n];
        assert_eq!(self.on.send(at, &data), n);
        assert_eq!(self.off.send(at, &data), n);
    }

    /// The user reads everything at `at` ms on both.
    fn read(&mut self, at: u64) {
        self.on.recv(at, 1 << 20);
        self.off.recv(at, 1 << 20);
    }
}

fn plain_synack() -> Seg {
    seg("S.").seq(PEER_ISS).ack(D).win(65535).mss(1460)
}

fn plain() -> TcpConfig {
    TcpConfig {
        timestamps: false,
        sack: false,
        window_scaling: false,
        ..TcpConfig::default()
    }
}

#[test]
fn predicted_segments_take_the_short_path() {
    let mut t = Twin::established(&plain(), plain_synack());
    // In-order text acknowledging nothing new.
    assert!(t.inject(200, seg(".").seq(P).ack(D).len(100), Ecn::NotEct));
    assert!(t.inject(210, seg(".P").seq(P + 100).ack(D).len(100), Ecn::NotEct));
    // A pure ACK of new data.
    t.send(220, 500);
    assert!(t.inject(230, seg(".").seq(P + 200).ack(D + 500), Ecn::NotEct));
    // Text that also acknowledges.
    t.send(240, 300);
    assert!(t.inject(250, seg(".").seq(P + 200).ack(D + 800).len(10), Ecn::NotEct));
}

#[test]
fn segments_the_short_path_must_not_take() {
    let mut t = Twin::established(&plain(), plain_synack());
    // A FIN, even at RCV.NXT with text.
    let mut f = Twin::established(&plain(), plain_synack());
    assert!(!f.inject(200, seg(".F").seq(P).ack(D).len(10), Ecn::NotEct));
    // A pure ACK that acknowledges nothing new (a duplicate-ACK candidate).
    t.send(200, 100);
    assert!(!t.inject(210, seg(".").seq(P).ack(D), Ecn::NotEct));
    // An ACK of new data that also changes the window is predicted (the window update is
    // the same rule on both paths).
    assert!(t.inject(220, seg(".").seq(P).ack(D + 100).win(30000), Ecn::NotEct));
    assert_eq!(t.on.tcb.info().snd_wnd, 30000);
    // Out-of-order text, then the text that fills the hole (the queue is not empty).
    assert!(!t.inject(
        230,
        seg(".").seq(P + 100).ack(D + 100).win(30000).len(100),
        Ecn::NotEct
    ));
    assert!(!t.inject(
        240,
        seg(".").seq(P).ack(D + 100).win(30000).len(100),
        Ecn::NotEct
    ));
    // With the hole filled, the next in-order text is predicted again.
    assert!(t.inject(
        250,
        seg(".").seq(P + 200).ack(D + 100).win(30000).len(100),
        Ecn::NotEct
    ));
    // An old segment (already received).
    assert!(!t.inject(
        260,
        seg(".").seq(P).ack(D + 100).win(30000).len(100),
        Ecn::NotEct
    ));
    // An ACK beyond SND.MAX, URG, SYN.
    assert!(!t.inject(
        270,
        seg(".").seq(P + 300).ack(D + 5000).win(30000),
        Ecn::NotEct
    ));
    assert!(!t.inject(
        280,
        seg(".U").seq(P + 300).ack(D + 100).win(30000).len(5),
        Ecn::NotEct
    ));
    assert!(!t.inject(
        290,
        seg("S.").seq(P + 305).ack(D + 100).win(30000),
        Ecn::NotEct
    ));
    t.read(295);
    // More text than the window holds.
    let small = TcpConfig {
        recv_buffer: 1000,
        autotune: false,
        ..plain()
    };
    let mut w = Twin::established(&small, plain_synack());
    assert!(!w.inject(200, seg(".").seq(P).ack(D).len(1001), Ecn::NotEct));
    // The window is closed now: one byte does not fit.
    assert!(!w.inject(210, seg(".").seq(P + 1000).ack(D).len(1), Ecn::NotEct));
}

#[test]
fn sack_blocks_and_a_sacked_scoreboard_are_not_predicted() {
    let cfg = TcpConfig {
        timestamps: false,
        window_scaling: false,
        ..TcpConfig::default()
    };
    let synack = plain_synack().sack_perm(true);
    let mut t = Twin::established(&cfg, synack);
    t.send(200, 4000);
    // A SACK block: not predicted.
    // The second segment (of 1460 bytes) SACKed.
    assert!(!t.inject(
        300,
        seg(".").seq(P).ack(D + 1000).sack(&[(D + 1460, D + 2920)]),
        Ecn::NotEct
    ));
    // Something is SACKed now: an ACK that advances without a block is not predicted either.
    assert!(!t.inject(310, seg(".").seq(P).ack(D + 1460), Ecn::NotEct));
    // Everything acknowledged: the scoreboard is empty again and the next segment is
    // predicted (a SACK block does not leave the connection on the long path for good).
    assert!(!t.inject(320, seg(".").seq(P).ack(D + 4000), Ecn::NotEct));
    assert!(t.inject(330, seg(".").seq(P).ack(D + 4000).len(10), Ecn::NotEct));
}

#[test]
fn timestamps_out_of_order_or_missing_are_not_predicted() {
    let cfg = TcpConfig {
        sack: false,
        window_scaling: false,
        ..TcpConfig::default()
    };
    let synack = plain_synack().ts(700, 0);
    let mut t = Twin::established(&cfg, synack);
    assert!(t.inject(200, seg(".").seq(P).ack(D).ts(800, 1).len(10), Ecn::NotEct));
    // TSval older than TS.Recent (PAWS rejects it).
    assert!(!t.inject(
        210,
        seg(".").seq(P + 10).ack(D).ts(799, 1).len(10),
        Ecn::NotEct
    ));
    // No timestamp option on a connection that has them.
    assert!(!t.inject(220, seg(".").seq(P + 10).ack(D).len(10), Ecn::NotEct));
    assert!(t.inject(
        230,
        seg(".").seq(P + 20).ack(D).ts(900, 1).len(10),
        Ecn::NotEct
    ));
}

#[test]
fn a_congestion_mark_is_not_predicted_with_ecn_and_is_without() {
    let ecn = TcpConfig {
        ecn: true,
        ..plain()
    };
    let synack = seg("S.E").seq(PEER_ISS).ack(D).win(65535).mss(1460);
    let mut t = Twin::opened(&ecn, "SEW", synack);
    assert!(t.on.tcb.info().ecn, "negotiated");
    assert!(!t.inject(200, seg(".").seq(P).ack(D).len(10), Ecn::Ce));
    assert!(t.inject(210, seg(".").seq(P + 10).ack(D).len(10), Ecn::Ect0));
    // Without ECN the mark means nothing: predicted.
    let mut n = Twin::established(&plain(), plain_synack());
    assert!(n.inject(200, seg(".").seq(P).ack(D).len(10), Ecn::Ce));
}

#[test]
fn a_closed_reader_and_a_recovering_sender_are_not_predicted() {
    let mut t = Twin::established(&plain(), plain_synack());
    t.send(200, 5000);
    assert!(t.inject(300, seg(".").seq(P).ack(D + 1000), Ecn::NotEct));
    // Three duplicate ACKs put the NewReno sender into fast recovery.
    for at in [301, 302, 303] {
        assert!(!t.inject(at, seg(".").seq(P).ack(D + 1000), Ecn::NotEct));
    }
    assert_eq!(t.on.tcb.stats().fast_retransmits, 1);
    // In recovery even in-order text with the same ACK takes the full path.
    assert!(!t.inject(304, seg(".").seq(P).ack(D + 1000).len(10), Ecn::NotEct));
    // close() with nothing unread: FIN-WAIT-1, the user reads no more.
    let mut c = Twin::established(&plain(), plain_synack());
    c.on.call(200, Tcb::close);
    c.off.call(200, Tcb::close);
    assert!(!c.inject(210, seg(".").seq(P).ack(D + 1).len(10), Ecn::NotEct));
}

/// One step of a random exchange against the twin connections.
#[derive(Debug, Clone)]
enum Op {
    /// A segment from the peer: flags, sequence and ACK offsets from RCV.NXT and SND.UNA,
    /// window, text length, TSval step (negative: older), a SACK block above SND.UNA, CE.
    Segment {
        flags: &'static str,
        seq: i32,
        ack: i32,
        win: u16,
        len: usize,
        ts_step: i32,
        sack: Option<(u32, u32)>,
        ce: bool,
    },
    /// The user writes this many bytes.
    Send(usize),
    /// The user reads everything.
    Read,
    /// Virtual time passes (timers run).
    Wait(u64),
}

fn op_strategy() -> impl Strategy<Value = Op> {
    let flags = prop_oneof![
        8 => Just("."),
        8 => Just(".P"),
        1 => Just(".F"),
        1 => Just(".PF"),
        1 => Just(".R"),
        1 => Just("R"),
        1 => Just("S"),
        1 => Just("S."),
        1 => Just(".U"),
        1 => Just(".E"),
        1 => Just(".W"),
        1 => Just(""),
    ];
    let segment = (
        flags,
        prop_oneof![6 => Just(0i32), 1 => -3000i32..3000],
        prop_oneof![3 => Just(0i32), 3 => 0i32..6000, 1 => -2000i32..0],
        prop_oneof![4 => Just(65535u16), 1 => any::<u16>(), 1 => Just(0u16)],
        prop_oneof![2 => Just(0usize), 3 => 1usize..1461, 1 => 1461usize..4000],
        prop_oneof![6 => 0i32..3, 1 => -5i32..0],
        prop_oneof![5 => Just(None), 1 => (0u32..6000, 1u32..3000).prop_map(Some)],
        prop_oneof![6 => Just(false), 1 => Just(true)],
    )
        .prop_map(
            |(flags, seq, ack, win, len, ts_step, sack, ce)| Op::Segment {
                flags,
                seq,
                ack,
                win,
                len,
                ts_step,
                sack,
                ce,
            },
        );
    prop_oneof![
        8 => segment,
        2 => (1usize..20_000).prop_map(Op::Send),
        1 => Just(Op::Read),
        1 => (1u64..400).prop_map(Op::Wait),
    ]
}

/// The twin connections of a random exchange: plain options, every option, or ECN.
fn twin_for(setup: u8) -> (Twin, bool) {
    let full = seg("S.")
        .seq(PEER_ISS)
        .ack(D)
        .win(65535)
        .mss(1460)
        .ws(7)
        .sack_perm(true)
        .ts(700, 0);
    match setup % 3 {
        0 => (Twin::established(&plain(), plain_synack()), false),
        1 => (Twin::established(&TcpConfig::default(), full), true),
        _ => {
            let ecn = TcpConfig {
                ecn: true,
                ..plain()
            };
            let synack = seg("S.E").seq(PEER_ISS).ack(D).win(65535).mss(1460);
            (Twin::opened(&ecn, "SEW", synack), false)
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    /// Hostile and ordinary segments alike, around the windows: the two connections never
    /// differ (a failed prediction changed nothing; a taken one did what the full path does).
    #[test]
    fn random_segments_agree(setup in any::<u8>(), ops in proptest::collection::vec(op_strategy(), 1..120)) {
        let (mut t, timestamps) = twin_for(setup);
        let mut at = 200u64;
        let mut tsval = 800u32;
        for op in ops {
            at += 1;
            match op {
                Op::Segment { flags, seq, ack, win, len, ts_step, sack, ce } => {
                    let info = t.on.tcb.info();
                    let rcv_nxt = P.wrapping_add(info.bytes_received as u32);
                    let snd_una = D.wrapping_add(info.bytes_acked as u32);
                    let mut s = seg(flags)
                        .seq(rcv_nxt.wrapping_add_signed(seq))
                        .ack(snd_una.wrapping_add_signed(ack))
                        .win(win)
                        .len(len);
                    if timestamps {
                        tsval = tsval.wrapping_add_signed(ts_step);
                        s = s.ts(tsval, 1);
                    }
                    if let Some((off, n)) = sack {
                        let l = snd_una.wrapping_add(off);
                        s = s.sack(&[(l, l.wrapping_add(n))]);
                    }
                    t.inject(at, s, if ce { Ecn::Ce } else { Ecn::Ect0 });
                }
                Op::Send(n) => {
                    let data = vec![3u8; n];
                    let a = t.on.call(at, |tcb| tcb.send(&data));
                    let b = t.off.call(at, |tcb| tcb.send(&data));
                    prop_assert_eq!(a, b);
                }
                Op::Read => {
                    let mut buf = vec![0u8; 1 << 20];
                    let a = t.on.call(at, |tcb| tcb.recv(&mut buf));
                    let b = t.off.call(at, |tcb| tcb.recv(&mut buf));
                    prop_assert_eq!(a, b);
                }
                Op::Wait(ms) => {
                    at += ms;
                    t.on.advance(at);
                    t.off.advance(at);
                }
            }
            prop_assert_eq!(normalized(&t.on.tcb, &SWITCH), normalized(&t.off.tcb, &SWITCH));
        }
    }
}

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
use surge_stack::tcp::{
    CongestionAlgorithm, Ecn, LossRecovery, Tcb, TcpConfig, TcpError, TcpInfo, TcpStats,
};
use surge_stack::time::Instant;
use surge_stack::wire::TcpRepr;
use tcp_support::pair::{LinkConfig, Pair, SERVER_ISS, drain_into};
use tcp_support::script::{LOCAL_ISS, PEER_ISS, Script, Seg, ms, seg};
use tcp_support::{CLIENT, SERVER, server_tuple};

/// What the two applications do.
#[derive(Debug, Clone, Copy)]
enum Workload {
    /// `rounds` requests of `request` bytes from the client, each answered with `response`
    /// bytes before the next goes out.
    RequestResponse {
        rounds: u32,
        request: usize,
        response: usize,
    },
    /// Both directions at once, as fast as the windows allow.
    Bulk { to_server: usize, to_client: usize },
}

/// One run: configurations, links, seed, workload, and how often the receivers read.
#[derive(Debug, Clone, Copy)]
struct Scenario {
    client: TcpConfig,
    server: TcpConfig,
    c2s: LinkConfig,
    s2c: LinkConfig,
    seed: u64,
    workload: Workload,
    /// The applications read only on every `read_every`-th step (slow readers close the
    /// window).
    read_every: u64,
}

impl Scenario {
    fn new(cfg: TcpConfig, link: LinkConfig, seed: u64, workload: Workload) -> Scenario {
        Scenario {
            client: cfg,
            server: cfg,
            c2s: link,
            s2c: link,
            seed,
            workload,
            read_every: 1,
        }
    }
}

/// What a run ends with, for the comparison and the assertions.
#[derive(Debug)]
struct Outcome {
    log: Vec<(Instant, bool, TcpRepr, usize)>,
    stats: [TcpStats; 2],
    info: [TcpInfo; 2],
}

impl Outcome {
    fn predicted(&self) -> u64 {
        self.stats[0].predicted + self.stats[1].predicted
    }

    fn segs_in(&self) -> u64 {
        self.stats[0].segs_in + self.stats[1].segs_in
    }
}

/// The applications of one pair, stepped in the same way for both runs.
struct Apps {
    workload: Workload,
    read_every: u64,
    step: u64,
    round: u32,
    waiting: bool,
    client_owed: usize,
    server_owed: usize,
    client_got: usize,
    server_got: usize,
    closed: bool,
    buf: Vec<u8>,
}

/// Queues up to `owed` bytes.
fn push(tcb: &mut Tcb, owed: &mut usize) {
    let chunk = [0x5au8; 8192];
    while *owed > 0 {
        match tcb.send(&chunk[..(*owed).min(chunk.len())]) {
            Ok(n) => *owed -= n,
            Err(TcpError::WouldBlock) => return,
            Err(e) => panic!("send failed: {e}"),
        }
    }
}

impl Apps {
    fn new(s: &Scenario) -> Apps {
        let (client_owed, server_owed) = match s.workload {
            Workload::RequestResponse { .. } => (0, 0),
            Workload::Bulk {
                to_server,
                to_client,
            } => (to_server, to_client),
        };
        Apps {
            workload: s.workload,
            read_every: s.read_every.max(1),
            step: 0,
            round: 0,
            waiting: false,
            client_owed,
            server_owed,
            client_got: 0,
            server_got: 0,
            closed: false,
            buf: vec![0; 64 * 1024],
        }
    }

    fn done(&self) -> bool {
        match self.workload {
            Workload::RequestResponse { rounds, .. } => self.round == rounds,
            Workload::Bulk {
                to_server,
                to_client,
            } => self.server_got == to_server && self.client_got == to_client,
        }
    }

    /// The applications' turn before a step: send, read, answer, and close when done.
    fn act(&mut self, p: &mut Pair) {
        self.step += 1;
        let Some(server) = p.server.as_mut() else {
            return;
        };
        if self.closed || !p.client.is_established() || !server.is_established() {
            return;
        }
        let read = self.step % self.read_every == 0;
        if let Workload::RequestResponse {
            rounds, request, ..
        } = self.workload
        {
            if !self.waiting && self.round < rounds {
                self.client_owed = request;
                self.waiting = true;
            }
        }
        push(&mut p.client, &mut self.client_owed);
        if read {
            self.server_got += drain_into(server, &mut self.buf, |_| {}).0;
        }
        if let Workload::RequestResponse {
            request, response, ..
        } = self.workload
        {
            while self.server_got >= request {
                self.server_got -= request;
                self.server_owed += response;
            }
        }
        push(server, &mut self.server_owed);
        if read {
            self.client_got += drain_into(&mut p.client, &mut self.buf, |_| {}).0;
        }
        if let Workload::RequestResponse { response, .. } = self.workload {
            if self.waiting && self.client_got >= response {
                self.client_got -= response;
                self.waiting = false;
                self.round += 1;
            }
        }
        if self.done() {
            p.client.close();
            server.close();
            self.closed = true;
        }
    }
}

/// Sends what both connections have to send.
fn flush(p: &mut Pair, buf: &mut [u8]) {
    while let Some(t) = p.client.poll_transmit(p.now, buf) {
        if let Some(log) = &mut p.log {
            log.push((p.now, true, t.repr, t.payload_len));
        }
        p.c2s.send(p.now, t.repr, buf[..t.payload_len].to_vec());
    }
    if let Some(server) = &mut p.server {
        while let Some(t) = server.poll_transmit(p.now, buf) {
            if let Some(log) = &mut p.log {
                log.push((p.now, false, t.repr, t.payload_len));
            }
            p.s2c.send(p.now, t.repr, buf[..t.payload_len].to_vec());
        }
    }
}

/// Hands every segment due now to its connection (the first SYN makes the server).
fn deliver(p: &mut Pair) -> bool {
    let mut any = false;
    while let Some((repr, payload)) = p.c2s.pop_due(p.now) {
        any = true;
        match &mut p.server {
            Some(s) => s.handle_segment(p.now, &repr, &payload),
            None => {
                p.server = Some(Tcb::accept_syn(
                    server_tuple(),
                    &repr,
                    SERVER_ISS,
                    p.now,
                    &p.server_cfg,
                ))
            }
        }
    }
    while let Some((repr, payload)) = p.s2c.pop_due(p.now) {
        any = true;
        p.client.handle_segment(p.now, &repr, &payload);
    }
    any
}

/// One step in an engine's order: segments due (else the next timer or arrival) go in,
/// the applications run, then output is drained — so an ACK leaves after the application
/// read, as in the engine. Returns false when nothing at all is scheduled.
fn engine_step(p: &mut Pair, apps: &mut Apps, buf: &mut [u8]) -> bool {
    if !deliver(p) {
        let next = [
            p.c2s.next_arrival(),
            p.s2c.next_arrival(),
            p.client.poll_at(),
            p.server.as_ref().and_then(|s| s.poll_at()),
        ]
        .into_iter()
        .flatten()
        .min();
        let Some(next) = next else {
            // Idle: the applications still get their turn (a slow reader may read now).
            apps.act(p);
            flush(p, buf);
            return false;
        };
        p.now = p.now.max(next);
        if p.client.poll_at().is_some_and(|d| d <= p.now) {
            p.client.handle_timeout(p.now);
        }
        if let Some(s) = &mut p.server {
            if s.poll_at().is_some_and(|d| d <= p.now) {
                s.handle_timeout(p.now);
            }
        }
        deliver(p);
    }
    apps.act(p);
    flush(p, buf);
    true
}

/// The `Debug` form of a connection without the two fields that differ by design.
fn normalized(tcb: &Tcb) -> String {
    let mut s = format!("{tcb:?}");
    for key in ["predicted: ", "header_prediction: "] {
        let mut from = 0;
        while let Some(i) = s[from..].find(key) {
            let start = from + i + key.len();
            let end = s[start..]
                .find(|c: char| !c.is_ascii_alphanumeric())
                .map_or(s.len(), |j| start + j);
            s.replace_range(start..end, "_");
            from = start;
        }
    }
    s
}

fn with_prediction(cfg: &TcpConfig, on: bool) -> TcpConfig {
    TcpConfig {
        header_prediction: on,
        ..*cfg
    }
}

fn pair_for(s: &Scenario, on: bool) -> Pair {
    let mut p = Pair::with_links(
        &with_prediction(&s.client, on),
        &with_prediction(&s.server, on),
        s.c2s,
        s.s2c,
        s.seed,
    );
    p.log = Some(Vec::new());
    p
}

/// Runs `s` with prediction on and off in lockstep until both are idle, asserting after
/// every step that the connections agree; returns the run with prediction on.
fn run_both(s: &Scenario) -> Outcome {
    let (mut on, mut off) = (pair_for(s, true), pair_for(s, false));
    let (mut apps_on, mut apps_off) = (Apps::new(s), Apps::new(s));
    let mut steps = 0u64;
    let mut idle = 0;
    let mut buf = vec![0u8; 70_000];
    flush(&mut on, &mut buf);
    flush(&mut off, &mut buf);
    loop {
        let more_on = engine_step(&mut on, &mut apps_on, &mut buf);
        let more_off = engine_step(&mut off, &mut apps_off, &mut buf);
        steps += 1;
        assert_eq!(
            more_on, more_off,
            "{s:?}: one run went idle at step {steps}"
        );
        assert_eq!(on.now, off.now, "{s:?}: clocks differ at step {steps}");
        let (log_on, log_off) = (on.log.as_ref().unwrap(), off.log.as_ref().unwrap());
        if log_on != log_off {
            let i = log_on
                .iter()
                .zip(log_off)
                .position(|(a, b)| a != b)
                .unwrap_or(log_on.len().min(log_off.len()));
            panic!(
                "{s:?}: segment logs differ at entry {i} (step {steps}):\n on:  {:?}\n off: {:?}",
                log_on.get(i),
                log_off.get(i)
            );
        }
        assert_eq!(
            normalized(&on.client),
            normalized(&off.client),
            "{s:?}: client state differs after step {steps}"
        );
        match (&on.server, &off.server) {
            (Some(a), Some(b)) => assert_eq!(
                normalized(a),
                normalized(b),
                "{s:?}: server state differs after step {steps}"
            ),
            (None, None) => {}
            _ => panic!("{s:?}: only one run has a server at step {steps}"),
        }
        if more_on {
            idle = 0;
        } else if apps_on.closed {
            break;
        } else {
            // Nothing scheduled, but a slow reader has yet to read.
            idle += 1;
            assert!(idle <= s.read_every + 1, "{s:?}: stalled at step {steps}");
        }
        assert!(steps < 400_000, "{s:?}: not idle after {steps} steps");
    }
    assert!(apps_on.done(), "{s:?}: the workload did not finish");
    let strip = |mut st: TcpStats| {
        st.predicted = 0;
        st
    };
    let server_on = on.server.as_ref().expect("server");
    let server_off = off.server.as_ref().expect("server");
    let outcome = Outcome {
        log: on.log.take().unwrap(),
        stats: [on.client.stats(), server_on.stats()],
        info: [on.client.info(), server_on.info()],
    };
    assert_eq!(outcome.log, off.log.take().unwrap());
    assert_eq!(strip(outcome.stats[0]), strip(off.client.stats()));
    assert_eq!(strip(outcome.stats[1]), strip(server_off.stats()));
    assert_eq!(outcome.info, [off.client.info(), server_off.info()]);
    assert_eq!(
        off.client.stats().predicted + server_off.stats().predicted,
        0
    );
    outcome
}

fn link(delay_ms: u64) -> LinkConfig {
    LinkConfig {
        delay: Duration::from_millis(delay_ms),
        ..LinkConfig::default()
    }
}

fn rr(rounds: u32, request: usize, response: usize) -> Workload {
    Workload::RequestResponse {
        rounds,
        request,
        response,
    }
}

fn bulk(to_server: usize, to_client: usize) -> Workload {
    Workload::Bulk {
        to_server,
        to_client,
    }
}

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
        let o = run_both(&s);
        // Not predicted: the handshake's SYN-ACK and ACK, the FINs and their ACKs, and
        // the odd segment whose window field changed.
        assert!(
            o.predicted() * 100 >= o.segs_in() * 90,
            "{s:?}: {} of {} segments predicted",
            o.predicted(),
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
        let o = run_both(&Scenario::new(
            TcpConfig::default(),
            link(10),
            seed,
            workload,
        ));
        assert!(o.predicted() * 2 > o.segs_in(), "{workload:?}: {o:?}");
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
        let o = run_both(&Scenario::new(TcpConfig::default(), l, seed, workload));
        assert!(o.predicted() > 0, "{workload:?}: {o:?}");
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
        let o = run_both(&s);
        assert!(o.predicted() > 0, "{s:?}: {o:?}");
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
            let o = run_both(&s);
            if cfg.congestion != CongestionAlgorithm::Bbr && !cfg.pacing {
                assert!(o.predicted() > 0, "{s:?}: {o:?}");
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

fn link_strategy() -> impl Strategy<Value = LinkConfig> {
    (1u64..30, 0.0..0.04f64, 0.0..0.3f64, 0u64..6, 0.0..0.02f64).prop_map(
        |(delay, loss, reorder, extra, duplicate)| LinkConfig {
            loss,
            reorder,
            reorder_delay: Duration::from_millis(extra),
            duplicate,
            ..link(delay)
        },
    )
}

fn workload_strategy() -> impl Strategy<Value = Workload> {
    prop_oneof![
        (1u32..60, 1usize..5000, 1usize..9000).prop_map(|(n, q, r)| rr(n, q, r)),
        (0usize..150_000, 0usize..150_000).prop_map(|(a, b)| bulk(a, b)),
    ]
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
        run_both(&s);
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
            let mut s = Script::client(&with_prediction(cfg, on));
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
            normalized(&self.on.tcb),
            normalized(&self.off.tcb),
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
            prop_assert_eq!(normalized(&t.on.tcb), normalized(&t.off.tcb));
        }
    }
}

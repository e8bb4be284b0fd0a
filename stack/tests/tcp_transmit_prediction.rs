//! Output prediction (`stack/src/tcp/output/predicted.rs`) is a short path with exactly
//! the effects of the general output path (`next_transmit`, `emit_data`). Differential
//! tests, on the model of `tcp_header_prediction.rs`: the same seeded scenario runs twice in
//! lockstep, output prediction on and off (`Tcb::set_transmit_prediction`), and after every
//! step both connections of the two runs must be in the same state (their whole `Debug`
//! form) apart from the flag and its counter, and must have sent the same segments; at the
//! end `TcpStats` and `TcpInfo` must be equal. Each test also checks that the short path
//! ran where it should (most data segments of a clean exchange) and not where it must not
//! (a sender model: pacing, BBR).

mod tcp_support;

use core::time::Duration;
use proptest::prelude::*;
use surge_stack::tcp::{
    CongestionAlgorithm, LossRecovery, Tcb, TcpConfig, TcpError, TcpInfo, TcpStats,
};
use surge_stack::time::Instant;
use surge_stack::wire::TcpRepr;
use tcp_support::pair::{LinkConfig, Pair, SERVER_ISS, drain_into};
use tcp_support::server_tuple;

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
    /// Segments the short output path built, both ends.
    predicted: u64,
}

impl Outcome {
    /// Segments with payload sent, both ends.
    fn data_segments(&self) -> u64 {
        self.log.iter().filter(|(_, _, _, len)| *len > 0).count() as u64
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

/// Sends what both connections have to send, with output prediction `on` (set here:
/// the server connection is made by the first SYN's delivery).
fn flush(p: &mut Pair, buf: &mut [u8], on: bool) {
    p.client.set_transmit_prediction(on);
    if let Some(server) = &mut p.server {
        server.set_transmit_prediction(on);
    }
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
fn engine_step(p: &mut Pair, apps: &mut Apps, buf: &mut [u8], on: bool) -> bool {
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
            flush(p, buf, on);
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
    flush(p, buf, on);
    true
}

/// The `Debug` form of a connection without the two fields that differ by design.
fn normalized(tcb: &Tcb) -> String {
    let mut s = format!("{tcb:?}");
    for key in ["transmit_prediction: ", "predicted_transmits: "] {
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

fn pair_for(s: &Scenario) -> Pair {
    let mut p = Pair::with_links(&s.client, &s.server, s.c2s, s.s2c, s.seed);
    p.log = Some(Vec::new());
    p
}

/// Runs `s` with prediction on and off in lockstep until both are idle, asserting after
/// every step that the connections agree; returns the run with prediction on.
fn run_both(s: &Scenario) -> Outcome {
    let (mut on, mut off) = (pair_for(s), pair_for(s));
    let (mut apps_on, mut apps_off) = (Apps::new(s), Apps::new(s));
    let mut steps = 0u64;
    let mut idle = 0;
    let mut buf = vec![0u8; 70_000];
    flush(&mut on, &mut buf, true);
    flush(&mut off, &mut buf, false);
    loop {
        let more_on = engine_step(&mut on, &mut apps_on, &mut buf, true);
        let more_off = engine_step(&mut off, &mut apps_off, &mut buf, false);
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
    let server_on = on.server.as_ref().expect("server");
    let server_off = off.server.as_ref().expect("server");
    let outcome = Outcome {
        log: on.log.take().unwrap(),
        stats: [on.client.stats(), server_on.stats()],
        info: [on.client.info(), server_on.info()],
        predicted: on.client.predicted_transmits() + server_on.predicted_transmits(),
    };
    assert_eq!(outcome.log, off.log.take().unwrap());
    assert_eq!(outcome.stats, [off.client.stats(), server_off.stats()]);
    assert_eq!(outcome.info, [off.client.info(), server_off.info()]);
    assert_eq!(
        off.client.predicted_transmits() + server_off.predicted_transmits(),
        0,
        "the short path ran while turned off"
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
    let nodelay = TcpConfig {
        nodelay: true,
        ..TcpConfig::default()
    };
    for (cfg, request, response) in [
        (TcpConfig::default(), 64, 64),
        (TcpConfig::default(), 100, 3000),
        (nodelay, 64, 64),
        (nodelay, 5000, 20_000),
    ] {
        let s = Scenario::new(cfg, link(5), 1, rr(300, request, response));
        let o = run_both(&s);
        // Not predicted: the FINs, and segments Nagle or a window held back at first.
        assert!(
            o.predicted * 100 >= o.data_segments() * 90,
            "{s:?}: {} of {} data segments predicted",
            o.predicted,
            o.data_segments()
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
        assert!(o.predicted * 2 > o.data_segments(), "{workload:?}: {o:?}");
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
        assert!(o.predicted > 0, "{workload:?}: {o:?}");
        if l.loss > 0.0 && matches!(workload, Workload::Bulk { .. }) {
            // Loss was repaired, and retransmissions go the general path.
            assert!(
                o.stats[0].retransmits + o.stats[1].retransmits > 0,
                "{workload:?}: nothing was retransmitted"
            );
            assert!(o.predicted < o.data_segments(), "{workload:?}");
        }
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
        d,
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
            slow_start_after_idle: false,
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
            if cfg.congestion == CongestionAlgorithm::Bbr {
                // A model-based algorithm (and its sender model) never takes the short path.
                assert_eq!(o.predicted, 0, "{s:?}");
            } else if cfg.pacing {
                // Only what goes out before the pacer has a rate (no RTT sample yet): the
                // sender model it makes then keeps the connection off the short path.
                assert!(o.predicted * 10 < o.data_segments(), "{s:?}: {o:?}");
            } else {
                assert!(o.predicted > 0, "{s:?}: {o:?}");
            }
        }
    }
}

#[test]
fn an_idle_restart_agrees() {
    // Requests 1 s apart (longer than the RTO): every one restarts the window
    // (RFC 5681 §4.1) before it is sent, on both paths.
    let slow = LinkConfig {
        delay: Duration::from_millis(400),
        ..LinkConfig::default()
    };
    let o = run_both(&Scenario::new(
        TcpConfig::default(),
        slow,
        11,
        rr(20, 20_000, 64),
    ));
    assert!(o.predicted > 0, "{o:?}");
}

fn config_strategy() -> impl Strategy<Value = TcpConfig> {
    (
        any::<[bool; 6]>(),
        prop_oneof![
            Just(CongestionAlgorithm::Cubic),
            Just(CongestionAlgorithm::NewReno),
            Just(CongestionAlgorithm::Bbr)
        ],
        prop_oneof![Just(None), Just(Some(4096usize)), Just(Some(20_000))],
    )
        .prop_map(
            |([ts, sack, ecn, ws, nodelay, pacing], congestion, buffer)| {
                let d = TcpConfig::default();
                TcpConfig {
                    timestamps: ts,
                    sack,
                    ecn,
                    window_scaling: ws,
                    nodelay,
                    pacing,
                    congestion,
                    recv_buffer: buffer.unwrap_or(d.recv_buffer),
                    autotune: buffer.is_none(),
                    ..d
                }
            },
        )
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

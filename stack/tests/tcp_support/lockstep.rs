//! Differential runs of a short path against the general one (header prediction,
//! output prediction): the same seeded [`Scenario`] runs twice in lockstep on a [`Pair`],
//! the short path on and off as a [`Switch`] says, and [`run_both`] asserts after every
//! step that both runs' connections are in the same state (their whole `Debug` form,
//! but the fields the switch names) and have sent the same segments.

use core::time::Duration;
use proptest::prelude::*;
use surge_stack::tcp::{Tcb, TcpConfig, TcpError, TcpInfo, TcpStats};
use surge_stack::time::Instant;
use surge_stack::wire::TcpRepr;

use super::pair::{LinkConfig, Pair, drain_into};

/// What a differential test turns on and off, and how it tells the two runs apart.
pub struct Switch {
    /// A run's configuration, with the short path `on` or off.
    pub config: fn(&TcpConfig, bool) -> TcpConfig,
    /// The `Debug` fields (`"name: "`) that differ between the runs by design.
    pub ignored: &'static [&'static str],
    /// What the short path took on one connection.
    pub count: fn(&Tcb) -> u64,
    /// The counters with the short path's own cleared (equal in both runs then).
    pub strip: fn(TcpStats) -> TcpStats,
}

/// What the two applications do.
#[derive(Debug, Clone, Copy)]
pub enum Workload {
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
pub struct Scenario {
    /// The client's configuration.
    pub client: TcpConfig,
    /// The server's configuration.
    pub server: TcpConfig,
    /// Client to server link.
    pub c2s: LinkConfig,
    /// Server to client link.
    pub s2c: LinkConfig,
    /// The links' random seed.
    pub seed: u64,
    /// What the applications do.
    pub workload: Workload,
    /// The applications read only on every `read_every`-th step (slow readers close the
    /// window).
    pub read_every: u64,
}

impl Scenario {
    /// Both ends configured alike, both links alike, reading on every step.
    pub fn new(cfg: TcpConfig, link: LinkConfig, seed: u64, workload: Workload) -> Scenario {
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
pub struct Outcome {
    /// Every segment sent: when, by the client, header, payload length.
    pub log: Vec<(Instant, bool, TcpRepr, usize)>,
    /// Client's and server's counters.
    pub stats: [TcpStats; 2],
    /// Client's and server's `TCP_INFO`.
    pub info: [TcpInfo; 2],
    /// What the short path under test took, both ends (its [`Switch::count`]).
    pub predicted: u64,
}

impl Outcome {
    /// Segments received, both ends.
    pub fn segs_in(&self) -> u64 {
        self.stats[0].segs_in + self.stats[1].segs_in
    }

    /// Segments with payload sent, both ends.
    pub fn data_segments(&self) -> u64 {
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

/// One step in an engine's order: segments due (else the next timer or arrival) go in,
/// the applications run, then output is drained — so an ACK leaves after the application
/// read, as in the engine. Returns false when nothing at all is scheduled.
fn engine_step(p: &mut Pair, apps: &mut Apps) -> bool {
    if !p.deliver() {
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
            p.flush();
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
        p.deliver();
    }
    apps.act(p);
    p.flush();
    true
}

/// The `Debug` form of a connection without the fields that differ by design.
pub fn normalized(tcb: &Tcb, sw: &Switch) -> String {
    let mut s = format!("{tcb:?}");
    for key in sw.ignored {
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

fn pair_for(s: &Scenario, sw: &Switch, on: bool) -> Pair {
    let mut p = Pair::with_links(
        &(sw.config)(&s.client, on),
        &(sw.config)(&s.server, on),
        s.c2s,
        s.s2c,
        s.seed,
    );
    p.log = Some(Vec::new());
    p
}

/// Runs `s` with the short path `sw` switches on and off in lockstep until both are idle,
/// asserting after every step that the connections agree and have sent the same
/// segments, and at the end that their counters (but the short path's own) and
/// `TCP_INFO` are equal and the run with it off never took it; returns the run with it on.
pub fn run_both(s: &Scenario, sw: &Switch) -> Outcome {
    let (mut on, mut off) = (pair_for(s, sw, true), pair_for(s, sw, false));
    let (mut apps_on, mut apps_off) = (Apps::new(s), Apps::new(s));
    let mut steps = 0u64;
    let mut idle = 0;
    on.flush();
    off.flush();
    loop {
        let more_on = engine_step(&mut on, &mut apps_on);
        let more_off = engine_step(&mut off, &mut apps_off);
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
            normalized(&on.client, sw),
            normalized(&off.client, sw),
            "{s:?}: client state differs after step {steps}"
        );
        match (&on.server, &off.server) {
            (Some(a), Some(b)) => assert_eq!(
                normalized(a, sw),
                normalized(b, sw),
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
        predicted: (sw.count)(&on.client) + (sw.count)(server_on),
    };
    assert_eq!(outcome.log, off.log.take().unwrap());
    assert_eq!((sw.strip)(outcome.stats[0]), (sw.strip)(off.client.stats()));
    assert_eq!((sw.strip)(outcome.stats[1]), (sw.strip)(server_off.stats()));
    assert_eq!(outcome.info, [off.client.info(), server_off.info()]);
    assert_eq!(
        (sw.count)(&off.client) + (sw.count)(server_off),
        0,
        "the short path ran while turned off"
    );
    outcome
}

/// A clean link of `delay_ms` one way.
pub fn link(delay_ms: u64) -> LinkConfig {
    LinkConfig {
        delay: Duration::from_millis(delay_ms),
        ..LinkConfig::default()
    }
}

/// `rounds` requests of `request` bytes, each answered with `response` bytes.
pub fn rr(rounds: u32, request: usize, response: usize) -> Workload {
    Workload::RequestResponse {
        rounds,
        request,
        response,
    }
}

/// Both directions at once.
pub fn bulk(to_server: usize, to_client: usize) -> Workload {
    Workload::Bulk {
        to_server,
        to_client,
    }
}

/// Random links: delay, loss, reordering, duplication.
pub fn link_strategy() -> impl Strategy<Value = LinkConfig> {
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

/// Random workloads: request/response or bulk both ways.
pub fn workload_strategy() -> impl Strategy<Value = Workload> {
    prop_oneof![
        (1u32..60, 1usize..5000, 1usize..9000).prop_map(|(n, q, r)| rr(n, q, r)),
        (0usize..150_000, 0usize..150_000).prop_map(|(a, b)| bulk(a, b)),
    ]
}

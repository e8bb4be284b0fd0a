//! packetdrill-style scripts: at time t inject this segment, expect that one at t + x.
//!
//! The connection under test has ISS 1000 (`LOCAL_ISS`); the scripted peer uses 5000
//! (`PEER_ISS`). Times are in milliseconds of virtual time.

use super::{client_tuple, server_tuple};
use std::collections::VecDeque;
use surge_stack::tcp::{Tcb, TcpConfig};
use surge_stack::time::Instant;
use surge_stack::wire::{TcpFlags, TcpOptions, TcpRepr};

/// Our ISS in scripts.
pub const LOCAL_ISS: u32 = 1000;
/// The scripted peer's ISS.
pub const PEER_ISS: u32 = 5000;

/// A segment pattern: built with [`seg`], used both to inject and to match.
#[derive(Debug, Clone, Default)]
pub struct Seg {
    flags: TcpFlags,
    seq: Option<u32>,
    ack: Option<u32>,
    win: Option<u16>,
    data: Option<Vec<u8>>,
    len: Option<usize>,
    mss: Option<Option<u16>>,
    ws: Option<Option<u8>>,
    sack_perm: Option<bool>,
    ts: Option<Option<(u32, u32)>>,
    ts_ecr: Option<u32>,
    sack: Option<Vec<(u32, u32)>>,
}

/// A segment with flags written packetdrill-style: `S` SYN, `.` ACK, `F` FIN, `R` RST, `P` PSH,
/// `E` ECE, `W` CWR.
pub fn seg(flags: &str) -> Seg {
    let mut f = TcpFlags::NONE;
    for c in flags.chars() {
        f |= match c {
            'S' => TcpFlags::SYN,
            '.' => TcpFlags::ACK,
            'F' => TcpFlags::FIN,
            'R' => TcpFlags::RST,
            'P' => TcpFlags::PSH,
            'U' => TcpFlags::URG,
            'E' => TcpFlags::ECE,
            'W' => TcpFlags::CWR,
            other => panic!("unknown flag {other}"),
        };
    }
    Seg {
        flags: f,
        ..Seg::default()
    }
}

impl Seg {
    /// Sequence number.
    pub fn seq(mut self, n: u32) -> Self {
        self.seq = Some(n);
        self
    }
    /// Acknowledgment number.
    pub fn ack(mut self, n: u32) -> Self {
        self.ack = Some(n);
        self
    }
    /// Window field.
    pub fn win(mut self, n: u16) -> Self {
        self.win = Some(n);
        self
    }
    /// Payload bytes.
    pub fn data(mut self, d: &[u8]) -> Self {
        self.len = Some(d.len());
        self.data = Some(d.to_vec());
        self
    }
    /// Payload length (content `b'x'` when injected).
    pub fn len(mut self, n: usize) -> Self {
        self.len = Some(n);
        self
    }
    /// MSS option.
    pub fn mss(mut self, n: u16) -> Self {
        self.mss = Some(Some(n));
        self
    }
    /// No MSS option.
    pub fn no_mss(mut self) -> Self {
        self.mss = Some(None);
        self
    }
    /// Window-scale option.
    pub fn ws(mut self, n: u8) -> Self {
        self.ws = Some(Some(n));
        self
    }
    /// No window-scale option.
    pub fn no_ws(mut self) -> Self {
        self.ws = Some(None);
        self
    }
    /// SACK-permitted present (true) or absent (false).
    pub fn sack_perm(mut self, on: bool) -> Self {
        self.sack_perm = Some(on);
        self
    }
    /// Timestamps option.
    pub fn ts(mut self, val: u32, ecr: u32) -> Self {
        self.ts = Some(Some((val, ecr)));
        self
    }
    /// Match only the TSecr of the timestamps option.
    pub fn ts_ecr(mut self, ecr: u32) -> Self {
        self.ts_ecr = Some(ecr);
        self
    }
    /// No timestamps option.
    pub fn no_ts(mut self) -> Self {
        self.ts = Some(None);
        self
    }
    /// SACK blocks (empty: none).
    pub fn sack(mut self, blocks: &[(u32, u32)]) -> Self {
        self.sack = Some(blocks.to_vec());
        self
    }

    /// The payload the segment carries.
    pub fn payload(&self) -> Vec<u8> {
        match (&self.data, self.len) {
            (Some(d), _) => d.clone(),
            (None, Some(n)) => vec![b'x'; n],
            (None, None) => Vec::new(),
        }
    }

    /// The segment the scripted peer sends.
    pub fn to_repr(&self, src_port: u16, dst_port: u16) -> TcpRepr {
        let mut options = TcpOptions {
            mss: self.mss.flatten(),
            window_scale: self.ws.flatten(),
            sack_permitted: self.sack_perm.unwrap_or(false),
            timestamp: self.ts.flatten(),
            ..TcpOptions::default()
        };
        for &(l, r) in self.sack.iter().flatten() {
            options.sack_blocks.push(l, r);
        }
        TcpRepr {
            src_port,
            dst_port,
            seq_number: self.seq.unwrap_or(0),
            ack_number: self.ack.unwrap_or(0),
            flags: self.flags,
            window_len: self.win.unwrap_or(65535),
            urgent_pointer: 0,
            options,
        }
    }

    /// Panics with a readable message unless `repr` + `payload` match every field set here.
    pub fn check(&self, repr: &TcpRepr, payload: &[u8], context: &str) {
        let fail = |what: &str| {
            panic!(
                "{context}: {what} mismatch\n expected {self:?}\n got {repr:?} len {}",
                payload.len()
            )
        };
        // PSH is advisory (RFC 9293 §3.9.1.2): it is checked only when the pattern has it.
        let flags = if self.flags.contains(TcpFlags::PSH) {
            repr.flags
        } else {
            repr.flags.without(TcpFlags::PSH)
        };
        if flags != self.flags {
            fail("flags");
        }
        if self.seq.is_some_and(|s| s != repr.seq_number) {
            fail("seq");
        }
        if self.ack.is_some_and(|a| a != repr.ack_number) {
            fail("ack");
        }
        if self.win.is_some_and(|w| w != repr.window_len) {
            fail("window");
        }
        if self.len.is_some_and(|l| l != payload.len()) {
            fail("payload length");
        }
        if self.data.as_ref().is_some_and(|d| d[..] != payload[..]) {
            fail("payload");
        }
        if self.mss.is_some_and(|m| m != repr.options.mss) {
            fail("mss option");
        }
        if self.ws.is_some_and(|w| w != repr.options.window_scale) {
            fail("window scale option");
        }
        if self
            .sack_perm
            .is_some_and(|s| s != repr.options.sack_permitted)
        {
            fail("sack-permitted option");
        }
        if self.ts.is_some_and(|t| t != repr.options.timestamp) {
            fail("timestamp option");
        }
        if self
            .ts_ecr
            .is_some_and(|e| repr.options.timestamp.map(|t| t.1) != Some(e))
        {
            fail("TSecr");
        }
        if self
            .sack
            .as_ref()
            .is_some_and(|b| b[..] != *repr.options.sack_blocks.as_slice())
        {
            fail("SACK blocks");
        }
    }
}

/// One connection driven by a script.
pub struct Script {
    /// The connection under test.
    pub tcb: Tcb,
    /// Virtual time.
    pub now: Instant,
    out: VecDeque<(Instant, TcpRepr, Vec<u8>)>,
    local_port: u16,
    peer_port: u16,
    buf: Vec<u8>,
}

/// Milliseconds to an instant.
pub fn ms(t: u64) -> Instant {
    Instant::from_millis(t)
}

impl Script {
    fn wrap(tcb: Tcb, now: Instant) -> Script {
        let t = tcb.tuple();
        let mut s = Script {
            tcb,
            now,
            out: VecDeque::new(),
            local_port: t.local_port,
            peer_port: t.remote_port,
            buf: vec![0; 70_000],
        };
        s.drain();
        s
    }

    /// An active open at t = 0 (the SYN is queued as output).
    pub fn client(cfg: &TcpConfig) -> Script {
        Script::wrap(Tcb::connect(client_tuple(), LOCAL_ISS, ms(0), cfg), ms(0))
    }

    /// A passive open at t = 0 from `syn` (the SYN-ACK is queued as output).
    pub fn server(cfg: &TcpConfig, syn: Seg) -> Script {
        let repr = syn.to_repr(client_tuple().local_port, server_tuple().local_port);
        Script::wrap(
            Tcb::accept_syn(server_tuple(), &repr, LOCAL_ISS, ms(0), cfg),
            ms(0),
        )
    }

    /// An active open completed by a SYN-ACK at t = 100 ms (RTT 100 ms, so RTO = 300 ms);
    /// our ACK has been checked and consumed. Next sequence numbers: ours 1001, peer's 5001.
    pub fn established(cfg: &TcpConfig) -> Script {
        Script::established_with(
            cfg,
            seg("S.")
                .seq(PEER_ISS)
                .ack(LOCAL_ISS + 1)
                .win(65535)
                .mss(1460),
        )
    }

    /// Like [`Script::established`], with a custom SYN-ACK.
    pub fn established_with(cfg: &TcpConfig, synack: Seg) -> Script {
        let mut s = Script::client(cfg);
        s.expect(0, seg("S").seq(LOCAL_ISS));
        s.inject(100, synack);
        s.expect(100, seg(".").seq(LOCAL_ISS + 1).ack(PEER_ISS + 1));
        s
    }

    /// A passive open completed by the peer's ACK at t = 100 ms.
    pub fn accepted(cfg: &TcpConfig) -> Script {
        let mut s = Script::server(cfg, seg("S").seq(PEER_ISS).win(65535).mss(1460));
        s.expect(0, seg("S.").seq(LOCAL_ISS).ack(PEER_ISS + 1));
        s.inject(
            100,
            seg(".").seq(PEER_ISS + 1).ack(LOCAL_ISS + 1).win(65535),
        );
        s.expect_none();
        s
    }

    fn drain(&mut self) {
        while let Some(t) = self.tcb.poll_transmit(self.now, &mut self.buf) {
            self.out
                .push_back((self.now, t.repr, self.buf[..t.payload_len].to_vec()));
            assert!(self.out.len() < 100_000, "runaway output");
        }
    }

    /// Advances virtual time to `at` ms, running every timer due on the way.
    pub fn advance(&mut self, at: u64) {
        let target = ms(at);
        assert!(target >= self.now, "script time goes backwards");
        let mut guard = 0;
        while let Some(d) = self.tcb.poll_at() {
            if d > target {
                break;
            }
            self.now = self.now.max(d);
            self.tcb.handle_timeout(self.now);
            self.drain();
            guard += 1;
            assert!(guard < 100_000, "timer loop");
        }
        self.now = target;
    }

    /// At `at` ms the peer's segment arrives.
    pub fn inject(&mut self, at: u64, s: Seg) {
        self.advance(at);
        let repr = s.to_repr(self.peer_port, self.local_port);
        self.tcb.handle_segment(self.now, &repr, &s.payload());
        self.drain();
    }

    /// At `at` ms the user writes `data`; returns how much was taken.
    pub fn send(&mut self, at: u64, data: &[u8]) -> usize {
        self.advance(at);
        let n = self.tcb.send(data).expect("send");
        self.drain();
        n
    }

    /// At `at` ms the user reads up to `max` bytes.
    pub fn recv(&mut self, at: u64, max: usize) -> Vec<u8> {
        self.advance(at);
        let mut b = vec![0; max];
        let n = self.tcb.recv(&mut b).expect("recv");
        b.truncate(n);
        self.drain();
        b
    }

    /// Runs `f` on the connection at `at` ms, then collects its output.
    pub fn call<R>(&mut self, at: u64, f: impl FnOnce(&mut Tcb) -> R) -> R {
        self.advance(at);
        let r = f(&mut self.tcb);
        self.drain();
        r
    }

    /// Expects the next segment we send to go out exactly at `at` ms and to match `s`.
    pub fn expect(&mut self, at: u64, s: Seg) -> (TcpRepr, Vec<u8>) {
        if self.out.is_empty() {
            self.advance(at);
        }
        let Some((t, repr, payload)) = self.out.pop_front() else {
            panic!(
                "expected {s:?} at {at} ms, nothing sent (now {:?}, state {:?})",
                self.now,
                self.tcb.state()
            );
        };
        assert_eq!(
            t,
            ms(at),
            "segment {repr:?} sent at {t:?}, expected at {at} ms"
        );
        s.check(&repr, &payload, &format!("segment at {at} ms"));
        (repr, payload)
    }

    /// Runs timers until the next segment goes out, and returns it (bounded wait: 1 hour).
    pub fn expect_next(&mut self) -> (TcpRepr, Vec<u8>) {
        let limit = self.now_ms() + 3_600_000;
        while self.out.is_empty() {
            let Some(d) = self.tcb.poll_at() else {
                panic!("nothing scheduled")
            };
            assert!(d.total_millis() <= limit, "no segment within an hour");
            self.advance(d.total_millis().max(self.now_ms()));
            if self.out.is_empty() {
                self.advance(self.now_ms() + 1);
            }
        }
        let (_, r, p) = self.out.pop_front().expect("segment");
        (r, p)
    }

    /// Current virtual time in milliseconds.
    pub fn now_ms(&self) -> u64 {
        self.now.total_millis()
    }

    /// Expects nothing more to have been sent so far.
    pub fn expect_none(&mut self) {
        if let Some((t, repr, p)) = self.out.pop_front() {
            panic!("unexpected segment at {t:?}: {repr:?} len {}", p.len());
        }
    }

    /// Expects nothing to be sent up to and including `at` ms (timers run).
    pub fn expect_none_until(&mut self, at: u64) {
        self.expect_none();
        self.advance(at);
        self.expect_none();
    }

    /// Segments sent and not yet consumed by `expect`.
    pub fn pending(&self) -> usize {
        self.out.len()
    }
}

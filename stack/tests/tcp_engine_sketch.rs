//! The API composed the way an engine will use it: two hosts with 4-tuple tables, a
//! listener (RFC 9293 §3.10.7.2), RSTs for unknown connections (§3.10.7.1), RFC 6528 ISNs,
//! the timer wheel armed from `poll_at`, TIME-WAIT reuse, and many concurrent connections.

mod tcp_support;

use core::time::Duration;
use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddrV4};
use surge_stack::FourTuple;
use surge_stack::tcp::{
    IsnGenerator, ListenAction, State, Tcb, TcpConfig, TcpError, listen_action, reply_to_unknown,
};
use surge_stack::time::Instant;
use surge_stack::timer::{TimerHandle, TimerWheel};
use surge_stack::wire::TcpRepr;
use tcp_support::pair::{Link, LinkConfig};

struct Conn {
    tcb: Tcb,
    timer: Option<(TimerHandle, Instant)>,
}

/// A toy engine: one address, a connection table, a listener, a timer wheel.
struct Host {
    addr: Ipv4Addr,
    peer: Ipv4Addr,
    conns: HashMap<FourTuple, Conn>,
    wheel: TimerWheel<FourTuple>,
    listen_port: Option<u16>,
    isn: IsnGenerator,
    cfg: TcpConfig,
    accepted: Vec<FourTuple>,
    out: Vec<(TcpRepr, Vec<u8>)>,
    buf: Vec<u8>,
    rsts_for_unknown: u64,
    /// RSTs the listener sent for ACKs of no connection (RFC 9293 §3.10.7.2).
    listener_resets: u64,
}

impl Host {
    fn new(addr: Ipv4Addr, peer: Ipv4Addr, key: u8, cfg: &TcpConfig) -> Host {
        Host {
            addr,
            peer,
            conns: HashMap::new(),
            wheel: TimerWheel::new(Instant::ZERO, Duration::from_millis(1), 4096),
            listen_port: None,
            isn: IsnGenerator::new([key; 16]),
            cfg: *cfg,
            accepted: Vec::new(),
            out: Vec::new(),
            buf: vec![0; 2000],
            rsts_for_unknown: 0,
            listener_resets: 0,
        }
    }

    fn tuple(&self, local_port: u16, remote_port: u16) -> FourTuple {
        FourTuple::new(
            SocketAddrV4::new(self.addr, local_port),
            SocketAddrV4::new(self.peer, remote_port),
        )
    }

    /// Drains a connection's output, re-arms its timer, drops it when closed.
    fn service(&mut self, now: Instant, t: FourTuple) {
        let Some(c) = self.conns.get_mut(&t) else {
            return;
        };
        while let Some(tx) = c.tcb.poll_transmit(now, &mut self.buf) {
            self.out
                .push((tx.repr, self.buf[..tx.payload_len].to_vec()));
        }
        let want = c.tcb.poll_at();
        if c.timer.map(|(_, d)| d) != want {
            if let Some((h, _)) = c.timer.take() {
                self.wheel.cancel(h);
            }
            if let Some(d) = want {
                let h = self
                    .wheel
                    .insert(d, t)
                    .unwrap_or_else(|_| panic!("wheel full"));
                c.timer = Some((h, d));
            }
        }
        if c.tcb.is_closed() {
            if let Some((h, _)) = c.timer.take() {
                self.wheel.cancel(h);
            }
            self.conns.remove(&t);
        }
    }

    fn connect(
        &mut self,
        now: Instant,
        local_port: u16,
        remote_port: u16,
    ) -> Result<FourTuple, &'static str> {
        let t = self.tuple(local_port, remote_port);
        let iss = match self.conns.get(&t) {
            Some(c) if c.tcb.can_reuse_time_wait(now) => c.tcb.time_wait_reuse_iss(),
            Some(_) => return Err("address in use"),
            None => self.isn.generate(&t, now),
        };
        if let Some(old) = self.conns.remove(&t) {
            if let Some((h, _)) = old.timer {
                self.wheel.cancel(h);
            }
        }
        self.conns.insert(
            t,
            Conn {
                tcb: Tcb::connect(t, iss, now, &self.cfg),
                timer: None,
            },
        );
        self.service(now, t);
        Ok(t)
    }

    fn input(&mut self, now: Instant, seg: TcpRepr, payload: &[u8]) {
        let t = self.tuple(seg.dst_port, seg.src_port);
        if let Some(c) = self.conns.get_mut(&t) {
            if c.tcb.state() == State::TimeWait && c.tcb.time_wait_accepts_syn(&seg) {
                // RFC 6191: a new incarnation replaces the TIME-WAIT one.
                if let Some((h, _)) = c.timer.take() {
                    self.wheel.cancel(h);
                }
                self.conns.remove(&t);
            } else {
                c.tcb.handle_segment(now, &seg, payload);
                self.service(now, t);
                return;
            }
        }
        if self.listen_port == Some(seg.dst_port) {
            match listen_action(&seg, payload.len()) {
                ListenAction::Accept => {
                    let iss = self.isn.generate(&t, now);
                    self.conns.insert(
                        t,
                        Conn {
                            tcb: Tcb::accept_syn(t, &seg, iss, now, &self.cfg),
                            timer: None,
                        },
                    );
                    self.accepted.push(t);
                    self.service(now, t);
                }
                ListenAction::Reset(rst) => {
                    self.listener_resets += 1;
                    self.out.push((rst, Vec::new()));
                }
                ListenAction::Ignore => {}
            }
            return;
        }
        if let Some(rst) = reply_to_unknown(&seg, payload.len()) {
            self.rsts_for_unknown += 1;
            self.out.push((rst, Vec::new()));
        }
    }

    fn run_timers(&mut self, now: Instant) {
        let mut due = Vec::new();
        self.wheel.advance(now, |_, t| due.push(t));
        for t in due {
            if let Some(c) = self.conns.get_mut(&t) {
                c.timer = None;
                c.tcb.handle_timeout(now);
                self.service(now, t);
            }
        }
    }

    fn conn(&mut self, t: &FourTuple) -> &mut Tcb {
        &mut self.conns.get_mut(t).expect("connection").tcb
    }
}

struct World {
    now: Instant,
    a: Host,
    b: Host,
    ab: Link,
    ba: Link,
}

impl World {
    fn new(cfg: &TcpConfig, link: LinkConfig) -> World {
        let (ia, ib) = (Ipv4Addr::new(198, 18, 1, 1), Ipv4Addr::new(198, 18, 1, 2));
        let mut b = Host::new(ib, ia, 2, cfg);
        b.listen_port = Some(80);
        World {
            now: Instant::ZERO,
            a: Host::new(ia, ib, 1, cfg),
            b,
            ab: Link::new(link, 1),
            ba: Link::new(link, 2),
        }
    }

    /// One event: deliver what is due, else jump to the next arrival or timer.
    fn step(&mut self) -> bool {
        self.step_until(Instant::MAX)
    }

    /// Runs every event up to `t`, then sets the clock to `t`.
    fn advance_to(&mut self, t: Instant) {
        for _ in 0..10_000_000 {
            if !self.step_until(t) {
                self.now = self.now.max(t);
                self.a.run_timers(self.now);
                self.b.run_timers(self.now);
                return;
            }
        }
        panic!("too many events before {t:?}");
    }

    /// Like `step`, but never jumps past `limit`; false when nothing is left before it.
    fn step_until(&mut self, limit: Instant) -> bool {
        for (r, p) in self.a.out.drain(..) {
            self.ab.send(self.now, r, p);
        }
        for (r, p) in self.b.out.drain(..) {
            self.ba.send(self.now, r, p);
        }
        let mut any = false;
        while let Some((r, p)) = self.ab.pop_due(self.now) {
            self.b.input(self.now, r, &p);
            any = true;
        }
        while let Some((r, p)) = self.ba.pop_due(self.now) {
            self.a.input(self.now, r, &p);
            any = true;
        }
        if any {
            return true;
        }
        let next = [
            self.ab.next_arrival(),
            self.ba.next_arrival(),
            self.a.wheel.next_deadline(),
            self.b.wheel.next_deadline(),
        ]
        .into_iter()
        .flatten()
        .min();
        let Some(next) = next.filter(|&n| n <= limit) else {
            return false;
        };
        self.now = self.now.max(next);
        self.a.run_timers(self.now);
        self.b.run_timers(self.now);
        true
    }

    fn run_until(&mut self, limit: u64, mut done: impl FnMut(&mut World) -> bool) {
        for _ in 0..limit {
            if done(self) {
                return;
            }
            assert!(self.step(), "idle at {:?}", self.now);
        }
        panic!("not done after {limit} steps at {:?}", self.now);
    }
}

#[test]
fn many_connections_echo_through_listener_and_timer_wheel() {
    let cfg = TcpConfig::default();
    let link = LinkConfig {
        loss: 0.01,
        reorder: 0.02,
        ..LinkConfig::default()
    };
    let mut w = World::new(&cfg, link);
    let n = 20u16;
    let msg: Vec<u8> = (0..50_000u32).map(|i| (i * 7 % 256) as u8).collect();
    let clients: Vec<FourTuple> = (0..n)
        .map(|i| w.a.connect(w.now, 40000 + i, 80).unwrap())
        .collect();
    let mut sent = vec![0usize; n as usize];
    let mut echoed: HashMap<FourTuple, Vec<u8>> = HashMap::new();
    let mut got: Vec<Vec<u8>> = vec![Vec::new(); n as usize];
    let mut buf = vec![0u8; 65536];
    w.run_until(2_000_000, |w| {
        for (i, t) in clients.iter().enumerate() {
            let Some(c) = w.a.conns.get_mut(t) else {
                continue;
            };
            if c.tcb.is_established() && sent[i] < msg.len() {
                sent[i] += c.tcb.send(&msg[sent[i]..]).unwrap_or(0);
            }
            while let Ok(k) = c.tcb.recv(&mut buf) {
                if k == 0 {
                    break;
                }
                got[i].extend_from_slice(&buf[..k]);
            }
            if got[i].len() == msg.len() && c.tcb.state() == State::Established {
                c.tcb.close();
            }
            w.a.service(w.now, *t);
        }
        // The server echoes everything and closes after the client's FIN.
        for t in w.b.accepted.clone() {
            let Some(c) = w.b.conns.get_mut(&t) else {
                continue;
            };
            let pending = echoed.entry(t).or_default();
            while let Ok(k) = c.tcb.recv(&mut buf) {
                if k == 0 {
                    break;
                }
                pending.extend_from_slice(&buf[..k]);
            }
            if !pending.is_empty() {
                if let Ok(k) = c.tcb.send(pending) {
                    pending.drain(..k);
                }
            }
            if pending.is_empty() && c.tcb.state() == State::CloseWait {
                c.tcb.close();
            }
            w.b.service(w.now, t);
        }
        w.b.conns.is_empty() && w.a.conns.values().all(|c| c.tcb.state() == State::TimeWait)
    });
    for g in &got {
        assert_eq!(g, &msg);
    }
    assert_eq!(w.b.accepted.len(), usize::from(n));
    // Two seconds on (far inside 2*MSL), once the segments still on the link arrived.
    let later = w.now + Duration::from_secs(2);
    w.advance_to(later);
    // A segment reordered behind the FIN reaches a TIME-WAIT client, which ACKs it (RFC 9293
    // §3.10.7.4 first check); the server, already CLOSED, answers that ACK with a RST, and the
    // RST ends the TIME-WAIT (RFC 9293 §3.10.7.4 second check; Linux with tcp_rfc1337 = 0).
    let assassinated = w.b.listener_resets as usize;
    assert!(
        assassinated <= 2,
        "{assassinated} TIME-WAIT connections reset"
    );
    let lingering = usize::from(n) - assassinated;
    assert_eq!(
        w.a.conns.len(),
        lingering,
        "active closers linger in TIME-WAIT"
    );
    assert_eq!(
        w.a.wheel.len(),
        lingering,
        "one armed timer per TIME-WAIT connection"
    );
    assert!(w.b.wheel.is_empty());

    // Reuse a TIME-WAIT tuple for a new active open (timestamps make it safe).
    let reuse = clients
        .iter()
        .find(|t| w.a.conns.contains_key(t))
        .expect("a TIME-WAIT tuple")
        .local_port;
    let t = w.a.connect(w.now, reuse, 80).expect("TIME-WAIT reuse");
    w.run_until(100_000, |w| {
        w.a.conns.get(&t).is_some_and(|c| c.tcb.is_established())
    });
    w.a.conn(&t).send(b"again").unwrap();
    w.a.service(w.now, t);
    w.run_until(100_000, |w| {
        w.b.conns.values().any(|c| c.tcb.recv_queue_len() == 5)
    });

    // 2*MSL later every other TIME-WAIT entry is gone, and so are its timers.
    let end = w.now + Duration::from_secs(61);
    w.advance_to(end);
    assert_eq!(w.a.conns.len(), 1, "only the reused connection remains");
    assert_eq!(
        w.a.wheel.len(),
        0,
        "an idle established connection needs no timer"
    );
}

#[test]
fn rfc9293_3_10_7_1_connect_to_closed_port_is_refused() {
    let mut w = World::new(&TcpConfig::default(), LinkConfig::default());
    let t = w.a.connect(w.now, 40000, 81).unwrap();
    w.run_until(1000, |w| {
        w.a.conns
            .get(&t)
            .is_none_or(|c| c.tcb.state() == State::Closed)
    });
    assert_eq!(w.b.rsts_for_unknown, 1);
    // The connection was removed from the table once closed; its error was ConnectionRefused.
    assert!(w.a.conns.is_empty());
    assert!(w.a.wheel.is_empty(), "its timers were cancelled");
}

#[test]
fn rfc9293_3_10_7_2_stray_ack_to_listener_gets_rst() {
    let mut w = World::new(&TcpConfig::default(), LinkConfig::default());
    let stray = TcpRepr {
        src_port: 5555,
        dst_port: 80,
        seq_number: 1,
        ack_number: 424_242,
        flags: surge_stack::wire::TcpFlags::ACK,
        ..TcpRepr::default()
    };
    w.b.input(w.now, stray, &[]);
    assert_eq!(w.b.out.len(), 1);
    assert_eq!(w.b.out[0].0.seq_number, 424_242);
    assert!(w.b.conns.is_empty());
    let _ = TcpError::ConnectionRefused;
}

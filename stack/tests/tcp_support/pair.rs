//! Two connections over an in-memory link with a virtual clock and seeded impairments
//! (loss, duplication, reordering, delay), in the style of quinn-proto's `Pair`.

use super::{client_tuple, server_tuple};
use core::time::Duration;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use surge_stack::tcp::{Tcb, TcpConfig, TcpError};
use surge_stack::time::Instant;
use surge_stack::wire::{TcpFlags, TcpRepr};

/// Impairments of one direction.
#[derive(Debug, Clone, Copy)]
pub struct LinkConfig {
    /// One-way delay.
    pub delay: Duration,
    /// Probability a segment is lost.
    pub loss: f64,
    /// Probability a segment is delivered twice.
    pub duplicate: f64,
    /// Probability a segment gets up to `reorder_delay` of extra delay.
    pub reorder: f64,
    /// Largest extra delay of a reordered segment.
    pub reorder_delay: Duration,
    /// Serialization time per payload byte (0: infinitely fast link).
    pub nanos_per_byte: u64,
    /// Bottleneck queue: a segment that would wait longer than this is tail-dropped.
    pub max_queue: Option<Duration>,
    /// Burst loss instead of `loss` (a Gilbert-Elliott two-state model).
    pub burst: Option<GilbertElliott>,
}

/// Gilbert-Elliott burst loss: a good and a bad state, each with its own loss probability,
/// switching with the given probabilities per segment.
#[derive(Debug, Clone, Copy)]
pub struct GilbertElliott {
    /// Probability of moving from the good to the bad state.
    pub good_to_bad: f64,
    /// Probability of moving from the bad to the good state.
    pub bad_to_good: f64,
    /// Loss probability in the good state.
    pub loss_good: f64,
    /// Loss probability in the bad state.
    pub loss_bad: f64,
}

impl GilbertElliott {
    /// Long-run average loss rate.
    pub fn mean_loss(&self) -> f64 {
        let bad = self.good_to_bad / (self.good_to_bad + self.bad_to_good);
        bad * self.loss_bad + (1.0 - bad) * self.loss_good
    }
}

impl Default for LinkConfig {
    fn default() -> Self {
        LinkConfig {
            delay: Duration::from_millis(10),
            loss: 0.0,
            duplicate: 0.0,
            reorder: 0.0,
            reorder_delay: Duration::from_millis(5),
            nanos_per_byte: 0,
            max_queue: None,
            burst: None,
        }
    }
}

type Packet = (TcpRepr, Vec<u8>);

/// One direction of the link.
pub struct Link {
    cfg: LinkConfig,
    rng: ChaCha8Rng,
    queue: BinaryHeap<Reverse<(Instant, u64)>>,
    packets: std::collections::HashMap<u64, Packet>,
    next_id: u64,
    busy_until: Instant,
    /// Gilbert-Elliott state: in the bad state.
    bad: bool,
    /// Segments offered to the link.
    pub sent: u64,
    /// Segments the link dropped.
    pub dropped: u64,
    /// The longest a segment offered since this was last reset waited in the bottleneck
    /// queue (the standing queue a sender builds).
    pub max_queue_delay: Duration,
    /// The queueing delays of the segments offered since then, summed, and their number.
    pub queue_delay_sum: Duration,
    pub queue_samples: u64,
}

impl Link {
    /// A link with `cfg`, impairments drawn from `seed`.
    pub fn new(cfg: LinkConfig, seed: u64) -> Link {
        Link {
            cfg,
            rng: ChaCha8Rng::seed_from_u64(seed),
            queue: BinaryHeap::new(),
            packets: Default::default(),
            next_id: 0,
            busy_until: Instant::ZERO,
            bad: false,
            sent: 0,
            dropped: 0,
            max_queue_delay: Duration::ZERO,
            queue_delay_sum: Duration::ZERO,
            queue_samples: 0,
        }
    }

    fn push(&mut self, at: Instant, p: Packet) {
        self.queue.push(Reverse((at, self.next_id)));
        self.packets.insert(self.next_id, p);
        self.next_id += 1;
    }

    /// Starts measuring the queue afresh.
    pub fn reset_queue_stats(&mut self) {
        self.max_queue_delay = Duration::ZERO;
        self.queue_delay_sum = Duration::ZERO;
        self.queue_samples = 0;
    }

    /// Mean queueing delay since the last reset.
    pub fn mean_queue_delay(&self) -> Duration {
        self.queue_delay_sum / u32::try_from(self.queue_samples.max(1)).unwrap_or(u32::MAX)
    }

    /// Offers a segment at `now`.
    pub fn send(&mut self, now: Instant, repr: TcpRepr, payload: Vec<u8>) {
        self.sent += 1;
        let start = self.busy_until.max(now);
        if self.cfg.max_queue.is_some_and(|q| start - now > q) {
            self.dropped += 1;
            return;
        }
        self.max_queue_delay = self.max_queue_delay.max(start - now);
        self.queue_delay_sum += start - now;
        self.queue_samples += 1;
        let tx_done =
            start + Duration::from_nanos(self.cfg.nanos_per_byte * (payload.len() as u64 + 40));
        self.busy_until = tx_done;
        let loss = match self.cfg.burst {
            Some(ge) => {
                let flip = if self.bad {
                    ge.bad_to_good
                } else {
                    ge.good_to_bad
                };
                if self.rng.random_bool(flip) {
                    self.bad = !self.bad;
                }
                if self.bad { ge.loss_bad } else { ge.loss_good }
            }
            None => self.cfg.loss,
        };
        if self.rng.random_bool(loss) {
            self.dropped += 1;
            return;
        }
        let mut at = tx_done + self.cfg.delay;
        if self.cfg.reorder > 0.0 && self.rng.random_bool(self.cfg.reorder) {
            let extra = self
                .rng
                .random_range(0..=self.cfg.reorder_delay.as_micros() as u64);
            at += Duration::from_micros(extra);
        }
        if self.cfg.duplicate > 0.0 && self.rng.random_bool(self.cfg.duplicate) {
            self.push(at + Duration::from_micros(1), (repr, payload.clone()));
        }
        self.push(at, (repr, payload));
    }

    /// When the next segment arrives.
    pub fn next_arrival(&self) -> Option<Instant> {
        self.queue.peek().map(|Reverse((t, _))| *t)
    }

    /// A segment due at `now`, if any.
    pub fn pop_due(&mut self, now: Instant) -> Option<Packet> {
        let Reverse((t, id)) = *self.queue.peek()?;
        if t > now {
            return None;
        }
        self.queue.pop();
        self.packets.remove(&id)
    }

    /// Drops everything in flight.
    pub fn clear(&mut self) {
        self.queue.clear();
        self.packets.clear();
    }
}

/// A client and a server connection over two links.
pub struct Pair {
    /// The active opener.
    pub client: Tcb,
    /// The passive side, created when the first SYN arrives.
    pub server: Option<Tcb>,
    /// Server configuration.
    pub server_cfg: TcpConfig,
    /// Virtual time.
    pub now: Instant,
    /// Client to server.
    pub c2s: Link,
    /// Server to client.
    pub s2c: Link,
    /// Record every segment (off for bulk transfers).
    pub log: Option<Vec<(Instant, bool, TcpRepr, usize)>>,
    /// Timer granularity, as an engine's timer wheel has (zero: exact deadlines).
    pub timer_tick: Duration,
    buf: Vec<u8>,
}

/// Server ISS in pairs (close to 2^32 so streams wrap early).
pub const SERVER_ISS: u32 = 0xffff_f000;
/// Client ISS in pairs.
pub const CLIENT_ISS: u32 = 0xffff_0000;

impl Pair {
    /// Client opens at t = 0 towards a server with `server_cfg`.
    pub fn new(
        client_cfg: &TcpConfig,
        server_cfg: &TcpConfig,
        link: LinkConfig,
        seed: u64,
    ) -> Pair {
        Pair::with_links(client_cfg, server_cfg, link, link, seed)
    }

    /// With a different impairment per direction.
    pub fn with_links(
        client_cfg: &TcpConfig,
        server_cfg: &TcpConfig,
        c2s: LinkConfig,
        s2c: LinkConfig,
        seed: u64,
    ) -> Pair {
        let mss = usize::from(client_cfg.mss.max(server_cfg.mss));
        Pair {
            client: Tcb::connect(client_tuple(), CLIENT_ISS, Instant::ZERO, client_cfg),
            server: None,
            server_cfg: *server_cfg,
            now: Instant::ZERO,
            c2s: Link::new(c2s, seed.wrapping_mul(2).wrapping_add(1)),
            s2c: Link::new(s2c, seed.wrapping_mul(2).wrapping_add(2)),
            log: None,
            timer_tick: Duration::ZERO,
            buf: vec![0; mss + 100],
        }
    }

    /// The server connection (panics before the SYN arrived).
    pub fn server(&mut self) -> &mut Tcb {
        self.server.as_mut().expect("server connection exists")
    }

    /// Sends what both connections have to send (logged when `log` is on).
    pub fn flush(&mut self) {
        while let Some(t) = self.client.poll_transmit(self.now, &mut self.buf) {
            if let Some(log) = &mut self.log {
                log.push((self.now, true, t.repr, t.payload_len));
            }
            self.c2s
                .send(self.now, t.repr, self.buf[..t.payload_len].to_vec());
        }
        if let Some(server) = &mut self.server {
            while let Some(t) = server.poll_transmit(self.now, &mut self.buf) {
                if let Some(log) = &mut self.log {
                    log.push((self.now, false, t.repr, t.payload_len));
                }
                self.s2c
                    .send(self.now, t.repr, self.buf[..t.payload_len].to_vec());
            }
        }
    }

    /// Hands every segment due now to its connection (a first SYN makes the server);
    /// true when there was one.
    pub fn deliver(&mut self) -> bool {
        let mut any = false;
        while let Some((repr, payload)) = self.c2s.pop_due(self.now) {
            any = true;
            match &mut self.server {
                Some(s) => s.handle_segment(self.now, &repr, &payload),
                None if repr.flags.contains(TcpFlags::SYN)
                    && !repr.flags.contains(TcpFlags::ACK) =>
                {
                    self.server = Some(Tcb::accept_syn(
                        server_tuple(),
                        &repr,
                        SERVER_ISS,
                        self.now,
                        &self.server_cfg,
                    ));
                }
                None => {}
            }
        }
        while let Some((repr, payload)) = self.s2c.pop_due(self.now) {
            any = true;
            self.client.handle_segment(self.now, &repr, &payload);
        }
        any
    }

    /// One step: flush output, deliver what is due, else jump to the next event and run
    /// timers. Returns false when nothing at all is scheduled.
    pub fn step(&mut self) -> bool {
        self.flush();
        if self.deliver() {
            self.flush();
            return true;
        }
        let tick = u64::try_from(self.timer_tick.as_micros())
            .unwrap_or(0)
            .max(1);
        // A timer wheel fires a deadline at the first tick at or after it.
        let round = |t: Instant| Instant::from_micros(t.total_micros().div_ceil(tick) * tick);
        let next = [
            self.c2s.next_arrival(),
            self.s2c.next_arrival(),
            self.client.poll_at().map(round),
            self.server.as_ref().and_then(|s| s.poll_at()).map(round),
        ]
        .into_iter()
        .flatten()
        .min();
        let Some(next) = next else { return false };
        self.now = self.now.max(next);
        if self.client.poll_at().is_some_and(|d| d <= self.now) {
            self.client.handle_timeout(self.now);
        }
        if let Some(s) = &mut self.server {
            if s.poll_at().is_some_and(|d| d <= self.now) {
                s.handle_timeout(self.now);
            }
        }
        self.deliver();
        self.flush();
        true
    }

    /// Steps until `done` holds; panics after `max_steps` or when virtual time passes `deadline`.
    pub fn drive_until(
        &mut self,
        max_steps: u64,
        deadline: Duration,
        mut done: impl FnMut(&mut Pair) -> bool,
    ) {
        let end = Instant::ZERO + deadline;
        for _ in 0..max_steps {
            if done(self) {
                return;
            }
            if !self.step() && !done(self) {
                panic!("pair idle before the condition held (t = {:?})", self.now);
            }
            assert!(self.now <= end, "virtual deadline {deadline:?} passed");
        }
        panic!(
            "condition not reached in {max_steps} steps (t = {:?})",
            self.now
        );
    }

    /// Runs until both ends are established.
    pub fn handshake(&mut self) {
        self.drive_until(10_000, Duration::from_secs(600), |p| {
            p.client.is_established() && p.server.as_ref().is_some_and(|s| s.is_established())
        });
    }

    /// Runs until nothing is scheduled any more, or `max_steps`.
    pub fn run_idle(&mut self, max_steps: u64) {
        for _ in 0..max_steps {
            if !self.step() {
                return;
            }
        }
        panic!("pair not idle after {max_steps} steps");
    }
}

/// A deterministic byte stream of `len` bytes, fed into a connection as buffer space allows.
pub struct Source {
    rng: ChaCha8Rng,
    /// Total bytes to send.
    pub len: u64,
    /// Bytes accepted by `send` so far.
    pub sent: u64,
    chunk: Vec<u8>,
    chunk_off: usize,
}

impl Source {
    /// `len` pseudo-random bytes from `seed`.
    pub fn new(seed: u64, len: u64) -> Source {
        Source {
            rng: ChaCha8Rng::seed_from_u64(seed),
            len,
            sent: 0,
            chunk: Vec::new(),
            chunk_off: 0,
        }
    }

    /// Pushes as much as the connection takes; `hash` sees every byte accepted.
    pub fn pump(&mut self, tcb: &mut Tcb, mut hash: impl FnMut(&[u8])) {
        loop {
            if self.chunk_off == self.chunk.len() {
                let left = self.len - self.sent;
                if left == 0 {
                    return;
                }
                let n = left.min(64 * 1024) as usize;
                self.chunk.resize(n, 0);
                self.rng.fill(&mut self.chunk[..]);
                self.chunk_off = 0;
            }
            match tcb.send(&self.chunk[self.chunk_off..]) {
                Ok(n) => {
                    hash(&self.chunk[self.chunk_off..self.chunk_off + n]);
                    self.chunk_off += n;
                    self.sent += n as u64;
                }
                Err(TcpError::WouldBlock) => return,
                Err(e) => panic!("send failed: {e}"),
            }
        }
    }

    /// All bytes accepted.
    pub fn done(&self) -> bool {
        self.sent == self.len
    }
}

/// Reads everything available; returns (bytes read, saw EOF).
pub fn drain_into(tcb: &mut Tcb, buf: &mut [u8], mut sink: impl FnMut(&[u8])) -> (usize, bool) {
    let mut total = 0;
    loop {
        match tcb.recv(buf) {
            Ok(0) => return (total, true),
            Ok(n) => {
                sink(&buf[..n]);
                total += n;
            }
            Err(TcpError::WouldBlock) => return (total, false),
            Err(e) => panic!("recv failed: {e}"),
        }
    }
}

//! The load thread over an in-memory [`Worker`]: the backend seam works without sockets, and
//! the counting rules hold deterministically (sent = answered + errors).

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::AtomicBool;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use super::config::{Arrivals, Direction, LoadConfig, LoadMode};
use super::counts::{ThreadPlan, ThreadResult};
use super::protocol::{Framing, HttpRequest};
use super::worker::run_thread;
use crate::backend::{Event, SocketId, Worker};

/// How the fake peer behaves.
#[derive(Clone, Copy)]
enum Peer {
    /// Answers every `request` bytes with `response` bytes.
    Answers { request: usize, response: usize },
    /// Accepts connections and reads, never writes.
    Silent,
    /// Refuses every connect.
    Refuses,
}

/// One fake connection: bytes the peer owes us.
#[derive(Default)]
struct FakeConn {
    received: usize,
    owed: usize,
}

/// An in-memory stack whose peer is `Peer`.
struct FakeWorker {
    peer: Peer,
    next: SocketId,
    conns: HashMap<SocketId, FakeConn>,
    events: Vec<Event>,
}

impl FakeWorker {
    fn new(peer: Peer) -> Self {
        Self {
            peer,
            next: 0,
            conns: HashMap::new(),
            events: Vec::new(),
        }
    }
}

impl Worker for FakeWorker {
    fn listen(&mut self, _addr: SocketAddr) -> io::Result<SocketId> {
        Err(io::Error::from(io::ErrorKind::Unsupported))
    }

    fn accept(&mut self, _listener: SocketId) -> io::Result<Option<SocketId>> {
        Ok(None)
    }

    fn connect(&mut self, _addr: SocketAddr) -> io::Result<SocketId> {
        let id = self.next;
        self.next += 1;
        self.conns.insert(id, FakeConn::default());
        self.events.push(match self.peer {
            Peer::Refuses => {
                Event::ConnectFailed(id, io::Error::from(io::ErrorKind::ConnectionRefused))
            }
            _ => Event::Connected(id),
        });
        Ok(id)
    }

    fn send(&mut self, id: SocketId, buf: &[u8]) -> io::Result<usize> {
        let conn = self.conns.get_mut(&id).ok_or(io::ErrorKind::NotFound)?;
        if let Peer::Answers { request, response } = self.peer {
            conn.received += buf.len();
            while conn.received >= request {
                conn.received -= request;
                conn.owed += response;
            }
            if conn.owed > 0 {
                self.events.push(Event::Readable(id));
            }
        }
        Ok(buf.len())
    }

    fn recv(&mut self, id: SocketId, buf: &mut [u8]) -> io::Result<usize> {
        let conn = self.conns.get_mut(&id).ok_or(io::ErrorKind::NotFound)?;
        if conn.owed == 0 {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = conn.owed.min(buf.len());
        conn.owed -= n;
        Ok(n)
    }

    fn shutdown_write(&mut self, _id: SocketId) -> io::Result<()> {
        Ok(())
    }

    fn close(&mut self, id: SocketId) {
        self.conns.remove(&id);
    }

    fn poll(&mut self, events: &mut Vec<Event>, timeout: Duration) -> io::Result<()> {
        if self.events.is_empty() {
            std::thread::sleep(timeout.min(Duration::from_millis(1)));
        }
        events.append(&mut self.events);
        Ok(())
    }
}

fn config(duration: Duration, requests: Option<u64>, rate: Option<f64>) -> LoadConfig {
    LoadConfig {
        target: SocketAddr::from(([198, 18, 0, 2], 9)),
        mode: LoadMode::Rr,
        framing: Framing::Fixed(30),
        connections: 3,
        threads: 1,
        duration,
        warmup: Duration::ZERO,
        ramp_up: Duration::ZERO,
        requests,
        rate,
        arrivals: Arrivals::Constant,
        pipeline: 2,
        request_size: 10,
        response_size: 30,
        path: "/".to_string(),
        close: false,
        http: HttpRequest::new(None, "h".to_string(), &[], Vec::new()).expect("request"),
        direction: Direction::Up,
        verify_bytes: None,
        connect_timeout: Duration::from_millis(200),
        timeout: Duration::from_millis(100),
        progress: false,
        seed: 1,
        slice: super::config::ConnectionSlice { first: 0, count: 3 },
        start_at: None,
        record_schedule: false,
        agent: None,
    }
}

fn run(config: &LoadConfig, peer: Peer) -> ThreadResult {
    let plan = ThreadPlan {
        index: 0,
        first_connection: 0,
        connections: config.connections,
        requests: config.requests,
    };
    let (tx, _rx) = mpsc::channel();
    let stop = AtomicBool::new(false);
    run_thread(
        config,
        &plan,
        FakeWorker::new(peer),
        Instant::now(),
        &stop,
        &tx,
    )
    .expect("load thread")
}

#[test]
fn a_request_budget_is_met_exactly() {
    let config = config(Duration::from_secs(10), Some(1000), None);
    let started = Instant::now();
    let result = run(
        &config,
        Peer::Answers {
            request: 10,
            response: 30,
        },
    );
    let c = &result.counts;
    assert_eq!(c.requests_sent, 1000);
    assert_eq!(c.answered, 1000);
    assert_eq!(c.errors_total(), 0);
    assert_eq!(c.bytes_sent, 10_000);
    assert_eq!(c.bytes_received, 30_000);
    assert_eq!(result.latencies.latency.len(), 1000);
    assert_eq!(c.connects, 3);
    assert!(
        started.elapsed() < Duration::from_secs(9),
        "the budget ended the run"
    );
}

#[test]
fn a_silent_peer_gives_timeouts_for_every_request() {
    let config = config(Duration::from_millis(500), None, None);
    let result = run(&config, Peer::Silent);
    let c = &result.counts;
    assert_eq!(c.answered, 0);
    assert!(c.requests_sent >= 6, "each connection filled its pipeline");
    assert_eq!(c.errors.get("timeout").copied(), Some(c.requests_sent));
}

#[test]
fn a_refusing_peer_counts_connect_errors_only() {
    let config = config(Duration::from_millis(300), None, None);
    let result = run(&config, Peer::Refuses);
    let c = &result.counts;
    assert_eq!(c.requests_sent, 0);
    assert!(c.connect_attempts >= 3);
    assert_eq!(
        c.connect_errors.get("refused").copied(),
        Some(c.connect_attempts)
    );
}

#[test]
fn open_loop_sends_on_schedule_and_counts_the_window() {
    // 3 slots at 100/s each for 1 s: the schedule has exactly 300 send times before the end.
    let config = config(Duration::from_secs(1), None, Some(300.0));
    let result = run(
        &config,
        Peer::Answers {
            request: 10,
            response: 30,
        },
    );
    let c = &result.counts;
    assert_eq!(c.requests_sent, 300, "one request per intended send time");
    assert_eq!(c.answered, 300);
}

#[test]
fn agents_slices_together_intend_the_whole_schedule() {
    // 5 slots at 400/s for 0.5 s, split 2 + 2 + 1 as three agents would: the recorded
    // intended send times together are the whole run's 200 arrivals at n/400 s.
    let mut config = config(Duration::from_millis(500), None, Some(400.0));
    config.connections = 5;
    config.record_schedule = true;
    let start = Instant::now();
    let mut union = Vec::new();
    // The agents run side by side, as they would on their hosts.
    let results: Vec<ThreadResult> = std::thread::scope(|scope| {
        let handles: Vec<_> = [(0, 2), (2, 2), (4, 1)]
            .into_iter()
            .map(|(first, count)| {
                let config = &config;
                scope.spawn(move || {
                    let plan = ThreadPlan {
                        index: 0,
                        first_connection: first,
                        connections: count,
                        requests: None,
                    };
                    let (tx, _rx) = mpsc::channel();
                    let stop = AtomicBool::new(false);
                    let peer = Peer::Answers {
                        request: 10,
                        response: 30,
                    };
                    run_thread(config, &plan, FakeWorker::new(peer), start, &stop, &tx)
                        .expect("load thread")
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("agent thread"))
            .collect()
    });
    for result in results {
        assert_eq!(result.counts.requests_sent, result.schedule.len() as u64);
        union.extend(result.schedule);
    }
    union.sort_unstable();
    let expected: Vec<u64> = (0..200)
        .map(|n| super::schedule::constant_arrival(n, 400.0).as_nanos() as u64)
        .collect();
    assert_eq!(union, expected);
}

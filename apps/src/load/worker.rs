//! One `surge load` thread: its connections, their requests, and its histograms.

use std::collections::VecDeque;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::time::{Duration, Instant};

use super::config::{Direction, LoadConfig, LoadMode};
use super::counts::{IntervalMsg, ThreadPlan, ThreadResult};
use super::protocol::{Completed, ResponseParser, build_request};
use super::schedule::SlotSchedule;
use super::verified::VerifiedStream;
use crate::backend::{Event, SocketId, Worker};
use crate::report::{ErrorKind, count_error, new_histogram, record};

/// Wait before reconnecting after a failed connect, so a refusing target is not flooded.
const CONNECT_BACKOFF: Duration = Duration::from_millis(20);
/// Longest sleep in `poll`: timeouts and the stop flag are checked at least this often.
const MAX_POLL: Duration = Duration::from_millis(10);
/// Bytes per read and per stream write.
const CHUNK: usize = 64 * 1024;
/// Reads per connection before the other connections get a turn.
const READ_BURST: usize = 64;

/// A request on the wire.
#[derive(Debug, Clone, Copy)]
struct InFlight {
    intended: Instant,
    sent: Instant,
    first_byte: Option<Instant>,
    warmup: bool,
}

/// Where a connection is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// No socket; (re)connect at this time.
    Down(Instant),
    /// Connect in progress since.
    Connecting(Instant),
    /// Established.
    Up,
    /// Finished for good (stream end).
    Done,
}

/// One connection slot.
#[derive(Debug)]
struct Conn {
    socket: Option<SocketId>,
    phase: Phase,
    inflight: VecDeque<InFlight>,
    out: Vec<u8>,
    out_pos: usize,
    parser: ResponseParser,
    /// Open loop: when the next request of this slot is due.
    next_due: Instant,
    /// Open loop: the slot's arrivals.
    schedule: Option<SlotSchedule>,
    /// crr / --close: the intended start of the current transaction, and whether it was sent.
    transaction: Option<Instant>,
    transaction_sent: bool,
    /// Stream: FIN sent, waiting for the server's.
    shut: bool,
    /// Data may still be queued: the last read stopped at its burst limit.
    reread: bool,
    /// `--verify-bytes`: the checked stream this connection sends or receives.
    verify: Option<VerifiedStream>,
}

/// The state of one load thread.
struct LoadThread<'a, W: Worker> {
    config: &'a LoadConfig,
    worker: W,
    conns: Vec<Conn>,
    by_socket: Vec<Option<usize>>,
    request: Vec<u8>,
    start: Instant,
    end: Instant,
    warmup_end: Instant,
    stopping: bool,
    /// Stopped by Ctrl-C / SIGTERM rather than by the clock or the budget.
    interrupted: bool,
    /// Some connection has more to read or write right now: poll without sleeping.
    busy: bool,
    budget: Option<u64>,
    sent_total: u64,
    /// Open-loop rate of one connection slot.
    slot_rate: Option<f64>,
    result: ThreadResult,
    interval: IntervalMsg,
    buf: Vec<u8>,
}

/// Runs one load thread until the run ends (duration, budget, or `stop`), then drains.
pub fn run_thread<W: Worker>(
    config: &LoadConfig,
    plan: &ThreadPlan,
    worker: W,
    start: Instant,
    stop: &AtomicBool,
    intervals: &Sender<IntervalMsg>,
) -> io::Result<ThreadResult> {
    let slot_rate = config.rate.map(|r| r / config.connections as f64);
    let request = build_request(
        config.framing,
        &config.http,
        &config.path,
        config.request_size,
        config.close,
    );
    let mut conns = Vec::with_capacity(plan.connections);
    for k in 0..plan.connections {
        let global = plan.first_connection + k;
        let ramp = config
            .ramp_up
            .mul_f64(global as f64 / config.connections as f64);
        let first = start + ramp;
        let schedule = config.rate.map(|rate| {
            SlotSchedule::new(
                config.arrivals,
                config.seed,
                global,
                config.connections,
                rate,
                ramp,
            )
        });
        let next_due = start + schedule.as_ref().map_or(ramp, SlotSchedule::next_due);
        conns.push(Conn {
            socket: None,
            phase: Phase::Down(first),
            inflight: VecDeque::new(),
            out: Vec::new(),
            out_pos: 0,
            parser: ResponseParser::new(config.framing),
            next_due,
            schedule,
            transaction: None,
            transaction_sent: false,
            shut: false,
            reread: false,
            verify: None,
        });
    }
    let mut thread = LoadThread {
        config,
        worker,
        conns,
        by_socket: Vec::new(),
        request,
        start,
        end: start + config.duration,
        warmup_end: start + config.warmup,
        stopping: false,
        interrupted: false,
        busy: false,
        budget: plan.requests,
        sent_total: 0,
        slot_rate,
        result: ThreadResult::default(),
        interval: IntervalMsg {
            thread: plan.index,
            second: 0,
            histogram: new_histogram(),
            answered: 0,
            errors: 0,
            bytes_received: 0,
            bytes_sent: 0,
        },
        buf: vec![0; CHUNK],
    };
    thread.run(stop, intervals)?;
    Ok(thread.result)
}

impl<W: Worker> LoadThread<'_, W> {
    /// Whether each transaction uses its own connection.
    fn close_each(&self) -> bool {
        self.config.mode == LoadMode::Crr || self.config.close
    }

    /// The main loop, bounded by the duration plus one drain period.
    fn run(&mut self, stop: &AtomicBool, intervals: &Sender<IntervalMsg>) -> io::Result<()> {
        let mut events = Vec::with_capacity(1024);
        let mut drain_deadline = self.end + self.config.timeout;
        loop {
            let now = Instant::now();
            if !self.stopping
                && (now >= self.end
                    || self.verified_all()
                    || stop.load(Ordering::Relaxed)
                    || self
                        .budget
                        .is_some_and(|b| self.sent_total >= b && self.idle()))
            {
                self.stopping = true;
                self.interrupted = stop.load(Ordering::Relaxed);
                drain_deadline = now + self.config.timeout;
                self.begin_stream_shutdown();
            }
            if self.stopping && (self.idle() || now >= drain_deadline) {
                break;
            }
            self.busy = false;
            for i in 0..self.conns.len() {
                self.service(i, now);
            }
            self.flush_interval(now, intervals, false);
            let timeout = if self.busy {
                Duration::ZERO
            } else {
                self.poll_timeout(now)
            };
            events.clear();
            self.worker.poll(&mut events, timeout)?;
            let now = Instant::now();
            for event in events.drain(..) {
                self.handle_event(event, now);
            }
        }
        // Whatever is still unanswered after the drain period timed out.
        let now = Instant::now();
        for i in 0..self.conns.len() {
            self.fail_connection(i, ErrorKind::Timeout, None);
            if let Some(c) = self.conns.get_mut(i) {
                c.phase = Phase::Done;
            }
        }
        self.flush_interval(now, intervals, true);
        Ok(())
    }

    /// `--verify-bytes`: every connection's checked stream has ended.
    fn verified_all(&self) -> bool {
        self.config.verify_bytes.is_some() && self.conns.iter().all(|c| c.phase == Phase::Done)
    }

    /// No request in flight and no stream still finishing.
    fn idle(&self) -> bool {
        let stream = self.config.mode == LoadMode::Stream;
        let owes = self.stopping
            && self.slot_rate.is_some()
            && !self.close_each()
            && !self.interrupted
            && self.budget.is_none_or(|b| self.sent_total < b);
        self.conns.iter().all(|c| {
            c.inflight.is_empty()
                && !(stream && c.phase == Phase::Up)
                && !(owes && c.phase == Phase::Up && c.next_due < self.end)
        })
    }

    /// Stream: send FIN on every open connection, then wait for the server's.
    fn begin_stream_shutdown(&mut self) {
        if self.config.mode != LoadMode::Stream {
            return;
        }
        for i in 0..self.conns.len() {
            let Some(conn) = self.conns.get_mut(i) else {
                continue;
            };
            match conn.phase {
                Phase::Up => {
                    conn.shut = true;
                    if let Some(id) = conn.socket {
                        if self.worker.shutdown_write(id).is_err() {
                            self.close_socket(i);
                            if let Some(c) = self.conns.get_mut(i) {
                                c.phase = Phase::Done;
                            }
                        }
                    }
                }
                _ => {
                    self.close_socket(i);
                    if let Some(c) = self.conns.get_mut(i) {
                        c.phase = Phase::Done;
                    }
                }
            }
        }
    }

    /// How long `poll` may sleep.
    fn poll_timeout(&self, now: Instant) -> Duration {
        let mut wake = now + MAX_POLL;
        let next_second = self.start + Duration::from_secs(self.interval.second + 1);
        wake = wake.min(next_second);
        for c in &self.conns {
            match c.phase {
                Phase::Down(at) if !self.stopping => {
                    let open_crr = self.close_each() && self.slot_rate.is_some();
                    wake = wake.min(if open_crr { at.max(c.next_due) } else { at });
                }
                Phase::Up
                    if self.slot_rate.is_some() && c.inflight.len() < self.config.pipeline =>
                {
                    wake = wake.min(c.next_due)
                }
                _ => {}
            }
        }
        let gap = wake.saturating_duration_since(now);
        // epoll sleeps in whole milliseconds: spin through the last one for punctual sends.
        if gap < Duration::from_millis(1) {
            Duration::ZERO
        } else {
            gap - Duration::from_millis(1)
        }
    }

    /// Connects, times out, and sends what is due on connection `i`.
    fn service(&mut self, i: usize, now: Instant) {
        let Some(conn) = self.conns.get(i) else {
            return;
        };
        match conn.phase {
            Phase::Down(at) => {
                if self.stopping || now < at {
                    return;
                }
                if self.close_each() {
                    // crr: a connection is opened for a transaction that is due.
                    if self.budget.is_some_and(|b| self.sent_total >= b) {
                        return;
                    }
                    let intended = match self.slot_rate {
                        Some(_) if conn.next_due > now => return,
                        Some(_) => {
                            let due = conn.next_due;
                            if due >= self.end {
                                return;
                            }
                            self.advance_schedule(i);
                            due
                        }
                        None => now,
                    };
                    if let Some(c) = self.conns.get_mut(i) {
                        c.transaction = Some(intended);
                        c.transaction_sent = false;
                    }
                }
                self.connect(i, now);
            }
            Phase::Connecting(since) => {
                if now.duration_since(since) >= self.config.connect_timeout {
                    self.connect_failed(i, ErrorKind::ConnectTimeout, now);
                }
            }
            Phase::Up => {
                if let Some(front) = conn.inflight.front() {
                    if now.duration_since(front.sent) >= self.config.timeout {
                        self.fail_connection(i, ErrorKind::Timeout, Some(now));
                        return;
                    }
                }
                if conn.reread {
                    self.read(i, now);
                    if self.conns.get(i).is_none_or(|c| c.phase != Phase::Up) {
                        return;
                    }
                }
                if self.config.mode == LoadMode::Stream {
                    self.write_stream(i, now);
                } else {
                    self.issue_requests(i, now);
                    self.flush(i, now);
                }
            }
            Phase::Done => {}
        }
    }

    /// Starts a connect on slot `i`.
    fn connect(&mut self, i: usize, now: Instant) {
        self.result.counts.connect_attempts += 1;
        match self.worker.connect(self.config.target) {
            Ok(id) => {
                if self.by_socket.len() <= id {
                    self.by_socket.resize(id + 1, None);
                }
                if let Some(slot) = self.by_socket.get_mut(id) {
                    *slot = Some(i);
                }
                if let Some(c) = self.conns.get_mut(i) {
                    c.socket = Some(id);
                    c.phase = Phase::Connecting(now);
                    c.parser = ResponseParser::new(self.config.framing);
                    c.out.clear();
                    c.out_pos = 0;
                    c.shut = false;
                    if self.config.mode == LoadMode::Stream {
                        let slot = (self.interval.thread as u64) << 32 | i as u64;
                        c.verify = self.config.verify_bytes.map(|len| {
                            VerifiedStream::open(
                                self.config.direction,
                                self.config.seed ^ slot,
                                len,
                                &mut c.out,
                            )
                        });
                        if c.verify.is_none() {
                            c.out.push(match self.config.direction {
                                Direction::Up => b'U',
                                Direction::Down => b'D',
                            });
                        }
                    }
                }
            }
            Err(err) => self.connect_failed(i, ErrorKind::of_io(&err), now),
        }
    }

    /// Counts a failed connect and schedules a retry.
    fn connect_failed(&mut self, i: usize, kind: ErrorKind, now: Instant) {
        count_error(&mut self.result.counts.connect_errors, kind, 1);
        self.interval.errors += 1;
        self.close_socket(i);
        if let Some(c) = self.conns.get_mut(i) {
            c.transaction = None;
            c.phase = if self.stopping {
                Phase::Done
            } else {
                Phase::Down(now + CONNECT_BACKOFF)
            };
        }
    }

    /// Consumes slot `i`'s due arrival (recording it with `--record-schedule`) and moves its
    /// next due time on.
    fn advance_schedule(&mut self, i: usize) {
        let Some(c) = self.conns.get_mut(i) else {
            return;
        };
        let Some(schedule) = c.schedule.as_mut() else {
            return;
        };
        let due = schedule.take();
        c.next_due = self.start + schedule.next_due();
        if self.config.record_schedule {
            self.result
                .schedule
                .push(u64::try_from(due.as_nanos()).unwrap_or(u64::MAX));
        }
    }

    /// Queues every request that is due and fits the pipeline on slot `i`.
    fn issue_requests(&mut self, i: usize, now: Instant) {
        let close_each = self.close_each();
        // After the end, an open loop still owes the requests intended before it (they are
        // late, and their latency says so); a closed loop sends nothing more.
        if self.stopping && (self.slot_rate.is_none() || close_each || self.interrupted) {
            return;
        }
        loop {
            let Some(c) = self.conns.get(i) else { return };
            if c.inflight.len() >= self.config.pipeline {
                return;
            }
            if self.budget.is_some_and(|b| self.sent_total >= b) {
                return;
            }
            let intended = if close_each {
                if c.transaction_sent {
                    return;
                }
                c.transaction.unwrap_or(now)
            } else {
                match self.slot_rate {
                    Some(_) => {
                        let due = c.next_due;
                        if due > now || due >= self.end {
                            return;
                        }
                        self.advance_schedule(i);
                        due
                    }
                    None => now,
                }
            };
            let warmup = intended < self.warmup_end;
            self.sent_total += 1;
            if warmup {
                self.result.counts.warmup_sent += 1;
            } else {
                self.result.counts.requests_sent += 1;
            }
            let Some(c) = self.conns.get_mut(i) else {
                return;
            };
            c.inflight.push_back(InFlight {
                intended,
                sent: now,
                first_byte: None,
                warmup,
            });
            c.out.extend_from_slice(&self.request);
            if close_each {
                c.transaction_sent = true;
            }
        }
    }

    /// Writes queued bytes of slot `i` until the socket would block.
    fn flush(&mut self, i: usize, now: Instant) {
        loop {
            let Some(c) = self.conns.get(i) else { return };
            let Some(id) = c.socket else { return };
            if c.out_pos >= c.out.len() {
                if let Some(c) = self.conns.get_mut(i) {
                    c.out.clear();
                    c.out_pos = 0;
                }
                return;
            }
            let pending = c.out.get(c.out_pos..).unwrap_or_default();
            match self.worker.send(id, pending) {
                Ok(0) => return,
                Ok(n) => {
                    self.result.counts.bytes_sent += n as u64;
                    self.interval.bytes_sent += n as u64;
                    if let Some(c) = self.conns.get_mut(i) {
                        c.out_pos += n;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.fail_connection(i, ErrorKind::of_io(&e), Some(now));
                    return;
                }
            }
        }
    }

    /// Stream up: the marker, then data until the socket would block.
    fn write_stream(&mut self, i: usize, now: Instant) {
        self.flush(i, now);
        let Some(c) = self.conns.get(i) else { return };
        if self.config.direction != Direction::Up || c.shut || c.out_pos < c.out.len() {
            return;
        }
        let Some(id) = c.socket else { return };
        let mut chunk = [b's'; 16 * 1024];
        for _ in 0..64 {
            let len = match self.conns.get(i).and_then(|c| c.verify.as_ref()) {
                Some(v) => match v.fill(&mut chunk) {
                    Some(len) => len,
                    None => {
                        // The whole checked stream is out: FIN, then wait for the server's.
                        if let Some(c) = self.conns.get_mut(i) {
                            c.shut = true;
                        }
                        if let Err(e) = self.worker.shutdown_write(id) {
                            self.fail_connection(i, ErrorKind::of_io(&e), None);
                        }
                        return;
                    }
                },
                None => chunk.len(),
            };
            match self.worker.send(id, &chunk[..len]) {
                Ok(n) => {
                    self.result.counts.bytes_sent += n as u64;
                    self.interval.bytes_sent += n as u64;
                    if let Some(v) = self.conns.get_mut(i).and_then(|c| c.verify.as_mut()) {
                        v.sent(n);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.fail_connection(i, ErrorKind::of_io(&e), Some(now));
                    return;
                }
            }
        }
        // Still writable: no new edge will come, so do not sleep before the next burst.
        self.busy = true;
    }

    /// Reacts to one readiness event.
    fn handle_event(&mut self, event: Event, now: Instant) {
        let id = match &event {
            Event::Connected(id)
            | Event::ConnectFailed(id, _)
            | Event::Readable(id)
            | Event::Writable(id)
            | Event::Acceptable(id) => *id,
        };
        let Some(i) = self.by_socket.get(id).copied().flatten() else {
            return;
        };
        if self.conns.get(i).and_then(|c| c.socket) != Some(id) {
            return;
        }
        match event {
            Event::Connected(_) => {
                let Some(c) = self.conns.get_mut(i) else {
                    return;
                };
                if let Phase::Connecting(since) = c.phase {
                    c.phase = Phase::Up;
                    self.result.counts.connects += 1;
                    if since >= self.warmup_end {
                        record(
                            &mut self.result.latencies.connect,
                            micros(now.duration_since(since)),
                        );
                    }
                    self.service(i, now);
                }
            }
            Event::ConnectFailed(_, err) => self.connect_failed(i, ErrorKind::of_io(&err), now),
            Event::Readable(_) => self.read(i, now),
            Event::Writable(_) => {
                if self.config.mode == LoadMode::Stream {
                    self.write_stream(i, now);
                } else {
                    self.flush(i, now);
                }
            }
            Event::Acceptable(_) => {}
        }
    }

    /// Reads slot `i` until it would block, completing responses.
    fn read(&mut self, i: usize, now: Instant) {
        let mut completed = Vec::new();
        if let Some(c) = self.conns.get_mut(i) {
            c.reread = false;
        }
        for _ in 0..READ_BURST {
            let Some(id) = self.conns.get(i).and_then(|c| c.socket) else {
                return;
            };
            let n = match self.worker.recv(id, &mut self.buf) {
                Ok(0) => {
                    self.end_of_stream(i, now);
                    return;
                }
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    self.fail_connection(i, ErrorKind::of_io(&e), Some(now));
                    return;
                }
            };
            self.result.counts.bytes_received += n as u64;
            self.interval.bytes_received += n as u64;
            if self.config.mode == LoadMode::Stream {
                if let Some(v) = self.conns.get_mut(i).and_then(|c| c.verify.as_mut()) {
                    v.received(self.buf.get(..n).unwrap_or_default());
                }
                continue;
            }
            let Some(c) = self.conns.get_mut(i) else {
                return;
            };
            if let Some(front) = c.inflight.front_mut() {
                front.first_byte.get_or_insert(now);
            }
            completed.clear();
            let data = self.buf.get(..n).unwrap_or_default();
            let parsed = c.parser.feed(data, &mut completed);
            let mut close = false;
            for done in completed.drain(..) {
                close |= done.close;
                self.complete(i, done, now);
            }
            if let Err(_malformed) = parsed {
                self.fail_connection(i, ErrorKind::Malformed, Some(now));
                return;
            }
            let close_each = self.close_each();
            let Some(c) = self.conns.get_mut(i) else {
                return;
            };
            if c.parser.in_progress() {
                if let Some(front) = c.inflight.front_mut() {
                    front.first_byte.get_or_insert(now);
                }
            }
            if close || (close_each && c.transaction_sent && c.inflight.is_empty()) {
                // The transaction is over (crr) or the server announced its close.
                self.fail_connection(i, ErrorKind::Closed, Some(now));
                return;
            }
        }
        // Burst used up without reaching WouldBlock: no new edge will come, so read again
        // on the next turn of the loop (after the other connections had theirs).
        if let Some(c) = self.conns.get_mut(i) {
            c.reread = true;
        }
        self.busy = true;
    }

    /// The server closed its side of slot `i`.
    fn end_of_stream(&mut self, i: usize, now: Instant) {
        if self.config.mode == LoadMode::Stream {
            if let Some(v) = self.conns.get_mut(i).and_then(|c| c.verify.take()) {
                // A checked stream ends here for good: down, the server's FIN ends it; up,
                // its FIN answers ours.
                let shut = self.conns.get(i).is_some_and(|c| c.shut);
                v.finish(shut, &mut self.result.counts);
                self.close_socket(i);
                if let Some(c) = self.conns.get_mut(i) {
                    c.phase = Phase::Done;
                }
                return;
            }
            let done = self.conns.get(i).is_some_and(|c| c.shut);
            self.close_socket(i);
            if let Some(c) = self.conns.get_mut(i) {
                c.phase = if done || self.stopping {
                    Phase::Done
                } else {
                    Phase::Down(now)
                };
            }
            if !done {
                count_error(&mut self.result.counts.connect_errors, ErrorKind::Closed, 1);
            }
            return;
        }
        if let Some(done) = self.conns.get_mut(i).and_then(|c| c.parser.finish_at_eof()) {
            self.complete(i, done, now);
        }
        self.fail_connection(i, ErrorKind::Closed, Some(now));
    }

    /// The response to the oldest request of slot `i` arrived.
    fn complete(&mut self, i: usize, done: Completed, now: Instant) {
        let Some(f) = self.conns.get_mut(i).and_then(|c| c.inflight.pop_front()) else {
            return;
        };
        // The progress line counts warm-up answers too; the results do not.
        self.interval.answered += 1;
        if f.warmup {
            self.result.counts.warmup_answered += 1;
            return;
        }
        self.result.counts.answered += 1;
        if !done.status_ok() {
            self.result.counts.non_2xx += 1;
        }
        if let Some(status) = done.status {
            self.result.counts.http_status.count(status);
        }
        let latency = micros(now.duration_since(f.intended));
        let l = &mut self.result.latencies;
        record(&mut l.latency, latency);
        record(&mut l.uncorrected, micros(now.duration_since(f.sent)));
        record(
            &mut l.ttfb,
            micros(f.first_byte.unwrap_or(now).duration_since(f.sent)),
        );
        record(&mut self.interval.histogram, latency);
    }

    /// Fails every request in flight on slot `i` with `kind`, closes it, and (when `reopen`)
    /// reconnects at that time.
    fn fail_connection(&mut self, i: usize, kind: ErrorKind, reopen: Option<Instant>) {
        let Some(c) = self.conns.get_mut(i) else {
            return;
        };
        let (mut measured, mut warm) = (0, 0);
        for f in c.inflight.drain(..) {
            if f.warmup {
                warm += 1;
            } else {
                measured += 1;
            }
        }
        c.transaction = None;
        c.transaction_sent = false;
        count_error(&mut self.result.counts.errors, kind, measured);
        self.result.counts.warmup_errors += warm;
        self.interval.errors += measured;
        self.close_socket(i);
        if let Some(c) = self.conns.get_mut(i) {
            c.phase = match reopen {
                Some(at) if !self.stopping => Phase::Down(at),
                _ => Phase::Done,
            };
        }
    }

    /// Closes slot `i`'s socket, if any.
    fn close_socket(&mut self, i: usize) {
        let Some(c) = self.conns.get_mut(i) else {
            return;
        };
        if let Some(id) = c.socket.take() {
            self.worker.close(id);
            if let Some(slot) = self.by_socket.get_mut(id) {
                *slot = None;
            }
        }
        c.out.clear();
        c.out_pos = 0;
    }

    /// Sends the current second to the main thread once it is over (or at the end).
    fn flush_interval(&mut self, now: Instant, intervals: &Sender<IntervalMsg>, last: bool) {
        let second = now.duration_since(self.start).as_secs();
        if second <= self.interval.second && !last {
            return;
        }
        let next = IntervalMsg {
            thread: self.interval.thread,
            second,
            histogram: new_histogram(),
            answered: 0,
            errors: 0,
            bytes_received: 0,
            bytes_sent: 0,
        };
        let msg = std::mem::replace(&mut self.interval, next);
        // The main thread outlives the workers; a closed channel only loses progress lines.
        let _ = intervals.send(msg);
    }
}

/// A duration in whole microseconds (saturating).
fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

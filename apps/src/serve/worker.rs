//! One `surge serve` thread: a listener (SO_REUSEPORT on the kernel stack) and its connections.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;

use super::ServeMode;
use super::http::{BAD_REQUEST, parse_request, response_head};
use crate::backend::{Event, SocketId, Worker};
use crate::report::{new_histogram, record};
use crate::seeded_stream::{
    HEADER_LEN, MARKER_DOWN, MARKER_UP, SeededStream, StreamCheck, Verdict, parse_header,
};

/// Bytes per read and per stream write.
const CHUNK: usize = 64 * 1024;
/// Stop reading a connection while this much output waits (echo/rr/http backpressure).
const MAX_PENDING_OUT: usize = 4 << 20;
/// Reads or stream writes per connection before other connections get a turn.
const BURST: usize = 64;
/// Longest sleep in `poll`, so the stop flag is seen quickly.
const MAX_POLL: Duration = Duration::from_millis(50);

/// Live counters of one thread, read by the status line.
#[derive(Debug, Default)]
pub struct ServeStats {
    /// Connections accepted.
    pub accepted: AtomicU64,
    /// Connections closed.
    pub closed: AtomicU64,
    /// Requests answered (rr, http).
    pub requests: AtomicU64,
    /// Bytes read.
    pub bytes_received: AtomicU64,
    /// Bytes written.
    pub bytes_sent: AtomicU64,
    /// Connections ended by a reset or another I/O error.
    pub errors_io: AtomicU64,
    /// Malformed requests (bad HTTP, bad stream marker).
    pub errors_malformed: AtomicU64,
    /// Accept failures.
    pub errors_accept: AtomicU64,
    /// Checked streams received whose SHA-256 matched the seeded stream's.
    pub streams_verified: AtomicU64,
    /// Checked streams received whose SHA-256 (or length) did not match.
    pub streams_mismatched: AtomicU64,
}

/// Adds `n` to a counter.
fn bump(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Ordering::Relaxed);
}

/// What a stream connection does after its marker byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StreamRole {
    Unknown,
    Sink,
    Source,
}

/// One accepted connection.
#[derive(Debug)]
struct Conn {
    socket: SocketId,
    input: Vec<u8>,
    out: Vec<u8>,
    out_pos: usize,
    /// rr: request bytes still expected.
    remaining: usize,
    /// First byte of the request being received.
    request_start: Option<Instant>,
    close_after_flush: bool,
    role: StreamRole,
    /// Checked stream received (marker `u`): its running digests.
    check: Option<StreamCheck>,
    /// Checked stream sent (marker `d`): what is left of it.
    seeded: Option<SeededStream>,
    /// More to read or write without waiting for an event (the id is then in
    /// `ServeThread::again`).
    again: bool,
}

/// The configuration a thread needs.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// What to do with connections.
    pub mode: ServeMode,
    /// rr request size.
    pub request_size: usize,
    /// rr / http response size.
    pub response_size: usize,
}

/// A serving thread.
struct ServeThread<'a, W: Worker> {
    config: &'a ServeConfig,
    worker: W,
    listener: SocketId,
    conns: Vec<Option<Conn>>,
    stats: &'a ServeStats,
    service: Histogram<u64>,
    response: Vec<u8>,
    buf: Vec<u8>,
    /// Arrival times of the requests answered by the current read.
    answered: Vec<Instant>,
    /// The connections marked `again` (an id may be listed twice, or after its
    /// connection closed: the loop looks at the mark): the loop visits these instead of
    /// walking every connection.
    again: Vec<SocketId>,
}

/// Binds the listener of one thread (so bind errors surface before serving starts).
pub fn bind<W: Worker>(worker: &mut W, listen: SocketAddr) -> io::Result<SocketId> {
    worker.listen(listen)
}

/// Serves until `stop` is raised; returns the service-time histogram (nanoseconds).
pub fn serve_thread<W: Worker>(
    config: &ServeConfig,
    worker: W,
    listener: SocketId,
    stats: &ServeStats,
    stop: &AtomicBool,
) -> io::Result<Histogram<u64>> {
    let response = match config.mode {
        ServeMode::Rr => vec![b'r'; config.response_size],
        ServeMode::Http => {
            let mut r = response_head(config.response_size, false);
            r.resize(r.len() + config.response_size, b'h');
            r
        }
        _ => Vec::new(),
    };
    let mut thread = ServeThread {
        config,
        worker,
        listener,
        conns: Vec::new(),
        stats,
        service: new_histogram(),
        response,
        buf: vec![0; CHUNK],
        answered: Vec::new(),
        again: Vec::new(),
    };
    let mut events = Vec::with_capacity(1024);
    let mut again = Vec::new();
    while !stop.load(Ordering::Relaxed) {
        again.clear();
        again.append(&mut thread.again);
        again.sort_unstable();
        again.dedup();
        again.retain(|&id| {
            thread
                .conns
                .get(id)
                .and_then(Option::as_ref)
                .is_some_and(|c| c.again)
        });
        let timeout = if again.is_empty() {
            MAX_POLL
        } else {
            Duration::ZERO
        };
        events.clear();
        thread.worker.poll(&mut events, timeout)?;
        for &id in &again {
            thread.on_readable(id);
            thread.on_writable(id);
        }
        for event in events.drain(..) {
            match event {
                Event::Acceptable(_) => thread.accept_all(),
                Event::Readable(id) => thread.on_readable(id),
                Event::Writable(id) => thread.on_writable(id),
                Event::Connected(_) | Event::ConnectFailed(..) => {}
            }
        }
    }
    let open: Vec<SocketId> = thread.conns.iter().flatten().map(|c| c.socket).collect();
    for id in open {
        thread.close(id);
    }
    thread.worker.close(thread.listener);
    Ok(thread.service)
}

impl<W: Worker> ServeThread<'_, W> {
    /// Accepts every waiting connection (bounded by the accept queue).
    fn accept_all(&mut self) {
        for _ in 0..4096 {
            match self.worker.accept(self.listener) {
                Ok(Some(id)) => {
                    bump(&self.stats.accepted, 1);
                    if self.conns.len() <= id {
                        self.conns.resize_with(id + 1, || None);
                    }
                    if let Some(slot) = self.conns.get_mut(id) {
                        *slot = Some(Conn {
                            socket: id,
                            input: Vec::new(),
                            out: Vec::new(),
                            out_pos: 0,
                            remaining: self.config.request_size,
                            request_start: None,
                            close_after_flush: false,
                            role: StreamRole::Unknown,
                            check: None,
                            seeded: None,
                            again: false,
                        });
                    }
                }
                Ok(None) => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    // EMFILE, ECONNABORTED, ...: counted; the next event retries.
                    bump(&self.stats.errors_accept, 1);
                    return;
                }
            }
        }
    }

    /// Marks connection `id` to be looked at in the next loop without an event.
    fn mark_again(&mut self, id: SocketId) {
        if let Some(conn) = self.conns.get_mut(id).and_then(Option::as_mut) {
            if !conn.again {
                conn.again = true;
                self.again.push(id);
            }
        }
    }

    /// Closes a connection and counts it.
    fn close(&mut self, id: SocketId) {
        if let Some(slot) = self.conns.get_mut(id) {
            if slot.take().is_some() {
                self.worker.close(id);
                bump(&self.stats.closed, 1);
            }
        }
    }

    /// Output waiting on connection `id`.
    fn pending_out(&self, id: SocketId) -> usize {
        self.conns
            .get(id)
            .and_then(Option::as_ref)
            .map_or(0, |c| c.out.len() - c.out_pos)
    }

    /// Reads what connection `id` has (a burst at most) and answers it.
    fn on_readable(&mut self, id: SocketId) {
        for _ in 0..BURST {
            let Some(conn) = self.conns.get_mut(id).and_then(Option::as_mut) else {
                return;
            };
            conn.again = false;
            if self.pending_out(id) > MAX_PENDING_OUT {
                // Backpressure: read again once the output drained (on_writable).
                return;
            }
            let read_at = Instant::now();
            match self.worker.recv(id, &mut self.buf) {
                Ok(0) => {
                    let check = self
                        .conns
                        .get_mut(id)
                        .and_then(Option::as_mut)
                        .and_then(|c| c.check.take());
                    if let Some(check) = check {
                        let counter = match check.finish() {
                            Verdict::Match => &self.stats.streams_verified,
                            Verdict::Mismatch => &self.stats.streams_mismatched,
                        };
                        bump(counter, 1);
                    }
                    self.flush(id);
                    self.close(id);
                    return;
                }
                Ok(n) => {
                    bump(&self.stats.bytes_received, n as u64);
                    if !self.handle_input(id, n, read_at) {
                        return;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    bump(&self.stats.errors_io, 1);
                    self.close(id);
                    return;
                }
            }
        }
        self.mark_again(id);
    }

    /// Handles `n` fresh bytes in `self.buf` (read at `now`); false when the connection was
    /// closed. Service time runs from a request's first byte being read to its response
    /// being handed to the socket.
    fn handle_input(&mut self, id: SocketId, n: usize, now: Instant) -> bool {
        self.answered.clear();
        let data = self.buf.get(..n).unwrap_or_default();
        let Some(conn) = self.conns.get_mut(id).and_then(Option::as_mut) else {
            return false;
        };
        match self.config.mode {
            ServeMode::Discard => {}
            ServeMode::Echo => conn.out.extend_from_slice(data),
            ServeMode::Rr => {
                let mut left = n;
                while left > 0 {
                    conn.request_start.get_or_insert(now);
                    let take = conn.remaining.min(left);
                    conn.remaining -= take;
                    left -= take;
                    if conn.remaining == 0 {
                        conn.out.extend_from_slice(&self.response);
                        conn.remaining = self.config.request_size;
                        if let Some(start) = conn.request_start.take() {
                            self.answered.push(start);
                        }
                        bump(&self.stats.requests, 1);
                    }
                }
            }
            ServeMode::Http => {
                conn.request_start.get_or_insert(now);
                conn.input.extend_from_slice(data);
                loop {
                    match parse_request(&conn.input) {
                        Ok(Some(request)) => {
                            conn.input.drain(..request.len);
                            if request.close {
                                conn.out.extend_from_slice(&response_head(
                                    self.config.response_size,
                                    true,
                                ));
                                conn.out
                                    .resize(conn.out.len() + self.config.response_size, b'h');
                                conn.close_after_flush = true;
                            } else {
                                conn.out.extend_from_slice(&self.response);
                            }
                            if let Some(start) = conn.request_start.take() {
                                self.answered.push(start);
                            }
                            bump(&self.stats.requests, 1);
                            if request.close {
                                conn.input.clear();
                                break;
                            }
                            if !conn.input.is_empty() {
                                conn.request_start = Some(now);
                            }
                        }
                        Ok(None) => break,
                        Err(_) => {
                            bump(&self.stats.errors_malformed, 1);
                            conn.input.clear();
                            conn.out.extend_from_slice(BAD_REQUEST);
                            conn.close_after_flush = true;
                            break;
                        }
                    }
                }
            }
            ServeMode::Sockperf => {
                conn.request_start.get_or_insert(now);
                conn.input.extend_from_slice(data);
                match super::sockperf::answer(&mut conn.input, &mut conn.out) {
                    Ok(0) => {}
                    Ok(answered) => {
                        if let Some(start) = conn.request_start.take() {
                            self.answered.push(start);
                        }
                        bump(&self.stats.requests, answered);
                    }
                    Err(_) => {
                        bump(&self.stats.errors_malformed, 1);
                        self.close(id);
                        return false;
                    }
                }
            }
            ServeMode::Stream => {
                if let Some(check) = conn.check.as_mut() {
                    check.feed(data);
                } else if conn.role == StreamRole::Unknown {
                    let marker = conn.input.first().or(data.first()).copied();
                    conn.role = match marker {
                        Some(b'U') => StreamRole::Sink,
                        Some(b'D') => StreamRole::Source,
                        Some(MARKER_UP | MARKER_DOWN) => {
                            conn.input.extend_from_slice(data);
                            let Some((seed, len)) = conn.input.get(1..).and_then(parse_header)
                            else {
                                return true;
                            };
                            let rest = conn.input.get(1 + HEADER_LEN..).unwrap_or_default();
                            if marker == Some(MARKER_UP) {
                                let mut check = StreamCheck::new(seed, len);
                                check.feed(rest);
                                conn.check = Some(check);
                                conn.input.clear();
                                StreamRole::Sink
                            } else {
                                conn.seeded = Some(SeededStream::new(seed, len));
                                conn.input.clear();
                                StreamRole::Source
                            }
                        }
                        _ => {
                            bump(&self.stats.errors_malformed, 1);
                            self.close(id);
                            return false;
                        }
                    };
                    if conn.role == StreamRole::Source && !conn.again {
                        conn.again = true;
                        self.again.push(id);
                    }
                }
            }
        }
        self.flush(id);
        let flushed = Instant::now();
        for start in &self.answered {
            record(&mut self.service, nanos(flushed.duration_since(*start)));
        }
        self.conns.get(id).is_some_and(Option::is_some)
    }

    /// Writes pending output (and stream data) of connection `id`.
    fn on_writable(&mut self, id: SocketId) {
        let had_backlog = self.pending_out(id) > MAX_PENDING_OUT;
        self.flush(id);
        if had_backlog && self.pending_out(id) <= MAX_PENDING_OUT {
            self.on_readable(id);
        }
        let is_source = self
            .conns
            .get(id)
            .and_then(Option::as_ref)
            .is_some_and(|c| c.role == StreamRole::Source);
        if is_source {
            self.source(id);
        }
    }

    /// Stream source: writes a burst of data (of the seeded stream, then FIN, when asked
    /// for one).
    fn source(&mut self, id: SocketId) {
        let mut chunk = [b'd'; 16 * 1024];
        for _ in 0..BURST {
            let Some(conn) = self.conns.get_mut(id).and_then(Option::as_mut) else {
                return;
            };
            let len = match &conn.seeded {
                Some(s) if s.remaining() == 0 => {
                    // All sent: our FIN; the client's FIN then closes the connection.
                    conn.seeded = None;
                    conn.role = StreamRole::Sink;
                    if self.worker.shutdown_write(id).is_err() {
                        bump(&self.stats.errors_io, 1);
                        self.close(id);
                    }
                    return;
                }
                Some(s) => s.fill(&mut chunk),
                None => chunk.len(),
            };
            match self.worker.send(id, &chunk[..len]) {
                Ok(n) => {
                    bump(&self.stats.bytes_sent, n as u64);
                    if let Some(s) = self
                        .conns
                        .get_mut(id)
                        .and_then(Option::as_mut)
                        .and_then(|c| c.seeded.as_mut())
                    {
                        s.advance(n);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    bump(&self.stats.errors_io, 1);
                    self.close(id);
                    return;
                }
            }
        }
        self.mark_again(id);
    }

    /// Writes queued output until the socket would block; closes when asked and done.
    fn flush(&mut self, id: SocketId) {
        loop {
            let Some(conn) = self.conns.get_mut(id).and_then(Option::as_mut) else {
                return;
            };
            if conn.out_pos >= conn.out.len() {
                conn.out.clear();
                conn.out_pos = 0;
                if conn.close_after_flush {
                    self.close(id);
                }
                return;
            }
            let pending = conn.out.get(conn.out_pos..).unwrap_or_default();
            match self.worker.send(id, pending) {
                Ok(n) => {
                    bump(&self.stats.bytes_sent, n as u64);
                    conn.out_pos += n;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    bump(&self.stats.errors_io, 1);
                    self.close(id);
                    return;
                }
            }
        }
    }
}

/// A duration in whole nanoseconds (saturating).
fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

//! Cross-thread socket handles: each call is a command on the owning core's
//! queue (see [`super::command`]); blocking calls wait on the readiness the
//! engines publish ([`super::watch`]) and retry.
//!
//! The call chains mirror the BSD/Linux ones (DESIGN.md): `TcpSocket::bind`
//! reserves the address on every core (so a second bind of the port fails with
//! EADDRINUSE whichever core serves it), `listen` makes every core a listener
//! (SO_REUSEPORT style: a SYN is accepted by the core whose queue received it),
//! and `connect` runs on the socket's home core, with an ephemeral port from that
//! core's slice.

use core::net::{Ipv4Addr, SocketAddrV4};
use std::io;
use std::sync::atomic::{Ordering, fence};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant as StdInstant};

use super::command::{Op, Outcome};
use super::shared::Shared;
use super::stream::{AppRings, stream_rings};
use super::watch::{ERROR, HANGUP, READABLE, WRITABLE, Wake};
use crate::errno::Errno;
use crate::socket::{SharedAcceptQueue, SocketHandle, TcpSocketOptions};
use crate::tcp::{CongestionAlgorithm, State, TcpInfo, TcpStats};

/// How long a blocked call sleeps between looks at the readiness board when
/// no change is announced (bounds the cost of a wake-up lost to a spurious
/// unpark consumed elsewhere).
const RECHECK: Duration = Duration::from_millis(10);

fn unexpected() -> Errno {
    Errno::EINVAL
}

/// Blocking behaviour shared by every handle.
#[derive(Debug, Clone, Copy, Default)]
struct Mode {
    nonblocking: bool,
    read_timeout: Option<Duration>,
    write_timeout: Option<Duration>,
}

/// Runs `attempt` until it does not say EAGAIN: in non-blocking mode once;
/// otherwise waiting for any of `interest` on the `handles` between attempts,
/// up to `timeout` (then EAGAIN, as a socket with SO_RCVTIMEO says).
fn blocking<T>(
    shared: &Shared,
    handles: &[SocketHandle],
    interest: u8,
    nonblocking: bool,
    timeout: Option<Duration>,
    mut attempt: impl FnMut() -> Result<T, Errno>,
) -> Result<T, Errno> {
    let deadline = timeout.map(|t| StdInstant::now() + t);
    let mut registered: Vec<u64> = Vec::new();
    loop {
        match attempt() {
            Err(Errno::EAGAIN) => {}
            other => return other,
        }
        if nonblocking {
            return Err(Errno::EAGAIN);
        }
        let mut wait = RECHECK;
        if let Some(d) = deadline {
            let left = d.saturating_duration_since(StdInstant::now());
            if left.is_zero() {
                return Err(Errno::EAGAIN);
            }
            wait = wait.min(left);
        }
        if !shared.alive() {
            return Err(Errno::ESHUTDOWN);
        }
        // Register, then look, then park: a change published after the look
        // unparks this thread (see `Waiters`), and only a change of these sockets.
        let me = std::thread::current();
        registered.extend(
            handles
                .iter()
                .map(|h| shared.waiters.add(*h, Wake::Thread(me.clone()))),
        );
        let ready = handles
            .iter()
            .any(|h| shared.board.get(*h) & (interest | ERROR | HANGUP) != 0);
        if !ready {
            std::thread::park_timeout(wait);
        }
        for (h, id) in handles.iter().zip(registered.drain(..)) {
            shared.waiters.remove(*h, id);
        }
    }
}

/// A TCP socket not yet listening or connected (`socket(2)` + options + `bind`).
#[derive(Debug)]
pub struct TcpSocket {
    shared: Arc<Shared>,
    home: usize,
    options: TcpSocketOptions,
    /// One socket per core once bound (index = core), empty before.
    bound: Vec<SocketHandle>,
    local: Option<SocketAddrV4>,
    /// The home core's socket once `connect_nonblocking` was called.
    connection: Option<SocketHandle>,
}

impl TcpSocket {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        let home = shared.pick_core();
        TcpSocket {
            shared,
            home,
            options: TcpSocketOptions::default(),
            bound: Vec::new(),
            local: None,
            connection: None,
        }
    }

    /// Options applied to the socket (before `bind`/`connect`): SO_REUSEADDR,
    /// SO_REUSEPORT, TCP_NODELAY, SO_LINGER, SO_KEEPALIVE, buffer sizes.
    pub fn set_options(&mut self, options: TcpSocketOptions) -> Result<(), Errno> {
        for (core, h) in self.bound.iter().enumerate() {
            expect_done(self.shared.call(core, Some(*h), Op::SetOptions(options))?)?;
        }
        if let Some(h) = self.connection {
            expect_done(
                self.shared
                    .call(self.home, Some(h), Op::SetOptions(options))?,
            )?;
        }
        self.options = options;
        Ok(())
    }

    /// The options set so far.
    pub fn options(&self) -> &TcpSocketOptions {
        &self.options
    }

    /// `setsockopt(TCP_CONGESTION)` by Linux's name ("cubic", "reno"/"newreno", "bbr");
    /// ENOENT for any other name, as Linux.
    pub fn set_congestion(&mut self, name: &str) -> Result<(), Errno> {
        let algorithm = CongestionAlgorithm::from_name(name).ok_or(Errno::ENOENT)?;
        let options = TcpSocketOptions {
            congestion: Some(algorithm),
            ..self.options
        };
        self.set_options(options)
    }

    /// `getsockopt(TCP_CONGESTION)`: the name set, or the default's.
    pub fn congestion(&self) -> &'static str {
        self.options.congestion.unwrap_or_default().name()
    }

    /// The core that will run this socket's connection (`connect`).
    pub fn home_core(&self) -> usize {
        self.home
    }

    /// `bind(2)`: on the home core first (port 0 picks an ephemeral port there),
    /// then the same address on every other core; any refusal undoes the rest
    /// and returns the errno (EADDRINUSE, EADDRNOTAVAIL, EACCES, EINVAL when
    /// already bound).
    pub fn bind(&mut self, addr: SocketAddrV4) -> Result<SocketAddrV4, Errno> {
        if !self.bound.is_empty() || self.connection.is_some() {
            return Err(Errno::EINVAL);
        }
        let cores = self.shared.cores();
        let mut made: Vec<(usize, SocketHandle)> = Vec::with_capacity(cores);
        let mut want = addr;
        let order = std::iter::once(self.home).chain((0..cores).filter(|c| *c != self.home));
        for core in order {
            let result = self.socket_on(core).and_then(|h| {
                made.push((core, h));
                match self
                    .shared
                    .call(core, Some(h), Op::Bind(want, self.options.bind))?
                {
                    Outcome::Addr(a) => Ok(a),
                    _ => Err(unexpected()),
                }
            });
            match result {
                Ok(a) => want = a,
                Err(e) => {
                    for (core, h) in made {
                        self.shared.post(core, Some(h), Op::Close);
                    }
                    return Err(e);
                }
            }
        }
        made.sort_by_key(|(core, _)| *core);
        self.bound = made.into_iter().map(|(_, h)| h).collect();
        self.local = Some(want);
        Ok(want)
    }

    fn socket_on(&self, core: usize) -> Result<SocketHandle, Errno> {
        let h = match self.shared.call(core, None, Op::TcpSocket)? {
            Outcome::Handle(h) => h,
            _ => return Err(unexpected()),
        };
        if self.options != TcpSocketOptions::default() {
            if let Err(e) = self
                .shared
                .call(core, Some(h), Op::SetOptions(self.options))
                .and_then(expect_done)
            {
                self.shared.post(core, Some(h), Op::Close);
                return Err(e);
            }
        }
        Ok(h)
    }

    /// `getsockname(2)`: the bound address (0.0.0.0:0 before `bind`).
    pub fn local_addr(&self) -> SocketAddrV4 {
        self.local
            .unwrap_or(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0))
    }

    /// `listen(2)` on every core (binding an ephemeral port first if unbound).
    /// The cores share one count of queued connections, so the backlog bounds
    /// them all together as Linux's one accept queue does (`min(backlog,
    /// somaxconn) + 1` connections wait for `accept`, whatever the number of cores).
    pub fn listen(mut self, backlog: i32) -> Result<TcpListener, Errno> {
        // Linux `inet_listen`: EINVAL once `connect` was called.
        if self.connection.is_some() {
            return Err(Errno::EINVAL);
        }
        if self.bound.is_empty() {
            self.bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0))?;
        }
        let queue = SharedAcceptQueue::new();
        for (core, h) in self.bound.iter().enumerate() {
            expect_done(
                self.shared
                    .call(core, Some(*h), Op::Listen(backlog, queue.clone()))?,
            )?;
        }
        let handles = std::mem::take(&mut self.bound);
        Ok(TcpListener {
            shared: Arc::clone(&self.shared),
            handles,
            linger: self.options.linger,
            local: self.local_addr(),
            mode: Mode::default(),
            next: 0,
            queue,
        })
    }

    /// `connect(2)`, blocking: returns the stream once established, or why not
    /// (ECONNREFUSED, ETIMEDOUT, ENETUNREACH, ...).
    pub fn connect(mut self, addr: SocketAddrV4) -> Result<TcpStream, Errno> {
        match self.connect_nonblocking(addr) {
            Ok(()) | Err(Errno::EINPROGRESS) => {}
            Err(e) => return Err(e),
        }
        let stream = self.into_stream()?;
        stream.wait_connected(None)?;
        Ok(stream)
    }

    /// `connect(2)` on a non-blocking socket, as Linux answers it: the first call
    /// starts the handshake and returns `EINPROGRESS`; the socket then turns
    /// writable (see [`Source`](super::Source)) when the handshake ends, and
    /// [`take_error`](Self::take_error) says why it failed. A second call reports
    /// the outcome: `EALREADY` while it runs, `Ok` once established (then
    /// `EISCONN`), or the error that ended it (ECONNREFUSED, ... or ECONNABORTED
    /// when already read), after which the next call starts afresh. A socket
    /// bound on every core keeps its home core's binding only.
    /// [`into_stream`](Self::into_stream) turns it into a [`TcpStream`].
    pub fn connect_nonblocking(&mut self, addr: SocketAddrV4) -> Result<(), Errno> {
        let home = self.home;
        let h = match self.connection {
            Some(h) => h,
            None if self.bound.is_empty() => self.socket_on(home)?,
            None => {
                // Only the home core keeps the reservation; the others let go.
                for (core, h) in self.bound.iter().enumerate() {
                    if core != home {
                        self.shared.post(core, Some(*h), Op::Close);
                    }
                }
                let h = self.bound[home];
                self.bound.clear();
                h
            }
        };
        self.connection = Some(h);
        self.shared
            .call(home, Some(h), Op::Connect(addr))
            .and_then(expect_done)
    }

    /// `getsockopt(SO_ERROR)`: the pending error of the connection `connect`
    /// started, cleared by reading it (`None` before any `connect`).
    pub fn take_error(&self) -> Result<Option<Errno>, Errno> {
        let Some(h) = self.connection else {
            return Ok(None);
        };
        match self.shared.call(self.home, Some(h), Op::TakeError)? {
            Outcome::Error(e) => Ok(e),
            _ => Err(unexpected()),
        }
    }

    /// The stream of the connection `connect_nonblocking` started, whether or not
    /// its handshake is over (ENOTCONN before any `connect`).
    pub fn into_stream(mut self) -> Result<TcpStream, Errno> {
        let handle = self.connection.take().ok_or(Errno::ENOTCONN)?;
        TcpStream::attach(
            Arc::clone(&self.shared),
            self.home,
            handle,
            self.options.linger,
        )
    }

    pub(crate) fn connection(&self) -> Option<SocketHandle> {
        self.connection
    }
}

impl Drop for TcpSocket {
    fn drop(&mut self) {
        for (core, h) in self.bound.iter().enumerate() {
            self.shared.post(core, Some(*h), Op::Close);
        }
        if let Some(h) = self.connection {
            self.shared.post(self.home, Some(h), Op::Close);
        }
    }
}

fn expect_done(outcome: Outcome) -> Result<(), Errno> {
    match outcome {
        Outcome::Done => Ok(()),
        _ => Err(unexpected()),
    }
}

/// A listening TCP socket: one listener per core, accepted from all.
#[derive(Debug)]
pub struct TcpListener {
    shared: Arc<Shared>,
    handles: Vec<SocketHandle>,
    /// SO_LINGER, which accepted connections inherit.
    linger: Option<Duration>,
    local: SocketAddrV4,
    mode: Mode,
    next: usize,
    /// The count of connections waiting for `accept`, shared by every core's listener.
    queue: SharedAcceptQueue,
}

impl TcpListener {
    /// `accept(2)`: the next connection from any core, blocking unless
    /// non-blocking mode is set (then EAGAIN).
    pub fn accept(&self) -> Result<(TcpStream, SocketAddrV4), Errno> {
        let cores = self.handles.len();
        let start = self.next;
        blocking(
            &self.shared,
            &self.handles,
            READABLE,
            self.mode.nonblocking,
            self.mode.read_timeout,
            || {
                for step in 0..cores {
                    let core = (start + step) % cores;
                    let h = self.handles[core];
                    if self.shared.board.get(h) & READABLE == 0 && step > 0 {
                        continue;
                    }
                    match self.shared.call(core, Some(h), Op::Accept) {
                        Ok(Outcome::Accepted(child, peer)) => {
                            let stream = TcpStream::attach(
                                Arc::clone(&self.shared),
                                core,
                                child,
                                self.linger,
                            )?;
                            return Ok((stream, peer));
                        }
                        Ok(_) => return Err(unexpected()),
                        Err(Errno::EAGAIN) => {}
                        Err(e) => return Err(e),
                    }
                }
                Err(Errno::EAGAIN)
            },
        )
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddrV4 {
        self.local
    }

    /// Connections whose handshake is done, waiting for `accept` in every core
    /// together (a Linux listener's Recv-Q in `ss -lt`): at most the backlog + 1.
    pub fn queued(&self) -> usize {
        self.queue.len() as usize
    }

    /// Non-blocking `accept` (EAGAIN when nothing is queued).
    pub fn set_nonblocking(&mut self, nonblocking: bool) {
        self.mode.nonblocking = nonblocking;
    }

    /// Start `accept`'s search at `core` (spreads accepts when several threads
    /// share the listener).
    pub fn set_next_core(&mut self, core: usize) {
        self.next = core % self.handles.len().max(1);
    }

    pub(crate) fn handles(&self) -> &[SocketHandle] {
        &self.handles
    }
}

impl Drop for TcpListener {
    fn drop(&mut self) {
        for (core, h) in self.handles.iter().enumerate() {
            self.shared.post(core, Some(*h), Op::Close);
        }
    }
}

/// A connected TCP stream.
#[derive(Debug)]
pub struct TcpStream {
    shared: Arc<Shared>,
    core: usize,
    handle: SocketHandle,
    mode: Mode,
    /// SO_LINGER as last set (a non-zero one makes `close` and drop wait).
    linger: Mutex<Option<Duration>>,
    /// `close` ran: dropping does nothing more.
    closed: bool,
    /// The byte rings shared with the loop (see [`super::stream`]).
    rings: AppRings,
}

impl TcpStream {
    /// A stream for connection `handle` on `core`, its rings handed to the loop.
    fn attach(
        shared: Arc<Shared>,
        core: usize,
        handle: SocketHandle,
        linger: Option<Duration>,
    ) -> Result<TcpStream, Errno> {
        let (rings, engine_rings) = stream_rings(handle, shared.stream_park);
        let stream = TcpStream {
            shared,
            core,
            handle,
            mode: Mode::default(),
            linger: Mutex::new(linger),
            closed: false,
            rings,
        };
        // On failure, dropping the stream closes the connection.
        expect_done(stream.call(Op::Attach(engine_rings))?)?;
        Ok(stream)
    }

    fn call(&self, op: Op) -> Result<Outcome, Errno> {
        self.shared.call(self.core, Some(self.handle), op)
    }

    fn deadline(timeout: Option<Duration>) -> Option<StdInstant> {
        timeout.map(|t| StdInstant::now() + t)
    }

    /// Why a wait that gave up gave up: the stack stopped, or the timeout.
    fn gave_up(&self) -> Errno {
        if self.shared.alive() {
            Errno::EAGAIN
        } else {
            Errno::ESHUTDOWN
        }
    }

    /// Waits until a non-blocking connect finishes: Ok when established, the
    /// connection's error otherwise; EAGAIN after `timeout`.
    pub fn wait_connected(&self, timeout: Option<Duration>) -> Result<(), Errno> {
        blocking(
            &self.shared,
            &[self.handle],
            WRITABLE,
            false,
            timeout,
            || {
                if let Some(e) = self.take_error()? {
                    return Err(e);
                }
                match self.tcp_info()?.state {
                    State::Established | State::CloseWait => Ok(()),
                    State::SynSent | State::SynReceived => Err(Errno::EAGAIN),
                    // It failed between the two calls: its error says why.
                    _ => Err(self.take_error()?.unwrap_or(Errno::ECONNABORTED)),
                }
            },
        )
    }

    /// `recv(2)` into `buf`: bytes read, 0 at end of stream.
    ///
    /// Reads the stream's RX ring, which the loop fills: no command, no
    /// allocation. End of stream and errors come from the engine, as a command,
    /// once the ring is empty.
    pub fn recv(&self, buf: &mut [u8]) -> Result<usize, Errno> {
        if buf.is_empty() {
            return Ok(0);
        }
        if !self.shared.alive() {
            return Err(Errno::ESHUTDOWN);
        }
        let s = &self.rings.shared;
        let mut rx = self.rings.rx.lock().map_err(|_| Errno::EBADF)?;
        let deadline = Self::deadline(self.mode.read_timeout);
        loop {
            let n = rx.read(buf);
            if n > 0 {
                // Pairs with the loop's fence after it set `rx_stalled`.
                fence(Ordering::SeqCst);
                if s.rx_stalled.load(Ordering::Relaxed) {
                    self.shared.ring(self.core, s);
                }
                if rx.is_empty() && !s.rx_attention.load(Ordering::Acquire) {
                    // Level-triggered readiness for pollers: what we emptied is
                    // not readable any more, unless the loop refilled it meanwhile.
                    self.shared.board.clear(self.handle, READABLE);
                    if !rx.is_empty() || s.rx_attention.load(Ordering::Acquire) {
                        self.shared.board.raise(self.handle, READABLE);
                    }
                }
                return Ok(n);
            }
            if let Some(e) = s.take_error() {
                return Err(e);
            }
            if s.rx_attention.load(Ordering::Acquire) {
                // The loop may have filled the ring just before it stopped.
                if !rx.is_empty() {
                    continue;
                }
                drop(rx);
                return self.recv_from_engine(buf);
            }
            if self.mode.nonblocking {
                return Err(Errno::EAGAIN);
            }
            let ready = s.rx_wait.wait(
                || {
                    !rx.is_empty()
                        || s.rx_attention.load(Ordering::Acquire)
                        || s.error.load(Ordering::Acquire) != 0
                },
                deadline,
                s.park,
                || self.shared.alive(),
            );
            if !ready {
                return Err(self.gave_up());
            }
        }
    }

    /// `recv` as a command: the engine's own answer (end of stream, errors).
    fn recv_from_engine(&self, buf: &mut [u8]) -> Result<usize, Errno> {
        blocking(
            &self.shared,
            &[self.handle],
            READABLE,
            self.mode.nonblocking,
            self.mode.read_timeout,
            || match self.call(Op::Recv(buf.len()))? {
                Outcome::Data(data) => {
                    let n = data.len().min(buf.len());
                    buf[..n].copy_from_slice(&data[..n]);
                    Ok(n)
                }
                _ => Err(unexpected()),
            },
        )
    }

    /// `send(2)` from `buf`: bytes taken (at least one unless non-blocking,
    /// which gives EAGAIN when there is no room).
    ///
    /// Copies into the stream's TX ring and rings the loop if the stream is
    /// not already scheduled: no command, no allocation. The ring is part of
    /// the socket's send buffer, so an error the connection meets later comes
    /// out of a later call, as with a kernel socket.
    pub fn send(&self, buf: &[u8]) -> Result<usize, Errno> {
        if buf.is_empty() {
            return Ok(0);
        }
        if !self.shared.alive() {
            return Err(Errno::ESHUTDOWN);
        }
        if self.rings.tx_shut.load(Ordering::Acquire) {
            // Linux: send after shutdown(SHUT_WR) is EPIPE.
            return Err(Errno::EPIPE);
        }
        let s = &self.rings.shared;
        let mut tx = self.rings.tx.lock().map_err(|_| Errno::EBADF)?;
        let deadline = Self::deadline(self.mode.write_timeout);
        loop {
            if let Some(e) = s.take_error() {
                return Err(e);
            }
            if s.tx_attention.load(Ordering::Acquire) {
                drop(tx);
                return self.send_to_engine(buf);
            }
            let n = tx.write(buf);
            if n > 0 {
                self.shared.ring(self.core, s);
                if tx.free() == 0 {
                    self.shared.board.clear(self.handle, WRITABLE);
                    if tx.free() > 0 {
                        self.shared.board.raise(self.handle, WRITABLE);
                    }
                }
                return Ok(n);
            }
            if self.mode.nonblocking {
                return Err(Errno::EAGAIN);
            }
            let ready = s.tx_wait.wait(
                || {
                    tx.free() > 0
                        || s.tx_attention.load(Ordering::Acquire)
                        || s.error.load(Ordering::Acquire) != 0
                },
                deadline,
                s.park,
                || self.shared.alive(),
            );
            if !ready {
                return Err(self.gave_up());
            }
        }
    }

    /// `send` as a command: the engine's own answer (errors).
    fn send_to_engine(&self, buf: &[u8]) -> Result<usize, Errno> {
        blocking(
            &self.shared,
            &[self.handle],
            WRITABLE,
            self.mode.nonblocking,
            self.mode.write_timeout,
            || match self.call(Op::Send(buf.to_vec()))? {
                Outcome::Sent(n) => Ok(n),
                _ => Err(unexpected()),
            },
        )
    }

    /// Waits until the loop took every byte of the TX ring into the
    /// connection (or the connection failed), up to `deadline`.
    fn flush(&self, deadline: Option<StdInstant>) {
        let s = &self.rings.shared;
        let Ok(mut tx) = self.rings.tx.lock() else {
            return;
        };
        let _ = s.tx_wait.wait(
            || tx.is_empty() || s.tx_attention.load(Ordering::Acquire),
            deadline,
            s.park,
            || self.shared.alive(),
        );
    }

    /// `shutdown(SHUT_WR)`: FIN after what is queued (the TX ring too).
    pub fn shutdown_write(&self) -> Result<(), Errno> {
        expect_done(self.call(Op::ShutdownWrite)?)?;
        self.rings.tx_shut.store(true, Ordering::Release);
        Ok(())
    }

    /// `getsockopt(SO_ERROR)`: the pending error, cleared.
    pub fn take_error(&self) -> Result<Option<Errno>, Errno> {
        if let Some(e) = self.rings.shared.take_error() {
            return Ok(Some(e));
        }
        match self.call(Op::TakeError)? {
            Outcome::Error(e) => Ok(e),
            _ => Err(unexpected()),
        }
    }

    /// `getpeername(2)`.
    pub fn peer_addr(&self) -> Result<SocketAddrV4, Errno> {
        match self.call(Op::PeerAddr)? {
            Outcome::Addr(a) => Ok(a),
            _ => Err(unexpected()),
        }
    }

    /// `getsockname(2)`.
    pub fn local_addr(&self) -> Result<SocketAddrV4, Errno> {
        match self.call(Op::LocalAddr)? {
            Outcome::Addr(a) => Ok(a),
            _ => Err(unexpected()),
        }
    }

    /// `setsockopt`: TCP_NODELAY, SO_LINGER, SO_KEEPALIVE, buffers, ...
    pub fn set_options(&self, options: TcpSocketOptions) -> Result<(), Errno> {
        expect_done(self.call(Op::SetOptions(options))?)?;
        if let Ok(mut linger) = self.linger.lock() {
            *linger = options.linger;
        }
        Ok(())
    }

    /// `getsockopt`.
    pub fn options(&self) -> Result<TcpSocketOptions, Errno> {
        match self.call(Op::Options)? {
            Outcome::Options(o) => Ok(o),
            _ => Err(unexpected()),
        }
    }

    /// `setsockopt(TCP_NODELAY)`.
    pub fn set_nodelay(&self, nodelay: bool) -> Result<(), Errno> {
        let mut o = self.options()?;
        o.nodelay = nodelay;
        self.set_options(o)
    }

    /// `setsockopt(TCP_CONGESTION)` by Linux's name ("cubic", "reno"/"newreno", "bbr");
    /// ENOENT for any other name, as Linux.
    pub fn set_congestion(&self, name: &str) -> Result<(), Errno> {
        let algorithm = CongestionAlgorithm::from_name(name).ok_or(Errno::ENOENT)?;
        let mut o = self.options()?;
        o.congestion = Some(algorithm);
        self.set_options(o)
    }

    /// `getsockopt(TCP_CONGESTION)`: the name of the algorithm the connection uses (or
    /// will use, before it is connected).
    pub fn congestion(&self) -> Result<&'static str, Errno> {
        if let Ok(info) = self.tcp_info() {
            return Ok(info.congestion.name());
        }
        let o = self.options()?;
        Ok(o.congestion.unwrap_or_default().name())
    }

    /// `getsockopt(TCP_INFO)`: state and estimates under Linux's names.
    pub fn tcp_info(&self) -> Result<TcpInfo, Errno> {
        match self.call(Op::Info)? {
            Outcome::Info(i) => Ok(*i),
            _ => Err(unexpected()),
        }
    }

    /// The connection's own counters (more than `TCP_INFO` carries).
    pub fn tcp_socket_stats(&self) -> Result<TcpStats, Errno> {
        match self.call(Op::TcpSocketStats)? {
            Outcome::TcpSocketStats(t) => Ok(*t),
            _ => Err(unexpected()),
        }
    }

    /// Non-blocking mode (EAGAIN instead of waiting).
    pub fn set_nonblocking(&mut self, nonblocking: bool) {
        self.mode.nonblocking = nonblocking;
    }

    /// SO_RCVTIMEO: a blocked read gives up (EAGAIN) after `timeout`.
    pub fn set_read_timeout(&mut self, timeout: Option<Duration>) {
        self.mode.read_timeout = timeout;
    }

    /// SO_SNDTIMEO: a blocked write gives up (EAGAIN) after `timeout`.
    pub fn set_write_timeout(&mut self, timeout: Option<Duration>) {
        self.mode.write_timeout = timeout;
    }

    /// The core whose engine runs this connection.
    pub fn core(&self) -> usize {
        self.core
    }

    pub(crate) fn handle(&self) -> SocketHandle {
        self.handle
    }

    /// `close(2)` now, reporting the engine's answer (dropping closes too). With
    /// SO_LINGER > 0 it blocks, as Linux `close` does (whatever the non-blocking
    /// mode), until the peer acknowledged the data and the FIN or the linger time
    /// passed; then the connection goes on alone. With SO_LINGER = 0 the peer gets
    /// a RST and queued data is dropped.
    pub fn close(self) -> Result<(), Errno> {
        let mut this = self;
        let result = this.close_now();
        this.closed = true;
        result
    }

    fn close_now(&self) -> Result<(), Errno> {
        let linger = self.linger.lock().map_or(None, |l| *l);
        let Some(linger) = linger.filter(|d| !d.is_zero()) else {
            return expect_done(self.call(Op::Close)?);
        };
        // Linux `tcp_close` then `sk_stream_wait_close`; the TX ring is part of
        // the send buffer, so it reaches the connection first.
        let deadline = StdInstant::now() + linger;
        self.flush(Some(deadline));
        match self.call(Op::CloseLingering)? {
            Outcome::Lingering(true) => {}
            Outcome::Lingering(false) => return Ok(()),
            _ => return Err(unexpected()),
        }
        while StdInstant::now() < deadline {
            match self.tcp_info().map(|i| i.state) {
                Ok(State::FinWait1 | State::Closing | State::LastAck) => {}
                _ => break,
            }
            std::thread::sleep(
                LINGER_CHECK.min(deadline.saturating_duration_since(StdInstant::now())),
            );
        }
        expect_done(self.call(Op::Close)?)
    }
}

/// How often a lingering close looks whether its FIN was acknowledged.
const LINGER_CHECK: Duration = Duration::from_millis(2);

impl Drop for TcpStream {
    fn drop(&mut self) {
        if self.closed {
            return;
        }
        let lingers = self
            .linger
            .lock()
            .is_ok_and(|l| l.is_some_and(|d| !d.is_zero()));
        if lingers {
            let _ = self.close_now();
        } else {
            self.shared.post(self.core, Some(self.handle), Op::Close);
        }
    }
}

impl io::Read for TcpStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        TcpStream::recv(self, buf).map_err(io::Error::from)
    }
}

impl io::Write for TcpStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        TcpStream::send(self, buf).map_err(io::Error::from)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl io::Read for &TcpStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        TcpStream::recv(self, buf).map_err(io::Error::from)
    }
}

impl io::Write for &TcpStream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        TcpStream::send(self, buf).map_err(io::Error::from)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A UDP socket on one core (datagrams that land on another core's queue are
/// handed over by the engines).
#[derive(Debug)]
pub struct UdpSocket {
    shared: Arc<Shared>,
    core: usize,
    handle: SocketHandle,
    local: SocketAddrV4,
    mode: Mode,
}

impl UdpSocket {
    pub(crate) fn bind(shared: Arc<Shared>, addr: SocketAddrV4) -> Result<Self, Errno> {
        let core = shared.pick_core();
        let handle = match shared.call(core, None, Op::UdpSocket)? {
            Outcome::Handle(h) => h,
            _ => return Err(unexpected()),
        };
        let local = match shared.call(
            core,
            Some(handle),
            Op::Bind(addr, crate::table::BindOptions::default()),
        ) {
            Ok(Outcome::Addr(a)) => a,
            Ok(_) => {
                shared.post(core, Some(handle), Op::Close);
                return Err(unexpected());
            }
            Err(e) => {
                shared.post(core, Some(handle), Op::Close);
                return Err(e);
            }
        };
        Ok(UdpSocket {
            shared,
            core,
            handle,
            local,
            mode: Mode::default(),
        })
    }

    fn call(&self, op: Op) -> Result<Outcome, Errno> {
        self.shared.call(self.core, Some(self.handle), op)
    }

    /// `sendto(2)`: the datagram is on its way (or waits for ARP) when this returns.
    pub fn send_to(&self, payload: &[u8], dst: SocketAddrV4) -> Result<usize, Errno> {
        match self.call(Op::SendTo(payload.to_vec(), Some(dst)))? {
            Outcome::Sent(n) => Ok(n),
            _ => Err(unexpected()),
        }
    }

    /// `send(2)` to the connected peer.
    pub fn send(&self, payload: &[u8]) -> Result<usize, Errno> {
        match self.call(Op::SendTo(payload.to_vec(), None))? {
            Outcome::Sent(n) => Ok(n),
            _ => Err(unexpected()),
        }
    }

    /// `recvfrom(2)`: bytes copied into `buf` (a longer datagram is truncated, as
    /// Linux does without MSG_TRUNC) and the source; blocking unless non-blocking.
    pub fn recv_from(&self, buf: &mut [u8]) -> Result<(usize, SocketAddrV4), Errno> {
        blocking(
            &self.shared,
            &[self.handle],
            READABLE,
            self.mode.nonblocking,
            self.mode.read_timeout,
            || match self.call(Op::RecvFrom(buf.len()))? {
                Outcome::Datagram(data, _full, src) => {
                    let n = data.len().min(buf.len());
                    buf[..n].copy_from_slice(&data[..n]);
                    Ok((n, src))
                }
                _ => Err(unexpected()),
            },
        )
    }

    /// `connect(2)`: the default destination, and only its datagrams are received.
    pub fn connect(&self, remote: SocketAddrV4) -> Result<(), Errno> {
        expect_done(self.call(Op::Connect(remote))?)
    }

    /// `getsockname(2)`.
    pub fn local_addr(&self) -> SocketAddrV4 {
        self.local
    }

    /// Non-blocking mode (EAGAIN instead of waiting).
    pub fn set_nonblocking(&mut self, nonblocking: bool) {
        self.mode.nonblocking = nonblocking;
    }

    /// SO_RCVTIMEO.
    pub fn set_read_timeout(&mut self, timeout: Option<Duration>) {
        self.mode.read_timeout = timeout;
    }

    pub(crate) fn handle(&self) -> SocketHandle {
        self.handle
    }
}

impl Drop for UdpSocket {
    fn drop(&mut self) {
        self.shared.post(self.core, Some(self.handle), Op::Close);
    }
}

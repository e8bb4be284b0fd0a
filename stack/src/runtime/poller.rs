//! Waiting on many cross-thread sockets at once (epoll-like, level-triggered).
//!
//! A [`Poller`] reads the readiness the engines publish for the registered
//! sockets that changed (the engines tell it which) and for those it found
//! ready last time; when none is ready it sleeps until an engine announces a
//! change of one of its sockets (or the timeout). Readiness may be one loop iteration old, so after an event the
//! caller makes the call and treats EAGAIN as "not yet", as with epoll.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant as StdInstant};

use super::net::{TcpListener, TcpSocket, TcpStream, UdpSocket};
use super::shared::Shared;
use super::watch::{ERROR, HANGUP, Inbox, READABLE, WRITABLE, Wake};
use crate::errno::Errno;
use crate::socket::SocketHandle;

/// What a registration waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Interest {
    /// Wake when readable (data, end of stream, or a connection to accept).
    pub readable: bool,
    /// Wake when writable (send space, or a connect finished).
    pub writable: bool,
}

impl Interest {
    /// Readable only.
    pub const READABLE: Interest = Interest {
        readable: true,
        writable: false,
    };
    /// Writable only.
    pub const WRITABLE: Interest = Interest {
        readable: false,
        writable: true,
    };
    /// Both.
    pub const BOTH: Interest = Interest {
        readable: true,
        writable: true,
    };

    fn bits(self) -> u8 {
        (u8::from(self.readable) * READABLE) | (u8::from(self.writable) * WRITABLE)
    }
}

/// One ready socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Event {
    /// The token given at registration.
    pub token: usize,
    /// Readable (or acceptable).
    pub readable: bool,
    /// Writable.
    pub writable: bool,
    /// An error is pending.
    pub error: bool,
    /// Closed both ways.
    pub hangup: bool,
}

/// Something a poller can watch.
pub trait Source {
    /// The engine sockets behind it (a listener has one per core).
    fn handles(&self) -> Vec<SocketHandle>;
}

impl Source for TcpStream {
    fn handles(&self) -> Vec<SocketHandle> {
        vec![self.handle()]
    }
}

/// A socket after `connect_nonblocking`: writable when the handshake ends (nothing
/// to watch before `connect`).
impl Source for TcpSocket {
    fn handles(&self) -> Vec<SocketHandle> {
        self.connection().into_iter().collect()
    }
}

impl Source for TcpListener {
    fn handles(&self) -> Vec<SocketHandle> {
        TcpListener::handles(self).to_vec()
    }
}

impl Source for UdpSocket {
    fn handles(&self) -> Vec<SocketHandle> {
        vec![self.handle()]
    }
}

#[derive(Debug)]
struct Registration {
    handles: Vec<SocketHandle>,
    interest: Interest,
    /// The waiter registration of each handle (same order).
    waiters: Vec<u64>,
}

/// A set of sockets to wait on.
///
/// Each registered socket has the poller's inbox as a waiter: the engines
/// tell it which sockets changed, and [`wait`](Self::wait) looks only at those
/// and at the ones it reported last time (level-triggered, as epoll re-checks
/// its ready list), never at every registration.
#[derive(Debug)]
pub struct Poller {
    shared: Arc<Shared>,
    registrations: HashMap<usize, Registration>,
    /// Tokens of each registered socket.
    tokens: HashMap<SocketHandle, Vec<usize>>,
    inbox: Arc<Inbox>,
    /// Tokens to look at in the next `wait`: just registered, or reported
    /// ready last time.
    pending: Mutex<Vec<usize>>,
}

impl Poller {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        Poller {
            shared,
            registrations: HashMap::new(),
            tokens: HashMap::new(),
            inbox: Arc::new(Inbox::default()),
            pending: Mutex::new(Vec::new()),
        }
    }

    fn look_at(&self, token: usize) {
        if let Ok(mut p) = self.pending.lock() {
            p.push(token);
        }
    }

    /// Watches `source` for `interest`, reporting it as `token`. EEXIST-like
    /// misuse (a token registered twice) is EINVAL.
    pub fn register(
        &mut self,
        source: &impl Source,
        token: usize,
        interest: Interest,
    ) -> Result<(), Errno> {
        if self.registrations.contains_key(&token) {
            return Err(Errno::EINVAL);
        }
        let handles = source.handles();
        let waiters = handles
            .iter()
            .map(|h| {
                self.tokens.entry(*h).or_default().push(token);
                self.shared
                    .waiters
                    .add(*h, Wake::Poller(Arc::clone(&self.inbox)))
            })
            .collect();
        self.registrations.insert(
            token,
            Registration {
                handles,
                interest,
                waiters,
            },
        );
        self.look_at(token);
        Ok(())
    }

    /// Changes the interest of `token` (ENOENT-like misuse: EINVAL).
    pub fn reregister(&mut self, token: usize, interest: Interest) -> Result<(), Errno> {
        let r = self.registrations.get_mut(&token).ok_or(Errno::EINVAL)?;
        r.interest = interest;
        self.look_at(token);
        Ok(())
    }

    /// Stops watching `token`.
    pub fn deregister(&mut self, token: usize) {
        let Some(r) = self.registrations.remove(&token) else {
            return;
        };
        for (h, id) in r.handles.iter().zip(r.waiters) {
            self.shared.waiters.remove(*h, id);
            if let Some(tokens) = self.tokens.get_mut(h) {
                tokens.retain(|t| *t != token);
                if tokens.is_empty() {
                    self.tokens.remove(h);
                }
            }
        }
    }

    /// Appends the ready registrations to `events` and returns how many; waits up
    /// to `timeout` (`None`: until one is ready or the stack stops) when none is.
    pub fn wait(&self, events: &mut Vec<Event>, timeout: Option<Duration>) -> Result<usize, Errno> {
        let deadline = timeout.map(|t| StdInstant::now() + t);
        self.inbox.set_thread(std::thread::current());
        let mut changed = Vec::new();
        loop {
            // The candidates: what changed since the last look, and what was
            // ready then (level-triggered). Sorted, so each is looked at once.
            let mut candidates = self
                .pending
                .lock()
                .map(|mut p| core::mem::take(&mut *p))
                .unwrap_or_default();
            self.inbox.take(&mut changed);
            for h in changed.drain(..) {
                candidates.extend(self.tokens.get(&h).into_iter().flatten());
            }
            candidates.sort_unstable();
            candidates.dedup();
            let before = events.len();
            let mut still_ready = Vec::new();
            for token in candidates {
                let Some(r) = self.registrations.get(&token) else {
                    continue;
                };
                let bits = r
                    .handles
                    .iter()
                    .fold(0u8, |acc, h| acc | self.shared.board.get(*h));
                if bits & (r.interest.bits() | ERROR | HANGUP) != 0 {
                    events.push(Event {
                        token,
                        readable: bits & READABLE != 0 && r.interest.readable,
                        writable: bits & WRITABLE != 0 && r.interest.writable,
                        error: bits & ERROR != 0,
                        hangup: bits & HANGUP != 0,
                    });
                    still_ready.push(token);
                }
            }
            if let Ok(mut p) = self.pending.lock() {
                p.extend(still_ready);
            }
            let found = events.len() - before;
            if found > 0 {
                return Ok(found);
            }
            if !self.shared.alive() {
                return Err(Errno::ESHUTDOWN);
            }
            let mut wait = Duration::from_millis(10);
            if let Some(d) = deadline {
                let left = d.saturating_duration_since(StdInstant::now());
                if left.is_zero() {
                    return Ok(0);
                }
                wait = wait.min(left);
            }
            if self.inbox.is_empty() {
                std::thread::park_timeout(wait);
            }
        }
    }
}

impl Drop for Poller {
    fn drop(&mut self) {
        for (_, r) in self.registrations.drain() {
            for (h, id) in r.handles.iter().zip(r.waiters) {
                self.shared.waiters.remove(*h, id);
            }
        }
    }
}

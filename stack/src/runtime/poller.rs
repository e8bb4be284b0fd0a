//! Waiting on many cross-thread sockets at once (epoll-like, level-triggered).
//!
//! A [`Poller`] reads the readiness the engines publish for every registered
//! socket; when none is ready it sleeps until an engine announces a change (or
//! the timeout). Readiness may be one loop iteration old, so after an event the
//! caller makes the call and treats EAGAIN as "not yet", as with epoll.

use std::sync::Arc;
use std::time::{Duration, Instant as StdInstant};

use super::Shared;
use super::net::{TcpListener, TcpStream, UdpSocket};
use super::watch::{ERROR, HANGUP, READABLE, WRITABLE};
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
    token: usize,
    handles: Vec<SocketHandle>,
    interest: Interest,
}

/// A set of sockets to wait on.
#[derive(Debug)]
pub struct Poller {
    shared: Arc<Shared>,
    registrations: Vec<Registration>,
}

impl Poller {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        Poller {
            shared,
            registrations: Vec::new(),
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
        if self.registrations.iter().any(|r| r.token == token) {
            return Err(Errno::EINVAL);
        }
        self.registrations.push(Registration {
            token,
            handles: source.handles(),
            interest,
        });
        Ok(())
    }

    /// Changes the interest of `token` (ENOENT-like misuse: EINVAL).
    pub fn reregister(&mut self, token: usize, interest: Interest) -> Result<(), Errno> {
        let r = self
            .registrations
            .iter_mut()
            .find(|r| r.token == token)
            .ok_or(Errno::EINVAL)?;
        r.interest = interest;
        Ok(())
    }

    /// Stops watching `token`.
    pub fn deregister(&mut self, token: usize) {
        self.registrations.retain(|r| r.token != token);
    }

    /// Appends the ready registrations to `events` and returns how many; waits up
    /// to `timeout` (`None`: until one is ready or the stack stops) when none is.
    pub fn wait(&self, events: &mut Vec<Event>, timeout: Option<Duration>) -> Result<usize, Errno> {
        let deadline = timeout.map(|t| StdInstant::now() + t);
        loop {
            let seen = self.shared.notify.seq();
            let before = events.len();
            for r in &self.registrations {
                let bits = r
                    .handles
                    .iter()
                    .fold(0u8, |acc, h| acc | self.shared.board.get(*h));
                if bits & (r.interest.bits() | ERROR | HANGUP) != 0 {
                    events.push(Event {
                        token: r.token,
                        readable: bits & READABLE != 0 && r.interest.readable,
                        writable: bits & WRITABLE != 0 && r.interest.writable,
                        error: bits & ERROR != 0,
                        hangup: bits & HANGUP != 0,
                    });
                }
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
            self.shared.notify.wait(seen, wait);
        }
    }
}

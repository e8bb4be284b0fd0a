//! What a socket is ready for (epoll's mask), and the per-socket record the
//! engine keeps to report changes of it as events.

use crate::table::SocketId;

/// Readiness of a socket, epoll-style.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Readiness {
    /// `recv` (or `accept`) would not block.
    pub readable: bool,
    /// `send` would not block (or a connect completed).
    pub writable: bool,
    /// An error is pending (SO_ERROR).
    pub error: bool,
    /// The connection is closed both ways (EPOLLHUP).
    pub hangup: bool,
}

/// A socket's place in its engine's ready list: whether it is queued there, and
/// the readiness its last event reported (what the next event is compared with).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReadyMark {
    /// The socket is in the ready list (once at most).
    pub queued: bool,
    /// The readiness the program was last told about, by an event or by a call
    /// that answered EAGAIN.
    pub reported: Readiness,
}

impl ReadyMark {
    /// Queues the socket `id` in `list` unless it is there already.
    ///
    /// Inlined: called after every segment and socket call, and mostly a test of one
    /// flag; the call cost more than the work.
    #[inline]
    pub fn queue(&mut self, list: &mut Vec<SocketId>, id: SocketId) {
        if !self.queued {
            self.queued = true;
            list.push(id);
        }
    }
}

//! What every handle of a stack shares with the engines' loops: each core's
//! command queue, the readiness board, the waiters, the stop flag.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::Thread;
use std::time::Duration;

use crossbeam_queue::ArrayQueue;

use super::command::{Command, Completion, Op, Outcome, reply_slot};
use super::stream::StreamShared;
use super::watch::{Board, Waiters};
use crate::errno::Errno;
use crate::socket::SocketHandle;

/// A core's command queue, its doorbells, and the thread to wake.
#[derive(Debug)]
pub(crate) struct CoreLink {
    pub(crate) commands: ArrayQueue<Command>,
    /// Streams whose rings have work for the loop (each at most once: see
    /// `StreamShared::scheduled`), so the queue never holds more than the
    /// core's sockets.
    pub(crate) doorbells: ArrayQueue<SocketHandle>,
    pub(crate) thread: OnceLock<Thread>,
}

/// What every handle of a stack shares with the loops.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) cores: Vec<CoreLink>,
    pub(crate) stop: AtomicBool,
    pub(crate) board: Board,
    pub(crate) waiters: Waiters,
    pub(crate) next_core: AtomicUsize,
    /// `RuntimeConfig::stream_park`.
    pub(crate) stream_park: Duration,
}

impl Shared {
    /// Number of engines.
    pub(crate) fn cores(&self) -> usize {
        self.cores.len()
    }

    /// False once the stack is stopping.
    pub(crate) fn alive(&self) -> bool {
        !self.stop.load(Ordering::Acquire)
    }

    /// A core for a new socket: round robin.
    pub(crate) fn pick_core(&self) -> usize {
        self.next_core.fetch_add(1, Ordering::Relaxed) % self.cores.len()
    }

    /// Queues `op` on `core` and wakes the loop; the reply slot and the
    /// call's sequence number to wait for.
    fn submit(
        &self,
        core: usize,
        socket: Option<SocketHandle>,
        op: Op,
    ) -> Result<(Arc<Completion>, u64), Errno> {
        if !self.alive() {
            return Err(Errno::ESHUTDOWN);
        }
        let link = self.cores.get(core).ok_or(Errno::EBADF)?;
        let reply = reply_slot();
        let seq = reply.begin();
        link.commands
            .push(Command {
                socket,
                op,
                reply: Arc::clone(&reply),
                seq,
            })
            .map_err(|_| Errno::ENOBUFS)?;
        if let Some(t) = link.thread.get() {
            t.unpark();
        }
        Ok((reply, seq))
    }

    /// Tells `stream`'s core that its rings have work, unless it is already
    /// scheduled; the unpark is a futex wake only when the loop sleeps.
    pub(crate) fn ring(&self, core: usize, stream: &StreamShared) {
        if stream.scheduled.swap(true, Ordering::AcqRel) {
            return;
        }
        let Some(link) = self.cores.get(core) else {
            return;
        };
        if link.doorbells.push(stream.handle).is_err() {
            // Cannot happen (one entry per socket at most); never leave the
            // stream scheduled with nobody to run it.
            stream.scheduled.store(false, Ordering::Release);
        }
        if let Some(t) = link.thread.get() {
            t.unpark();
        }
    }

    /// Runs `op` on `core` and waits for its answer.
    pub(crate) fn call(
        &self,
        core: usize,
        socket: Option<SocketHandle>,
        op: Op,
    ) -> Result<Outcome, Errno> {
        let (reply, seq) = self.submit(core, socket, op)?;
        reply.wait(seq, || self.alive())
    }

    /// Queues `op` and does not wait (close on drop).
    pub(crate) fn post(&self, core: usize, socket: Option<SocketHandle>, op: Op) {
        let _ = self.submit(core, socket, op);
    }
}

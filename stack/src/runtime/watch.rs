//! Readiness published by the engines for threads outside the loop.
//!
//! Each engine keeps the list of its sockets that cross-thread handles use
//! ([`Watched`]). After an iteration that did work it recomputes their
//! readiness and stores it in a shared [`Board`] (one byte per socket slot,
//! atomics, no lock); when anything changed it bumps the stack's [`Notify`]
//! sequence, which wakes blocked callers and pollers. Readers see level-triggered
//! readiness, possibly one iteration old: a caller always retries the real call,
//! and the call's answer is the truth.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::Duration;

use surge_datapath::Device;

use crate::engine::{Engine, Readiness};
use crate::socket::SocketHandle;

/// `recv`/`accept` would not block.
pub const READABLE: u8 = 1;
/// `send` would not block (or a connect finished).
pub const WRITABLE: u8 = 2;
/// An error is pending.
pub const ERROR: u8 = 4;
/// Closed both ways, or the socket is gone.
pub const HANGUP: u8 = 8;

fn encode(r: Readiness) -> u8 {
    (u8::from(r.readable) * READABLE)
        | (u8::from(r.writable) * WRITABLE)
        | (u8::from(r.error) * ERROR)
        | (u8::from(r.hangup) * HANGUP)
}

/// Readiness bytes of every socket slot of every core.
#[derive(Debug)]
pub(crate) struct Board {
    cores: Vec<Vec<AtomicU8>>,
}

impl Board {
    /// A board for `cores` engines of `slots` sockets each.
    pub(crate) fn new(cores: usize, slots: usize) -> Self {
        Board {
            cores: (0..cores)
                .map(|_| (0..slots).map(|_| AtomicU8::new(0)).collect())
                .collect(),
        }
    }

    fn cell(&self, h: SocketHandle) -> Option<&AtomicU8> {
        self.cores
            .get(usize::from(h.core()))?
            .get(h.id().0 as usize)
    }

    /// The last published readiness of `h` (bits above).
    pub(crate) fn get(&self, h: SocketHandle) -> u8 {
        self.cell(h).map_or(HANGUP, |c| c.load(Ordering::Acquire))
    }

    fn set(&self, h: SocketHandle, bits: u8) -> bool {
        match self.cell(h) {
            Some(c) => c.swap(bits, Ordering::AcqRel) != bits,
            None => false,
        }
    }
}

/// A sequence number bumped whenever readiness changes, with a condition
/// variable to wait for the next bump.
#[derive(Debug, Default)]
pub(crate) struct Notify {
    seq: Mutex<u64>,
    changed: Condvar,
}

impl Notify {
    /// The current sequence number.
    pub(crate) fn seq(&self) -> u64 {
        self.seq.lock().map_or(0, |s| *s)
    }

    /// Announces a change to every waiter.
    pub(crate) fn bump(&self) {
        if let Ok(mut s) = self.seq.lock() {
            *s = s.wrapping_add(1);
        }
        self.changed.notify_all();
    }

    /// Waits until the sequence moves past `seen` or `timeout` passes.
    pub(crate) fn wait(&self, seen: u64, timeout: Duration) {
        let Ok(guard) = self.seq.lock() else { return };
        let _ = self
            .changed
            .wait_timeout_while(guard, timeout, |s| *s == seen);
    }
}

/// The sockets of one engine that cross-thread handles watch.
#[derive(Debug, Default)]
pub(crate) struct Watched {
    sockets: HashSet<SocketHandle>,
}

impl Watched {
    /// Starts publishing `h`'s readiness.
    pub(crate) fn add(&mut self, h: SocketHandle) {
        self.sockets.insert(h);
    }

    /// Stops publishing `h` (it is being closed).
    pub(crate) fn remove(&mut self, h: SocketHandle) {
        self.sockets.remove(&h);
    }

    /// How many sockets are watched.
    pub(crate) fn len(&self) -> usize {
        self.sockets.len()
    }

    /// Recomputes and publishes readiness; true when any socket changed.
    pub(crate) fn publish<D: Device>(&mut self, engine: &mut Engine<D>, board: &Board) -> bool {
        let mut changed = false;
        for h in &self.sockets {
            let bits = engine.readiness(*h).map_or(HANGUP | ERROR, encode);
            changed |= board.set(*h, bits);
        }
        changed
    }

    /// Publishes `h`'s readiness now (after a command changed it, before the
    /// caller hears the answer, so it never sees an older state); true if it changed.
    pub(crate) fn publish_one<D: Device>(
        &self,
        engine: &mut Engine<D>,
        board: &Board,
        h: SocketHandle,
    ) -> bool {
        if !self.sockets.contains(&h) {
            return false;
        }
        let bits = engine.readiness(h).map_or(HANGUP | ERROR, encode);
        board.set(h, bits)
    }

    /// Every watched handle (for the final clean-up).
    pub(crate) fn handles(&self) -> Vec<SocketHandle> {
        self.sockets.iter().copied().collect()
    }
}

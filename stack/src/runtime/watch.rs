//! Readiness published by the engines for threads outside the loop.
//!
//! Each engine keeps the list of its sockets that cross-thread handles use
//! ([`Watched`]). Every iteration it drains the engine's events (the sockets
//! whose readiness changed, see `Engine::poll_events`), stores the readiness of
//! the watched ones in a shared [`Board`] (one byte per socket slot, atomics, no
//! lock) and wakes the [`Waiters`] of those sockets only: a blocked call, or a
//! poller told which socket changed. Readers see level-triggered readiness,
//! possibly one iteration old: a caller always retries the real call, and the
//! call's answer is the truth.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::Thread;

use surge_datapath::Device;

use super::stream::Streams;
use crate::engine::{Engine, Readiness, SocketEvent};
use crate::socket::SocketHandle;

pub use super::bits::{ERROR, HANGUP, READABLE, WRITABLE};

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
        self.cell(h).map_or(HANGUP, |c| c.load(Ordering::SeqCst))
    }

    fn set(&self, h: SocketHandle, bits: u8) -> bool {
        match self.cell(h) {
            Some(c) => c.swap(bits, Ordering::SeqCst) != bits,
            None => false,
        }
    }

    /// Clears `bits` of `h` (an application emptied its ring: readiness it
    /// knows to be gone); the loop sets them again when it refills.
    pub(crate) fn clear(&self, h: SocketHandle, bits: u8) {
        if let Some(c) = self.cell(h) {
            c.fetch_and(!bits, Ordering::SeqCst);
        }
    }

    /// Sets `bits` of `h` (the application found its ring ready after all).
    pub(crate) fn raise(&self, h: SocketHandle, bits: u8) {
        if let Some(c) = self.cell(h) {
            c.fetch_or(bits, Ordering::SeqCst);
        }
    }
}

/// How many stripes the waiter registry has (a change locks one, and only when
/// someone waits on a socket of that stripe).
const STRIPES: usize = 64;

/// Who waits for a socket: a blocked thread, or a poller.
#[derive(Debug, Clone)]
pub(crate) enum Wake {
    /// A thread blocked in a call: unparked.
    Thread(Thread),
    /// A poller: told which socket changed, and its waiting thread unparked.
    Poller(Arc<Inbox>),
}

/// A poller's mailbox: the sockets whose readiness changed since it last looked.
#[derive(Debug, Default)]
pub(crate) struct Inbox {
    changed: Mutex<Vec<SocketHandle>>,
    thread: Mutex<Option<Thread>>,
}

impl Inbox {
    /// The thread to unpark on a change (the one in `Poller::wait`).
    pub(crate) fn set_thread(&self, thread: Thread) {
        if let Ok(mut t) = self.thread.lock() {
            *t = Some(thread);
        }
    }

    /// True when no change waits to be taken.
    pub(crate) fn is_empty(&self) -> bool {
        self.changed.lock().map_or(true, |c| c.is_empty())
    }

    /// Moves the changed sockets into `out`.
    pub(crate) fn take(&self, out: &mut Vec<SocketHandle>) {
        if let Ok(mut changed) = self.changed.lock() {
            out.append(&mut changed);
        }
    }

    fn push(&self, h: SocketHandle) {
        if let Ok(mut changed) = self.changed.lock() {
            changed.push(h);
        }
        self.unpark();
    }

    fn unpark(&self) {
        if let Ok(t) = self.thread.lock() {
            if let Some(t) = t.as_ref() {
                t.unpark();
            }
        }
    }
}

#[derive(Debug)]
struct Waiter {
    handle: SocketHandle,
    id: u64,
    wake: Wake,
}

#[derive(Debug, Default)]
struct Stripe {
    /// Waiters in `list` (read without the lock: a change with nobody waiting
    /// costs one load).
    count: AtomicUsize,
    list: Mutex<Vec<Waiter>>,
}

/// Who waits for which socket. A readiness change wakes only the waiters of
/// that socket (a stripe's lock is shared by the sockets that hash to it).
///
/// Ordering: a waiter registers, then reads the board, then parks; the engine
/// writes the board, then looks for waiters. Both sides use sequentially
/// consistent operations, so either the waiter sees the new readiness or the
/// engine sees the waiter (and its unpark makes the park return at once).
#[derive(Debug)]
pub(crate) struct Waiters {
    stripes: Box<[Stripe]>,
    next_id: AtomicU64,
}

impl Default for Waiters {
    fn default() -> Self {
        Waiters {
            stripes: (0..STRIPES).map(|_| Stripe::default()).collect(),
            next_id: AtomicU64::new(1),
        }
    }
}

impl Waiters {
    fn stripe(&self, h: SocketHandle) -> &Stripe {
        let key = (h.id().0 as usize).wrapping_mul(31) ^ usize::from(h.core());
        &self.stripes[key % STRIPES]
    }

    /// Registers `wake` for changes of `h`; the id to [`remove`](Self::remove) it with.
    pub(crate) fn add(&self, h: SocketHandle, wake: Wake) -> u64 {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let stripe = self.stripe(h);
        if let Ok(mut list) = stripe.list.lock() {
            list.push(Waiter {
                handle: h,
                id,
                wake,
            });
            stripe.count.fetch_add(1, Ordering::SeqCst);
        }
        id
    }

    /// Removes the registration `id` of `h`.
    pub(crate) fn remove(&self, h: SocketHandle, id: u64) {
        let stripe = self.stripe(h);
        if let Ok(mut list) = stripe.list.lock() {
            if let Some(at) = list.iter().position(|w| w.id == id) {
                list.swap_remove(at);
                stripe.count.fetch_sub(1, Ordering::SeqCst);
            }
        }
    }

    /// Wakes the waiters of `h` (its published readiness just changed).
    pub(crate) fn wake(&self, h: SocketHandle) {
        let stripe = self.stripe(h);
        if stripe.count.load(Ordering::SeqCst) == 0 {
            return;
        }
        if let Ok(list) = stripe.list.lock() {
            for w in list.iter().filter(|w| w.handle == h) {
                match &w.wake {
                    Wake::Thread(t) => t.unpark(),
                    Wake::Poller(inbox) => inbox.push(h),
                }
            }
        }
    }

    /// Wakes every waiter (the stack stops).
    pub(crate) fn wake_all(&self) {
        for stripe in self.stripes.iter() {
            if let Ok(list) = stripe.list.lock() {
                for w in list.iter() {
                    match &w.wake {
                        Wake::Thread(t) => t.unpark(),
                        Wake::Poller(inbox) => inbox.unpark(),
                    }
                }
            }
        }
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

    /// Publishes the readiness the engine's events report for watched sockets
    /// and wakes their waiters; the work follows the events, not the number of
    /// sockets.
    pub(crate) fn publish_events(
        &self,
        events: &[SocketEvent],
        streams: &mut Streams,
        board: &Board,
        waiters: &Waiters,
    ) {
        for e in events {
            if self.sockets.contains(&e.handle)
                && board.set(e.handle, streams.board_bits(e.handle, encode(e.readiness)))
            {
                waiters.wake(e.handle);
            }
        }
    }

    /// Publishes `h`'s readiness now (after a command changed it, before the
    /// caller hears the answer, so it never sees an older state), waking its
    /// waiters if it changed.
    pub(crate) fn publish_one<D: Device>(
        &self,
        engine: &mut Engine<D>,
        streams: &mut Streams,
        board: &Board,
        waiters: &Waiters,
        h: SocketHandle,
    ) {
        if !self.sockets.contains(&h) {
            return;
        }
        let bits = streams.board_bits(h, engine.readiness(h).map_or(HANGUP | ERROR, encode));
        if board.set(h, bits) {
            waiters.wake(h);
        }
    }

    /// Every watched handle (for the final clean-up).
    pub(crate) fn handles(&self) -> Vec<SocketHandle> {
        self.sockets.iter().copied().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::socket::SocketSet;

    fn handles(n: usize) -> Vec<SocketHandle> {
        let mut set = SocketSet::new(1, 0, 256);
        (0..n).map(|_| set.insert(()).expect("slot")).collect()
    }

    #[test]
    fn a_change_wakes_only_the_waiters_of_that_socket() {
        let waiters = Waiters::default();
        // More sockets than stripes, so some share a stripe.
        let hs = handles(STRIPES + 8);
        let inboxes: Vec<Arc<Inbox>> = hs.iter().map(|_| Arc::new(Inbox::default())).collect();
        let ids: Vec<u64> = hs
            .iter()
            .zip(&inboxes)
            .map(|(h, i)| waiters.add(*h, Wake::Poller(Arc::clone(i))))
            .collect();
        waiters.wake(hs[3]);
        waiters.wake(hs[3 + STRIPES]);
        let mut got = Vec::new();
        for (i, inbox) in inboxes.iter().enumerate() {
            got.clear();
            inbox.take(&mut got);
            let expected: &[SocketHandle] = if i == 3 || i == 3 + STRIPES {
                &hs[i..=i]
            } else {
                &[]
            };
            assert_eq!(got, expected, "socket {i}");
        }
        // Removed: no longer woken.
        waiters.remove(hs[3], ids[3]);
        waiters.wake(hs[3]);
        got.clear();
        inboxes[3].take(&mut got);
        assert!(got.is_empty());
        assert!(inboxes[3].is_empty());
    }

    #[test]
    fn the_board_reports_a_change_once() {
        let hs = handles(2);
        let board = Board::new(1, 256);
        assert!(board.set(hs[0], READABLE));
        assert!(!board.set(hs[0], READABLE));
        assert_eq!(board.get(hs[0]), READABLE);
        assert_eq!(board.get(hs[1]), 0);
    }
}

//! Per-stream byte rings between an application thread and its engine's loop:
//! the cross-thread data path without commands, replies or allocation.
//!
//! Every cross-thread [`TcpStream`](super::TcpStream) has two SPSC byte rings
//! ([`surge_datapath::byte_ring`], [`STREAM_RING_BYTES`] each way):
//!
//! - **send**: the application copies into the TX ring and rings the core's
//!   doorbell only when the stream is not already scheduled (one lock-free
//!   push, and an unpark that costs a futex wake only if the loop sleeps). The
//!   loop drains the rings of the scheduled streams into their send buffers
//!   (`Engine::send` straight from ring memory), and again on a writable event
//!   when the send buffer was full: the work follows the streams with data.
//! - **recv**: on a readable event the loop moves what the connection
//!   received into the RX ring (`Engine::recv` straight into ring memory); the
//!   application reads it without asking the loop. A full ring leaves the rest
//!   in the connection (its window closes as a socket's does); the reader that
//!   frees space rings the doorbell if the loop had to stop.
//!
//! A blocked side waits on its [`WaitSlot`]: it spins briefly, then parks, and
//! the other side unparks it only when it said it waits (a `SeqCst` flag with
//! fences on both sides, so no wake-up is lost).
//!
//! Anything but data (end of stream, a pending error, a closed connection) is
//! left to the engine: the loop stops moving bytes and raises `attention`, and
//! once the ring is empty the application makes the ordinary call (a command),
//! which answers with the same errno as before the rings existed.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering, fence};
use std::sync::{Arc, Mutex};
use std::thread::Thread;
use std::time::{Duration, Instant as StdInstant};

use surge_datapath::Device;
use surge_datapath::byte_ring::{ByteConsumer, ByteProducer, byte_ring};

use crate::engine::{Engine, Readiness};
use crate::errno::Errno;
use crate::socket::{SocketHandle, TcpSocketOptions};

/// Bytes of each of a stream's two rings (send and receive). The ring adds to
/// the socket's buffers: a receiver holds up to SO_RCVBUF in the connection and
/// this much more in its ring.
pub const STREAM_RING_BYTES: usize = 16 * 1024;

/// How many times a blocked side looks again before it parks.
const SPINS: u32 = 8;

/// One side's waiting thread.
#[derive(Debug, Default)]
pub(crate) struct WaitSlot {
    waiting: AtomicBool,
    thread: Mutex<Option<Thread>>,
}

impl WaitSlot {
    /// Wakes the waiter if it said it waits. Call after publishing the change.
    /// True when it unparked a thread.
    pub(crate) fn wake(&self) -> bool {
        // Pairs with the fence in `wait`: either the waiter sees the change,
        // or this load sees `waiting`.
        fence(Ordering::SeqCst);
        if !self.waiting.load(Ordering::Relaxed) {
            return false;
        }
        // Wake outside the lock: the unpark is a system call, and the waiter
        // takes the lock on its way to park.
        let thread = self.thread.lock().ok().and_then(|t| t.clone());
        match thread {
            Some(t) => {
                t.unpark();
                true
            }
            None => false,
        }
    }

    /// Waits until `ready()` (true), `deadline` passes or `alive()` turns false
    /// (false): a few spins, then parks of at most `park` each
    /// (`RuntimeConfig::stream_park`).
    pub(crate) fn wait(
        &self,
        mut ready: impl FnMut() -> bool,
        deadline: Option<StdInstant>,
        park: Duration,
        alive: impl Fn() -> bool,
    ) -> bool {
        for _ in 0..SPINS {
            if ready() {
                return true;
            }
            std::hint::spin_loop();
        }
        if let Ok(mut t) = self.thread.lock() {
            let me = std::thread::current();
            if t.as_ref().is_none_or(|t| t.id() != me.id()) {
                *t = Some(me);
            }
        }
        let result = loop {
            self.waiting.store(true, Ordering::Relaxed);
            fence(Ordering::SeqCst);
            if ready() {
                break true;
            }
            if !alive() {
                break false;
            }
            let mut park = park;
            if let Some(d) = deadline {
                let left = d.saturating_duration_since(StdInstant::now());
                if left.is_zero() {
                    break false;
                }
                park = park.min(left);
            }
            std::thread::park_timeout(park);
        };
        self.waiting.store(false, Ordering::Relaxed);
        result
    }
}

/// What both sides of one stream share besides the rings.
#[derive(Debug)]
pub(crate) struct StreamShared {
    pub(crate) handle: SocketHandle,
    /// Longest park of a blocked side between looks (`RuntimeConfig::stream_park`).
    pub(crate) park: Duration,
    /// In the core's doorbell queue (set by the application, cleared by the loop).
    pub(crate) scheduled: AtomicBool,
    /// The loop left received bytes in the connection: the RX ring was full.
    pub(crate) rx_stalled: AtomicBool,
    /// No more bytes will come through the RX ring (end of stream, an error):
    /// the application asks the engine once the ring is empty.
    pub(crate) rx_attention: AtomicBool,
    /// The TX ring is not drained any more (an error, a closed connection):
    /// the application asks the engine.
    pub(crate) tx_attention: AtomicBool,
    /// The errno the loop's own `send` or `recv` got (it took the pending
    /// error), handed to the application's next call once; 0: none.
    pub(crate) error: AtomicU32,
    /// The reader waits for bytes.
    pub(crate) rx_wait: WaitSlot,
    /// The writer waits for space (or a flush).
    pub(crate) tx_wait: WaitSlot,
}

/// The application's half of a stream.
#[derive(Debug)]
pub(crate) struct AppRings {
    pub(crate) shared: Arc<StreamShared>,
    pub(crate) tx: Mutex<ByteProducer>,
    pub(crate) rx: Mutex<ByteConsumer>,
    /// `shutdown(SHUT_WR)` was called: sends are EPIPE.
    pub(crate) tx_shut: AtomicBool,
}

/// The loop's half of a stream, handed over by the `Attach` command.
#[derive(Debug)]
pub(crate) struct EngineRings {
    shared: Arc<StreamShared>,
    tx: ByteConsumer,
    rx: ByteProducer,
    /// The connection has been writable once (the handshake is over).
    connected: bool,
    /// `close` was called with bytes still in the TX ring: close once drained.
    close_pending: bool,
    /// `shutdown(SHUT_WR)` was called with bytes in the TX ring.
    shutdown_pending: bool,
    /// The loop put bytes in the RX ring: wake the reader (deferred to
    /// [`Streams::wake_pending`]).
    wake_rx: bool,
    /// The loop freed room in the TX ring: wake the writer (deferred).
    wake_tx: bool,
    /// In `Streams::to_wake`.
    queued: bool,
}

/// The two halves of a new stream's rings.
pub(crate) fn stream_rings(handle: SocketHandle, park: Duration) -> (AppRings, Box<EngineRings>) {
    let shared = Arc::new(StreamShared {
        handle,
        park,
        scheduled: AtomicBool::new(false),
        rx_stalled: AtomicBool::new(false),
        rx_attention: AtomicBool::new(false),
        tx_attention: AtomicBool::new(false),
        error: AtomicU32::new(0),
        rx_wait: WaitSlot::default(),
        tx_wait: WaitSlot::default(),
    });
    // STREAM_RING_BYTES is a power of two: the ring cannot refuse it.
    let ((tx_p, tx_c), (rx_p, rx_c)) =
        match (byte_ring(STREAM_RING_BYTES), byte_ring(STREAM_RING_BYTES)) {
            (Ok(a), Ok(b)) => (a, b),
            _ => unreachable!("STREAM_RING_BYTES is a power of two"),
        };
    (
        AppRings {
            shared: Arc::clone(&shared),
            tx: Mutex::new(tx_p),
            rx: Mutex::new(rx_c),
            tx_shut: AtomicBool::new(false),
        },
        Box::new(EngineRings {
            shared,
            tx: tx_c,
            rx: rx_p,
            connected: false,
            close_pending: false,
            shutdown_pending: false,
            wake_rx: false,
            wake_tx: false,
            queued: false,
        }),
    )
}

/// The streams of one engine that have rings, by socket slot.
///
/// Moving bytes does not wake the other side at once: the streams whose
/// waiters need a wake are listed, and the loop wakes them together with
/// [`wake_pending`](Self::wake_pending) once the iteration's bytes have moved,
/// then yields, so that application threads sharing its core run back to back
/// (one switch each, rather than a switch to each thread and one back between
/// two events) and their replies leave with the same iteration's flush.
#[derive(Debug, Default)]
pub(crate) struct Streams {
    slots: Vec<Option<Box<EngineRings>>>,
    /// Streams with a deferred wake (each once: `EngineRings::queued`); keeps
    /// its capacity, so a steady loop allocates nothing here.
    to_wake: Vec<SocketHandle>,
}

/// What `Streams::close` did.
pub(crate) enum CloseOutcome {
    /// Not a ring stream: close it as any socket.
    NotAStream,
    /// Closed (or will close once its TX ring drained): the engine's answer.
    Done(Result<(), Errno>),
}

impl Streams {
    fn slot(h: SocketHandle) -> usize {
        h.id().0 as usize
    }

    fn get_mut(&mut self, h: SocketHandle) -> Option<&mut EngineRings> {
        self.slots
            .get_mut(Self::slot(h))?
            .as_deref_mut()
            .filter(|s| s.shared.handle == h)
    }

    /// Wakes the waiters the moves since the last call owe a wake (a reader
    /// whose RX ring got bytes, a writer whose TX ring got room), all at once.
    /// True when it unparked a thread.
    pub(crate) fn wake_pending(&mut self) -> bool {
        let mut list = core::mem::take(&mut self.to_wake);
        let mut woke = false;
        for h in list.drain(..) {
            // A stream closed meanwhile is gone: its waiters were woken then.
            let Some(s) = self.get_mut(h) else {
                continue;
            };
            s.queued = false;
            if core::mem::take(&mut s.wake_rx) {
                woke |= s.shared.rx_wait.wake();
            }
            if core::mem::take(&mut s.wake_tx) {
                woke |= s.shared.tx_wait.wake();
            }
        }
        self.to_wake = list;
        woke
    }

    /// Streams with a deferred wake.
    pub(crate) fn wakes_pending(&self) -> usize {
        self.to_wake.len()
    }

    /// Lists `h` for [`wake_pending`](Self::wake_pending) if its last moves
    /// owe a wake and it is not listed yet.
    fn queue_wake(&mut self, h: SocketHandle) {
        let Some(s) = self.get_mut(h) else {
            return;
        };
        if (s.wake_rx || s.wake_tx) && !s.queued {
            s.queued = true;
            self.to_wake.push(h);
        }
    }

    /// True when `h` has rings.
    pub(crate) fn contains(&self, h: SocketHandle) -> bool {
        self.slots
            .get(Self::slot(h))
            .and_then(|s| s.as_deref())
            .is_some_and(|s| s.shared.handle == h)
    }

    /// Starts moving `rings`' bytes (the `Attach` command), and moves what is
    /// already there.
    pub(crate) fn attach<D: Device>(&mut self, engine: &mut Engine<D>, rings: Box<EngineRings>) {
        let h = rings.shared.handle;
        let slot = Self::slot(h);
        if self.slots.len() <= slot {
            self.slots.resize_with(slot + 1, || None);
        }
        self.slots[slot] = Some(rings);
        self.doorbell(engine, h);
        let readiness = engine.readiness(h).ok();
        self.on_event(engine, h, readiness);
    }

    /// The application rang for `h`: drain its TX ring, refill its RX ring.
    pub(crate) fn doorbell<D: Device>(&mut self, engine: &mut Engine<D>, h: SocketHandle) {
        let Some(s) = self.get_mut(h) else {
            return;
        };
        // An RMW, so the application's bytes written before its ring are seen.
        s.shared.scheduled.swap(false, Ordering::AcqRel);
        let done = s.push_tx(engine);
        if s.shared.rx_stalled.swap(false, Ordering::AcqRel) {
            s.pull_rx(engine);
        }
        self.queue_wake(h);
        if done {
            self.finish_close(engine, h);
        }
    }

    /// The engine reported `h`'s readiness changed (`None`: the socket is gone).
    pub(crate) fn on_event<D: Device>(
        &mut self,
        engine: &mut Engine<D>,
        h: SocketHandle,
        readiness: Option<Readiness>,
    ) {
        let Some(s) = self.get_mut(h) else {
            return;
        };
        let r = readiness.unwrap_or(Readiness {
            hangup: true,
            error: true,
            ..Readiness::default()
        });
        if r.writable {
            s.connected = true;
        }
        if r.error || r.hangup || readiness.is_none() {
            // The engine answers from now on (it keeps the error for the call,
            // and knows the connection is over).
            s.attention_both();
        }
        let done = s.push_tx(engine);
        if r.readable {
            s.pull_rx(engine);
        }
        self.queue_wake(h);
        if done {
            self.finish_close(engine, h);
        }
    }

    /// The bits the board shows for `h`, from the engine's readiness `bits`
    /// and the rings: readable while the RX ring has bytes (or the engine must
    /// answer), writable while the TX ring has room once connected.
    pub(crate) fn board_bits(&mut self, h: SocketHandle, bits: u8) -> u8 {
        use super::bits::{READABLE, WRITABLE};
        let Some(s) = self.get_mut(h) else {
            return bits;
        };
        let mut out = bits & !(READABLE | WRITABLE);
        if s.rx.capacity() > s.rx.free() || s.shared.rx_attention.load(Ordering::Acquire) {
            out |= READABLE;
        }
        if bits & WRITABLE != 0 || (s.connected && s.tx.len() < s.tx.capacity()) {
            out |= WRITABLE;
        }
        out
    }

    /// `close(2)` of `h` (the `Close` command): with bytes left in the RX ring
    /// the peer gets a RST, as when a socket closes with unread data; with bytes
    /// left in the TX ring the close waits for them to reach the connection
    /// (unless SO_LINGER is zero, which drops them).
    pub(crate) fn close<D: Device>(
        &mut self,
        engine: &mut Engine<D>,
        h: SocketHandle,
    ) -> CloseOutcome {
        let Some(s) = self.get_mut(h) else {
            return CloseOutcome::NotAStream;
        };
        let options = engine.tcp_options(h).ok();
        let abort = options.is_some_and(|o| o.linger == Some(Duration::ZERO));
        if !s.rx.is_empty() && !abort {
            // Linux `tcp_close`: unread data makes the close a reset.
            let o = TcpSocketOptions {
                linger: Some(Duration::ZERO),
                ..options.unwrap_or_default()
            };
            let _ = engine.set_tcp_options(h, o);
            return CloseOutcome::Done(self.close_now(engine, h));
        }
        if abort || s.tx.is_empty() || s.shared.tx_attention.load(Ordering::Acquire) {
            return CloseOutcome::Done(self.close_now(engine, h));
        }
        s.close_pending = true;
        if s.push_tx(engine) {
            return CloseOutcome::Done(self.close_now(engine, h));
        }
        self.queue_wake(h);
        CloseOutcome::Done(Ok(()))
    }

    /// `shutdown(SHUT_WR)` of `h`: at once when its TX ring is empty, else
    /// once it drained. `None`: not a ring stream, or the engine must answer.
    pub(crate) fn shutdown_write<D: Device>(
        &mut self,
        engine: &mut Engine<D>,
        h: SocketHandle,
    ) -> Option<Result<(), Errno>> {
        let s = self.get_mut(h)?;
        let healthy = engine
            .readiness(h)
            .is_ok_and(|r| !r.error && !r.hangup && r.writable | s.connected);
        if s.tx.is_empty() || s.shared.tx_attention.load(Ordering::Acquire) || !healthy {
            return None;
        }
        s.shutdown_pending = true;
        if s.push_tx(engine) {
            let _ = engine.shutdown_write(h);
            if let Some(s) = self.get_mut(h) {
                s.shutdown_pending = false;
            }
        }
        self.queue_wake(h);
        Some(Ok(()))
    }

    /// Forgets `h` (closed through the engine) and wakes its waiters.
    pub(crate) fn detach(&mut self, h: SocketHandle) {
        if let Some(slot) = self.slots.get_mut(Self::slot(h)) {
            if slot.as_ref().is_some_and(|s| s.shared.handle == h) {
                if let Some(s) = slot.take() {
                    s.attention_both();
                }
            }
        }
    }

    fn close_now<D: Device>(
        &mut self,
        engine: &mut Engine<D>,
        h: SocketHandle,
    ) -> Result<(), Errno> {
        self.detach(h);
        engine.close(h)
    }

    /// A pending close or shutdown whose TX ring just drained.
    fn finish_close<D: Device>(&mut self, engine: &mut Engine<D>, h: SocketHandle) {
        let Some(s) = self.get_mut(h) else {
            return;
        };
        if s.shutdown_pending {
            s.shutdown_pending = false;
            let _ = engine.shutdown_write(h);
        }
        if s.close_pending {
            let _ = self.close_now(engine, h);
        }
    }

    /// The stack stops: every stream closes once its TX ring reached the
    /// connection (as a process's sockets do when it exits); their
    /// applications' calls answer ESHUTDOWN from now on.
    pub(crate) fn stop<D: Device>(&mut self, engine: &mut Engine<D>) {
        for s in self.slots.iter_mut().flatten() {
            s.close_pending = true;
            s.shared.rx_wait.wake();
            s.shared.tx_wait.wake();
        }
        self.push_pending(engine);
    }

    /// Drains the TX rings of streams waiting to close and closes those that
    /// are done; the number still waiting.
    pub(crate) fn push_pending<D: Device>(&mut self, engine: &mut Engine<D>) -> usize {
        let mut waiting = 0;
        for slot in 0..self.slots.len() {
            let Some(s) = self.slots[slot].as_deref_mut() else {
                continue;
            };
            if !(s.close_pending || s.shutdown_pending) {
                continue;
            }
            let h = s.shared.handle;
            if s.push_tx(engine) {
                self.finish_close(engine, h);
            }
            self.queue_wake(h);
            if self.slots[slot].is_some() {
                waiting += 1;
            }
        }
        waiting
    }

    /// Closes what is left (the stack's linger time is over).
    pub(crate) fn close_all<D: Device>(&mut self, engine: &mut Engine<D>) {
        for slot in &mut self.slots {
            if let Some(s) = slot.take() {
                let _ = engine.close(s.shared.handle);
                s.attention_both();
            }
        }
    }
}

impl StreamShared {
    /// The error the loop took for the application, once.
    pub(crate) fn take_error(&self) -> Option<Errno> {
        match self.error.swap(0, Ordering::AcqRel) {
            0 => None,
            raw => Errno::from_raw_os_error(raw as i32),
        }
    }
}

impl EngineRings {
    fn attention_both(&self) {
        self.shared.rx_attention.store(true, Ordering::Release);
        self.shared.tx_attention.store(true, Ordering::Release);
        self.shared.rx_wait.wake();
        self.shared.tx_wait.wake();
    }

    /// Moves the TX ring into the connection's send buffer; true when a
    /// pending close or shutdown can now run (the ring is empty, or the
    /// connection failed).
    fn push_tx<D: Device>(&mut self, engine: &mut Engine<D>) -> bool {
        let h = self.shared.handle;
        let mut freed = false;
        let pending = self.close_pending || self.shutdown_pending;
        if self.shared.tx_attention.load(Ordering::Acquire) {
            return pending;
        }
        loop {
            let (a, _) = self.tx.readable();
            if a.is_empty() {
                break;
            }
            let len = a.len();
            match engine.send(h, a) {
                Ok(n) => {
                    self.tx.consume(n);
                    freed |= n > 0;
                    if n < len {
                        break;
                    }
                }
                Err(Errno::EAGAIN) => break,
                Err(e) => {
                    // The send took the connection's error: the application
                    // gets it from its next send, then asks the engine.
                    self.shared
                        .error
                        .store(e.raw_os_error() as u32, Ordering::Release);
                    let len = self.tx.len();
                    self.tx.consume(len);
                    self.attention_both();
                    return pending;
                }
            }
        }
        if freed {
            self.wake_tx = true;
        }
        pending && self.tx.is_empty()
    }

    /// Moves what the connection received into the RX ring.
    fn pull_rx<D: Device>(&mut self, engine: &mut Engine<D>) {
        let h = self.shared.handle;
        if self.shared.rx_attention.load(Ordering::Acquire) {
            return;
        }
        let mut moved = false;
        loop {
            let (a, _) = self.rx.writable();
            if a.is_empty() {
                // Full: the reader rings when it made room. Say so, then look
                // again (it may have read meanwhile and not seen the flag).
                self.shared.rx_stalled.store(true, Ordering::Relaxed);
                fence(Ordering::SeqCst);
                if self.rx.free() == 0 {
                    break;
                }
                self.shared.rx_stalled.store(false, Ordering::Relaxed);
                continue;
            }
            match engine.recv(h, a) {
                Ok(0) => {
                    // End of stream: the engine answers from here on.
                    self.shared.rx_attention.store(true, Ordering::Release);
                    moved = true;
                    break;
                }
                Ok(n) => {
                    self.rx.commit(n);
                    moved = true;
                }
                Err(Errno::EAGAIN) => break,
                Err(e) => {
                    // The recv took the connection's error: the application's
                    // next call gets it, then asks the engine.
                    self.shared
                        .error
                        .store(e.raw_os_error() as u32, Ordering::Release);
                    self.shared.rx_attention.store(true, Ordering::Release);
                    moved = true;
                    break;
                }
            }
        }
        if moved {
            self.wake_rx = true;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[test]
    fn a_wait_slot_wakes_only_a_waiter_that_said_it_waits() {
        let slot = Arc::new(WaitSlot::default());
        // Nobody waits: no unpark, and the caller learns it woke nobody (the
        // loop then skips its yield).
        assert!(!slot.wake());
        let ready = Arc::new(AtomicUsize::new(0));
        let waiter = {
            let (slot, ready) = (Arc::clone(&slot), Arc::clone(&ready));
            std::thread::spawn(move || {
                // A park bound far beyond the test: only `wake` ends it.
                slot.wait(
                    || ready.load(Ordering::Acquire) > 0,
                    None,
                    Duration::from_secs(600),
                    || true,
                )
            })
        };
        // Until the waiter said it waits, `wake` has nobody to wake.
        while !slot.waiting.load(Ordering::SeqCst) {
            std::thread::yield_now();
        }
        // Not ready yet: the waiter keeps saying it waits (it parks again), so
        // this wake must report that it unparked someone.
        assert!(slot.wake(), "the waiter said it waits: wake must unpark it");
        ready.store(1, Ordering::Release);
        slot.wake();
        assert!(waiter.join().expect("waiter"));
        // Gone: nobody to wake any more.
        assert!(!slot.waiting.load(Ordering::SeqCst));
        assert!(!slot.wake());
    }
}

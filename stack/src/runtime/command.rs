//! The commands other threads queue to an engine's loop, and their replies.
//!
//! Each cross-thread socket call is one [`Command`]: the caller pushes it on the
//! owning core's lock-free queue, wakes the core if it sleeps, and waits on the
//! command's [`Completion`]. The loop runs [`execute`] between RX bursts, with the
//! same non-blocking engine calls an in-loop program would make, so both ways in
//! share one socket model and one set of errnos.

use core::net::SocketAddrV4;
use std::sync::{Arc, Condvar, Mutex};

use surge_datapath::Device;

use super::stream::{CloseOutcome, EngineRings, Streams};
use super::watch::{Board, Waiters, Watched};
use crate::Errno;
use crate::engine::{Engine, EngineStats, TcpEngineStats};
use crate::socket::{SharedAcceptQueue, SocketHandle, TcpSocketOptions};
use crate::table::BindOptions;
use crate::tcp::{TcpInfo, TcpStats};

/// One socket call, as the engine will run it.
#[derive(Debug)]
pub(crate) enum Op {
    /// `socket(AF_INET, SOCK_STREAM)`.
    TcpSocket,
    /// `socket(AF_INET, SOCK_DGRAM)`.
    UdpSocket,
    /// `bind(2)`.
    Bind(SocketAddrV4, BindOptions),
    /// `listen(2)` with the accept queue count shared by every core's listener.
    Listen(i32, SharedAcceptQueue),
    /// `accept(2)`, non-blocking.
    Accept,
    /// `connect(2)`, non-blocking (EINPROGRESS for TCP).
    Connect(SocketAddrV4),
    /// `send(2)`: the bytes to queue.
    Send(Vec<u8>),
    /// `recv(2)`: at most this many bytes.
    Recv(usize),
    /// `sendto(2)`.
    SendTo(Vec<u8>, Option<SocketAddrV4>),
    /// `recvfrom(2)`: a buffer of this many bytes.
    RecvFrom(usize),
    /// `shutdown(SHUT_WR)`.
    ShutdownWrite,
    /// `close(2)`.
    Close,
    /// The first half of a lingering `close(2)` (SO_LINGER > 0).
    CloseLingering,
    /// `getsockopt(SO_ERROR)`.
    TakeError,
    /// `getpeername(2)`.
    PeerAddr,
    /// `getsockname(2)`.
    LocalAddr,
    /// `setsockopt` (TCP).
    SetOptions(TcpSocketOptions),
    /// `getsockopt` (TCP).
    Options,
    /// `TCP_INFO`.
    Info,
    /// The connection's own counters.
    TcpSocketStats,
    /// The engine's counters.
    Stats,
    /// A new stream's rings: the loop starts moving its bytes.
    Attach(Box<EngineRings>),
}

/// What a command returns.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// A new socket.
    Handle(SocketHandle),
    /// An address (bind, getsockname, getpeername).
    Addr(SocketAddrV4),
    /// An accepted connection and its peer.
    Accepted(SocketHandle, SocketAddrV4),
    /// Bytes taken by send.
    Sent(usize),
    /// Bytes read (empty: end of stream).
    Data(Vec<u8>),
    /// A datagram (copied bytes), its full length, and its source.
    Datagram(Vec<u8>, usize, SocketAddrV4),
    /// Nothing to return.
    Done,
    /// A lingering close sent its FIN and waits for the ACK (true), or closed (false).
    Lingering(bool),
    /// A pending error, if any.
    Error(Option<Errno>),
    /// Socket options.
    Options(TcpSocketOptions),
    /// `TCP_INFO`.
    Info(Box<TcpInfo>),
    /// The connection's own counters.
    TcpSocketStats(Box<TcpStats>),
    /// Engine counters.
    Stats(Box<(EngineStats, TcpEngineStats)>),
}

/// A thread's reply slot: every call the thread makes is answered here (one
/// slot per thread, made once, instead of a new one per call). Each call
/// takes the next sequence number; an answer for an older call (one that
/// gave up when the stack stopped, or a `post` nobody waits for) is dropped.
#[derive(Debug, Default)]
pub(crate) struct Completion {
    slot: Mutex<ReplySlot>,
    ready: Condvar,
}

#[derive(Debug, Default)]
struct ReplySlot {
    /// The call being waited for.
    seq: u64,
    result: Option<Result<Outcome, Errno>>,
}

impl Completion {
    /// Starts a new call: its sequence number.
    pub(crate) fn begin(&self) -> u64 {
        match self.slot.lock() {
            Ok(mut slot) => {
                slot.seq = slot.seq.wrapping_add(1);
                slot.result = None;
                slot.seq
            }
            Err(_) => 0,
        }
    }

    /// Stores the answer to call `seq` and wakes the caller (dropped if the
    /// caller moved on).
    pub(crate) fn complete(&self, seq: u64, result: Result<Outcome, Errno>) {
        if let Ok(mut slot) = self.slot.lock() {
            if slot.seq != seq {
                return;
            }
            slot.result = Some(result);
        }
        self.ready.notify_one();
    }

    /// Waits for the answer to call `seq`; `ESHUTDOWN` if the stack stopped
    /// first (checked every few milliseconds through `alive`).
    pub(crate) fn wait(&self, seq: u64, alive: impl Fn() -> bool) -> Result<Outcome, Errno> {
        let Ok(mut slot) = self.slot.lock() else {
            return Err(Errno::ESHUTDOWN);
        };
        loop {
            if slot.seq == seq {
                if let Some(result) = slot.result.take() {
                    return result;
                }
            }
            if !alive() {
                return Err(Errno::ESHUTDOWN);
            }
            slot = match self
                .ready
                .wait_timeout(slot, std::time::Duration::from_millis(5))
            {
                Ok((guard, _)) => guard,
                Err(_) => return Err(Errno::ESHUTDOWN),
            };
        }
    }
}

thread_local! {
    /// This thread's reply slot.
    static REPLY: Arc<Completion> = Arc::new(Completion::default());
}

/// This thread's reply slot (an `Arc` clone: no allocation after the first).
/// A call made while the thread's locals are being destroyed (a handle
/// dropped by another thread-local's destructor) gets a slot of its own.
pub(crate) fn reply_slot() -> Arc<Completion> {
    REPLY
        .try_with(Arc::clone)
        .unwrap_or_else(|_| Arc::new(Completion::default()))
}

/// A queued call: which socket, what to do, where to answer.
#[derive(Debug)]
pub(crate) struct Command {
    pub(crate) socket: Option<SocketHandle>,
    pub(crate) op: Op,
    pub(crate) reply: Arc<Completion>,
    /// The caller's sequence number for this call.
    pub(crate) seq: u64,
}

/// Runs one command on the engine (inside the loop), publishes the readiness
/// it changed (waking the socket's waiters), and answers it.
pub(crate) fn execute<D: Device>(
    engine: &mut Engine<D>,
    watched: &mut Watched,
    streams: &mut Streams,
    board: &Board,
    waiters: &Waiters,
    cmd: Command,
) {
    let result = run(engine, watched, streams, cmd.socket, cmd.op);
    if let Some(h) = cmd.socket {
        watched.publish_one(engine, streams, board, waiters, h);
    }
    match &result {
        Ok(Outcome::Handle(h)) | Ok(Outcome::Accepted(h, _)) => {
            watched.publish_one(engine, streams, board, waiters, *h);
        }
        _ => {}
    }
    cmd.reply.complete(cmd.seq, result);
}

fn run<D: Device>(
    engine: &mut Engine<D>,
    watched: &mut Watched,
    streams: &mut Streams,
    socket: Option<SocketHandle>,
    op: Op,
) -> Result<Outcome, Errno> {
    // Calls that need no socket.
    match op {
        Op::TcpSocket => {
            let h = engine.tcp_socket()?;
            watched.add(h);
            return Ok(Outcome::Handle(h));
        }
        Op::UdpSocket => {
            let h = engine.udp_socket()?;
            watched.add(h);
            return Ok(Outcome::Handle(h));
        }
        Op::Stats => {
            return Ok(Outcome::Stats(Box::new((
                engine.stats(),
                engine.tcp_stats(),
            ))));
        }
        _ => {}
    }
    let h = socket.ok_or(Errno::EBADF)?;
    match op {
        Op::TcpSocket | Op::UdpSocket | Op::Stats => Err(Errno::EINVAL),
        Op::Attach(rings) => {
            engine.readiness(h)?;
            streams.attach(engine, rings);
            Ok(Outcome::Done)
        }
        Op::Bind(addr, options) => engine.bind(h, addr, options).map(Outcome::Addr),
        Op::Listen(backlog, queue) => engine
            .listen_shared(h, backlog, queue)
            .map(|()| Outcome::Done),
        Op::Accept => {
            let (child, peer) = engine.accept(h)?;
            watched.add(child);
            Ok(Outcome::Accepted(child, peer))
        }
        Op::Connect(addr) => engine.connect(h, addr).map(|()| Outcome::Done),
        Op::Send(data) => engine.send(h, &data).map(Outcome::Sent),
        Op::Recv(len) => {
            let mut buf = vec![0u8; len];
            let n = engine.recv(h, &mut buf)?;
            buf.truncate(n);
            Ok(Outcome::Data(buf))
        }
        Op::SendTo(data, dst) => engine.send_to(h, &data, dst).map(Outcome::Sent),
        Op::RecvFrom(len) => {
            let mut buf = vec![0u8; len];
            let (copied, full, src) = engine.recv_from(h, &mut buf)?;
            buf.truncate(copied);
            Ok(Outcome::Datagram(buf, full, src))
        }
        Op::ShutdownWrite => match streams.shutdown_write(engine, h) {
            Some(result) => result.map(|()| Outcome::Done),
            None => engine.shutdown_write(h).map(|()| Outcome::Done),
        },
        Op::Close => {
            watched.remove(h);
            match streams.close(engine, h) {
                CloseOutcome::Done(result) => result.map(|()| Outcome::Done),
                CloseOutcome::NotAStream => engine.close(h).map(|()| Outcome::Done),
            }
        }
        Op::CloseLingering => {
            // The application flushed its TX ring first; what is left is dropped
            // with the rings.
            streams.detach(h);
            let waits = engine.close_lingering(h)?;
            if !waits {
                watched.remove(h);
            }
            Ok(Outcome::Lingering(waits))
        }
        Op::TakeError => engine.take_error(h).map(Outcome::Error),
        Op::PeerAddr => engine.peer_addr(h).map(Outcome::Addr),
        Op::LocalAddr => engine.local_addr(h).map(Outcome::Addr),
        Op::SetOptions(options) => engine.set_tcp_options(h, options).map(|()| Outcome::Done),
        Op::Options => engine.tcp_options(h).map(Outcome::Options),
        Op::Info => engine.tcp_info(h).map(|i| Outcome::Info(Box::new(i))),
        Op::TcpSocketStats => engine
            .tcp_socket_stats(h)
            .map(|t| Outcome::TcpSocketStats(Box::new(t))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reply_slot_drops_the_answer_to_an_older_call() {
        let slot = reply_slot();
        let old = slot.begin();
        let new = slot.begin();
        assert_ne!(old, new);
        // The answer to the call that gave up arrives late: dropped.
        slot.complete(old, Ok(Outcome::Sent(1)));
        slot.complete(new, Ok(Outcome::Sent(2)));
        assert!(matches!(slot.wait(new, || true), Ok(Outcome::Sent(2))));
        // The same slot serves the thread's next call.
        let next = slot.begin();
        slot.complete(next, Err(Errno::EPIPE));
        assert!(matches!(slot.wait(next, || true), Err(Errno::EPIPE)));
        // Nothing answered and the stack stopped: ESHUTDOWN, not a hang.
        let lost = slot.begin();
        assert!(matches!(slot.wait(lost, || false), Err(Errno::ESHUTDOWN)));
        assert!(Arc::ptr_eq(&slot, &reply_slot()), "one slot per thread");
    }
}

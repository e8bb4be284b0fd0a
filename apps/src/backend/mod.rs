//! The seam between the apps and a TCP stack.
//!
//! `surge serve` and `surge load` are written once against [`Worker`]: a per-thread,
//! non-blocking, readiness-based socket API in the shape of epoll (and of surge's in-loop
//! API). A [`Backend`] hands out one worker per thread. The kernel backend ([`kernel`])
//! uses ordinary sockets through `mio`; the surge backend ([`surge`]) runs one engine per
//! AF_XDP queue, in-loop.

pub mod kernel;
pub mod slab;
pub mod surge;
pub mod surge_counters;

use std::collections::BTreeMap;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

/// A socket handle, unique within one worker.
pub type SocketId = usize;

/// Readiness reported by [`Worker::poll`]. Edge-triggered: after `Readable` the app reads
/// until `WouldBlock`; after `Writable` it writes until `WouldBlock`.
#[derive(Debug)]
pub enum Event {
    /// A listener has connections waiting in its accept queue.
    Acceptable(SocketId),
    /// An active open finished: the connection is established.
    Connected(SocketId),
    /// An active open failed (refused, unreachable, ...).
    ConnectFailed(SocketId, io::Error),
    /// Data (or end of stream, or an error) is waiting to be read.
    Readable(SocketId),
    /// Send buffer space opened up.
    Writable(SocketId),
}

/// One thread's view of a stack: sockets, and readiness of those sockets.
pub trait Worker {
    /// Binds and listens on `addr` (every worker of a backend may listen on the same address;
    /// the stack spreads connections over them).
    fn listen(&mut self, addr: SocketAddr) -> io::Result<SocketId>;
    /// Pops one connection from a listener's accept queue, `Ok(None)` when it is empty.
    fn accept(&mut self, listener: SocketId) -> io::Result<Option<SocketId>>;
    /// Starts an active open; completion comes as `Connected` or `ConnectFailed`.
    fn connect(&mut self, addr: SocketAddr) -> io::Result<SocketId>;
    /// Sends from `buf`; `WouldBlock` when the send buffer is full.
    fn send(&mut self, id: SocketId, buf: &[u8]) -> io::Result<usize>;
    /// Receives into `buf`; `Ok(0)` is end of stream, `WouldBlock` when nothing is queued.
    fn recv(&mut self, id: SocketId, buf: &mut [u8]) -> io::Result<usize>;
    /// Sends FIN after what is queued (`shutdown(SHUT_WR)`).
    fn shutdown_write(&mut self, id: SocketId) -> io::Result<()>;
    /// Closes and forgets a socket. Unknown ids are ignored.
    fn close(&mut self, id: SocketId);
    /// Waits up to `timeout` for readiness and appends what it found to `events`.
    fn poll(&mut self, events: &mut Vec<Event>, timeout: Duration) -> io::Result<()>;
}

/// A TCP stack the apps can run on.
pub trait Backend: Sync {
    /// The per-thread worker type.
    type Worker: Worker + Send;
    /// Short name for reports (`kernel`, `surge`).
    fn name(&self) -> &'static str;
    /// A worker for thread `index` (it may be created on another thread and moved there).
    fn worker(&self, index: usize) -> io::Result<Self::Worker>;
    /// The stack's TCP counters now (retransmits, drops by reason, ...), summed over workers.
    fn counters(&self) -> BTreeMap<String, u64>;
}

/// Which stack the user asked for on the command line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum StackChoice {
    /// The Linux kernel's TCP stack through ordinary sockets (mio/epoll).
    Kernel,
    /// surge's own stack on AF_XDP.
    Surge,
}

/// The number of CPUs this process may run on (at least 1).
pub fn available_cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

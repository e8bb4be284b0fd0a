//! Prefetching a received burst's connections before handling it.
//!
//! With thousands of connections each segment's bucket head, table entry, socket slot
//! and `Tcb` are cold, and a lookup reads them one after another: four dependent cache
//! misses per frame, paid in series. Here a burst is walked in stages before it is
//! handled; each stage asks for the next line of every frame's chain, so a burst's misses
//! overlap (as DPDK's bulk hash lookups do). The stages only read: handling the frames
//! afterwards looks everything up again, now from the cache.

use surge_datapath::{BURST, Burst, Device};

use super::state::{Core, Socket};
use crate::table::SocketId;
use crate::wire::frame::tcp_tuple_hint;
use surge_datapath::prefetch::prefetch_lines;

/// Bursts shorter than this are handled without the extra pass: with a few frames
/// there is little to overlap, and one connection's lines are usually warm.
pub(crate) const MIN_BURST: usize = 4;

/// Connections below which the pass is skipped: their lines stay in the CPU's caches,
/// and the pass costs about 200 instructions per echo for nothing. Measured in memory
/// (`surge-bench engine --part surge-memory`, 64-byte echo, two runs each, 2026-12-07):
/// without the pass 5 % more requests/s at 100 and at 1,000 connections, the same at
/// 3,000, 4 % fewer at 10,000.
pub(crate) const MIN_CONNECTIONS: usize = 4096;

/// Cache lines of a `Tcb` asked for: the fields one segment's input reads first
/// (sequence space, timestamps, the window, the send queue's head).
const TCB_LINES: usize = 8;

/// Prefetches what handling the frames of `rx` will read for their connections.
#[inline]
pub(crate) fn burst<D: Device>(core: &Core, device: &D, rx: &Burst) {
    if rx.len() >= MIN_BURST && core.tcp.conns.len() >= MIN_CONNECTIONS {
        prefetch_burst(core, device, rx);
    }
}

/// [`burst`] once it is worth it: out of line, so the frame loop of an engine with
/// few connections does not carry it in its cache lines.
#[inline(never)]
fn prefetch_burst<D: Device>(core: &Core, device: &D, rx: &Burst) {
    let conns = &core.tcp.conns;
    let mut hashes = [None; BURST];
    for (hash, frame) in hashes.iter_mut().zip(rx.iter()) {
        *hash = tcp_tuple_hint(device.frame(frame)).map(|t| {
            let h = conns.hash_of(&t);
            conns.prefetch_bucket(h);
            (t, h)
        });
    }
    for &(_, h) in hashes.iter().flatten() {
        conns.prefetch_entry(h);
    }
    let mut ids = [None::<SocketId>; BURST];
    for (id, &(t, h)) in ids.iter_mut().zip(hashes.iter().flatten()) {
        *id = conns.get_hashed(h, &t).copied();
        if let Some(id) = *id {
            core.sockets.prefetch(id);
        }
    }
    for &id in ids.iter().flatten() {
        if let Some(Socket::Tcp(sock)) = core.sockets.by_id(id) {
            if let Some(tcb) = sock.tcb() {
                prefetch_lines(tcb, TCB_LINES);
            }
        }
    }
}

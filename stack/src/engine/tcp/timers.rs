//! The connections' timers: one wheel entry per connection, at its `poll_at`.

use super::config_with;
use crate::engine::state::{Core, Socket, TcpEngine, mark};
use crate::socket::{TcpSock, TcpSocketOptions};
use crate::table::SocketId;
use crate::time::Instant;

/// Runs expired TCP timers (the wheel holds one per connection: its `poll_at`).
pub(crate) fn poll_timers(core: &mut Core, now: Instant) {
    let mut expired = core::mem::take(&mut core.tcp.expired);
    core.tcp.timers.advance(now, |_, id| expired.push(id));
    for id in expired.drain(..) {
        if let Some(Socket::Tcp(sock)) = core.sockets.by_id_mut(id) {
            sock.timer = None;
            // An entry left early by `rearm` (the deadline moved later or went
            // away): move it to the real deadline, or drop it, from the socket
            // alone. With thousands of connections this spares a cold `Tcb` and a
            // pass through output for every RTO restarted by an ACK and every
            // delayed ACK that rode on data.
            match sock.due {
                None => {
                    core.tcp_stats.timers_early += 1;
                    continue;
                }
                Some(due) if due > now => {
                    core.tcp_stats.timers_early += 1;
                    match core.tcp.timers.insert(due, id) {
                        Ok(handle) => sock.timer = Some((handle, due)),
                        Err(_) => mark(&mut core.tcp.dirty, sock, id),
                    }
                    continue;
                }
                Some(_) => {}
            }
            if let Some(tcb) = sock.tcb_mut() {
                tcb.handle_timeout(now);
            }
            mark(&mut core.tcp.dirty, sock, id);
        }
    }
    core.tcp.expired = expired;
    // TIME-WAIT records and request records keep their own deadlines; only what is
    // due is looked at (a bounded amount per iteration, the rest next time).
    core.tcp.time_wait.expire(now, RECORDS_PER_POLL, |_| {});
    let mut synacks = core::mem::take(&mut core.tcp.synacks);
    {
        let (sockets, tcp) = (&core.sockets, &mut core.tcp);
        let (defaults, mss) = (tcp.config, core.config.iface.mss());
        tcp.syn_queue.handle_timeouts(
            now,
            RECORDS_PER_POLL,
            |listener| match sockets.by_id(listener) {
                Some(Socket::Tcp(parent)) => config_with(defaults, mss, &parent.options),
                _ => config_with(defaults, mss, &TcpSocketOptions::default()),
            },
            |tuple, synack| synacks.push((*tuple, synack)),
        );
    }
    for (tuple, synack) in synacks.drain(..) {
        core.queue_tcp_control(tuple.local_addr, tuple.remote_addr, synack);
    }
    core.tcp.synacks = synacks;
}

/// TIME-WAIT expiries and SYN-ACK retransmissions handled per iteration at most.
const RECORDS_PER_POLL: usize = 1024;

/// When the TCP layer next needs to run.
pub(crate) fn poll_at(core: &Core) -> Option<Instant> {
    if core.tcp.dirty.is_empty() {
        [
            core.tcp.timers.next_deadline(),
            core.tcp.time_wait.poll_at(),
            core.tcp.syn_queue.poll_at(),
        ]
        .into_iter()
        .flatten()
        .min()
    } else {
        Some(Instant::ZERO)
    }
}

/// Takes a connection off the timer wheel (it leaves the table or becomes a
/// TIME-WAIT record).
pub(crate) fn disarm(tcp: &mut TcpEngine, sock: &mut TcpSock) {
    if let Some((handle, _)) = sock.timer.take() {
        tcp.timers.cancel(handle);
    }
    sock.due = None;
}

/// Re-arms a connection's timer for `deadline` after its input, timers or output.
///
/// Inlined into its callers (after every segment in and out): the keep-or-move test
/// is a few instructions, the call around it cost as many again; the move itself
/// (rare: a deadline earlier than the entry's) stays out of line.
#[inline(always)]
pub(crate) fn rearm(
    tcp: &mut TcpEngine,
    sock: &mut TcpSock,
    id: SocketId,
    deadline: Option<Instant>,
    now: Instant,
) {
    // Re-arm the timer only when its deadline moved earlier (or there was none):
    // a later deadline (the RTO restarting on every ACK) keeps the wheel entry,
    // which then fires early and is moved to `sock.due` by `poll_timers` without
    // running the connection; a deadline that went away leaves the entry to fire
    // and be dropped. This spares a cancel and an insert per segment.
    sock.due = deadline;
    let current = sock.timer.map(|(_, d)| d);
    let keep = match (current, deadline) {
        (Some(scheduled), Some(d)) => d >= scheduled,
        (Some(_), None) => true,
        (None, _) => false,
    };
    if !keep && current != deadline {
        move_timer(tcp, sock, id, deadline, now);
    }
}

/// [`rearm`] when the wheel entry must move: cancels it and inserts one at `deadline`.
#[inline(never)]
fn move_timer(
    tcp: &mut TcpEngine,
    sock: &mut TcpSock,
    id: SocketId,
    deadline: Option<Instant>,
    now: Instant,
) {
    if let Some((handle, _)) = sock.timer.take() {
        tcp.timers.cancel(handle);
    }
    if let Some(d) = deadline {
        match tcp.timers.insert(d.max(now), id) {
            Ok(handle) => sock.timer = Some((handle, d)),
            // A full wheel: poll the connection next iteration instead.
            Err(_) => mark(&mut tcp.dirty, sock, id),
        }
    }
}

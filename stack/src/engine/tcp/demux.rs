//! A received segment (RFC 9293 §3.10.7): to its connection, else to a
//! listener, else answered with RST.

use super::listener::{accept_syn, cookie_input, request_input};
use super::teardown::connection_closed;
use super::timers;
use crate::FourTuple;
use crate::engine::state::{Core, Socket, Verdict, mark};
use crate::engine::stats::DropReason;
use crate::table::SocketId;
use crate::tcp::{self, ListenAction, State, TimeWaitAction};
use crate::time::Instant;
use crate::wire::{TcpFlags, TcpRepr};
use core::net::Ipv4Addr;

/// A received segment (RFC 9293 §3.10.7): to its connection, else to a listener
/// (§3.10.7.2), else answered with RST (§3.10.7.1).
///
/// The IPv4 header comes as its source, destination and DSCP/ECN byte.
///
/// Inlined into the frame parse: a segment for a connection (nearly every one) is
/// handled without a call of its own; the rest ([`unconnected`], the reopening of a
/// TIME-WAIT connection) is out of line.
#[inline(always)]
pub(crate) fn input(
    core: &mut Core,
    now: Instant,
    (src, dst, dscp_ecn): (Ipv4Addr, Ipv4Addr, u8),
    seg: &TcpRepr,
    payload: &[u8],
) -> Verdict {
    if seg.src_port == 0 || seg.dst_port == 0 {
        core.stats.drop(DropReason::TcpRejected);
        return Verdict::Release;
    }
    let tuple = FourTuple {
        local_addr: dst,
        local_port: seg.dst_port,
        remote_addr: src,
        remote_port: seg.src_port,
    };
    if let Some(&id) = core.tcp.conns.get(&tuple) {
        if let Some(Socket::Tcp(sock)) = core.sockets.by_id_mut(id) {
            // Settled here after input unless already marked or still waiting for
            // its `accept` (see below).
            let may_settle = !sock.dirty && (sock.parent.is_none() || sock.queued_for_accept);
            if let Some(tcb) = sock.tcb_mut() {
                // RFC 6191: a new SYN may reopen a TIME-WAIT connection.
                if tcb.state() == State::TimeWait && tcb.time_wait_accepts_syn(seg) {
                    // The old connection ends here; a socket the application
                    // still holds (shut down both ways, not closed) stays,
                    // CLOSED, until its `close`, as Linux's stays TCP_CLOSE.
                    let iss = end_time_wait(tcb);
                    reopen_time_wait(core, now, id, tuple, seg, iss);
                    return Verdict::Release;
                }
                let ecn = tcp::Ecn::from_dscp_ecn(dscp_ecn);
                tcb.handle_segment_ecn(now, seg, payload, ecn);
                // Nothing to send (data whose ACK is delayed, the ACK of our
                // data): settled here as `output::settle` would an established
                // connection, without a pass through the dirty list.
                let deadline = if may_settle {
                    tcb.settle_quiet_established()
                } else {
                    None
                };
                match deadline {
                    Some(deadline) => {
                        timers::rearm(&mut core.tcp, sock, id, deadline, now);
                        sock.ready.queue(&mut core.ready, id);
                    }
                    None => mark(&mut core.tcp.dirty, sock, id),
                }
                return Verdict::Release;
            }
        }
    }
    unconnected(core, now, (src, dst), tuple, seg, payload)
}

/// Ends a TIME-WAIT connection a new SYN reopens (RFC 6191); returns the ISS for the
/// new connection. Out of line, as [`reopen_time_wait`]: rare, and off the path of
/// segments for established connections.
#[cold]
#[inline(never)]
fn end_time_wait(tcb: &mut tcp::Tcb) -> u32 {
    let iss = tcb.time_wait_reuse_iss();
    tcb.end_time_wait();
    iss
}

/// [`input`] after a SYN ended a TIME-WAIT connection (RFC 6191): the socket `id` is
/// closed, and a listener, if any, takes the SYN with `iss`.
#[inline(never)]
fn reopen_time_wait(
    core: &mut Core,
    now: Instant,
    id: SocketId,
    tuple: FourTuple,
    seg: &TcpRepr,
    iss: u32,
) {
    if connection_closed(core, id) {
        core.queue_ready(id);
    }
    if let Some(listener) = core.tcp.listeners.lookup(&tuple).map(|l| l.id) {
        accept_syn(core, now, listener, tuple, seg, Some(iss));
    }
}

/// [`input`] for a segment no connection takes: a TIME-WAIT record, a request
/// record, a listener, another engine, or a RST.
#[inline(never)]
fn unconnected(
    core: &mut Core,
    now: Instant,
    (src, dst): (Ipv4Addr, Ipv4Addr),
    tuple: FourTuple,
    seg: &TcpRepr,
    payload: &[u8],
) -> Verdict {
    // A compact TIME-WAIT record (RFC 9293 §3.10.7.4, RFC 6191).
    if let Some(action) = core
        .tcp
        .time_wait
        .handle_segment(&tuple, now, seg, payload.len())
    {
        match action {
            TimeWaitAction::Ack(ack, _) => core.queue_tcp_control(dst, src, ack),
            TimeWaitAction::Reopen { iss } => {
                match core.tcp.listeners.lookup(&tuple).map(|l| l.id) {
                    Some(listener) => accept_syn(core, now, listener, tuple, seg, Some(iss)),
                    None => {
                        if let Some(rst) = tcp::reply_to_unknown(seg, payload.len()) {
                            core.queue_rst(dst, src, rst);
                        }
                    }
                }
            }
            TimeWaitAction::Closed | TimeWaitAction::Drop => {}
        }
        return Verdict::Release;
    }
    // A half-open connection's request record (Linux `tcp_check_req`).
    if core.tcp.syn_queue.get(&tuple).is_some() {
        request_input(core, now, tuple, seg, payload);
        return Verdict::Release;
    }
    let listener = core.tcp.listeners.lookup(&tuple).map(|l| l.id);
    // RFC 4987 §3.6: the ACK of a SYN-ACK that carried a cookie.
    if let Some(listener) = listener {
        if cookie_input(core, now, listener, tuple, seg, payload) {
            return Verdict::Release;
        }
    }
    // Multi-queue: a segment that is not a SYN for one of our listeners may
    // belong to another engine's connection (see `engine::forward`).
    let syn_for_us = listener.is_some()
        && seg.flags.contains(TcpFlags::SYN)
        && !seg.flags.contains(TcpFlags::ACK);
    if !syn_for_us {
        if let Some(target) = core.forward_hop(seg.dst_port) {
            return Verdict::Forward(target);
        }
    }
    if let Some(listener) = listener {
        // A SYN+FIN is no opening any stack sends (a scanner's probe): Linux and
        // the BSDs drop it in LISTEN rather than answer a SYN-ACK.
        if seg.flags.contains(TcpFlags::SYN) && seg.flags.contains(TcpFlags::FIN) {
            core.stats.drop(DropReason::TcpBadFlags);
            return Verdict::Release;
        }
        match tcp::listen_action(seg, payload.len()) {
            ListenAction::Ignore => core.stats.drop(DropReason::TcpRejected),
            ListenAction::Reset(rst) => core.queue_rst(dst, src, rst),
            ListenAction::Accept => accept_syn(core, now, listener, tuple, seg, None),
        }
        return Verdict::Release;
    }
    core.stats.drop(DropReason::TcpNoConnection);
    if let Some(rst) = tcp::reply_to_unknown(seg, payload.len()) {
        core.queue_rst(dst, src, rst);
    }
    Verdict::Release
}

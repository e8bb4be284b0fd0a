//! Output and bookkeeping for every connection marked in this iteration: its
//! segments are written straight into TX frames, then its timer is re-armed and
//! a finished handshake or an ended connection is settled.

use surge_datapath::{Burst, Device};

use super::listener;
use super::teardown;
use super::timers;
use crate::Errno;
use core::net::Ipv4Addr;

use crate::engine::output::{WriteTransport, send_ipv4_ecn};
use crate::engine::state::{Core, Socket, mark};
use crate::socket::TcpSocketState;
use crate::table::SocketId;
use crate::tcp::{Ecn, State, Tcb, Transmit, WriteSegment};
use crate::time::Instant;
use crate::wire::tcp::TimestampHeader;
use crate::wire::{IpProtocol, TcpPacket, TxChecksum, WireError};

/// Room reserved for the TCP header when a segment's payload is written: the
/// header's length is known only once the segment is, so the payload goes where
/// the connection's hint puts it ([`Tcb::data_header_len_hint`], exact for data
/// segments unless SACK blocks come or go) and moves only when the header turns
/// out longer or shorter. The payload room is the frame less this maximum, whatever
/// the hint.
const MAX_TCP_HEADER: usize = 60;
/// Segments one connection may emit per loop iteration (fairness between connections).
const SEGMENTS_PER_POLL: usize = 64;

/// Output and bookkeeping for every connection marked this iteration. With
/// `hold_acks`, a connection owing only the ACK of a request its application may
/// answer is settled without output and kept for [`flush_held`].
///
/// Inlined into the loop: half the iterations of a request/response exchange (those
/// that only receive) have nothing marked, and are told so without a call.
#[inline]
pub(crate) fn process_dirty<D: Device>(
    core: &mut Core,
    device: &mut D,
    tx: &mut Burst,
    now: Instant,
    hold_acks: bool,
) {
    if !core.tcp.dirty.is_empty() {
        process_marked(core, device, tx, now, hold_acks);
    }
}

/// [`process_dirty`] with something marked.
#[inline(never)]
fn process_marked<D: Device>(
    core: &mut Core,
    device: &mut D,
    tx: &mut Burst,
    now: Instant,
    hold_acks: bool,
) {
    // Connections that found no free TX frame go on `core.tcp.blocked` (empty
    // between calls): they try again next iteration.
    // The list is walked in place, by index. Bookkeeping may mark more (a listener
    // whose child closed): those land behind the round being worked on and make the
    // next round, until quiet or four rounds. The list keeps its capacity across
    // iterations (no allocation per request).
    let mut next = 0;
    for _ in 0..4 {
        let end = core.tcp.dirty.len();
        if next == end {
            break;
        }
        while next < end {
            let id = core.tcp.dirty[next];
            next += 1;
            let tcb = match core.sockets.by_id_mut(id) {
                Some(Socket::Tcp(sock)) => {
                    sock.dirty = false;
                    match core::mem::replace(&mut sock.state, TcpSocketState::Closed) {
                        TcpSocketState::Connection(tcb) => tcb,
                        other => {
                            sock.state = other;
                            continue;
                        }
                    }
                }
                _ => continue,
            };
            let mut tcb = tcb;
            if hold_acks && tcb.ack_may_wait() {
                core.tcp_stats.acks_held += 1;
                settle_held(core, now, id, tcb);
                // Still marked (`sock.dirty`), so calls made before the next iteration
                // do not list it twice.
                if let Some(Socket::Tcp(sock)) = core.sockets.by_id_mut(id) {
                    sock.dirty = true;
                    core.tcp.held.push(id);
                }
                continue;
            }
            let no_frame = transmit(core, device, tx, now, &mut tcb);
            // Drained rings go back to the engine's buffer pool (tcp::buffer_pool).
            tcb.release_idle_buffers();
            // Settling queues the connection on the ready list (its readiness may have
            // changed).
            settle(core, now, id, tcb);
            if no_frame {
                if let Some(Socket::Tcp(sock)) = core.sockets.by_id_mut(id) {
                    mark(&mut core.tcp.blocked, sock, id);
                }
            }
        }
    }
    // Anything still marked waits for the next iteration (usually nothing: the
    // whole list was worked, and no connection was blocked).
    let tcp = &mut core.tcp;
    if next == tcp.dirty.len() {
        tcp.dirty.clear();
    } else {
        tcp.dirty.drain(..next);
    }
    if !tcp.blocked.is_empty() {
        tcp.dirty.append(&mut tcp.blocked);
    }
}

/// Start of an iteration: output for the connections whose ACK the last one held,
/// with whatever their applications wrote since (counted as merged when that is
/// more than the ACK), and for any other connection marked since by a call.
pub(crate) fn flush_held<D: Device>(core: &mut Core, device: &mut D, tx: &mut Burst, now: Instant) {
    if core.tcp.held.is_empty() {
        return;
    }
    let mut held = core::mem::take(&mut core.tcp.held);
    for &id in &held {
        if let Some(Socket::Tcp(sock)) = core.sockets.by_id(id) {
            if let TcpSocketState::Connection(tcb) = &sock.state {
                core.tcp_stats.acks_merged += u64::from(tcb.owes_more_than_ack());
            }
        }
    }
    // They are still marked: the dirty list takes them as they are.
    core.tcp.dirty.append(&mut held);
    core.tcp.held = held;
    process_dirty(core, device, tx, now, false);
}

/// Writes every segment the connection has into TX frames. Returns true when it
/// stopped because no TX frame was free before the next segment was built: that
/// segment (a SYN, data, a FIN, an ACK) was never sent and no timer covers it,
/// so the connection must be polled again.
fn transmit<D: Device>(
    core: &mut Core,
    device: &mut D,
    tx: &mut Burst,
    now: Instant,
    tcb: &mut Tcb,
) -> bool {
    let tuple = tcb.tuple();
    let remote = tuple.remote_addr;
    let offload = core.tx_checksum;
    for _ in 0..SEGMENTS_PER_POLL {
        // Nothing to send: no route, neighbour or frame work at all.
        if !tcb.may_transmit() {
            break;
        }
        let mut out = Outcome::default();
        let result = send_ipv4_ecn(
            core,
            device,
            tx,
            now,
            (Some(tuple.local_addr), remote),
            IpProtocol::Tcp,
            SegmentWriter {
                tcb: &mut *tcb,
                now,
                offload,
                remote,
                out: &mut out,
            },
        );
        core.tcp_stats.payload_moves += u64::from(out.moved);
        if result == Err(Errno::ENOBUFS) && !out.produced {
            return true;
        }
        if result.is_err() {
            core.tcp_stats.tx_blocked += u64::from(out.produced);
            break;
        }
        // Nothing produced, or nothing more to produce (the connection said so: no
        // second `may_transmit` after the usual last segment).
        if !out.produced || out.drained {
            break;
        }
    }
    false
}

/// What writing one segment found, for [`transmit`] (one pointer for the writers to
/// carry, not three).
#[derive(Default)]
struct Outcome {
    /// Set when the connection had a segment.
    produced: bool,
    /// Set when the payload moved (the header's length was not the hint's).
    moved: bool,
    /// Set when the connection surely has nothing more to send (see [`WriteSegment`]).
    drained: bool,
}

/// Writes the connection's next segment into a TX frame (see [`transmit`]).
struct SegmentWriter<'a> {
    tcb: &'a mut Tcb,
    now: Instant,
    offload: TxChecksum,
    remote: Ipv4Addr,
    out: &'a mut Outcome,
}

impl WriteTransport for SegmentWriter<'_> {
    /// Inlined into the send: one segment per call, every segment.
    #[inline(always)]
    fn write(self, buf: &mut [u8], src: Ipv4Addr) -> Result<(usize, Ecn), WireError> {
        let tcb = self.tcb;
        let room = buf
            .len()
            .saturating_sub(MAX_TCP_HEADER)
            .min(usize::from(u16::MAX));
        let at = tcb.data_header_len_hint().min(MAX_TCP_HEADER);
        let header = HeaderWriter {
            at,
            src,
            remote: self.remote,
            offload: self.offload,
            out: self.out,
        };
        // The header is written by the path that built the segment (see
        // `Tcb::poll_transmit_with`).
        tcb.poll_transmit_with(self.now, buf, at..at + room, header)
            .unwrap_or(Ok((0, Ecn::NotEct)))
    }
}

/// Writes a segment's header (and checksum) in front of its payload, which the
/// connection wrote `at` bytes into the transport slice (see [`SegmentWriter`]).
struct HeaderWriter<'a> {
    at: usize,
    src: Ipv4Addr,
    remote: Ipv4Addr,
    offload: TxChecksum,
    out: &'a mut Outcome,
}

impl WriteSegment for HeaderWriter<'_> {
    type Output = Result<(usize, Ecn), WireError>;

    /// Inlined into both output paths of the connection (one segment per call).
    #[inline(always)]
    fn write(self, buf: &mut [u8], t: &Transmit, drained: bool) -> Self::Output {
        let header_len = t.repr.header_len();
        self.finish(buf, header_len, t.payload_len, t.ecn, drained, |header| {
            t.repr.emit(&mut TcpPacket::new_unchecked(header)).map(drop)
        })
    }

    /// The predicted segment's usual header, written straight into the frame.
    #[inline(always)]
    fn write_timestamped(
        self,
        buf: &mut [u8],
        h: &TimestampHeader,
        payload_len: usize,
        ecn: Ecn,
        drained: bool,
    ) -> Self::Output {
        self.finish(
            buf,
            TimestampHeader::LEN,
            payload_len,
            ecn,
            drained,
            |header| {
                h.emit(header.first_chunk_mut().ok_or(WireError::Truncated)?);
                Ok(())
            },
        )
    }
}

impl HeaderWriter<'_> {
    /// Either path's segment: moves the payload if its header is not `at` bytes long,
    /// has `emit` write the header into the frame's first `header_len` bytes, then
    /// computes the checksum (unless offloaded).
    #[inline(always)]
    fn finish(
        self,
        buf: &mut [u8],
        header_len: usize,
        payload_len: usize,
        ecn: Ecn,
        drained: bool,
        emit: impl FnOnce(&mut [u8]) -> Result<(), WireError>,
    ) -> Result<(usize, Ecn), WireError> {
        let at = self.at;
        self.out.produced = true;
        self.out.drained = drained;
        let total = header_len + payload_len;
        if header_len != at && payload_len > 0 {
            // SACK blocks came or went: one move (header_len <= 60, so it fits).
            buf.copy_within(at..at + payload_len, header_len);
            self.out.moved = true;
        }
        emit(&mut buf[..header_len])?;
        if self.offload == TxChecksum::Compute {
            // Both headers leave the checksum field zero.
            crate::wire::tcp::fill_zeroed_checksum(
                buf.get_mut(..total).ok_or(WireError::Truncated)?,
                self.src,
                self.remote,
            )?;
        }
        Ok((total, ecn))
    }
}

/// [`settle`] for a connection whose ACK is held: out of line, so that the one
/// copy inlined into [`process_marked`] is the one after output.
#[inline(never)]
fn settle_held(core: &mut Core, now: Instant, id: SocketId, tcb: Box<Tcb>) {
    settle(core, now, id, tcb);
}

/// After a connection's input, timers or output: re-arm its timer, move a
/// finished handshake to the accept queue, free what has ended; then queue it on the
/// ready list (after the bookkeeping, which may queue its listener first).
///
/// Inlined into the loop after output (every connection marked, every iteration):
/// the call and the box passed into it cost about as much as the common case.
#[inline(always)]
fn settle(core: &mut Core, now: Instant, id: SocketId, tcb: Box<Tcb>) {
    let state = tcb.state();
    if state == State::TimeWait && teardown::enter_time_wait(core, now, id, &tcb) {
        core.queue_ready(id);
        return;
    }
    let deadline = tcb.poll_at();
    let Some(Socket::Tcp(sock)) = core.sockets.by_id_mut(id) else {
        core.queue_ready(id);
        return;
    };
    // The connection left `Closed` in its place when it was taken out: putting it
    // back has nothing to drop (no call to the state's drop glue per segment sent).
    let left = core::mem::replace(&mut sock.state, TcpSocketState::Connection(tcb));
    if matches!(left, TcpSocketState::Closed) {
        core::mem::forget(left);
    } else {
        drop(left);
    }
    timers::rearm(&mut core.tcp, sock, id, deadline, now);
    let parent = sock.parent;
    let queued = sock.queued_for_accept;
    if state == State::TimeWait {
        let _ = core.tcp.binds.enter_time_wait(id);
    }
    match state {
        State::Closed => {
            teardown::connection_closed(core, id);
            core.queue_ready(id);
        }
        State::Established | State::CloseWait if !queued && parent.is_some() => {
            if let Some(parent) = parent {
                listener::handshake_done(core, parent, id);
            }
            core.queue_ready(id);
        }
        // The common case: the socket is still at hand, no second lookup.
        _ => sock.ready.queue(&mut core.ready, id),
    }
}

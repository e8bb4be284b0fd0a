//! Segment output: SYNs, data (segmentation by MSS, send window, congestion window, Nagle,
//! sender-side SWS avoidance), retransmissions, probes and ACKs.

use super::State;
use super::ecn::Ecn;
use super::rate::RateSnapshot;
use super::seq::SeqNumber;
use super::tcb::{Frto, Probe, TailProbe, Tcb};
use crate::time::Instant;
use crate::wire::tcp::TimestampHeader;
use crate::wire::{TcpFlags, TcpOptions, TcpRepr};

mod predicted;

/// One segment to send: the header and how many payload bytes were written beside it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Transmit {
    /// The header and options.
    pub repr: TcpRepr,
    /// Payload bytes written at the start of the caller's buffer.
    pub payload_len: usize,
    /// The ECN field for the IP header (RFC 3168: ECT(0) on new data of an ECN connection).
    pub ecn: Ecn,
}

/// What writes a segment's header around its payload for
/// [`Tcb::poll_transmit_with`]. A trait rather than a closure: its `write` is inlined
/// into both paths (a closure called from two places is left out of line, and the
/// segment with it).
pub(crate) trait WriteSegment {
    /// What `write` returns.
    type Output;
    /// Writes the segment `t` into `frame`, whose payload is already in place.
    /// `drained`: the connection surely has nothing more to send after it (the
    /// predicted segment that took the last unsent byte), so a caller need not ask
    /// [`Tcb::may_transmit`] again; false when unknown.
    fn write(self, frame: &mut [u8], t: &Transmit, drained: bool) -> Self::Output;

    /// [`write`](Self::write) for the predicted segment whose header is the usual one
    /// (timestamps, no SACK blocks; see [`TimestampHeader`]): `payload_len` bytes of
    /// payload, IP ECN field `ecn`. Unless overridden, the same as `write` for that
    /// header as a [`Transmit`].
    #[inline(always)]
    fn write_timestamped(
        self,
        frame: &mut [u8],
        h: &TimestampHeader,
        payload_len: usize,
        ecn: Ecn,
        drained: bool,
    ) -> Self::Output
    where
        Self: Sized,
    {
        let t = Transmit {
            repr: h.to_repr(),
            payload_len,
            ecn,
        };
        self.write(frame, &t, drained)
    }
}

/// [`WriteSegment`] for [`Tcb::poll_transmit`]: the segment itself.
struct TakeSegment;

impl WriteSegment for TakeSegment {
    type Output = Transmit;
    #[inline(always)]
    fn write(self, _: &mut [u8], t: &Transmit, _: bool) -> Transmit {
        *t
    }
}

impl Tcb {
    /// The next segment to send, if any. Its payload is written into `payload_out` (give
    /// room for one MSS). Call repeatedly until `None` after every input, timeout or user call.
    #[inline]
    pub fn poll_transmit(&mut self, now: Instant, payload_out: &mut [u8]) -> Option<Transmit> {
        let room = 0..payload_out.len();
        self.poll_transmit_with(now, payload_out, room, TakeSegment)
    }

    /// [`poll_transmit`](Self::poll_transmit) for a caller that builds the frame around
    /// the payload: the payload is written into `frame[payload]`, then `write` gets the
    /// frame and the segment (to write its header) and its result is returned.
    ///
    /// Inlined into the caller with the predicted segment's short path
    /// (`output/predicted.rs`); anything else goes the general path, out of line. The
    /// predicted segment's usual header (timestamps alone) reaches `write` as its fields,
    /// without a copy through a slot the paths share (about 70 instructions) and without
    /// a [`TcpRepr`] to fill and read back (about 60 per echo).
    #[inline(always)]
    pub(crate) fn poll_transmit_with<W: WriteSegment>(
        &mut self,
        now: Instant,
        frame: &mut [u8],
        payload: core::ops::Range<usize>,
        write: W,
    ) -> Option<W::Output> {
        // Two calls of `write`: the predicted segment's usual header, from its fields,
        // and any other segment as a `Transmit` (the general path's, and the predicted
        // one's with SACK blocks or without timestamps: one call, kept inline, so that
        // `write` need not be put in memory for an out-of-line one, some 14 per segment).
        let mut drained = false;
        let t = 'general: {
            if !self.predicts_transmit() {
                break 'general self.poll_transmit_general(now, &mut frame[payload])?;
            }
            #[cfg(debug_assertions)]
            let may = self.may_transmit();
            let snd_max = self.snd_max;
            let Some((seq, n, flags)) = self.emit_predicted(now, &mut frame[payload.clone()])
            else {
                break 'general self.poll_transmit_general(now, &mut frame[payload])?;
            };
            #[cfg(debug_assertions)]
            debug_assert!(may, "may_transmit said no, but sent {n} bytes");
            // PSH: the segment took the last unsent byte (`data_flags`). Then
            // nothing else is owed: the prediction ruled out a reset, FIN, probe,
            // retransmission and forced send, and the header carried the ACK; the
            // caller's next `may_transmit` (some 35 instructions) would say no.
            // (ECN marks add only CWR and ECE.)
            drained = flags.contains(TcpFlags::PSH);
            if !self.header_is_timestamped() {
                break 'general self.predicted_any(now, (seq, n, flags), snd_max);
            }
            // The usual header: written straight into the frame, without a
            // `TcpRepr` to fill and read back.
            let mut h = self.timestamp_header(now, seq, flags);
            let mut ecn = Ecn::NotEct;
            self.count_transmit_parts(&mut h.flags, &mut ecn, seq, n, snd_max);
            debug_assert!(
                !drained || !self.may_transmit(),
                "drained, but may_transmit says yes after {h:?}"
            );
            return Some(write.write_timestamped(frame, &h, n, ecn, drained));
        };
        Some(write.write(frame, &t, drained))
    }

    /// The predicted segment `(seq, payload length, flags)` with any other header (SACK
    /// blocks, or no timestamps): built as a [`Transmit`], out of line. `snd_max`: from
    /// before the segment was built.
    #[cold]
    #[inline(never)]
    fn predicted_any(
        &mut self,
        now: Instant,
        (seq, n, flags): (SeqNumber, usize, TcpFlags),
        snd_max: SeqNumber,
    ) -> Transmit {
        let mut t = Transmit {
            repr: self.header(now, seq, flags),
            payload_len: n,
            ecn: Ecn::NotEct,
        };
        self.count_transmit(&mut t, snd_max);
        let drained = flags.contains(TcpFlags::PSH);
        debug_assert!(
            !drained || !self.may_transmit(),
            "drained, but may_transmit says yes after {t:?}"
        );
        t
    }

    /// [`poll_transmit`](Self::poll_transmit) on the general path.
    #[inline(never)]
    fn poll_transmit_general(&mut self, now: Instant, payload_out: &mut [u8]) -> Option<Transmit> {
        #[cfg(debug_assertions)]
        let may = self.may_transmit();
        let snd_max = self.snd_max;
        let mut t = self.next_transmit(now, payload_out);
        // Every test checks the shortcut callers take: no segment it ruled out.
        #[cfg(debug_assertions)]
        debug_assert!(t.is_none() || may, "may_transmit said no, but {t:?}");
        if let Some(t) = &mut t {
            self.count_transmit(t, snd_max);
        }
        t
    }

    /// The last touches of every segment leaving, on either path: its ECN marks
    /// (`snd_max` from before it was built) and the counters.
    #[inline(always)]
    fn count_transmit(&mut self, t: &mut Transmit, snd_max: SeqNumber) {
        let seq = SeqNumber(t.repr.seq_number);
        self.count_transmit_parts(&mut t.repr.flags, &mut t.ecn, seq, t.payload_len, snd_max);
    }

    /// [`count_transmit`](Self::count_transmit) for a segment's parts (see
    /// [`ecn_marks`](Self::ecn_marks)).
    #[inline(always)]
    fn count_transmit_parts(
        &mut self,
        flags: &mut TcpFlags,
        ecn: &mut Ecn,
        seq: SeqNumber,
        payload_len: usize,
        snd_max: SeqNumber,
    ) {
        self.ecn_marks(flags, ecn, seq, payload_len, snd_max);
        self.stats.segs_out += 1;
        if flags.contains(TcpFlags::RST) {
            self.stats.rsts_out += 1;
        }
    }

    /// The header length (with options) that the next data segment most likely gets: 20
    /// bytes plus the timestamps option when it is on; with out-of-order data held (SACK
    /// blocks, whose count varies) the largest header, 60. A caller writes the payload
    /// this far into the frame, so the header usually fits in front of it with no move.
    pub fn data_header_len_hint(&self) -> usize {
        if self.sack_ok && !self.ooo.is_empty() {
            return 60;
        }
        let mut options = TcpOptions::default();
        if self.ts_enabled {
            options.timestamp = Some((0, 0));
        }
        20 + options.emitted_len()
    }

    /// [`may_transmit`](Self::may_transmit)'s answer for an ESTABLISHED connection with no
    /// RST pending (the ACK asked for, or more); `None` in any other case. Shared with the
    /// engine's settling after input, which asks only this branch.
    #[inline(always)]
    pub(super) fn established_owes(&self) -> Option<bool> {
        (self.state == State::Established && self.pending_rst.is_none())
            .then(|| self.ack_now || self.owes_more_than_ack())
    }

    /// Whether [`poll_transmit`](Self::poll_transmit) might produce a segment now:
    /// false only when it surely would not (nothing queued, unsent, unacknowledged
    /// or asked for), so a caller can skip preparing a frame. Mirrors the branches
    /// of `next_transmit`; when unsure it says yes. (Asked before and after every
    /// segment: ESTABLISHED is told first, by one compare instead of the match's table.)
    #[inline]
    pub fn may_transmit(&self) -> bool {
        if let Some(owed) = self.established_owes() {
            return owed;
        }
        if self.pending_rst.is_some() {
            return true;
        }
        match self.state {
            State::Closed | State::Listen => false,
            State::SynSent => self.syn_pending,
            State::SynReceived => self.syn_pending || self.ack_now,
            State::TimeWait => self.ack_now,
            _ => self.ack_now || self.owes_more_than_ack(),
        }
    }

    /// Whether the one segment owed now is a pure ACK of in-order data the
    /// application has not read yet, with nothing else to send: a request its
    /// answer may follow within microseconds. The engine holds such an ACK until
    /// the start of its next iteration, so that the answer, written meanwhile,
    /// carries it (one frame instead of two; Linux gets the same from its delayed
    /// ACK). Out-of-order data, duplicates, window updates, FINs and loss
    /// signals are never held. (ESTABLISHED excludes FINs: one received or one
    /// queued by a close or shutdown moves the connection out of it.)
    pub fn ack_may_wait(&self) -> bool {
        self.ack_now
            && self.state == State::Established
            && self.pending_rst.is_none()
            && !self.recv_buf.is_empty()
            && self.ooo.is_empty()
            && !self.owes_more_than_ack()
    }

    /// Whether a synchronized connection owes more than a pure ACK: a retransmission,
    /// a probe, unsent data or a FIN (see [`ack_may_wait`](Self::ack_may_wait)).
    ///
    /// Unsent data, the usual yes, is asked first. The usual no (the settling after
    /// every segment received that leaves nothing to send, some 37,000 times per 20,000
    /// echoes) is told by one OR of the flags each other answer needs, without
    /// branches or the configuration pointer (the chain of tests, out of line, cost
    /// about 30 instructions a call); only when one is set does
    /// `owes_more_than_ack_rare` work out the answer.
    #[inline(always)]
    pub fn owes_more_than_ack(&self) -> bool {
        if self.send_buf.len() > self.snd_nxt.since(self.snd_buf_start) as usize {
            return true;
        }
        let maybe = self.retransmit_head
            | self.tlp_pending.is_some()
            | self.probe.is_some()
            | self.force_send
            | self.fin_queued
            | self.sent.has_lost_to_send();
        maybe && self.owes_more_than_ack_rare()
    }

    /// [`owes_more_than_ack`](Self::owes_more_than_ack) with no unsent data and one of
    /// its flags set: the full test.
    #[cold]
    #[inline(never)]
    fn owes_more_than_ack_rare(&self) -> bool {
        self.retransmit_head
            || self.tlp_pending.is_some()
            || self.probe.is_some()
            || self.force_send
            || (self.fin_queued && self.snd_nxt <= self.fin_seq())
            || (self.rack_mode() && self.sent.has_lost_to_send())
    }

    fn next_transmit(&mut self, now: Instant, out: &mut [u8]) -> Option<Transmit> {
        if let Some(rst) = self.pending_rst.take() {
            return Some(Transmit {
                repr: *rst,
                payload_len: 0,
                ecn: Ecn::NotEct,
            });
        }
        match self.state {
            State::Closed | State::Listen => None,
            State::SynSent => self.syn_pending.then(|| self.emit_syn(now, false)),
            State::SynReceived if self.syn_pending => Some(self.emit_syn(now, true)),
            State::SynReceived | State::TimeWait => self.ack_now.then(|| self.emit_ack(now)),
            _ => self.transmit_synchronized(now, out),
        }
    }

    /// SYN (active open) or SYN-ACK (passive or simultaneous open), RFC 9293 §3.5.
    fn emit_syn(&mut self, now: Instant, with_ack: bool) -> Transmit {
        let window = u16::try_from(self.recv_buf.capacity().min(65535)).unwrap_or(u16::MAX);
        let mut options = TcpOptions {
            mss: Some(self.cfg.mss),
            ..TcpOptions::default()
        };
        if with_ack {
            // RFC 7323 §1.3 / RFC 2018 §2: answer only what the peer offered.
            if self.wscale_ok {
                options.window_scale = Some(self.rcv_wscale);
            }
            options.sack_permitted = self.sack_ok;
            if self.ts_enabled {
                options.timestamp = Some((self.ts_now(now), self.ts_recent));
            }
            self.rcv_adv = self.rcv_adv.max_seq(self.rcv_nxt + u32::from(window));
            self.last_ack_sent = self.rcv_nxt;
            self.ack_now = false;
        } else {
            if self.cfg.window_scaling {
                options.window_scale = Some(self.cfg.recv_window_shift());
            }
            options.sack_permitted = self.cfg.sack;
            if self.cfg.timestamps {
                options.timestamp = Some((self.ts_now(now), 0));
            }
        }
        let mut flags = TcpFlags::SYN;
        if with_ack {
            flags |= TcpFlags::ACK;
            // RFC 3168 §6.1.1: an ECN-setup SYN-ACK carries ECE only.
            if self.ecn_ok {
                flags |= TcpFlags::ECE;
            }
        } else if self.cfg.ecn {
            // RFC 3168 §6.1.1: an ECN-setup SYN carries ECE and CWR.
            flags |= TcpFlags::ECE | TcpFlags::CWR;
        }
        self.syn_pending = false;
        self.snd_nxt = self.snd_nxt.max_seq(self.iss + 1u32);
        self.snd_max = self.snd_max.max_seq(self.snd_nxt);
        // RFC 6298 §5.1 / Karn: time only the first transmission.
        self.rtt_sample = (self.backoff == 0).then_some((self.iss + 1u32, now));
        self.rto_deadline = Some(now + self.rtt.backed_off(self.backoff));
        if self.backoff > 0 {
            self.stats.retransmits += 1;
        }
        let repr = TcpRepr {
            src_port: self.tuple.local_port,
            dst_port: self.tuple.remote_port,
            seq_number: self.iss.0,
            ack_number: if with_ack { self.rcv_nxt.0 } else { 0 },
            flags,
            window_len: window,
            urgent_pointer: 0,
            options,
        };
        Transmit {
            repr,
            payload_len: 0,
            ecn: Ecn::NotEct,
        }
    }

    fn transmit_synchronized(&mut self, now: Instant, out: &mut [u8]) -> Option<Transmit> {
        self.restart_after_idle(now);
        if self.rack_mode() {
            // RFC 6675 §5 NextSeg rule 1: lost segments go first.
            if let Some((repr, payload_len)) = self.emit_lost(now, out) {
                return Some(Transmit {
                    repr,
                    payload_len,
                    ecn: Ecn::NotEct,
                });
            }
            if let Some(kind) = self.tlp_pending.take() {
                let mss = self.snd_mss;
                let t = match kind {
                    TailProbe::NewData => self.emit_data(now, out, mss).inspect(|_| {
                        self.tlp_end = Some((self.snd_max, false));
                        self.tlp_deadline = None;
                    }),
                    TailProbe::Retransmit => None,
                };
                let t = t.or_else(|| {
                    self.emit_probe_retransmission(now, out)
                        .map(|(repr, payload_len)| Transmit {
                            repr,
                            payload_len,
                            ecn: Ecn::NotEct,
                        })
                });
                if t.is_some() {
                    return t;
                }
            }
        } else if self.retransmit_head {
            self.retransmit_head = false;
            if let Some(t) = self.emit_head_retransmission(now, out) {
                return Some(t);
            }
        }
        if let Some(probe) = self.probe.take() {
            match probe {
                Probe::Window => self.stats.window_probes += 1,
                Probe::Keepalive => self.stats.keepalive_probes += 1,
            }
            // RFC 9293 §3.8.6.1 / RFC 1122 §4.2.3.6: SEG.SEQ = SND.UNA - 1 elicits an ACK.
            let repr = self.header(now, self.snd_una - 1u32, TcpFlags::ACK);
            return Some(Transmit {
                repr,
                payload_len: 0,
                ecn: Ecn::NotEct,
            });
        }
        if let Some(t) = self.emit_data(now, out, 0) {
            return Some(t);
        }
        if self.ack_now {
            return Some(self.emit_ack(now));
        }
        None
    }

    fn emit_ack(&mut self, now: Instant) -> Transmit {
        if self.delack_fired {
            self.stats.delayed_acks += 1;
        }
        // BSD tcp_output: while going back N after a timeout snd_nxt is not the first unsent
        // octet; a pure ACK carries snd_max so that the peer finds it inside its window.
        let repr = self.header(now, self.snd_max, TcpFlags::ACK);
        Transmit {
            repr,
            payload_len: 0,
            ecn: Ecn::NotEct,
        }
    }

    /// New data or FIN (or go-back-N retransmission after an RTO); `extra` bytes may go
    /// beyond the congestion window (a tail loss probe, F-RTO's new segments).
    fn emit_data(&mut self, now: Instant, out: &mut [u8], extra: u32) -> Option<Transmit> {
        if !matches!(
            self.state,
            State::Established
                | State::CloseWait
                | State::FinWait1
                | State::Closing
                | State::LastAck
        ) {
            return None;
        }
        let offset = self.snd_nxt.since(self.snd_buf_start) as usize;
        let buffered = self.send_buf.len();
        let unsent = buffered.saturating_sub(offset);
        let sack_recovery = self.rack_mode();
        if sack_recovery && !self.sent.has_room() {
            return None;
        }
        let frto_extra = match self.frto {
            Some(Frto::NewDataSent { allowance }) if allowance > 0 => self.snd_mss,
            _ => 0,
        };
        let (flight, cwnd, usable, window) = self.send_room(sack_recovery, extra.max(frto_extra));
        let mss = self.snd_mss as usize;
        let mut len = unsent.min(mss).min(usable).min(out.len());
        let retransmission = self.snd_nxt < self.snd_max;
        let force = core::mem::take(&mut self.force_send);
        if len > 0 {
            let fin_follows = self.fin_queued && len == unsent;
            if !self.send_ok(len, unsent, flight, retransmission || force, fin_follows) {
                len = 0;
            }
        }
        let fin = self.fin_queued && offset + len == buffered && self.snd_nxt <= self.fin_seq();
        let fin = fin && (len > 0 || unsent == 0);
        if len == 0 && !fin {
            if unsent > 0 && (cwnd.saturating_sub(flight) as usize) < unsent.min(mss) {
                // Data waits on the congestion window.
                self.validate_cwnd(true);
            }
            if unsent == 0 && usable > 0 {
                // The window had room and the application had nothing: app-limited.
                self.app_limited_now = true;
            }
            if sack_recovery && unsent < mss && flight < cwnd && !self.sent.has_lost_to_send() {
                // Draft-cheng §3.4: less than a segment to send and room in the window.
                if let Some(s) = &mut self.sender {
                    s.rate.mark_app_limited(flight);
                }
            }
            self.maybe_arm_persist(now, unsent);
            return None;
        }
        if !retransmission && self.paced(now) {
            // Held back until the release time (`poll_at`); a forced send stays forced.
            self.force_send = force;
            return None;
        }
        let seq = self.snd_nxt;
        let n = self.send_buf.peek_at(offset, &mut out[..len]);
        let flags = data_flags(offset + n == buffered && n > 0, fin);
        self.commit_data(now, seq, n, fin, retransmission, sack_recovery, window);
        let repr = self.header(now, seq, flags);
        Some(Transmit {
            repr,
            payload_len: n,
            ecn: Ecn::NotEct,
        })
    }

    /// RFC 5681 §4.1: restart window after an idle period longer than the RTO. (Asked
    /// before every data segment; idempotent: a restart makes `last_send` now.)
    #[inline(always)]
    fn restart_after_idle(&mut self, now: Instant) {
        if self.cfg.slow_start_after_idle
            && self.snd_una == self.snd_max
            && self.unsent() > 0
            && idle_longer_than(now.micros_since(self.last_send), self.rtt.rto_nanos())
        {
            let iw = self.cfg.initial_window.max(1).saturating_mul(self.snd_mss);
            self.cc.on_idle_restart(iw);
            self.last_send = now;
        }
    }

    /// What the windows let out from SND.NXT: the bytes in flight, the congestion window
    /// plus what may go beyond it (limited transmit, `extra`), the usable room under both
    /// windows, and the congestion window itself (asked once: a virtual call).
    #[inline(always)]
    fn send_room(&self, sack_recovery: bool, extra: u32) -> (u32, u32, usize, u32) {
        // RFC 6675 §5: with SACK, the window limits `pipe` rather than everything outstanding.
        let (flight, window_used) = if sack_recovery {
            (self.pipe(), self.snd_nxt.since(self.snd_una))
        } else {
            let f = self.snd_nxt.since(self.snd_una);
            (f, f)
        };
        // RFC 3042 limited transmit (RFC 5681 §3.2): the first two duplicate ACKs each let one
        // new segment out beyond cwnd, so small windows still collect three duplicates. (With
        // SACK, `pipe` already excludes what the duplicates reported.)
        let limited = if !sack_recovery
            && !self.in_recovery
            && self.snd_nxt == self.snd_max
            && self.dup_acks <= 2
        {
            self.dup_acks * self.snd_mss
        } else {
            0
        };
        let window = self.cc.window();
        let cwnd = window.saturating_add(limited).saturating_add(extra);
        let usable = (self.snd_wnd.saturating_sub(window_used) as usize)
            .min(cwnd.saturating_sub(flight) as usize);
        (flight, cwnd, usable, window)
    }

    /// RFC 1122 §4.2.3.4 sender SWS avoidance, with Nagle (RFC 896) for the "all queued
    /// data" case: may `len` of the `unsent` bytes go now? `override_rules`: a
    /// retransmission or a forced send; a FIN segment bypasses Nagle as in Linux.
    #[inline(always)]
    fn send_ok(
        &self,
        len: usize,
        unsent: usize,
        flight: u32,
        override_rules: bool,
        fin_follows: bool,
    ) -> bool {
        len == self.snd_mss as usize
            || override_rules
            || (len == unsent && (self.cfg.nodelay || flight == 0 || fin_follows))
            || (self.max_snd_wnd > 0 && len >= (self.max_snd_wnd / 2) as usize)
    }

    /// The bookkeeping of a data segment `[seq, seq + n)` (and a FIN) going out: SND.NXT and
    /// SND.MAX, the byte counter and the RTT sample, the pacer, cwnd validation (against
    /// `window`, the congestion window `send_room` read), the retransmission queue and
    /// recovery counters, and the timers.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn commit_data(
        &mut self,
        now: Instant,
        seq: SeqNumber,
        n: usize,
        fin: bool,
        retransmission: bool,
        sack_recovery: bool,
        window: u32,
    ) {
        self.snd_nxt = seq + n + u32::from(fin);
        if self.snd_nxt > self.snd_max {
            let fresh = self
                .snd_nxt
                .since(self.snd_max.max_seq(seq))
                .saturating_sub(u32::from(fin));
            self.stats.bytes_out += u64::from(fresh);
            self.snd_max = self.snd_nxt;
            if !self.ts_enabled && self.rtt_sample.is_none() && !retransmission {
                self.rtt_sample = Some((self.snd_nxt, now));
            }
        }
        if let Some(s) = &mut self.sender {
            s.pacer.on_sent(now, self.snd_nxt.since(seq), self.snd_mss);
        }
        if !retransmission {
            self.validate_cwnd_with(false, window);
        }
        if retransmission {
            self.stats.retransmits += 1;
        } else if sack_recovery {
            let nothing_in_flight = seq == self.snd_una;
            // The sampler runs for an algorithm that reads rate samples (BBR), or once the
            // sender model exists anyway (pacing); CUBIC and NewReno skip it.
            let snapshot = if self.sender.is_some() || self.cc_uses_rate_samples() {
                self.sender_model(now).rate.on_sent(now, nothing_in_flight)
            } else {
                RateSnapshot::default()
            };
            self.sent.push(seq, self.snd_nxt, fin, now, snapshot);
            self.on_recovery_send(self.snd_nxt.since(seq));
            if let Some(Frto::NewDataSent { allowance }) = &mut self.frto {
                *allowance = allowance.saturating_sub(1);
            }
        }
        self.after_send(now);
        if sack_recovery && !retransmission {
            // RFC 8985 §7.2: restart the probe timer after new data. `sack_recovery` is
            // `rack_mode()` (read once by the caller): the configuration is not read again.
            self.arm_tail_probe_with(now, true);
        }
    }

    /// Fast retransmit / NewReno partial-ACK retransmission of the segment at SND.UNA.
    fn emit_head_retransmission(&mut self, now: Instant, out: &mut [u8]) -> Option<Transmit> {
        if self.snd_una == self.snd_max {
            return None;
        }
        let offset = self.snd_una.since(self.snd_buf_start) as usize;
        let buffered = self.send_buf.len();
        let in_flight_data =
            (self.snd_max.since(self.snd_una) as usize).min(buffered.saturating_sub(offset));
        let len = in_flight_data.min(self.snd_mss as usize).min(out.len());
        let fin = self.fin_queued && offset + len == buffered && self.snd_max > self.fin_seq();
        if len == 0 && !fin {
            return None;
        }
        let n = self.send_buf.peek_at(offset, &mut out[..len]);
        let mut flags = TcpFlags::ACK;
        if fin {
            flags |= TcpFlags::FIN;
        }
        let seq = self.snd_una;
        self.snd_nxt = self.snd_nxt.max_seq(seq + n + u32::from(fin));
        self.stats.retransmits += 1;
        self.after_send(now);
        let repr = self.header(now, seq, flags);
        Some(Transmit {
            repr,
            payload_len: n,
            ecn: Ecn::NotEct,
        })
    }

    /// Linux `tcp_cwnd_validate`: remembers, per window of data, whether the congestion
    /// window limited the sender and otherwise the most bytes in flight. Limited: data
    /// waits on the window (`waiting_on_cwnd`), or, as Linux's `tcp_write_xmit` judges
    /// after sending, the flight has reached it.
    fn validate_cwnd(&mut self, waiting_on_cwnd: bool) {
        self.validate_cwnd_with(waiting_on_cwnd, self.cc.window());
    }

    /// [`validate_cwnd`](Self::validate_cwnd) with the congestion window already read.
    #[inline(always)]
    fn validate_cwnd_with(&mut self, waiting_on_cwnd: bool, window: u32) {
        let flight = self.snd_nxt.since(self.snd_una);
        let limited = waiting_on_cwnd || flight >= window;
        if self.snd_una >= self.cwnd_usage_seq
            || limited
            || (!self.cwnd_limited && flight > self.max_flight)
        {
            self.cwnd_limited = limited;
            self.max_flight = flight;
            self.cwnd_usage_seq = self.snd_nxt;
        }
    }

    /// Linux `tcp_is_cwnd_limited`; RFC 9438 §5.8 and RFC 7661: the congestion window
    /// grows only while the sender uses it: limited by it in the current window of
    /// data, or, in slow start, below twice the most bytes in flight (so a sender that
    /// filled it keeps doubling). An application-limited connection (request/response,
    /// a trickle) keeps its window instead of inflating it ACK by ACK.
    ///
    /// Inlined into its two callers on the ACK path, and `cwnd_limited` tested before the
    /// controller is asked anything (the `match` on the algorithm costs a load and a jump).
    #[inline]
    pub(super) fn cwnd_may_grow(&self) -> bool {
        if self.cwnd_limited {
            return true;
        }
        let cwnd = self.cc.window();
        cwnd < self.cc.ssthresh() && u64::from(cwnd) < 2 * u64::from(self.max_flight)
    }

    pub(super) fn after_send(&mut self, now: Instant) {
        if self.rto_deadline.is_none() {
            self.rto_deadline = Some(now.add_nanos(self.rtt.backed_off_nanos(self.backoff)));
        }
        if self.progress_since.is_none() {
            self.progress_since = Some(now);
        }
        self.persist_deadline = None;
        self.last_send = now;
    }

    /// RFC 9293 §3.8.6.1: with data waiting, nothing in flight and no usable window, probe.
    /// "Nothing in flight" is SND.NXT = SND.UNA, not SND.MAX: after an RTO's go-back-N
    /// pulled SND.NXT back, a zero window keeps the retransmission from going out, so no
    /// RTO is armed either, and without the probe a lost window update would leave the
    /// connection waiting forever.
    fn maybe_arm_persist(&mut self, now: Instant, unsent: usize) {
        if unsent > 0 && self.snd_una == self.snd_nxt && self.persist_deadline.is_none() {
            self.persist_deadline = Some(now + self.rtt.backed_off(self.persist_backoff));
            if self.progress_since.is_none() {
                self.progress_since = Some(now);
            }
        }
    }

    /// A header from SND/RCV state: ACK number, window, timestamps, SACK blocks. Sending it
    /// counts as acknowledging everything received so far. Inlined into its five callers
    /// (one header per segment): no call, and no copy of the header it returns.
    #[inline(always)]
    pub(super) fn header(&mut self, now: Instant, seq: SeqNumber, flags: TcpFlags) -> TcpRepr {
        let window_len = self.advertise_window();
        let mut options = TcpOptions::default();
        if self.ts_enabled {
            options.timestamp = Some((self.ts_now(now), self.ts_recent));
        }
        if self.sack_blocks_due() {
            // RFC 2018 §3: three blocks fit beside the timestamps option, four without it.
            let max = if self.ts_enabled { 3 } else { 4 };
            options.sack_blocks = self.ooo.sack_blocks(max);
        }
        self.header_sent();
        TcpRepr {
            src_port: self.tuple.local_port,
            dst_port: self.tuple.remote_port,
            seq_number: seq.0,
            ack_number: self.rcv_nxt.0,
            flags,
            window_len,
            urgent_pointer: 0,
            options,
        }
    }

    /// Whether [`header`](Self::header) adds SACK blocks (RFC 2018 §4: out-of-order data
    /// held).
    #[inline(always)]
    fn sack_blocks_due(&self) -> bool {
        self.sack_ok && !self.ooo.is_empty()
    }

    /// Whether [`header`](Self::header)'s options are the timestamps alone, the header
    /// [`timestamp_header`](Self::timestamp_header) builds.
    #[inline(always)]
    fn header_is_timestamped(&self) -> bool {
        self.ts_enabled && !self.sack_blocks_due()
    }

    /// [`header`](Self::header) when [`header_is_timestamped`](Self::header_is_timestamped)
    /// (the usual header of an established connection): the same fields and effects, as a
    /// [`TimestampHeader`] the caller writes straight into the frame.
    #[inline(always)]
    fn timestamp_header(
        &mut self,
        now: Instant,
        seq: SeqNumber,
        flags: TcpFlags,
    ) -> TimestampHeader {
        debug_assert!(self.header_is_timestamped());
        let window_len = self.advertise_window();
        let tsval = self.ts_now(now);
        self.header_sent();
        TimestampHeader {
            src_port: self.tuple.local_port,
            dst_port: self.tuple.remote_port,
            seq_number: seq.0,
            ack_number: self.rcv_nxt.0,
            flags,
            window_len,
            tsval,
            tsecr: self.ts_recent,
        }
    }

    /// A header was built: sending it acknowledges everything received so far (no ACK
    /// owed or delayed any more).
    #[inline(always)]
    fn header_sent(&mut self) {
        self.ack_now = false;
        self.delack_deadline = None;
        self.delack_fired = false;
        self.unacked_bytes = 0;
        self.last_ack_sent = self.rcv_nxt;
    }

    /// The window field to send (RFC 7323 §2.3 scaled) with receiver SWS avoidance
    /// (RFC 1122 §4.2.3.3); the advertised right edge never moves left (RFC 9293 §3.8.6.2.2).
    fn advertise_window(&mut self) -> u16 {
        let avail = self.receive_space();
        let cur = self.rcv_adv.since(self.rcv_nxt);
        let wnd = if avail >= cur.saturating_add(self.sws_threshold()) {
            avail
        } else {
            cur
        };
        let field = scaled_window_field(wnd, self.rcv_wscale);
        let promised = u32::try_from(field << self.rcv_wscale).unwrap_or(u32::MAX);
        self.rcv_adv = self.rcv_adv.max_seq(self.rcv_nxt + promised);
        u16::try_from(field).unwrap_or(u16::MAX)
    }
}

/// The flags of a data segment: ACK, PSH on the one that empties the send queue (as
/// BSD's `tcp_output`), FIN when it carries ours.
#[inline(always)]
fn data_flags(empties_queue: bool, fin: bool) -> TcpFlags {
    let mut flags = TcpFlags::ACK;
    if empties_queue {
        flags |= TcpFlags::PSH;
    }
    if fin {
        flags |= TcpFlags::FIN;
    }
    flags
}

/// `Duration::from_micros(idle_micros) > Duration::from_nanos(nanos)`, in integers (asked
/// before every segment of new data after the last one was acknowledged).
fn idle_longer_than(idle_micros: u64, nanos: u64) -> bool {
    idle_micros
        .checked_mul(1000)
        .is_none_or(|idle| idle > nanos)
}

/// The window field for `wnd` bytes with shift `shift` (RFC 7323 §2.3), rounded down to
/// whole units, so what the field says never exceeds what the ring can hold. Autotuning
/// picks the shift for the maximum buffer (128-byte units at 6 MiB); rounding up let a full
/// ring keep promising bytes it then dropped, and the zero window a slow reader needs
/// never came. Keeping an old promise this way can make the edge the field shows retreat
/// by less than one unit, which RFC 7323 appendix F allows for (Linux's
/// `tcp_shrink_window`); `rcv_adv` keeps the edge promised before, and data up to it is
/// still accepted (RFC 9293 §3.8.6.2.2).
pub(super) fn scaled_window_field(wnd: u32, shift: u8) -> u64 {
    (u64::from(wnd) >> shift).min(65535)
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::time::Duration;

    #[test]
    fn idle_longer_than_is_the_duration_compare() {
        for idle in [
            0,
            1,
            999,
            200_000,
            u64::MAX / 1000,
            u64::MAX / 1000 + 1,
            u64::MAX,
        ] {
            for nanos in [0, 1_000, 200_000_000, 200_000_001, u64::MAX] {
                assert_eq!(
                    idle_longer_than(idle, nanos),
                    Duration::from_micros(idle) > Duration::from_nanos(nanos),
                    "{idle} {nanos}"
                );
            }
        }
    }
}

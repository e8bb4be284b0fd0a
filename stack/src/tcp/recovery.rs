//! SACK-based loss recovery for peers that negotiated SACK: the scoreboard (RFC 2018, RFC
//! 2883, RFC 6675), RACK-TLP loss detection (RFC 8985), Proportional Rate Reduction during
//! recovery (RFC 6937) and F-RTO after a timeout (RFC 5682).
//!
//! The connection enters recovery when RACK marks a segment lost, retransmits lost segments
//! first (RFC 6675 NextSeg rule 1) while `pipe` < cwnd, and leaves recovery once SND.UNA passes
//! the highest sequence number sent when it began (RFC 6675 §5 `RecoveryPoint`).

use super::congestion::{AckSample, RecoveryState};
use super::rack::Rack;
use super::rate::RateSnapshot;
use super::sent::SentSegment;
use super::seq::SeqNumber;
use super::tcb::{Frto, TailProbe, Tcb};
use crate::time::Instant;
use crate::wire::{TcpFlags, TcpRepr};
use core::cell::Cell;
use core::time::Duration;

/// RFC 8985 §7.2 WCDelAckT: the worst-case delayed-ACK time a lone segment may wait.
const WORST_CASE_DELAYED_ACK: Duration = Duration::from_millis(200);

/// Added to the probe timeout, as Linux's TCP_TIMEOUT_MIN (2 ms): timer granularity and ACK
/// processing at the peer would otherwise make a sub-millisecond PTO fire before the ACK.
const PTO_SLACK: Duration = Duration::from_millis(2);

/// F-RTO (RFC 5682 §3.1 step 2b): new segments sent to probe a timeout.
const FRTO_NEW_SEGMENTS: u32 = 2;

thread_local! {
    /// The pieces newly SACKed by the ACK being processed: one vector per thread, its
    /// capacity kept between ACKs (no allocation per ACK, no bytes per connection).
    static SACK_SCRATCH: Cell<Vec<(SeqNumber, SeqNumber)>> = const { Cell::new(Vec::new()) };
}

/// RFC 6937's DeliveredData of an ACK that newly acknowledged `acked` bytes, with `sacked`
/// bytes SACKed after it and `sacked_before` before: those plus the newly SACKed, less what
/// was SACKed before and is only now acknowledged (never below zero). Over the fields, not
/// the connection, so the delivery-rate sample can take it while it holds the sender model.
#[inline(always)]
fn delivered_data(acked: u32, sacked: u32, sacked_before: u32) -> u32 {
    let delivered = i64::from(acked) + i64::from(sacked) - i64::from(sacked_before);
    u32::try_from(delivered.max(0)).unwrap_or(0)
}

/// What [`Tcb::acknowledge_records`] does for each record the cumulative ACK covers and that
/// was not SACKed before: RACK sees it delivered, and the newest never retransmitted gives
/// the send time of the RTT sample.
#[inline(always)]
fn record_acknowledged(
    rack: &mut Rack,
    newest: &mut Option<Instant>,
    g: &SentSegment,
    now: Instant,
) {
    rack.on_delivered(g, now, false);
    if !g.retransmitted {
        *newest = Some(g.sent_at);
    }
}

impl Tcb {
    /// RFC 6675 §4 `pipe`: bytes believed in the network — outstanding, minus SACKed and lost,
    /// plus retransmissions of lost segments.
    pub(super) fn pipe(&self) -> u32 {
        self.snd_max
            .since(self.snd_una)
            .saturating_add(self.sent.retrans)
            .saturating_sub(self.sent.sacked)
            .saturating_sub(self.sent.lost)
    }

    /// The ACK part of RFC 9293 §3.10.7.4 fifth check with SACK-based recovery, after the
    /// cumulative ACK was applied. `acked` bytes were newly acknowledged; `rtt_micros` is this
    /// ACK's RTT sample in microseconds; `sacked_before` the SACKed bytes before the ACK; `before` the pipe and
    /// the bytes ever marked lost before it.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn process_ack_sack(
        &mut self,
        now: Instant,
        seg: &TcpRepr,
        ack: SeqNumber,
        acked: u32,
        sacked_before: u32,
        before: (u32, u64),
        rtt_micros: Option<u64>,
    ) {
        let mut newly_sacked = 0;
        let mut dsack = None;
        if !seg.options.sack_blocks.is_empty() {
            // Not from the sender model: making that model for a scratch vector would
            // switch the delivery-rate sampler on for good (every send then pays for it,
            // and header prediction never runs again on the connection).
            let mut scratch = SACK_SCRATCH.take();
            scratch.clear();
            let summary = self.sack_board.apply(
                ack,
                self.snd_una,
                self.snd_max,
                &seg.options.sack_blocks,
                |l, r| scratch.push((l, r)),
            );
            let total = u32::try_from(seg.options.sack_blocks.len()).unwrap_or(u32::MAX);
            self.stats.sack_blocks_rejected = self
                .stats
                .sack_blocks_rejected
                .wrapping_add(summary.rejected);
            self.stats.sack_blocks = self
                .stats
                .sack_blocks
                .wrapping_add(total.saturating_sub(summary.rejected));
            newly_sacked = summary.newly_sacked;
            let board = &self.sack_board;
            let (rack, mut sender) = (&mut self.rack, self.sender.as_deref_mut());
            for &(l, r) in &scratch {
                self.sent.mark_sacked(
                    l,
                    r,
                    |a, b| board.covers(a, b),
                    |g| {
                        rack.on_delivered(g, now, true);
                        if let Some(s) = &mut sender {
                            s.rate.on_segment_delivered(g);
                        }
                    },
                );
            }
            // The scratch space goes back with its capacity.
            SACK_SCRATCH.set(scratch);
            if summary.dsack.is_some() {
                // RFC 2883 §4 / RFC 8985 §6.2 step 4: a duplicate arrived: we retransmitted
                // needlessly, or the network reorders; widen the reordering window.
                self.stats.dsacks += 1;
                self.rack.on_dsack();
                dsack = summary.dsack;
                if let Some((_, r)) = dsack {
                    // Only duplicates of what the last episode retransmitted count.
                    if r <= self.recover {
                        self.undo_on_dsack();
                    }
                }
            }
        }
        // Linux tcp_sacktag: with SACK, an ACK that newly SACKs data is a duplicate ACK even
        // when its window changed (RFC 5681 §2's strict test misses every Linux dup ACK).
        if acked == 0 && ack == self.snd_una && newly_sacked > 0 {
            self.dup_acks += 1;
            self.stats.dup_acks += 1;
        }
        if self.frto.is_some() {
            self.frto_on_ack(ack, acked);
        }
        self.tlp_on_ack(now, ack, dsack);
        self.rack_on_ack(now, ack, acked, sacked_before, Some(before), rtt_micros);
    }

    /// The end of [`process_ack_sack`](Self::process_ack_sack), after the SACK blocks, F-RTO
    /// and the probe episode were seen to: RACK loss detection, recovery's end or PRR, the
    /// congestion controller's sample, and the probe timer. Arguments as there, but `before`
    /// may be `None` where the caller knows no sample will be taken (header prediction,
    /// `fast.rs`, with which this is shared).
    #[inline(always)]
    pub(super) fn rack_on_ack(
        &mut self,
        now: Instant,
        ack: SeqNumber,
        acked: u32,
        sacked_before: u32,
        before: Option<(u32, u64)>,
        rtt_micros: Option<u64>,
    ) {
        // RFC 8985 §6.2 step 5: detect losses when something newly delivered.
        if self.rack.advanced() {
            self.rack_detect(now);
        }
        let model_based = self.cc_controls_recovery();
        if (self.in_recovery || self.in_loss) && self.snd_una >= self.recover {
            self.exit_recovery();
        } else if self.in_recovery && !model_based {
            self.prr_on_ack(self.delivered_by_ack(acked, sacked_before));
        }
        // Draft-cheng §3.3: the delivery-rate sample of this ACK.
        let (rate, total_delivered) = match &mut self.sender {
            Some(s) => {
                let delivered = delivered_data(acked, self.sent.sacked, sacked_before);
                (
                    s.rate
                        .generate(now, u64::from(delivered), self.rack.min_rtt()),
                    s.rate.delivered,
                )
            }
            None => (None, 0),
        };
        // Asked only when the caller counted the pipe (and by debug builds otherwise).
        let sample_due = || model_based || (acked > 0 && !self.in_recovery && self.cwnd_may_grow());
        let sample_before = match before {
            Some(b) => sample_due().then_some(b),
            None => {
                debug_assert!(
                    !sample_due(),
                    "a sample is due but the caller did not count the pipe"
                );
                None
            }
        };
        if let Some((prior_inflight, lost_before)) = sample_before {
            let sample = AckSample {
                now,
                acked,
                mss: self.snd_mss,
                ack,
                snd_max: self.snd_max,
                rtt: rtt_micros.map(Duration::from_micros),
                srtt: self.rtt.srtt().unwrap_or_default(),
                newly_delivered: self.delivered_by_ack(acked, sacked_before),
                delivered: total_delivered,
                newly_lost: u32::try_from(self.sent.lost_total - lost_before).unwrap_or(u32::MAX),
                prior_inflight,
                inflight: self.pipe(),
                rate,
                recovery: if self.in_loss {
                    RecoveryState::Loss
                } else if self.in_recovery {
                    RecoveryState::Recovery
                } else {
                    RecoveryState::Open
                },
            };
            self.cc.on_ack(&sample);
            if self.cc.wants_app_limited() {
                let pipe = self.pipe();
                if let Some(s) = &mut self.sender {
                    s.rate.mark_app_limited(pipe);
                }
            }
        }
        // Only with SACK-based recovery (`rack_mode`): both callers run this under it.
        self.arm_tail_probe_with(now, true);
    }

    /// RFC 6937's DeliveredData of an ACK that newly acknowledged `acked` bytes when
    /// `sacked_before` were SACKed before it: those plus the newly SACKed, less what was
    /// SACKed before and is only now acknowledged. Worked out where it is used (`sent.sacked`
    /// does not change in between): without recovery or a sender model, and with no
    /// sample for the congestion controller, no one asks.
    #[inline(always)]
    fn delivered_by_ack(&self, acked: u32, sacked_before: u32) -> u32 {
        delivered_data(acked, self.sent.sacked, sacked_before)
    }

    /// The cumulative ACK reached `ack`: drops the records it covers (RACK sees each newly
    /// delivered one); returns the RTT, in microseconds, of the newest covered record never
    /// retransmitted and not SACKed before (so it was delivered just now).
    #[inline(always)]
    pub(super) fn acknowledge_records(&mut self, now: Instant, ack: SeqNumber) -> Option<u64> {
        let rack = &mut self.rack;
        let mut newest = None;
        // One loop without the sender model (CUBIC or NewReno not pacing: the common
        // case), one with it: the first neither captures nor tests it per record. Without
        // it, one clean record wholly acknowledged (every ACK of a request/response
        // exchange) skips the loop.
        match self.sender.as_deref_mut() {
            None => match self.sent.sole_covered(ack) {
                Some(g) => {
                    record_acknowledged(rack, &mut newest, g, now);
                    self.sent.drop_sole();
                }
                None => self
                    .sent
                    .acknowledge(ack, |g| record_acknowledged(rack, &mut newest, g, now)),
            },
            Some(s) => self.sent.acknowledge(ack, |g| {
                record_acknowledged(rack, &mut newest, g, now);
                s.rate.on_segment_delivered(g);
            }),
        }
        self.rack.on_cumulative_ack(ack);
        self.sack_board.advance(ack);
        if self.lost_hint < ack {
            self.lost_hint = ack;
        }
        newest.map(|t| now.micros_since(t))
    }

    /// RFC 3708 §3 / Linux tcp_try_undo_dsack: once D-SACKs reported every retransmission of
    /// the last congestion event as a duplicate, nothing was lost: undo the window reduction
    /// (also after the episode ended: the duplicate usually arrives after the original).
    fn undo_on_dsack(&mut self) {
        let Some(n) = self.undo_retrans else { return };
        let n = n.saturating_sub(1);
        self.undo_retrans = Some(n);
        if n > 0 {
            return;
        }
        self.undo_retrans = None;
        self.cc.on_spurious();
        self.sent.unmark_lost();
        if self.in_loss {
            self.stats.spurious_rtos += 1;
        } else {
            self.stats.spurious_recoveries += 1;
        }
        self.in_recovery = false;
        self.in_loss = false;
        self.frto = None;
    }

    /// RFC 8985 §6.2 step 5 and the reordering timer; enters recovery on a loss.
    /// Inlined, with `detect_loss`'s test for nothing outstanding.
    #[inline(always)]
    pub(super) fn rack_detect(&mut self, now: Instant) {
        // The SRTT is worked out only when something is outstanding (`detect_loss`
        // returns before it otherwise: every ACK of a request/response exchange).
        let rtt = &self.rtt;
        let srtt = || rtt.srtt().unwrap_or_else(|| rtt.rto());
        let d = self
            .rack
            .detect_loss(&mut self.sent, now, self.in_recovery || self.in_loss, srtt);
        self.rack_deadline = d.reorder_timeout.map(|t| now + t);
        if d.lost > 0 {
            self.stats.lost_segments = self.stats.lost_segments.wrapping_add(d.lost);
            self.lost_hint = self.snd_una;
            if !self.in_recovery && !self.in_loss {
                self.enter_recovery(now);
            }
        }
    }

    /// RFC 6675 §5 step 4 / RFC 6937: a loss starts recovery; one congestion response per
    /// window of data.
    fn enter_recovery(&mut self, now: Instant) {
        self.in_recovery = true;
        self.recover = self.snd_max;
        let flight = self.snd_max.since(self.snd_una);
        self.cc.on_congestion_event(now, flight, self.snd_mss);
        self.prr_recover_fs = flight.max(1);
        self.prr_delivered = 0;
        self.prr_out = 0;
        self.undo_retrans = Some(0);
        self.tlp_deadline = None;
        self.stats.fast_retransmits += 1;
    }

    /// RFC 6675 §5 / RFC 6937: SND.UNA passed the recovery point; cwnd = ssthresh.
    fn exit_recovery(&mut self) {
        if self.in_recovery {
            self.in_recovery = false;
            if !self.cc_controls_recovery() {
                let ssthresh = self.cc.ssthresh();
                self.cc.set_window(ssthresh.max(self.snd_mss));
            }
            self.rack.on_recovery_end();
        }
        self.in_loss = false;
        self.frto = None;
    }

    /// RFC 6937 §3: Proportional Rate Reduction with the slow-start reduction bound.
    fn prr_on_ack(&mut self, delivered: u32) {
        self.prr_delivered = self.prr_delivered.saturating_add(delivered);
        let pipe = u64::from(self.pipe());
        let ssthresh = u64::from(self.cc.ssthresh());
        let (prr_delivered, prr_out) = (u64::from(self.prr_delivered), u64::from(self.prr_out));
        let sndcnt = if pipe > ssthresh {
            // Proportional part: sndcnt = CEIL(prr_delivered * ssthresh / RecoverFS) - prr_out.
            (prr_delivered * ssthresh)
                .div_ceil(u64::from(self.prr_recover_fs))
                .saturating_sub(prr_out)
        } else {
            // PRR-SSRB: grow back towards ssthresh by at most one MSS more than delivered.
            let limit = prr_delivered
                .saturating_sub(prr_out)
                .max(u64::from(delivered))
                + u64::from(self.snd_mss);
            (ssthresh - pipe).min(limit)
        };
        // RFC 6937 §3 / Linux: the first ACK of recovery always lets the fast retransmit out.
        let sndcnt = if self.prr_out == 0 {
            sndcnt.max(1)
        } else {
            sndcnt
        };
        let cwnd = u32::try_from(pipe + sndcnt).unwrap_or(u32::MAX);
        self.cc.set_window(cwnd);
    }

    /// Counts bytes sent during recovery (RFC 6937 `prr_out`).
    pub(super) fn on_recovery_send(&mut self, bytes: u32) {
        if self.in_recovery {
            self.prr_out = self.prr_out.saturating_add(bytes);
        }
    }

    /// RFC 8985 §7.2: (re)arm the probe timeout while data is outstanding outside recovery.
    /// `rack_mode` is [`Tcb::rack_mode`], which every caller has already read (the
    /// configuration's pointer is not followed again for it).
    #[inline(always)]
    pub(super) fn arm_tail_probe_with(&mut self, now: Instant, rack_mode: bool) {
        debug_assert_eq!(rack_mode, self.rack_mode());
        if self.snd_una == self.snd_max {
            // Nothing outstanding (every ACK of a request/response exchange): no probe.
            // Checked first: the cheapest of the conditions below that clear the timer.
            self.tlp_deadline = None;
            return;
        }
        let Some(srtt) = self.rtt.srtt_nanos() else {
            self.tlp_deadline = None;
            return;
        };
        if !rack_mode || self.in_recovery || self.in_loss || self.tlp_end.is_some() {
            self.tlp_deadline = None;
            return;
        }
        // In nanoseconds, after every new segment: the same instant `now + (2 * SRTT +
        // slack)` gives in `Duration` arithmetic (whole microseconds, rounded down).
        let slack = if self.snd_max.since(self.snd_una) <= self.snd_mss {
            // RFC 8985 §7.2: a lone segment may wait for a delayed ACK.
            WORST_CASE_DELAYED_ACK
        } else {
            PTO_SLACK
        };
        let pto = srtt
            .saturating_mul(2)
            .saturating_add(slack.as_nanos() as u64);
        let deadline = Instant::from_micros(now.total_micros().saturating_add(pto / 1000));
        // RFC 8985 §7.2: never later than the RTO.
        self.tlp_deadline = Some(match self.rto_deadline {
            Some(rto) => deadline.min(rto),
            None => deadline,
        });
    }

    /// RFC 8985 §7.3: the probe timer fired: send new data if possible, else the last segment.
    pub(super) fn on_probe_timeout(&mut self, now: Instant) {
        if !self.rack_mode()
            || self.in_recovery
            || self.in_loss
            || self.tlp_end.is_some()
            || self.snd_una == self.snd_max
            || !self.is_established()
        {
            return;
        }
        let outstanding = self.snd_max.since(self.snd_una);
        let unsent = u32::try_from(self.unsent()).unwrap_or(u32::MAX);
        let window_ok = self.snd_wnd.saturating_sub(outstanding) >= unsent.min(self.snd_mss);
        self.tlp_pending = Some(if unsent > 0 && window_ok {
            TailProbe::NewData
        } else {
            TailProbe::Retransmit
        });
        self.stats.tlp_probes += 1;
        // RFC 8985 §7.3: after the probe, the RTO guards the connection.
        self.rto_deadline = Some(now + self.rtt.backed_off(self.backoff));
    }

    /// RFC 8985 §7.4: did the probe repair a loss (no D-SACK for it), needing a congestion
    /// response?
    fn tlp_on_ack(&mut self, now: Instant, ack: SeqNumber, dsack: Option<(SeqNumber, SeqNumber)>) {
        let Some((end, retransmitted)) = self.tlp_end else {
            return;
        };
        if let Some((l, r)) = dsack {
            if retransmitted && l < end && end <= r {
                // Both the original and the probe arrived: nothing was lost.
                self.tlp_end = None;
                return;
            }
        }
        let episode_over = ack > end || (ack == end && (!retransmitted || ack == self.snd_max));
        if episode_over {
            self.tlp_end = None;
            if retransmitted && ack > end && !self.in_recovery && !self.in_loss {
                // RFC 8985 §7.4.2: the probe repaired a loss: respond as to any loss.
                let flight = self.snd_max.since(self.snd_una);
                self.cc.on_congestion_event(now, flight, self.snd_mss);
                self.stats.tlp_recoveries += 1;
            }
        }
    }

    /// RFC 8985 §6.3 / Linux tcp_enter_loss: on an RTO every unSACKed segment is lost and is
    /// retransmitted in order as the (one-segment) window allows; F-RTO may undo it.
    pub(super) fn rto_with_sack(&mut self, now: Instant) {
        let first_timeout = self.backoff == 1 && !self.in_recovery && !self.in_loss;
        let flight = self.snd_max.since(self.snd_una);
        if self.sent.get(0).is_some_and(|g| g.sacked) {
            // RFC 2018 §8: the receiver reneged on data it SACKed; forget every SACK.
            self.sent.clear_sacked();
            self.sack_board.clear();
        }
        self.cc.on_rto(now, flight, self.snd_mss);
        if first_timeout {
            self.undo_retrans = Some(0);
        } else {
            // A second timeout: the first one's reduction stands.
            self.undo_retrans = None;
        }
        self.sent.mark_all_lost();
        self.stats.lost_segments = self
            .stats
            .lost_segments
            .wrapping_add(u32::try_from(self.sent.len()).unwrap_or(u32::MAX));
        self.lost_hint = self.snd_una;
        self.recover = self.snd_max;
        self.in_recovery = false;
        self.in_loss = true;
        self.tlp_end = None;
        self.tlp_deadline = None;
        self.tlp_pending = None;
        self.rack_deadline = None;
        self.dup_acks = 0;
        self.rtt_sample = None;
        // RFC 5682 §3.1 step 1: on the first timeout, F-RTO watches the next two ACKs.
        self.frto = first_timeout.then_some(Frto::Retransmitted);
    }

    /// RFC 5682 §3.1 steps 2-3 (basic F-RTO; `acked` > 0 means SND.UNA advanced).
    fn frto_on_ack(&mut self, ack: SeqNumber, acked: u32) {
        match self.frto {
            Some(Frto::Retransmitted) => {
                if acked == 0 || ack >= self.recover {
                    // Step 2a: a duplicate ACK, or everything acknowledged: conventional.
                    self.frto = None;
                } else if self.unsent() > 0 {
                    // Step 2b: send new data instead of retransmitting.
                    self.frto = Some(Frto::NewDataSent {
                        allowance: FRTO_NEW_SEGMENTS,
                    });
                } else {
                    // RFC 5682 §3.1: nothing new to send: recover conventionally.
                    self.frto = None;
                }
            }
            Some(Frto::NewDataSent { .. }) => {
                self.frto = None;
                if acked > 0 {
                    // Step 3b: data never retransmitted was acknowledged: the timeout was
                    // spurious. RFC 4015-style response: restore the window, stop retransmitting.
                    self.undo_retrans = None;
                    self.cc.on_spurious();
                    self.sent.unmark_lost();
                    self.in_loss = false;
                    self.stats.spurious_rtos += 1;
                }
                // Step 3a: a duplicate ACK: the loss was real; continue conventionally.
            }
            None => {}
        }
    }

    /// RFC 6675 §5 NextSeg rule 1: the first lost segment not yet retransmitted, if the
    /// congestion window has room.
    pub(super) fn emit_lost(&mut self, now: Instant, out: &mut [u8]) -> Option<(TcpRepr, usize)> {
        if !self.sent.has_lost_to_send() || matches!(self.frto, Some(Frto::NewDataSent { .. })) {
            return None;
        }
        if self.pipe() >= self.cc.window() || self.paced(now) {
            return None;
        }
        let from = self.sent.index_after(self.lost_hint);
        let i = self
            .sent
            .next_lost(from)
            .or_else(|| self.sent.next_lost(0))?;
        self.emit_record(i, now, out)
    }

    /// RFC 8985 §7.3: the tail loss probe.
    pub(super) fn emit_probe_retransmission(
        &mut self,
        now: Instant,
        out: &mut [u8],
    ) -> Option<(TcpRepr, usize)> {
        let i = self.sent.last_unsacked()?;
        let t = self.emit_record(i, now, out)?;
        self.tlp_end = Some((self.snd_max, true));
        self.tlp_deadline = None;
        Some(t)
    }

    /// Resends record `i` (cut to the current MSS).
    fn emit_record(&mut self, i: usize, now: Instant, out: &mut [u8]) -> Option<(TcpRepr, usize)> {
        let max = (self.snd_mss as usize).min(out.len());
        self.sent.split(i, u32::try_from(max).unwrap_or(u32::MAX));
        let seg = *self.sent.get(i)?;
        let offset = seg.start.since(self.snd_buf_start) as usize;
        let len = (seg.data_len() as usize).min(max);
        let n = self.send_buf.peek_at(offset, &mut out[..len]);
        let mut flags = TcpFlags::ACK;
        if seg.fin {
            flags |= TcpFlags::FIN;
        }
        if n > 0 && offset + n == self.send_buf.len() {
            flags |= TcpFlags::PSH;
        }
        let mss = self.snd_mss;
        // As for new data (`emit_data`): the sampler and the pacer only where they run
        // (BBR, pacing); a CUBIC or NewReno retransmission does not switch them on.
        let snapshot = if self.sender.is_some() || self.cc_uses_rate_samples() {
            let model = self.sender_model(now);
            let snapshot = model.rate.on_sent(now, false);
            model.pacer.on_sent(now, seg.len(), mss);
            snapshot
        } else {
            RateSnapshot::default()
        };
        self.sent.retransmitted(i, now, snapshot);
        if let Some(n) = &mut self.undo_retrans {
            *n += 1;
        }
        self.lost_hint = seg.end;
        self.stats.retransmits += 1;
        // RFC 6298 §3 (Karn): no RTT sample from an ambiguous segment.
        self.rtt_sample = None;
        self.on_recovery_send(seg.len());
        self.after_send(now);
        let repr = self.header(now, seg.start, flags);
        Some((repr, n))
    }
}

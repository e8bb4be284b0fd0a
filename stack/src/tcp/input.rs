//! Segment arrival (RFC 9293 §3.10.7), checks in the RFC's order.

use super::State;
use super::congestion::AckSample;
use super::ecn::Ecn;
use super::error::TcpError;
use super::rtt::RttEstimator;
use super::seq::SeqNumber;
use super::tcb::Tcb;
use crate::time::Instant;
use crate::wire::{TcpFlags, TcpRepr};
use core::time::Duration;

/// RFC 6298 §5.7: RTO once data flows after a retransmitted SYN without an RTT sample.
const RTO_AFTER_SYN_LOSS: Duration = Duration::from_secs(3);

/// RFC 7323 §5.5: a ts_recent older than 24 days is invalid.
const PAWS_IDLE: Duration = Duration::from_secs(24 * 24 * 3600);

/// `a < b` in timestamp space (RFC 7323 §5.3, modulo 2^32).
pub(super) fn ts_before(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) < 0
}

impl Tcb {
    /// Processes one arriving segment (RFC 9293 §3.10.7). Output, if any, comes from
    /// `poll_transmit`. The payload is the segment text after the header.
    pub fn handle_segment(&mut self, now: Instant, seg: &TcpRepr, payload: &[u8]) {
        self.handle_segment_ecn(now, seg, payload, Ecn::NotEct);
    }

    /// [`handle_segment`](Self::handle_segment) with the ECN field of the IP header that
    /// carried the segment (RFC 3168: a CE mark on data is echoed to the sender).
    pub fn handle_segment_ecn(&mut self, now: Instant, seg: &TcpRepr, payload: &[u8], ecn: Ecn) {
        self.stats.segs_in += 1;
        if self.handle_predicted(now, seg, payload, ecn) {
            return;
        }
        match self.state {
            // RFC 9293 §3.10.7.1: a closed connection answers with RST.
            State::Closed => self.queue_reset_for(seg, payload.len()),
            // LISTEN lives in the engine's listener (see `listen_action`).
            State::Listen => {}
            State::SynSent => self.input_syn_sent(now, seg, payload),
            _ => self.input_synchronized(now, seg, payload, ecn),
        }
    }

    /// RFC 9293 §3.10.7.3: SYN-SENT.
    fn input_syn_sent(&mut self, now: Instant, seg: &TcpRepr, payload: &[u8]) {
        let f = seg.flags;
        let ack = SeqNumber(seg.ack_number);
        let has_ack = f.contains(TcpFlags::ACK);
        // First: the ACK bit.
        if has_ack && (ack <= self.iss || ack > self.snd_max) {
            if !f.contains(TcpFlags::RST) {
                // <SEQ=SEG.ACK><CTL=RST>
                self.queue_reset_for(seg, 0);
            }
            return;
        }
        // Second: RST. RFC 5961 §3.2 / RFC 9293: only with an acceptable ACK.
        if f.contains(TcpFlags::RST) {
            if has_ack {
                self.enter_closed(Some(TcpError::ConnectionRefused));
            }
            return;
        }
        // Fourth: SYN.
        if !f.contains(TcpFlags::SYN) {
            return;
        }
        self.irs = SeqNumber(seg.seq_number);
        self.rcv_nxt = self.irs + 1u32;
        self.negotiate(now, seg);
        self.rcv_adv =
            self.rcv_nxt + u32::try_from(self.recv_buf.capacity().min(65535)).unwrap_or(65535);
        self.last_recv = now;
        self.snd_wl1 = self.irs;
        if has_ack {
            self.snd_wl2 = ack;
            // RFC 7323 §2.2: the window of a SYN-ACK is not scaled.
            self.snd_wnd = u32::from(seg.window_len);
            self.max_snd_wnd = self.snd_wnd;
            self.ack_of_syn(now, seg, ack);
            self.become_established();
            // Our third-way ACK goes out at once.
            self.ack_now = true;
            // RFC 9293 §3.10.7.3: text and FIN on the SYN-ACK continue at the sixth step.
            let data_start = self.irs + 1u32;
            if !payload.is_empty() {
                self.process_text(now, seg, data_start, payload, false);
            }
            if f.contains(TcpFlags::FIN) && data_start + payload.len() == self.rcv_nxt {
                self.process_fin(now);
            }
        } else {
            // Simultaneous open (RFC 9293 §3.5 figure 8): SYN-RECEIVED, send SYN,ACK.
            self.state = State::SynReceived;
            self.snd_wl2 = self.iss;
            self.snd_wnd = u32::from(seg.window_len);
            self.max_snd_wnd = self.snd_wnd;
            self.syn_pending = true;
            self.backoff = 0;
            self.rto_deadline = None;
            self.rtt_sample = None;
        }
    }

    /// Our SYN was acknowledged by `ack` (SYN-SENT or SYN-RECEIVED).
    fn ack_of_syn(&mut self, now: Instant, seg: &TcpRepr, ack: SeqNumber) {
        self.snd_una = ack;
        self.snd_nxt = self.snd_nxt.max_seq(ack);
        self.take_rtt_sample(now, seg, ack);
        if self.backoff > 0 && self.rtt.srtt().is_none() {
            // RFC 6298 §5.7: the SYN was retransmitted and no RTT was measured: data starts
            // with an RTO of 3 seconds.
            self.rtt = RttEstimator::new(RTO_AFTER_SYN_LOSS, self.cfg.rto_min, self.cfg.rto_max);
        }
        self.backoff = 0;
        self.rto_deadline = None;
        self.syn_pending = false;
    }

    fn become_established(&mut self) {
        self.state = State::Established;
        self.quickack = self.cfg.quickack_segments;
        if self.fin_queued {
            // RFC 9293 §3.10.4: the queued CLOSE takes effect now.
            self.state = State::FinWait1;
        }
    }

    /// RTT measurement on an ACK of new data: RFC 7323 §4.1 RTTM from TSecr, else the timed
    /// segment (RFC 6298 §3 Karn: never a retransmitted one; `rtt_sample` is cleared then).
    fn take_rtt_sample(&mut self, now: Instant, seg: &TcpRepr, ack: SeqNumber) -> Option<u64> {
        // In microseconds, the clock's unit.
        let mut sample = None;
        if self.ts_enabled {
            if let Some((_, ecr)) = seg.options.timestamp {
                let elapsed = self.ts_now(now).wrapping_sub(ecr);
                // A TSecr from the future or older than a minute is not believed.
                if ecr != 0 && elapsed < 60_000 {
                    sample = Some(u64::from(elapsed) * 1000);
                }
            }
        }
        if let Some((end, sent_at)) = self.rtt_sample {
            if ack >= end {
                self.rtt_sample = None;
                if sample.is_none() {
                    sample = Some(now.micros_since(sent_at));
                }
            }
        }
        if let Some(rtt) = sample {
            self.rtt.sample_micros(rtt, self.cfg.rto_min_on_variance);
        }
        sample
    }

    /// RFC 9293 §3.10.7.4: every state from SYN-RECEIVED to TIME-WAIT. Kept out of line:
    /// inlined into `handle_segment_ecn` it would make the header-prediction path pay its
    /// prologue (register saves) too.
    #[inline(never)]
    fn input_synchronized(&mut self, now: Instant, seg: &TcpRepr, payload: &[u8], ecn: Ecn) {
        let f = seg.flags;
        let (rst, syn, fin, has_ack) = (
            f.contains(TcpFlags::RST),
            f.contains(TcpFlags::SYN),
            f.contains(TcpFlags::FIN),
            f.contains(TcpFlags::ACK),
        );
        let seq = SeqNumber(seg.seq_number);
        let ack = SeqNumber(seg.ack_number);

        if self.state == State::SynReceived && syn && !rst && seq == self.irs {
            if !has_ack {
                // A retransmitted SYN: our SYN-ACK was lost; resend it (as Linux tcp_check_req).
                self.syn_pending = true;
                return;
            }
            if ack == self.iss + 1u32 {
                // Simultaneous open: the peer's SYN-ACK completes our handshake (Linux
                // tcp_validate_incoming lets it pass).
                self.ack_of_syn(now, seg, ack);
                self.snd_wnd = u32::from(seg.window_len);
                self.max_snd_wnd = self.max_snd_wnd.max(self.snd_wnd);
                self.snd_wl1 = seq;
                self.snd_wl2 = ack;
                self.become_established();
                return;
            }
        }

        // RFC 7323 §5.3 R1: PAWS, before the sequence-number check.
        if self.ts_enabled && !rst {
            if let Some((tsval, _)) = seg.options.timestamp {
                if ts_before(tsval, self.ts_recent) && now - self.ts_recent_age < PAWS_IDLE {
                    self.stats.paws_rejected += 1;
                    self.ack_now = true;
                    return;
                }
            }
        }

        // First: sequence number acceptability (RFC 9293 §3.10.7.4 table).
        let seg_len = payload.len() + usize::from(syn) + usize::from(fin);
        let rcv_wnd = self.rcv_adv.since(self.rcv_nxt);
        let right = self.rcv_nxt + rcv_wnd;
        let acceptable = match (seg_len, rcv_wnd) {
            (0, 0) => seq == self.rcv_nxt,
            (0, _) => seq.in_range(self.rcv_nxt, right),
            (_, 0) => false,
            _ => {
                seq.in_range(self.rcv_nxt, right)
                    || (seq + (seg_len - 1)).in_range(self.rcv_nxt, right)
            }
        };
        // RFC 9293 §3.10.7.4: with a zero window, still take valid ACKs and RSTs.
        let zero_window_ack = !acceptable && rcv_wnd == 0 && seq == self.rcv_nxt && !syn;
        if !acceptable && !zero_window_ack {
            self.stats.unacceptable += 1;
            if !rst {
                // <SEQ=SND.NXT><ACK=RCV.NXT><CTL=ACK>
                self.ack_now = true;
                if self.state == State::TimeWait && fin {
                    self.close_deadline = Some(now + self.cfg.time_wait);
                }
            }
            return;
        }
        self.last_recv = now;
        self.keepalive_probes = 0;

        // Second: RST (RFC 5961 §3.2).
        if rst {
            if seq == self.rcv_nxt {
                self.handle_reset();
            } else {
                self.challenge_ack(now);
            }
            return;
        }

        self.remember_timestamp(now, seg, seq);

        // Fourth: SYN in a synchronized state -> challenge ACK (RFC 5961 §4.2).
        if syn {
            self.challenge_ack(now);
            return;
        }

        // Fifth: ACK.
        if !has_ack {
            self.stats.no_ack_dropped += 1;
            return;
        }
        self.ecn_input(seg, payload.len(), ecn);
        // RFC 5961 §5.2: acceptable ACKs lie in [SND.UNA - MAX.SND.WND, SND.NXT].
        if ack > self.snd_max {
            self.stats.ack_too_new += 1;
            if self.state == State::SynReceived {
                self.queue_reset_for(seg, payload.len());
            } else {
                self.challenge_ack(now);
            }
            return;
        }
        if self.state == State::SynReceived {
            if ack <= self.snd_una {
                // RFC 9293 §3.10.7.4: SYN-RECEIVED, unacceptable ACK -> <SEQ=SEG.ACK><CTL=RST>.
                self.queue_reset_for(seg, payload.len());
                return;
            }
            self.ack_of_syn(now, seg, ack);
            self.snd_wnd = u32::from(seg.window_len) << self.snd_wscale;
            self.max_snd_wnd = self.max_snd_wnd.max(self.snd_wnd);
            self.snd_wl1 = seq;
            self.snd_wl2 = ack;
            self.become_established();
        } else if ack < self.snd_una - self.max_snd_wnd.max(1) {
            self.stats.ack_too_old += 1;
            self.challenge_ack(now);
            return;
        }
        self.process_ack(now, seg, seq, ack, payload.len());
        if self.state == State::Closed {
            return;
        }

        // Sixth: URG is ignored (RFC 6093: urgent data is treated as normal data).
        // Seventh: segment text.
        let data_start = seq + u32::from(syn);
        if !payload.is_empty() {
            self.process_text(now, seg, data_start, payload, zero_window_ack);
            if self.state == State::Closed {
                return;
            }
        }
        // Eighth: FIN.
        if fin {
            let fin_seq = data_start + payload.len();
            if fin_seq == self.rcv_nxt {
                self.process_fin(now);
            } else if fin_seq > self.rcv_nxt && fin_seq < self.rcv_adv + 1u32 {
                // An out-of-order FIN: remember it, and duplicate-ACK like any gap (RFC 5681 §4.2).
                self.ooo_fin = Some(fin_seq);
                self.ack_now = true;
            } else {
                // A FIN we already have: acknowledge it again.
                self.ack_now = true;
                if self.state == State::TimeWait {
                    // RFC 9293 §3.10.7.4 eighth: restart the 2 MSL timeout.
                    self.close_deadline = Some(now + self.cfg.time_wait);
                }
            }
        }
        if self.ooo_fin == Some(self.rcv_nxt) {
            self.ooo_fin = None;
            self.process_fin(now);
        }
    }

    /// RFC 7323 §4.3: remember the timestamp to echo, from an acceptable segment at `seq`.
    #[inline(always)]
    pub(super) fn remember_timestamp(&mut self, now: Instant, seg: &TcpRepr, seq: SeqNumber) {
        if self.ts_enabled {
            if let Some((tsval, _)) = seg.options.timestamp {
                if !ts_before(tsval, self.ts_recent) && seq <= self.last_ack_sent {
                    self.ts_recent = tsval;
                    self.ts_recent_age = now;
                }
            }
        }
    }

    /// RFC 9293 §3.10.7.4 second check, for a RST with SEG.SEQ == RCV.NXT.
    fn handle_reset(&mut self) {
        match self.state {
            State::SynReceived if self.passive => self.enter_closed(None),
            State::SynReceived => self.enter_closed(Some(TcpError::ConnectionRefused)),
            State::Established | State::FinWait1 | State::FinWait2 | State::CloseWait => {
                self.enter_closed(Some(TcpError::ConnectionReset))
            }
            _ => self.enter_closed(None),
        }
    }

    /// RFC 9293 §3.10.7.4 fifth check in ESTABLISHED and later states, with RFC 5681 / RFC 6582.
    fn process_ack(
        &mut self,
        now: Instant,
        seg: &TcpRepr,
        seq: SeqNumber,
        ack: SeqNumber,
        payload_len: usize,
    ) {
        let window = u32::from(seg.window_len) << self.snd_wscale;
        let mss = self.snd_mss;
        let sack_recovery = self.rack_mode();
        let sacked_before = self.sent.sacked;
        let before = (self.pipe(), self.sent.lost_total);
        let mut acked = 0;
        let mut rtt = None;
        if ack > self.snd_una {
            (acked, rtt) = self.ack_new_data(now, seg, ack, sack_recovery);
        } else if sack_recovery {
            // Duplicate ACKs are counted from SACK information (recovery.rs).
        } else if ack == self.snd_una
            && payload_len == 0
            && !seg.flags.intersects(TcpFlags::SYN | TcpFlags::FIN)
            && self.snd_max != self.snd_una
            && window == self.snd_wnd
        {
            // RFC 5681 §2: a duplicate ACK.
            self.dup_acks += 1;
            self.stats.dup_acks += 1;
            if self.in_recovery {
                // RFC 6582 §3.2 step 3: artificially inflate cwnd.
                self.cc.set_window(self.cc.window().saturating_add(mss));
            } else if self.dup_acks == 3 && ack >= self.recover {
                // RFC 6582 §3.2 step 2 / RFC 5681 §3.2: fast retransmit, enter fast recovery
                // with ssthresh = max(FlightSize / 2, 2*SMSS) and cwnd = ssthresh + 3*SMSS.
                self.in_recovery = true;
                self.recover = self.snd_max;
                self.cc
                    .on_congestion_event(now, self.snd_max.since(self.snd_una), mss);
                self.cc
                    .set_window(self.cc.ssthresh().saturating_add(3 * mss));
                self.retransmit_head = true;
                self.rtt_sample = None;
                self.stats.fast_retransmits += 1;
            }
        } else if ack == self.snd_una {
            self.dup_acks = 0;
        }
        if sack_recovery {
            self.process_ack_sack(now, seg, ack, acked, sacked_before, before, rtt);
        }
        self.ecn_echo(now, seg);
        // Delivered now: newly acknowledged plus newly SACKed, minus what was SACKed before and
        // is only now acknowledged (RFC 6937's DeliveredData).
        let delivered = i64::from(acked) + i64::from(self.sent.sacked) - i64::from(sacked_before);
        self.after_ack(now, u64::try_from(delivered).unwrap_or(0), acked);
        self.update_send_window(seq, ack, window);
        match self.state {
            State::FinWait1 if self.fin_acked() => {
                self.state = State::FinWait2;
                if self.user_closed {
                    self.close_deadline = Some(now + self.cfg.fin_wait2_timeout);
                }
            }
            State::Closing if self.fin_acked() => self.enter_time_wait(now),
            State::LastAck if self.fin_acked() => self.enter_closed(None),
            _ => {}
        }
    }

    /// RFC 9293 §3.10.7.4 fifth check, SND.UNA < SEG.ACK =< SND.MAX: the send buffer gives
    /// up what `ack` covers, the RTT is sampled, the retransmission timer restarts, and
    /// NewReno (without SACK recovery) sees the ACK. Returns the bytes newly acknowledged
    /// and the RTT sample (microseconds). Shared with header prediction (`fast.rs`).
    #[inline(always)]
    pub(super) fn ack_new_data(
        &mut self,
        now: Instant,
        seg: &TcpRepr,
        ack: SeqNumber,
        sack_recovery: bool,
    ) -> (u32, Option<u64>) {
        let acked = ack.since(self.snd_una);
        let data_acked = (ack.since(self.snd_buf_start) as usize).min(self.send_buf.len());
        self.send_buf.consume(data_acked);
        self.snd_buf_start += data_acked as u32;
        self.stats.bytes_acked += data_acked as u64;
        self.snd_una = ack;
        self.snd_nxt = self.snd_nxt.max_seq(ack);
        let rtt = if sack_recovery {
            // The send time of each segment is known to the microsecond: the newest
            // segment never retransmitted that this ACK covers gives the sample (RFC 6298
            // §3, Karn's rule), finer than the millisecond timestamp clock.
            match self.acknowledge_records(now, ack) {
                Some(sample) => {
                    self.rtt.sample_micros(sample, self.cfg.rto_min_on_variance);
                    self.rtt_sample = None;
                    Some(sample)
                }
                None => self.take_rtt_sample(now, seg, ack),
            }
        } else {
            self.take_rtt_sample(now, seg, ack)
        };
        // RFC 6298 §5.2/§5.3 and §5.7-style: fresh progress resets backoff (and
        // `after_ack`, which follows every acceptable ACK, the persist count).
        self.backoff = 0;
        if self.snd_una == self.snd_max {
            self.rto_deadline = None;
            self.progress_since = None;
        } else {
            self.rto_deadline = Some(now.add_nanos(self.rtt.rto_nanos()));
            self.progress_since = Some(now);
        }
        if !sack_recovery {
            self.newreno_on_new_ack(now, ack, acked, rtt);
        }
        self.dup_acks = 0;
        (acked, rtt)
    }

    /// After an acceptable ACK (`delivered` bytes newly delivered, `acked` of them newly
    /// acknowledged): the delivery rate, the pacing rate and the send buffer follow; a
    /// window probe was answered.
    #[inline(always)]
    pub(super) fn after_ack(&mut self, now: Instant, delivered: u64, acked: u32) {
        self.on_delivered(now, delivered);
        self.update_pacing_rate();
        if acked > 0 {
            // The congestion window may have grown: the send buffer follows it.
            self.expand_send_buffer();
        }
        self.persist_unanswered = 0;
    }

    /// RFC 9293 §3.10.7.4 fifth: update the send window from newer segments only
    /// (SND.WL1 < SEG.SEQ, or SND.WL1 = SEG.SEQ and SND.WL2 =< SEG.ACK).
    #[inline(always)]
    pub(super) fn update_send_window(&mut self, seq: SeqNumber, ack: SeqNumber, window: u32) {
        if self.snd_wl1 < seq || (self.snd_wl1 == seq && self.snd_wl2 <= ack) {
            self.snd_wnd = window;
            self.max_snd_wnd = self.max_snd_wnd.max(window);
            self.snd_wl1 = seq;
            self.snd_wl2 = ack;
            if window > 0 {
                self.persist_backoff = 0;
                self.persist_deadline = None;
            }
        }
    }

    /// RFC 6582 NewReno on an ACK of new data (peers without SACK).
    fn newreno_on_new_ack(
        &mut self,
        now: Instant,
        ack: SeqNumber,
        acked: u32,
        rtt_micros: Option<u64>,
    ) {
        let mss = self.snd_mss;
        let flight = self.snd_max.since(self.snd_una);
        if self.in_recovery {
            if ack >= self.recover {
                // RFC 6582 §3.2 step 4 option (1): full acknowledgment ends recovery with
                // cwnd = min(ssthresh, max(FlightSize, SMSS) + SMSS).
                self.in_recovery = false;
                let cwnd = self.cc.ssthresh().min(flight.max(mss) + mss);
                self.cc.set_window(cwnd);
            } else {
                // RFC 6582 §3.2 step 5: partial ACK: deflate by the amount acked, add back one
                // SMSS if at least one SMSS was acked, and retransmit the next hole.
                let mut cwnd = self.cc.window().saturating_sub(acked);
                if acked >= mss {
                    cwnd = cwnd.saturating_add(mss);
                }
                self.cc.set_window(cwnd.max(mss));
                self.retransmit_head = true;
            }
        } else if self.cwnd_may_grow() {
            let sample = AckSample::basic(
                now,
                acked,
                mss,
                ack,
                self.snd_max,
                rtt_micros.map(Duration::from_micros),
                self.rtt.srtt().unwrap_or_default(),
            );
            self.cc.on_ack(&sample);
        }
    }

    /// RFC 9293 §3.10.7.4 seventh check: queue text, in order or out of order.
    fn process_text(
        &mut self,
        now: Instant,
        seg: &TcpRepr,
        start: SeqNumber,
        payload: &[u8],
        window_closed: bool,
    ) {
        if !matches!(
            self.state,
            State::Established | State::FinWait1 | State::FinWait2
        ) {
            // After the peer's FIN no text is valid (RFC 9293 §3.10.7.4 seventh: ignore).
            return;
        }
        let end = start + payload.len();
        if self.user_closed && end > self.rcv_nxt {
            // RFC 2525 §2.17 / Linux: new data after close() -> RST, the data is lost.
            self.queue_reset_for(seg, payload.len());
            self.enter_closed(Some(TcpError::ConnectionReset));
            return;
        }
        let right = self.rcv_adv;
        // Trim to the window: drop what we already have, and what lies beyond the window.
        let start_trim = if start < self.rcv_nxt {
            self.rcv_nxt.since(start) as usize
        } else {
            0
        };
        let end_trim = if end > right {
            end.since(right) as usize
        } else {
            0
        };
        if window_closed || start_trim + end_trim >= payload.len() {
            // Duplicate (or nothing fits): acknowledge at once (RFC 9293 §3.10.7.4, RFC 5681 §4.2).
            self.ack_now = true;
            self.quickack = self.quickack.max(self.cfg.quickack_segments.min(2));
            return;
        }
        if end_trim > 0 {
            // Part of the text fell beyond the window: tell the sender where the window is.
            self.ack_now = true;
        }
        let data = &payload[start_trim..payload.len() - end_trim];
        let start = start + start_trim;
        if start == self.rcv_nxt {
            self.queue_in_order(now, seg, data);
        } else {
            self.note_segment_size(data.len());
            // Out of order: keep it (within bounds) and send an immediate duplicate ACK
            // (RFC 5681 §3.2 / §4.2); quick-ack mode until the hole fills.
            let offset = self.recv_buf.len() + start.since(self.rcv_nxt) as usize;
            let fits = self
                .recv_buf
                .capacity()
                .saturating_sub(offset)
                .min(data.len());
            let stored = (fits > 0)
                .then(|| self.ooo.insert_pruning(start, start + fits))
                .flatten();
            if let Some(pruned) = stored {
                self.recv_buf.write_at(offset, &data[..fits]);
                self.stats.ooo_bytes += fits as u64;
                self.stats.ooo_pruned = self.stats.ooo_pruned.saturating_add(pruned as u32);
            } else {
                self.stats.ooo_dropped += 1;
            }
            self.ack_now = true;
            self.quickack = self.quickack.max(self.cfg.quickack_segments);
        }
    }

    /// RFC 9293 §3.8.6.2.2 "full-sized segment": the largest payload seen, up to our MSS.
    #[inline(always)]
    fn note_segment_size(&mut self, len: usize) {
        let seen = u32::try_from(len)
            .unwrap_or(u32::MAX)
            .min(u32::from(self.cfg.mss));
        self.rcv_mss = self.rcv_mss.max(seen);
    }

    /// RFC 9293 §3.10.7.4 seventh check for text at RCV.NXT that fits the window: into the
    /// receive buffer, with any out-of-order data it joins, then the ACK is scheduled (RFC
    /// 5681 §4.2, RFC 1122 §4.2.3.2). Shared with header prediction (`fast.rs`).
    #[inline(always)]
    pub(super) fn queue_in_order(&mut self, now: Instant, seg: &TcpRepr, data: &[u8]) {
        self.note_segment_size(data.len());
        self.measure_rcv_rtt(now, seg, data.len());
        let n = self.recv_buf.write_at(self.recv_buf.len(), data);
        self.recv_buf.commit(n);
        self.rcv_nxt += n as u32;
        self.stats.bytes_in += n as u64;
        self.unacked_bytes = self.unacked_bytes.saturating_add(n as u32);
        let mut filled_hole = false;
        while let Some(ooo_end) = self.ooo.pop_contiguous(self.rcv_nxt) {
            if ooo_end > self.rcv_nxt {
                let add = ooo_end.since(self.rcv_nxt);
                self.recv_buf.commit(add as usize);
                self.rcv_nxt = ooo_end;
                self.stats.bytes_in += u64::from(add);
            }
            filled_hole = true;
        }
        self.rcv_space_adjust(now);
        if filled_hole || !self.ooo.is_empty() {
            // RFC 5681 §4.2: ACK at once when a segment fills (part of) a gap.
            self.ack_now = true;
        } else if self.quickack > 0 {
            self.quickack -= 1;
            self.ack_now = true;
        } else if self.unacked_bytes >= 2 * self.rcv_mss {
            // RFC 5681 §4.2 / RFC 1122 §4.2.3.2: ACK at least every second full-sized segment.
            self.ack_now = true;
        } else if self.delack_deadline.is_none() {
            // `now + cfg.delayed_ack`, with the microseconds worked out at construction.
            self.delack_deadline = Some(Instant::from_micros(
                now.total_micros().saturating_add(self.delayed_ack_micros),
            ));
        }
    }

    /// RFC 9293 §3.10.7.4 eighth check: an in-order FIN.
    fn process_fin(&mut self, now: Instant) {
        self.rcv_nxt += 1u32;
        self.fin_received = true;
        self.ack_now = true;
        match self.state {
            State::SynReceived | State::Established => self.state = State::CloseWait,
            State::FinWait1 if self.fin_acked() => self.enter_time_wait(now),
            State::FinWait1 => self.state = State::Closing,
            State::FinWait2 => self.enter_time_wait(now),
            State::TimeWait => self.close_deadline = Some(now + self.cfg.time_wait),
            _ => {}
        }
    }
}

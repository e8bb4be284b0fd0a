//! Header prediction (Van Jacobson, "4BSD header prediction", 1990; Linux
//! `tcp_rcv_established`'s fast path): most segments of an established connection are the
//! one it expects next — in order, acknowledging new data or carrying the next text, with
//! nothing unusual going on at either end. For those the checks of RFC 9293 §3.10.7.4 all
//! come out the same way, so a short path applies their effects directly.
//!
//! The short path runs only when every condition below holds ([`Tcb::predicts`]); it then
//! has exactly the effects of the full processing (`input.rs`, `recovery.rs`) and calls
//! the same helpers for them (`ack_new_data`, `rack_on_ack`, `after_ack`,
//! `update_send_window`, `queue_in_order`), so the two cannot drift apart. What it skips is
//! what the conditions make a no-op: PAWS rejection and the acceptability test, RST, SYN
//! and FIN handling, ECN input and echo, duplicate-ACK counting, the SACK scoreboard,
//! F-RTO and the probe episode, trimming to the window, and state transitions.
//! [`TcpConfig::header_prediction`](super::TcpConfig::header_prediction) turns it off; the
//! differential tests (`tests/tcp_header_prediction.rs`) run both ways and compare.
//!
//! Unlike 4.4BSD and Linux, the prediction does not require the window field to be the
//! one last seen. Those stacks keep the advertised window constant while small segments
//! arrive; surge's receiver avoids silly windows by holding the right edge until it can
//! move by an MSS (RFC 1122 §4.2.3.3), so the field shrinks with every small segment and
//! changed on every other one of a 64-byte echo (half the segments missed the
//! prediction). For a predicted segment the window matters only to the RFC 9293
//! §3.10.7.4 window update, which the short path applies with the same rule
//! (`update_send_window`); the one other reader of it, the RFC 5681 duplicate-ACK test,
//! needs an ACK that neither advances nor carries text, which is never predicted.
//!
//! Two conditions are stricter than equivalence needs, and cheap: an empty out-of-order
//! queue (`queue_in_order` pops it as the general path does) and no sender model (the
//! shared helpers feed it when there is one). The second means a connection that paced
//! or runs BBR never takes the short path: the model is made then and kept. (A SACK block
//! does not make it: the scoreboard's scratch space is the thread's.)

use super::State;
use super::ecn::Ecn;
use super::input::ts_before;
use super::seq::SeqNumber;
use super::tcb::Tcb;
use crate::time::Instant;
use crate::wire::{TcpFlags, TcpRepr};

impl Tcb {
    /// Handles `seg` on the short path when it is the predicted segment, and returns true;
    /// otherwise returns false having changed nothing (the caller runs the full checks).
    pub(super) fn handle_predicted(
        &mut self,
        now: Instant,
        seg: &TcpRepr,
        payload: &[u8],
        ecn: Ecn,
    ) -> bool {
        if !self.predicts(seg, payload, ecn) {
            return false;
        }
        self.stats.predicted += 1;
        let seq = self.rcv_nxt;
        let ack = SeqNumber(seg.ack_number);
        // RFC 9293 §3.10.7.4 first: acceptable (SEG.SEQ = RCV.NXT, the text fits the window).
        self.last_recv = now;
        self.keepalive_probes = 0;
        // Third (RFC 7323 §4.3): the TSval passed PAWS; remember it.
        self.remember_timestamp(now, seg, seq);
        // Fifth: SND.UNA =< SEG.ACK =< SND.MAX.
        let sack_recovery = self.rack_mode();
        let advances = ack > self.snd_una;
        // The congestion controller's sample (`rack_on_ack`) needs the pipe as it was before
        // the ACK, and is taken only for an ACK of new data while the window may grow. Of
        // what follows, only entering recovery could change that test's answer, and in
        // recovery no sample is taken: an application-limited exchange never counts the pipe.
        let before = (sack_recovery && advances && self.cwnd_may_grow())
            .then(|| (self.pipe(), self.sent.lost_total));
        let (acked, rtt) = if advances {
            self.ack_new_data(now, seg, ack, sack_recovery)
        } else {
            if !sack_recovery {
                // Text without new ACK: not a duplicate ACK (RFC 5681 §2 (b)); the count restarts.
                self.dup_acks = 0;
            }
            (0, None)
        };
        if sack_recovery {
            // Nothing was SACKed before and no SACK block came: only the cumulative ACK counts.
            self.rack_on_ack(now, ack, acked, 0, before, rtt);
        }
        self.after_ack(now, u64::from(acked), acked);
        let window = u32::from(seg.window_len) << self.snd_wscale;
        self.update_send_window(seq, ack, window);
        // Seventh: the text, in order and within the window.
        if !payload.is_empty() {
            self.queue_in_order(now, seg, payload);
        }
        true
    }

    /// The prediction: `seg` is the segment this connection expects, and both ends are in
    /// the state where the full processing of it reduces to the short path.
    fn predicts(&self, seg: &TcpRepr, payload: &[u8], ecn: Ecn) -> bool {
        let ack = SeqNumber(seg.ack_number);
        // The segment: ACK (PSH is advisory) and nothing else, at RCV.NXT, no SACK blocks, an
        // ACK in [SND.UNA, SND.MAX] that advances or comes with text, text that fits the
        // window, no congestion mark to echo. The window field may change: see `fast.rs`.
        self.state == State::Established
            && self.cfg.header_prediction
            && seg.flags.without(TcpFlags::PSH) == TcpFlags::ACK
            && SeqNumber(seg.seq_number) == self.rcv_nxt
            && seg.options.sack_blocks.is_empty()
            && ack >= self.snd_una
            && ack <= self.snd_max
            && (ack > self.snd_una || !payload.is_empty())
            && payload.len() <= self.rcv_adv.since(self.rcv_nxt) as usize
            && self.timestamp_predicted(seg)
            && !(self.ecn_ok && ecn == Ecn::Ce)
            // The receiver: no gap to fill, no FIN waiting, the user still reads.
            && self.ooo.is_empty()
            && self.ooo_fin.is_none()
            && !self.user_closed
            // The sender: quiet, no loss being repaired or probed for, no rate model.
            && !self.in_recovery
            && !self.in_loss
            && self.frto.is_none()
            && self.tlp_end.is_none()
            && self.sender.is_none()
            && self.sent.sacked == 0
            && !self.cc_controls_recovery()
    }

    /// With timestamps on, the segment carries one whose TSval is not older than TS.Recent
    /// (RFC 7323 §5.3 R1: PAWS passes without looking at the idle time).
    fn timestamp_predicted(&self, seg: &TcpRepr) -> bool {
        if !self.ts_enabled {
            return true;
        }
        match seg.options.timestamp {
            Some((tsval, _)) => !ts_before(tsval, self.ts_recent),
            None => false,
        }
    }
}

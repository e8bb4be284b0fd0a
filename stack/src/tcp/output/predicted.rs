//! Output prediction, the sending half of header prediction (`fast.rs`; Van Jacobson's
//! 1990 note, Linux's `tcp_write_xmit` for the common case): most segments an
//! established connection sends are the next new data, with nothing unusual going on —
//! no reset, probe, retransmission or FIN due, no loss being repaired, no pacer or rate
//! model. For those, the general output path (`next_transmit`, `transmit_synchronized`,
//! `emit_data`) asks a dozen questions whose answers are known; the short path here
//! builds the same segment without them.
//!
//! The short path runs only when every condition of [`Tcb::predicts_transmit`] holds, and
//! calls the same helpers as `emit_data` for every effect (`restart_after_idle`,
//! `send_room`, `send_ok`, `data_flags`, `commit_data`, and `header` or, for the usual
//! header of timestamps alone, `timestamp_header`, which shares its parts), with the
//! arguments the conditions fix (no retransmission, no FIN, no forced send, no extra
//! window), so the two cannot drift apart. When it finds nothing to send now (an empty queue, a closed
//! window, Nagle) it hands over to the general path having changed nothing but what
//! that path would do first anyway (the idle restart, which is idempotent), and the
//! general path does the bookkeeping of a connection that does not send (cwnd validation,
//! app-limited marks, the persist timer).
//!
//! [`TcpConfig::transmit_prediction`](crate::tcp::TcpConfig::transmit_prediction) turns it
//! off, [`TcpStats::predicted_transmits`](crate::tcp::TcpStats::predicted_transmits) counts
//! it; the differential tests (`tests/tcp_transmit_prediction.rs`, and frame by frame
//! through the engine `tests/engine_transmit_prediction.rs`) run both ways and compare.

use crate::tcp::State;
use crate::tcp::seq::SeqNumber;
use crate::tcp::tcb::Tcb;
use crate::time::Instant;
use crate::wire::TcpFlags;

impl Tcb {
    /// The prediction: the next segment, if any, is new data from SND.NXT = SND.MAX of an
    /// established connection whose general output path reduces to `emit_data` with no
    /// retransmission, FIN, forced send or extra window, and no pacing.
    #[inline(always)]
    pub(in crate::tcp) fn predicts_transmit(&self) -> bool {
        self.state == State::Established
            && self.cfg.transmit_prediction
            // Nothing ahead of new data in `next_transmit` / `transmit_synchronized`: no
            // reset, no retransmission or loss repair, no probe of either kind.
            && self.pending_rst.is_none()
            && self.snd_nxt == self.snd_max
            && !self.retransmit_head
            && self.tlp_pending.is_none()
            && self.probe.is_none()
            && !self.sent.has_lost_to_send()
            // `emit_data`'s arguments fixed: no FIN, no forced send, no F-RTO allowance,
            // no pacer or rate sampler (the sender model), no model-based algorithm.
            && !self.fin_queued
            && !self.force_send
            && self.frto.is_none()
            && self.sender.is_none()
            && !self.cc_model
    }

    /// The predicted segment, built on the short path up to its header: its sequence
    /// number, payload length (the payload is in `out`) and flags, for the caller to build
    /// the header with (`header` or `timestamp_header`, as `emit_data` does with
    /// `header`) and mark (`count_transmit`). `None` when it finds nothing to send now,
    /// having changed nothing the general path would not change first (call that next).
    /// Only when [`predicts_transmit`](Self::predicts_transmit) holds.
    #[inline(always)]
    pub(in crate::tcp) fn emit_predicted(
        &mut self,
        now: Instant,
        out: &mut [u8],
    ) -> Option<(SeqNumber, usize, TcpFlags)> {
        self.restart_after_idle(now);
        let offset = self.snd_nxt.since(self.snd_buf_start) as usize;
        let buffered = self.send_buf.len();
        let unsent = buffered.saturating_sub(offset);
        let sack_recovery = self.rack_mode();
        if sack_recovery && !self.sent.has_room() {
            return None;
        }
        let (flight, _, usable, window) = self.send_room(sack_recovery, 0);
        let len = unsent.min(self.snd_mss as usize).min(usable).min(out.len());
        if len == 0 || !self.send_ok(len, unsent, flight, false, false) {
            return None;
        }
        self.stats.predicted_transmits += 1;
        let seq = self.snd_nxt;
        let n = self.send_buf.peek_at(offset, &mut out[..len]);
        let flags = super::data_flags(offset + n == buffered && n > 0, false);
        self.commit_data(now, seq, n, false, false, sack_recovery, window);
        Some((seq, n, flags))
    }
}

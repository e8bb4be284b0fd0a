//! TIME-WAIT decisions the engine asks about (RFC 6191, Linux `tcp_tw_reuse`).

use super::State;
use super::seq::SeqNumber;
use super::tcb::Tcb;
use crate::time::Instant;
use crate::wire::{TcpFlags, TcpRepr};
use core::time::Duration;

impl Tcb {
    /// Linux `tcp_tw_reuse`: an active open may take over this TIME-WAIT 4-tuple when
    /// timestamps were in use and the last one from the peer is at least a second old, so
    /// PAWS on the peer rejects old duplicates.
    pub fn can_reuse_time_wait(&self, now: Instant) -> bool {
        self.state == State::TimeWait
            && self.ts_enabled
            && now - self.ts_recent_age >= Duration::from_secs(1)
    }

    /// An ISN for a connection that reuses this 4-tuple: beyond anything this incarnation
    /// sent, plus a maximal window (as Linux `tcp_twsk_unique`).
    pub fn time_wait_reuse_iss(&self) -> u32 {
        (self.snd_nxt + 65535u32 + 2u32).0
    }

    /// RFC 6191 §2 (and RFC 9293 Appendix B): may a new SYN reopen this TIME-WAIT
    /// connection? Yes when its timestamp is newer than the last one seen, or, without
    /// timestamps, when its sequence number is beyond the old receive sequence.
    pub fn time_wait_accepts_syn(&self, syn: &TcpRepr) -> bool {
        if self.state != State::TimeWait
            || !syn.flags.contains(TcpFlags::SYN)
            || syn.flags.intersects(TcpFlags::ACK | TcpFlags::RST)
        {
            return false;
        }
        match (self.ts_enabled, syn.options.timestamp) {
            (true, Some((tsval, _))) => (tsval.wrapping_sub(self.ts_recent) as i32) > 0,
            _ => SeqNumber(syn.seq_number) > self.rcv_nxt,
        }
    }
}

//! Explicit Congestion Notification (RFC 3168), off by default ([`TcpConfig::ecn`]).
//!
//! - Negotiation (§6.1.1): our SYN carries ECE and CWR; a SYN-ACK with ECE and without CWR
//!   turns it on. A SYN with ECE and CWR is answered with ECE in the SYN-ACK.
//! - Sending (§6.1.2, §6.1.5): new data segments go out ECN-capable (ECT(0)); pure ACKs,
//!   SYNs, window probes and retransmissions do not. An ACK with ECE makes the sender
//!   reduce its congestion window as for a loss, without retransmitting, at most once per
//!   window of data, and set CWR on the next new data segment.
//! - Receiving (§6.1.3): a data segment that arrives with CE makes every ACK carry ECE
//!   until a segment with CWR arrives.
//!
//! A connection set up through a SYN cookie does not use ECN (the cookie does not carry
//! it; Linux keeps it in the timestamp's low bits).
//!
//! [`TcpConfig::ecn`]: super::TcpConfig::ecn

use super::seq::SeqNumber;
use super::tcb::Tcb;
use crate::time::Instant;
use crate::wire::{TcpFlags, TcpRepr};

/// The ECN field of the IP header that carries a segment (RFC 3168 §5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Ecn {
    /// Not ECN-capable transport (00).
    #[default]
    NotEct,
    /// ECT(1) (01).
    Ect1,
    /// ECT(0) (10): what an ECN-capable sender sets.
    Ect0,
    /// Congestion experienced (11): set by a router instead of dropping.
    Ce,
}

impl Ecn {
    /// The field from the IP header's DSCP/ECN byte (its low two bits).
    pub fn from_dscp_ecn(dscp_ecn: u8) -> Ecn {
        match dscp_ecn & 0b11 {
            0b00 => Ecn::NotEct,
            0b01 => Ecn::Ect1,
            0b10 => Ecn::Ect0,
            _ => Ecn::Ce,
        }
    }

    /// The two bits to write into the IP header's DSCP/ECN byte.
    pub fn bits(self) -> u8 {
        match self {
            Ecn::NotEct => 0b00,
            Ecn::Ect1 => 0b01,
            Ecn::Ect0 => 0b10,
            Ecn::Ce => 0b11,
        }
    }
}

impl Tcb {
    /// RFC 3168 §6.1.1: whether the peer's SYN (ECE and CWR) or SYN-ACK (ECE without CWR)
    /// agrees to ECN, given that we offer it.
    pub(super) fn negotiate_ecn(&mut self, syn: &TcpRepr) {
        let f = syn.flags;
        let agreed = if f.contains(TcpFlags::ACK) {
            f.contains(TcpFlags::ECE) && !f.contains(TcpFlags::CWR)
        } else {
            f.contains(TcpFlags::ECE) && f.contains(TcpFlags::CWR)
        };
        self.ecn_ok = self.cfg.ecn && agreed;
    }

    /// ECN on an acceptable segment in a synchronized state: CWR ends our echo, CE on data
    /// starts it (RFC 3168 §6.1.3).
    pub(super) fn ecn_input(&mut self, seg: &TcpRepr, payload_len: usize, ecn: Ecn) {
        if !self.ecn_ok {
            return;
        }
        if seg.flags.contains(TcpFlags::CWR) {
            self.ece_pending = false;
        }
        if ecn == Ecn::Ce && payload_len > 0 {
            self.stats.ecn_ce_received += 1;
            if !self.ece_pending {
                // The first mark of an episode is echoed at once (Linux quick-acks it).
                self.ack_now = true;
            }
            self.ece_pending = true;
        }
    }

    /// RFC 3168 §6.1.2: an ACK with ECE reduces the congestion window as a loss would, at
    /// most once per window of data, and without retransmitting; CWR goes on the next new
    /// data segment.
    pub(super) fn ecn_echo(&mut self, now: Instant, seg: &TcpRepr) {
        if !self.ecn_ok || !seg.flags.contains(TcpFlags::ECE) || seg.flags.contains(TcpFlags::SYN) {
            return;
        }
        // Already reduced for this window: by loss recovery or an earlier echo.
        if self.in_recovery || self.in_loss || self.snd_una <= self.ecn_high_seq {
            return;
        }
        let flight = self.snd_max.since(self.snd_una);
        self.cc.on_congestion_event(now, flight, self.snd_mss);
        self.ecn_high_seq = self.snd_max;
        self.cwr_pending = true;
        self.stats.ecn_reductions += 1;
    }

    /// The ECN marks of a segment about to leave, on its parts: ECT(0) in its IP `ecn`
    /// field and a pending CWR in its `flags` on new data, ECE on ACKs while a CE mark
    /// awaits its CWR. `snd_max` is the value from before the segment was built (a segment
    /// starting there is new data). Takes the parts rather than a [`Transmit`](super::Transmit): the output
    /// prediction's usual header is written straight into the frame, without one.
    #[inline(always)]
    pub(super) fn ecn_marks(
        &mut self,
        flags: &mut TcpFlags,
        ecn: &mut Ecn,
        seq: SeqNumber,
        payload_len: usize,
        snd_max: SeqNumber,
    ) {
        if !self.ecn_ok {
            return;
        }
        let f = *flags;
        if f.intersects(TcpFlags::SYN | TcpFlags::RST) {
            return;
        }
        if payload_len > 0 && seq >= snd_max {
            *ecn = Ecn::Ect0;
            if self.cwr_pending {
                self.cwr_pending = false;
                *flags |= TcpFlags::CWR;
            }
        }
        if self.ece_pending && f.contains(TcpFlags::ACK) {
            *flags |= TcpFlags::ECE;
        }
    }
}

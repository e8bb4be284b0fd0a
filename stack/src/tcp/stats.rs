//! Per-connection counters, plain integers read by the engine.

use core::time::Duration;

/// Counters and estimates for one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TcpStats {
    /// Segments handed to `handle_segment`.
    pub segs_in: u64,
    /// Of those, segments header prediction handled on its short path
    /// ([`TcpConfig::header_prediction`](super::TcpConfig::header_prediction)).
    pub predicted: u64,
    /// Segments returned by `poll_transmit`.
    pub segs_out: u64,
    /// Of those, data segments output prediction built on its short path
    /// ([`TcpConfig::transmit_prediction`](super::TcpConfig::transmit_prediction)).
    pub predicted_transmits: u64,
    /// Payload bytes accepted in order (delivered to the receive buffer).
    pub bytes_in: u64,
    /// Payload bytes acknowledged by the peer.
    pub bytes_acked: u64,
    /// Payload bytes sent for the first time.
    pub bytes_out: u64,
    /// Segments retransmitted (RTO, fast retransmit, NewReno partial ACKs).
    pub retransmits: u64,
    /// Retransmission timeouts that fired.
    pub rto_expirations: u64,
    /// Fast retransmits (RFC 5681 §3.2): entries into loss recovery.
    pub fast_retransmits: u64,
    /// SACK blocks received and used (RFC 2018).
    pub sack_blocks: u64,
    /// SACK blocks dropped: reversed, outside the window, or over the scoreboard bound.
    pub sack_blocks_rejected: u64,
    /// D-SACK reports received (RFC 2883).
    pub dsacks: u64,
    /// Segments marked lost (RACK, RFC 8985 §6, or an RTO).
    pub lost_segments: u64,
    /// Tail loss probes sent (RFC 8985 §7).
    pub tlp_probes: u64,
    /// Losses repaired by a tail loss probe (RFC 8985 §7.4).
    pub tlp_recoveries: u64,
    /// Retransmission timeouts found spurious by F-RTO (RFC 5682) and undone.
    pub spurious_rtos: u64,
    /// Congestion responses undone because D-SACKs showed every retransmission of the
    /// episode was needless (RFC 3708).
    pub spurious_recoveries: u64,
    /// Duplicate ACKs received (RFC 5681 §2).
    pub dup_acks: u64,
    /// Out-of-order payload bytes received and queued.
    pub ooo_bytes: u64,
    /// Out-of-order segments dropped because the queue was full.
    pub ooo_dropped: u64,
    /// Out-of-order ranges forgotten to make room for data nearer `RCV.NXT`.
    pub ooo_pruned: u64,
    /// Challenge ACKs sent (RFC 5961).
    pub challenge_acks: u64,
    /// Challenge ACKs suppressed by the per-connection rate limit (RFC 5961 §7).
    pub challenge_acks_suppressed: u64,
    /// Segments dropped as not acceptable (RFC 9293 §3.10.7.4 first check).
    pub unacceptable: u64,
    /// Segments without ACK in a synchronized state, dropped (RFC 9293 §3.10.7.4 fifth).
    pub no_ack_dropped: u64,
    /// Segments dropped by PAWS (RFC 7323 §5).
    pub paws_rejected: u64,
    /// ACKs for data never sent (RFC 5961 §5.2), dropped.
    pub ack_too_new: u64,
    /// ACKs too old to be believed (RFC 5961 §5.2), dropped.
    pub ack_too_old: u64,
    /// Zero-window probes sent.
    pub window_probes: u64,
    /// Keepalive probes sent.
    pub keepalive_probes: u64,
    /// RSTs sent.
    pub rsts_out: u64,
    /// Pure ACKs sent after the delayed-ACK timer fired.
    pub delayed_acks: u64,
    /// Path-MTU reductions applied (RFC 1191).
    pub pmtu_updates: u64,
    /// ICMP messages ignored because they quoted a sequence number not in flight (RFC 5927 §4.1).
    pub icmp_ignored: u64,
    /// Data segments received with CE (RFC 3168 §6.1.3), on an ECN connection.
    pub ecn_ce_received: u64,
    /// Congestion-window reductions for an ECN echo (RFC 3168 §6.1.2).
    pub ecn_reductions: u64,
    /// Smoothed RTT (RFC 6298), zero before the first sample.
    pub srtt: Duration,
    /// RTT variation (RFC 6298).
    pub rttvar: Duration,
    /// Current retransmission timeout, before backoff.
    pub rto: Duration,
    /// Congestion window in bytes.
    pub cwnd: u32,
    /// Slow-start threshold in bytes.
    pub ssthresh: u32,
    /// Effective send MSS (payload bytes per segment).
    pub snd_mss: u32,
}

/// The counters a connection keeps (the storage behind [`TcpStats`]): byte and segment
/// counts in 64 bits, event counts in 32, and no copies of the live estimates, so an idle
/// connection carries less. [`super::Tcb::stats`] widens them into a `TcpStats`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(super) struct TcpCounters {
    /// Segments handed to `handle_segment`.
    pub segs_in: u64,
    /// Of those, segments header prediction handled on its short path
    /// ([`TcpConfig::header_prediction`](super::TcpConfig::header_prediction)).
    pub predicted: u64,
    /// Segments returned by `poll_transmit`.
    pub segs_out: u64,
    /// Of those, data segments output prediction built on its short path
    /// ([`TcpConfig::transmit_prediction`](super::TcpConfig::transmit_prediction)).
    pub predicted_transmits: u64,
    /// Payload bytes accepted in order (delivered to the receive buffer).
    pub bytes_in: u64,
    /// Payload bytes acknowledged by the peer.
    pub bytes_acked: u64,
    /// Payload bytes sent for the first time.
    pub bytes_out: u64,
    /// Segments retransmitted (RTO, fast retransmit, NewReno partial ACKs).
    pub retransmits: u32,
    /// Retransmission timeouts that fired.
    pub rto_expirations: u32,
    /// Fast retransmits (RFC 5681 §3.2): entries into loss recovery.
    pub fast_retransmits: u32,
    /// SACK blocks received and used (RFC 2018).
    pub sack_blocks: u32,
    /// SACK blocks dropped: reversed, outside the window, or over the scoreboard bound.
    pub sack_blocks_rejected: u32,
    /// D-SACK reports received (RFC 2883).
    pub dsacks: u32,
    /// Segments marked lost (RACK, RFC 8985 §6, or an RTO).
    pub lost_segments: u32,
    /// Tail loss probes sent (RFC 8985 §7).
    pub tlp_probes: u32,
    /// Losses repaired by a tail loss probe (RFC 8985 §7.4).
    pub tlp_recoveries: u32,
    /// Retransmission timeouts found spurious by F-RTO (RFC 5682) and undone.
    pub spurious_rtos: u32,
    /// Congestion responses undone because D-SACKs showed every retransmission of the
    /// episode was needless (RFC 3708).
    pub spurious_recoveries: u32,
    /// Duplicate ACKs received (RFC 5681 §2).
    pub dup_acks: u32,
    /// Out-of-order payload bytes received and queued.
    pub ooo_bytes: u64,
    /// Out-of-order segments dropped because the queue was full.
    pub ooo_dropped: u32,
    /// Out-of-order ranges forgotten to make room for data nearer `RCV.NXT`.
    pub ooo_pruned: u32,
    /// Challenge ACKs sent (RFC 5961).
    pub challenge_acks: u32,
    /// Challenge ACKs suppressed by the per-connection rate limit (RFC 5961 §7).
    pub challenge_acks_suppressed: u32,
    /// Segments dropped as not acceptable (RFC 9293 §3.10.7.4 first check).
    pub unacceptable: u32,
    /// Segments without ACK in a synchronized state, dropped (RFC 9293 §3.10.7.4 fifth).
    pub no_ack_dropped: u32,
    /// Segments dropped by PAWS (RFC 7323 §5).
    pub paws_rejected: u32,
    /// ACKs for data never sent (RFC 5961 §5.2), dropped.
    pub ack_too_new: u32,
    /// ACKs too old to be believed (RFC 5961 §5.2), dropped.
    pub ack_too_old: u32,
    /// Zero-window probes sent.
    pub window_probes: u32,
    /// Keepalive probes sent.
    pub keepalive_probes: u32,
    /// RSTs sent.
    pub rsts_out: u32,
    /// Pure ACKs sent after the delayed-ACK timer fired.
    pub delayed_acks: u32,
    /// Path-MTU reductions applied (RFC 1191).
    pub pmtu_updates: u32,
    /// ICMP messages ignored because they quoted a sequence number not in flight (RFC 5927 §4.1).
    pub icmp_ignored: u32,
    /// Data segments received with CE (RFC 3168 §6.1.3), on an ECN connection.
    pub ecn_ce_received: u32,
    /// Congestion-window reductions for an ECN echo (RFC 3168 §6.1.2).
    pub ecn_reductions: u32,
}

impl TcpCounters {
    /// The counters with the live estimates, as callers read them.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn snapshot(
        &self,
        srtt: Duration,
        rttvar: Duration,
        rto: Duration,
        cwnd: u32,
        ssthresh: u32,
        snd_mss: u32,
    ) -> TcpStats {
        TcpStats {
            segs_in: self.segs_in,
            predicted: self.predicted,
            segs_out: self.segs_out,
            predicted_transmits: self.predicted_transmits,
            bytes_in: self.bytes_in,
            bytes_acked: self.bytes_acked,
            bytes_out: self.bytes_out,
            retransmits: u64::from(self.retransmits),
            rto_expirations: u64::from(self.rto_expirations),
            fast_retransmits: u64::from(self.fast_retransmits),
            sack_blocks: u64::from(self.sack_blocks),
            sack_blocks_rejected: u64::from(self.sack_blocks_rejected),
            dsacks: u64::from(self.dsacks),
            lost_segments: u64::from(self.lost_segments),
            tlp_probes: u64::from(self.tlp_probes),
            tlp_recoveries: u64::from(self.tlp_recoveries),
            spurious_rtos: u64::from(self.spurious_rtos),
            spurious_recoveries: u64::from(self.spurious_recoveries),
            dup_acks: u64::from(self.dup_acks),
            ooo_bytes: self.ooo_bytes,
            ooo_dropped: u64::from(self.ooo_dropped),
            ooo_pruned: u64::from(self.ooo_pruned),
            challenge_acks: u64::from(self.challenge_acks),
            challenge_acks_suppressed: u64::from(self.challenge_acks_suppressed),
            unacceptable: u64::from(self.unacceptable),
            no_ack_dropped: u64::from(self.no_ack_dropped),
            paws_rejected: u64::from(self.paws_rejected),
            ack_too_new: u64::from(self.ack_too_new),
            ack_too_old: u64::from(self.ack_too_old),
            window_probes: u64::from(self.window_probes),
            keepalive_probes: u64::from(self.keepalive_probes),
            rsts_out: u64::from(self.rsts_out),
            delayed_acks: u64::from(self.delayed_acks),
            pmtu_updates: u64::from(self.pmtu_updates),
            icmp_ignored: u64::from(self.icmp_ignored),
            ecn_ce_received: u64::from(self.ecn_ce_received),
            ecn_reductions: u64::from(self.ecn_reductions),
            srtt,
            rttvar,
            rto,
            cwnd,
            ssthresh,
            snd_mss,
        }
    }
}

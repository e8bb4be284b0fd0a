//! Per-core engine counters: plain integers, summed across cores when read.

use crate::reassembly::FragmentDrop;
use crate::wire::WireError;

/// Why a received frame was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DropReason {
    /// Shorter than its headers say.
    Truncated,
    /// IP version not 4.
    BadVersion,
    /// A header length field out of range.
    BadHeaderLen,
    /// A length field inconsistent with the frame.
    BadLength,
    /// A checksum that does not verify.
    BadChecksum,
    /// A malformed option.
    BadOption,
    /// An EtherType or protocol surge does not handle (IPv6, ...).
    Unsupported,
    /// Addressed to another MAC.
    NotOurMac,
    /// Addressed to an IPv4 address that is not ours.
    NotOurIp,
    /// An IPv4 fragment that could not be handled (no longer counted since
    /// reassembly; the `Fragment*` reasons below say why fragments go).
    Fragment,
    /// A source address no host may use (broadcast, multicast, ours).
    BadSource,
    /// UDP to a port nobody listens on (an ICMP port unreachable was sent).
    UdpNoPort,
    /// UDP for a socket whose receive queue is full.
    UdpRcvbufFull,
    /// An ICMP message surge ignores.
    IcmpIgnored,
    /// An ARP packet not for us.
    ArpNotForUs,
    /// A TCP segment for no connection (answered with RST unless it was one).
    TcpNoConnection,
    /// A SYN dropped because a listener's SYN queue or accept queue was full.
    TcpListenOverflow,
    /// A segment dropped by the TCP state machine (out of window, bad ACK, ...).
    TcpRejected,
    /// A TCP flag combination no stack sends (SYN+FIN to a listener).
    TcpBadFlags,
    /// An IPv4 fragment overlapping another of its datagram: the whole datagram
    /// is dropped (RFC 5722's rule for IPv6, applied to IPv4 as Linux does).
    FragmentOverlap,
    /// A first fragment too short for its transport header (RFC 1858 §3.2).
    FragmentTiny,
    /// A fragment that would make its datagram longer than 65,535 bytes, or a
    /// datagram whose pieces disagree on where it ends.
    FragmentBadLength,
    /// A fragment refused because reassembly memory (per source or in total) is full.
    FragmentNoMemory,
    /// A datagram's fragments that did not all arrive in time (counted per fragment held).
    FragmentTimeout,
}

impl DropReason {
    /// Every reason, in the order [`EngineStats::drops`] stores them.
    pub const ALL: [DropReason; 24] = [
        DropReason::Truncated,
        DropReason::BadVersion,
        DropReason::BadHeaderLen,
        DropReason::BadLength,
        DropReason::BadChecksum,
        DropReason::BadOption,
        DropReason::Unsupported,
        DropReason::NotOurMac,
        DropReason::NotOurIp,
        DropReason::Fragment,
        DropReason::BadSource,
        DropReason::UdpNoPort,
        DropReason::UdpRcvbufFull,
        DropReason::IcmpIgnored,
        DropReason::ArpNotForUs,
        DropReason::TcpNoConnection,
        DropReason::TcpListenOverflow,
        DropReason::TcpRejected,
        DropReason::TcpBadFlags,
        DropReason::FragmentOverlap,
        DropReason::FragmentTiny,
        DropReason::FragmentBadLength,
        DropReason::FragmentNoMemory,
        DropReason::FragmentTimeout,
    ];

    /// A short stable name for reports (`bad_checksum`, ...).
    pub const fn name(self) -> &'static str {
        match self {
            DropReason::Truncated => "truncated",
            DropReason::BadVersion => "bad_version",
            DropReason::BadHeaderLen => "bad_header_len",
            DropReason::BadLength => "bad_length",
            DropReason::BadChecksum => "bad_checksum",
            DropReason::BadOption => "bad_option",
            DropReason::Unsupported => "unsupported",
            DropReason::NotOurMac => "not_our_mac",
            DropReason::NotOurIp => "not_our_ip",
            DropReason::Fragment => "fragment",
            DropReason::BadSource => "bad_source",
            DropReason::UdpNoPort => "udp_no_port",
            DropReason::UdpRcvbufFull => "udp_rcvbuf_full",
            DropReason::IcmpIgnored => "icmp_ignored",
            DropReason::ArpNotForUs => "arp_not_for_us",
            DropReason::TcpNoConnection => "tcp_no_connection",
            DropReason::TcpListenOverflow => "tcp_listen_overflow",
            DropReason::TcpRejected => "tcp_rejected",
            DropReason::TcpBadFlags => "tcp_bad_flags",
            DropReason::FragmentOverlap => "fragment_overlap",
            DropReason::FragmentTiny => "fragment_tiny",
            DropReason::FragmentBadLength => "fragment_bad_length",
            DropReason::FragmentNoMemory => "fragment_no_memory",
            DropReason::FragmentTimeout => "fragment_timeout",
        }
    }

    const fn index(self) -> usize {
        self as usize
    }
}

impl From<FragmentDrop> for DropReason {
    fn from(d: FragmentDrop) -> Self {
        match d {
            FragmentDrop::Overlap => DropReason::FragmentOverlap,
            FragmentDrop::Tiny => DropReason::FragmentTiny,
            FragmentDrop::BadLength => DropReason::FragmentBadLength,
            FragmentDrop::NoMemory => DropReason::FragmentNoMemory,
        }
    }
}

impl From<WireError> for DropReason {
    fn from(e: WireError) -> Self {
        match e {
            WireError::Truncated => DropReason::Truncated,
            WireError::BadVersion => DropReason::BadVersion,
            WireError::BadHeaderLen => DropReason::BadHeaderLen,
            WireError::BadLength => DropReason::BadLength,
            WireError::BadChecksum => DropReason::BadChecksum,
            WireError::BadOption => DropReason::BadOption,
            _ => DropReason::Unsupported,
        }
    }
}

/// Counters of one engine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EngineStats {
    /// Frames received.
    pub rx_frames: u64,
    /// Bytes received.
    pub rx_bytes: u64,
    /// Frames handed to the device for sending.
    pub tx_frames: u64,
    /// Bytes handed to the device for sending.
    pub tx_bytes: u64,
    /// Frames not sent because the device had no free TX frame.
    pub tx_no_frame: u64,
    /// ARP requests answered.
    pub arp_replies: u64,
    /// ARP requests sent.
    pub arp_requests: u64,
    /// ARP frames from another host claiming one of our addresses (RFC 5227).
    pub arp_conflicts: u64,
    /// Announcements sent to defend our address (at most one per 10 s).
    pub arp_defences: u64,
    /// ARP frames the kernel got and the engine saw through its [`super::ArpTap`]
    /// (a neighbour's gratuitous ARP, its requests for other hosts): merged into
    /// the neighbour cache as RFC 826 asks.
    pub arp_observed: u64,
    /// ICMP echo requests answered.
    pub icmp_echo_replies: u64,
    /// ICMP errors sent (port unreachable, ...).
    pub icmp_errors_sent: u64,
    /// TCP RSTs sent for segments to no connection.
    pub tcp_rst_sent: u64,
    /// Packets not sent because no route led to the destination.
    pub no_route: u64,
    /// Frames handed to the engine that owns them (multi-queue).
    pub forwarded_out: u64,
    /// Frames other engines handed to this one.
    pub forwarded_in: u64,
    /// Frames that should have been handed over but were dropped (inbox full,
    /// no free buffer).
    pub forward_dropped: u64,
    /// `socket` calls refused because the engine held `max_sockets` sockets (EMFILE).
    pub sockets_refused: u64,
    /// Dropped received frames, by [`DropReason`] (index with `DropReason as usize`).
    pub drops: [u64; DropReason::ALL.len()],
}

impl EngineStats {
    /// Counts one dropped frame.
    pub fn drop(&mut self, reason: DropReason) {
        self.drops[reason.index()] += 1;
    }

    /// Frames dropped for `reason`.
    pub fn dropped(&self, reason: DropReason) -> u64 {
        self.drops[reason.index()]
    }

    /// All drops, whatever the reason.
    pub fn total_drops(&self) -> u64 {
        self.drops.iter().sum()
    }

    /// Adds another engine's counters (for the stack-wide sum).
    pub fn add(&mut self, other: &EngineStats) {
        self.rx_frames += other.rx_frames;
        self.rx_bytes += other.rx_bytes;
        self.tx_frames += other.tx_frames;
        self.tx_bytes += other.tx_bytes;
        self.tx_no_frame += other.tx_no_frame;
        self.arp_replies += other.arp_replies;
        self.arp_requests += other.arp_requests;
        self.arp_conflicts += other.arp_conflicts;
        self.arp_defences += other.arp_defences;
        self.arp_observed += other.arp_observed;
        self.icmp_echo_replies += other.icmp_echo_replies;
        self.icmp_errors_sent += other.icmp_errors_sent;
        self.tcp_rst_sent += other.tcp_rst_sent;
        self.no_route += other.no_route;
        self.forwarded_out += other.forwarded_out;
        self.forwarded_in += other.forwarded_in;
        self.forward_dropped += other.forward_dropped;
        self.sockets_refused += other.sockets_refused;
        for (a, b) in self.drops.iter_mut().zip(other.drops.iter()) {
            *a += b;
        }
    }

    /// Non-zero drop counters with their names.
    pub fn drops_by_name(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        DropReason::ALL
            .iter()
            .map(|r| (r.name(), self.dropped(*r)))
            .filter(|(_, n)| *n > 0)
    }
}

/// Counters of the engine's TCP layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TcpEngineStats {
    /// Connections opened actively (`connect`).
    pub active_opens: u64,
    /// Connections opened passively (SYN to a listener).
    pub passive_opens: u64,
    /// Connections handed to the application by `accept`.
    pub accepted: u64,
    /// Connections that ended (reached CLOSED) and were freed.
    pub closed: u64,
    /// SYNs dropped: SYN queue or accept queue full.
    pub listen_overflows: u64,
    /// SYNs dropped: socket table or connection table full.
    pub table_full: u64,
    /// SYN-ACKs sent with a SYN cookie (SYN queue full, RFC 4987).
    pub syn_cookies_sent: u64,
    /// Connections opened from a valid SYN cookie.
    pub syn_cookies_accepted: u64,
    /// ACKs with a stale or forged SYN cookie, dropped.
    pub syn_cookies_rejected: u64,
    /// Connections that went into a TIME-WAIT record.
    pub time_wait_records: u64,
    /// Connections that closed without TIME-WAIT: the TIME-WAIT table was full.
    pub time_wait_overflow: u64,
    /// Segments not sent because no TX frame was free (retransmission recovers them).
    pub tx_blocked: u64,
    /// Active opens that took over a 4-tuple from our own TIME-WAIT (`tcp_tw_reuse`;
    /// Linux `TcpExtTWRecycled`).
    pub time_wait_reused: u64,
    /// `connect` calls refused because the connection table was at its limit
    /// (`max_connections` or `conn_table_memory`): ENOBUFS.
    pub connects_refused: u64,
    /// Segments whose payload was moved in its frame because the header came out
    /// longer or shorter than the connection's hint (SACK blocks came or went).
    pub payload_moves: u64,
    /// Pure ACKs for in-order data held until the start of the next iteration, so
    /// that the application's answer, written meanwhile, carries them.
    pub acks_held: u64,
    /// Held ACKs that went out on a data or FIN segment (one frame saved each).
    pub acks_merged: u64,
    /// Timer entries that fired before their connection's deadline (it moved later
    /// or went away) and were moved or dropped without running the connection.
    pub timers_early: u64,
}

impl TcpEngineStats {
    /// Adds another engine's counters (for the stack-wide sum).
    pub fn add(&mut self, other: &TcpEngineStats) {
        self.active_opens += other.active_opens;
        self.passive_opens += other.passive_opens;
        self.accepted += other.accepted;
        self.closed += other.closed;
        self.listen_overflows += other.listen_overflows;
        self.table_full += other.table_full;
        self.syn_cookies_sent += other.syn_cookies_sent;
        self.syn_cookies_accepted += other.syn_cookies_accepted;
        self.syn_cookies_rejected += other.syn_cookies_rejected;
        self.time_wait_records += other.time_wait_records;
        self.time_wait_overflow += other.time_wait_overflow;
        self.tx_blocked += other.tx_blocked;
        self.time_wait_reused += other.time_wait_reused;
        self.connects_refused += other.connects_refused;
        self.payload_moves += other.payload_moves;
        self.acks_held += other.acks_held;
        self.acks_merged += other.acks_merged;
        self.timers_early += other.timers_early;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_index_their_own_slot() {
        for (i, r) in DropReason::ALL.iter().enumerate() {
            assert_eq!(r.index(), i, "{r:?}");
        }
        let mut s = EngineStats::default();
        s.drop(DropReason::BadChecksum);
        s.drop(DropReason::BadChecksum);
        s.drop(DropReason::Fragment);
        assert_eq!(s.dropped(DropReason::BadChecksum), 2);
        assert_eq!(s.total_drops(), 3);
        let names: Vec<_> = s.drops_by_name().collect();
        assert_eq!(names, vec![("bad_checksum", 2), ("fragment", 1)]);
        let mut sum = EngineStats::default();
        sum.add(&s);
        sum.add(&s);
        assert_eq!(sum.dropped(DropReason::BadChecksum), 4);
    }
}

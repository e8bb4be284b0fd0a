//! ICMP input for a connection: path-MTU discovery (RFC 1191) and soft errors (RFC 5927, RFC 1122 §4.2.3.9).

use super::State;
use super::error::TcpError;
use super::seq::SeqNumber;
use super::tcb::Tcb;
use crate::time::Instant;

/// ICMP destination-unreachable kinds the engine passes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IcmpUnreachable {
    /// Code 0: network unreachable.
    Network,
    /// Code 1: host unreachable.
    Host,
    /// Code 2: protocol unreachable.
    Protocol,
    /// Code 3: port unreachable.
    Port,
    /// Codes 9, 10, 13: administratively prohibited.
    Prohibited,
}

/// IPv4 + TCP header bytes without options.
const IP_TCP_HEADERS: u16 = 40;
/// RFC 791: every IPv4 host accepts 68-byte datagrams; smaller MTUs are bogus.
const MIN_IPV4_MTU: u16 = 68;

impl Tcb {
    /// RFC 5927 §4.1: believe an ICMP error only if it quotes a sequence number in flight.
    fn icmp_in_window(&self, quoted_seq: u32) -> bool {
        let seq = SeqNumber(quoted_seq);
        let ok = seq >= self.snd_una && seq < self.snd_max.max_seq(self.snd_una + 1u32);
        ok || (self.state == State::SynSent && seq == self.iss)
    }

    /// ICMP fragmentation needed (type 3 code 4) with next-hop `mtu` (RFC 1191 §5 / RFC 5927 §7).
    /// `quoted_seq` is the sequence number in the quoted TCP header.
    pub fn handle_icmp_frag_needed(&mut self, _now: Instant, mtu: u16, quoted_seq: u32) {
        if !self.icmp_in_window(quoted_seq) || mtu < MIN_IPV4_MTU {
            self.stats.icmp_ignored += 1;
            return;
        }
        let mss = (mtu - IP_TCP_HEADERS).max(self.cfg.min_mss);
        if mss >= self.pmtu_mss {
            // RFC 1191 §6.3: never raise the estimate from an ICMP message.
            self.stats.icmp_ignored += 1;
            return;
        }
        self.pmtu_mss = mss;
        let before = self.snd_mss;
        self.update_snd_mss();
        self.stats.pmtu_updates += 1;
        if self.snd_mss < before && self.snd_una != self.snd_max && self.is_established() {
            // Linux tcp_simple_retransmit: resend what is in flight at the new size, without
            // treating it as congestion.
            if self.rack_mode() {
                self.sent.mark_all_lost();
                self.lost_hint = self.snd_una;
            } else {
                self.snd_nxt = self.snd_una;
            }
            self.rtt_sample = None;
        }
    }

    /// ICMP destination unreachable other than frag-needed.
    ///
    /// RFC 5927 §4.1 / RFC 1122 §4.2.3.9: these are soft errors in synchronized states (kept and
    /// reported if the connection later times out); in SYN-SENT, port and protocol unreachable
    /// abort the attempt as Linux does.
    pub fn handle_icmp_unreachable(
        &mut self,
        _now: Instant,
        kind: IcmpUnreachable,
        quoted_seq: u32,
    ) {
        if !self.icmp_in_window(quoted_seq) {
            self.stats.icmp_ignored += 1;
            return;
        }
        let err = match kind {
            IcmpUnreachable::Network => TcpError::NetworkUnreachable,
            IcmpUnreachable::Host | IcmpUnreachable::Prohibited => TcpError::HostUnreachable,
            IcmpUnreachable::Protocol | IcmpUnreachable::Port => TcpError::ConnectionRefused,
        };
        if self.state == State::SynSent && err == TcpError::ConnectionRefused {
            self.enter_closed(Some(err));
            return;
        }
        self.soft_error = Some(err);
    }
}

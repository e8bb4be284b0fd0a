//! ICMP errors about our TCP segments.

use crate::FourTuple;
use crate::engine::state::{Core, Socket, Verdict, mark};
use crate::engine::stats::DropReason;
use crate::tcp::IcmpUnreachable;
use crate::time::Instant;
use crate::wire::{DstUnreachable, Ipv4Repr};

/// An ICMP destination unreachable quoting one of our TCP segments (RFC 1122
/// §4.2.3.9, RFC 5927): fragmentation needed lowers the path MTU (RFC 1191),
/// the others are soft errors (hard in SYN-SENT for port/protocol), handed to the
/// connection the quoted 4-tuple names; the TCB checks the quoted sequence number.
pub(crate) fn icmp_error(
    core: &mut Core,
    now: Instant,
    reason: DstUnreachable,
    next_hop_mtu: u16,
    quoted: &Ipv4Repr,
    data: &[u8],
) -> Verdict {
    // The first 8 bytes of the quoted TCP header: ports and sequence number.
    let Some(head) = data.get(..8) else {
        core.stats.drop(DropReason::IcmpIgnored);
        return Verdict::Release;
    };
    let local_port = u16::from_be_bytes([head[0], head[1]]);
    let remote_port = u16::from_be_bytes([head[2], head[3]]);
    let seq = u32::from_be_bytes([head[4], head[5], head[6], head[7]]);
    let tuple = FourTuple {
        local_addr: quoted.src_addr,
        local_port,
        remote_addr: quoted.dst_addr,
        remote_port,
    };
    let Some(&id) = core.tcp.conns.get(&tuple) else {
        if let Some(target) = core.forward_hop(local_port) {
            return Verdict::Forward(target);
        }
        core.stats.drop(DropReason::IcmpIgnored);
        return Verdict::Release;
    };
    let Some(Socket::Tcp(sock)) = core.sockets.by_id_mut(id) else {
        return Verdict::Release;
    };
    let Some(tcb) = sock.tcb_mut() else {
        return Verdict::Release;
    };
    let kind = match reason {
        DstUnreachable::FragRequired => {
            tcb.handle_icmp_frag_needed(now, next_hop_mtu, seq);
            None
        }
        DstUnreachable::NetUnreachable => Some(IcmpUnreachable::Network),
        DstUnreachable::HostUnreachable => Some(IcmpUnreachable::Host),
        DstUnreachable::ProtoUnreachable => Some(IcmpUnreachable::Protocol),
        DstUnreachable::PortUnreachable => Some(IcmpUnreachable::Port),
        DstUnreachable::AdminProhibited => Some(IcmpUnreachable::Prohibited),
        DstUnreachable::Other(_) => {
            core.stats.drop(DropReason::IcmpIgnored);
            return Verdict::Release;
        }
    };
    if let Some(kind) = kind {
        tcb.handle_icmp_unreachable(now, kind, seq);
    }
    mark(&mut core.tcp.dirty, sock, id);
    Verdict::Release
}

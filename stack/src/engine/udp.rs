//! UDP input (to the matching socket's queue, or ICMP port unreachable) and output.

use core::net::SocketAddrV4;

use surge_datapath::{Burst, Device};

use super::output::send_ipv4;
use super::state::{Core, Socket, Verdict};
use super::stats::DropReason;
use crate::errno::Errno;
use crate::time::Instant;
use crate::wire::{DstUnreachable, IpProtocol, Ipv4Repr, UdpRepr};

/// Queues a datagram on the socket bound to its destination; none bound: port
/// unreachable (RFC 1122 §4.1.3.1), sent at flush time.
pub(crate) fn input(
    core: &mut Core,
    _now: Instant,
    ip: &Ipv4Repr,
    udp: &UdpRepr,
    payload: &[u8],
    ip_bytes: &[u8],
) -> Verdict {
    let src = SocketAddrV4::new(ip.src_addr, udp.src_port);
    let dst = SocketAddrV4::new(ip.dst_addr, udp.dst_port);
    // A connected socket, then one bound to the exact address, then the wildcard
    // (Linux `__udp4_lib_lookup` scoring, simplified to these three ranks).
    let mut best: Option<(u8, crate::table::SocketId)> = None;
    for id in core
        .udp_ports
        .get(&udp.dst_port)
        .map_or(&[][..], Vec::as_slice)
    {
        let Some(Socket::Udp(s)) = core.sockets.by_id(*id) else {
            continue;
        };
        if !s.accepts(src, dst) {
            continue;
        }
        let score = u8::from(s.remote().is_some()) * 2
            + u8::from(s.local().is_some_and(|l| !l.ip().is_unspecified()));
        if best.is_none_or(|(b, _)| score > b) {
            best = Some((score, *id));
        }
    }
    let best = best.map(|(_, id)| id);
    match best.map(|id| (id, core.sockets.by_id_mut(id))) {
        Some((id, Some(Socket::Udp(s)))) => {
            if s.enqueue(src, payload) {
                core.queue_ready(id);
            } else {
                core.stats.drop(DropReason::UdpRcvbufFull);
            }
        }
        _ => {
            if let Some(target) = core.forward_hop(udp.dst_port) {
                return Verdict::Forward(target);
            }
            core.stats.drop(DropReason::UdpNoPort);
            if !core.config.iface.is_broadcast(ip.dst_addr) {
                core.pending_unreachable(DstUnreachable::PortUnreachable, ip_bytes);
            }
        }
    }
    Verdict::Release
}

/// Writes a datagram into a TX frame (or the ARP queue).
pub(crate) fn send<D: Device>(
    core: &mut Core,
    device: &mut D,
    tx: &mut Burst,
    local: SocketAddrV4,
    dst: SocketAddrV4,
    payload: &[u8],
) -> Result<(), Errno> {
    let tx_checksum = core.tx_checksum;
    let now = core.now;
    let repr = UdpRepr {
        src_port: local.port(),
        dst_port: dst.port(),
    };
    send_ipv4(
        core,
        device,
        tx,
        now,
        (Some(*local.ip()), *dst.ip()),
        IpProtocol::Udp,
        |buf, src| repr.emit_datagram(buf, src, *dst.ip(), payload, tx_checksum),
    )
}

/// A destination unreachable about a datagram we sent (RFC 1122 §4.1.3.3: UDP
/// MUST pass ICMP errors up). As Linux does without `IP_RECVERR`, only a
/// connected socket hears of it, and only hard errors: the next `recv` or
/// `send` returns it once.
pub(crate) fn icmp_error(core: &mut Core, reason: DstUnreachable, quoted: &Ipv4Repr, data: &[u8]) {
    let error = match reason {
        DstUnreachable::PortUnreachable => Errno::ECONNREFUSED,
        DstUnreachable::HostUnreachable => Errno::EHOSTUNREACH,
        DstUnreachable::NetUnreachable => Errno::ENETUNREACH,
        DstUnreachable::ProtoUnreachable => Errno::ENOPROTOOPT,
        _ => {
            core.stats.drop(DropReason::IcmpIgnored);
            return;
        }
    };
    // The quote's first 8 bytes are the UDP header: source and destination port.
    let (Some(src), Some(dst)) = (data.get(0..2), data.get(2..4)) else {
        core.stats.drop(DropReason::IcmpIgnored);
        return;
    };
    let local_port = u16::from_be_bytes([src[0], src[1]]);
    let remote = SocketAddrV4::new(quoted.dst_addr, u16::from_be_bytes([dst[0], dst[1]]));
    let ids = core
        .udp_ports
        .get(&local_port)
        .map_or(&[][..], Vec::as_slice)
        .to_vec();
    let mut told = false;
    for id in ids {
        if let Some(Socket::Udp(s)) = core.sockets.by_id_mut(id) {
            if s.remote() == Some(remote) {
                s.set_error(error);
                told = true;
                core.queue_ready(id);
            }
        }
    }
    if !told {
        core.stats.drop(DropReason::IcmpIgnored);
    }
}

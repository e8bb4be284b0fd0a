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
        *dst.ip(),
        IpProtocol::Udp,
        |buf, src| repr.emit_datagram(buf, src, *dst.ip(), payload, tx_checksum),
    )
}

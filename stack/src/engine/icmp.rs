//! ICMP input: echo replies written in place (RFC 792, RFC 1122 §3.2.2.6),
//! destination unreachable about our TCP segments handed to TCP, the rest
//! counted. Errors we send are built in [`super::control`].

use surge_datapath::{Burst, Device, Frame};

use super::output::push_tx;
use super::state::{Core, Verdict};
use super::stats::DropReason;
use crate::time::Instant;
use crate::wire::{EthernetFrame, Icmpv4Packet, Icmpv4Repr, IpProtocol, Ipv4Packet, Ipv4Repr};

/// Handles an ICMP message addressed to us.
pub(crate) fn input(
    core: &mut Core,
    _now: Instant,
    ip: &Ipv4Repr,
    icmp: &Icmpv4Repr<'_>,
) -> Verdict {
    match icmp {
        Icmpv4Repr::EchoRequest { .. } if core.config.answer_ping => {
            // RFC 1122 §3.2.2.6: an echo request to a broadcast address may be
            // silently discarded; surge does (no smurf amplifier).
            if core.config.iface.is_broadcast(ip.dst_addr) {
                core.stats.drop(DropReason::IcmpIgnored);
                return Verdict::Release;
            }
            Verdict::EchoReply
        }
        Icmpv4Repr::DstUnreachable {
            reason,
            next_hop_mtu,
            header,
            data,
        } if header.protocol == IpProtocol::Tcp && core.config.iface.is_local(header.src_addr) => {
            super::tcp::icmp::icmp_error(core, _now, *reason, *next_hop_mtu, header, data)
        }
        Icmpv4Repr::DstUnreachable {
            reason,
            header,
            data,
            ..
        } if header.protocol == IpProtocol::Udp && core.config.iface.is_local(header.src_addr) => {
            super::udp::icmp_error(core, *reason, header, data);
            Verdict::Release
        }
        _ => {
            core.stats.drop(DropReason::IcmpIgnored);
            Verdict::Release
        }
    }
}

/// Turns the echo request in `frame` into the reply: swap addresses, type 0,
/// new checksums; the data stays where it is.
pub(crate) fn echo_reply_in_place<D: Device>(
    core: &mut Core,
    device: &mut D,
    tx: &mut Burst,
    frame: Frame,
) {
    let our_mac = core.config.iface.mac;
    let ttl = core.config.ttl;
    let buf = device.frame_mut(&frame);
    let done = (|| {
        let mut eth = EthernetFrame::new_checked(&mut *buf).ok()?;
        let peer_mac = eth.src_addr();
        eth.set_dst_addr(peer_mac);
        eth.set_src_addr(our_mac);
        let eth_len = eth.header_len();
        let ip_buf = buf.get_mut(eth_len..)?;
        let mut ip = Ipv4Packet::new_checked(&mut *ip_buf).ok()?;
        let (src, dst) = (ip.src_addr(), ip.dst_addr());
        ip.set_src_addr(dst);
        ip.set_dst_addr(src);
        ip.set_ttl(ttl);
        ip.fill_checksum();
        let (ip_len, total) = (ip.header_len(), usize::from(ip.total_len()));
        let icmp_buf = ip_buf.get_mut(ip_len..total)?;
        let mut icmp = Icmpv4Packet::new_checked(icmp_buf).ok()?;
        icmp.set_msg_type(0);
        icmp.set_msg_code(0);
        icmp.fill_checksum();
        Some(())
    })();
    if done.is_some() {
        core.stats.icmp_echo_replies += 1;
        push_tx(core, device, tx, frame);
    } else {
        device.release_one(frame);
    }
}

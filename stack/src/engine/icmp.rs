//! ICMP: echo replies written in place (RFC 792, RFC 1122 §3.2.2.6), port
//! unreachable for UDP (RFC 1122 §4.1.3.1), and what the rest is.

use core::net::Ipv4Addr;

use surge_datapath::{Burst, Device, Frame};

use super::output::{push_tx, send_ipv4};
use super::{Core, DropReason, Verdict};
use crate::time::Instant;
use crate::wire::{
    DstUnreachable, EthernetFrame, Icmpv4Packet, Icmpv4Repr, IpProtocol, Ipv4Packet, Ipv4Repr,
    TxChecksum,
};

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
            super::tcp::icmp_error(core, _now, *reason, *next_hop_mtu, header, data)
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

/// Sends a destination-unreachable error quoting `original` (the offending IP
/// packet: header plus at least 8 bytes, RFC 792), rate-limited.
pub(crate) fn send_unreachable<D: Device>(
    core: &mut Core,
    device: &mut D,
    tx: &mut Burst,
    now: Instant,
    reason: DstUnreachable,
    original: &[u8],
) {
    let Ok((header, rest)) = Ipv4Repr::parse_quoted(original) else {
        return;
    };
    let dst: Ipv4Addr = header.src_addr;
    if !core.take_icmp_token(now) {
        return;
    }
    let data = &rest[..rest.len().min(8)];
    let repr = Icmpv4Repr::DstUnreachable {
        reason,
        next_hop_mtu: 0,
        header,
        data,
    };
    let sent = send_ipv4(
        core,
        device,
        tx,
        now,
        (None, dst),
        IpProtocol::Icmp,
        |buf, _src| {
            let len = repr.buffer_len();
            let out = buf
                .get_mut(..len)
                .ok_or(crate::wire::WireError::Truncated)?;
            repr.emit(&mut Icmpv4Packet::new_unchecked(out), TxChecksum::Compute)?;
            Ok(len)
        },
    );
    if sent.is_ok() {
        core.stats.icmp_errors_sent += 1;
    }
}

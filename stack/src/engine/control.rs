//! Control packets that waited for a TX frame ([`Outgoing`]): ARP requests,
//! frames parked while their next hop resolved, RSTs from no connection and ICMP
//! errors. [`flush`] builds them at the end of an iteration and hands the burst
//! to the device. Nothing here calls back into protocol code.

use core::net::Ipv4Addr;

use surge_datapath::{Burst, Device};

use super::output::{ETH_LEN, push_tx, send_ipv4};
use super::state::{Core, Outgoing};
use crate::time::Instant;
use crate::wire::{
    ArpOperation, ArpPacket, ArpRepr, DstUnreachable, EtherType, EthernetAddress, EthernetFrame,
    EthernetRepr, Icmpv4Packet, Icmpv4Repr, IpProtocol, Ipv4Repr, TcpPacket, TcpRepr, TxChecksum,
    WireError,
};

/// Builds the control packets that waited for TX frames, then hands the burst to
/// the device. Returns the number of frames the device took.
#[inline]
pub(crate) fn flush<D: Device>(
    core: &mut Core,
    device: &mut D,
    tx: &mut Burst,
    now: Instant,
) -> usize {
    // The usual iteration has none: no list swap, no loop.
    if !core.out.is_empty() {
        build_waiting(core, device, tx, now);
    }
    device.tx_burst(tx)
}

/// [`flush`]'s control packets, out of line.
#[inline(never)]
fn build_waiting<D: Device>(core: &mut Core, device: &mut D, tx: &mut Burst, now: Instant) {
    let mut out = core::mem::take(&mut core.out);
    for item in out.drain(..) {
        match item {
            Outgoing::Unreachable { reason, quote, len } => {
                send_unreachable(core, device, tx, now, reason, &quote[..len]);
                continue;
            }
            Outgoing::TcpRst {
                local,
                remote,
                repr,
            } => {
                send_rst(core, device, tx, now, local, remote, &repr);
                continue;
            }
            Outgoing::ArpRequest(_) | Outgoing::Released { .. } => {}
        }
        // A frame parked for ARP may be longer than one UMEM frame (a jumbo MTU).
        let wanted = match &item {
            Outgoing::Released { frame: bytes, .. } => bytes.len(),
            _ => 0,
        };
        let Some(mut frame) = device.alloc_tx_for(wanted) else {
            core.stats.tx_no_frame += 1;
            continue;
        };
        let buf = device.frame_mut(&frame);
        let len = match item {
            Outgoing::ArpRequest(target) => {
                // RFC 5227 §3: an announcement of one of our addresses names it as
                // both sender and target (a secondary address, too).
                let source = if core.config.iface.is_local(target) {
                    target
                } else {
                    core.config
                        .iface
                        .route(target)
                        .map_or(core.config.iface.primary_addr(), |r| r.source)
                };
                core.stats.arp_requests += 1;
                write_arp_request(buf, core.config.iface.mac, source, target).ok()
            }
            Outgoing::Released { mac, frame: bytes } => match buf.get_mut(..bytes.len()) {
                Some(dst) => {
                    dst.copy_from_slice(&bytes);
                    dst[..6].copy_from_slice(&mac.0);
                    Some(bytes.len())
                }
                None => None,
            },
            Outgoing::Unreachable { .. } | Outgoing::TcpRst { .. } => None,
        };
        match len {
            Some(len) if frame.set_len(len) => push_tx(core, device, tx, frame),
            _ => device.release_one(frame),
        }
    }
    // Anything queued while flushing (an ARP request for an ICMP error's next
    // hop) goes out on the next iteration.
    let queued_meanwhile = core::mem::replace(&mut core.out, out);
    core.out.extend(queued_meanwhile);
}

/// Builds an ARP request for `target` into `buf`; returns the frame length.
fn write_arp_request(
    buf: &mut [u8],
    mac: EthernetAddress,
    source: Ipv4Addr,
    target: Ipv4Addr,
) -> Result<usize, WireError> {
    let eth = EthernetRepr {
        src_addr: mac,
        dst_addr: EthernetAddress::BROADCAST,
        vlan: None,
        ethertype: EtherType::Arp,
    };
    eth.emit(&mut EthernetFrame::new_unchecked(&mut *buf))?;
    let arp = ArpRepr {
        operation: ArpOperation::Request,
        source_hardware_addr: mac,
        source_protocol_addr: source,
        target_hardware_addr: EthernetAddress([0; 6]),
        target_protocol_addr: target,
    };
    arp.emit(&mut ArpPacket::new_unchecked(
        buf.get_mut(ETH_LEN..).ok_or(WireError::Truncated)?,
    ))?;
    Ok(ETH_LEN + 28)
}

/// Builds a queued RST (from no connection) into a TX frame.
pub(crate) fn send_rst<D: Device>(
    core: &mut Core,
    device: &mut D,
    tx: &mut Burst,
    now: Instant,
    local: Ipv4Addr,
    remote: Ipv4Addr,
    repr: &TcpRepr,
) {
    let offload = core.tx_checksum;
    let sent = send_ipv4(
        core,
        device,
        tx,
        now,
        (Some(local), remote),
        IpProtocol::Tcp,
        |buf, src| {
            let len = repr.header_len();
            let out = buf.get_mut(..len).ok_or(WireError::Truncated)?;
            repr.emit(&mut TcpPacket::new_unchecked(&mut *out))?;
            if offload == TxChecksum::Compute {
                crate::wire::tcp::fill_checksum(
                    out,
                    if src == local { src } else { local },
                    remote,
                )?;
            }
            Ok(len)
        },
    );
    if sent.is_ok() {
        // The same path sends request and TIME-WAIT records' SYN-ACKs and ACKs.
        core.stats.tcp_rst_sent += u64::from(repr.flags.contains(crate::wire::TcpFlags::RST));
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

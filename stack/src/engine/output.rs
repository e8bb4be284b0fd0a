//! Writing frames we originate straight into TX frames.
//!
//! Every packet we originate goes through [`send_ipv4`]: route, resolve the next
//! hop's MAC, then write Ethernet + IPv4 + the transport bytes once, in place, in a
//! frame from the device's pool. When the MAC is not known yet the frame is built in
//! a scratch buffer and parked in the ARP queue instead.

use core::net::Ipv4Addr;

use surge_datapath::{Burst, Device, Frame};

use super::state::{Core, Outgoing};
use super::tx_path::{PathEntry, Resolved};
use crate::errno::Errno;
use crate::neighbor::Resolution;
use crate::tcp::Ecn;
use crate::time::Instant;
use crate::wire::ipv4::{PlainHeader, emit_plain_header};
use crate::wire::{EtherType, EthernetAddress, EthernetRepr, IpProtocol, TxChecksum, WireError};

/// Ethernet header length (surge sends untagged frames).
pub(crate) const ETH_LEN: usize = 14;
/// IPv4 header length (surge sends no options).
pub(crate) const IPV4_LEN: usize = 20;

/// Adds a frame to the TX burst, flushing the burst first when it is full; when
/// the device takes nothing the frame is released and counted.
pub(crate) fn push_tx<D: Device>(core: &mut Core, device: &mut D, tx: &mut Burst, frame: Frame) {
    let len = frame.len() as u64;
    let frame = match tx.push(frame) {
        Ok(()) => {
            core.stats.tx_frames += 1;
            core.stats.tx_bytes += len;
            return;
        }
        Err(frame) => frame,
    };
    device.tx_burst(tx);
    match tx.push(frame) {
        Ok(()) => {
            core.stats.tx_frames += 1;
            core.stats.tx_bytes += len;
        }
        Err(frame) => {
            core.stats.tx_no_frame += 1;
            device.release_one(frame);
        }
    }
}

/// A TX frame that holds a packet of the link's MTU: with an MTU above one
/// UMEM frame the device hands out a large frame (sent as chained
/// descriptors), so TCP can fill a segment of the MSS the MTU allows.
fn alloc_for_mtu<D: Device>(core: &Core, device: &mut D) -> Option<Frame> {
    // TCP output writes the payload after room for a 60-byte header and moves
    // it down once the header is known: a full segment needs up to 40 bytes
    // beyond the MTU while it is built (`LARGE_FRAME_SLACK` covers them).
    device.alloc_tx_for(ETH_LEN + core.config.iface.mtu as usize + 40)
}

/// Writes an Ethernet header for an IPv4 packet and the plain IPv4 header into
/// `buf`, after which the transport bytes start at `ETH_LEN + IPV4_LEN`. The
/// IPv4 header checksum is always computed: it is 20 bytes, and few devices
/// offload it through AF_XDP.
fn write_headers(
    buf: &mut [u8],
    src_mac: EthernetAddress,
    dst_mac: EthernetAddress,
    ip: &PlainHeader,
) -> Result<(), WireError> {
    let (eth, rest) = buf
        .split_first_chunk_mut::<ETH_LEN>()
        .ok_or(WireError::Truncated)?;
    EthernetRepr::emit_untagged(eth, dst_mac, src_mac, EtherType::Ipv4);
    let ip_buf = rest
        .first_chunk_mut::<IPV4_LEN>()
        .ok_or(WireError::Truncated)?;
    emit_plain_header(ip_buf, ip)
}

/// What writes a packet's transport bytes (header, payload and checksum) into the
/// slice it is given, which starts after the IP header, and returns their length
/// (0: nothing to send after all) and the IP header's ECN field; it gets our
/// source address. Any such closure is one; TCP output implements it on a type
/// whose `write` is inlined into the send (a closure is called out of line).
pub(crate) trait WriteTransport {
    /// Writes the transport bytes.
    fn write(self, buf: &mut [u8], src: Ipv4Addr) -> Result<(usize, Ecn), WireError>;
}

impl<F: FnOnce(&mut [u8], Ipv4Addr) -> Result<(usize, Ecn), WireError>> WriteTransport for F {
    #[inline]
    fn write(self, buf: &mut [u8], src: Ipv4Addr) -> Result<(usize, Ecn), WireError> {
        self(buf, src)
    }
}

/// Sends one IPv4 packet to `dst`: `write` fills the transport bytes (header,
/// payload and checksum) into the slice it is given, which starts after the IP
/// header, and returns their length (0: nothing to send after all); it gets our
/// source address: `source` when it is one of ours (a connection's or a bound
/// socket's own address), else the route's.
pub(crate) fn send_ipv4<D: Device>(
    core: &mut Core,
    device: &mut D,
    tx: &mut Burst,
    now: Instant,
    (source, dst): (Option<Ipv4Addr>, Ipv4Addr),
    protocol: IpProtocol,
    write: impl FnOnce(&mut [u8], Ipv4Addr) -> Result<usize, WireError>,
) -> Result<(), Errno> {
    send_ipv4_ecn(
        core,
        device,
        tx,
        now,
        (source, dst),
        protocol,
        |buf: &mut [u8], src: Ipv4Addr| write(buf, src).map(|len| (len, Ecn::NotEct)),
    )
}

/// [`send_ipv4`] for a transport that also chooses the IP header's ECN field (TCP,
/// RFC 3168): `write` returns it beside the length.
pub(crate) fn send_ipv4_ecn<D: Device>(
    core: &mut Core,
    device: &mut D,
    tx: &mut Burst,
    now: Instant,
    (source, dst): (Option<Ipv4Addr>, Ipv4Addr),
    protocol: IpProtocol,
    write: impl WriteTransport,
) -> Result<(), Errno> {
    if let Some(path) = core
        .tx_path
        .lookup(dst, source, protocol, core.neighbors.generation(), now)
    {
        // The same answer as the last send's: no route, neighbour or header work.
        let src = path.source();
        let Some(frame) = alloc_for_mtu(core, device) else {
            core.stats.tx_no_frame += 1;
            return Err(Errno::ENOBUFS);
        };
        let built = build_on_path(device.frame_mut(&frame), path, write);
        return send_built(core, device, tx, frame, built, (src, dst), protocol);
    }
    let mut route = core.config.iface.route(dst).map_err(|_| {
        core.stats.no_route += 1;
        Errno::ENETUNREACH
    })?;
    if let Some(source) = source {
        // RFC 1122 §3.3.4.2: a multihomed host sends from the address the
        // connection is bound to (our secondary addresses share the link).
        if source != route.source && core.config.iface.is_local(source) {
            route.source = source;
        }
    }
    let ttl = core.config.ttl;
    let src_mac = core.config.iface.mac;
    let broadcast = core.config.iface.is_broadcast(dst);
    let resolution = if broadcast {
        Resolution::Known(EthernetAddress::BROADCAST)
    } else {
        core.neighbors.resolve(route.next_hop, now)
    };
    match resolution {
        Resolution::Known(mac) | Resolution::KnownRefresh(mac) => {
            if matches!(resolution, Resolution::KnownRefresh(_)) {
                core.out.push(Outgoing::ArpRequest(route.next_hop));
            } else if !broadcast {
                // A fresh answer: the next sends to `dst` reuse it while it lasts.
                if let Some((fresh_mac, fresh_until)) = core.neighbors.fresh_answer(route.next_hop)
                {
                    if fresh_mac == mac {
                        core.tx_path.remember(&Resolved {
                            dst,
                            asked_source: source,
                            protocol,
                            source: route.source,
                            src_mac,
                            dst_mac: mac,
                            ttl,
                            neighbor_generation: core.neighbors.generation(),
                            fresh_until,
                        });
                    }
                }
            }
            let Some(frame) = alloc_for_mtu(core, device) else {
                core.stats.tx_no_frame += 1;
                return Err(Errno::ENOBUFS);
            };
            let buf = device.frame_mut(&frame);
            let built = build(buf, src_mac, mac, route.source, dst, protocol, ttl, write);
            send_built_resolved(
                core,
                device,
                tx,
                frame,
                built,
                (route.source, dst),
                protocol,
            )
        }
        Resolution::Request | Resolution::Waiting => {
            if resolution == Resolution::Request {
                core.out.push(Outgoing::ArpRequest(route.next_hop));
            }
            let mut scratch = core::mem::take(&mut core.scratch);
            scratch.clear();
            scratch.resize(ETH_LEN + core.config.iface.mtu as usize, 0);
            let result = build(
                &mut scratch,
                src_mac,
                EthernetAddress([0; 6]),
                route.source,
                dst,
                protocol,
                ttl,
                write,
            );
            let outcome = match result {
                Ok(0) => Ok(()),
                Ok(len) => {
                    // A parked frame is sent later as plain bytes (`Released`),
                    // with no checksum request: complete it now.
                    if core.tx_checksum == TxChecksum::Offload {
                        complete_in_software(&mut scratch[..len], route.source, dst, protocol);
                    }
                    // Past the queue limit the cache drops and counts it; Linux
                    // returns success then too, and TCP retransmits.
                    core.neighbors.enqueue(route.next_hop, &scratch[..len]);
                    Ok(())
                }
                Err(_) => Err(Errno::EMSGSIZE),
            };
            core.scratch = scratch;
            outcome
        }
        // The cache counted it (`table_full`).
        Resolution::Full => Err(Errno::ENOBUFS),
    }
}

/// Where the transport checksum field is, from the start of the transport
/// header, for the protocols whose checksum the device may complete.
fn checksum_field(protocol: IpProtocol) -> Option<u16> {
    match protocol {
        IpProtocol::Tcp => Some(16),
        IpProtocol::Udp => Some(6),
        IpProtocol::Icmp | IpProtocol::Unknown(_) => None,
    }
}

/// Writes the pseudo-header sum (folded, not complemented: what a
/// `CHECKSUM_PARTIAL` request expects) into the checksum field of the TCP or
/// UDP packet in `frame` (Ethernet + 20-byte IPv4 + transport); returns the
/// field's offset in the transport header, `None` for other protocols.
fn write_pseudo_header_sum(
    frame: &mut [u8],
    src: Ipv4Addr,
    dst: Ipv4Addr,
    protocol: IpProtocol,
) -> Option<u16> {
    let offset = checksum_field(protocol)?;
    let transport_len = u16::try_from(frame.len().checked_sub(ETH_LEN + IPV4_LEN)?).ok()?;
    let at = ETH_LEN + IPV4_LEN + usize::from(offset);
    let field = frame.get_mut(at..at + 2)?;
    let sum = crate::checksum::pseudo_header_ipv4(src, dst, protocol.into(), transport_len);
    field.copy_from_slice(&sum.to_be_bytes());
    Some(offset)
}

/// Completes the checksum of a packet whose field holds the pseudo-header sum
/// (`skb_checksum_help`'s rule: a zero result is sent as `0xffff`).
fn complete_partial(frame: &mut [u8], offset: u16) {
    let at = ETH_LEN + IPV4_LEN + usize::from(offset);
    if frame.len() < at + 2 {
        return;
    }
    let checksum = match !crate::checksum::sum(&frame[ETH_LEN + IPV4_LEN..]) {
        0 => 0xffff,
        c => c,
    };
    frame[at..at + 2].copy_from_slice(&checksum.to_be_bytes());
}

/// Writes the full TCP/UDP checksum of a frame built with `TxChecksum::Offload`.
fn complete_in_software(frame: &mut [u8], src: Ipv4Addr, dst: Ipv4Addr, protocol: IpProtocol) {
    if let Some(offset) = write_pseudo_header_sum(frame, src, dst, protocol) {
        complete_partial(frame, offset);
    }
}

/// Leaves the TCP/UDP checksum of `frame` (built with `TxChecksum::Offload`)
/// to the device: the pseudo-header sum goes in the field and the device is
/// asked to complete it; if the device refuses, the checksum is completed here.
fn offload_checksum<D: Device>(
    device: &mut D,
    frame: &mut Frame,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    protocol: IpProtocol,
) {
    let len = frame.len();
    let Some(bytes) = device.frame_mut(frame).get_mut(..len) else {
        return;
    };
    let Some(offset) = write_pseudo_header_sum(bytes, src, dst, protocol) else {
        return;
    };
    if !device.request_tx_checksum(frame, (ETH_LEN + IPV4_LEN) as u16, offset) {
        if let Some(bytes) = device.frame_mut(frame).get_mut(..len) {
            complete_partial(bytes, offset);
        }
    }
}

/// Sends or releases a TX frame once its bytes are written (`built`: the frame's
/// length, 0 for nothing to send after all).
///
/// Inlined into the send on a remembered path (every TCP segment): left to the
/// inliner, it went out of line as soon as TCP output grew a little, at some 20
/// instructions a segment. The send that resolved its path calls it through
/// [`send_built_resolved`].
#[inline(always)]
fn send_built<D: Device>(
    core: &mut Core,
    device: &mut D,
    tx: &mut Burst,
    mut frame: Frame,
    built: Result<usize, WireError>,
    (src, dst): (Ipv4Addr, Ipv4Addr),
    protocol: IpProtocol,
) -> Result<(), Errno> {
    match built {
        Ok(0) => {
            device.release_one(frame);
            Ok(())
        }
        Ok(len) if frame.set_len(len) => {
            if core.tx_checksum == TxChecksum::Offload {
                offload_checksum(device, &mut frame, src, dst, protocol);
            }
            push_tx(core, device, tx, frame);
            Ok(())
        }
        _ => {
            device.release_one(frame);
            Err(Errno::EMSGSIZE)
        }
    }
}

/// [`send_built`] for a send that resolved its path (route and neighbour): out of
/// line, the one inlined copy is the remembered path's.
#[inline(never)]
fn send_built_resolved<D: Device>(
    core: &mut Core,
    device: &mut D,
    tx: &mut Burst,
    frame: Frame,
    built: Result<usize, WireError>,
    addrs: (Ipv4Addr, Ipv4Addr),
    protocol: IpProtocol,
) -> Result<(), Errno> {
    send_built(core, device, tx, frame, built, addrs, protocol)
}

/// [`build`] on a remembered path: its headers, its source address.
#[inline]
fn build_on_path(
    buf: &mut [u8],
    path: &PathEntry,
    write: impl WriteTransport,
) -> Result<usize, WireError> {
    let transport = buf
        .get_mut(ETH_LEN + IPV4_LEN..)
        .ok_or(WireError::Truncated)?;
    let (len, ecn) = write.write(transport, path.source())?;
    if len == 0 {
        return Ok(0);
    }
    path.write_headers(buf, len, ecn.bits())?;
    Ok(ETH_LEN + IPV4_LEN + len)
}

#[allow(clippy::too_many_arguments)]
fn build(
    buf: &mut [u8],
    src_mac: EthernetAddress,
    dst_mac: EthernetAddress,
    src: Ipv4Addr,
    dst: Ipv4Addr,
    protocol: IpProtocol,
    ttl: u8,
    write: impl WriteTransport,
) -> Result<usize, WireError> {
    let transport = buf
        .get_mut(ETH_LEN + IPV4_LEN..)
        .ok_or(WireError::Truncated)?;
    let (len, ecn) = write.write(transport, src)?;
    if len == 0 {
        return Ok(0);
    }
    let ip = PlainHeader {
        src_addr: src,
        dst_addr: dst,
        protocol,
        payload_len: len,
        ttl,
        dscp_ecn: ecn.bits(),
    };
    write_headers(buf, src_mac, dst_mac, &ip)?;
    Ok(ETH_LEN + IPV4_LEN + len)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SRC: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
    const DST: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);

    /// A frame of Ethernet + IPv4 room followed by `transport`.
    fn frame(transport: &[u8]) -> Vec<u8> {
        let mut f = vec![0u8; ETH_LEN + IPV4_LEN];
        f.extend_from_slice(transport);
        f
    }

    #[test]
    fn pseudo_header_sum_then_completion_equals_a_full_checksum() {
        for payload_len in [0usize, 1, 7, 100, 1400] {
            let payload: Vec<u8> = (0..payload_len).map(|i| (i * 29 + 5) as u8).collect();
            // UDP: 8-byte header, length field set.
            let mut udp = vec![0x13, 0x88, 0x1f, 0x40, 0, 0, 0, 0];
            udp[4..6].copy_from_slice(&((8 + payload_len) as u16).to_be_bytes());
            udp.extend_from_slice(&payload);
            // TCP: 20-byte header, data offset 5, ACK.
            let mut tcp = vec![0u8; 20];
            tcp[..4].copy_from_slice(&[0x13, 0x88, 0x1f, 0x40]);
            tcp[12] = 5 << 4;
            tcp[13] = 0x10;
            tcp.extend_from_slice(&payload);
            for (protocol, transport) in [(IpProtocol::Udp, udp), (IpProtocol::Tcp, tcp)] {
                let mut expected = transport.clone();
                match protocol {
                    IpProtocol::Udp => crate::wire::udp::fill_checksum(&mut expected, SRC, DST),
                    _ => crate::wire::tcp::fill_checksum(&mut expected, SRC, DST),
                }
                .expect("fill");
                let mut partial = frame(&transport);
                let offset = write_pseudo_header_sum(&mut partial, SRC, DST, protocol)
                    .expect("TCP and UDP have a checksum field");
                let mut completed = partial.clone();
                complete_partial(&mut completed, offset);
                assert_eq!(
                    &completed[ETH_LEN + IPV4_LEN..],
                    &expected[..],
                    "{protocol:?} {payload_len}"
                );
                let mut soft = frame(&transport);
                complete_in_software(&mut soft, SRC, DST, protocol);
                assert_eq!(soft, completed);
            }
        }
    }

    #[test]
    fn only_tcp_and_udp_get_a_pseudo_header_sum() {
        let mut icmp = frame(&[8, 0, 0, 0, 0, 1, 0, 1]);
        let before = icmp.clone();
        assert_eq!(
            write_pseudo_header_sum(&mut icmp, SRC, DST, IpProtocol::Icmp),
            None
        );
        assert_eq!(icmp, before);
        // Too short for the field: nothing written, no panic.
        let mut short = frame(&[0; 5]);
        assert_eq!(
            write_pseudo_header_sum(&mut short, SRC, DST, IpProtocol::Udp),
            None
        );
        complete_partial(&mut short, 6);
        assert_eq!(short, frame(&[0; 5]));
    }
}

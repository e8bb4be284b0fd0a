//! Frame input: each received frame (or one handed over by another engine) is
//! parsed once and given to its protocol — ARP, ICMP, UDP, TCP — which decides
//! its [`Verdict`]: answered in place, forwarded, or released.

use std::net::Ipv4Addr;
use std::sync::Arc;

use surge_datapath::{Burst, Device, Frame};

use super::state::{Core, Outgoing, Verdict};
use super::stats::DropReason;
use super::tcp::demux as tcp_demux;
use super::{arp, icmp, udp};
use crate::reassembly::{Fragment, FragmentKey, Reassembled};
use crate::time::Instant;
use crate::wire::frame::{Network, Transport, parse_frame, parse_tcp_fast};
use crate::wire::{ChecksumMode, DstUnreachable, EthernetAddress, Ipv4Repr, TcpRepr};

/// Handles one received frame: answer in place, deliver, forward, or release.
pub(crate) fn handle_frame<D: Device>(
    core: &mut Core,
    device: &mut D,
    tx: &mut Burst,
    now: Instant,
    frame: Frame,
) {
    let verdict = {
        let bytes = device.frame(&frame);
        core.stats.rx_frames += 1;
        core.stats.rx_bytes += bytes.len() as u64;
        // The destination MAC first, as a NIC's filter would: frames for others
        // are not parsed at all.
        let dst_mac = bytes
            .get(..6)
            .map(|b| EthernetAddress([b[0], b[1], b[2], b[3], b[4], b[5]]));
        let for_us = dst_mac.is_some_and(|m| m == core.config.iface.mac || m.is_broadcast());
        if dst_mac.is_some() && !for_us {
            return not_for_us(core, device, frame);
        }
        let verdict = classify_inline(core, now, bytes);
        if let Verdict::Forward(target) = verdict {
            forward_copy(core, target, bytes, false);
            Verdict::Release
        } else {
            if core.forward.is_some() && bytes.get(12..14) == Some(&[0x08, 0x06][..]) {
                share_arp(core, bytes);
            }
            verdict
        }
    };
    match verdict {
        Verdict::Release | Verdict::Forward(_) => device.release_one(frame),
        answer => answer_in_place(core, device, tx, frame, answer),
    }
}

/// The frame answered in place: an ARP reply or an ICMP echo reply. Out of line, so
/// the TCP frame path stays in fewer cache lines.
#[inline(never)]
fn answer_in_place<D: Device>(
    core: &mut Core,
    device: &mut D,
    tx: &mut Burst,
    frame: Frame,
    answer: Verdict,
) {
    match answer {
        Verdict::ArpReply(reply) => arp::reply_in_place(core, device, tx, frame, &reply),
        Verdict::EchoReply => icmp::echo_reply_in_place(core, device, tx, frame),
        Verdict::Release | Verdict::Forward(_) => device.release_one(frame),
    }
}

/// A frame for another MAC: dropped and counted. Out of line (as the rare paths below),
/// so the hot frame path stays in fewer cache lines.
#[cold]
#[inline(never)]
fn not_for_us<D: Device>(core: &mut Core, device: &mut D, frame: Frame) {
    core.stats.drop(DropReason::NotOurMac);
    device.release_one(frame);
}

/// Copies `bytes` to engine `target`'s inbox, counting the outcome. Cold: with the
/// XDP program steering each connection to its engine's queue, frames rarely land on
/// another engine's.
#[cold]
#[inline(never)]
fn forward_copy(core: &mut Core, target: usize, bytes: &[u8], learn_only: bool) {
    let Some(f) = core.forward.as_ref() else {
        return;
    };
    if f.mesh
        .push(target, bytes, core.visited | f.own_bit(), learn_only)
    {
        core.stats.forwarded_out += 1;
    } else {
        core.stats.forward_dropped += 1;
    }
}

/// An ARP frame that reached us: every other engine learns from it too (the
/// reply to one engine's request may land on another engine's queue).
#[cold]
#[inline(never)]
fn share_arp(core: &mut Core, bytes: &[u8]) {
    let cores = core.forward.as_ref().map_or(0, |f| f.mesh.cores());
    let own = core.forward.as_ref().map_or(0, |f| f.core);
    for target in (0..cores).filter(|t| *t != own) {
        forward_copy(core, target, bytes, true);
    }
}

/// An ARP frame the kernel got, seen through the engine's [`super::ArpTap`]: the
/// sender is merged into the cache if known (or added when the frame is for an
/// address we share with the kernel), nothing is answered (the kernel does), and
/// every other engine learns from it too.
pub(crate) fn observed_arp(core: &mut Core, now: Instant, bytes: &[u8]) {
    match parse_frame(bytes, ChecksumMode::Trust) {
        Ok(parsed) => {
            if let Network::Arp(arp) = parsed.network {
                core.stats.arp_observed += 1;
                arp::learn(core, now, &arp);
                share_arp(core, bytes);
            } else {
                core.stats.drop(DropReason::Unsupported);
            }
        }
        Err(e) => core.stats.drop(e.into()),
    }
}

/// Handles the frames other engines handed to this one (at most a burst).
/// Returns how many there were.
#[inline]
pub(crate) fn drain_inbox(core: &mut Core, now: Instant) -> usize {
    // The usual case, nothing handed over (or one engine alone), costs a load or
    // two and no call.
    if core
        .forward
        .as_ref()
        .is_some_and(|f| f.mesh.has_frames_for(f.core))
    {
        drain_inbox_frames(core, now)
    } else {
        0
    }
}

/// [`drain_inbox`] once frames are waiting.
#[inline(never)]
fn drain_inbox_frames(core: &mut Core, now: Instant) -> usize {
    let Some(fwd) = core.forward.as_ref() else {
        return 0;
    };
    let (mesh, own) = (Arc::clone(&fwd.mesh), fwd.core);
    let mut handled = 0;
    while handled < surge_datapath::BURST {
        let Some(msg) = mesh.pop(own) else { break };
        handled += 1;
        core.stats.forwarded_in += 1;
        core.visited = msg.visited;
        if msg.learn_only {
            // ARP from another queue: learn only, the receiving engine answered.
            if let Ok(parsed) = parse_frame(&msg.bytes, ChecksumMode::Trust) {
                if let Network::Arp(arp) = parsed.network {
                    arp::learn(core, now, &arp);
                }
            }
        } else if let Verdict::Forward(target) = classify(core, now, &msg.bytes) {
            forward_copy(core, target, &msg.bytes, false);
        }
        // Echo and ARP replies are never forwarded, so no other verdict needs
        // a frame here.
        core.visited = 0;
        mesh.recycle(msg.bytes);
    }
    handled
}

/// Parses a frame already known to be for our MAC and hands it to its protocol: for
/// the frames other engines hand over and reassembled datagrams (a received frame
/// takes [`classify_inline`]).
#[inline(never)]
fn classify(core: &mut Core, now: Instant, bytes: &[u8]) -> Verdict {
    classify_inline(core, now, bytes)
}

/// [`classify`] inlined into the frame loop: the layout of nearly every frame
/// (IPv4 without options, TCP) read in one pass and handed to its connection
/// without a call of its own (its register saves and the copy of the verdict);
/// anything else, malformed frames included, is parsed in full out of line.
#[inline(always)]
fn classify_inline(core: &mut Core, now: Instant, bytes: &[u8]) -> Verdict {
    let mut header = TcpRepr::default();
    if let Some(seg) = parse_tcp_fast(bytes, core.config.rx_checksum, &mut header) {
        if !admit_ipv4(core, now, seg.src_mac, seg.src_addr, seg.dst_addr) {
            return Verdict::Release;
        }
        let ip = (seg.src_addr, seg.dst_addr, seg.dscp_ecn);
        return tcp_demux::input(core, now, ip, &header, seg.payload);
    }
    classify_parsed(core, now, bytes)
}

/// [`classify`] for a frame [`parse_tcp_fast`] did not take: parsed in full.
#[inline(never)]
fn classify_parsed(core: &mut Core, now: Instant, bytes: &[u8]) -> Verdict {
    let parsed = match parse_frame(bytes, core.config.rx_checksum) {
        Err(e) => {
            tracing::trace!(error = ?e, len = bytes.len(), "dropped a malformed frame");
            core.stats.drop(e.into());
            return Verdict::Release;
        }
        Ok(parsed) => parsed,
    };
    let eth = parsed.ethernet;
    let (header, transport) = match parsed.network {
        Network::Arp(arp) => return arp::input(core, now, &arp),
        Network::Ipv4 { header, transport } => (header, transport),
    };
    if !admit_ipv4(core, now, eth.src_addr, header.src_addr, header.dst_addr) {
        return Verdict::Release;
    }
    match transport {
        Transport::Icmp(icmp) => icmp::input(core, now, &header, &icmp),
        Transport::Udp {
            header: udp,
            payload,
        } => {
            let ip_bytes = &bytes[eth.header_len()..];
            udp::input(core, now, &header, &udp, payload, ip_bytes)
        }
        Transport::Tcp {
            header: seg,
            payload,
        } => {
            let ip = (header.src_addr, header.dst_addr, header.dscp_ecn);
            tcp_demux::input(core, now, ip, &seg, payload)
        }
        Transport::Fragment { payload } => fragment(
            core,
            now,
            &header,
            &bytes[..eth.header_len()],
            &bytes[eth.header_len()..],
            payload,
        ),
        Transport::Other { .. } => {
            core.stats.drop(DropReason::Unsupported);
            // RFC 1122 §3.2.2.1: a host SHOULD answer a protocol it does not
            // speak with protocol unreachable (rate-limited like every error).
            if !core.config.iface.is_broadcast(header.dst_addr) {
                let ip_bytes = &bytes[eth.header_len()..];
                core.pending_unreachable(DstUnreachable::ProtoUnreachable, ip_bytes);
            }
            Verdict::Release
        }
    }
}

/// The checks every IPv4 packet passes before its protocol sees it: for one of our
/// addresses, from a plausible source; and the on-link sender's MAC learned. False
/// (the drop counted) when the packet is to be released.
///
/// Inlined into both paths of [`classify`]; the rare learning is out of line.
#[inline]
fn admit_ipv4(
    core: &mut Core,
    now: Instant,
    src_mac: EthernetAddress,
    src: Ipv4Addr,
    dst: Ipv4Addr,
) -> bool {
    if !core.config.iface.is_local(dst) {
        core.stats.drop(DropReason::NotOurIp);
        return false;
    }
    if src.is_broadcast()
        || src.is_multicast()
        || src.is_unspecified()
        || core.config.iface.is_local(src)
    {
        core.stats.drop(DropReason::BadSource);
        return false;
    }
    // An on-link sender's frame carries the MAC its answer goes to: learn it if
    // nothing is known yet (a SYN on one queue while the ARP reply went to
    // another engine's queue). The peer last resolved is known: no route lookup.
    if src_mac.is_unicast() && !core.neighbors.is_last_resolved(src, src_mac) {
        learn_sender(core, now, src_mac, src);
    }
    true
}

/// [`admit_ipv4`]'s learning of a sender other than the peer last resolved: its
/// MAC, if it is on-link and not known yet.
#[inline(never)]
fn learn_sender(core: &mut Core, now: Instant, src_mac: EthernetAddress, src: Ipv4Addr) {
    if core
        .config
        .iface
        .route(src)
        .is_ok_and(|r| r.next_hop == src)
    {
        for frame in core.neighbors.learn_if_unknown(src, src_mac, now) {
            core.out.push(Outgoing::Released {
                mac: src_mac,
                frame,
            });
        }
    }
}

/// An IPv4 fragment (RFC 791 §3.2): to the engine that reassembles its
/// datagram, into the reassembly table, and the whole datagram, once complete,
/// handled as if it had arrived in one frame.
fn fragment(
    core: &mut Core,
    now: Instant,
    header: &Ipv4Repr,
    eth: &[u8],
    ip: &[u8],
    payload: &[u8],
) -> Verdict {
    let key = FragmentKey {
        src: header.src_addr,
        dst: header.dst_addr,
        ident: header.ident,
        protocol: header.protocol.into(),
    };
    // Only the first fragment carries ports: all fragments of a datagram meet
    // in the engine its (src, dst, id, protocol) picks.
    if let Some(f) = core.forward.as_ref() {
        let owner = reassembler_of(&key, f.mesh.cores());
        if owner != f.core && core.visited & (1u64 << owner) == 0 {
            return Verdict::Forward(owner);
        }
    }
    let header_len = usize::from(ip.first().map_or(0, |b| b & 0x0f)) * 4;
    let frag = Fragment {
        key,
        offset: usize::from(header.frag_offset),
        more: header.more_frags,
        header: ip.get(..header_len).unwrap_or(ip),
        payload,
    };
    match core.reassembly.insert(now, &frag) {
        Reassembled::Held => Verdict::Release,
        Reassembled::Dropped { reason, fragments } => {
            for _ in 0..fragments {
                core.stats.drop(reason.into());
            }
            Verdict::Release
        }
        Reassembled::Complete(datagram) => {
            let mut whole = Vec::with_capacity(eth.len() + datagram.len());
            whole.extend_from_slice(eth);
            whole.extend_from_slice(&datagram);
            match classify(core, now, &whole) {
                Verdict::Forward(target) => forward_copy(core, target, &whole, false),
                // The reply would be written over this fragment's frame, which
                // does not hold the datagram: a reassembled echo request goes
                // unanswered.
                Verdict::EchoReply => core.stats.drop(DropReason::IcmpIgnored),
                Verdict::Release | Verdict::ArpReply(_) => {}
            }
            Verdict::Release
        }
    }
}

/// The engine that reassembles datagram `key` among `cores` engines: a fixed
/// mix of the key, the same in every engine.
fn reassembler_of(key: &FragmentKey, cores: usize) -> usize {
    let mut h = u64::from(u32::from(key.src)) << 32 | u64::from(u32::from(key.dst));
    h ^= u64::from(key.ident) << 8 | u64::from(key.protocol);
    h = h.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    h ^= h >> 29;
    (h % cores.max(1) as u64) as usize
}

//! ARP input (RFC 826's packet reception algorithm) and replies written in place.

use core::time::Duration;

use surge_datapath::{Burst, Device, Frame};

use super::output::{ETH_LEN, push_tx};
use super::state::Outgoing;
use super::state::{Core, Verdict};
use super::stats::DropReason;
use crate::time::Instant;
use crate::wire::{ArpOperation, ArpPacket, ArpRepr, EtherType, EthernetFrame, EthernetRepr};

/// RFC 5227 §2.4 (b): DEFEND_INTERVAL, the least time between two defences
/// of our address.
const DEFEND_INTERVAL: Duration = Duration::from_secs(10);

/// RFC 826 "Packet Reception": merge the sender into the cache if we know it;
/// if we are the target, add it, and answer a request.
pub(crate) fn input(core: &mut Core, now: Instant, arp: &ArpRepr) -> Verdict {
    let sender_ip = arp.source_protocol_addr;
    let sender_mac = arp.source_hardware_addr;
    let for_us = core.config.iface.is_local(arp.target_protocol_addr);
    if core.config.iface.is_local(sender_ip) {
        // Someone claims one of our addresses (or our own frame came back): never learn it.
        core.stats.drop(DropReason::BadSource);
        if sender_mac != core.config.iface.mac {
            defend(core, now, sender_ip);
        }
        return Verdict::Release;
    }
    if sender_ip.is_unspecified() {
        // RFC 5227 §2.1.1: a probe (sender 0.0.0.0) is answered, never learnt.
        return match arp.operation {
            ArpOperation::Request if for_us => Verdict::ArpReply(reply_to(core, arp)),
            _ => {
                core.stats.drop(DropReason::ArpNotForUs);
                Verdict::Release
            }
        };
    }
    let released = if for_us {
        core.neighbors.learn(sender_ip, sender_mac, now)
    } else {
        core.neighbors.refresh_if_known(sender_ip, sender_mac, now)
    };
    for frame in released {
        core.out.push(Outgoing::Released {
            mac: sender_mac,
            frame,
        });
    }
    if !for_us {
        core.stats.drop(DropReason::ArpNotForUs);
        return Verdict::Release;
    }
    match arp.operation {
        ArpOperation::Request => Verdict::ArpReply(reply_to(core, arp)),
        _ => Verdict::Release,
    }
}

/// The reply to a request for one of our addresses.
fn reply_to(core: &Core, request: &ArpRepr) -> ArpRepr {
    ArpRepr {
        operation: ArpOperation::Reply,
        source_hardware_addr: core.config.iface.mac,
        source_protocol_addr: request.target_protocol_addr,
        target_hardware_addr: request.source_hardware_addr,
        target_protocol_addr: request.source_protocol_addr,
    }
}

/// RFC 5227 §2.4 (b): another host uses our address. Defend it once with an
/// announcement, then not again within [`DEFEND_INTERVAL`] (two hosts defending
/// the same address must not loop); every conflict is counted.
fn defend(core: &mut Core, now: Instant, addr: core::net::Ipv4Addr) {
    core.stats.arp_conflicts += 1;
    if core
        .arp_defended_at
        .is_some_and(|at| now.saturating_duration_since(at) < DEFEND_INTERVAL)
    {
        return;
    }
    core.arp_defended_at = Some(now);
    core.stats.arp_defences += 1;
    // An ARP request with our address as sender and target: an announcement.
    core.out.push(Outgoing::ArpRequest(addr));
}

/// Learns from an ARP frame another engine received and answered (multi-queue):
/// the same merge as [`input`], with no reply and no counters.
pub(crate) fn learn(core: &mut Core, now: Instant, arp: &ArpRepr) {
    let sender_ip = arp.source_protocol_addr;
    let sender_mac = arp.source_hardware_addr;
    if core.config.iface.is_local(sender_ip) {
        return;
    }
    let released = if core.config.iface.is_local(arp.target_protocol_addr) {
        core.neighbors.learn(sender_ip, sender_mac, now)
    } else {
        core.neighbors.refresh_if_known(sender_ip, sender_mac, now)
    };
    for frame in released {
        core.out.push(Outgoing::Released {
            mac: sender_mac,
            frame,
        });
    }
}

/// Rewrites the received request into `reply` (same frame, no copy) and sends it.
pub(crate) fn reply_in_place<D: Device>(
    core: &mut Core,
    device: &mut D,
    tx: &mut Burst,
    mut frame: Frame,
    reply: &ArpRepr,
) {
    let buf = device.frame_mut(&frame);
    let eth = EthernetRepr {
        src_addr: core.config.iface.mac,
        dst_addr: reply.target_hardware_addr,
        vlan: None,
        ethertype: EtherType::Arp,
    };
    let written = eth
        .emit(&mut EthernetFrame::new_unchecked(&mut *buf))
        .is_ok()
        && buf
            .get_mut(ETH_LEN..)
            .is_some_and(|b| reply.emit(&mut ArpPacket::new_unchecked(b)).is_ok());
    // 42 bytes; the device pads to the Ethernet minimum.
    if written && frame.set_len(ETH_LEN + 28) {
        core.stats.arp_replies += 1;
        push_tx(core, device, tx, frame);
    } else {
        device.release_one(frame);
    }
}

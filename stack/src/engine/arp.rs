//! ARP input (RFC 826's packet reception algorithm) and replies written in place.

use surge_datapath::{Burst, Device, Frame};

use super::output::{ETH_LEN, push_tx};
use super::state::Outgoing;
use super::state::{Core, Verdict};
use super::stats::DropReason;
use crate::time::Instant;
use crate::wire::{ArpOperation, ArpPacket, ArpRepr, EtherType, EthernetFrame, EthernetRepr};

/// RFC 826 "Packet Reception": merge the sender into the cache if we know it;
/// if we are the target, add it, and answer a request.
pub(crate) fn input(core: &mut Core, now: Instant, arp: &ArpRepr) -> Verdict {
    let sender_ip = arp.source_protocol_addr;
    let sender_mac = arp.source_hardware_addr;
    let for_us = core.config.iface.is_local(arp.target_protocol_addr);
    if core.config.iface.is_local(sender_ip) {
        // Someone claims one of our addresses (or our own frame came back): never learn it.
        core.stats.drop(DropReason::BadSource);
        return Verdict::Release;
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
        ArpOperation::Request => Verdict::ArpReply(ArpRepr {
            operation: ArpOperation::Reply,
            source_hardware_addr: core.config.iface.mac,
            source_protocol_addr: arp.target_protocol_addr,
            target_hardware_addr: sender_mac,
            target_protocol_addr: sender_ip,
        }),
        _ => Verdict::Release,
    }
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

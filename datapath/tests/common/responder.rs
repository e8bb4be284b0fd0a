//! A small responder on an `XdpPort`: answers ARP for its address and ICMP
//! echo to it, in place (the received frame becomes the reply), and records
//! the UDP/TCP frames it sees. Parses bytes by hand, checking every length.

use std::{
    collections::HashMap,
    net::Ipv4Addr,
    sync::atomic::{AtomicBool, Ordering},
    time::{Duration, Instant},
};

use surge_datapath::{Burst, Device};

/// Who the responder is.
#[derive(Debug, Clone, Copy)]
pub struct Identity {
    pub addr: Ipv4Addr,
    pub mac: [u8; 6],
}

/// What the responder did.
#[derive(Debug, Default, Clone)]
pub struct Seen {
    pub arp_replies: u64,
    pub icmp_replies: u64,
    /// UDP frames by source port.
    pub udp_by_source_port: HashMap<u16, u64>,
    /// TCP frames by destination port.
    pub tcp_by_dest_port: HashMap<u16, u64>,
    pub other: u64,
}

const ETH: usize = 14;

/// Runs until `stop` is set or `limit` passes (bounded either way).
pub fn run<D: Device>(dev: &mut D, me: Identity, stop: &AtomicBool, limit: Duration) -> Seen {
    let deadline = Instant::now() + limit;
    let mut seen = Seen::default();
    let mut rx = Burst::new();
    let mut tx = Burst::new();
    while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
        if dev.rx_burst(&mut rx) == 0 {
            dev.tx_burst(&mut tx);
            std::thread::sleep(Duration::from_micros(50));
            continue;
        }
        while let Some(frame) = rx.pop() {
            let reply = handle(dev.frame_mut(&frame), frame.len(), me, &mut seen);
            match reply {
                Some(len) => {
                    let mut frame = frame;
                    if frame.set_len(len) {
                        if let Err(frame) = tx.push(frame) {
                            dev.release_one(frame);
                        }
                    } else {
                        dev.release_one(frame);
                    }
                }
                None => dev.release_one(frame),
            }
        }
        dev.tx_burst(&mut tx);
    }
    // Hand back anything not sent.
    dev.release(&mut tx);
    seen
}

/// Handles one frame in place; returns the reply length if it became a reply.
fn handle(buf: &mut [u8], len: usize, me: Identity, seen: &mut Seen) -> Option<usize> {
    let frame = buf.get_mut(..len)?;
    if frame.len() < ETH {
        seen.other += 1;
        return None;
    }
    let ethertype = u16::from_be_bytes([frame[12], frame[13]]);
    match ethertype {
        0x0806 => arp(frame, me, seen),
        0x0800 => ipv4(frame, me, seen),
        _ => {
            seen.other += 1;
            None
        }
    }
}

/// RFC 826: answer a request for our address by turning it into a reply.
fn arp(frame: &mut [u8], me: Identity, seen: &mut Seen) -> Option<usize> {
    let arp = frame.get_mut(ETH..ETH + 28)?;
    let is_request = arp[0..2] == [0, 1]
        && arp[2..4] == [8, 0]
        && arp[4] == 6
        && arp[5] == 4
        && arp[6..8] == [0, 1];
    if !is_request || arp[24..28] != me.addr.octets() {
        seen.other += 1;
        return None;
    }
    let sender_mac: [u8; 6] = arp[8..14].try_into().ok()?;
    let sender_ip: [u8; 4] = arp[14..18].try_into().ok()?;
    arp[7] = 2; // reply
    arp[18..24].copy_from_slice(&sender_mac);
    arp[24..28].copy_from_slice(&sender_ip);
    arp[8..14].copy_from_slice(&me.mac);
    arp[14..18].copy_from_slice(&me.addr.octets());
    frame[0..6].copy_from_slice(&sender_mac);
    frame[6..12].copy_from_slice(&me.mac);
    seen.arp_replies += 1;
    Some(ETH + 28)
}

fn ipv4(frame: &mut [u8], me: Identity, seen: &mut Seen) -> Option<usize> {
    let ip = frame.get(ETH..ETH + 20)?;
    let ihl = usize::from(ip[0] & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([ip[2], ip[3]]));
    let protocol = ip[9];
    if ip[0] >> 4 != 4
        || ihl < 20
        || total < ihl
        || ETH + total > frame.len()
        || ip[16..20] != me.addr.octets()
    {
        seen.other += 1;
        return None;
    }
    let l4 = ETH + ihl..ETH + total;
    match protocol {
        1 => icmp_echo(frame, ihl, total, me, seen),
        6 | 17 => {
            let l4 = frame.get(l4)?;
            let ports = l4.get(..4)?;
            let (source, dest) = (
                u16::from_be_bytes([ports[0], ports[1]]),
                u16::from_be_bytes([ports[2], ports[3]]),
            );
            if protocol == 17 {
                *seen.udp_by_source_port.entry(source).or_default() += 1;
            } else {
                *seen.tcp_by_dest_port.entry(dest).or_default() += 1;
            }
            None
        }
        _ => {
            seen.other += 1;
            None
        }
    }
}

/// RFC 792: echo reply = the request with type 0, addresses swapped, checksum redone.
fn icmp_echo(
    frame: &mut [u8],
    ihl: usize,
    total: usize,
    me: Identity,
    seen: &mut Seen,
) -> Option<usize> {
    let icmp = frame.get(ETH + ihl..ETH + total)?;
    if icmp.len() < 8 || icmp[0] != 8 {
        seen.other += 1;
        return None;
    }
    let peer_mac: [u8; 6] = frame.get(6..12)?.try_into().ok()?;
    frame[0..6].copy_from_slice(&peer_mac);
    frame[6..12].copy_from_slice(&me.mac);
    // Swapping source and destination keeps the IPv4 header checksum valid.
    let (src, dst) = frame.get_mut(ETH + 12..ETH + 20)?.split_at_mut(4);
    src.swap_with_slice(dst);
    let icmp = frame.get_mut(ETH + ihl..ETH + total)?;
    icmp[0] = 0;
    icmp[2] = 0;
    icmp[3] = 0;
    let sum = checksum(icmp);
    icmp[2..4].copy_from_slice(&sum.to_be_bytes());
    seen.icmp_replies += 1;
    Some(ETH + total)
}

/// RFC 1071 Internet checksum.
pub fn checksum(bytes: &[u8]) -> u16 {
    let mut sum = 0u32;
    let mut chunks = bytes.chunks_exact(2);
    for pair in &mut chunks {
        sum += u32::from(u16::from_be_bytes([pair[0], pair[1]]));
    }
    if let [last] = chunks.remainder() {
        sum += u32::from(*last) << 8;
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

#[test]
fn arp_and_echo_replies_are_well_formed() {
    let me = Identity {
        addr: Ipv4Addr::new(198, 18, 0, 10),
        mac: [2, 0, 0, 0, 0, 10],
    };
    let mut seen = Seen::default();
    // ARP request from 198.18.0.2 (mac 02..02) for 198.18.0.10.
    let mut arp_frame = vec![0xffu8; 6];
    arp_frame.extend([
        2, 0, 0, 0, 0, 2, 0x08, 0x06, 0, 1, 8, 0, 6, 4, 0, 1, 2, 0, 0, 0, 0, 2, 198, 18, 0, 2,
    ]);
    arp_frame.extend([0, 0, 0, 0, 0, 0, 198, 18, 0, 10]);
    let len = arp_frame.len();
    assert_eq!(handle(&mut arp_frame, len, me, &mut seen), Some(42));
    assert_eq!(arp_frame[21], 2);
    assert_eq!(&arp_frame[0..6], &[2, 0, 0, 0, 0, 2]);
    assert_eq!(&arp_frame[28..32], &[198, 18, 0, 10]);
    // A truncated frame is ignored, not a panic.
    let mut short = vec![0u8; 20];
    short[12] = 8;
    assert_eq!(handle(&mut short, 20, me, &mut seen), None);
}

//! Shared by the wire integration tests: a tiny pcap reader and a whole-frame
//! emitter (the inverse of `parse_frame`).
#![allow(dead_code)]

use surge_stack::wire::frame::{Frame, Network, Transport};
use surge_stack::wire::{ArpPacket, EthernetFrame, Icmpv4Packet, Ipv4Packet, TxChecksum};

/// Frames of a classic little-endian pcap file (magic a1b2c3d4, microseconds).
pub fn read_pcap(bytes: &[u8]) -> Vec<&[u8]> {
    assert!(bytes.len() >= 24, "pcap shorter than its global header");
    assert_eq!(
        &bytes[..4],
        &[0xd4, 0xc3, 0xb2, 0xa1],
        "not a little-endian pcap"
    );
    let link_type = u32::from_le_bytes(bytes[20..24].try_into().unwrap());
    assert_eq!(link_type, 1, "link type must be Ethernet");
    let mut frames = Vec::new();
    let mut at = 24;
    while at < bytes.len() {
        let rec = &bytes[at..at + 16];
        let incl = u32::from_le_bytes(rec[8..12].try_into().unwrap()) as usize;
        let orig = u32::from_le_bytes(rec[12..16].try_into().unwrap()) as usize;
        assert_eq!(incl, orig, "frame was cut by the snap length");
        frames.push(&bytes[at + 16..at + 16 + incl]);
        at += 16 + incl;
    }
    frames
}

/// Emits a parsed frame back into bytes, every layer with `emit`.
pub fn emit_frame(frame: &Frame<'_>) -> Vec<u8> {
    let mut buf = vec![0xa5u8; 9216];
    let eth_len = frame.ethernet.header_len();
    frame
        .ethernet
        .emit(&mut EthernetFrame::new_unchecked(&mut buf[..]))
        .unwrap();
    let rest = &mut buf[eth_len..];
    let len = match frame.network {
        Network::Arp(arp) => {
            arp.emit(&mut ArpPacket::new_unchecked(&mut *rest)).unwrap();
            arp.buffer_len()
        }
        Network::Ipv4 { header, transport } => {
            let ip_len = header.header_len();
            header
                .emit(
                    &mut Ipv4Packet::new_unchecked(&mut *rest),
                    TxChecksum::Compute,
                )
                .unwrap();
            let (src, dst) = (header.src_addr, header.dst_addr);
            let body = &mut rest[ip_len..];
            let body_len = match transport {
                Transport::Tcp { header, payload } => header
                    .emit_segment(body, src, dst, payload, TxChecksum::Compute)
                    .unwrap(),
                Transport::Udp { header, payload } => header
                    .emit_datagram(body, src, dst, payload, TxChecksum::Compute)
                    .unwrap(),
                Transport::Icmp(icmp) => {
                    icmp.emit(
                        &mut Icmpv4Packet::new_unchecked(&mut *body),
                        TxChecksum::Compute,
                    )
                    .unwrap();
                    icmp.buffer_len()
                }
                Transport::Fragment { payload } | Transport::Other { payload, .. } => {
                    body[..payload.len()].copy_from_slice(payload);
                    payload.len()
                }
            };
            assert_eq!(
                body_len, header.payload_len,
                "transport length disagrees with IPv4 payload length"
            );
            ip_len + body_len
        }
    };
    // Everything past the frame is still the 0xa5 filler.
    assert!(
        buf[eth_len + len..].iter().all(|&b| b == 0xa5),
        "emit wrote past the frame"
    );
    buf.truncate(eth_len + len);
    buf
}

//! Shared by the wire integration tests: a tiny pcap reader and a whole-frame
//! emitter (the inverse of `parse_frame`).
#![allow(dead_code)]

use surge_stack::wire::TxChecksum;
use surge_stack::wire::frame::ParsedFrame;

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

/// Emits a parsed frame back into bytes with `ParsedFrame::emit`, into a 0xa5-filled
/// buffer, checking nothing past the frame was touched.
pub fn emit_frame(frame: &ParsedFrame<'_>) -> Vec<u8> {
    let mut buf = vec![0xa5u8; frame.buffer_len() + 64];
    let len = frame
        .emit(&mut buf, TxChecksum::Compute)
        .expect("frame emits");
    assert_eq!(len, frame.buffer_len());
    assert!(
        buf[len..].iter().all(|&b| b == 0xa5),
        "emit wrote past the frame"
    );
    buf.truncate(len);
    buf
}

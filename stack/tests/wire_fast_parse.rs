//! The one-pass TCP parse (`parse_tcp_fast`) takes the layout of nearly every segment —
//! untagged Ethernet, IPv4 without options, TCP with no options or the timestamps alone
//! — and leaves every other options area (a SYN's, SACK blocks) to the full parse, which
//! reads it. Concrete frames here; `wire_roundtrip.rs` holds the two parses to the same
//! result on arbitrary ones.

mod common;

use core::net::Ipv4Addr;
use surge_stack::wire::frame::{
    FastTcp, Network, ParsedFrame, Transport, parse_frame, parse_tcp_fast,
};
use surge_stack::wire::*;

/// An Ethernet/IPv4/TCP frame carrying `options` and 64 bytes of text.
fn frame_with(options: TcpOptions) -> Vec<u8> {
    let payload = [0x5au8; 64];
    let tcp = TcpRepr {
        src_port: 40_000,
        dst_port: 7,
        seq_number: 0x0102_0304,
        ack_number: 0xa0b0_c0d0,
        flags: TcpFlags::ACK | TcpFlags::PSH,
        window_len: 512,
        urgent_pointer: 0,
        options,
    };
    let ip = Ipv4Repr::new(
        Ipv4Addr::new(10, 0, 0, 2),
        Ipv4Addr::new(10, 0, 0, 1),
        IpProtocol::Tcp,
        tcp.header_len() + payload.len(),
        64,
    );
    let frame = ParsedFrame {
        ethernet: EthernetRepr {
            src_addr: EthernetAddress([2, 0, 0, 0, 0, 2]),
            dst_addr: EthernetAddress([2, 0, 0, 0, 0, 1]),
            vlan: None,
            ethertype: EtherType::Ipv4,
        },
        network: Network::Ipv4 {
            header: ip,
            transport: Transport::Tcp {
                header: tcp,
                payload: &payload,
            },
        },
    };
    common::emit_frame(&frame)
}

/// The TCP header the full parse reads from `bytes`.
fn full_parse(bytes: &[u8], mode: ChecksumMode) -> TcpRepr {
    match parse_frame(bytes, mode) {
        Ok(ParsedFrame {
            network:
                Network::Ipv4 {
                    transport: Transport::Tcp { header, .. },
                    ..
                },
            ..
        }) => header,
        other => panic!("not read as TCP: {other:?}"),
    }
}

/// A header left over from an earlier segment: every field and option set, so that a
/// parse that forgot to write one shows it.
fn stale_header() -> TcpRepr {
    let mut sack_blocks = SackBlocks::new();
    sack_blocks.push(7, 9);
    sack_blocks.push(11, 13);
    TcpRepr {
        src_port: 1,
        dst_port: 2,
        seq_number: 3,
        ack_number: 4,
        flags: TcpFlags::SYN | TcpFlags::ACK,
        window_len: 5,
        urgent_pointer: 6,
        options: TcpOptions {
            mss: Some(1460),
            window_scale: Some(7),
            sack_permitted: true,
            sack_blocks,
            timestamp: Some((1, 2)),
        },
    }
}

/// [`parse_tcp_fast`] into a stale header: the frame's other fields and the header.
fn fast_parse(bytes: &[u8], mode: ChecksumMode) -> Option<(FastTcp<'_>, TcpRepr)> {
    let mut header = stale_header();
    let fast = parse_tcp_fast(bytes, mode, &mut header)?;
    Some((fast, header))
}

#[test]
fn no_options_and_timestamps_alone_take_the_one_pass_parse() {
    let timestamps = TcpOptions {
        timestamp: Some((0x1122_3344, 0x5566_7788)),
        ..TcpOptions::default()
    };
    for options in [TcpOptions::default(), timestamps] {
        let bytes = frame_with(options);
        for mode in [ChecksumMode::Verify, ChecksumMode::Trust] {
            let (fast, header) = fast_parse(&bytes, mode).expect("the common layout");
            assert_eq!(header.options, options);
            assert_eq!(header, full_parse(&bytes, mode));
            assert_eq!(fast.payload, &[0x5au8; 64][..]);
        }
    }
}

#[test]
fn other_options_are_left_to_the_full_parse() {
    let mut sack_blocks = SackBlocks::new();
    sack_blocks.push(0x0102_0404, 0x0102_0504);
    let handshake = TcpOptions {
        mss: Some(1460),
        window_scale: Some(7),
        sack_permitted: true,
        timestamp: Some((1, 0)),
        ..TcpOptions::default()
    };
    let sack = TcpOptions {
        sack_blocks,
        timestamp: Some((7, 9)),
        ..TcpOptions::default()
    };
    let mss_only = TcpOptions {
        mss: Some(536),
        ..TcpOptions::default()
    };
    for options in [handshake, sack, mss_only] {
        let bytes = frame_with(options);
        for mode in [ChecksumMode::Verify, ChecksumMode::Trust] {
            assert!(fast_parse(&bytes, mode).is_none(), "{options:?}");
            assert_eq!(full_parse(&bytes, mode).options, options);
        }
    }
}

#[test]
fn a_damaged_timestamp_prefix_is_left_to_the_full_parse() {
    let options = TcpOptions {
        timestamp: Some((3, 4)),
        ..TcpOptions::default()
    };
    let mut bytes = frame_with(options);
    // The first NOP of the options area (14 + 20 + 20) becomes an unknown kind's
    // length-less byte: not the timestamps-only layout any more.
    bytes[54] = 0x77;
    assert!(fast_parse(&bytes, ChecksumMode::Trust).is_none());
    // The full parse still decides (here: what the malformed area leaves).
    let _ = parse_frame(&bytes, ChecksumMode::Trust);
}

/// The layout is told by the data offset (5: no options; 8: the 12-byte timestamps
/// area) and the area's first four bytes, compared as one word: a change to any byte
/// of that prefix, and every other data offset, leaves the frame to the full parse.
#[test]
fn only_offsets_five_and_eight_with_the_whole_prefix_take_the_one_pass_parse() {
    let options = TcpOptions {
        timestamp: Some((3, 4)),
        ..TcpOptions::default()
    };
    let good = frame_with(options);
    // The options area starts at 14 + 20 + 20 = 54; checksums are trusted, so that
    // only the layout decides.
    for at in 54..58 {
        for flip in [0x01u8, 0x80] {
            let mut bytes = good.clone();
            bytes[at] ^= flip;
            assert!(
                fast_parse(&bytes, ChecksumMode::Trust).is_none(),
                "byte {at} ^ {flip:#x}"
            );
        }
    }
    // The data offset is the high nibble of byte 14 + 20 + 12 = 46.
    let with_offset = |offset: u8| {
        let mut bytes = good.clone();
        bytes[46] = offset << 4 | (bytes[46] & 0x0f);
        bytes
    };
    for offset in (0u8..16).filter(|o| ![5, 8].contains(o)) {
        assert!(
            fast_parse(&with_offset(offset), ChecksumMode::Trust).is_none(),
            "data offset {offset}"
        );
    }
    // Offset 5 reads the same bytes as no options and a longer payload, as the full
    // parse does.
    let bytes = with_offset(5);
    let (fast, header) = fast_parse(&bytes, ChecksumMode::Trust).expect("no options");
    assert_eq!(header, full_parse(&bytes, ChecksumMode::Trust));
    assert_eq!(header.options, TcpOptions::default());
    assert_eq!(fast.payload.len(), 12 + 64);
    let (_, header) = fast_parse(&good, ChecksumMode::Verify).expect("the common layout");
    assert_eq!(header.options, options);
}

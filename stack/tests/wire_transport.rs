//! Hand-made byte arrays for UDP and TCP (with every option surge knows): parse,
//! emit into 0xa5-filled buffers, checksums, and the errors.

use core::net::Ipv4Addr;
use surge_stack::wire::*;

const A: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
const B: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);

fn check_emit(cap: usize, want: &[u8], f: impl FnOnce(&mut [u8])) {
    let mut buf = vec![0xa5u8; cap];
    f(&mut buf);
    assert_eq!(&buf[..want.len()], want);
    assert!(
        buf[want.len()..].iter().all(|&b| b == 0xa5),
        "emit wrote past the end: {buf:02x?}"
    );
}

/// UDP 1234 -> 80, "hello world!", checksum 0xdc8c over 198.18.0.1 -> .2.
const UDP: [u8; 20] = [
    0x04, 0xd2, 0x00, 0x50, 0x00, 0x14, 0xdc, 0x8c, b'h', b'e', b'l', b'l', b'o', b' ', b'w', b'o',
    b'r', b'l', b'd', b'!',
];

#[test]
fn udp_both_directions() {
    let packet = UdpPacket::new_checked(&UDP[..]).unwrap();
    let repr = UdpRepr::parse(&packet, A, B, ChecksumMode::Verify).unwrap();
    assert_eq!(
        repr,
        UdpRepr {
            src_port: 1234,
            dst_port: 80
        }
    );
    assert_eq!(packet.payload(), b"hello world!");
    // Header only, checksum left zero for later.
    let mut want = UDP;
    want[6..8].copy_from_slice(&[0, 0]);
    check_emit(12, &want[..8], |buf| {
        repr.emit(&mut UdpPacket::new_unchecked(buf), 12).unwrap()
    });
    // Whole datagram with checksum.
    check_emit(32, &UDP, |buf| {
        assert_eq!(
            repr.emit_datagram(buf, A, B, b"hello world!", TxChecksum::Compute),
            Ok(20)
        );
    });
    assert_eq!(
        udp::checksum_split(A, B, &want[..8], b"hello world!"),
        0xdc8c
    );
    let mut d = want;
    udp::fill_checksum(&mut d, A, B).unwrap();
    assert_eq!(d, UDP);
}

#[test]
fn udp_checksum_zero_is_sent_as_all_ones_and_zero_means_none() {
    // Make the data cancel the rest so the computed checksum is 0 (RFC 768: send 0xffff).
    let mut d = UDP;
    d[6..8].copy_from_slice(&[0, 0]);
    d[18..20].copy_from_slice(&[0, 0]);
    let partial = udp::checksum_split(A, B, &d, &[]);
    d[18..20].copy_from_slice(&partial.to_be_bytes());
    udp::fill_checksum(&mut d, A, B).unwrap();
    assert_eq!(&d[6..8], &[0xff, 0xff]);
    assert!(
        UdpRepr::parse(
            &UdpPacket::new_checked(&d[..]).unwrap(),
            A,
            B,
            ChecksumMode::Verify
        )
        .is_ok()
    );
    // A zero checksum field means none was sent: accepted.
    let mut none = UDP;
    none[6..8].copy_from_slice(&[0, 0]);
    assert!(
        UdpRepr::parse(
            &UdpPacket::new_checked(&none[..]).unwrap(),
            A,
            B,
            ChecksumMode::Verify
        )
        .is_ok()
    );
}

#[test]
fn udp_errors() {
    assert_eq!(
        UdpPacket::new_checked(&UDP[..7]).err(),
        Some(WireError::Truncated)
    );
    let mut short = UDP;
    short[5] = 7;
    assert_eq!(
        UdpPacket::new_checked(&short[..]).err(),
        Some(WireError::BadLength)
    );
    assert_eq!(
        UdpPacket::new_checked(&UDP[..19]).err(),
        Some(WireError::Truncated)
    );
    let mut bad = UDP;
    bad[10] ^= 1;
    let p = UdpPacket::new_checked(&bad[..]).unwrap();
    assert_eq!(
        UdpRepr::parse(&p, A, B, ChecksumMode::Verify),
        Err(WireError::BadChecksum)
    );
    assert!(UdpRepr::parse(&p, A, B, ChecksumMode::Trust).is_ok());
    // The pseudo-header counts: another destination fails.
    let p = UdpPacket::new_checked(&UDP[..]).unwrap();
    assert_eq!(
        UdpRepr::parse(&p, A, Ipv4Addr::new(198, 18, 0, 3), ChecksumMode::Verify),
        Err(WireError::BadChecksum)
    );
    let repr = UdpRepr {
        src_port: 1,
        dst_port: 2,
    };
    assert_eq!(
        repr.emit(&mut UdpPacket::new_unchecked(&mut [0u8; 8][..]), 65_528),
        Err(WireError::BadLength)
    );
    assert_eq!(
        repr.emit_datagram(&mut [0u8; 10], A, B, b"abc", TxChecksum::Compute),
        Err(WireError::Truncated)
    );
}

/// A Linux-style SYN: 40000 -> 80, seq 0x01020304, window 65535, options MSS
/// 1460, SACK-permitted, timestamps (1, 0), NOP, window scale 7; checksum 0x1b41.
const SYN: [u8; 40] = [
    0x9c, 0x40, 0x00, 0x50, 1, 2, 3, 4, 0, 0, 0, 0, 0xa0, 0x02, 0xff, 0xff, 0x1b, 0x41, 0,
    0, // header
    2, 4, 0x05, 0xb4, 4, 2, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0, 1, 3, 3, 7, // options
];

fn syn_repr() -> TcpRepr {
    TcpRepr {
        src_port: 40000,
        dst_port: 80,
        seq_number: 0x01020304,
        ack_number: 0,
        flags: TcpFlags::SYN,
        window_len: 0xffff,
        urgent_pointer: 0,
        options: TcpOptions {
            mss: Some(1460),
            window_scale: Some(7),
            sack_permitted: true,
            sack_blocks: SackBlocks::new(),
            timestamp: Some((1, 0)),
        },
    }
}

#[test]
fn tcp_syn_both_directions() {
    let packet = TcpPacket::new_checked(&SYN[..]).unwrap();
    assert!(packet.verify_checksum(A, B));
    let repr = TcpRepr::parse(&packet, A, B, ChecksumMode::Verify).unwrap();
    assert_eq!(repr, syn_repr());
    assert_eq!(repr.header_len(), 40);
    assert!(packet.payload().is_empty());
    let mut want = SYN;
    want[16..18].copy_from_slice(&[0, 0]);
    check_emit(48, &want, |buf| {
        assert_eq!(repr.emit(&mut TcpPacket::new_unchecked(buf)), Ok(40))
    });
    check_emit(48, &SYN, |buf| {
        assert_eq!(
            repr.emit_segment(buf, A, B, &[], TxChecksum::Compute),
            Ok(40)
        )
    });
    assert_eq!(tcp::checksum_split(A, B, &want, &[]), 0x1b41);
}

#[test]
fn tcp_data_with_sack_and_timestamps_and_split_checksum() {
    let repr = TcpRepr {
        src_port: 80,
        dst_port: 40000,
        seq_number: 0xfffffff0,
        ack_number: 0x01020305,
        flags: TcpFlags::ACK | TcpFlags::PSH,
        window_len: 512,
        urgent_pointer: 0,
        options: TcpOptions {
            timestamp: Some((0xdeadbeef, 1)),
            sack_blocks: sack(&[(10, 20), (30, 40)]),
            ..TcpOptions::default()
        },
    };
    #[rustfmt::skip]
    let want_header = [
        0x00, 0x50, 0x9c, 0x40, 0xff, 0xff, 0xff, 0xf0, 0x01, 0x02, 0x03, 0x05, 0xd0, 0x18, 0x02, 0x00, 0, 0, 0, 0,
        1, 1, 8, 10, 0xde, 0xad, 0xbe, 0xef, 0, 0, 0, 1, // NOP NOP TS
        1, 1, 5, 18, 0, 0, 0, 10, 0, 0, 0, 20, 0, 0, 0, 30, 0, 0, 0, 40, // NOP NOP SACK x2
    ];
    assert_eq!(repr.header_len(), 52);
    check_emit(60, &want_header, |buf| {
        assert_eq!(repr.emit(&mut TcpPacket::new_unchecked(buf)), Ok(52))
    });

    // An odd-length payload; the split checksum equals the one over one buffer.
    let payload = b"odd length payload!";
    let mut seg = vec![0xa5u8; 200];
    let n = repr
        .emit_segment(&mut seg, A, B, payload, TxChecksum::Compute)
        .unwrap();
    seg.truncate(n);
    let packet = TcpPacket::new_checked(&seg[..]).unwrap();
    assert_eq!(
        tcp::checksum_split(A, B, &want_header, payload),
        packet.checksum()
    );
    assert_eq!(
        TcpRepr::parse(&packet, A, B, ChecksumMode::Verify),
        Ok(repr)
    );
    assert_eq!(packet.payload(), payload);
}

fn sack(blocks: &[(u32, u32)]) -> SackBlocks {
    let mut s = SackBlocks::new();
    for &(l, r) in blocks {
        assert!(s.push(l, r));
    }
    s
}

/// Parses `options` (padded to 4 with EOL) behind a valid header.
fn parse_options(options: &[u8]) -> Result<TcpOptions, WireError> {
    let header_len = 20 + options.len().div_ceil(4) * 4;
    let mut seg = vec![0u8; header_len];
    seg[12] = ((header_len / 4) as u8) << 4;
    seg[20..20 + options.len()].copy_from_slice(options);
    tcp::fill_checksum(&mut seg, A, B).unwrap();
    TcpRepr::parse(
        &TcpPacket::new_checked(&seg[..]).unwrap(),
        A,
        B,
        ChecksumMode::Verify,
    )
    .map(|r| r.options)
}

#[test]
fn tcp_option_rules() {
    // Unknown options (MPTCP, kind 30) are skipped by length; NOPs anywhere.
    let o = parse_options(&[30, 6, 1, 2, 3, 4, 1, 2, 4, 0x05, 0xb4, 1]).unwrap();
    assert_eq!(
        o,
        TcpOptions {
            mss: Some(1460),
            ..TcpOptions::default()
        }
    );
    // EOL ends the list; garbage after it is padding.
    let o = parse_options(&[4, 2, 0, 2, 1]).unwrap();
    assert_eq!(
        o,
        TcpOptions {
            sack_permitted: true,
            ..TcpOptions::default()
        }
    );
    // RFC 7323 §2.3: a shift above 14 is used as 14.
    assert_eq!(parse_options(&[3, 3, 15]).unwrap().window_scale, Some(14));
    assert_eq!(parse_options(&[3, 3, 255]).unwrap().window_scale, Some(14));
    // and never emitted above 14.
    let mut r = syn_repr();
    r.options.window_scale = Some(200);
    let mut buf = [0u8; 40];
    r.emit(&mut TcpPacket::new_unchecked(&mut buf[..])).unwrap();
    assert_eq!(&buf[36..40], &[1, 3, 3, 14]);
    // Four SACK blocks parse.
    let mut four = vec![5, 34];
    for i in 0..8u32 {
        four.extend_from_slice(&(i * 100).to_be_bytes());
    }
    assert_eq!(
        parse_options(&four).unwrap().sack_blocks,
        sack(&[(0, 100), (200, 300), (400, 500), (600, 700)])
    );

    // Malformed: length < 2, length past the area, missing length byte, wrong
    // length for a known kind. As in Linux, the segment stands: the parse ends
    // (or skips the option) and nothing malformed is taken.
    for bad in [
        &[30, 1, 0, 0][..],
        &[30, 0][..],
        &[30, 9, 0, 0][..],
        &[1, 1, 1, 2][..],
        &[2, 3, 5, 1][..],
        &[2, 5, 5, 0xb4, 0][..],
        &[3, 2][..],
        &[4, 3, 0][..],
        &[5, 11, 0, 0, 0, 0, 0, 0, 0, 0, 0][..],
        &[5, 2][..],
        &[8, 9, 0, 0, 0, 0, 0, 0, 0][..],
    ] {
        assert_eq!(parse_options(bad), Ok(TcpOptions::default()), "{bad:?}");
    }
    // Options before a malformed one count; a wrong-length one is skipped.
    let mss = parse_options(&[2, 4, 5, 0xb4, 30, 1, 0, 0]).unwrap();
    assert_eq!(mss.mss, Some(1460));
    let after_skip = parse_options(&[2, 3, 5, 3, 3, 7, 0, 0]).unwrap();
    assert_eq!((after_skip.mss, after_skip.window_scale), (None, Some(7)));
}

#[test]
fn tcp_sack_blocks_are_limited_to_what_fits() {
    let mut r = syn_repr();
    r.options = TcpOptions {
        timestamp: Some((5, 6)),
        sack_blocks: sack(&[(1, 2), (3, 4), (5, 6), (7, 8)]),
        ..TcpOptions::default()
    };
    // RFC 2018 §3: three blocks beside timestamps.
    assert_eq!(r.options.emitted_sack_blocks(), 3);
    assert_eq!(r.header_len(), 20 + 12 + 4 + 24);
    let mut buf = [0u8; 60];
    r.emit(&mut TcpPacket::new_unchecked(&mut buf[..])).unwrap();
    let parsed = TcpRepr::parse(
        &TcpPacket::new_checked(&buf[..]).unwrap(),
        A,
        B,
        ChecksumMode::Trust,
    )
    .unwrap();
    assert_eq!(parsed.options.sack_blocks, sack(&[(1, 2), (3, 4), (5, 6)]));
    // Without timestamps all four fit.
    r.options.timestamp = None;
    assert_eq!(r.options.emitted_sack_blocks(), 4);
    assert_eq!(r.header_len(), 20 + 4 + 32);
}

#[test]
fn tcp_errors() {
    let parse = |b: &[u8]| TcpRepr::parse(&TcpPacket::new_unchecked(b), A, B, ChecksumMode::Verify);
    assert_eq!(parse(&SYN[..19]), Err(WireError::Truncated));
    assert_eq!(parse(&SYN[..39]), Err(WireError::Truncated), "options cut");
    let mut off = SYN;
    off[12] = 0x40;
    assert_eq!(parse(&off), Err(WireError::BadHeaderLen));
    let mut bad = SYN;
    bad[39] = 8;
    assert_eq!(parse(&bad), Err(WireError::BadChecksum));
    assert!(
        TcpRepr::parse(
            &TcpPacket::new_unchecked(&bad[..]),
            A,
            B,
            ChecksumMode::Trust
        )
        .is_ok()
    );
    assert_eq!(
        syn_repr().emit(&mut TcpPacket::new_unchecked(&mut [0u8; 39][..])),
        Err(WireError::Truncated)
    );
    assert_eq!(
        tcp::fill_checksum(&mut [0u8; 19], A, B),
        Err(WireError::BadLength)
    );
}

/// The split checksum against the RFC 1071 reference over one buffer holding the
/// pseudo-header and both pieces, for every cut (odd ones included), on data that
/// stresses carries (all ones) and on mixed data; and the whole segment, checksum
/// written in, verifies.
#[test]
fn tcp_split_checksum_equals_reference_at_every_cut() {
    use surge_stack::checksum::scalar::sum_reference;
    let mixed: Vec<u8> = (0..200u32).map(|i| (i * 37 + 11) as u8).collect();
    for data in [vec![0xffu8; 200], mixed] {
        for len in [
            20usize, 21, 31, 32, 33, 63, 64, 95, 96, 97, 127, 128, 129, 200,
        ] {
            let seg = &data[..len];
            let mut pseudo = vec![198, 18, 0, 1, 198, 18, 0, 2, 0, 6];
            pseudo.extend((len as u16).to_be_bytes());
            pseudo.extend_from_slice(seg);
            let want = !sum_reference(&pseudo);
            for cut in 0..=len {
                let (header, payload) = seg.split_at(cut);
                assert_eq!(
                    tcp::checksum_split(A, B, header, payload),
                    want,
                    "len {len} cut {cut}"
                );
            }
            let mut whole = seg.to_vec();
            tcp::fill_checksum(&mut whole, A, B).unwrap();
            assert!(TcpPacket::new_unchecked(&whole[..]).verify_checksum(A, B));
            whole[len - 1] ^= 1;
            assert!(!TcpPacket::new_unchecked(&whole[..]).verify_checksum(A, B));
        }
    }
}

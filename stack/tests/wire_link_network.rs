//! Hand-made byte arrays for Ethernet (with 802.1Q), ARP, IPv4 and ICMPv4: parse
//! them, emit the repr into a 0xa5-filled buffer, and check both directions and
//! every error the parsers promise.

use core::net::Ipv4Addr;
use surge_stack::wire::*;

const A: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
const B: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);

/// Emits with `f` into a 0xa5-filled buffer of `cap` bytes; checks the first
/// `len` bytes equal `want` and the rest were not touched.
fn check_emit(cap: usize, want: &[u8], f: impl FnOnce(&mut [u8])) {
    let mut buf = vec![0xa5u8; cap];
    f(&mut buf);
    assert_eq!(&buf[..want.len()], want);
    assert!(
        buf[want.len()..].iter().all(|&b| b == 0xa5),
        "emit wrote past the header: {buf:02x?}"
    );
}

const ETH_UNTAGGED: [u8; 16] = [
    0x02, 0, 0, 0, 0, 0x02, // dst
    0x02, 0, 0, 0, 0, 0x01, // src
    0x08, 0x00, // IPv4
    0xde, 0xad, // payload
];

#[test]
fn ethernet_untagged_both_directions() {
    let frame = EthernetFrame::new_checked(&ETH_UNTAGGED[..]).unwrap();
    let repr = EthernetRepr::parse(&frame).unwrap();
    assert_eq!(
        repr,
        EthernetRepr {
            src_addr: EthernetAddress([2, 0, 0, 0, 0, 1]),
            dst_addr: EthernetAddress([2, 0, 0, 0, 0, 2]),
            vlan: None,
            ethertype: EtherType::Ipv4,
        }
    );
    assert_eq!(frame.payload(), &[0xde, 0xad]);
    assert_eq!(repr.header_len(), 14);
    check_emit(20, &ETH_UNTAGGED[..14], |buf| {
        repr.emit(&mut EthernetFrame::new_unchecked(buf)).unwrap()
    });
    assert!(repr.src_addr.is_unicast() && !repr.dst_addr.is_multicast());
    assert!(EthernetAddress::BROADCAST.is_broadcast() && EthernetAddress::BROADCAST.is_multicast());
    assert_eq!(repr.src_addr.to_string(), "02:00:00:00:00:01");
}

#[test]
fn ethernet_vlan_tag_both_directions() {
    // TCI: PCP 5, DEI 1, VID 100 = 0xb064; inner type ARP.
    let bytes = [
        0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0, 0, 1, 0x81, 0x00, 0xb0, 0x64, 0x08, 0x06,
        0x77,
    ];
    let frame = EthernetFrame::new_checked(&bytes[..]).unwrap();
    let repr = EthernetRepr::parse(&frame).unwrap();
    assert_eq!(
        repr.vlan,
        Some(VlanTag {
            pcp: 5,
            dei: true,
            vid: 100
        })
    );
    assert_eq!(repr.ethertype, EtherType::Arp);
    assert_eq!(repr.dst_addr, EthernetAddress::BROADCAST);
    assert_eq!(frame.header_len(), 18);
    assert_eq!(frame.payload(), &[0x77]);
    check_emit(24, &bytes[..18], |buf| {
        repr.emit(&mut EthernetFrame::new_unchecked(buf)).unwrap()
    });
}

#[test]
fn ethernet_errors() {
    assert_eq!(
        EthernetFrame::new_checked(&ETH_UNTAGGED[..13]).err(),
        Some(WireError::Truncated)
    );
    let mut tagged = [0u8; 18];
    tagged[12..14].copy_from_slice(&[0x81, 0x00]);
    tagged[16..18].copy_from_slice(&[0x08, 0x00]);
    assert_eq!(
        EthernetFrame::new_checked(&tagged[..17]).err(),
        Some(WireError::Truncated)
    );
    assert!(EthernetRepr::parse(&EthernetFrame::new_checked(&tagged[..]).unwrap()).is_ok());
    // Stacked tags, QinQ, and 802.3 length-field frames are not handled.
    for (outer, inner) in [
        ([0x81, 0x00], [0x81, 0x00]),
        ([0x88, 0xa8], [0x08, 0x00]),
        ([0x05, 0xdc], [0, 0]),
    ] {
        let mut f = tagged;
        f[12..14].copy_from_slice(&outer);
        f[16..18].copy_from_slice(&inner);
        let frame = EthernetFrame::new_checked(&f[..]).unwrap();
        assert_eq!(
            EthernetRepr::parse(&frame),
            Err(WireError::Unsupported),
            "{outer:02x?}"
        );
    }
    // Too small a buffer to emit into is an error, not a panic.
    let repr = EthernetRepr::parse(&EthernetFrame::new_checked(&tagged[..]).unwrap()).unwrap();
    assert_eq!(
        repr.emit(&mut EthernetFrame::new_unchecked(&mut [0u8; 17][..])),
        Err(WireError::Truncated)
    );
}

const ARP_REQUEST: [u8; 28] = [
    0x00, 0x01, 0x08, 0x00, 6, 4, 0x00, 0x01, // Ethernet, IPv4, request
    2, 0, 0, 0, 0, 1, 198, 18, 0, 1, // sender
    0, 0, 0, 0, 0, 0, 198, 18, 0, 2, // target
];

#[test]
fn arp_both_directions_and_errors() {
    let repr = ArpRepr::parse(&ArpPacket::new_checked(&ARP_REQUEST[..]).unwrap()).unwrap();
    assert_eq!(
        repr,
        ArpRepr {
            operation: ArpOperation::Request,
            source_hardware_addr: EthernetAddress([2, 0, 0, 0, 0, 1]),
            source_protocol_addr: A,
            target_hardware_addr: EthernetAddress([0; 6]),
            target_protocol_addr: B,
        }
    );
    check_emit(40, &ARP_REQUEST, |buf| {
        repr.emit(&mut ArpPacket::new_unchecked(buf)).unwrap()
    });
    let reply = ArpRepr {
        operation: ArpOperation::Reply,
        ..repr
    };
    let mut want = ARP_REQUEST;
    want[7] = 2;
    check_emit(28, &want, |buf| {
        reply.emit(&mut ArpPacket::new_unchecked(buf)).unwrap()
    });

    assert_eq!(
        ArpPacket::new_checked(&ARP_REQUEST[..27]).err(),
        Some(WireError::Truncated)
    );
    for (at, value) in [(1, 6u8), (2, 0x86), (4, 8), (5, 16), (7, 3)] {
        let mut bad = ARP_REQUEST;
        bad[at] = value;
        assert_eq!(
            ArpRepr::parse(&ArpPacket::new_checked(&bad[..]).unwrap()),
            Err(WireError::Unsupported),
            "byte {at}"
        );
    }
}

/// IPv4, IHL 6 with a Router Alert option (RFC 2113), UDP, 12 bytes of payload,
/// checksum 0x0769, then 2 bytes of Ethernet padding.
const IPV4_WITH_OPTION: [u8; 38] = [
    0x46, 0x00, 0x00, 0x24, 0x12, 0x34, 0x40, 0x00, 0x40, 0x11, 0x07, 0x69, 198, 18, 0, 1, 198, 18,
    0, 2, // header
    0x94, 0x04, 0x00, 0x00, // router alert
    b'h', b'e', b'l', b'l', b'o', b' ', b'w', b'o', b'r', b'l', b'd', b'!', // payload
    0xa5, 0xa5, // padding
];

#[test]
fn ipv4_both_directions() {
    let packet = Ipv4Packet::new_checked(&IPV4_WITH_OPTION[..]).unwrap();
    assert!(packet.verify_checksum());
    let repr = Ipv4Repr::parse(&packet, ChecksumMode::Verify).unwrap();
    assert_eq!(
        repr,
        Ipv4Repr {
            ident: 0x1234,
            options: Ipv4Options::new(&[0x94, 0x04, 0, 0]).unwrap(),
            ..Ipv4Repr::new(A, B, IpProtocol::Udp, 12, 64)
        }
    );
    assert_eq!(
        packet.payload(),
        b"hello world!",
        "padding after the total length is not payload"
    );
    assert!(!repr.is_fragment());
    assert_eq!(repr.header_len(), 24);
    check_emit(40, &IPV4_WITH_OPTION[..24], |buf| {
        repr.emit(&mut Ipv4Packet::new_unchecked(buf), TxChecksum::Compute)
            .unwrap()
    });
    // Offload leaves the checksum zero.
    let mut want = IPV4_WITH_OPTION;
    want[10..12].copy_from_slice(&[0, 0]);
    check_emit(40, &want[..24], |buf| {
        repr.emit(&mut Ipv4Packet::new_unchecked(buf), TxChecksum::Offload)
            .unwrap()
    });
}

#[test]
fn ipv4_fragment_fields() {
    let mut bytes = IPV4_WITH_OPTION;
    // MF set, offset 185 * 8 = 1480.
    bytes[6..8].copy_from_slice(&(0x2000u16 | 185).to_be_bytes());
    let mut packet = Ipv4Packet::new_unchecked(&mut bytes[..]);
    packet.fill_checksum();
    let repr = Ipv4Repr::parse(
        &Ipv4Packet::new_checked(&bytes[..]).unwrap(),
        ChecksumMode::Verify,
    )
    .unwrap();
    assert!(repr.more_frags && !repr.dont_frag && repr.is_fragment());
    assert_eq!(repr.frag_offset, 1480);
    check_emit(30, &bytes[..24], |buf| {
        repr.emit(&mut Ipv4Packet::new_unchecked(buf), TxChecksum::Compute)
            .unwrap()
    });
}

#[test]
fn ipv4_errors() {
    let parse = |b: &[u8]| Ipv4Repr::parse(&Ipv4Packet::new_unchecked(b), ChecksumMode::Verify);
    assert_eq!(parse(&IPV4_WITH_OPTION[..19]), Err(WireError::Truncated));
    assert_eq!(
        parse(&IPV4_WITH_OPTION[..22]),
        Err(WireError::Truncated),
        "options cut"
    );
    assert_eq!(
        parse(&IPV4_WITH_OPTION[..35]),
        Err(WireError::Truncated),
        "total length past the buffer"
    );
    let with = |at: usize, v: u8| {
        let mut b = IPV4_WITH_OPTION;
        b[at] = v;
        b
    };
    assert_eq!(parse(&with(0, 0x66)), Err(WireError::BadVersion));
    assert_eq!(parse(&with(0, 0x44)), Err(WireError::BadHeaderLen));
    assert_eq!(
        parse(&with(3, 23)),
        Err(WireError::BadLength),
        "total length below header length"
    );
    assert_eq!(parse(&with(11, 0x68)), Err(WireError::BadChecksum));
    assert!(
        Ipv4Repr::parse(
            &Ipv4Packet::new_unchecked(&with(11, 0x68)[..]),
            ChecksumMode::Trust
        )
        .is_ok()
    );

    // Malformed options: a length of 1, a length past the header, a kind with no
    // length byte. Each fixed up with a valid checksum so only the option is wrong.
    for opt in [[0x94, 0x01, 0, 0], [0x94, 0x08, 0, 0], [1, 1, 1, 0x44]] {
        let mut b = IPV4_WITH_OPTION;
        b[20..24].copy_from_slice(&opt);
        Ipv4Packet::new_unchecked(&mut b[..]).fill_checksum();
        assert_eq!(parse(&b), Err(WireError::BadOption), "{opt:02x?}");
    }
    // EOL ends the list: bytes after it are padding, not options.
    let mut b = IPV4_WITH_OPTION;
    b[20..24].copy_from_slice(&[1, 0, 0x94, 0x01]);
    Ipv4Packet::new_unchecked(&mut b[..]).fill_checksum();
    assert!(parse(&b).is_ok());
    assert_eq!(Ipv4Options::new(&[0u8; 41]), Err(WireError::BadOption));
    assert_eq!(
        Ipv4Options::new(&[7, 3, 4]).unwrap().as_bytes(),
        &[7, 3, 4, 0],
        "padded with EOL"
    );

    let big = Ipv4Repr::new(A, B, IpProtocol::Tcp, 65_536, 64);
    assert_eq!(
        big.emit(
            &mut Ipv4Packet::new_unchecked(&mut [0u8; 20][..]),
            TxChecksum::Compute
        ),
        Err(WireError::BadLength)
    );
    let small = Ipv4Repr::new(A, B, IpProtocol::Tcp, 0, 64);
    assert_eq!(
        small.emit(
            &mut Ipv4Packet::new_unchecked(&mut [0u8; 19][..]),
            TxChecksum::Compute
        ),
        Err(WireError::Truncated)
    );
}

const ICMP_ECHO: [u8; 16] = [
    8, 0, 0x54, 0x35, 0x12, 0x34, 0x00, 0x01, b'a', b'b', b'c', b'd', b'e', b'f', b'g', b'h',
];

#[test]
fn icmp_echo_both_directions() {
    let packet = Icmpv4Packet::new_checked(&ICMP_ECHO[..]).unwrap();
    let repr = Icmpv4Repr::parse(&packet, ChecksumMode::Verify).unwrap();
    assert_eq!(
        repr,
        Icmpv4Repr::EchoRequest {
            ident: 0x1234,
            seq_no: 1,
            data: b"abcdefgh"
        }
    );
    assert_eq!(repr.buffer_len(), 16);
    check_emit(24, &ICMP_ECHO, |buf| {
        repr.emit(&mut Icmpv4Packet::new_unchecked(buf), TxChecksum::Compute)
            .unwrap()
    });
    // The reply differs in type, and so in checksum by exactly 0x0800.
    let reply = Icmpv4Repr::EchoReply {
        ident: 0x1234,
        seq_no: 1,
        data: b"abcdefgh",
    };
    let mut want = ICMP_ECHO;
    want[0] = 0;
    want[2..4].copy_from_slice(&(0x5435u16 + 0x0800).to_be_bytes());
    check_emit(24, &want, |buf| {
        reply
            .emit(&mut Icmpv4Packet::new_unchecked(buf), TxChecksum::Compute)
            .unwrap()
    });
}

/// Builds "fragmentation needed, next-hop MTU 1400" quoting a TCP packet's header
/// plus its first 8 bytes, the way a router does (RFC 1191 §4, RFC 792).
fn frag_needed() -> Vec<u8> {
    let mut quoted = vec![
        0x45, 0x00, 0x05, 0xdc, 0xab, 0xcd, 0x40, 0x00, 0x3f, 0x06, 0, 0, 198, 18, 0, 1, 198, 18,
        0, 2,
    ];
    Ipv4Packet::new_unchecked(&mut quoted[..]).fill_checksum();
    quoted.extend_from_slice(&[0x9c, 0x40, 0x00, 0x50, 0x01, 0x02, 0x03, 0x04]); // ports, seq
    let mut msg = vec![3, 4, 0, 0, 0, 0, 0x05, 0x78];
    msg.extend_from_slice(&quoted);
    Icmpv4Packet::new_unchecked(&mut msg[..]).fill_checksum();
    msg
}

#[test]
fn icmp_frag_needed_and_time_exceeded_both_directions() {
    let msg = frag_needed();
    let repr = Icmpv4Repr::parse(
        &Icmpv4Packet::new_checked(&msg[..]).unwrap(),
        ChecksumMode::Verify,
    )
    .unwrap();
    let header = Ipv4Repr {
        ident: 0xabcd,
        ..Ipv4Repr::new(A, B, IpProtocol::Tcp, 1480, 63)
    };
    let data = [0x9c, 0x40, 0x00, 0x50, 0x01, 0x02, 0x03, 0x04];
    assert_eq!(
        repr,
        Icmpv4Repr::DstUnreachable {
            reason: DstUnreachable::FragRequired,
            next_hop_mtu: 1400,
            header,
            data: &data
        }
    );
    check_emit(64, &msg, |buf| {
        repr.emit(&mut Icmpv4Packet::new_unchecked(buf), TxChecksum::Compute)
            .unwrap()
    });

    let mut te = msg.clone();
    te[0] = 11;
    te[1] = 0;
    te[6..8].copy_from_slice(&[0, 0]);
    Icmpv4Packet::new_unchecked(&mut te[..]).fill_checksum();
    let repr = Icmpv4Repr::parse(
        &Icmpv4Packet::new_checked(&te[..]).unwrap(),
        ChecksumMode::Verify,
    )
    .unwrap();
    assert_eq!(
        repr,
        Icmpv4Repr::TimeExceeded {
            reason: TimeExceeded::TtlExpired,
            header,
            data: &data
        }
    );
    check_emit(64, &te, |buf| {
        repr.emit(&mut Icmpv4Packet::new_unchecked(buf), TxChecksum::Compute)
            .unwrap()
    });
}

#[test]
fn icmp_errors() {
    let parse = |b: &[u8]| {
        Icmpv4Repr::parse(&Icmpv4Packet::new_unchecked(b), ChecksumMode::Verify).map(|_| ())
    };
    assert_eq!(parse(&ICMP_ECHO[..7]), Err(WireError::Truncated));
    let mut bad = ICMP_ECHO;
    bad[15] ^= 0xff;
    assert_eq!(parse(&bad), Err(WireError::BadChecksum));
    let fix = |mut m: Vec<u8>| {
        Icmpv4Packet::new_unchecked(&mut m[..]).fill_checksum();
        m
    };
    // Timestamp request (13) and echo with a non-zero code are not handled.
    let mut ts = ICMP_ECHO.to_vec();
    ts[0] = 13;
    assert_eq!(parse(&fix(ts)), Err(WireError::Unsupported));
    let mut code = ICMP_ECHO.to_vec();
    code[1] = 1;
    assert_eq!(parse(&fix(code)), Err(WireError::Unsupported));
    // The quoted header must be there and be IPv4.
    let msg = frag_needed();
    assert_eq!(
        parse(&fix(msg[..8 + 19].to_vec())),
        Err(WireError::Truncated)
    );
    let mut v6 = msg.clone();
    v6[8] = 0x65;
    assert_eq!(parse(&fix(v6)), Err(WireError::BadVersion));
    let mut ihl = msg.clone();
    ihl[8] = 0x43;
    assert_eq!(parse(&fix(ihl)), Err(WireError::BadHeaderLen));
    // Emitting into too small a buffer is an error.
    let repr = Icmpv4Repr::EchoRequest {
        ident: 1,
        seq_no: 2,
        data: b"abc",
    };
    assert_eq!(
        repr.emit(
            &mut Icmpv4Packet::new_unchecked(&mut [0u8; 10][..]),
            TxChecksum::Compute
        ),
        Err(WireError::Truncated)
    );
}

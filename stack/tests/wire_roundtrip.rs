//! Property tests: `parse(emit(repr)) == repr` for every repr, and parsing
//! arbitrary or mutated bytes never panics.

mod common;

use core::net::Ipv4Addr;
use proptest::prelude::*;
use surge_stack::wire::frame::{
    Network, ParsedFrame, Transport, parse_frame, parse_tcp_fast, tcp_tuple_hint,
};
use surge_stack::wire::*;

fn mac() -> impl Strategy<Value = EthernetAddress> {
    any::<[u8; 6]>().prop_map(EthernetAddress)
}

fn ipv4_addr() -> impl Strategy<Value = Ipv4Addr> {
    any::<[u8; 4]>().prop_map(Ipv4Addr::from)
}

fn ethertype() -> impl Strategy<Value = EtherType> {
    (0x0600u16..=0xffff)
        .prop_filter("not a VLAN TPID", |t| *t != 0x8100 && *t != 0x88a8)
        .prop_map(EtherType::from)
}

fn vlan() -> impl Strategy<Value = Option<VlanTag>> {
    proptest::option::of(
        (0u8..8, any::<bool>(), 0u16..4096).prop_map(|(pcp, dei, vid)| VlanTag { pcp, dei, vid }),
    )
}

fn ethernet_repr() -> impl Strategy<Value = EthernetRepr> {
    (mac(), mac(), vlan(), ethertype()).prop_map(|(src_addr, dst_addr, vlan, ethertype)| {
        EthernetRepr {
            src_addr,
            dst_addr,
            vlan,
            ethertype,
        }
    })
}

fn arp_repr() -> impl Strategy<Value = ArpRepr> {
    (any::<bool>(), mac(), ipv4_addr(), mac(), ipv4_addr()).prop_map(|(req, sha, spa, tha, tpa)| {
        ArpRepr {
            operation: if req {
                ArpOperation::Request
            } else {
                ArpOperation::Reply
            },
            source_hardware_addr: sha,
            source_protocol_addr: spa,
            target_hardware_addr: tha,
            target_protocol_addr: tpa,
        }
    })
}

/// One well-formed IPv4 option: a NOP or a kind/length/data TLV.
fn ipv4_option() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(vec![1u8]),
        (2u8..=255, proptest::collection::vec(any::<u8>(), 0..6)).prop_map(|(kind, data)| {
            let mut v = vec![kind, data.len() as u8 + 2];
            v.extend(data);
            v
        }),
    ]
}

/// Well-formed IPv4 options of at most 40 bytes.
fn ipv4_options() -> impl Strategy<Value = Ipv4Options> {
    proptest::collection::vec(ipv4_option(), 0..6).prop_map(|opts| {
        let mut raw = Vec::new();
        for o in opts {
            if raw.len() + o.len() <= 40 {
                raw.extend(o);
            }
        }
        Ipv4Options::new(&raw).expect("generated options are well formed")
    })
}

fn ipv4_repr() -> impl Strategy<Value = Ipv4Repr> {
    (
        (
            ipv4_addr(),
            ipv4_addr(),
            any::<u8>(),
            0usize..=65_000,
            any::<u8>(),
            any::<u8>(),
        ),
        (
            any::<u16>(),
            any::<bool>(),
            any::<bool>(),
            0u16..8192,
            ipv4_options(),
        ),
    )
        .prop_map(
            |((src, dst, proto, payload_len, ttl, dscp_ecn), (ident, df, mf, off, options))| {
                Ipv4Repr {
                    src_addr: src,
                    dst_addr: dst,
                    protocol: IpProtocol::from(proto),
                    payload_len,
                    ttl,
                    dscp_ecn,
                    ident,
                    dont_frag: df,
                    more_frags: mf,
                    frag_offset: off * 8,
                    options,
                }
            },
        )
}

fn sack_blocks(max: usize) -> impl Strategy<Value = SackBlocks> {
    proptest::collection::vec(any::<(u32, u32)>(), 0..=max).prop_map(|v| {
        let mut s = SackBlocks::new();
        for (l, r) in v {
            s.push(l, r);
        }
        s
    })
}

fn tcp_options() -> impl Strategy<Value = TcpOptions> {
    (
        proptest::option::of(any::<u16>()),
        proptest::option::of(0u8..=14),
        any::<bool>(),
        sack_blocks(4),
        proptest::option::of(any::<(u32, u32)>()),
    )
        .prop_map(
            |(mss, window_scale, sack_permitted, sack_blocks, timestamp)| TcpOptions {
                mss,
                window_scale,
                sack_permitted,
                sack_blocks,
                timestamp,
            },
        )
}

fn tcp_repr() -> impl Strategy<Value = TcpRepr> {
    (
        any::<(u16, u16, u32, u32)>(),
        any::<u8>(),
        any::<u16>(),
        any::<u16>(),
        tcp_options(),
    )
        .prop_map(
            |(
                (src_port, dst_port, seq_number, ack_number),
                flags,
                window_len,
                urgent_pointer,
                options,
            )| TcpRepr {
                src_port,
                dst_port,
                seq_number,
                ack_number,
                flags: TcpFlags(flags),
                window_len,
                urgent_pointer,
                options,
            },
        )
}

/// Holds [`parse_tcp_fast`] to its promise on `bytes`: when it reads a segment,
/// [`parse_frame`] reads the same header, payload, addresses, DSCP/ECN byte and
/// sender MAC, whatever the header it writes held before (here every option of a
/// SYN and two SACK blocks). Returns whether the fast parse took the frame.
fn fast_agrees(bytes: &[u8], mode: ChecksumMode) -> Result<bool, TestCaseError> {
    let mut stale = TcpOptions {
        mss: Some(536),
        window_scale: Some(14),
        sack_permitted: true,
        timestamp: Some((u32::MAX, 1)),
        ..TcpOptions::default()
    };
    stale.sack_blocks.push(1, 2);
    stale.sack_blocks.push(3, 4);
    let mut fast_header = TcpRepr {
        seq_number: 0xdead_beef,
        urgent_pointer: 9,
        options: stale,
        ..TcpRepr::default()
    };
    let Some(fast) = parse_tcp_fast(bytes, mode, &mut fast_header) else {
        return Ok(false);
    };
    let Ok(ParsedFrame {
        ethernet,
        network:
            Network::Ipv4 {
                header,
                transport:
                    Transport::Tcp {
                        header: tcp,
                        payload,
                    },
            },
    }) = parse_frame(bytes, mode)
    else {
        return Err(TestCaseError::fail(format!(
            "fast parse took a frame the full parse does not read as TCP: {:?}",
            parse_frame(bytes, mode)
        )));
    };
    prop_assert_eq!(fast_header, tcp);
    prop_assert_eq!(fast.payload, payload);
    prop_assert_eq!(
        (fast.src_addr, fast.dst_addr, fast.dscp_ecn),
        (header.src_addr, header.dst_addr, header.dscp_ecn)
    );
    prop_assert_eq!(fast.src_mac, ethernet.src_addr);
    Ok(true)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn ethernet_roundtrip(repr in ethernet_repr()) {
        let mut buf = [0xa5u8; 32];
        repr.emit(&mut EthernetFrame::new_unchecked(&mut buf[..])).unwrap();
        prop_assert_eq!(EthernetRepr::parse(&EthernetFrame::new_checked(&buf[..]).unwrap()), Ok(repr));
    }

    #[test]
    fn untagged_ethernet_header_is_what_emit_writes(repr in ethernet_repr()) {
        let mut want = [0xa5u8; 14];
        let plain = EthernetRepr { vlan: None, ..repr };
        plain.emit(&mut EthernetFrame::new_unchecked(&mut want[..])).unwrap();
        let mut got = [0x5au8; 14];
        EthernetRepr::emit_untagged(&mut got, plain.dst_addr, plain.src_addr, plain.ethertype);
        prop_assert_eq!(got, want);
    }

    #[test]
    fn plain_ipv4_header_is_what_emit_writes(src in ipv4_addr(), dst in ipv4_addr(), protocol: u8,
                                             payload_len in 0usize..70_000, ttl: u8, dscp_ecn: u8) {
        let protocol = IpProtocol::from(protocol);
        let mut repr = Ipv4Repr::new(src, dst, protocol, payload_len, ttl);
        repr.dscp_ecn = dscp_ecn;
        let mut want = [0xa5u8; 20];
        let emitted = repr.emit(&mut Ipv4Packet::new_unchecked(&mut want[..]), TxChecksum::Compute);
        let mut got = [0x5au8; 20];
        let plain = ipv4::PlainHeader { src_addr: src, dst_addr: dst, protocol, payload_len, ttl, dscp_ecn };
        let written = ipv4::emit_plain_header(&mut got, &plain);
        prop_assert_eq!(written, emitted);
        if written.is_ok() {
            prop_assert_eq!(got, want);
        }
    }

    #[test]
    fn arp_roundtrip(repr in arp_repr()) {
        let mut buf = [0xa5u8; 28];
        repr.emit(&mut ArpPacket::new_unchecked(&mut buf[..])).unwrap();
        prop_assert_eq!(ArpRepr::parse(&ArpPacket::new_checked(&buf[..]).unwrap()), Ok(repr));
    }

    #[test]
    fn ipv4_roundtrip(repr in ipv4_repr()) {
        let total = repr.header_len() + repr.payload_len;
        let mut buf = vec![0xa5u8; total];
        repr.emit(&mut Ipv4Packet::new_unchecked(&mut buf[..]), TxChecksum::Compute).unwrap();
        prop_assert_eq!(Ipv4Repr::parse(&Ipv4Packet::new_checked(&buf[..]).unwrap(), ChecksumMode::Verify), Ok(repr));
        // And as a header quoted in an ICMP error, with only 8 payload bytes.
        let quoted = &buf[..(repr.header_len() + 8).min(total)];
        prop_assert_eq!(Ipv4Repr::parse_quoted(quoted).map(|(r, _)| r), Ok(repr));
    }

    #[test]
    fn udp_roundtrip(src_port: u16, dst_port: u16, src in ipv4_addr(), dst in ipv4_addr(),
                     payload in proptest::collection::vec(any::<u8>(), 0..600)) {
        let repr = UdpRepr { src_port, dst_port };
        let mut buf = vec![0xa5u8; 700];
        let n = repr.emit_datagram(&mut buf, src, dst, &payload, TxChecksum::Compute).unwrap();
        let packet = UdpPacket::new_checked(&buf[..n]).unwrap();
        prop_assert_eq!(UdpRepr::parse(&packet, src, dst, ChecksumMode::Verify), Ok(repr));
        prop_assert_eq!(packet.payload(), &payload[..]);
    }

    #[test]
    fn tcp_roundtrip(repr in tcp_repr(), src in ipv4_addr(), dst in ipv4_addr(),
                     payload in proptest::collection::vec(any::<u8>(), 0..600)) {
        let mut buf = vec![0xa5u8; 700];
        let n = repr.emit_segment(&mut buf, src, dst, &payload, TxChecksum::Compute).unwrap();
        prop_assert_eq!(n, repr.header_len() + payload.len());
        prop_assert!(repr.header_len() <= 60 && repr.header_len() % 4 == 0);
        let packet = TcpPacket::new_checked(&buf[..n]).unwrap();
        // SACK blocks that do not fit beside the other options are dropped on emit.
        let mut want = repr;
        want.options.sack_blocks.truncate(repr.options.emitted_sack_blocks());
        prop_assert_eq!(TcpRepr::parse(&packet, src, dst, ChecksumMode::Verify), Ok(want));
        prop_assert_eq!(packet.payload(), &payload[..]);
        // Split checksum over header and payload apart equals the one written.
        prop_assert_eq!(tcp::checksum_split(src, dst, &{
            let mut h = buf[..repr.header_len()].to_vec();
            h[16..18].copy_from_slice(&[0, 0]);
            h
        }, &payload), packet.checksum());
    }

    #[test]
    fn icmp_echo_roundtrip(request: bool, ident: u16, seq_no: u16, data in proptest::collection::vec(any::<u8>(), 0..300)) {
        let repr = if request {
            Icmpv4Repr::EchoRequest { ident, seq_no, data: &data }
        } else {
            Icmpv4Repr::EchoReply { ident, seq_no, data: &data }
        };
        let mut buf = vec![0xa5u8; repr.buffer_len()];
        repr.emit(&mut Icmpv4Packet::new_unchecked(&mut buf[..]), TxChecksum::Compute).unwrap();
        prop_assert_eq!(Icmpv4Repr::parse(&Icmpv4Packet::new_checked(&buf[..]).unwrap(), ChecksumMode::Verify), Ok(repr));
    }

    #[test]
    fn icmp_error_roundtrip(unreachable: bool, code: u8, mtu: u16, header in ipv4_repr(),
                            data in proptest::collection::vec(any::<u8>(), 0..64)) {
        let repr = if unreachable {
            Icmpv4Repr::DstUnreachable { reason: DstUnreachable::from(code), next_hop_mtu: mtu, header, data: &data }
        } else {
            Icmpv4Repr::TimeExceeded { reason: TimeExceeded::from(code), header, data: &data }
        };
        let mut buf = vec![0xa5u8; repr.buffer_len()];
        repr.emit(&mut Icmpv4Packet::new_unchecked(&mut buf[..]), TxChecksum::Compute).unwrap();
        prop_assert_eq!(Icmpv4Repr::parse(&Icmpv4Packet::new_checked(&buf[..]).unwrap(), ChecksumMode::Verify), Ok(repr));
    }

    #[test]
    fn whole_frame_roundtrip(eth in ethernet_repr(), mut ip in ipv4_repr(), tcp in tcp_repr(),
                             payload in proptest::collection::vec(any::<u8>(), 0..300)) {
        let eth = EthernetRepr { ethertype: EtherType::Ipv4, ..eth };
        ip.protocol = IpProtocol::Tcp;
        ip.more_frags = false;
        ip.frag_offset = 0;
        ip.payload_len = tcp.header_len() + payload.len();
        let mut tcp = tcp;
        tcp.options.sack_blocks.truncate(tcp.options.emitted_sack_blocks());
        let frame = ParsedFrame { ethernet: eth, network: Network::Ipv4 { header: ip, transport: Transport::Tcp { header: tcp, payload: &payload } } };
        let bytes = common::emit_frame(&frame);
        prop_assert_eq!(parse_frame(&bytes, ChecksumMode::Verify), Ok(frame));
        // The prefetch hint reads the same tuple, ours first (untagged frames only).
        let tuple = FourTuple {
            local_addr: ip.dst_addr,
            local_port: tcp.dst_port,
            remote_addr: ip.src_addr,
            remote_port: tcp.src_port,
        };
        prop_assert_eq!(tcp_tuple_hint(&bytes), eth.vlan.is_none().then_some(tuple));
    }

    #[test]
    fn fast_tcp_parse_reads_what_the_full_parse_reads(eth in ethernet_repr(), mut ip in ipv4_repr(), tcp in tcp_repr(),
                             payload in proptest::collection::vec(any::<u8>(), 0..300),
                             pad in 0usize..30,
                             flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 0..4),
                             cut in any::<usize>(),
                             common in any::<bool>()) {
        let mut eth = EthernetRepr { ethertype: EtherType::Ipv4, ..eth };
        ip.protocol = IpProtocol::Tcp;
        let mut tcp = tcp;
        if common {
            // Half the cases in the layout the fast parse takes (the strategies alone
            // almost never give it: nearly every random IPv4 header is a fragment).
            eth.vlan = None;
            ip.options = Default::default();
            ip.more_frags = false;
            ip.frag_offset = 0;
            tcp.options = TcpOptions { timestamp: tcp.options.timestamp, ..TcpOptions::default() };
        }
        ip.payload_len = tcp.header_len() + payload.len();
        tcp.options.sack_blocks.truncate(tcp.options.emitted_sack_blocks());
        let frame = ParsedFrame { ethernet: eth, network: Network::Ipv4 { header: ip, transport: Transport::Tcp { header: tcp, payload: &payload } } };
        let mut bytes = common::emit_frame(&frame);
        // Ethernet padding after the IPv4 total length is not payload.
        bytes.extend(std::iter::repeat_n(0xa5, pad));
        // The common layout is taken, in both checksum modes: TCP options none or the
        // timestamps alone (any other area is left to the full parse).
        let plain_options = tcp.options == TcpOptions { timestamp: tcp.options.timestamp, ..TcpOptions::default() };
        let common_layout = eth.vlan.is_none() && ip.options.is_empty() && !ip.is_fragment() && plain_options;
        prop_assert!(common_layout || !common);
        for mode in [ChecksumMode::Verify, ChecksumMode::Trust] {
            prop_assert_eq!(fast_agrees(&bytes, mode)?, common_layout);
        }
        // Damaged: whatever the fast parse still takes, the full parse reads the same.
        let mut damaged = bytes.clone();
        for (at, v) in &flips {
            let n = damaged.len();
            damaged[at % n] = *v;
        }
        let n = damaged.len();
        damaged.truncate(if flips.is_empty() { cut % (n + 1) } else { n });
        for mode in [ChecksumMode::Verify, ChecksumMode::Trust] {
            fast_agrees(&damaged, mode)?;
        }
    }

    #[test]
    fn fast_tcp_parse_agrees_on_arbitrary_and_captured_frames(which in 0usize..18, bytes in proptest::collection::vec(any::<u8>(), 0..120)) {
        let frames = common::read_pcap(include_bytes!("fixtures/kernel.pcap"));
        for mode in [ChecksumMode::Verify, ChecksumMode::Trust] {
            fast_agrees(&bytes, mode)?;
            fast_agrees(frames[which], mode)?;
        }
    }

    #[test]
    fn timestamp_only_header_is_the_nop_nop_ts_layout(repr in tcp_repr(), ts: (u32, u32)) {
        let repr = TcpRepr { options: TcpOptions { timestamp: Some(ts), ..TcpOptions::default() }, ..repr };
        let mut buf = [0xeeu8; 40];
        let len = repr.emit(&mut TcpPacket::new_unchecked(&mut buf[..])).unwrap();
        prop_assert_eq!(len, 32);
        let mut expected = Vec::new();
        for v in [repr.src_port, repr.dst_port] { expected.extend(v.to_be_bytes()); }
        for v in [repr.seq_number, repr.ack_number] { expected.extend(v.to_be_bytes()); }
        expected.extend([8 << 4, repr.flags.0]);
        expected.extend(repr.window_len.to_be_bytes());
        expected.extend([0, 0]);
        expected.extend(repr.urgent_pointer.to_be_bytes());
        expected.extend([1, 1, 8, 10]);
        expected.extend(ts.0.to_be_bytes());
        expected.extend(ts.1.to_be_bytes());
        prop_assert_eq!(&buf[..32], &expected[..]);
        // Nothing written past the header.
        prop_assert_eq!(&buf[32..], &[0xee; 8][..]);
        let parsed = TcpRepr::parse(&TcpPacket::new_checked(&buf[..32]).unwrap(), Ipv4Addr::UNSPECIFIED, Ipv4Addr::UNSPECIFIED, ChecksumMode::Trust).unwrap();
        prop_assert_eq!(parsed, repr);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = parse_frame(&bytes, ChecksumMode::Verify);
        let _ = parse_frame(&bytes, ChecksumMode::Trust);
        let _ = TcpOptions::parse(&bytes);
        let _ = Ipv4Repr::parse_quoted(&bytes);
        let _ = tcp_tuple_hint(&bytes);
    }

    #[test]
    fn mutated_fixture_frames_never_panic(which in 0usize..18, flips in proptest::collection::vec((any::<usize>(), any::<u8>()), 1..8), cut in any::<usize>()) {
        let frames = common::read_pcap(include_bytes!("fixtures/kernel.pcap"));
        let mut bytes = frames[which].to_vec();
        for (at, v) in flips {
            let n = bytes.len();
            bytes[at % n] = v;
        }
        let n = bytes.len();
        bytes.truncate(cut % (n + 1));
        // Trust mode reaches the transport parsers even with wrong checksums.
        if let Ok(frame) = parse_frame(&bytes, ChecksumMode::Trust) {
            // Whatever parsed re-emits without panicking.
            let _ = common::emit_frame(&frame);
        }
        let _ = parse_frame(&bytes, ChecksumMode::Verify);
    }
}

//! Real frames from the Linux stack (captured by `fixtures/capture.sh` on a veth
//! pair between two namespaces, checksums computed in software) parse to the
//! expected reprs, and emitting those reprs gives back the same bytes.
//!
//! The expected values come from `tcpdump -e -nn -vv -r fixtures/kernel.pcap`,
//! an independent decoder.

mod common;

use core::net::Ipv4Addr;
use surge_stack::wire::frame::{Network, ParsedFrame, Transport, parse_frame};
use surge_stack::wire::{
    ArpOperation, ArpRepr, ChecksumMode, DstUnreachable, EtherType, EthernetAddress, EthernetRepr,
    Icmpv4Repr, IpProtocol, Ipv4Options, Ipv4Repr, SackBlocks, TcpFlags, TcpOptions, TcpRepr,
    UdpRepr, WireError,
};

const PCAP: &[u8] = include_bytes!("fixtures/kernel.pcap");
const MAC_A: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 1]);
const MAC_B: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 2]);
const IP_A: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
const IP_B: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);

fn frames() -> Vec<&'static [u8]> {
    let frames = common::read_pcap(PCAP);
    assert_eq!(frames.len(), 18, "fixture frame count");
    frames
}

fn eth(src: EthernetAddress, dst: EthernetAddress, ethertype: EtherType) -> EthernetRepr {
    EthernetRepr {
        src_addr: src,
        dst_addr: dst,
        vlan: None,
        ethertype,
    }
}

fn ip(
    src: Ipv4Addr,
    dst: Ipv4Addr,
    protocol: IpProtocol,
    payload_len: usize,
    ident: u16,
    dont_frag: bool,
) -> Ipv4Repr {
    Ipv4Repr {
        ident,
        dont_frag,
        ..Ipv4Repr::new(src, dst, protocol, payload_len, 64)
    }
}

fn parse(bytes: &[u8]) -> ParsedFrame<'_> {
    parse_frame(bytes, ChecksumMode::Verify)
        .unwrap_or_else(|e| panic!("fixture frame does not parse: {e}"))
}

#[test]
fn every_frame_parses_and_reemits_byte_for_byte() {
    for (i, bytes) in frames().into_iter().enumerate() {
        let frame = parse(bytes);
        assert_eq!(
            common::emit_frame(&frame),
            bytes,
            "frame {i} re-emitted differently"
        );
        // Trusting checksums gives the same result on valid frames.
        assert_eq!(
            parse_frame(bytes, ChecksumMode::Trust),
            Ok(frame),
            "frame {i}"
        );
    }
}

#[test]
fn arp_request_and_reply() {
    let f = frames();
    assert_eq!(
        parse(f[0]),
        ParsedFrame {
            ethernet: eth(MAC_A, EthernetAddress::BROADCAST, EtherType::Arp),
            network: Network::Arp(ArpRepr {
                operation: ArpOperation::Request,
                source_hardware_addr: MAC_A,
                source_protocol_addr: IP_A,
                target_hardware_addr: EthernetAddress([0; 6]),
                target_protocol_addr: IP_B,
            }),
        }
    );
    assert_eq!(
        parse(f[1]).network,
        Network::Arp(ArpRepr {
            operation: ArpOperation::Reply,
            source_hardware_addr: MAC_B,
            source_protocol_addr: IP_B,
            target_hardware_addr: MAC_A,
            target_protocol_addr: IP_A,
        })
    );
}

#[test]
fn icmp_echo_request_and_reply() {
    let f = frames();
    let req = parse(f[2]);
    assert_eq!(req.ethernet, eth(MAC_A, MAC_B, EtherType::Ipv4));
    let Network::Ipv4 {
        header,
        transport:
            Transport::Icmp(Icmpv4Repr::EchoRequest {
                ident,
                seq_no,
                data,
            }),
    } = req.network
    else {
        panic!("not an echo request: {req:?}")
    };
    assert_eq!(header, ip(IP_A, IP_B, IpProtocol::Icmp, 64, 61797, true));
    assert_eq!((ident, seq_no, data.len()), (13874, 1, 56));
    let reply = parse(f[3]);
    let Network::Ipv4 {
        header,
        transport:
            Transport::Icmp(Icmpv4Repr::EchoReply {
                ident,
                seq_no,
                data: rdata,
            }),
    } = reply.network
    else {
        panic!("not an echo reply: {reply:?}")
    };
    assert_eq!(header, ip(IP_B, IP_A, IpProtocol::Icmp, 64, 34127, false));
    assert_eq!((ident, seq_no), (13874, 1));
    assert_eq!(rdata, data, "the reply echoes the request's data");
}

fn tcp_of(frame: ParsedFrame<'_>) -> (Ipv4Repr, TcpRepr, &[u8]) {
    match frame.network {
        Network::Ipv4 {
            header,
            transport:
                Transport::Tcp {
                    header: tcp,
                    payload,
                },
        } => (header, tcp, payload),
        other => panic!("not TCP: {other:?}"),
    }
}

#[test]
fn tcp_handshake_options_data_and_fin() {
    let f = frames();
    let (ip_syn, syn, payload) = tcp_of(parse(f[4]));
    assert_eq!(ip_syn, ip(IP_A, IP_B, IpProtocol::Tcp, 40, 48893, true));
    assert!(payload.is_empty());
    let syn_options = TcpOptions {
        mss: Some(1460),
        window_scale: Some(10),
        sack_permitted: true,
        sack_blocks: SackBlocks::new(),
        timestamp: Some((2023859513, 0)),
    };
    assert_eq!(
        syn,
        TcpRepr {
            src_port: 39444,
            dst_port: 7777,
            seq_number: 3441769037,
            ack_number: 0,
            flags: TcpFlags::SYN,
            window_len: 64240,
            urgent_pointer: 0,
            options: syn_options,
        }
    );
    assert_eq!(syn.header_len(), 40);

    let (_, syn_ack, _) = tcp_of(parse(f[5]));
    assert_eq!(
        syn_ack,
        TcpRepr {
            src_port: 7777,
            dst_port: 39444,
            seq_number: 2492470925,
            ack_number: 3441769038,
            flags: TcpFlags::SYN | TcpFlags::ACK,
            window_len: 65160,
            urgent_pointer: 0,
            options: TcpOptions {
                timestamp: Some((436944174, 2023859513)),
                ..syn_options
            },
        }
    );

    let (ip_data, data, payload) = tcp_of(parse(f[7]));
    assert_eq!(ip_data, ip(IP_A, IP_B, IpProtocol::Tcp, 44, 48895, true));
    assert_eq!(
        data,
        TcpRepr {
            src_port: 39444,
            dst_port: 7777,
            seq_number: 3441769038,
            ack_number: 2492470926,
            flags: TcpFlags::PSH | TcpFlags::ACK,
            window_len: 63,
            urgent_pointer: 0,
            options: TcpOptions {
                timestamp: Some((2023859513, 436944174)),
                ..TcpOptions::default()
            },
        }
    );
    assert_eq!(data.header_len(), 32);
    assert_eq!(payload, b"hello surge\n");

    let (_, fin, _) = tcp_of(parse(f[9]));
    assert_eq!(fin.flags, TcpFlags::FIN | TcpFlags::ACK);
    assert_eq!(fin.seq_number, 3441769038 + 12);
}

#[test]
fn udp_and_the_port_unreachable_quoting_it() {
    let f = frames();
    let Network::Ipv4 {
        header,
        transport: Transport::Udp {
            header: udp,
            payload,
        },
    } = parse(f[12]).network
    else {
        panic!("not UDP")
    };
    assert_eq!(header, ip(IP_A, IP_B, IpProtocol::Udp, 22, 26709, true));
    assert_eq!(
        udp,
        UdpRepr {
            src_port: 58955,
            dst_port: 9999
        }
    );
    assert_eq!(payload, b"udp to nowhere");

    let Network::Ipv4 {
        header: outer,
        transport: Transport::Icmp(icmp),
    } = parse(f[13]).network
    else {
        panic!("not ICMP")
    };
    assert_eq!(
        outer,
        Ipv4Repr {
            dscp_ecn: 0xc0,
            ..ip(IP_B, IP_A, IpProtocol::Icmp, 50, 34327, false)
        }
    );
    let Icmpv4Repr::DstUnreachable {
        reason,
        next_hop_mtu,
        header: quoted,
        data,
    } = icmp
    else {
        panic!("not unreachable: {icmp:?}")
    };
    assert_eq!(reason, DstUnreachable::PortUnreachable);
    assert_eq!(next_hop_mtu, 0);
    assert_eq!(quoted, header, "the quoted header is the UDP datagram's");
    // Linux quotes the whole datagram: 8 bytes of UDP header, then the data.
    assert_eq!(&data[..4], &[0xe6, 0x4b, 0x27, 0x0f]);
    assert_eq!(&data[8..], b"udp to nowhere");
}

#[test]
fn fragments_are_recognised_not_reassembled() {
    let f = frames();
    let expect = [(14usize, true, 0u16, 1480usize), (15, false, 1480, 528)];
    for (i, more_frags, frag_offset, len) in expect {
        let Network::Ipv4 {
            header,
            transport: Transport::Fragment { payload },
        } = parse(f[i]).network
        else {
            panic!("frame {i} is not a fragment")
        };
        assert!(header.is_fragment());
        assert_eq!(
            (header.more_frags, header.frag_offset, header.ident),
            (more_frags, frag_offset, 61923)
        );
        assert_eq!(header.options, Ipv4Options::NONE);
        assert_eq!(payload.len(), len);
    }
}

#[test]
fn one_flipped_bit_is_a_bad_checksum_in_every_layer() {
    let f = frames();
    // (frame, byte offset to flip): IPv4 header, ICMP data, TCP payload, UDP data.
    for (i, at) in [
        (2usize, 14 + 8),
        (2, 14 + 20 + 30),
        (7, 66),
        (12, 14 + 20 + 8 + 3),
    ] {
        let mut bytes = f[i].to_vec();
        bytes[at] ^= 0x01;
        assert_eq!(
            parse_frame(&bytes, ChecksumMode::Verify),
            Err(WireError::BadChecksum),
            "frame {i} byte {at}"
        );
        // The same corruption passes when the device vouched for the checksums.
        assert!(
            parse_frame(&bytes, ChecksumMode::Trust).is_ok(),
            "frame {i} byte {at}"
        );
    }
}

#[test]
fn every_truncation_of_every_frame_is_an_error_not_a_panic() {
    for (i, bytes) in frames().into_iter().enumerate() {
        for cut in 0..bytes.len() {
            let r = parse_frame(&bytes[..cut], ChecksumMode::Verify);
            // No fixture frame has Ethernet padding, so every cut loses real bytes.
            assert!(r.is_err(), "frame {i} cut at {cut} still parsed: {r:?}");
        }
    }
}

//! One call that parses a whole received frame the way the stack does:
//! Ethernet → ARP | IPv4 → ICMPv4 | UDP | TCP.

use crate::checksum;

use super::{
    ArpPacket, ArpRepr, ChecksumMode, EtherType, EthernetAddress, EthernetFrame, EthernetRepr,
    FourTuple, Icmpv4Packet, Icmpv4Repr, IpProtocol, Ipv4Packet, Ipv4Repr, TcpPacket, TcpRepr,
    TxChecksum, UdpPacket, UdpRepr, WireError, read_u16, read_u32,
};

/// A parsed frame: every layer's repr, payloads borrowed from the frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParsedFrame<'a> {
    /// The Ethernet header.
    pub ethernet: EthernetRepr,
    /// What the frame carries.
    pub network: Network<'a>,
}

/// The network layer of a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Network<'a> {
    /// An ARP packet.
    Arp(ArpRepr),
    /// An IPv4 packet.
    Ipv4 {
        /// The IPv4 header.
        header: Ipv4Repr,
        /// Its payload.
        transport: Transport<'a>,
    },
}

/// The transport layer of an IPv4 packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport<'a> {
    /// A TCP segment.
    Tcp {
        /// The header.
        header: TcpRepr,
        /// The payload.
        payload: &'a [u8],
    },
    /// A UDP datagram.
    Udp {
        /// The header.
        header: UdpRepr,
        /// The payload.
        payload: &'a [u8],
    },
    /// An ICMPv4 message.
    Icmp(Icmpv4Repr<'a>),
    /// A fragment (any of them, first included): the engine reassembles these
    /// (see [`crate::reassembly`]).
    Fragment {
        /// The fragment's bytes.
        payload: &'a [u8],
    },
    /// Another protocol: the stack answers with protocol unreachable or drops.
    Other {
        /// The protocol number.
        protocol: u8,
        /// The IPv4 payload.
        payload: &'a [u8],
    },
}

/// Parses a whole Ethernet frame.
///
/// `mode` is `Trust` only when the device reported it validated the checksums
/// (RX checksum offload); then no checksum is computed here. Errors say why the
/// frame must be dropped. IPv6 and other ethertypes are `Unsupported`.
#[inline]
pub fn parse_frame(bytes: &[u8], mode: ChecksumMode) -> Result<ParsedFrame<'_>, WireError> {
    let eth = EthernetFrame::new_checked(bytes)?;
    let ethernet = EthernetRepr::parse(&eth)?;
    let payload: &[u8] = &bytes[eth.header_len()..];
    let network = match ethernet.ethertype {
        EtherType::Arp => Network::Arp(ArpRepr::parse(&ArpPacket::new_checked(payload)?)?),
        EtherType::Ipv4 => parse_ipv4(payload, mode)?,
        EtherType::Ipv6 | EtherType::Unknown(_) => return Err(WireError::Unsupported),
    };
    Ok(ParsedFrame { ethernet, network })
}

/// Parses an IPv4 packet and its transport header.
#[inline]
pub fn parse_ipv4(bytes: &[u8], mode: ChecksumMode) -> Result<Network<'_>, WireError> {
    let ip = Ipv4Packet::new_unchecked(bytes);
    let header = Ipv4Repr::parse(&ip, mode)?;
    // Checked by parse: header_len <= total_len <= bytes.len().
    let payload: &[u8] = &bytes[ip.header_len()..usize::from(ip.total_len())];
    let (src, dst) = (header.src_addr, header.dst_addr);
    let transport = if header.is_fragment() {
        Transport::Fragment { payload }
    } else {
        match header.protocol {
            IpProtocol::Tcp => {
                let seg = TcpPacket::new_checked(payload)?;
                let tcp = TcpRepr::parse(&seg, src, dst, mode)?;
                Transport::Tcp {
                    header: tcp,
                    payload: &payload[seg.header_len()..],
                }
            }
            IpProtocol::Udp => {
                let dgram = UdpPacket::new_checked(payload)?;
                let udp = UdpRepr::parse(&dgram, src, dst, mode)?;
                Transport::Udp {
                    header: udp,
                    payload: &payload[8..usize::from(dgram.len())],
                }
            }
            IpProtocol::Icmp => Transport::Icmp(Icmpv4Repr::parse(
                &Icmpv4Packet::new_checked(payload)?,
                mode,
            )?),
            IpProtocol::Unknown(protocol) => Transport::Other { protocol, payload },
        }
    };
    Ok(Network::Ipv4 { header, transport })
}

impl Transport<'_> {
    /// Bytes the transport layer takes when emitted.
    pub fn buffer_len(&self) -> usize {
        match self {
            Transport::Tcp { header, payload } => header.header_len() + payload.len(),
            Transport::Udp { header, payload } => header.header_len() + payload.len(),
            Transport::Icmp(icmp) => icmp.buffer_len(),
            Transport::Fragment { payload } | Transport::Other { payload, .. } => payload.len(),
        }
    }
}

impl ParsedFrame<'_> {
    /// Bytes [`ParsedFrame::emit`] writes.
    pub fn buffer_len(&self) -> usize {
        self.ethernet.header_len()
            + match &self.network {
                Network::Arp(arp) => arp.buffer_len(),
                Network::Ipv4 { header, transport } => header.header_len() + transport.buffer_len(),
            }
    }

    /// Writes the whole frame into `buf` (the inverse of [`parse_frame`]); returns
    /// its length. The IPv4 total length is taken from what the transport layer
    /// emits, so it always matches; checksums are computed unless `tx` is
    /// `Offload`. For tests, tools and fuzzing: the stack's TX path writes headers
    /// straight into UMEM frames instead.
    pub fn emit(&self, buf: &mut [u8], tx: TxChecksum) -> Result<usize, WireError> {
        let total = self.buffer_len();
        let buf = buf.get_mut(..total).ok_or(WireError::Truncated)?;
        self.ethernet
            .emit(&mut EthernetFrame::new_unchecked(&mut *buf))?;
        let rest = &mut buf[self.ethernet.header_len()..];
        match self.network {
            Network::Arp(arp) => arp.emit(&mut ArpPacket::new_unchecked(rest))?,
            Network::Ipv4 { header, transport } => {
                let header = Ipv4Repr {
                    payload_len: transport.buffer_len(),
                    ..header
                };
                header.emit(&mut Ipv4Packet::new_unchecked(&mut *rest), tx)?;
                let (src, dst) = (header.src_addr, header.dst_addr);
                let body = &mut rest[header.header_len()..];
                match transport {
                    Transport::Tcp { header, payload } => {
                        header.emit_segment(body, src, dst, payload, tx)?;
                    }
                    Transport::Udp { header, payload } => {
                        header.emit_datagram(body, src, dst, payload, tx)?;
                    }
                    Transport::Icmp(icmp) => {
                        icmp.emit(&mut Icmpv4Packet::new_unchecked(body), tx)?
                    }
                    Transport::Fragment { payload } | Transport::Other { payload, .. } => {
                        body.copy_from_slice(payload);
                    }
                }
            }
        }
        Ok(total)
    }
}

/// What [`parse_tcp_fast`] reads of a segment besides its TCP header: the fields of
/// the other layers TCP input needs, without building their reprs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FastTcp<'a> {
    /// The sender's MAC.
    pub src_mac: EthernetAddress,
    /// The IPv4 source address.
    pub src_addr: core::net::Ipv4Addr,
    /// The IPv4 destination address.
    pub dst_addr: core::net::Ipv4Addr,
    /// The IPv4 DSCP and ECN byte.
    pub dscp_ecn: u8,
    /// The TCP payload.
    pub payload: &'a [u8],
}

/// The layout nearly every received frame has, read in one pass: untagged Ethernet,
/// IPv4 without options and not a fragment, TCP with no options or the timestamps
/// alone. The TCP header is written into `header`, every field of it (whatever it
/// held before); the rest is returned. `None` for anything else, a malformed frame
/// included, with `header` untouched: [`parse_frame`] then decides (and names the
/// error). A frame this accepts, [`parse_frame`] accepts with the same TCP header and
/// payload and the same addresses and DSCP/ECN byte (a property test holds them to it).
///
/// The header is written where the caller keeps it, field by field, rather than
/// returned: returned inside an `Option`, it was built in a temporary and copied in
/// 16-byte loads, which read the empty SACK blocks just stored in narrower pieces
/// (a load no store forwards: the frame loop's hottest instruction at 100
/// connections). Always inlined for the same reason: its one caller is the engine's
/// frame loop, and called, it returned its result through memory.
#[inline(always)]
pub fn parse_tcp_fast<'a>(
    bytes: &'a [u8],
    mode: ChecksumMode,
    header: &mut TcpRepr,
) -> Option<FastTcp<'a>> {
    const ETH: usize = super::ethernet::field::HEADER_LEN;
    const IP: usize = super::ipv4::field::HEADER_LEN;
    const TCP: usize = super::tcp::field::HEADER_LEN;
    let (eth, rest) = bytes.split_first_chunk::<ETH>()?;
    let (ip, _) = rest.split_first_chunk::<IP>()?;
    // IPv4, version 4 with a 20-byte header, TCP; no fragment (and the reserved
    // flag clear: anything unusual takes the general path).
    if eth[12..14] != [0x08, 0x00] || ip[0] != 0x45 || ip[9] != 6 || ip[6] & 0xbf != 0 || ip[7] != 0
    {
        return None;
    }
    let total = usize::from(read_u16(ip, 2));
    let seg = rest.get(IP..total)?;
    let (tcp, after) = seg.split_first_chunk::<TCP>()?;
    // The options: none, or the timestamps alone (the layout of nearly every segment of
    // a connection): a data offset of 5 or 8. Any other area (a SYN's, SACK blocks) goes
    // to the full parse (told before the checksums, which it then sums once), so that
    // this one never merges a whole parsed `TcpOptions` into the header it builds. Only
    // the layout is checked here; the values are read with the rest of the header once
    // the checksums hold, so that nothing read waits in a register (or on the stack)
    // across the sums.
    let (timestamps, payload) = match tcp[12] >> 4 {
        5 => (None, after),
        8 => {
            let (area, payload) =
                after.split_first_chunk::<{ super::tcp_options::TIMESTAMP_AREA_LEN }>()?;
            if !super::TcpOptions::is_timestamp_only(area) {
                return None;
            }
            (Some(area), payload)
        }
        _ => return None,
    };
    if mode == ChecksumMode::Verify {
        // The IPv4 header sums to all ones with its checksum (RFC 791 §3.1), and
        // so does the TCP segment with its pseudo-header (RFC 9293 §3.1), whose
        // addresses are read where they lie in the IPv4 header. Each sum is one
        // accumulator, folded once.
        let (_, addresses) = ip.split_last_chunk::<8>()?;
        // `seg` ends at the IPv4 total length, itself a u16.
        let pseudo = checksum::pseudo_header_ipv4_native_at(addresses, 6, seg.len() as u16);
        if !checksum::verifies(checksum::add_native(0, ip))
            || !checksum::verifies(checksum::add_native(pseudo, seg))
        {
            return None;
        }
    }
    // The one branch of the build first: the fields after it are read and stored
    // straight into the header, none held across a join. Every field is written:
    // `header` may hold an earlier segment's (`truncate` zeroes any SACK blocks).
    let timestamp = timestamps.map(super::TcpOptions::timestamp_values);
    header.src_port = read_u16(tcp, 0);
    header.dst_port = read_u16(tcp, 2);
    header.seq_number = read_u32(tcp, 4);
    header.ack_number = read_u32(tcp, 8);
    header.flags = super::TcpFlags(tcp[13]);
    header.window_len = read_u16(tcp, 14);
    header.urgent_pointer = read_u16(tcp, 18);
    header.options.mss = None;
    header.options.window_scale = None;
    header.options.sack_permitted = false;
    header.options.sack_blocks.truncate(0);
    header.options.timestamp = timestamp;
    Some(FastTcp {
        src_mac: EthernetAddress([eth[6], eth[7], eth[8], eth[9], eth[10], eth[11]]),
        src_addr: core::net::Ipv4Addr::new(ip[12], ip[13], ip[14], ip[15]),
        dst_addr: core::net::Ipv4Addr::new(ip[16], ip[17], ip[18], ip[19]),
        dscp_ecn: ip[1],
        payload,
    })
}

/// The 4-tuple of an untagged Ethernet/IPv4/TCP frame as we would see it (our address
/// and port first), read without validating anything: a hint for prefetching a burst's
/// connections before the frames are parsed. `None` when the frame is too short or not
/// IPv4/TCP; a malformed frame may give a wrong tuple, which costs one wasted prefetch
/// (the frame is parsed and checked properly when it is handled).
pub fn tcp_tuple_hint(bytes: &[u8]) -> Option<FourTuple> {
    const ETH: usize = 14;
    if bytes.get(12..14)? != [0x08, 0x00] || *bytes.get(ETH + 9)? != 6 {
        return None;
    }
    let ihl = usize::from(bytes.get(ETH)? & 0x0f) * 4;
    let ip = |at: usize| -> Option<core::net::Ipv4Addr> {
        let b = bytes.get(ETH + at..ETH + at + 4)?;
        Some(core::net::Ipv4Addr::new(b[0], b[1], b[2], b[3]))
    };
    let port = |at: usize| -> Option<u16> {
        let b = bytes.get(ETH + ihl + at..ETH + ihl + at + 2)?;
        Some(u16::from_be_bytes([b[0], b[1]]))
    };
    Some(FourTuple {
        local_addr: ip(16)?,
        local_port: port(2)?,
        remote_addr: ip(12)?,
        remote_port: port(0)?,
    })
}

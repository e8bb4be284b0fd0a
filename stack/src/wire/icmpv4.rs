//! ICMPv4 (RFC 792): echo request/reply, destination unreachable (with the
//! RFC 1191 next-hop MTU for fragmentation-needed) and time exceeded. Other types
//! are [`WireError::Unsupported`].

use super::{ChecksumMode, Ipv4Packet, Ipv4Repr, TxChecksum, WireError, read_u16, write_u16};
use crate::checksum;

/// Byte ranges of the ICMPv4 header.
pub mod field {
    use core::ops::Range;
    /// Message type.
    pub const TYPE: usize = 0;
    /// Code.
    pub const CODE: usize = 1;
    /// Checksum over the whole message.
    pub const CHECKSUM: Range<usize> = 2..4;
    /// Echo identifier.
    pub const ECHO_IDENT: Range<usize> = 4..6;
    /// Echo sequence number.
    pub const ECHO_SEQNO: Range<usize> = 6..8;
    /// Unused word of error messages (high half).
    pub const UNUSED: Range<usize> = 4..6;
    /// Next-hop MTU of fragmentation-needed (RFC 1191 §4).
    pub const NEXT_HOP_MTU: Range<usize> = 6..8;
    /// Header length; data follows.
    pub const HEADER_LEN: usize = 8;
}

const TYPE_ECHO_REPLY: u8 = 0;
const TYPE_DST_UNREACHABLE: u8 = 3;
const TYPE_ECHO_REQUEST: u8 = 8;
const TYPE_TIME_EXCEEDED: u8 = 11;

/// Destination unreachable codes (RFC 792, RFC 1122 §3.2.2.1, RFC 1812 §5.2.7.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DstUnreachable {
    /// 0.
    NetUnreachable,
    /// 1.
    HostUnreachable,
    /// 2.
    ProtoUnreachable,
    /// 3.
    PortUnreachable,
    /// 4: fragmentation needed and DF set; carries the next-hop MTU.
    FragRequired,
    /// 13: communication administratively prohibited.
    AdminProhibited,
    /// Any other code.
    Other(u8),
}

impl From<u8> for DstUnreachable {
    fn from(c: u8) -> Self {
        match c {
            0 => DstUnreachable::NetUnreachable,
            1 => DstUnreachable::HostUnreachable,
            2 => DstUnreachable::ProtoUnreachable,
            3 => DstUnreachable::PortUnreachable,
            4 => DstUnreachable::FragRequired,
            13 => DstUnreachable::AdminProhibited,
            other => DstUnreachable::Other(other),
        }
    }
}

impl From<DstUnreachable> for u8 {
    fn from(c: DstUnreachable) -> u8 {
        match c {
            DstUnreachable::NetUnreachable => 0,
            DstUnreachable::HostUnreachable => 1,
            DstUnreachable::ProtoUnreachable => 2,
            DstUnreachable::PortUnreachable => 3,
            DstUnreachable::FragRequired => 4,
            DstUnreachable::AdminProhibited => 13,
            DstUnreachable::Other(v) => v,
        }
    }
}

/// Time exceeded codes (RFC 792).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TimeExceeded {
    /// 0: TTL exceeded in transit.
    TtlExpired,
    /// 1: fragment reassembly time exceeded.
    FragReassembly,
    /// Any other code.
    Other(u8),
}

impl From<u8> for TimeExceeded {
    fn from(c: u8) -> Self {
        match c {
            0 => TimeExceeded::TtlExpired,
            1 => TimeExceeded::FragReassembly,
            other => TimeExceeded::Other(other),
        }
    }
}

impl From<TimeExceeded> for u8 {
    fn from(c: TimeExceeded) -> u8 {
        match c {
            TimeExceeded::TtlExpired => 0,
            TimeExceeded::FragReassembly => 1,
            TimeExceeded::Other(v) => v,
        }
    }
}

/// A zero-copy view of an ICMPv4 message.
#[derive(Debug, Clone)]
pub struct Icmpv4Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Icmpv4Packet<T> {
    /// Wraps a buffer without checking its length.
    pub const fn new_unchecked(buffer: T) -> Self {
        Icmpv4Packet { buffer }
    }

    /// Wraps a buffer, checking it holds the 8-byte header.
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// Checks the 8-byte header is present.
    pub fn check_len(&self) -> Result<(), WireError> {
        if self.buffer.as_ref().len() < field::HEADER_LEN {
            Err(WireError::Truncated)
        } else {
            Ok(())
        }
    }

    /// The buffer back.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Message type.
    pub fn msg_type(&self) -> u8 {
        self.buffer.as_ref()[field::TYPE]
    }

    /// Code.
    pub fn msg_code(&self) -> u8 {
        self.buffer.as_ref()[field::CODE]
    }

    /// Checksum field.
    pub fn checksum(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::CHECKSUM.start)
    }

    /// Echo identifier.
    pub fn echo_ident(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::ECHO_IDENT.start)
    }

    /// Echo sequence number.
    pub fn echo_seq_no(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::ECHO_SEQNO.start)
    }

    /// Next-hop MTU (fragmentation-needed only; zero from old routers).
    pub fn next_hop_mtu(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::NEXT_HOP_MTU.start)
    }

    /// Everything after the 8-byte header.
    pub fn data(&self) -> &[u8] {
        &self.buffer.as_ref()[field::HEADER_LEN..]
    }

    /// True when the checksum over the whole message verifies.
    pub fn verify_checksum(&self) -> bool {
        checksum::sum(self.buffer.as_ref()) == 0xffff
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Icmpv4Packet<T> {
    /// Sets the type.
    pub fn set_msg_type(&mut self, v: u8) {
        self.buffer.as_mut()[field::TYPE] = v;
    }

    /// Sets the code.
    pub fn set_msg_code(&mut self, v: u8) {
        self.buffer.as_mut()[field::CODE] = v;
    }

    /// Sets the checksum field.
    pub fn set_checksum(&mut self, v: u16) {
        write_u16(self.buffer.as_mut(), field::CHECKSUM.start, v);
    }

    /// Sets the echo identifier.
    pub fn set_echo_ident(&mut self, v: u16) {
        write_u16(self.buffer.as_mut(), field::ECHO_IDENT.start, v);
    }

    /// Sets the echo sequence number.
    pub fn set_echo_seq_no(&mut self, v: u16) {
        write_u16(self.buffer.as_mut(), field::ECHO_SEQNO.start, v);
    }

    /// Sets the unused word's high half to zero and the next-hop MTU.
    pub fn set_next_hop_mtu(&mut self, v: u16) {
        write_u16(self.buffer.as_mut(), field::UNUSED.start, 0);
        write_u16(self.buffer.as_mut(), field::NEXT_HOP_MTU.start, v);
    }

    /// Data after the header, writable.
    pub fn data_mut(&mut self) -> &mut [u8] {
        &mut self.buffer.as_mut()[field::HEADER_LEN..]
    }

    /// Computes and writes the checksum over the whole buffer.
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let c = checksum::checksum(self.buffer.as_ref());
        self.set_checksum(c);
    }
}

/// An owned ICMPv4 message; data is borrowed from the packet it was parsed from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Icmpv4Repr<'a> {
    /// Echo request (type 8).
    EchoRequest {
        /// Identifier.
        ident: u16,
        /// Sequence number.
        seq_no: u16,
        /// Echo data.
        data: &'a [u8],
    },
    /// Echo reply (type 0).
    EchoReply {
        /// Identifier.
        ident: u16,
        /// Sequence number.
        seq_no: u16,
        /// Echo data.
        data: &'a [u8],
    },
    /// Destination unreachable (type 3).
    DstUnreachable {
        /// Code.
        reason: DstUnreachable,
        /// Next-hop MTU for `FragRequired` (RFC 1191 §4), else normally zero.
        next_hop_mtu: u16,
        /// The quoted original IPv4 header.
        header: Ipv4Repr,
        /// The quoted bytes after it (at least the first 8 of the original payload,
        /// RFC 792; RFC 1812 §4.3.2.3 routers may quote more).
        data: &'a [u8],
    },
    /// Time exceeded (type 11).
    TimeExceeded {
        /// Code.
        reason: TimeExceeded,
        /// The quoted original IPv4 header.
        header: Ipv4Repr,
        /// The quoted bytes after it.
        data: &'a [u8],
    },
}

impl<'a> Icmpv4Repr<'a> {
    /// Parses a message, verifying its checksum unless `mode` is `Trust`.
    pub fn parse<T: AsRef<[u8]> + ?Sized>(
        packet: &Icmpv4Packet<&'a T>,
        mode: ChecksumMode,
    ) -> Result<Self, WireError> {
        packet.check_len()?;
        if mode == ChecksumMode::Verify && !packet.verify_checksum() {
            return Err(WireError::BadChecksum);
        }
        let data: &'a [u8] = &packet.buffer.as_ref()[field::HEADER_LEN..];
        match packet.msg_type() {
            TYPE_ECHO_REQUEST | TYPE_ECHO_REPLY if packet.msg_code() == 0 => {
                let (ident, seq_no) = (packet.echo_ident(), packet.echo_seq_no());
                Ok(if packet.msg_type() == TYPE_ECHO_REQUEST {
                    Icmpv4Repr::EchoRequest {
                        ident,
                        seq_no,
                        data,
                    }
                } else {
                    Icmpv4Repr::EchoReply {
                        ident,
                        seq_no,
                        data,
                    }
                })
            }
            TYPE_DST_UNREACHABLE => {
                let (header, data) = Ipv4Repr::parse_quoted(data)?;
                Ok(Icmpv4Repr::DstUnreachable {
                    reason: DstUnreachable::from(packet.msg_code()),
                    next_hop_mtu: packet.next_hop_mtu(),
                    header,
                    data,
                })
            }
            TYPE_TIME_EXCEEDED => {
                let (header, data) = Ipv4Repr::parse_quoted(data)?;
                Ok(Icmpv4Repr::TimeExceeded {
                    reason: TimeExceeded::from(packet.msg_code()),
                    header,
                    data,
                })
            }
            _ => Err(WireError::Unsupported),
        }
    }

    /// Bytes `emit` writes: header, quoted header if any, data.
    pub fn buffer_len(&self) -> usize {
        field::HEADER_LEN
            + match self {
                Icmpv4Repr::EchoRequest { data, .. } | Icmpv4Repr::EchoReply { data, .. } => {
                    data.len()
                }
                Icmpv4Repr::DstUnreachable { header, data, .. }
                | Icmpv4Repr::TimeExceeded { header, data, .. } => header.header_len() + data.len(),
            }
    }

    /// Writes the whole message into the first [`Self::buffer_len`] bytes of the
    /// view's buffer, with its checksum unless `tx` is `Offload`.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        packet: &mut Icmpv4Packet<T>,
        tx: TxChecksum,
    ) -> Result<(), WireError> {
        let len = self.buffer_len();
        let buf = packet
            .buffer
            .as_mut()
            .get_mut(..len)
            .ok_or(WireError::Truncated)?;
        let mut out = Icmpv4Packet::new_unchecked(buf);
        out.set_checksum(0);
        match *self {
            Icmpv4Repr::EchoRequest {
                ident,
                seq_no,
                data,
            }
            | Icmpv4Repr::EchoReply {
                ident,
                seq_no,
                data,
            } => {
                let ty = if matches!(self, Icmpv4Repr::EchoRequest { .. }) {
                    TYPE_ECHO_REQUEST
                } else {
                    TYPE_ECHO_REPLY
                };
                out.set_msg_type(ty);
                out.set_msg_code(0);
                out.set_echo_ident(ident);
                out.set_echo_seq_no(seq_no);
                out.data_mut().copy_from_slice(data);
            }
            Icmpv4Repr::DstUnreachable {
                reason,
                next_hop_mtu,
                header,
                data,
            } => {
                out.set_msg_type(TYPE_DST_UNREACHABLE);
                out.set_msg_code(reason.into());
                out.set_next_hop_mtu(next_hop_mtu);
                emit_quoted(out.data_mut(), &header, data)?;
            }
            Icmpv4Repr::TimeExceeded {
                reason,
                header,
                data,
            } => {
                out.set_msg_type(TYPE_TIME_EXCEEDED);
                out.set_msg_code(reason.into());
                out.set_next_hop_mtu(0);
                emit_quoted(out.data_mut(), &header, data)?;
            }
        }
        if tx == TxChecksum::Compute {
            out.fill_checksum();
        }
        Ok(())
    }
}

fn emit_quoted(buf: &mut [u8], header: &Ipv4Repr, data: &[u8]) -> Result<(), WireError> {
    let hl = header.header_len();
    header.emit(
        &mut Ipv4Packet::new_unchecked(&mut *buf),
        TxChecksum::Compute,
    )?;
    buf.get_mut(hl..hl + data.len())
        .ok_or(WireError::Truncated)?
        .copy_from_slice(data);
    Ok(())
}

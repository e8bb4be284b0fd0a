//! UDP (RFC 768).

use super::{ChecksumMode, TxChecksum, WireError, read_u16, write_u16};
use crate::checksum::{self, Accumulator};
use core::net::Ipv4Addr;

/// Byte ranges of the UDP header.
pub mod field {
    use core::ops::Range;
    /// Source port.
    pub const SRC_PORT: Range<usize> = 0..2;
    /// Destination port.
    pub const DST_PORT: Range<usize> = 2..4;
    /// Length of header and data.
    pub const LENGTH: Range<usize> = 4..6;
    /// Checksum (zero: none sent).
    pub const CHECKSUM: Range<usize> = 6..8;
    /// Header length.
    pub const HEADER_LEN: usize = 8;
}

const PROTOCOL_UDP: u8 = 17;

/// A zero-copy view of a UDP datagram.
#[derive(Debug, Clone)]
pub struct UdpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> UdpPacket<T> {
    /// Wraps a buffer without checking it.
    pub const fn new_unchecked(buffer: T) -> Self {
        UdpPacket { buffer }
    }

    /// Wraps a buffer, checking the header and the length field.
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// Checks the header fits and `8 <= length <= buffer length`.
    pub fn check_len(&self) -> Result<(), WireError> {
        let len = self.buffer.as_ref().len();
        if len < field::HEADER_LEN {
            return Err(WireError::Truncated);
        }
        let field_len = usize::from(self.len());
        if field_len < field::HEADER_LEN {
            return Err(WireError::BadLength);
        }
        if field_len > len {
            return Err(WireError::Truncated);
        }
        Ok(())
    }

    /// The buffer back.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Source port.
    pub fn src_port(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::SRC_PORT.start)
    }

    /// Destination port.
    pub fn dst_port(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::DST_PORT.start)
    }

    /// Length field (header + data).
    pub fn len(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::LENGTH.start)
    }

    /// True when the length field says there is no data.
    pub fn is_empty(&self) -> bool {
        usize::from(self.len()) == field::HEADER_LEN
    }

    /// Checksum field.
    pub fn checksum(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::CHECKSUM.start)
    }

    /// The data, up to the length field.
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[field::HEADER_LEN..usize::from(self.len())]
    }

    /// True when the checksum verifies or was not sent (zero, RFC 768).
    pub fn verify_checksum(&self, src: Ipv4Addr, dst: Ipv4Addr) -> bool {
        if self.checksum() == 0 {
            return true;
        }
        let datagram = &self.buffer.as_ref()[..usize::from(self.len())];
        let pseudo = checksum::pseudo_header_ipv4(src, dst, PROTOCOL_UDP, self.len());
        checksum::add(pseudo, checksum::sum(datagram)) == 0xffff
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> UdpPacket<T> {
    /// Sets the source port.
    pub fn set_src_port(&mut self, v: u16) {
        write_u16(self.buffer.as_mut(), field::SRC_PORT.start, v);
    }

    /// Sets the destination port.
    pub fn set_dst_port(&mut self, v: u16) {
        write_u16(self.buffer.as_mut(), field::DST_PORT.start, v);
    }

    /// Sets the length field.
    pub fn set_len(&mut self, v: u16) {
        write_u16(self.buffer.as_mut(), field::LENGTH.start, v);
    }

    /// Sets the checksum field.
    pub fn set_checksum(&mut self, v: u16) {
        write_u16(self.buffer.as_mut(), field::CHECKSUM.start, v);
    }

    /// The data, writable.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let end = usize::from(self.len());
        &mut self.buffer.as_mut()[field::HEADER_LEN..end]
    }
}

/// The checksum to write into a UDP header (its checksum field zero) followed by
/// `payload`, without copying them together. Zero becomes 0xffff (RFC 768).
pub fn checksum_split(src: Ipv4Addr, dst: Ipv4Addr, header: &[u8], payload: &[u8]) -> u16 {
    let len = (header.len() + payload.len()) as u16;
    let mut acc = Accumulator::from_sum(checksum::pseudo_header_ipv4(src, dst, PROTOCOL_UDP, len));
    acc.add_bytes(header).add_bytes(payload);
    match acc.checksum() {
        0 => 0xffff,
        c => c,
    }
}

/// Computes and writes the checksum of a whole datagram (header + data) in place.
pub fn fill_checksum(datagram: &mut [u8], src: Ipv4Addr, dst: Ipv4Addr) -> Result<(), WireError> {
    if datagram.len() < field::HEADER_LEN || datagram.len() > usize::from(u16::MAX) {
        return Err(WireError::BadLength);
    }
    write_u16(datagram, field::CHECKSUM.start, 0);
    let (header, payload) = datagram.split_at(field::HEADER_LEN);
    let c = checksum_split(src, dst, header, payload);
    write_u16(datagram, field::CHECKSUM.start, c);
    Ok(())
}

/// An owned UDP header; the data is the view's `payload()`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct UdpRepr {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
}

impl UdpRepr {
    /// Parses a view, verifying the checksum (when one was sent) unless `mode` is
    /// `Trust`.
    pub fn parse<T: AsRef<[u8]>>(
        packet: &UdpPacket<T>,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        mode: ChecksumMode,
    ) -> Result<Self, WireError> {
        packet.check_len()?;
        if mode == ChecksumMode::Verify && !packet.verify_checksum(src, dst) {
            return Err(WireError::BadChecksum);
        }
        Ok(UdpRepr {
            src_port: packet.src_port(),
            dst_port: packet.dst_port(),
        })
    }

    /// Header length: 8.
    pub const fn header_len(&self) -> usize {
        field::HEADER_LEN
    }

    /// Writes the header for `payload_len` bytes of data, checksum zero; call
    /// [`fill_checksum`] or [`checksum_split`] once the data is in place.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        packet: &mut UdpPacket<T>,
        payload_len: usize,
    ) -> Result<(), WireError> {
        if packet.buffer.as_ref().len() < field::HEADER_LEN {
            return Err(WireError::Truncated);
        }
        let len =
            u16::try_from(field::HEADER_LEN + payload_len).map_err(|_| WireError::BadLength)?;
        packet.set_src_port(self.src_port);
        packet.set_dst_port(self.dst_port);
        packet.set_len(len);
        packet.set_checksum(0);
        Ok(())
    }

    /// Writes header and copied data into `buf` with the checksum (unless
    /// offloaded); returns the datagram length.
    pub fn emit_datagram(
        &self,
        buf: &mut [u8],
        src: Ipv4Addr,
        dst: Ipv4Addr,
        payload: &[u8],
        tx: TxChecksum,
    ) -> Result<usize, WireError> {
        let total = field::HEADER_LEN + payload.len();
        let out = buf.get_mut(..total).ok_or(WireError::Truncated)?;
        self.emit(&mut UdpPacket::new_unchecked(&mut *out), payload.len())?;
        out[field::HEADER_LEN..].copy_from_slice(payload);
        if tx == TxChecksum::Compute {
            fill_checksum(out, src, dst)?;
        }
        Ok(total)
    }
}

//! IPv4 header (RFC 791).
//!
//! Fragments are recognised here and reassembled by the engine
//! ([`crate::reassembly`], bounded): [`Ipv4Repr::is_fragment`] tells the stack.
//! surge sends with DF set and relies on path MTU discovery (RFC 1191).
//!
//! Options are validated (RFC 791 §3.1: EOL, NOP, and type-length-value; a length
//! below 2 or past the header is [`WireError::BadOption`]) and kept verbatim,
//! bounded by the 40-byte maximum, but not acted upon.

use super::{ChecksumMode, TxChecksum, WireError, read_u16, write_u16};
use crate::checksum;
use core::net::Ipv4Addr;

/// Byte ranges of the IPv4 header.
pub mod field {
    use core::ops::Range;
    /// Version (high nibble) and IHL (low nibble, in 32-bit words).
    pub const VER_IHL: usize = 0;
    /// DSCP (6 bits) and ECN (2 bits).
    pub const DSCP_ECN: usize = 1;
    /// Total length.
    pub const LENGTH: Range<usize> = 2..4;
    /// Identification.
    pub const IDENT: Range<usize> = 4..6;
    /// Flags (3 bits) and fragment offset (13 bits, 8-byte units).
    pub const FLG_OFF: Range<usize> = 6..8;
    /// Time to live.
    pub const TTL: usize = 8;
    /// Protocol.
    pub const PROTOCOL: usize = 9;
    /// Header checksum.
    pub const CHECKSUM: Range<usize> = 10..12;
    /// Source address.
    pub const SRC_ADDR: Range<usize> = 12..16;
    /// Destination address.
    pub const DST_ADDR: Range<usize> = 16..20;
    /// Header length without options.
    pub const HEADER_LEN: usize = 20;
    /// Largest options area (IHL 15).
    pub const MAX_OPTIONS_LEN: usize = 40;
}

const FLAG_DF: u16 = 0x4000;
const FLAG_MF: u16 = 0x2000;

/// The protocol in an IPv4 header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IpProtocol {
    /// 1.
    Icmp,
    /// 6.
    Tcp,
    /// 17.
    Udp,
    /// Anything else (never 1, 6 or 17).
    Unknown(u8),
}

impl From<u8> for IpProtocol {
    fn from(v: u8) -> Self {
        match v {
            1 => IpProtocol::Icmp,
            6 => IpProtocol::Tcp,
            17 => IpProtocol::Udp,
            other => IpProtocol::Unknown(other),
        }
    }
}

impl From<IpProtocol> for u8 {
    fn from(p: IpProtocol) -> u8 {
        match p {
            IpProtocol::Icmp => 1,
            IpProtocol::Tcp => 6,
            IpProtocol::Udp => 17,
            IpProtocol::Unknown(v) => v,
        }
    }
}

/// Validated IPv4 options, verbatim and padded to a multiple of 4 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv4Options {
    bytes: [u8; field::MAX_OPTIONS_LEN],
    len: u8,
}

impl Ipv4Options {
    /// No options.
    pub const NONE: Ipv4Options = Ipv4Options {
        bytes: [0; field::MAX_OPTIONS_LEN],
        len: 0,
    };

    /// Validates `raw` and pads it with EOL (zero) bytes to a multiple of 4.
    #[inline]
    pub fn new(raw: &[u8]) -> Result<Self, WireError> {
        if raw.len() > field::MAX_OPTIONS_LEN {
            return Err(WireError::BadOption);
        }
        if raw.is_empty() {
            // The common case: no copy, no call.
            return Ok(Ipv4Options::NONE);
        }
        validate_options(raw)?;
        let mut bytes = [0u8; field::MAX_OPTIONS_LEN];
        for (dst, src) in bytes.iter_mut().zip(raw) {
            *dst = *src;
        }
        let len = raw.len().div_ceil(4) * 4;
        // len <= 40 fits in u8.
        Ok(Ipv4Options {
            bytes,
            len: len as u8,
        })
    }

    /// The option bytes (padded).
    pub fn as_bytes(&self) -> &[u8] {
        &self.bytes[..usize::from(self.len)]
    }

    /// Length in bytes, a multiple of 4.
    pub const fn len(&self) -> usize {
        self.len as usize
    }

    /// True when there are no options.
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl Default for Ipv4Options {
    fn default() -> Self {
        Ipv4Options::NONE
    }
}

/// RFC 791 §3.1: an option is a single octet (EOL = 0, NOP = 1) or a type, a
/// length counting both, and data. EOL ends the list; what follows is padding.
fn validate_options(raw: &[u8]) -> Result<(), WireError> {
    let mut i = 0;
    while let Some(&kind) = raw.get(i) {
        match kind {
            0 => return Ok(()),
            1 => i += 1,
            _ => {
                let len = usize::from(*raw.get(i + 1).ok_or(WireError::BadOption)?);
                if len < 2 || i + len > raw.len() {
                    return Err(WireError::BadOption);
                }
                i += len;
            }
        }
    }
    Ok(())
}

/// A zero-copy view of an IPv4 packet.
#[derive(Debug, Clone)]
pub struct Ipv4Packet<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> Ipv4Packet<T> {
    /// Wraps a buffer without checking it.
    pub const fn new_unchecked(buffer: T) -> Self {
        Ipv4Packet { buffer }
    }

    /// Wraps a buffer, checking the header and total length fit in it.
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// Checks the buffer holds the fixed header, the options IHL claims and the
    /// total length; a total length below the header length is `BadLength`.
    pub fn check_len(&self) -> Result<(), WireError> {
        self.check_header_len()?;
        let total = usize::from(self.total_len());
        if total < self.header_len() {
            return Err(WireError::BadLength);
        }
        if total > self.buffer.as_ref().len() {
            return Err(WireError::Truncated);
        }
        Ok(())
    }

    /// Checks only the header (with options) fits: for headers quoted in ICMP
    /// errors, whose total length describes a packet we do not have.
    pub fn check_header_len(&self) -> Result<(), WireError> {
        let len = self.buffer.as_ref().len();
        if len < field::HEADER_LEN {
            return Err(WireError::Truncated);
        }
        if self.header_len() < field::HEADER_LEN {
            return Err(WireError::BadHeaderLen);
        }
        if self.header_len() > len {
            return Err(WireError::Truncated);
        }
        Ok(())
    }

    /// The buffer back.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// IP version.
    pub fn version(&self) -> u8 {
        self.buffer.as_ref()[field::VER_IHL] >> 4
    }

    /// Header length in bytes (IHL * 4).
    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[field::VER_IHL] & 0x0f) * 4
    }

    /// DSCP and ECN byte.
    pub fn dscp_ecn(&self) -> u8 {
        self.buffer.as_ref()[field::DSCP_ECN]
    }

    /// Total length field.
    pub fn total_len(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::LENGTH.start)
    }

    /// Identification.
    pub fn ident(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::IDENT.start)
    }

    /// Don't-fragment flag.
    pub fn dont_frag(&self) -> bool {
        read_u16(self.buffer.as_ref(), field::FLG_OFF.start) & FLAG_DF != 0
    }

    /// More-fragments flag.
    pub fn more_frags(&self) -> bool {
        read_u16(self.buffer.as_ref(), field::FLG_OFF.start) & FLAG_MF != 0
    }

    /// Fragment offset in bytes.
    pub fn frag_offset(&self) -> u16 {
        (read_u16(self.buffer.as_ref(), field::FLG_OFF.start) & 0x1fff) << 3
    }

    /// Time to live.
    pub fn ttl(&self) -> u8 {
        self.buffer.as_ref()[field::TTL]
    }

    /// Protocol.
    pub fn protocol(&self) -> IpProtocol {
        IpProtocol::from(self.buffer.as_ref()[field::PROTOCOL])
    }

    /// Header checksum field.
    pub fn checksum(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::CHECKSUM.start)
    }

    /// Source address.
    pub fn src_addr(&self) -> Ipv4Addr {
        let b = &self.buffer.as_ref()[field::SRC_ADDR];
        Ipv4Addr::new(b[0], b[1], b[2], b[3])
    }

    /// Destination address.
    pub fn dst_addr(&self) -> Ipv4Addr {
        let b = &self.buffer.as_ref()[field::DST_ADDR];
        Ipv4Addr::new(b[0], b[1], b[2], b[3])
    }

    /// The options area.
    pub fn options(&self) -> &[u8] {
        &self.buffer.as_ref()[field::HEADER_LEN..self.header_len()]
    }

    /// True when the header checksum verifies (RFC 791 §3.1, RFC 1071).
    pub fn verify_checksum(&self) -> bool {
        checksum::sum(&self.buffer.as_ref()[..self.header_len()]) == 0xffff
    }

    /// The payload: from the end of the header to the total length (Ethernet
    /// padding after it is excluded).
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..usize::from(self.total_len())]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> Ipv4Packet<T> {
    /// Sets version 4 and the header length in bytes (a multiple of 4, 20..=60).
    pub fn set_version_header_len(&mut self, header_len: usize) {
        // header_len / 4 <= 15 for any valid header.
        self.buffer.as_mut()[field::VER_IHL] = 0x40 | ((header_len / 4) as u8 & 0x0f);
    }

    /// Sets DSCP and ECN.
    pub fn set_dscp_ecn(&mut self, v: u8) {
        self.buffer.as_mut()[field::DSCP_ECN] = v;
    }

    /// Sets the total length.
    pub fn set_total_len(&mut self, v: u16) {
        write_u16(self.buffer.as_mut(), field::LENGTH.start, v);
    }

    /// Sets the identification.
    pub fn set_ident(&mut self, v: u16) {
        write_u16(self.buffer.as_mut(), field::IDENT.start, v);
    }

    /// Sets the flags and fragment offset (in bytes, a multiple of 8).
    pub fn set_flags_frag_offset(&mut self, dont_frag: bool, more_frags: bool, offset: u16) {
        let mut v = (offset >> 3) & 0x1fff;
        if dont_frag {
            v |= FLAG_DF;
        }
        if more_frags {
            v |= FLAG_MF;
        }
        write_u16(self.buffer.as_mut(), field::FLG_OFF.start, v);
    }

    /// Sets the time to live.
    pub fn set_ttl(&mut self, v: u8) {
        self.buffer.as_mut()[field::TTL] = v;
    }

    /// Sets the protocol.
    pub fn set_protocol(&mut self, p: IpProtocol) {
        self.buffer.as_mut()[field::PROTOCOL] = p.into();
    }

    /// Sets the checksum field.
    pub fn set_checksum(&mut self, v: u16) {
        write_u16(self.buffer.as_mut(), field::CHECKSUM.start, v);
    }

    /// Sets the source address.
    pub fn set_src_addr(&mut self, a: Ipv4Addr) {
        self.buffer.as_mut()[field::SRC_ADDR].copy_from_slice(&a.octets());
    }

    /// Sets the destination address.
    pub fn set_dst_addr(&mut self, a: Ipv4Addr) {
        self.buffer.as_mut()[field::DST_ADDR].copy_from_slice(&a.octets());
    }

    /// Computes and writes the header checksum.
    pub fn fill_checksum(&mut self) {
        self.set_checksum(0);
        let len = self.header_len();
        let c = checksum::checksum(&self.buffer.as_ref()[..len]);
        self.set_checksum(c);
    }

    /// The payload, writable (up to the total length).
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let (start, end) = (self.header_len(), usize::from(self.total_len()));
        &mut self.buffer.as_mut()[start..end]
    }
}

/// An owned IPv4 header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ipv4Repr {
    /// Source address.
    pub src_addr: Ipv4Addr,
    /// Destination address.
    pub dst_addr: Ipv4Addr,
    /// Payload protocol.
    pub protocol: IpProtocol,
    /// Payload length (total length minus header length).
    pub payload_len: usize,
    /// Time to live.
    pub ttl: u8,
    /// DSCP and ECN byte.
    pub dscp_ecn: u8,
    /// Identification.
    pub ident: u16,
    /// Don't-fragment flag.
    pub dont_frag: bool,
    /// More-fragments flag.
    pub more_frags: bool,
    /// Fragment offset in bytes (a multiple of 8).
    pub frag_offset: u16,
    /// Options, validated and padded.
    pub options: Ipv4Options,
}

/// The fields of a plain IPv4 header as surge sends it: 20 bytes, no options, DF
/// set, ident 0 (see [`Ipv4Repr::new`]), written by [`emit_plain_header`] without
/// building an [`Ipv4Repr`] (the per-segment TX path).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlainHeader {
    /// Source address.
    pub src_addr: Ipv4Addr,
    /// Destination address.
    pub dst_addr: Ipv4Addr,
    /// Payload protocol.
    pub protocol: IpProtocol,
    /// Payload length.
    pub payload_len: usize,
    /// Time to live.
    pub ttl: u8,
    /// DSCP and ECN byte.
    pub dscp_ecn: u8,
}

/// The total length of a plain header and `payload_len` bytes; `BadLength` when it
/// does not fit 16 bits (any `usize`: no overflow on the way).
#[inline]
fn total_length(payload_len: usize) -> Result<u16, WireError> {
    payload_len
        .checked_add(field::HEADER_LEN)
        .and_then(|t| u16::try_from(t).ok())
        .ok_or(WireError::BadLength)
}

/// Writes `h` as a 20-byte header with its checksum: the same bytes
/// `Ipv4Repr::new(..)` with `dscp_ecn` set emits. `BadLength` when the total
/// length does not fit 16 bits.
#[inline]
pub fn emit_plain_header(
    out: &mut [u8; field::HEADER_LEN],
    h: &PlainHeader,
) -> Result<(), WireError> {
    let total = total_length(h.payload_len)?;
    let [t0, t1] = total.to_be_bytes();
    let [s0, s1, s2, s3] = h.src_addr.octets();
    let [d0, d1, d2, d3] = h.dst_addr.octets();
    // Version 4, IHL 5; ident 0; DF, fragment offset 0; checksum 0 until summed.
    *out = [
        0x45,
        h.dscp_ecn,
        t0,
        t1,
        0,
        0,
        0x40,
        0,
        h.ttl,
        u8::from(h.protocol),
        0,
        0,
        s0,
        s1,
        s2,
        s3,
        d0,
        d1,
        d2,
        d3,
    ];
    let c = checksum::checksum(out);
    out[field::CHECKSUM.start..field::CHECKSUM.end].copy_from_slice(&c.to_be_bytes());
    Ok(())
}

/// A plain header prepared once for a run of packets that differ only in their
/// payload length and DSCP/ECN byte (the segments of one connection): the fixed
/// bytes and the sum of the fixed words are kept, so each packet's header is a
/// copy, two fields and an incremental checksum (RFC 1624 §3: the checksum is
/// updated by adding the new fields' words to the precomputed sum). The bytes are
/// those [`emit_plain_header`] writes for the same fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PlainHeaderTemplate {
    /// The header with DSCP/ECN, total length and checksum zero.
    bytes: [u8; field::HEADER_LEN],
    /// One's-complement sum of `bytes` (folded, not complemented).
    partial: u16,
}

impl PlainHeaderTemplate {
    /// The template for packets from `src_addr` to `dst_addr` carrying `protocol`
    /// with hop limit `ttl`.
    pub fn new(src_addr: Ipv4Addr, dst_addr: Ipv4Addr, protocol: IpProtocol, ttl: u8) -> Self {
        let mut bytes = [0; field::HEADER_LEN];
        let header = PlainHeader {
            src_addr,
            dst_addr,
            protocol,
            payload_len: 0,
            ttl,
            dscp_ecn: 0,
        };
        // 20 bytes always fit the 16-bit total length.
        let _ = emit_plain_header(&mut bytes, &header);
        bytes[field::LENGTH].fill(0);
        bytes[field::CHECKSUM].fill(0);
        PlainHeaderTemplate {
            partial: checksum::sum(&bytes),
            bytes,
        }
    }

    /// Writes the header of a packet with `payload_len` bytes of payload and
    /// `dscp_ecn`: the same bytes as [`emit_plain_header`]. `BadLength` when the
    /// total length does not fit 16 bits.
    #[inline]
    pub fn emit(
        &self,
        out: &mut [u8; field::HEADER_LEN],
        payload_len: usize,
        dscp_ecn: u8,
    ) -> Result<(), WireError> {
        let total = total_length(payload_len)?;
        *out = self.bytes;
        out[field::DSCP_ECN] = dscp_ecn;
        out[field::LENGTH].copy_from_slice(&total.to_be_bytes());
        // DSCP/ECN is the low byte of the first word (whose high byte, 0x45, is
        // in the partial sum); the total length is the second word.
        let sum = checksum::add(checksum::add(self.partial, total), u16::from(dscp_ecn));
        out[field::CHECKSUM].copy_from_slice(&(!sum).to_be_bytes());
        Ok(())
    }
}

impl Ipv4Repr {
    /// A plain header as surge sends it: DF set, no options, ident 0 (RFC 6864
    /// §4.1: atomic datagrams may use any ident).
    pub const fn new(
        src_addr: Ipv4Addr,
        dst_addr: Ipv4Addr,
        protocol: IpProtocol,
        payload_len: usize,
        ttl: u8,
    ) -> Self {
        Ipv4Repr {
            src_addr,
            dst_addr,
            protocol,
            payload_len,
            ttl,
            dscp_ecn: 0,
            ident: 0,
            dont_frag: true,
            more_frags: false,
            frag_offset: 0,
            options: Ipv4Options::NONE,
        }
    }

    /// Parses a view: version 4, lengths consistent, options well formed, and the
    /// header checksum verified unless `mode` is `Trust`.
    pub fn parse<T: AsRef<[u8]>>(
        packet: &Ipv4Packet<T>,
        mode: ChecksumMode,
    ) -> Result<Self, WireError> {
        packet.check_header_len()?;
        if packet.version() != 4 {
            return Err(WireError::BadVersion);
        }
        packet.check_len()?;
        if mode == ChecksumMode::Verify && !packet.verify_checksum() {
            return Err(WireError::BadChecksum);
        }
        Self::parse_fields(packet)
    }

    /// Parses a header quoted inside an ICMP error (RFC 792): only the header must
    /// be present, the checksum is not verified. Returns the repr and the bytes
    /// after the header.
    pub fn parse_quoted(quoted: &[u8]) -> Result<(Self, &[u8]), WireError> {
        let packet = Ipv4Packet::new_unchecked(quoted);
        packet.check_header_len()?;
        if packet.version() != 4 {
            return Err(WireError::BadVersion);
        }
        if usize::from(packet.total_len()) < packet.header_len() {
            return Err(WireError::BadLength);
        }
        let repr = Self::parse_fields(&packet)?;
        Ok((repr, &quoted[packet.header_len()..]))
    }

    #[inline]
    fn parse_fields<T: AsRef<[u8]>>(packet: &Ipv4Packet<T>) -> Result<Self, WireError> {
        Ok(Ipv4Repr {
            src_addr: packet.src_addr(),
            dst_addr: packet.dst_addr(),
            protocol: packet.protocol(),
            payload_len: usize::from(packet.total_len()) - packet.header_len(),
            ttl: packet.ttl(),
            dscp_ecn: packet.dscp_ecn(),
            ident: packet.ident(),
            dont_frag: packet.dont_frag(),
            more_frags: packet.more_frags(),
            frag_offset: packet.frag_offset(),
            options: Ipv4Options::new(packet.options())?,
        })
    }

    /// True for any fragment (first, middle or last): the stack drops these.
    pub const fn is_fragment(&self) -> bool {
        self.more_frags || self.frag_offset != 0
    }

    /// Header length this repr emits (with options).
    pub const fn header_len(&self) -> usize {
        field::HEADER_LEN + self.options.len()
    }

    /// Writes the header (not the payload) at the start of the view's buffer,
    /// which must hold at least [`Self::header_len`] bytes.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        packet: &mut Ipv4Packet<T>,
        tx: TxChecksum,
    ) -> Result<(), WireError> {
        let header_len = self.header_len();
        if packet.buffer.as_ref().len() < header_len {
            return Err(WireError::Truncated);
        }
        let total =
            u16::try_from(header_len + self.payload_len).map_err(|_| WireError::BadLength)?;
        packet.set_version_header_len(header_len);
        packet.set_dscp_ecn(self.dscp_ecn);
        packet.set_total_len(total);
        packet.set_ident(self.ident);
        packet.set_flags_frag_offset(self.dont_frag, self.more_frags, self.frag_offset);
        packet.set_ttl(self.ttl);
        packet.set_protocol(self.protocol);
        packet.set_src_addr(self.src_addr);
        packet.set_dst_addr(self.dst_addr);
        packet.buffer.as_mut()[field::HEADER_LEN..header_len]
            .copy_from_slice(self.options.as_bytes());
        match tx {
            TxChecksum::Compute => packet.fill_checksum(),
            TxChecksum::Offload => packet.set_checksum(0),
        }
        Ok(())
    }
}

#[cfg(test)]
mod template_tests {
    use super::*;

    #[test]
    fn the_template_writes_what_emit_plain_header_writes() {
        let addrs = [
            (Ipv4Addr::new(198, 18, 0, 1), Ipv4Addr::new(198, 18, 0, 2)),
            (Ipv4Addr::new(0, 0, 0, 0), Ipv4Addr::new(0, 0, 0, 0)),
            (
                Ipv4Addr::new(255, 255, 255, 255),
                Ipv4Addr::new(255, 255, 255, 254),
            ),
            (
                Ipv4Addr::new(10, 255, 0, 1),
                Ipv4Addr::new(192, 168, 255, 255),
            ),
        ];
        for (src, dst) in addrs {
            for protocol in [IpProtocol::Tcp, IpProtocol::Udp, IpProtocol::Unknown(255)] {
                for ttl in [0, 1, 64, 255] {
                    let template = PlainHeaderTemplate::new(src, dst, protocol, ttl);
                    for payload_len in [0, 1, 20, 1440, 8976, 65515, 65516, usize::MAX] {
                        for dscp_ecn in [0, 1, 2, 3, 0xb8, 0xff] {
                            let h = PlainHeader {
                                src_addr: src,
                                dst_addr: dst,
                                protocol,
                                payload_len,
                                ttl,
                                dscp_ecn,
                            };
                            let mut expected = [0xa5; field::HEADER_LEN];
                            let want = emit_plain_header(&mut expected, &h);
                            let mut got = [0xa5; field::HEADER_LEN];
                            assert_eq!(template.emit(&mut got, payload_len, dscp_ecn), want);
                            if want.is_ok() {
                                assert_eq!(got, expected, "{h:?}");
                            }
                        }
                    }
                }
            }
        }
    }
}

//! TCP header (RFC 9293 §3.1) and options (RFC 9293 §3.2, RFC 7323, RFC 2018).
//!
//! The owned types below are the contract between the wire layer and the TCP
//! state machine: [`TcpRepr`] is what `tcp` consumes on input and produces on
//! output. The payload is not part of the repr: on input it is a slice of the
//! received frame, on output the caller copies it straight into the TX frame.
//!
//! Output in three steps, no copy of the payload beyond the one into the frame:
//! [`TcpRepr::emit`] writes the header (options padded to 4 bytes, checksum
//! zero), the caller writes the payload after it, then [`fill_checksum`] (one
//! buffer) or [`checksum_split`] (header and payload apart) computes the checksum.
//! [`TcpRepr::emit_segment`] does all three.

use super::tcp_options::TIMESTAMP_ONLY_PREFIX;
use super::{ChecksumMode, TxChecksum, WireError, read_u16, read_u32, write_u16, write_u32};
use crate::checksum::{self, Accumulator};
use core::net::Ipv4Addr;

/// TCP control bits (RFC 9293 §3.1, RFC 3168 for ECE/CWR).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TcpFlags(pub u8);

impl TcpFlags {
    /// No more data from sender.
    pub const FIN: TcpFlags = TcpFlags(0x01);
    /// Synchronize sequence numbers.
    pub const SYN: TcpFlags = TcpFlags(0x02);
    /// Reset the connection.
    pub const RST: TcpFlags = TcpFlags(0x04);
    /// Push function.
    pub const PSH: TcpFlags = TcpFlags(0x08);
    /// Acknowledgment field is significant.
    pub const ACK: TcpFlags = TcpFlags(0x10);
    /// Urgent pointer field is significant.
    pub const URG: TcpFlags = TcpFlags(0x20);
    /// ECN-Echo (RFC 3168).
    pub const ECE: TcpFlags = TcpFlags(0x40);
    /// Congestion Window Reduced (RFC 3168).
    pub const CWR: TcpFlags = TcpFlags(0x80);
    /// No flags set.
    pub const NONE: TcpFlags = TcpFlags(0);

    /// True when every bit of `other` is set in `self`.
    pub const fn contains(self, other: TcpFlags) -> bool {
        self.0 & other.0 == other.0
    }

    /// True when any bit of `other` is set in `self`.
    pub const fn intersects(self, other: TcpFlags) -> bool {
        self.0 & other.0 != 0
    }

    /// `self` with the bits of `other` added.
    pub const fn with(self, other: TcpFlags) -> TcpFlags {
        TcpFlags(self.0 | other.0)
    }

    /// `self` with the bits of `other` removed.
    pub const fn without(self, other: TcpFlags) -> TcpFlags {
        TcpFlags(self.0 & !other.0)
    }
}

impl core::ops::BitOr for TcpFlags {
    type Output = TcpFlags;
    fn bitor(self, rhs: TcpFlags) -> TcpFlags {
        self.with(rhs)
    }
}

impl core::ops::BitOrAssign for TcpFlags {
    fn bitor_assign(&mut self, rhs: TcpFlags) {
        *self = self.with(rhs);
    }
}

/// Up to four SACK blocks (RFC 2018 §3); three fit beside timestamps.
///
/// Each block is `(left_edge, right_edge)` as raw sequence numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SackBlocks {
    blocks: [(u32, u32); 4],
    len: u8,
}

impl SackBlocks {
    /// Most blocks one segment can carry.
    pub const CAPACITY: usize = 4;

    /// No blocks.
    pub const fn new() -> Self {
        SackBlocks {
            blocks: [(0, 0); 4],
            len: 0,
        }
    }

    /// Appends a block; returns `false` (and drops it) when already full.
    pub fn push(&mut self, left: u32, right: u32) -> bool {
        let i = usize::from(self.len);
        if i >= Self::CAPACITY {
            return false;
        }
        self.blocks[i] = (left, right);
        self.len += 1;
        true
    }

    /// The blocks present, in order.
    pub fn as_slice(&self) -> &[(u32, u32)] {
        &self.blocks[..usize::from(self.len)]
    }

    /// Number of blocks present.
    pub const fn len(&self) -> usize {
        self.len as usize
    }

    /// True when there are no blocks.
    pub const fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Keeps only the first `n` blocks.
    pub fn truncate(&mut self, n: usize) {
        if n < usize::from(self.len) {
            // Unused slots stay zero, so the derived `PartialEq`/`Hash` only see
            // the blocks present.
            for slot in &mut self.blocks[n..] {
                *slot = (0, 0);
            }
            // n < len <= 4, so it fits in u8.
            self.len = n as u8;
        }
    }
}

/// The TCP options surge understands. Unknown options are skipped by length on
/// parse and never emitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TcpOptions {
    /// Maximum segment size (kind 2), only meaningful on SYN.
    pub mss: Option<u16>,
    /// Window scale shift count (kind 3), only meaningful on SYN; RFC 7323 caps it at 14.
    pub window_scale: Option<u8>,
    /// SACK-permitted (kind 4), only meaningful on SYN.
    pub sack_permitted: bool,
    /// SACK blocks (kind 5).
    pub sack_blocks: SackBlocks,
    /// Timestamps (kind 8): `(TSval, TSecr)`.
    pub timestamp: Option<(u32, u32)>,
}

/// An owned, parsed TCP header without its payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TcpRepr {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Sequence number of the first octet (or of the SYN/FIN).
    pub seq_number: u32,
    /// Acknowledgment number; meaningful only when ACK is set.
    pub ack_number: u32,
    /// Control bits.
    pub flags: TcpFlags,
    /// Window field as on the wire (not yet scaled).
    pub window_len: u16,
    /// Urgent pointer; surge never sets URG and treats urgent data as normal data.
    pub urgent_pointer: u16,
    /// Options.
    pub options: TcpOptions,
}

/// Byte ranges of the TCP header.
pub mod field {
    use core::ops::Range;
    /// Source port.
    pub const SRC_PORT: Range<usize> = 0..2;
    /// Destination port.
    pub const DST_PORT: Range<usize> = 2..4;
    /// Sequence number.
    pub const SEQ_NUM: Range<usize> = 4..8;
    /// Acknowledgment number.
    pub const ACK_NUM: Range<usize> = 8..12;
    /// Data offset (high nibble, 32-bit words) and reserved bits.
    pub const DATA_OFFSET: usize = 12;
    /// Control bits.
    pub const FLAGS: usize = 13;
    /// Window.
    pub const WINDOW: Range<usize> = 14..16;
    /// Checksum.
    pub const CHECKSUM: Range<usize> = 16..18;
    /// Urgent pointer.
    pub const URGENT: Range<usize> = 18..20;
    /// Header length without options.
    pub const HEADER_LEN: usize = 20;
    /// Largest options area (data offset 15).
    pub const MAX_OPTIONS_LEN: usize = 40;
}

const PROTOCOL_TCP: u8 = 6;

/// A zero-copy view of a TCP segment (header and payload).
#[derive(Debug, Clone)]
pub struct TcpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> TcpPacket<T> {
    /// Wraps a buffer without checking it.
    pub const fn new_unchecked(buffer: T) -> Self {
        TcpPacket { buffer }
    }

    /// Wraps a buffer, checking the header (with the options the data offset
    /// claims) fits.
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// Checks `20 <= data offset * 4 <= buffer length`.
    pub fn check_len(&self) -> Result<(), WireError> {
        let len = self.buffer.as_ref().len();
        if len < field::HEADER_LEN {
            return Err(WireError::Truncated);
        }
        let header_len = self.header_len();
        if header_len < field::HEADER_LEN {
            return Err(WireError::BadHeaderLen);
        }
        if header_len > len {
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

    /// Sequence number.
    pub fn seq_number(&self) -> u32 {
        read_u32(self.buffer.as_ref(), field::SEQ_NUM.start)
    }

    /// Acknowledgment number.
    pub fn ack_number(&self) -> u32 {
        read_u32(self.buffer.as_ref(), field::ACK_NUM.start)
    }

    /// Header length in bytes (data offset * 4).
    pub fn header_len(&self) -> usize {
        usize::from(self.buffer.as_ref()[field::DATA_OFFSET] >> 4) * 4
    }

    /// Control bits.
    pub fn flags(&self) -> TcpFlags {
        TcpFlags(self.buffer.as_ref()[field::FLAGS])
    }

    /// Window field.
    pub fn window_len(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::WINDOW.start)
    }

    /// Checksum field.
    pub fn checksum(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::CHECKSUM.start)
    }

    /// Urgent pointer.
    pub fn urgent_pointer(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::URGENT.start)
    }

    /// The options area.
    pub fn options(&self) -> &[u8] {
        &self.buffer.as_ref()[field::HEADER_LEN..self.header_len()]
    }

    /// The payload: everything after the header.
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..]
    }

    /// Length of the segment (header + payload).
    pub fn segment_len(&self) -> usize {
        self.buffer.as_ref().len()
    }

    /// True when the checksum over pseudo-header and segment verifies
    /// (RFC 9293 §3.1).
    #[inline]
    pub fn verify_checksum(&self, src: Ipv4Addr, dst: Ipv4Addr) -> bool {
        let seg = self.buffer.as_ref();
        let Ok(len) = u16::try_from(seg.len()) else {
            return false;
        };
        // One contiguous buffer: pseudo-header and segment go into one
        // accumulator, folded once.
        let pseudo = checksum::pseudo_header_ipv4_native(src, dst, PROTOCOL_TCP, len);
        checksum::verifies(checksum::add_native(pseudo, seg))
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> TcpPacket<T> {
    /// Sets the source port.
    pub fn set_src_port(&mut self, v: u16) {
        write_u16(self.buffer.as_mut(), field::SRC_PORT.start, v);
    }

    /// Sets the destination port.
    pub fn set_dst_port(&mut self, v: u16) {
        write_u16(self.buffer.as_mut(), field::DST_PORT.start, v);
    }

    /// Sets the sequence number.
    pub fn set_seq_number(&mut self, v: u32) {
        write_u32(self.buffer.as_mut(), field::SEQ_NUM.start, v);
    }

    /// Sets the acknowledgment number.
    pub fn set_ack_number(&mut self, v: u32) {
        write_u32(self.buffer.as_mut(), field::ACK_NUM.start, v);
    }

    /// Sets the header length in bytes (a multiple of 4, 20..=60); clears the
    /// reserved bits.
    pub fn set_header_len(&mut self, header_len: usize) {
        // header_len / 4 <= 15 for any valid header.
        self.buffer.as_mut()[field::DATA_OFFSET] = ((header_len / 4) as u8 & 0x0f) << 4;
    }

    /// Sets the control bits.
    pub fn set_flags(&mut self, flags: TcpFlags) {
        self.buffer.as_mut()[field::FLAGS] = flags.0;
    }

    /// Sets the window field.
    pub fn set_window_len(&mut self, v: u16) {
        write_u16(self.buffer.as_mut(), field::WINDOW.start, v);
    }

    /// Sets the checksum field.
    pub fn set_checksum(&mut self, v: u16) {
        write_u16(self.buffer.as_mut(), field::CHECKSUM.start, v);
    }

    /// Sets the urgent pointer.
    pub fn set_urgent_pointer(&mut self, v: u16) {
        write_u16(self.buffer.as_mut(), field::URGENT.start, v);
    }

    /// The options area, writable.
    pub fn options_mut(&mut self) -> &mut [u8] {
        let end = self.header_len();
        &mut self.buffer.as_mut()[field::HEADER_LEN..end]
    }

    /// The payload, writable.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let start = self.header_len();
        &mut self.buffer.as_mut()[start..]
    }
}

/// The checksum to write into a TCP header (checksum field zero, as [`TcpRepr::emit`]
/// leaves it) followed by `payload`, summed in place without copying them together
/// (RFC 9293 §3.1: pseudo-header, header, payload).
pub fn checksum_split(src: Ipv4Addr, dst: Ipv4Addr, header: &[u8], payload: &[u8]) -> u16 {
    // Segments longer than 65535 bytes cannot be carried by IPv4; truncating the
    // length here only yields a checksum the peer rejects.
    let len = (header.len() + payload.len()) as u16;
    // Pseudo-header, header and payload in one unfolded accumulator, folded once.
    let mut acc = checksum::pseudo_header_ipv4_native(src, dst, PROTOCOL_TCP, len);
    acc = checksum::add_native(acc, header);
    // A whole segment in one buffer comes with an empty second piece: no sum for it.
    if !payload.is_empty() {
        if header.len() % 2 == 0 {
            acc = checksum::add_native(acc, payload);
        } else {
            // RFC 1071 §2 (B): a piece starting at an odd offset contributes its
            // sum byte-swapped (never the case for a real header, a multiple of 4).
            let mut odd = Accumulator::new();
            odd.add_bytes(&[0]).add_bytes(payload);
            acc = checksum::add_native(acc, &odd.sum().to_be_bytes());
        }
    }
    !checksum::fold_native(acc)
}

/// Computes and writes the checksum of a whole segment (header + payload) in place.
pub fn fill_checksum(segment: &mut [u8], src: Ipv4Addr, dst: Ipv4Addr) -> Result<(), WireError> {
    if segment.len() < field::HEADER_LEN || segment.len() > usize::from(u16::MAX) {
        return Err(WireError::BadLength);
    }
    write_u16(segment, field::CHECKSUM.start, 0);
    fill_zeroed_checksum(segment, src, dst)
}

/// [`fill_checksum`] for a segment whose checksum field is zero already, as
/// [`TcpRepr::emit`] and [`TimestampHeader::emit`] leave it: no store to the field
/// right before the sum reads it back (a two-byte store inside the eight-byte load
/// that reads it is not forwarded: the load waits for the store to reach the cache).
#[inline]
pub fn fill_zeroed_checksum(
    segment: &mut [u8],
    src: Ipv4Addr,
    dst: Ipv4Addr,
) -> Result<(), WireError> {
    if segment.len() < field::HEADER_LEN || segment.len() > usize::from(u16::MAX) {
        return Err(WireError::BadLength);
    }
    debug_assert_eq!(
        u16::from_be_bytes([
            segment[field::CHECKSUM.start],
            segment[field::CHECKSUM.start + 1]
        ]),
        0,
        "the checksum field must be zero"
    );
    let c = checksum_split(src, dst, segment, &[]);
    write_u16(segment, field::CHECKSUM.start, c);
    Ok(())
}

/// The header of nearly every segment of an established connection with timestamps
/// (RFC 7323 §3): no option but the timestamps, behind two NOPs (RFC 7323 appendix A's
/// layout), no SACK blocks, urgent pointer zero; 32 bytes. The sender's short path
/// (output prediction) writes it straight into the frame instead of building a
/// [`TcpRepr`] (whose option block alone is some 50 bytes to fill and read back); the
/// bytes are those [`TcpRepr::emit`] writes for [`Self::to_repr`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TimestampHeader {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Sequence number of the first octet.
    pub seq_number: u32,
    /// Acknowledgment number.
    pub ack_number: u32,
    /// Control bits.
    pub flags: TcpFlags,
    /// Window field as on the wire (not yet scaled).
    pub window_len: u16,
    /// TSval.
    pub tsval: u32,
    /// TSecr.
    pub tsecr: u32,
}

impl TimestampHeader {
    /// Its length on the wire (data offset 8).
    pub const LEN: usize = 32;

    /// Writes the header, checksum field zero, like [`TcpRepr::emit`]; the payload goes
    /// right after it.
    ///
    /// Written as four 64-bit words, each put together from its fields first: the
    /// checksum then reads the header back in the same four words, and a load that
    /// matches one earlier store is forwarded from it, where a load spanning several
    /// narrower stores (ports, sequence number, flags written one by one) waits until
    /// they reach the cache. `perf` put most of the TX checksum's time on that first
    /// load (5.8 % of the 100-connection echo for 1.6 % of its instructions).
    #[inline(always)]
    pub fn emit(&self, buf: &mut [u8; Self::LEN]) {
        let ports_seq = (u64::from(self.src_port) << 48)
            | (u64::from(self.dst_port) << 32)
            | u64::from(self.seq_number);
        let ack_flags_window = (u64::from(self.ack_number) << 32)
            | (u64::from(((Self::LEN / 4) as u8) << 4) << 24)
            | (u64::from(self.flags.0) << 16)
            | u64::from(self.window_len);
        // Checksum zero, urgent pointer zero, then NOP, NOP, kind 8, length 10.
        let zero_prefix = u64::from(u32::from_be_bytes(TIMESTAMP_ONLY_PREFIX));
        let timestamps = (u64::from(self.tsval) << 32) | u64::from(self.tsecr);
        buf[0..8].copy_from_slice(&ports_seq.to_be_bytes());
        buf[8..16].copy_from_slice(&ack_flags_window.to_be_bytes());
        buf[16..24].copy_from_slice(&zero_prefix.to_be_bytes());
        buf[24..32].copy_from_slice(&timestamps.to_be_bytes());
    }

    /// The same header as a [`TcpRepr`].
    pub fn to_repr(&self) -> TcpRepr {
        TcpRepr {
            src_port: self.src_port,
            dst_port: self.dst_port,
            seq_number: self.seq_number,
            ack_number: self.ack_number,
            flags: self.flags,
            window_len: self.window_len,
            urgent_pointer: 0,
            options: TcpOptions {
                timestamp: Some((self.tsval, self.tsecr)),
                ..TcpOptions::default()
            },
        }
    }
}

impl TcpRepr {
    /// Parses a segment view: header length, options (malformed lengths are
    /// [`WireError::BadOption`]) and, unless `mode` is `Trust`, the checksum over
    /// the pseudo-header from `src`/`dst` and the whole buffer. The payload is
    /// `packet.payload()`.
    #[inline]
    pub fn parse<T: AsRef<[u8]>>(
        packet: &TcpPacket<T>,
        src: Ipv4Addr,
        dst: Ipv4Addr,
        mode: ChecksumMode,
    ) -> Result<Self, WireError> {
        packet.check_len()?;
        if mode == ChecksumMode::Verify && !packet.verify_checksum(src, dst) {
            return Err(WireError::BadChecksum);
        }
        Ok(TcpRepr {
            src_port: packet.src_port(),
            dst_port: packet.dst_port(),
            seq_number: packet.seq_number(),
            ack_number: packet.ack_number(),
            flags: packet.flags(),
            window_len: packet.window_len(),
            urgent_pointer: packet.urgent_pointer(),
            options: TcpOptions::parse(packet.options())?,
        })
    }

    /// Header length with options as [`Self::emit`] writes them (a multiple of 4,
    /// at most 60). SACK blocks that do not fit are dropped, see
    /// [`TcpOptions::emitted_sack_blocks`].
    #[inline]
    pub fn header_len(&self) -> usize {
        // The header of nearly every segment of a connection with timestamps, as
        // [`Self::emit`] writes it; the same check, shared when both are inlined.
        if self.options.timestamp_only().is_some() {
            return 32;
        }
        field::HEADER_LEN + self.options.emitted_len()
    }

    /// Writes the header and options at the start of the view's buffer, checksum
    /// field zero; returns the header length. The payload goes right after it.
    #[inline(always)]
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        packet: &mut TcpPacket<T>,
    ) -> Result<usize, WireError> {
        if let Some((tsval, tsecr)) = self.options.timestamp_only() {
            // The header of nearly every segment of a connection with timestamps: its
            // fixed 32-byte layout written in one go, no length to work out.
            let buf = packet
                .buffer
                .as_mut()
                .first_chunk_mut::<32>()
                .ok_or(WireError::Truncated)?;
            write_u16(buf, field::SRC_PORT.start, self.src_port);
            write_u16(buf, field::DST_PORT.start, self.dst_port);
            write_u32(buf, field::SEQ_NUM.start, self.seq_number);
            write_u32(buf, field::ACK_NUM.start, self.ack_number);
            buf[field::DATA_OFFSET] = (32 / 4) << 4;
            buf[field::FLAGS] = self.flags.0;
            write_u16(buf, field::WINDOW.start, self.window_len);
            write_u16(buf, field::CHECKSUM.start, 0);
            write_u16(buf, field::URGENT.start, self.urgent_pointer);
            buf[20..24].copy_from_slice(&TIMESTAMP_ONLY_PREFIX);
            write_u32(buf, 24, tsval);
            write_u32(buf, 28, tsecr);
            return Ok(32);
        }
        self.emit_any(packet)
    }

    /// [`Self::emit`] for any options, out of line.
    #[inline(never)]
    fn emit_any<T: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        packet: &mut TcpPacket<T>,
    ) -> Result<usize, WireError> {
        let header_len = self.header_len();
        let buf = packet
            .buffer
            .as_mut()
            .get_mut(..header_len)
            .ok_or(WireError::Truncated)?;
        let mut out = TcpPacket::new_unchecked(buf);
        out.set_src_port(self.src_port);
        out.set_dst_port(self.dst_port);
        out.set_seq_number(self.seq_number);
        out.set_ack_number(self.ack_number);
        out.set_header_len(header_len);
        out.set_flags(self.flags);
        out.set_window_len(self.window_len);
        out.set_checksum(0);
        out.set_urgent_pointer(self.urgent_pointer);
        self.options.emit(out.options_mut());
        Ok(header_len)
    }

    /// Writes header, a copy of `payload` and the checksum (unless offloaded) into
    /// `buf`; returns the segment length.
    pub fn emit_segment(
        &self,
        buf: &mut [u8],
        src: Ipv4Addr,
        dst: Ipv4Addr,
        payload: &[u8],
        tx: TxChecksum,
    ) -> Result<usize, WireError> {
        let header_len = self.header_len();
        let total = header_len + payload.len();
        let out = buf.get_mut(..total).ok_or(WireError::Truncated)?;
        self.emit(&mut TcpPacket::new_unchecked(&mut *out))?;
        out[header_len..].copy_from_slice(payload);
        if tx == TxChecksum::Compute {
            fill_checksum(out, src, dst)?;
        }
        Ok(total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SRC: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 1);
    const DST: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 2);

    /// A whole segment with its checksum, its header written by `emit`.
    fn segment(payload: &[u8], emit: impl FnOnce(&mut [u8]) -> usize) -> Vec<u8> {
        let mut buf = vec![0xa5; 60 + payload.len()];
        let header_len = emit(&mut buf);
        buf.truncate(header_len + payload.len());
        buf[header_len..].copy_from_slice(payload);
        fill_checksum(&mut buf, SRC, DST).unwrap();
        buf
    }

    proptest! {
        /// The direct writer of the output prediction's header writes the bytes the
        /// general writers write for the same header (both [`TcpRepr::emit`]'s branch for
        /// it and the option encoder of `emit_any`), checksum included, over every field
        /// (ECE/CWR among the flags) and payloads up to an MSS; and it parses back.
        #[test]
        fn timestamp_header_is_what_emit_writes(
            src_port: u16,
            dst_port: u16,
            seq_number: u32,
            ack_number: u32,
            flags: u8,
            window_len: u16,
            tsval: u32,
            tsecr: u32,
            payload in proptest::collection::vec(any::<u8>(), 0..=1460),
        ) {
            let h = TimestampHeader {
                src_port,
                dst_port,
                seq_number,
                ack_number,
                flags: TcpFlags(flags),
                window_len,
                tsval,
                tsecr,
            };
            let repr = h.to_repr();
            let direct = segment(&payload, |buf| {
                h.emit(buf.first_chunk_mut().unwrap());
                TimestampHeader::LEN
            });
            let general = segment(&payload, |buf| {
                repr.emit_any(&mut TcpPacket::new_unchecked(buf)).unwrap()
            });
            let emitted = segment(&payload, |buf| {
                repr.emit(&mut TcpPacket::new_unchecked(buf)).unwrap()
            });
            prop_assert_eq!(&direct, &general);
            prop_assert_eq!(&direct, &emitted);
            prop_assert_eq!(repr.header_len(), TimestampHeader::LEN);
            let packet = TcpPacket::new_checked(&direct[..]).unwrap();
            let parsed = TcpRepr::parse(&packet, SRC, DST, ChecksumMode::Verify).unwrap();
            prop_assert_eq!(parsed, repr);
            prop_assert_eq!(packet.payload(), &payload[..]);
        }
    }
}

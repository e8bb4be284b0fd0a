//! TCP header (RFC 9293 §3.1) and options (RFC 9293 §3.2, RFC 7323, RFC 2018).
//!
//! The owned types below are the contract between the wire layer and the TCP
//! state machine: [`TcpRepr`] is what `tcp` consumes on input and produces on
//! output. The payload is not part of the repr: on input it is a slice of the
//! received frame, on output the caller copies it straight into the TX frame.

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

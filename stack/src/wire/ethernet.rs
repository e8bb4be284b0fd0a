//! Ethernet II frames (IEEE 802.3 clause 3.2.6 type field) with an optional
//! IEEE 802.1Q VLAN tag.

use super::{WireError, read_u16, write_u16};
use core::fmt;

/// A 48-bit MAC address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, PartialOrd, Ord)]
pub struct EthernetAddress(pub [u8; 6]);

impl EthernetAddress {
    /// ff:ff:ff:ff:ff:ff.
    pub const BROADCAST: EthernetAddress = EthernetAddress([0xff; 6]);

    /// True for the broadcast address.
    pub fn is_broadcast(&self) -> bool {
        *self == Self::BROADCAST
    }

    /// True when the group bit is set (multicast, including broadcast).
    pub fn is_multicast(&self) -> bool {
        self.0[0] & 0x01 != 0
    }

    /// True for an individual (unicast) address.
    pub fn is_unicast(&self) -> bool {
        !self.is_multicast()
    }
}

impl fmt::Display for EthernetAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let b = self.0;
        write!(
            f,
            "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
            b[0], b[1], b[2], b[3], b[4], b[5]
        )
    }
}

/// The protocol carried by a frame (the inner type when VLAN-tagged).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EtherType {
    /// 0x0800.
    Ipv4,
    /// 0x0806.
    Arp,
    /// 0x86dd.
    Ipv6,
    /// Anything else (never 0x0800/0x0806/0x86dd).
    Unknown(u16),
}

impl From<u16> for EtherType {
    fn from(v: u16) -> Self {
        match v {
            0x0800 => EtherType::Ipv4,
            0x0806 => EtherType::Arp,
            0x86dd => EtherType::Ipv6,
            other => EtherType::Unknown(other),
        }
    }
}

impl From<EtherType> for u16 {
    fn from(t: EtherType) -> u16 {
        match t {
            EtherType::Ipv4 => 0x0800,
            EtherType::Arp => 0x0806,
            EtherType::Ipv6 => 0x86dd,
            EtherType::Unknown(v) => v,
        }
    }
}

/// The 802.1Q tag protocol identifier.
pub const TPID_8021Q: u16 = 0x8100;
/// The 802.1ad (QinQ) service tag identifier; stacked tags are not supported.
pub const TPID_8021AD: u16 = 0x88a8;

/// Byte ranges of the Ethernet header.
pub mod field {
    use core::ops::Range;
    /// Destination MAC.
    pub const DESTINATION: Range<usize> = 0..6;
    /// Source MAC.
    pub const SOURCE: Range<usize> = 6..12;
    /// EtherType, or the TPID of a VLAN tag.
    pub const ETHERTYPE: Range<usize> = 12..14;
    /// VLAN tag control information (only when tagged).
    pub const VLAN_TCI: Range<usize> = 14..16;
    /// Inner EtherType (only when tagged).
    pub const VLAN_ETHERTYPE: Range<usize> = 16..18;
    /// Untagged header length.
    pub const HEADER_LEN: usize = 14;
    /// Tagged header length.
    pub const VLAN_HEADER_LEN: usize = 18;
}

/// An 802.1Q tag: priority, drop eligibility, VLAN id.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct VlanTag {
    /// Priority code point, 0..=7.
    pub pcp: u8,
    /// Drop eligible indicator.
    pub dei: bool,
    /// VLAN identifier, 0..=4095.
    pub vid: u16,
}

impl VlanTag {
    /// Decodes a tag control information field.
    pub const fn from_tci(tci: u16) -> Self {
        VlanTag {
            pcp: (tci >> 13) as u8,
            dei: tci & 0x1000 != 0,
            vid: tci & 0x0fff,
        }
    }

    /// Encodes the tag control information field (out-of-range bits are masked).
    pub const fn tci(&self) -> u16 {
        ((self.pcp as u16 & 0x7) << 13) | ((self.dei as u16) << 12) | (self.vid & 0x0fff)
    }
}

/// A zero-copy view of an Ethernet II frame.
#[derive(Debug, Clone)]
pub struct EthernetFrame<T: AsRef<[u8]>> {
    buffer: T,
}

impl<T: AsRef<[u8]>> EthernetFrame<T> {
    /// Wraps a buffer without checking its length.
    pub const fn new_unchecked(buffer: T) -> Self {
        EthernetFrame { buffer }
    }

    /// Wraps a buffer, checking it holds the whole header (with its VLAN tag).
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        let frame = Self::new_unchecked(buffer);
        frame.check_len()?;
        Ok(frame)
    }

    /// Checks the buffer holds the header, including a VLAN tag if one is present.
    pub fn check_len(&self) -> Result<(), WireError> {
        let len = self.buffer.as_ref().len();
        if len < field::HEADER_LEN {
            return Err(WireError::Truncated);
        }
        if self.outer_ethertype() == TPID_8021Q && len < field::VLAN_HEADER_LEN {
            return Err(WireError::Truncated);
        }
        Ok(())
    }

    /// The buffer back.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Header length: 14, or 18 with a VLAN tag.
    pub fn header_len(&self) -> usize {
        if self.outer_ethertype() == TPID_8021Q {
            field::VLAN_HEADER_LEN
        } else {
            field::HEADER_LEN
        }
    }

    /// Destination MAC.
    pub fn dst_addr(&self) -> EthernetAddress {
        let mut a = [0u8; 6];
        a.copy_from_slice(&self.buffer.as_ref()[field::DESTINATION]);
        EthernetAddress(a)
    }

    /// Source MAC.
    pub fn src_addr(&self) -> EthernetAddress {
        let mut a = [0u8; 6];
        a.copy_from_slice(&self.buffer.as_ref()[field::SOURCE]);
        EthernetAddress(a)
    }

    /// The type field at offset 12 (a TPID when tagged).
    pub fn outer_ethertype(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::ETHERTYPE.start)
    }

    /// The VLAN tag, if the frame carries one.
    pub fn vlan_tag(&self) -> Option<VlanTag> {
        (self.outer_ethertype() == TPID_8021Q)
            .then(|| VlanTag::from_tci(read_u16(self.buffer.as_ref(), field::VLAN_TCI.start)))
    }

    /// The payload's EtherType (after the VLAN tag, if any), raw.
    pub fn ethertype_raw(&self) -> u16 {
        if self.outer_ethertype() == TPID_8021Q {
            read_u16(self.buffer.as_ref(), field::VLAN_ETHERTYPE.start)
        } else {
            self.outer_ethertype()
        }
    }

    /// The payload's EtherType.
    pub fn ethertype(&self) -> EtherType {
        EtherType::from(self.ethertype_raw())
    }

    /// Everything after the header (may include trailing Ethernet padding).
    pub fn payload(&self) -> &[u8] {
        &self.buffer.as_ref()[self.header_len()..]
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> EthernetFrame<T> {
    /// Sets the destination MAC.
    pub fn set_dst_addr(&mut self, addr: EthernetAddress) {
        self.buffer.as_mut()[field::DESTINATION].copy_from_slice(&addr.0);
    }

    /// Sets the source MAC.
    pub fn set_src_addr(&mut self, addr: EthernetAddress) {
        self.buffer.as_mut()[field::SOURCE].copy_from_slice(&addr.0);
    }

    /// Sets the type field at offset 12 (a TPID to tag the frame).
    pub fn set_outer_ethertype(&mut self, value: u16) {
        write_u16(self.buffer.as_mut(), field::ETHERTYPE.start, value);
    }

    /// Sets the VLAN tag control information (the frame must be tagged).
    pub fn set_vlan_tci(&mut self, tci: u16) {
        write_u16(self.buffer.as_mut(), field::VLAN_TCI.start, tci);
    }

    /// Sets the payload's EtherType, after the VLAN tag when tagged.
    pub fn set_ethertype(&mut self, ethertype: EtherType) {
        let at = if self.outer_ethertype() == TPID_8021Q {
            field::VLAN_ETHERTYPE.start
        } else {
            field::ETHERTYPE.start
        };
        write_u16(self.buffer.as_mut(), at, ethertype.into());
    }

    /// The payload, writable.
    pub fn payload_mut(&mut self) -> &mut [u8] {
        let at = self.header_len();
        &mut self.buffer.as_mut()[at..]
    }
}

/// An owned Ethernet header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct EthernetRepr {
    /// Source MAC.
    pub src_addr: EthernetAddress,
    /// Destination MAC.
    pub dst_addr: EthernetAddress,
    /// 802.1Q tag, if any.
    pub vlan: Option<VlanTag>,
    /// The payload's EtherType.
    pub ethertype: EtherType,
}

impl EthernetRepr {
    /// Parses a checked frame view.
    ///
    /// Stacked tags (QinQ) and 802.3 length-field frames (type < 0x0600) are
    /// [`WireError::Unsupported`].
    pub fn parse<T: AsRef<[u8]>>(frame: &EthernetFrame<T>) -> Result<Self, WireError> {
        frame.check_len()?;
        let raw = frame.ethertype_raw();
        if raw < 0x0600
            || raw == TPID_8021Q
            || raw == TPID_8021AD
            || frame.outer_ethertype() == TPID_8021AD
        {
            return Err(WireError::Unsupported);
        }
        Ok(EthernetRepr {
            src_addr: frame.src_addr(),
            dst_addr: frame.dst_addr(),
            vlan: frame.vlan_tag(),
            ethertype: EtherType::from(raw),
        })
    }

    /// Header length this repr emits: 14, or 18 with a VLAN tag.
    pub const fn header_len(&self) -> usize {
        if self.vlan.is_some() {
            field::VLAN_HEADER_LEN
        } else {
            field::HEADER_LEN
        }
    }

    /// Writes an untagged header (the per-frame TX path): the bytes [`Self::emit`]
    /// writes for a repr without a VLAN tag.
    #[inline]
    pub fn emit_untagged(
        out: &mut [u8; field::HEADER_LEN],
        dst: EthernetAddress,
        src: EthernetAddress,
        ethertype: EtherType,
    ) {
        let (macs, kind) = out.split_at_mut(12);
        macs[..6].copy_from_slice(&dst.0);
        macs[6..].copy_from_slice(&src.0);
        kind.copy_from_slice(&u16::from(ethertype).to_be_bytes());
    }

    /// Writes the header at the start of `frame`'s buffer.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        frame: &mut EthernetFrame<T>,
    ) -> Result<(), WireError> {
        if frame.buffer.as_ref().len() < self.header_len() {
            return Err(WireError::Truncated);
        }
        frame.set_dst_addr(self.dst_addr);
        frame.set_src_addr(self.src_addr);
        match self.vlan {
            Some(tag) => {
                frame.set_outer_ethertype(TPID_8021Q);
                frame.set_vlan_tci(tag.tci());
            }
            None => frame.set_outer_ethertype(0),
        }
        frame.set_ethertype(self.ethertype);
        Ok(())
    }
}

//! ARP for Ethernet / IPv4 (RFC 826).

use super::{EthernetAddress, WireError, read_u16, write_u16};
use core::net::Ipv4Addr;

/// Byte ranges of an Ethernet/IPv4 ARP packet.
pub mod field {
    use core::ops::Range;
    /// Hardware type (1 = Ethernet).
    pub const HTYPE: Range<usize> = 0..2;
    /// Protocol type (0x0800 = IPv4).
    pub const PTYPE: Range<usize> = 2..4;
    /// Hardware address length.
    pub const HLEN: usize = 4;
    /// Protocol address length.
    pub const PLEN: usize = 5;
    /// Operation.
    pub const OPER: Range<usize> = 6..8;
    /// Sender hardware address.
    pub const SHA: Range<usize> = 8..14;
    /// Sender protocol address.
    pub const SPA: Range<usize> = 14..18;
    /// Target hardware address.
    pub const THA: Range<usize> = 18..24;
    /// Target protocol address.
    pub const TPA: Range<usize> = 24..28;
    /// Length of an Ethernet/IPv4 ARP packet.
    pub const PACKET_LEN: usize = 28;
}

/// ARP operation (RFC 826).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ArpOperation {
    /// 1: who has.
    Request,
    /// 2: is at.
    Reply,
}

/// A zero-copy view of an Ethernet/IPv4 ARP packet.
#[derive(Debug, Clone)]
pub struct ArpPacket<T: AsRef<[u8]>> {
    buffer: T,
}

fn addr4(b: &[u8]) -> Ipv4Addr {
    Ipv4Addr::new(b[0], b[1], b[2], b[3])
}

fn mac(b: &[u8]) -> EthernetAddress {
    let mut a = [0u8; 6];
    a.copy_from_slice(&b[..6]);
    EthernetAddress(a)
}

impl<T: AsRef<[u8]>> ArpPacket<T> {
    /// Wraps a buffer without checking its length.
    pub const fn new_unchecked(buffer: T) -> Self {
        ArpPacket { buffer }
    }

    /// Wraps a buffer, checking it holds a 28-byte Ethernet/IPv4 ARP packet.
    pub fn new_checked(buffer: T) -> Result<Self, WireError> {
        let p = Self::new_unchecked(buffer);
        p.check_len()?;
        Ok(p)
    }

    /// Checks the buffer is long enough for every accessor.
    pub fn check_len(&self) -> Result<(), WireError> {
        if self.buffer.as_ref().len() < field::PACKET_LEN {
            Err(WireError::Truncated)
        } else {
            Ok(())
        }
    }

    /// The buffer back.
    pub fn into_inner(self) -> T {
        self.buffer
    }

    /// Hardware type.
    pub fn hardware_type(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::HTYPE.start)
    }

    /// Protocol type.
    pub fn protocol_type(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::PTYPE.start)
    }

    /// Hardware address length.
    pub fn hardware_len(&self) -> u8 {
        self.buffer.as_ref()[field::HLEN]
    }

    /// Protocol address length.
    pub fn protocol_len(&self) -> u8 {
        self.buffer.as_ref()[field::PLEN]
    }

    /// Operation code, raw.
    pub fn operation(&self) -> u16 {
        read_u16(self.buffer.as_ref(), field::OPER.start)
    }

    /// Sender hardware address.
    pub fn source_hardware_addr(&self) -> EthernetAddress {
        mac(&self.buffer.as_ref()[field::SHA])
    }

    /// Sender protocol address.
    pub fn source_protocol_addr(&self) -> Ipv4Addr {
        addr4(&self.buffer.as_ref()[field::SPA])
    }

    /// Target hardware address.
    pub fn target_hardware_addr(&self) -> EthernetAddress {
        mac(&self.buffer.as_ref()[field::THA])
    }

    /// Target protocol address.
    pub fn target_protocol_addr(&self) -> Ipv4Addr {
        addr4(&self.buffer.as_ref()[field::TPA])
    }
}

impl<T: AsRef<[u8]> + AsMut<[u8]>> ArpPacket<T> {
    /// Sets hardware type, protocol type and both lengths for Ethernet/IPv4.
    pub fn set_ethernet_ipv4(&mut self) {
        let b = self.buffer.as_mut();
        write_u16(b, field::HTYPE.start, 1);
        write_u16(b, field::PTYPE.start, 0x0800);
        b[field::HLEN] = 6;
        b[field::PLEN] = 4;
    }

    /// Sets the operation code.
    pub fn set_operation(&mut self, op: u16) {
        write_u16(self.buffer.as_mut(), field::OPER.start, op);
    }

    /// Sets the sender hardware address.
    pub fn set_source_hardware_addr(&mut self, a: EthernetAddress) {
        self.buffer.as_mut()[field::SHA].copy_from_slice(&a.0);
    }

    /// Sets the sender protocol address.
    pub fn set_source_protocol_addr(&mut self, a: Ipv4Addr) {
        self.buffer.as_mut()[field::SPA].copy_from_slice(&a.octets());
    }

    /// Sets the target hardware address.
    pub fn set_target_hardware_addr(&mut self, a: EthernetAddress) {
        self.buffer.as_mut()[field::THA].copy_from_slice(&a.0);
    }

    /// Sets the target protocol address.
    pub fn set_target_protocol_addr(&mut self, a: Ipv4Addr) {
        self.buffer.as_mut()[field::TPA].copy_from_slice(&a.octets());
    }
}

/// An owned Ethernet/IPv4 ARP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ArpRepr {
    /// Request or reply.
    pub operation: ArpOperation,
    /// Sender MAC.
    pub source_hardware_addr: EthernetAddress,
    /// Sender IPv4 address.
    pub source_protocol_addr: Ipv4Addr,
    /// Target MAC (zero in requests).
    pub target_hardware_addr: EthernetAddress,
    /// Target IPv4 address.
    pub target_protocol_addr: Ipv4Addr,
}

impl ArpRepr {
    /// Parses a view; anything but Ethernet/IPv4 request/reply is
    /// [`WireError::Unsupported`].
    pub fn parse<T: AsRef<[u8]>>(packet: &ArpPacket<T>) -> Result<Self, WireError> {
        packet.check_len()?;
        // RFC 826: check hardware and protocol type and address lengths.
        if packet.hardware_type() != 1
            || packet.protocol_type() != 0x0800
            || packet.hardware_len() != 6
            || packet.protocol_len() != 4
        {
            return Err(WireError::Unsupported);
        }
        let operation = match packet.operation() {
            1 => ArpOperation::Request,
            2 => ArpOperation::Reply,
            _ => return Err(WireError::Unsupported),
        };
        Ok(ArpRepr {
            operation,
            source_hardware_addr: packet.source_hardware_addr(),
            source_protocol_addr: packet.source_protocol_addr(),
            target_hardware_addr: packet.target_hardware_addr(),
            target_protocol_addr: packet.target_protocol_addr(),
        })
    }

    /// Bytes `emit` writes: 28.
    pub const fn buffer_len(&self) -> usize {
        field::PACKET_LEN
    }

    /// Writes the packet into the view's buffer.
    pub fn emit<T: AsRef<[u8]> + AsMut<[u8]>>(
        &self,
        packet: &mut ArpPacket<T>,
    ) -> Result<(), WireError> {
        packet.check_len()?;
        packet.set_ethernet_ipv4();
        packet.set_operation(match self.operation {
            ArpOperation::Request => 1,
            ArpOperation::Reply => 2,
        });
        packet.set_source_hardware_addr(self.source_hardware_addr);
        packet.set_source_protocol_addr(self.source_protocol_addr);
        packet.set_target_hardware_addr(self.target_hardware_addr);
        packet.set_target_protocol_addr(self.target_protocol_addr);
        Ok(())
    }
}

//! Wire formats: zero-copy `Packet<T>` views and owned `Repr`s with `parse` / `emit`.
//!
//! Every header follows the smoltcp shape: a `mod field` of byte ranges, a
//! `new_checked` that validates lengths once so accessors never panic, setters for
//! `T: AsMut<[u8]>`, and a `Repr` that parses from and emits into a view.
//! `new_unchecked` views skip the length check; their accessors may panic on a
//! short buffer, so parsing code always goes through `new_checked`.
//!
//! Every `parse` returns `Ok` or a [`WireError`] saying what is wrong; none panics
//! or allocates, whatever the input. [`frame::parse_frame`] parses a whole
//! Ethernet frame the way the stack does.
//!
//! ```
//! use surge_stack::wire::{ChecksumMode, frame::{self, Network, Transport}};
//! # let bytes = [0u8; 10];
//! match frame::parse_frame(&bytes, ChecksumMode::Verify) {
//!     Ok(f) => { let _ = f.network; }
//!     Err(e) => println!("dropped: {e}"),
//! }
//! ```

pub mod arp;
pub mod error;
pub mod ethernet;
pub mod frame;
pub mod icmpv4;
pub mod ipv4;
pub mod tcp;
mod tcp_options;
pub mod tuple;
pub mod udp;

pub use arp::{ArpOperation, ArpPacket, ArpRepr};
pub use error::WireError;
pub use ethernet::{EtherType, EthernetAddress, EthernetFrame, EthernetRepr, VlanTag};
pub use icmpv4::{DstUnreachable, Icmpv4Packet, Icmpv4Repr, TimeExceeded};
pub use ipv4::{IpProtocol, Ipv4Options, Ipv4Packet, Ipv4Repr};
pub use tcp::{SackBlocks, TcpFlags, TcpOptions, TcpPacket, TcpRepr};
pub use tuple::FourTuple;
pub use udp::{UdpPacket, UdpRepr};

/// Whether received checksums are verified.
///
/// `Trust` is for devices whose RX checksum offload already validated the frame
/// (the datapath reports it); everything else must use `Verify`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ChecksumMode {
    /// Verify every checksum (IPv4 header, ICMP, UDP, TCP); a mismatch is an error.
    #[default]
    Verify,
    /// Skip verification: the device validated the checksums.
    Trust,
}

/// Whether `emit` computes checksums or leaves them to TX offload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum TxChecksum {
    /// Compute and write the checksum.
    #[default]
    Compute,
    /// Leave the field to the device: `emit` writes zero there; the engine's
    /// output path then writes the pseudo-header sum and asks the device to
    /// complete it (`surge_datapath::Device::request_tx_checksum`).
    Offload,
}

/// Reads a big-endian u16 at `at`; the caller has checked the length.
#[inline]
pub(crate) fn read_u16(buf: &[u8], at: usize) -> u16 {
    u16::from_be_bytes([buf[at], buf[at + 1]])
}

/// Reads a big-endian u32 at `at`; the caller has checked the length.
#[inline]
pub(crate) fn read_u32(buf: &[u8], at: usize) -> u32 {
    u32::from_be_bytes([buf[at], buf[at + 1], buf[at + 2], buf[at + 3]])
}

/// Writes a big-endian u16 at `at`; the caller has checked the length.
#[inline]
pub(crate) fn write_u16(buf: &mut [u8], at: usize, value: u16) {
    buf[at..at + 2].copy_from_slice(&value.to_be_bytes());
}

/// Writes a big-endian u32 at `at`; the caller has checked the length.
#[inline]
pub(crate) fn write_u32(buf: &mut [u8], at: usize, value: u32) {
    buf[at..at + 4].copy_from_slice(&value.to_be_bytes());
}

//! TX checksum offload: what a device does with a checksum request, the AF_XDP
//! TX metadata layout that carries the request to the kernel, and the software
//! completion the pipe device (and any fallback) uses.
//!
//! # The request
//!
//! A request is Linux's `CHECKSUM_PARTIAL` contract: the stack writes the
//! transport header with the checksum field holding the *pseudo-header sum*
//! (folded, not complemented) and asks the device to complete it: the
//! one's-complement sum of every byte from `csum_start` to the end of the frame,
//! complemented, written at `csum_start + csum_offset`.
//!
//! # How AF_XDP carries it (Linux 6.8+, `Documentation/networking/xsk-tx-metadata.rst`)
//!
//! The UMEM is registered with `tx_metadata_len` (and, from 6.11, the
//! `XDP_UMEM_TX_METADATA_LEN` flag, without which the length is ignored); a
//! descriptor with `XDP_TX_METADATA` in `options` has a `struct
//! xsk_tx_metadata` right before its packet: `flags` (u64, here
//! `XDP_TXMD_FLAGS_CHECKSUM`), then `csum_start` and `csum_offset` (u16 each,
//! relative to the packet start).
//!
//! - Copy mode: `xsk_build_skb` (`net/xdp/xsk.c`) calls `xsk_skb_metadata`,
//!   which turns the request into a `CHECKSUM_PARTIAL` skb; `__dev_direct_xmit`
//!   then runs `validate_xmit_skb`, so the NIC completes the checksum when it
//!   has the feature and the kernel does it in software (`skb_checksum_help`)
//!   when it does not. This works on every driver, veth included, and is not
//!   advertised: the netdev `xsk-features` attribute only reports drivers'
//!   zero-copy `xsk_tx_metadata_ops` (`net/core/netdev-genl.c`).
//! - Zero-copy: the driver reads the request itself, only when it implements
//!   `tmo_request_checksum`, i.e. when `xsk-features` has `tx-checksum`.
//!   Otherwise the request would be silently ignored, so surge does not use it.
//!
//! A large frame (a packet longer than one UMEM frame, sent as a descriptor
//! chain) keeps its request beside its buffer; the port writes it in front of
//! the chain's first descriptor, which is where the kernel reads it: copy
//! mode's `xsk_build_skb` calls `xsk_skb_metadata` for a packet's first
//! descriptor only, checks the request against that descriptor's length, and
//! the `CHECKSUM_PARTIAL` skb it builds then covers every fragment. A request
//! whose field lies beyond the first part (never for TCP or UDP over IPv4) is
//! completed in software instead (`chain::write_tx_chain`).
//!
//! A bad request (`csum_start + csum_offset + 2 > len`) makes the copy-mode
//! kernel refuse the descriptor with `EINVAL` and leave it at the head of the
//! TX ring, which would stall the ring: the port re-checks every request
//! against the frame's final length before submitting it.

/// Bytes reserved in front of every packet for `struct xsk_tx_metadata`
/// (`flags` u64 + the 16-byte request/completion union of Linux 6.14+; 6.8
/// had a 16-byte struct with the same leading fields). A multiple of 8, as the
/// kernel requires.
pub const TX_METADATA_LEN: u32 = 24;

/// `XDP_TXMD_FLAGS_CHECKSUM` of `linux/if_xdp.h`.
pub(crate) const XDP_TXMD_FLAGS_CHECKSUM: u64 = 1 << 1;
/// `XDP_TX_METADATA`: the descriptor option saying metadata precedes the packet.
pub(crate) const XDP_TX_METADATA: u32 = 1 << 1;
/// `XDP_UMEM_TX_METADATA_LEN` (Linux 6.11+): the UMEM registration flag that
/// makes the kernel honour `tx_metadata_len`.
pub(crate) const XDP_UMEM_TX_METADATA_LEN: u32 = 1 << 2;

/// Whether a device completes transport checksums on transmit, and how, or why not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxChecksumOffload {
    /// AF_XDP copy mode with TX metadata: the kernel's generic transmit path
    /// turns each request into a `CHECKSUM_PARTIAL` skb, completed by the NIC
    /// if it can, by the kernel otherwise.
    CopyMode,
    /// AF_XDP zero-copy with a driver that advertises the `tx-checksum` xsk feature.
    Driver,
    /// The device completes requests in software when it sends (the pipe device
    /// built with offload on, to exercise the stack's offload path).
    Software,
    /// No offload: the stack must write complete checksums.
    Off(TxChecksumOff),
}

impl TxChecksumOffload {
    /// Whether requests are honoured (the stack may leave checksums partial).
    pub fn is_on(self) -> bool {
        !matches!(self, Self::Off(_))
    }
}

/// Why a device has no TX checksum offload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TxChecksumOff {
    /// Not asked for (the port or pipe configuration turned it off).
    NotRequested,
    /// The kernel refused a UMEM with TX metadata (`XDP_UMEM_TX_METADATA_LEN`
    /// is Linux 6.11+): it would ignore the requests.
    KernelLacksTxMetadata,
    /// Zero-copy on a driver without the `tx-checksum` xsk feature: it would
    /// ignore the requests.
    DriverLacksTxChecksum,
}

/// Whether a request for `(start, offset)` fits a packet of `len` bytes (the
/// kernel's own check in `xsk_skb_metadata`).
#[inline]
pub(crate) fn request_fits(start: u16, offset: u16, len: usize) -> bool {
    usize::from(start) + usize::from(offset) + 2 <= len
}

/// Completes a partial checksum in software, as `skb_checksum_help` does: the
/// field at `start + offset` holds the pseudo-header sum; the complemented
/// one's-complement sum of `packet[start..]` replaces it (a zero result is
/// written as `0xffff`, which UDP needs and TCP accepts). `false` (nothing
/// written) if the request does not fit the packet.
pub fn complete_partial_checksum(packet: &mut [u8], start: u16, offset: u16) -> bool {
    if !request_fits(start, offset, packet.len()) {
        return false;
    }
    let at = usize::from(start) + usize::from(offset);
    let mut sum: u64 = 0;
    let mut words = packet[usize::from(start)..].chunks_exact(2);
    for word in &mut words {
        sum += u64::from(u16::from_be_bytes([word[0], word[1]]));
    }
    if let [last] = words.remainder() {
        sum += u64::from(u16::from_be_bytes([*last, 0]));
    }
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    let checksum = match !(sum as u16) {
        0 => 0xffff,
        c => c,
    };
    packet[at..at + 2].copy_from_slice(&checksum.to_be_bytes());
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 1071 over `data` (the reference).
    fn internet_checksum(data: &[u8]) -> u16 {
        let mut sum: u32 = data
            .chunks(2)
            .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
            .sum();
        while sum >> 16 != 0 {
            sum = (sum & 0xffff) + (sum >> 16);
        }
        !(sum as u16)
    }

    /// A UDP datagram (8-byte header + payload) after a 34-byte Ethernet + IPv4
    /// prefix, its checksum field holding the pseudo-header sum.
    fn partial_udp(payload: &[u8]) -> (Vec<u8>, [u8; 12]) {
        let src = [198, 18, 0, 1];
        let dst = [198, 18, 0, 2];
        let udp_len = (8 + payload.len()) as u16;
        let mut pseudo = [0u8; 12];
        pseudo[..4].copy_from_slice(&src);
        pseudo[4..8].copy_from_slice(&dst);
        pseudo[9] = 17;
        pseudo[10..12].copy_from_slice(&udp_len.to_be_bytes());
        let pseudo_sum = !internet_checksum(&pseudo);
        let mut frame = vec![0xee; 34];
        frame.extend_from_slice(&1234u16.to_be_bytes());
        frame.extend_from_slice(&5678u16.to_be_bytes());
        frame.extend_from_slice(&udp_len.to_be_bytes());
        frame.extend_from_slice(&pseudo_sum.to_be_bytes());
        frame.extend_from_slice(payload);
        (frame, pseudo)
    }

    #[test]
    fn completion_matches_a_full_software_checksum() {
        for len in [0usize, 1, 2, 17, 64, 1472] {
            let payload: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
            let (mut frame, pseudo) = partial_udp(&payload);
            assert!(complete_partial_checksum(&mut frame, 34, 6));
            // The receiver's check: pseudo-header + datagram sums to 0xffff.
            let mut whole = pseudo.to_vec();
            whole.extend_from_slice(&frame[34..]);
            let verify = internet_checksum(&whole);
            assert!(verify == 0 || verify == 0xffff, "len {len}: {verify:#x}");
            assert_eq!(
                &frame[..34],
                &[0xee; 34],
                "bytes before csum_start untouched"
            );
        }
    }

    #[test]
    fn a_zero_result_is_sent_as_all_ones() {
        // A field value that makes the complemented sum zero: sum 0xffff.
        let mut packet = vec![0u8; 8];
        packet[6..8].copy_from_slice(&0xffffu16.to_be_bytes());
        assert!(complete_partial_checksum(&mut packet, 0, 6));
        assert_eq!(&packet[6..8], &[0xff, 0xff]);
    }

    #[test]
    fn requests_past_the_end_are_refused_untouched() {
        let mut packet = vec![1u8; 40];
        assert!(!complete_partial_checksum(&mut packet, 34, 5));
        assert!(!complete_partial_checksum(&mut packet, 40, 0));
        assert!(!complete_partial_checksum(&mut packet, u16::MAX, u16::MAX));
        assert_eq!(packet, vec![1u8; 40]);
        assert!(request_fits(34, 4, 40));
        assert!(!request_fits(34, 5, 40));
    }
}

//! The wire layer's error: what is wrong with a frame, for drop counters.

/// Why a frame could not be parsed or a header could not be emitted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum WireError {
    /// The buffer is shorter than the header or than a length field says.
    #[error("truncated: buffer shorter than the header or its length field")]
    Truncated,
    /// The IP version field is not 4.
    #[error("bad IP version")]
    BadVersion,
    /// A header length field is below the minimum (IPv4 IHL < 5, TCP offset < 5).
    #[error("bad header length")]
    BadHeaderLen,
    /// A total/datagram length field is inconsistent (shorter than its header, or
    /// too large to emit).
    #[error("bad length field")]
    BadLength,
    /// A checksum does not verify.
    #[error("bad checksum")]
    BadChecksum,
    /// An IPv4 or TCP option is malformed (length byte missing, too small, past
    /// the header, or wrong for its kind).
    #[error("malformed option")]
    BadOption,
    /// Well-formed, but not something surge handles (ethertype, ARP hardware or
    /// protocol type, ICMP type, stacked VLAN tags, 802.3 length frames).
    #[error("unsupported protocol or type")]
    Unsupported,
}

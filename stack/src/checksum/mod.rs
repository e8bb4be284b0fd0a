//! The Internet checksum (RFC 1071), the IPv4 pseudo-header sum and incremental
//! updates (RFC 1624).
//!
//! All sums here are one's-complement sums of big-endian 16-bit words, folded to
//! 16 bits and *not* complemented; [`checksum`] complements. A sum is the value
//! you would write with `u16::to_be_bytes`.
//!
//! Three implementations compute the same sum: a portable [`scalar`] path and, on
//! x86_64, SSE2 and AVX2 paths in the fenced `simd` module (the only `unsafe` in
//! this crate). [`sum`] uses the fastest one this CPU supports; the choice is made
//! once, on first use, by runtime CPU detection and cached. [`sum_with`] runs a
//! chosen path, for tests and benchmarks.
//!
//! ```
//! use surge_stack::checksum;
//! // RFC 1071 §3 example: words 0001 f203 f4f5 f6f7 sum to ddf2.
//! let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
//! assert_eq!(checksum::sum(&data), 0xddf2);
//! assert_eq!(checksum::checksum(&data), !0xddf2);
//! ```

use core::net::Ipv4Addr;
use std::sync::OnceLock;

pub mod scalar;
mod simd;

/// One implementation of the one's-complement sum.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SumPath {
    /// Portable 64-bit word loop; runs everywhere.
    Scalar,
    /// x86_64 SSE2, 128-bit lanes.
    Sse2,
    /// x86_64 AVX2, 256-bit lanes.
    Avx2,
}

impl SumPath {
    /// Every path, slowest first.
    pub const ALL: [SumPath; 3] = [SumPath::Scalar, SumPath::Sse2, SumPath::Avx2];

    /// True when this CPU can run the path.
    pub fn is_available(self) -> bool {
        match self {
            SumPath::Scalar => true,
            SumPath::Sse2 => simd::has_sse2(),
            SumPath::Avx2 => simd::has_avx2(),
        }
    }
}

/// The path [`sum`] uses on this CPU, chosen once by runtime detection.
pub fn selected_path() -> SumPath {
    selected().0
}

/// An unfolded native-word sum function, as the dispatcher stores it.
pub(crate) type SumFn = fn(&[u8]) -> u64;

fn selected() -> &'static (SumPath, SumFn) {
    static SELECTED: OnceLock<(SumPath, SumFn)> = OnceLock::new();
    SELECTED.get_or_init(|| simd::select().unwrap_or((SumPath::Scalar, scalar::sum_native)))
}

/// Folds a 64-bit one's-complement accumulator of native-endian words to 16 bits,
/// still native-endian: 64 -> 32 -> 16 with end-around carries (RFC 1071 §2
/// (1)-(2)), one add and one carry-in each. Zero only when `acc` is.
#[inline]
pub(crate) fn fold16(acc: u64) -> u16 {
    let (s, c) = (acc as u32).overflowing_add((acc >> 32) as u32);
    // When the add carries its sum is at most 2^32 - 2: the carry-in cannot wrap.
    let s = s + u32::from(c);
    let (t, c) = (s as u16).overflowing_add((s >> 16) as u16);
    t + u16::from(c)
}

/// Folds a 64-bit one's-complement accumulator of native-endian words into the
/// 16-bit big-endian sum.
#[inline]
pub(crate) fn fold_native(acc: u64) -> u16 {
    // RFC 1071 §2 (B): the sum of native words is the byte-swapped sum of
    // big-endian words.
    u16::from_be(fold16(acc))
}

/// True when a 64-bit accumulator holding a checksummed buffer (its checksum
/// field included) verifies: the sum is all ones (RFC 1071 §1, "negative zero";
/// byte order does not matter for it).
#[inline]
pub(crate) fn verifies(acc: u64) -> bool {
    fold16(acc) == 0xffff
}

/// Adds `data` (at an even offset of the summed buffer) to the 64-bit
/// one's-complement accumulator `acc` of native-endian words, by the fastest
/// path for its length: the caller folds once at the end.
///
/// Inlined: a short buffer costs its words and no call, and a fixed-size one
/// (an IPv4 header) compiles to straight-line adds; the SIMD dispatch stays out
/// of line.
#[inline(always)]
pub(crate) fn add_native(acc: u64, data: &[u8]) -> u64 {
    if data.len() < SIMD_MIN_LEN {
        return scalar::add_native(acc, data);
    }
    add_native_dispatched(acc, data)
}

/// [`add_native`] for a buffer long enough for the SIMD path.
#[cold]
#[inline(never)]
fn add_native_dispatched(acc: u64, data: &[u8]) -> u64 {
    scalar::add_carry(acc, (selected().1)(data))
}

/// The IPv4 pseudo-header (RFC 9293 §3.1, RFC 768) as a 64-bit accumulator of
/// native-endian words, ready for [`add_native`] to add the segment to: no fold
/// until the very end.
#[inline]
pub(crate) fn pseudo_header_ipv4_native(
    src: Ipv4Addr,
    dst: Ipv4Addr,
    protocol: u8,
    length: u16,
) -> u64 {
    // The words as they lie in memory: the addresses' octets, then zero and
    // the protocol, then the length, all big-endian. Each 32-bit address is
    // congruent to the sum of its 16-bit halves modulo 0xffff (RFC 1071 §2
    // (C)); the total is below 2^35, no carry to lose. (Built from one array
    // through `pseudo_header_ipv4_native_at`, it cost 13 instructions more per
    // echo.)
    u64::from(u32::from_ne_bytes(src.octets()))
        + u64::from(u32::from_ne_bytes(dst.octets()))
        + u64::from(u16::from_ne_bytes([0, protocol]))
        + u64::from(u16::from_ne_bytes(length.to_be_bytes()))
}

/// [`pseudo_header_ipv4_native`] with the source and destination addresses as
/// they lie in an IPv4 header (bytes 12..20): one 64-bit load, no byte swap.
#[inline]
pub(crate) fn pseudo_header_ipv4_native_at(addresses: &[u8; 8], protocol: u8, length: u16) -> u64 {
    let rest = u64::from(u16::from_ne_bytes([0, protocol]))
        + u64::from(u16::from_ne_bytes(length.to_be_bytes()));
    scalar::add_carry(u64::from_ne_bytes(*addresses), rest)
}

/// Shortest buffer [`sum`] hands to the SIMD path.
pub const SIMD_MIN_LEN: usize = 128;

/// One's-complement sum of `data` as big-endian 16-bit words (an odd last byte is
/// padded with zero), folded, not complemented. Uses the fastest path available.
///
/// Buffers shorter than [`SIMD_MIN_LEN`] (IPv4 headers, pseudo-headers, bare
/// ACKs) take the inlined scalar path: for them the call into the SIMD code and
/// its final reduction cost more than the vectors save (measured by
/// `bench/benches/checksum.rs`: scalar wins at 64 bytes, AVX2 at 576).
#[inline(always)]
pub fn sum(data: &[u8]) -> u16 {
    fold_native(add_native(0, data))
}

/// The Internet checksum of `data`: the complement of [`sum`].
#[inline]
pub fn checksum(data: &[u8]) -> u16 {
    !sum(data)
}

/// [`sum`] computed by a chosen path; `None` when this CPU cannot run it.
pub fn sum_with(path: SumPath, data: &[u8]) -> Option<u16> {
    match path {
        SumPath::Scalar => Some(scalar::sum(data)),
        SumPath::Sse2 => simd::sum_sse2(data),
        SumPath::Avx2 => simd::sum_avx2(data),
    }
}

/// One's-complement addition of two folded sums.
#[inline]
pub const fn add(a: u16, b: u16) -> u16 {
    let s = a as u32 + b as u32;
    ((s & 0xffff) + (s >> 16)) as u16
}

/// One's-complement sum of several folded sums.
#[inline]
pub fn combine(sums: &[u16]) -> u16 {
    sums.iter().fold(0, |acc, &s| add(acc, s))
}

/// The IPv4 pseudo-header sum (RFC 9293 §3.1, RFC 768) for a transport segment of
/// `length` bytes (header + payload) carrying `protocol`.
#[inline]
pub fn pseudo_header_ipv4(src: Ipv4Addr, dst: Ipv4Addr, protocol: u8, length: u16) -> u16 {
    fold_native(pseudo_header_ipv4_native(src, dst, protocol, length))
}

/// Incrementally updates checksum `checksum` after a 16-bit field changed from
/// `old` to `new`.
///
/// RFC 1624 §3 eqn. 3: `HC' = ~(~HC + ~m + m')`, which avoids the `-0` trap of
/// RFC 1141's eqn. 2.
#[inline]
pub const fn update(checksum: u16, old: u16, new: u16) -> u16 {
    !add(add(!checksum, !old), new)
}

/// [`update`] for a 32-bit field (an address, a sequence number).
#[inline]
pub const fn update_u32(checksum: u16, old: u32, new: u32) -> u16 {
    let c = update(checksum, (old >> 16) as u16, (new >> 16) as u16);
    update(c, old as u16, new as u16)
}

/// An accumulator for a sum over data split in pieces (a header and a payload in
/// different buffers), without copying. Pieces of odd length are handled: the
/// next piece continues at the odd byte position (RFC 1071 §2 (B), byte swapping).
///
/// ```
/// use surge_stack::checksum::{self, Accumulator};
/// let data = [1u8, 2, 3, 4, 5, 6, 7];
/// let mut acc = Accumulator::new();
/// acc.add_bytes(&data[..3]);
/// acc.add_bytes(&data[3..]);
/// assert_eq!(acc.sum(), checksum::sum(&data));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Accumulator {
    sum: u16,
    odd: bool,
}

impl Accumulator {
    /// An empty sum.
    pub const fn new() -> Self {
        Accumulator { sum: 0, odd: false }
    }

    /// Starts from an already folded sum (a pseudo-header sum, say). The next byte
    /// is taken to be at an even position.
    pub const fn from_sum(sum: u16) -> Self {
        Accumulator { sum, odd: false }
    }

    /// Adds the next piece of data.
    #[inline]
    pub fn add_bytes(&mut self, piece: &[u8]) -> &mut Self {
        let s = sum(piece);
        // A piece starting at an odd position contributes its byte-swapped sum.
        let s = if self.odd { s.swap_bytes() } else { s };
        self.sum = add(self.sum, s);
        self.odd ^= piece.len() % 2 == 1;
        self
    }

    /// Adds a folded 16-bit sum computed elsewhere; only valid at an even position.
    #[inline]
    pub fn add_sum(&mut self, other: u16) -> &mut Self {
        let s = if self.odd { other.swap_bytes() } else { other };
        self.sum = add(self.sum, s);
        self
    }

    /// The folded sum so far.
    #[inline]
    pub const fn sum(&self) -> u16 {
        self.sum
    }

    /// The checksum (complement of the sum) so far.
    #[inline]
    pub const fn checksum(&self) -> u16 {
        !self.sum
    }
}

/// Sum of data split into `pieces`, as if they were contiguous.
pub fn sum_pieces(pieces: &[&[u8]]) -> u16 {
    let mut acc = Accumulator::new();
    for piece in pieces {
        acc.add_bytes(piece);
    }
    acc.sum()
}

#[cfg(test)]
mod tests;

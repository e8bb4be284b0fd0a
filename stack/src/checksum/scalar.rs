//! The portable one's-complement sum: 64-bit native words, each split into two
//! 32-bit halves added into 64-bit accumulators so no carry is lost (RFC 1071 §2
//! (C), deferred carries).

/// Unfolded sum of `data` as native-endian words, for the dispatcher.
///
/// 64-bit words added with their carries counted apart (an `add`/`adc` pair per
/// word): a carry out of bit 63 is worth 2^64, which is 1 modulo 0xffff, all the
/// fold keeps. The result, folded once to 33 bits plus the carry count, leaves
/// room for the tail's words.
#[inline]
pub(crate) fn sum_native(data: &[u8]) -> u64 {
    let mut acc: u64 = 0;
    let mut carries: u64 = 0;
    let mut words = data.chunks_exact(8);
    for w in &mut words {
        let w = u64::from_ne_bytes(w.try_into().unwrap_or([0; 8]));
        let (sum, carry) = acc.overflowing_add(w);
        acc = sum;
        carries += u64::from(carry);
    }
    sum_tail(
        words.remainder(),
        (acc & 0xffff_ffff) + (acc >> 32) + carries,
    )
}

/// Adds the last `< 16`-ish bytes of a buffer (at an even offset from its start)
/// to `acc`; shared with the SIMD paths for their tails.
#[inline]
pub(crate) fn sum_tail(tail: &[u8], mut acc: u64) -> u64 {
    let mut words = tail.chunks_exact(8);
    for w in &mut words {
        let w = u64::from_ne_bytes(w.try_into().unwrap_or([0; 8]));
        acc += (w & 0xffff_ffff) + (w >> 32);
    }
    // The last 0..=7 bytes, without a copy: a 32-bit and a 16-bit word are
    // congruent to the sum of their 16-bit halves modulo 0xffff, which is all
    // the fold keeps.
    let mut rest = words.remainder();
    if let Some((w, tail)) = rest.split_first_chunk::<4>() {
        acc += u64::from(u32::from_ne_bytes(*w));
        rest = tail;
    }
    if let Some((w, tail)) = rest.split_first_chunk::<2>() {
        acc += u64::from(u16::from_ne_bytes(*w));
        rest = tail;
    }
    if let [last] = rest {
        // Zero padding keeps an odd last byte in the high half of its
        // big-endian word (RFC 1071 §4.1).
        acc += u64::from(u16::from_ne_bytes([*last, 0]));
    }
    acc
}

/// The folded one's-complement sum of `data` (big-endian words), scalar path.
#[inline]
pub fn sum(data: &[u8]) -> u16 {
    super::fold_native(sum_native(data))
}

/// The obvious RFC 1071 reference: one big-endian 16-bit word at a time. Slow;
/// the yardstick every other path is tested against.
pub fn sum_reference(data: &[u8]) -> u16 {
    let mut acc: u32 = 0;
    let mut words = data.chunks_exact(2);
    for w in &mut words {
        acc += u32::from(u16::from_be_bytes([w[0], w[1]]));
        acc = (acc & 0xffff) + (acc >> 16);
    }
    if let [last] = words.remainder() {
        acc += u32::from(*last) << 8;
        acc = (acc & 0xffff) + (acc >> 16);
    }
    acc = (acc & 0xffff) + (acc >> 16);
    acc as u16
}

//! The portable one's-complement sum: 64-bit native words added with end-around
//! carries (RFC 1071 §2 (C)), the carry chain written so the compiler emits one
//! add-with-carry per word.

/// Adds `w` to the 64-bit one's-complement accumulator `acc`: a carry out of bit
/// 63 is worth 2^64, which is 1 modulo 2^64 - 1 (and so modulo 0xffff, all the
/// fold keeps), so it is added back in at bit 0.
///
/// Cannot overflow: when the first add carries, its sum is at most 2^64 - 2.
#[inline(always)]
pub(crate) fn add_carry(acc: u64, w: u64) -> u64 {
    let (sum, carry) = acc.overflowing_add(w);
    sum + u64::from(carry)
}

/// One link of an add-with-carry chain: `a + b + carry_in`, and the carry out.
/// The two-step form is the idiom the compiler turns into a single `adc`.
#[inline(always)]
fn add_with_carry(a: u64, b: u64, carry_in: bool) -> (u64, bool) {
    let (s1, c1) = a.overflowing_add(b);
    let (s2, c2) = s1.overflowing_add(u64::from(carry_in));
    (s2, c1 | c2)
}

/// The native-endian 64-bit word at `at` in `bytes` (zero if out of range, which
/// the callers' fixed-size blocks rule out: the check compiles away).
#[inline(always)]
fn word_at(bytes: &[u8], at: usize) -> u64 {
    bytes
        .get(at..at + 8)
        .and_then(|w| w.try_into().ok())
        .map_or(0, u64::from_ne_bytes)
}

/// Adds the native-endian 16-bit words of `data` (which starts at an even offset
/// of the summed buffer; an odd last byte is padded with zero) to the 64-bit
/// one's-complement accumulator `acc`. Any `acc` is valid, and so is the result:
/// it stays congruent to the sum modulo 2^64 - 1, a multiple of 0xffff, and is
/// zero only when `acc` and every word are.
///
/// 64-byte blocks go through one carry chain (eight `adc` and one to take the
/// last carry back in), the last 0..=63 bytes by halving sizes, so a short buffer (a
/// header, a bare ACK, a small segment) costs a handful of instructions and
/// no loop tail.
#[inline(always)]
pub(crate) fn add_native(mut acc: u64, data: &[u8]) -> u64 {
    let mut blocks = data.chunks_exact(64);
    for block in &mut blocks {
        let (s, c) = acc.overflowing_add(word_at(block, 0));
        let (s, c) = add_with_carry(s, word_at(block, 8), c);
        let (s, c) = add_with_carry(s, word_at(block, 16), c);
        let (s, c) = add_with_carry(s, word_at(block, 24), c);
        let (s, c) = add_with_carry(s, word_at(block, 32), c);
        let (s, c) = add_with_carry(s, word_at(block, 40), c);
        let (s, c) = add_with_carry(s, word_at(block, 48), c);
        let (s, c) = add_with_carry(s, word_at(block, 56), c);
        acc = s + u64::from(c);
    }
    let mut rest = blocks.remainder();
    // A whole number of 32-byte blocks (a bare TCP header with timestamps, one
    // with 64 bytes of data) skips the small tail's tests.
    if rest.is_empty() {
        return acc;
    }
    if let Some((block, tail)) = rest.split_first_chunk::<32>() {
        let (s, c) = acc.overflowing_add(word_at(block, 0));
        let (s, c) = add_with_carry(s, word_at(block, 8), c);
        let (s, c) = add_with_carry(s, word_at(block, 16), c);
        let (s, c) = add_with_carry(s, word_at(block, 24), c);
        acc = s + u64::from(c);
        rest = tail;
        if rest.is_empty() {
            return acc;
        }
    }
    if let Some((pair, tail)) = rest.split_first_chunk::<16>() {
        let (s, c) = acc.overflowing_add(word_at(pair, 0));
        let (s, c) = add_with_carry(s, word_at(pair, 8), c);
        acc = s + u64::from(c);
        rest = tail;
    }
    if let Some((w, tail)) = rest.split_first_chunk::<8>() {
        acc = add_carry(acc, u64::from_ne_bytes(*w));
        rest = tail;
    }
    // The last 0..=7 bytes, summed apart (they cannot overflow) and added once:
    // a 32-bit word is congruent to the sum of its 16-bit halves modulo 0xffff.
    let mut small: u64 = 0;
    if let Some((w, tail)) = rest.split_first_chunk::<4>() {
        small += u64::from(u32::from_ne_bytes(*w));
        rest = tail;
    }
    if let Some((w, tail)) = rest.split_first_chunk::<2>() {
        small += u64::from(u16::from_ne_bytes(*w));
        rest = tail;
    }
    if let [last] = rest {
        // Zero padding keeps an odd last byte in the high half of its
        // big-endian word (RFC 1071 §4.1).
        small += u64::from(u16::from_ne_bytes([*last, 0]));
    }
    add_carry(acc, small)
}

/// Unfolded sum of `data` as native-endian words, for the dispatcher.
#[inline]
pub(crate) fn sum_native(data: &[u8]) -> u64 {
    add_native(0, data)
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

//! Sequence-number arithmetic modulo 2^32 (RFC 9293 §3.4).

use core::cmp::Ordering;
use core::fmt;
use core::ops::{Add, AddAssign, Sub};

/// A TCP sequence number; comparisons wrap around (RFC 9293 §3.4, RFC 1982 style).
///
/// `a < b` means `b` is ahead of `a` by less than 2^31. The order is only
/// meaningful for numbers within 2^31 of each other, which every window is.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct SeqNumber(pub u32);

impl SeqNumber {
    /// Signed distance `self - other`.
    pub const fn diff(self, other: SeqNumber) -> i32 {
        self.0.wrapping_sub(other.0) as i32
    }

    /// Forward distance from `earlier` to `self`, zero when `earlier` is ahead.
    pub const fn since(self, earlier: SeqNumber) -> u32 {
        let d = self.diff(earlier);
        if d < 0 { 0 } else { d as u32 }
    }

    /// The later of two sequence numbers.
    pub fn max_seq(self, other: SeqNumber) -> SeqNumber {
        if self > other { self } else { other }
    }

    /// The earlier of two sequence numbers.
    pub fn min_seq(self, other: SeqNumber) -> SeqNumber {
        if self < other { self } else { other }
    }

    /// `start <= self < end` in sequence space.
    pub fn in_range(self, start: SeqNumber, end: SeqNumber) -> bool {
        self >= start && self < end
    }
}

impl fmt::Debug for SeqNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl fmt::Display for SeqNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl PartialOrd for SeqNumber {
    fn partial_cmp(&self, other: &SeqNumber) -> Option<Ordering> {
        Some(self.diff(*other).cmp(&0))
    }
}

impl Add<u32> for SeqNumber {
    type Output = SeqNumber;
    fn add(self, rhs: u32) -> SeqNumber {
        SeqNumber(self.0.wrapping_add(rhs))
    }
}

impl Add<usize> for SeqNumber {
    type Output = SeqNumber;
    fn add(self, rhs: usize) -> SeqNumber {
        // Truncation is the point: sequence space is modulo 2^32.
        SeqNumber(self.0.wrapping_add(rhs as u32))
    }
}

impl AddAssign<u32> for SeqNumber {
    fn add_assign(&mut self, rhs: u32) {
        *self = *self + rhs;
    }
}

impl Sub<u32> for SeqNumber {
    type Output = SeqNumber;
    fn sub(self, rhs: u32) -> SeqNumber {
        SeqNumber(self.0.wrapping_sub(rhs))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn compares_across_wraparound() {
        let a = SeqNumber(u32::MAX - 5);
        let b = a + 10u32;
        assert_eq!(b.0, 4);
        assert!(a < b);
        assert!(b > a);
        assert_eq!(b.diff(a), 10);
        assert_eq!(a.diff(b), -10);
        assert_eq!(b.since(a), 10);
        assert_eq!(a.since(b), 0);
        assert_eq!(a.max_seq(b), b);
        assert_eq!(a.min_seq(b), a);
        assert!(SeqNumber(2).in_range(a, b));
        assert!(!b.in_range(a, b));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn ordering_is_translation_invariant(base: u32, d in 1u32..(1 << 31)) {
            let a = SeqNumber(base);
            let b = a + d;
            prop_assert!(a < b);
            prop_assert!(b >= a);
            prop_assert_eq!(b.since(a), d);
        }
    }
}

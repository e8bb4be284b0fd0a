//! The stack's clock: an [`Instant`] is microseconds since the engine started.
//!
//! Protocol code never reads a clock; the engine (or a test's virtual clock)
//! passes `now` in. `Duration` is `core::time::Duration`.

use core::ops::{Add, AddAssign, Sub};
use core::time::Duration;

/// A point in time, in microseconds since an arbitrary origin (engine start).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Instant(u64);

impl Instant {
    /// The origin (time zero).
    pub const ZERO: Instant = Instant(0);
    /// A time later than any real one; handy as "no deadline".
    pub const MAX: Instant = Instant(u64::MAX);

    /// An instant `micros` microseconds after the origin.
    pub const fn from_micros(micros: u64) -> Self {
        Instant(micros)
    }

    /// An instant `millis` milliseconds after the origin.
    pub const fn from_millis(millis: u64) -> Self {
        Instant(millis.saturating_mul(1000))
    }

    /// Microseconds since the origin.
    pub const fn total_micros(self) -> u64 {
        self.0
    }

    /// Milliseconds since the origin (truncated).
    pub const fn total_millis(self) -> u64 {
        self.0 / 1000
    }

    /// Microseconds from `earlier` to `self`, or zero if `earlier` is later (what
    /// `self - earlier` is as a `Duration`, without making one).
    pub const fn micros_since(self, earlier: Instant) -> u64 {
        self.0.saturating_sub(earlier.0)
    }

    /// `self + Duration::from_nanos(nanos)` without making the `Duration` (whole
    /// microseconds, saturating, as the `Add` does).
    pub const fn add_nanos(self, nanos: u64) -> Instant {
        Instant(self.0.saturating_add(nanos / 1000))
    }

    /// Time from `earlier` to `self`, or zero if `earlier` is later.
    pub fn saturating_duration_since(self, earlier: Instant) -> Duration {
        Duration::from_micros(self.0.saturating_sub(earlier.0))
    }
}

/// `d` in whole microseconds, saturated at `u64::MAX`; in 64-bit arithmetic
/// (`Duration::as_micros` works in 128 bits, on every timer and deadline).
#[inline]
pub(crate) fn duration_micros(d: Duration) -> u64 {
    d.as_secs()
        .checked_mul(1_000_000)
        .and_then(|m| m.checked_add(u64::from(d.subsec_micros())))
        .unwrap_or(u64::MAX)
}

impl Add<Duration> for Instant {
    type Output = Instant;
    fn add(self, rhs: Duration) -> Instant {
        Instant(self.0.saturating_add(duration_micros(rhs)))
    }
}

impl AddAssign<Duration> for Instant {
    fn add_assign(&mut self, rhs: Duration) {
        *self = *self + rhs;
    }
}

impl Sub<Duration> for Instant {
    type Output = Instant;
    fn sub(self, rhs: Duration) -> Instant {
        Instant(self.0.saturating_sub(duration_micros(rhs)))
    }
}

impl Sub<Instant> for Instant {
    type Output = Duration;
    /// Saturates at zero when `rhs` is later than `self`.
    fn sub(self, rhs: Instant) -> Duration {
        self.saturating_duration_since(rhs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_saturates_instead_of_panicking() {
        let t = Instant::from_millis(5);
        assert_eq!(t.total_micros(), 5000);
        assert_eq!((t + Duration::from_micros(7)).total_micros(), 5007);
        assert_eq!(Instant::ZERO - t, Duration::ZERO);
        assert_eq!(t - Instant::from_micros(1000), Duration::from_millis(4));
        assert_eq!(Instant::MAX + Duration::from_secs(1), Instant::MAX);
        assert_eq!(Instant::ZERO - Duration::from_secs(1), Instant::ZERO);
        for nanos in [0, 999, 1_000, 123_456_789, u64::MAX] {
            assert_eq!(
                t.add_nanos(nanos),
                t + Duration::from_nanos(nanos),
                "{nanos}"
            );
            assert_eq!(
                Instant::MAX.add_nanos(nanos),
                Instant::MAX + Duration::from_nanos(nanos)
            );
        }
        assert_eq!(t.micros_since(Instant::from_micros(1000)), 4000);
        assert_eq!(Instant::ZERO.micros_since(t), 0);
    }

    #[test]
    fn duration_micros_matches_the_128_bit_conversion() {
        for d in [
            Duration::ZERO,
            Duration::from_nanos(999),
            Duration::from_nanos(1_001),
            Duration::new(3, 999_999_999),
            Duration::from_secs(u64::MAX / 1_000_000),
            Duration::new(u64::MAX / 1_000_000, 999_999_999),
            Duration::from_secs(u64::MAX / 1_000_000 + 1),
            Duration::MAX,
        ] {
            let wide = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
            assert_eq!(duration_micros(d), wide, "{d:?}");
        }
    }
}

//! Round-trip estimation and the retransmission timeout (RFC 6298).

use core::time::Duration;

/// Clock granularity G of RFC 6298 §2 (our timestamps tick in milliseconds).
const GRANULARITY: Duration = Duration::from_millis(1);

/// SRTT / RTTVAR / RTO state of one connection, in nanoseconds (a u64 holds 584
/// years): `sample_with` runs on every ACK, and `Duration`'s split seconds and
/// nanoseconds cost a 128-bit multiply to read and a division to write.
#[derive(Debug, Clone, Copy)]
pub struct RttEstimator {
    srtt: Option<u64>,
    rttvar: u64,
    rto: u64,
    min: u64,
    max: u64,
}

/// `d` in nanoseconds, saturated at u64::MAX (584 years).
#[inline]
fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl RttEstimator {
    /// RFC 6298 §2.1: before any sample, RTO = the initial value (1 s).
    pub fn new(initial: Duration, min: Duration, max: Duration) -> Self {
        let (min, max) = (nanos(min), nanos(max.max(min)));
        RttEstimator {
            srtt: None,
            rttvar: 0,
            rto: nanos(initial).clamp(min, max),
            min,
            max,
        }
    }

    /// Feeds one RTT measurement (RFC 6298 §2.2 / §2.3), the minimum applied to the
    /// sum (RFC 6298 §2.4).
    pub fn sample(&mut self, rtt: Duration) {
        self.sample_with(rtt, false);
    }

    /// Feeds one RTT measurement; with `min_on_variance` the minimum bounds the variance
    /// term instead of the sum, as Linux does ([`super::TcpConfig::rto_min_on_variance`]).
    pub fn sample_with(&mut self, rtt: Duration, min_on_variance: bool) {
        self.sample_nanos(nanos(rtt), min_on_variance);
    }

    /// [`Self::sample_with`] for a measurement in microseconds (the clock's unit: an ACK's
    /// sample never becomes a `Duration` on the way).
    #[inline(always)]
    pub(super) fn sample_micros(&mut self, micros: u64, min_on_variance: bool) {
        self.sample_nanos(micros.saturating_mul(1000), min_on_variance);
    }

    /// Inlined: it runs on every ACK of new data, and a call costs a fifth of it.
    #[inline(always)]
    fn sample_nanos(&mut self, r: u64, min_on_variance: bool) {
        // The results are those of RFC 6298's `Duration` arithmetic: a product of
        // durations is exact either way, and `Duration / n` for n = 2, 4, 8 is the floor
        // of the nanoseconds divided by n (10^9 is a multiple of 8, so the carried seconds
        // divide exactly) — `sample_matches_duration_arithmetic` checks it.
        let (srtt, rttvar) = match self.srtt {
            // RFC 6298 §2.2: SRTT <- R, RTTVAR <- R/2.
            None => (r, r / 2),
            Some(s) => {
                // RFC 6298 §2.3: RTTVAR <- 3/4 RTTVAR + 1/4 |SRTT - R'|, SRTT <- 7/8 SRTT + 1/8 R'.
                let delta = s.abs_diff(r);
                (
                    s.saturating_mul(7).saturating_add(r) / 8,
                    self.rttvar.saturating_mul(3).saturating_add(delta) / 4,
                )
            }
        };
        self.srtt = Some(srtt);
        self.rttvar = rttvar;
        // RFC 6298 §2.3: RTO <- SRTT + max(G, 4*RTTVAR), clamped to [min, max] (§2.4,
        // §2.5); or, as Linux (`tcp_set_rto`: srtt + max(mdev, tcp_rto_min)), the
        // minimum on the variance term.
        let var = GRANULARITY_NANOS.max(rttvar.saturating_mul(4));
        self.rto = if min_on_variance {
            srtt.saturating_add(var.max(self.min)).min(self.max)
        } else {
            srtt.saturating_add(var).clamp(self.min, self.max)
        };
    }

    /// The RTO before backoff.
    pub fn rto(&self) -> Duration {
        Duration::from_nanos(self.rto)
    }

    /// [`Self::rto`] in nanoseconds (for arithmetic on every segment without `Duration`'s
    /// conversions).
    pub(super) fn rto_nanos(&self) -> u64 {
        self.rto
    }

    /// RFC 6298 §5.5: the RTO doubled `backoff` times, capped at the maximum.
    pub fn backed_off(&self, backoff: u32) -> Duration {
        Duration::from_nanos(self.backed_off_nanos(backoff))
    }

    /// [`Self::backed_off`] in nanoseconds. Inlined, with the usual case (no backoff: every
    /// segment sent while the connection is healthy) first: the RTO is then the estimate
    /// itself, which `new` and `sample_nanos` keep at or below the maximum, and the shift,
    /// the overflow check and the cap are skipped.
    #[inline(always)]
    pub(super) fn backed_off_nanos(&self, backoff: u32) -> u64 {
        if backoff == 0 {
            debug_assert!(self.rto <= self.max);
            return self.rto;
        }
        let factor = 1u64.checked_shl(backoff.min(63)).unwrap_or(u64::MAX);
        self.rto.saturating_mul(factor).min(self.max)
    }

    /// Smoothed RTT in nanoseconds, if measured (for arithmetic on every segment
    /// without `Duration`'s conversions).
    pub(super) fn srtt_nanos(&self) -> Option<u64> {
        self.srtt
    }

    /// Smoothed RTT, if measured.
    pub fn srtt(&self) -> Option<Duration> {
        self.srtt.map(Duration::from_nanos)
    }

    /// RTT variation.
    pub fn rttvar(&self) -> Duration {
        Duration::from_nanos(self.rttvar)
    }
}

/// [`GRANULARITY`] in nanoseconds.
const GRANULARITY_NANOS: u64 = GRANULARITY.as_nanos() as u64;

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn rfc6298_first_and_later_samples() {
        let mut r = RttEstimator::new(ms(1000), ms(200), ms(120_000));
        assert_eq!(r.rto(), ms(1000));
        r.sample(ms(100));
        assert_eq!(r.srtt(), Some(ms(100)));
        assert_eq!(r.rttvar(), ms(50));
        assert_eq!(r.rto(), ms(300));
        r.sample(ms(200));
        // RTTVAR = 3/4*50 + 1/4*100 = 62.5; SRTT = 7/8*100 + 1/8*200 = 112.5
        assert_eq!(r.rttvar(), Duration::from_micros(62_500));
        assert_eq!(r.srtt(), Some(Duration::from_micros(112_500)));
        assert_eq!(r.rto(), Duration::from_micros(362_500));
    }

    #[test]
    fn rto_is_clamped_and_backoff_capped() {
        let mut r = RttEstimator::new(ms(1000), ms(200), ms(120_000));
        r.sample(ms(1));
        assert_eq!(r.rto(), ms(200), "RFC 6298 §2.4 minimum");
        assert_eq!(r.backed_off(1), ms(400));
        assert_eq!(r.backed_off(40), ms(120_000), "RFC 6298 §2.5 maximum");
        r.sample(ms(500_000));
        assert_eq!(r.rto(), ms(120_000));
    }

    /// `backed_off_nanos(0)` returns the estimate without the cap: the estimate must never
    /// exceed the maximum, whatever the samples (a maximum below the minimum, a huge RTT,
    /// an initial RTO above the maximum, either placement of the minimum).
    #[test]
    fn no_backoff_is_the_capped_estimate() {
        let huge = Duration::from_secs(u64::MAX / 4);
        for (initial, min, max) in [
            (ms(1000), ms(200), ms(120_000)),
            (ms(1000), ms(200), ms(100)),
            (ms(500_000), ms(200), ms(120_000)),
            (huge, ms(0), huge),
        ] {
            for linux in [false, true] {
                let mut r = RttEstimator::new(initial, min, max);
                for rtt in [
                    ms(0),
                    ms(1),
                    ms(100),
                    ms(300_000),
                    huge,
                    ms(5),
                    Duration::MAX,
                ] {
                    let capped = r.rto_nanos().min(r.max);
                    assert_eq!(r.backed_off_nanos(0), capped);
                    assert_eq!(r.backed_off(0), r.rto());
                    let doubled = r.rto_nanos().saturating_mul(2).min(r.max);
                    assert_eq!(r.backed_off_nanos(1), doubled);
                    r.sample_with(rtt, linux);
                }
            }
        }
    }

    #[test]
    fn linux_puts_the_minimum_on_the_variance() {
        let mut r = RttEstimator::new(ms(1000), ms(200), ms(120_000));
        r.sample_with(ms(1), true);
        assert_eq!(r.rto(), ms(201), "SRTT + max(4 RTTVAR, min)");
        // A queueing peer: 100 ms RTTs. RFC 6298 gives 100 + 4 x 50 = 300 ms at first,
        // then as RTTVAR decays toward 0 the RTO falls to 200 ms, half a busy peer's
        // p99; Linux keeps SRTT + 200 ms.
        let (mut rfc, mut linux) = (r, r);
        for _ in 0..40 {
            rfc.sample_with(ms(100), false);
            linux.sample_with(ms(100), true);
        }
        assert_eq!(rfc.rto(), ms(200));
        assert!(linux.rto() >= ms(299), "{:?}", linux.rto());
    }

    /// The estimator as RFC 6298 writes it, in `Duration` arithmetic (the code before
    /// `sample_with` moved to nanoseconds).
    #[derive(Clone, Copy)]
    struct Reference {
        srtt: Option<Duration>,
        rttvar: Duration,
        rto: Duration,
        min: Duration,
        max: Duration,
    }

    fn reference(r: &mut Reference, rtt: Duration, min_on_variance: bool) {
        match r.srtt {
            None => {
                r.srtt = Some(rtt);
                r.rttvar = rtt / 2;
            }
            Some(srtt) => {
                let delta = srtt.abs_diff(rtt);
                r.rttvar = (r.rttvar * 3 + delta) / 4;
                r.srtt = Some((srtt * 7 + rtt) / 8);
            }
        }
        let srtt = r.srtt.unwrap_or_default();
        let var = GRANULARITY.max(r.rttvar * 4);
        r.rto = if min_on_variance {
            (srtt + var.max(r.min)).min(r.max)
        } else {
            (srtt + var).clamp(r.min, r.max)
        };
    }

    #[test]
    fn sample_in_micros_is_the_duration_sample() {
        let mut a = RttEstimator::new(ms(1000), ms(200), ms(120_000));
        let mut b = a;
        for (i, us) in [37u64, 1, 250_000, 0, 999_999, u64::MAX]
            .into_iter()
            .enumerate()
        {
            let on_variance = i % 2 == 0;
            a.sample_with(Duration::from_micros(us), on_variance);
            b.sample_micros(us, on_variance);
            assert_eq!(
                (a.srtt(), a.rttvar(), a.rto()),
                (b.srtt(), b.rttvar(), b.rto())
            );
        }
    }

    proptest::proptest! {
        #[test]
        fn sample_matches_duration_arithmetic(
            samples in proptest::collection::vec(0u64..200_000_000_000, 1..40),
            min_on_variance: bool,
            min_us in 0u64..2_000_000,
        ) {
            let min = Duration::from_micros(min_us);
            let mut fast = RttEstimator::new(ms(1000), min, ms(120_000));
            let mut slow = Reference { srtt: None, rttvar: Duration::ZERO, rto: fast.rto(), min, max: ms(120_000) };
            for ns in samples {
                let rtt = Duration::from_nanos(ns);
                fast.sample_with(rtt, min_on_variance);
                reference(&mut slow, rtt, min_on_variance);
                proptest::prop_assert_eq!(fast.srtt(), slow.srtt);
                proptest::prop_assert_eq!(fast.rttvar(), slow.rttvar);
                proptest::prop_assert_eq!(fast.rto(), slow.rto);
            }
        }
    }
}

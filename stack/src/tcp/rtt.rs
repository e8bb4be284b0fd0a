//! Round-trip estimation and the retransmission timeout (RFC 6298).

use core::time::Duration;

/// Clock granularity G of RFC 6298 §2 (our timestamps tick in milliseconds).
const GRANULARITY: Duration = Duration::from_millis(1);

/// SRTT / RTTVAR / RTO state of one connection.
#[derive(Debug, Clone, Copy)]
pub struct RttEstimator {
    srtt: Option<Duration>,
    rttvar: Duration,
    rto: Duration,
    min: Duration,
    max: Duration,
}

impl RttEstimator {
    /// RFC 6298 §2.1: before any sample, RTO = the initial value (1 s).
    pub fn new(initial: Duration, min: Duration, max: Duration) -> Self {
        RttEstimator {
            srtt: None,
            rttvar: Duration::ZERO,
            rto: initial.clamp(min, max.max(min)),
            min,
            max: max.max(min),
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
        match self.srtt {
            None => {
                // RFC 6298 §2.2: SRTT <- R, RTTVAR <- R/2.
                self.srtt = Some(rtt);
                self.rttvar = rtt / 2;
            }
            Some(srtt) => {
                // RFC 6298 §2.3: RTTVAR <- 3/4 RTTVAR + 1/4 |SRTT - R'|, SRTT <- 7/8 SRTT + 1/8 R'.
                let delta = srtt.abs_diff(rtt);
                self.rttvar = (self.rttvar * 3 + delta) / 4;
                self.srtt = Some((srtt * 7 + rtt) / 8);
            }
        }
        let srtt = self.srtt.unwrap_or_default();
        // RFC 6298 §2.3: RTO <- SRTT + max(G, 4*RTTVAR), clamped to [min, max] (§2.4,
        // §2.5); or, as Linux (`tcp_set_rto`: srtt + max(mdev, tcp_rto_min)), the
        // minimum on the variance term.
        let var = GRANULARITY.max(self.rttvar * 4);
        self.rto = if min_on_variance {
            (srtt + var.max(self.min)).min(self.max)
        } else {
            (srtt + var).clamp(self.min, self.max)
        };
    }

    /// The RTO before backoff.
    pub fn rto(&self) -> Duration {
        self.rto
    }

    /// RFC 6298 §5.5: the RTO doubled `backoff` times, capped at the maximum.
    pub fn backed_off(&self, backoff: u32) -> Duration {
        let factor = 1u32.checked_shl(backoff.min(31)).unwrap_or(u32::MAX);
        self.rto
            .checked_mul(factor)
            .unwrap_or(self.max)
            .min(self.max)
    }

    /// Smoothed RTT, if measured.
    pub fn srtt(&self) -> Option<Duration> {
        self.srtt
    }

    /// RTT variation.
    pub fn rttvar(&self) -> Duration {
        self.rttvar
    }
}

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
}

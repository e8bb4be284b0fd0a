//! What `surge load` and `surge serve` measure and how they write it down: histograms, the
//! human table, `.hgrm`, interval logs, JSON and the percentile plot.

pub mod agent_record;
pub mod command;
pub mod hgrm;
pub mod hlog;
pub mod load_report;
pub mod merge;

pub mod plot;
pub mod table;

use std::borrow::Cow;
use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Highest value a latency histogram records: one hour in microseconds (larger values clamp).
const HIGHEST_US: u64 = 3_600_000_000;

/// A latency histogram in microseconds, 3 significant digits.
pub fn new_histogram() -> Histogram<u64> {
    // The bounds are constants that `new_with_bounds` accepts (1 <= low, high >= 2 * low).
    Histogram::new_with_bounds(1, HIGHEST_US, 3).unwrap_or_else(|_| {
        Histogram::new(3).unwrap_or_else(|_| unreachable!("3 significant digits is valid"))
    })
}

/// Records `micros` (at least 1) into `histogram`, clamping at its top.
pub fn record(histogram: &mut Histogram<u64>, micros: u64) {
    histogram.saturating_record(micros.max(1));
}

/// The latency histograms of one run (or one thread of it).
#[derive(Clone, Debug)]
pub struct LatencySet {
    /// Request to response, from the intended send time (corrected for coordinated omission).
    pub latency: Histogram<u64>,
    /// Request to response, from the moment the request was actually written.
    pub uncorrected: Histogram<u64>,
    /// Actual send to the first byte of the response.
    pub ttfb: Histogram<u64>,
    /// Connect (SYN) to established.
    pub connect: Histogram<u64>,
}

impl Default for LatencySet {
    fn default() -> Self {
        Self {
            latency: new_histogram(),
            uncorrected: new_histogram(),
            ttfb: new_histogram(),
            connect: new_histogram(),
        }
    }
}

impl LatencySet {
    /// Adds every sample of `other`.
    pub fn merge(&mut self, other: &LatencySet) {
        // Same bounds everywhere, so `add` cannot fail; a failure would only drop samples of
        // out-of-range values, which `record` already clamps.
        let _ = self.latency.add(&other.latency);
        let _ = self.uncorrected.add(&other.uncorrected);
        let _ = self.ttfb.add(&other.ttfb);
        let _ = self.connect.add(&other.connect);
    }
}

/// Summary statistics of one histogram, in microseconds.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq)]
#[serde(default)]
pub struct Summary {
    /// Number of samples.
    pub count: u64,
    /// Smallest sample.
    pub min: u64,
    /// Mean.
    pub mean: f64,
    /// Standard deviation.
    pub stdev: f64,
    /// 50th percentile.
    pub p50: u64,
    /// 90th percentile.
    pub p90: u64,
    /// 99th percentile.
    pub p99: u64,
    /// 99.9th percentile.
    pub p99_9: u64,
    /// 99.99th percentile.
    pub p99_99: u64,
    /// Largest sample.
    pub max: u64,
}

impl Summary {
    /// The summary of `h` (all zero when it is empty).
    pub fn of(h: &Histogram<u64>) -> Summary {
        if h.is_empty() {
            return Summary::default();
        }
        Summary {
            count: h.len(),
            min: h.min(),
            mean: h.mean(),
            stdev: h.stdev(),
            p50: h.value_at_quantile(0.5),
            p90: h.value_at_quantile(0.9),
            p99: h.value_at_quantile(0.99),
            p99_9: h.value_at_quantile(0.999),
            p99_99: h.value_at_quantile(0.9999),
            max: h.max(),
        }
    }
}

/// Why a request or a connection attempt failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum ErrorKind {
    /// No response within the request timeout.
    Timeout,
    /// The peer reset the connection.
    Reset,
    /// The peer closed the connection before answering.
    Closed,
    /// The response did not parse (bad status line, bad length, too long headers).
    Malformed,
    /// The connect was refused (RST to our SYN).
    Refused,
    /// The connect did not finish within the connect timeout.
    ConnectTimeout,
    /// No route, host unreachable, or no local port left.
    Unreachable,
    /// Any other I/O error.
    Other,
}

impl ErrorKind {
    /// The name used in reports.
    pub fn name(self) -> &'static str {
        match self {
            Self::Timeout => "timeout",
            Self::Reset => "reset",
            Self::Closed => "closed",
            Self::Malformed => "malformed",
            Self::Refused => "refused",
            Self::ConnectTimeout => "connect_timeout",
            Self::Unreachable => "unreachable",
            Self::Other => "other",
        }
    }

    /// Classifies an I/O error.
    pub fn of_io(err: &std::io::Error) -> ErrorKind {
        use std::io::ErrorKind as K;
        match err.kind() {
            K::ConnectionRefused => Self::Refused,
            K::ConnectionReset | K::ConnectionAborted | K::BrokenPipe => Self::Reset,
            K::TimedOut => Self::Timeout,
            K::HostUnreachable | K::NetworkUnreachable | K::AddrNotAvailable => Self::Unreachable,
            _ => Self::Other,
        }
    }
}

/// Counts by error kind, in name order (borrowed names when counted here, owned when read
/// back from an agent's JSON).
pub type ErrorCounts = BTreeMap<Cow<'static, str>, u64>;

/// Adds `n` errors of `kind` to `counts`.
pub fn count_error(counts: &mut ErrorCounts, kind: ErrorKind, n: u64) {
    if n > 0 {
        *counts.entry(Cow::Borrowed(kind.name())).or_insert(0) += n;
    }
}

/// Adds every count of `other` into `counts`.
pub fn merge_counts(counts: &mut ErrorCounts, other: &ErrorCounts) {
    for (k, v) in other {
        *counts.entry(k.clone()).or_insert(0) += v;
    }
}

/// Formats microseconds the way wrk does: `812.00us`, `1.23ms`, `2.50s`.
pub fn format_micros(us: f64) -> String {
    if us < 1000.0 {
        format!("{us:.2}us")
    } else if us < 1_000_000.0 {
        format!("{:.2}ms", us / 1000.0)
    } else {
        format!("{:.2}s", us / 1_000_000.0)
    }
}

/// Formats a byte count with binary units: `512.00B`, `1.50KB`, `3.20MB`.
pub fn format_bytes(bytes: f64) -> String {
    let units = ["B", "KB", "MB", "GB", "TB"];
    let mut value = bytes;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < units.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.2}{}", units.get(unit).copied().unwrap_or("B"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_of_known_samples() {
        let mut h = new_histogram();
        for v in 1..=1000 {
            record(&mut h, v);
        }
        let s = Summary::of(&h);
        assert_eq!(s.count, 1000);
        assert_eq!(s.min, 1);
        assert_eq!(s.p50, 500);
        assert_eq!(s.p99, 990);
        assert_eq!(s.max, 1000);
        assert_eq!(Summary::of(&new_histogram()), Summary::default());
    }

    #[test]
    fn record_clamps_and_floors() {
        let mut h = new_histogram();
        record(&mut h, 0);
        record(&mut h, u64::MAX);
        assert_eq!(h.len(), 2);
        assert_eq!(h.min(), 1);
        assert!(h.max() >= HIGHEST_US);
    }

    #[test]
    fn units_format_like_wrk() {
        assert_eq!(format_micros(812.0), "812.00us");
        assert_eq!(format_micros(1230.0), "1.23ms");
        assert_eq!(format_micros(2_500_000.0), "2.50s");
        assert_eq!(format_bytes(1536.0), "1.50KB");
    }
}

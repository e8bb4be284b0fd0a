//! The HdrHistogram percentile distribution format (`.hgrm`), as written by HdrHistogram's
//! `outputPercentileDistribution` and read by its plotters: values in milliseconds.

use std::fmt::Write as _;

use hdrhistogram::Histogram;
use serde::Serialize;

/// Microseconds per millisecond: the `.hgrm` value unit scaling ratio.
const US_PER_MS: f64 = 1000.0;

/// One row of the percentile distribution.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct PercentileRow {
    /// The value at this percentile, in milliseconds.
    pub value_ms: f64,
    /// The percentile as a fraction in `[0, 1]`.
    pub percentile: f64,
    /// Samples at or below `value_ms`.
    pub total_count: u64,
}

/// The rows of the distribution: 5 ticks per half distance, as HdrHistogram prints them.
pub fn percentile_rows(h: &Histogram<u64>) -> Vec<PercentileRow> {
    let mut rows = Vec::new();
    if h.is_empty() {
        return rows;
    }
    let mut total = 0u64;
    for v in h.iter_quantiles(5) {
        total += v.count_since_last_iteration();
        rows.push(PercentileRow {
            value_ms: h.highest_equivalent(v.value_iterated_to()) as f64 / US_PER_MS,
            percentile: v.quantile_iterated_to(),
            total_count: total,
        });
    }
    rows
}

/// The `.hgrm` text of `h` (microsecond samples, printed in milliseconds).
pub fn format_hgrm(h: &Histogram<u64>) -> String {
    let mut out = String::new();
    // Writing into a String cannot fail.
    let _ = write!(
        out,
        "{:>12} {:>14} {:>10} {:>14}\n\n",
        "Value", "Percentile", "TotalCount", "1/(1-Percentile)"
    );
    for row in percentile_rows(h) {
        if row.percentile < 1.0 {
            let _ = writeln!(
                out,
                "{:12.3} {:2.12} {:10} {:14.2}",
                row.value_ms,
                row.percentile,
                row.total_count,
                1.0 / (1.0 - row.percentile)
            );
        } else {
            let _ = writeln!(
                out,
                "{:12.3} {:2.12} {:10}",
                row.value_ms, row.percentile, row.total_count
            );
        }
    }
    let (mean, stdev, max) = if h.is_empty() {
        (0.0, 0.0, 0.0)
    } else {
        (
            h.mean() / US_PER_MS,
            h.stdev() / US_PER_MS,
            h.highest_equivalent(h.max()) as f64 / US_PER_MS,
        )
    };
    let sub_buckets = 1u64 << (((2.0 * 10f64.powi(i32::from(h.sigfig()))).log2()).ceil() as u32);
    let _ = writeln!(
        out,
        "#[Mean    = {mean:12.3}, StdDeviation   = {stdev:12.3}]"
    );
    let _ = writeln!(
        out,
        "#[Max     = {max:12.3}, Total count    = {:12}]",
        h.len()
    );
    let _ = writeln!(
        out,
        "#[Buckets = {:12}, SubBuckets     = {sub_buckets:12}]",
        h.buckets()
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{new_histogram, record};

    #[test]
    fn hgrm_rows_end_at_max_and_count() {
        let mut h = new_histogram();
        for v in [100, 200, 300, 400, 5000] {
            record(&mut h, v);
        }
        let rows = percentile_rows(&h);
        let last = rows.last().expect("rows");
        assert_eq!(last.total_count, 5);
        assert!((last.percentile - 1.0).abs() < 1e-12);
        assert!((last.value_ms - 5.0).abs() < 0.01);
        assert!(rows.windows(2).all(|w| w[0].percentile <= w[1].percentile));
        let text = format_hgrm(&h);
        assert!(text.starts_with("       Value     Percentile TotalCount 1/(1-Percentile)\n\n"));
        assert!(text.contains("#[Max     =        5.003, Total count    =            5]"));
        assert!(text.contains("SubBuckets     =         2048]"));
    }

    #[test]
    fn empty_histogram_has_header_and_footer_only() {
        let text = format_hgrm(&new_histogram());
        assert_eq!(text.lines().filter(|l| !l.starts_with('#')).count(), 2);
    }
}

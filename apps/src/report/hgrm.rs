//! The HdrHistogram percentile distribution format (`.hgrm`), as written by HdrHistogram's
//! `outputPercentileDistribution` and read by its plotters: values in milliseconds.

use std::fmt::Write as _;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Microseconds per millisecond: the `.hgrm` value unit scaling ratio.
const US_PER_MS: f64 = 1000.0;

/// One row of the percentile distribution.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
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

/// Reads the rows of a `.hgrm` file (as [`format_hgrm`] and HdrHistogram write them): lines
/// of `value percentile total_count [1/(1-percentile)]`, values in milliseconds; the header
/// and the `#[...]` footer are skipped. Errors name the first line that does not parse.
pub fn parse_hgrm(text: &str) -> anyhow::Result<Vec<PercentileRow>> {
    let mut rows = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with("Value") {
            continue;
        }
        let mut fields = line.split_whitespace();
        let mut next = || fields.next().unwrap_or_default();
        let (value, percentile, count) = (next(), next(), next());
        let row = (|| {
            Some(PercentileRow {
                value_ms: value.parse::<f64>().ok().filter(|v| v.is_finite())?,
                percentile: percentile
                    .parse::<f64>()
                    .ok()
                    .filter(|p| (0.0..=1.0).contains(p))?,
                total_count: count.parse().ok()?,
            })
        })();
        let row = row.ok_or_else(|| {
            anyhow::anyhow!("line {}: not a percentile row: {line:?}", number + 1)
        })?;
        rows.push(row);
    }
    anyhow::ensure!(!rows.is_empty(), "no percentile rows");
    Ok(rows)
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

    #[test]
    fn hgrm_parses_back_what_it_wrote() {
        let mut h = new_histogram();
        for v in 1..=2000 {
            record(&mut h, v);
        }
        let parsed = parse_hgrm(&format_hgrm(&h)).expect("parse");
        let rows = percentile_rows(&h);
        assert_eq!(parsed.len(), rows.len());
        for (p, r) in parsed.iter().zip(&rows) {
            assert!((p.value_ms - r.value_ms).abs() < 0.001, "{p:?} vs {r:?}");
            assert!((p.percentile - r.percentile).abs() < 1e-9);
            assert_eq!(p.total_count, r.total_count);
        }
    }

    #[test]
    fn hgrm_garbage_is_an_error_with_its_line() {
        let err = parse_hgrm("Value Percentile\n\n 1.0 0.5 3\n1.0 banana 4\n").expect_err("bad");
        assert!(err.to_string().contains("line 4"), "{err}");
        assert!(parse_hgrm("#[Mean = 1]\n").is_err());
        assert!(parse_hgrm("1.0 1.5 3\n").is_err());
    }
}

//! The HdrHistogram interval log (format version 1.3): one compressed histogram per second.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::interval_log::{
    IntervalLogIterator, IntervalLogWriterBuilder, LogEntry,
};
use hdrhistogram::serialization::{Deserializer, V2DeflateSerializer};

/// One interval of the log.
#[derive(Clone, Debug)]
pub struct Interval {
    /// Start of the interval, relative to the log's start time.
    pub start: Duration,
    /// Length of the interval.
    pub length: Duration,
    /// Latency samples of the interval, in microseconds.
    pub histogram: Histogram<u64>,
}

/// The text of an interval log that started at `start_time` (values in microseconds; the
/// max column is printed in milliseconds, as HdrHistogram's tools expect).
pub fn format_hlog(start_time: SystemTime, intervals: &[Interval]) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::new();
    let since_epoch = start_time
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64();
    out.extend_from_slice(b"#[Written by surge load; values in microseconds]\n");
    out.extend_from_slice(
        format!("#[StartTime: {since_epoch:.3} (seconds since epoch)]\n").as_bytes(),
    );
    out.extend_from_slice(b"#[Histogram log format version 1.3]\n");
    out.extend_from_slice(
        b"\"StartTimestamp\",\"Interval_Length\",\"Interval_Max\",\"Interval_Compressed_Histogram\"\n",
    );
    let mut serializer = V2DeflateSerializer::new();
    let mut writer = IntervalLogWriterBuilder::new()
        .with_max_value_divisor(1000.0)
        .begin_log_with(&mut out, &mut serializer)?;
    for interval in intervals {
        writer
            .write_histogram(&interval.histogram, interval.start, interval.length, None)
            .map_err(|e| anyhow::anyhow!("writing an interval histogram: {e}"))?;
    }
    drop(writer);
    Ok(out)
}

/// One interval read back from a log: when it started (seconds after the log's start), how
/// long it was (seconds) and how many samples it holds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct IntervalCount {
    /// Start of the interval, seconds after the log's start.
    pub start_s: f64,
    /// Length of the interval, seconds.
    pub length_s: f64,
    /// Samples (answered requests) in the interval.
    pub count: u64,
}

impl IntervalCount {
    /// Samples per second over the interval.
    pub fn rate(&self) -> f64 {
        self.count as f64 / self.length_s.max(1e-9)
    }
}

/// Reads the intervals of an interval log (as [`format_hlog`] writes it).
pub fn read_intervals(log: &[u8]) -> anyhow::Result<Vec<IntervalCount>> {
    let out: Vec<IntervalCount> = read_interval_histograms(log)?
        .iter()
        .map(|interval| IntervalCount {
            start_s: interval.start.as_secs_f64(),
            length_s: interval.length.as_secs_f64(),
            count: interval.histogram.len(),
        })
        .collect();
    anyhow::ensure!(!out.is_empty(), "the log has no interval");
    Ok(out)
}

/// Reads every interval of an interval log with its histogram (none is an empty list).
pub fn read_interval_histograms(log: &[u8]) -> anyhow::Result<Vec<Interval>> {
    let mut out = Vec::new();
    let mut deserializer = Deserializer::new();
    for entry in IntervalLogIterator::new(log) {
        let entry = entry.map_err(|e| anyhow::anyhow!("reading the interval log: {e:?}"))?;
        let LogEntry::Interval(interval) = entry else {
            continue;
        };
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(interval.encoded_histogram())
            .map_err(|e| anyhow::anyhow!("an interval histogram is not base64: {e}"))?;
        let histogram: Histogram<u64> = deserializer
            .deserialize(&mut bytes.as_slice())
            .map_err(|e| anyhow::anyhow!("decoding an interval histogram: {e:?}"))?;
        out.push(Interval {
            start: interval.start_timestamp(),
            length: interval.duration(),
            histogram,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{new_histogram, record};

    #[test]
    fn log_round_trips_through_the_reader() {
        let mut intervals = Vec::new();
        for second in 0..3u64 {
            let mut h = new_histogram();
            for v in 0..=second * 10 {
                record(&mut h, 100 + v);
            }
            intervals.push(Interval {
                start: Duration::from_secs(second),
                length: Duration::from_secs(1),
                histogram: h,
            });
        }
        let text =
            format_hlog(UNIX_EPOCH + Duration::from_secs(1_700_000_000), &intervals).expect("log");
        let as_text = String::from_utf8(text.clone()).expect("utf8");
        assert!(as_text.contains("#[Histogram log format version 1.3]"));
        assert!(as_text.contains("#[StartTime: 1700000000.000"));
        let read = read_intervals(&text).expect("read back");
        let counts: Vec<u64> = read.iter().map(|i| i.count).collect();
        assert_eq!(read[2].start_s, 2.0);
        assert_eq!(read[2].rate(), 21.0);
        assert_eq!(counts, vec![1, 11, 21]);
        assert!(read_intervals(b"#[only a comment]\n").is_err());
    }
}

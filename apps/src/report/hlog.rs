//! The HdrHistogram interval log (format version 1.3): one compressed histogram per second.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use hdrhistogram::Histogram;
use hdrhistogram::serialization::V2DeflateSerializer;
use hdrhistogram::serialization::interval_log::IntervalLogWriterBuilder;

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{new_histogram, record};
    use hdrhistogram::serialization::Deserializer;
    use hdrhistogram::serialization::interval_log::{IntervalLogIterator, LogEntry};

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
        let mut counts = Vec::new();
        for entry in IntervalLogIterator::new(&text) {
            if let Ok(LogEntry::Interval(h)) = entry {
                let decoded: Histogram<u64> = Deserializer::new()
                    .deserialize(&mut base64_decode(h.encoded_histogram()).as_slice())
                    .expect("histogram");
                counts.push(decoded.len());
            }
        }
        assert_eq!(counts, vec![1, 11, 21]);
    }

    /// Standard base64 without padding checks, for the test only.
    fn base64_decode(text: &str) -> Vec<u8> {
        let table = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let mut out = Vec::new();
        let mut acc = 0u32;
        let mut bits = 0;
        for c in text.bytes().filter(|&c| c != b'=') {
            let v = table.iter().position(|&t| t == c).expect("base64") as u32;
            acc = (acc << 6) | v;
            bits += 6;
            if bits >= 8 {
                bits -= 8;
                out.push((acc >> bits) as u8);
            }
        }
        out
    }
}

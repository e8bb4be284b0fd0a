//! What one agent of a distributed test writes (`agent-<I>-of-<N>.json`) and
//! `surge report merge` reads back: who it is, when it began, its report and its full
//! histograms (V2-deflate, base64, as in `.hlog` lines), so the merge is exact.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Deserializer, Serializer as _, V2DeflateSerializer};
use serde::{Deserialize, Serialize};

use super::LatencySet;
use super::load_report::LoadReport;

/// The value of [`AgentRecord::format`] this version writes.
pub const AGENT_FORMAT: &str = "surge-agent/1";

/// The four histograms of a run, each encoded.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct EncodedHistograms {
    /// From the intended send time (coordinated-omission corrected).
    pub latency: String,
    /// From the actual send time.
    pub uncorrected: String,
    /// Actual send to first response byte.
    pub ttfb: String,
    /// SYN to ESTABLISHED.
    pub connect: String,
}

/// One agent's results file.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct AgentRecord {
    /// [`AGENT_FORMAT`].
    pub format: String,
    /// The test this agent ran a part of.
    pub test_id: String,
    /// This agent's index, `0..agents`.
    pub agent_index: usize,
    /// Agents in the test.
    pub agents: usize,
    /// The run's origin (the common `--start-at` when given), nanoseconds since the epoch.
    pub start_unix_ns: u64,
    /// How long after that origin the agent actually began.
    pub late_start_ns: u64,
    /// Global index of the agent's first connection slot.
    pub first_connection: usize,
    /// Connection slots of this agent.
    pub connections: usize,
    /// Connection slots of the whole test.
    pub connections_total: usize,
    /// The whole test's open-loop rate, requests/s.
    pub rate_total: Option<f64>,
    /// The whole test's `--requests` budget.
    pub requests_total: Option<u64>,
    /// The agent's histograms.
    pub histograms: EncodedHistograms,
    /// The agent's own report (its share: its connections, its rate).
    pub report: LoadReport,
}

impl AgentRecord {
    /// The run's origin as a system time.
    pub fn start_time(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_nanos(self.start_unix_ns)
    }
}

/// Encodes one histogram: V2 deflate, then base64.
pub fn encode_histogram(h: &Histogram<u64>) -> anyhow::Result<String> {
    let mut bytes = Vec::new();
    V2DeflateSerializer::new()
        .serialize(h, &mut bytes)
        .map_err(|e| anyhow::anyhow!("encoding a histogram: {e:?}"))?;
    Ok(base64::engine::general_purpose::STANDARD.encode(bytes))
}

/// Decodes what [`encode_histogram`] wrote.
pub fn decode_histogram(text: &str) -> anyhow::Result<Histogram<u64>> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .map_err(|e| anyhow::anyhow!("a histogram is not base64: {e}"))?;
    Deserializer::new()
        .deserialize(&mut bytes.as_slice())
        .map_err(|e| anyhow::anyhow!("decoding a histogram: {e:?}"))
}

impl EncodedHistograms {
    /// Encodes every histogram of `set`.
    pub fn of(set: &LatencySet) -> anyhow::Result<EncodedHistograms> {
        Ok(EncodedHistograms {
            latency: encode_histogram(&set.latency)?,
            uncorrected: encode_histogram(&set.uncorrected)?,
            ttfb: encode_histogram(&set.ttfb)?,
            connect: encode_histogram(&set.connect)?,
        })
    }

    /// Decodes them back (an empty string is an empty histogram).
    pub fn decode(&self) -> anyhow::Result<LatencySet> {
        let one = |text: &str, what: &str| -> anyhow::Result<Histogram<u64>> {
            let decoded = if text.trim().is_empty() {
                super::new_histogram()
            } else {
                decode_histogram(text).map_err(|e| e.context(format!("the {what} histogram")))?
            };
            // Merged into histograms of the usual bounds: re-record into one of those.
            let mut h = super::new_histogram();
            h.add(&decoded)
                .map_err(|e| anyhow::anyhow!("the {what} histogram: {e:?}"))?;
            Ok(h)
        };
        Ok(LatencySet {
            latency: one(&self.latency, "latency")?,
            uncorrected: one(&self.uncorrected, "uncorrected")?,
            ttfb: one(&self.ttfb, "ttfb")?,
            connect: one(&self.connect, "connect")?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::record;

    #[test]
    fn histograms_round_trip_exactly() {
        let mut set = LatencySet::default();
        for v in [1, 7, 900, 12_345, 3_000_000] {
            record(&mut set.latency, v);
            record(&mut set.connect, v * 2);
        }
        let encoded = EncodedHistograms::of(&set).expect("encode");
        let back = encoded.decode().expect("decode");
        assert_eq!(back.latency, set.latency);
        assert_eq!(back.connect, set.connect);
        assert!(back.ttfb.is_empty());
        assert!(decode_histogram("not base64!").is_err());
        assert!(decode_histogram("AAAA").is_err());
    }
}

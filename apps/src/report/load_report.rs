//! The result of one `surge load` run, as written to `--json` and printed as a table.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::hgrm::PercentileRow;
use super::{ErrorCounts, Summary};

/// One second of a run, as the live progress line showed it.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct IntervalLine {
    /// Seconds since the start of the run at the end of this interval.
    pub second: u64,
    /// Whether this interval lay (partly) in the warm-up period.
    pub warmup: bool,
    /// Responses received in the interval.
    pub answered: u64,
    /// Failed requests and connects in the interval.
    pub errors: u64,
    /// Bytes received in the interval.
    pub bytes_received: u64,
    /// Bytes sent in the interval.
    pub bytes_sent: u64,
    /// 99th percentile latency of the interval, microseconds (0 when nothing was measured).
    pub p99_us: u64,
}

/// Answered HTTP responses by status class (RFC 9110 §15), as `{"2xx": n, ...}` in JSON.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct StatusClasses {
    /// 200-299.
    #[serde(rename = "2xx")]
    pub success: u64,
    /// 300-399.
    #[serde(rename = "3xx")]
    pub redirection: u64,
    /// 400-499.
    #[serde(rename = "4xx")]
    pub client_error: u64,
    /// 500-599.
    #[serde(rename = "5xx")]
    pub server_error: u64,
    /// Any other three-digit code (600-999).
    pub other: u64,
}

impl StatusClasses {
    /// Counts one final response with this status code.
    pub fn count(&mut self, status: u16) {
        match status {
            200..=299 => self.success += 1,
            300..=399 => self.redirection += 1,
            400..=499 => self.client_error += 1,
            500..=599 => self.server_error += 1,
            _ => self.other += 1,
        }
    }

    /// Adds `other` into `self`.
    pub fn merge(&mut self, other: &StatusClasses) {
        self.success += other.success;
        self.redirection += other.redirection;
        self.client_error += other.client_error;
        self.server_error += other.server_error;
        self.other += other.other;
    }
}

/// Everything one run measured. Request counts obey `requests_sent == answered + errors_total`
/// (and the same for the `warmup_` counts); connect failures are counted apart, because no
/// request was written on those connections.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct LoadReport {
    /// Which stack carried the traffic (`kernel`, `surge`).
    pub stack: String,
    /// The server address.
    pub target: String,
    /// `rr`, `http`, `crr` or `stream`.
    pub mode: String,
    /// Worker threads.
    pub threads: usize,
    /// Connections (concurrent transactions for crr).
    pub connections: usize,
    /// Requests in flight per connection.
    pub pipeline: usize,
    /// Request size in bytes (rr, crr; the POST body for http).
    pub request_size: usize,
    /// Expected response size in bytes (rr, crr).
    pub response_size: usize,
    /// Stream direction (`up`: we send, `down`: we receive), stream mode only.
    pub direction: Option<String>,
    /// Open-loop target rate in requests per second, `None` for closed loop.
    pub rate: Option<f64>,
    /// Arrival process of the open loop (`constant` or `poisson`).
    pub arrivals: Option<String>,
    /// Length of the measured window (after warm-up), seconds.
    pub duration_s: f64,
    /// Warm-up excluded from the results, seconds.
    pub warmup_s: f64,
    /// Whether the run ended early (Ctrl-C, SIGTERM).
    pub stopped_early: bool,
    /// Requests written in the measured window.
    pub requests_sent: u64,
    /// Responses received for them.
    pub answered: u64,
    /// Requests that failed, all kinds.
    pub errors_total: u64,
    /// Failed requests by kind.
    pub errors: ErrorCounts,
    /// HTTP responses whose status was not 2xx or 3xx (counted in `answered` too).
    pub non_2xx: u64,
    /// HTTP responses by status class (http mode only; counted in `answered` too).
    pub http_status: Option<StatusClasses>,
    /// The HTTP request method (http mode only).
    pub method: Option<String>,
    /// Connection attempts.
    pub connect_attempts: u64,
    /// Attempts that reached ESTABLISHED.
    pub connects: u64,
    /// Failed connection attempts by kind.
    pub connect_errors: ErrorCounts,
    /// Requests written during warm-up.
    pub warmup_requests_sent: u64,
    /// Responses to warm-up requests.
    pub warmup_answered: u64,
    /// Warm-up requests that failed.
    pub warmup_errors: u64,
    /// Bytes written (whole run, warm-up included).
    pub bytes_sent: u64,
    /// Bytes read (whole run, warm-up included).
    pub bytes_received: u64,
    /// Checked streams (`--verify-bytes`) this side received whose SHA-256 matched.
    #[serde(default)]
    pub streams_verified: u64,
    /// Checked streams this side received whose SHA-256 or length did not match.
    #[serde(default)]
    pub streams_mismatched: u64,
    /// Checked streams that ended with both FINs and no error.
    #[serde(default)]
    pub streams_closed_cleanly: u64,
    /// `answered / duration_s`.
    pub requests_per_second: f64,
    /// Bytes read per second over the whole run.
    pub bytes_received_per_second: f64,
    /// Bytes written per second over the whole run.
    pub bytes_sent_per_second: f64,
    /// Latency from the intended send time (coordinated-omission corrected), microseconds.
    pub latency_us: Summary,
    /// Latency from the actual send time, microseconds.
    pub uncorrected_latency_us: Summary,
    /// Actual send to first response byte, microseconds.
    pub ttfb_us: Summary,
    /// SYN to ESTABLISHED, microseconds.
    pub connect_us: Summary,
    /// The percentile distribution of `latency_us`, the same rows as the `.hgrm` file.
    pub latency_percentiles: Vec<PercentileRow>,
    /// The stack's TCP counters over the run (deltas), e.g. `tcp_RetransSegs`.
    pub stack_counters: BTreeMap<String, i64>,
    /// One line per second.
    pub intervals: Vec<IntervalLine>,
}

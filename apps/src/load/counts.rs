//! What a load thread counts and hands to the main thread.

use hdrhistogram::Histogram;

use crate::report::load_report::StatusClasses;
use crate::report::{ErrorCounts, LatencySet, merge_counts};

/// What one thread counted.
#[derive(Clone, Debug, Default)]
pub struct Counts {
    /// Requests written after warm-up.
    pub requests_sent: u64,
    /// Responses to them.
    pub answered: u64,
    /// Failed requests after warm-up, by kind.
    pub errors: ErrorCounts,
    /// Non-2xx/3xx HTTP responses (also in `answered`).
    pub non_2xx: u64,
    /// HTTP responses after warm-up by status class.
    pub http_status: StatusClasses,
    /// Connection attempts.
    pub connect_attempts: u64,
    /// Attempts that succeeded.
    pub connects: u64,
    /// Failed attempts by kind.
    pub connect_errors: ErrorCounts,
    /// Requests written during warm-up.
    pub warmup_sent: u64,
    /// Responses to warm-up requests.
    pub warmup_answered: u64,
    /// Failed warm-up requests.
    pub warmup_errors: u64,
    /// Bytes written.
    pub bytes_sent: u64,
    /// Bytes read.
    pub bytes_received: u64,
    /// Checked streams (`--verify-bytes`) received whose SHA-256 matched.
    pub streams_verified: u64,
    /// Checked streams received whose SHA-256 or length did not match.
    pub streams_mismatched: u64,
    /// Checked streams that ended with both FINs and no error.
    pub streams_closed_cleanly: u64,
}

impl Counts {
    /// Adds `other` into `self`.
    pub fn merge(&mut self, other: &Counts) {
        self.requests_sent += other.requests_sent;
        self.answered += other.answered;
        merge_counts(&mut self.errors, &other.errors);
        self.non_2xx += other.non_2xx;
        self.http_status.merge(&other.http_status);
        self.connect_attempts += other.connect_attempts;
        self.connects += other.connects;
        merge_counts(&mut self.connect_errors, &other.connect_errors);
        self.warmup_sent += other.warmup_sent;
        self.warmup_answered += other.warmup_answered;
        self.warmup_errors += other.warmup_errors;
        self.bytes_sent += other.bytes_sent;
        self.bytes_received += other.bytes_received;
        self.streams_verified += other.streams_verified;
        self.streams_mismatched += other.streams_mismatched;
        self.streams_closed_cleanly += other.streams_closed_cleanly;
    }

    /// All failed requests after warm-up.
    pub fn errors_total(&self) -> u64 {
        self.errors.values().sum()
    }
}

/// One second of one thread, sent to the main thread for progress lines and the `.hlog`.
#[derive(Debug)]
pub struct IntervalMsg {
    /// The thread that measured it.
    pub thread: usize,
    /// Which second of the run (0-based) this covers.
    pub second: u64,
    /// Latency samples (measured requests only).
    pub histogram: Histogram<u64>,
    /// Responses.
    pub answered: u64,
    /// Failed requests and connects.
    pub errors: u64,
    /// Bytes read.
    pub bytes_received: u64,
    /// Bytes written.
    pub bytes_sent: u64,
}

/// What one thread hands back at the end.
#[derive(Debug, Default)]
pub struct ThreadResult {
    /// Its histograms.
    pub latencies: LatencySet,
    /// Its counters.
    pub counts: Counts,
    /// `--record-schedule`: the intended send time of every open-loop arrival it took,
    /// nanoseconds after the run's start.
    pub schedule: Vec<u64>,
}

/// This thread's share of the run.
#[derive(Clone, Debug)]
pub struct ThreadPlan {
    /// Thread number (seeds the Poisson generator).
    pub index: usize,
    /// Global index of this thread's first connection.
    pub first_connection: usize,
    /// Connections of this thread.
    pub connections: usize,
    /// This thread's share of `--requests`.
    pub requests: Option<u64>,
}

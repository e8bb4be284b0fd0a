//! The human report, in the style of `wrk --latency`.

use std::fmt::Write as _;

use super::load_report::LoadReport;
use super::{ErrorCounts, Summary, format_bytes, format_micros};

/// `kind n, kind n` or `none`.
fn format_counts(counts: &ErrorCounts) -> String {
    if counts.is_empty() {
        return "none".to_string();
    }
    counts
        .iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `p50 .. p99 .. max ..` for a phase histogram.
fn format_phase(s: &Summary) -> String {
    format!(
        "p50 {}  p99 {}  max {}  ({} samples)",
        format_micros(s.p50 as f64),
        format_micros(s.p99 as f64),
        format_micros(s.max as f64),
        s.count
    )
}

/// The table printed at the end of a run.
pub fn format_table(r: &LoadReport) -> String {
    let mut out = String::new();
    let load = match (r.rate, &r.arrivals) {
        (Some(rate), Some(arrivals)) => format!("open loop {rate:.0} req/s, {arrivals} arrivals"),
        _ => "closed loop".to_string(),
    };
    let _ = writeln!(
        out,
        "Running {:.2}s test @ {} (mode {}, {} stack, {load})",
        r.duration_s, r.target, r.mode, r.stack
    );
    let shape = match (r.mode.as_str(), &r.direction) {
        ("stream", Some(d)) => format!("direction {d}"),
        ("http", _) if r.request_size > 0 => format!(
            "pipeline {}, {} body {}B",
            r.pipeline,
            r.method.as_deref().unwrap_or("POST"),
            r.request_size
        ),
        ("http", _) => format!(
            "pipeline {}, {}",
            r.pipeline,
            r.method.as_deref().unwrap_or("GET")
        ),
        _ => format!(
            "pipeline {}, request {}B, response {}B",
            r.pipeline, r.request_size, r.response_size
        ),
    };
    let _ = writeln!(
        out,
        "  {} threads and {} connections, {shape}{}",
        r.threads,
        r.connections,
        if r.warmup_s > 0.0 {
            format!(", warm-up {:.2}s excluded", r.warmup_s)
        } else {
            String::new()
        }
    );
    if r.mode != "stream" && r.latency_us.count == 0 {
        let _ = writeln!(out, "  Latency: no responses, nothing to measure");
    } else if r.mode != "stream" {
        let l = &r.latency_us;
        let _ = writeln!(out, "  Stats          Avg       Stdev     Max");
        let _ = writeln!(
            out,
            "    Latency  {:>9}  {:>9}  {:>9}",
            format_micros(l.mean),
            format_micros(l.stdev),
            format_micros(l.max as f64)
        );
        let _ = writeln!(
            out,
            "  Latency Distribution ({})",
            if r.rate.is_some() {
                "from intended send times, corrected for coordinated omission"
            } else {
                "closed loop"
            }
        );
        for (label, value) in [
            ("50%", l.p50),
            ("90%", l.p90),
            ("99%", l.p99),
            ("99.9%", l.p99_9),
            ("99.99%", l.p99_99),
            ("max", l.max),
        ] {
            let _ = writeln!(out, "  {label:>7}  {:>9}", format_micros(value as f64));
        }
        let _ = writeln!(out, "  Phases");
        if r.connect_us.count > 0 {
            let _ = writeln!(out, "    connect    {}", format_phase(&r.connect_us));
        }
        let _ = writeln!(out, "    first byte {}", format_phase(&r.ttfb_us));
        if r.rate.is_some() {
            let _ = writeln!(
                out,
                "    uncorrected {}",
                format_phase(&r.uncorrected_latency_us)
            );
        }
    }
    if r.mode == "stream" {
        let _ = writeln!(
            out,
            "  {} read, {} written in {:.2}s",
            format_bytes(r.bytes_received as f64),
            format_bytes(r.bytes_sent as f64),
            r.duration_s
        );
        let _ = writeln!(
            out,
            "  Connects: {} of {} attempts; errors: {}",
            r.connects,
            r.connect_attempts,
            format_counts(&r.connect_errors)
        );
        if let Some(retrans) = r.stack_counters.get("tcp_RetransSegs") {
            let _ = writeln!(out, "  TCP retransmitted segments: {retrans}");
        }
        let per_second = r.bytes_received_per_second + r.bytes_sent_per_second;
        let _ = writeln!(
            out,
            "Throughput: {:>10}/s ({:.2} Gbit/s)",
            format_bytes(per_second),
            per_second * 8.0 / 1e9
        );
        return out;
    }
    let _ = writeln!(
        out,
        "  {} requests in {:.2}s ({} answered, {} errors), {} read, {} written",
        r.requests_sent,
        r.duration_s,
        r.answered,
        r.errors_total,
        format_bytes(r.bytes_received as f64),
        format_bytes(r.bytes_sent as f64)
    );
    let _ = writeln!(out, "  Errors: {}", format_counts(&r.errors));
    let _ = writeln!(
        out,
        "  Connects: {} of {} attempts; errors: {}",
        r.connects,
        r.connect_attempts,
        format_counts(&r.connect_errors)
    );
    if let Some(s) = &r.http_status {
        let _ = writeln!(
            out,
            "  HTTP status: 2xx {}, 3xx {}, 4xx {}, 5xx {}{}",
            s.success,
            s.redirection,
            s.client_error,
            s.server_error,
            if s.other > 0 {
                format!(", other {}", s.other)
            } else {
                String::new()
            }
        );
    }
    if r.non_2xx > 0 {
        let _ = writeln!(out, "  Non-2xx or 3xx responses: {}", r.non_2xx);
    }
    if let Some(retrans) = r.stack_counters.get("tcp_RetransSegs") {
        let _ = writeln!(out, "  TCP retransmitted segments: {retrans}");
    }
    if r.stopped_early {
        let _ = writeln!(out, "  (stopped early by a signal)");
    }
    let _ = writeln!(out, "Requests/sec: {:>10.2}", r.requests_per_second);
    let _ = writeln!(
        out,
        "Transfer/sec: {:>10} read, {} written",
        format_bytes(r.bytes_received_per_second),
        format_bytes(r.bytes_sent_per_second)
    );
    out
}

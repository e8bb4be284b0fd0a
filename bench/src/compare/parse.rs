//! Reading what the other tools print: wrk's report, sockperf's summary, iperf3's JSON and
//! `surge load`'s JSON, each into one [`Measurement`].

use anyhow::{Context, bail};
use serde_json::Value;

use super::cpu::CpuBusy;

/// What one run of one contender measured.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Measurement {
    /// The row's figure (requests/s, connections/s, µs, Gbit/s or frames/s).
    pub(crate) value: f64,
    /// Median latency, µs, when the tool reports it.
    pub(crate) p50_us: Option<f64>,
    /// 99th percentile latency, µs, when the tool reports it.
    pub(crate) p99_us: Option<f64>,
    /// Failed requests or connections the tool counted.
    pub(crate) errors: u64,
    /// How busy the server's and the client's CPU were while the client measured
    /// (sampled by `compare` itself, not read from the tool).
    pub(crate) cpu_busy: Option<CpuBusy>,
}

/// `280.00us`, `1.23ms`, `2.00s`, `1.00m` (wrk's units) in microseconds.
fn micros(text: &str) -> Option<f64> {
    let split = text.find(|c: char| c.is_ascii_alphabetic())?;
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().ok()?;
    let scale = match unit {
        "us" => 1.0,
        "ms" => 1e3,
        "s" => 1e6,
        "m" => 60e6,
        "h" => 3600e6,
        _ => return None,
    };
    Some(number * scale)
}

/// wrk's report (run with `--latency`): requests/s, the 50% and 99% rows, and the socket
/// errors plus non-2xx/3xx responses as errors.
pub(crate) fn wrk(output: &str) -> anyhow::Result<Measurement> {
    let mut m = Measurement::default();
    let mut rate = None;
    for line in output.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["Requests/sec:", v] => rate = v.parse::<f64>().ok(),
            ["50%", v] => m.p50_us = micros(v),
            ["99%", v] => m.p99_us = micros(v),
            ["Non-2xx", "or", "3xx", "responses:", n] => m.errors += n.parse::<u64>().unwrap_or(0),
            ["Socket", "errors:", rest @ ..] => {
                // connect N, read N, write N, timeout N
                m.errors += rest
                    .iter()
                    .filter_map(|w| w.trim_end_matches(',').parse::<u64>().ok())
                    .sum::<u64>();
            }
            _ => {}
        }
    }
    m.value = rate.context("wrk printed no Requests/sec line")?;
    Ok(m)
}

/// sockperf's ping-pong summary: the median one-way latency (sockperf reports half the round
/// trip, in µs) is the figure; the 99th percentile beside it; lost messages are errors.
pub(crate) fn sockperf(output: &str) -> anyhow::Result<Measurement> {
    let mut m = Measurement::default();
    let mut sent_received = None;
    for line in output.lines() {
        let line = line.trim_start_matches("sockperf:").trim();
        if let Some(rest) = line.strip_prefix("---> percentile") {
            let mut parts = rest.split('=');
            let (Some(p), Some(v)) = (parts.next(), parts.next()) else {
                continue;
            };
            let (p, v) = (p.trim(), v.trim().parse::<f64>().ok());
            match p {
                "50.000" => m.p50_us = v,
                "99.000" => m.p99_us = v,
                _ => {}
            }
        } else if line.starts_with("[Valid Duration]") {
            let field = |name: &str| {
                line.split(';')
                    .find_map(|f| f.trim().strip_prefix(name))
                    .and_then(|v| v.trim().parse::<u64>().ok())
            };
            sent_received = field("SentMessages=").zip(field("ReceivedMessages="));
        }
    }
    let (sent, received) = sent_received.context("sockperf printed no [Valid Duration] line")?;
    if received == 0 {
        bail!("sockperf received no answer ({sent} messages sent)");
    }
    m.value = m.p50_us.context("sockperf printed no 50th percentile")?;
    // One message may be in flight when the run ends.
    m.errors = sent.saturating_sub(received).saturating_sub(1);
    Ok(m)
}

/// iperf3's `-J` report: received Gbit/s; retransmissions are not errors (TCP recovers them).
pub(crate) fn iperf3(json: &str) -> anyhow::Result<Measurement> {
    let v: Value = serde_json::from_str(json).context("iperf3 -J did not print JSON")?;
    if let Some(error) = v.get("error").and_then(Value::as_str) {
        bail!("iperf3: {error}");
    }
    let bits = v
        .pointer("/end/sum_received/bits_per_second")
        .and_then(Value::as_f64)
        .context("iperf3's JSON has no end.sum_received.bits_per_second")?;
    Ok(Measurement {
        value: bits / 1e9,
        ..Measurement::default()
    })
}

/// What figure of a `surge load` report a row shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LoadFigure {
    /// Answered requests per second.
    RequestsPerSecond,
    /// Bytes sent per second, as Gbit/s (stream `--direction up`).
    GbitSent,
    /// Bytes received per second, as Gbit/s (stream `--direction down`).
    GbitReceived,
}

/// `surge load --json`: the figure, p50/p99 latency, errors (failed requests and failed
/// connects).
pub(crate) fn surge_load(json: &str, figure: LoadFigure) -> anyhow::Result<Measurement> {
    let v: Value = serde_json::from_str(json).context("surge load's JSON does not parse")?;
    let num = |path: &str| v.pointer(path).and_then(Value::as_f64);
    let count = |path: &str| v.pointer(path).and_then(Value::as_u64).unwrap_or(0);
    let connect_errors: u64 = v
        .get("connect_errors")
        .and_then(Value::as_object)
        .map_or(0, |o| o.values().filter_map(Value::as_u64).sum());
    let value = match figure {
        LoadFigure::RequestsPerSecond => num("/requests_per_second"),
        LoadFigure::GbitSent => num("/bytes_sent_per_second").map(|b| b * 8.0 / 1e9),
        LoadFigure::GbitReceived => num("/bytes_received_per_second").map(|b| b * 8.0 / 1e9),
    }
    .context("surge load's JSON lacks the figure")?;
    let latency =
        |q: &str| num(&format!("/latency_us/{q}")).filter(|_| count("/latency_us/count") > 0);
    Ok(Measurement {
        value,
        p50_us: latency("p50"),
        p99_us: latency("p99"),
        errors: count("/errors_total") + connect_errors + count("/non_2xx"),
        cpu_busy: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrk_report() {
        let out = "Running 5s test @ http://198.18.0.1:8080/\n  1 threads and 50 connections\n\
            \x20 Thread Stats   Avg      Stdev     Max   +/- Stdev\n\
            \x20   Latency   297.12us  102.31us   4.12ms   90.12%\n\
            \x20 Latency Distribution\n     50%  280.00us\n     75%  310.00us\n     90%  350.00us\n\
            \x20    99%    1.50ms\n  840000 requests in 5.00s, 120.00MB read\n\
            \x20 Socket errors: connect 0, read 12, write 1, timeout 2\n\
            \x20 Non-2xx or 3xx responses: 5\nRequests/sec: 168000.12\nTransfer/sec:     24.00MB\n";
        let m = wrk(out).expect("parse");
        assert_eq!(m.value, 168000.12);
        assert_eq!(m.p50_us, Some(280.0));
        assert_eq!(m.p99_us, Some(1500.0));
        assert_eq!(m.errors, 20);
        assert!(wrk("unable to connect to 198.18.0.1:8080 Connection refused\n").is_err());
    }

    #[test]
    fn sockperf_summary() {
        let out = "sockperf: == version #3.7-no.git == \n\
            sockperf: [Valid Duration] RunTime=4.550 sec; SentMessages=273811; ReceivedMessages=273810\n\
            sockperf: ====> avg-latency=8.285 (std-dev=1.234)\n\
            sockperf: Summary: Latency is 8.285 usec\n\
            sockperf: ---> <MAX> observation =   72.123\n\
            sockperf: ---> percentile 99.999 =   50.123\n\
            sockperf: ---> percentile 99.000 =   15.123\n\
            sockperf: ---> percentile 50.000 =    8.000\n\
            sockperf: ---> <MIN> observation =    5.000\n";
        let m = sockperf(out).expect("parse");
        assert_eq!(m.value, 8.0);
        assert_eq!(m.p99_us, Some(15.123));
        assert_eq!(m.errors, 0);
        let none =
            "sockperf: [Valid Duration] RunTime=1.000 sec; SentMessages=1; ReceivedMessages=0\n";
        assert!(sockperf(none).is_err());
    }

    #[test]
    fn iperf3_json() {
        let m = iperf3(r#"{"end":{"sum_received":{"bits_per_second":9.5e9}}}"#).expect("parse");
        assert_eq!(m.value, 9.5);
        let err = iperf3(r#"{"error":"unable to connect to server"}"#).expect_err("error");
        assert!(err.to_string().contains("unable to connect"));
    }

    #[test]
    fn surge_load_json() {
        let json = r#"{"requests_per_second": 1000.5, "bytes_sent_per_second": 125000000.0,
            "latency_us": {"count": 10, "p50": 40, "p99": 90}, "errors_total": 2, "non_2xx": 1,
            "connect_errors": {"refused": 3}}"#;
        let m = surge_load(json, LoadFigure::RequestsPerSecond).expect("parse");
        assert_eq!(m.value, 1000.5);
        assert_eq!((m.p50_us, m.p99_us, m.errors), (Some(40.0), Some(90.0), 6));
        let g = surge_load(json, LoadFigure::GbitSent).expect("parse");
        assert_eq!(g.value, 1.0);
        assert!(surge_load("{}", LoadFigure::RequestsPerSecond).is_err());
    }
}

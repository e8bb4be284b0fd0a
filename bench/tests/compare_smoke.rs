//! Root test: `surge-bench compare --smoke` runs every row end to end on a fresh lab (surge,
//! nginx, wrk, sockperf, iperf3) and prints the table with every contender and sane,
//! non-zero figures, each with the server's and the client's CPU busy share (0–100 %) and
//! the side that saturated; the JSON and the charts are written and the lab is gone
//! afterwards. No timing is asserted.

mod common;

use common::surge_binary;
use std::process::Command;

/// Every contender's name and the titles of the groups whose contenders repeat, as the
/// table prints them.
const ROW_NAMES: [&str; 22] = [
    "wrk -> nginx",
    "wrk -> surge serve",
    "surge load -> nginx",
    "surge load -> surge serve",
    "kernel client -> kernel server",
    "kernel client -> surge server",
    "sockperf -> sockperf server",
    "sockperf -> surge serve",
    "iperf3 -> iperf3 (kernel)",
    "surge load -> surge serve (stream)",
    "surge-datapath, A -> B",
    "surge-datapath echo, 50 in flight",
    "surge-datapath echo, 256 in flight",
    "| defaults |",
    "| busy polling |",
    "| NAPI deferral |",
    "| busy polling + NAPI deferral |",
    // The rows whose contenders repeat under another title, counted below.
    "HTTP `Connection: close`",
    "1,000 connections",
    "10,000 connections",
    "raw AF_XDP frame rate",
    "raw AF_XDP frame echo",
];

/// What the table and the JSON may say saturated (the frame-rate row names its CPUs).
const SATURATED: [&str; 6] = ["neither", "server", "client", "both", "CPU 0", "CPU 1"];

/// Whether a busy share is a percentage.
fn is_percent(v: f64) -> bool {
    (0.0..=100.0).contains(&v)
}

/// The server and client busy shares of a row's `98% / 100%` cell and its saturated cell.
fn busy_of(row: &str) -> (f64, f64, String) {
    let cells: Vec<&str> = row.split('|').map(str::trim).collect();
    let percent = |s: &str| s.trim().strip_suffix('%')?.parse::<f64>().ok();
    let (server, client) = cells
        .get(9)
        .and_then(|c| c.split_once(" / "))
        .and_then(|(s, c)| percent(s).zip(percent(c)))
        .unwrap_or_else(|| panic!("no CPU busy cell in {row:?}"));
    (
        server,
        client,
        cells.get(10).copied().unwrap_or("").to_string(),
    )
}

/// The figure in the third column of a table row (`12,345` or `8.29`).
fn median_of(row: &str) -> f64 {
    let cells: Vec<&str> = row.split('|').map(str::trim).collect();
    cells
        .get(3)
        .and_then(|c| c.replace(',', "").parse::<f64>().ok())
        .unwrap_or_else(|| panic!("no median in {row:?}"))
}

#[test]
fn compare_smoke_prints_every_row_with_sane_figures() {
    let dir = std::env::temp_dir().join(format!("surge-compare-smoke-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    let json = dir.join("compare.json");
    let out = Command::new(env!("CARGO_BIN_EXE_surge-bench"))
        .args(["compare", "--smoke", "--json"])
        .arg(&json)
        .arg("--out")
        .arg(&dir)
        .arg("--surge")
        .arg(surge_binary())
        .output()
        .expect("running surge-bench compare");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "compare failed:\n{stdout}\n{stderr}");

    // The table: a header, then one row per contender of every group.
    let rows: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| row ") && !l.starts_with("| ---"))
        .collect();
    assert_eq!(rows.len(), 23, "rows:\n{}", rows.join("\n"));
    for name in ROW_NAMES {
        assert!(
            rows.iter().any(|r| r.contains(name)),
            "no row for {name:?} in:\n{stdout}"
        );
    }
    assert_eq!(
        rows.iter()
            .filter(|r| r.contains("| wrk -> nginx |"))
            .count(),
        2
    );
    assert!(
        stdout.contains("| server / client CPU busy | saturated (≥ 95% busy) |"),
        "{stdout}"
    );
    for row in &rows {
        let median = median_of(row);
        assert!(median.is_finite() && median > 0.0, "bad figure in {row:?}");
        let (server, client, saturated) = busy_of(row);
        assert!(is_percent(server) && is_percent(client), "{row:?}");
        assert!(SATURATED.contains(&saturated.as_str()), "{row:?}");
    }
    // Frames per second of a veth pair are at least thousands, HTTP rates at least tens.
    let frames = rows
        .iter()
        .find(|r| r.contains("surge-datapath"))
        .expect("frames row");
    assert!(median_of(frames) > 1000.0, "{frames}");
    // The keep-alive rows are set against the echo ceiling, which is one of the echo rows.
    for row in rows.iter().filter(|r| r.contains("HTTP keep-alive")) {
        assert!(row.contains("% of the echo ceiling"), "{row}");
    }
    assert!(
        rows.iter()
            .any(|r| r.contains("echo, ") && r.contains("| the echo ceiling (")),
        "{stdout}"
    );

    // The JSON holds every run, and the charts are PNG files.
    let parsed: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("json")).expect("parse");
    for side in ["server_pct", "client_pct"] {
        let busy = parsed["background_cpu_busy"][side].as_f64();
        assert!(busy.is_some_and(is_percent), "{parsed}");
    }
    let echo = parsed["echo_ceiling_round_trips_per_s"].as_f64();
    assert!(echo.is_some_and(|e| e > 0.0), "{parsed}");
    let groups = parsed["rows"].as_array().expect("rows");
    assert_eq!(groups.len(), 9);
    for group in groups {
        for case in group["cases"].as_array().expect("cases") {
            let runs = case["runs"].as_array().expect("runs");
            assert_eq!(runs.len(), 1, "{case}");
            assert!(runs[0]["value"].as_f64().is_some_and(|v| v > 0.0), "{case}");
            for busy in [&case["cpu_busy"], &runs[0]["cpu_busy"]] {
                for side in ["server_pct", "client_pct"] {
                    assert!(busy[side].as_f64().is_some_and(is_percent), "{case}");
                }
                let saturated = busy["saturated"].as_str().unwrap_or("");
                assert!(SATURATED.contains(&saturated), "{case}");
            }
        }
        let chart = dir.join(format!("{}.png", group["id"].as_str().expect("id")));
        let png = std::fs::read(&chart).unwrap_or_else(|_| panic!("{}", chart.display()));
        assert_eq!(png.get(..4), Some(&b"\x89PNG"[..]));
    }
    assert!(dir.join("http-keepalive-latency.png").is_file());
    // Each run's log ends with its CPU busy line.
    let log = std::fs::read_to_string(dir.join("runs/rr-10k-0-round0.log")).expect("rr log");
    assert!(log.contains("CPU busy over the measured window"), "{log}");

    // The lab it built is gone.
    let lab = stderr
        .lines()
        .find_map(|l| l.strip_prefix("lab ")?.split(':').next())
        .expect("the lab's name on stderr");
    let labs = surge_lab::list_labs();
    assert!(!labs.iter().any(|l| l == lab), "{lab} left behind");
    let _ = std::fs::remove_dir_all(&dir);
}

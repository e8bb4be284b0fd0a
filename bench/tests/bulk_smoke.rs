//! Root test: `surge-bench bulk --smoke` runs every contender at MTU 1500 and 9000 on fresh
//! labs (surge and the kernel serving a kernel client both ways, iperf3 both ways, the raw
//! AF_XDP frame rate at full-size frames) and prints one row per MTU and direction with
//! positive figures. Checked besides: each stream run's client and server reports agree
//! (one connection, no errors, every byte the client sent up was read by the server, no
//! more arrived down than the server wrote), and one lab per MTU was built and is gone
//! afterwards. No timing is asserted.

mod common;

use common::surge_binary;
use serde_json::Value;
use std::path::Path;
use std::process::Command;

/// The JSON report `file` of the run directory `runs`.
fn report(runs: &Path, file: &str) -> Value {
    let path = runs.join(file);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("parsing {}: {e}", path.display()))
}

/// Integer `key` of a report.
fn count(v: &Value, key: &str) -> u64 {
    v[key]
        .as_u64()
        .unwrap_or_else(|| panic!("no integer {key} in {v}"))
}

/// The leading number of a cell (`1.98 (1.90–2.10)`, `162,299 (...)`, `0.63x (...)`).
fn leading_number(cell: &str) -> f64 {
    let number: String = cell
        .trim()
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.' || *c == ',')
        .filter(|c| *c != ',')
        .collect();
    number
        .parse()
        .unwrap_or_else(|_| panic!("no number in {cell:?}"))
}

#[test]
fn bulk_smoke_prints_every_mtu_and_direction_with_positive_figures() {
    let dir = std::env::temp_dir().join(format!("surge-bulk-smoke-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let out = Command::new(env!("CARGO_BIN_EXE_surge-bench"))
        .args(["bulk", "--smoke", "--out"])
        .arg(&dir)
        .arg("--surge")
        .arg(surge_binary())
        .output()
        .expect("running surge-bench bulk");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "bulk failed:\n{stdout}\n{stderr}");

    let rows: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| MTU ") && !l.starts_with("| ---"))
        .collect();
    assert_eq!(rows.len(), 4, "rows:\n{stdout}");
    for (mtu, direction) in [
        ("1500", "up"),
        ("1500", "down"),
        ("9000", "up"),
        ("9000", "down"),
    ] {
        let row = rows
            .iter()
            .find(|r| r.starts_with(&format!("| {mtu} | {direction} ")))
            .unwrap_or_else(|| panic!("no {mtu} {direction} row in:\n{stdout}"));
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        // surge, kernel, iperf3, frames/s, raw Gbit/s, surge/kernel, surge/raw.
        for cell in &cells[3..10] {
            let v = leading_number(cell);
            assert!(v.is_finite() && v > 0.0, "bad figure {cell:?} in {row:?}");
        }
    }

    // Each stream run (surge's and the kernel's server, each direction, each MTU): the
    // client (`surge load --json`) and the server (`surge serve --json`) agree.
    let runs = dir.join("runs");
    for mtu in ["1500", "9000"] {
        for (server, stack) in [("surge", "surge"), ("kernel", "kernel")] {
            for direction in ["up", "down"] {
                let name = format!("mtu{mtu}-{server}-{direction}-round0");
                let client = report(&runs, &format!("{name}.json"));
                let served = report(&runs, &format!("{name}.server.json"));
                let what = format!("{name}:\nclient {client}\nserver {served}");
                assert_eq!(count(&client, "connects"), 1, "{what}");
                assert_eq!(count(&client, "errors_total"), 0, "{what}");
                assert_eq!(served["stack"].as_str(), Some(stack), "{what}");
                assert_eq!(served["mode"].as_str(), Some("stream"), "{what}");
                assert!(
                    served["errors"].as_object().is_some_and(|m| m.is_empty()),
                    "{what}"
                );
                let (sent, received) = (
                    count(&client, "bytes_sent"),
                    count(&client, "bytes_received"),
                );
                if direction == "up" {
                    // The client waits for the server's FIN, which comes after the server
                    // read to the end: everything sent was read.
                    assert!(sent > 1, "{what}");
                    assert_eq!(count(&served, "bytes_received"), sent, "{what}");
                } else {
                    // The client stops reading at its deadline: what it read was written.
                    assert!(received > 0, "{what}");
                    assert!(received <= count(&served, "bytes_sent"), "{what}");
                }
            }
        }
    }

    // One lab per MTU was built, and each is gone.
    let built: Vec<&str> = stderr
        .lines()
        .filter_map(|l| l.strip_prefix("lab ")?.split(':').next())
        .collect();
    assert_eq!(built.len(), 2, "labs announced:\n{stderr}");
    let labs = surge_lab::list_labs();
    for lab in &built {
        assert!(!labs.iter().any(|l| l == lab), "{lab} left behind");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

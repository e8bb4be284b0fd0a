//! Root test: `surge-bench bulk --smoke` runs every contender at MTU 1500 and 9000 on fresh
//! labs (surge and the kernel serving a kernel client both ways, iperf3 both ways, the raw
//! AF_XDP frame rate at full-size frames) and prints one row per MTU and direction with
//! positive figures; the labs are gone afterwards. No timing is asserted.

mod common;

use common::surge_binary;
use std::process::Command;

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

    // The labs it built are gone.
    let labs = surge_lab::list_labs();
    for lab in stderr
        .lines()
        .filter_map(|l| l.strip_prefix("lab ")?.split(':').next())
    {
        assert!(!labs.iter().any(|l| l == lab), "{lab} left behind");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

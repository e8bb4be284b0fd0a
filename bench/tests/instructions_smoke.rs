//! `surge-bench instructions` end to end with a few requests: both stacks run under
//! callgrind and the table has one row per connection count with positive counts and a
//! ratio, simulated L1i misses and hot code sizes in range. No count is asserted (that is
//! what the benchmark reports).

use std::process::Command;

#[test]
fn prints_instructions_per_echo_for_surge_and_smoltcp() {
    let out = Command::new(env!("CARGO_BIN_EXE_surge-bench"))
        .args(["instructions", "--requests", "300", "--connections", "1,3"])
        .output()
        .expect("run surge-bench");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    let rows: Vec<Vec<&str>> = stdout
        .lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| conns") && !l.starts_with("| ---"))
        .map(|l| l.trim_matches('|').split('|').map(str::trim).collect())
        .collect();
    assert_eq!(rows.len(), 2, "{stdout}");
    for (row, conns) in rows.iter().zip(["1", "3"]) {
        assert_eq!(row[0], conns, "{stdout}");
        let surge: f64 = row[1].parse().expect("surge count");
        let smoltcp: f64 = row[2].parse().expect("smoltcp count");
        // An echo is two data segments through two stacks: thousands of instructions,
        // never zero, never millions.
        assert!((500.0..1e6).contains(&surge), "{stdout}");
        assert!((500.0..1e6).contains(&smoltcp), "{stdout}");
        let ratio: f64 = row[3].trim_end_matches('x').parse().expect("ratio");
        assert!((ratio - surge / smoltcp).abs() < 0.01, "{stdout}");
        // Simulated L1i misses: at most one per instruction; the hot code: some lines,
        // and no more lines than instructions per echo.
        for (misses, kib, count) in [(row[4], row[6], surge), (row[5], row[7], smoltcp)] {
            let misses: f64 = misses.parse().expect("L1i misses");
            assert!((0.0..=count).contains(&misses), "{stdout}");
            let kib: f64 = kib.parse().expect("hot code KiB");
            assert!(kib > 0.5 && kib * 1024.0 / 64.0 <= count, "{stdout}");
        }
    }
}

//! Root test: `surge demo` runs end to end (both parts, four rounds), writes its
//! reports, and leaves no lab behind.

use std::process::Command;

#[test]
fn demo_runs_end_to_end_and_cleans_up() {
    let results = std::env::temp_dir().join(format!("surge-demo-test-{}", std::process::id()));
    let out = Command::new(env!("CARGO_BIN_EXE_surge"))
        .args(["demo", "-d", "1s", "-c", "8", "--results"])
        .arg(&results)
        .output()
        .expect("running surge demo");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "surge demo failed:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("surge<->surge kernel<->kernel"), "{stdout}");
    assert!(stdout.contains("surge server  kernel server"), "{stdout}");
    for name in [
        "surge-surge",
        "kernel-kernel",
        "surge-server",
        "kernel-server",
    ] {
        let path = results.join(format!("{name}.json"));
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let report: serde_json::Value = serde_json::from_str(&text).expect("report JSON");
        let answered = report["answered"].as_u64().expect("answered");
        assert!(answered > 0, "{name}: nothing answered");
        assert_eq!(report["errors_total"].as_u64(), Some(0), "{name}: {report}");
        for ext in ["hgrm", "png"] {
            assert!(
                results.join(format!("{name}.{ext}")).is_file(),
                "{name}.{ext} written"
            );
        }
    }
    // The side-by-side percentile charts.
    for chart in ["both-ends.png", "servers.png"] {
        let png = std::fs::read(results.join(chart)).unwrap_or_else(|e| panic!("{chart}: {e}"));
        assert_eq!(png.get(..4), Some(&b"\x89PNG"[..]), "{chart}");
    }
    // The lab this demo built (its name is printed) is gone; other demos running
    // on the machine at the same time are not ours to judge.
    let labs: Vec<&str> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("building lab "))
        .filter_map(|l| l.split_whitespace().next())
        .collect();
    assert!(!labs.is_empty(), "the demo names its lab: {stdout}");
    let netns = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .expect("ip netns list");
    let left = String::from_utf8_lossy(&netns.stdout);
    for lab in labs {
        assert!(
            !left.contains(&format!("surge-{lab}-")),
            "lab {lab} was left behind:\n{left}"
        );
    }
    let _ = std::fs::remove_dir_all(&results);
}

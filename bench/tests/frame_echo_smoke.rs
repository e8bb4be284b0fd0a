//! Root test: `surge-bench frame-echo` runs the raw AF_XDP frame echo for 0.2 s at two
//! windows on a fresh lab, reflector and client pinned, and every request is accounted
//! for: answered, written off as lost, or still in flight (never more than the window)
//! when the client stopped; the reflector turned every frame it got into a reply or
//! counted it as dropped, the client heard only replies the reflector sent, and both
//! ports got every frame of their pools back. The lab is gone afterwards. No timing is
//! asserted.

use std::process::Command;

use serde_json::Value;

/// Integer `key` of `v`.
fn count(v: &Value, key: &str) -> u64 {
    v[key]
        .as_u64()
        .unwrap_or_else(|| panic!("no integer {key} in {v}"))
}

#[test]
fn frame_echo_answers_or_accounts_for_every_request() {
    let dir = std::env::temp_dir().join(format!("surge-frame-echo-smoke-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    let json = dir.join("echo.json");
    let out = Command::new(env!("CARGO_BIN_EXE_surge-bench"))
        .args([
            "frame-echo",
            "--seconds",
            "0.2",
            "--windows",
            "50,1",
            "--json",
        ])
        .arg(&json)
        .output()
        .expect("running surge-bench frame-echo");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "frame-echo failed:\n{stdout}\n{stderr}"
    );
    for window in ["| 50 |", "| 1 |"] {
        assert!(stdout.lines().any(|l| l.starts_with(window)), "{stdout}");
    }

    let parsed: Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("json")).expect("parse");
    let runs = parsed["runs"].as_array().expect("runs");
    assert_eq!(runs.len(), 2, "{parsed}");
    for run in runs {
        let (client, reflector) = (&run["client"], &run["reflector"]);
        let window = count(run, "window");
        assert!(count(run, "round_trips") > 0, "{run}");
        assert!(
            run["round_trips_per_s"].as_f64().is_some_and(|r| r > 0.0),
            "{run}"
        );
        // Every request sent: answered, written off, or in flight at the stop.
        let sent = count(client, "sent");
        let unanswered = count(client, "unanswered");
        assert_eq!(
            sent,
            count(client, "received") + count(client, "lost") + unanswered,
            "{run}"
        );
        assert_eq!(run["requests_accounted"], true, "{run}");
        assert!(unanswered <= window, "{run}");
        assert!(
            count(run, "round_trips") <= count(client, "received"),
            "{run}"
        );
        // The reflector: every frame it got was reflected or dropped, every reply sent or
        // released; it reflected no more than was sent to it, and the client got no more
        // replies than it sent.
        assert_eq!(
            count(reflector, "received"),
            count(reflector, "reflected") + count(reflector, "dropped"),
            "{run}"
        );
        assert_eq!(
            count(reflector, "reflected"),
            count(reflector, "sent") + count(reflector, "unsent"),
            "{run}"
        );
        assert!(count(reflector, "reflected") <= sent, "{run}");
        assert!(
            count(client, "received") <= count(reflector, "sent"),
            "{run}"
        );
        // Both ports' frames are all back.
        assert_eq!(client["frames_balanced"], true, "{run}");
        assert_eq!(reflector["frames_balanced"], true, "{run}");
    }

    // The lab it built is gone.
    let lab = stderr
        .lines()
        .find_map(|l| l.strip_prefix("lab ")?.split(':').next())
        .expect("the lab's name on stderr");
    assert!(
        !surge_lab::list_labs().iter().any(|l| l == lab),
        "{lab} left behind"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

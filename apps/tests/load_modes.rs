//! Root tests of `surge load` against `surge serve` on the kernel stack, in fresh labs:
//! every mode (counts must agree on both sides), the open-loop rate controller, the output
//! files, and the --find-max search.

mod load_support;

use load_support::*;
use surge_lab::{Lab, LabSpec, Topology};

#[test]
fn rr_echo_and_crr_agree_with_the_server() {
    let lab = Lab::up(&LabSpec::unique("ldrr", Topology::Pair)).expect("lab up");
    let dir = Scratch::new("rr");
    let (server_json, load_json) = (dir.path("server.json"), dir.path("load.json"));

    // rr with pipelining and different sizes each way.
    let server = serve(
        &lab,
        7001,
        "rr",
        &["--request-size", "100", "--response-size", "300"],
        &server_json,
    );
    let (_, report) = load(
        &lab,
        7001,
        &[
            "--mode",
            "rr",
            "-c",
            "4",
            "-t",
            "2",
            "-d",
            "2s",
            "--pipeline",
            "3",
            "--request-size",
            "100",
            "--response-size",
            "300",
            "--warmup",
            "500ms",
            "-q",
        ],
        &load_json,
    );
    server.stop();
    let server = read_json(&server_json);
    assert_matches_server(&report, &server, "rr");
    assert!(
        num(&report, "warmup_answered") > 0,
        "warm-up requests are counted apart"
    );
    assert_eq!(num(&report, "bytes_sent") % 100, 0);
    assert_eq!(num(&report, "connects"), 4);
    assert_eq!(num(&server, "connections"), 4);

    // rr against echo: request size = response size.
    let server = serve(&lab, 7002, "echo", &[], &server_json);
    let (_, report) = load(
        &lab,
        7002,
        &[
            "--mode",
            "rr",
            "-c",
            "2",
            "-d",
            "1s",
            "--request-size",
            "64",
            "-q",
        ],
        &load_json,
    );
    server.stop();
    let server = read_json(&server_json);
    assert_eq!(num(&report, "errors_total"), 0);
    assert!(num(&report, "answered") > 0);
    assert_eq!(num(&server, "bytes_received"), num(&report, "bytes_sent"));
    assert_eq!(num(&server, "bytes_sent"), num(&report, "bytes_received"));
    assert_eq!(
        num(&report, "bytes_received"),
        64 * num(&report, "answered")
    );

    // A request budget: exactly that many requests, then the run ends; ramped-up connects.
    let server = serve(&lab, 7004, "rr", &[], &server_json);
    let (_, report) = load(
        &lab,
        7004,
        &[
            "--mode",
            "rr",
            "-c",
            "3",
            "-d",
            "20s",
            "--requests",
            "500",
            "--ramp-up",
            "300ms",
            "-q",
        ],
        &load_json,
    );
    server.stop();
    let server = read_json(&server_json);
    assert_matches_server(&report, &server, "budget");
    assert_eq!(num(&report, "requests_sent"), 500);
    assert!(
        float(&report, "duration_s") < 15.0,
        "the budget ended the run early"
    );

    // crr: one connection per transaction.
    let server = serve(&lab, 7003, "rr", &[], &server_json);
    let (out, report) = load(
        &lab,
        7003,
        &["--mode", "crr", "-c", "4", "-d", "2s", "-q"],
        &load_json,
    );
    server.stop();
    let server = read_json(&server_json);
    assert_matches_server(&report, &server, "crr");
    assert_eq!(
        num(&server, "connections"),
        num(&report, "connects"),
        "one connection each"
    );
    assert_eq!(
        num(&report, "connects"),
        num(&report, "answered"),
        "{}",
        text(&out)
    );
    assert_eq!(
        num(&report["connect_us"], "count"),
        num(&report, "connects")
    );
}

#[test]
fn http_keep_alive_and_close_agree_with_the_server() {
    let lab = Lab::up(&LabSpec::unique("ldhttp", Topology::Pair)).expect("lab up");
    let dir = Scratch::new("http");
    let (server_json, load_json) = (dir.path("server.json"), dir.path("load.json"));
    let server = serve(
        &lab,
        8080,
        "http",
        &["--response-size", "1000"],
        &server_json,
    );
    let (_, keep) = load(
        &lab,
        8080,
        &[
            "--mode",
            "http",
            "-c",
            "4",
            "-d",
            "2s",
            "--pipeline",
            "2",
            "-q",
        ],
        &load_json,
    );
    let (_, close) = load(
        &lab,
        8080,
        &["--mode", "http", "--close", "-c", "2", "-d", "1s", "-q"],
        &load_json,
    );
    let (_, post) = load(
        &lab,
        8080,
        &[
            "--mode",
            "http",
            "--request-size",
            "500",
            "-c",
            "2",
            "-d",
            "1s",
            "-q",
        ],
        &load_json,
    );
    server.stop();
    let server = read_json(&server_json);
    for (name, r) in [("keep-alive", &keep), ("close", &close), ("post", &post)] {
        assert_eq!(num(r, "errors_total"), 0, "{name}: {r}");
        assert_eq!(num(r, "non_2xx"), 0, "{name}");
        assert!(num(r, "answered") > 0, "{name}");
    }
    let answered: u64 = [&keep, &close, &post]
        .iter()
        .map(|r| num(r, "answered"))
        .sum();
    assert_eq!(num(&server, "requests"), answered, "server {server}");
    let sent: u64 = [&keep, &close, &post]
        .iter()
        .map(|r| num(r, "bytes_sent"))
        .sum();
    let received: u64 = [&keep, &close, &post]
        .iter()
        .map(|r| num(r, "bytes_received"))
        .sum();
    assert_eq!(num(&server, "bytes_received"), sent);
    assert_eq!(num(&server, "bytes_sent"), received);
    assert_eq!(num(&keep, "connects"), 4);
    assert_eq!(
        num(&close, "connects"),
        num(&close, "answered"),
        "--close: a connection per request"
    );
    assert!(num(&keep, "bytes_received") > 1000 * num(&keep, "answered"));
}

#[test]
fn stream_up_down_and_discard_agree_with_the_server() {
    let lab = Lab::up(&LabSpec::unique("ldst", Topology::Pair)).expect("lab up");
    let dir = Scratch::new("stream");
    let (server_json, load_json) = (dir.path("server.json"), dir.path("load.json"));
    for (mode, direction) in [("stream", "up"), ("stream", "down"), ("discard", "up")] {
        let server = serve(&lab, 5201, mode, &[], &server_json);
        let (out, report) = load(
            &lab,
            5201,
            &[
                "--mode",
                "stream",
                "--direction",
                direction,
                "-c",
                "2",
                "-d",
                "1s",
                "-q",
            ],
            &load_json,
        );
        server.stop();
        let server = read_json(&server_json);
        let what = format!("{mode} {direction}: {}", text(&out));
        assert_eq!(
            num(&server, "bytes_received"),
            num(&report, "bytes_sent"),
            "{what}"
        );
        assert_eq!(
            num(&server, "bytes_sent"),
            num(&report, "bytes_received"),
            "{what}"
        );
        let moved = if direction == "up" {
            "bytes_sent"
        } else {
            "bytes_received"
        };
        assert!(
            num(&report, moved) > 1 << 20,
            "{what}: at least 1 MiB moved"
        );
        assert!(
            report["connect_errors"]
                .as_object()
                .is_some_and(|m| m.is_empty()),
            "{what}"
        );
        assert_eq!(num(&server, "connections"), 2);
    }
}

/// Parses the rows of an `.hgrm` file: (value ms, percentile, total count).
fn hgrm_rows(text: &str) -> Vec<(f64, f64, u64)> {
    text.lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            (
                cols[0].parse().expect("value"),
                cols[1].parse().expect("percentile"),
                cols[2].parse().expect("count"),
            )
        })
        .collect()
}

#[test]
fn open_loop_holds_the_rate_and_outputs_agree() {
    let lab = Lab::up(&LabSpec::unique("ldopen", Topology::Pair)).expect("lab up");
    let dir = Scratch::new("open");
    let (server_json, load_json) = (dir.path("server.json"), dir.path("load.json"));
    let (hgrm, hlog, plot) = (dir.path("l.hgrm"), dir.path("l.hlog"), dir.path("l.png"));
    let server = serve(&lab, 7100, "rr", &[], &server_json);
    let (out, report) = load(
        &lab,
        7100,
        &[
            "--mode",
            "rr",
            "-R",
            "2000",
            "-c",
            "4",
            "-t",
            "2",
            "-d",
            "5s",
            "--hgrm",
            hgrm.to_str().expect("path"),
            "--hlog",
            hlog.to_str().expect("path"),
            "--plot",
            plot.to_str().expect("path"),
        ],
        &load_json,
    );
    let (_, poisson) = load(
        &lab,
        7100,
        &[
            "--mode",
            "rr",
            "-R",
            "3000",
            "--arrivals",
            "poisson",
            "-c",
            "4",
            "-d",
            "3s",
            "-q",
        ],
        &load_json,
    );
    server.stop();
    let server = read_json(&server_json);
    assert_eq!(
        num(&server, "requests"),
        num(&report, "answered") + num(&poisson, "answered")
    );
    // The rate controller: requests sent over the window, within 3% of the asked rate.
    for (r, rate, tolerance) in [(&report, 2000.0, 0.03), (&poisson, 3000.0, 0.06)] {
        let sent_rate = num(r, "requests_sent") as f64 / float(r, "duration_s");
        assert!(
            (sent_rate - rate).abs() <= rate * tolerance,
            "asked {rate}/s, sent {sent_rate:.1}/s: {r}"
        );
        assert_eq!(num(r, "errors_total"), 0);
    }
    // Stack counters: the kernel's TCP counters of A's namespace over the run.
    let counters = &report["stack_counters"];
    assert_eq!(
        counters["tcp_ActiveOpens"].as_i64(),
        Some(num(&report, "connects") as i64),
        "{counters}"
    );
    assert!(counters["tcp_RetransSegs"].is_i64(), "{counters}");
    // Live progress lines: one per second.
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.lines().filter(|l| l.contains("req/s")).count() >= 4,
        "{}",
        text(&out)
    );

    // .hgrm and JSON describe the same histogram.
    let hgrm_text = std::fs::read_to_string(&hgrm).expect("hgrm");
    assert!(hgrm_text.starts_with("       Value     Percentile TotalCount 1/(1-Percentile)"));
    let rows = hgrm_rows(&hgrm_text);
    let json_rows = report["latency_percentiles"]
        .as_array()
        .expect("percentiles");
    assert_eq!(rows.len(), json_rows.len());
    assert!(rows.len() > 10);
    for (row, json) in rows.iter().zip(json_rows) {
        assert!(
            (row.0 - float(json, "value_ms")).abs() < 0.0015,
            "{row:?} vs {json}"
        );
        assert!(
            (row.1 - float(json, "percentile")).abs() < 1e-9,
            "{row:?} vs {json}"
        );
        assert_eq!(row.2, num(json, "total_count"));
    }
    let answered = num(&report, "answered");
    assert_eq!(rows.last().expect("rows").2, answered);
    let footer = hgrm_text
        .lines()
        .find(|l| l.starts_with("#[Max"))
        .expect("max footer");
    let max_ms: f64 = footer
        .split(['=', ','])
        .nth(1)
        .and_then(|v| v.trim().parse().ok())
        .expect("max value");
    let json_max_ms = num(&report["latency_us"], "max") as f64 / 1000.0;
    assert!(
        (max_ms - json_max_ms).abs() <= json_max_ms * 0.002 + 0.0015,
        "{max_ms} vs {json_max_ms}"
    );
    assert!(
        footer.contains(&format!("Total count    = {answered:>12}")),
        "{footer}"
    );
    let p99_row = rows.iter().find(|r| r.1 >= 0.99).expect("p99 row");
    let p99_ms = num(&report["latency_us"], "p99") as f64 / 1000.0;
    assert!(
        p99_row.0 >= p99_ms - 0.0015,
        "p99 {p99_ms} vs hgrm {p99_row:?}"
    );

    // The interval log: version 1.3, one histogram per second.
    let hlog_text = std::fs::read_to_string(&hlog).expect("hlog");
    assert!(hlog_text.contains("#[Histogram log format version 1.3]"));
    let intervals = hlog_text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.starts_with('"'))
        .count();
    assert!(
        (5..=6).contains(&intervals),
        "{intervals} intervals:\n{hlog_text}"
    );
    let png = std::fs::read(&plot).expect("png");
    assert_eq!(png.get(..8), Some(&b"\x89PNG\r\n\x1a\n"[..]));
}

#[test]
fn find_max_searches_rates_and_reports_them() {
    let lab = Lab::up(&LabSpec::unique("ldmax", Topology::Pair)).expect("lab up");
    let dir = Scratch::new("max");
    let (server_json, load_json) = (dir.path("server.json"), dir.path("load.json"));
    let server = serve(&lab, 7600, "rr", &[], &server_json);
    let (out, report) = load(
        &lab,
        7600,
        &[
            "--mode",
            "rr",
            "-c",
            "2",
            "-d",
            "1s",
            "-R",
            "100",
            "--find-max",
            "--p99",
            "200ms",
            "--max-trials",
            "3",
        ],
        &load_json,
    );
    server.stop();
    let server = read_json(&server_json);
    let found = &report["find_max"];
    assert_eq!(num(found, "target_p99_us"), 200_000);
    let trials = found["trials"].as_array().expect("trials");
    assert!((1..=3).contains(&trials.len()), "{found}");
    assert_eq!(float(&trials[0], "rate"), 100.0);
    // The search doubles while trials pass; after the first failure it bisects between
    // the best pass so far (0 when none) and the lowest failure.
    let (mut good, mut lowest_fail) = (0.0f64, None::<f64>);
    for pair in trials.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        if a["passed"].as_bool() == Some(true) {
            good = good.max(float(a, "rate"));
        } else {
            lowest_fail = Some(lowest_fail.map_or(float(a, "rate"), |f| f.min(float(a, "rate"))));
        }
        let expected = match lowest_fail {
            None => 2.0 * float(a, "rate"),
            Some(fail) => (good + fail) / 2.0,
        };
        assert_eq!(float(b, "rate"), expected, "{found}");
    }
    let best = trials
        .iter()
        .filter(|t| t["passed"].as_bool() == Some(true))
        .map(|t| float(t, "rate"))
        .fold(None, |m: Option<f64>, r| Some(m.map_or(r, |m| m.max(r))));
    assert_eq!(found["max_rate"].as_f64(), best, "{found}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("find-max:"), "{}", text(&out));
    // Every trial's requests reached the server.
    assert!(num(&server, "requests") >= num(&report, "answered"));
}

#[test]
fn stream_verify_bytes_checks_sha256_both_ways_and_closes_cleanly() {
    let lab = Lab::up(&LabSpec::unique("hinterop-vfy", Topology::Pair)).expect("lab up");
    let dir = Scratch::new("hinterop-vfy");
    let (server_json, load_json) = (dir.path("server.json"), dir.path("load.json"));
    let server = serve(&lab, 5211, "stream", &[], &server_json);
    let mut reports = Vec::new();
    for direction in ["up", "down"] {
        let (out, report) = load(
            &lab,
            5211,
            &[
                "--mode",
                "stream",
                "--direction",
                direction,
                "-c",
                "3",
                "--verify-bytes",
                "3000000",
                "-d",
                "60s",
                "-q",
            ],
            &load_json,
        );
        let what = format!("{direction}: {report} {}", text(&out));
        assert_eq!(num(&report, "errors_total"), 0, "{what}");
        assert_eq!(num(&report, "streams_closed_cleanly"), 3, "{what}");
        // Ended by the streams, not the 60 s clock.
        assert!(float(&report, "duration_s") < 30.0, "{what}");
        reports.push(report);
    }
    server.stop();
    let server = read_json(&server_json);
    let (up, down) = (&reports[0], &reports[1]);
    // Up: the server checked three streams of 3 MB (plus 17 bytes of marker and header).
    assert_eq!(num(&server, "streams_verified"), 3, "{server}");
    assert_eq!(num(&server, "streams_mismatched"), 0, "{server}");
    assert_eq!(num(up, "bytes_sent"), 3 * 3_000_017);
    // Down: the load checked the three the server sent.
    assert_eq!(num(down, "streams_verified"), 3, "{down}");
    assert_eq!(num(down, "streams_mismatched"), 0, "{down}");
    assert_eq!(num(down, "bytes_received"), 3 * 3_000_000);
    assert_eq!(num(&server, "connections"), 6);
}

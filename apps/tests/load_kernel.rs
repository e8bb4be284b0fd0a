//! Root tests of `surge load` and `surge serve` on the kernel stack, in fresh labs:
//! every mode against our server (counts must agree on both sides), the open-loop rate
//! controller, the output files, servers that are not ours, and targets that refuse or
//! never answer.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;
use surge_lab::{HostId, Lab, LabSpec, Topology};

const SURGE: &str = env!("CARGO_BIN_EXE_surge");
const SERVER_ADDR: &str = "198.18.0.2";

/// A scratch directory removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("surge-apps-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("creating scratch dir");
        Scratch(dir)
    }

    fn path(&self, file: &str) -> PathBuf {
        self.0.join(file)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn text(output: &Output) -> String {
    format!(
        "status {}\nstdout: {}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn read_json(path: &Path) -> Value {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("parsing {}: {e}\n{text}", path.display()))
}

fn num(v: &Value, key: &str) -> u64 {
    v.get(key)
        .and_then(Value::as_u64)
        .unwrap_or_else(|| panic!("no integer {key} in {v}"))
}

fn float(v: &Value, key: &str) -> f64 {
    v.get(key)
        .and_then(Value::as_f64)
        .unwrap_or_else(|| panic!("no number {key} in {v}"))
}

fn kind(v: &Value, group: &str, kind: &str) -> u64 {
    v.get(group)
        .and_then(|g| g.get(kind))
        .and_then(Value::as_u64)
        .unwrap_or(0)
}

/// A process running in a lab namespace, killed on drop if still running.
struct Running {
    child: Child,
}

impl Running {
    /// Sends SIGTERM and waits (at most 10 s) for a clean exit.
    fn stop(mut self) -> Output {
        let pid = self.child.id().to_string();
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let child = std::mem::replace(
            &mut self.child,
            std::process::Command::new("true")
                .spawn()
                .expect("spawn true"),
        );
        let out = child.wait_with_output().expect("waiting for the server");
        assert!(
            out.status.success(),
            "server did not exit cleanly: {}",
            text(&out)
        );
        out
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `surge serve` in B and waits for its "listening" line.
fn serve(lab: &Lab, port: u16, mode: &str, extra: &[&str], json: &Path) -> Running {
    let listen = format!("{SERVER_ADDR}:{port}");
    let mut command = lab.command(HostId::B, SURGE).expect("command in B");
    command
        .args([
            "serve", "--stack", "kernel", "--listen", &listen, "--mode", mode,
        ])
        .args(["--threads", "2", "--quiet", "--json"])
        .arg(json)
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().expect("spawning surge serve");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let running = Running { child };
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut seen = Vec::new();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) if line.contains("listening on") => return running,
            Ok(line) => seen.push(line),
            Err(_) => panic!("surge serve did not start: {seen:?}"),
        }
    }
}

/// Runs `surge load` in A against `port` of B and returns its output and JSON report.
fn load(lab: &Lab, port: u16, args: &[&str], json: &Path) -> (Output, Value) {
    let target = format!("{SERVER_ADDR}:{port}");
    let mut command = lab.command(HostId::A, SURGE).expect("command in A");
    command
        .args(["load", "--stack", "kernel", "--target", &target, "--json"])
        .arg(json)
        .args(args);
    let output = command.output().expect("running surge load");
    assert!(
        output.status.success(),
        "surge load failed: {}",
        text(&output)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        (stdout.contains("Requests/sec:") || stdout.contains("Throughput:")),
        "no report: {}",
        text(&output)
    );
    let report = read_json(json);
    let errors_total = num(&report, "errors_total");
    let by_kind: u64 = report["errors"]
        .as_object()
        .expect("errors object")
        .values()
        .filter_map(Value::as_u64)
        .sum();
    assert_eq!(
        errors_total, by_kind,
        "errors_total is the sum of the kinds"
    );
    assert_eq!(
        num(&report, "requests_sent"),
        num(&report, "answered") + errors_total,
        "requests sent = answered + errors: {report}"
    );
    assert_eq!(
        num(&report, "warmup_requests_sent"),
        num(&report, "warmup_answered") + num(&report, "warmup_errors")
    );
    (output, report)
}

/// Asserts a request/response run agrees with the server and had no errors.
fn assert_matches_server(report: &Value, server: &Value, what: &str) {
    assert_eq!(num(report, "errors_total"), 0, "{what}: errors: {report}");
    assert!(num(report, "answered") > 0, "{what}: nothing answered");
    assert_eq!(
        num(server, "requests"),
        num(report, "answered") + num(report, "warmup_answered"),
        "{what}: server requests vs client answers\nserver {server}\nclient {report}"
    );
    assert_eq!(
        num(server, "bytes_received"),
        num(report, "bytes_sent"),
        "{what}: bytes up"
    );
    assert_eq!(
        num(server, "bytes_sent"),
        num(report, "bytes_received"),
        "{what}: bytes down"
    );
    assert_eq!(
        num(&report["latency_us"], "count"),
        num(report, "answered"),
        "{what}: every answer is in the latency histogram"
    );
}

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
fn kernel_servers_not_ours() {
    let lab = Lab::up(&LabSpec::unique("ldpy", Topology::Pair)).expect("lab up");
    let dir = Scratch::new("py");
    let load_json = dir.path("load.json");
    std::fs::write(dir.path("file.bin"), vec![b'x'; 2000]).expect("file");
    let echo = dir.path("echo.py");
    std::fs::write(
        &echo,
        "import socketserver\n\
         class H(socketserver.BaseRequestHandler):\n\
         \x20   def handle(self):\n\
         \x20       while True:\n\
         \x20           d = self.request.recv(65536)\n\
         \x20           if not d: return\n\
         \x20           self.request.sendall(d)\n\
         socketserver.ThreadingTCPServer.allow_reuse_address = True\n\
         socketserver.ThreadingTCPServer(('198.18.0.2', 7007), H).serve_forever()\n",
    )
    .expect("echo.py");
    let half = dir.path("half.py");
    std::fs::write(
        &half,
        "import socket\n\
         s = socket.socket()\n\
         s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)\n\
         s.bind(('198.18.0.2', 7008))\n\
         s.listen(64)\n\
         while True:\n\
         \x20   c, _ = s.accept()\n\
         \x20   c.recv(64)\n\
         \x20   c.sendall(b'x' * 10)\n\
         \x20   c.close()\n",
    )
    .expect("half.py");
    let spawn = |args: &[&str]| Running {
        child: lab
            .command(HostId::B, "python3")
            .expect("command")
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3"),
    };
    let http = spawn(&[
        "-m",
        "http.server",
        "8000",
        "--bind",
        SERVER_ADDR,
        "--directory",
        dir.0.to_str().expect("dir"),
    ]);
    let echo_server = spawn(&[echo.to_str().expect("path")]);
    let half_server = spawn(&[half.to_str().expect("path")]);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let ss = lab.exec(HostId::B, &["ss", "-ltnH"]).expect("ss");
        let listening = String::from_utf8_lossy(&ss.stdout);
        if [":8000", ":7007", ":7008"]
            .iter()
            .all(|p| listening.contains(p))
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "python servers did not start: {listening}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let (_, report) = load(
        &lab,
        8000,
        &[
            "--mode",
            "http",
            "--path",
            "/file.bin",
            "-c",
            "2",
            "-d",
            "2s",
            "-q",
        ],
        &load_json,
    );
    assert_eq!(num(&report, "errors_total"), 0, "{report}");
    assert_eq!(num(&report, "non_2xx"), 0);
    assert!(num(&report, "answered") > 0);
    assert!(num(&report, "bytes_received") > 2000 * num(&report, "answered"));
    let (_, report) = load(
        &lab,
        8000,
        &[
            "--mode", "http", "--path", "/missing", "-c", "1", "-d", "1s", "-q",
        ],
        &load_json,
    );
    assert_eq!(
        num(&report, "non_2xx"),
        num(&report, "answered"),
        "404s are answered, and counted"
    );
    let (_, report) = load(
        &lab,
        7007,
        &[
            "--mode",
            "rr",
            "--request-size",
            "32",
            "--response-size",
            "32",
            "-c",
            "2",
            "-d",
            "2s",
            "-q",
        ],
        &load_json,
    );
    assert_eq!(num(&report, "errors_total"), 0, "{report}");
    assert!(num(&report, "answered") > 0);
    assert_eq!(
        num(&report, "bytes_received"),
        32 * num(&report, "answered")
    );
    // A server that closes in the middle of every response.
    let (out, report) = load(
        &lab,
        7008,
        &["--mode", "rr", "-c", "1", "-d", "1s", "-q"],
        &load_json,
    );
    assert!(kind(&report, "errors", "closed") > 0, "{}", text(&out));
    assert_eq!(num(&report, "answered"), 0);
    drop(http);
    drop(echo_server);
    drop(half_server);
}

#[test]
fn refusing_silent_and_blackholed_targets_give_counted_errors() {
    let lab = Lab::up(&LabSpec::unique("ldbad", Topology::Pair)).expect("lab up");
    let dir = Scratch::new("bad");
    let (server_json, load_json) = (dir.path("server.json"), dir.path("load.json"));

    // Nobody listens: refused connects, no requests, still a report.
    let (out, report) = load(
        &lab,
        9,
        &["--mode", "rr", "-c", "2", "-d", "1s", "-q"],
        &load_json,
    );
    assert!(
        kind(&report, "connect_errors", "refused") > 0,
        "{}",
        text(&out)
    );
    assert_eq!(num(&report, "requests_sent"), 0);
    assert_eq!(num(&report, "connects"), 0);
    assert_eq!(
        num(&report, "connect_attempts"),
        kind(&report, "connect_errors", "refused")
    );

    // A server that reads and never answers: every request times out.
    let server = serve(&lab, 7200, "discard", &[], &server_json);
    let (out, report) = load(
        &lab,
        7200,
        &[
            "--mode",
            "rr",
            "-c",
            "2",
            "-d",
            "2s",
            "--pipeline",
            "2",
            "--timeout",
            "400ms",
            "-q",
        ],
        &load_json,
    );
    server.stop();
    assert!(kind(&report, "errors", "timeout") > 0, "{}", text(&out));
    assert_eq!(num(&report, "answered"), 0);
    assert_eq!(num(&report, "errors_total"), num(&report, "requests_sent"));
    assert!(String::from_utf8_lossy(&out.stdout).contains("timeout"));

    // SYNs dropped: connect timeouts.
    let drop_rule = [
        "iptables", "-A", "INPUT", "-p", "tcp", "--dport", "7300", "-j", "DROP",
    ];
    let added = lab.exec(HostId::B, &drop_rule).expect("iptables");
    assert!(added.status.success(), "{}", text(&added));
    let (out, report) = load(
        &lab,
        7300,
        &[
            "--mode",
            "rr",
            "-c",
            "2",
            "-d",
            "1s",
            "--connect-timeout",
            "300ms",
            "-q",
        ],
        &load_json,
    );
    assert!(
        kind(&report, "connect_errors", "connect_timeout") >= 2,
        "{}",
        text(&out)
    );
    assert_eq!(num(&report, "requests_sent"), 0);

    // A server with --duration stops by itself and prints its summary.
    let timed = lab
        .exec(
            HostId::B,
            &[
                SURGE,
                "serve",
                "--listen",
                "198.18.0.2:7500",
                "--mode",
                "echo",
                "--duration",
                "1s",
                "-q",
            ],
        )
        .expect("serve --duration");
    assert!(timed.status.success(), "{}", text(&timed));
    assert!(
        String::from_utf8_lossy(&timed.stdout).contains("connections 0"),
        "{}",
        text(&timed)
    );

    // An HTTP client against a server that does not speak HTTP: malformed responses.
    let server = serve(&lab, 7400, "echo", &[], &server_json);
    let (out, report) = load(
        &lab,
        7400,
        &["--mode", "http", "-c", "1", "-d", "1s", "-q"],
        &load_json,
    );
    server.stop();
    assert!(kind(&report, "errors", "malformed") > 0, "{}", text(&out));
    assert_eq!(num(&report, "answered"), 0);
}

/// Runs the binary without a lab (option checks need none).
fn surge(args: &[&str]) -> Output {
    std::process::Command::new(SURGE)
        .args(args)
        .output()
        .expect("running surge")
}

#[test]
fn impossible_options_and_the_surge_stack_are_one_line_errors() {
    let cases: &[(&[&str], &str)] = &[
        (
            &["load", "--target", "198.18.0.2:1", "--stack", "surge"],
            "the surge stack backend is not built yet",
        ),
        (
            &["serve", "--listen", "198.18.0.2:1", "--stack", "surge"],
            "the surge stack backend is not built yet",
        ),
        (
            &[
                "load",
                "--target",
                "198.18.0.2:1",
                "--mode",
                "stream",
                "-R",
                "10",
            ],
            "--rate",
        ),
        (
            &[
                "load",
                "--target",
                "198.18.0.2:1",
                "--mode",
                "crr",
                "--pipeline",
                "4",
            ],
            "--pipeline",
        ),
        (
            &["load", "--target", "198.18.0.2:1", "-c", "2", "-t", "4"],
            "--threads",
        ),
        (
            &["load", "--target", "198.18.0.2:1", "--arrivals", "poisson"],
            "--rate",
        ),
        (
            &["load", "--target", "198.18.0.2:1", "--p99", "1ms"],
            "--find-max",
        ),
        (&["load", "--target", "198.18.0.2:1", "--find-max"], "--p99"),
        (
            &[
                "load",
                "--target",
                "198.18.0.2:1",
                "-d",
                "1s",
                "--warmup",
                "2s",
            ],
            "--warmup",
        ),
        (
            &[
                "load",
                "--target",
                "198.18.0.2:1",
                "--mode",
                "http",
                "--response-size",
                "9",
            ],
            "--response-size",
        ),
        (
            &[
                "serve",
                "--listen",
                "198.18.0.2:1",
                "--mode",
                "echo",
                "--request-size",
                "9",
            ],
            "--request-size",
        ),
    ];
    for (args, words) in cases {
        let out = surge(args);
        assert!(
            !out.status.success(),
            "{args:?} should fail: {}",
            text(&out)
        );
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            stderr.trim_end().lines().count(),
            1,
            "{args:?}: {}",
            text(&out)
        );
        assert!(stderr.contains(words), "{args:?}: {}", text(&out));
    }
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
    for pair in trials.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        let expected = if a["passed"].as_bool() == Some(true) {
            2.0 * float(a, "rate")
        } else {
            float(a, "rate") / 2.0
        };
        // Doubling while trials pass, halving back towards the last pass when one fails.
        assert!(
            float(b, "rate") == expected || a["passed"].as_bool() == Some(false),
            "{found}"
        );
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

//! Helpers shared by the `surge load` / `surge serve` root tests: run the binaries in a
//! lab's namespaces, read their JSON, and check the counting rules.
// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::Value;
use surge_lab::{HostId, Lab};

pub const SURGE: &str = env!("CARGO_BIN_EXE_surge");
pub const SERVER_ADDR: &str = "198.18.0.2";

/// A scratch directory removed on drop.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(name: &str) -> Scratch {
        let dir = std::env::temp_dir().join(format!("surge-apps-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("creating scratch dir");
        Scratch(dir)
    }

    pub fn path(&self, file: &str) -> PathBuf {
        self.0.join(file)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub fn text(output: &Output) -> String {
    format!(
        "status {}\nstdout: {}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

pub fn read_json(path: &Path) -> Value {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("parsing {}: {e}\n{text}", path.display()))
}

pub fn num(v: &Value, key: &str) -> u64 {
    v.get(key)
        .and_then(Value::as_u64)
        .unwrap_or_else(|| panic!("no integer {key} in {v}"))
}

pub fn float(v: &Value, key: &str) -> f64 {
    v.get(key)
        .and_then(Value::as_f64)
        .unwrap_or_else(|| panic!("no number {key} in {v}"))
}

pub fn kind(v: &Value, group: &str, kind: &str) -> u64 {
    v.get(group)
        .and_then(|g| g.get(kind))
        .and_then(Value::as_u64)
        .unwrap_or(0)
}

/// A process running in a lab namespace, killed on drop if still running.
pub struct Running {
    pub child: Child,
}

impl Running {
    /// Sends SIGTERM and waits (at most 10 s) for a clean exit.
    pub fn stop(mut self) -> Output {
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
pub fn serve(lab: &Lab, port: u16, mode: &str, extra: &[&str], json: &Path) -> Running {
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
    spawn_serve(&mut command, Duration::from_secs(10))
}

/// Spawns a prepared `surge serve` command (stdout and stderr piped) and waits,
/// at most `limit`, for its "listening on" line.
pub fn spawn_serve(command: &mut std::process::Command, limit: Duration) -> Running {
    let mut child = command.spawn().expect("spawning surge serve");
    let stderr = child.stderr.take().expect("stderr");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let running = Running { child };
    let deadline = Instant::now() + limit;
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
pub fn load(lab: &Lab, port: u16, args: &[&str], json: &Path) -> (Output, Value) {
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
pub fn assert_matches_server(report: &Value, server: &Value, what: &str) {
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

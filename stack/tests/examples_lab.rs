//! The examples, run as their users would, against the Linux stack across a
//! fresh lab (root tests): the textbook echo server with kernel clients, the
//! echo client against a kernel echo server, and the in-loop HTTP responder
//! under `curl`. `cargo test` builds the examples before it runs tests.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use surge_lab::{HostId, Lab, LabSpec, Topology};

#[path = "support/kernel_echo.rs"]
mod kernel_echo;

const SURGE: &str = "198.18.0.10";

/// The built example `name` (next to this test's binary).
fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let path = exe
        .parent()
        .and_then(|deps| deps.parent())
        .map(|profile| profile.join("examples").join(name))
        .expect("target layout");
    assert!(
        path.exists(),
        "{} is missing: `cargo test` builds the examples (or run `cargo build -p surge-stack --examples`)",
        path.display()
    );
    path
}

/// A child process killed when dropped (on a failed assertion too).
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts example `name` on host A of `lab` and waits for its first line.
fn start(lab: &Lab, name: &str, args: &[&str]) -> (Running, String) {
    let a = lab.a();
    let mut child = Command::new(example(name))
        .args(["--interface", &a.ifname, "--netns", &a.netns])
        .args(["--address", &format!("{SURGE}/24"), "--seconds", "60"])
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn example");
    let mut first = String::new();
    BufReader::new(child.stdout.as_mut().expect("stdout"))
        .read_line(&mut first)
        .expect("first line");
    (Running(child), first)
}

/// Waits for the example to exit and returns its remaining output.
fn finish(mut running: Running) -> (bool, String) {
    let mut rest = String::new();
    if let Some(out) = running.0.stdout.as_mut() {
        let _ = std::io::Read::read_to_string(out, &mut rest);
    }
    let ok = running.0.wait().map(|s| s.success()).unwrap_or(false);
    (ok, rest)
}

const PY_CLIENT: &str = r#"
import hashlib, os, socket, sys, threading
ok = 0
for _ in range(int(sys.argv[3])):
    data = os.urandom(int(sys.argv[4]))
    s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=30)
    s.settimeout(30)
    def write():
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
    # Write while reading: the echo comes back as it is sent.
    threading.Thread(target=write).start()
    got = bytearray()
    while True:
        c = s.recv(1 << 20)
        if not c:
            break
        got += c
    ok += hashlib.sha256(got).digest() == hashlib.sha256(data).digest()
print("verified", ok)
"#;

#[test]
fn textbook_echo_server_serves_kernel_clients() {
    surge_lab::require_root().expect("root tests need root (CI runs as root)");
    let lab = Lab::up(&LabSpec::unique("exs", Topology::Pair)).expect("lab");
    let (server, first) = start(
        &lab,
        "echo_server",
        &["--port", "7007", "--connections", "3"],
    );
    assert!(first.starts_with("listening on 0.0.0.0:7007"), "{first}");
    let out = lab
        .exec(
            HostId::B,
            &[
                "timeout", "60", "python3", "-c", PY_CLIENT, SURGE, "7007", "3", "1000000",
            ],
        )
        .expect("kernel client");
    let (ok, rest) = finish(server);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "verified 3",
        "{} (echo_server said: {rest})",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(ok, "echo_server failed: {rest}");
    assert!(rest.contains("served 3 connections"), "{rest}");
    assert_eq!(rest.matches("echoed 1000000 bytes").count(), 3, "{rest}");
}

#[test]
fn textbook_echo_client_talks_to_a_kernel_server() {
    surge_lab::require_root().expect("root tests need root (CI runs as root)");
    let lab = Lab::up(&LabSpec::unique("exc", Topology::Pair)).expect("lab");
    let b_addr = lab.b().addr.to_string();
    let kernel = Running(kernel_echo::start_kernel_echo(
        &lab,
        HostId::B,
        &b_addr,
        7008,
        4,
    ));
    let out = Command::new(example("echo_client"))
        .args(["--interface", &lab.a().ifname, "--netns", &lab.a().netns])
        .args(["--address", &format!("{SURGE}/24"), "--seconds", "60"])
        .args(["--server", &format!("{b_addr}:7008"), "--bytes", "1000000"])
        .args(["--connections", "4"])
        .output()
        .expect("echo_client");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "echo_client: {text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        text.contains("4 of 4 connections echoed 1000000 bytes each, verified"),
        "{text}"
    );
    drop(kernel);
}

#[test]
fn in_loop_http_responder_answers_curl() {
    surge_lab::require_root().expect("root tests need root (CI runs as root)");
    let lab = Lab::up(&LabSpec::unique("exh", Topology::Pair)).expect("lab");
    let (server, first) = start(
        &lab,
        "embed_http",
        &[
            "--port",
            "8080",
            "--requests",
            "4",
            "--body",
            "surge says hi",
        ],
    );
    assert!(first.starts_with("serving http on port 8080"), "{first}");
    let url = format!("http://{SURGE}:8080/");
    // One request per connection, then two on one keep-alive connection.
    let once = lab
        .exec(HostId::B, &["curl", "-sS", "-m", "20", &url])
        .expect("curl");
    assert_eq!(
        String::from_utf8_lossy(&once.stdout),
        "surge says hi",
        "{}",
        String::from_utf8_lossy(&once.stderr)
    );
    let head = lab
        .exec(HostId::B, &["curl", "-sS", "-m", "20", "-I", &url])
        .expect("curl -I");
    let head = String::from_utf8_lossy(&head.stdout).to_string();
    assert!(head.starts_with("HTTP/1.1 200 OK"), "{head}");
    assert!(head.contains("Content-Length: 13"), "{head}");
    let twice = lab
        .exec(HostId::B, &["curl", "-sS", "-m", "20", "-v", &url, &url])
        .expect("curl twice");
    assert_eq!(
        String::from_utf8_lossy(&twice.stdout),
        "surge says hisurge says hi"
    );
    let verbose = String::from_utf8_lossy(&twice.stderr);
    assert!(
        verbose.contains("Re-using existing connection") || verbose.contains("Reusing existing"),
        "keep-alive: {verbose}"
    );
    let (ok, rest) = finish(server);
    assert!(ok, "embed_http failed: {rest}");
    assert!(rest.contains("served 4 requests"), "{rest}");
}

//! Root tests of `surge load` on the kernel stack against servers that are not ours, and
//! against targets that refuse, never answer, drop SYNs or speak another protocol; and the
//! one-line errors for impossible options.

mod load_support;

use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use load_support::*;
use surge_lab::{HostId, Lab, LabSpec, Topology};

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
            "--stack surge needs --interface IFACE",
        ),
        (
            &[
                "serve",
                "--listen",
                "198.18.0.2:1",
                "--stack",
                "surge",
                "--interface",
                "x",
            ],
            "--stack surge needs --address A.B.C.D/LEN",
        ),
        (
            &["serve", "--listen", "198.18.0.2:1", "--interface", "x"],
            "apply to --stack surge only",
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
            &["load", "--target", "198.18.0.2:1", "-R", "1e-300"],
            "--rate",
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

//! Root tests of `surge serve --stack surge` (surge's engines on AF_XDP, one per
//! veth queue) loaded by `surge load --stack kernel` from the other host: every mode,
//! and the counts on both sides must agree (requests, bytes, no errors).

mod load_support;

use std::path::Path;
use std::process::Stdio;

use load_support::*;
use surge_lab::{HostId, Lab, LabSpec, Topology};

/// The address only surge answers in host B (B's kernel keeps 198.18.0.2).
const SURGE_ADDR: &str = "198.18.0.20";

/// Starts `surge serve --stack surge` in B with `threads` engines (`None`: no `--threads`,
/// the server's default of one per veth queue).
fn serve_surge(
    lab: &Lab,
    threads: Option<u16>,
    port: u16,
    mode: &str,
    extra: &[&str],
    json: &Path,
) -> Running {
    let listen = format!("{SURGE_ADDR}:{port}");
    let ifname = lab.b().ifname.clone();
    let mut command = lab.command(HostId::B, SURGE).expect("command in B");
    command
        .args([
            "serve",
            "--stack",
            "surge",
            "--interface",
            &ifname,
            "--address",
        ])
        .arg(format!("{SURGE_ADDR}/24"))
        .args(["--listen", &listen, "--mode", mode, "--quiet", "--json"])
        .arg(json)
        .args(extra)
        .args(
            threads
                .map(|t| ["--threads".to_string(), t.to_string()])
                .into_iter()
                .flatten(),
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    // Attaching XDP and binding AF_XDP sockets takes longer than a kernel listen.
    spawn_serve(&mut command, std::time::Duration::from_secs(15))
}

fn load_surge(lab: &Lab, port: u16, args: &[&str], json: &Path) -> serde_json::Value {
    let target = format!("{SURGE_ADDR}:{port}");
    let output = lab
        .command(HostId::A, SURGE)
        .expect("command in A")
        .args(["load", "--stack", "kernel", "--target", &target, "--json"])
        .arg(json)
        .args(args)
        .output()
        .expect("running surge load");
    assert!(
        output.status.success(),
        "surge load failed: {}",
        text(&output)
    );
    let report = read_json(json);
    assert_eq!(
        num(&report, "requests_sent"),
        num(&report, "answered") + num(&report, "errors_total"),
        "requests sent = answered + errors: {report}"
    );
    report
}

#[test]
fn every_mode_on_the_surge_server_agrees_with_the_kernel_client() {
    let mut spec = LabSpec::unique("srvsg", Topology::Pair);
    spec.queues = 2;
    let lab = Lab::up(&spec).expect("lab up (root tests need root)");
    let dir = Scratch::new("surge-serve");
    let (server_json, load_json) = (dir.path("server.json"), dir.path("load.json"));
    let cases: &[(&str, &[&str], &[&str])] = &[
        (
            "rr",
            &["--request-size", "100", "--response-size", "300"],
            &[
                "--mode",
                "rr",
                "-c",
                "8",
                "-t",
                "1",
                "-d",
                "2s",
                "--pipeline",
                "2",
                "--request-size",
                "100",
                "--response-size",
                "300",
                "-q",
            ],
        ),
        (
            "echo",
            &[],
            &[
                "--mode",
                "rr",
                "-c",
                "4",
                "-t",
                "1",
                "-d",
                "2s",
                "--request-size",
                "1000",
                "--response-size",
                "1000",
                "-q",
            ],
        ),
        (
            "http",
            &["--response-size", "5000"],
            &["--mode", "http", "-c", "8", "-t", "1", "-d", "2s", "-q"],
        ),
        (
            "rr",
            &[],
            &["--mode", "crr", "-c", "4", "-t", "1", "-d", "2s", "-q"],
        ),
    ];
    for (i, (mode, serve_args, load_args)) in cases.iter().enumerate() {
        let port = 7100 + i as u16;
        let server = serve_surge(&lab, Some(2), port, mode, serve_args, &server_json);
        let report = load_surge(&lab, port, load_args, &load_json);
        server.stop();
        let server = read_json(&server_json);
        if *mode == "echo" {
            // An echo server has no notion of requests: bytes must match both ways.
            assert_eq!(num(&report, "errors_total"), 0, "echo: {report}");
            assert!(num(&report, "answered") > 0, "echo: nothing answered");
            assert_eq!(
                num(&server, "bytes_received"),
                num(&report, "bytes_sent"),
                "echo: bytes up"
            );
            assert_eq!(
                num(&server, "bytes_sent"),
                num(&report, "bytes_received"),
                "echo: bytes down"
            );
        } else {
            assert_matches_server(&report, &server, &format!("{mode} / {load_args:?}"));
        }
    }
}

#[test]
fn stream_both_ways_through_the_surge_server() {
    let lab =
        Lab::up(&LabSpec::unique("srvst", Topology::Pair)).expect("lab up (root tests need root)");
    let dir = Scratch::new("surge-stream");
    let (server_json, load_json) = (dir.path("server.json"), dir.path("load.json"));
    for (i, direction) in ["up", "down"].iter().enumerate() {
        let port = 7200 + i as u16;
        let server = serve_surge(&lab, Some(1), port, "stream", &[], &server_json);
        let report = load_surge(
            &lab,
            port,
            &[
                "--mode",
                "stream",
                "--direction",
                direction,
                "-c",
                "2",
                "-t",
                "1",
                "-d",
                "2s",
                "-q",
            ],
            &load_json,
        );
        server.stop();
        let server = read_json(&server_json);
        let moved = if *direction == "up" {
            "bytes_sent"
        } else {
            "bytes_received"
        };
        assert!(
            num(&report, moved) > 1_000_000,
            "{direction}: at least 1 MB moved: {report}"
        );
        assert_eq!(
            num(&server, "bytes_received"),
            num(&report, "bytes_sent"),
            "{direction}: bytes up"
        );
        assert_eq!(
            num(&server, "bytes_sent"),
            num(&report, "bytes_received"),
            "{direction}: bytes down"
        );
    }
}

#[test]
fn without_threads_the_surge_server_runs_one_engine_per_rx_queue() {
    let dir = Scratch::new("surge-serve-queues");
    let (server_json, load_json) = (dir.path("server.json"), dir.path("load.json"));
    // One queue (most virtual NICs; it used to fail with "--threads 2: ... 1 RX queue(s)" on
    // this 2-core machine) and three queues (more than the cores: queues decide, not cores).
    for queues in [1u16, 3] {
        let mut spec = LabSpec::unique("srvq", Topology::Pair);
        spec.queues = queues;
        let lab = Lab::up(&spec).expect("lab up (root tests need root)");
        let port = 7300 + queues;
        let server = serve_surge(&lab, None, port, "http", &[], &server_json);
        let report = load_surge(
            &lab,
            port,
            &["--mode", "http", "-c", "6", "-t", "1", "-d", "1s", "-q"],
            &load_json,
        );
        server.stop();
        let server = read_json(&server_json);
        assert_eq!(
            num(&server, "threads"),
            u64::from(queues),
            "{queues} queue(s): {server}"
        );
        assert_matches_server(&report, &server, &format!("{queues} queue(s)"));

        // The kernel server keeps its default: one thread per core, whatever the queues.
        let listen = format!("198.18.0.2:{}", port + 10);
        let mut command = lab.command(HostId::B, SURGE).expect("command in B");
        command
            .args(["serve", "--stack", "kernel", "--listen", &listen])
            .args(["--mode", "http", "--quiet", "--json"])
            .arg(&server_json)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let kernel = spawn_serve(&mut command, std::time::Duration::from_secs(10));
        kernel.stop();
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        assert_eq!(
            num(&read_json(&server_json), "threads"),
            cores as u64,
            "kernel server with {queues} queue(s)"
        );
    }
}

/// ECN on the kernel client's connections to the surge server, as `ss -tnio` shows it
/// while a 3 s stream runs (the client's namespace offers ECN: `tcp_ecn` 1).
fn client_sees_ecn(lab: &Lab, dir: &Scratch, port: u16, serve_args: &[&str]) -> (bool, String) {
    let sysctl = lab
        .command(HostId::A, "sysctl")
        .expect("command in A")
        .args(["-qw", "net.ipv4.tcp_ecn=1"])
        .status()
        .expect("sysctl");
    assert!(sysctl.success(), "setting net.ipv4.tcp_ecn in A");
    let server_json = dir.path(&format!("ecn-server-{port}.json"));
    let server = serve_surge(lab, Some(1), port, "stream", serve_args, &server_json);
    let target = format!("{SURGE_ADDR}:{port}");
    let mut load = lab
        .command(HostId::A, SURGE)
        .expect("command in A")
        .args(["load", "--stack", "kernel", "--target", &target])
        .args([
            "--mode",
            "stream",
            "--direction",
            "up",
            "-c",
            "1",
            "-d",
            "3s",
            "-q",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("surge load");
    let mut seen = None;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(3);
    while seen.is_none() && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(200));
        let ss = lab
            .command(HostId::A, "ss")
            .expect("command in A")
            .args(["-Htnio", "state", "established", "dst", SURGE_ADDR])
            .output()
            .expect("ss");
        let text = String::from_utf8_lossy(&ss.stdout).to_string();
        if text.contains(&format!("{SURGE_ADDR}:{port}")) {
            seen = Some((text.split_whitespace().any(|w| w == "ecn"), text));
        }
    }
    let _ = load.wait();
    server.stop();
    seen.unwrap_or_else(|| panic!("no established connection to {target} seen by ss"))
}

#[test]
fn the_ecn_flag_negotiates_ecn_with_a_kernel_client() {
    let lab =
        Lab::up(&LabSpec::unique("srvecn", Topology::Pair)).expect("lab up (root tests need root)");
    let dir = Scratch::new("surge-ecn");
    let (ecn, ss) = client_sees_ecn(&lab, &dir, 7300, &["--ecn"]);
    assert!(
        ecn,
        "with --ecn the kernel client's connection has ECN: {ss}"
    );
    let (ecn, ss) = client_sees_ecn(&lab, &dir, 7301, &[]);
    assert!(
        !ecn,
        "without --ecn surge refuses the kernel's ECN offer: {ss}"
    );
}

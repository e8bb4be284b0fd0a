//! Root tests of what the per-boot secrets and the source-address range give
//! `surge load --stack surge` against a kernel server:
//! - two back-to-back `--close` runs: the second's SYNs land on 4-tuples the
//!   server still holds in TIME-WAIT and are accepted at once (ISN and timestamp
//!   clocks continue across processes) — no SYN retransmission, no RST, no
//!   connect error, counted on the wire by a capture in the server's namespace;
//! - `--source FIRST-LAST`: more concurrent connections to one server than one
//!   address's (deliberately small) port range allows, checked on the server.

mod load_support;

use std::collections::{BTreeMap, HashSet};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use load_support::*;
use serde_json::Value;
use surge_lab::{HostId, Lab, LabSpec, Topology};

/// surge's address in host A (A's kernel keeps 198.18.0.1).
const SURGE_ADDR: &str = "198.18.0.10";

/// A kernel HTTP server in B: nginx when installed (the issue's case), else
/// `surge serve --stack kernel --mode http`. Both close after a `Connection:
/// close` response, so the server holds the TIME-WAIT.
fn kernel_http_server(lab: &Lab, dir: &Scratch, port: u16) -> (Running, &'static str) {
    let nginx = Command::new("nginx")
        .arg("-v")
        .output()
        .is_ok_and(|o| o.status.success());
    if !nginx {
        let json = dir.path("server.json");
        return (
            serve(lab, port, "http", &[], &json),
            "surge serve --stack kernel",
        );
    }
    let root = dir.path("nginx");
    std::fs::create_dir_all(&root).expect("nginx dir");
    let conf = root.join("nginx.conf");
    let r = root.display();
    std::fs::write(
        &conf,
        format!(
            "daemon off;\nmaster_process off;\nworker_processes 1;\npid {r}/nginx.pid;\n\
             error_log {r}/error.log;\nevents {{ worker_connections 4096; }}\n\
             http {{\n access_log off;\n client_body_temp_path {r}/body;\n\
             proxy_temp_path {r}/proxy;\n fastcgi_temp_path {r}/fastcgi;\n\
             uwsgi_temp_path {r}/uwsgi;\n scgi_temp_path {r}/scgi;\n\
             server {{\n  listen {SERVER_ADDR}:{port} backlog=4096;\n\
             location / {{ return 200 \"{}\"; }}\n }}\n}}\n",
            "x".repeat(64)
        ),
    )
    .expect("nginx.conf");
    let child = lab
        .command(HostId::B, "nginx")
        .expect("command in B")
        .arg("-c")
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawning nginx");
    let running = Running { child };
    let deadline = Instant::now() + Duration::from_secs(10);
    while ss(lab, &["-Hltn", &format!("sport = :{port}")])
        .trim()
        .is_empty()
    {
        assert!(Instant::now() < deadline, "nginx did not start listening");
        std::thread::sleep(Duration::from_millis(50));
    }
    (running, "nginx")
}

/// `ss ARGS` in B.
fn ss(lab: &Lab, args: &[&str]) -> String {
    let out = lab
        .command(HostId::B, "ss")
        .expect("command in B")
        .args(args)
        .output()
        .expect("running ss");
    assert!(out.status.success(), "ss failed: {}", text(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `surge load --stack surge` in A from `SURGE_ADDR` against B's `port`, with
/// this test's secrets file; returns the output and the JSON report.
fn surge_load(lab: &Lab, dir: &Scratch, port: u16, args: &[&str], json: &Path) -> (Output, Value) {
    let target = format!("{SERVER_ADDR}:{port}");
    let output = lab
        .command(HostId::A, SURGE)
        .expect("command in A")
        .env("SURGE_SECRETS_FILE", dir.path("secrets"))
        .args(["load", "--stack", "surge", "--interface", &lab.a().ifname])
        .args(["--address", &format!("{SURGE_ADDR}/24")])
        .args(["--target", &target, "-t", "1", "--quiet", "--json"])
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
    (output, report)
}

/// A packet capture of SYNs and RSTs to or from `SURGE_ADDR`, in B.
struct Capture {
    running: Running,
    file: std::path::PathBuf,
    stderr: mpsc::Receiver<String>,
}

impl Capture {
    fn start(lab: &Lab, file: &Path) -> Capture {
        let filter =
            format!("tcp and host {SURGE_ADDR} and tcp[tcpflags] & (tcp-syn|tcp-rst) != 0");
        let mut child = lab
            .command(HostId::B, "tcpdump")
            .expect("command in B")
            .args(["-i", &lab.b().ifname, "-nn", "-U", "-B", "32768", "-w"])
            .arg(file)
            .arg(&filter)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawning tcpdump (root tests need tcpdump)");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let running = Running { child };
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) if line.contains("listening on") => break,
                Ok(_) => {}
                Err(_) => panic!("tcpdump did not start"),
            }
        }
        // tcpdump says it listens a moment before its filter is in place.
        std::thread::sleep(Duration::from_millis(500));
        Capture {
            running,
            file: file.to_owned(),
            stderr: rx,
        }
    }

    /// Stops the capture once it has written what it saw, and returns its packets,
    /// one text line each; panics if the kernel dropped any (the counts would lie).
    fn finish(self) -> Vec<String> {
        // tcpdump (-U) writes each packet as it reads it; on a busy machine it lags,
        // and what it has not read when it stops is lost: wait for the file to settle.
        let size = || std::fs::metadata(&self.file).map_or(0, |m| m.len());
        let settle = Instant::now() + Duration::from_secs(10);
        let mut last = size();
        while Instant::now() < settle {
            std::thread::sleep(Duration::from_millis(500));
            let now = size();
            if now == last {
                break;
            }
            last = now;
        }
        let pid = self.running.child.id().to_string();
        let _ = Command::new("kill").args(["-INT", &pid]).status();
        let mut running = self.running;
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = running.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let dropped: Vec<String> = self
            .stderr
            .try_iter()
            .filter(|l| l.contains("dropped by kernel") || l.contains("dropped by interface"))
            .collect();
        assert!(
            dropped.iter().all(|l| l.starts_with("0 ")),
            "the capture lost packets: {dropped:?}"
        );
        let out = Command::new("tcpdump")
            .args(["-nn", "-r"])
            .arg(&self.file)
            .output()
            .expect("reading the capture");
        assert!(out.status.success(), "tcpdump -r failed: {}", text(&out));
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_owned)
            .collect()
    }
}

/// One captured segment, as `tcpdump -nn -r` prints it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Segment {
    /// Sent by surge (else by the server).
    from_surge: bool,
    /// surge's port.
    port: u16,
    /// tcpdump's flags, e.g. `S`, `S.`, `R`, `R.`.
    flags: String,
    seq: Option<u32>,
    ack: Option<u32>,
}

/// Parses `... IP A.B.C.D.P > E.F.G.H.Q: Flags [S.], seq N, ack M, ...`.
fn segment(line: &str) -> Option<Segment> {
    let (_, rest) = line.split_once(" IP ")?;
    let (src, rest) = rest.split_once(" > ")?;
    let (dst, rest) = rest.split_once(": Flags [")?;
    let (flags, rest) = rest.split_once(']')?;
    let field = |name: &str| -> Option<u32> {
        rest.split(", ")
            .find_map(|f| f.strip_prefix(name))
            .and_then(|v| v.split(':').next())
            .and_then(|v| v.parse().ok())
    };
    let ours = format!("{SURGE_ADDR}.");
    let (from_surge, endpoint) = match (src.strip_prefix(&ours), dst.strip_prefix(&ours)) {
        (Some(port), _) => (true, port),
        (_, Some(port)) => (false, port),
        _ => return None,
    };
    Some(Segment {
        from_surge,
        port: endpoint.parse().ok()?,
        flags: flags.to_owned(),
        seq: field("seq "),
        ack: field("ack "),
    })
}

/// Connections (`-c`) of the TIME-WAIT runs.
const SLOTS: u64 = 20;

#[test]
fn a_second_close_run_is_accepted_by_the_servers_time_wait() {
    let lab = Lab::up(&LabSpec::unique("hsec-tw", Topology::Pair))
        .expect("lab up (root tests need root)");
    let dir = Scratch::new("hsec-tw");
    let port = 18080;
    let (_server, which) = kernel_http_server(&lab, &dir, port);
    // 500 ports for thousands of connections: every port is reused many times, so
    // the second run's SYNs land on the 4-tuples the first left in TIME-WAIT.
    let args = [
        "--mode",
        "http",
        "--close",
        "-c",
        &SLOTS.to_string(),
        "-d",
        "3s",
        "--local-port-range",
        "40000-40499",
    ];
    let (_, first) = surge_load(&lab, &dir, port, &args, &dir.path("first.json"));
    assert_eq!(num(&first, "errors_total"), 0, "first run: {first}");
    assert!(
        num(&first, "connects") > 500,
        "first run reused no port: {first}"
    );
    let time_wait: HashSet<u16> = ss(&lab, &["-Htan", "state", "time-wait"])
        .lines()
        .filter_map(|l| l.split_whitespace().last())
        .filter_map(|peer| peer.strip_prefix(&format!("{SURGE_ADDR}:")))
        .filter_map(|p| p.parse().ok())
        .collect();
    assert!(
        !time_wait.is_empty(),
        "{which} holds no TIME-WAIT from the first run"
    );

    let capture = Capture::start(&lab, &dir.path("second.pcap"));
    let (output, second) = surge_load(&lab, &dir, port, &args, &dir.path("second.json"));
    let packets = capture.finish();

    let segments: Vec<Segment> = packets.iter().filter_map(|l| segment(l)).collect();
    let syns: Vec<(u16, u32)> = segments
        .iter()
        .filter(|s| s.from_surge && s.flags == "S")
        .filter_map(|s| Some((s.port, s.seq?)))
        .collect();
    let syn_acks: HashSet<(u16, u32)> = segments
        .iter()
        .filter(|s| !s.from_surge && s.flags == "S.")
        .filter_map(|s| Some((s.port, s.ack?.wrapping_sub(1))))
        .collect();
    let attempts = num(&second, "connect_attempts");
    // Attempts still in their handshake when the run ended: abandoned, as a
    // process that exits abandons them (their SYN-ACK is answered with RST).
    let abandoned = attempts - num(&second, "connects");
    let mut seen = HashSet::new();
    let retransmitted: Vec<_> = syns.iter().filter(|s| !seen.insert(**s)).collect();
    let unanswered: Vec<_> = syns.iter().filter(|s| !syn_acks.contains(s)).collect();
    let reused = syns.iter().filter(|(p, _)| time_wait.contains(p)).count();
    let server_rsts: Vec<_> = segments
        .iter()
        .filter(|s| !s.from_surge && s.flags.starts_with('R'))
        .collect();
    let our_rsts = segments
        .iter()
        .filter(|s| s.from_surge && s.flags.starts_with('R'))
        .count();
    let context = format!(
        "server {which}; second run {}\nreport {second}\nfirst packets {:?}",
        text(&output),
        packets.iter().take(20).collect::<Vec<_>>()
    );
    assert!(
        reused > 0,
        "no SYN of the second run hit a TIME-WAIT 4-tuple: {context}"
    );
    assert!(
        retransmitted.is_empty(),
        "{} SYN retransmissions, e.g. {:?}: {context}",
        retransmitted.len(),
        retransmitted.iter().take(5).collect::<Vec<_>>()
    );
    assert_eq!(
        syns.len() as u64,
        attempts,
        "one SYN per connect attempt: {context}"
    );
    // A SYN the server's TIME-WAIT refuses is answered with an ACK, not a SYN-ACK.
    assert!(
        unanswered.len() as u64 <= abandoned,
        "{} SYNs without SYN-ACK ({abandoned} attempts abandoned at the end), e.g. {:?}: {context}",
        unanswered.len(),
        unanswered.iter().take(5).collect::<Vec<_>>()
    );
    assert!(
        server_rsts.is_empty(),
        "RSTs from the server: {server_rsts:?}: {context}"
    );
    assert!(
        our_rsts as u64 <= abandoned,
        "{our_rsts} RSTs from surge, {abandoned} attempts abandoned at the end: {context}"
    );
    assert_eq!(num(&second, "errors_total"), 0, "{context}");
    // Each slot holds at most one handshake when the last answer ends the run
    // (`--close` slots spend most of a cycle connecting, so every slot can be
    // mid-handshake then); every other attempt connected.
    assert!(
        abandoned <= SLOTS,
        "{abandoned} attempts never connected: {context}"
    );
    assert!(
        second["connect_errors"]
            .as_object()
            .is_some_and(serde_json::Map::is_empty),
        "connect errors (timeouts included): {context}"
    );
}

/// Established connections to B's `port`, counted by peer address, at most
/// `limit` from now: the largest total seen before `done` says the load is over.
fn peak_established(
    lab: &Lab,
    port: u16,
    limit: Duration,
    mut done: impl FnMut() -> bool,
) -> BTreeMap<String, usize> {
    let mut peak = BTreeMap::new();
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline && !done() {
        let mut now: BTreeMap<String, usize> = BTreeMap::new();
        for line in ss(
            lab,
            &["-Htn", "state", "established", &format!("sport = :{port}")],
        )
        .lines()
        {
            if let Some(peer) = line.split_whitespace().last() {
                let addr = peer.rsplit_once(':').map_or(peer, |(a, _)| a);
                *now.entry(addr.to_owned()).or_default() += 1;
            }
        }
        if now.values().sum::<usize>() > peak.values().sum::<usize>() {
            peak = now;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    peak
}

#[test]
fn a_source_range_opens_more_connections_than_one_address_has_ports() {
    let lab = Lab::up(&LabSpec::unique("hsec-src", Topology::Pair))
        .expect("lab up (root tests need root)");
    let dir = Scratch::new("hsec-src");
    let port = 18081;
    let server = serve(&lab, port, "rr", &[], &dir.path("server.json"));
    // 64 ports per address, 100 connections kept open at once.
    let common = [
        "--mode",
        "rr",
        "-c",
        "100",
        "-d",
        "3s",
        "--local-port-range",
        "40000-40063",
    ];

    // One address: the port range runs out (EADDRNOTAVAIL on connect).
    let (_, alone) = surge_load(&lab, &dir, port, &common, &dir.path("alone.json"));
    let alone_errors: u64 = alone["connect_errors"]
        .as_object()
        .expect("connect_errors")
        .values()
        .filter_map(Value::as_u64)
        .sum();
    assert!(
        alone_errors > 0,
        "one address with 64 ports opened 100 connections: {alone}"
    );

    // Three addresses, the primary among them: every connection opens.
    let mut load = lab
        .command(HostId::A, SURGE)
        .expect("command in A")
        .env("SURGE_SECRETS_FILE", dir.path("secrets"))
        .args(["load", "--stack", "surge", "--interface", &lab.a().ifname])
        .args(["--address", &format!("{SURGE_ADDR}/24")])
        .args(["--source", "198.18.0.10-198.18.0.12"])
        .args(["--target", &format!("{SERVER_ADDR}:{port}")])
        .args(["-t", "1", "--quiet", "--json"])
        .arg(dir.path("range.json"))
        .args(common)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running surge load");
    let peak = peak_established(&lab, port, Duration::from_secs(10), || {
        matches!(load.try_wait(), Ok(Some(_)))
    });
    let output = load.wait_with_output().expect("surge load");
    assert!(
        output.status.success(),
        "surge load failed: {}",
        text(&output)
    );
    let range = read_json(&dir.path("range.json"));
    assert_eq!(num(&range, "errors_total"), 0, "{range}");
    assert_eq!(num(&range, "connects"), 100, "{range}");
    assert_eq!(num(&range, "connect_attempts"), 100, "{range}");
    assert!(num(&range, "answered") > 0, "{range}");
    assert_eq!(
        peak.values().sum::<usize>(),
        100,
        "the server saw {peak:?} at most"
    );
    assert_eq!(peak.len(), 3, "connections from each source: {peak:?}");
    assert!(
        peak.values().all(|&n| n <= 64),
        "no address beyond its port range: {peak:?}"
    );
    server.stop();
}

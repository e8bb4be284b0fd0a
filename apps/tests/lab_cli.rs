//! Root tests of `surge lab`: up, status, exec, list, down (twice), Ctrl-C, and bad input.

use std::process::{Command, Output};
use std::time::Duration;

use surge_lab::{HostId, LabSpec, Topology, list_labs, netns_exists, netns_name};

/// Runs the built `surge` binary with `args`.
fn surge(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_surge"))
        .args(args)
        .output()
        .expect("running surge")
}

/// Output as text, for assertion messages.
fn text(output: &Output) -> String {
    format!(
        "status {}\nstdout: {}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Asserts a failed run printed exactly one line on stderr containing `words`.
fn assert_one_line_error(output: &Output, words: &[&str]) {
    assert!(
        !output.status.success(),
        "expected failure: {}",
        text(output)
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        stderr.trim_end().lines().count(),
        1,
        "not one line: {}",
        text(output)
    );
    for word in words {
        assert!(
            stderr.contains(word),
            "stderr lacks {word:?}: {}",
            text(output)
        );
    }
}

/// Asserts that no namespace of lab `name` exists.
fn assert_no_namespaces(name: &str) {
    for id in [HostId::A, HostId::B, HostId::Router] {
        let ns = netns_name(name, id);
        assert!(!netns_exists(&ns), "namespace {ns} left behind");
    }
    assert!(!list_labs().contains(&name.to_string()));
}

/// Processes whose command line mentions `needle` (read from /proc).
fn processes_mentioning(needle: &str) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|e| {
            let e = e.ok()?;
            let cmdline = std::fs::read(e.path().join("cmdline")).ok()?;
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            cmdline.contains(needle).then_some(cmdline)
        })
        .collect()
}

#[test]
fn up_status_exec_list_and_down_twice() {
    let name = LabSpec::unique("cli", Topology::Pair).name;
    let up = surge(&[
        "lab", "up", "--name", &name, "--queues", "2", "--mtu", "9000",
    ]);
    assert!(up.status.success(), "{}", text(&up));
    assert!(
        String::from_utf8_lossy(&up.stdout).contains("198.18.0.1/24"),
        "{}",
        text(&up)
    );

    let status = surge(&["lab", "status", "--name", &name]);
    assert!(status.status.success(), "{}", text(&status));
    let table = String::from_utf8_lossy(&status.stdout);
    assert!(
        table.contains("198.18.0.1/24") && table.contains("198.18.0.2/24"),
        "{table}"
    );
    assert!(table.contains(&netns_name(&name, HostId::A)), "{table}");
    assert!(table.contains("9000") && table.contains("2/2"), "{table}");

    let all = surge(&["lab", "status"]);
    assert!(String::from_utf8_lossy(&all.stdout).contains(&format!("lab {name} (pair)")));
    let list = surge(&["lab", "list"]);
    assert!(
        String::from_utf8_lossy(&list.stdout)
            .lines()
            .any(|l| l == name),
        "{}",
        text(&list)
    );

    let ping = surge(&[
        "lab",
        "exec",
        "--name",
        &name,
        "A",
        "--",
        "ping",
        "-c",
        "1",
        "-W",
        "2",
        "-M",
        "do",
        "-s",
        "8972",
        "198.18.0.2",
    ]);
    assert!(ping.status.success(), "{}", text(&ping));
    let code = surge(&[
        "lab", "exec", "--name", &name, "B", "--", "sh", "-c", "exit 3",
    ]);
    assert_eq!(code.status.code(), Some(3), "{}", text(&code));
    let router = surge(&["lab", "exec", "--name", &name, "R", "--", "true"]);
    assert_one_line_error(&router, &["has no host R"]);

    let taken = surge(&["lab", "up", "--name", &name]);
    assert_one_line_error(&taken, &["already exists"]);

    let down = surge(&["lab", "down", "--name", &name]);
    assert!(down.status.success(), "{}", text(&down));
    assert_no_namespaces(&name);
    let again = surge(&["lab", "down", "--name", &name]);
    assert!(again.status.success(), "second down: {}", text(&again));
    assert!(String::from_utf8_lossy(&again.stdout).contains("nothing to remove"));
}

#[test]
fn routed_delay_survives_the_up_process_and_down_stops_it() {
    let name = LabSpec::unique("clidelay", Topology::Routed).name;
    let up = surge(&[
        "lab",
        "up",
        "--name",
        &name,
        "--topology",
        "routed",
        "--delay",
        "5ms",
    ]);
    assert!(up.status.success(), "{}", text(&up));
    let ping = surge(&[
        "lab",
        "exec",
        "--name",
        &name,
        "A",
        "--",
        "ping",
        "-n",
        "-c",
        "1",
        "-W",
        "2",
        "198.18.2.1",
    ]);
    assert!(ping.status.success(), "{}", text(&ping));
    let stdout = String::from_utf8_lossy(&ping.stdout);
    let rtt: f64 = stdout
        .split("time=")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|t| t.parse().ok())
        .expect("ping printed an RTT");
    assert!(rtt > 10.0, "RTT {rtt} ms with --delay 5ms each way");

    let down = surge(&["lab", "down", "--name", &name]);
    assert!(down.status.success(), "{}", text(&down));
    assert_no_namespaces(&name);
    // The delay queue process notices the router namespace is gone and exits.
    let needle = format!("delay-queue --name {name} ");
    let mut left = processes_mentioning(&needle);
    for _ in 0..50 {
        if left.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
        left = processes_mentioning(&needle);
    }
    assert!(left.is_empty(), "delay queue still running: {left:?}");
}

#[test]
fn bad_input_is_one_line_and_leaves_nothing() {
    let name = LabSpec::unique("clibad", Topology::Pair).name;
    let cases: [(&[&str], &[&str]); 6] = [
        (&["--topology", "ring"], &["unknown topology", "ring"]),
        (
            &["--mtu", "100000"],
            &["MTU 100000", "refused by the kernel"],
        ),
        (
            &["--queues", "5000"],
            &["5000 veth queue(s) refused by the kernel"],
        ),
        (&["--delay", "5parsecs"], &["--delay", "unknown unit"]),
        (&["--loss", "1%"], &["routed"]),
        (
            &["--topology", "routed", "--loss", "300%"],
            &["--loss", "outside"],
        ),
    ];
    for (extra, words) in cases {
        let mut args = vec!["lab", "up", "--name", &name];
        args.extend_from_slice(extra);
        let out = surge(&args);
        assert_one_line_error(&out, words);
        assert_no_namespaces(&name);
    }
    let bad_name = surge(&["lab", "up", "--name", "No_Good"]);
    assert_one_line_error(&bad_name, &["invalid lab name", "No_Good"]);
    let bad_host = surge(&["lab", "exec", "--name", &name, "C", "--", "true"]);
    assert_one_line_error(&bad_host, &["unknown host"]);
    let missing = surge(&["lab", "status", "--name", &name]);
    assert_one_line_error(&missing, &["no lab named"]);
}

#[test]
fn without_root_it_says_so_in_one_line() {
    let name = LabSpec::unique("clinoroot", Topology::Pair).name;
    let out = Command::new("setpriv")
        .args([
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
            "--inh-caps=-all",
        ])
        .arg(env!("CARGO_BIN_EXE_surge"))
        .args(["lab", "up", "--name", &name])
        .output()
        .expect("setpriv");
    assert_one_line_error(&out, &["needs root"]);
    assert_no_namespaces(&name);
}

#[test]
fn interrupting_up_leaves_nothing_half_made() {
    for delay_ms in [5, 40, 120] {
        let name = LabSpec::unique("cliint", Topology::Routed).name;
        let child = Command::new(env!("CARGO_BIN_EXE_surge"))
            .args([
                "lab",
                "up",
                "--name",
                &name,
                "--topology",
                "routed",
                "--delay",
                "1ms",
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn surge lab up");
        std::thread::sleep(Duration::from_millis(delay_ms));
        let pid = child.id().to_string();
        let _ = Command::new("kill").args(["-INT", &pid]).status();
        let out = child.wait_with_output().expect("wait");
        let complete = [HostId::A, HostId::Router, HostId::B]
            .iter()
            .all(|&id| netns_exists(&netns_name(&name, id)));
        if complete {
            // The signal came after the lab was finished: it must work, then we remove it.
            let ping = surge(&[
                "lab",
                "exec",
                "--name",
                &name,
                "A",
                "--",
                "ping",
                "-c",
                "1",
                "-W",
                "2",
                "198.18.2.1",
            ]);
            assert!(
                ping.status.success(),
                "complete lab broken: {}",
                text(&ping)
            );
            assert!(surge(&["lab", "down", "--name", &name]).status.success());
        } else {
            assert!(
                !out.status.success(),
                "exit 0 without a lab: {}",
                text(&out)
            );
        }
        assert_no_namespaces(&name);
    }
}

#[test]
fn a_fan_lab_comes_up_runs_commands_in_its_clients_and_goes_away() {
    let name = LabSpec::unique("fancli", Topology::Routed).name;
    let up = surge(&[
        "lab",
        "up",
        "--name",
        &name,
        "--topology",
        "fan",
        "--clients",
        "2",
    ]);
    assert!(up.status.success(), "{}", text(&up));
    let stdout = String::from_utf8_lossy(&up.stdout);
    assert!(
        stdout.contains("C1") && stdout.contains("198.18.17.1/24"),
        "{stdout}"
    );
    let ping = surge(&[
        "lab",
        "exec",
        "--name",
        &name,
        "C1",
        "--",
        "ping",
        "-c",
        "1",
        "-W",
        "2",
        "198.18.2.1",
    ]);
    let down = surge(&["lab", "down", "--name", &name]);
    assert!(ping.status.success(), "C1 -> server: {}", text(&ping));
    assert!(down.status.success(), "{}", text(&down));
    assert_no_namespaces(&name);
    for i in 0..2 {
        assert!(!netns_exists(&surge_lab::client_netns_name(&name, i)));
    }
    let no_clients = surge(&["lab", "up", "--name", &name, "--topology", "fan"]);
    assert_one_line_error(&no_clients, &["--clients"]);
    let impaired = surge(&[
        "lab",
        "up",
        "--name",
        &name,
        "--topology",
        "fan",
        "--clients",
        "2",
        "--loss",
        "1%",
    ]);
    assert_one_line_error(&impaired, &["fan lab"]);
    assert_no_namespaces(&name);
}

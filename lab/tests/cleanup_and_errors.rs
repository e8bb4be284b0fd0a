//! Root tests: teardown leaves nothing (after `down`, drop, a panic, a failure half-way),
//! and bad input gives a one-line error with nothing left behind.

mod common;

use std::time::Duration;

use common::{assert_gone, ping, text};
use surge_lab::{HostId, Impairment, Lab, LabError, LabSpec, Topology, down_by_name, list_labs};

/// Lab name and interface names, for `assert_gone` after the lab is consumed.
fn names(lab: &Lab) -> (String, Vec<String>) {
    let ifnames = lab.interfaces().iter().map(|h| h.ifname.clone()).collect();
    (lab.name().to_string(), ifnames)
}

/// Asserts an error renders as one line and names the given words.
fn assert_one_line(err: &LabError, words: &[&str]) {
    let msg = err.to_string();
    assert!(!msg.contains('\n'), "multi-line error: {msg}");
    for word in words {
        assert!(
            msg.contains(word),
            "error {msg:?} does not mention {word:?}"
        );
    }
}

#[test]
fn drop_and_down_by_name_remove_everything_and_are_idempotent() {
    let (name, ifnames) = {
        let mut spec = LabSpec::unique("drop", Topology::Routed);
        spec.impairment.delay = Some(Duration::from_millis(1));
        let lab = Lab::up(&spec).expect("lab up");
        assert!(list_labs().contains(&lab.name().to_string()));
        names(&lab)
    };
    assert_gone(&name, &ifnames);

    let lab = Lab::up(&LabSpec::unique("byname", Topology::Pair)).expect("lab up");
    let (name, ifnames) = names(&lab);
    lab.keep();
    assert!(list_labs().contains(&name), "kept lab vanished");
    assert!(down_by_name(&name).expect("first down"));
    assert_gone(&name, &ifnames);
    assert!(!down_by_name(&name).expect("second down"));
}

#[test]
fn a_panicking_test_leaves_nothing() {
    let (tx, rx) = std::sync::mpsc::channel();
    let joined = std::thread::spawn(move || {
        let lab = Lab::up(&LabSpec::unique("panic", Topology::Routed)).expect("lab up");
        tx.send(names(&lab)).expect("send names");
        panic!("test body failed while holding the lab");
    })
    .join();
    assert!(joined.is_err(), "the thread was meant to panic");
    let (name, ifnames) = rx.recv().expect("names");
    assert_gone(&name, &ifnames);
}

#[test]
fn attach_reopens_a_lab_without_owning_it() {
    let lab = Lab::up(&LabSpec::unique("attach", Topology::Routed)).expect("lab up");
    {
        let again = Lab::attach(lab.name()).expect("attach");
        assert_eq!(again.topology(), Topology::Routed);
        assert_eq!(again.a(), lab.a());
        assert_eq!(again.host(HostId::Router), lab.host(HostId::Router));
        let status = again.status().expect("status");
        assert_eq!(status.hosts.len(), 3);
    }
    // Dropping the attached handle left the lab up.
    let out = ping(&lab, HostId::A, lab.b().addr, 56);
    assert!(out.status.success(), "{}", text(&out));
    let missing = Lab::attach("surge-no-such-lab").expect_err("attach to nothing");
    assert_one_line(&missing, &["no lab named"]);
    let no_router = Lab::up(&LabSpec::unique("norouter", Topology::Pair)).expect("pair");
    let err = no_router
        .exec(HostId::Router, &["true"])
        .expect_err("pair has no router");
    assert_one_line(&err, &["has no host R"]);
}

#[test]
fn xdp_programs_show_in_status_and_go_with_the_lab() {
    let dir = std::env::temp_dir().join(format!("surge-lab-xdp-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let source = dir.join("pass.c");
    let object = dir.join("pass.o");
    std::fs::write(
        &source,
        "__attribute__((section(\"xdp\"), used)) int pass(void *ctx) { return 2; }\n\
         char _license[] __attribute__((section(\"license\"), used)) = \"GPL\";\n",
    )
    .expect("write source");
    let cc = std::process::Command::new("clang")
        .args(["-O2", "-target", "bpf", "-c"])
        .arg(&source)
        .arg("-o")
        .arg(&object)
        .output()
        .expect("clang");
    assert!(cc.status.success(), "{}", text(&cc));

    let lab = Lab::up(&LabSpec::unique("xdp", Topology::Pair)).expect("lab up");
    let object_path = object.to_string_lossy().to_string();
    let ifname = lab.b().ifname.clone();
    let attach = lab
        .exec(
            HostId::B,
            &[
                "ip",
                "link",
                "set",
                "dev",
                &ifname,
                "xdp",
                "obj",
                &object_path,
                "sec",
                "xdp",
            ],
        )
        .expect("ip link set xdp");
    assert!(attach.status.success(), "{}", text(&attach));
    let status = lab.status().expect("status");
    let progs = status.xdp_programs();
    assert_eq!(progs.len(), 1, "{progs:?}");
    assert_eq!(progs[0].1, ifname);
    assert!(progs[0].2 > 0);
    assert!(status.to_string().contains("driver prog"), "{status}");
    // XDP_PASS: the kernel still answers pings.
    let out = ping(&lab, HostId::A, lab.b().addr, 56);
    assert!(out.status.success(), "{}", text(&out));

    let (name, ifnames) = names(&lab);
    lab.down().expect("down");
    assert_gone(&name, &ifnames);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn bad_names_and_topologies_are_refused() {
    let err = "star".parse::<Topology>().expect_err("unknown topology");
    assert_one_line(&err, &["unknown topology", "star"]);
    for bad in ["Bad", "a b", "-x", "a_b", "x/../y", "", &"y".repeat(40)] {
        let err = Lab::up(&LabSpec::new(bad, Topology::Pair)).expect_err("bad name accepted");
        assert!(
            matches!(err, LabError::InvalidName { .. }),
            "{bad:?}: {err}"
        );
        assert_one_line(&err, &["invalid lab name"]);
    }
    let err = down_by_name("Not/A/Name").expect_err("bad name in down");
    assert_one_line(&err, &["invalid lab name"]);
}

#[test]
fn a_name_in_use_is_refused_and_the_first_lab_survives() {
    let lab = Lab::up(&LabSpec::unique("taken", Topology::Pair)).expect("lab up");
    let err = Lab::up(&LabSpec::new(lab.name(), Topology::Routed)).expect_err("same name twice");
    assert!(matches!(err, LabError::NameInUse { .. }), "{err}");
    assert_one_line(&err, &["already exists", lab.name()]);
    let out = ping(&lab, HostId::A, lab.b().addr, 56);
    assert!(out.status.success(), "first lab broken: {}", text(&out));
}

#[test]
fn mtu_and_queues_the_kernel_refuses_leave_nothing() {
    let mut spec = LabSpec::unique("mtu", Topology::Routed);
    spec.mtu = 100_000;
    let err = Lab::up(&spec).expect_err("MTU 100000 accepted");
    assert!(
        matches!(err, LabError::MtuRefused { mtu: 100_000, .. }),
        "{err}"
    );
    assert_one_line(&err, &["MTU 100000", "refused by the kernel"]);
    assert_gone(&spec.name, &[]);

    for queues in [0, 5000] {
        let mut spec = LabSpec::unique("queues", Topology::Pair);
        spec.queues = queues;
        let err = Lab::up(&spec).expect_err("queue count accepted");
        assert!(
            matches!(err, LabError::QueuesRefused { .. }),
            "{queues}: {err}"
        );
        assert_one_line(&err, &["queue", "refused by the kernel"]);
        assert_gone(&spec.name, &[]);
    }
}

#[test]
fn impairments_on_a_pair_or_out_of_range_are_refused() {
    let mut spec = LabSpec::unique("imp", Topology::Pair);
    spec.impairment.loss_percent = Some(1.0);
    let err = Lab::up(&spec).expect_err("impairment on a pair");
    assert_one_line(&err, &["routed"]);
    assert_gone(&spec.name, &[]);

    let mut spec = LabSpec::unique("imp", Topology::Routed);
    spec.impairment = Impairment {
        loss_percent: Some(150.0),
        ..Impairment::default()
    };
    let err = Lab::up(&spec).expect_err("loss 150%");
    assert_one_line(&err, &["loss"]);
    assert_gone(&spec.name, &[]);
}

#[test]
fn loss_and_rate_rules_are_installed_on_the_router() {
    let mut spec = LabSpec::unique("loss", Topology::Routed);
    spec.impairment = Impairment {
        loss_percent: Some(100.0),
        rate: Some("10mbit".to_string()),
        ..Impairment::default()
    };
    let lab = Lab::up(&spec).expect("lab up");
    // Everything forwarded is dropped: A cannot reach B, but still reaches the router.
    let out = ping(&lab, HostId::A, lab.b().addr, 56);
    assert!(
        !out.status.success(),
        "100% loss let a ping through: {}",
        text(&out)
    );
    let router = lab.host(HostId::Router).expect("router").addr;
    let out = ping(&lab, HostId::A, router, 56);
    assert!(out.status.success(), "{}", text(&out));
    let status = lab.status().expect("status");
    let lines = &status
        .hosts
        .iter()
        .find(|h| h.id == HostId::Router)
        .expect("router")
        .impairments;
    assert!(lines.iter().any(|l| l.contains("DROP")), "{lines:?}");
    assert_eq!(
        lines.iter().filter(|l| l.contains("tbf")).count(),
        2,
        "{lines:?}"
    );
}

/// Set in the child process of the test below: the lab name it builds.
const CHILD_LAB: &str = "SURGE_LAB_SIGNAL_CHILD";

#[test]
fn a_process_killed_by_sigterm_or_sigint_leaves_nothing() {
    // The child role: build the lab, say so, and wait to be killed (bounded).
    if let Ok(name) = std::env::var(CHILD_LAB) {
        let lab = Lab::up(&LabSpec::new(&name, Topology::Pair)).expect("child lab up");
        println!("up {}", lab.name());
        std::thread::sleep(Duration::from_secs(60));
        return;
    }
    // The parent role: run this very test in a child process, signal it, check.
    for signal in ["TERM", "INT"] {
        let spec = LabSpec::unique("sig", Topology::Pair);
        let mut child = std::process::Command::new(std::env::current_exe().expect("exe"))
            .args([
                "--exact",
                "a_process_killed_by_sigterm_or_sigint_leaves_nothing",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_LAB, &spec.name)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("spawn child");
        let mut line = String::new();
        let mut out = std::io::BufReader::new(child.stdout.take().expect("stdout"));
        // libtest prints its own header (and `test <name> ... `) first; wait for
        // the child's words.
        let up = format!("up {}", spec.name);
        while !line.contains(&up) {
            line.clear();
            let n = std::io::BufRead::read_line(&mut out, &mut line).expect("child output");
            assert!(n > 0, "child ended before its lab was up");
        }
        assert!(list_labs().contains(&spec.name), "the child's lab is up");
        let status = std::process::Command::new("kill")
            .args([&format!("-{signal}"), &child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
        let exit = child.wait().expect("child exit");
        assert_eq!(
            exit.code(),
            Some(130),
            "SIG{signal}: the handler exits with 130"
        );
        assert!(
            !list_labs().contains(&spec.name),
            "SIG{signal}: the child's lab was removed"
        );
    }
}

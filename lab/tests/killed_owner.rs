//! Root test: a lab whose process was killed with SIGKILL (no destructor, no signal
//! handler) is removed by the next process that builds a lab. Its own binary: the
//! sweep runs at this process's first `Lab::up`, which must come after the kill.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use surge_lab::{HostId, Lab, LabSpec, Topology, netns_exists, netns_name};

/// Set in the child this test starts: build a lab, print its name, wait to be killed.
const CHILD: &str = "SURGE_LAB_KILLED_OWNER_CHILD";

#[test]
fn a_lab_left_by_a_killed_process_is_removed_by_the_next_lab_up() {
    if std::env::var_os(CHILD).is_some() {
        let lab = Lab::up(&LabSpec::unique("killed", Topology::Pair)).expect("child's lab");
        // On a line of its own: libtest may have printed part of a line before.
        println!("\nLAB={}", lab.name());
        std::thread::sleep(Duration::from_secs(60));
        return;
    }
    let exe = std::env::current_exe().expect("this test binary");
    let mut child = Command::new(exe)
        .args([
            "--exact",
            "a_lab_left_by_a_killed_process_is_removed_by_the_next_lab_up",
        ])
        .args(["--nocapture", "--test-threads", "1"])
        .env(CHILD, "1")
        .stdout(Stdio::piped())
        .spawn()
        .expect("starting the child");
    let stdout = child.stdout.take().expect("child's stdout");
    let name = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .find_map(|l| l.strip_prefix("LAB=").map(str::to_owned))
        .expect("the child printed its lab's name (root tests need root)");
    let namespaces = [netns_name(&name, HostId::A), netns_name(&name, HostId::B)];
    assert!(
        namespaces.iter().all(|ns| netns_exists(ns)),
        "child's lab is up"
    );
    child.kill().expect("SIGKILL the child");
    child.wait().expect("reaping the child");
    assert!(
        namespaces.iter().all(|ns| netns_exists(ns)),
        "SIGKILL ran no cleanup: the namespaces are still there"
    );
    let lab = Lab::up(&LabSpec::unique("killed-next", Topology::Pair)).expect("next lab");
    let deadline = Instant::now() + Duration::from_secs(5);
    while namespaces.iter().any(|ns| netns_exists(ns)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        namespaces.iter().all(|ns| !netns_exists(ns)),
        "the killed process's lab {name} was removed by the next Lab::up"
    );
    drop(lab);
}

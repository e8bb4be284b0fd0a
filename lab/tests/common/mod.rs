//! Shared checks for the lab's root tests.

#![allow(dead_code)]

use std::net::Ipv4Addr;
use std::process::Output;

use surge_lab::{HostId, Lab, list_labs, netns_exists, netns_name};

/// Output of a command as text, for assertion messages.
pub fn text(output: &Output) -> String {
    format!(
        "status {}\nstdout: {}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// One ping from `from` to `to` with payload `size` and DF set.
pub fn ping(lab: &Lab, from: HostId, to: Ipv4Addr, size: u32) -> Output {
    let to = to.to_string();
    let size = size.to_string();
    lab.exec(
        from,
        &[
            "ping", "-n", "-c", "1", "-W", "2", "-M", "do", "-s", &size, &to,
        ],
    )
    .expect("running ping")
}

/// The RTT in milliseconds that ping printed (`time=10.4 ms`).
pub fn rtt_ms(output: &Output) -> Option<f64> {
    let stdout = String::from_utf8_lossy(&output.stdout);
    let start = stdout.find("time=")? + "time=".len();
    let rest = stdout.get(start..)?;
    let end = rest.find(' ')?;
    rest.get(..end)?.parse().ok()
}

/// Interface names in the root namespace.
pub fn root_interfaces() -> Vec<String> {
    std::fs::read_dir("/sys/class/net")
        .expect("reading /sys/class/net")
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect()
}

/// Asserts that nothing of lab `name` exists: no namespace, not listed, no interface with
/// one of its names in the root namespace.
pub fn assert_gone(name: &str, ifnames: &[String]) {
    for id in [HostId::A, HostId::B, HostId::Router] {
        let ns = netns_name(name, id);
        assert!(!netns_exists(&ns), "namespace {ns} left behind");
    }
    assert!(
        !list_labs().contains(&name.to_string()),
        "lab {name} still listed"
    );
    let ip = std::process::Command::new("ip")
        .args(["netns", "list"])
        .output()
        .expect("ip netns list");
    let listed = String::from_utf8_lossy(&ip.stdout);
    assert!(
        !listed.contains(&format!("surge-{name}-")),
        "ip netns list still shows {name}: {listed}"
    );
    let root = root_interfaces();
    for ifname in ifnames {
        assert!(
            !root.contains(ifname),
            "veth {ifname} left in the root namespace"
        );
    }
}

//! Root test: a lab's namespaces resolve `a.lab`, `b.lab` and `router.lab` through their
//! own hosts file (under `ip netns exec`), and the file goes with the lab.

use std::path::Path;

use surge_lab::{HostId, Lab, LabSpec, Topology};

fn resolve(lab: &Lab, host: HostId, name: &str) -> String {
    let out = lab
        .exec(host, &["getent", "ahostsv4", name])
        .expect("getent in the lab");
    assert!(
        out.status.success(),
        "{name} does not resolve in {host}: {out:?}"
    );
    let text = String::from_utf8_lossy(&out.stdout);
    text.split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string()
}

#[test]
fn lab_host_names_resolve_in_every_namespace_and_go_with_the_lab() {
    let lab = Lab::up(&LabSpec::unique("hostsf", Topology::Routed)).expect("lab up (root)");
    let files: Vec<String> = [HostId::A, HostId::B, HostId::Router]
        .iter()
        .map(|&h| format!("/etc/netns/{}/hosts", lab.host(h).expect("host").netns))
        .collect();
    for f in &files {
        assert!(Path::new(f).exists(), "{f} missing");
    }
    assert_eq!(resolve(&lab, HostId::A, "b.lab"), lab.b().addr.to_string());
    assert_eq!(resolve(&lab, HostId::B, "a.lab"), lab.a().addr.to_string());
    assert_eq!(resolve(&lab, HostId::A, "router.lab"), "198.18.1.254");
    assert_eq!(resolve(&lab, HostId::B, "router.lab"), "198.18.2.254");
    // The names reach the hosts they name.
    let ping = lab
        .exec(HostId::A, &["ping", "-c", "1", "-W", "2", "b.lab"])
        .expect("ping");
    assert!(ping.status.success(), "ping b.lab: {ping:?}");
    lab.down().expect("lab down");
    for f in &files {
        let dir = Path::new(f).parent().expect("dir");
        assert!(!dir.exists(), "{} left behind", dir.display());
    }
}

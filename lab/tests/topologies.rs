//! Root tests: each topology builds, A pings B through the kernel with the right addresses,
//! MTU and queues, netem applies, and two labs coexist.

mod common;

use std::net::Ipv4Addr;
use std::time::Duration;

use common::{assert_gone, ping, rtt_ms, text};
use surge_lab::{HostId, Impairment, Lab, LabSpec, Topology};

/// Checks the addresses the lab gives and reports, and that ping at `mtu` works with DF.
fn check_ping_and_mtu(lab: &Lab, mtu: u32) {
    let b = lab.b().addr;
    let fits = ping(lab, HostId::A, b, mtu - 28);
    assert!(
        fits.status.success(),
        "ping of {} bytes failed: {}",
        mtu - 28,
        text(&fits)
    );
    let too_big = ping(lab, HostId::A, b, mtu - 27);
    assert!(
        !too_big.status.success(),
        "ping of {} bytes with DF passed an MTU of {mtu}: {}",
        mtu - 27,
        text(&too_big)
    );
    let back = ping(lab, HostId::B, lab.a().addr, 56);
    assert!(back.status.success(), "B -> A: {}", text(&back));
}

#[test]
fn pair_builds_pings_and_holds_mtu() {
    let lab = Lab::up(&LabSpec::unique("pair", Topology::Pair)).expect("lab up");
    assert_eq!(lab.a().addr, Ipv4Addr::new(198, 18, 0, 1));
    assert_eq!(lab.b().addr, Ipv4Addr::new(198, 18, 0, 2));
    assert_eq!(lab.a().peer_addr, lab.b().addr);
    assert!(lab.host(HostId::Router).is_none());
    check_ping_and_mtu(&lab, 1500);

    let status = lab.status().expect("status");
    let a = status
        .interface(HostId::A, &lab.a().ifname)
        .expect("A's veth in status");
    assert_eq!(a.addrs, vec![(lab.a().addr, 24)]);
    assert_eq!(a.mac, lab.a().mac.to_vec());
    assert_eq!((a.mtu, a.rx_queues, a.tx_queues, a.up), (1500, 1, 1, true));
    let lo = status.interface(HostId::B, "lo").expect("lo in B");
    assert!(lo.up, "lo is down in B");
    assert!(status.xdp_programs().is_empty());
    let table = status.to_string();
    assert!(table.contains("198.18.0.2/24"), "{table}");

    // B learned A's MAC from the ping: the neighbour entry is the lab's MAC.
    let neigh = lab
        .exec(HostId::B, &["ip", "neigh", "show", "198.18.0.1"])
        .expect("ip neigh");
    let mac = surge_lab::format_mac(&lab.a().mac);
    assert!(
        String::from_utf8_lossy(&neigh.stdout).contains(&mac),
        "{}",
        text(&neigh)
    );

    // TX checksum offload is off on the veths.
    let features = lab
        .exec(HostId::A, &["ethtool", "-k", &lab.a().ifname])
        .expect("ethtool");
    assert!(
        String::from_utf8_lossy(&features.stdout).contains("tx-checksumming: off"),
        "{}",
        text(&features)
    );

    let name = lab.name().to_string();
    let ifnames: Vec<String> = lab.interfaces().iter().map(|h| h.ifname.clone()).collect();
    lab.down().expect("down");
    assert_gone(&name, &ifnames);
}

#[test]
fn routed_with_jumbo_mtu_routes_through_the_router() {
    let mut spec = LabSpec::unique("routed", Topology::Routed);
    spec.mtu = 9000;
    let lab = Lab::up(&spec).expect("lab up");
    assert_eq!(lab.a().addr, Ipv4Addr::new(198, 18, 1, 1));
    assert_eq!(lab.a().gateway, Some(Ipv4Addr::new(198, 18, 1, 254)));
    assert_eq!(lab.b().addr, Ipv4Addr::new(198, 18, 2, 1));
    assert_eq!(lab.b().gateway, Some(Ipv4Addr::new(198, 18, 2, 254)));
    let router = lab.host(HostId::Router).expect("router");
    assert_eq!(router.addr, Ipv4Addr::new(198, 18, 1, 254));
    let towards_b = lab.router_towards_b().expect("router's B side");
    assert_eq!(towards_b.addr, Ipv4Addr::new(198, 18, 2, 254));
    check_ping_and_mtu(&lab, 9000);

    // The path really crosses the router: TTL drops by one.
    let out = lab
        .exec(
            HostId::A,
            &[
                "ping",
                "-n",
                "-c",
                "1",
                "-W",
                "2",
                &lab.b().addr.to_string(),
            ],
        )
        .expect("ping");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("ttl=63"),
        "{}",
        text(&out)
    );
    let forward = lab
        .exec(HostId::Router, &["cat", "/proc/sys/net/ipv4/ip_forward"])
        .expect("cat");
    assert_eq!(String::from_utf8_lossy(&forward.stdout).trim(), "1");
}

#[test]
fn routed_delay_is_applied() {
    let mut spec = LabSpec::unique("delay", Topology::Routed);
    spec.impairment = Impairment {
        delay: Some(Duration::from_millis(5)),
        ..Impairment::default()
    };
    let lab = Lab::up(&spec).expect("lab up");
    let out = ping(&lab, HostId::A, lab.b().addr, 56);
    assert!(out.status.success(), "{}", text(&out));
    let rtt = rtt_ms(&out).expect("ping printed an RTT");
    // 5 ms on each of the router's two egress interfaces: at least 10 ms round trip.
    assert!(rtt > 10.0, "RTT {rtt} ms with 5 ms netem delay each way");
    let status = lab.status().expect("status");
    let router = status
        .hosts
        .iter()
        .find(|h| h.id == HostId::Router)
        .expect("router");
    assert!(
        router
            .impairments
            .iter()
            .any(|l| l.contains("NFQUEUE") && l.contains("delay 5000us")),
        "{:?}",
        router.impairments
    );
}

#[test]
fn two_labs_coexist_and_queues_are_made() {
    let mut spec = LabSpec::unique("q", Topology::Pair);
    spec.queues = 2;
    let one = Lab::up(&spec).expect("first lab");
    let two = Lab::up(&LabSpec::unique("q", Topology::Routed)).expect("second lab");
    assert_ne!(one.a().mac, two.a().mac);
    assert_ne!(one.a().ifname, two.a().ifname);
    for lab in [&one, &two] {
        let out = ping(lab, HostId::A, lab.b().addr, 56);
        assert!(out.status.success(), "{}: {}", lab.name(), text(&out));
    }
    let labs = surge_lab::list_labs();
    assert!(labs.contains(&one.name().to_string()) && labs.contains(&two.name().to_string()));

    let status = one.status().expect("status");
    for (id, host) in [(HostId::A, one.a()), (HostId::B, one.b())] {
        let iface = status.interface(id, &host.ifname).expect("veth in status");
        assert_eq!(
            (iface.rx_queues, iface.tx_queues),
            (2, 2),
            "{}",
            host.ifname
        );
        // The same, as sysfs inside the namespace shows it.
        let dir = format!("/sys/class/net/{}/queues", host.ifname);
        let ls = one.exec(id, &["ls", &dir]).expect("ls");
        let mut queues: Vec<String> = String::from_utf8_lossy(&ls.stdout)
            .split_whitespace()
            .map(str::to_string)
            .collect();
        queues.sort();
        assert_eq!(queues, ["rx-0", "rx-1", "tx-0", "tx-1"], "{}", text(&ls));
    }
}

#[test]
fn threaded_napi_is_switched_on() {
    let mut spec = LabSpec::unique("napi", Topology::Pair);
    spec.threaded_napi = true;
    let lab = Lab::up(&spec).expect("lab up");
    for (id, host) in [(HostId::A, lab.a()), (HostId::B, lab.b())] {
        let file = format!("/sys/class/net/{}/threaded", host.ifname);
        let out = lab.exec(id, &["cat", &file]).expect("cat");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            "1",
            "{}",
            text(&out)
        );
    }
    let out = ping(&lab, HostId::A, lab.b().addr, 56);
    assert!(out.status.success(), "{}", text(&out));
}

#[test]
fn threads_enter_and_leave_a_lab_namespace() {
    let lab = Lab::up(&LabSpec::unique("ns", Topology::Pair)).expect("lab up");
    let netns = lab.a().netns.clone();
    let ifname = lab.a().ifname.clone();
    // A UDP socket bound to A's address only works inside A's namespace.
    let addr = lab.a().addr;
    let inside = surge_lab::spawn_in_netns(&netns, move || {
        std::net::UdpSocket::bind((addr, 0))
            .map(|_| ())
            .map_err(|e| e.to_string())
    })
    .join()
    .expect("thread");
    assert_eq!(inside.expect("entered"), Ok(()));
    assert!(
        std::net::UdpSocket::bind((addr, 0)).is_err(),
        "198.18.0.1 is bindable in the root namespace"
    );
    let root_before = std::fs::read_link("/proc/thread-self/ns/net").expect("readlink");
    {
        let guard = surge_lab::enter_netns(&netns).expect("enter");
        assert_eq!(guard.netns(), netns);
        let now = std::fs::read_link("/proc/thread-self/ns/net").expect("readlink");
        assert_ne!(now, root_before);
        assert!(std::net::UdpSocket::bind((addr, 0)).is_ok());
    }
    let after = std::fs::read_link("/proc/thread-self/ns/net").expect("readlink");
    assert_eq!(
        after, root_before,
        "the guard did not restore the namespace"
    );
    assert!(!common::root_interfaces().contains(&ifname));
}

#[test]
fn routed_duplication_and_reorder_rules_apply() {
    let mut spec = LabSpec::unique("dup", Topology::Routed);
    spec.impairment = Impairment {
        delay: Some(Duration::from_micros(200)),
        duplicate_percent: Some(100.0),
        reorder_percent: Some(50.0),
        ..Impairment::default()
    };
    let lab = Lab::up(&spec).expect("lab up");
    let b = lab.b().addr.to_string();
    // Two echoes 200 ms apart: the duplicate replies of the first arrive in between.
    let out = lab
        .exec(
            HostId::A,
            &["ping", "-n", "-c", "2", "-i", "0.2", "-W", "2", &b],
        )
        .expect("ping");
    assert!(out.status.success(), "{}", text(&out));
    // Every packet is duplicated by the router, so ping reports duplicate replies.
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("DUP!"),
        "{}",
        text(&out)
    );
    let status = lab.status().expect("status");
    let router = status
        .hosts
        .iter()
        .find(|h| h.id == HostId::Router)
        .expect("router");
    let rules = router.impairments.join("\n");
    assert!(rules.contains("-j TEE"), "{rules}");
    assert!(
        rules.contains("--probability 0.5") && rules.contains("-j ACCEPT"),
        "{rules}"
    );
}

/// The `Icmp:` counter `name` of `/proc/net/snmp` in `host`'s namespace.
fn icmp_counter(lab: &Lab, host: HostId, name: &str) -> u64 {
    let out = lab.exec(host, &["cat", "/proc/net/snmp"]).expect("snmp");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut lines = text.lines().filter(|l| l.starts_with("Icmp:"));
    let (names, values) = (lines.next().expect("names"), lines.next().expect("values"));
    names
        .split_whitespace()
        .zip(values.split_whitespace())
        .find(|(n, _)| *n == name)
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or_else(|| panic!("no Icmp {name} in {text}"))
}

#[test]
fn routed_corruption_flips_payload_bytes_that_checksums_catch() {
    let mut spec = LabSpec::unique("corrupt", Topology::Routed);
    spec.impairment = Impairment {
        corrupt_percent: Some(30.0),
        ..Impairment::default()
    };
    let lab = Lab::up(&spec).expect("lab up");
    let b = lab.b().addr.to_string();
    let count = |host, name| icmp_counter(&lab, host, name);
    let before = [
        count(HostId::B, "InCsumErrors"),
        count(HostId::B, "InEchos"),
        count(HostId::A, "InCsumErrors"),
        count(HostId::B, "OutEchoReps"),
    ];
    // A deadline (-w): ping's raw socket also sees the corrupted replies that the kernel
    // then drops, and their garbled sequence numbers and timestamps confuse its counting.
    let out = lab
        .exec(
            HostId::A,
            &[
                "ping", "-n", "-q", "-c", "200", "-i", "0.005", "-w", "10", &b,
            ],
        )
        .expect("ping");
    let [bad_requests, good_requests, bad_replies, replies] = [
        count(HostId::B, "InCsumErrors") - before[0],
        count(HostId::B, "InEchos") - before[1],
        count(HostId::A, "InCsumErrors") - before[2],
        count(HostId::B, "OutEchoReps") - before[3],
    ];
    // The router inverted a byte in about 30 % of the requests, which B's kernel dropped on
    // their ICMP checksum, and in about 30 % of the replies, which A's kernel dropped.
    let share = |bad: u64, all: u64| bad as f64 / all.max(1) as f64;
    let what = format!(
        "requests: {bad_requests} bad, {good_requests} good; replies: {bad_replies} bad of {replies}: {}",
        text(&out)
    );
    assert!(bad_requests + good_requests >= 150, "{what}");
    assert!(
        (0.2..=0.4).contains(&share(bad_requests, bad_requests + good_requests)),
        "{what}"
    );
    assert_eq!(
        replies, good_requests,
        "every good request answered: {what}"
    );
    assert!((0.2..=0.4).contains(&share(bad_replies, replies)), "{what}");
    let status = lab.status().expect("status");
    let router = status
        .hosts
        .iter()
        .find(|h| h.id == HostId::Router)
        .expect("router");
    let rules = router.impairments.join("\n");
    assert!(
        rules.contains("corrupt 30.0000% ce-mark 0.0000%"),
        "{rules}"
    );
}

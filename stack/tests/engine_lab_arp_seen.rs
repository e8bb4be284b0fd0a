//! A neighbour's gratuitous ARP reaches surge's cache (root: lab, XDP).
//!
//! The steering program passes ARP that is not for one of surge's own
//! addresses to the kernel, and copies it to its `arp_seen` ring; the engine
//! drains the ring and merges the sender as RFC 826 asks. Here the Linux host
//! B changes its MAC with `arp_notify` on, so its kernel announces the new one
//! with a gratuitous ARP; surge must send its next datagram to the new MAC
//! without resolving B again. Before the ring, surge kept the old MAC until
//! its entry went stale, and B's kernel dropped every frame (wrong MAC).

#[path = "support/lab_engine.rs"]
mod lab_engine;

use core::net::SocketAddrV4;
use std::net::UdpSocket;
use std::time::Duration;

use lab_engine::{SteerPorts, engine_on_a_with, now, on_host, poll_until, sysctl};
use surge_bpf::Counter;
use surge_lab::{HostId, Lab, LabSpec, Topology};

const B_PORT: u16 = 9000;
const NEW_MAC: &str = "02:5e:00:00:0b:99";

/// Waits in B for `count` datagrams on `socket`; returns what arrived.
fn receive(socket: &UdpSocket, count: usize) -> Vec<Vec<u8>> {
    let mut got = Vec::new();
    let mut buf = [0u8; 64];
    while got.len() < count {
        match socket.recv(&mut buf) {
            Ok(n) => got.push(buf[..n].to_vec()),
            Err(_) => break, // the read timeout: report what came
        }
    }
    got
}

#[test]
fn a_gratuitous_arp_from_a_neighbour_updates_surges_cache() {
    let lab =
        Lab::up(&LabSpec::unique("garp", Topology::Pair)).expect("lab (root tests need root)");
    let b = lab.b().clone();
    let (mut engine, program) = engine_on_a_with(&lab, SteerPorts::default(), |c| {
        c.gratuitous_arp = false;
        // B's entry stays fresh for the whole test: only the announcement can
        // change it.
        c.neighbor.reachable_time = Duration::from_secs(120);
    });
    // B's kernel announces a new MAC with a gratuitous ARP (Linux `arp_notify`).
    sysctl(
        &lab,
        HostId::B,
        &format!("net.ipv4.conf.{}.arp_notify", b.ifname),
        "1",
    );
    let receiver = {
        let ip = b.addr;
        on_host(&lab, HostId::B, move || {
            let s = UdpSocket::bind(SocketAddrV4::new(ip, B_PORT)).expect("bind in B");
            s.set_read_timeout(Some(Duration::from_secs(5)))
                .expect("timeout");
            s
        })
        .join()
        .expect("B's socket")
    };
    let to_b = Some(SocketAddrV4::new(b.addr, B_PORT));
    let udp = engine.udp_socket().expect("udp socket");

    // First datagram: surge resolves B (one ARP request) and sends.
    engine.send_to(udp, b"one", to_b).expect("send one");
    assert!(
        poll_until(&mut engine, Duration::from_secs(5), |e| {
            e.neighbor_stats().resolved > 0 && e.stats().tx_frames >= 2
        }),
        "B resolved: {:?} {:?}",
        engine.neighbor_stats(),
        engine.stats()
    );
    let receiver = std::thread::spawn(move || {
        let first = receive(&receiver, 1);
        (receiver, first)
    });
    let (receiver, first) = {
        // Keep the engine polling while B reads.
        let h = receiver;
        while !h.is_finished() {
            engine.poll(now());
            std::thread::sleep(Duration::from_millis(1));
        }
        h.join().expect("receiver")
    };
    assert_eq!(first, vec![b"one".to_vec()], "B got the first datagram");
    let requests = engine.stats().arp_requests;

    // B takes a new MAC; its kernel announces it.
    let out = lab
        .exec(
            HostId::B,
            &["ip", "link", "set", "dev", &b.ifname, "address", NEW_MAC],
        )
        .expect("ip link set address");
    assert!(
        out.status.success(),
        "changing B's MAC: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        poll_until(&mut engine, Duration::from_secs(5), |e| {
            e.stats().arp_observed > 0
        }),
        "surge saw B's announcement: {:?}, program {:?}",
        engine.stats(),
        program.counters()
    );
    let counters = program.counters().expect("counters");
    assert!(counters.get(Counter::ArpCopied) > 0, "{counters:?}");
    assert_eq!(counters.get(Counter::ArpCopyLost), 0, "{counters:?}");

    // The next datagram goes to the new MAC straight away.
    engine.send_to(udp, b"two", to_b).expect("send two");
    let h = std::thread::spawn(move || receive(&receiver, 1));
    while !h.is_finished() {
        engine.poll(now());
        std::thread::sleep(Duration::from_millis(1));
    }
    let second = h.join().expect("receiver");
    assert_eq!(
        second,
        vec![b"two".to_vec()],
        "B got the datagram sent after its announcement: {:?}",
        engine.stats()
    );
    assert_eq!(
        engine.stats().arp_requests,
        requests,
        "no new resolution: the announcement updated the entry"
    );
}

//! ARP at start: a gratuitous ARP announcement of each address (RFC 5227 §3,
//! core 0 only), and static neighbours that need no resolution.

mod support;

use core::net::SocketAddrV4;

use support::{IP_A, IP_B, MAC_A, MAC_B, config};
use surge_datapath::{Burst, Device, PipeConfig, PipeDevice};
use surge_stack::engine::Engine;
use surge_stack::time::Instant;
use surge_stack::wire::frame::{Network, parse_frame};
use surge_stack::wire::{ArpOperation, EthernetAddress};

/// The ARP packets waiting on `dev` (what the engine at the other end sent).
fn arps(dev: &mut PipeDevice) -> Vec<surge_stack::wire::ArpRepr> {
    let mut rx = Burst::new();
    dev.rx_burst(&mut rx);
    let found = rx
        .as_slice()
        .iter()
        .filter_map(|f| match parse_frame(dev.frame(f), Default::default()) {
            Ok(p) => match p.network {
                Network::Arp(a) => Some(a),
                _ => None,
            },
            Err(_) => None,
        })
        .collect();
    dev.release(&mut rx);
    found
}

#[test]
fn core_zero_announces_its_address_once() {
    let (da, mut peer) = PipeDevice::pair(&PipeConfig::default()).expect("pipe");
    let mut c = config(MAC_A, IP_A, 1);
    c.gratuitous_arp = surge_stack::engine::EngineConfig::new(c.iface.clone()).gratuitous_arp;
    assert!(c.gratuitous_arp, "on by default");
    let mut a = Engine::new(da, c).expect("engine");
    a.poll(Instant::ZERO);
    let sent = arps(&mut peer);
    assert_eq!(sent.len(), 1, "{sent:?}");
    let g = sent[0];
    assert_eq!(g.operation, ArpOperation::Request);
    assert_eq!(g.source_hardware_addr, MAC_A);
    assert_eq!(
        (g.source_protocol_addr, g.target_protocol_addr),
        (IP_A, IP_A)
    );
    a.poll(Instant::from_micros(1000));
    assert!(arps(&mut peer).is_empty(), "only at start");

    // Another core of a stack stays quiet; so does an engine told not to.
    for (core, announce) in [(1u16, true), (0, false)] {
        let (d, mut p) = PipeDevice::pair(&PipeConfig::default()).expect("pipe");
        let mut c = config(MAC_A, IP_A, 1);
        c.core = core;
        c.cores = 2;
        c.gratuitous_arp = announce;
        let mut e = Engine::new(d, c).expect("engine");
        e.poll(Instant::ZERO);
        assert!(arps(&mut p).is_empty(), "core {core}, announce {announce}");
    }
}

#[test]
fn a_static_neighbour_needs_no_arp() {
    let (da, mut peer) = PipeDevice::pair(&PipeConfig::default()).expect("pipe");
    let mut c = config(MAC_A, IP_A, 1);
    c.gratuitous_arp = false;
    c.static_neighbors = vec![(IP_B, MAC_B)];
    let mut a = Engine::new(da, c).expect("engine");
    let u = a.udp_socket().expect("udp");
    a.send_to(u, b"hello", Some(SocketAddrV4::new(IP_B, 9)))
        .expect("send");
    a.poll(Instant::ZERO);
    let mut rx = Burst::new();
    peer.rx_burst(&mut rx);
    let frames: Vec<(EthernetAddress, bool)> = rx
        .as_slice()
        .iter()
        .filter_map(|f| parse_frame(peer.frame(f), Default::default()).ok())
        .map(|p| (p.ethernet.dst_addr, matches!(p.network, Network::Arp(_))))
        .collect();
    peer.release(&mut rx);
    assert_eq!(
        frames,
        vec![(MAC_B, false)],
        "the datagram went straight to B's MAC"
    );
    assert_eq!(a.stats().arp_requests, 0);
}

//! ICMP errors about our TCP segments reach their connection (RFC 1122 §4.2.3.9,
//! RFC 5927, RFC 1191): port unreachable aborts a connect in SYN-SENT, host
//! unreachable is a soft error, fragmentation needed lowers the MSS, and a
//! quoted sequence number outside the window is ignored. Two engines on the
//! in-memory link; the ICMP messages are written onto B's device by the test,
//! quoting a segment A really sent.

mod support;

use core::net::SocketAddrV4;
use core::time::Duration;

use support::{IP_A, IP_B, MAC_A, MAC_B, Net, any};
use surge_datapath::{Burst, Device};
use surge_stack::Errno;
use surge_stack::table::BindOptions;
use surge_stack::tcp::State;
use surge_stack::wire::frame::{Network, Transport, parse_frame};
use surge_stack::wire::{DstUnreachable, Icmpv4Repr, Ipv4Packet, Ipv4Repr};

/// Advances the clock and polls A only: whatever A sends waits on B's device.
fn step_a(net: &mut Net) {
    net.now += Duration::from_micros(100);
    let us = net.now.total_micros();
    net.a.device_mut().set_now(us);
    net.b.device_mut().set_now(us);
    net.a.poll(net.now);
}

/// Takes the TCP segments A sent off B's device: (IP header bytes + TCP bytes).
fn capture_tcp(net: &mut Net) -> Vec<Vec<u8>> {
    let mut rx = Burst::new();
    let dev = net.b.device_mut();
    dev.rx_burst(&mut rx);
    let mut out = Vec::new();
    for f in rx.as_slice() {
        let bytes = dev.frame(f);
        if let Ok(parsed) = parse_frame(bytes, Default::default()) {
            if let Network::Ipv4 {
                transport: Transport::Tcp { .. },
                ..
            } = parsed.network
            {
                out.push(bytes[14..].to_vec());
            }
        }
    }
    dev.release(&mut rx);
    out
}

/// Writes an ICMP destination unreachable from B to A quoting `ip_packet`.
fn inject_unreachable(net: &mut Net, reason: DstUnreachable, mtu: u16, ip_packet: &[u8]) {
    let quoted = Ipv4Packet::new_checked(ip_packet).expect("quoted header");
    let header = Ipv4Repr::parse(&quoted, Default::default()).expect("quoted repr");
    let header_len = quoted.header_len();
    let icmp = Icmpv4Repr::DstUnreachable {
        reason,
        next_hop_mtu: mtu,
        header,
        data: &ip_packet[header_len..header_len + 8],
    };
    support::send_icmp(net.b.device_mut(), (MAC_B, IP_B), (MAC_A, IP_A), &icmp);
}

/// A connect from A whose SYN is held on B's device (B knows A's MAC by then).
fn syn_held(net: &mut Net, port: u16) -> (surge_stack::socket::SocketHandle, Vec<u8>) {
    // Resolve B first (an ARP exchange through both engines).
    let u = net.a.udp_socket().expect("udp");
    net.a
        .send_to(u, b"x", Some(SocketAddrV4::new(IP_B, 7)))
        .expect("send");
    assert!(net.run_until(100, |n| n.b.stats().arp_replies == 1));
    net.step(Duration::from_millis(1));
    let c = net.a.tcp_socket().expect("socket");
    assert_eq!(
        net.a.connect(c, SocketAddrV4::new(IP_B, port)),
        Err(Errno::EINPROGRESS)
    );
    step_a(net);
    let mut syn = capture_tcp(net);
    assert_eq!(syn.len(), 1, "one SYN");
    (c, syn.remove(0))
}

#[test]
fn port_unreachable_aborts_a_connect_in_syn_sent() {
    let mut net = Net::new();
    let (c, syn) = syn_held(&mut net, 9);
    inject_unreachable(&mut net, DstUnreachable::PortUnreachable, 0, &syn);
    step_a(&mut net);
    assert_eq!(net.a.take_error(c), Ok(Some(Errno::ECONNREFUSED)));
}

#[test]
fn host_unreachable_is_a_soft_error_and_a_stale_quote_is_ignored() {
    let mut net = Net::new();
    let (c, syn) = syn_held(&mut net, 9);
    inject_unreachable(&mut net, DstUnreachable::HostUnreachable, 0, &syn);
    step_a(&mut net);
    assert_eq!(net.a.take_error(c), Ok(None), "soft: the connect goes on");
    assert_eq!(net.a.tcp_info(c).map(|i| i.state), Ok(State::SynSent));
    // A quote whose sequence number is not in flight (RFC 5927 §4.1) is ignored,
    // even a port unreachable that would otherwise abort.
    let mut stale = syn.clone();
    let seq_at = 20 + 4;
    stale[seq_at] ^= 0x80;
    inject_unreachable(&mut net, DstUnreachable::PortUnreachable, 0, &stale);
    step_a(&mut net);
    assert_eq!(net.a.tcp_info(c).map(|i| i.state), Ok(State::SynSent));
    assert_eq!(net.a.tcp_socket_stats(c).map(|t| t.icmp_ignored), Ok(1));
}

#[test]
fn fragmentation_needed_lowers_the_mss_and_data_still_arrives() {
    let mut net = Net::new();
    let l = net.b.tcp_socket().expect("socket");
    net.b
        .bind(l, any(8000), BindOptions::default())
        .expect("bind");
    net.b.listen(l, 8).expect("listen");
    let c = net.a.tcp_socket().expect("socket");
    assert_eq!(
        net.a.connect(c, SocketAddrV4::new(IP_B, 8000)),
        Err(Errno::EINPROGRESS)
    );
    let mut server = None;
    assert!(net.run_until(1000, |n| {
        server = server.or_else(|| n.b.accept(l).ok().map(|(s, _)| s));
        server.is_some()
    }));
    let server = server.expect("accepted");
    let before = net.a.tcp_info(c).expect("info").snd_mss;
    let data: Vec<u8> = (0..20_000u32).map(|i| (i % 251) as u8).collect();
    assert_eq!(net.a.send(c, &data), Ok(data.len()));
    step_a(&mut net);
    let segments = capture_tcp(&mut net);
    let big = segments
        .iter()
        .find(|s| s.len() > 1000)
        .expect("a full-sized data segment");
    inject_unreachable(&mut net, DstUnreachable::FragRequired, 1000, big);
    step_a(&mut net);
    let stats = net.a.tcp_socket_stats(c).expect("stats");
    assert_eq!(stats.pmtu_updates, 1);
    assert!(
        stats.snd_mss < before && stats.snd_mss <= 960,
        "MSS {before} -> {}",
        stats.snd_mss
    );
    // The segments taken off B's device are lost: retransmission (at the new
    // size) delivers everything.
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    assert!(net.run_until(50_000, |n| {
        while let Ok(k) = n.b.recv(server, &mut buf) {
            if k == 0 {
                break;
            }
            got.extend_from_slice(&buf[..k]);
        }
        got.len() == data.len()
    }));
    assert!(got == data);
}

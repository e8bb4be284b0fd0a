//! Two engines on an in-memory link (the datapath's `PipeDevice`) with a virtual
//! clock: ARP resolution, UDP both ways, ICMP echo and port unreachable, the bind
//! rules through the engine, and malformed frames counted, never a panic.

mod support;

use core::net::{Ipv4Addr, SocketAddrV4};
use core::time::Duration;

use support::{IP_A, IP_B, MAC_A, MAC_B, Net, any};
use surge_datapath::{Burst, Device};
use surge_stack::Errno;
use surge_stack::engine::DropReason;
use surge_stack::table::BindOptions;
use surge_stack::wire::Icmpv4Repr;

#[test]
fn udp_round_trip_resolves_arp_once_each_way() {
    let mut net = Net::new();
    let server = net.b.udp_socket().expect("socket");
    net.b
        .bind(server, any(7777), BindOptions::default())
        .expect("bind");
    let client = net.a.udp_socket().expect("socket");
    assert_eq!(
        net.a
            .send_to(client, b"hello", Some(SocketAddrV4::new(IP_B, 7777))),
        Ok(5)
    );
    let client_addr = net.a.local_addr(client).expect("auto-bound");
    assert_ne!(
        client_addr.port(),
        0,
        "sendto on an unbound socket auto-binds an ephemeral port"
    );

    let mut buf = [0u8; 64];
    let mut got = None;
    assert!(net.run_until(100, |n| {
        got = n.b.recv_from(server, &mut buf).ok();
        got.is_some()
    }));
    let (n, len, from) = got.expect("datagram");
    assert_eq!((&buf[..n], len), (&b"hello"[..], 5));
    assert_eq!(from, SocketAddrV4::new(IP_A, client_addr.port()));

    // The reply needs no ARP: B learned A from A's request (RFC 826 merge).
    assert_eq!(net.b.send_to(server, b"world", Some(from)), Ok(5));
    let mut reply = None;
    assert!(net.run_until(100, |n| {
        reply = n.a.recv_from(client, &mut buf).ok();
        reply.is_some()
    }));
    assert_eq!(&buf[..5], b"world");
    assert_eq!(reply.map(|r| r.2), Some(SocketAddrV4::new(IP_B, 7777)));
    assert_eq!(net.a.stats().arp_requests, 1);
    assert_eq!(net.b.stats().arp_replies, 1);
    assert_eq!(net.b.stats().arp_requests, 0);
    assert_eq!(net.a.udp_stats(client).map(|s| s.datagrams_out), Ok(1));
}

#[test]
fn udp_to_a_closed_port_gets_icmp_port_unreachable() {
    let mut net = Net::new();
    let client = net.a.udp_socket().expect("socket");
    net.a
        .send_to(client, b"anyone?", Some(SocketAddrV4::new(IP_B, 9)))
        .expect("send");
    assert!(net.run_until(100, |n| n.b.stats().icmp_errors_sent == 1));
    assert_eq!(net.b.stats().dropped(DropReason::UdpNoPort), 1);
    // A receives the error (and, having no UDP error queue yet, counts it as ignored).
    assert!(net.run_until(100, |n| n.a.stats().dropped(DropReason::IcmpIgnored) == 1));
}

#[test]
fn engine_answers_ping_in_place() {
    let mut net = Net::new();
    // Resolve A at B first, so B's reply goes out at once: a UDP datagram does it.
    let s = net.b.udp_socket().expect("socket");
    net.b
        .bind(
            s,
            any(1),
            BindOptions {
                privileged: true,
                ..BindOptions::default()
            },
        )
        .expect("bind");
    let c = net.a.udp_socket().expect("socket");
    net.a
        .send_to(c, b"x", Some(SocketAddrV4::new(IP_B, 1)))
        .expect("send");
    assert!(net.run_until(100, |n| n.b.stats().arp_replies == 1));
    net.step(Duration::from_millis(1));

    // Write an echo request straight onto A's device, as a kernel `ping` would send it.
    let data = [0x5au8; 56];
    let icmp = Icmpv4Repr::EchoRequest {
        ident: 0x1234,
        seq_no: 7,
        data: &data,
    };
    support::send_icmp(net.a.device_mut(), (MAC_A, IP_A), (MAC_B, IP_B), &icmp);

    // Let B answer, then read A's device directly (not through A's engine).
    net.now += Duration::from_micros(100);
    let us = net.now.total_micros();
    net.a.device_mut().set_now(us);
    net.b.device_mut().set_now(us);
    net.b.poll(net.now);
    net.now += Duration::from_micros(100);
    let us = net.now.total_micros();
    net.a.device_mut().set_now(us);
    net.b.device_mut().set_now(us);
    net.b.poll(net.now);
    let mut rx = Burst::new();
    let dev = net.a.device_mut();
    dev.rx_burst(&mut rx);
    let reply = rx.as_slice().iter().find_map(|f| {
        let parsed =
            surge_stack::wire::frame::parse_frame(dev.frame(f), Default::default()).ok()?;
        match parsed.network {
            surge_stack::wire::frame::Network::Ipv4 {
                header,
                transport:
                    surge_stack::wire::frame::Transport::Icmp(Icmpv4Repr::EchoReply {
                        ident,
                        seq_no,
                        data,
                    }),
            } => Some((
                parsed.ethernet.dst_addr,
                header.src_addr,
                header.dst_addr,
                ident,
                seq_no,
                data.to_vec(),
            )),
            _ => None,
        }
    });
    dev.release(&mut rx);
    let (dst_mac, src, dst, ident, seq_no, echoed) =
        reply.expect("an echo reply with valid checksums");
    assert_eq!(
        (dst_mac, src, dst, ident, seq_no),
        (MAC_A, IP_B, IP_A, 0x1234, 7)
    );
    assert_eq!(echoed, data.to_vec());
    assert_eq!(net.b.stats().icmp_echo_replies, 1);
}

#[test]
fn unanswered_arp_gives_up_and_counts() {
    let mut net = Net::new();
    let c = net.a.udp_socket().expect("socket");
    let nobody = SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 99), 5);
    // One more than the queue holds (Linux unres_qlen, 101).
    for _ in 0..102 {
        net.a
            .send_to(c, b"lost", Some(nobody))
            .expect("queued while resolving");
    }
    assert!(net.run_until(50_000, |n| n.a.neighbor_stats().failed == 1));
    let ns = net.a.neighbor_stats();
    assert_eq!(
        ns.requests, 3,
        "three probes, one per second (Linux mcast_solicit)"
    );
    // One past the queue limit, then the 101 queued ones at failure.
    assert_eq!(ns.pending_dropped, 102);
}

#[test]
fn bind_errors_are_the_linux_ones() {
    let mut net = Net::new();
    let e = &mut net.a;
    let s1 = e.udp_socket().expect("socket");
    let s2 = e.udp_socket().expect("socket");
    let opts = BindOptions::default();
    e.bind(s1, any(5000), opts).expect("bind");
    assert_eq!(
        e.bind(s1, any(5001), opts),
        Err(Errno::EINVAL),
        "already bound"
    );
    assert_eq!(
        e.bind(s2, SocketAddrV4::new(IP_A, 5000), opts),
        Err(Errno::EADDRINUSE)
    );
    assert_eq!(
        e.bind(s2, SocketAddrV4::new(IP_B, 5002), opts),
        Err(Errno::EADDRNOTAVAIL)
    );
    assert_eq!(e.bind(s2, any(80), opts), Err(Errno::EACCES));
    assert_eq!(e.send_to(s2, b"x", None), Err(Errno::EDESTADDRREQ));
    assert_eq!(
        e.send_to(s2, &[0u8; 1473], Some(SocketAddrV4::new(IP_B, 1))),
        Err(Errno::EMSGSIZE)
    );
    let off_net = SocketAddrV4::new(Ipv4Addr::new(198, 19, 0, 1), 1);
    assert_eq!(e.send_to(s2, b"x", Some(off_net)), Err(Errno::ENETUNREACH));
    // As Linux (inet_send_prepare -> inet_autobind), sendto bound s2 before routing failed.
    assert_ne!(e.local_addr(s2).map(|a| a.port()), Ok(0));
    assert_eq!(e.bind(s2, any(5003), opts), Err(Errno::EINVAL));
    e.close(s1).expect("close");
    assert_eq!(e.close(s1), Err(Errno::EBADF));
    assert_eq!(e.recv_from(s1, &mut [0u8; 4]), Err(Errno::EBADF));
    // The port is free again.
    let s3 = e.udp_socket().expect("socket");
    e.bind(s3, any(5000), opts).expect("rebind after close");
    assert_eq!(e.recv_from(s3, &mut [0u8; 4]), Err(Errno::EAGAIN));
}

#[test]
fn malformed_frames_are_dropped_and_counted_by_reason() {
    let mut net = Net::new();
    let frames: Vec<Vec<u8>> = vec![
        vec![0u8; 10], // shorter than Ethernet
        [&MAC_B.0[..], &MAC_A.0[..], &[0x08, 0x00], &[0x45; 10]].concat(), // truncated IPv4
        [&MAC_B.0[..], &MAC_A.0[..], &[0x86, 0xdd], &[0u8; 40]].concat(), // IPv6
        [
            &[0x02, 9, 9, 9, 9, 9][..],
            &MAC_A.0[..],
            &[0x08, 0x06],
            &[0u8; 28],
        ]
        .concat(), // other MAC
    ];
    let dev = net.a.device_mut();
    let mut tx = Burst::new();
    for bytes in &frames {
        let mut f = dev.alloc_tx().expect("frame");
        dev.frame_mut(&f)[..bytes.len()].copy_from_slice(bytes);
        assert!(f.set_len(bytes.len()));
        tx.push(f).expect("room");
    }
    dev.tx_burst(&mut tx);
    net.step(Duration::from_micros(100));
    net.step(Duration::from_micros(100));
    // The device layer itself refuses the runt shorter than an Ethernet header.
    let (sent, received) = (net.a.device().stats(), net.b.device().stats());
    assert_eq!(
        sent.tx_bad_length + received.rx_runts,
        1,
        "{sent:?} {received:?}"
    );
    let s = net.b.stats();
    assert_eq!(s.rx_frames, 3);
    assert_eq!(
        s.total_drops(),
        3,
        "{:?}",
        s.drops_by_name().collect::<Vec<_>>()
    );
    assert_eq!(s.dropped(DropReason::Truncated), 1);
    assert_eq!(s.dropped(DropReason::Unsupported), 1);
    assert_eq!(s.dropped(DropReason::NotOurMac), 1);
    assert!(net.b.device().accounting().balanced(), "no frame leaked");
}

/// `send` and `recv`, the stream calls, work on a connected UDP socket as on Linux
/// (one datagram each), and on a closed handle say EBADF whatever it was.
#[test]
fn stream_calls_on_a_connected_udp_socket() {
    let mut net = Net::new();
    let a = net.a.udp_socket().expect("udp a");
    let b = net.b.udp_socket().expect("udp b");
    net.a
        .bind(a, any(5300), BindOptions::default())
        .expect("bind a");
    net.b
        .bind(b, any(5301), BindOptions::default())
        .expect("bind b");
    net.a
        .connect_udp(a, SocketAddrV4::new(IP_B, 5301))
        .expect("connect a");
    assert_eq!(net.a.send(a, b"datagram"), Ok(8));
    let mut buf = [0u8; 64];
    let mut got = Err(Errno::EAGAIN);
    assert!(net.run_until(1000, |n| {
        got = n.b.recv(b, &mut buf);
        got != Err(Errno::EAGAIN)
    }));
    assert_eq!(got, Ok(8));
    assert_eq!(&buf[..8], b"datagram");
    net.a.close(a).expect("close");
    assert_eq!(net.a.send(a, b"x"), Err(Errno::EBADF));
    assert_eq!(net.a.recv(a, &mut buf), Err(Errno::EBADF));
}

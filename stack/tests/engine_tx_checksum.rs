//! The engine with TX checksum offload: it writes only the pseudo-header sum
//! into TCP/UDP checksum fields and asks the device to complete them.
//!
//! - Over the in-memory pipe built with offload on (the pipe completes requests
//!   in software when it sends): two engines that verify every checksum
//!   exchange UDP and TCP, and the device counters prove requests were made.
//! - Root test, over AF_XDP copy mode on a lab veth: a surge engine against the
//!   Linux kernel on the other end (which verifies every checksum: the lab turns
//!   TX checksumming off on the veths, so A's kernel completes our requests in
//!   software rather than passing them on partial). UDP both ways and a TCP echo
//!   of a megabyte; the port's `tx_checksum_offloaded` counter proves the
//!   offload carried the traffic.

mod support;

use core::net::{Ipv4Addr, SocketAddrV4};
use core::time::Duration;
use std::net::UdpSocket;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use support::{IP_B, Net, any};
use surge_datapath::{Device, PipeConfig, TxChecksumOffload};
use surge_lab::{HostId, Lab, LabSpec, Topology, enter_netns, spawn_in_netns};
use surge_stack::Errno;
use surge_stack::engine::DropReason;
use surge_stack::iface::Ipv4Cidr;
use surge_stack::runtime::xdp::{XdpConfig, XdpInterface};
use surge_stack::table::BindOptions;
use surge_stack::time::Instant;

fn offload_pipe() -> Net {
    Net::with_pipe(&PipeConfig {
        tx_checksum_offload: true,
        ..PipeConfig::default()
    })
}

#[test]
fn udp_over_an_offloading_pipe_verifies_at_the_receiver() {
    let mut net = offload_pipe();
    assert!(net.a.device().caps().tx_checksum_offload);
    let server = net.b.udp_socket().expect("socket");
    net.b
        .bind(server, any(7000), BindOptions::default())
        .expect("bind");
    let client = net.a.udp_socket().expect("socket");
    let mut buf = [0u8; 2048];
    // The first datagram waits for ARP (built in scratch, completed in
    // software); the later ones go straight into TX frames with a request.
    for (i, size) in [5usize, 0, 1, 333, 1472].into_iter().enumerate() {
        let payload: Vec<u8> = (0..size).map(|j| (i * 17 + j) as u8).collect();
        assert_eq!(
            net.a
                .send_to(client, &payload, Some(SocketAddrV4::new(IP_B, 7000))),
            Ok(size)
        );
        let mut got = None;
        assert!(net.run_until(100, |n| {
            got = n.b.recv_from(server, &mut buf).ok();
            got.is_some()
        }));
        let (n, len, from) = got.expect("datagram");
        assert_eq!((&buf[..n], len), (&payload[..], size));
        // And back, from B (which learned A's MAC: a request every time).
        assert_eq!(net.b.send_to(server, &payload, Some(from)), Ok(size));
        let mut back = None;
        assert!(net.run_until(100, |n| {
            back = n.a.recv_from(client, &mut buf).ok();
            back.is_some()
        }));
        assert_eq!(&buf[..back.expect("reply").0], &payload[..]);
    }
    assert_eq!(net.a.stats().dropped(DropReason::BadChecksum), 0);
    assert_eq!(net.b.stats().dropped(DropReason::BadChecksum), 0);
    assert_eq!(
        net.a.device().stats().tx_checksum_offloaded,
        4,
        "every datagram but the ARP-parked first"
    );
    assert_eq!(net.b.device().stats().tx_checksum_offloaded, 5);
}

#[test]
fn tcp_over_an_offloading_pipe_moves_every_byte() {
    let mut net = offload_pipe();
    let listener = net.b.tcp_socket().expect("socket");
    net.b
        .bind(listener, any(8000), BindOptions::default())
        .expect("bind");
    net.b.listen(listener, 8).expect("listen");
    let client = net.a.tcp_socket().expect("socket");
    assert_eq!(
        net.a.connect(client, SocketAddrV4::new(IP_B, 8000)),
        Err(Errno::EINPROGRESS),
        "non-blocking connect"
    );
    let mut server = None;
    assert!(net.run_until(1000, |n| {
        server = n.b.accept(listener).ok().map(|(s, _)| s);
        server.is_some()
    }));
    let server = server.expect("accepted");
    let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    let mut sent = 0;
    let mut got = Vec::new();
    let mut buf = [0u8; 65536];
    for _ in 0..20_000 {
        if sent < data.len() {
            sent += net.a.send(client, &data[sent..]).unwrap_or(0);
        }
        match net.b.recv(server, &mut buf) {
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(Errno::EAGAIN) => {}
            Err(e) => panic!("recv: {e:?}"),
        }
        if got.len() == data.len() {
            break;
        }
        net.step(Duration::from_micros(100));
    }
    assert_eq!(got.len(), data.len(), "every byte arrived");
    assert!(got == data, "in order and intact");
    assert_eq!(net.a.stats().dropped(DropReason::BadChecksum), 0);
    assert_eq!(net.b.stats().dropped(DropReason::BadChecksum), 0);
    assert!(
        net.a.device().stats().tx_checksum_offloaded > 200,
        "data segments used the offload: {:?}",
        net.a.device().stats()
    );
    assert!(
        net.b.device().stats().tx_checksum_offloaded > 0,
        "ACKs used the offload"
    );
}

#[test]
fn without_offload_no_request_is_made() {
    let mut net = Net::new();
    assert!(!net.a.device().caps().tx_checksum_offload);
    let server = net.b.udp_socket().expect("socket");
    net.b
        .bind(server, any(7001), BindOptions::default())
        .expect("bind");
    let client = net.a.udp_socket().expect("socket");
    let mut buf = [0u8; 64];
    for _ in 0..3 {
        net.a
            .send_to(client, b"plain", Some(SocketAddrV4::new(IP_B, 7001)))
            .expect("send");
        assert!(net.run_until(100, |n| n.b.recv_from(server, &mut buf).is_ok()));
    }
    assert_eq!(net.a.device().stats().tx_checksum_offloaded, 0);
    assert_eq!(net.b.stats().dropped(DropReason::BadChecksum), 0);
}

// ---- root test: a kernel peer on the other veth end ----

/// The address only surge answers in host A (the kernel of A has 198.18.0.1).
const SURGE_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 10);
const LIMIT: std::time::Duration = std::time::Duration::from_secs(60);

const PY_ECHO_CLIENT: &str = r#"
import hashlib, os, socket, sys
addr, port, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
data = os.urandom(size)
s = socket.create_connection((addr, port), timeout=20)
s.settimeout(20)
got = bytearray()
sent = 0
while sent < len(data) or len(got) < len(data):
    if sent < len(data):
        sent += s.send(data[sent:sent + 65536])
    while len(got) < sent:
        chunk = s.recv(1 << 20)
        if not chunk:
            raise SystemExit("server closed early after %d bytes" % len(got))
        got += chunk
s.shutdown(socket.SHUT_WR)
assert s.recv(1) == b"", "expected EOF"
print("sha", hashlib.sha256(data).hexdigest() == hashlib.sha256(bytes(got)).hexdigest(), len(got))
"#;

fn epoch() -> std::time::Instant {
    static EPOCH: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    *EPOCH.get_or_init(std::time::Instant::now)
}

/// `group` counter `name` of /proc/net/snmp in B.
fn snmp(lab: &Lab, group: &str, name: &str) -> u64 {
    let out = lab
        .exec(HostId::B, &["cat", "/proc/net/snmp"])
        .expect("cat /proc/net/snmp");
    let text = String::from_utf8_lossy(&out.stdout);
    let prefix = format!("{group}:");
    let mut lines = text.lines().filter(|l| l.starts_with(&prefix));
    let (Some(names), Some(values)) = (lines.next(), lines.next()) else {
        panic!("no {group} lines in /proc/net/snmp:\n{text}");
    };
    let index = names
        .split_whitespace()
        .position(|n| n == name)
        .unwrap_or_else(|| panic!("no {group} {name}"));
    values
        .split_whitespace()
        .nth(index)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("bad {group} {name}"))
}

#[test]
fn kernel_peer_accepts_udp_and_tcp_checksummed_by_the_offload() {
    let lab =
        Lab::up(&LabSpec::unique("eng-csum", Topology::Pair)).expect("lab (root tests need root)");
    let (a, b) = (lab.a().clone(), lab.b().clone());
    let (engine, _program) = {
        let _ns = enter_netns(&a.netns).expect("entering ns A");
        let xdp = XdpConfig {
            mac: Some(surge_stack::wire::EthernetAddress(a.mac)),
            queues: Some(1),
            tcp_ports: vec![7],
            udp_ports: vec![9],
            ..XdpConfig::new(&a.ifname, Ipv4Cidr::new(SURGE_IP, 24).expect("cidr"))
        };
        let interface = XdpInterface::attach(&xdp, |_| {}).expect("attach");
        let engine = interface.open_engine(0).expect("AF_XDP port and engine");
        assert_eq!(
            engine.device().tx_checksum_offload(),
            TxChecksumOffload::CopyMode,
            "veth copy mode on Linux 6.11+ offloads"
        );
        (engine, interface.into_program())
    };
    let udp_errors_before = snmp(&lab, "Udp", "InCsumErrors");
    let tcp_errors_before = snmp(&lab, "Tcp", "InCsumErrors");

    // The kernel's UDP socket in B, which surge datagrams must reach.
    let kernel_udp = spawn_in_netns(&b.netns, move || {
        let s = UdpSocket::bind((b.addr, 5353)).expect("bind in B");
        s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .expect("timeout");
        s
    })
    .join()
    .expect("thread")
    .expect("ns B");
    let b = lab.b().clone();

    // The engine: a UDP echo on port 9 that also sends one datagram of its
    // own to the kernel, and a TCP echo on port 7.
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    let peer = SocketAddrV4::new(b.addr, 5353);
    let handle = std::thread::spawn(move || {
        let mut engine = engine;
        let udp = engine.udp_socket().expect("udp");
        engine
            .bind(
                udp,
                SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 9),
                BindOptions {
                    privileged: true,
                    ..BindOptions::default()
                },
            )
            .expect("bind udp");
        let listener = engine.tcp_socket().expect("tcp");
        engine
            .bind(
                listener,
                SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 7),
                BindOptions {
                    privileged: true,
                    ..BindOptions::default()
                },
            )
            .expect("bind tcp");
        engine.listen(listener, 16).expect("listen");
        let mut conns: Vec<(surge_stack::socket::SocketHandle, Vec<u8>)> = Vec::new();
        let mut sent_own = false;
        let mut buf = [0u8; 16384];
        let start = std::time::Instant::now();
        while start.elapsed() < LIMIT && !flag.load(Ordering::Relaxed) {
            let now = Instant::from_micros(epoch().elapsed().as_micros() as u64);
            let busy = engine.poll(now);
            if !sent_own {
                sent_own = engine
                    .send_to(udp, b"from surge, checksum offloaded", Some(peer))
                    .is_ok();
            }
            while let Ok((n, _, from)) = engine.recv_from(udp, &mut buf) {
                let _ = engine.send_to(udp, &buf[..n], Some(from));
            }
            while let Ok((c, _)) = engine.accept(listener) {
                conns.push((c, Vec::new()));
            }
            conns.retain_mut(|(c, pending)| {
                loop {
                    match engine.recv(*c, &mut buf) {
                        Ok(0) => {
                            let _ = engine.close(*c);
                            return false;
                        }
                        Ok(n) => pending.extend_from_slice(&buf[..n]),
                        Err(Errno::EAGAIN) => break,
                        Err(_) => {
                            let _ = engine.close(*c);
                            return false;
                        }
                    }
                }
                while !pending.is_empty() {
                    match engine.send(*c, pending) {
                        Ok(n) => {
                            pending.drain(..n);
                        }
                        Err(_) => break,
                    }
                }
                true
            });
            if !busy {
                std::thread::sleep(std::time::Duration::from_micros(50));
            }
        }
        engine
    });

    // Surge's own datagram reaches the kernel socket.
    let mut buf = [0u8; 2048];
    let (n, from) = kernel_udp
        .recv_from(&mut buf)
        .expect("the kernel received surge's datagram");
    assert_eq!(&buf[..n], b"from surge, checksum offloaded");
    assert_eq!(from, std::net::SocketAddr::from((SURGE_IP, 9)));
    // UDP echo: the kernel sends, surge echoes with an offloaded checksum.
    for size in [1usize, 100, 1400] {
        let payload: Vec<u8> = (0..size).map(|i| (i * 3 + size) as u8).collect();
        kernel_udp
            .send_to(&payload, (SURGE_IP, 9))
            .expect("send from B");
        let (n, _) = kernel_udp.recv_from(&mut buf).expect("echo from surge");
        assert_eq!(&buf[..n], &payload[..]);
    }
    // TCP echo of a megabyte from a kernel client.
    let out = lab
        .exec(
            HostId::B,
            &[
                "timeout",
                "50",
                "python3",
                "-c",
                PY_ECHO_CLIENT,
                &SURGE_IP.to_string(),
                "7",
                "1000000",
            ],
        )
        .expect("python client");
    stop.store(true, Ordering::Relaxed);
    let engine = handle.join().expect("engine thread");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("sha True 1000000"),
        "kernel TCP client failed: {stdout} {}\nengine: {:?}",
        String::from_utf8_lossy(&out.stderr),
        engine.stats()
    );
    assert_eq!(snmp(&lab, "Udp", "InCsumErrors"), udp_errors_before);
    assert_eq!(snmp(&lab, "Tcp", "InCsumErrors"), tcp_errors_before);
    let stats = engine.device().stats();
    assert!(
        stats.tx_checksum_offloaded > 100,
        "the offload carried the traffic: {stats:?}"
    );
    assert_eq!(stats.tx_bad_checksum_request, 0);
    assert_eq!(
        stats.kernel.map(|k| k.tx_invalid_descs),
        Some(0),
        "the kernel took every descriptor"
    );
}

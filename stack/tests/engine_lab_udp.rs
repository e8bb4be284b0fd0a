//! UDP between surge's engine on AF_XDP and the Linux kernel's stack, in a fresh
//! lab: a surge UDP echo socket answers a kernel client in host B (every payload
//! checked, from empty to the largest that fits the MTU, one at a time and in a
//! burst), and a datagram to a closed surge port draws an ICMP port unreachable
//! that the kernel reports as ECONNREFUSED on its connected socket. Root tests.

#[path = "support/lab_engine.rs"]
mod lab_engine;

use core::net::{Ipv4Addr, SocketAddrV4};
use std::net::UdpSocket;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use lab_engine::{SURGE_IP, SteerPorts, assert_no_leaks, engine_on_a_with, on_host, pattern};
use surge_lab::{HostId, Lab, LabSpec, Topology};
use surge_stack::Errno;
use surge_stack::engine::DropReason;
use surge_stack::table::BindOptions;

const ECHO_PORT: u16 = 7000;
/// Steered to surge, but no socket is bound to it.
const CLOSED_PORT: u16 = 7001;
const LIMIT: Duration = Duration::from_secs(60);
/// The largest UDP payload in one 1500-byte IPv4 packet.
const MAX_PAYLOAD: usize = 1500 - 20 - 8;
/// Datagrams of the one-at-a-time round.
const PING_PONG: usize = 300;
/// Datagrams sent at once in the burst round (well within both receive buffers).
const BURST: usize = 64;

/// What the surge echo socket did.
#[derive(Debug, Default)]
struct Echoed {
    datagrams: usize,
    bytes: usize,
    send_errors: Vec<Errno>,
}

#[test]
fn surge_udp_echo_and_port_unreachable_seen_by_the_kernel() {
    let lab =
        Lab::up(&LabSpec::unique("eng-udp", Topology::Pair)).expect("lab (root tests need root)");
    let b_addr = lab.b().addr;
    let ports = SteerPorts {
        tcp: Vec::new(),
        udp: vec![ECHO_PORT, CLOSED_PORT],
    };
    let (mut engine, _program) = engine_on_a_with(&lab, ports, |_| {});
    let echo = engine.udp_socket().expect("udp socket");
    let bound = engine
        .bind(
            echo,
            SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, ECHO_PORT),
            BindOptions::default(),
        )
        .expect("bind");
    assert_eq!(bound.port(), ECHO_PORT);

    let stop = Arc::new(AtomicBool::new(false));
    let run = lab_engine::run_engine_with(
        engine,
        Arc::clone(&stop),
        LIMIT,
        Echoed::default(),
        move |e, echoed| {
            let mut buf = [0u8; 2048];
            while let Ok((n, len, from)) = e.recv_from(echo, &mut buf) {
                assert_eq!(n, len, "a datagram was truncated");
                echoed.datagrams += 1;
                echoed.bytes += n;
                if let Err(err) = e.send_to(echo, &buf[..n], Some(from)) {
                    echoed.send_errors.push(err);
                }
            }
            false
        },
    );

    let client = on_host(&lab, HostId::B, move || -> Result<usize, String> {
        let sock = UdpSocket::bind(SocketAddrV4::new(b_addr, 0)).map_err(|e| e.to_string())?;
        sock.connect(SocketAddrV4::new(SURGE_IP, ECHO_PORT))
            .map_err(|e| e.to_string())?;
        sock.set_read_timeout(Some(Duration::from_secs(3)))
            .map_err(|e| e.to_string())?;
        let mut buf = [0u8; 2048];
        let mut checked = 0;
        // One at a time: every length from 0 to the MTU's limit comes up.
        for i in 0..PING_PONG {
            let len = match i {
                0 => 0,
                1 => MAX_PAYLOAD,
                _ => (i * 97) % (MAX_PAYLOAD + 1),
            };
            let payload = pattern(len, i as u64 + 1);
            sock.send(&payload).map_err(|e| format!("send {i}: {e}"))?;
            let n = sock
                .recv(&mut buf)
                .map_err(|e| format!("no echo of datagram {i} ({len} bytes): {e}"))?;
            if buf[..n] != payload[..] {
                return Err(format!(
                    "datagram {i}: echo of {n} bytes differs ({len} sent)"
                ));
            }
            checked += 1;
        }
        // A burst: all sent before any is read; they come back in order.
        let burst: Vec<Vec<u8>> = (0..BURST)
            .map(|i| pattern(1 + i * 20, 1000 + i as u64))
            .collect();
        for (i, p) in burst.iter().enumerate() {
            sock.send(p).map_err(|e| format!("burst send {i}: {e}"))?;
        }
        for (i, p) in burst.iter().enumerate() {
            let n = sock
                .recv(&mut buf)
                .map_err(|e| format!("no echo of burst datagram {i}: {e}"))?;
            if buf[..n] != p[..] {
                return Err(format!("burst datagram {i}: the echo differs"));
            }
            checked += 1;
        }
        Ok(checked)
    });
    let checked = client.join().expect("client thread");

    // A connected kernel UDP socket to a closed surge port: the ICMP port
    // unreachable surge answers with reads as ECONNREFUSED (RFC 1122 §4.1.3.3).
    let refused = on_host(&lab, HostId::B, move || -> Result<(), String> {
        let sock = UdpSocket::bind(SocketAddrV4::new(b_addr, 0)).map_err(|e| e.to_string())?;
        sock.connect(SocketAddrV4::new(SURGE_IP, CLOSED_PORT))
            .map_err(|e| e.to_string())?;
        sock.set_read_timeout(Some(Duration::from_secs(3)))
            .map_err(|e| e.to_string())?;
        sock.send(b"anyone?").map_err(|e| e.to_string())?;
        let mut buf = [0u8; 64];
        match sock.recv(&mut buf) {
            Err(e) if e.raw_os_error() == Some(libc::ECONNREFUSED) => Ok(()),
            other => Err(format!("expected ECONNREFUSED, got {other:?}")),
        }
    })
    .join()
    .expect("refused thread");

    stop.store(true, Ordering::Relaxed);
    let (engine, echoed, _) = run.join().expect("engine thread");
    let stats = engine.stats();
    assert_eq!(
        checked,
        Ok(PING_PONG + BURST),
        "echo client; surge: {echoed:?} {stats:?}"
    );
    assert_eq!(refused, Ok(()), "closed port; surge: {stats:?}");
    assert_eq!(echoed.datagrams, PING_PONG + BURST);
    assert!(echoed.send_errors.is_empty(), "{:?}", echoed.send_errors);
    let udp = engine.udp_stats(echo).expect("udp stats");
    let n = (PING_PONG + BURST) as u64;
    assert_eq!(
        (
            udp.datagrams_in,
            udp.datagrams_delivered,
            udp.datagrams_out,
            udp.rcvbuf_errors
        ),
        (n, n, n, 0),
        "{udp:?}"
    );
    assert_eq!(stats.dropped(DropReason::UdpNoPort), 1, "{stats:?}");
    assert_eq!(stats.icmp_errors_sent, 1, "{stats:?}");
    assert_eq!(stats.dropped(DropReason::UdpRcvbufFull), 0, "{stats:?}");
    assert_no_leaks(&engine);
}

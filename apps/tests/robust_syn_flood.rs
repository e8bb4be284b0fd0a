//! SYN flood (issue 15), root: `surge serve --stack surge --mode echo` on host B of a
//! `routed` lab, flooded from host A with SYNs from spoofed sources in 198.19.0.0/16 by a
//! raw-socket generator (IPPROTO_RAW, headers written by `surge_stack::wire`), off-link
//! through the router, while a kernel client in A keeps connecting and exchanging a few
//! bytes. Asserted: every real connection succeeds and echoes, surge's SYN-cookie
//! counters moved (the SYN queue overflowed, RFC 4987), surge's RSS stays within a
//! bound, and the flood reached surge. The router blackholes 198.19.0.0/16, so the
//! SYN-ACKs to the spoofed sources go nowhere, and nothing leaves 198.18.0.0/15.
//!
//! CI sends 100,000 SYNs; `SURGE_LONG=1` sends 1,000,000 (both at [`RATE`] per second,
//! so the million takes 25 s).

mod load_support;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, TcpStream};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use load_support::*;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use surge_lab::{HostId, Lab, LabSpec, Topology, enter_netns};
use surge_stack::wire::{
    IpProtocol, Ipv4Packet, Ipv4Repr, TcpFlags, TcpOptions, TcpRepr, TxChecksum,
};

/// surge's address in B (B's kernel keeps 198.18.2.1).
const SURGE_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 2, 10);
/// B's gateway: the router.
const GATEWAY: Ipv4Addr = Ipv4Addr::new(198, 18, 2, 254);
const PORT: u16 = 7400;
/// The spoofed sources: 198.19.0.0/16, inside RFC 2544's range, routed by nobody.
const SPOOFED_NET: &str = "198.19.0.0/16";
/// SYNs per second the generator sends (paced): a million in 25 s.
const RATE: u64 = 40_000;
/// What surge's RSS may grow by from the flood's first tenth to its end: the SYN queue
/// (2,048 request records), a few real connections' buffers; a stack that kept state per
/// spoofed SYN would grow by hundreds of bytes per SYN (tens of MiB for 100,000).
const RSS_GROWTH_BOUND_KIB: u64 = 16 * 1024;

fn syn_count() -> u64 {
    if std::env::var_os("SURGE_LONG").is_some_and(|v| v == "1") {
        1_000_000
    } else {
        100_000
    }
}

/// A deterministic spread of spoofed sources over 198.19.0.0/16 (host bytes 1..=254)
/// and all ports.
fn spoofed(i: u64) -> SocketAddrV4 {
    let x = (i as u32).wrapping_mul(2_654_435_761);
    let host = (x >> 16) as u16;
    let low = (host as u8 % 254) + 1;
    let ip = Ipv4Addr::new(198, 19, (host >> 8) as u8, low);
    SocketAddrV4::new(ip, (x as u16) | 1024)
}

/// Writes one SYN from `src` to surge's port into `buf` (IPv4 header and TCP header
/// with an MSS option, checksums computed); returns its length.
fn write_syn(buf: &mut [u8], src: SocketAddrV4, seq: u32) -> usize {
    let tcp = TcpRepr {
        src_port: src.port(),
        dst_port: PORT,
        seq_number: seq,
        flags: TcpFlags::SYN,
        window_len: 64240,
        options: TcpOptions {
            mss: Some(1460),
            ..TcpOptions::default()
        },
        ..TcpRepr::default()
    };
    let tcp_len = tcp.header_len();
    let mut ip = Ipv4Repr::new(*src.ip(), SURGE_IP, IpProtocol::Tcp, tcp_len, 64);
    ip.dont_frag = false;
    ip.ident = seq as u16;
    ip.emit(
        &mut Ipv4Packet::new_unchecked(&mut buf[..]),
        TxChecksum::Compute,
    )
    .expect("ip header");
    tcp.emit_segment(
        &mut buf[20..],
        *src.ip(),
        SURGE_IP,
        &[],
        TxChecksum::Compute,
    )
    .expect("tcp header");
    20 + tcp_len
}

/// The raw-socket SYN generator, run in A's namespace: `count` SYNs paced at [`RATE`]
/// per second (bounded by time as well); returns the SYNs sent and how long it took.
fn flood(netns: String, count: u64, started: Arc<AtomicBool>) -> (u64, Duration) {
    let _ns = enter_netns(&netns).expect("entering A's namespace");
    // IPPROTO_RAW: the kernel takes our IPv4 header as written (IP_HDRINCL implied).
    let socket = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::from(255)))
        .expect("raw socket (root tests need root)");
    let dest = SockAddr::from(SocketAddrV4::new(SURGE_IP, 0));
    let mut buf = [0u8; 64];
    let start = Instant::now();
    let limit = Duration::from_secs(4 * count / RATE + 30);
    let (mut sent, mut send_errors) = (0u64, 0u64);
    started.store(true, Ordering::Relaxed);
    while sent < count && start.elapsed() < limit {
        // Pacing: never ahead of RATE per second.
        let due = start.elapsed().as_micros() as u64 * RATE / 1_000_000;
        if sent >= due + 64 {
            std::thread::sleep(Duration::from_micros(200));
            continue;
        }
        for _ in 0..64 {
            let len = write_syn(&mut buf, spoofed(sent), (sent as u32).wrapping_mul(7919));
            match socket.send_to(&buf[..len], &dest) {
                Ok(_) => sent += 1,
                // ENOBUFS from a full device queue: the flood goes on.
                Err(_) => send_errors += 1,
            }
            if sent >= count || send_errors > count {
                break;
            }
        }
        assert!(send_errors <= count, "the raw socket refuses to send");
    }
    (sent, start.elapsed())
}

/// One real connection: connect, 64 bytes out, the same 64 back, close. Returns how
/// long the connect took.
fn real_connection(i: u32) -> Result<Duration, String> {
    let target = SocketAddr::V4(SocketAddrV4::new(SURGE_IP, PORT));
    let t = Instant::now();
    let mut stream = TcpStream::connect_timeout(&target, Duration::from_secs(15))
        .map_err(|e| format!("connect: {e}"))?;
    let connected = t.elapsed();
    stream
        .set_read_timeout(Some(Duration::from_secs(15)))
        .map_err(|e| e.to_string())?;
    let message: Vec<u8> = (0..64u32).map(|b| (b ^ i) as u8).collect();
    stream
        .write_all(&message)
        .map_err(|e| format!("write: {e}"))?;
    let mut echo = vec![0u8; message.len()];
    stream
        .read_exact(&mut echo)
        .map_err(|e| format!("read: {e}"))?;
    if echo != message {
        return Err("the echo differs".into());
    }
    Ok(connected)
}

/// surge serve's resident set, KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status of serve");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

fn router(lab: &Lab, argv: &[&str]) {
    let out = lab
        .exec(HostId::Router, argv)
        .expect("command in the router");
    assert!(out.status.success(), "{argv:?}: {}", text(&out));
}

#[test]
fn spoofed_syn_flood_through_the_router_does_not_stop_real_connections() {
    let count = syn_count();
    let lab = Lab::up(&LabSpec::unique("synfl", Topology::Routed))
        .expect("lab up (root tests need root)");
    // The SYN-ACKs to the spoofed sources end on the router, without an ICMP error; the
    // router must also forward the spoofed sources (no reverse-path filter).
    router(&lab, &["ip", "route", "add", "blackhole", SPOOFED_NET]);
    let router_ifs = [
        lab.host(HostId::Router).expect("router").ifname.clone(),
        lab.router_towards_b().expect("router").ifname.clone(),
    ];
    for conf in ["all", "default", &router_ifs[0], &router_ifs[1]] {
        let key = format!("net.ipv4.conf.{conf}.rp_filter=0");
        router(&lab, &["sysctl", "-qw", &key]);
    }

    let dir = Scratch::new("syn-flood");
    let json = dir.path("serve.json");
    let listen = format!("{SURGE_IP}:{PORT}");
    let mut command = lab.command(HostId::B, SURGE).expect("command in B");
    command
        .args(["serve", "--stack", "surge", "--interface", &lab.b().ifname])
        .arg("--address")
        .arg(format!("{SURGE_IP}/24"))
        .args(["--gateway", &GATEWAY.to_string(), "--threads", "1"])
        .args(["--listen", &listen, "--mode", "echo", "--quiet", "--json"])
        .arg(&json)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let server = spawn_serve(&mut command, Duration::from_secs(15));
    let pid = server.child.id();

    // Before the flood: the path works.
    let a_netns = lab.a().netns.clone();
    let first = {
        let netns = a_netns.clone();
        std::thread::spawn(move || {
            let _ns = enter_netns(&netns).expect("entering A");
            real_connection(0)
        })
        .join()
        .expect("client thread")
    };
    first.expect("a real connection before the flood");

    let started = Arc::new(AtomicBool::new(false));
    let generator = {
        let (netns, started) = (a_netns.clone(), Arc::clone(&started));
        std::thread::spawn(move || flood(netns, count, started))
    };
    // The real client: one connection after another while the flood runs.
    let flooding = Arc::new(AtomicBool::new(true));
    let client = {
        let (netns, flooding) = (a_netns.clone(), Arc::clone(&flooding));
        std::thread::spawn(move || {
            let _ns = enter_netns(&netns).expect("entering A");
            let mut results = Vec::new();
            let start = Instant::now();
            // Bounded: the flood's own bound, and a count.
            while flooding.load(Ordering::Relaxed)
                && results.len() < 100_000
                && start.elapsed() < Duration::from_secs(300)
            {
                results.push(real_connection(results.len() as u32 + 1));
                std::thread::sleep(Duration::from_millis(20));
            }
            results
        })
    };
    // RSS: the flood's first tenth (the UMEM and the SYN queue fill) as the base, then
    // the peak until the end.
    let expected = Duration::from_millis(count * 1000 / RATE);
    let deadline = Instant::now() + expected * 4 + Duration::from_secs(30);
    let mut base = None;
    let mut peak = 0u64;
    let flood_start = Instant::now();
    while !generator.is_finished() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        let rss = rss_kib(pid);
        if base.is_none() && flood_start.elapsed() >= expected / 10 {
            base = Some(rss);
        }
        peak = peak.max(rss);
    }
    let (sent, took) = generator.join().expect("generator");
    flooding.store(false, Ordering::Relaxed);
    let results = client.join().expect("client");
    let rss_end = rss_kib(pid);
    let after = {
        let netns = a_netns.clone();
        std::thread::spawn(move || {
            let _ns = enter_netns(&netns).expect("entering A");
            real_connection(u32::MAX)
        })
        .join()
        .expect("client thread")
    };
    server.stop();
    let report = read_json(&json);
    let counters = &report["stack_counters"];
    let counter = |name: &str| counters[name].as_u64().unwrap_or(0);

    let failures: Vec<&String> = results.iter().filter_map(|r| r.as_ref().err()).collect();
    let connect_max = results
        .iter()
        .filter_map(|r| r.as_ref().ok())
        .max()
        .copied()
        .unwrap_or_default();
    let base = base.unwrap_or(peak);
    eprintln!(
        "{sent} spoofed SYNs in {:.2} s ({:.0}/s); {} real connections during the flood, \
         slowest connect {:.1} ms; surge RSS {base} KiB at a tenth, peak {peak} KiB, end {rss_end} KiB; \
         surge: rx_frames {} syn_cookies_sent {} syn_cookies_accepted {} listen_overflows {} \
         table_full {} passive_opens {} accepted {}",
        took.as_secs_f64(),
        sent as f64 / took.as_secs_f64(),
        results.len(),
        connect_max.as_secs_f64() * 1000.0,
        counter("rx_frames"),
        counter("syn_cookies_sent"),
        counter("syn_cookies_accepted"),
        counter("listen_overflows"),
        counter("table_full"),
        counter("passive_opens"),
        counter("accepted"),
    );
    assert_eq!(sent, count, "the generator sent every SYN");
    let rate = sent as f64 / took.as_secs_f64();
    assert!(
        rate > 1_000_000.0 / 60.0,
        "the generator is fast enough for a million SYNs in a minute ({rate:.0}/s)"
    );
    assert!(failures.is_empty(), "real connections failed: {failures:?}");
    assert!(
        results.len() >= 10,
        "the real client kept connecting during the flood ({} connections)",
        results.len()
    );
    after.expect("a real connection after the flood");
    assert!(
        counter("rx_frames") >= sent / 2,
        "most of the flood reached surge: {counters}"
    );
    assert!(
        counter("syn_cookies_sent") > 0,
        "the SYN queue overflowed into cookies: {counters}"
    );
    assert_eq!(
        num(&report, "connections"),
        results.len() as u64 + 2,
        "surge accepted exactly the real connections: {report}"
    );
    assert!(
        peak.saturating_sub(base) < RSS_GROWTH_BOUND_KIB,
        "surge's RSS grew by {} KiB during the flood",
        peak - base
    );
}

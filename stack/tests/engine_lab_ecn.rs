//! RFC 3168 ECN against the Linux kernel, through the `routed` lab's router marking 5 %
//! of ECN-capable packets CE (`--ce-mark`, its NFQUEUE path), root test: surge's engine in
//! host A (`TcpConfig::ecn` on) echoes 4 MB through a kernel echo server in host B with
//! `net.ipv4.tcp_ecn=1`. Checked: ECN is negotiated; surge's data arrives at B ECT(0) and
//! some of it CE; B's ECE answers make surge reduce its window (and nothing is
//! retransmitted for it); CE marks on the kernel's echo reach surge, which echoes them
//! (the kernel keeps sending: the echo completes); the bytes come back whole.

#[path = "support/kernel_echo.rs"]
mod kernel_echo;
#[path = "support/lab_engine.rs"]
mod lab_engine;
#[path = "support/lab_transfer.rs"]
mod lab_transfer;

use core::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use kernel_echo::start_kernel_echo;
use lab_engine::{assert_no_leaks, pattern, run_engine_with};
use lab_transfer::EchoClient;
use sha2::{Digest, Sha256};
use surge_bpf::SteerProgram;
use surge_datapath::XdpPort;
use surge_lab::{HostId, Impairment, Lab, LabSpec, Topology, enter_netns};
use surge_stack::Errno;
use surge_stack::engine::{Engine, EngineConfig};
use surge_stack::iface::Ipv4Cidr;
use surge_stack::runtime::xdp::{XdpConfig, XdpInterface};
use surge_stack::tcp::{TcpInfo, TcpStats};

/// surge's address in A of the routed lab (A's kernel has 198.18.1.1), and its gateway.
const SURGE: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 10);
const GATEWAY: Ipv4Addr = Ipv4Addr::new(198, 18, 1, 254);
const SIZE: usize = 4_000_000;
const PORT: u16 = 9007;
const LIMIT: Duration = Duration::from_secs(60);

/// An engine with ECN on, on host A's veth of the routed lab.
fn ecn_engine(lab: &Lab) -> (Engine<XdpPort>, SteerProgram) {
    let a = lab.a().clone();
    let _ns = enter_netns(&a.netns).expect("entering ns A");
    let xdp = XdpConfig {
        mac: Some(surge_stack::wire::EthernetAddress(a.mac)),
        queues: Some(1),
        gateway: Some(GATEWAY),
        ..XdpConfig::new(&a.ifname, Ipv4Cidr::new(SURGE, 24).expect("cidr"))
    };
    let interface = XdpInterface::attach(&xdp, |config: &mut EngineConfig| {
        config.tcp.ecn = true;
    })
    .expect("attach XDP");
    let engine = interface.open_engine(0).expect("AF_XDP port and engine");
    (engine, interface.into_program())
}

/// Counter `name` of the `IpExt:` lines of `/proc/net/netstat` in `host`'s namespace.
fn ip_ext(lab: &Lab, host: HostId, name: &str) -> u64 {
    let out = lab
        .exec(host, &["cat", "/proc/net/netstat"])
        .expect("netstat");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut lines = text.lines().filter(|l| l.starts_with("IpExt:"));
    let (names, values) = (lines.next().expect("IpExt"), lines.next().expect("IpExt"));
    names
        .split_whitespace()
        .zip(values.split_whitespace())
        .find(|(n, _)| *n == name)
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or_else(|| panic!("no IpExt {name}"))
}

#[test]
fn ecn_with_a_linux_peer_and_ce_marks_from_the_router() {
    let mut spec = LabSpec::unique("eng-ecn", Topology::Routed);
    spec.impairment = Impairment {
        ce_mark_percent: Some(5.0),
        ..Impairment::default()
    };
    let lab = Lab::up(&spec).expect("lab (root tests need root)");
    lab_engine::sysctl(&lab, HostId::B, "net.ipv4.tcp_ecn", "1");
    let b_addr = lab.b().addr;
    let mut echo = start_kernel_echo(&lab, HostId::B, &b_addr.to_string(), PORT, 1);
    let before = (
        ip_ext(&lab, HostId::B, "InECT0Pkts"),
        ip_ext(&lab, HostId::B, "InCEPkts"),
    );

    let (mut engine, _program) = ecn_engine(&lab);
    let client = engine.tcp_socket().expect("socket");
    assert_eq!(
        engine.connect(client, SocketAddrV4::new(b_addr, PORT)),
        Err(Errno::EINPROGRESS)
    );
    let data = pattern(SIZE, 0xec_0003);
    let sent_sha256: [u8; 32] = Sha256::digest(&data).into();
    /// The echo, and the connection's last info and counters.
    struct Client {
        echo: EchoClient,
        last: Option<(TcpInfo, TcpStats)>,
    }
    let state = Client {
        echo: EchoClient::new(data),
        last: None,
    };
    let stop = Arc::new(AtomicBool::new(false));
    let run = run_engine_with(engine, stop, LIMIT, state, move |e, c| {
        let done = c.echo.step(e, client);
        if let (Ok(info), Ok(stats)) = (e.tcp_info(client), e.tcp_socket_stats(client)) {
            c.last = Some((info, stats));
        }
        done
    });
    let (engine, Client { echo: c, last }, finished) = run.join().expect("engine thread");
    let _ = echo.wait();
    assert!(
        finished && c.error.is_none(),
        "the echo did not complete: error {:?}, sent {}, echoed {}; tcp {:?}",
        c.error,
        c.sent,
        c.echoed,
        engine.tcp_stats()
    );
    assert_eq!(c.echoed, SIZE);
    assert_eq!(<[u8; 32]>::from(c.echo.finalize()), sent_sha256);
    let (info, stats) = last.expect("the connection's info");
    eprintln!("surge: {info:?}\n{stats:?}");
    assert!(info.ecn, "ECN negotiated with Linux (tcp_ecn=1 accepts it)");
    let ect = ip_ext(&lab, HostId::B, "InECT0Pkts") - before.0;
    let ce = ip_ext(&lab, HostId::B, "InCEPkts") - before.1;
    eprintln!("host B received {ect} ECT(0) and {ce} CE packets");
    assert!(ect > 1000, "surge's data arrived ECN-capable: {ect} ECT(0)");
    assert!(ce > 0, "the router marked some CE");
    assert!(
        stats.ecn_reductions > 0,
        "B's ECE echoes reduced surge's window: {stats:?}"
    );
    assert!(
        stats.ecn_ce_received > 0,
        "the kernel's echo arrived ECN-capable and some of it CE: {stats:?}"
    );
    assert_no_leaks(&engine);
}

//! TX checksum offload through AF_XDP TX metadata, against a kernel peer, in a
//! fresh lab (veth pair, copy mode). Root tests: they fail loudly without root.
//!
//! The frames leave A with their UDP/TCP checksum field holding only the
//! pseudo-header sum. With a checksum request the kernel on A completes it
//! (`xsk_skb_metadata` makes the skb `CHECKSUM_PARTIAL`; the lab turns TX
//! checksumming off on the veths, so `validate_xmit_skb` finishes it in
//! software) and B's kernel, which verifies every checksum, accepts the
//! packets. The same frames without a request are the control: B drops them
//! and counts `InCsumErrors`, so the test would catch an offload that did nothing.

use std::{
    net::UdpSocket,
    time::{Duration, Instant},
};

use surge_datapath::{
    Burst, Device, PortConfig, TxChecksumOff, TxChecksumOffload, XdpPort, complete_partial_checksum,
};
use surge_lab::{Host, HostId, Lab, LabSpec, Topology, enter_netns, spawn_in_netns};

const UDP_PORT: u16 = 9400;
/// A TCP port nobody listens on in B: a valid SYN gets a RST back.
const CLOSED_TCP_PORT: u16 = 9401;

fn lab(prefix: &str) -> Lab {
    Lab::up(&LabSpec::unique(prefix, Topology::Pair))
        .expect("building the lab (root tests need root)")
}

fn port_config(ifname: &str) -> PortConfig {
    let mut config = PortConfig::new(ifname, 0);
    config.pool.frame_count = 512;
    config.pool.huge_pages = false;
    config.ring_size = 256;
    config
}

/// RFC 1071 over `data`.
fn internet_checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = data
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// Writes Ethernet + IPv4 (complete checksum) from A to B carrying
/// `transport`, whose checksum field (at `csum_offset`) gets the pseudo-header
/// sum only. Returns the frame length.
fn write_partial(
    buf: &mut [u8],
    a: &Host,
    b: &Host,
    protocol: u8,
    transport: &[u8],
    csum_offset: usize,
) -> usize {
    let total = 34 + transport.len();
    buf[0..6].copy_from_slice(&b.mac);
    buf[6..12].copy_from_slice(&a.mac);
    buf[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
    let ip = &mut buf[14..34];
    ip.fill(0);
    ip[0] = 0x45;
    ip[2..4].copy_from_slice(&((20 + transport.len()) as u16).to_be_bytes());
    ip[6] = 0x40; // don't fragment
    ip[8] = 64;
    ip[9] = protocol;
    ip[12..16].copy_from_slice(&a.addr.octets());
    ip[16..20].copy_from_slice(&b.addr.octets());
    let ip_checksum = internet_checksum(ip);
    ip[10..12].copy_from_slice(&ip_checksum.to_be_bytes());
    buf[34..total].copy_from_slice(transport);
    let mut pseudo = [0u8; 12];
    pseudo[..4].copy_from_slice(&a.addr.octets());
    pseudo[4..8].copy_from_slice(&b.addr.octets());
    pseudo[9] = protocol;
    pseudo[10..12].copy_from_slice(&(transport.len() as u16).to_be_bytes());
    let pseudo_sum = !internet_checksum(&pseudo);
    buf[34 + csum_offset..36 + csum_offset].copy_from_slice(&pseudo_sum.to_be_bytes());
    total
}

fn udp(payload: &[u8]) -> Vec<u8> {
    let mut t = Vec::new();
    t.extend_from_slice(&40000u16.to_be_bytes());
    t.extend_from_slice(&UDP_PORT.to_be_bytes());
    t.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
    t.extend_from_slice(&[0, 0]);
    t.extend_from_slice(payload);
    t
}

fn tcp_syn(seq: u32) -> Vec<u8> {
    let mut t = vec![0u8; 20];
    t[0..2].copy_from_slice(&40001u16.to_be_bytes());
    t[2..4].copy_from_slice(&CLOSED_TCP_PORT.to_be_bytes());
    t[4..8].copy_from_slice(&seq.to_be_bytes());
    t[12] = 5 << 4;
    t[13] = 0x02; // SYN
    t[14..16].copy_from_slice(&64240u16.to_be_bytes());
    t
}

/// Sends one frame from `port`, with or without a checksum request, and waits
/// (bounded) for its completion.
fn send(
    port: &mut XdpPort,
    a: &Host,
    b: &Host,
    protocol: u8,
    transport: &[u8],
    csum_offset: u16,
    offload: bool,
) {
    let mut frame = port.alloc_tx().expect("a free frame");
    let len = write_partial(
        port.frame_mut(&frame),
        a,
        b,
        protocol,
        transport,
        usize::from(csum_offset),
    );
    assert!(frame.set_len(len));
    if offload {
        assert!(
            port.request_tx_checksum(&mut frame, 34, csum_offset),
            "the port refused a request it should take"
        );
    }
    let mut tx = Burst::new();
    tx.push(frame).expect("room");
    let deadline = Instant::now() + Duration::from_secs(5);
    while (!tx.is_empty() || port.accounting().tx_ring > 0) && Instant::now() < deadline {
        port.tx_burst(&mut tx);
    }
    assert!(
        tx.is_empty() && port.accounting().tx_ring == 0,
        "the kernel completed the send"
    );
}

/// `group` (`Udp`, `Tcp`) counter `name` of /proc/net/snmp in B.
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
        .unwrap_or_else(|| panic!("no {group} {name} in /proc/net/snmp"));
    values
        .split_whitespace()
        .nth(index)
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("bad {group} {name} value"))
}

/// Waits (bounded) until `f` is true.
fn eventually(mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

#[test]
fn copy_mode_on_veth_offloads_and_a_kernel_peer_accepts_udp_and_tcp() {
    let lab = lab("dp-csum");
    let (a, b) = (lab.a().clone(), lab.b().clone());
    let socket = spawn_in_netns(&b.netns, move || {
        let socket = UdpSocket::bind((b.addr, UDP_PORT)).expect("bind in B");
        socket
            .set_read_timeout(Some(Duration::from_millis(500)))
            .expect("timeout");
        socket
    })
    .join()
    .expect("thread")
    .expect("entering ns B");
    let b = lab.b().clone();

    let (mut port, features) = {
        let _ns = enter_netns(&a.netns).expect("entering ns A");
        let port = XdpPort::open(&port_config(&a.ifname)).expect("open port");
        let features = port.interface().xdp_features().expect("netdev netlink");
        (port, features)
    };
    // Detection: veth binds in copy mode, where the generic transmit path
    // honours requests although veth advertises no xsk `tx-checksum` feature.
    assert!(!port.zero_copy());
    assert_eq!(port.tx_checksum_offload(), TxChecksumOffload::CopyMode);
    assert!(port.caps().tx_checksum_offload);
    let features = features.expect("Linux 6.18 has the netdev family");
    assert!(
        !features.tx_checksum,
        "veth is not expected to advertise tx-checksum: {features:?}"
    );

    // UDP with offload: every datagram arrives, payload intact.
    let csum_errors_before = snmp(&lab, "Udp", "InCsumErrors");
    let payloads: Vec<Vec<u8>> = [0usize, 1, 31, 200, 1400]
        .iter()
        .enumerate()
        .map(|(i, &n)| (0..n).map(|j| (i * 31 + j * 7) as u8).collect())
        .collect();
    for payload in &payloads {
        send(&mut port, &a, &b, 17, &udp(payload), 6, true);
    }
    let mut buf = [0u8; 2048];
    for payload in &payloads {
        let (n, from) = socket
            .recv_from(&mut buf)
            .expect("B received the offloaded datagram");
        assert_eq!(&buf[..n], &payload[..], "from {from}");
        assert_eq!(from.ip(), std::net::IpAddr::V4(a.addr));
    }
    assert_eq!(
        snmp(&lab, "Udp", "InCsumErrors"),
        csum_errors_before,
        "no checksum errors in B"
    );
    assert_eq!(
        port.stats().tx_checksum_offloaded,
        payloads.len() as u64,
        "offload used per frame"
    );

    // Control: the same partial datagram without a request is dropped by B.
    send(&mut port, &a, &b, 17, &udp(b"no request"), 6, false);
    assert!(
        socket.recv_from(&mut buf).is_err(),
        "a partial checksum must not be accepted"
    );
    assert!(
        eventually(|| snmp(&lab, "Udp", "InCsumErrors") == csum_errors_before + 1),
        "B counted the bad checksum"
    );

    // TCP: a SYN to a closed port is answered with a RST only when its checksum is right.
    let tcp_errors_before = snmp(&lab, "Tcp", "InCsumErrors");
    let rsts_before = snmp(&lab, "Tcp", "OutRsts");
    send(&mut port, &a, &b, 6, &tcp_syn(1000), 16, true);
    assert!(
        eventually(|| snmp(&lab, "Tcp", "OutRsts") > rsts_before),
        "B answered the offloaded SYN"
    );
    assert_eq!(snmp(&lab, "Tcp", "InCsumErrors"), tcp_errors_before);
    send(&mut port, &a, &b, 6, &tcp_syn(2000), 16, false);
    assert!(
        eventually(|| snmp(&lab, "Tcp", "InCsumErrors") == tcp_errors_before + 1),
        "B rejected the SYN without a request"
    );
    assert_eq!(
        port.stats().tx_checksum_offloaded,
        payloads.len() as u64 + 1
    );
    assert_eq!(port.stats().tx_bad_checksum_request, 0);
    let acc = port.accounting();
    assert!(acc.balanced() && acc.held == 0, "{acc:?}");
}

#[test]
fn offload_can_be_turned_off_and_then_requests_are_refused() {
    let lab = lab("dp-csum-off");
    let a = lab.a().clone();
    let mut port = {
        let _ns = enter_netns(&a.netns).expect("entering ns A");
        let mut config = port_config(&a.ifname);
        config.tx_checksum_offload = false;
        XdpPort::open(&config).expect("open port")
    };
    assert_eq!(
        port.tx_checksum_offload(),
        TxChecksumOffload::Off(TxChecksumOff::NotRequested)
    );
    assert!(!port.caps().tx_checksum_offload);
    let mut frame = port.alloc_tx().expect("frame");
    let b = lab.b().clone();
    let len = write_partial(port.frame_mut(&frame), &a, &b, 17, &udp(b"x"), 6);
    assert!(frame.set_len(len));
    assert!(!port.request_tx_checksum(&mut frame, 34, 6));
    // The caller's fallback: complete it in software.
    assert!(complete_partial_checksum(
        &mut port.frame_mut(&frame)[..len],
        34,
        6
    ));
    port.release_one(frame);
    assert!(port.accounting().balanced());
}

#[test]
fn a_request_invalidated_by_shortening_the_frame_is_dropped_not_stalling_the_ring() {
    let lab = lab("dp-csum-bad");
    let (a, b) = (lab.a().clone(), lab.b().clone());
    let mut port = {
        let _ns = enter_netns(&a.netns).expect("entering ns A");
        XdpPort::open(&port_config(&a.ifname)).expect("open port")
    };
    let mut frame = port.alloc_tx().expect("frame");
    let len = write_partial(port.frame_mut(&frame), &a, &b, 17, &udp(b"payload"), 6);
    assert!(frame.set_len(len));
    assert!(port.request_tx_checksum(&mut frame, 34, 6));
    assert!(frame.set_len(38), "shortened below the UDP checksum field");
    let mut tx = Burst::new();
    tx.push(frame).expect("room");
    assert_eq!(port.tx_burst(&mut tx), 0);
    assert_eq!(port.stats().tx_bad_checksum_request, 1);
    // The ring still moves: a good request right after goes out.
    send(&mut port, &a, &b, 17, &udp(b"after"), 6, true);
    assert_eq!(port.stats().tx_checksum_offloaded, 1);
    assert_eq!(port.kernel_stats().expect("stats").tx_invalid_descs, 0);
    let acc = port.accounting();
    assert!(acc.balanced() && acc.held == 0, "{acc:?}");
}

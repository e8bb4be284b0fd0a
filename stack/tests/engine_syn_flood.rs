//! Bad input (issue 13): a million spoofed SYNs, in memory, interleaved with 1,000 real
//! handshakes and 100,000 forged cookie ACKs. Every real handshake completes (the
//! SYN queue fills with the spoofed requests, so the real ones get SYN cookies,
//! RFC 4987), the forged ACKs are counted and dropped without an answer, and the
//! heap (both engines: the counting allocator is process-wide) grows by less than a
//! stated bound during the flood.

#[global_allocator]
static ALLOCATOR: surge_datapath::alloc_count::CountingAllocator =
    surge_datapath::alloc_count::CountingAllocator;
mod support;

use core::net::{Ipv4Addr, SocketAddrV4};
use core::time::Duration;

use support::{IP_A, IP_B, MAC_A, MAC_B};
use surge_datapath::{Burst, Device, PipeConfig, PipeDevice};
use surge_stack::Errno;
use surge_stack::engine::{Engine, EngineConfig};
use surge_stack::iface::{InterfaceConfig, Ipv4Cidr};
use surge_stack::socket::SocketHandle;
use surge_stack::table::BindOptions;
use surge_stack::time::Instant;
use surge_stack::wire::{
    EtherType, EthernetAddress, EthernetFrame, EthernetRepr, IpProtocol, Ipv4Packet, Ipv4Repr,
    TcpFlags, TcpRepr, TxChecksum,
};

const SPOOFED_SYNS: u32 = 1_000_000;
const FORGED_ACKS: u32 = 100_000;
const REAL: usize = 1000;
const PORT: u16 = 8080;
/// Spoofed segments written per 100 µs step, at most (what the link takes; about what
/// the server reads per poll).
const PER_STEP: u32 = 48;
/// One forged cookie ACK for this many spoofed SYNs.
const SYNS_PER_FORGED_ACK: u32 = SPOOFED_SYNS / FORGED_ACKS;
/// What the server's heap may grow by: the SYN queue at its backlog (2,049 requests
/// in one slab segment), 1,000 connections, and the engine's queues; a flood that
/// kept state per SYN would need hundreds of megabytes.
const HEAP_BOUND: isize = 24 << 20;

fn engine(
    dev: PipeDevice,
    mac: EthernetAddress,
    ip: Ipv4Addr,
    gateway: Option<Ipv4Addr>,
) -> Engine<PipeDevice> {
    let iface = InterfaceConfig::new(mac, Ipv4Cidr::new(ip, 24).expect("cidr"), gateway, 1500)
        .expect("iface");
    let config = EngineConfig {
        secrets: surge_stack::secrets::Secrets::from_seed(u64::from(ip.to_bits())),
        gratuitous_arp: false,
        ..EngineConfig::new(iface)
    };
    Engine::new(dev, config).expect("engine")
}

/// Writes a TCP segment from `src` (an address of no host here) to the server onto `dev`.
/// Returns false when the link has no room (nothing was written).
fn inject(dev: &mut PipeDevice, tx: &mut Burst, src: SocketAddrV4, repr: &TcpRepr) -> bool {
    let Some(mut frame) = dev.alloc_tx() else {
        return false;
    };
    let tcp_len = repr.header_len();
    let len = {
        let buf = dev.frame_mut(&frame);
        let eth = EthernetRepr {
            src_addr: MAC_A,
            dst_addr: MAC_B,
            vlan: None,
            ethertype: EtherType::Ipv4,
        };
        eth.emit(&mut EthernetFrame::new_unchecked(&mut buf[..]))
            .expect("eth");
        let ip = Ipv4Repr::new(*src.ip(), IP_B, IpProtocol::Tcp, tcp_len, 64);
        ip.emit(
            &mut Ipv4Packet::new_unchecked(&mut buf[14..]),
            TxChecksum::Compute,
        )
        .expect("ip");
        repr.emit_segment(&mut buf[34..], *src.ip(), IP_B, &[], TxChecksum::Compute)
            .expect("tcp");
        34 + tcp_len
    };
    assert!(frame.set_len(len));
    if let Err(frame) = tx.push(frame) {
        dev.tx_burst(tx);
        if tx.push(frame).is_err() {
            return false;
        }
    }
    dev.tx_burst(tx);
    true
}

/// A deterministic spread of spoofed sources over 198.19.0.0/16 and all ports.
fn spoofed(i: u32) -> SocketAddrV4 {
    let x = i.wrapping_mul(2_654_435_761);
    SocketAddrV4::new(Ipv4Addr::from_bits(0xc613_0000 | (x >> 16)), (x as u16) | 1)
}

#[test]
fn a_million_spoofed_syns_do_not_stop_real_handshakes_nor_grow_memory() {
    let pipe = PipeConfig {
        link_capacity: 8192,
        pool: surge_datapath::PoolConfig {
            frame_count: 16384,
            ..PipeConfig::default().pool
        },
        ..PipeConfig::default()
    };
    let (da, db) = PipeDevice::pair(&pipe).expect("pipe");
    let mut client = engine(da, MAC_A, IP_A, None);
    // The spoofed sources lie beyond the gateway (the client's host, which drops the
    // SYN-ACKs it gets for them), as a flood from the Internet would.
    let mut server = engine(db, MAC_B, IP_B, Some(IP_A));
    let listener = server.tcp_socket().expect("socket");
    server
        .bind(
            listener,
            SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, PORT),
            BindOptions::default(),
        )
        .expect("bind");
    server.listen(listener, 4096).expect("listen");
    let mut clients: Vec<SocketHandle> = Vec::with_capacity(REAL);
    let mut accepted: Vec<SocketHandle> = Vec::with_capacity(REAL);
    let mut tx = Burst::new();
    let mut now = Instant::ZERO;
    let step =
        |client: &mut Engine<PipeDevice>, server: &mut Engine<PipeDevice>, now: &mut Instant| {
            *now += Duration::from_micros(100);
            let us = now.total_micros();
            client.device_mut().set_now(us);
            server.device_mut().set_now(us);
            client.poll(*now);
            server.poll(*now);
        };
    let before = surge_datapath::alloc_count::live_bytes();
    let mut peak = before;
    let (mut syns, mut acks, mut steps) = (0u32, 0u32, 0usize);
    // A real connection every so many spoofed SYNs, so the flood surrounds them all.
    let real_every = SPOOFED_SYNS as usize / (REAL + 1);
    while syns < SPOOFED_SYNS {
        steps += 1;
        assert!(
            steps < 4 * SPOOFED_SYNS as usize / PER_STEP as usize,
            "flood stalled at {syns}"
        );
        for _ in 0..PER_STEP {
            let src = spoofed(syns);
            let syn = TcpRepr {
                src_port: src.port(),
                dst_port: PORT,
                seq_number: syns,
                flags: TcpFlags::SYN,
                window_len: 64240,
                ..TcpRepr::default()
            };
            if !inject(client.device_mut(), &mut tx, src, &syn) {
                break;
            }
            syns += 1;
            if syns % SYNS_PER_FORGED_ACK == 0 {
                let ack = TcpRepr {
                    src_port: src.port() ^ 0x8000,
                    dst_port: PORT,
                    seq_number: syns,
                    ack_number: syns.wrapping_mul(0x9e37_79b9),
                    flags: TcpFlags::ACK,
                    window_len: 502,
                    ..TcpRepr::default()
                };
                acks += u32::from(inject(client.device_mut(), &mut tx, src, &ack));
            }
            if syns as usize % real_every == 0 && clients.len() < REAL {
                let c = client.tcp_socket().expect("client socket");
                match client.connect(c, SocketAddrV4::new(IP_B, PORT)) {
                    Ok(()) | Err(Errno::EINPROGRESS) => {}
                    Err(e) => panic!("connect: {e:?}"),
                }
                clients.push(c);
            }
            if syns >= SPOOFED_SYNS {
                break;
            }
        }
        step(&mut client, &mut server, &mut now);
        while let Ok((c, _)) = server.accept(listener) {
            accepted.push(c);
        }
        if steps % 64 == 0 {
            peak = peak.max(surge_datapath::alloc_count::live_bytes());
        }
    }
    assert_eq!(clients.len(), REAL);
    // The flood's cost; what follows adds the real connections' first data, whose ring
    // buffers are the connections' own.
    let flood_peak = peak.max(surge_datapath::alloc_count::live_bytes());
    // The flood is over; the real clients finish (SYN retransmissions), and, as
    // real clients do, send their request: a client whose cookie ACK was lost believes
    // it is connected, and its data segment carries the cookie again.
    let mut requested = vec![false; REAL];
    for _ in 0..200_000 {
        if accepted.len() == REAL {
            break;
        }
        for (c, done) in clients.iter().zip(requested.iter_mut()) {
            if !*done && client.readiness(*c).is_ok_and(|r| r.writable) {
                *done = client.send(*c, b"GET").is_ok();
            }
        }
        step(&mut client, &mut server, &mut now);
        while let Ok((c, _)) = server.accept(listener) {
            accepted.push(c);
        }
    }
    let grown = flood_peak - before;
    let tcp = server.tcp_stats();
    eprintln!(
        "{syns} spoofed SYNs, {acks} forged ACKs in {steps} steps; heap grew by {} KiB at most during the flood; {tcp:?}",
        grown / 1024
    );
    assert_eq!(accepted.len(), REAL, "every real handshake completes");
    let established = clients
        .iter()
        .filter(|&&c| client.readiness(c).is_ok_and(|r| r.writable))
        .count();
    assert_eq!(established, REAL);
    assert!(
        tcp.syn_cookies_sent > 0,
        "the SYN queue overflowed into cookies"
    );
    assert!(
        tcp.syn_cookies_accepted > 0,
        "real clients got in by cookie"
    );
    // Forged ACKs that came before the SYN queue first overflowed are answered as in
    // LISTEN, with a RST (Linux checks cookies only after a recent overflow); every
    // later one is counted and dropped.
    let rsts = server.stats().tcp_rst_sent;
    assert_eq!(acks, FORGED_ACKS);
    assert_eq!(tcp.syn_cookies_rejected + rsts, u64::from(acks));
    assert!(
        rsts < 2100 / u64::from(SYNS_PER_FORGED_ACK) + 10,
        "{rsts} RSTs"
    );
    assert!(grown < HEAP_BOUND, "heap grew by {grown} bytes");
}

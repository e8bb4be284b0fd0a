//! Stack memory per idle connection, counted by a counting allocator: live bytes after
//! 10,000 connections are up (both ends surge, over the in-memory link) minus live
//! bytes before the engines existed, table capacity included, divided by the 20,000
//! connection endpoints. `surge-bench idle-memory` runs the same at 100,000 and
//! 1,000,000.
//!
//! Issue 13's target is 2 KB (2,048 B) per endpoint, and this test asserts it ([`BOUND`]):
//! 1,949 B at 10k after the loss-recovery state grew the `Tcb` and was paid back (a chunked
//! socket slab, the out-of-order and SACK vectors allocated on first use, 32-bit event
//! counters without copies of the estimates); 2,021 B after buffer autotuning added its
//! measurement state and maxima (48 B), 2,037 B with ECN's flags and counters (16 B);
//! 2,029 B with BBR's delivery-rate sampler and the pacer boxed in a `SenderModel` made on
//! the first data sent (with the SACK scratch vector moved there; unboxed they cost 120 B
//! and broke the bound). The next lever is the `Tcb`'s `TcpConfig` copy.

#[global_allocator]
static ALLOCATOR: surge_datapath::alloc_count::CountingAllocator =
    surge_datapath::alloc_count::CountingAllocator;
mod support;

use core::net::{Ipv4Addr, SocketAddrV4};
use core::time::Duration;

use support::{IP_A, IP_B, MAC_A, MAC_B};
use surge_datapath::{PipeConfig, PipeDevice, PoolConfig};
use surge_stack::Errno;
use surge_stack::engine::{Engine, EngineConfig};
use surge_stack::iface::{InterfaceConfig, Ipv4Cidr};
use surge_stack::socket::SocketHandle;
use surge_stack::table::{BindOptions, EphemeralRange, ListenConfig};
use surge_stack::time::Instant;
use surge_stack::wire::EthernetAddress;

const CONNECTIONS: usize = 10_000;
/// Bytes per endpoint this test allows: the 2 KB (about 2,040 measured at 10k).
const BOUND: f64 = 2048.0;
const PORT: u16 = 10_000;

fn config(mac: EthernetAddress, ip: Ipv4Addr, seed: u64) -> EngineConfig {
    let iface =
        InterfaceConfig::new(mac, Ipv4Cidr::new(ip, 24).expect("cidr"), None, 1500).expect("iface");
    EngineConfig {
        secrets: surge_stack::secrets::Secrets::from_seed(seed),
        gratuitous_arp: false,
        max_sockets: CONNECTIONS + 1024,
        max_connections: CONNECTIONS + 1024,
        ephemeral: EphemeralRange::new(1024, 65535).expect("range"),
        listen: ListenConfig {
            somaxconn: 65535,
            max_syn_backlog: 4096,
        },
        ..EngineConfig::new(iface)
    }
}

#[test]
fn ten_thousand_idle_connections_stay_within_the_measured_bytes_each() {
    let pipe = PipeConfig {
        link_capacity: 8192,
        pool: PoolConfig {
            frame_count: 16384,
            ..PipeConfig::default().pool
        },
        ..PipeConfig::default()
    };
    let (da, db) = PipeDevice::pair(&pipe).expect("pipe");
    let mut clients: Vec<SocketHandle> = Vec::with_capacity(CONNECTIONS);
    let mut accepted: Vec<SocketHandle> = Vec::with_capacity(CONNECTIONS);
    let before = surge_datapath::alloc_count::live_bytes();
    let mut client = Engine::new(da, config(MAC_A, IP_A, 1)).expect("client");
    let mut server = Engine::new(db, config(MAC_B, IP_B, 2)).expect("server");
    let listener = server.tcp_socket().expect("socket");
    server
        .bind(
            listener,
            SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, PORT),
            BindOptions::default(),
        )
        .expect("bind");
    server.listen(listener, 4096).expect("listen");
    let mut now = Instant::ZERO;
    let mut step = |client: &mut Engine<PipeDevice>, server: &mut Engine<PipeDevice>| {
        now += Duration::from_micros(100);
        client.device_mut().set_now(now.total_micros());
        server.device_mut().set_now(now.total_micros());
        client.poll(now);
        server.poll(now);
    };
    while clients.len() < CONNECTIONS {
        for _ in 0..1024.min(CONNECTIONS - clients.len()) {
            let c = client.tcp_socket().expect("client socket");
            match client.connect(c, SocketAddrV4::new(IP_B, PORT)) {
                Ok(()) | Err(Errno::EINPROGRESS) => {}
                Err(e) => panic!("connect: {e:?}"),
            }
            clients.push(c);
        }
        // 5 s of virtual time: SYNs lost while the first ARP resolves are sent again
        // after their 1 s timeout.
        for _ in 0..50_000 {
            if accepted.len() == clients.len() {
                break;
            }
            step(&mut client, &mut server);
            while let Ok((c, _)) = server.accept(listener) {
                accepted.push(c);
            }
        }
        assert_eq!(accepted.len(), clients.len(), "handshakes stalled");
    }
    for _ in 0..100 {
        step(&mut client, &mut server);
    }
    let bytes = surge_datapath::alloc_count::live_bytes() - before;
    let established = clients
        .iter()
        .filter(|&&c| client.readiness(c).is_ok_and(|r| r.writable))
        .count();
    assert_eq!(established, CONNECTIONS);
    let per_endpoint = bytes as f64 / (2 * CONNECTIONS) as f64;
    eprintln!("{CONNECTIONS} idle connections: {bytes} bytes, {per_endpoint:.0} B per endpoint");
    assert!(
        per_endpoint <= BOUND,
        "{per_endpoint:.0} bytes per connection endpoint"
    );
}

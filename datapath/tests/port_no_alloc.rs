//! The AF_XDP port's fast path (rx_burst, release, alloc_tx, frame_mut,
//! tx_burst) makes no allocation, at MTU 1500 and at MTU 9000 with packets
//! joined from and cut into descriptor chains: a counting global allocator
//! (this test binary only) watches the receiving/sending thread over a lab
//! veth (root).

#[global_allocator]
static ALLOCATOR: surge_datapath::alloc_count::CountingAllocator =
    surge_datapath::alloc_count::CountingAllocator;

use std::{
    net::{Ipv4Addr, UdpSocket},
    time::{Duration, Instant},
};

use surge_bpf::{AttachMode, SteerConfig, SteerProgram};
use surge_datapath::{Burst, Device, PortConfig, XdpPort};
use surge_lab::{HostId, Lab, LabSpec, Topology, enter_netns, spawn_in_netns};

const OURS: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 10);

#[test]
fn the_port_fast_path_does_not_allocate() {
    fast_path_does_not_allocate("dp-noalloc", 1500, 5, 60);
}

#[test]
fn the_port_fast_path_does_not_allocate_with_multi_buffer_chains() {
    // 8000-byte datagrams arrive as three descriptors; 9000-byte frames leave as three.
    fast_path_does_not_allocate("dp-noalloc-mb", 9000, 8000, 9000);
}

/// Receives `SENT` UDP datagrams of `payload` bytes on a lab of `mtu` and
/// sends frames of `reply_len` bytes back, counting allocations.
fn fast_path_does_not_allocate(prefix: &str, mtu: u32, payload: usize, reply_len: usize) {
    let mut spec = LabSpec::unique(prefix, Topology::Pair);
    spec.mtu = mtu;
    let lab = Lab::up(&spec).expect("building the lab (needs root)");
    let a = lab.a().clone();
    let b = lab.b().clone();
    let (mut port, program) = {
        let _ns = enter_netns(&a.netns).expect("entering ns A");
        let config = SteerConfig {
            local_addrs: vec![OURS],
            udp_ports: vec![9000],
            ..SteerConfig::default()
        };
        let program = SteerProgram::attach(&a.ifname, &config, AttachMode::Auto).expect("attach");
        let mut config = PortConfig::new(&a.ifname, 0);
        config.pool.huge_pages = false;
        config.pool.frame_count = 1024;
        config.ring_size = 512;
        let port = XdpPort::open(&config).expect("open port");
        program.register_socket(0, port.fd()).expect("register");
        (port, program)
    };
    let neigh = lab
        .exec(
            HostId::B,
            &[
                "ip",
                "neigh",
                "replace",
                &OURS.to_string(),
                "lladdr",
                &surge_lab::format_mac(&a.mac),
                "dev",
                &b.ifname,
            ],
        )
        .expect("ip neigh");
    assert!(neigh.status.success());
    const SENT: u64 = 2_000;
    let sender = spawn_in_netns(&b.netns, move || {
        let socket = UdpSocket::bind((b.addr, 0)).expect("bind");
        let datagram = vec![0x5a; payload];
        for i in 0..SENT {
            let _ = socket.send_to(&datagram, (OURS, 9000));
            if i % 100 == 99 {
                std::thread::sleep(Duration::from_millis(2));
            }
        }
    });
    // A reply frame template: to B's MAC, nobody's IP (the kernel of B drops it).
    let mut template = vec![0u8; reply_len];
    template[0..6].copy_from_slice(&b.mac);
    template[6..12].copy_from_slice(&a.mac);
    template[12] = 0x88;
    template[13] = 0xb5; // local experimental ethertype
    let (mut rx, mut tx) = (Burst::new(), Burst::new());
    let deadline = Instant::now() + Duration::from_secs(20);
    let (mut received, mut sent) = (0u64, 0u64);
    let ((), allocations) = surge_datapath::alloc_count::count_allocations(|| {
        while received < SENT && Instant::now() < deadline {
            let n = port.rx_burst(&mut rx) as u64;
            received += n;
            port.release(&mut rx);
            for _ in 0..n.min(8) {
                if let Some(mut frame) = port.alloc_tx_for(reply_len) {
                    if let Some(buf) = port.frame_mut(&frame).get_mut(..reply_len) {
                        buf.copy_from_slice(&template);
                    }
                    assert!(frame.set_len(reply_len));
                    if let Err(frame) = tx.push(frame) {
                        port.release_one(frame);
                    }
                }
            }
            sent += port.tx_burst(&mut tx) as u64;
            if n == 0 {
                std::thread::yield_now();
            }
        }
    });
    sender.join().expect("sender").expect("ns B");
    port.release(&mut tx);
    assert!(received > SENT / 2, "received {received} of {SENT}");
    assert!(sent > 0, "sent {sent}");
    assert_eq!(allocations, 0, "allocations on the fast path");
    let acc = port.accounting();
    assert!(
        acc.balanced() && acc.held == 0 && acc.large_held == 0,
        "{acc:?}"
    );
    let stats = port.stats();
    if payload + 42 > 3840 {
        assert!(
            stats.rx_multi_buffer > SENT / 2 && stats.tx_multi_buffer > 0,
            "chains both ways: {stats:?}"
        );
    } else {
        assert_eq!((stats.rx_multi_buffer, stats.tx_multi_buffer), (0, 0));
    }
    drop(port);
    drop(program);
}

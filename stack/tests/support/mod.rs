//! The two-engine harness shared by the engine tests: two engines joined by the
//! datapath's in-memory `PipeDevice`, driven by a virtual clock.
#![allow(dead_code)] // each test file uses a different part

pub mod runtime;

use core::net::{Ipv4Addr, SocketAddrV4};
use core::time::Duration;

use surge_datapath::{PipeConfig, PipeDevice};
use surge_stack::Errno;
use surge_stack::engine::{Engine, EngineConfig};
use surge_stack::iface::{InterfaceConfig, Ipv4Cidr};
use surge_stack::socket::SocketHandle;
use surge_stack::table::BindOptions;
use surge_stack::time::Instant;
use surge_stack::wire::EthernetAddress;

pub const MAC_A: EthernetAddress = EthernetAddress([0x02, 0, 0, 0, 0, 0x0a]);
pub const MAC_B: EthernetAddress = EthernetAddress([0x02, 0, 0, 0, 0, 0x0b]);
pub const IP_A: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
pub const IP_B: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);

pub fn config(mac: EthernetAddress, ip: Ipv4Addr, seed: u64) -> EngineConfig {
    config_with_mtu(mac, ip, seed, 1500)
}

/// As [`config`], on a link of `mtu`.
pub fn config_with_mtu(mac: EthernetAddress, ip: Ipv4Addr, seed: u64, mtu: u32) -> EngineConfig {
    let iface =
        InterfaceConfig::new(mac, Ipv4Cidr::new(ip, 24).expect("cidr"), None, mtu).expect("iface");
    EngineConfig {
        secrets: surge_stack::secrets::Secrets::from_seed(seed),
        // The tests count ARP frames exactly; engine_arp_start tests the announcement.
        gratuitous_arp: false,
        ..EngineConfig::new(iface)
    }
}

pub struct Net {
    pub a: Engine<PipeDevice>,
    pub b: Engine<PipeDevice>,
    pub now: Instant,
}

impl Net {
    pub fn new() -> Net {
        Net::with_pipe(&PipeConfig::default())
    }

    /// Two engines over a pipe with `pipe`'s impairments.
    pub fn with_pipe(pipe: &PipeConfig) -> Net {
        let (da, db) = PipeDevice::pair(pipe).expect("pipe");
        Net {
            a: Engine::new(da, config_with_mtu(MAC_A, IP_A, 1, pipe.mtu)).expect("engine a"),
            b: Engine::new(db, config_with_mtu(MAC_B, IP_B, 2, pipe.mtu)).expect("engine b"),
            now: Instant::ZERO,
        }
    }

    /// Advances the virtual clock by `step` and polls both engines once.
    pub fn step(&mut self, step: Duration) {
        self.now += step;
        let us = self.now.total_micros();
        self.a.device_mut().set_now(us);
        self.b.device_mut().set_now(us);
        self.a.poll(self.now);
        self.b.poll(self.now);
    }

    /// Steps until `done` holds, at most `max` steps of 100 µs; true if it held.
    pub fn run_until(&mut self, max: usize, mut done: impl FnMut(&mut Net) -> bool) -> bool {
        for _ in 0..max {
            if done(self) {
                return true;
            }
            self.step(Duration::from_micros(100));
        }
        done(self)
    }
}

pub fn any(port: u16) -> SocketAddrV4 {
    SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port)
}

/// A connection from A to a listener of B's on `port`, connected and accepted:
/// `(A's socket, B's accepted socket)`. Panics (the test fails) when it takes more
/// than 1,000 steps.
pub fn connected_pair(net: &mut Net, port: u16) -> (SocketHandle, SocketHandle) {
    let l = net.b.tcp_socket().expect("socket");
    net.b
        .bind(l, any(port), BindOptions::default())
        .expect("bind");
    net.b.listen(l, 16).expect("listen");
    let c = net.a.tcp_socket().expect("socket");
    assert_eq!(
        net.a.connect(c, SocketAddrV4::new(IP_B, port)),
        Err(Errno::EINPROGRESS)
    );
    let mut conn = None;
    assert!(net.run_until(1000, |n| {
        conn = conn.or_else(|| n.b.accept(l).ok().map(|(h, _)| h));
        conn.is_some() && n.a.readiness(c).is_ok_and(|r| r.writable)
    }));
    (c, conn.expect("accepted"))
}

/// Writes an ICMP message from `from` (MAC, IP) to `to` straight onto `dev`, as
/// another host's stack would send it (valid checksums).
pub fn send_icmp(
    dev: &mut PipeDevice,
    from: (EthernetAddress, Ipv4Addr),
    to: (EthernetAddress, Ipv4Addr),
    icmp: &surge_stack::wire::Icmpv4Repr<'_>,
) {
    use surge_datapath::{Burst, Device};
    use surge_stack::wire::{
        EtherType, EthernetFrame, EthernetRepr, Icmpv4Packet, IpProtocol, Ipv4Packet, Ipv4Repr,
        TxChecksum,
    };
    let ip = Ipv4Repr::new(from.1, to.1, IpProtocol::Icmp, icmp.buffer_len(), 64);
    let eth = EthernetRepr {
        src_addr: from.0,
        dst_addr: to.0,
        vlan: None,
        ethertype: EtherType::Ipv4,
    };
    let mut frame = dev.alloc_tx_for(34 + icmp.buffer_len()).expect("frame");
    let len = {
        let buf = dev.frame_mut(&frame);
        eth.emit(&mut EthernetFrame::new_unchecked(&mut buf[..]))
            .expect("eth");
        ip.emit(
            &mut Ipv4Packet::new_unchecked(&mut buf[14..]),
            TxChecksum::Compute,
        )
        .expect("ip");
        icmp.emit(
            &mut Icmpv4Packet::new_unchecked(&mut buf[34..]),
            TxChecksum::Compute,
        )
        .expect("icmp");
        34 + icmp.buffer_len()
    };
    assert!(frame.set_len(len));
    let mut tx = Burst::new();
    tx.push(frame).expect("room");
    dev.tx_burst(&mut tx);
}

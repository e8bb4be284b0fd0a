//! RSS-aware active opens: with the device's Toeplitz key and indirection table
//! known, an engine picks source ports whose replies the device hashes to its
//! own queue (DESIGN.md "Per-core model"), so no reply needs forwarding.

use core::net::{Ipv4Addr, SocketAddrV4};

use surge_datapath::{PipeConfig, PipeDevice};
use surge_stack::engine::{Engine, EngineConfig};
use surge_stack::iface::{InterfaceConfig, Ipv4Cidr};
use surge_stack::table::EphemeralRange;
use surge_stack::table::toeplitz::Rss;
use surge_stack::time::Instant;
use surge_stack::wire::EthernetAddress;
use surge_stack::{Errno, FourTuple};

const LOCAL: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);

fn engine(core: u16, cores: u16, rss: Option<Rss>) -> (Engine<PipeDevice>, PipeDevice) {
    let (dev, peer) = PipeDevice::pair(&PipeConfig::default()).expect("pipe");
    let iface = InterfaceConfig::new(
        EthernetAddress([2, 0, 0, 0, 0, 1]),
        Ipv4Cidr::new(LOCAL, 24).expect("cidr"),
        None,
        1500,
    )
    .expect("iface");
    let mut config = EngineConfig::new(iface);
    config.core = core;
    config.cores = cores;
    config.rss = rss;
    (Engine::new(dev, config).expect("engine"), peer)
}

#[test]
fn active_opens_pick_ports_whose_replies_hash_to_our_queue() {
    for (core, cores) in [(0u16, 2u16), (1, 2), (3, 4)] {
        let rss = Rss::with_queues(cores).expect("rss");
        let (mut e, _peer) = engine(core, cores, Some(rss.clone()));
        e.poll(Instant::ZERO);
        let slice = EphemeralRange::LINUX_DEFAULT
            .slice(usize::from(core), usize::from(cores))
            .expect("slice");
        for i in 0..64u16 {
            let remote = SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 2 + (i % 7) as u8), 80 + i);
            let h = e.tcp_socket().expect("socket");
            assert_eq!(e.connect(h, remote), Err(Errno::EINPROGRESS));
            let local = e.local_addr(h).expect("local");
            assert!(
                slice.contains(local.port()),
                "port {} in the slice",
                local.port()
            );
            let tuple = FourTuple::new(local, remote);
            assert_eq!(
                rss.reply_queue(&tuple),
                core,
                "core {core}/{cores}: reply to {local} from {remote} lands on our queue"
            );
        }
    }
}

#[test]
fn without_rss_ports_ignore_the_hash() {
    // The same engine without RSS picks ports whose replies hash anywhere: the
    // check above is not true by accident.
    let rss = Rss::with_queues(2).expect("rss");
    let (mut e, _peer) = engine(0, 2, None);
    e.poll(Instant::ZERO);
    let mut elsewhere = 0;
    for i in 0..64u16 {
        let remote = SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 2), 1000 + i);
        let h = e.tcp_socket().expect("socket");
        assert_eq!(e.connect(h, remote), Err(Errno::EINPROGRESS));
        let local = e.local_addr(h).expect("local");
        if rss.reply_queue(&FourTuple::new(local, remote)) != 0 {
            elsewhere += 1;
        }
    }
    assert!(
        elsewhere > 10,
        "{elsewhere} of 64 replies hash to the other queue"
    );
}

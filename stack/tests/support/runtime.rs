//! The runtime's two stacks over the in-memory link, shared by the runtime tests:
//! a server stack and a client stack, each with its engines on their own threads,
//! joined by `PipeDevice` pairs (one pair per queue).

use core::net::Ipv4Addr;
use std::time::Duration;

use surge_datapath::{PipeConfig, PipeDevice};
use surge_stack::engine::{Engine, EngineConfig};
use surge_stack::iface::{InterfaceConfig, Ipv4Cidr};
use surge_stack::runtime::{RuntimeConfig, Stack};
use surge_stack::wire::EthernetAddress;

/// The server stack's address.
pub const SERVER_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
/// The client stack's address.
pub const CLIENT_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);

pub fn engine(dev: PipeDevice, ip: Ipv4Addr, core: u16, cores: u16) -> Engine<PipeDevice> {
    let last = ip.octets()[3];
    let iface = InterfaceConfig::new(
        EthernetAddress([2, 0, 0, 0, 0, last]),
        Ipv4Cidr::new(ip, 24).expect("cidr"),
        None,
        1500,
    )
    .expect("iface");
    let mut config = EngineConfig::new(iface);
    config.core = core;
    config.cores = cores;
    config.secrets =
        surge_stack::secrets::Secrets::from_seed(u64::from(last) << 8 | u64::from(core));
    config.tcp.time_wait = Duration::from_millis(200);
    Engine::new(dev, config).expect("engine")
}

/// A server stack and a client stack with `queues` engines each; queue `i` of
/// one is joined to queue `i` of the other.
pub fn stacks(queues: u16) -> (Stack<PipeDevice>, Stack<PipeDevice>) {
    stacks_with(queues, &RuntimeConfig::default())
}

/// As [`stacks`], both runtimes with `config`.
pub fn stacks_with(queues: u16, config: &RuntimeConfig) -> (Stack<PipeDevice>, Stack<PipeDevice>) {
    let mut server = Vec::new();
    let mut client = Vec::new();
    for q in 0..queues {
        let config = PipeConfig {
            seed: u64::from(q) + 1,
            ..PipeConfig::default()
        };
        let (s, c) = PipeDevice::pair(&config).expect("pipe");
        server.push(engine(s, SERVER_IP, q, queues));
        client.push(engine(c, CLIENT_IP, q, queues));
    }
    (
        Stack::start(server, config.clone()).expect("server stack"),
        Stack::start(client, config.clone()).expect("client stack"),
    )
}

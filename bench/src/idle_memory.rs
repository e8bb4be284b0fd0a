//! `surge-bench idle-memory`: stack memory per idle connection (issue 13's target:
//! 1,000,000 idle connections at 2 KB or less each).
//!
//! Two engines over the in-memory link with a virtual clock (the clock does not
//! matter: nothing times out while connections are made), the server listening on
//! enough ports that the client's one address never runs short of ephemeral ports
//! (about 32,000 connections per server port). Connections are opened in batches and
//! accepted; then the counting allocator's live bytes, minus those before the engines
//! existed, are divided by the connection endpoints (two per connection: both engines
//! are surge). Table capacity is included: tables are sized for the count.

use std::net::{Ipv4Addr, SocketAddrV4};
use std::time::Instant as WallClock;

use anyhow::{Context, bail};
use surge_datapath::{PipeConfig, PipeDevice, PoolConfig};
use surge_stack::{
    Errno,
    engine::{Engine, EngineConfig},
    iface::{InterfaceConfig, Ipv4Cidr},
    socket::SocketHandle,
    table::{BindOptions, EphemeralRange, ListenConfig},
    time::Instant,
    wire::EthernetAddress,
};

use surge_datapath::alloc_count::live_bytes;

/// Arguments of `surge-bench idle-memory`.
#[derive(clap::Args, Debug)]
pub struct IdleMemoryArgs {
    /// Connection counts to measure, one run each.
    #[arg(long, value_delimiter = ',', default_values_t = vec![100_000usize, 1_000_000])]
    connections: Vec<usize>,
}

const IP_CLIENT: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
const IP_SERVER: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
const FIRST_PORT: u16 = 10_000;
const PER_PORT: usize = 32_000;
const BATCH: usize = 1024;

/// What one run measured.
#[derive(Debug, Clone, Copy)]
pub struct IdleReport {
    /// Connections made (each has two endpoints, one per engine).
    pub connections: usize,
    /// Live heap bytes added by the engines and their connections.
    pub bytes: isize,
    /// Seconds it took to make them (wall clock).
    pub seconds: f64,
}

impl IdleReport {
    /// Bytes per connection endpoint.
    pub fn per_endpoint(&self) -> f64 {
        self.bytes as f64 / (2 * self.connections) as f64
    }
}

fn config(mac: [u8; 6], ip: Ipv4Addr, seed: u64, n: usize) -> anyhow::Result<EngineConfig> {
    let iface = InterfaceConfig::new(EthernetAddress(mac), Ipv4Cidr::new(ip, 24)?, None, 1500)?;
    Ok(EngineConfig {
        secrets: surge_stack::secrets::Secrets::from_seed(seed),
        gratuitous_arp: false,
        max_sockets: n + 1024,
        max_connections: n + 1024,
        ephemeral: EphemeralRange::new(1024, 65535)?,
        listen: ListenConfig {
            somaxconn: 65535,
            max_syn_backlog: 4096,
        },
        ..EngineConfig::new(iface)
    })
}

/// Makes `n` idle connections and measures the live bytes they and the engines hold.
pub fn measure(n: usize) -> anyhow::Result<IdleReport> {
    let pipe = PipeConfig {
        link_capacity: 8192,
        pool: PoolConfig {
            frame_count: 16384,
            ..PipeConfig::default().pool
        },
        ..PipeConfig::default()
    };
    let (dc, ds) = PipeDevice::pair(&pipe)?;
    let ports = n.div_ceil(PER_PORT).max(1);
    let mut clients: Vec<SocketHandle> = Vec::with_capacity(n);
    let mut accepted: Vec<SocketHandle> = Vec::with_capacity(n);
    let mut listeners: Vec<SocketHandle> = Vec::with_capacity(ports);
    let before = live_bytes();
    let started = WallClock::now();
    let mut client = Engine::new(dc, config([2, 0, 0, 0, 0, 0xa], IP_CLIENT, 1, n)?)?;
    let mut server = Engine::new(ds, config([2, 0, 0, 0, 0, 0xb], IP_SERVER, 2, n)?)?;
    for p in 0..ports {
        let l = server.tcp_socket()?;
        let port = FIRST_PORT + u16::try_from(p)?;
        server.bind(
            l,
            SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port),
            BindOptions::default(),
        )?;
        server.listen(l, 4096)?;
        listeners.push(l);
    }
    let mut now = Instant::ZERO;
    let mut step = |client: &mut Engine<PipeDevice>, server: &mut Engine<PipeDevice>| {
        now += core::time::Duration::from_micros(100);
        client.device_mut().set_now(now.total_micros());
        server.device_mut().set_now(now.total_micros());
        client.poll(now);
        server.poll(now);
    };
    while clients.len() < n {
        let batch = BATCH.min(n - clients.len());
        for _ in 0..batch {
            let c = client.tcp_socket()?;
            let port = FIRST_PORT + u16::try_from(clients.len() % ports)?;
            match client.connect(c, SocketAddrV4::new(IP_SERVER, port)) {
                Ok(()) | Err(Errno::EINPROGRESS) => {}
                Err(e) => return Err(e).context(format!("connect #{}", clients.len())),
            }
            clients.push(c);
        }
        let mut steps = 0;
        while accepted.len() < clients.len() {
            step(&mut client, &mut server);
            for &l in &listeners {
                while let Ok((c, _)) = server.accept(l) {
                    accepted.push(c);
                }
            }
            steps += 1;
            if steps > 100_000 {
                bail!(
                    "{} of {} connections accepted",
                    accepted.len(),
                    clients.len()
                );
            }
        }
    }
    // Let the last ACKs land; every client must see its connection established.
    for _ in 0..100 {
        step(&mut client, &mut server);
    }
    let bytes = live_bytes() - before;
    let seconds = started.elapsed().as_secs_f64();
    let established = clients
        .iter()
        .filter(|&&c| client.readiness(c).is_ok_and(|r| r.writable))
        .count();
    if established != n {
        bail!("{established} of {n} client connections established");
    }
    Ok(IdleReport {
        connections: n,
        bytes,
        seconds,
    })
}

/// Runs `surge-bench idle-memory`.
pub fn run(args: IdleMemoryArgs) -> anyhow::Result<()> {
    println!("| idle connections | stack memory | per endpoint | target | set-up time |");
    println!("| --- | --- | --- | --- | --- |");
    for &n in &args.connections {
        let r = measure(n)?;
        let per = r.per_endpoint();
        println!(
            "| {} | {:.1} MiB | {:.0} B | {} (≤ 2048 B) | {:.1} s |",
            n,
            r.bytes as f64 / (1 << 20) as f64,
            per,
            if per <= 2048.0 { "met" } else { "not met" },
            r.seconds
        );
    }
    Ok(())
}

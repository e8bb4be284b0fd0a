//! A stack on a real interface: the XDP steering program, one AF_XDP port and
//! one engine per RX queue, and the runtime over them (feature `xdp`).
//!
//! Call it from the network namespace the interface lives in (sockets and the
//! program are bound to it at set-up; the loops may run anywhere afterwards).

use core::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, Ordering};

use surge_bpf::{ArpSeen, AttachMode, SteerConfig, SteerProgram};
use surge_datapath::{BusyPoll, Interface, PortConfig, XdpPort};

use super::{Handler, RuntimeConfig, RuntimeError, Stack, boot};
use crate::engine::{ArpTap, Engine, EngineConfig, EngineError};
use crate::iface::{InterfaceConfig, Ipv4Cidr};
use crate::wire::EthernetAddress;

/// Where and how a stack runs on an interface.
#[derive(Debug, Clone)]
pub struct XdpConfig {
    /// The interface whose queues the engines take.
    pub interface: String,
    /// surge's address on it (one the kernel does not use).
    pub address: Ipv4Cidr,
    /// Default gateway.
    pub gateway: Option<Ipv4Addr>,
    /// surge's MAC (default: the interface's).
    pub mac: Option<EthernetAddress>,
    /// Engines (= RX queues 0..n) to run; default: every RX queue.
    pub queues: Option<u32>,
    /// TCP ports the XDP program steers to us (the ephemeral range always is).
    pub tcp_ports: Vec<u16>,
    /// UDP ports the XDP program steers to us.
    pub udp_ports: Vec<u16>,
    /// UMEM on huge pages when the system has them.
    pub huge_pages: bool,
    /// UMEM frames per port (default: [`PortConfig::new`]'s, 32,768).
    pub frames: Option<u32>,
    /// Entries per AF_XDP ring (default: [`PortConfig::new`]'s, 16,384).
    pub ring_size: Option<u32>,
    /// Native or generic XDP.
    pub attach: AttachMode,
    /// Busy polling on every port (`SO_PREFER_BUSY_POLL`, `SO_BUSY_POLL`,
    /// `SO_BUSY_POLL_BUDGET`): an engine whose RX ring is empty runs its queue's NAPI
    /// itself. Off by default; a kernel that refuses it fails the open.
    pub busy_poll: Option<BusyPoll>,
    /// Applied to every engine's configuration after the defaults (interface,
    /// core, core count, secrets and clock base are set by then).
    pub tune: fn(&mut EngineConfig),
}

impl XdpConfig {
    /// Defaults for `address` on `interface`.
    pub fn new(interface: &str, address: Ipv4Cidr) -> Self {
        XdpConfig {
            interface: interface.to_owned(),
            address,
            gateway: None,
            mac: None,
            queues: None,
            tcp_ports: Vec::new(),
            udp_ports: Vec::new(),
            huge_pages: false,
            frames: None,
            ring_size: None,
            attach: AttachMode::Auto,
            busy_poll: None,
            tune: |_| {},
        }
    }
}

/// Why a stack could not be opened on an interface.
#[derive(Debug, thiserror::Error)]
pub enum XdpError {
    /// The interface (or a queue of it) is not usable.
    #[error("{interface}: {source}")]
    Datapath {
        /// The interface.
        interface: String,
        /// What the datapath said.
        source: surge_datapath::DatapathError,
    },
    /// The steering program could not be attached or configured.
    #[error("XDP program on {interface}: {message}")]
    Steer {
        /// The interface.
        interface: String,
        /// What the loader said.
        message: String,
    },
    /// More queues were asked for than the interface has.
    #[error("{interface} has {available} RX queue(s), {asked} asked")]
    Queues {
        /// The interface.
        interface: String,
        /// Its RX queues.
        available: u32,
        /// Queues asked for.
        asked: u32,
    },
    /// Busy polling was asked for and the kernel refused one of its socket options
    /// (`SO_PREFER_BUSY_POLL` and `SO_BUSY_POLL_BUDGET` need Linux 5.11, and raising
    /// `SO_BUSY_POLL` above `net.core.busy_read` needs CAP_NET_ADMIN).
    #[error(
        "{interface} queue {queue}: the kernel refused SO_PREFER_BUSY_POLL, SO_BUSY_POLL or \
         SO_BUSY_POLL_BUDGET (Linux 5.11+, CAP_NET_ADMIN)"
    )]
    BusyPollRefused {
        /// The interface.
        interface: String,
        /// The queue whose socket refused.
        queue: u32,
    },
    /// An engine refused its configuration.
    #[error("engine: {0}")]
    Engine(#[from] EngineError),
    /// This boot's secrets or the boot-time clock could not be had.
    #[error("boot secrets: {0}")]
    Boot(#[from] boot::BootError),
    /// The runtime did not start.
    #[error("runtime: {0}")]
    Runtime(#[from] RuntimeError),
}

/// The engines of an interface and the program that steers to them (detached
/// when dropped: keep it as long as the engines run).
#[derive(Debug)]
pub struct XdpEngines {
    /// One engine per queue, engine `i` on queue `i`.
    pub engines: Vec<Engine<XdpPort>>,
    /// The attached steering program.
    pub program: SteerProgram,
}

/// An interface made ready for engines: the steering program attached, and the
/// engine configuration every queue starts from. The one place that opens
/// AF_XDP ports and engines: [`open_engines`], the apps' backend, the
/// benchmarks and the root tests all go through it.
#[derive(Debug)]
pub struct XdpInterface {
    interface: String,
    huge_pages: bool,
    frames: Option<u32>,
    ring_size: Option<u32>,
    busy_poll: Option<BusyPoll>,
    queues: u32,
    base: EngineConfig,
    program: SteerProgram,
    /// Whether an engine took the program's `arp_seen` ring (one consumer).
    arp_tap_taken: AtomicBool,
}

impl ArpTap for ArpSeen {
    fn drain(&mut self, f: &mut dyn FnMut(&[u8])) -> usize {
        ArpSeen::drain(self, f)
    }
}

impl XdpInterface {
    /// Looks the interface up, builds the engines' configuration (`config.tune`,
    /// then `tune`, applied to it) and attaches the steering program for it
    /// (our address, `config`'s ports, the configured ephemeral range, ICMP).
    pub fn attach(
        config: &XdpConfig,
        tune: impl FnOnce(&mut EngineConfig),
    ) -> Result<Self, XdpError> {
        let name = config.interface.clone();
        let datapath = |source| XdpError::Datapath {
            interface: name.clone(),
            source,
        };
        let interface = Interface::lookup(&config.interface).map_err(datapath)?;
        let available = interface.rx_queues().map_err(datapath)?;
        let queues = config.queues.unwrap_or(available);
        if queues == 0 || queues > available {
            return Err(XdpError::Queues {
                interface: name.clone(),
                available,
                asked: queues,
            });
        }
        let mtu = interface.mtu().map_err(datapath)?;
        let mac = match config.mac {
            Some(m) => m,
            None => EthernetAddress(interface.mac().map_err(datapath)?),
        };
        let mut base = EngineConfig::new(
            InterfaceConfig::new(mac, config.address, config.gateway, mtu.min(9000))
                .map_err(EngineError::from)?,
        );
        base.cores = u16::try_from(queues).unwrap_or(u16::MAX);
        // This boot's secrets, and the boot-time clock read before the engines' clocks
        // start (their epoch comes later), so ISNs and timestamps continue above those
        // of any earlier surge process.
        base.secrets = boot::boot_secrets()?;
        base.clock_base = boot::boot_clock()?;
        (config.tune)(&mut base);
        tune(&mut base);
        base.iface.validate().map_err(EngineError::from)?;
        let steer = SteerConfig {
            local_addrs: base.iface.addrs.iter().map(|c| c.addr()).collect(),
            tcp_ports: config.tcp_ports.clone(),
            udp_ports: config.udp_ports.clone(),
            ephemeral_ports: Some(base.ephemeral.low()..=base.ephemeral.high()),
            icmp: true,
            ..SteerConfig::default()
        };
        let program =
            SteerProgram::attach(&config.interface, &steer, config.attach).map_err(|e| {
                XdpError::Steer {
                    interface: name.clone(),
                    message: e.to_string(),
                }
            })?;
        Ok(XdpInterface {
            interface: name,
            huge_pages: config.huge_pages,
            frames: config.frames,
            ring_size: config.ring_size,
            busy_poll: config.busy_poll,
            queues,
            base,
            program,
            arp_tap_taken: AtomicBool::new(false),
        })
    }

    /// Engines to open: queues `0..queues()`.
    pub fn queues(&self) -> u32 {
        self.queues
    }

    /// The configuration engines start from (interface, MTU, MAC, tuning).
    pub fn config(&self) -> &EngineConfig {
        &self.base
    }

    /// Opens queue `queue`'s AF_XDP port, registers it with the program, and
    /// builds its engine: core `queue` of [`queues`](Self::queues), keyed by this
    /// boot's secrets.
    pub fn open_engine(&self, queue: u32) -> Result<Engine<XdpPort>, XdpError> {
        if queue >= self.queues {
            return Err(XdpError::Queues {
                interface: self.interface.clone(),
                available: self.queues,
                asked: queue + 1,
            });
        }
        let mut port_config = PortConfig::new(&self.interface, queue);
        port_config.pool.huge_pages = self.huge_pages;
        if let Some(frames) = self.frames {
            port_config.pool.frame_count = frames;
        }
        if let Some(ring_size) = self.ring_size {
            port_config.ring_size = ring_size;
        }
        port_config.busy_poll = self.busy_poll;
        let port = XdpPort::open(&port_config).map_err(|source| XdpError::Datapath {
            interface: self.interface.clone(),
            source,
        })?;
        if self.busy_poll.is_some() && !port.busy_poll() {
            return Err(XdpError::BusyPollRefused {
                interface: self.interface.clone(),
                queue,
            });
        }
        self.program
            .register_socket(queue, port.fd())
            .map_err(|e| XdpError::Steer {
                interface: self.interface.clone(),
                message: e.to_string(),
            })?;
        let mut config = self.base.clone();
        config.core = u16::try_from(queue).unwrap_or(u16::MAX);
        let mut engine = Engine::new(port, config)?;
        // The first engine opened reads the copies of the ARP frames the program
        // passes to the kernel (a neighbour's gratuitous ARP) and shares them.
        if !self.arp_tap_taken.swap(true, Ordering::Relaxed) {
            let tap = self.program.arp_seen().map_err(|e| XdpError::Steer {
                interface: self.interface.clone(),
                message: e.to_string(),
            })?;
            engine.set_arp_tap(Box::new(tap));
        }
        Ok(engine)
    }

    /// The attached program.
    pub fn program(&self) -> &SteerProgram {
        &self.program
    }

    /// The attached program, kept by the caller (detached when dropped).
    pub fn into_program(self) -> SteerProgram {
        self.program
    }
}

/// Attaches the steering program and opens one port and engine per queue.
pub fn open_engines(config: &XdpConfig) -> Result<XdpEngines, XdpError> {
    let interface = XdpInterface::attach(config, |_| {})?;
    let engines = (0..interface.queues())
        .map(|queue| interface.open_engine(queue))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(XdpEngines {
        engines,
        program: interface.into_program(),
    })
}

/// A running stack on an interface. Dereferences to [`Stack`] for the API;
/// dropping it stops the loops, then detaches the program.
#[derive(Debug)]
pub struct XdpStack {
    // Field order is drop order: loops stop before the program goes.
    stack: Stack<XdpPort>,
    program: SteerProgram,
}

impl XdpStack {
    /// Opens the interface's queues and starts one loop per engine.
    pub fn start(config: &XdpConfig, runtime: RuntimeConfig) -> Result<Self, XdpError> {
        let XdpEngines { engines, program } = open_engines(config)?;
        let stack = Stack::start(engines, runtime)?;
        Ok(XdpStack { stack, program })
    }

    /// As [`start`](Self::start), with an in-loop handler per engine, made by
    /// `handler(core)`.
    pub fn start_with(
        config: &XdpConfig,
        runtime: RuntimeConfig,
        handler: impl Fn(usize) -> Box<dyn Handler<XdpPort>>,
    ) -> Result<Self, XdpError> {
        let XdpEngines { engines, program } = open_engines(config)?;
        let handlers = (0..engines.len()).map(handler).collect();
        let stack = Stack::start_with(engines, runtime, handlers)?;
        Ok(XdpStack { stack, program })
    }

    /// The steering program (its counters).
    pub fn program(&self) -> &SteerProgram {
        &self.program
    }

    /// Stops the loops and returns the engines (for leak checks); the program is
    /// detached.
    pub fn shutdown(self) -> Vec<Engine<XdpPort>> {
        let XdpStack { stack, program } = self;
        let engines = stack.shutdown();
        drop(program);
        engines
    }
}

impl core::ops::Deref for XdpStack {
    type Target = Stack<XdpPort>;
    fn deref(&self) -> &Stack<XdpPort> {
        &self.stack
    }
}

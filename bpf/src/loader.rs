//! Loading, configuring, attaching and detaching the steering program.

use std::{
    mem::{ManuallyDrop, MaybeUninit},
    net::Ipv4Addr,
    ops::RangeInclusive,
    os::fd::{AsFd, RawFd},
    ptr::NonNull,
};

use libbpf_rs::{
    MapCore, MapFlags, OpenObject, Xdp, XdpFlags,
    skel::{OpenSkel, SkelBuilder},
};

use crate::{
    ArpSeen, BpfError, Counter, SteerCounters, netns,
    query::{attached_program, ifindex},
    skel::{SteerSkel, SteerSkelBuilder},
};

/// Number of XSKMAP slots (queues) the program serves.
pub const MAX_QUEUES: u32 = 64;

const XDP_DROP: u32 = 1;
const XDP_PASS: u32 = 2;
const XDP_REDIRECT: u32 = 4;

/// What the program decided for one frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// To the kernel.
    Pass,
    /// To an AF_XDP socket.
    Redirect,
    /// Dropped (the program never does this).
    Drop,
    /// Any other return value.
    Other(u32),
}

const IPPROTO_TCP: u32 = 6;
const IPPROTO_UDP: u32 = 17;
/// `ADDR_EXCLUSIVE` / `ADDR_SHARED` of `steer.h`.
const ADDR_EXCLUSIVE: u8 = 1;
const ADDR_SHARED: u8 = 2;

/// What the program steers to us; everything else goes to the kernel.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SteerConfig {
    /// Addresses only surge has: ARP for them and every IPv4 frame to them is
    /// surge's (closed ports answered by surge, fragments reassembled by surge).
    pub local_addrs: Vec<Ipv4Addr>,
    /// Addresses the kernel has too (for example the host's one address,
    /// with the kernel keeping SSH): IPv4 to them is steered per port, ARP is left
    /// to the kernel, which answers with the same MAC. Surge must learn
    /// neighbours from the frames it gets (or the kernel's table).
    pub shared_addrs: Vec<Ipv4Addr>,
    /// TCP destination ports we own.
    pub tcp_ports: Vec<u16>,
    /// UDP destination ports we own.
    pub udp_ports: Vec<u16>,
    /// Destination ports we own for both TCP and UDP (ephemeral ports of active opens).
    pub ephemeral_ports: Option<RangeInclusive<u16>>,
    /// Whether ICMP to our addresses is ours.
    pub icmp: bool,
}

/// How to attach.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AttachMode {
    /// Native (driver) mode, falling back to generic (SKB) mode.
    #[default]
    Auto,
    /// Native mode only.
    Native,
    /// Generic (SKB) mode only.
    Generic,
}

/// The mode the program ended up attached in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttachedMode {
    /// Driver mode.
    Native,
    /// Generic (SKB) mode.
    Generic,
}

impl AttachedMode {
    fn flags(self) -> XdpFlags {
        match self {
            AttachedMode::Native => XdpFlags::DRV_MODE,
            AttachedMode::Generic => XdpFlags::SKB_MODE,
        }
    }
}

/// The steering program, loaded and attached to one interface; detached on drop.
pub struct SteerProgram {
    skel: ManuallyDrop<SteerSkel<'static>>,
    /// Heap storage the skeleton borrows; freed after `skel` in `Drop`.
    object: NonNull<MaybeUninit<OpenObject>>,
    attachment: Option<Attachment>,
}

/// Where the program is attached.
#[derive(Debug)]
struct Attachment {
    ifname: String,
    ifindex: i32,
    /// The namespace `ifindex` lives in.
    netns: std::fs::File,
    mode: AttachedMode,
}

// Safety: the skeleton is `Send` (libbpf-rs declares it so) and the storage it
// borrows is owned by this value and moves with it.
unsafe impl Send for SteerProgram {}

impl std::fmt::Debug for SteerProgram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SteerProgram")
            .field("attachment", &self.attachment)
            .finish()
    }
}

impl SteerProgram {
    /// Loads the program, fills its maps from `config` and attaches it to
    /// `ifname` (in the calling thread's network namespace).
    pub fn attach(ifname: &str, config: &SteerConfig, mode: AttachMode) -> Result<Self, BpfError> {
        let ifindex = ifindex(ifname)?;
        if let Some(existing) = attached_program(ifname)? {
            return Err(BpfError::AlreadyAttached {
                ifname: ifname.to_owned(),
                prog_id: existing.prog_id,
                name: existing.name,
            });
        }
        let mut program = Self::load(config)?;
        program.attach_to(ifname, ifindex, mode)?;
        Ok(program)
    }

    /// Loads the program and fills its maps without attaching it anywhere
    /// (for [`SteerProgram::test_run`], or to attach later).
    pub fn load(config: &SteerConfig) -> Result<Self, BpfError> {
        let object = NonNull::from(Box::leak(Box::new(MaybeUninit::<OpenObject>::uninit())));
        // Safety: `object` is a fresh heap allocation that stays alive (and is
        // not otherwise accessed) until `Drop`/the error path below frees it,
        // after the skeleton borrowing it is gone.
        let storage: &'static mut MaybeUninit<OpenObject> = unsafe { &mut *object.as_ptr() };
        let loaded = SteerSkelBuilder::default()
            .open(storage)
            .and_then(|open| open.load());
        let skel = match loaded {
            Ok(skel) => skel,
            Err(err) => {
                // Safety: no skeleton borrows the storage any more (opening
                // failed or the open skeleton was consumed and dropped).
                drop(unsafe { Box::from_raw(object.as_ptr()) });
                return Err(BpfError::Load(err));
            }
        };
        let mut program = Self {
            skel: ManuallyDrop::new(skel),
            object,
            attachment: None,
        };
        program.configure(config)?;
        Ok(program)
    }

    fn attach_to(&mut self, ifname: &str, ifindex: i32, mode: AttachMode) -> Result<(), BpfError> {
        let netns = netns::current().map_err(|source| BpfError::Netlink {
            what: "opening the thread's network namespace",
            ifname: ifname.to_owned(),
            source,
        })?;
        let attempts: &[AttachedMode] = match mode {
            AttachMode::Auto => &[AttachedMode::Native, AttachedMode::Generic],
            AttachMode::Native => &[AttachedMode::Native],
            AttachMode::Generic => &[AttachedMode::Generic],
        };
        let mut last = None;
        for &attempt in attempts {
            let xdp = Xdp::new(self.skel.progs.surge_steer.as_fd());
            match xdp.attach(ifindex, attempt.flags() | XdpFlags::UPDATE_IF_NOEXIST) {
                Ok(()) => {
                    tracing::debug!(ifname, ?attempt, "XDP program attached");
                    self.attachment = Some(Attachment {
                        ifname: ifname.to_owned(),
                        ifindex,
                        netns,
                        mode: attempt,
                    });
                    return Ok(());
                }
                Err(err) => last = Some(err),
            }
        }
        let mode_name = match mode {
            AttachMode::Auto => "native, then generic",
            AttachMode::Native => "native",
            AttachMode::Generic => "generic",
        };
        Err(BpfError::Attach {
            ifname: ifname.to_owned(),
            mode: mode_name,
            source: last
                .unwrap_or_else(|| libbpf_rs::Error::from(std::io::Error::other("no mode tried"))),
        })
    }

    /// Runs the program once over `frame` (`BPF_PROG_TEST_RUN`, queue 0) and
    /// returns its verdict; counters count it like a real frame. Frames
    /// shorter than an Ethernet header are refused by the kernel.
    pub fn test_run(&self, frame: &[u8]) -> Result<Verdict, BpfError> {
        let input = libbpf_rs::ProgramInput {
            data_in: Some(frame),
            ..Default::default()
        };
        let output = self
            .skel
            .progs
            .surge_steer
            .test_run(input)
            .map_err(|source| BpfError::Map {
                what: "test-running the program",
                source,
            })?;
        Ok(match output.return_value {
            XDP_PASS => Verdict::Pass,
            XDP_REDIRECT => Verdict::Redirect,
            XDP_DROP => Verdict::Drop,
            other => Verdict::Other(other),
        })
    }

    fn configure(&mut self, config: &SteerConfig) -> Result<(), BpfError> {
        for &addr in &config.local_addrs {
            self.add_local_addr(addr)?;
        }
        for &addr in &config.shared_addrs {
            self.add_shared_addr(addr)?;
        }
        for &port in &config.tcp_ports {
            self.add_port(IPPROTO_TCP, port)?;
        }
        for &port in &config.udp_ports {
            self.add_port(IPPROTO_UDP, port)?;
        }
        self.set_options(config.ephemeral_ports.clone(), config.icmp)
    }

    /// The interface the program is attached to, if attached.
    pub fn ifname(&self) -> Option<&str> {
        self.attachment.as_ref().map(|a| a.ifname.as_str())
    }

    /// The mode it is attached in, if attached.
    pub fn mode(&self) -> Option<AttachedMode> {
        self.attachment.as_ref().map(|a| a.mode)
    }

    /// A consumer of the `arp_seen` ring: copies of the ARP frames the program
    /// passed to the kernel (see [`ArpSeen`]). Take one per program: two
    /// consumers would split the records between them.
    pub fn arp_seen(&self) -> Result<ArpSeen, BpfError> {
        let map = &self.skel.maps.arp_seen;
        let size = usize::try_from(map.max_entries()).unwrap_or(0);
        ArpSeen::open(map.as_fd(), size)
    }

    /// Puts an AF_XDP socket in the XSKMAP slot of `queue`.
    pub fn register_socket(&self, queue: u32, socket_fd: RawFd) -> Result<(), BpfError> {
        if queue >= MAX_QUEUES {
            return Err(BpfError::QueueOutOfRange(queue));
        }
        let value = u32::try_from(socket_fd)
            .map_err(|_| BpfError::BadConfig(format!("bad socket fd {socket_fd}")))?;
        self.skel
            .maps
            .xsks
            .update(&queue.to_ne_bytes(), &value.to_ne_bytes(), MapFlags::ANY)
            .map_err(|source| BpfError::Map {
                what: "registering an AF_XDP socket in the XSKMAP",
                source,
            })
    }

    /// Empties the XSKMAP slot of `queue` (its frames go to the kernel again).
    pub fn unregister_socket(&self, queue: u32) -> Result<(), BpfError> {
        if queue >= MAX_QUEUES {
            return Err(BpfError::QueueOutOfRange(queue));
        }
        match self.skel.maps.xsks.delete(&queue.to_ne_bytes()) {
            Ok(()) => Ok(()),
            Err(err) if err.kind() == libbpf_rs::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(BpfError::Map {
                what: "removing an AF_XDP socket from the XSKMAP",
                source,
            }),
        }
    }

    /// Adds an address only surge has (ARP for it comes to surge).
    pub fn add_local_addr(&self, addr: Ipv4Addr) -> Result<(), BpfError> {
        self.skel
            .maps
            .local_addrs
            .update(&addr.octets(), &[ADDR_EXCLUSIVE], MapFlags::ANY)
            .map_err(|source| BpfError::Map {
                what: "adding a local address",
                source,
            })
    }

    /// Adds an address the kernel has too (ARP for it stays with the kernel).
    pub fn add_shared_addr(&self, addr: Ipv4Addr) -> Result<(), BpfError> {
        self.skel
            .maps
            .local_addrs
            .update(&addr.octets(), &[ADDR_SHARED], MapFlags::ANY)
            .map_err(|source| BpfError::Map {
                what: "adding a shared address",
                source,
            })
    }

    /// Removes an address added with `add_local_addr` or `add_shared_addr`.
    pub fn remove_addr(&self, addr: Ipv4Addr) -> Result<(), BpfError> {
        match self.skel.maps.local_addrs.delete(&addr.octets()) {
            Ok(()) => Ok(()),
            Err(err) if err.kind() == libbpf_rs::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(BpfError::Map {
                what: "removing an address",
                source,
            }),
        }
    }

    /// Adds a TCP (6) or UDP (17) destination port we own.
    pub fn add_port(&self, protocol: u32, port: u16) -> Result<(), BpfError> {
        if protocol != IPPROTO_TCP && protocol != IPPROTO_UDP {
            return Err(BpfError::BadConfig(format!(
                "protocol {protocol} is neither TCP (6) nor UDP (17)"
            )));
        }
        let key = (protocol << 16) | u32::from(port);
        self.skel
            .maps
            .ports
            .update(&key.to_ne_bytes(), &[1], MapFlags::ANY)
            .map_err(|source| BpfError::Map {
                what: "adding a port",
                source,
            })
    }

    /// Removes a port added with [`SteerProgram::add_port`].
    pub fn remove_port(&self, protocol: u32, port: u16) -> Result<(), BpfError> {
        let key = (protocol << 16) | u32::from(port);
        match self.skel.maps.ports.delete(&key.to_ne_bytes()) {
            Ok(()) => Ok(()),
            Err(err) if err.kind() == libbpf_rs::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(BpfError::Map {
                what: "removing a port",
                source,
            }),
        }
    }

    /// Sets the ephemeral port range (both TCP and UDP) and whether ICMP is ours.
    pub fn set_options(
        &self,
        ephemeral: Option<RangeInclusive<u16>>,
        icmp: bool,
    ) -> Result<(), BpfError> {
        let (lo, hi) = match ephemeral {
            Some(range) if range.is_empty() || *range.end() == 0 => {
                return Err(BpfError::BadConfig(format!(
                    "empty ephemeral port range {range:?}"
                )));
            }
            Some(range) => (*range.start(), *range.end()),
            None => (0, 0),
        };
        // struct steer_config: lo u16, hi u16, icmp u8, pad[3].
        let mut value = [0u8; 8];
        value[0..2].copy_from_slice(&lo.to_ne_bytes());
        value[2..4].copy_from_slice(&hi.to_ne_bytes());
        value[4] = u8::from(icmp);
        self.skel
            .maps
            .config
            .update(&0u32.to_ne_bytes(), &value, MapFlags::ANY)
            .map_err(|source| BpfError::Map {
                what: "writing the steering options",
                source,
            })
    }

    /// The verdict counters, summed over CPUs.
    pub fn counters(&self) -> Result<SteerCounters, BpfError> {
        let mut counters = SteerCounters::default();
        for counter in Counter::ALL {
            let per_cpu = self
                .skel
                .maps
                .counters
                .lookup_percpu(&(counter as u32).to_ne_bytes(), MapFlags::ANY)
                .map_err(|source| BpfError::Map {
                    what: "reading the counters",
                    source,
                })?
                .unwrap_or_default();
            let sum = per_cpu
                .iter()
                .filter_map(|v| {
                    v.get(..8)
                        .and_then(|b| b.try_into().ok())
                        .map(u64::from_ne_bytes)
                })
                .sum();
            counters.set(counter, sum);
        }
        Ok(counters)
    }

    /// Detaches now, reporting any error (drop detaches too, logging errors).
    pub fn detach(mut self) -> Result<(), BpfError> {
        self.detach_inner()
    }

    fn detach_inner(&mut self) -> Result<(), BpfError> {
        let Some(attachment) = self.attachment.take() else {
            return Ok(());
        };
        let _in_netns =
            netns::InNetns::enter(&attachment.netns).map_err(|source| BpfError::Netlink {
                what: "entering the program's network namespace to detach",
                ifname: attachment.ifname.clone(),
                source,
            })?;
        let xdp = Xdp::new(self.skel.progs.surge_steer.as_fd());
        xdp.detach(attachment.ifindex, attachment.mode.flags())
            .map_err(|source| BpfError::Attach {
                ifname: attachment.ifname.clone(),
                mode: "detach",
                source,
            })
    }
}

impl Drop for SteerProgram {
    fn drop(&mut self) {
        if let Err(err) = self.detach_inner() {
            tracing::warn!(%err, "detaching the XDP program");
        }
        // Safety: the skeleton is dropped exactly once, here, before the
        // storage it borrows is freed.
        unsafe { ManuallyDrop::drop(&mut self.skel) };
        // Safety: `object` came from `Box::leak` in `attach` and nothing
        // borrows it any more; `MaybeUninit` does not drop its content (the
        // skeleton already did).
        drop(unsafe { Box::from_raw(self.object.as_ptr()) });
    }
}

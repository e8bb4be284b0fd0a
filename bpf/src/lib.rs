//! surge's XDP steering program and its loader.
//!
//! The program (`src/bpf/steer.bpf.c`, compiled by `libbpf-cargo` into a
//! skeleton at build time) redirects to the AF_XDP socket of the receiving
//! queue: ARP for one of our addresses, and IPv4 to one of our addresses for
//! the TCP/UDP ports we own (a port map plus an ephemeral range) or ICMP when
//! enabled. Everything else is passed to the kernel, which keeps working on
//! the same interface. Malformed frames are counted and passed.
//!
//! ```no_run
//! use surge_bpf::{AttachMode, SteerConfig, SteerProgram};
//!
//! let config = SteerConfig {
//!     local_addrs: vec!["198.18.0.1".parse().unwrap()],
//!     tcp_ports: vec![80],
//!     ephemeral_ports: Some(40000..=49999),
//!     icmp: true,
//!     ..SteerConfig::default()
//! };
//! let program = SteerProgram::attach("veth0", &config, AttachMode::Auto).unwrap();
//! // program.register_socket(queue, port.fd()) for each AF_XDP port, then run;
//! // dropping `program` detaches it.
//! println!("{:?}", program.counters().unwrap());
//! ```
#![allow(unsafe_code)] // one of the two crates allowed `unsafe` (DESIGN.md)

mod arp_seen;
mod counters;
mod error;
mod loader;
mod netns;
mod query;

#[allow(
    missing_docs,
    unused_imports,
    clippy::all,
    clippy::pedantic,
    clippy::undocumented_unsafe_blocks,
    unsafe_op_in_unsafe_fn
)]
mod skel {
    include!(concat!(env!("OUT_DIR"), "/steer.skel.rs"));
}

pub use arp_seen::ArpSeen;
pub use counters::{Counter, SteerCounters};
pub use error::BpfError;
pub use loader::{AttachMode, AttachedMode, MAX_QUEUES, SteerConfig, SteerProgram, Verdict};
pub use query::{AttachedProgram, attached_program, detach_program, program_loaded};

/// The kernel-visible name of the steering program.
pub const PROGRAM_NAME: &str = "surge_steer";

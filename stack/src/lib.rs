//! surge's TCP/IP stack.
//!
//! Layers, bottom up:
//! - [`checksum`]: the Internet checksum (RFC 1071) with AVX2 / SSE2 / scalar paths,
//!   pseudo-header sums and incremental updates (RFC 1624).
//! - [`wire`]: zero-copy views and owned `Repr`s for Ethernet, ARP, IPv4, ICMPv4, UDP
//!   and TCP, in the shape of smoltcp's `wire` module; [`FourTuple`] names a connection.
//! - [`iface`], [`neighbor`]: interface configuration and routing, the ARP cache.
//! - [`engine`]: the per-core run-to-completion loop over a device, with the in-loop
//!   socket calls; [`socket`]: the socket table and per-protocol socket state.
//! - [`tcp`]: a sans-IO TCP (RFC 9293 and friends): every input takes `now`, every
//!   output is returned.
//! - [`table`]: bind, listen and connection tables with BSD/Linux semantics.
//! - [`errno`]: [`Errno`], the error every socket call returns, in every layer.
//! - [`secrets`]: the per-boot keys behind ISNs, timestamps, port choice, table
//!   hashes and SYN cookies.
//! - [`timer`]: the hierarchical timer wheel the engine drives TCP timers with.
//! - [`time`]: the stack's own clock type, microseconds since engine start.
//!
//! Protocol code here never reads a clock, sleeps, makes a syscall or touches a
//! device. The only unsafe code in this crate is the fenced SIMD module of [`checksum`].
#![deny(unsafe_code)]

pub use errno::Errno;
pub use wire::FourTuple;

pub mod checksum;
pub mod engine;
pub mod errno;
pub mod iface;
pub mod neighbor;
pub mod reassembly;
pub mod runtime;
pub mod secrets;
pub mod socket;
pub mod table;
pub mod tcp;
pub mod time;
pub mod timer;
pub mod wire;

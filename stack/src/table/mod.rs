//! Connection, listen and bind tables, with the semantics of 4.4BSD `in_pcb.c` and
//! Linux `inet_hashtables.c` / `inet_connection_sock.c`.
//!
//! Everything here is a plain, sans-IO data structure: no clock, no syscall, no
//! thread. Randomness (hash keys, ephemeral port offsets) comes from the caller.
//!
//! - Socket calls fail with [`crate::Errno`] (defined in [`crate::errno`], where every layer sees it).
//! - [`bind`]: [`BindTable`], port ownership (`inet_bind` / `inet_csk_get_port`).
//! - [`ephemeral`]: [`EphemeralPorts`], one core's slice of the ephemeral range and
//!   the RFC 6056 port selection.
//! - [`listen`]: [`ListenTable`], listeners by (addr, port), exact before wildcard,
//!   SO_REUSEPORT groups.
//! - [`conn`]: [`ConnTable`], connections by 4-tuple in a table that grows by linear
//!   hashing (no stop-the-world rehash), and [`shard_of`].
//! - [`toeplitz`]: the RSS Toeplitz hash and [`Rss::port_for_queue`].
//! - [`keyed_hash`]: [`HashKey`], the SipHash key every table keyed by peer-chosen
//!   values uses.
//!
//! How the engine drives them (one set per core, except where noted):
//!
//! | socket call | table calls |
//! | --- | --- |
//! | `bind(addr, port)` | [`BindTable::bind`] (port 0: from this core's [`EphemeralPorts`]) |
//! | `listen(backlog)` | [`BindTable::listen`] (auto-binds an unbound socket), then [`ListenTable::insert`]; a second `listen` is [`ListenTable::set_backlog`] |
//! | `connect` unbound | [`BindTable::ephemeral_for_connect`] with a `tuple_free` that checks the [`ConnTable`] (and, with known RSS, [`Rss::reply_queue`] `== my queue`), then [`ConnTable::insert`] |
//! | `connect` bound | [`BindTable::connect_bound`], then [`ConnTable::insert`] |
//! | SYN in | [`ConnTable::get`] by 4-tuple, else [`ListenTable::lookup`]; admit if not [`Listener::syn_queue_is_full`] |
//! | accept completes | [`BindTable::inherit_port`] for the child, [`ConnTable::insert`]; [`Listener::accept_queue_is_full`] |
//! | TIME_WAIT | user-held: [`BindTable::enter_time_wait`], at its end [`BindTable::unbind`] and [`ConnTable::remove`]; closed: [`ConnTable::remove`], [`BindTable::unbind`] and a record in `tcp::TimeWaitTable` (itself a [`ConnTable`]) |
//! | connect fails / reset before close | [`BindTable::disconnect`] |
//! | `close` | [`BindTable::unbind`], [`ListenTable::remove`], [`ConnTable::remove`] |
//!
//! Port ownership is global to the stack (two cores must not both bind :80 without
//! SO_REUSEPORT), so the engine keeps one [`BindTable`] per protocol where every core
//! can reach it (the API control path); ephemeral choices stay per core because each
//! core passes its own [`EphemeralPorts`] slice.
//!
//! ```
//! use std::net::{Ipv4Addr, SocketAddrV4};
//! use surge_stack::table::{BindConfig, BindOptions, BindTable, EphemeralPorts, EphemeralRange, HashKey, SocketId};
//!
//! let ours = Ipv4Addr::new(198, 18, 0, 1);
//! let mut ports = EphemeralPorts::new(EphemeralRange::LINUX_DEFAULT, 0, 1, HashKey::new(1, 2)).unwrap();
//! let mut binds = BindTable::new(BindConfig::new(vec![ours]), HashKey::new(3, 4));
//! let at = binds.bind(SocketId(1), ours, 8080, BindOptions::default(), &mut ports).unwrap();
//! assert_eq!(at, SocketAddrV4::new(ours, 8080));
//! // a second socket on the same port: EADDRINUSE, as Linux says
//! let again = binds.bind(SocketId(2), Ipv4Addr::UNSPECIFIED, 8080, BindOptions::default(), &mut ports);
//! assert_eq!(again, Err(surge_stack::errno::Errno::EADDRINUSE));
//! ```

use core::hash::Hash;

pub mod bind;
pub mod conn;
pub mod ephemeral;
pub mod keyed_hash;
pub mod listen;
pub mod toeplitz;

pub use bind::{BindConfig, BindCounters, BindOptions, BindProtocol, BindState, BindTable};
pub use conn::{ConnCounters, ConnInsertError, ConnTable, ConnTableConfig, shard_of};
pub use ephemeral::{EphemeralPorts, EphemeralRange, PortPurpose};
pub use keyed_hash::{HashKey, KeyedState};
pub use listen::{ListenConfig, ListenCounters, ListenTable, Listener};
pub use toeplitz::{DEFAULT_RSS_KEY, Rss, toeplitz_hash};

/// An opaque socket identifier; generation checks are the engine's business.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SocketId(pub u32);

/// Maps a 32-bit hash onto `0..n` without a division (Linux `reciprocal_scale`).
pub(crate) const fn reciprocal_scale(hash: u32, n: u32) -> u32 {
    ((hash as u64 * n as u64) >> 32) as u32
}

//! [`ListenTable`]: listening sockets by (addr, port), as Linux's listening hash.
//!
//! `solisten` / Linux `inet_listen` → `inet_csk_listen_start` put a socket here;
//! an arriving SYN finds its listener with [`ListenTable::lookup`] (Linux
//! `__inet_lookup_listener`): a listener on the exact destination address scores
//! above one on 0.0.0.0, and inside an SO_REUSEPORT group a hash of the 4-tuple
//! picks the member, so every segment of one flow reaches the same listener.
//! Lookup is two hash probes and never allocates.

use core::net::{Ipv4Addr, SocketAddrV4};
use std::collections::HashMap;

use super::{HashKey, KeyedState, SocketId, reciprocal_scale};
use crate::{Errno, FourTuple};

/// Limits for the accept and SYN queues (Linux sysctls).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ListenConfig {
    /// Upper bound on a listen backlog (`net.core.somaxconn`, default 4096).
    pub somaxconn: u32,
    /// Upper bound on a listener's SYN queue (`net.ipv4.tcp_max_syn_backlog`; Linux
    /// sizes it from memory: 2048 on the 24 GiB development machine).
    pub max_syn_backlog: u32,
}

impl Default for ListenConfig {
    fn default() -> Self {
        ListenConfig {
            somaxconn: 4096,
            max_syn_backlog: 2048,
        }
    }
}

/// One listening socket and its queue limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Listener {
    /// The socket.
    pub id: SocketId,
    /// Where it listens (0.0.0.0 for the wildcard).
    pub local: SocketAddrV4,
    /// Accept queue limit: `min(backlog, somaxconn)` (`sk_max_ack_backlog`).
    pub accept_backlog: u32,
    /// SYN queue limit: `min(accept_backlog, max_syn_backlog)`.
    pub syn_backlog: u32,
    /// SO_REUSEPORT was set when it started listening.
    pub reuse_port: bool,
    /// Owner uid; an SO_REUSEPORT group has one.
    pub owner: u32,
}

impl Listener {
    /// Is an accept queue holding `queued` connections full? Linux
    /// `sk_acceptq_is_full` tests `queued > backlog`, so backlog 0 still admits one.
    pub const fn accept_queue_is_full(&self, queued: usize) -> bool {
        queued as u64 > self.accept_backlog as u64
    }

    /// Is a SYN queue holding `pending` half-open connections full? Linux
    /// `inet_csk_reqsk_queue_is_full` tests `pending > backlog` the same way.
    pub const fn syn_queue_is_full(&self, pending: usize) -> bool {
        pending as u64 > self.syn_backlog as u64
    }
}

/// Refusals by reason, plain integers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ListenCounters {
    /// Inserts refused: the (addr, port) has a listener and they do not both
    /// have SO_REUSEPORT with the same owner.
    pub addr_in_use: u64,
    /// Inserts refused: the socket already listens elsewhere.
    pub invalid: u64,
}

/// The listeners on one (addr, port); more than one only with SO_REUSEPORT.
#[derive(Debug, Clone, Default)]
struct ListenGroup {
    members: Vec<Listener>,
}

/// The map key: address and port packed in a u64 (one fixed-width hash write).
const fn group_key(addr: Ipv4Addr, port: u16) -> u64 {
    ((addr.to_bits() as u64) << 16) | port as u64
}

/// Listening sockets of one core.
#[derive(Debug, Clone)]
pub struct ListenTable {
    config: ListenConfig,
    key: HashKey,
    groups: HashMap<u64, ListenGroup, KeyedState>,
    by_id: HashMap<SocketId, u64, KeyedState>,
    /// Refusals by reason.
    pub counters: ListenCounters,
}

/// Linux `__sys_listen`: a negative backlog, or one above somaxconn, becomes somaxconn.
fn clamp_backlog(backlog: i32, somaxconn: u32) -> u32 {
    u32::try_from(backlog).map_or(somaxconn, |b| b.min(somaxconn))
}

impl ListenTable {
    /// An empty table; `key` keys the maps and the SO_REUSEPORT member choice.
    pub fn new(config: ListenConfig, key: HashKey) -> Self {
        ListenTable {
            config,
            key,
            groups: HashMap::with_hasher(key.state()),
            by_id: HashMap::with_hasher(key.state()),
            counters: ListenCounters::default(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> ListenConfig {
        self.config
    }

    /// The number of listeners.
    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    /// True when nothing listens.
    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    fn limits(&self, backlog: i32) -> (u32, u32) {
        let accept = clamp_backlog(backlog, self.config.somaxconn);
        (accept, accept.min(self.config.max_syn_backlog))
    }

    /// Start listening: `id` on `local` with `backlog` (clamped to somaxconn).
    /// The bind rules were enforced by [`super::BindTable::listen`]; this checks
    /// again that a shared (addr, port) is an SO_REUSEPORT group of one owner
    /// (EADDRINUSE otherwise) and that `id` is not already here (EINVAL; use
    /// [`ListenTable::set_backlog`] for a second `listen`).
    pub fn insert(
        &mut self,
        id: SocketId,
        local: SocketAddrV4,
        backlog: i32,
        reuse_port: bool,
        owner: u32,
    ) -> Result<&Listener, Errno> {
        if self.by_id.contains_key(&id) {
            self.counters.invalid += 1;
            return Err(Errno::EINVAL);
        }
        let key = group_key(*local.ip(), local.port());
        let (accept_backlog, syn_backlog) = self.limits(backlog);
        let group = self.groups.entry(key).or_default();
        let shareable = group
            .members
            .iter()
            .all(|m| reuse_port && m.reuse_port && m.owner == owner);
        if !shareable {
            if group.members.is_empty() {
                self.groups.remove(&key);
            }
            self.counters.addr_in_use += 1;
            return Err(Errno::EADDRINUSE);
        }
        group.members.push(Listener {
            id,
            local,
            accept_backlog,
            syn_backlog,
            reuse_port,
            owner,
        });
        self.by_id.insert(id, key);
        self.get(id).ok_or(Errno::EINVAL)
    }

    /// A second `listen(backlog)` on a listening socket updates its limits (Linux
    /// `inet_listen` writes `sk_max_ack_backlog` again). EINVAL if it does not listen.
    pub fn set_backlog(&mut self, id: SocketId, backlog: i32) -> Result<&Listener, Errno> {
        let (accept_backlog, syn_backlog) = self.limits(backlog);
        let listener = self.get_mut(id).ok_or(Errno::EINVAL)?;
        listener.accept_backlog = accept_backlog;
        listener.syn_backlog = syn_backlog;
        Ok(listener)
    }

    /// The listener `id`, if it listens.
    pub fn get(&self, id: SocketId) -> Option<&Listener> {
        let key = self.by_id.get(&id)?;
        self.groups.get(key)?.members.iter().find(|m| m.id == id)
    }

    fn get_mut(&mut self, id: SocketId) -> Option<&mut Listener> {
        let key = self.by_id.get(&id)?;
        self.groups
            .get_mut(key)?
            .members
            .iter_mut()
            .find(|m| m.id == id)
    }

    /// Stop listening (close): returns the listener that was removed.
    pub fn remove(&mut self, id: SocketId) -> Option<Listener> {
        let key = self.by_id.remove(&id)?;
        let group = self.groups.get_mut(&key)?;
        let index = group.members.iter().position(|m| m.id == id)?;
        // Keep member order: remaining flows keep hashing onto the same members
        // where they can (Linux reuseport_detach_sock moves the last one instead).
        let removed = group.members.remove(index);
        if group.members.is_empty() {
            self.groups.remove(&key);
        }
        Some(removed)
    }

    /// The listener for a segment of `tuple` (local = its destination): exact
    /// address first, then 0.0.0.0; inside an SO_REUSEPORT group the member
    /// is chosen by a keyed hash of the 4-tuple (Linux `reuseport_select_sock`
    /// with `inet_ehashfn`, reduced with `reciprocal_scale`).
    pub fn lookup(&self, tuple: &FourTuple) -> Option<&Listener> {
        let group = self
            .groups
            .get(&group_key(tuple.local_addr, tuple.local_port))
            .or_else(|| {
                self.groups
                    .get(&group_key(Ipv4Addr::UNSPECIFIED, tuple.local_port))
            })?;
        match group.members.as_slice() {
            [] => None,
            [only] => Some(only),
            members => {
                let hash = self.key.hash_one(tuple) as u32;
                let n = u32::try_from(members.len()).unwrap_or(u32::MAX);
                members.get(reciprocal_scale(hash, n) as usize)
            }
        }
    }

    /// All listeners on exactly (addr, port), in insertion order (an SO_REUSEPORT group).
    pub fn group(&self, local: SocketAddrV4) -> &[Listener] {
        self.groups
            .get(&group_key(*local.ip(), local.port()))
            .map_or(&[], |g| g.members.as_slice())
    }
}

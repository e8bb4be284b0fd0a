//! [`BindTable`]: who owns which local port, with Linux's rules.
//!
//! This is 4.4BSD `in_pcbbind` and Linux `inet_bind` → `inet_csk_get_port` /
//! `inet_csk_bind_conflict`, `inet_csk_listen_start` and `__inet_hash_connect`.
//! One table covers one protocol's port space (the engine keeps one for TCP and one
//! for UDP; UDP sockets simply never listen). Ports are grouped in buckets as
//! Linux's `inet_bind_bucket`: every socket bound to a port is an owner of that
//! port's bucket, whatever its address.
//!
//! The rules, each checked against the real kernel (Linux 6.18, Python sockets in
//! a private netns on 198.18.0.1/.2; results quoted in the tests):
//! - two owners of a port conflict only if their addresses overlap (equal, or one
//!   of them the wildcard 0.0.0.0);
//! - SO_REUSEADDR on both lets them share unless the existing one is listening;
//! - otherwise SO_REUSEPORT on both lets them share if the existing one is in
//!   TIME_WAIT or has the same owner (uid);
//! - errors come in `inet_bind`'s order: EADDRNOTAVAIL (not our address), EACCES
//!   (privileged port), EINVAL (already bound), EADDRINUSE (conflict).
//!
//! TCP also has Linux's per-bucket fast paths (`tb->fastreuse`, `tb->fastreuseport`,
//! `sk_reuseport_match`, `inet_csk_update_fastreuse`), modelled exactly, because
//! they change answers: after a SO_REUSEADDR+SO_REUSEPORT socket joins a port, a
//! later SO_REUSEPORT socket of the same uid on the same address is let in without
//! the full conflict check (the `table_linux_parity` root test found this case).
//! UDP (`udp_lib_get_port`) has no fast paths and no LISTEN state.

use core::net::{Ipv4Addr, SocketAddrV4};
use std::collections::HashMap;

use super::{EphemeralPorts, HashKey, KeyedState, PortPurpose, SocketId};
use crate::{Errno, FourTuple};

/// The socket options and credentials that decide bind conflicts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BindOptions {
    /// SO_REUSEADDR (`sk_reuse`).
    pub reuse_addr: bool,
    /// SO_REUSEPORT (`sk_reuseport`).
    pub reuse_port: bool,
    /// The owner's uid: SO_REUSEPORT sharing needs the same one (`sk_uid`).
    pub owner: u32,
    /// The socket may bind below the unprivileged port start (CAP_NET_BIND_SERVICE).
    pub privileged: bool,
}

/// What a bound socket is doing; only LISTEN and TIME_WAIT change the rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BindState {
    /// Bound, not listening or connected (TCP CLOSED, or any UDP socket).
    Bound,
    /// Listening (TCP LISTEN).
    Listening,
    /// Connected to a remote (an active or passive open in progress or done).
    Connected,
    /// In TIME_WAIT, still holding its port.
    TimeWait,
}

/// Which protocol's port space a table holds; the rules differ slightly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BindProtocol {
    /// TCP: `inet_csk_get_port`, with LISTEN, TIME_WAIT and the fast paths.
    Tcp,
    /// UDP: `udp_lib_get_port`; no listen, no 4-tuple sharing on connect.
    Udp,
}

/// Stack-wide bind configuration (the sysctls Linux has for it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindConfig {
    /// The protocol whose ports this table holds.
    pub protocol: BindProtocol,
    /// The stack's own addresses; binding to any other is EADDRNOTAVAIL.
    pub local_addrs: Vec<Ipv4Addr>,
    /// Ports below this need privilege (`net.ipv4.ip_unprivileged_port_start`, default 1024).
    pub unprivileged_port_start: u16,
    /// Every socket of this stack counts as privileged.
    pub privileged: bool,
    /// Allow binding to addresses that are not ours (`net.ipv4.ip_nonlocal_bind`).
    pub nonlocal_bind: bool,
}

impl BindConfig {
    /// Linux's defaults for a TCP table with the given local addresses.
    pub fn new(local_addrs: Vec<Ipv4Addr>) -> Self {
        BindConfig {
            protocol: BindProtocol::Tcp,
            local_addrs,
            unprivileged_port_start: 1024,
            privileged: false,
            nonlocal_bind: false,
        }
    }

    /// Linux's defaults for a UDP table with the given local addresses.
    pub fn udp(local_addrs: Vec<Ipv4Addr>) -> Self {
        BindConfig {
            protocol: BindProtocol::Udp,
            ..BindConfig::new(local_addrs)
        }
    }
}

/// Refusals by reason, plain integers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BindCounters {
    /// Explicit binds and listens refused because the port is taken.
    pub addr_in_use: u64,
    /// Binds to an address that is not ours.
    pub addr_not_local: u64,
    /// Binds below the unprivileged port start without privilege.
    pub privileged_port: u64,
    /// Binds of a socket that is already bound, and other state misuse.
    pub invalid: u64,
    /// bind(0) / listen auto-binds that found no free ephemeral port.
    pub bind_ephemeral_exhausted: u64,
    /// Active opens that found no ephemeral port with a free 4-tuple.
    pub connect_ephemeral_exhausted: u64,
    /// Active opens of bound sockets whose 4-tuple is already in use.
    pub connect_tuple_in_use: u64,
}

/// One socket's claim on a port.
#[derive(Debug, Clone, Copy)]
struct Owner {
    id: SocketId,
    /// The address it is bound to now (0.0.0.0 for the wildcard).
    addr: Ipv4Addr,
    /// The address `bind` asked for, restored by [`BindTable::disconnect`].
    bound_addr: Ipv4Addr,
    /// The port was chosen by the user (not an auto-bind): kept on disconnect
    /// (Linux SOCK_BINDPORT_LOCK).
    port_locked: bool,
    options: BindOptions,
    state: BindState,
    remote: Option<SocketAddrV4>,
}

impl Owner {
    /// Whether this owner blocks a connect to `remote` from `addr` on its port: it is
    /// connected on that very 4-tuple. An owner in TIME-WAIT does not: the caller's
    /// `tuple_free` decides (Linux `__inet_check_established` asks `tcp_twsk_unique`).
    fn holds_tuple(&self, addr: Ipv4Addr, remote: SocketAddrV4) -> bool {
        self.addr == addr && self.remote == Some(remote) && self.state != BindState::TimeWait
    }
}

/// How a socket joins a port's bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Join {
    /// `bind` / `listen` (`inet_csk_get_port`).
    GetPort,
    /// The implicit bind of an active open (`__inet_hash_connect`).
    Connect,
    /// An accepted child (`__inet_inherit_port`; creates a plain bucket if needed).
    Inherit,
}

/// Linux `tb->fastreuseport` values.
const FASTREUSEPORT_ANY: i8 = 1;
const FASTREUSEPORT_STRICT: i8 = 2;

/// All owners of one port and Linux's fast-path summary of them (`inet_bind_bucket`).
#[derive(Debug, Clone)]
struct PortBucket {
    /// `tb->fastreuse`: -1 made by an active open, 1 if every owner so far had
    /// SO_REUSEADDR and was not listening when it joined, else 0.
    fast_reuse: i8,
    /// `tb->fastreuseport`: -1 made by an active open, 0 off, ANY or STRICT.
    fast_reuseport: i8,
    /// `tb->fastuid`.
    fast_uid: u32,
    /// `tb->fast_rcv_saddr`.
    fast_addr: Ipv4Addr,
    owners: Vec<Owner>,
}

impl PortBucket {
    /// A bucket made by `__inet_hash_connect`: only active opens may share it.
    const fn for_connect() -> Self {
        PortBucket {
            fast_reuse: -1,
            fast_reuseport: -1,
            fast_uid: 0,
            fast_addr: Ipv4Addr::UNSPECIFIED,
            owners: Vec::new(),
        }
    }

    /// `inet_bind_bucket_create`.
    const fn for_bind() -> Self {
        PortBucket {
            fast_reuse: 0,
            fast_reuseport: 0,
            fast_uid: 0,
            fast_addr: Ipv4Addr::UNSPECIFIED,
            owners: Vec::new(),
        }
    }

    /// `__inet_hash_connect` skips buckets with `fastreuse >= 0 || fastreuseport >= 0`.
    const fn shareable_by_connect(&self) -> bool {
        self.fast_reuse < 0 && self.fast_reuseport < 0
    }

    /// Linux `sk_reuseport_match`: may a socket skip the conflict check?
    fn reuseport_match(&self, addr: Ipv4Addr, options: BindOptions) -> bool {
        if self.fast_reuseport <= 0 || !options.reuse_port || self.fast_uid != options.owner {
            return false;
        }
        // ipv4_rcv_saddr_equal(fast, sk, match_sk1_wildcard = true, match_sk2_wildcard = false)
        self.fast_reuseport == FASTREUSEPORT_ANY
            || self.fast_addr == addr
            || self.fast_addr.is_unspecified()
    }

    /// Linux `inet_csk_update_fastreuse`, called before the socket joins `owners`
    /// (bind) or while it is already in them (listen).
    fn update_fast_reuse(&mut self, addr: Ipv4Addr, options: BindOptions, listening: bool) {
        let reuse = options.reuse_addr && !listening;
        if self.owners.is_empty() {
            self.fast_reuse = i8::from(reuse);
            if options.reuse_port {
                self.fast_reuseport = FASTREUSEPORT_ANY;
                self.fast_uid = options.owner;
                self.fast_addr = addr;
            } else {
                self.fast_reuseport = 0;
            }
        } else {
            if !reuse {
                self.fast_reuse = 0;
            }
            if options.reuse_port {
                if !self.reuseport_match(addr, options) {
                    self.fast_reuseport = FASTREUSEPORT_STRICT;
                    self.fast_uid = options.owner;
                    self.fast_addr = addr;
                }
            } else {
                self.fast_reuseport = 0;
            }
        }
    }
}

/// Port ownership for one protocol.
#[derive(Debug, Clone)]
pub struct BindTable {
    config: BindConfig,
    ports: HashMap<u16, PortBucket, KeyedState>,
    /// Each bound socket's port and its place in that port's owners.
    sockets: HashMap<SocketId, (u16, u32), KeyedState>,
    /// Refusals by reason.
    pub counters: BindCounters,
}

/// Do two bound addresses overlap (`inet_rcv_saddr_equal(.., match_wildcard = true)`)?
fn addrs_overlap(a: Ipv4Addr, b: Ipv4Addr) -> bool {
    a == b || a.is_unspecified() || b.is_unspecified()
}

/// Linux `inet_bind_conflict` with `relax = true, reuseport_ok = true` (explicit
/// bind and listen), plus the address overlap test of `inet_csk_bind_conflict`.
fn conflicts(addr: Ipv4Addr, options: BindOptions, existing: &Owner) -> bool {
    if !addrs_overlap(addr, existing.addr) {
        return false;
    }
    if options.reuse_addr && existing.options.reuse_addr && existing.state != BindState::Listening {
        return false;
    }
    !(options.reuse_port
        && existing.options.reuse_port
        && (existing.state == BindState::TimeWait || existing.options.owner == options.owner))
}

/// Linux `udp_lib_lport_inuse` (and `udp_lib_lport_inuse2`, its hslot2 twin) for
/// an explicit port: the port is in use if any owner whose address overlaps
/// conflicts, i.e. lacks SO_REUSEADDR on both sides and lacks a SO_REUSEPORT
/// same-uid match; the order of the owners does not matter. (Upstream source
/// ends the walk at the first overlapping owner, so that a SO_REUSEPORT match
/// there would hide an older plain owner; the Linux 6.18.44 kernel the parity
/// test runs on refuses such binds whatever the order, also with more than ten
/// sockets on the port (the hslot2 path) and with SO_REUSEADDR on the binder:
/// `table_bind.rs` quotes its answers.) UDP owners never listen and never reach
/// TIME_WAIT, so this is [`conflicts`] with those two states left out.
fn udp_lport_in_use(addr: Ipv4Addr, options: BindOptions, owners: &[Owner]) -> bool {
    owners.iter().any(|o| {
        addrs_overlap(addr, o.addr)
            && !(options.reuse_addr && o.options.reuse_addr)
            && !(options.reuse_port && o.options.reuse_port && o.options.owner == options.owner)
    })
}

impl BindTable {
    /// An empty table; `key` keys its hash maps.
    pub fn new(config: BindConfig, key: HashKey) -> Self {
        BindTable {
            config,
            ports: HashMap::with_hasher(key.state()),
            sockets: HashMap::with_hasher(key.state()),
            counters: BindCounters::default(),
        }
    }

    /// The configuration.
    pub fn config(&self) -> &BindConfig {
        &self.config
    }

    /// Replace the set of local addresses (existing bindings are kept, as Linux does
    /// when an address is removed).
    pub fn set_local_addrs(&mut self, addrs: Vec<Ipv4Addr>) {
        self.config.local_addrs = addrs;
    }

    /// Is `addr` one the stack may bind to (ours, the wildcard, or any with nonlocal_bind)?
    pub fn is_bindable_addr(&self, addr: Ipv4Addr) -> bool {
        addr.is_unspecified()
            || self.config.nonlocal_bind
            || self.config.local_addrs.contains(&addr)
    }

    /// The number of bound sockets.
    pub fn len(&self) -> usize {
        self.sockets.len()
    }

    /// True when no socket is bound.
    pub fn is_empty(&self) -> bool {
        self.sockets.is_empty()
    }

    /// Where `id` is bound (`getsockname`), if it is.
    pub fn local_addr(&self, id: SocketId) -> Option<SocketAddrV4> {
        self.owner(id)
            .map(|(port, o)| SocketAddrV4::new(o.addr, port))
    }

    /// The bound socket's state, if it is bound.
    pub fn state(&self, id: SocketId) -> Option<BindState> {
        self.owner(id).map(|(_, o)| o.state)
    }

    /// How many sockets own `port`.
    pub fn owners_of(&self, port: u16) -> usize {
        self.ports.get(&port).map_or(0, |b| b.owners.len())
    }

    fn owner(&self, id: SocketId) -> Option<(u16, &Owner)> {
        let (port, index) = *self.sockets.get(&id)?;
        let owner = self.ports.get(&port)?.owners.get(index as usize)?;
        Some((port, owner))
    }

    fn owner_mut(&mut self, id: SocketId) -> Option<(u16, &mut PortBucket, usize)> {
        let (port, index) = *self.sockets.get(&id)?;
        let bucket = self.ports.get_mut(&port)?;
        Some((port, bucket, index as usize))
    }

    /// Add `owner` to `port`'s bucket. `bind` and `listen` owners update the fast
    /// paths (`inet_csk_get_port` → `inet_csk_update_fastreuse`); active opens and
    /// accepted children do not (`inet_bind_hash` only).
    fn insert_owner(&mut self, port: u16, owner: Owner, how: Join) {
        let bucket = self.ports.entry(port).or_insert_with(|| match how {
            Join::Connect => PortBucket::for_connect(),
            Join::GetPort | Join::Inherit => PortBucket::for_bind(),
        });
        if how == Join::GetPort {
            bucket.update_fast_reuse(
                owner.addr,
                owner.options,
                owner.state == BindState::Listening,
            );
        }
        self.sockets
            .insert(owner.id, (port, bucket.owners.len() as u32));
        bucket.owners.push(owner);
    }

    fn is_tcp(&self) -> bool {
        self.config.protocol == BindProtocol::Tcp
    }

    /// May a bind(0) of `addr` take `port`? (`inet_csk_find_open_port` calls the
    /// conflict check with `relax = false, reuseport_ok = false`: any owner whose
    /// address overlaps conflicts, whatever its options.)
    /// UDP's `udp_lib_get_port` scan uses the ordinary rule instead.
    fn free_for_ephemeral_bind(&self, port: u16, addr: Ipv4Addr, options: BindOptions) -> bool {
        let tcp = self.is_tcp();
        self.ports.get(&port).is_none_or(|b| {
            b.owners.iter().all(|o| {
                if tcp {
                    !addrs_overlap(addr, o.addr)
                } else {
                    !conflicts(addr, options, o)
                }
            })
        })
    }

    /// `bind(id, addr:port)`: Linux `__inet_bind`. Port 0 picks an ephemeral port
    /// from `ephemeral` (this core's slice). Returns the bound address.
    pub fn bind(
        &mut self,
        id: SocketId,
        addr: Ipv4Addr,
        port: u16,
        options: BindOptions,
        ephemeral: &mut EphemeralPorts,
    ) -> Result<SocketAddrV4, Errno> {
        if !self.is_bindable_addr(addr) {
            self.counters.addr_not_local += 1;
            return Err(Errno::EADDRNOTAVAIL);
        }
        if port != 0
            && port < self.config.unprivileged_port_start
            && !(options.privileged || self.config.privileged)
        {
            self.counters.privileged_port += 1;
            return Err(Errno::EACCES);
        }
        if self.sockets.contains_key(&id) {
            self.counters.invalid += 1;
            return Err(Errno::EINVAL);
        }
        let owner = Owner {
            id,
            addr,
            bound_addr: addr,
            port_locked: port != 0,
            options,
            state: BindState::Bound,
            remote: None,
        };
        let port = if port == 0 {
            self.pick_ephemeral_for_bind(addr, options, ephemeral)?
        } else {
            let tcp = self.is_tcp();
            let clash = self.ports.get(&port).is_some_and(|b| {
                // inet_csk_get_port: the fast paths first, then the full check.
                let fast = tcp
                    && !b.owners.is_empty()
                    && ((b.fast_reuse > 0 && options.reuse_addr)
                        || b.reuseport_match(addr, options));
                if tcp {
                    !fast && b.owners.iter().any(|o| conflicts(addr, options, o))
                } else {
                    udp_lport_in_use(addr, options, &b.owners)
                }
            });
            if clash {
                self.counters.addr_in_use += 1;
                return Err(Errno::EADDRINUSE);
            }
            port
        };
        self.insert_owner(port, owner, Join::GetPort);
        Ok(SocketAddrV4::new(addr, port))
    }

    fn pick_ephemeral_for_bind(
        &mut self,
        addr: Ipv4Addr,
        options: BindOptions,
        ephemeral: &mut EphemeralPorts,
    ) -> Result<u16, Errno> {
        match ephemeral.search(PortPurpose::Bind, addr, None, |p| {
            self.free_for_ephemeral_bind(p, addr, options)
        }) {
            Some(port) => Ok(port),
            None => {
                // Linux: inet_csk_get_port fails and __inet_bind / inet_csk_listen_start
                // return EADDRINUSE (only connect() says EADDRNOTAVAIL).
                self.counters.bind_ephemeral_exhausted += 1;
                Err(Errno::EADDRINUSE)
            }
        }
    }

    /// `listen(id)`: Linux `inet_csk_listen_start`. An unbound socket is auto-bound
    /// to 0.0.0.0 and an ephemeral port; a bound one is re-checked against the other
    /// owners now that it listens (two SO_REUSEADDR sockets may share a port while
    /// bound, but only one may listen). `options` are the socket's current ones.
    /// Listening again is a no-op. Returns the listening address.
    pub fn listen(
        &mut self,
        id: SocketId,
        options: BindOptions,
        ephemeral: &mut EphemeralPorts,
    ) -> Result<SocketAddrV4, Errno> {
        if !self.is_tcp() {
            // inet_dgram_ops has no listen: sock_no_listen.
            self.counters.invalid += 1;
            return Err(Errno::EOPNOTSUPP);
        }
        let Some((port, bucket, index)) = self.owner_mut(id) else {
            // inet_csk_listen_start: get_port(sk, 0) on the wildcard address.
            let addr = Ipv4Addr::UNSPECIFIED;
            let port = self.pick_ephemeral_for_bind(addr, options, ephemeral)?;
            let owner = Owner {
                id,
                addr,
                bound_addr: addr,
                port_locked: false,
                options,
                state: BindState::Listening,
                remote: None,
            };
            self.insert_owner(port, owner, Join::GetPort);
            return Ok(SocketAddrV4::new(addr, port));
        };
        let Some(me) = bucket.owners.get(index).copied() else {
            return Err(Errno::EINVAL);
        };
        match me.state {
            BindState::Listening => return Ok(SocketAddrV4::new(me.addr, port)),
            BindState::Connected | BindState::TimeWait => {
                // inet_listen: only a CLOSE or LISTEN socket may listen.
                self.counters.invalid += 1;
                return Err(Errno::EINVAL);
            }
            BindState::Bound => {}
        }
        // inet_csk_listen_start → inet_csk_get_port(sk, num) with sk in LISTEN, so
        // `reuse` is false; sk itself is in the bucket and skipped by the check.
        let fast = bucket.reuseport_match(me.addr, options);
        let clash = !fast
            && bucket
                .owners
                .iter()
                .any(|o| o.id != id && conflicts(me.addr, options, o));
        if clash {
            self.counters.addr_in_use += 1;
            return Err(Errno::EADDRINUSE);
        }
        bucket.update_fast_reuse(me.addr, options, true);
        if let Some(owner) = bucket.owners.get_mut(index) {
            owner.state = BindState::Listening;
            owner.options = options;
        }
        Ok(SocketAddrV4::new(me.addr, port))
    }

    /// The implicit bind of an active open from an unbound socket: Linux
    /// `__inet_hash_connect`. Picks a port of this core's slice such that the
    /// 4-tuple (local_addr, port, remote) is unused: a port may be shared by many
    /// connections to different remotes, but never with a port that `bind` or
    /// `listen` claimed. `tuple_free` is asked last about each candidate: the
    /// engine checks its connection table there, and may also demand that the
    /// reply hashes to its own RX queue ([`super::Rss::port_for_queue`]).
    /// EADDRNOTAVAIL when no port fits, as Linux's connect().
    pub fn ephemeral_for_connect(
        &mut self,
        id: SocketId,
        options: BindOptions,
        local_addr: Ipv4Addr,
        remote: SocketAddrV4,
        ephemeral: &mut EphemeralPorts,
        mut tuple_free: impl FnMut(&FourTuple) -> bool,
    ) -> Result<u16, Errno> {
        if self.sockets.contains_key(&id) || local_addr.is_unspecified() {
            self.counters.invalid += 1;
            return Err(Errno::EINVAL);
        }
        if !self.is_tcp() {
            // UDP connect auto-binds like bind(0.0.0.0:0) (inet_autobind): use bind.
            self.counters.invalid += 1;
            return Err(Errno::EOPNOTSUPP);
        }
        if !self.is_bindable_addr(local_addr) {
            self.counters.addr_not_local += 1;
            return Err(Errno::EADDRNOTAVAIL);
        }
        let ports = &self.ports;
        let found = ephemeral.search(PortPurpose::Connect, local_addr, Some(remote), |port| {
            let tuple = FourTuple::new(SocketAddrV4::new(local_addr, port), remote);
            let shareable = match ports.get(&port) {
                None => true,
                // RFC 9293 §3.4 / Linux __inet_check_established: a 4-tuple names
                // one connection; owners may share the port, not the tuple.
                Some(b) => {
                    b.shareable_by_connect()
                        && !b.owners.iter().any(|o| o.holds_tuple(local_addr, remote))
                }
            };
            shareable && tuple_free(&tuple)
        });
        let Some(port) = found else {
            self.counters.connect_ephemeral_exhausted += 1;
            return Err(Errno::EADDRNOTAVAIL);
        };
        let owner = Owner {
            id,
            addr: local_addr,
            bound_addr: Ipv4Addr::UNSPECIFIED,
            port_locked: false,
            options,
            state: BindState::Connected,
            remote: Some(remote),
        };
        self.insert_owner(port, owner, Join::Connect);
        Ok(port)
    }

    /// An active open from a socket that is already bound: Linux `__inet_hash_connect`
    /// with `inet_num` set. A socket bound to 0.0.0.0 takes `route_addr` as its
    /// address. EADDRNOTAVAIL if the 4-tuple is in use (by another owner of the
    /// port, or per `tuple_free`); EISCONN if it is listening or connected; EINVAL
    /// if it is not bound or `route_addr` is needed and is 0.0.0.0.
    pub fn connect_bound(
        &mut self,
        id: SocketId,
        route_addr: Ipv4Addr,
        remote: SocketAddrV4,
        mut tuple_free: impl FnMut(&FourTuple) -> bool,
    ) -> Result<SocketAddrV4, Errno> {
        let tcp = self.is_tcp();
        let Some((port, bucket, index)) = self.owner_mut(id) else {
            self.counters.invalid += 1;
            return Err(Errno::EINVAL);
        };
        let Some(me) = bucket.owners.get(index).copied() else {
            return Err(Errno::EINVAL);
        };
        if me.state != BindState::Bound {
            // __inet_stream_connect: sk_state != TCP_CLOSE -> EISCONN.
            self.counters.invalid += 1;
            return Err(Errno::EISCONN);
        }
        let addr = if me.addr.is_unspecified() {
            route_addr
        } else {
            me.addr
        };
        if addr.is_unspecified() {
            self.counters.invalid += 1;
            return Err(Errno::EINVAL);
        }
        let tuple = FourTuple::new(SocketAddrV4::new(addr, port), remote);
        // UDP (ip4_datagram_connect) does not check 4-tuple uniqueness.
        let taken = tcp
            && (bucket
                .owners
                .iter()
                .any(|o| o.id != id && o.holds_tuple(addr, remote))
                || !tuple_free(&tuple));
        if taken {
            self.counters.connect_tuple_in_use += 1;
            return Err(Errno::EADDRNOTAVAIL);
        }
        if let Some(owner) = bucket.owners.get_mut(index) {
            owner.addr = addr;
            owner.remote = Some(remote);
            owner.state = BindState::Connected;
        }
        Ok(SocketAddrV4::new(addr, port))
    }

    /// Record a passive open: the accepted child of a listener shares the listener's
    /// port (Linux `__inet_inherit_port`), with its own 4-tuple. EINVAL if `id` is
    /// already bound or the tuple's local side is not a concrete address and port.
    pub fn inherit_port(
        &mut self,
        id: SocketId,
        tuple: &FourTuple,
        options: BindOptions,
    ) -> Result<(), Errno> {
        if tuple.local_port == 0
            || tuple.local_addr.is_unspecified()
            || self.sockets.contains_key(&id)
        {
            self.counters.invalid += 1;
            return Err(Errno::EINVAL);
        }
        let owner = Owner {
            id,
            addr: tuple.local_addr,
            bound_addr: tuple.local_addr,
            port_locked: true,
            options,
            state: BindState::Connected,
            remote: Some(tuple.remote()),
        };
        self.insert_owner(tuple.local_port, owner, Join::Inherit);
        Ok(())
    }

    /// The connection entered TIME_WAIT: it keeps its port, but SO_REUSEPORT owners
    /// of any uid may now share it. EINVAL if `id` is not bound.
    pub fn enter_time_wait(&mut self, id: SocketId) -> Result<(), Errno> {
        let Some((_, bucket, index)) = self.owner_mut(id) else {
            return Err(Errno::EINVAL);
        };
        if let Some(owner) = bucket.owners.get_mut(index) {
            owner.state = BindState::TimeWait;
        }
        Ok(())
    }

    /// A connect failed or the connection was dropped before close (Linux
    /// `tcp_set_state(TCP_CLOSE)` → `inet_put_port` unless SOCK_BINDPORT_LOCK):
    /// an auto-bound socket loses its port, an explicitly bound one goes back to
    /// its bound address, unconnected. Returns whether `id` is still bound.
    pub fn disconnect(&mut self, id: SocketId) -> bool {
        let Some((_, bucket, index)) = self.owner_mut(id) else {
            return false;
        };
        let keep = bucket.owners.get(index).is_some_and(|o| o.port_locked);
        if !keep {
            self.unbind(id);
            return false;
        }
        if let Some(owner) = bucket.owners.get_mut(index) {
            owner.addr = owner.bound_addr;
            owner.remote = None;
            owner.state = BindState::Bound;
        }
        true
    }

    /// Release `id`'s port (close, or the end of TIME_WAIT): Linux `inet_put_port`.
    /// Returns whether it was bound.
    pub fn unbind(&mut self, id: SocketId) -> bool {
        let Some((port, index)) = self.sockets.remove(&id) else {
            return false;
        };
        // O(1) however many children share the port (a listener's accepted
        // connections all own its bucket): the last owner takes the freed place and
        // its index is updated. The owners' order means nothing to the rules.
        if let Some(bucket) = self.ports.get_mut(&port) {
            let index = index as usize;
            if index < bucket.owners.len() {
                bucket.owners.swap_remove(index);
                if let Some(moved) = bucket.owners.get(index) {
                    self.sockets.insert(moved.id, (port, index as u32));
                }
            }
            if bucket.owners.is_empty() {
                self.ports.remove(&port);
            }
        }
        true
    }
}

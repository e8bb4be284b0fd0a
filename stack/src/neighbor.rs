//! The ARP neighbour cache (RFC 826, with the reachability timers of RFC 1122 §2.3.2.1).
//!
//! Sans-IO: the engine feeds it ARP packets and `now`, asks it for MACs, and
//! sends the requests it returns. Packets waiting for a resolution are held in a
//! small bounded queue per neighbour (Linux `unres_qlen`), copied once; a
//! neighbour that never answers is given up after a few probes and its waiting
//! packets are dropped and counted.

use core::net::Ipv4Addr;
use core::time::Duration;
use std::collections::{HashMap, VecDeque};

use crate::time::Instant;
use crate::wire::EthernetAddress;

/// Knobs of the neighbour cache, with Linux-like defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NeighborConfig {
    /// How long an answered entry is trusted without revalidation (Linux `base_reachable_time`).
    pub reachable_time: Duration,
    /// How long a stale entry is still used (while revalidating) before it is dropped.
    pub stale_time: Duration,
    /// Interval between requests for an unresolved neighbour (Linux `retrans_time`).
    pub retrans_time: Duration,
    /// Requests sent before giving up (Linux `mcast_solicit`).
    pub max_probes: u8,
    /// Most neighbours held; new ones beyond it are refused and counted.
    pub capacity: usize,
    /// Most packets waiting on one unresolved neighbour (Linux `unres_qlen`, default 101).
    pub max_pending: usize,
}

impl Default for NeighborConfig {
    fn default() -> Self {
        NeighborConfig {
            reachable_time: Duration::from_secs(30),
            stale_time: Duration::from_secs(60),
            retrans_time: Duration::from_secs(1),
            max_probes: 3,
            capacity: 1024,
            max_pending: 101,
        }
    }
}

/// Counters of the neighbour cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct NeighborStats {
    /// ARP requests the cache asked the engine to send.
    pub requests: u64,
    /// Neighbours resolved (first answer or change of MAC).
    pub resolved: u64,
    /// Neighbours given up on after `max_probes` unanswered requests.
    pub failed: u64,
    /// Packets dropped because their neighbour failed or its queue was full.
    pub pending_dropped: u64,
    /// New neighbours refused because the cache was full.
    pub table_full: u64,
}

#[derive(Debug)]
enum State {
    /// Asked, no answer yet: `probes` requests sent, the last at `last_request`.
    Incomplete {
        probes: u8,
        last_request: Instant,
        pending: VecDeque<Vec<u8>>,
    },
    /// Answered at `confirmed`.
    Known {
        mac: EthernetAddress,
        confirmed: Instant,
        last_request: Option<Instant>,
    },
}

/// What a lookup found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolution {
    /// The MAC to send to.
    Known(EthernetAddress),
    /// The MAC to send to, from a stale entry: also send an ARP request for the
    /// address now, to revalidate it (the cache counted it).
    KnownRefresh(EthernetAddress),
    /// Unknown: send an ARP request for the address now (the cache counted it).
    Request,
    /// Being resolved; a request is already out.
    Waiting,
    /// The cache is full: the packet cannot be sent (counted).
    Full,
}

/// Work the cache hands back from [`NeighborCache::poll`].
#[derive(Debug, Default)]
pub struct NeighborPoll {
    /// Addresses to send an ARP request for.
    pub requests: Vec<Ipv4Addr>,
    /// Addresses given up on (their waiting packets were dropped).
    pub failed: Vec<Ipv4Addr>,
}

/// The ARP cache of one engine.
#[derive(Debug)]
pub struct NeighborCache {
    config: NeighborConfig,
    entries: HashMap<Ipv4Addr, State>,
    stats: NeighborStats,
    /// The last fresh answer of `resolve` (address, MAC, fresh until): most
    /// packets go to one neighbour, and this spares them the keyed hash. Every
    /// change to the table clears it.
    last: Option<(Ipv4Addr, EthernetAddress, Instant)>,
    /// Bumped by every change to the table (see [`Self::generation`]).
    generation: u64,
}

impl NeighborCache {
    /// An empty cache.
    pub fn new(config: NeighborConfig) -> Self {
        NeighborCache {
            config,
            entries: HashMap::new(),
            stats: NeighborStats::default(),
            last: None,
            generation: 0,
        }
    }

    /// A number that changes with every change to the table (an answer learnt or
    /// changed, a static entry, an expiry pass): an answer remembered outside the
    /// cache together with its generation is still the cache's answer while the
    /// generation is unchanged and it is fresh.
    #[inline]
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The MAC of `ip` and until when it is fresh, when `ip` is the neighbour
    /// [`Self::resolve`] last answered from a fresh entry (what it would answer
    /// again, without a request, until then).
    #[inline]
    pub fn fresh_answer(&self, ip: Ipv4Addr) -> Option<(EthernetAddress, Instant)> {
        self.last
            .filter(|&(last_ip, _, _)| last_ip == ip)
            .map(|(_, mac, fresh_until)| (mac, fresh_until))
    }

    /// Forgets the remembered answer and starts a new generation: the table changes.
    fn changed(&mut self) {
        self.last = None;
        self.generation = self.generation.wrapping_add(1);
    }

    /// Counters.
    pub fn stats(&self) -> NeighborStats {
        self.stats
    }

    /// Number of neighbours held (any state).
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when no neighbour is held.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Adds a static entry that never expires (e.g. from configuration).
    pub fn insert_static(&mut self, ip: Ipv4Addr, mac: EthernetAddress) {
        self.changed();
        self.entries.insert(
            ip,
            State::Known {
                mac,
                confirmed: Instant::MAX,
                last_request: None,
            },
        );
    }

    /// The MAC for `ip` if known, starting a resolution if not.
    ///
    /// A stale entry is still used, and one revalidation request is asked for
    /// (RFC 1122 §2.3.2.1: keep using the entry while checking it).
    #[inline]
    pub fn resolve(&mut self, ip: Ipv4Addr, now: Instant) -> Resolution {
        if let Some((last_ip, mac, fresh_until)) = self.last {
            if last_ip == ip && now < fresh_until {
                return Resolution::Known(mac);
            }
        }
        self.resolve_in_table(ip, now)
    }

    /// [`Self::resolve`] past the last answer: the table.
    #[inline(never)]
    fn resolve_in_table(&mut self, ip: Ipv4Addr, now: Instant) -> Resolution {
        let config = self.config;
        match self.entries.get_mut(&ip) {
            Some(State::Known {
                mac,
                confirmed,
                last_request,
            }) => {
                let stale = *confirmed != Instant::MAX && now - *confirmed > config.reachable_time;
                let due = last_request.is_none_or(|t| now - t >= config.retrans_time);
                if stale && due {
                    *last_request = Some(now);
                    self.stats.requests += 1;
                    return Resolution::KnownRefresh(*mac);
                }
                if !stale {
                    let fresh_until = if *confirmed == Instant::MAX {
                        Instant::MAX
                    } else {
                        *confirmed + config.reachable_time
                    };
                    self.last = Some((ip, *mac, fresh_until));
                }
                Resolution::Known(*mac)
            }
            Some(State::Incomplete { .. }) => Resolution::Waiting,
            None => {
                if self.entries.len() >= config.capacity {
                    self.stats.table_full += 1;
                    return Resolution::Full;
                }
                self.entries.insert(
                    ip,
                    State::Incomplete {
                        probes: 1,
                        last_request: now,
                        pending: VecDeque::new(),
                    },
                );
                self.stats.requests += 1;
                Resolution::Request
            }
        }
    }

    /// Queues a whole frame to send once `ip` resolves (its destination MAC is
    /// filled in then). Returns `false` and counts a drop when the queue is full
    /// or `ip` is not being resolved.
    pub fn enqueue(&mut self, ip: Ipv4Addr, frame: &[u8]) -> bool {
        match self.entries.get_mut(&ip) {
            Some(State::Incomplete { pending, .. }) if pending.len() < self.config.max_pending => {
                pending.push_back(frame.to_vec());
                true
            }
            _ => {
                self.stats.pending_dropped += 1;
                false
            }
        }
    }

    /// Learns `ip` is at `mac` (an ARP reply, or a request that names us as
    /// target, RFC 826 "merge" rule). Returns the frames that were waiting on it,
    /// with their destination MAC not yet filled in.
    pub fn learn(&mut self, ip: Ipv4Addr, mac: EthernetAddress, now: Instant) -> Vec<Vec<u8>> {
        self.changed();
        if !mac.is_unicast() || ip.is_unspecified() || ip.is_broadcast() {
            return Vec::new();
        }
        let new = State::Known {
            mac,
            confirmed: now,
            last_request: None,
        };
        match self.entries.get_mut(&ip) {
            Some(state @ State::Incomplete { .. }) => {
                let old = core::mem::replace(state, new);
                self.stats.resolved += 1;
                match old {
                    State::Incomplete { pending, .. } => pending.into(),
                    State::Known { .. } => Vec::new(),
                }
            }
            Some(State::Known { confirmed, .. }) if *confirmed == Instant::MAX => Vec::new(),
            Some(state @ State::Known { .. }) => {
                if let State::Known { mac: old, .. } = state {
                    if *old != mac {
                        self.stats.resolved += 1;
                    }
                }
                *state = new;
                Vec::new()
            }
            None => {
                if self.entries.len() >= self.config.capacity {
                    self.stats.table_full += 1;
                } else {
                    self.stats.resolved += 1;
                    self.entries.insert(ip, new);
                }
                Vec::new()
            }
        }
    }

    /// Learns `ip` at `mac` from an IPv4 frame it sent us, only when nothing
    /// better is known (no entry, or a resolution in progress): a received SYN
    /// carries the MAC its answer goes to. With one engine per RX queue this also
    /// covers an ARP reply that landed on another queue. A known entry is never
    /// overwritten this way (only ARP changes it). Returns the frames released.
    pub fn learn_if_unknown(
        &mut self,
        ip: Ipv4Addr,
        mac: EthernetAddress,
        now: Instant,
    ) -> Vec<Vec<u8>> {
        if self.is_last_resolved(ip, mac) {
            return Vec::new();
        }
        match self.entries.get(&ip) {
            Some(State::Known { .. }) => Vec::new(),
            _ => self.learn(ip, mac, now),
        }
    }

    /// True when `ip` is the neighbour last resolved, at `mac`: known, nothing to
    /// learn (one comparison: the peer of the frame just received, usually).
    #[inline]
    pub fn is_last_resolved(&self, ip: Ipv4Addr, mac: EthernetAddress) -> bool {
        self.last.is_some_and(|(l, m, _)| l == ip && m == mac)
    }

    /// Updates an existing entry only (RFC 826: a request not for us refreshes
    /// what we already have, but adds nothing).
    pub fn refresh_if_known(
        &mut self,
        ip: Ipv4Addr,
        mac: EthernetAddress,
        now: Instant,
    ) -> Vec<Vec<u8>> {
        if self.entries.contains_key(&ip) {
            self.learn(ip, mac, now)
        } else {
            Vec::new()
        }
    }

    /// Retransmits requests and expires entries; call when [`poll_at`](Self::poll_at) is due.
    pub fn poll(&mut self, now: Instant) -> NeighborPoll {
        self.changed();
        let config = self.config;
        let mut out = NeighborPoll::default();
        let stats = &mut self.stats;
        self.entries.retain(|ip, state| match state {
            State::Incomplete {
                probes,
                last_request,
                pending,
            } => {
                if now - *last_request < config.retrans_time {
                    return true;
                }
                if *probes >= config.max_probes {
                    stats.failed += 1;
                    stats.pending_dropped += pending.len() as u64;
                    out.failed.push(*ip);
                    return false;
                }
                *probes += 1;
                *last_request = now;
                stats.requests += 1;
                out.requests.push(*ip);
                true
            }
            State::Known { confirmed, .. } => {
                *confirmed == Instant::MAX
                    || now - *confirmed <= config.reachable_time + config.stale_time
            }
        });
        out
    }

    /// When the cache next needs [`poll`](Self::poll).
    pub fn poll_at(&self) -> Option<Instant> {
        self.entries
            .values()
            .filter_map(|s| match s {
                State::Incomplete { last_request, .. } => {
                    Some(*last_request + self.config.retrans_time)
                }
                State::Known { confirmed, .. } if *confirmed != Instant::MAX => {
                    Some(*confirmed + self.config.reachable_time + self.config.stale_time)
                }
                State::Known { .. } => None,
            })
            .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: EthernetAddress = EthernetAddress([2, 0, 0, 0, 0, 2]);

    fn ip(last: u8) -> Ipv4Addr {
        Ipv4Addr::new(198, 18, 0, last)
    }

    fn t(ms: u64) -> Instant {
        Instant::from_millis(ms)
    }

    #[test]
    fn the_remembered_answer_follows_changes_and_staleness() {
        let cfg = NeighborConfig::default();
        let mut c = NeighborCache::new(cfg);
        c.resolve(ip(2), t(0));
        c.learn(ip(2), MAC, t(1));
        assert_eq!(c.resolve(ip(2), t(2)), Resolution::Known(MAC));
        assert_eq!(c.resolve(ip(2), t(3)), Resolution::Known(MAC), "remembered");
        // The neighbour moves to another MAC: the next answer has it.
        let other = EthernetAddress([2, 0, 0, 0, 0, 9]);
        c.learn(ip(2), other, t(4));
        assert_eq!(c.resolve(ip(2), t(5)), Resolution::Known(other));
        // Past the reachable time, the remembered answer is not used: the entry
        // is revalidated as without it.
        let later = t(4) + cfg.reachable_time + core::time::Duration::from_millis(1);
        assert_eq!(c.resolve(ip(2), later), Resolution::KnownRefresh(other));
        // Another address is looked up in the table.
        assert_eq!(c.resolve(ip(3), t(6)), Resolution::Request);
    }

    #[test]
    fn unknown_neighbour_is_requested_once_then_waits() {
        let mut c = NeighborCache::new(NeighborConfig::default());
        assert_eq!(c.resolve(ip(2), t(0)), Resolution::Request);
        assert_eq!(c.resolve(ip(2), t(10)), Resolution::Waiting);
        assert_eq!(c.stats().requests, 1);
    }

    #[test]
    fn answer_releases_waiting_frames_in_order() {
        let mut c = NeighborCache::new(NeighborConfig::default());
        c.resolve(ip(2), t(0));
        assert!(c.enqueue(ip(2), b"one"));
        assert!(c.enqueue(ip(2), b"two"));
        let released = c.learn(ip(2), MAC, t(5));
        assert_eq!(released, vec![b"one".to_vec(), b"two".to_vec()]);
        assert_eq!(c.resolve(ip(2), t(6)), Resolution::Known(MAC));
        assert_eq!(c.stats().resolved, 1);
    }

    #[test]
    fn pending_queue_is_bounded_like_linux_unres_qlen() {
        let config = NeighborConfig {
            max_pending: 3,
            ..NeighborConfig::default()
        };
        let mut c = NeighborCache::new(config);
        c.resolve(ip(2), t(0));
        for _ in 0..3 {
            assert!(c.enqueue(ip(2), b"x"));
        }
        assert!(!c.enqueue(ip(2), b"x"));
        assert_eq!(c.stats().pending_dropped, 1);
        // Nothing is queued for an address that is not being resolved.
        assert!(!c.enqueue(ip(9), b"x"));
    }

    #[test]
    fn unanswered_neighbour_is_retried_then_given_up() {
        let mut c = NeighborCache::new(NeighborConfig::default());
        c.resolve(ip(2), t(0));
        c.enqueue(ip(2), b"x");
        assert!(c.poll(t(500)).requests.is_empty());
        assert_eq!(c.poll(t(1000)).requests, vec![ip(2)]);
        assert_eq!(c.poll(t(2000)).requests, vec![ip(2)]);
        let p = c.poll(t(3000));
        assert_eq!(p.failed, vec![ip(2)]);
        assert_eq!(c.stats().failed, 1);
        assert_eq!(c.stats().pending_dropped, 1);
        assert_eq!(c.stats().requests, 3);
        assert!(c.is_empty());
        // A later lookup starts over.
        assert_eq!(c.resolve(ip(2), t(3001)), Resolution::Request);
    }

    #[test]
    fn stale_entries_are_used_while_revalidated_then_expire() {
        let mut c = NeighborCache::new(NeighborConfig::default());
        c.learn(ip(2), MAC, t(0));
        assert_eq!(c.resolve(ip(2), t(31_000)), Resolution::KnownRefresh(MAC));
        // One refresh per retransmit interval, not one per packet.
        assert_eq!(c.resolve(ip(2), t(31_100)), Resolution::Known(MAC));
        assert_eq!(c.resolve(ip(2), t(32_000)), Resolution::KnownRefresh(MAC));
        assert_eq!(c.poll_at(), Some(t(90_000)));
        c.poll(t(90_001));
        assert!(c.is_empty());
    }

    #[test]
    fn capacity_is_enforced_and_counted() {
        let config = NeighborConfig {
            capacity: 2,
            ..NeighborConfig::default()
        };
        let mut c = NeighborCache::new(config);
        assert_eq!(c.resolve(ip(1), t(0)), Resolution::Request);
        c.learn(ip(2), MAC, t(0));
        assert_eq!(c.resolve(ip(3), t(0)), Resolution::Full);
        c.learn(ip(4), MAC, t(0));
        assert_eq!(c.stats().table_full, 2);
        assert_eq!(c.len(), 2);
    }

    #[test]
    fn bogus_answers_are_ignored() {
        let mut c = NeighborCache::new(NeighborConfig::default());
        c.learn(ip(2), EthernetAddress::BROADCAST, t(0));
        c.learn(Ipv4Addr::UNSPECIFIED, MAC, t(0));
        assert!(c.is_empty());
    }

    #[test]
    fn static_entries_never_expire_nor_change() {
        let mut c = NeighborCache::new(NeighborConfig::default());
        c.insert_static(ip(2), MAC);
        c.learn(ip(2), EthernetAddress([2, 9, 9, 9, 9, 9]), t(1));
        c.poll(t(10_000_000));
        assert_eq!(c.resolve(ip(2), t(10_000_000)), Resolution::Known(MAC));
        assert_eq!(c.poll_at(), None);
    }

    #[test]
    fn frames_teach_unknown_neighbours_but_never_override_known_ones() {
        let mut c = NeighborCache::new(NeighborConfig::default());
        assert_eq!(c.resolve(ip(2), t(0)), Resolution::Request);
        c.enqueue(ip(2), b"syn-ack");
        assert_eq!(
            c.learn_if_unknown(ip(2), MAC, t(1)),
            vec![b"syn-ack".to_vec()]
        );
        let other = EthernetAddress([2, 0, 0, 0, 0, 9]);
        c.learn_if_unknown(ip(2), other, t(2));
        assert_eq!(c.resolve(ip(2), t(3)), Resolution::Known(MAC));
        c.learn_if_unknown(ip(3), other, t(4));
        assert_eq!(c.resolve(ip(3), t(5)), Resolution::Known(other));
    }

    #[test]
    fn requests_for_strangers_only_refresh_known_entries() {
        let mut c = NeighborCache::new(NeighborConfig::default());
        c.refresh_if_known(ip(2), MAC, t(0));
        assert!(c.is_empty());
        c.learn(ip(2), MAC, t(0));
        let other = EthernetAddress([2, 0, 0, 0, 0, 7]);
        c.refresh_if_known(ip(2), other, t(1));
        assert_eq!(c.resolve(ip(2), t(2)), Resolution::Known(other));
    }
}

//! [`ConnTable`]: established connections by 4-tuple (Linux `inet_ehash`,
//! 4.4BSD `in_pcblookup` over `tcb`), one per core, bounded.
//!
//! Keys come from the wire, so the table hashes with keyed SipHash (STYLE.md habit
//! 6). The table reserves room for twice its capacity up front, and never grows:
//! lookups never allocate, and neither do inserts and removes, however they churn
//! (std's hashbrown rehashes in place, without allocating, while the table is at
//! most half full; a table reserved for only `capacity` entries would instead grow
//! to clear its tombstones). Beyond the capacity an insert fails with ENOBUFS, is
//! counted, and leaves every existing entry alone.

use std::collections::HashMap;

use super::{HashKey, KeyedState, reciprocal_scale};
use crate::{Errno, FourTuple};

/// Refusals and traffic, plain integers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConnCounters {
    /// Entries inserted.
    pub inserted: u64,
    /// Entries removed.
    pub removed: u64,
    /// Inserts refused because the table was full (ENOBUFS).
    pub refused_full: u64,
    /// Inserts refused because the 4-tuple was already there (EADDRINUSE).
    pub refused_duplicate: u64,
}

/// A refused insert: why, and the value handed back to the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnInsertError<V> {
    /// ENOBUFS (table full) or EADDRINUSE (4-tuple present).
    pub errno: Errno,
    /// The value that was not inserted.
    pub value: V,
}

/// Established connections of one core, keyed by 4-tuple, holding `V` (a slot
/// index or a control block).
#[derive(Debug, Clone)]
pub struct ConnTable<V> {
    map: HashMap<FourTuple, V, KeyedState>,
    capacity: usize,
    /// Refusals and traffic.
    pub counters: ConnCounters,
}

impl<V> ConnTable<V> {
    /// A table for at most `capacity` connections, hashing with `key`; its memory
    /// is reserved now. ENOMEM if it cannot be (also for absurd capacities).
    pub fn new(capacity: usize, key: HashKey) -> Result<Self, Errno> {
        let mut map = HashMap::with_hasher(key.state());
        map.try_reserve(capacity.checked_mul(2).ok_or(Errno::ENOMEM)?)
            .map_err(|_| Errno::ENOMEM)?;
        Ok(ConnTable {
            map,
            capacity,
            counters: ConnCounters::default(),
        })
    }

    /// How many entries the reserved memory holds without growing (at least twice
    /// [`ConnTable::capacity`]; hashbrown counts tombstones against it until it
    /// rehashes in place, so this may dip, but it never rises after `new`).
    pub fn reserved(&self) -> usize {
        self.map.capacity()
    }

    /// The most connections this table holds.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// How many connections it holds.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// True when it holds none.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// True when an insert of a new 4-tuple would be refused.
    pub fn is_full(&self) -> bool {
        self.map.len() >= self.capacity
    }

    /// Add a connection. A present 4-tuple is EADDRINUSE (the existing entry is
    /// kept), a full table ENOBUFS; both are counted and hand `value` back.
    pub fn insert(&mut self, tuple: FourTuple, value: V) -> Result<(), ConnInsertError<V>> {
        // Not `entry()`: it reserves room for one more entry before it looks, which
        // could grow a table that is about to refuse the insert.
        if self.map.contains_key(&tuple) {
            self.counters.refused_duplicate += 1;
            return Err(ConnInsertError {
                errno: Errno::EADDRINUSE,
                value,
            });
        }
        if self.map.len() >= self.capacity {
            self.counters.refused_full += 1;
            return Err(ConnInsertError {
                errno: Errno::ENOBUFS,
                value,
            });
        }
        self.map.insert(tuple, value);
        self.counters.inserted += 1;
        Ok(())
    }

    /// The connection for `tuple`.
    pub fn get(&self, tuple: &FourTuple) -> Option<&V> {
        self.map.get(tuple)
    }

    /// The connection for `tuple`, mutably.
    pub fn get_mut(&mut self, tuple: &FourTuple) -> Option<&mut V> {
        self.map.get_mut(tuple)
    }

    /// Whether `tuple` names a connection here.
    pub fn contains(&self, tuple: &FourTuple) -> bool {
        self.map.contains_key(tuple)
    }

    /// Remove and return the connection for `tuple`.
    pub fn remove(&mut self, tuple: &FourTuple) -> Option<V> {
        let removed = self.map.remove(tuple);
        if removed.is_some() {
            self.counters.removed += 1;
        }
        removed
    }

    /// Every connection, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&FourTuple, &V)> {
        self.map.iter()
    }
}

/// Which of `n_shards` shards (cores) owns `tuple`, by keyed hash: stable for a
/// flow, spread evenly, not steerable by a peer who lacks `key`. Returns 0 when
/// `n_shards` is 0.
///
/// The engine uses this for passive opens it must place itself; active opens
/// belong to the core whose ephemeral slice holds the local port
/// ([`super::EphemeralRange::core_of_port`]), and where the NIC's RSS is known
/// the queue from [`super::Rss`] decides.
pub fn shard_of(tuple: &FourTuple, n_shards: usize, key: &HashKey) -> usize {
    let n = u32::try_from(n_shards).unwrap_or(u32::MAX);
    reciprocal_scale(key.hash_one(tuple) as u32, n) as usize
}

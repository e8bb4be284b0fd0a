//! [`ConnTable`]: connections by 4-tuple (Linux `inet_ehash`, 4.4BSD `in_pcblookup`
//! over `tcb`), one per core, sized for millions and growing without a pause.
//!
//! Keys come from the wire, so the table hashes with a keyed hash
//! ([`super::keyed_hash`], STYLE.md habit 6).
//!
//! # How it grows: linear hashing
//!
//! A `HashMap` doubles by rehashing every entry at once: at a million entries that is
//! a stop of milliseconds, which shows in p99. This table is a chained hash table that
//! grows by *linear hashing* (Litwin, 1980): when the average chain passes
//! [`MAX_LOAD`], one bucket (the one under the split pointer) is split in two, its
//! entries moved to itself or to its new sibling by one more hash bit. Every insert
//! does at most one split, so the work of one insert is bounded by one chain, whatever
//! the size. Nothing is ever copied wholesale either:
//! - entries live in fixed segments of [`SLOTS_PER_SEGMENT`] slots that never move; a
//!   new segment is allocated (not zeroed) when the previous one is used up, and freed
//!   slots are reused first, so churn allocates nothing;
//! - bucket heads live in fixed segments of [`BUCKETS_PER_SEGMENT`] `u32`s; a split that
//!   reaches past the last one allocates one more (4 KiB).
//!
//! The table never shrinks (nor does Linux's `ehash`); a removed entry's slot goes on
//! a free list.
//!
//! # Limits
//!
//! Two bounds, both from configuration: at most `capacity` entries, and at most
//! `max_bytes` of table memory (slots and bucket heads, as [`ConnTable::memory_bytes`]
//! counts them). An insert past either is ENOBUFS, counted by reason, and leaves every
//! existing entry alone; an allocator refusal is ENOBUFS as well (counted as memory).

use core::cell::Cell;

use super::keyed_hash::TwoWordHasher;
use super::{HashKey, reciprocal_scale};
use crate::{Errno, FourTuple};

/// Bucket heads in one directory segment (and the initial bucket count).
pub const BUCKETS_PER_SEGMENT: usize = 1024;
/// Entry slots in one slab segment.
pub const SLOTS_PER_SEGMENT: usize = 4096;
/// Average chain length that triggers a bucket split.
pub const MAX_LOAD: usize = 1;
/// Largest `capacity` a table accepts (slot indices are `u32`, one value is the sentinel).
pub const MAX_CAPACITY: usize = (u32::MAX - 1) as usize;

/// End of a chain or of the free list.
const NIL: u32 = u32::MAX;

/// The tuple [`ConnTable`]'s one-entry cache holds when it holds nothing (with the
/// index `NIL`, which is what says so).
const NO_TUPLE: FourTuple = FourTuple {
    local_addr: core::net::Ipv4Addr::UNSPECIFIED,
    local_port: 0,
    remote_addr: core::net::Ipv4Addr::UNSPECIFIED,
    remote_port: 0,
};

/// Refusals and traffic, plain integers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConnCounters {
    /// Entries inserted.
    pub inserted: u64,
    /// Entries removed.
    pub removed: u64,
    /// Inserts refused because the table held `capacity` entries (ENOBUFS).
    pub refused_full: u64,
    /// Inserts refused because more memory would pass `max_bytes`, or the allocator
    /// said no (ENOBUFS).
    pub refused_memory: u64,
    /// Inserts refused because the 4-tuple was already there (EADDRINUSE).
    pub refused_duplicate: u64,
    /// Buckets split (each moves one chain).
    pub splits: u64,
}

/// A refused insert: why, and the value handed back to the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnInsertError<V> {
    /// ENOBUFS (a limit was reached) or EADDRINUSE (4-tuple present).
    pub errno: Errno,
    /// The value that was not inserted.
    pub value: V,
}

/// Sizing of a [`ConnTable`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnTableConfig {
    /// The most entries it holds.
    pub capacity: usize,
    /// The most bytes of table memory (slots and bucket heads) it may use.
    pub max_bytes: usize,
}

impl ConnTableConfig {
    /// Up to `capacity` entries, memory bounded only by what they need.
    pub const fn entries(capacity: usize) -> Self {
        ConnTableConfig {
            capacity,
            max_bytes: usize::MAX,
        }
    }
}

/// One entry slot: key, cached hash, chain link, and the value (`None` when free).
#[derive(Debug, Clone)]
struct Slot<V> {
    tuple: FourTuple,
    hash: u32,
    next: u32,
    value: Option<V>,
}

/// Connections of one core, keyed by 4-tuple, holding `V` (a slot index, a
/// TIME-WAIT record, a request record).
#[derive(Debug, Clone)]
pub struct ConnTable<V> {
    /// The keyed hash of a tuple, its multipliers derived once from the key.
    hasher: TwoWordHasher,
    config: ConnTableConfig,
    /// Slab of entries, in segments that never move.
    slots: Vec<Vec<Slot<V>>>,
    /// Head of the free-slot list.
    free: u32,
    /// Bucket heads (slot index or `NIL`), in segments of `BUCKETS_PER_SEGMENT`.
    dir: Vec<Box<[u32]>>,
    /// Buckets before the current round of splits: `BUCKETS_PER_SEGMENT << level`.
    round: usize,
    /// Next bucket to split, `< round`.
    split: usize,
    len: usize,
    /// The tuple [`ConnTable::get`] last found and its slot (`NIL` for none): a
    /// one-entry cache in front of the hash, as 4.4BSD's `tcp_last_inpcb` in front of
    /// `in_pcblookup` (TCP/IP Illustrated vol. 2, §28.4). A connection's segments
    /// tend to come in runs (a burst of one flow, the one connection of a
    /// request/response client), and a hit skips the hash and the chain; a miss
    /// costs a compare of the tuple. [`ConnTable::remove`] forgets it, so the slot it
    /// names always holds that tuple and its value.
    last: Cell<(FourTuple, u32)>,
    /// Refusals and traffic.
    pub counters: ConnCounters,
}

impl<V> ConnTable<V> {
    /// A table for at most `capacity` connections, hashing with `key`. It starts at
    /// one segment of buckets and grows as entries arrive. ENOMEM for a capacity beyond
    /// [`MAX_CAPACITY`] or when the first bucket segment cannot be allocated.
    pub fn new(capacity: usize, key: HashKey) -> Result<Self, Errno> {
        Self::with_config(ConnTableConfig::entries(capacity), key)
    }

    /// A table bounded by `config` (entries and bytes), hashing with `key`.
    pub fn with_config(config: ConnTableConfig, key: HashKey) -> Result<Self, Errno> {
        if config.capacity > MAX_CAPACITY {
            return Err(Errno::ENOMEM);
        }
        let mut table = ConnTable {
            hasher: TwoWordHasher::new(key),
            config,
            slots: Vec::new(),
            free: NIL,
            dir: Vec::new(),
            round: BUCKETS_PER_SEGMENT,
            split: 0,
            len: 0,
            last: Cell::new((NO_TUPLE, NIL)),
            counters: ConnCounters::default(),
        };
        table.push_bucket_segment().map_err(|_| Errno::ENOMEM)?;
        Ok(table)
    }

    /// The most connections this table holds.
    pub fn capacity(&self) -> usize {
        self.config.capacity
    }

    /// The sizing it was built with.
    pub fn config(&self) -> ConnTableConfig {
        self.config
    }

    /// How many connections it holds.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when it holds none.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// True when an insert of a new 4-tuple would be refused for the entry bound.
    pub fn is_full(&self) -> bool {
        self.len >= self.config.capacity
    }

    /// Buckets in use (grows by one per split).
    pub fn buckets(&self) -> usize {
        self.round + self.split
    }

    /// Bytes of table memory: slot segments and bucket segments at their allocated
    /// size, plus the two segment directories.
    pub fn memory_bytes(&self) -> usize {
        let slots: usize = self
            .slots
            .iter()
            .map(|s| s.capacity() * core::mem::size_of::<Slot<V>>())
            .sum();
        let buckets = self.dir.len() * BUCKETS_PER_SEGMENT * core::mem::size_of::<u32>();
        let directories = self.slots.capacity() * core::mem::size_of::<Vec<Slot<V>>>()
            + self.dir.capacity() * core::mem::size_of::<Box<[u32]>>();
        slots + buckets + directories
    }

    /// Bytes one entry slot takes (the table's cost per connection, beside the buckets).
    pub const fn slot_bytes() -> usize {
        core::mem::size_of::<Slot<V>>()
    }

    #[inline(always)]
    fn hash(&self, tuple: &FourTuple) -> u32 {
        // The tuple as `FourTuple`'s `Hash` writes it, so the value is the one
        // `HashKey::hash_one` gives: (local addr, remote addr), (local port,
        // remote port).
        let addrs =
            u64::from(tuple.local_addr.to_bits()) << 32 | u64::from(tuple.remote_addr.to_bits());
        let ports = u32::from(tuple.local_port) << 16 | u32::from(tuple.remote_port);
        // Truncation intended: 32 bits address up to 2^32 buckets.
        self.hasher.hash(addrs, ports) as u32
    }

    /// Linear hashing's address: the low bits of the hash for this round, one bit more
    /// for buckets already split.
    fn bucket_of(&self, hash: u32) -> usize {
        let h = hash as usize;
        let b = h & (self.round - 1);
        if b < self.split {
            h & (2 * self.round - 1)
        } else {
            b
        }
    }

    fn head(&self, bucket: usize) -> u32 {
        self.dir[bucket / BUCKETS_PER_SEGMENT][bucket % BUCKETS_PER_SEGMENT]
    }

    fn head_mut(&mut self, bucket: usize) -> &mut u32 {
        &mut self.dir[bucket / BUCKETS_PER_SEGMENT][bucket % BUCKETS_PER_SEGMENT]
    }

    fn slot(&self, index: u32) -> &Slot<V> {
        let i = index as usize;
        &self.slots[i / SLOTS_PER_SEGMENT][i % SLOTS_PER_SEGMENT]
    }

    fn slot_mut(&mut self, index: u32) -> &mut Slot<V> {
        let i = index as usize;
        &mut self.slots[i / SLOTS_PER_SEGMENT][i % SLOTS_PER_SEGMENT]
    }

    fn find(&self, tuple: &FourTuple) -> Option<u32> {
        self.find_hashed(self.hash(tuple), tuple).map(|(at, _)| at)
    }

    /// The slot of `tuple`, whose hash is `hash`, and its index: its bucket's chain
    /// walked. The entry matched comes back with its index, so that no caller looks
    /// the slot up again by index.
    #[inline(always)]
    fn find_hashed(&self, hash: u32, tuple: &FourTuple) -> Option<(u32, &Slot<V>)> {
        let mut at = self.head(self.bucket_of(hash));
        while at != NIL {
            let slot = self.slot(at);
            if slot.hash == hash && slot.tuple == *tuple {
                return Some((at, slot));
            }
            at = slot.next;
        }
        None
    }

    /// The hash [`ConnTable::prefetch_bucket`] and [`ConnTable::prefetch_entry`] take.
    pub fn hash_of(&self, tuple: &FourTuple) -> u32 {
        self.hash(tuple)
    }

    /// Prefetches the bucket head a lookup of `hash` reads first.
    pub fn prefetch_bucket(&self, hash: u32) {
        let bucket = self.bucket_of(hash);
        if let Some(head) = self
            .dir
            .get(bucket / BUCKETS_PER_SEGMENT)
            .and_then(|segment| segment.get(bucket % BUCKETS_PER_SEGMENT))
        {
            surge_datapath::prefetch::prefetch(head);
        }
    }

    /// Reads the bucket head of `hash` (best prefetched first) and prefetches the
    /// first entry of its chain.
    pub fn prefetch_entry(&self, hash: u32) {
        let at = self.head(self.bucket_of(hash));
        if at != NIL {
            surge_datapath::prefetch::prefetch(self.slot(at));
        }
    }

    /// The value under `tuple` whose hash is `hash` (from [`ConnTable::hash_of`]).
    #[inline(always)]
    pub fn get_hashed(&self, hash: u32, tuple: &FourTuple) -> Option<&V> {
        self.find_hashed(hash, tuple)?.1.value.as_ref()
    }

    /// Would `extra` more bytes keep the table within `max_bytes`?
    fn within_budget(&self, extra: usize) -> bool {
        self.memory_bytes()
            .checked_add(extra)
            .is_some_and(|total| total <= self.config.max_bytes)
    }

    fn push_bucket_segment(&mut self) -> Result<(), ()> {
        self.dir.try_reserve(1).map_err(|_| ())?;
        let mut heads = Vec::new();
        heads
            .try_reserve_exact(BUCKETS_PER_SEGMENT)
            .map_err(|_| ())?;
        heads.resize(BUCKETS_PER_SEGMENT, NIL);
        self.dir.push(heads.into_boxed_slice());
        Ok(())
    }

    /// A free slot index, from the free list or the slab's tail (a new segment when the
    /// last is full and the budget allows).
    fn take_slot(&mut self, tuple: FourTuple, hash: u32, value: V) -> Result<u32, V> {
        if self.free != NIL {
            let index = self.free;
            let slot = self.slot_mut(index);
            let next_free = slot.next;
            slot.tuple = tuple;
            slot.hash = hash;
            slot.value = Some(value);
            self.free = next_free;
            return Ok(index);
        }
        let need_segment = self.slots.last().is_none_or(|s| s.len() == s.capacity());
        if need_segment {
            let bytes = SLOTS_PER_SEGMENT * core::mem::size_of::<Slot<V>>()
                + core::mem::size_of::<Vec<Slot<V>>>();
            if !self.within_budget(bytes) || self.slots.try_reserve(1).is_err() {
                return Err(value);
            }
            let mut segment = Vec::new();
            if segment.try_reserve_exact(SLOTS_PER_SEGMENT).is_err() {
                return Err(value);
            }
            self.slots.push(segment);
        }
        let segment_index = self.slots.len() - 1;
        let segment = &mut self.slots[segment_index];
        let index = segment_index * SLOTS_PER_SEGMENT + segment.len();
        segment.push(Slot {
            tuple,
            hash,
            next: NIL,
            value: Some(value),
        });
        // In range: index < capacity <= MAX_CAPACITY < u32::MAX.
        Ok(index as u32)
    }

    /// Add a connection. A present 4-tuple is EADDRINUSE (the existing entry is kept);
    /// a table at `capacity` entries or at `max_bytes` is ENOBUFS; all are counted and
    /// hand `value` back.
    pub fn insert(&mut self, tuple: FourTuple, value: V) -> Result<(), ConnInsertError<V>> {
        if self.find(&tuple).is_some() {
            self.counters.refused_duplicate += 1;
            return Err(ConnInsertError {
                errno: Errno::EADDRINUSE,
                value,
            });
        }
        if self.len >= self.config.capacity {
            self.counters.refused_full += 1;
            return Err(ConnInsertError {
                errno: Errno::ENOBUFS,
                value,
            });
        }
        let hash = self.hash(&tuple);
        let index = match self.take_slot(tuple, hash, value) {
            Ok(index) => index,
            Err(value) => {
                self.counters.refused_memory += 1;
                return Err(ConnInsertError {
                    errno: Errno::ENOBUFS,
                    value,
                });
            }
        };
        let bucket = self.bucket_of(hash);
        let head = self.head(bucket);
        self.slot_mut(index).next = head;
        *self.head_mut(bucket) = index;
        self.len += 1;
        self.counters.inserted += 1;
        if self.len > self.buckets() * MAX_LOAD {
            self.split_one();
        }
        Ok(())
    }

    /// Splits the bucket under the split pointer: its entries stay or move to bucket
    /// `split + round` by one more bit of their hash. Skipped (chains just grow longer)
    /// when the new bucket's segment cannot be had within the budget.
    fn split_one(&mut self) {
        let sibling = self.split + self.round;
        if sibling / BUCKETS_PER_SEGMENT >= self.dir.len() {
            let bytes = BUCKETS_PER_SEGMENT * core::mem::size_of::<u32>()
                + core::mem::size_of::<Box<[u32]>>();
            if !self.within_budget(bytes) || self.push_bucket_segment().is_err() {
                return;
            }
        }
        let mask = 2 * self.round - 1;
        let mut at = core::mem::replace(self.head_mut(self.split), NIL);
        let (mut stay, mut moved) = (NIL, NIL);
        while at != NIL {
            let slot = self.slot_mut(at);
            let next = slot.next;
            if slot.hash as usize & mask == sibling {
                slot.next = moved;
                moved = at;
            } else {
                slot.next = stay;
                stay = at;
            }
            at = next;
        }
        *self.head_mut(self.split) = stay;
        *self.head_mut(sibling) = moved;
        self.split += 1;
        if self.split == self.round {
            self.round *= 2;
            self.split = 0;
        }
        self.counters.splits += 1;
    }

    /// The connection for `tuple`. Always inlined: it is the lookup of every received
    /// segment, and a call of its own cost as much as the hash.
    #[inline(always)]
    pub fn get(&self, tuple: &FourTuple) -> Option<&V> {
        let (last, at) = self.last.get();
        if last == *tuple && at != NIL {
            return self.slot(at).value.as_ref();
        }
        let (at, slot) = self.find_hashed(self.hash(tuple), tuple)?;
        self.last.set((*tuple, at));
        slot.value.as_ref()
    }

    /// The connection for `tuple`, mutably.
    pub fn get_mut(&mut self, tuple: &FourTuple) -> Option<&mut V> {
        let at = self.find(tuple)?;
        self.slot_mut(at).value.as_mut()
    }

    /// Whether `tuple` names a connection here.
    pub fn contains(&self, tuple: &FourTuple) -> bool {
        self.find(tuple).is_some()
    }

    /// Remove and return the connection for `tuple`; its slot goes on the free list.
    pub fn remove(&mut self, tuple: &FourTuple) -> Option<V> {
        let hash = self.hash(tuple);
        let bucket = self.bucket_of(hash);
        let mut prev = NIL;
        let mut at = self.head(bucket);
        while at != NIL {
            let slot = self.slot(at);
            let next = slot.next;
            if slot.hash == hash && slot.tuple == *tuple {
                if self.last.get().0 == *tuple {
                    self.last.set((NO_TUPLE, NIL));
                }
                if prev == NIL {
                    *self.head_mut(bucket) = next;
                } else {
                    self.slot_mut(prev).next = next;
                }
                let free = self.free;
                let slot = self.slot_mut(at);
                slot.next = free;
                let value = slot.value.take();
                self.free = at;
                self.len -= 1;
                self.counters.removed += 1;
                return value;
            }
            prev = at;
            at = next;
        }
        None
    }

    /// Every connection, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&FourTuple, &V)> {
        self.slots
            .iter()
            .flatten()
            .filter_map(|s| s.value.as_ref().map(|v| (&s.tuple, v)))
    }

    /// The longest chain (a test and diagnostics aid; walks every bucket).
    pub fn longest_chain(&self) -> usize {
        (0..self.buckets())
            .map(|b| {
                let mut n = 0;
                let mut at = self.head(b);
                while at != NIL {
                    n += 1;
                    at = self.slot(at).next;
                }
                n
            })
            .max()
            .unwrap_or(0)
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

#[cfg(test)]
mod tests {
    use super::*;
    use core::net::{Ipv4Addr, SocketAddrV4};

    fn tuple(i: u32) -> FourTuple {
        FourTuple::new(
            SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 1), 80),
            SocketAddrV4::new(Ipv4Addr::from_bits(0xc613_0000 | (i >> 16)), i as u16),
        )
    }

    #[test]
    fn grows_by_splitting_one_bucket_per_insert_and_keeps_every_entry() {
        let mut t = ConnTable::new(100_000, HashKey::new(1, 2)).unwrap();
        for i in 0..100_000u32 {
            let splits = t.counters.splits;
            t.insert(tuple(i), i).unwrap();
            assert!(
                t.counters.splits - splits <= 1,
                "one split at most per insert"
            );
        }
        assert!(t.buckets() * MAX_LOAD >= t.len());
        // An unsplit bucket holds about 4 on average; the longest of ~25,000 such
        // Poisson(4) chains exceeds 20 with probability about 4e-5 under a random
        // hash (keys 1..30 gave 11 to 16 here), while a hash that ignored the port
        // would chain thousands.
        assert!(
            t.longest_chain() <= 20,
            "chains stay short: {}",
            t.longest_chain()
        );
        for i in 0..100_000u32 {
            assert_eq!(t.get(&tuple(i)), Some(&i));
        }
        for i in (0..100_000u32).step_by(2) {
            assert_eq!(t.remove(&tuple(i)), Some(i));
        }
        for i in 0..100_000u32 {
            assert_eq!(t.get(&tuple(i)).is_some(), i % 2 == 1);
        }
    }

    #[test]
    fn freed_slots_are_reused_before_new_memory() {
        let mut t = ConnTable::new(1 << 20, HashKey::new(3, 4)).unwrap();
        for i in 0..10_000u32 {
            t.insert(tuple(i), i).unwrap();
        }
        let bytes = t.memory_bytes();
        for i in 10_000..200_000u32 {
            assert_eq!(t.remove(&tuple(i - 10_000)), Some(i - 10_000));
            t.insert(tuple(i), i).unwrap();
        }
        assert_eq!(
            t.memory_bytes(),
            bytes,
            "churn at a steady count allocates nothing"
        );
        assert_eq!(t.len(), 10_000);
    }

    #[test]
    fn memory_limit_is_enobufs_and_existing_entries_stay() {
        let config = ConnTableConfig {
            capacity: 1 << 20,
            max_bytes: 64 * 1024 + 4 * SLOTS_PER_SEGMENT * ConnTable::<u32>::slot_bytes(),
        };
        let mut t = ConnTable::with_config(config, HashKey::new(5, 6)).unwrap();
        let mut n = 0u32;
        while t.insert(tuple(n), n).is_ok() {
            n += 1;
            assert!(n < 1 << 20, "the byte limit must stop it first");
        }
        assert!(t.memory_bytes() <= config.max_bytes);
        assert!(n as usize >= 3 * SLOTS_PER_SEGMENT, "{n} entries fit");
        let err = t.insert(tuple(n), n).unwrap_err();
        assert_eq!(err.errno, Errno::ENOBUFS);
        assert_eq!(t.counters.refused_memory, 2);
        assert_eq!(t.counters.refused_full, 0);
        for i in 0..n {
            assert_eq!(t.get(&tuple(i)), Some(&i));
        }
        // Room made by a removal is used again.
        t.remove(&tuple(0));
        t.insert(tuple(n), n).unwrap();
    }
}

//! ConnTable against a HashMap model, its bounds, and shard selection.

use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddrV4};

use proptest::prelude::*;
use surge_stack::table::{ConnTable, HashKey, shard_of};
use surge_stack::{Errno, FourTuple};

fn tuple(local_port: u16, remote_last: u8, remote_port: u16) -> FourTuple {
    FourTuple::new(
        SocketAddrV4::new(Ipv4Addr::new(198, 18, 0, 1), local_port),
        SocketAddrV4::new(Ipv4Addr::new(198, 19, 0, remote_last), remote_port),
    )
}

#[derive(Debug, Clone)]
enum Op {
    Insert(FourTuple, u32),
    Remove(FourTuple),
    Get(FourTuple),
    Mutate(FourTuple, u32),
}

fn small_tuple() -> impl Strategy<Value = FourTuple> {
    // A small domain so inserts collide, removes hit and lookups miss.
    (0u16..4, 0u8..3, 0u16..4).prop_map(|(l, r, p)| tuple(40000 + l, r, 50000 + p))
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (small_tuple(), any::<u32>()).prop_map(|(t, v)| Op::Insert(t, v)),
        small_tuple().prop_map(Op::Remove),
        small_tuple().prop_map(Op::Get),
        (small_tuple(), any::<u32>()).prop_map(|(t, v)| Op::Mutate(t, v)),
    ]
}

proptest! {
    /// Linux inet_ehash semantics: one entry per 4-tuple; plus our bound: beyond
    /// capacity an insert is ENOBUFS and nothing else changes.
    #[test]
    fn conn_table_matches_hashmap_model(capacity in 0usize..20, ops in proptest::collection::vec(op(), 0..200), k0: u64) {
        let mut table = ConnTable::new(capacity, HashKey::new(k0, 7)).unwrap();
        let one_segment = table.memory_bytes() + 256
            + surge_stack::table::conn::SLOTS_PER_SEGMENT * ConnTable::<u32>::slot_bytes();
        let mut model: HashMap<FourTuple, u32> = HashMap::new();
        let (mut full, mut dup) = (0u64, 0u64);
        for op in ops {
            match op {
                Op::Insert(t, v) => {
                    let got = table.insert(t, v);
                    if model.contains_key(&t) {
                        dup += 1;
                        let err = got.unwrap_err();
                        prop_assert_eq!(err.errno, Errno::EADDRINUSE);
                        prop_assert_eq!(err.value, v);
                    } else if model.len() >= capacity {
                        full += 1;
                        let err = got.unwrap_err();
                        prop_assert_eq!(err.errno, Errno::ENOBUFS);
                        prop_assert_eq!(err.value, v);
                    } else {
                        prop_assert!(got.is_ok());
                        model.insert(t, v);
                    }
                }
                Op::Remove(t) => prop_assert_eq!(table.remove(&t), model.remove(&t)),
                Op::Get(t) => {
                    prop_assert_eq!(table.get(&t), model.get(&t));
                    prop_assert_eq!(table.contains(&t), model.contains_key(&t));
                }
                Op::Mutate(t, v) => {
                    if let Some(slot) = table.get_mut(&t) {
                        *slot = v;
                    }
                    if let Some(slot) = model.get_mut(&t) {
                        *slot = v;
                    }
                }
            }
            prop_assert_eq!(table.len(), model.len());
            prop_assert!(table.len() <= capacity);
            // A handful of entries never needs a second slot segment.
            prop_assert!(table.memory_bytes() <= one_segment);
            prop_assert_eq!(table.is_full(), model.len() >= capacity);
        }
        prop_assert_eq!(table.counters.refused_full, full);
        prop_assert_eq!(table.counters.refused_duplicate, dup);
        let mut listed: Vec<(FourTuple, u32)> = table.iter().map(|(t, v)| (*t, *v)).collect();
        let mut expected: Vec<(FourTuple, u32)> = model.into_iter().collect();
        let order = |a: &(FourTuple, u32), b: &(FourTuple, u32)| {
            (a.0.local_port, a.0.remote_addr, a.0.remote_port).cmp(&(b.0.local_port, b.0.remote_addr, b.0.remote_port))
        };
        listed.sort_by(order);
        expected.sort_by(order);
        prop_assert_eq!(listed, expected);
    }

    /// shard_of stays in range and is a pure function of (tuple, n, key).
    #[test]
    fn shard_of_is_stable_and_in_range(l in any::<u16>(), r in any::<u8>(), p in any::<u16>(), n in 1usize..64, k0: u64) {
        let key = HashKey::new(k0, 1);
        let t = tuple(l, r, p);
        let s = shard_of(&t, n, &key);
        prop_assert!(s < n);
        prop_assert_eq!(s, shard_of(&t, n, &key));
    }
}

#[test]
fn full_table_keeps_existing_entries_and_counts() {
    let mut table = ConnTable::new(2, HashKey::new(1, 2)).unwrap();
    table.insert(tuple(1, 1, 1), "a").unwrap();
    table.insert(tuple(2, 1, 1), "b").unwrap();
    let err = table.insert(tuple(3, 1, 1), "c").unwrap_err();
    assert_eq!((err.errno, err.value), (Errno::ENOBUFS, "c"));
    // A duplicate is reported as such even when full, and does not overwrite.
    let err = table.insert(tuple(1, 1, 1), "z").unwrap_err();
    assert_eq!(err.errno, Errno::EADDRINUSE);
    assert_eq!(table.get(&tuple(1, 1, 1)), Some(&"a"));
    assert_eq!(table.get(&tuple(2, 1, 1)), Some(&"b"));
    assert_eq!(
        (
            table.counters.refused_full,
            table.counters.refused_duplicate
        ),
        (1, 1)
    );
    // Room again after a remove.
    assert_eq!(table.remove(&tuple(2, 1, 1)), Some("b"));
    assert!(table.insert(tuple(3, 1, 1), "c").is_ok());
    assert_eq!(table.capacity(), 2);
    assert_eq!((table.counters.inserted, table.counters.removed), (3, 1));
}

#[test]
fn tuples_differing_in_any_field_are_distinct_connections() {
    let mut table = ConnTable::new(16, HashKey::new(3, 4)).unwrap();
    let base = tuple(40000, 1, 80);
    let variants = [
        base,
        FourTuple {
            local_addr: Ipv4Addr::new(198, 18, 0, 2),
            ..base
        },
        FourTuple {
            local_port: 40001,
            ..base
        },
        FourTuple {
            remote_addr: Ipv4Addr::new(198, 19, 0, 2),
            ..base
        },
        FourTuple {
            remote_port: 81,
            ..base
        },
        // Swapped ends are another connection too.
        FourTuple::new(base.remote(), base.local()),
    ];
    for (i, t) in variants.iter().enumerate() {
        table.insert(*t, i).unwrap();
    }
    for (i, t) in variants.iter().enumerate() {
        assert_eq!(table.get(t), Some(&i));
    }
}

#[test]
fn shard_of_spreads_flows_and_depends_on_key() {
    let key = HashKey::new(5, 6);
    let mut counts = [0usize; 4];
    for p in 0..8000u16 {
        counts[shard_of(&tuple(40000, 1, p), 4, &key)] += 1;
    }
    for c in counts {
        assert!((1700..2300).contains(&c), "{counts:?}");
    }
    let other = HashKey::new(7, 8);
    let moved = (0..200u16)
        .filter(|&p| {
            shard_of(&tuple(40000, 1, p), 4, &key) != shard_of(&tuple(40000, 1, p), 4, &other)
        })
        .count();
    assert!(moved > 100, "{moved}");
    assert_eq!(shard_of(&tuple(1, 1, 1), 0, &key), 0);
    assert_eq!(shard_of(&tuple(1, 1, 1), 1, &key), 0);
}

/// Heavy churn at full capacity (insert a new tuple, remove an old one, 100,000
/// times) leaves the table's memory where filling it put it: freed slots are reused,
/// so churn allocates nothing.
#[test]
fn churn_at_capacity_never_grows_the_table() {
    let capacity = 1000;
    let mut table = ConnTable::new(capacity, HashKey::new(9, 9)).unwrap();
    let t = |i: u32| tuple((i % 60000) as u16, (i / 60000) as u8, (i % 7) as u16);
    for i in 0..capacity as u32 {
        table.insert(t(i), i).unwrap();
    }
    let reserved = table.memory_bytes();
    for i in capacity as u32..100_000 {
        assert!(table.is_full());
        assert_eq!(
            table.insert(t(i), i).map_err(|e| e.errno),
            Err(Errno::ENOBUFS)
        );
        assert_eq!(
            table.remove(&t(i - capacity as u32)),
            Some(i - capacity as u32)
        );
        table.insert(t(i), i).unwrap();
        assert_eq!(table.memory_bytes(), reserved, "grew at {i}");
    }
    assert_eq!(table.len(), capacity);
}

#[test]
fn absurd_capacity_is_enomem_not_a_panic() {
    assert_eq!(
        ConnTable::<u8>::new(usize::MAX, HashKey::new(1, 1)).err(),
        Some(Errno::ENOMEM)
    );
    assert_eq!(
        ConnTable::<u8>::new(usize::MAX / 2, HashKey::new(1, 1)).err(),
        Some(Errno::ENOMEM)
    );
}

/// `get` remembers the last tuple it found (a one-entry cache before the hash): a
/// removed tuple is forgotten with it, so neither a lookup of it nor of the tuple
/// that takes its freed slot is answered from a stale entry.
#[test]
fn the_last_lookup_never_answers_for_a_removed_tuple() {
    let mut t = ConnTable::new(8, HashKey::new(5, 6)).unwrap();
    let (a, b) = (tuple(40000, 1, 50000), tuple(40001, 2, 50001));
    // The empty cache's placeholder tuple (all zero) is no entry either.
    let zero = FourTuple::new(
        SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0),
        SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 0),
    );
    assert_eq!(t.get(&zero), None);
    t.insert(a, 1).unwrap();
    assert_eq!(t.get(&a), Some(&1));
    assert_eq!(t.get(&a), Some(&1));
    assert_eq!(t.remove(&a), Some(1));
    assert_eq!(t.get(&a), None);
    // `b` takes the slot `a` left.
    t.insert(b, 2).unwrap();
    assert_eq!(t.get(&a), None);
    assert_eq!(t.get(&b), Some(&2));
    t.insert(a, 3).unwrap();
    assert_eq!(t.get(&a), Some(&3));
    *t.get_mut(&a).unwrap() = 4;
    assert_eq!(t.get(&a), Some(&4));
    // Removing another tuple keeps what is remembered, still right.
    assert_eq!(t.remove(&b), Some(2));
    assert_eq!(t.get(&a), Some(&4));
    assert_eq!(t.get(&b), None);
    assert_eq!(t.get(&zero), None);
}

//! Ephemeral port allocation through BindTable: never a port twice, always inside
//! the core's slice, and a clean error (with its counter) when the slice is used up.

use std::collections::{HashMap, HashSet};
use std::net::{Ipv4Addr, SocketAddrV4};

use proptest::prelude::*;
use surge_stack::Errno;
use surge_stack::table::{
    BindConfig, BindOptions, BindTable, EphemeralPorts, EphemeralRange, HashKey, SocketId,
};

const A1: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);

#[derive(Debug, Clone)]
enum Op {
    /// bind(0) a new socket.
    Bind,
    /// connect a new socket to remote port 80 + n (n < 3).
    Connect(u16),
    /// close the n-th (mod len) socket still holding a port.
    Close(usize),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => Just(Op::Bind),
        3 => (0u16..3).prop_map(Op::Connect),
        2 => any::<usize>().prop_map(Op::Close),
    ]
}

proptest! {
    /// Linux inet_csk_find_open_port / __inet_hash_connect over one core's slice.
    #[test]
    fn ephemeral_allocation_is_unique_in_slice_and_exhausts_cleanly(
        low in 30000u16..40000,
        len in 1u16..40,
        cores in 1usize..4,
        core_pick in any::<usize>(),
        seed: u64,
        ops in proptest::collection::vec(op(), 1..300),
    ) {
        let range = EphemeralRange::new(low, low + len * cores as u16 - 1).unwrap();
        let core = core_pick % cores;
        let mut ports = EphemeralPorts::new(range, core, cores, HashKey::new(seed, 1)).unwrap();
        let slice = ports.slice();
        let mut binds = BindTable::new(BindConfig::new(vec![A1]), HashKey::new(seed, 2));
        // Model: bind(0) owners hold a port exclusively; connect owners hold (port, remote).
        let mut bound: HashMap<SocketId, u16> = HashMap::new();
        let mut connected: HashMap<SocketId, (u16, u16)> = HashMap::new();
        let mut next_id = 0u32;
        let (mut bind_fail, mut connect_fail) = (0u64, 0u64);
        for op in ops {
            match op {
                Op::Bind => {
                    next_id += 1;
                    let id = SocketId(next_id);
                    let taken: HashSet<u16> = bound.values().copied().chain(connected.values().map(|c| c.0)).collect();
                    match binds.bind(id, A1, 0, BindOptions::default(), &mut ports) {
                        Ok(at) => {
                            prop_assert!(slice.contains(at.port()), "{} outside {:?}", at.port(), slice);
                            prop_assert_eq!(range.core_of_port(at.port(), cores), Some(core));
                            prop_assert!(!taken.contains(&at.port()), "port {} handed out twice", at.port());
                            bound.insert(id, at.port());
                        }
                        Err(e) => {
                            prop_assert_eq!(e, Errno::EADDRINUSE);
                            prop_assert_eq!(taken.len() as u32, slice.len(), "refused with free ports left");
                            bind_fail += 1;
                        }
                    }
                }
                Op::Connect(n) => {
                    next_id += 1;
                    let id = SocketId(next_id);
                    let remote = SocketAddrV4::new(Ipv4Addr::new(198, 19, 0, 1), 80 + n);
                    // A port is usable for this remote unless bind() holds it or a
                    // connection to the same remote does.
                    let unusable: HashSet<u16> = bound
                        .values()
                        .copied()
                        .chain(connected.values().filter(|c| c.1 == n).map(|c| c.0))
                        .collect();
                    match binds.ephemeral_for_connect(id, BindOptions::default(), A1, remote, &mut ports, |_| true) {
                        Ok(port) => {
                            prop_assert!(slice.contains(port));
                            prop_assert!(!unusable.contains(&port), "4-tuple or bound port reused: {}", port);
                            connected.insert(id, (port, n));
                        }
                        Err(e) => {
                            prop_assert_eq!(e, Errno::EADDRNOTAVAIL);
                            prop_assert_eq!(unusable.len() as u32, slice.len(), "refused with free tuples left");
                            connect_fail += 1;
                        }
                    }
                }
                Op::Close(i) => {
                    let mut held: Vec<SocketId> = bound.keys().chain(connected.keys()).copied().collect();
                    held.sort();
                    if !held.is_empty() {
                        let id = held[i % held.len()];
                        prop_assert!(binds.unbind(id));
                        bound.remove(&id);
                        connected.remove(&id);
                    }
                }
            }
            prop_assert_eq!(binds.len(), bound.len() + connected.len());
        }
        prop_assert_eq!(binds.counters.bind_ephemeral_exhausted, bind_fail);
        prop_assert_eq!(binds.counters.connect_ephemeral_exhausted, connect_fail);
    }
}

/// Filling a whole slice with bind(0) hands out each port exactly once, then refuses
/// (Linux: EADDRINUSE from inet_csk_get_port), and a closed port is handed out again.
#[test]
fn bind_zero_fills_the_default_slice_exactly() {
    let range = EphemeralRange::LINUX_DEFAULT;
    let mut ports = EphemeralPorts::new(range, 1, 2, HashKey::new(1, 2)).unwrap();
    let slice = ports.slice();
    let mut binds = BindTable::new(BindConfig::new(vec![A1]), HashKey::new(3, 4));
    let mut seen = HashSet::new();
    for id in 0..slice.len() {
        let at = binds
            .bind(SocketId(id), A1, 0, BindOptions::default(), &mut ports)
            .unwrap();
        assert!(seen.insert(at.port()));
        assert!(slice.contains(at.port()));
    }
    let extra = SocketId(slice.len());
    assert_eq!(
        binds.bind(extra, A1, 0, BindOptions::default(), &mut ports),
        Err(Errno::EADDRINUSE)
    );
    assert_eq!(binds.counters.bind_ephemeral_exhausted, 1);
    let freed = binds.local_addr(SocketId(7)).unwrap().port();
    assert!(binds.unbind(SocketId(7)));
    assert_eq!(
        binds
            .bind(extra, A1, 0, BindOptions::default(), &mut ports)
            .map(|a| a.port()),
        Ok(freed)
    );
}

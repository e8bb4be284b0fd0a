//! API misuse never panics the bind table, and its bookkeeping stays consistent:
//! random calls in random order on random socket ids (DESIGN.md "Bad input": misuse
//! returns an errno, never a panic).

use std::collections::{BTreeSet, HashSet};
use std::net::{Ipv4Addr, SocketAddrV4};

use proptest::prelude::*;
use surge_stack::table::{
    BindConfig, BindOptions, BindTable, EphemeralPorts, EphemeralRange, HashKey, SocketId,
};
use surge_stack::{Errno, FourTuple};

const ADDRS: [Ipv4Addr; 4] = [
    Ipv4Addr::UNSPECIFIED,
    Ipv4Addr::new(198, 18, 0, 1),
    Ipv4Addr::new(198, 18, 0, 2),
    Ipv4Addr::new(198, 18, 0, 99),
];

#[derive(Debug, Clone)]
enum Op {
    Bind(u32, usize, u16, BindOptions),
    Listen(u32, BindOptions),
    ConnectEphemeral(u32, usize, u16, BindOptions),
    ConnectBound(u32, usize, u16),
    Inherit(u32, usize, u16, u16),
    TimeWait(u32),
    Disconnect(u32),
    Unbind(u32),
}

fn options() -> impl Strategy<Value = BindOptions> {
    (any::<bool>(), any::<bool>(), 0u32..2, any::<bool>()).prop_map(
        |(reuse_addr, reuse_port, owner, privileged)| BindOptions {
            reuse_addr,
            reuse_port,
            owner,
            privileged,
        },
    )
}

fn op() -> impl Strategy<Value = Op> {
    let id = 0u32..8;
    let addr = 0usize..4;
    // A few fixed ports, port 0, a privileged port and the small ephemeral range.
    let port = prop_oneof![
        Just(0u16),
        Just(80),
        Just(5000),
        Just(5001),
        40000u16..40004
    ];
    prop_oneof![
        (id.clone(), addr.clone(), port.clone(), options())
            .prop_map(|(i, a, p, o)| Op::Bind(i, a, p, o)),
        (id.clone(), options()).prop_map(|(i, o)| Op::Listen(i, o)),
        (id.clone(), addr.clone(), 1u16..3, options())
            .prop_map(|(i, a, r, o)| Op::ConnectEphemeral(i, a, r, o)),
        (id.clone(), addr.clone(), 1u16..3).prop_map(|(i, a, r)| Op::ConnectBound(i, a, r)),
        (id.clone(), addr, port, 1u16..3).prop_map(|(i, a, p, r)| Op::Inherit(i, a, p, r)),
        id.clone().prop_map(Op::TimeWait),
        id.clone().prop_map(Op::Disconnect),
        id.prop_map(Op::Unbind),
    ]
}

fn remote(port: u16) -> SocketAddrV4 {
    SocketAddrV4::new(Ipv4Addr::new(198, 19, 0, 1), port)
}

proptest! {
    #[test]
    fn random_calls_return_errnos_and_keep_books(ops in proptest::collection::vec(op(), 0..120), seed: u64) {
        let local = vec![ADDRS[1], ADDRS[2]];
        let mut binds = BindTable::new(BindConfig::new(local), HashKey::new(seed, 1));
        let range = EphemeralRange::new(40000, 40003).unwrap();
        let mut ports = EphemeralPorts::new(range, 0, 1, HashKey::new(seed, 2)).unwrap();
        let allowed: HashSet<Errno> = [
            Errno::EADDRINUSE,
            Errno::EADDRNOTAVAIL,
            Errno::EACCES,
            Errno::EINVAL,
            Errno::EISCONN,
        ]
        .into_iter()
        .collect();
        for op in ops {
            let result: Result<(), Errno> = match op {
                Op::Bind(i, a, p, o) => binds.bind(SocketId(i), ADDRS[a], p, o, &mut ports).map(drop),
                Op::Listen(i, o) => binds.listen(SocketId(i), o, &mut ports).map(drop),
                Op::ConnectEphemeral(i, a, r, o) => binds
                    .ephemeral_for_connect(SocketId(i), o, ADDRS[a], remote(r), &mut ports, |_| true)
                    .map(drop),
                Op::ConnectBound(i, a, r) => binds.connect_bound(SocketId(i), ADDRS[a], remote(r), |_| true).map(drop),
                Op::Inherit(i, a, p, r) => {
                    let tuple = FourTuple::new(SocketAddrV4::new(ADDRS[a], p), remote(r));
                    binds.inherit_port(SocketId(i), &tuple, BindOptions::default())
                }
                Op::TimeWait(i) => binds.enter_time_wait(SocketId(i)),
                Op::Disconnect(i) => {
                    binds.disconnect(SocketId(i));
                    Ok(())
                }
                Op::Unbind(i) => {
                    let was = binds.local_addr(SocketId(i)).is_some();
                    prop_assert_eq!(binds.unbind(SocketId(i)), was);
                    Ok(())
                }
            };
            if let Err(e) = result {
                prop_assert!(allowed.contains(&e), "unexpected errno {:?}", e);
            }
            // Books: every bound id is counted once, in its port's bucket.
            let bound: Vec<(u32, SocketAddrV4)> =
                (0..8).filter_map(|i| binds.local_addr(SocketId(i)).map(|a| (i, a))).collect();
            prop_assert_eq!(bound.len(), binds.len());
            let ports_used: BTreeSet<u16> = bound.iter().map(|(_, a)| a.port()).collect();
            let owners: usize = ports_used.iter().map(|p| binds.owners_of(*p)).sum();
            prop_assert_eq!(owners, binds.len());
            for (i, a) in &bound {
                prop_assert!(binds.state(SocketId(*i)).is_some());
                prop_assert!(a.port() != 0);
            }
        }
    }
}

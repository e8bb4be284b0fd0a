//! ListenTable rules, each named after the Linux code it mirrors. "Linux 6.18 netns:"
//! comments quote the real kernel's answer (Python sockets in a private namespace,
//! 198.18.0.1/32 and 198.18.0.2/32 on `lo`).

use std::collections::{HashMap, HashSet};
use std::net::{Ipv4Addr, SocketAddrV4};

use surge_stack::table::{HashKey, ListenConfig, ListenTable, SocketId};
use surge_stack::{Errno, FourTuple};

const A1: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
const A2: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
const ANY: Ipv4Addr = Ipv4Addr::UNSPECIFIED;

fn table() -> ListenTable {
    ListenTable::new(ListenConfig::default(), HashKey::new(21, 22))
}

fn syn(to: Ipv4Addr, port: u16, from_port: u16) -> FourTuple {
    FourTuple::new(
        SocketAddrV4::new(to, port),
        SocketAddrV4::new(Ipv4Addr::new(198, 19, 0, 1), from_port),
    )
}

// Linux 6.18 netns, SO_REUSEPORT listeners on 0.0.0.0:6000 and 198.18.0.1:6000:
// "connect to 198.18.0.1 -> ['exact']", "connect to 198.18.0.2 -> ['wild']"
// (__inet_lookup_listener: compute_score ranks an exact rcv_saddr above the wildcard).
#[test]
fn lookup_exact_before_wildcard_linux_inet_lookup_listener() {
    let mut t = table();
    t.insert(SocketId(1), SocketAddrV4::new(ANY, 6000), 5, true, 0)
        .unwrap();
    t.insert(SocketId(2), SocketAddrV4::new(A1, 6000), 5, true, 0)
        .unwrap();
    assert_eq!(
        t.lookup(&syn(A1, 6000, 1234)).map(|l| l.id),
        Some(SocketId(2))
    );
    assert_eq!(
        t.lookup(&syn(A2, 6000, 1234)).map(|l| l.id),
        Some(SocketId(1))
    );
    // No listener on the port: None (the engine answers with RST, RFC 9293 §3.10.7.1).
    assert_eq!(t.lookup(&syn(A1, 6001, 1234)), None);
    // Removing the exact listener falls back to the wildcard one.
    assert_eq!(t.remove(SocketId(2)).map(|l| l.id), Some(SocketId(2)));
    assert_eq!(
        t.lookup(&syn(A1, 6000, 1234)).map(|l| l.id),
        Some(SocketId(1))
    );
    assert_eq!(t.remove(SocketId(1)).map(|l| l.id), Some(SocketId(1)));
    assert_eq!(t.lookup(&syn(A2, 6000, 1234)), None);
    assert!(t.is_empty());
}

// Linux reuseport_select_sock: the member is reciprocal_scale(hash(4-tuple), n), so every
// segment of one flow reaches the same listener and flows spread over the group.
#[test]
fn reuseport_group_picks_member_by_flow_hash_linux_reuseport_select_sock() {
    let mut t = table();
    let at = SocketAddrV4::new(ANY, 80);
    for id in 0..4 {
        t.insert(SocketId(id), at, 128, true, 1000).unwrap();
    }
    assert_eq!(t.group(at).len(), 4);
    let mut per_member: HashMap<SocketId, usize> = HashMap::new();
    for port in 1024..5024u16 {
        let flow = syn(A1, 80, port);
        let first = t.lookup(&flow).unwrap().id;
        for _ in 0..3 {
            assert_eq!(
                t.lookup(&flow).unwrap().id,
                first,
                "same flow, same listener"
            );
        }
        *per_member.entry(first).or_default() += 1;
    }
    assert_eq!(per_member.len(), 4);
    for (id, n) in per_member {
        // 4000 flows over 4 members: each gets a fair share (expected 1000).
        assert!((800..1200).contains(&n), "{id:?} got {n}");
    }
    // A different key spreads differently (a peer cannot predict the member).
    let mut other = ListenTable::new(ListenConfig::default(), HashKey::new(99, 98));
    for id in 0..4 {
        other.insert(SocketId(id), at, 128, true, 1000).unwrap();
    }
    let differ = (1024..1124u16)
        .filter(|&p| {
            t.lookup(&syn(A1, 80, p)).map(|l| l.id) != other.lookup(&syn(A1, 80, p)).map(|l| l.id)
        })
        .count();
    assert!(differ > 30, "only {differ} of 100 flows moved");
}

// Linux 6.18 netns (bind level): "reuseport only first: EADDRINUSE", "reuseport diff uid: EADDRINUSE";
// the listen table re-checks that a shared (addr, port) is one owner's SO_REUSEPORT group.
#[test]
fn insert_refuses_sharing_without_reuseport_or_with_other_owner() {
    let mut t = table();
    let at = SocketAddrV4::new(A1, 80);
    t.insert(SocketId(1), at, 5, true, 7).unwrap();
    assert_eq!(
        t.insert(SocketId(2), at, 5, false, 7).err(),
        Some(Errno::EADDRINUSE)
    );
    assert_eq!(
        t.insert(SocketId(3), at, 5, true, 8).err(),
        Some(Errno::EADDRINUSE)
    );
    assert_eq!(
        t.insert(SocketId(1), SocketAddrV4::new(A2, 80), 5, true, 7)
            .err(),
        Some(Errno::EINVAL)
    );
    assert_eq!(t.counters.addr_in_use, 2);
    assert_eq!(t.counters.invalid, 1);
    assert_eq!(t.len(), 1);
    // A plain listener refuses a reuseport newcomer too.
    t.insert(SocketId(4), SocketAddrV4::new(A2, 80), 5, false, 7)
        .unwrap();
    assert_eq!(
        t.insert(SocketId(5), SocketAddrV4::new(A2, 80), 5, true, 7)
            .err(),
        Some(Errno::EADDRINUSE)
    );
    // A refused insert into an empty group leaves no empty group behind.
    assert_eq!(t.group(SocketAddrV4::new(A2, 81)).len(), 0);
}

// Linux 6.18 netns: listen(100000) shows "LISTEN 0 4096" in ss (sk_max_ack_backlog = somaxconn);
// __sys_listen: `if ((unsigned int)backlog > somaxconn) backlog = somaxconn` (so negative too).
#[test]
fn backlog_is_clamped_to_somaxconn_linux_sys_listen() {
    let mut t = table();
    let l = *t
        .insert(SocketId(1), SocketAddrV4::new(A1, 6001), 100_000, false, 0)
        .unwrap();
    assert_eq!(l.accept_backlog, 4096);
    assert_eq!(l.syn_backlog, 2048, "capped by tcp_max_syn_backlog");
    let l = *t
        .insert(SocketId(2), SocketAddrV4::new(A1, 6002), -1, false, 0)
        .unwrap();
    assert_eq!(l.accept_backlog, 4096);
    let l = *t
        .insert(SocketId(3), SocketAddrV4::new(A1, 6003), 16, false, 0)
        .unwrap();
    assert_eq!((l.accept_backlog, l.syn_backlog), (16, 16));
    let mut small = ListenTable::new(
        ListenConfig {
            somaxconn: 10,
            max_syn_backlog: 3,
        },
        HashKey::new(1, 2),
    );
    let l = *small
        .insert(SocketId(1), SocketAddrV4::new(A1, 1), 128, false, 0)
        .unwrap();
    assert_eq!((l.accept_backlog, l.syn_backlog), (10, 3));
}

// Linux inet_listen on a LISTEN socket: `WRITE_ONCE(sk->sk_max_ack_backlog, backlog)`.
#[test]
fn second_listen_updates_backlog_linux_inet_listen() {
    let mut t = table();
    t.insert(SocketId(1), SocketAddrV4::new(A1, 80), 5, false, 0)
        .unwrap();
    assert_eq!(
        t.set_backlog(SocketId(1), 50).map(|l| l.accept_backlog),
        Ok(50)
    );
    assert_eq!(t.get(SocketId(1)).map(|l| l.accept_backlog), Some(50));
    assert_eq!(t.set_backlog(SocketId(2), 50).err(), Some(Errno::EINVAL));
}

// Linux 6.18 netns, listen(0) and four non-blocking connects: ss shows "LISTEN 1 0" (one
// connection queued) and no SYN_RECV: sk_acceptq_is_full is `queued > backlog`.
#[test]
fn queue_limits_use_linux_greater_than_rule_sk_acceptq_is_full() {
    let mut t = table();
    let l = *t
        .insert(SocketId(1), SocketAddrV4::new(A1, 6003), 0, false, 0)
        .unwrap();
    assert!(!l.accept_queue_is_full(0));
    assert!(l.accept_queue_is_full(1));
    assert!(!l.syn_queue_is_full(0));
    assert!(l.syn_queue_is_full(1));
    let l = *t
        .insert(SocketId(2), SocketAddrV4::new(A1, 6004), 3, false, 0)
        .unwrap();
    assert!(!l.accept_queue_is_full(3));
    assert!(l.accept_queue_is_full(4));
    assert!(!l.syn_queue_is_full(3));
    assert!(l.syn_queue_is_full(4));
}

#[test]
fn remove_keeps_the_rest_of_the_group() {
    let mut t = table();
    let at = SocketAddrV4::new(A1, 443);
    for id in 0..3 {
        t.insert(SocketId(id), at, 5, true, 0).unwrap();
    }
    assert!(t.remove(SocketId(1)).is_some());
    assert!(t.remove(SocketId(1)).is_none());
    let left: HashSet<SocketId> = t.group(at).iter().map(|l| l.id).collect();
    assert_eq!(left, HashSet::from([SocketId(0), SocketId(2)]));
    for port in 1..200u16 {
        let id = t.lookup(&syn(A1, 443, port)).unwrap().id;
        assert!(left.contains(&id));
    }
    assert_eq!(t.len(), 2);
}

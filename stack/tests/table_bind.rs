//! BindTable rules, each named after the Linux code it mirrors.
//!
//! "Linux 6.18 netns:" comments quote what the real kernel answered for the same
//! sequence of calls: Python sockets in a private network namespace with
//! 198.18.0.1/32 and 198.18.0.2/32 on `lo` (198.18.0.99 not configured),
//! `ip_local_port_range` set to "40000 40001" for the exhaustion cases.

use std::net::{Ipv4Addr, SocketAddrV4};

use surge_stack::table::{
    BindConfig, BindOptions, BindState, BindTable, EphemeralPorts, EphemeralRange, HashKey, Rss,
    SocketId,
};
use surge_stack::{Errno, FourTuple};

const A1: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
const A2: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
const NOT_OURS: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 99);
const ANY: Ipv4Addr = Ipv4Addr::UNSPECIFIED;
const PORT: u16 = 41000;

const PLAIN: BindOptions = BindOptions {
    reuse_addr: false,
    reuse_port: false,
    owner: 0,
    privileged: false,
};
const REUSE_ADDR: BindOptions = BindOptions {
    reuse_addr: true,
    ..PLAIN
};
const REUSE_PORT: BindOptions = BindOptions {
    reuse_port: true,
    ..PLAIN
};
const REUSE_BOTH: BindOptions = BindOptions {
    reuse_addr: true,
    reuse_port: true,
    ..PLAIN
};

struct Fixture {
    binds: BindTable,
    ports: EphemeralPorts,
}

fn fixture() -> Fixture {
    fixture_with_range(EphemeralRange::LINUX_DEFAULT)
}

fn fixture_with_range(range: EphemeralRange) -> Fixture {
    Fixture {
        binds: BindTable::new(BindConfig::new(vec![A1, A2]), HashKey::new(11, 12)),
        ports: EphemeralPorts::new(range, 0, 1, HashKey::new(13, 14)).unwrap(),
    }
}

impl Fixture {
    fn bind(
        &mut self,
        id: u32,
        addr: Ipv4Addr,
        port: u16,
        options: BindOptions,
    ) -> Result<SocketAddrV4, Errno> {
        self.binds
            .bind(SocketId(id), addr, port, options, &mut self.ports)
    }

    fn listen(&mut self, id: u32, options: BindOptions) -> Result<SocketAddrV4, Errno> {
        self.binds.listen(SocketId(id), options, &mut self.ports)
    }

    fn connect(&mut self, id: u32, local: Ipv4Addr, remote: SocketAddrV4) -> Result<u16, Errno> {
        self.binds.ephemeral_for_connect(
            SocketId(id),
            PLAIN,
            local,
            remote,
            &mut self.ports,
            |_| true,
        )
    }

    /// Bind socket 1 at (a1, o1), optionally listen, then bind socket 2 at (a2, o2).
    fn two(
        &mut self,
        a1: Ipv4Addr,
        o1: BindOptions,
        listen1: bool,
        a2: Ipv4Addr,
        o2: BindOptions,
    ) -> Result<SocketAddrV4, Errno> {
        self.bind(1, a1, PORT, o1).expect("first bind");
        if listen1 {
            self.listen(1, o1).expect("first listen");
        }
        self.bind(2, a2, PORT, o2)
    }
}

fn two(
    a1: Ipv4Addr,
    o1: BindOptions,
    listen1: bool,
    a2: Ipv4Addr,
    o2: BindOptions,
) -> Result<SocketAddrV4, Errno> {
    fixture().two(a1, o1, listen1, a2, o2)
}

fn remote(last: u8, port: u16) -> SocketAddrV4 {
    SocketAddrV4::new(Ipv4Addr::new(198, 19, 0, last), port)
}

// Linux 6.18 netns: "wild then specific, no opts: ok EADDRINUSE",
// "specific then wild, no opts: ok EADDRINUSE".
#[test]
fn bind_wildcard_conflicts_with_specific_linux_inet_csk_bind_conflict() {
    assert_eq!(two(ANY, PLAIN, false, A1, PLAIN), Err(Errno::EADDRINUSE));
    assert_eq!(two(A1, PLAIN, false, ANY, PLAIN), Err(Errno::EADDRINUSE));
    let mut f = fixture();
    assert_eq!(f.two(A1, PLAIN, false, A1, PLAIN), Err(Errno::EADDRINUSE));
    assert_eq!(f.binds.counters.addr_in_use, 1);
    // The refused socket is not bound; the first still is.
    assert_eq!(f.binds.local_addr(SocketId(2)), None);
    assert_eq!(
        f.binds.local_addr(SocketId(1)),
        Some(SocketAddrV4::new(A1, PORT))
    );
}

// Linux 6.18 netns: "specific A1 then specific A2: ok ok".
#[test]
fn bind_distinct_specific_addrs_share_port_linux_inet_rcv_saddr_equal() {
    assert_eq!(
        two(A1, PLAIN, false, A2, PLAIN),
        Ok(SocketAddrV4::new(A2, PORT))
    );
    // ... even when the first listens (Linux netns: "reuseaddr both, first
    // listening A1, second A2: ok/ok ok").
    assert_eq!(
        two(A1, REUSE_ADDR, true, A2, REUSE_ADDR),
        Ok(SocketAddrV4::new(A2, PORT))
    );
    assert_eq!(
        two(A1, PLAIN, true, A2, PLAIN),
        Ok(SocketAddrV4::new(A2, PORT))
    );
}

// Linux 6.18 netns: "reuseaddr both wild then specific (not listening): ok ok",
// "reuseaddr both same specific (not listening): ok ok".
#[test]
fn bind_reuseaddr_both_share_when_not_listening_linux_sk_reuse() {
    assert!(two(ANY, REUSE_ADDR, false, A1, REUSE_ADDR).is_ok());
    assert!(two(A1, REUSE_ADDR, false, A1, REUSE_ADDR).is_ok());
    assert!(two(A1, REUSE_ADDR, false, ANY, REUSE_ADDR).is_ok());
}

// Linux 6.18 netns: "reuseaddr only first: ok EADDRINUSE", "reuseaddr only second: ok EADDRINUSE".
#[test]
fn bind_reuseaddr_needs_both_sockets_linux_inet_bind_conflict() {
    assert_eq!(
        two(A1, REUSE_ADDR, false, A1, PLAIN),
        Err(Errno::EADDRINUSE)
    );
    assert_eq!(
        two(A1, PLAIN, false, A1, REUSE_ADDR),
        Err(Errno::EADDRINUSE)
    );
}

// Linux 6.18 netns: "reuseaddr both, first listening wild, second specific: ok/ok EADDRINUSE",
// "... first listening specific, second wild: ok/ok EADDRINUSE", "... same addr: ok/ok EADDRINUSE".
// (4.4BSD would allow the specific bind next to a wildcard listener; Linux does not.)
#[test]
fn bind_reuseaddr_does_not_share_with_a_listener_linux_sk2_tcp_listen() {
    assert_eq!(
        two(ANY, REUSE_ADDR, true, A1, REUSE_ADDR),
        Err(Errno::EADDRINUSE)
    );
    assert_eq!(
        two(A1, REUSE_ADDR, true, ANY, REUSE_ADDR),
        Err(Errno::EADDRINUSE)
    );
    assert_eq!(
        two(A1, REUSE_ADDR, true, A1, REUSE_ADDR),
        Err(Errno::EADDRINUSE)
    );
}

// Linux 6.18 netns: "reuseaddr both bound, listen both (bind bind listen listen): ok ok ok EADDRINUSE",
// and the same with wildcard + specific.
#[test]
fn listen_reuseaddr_two_bound_only_one_may_listen_linux_inet_csk_listen_start() {
    for (a1, a2) in [(A1, A1), (ANY, A1)] {
        let mut f = fixture();
        f.bind(1, a1, PORT, REUSE_ADDR).unwrap();
        f.bind(2, a2, PORT, REUSE_ADDR).unwrap();
        assert_eq!(f.listen(1, REUSE_ADDR), Ok(SocketAddrV4::new(a1, PORT)));
        assert_eq!(f.listen(2, REUSE_ADDR), Err(Errno::EADDRINUSE));
        // The refused socket stays bound, not listening.
        assert_eq!(f.binds.state(SocketId(2)), Some(BindState::Bound));
        assert_eq!(f.binds.state(SocketId(1)), Some(BindState::Listening));
        // After the listener goes, the other may listen.
        assert!(f.binds.unbind(SocketId(1)));
        assert_eq!(f.listen(2, REUSE_ADDR), Ok(SocketAddrV4::new(a2, PORT)));
    }
}

// Linux 6.18 netns: "reuseport both bound, listen both: ok ok ok ok",
// "reuseport both listening wild/specific: ok ok ok ok", "reuseport both, first listening: ok/ok ok".
#[test]
fn bind_reuseport_both_share_even_listening_linux_sk_reuseport() {
    for (a1, a2) in [(A1, A1), (ANY, A1)] {
        let mut f = fixture();
        f.bind(1, a1, PORT, REUSE_PORT).unwrap();
        f.bind(2, a2, PORT, REUSE_PORT).unwrap();
        assert!(f.listen(1, REUSE_PORT).is_ok());
        assert!(f.listen(2, REUSE_PORT).is_ok());
        assert_eq!(f.binds.owners_of(PORT), 2);
    }
    assert!(two(A1, REUSE_PORT, true, A1, REUSE_PORT).is_ok());
    // Linux 6.18 netns: "reuseport + reuseaddr first listening, second reuseport: ok/ok ok".
    assert!(two(A1, REUSE_BOTH, true, A1, REUSE_PORT).is_ok());
}

// Linux 6.18 netns: "reuseport only first: ok EADDRINUSE", "reuseport only second: ok EADDRINUSE".
#[test]
fn bind_reuseport_needs_both_sockets_linux_inet_bind_conflict() {
    assert_eq!(
        two(A1, REUSE_PORT, false, A1, PLAIN),
        Err(Errno::EADDRINUSE)
    );
    assert_eq!(
        two(A1, PLAIN, false, A1, REUSE_PORT),
        Err(Errno::EADDRINUSE)
    );
}

// Linux 6.18 netns (second socket created with euid 65534): "reuseport diff uid: ok EADDRINUSE",
// "reuseport diff uid first listening: ok/ok EADDRINUSE",
// "reuseport+reuseaddr diff uid not listening: ok ok" (SO_REUSEADDR decides first).
#[test]
fn bind_reuseport_needs_same_owner_linux_uid_eq_sk_uid() {
    let other = BindOptions {
        owner: 65534,
        ..REUSE_PORT
    };
    assert_eq!(
        two(A1, REUSE_PORT, false, A1, other),
        Err(Errno::EADDRINUSE)
    );
    assert_eq!(two(A1, REUSE_PORT, true, A1, other), Err(Errno::EADDRINUSE));
    let other_both = BindOptions {
        owner: 65534,
        ..REUSE_BOTH
    };
    assert!(two(A1, REUSE_BOTH, false, A1, other_both).is_ok());
}

// Linux inet_bind_conflict: SO_REUSEPORT sharing skips the uid test when the
// existing socket is in TIME_WAIT (`sk2->sk_state == TCP_TIME_WAIT || uid_eq(..)`).
#[test]
fn bind_reuseport_over_time_wait_ignores_owner_linux_inet_bind_conflict() {
    let mut f = fixture();
    f.bind(1, A1, PORT, REUSE_PORT).unwrap();
    f.binds
        .connect_bound(SocketId(1), A1, remote(1, 80), |_| true)
        .unwrap();
    let other = BindOptions {
        owner: 65534,
        ..REUSE_PORT
    };
    assert_eq!(f.bind(2, A1, PORT, other), Err(Errno::EADDRINUSE));
    f.binds.enter_time_wait(SocketId(1)).unwrap();
    assert!(f.bind(2, A1, PORT, other).is_ok());
}

// Linux 6.18 netns, server closes first so its side of the connection sits in
// TIME_WAIT on the listening port, listener closed, then a new bind of that port:
// "listener reuse=1, bind reuse=1: ok", "listener reuse=1, bind reuse=0: EADDRINUSE",
// "listener reuse=0, bind reuse=1: EADDRINUSE", "listener reuse=0, bind reuse=0: EADDRINUSE",
// "client closed first (no TIME_WAIT on server port), reuse=0: ok".
#[test]
fn bind_over_time_wait_needs_reuseaddr_on_both_linux_tw_sk_reuse() {
    let tuple = FourTuple::new(SocketAddrV4::new(A1, PORT), SocketAddrV4::new(A2, 50000));
    for (tw_reuse, new_reuse, want_ok) in [
        (true, true, true),
        (true, false, false),
        (false, true, false),
        (false, false, false),
    ] {
        let mut f = fixture();
        let listener_opts = BindOptions {
            reuse_addr: tw_reuse,
            ..PLAIN
        };
        f.bind(1, A1, PORT, listener_opts).unwrap();
        f.listen(1, listener_opts).unwrap();
        // The accepted child inherits the listener's port and options (sk_clone).
        f.binds
            .inherit_port(SocketId(2), &tuple, listener_opts)
            .unwrap();
        f.binds.enter_time_wait(SocketId(2)).unwrap();
        assert!(f.binds.unbind(SocketId(1)));
        let got = f.bind(
            3,
            A1,
            PORT,
            BindOptions {
                reuse_addr: new_reuse,
                ..PLAIN
            },
        );
        assert_eq!(
            got.is_ok(),
            want_ok,
            "tw_reuse={tw_reuse} new_reuse={new_reuse}: {got:?}"
        );
        if !want_ok {
            assert_eq!(got, Err(Errno::EADDRINUSE));
        }
        // When TIME_WAIT ends the port is free for anyone.
        assert!(f.binds.unbind(SocketId(2)));
        if !want_ok {
            assert!(f.bind(3, A1, PORT, PLAIN).is_ok());
        }
    }
}

// Linux 6.18 netns: "nonlocal:EADDRNOTAVAIL low-unpriv:EACCES nonlocal+low-unpriv:EADDRNOTAVAIL
// first:ok again:EINVAL again-nonlocal:EADDRNOTAVAIL again-low-unpriv:EACCES low-root:ok".
#[test]
fn bind_errors_come_in_linux_inet_bind_order() {
    let mut f = fixture();
    assert_eq!(f.bind(1, NOT_OURS, PORT, PLAIN), Err(Errno::EADDRNOTAVAIL));
    assert_eq!(f.bind(1, A1, 80, PLAIN), Err(Errno::EACCES));
    assert_eq!(f.bind(1, NOT_OURS, 80, PLAIN), Err(Errno::EADDRNOTAVAIL));
    assert!(f.bind(1, A1, PORT, PLAIN).is_ok());
    assert_eq!(f.bind(1, A1, PORT + 1, PLAIN), Err(Errno::EINVAL));
    assert_eq!(
        f.bind(1, NOT_OURS, PORT + 1, PLAIN),
        Err(Errno::EADDRNOTAVAIL)
    );
    assert_eq!(f.bind(1, A1, 80, PLAIN), Err(Errno::EACCES));
    let root = BindOptions {
        privileged: true,
        ..PLAIN
    };
    assert!(f.bind(2, A1, 80, root).is_ok());
    let c = f.binds.counters;
    assert_eq!((c.addr_not_local, c.privileged_port, c.invalid), (3, 2, 1));
}

// Linux inet_port_requires_bind_service: `port < ip_unprivileged_port_start`, port 0 exempt.
#[test]
fn bind_privileged_ports_follow_ip_unprivileged_port_start() {
    let mut f = fixture();
    assert_eq!(f.bind(1, A1, 1023, PLAIN), Err(Errno::EACCES));
    assert!(f.bind(1, A1, 1024, PLAIN).is_ok());
    assert!(
        f.bind(2, A1, 0, PLAIN).is_ok(),
        "port 0 is never privileged"
    );

    let mut config = BindConfig::new(vec![A1]);
    config.unprivileged_port_start = 0;
    let mut binds = BindTable::new(config, HashKey::new(1, 1));
    assert!(binds.bind(SocketId(1), A1, 80, PLAIN, &mut f.ports).is_ok());

    let mut config = BindConfig::new(vec![A1]);
    config.privileged = true;
    let mut binds = BindTable::new(config, HashKey::new(1, 1));
    assert!(binds.bind(SocketId(1), A1, 22, PLAIN, &mut f.ports).is_ok());
}

// Linux net.ipv4.ip_nonlocal_bind = 1 lets a socket bind any address.
#[test]
fn bind_nonlocal_allowed_with_ip_nonlocal_bind() {
    let mut config = BindConfig::new(vec![A1]);
    config.nonlocal_bind = true;
    let mut f = fixture();
    let mut binds = BindTable::new(config, HashKey::new(1, 1));
    assert!(
        binds
            .bind(SocketId(1), NOT_OURS, PORT, PLAIN, &mut f.ports)
            .is_ok()
    );
    // Local addresses can change; existing bindings stay.
    f.binds.set_local_addrs(vec![A2]);
    assert_eq!(f.bind(1, A1, PORT, PLAIN), Err(Errno::EADDRNOTAVAIL));
    assert!(f.binds.is_bindable_addr(ANY));
}

// Linux 6.18 netns with ip_local_port_range "40000 40001":
// "bind0 x3: ['40001', '40000', 'EADDRINUSE']" (odd port first, then EADDRINUSE, not EADDRNOTAVAIL).
#[test]
fn bind_port_zero_picks_ephemeral_then_eaddrinuse_linux_inet_csk_find_open_port() {
    let mut f = fixture_with_range(EphemeralRange::new(40000, 40001).unwrap());
    assert_eq!(f.bind(1, ANY, 0, PLAIN).map(|a| a.port()), Ok(40001));
    assert_eq!(f.bind(2, ANY, 0, PLAIN).map(|a| a.port()), Ok(40000));
    assert_eq!(f.bind(3, ANY, 0, PLAIN), Err(Errno::EADDRINUSE));
    assert_eq!(f.binds.counters.bind_ephemeral_exhausted, 1);
    assert_eq!(f.binds.local_addr(SocketId(3)), None);
    // A bind(0) never shares a port with an overlapping owner, even with SO_REUSEADDR
    // on both (inet_csk_find_open_port checks with relax = false) ...
    let mut g = fixture_with_range(EphemeralRange::new(40000, 40000).unwrap());
    g.bind(1, A1, 40000, REUSE_ADDR).unwrap();
    assert_eq!(g.bind(2, A1, 0, REUSE_ADDR), Err(Errno::EADDRINUSE));
    // ... but may take a port bound only on another address.
    assert_eq!(g.bind(2, A2, 0, PLAIN), Ok(SocketAddrV4::new(A2, 40000)));
}

// Linux 6.18 netns: "listen autobind x3: [('0.0.0.0', 40001), ('0.0.0.0', 40000), 'EADDRINUSE']".
#[test]
fn listen_unbound_autobinds_wildcard_linux_inet_autobind() {
    let mut f = fixture_with_range(EphemeralRange::new(40000, 40001).unwrap());
    assert_eq!(f.listen(1, PLAIN), Ok(SocketAddrV4::new(ANY, 40001)));
    assert_eq!(f.listen(2, PLAIN), Ok(SocketAddrV4::new(ANY, 40000)));
    assert_eq!(f.listen(3, PLAIN), Err(Errno::EADDRINUSE));
    assert_eq!(f.binds.state(SocketId(1)), Some(BindState::Listening));
    // A second listen() is a no-op (Linux inet_listen on a LISTEN socket only updates the backlog).
    assert_eq!(f.listen(1, PLAIN), Ok(SocketAddrV4::new(ANY, 40001)));
}

// Linux inet_listen: `if (!((1 << old_state) & (TCPF_CLOSE | TCPF_LISTEN))) goto out` (EINVAL).
#[test]
fn listen_on_connected_socket_is_einval_linux_inet_listen() {
    let mut f = fixture();
    f.connect(1, A1, remote(1, 80)).unwrap();
    assert_eq!(f.listen(1, PLAIN), Err(Errno::EINVAL));
    f.binds.enter_time_wait(SocketId(1)).unwrap();
    assert_eq!(f.listen(1, PLAIN), Err(Errno::EINVAL));
}

// Linux 6.18 netns, ip_local_port_range "40000 40001", listeners on A1:5000, A1:5001, A2:5000:
// "connect A1:5000 x3: [(A1, 40000), (A1, 40001), EADDRNOTAVAIL]",
// "connect A1:5001 x3: [(A1, 40000), (A1, 40001), EADDRNOTAVAIL]",
// "connect A2:5000 x2: [(A2, 40000), (A2, 40001)]" (two local ports, six connections).
#[test]
fn connect_shares_ephemeral_port_across_remotes_linux_inet_hash_connect() {
    let mut f = fixture_with_range(EphemeralRange::new(40000, 40001).unwrap());
    let r1 = SocketAddrV4::new(Ipv4Addr::new(198, 19, 0, 1), 5000);
    let r2 = SocketAddrV4::new(Ipv4Addr::new(198, 19, 0, 1), 5001);
    let mut id = 0;
    let mut next = || {
        id += 1;
        id
    };
    for r in [r1, r2] {
        let mut got = vec![
            f.connect(next(), A1, r).unwrap(),
            f.connect(next(), A1, r).unwrap(),
        ];
        got.sort();
        assert_eq!(got, vec![40000, 40001]);
        assert_eq!(f.connect(next(), A1, r), Err(Errno::EADDRNOTAVAIL));
    }
    // Another local address has its own 4-tuples.
    assert!(f.connect(next(), A2, r1).is_ok());
    assert!(f.connect(next(), A2, r1).is_ok());
    assert_eq!(f.binds.counters.connect_ephemeral_exhausted, 2);
    assert_eq!(f.binds.owners_of(40000) + f.binds.owners_of(40001), 6);
    assert_eq!(f.binds.state(SocketId(1)), Some(BindState::Connected));
}

// Linux 6.18 netns: with 40000 owned by bind(): "connect A1:5000 x2: [(A1, 40001), EADDRNOTAVAIL]"
// (__inet_hash_connect skips buckets with fastreuse >= 0).
#[test]
fn connect_never_shares_a_bind_owned_port_linux_fastreuse() {
    let mut f = fixture_with_range(EphemeralRange::new(40000, 40001).unwrap());
    f.bind(1, A1, 40000, REUSE_BOTH).unwrap();
    assert_eq!(f.connect(2, A1, remote(1, 5000)), Ok(40001));
    assert_eq!(f.connect(3, A1, remote(1, 5000)), Err(Errno::EADDRNOTAVAIL));
    assert_eq!(f.connect(4, A1, remote(1, 5001)), Ok(40001));
    assert_eq!(f.connect(5, A1, remote(1, 5001)), Err(Errno::EADDRNOTAVAIL));
}

// Linux 6.18 netns, ports 40000/40001 used by outgoing connections from A1 and A2:
// "bind0 while connect-owned: EADDRINUSE EADDRINUSE", "explicit bind A1:40000 reuse=0: EADDRINUSE",
// "explicit bind A1:40000 reuse=1 (connected sock reuse=0): EADDRINUSE", "0.0.0.0:40000: EADDRINUSE".
#[test]
fn bind_conflicts_with_connect_owned_port_linux_inet_csk_bind_conflict() {
    let mut f = fixture_with_range(EphemeralRange::new(40000, 40000).unwrap());
    assert_eq!(f.connect(1, A1, remote(1, 5000)), Ok(40000));
    assert_eq!(f.bind(2, A1, 40000, PLAIN), Err(Errno::EADDRINUSE));
    assert_eq!(f.bind(2, A1, 40000, REUSE_ADDR), Err(Errno::EADDRINUSE));
    assert_eq!(f.bind(2, ANY, 40000, PLAIN), Err(Errno::EADDRINUSE));
    assert_eq!(f.bind(2, ANY, 0, PLAIN), Err(Errno::EADDRINUSE));
    // A2 has no connection on 40000 in this table, so it is free there.
    assert!(f.bind(2, A2, 40000, PLAIN).is_ok());
}

// Linux 6.18 netns: s1 (SO_REUSEADDR) bound to A1:41234 and connected to A1:5000; s2 (SO_REUSEADDR)
// binds the same port ("ok"), connects to the same remote ("EADDRNOTAVAIL"), then another ("ok").
#[test]
fn connect_bound_checks_four_tuple_linux_inet_check_established() {
    let mut f = fixture();
    let r1 = remote(1, 5000);
    f.bind(1, A1, 41234, REUSE_ADDR).unwrap();
    assert_eq!(
        f.binds.connect_bound(SocketId(1), A1, r1, |_| true),
        Ok(SocketAddrV4::new(A1, 41234))
    );
    assert!(f.bind(2, A1, 41234, REUSE_ADDR).is_ok());
    assert_eq!(
        f.binds.connect_bound(SocketId(2), A1, r1, |_| true),
        Err(Errno::EADDRNOTAVAIL)
    );
    assert_eq!(f.binds.counters.connect_tuple_in_use, 1);
    assert_eq!(f.binds.state(SocketId(2)), Some(BindState::Bound));
    assert!(
        f.binds
            .connect_bound(SocketId(2), A1, remote(1, 5001), |_| true)
            .is_ok()
    );
    // The caller's check (its connection table) can refuse too.
    f.bind(3, A1, 41235, PLAIN).unwrap();
    assert_eq!(
        f.binds.connect_bound(SocketId(3), A1, r1, |_| false),
        Err(Errno::EADDRNOTAVAIL)
    );
    // A wildcard-bound socket takes the route's source address.
    f.bind(4, ANY, 41236, PLAIN).unwrap();
    assert_eq!(
        f.binds.connect_bound(SocketId(4), A2, r1, |_| true),
        Ok(SocketAddrV4::new(A2, 41236))
    );
}

// Linux __inet_stream_connect: `if (sk->sk_state != TCP_CLOSE) err = -EISCONN`.
#[test]
fn connect_on_listening_or_connected_socket_is_eisconn() {
    let mut f = fixture();
    f.bind(1, A1, PORT, PLAIN).unwrap();
    f.listen(1, PLAIN).unwrap();
    assert_eq!(
        f.binds
            .connect_bound(SocketId(1), A1, remote(1, 80), |_| true),
        Err(Errno::EISCONN)
    );
    f.bind(2, A1, PORT + 1, PLAIN).unwrap();
    f.binds
        .connect_bound(SocketId(2), A1, remote(1, 80), |_| true)
        .unwrap();
    assert_eq!(
        f.binds
            .connect_bound(SocketId(2), A1, remote(1, 81), |_| true),
        Err(Errno::EISCONN)
    );
    // An unbound socket must go through ephemeral_for_connect.
    assert_eq!(
        f.binds
            .connect_bound(SocketId(9), A1, remote(1, 80), |_| true),
        Err(Errno::EINVAL)
    );
    // ... and a bound one must not.
    assert_eq!(f.connect(2, A1, remote(1, 80)), Err(Errno::EINVAL));
    assert_eq!(
        f.connect(10, NOT_OURS, remote(1, 80)),
        Err(Errno::EADDRNOTAVAIL)
    );
}

// Linux tcp_set_state(TCP_CLOSE): inet_put_port unless SOCK_BINDPORT_LOCK; the bound address
// is restored unless SOCK_BINDADDR_LOCK (here: the address given to bind).
#[test]
fn disconnect_releases_autobound_port_keeps_explicit_linux_bindport_lock() {
    let mut f = fixture();
    let port = f.connect(1, A1, remote(1, 80)).unwrap();
    assert!(!f.binds.disconnect(SocketId(1)));
    assert_eq!(f.binds.owners_of(port), 0);
    assert_eq!(f.binds.local_addr(SocketId(1)), None);

    f.bind(2, ANY, PORT, PLAIN).unwrap();
    f.binds
        .connect_bound(SocketId(2), A1, remote(1, 80), |_| true)
        .unwrap();
    assert!(f.binds.disconnect(SocketId(2)));
    assert_eq!(
        f.binds.local_addr(SocketId(2)),
        Some(SocketAddrV4::new(ANY, PORT))
    );
    assert_eq!(f.binds.state(SocketId(2)), Some(BindState::Bound));
    assert!(!f.binds.disconnect(SocketId(99)));
}

#[test]
fn unbind_frees_the_port_linux_inet_put_port() {
    let mut f = fixture();
    f.bind(1, A1, PORT, PLAIN).unwrap();
    assert_eq!(f.bind(2, A1, PORT, PLAIN), Err(Errno::EADDRINUSE));
    assert!(f.binds.unbind(SocketId(1)));
    assert!(!f.binds.unbind(SocketId(1)));
    assert_eq!(f.binds.owners_of(PORT), 0);
    assert!(f.bind(2, A1, PORT, PLAIN).is_ok());
    assert_eq!(f.binds.len(), 1);
    assert_eq!(f.binds.enter_time_wait(SocketId(7)), Err(Errno::EINVAL));
}

// Linux 6.18 netns, SOCK_DGRAM: "udp no opts: ok EADDRINUSE", "udp wild then specific: ok EADDRINUSE",
// "udp reuseaddr both: ok ok", "udp reuseport both: ok ok", "udp reuseport diff uid: ok EADDRINUSE"
// (udp_lib_lport_inuse): the same table, used for UDP, where nothing listens.
#[test]
fn udp_port_space_follows_udp_lib_lport_inuse() {
    assert_eq!(two(A1, PLAIN, false, A1, PLAIN), Err(Errno::EADDRINUSE));
    assert_eq!(two(ANY, PLAIN, false, A1, PLAIN), Err(Errno::EADDRINUSE));
    assert!(two(A1, REUSE_ADDR, false, A1, REUSE_ADDR).is_ok());
    assert!(two(A1, REUSE_PORT, false, A1, REUSE_PORT).is_ok());
    assert_eq!(
        two(
            A1,
            REUSE_PORT,
            false,
            A1,
            BindOptions {
                owner: 65534,
                ..REUSE_PORT
            }
        ),
        Err(Errno::EADDRINUSE)
    );
}

// Linux __inet_inherit_port: an accepted child joins the listener's bind bucket.
#[test]
fn accepted_child_holds_the_listeners_port_linux_inet_inherit_port() {
    let mut f = fixture();
    f.bind(1, ANY, PORT, PLAIN).unwrap();
    f.listen(1, PLAIN).unwrap();
    let tuple = FourTuple::new(SocketAddrV4::new(A1, PORT), remote(1, 50000));
    f.binds.inherit_port(SocketId(2), &tuple, PLAIN).unwrap();
    assert_eq!(
        f.binds.inherit_port(SocketId(2), &tuple, PLAIN),
        Err(Errno::EINVAL)
    );
    assert_eq!(
        f.binds.local_addr(SocketId(2)),
        Some(SocketAddrV4::new(A1, PORT))
    );
    assert!(f.binds.unbind(SocketId(1)));
    // The child still holds the port after the listener closed.
    assert_eq!(f.bind(3, A1, PORT, PLAIN), Err(Errno::EADDRINUSE));
}

// DESIGN.md: active opens pick ports whose replies the NIC hashes to the opener's queue.
#[test]
fn connect_with_rss_filter_picks_ports_for_own_queue() {
    let rss = Rss::with_queues(4).unwrap();
    let range = EphemeralRange::LINUX_DEFAULT;
    for core in 0..4u16 {
        let mut binds = BindTable::new(BindConfig::new(vec![A1]), HashKey::new(3, 3));
        let mut ports = EphemeralPorts::new(
            range,
            usize::from(core),
            4,
            HashKey::new(4, u64::from(core)),
        )
        .unwrap();
        for i in 0..50u32 {
            let r = remote(7, 8000 + i as u16);
            let port = binds
                .ephemeral_for_connect(SocketId(i), PLAIN, A1, r, &mut ports, |t| {
                    rss.reply_queue(t) == core
                })
                .unwrap();
            assert!(ports.slice().contains(port));
            assert_eq!(
                rss.reply_queue(&FourTuple::new(SocketAddrV4::new(A1, port), r)),
                core
            );
        }
    }
}

// Linux 6.18 netns (found by the table_linux_parity differential test, then pinned):
// "A1 reuse uid65534; ANY reuse+rport; ANY rport: ok ok ok" but
// "A1 reuse uid65534; ANY rport: ok EADDRINUSE". The second socket sets the bucket's
// fastreuseport to STRICT for (uid 0, 0.0.0.0) (inet_csk_update_fastreuse), and the
// third then passes sk_reuseport_match without the full conflict check.
#[test]
fn bind_follows_linux_fastreuseport_strict_fast_path_sk_reuseport_match() {
    let stranger = BindOptions {
        owner: 65534,
        ..REUSE_ADDR
    };
    let mut f = fixture();
    f.bind(1, A1, PORT, stranger).unwrap();
    f.bind(2, ANY, PORT, REUSE_BOTH).unwrap();
    assert!(f.bind(3, ANY, PORT, REUSE_PORT).is_ok());

    let mut g = fixture();
    g.bind(1, A1, PORT, stranger).unwrap();
    assert_eq!(g.bind(3, ANY, PORT, REUSE_PORT), Err(Errno::EADDRINUSE));
}

fn udp_fixture() -> Fixture {
    Fixture {
        binds: BindTable::new(BindConfig::udp(vec![A1, A2]), HashKey::new(1, 2)),
        ports: EphemeralPorts::new(EphemeralRange::LINUX_DEFAULT, 0, 1, HashKey::new(3, 4))
            .unwrap(),
    }
}

// Linux 6.18.44 netns, SOCK_DGRAM (re-run 2026-12-04; this test first quoted
// "A2 plain; A1 rport; ANY rport: ok ok ok", which that kernel no longer answers):
// "A2 plain; A1 rport; ANY rport: ok ok EADDRINUSE",
// "A1 rport; A2 plain; ANY rport: ok ok EADDRINUSE",
// "ANY reuse; ANY reuse+rport; A1 rport: ok ok EADDRINUSE" and
// "A2 reuse; A1 rport; ANY reuse+rport: ok ok ok". udp_lib_lport_inuse refuses the
// bind if any overlapping owner conflicts, in whatever order they were bound: a
// SO_REUSEPORT match with the newest owner does not hide an older conflicting one.
#[test]
fn udp_bind_conflicts_with_any_overlapping_owner_linux_udp_lib_lport_inuse() {
    let mut f = udp_fixture();
    f.bind(1, A2, PORT, PLAIN).unwrap();
    f.bind(2, A1, PORT, REUSE_PORT).unwrap();
    assert_eq!(f.bind(3, ANY, PORT, REUSE_PORT), Err(Errno::EADDRINUSE));

    let mut g = udp_fixture();
    g.bind(1, A1, PORT, REUSE_PORT).unwrap();
    g.bind(2, A2, PORT, PLAIN).unwrap();
    assert_eq!(g.bind(3, ANY, PORT, REUSE_PORT), Err(Errno::EADDRINUSE));

    let mut h = udp_fixture();
    h.bind(1, ANY, PORT, REUSE_ADDR).unwrap();
    h.bind(2, ANY, PORT, REUSE_BOTH).unwrap();
    assert_eq!(h.bind(3, A1, PORT, REUSE_PORT), Err(Errno::EADDRINUSE));

    // Every overlapping owner excused (SO_REUSEADDR on both, or a SO_REUSEPORT match).
    let mut k = udp_fixture();
    k.bind(1, A2, PORT, REUSE_ADDR).unwrap();
    k.bind(2, A1, PORT, REUSE_PORT).unwrap();
    assert!(k.bind(3, ANY, PORT, REUSE_BOTH).is_ok());

    // UDP has no listen (sock_no_listen) and connect goes through bind(0).
    assert_eq!(g.listen(1, REUSE_PORT), Err(Errno::EOPNOTSUPP));
    assert_eq!(g.connect(9, A1, remote(1, 53)), Err(Errno::EOPNOTSUPP));
    // A connected UDP socket does not reserve its 4-tuple (ip4_datagram_connect).
    g.bind(4, A1, PORT + 1, REUSE_ADDR).unwrap();
    g.bind(5, A1, PORT + 1, REUSE_ADDR).unwrap();
    assert!(
        g.binds
            .connect_bound(SocketId(4), A1, remote(1, 53), |_| true)
            .is_ok()
    );
    assert!(
        g.binds
            .connect_bound(SocketId(5), A1, remote(1, 53), |_| true)
            .is_ok()
    );
}

// Linux __inet_check_established: a TIME-WAIT on the 4-tuple does not by itself
// make the port unusable for a connect; tcp_twsk_unique decides (the caller's
// `tuple_free`). A live connection on the tuple always does.
#[test]
fn connect_leaves_a_time_wait_tuple_to_the_caller_linux_tcp_twsk_unique() {
    let mut f = fixture_with_range(EphemeralRange::new(PORT, PORT).unwrap());
    let server = remote(1, 80);
    assert_eq!(f.connect(1, A1, server), Ok(PORT));
    // Live connection on the only tuple: no port, whatever the caller says.
    assert_eq!(f.connect(2, A1, server), Err(Errno::EADDRNOTAVAIL));
    f.binds.enter_time_wait(SocketId(1)).unwrap();
    // In TIME-WAIT: the caller refuses (e.g. the peer's timestamp is too fresh)...
    let refused =
        f.binds
            .ephemeral_for_connect(SocketId(3), PLAIN, A1, server, &mut f.ports, |_| false);
    assert_eq!(refused, Err(Errno::EADDRNOTAVAIL));
    // ... or lets tcp_tw_reuse take it: the same port, shared with the TIME-WAIT
    // owner until the engine frees it.
    assert_eq!(f.connect(4, A1, server), Ok(PORT));
    assert_eq!(f.binds.owners_of(PORT), 2);
    assert!(f.binds.unbind(SocketId(1)));
    assert_eq!(f.binds.owners_of(PORT), 1);
}

// Linux 6.18.44 netns, SOCK_DGRAM (the table_linux_parity scenario that the
// newest-owner-first rule got wrong): s0 rport, s1 reuse+rport, s2 reuse+rport,
// s3 plain; "s3 A2; s1 A2; s3 ANY; s0 A1; s2 ANY: ok EADDRINUSE EINVAL ok
// EADDRINUSE". s2's SO_REUSEPORT match with the newest owner (s0) does not let it
// past the older plain s3, and its SO_REUSEADDR changes nothing (s3 has none).
#[test]
fn udp_bind_reuse_both_still_refused_by_older_plain_owner_linux_udp_lib_lport_inuse() {
    let mut f = udp_fixture();
    let socks = [REUSE_PORT, REUSE_BOTH, REUSE_BOTH, PLAIN];
    let mut bind = |s: usize, addr| f.bind(s as u32, addr, PORT, socks[s]);
    assert!(bind(3, A2).is_ok());
    assert_eq!(bind(1, A2), Err(Errno::EADDRINUSE));
    assert_eq!(bind(3, ANY), Err(Errno::EINVAL));
    assert!(bind(0, A1).is_ok());
    assert_eq!(bind(2, ANY), Err(Errno::EADDRINUSE));
}

//! Ring buffers come from the engine thread's pool: once warm, a connection that sends,
//! receives and closes allocates no ring storage; a drained, idle connection holds
//! none (a busy one keeps its drained rings between exchanges, and gives them back once
//! quiet); a closed one that reaches TIME-WAIT becomes a record (no socket, no buffers).

mod support;

use core::net::SocketAddrV4;

use support::{IP_B, Net, any, connected_pair};
use surge_stack::Errno;
use surge_stack::socket::SocketHandle;
use surge_stack::table::BindOptions;
use surge_stack::tcp::buffer_pool::with_pool;

const PORT: u16 = 8080;

/// One request/response exchange on a new connection, then both sides close
/// (the client first, so it is the one in TIME-WAIT).
fn exchange(net: &mut Net, listener: SocketHandle) {
    let c = net.a.tcp_socket().expect("socket");
    assert_eq!(
        net.a.connect(c, SocketAddrV4::new(IP_B, PORT)),
        Err(Errno::EINPROGRESS)
    );
    let mut s = None;
    assert!(net.run_until(10_000, |n| {
        s = s.or_else(|| n.b.accept(listener).ok().map(|x| x.0));
        s.is_some() && n.a.readiness(c).is_ok_and(|r| r.writable)
    }));
    let s = s.expect("accepted");
    assert_eq!(net.a.send(c, &[7u8; 3000]), Ok(3000));
    let mut buf = vec![0u8; 4000];
    let mut got = 0;
    assert!(net.run_until(10_000, |n| {
        got += n.b.recv(s, &mut buf).unwrap_or(0);
        got == 3000
    }));
    assert_eq!(net.b.send(s, &[9u8; 2000]), Ok(2000));
    let mut back = 0;
    assert!(net.run_until(10_000, |n| {
        back += n.a.recv(c, &mut buf).unwrap_or(0);
        back == 2000
    }));
    net.a.close(c).expect("close client");
    net.run_until(200, |_| false);
    net.b.close(s).expect("close server");
    net.run_until(2_000, |_| false);
}

#[test]
fn warm_engines_allocate_no_ring_storage_per_connection() {
    let mut net = Net::new();
    let listener = net.b.tcp_socket().expect("socket");
    net.b
        .bind(listener, any(PORT), BindOptions::default())
        .expect("bind");
    net.b.listen(listener, 64).expect("listen");
    for _ in 0..5 {
        exchange(&mut net, listener);
    }
    let warm = with_pool(|p| p.stats);
    assert!(warm.allocated > 0);
    for _ in 0..50 {
        exchange(&mut net, listener);
    }
    let after = with_pool(|p| p.stats);
    assert_eq!(
        after.allocated, warm.allocated,
        "no ring allocated once warm"
    );
    assert!(
        after.reused >= warm.reused + 50 * 4,
        "every ring came from the pool"
    );
    let tcp = net.a.tcp_stats();
    assert_eq!(
        tcp.time_wait_records, 55,
        "the closing side keeps only records"
    );
    assert_eq!(net.b.tcp_stats().closed, 55);
}

/// Request/response exchanges on one connection: between them the drained rings stay
/// with the connection (no pool traffic per exchange); once the connection is quiet
/// (the delayed ACK went out, nothing in flight) both ends hold no ring storage.
#[test]
fn a_quiet_connection_holds_no_ring_storage_and_a_busy_one_keeps_it() {
    let mut net = Net::new();
    let (c, s) = connected_pair(&mut net, PORT);
    assert_eq!(with_pool(|p| p.lent_bytes()), 0, "no byte sent yet");
    let mut buf = [0u8; 256];
    let mut takes = Vec::new();
    for round in 0..40u8 {
        let before = with_pool(|p| p.stats);
        assert_eq!(net.a.send(c, &[round; 64]), Ok(64));
        assert!(net.run_until(1_000, |n| n.b.recv(s, &mut buf) == Ok(64)));
        assert_eq!(net.b.send(s, &buf[..64]), Ok(64));
        assert!(net.run_until(1_000, |n| n.a.recv(c, &mut buf) == Ok(64)));
        assert_eq!(buf[0], round);
        let after = with_pool(|p| p.stats);
        takes.push((after.reused + after.allocated) - (before.reused + before.allocated));
    }
    // Once the exchange runs back to back, its rings are not given back and taken
    // again each time (the first exchanges, 16 here, run in quick-ACK mode: no ACK is
    // owed after each, so the connection is quiet and gives its rings back).
    assert_eq!(
        takes[takes.len() - 10..],
        [0; 10],
        "pool takes per exchange: {takes:?}"
    );
    assert!(
        with_pool(|p| p.lent_bytes()) > 0,
        "the busy connection kept its rings"
    );
    // Quiet: the delayed ACK fires (40 ms), nothing is in flight; every ring is back.
    net.run_until(2_000, |_| false);
    assert_eq!(
        with_pool(|p| p.lent_bytes()),
        0,
        "a quiet connection holds no ring storage"
    );
    // And it still works.
    assert_eq!(net.a.send(c, &[1; 64]), Ok(64));
    assert!(net.run_until(1_000, |n| n.b.recv(s, &mut buf) == Ok(64)));
}

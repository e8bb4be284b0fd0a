//! Active opens through two engines on the in-memory link with a one-port
//! ephemeral range, so every choice shows: Linux `tcp_tw_reuse` (a connect takes
//! the 4-tuple of our own TIME-WAIT once the peer's last timestamp is a second
//! old, and not before, and never with it off), and `connect_from` on a second
//! address (one more connection to the same server from the same port).

mod support;

use core::net::{Ipv4Addr, SocketAddrV4};
use core::time::Duration;

use support::{IP_A, IP_B, MAC_A, MAC_B, Net, any, config};
use surge_datapath::{PipeConfig, PipeDevice};
use surge_stack::Errno;
use surge_stack::engine::Engine;
use surge_stack::iface::Ipv4Cidr;
use surge_stack::socket::SocketHandle;
use surge_stack::table::{BindOptions, EphemeralRange};

const PORT: u16 = 8080;
const ONLY_PORT: u16 = 40000;
/// A's second address.
const IP_A2: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 3);

fn net(tw_reuse: bool) -> Net {
    let (da, db) = PipeDevice::pair(&PipeConfig::default()).expect("pipe");
    let mut a = config(MAC_A, IP_A, 1);
    a.ephemeral = EphemeralRange::new(ONLY_PORT, ONLY_PORT).expect("range");
    a.tw_reuse = tw_reuse;
    a.iface.addrs.push(Ipv4Cidr::new(IP_A2, 24).expect("cidr"));
    Net {
        a: Engine::new(da, a).expect("engine a"),
        b: Engine::new(db, config(MAC_B, IP_B, 2)).expect("engine b"),
        now: surge_stack::time::Instant::ZERO,
    }
}

fn listen(net: &mut Net) -> SocketHandle {
    let l = net.b.tcp_socket().expect("socket");
    net.b
        .bind(l, any(PORT), BindOptions::default())
        .expect("bind");
    net.b.listen(l, 16).expect("listen");
    l
}

/// Waits for B to accept one connection; returns it and its peer.
fn accept(net: &mut Net, listener: SocketHandle) -> (SocketHandle, SocketAddrV4) {
    let mut got = None;
    let done = net.run_until(20_000, |n| {
        got = n.b.accept(listener).ok();
        got.is_some()
    });
    assert!(done, "B accepted nothing");
    got.expect("accepted")
}

/// Opens a connection from A (port `ONLY_PORT`), closes it from A first, and waits
/// until B's side is gone: A holds the 4-tuple in TIME-WAIT.
fn leave_time_wait(net: &mut Net, listener: SocketHandle) {
    let c = net.a.tcp_socket().expect("socket");
    let server = SocketAddrV4::new(IP_B, PORT);
    assert_eq!(net.a.connect(c, server), Err(Errno::EINPROGRESS));
    let (s, peer) = accept(net, listener);
    assert_eq!(peer, SocketAddrV4::new(IP_A, ONLY_PORT));
    net.a.close(c).expect("close a");
    let mut buf = [0u8; 16];
    assert!(
        net.run_until(20_000, |n| n.b.recv(s, &mut buf) == Ok(0)),
        "B saw no FIN"
    );
    net.b.close(s).expect("close b");
    assert!(
        net.run_until(20_000, |n| n.b.draining() == 0 && n.a.draining() == 0),
        "the close handshake did not finish"
    );
}

fn try_connect(net: &mut Net) -> (SocketHandle, Result<(), Errno>) {
    let c = net.a.tcp_socket().expect("socket");
    let r = net.a.connect(c, SocketAddrV4::new(IP_B, PORT));
    (c, r)
}

#[test]
fn connect_takes_over_our_time_wait_after_a_second_like_tcp_tw_reuse() {
    let mut net = net(true);
    let listener = listen(&mut net);
    leave_time_wait(&mut net, listener);
    // The only port's 4-tuple is in our TIME-WAIT, the peer's last timestamp fresh:
    // Linux tcp_twsk_unique refuses (PAWS could not tell the incarnations apart).
    let (c, r) = try_connect(&mut net);
    assert_eq!(r, Err(Errno::EADDRNOTAVAIL));
    net.a.close(c).expect("close");
    assert_eq!(net.a.tcp_stats().time_wait_reused, 0);
    // A second later (TIME-WAIT lasts 60 s) the tuple may be reused.
    for _ in 0..110 {
        net.step(Duration::from_millis(10));
    }
    let (c, r) = try_connect(&mut net);
    assert_eq!(r, Err(Errno::EINPROGRESS));
    assert_eq!(net.a.tcp_stats().time_wait_reused, 1);
    let (_, peer) = accept(&mut net, listener);
    assert_eq!(peer, SocketAddrV4::new(IP_A, ONLY_PORT), "the same 4-tuple");
    assert!(
        net.run_until(20_000, |n| n.a.readiness(c).is_ok_and(|r| r.writable)),
        "the reused connection did not establish"
    );
}

#[test]
fn without_tw_reuse_our_time_wait_keeps_its_tuple() {
    let mut net = net(false);
    let listener = listen(&mut net);
    leave_time_wait(&mut net, listener);
    for _ in 0..110 {
        net.step(Duration::from_millis(10));
    }
    let (_, r) = try_connect(&mut net);
    assert_eq!(r, Err(Errno::EADDRNOTAVAIL));
    assert_eq!(net.a.tcp_stats().time_wait_reused, 0);
}

#[test]
fn connect_from_a_second_address_opens_one_more_connection_per_port() {
    let mut net = net(true);
    let listener = listen(&mut net);
    let server = SocketAddrV4::new(IP_B, PORT);
    let first = net.a.tcp_socket().expect("socket");
    assert_eq!(net.a.connect(first, server), Err(Errno::EINPROGRESS));
    let (_, peer) = accept(&mut net, listener);
    assert_eq!(peer, SocketAddrV4::new(IP_A, ONLY_PORT));
    // The primary address has no port left for this server.
    let (_, r) = try_connect(&mut net);
    assert_eq!(r, Err(Errno::EADDRNOTAVAIL));
    // The second address has: same port, another 4-tuple; B answers it there.
    let second = net.a.tcp_socket().expect("socket");
    assert_eq!(
        net.a.connect_from(second, IP_A2, server),
        Err(Errno::EINPROGRESS)
    );
    let (_, peer) = accept(&mut net, listener);
    assert_eq!(peer, SocketAddrV4::new(IP_A2, ONLY_PORT));
    assert!(
        net.run_until(20_000, |n| n.a.readiness(second).is_ok_and(|r| r.writable)),
        "the connection from the second address did not establish"
    );
    assert_eq!(
        net.a.local_addr(second),
        Ok(SocketAddrV4::new(IP_A2, ONLY_PORT))
    );
    // Misuse: an address that is not ours, a socket that is already bound.
    let other = net.a.tcp_socket().expect("socket");
    assert_eq!(
        net.a
            .connect_from(other, Ipv4Addr::new(198, 18, 0, 9), server),
        Err(Errno::EADDRNOTAVAIL)
    );
    net.a
        .bind(other, SocketAddrV4::new(IP_A, 5000), BindOptions::default())
        .expect("bind");
    assert_eq!(net.a.connect_from(other, IP_A2, server), Err(Errno::EINVAL));
}

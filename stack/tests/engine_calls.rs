//! `send` and `recv` on every kind of socket, through the engine's one call each:
//! a connection (bytes, readiness recorded as reported, an event only on a change),
//! a socket without a connection (`recv` ENOTCONN, `send` EPIPE, as Linux), a UDP
//! socket (its datagram calls, taken out of line) and a closed handle (EBADF).

mod support;

use core::net::SocketAddrV4;

use support::{IP_B, Net, any, connected_pair};
use surge_stack::Errno;
use surge_stack::engine::SocketEvent;
use surge_stack::table::BindOptions;

const PORT: u16 = 8081;
const UDP_PORT: u16 = 5353;

fn drain(engine: &mut surge_stack::engine::Engine<surge_datapath::PipeDevice>) -> Vec<SocketEvent> {
    let mut events = Vec::new();
    engine.poll_events(&mut events);
    events
}

#[test]
fn a_recv_that_empties_the_queue_is_reported_and_the_next_segment_is_an_event() {
    let mut net = Net::new();
    let (c, s) = connected_pair(&mut net, PORT);
    drain(&mut net.a);
    drain(&mut net.b);
    assert_eq!(net.a.send(c, b"ping"), Ok(4));
    assert!(net.run_until(100, |n| n.b.readiness(s).is_ok_and(|r| r.readable)));
    let events = drain(&mut net.b);
    assert!(
        events.iter().any(|e| e.handle == s && e.readiness.readable),
        "the segment made the socket readable: {events:?}"
    );
    let mut buf = [0u8; 16];
    assert_eq!(net.b.recv(s, &mut buf), Ok(4));
    assert_eq!(&buf[..4], b"ping");
    assert_eq!(net.b.recv(s, &mut buf), Err(Errno::EAGAIN));
    // The recv told the program "not readable": no event says so again.
    assert!(
        drain(&mut net.b)
            .iter()
            .all(|e| e.handle != s || e.readiness.readable),
        "a recv's own answer is not reported again"
    );
    // The answer goes the other way, and the next request is an event again.
    assert_eq!(net.b.send(s, b"pong"), Ok(4));
    assert!(net.run_until(100, |n| n.a.readiness(c).is_ok_and(|r| r.readable)));
    assert_eq!(net.a.recv(c, &mut buf), Ok(4));
    assert_eq!(&buf[..4], b"pong");
    assert_eq!(net.a.send(c, b"again"), Ok(5));
    assert!(net.run_until(100, |n| n.b.readiness(s).is_ok_and(|r| r.readable)));
    assert!(
        drain(&mut net.b)
            .iter()
            .any(|e| e.handle == s && e.readiness.readable),
        "readable again after the recv that emptied it"
    );
}

#[test]
fn sockets_without_a_connection_answer_enotconn_and_epipe() {
    let mut net = Net::new();
    let fresh = net.a.tcp_socket().expect("socket");
    let listener = net.b.tcp_socket().expect("socket");
    net.b
        .bind(listener, any(PORT), BindOptions::default())
        .expect("bind");
    net.b.listen(listener, 4).expect("listen");
    let mut buf = [0u8; 8];
    assert_eq!(net.a.recv(fresh, &mut buf), Err(Errno::ENOTCONN));
    assert_eq!(net.a.send(fresh, b"x"), Err(Errno::EPIPE));
    assert_eq!(net.b.recv(listener, &mut buf), Err(Errno::ENOTCONN));
    assert_eq!(net.b.send(listener, b"x"), Err(Errno::EPIPE));
    // Still usable: a connect on the fresh socket reaches the listener.
    assert_eq!(
        net.a.connect(fresh, SocketAddrV4::new(IP_B, PORT)),
        Err(Errno::EINPROGRESS)
    );
    assert!(net.run_until(1000, |n| n.b.accept(listener).is_ok()));
}

#[test]
fn udp_sockets_take_send_and_recv_as_datagrams() {
    let mut net = Net::new();
    let a = net.a.udp_socket().expect("udp");
    let b = net.b.udp_socket().expect("udp");
    net.b
        .bind(b, any(UDP_PORT), BindOptions::default())
        .expect("bind");
    let mut buf = [0u8; 32];
    assert_eq!(net.a.send(a, b"no peer"), Err(Errno::EDESTADDRREQ));
    net.a
        .connect(a, SocketAddrV4::new(IP_B, UDP_PORT))
        .expect("connect");
    assert_eq!(net.a.send(a, b"datagram"), Ok(8));
    assert!(net.run_until(100, |n| n.b.readiness(b).is_ok_and(|r| r.readable)));
    assert_eq!(net.b.recv(b, &mut buf), Ok(8));
    assert_eq!(&buf[..8], b"datagram");
    assert_eq!(net.b.recv(b, &mut buf), Err(Errno::EAGAIN));
}

#[test]
fn closed_handles_are_ebadf() {
    let mut net = Net::new();
    let (c, _s) = connected_pair(&mut net, PORT);
    let u = net.a.udp_socket().expect("udp");
    net.a.close(c).expect("close");
    net.a.close(u).expect("close");
    let mut buf = [0u8; 8];
    for h in [c, u] {
        assert_eq!(net.a.recv(h, &mut buf), Err(Errno::EBADF));
        assert_eq!(net.a.send(h, b"x"), Err(Errno::EBADF));
    }
}

//! ICMP errors about UDP (RFC 1122 §4.1.3.3), as Linux reports them: a
//! connected socket hears of a port unreachable once (ECONNREFUSED on the next
//! `recv` or `send`, then cleared); an unconnected socket does not.

mod support;

use core::net::SocketAddrV4;
use core::time::Duration;

use support::{IP_B, Net, any};
use surge_stack::Errno;
use surge_stack::engine::DropReason;
use surge_stack::table::BindOptions;

#[test]
fn port_unreachable_is_econnrefused_once_on_a_connected_udp_socket() {
    let mut net = Net::new();
    let s = net.a.udp_socket().expect("socket");
    net.a.bind(s, any(0), BindOptions::default()).expect("bind");
    net.a
        .connect_udp(s, SocketAddrV4::new(IP_B, 9999))
        .expect("connect");
    net.a.send_to(s, b"anyone?", None).expect("send");
    let mut buf = [0u8; 64];
    let mut got = Err(Errno::EAGAIN);
    assert!(net.run_until(1000, |n| {
        got = n.a.recv_from(s, &mut buf).map(|r| r.0);
        got != Err(Errno::EAGAIN)
    }));
    assert_eq!(got, Err(Errno::ECONNREFUSED), "B has no socket on 9999");
    assert_eq!(net.b.stats().dropped(DropReason::UdpNoPort), 1);
    // Reported once: cleared afterwards.
    assert_eq!(
        net.a.recv_from(s, &mut buf).map(|r| r.0),
        Err(Errno::EAGAIN)
    );
    // SO_ERROR reports a pending error and clears it.
    net.a.send_to(s, b"again", None).expect("send");
    assert!(net.run_until(1000, |n| n.b.stats().dropped(DropReason::UdpNoPort) == 2));
    net.step(Duration::from_millis(1));
    assert_eq!(net.a.take_error(s), Ok(Some(Errno::ECONNREFUSED)));
    assert_eq!(net.a.take_error(s), Ok(None));
    // The next error fails the next send, once.
    net.a.send_to(s, b"again", None).expect("send");
    assert!(net.run_until(1000, |n| n.b.stats().dropped(DropReason::UdpNoPort) == 3));
    net.step(Duration::from_millis(1));
    assert_eq!(net.a.send_to(s, b"third", None), Err(Errno::ECONNREFUSED));
    assert_eq!(net.a.send_to(s, b"fourth", None), Ok(6));
}

#[test]
fn an_unconnected_udp_socket_hears_nothing_of_icmp_errors() {
    let mut net = Net::new();
    let s = net.a.udp_socket().expect("socket");
    net.a.bind(s, any(0), BindOptions::default()).expect("bind");
    net.a
        .send_to(s, b"anyone?", Some(SocketAddrV4::new(IP_B, 9999)))
        .expect("send");
    assert!(net.run_until(1000, |n| n.a.stats().dropped(DropReason::IcmpIgnored) == 1));
    let mut buf = [0u8; 64];
    assert_eq!(
        net.a.recv_from(s, &mut buf).map(|r| r.0),
        Err(Errno::EAGAIN)
    );
    assert_eq!(net.b.stats().dropped(DropReason::UdpNoPort), 1);
}

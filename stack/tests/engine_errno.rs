//! The errnos of the engine's TCP calls on sockets in every state, as Linux 6.18
//! answers them (the kernel's answers, probed with the same calls on kernel
//! sockets, are asserted call for call by `table_errno_parity.rs`, a root test): SO_ERROR is
//! cleared by reading it, and so is the error `recv`, `send` or a second `connect`
//! reports; a second `connect` says how a non-blocking one went; `shutdown` on a
//! socket that is not connected is ENOTCONN.

mod support;

use core::net::SocketAddrV4;
use core::time::Duration;

use support::{IP_B, Net, any};
use surge_stack::Errno;
use surge_stack::socket::SocketHandle;
use surge_stack::table::BindOptions;

const PORT: u16 = 8080;
const CLOSED_PORT: u16 = 9;

fn server(net: &mut Net) -> SocketHandle {
    let l = net.b.tcp_socket().expect("socket");
    net.b
        .bind(l, any(PORT), BindOptions::default())
        .expect("bind");
    net.b.listen(l, 8).expect("listen");
    l
}

/// A non-blocking connect to a closed port, run until the RST arrived.
fn refused(net: &mut Net) -> SocketHandle {
    let c = net.a.tcp_socket().expect("socket");
    let to = SocketAddrV4::new(IP_B, CLOSED_PORT);
    assert_eq!(net.a.connect(c, to), Err(Errno::EINPROGRESS));
    assert!(net.run_until(1000, |n| n.a.readiness(c).is_ok_and(|r| r.error)));
    c
}

/// An established pair: (client on a, accepted on b); with `confirm`, a second
/// `connect` confirmed the first (Linux: the socket is then SS_CONNECTED).
fn pair(net: &mut Net, listener: SocketHandle, confirm: bool) -> (SocketHandle, SocketHandle) {
    let c = net.a.tcp_socket().expect("socket");
    let to = SocketAddrV4::new(IP_B, PORT);
    assert_eq!(net.a.connect(c, to), Err(Errno::EINPROGRESS));
    let mut accepted = None;
    assert!(net.run_until(1000, |n| {
        accepted = accepted.or_else(|| n.b.accept(listener).ok());
        accepted.is_some() && n.a.readiness(c).is_ok_and(|r| r.writable)
    }));
    if confirm {
        assert_eq!(net.a.connect(c, to), Ok(()), "the second connect: done");
        assert_eq!(net.a.connect(c, to), Err(Errno::EISCONN));
    }
    (c, accepted.expect("accepted").0)
}

#[test]
fn so_error_is_cleared_by_reading_it() {
    let mut net = Net::new();
    let c = refused(&mut net);
    assert_eq!(net.a.take_error(c), Ok(Some(Errno::ECONNREFUSED)));
    assert_eq!(net.a.take_error(c), Ok(None), "read once, then cleared");
    let r = net.a.readiness(c).expect("readiness");
    assert!(!r.error, "no error pending any more: {r:?}");
    assert!(r.hangup && r.readable, "still closed, reads end of stream");
    let mut buf = [0u8; 4];
    assert_eq!(
        net.a.recv(c, &mut buf),
        Ok(0),
        "then recv says end of stream"
    );
    assert_eq!(net.a.send(c, b"x"), Err(Errno::EPIPE), "and send EPIPE");
    assert_eq!(net.a.shutdown_write(c), Err(Errno::ENOTCONN));
    let to = SocketAddrV4::new(IP_B, CLOSED_PORT);
    assert_eq!(
        net.a.connect(c, to),
        Err(Errno::ECONNABORTED),
        "a second connect: the error was read already"
    );
    assert_eq!(
        net.a.connect(c, to),
        Err(Errno::EINPROGRESS),
        "a third connect starts afresh"
    );
    assert!(net.run_until(1000, |n| n.a.readiness(c).is_ok_and(|r| r.error)));
    assert_eq!(net.a.take_error(c), Ok(Some(Errno::ECONNREFUSED)));
}

#[test]
fn recv_reports_the_error_once_then_end_of_stream() {
    let mut net = Net::new();
    let c = refused(&mut net);
    let mut buf = [0u8; 4];
    assert_eq!(net.a.recv(c, &mut buf), Err(Errno::ECONNREFUSED));
    assert_eq!(net.a.recv(c, &mut buf), Ok(0));
    assert_eq!(net.a.take_error(c), Ok(None), "recv consumed it");
}

#[test]
fn send_reports_the_error_once_then_epipe() {
    let mut net = Net::new();
    let c = refused(&mut net);
    assert_eq!(net.a.send(c, b"x"), Err(Errno::ECONNREFUSED));
    assert_eq!(net.a.send(c, b"x"), Err(Errno::EPIPE));
}

#[test]
fn a_second_connect_reports_the_failure_then_a_third_retries() {
    let mut net = Net::new();
    let c = refused(&mut net);
    let to = SocketAddrV4::new(IP_B, CLOSED_PORT);
    assert_eq!(net.a.connect(c, to), Err(Errno::ECONNREFUSED));
    assert_eq!(net.a.take_error(c), Ok(None), "connect consumed it");
    // Unconnected again: the same socket connects to a listening port.
    let l = server(&mut net);
    assert_eq!(
        net.a.connect(c, SocketAddrV4::new(IP_B, PORT)),
        Err(Errno::EINPROGRESS)
    );
    assert!(net.run_until(1000, |n| n.a.readiness(c).is_ok_and(|r| r.writable)));
    assert!(net.b.accept(l).is_ok());
}

#[test]
fn reset_connection_errnos() {
    let mut net = Net::new();
    let l = server(&mut net);
    let (c, s) = pair(&mut net, l, true);
    let mut o = net.b.tcp_options(s).expect("options");
    o.linger = Some(Duration::ZERO);
    net.b.set_tcp_options(s, o).expect("linger");
    net.b.close(s).expect("close");
    assert!(net.run_until(1000, |n| n.a.readiness(c).is_ok_and(|r| r.error)));
    assert_eq!(net.a.take_error(c), Ok(Some(Errno::ECONNRESET)));
    assert_eq!(net.a.take_error(c), Ok(None));
    let mut buf = [0u8; 4];
    assert_eq!(net.a.recv(c, &mut buf), Ok(0));
    assert_eq!(net.a.send(c, b"x"), Err(Errno::EPIPE));
    assert_eq!(net.a.shutdown_write(c), Err(Errno::ENOTCONN));
    assert_eq!(
        net.a.connect(c, SocketAddrV4::new(IP_B, PORT)),
        Err(Errno::EISCONN),
        "it was connected (Linux SS_CONNECTED stays)"
    );
    assert_eq!(net.a.peer_addr(c), Err(Errno::ENOTCONN));

    // send first: the reset, then EPIPE.
    let (c, s) = pair(&mut net, l, true);
    net.b.set_tcp_options(s, o).expect("linger");
    net.b.close(s).expect("close");
    assert!(net.run_until(1000, |n| n.a.readiness(c).is_ok_and(|r| r.error)));
    assert_eq!(net.a.send(c, b"x"), Err(Errno::ECONNRESET));
    assert_eq!(net.a.send(c, b"x"), Err(Errno::EPIPE));
    assert_eq!(net.a.recv(c, &mut buf), Ok(0));

    // Never confirmed by a second connect (Linux SS_CONNECTING): a connect after
    // the reset reports it (ECONNABORTED once read) and unconnects the socket.
    let (c, s) = pair(&mut net, l, false);
    net.b.set_tcp_options(s, o).expect("linger");
    net.b.close(s).expect("close");
    assert!(net.run_until(1000, |n| n.a.readiness(c).is_ok_and(|r| r.error)));
    assert_eq!(net.a.take_error(c), Ok(Some(Errno::ECONNRESET)));
    let to = SocketAddrV4::new(IP_B, PORT);
    assert_eq!(net.a.connect(c, to), Err(Errno::ECONNABORTED));
    assert_eq!(net.a.connect(c, to), Err(Errno::EINPROGRESS));
}

#[test]
fn shutdown_on_sockets_that_are_not_connected() {
    let mut net = Net::new();
    let l = server(&mut net);
    let fresh = net.a.tcp_socket().expect("socket");
    assert_eq!(net.a.shutdown_write(fresh), Err(Errno::ENOTCONN));
    assert_eq!(
        net.b.shutdown_write(l),
        Ok(()),
        "SHUT_WR on a listener does nothing (Linux inet_shutdown)"
    );
    assert_eq!(net.b.take_error(l), Ok(None));
    assert_eq!(net.a.take_error(fresh), Ok(None));
    // The listener still works.
    let (c, _) = pair(&mut net, l, false);
    assert_eq!(net.a.shutdown_write(c), Ok(()));
    assert_eq!(net.a.shutdown_write(c), Ok(()), "twice is fine");
    assert_eq!(net.a.send(c, b"x"), Err(Errno::EPIPE), "after SHUT_WR");
}

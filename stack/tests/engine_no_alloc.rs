//! The in-loop request path allocates nothing (issue 17): once a connection is up and
//! has moved its first requests, a 64-byte request and its echo (send, poll both
//! engines, events, recv, echo back, recv) make no heap allocation in either engine:
//! the frames, ring blocks, timer entries, dirty and ready lists are all reused.
//!
//! The counting allocator counts this thread's allocations inside `count_allocations`;
//! keep one measuring test in this binary.

#[global_allocator]
static ALLOCATOR: surge_datapath::alloc_count::CountingAllocator =
    surge_datapath::alloc_count::CountingAllocator;
mod support;

use core::net::SocketAddrV4;
use core::time::Duration;

use support::{IP_B, Net, any};
use surge_datapath::alloc_count::count_allocations;
use surge_stack::Errno;
use surge_stack::engine::SocketEvent;
use surge_stack::socket::SocketHandle;
use surge_stack::table::BindOptions;

const PORT: u16 = 8080;
const MESSAGE: usize = 64;

/// One request and its echo; panics if it does not complete within a bounded number
/// of polls. `events` and `buf` are the caller's, reused.
fn exchange(
    net: &mut Net,
    client: SocketHandle,
    conn: SocketHandle,
    request: &[u8; MESSAGE],
    events: &mut Vec<SocketEvent>,
    buf: &mut [u8; 4 * MESSAGE],
) {
    assert_eq!(net.a.send(client, request), Ok(MESSAGE));
    let (mut echoed, mut back) = (0, 0);
    for _ in 0..64 {
        net.step(Duration::from_micros(10));
        events.clear();
        net.b.poll_events(events);
        while echoed < MESSAGE {
            match net.b.recv(conn, &mut buf[..]) {
                Ok(n) => {
                    assert!(n > 0, "the client does not close");
                    assert_eq!(net.b.send(conn, &buf[..n]), Ok(n));
                    echoed += n;
                }
                Err(Errno::EAGAIN) => break,
                Err(e) => panic!("server recv: {e:?}"),
            }
        }
        events.clear();
        net.a.poll_events(events);
        while back < MESSAGE {
            match net.a.recv(client, &mut buf[..]) {
                Ok(n) => {
                    assert!(n > 0, "the server does not close");
                    assert_eq!(&buf[..n], &request[back..back + n]);
                    back += n;
                }
                Err(Errno::EAGAIN) => break,
                Err(e) => panic!("client recv: {e:?}"),
            }
        }
        if back == MESSAGE {
            return;
        }
    }
    panic!("no echo after 64 polls: {echoed} echoed, {back} back");
}

#[test]
fn steady_request_and_echo_allocate_nothing() {
    let mut net = Net::new();
    let listener = net.b.tcp_socket().expect("socket");
    net.b
        .bind(listener, any(PORT), BindOptions::default())
        .expect("bind");
    net.b.listen(listener, 16).expect("listen");
    let client = net.a.tcp_socket().expect("socket");
    assert_eq!(
        net.a.connect(client, SocketAddrV4::new(IP_B, PORT)),
        Err(Errno::EINPROGRESS)
    );
    let mut accepted = None;
    assert!(net.run_until(1000, |n| {
        accepted = n.b.accept(listener).ok();
        accepted.is_some()
    }));
    let (conn, _) = accepted.expect("accepted");
    let mut events = Vec::with_capacity(64);
    let mut buf = [0u8; 4 * MESSAGE];
    // Warm up: the first requests fill the pools, lists and the neighbour cache.
    for i in 0..200u32 {
        let request = [i as u8; MESSAGE];
        exchange(&mut net, client, conn, &request, &mut events, &mut buf);
    }
    let ((), allocations) = count_allocations(|| {
        for i in 0..2000u32 {
            let request = [(i % 251) as u8; MESSAGE];
            exchange(&mut net, client, conn, &request, &mut events, &mut buf);
        }
    });
    assert_eq!(
        allocations, 0,
        "2,000 requests and echoes allocated {allocations} times"
    );
}

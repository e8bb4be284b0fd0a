//! Many cross-thread streams echoing at once allocate nothing once running,
//! in any thread: the loop's list of streams to wake keeps its capacity.
//! (Its own test binary: it counts the allocations of the whole process.)

use core::net::SocketAddrV4;
use std::io::{Read, Write};
use std::time::Duration;

use surge_datapath::alloc_count::{CountingAllocator, total_allocations};

mod support;
use support::runtime::{SERVER_IP, stacks};

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

const CALL_LIMIT: Duration = Duration::from_secs(10);

#[test]
fn many_streams_echo_with_no_allocation_once_running() {
    const STREAMS: usize = 16;
    let (server, client) = stacks(1);
    let addr = SocketAddrV4::new(SERVER_IP, 8300);
    let listener = server.tcp_listen(addr, 64).expect("listen");
    let mut clients: Vec<_> = (0..STREAMS)
        .map(|_| {
            let mut c = client.tcp_connect(addr).expect("connect");
            c.set_read_timeout(Some(CALL_LIMIT));
            c.set_write_timeout(Some(CALL_LIMIT));
            c
        })
        .collect();
    let echo: Vec<_> = (0..STREAMS)
        .map(|_| {
            let mut s = listener.accept().expect("accept").0;
            s.set_read_timeout(Some(CALL_LIMIT));
            s.set_write_timeout(Some(CALL_LIMIT));
            std::thread::spawn(move || {
                let mut buf = [0u8; 64];
                while s.read_exact(&mut buf).is_ok() && s.write_all(&buf).is_ok() {}
            })
        })
        .collect();
    let mut back = [0u8; 64];
    let mut round = |clients: &mut Vec<surge_stack::runtime::TcpStream>| {
        for c in clients.iter_mut() {
            c.write_all(&[5u8; 64]).expect("write");
        }
        for c in clients.iter_mut() {
            c.read_exact(&mut back).expect("read");
            assert_eq!(back, [5u8; 64]);
        }
    };
    // Warm up: buffers, the wake list and the threads' parking handles grow
    // to what this load needs.
    for _ in 0..300 {
        round(&mut clients);
    }
    let before = total_allocations();
    for _ in 0..500 {
        round(&mut clients);
    }
    let allocations = total_allocations() - before;
    assert_eq!(
        allocations, 0,
        "500 rounds of {STREAMS} echoes made {allocations} allocations"
    );
    drop(clients);
    for t in echo {
        t.join().expect("echo");
    }
}

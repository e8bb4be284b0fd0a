//! The remembered path of the last destination (`engine/tx_path.rs`) must not
//! hide a stale neighbour: a connection sending past the entry's reachable time
//! still revalidates it with an ARP request (RFC 1122 §2.3.2.1), once, and the
//! segments keep flowing meanwhile.

mod support;

use core::time::Duration;

use support::{Net, connected_pair};
use surge_stack::neighbor::NeighborConfig;
use surge_stack::socket::SocketHandle;

/// Sends `data` from A's `c` and steps until B's `s` has read all of it.
fn send_and_read(net: &mut Net, c: SocketHandle, s: SocketHandle) {
    let data = b"segment";
    assert_eq!(net.a.send(c, data), Ok(data.len()));
    let mut got = Vec::new();
    assert!(net.run_until(100, |n| {
        let mut buf = [0u8; 64];
        if let Ok(k) = n.b.recv(s, &mut buf) {
            got.extend_from_slice(&buf[..k]);
        }
        got.len() == data.len()
    }));
    assert_eq!(&got[..], data);
}

#[test]
fn a_stale_neighbour_is_revalidated_while_a_connection_sends() {
    let mut net = Net::new();
    let (c, s) = connected_pair(&mut net, 7100);
    let resolved = net.a.neighbor_stats().requests;
    assert!(resolved >= 1, "A asked for B's MAC once");

    // Fresh: the segments go out on the remembered path, no request.
    for _ in 0..5 {
        send_and_read(&mut net, c, s);
    }
    assert_eq!(net.a.neighbor_stats().requests, resolved);

    // Past the reachable time the entry is stale: the next segment is sent and
    // one revalidation request goes with it.
    let reachable = NeighborConfig::default().reachable_time;
    net.step(reachable + Duration::from_millis(1));
    send_and_read(&mut net, c, s);
    assert_eq!(
        net.a.neighbor_stats().requests,
        resolved + 1,
        "one refresh request"
    );

    // B answered: fresh again, no more requests.
    for _ in 0..5 {
        send_and_read(&mut net, c, s);
    }
    assert_eq!(net.a.neighbor_stats().requests, resolved + 1);
}

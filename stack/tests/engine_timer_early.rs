//! Timer entries the engine leaves in place when a connection's deadline moves
//! later (an RTO restarted by every ACK): when such an entry fires early it is
//! moved to the real deadline without running the connection, and the real
//! deadline still fires (a retransmission when the peer goes quiet).

mod support;

use core::time::Duration;

use support::{Net, connected_pair};

const PORT: u16 = 8080;
const STEP: Duration = Duration::from_millis(1);

#[test]
fn early_entries_move_without_running_the_connection_and_the_rto_still_fires() {
    let mut net = Net::new();
    let (client, conn) = connected_pair(&mut net, PORT);
    let mut buf = [0u8; 64];
    // Three seconds of requests every 20 ms: each ACK restarts the client's RTO, so
    // its wheel entry keeps firing before the deadline and is moved.
    for _ in 0..150 {
        assert_eq!(net.a.send(client, b"ping"), Ok(4));
        for _ in 0..20 {
            net.step(STEP);
            while let Ok(n) = net.b.recv(conn, &mut buf) {
                if n == 0 {
                    break;
                }
                assert_eq!(net.b.send(conn, &buf[..n]), Ok(n));
            }
            while matches!(net.a.recv(client, &mut buf), Ok(n) if n > 0) {}
        }
    }
    let early = net.a.tcp_stats().timers_early;
    assert!(
        early > 0,
        "no timer entry fired early in 3 s of restarted RTOs"
    );
    let info = net.a.tcp_info(client).expect("tcp_info");
    assert_eq!(info.total_retrans, 0, "an early entry retransmitted");
    assert_eq!(info.unacked, 0);

    // B goes quiet (never polled again): A's real RTO must still fire.
    assert_eq!(net.a.send(client, b"lost"), Ok(4));
    let frames = net.a.stats().tx_frames;
    let mut now = net.now;
    for _ in 0..3000 {
        now += STEP;
        net.a.device_mut().set_now(now.total_micros());
        net.a.poll(now);
        if net.a.tcp_info(client).expect("tcp_info").total_retrans > 0 {
            break;
        }
    }
    let info = net.a.tcp_info(client).expect("tcp_info");
    assert!(
        info.total_retrans > 0,
        "no retransmission within 3 s of silence"
    );
    assert!(
        net.a.stats().tx_frames >= frames + 2,
        "the data and its retransmission"
    );
}

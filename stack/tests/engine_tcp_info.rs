//! `Engine::tcp_info` (Linux's `TCP_INFO` fields) and `Engine::tcp_socket_stats` after known
//! exchanges between two engines on the in-memory link, with a virtual clock: a clean
//! transfer over a 5 ms one-way delay, a lossy one, and the close.

mod support;

use support::{Net, connected_pair};
use surge_datapath::{Impairments, PipeConfig};
use surge_stack::Errno;
use surge_stack::socket::SocketHandle;
use surge_stack::tcp::State;

const PORT: u16 = 8080;
/// The link's one-way delay: the RTT is twice this.
const DELAY_US: u64 = 5_000;

fn net(loss: f64) -> Net {
    Net::with_pipe(&PipeConfig {
        impairments: Impairments {
            delay_us: DELAY_US,
            loss,
            ..Impairments::default()
        },
        seed: 7,
        ..PipeConfig::default()
    })
}

/// Sends `len` bytes from `client`, reads them at `conn`, and waits until all are
/// acknowledged; bounded in steps of 100 µs.
fn transfer(net: &mut Net, client: SocketHandle, conn: SocketHandle, len: usize) {
    let data = vec![0x5au8; len];
    let (mut sent, mut got) = (0usize, 0usize);
    let mut buf = vec![0u8; 65536];
    assert!(
        net.run_until(3_000_000, |n| {
            if sent < len {
                sent += n.a.send(client, &data[sent..]).unwrap_or(0);
            }
            while let Ok(k) = n.b.recv(conn, &mut buf) {
                if k == 0 {
                    break;
                }
                got += k;
            }
            got == len && n.a.tcp_info(client).is_ok_and(|i| i.unacked == 0)
        }),
        "transfer of {len} bytes did not finish: sent {sent}, got {got}"
    );
}

#[test]
fn tcp_info_after_a_clean_transfer_reports_linux_fields() {
    let mut net = net(0.0);
    let (client, conn) = connected_pair(&mut net, PORT);
    let len = 1_000_000;
    transfer(&mut net, client, conn, len);
    let i = net.a.tcp_info(client).expect("info");
    assert_eq!(i.state, State::Established);
    // MTU 1500 minus 40 bytes of headers and 12 of timestamps, as Linux's mss_cache.
    assert_eq!(i.snd_mss, 1448);
    assert_eq!(i.bytes_acked, len as u64);
    assert_eq!(i.bytes_received, 0, "the client received nothing");
    // RTT 10 ms on the link; the 100 µs steps and the delayed ACK add a little.
    assert!(
        (10_000..=60_000).contains(&i.rtt),
        "srtt {} µs on a 10 ms RTT link",
        i.rtt
    );
    assert!(
        i.rttvar < i.rtt,
        "rttvar {} against srtt {}",
        i.rttvar,
        i.rtt
    );
    // RFC 6298 (2.4): RTO = max(1 s, SRTT + 4 RTTVAR); Linux's floor is 200 ms, as surge's.
    assert!(i.rto >= 200_000 && i.rto <= 1_000_000, "rto {}", i.rto);
    assert_eq!((i.retransmits, i.total_retrans), (0, 0));
    assert_eq!((i.unacked, i.sacked, i.lost), (0, 0, 0));
    assert_eq!(i.reordering, 3, "nothing reordered: Linux's default");
    assert!(
        i.snd_cwnd > 10,
        "slow start grew cwnd past IW10: {}",
        i.snd_cwnd
    );
    assert!(
        i.snd_ssthresh > i.snd_cwnd,
        "no loss: ssthresh still 'infinite' ({}), cwnd {}",
        i.snd_ssthresh,
        i.snd_cwnd
    );
    // At most 1 MB over 10 ms of RTT; some rate was measured.
    assert!(
        i.delivery_rate > 0 && i.delivery_rate < 1_000_000_000,
        "delivery rate {} B/s",
        i.delivery_rate
    );
    let r = net.b.tcp_info(conn).expect("server info");
    assert_eq!(r.state, State::Established);
    assert_eq!(r.bytes_received, len as u64);
    assert_eq!(r.bytes_acked, 0);
    // The two APIs agree: TCP_INFO's totals are the connection's own counters.
    let s = net.a.tcp_socket_stats(client).expect("stats");
    assert_eq!(s.bytes_acked, i.bytes_acked);
    assert_eq!(s.snd_mss, i.snd_mss);
    assert_eq!(u64::from(i.total_retrans), s.retransmits);
}

#[test]
fn tcp_info_after_a_lossy_transfer_counts_retransmissions_and_ends_with_nothing_outstanding() {
    let mut net = net(0.03);
    let (client, conn) = connected_pair(&mut net, PORT);
    let len = 2_000_000;
    transfer(&mut net, client, conn, len);
    let i = net.a.tcp_info(client).expect("info");
    let s = net.a.tcp_socket_stats(client).expect("stats");
    assert_eq!(i.bytes_acked, len as u64);
    assert!(i.total_retrans > 0, "3 % loss and no retransmission: {i:?}");
    assert_eq!(u64::from(i.total_retrans), s.retransmits);
    assert!(
        i.snd_ssthresh < u32::MAX / i.snd_mss,
        "a loss set ssthresh: {i:?}"
    );
    // All acknowledged: nothing is outstanding, SACKed or lost, no RTO backoff remains.
    assert_eq!((i.unacked, i.sacked, i.lost, i.retransmits), (0, 0, 0, 0));
    assert_eq!(
        net.b.tcp_info(conn).expect("server info").bytes_received,
        len as u64
    );
}

#[test]
fn tcp_info_follows_the_close_and_refuses_what_is_not_a_connection() {
    let mut net = net(0.0);
    let (client, conn) = connected_pair(&mut net, PORT);
    net.a.shutdown_write(client).expect("shutdown");
    assert!(net.run_until(1_000, |n| {
        n.a.tcp_info(client)
            .is_ok_and(|i| i.state == State::FinWait2)
    }));
    assert_eq!(net.b.tcp_info(conn).map(|i| i.state), Ok(State::CloseWait));
    net.b.close(conn).expect("close");
    assert!(net.run_until(1_000, |n| {
        n.a.tcp_info(client)
            .is_ok_and(|i| i.state == State::TimeWait)
    }));
    // A socket that never connected has no TCP_INFO to give here; a UDP socket is no TCP socket.
    let fresh = net.a.tcp_socket().expect("socket");
    assert_eq!(net.a.tcp_info(fresh), Err(Errno::ENOTCONN));
    let udp = net.a.udp_socket().expect("udp");
    assert!(net.a.tcp_info(udp).is_err());
}

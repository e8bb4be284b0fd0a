//! Two engines on an in-memory link of MTU 9000 (the pipe device hands out
//! large frames, as an AF_XDP port with multi-buffer descriptors does): TCP
//! announces and uses an MSS of 8960 and moves data intact both ways, with and
//! without checksum offload; an 8000-byte ping is answered in place; no UMEM
//! or large frame is left behind.

mod support;

use core::net::SocketAddrV4;
use core::time::Duration;

use support::{IP_A, IP_B, MAC_A, MAC_B, Net, any};
use surge_datapath::{Device, PipeConfig, PipeDevice};
use surge_stack::engine::Engine;
use surge_stack::socket::SocketHandle;
use surge_stack::table::BindOptions;
use surge_stack::wire::Icmpv4Repr;

const PORT: u16 = 8080;

fn jumbo_net(tx_checksum_offload: bool) -> Net {
    Net::with_pipe(&PipeConfig {
        mtu: 9000,
        pool: surge_datapath::PoolConfig {
            frame_size: 4096,
            frame_count: 1024,
            headroom: 0,
            huge_pages: false,
        },
        tx_checksum_offload,
        ..PipeConfig::default()
    })
}

fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) ^ (i >> 11) as u8)
        .collect()
}

/// A connection from A to B's listener: (client on A, accepted socket on B).
fn connected(net: &mut Net) -> (SocketHandle, SocketHandle) {
    let listener = net.b.tcp_socket().expect("socket");
    net.b
        .bind(listener, any(PORT), BindOptions::default())
        .expect("bind");
    net.b.listen(listener, 8).expect("listen");
    let client = net.a.tcp_socket().expect("socket");
    let _ = net.a.connect(client, SocketAddrV4::new(IP_B, PORT));
    let mut accepted = None;
    assert!(net.run_until(1000, |n| {
        accepted = n.b.accept(listener).ok().map(|(c, _)| c);
        accepted.is_some()
    }));
    (client, accepted.expect("accepted"))
}

/// Sends `data` from `from` (on engine A if `a_sends`) and reads it on the
/// other side; returns what arrived. Bounded in steps of virtual time.
fn transfer(
    net: &mut Net,
    a_sends: bool,
    (on_a, on_b): (SocketHandle, SocketHandle),
    data: &[u8],
) -> Vec<u8> {
    let (mut sent, mut got) = (0usize, Vec::with_capacity(data.len()));
    let mut buf = vec![0u8; 65536];
    for _ in 0..200_000 {
        let (tx, tx_sock, rx, rx_sock): (&mut Engine<PipeDevice>, _, &mut Engine<PipeDevice>, _) =
            if a_sends {
                (&mut net.a, on_a, &mut net.b, on_b)
            } else {
                (&mut net.b, on_b, &mut net.a, on_a)
            };
        if sent < data.len() {
            if let Ok(n) = tx.send(tx_sock, &data[sent..]) {
                sent += n;
            }
        }
        while let Ok(n) = rx.recv(rx_sock, &mut buf) {
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        if got.len() >= data.len() {
            break;
        }
        net.step(Duration::from_micros(100));
    }
    got
}

fn assert_same(got: &[u8], sent: &[u8], net: &Net, what: &str) {
    if got != sent {
        let first_difference = got.iter().zip(sent).position(|(a, b)| a != b);
        panic!(
            "{what}: {} of {} bytes, first difference at {first_difference:?}\nA: {:?} {:?}\nB: {:?} {:?}",
            got.len(),
            sent.len(),
            net.a.device().stats(),
            net.a.stats(),
            net.b.device().stats(),
            net.b.stats()
        );
    }
}

fn assert_nothing_held(dev: &PipeDevice) {
    let acc = dev.accounting();
    assert!(acc.balanced(), "{acc:?}");
    assert_eq!((acc.held, acc.large_held), (0, 0), "{acc:?}");
    assert!(acc.large_total > 0, "MTU 9000 gave the pipe large frames");
}

fn mss_is_8960_and_data_moves_intact_both_ways(offload: bool) {
    let mut net = jumbo_net(offload);
    let (client, server) = connected(&mut net);
    for (engine, socket) in [(&mut net.a, client), (&mut net.b, server)] {
        let info = engine.tcp_info(socket).expect("info");
        // MSS 8960 (MTU 9000 - 40) each way, less the 12 bytes of the
        // timestamp option on every segment: Linux's tcpi_snd_mss is 8948 too.
        assert_eq!(info.snd_mss, 8948, "{info:?}");
    }
    let up = pattern(2_000_000, 1);
    let got = transfer(&mut net, true, (client, server), &up);
    assert_same(&got, &up, &net, "A -> B");
    let down = pattern(2_000_000, 2);
    let got = transfer(&mut net, false, (client, server), &down);
    assert_same(&got, &down, &net, "B -> A");
    // Linux's tcpi_rcv_mss: the largest segment seen. Full-sized segments came.
    for (engine, socket) in [(&mut net.a, client), (&mut net.b, server)] {
        let info = engine.tcp_info(socket).expect("info");
        assert_eq!(info.rcv_mss, 8948, "{info:?}");
    }
    let (a, b) = (net.a.device().stats(), net.b.device().stats());
    assert!(
        a.tx_multi_buffer > 200 && b.rx_multi_buffer > 200,
        "segments longer than a 4 KiB frame: {a:?} {b:?}"
    );
    assert!(
        b.tx_multi_buffer > 200 && a.rx_multi_buffer > 200,
        "and back: {a:?} {b:?}"
    );
    // Checksums were right (the receivers dropped nothing for a bad one).
    assert_eq!(net.a.stats().total_drops(), 0, "{:?}", net.a.stats());
    assert_eq!(net.b.stats().total_drops(), 0, "{:?}", net.b.stats());
    // Close, then every frame of either kind is back.
    net.a.close(client).expect("close");
    net.b.close(server).expect("close");
    net.step(Duration::from_millis(1));
    assert_nothing_held(net.a.device());
    assert_nothing_held(net.b.device());
}

#[test]
fn mss_is_8960_and_data_moves_intact_both_ways_with_software_checksums() {
    mss_is_8960_and_data_moves_intact_both_ways(false);
}

#[test]
fn mss_is_8960_and_data_moves_intact_both_ways_with_checksum_offload() {
    // Large frames keep their checksum request for the chain's first
    // descriptor; the pipe completes every request in software, as a NIC would.
    mss_is_8960_and_data_moves_intact_both_ways(true);
}

#[test]
fn an_8000_byte_ping_is_answered_in_place() {
    let mut net = jumbo_net(false);
    // Resolve A at B first, so B's reply goes out at once.
    let (client, _server) = connected(&mut net);
    let _ = client;
    let data: Vec<u8> = pattern(8000, 9);
    let icmp = Icmpv4Repr::EchoRequest {
        ident: 0x4242,
        seq_no: 1,
        data: &data,
    };
    support::send_icmp(net.a.device_mut(), (MAC_A, IP_A), (MAC_B, IP_B), &icmp);
    let replies_before = net.b.stats().icmp_echo_replies;
    assert!(net.run_until(100, |n| n.b.stats().icmp_echo_replies == replies_before + 1));
    assert!(net.b.device().stats().rx_multi_buffer >= 1);
    assert!(net.b.device().stats().tx_multi_buffer >= 1);
    // A's engine got the reply (an echo reply it did not ask for is counted, not answered).
    assert_nothing_held(net.b.device());
}

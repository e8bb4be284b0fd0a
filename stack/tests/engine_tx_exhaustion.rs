//! A burst of output larger than the device's frame pool, over the in-memory
//! link: every connection whose next segment found no free TX frame sends it on
//! a later iteration, without waiting for a timer (there is none for a segment
//! never sent). Regression test for FINs stranded when 10,000 connections were
//! closed at once in the AF_XDP lab (engine_lab_many).

mod support;

use core::net::SocketAddrV4;

use support::{IP_B, Net, any};
use surge_datapath::{Device, PipeConfig, PoolConfig};
use surge_stack::Errno;
use surge_stack::table::BindOptions;

const PORT: u16 = 8080;
/// Connections: several times the frames of the pool.
const CONNS: usize = 300;
/// Frames in each side's pool.
const FRAMES: u32 = 64;

#[test]
fn closing_more_connections_than_frames_sends_every_fin_promptly() {
    let mut net = Net::with_pipe(&PipeConfig {
        pool: PoolConfig {
            frame_count: FRAMES,
            ..PipeConfig::default().pool
        },
        ..PipeConfig::default()
    });
    let listener = net.b.tcp_socket().expect("socket");
    net.b
        .bind(listener, any(PORT), BindOptions::default())
        .expect("bind");
    net.b.listen(listener, 1024).expect("listen");
    let connect = |net: &mut Net| {
        let c = net.a.tcp_socket().expect("socket");
        assert_eq!(
            net.a.connect(c, SocketAddrV4::new(IP_B, PORT)),
            Err(Errno::EINPROGRESS)
        );
        c
    };
    // One connection first, so ARP is resolved both ways (segments waiting for
    // ARP are a different story: past the queue limit they wait for the RTO).
    let mut clients = vec![connect(&mut net)];
    assert!(net.run_until(100, |n| n.a.readiness(clients[0]).is_ok_and(|r| r.writable)));
    clients.extend((1..CONNS).map(|_| connect(&mut net)));
    // The SYNs alone outnumber the frames. 20 ms of virtual time is far less
    // than the initial RTO (1 s): only re-polling gets them all out.
    let mut conns = Vec::new();
    assert!(
        net.run_until(200, |n| {
            while let Ok((c, _)) = n.b.accept(listener) {
                conns.push(c);
            }
            conns.len() == CONNS
        }),
        "accepted {} of {CONNS}; a: {:?} {:?}",
        conns.len(),
        net.a.stats(),
        net.a.tcp_stats()
    );
    assert!(net.run_until(100, |n| {
        clients
            .iter()
            .all(|c| n.a.readiness(*c).is_ok_and(|r| r.writable))
    }));
    // Every FIN in the same iteration: most find no frame.
    for c in &clients {
        net.a.close(*c).expect("close");
    }
    let mut buf = [0u8; 16];
    let mut eof = vec![false; CONNS];
    assert!(
        net.run_until(200, |n| {
            for (i, c) in conns.iter().enumerate() {
                if !eof[i] && n.b.recv(*c, &mut buf) == Ok(0) {
                    eof[i] = true;
                }
            }
            eof.iter().all(|e| *e)
        }),
        "{} of {CONNS} FINs arrived within 20 ms; a: {:?}",
        eof.iter().filter(|e| **e).count(),
        net.a.stats()
    );
    assert!(net.a.stats().tx_no_frame > 0, "the pool ran out on the way");
    assert!(net.a.device().accounting().balanced());
    assert!(net.b.device().accounting().balanced());
}

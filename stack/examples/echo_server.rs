//! The textbook blocking echo server (socket → bind → listen → accept →
//! read/write), written against surge's cross-thread API.
//!
//! ```text
//! echo_server --interface veth0 --address 198.18.0.10/24 --port 7007 [--netns NS]
//!             [--queues N] [--connections N] [--seconds S]
//! ```
//! It serves each connection on its own thread, echoing until end of stream,
//! and exits after `--connections` connections or `--seconds`.

mod common;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddrV4};

const USAGE: &str = "usage: echo_server --interface IF [--address CIDR] [--port P] [--netns NS] \
                     [--queues N] [--connections N] [--seconds S]";

fn main() {
    let args = common::Args::parse(USAGE);
    let port: u16 = args.parsed("port", 7007);
    let connections: usize = args.parsed("connections", usize::MAX);
    let deadline = args.deadline();
    let stack = common::open_stack(&args, vec![port], Vec::new(), None);

    // socket(), bind(), listen()
    let mut socket = stack.tcp_socket();
    let local = socket
        .bind(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port))
        .unwrap_or_else(|e| common::fail(USAGE, &format!("bind: {e}")));
    let mut listener = socket
        .listen(128)
        .unwrap_or_else(|e| common::fail(USAGE, &format!("listen: {e}")));
    println!("listening on {local} ({} cores)", stack.cores());

    let mut workers = Vec::new();
    let mut served = 0;
    listener.set_nonblocking(true);
    while served < connections && std::time::Instant::now() < deadline {
        // accept(), polled so the deadline holds.
        let (mut conn, peer) = match listener.accept() {
            Ok(c) => c,
            Err(surge_stack::errno::Errno::EAGAIN) => {
                std::thread::sleep(std::time::Duration::from_millis(1));
                continue;
            }
            Err(e) => {
                eprintln!("accept: {e}");
                break;
            }
        };
        served += 1;
        workers.push(std::thread::spawn(move || {
            // read() / write() until the client closes.
            let mut buf = vec![0u8; 64 * 1024];
            let mut echoed = 0usize;
            loop {
                match conn.read(&mut buf) {
                    Ok(0) => break,
                    Ok(n) => {
                        if let Err(e) = conn.write_all(&buf[..n]) {
                            eprintln!("{peer}: write: {e}");
                            return;
                        }
                        echoed += n;
                    }
                    Err(e) => {
                        eprintln!("{peer}: read: {e}");
                        return;
                    }
                }
            }
            let _ = conn.shutdown_write();
            println!("{peer}: echoed {echoed} bytes");
        }));
    }
    for w in workers {
        let _ = w.join();
    }
    let (engine, tcp) = stack.stats().unwrap_or_default();
    println!(
        "served {served} connections; rx {} frames, tx {} frames, forwarded {} between cores, {} drops",
        engine.rx_frames,
        engine.tx_frames,
        engine.forwarded_in,
        engine.total_drops()
    );
    println!("tcp: {} accepted, {} closed", tcp.accepted, tcp.closed);
}

//! The textbook blocking echo client (socket → connect → write/read), written
//! against surge's cross-thread API: it sends `--bytes` bytes, reads them back,
//! and checks every one.
//!
//! ```text
//! echo_client --interface veth0 --address 198.18.0.10/24 --server 198.18.0.2:7007
//!             [--netns NS] [--bytes N] [--connections N] [--seconds S]
//! ```
//! Exits 0 when every connection got its bytes back unchanged.

mod common;

use std::io::{Read, Write};
use std::net::SocketAddrV4;

const USAGE: &str = "usage: echo_client --interface IF --server IP:PORT [--address CIDR] \
                     [--netns NS] [--bytes N] [--connections N] [--seconds S]";

fn main() {
    let args = common::Args::parse(USAGE);
    let server: SocketAddrV4 = args
        .required("server")
        .parse()
        .unwrap_or_else(|_| common::fail(USAGE, "--server: expected IP:PORT"));
    let bytes: usize = args.parsed("bytes", 1 << 20);
    let connections: usize = args.parsed("connections", 1);
    let stack = common::open_stack(&args, Vec::new(), Vec::new(), None);
    let started = std::time::Instant::now();
    let mut threads = Vec::new();
    for c in 0..connections {
        // socket(), connect()
        let stream = match stack.tcp_connect(server) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("connect {server}: {e}");
                std::process::exit(1);
            }
        };
        threads.push(std::thread::spawn(move || -> Result<(), String> {
            let data: Vec<u8> = (0..bytes).map(|i| (i * 7 + c) as u8).collect();
            let stream = std::sync::Arc::new(stream);
            let writer = {
                let stream = std::sync::Arc::clone(&stream);
                let data = data.clone();
                std::thread::spawn(move || -> Result<(), String> {
                    // write(), then shutdown(SHUT_WR)
                    (&*stream).write_all(&data).map_err(|e| e.to_string())?;
                    stream.shutdown_write().map_err(|e| e.to_string())
                })
            };
            // read() until the server's end of stream
            let mut back = Vec::with_capacity(bytes);
            (&*stream)
                .read_to_end(&mut back)
                .map_err(|e| e.to_string())?;
            writer.join().map_err(|_| "writer panicked".to_owned())??;
            if back != data {
                return Err(format!(
                    "connection {c}: {} bytes back, {} differ",
                    back.len(),
                    back.iter().zip(&data).filter(|(a, b)| a != b).count()
                ));
            }
            Ok(())
        }));
    }
    let mut failed = 0;
    for t in threads {
        match t.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                eprintln!("{e}");
                failed += 1;
            }
            Err(_) => failed += 1,
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let (engine, _) = stack.stats().unwrap_or_default();
    println!(
        "{} of {connections} connections echoed {bytes} bytes each, verified, in {elapsed:.2} s; \
         forwarded {} frames between cores",
        connections - failed,
        engine.forwarded_in
    );
    if failed > 0 {
        std::process::exit(1);
    }
}

//! Embedding surge: a tiny HTTP/1.1 responder that runs *inside* each core's
//! loop (the in-loop API), with no thread, queue or lock between the engine and
//! the application. Each engine gets its own listener on the port (the device's
//! queue choice spreads connections over them), accepts, parses requests and
//! answers with a fixed body; keep-alive unless the client says `close`.
//!
//! ```text
//! embed_http --interface veth0 --address 198.18.0.10/24 --port 8080 [--netns NS]
//!            [--queues N] [--requests N] [--seconds S] [--body TEXT]
//! ```

mod common;

use std::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use surge_datapath::XdpPort;
use surge_stack::engine::Engine;
use surge_stack::errno::Errno;
use surge_stack::runtime::Handler;
use surge_stack::socket::SocketHandle;
use surge_stack::time::Instant;

const USAGE: &str = "usage: embed_http --interface IF [--address CIDR] [--port P] [--netns NS] \
                     [--queues N] [--requests N] [--seconds S] [--body TEXT]";

/// Largest request head accepted; a longer one gets 431 and the connection closes.
const MAX_HEAD: usize = 8192;

struct Conn {
    handle: SocketHandle,
    request: Vec<u8>,
    out: Vec<u8>,
    sent: usize,
    close_after: bool,
}

struct Http {
    port: u16,
    body: Arc<Vec<u8>>,
    served: Arc<AtomicU64>,
    listener: Option<SocketHandle>,
    conns: Vec<Conn>,
}

impl Http {
    fn respond(&self, conn: &mut Conn) {
        while let Some(end) = find(&conn.request, b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&conn.request[..end]).to_ascii_lowercase();
            let first = head.lines().next().unwrap_or_default().to_owned();
            conn.request.drain(..end + 4);
            let ok = first.starts_with("get ") || first.starts_with("head ");
            let close = head.contains("connection: close") || first.ends_with("http/1.0");
            let (status, body): (&str, &[u8]) = if ok {
                ("200 OK", &self.body)
            } else {
                ("405 Method Not Allowed", b"")
            };
            conn.out.extend_from_slice(
                format!(
                    "HTTP/1.1 {status}\r\nContent-Length: {}\r\nContent-Type: text/plain\r\n{}\r\n",
                    body.len(),
                    if close { "Connection: close\r\n" } else { "" }
                )
                .as_bytes(),
            );
            if !first.starts_with("head ") {
                conn.out.extend_from_slice(body);
            }
            self.served.fetch_add(1, Ordering::Relaxed);
            if close {
                conn.close_after = true;
                conn.request.clear();
                break;
            }
        }
        if conn.request.len() > MAX_HEAD {
            conn.out
                .extend_from_slice(b"HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
            conn.request.clear();
            conn.close_after = true;
        }
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

impl Handler<XdpPort> for Http {
    fn poll(&mut self, engine: &mut Engine<XdpPort>, _now: Instant) -> bool {
        let mut did = false;
        let listener = match self.listener {
            Some(l) => l,
            None => {
                let addr = SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, self.port);
                let opened = engine.tcp_socket().and_then(|l| {
                    engine.bind(l, addr, Default::default())?;
                    engine.listen(l, 1024)?;
                    Ok(l)
                });
                match opened {
                    Ok(l) => {
                        self.listener = Some(l);
                        l
                    }
                    Err(e) => {
                        eprintln!("listen on {addr}: {e}");
                        std::process::exit(1);
                    }
                }
            }
        };
        while let Ok((handle, _peer)) = engine.accept(listener) {
            did = true;
            self.conns.push(Conn {
                handle,
                request: Vec::new(),
                out: Vec::new(),
                sent: 0,
                close_after: false,
            });
        }
        let mut buf = [0u8; 4096];
        let mut i = 0;
        while i < self.conns.len() {
            let mut conn = self.conns.swap_remove(i);
            let mut finished = false;
            loop {
                match engine.recv(conn.handle, &mut buf) {
                    Ok(0) => {
                        conn.close_after = true;
                        break;
                    }
                    Ok(n) => {
                        did = true;
                        conn.request.extend_from_slice(&buf[..n]);
                    }
                    Err(Errno::EAGAIN) => break,
                    Err(_) => {
                        finished = true;
                        break;
                    }
                }
            }
            self.respond(&mut conn);
            while conn.sent < conn.out.len() && !finished {
                match engine.send(conn.handle, &conn.out[conn.sent..]) {
                    Ok(n) => {
                        did = true;
                        conn.sent += n;
                    }
                    Err(Errno::EAGAIN) => break,
                    Err(_) => finished = true,
                }
            }
            if conn.sent == conn.out.len() {
                conn.out.clear();
                conn.sent = 0;
                if conn.close_after {
                    finished = true;
                }
            }
            if finished {
                let _ = engine.close(conn.handle);
                did = true;
            } else {
                // Put it back where it was; the swapped-in one is looked at next.
                self.conns.push(conn);
                let last = self.conns.len() - 1;
                self.conns.swap(i, last);
                i += 1;
            }
        }
        did
    }
}

fn main() {
    let args = common::Args::parse(USAGE);
    let port: u16 = args.parsed("port", 8080);
    let requests: u64 = args.parsed("requests", u64::MAX);
    let deadline = args.deadline();
    let body = Arc::new(
        args.get("body")
            .unwrap_or("hello from surge\n")
            .as_bytes()
            .to_vec(),
    );
    let served = Arc::new(AtomicU64::new(0));
    let make = |_core: usize| -> Box<dyn Handler<XdpPort>> {
        Box::new(Http {
            port,
            body: Arc::clone(&body),
            served: Arc::clone(&served),
            listener: None,
            conns: Vec::new(),
        })
    };
    let stack = common::open_stack(&args, vec![port], Vec::new(), Some(&make));
    println!("serving http on port {port} ({} cores)", stack.cores());
    while served.load(Ordering::Relaxed) < requests && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    // Let the last response leave before the loops stop.
    std::thread::sleep(std::time::Duration::from_millis(200));
    let (engine, tcp) = stack.stats().unwrap_or_default();
    println!(
        "served {} requests on {} connections; rx {} frames, tx {} frames, {} drops",
        served.load(Ordering::Relaxed),
        tcp.passive_opens,
        engine.rx_frames,
        engine.tx_frames,
        engine.total_drops()
    );
}

//! Bulk echoes between surge's engine on the lab and the Linux kernel, both ways,
//! SHA-256-checked: a kernel client through a surge echo server, and a surge client
//! through a kernel echo server. Shared by the bulk and jumbo-frame root tests; a
//! test includes `support/lab_engine.rs` as `lab_engine` beside this file.
#![allow(dead_code)] // each test file uses a different part

use core::net::{SocketAddr, SocketAddrV4};
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use crate::lab_engine::{
    EchoServer, SURGE_IP, assert_no_leaks, listen, on_host, pattern, run_engine_with,
};
use sha2::{Digest, Sha256};
use surge_datapath::XdpPort;
use surge_lab::{HostId, Lab};
use surge_stack::engine::Engine;
use surge_stack::errno::Errno;
use surge_stack::socket::SocketHandle;

/// Bound on any one blocking kernel socket call.
const IO_TIMEOUT: Duration = Duration::from_secs(30);

/// What a kernel end saw: the SHA-256 of the bytes it received, and how many.
#[derive(Debug, PartialEq, Eq)]
struct Received {
    sha256: [u8; 32],
    bytes: usize,
}

/// Reads `stream` to its end, hashing; `echo` writes every chunk back.
fn drain(stream: &mut TcpStream, mut echo: Option<&mut TcpStream>) -> std::io::Result<Received> {
    let mut hasher = Sha256::new();
    let mut bytes = 0usize;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        bytes += n;
        if let Some(out) = echo.as_mut() {
            out.write_all(&buf[..n])?;
        }
    }
    Ok(Received {
        sha256: hasher.finalize().into(),
        bytes,
    })
}

/// A kernel client in B sends `size` bytes through a surge echo server on port 7 of
/// `engine` (steering port 7 to it) and reads them back. Asserts the echo is what
/// was sent, the server saw the FIN, served one connection and leaked nothing;
/// returns the engine for the caller's own checks. `label` prefixes the printed
/// duration.
pub fn kernel_client_through_surge_echo(
    lab: &Lab,
    mut engine: Engine<XdpPort>,
    size: usize,
    limit: Duration,
    label: &str,
) -> Engine<XdpPort> {
    let listener = listen(&mut engine, 7, 16);
    let stop = Arc::new(AtomicBool::new(false));
    let server = run_engine_with(
        engine,
        Arc::clone(&stop),
        limit,
        EchoServer::new(listener),
        |e, server| {
            server.step(e);
            server.served + server.failed == 1
        },
    );

    let data = pattern(size, 0x5eed_b01c);
    let sent_sha256: [u8; 32] = Sha256::digest(&data).into();
    let label = label.to_string();
    let client = on_host(lab, HostId::B, move || -> std::io::Result<Received> {
        let started = Instant::now();
        let addr = SocketAddr::V4(SocketAddrV4::new(SURGE_IP, 7));
        let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
        stream.set_read_timeout(Some(IO_TIMEOUT))?;
        stream.set_write_timeout(Some(IO_TIMEOUT))?;
        let mut writer = stream.try_clone()?;
        let sender = std::thread::spawn(move || -> std::io::Result<()> {
            for chunk in data.chunks(64 * 1024) {
                writer.write_all(chunk)?;
            }
            writer.shutdown(Shutdown::Write)
        });
        let received = drain(&mut stream, None);
        sender.join().expect("sender thread")?;
        eprintln!(
            "{label}kernel client -> surge echo: {size} bytes each way in {:.2?}",
            started.elapsed()
        );
        received
    });
    let received = client.join().expect("client thread");
    let (engine, server, finished) = server.join().expect("engine thread");
    let received = received.unwrap_or_else(|e| {
        panic!(
            "kernel client failed: {e}\nengine: {:?}\ntcp: {:?}",
            engine.stats(),
            engine.tcp_stats()
        )
    });
    assert_eq!(
        received,
        Received {
            sha256: sent_sha256,
            bytes: size
        },
        "the echo differs from what was sent"
    );
    assert!(finished, "the server did not see the client's FIN");
    assert_eq!((server.served, server.failed), (1, 0));
    assert_eq!(server.echoed, size as u64);
    assert_eq!(engine.tcp_stats().passive_opens, 1);
    assert_eq!(engine.socket_count(), 1, "only the listener is left");
    assert_no_leaks(&engine);
    engine
}

/// A surge client on `engine` sends `size` bytes through a kernel echo server in B
/// on `port` and reads them back. Asserts both the kernel's copy and the echo are
/// what was sent, one active open, and nothing leaked (the connection waits in
/// TIME-WAIT: our close made us the active closer); returns the engine for the
/// caller's own checks. `label` prefixes the printed duration.
pub fn surge_client_through_kernel_echo(
    lab: &Lab,
    mut engine: Engine<XdpPort>,
    port: u16,
    size: usize,
    limit: Duration,
    label: &str,
) -> Engine<XdpPort> {
    let b_addr = lab.b().addr;
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let kernel_server = on_host(lab, HostId::B, move || -> std::io::Result<Received> {
        let listener = TcpListener::bind(SocketAddrV4::new(b_addr, port))?;
        ready_tx.send(()).expect("test thread");
        listener.set_nonblocking(true)?;
        let start = Instant::now();
        let mut stream = loop {
            match listener.accept() {
                Ok((s, _)) => break s,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                    if start.elapsed() > IO_TIMEOUT {
                        return Err(e);
                    }
                    std::thread::sleep(Duration::from_millis(5));
                }
                Err(e) => return Err(e),
            }
        };
        stream.set_nonblocking(false)?;
        stream.set_read_timeout(Some(IO_TIMEOUT))?;
        stream.set_write_timeout(Some(IO_TIMEOUT))?;
        let mut echo = stream.try_clone()?;
        drain(&mut stream, Some(&mut echo))
    });
    ready_rx
        .recv_timeout(Duration::from_secs(10))
        .expect("kernel server listening");

    let client = engine.tcp_socket().expect("socket");
    assert_eq!(
        engine.connect(client, SocketAddrV4::new(b_addr, port)),
        Err(Errno::EINPROGRESS)
    );
    let data = pattern(size, 0xc11e_b01c);
    let sent_sha256: [u8; 32] = Sha256::digest(&data).into();

    let started = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let run = run_engine_with(engine, stop, limit, EchoClient::new(data), move |e, c| {
        c.step(e, client)
    });
    let (engine, c, finished) = run.join().expect("engine thread");
    eprintln!(
        "{label}surge client -> kernel echo: {size} bytes each way in {:.2?}",
        started.elapsed()
    );
    let at_server = kernel_server
        .join()
        .expect("kernel server thread")
        .expect("kernel echo server");
    assert!(
        finished && c.error.is_none(),
        "the echo did not complete: error {:?}, sent {}, echoed {}; stats {:?} tcp {:?}",
        c.error,
        c.sent,
        c.echoed,
        engine.stats(),
        engine.tcp_stats()
    );
    assert_eq!(
        at_server,
        Received {
            sha256: sent_sha256,
            bytes: size
        },
        "the kernel received other bytes than were sent"
    );
    assert_eq!(c.echoed, size);
    assert_eq!(
        <[u8; 32]>::from(c.echo.finalize()),
        sent_sha256,
        "the echo differs from what was sent"
    );
    assert_eq!(engine.tcp_stats().active_opens, 1);
    assert_no_leaks(&engine);
    engine
}

/// A surge client's side of a bulk echo through a peer: sends `data`, hashes what
/// comes back, closes once all of it has.
pub struct EchoClient {
    /// What is sent.
    pub data: Vec<u8>,
    /// Bytes of `data` the socket took.
    pub sent: usize,
    /// The SHA-256 of the echo so far.
    pub echo: Sha256,
    /// Bytes of echo received.
    pub echoed: usize,
    /// The socket's error, if it failed.
    pub error: Option<Errno>,
}

impl EchoClient {
    /// A client that will send `data`.
    pub fn new(data: Vec<u8>) -> Self {
        EchoClient {
            data,
            sent: 0,
            echo: Sha256::new(),
            echoed: 0,
            error: None,
        }
    }

    /// One step in the engine's loop on socket `client`: sends what fits, reads
    /// what came. True when done (the whole echo back, or an error).
    pub fn step(&mut self, e: &mut Engine<XdpPort>, client: SocketHandle) -> bool {
        if let Ok(Some(err)) = e.take_error(client) {
            self.error = Some(err);
            return true;
        }
        while self.sent < self.data.len() {
            match e.send(client, &self.data[self.sent..]) {
                Ok(n) => self.sent += n,
                Err(_) => break,
            }
        }
        let mut buf = [0u8; 65536];
        while let Ok(n) = e.recv(client, &mut buf) {
            if n == 0 {
                break;
            }
            self.echo.update(&buf[..n]);
            self.echoed += n;
        }
        if self.echoed >= self.data.len() {
            let _ = e.close(client);
            return true;
        }
        false
    }
}

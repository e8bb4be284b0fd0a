//! Jumbo frames between surge's engine on AF_XDP and the Linux kernel, in a
//! fresh lab whose veth pair has MTU 9000: the port binds with multi-buffer
//! descriptors (XDP_USE_SG), segments of 8948 bytes (MSS 8960, timestamps on)
//! go each way as three-descriptor chains. A kernel client sends 20 MB through
//! a surge echo server and a surge client 20 MB through a kernel echo server,
//! each SHA-256-checked both ways; the kernel's 8000-byte ping is answered.
//! Root tests. Durations are printed, never asserted.

#[path = "support/lab_engine.rs"]
mod lab_engine;

use core::net::{SocketAddr, SocketAddrV4};
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, Instant};

use lab_engine::{
    EchoServer, SURGE_IP, assert_no_leaks, engine_on_a, listen, on_host, pattern, run_engine,
    run_engine_with,
};
use sha2::{Digest, Sha256};
use surge_datapath::{Device, XdpPort};
use surge_lab::{HostId, Lab, LabSpec, Topology};
use surge_stack::engine::Engine;
use surge_stack::errno::Errno;

/// Bytes sent each way.
const SIZE: usize = 20_000_000;
/// Bound on each transfer (it takes about a second).
const LIMIT: Duration = Duration::from_secs(120);
/// The lab's MTU.
const MTU: u32 = 9000;

/// A pair lab whose veths have MTU 9000.
fn jumbo_lab(prefix: &str) -> Lab {
    let mut spec = LabSpec::unique(prefix, Topology::Pair);
    spec.mtu = MTU;
    Lab::up(&spec).expect("lab (root tests need root)")
}

/// The multi-buffer checks on an engine that moved jumbo segments both ways.
fn assert_jumbo_segments(engine: &Engine<XdpPort>) {
    let caps = engine.device().caps();
    assert_eq!(caps.mtu, MTU);
    assert!(engine.device().multi_buffer(), "bound with XDP_USE_SG");
    let stats = engine.device().stats();
    // 20 MB in 8948-byte segments is ~2,235 of them; most ride three descriptors.
    assert!(
        stats.rx_multi_buffer > 1000 && stats.tx_multi_buffer > 1000,
        "segments came and went as descriptor chains: {stats:?}"
    );
    assert_eq!(
        (
            stats.rx_chain_no_large_frame,
            stats.rx_chain_too_long,
            stats.rx_chain_bad_part
        ),
        (0, 0, 0),
        "{stats:?}"
    );
    // Their checksums went to the kernel as TX metadata in front of each
    // chain's first descriptor; the lab's veths have TX checksumming off, so
    // A's kernel completed them in software over every fragment and B's
    // kernel verified them (a wrong one would have stalled the transfer).
    assert!(
        stats.tx_checksum_offloaded > 1000,
        "chains carried checksum requests: {stats:?}"
    );
    let kernel = stats.kernel.expect("XDP_STATISTICS");
    assert_eq!(
        kernel.tx_invalid_descs, 0,
        "every chain was valid: {kernel:?}"
    );
    assert_eq!(engine.device().accounting().large_held, 0);
}
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

#[test]
fn kernel_client_sends_20_megabytes_of_jumbo_segments_through_a_surge_echo_server() {
    let lab = jumbo_lab("eng-jumbo-s");
    let (mut engine, _program) = engine_on_a(&lab, vec![7]);
    let listener = listen(&mut engine, 7, 16);
    let stop = Arc::new(AtomicBool::new(false));
    let server = run_engine_with(
        engine,
        Arc::clone(&stop),
        LIMIT,
        EchoServer::new(listener),
        |e, server| {
            server.step(e);
            server.served + server.failed == 1
        },
    );

    let data = pattern(SIZE, 0x5eed_b01c);
    let sent_sha256: [u8; 32] = Sha256::digest(&data).into();
    let client = on_host(&lab, HostId::B, move || -> std::io::Result<Received> {
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
            "MTU {MTU}: kernel client -> surge echo: {SIZE} bytes each way in {:.2?}",
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
            bytes: SIZE
        },
        "the echo differs from what was sent"
    );
    assert!(finished, "the server did not see the client's FIN");
    assert_eq!((server.served, server.failed), (1, 0));
    assert_eq!(server.echoed, SIZE as u64);
    assert_eq!(engine.tcp_stats().passive_opens, 1);
    assert_eq!(engine.socket_count(), 1, "only the listener is left");
    assert_no_leaks(&engine);
    assert_jumbo_segments(&engine);
}

#[test]
fn surge_client_sends_20_megabytes_of_jumbo_segments_through_a_kernel_echo_server() {
    let lab = jumbo_lab("eng-jumbo-c");
    let b_addr = lab.b().addr;
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let kernel_server = on_host(&lab, HostId::B, move || -> std::io::Result<Received> {
        let listener = TcpListener::bind(SocketAddrV4::new(b_addr, 9009))?;
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

    let (mut engine, _program) = engine_on_a(&lab, vec![]);
    let client = engine.tcp_socket().expect("socket");
    assert_eq!(
        engine.connect(client, SocketAddrV4::new(b_addr, 9009)),
        Err(Errno::EINPROGRESS)
    );
    let data = pattern(SIZE, 0xc11e_b01c);
    let sent_sha256: [u8; 32] = Sha256::digest(&data).into();

    /// The surge client's progress.
    struct Client {
        data: Vec<u8>,
        sent: usize,
        echo: Sha256,
        echoed: usize,
        error: Option<Errno>,
    }
    let state = Client {
        data,
        sent: 0,
        echo: Sha256::new(),
        echoed: 0,
        error: None,
    };
    let started = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let run = run_engine_with(engine, stop, LIMIT, state, move |e, c| {
        if let Ok(Some(err)) = e.take_error(client) {
            c.error = Some(err);
            return true;
        }
        while c.sent < c.data.len() {
            match e.send(client, &c.data[c.sent..]) {
                Ok(n) => c.sent += n,
                Err(_) => break,
            }
        }
        let mut buf = [0u8; 65536];
        while let Ok(n) = e.recv(client, &mut buf) {
            if n == 0 {
                break;
            }
            c.echo.update(&buf[..n]);
            c.echoed += n;
        }
        if c.echoed >= c.data.len() {
            let _ = e.close(client);
            return true;
        }
        false
    });
    let (engine, c, finished) = run.join().expect("engine thread");
    eprintln!(
        "MTU {MTU}: surge client -> kernel echo: {SIZE} bytes each way in {:.2?}",
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
            bytes: SIZE
        },
        "the kernel received other bytes than were sent"
    );
    assert_eq!(c.echoed, SIZE);
    assert_eq!(
        <[u8; 32]>::from(c.echo.finalize()),
        sent_sha256,
        "the echo differs from what was sent"
    );
    assert_eq!(engine.tcp_stats().active_opens, 1);
    // Our close made us the active closer: the connection waits in TIME-WAIT (60 s
    // by default), so it is still there; the frames must all be accounted for.
    assert_no_leaks(&engine);
    assert_jumbo_segments(&engine);
}

#[test]
fn the_kernels_8000_byte_ping_is_answered() {
    let lab = jumbo_lab("eng-jumbo-p");
    let (engine, _program) = engine_on_a(&lab, vec![]);
    let stop = Arc::new(AtomicBool::new(false));
    let run = run_engine(engine, Arc::clone(&stop), LIMIT, |_| false);
    // 8000 bytes of payload, not fragmented (-M do): 8028-byte IP packets.
    let ping = lab
        .exec(
            HostId::B,
            &[
                "ping",
                "-c",
                "3",
                "-i",
                "0.2",
                "-W",
                "2",
                "-s",
                "8000",
                "-M",
                "do",
                &SURGE_IP.to_string(),
            ],
        )
        .expect("ping");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (engine, _) = run.join().expect("engine thread");
    assert!(
        ping.status.success(),
        "the jumbo ping was not answered: {}\nengine {:?}\ndevice {:?}",
        String::from_utf8_lossy(&ping.stdout),
        engine.stats(),
        engine.device().stats()
    );
    assert!(
        engine.stats().icmp_echo_replies >= 3,
        "{:?}",
        engine.stats()
    );
    let stats = engine.device().stats();
    assert!(
        stats.rx_multi_buffer >= 3 && stats.tx_multi_buffer >= 3,
        "{stats:?}"
    );
    assert_no_leaks(&engine);
    assert_eq!(engine.device().accounting().large_held, 0);
}

//! Resource exhaustion against the kernel (issue 15), root: surge's engine on AF_XDP in
//! host A of a fresh lab, the Linux stack in host B.
//!
//! - A peer that never reads: a kernel client with a small receive buffer connects to
//!   surge and does not read for [`hold`] (5 s in CI, 60 s with `SURGE_LONG=1`). surge's
//!   send stalls on the zero window, its zero-window probes (RFC 9293 §3.8.6.1) keep the
//!   connection alive, and once the peer reads, every byte arrives, in order, then EOF.
//! - The reverse: surge does not read for [`hold`] while a kernel sender has 2 MiB for it;
//!   surge's window closes, the kernel's probes are answered, and once surge reads, all
//!   of it arrives.
//! - A peer that disappears: two surge connections to a kernel echo server, one with
//!   keepalive (idle 1 s, interval 1 s, 3 probes), one with TCP_USER_TIMEOUT 3 s. While
//!   the peer answers, keepalive probes keep the first alive; then B silently drops all
//!   it would send to surge (a blackhole route), and both connections end with ETIMEDOUT:
//!   the first after its unanswered probes, the second once its data has gone
//!   unacknowledged for 3 s (RFC 5482), long before the default retransmission limit.
//! - An exhausted UMEM: in the middle of a 4 MiB echo to a kernel client, the engine's
//!   every free frame is taken away for 1 s, so the kernel finds the fill ring empty and
//!   drops what arrives, and the engine's output finds no frame (counted); once the
//!   frames return, the kernel's retransmissions get through and every byte comes back.

#[path = "support/kernel_echo.rs"]
mod kernel_echo;
#[path = "support/lab_engine.rs"]
mod lab_engine;

use core::net::SocketAddrV4;
use std::io::Read;
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use lab_engine::{
    EchoServer, SURGE_IP, SteerPorts, engine_on_a, engine_on_a_sized, engine_on_a_with, listen,
    on_host, pattern,
};
use surge_datapath::{Device, Frame, XdpPort};
use surge_lab::{HostId, Lab, LabSpec, Topology};
use surge_stack::Errno;
use surge_stack::engine::Engine;
use surge_stack::socket::{SocketHandle, TcpSocketOptions};
use surge_stack::tcp::KeepaliveConfig;

/// How long the peer does not read.
fn hold() -> Duration {
    if std::env::var_os("SURGE_LONG").is_some_and(|v| v == "1") {
        Duration::from_secs(60)
    } else {
        Duration::from_secs(5)
    }
}

/// The sender's side of the zero-window test, in the engine's loop.
#[derive(Default)]
struct Sender {
    conn: Option<SocketHandle>,
    sent: usize,
    /// Bytes taken by `send` when the peer started reading.
    sent_at_read: Option<usize>,
    /// Zero-window probes sent when the peer started reading, and at the end.
    probes_at_read: Option<u64>,
    probes: u64,
    error: Option<Errno>,
    closed: bool,
}

#[test]
fn a_peer_that_never_reads_holds_a_zero_window_and_gets_everything_later() {
    const PORT: u16 = 7600;
    const TOTAL: usize = 2 << 20;
    let hold = hold();
    let lab =
        Lab::up(&LabSpec::unique("zwin", Topology::Pair)).expect("lab (root tests need root)");
    // A small receive buffer in B, so its window closes after a few tens of KiB.
    lab_engine::sysctl(&lab, HostId::B, "net.ipv4.tcp_rmem", "4096 16384 32768");
    let (mut engine, _program) = engine_on_a(&lab, vec![PORT]);
    let listener = listen(&mut engine, PORT, 16);
    let data = Arc::new(pattern(TOTAL, 0x2e70));
    let reading = Arc::new(AtomicBool::new(false));
    let reader_done = Arc::new(AtomicBool::new(false));

    let client = {
        let (reading, reader_done) = (Arc::clone(&reading), Arc::clone(&reader_done));
        on_host(&lab, HostId::B, move || {
            let result = (|| -> Result<Vec<u8>, String> {
                let target = std::net::SocketAddr::V4(SocketAddrV4::new(SURGE_IP, PORT));
                let mut s = TcpStream::connect_timeout(&target, Duration::from_secs(10))
                    .map_err(|e| format!("connect: {e}"))?;
                std::thread::sleep(hold);
                reading.store(true, Ordering::Relaxed);
                s.set_read_timeout(Some(Duration::from_secs(20)))
                    .map_err(|e| e.to_string())?;
                let mut got = Vec::with_capacity(TOTAL);
                let start = Instant::now();
                let mut buf = vec![0u8; 65536];
                while start.elapsed() < Duration::from_secs(60) {
                    match s.read(&mut buf) {
                        Ok(0) => return Ok(got),
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                        Err(e) => return Err(format!("read after {} bytes: {e}", got.len())),
                    }
                }
                Err("no EOF within 60 s".into())
            })();
            reader_done.store(true, Ordering::Relaxed);
            result
        })
    };

    let stop = Arc::new(AtomicBool::new(false));
    let engine = {
        let (data, reading, reader_done) = (Arc::clone(&data), reading, Arc::clone(&reader_done));
        lab_engine::run_engine_with(
            engine,
            Arc::clone(&stop),
            hold + Duration::from_secs(90),
            Sender::default(),
            move |e, s| {
                if s.conn.is_none()
                    && let Ok((c, _)) = e.accept(listener)
                {
                    s.conn = Some(c);
                }
                let Some(c) = s.conn else { return false };
                if !s.closed {
                    if let Ok(Some(err)) = e.take_error(c) {
                        s.error = Some(err);
                    }
                    if let Ok(stats) = e.tcp_socket_stats(c) {
                        s.probes = stats.window_probes;
                    }
                    if s.sent_at_read.is_none() && reading.load(Ordering::Relaxed) {
                        s.sent_at_read = Some(s.sent);
                        s.probes_at_read = Some(s.probes);
                    }
                    while s.sent < TOTAL {
                        match e.send(c, &data[s.sent..(s.sent + 65536).min(TOTAL)]) {
                            Ok(n) => s.sent += n,
                            Err(Errno::EAGAIN) => break,
                            Err(err) => {
                                s.error = Some(err);
                                break;
                            }
                        }
                    }
                    if s.sent == TOTAL || s.error.is_some() {
                        let _ = e.close(c);
                        s.closed = true;
                    }
                }
                s.closed && reader_done.load(Ordering::Relaxed)
            },
        )
    };
    let received = client.join().expect("client thread");
    if received.is_err() {
        // The engine's loop would wait for a close that will not come.
        stop.store(true, Ordering::Relaxed);
    }
    let (engine, sender, finished) = engine.join().expect("engine thread");
    eprintln!(
        "held {hold:?}: surge had sent {:?} of {TOTAL} bytes when the peer started reading, \
         {:?} zero-window probes by then, {} in all; {} bytes taken in all, error {:?}; \
         the peer got {:?}; tcp {:?}",
        sender.sent_at_read,
        sender.probes_at_read,
        sender.probes,
        sender.sent,
        sender.error,
        received.as_ref().map(Vec::len),
        engine.tcp_stats()
    );
    let received = received.expect("the peer read everything");
    assert!(finished, "the engine loop did not finish");
    assert_eq!(sender.error, None, "the connection stayed up");
    let sent_at_read = sender.sent_at_read.expect("the peer started reading");
    assert!(
        sent_at_read < TOTAL / 2,
        "the zero window stopped the sender ({sent_at_read} bytes taken)"
    );
    let probes = sender.probes_at_read.expect("probes");
    assert!(
        probes >= 2,
        "zero-window probes kept the connection alive during the hold ({probes})"
    );
    assert_eq!(received.len(), TOTAL, "every byte arrived");
    assert!(received == data[..], "the bytes arrived in order, intact");
}

/// The receiver's side of the reverse zero-window test, in the engine's loop.
#[derive(Default)]
struct Receiver {
    conn: Option<SocketHandle>,
    /// Bytes surge's TCP had taken in when the hold ended (none read by then).
    buffered_at_read: Option<u64>,
    got: Vec<u8>,
    eof: bool,
    error: Option<Errno>,
}

#[test]
fn surge_not_reading_holds_a_kernel_sender_at_a_zero_window_then_takes_everything() {
    const PORT: u16 = 7650;
    const TOTAL: usize = 2 << 20;
    let hold = hold();
    let lab =
        Lab::up(&LabSpec::unique("zwrx", Topology::Pair)).expect("lab (root tests need root)");
    let (mut engine, _program) = engine_on_a(&lab, vec![PORT]);
    let listener = listen(&mut engine, PORT, 16);
    let data = Arc::new(pattern(TOTAL, 0x5eed));
    let client = {
        let data = Arc::clone(&data);
        on_host(&lab, HostId::B, move || -> Result<Duration, String> {
            use std::io::Write;
            let target = std::net::SocketAddr::V4(SocketAddrV4::new(SURGE_IP, PORT));
            let mut s = TcpStream::connect_timeout(&target, Duration::from_secs(10))
                .map_err(|e| format!("connect: {e}"))?;
            // Blocks on the zero window for the hold, then completes.
            s.set_write_timeout(Some(hold + Duration::from_secs(30)))
                .map_err(|e| e.to_string())?;
            let start = Instant::now();
            s.write_all(&data).map_err(|e| format!("write: {e}"))?;
            s.shutdown(std::net::Shutdown::Write)
                .map_err(|e| format!("shutdown: {e}"))?;
            Ok(start.elapsed())
        })
    };
    let started = Instant::now();
    let stop = Arc::new(AtomicBool::new(false));
    let handle = lab_engine::run_engine_with(
        engine,
        Arc::clone(&stop),
        hold + Duration::from_secs(60),
        Receiver::default(),
        move |e, r| {
            if r.conn.is_none()
                && let Ok((c, _)) = e.accept(listener)
            {
                r.conn = Some(c);
            }
            let Some(c) = r.conn else { return false };
            if started.elapsed() < hold {
                return false;
            }
            if r.buffered_at_read.is_none() {
                r.buffered_at_read = e.tcp_info(c).ok().map(|i| i.bytes_received);
            }
            let mut buf = [0u8; 65536];
            while !r.eof {
                match e.recv(c, &mut buf) {
                    Ok(0) => {
                        r.eof = true;
                        let _ = e.close(c);
                    }
                    Ok(n) => r.got.extend_from_slice(&buf[..n]),
                    Err(Errno::EAGAIN) => break,
                    Err(err) => {
                        r.error = Some(err);
                        return true;
                    }
                }
            }
            r.eof
        },
    );
    let sent = client.join().expect("client thread");
    if sent.is_err() {
        stop.store(true, Ordering::Relaxed);
    }
    let (engine, r, finished) = handle.join().expect("engine thread");
    eprintln!(
        "surge did not read for {hold:?}: its TCP held {:?} bytes by then; the kernel's write \
         took {sent:?}; surge read {} bytes, error {:?}; tcp {:?}",
        r.buffered_at_read,
        r.got.len(),
        r.error,
        engine.tcp_stats()
    );
    sent.expect("the kernel sender's connection stayed up");
    assert!(finished && r.eof, "surge read to the end");
    assert_eq!(r.error, None);
    let buffered = r.buffered_at_read.expect("held") as usize;
    assert!(
        buffered < TOTAL / 2,
        "surge's window closed the sender ({buffered} bytes taken in)"
    );
    assert_eq!(r.got.len(), TOTAL, "every byte arrived");
    assert!(r.got == data[..], "in order, intact");
}

/// A socket with options set by `set`, connecting to `remote`.
fn open(
    e: &mut Engine<XdpPort>,
    remote: SocketAddrV4,
    set: impl FnOnce(&mut TcpSocketOptions),
) -> Result<SocketHandle, Errno> {
    let h = e.tcp_socket()?;
    let mut options = e.tcp_options(h)?;
    set(&mut options);
    e.set_tcp_options(h, options)?;
    match e.connect(h, remote) {
        Err(Errno::EINPROGRESS) | Ok(()) => Ok(h),
        Err(err) => Err(err),
    }
}

/// The client's side of the vanishing-peer test, in the engine's loop.
#[derive(Default)]
struct Vanishing {
    /// The keepalive connection and the user-timeout one.
    conns: Option<(SocketHandle, SocketHandle)>,
    echoed: [usize; 2],
    /// When both had their echo back.
    alive_at: Option<Instant>,
    /// Keepalive probes answered while the peer was there.
    probes_alive: u64,
    gone_at: Option<Instant>,
    probes_at_gone: u64,
    probes: u64,
    /// The error each connection ended with, and when (after the peer vanished).
    ended: [Option<(Errno, Duration)>; 2],
    setup_error: Option<String>,
}

#[test]
fn a_peer_that_disappears_is_dropped_by_keepalive_and_user_timeout_with_etimedout() {
    const PORT: u16 = 7700;
    const ALIVE: Duration = Duration::from_millis(3500);
    const USER_TIMEOUT: Duration = Duration::from_secs(3);
    let keepalive = KeepaliveConfig {
        idle: Duration::from_secs(1),
        interval: Duration::from_secs(1),
        count: 3,
    };
    let lab =
        Lab::up(&LabSpec::unique("gone", Topology::Pair)).expect("lab (root tests need root)");
    let b_addr = lab.b().addr;
    let mut echo = kernel_echo::start_kernel_echo(&lab, HostId::B, &b_addr.to_string(), PORT, 2);
    let (engine, _program) = engine_on_a_with(&lab, SteerPorts::default(), |_| {});
    let alive_checked = Arc::new(AtomicBool::new(false));
    let peer_gone = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let remote = SocketAddrV4::new(b_addr, PORT);
    let handle = {
        let (alive_checked, peer_gone) = (Arc::clone(&alive_checked), Arc::clone(&peer_gone));
        lab_engine::run_engine_with(
            engine,
            Arc::clone(&stop),
            Duration::from_secs(60),
            Vanishing::default(),
            move |e, v| {
                let (k, u) = match v.conns {
                    Some(c) => c,
                    None => {
                        let k = open(e, remote, |o| o.keepalive = Some(keepalive));
                        let u = open(e, remote, |o| o.user_timeout = Some(USER_TIMEOUT));
                        match (k, u) {
                            (Ok(k), Ok(u)) => v.conns = Some((k, u)),
                            (k, u) => {
                                v.setup_error = Some(format!("{k:?} {u:?}"));
                                return true;
                            }
                        }
                        return false;
                    }
                };
                let mut buf = [0u8; 64];
                for (i, c) in [k, u].into_iter().enumerate() {
                    if v.ended[i].is_some() {
                        continue;
                    }
                    let writable = e.readiness(c).is_ok_and(|r| r.writable);
                    if v.echoed[i] == 0 && writable && e.send(c, b"hello") == Ok(5) {
                        v.echoed[i] = 1;
                    }
                    match e.recv(c, &mut buf) {
                        Ok(n) if n > 0 => v.echoed[i] += n,
                        Err(err) if err != Errno::EAGAIN => {
                            let since = v.gone_at.map_or(Duration::ZERO, |t| t.elapsed());
                            v.ended[i] = Some((err, since));
                        }
                        _ => {}
                    }
                    if v.ended[i].is_none()
                        && let Ok(Some(err)) = e.take_error(c)
                    {
                        let since = v.gone_at.map_or(Duration::ZERO, |t| t.elapsed());
                        v.ended[i] = Some((err, since));
                    }
                }
                if let Ok(stats) = e.tcp_socket_stats(k) {
                    v.probes = stats.keepalive_probes;
                }
                match (v.alive_at, v.gone_at) {
                    (None, _) if v.echoed == [6, 6] => v.alive_at = Some(Instant::now()),
                    (Some(t), None) if t.elapsed() >= ALIVE => {
                        v.probes_alive = v.probes;
                        alive_checked.store(true, Ordering::Relaxed);
                        if peer_gone.load(Ordering::Relaxed) {
                            v.gone_at = Some(Instant::now());
                            v.probes_at_gone = v.probes;
                            // Data for the user timeout to watch go unacknowledged.
                            let _ = e.send(u, &[0x55; 1000]);
                        }
                    }
                    _ => {}
                }
                v.ended.iter().all(Option::is_some) || v.setup_error.is_some()
            },
        )
    };
    // Once the connections proved alive: B drops everything it would send to surge.
    let start = Instant::now();
    while !alive_checked.load(Ordering::Relaxed) && start.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        alive_checked.load(Ordering::Relaxed),
        "the connections never came up"
    );
    let blackhole = format!("{SURGE_IP}/32");
    let out = lab
        .exec(HostId::B, &["ip", "route", "add", "blackhole", &blackhole])
        .expect("ip route");
    assert!(out.status.success(), "ip route add blackhole: {out:?}");
    peer_gone.store(true, Ordering::Relaxed);
    let (engine, v, finished) = handle.join().expect("engine thread");
    // SIGTERM to `timeout`, which hands it on to the Python server (SIGKILL would
    // orphan it).
    let _ = std::process::Command::new("kill")
        .args(["-TERM", &echo.id().to_string()])
        .status();
    let _ = echo.wait();
    eprintln!(
        "keepalive probes: {} while the peer answered, {} after it vanished; ended: {:?}; tcp {:?}",
        v.probes_alive,
        v.probes - v.probes_at_gone,
        v.ended,
        engine.tcp_stats()
    );
    assert_eq!(v.setup_error, None);
    assert!(
        finished,
        "both connections should have ended: {:?}",
        v.ended
    );
    assert!(
        v.probes_alive >= 2,
        "answered keepalive probes kept the idle connection up ({})",
        v.probes_alive
    );
    let (k_err, k_after) = v.ended[0].expect("keepalive connection ended");
    let (u_err, u_after) = v.ended[1].expect("user-timeout connection ended");
    assert_eq!(k_err, Errno::ETIMEDOUT, "keepalive");
    assert_eq!(u_err, Errno::ETIMEDOUT, "user timeout");
    assert!(
        v.probes - v.probes_at_gone >= u64::from(keepalive.count),
        "the keepalive connection sent its {} probes before giving up",
        keepalive.count
    );
    // Not before the unanswered probes / the user timeout, and long before the
    // defaults (2 h keepalive, ~15 min of retransmissions).
    assert!(
        k_after >= Duration::from_secs(2) && k_after < Duration::from_secs(20),
        "keepalive closed after {k_after:?}"
    );
    assert!(
        u_after >= USER_TIMEOUT - Duration::from_millis(100) && u_after < Duration::from_secs(20),
        "user timeout closed after {u_after:?}"
    );
}

/// The echo server of the UMEM test, and the frames it takes away from its own pool.
struct Starved {
    server: EchoServer,
    held: Vec<Frame>,
    /// When the frames were taken, and when given back.
    taken_at: Option<Instant>,
    returned: bool,
    /// Most frames held at once.
    most_held: usize,
    /// The engine's and the kernel's counters when the frames came back.
    tx_no_frame: u64,
    kernel_fill_empty: u64,
    kernel_rx_dropped: u64,
}

#[test]
fn an_exhausted_umem_drops_frames_and_connections_recover_when_they_return() {
    const PORT: u16 = 7800;
    const TOTAL: usize = 4 << 20;
    const HOLD: Duration = Duration::from_secs(1);
    let lab =
        Lab::up(&LabSpec::unique("umem", Topology::Pair)).expect("lab (root tests need root)");
    // A small UMEM (4096 frames) with 128-entry fill and RX rings: while the frames
    // are taken, the peer's data in flight must be able to empty the fill ring, so
    // the kernel counts drops. A larger fill ring (the default 8192, or even 2048)
    // can hold everything the peer sends in the hold, and whether it empties is then
    // a matter of timing.
    let (mut engine, _program) = engine_on_a_sized(
        &lab,
        SteerPorts {
            tcp: vec![PORT],
            udp: Vec::new(),
        },
        Some((4096, 128)),
        |_| {},
    );
    let listener = listen(&mut engine, PORT, 16);
    let data = Arc::new(pattern(TOTAL, 0x0e3e));
    let client_done = Arc::new(AtomicBool::new(false));
    let client = {
        let (data, client_done) = (Arc::clone(&data), Arc::clone(&client_done));
        on_host(&lab, HostId::B, move || -> Result<Vec<u8>, String> {
            // Whatever happens, the engine's loop may end once this does.
            struct Done(Arc<AtomicBool>);
            impl Drop for Done {
                fn drop(&mut self) {
                    self.0.store(true, Ordering::Relaxed);
                }
            }
            let _done = Done(client_done);
            let target = std::net::SocketAddr::V4(SocketAddrV4::new(SURGE_IP, PORT));
            let mut s = TcpStream::connect_timeout(&target, Duration::from_secs(10))
                .map_err(|e| format!("connect: {e}"))?;
            s.set_read_timeout(Some(Duration::from_secs(20)))
                .map_err(|e| e.to_string())?;
            let mut writer = s.try_clone().map_err(|e| e.to_string())?;
            let sender = std::thread::spawn(move || -> Result<(), String> {
                use std::io::Write;
                writer.write_all(&data).map_err(|e| format!("write: {e}"))?;
                writer
                    .shutdown(std::net::Shutdown::Write)
                    .map_err(|e| format!("shutdown: {e}"))
            });
            let mut got = Vec::with_capacity(TOTAL);
            let mut buf = vec![0u8; 65536];
            let start = Instant::now();
            let result = loop {
                if start.elapsed() > Duration::from_secs(60) {
                    break Err("no EOF within 60 s".to_string());
                }
                match s.read(&mut buf) {
                    Ok(0) => break Ok(got),
                    Ok(n) => got.extend_from_slice(&buf[..n]),
                    Err(e) => break Err(format!("read after {} bytes: {e}", got.len())),
                }
            };
            sender.join().map_err(|_| "writer panicked".to_string())??;
            result
        })
    };
    let stop = Arc::new(AtomicBool::new(false));
    let state = Starved {
        server: EchoServer::new(listener),
        held: Vec::new(),
        taken_at: None,
        returned: false,
        most_held: 0,
        tx_no_frame: 0,
        kernel_fill_empty: 0,
        kernel_rx_dropped: 0,
    };
    let handle = lab_engine::run_engine_with(
        engine,
        Arc::clone(&stop),
        Duration::from_secs(90),
        state,
        move |e, s| {
            s.server.step(e);
            // A quarter of the way in, take every free frame, and keep taking the ones the
            // stack gives back, for HOLD; then return them all.
            if s.taken_at.is_none() && s.server.echoed >= TOTAL as u64 / 4 {
                s.taken_at = Some(Instant::now());
            }
            if let Some(t) = s.taken_at
                && !s.returned
            {
                if t.elapsed() < HOLD {
                    while let Some(f) = e.device_mut().alloc_tx() {
                        s.held.push(f);
                    }
                    s.most_held = s.most_held.max(s.held.len());
                } else {
                    s.tx_no_frame = e.stats().tx_no_frame;
                    let kernel = e.device().stats().kernel.unwrap_or_default();
                    s.kernel_fill_empty = kernel.fill_ring_empty;
                    s.kernel_rx_dropped = kernel.rx_dropped;
                    for f in s.held.drain(..) {
                        e.device_mut().release_one(f);
                    }
                    s.returned = true;
                }
            }
            // The server closes once it has handed the echo to its socket; the engine
            // keeps sending it until the client has it all.
            s.returned && s.server.served == 1 && client_done.load(Ordering::Relaxed)
        },
    );
    let received = client.join().expect("client thread");
    if received.is_err() {
        stop.store(true, Ordering::Relaxed);
    }
    let (mut engine, s, finished) = handle.join().expect("engine thread");
    for (h, pending) in s.server.connections() {
        eprintln!(
            "open at the end: {h:?}, {pending} bytes not yet echoed, {:?}, {:?}, {:?}",
            engine.readiness(h),
            engine.tcp_info(h),
            engine.tcp_socket_stats(h)
        );
    }
    eprintln!(
        "echoed {} bytes; {:?}; {:?}; {:?}",
        s.server.echoed,
        engine.stats(),
        engine.tcp_stats(),
        engine.device().accounting()
    );
    eprintln!(
        "held up to {} frames for {HOLD:?}; then: engine tx_no_frame {}, kernel fill ring \
         found empty {} times, {} frames dropped by the kernel; the peer got {:?}; device {:?}",
        s.most_held,
        s.tx_no_frame,
        s.kernel_fill_empty,
        s.kernel_rx_dropped,
        received.as_ref().map(Vec::len),
        engine.device().stats()
    );
    let received = received.expect("the echo completed after the frames returned");
    assert!(finished, "the server did not finish");
    assert!(s.most_held > 0, "frames were taken");
    // The fill ring still holds the frames posted before the hold, so the kernel may run
    // it dry only at the hold's very end, after the snapshot taken when the frames go
    // back (seen in CI: 0 at the snapshot, 27 empty and 27 dropped at the end); the
    // UMEM was exhausted only during the hold, so the counters at the end tell the same.
    let kernel_end = engine.device().stats().kernel.unwrap_or_default();
    assert!(
        s.kernel_fill_empty > 0
            || s.kernel_rx_dropped > 0
            || kernel_end.fill_ring_empty > 0
            || kernel_end.rx_dropped > 0,
        "the kernel found no frame to receive into"
    );
    assert_eq!(received.len(), TOTAL, "every byte came back");
    assert!(received == data[..], "intact and in order");
    assert_eq!(s.server.failed, 0);
    lab_engine::assert_no_leaks(&engine);
}

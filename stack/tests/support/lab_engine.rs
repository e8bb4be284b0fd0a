//! Set-up shared by the root tests that run surge's engine on AF_XDP in a fresh
//! lab against the Linux kernel on the other end of the veth pair: the engine on
//! host A's veth with the steering program, the engine loop on a thread, an echo
//! server on the engine, kernel helpers in host B's namespace, and the no-leak
//! checks. Included by each `engine_lab*` test with
//! `#[path = "support/lab_engine.rs"] mod lab_engine;`.
#![allow(dead_code)] // each test file uses a different part

use core::net::{Ipv4Addr, SocketAddrV4};
use std::io::BufRead;
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use surge_bpf::SteerProgram;
use surge_datapath::{Device, XdpPort};
use surge_lab::{HostId, Lab, enter_netns};
use surge_stack::Errno;
use surge_stack::engine::{DropReason, Engine, EngineConfig};
use surge_stack::iface::Ipv4Cidr;
use surge_stack::runtime::xdp::{XdpConfig, XdpInterface};
use surge_stack::socket::SocketHandle;
use surge_stack::table::BindOptions;
use surge_stack::time::Instant;

/// The address only surge answers in host A (the kernel of A has 198.18.0.1).
pub const SURGE_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 10);

/// The ports the steering program hands to the engine (besides its ephemeral range).
#[derive(Debug, Clone, Default)]
pub struct SteerPorts {
    /// TCP destination ports.
    pub tcp: Vec<u16>,
    /// UDP destination ports.
    pub udp: Vec<u16>,
}

/// An engine on host A's veth with default settings, owning TCP `tcp_ports`.
pub fn engine_on_a(lab: &Lab, tcp_ports: Vec<u16>) -> (Engine<XdpPort>, SteerProgram) {
    engine_on_a_with(
        lab,
        SteerPorts {
            tcp: tcp_ports,
            udp: Vec::new(),
        },
        |_| {},
    )
}

/// An engine on host A's veth, with the steering program attached: the program
/// hands the engine `ports`, its ephemeral range and ICMP to [`SURGE_IP`];
/// `configure` adjusts the engine's configuration (buffers, TIME-WAIT, ...).
pub fn engine_on_a_with(
    lab: &Lab,
    ports: SteerPorts,
    configure: impl FnOnce(&mut EngineConfig),
) -> (Engine<XdpPort>, SteerProgram) {
    engine_on_a_sized(lab, ports, None, configure)
}

/// [`engine_on_a_with`] with the port's UMEM frames and ring size set
/// (`Some((frames, ring_size))`) instead of the defaults.
pub fn engine_on_a_sized(
    lab: &Lab,
    ports: SteerPorts,
    sizes: Option<(u32, u32)>,
    configure: impl FnOnce(&mut EngineConfig),
) -> (Engine<XdpPort>, SteerProgram) {
    let a = lab.a().clone();
    let _ns = enter_netns(&a.netns).expect("entering ns A");
    let xdp = XdpConfig {
        mac: Some(surge_stack::wire::EthernetAddress(a.mac)),
        queues: Some(1),
        tcp_ports: ports.tcp,
        udp_ports: ports.udp,
        frames: sizes.map(|(frames, _)| frames),
        ring_size: sizes.map(|(_, ring)| ring),
        ..XdpConfig::new(&a.ifname, Ipv4Cidr::new(SURGE_IP, 24).expect("cidr"))
    };
    let interface = XdpInterface::attach(&xdp, |config| {
        // The engine answers with the default (fixed) secrets and clock, as the
        // in-memory tests do.
        let defaults = EngineConfig::new(config.iface.clone());
        config.secrets = defaults.secrets;
        config.clock_base = defaults.clock_base;
        configure(config);
    })
    .expect("attach XDP");
    let engine = interface.open_engine(0).expect("AF_XDP port and engine");
    (engine, interface.into_program())
}

/// Runs `step` in the engine's loop on a thread until it returns true (then
/// keeps polling for a grace period so the last segments leave), `stop` is set,
/// or `limit` passes; returns the engine and whether `step` finished.
pub fn run_engine(
    engine: Engine<XdpPort>,
    stop: Arc<AtomicBool>,
    limit: Duration,
    mut step: impl FnMut(&mut Engine<XdpPort>) -> bool + Send + 'static,
) -> std::thread::JoinHandle<(Engine<XdpPort>, bool)> {
    std::thread::spawn(move || {
        let (engine, (), finished) = drive(engine, &stop, limit, (), move |e, _| step(e));
        (engine, finished)
    })
}

/// [`run_engine`] with application state `state` that `step` works on and that
/// comes back with the engine (counters of a server, ...).
pub fn run_engine_with<S: Send + 'static>(
    engine: Engine<XdpPort>,
    stop: Arc<AtomicBool>,
    limit: Duration,
    state: S,
    step: impl FnMut(&mut Engine<XdpPort>, &mut S) -> bool + Send + 'static,
) -> std::thread::JoinHandle<(Engine<XdpPort>, S, bool)> {
    std::thread::spawn(move || drive(engine, &stop, limit, state, step))
}

/// The engine loop of [`run_engine_with`], on the calling thread.
fn drive<S>(
    mut engine: Engine<XdpPort>,
    stop: &AtomicBool,
    limit: Duration,
    mut state: S,
    mut step: impl FnMut(&mut Engine<XdpPort>, &mut S) -> bool,
) -> (Engine<XdpPort>, S, bool) {
    let start = std::time::Instant::now();
    let mut finished_at = None;
    while start.elapsed() < limit && !stop.load(Ordering::Relaxed) {
        let busy = engine.poll(now());
        match finished_at {
            None if step(&mut engine, &mut state) => finished_at = Some(start.elapsed()),
            Some(t) if start.elapsed() - t > Duration::from_millis(300) => break,
            _ => {}
        }
        if !busy {
            std::thread::sleep(Duration::from_micros(50));
        }
    }
    (engine, state, finished_at.is_some())
}

/// The engine clock: monotonic across runs, one epoch per test process.
pub fn now() -> Instant {
    static EPOCH: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    let epoch = *EPOCH.get_or_init(std::time::Instant::now);
    Instant::from_micros(epoch.elapsed().as_micros() as u64)
}

/// A TCP listener of the engine on `0.0.0.0:port`.
pub fn listen(engine: &mut Engine<XdpPort>, port: u16, backlog: i32) -> SocketHandle {
    let listener = engine.tcp_socket().expect("socket");
    engine
        .bind(
            listener,
            SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, port),
            BindOptions {
                privileged: true,
                ..BindOptions::default()
            },
        )
        .expect("bind");
    engine.listen(listener, backlog).expect("listen");
    listener
}

/// One connection of the [`EchoServer`].
struct EchoConn {
    handle: SocketHandle,
    /// Received, not yet taken by `send`.
    pending: Vec<u8>,
    /// The peer sent its FIN.
    eof: bool,
}

/// A non-blocking echo server's per-iteration work on the engine: accepts,
/// echoes every byte, and closes a connection once the peer has finished
/// sending and everything has been echoed.
pub struct EchoServer {
    listener: SocketHandle,
    conns: Vec<EchoConn>,
    /// Connections accepted.
    pub accepted: usize,
    /// Connections that ended with the peer's FIN and were closed by us.
    pub served: usize,
    /// Connections that ended with an error.
    pub failed: usize,
    /// Most connections open at once.
    pub max_open: usize,
    /// Bytes echoed.
    pub echoed: u64,
}

/// Received bytes held per connection before the server stops reading (backpressure).
const ECHO_PENDING_MAX: usize = 256 * 1024;

impl EchoServer {
    /// An echo server on `listener`.
    pub fn new(listener: SocketHandle) -> EchoServer {
        EchoServer {
            listener,
            conns: Vec::new(),
            accepted: 0,
            served: 0,
            failed: 0,
            max_open: 0,
            echoed: 0,
        }
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.conns.len()
    }

    /// The open connections, each with the bytes received and not yet echoed.
    pub fn connections(&self) -> Vec<(SocketHandle, usize)> {
        self.conns
            .iter()
            .map(|c| (c.handle, c.pending.len()))
            .collect()
    }

    /// One iteration: accept, read, echo, close.
    pub fn step(&mut self, e: &mut Engine<XdpPort>) {
        while let Ok((handle, _)) = e.accept(self.listener) {
            self.accepted += 1;
            self.conns.push(EchoConn {
                handle,
                pending: Vec::new(),
                eof: false,
            });
        }
        self.max_open = self.max_open.max(self.conns.len());
        let mut buf = [0u8; 16384];
        let (mut served, mut failed, mut echoed) = (0, 0, 0u64);
        self.conns.retain_mut(|c| {
            while !c.eof && c.pending.len() < ECHO_PENDING_MAX {
                match e.recv(c.handle, &mut buf) {
                    Ok(0) => c.eof = true,
                    Ok(n) => c.pending.extend_from_slice(&buf[..n]),
                    Err(Errno::EAGAIN) => break,
                    Err(_) => {
                        failed += 1;
                        let _ = e.close(c.handle);
                        return false;
                    }
                }
            }
            while !c.pending.is_empty() {
                match e.send(c.handle, &c.pending) {
                    Ok(n) => {
                        echoed += n as u64;
                        c.pending.drain(..n);
                    }
                    Err(Errno::EAGAIN) => break,
                    Err(_) => {
                        failed += 1;
                        let _ = e.close(c.handle);
                        return false;
                    }
                }
            }
            if c.eof && c.pending.is_empty() {
                served += 1;
                let _ = e.close(c.handle);
                return false;
            }
            true
        });
        self.served += served;
        self.failed += failed;
        self.echoed += echoed;
    }
}

/// Deterministic pseudo-random bytes (xorshift64*), `len` of them, from `seed`.
pub fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        out.extend_from_slice(&x.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Runs `f` on a thread inside host `id`'s namespace (sockets it opens are the
/// kernel's sockets of that host).
pub fn on_host<R: Send + 'static>(
    lab: &Lab,
    id: HostId,
    f: impl FnOnce() -> R + Send + 'static,
) -> std::thread::JoinHandle<R> {
    let netns = lab.host(id).expect("host").netns.clone();
    std::thread::spawn(move || {
        let _ns = enter_netns(&netns).expect("entering the host's namespace");
        f()
    })
}

/// `sysctl -w key=value` inside host `id`'s namespace.
pub fn sysctl(lab: &Lab, id: HostId, key: &str, value: &str) {
    let out = lab
        .exec(id, &["sysctl", "-w", &format!("{key}={value}")])
        .expect("sysctl");
    assert!(
        out.status.success(),
        "sysctl {key}={value}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Spawns `python3 -c script args...` in host `id`'s namespace under `timeout
/// secs`, and waits for its first line of output, which must be `ready`.
pub fn spawn_python_ready(
    lab: &Lab,
    id: HostId,
    secs: u32,
    script: &str,
    args: &[&str],
    ready: &str,
) -> (Child, std::io::BufReader<std::process::ChildStdout>) {
    let mut child = lab
        .command(id, "timeout")
        .expect("command in the host's namespace")
        .arg(secs.to_string())
        .args(["python3", "-c", script])
        .args(args)
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3");
    let mut reader = std::io::BufReader::new(child.stdout.take().expect("stdout"));
    let mut line = String::new();
    reader.read_line(&mut line).expect("first line");
    assert_eq!(line.trim(), ready, "the helper did not start");
    (child, reader)
}

/// The no-leak checks on an engine that has quiesced: the stack holds no frame,
/// every frame of the pool is accounted for, and nothing was dropped because no
/// connection matched or a table was full.
pub fn assert_no_leaks(engine: &Engine<XdpPort>) {
    let acc = engine.device().accounting();
    assert!(
        acc.balanced(),
        "frames leaked: {acc:?} (free + fill ring + held + tx ring != total)"
    );
    assert_eq!(acc.held, 0, "frames still held by the stack: {acc:?}");
    assert_eq!(acc.large_held, 0, "large frames still held: {acc:?}");
    let stats = engine.stats();
    let tcp = engine.tcp_stats();
    assert_eq!(tcp.table_full, 0, "SYNs dropped, table full: {tcp:?}");
    assert_eq!(
        stats.dropped(DropReason::TcpNoConnection),
        0,
        "segments for no connection: {stats:?}"
    );
}

/// Polls the engine (no application work) until `done` holds or `limit` passes;
/// true if it held.
pub fn poll_until(
    engine: &mut Engine<XdpPort>,
    limit: Duration,
    mut done: impl FnMut(&Engine<XdpPort>) -> bool,
) -> bool {
    let start = std::time::Instant::now();
    while start.elapsed() < limit {
        if done(engine) {
            return true;
        }
        if !engine.poll(now()) {
            std::thread::sleep(Duration::from_micros(200));
        }
    }
    done(engine)
}

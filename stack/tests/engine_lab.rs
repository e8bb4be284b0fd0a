//! surge's engine on AF_XDP in a fresh lab, against the Linux kernel's stack on
//! the other end of the veth pair: a kernel client (Python) to a surge echo
//! server, a surge client to a kernel echo server, and ping to a surge address.
//! These are root tests: CI runs as root, and they fail loudly without it.

use core::net::{Ipv4Addr, SocketAddrV4};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use surge_bpf::{AttachMode, SteerConfig, SteerProgram};
use surge_datapath::{PortConfig, XdpPort};
use surge_lab::{HostId, Lab, LabSpec, Topology, enter_netns};
use surge_stack::engine::{Engine, EngineConfig};
use surge_stack::iface::{InterfaceConfig, Ipv4Cidr};
use surge_stack::socket::SocketHandle;
use surge_stack::table::{BindOptions, Errno};
use surge_stack::time::Instant;

/// The address only surge answers in host A (the kernel of A has 198.18.0.1).
const SURGE_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 10);
const LIMIT: Duration = Duration::from_secs(60);

/// An engine on host A's veth, with the steering program attached.
fn engine_on_a(lab: &Lab, tcp_ports: Vec<u16>) -> (Engine<XdpPort>, SteerProgram) {
    let a = lab.a().clone();
    let _ns = enter_netns(&a.netns).expect("entering ns A");
    let steer = SteerConfig {
        local_addrs: vec![SURGE_IP],
        tcp_ports,
        ephemeral_ports: Some(32768..=60999),
        icmp: true,
        ..SteerConfig::default()
    };
    let program = SteerProgram::attach(&a.ifname, &steer, AttachMode::Auto).expect("attach XDP");
    let mut port_config = PortConfig::new(&a.ifname, 0);
    port_config.pool.huge_pages = false;
    let port = XdpPort::open(&port_config).expect("open AF_XDP port");
    program
        .register_socket(0, port.fd())
        .expect("register socket");
    let iface = InterfaceConfig::new(
        surge_stack::wire::EthernetAddress(a.mac),
        Ipv4Cidr::new(SURGE_IP, 24).expect("cidr"),
        None,
        1500,
    )
    .expect("iface");
    let engine = Engine::new(port, EngineConfig::new(iface)).expect("engine");
    (engine, program)
}

/// Runs `step` in the engine's loop on a thread until it returns true (then
/// keeps polling for a grace period so the last segments leave), `stop` is set,
/// or the time limit passes; returns the engine and whether `step` finished.
fn run_engine(
    mut engine: Engine<XdpPort>,
    stop: Arc<AtomicBool>,
    mut step: impl FnMut(&mut Engine<XdpPort>) -> bool + Send + 'static,
) -> std::thread::JoinHandle<(Engine<XdpPort>, bool)> {
    std::thread::spawn(move || {
        let start = std::time::Instant::now();
        let mut finished_at = None;
        while start.elapsed() < LIMIT && !stop.load(Ordering::Relaxed) {
            // The engine's clock is monotonic across runs: one epoch per process.
            let now = Instant::from_micros(epoch().elapsed().as_micros() as u64);
            let busy = engine.poll(now);
            match finished_at {
                None if step(&mut engine) => finished_at = Some(start.elapsed()),
                Some(t) if start.elapsed() - t > Duration::from_millis(300) => break,
                _ => {}
            }
            if !busy {
                std::thread::sleep(Duration::from_micros(50));
            }
        }
        (engine, finished_at.is_some())
    })
}

/// The origin of the engines' clock in this test process.
fn epoch() -> std::time::Instant {
    static EPOCH: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    *EPOCH.get_or_init(std::time::Instant::now)
}

/// A non-blocking echo server's per-iteration work on the engine.
struct EchoServer {
    listener: SocketHandle,
    conns: Vec<(SocketHandle, Vec<u8>)>,
    served: usize,
}

impl EchoServer {
    fn step(&mut self, e: &mut Engine<XdpPort>) {
        while let Ok((c, _)) = e.accept(self.listener) {
            self.conns.push((c, Vec::new()));
        }
        let mut buf = [0u8; 16384];
        self.conns.retain_mut(|(c, pending)| {
            loop {
                match e.recv(*c, &mut buf) {
                    Ok(0) => {
                        self.served += 1;
                        let _ = e.close(*c);
                        return false;
                    }
                    Ok(n) => pending.extend_from_slice(&buf[..n]),
                    Err(Errno::EAGAIN) => break,
                    Err(_) => {
                        let _ = e.close(*c);
                        return false;
                    }
                }
            }
            while !pending.is_empty() {
                match e.send(*c, pending) {
                    Ok(n) => {
                        pending.drain(..n);
                    }
                    Err(_) => break,
                }
            }
            true
        });
    }
}

const PY_CLIENT: &str = r#"
import hashlib, os, socket, sys
addr, port, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
data = os.urandom(size)
s = socket.create_connection((addr, port), timeout=20)
s.settimeout(20)
got = bytearray()
sent = 0
while sent < len(data) or len(got) < len(data):
    if sent < len(data):
        sent += s.send(data[sent:sent + 65536])
    while len(got) < sent:
        chunk = s.recv(1 << 20)
        if not chunk:
            raise SystemExit("server closed early after %d bytes" % len(got))
        got += chunk
s.shutdown(socket.SHUT_WR)
assert s.recv(1) == b"", "expected EOF"
print("sha", hashlib.sha256(data).hexdigest() == hashlib.sha256(bytes(got)).hexdigest(), len(got))
"#;

#[test]
fn kernel_client_to_surge_echo_server_ten_megabytes() {
    let lab =
        Lab::up(&LabSpec::unique("eng-srv", Topology::Pair)).expect("lab (root tests need root)");
    let (mut engine, _program) = engine_on_a(&lab, vec![7]);
    let listener = engine.tcp_socket().expect("socket");
    engine
        .bind(
            listener,
            SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, 7),
            BindOptions {
                privileged: true,
                ..BindOptions::default()
            },
        )
        .expect("bind");
    engine.listen(listener, 128).expect("listen");
    let stop = Arc::new(AtomicBool::new(false));
    let mut server = EchoServer {
        listener,
        conns: Vec::new(),
        served: 0,
    };
    let handle = run_engine(engine, Arc::clone(&stop), move |e| {
        server.step(e);
        server.served == 1
    });
    let out = lab
        .exec(
            HostId::B,
            &[
                "timeout",
                "50",
                "python3",
                "-c",
                PY_CLIENT,
                &SURGE_IP.to_string(),
                "7",
                "10000000",
            ],
        )
        .expect("python client");
    stop.store(true, Ordering::Relaxed);
    let (engine, finished) = handle.join().expect("engine thread");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("sha True 10000000"),
        "kernel client failed: {stdout} {}\nengine: {:?}",
        String::from_utf8_lossy(&out.stderr),
        engine.stats()
    );
    assert!(finished, "the server saw the client's FIN");
    assert_eq!(engine.tcp_stats().passive_opens, 1);
}

const PY_SERVER: &str = r#"
import socket, sys
l = socket.socket()
l.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
l.bind((sys.argv[1], int(sys.argv[2])))
l.listen(8)
l.settimeout(30)
print("listening", flush=True)
c, _ = l.accept()
c.settimeout(30)
while True:
    d = c.recv(1 << 20)
    if not d:
        break
    c.sendall(d)
c.close()
"#;

#[test]
fn surge_client_to_kernel_echo_server_and_ping_to_surge() {
    let lab =
        Lab::up(&LabSpec::unique("eng-cli", Topology::Pair)).expect("lab (root tests need root)");
    let b_addr = lab.b().addr;
    let mut server = lab
        .command(HostId::B, "python3")
        .expect("command in ns B")
        .args(["-c", PY_SERVER, &b_addr.to_string(), "9000"])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python server");
    // Wait for "listening".
    {
        use std::io::BufRead;
        let mut line = String::new();
        let stdout = server.stdout.as_mut().expect("stdout");
        std::io::BufReader::new(stdout)
            .read_line(&mut line)
            .expect("server output");
        assert_eq!(line.trim(), "listening");
    }
    let (engine, _program) = engine_on_a(&lab, vec![]);
    // First the kernel of B pings surge's address while the engine runs.
    let stop = Arc::new(AtomicBool::new(false));
    let handle = run_engine(engine, Arc::clone(&stop), |_| false);
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
                &SURGE_IP.to_string(),
            ],
        )
        .expect("ping");
    stop.store(true, Ordering::Relaxed);
    let (mut engine, _) = handle.join().expect("engine thread");
    assert!(
        ping.status.success(),
        "ping to surge failed: {}",
        String::from_utf8_lossy(&ping.stdout)
    );
    assert!(engine.stats().icmp_echo_replies >= 3);

    let client = engine.tcp_socket().expect("socket");
    assert_eq!(
        engine.connect(client, SocketAddrV4::new(b_addr, 9000)),
        Err(Errno::EINPROGRESS)
    );
    let size = 4_000_000usize;
    let data: Vec<u8> = (0..size)
        .map(|i| (i as u32).wrapping_mul(2_654_435_761).to_le_bytes()[1])
        .collect();
    let expected = data.clone();
    let stop = Arc::new(AtomicBool::new(false));
    let (mut sent, mut got, mut buf) = (0usize, Vec::with_capacity(size), vec![0u8; 65536]);
    let handle = run_engine(engine, Arc::clone(&stop), move |e| {
        if let Ok(Some(err)) = e.take_error(client) {
            panic!("connection failed: {err}");
        }
        if sent < data.len() {
            if let Ok(n) = e.send(client, &data[sent..]) {
                sent += n;
            }
        }
        while let Ok(n) = e.recv(client, &mut buf) {
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
        if got.len() == expected.len() {
            assert!(got == expected, "echoed bytes differ");
            let _ = e.close(client);
            return true;
        }
        false
    });
    let (engine, finished) = handle.join().expect("engine thread");
    let _ = server.kill();
    let _ = server.wait();
    assert!(
        finished,
        "the echo did not complete: stats {:?} tcp {:?}",
        engine.stats(),
        engine.tcp_stats()
    );
    assert_eq!(engine.tcp_stats().active_opens, 1);
}

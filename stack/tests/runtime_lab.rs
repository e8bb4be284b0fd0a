//! The runtime on a real two-queue veth, against the Linux stack on the other end
//! (root tests: CI runs as root, and they fail loudly without it).
//!
//! Two engines serve the two RX queues of host A's veth. Kernel clients connect
//! to a surge echo server, surge clients connect to a kernel echo server, UDP
//! datagrams are echoed, and ping is answered. The kernel chooses the queue of
//! each frame it sends (its TX queue for the socket), so replies to surge's
//! active opens land on either engine: the ones on the wrong engine must be
//! handed over (counted in `forwarded_in`), and every byte must come back.

use core::net::{Ipv4Addr, SocketAddrV4};
use std::io::{Read, Write};
use std::time::Duration;

use surge_lab::{HostId, Lab, LabSpec, Topology, enter_netns};

#[path = "support/kernel_echo.rs"]
mod kernel_echo;
use surge_stack::iface::Ipv4Cidr;
use surge_stack::runtime::RuntimeConfig;
use surge_stack::runtime::xdp::{XdpConfig, XdpStack};

const SURGE_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 10);
const SURGE_TCP: u16 = 7100;
const SURGE_UDP: u16 = 7300;
const KERNEL_TCP: u16 = 7200;
const CONNECTIONS: usize = 16;
const BYTES: usize = 256 * 1024;

const PY_CLIENTS: &str = r#"
import hashlib, os, socket, sys, threading
addr, port, n, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
ok = []
def one(i):
    data = os.urandom(size)
    s = socket.create_connection((addr, port), timeout=30)
    s.settimeout(30)
    def w():
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
    t = threading.Thread(target=w); t.start()
    got = bytearray()
    while True:
        c = s.recv(1 << 20)
        if not c:
            break
        got += c
    t.join()
    ok.append(hashlib.sha256(got).digest() == hashlib.sha256(data).digest())
ts = [threading.Thread(target=one, args=(i,)) for i in range(n)]
[t.start() for t in ts]
[t.join() for t in ts]
print("verified", sum(ok), "of", n)
"#;

const PY_UDP: &str = r#"
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(5)
good = 0
for i in range(int(sys.argv[3])):
    msg = bytes([i % 256]) * (10 + i)
    s.sendto(msg, (sys.argv[1], int(sys.argv[2])))
    d, src = s.recvfrom(4096)
    good += d == msg and src == (sys.argv[1], int(sys.argv[2]))
print("udp", good)
"#;

#[test]
fn two_engines_on_two_queues_serve_and_connect_against_the_kernel() {
    surge_lab::require_root().expect("root tests need root (CI runs as root)");
    let mut spec = LabSpec::unique("rtq", Topology::Pair);
    spec.queues = 2;
    let lab = Lab::up(&spec).expect("lab");
    let (a, b) = (lab.a().clone(), lab.b().clone());

    let stack = {
        let _ns = enter_netns(&a.netns).expect("netns A");
        let mut config = XdpConfig::new(&a.ifname, Ipv4Cidr::new(SURGE_IP, 24).expect("cidr"));
        config.tcp_ports = vec![SURGE_TCP];
        config.udp_ports = vec![SURGE_UDP];
        XdpStack::start(&config, RuntimeConfig::default()).expect("surge on two queues")
    };
    assert_eq!(stack.cores(), 2);

    // A surge echo server (cross-thread API).
    let listener = stack
        .tcp_listen(SocketAddrV4::new(SURGE_IP, SURGE_TCP), 128)
        .expect("listen");
    let server = std::thread::spawn(move || {
        let mut workers = Vec::new();
        for _ in 0..CONNECTIONS {
            let (mut c, _) = listener.accept().expect("accept");
            workers.push(std::thread::spawn(move || {
                let mut buf = vec![0u8; 65536];
                loop {
                    match c.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            if c.write_all(&buf[..n]).is_err() {
                                break;
                            }
                        }
                    }
                }
                let _ = c.shutdown_write();
            }));
        }
        for w in workers {
            w.join().expect("echo worker");
        }
    });
    // A surge UDP echo socket.
    let mut udp = stack
        .udp_bind(SocketAddrV4::new(SURGE_IP, SURGE_UDP))
        .expect("udp bind");
    udp.set_read_timeout(Some(Duration::from_secs(20)));
    let udp_echo = std::thread::spawn(move || {
        let mut buf = [0u8; 2048];
        for _ in 0..20 {
            let (n, src) = udp.recv_from(&mut buf).expect("udp recv");
            udp.send_to(&buf[..n], src).expect("udp send");
        }
    });

    // Kernel clients to the surge server.
    let out = lab
        .exec(
            HostId::B,
            &[
                "timeout",
                "60",
                "python3",
                "-c",
                PY_CLIENTS,
                &SURGE_IP.to_string(),
                &SURGE_TCP.to_string(),
                &CONNECTIONS.to_string(),
                &BYTES.to_string(),
            ],
        )
        .expect("kernel clients");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!("verified {CONNECTIONS} of {CONNECTIONS}")),
        "kernel clients: {text} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    server.join().expect("surge server");

    // UDP from the kernel, answered by whichever engine owns the socket.
    let out = lab
        .exec(
            HostId::B,
            &[
                "timeout",
                "30",
                "python3",
                "-c",
                PY_UDP,
                &SURGE_IP.to_string(),
                &SURGE_UDP.to_string(),
                "20",
            ],
        )
        .expect("udp client");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "udp 20",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    udp_echo.join().expect("udp echo");

    // Surge clients to a kernel echo server.
    let mut kernel_server = kernel_echo::start_kernel_echo(
        &lab,
        HostId::B,
        &b.addr.to_string(),
        KERNEL_TCP,
        CONNECTIONS,
    );
    let clients: Vec<_> = (0..CONNECTIONS)
        .map(|i| {
            let stream = stack
                .tcp_connect(SocketAddrV4::new(b.addr, KERNEL_TCP))
                .expect("connect to the kernel");
            std::thread::spawn(move || {
                let data: Vec<u8> = (0..BYTES).map(|j| (j * 13 + i) as u8).collect();
                let stream = std::sync::Arc::new(stream);
                let w = {
                    let stream = std::sync::Arc::clone(&stream);
                    let data = data.clone();
                    std::thread::spawn(move || {
                        (&*stream).write_all(&data).expect("write");
                        stream.shutdown_write().expect("shutdown");
                    })
                };
                let mut back = Vec::new();
                (&*stream).read_to_end(&mut back).expect("read");
                w.join().expect("writer");
                assert!(
                    back == data,
                    "connection {i}: echo differs ({} bytes)",
                    back.len()
                );
                stream.core()
            })
        })
        .collect();
    let cores: Vec<usize> = clients
        .into_iter()
        .map(|c| c.join().expect("client"))
        .collect();
    assert!(
        cores.contains(&0) && cores.contains(&1),
        "connects use both cores"
    );
    let _ = kernel_server.wait();

    // Ping the surge address.
    let out = lab
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
    assert!(
        out.status.success(),
        "ping: {}",
        String::from_utf8_lossy(&out.stdout)
    );

    let per_core = stack.stats_per_core().expect("stats");
    for (i, (e, _)) in per_core.iter().enumerate() {
        eprintln!(
            "core {i}: rx {} tx {} forwarded in {} out {} dropped {} drops {:?}",
            e.rx_frames,
            e.tx_frames,
            e.forwarded_in,
            e.forwarded_out,
            e.forward_dropped,
            e.drops_by_name().collect::<Vec<_>>()
        );
    }
    let (total, tcp) = stack.stats().expect("stats");
    assert!(
        per_core.iter().all(|(e, _)| e.rx_frames > 0),
        "both queues receive"
    );
    assert!(
        total.forwarded_in > 0,
        "some replies to active opens landed on the other engine and were handed over"
    );
    assert_eq!(total.forwarded_in, total.forwarded_out);
    assert_eq!(total.forward_dropped, 0);
    assert_eq!(tcp.active_opens, CONNECTIONS as u64);
    assert_eq!(tcp.passive_opens, CONNECTIONS as u64);
    let engines = stack.shutdown();
    for e in &engines {
        let acc = surge_datapath::Device::accounting(e.device());
        assert!(
            acc.balanced(),
            "frames leaked on core {}: {acc:?}",
            e.config().core
        );
    }
}

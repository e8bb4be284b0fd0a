//! surge's engine on AF_XDP in a fresh lab, against the Linux kernel's stack on
//! the other end of the veth pair: a kernel client (Python) to a surge echo
//! server, a surge client to a kernel echo server, and ping to a surge address.
//! These are root tests: CI runs as root, and they fail loudly without it.

#[path = "support/lab_engine.rs"]
mod lab_engine;

use core::net::SocketAddrV4;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use lab_engine::{EchoServer, SURGE_IP, engine_on_a, listen, run_engine};
use surge_lab::{HostId, Lab, LabSpec, Topology};
use surge_stack::errno::Errno;

const LIMIT: Duration = Duration::from_secs(60);

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
    let listener = listen(&mut engine, 7, 128);
    let stop = Arc::new(AtomicBool::new(false));
    let mut server = EchoServer::new(listener);
    let handle = run_engine(engine, Arc::clone(&stop), LIMIT, move |e| {
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
    let handle = run_engine(engine, Arc::clone(&stop), LIMIT, |_| false);
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
    let handle = run_engine(engine, Arc::clone(&stop), LIMIT, move |e| {
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

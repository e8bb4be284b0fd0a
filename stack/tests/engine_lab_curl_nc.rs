//! Everyday kernel tools against servers on surge's engine on AF_XDP, in a fresh
//! lab: `curl` fetches a fixed body from a tiny HTTP/1.1 responder on the engine
//! (once, then several requests over one kept-alive connection), and OpenBSD
//! `nc` sends a line to a surge echo server and reads it back. Root tests; `curl`
//! and `netcat-openbsd` come from ci/setup.

#[path = "support/lab_engine.rs"]
mod lab_engine;

use std::io::Write;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use lab_engine::{
    EchoServer, SURGE_IP, SteerPorts, assert_no_leaks, engine_on_a_with, listen, run_engine_with,
};
use surge_lab::{HostId, Lab, LabSpec, Topology};
use surge_stack::engine::Engine;
use surge_stack::errno::Errno;
use surge_stack::socket::SocketHandle;

const HTTP_PORT: u16 = 8080;
const ECHO_PORT: u16 = 7;
const LIMIT: Duration = Duration::from_secs(60);
const BODY: &str = "surge says hello over AF_XDP\n";

/// One connection of the HTTP responder.
struct HttpConn {
    handle: SocketHandle,
    request: Vec<u8>,
    response: Vec<u8>,
    requests: usize,
    close_after: bool,
}

/// A tiny HTTP/1.1 responder: every `GET` gets `200 OK` with [`BODY`]; the
/// connection stays open (HTTP/1.1 keep-alive) until the client closes it or
/// asks `Connection: close`; anything else gets `400` and a close.
struct HttpServer {
    listener: SocketHandle,
    conns: Vec<HttpConn>,
    /// Requests answered, per finished connection.
    finished: Vec<usize>,
    bad_requests: usize,
}

impl HttpServer {
    fn step(&mut self, e: &mut Engine<surge_datapath::XdpPort>) {
        while let Ok((handle, _)) = e.accept(self.listener) {
            self.conns.push(HttpConn {
                handle,
                request: Vec::new(),
                response: Vec::new(),
                requests: 0,
                close_after: false,
            });
        }
        let mut buf = [0u8; 4096];
        let (finished, bad) = (&mut self.finished, &mut self.bad_requests);
        self.conns.retain_mut(|c| {
            let mut eof = false;
            loop {
                match e.recv(c.handle, &mut buf) {
                    Ok(0) => {
                        eof = true;
                        break;
                    }
                    Ok(n) => c.request.extend_from_slice(&buf[..n]),
                    Err(Errno::EAGAIN) => break,
                    Err(_) => {
                        let _ = e.close(c.handle);
                        finished.push(c.requests);
                        return false;
                    }
                }
            }
            while !c.close_after {
                let Some(end) = c.request.windows(4).position(|w| w == b"\r\n\r\n") else {
                    break;
                };
                let head = String::from_utf8_lossy(&c.request[..end]).to_ascii_lowercase();
                c.request.drain(..end + 4);
                if head.starts_with("get ") && head.lines().next().is_some_and(|l| l.ends_with(" http/1.1")) {
                    c.requests += 1;
                    c.close_after = head.lines().any(|l| l.trim() == "connection: close");
                    c.response.extend_from_slice(
                        format!(
                            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{BODY}",
                            BODY.len()
                        )
                        .as_bytes(),
                    );
                } else {
                    *bad += 1;
                    c.close_after = true;
                    c.response.extend_from_slice(
                        b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                    );
                }
            }
            while !c.response.is_empty() {
                match e.send(c.handle, &c.response) {
                    Ok(n) => {
                        c.response.drain(..n);
                    }
                    Err(_) => break,
                }
            }
            if (eof || c.close_after) && c.response.is_empty() {
                let _ = e.close(c.handle);
                finished.push(c.requests);
                return false;
            }
            true
        });
    }
}

/// The servers on the engine.
struct Servers {
    http: HttpServer,
    echo: EchoServer,
}

/// Runs `argv` in host B under `timeout`, feeding `stdin`; returns stdout.
fn run_in_b(lab: &Lab, argv: &[&str], stdin: &[u8]) -> String {
    let mut child = lab
        .command(HostId::B, "timeout")
        .expect("command in ns B")
        .arg("20")
        .args(argv)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{}: {e}", argv[0]));
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin)
        .expect("stdin");
    let out = child.wait_with_output().expect("output");
    assert!(
        out.status.success(),
        "{argv:?} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

#[test]
fn curl_and_nc_against_surge_servers() {
    let lab =
        Lab::up(&LabSpec::unique("eng-tools", Topology::Pair)).expect("lab (root tests need root)");
    let ports = SteerPorts {
        tcp: vec![HTTP_PORT, ECHO_PORT],
        udp: Vec::new(),
    };
    let (mut engine, _program) = engine_on_a_with(&lab, ports, |_| {});
    let http = listen(&mut engine, HTTP_PORT, 16);
    let echo = listen(&mut engine, ECHO_PORT, 16);
    let servers = Servers {
        http: HttpServer {
            listener: http,
            conns: Vec::new(),
            finished: Vec::new(),
            bad_requests: 0,
        },
        echo: EchoServer::new(echo),
    };
    let stop = Arc::new(AtomicBool::new(false));
    let run = run_engine_with(engine, Arc::clone(&stop), LIMIT, servers, |e, s| {
        s.http.step(e);
        s.echo.step(e);
        false
    });

    let url = format!("http://{SURGE_IP}:{HTTP_PORT}/");
    let curl = [
        "curl",
        "-sS",
        "--noproxy",
        "*",
        "--connect-timeout",
        "5",
        "--max-time",
        "10",
    ];
    // One request, one connection.
    let mut argv = curl.to_vec();
    argv.push(&url);
    let one = run_in_b(&lab, &argv, b"");
    // Four requests in one curl: HTTP/1.1 keeps the connection alive, so only the
    // first transfer connects (`%{num_connects}` is 1, then 0).
    let mut argv = curl.to_vec();
    argv.extend(["-w", "[%{http_code} %{num_connects}]\n"]);
    argv.extend([url.as_str(); 4]);
    let kept_alive = run_in_b(&lab, &argv, b"");
    // nc: a line to the echo server and back; -N shuts the socket down at the end
    // of stdin, so the server sees the FIN, echoes everything and closes.
    let line = "hello surge, from the kernel's nc\n";
    let port = ECHO_PORT.to_string();
    let surge_ip = SURGE_IP.to_string();
    let nc = run_in_b(
        &lab,
        &["nc", "-N", "-w", "10", &surge_ip, &port],
        line.as_bytes(),
    );

    // Let the last closes finish, then stop the engine.
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, Ordering::Relaxed);
    let (engine, servers, _) = run.join().expect("engine thread");

    assert_eq!(one, BODY, "curl's body");
    assert_eq!(
        kept_alive,
        format!("{BODY}[200 1]\n{BODY}[200 0]\n{BODY}[200 0]\n{BODY}[200 0]\n"),
        "curl with keep-alive"
    );
    assert_eq!(nc, line, "nc's echo");
    let mut finished = servers.http.finished.clone();
    finished.sort_unstable();
    assert_eq!(
        finished,
        vec![1, 4],
        "requests per HTTP connection: one curl each"
    );
    assert_eq!(servers.http.bad_requests, 0);
    assert_eq!(
        (
            servers.echo.accepted,
            servers.echo.served,
            servers.echo.failed
        ),
        (1, 1, 0)
    );
    assert_eq!(servers.echo.echoed, line.len() as u64);
    assert_eq!(engine.tcp_stats().passive_opens, 3);
    assert_eq!(
        engine.socket_count(),
        2,
        "only the two listeners are left: {:?}",
        engine.tcp_stats()
    );
    assert_no_leaks(&engine);
}

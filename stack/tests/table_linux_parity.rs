//! Root test: BindTable against the real Linux kernel, call for call.
//!
//! Seeded random scenarios (sockets with random SO_REUSEADDR / SO_REUSEPORT / uid,
//! then random bind / listen / connect / close calls on a handful of addresses and
//! one port)
//! run twice: through real kernel sockets (Python, inside a fresh network namespace
//! with 198.18.0.1/32 and 198.18.0.2/32 on `lo` and `ip_local_port_range` = 40000
//! 40001) and through `BindTable`. Every call must give the same result (success or
//! the same errno). A second test first puts a connection into TIME_WAIT on the port
//! (server closes first) and then does the same. Needs root, `ip`, `ss` and `python3`
//! (CI has them all); without them the tests fail, loudly.
//!
//! Seeds and sizes can be raised for a longer hunt: SURGE_PARITY_SEED,
//! SURGE_PARITY_SCENARIOS (default 1000), SURGE_PARITY_TW_SCENARIOS (default 150).

use std::fmt::Write as _;
use std::io::Write as _;
use std::net::{Ipv4Addr, SocketAddrV4};
use std::process::{Command, Stdio};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use surge_stack::Errno;
use surge_stack::table::{
    BindConfig, BindOptions, BindTable, EphemeralPorts, EphemeralRange, HashKey, SocketId,
};

const A1: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
const A2: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
const NOT_OURS: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 99);
const ADDRS: [Ipv4Addr; 4] = [Ipv4Addr::UNSPECIFIED, A1, A2, NOT_OURS];
const UNPRIVILEGED_UID: u32 = 65534;
/// Listeners that live for the whole run, outside every scenario; scenario sockets
/// connect to them. TCP sockets close with SO_LINGER {1, 0} (RST), so no connection
/// lingers in TIME_WAIT to leak into the next scenario.
const SERVERS: [SocketAddrV4; 3] = [
    SocketAddrV4::new(A1, 5000),
    SocketAddrV4::new(A1, 5001),
    SocketAddrV4::new(A2, 5000),
];

/// A network namespace that is deleted on drop (also when the test panics).
struct NetnsGuard {
    name: String,
}

impl NetnsGuard {
    fn new(tag: &str) -> Self {
        let name = format!("surgetbl{}{}", std::process::id(), tag);
        run(&["ip", "netns", "add", &name]);
        let guard = NetnsGuard { name };
        guard.exec(&["ip", "link", "set", "lo", "up"]);
        guard.exec(&["ip", "addr", "add", "198.18.0.1/32", "dev", "lo"]);
        guard.exec(&["ip", "addr", "add", "198.18.0.2/32", "dev", "lo"]);
        guard.exec(&[
            "sysctl",
            "-q",
            "-w",
            "net.ipv4.ip_local_port_range=40000 40001",
        ]);
        guard
    }

    fn exec(&self, args: &[&str]) {
        let mut full = vec!["ip", "netns", "exec", &self.name];
        full.extend_from_slice(args);
        run(&full);
    }
}

impl Drop for NetnsGuard {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .status();
    }
}

fn run(args: &[&str]) {
    let status = Command::new(args[0])
        .args(&args[1..])
        .status()
        .unwrap_or_else(|e| panic!("cannot run {args:?} (root tests need iproute2): {e}"));
    assert!(
        status.success(),
        "{args:?} failed: {status} (root tests must run as root)"
    );
}

#[derive(Debug, Clone, Copy)]
struct Sock {
    options: BindOptions,
    udp: bool,
}

#[derive(Debug, Clone, Copy)]
enum Call {
    Bind {
        sock: usize,
        addr: Ipv4Addr,
        port: u16,
    },
    Listen {
        sock: usize,
    },
    /// connect() to one of the fixed SERVERS (TCP only).
    Connect {
        sock: usize,
        server: usize,
    },
    Close {
        sock: usize,
    },
}

#[derive(Debug, Clone)]
struct Scenario {
    socks: Vec<Sock>,
    calls: Vec<Call>,
}

fn random_scenario(rng: &mut ChaCha8Rng, port: u16) -> Scenario {
    let udp = rng.random_ratio(1, 5);
    let socks = (0..rng.random_range(2..=4))
        .map(|_| Sock {
            options: BindOptions {
                reuse_addr: rng.random_bool(0.5),
                reuse_port: rng.random_bool(0.5),
                owner: if rng.random_ratio(1, 4) {
                    UNPRIVILEGED_UID
                } else {
                    0
                },
                privileged: true,
            },
            udp,
        })
        .collect::<Vec<_>>();
    let calls = (0..rng.random_range(2..=8))
        .map(|_| {
            let sock = rng.random_range(0..socks.len());
            match rng.random_range(0..10) {
                0..=5 => Call::Bind {
                    sock,
                    // The non-local address rarely, the others evenly.
                    addr: ADDRS[if rng.random_ratio(1, 12) {
                        3
                    } else {
                        rng.random_range(0..3)
                    }],
                    // Linux picks UDP ephemeral ports at random (udp_lib_get_port), so
                    // a UDP bind(0) could make the kernel's answers nondeterministic.
                    port: if !udp && rng.random_ratio(1, 4) {
                        0
                    } else {
                        port
                    },
                },
                6 | 7 if !udp => Call::Listen { sock },
                8 if !udp => Call::Connect {
                    sock,
                    server: rng.random_range(0..SERVERS.len()),
                },
                _ => Call::Close { sock },
            }
        })
        .collect();
    Scenario { socks, calls }
}

/// BindTable's answers, one word per call ("ok" or the errno name).
fn model(scenario: &Scenario) -> Vec<String> {
    let udp = scenario.socks.first().is_some_and(|s| s.udp);
    let config = if udp {
        BindConfig::udp(vec![A1, A2])
    } else {
        BindConfig::new(vec![A1, A2])
    };
    let mut binds = BindTable::new(config, HashKey::new(1, 2));
    let mut ports = EphemeralPorts::new(
        EphemeralRange::new(40000, 40001).unwrap(),
        0,
        1,
        HashKey::new(3, 4),
    )
    .unwrap();
    let mut closed = vec![false; scenario.socks.len()];
    fn word<T>(r: Result<T, Errno>) -> String {
        r.map_or_else(|e| e.name().to_string(), |_| "ok".to_string())
    }
    scenario
        .calls
        .iter()
        .map(|call| match *call {
            Call::Bind { sock, .. }
            | Call::Listen { sock }
            | Call::Close { sock }
            | Call::Connect { sock, .. }
                if closed[sock] =>
            {
                "EBADF".to_string()
            }
            Call::Bind { sock, addr, port } => word(binds.bind(
                SocketId(sock as u32),
                addr,
                port,
                scenario.socks[sock].options,
                &mut ports,
            )),
            Call::Listen { sock } => word(binds.listen(
                SocketId(sock as u32),
                scenario.socks[sock].options,
                &mut ports,
            )),
            Call::Connect { sock, server } => {
                let id = SocketId(sock as u32);
                let remote = SERVERS[server];
                // On `lo` the route's source address is the destination itself.
                let route_addr = *remote.ip();
                if binds.state(id).is_some() {
                    word(binds.connect_bound(id, route_addr, remote, |_| true))
                } else {
                    let options = scenario.socks[sock].options;
                    word(binds.ephemeral_for_connect(
                        id,
                        options,
                        route_addr,
                        remote,
                        &mut ports,
                        |_| true,
                    ))
                }
            }
            Call::Close { sock } => {
                binds.unbind(SocketId(sock as u32));
                closed[sock] = true;
                "ok".to_string()
            }
        })
        .collect()
}

/// Helpers for the kernel side: make a socket with the scenario's options (and
/// SO_LINGER {1, 0} for TCP, so close sends RST and leaves no TIME_WAIT), run a
/// call and name its errno, and start / drain the fixed servers.
const PYTHON_PRELUDE: &str = r#"
import socket, os, errno, struct
LINGER0 = struct.pack('ii', 1, 0)
def mk(reuse, rport, uid, udp):
    os.seteuid(uid)
    try:
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM if udp else socket.SOCK_STREAM)
    finally:
        os.seteuid(0)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, int(reuse))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, int(rport))
    if not udp:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER0)
    return s
def do(f):
    try:
        f()
        return 'ok'
    except OSError as e:
        return errno.errorcode.get(e.errno, str(e.errno))
def close(s):
    if s.fileno() < 0:
        raise OSError(errno.EBADF, 'closed')
    s.close()
def serve(addrs):
    out = []
    for a in addrs:
        l = socket.socket()
        l.bind(a)
        l.listen(4096)
        l.setblocking(False)
        out.append(l)
    return out
def drain(listeners):
    for l in listeners:
        for _ in range(10000):
            try:
                a, _ = l.accept()
            except BlockingIOError:
                break
            a.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, LINGER0)
            a.close()
"#;

/// One Python statement list per scenario; prints one line of result words.
fn python_for(scenarios: &[Scenario]) -> String {
    let mut py = String::from(PYTHON_PRELUDE);
    let servers: Vec<String> = SERVERS
        .iter()
        .map(|s| format!("('{}', {})", s.ip(), s.port()))
        .collect();
    let _ = writeln!(py, "SERVERS = [{}]", servers.join(", "));
    py.push_str("LISTENERS = serve(SERVERS)\n");
    for scenario in scenarios {
        let socks: Vec<String> = scenario
            .socks
            .iter()
            .map(|s| {
                let py_bool = |b: bool| if b { "True" } else { "False" };
                format!(
                    "mk({}, {}, {}, {})",
                    py_bool(s.options.reuse_addr),
                    py_bool(s.options.reuse_port),
                    s.options.owner,
                    py_bool(s.udp)
                )
            })
            .collect();
        let _ = writeln!(py, "S = [{}]\nR = []", socks.join(", "));
        for call in &scenario.calls {
            let _ = match *call {
                // Python's listen() with no argument uses a default backlog; the backlog
                // does not matter to the bind rules.
                Call::Bind { sock, addr, port } => writeln!(
                    py,
                    "R.append(do(lambda: S[{sock}].bind(('{addr}', {port}))))"
                ),
                Call::Listen { sock } => writeln!(py, "R.append(do(lambda: S[{sock}].listen(8)))"),
                Call::Close { sock } => writeln!(py, "R.append(do(lambda: close(S[{sock}])))"),
                Call::Connect { sock, server } => writeln!(
                    py,
                    "R.append(do(lambda: S[{sock}].connect(SERVERS[{server}])))"
                ),
            };
        }
        py.push_str("print(' '.join(R))\nfor s in S: s.close()\ndrain(LISTENERS)\n");
    }
    py
}

/// Run `script` with python3 inside `netns` (bounded by `timeout`); its stdout lines.
fn run_python(netns: &NetnsGuard, script: &str) -> Vec<String> {
    let mut child = Command::new("ip")
        .args([
            "netns",
            "exec",
            &netns.name,
            "timeout",
            "120",
            "python3",
            "-",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cannot run python3 in the namespace (CI installs python3)");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(script.as_bytes())
        .expect("write script");
    let out = child.wait_with_output().expect("python3 output");
    assert!(
        out.status.success(),
        "python3 failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

#[test]
fn bind_table_agrees_with_linux_on_random_scenarios() {
    let scenarios_wanted: usize = env_or("SURGE_PARITY_SCENARIOS", 1000);
    let seed: u64 = env_or("SURGE_PARITY_SEED", 0x5eed_7ab1e);
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    // One explicit port per scenario, outside the ephemeral range, so scenarios
    // cannot see each other (no connections are made, so nothing lingers in TIME_WAIT).
    let scenarios: Vec<Scenario> = (0..scenarios_wanted)
        .map(|i| random_scenario(&mut rng, 42000 + i as u16))
        .collect();
    let netns = NetnsGuard::new("p");
    let kernel_lines = run_python(&netns, &python_for(&scenarios));
    assert_eq!(
        kernel_lines.len(),
        scenarios_wanted,
        "one line per scenario"
    );

    let mut mismatches = Vec::new();
    // (call kind, answer) -> count, over the kernel's answers.
    let mut tally: std::collections::BTreeMap<(&str, String), usize> = Default::default();
    for (scenario, kernel_line) in scenarios.iter().zip(&kernel_lines) {
        let ours = model(scenario).join(" ");
        for (call, answer) in scenario.calls.iter().zip(kernel_line.split(' ')) {
            let kind = match call {
                Call::Bind { port: 0, .. } => "bind(0)",
                Call::Bind { .. } => "bind",
                Call::Listen { .. } => "listen",
                Call::Connect { .. } => "connect",
                Call::Close { .. } => "close",
            };
            *tally.entry((kind, answer.to_string())).or_default() += 1;
        }
        if ours != *kernel_line {
            mismatches.push(format!(
                "{scenario:?}\n  linux: {kernel_line}\n  surge: {ours}"
            ));
        }
    }
    eprintln!("kernel answers by call: {tally:?}");
    // The scenarios must exercise every rule, or the agreement says little.
    for (kind, answer) in [
        ("bind", "ok"),
        ("bind", "EADDRINUSE"),
        ("bind", "EADDRNOTAVAIL"),
        ("bind", "EINVAL"),
        ("bind(0)", "ok"),
        ("bind(0)", "EADDRINUSE"),
        ("listen", "ok"),
        ("listen", "EADDRINUSE"),
        ("listen", "EINVAL"),
        ("connect", "ok"),
        ("connect", "EADDRNOTAVAIL"),
        ("connect", "EISCONN"),
    ] {
        assert!(
            tally.contains_key(&(kind, answer.to_string())),
            "no {kind} answered {answer} in {scenarios_wanted} scenarios: {tally:?}"
        );
    }
    assert!(
        mismatches.is_empty(),
        "{} of {scenarios_wanted} scenarios differ from Linux:\n{}",
        mismatches.len(),
        mismatches
            .iter()
            .take(10)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}

/// A port with a connection in TIME_WAIT on it, then random calls on that port.
#[derive(Debug, Clone)]
struct TimeWaitScenario {
    /// The listener whose accepted child goes to TIME_WAIT (the child inherits these
    /// options and the uid, sk_clone_lock).
    listener: Sock,
    listener_addr: Ipv4Addr,
    /// Close the listener before the calls (the classic server restart).
    close_listener: bool,
    rest: Scenario,
}

/// The kernel side of a TIME_WAIT scenario: the server closes first, so its end of
/// the connection (local A1:port) sits in TIME_WAIT; the client (A2:client_port)
/// closes after it. "TW" or "noTW" (from `ss`) is printed before the answers.
const PYTHON_TIME_WAIT: &str = r#"
import subprocess, time
def mk_plain(reuse, rport, uid):
    os.seteuid(uid)
    try:
        s = socket.socket()
    finally:
        os.seteuid(0)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, int(reuse))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, int(rport))
    return s
def time_wait(listener, laddr, port, client_port, close_listener):
    listener.bind((laddr, port))
    listener.listen(8)
    c = socket.socket()
    c.bind(('198.18.0.2', client_port))
    c.connect(('198.18.0.1', port))
    a, _ = listener.accept()
    a.close()
    time.sleep(0.002)
    c.close()
    for _ in range(100):
        out = subprocess.run(['ss', '-tanH', 'state', 'time-wait', 'sport', '=', ':%d' % port],
                             capture_output=True, text=True).stdout
        if out.strip():
            break
        time.sleep(0.005)
    if close_listener:
        listener.close()
    return 'TW' if out.strip() else 'noTW'
"#;

fn random_time_wait_scenario(rng: &mut ChaCha8Rng, port: u16) -> TimeWaitScenario {
    let mut rest = random_scenario(rng, port);
    for sock in &mut rest.socks {
        sock.udp = false;
    }
    // Only the TIME_WAIT port here: no bind(0), no connects.
    rest.calls
        .retain(|c| !matches!(c, Call::Connect { .. } | Call::Bind { port: 0, .. }));
    let listener = Sock {
        options: BindOptions {
            reuse_addr: rng.random_bool(0.5),
            reuse_port: rng.random_bool(0.5),
            owner: if rng.random_ratio(1, 4) {
                UNPRIVILEGED_UID
            } else {
                0
            },
            privileged: true,
        },
        udp: false,
    };
    TimeWaitScenario {
        listener,
        listener_addr: if rng.random_bool(0.5) {
            A1
        } else {
            Ipv4Addr::UNSPECIFIED
        },
        close_listener: rng.random_ratio(3, 4),
        rest,
    }
}

/// BindTable's answers for a TIME_WAIT scenario.
fn model_time_wait(scenario: &TimeWaitScenario, port: u16, client_port: u16) -> String {
    let mut binds = BindTable::new(BindConfig::new(vec![A1, A2]), HashKey::new(5, 6));
    // The namespace's ip_local_port_range (listen on an unbound socket draws from it).
    let range = EphemeralRange::new(40000, 40001).unwrap();
    let mut ports = EphemeralPorts::new(range, 0, 1, HashKey::new(7, 8)).unwrap();
    let (listener, child) = (SocketId(100), SocketId(101));
    let options = scenario.listener.options;
    binds
        .bind(listener, scenario.listener_addr, port, options, &mut ports)
        .unwrap();
    binds.listen(listener, options, &mut ports).unwrap();
    let tuple = surge_stack::wire::FourTuple::new(
        SocketAddrV4::new(A1, port),
        SocketAddrV4::new(A2, client_port),
    );
    binds.inherit_port(child, &tuple, options).unwrap();
    binds.enter_time_wait(child).unwrap();
    if scenario.close_listener {
        binds.unbind(listener);
    }
    // The rest runs on a table that already holds the listener and the TIME_WAIT child.
    let mut closed = vec![false; scenario.rest.socks.len()];
    let mut words = vec!["TW".to_string()];
    for call in &scenario.rest.calls {
        let word = |r: Result<SocketAddrV4, Errno>| {
            r.map_or_else(|e| e.name().to_string(), |_| "ok".to_string())
        };
        words.push(match *call {
            Call::Bind { sock, .. }
            | Call::Listen { sock }
            | Call::Close { sock }
            | Call::Connect { sock, .. }
                if closed[sock] =>
            {
                "EBADF".to_string()
            }
            Call::Bind { sock, addr, port } => word(binds.bind(
                SocketId(sock as u32),
                addr,
                port,
                scenario.rest.socks[sock].options,
                &mut ports,
            )),
            Call::Listen { sock } => word(binds.listen(
                SocketId(sock as u32),
                scenario.rest.socks[sock].options,
                &mut ports,
            )),
            Call::Close { sock } => {
                binds.unbind(SocketId(sock as u32));
                closed[sock] = true;
                "ok".to_string()
            }
            Call::Connect { .. } => "unused".to_string(),
        });
    }
    words.join(" ")
}

// Linux inet_bind_conflict / inet_csk_get_port with a TIME_WAIT owner: the TIME_WAIT
// socket keeps the child's SO_REUSEADDR / SO_REUSEPORT and lets SO_REUSEPORT sockets
// of any uid share (sk2->sk_state == TCP_TIME_WAIT || uid_eq(..)).
#[test]
fn bind_table_agrees_with_linux_around_time_wait() {
    let wanted: usize = env_or("SURGE_PARITY_TW_SCENARIOS", 150);
    let mut rng = ChaCha8Rng::seed_from_u64(env_or("SURGE_PARITY_SEED", 0x71e_3a17));
    let scenarios: Vec<TimeWaitScenario> = (0..wanted)
        .map(|i| random_time_wait_scenario(&mut rng, 44000 + i as u16))
        .collect();
    let mut py = String::from(PYTHON_PRELUDE);
    py.push_str(PYTHON_TIME_WAIT);
    for (i, scenario) in scenarios.iter().enumerate() {
        let (port, client_port) = (44000 + i as u16, 46000 + i as u16);
        let py_bool = |b: bool| if b { "True" } else { "False" };
        let l = scenario.listener.options;
        let _ = writeln!(
            py,
            "L = mk_plain({}, {}, {})\nR = [time_wait(L, '{}', {port}, {client_port}, {})]",
            py_bool(l.reuse_addr),
            py_bool(l.reuse_port),
            l.owner,
            scenario.listener_addr,
            py_bool(scenario.close_listener)
        );
        // Reuse the main generator for the rest (one line per scenario).
        let rest = python_for(std::slice::from_ref(&scenario.rest));
        let body = rest
            .split_once("LISTENERS = serve(SERVERS)\n")
            .map_or("", |(_, b)| b);
        let body = body
            .replace("R = []\n", "")
            .replace("drain(LISTENERS)\n", "");
        py.push_str(&body);
        py.push_str("L.close()\n");
    }
    let netns = NetnsGuard::new("t");
    let kernel_lines = run_python(&netns, &py);
    assert_eq!(kernel_lines.len(), wanted, "one line per scenario");
    let mut mismatches = Vec::new();
    let mut refused = 0;
    for (i, (scenario, kernel_line)) in scenarios.iter().zip(&kernel_lines).enumerate() {
        assert!(
            kernel_line.starts_with("TW"),
            "no TIME_WAIT in scenario {i}: {kernel_line}"
        );
        let ours = model_time_wait(scenario, 44000 + i as u16, 46000 + i as u16);
        refused += ours
            .split(' ')
            .filter(|w| w.starts_with("EADDRINUSE"))
            .count();
        if ours != *kernel_line {
            mismatches.push(format!(
                "{scenario:?}\n  linux: {kernel_line}\n  surge: {ours}"
            ));
        }
    }
    assert!(
        refused > wanted / 4,
        "only {refused} EADDRINUSE answers: the scenarios are too easy"
    );
    assert!(
        mismatches.is_empty(),
        "{} of {wanted} TIME_WAIT scenarios differ from Linux:\n{}",
        mismatches.len(),
        mismatches
            .iter()
            .take(10)
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}

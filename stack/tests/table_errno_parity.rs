//! Root test: the engine's TCP socket calls against the Linux kernel, call for
//! call. The same scenarios (calls on fresh sockets, listeners, refused and
//! established non-blocking connects, connections reset by the peer, a full
//! accept queue) run on kernel sockets (Python, inside a fresh network namespace
//! made by `unshare -n`, gone when the process ends) and on two engines over the
//! in-memory link; every call must give the same answer (success, the same errno,
//! the same SO_ERROR, the same count). The kernel is the oracle. Needs root,
//! `unshare`, `ip` and `python3` (CI has them); without them the test fails, loudly.

mod support;

use core::net::SocketAddrV4;
use core::time::Duration;
use std::io::Write as _;
use std::process::{Command, Stdio};

use support::{IP_B, Net, any};
use surge_stack::Errno;
use surge_stack::socket::SocketHandle;
use surge_stack::table::BindOptions;

/// The scenarios on kernel sockets: one `name=answer` line per call.
const KERNEL_SCENARIOS: &str = r#"
import socket, errno, time, struct
def e(f):
    try:
        f()
        return "ok"
    except OSError as x:
        return errno.errorcode.get(x.errno, str(x.errno))
def out(k, v): print("%s=%s" % (k, v))
def soerr(s):
    v = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
    return errno.errorcode[v] if v else "none"
def recv(s):
    try:
        d = s.recv(16)
        return "eof" if d == b"" else "data"
    except OSError as x:
        return errno.errorcode[x.errno]
NOSIG = socket.MSG_NOSIGNAL
LISTEN = ("127.0.0.1", 8080)
CLOSED = ("127.0.0.1", 9)
WAIT = 0.1
L = socket.socket(); L.bind(LISTEN); L.listen(8)
def rst(a):
    a.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)); a.close(); time.sleep(WAIT)
def nb():
    s = socket.socket(); s.setblocking(False); return s
def established(confirm):
    c = nb(); out("est.connect", e(lambda: c.connect(LISTEN))); time.sleep(WAIT)
    if confirm:
        out("est.connect2", e(lambda: c.connect(LISTEN)))
        out("est.connect3", e(lambda: c.connect(LISTEN)))
    a, _ = L.accept()
    return c, a
# fresh socket
s = socket.socket()
out("fresh.send", e(lambda: s.send(b"x", NOSIG)))
out("fresh.recv", recv(s))
out("fresh.shutdown", e(lambda: s.shutdown(socket.SHUT_WR)))
out("fresh.so_error", soerr(s))
out("fresh.accept", e(lambda: s.accept()))
out("fresh.getpeername", e(lambda: s.getpeername()))
# listener
out("listener.send", e(lambda: L.send(b"x", NOSIG)))
out("listener.recv", recv(L))
out("listener.shutdown", e(lambda: L.shutdown(socket.SHUT_WR)))
out("listener.connect", e(lambda: L.connect(LISTEN)))
out("listener.so_error", soerr(L))
# refused, SO_ERROR first
c = nb(); out("refused.connect", e(lambda: c.connect(CLOSED))); time.sleep(WAIT)
out("refused.so_error", soerr(c)); out("refused.so_error2", soerr(c))
out("refused.recv", recv(c)); out("refused.send", e(lambda: c.send(b"x", NOSIG)))
out("refused.connect2", e(lambda: c.connect(CLOSED)))
out("refused.connect3", e(lambda: c.connect(CLOSED)))
# refused, recv first
c = nb(); c.connect_ex(CLOSED); time.sleep(WAIT)
out("refused_recv.recv", recv(c)); out("refused_recv.recv2", recv(c)); out("refused_recv.so_error", soerr(c))
# refused, send first
c = nb(); c.connect_ex(CLOSED); time.sleep(WAIT)
out("refused_send.send", e(lambda: c.send(b"x", NOSIG))); out("refused_send.send2", e(lambda: c.send(b"x", NOSIG)))
# refused, connect first
c = nb(); c.connect_ex(CLOSED); time.sleep(WAIT)
out("refused_connect.connect", e(lambda: c.connect(CLOSED))); out("refused_connect.so_error", soerr(c))
# established, confirmed, then reset by the peer
c, a = established(True)
out("est.bind", e(lambda: c.bind(("127.0.0.1", 0))))
out("est.listen", e(lambda: c.listen(1)))
out("est.shutdown", e(lambda: c.shutdown(socket.SHUT_WR)))
out("est.shutdown2", e(lambda: c.shutdown(socket.SHUT_WR)))
out("est.send_after_shutdown", e(lambda: c.send(b"x", NOSIG)))
rst(a)
out("reset.so_error", soerr(c)); out("reset.so_error2", soerr(c))
out("reset.recv", recv(c)); out("reset.send", e(lambda: c.send(b"x", NOSIG)))
out("reset.shutdown", e(lambda: c.shutdown(socket.SHUT_WR)))
out("reset.connect", e(lambda: c.connect(LISTEN)))
out("reset.getpeername", e(lambda: c.getpeername()))
c, a = established(True); rst(a)
out("reset_send.send", e(lambda: c.send(b"x", NOSIG))); out("reset_send.send2", e(lambda: c.send(b"x", NOSIG)))
out("reset_send.recv", recv(c))
c, a = established(False); rst(a)
out("unconfirmed.so_error", soerr(c))
out("unconfirmed.connect", e(lambda: c.connect(CLOSED)))
out("unconfirmed.connect2", e(lambda: c.connect(CLOSED)))
# a full accept queue
B = socket.socket(); B.bind(("127.0.0.1", 8081)); B.listen(2)
cs = [nb() for _ in range(6)]
for x in cs: x.connect_ex(("127.0.0.1", 8081))
time.sleep(0.3)
B.setblocking(False); n = 0
while True:
    try: B.accept(); n += 1
    except BlockingIOError: break
out("backlog2.accepted", n)
"#;

fn kernel_answers() -> Vec<(String, String)> {
    let mut child = Command::new("unshare")
        .args(["-n", "sh", "-c", "ip link set lo up && exec python3 -"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("unshare -n python3 (needs root)");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(KERNEL_SCENARIOS.as_bytes())
        .expect("script");
    let output = child.wait_with_output().expect("kernel scenarios");
    assert!(
        output.status.success(),
        "kernel scenarios failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The answers of the engine pair: client calls on `a`, the peer on `b`.
struct Surge {
    net: Net,
    listener: SocketHandle,
    answers: Vec<(String, String)>,
}

const PORT: u16 = 8080;
const CLOSED_PORT: u16 = 9;

fn name<T>(r: Result<T, Errno>) -> String {
    match r {
        Ok(_) => "ok".into(),
        Err(e) => format!("{e:?}"),
    }
}

impl Surge {
    fn new() -> Surge {
        let mut net = Net::new();
        let listener = net.b.tcp_socket().expect("socket");
        net.b
            .bind(listener, any(PORT), BindOptions::default())
            .expect("bind");
        net.b.listen(listener, 8).expect("listen");
        Surge {
            net,
            listener,
            answers: Vec::new(),
        }
    }

    fn out(&mut self, key: &str, value: String) {
        self.answers.push((key.into(), value));
    }

    /// 100 ms of virtual time (the kernel script's WAIT).
    fn wait(&mut self) {
        for _ in 0..100 {
            self.net.step(Duration::from_millis(1));
        }
    }

    fn so_error(&mut self, h: SocketHandle) -> String {
        match self.net.a.take_error(h) {
            Ok(None) => "none".into(),
            Ok(Some(e)) => format!("{e:?}"),
            Err(e) => format!("call failed: {e:?}"),
        }
    }

    fn recv(&mut self, h: SocketHandle) -> String {
        let mut buf = [0u8; 16];
        match self.net.a.recv(h, &mut buf) {
            Ok(0) => "eof".into(),
            Ok(_) => "data".into(),
            Err(e) => format!("{e:?}"),
        }
    }

    fn nb_connect(&mut self, port: u16) -> (SocketHandle, String) {
        let c = self.net.a.tcp_socket().expect("socket");
        let r = name(self.net.a.connect(c, SocketAddrV4::new(IP_B, port)));
        (c, r)
    }

    fn established(&mut self, confirm: bool) -> (SocketHandle, SocketHandle) {
        let (c, r) = self.nb_connect(PORT);
        self.out("est.connect", r);
        self.wait();
        let to = SocketAddrV4::new(IP_B, PORT);
        if confirm {
            let r = name(self.net.a.connect(c, to));
            self.out("est.connect2", r);
            let r = name(self.net.a.connect(c, to));
            self.out("est.connect3", r);
        }
        let (a, _) = self.net.b.accept(self.listener).expect("accept");
        (c, a)
    }

    fn rst(&mut self, a: SocketHandle) {
        let mut o = self.net.b.tcp_options(a).expect("options");
        o.linger = Some(Duration::ZERO);
        self.net.b.set_tcp_options(a, o).expect("linger");
        self.net.b.close(a).expect("close");
        self.wait();
    }
}

fn surge_answers() -> Vec<(String, String)> {
    let mut s = Surge::new();
    let to_listener = SocketAddrV4::new(IP_B, PORT);
    let to_closed = SocketAddrV4::new(IP_B, CLOSED_PORT);
    // fresh socket
    let f = s.net.a.tcp_socket().expect("socket");
    let r = name(s.net.a.send(f, b"x"));
    s.out("fresh.send", r);
    let r = s.recv(f);
    s.out("fresh.recv", r);
    let r = name(s.net.a.shutdown_write(f));
    s.out("fresh.shutdown", r);
    let r = s.so_error(f);
    s.out("fresh.so_error", r);
    let r = name(s.net.a.accept(f));
    s.out("fresh.accept", r);
    let r = name(s.net.a.peer_addr(f));
    s.out("fresh.getpeername", r);
    // listener (on b: its calls)
    let l = s.listener;
    let r = name(s.net.b.send(l, b"x"));
    s.out("listener.send", r);
    let mut buf = [0u8; 16];
    let r = match s.net.b.recv(l, &mut buf) {
        Ok(0) => "eof".into(),
        Ok(_) => "data".into(),
        Err(e) => format!("{e:?}"),
    };
    s.out("listener.recv", r);
    let r = name(s.net.b.shutdown_write(l));
    s.out("listener.shutdown", r);
    let r = name(s.net.b.connect(l, to_listener));
    s.out("listener.connect", r);
    let r = match s.net.b.take_error(l) {
        Ok(None) => "none".into(),
        other => format!("{other:?}"),
    };
    s.out("listener.so_error", r);
    // refused, SO_ERROR first
    let (c, r) = s.nb_connect(CLOSED_PORT);
    s.out("refused.connect", r);
    s.wait();
    for key in ["refused.so_error", "refused.so_error2"] {
        let r = s.so_error(c);
        s.out(key, r);
    }
    let r = s.recv(c);
    s.out("refused.recv", r);
    let r = name(s.net.a.send(c, b"x"));
    s.out("refused.send", r);
    for key in ["refused.connect2", "refused.connect3"] {
        let r = name(s.net.a.connect(c, to_closed));
        s.out(key, r);
    }
    // refused, recv first
    let (c, _) = s.nb_connect(CLOSED_PORT);
    s.wait();
    for key in ["refused_recv.recv", "refused_recv.recv2"] {
        let r = s.recv(c);
        s.out(key, r);
    }
    let r = s.so_error(c);
    s.out("refused_recv.so_error", r);
    // refused, send first
    let (c, _) = s.nb_connect(CLOSED_PORT);
    s.wait();
    for key in ["refused_send.send", "refused_send.send2"] {
        let r = name(s.net.a.send(c, b"x"));
        s.out(key, r);
    }
    // refused, connect first
    let (c, _) = s.nb_connect(CLOSED_PORT);
    s.wait();
    let r = name(s.net.a.connect(c, to_closed));
    s.out("refused_connect.connect", r);
    let r = s.so_error(c);
    s.out("refused_connect.so_error", r);
    // established, confirmed, then reset by the peer
    let (c, a) = s.established(true);
    let r = name(s.net.a.bind(c, any(0), BindOptions::default()));
    s.out("est.bind", r);
    let r = name(s.net.a.listen(c, 1));
    s.out("est.listen", r);
    for key in ["est.shutdown", "est.shutdown2"] {
        let r = name(s.net.a.shutdown_write(c));
        s.out(key, r);
    }
    let r = name(s.net.a.send(c, b"x"));
    s.out("est.send_after_shutdown", r);
    s.rst(a);
    for key in ["reset.so_error", "reset.so_error2"] {
        let r = s.so_error(c);
        s.out(key, r);
    }
    let r = s.recv(c);
    s.out("reset.recv", r);
    let r = name(s.net.a.send(c, b"x"));
    s.out("reset.send", r);
    let r = name(s.net.a.shutdown_write(c));
    s.out("reset.shutdown", r);
    let r = name(s.net.a.connect(c, to_listener));
    s.out("reset.connect", r);
    let r = name(s.net.a.peer_addr(c));
    s.out("reset.getpeername", r);
    let (c, a) = s.established(true);
    s.rst(a);
    for key in ["reset_send.send", "reset_send.send2"] {
        let r = name(s.net.a.send(c, b"x"));
        s.out(key, r);
    }
    let r = s.recv(c);
    s.out("reset_send.recv", r);
    let (c, a) = s.established(false);
    s.rst(a);
    let r = s.so_error(c);
    s.out("unconfirmed.so_error", r);
    for key in ["unconfirmed.connect", "unconfirmed.connect2"] {
        let r = name(s.net.a.connect(c, to_closed));
        s.out(key, r);
    }
    // a full accept queue
    let b = s.net.b.tcp_socket().expect("socket");
    s.net
        .b
        .bind(b, any(8081), BindOptions::default())
        .expect("bind");
    s.net.b.listen(b, 2).expect("listen");
    for _ in 0..6 {
        let _ = s.nb_connect(8081);
    }
    for _ in 0..3 {
        s.wait();
    }
    let mut n = 0;
    while s.net.b.accept(b).is_ok() {
        n += 1;
    }
    s.out("backlog2.accepted", n.to_string());
    s.answers
}

#[test]
fn tcp_calls_answer_as_the_linux_kernel() {
    let kernel = kernel_answers();
    let surge = surge_answers();
    let keys = |v: &[(String, String)]| v.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>();
    assert_eq!(keys(&kernel), keys(&surge), "the same calls on both sides");
    let differ: Vec<String> = kernel
        .iter()
        .zip(&surge)
        .filter(|(k, s)| k.1 != s.1)
        .map(|(k, s)| format!("{}: kernel {} surge {}", k.0, k.1, s.1))
        .collect();
    assert!(differ.is_empty(), "answers differ:\n{}", differ.join("\n"));
    assert!(kernel.len() >= 40, "{} calls compared", kernel.len());
}

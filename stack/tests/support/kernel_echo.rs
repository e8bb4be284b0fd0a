//! A kernel echo server for the root tests: Python in a lab host, one thread
//! per connection, serving a given number of connections, then exiting.

use std::io::BufRead;
use std::process::{Child, Stdio};

use surge_lab::{HostId, Lab};

const PY_ECHO_SERVER: &str = r#"
import socket, sys, threading
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind((sys.argv[1], int(sys.argv[2])))
srv.listen(128)
srv.settimeout(60)
print("ready", flush=True)
def serve(c):
    c.settimeout(30)
    while True:
        d = c.recv(65536)
        if not d:
            break
        c.sendall(d)
    c.close()
ts = []
for _ in range(int(sys.argv[3])):
    c, _ = srv.accept()
    t = threading.Thread(target=serve, args=(c,)); t.start(); ts.append(t)
[t.join() for t in ts]
"#;

/// Starts the echo server on `addr:port` in host `id` (at most 60 s) for
/// `connections` connections; returns once it listens.
pub fn start_kernel_echo(
    lab: &Lab,
    id: HostId,
    addr: &str,
    port: u16,
    connections: usize,
) -> Child {
    let mut child = lab
        .command(id, "timeout")
        .expect("command in the host's namespace")
        .args(["60", "python3", "-c", PY_ECHO_SERVER, addr])
        .args([port.to_string(), connections.to_string()])
        .stdout(Stdio::piped())
        .spawn()
        .expect("kernel echo server");
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.as_mut().expect("stdout"))
        .read_line(&mut line)
        .expect("ready line");
    assert_eq!(line.trim(), "ready", "the kernel echo server did not start");
    child
}

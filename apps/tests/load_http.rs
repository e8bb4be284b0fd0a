//! Root tests of `surge load` against a server that is not ours: Python's `http.server`
//! behind a small handler that answers in the chunked transfer coding (with a trailer),
//! with chosen status codes, and checks the method, a header and the body it was sent.
//! The client names the server by URL with a name from the lab's hosts file (`b.lab`), on
//! the kernel's stack and on surge's.

mod load_support;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use load_support::*;
use surge_lab::{HostId, Lab, LabSpec, Topology};

/// HTTP/1.1 keep-alive server: `GET /chunked` answers 200 in three chunks and a trailer;
/// `GET /badchunk` answers with a chunk size that is not hex; `GET /status/N` answers N with an empty body; `PUT /echo` answers 200 (chunked) when
/// the `X-Check: surge` header came and the body equals argv[2]'s file, else 400.
const SERVER: &str = r#"
import http.server, sys
expected = open(sys.argv[2], "rb").read()
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
    def chunked(self, code, parts):
        self.send_response(code)
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Trailer", "X-Parts")
        self.end_headers()
        for p in parts:
            self.wfile.write(b"%x;ext=1\r\n%s\r\n" % (len(p), p))
        self.wfile.write(b"0\r\nX-Parts: %d\r\n\r\n" % len(parts))
    def do_GET(self):
        if self.path == "/chunked":
            self.chunked(200, [b"hello ", b"from a ", b"x" * 3000])
        elif self.path == "/badchunk":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self.wfile.write(b"zz\r\nhello\r\n0\r\n\r\n")
        elif self.path.startswith("/status/"):
            self.send_response(int(self.path[8:]))
            self.send_header("Content-Length", "0")
            self.end_headers()
        else:
            self.send_error(404)
    def do_PUT(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        ok = self.headers.get("X-Check") == "surge" and body == expected
        self.chunked(200 if ok else 400, [b"ok" if ok else b"no"])
http.server.ThreadingHTTPServer(("0.0.0.0", int(sys.argv[1])), H).serve_forever()
"#;

/// surge's client address in host A (A's kernel keeps 198.18.0.1).
const SURGE_CLIENT: &str = "198.18.0.20/24";

fn start_server(lab: &Lab, port: u16, body_file: &std::path::Path) -> Running {
    let script = body_file.with_extension("py");
    std::fs::write(&script, SERVER).expect("writing the server script");
    // Debian's python3, not a user's pyenv: only the standard library is used.
    let child = lab
        .command(HostId::B, "/usr/bin/python3")
        .expect("command in B")
        .arg(&script)
        .arg(port.to_string())
        .arg(body_file)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting the Python server");
    let running = Running { child };
    // Bounded wait until it accepts connections (from A, through the lab's name).
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let probe = lab
            .exec(
                HostId::A,
                &["nc", "-z", "-w", "1", "b.lab", &port.to_string()],
            )
            .expect("probing the server");
        if probe.status.success() {
            return running;
        }
        assert!(Instant::now() < deadline, "the Python server did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Runs `surge load` in A with `args` on `stack`; returns its JSON report and stdout.
fn load(
    lab: &Lab,
    stack: &str,
    args: &[&str],
    json: &std::path::Path,
) -> (serde_json::Value, String) {
    let mut command: Command = lab.command(HostId::A, SURGE).expect("command in A");
    command.args([
        "load", "--stack", stack, "-c", "4", "-t", "1", "-d", "1s", "-q",
    ]);
    if stack == "surge" {
        command.args(["--interface", &lab.a().ifname, "--address", SURGE_CLIENT]);
    }
    let output = command
        .args(args)
        .arg("--json")
        .arg(json)
        .output()
        .expect("running surge load");
    assert!(
        output.status.success(),
        "surge load {args:?}: {}",
        text(&output)
    );
    let report = read_json(json);
    assert_eq!(
        num(&report, "requests_sent"),
        num(&report, "answered") + num(&report, "errors_total"),
        "requests sent = answered + errors: {report}"
    );
    (report, String::from_utf8_lossy(&output.stdout).into_owned())
}

fn status_class(report: &serde_json::Value, class: &str) -> u64 {
    report["http_status"][class]
        .as_u64()
        .unwrap_or_else(|| panic!("no http_status.{class} in {report}"))
}

#[test]
fn chunked_responses_from_a_real_server_are_answered_on_both_stacks() {
    let lab = Lab::up(&LabSpec::unique("ldhttp", Topology::Pair)).expect("lab up (root)");
    let dir = Scratch::new("load-http");
    let body_file = dir.path("body.json");
    std::fs::write(&body_file, b"{\"from\": \"surge load --body-file\"}\n").expect("body");
    let json = dir.path("load.json");
    let port = 8090;
    let server = start_server(&lab, port, &body_file);
    let url = |path: &str| format!("http://b.lab:{port}{path}");
    for stack in ["kernel", "surge"] {
        // Chunked with extensions and a trailer: every response answered, none malformed.
        let (report, stdout) = load(&lab, stack, &[&url("/chunked")], &json);
        let answered = num(&report, "answered");
        assert!(answered > 0, "{stack}: nothing answered: {report}");
        assert_eq!(num(&report, "errors_total"), 0, "{stack}: {report}");
        assert_eq!(status_class(&report, "2xx"), answered, "{stack}: {report}");
        assert_eq!(
            report["target"],
            format!("198.18.0.2:{port}"),
            "b.lab resolved"
        );
        assert!(
            stdout.contains(&format!("HTTP status: 2xx {answered}, 3xx 0, 4xx 0, 5xx 0")),
            "{stack}: {stdout}"
        );
        // Status classes: a 404 and a 503 are answered, counted in their classes.
        for (code, class) in [("404", "4xx"), ("503", "5xx"), ("302", "3xx")] {
            let (report, _) = load(&lab, stack, &[&url(&format!("/status/{code}"))], &json);
            let answered = num(&report, "answered");
            assert!(answered > 0, "{stack} {code}: {report}");
            assert_eq!(
                status_class(&report, class),
                answered,
                "{stack} {code}: {report}"
            );
            assert_eq!(status_class(&report, "2xx"), 0, "{stack} {code}: {report}");
        }
        // A chunk size that is not hex: every request fails as malformed, none answered.
        let (report, _) = load(&lab, stack, &[&url("/badchunk")], &json);
        let malformed = report["errors"]["malformed"].as_u64().unwrap_or(0);
        assert!(malformed > 0, "{stack} badchunk: {report}");
        assert_eq!(num(&report, "answered"), 0, "{stack} badchunk: {report}");
        assert_eq!(
            num(&report, "errors_total"),
            malformed,
            "{stack} badchunk: {report}"
        );
        // --method, --header and --body-file reach the server as given (it says 400 if not).
        let body = body_file.to_string_lossy().into_owned();
        let put = [
            url("/echo"),
            "--method".into(),
            "PUT".into(),
            "--header".into(),
            "X-Check: surge".into(),
            "--body-file".into(),
            body.clone(),
        ];
        let put: Vec<&str> = put.iter().map(String::as_str).collect();
        let (report, _) = load(&lab, stack, &put, &json);
        let answered = num(&report, "answered");
        assert!(answered > 0, "{stack} PUT: {report}");
        assert_eq!(
            status_class(&report, "2xx"),
            answered,
            "{stack} PUT: {report}"
        );
        assert_eq!(report["method"], "PUT");
        // The same without the header: the server refuses, and the 400s are counted.
        let (report, _) = load(
            &lab,
            stack,
            &[&url("/echo"), "--method", "PUT", "--body-file", &body],
            &json,
        );
        assert_eq!(
            status_class(&report, "4xx"),
            num(&report, "answered"),
            "{stack} PUT without the header: {report}"
        );
    }
    drop(server);
}

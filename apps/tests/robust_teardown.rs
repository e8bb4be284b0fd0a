//! Teardown (issue 15), root: `surge serve --stack surge` in host B of a lab, in the
//! middle of a bulk transfer to a kernel client in A, stopped by SIGINT, SIGTERM and
//! SIGKILL. After SIGINT or SIGTERM the server exits cleanly and leaves nothing: no XDP
//! program on the interface (`ip -d link show`), the program itself unloaded from the
//! kernel (its maps with it), no AF_XDP socket (`/proc/net/protocols`), nothing pinned under
//! `/sys/fs/bpf`, no process left. SIGKILL leaves the program attached (it is attached
//! through netlink, which outlives the process); `surge xdp detach` removes it, and so
//! does `surge lab down`, and the test asserts that.

mod load_support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use load_support::*;
use surge_lab::{HostId, Lab, LabSpec, Topology, enter_netns};

/// The address only surge answers in host B (B's kernel keeps 198.18.0.2).
const SURGE_ADDR: &str = "198.18.0.20";
/// Bytes the client must have received before the signal: the transfer is under way.
const UNDER_WAY: u64 = 2 << 20;

/// What the kernel says about B's veth: `ip -d link show`.
fn link_details(lab: &Lab) -> String {
    let out = lab
        .exec(
            HostId::B,
            &["ip", "-d", "link", "show", "dev", &lab.b().ifname],
        )
        .expect("ip link");
    assert!(out.status.success(), "ip -d link show: {}", text(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The id of the XDP program on B's veth, from `ip -d link show` (`prog/xdp id N`).
fn xdp_prog_id(lab: &Lab) -> Option<u32> {
    let details = link_details(lab);
    let at = details.find("prog/xdp id ")?;
    details[at + "prog/xdp id ".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// AF_XDP sockets open in B's namespace: the `XDP` row of `/proc/net/protocols`
/// (per namespace; this kernel's `ss --xdp` lists nothing without XDP socket diag).
fn xdp_sockets(lab: &Lab) -> u64 {
    let out = lab
        .exec(HostId::B, &["cat", "/proc/net/protocols"])
        .expect("/proc/net/protocols");
    assert!(out.status.success(), "/proc/net/protocols: {}", text(&out));
    let protocols = String::from_utf8_lossy(&out.stdout).into_owned();
    protocols
        .lines()
        .find_map(|l| {
            let mut fields = l.split_whitespace();
            (fields.next() == Some("XDP")).then(|| fields.nth(1)?.parse().ok())?
        })
        .unwrap_or_else(|| panic!("no XDP row in /proc/net/protocols: {protocols}"))
}

/// Processes whose command line names `needle` (the lab's unique interface name).
fn processes_naming(needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").expect("/proc").flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .filter(|n| n.bytes().all(|b| b.is_ascii_digit()))
        else {
            continue;
        };
        if let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) {
            let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
            if cmdline.split(' ').any(|word| word == needle) {
                found.push(format!("{pid}: {cmdline}"));
            }
        }
    }
    found
}

/// Entries under `/sys/fs/bpf` (the bpffs pins), if it is mounted.
fn bpf_pins() -> Vec<String> {
    fn walk(dir: &std::path::Path, out: &mut Vec<String>) {
        if let Ok(entries) = std::fs::read_dir(dir) {
            for e in entries.flatten() {
                out.push(e.path().display().to_string());
                if e.file_type().is_ok_and(|t| t.is_dir()) {
                    walk(&e.path(), out);
                }
            }
        }
    }
    let mut out = Vec::new();
    walk(std::path::Path::new("/sys/fs/bpf"), &mut out);
    out.sort();
    out
}

/// Waits (at most `limit`) until program `id` is gone from the kernel (its release is
/// deferred a little after the last reference drops).
fn program_unloaded(id: u32, limit: Duration) -> bool {
    let start = Instant::now();
    while start.elapsed() < limit {
        if !surge_bpf::program_loaded(id) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    !surge_bpf::program_loaded(id)
}

/// A kernel client in A that asks the server for a stream (`D`) and counts what arrives,
/// until the stream ends, fails or 60 s pass.
fn downloader(lab: &Lab, port: u16, received: Arc<AtomicU64>) -> JoinHandle<String> {
    let netns = lab.a().netns.clone();
    std::thread::spawn(move || {
        let _ns = enter_netns(&netns).expect("entering A");
        let target: SocketAddr = format!("{SURGE_ADDR}:{port}").parse().expect("addr");
        let mut stream = match TcpStream::connect_timeout(&target, Duration::from_secs(10)) {
            Ok(s) => s,
            Err(e) => return format!("connect: {e}"),
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(3)));
        if let Err(e) = stream.write_all(b"D") {
            return format!("write: {e}");
        }
        let mut buf = vec![0u8; 256 * 1024];
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(60) {
            match stream.read(&mut buf) {
                Ok(0) => return "end of stream".into(),
                Ok(n) => {
                    received.fetch_add(n as u64, Ordering::Relaxed);
                }
                Err(e) => return format!("read: {e}"),
            }
        }
        "60 s passed".into()
    })
}

/// Sends `signal` to `pid` with kill(1).
fn kill(pid: u32, signal: &str) {
    let status = Command::new("kill")
        .args([&format!("-{signal}"), &pid.to_string()])
        .status()
        .expect("kill");
    assert!(status.success(), "kill -{signal} {pid}");
}

/// What was left after the server's exit.
struct Leftovers {
    prog_id: u32,
    status: ExitStatus,
    stdout: String,
}

/// Starts the server, starts a transfer, waits until it is under way, sends `signal`
/// and waits for the server to exit. Checks that no process and no AF_XDP socket is left.
fn serve_and_signal(lab: &Lab, port: u16, signal: &str) -> Leftovers {
    let listen = format!("{SURGE_ADDR}:{port}");
    let ifname = lab.b().ifname.clone();
    let mut command = lab.command(HostId::B, SURGE).expect("command in B");
    command
        .args(["serve", "--stack", "surge", "--interface", &ifname])
        .arg("--address")
        .arg(format!("{SURGE_ADDR}/24"))
        .args(["--listen", &listen, "--mode", "stream", "--quiet"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut server = spawn_serve(&mut command, Duration::from_secs(15));
    let pid = server.child.id();
    let prog_id = xdp_prog_id(lab).expect("surge's XDP program is attached while it serves");
    assert!(xdp_sockets(lab) > 0, "surge serve holds AF_XDP sockets");

    let received = Arc::new(AtomicU64::new(0));
    let client = downloader(lab, port, Arc::clone(&received));
    let start = Instant::now();
    while received.load(Ordering::Relaxed) < UNDER_WAY && start.elapsed() < Duration::from_secs(15)
    {
        std::thread::sleep(Duration::from_millis(20));
    }
    let before = received.load(Ordering::Relaxed);
    assert!(
        before >= UNDER_WAY,
        "{signal}: the transfer did not get going ({before} bytes)"
    );
    kill(pid, signal);
    let start = Instant::now();
    let status = loop {
        if let Some(status) = server.child.try_wait().expect("waiting for serve") {
            break status;
        }
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "{signal}: surge serve did not exit within 15 s"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stdout = String::new();
    if let Some(mut out) = server.child.stdout.take() {
        let _ = out.read_to_string(&mut stdout);
    }
    let ended = client.join().expect("client thread");
    eprintln!(
        "{signal}: {} MB received before the signal, {} MB in all; the client saw: {ended}; \
         surge serve exited {status}",
        before >> 20,
        received.load(Ordering::Relaxed) >> 20
    );
    assert!(
        processes_naming(&ifname).is_empty(),
        "{signal}: processes left: {:?}",
        processes_naming(&ifname)
    );
    assert_eq!(xdp_sockets(lab), 0, "{signal}: AF_XDP sockets left");
    Leftovers {
        prog_id,
        status,
        stdout,
    }
}

#[test]
fn sigint_and_sigterm_during_a_transfer_leave_nothing_behind() {
    let mut spec = LabSpec::unique("tdown", Topology::Pair);
    spec.queues = 2;
    let lab = Lab::up(&spec).expect("lab up (root tests need root)");
    let pins = bpf_pins();
    for (i, signal) in ["INT", "TERM"].into_iter().enumerate() {
        let left = serve_and_signal(&lab, 7500 + i as u16, signal);
        assert!(
            left.status.success(),
            "{signal}: surge serve exits cleanly: {}",
            left.status
        );
        assert!(
            left.stdout.contains("surge serve (stream, surge stack)"),
            "{signal}: surge serve printed its summary: {}",
            left.stdout
        );
        let details = link_details(&lab);
        assert!(
            !details.contains("xdp"),
            "{signal}: an XDP program is still on {}: {details}",
            lab.b().ifname
        );
        assert!(
            program_unloaded(left.prog_id, Duration::from_secs(5)),
            "{signal}: program {} is still loaded",
            left.prog_id
        );
        assert_eq!(bpf_pins(), pins, "{signal}: something was pinned");
    }
}

#[test]
fn sigkill_leaves_the_program_which_surge_xdp_detach_or_lab_down_removes() {
    let lab =
        Lab::up(&LabSpec::unique("tdkil", Topology::Pair)).expect("lab up (root tests need root)");
    let pins = bpf_pins();
    // SIGKILL, then `surge xdp detach`.
    let left = serve_and_signal(&lab, 7510, "KILL");
    assert!(!left.status.success(), "SIGKILL: {}", left.status);
    assert_eq!(
        xdp_prog_id(&lab),
        Some(left.prog_id),
        "SIGKILL leaves the program attached (netlink attachment)"
    );
    let b = lab.b().clone();
    let out = Command::new(SURGE)
        .args(["xdp", "detach", &b.ifname, "--netns", &b.netns])
        .output()
        .expect("surge xdp detach");
    assert!(out.status.success(), "surge xdp detach: {}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&format!("id {}", left.prog_id)),
        "surge xdp detach names what it removed: {}",
        text(&out)
    );
    let details = link_details(&lab);
    assert!(!details.contains("xdp"), "after detach: {details}");
    assert!(
        program_unloaded(left.prog_id, Duration::from_secs(5)),
        "after detach, program {} is still loaded",
        left.prog_id
    );
    let out = Command::new(SURGE)
        .args(["xdp", "status", &b.ifname, "--netns", &b.netns])
        .output()
        .expect("surge xdp status");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("no XDP program"),
        "{}",
        text(&out)
    );

    // SIGKILL again, then `surge lab down`: the namespaces go, and the program with them.
    let left = serve_and_signal(&lab, 7511, "KILL");
    assert_eq!(xdp_prog_id(&lab), Some(left.prog_id));
    let out = Command::new(SURGE)
        .args(["lab", "down", "--name", lab.name()])
        .output()
        .expect("surge lab down");
    assert!(out.status.success(), "surge lab down: {}", text(&out));
    let netns = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .expect("ip netns list");
    let netns = String::from_utf8_lossy(&netns.stdout);
    assert!(
        !netns.contains(&b.netns),
        "{} is still there: {netns}",
        b.netns
    );
    assert!(
        program_unloaded(left.prog_id, Duration::from_secs(10)),
        "after lab down, program {} is still loaded",
        left.prog_id
    );
    assert_eq!(bpf_pins(), pins, "something was pinned");
}

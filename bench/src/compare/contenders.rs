//! The contenders of `surge-bench compare`: which server runs in host A (pinned to the
//! server core), which client runs in host B (pinned to the client core), how each one's
//! output becomes a [`Measurement`], and which part of a client's run it measures (the
//! window over which the two CPUs' busy time is sampled).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use surge::child::Reaped;
use surge_lab::{HostId, Lab};

use crate::datapath::EchoConfig;

use super::cpu::{BusyWindow, CpuBusy, CpuSnapshot, MeasuredWindow};
use super::parse::{self, LoadFigure, Measurement};

/// surge's address in host A (the kernel of A keeps 198.18.0.1).
pub(crate) const SURGE_SERVER: &str = "198.18.0.10";
/// surge's address in host B when it is the client (B's kernel keeps 198.18.0.2).
pub(crate) const SURGE_CLIENT: &str = "198.18.0.20";
/// The HTTP servers' port (nginx on A's kernel address, surge on its own).
const HTTP_PORT: u16 = 8080;
/// The rr servers' port.
const RR_PORT: u16 = 8081;
/// sockperf's default port.
const SOCKPERF_PORT: u16 = 11111;
/// iperf3's default port (surge's stream server takes the same on its address).
const BULK_PORT: u16 = 5201;
/// The kernel's stream server (not iperf3's port: the two run one after the other).
const KERNEL_STREAM_PORT: u16 = 5202;
/// The HTTP response body and the rr/ping-pong message: 64 bytes.
pub(crate) const BODY_LEN: usize = 64;

/// A server in host A.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Server {
    /// nginx (one worker), a fixed 64-byte body.
    Nginx,
    /// `surge serve --stack surge --mode http`.
    SurgeHttp,
    /// `surge serve --stack kernel --mode rr`.
    KernelRr,
    /// `surge serve --stack surge --mode rr`.
    SurgeRr,
    /// `sockperf server --tcp`.
    Sockperf,
    /// `surge serve --stack surge --mode sockperf`.
    SurgeSockperf,
    /// `iperf3 -s -1`.
    Iperf3,
    /// `surge serve --stack surge --mode stream`.
    SurgeStream,
    /// `surge serve --stack kernel --mode stream`.
    KernelStream,
    /// No server (the frame rate of the veth pair).
    None,
}

/// A client in host B.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Client {
    /// wrk, one thread, 50 connections (`Connection: close` when `close`).
    Wrk { close: bool },
    /// `surge load --stack surge --mode http`, one thread, 50 connections.
    SurgeHttp { close: bool },
    /// `surge load --stack kernel --mode rr -t 1 -c N`.
    KernelRr { connections: usize },
    /// `sockperf ping-pong --tcp -m 64`.
    Sockperf,
    /// `iperf3 -c`, one stream, B to A (A to B with `-R` when `reverse`).
    Iperf3 { reverse: bool },
    /// `surge load --stack surge --mode stream --direction up -c 1`.
    SurgeStream,
    /// `surge load --stack kernel --mode stream -c 1`, `--direction down` (the server
    /// sends) when `down`, else `up`; the figure is the client's received or sent rate.
    KernelStream { down: bool },
    /// Frames of `len` bytes (without FCS) from an AF_XDP socket on A's veth to one on B's
    /// (surge-datapath); above one UMEM frame they leave and arrive as multi-buffer chains.
    Frames { len: usize },
    /// 64-byte frames from an AF_XDP socket on B's veth (pinned to the client core),
    /// reflected in place by one on A's (pinned to the server core), `window` in flight.
    Echo { window: u64 },
}

/// The frame length of the 64-byte frame-rate row (60 bytes on the wire, 64 with the FCS).
pub(crate) const SMALL_FRAME: usize = 60;

/// Connections of the HTTP rows.
pub(crate) const HTTP_CONNECTIONS: usize = 50;

/// sockperf leaves the first 400 ms of a run out of its figures (its
/// `TEST_START_WARMUP_MSEC`)...
const SOCKPERF_WARMUP: Duration = Duration::from_millis(400);
/// ...and the last 50 ms (`TEST_END_COOLDOWN_MSEC`): `-t 5` reports `RunTime=4.550`.
const SOCKPERF_COOLDOWN: Duration = Duration::from_millis(50);

/// Everything a case needs to run.
#[derive(Clone, Copy)]
pub(crate) struct Env<'a> {
    /// The lab (one veth pair, one queue).
    pub(crate) lab: &'a Lab,
    /// The `surge` binary.
    pub(crate) surge: &'a Path,
    /// Where each run's outputs go.
    pub(crate) out: &'a Path,
    /// Measured seconds of a run.
    pub(crate) seconds: f64,
    /// Warm-up of the rr rows (connection set-up of 10,000 connections is not measured).
    pub(crate) warmup: f64,
    /// Frames sent for the frame-rate row.
    pub(crate) frames: u64,
    /// (server core, client core).
    pub(crate) cores: (usize, usize),
    /// Raised by Ctrl-C.
    pub(crate) stop: &'a AtomicBool,
    /// `--busy-poll` for every surge process of the case (`None`: off, the default).
    pub(crate) busy_poll: Option<&'static str>,
}

impl Env<'_> {
    /// `program args...` in `host`, pinned to `core` with taskset.
    fn pinned(&self, host: HostId, core: usize, program: &str) -> anyhow::Result<Command> {
        let mut command = self.lab.command(host, "taskset")?;
        command.args(["-c", &core.to_string(), program]);
        Ok(command)
    }

    fn surge_exe(&self) -> String {
        self.surge.to_string_lossy().into_owned()
    }
}

/// The tools a set of cases needs, with the Debian package of each.
pub(crate) fn tools_needed(
    servers: &[Server],
    clients: &[Client],
) -> Vec<(&'static str, &'static str)> {
    let mut tools = vec![
        ("taskset", "util-linux"),
        ("ss", "iproute2"),
        ("nc", "netcat-openbsd"),
    ];
    if servers.contains(&Server::Nginx) {
        tools.push(("nginx", "nginx-light"));
    }
    if clients.iter().any(|c| matches!(c, Client::Wrk { .. })) {
        tools.push(("wrk", "wrk"));
    }
    if clients.contains(&Client::Sockperf) {
        tools.push(("sockperf", "sockperf"));
    }
    if clients.iter().any(|c| matches!(c, Client::Iperf3 { .. })) {
        tools.push(("iperf3", "iperf3"));
    }
    tools
}

/// Fails, naming the packages to install, when a tool is not on PATH.
pub(crate) fn check_tools(tools: &[(&'static str, &'static str)]) -> anyhow::Result<()> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let missing: Vec<String> = tools
        .iter()
        .filter(|(tool, _)| !std::env::split_paths(&path).any(|dir| dir.join(tool).is_file()))
        .map(|(tool, package)| format!("{tool} (package {package})"))
        .collect();
    if !missing.is_empty() {
        let packages: Vec<&str> = tools
            .iter()
            .filter(|(tool, _)| missing.iter().any(|m| m.starts_with(&format!("{tool} "))))
            .map(|(_, p)| *p)
            .collect();
        bail!(
            "missing tools: {}; install them with: apt-get install -y {}",
            missing.join(", "),
            packages.join(" ")
        );
    }
    Ok(())
}

/// The nginx configuration: one worker, no logs, a fixed 64-byte body, keep-alive without
/// a request limit, files under `dir`.
fn nginx_config(dir: &Path, listen: &str) -> String {
    let d = dir.display();
    let body = "h".repeat(BODY_LEN);
    format!(
        "daemon off;\nmaster_process off;\nworker_processes 1;\nworker_rlimit_nofile 20000;\n\
         error_log {d}/nginx-error.log;\npid {d}/nginx.pid;\n\
         events {{ worker_connections 16384; }}\n\
         http {{\n  access_log off;\n  client_body_temp_path {d}/nginx-body;\n  proxy_temp_path {d}/nginx-proxy;\n\
         \x20 keepalive_requests 1000000000;\n  keepalive_timeout 75s;\n\
         \x20 server {{\n    listen {listen} backlog=4096;\n\
         \x20   location / {{ default_type text/plain; return 200 \"{body}\"; }}\n  }}\n}}\n"
    )
}

/// Where a server listens, and whether the kernel (rather than surge) owns the socket.
fn endpoint(lab: &Lab, server: Server) -> (String, u16, bool) {
    let kernel_a = lab.a().addr.to_string();
    match server {
        Server::Nginx => (kernel_a, HTTP_PORT, true),
        Server::KernelRr => (kernel_a, RR_PORT, true),
        Server::Sockperf => (kernel_a, SOCKPERF_PORT, true),
        Server::Iperf3 => (kernel_a, BULK_PORT, true),
        Server::KernelStream => (kernel_a, KERNEL_STREAM_PORT, true),
        Server::SurgeHttp => (SURGE_SERVER.into(), HTTP_PORT, false),
        Server::SurgeRr => (SURGE_SERVER.into(), RR_PORT, false),
        Server::SurgeSockperf => (SURGE_SERVER.into(), SOCKPERF_PORT, false),
        Server::SurgeStream | Server::None => (SURGE_SERVER.into(), BULK_PORT, false),
    }
}

/// Starts `server` in host A on the server core and waits until it accepts connections.
fn start_server(env: &Env<'_>, server: Server, files: &RunFiles) -> anyhow::Result<Option<Reaped>> {
    let log = &files.server_log;
    let (addr, port, kernel) = endpoint(env.lab, server);
    let listen = format!("{addr}:{port}");
    let core = env.cores.0;
    let surge = env.surge_exe();
    let a = env.lab.a();
    let surge_serve = |mode: &str| -> anyhow::Result<Command> {
        let mut c = env.pinned(HostId::A, core, &surge)?;
        c.args([
            "serve", "--stack", "surge", "--listen", &listen, "--mode", mode,
        ]);
        c.args(["--threads", "1", "--quiet", "--interface", &a.ifname]);
        c.args(["--address", &format!("{SURGE_SERVER}/{}", a.prefix_len)]);
        if let Some(busy_poll) = env.busy_poll {
            c.args(["--busy-poll", busy_poll]);
        }
        Ok(c)
    };
    let mut command = match server {
        Server::None => return Ok(None),
        Server::Nginx => {
            let conf = env.out.join("nginx.conf");
            std::fs::write(&conf, nginx_config(env.out, &listen)).context("writing nginx.conf")?;
            let mut c = env.pinned(HostId::A, core, "nginx")?;
            c.args([
                "-p",
                &env.out.to_string_lossy(),
                "-c",
                &conf.to_string_lossy(),
            ]);
            c
        }
        Server::KernelRr => {
            let mut c = env.pinned(HostId::A, core, &surge)?;
            c.args([
                "serve", "--stack", "kernel", "--listen", &listen, "--mode", "rr",
            ]);
            c.args(["--threads", "1", "--quiet"]);
            c
        }
        Server::SurgeHttp => surge_serve("http")?,
        Server::SurgeRr => surge_serve("rr")?,
        Server::SurgeSockperf => surge_serve("sockperf")?,
        Server::SurgeStream => {
            let mut c = surge_serve("stream")?;
            c.arg("--json").arg(&files.server_json);
            c
        }
        Server::KernelStream => {
            let mut c = env.pinned(HostId::A, core, &surge)?;
            c.args([
                "serve", "--stack", "kernel", "--listen", &listen, "--mode", "stream",
            ]);
            c.args(["--threads", "1", "--quiet", "--json"]);
            c.arg(&files.server_json);
            c
        }
        Server::Sockperf => {
            let mut c = env.pinned(HostId::A, core, "sockperf")?;
            c.args(["server", "--tcp", "-i", &addr, "-p", &port.to_string()]);
            c
        }
        Server::Iperf3 => {
            let mut c = env.pinned(HostId::A, core, "iperf3")?;
            c.args(["-s", "-1", "-B", &addr, "-p", &port.to_string()]);
            c
        }
    };
    let mut child = spawn_logged(&mut command, log)
        .with_context(|| format!("starting the {server:?} server"))?;
    wait_listening(env, &mut child, &addr, port, kernel, log)
        .with_context(|| format!("the {server:?} server at {listen}"))?;
    Ok(Some(child))
}

/// The last lines of a log file, for error messages.
fn tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(8)..].join("\n")
}

/// Waits (15 s at most) until the server listens: the kernel's sockets are seen with `ss` in
/// host A (no probe connection, which iperf3 would take as its one test); surge's are
/// probed with a TCP connect from host B.
fn wait_listening(
    env: &Env<'_>,
    child: &mut Reaped,
    addr: &str,
    port: u16,
    kernel: bool,
    log: &Path,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline && !env.stop.load(Ordering::Relaxed) {
        if let Ok(Some(status)) = child.0.try_wait() {
            bail!("it exited ({status}):\n{}", tail(log));
        }
        let ready = if kernel {
            let filter = format!("sport = :{port}");
            let out = env.lab.exec(HostId::A, &["ss", "-Hltn", &filter])?;
            out.status.success() && !out.stdout.is_empty()
        } else {
            let port = port.to_string();
            let out = env
                .lab
                .exec(HostId::B, &["nc", "-z", "-w", "1", addr, &port])?;
            out.status.success()
        };
        if ready {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    bail!("not listening within 15 s:\n{}", tail(log))
}

/// Starts `command` with no input and its output (stdout and stderr) in `log`.
fn spawn_logged(command: &mut Command, log: &Path) -> anyhow::Result<Reaped> {
    let file = File::create(log).with_context(|| format!("creating {}", log.display()))?;
    let child = command
        .stdin(Stdio::null())
        .stdout(file.try_clone()?)
        .stderr(file)
        .spawn()?;
    Ok(Reaped(child))
}

/// How often a running client is checked on (its exit, the limit).
const CLIENT_POLL: Duration = Duration::from_millis(20);

/// Runs `command` with its output in `log`, bounded by `limit`, sampling the busy time of
/// `cpus` (server, client) over `window`; returns the output and the busy shares.
fn run_bounded(
    mut command: Command,
    log: &Path,
    limit: Duration,
    window: MeasuredWindow,
    cpus: (usize, usize),
) -> anyhow::Result<(String, Option<CpuBusy>)> {
    let mut child = spawn_logged(&mut command, log).context("starting the client")?;
    let started = Instant::now();
    let mut busy = BusyWindow::new(window);
    let status = loop {
        let exited = child.0.try_wait()?;
        let elapsed = started.elapsed();
        busy.poll(elapsed, exited.is_some(), || CpuSnapshot::read(cpus))?;
        if let Some(status) = exited {
            break status;
        }
        if elapsed > limit {
            bail!("the client ran past {limit:?}:\n{}", tail(log));
        }
        // Wake for the window's edges on time, not up to a poll interval late.
        let nap = busy
            .due_in(elapsed)
            .map_or(CLIENT_POLL, |d| d.min(CLIENT_POLL));
        std::thread::sleep(nap.max(Duration::from_millis(1)));
    };
    let output = std::fs::read_to_string(log).unwrap_or_default();
    if !status.success() {
        bail!("the client failed ({status}):\n{}", tail(log));
    }
    Ok((output, busy.busy()))
}

/// `m` with the busy shares sampled around its run.
fn with_cpu(m: Measurement, cpu_busy: Option<CpuBusy>) -> Measurement {
    Measurement { cpu_busy, ..m }
}

/// The files of one run: `<out>/<name>.{log,json,hgrm}`.
pub(crate) struct RunFiles {
    /// The client's output.
    pub(crate) log: PathBuf,
    /// The server's output.
    pub(crate) server_log: PathBuf,
    /// `surge load --json`.
    pub(crate) json: PathBuf,
    /// `surge serve --json` (the stream servers), written when the server stops.
    pub(crate) server_json: PathBuf,
    /// `surge load --hgrm`.
    pub(crate) hgrm: PathBuf,
}

impl RunFiles {
    /// The files of run `name` under `out`.
    pub(crate) fn new(out: &Path, name: &str) -> Self {
        Self {
            log: out.join(format!("{name}.log")),
            server_log: out.join(format!("{name}.server.log")),
            json: out.join(format!("{name}.json")),
            server_json: out.join(format!("{name}.server.json")),
            hgrm: out.join(format!("{name}.hgrm")),
        }
    }
}

/// The part of `client`'s run that it measures, from its start, as close as its options
/// say: wrk, iperf3 and `surge load` without warm-up measure their whole `-d`/`-t`, the rr
/// rows leave out their warm-up, sockperf its own first 400 ms and last 50 ms. A client's
/// own set-up before its clock starts (connecting, opening an AF_XDP socket: milliseconds)
/// shifts its window a little later than this one.
pub(crate) fn measured_window(client: Client, seconds: f64, warmup: f64) -> MeasuredWindow {
    let whole = |secs: f64| MeasuredWindow {
        skip: Duration::ZERO,
        length: Duration::from_secs_f64(secs),
    };
    match client {
        Client::Wrk { .. } => whole(wrk_seconds(seconds)),
        Client::SurgeHttp { .. } | Client::SurgeStream | Client::KernelStream { .. } => {
            whole(seconds)
        }
        Client::KernelRr { .. } => MeasuredWindow {
            skip: Duration::from_secs_f64(warmup),
            length: Duration::from_secs_f64(seconds),
        },
        Client::Sockperf => MeasuredWindow {
            skip: SOCKPERF_WARMUP,
            length: Duration::from_secs_f64(whole_seconds(seconds))
                .saturating_sub(SOCKPERF_WARMUP + SOCKPERF_COOLDOWN),
        },
        Client::Iperf3 { .. } => whole(whole_seconds(seconds)),
        // Not a client process: frame_rate's whole call is sampled (see run_case).
        Client::Frames { .. } => whole(seconds),
        // Not a client process either: echo_rate's whole call is sampled (see run_case).
        Client::Echo { .. } => whole(seconds),
    }
}

/// wrk's `-d`: whole seconds, rounded.
fn wrk_seconds(seconds: f64) -> f64 {
    seconds.round().max(1.0)
}

/// sockperf's and iperf3's `-t`: whole seconds, rounded up.
fn whole_seconds(seconds: f64) -> f64 {
    seconds.ceil().max(1.0)
}

/// Runs one case: the server in A, the client in B, the server stopped; the client's figure
/// and the CPUs' busy shares over its measured window.
pub(crate) fn run_case(
    env: &Env<'_>,
    server: Server,
    client: Client,
    files: &RunFiles,
) -> anyhow::Result<Measurement> {
    if let Client::Frames { len } = client {
        let limit = Duration::from_secs_f64(env.seconds + 30.0);
        // The sender and receiver threads are not pinned.
        return sampled_whole(env, || {
            crate::datapath::frame_rate(env.lab, env.frames, len, limit)
        });
    }
    if let Client::Echo { window } = client {
        return run_echo(env, window, files);
    }
    let guard = start_server(env, server, files)?;
    let (addr, port, _) = endpoint(env.lab, server);
    let target = format!("{addr}:{port}");
    let core = env.cores.1;
    let seconds = format!("{}ms", (env.seconds * 1000.0).round() as u64);
    let surge = env.surge_exe();
    let b = env.lab.b();
    let surge_load = |stack: &str, mode: &str| -> anyhow::Result<Command> {
        let mut c = env.pinned(HostId::B, core, &surge)?;
        c.args([
            "load", "--stack", stack, "--target", &target, "--mode", mode, "-t", "1",
        ]);
        c.args(["--json", &files.json.to_string_lossy(), "--quiet"]);
        if mode != "stream" {
            c.args(["--hgrm", &files.hgrm.to_string_lossy()]);
        }
        if stack == "surge" {
            c.args(["--interface", &b.ifname]);
            c.args(["--address", &format!("{SURGE_CLIENT}/{}", b.prefix_len)]);
            if let Some(busy_poll) = env.busy_poll {
                c.args(["--busy-poll", busy_poll]);
            }
        }
        Ok(c)
    };
    let limit = Duration::from_secs_f64(env.seconds + env.warmup + 60.0);
    let window = measured_window(client, env.seconds, env.warmup);
    let run = |c: Command| run_bounded(c, &files.log, limit, window, env.cores);
    let read_json = || {
        std::fs::read_to_string(&files.json)
            .with_context(|| format!("reading {}", files.json.display()))
    };
    let measured = match client {
        Client::Wrk { close } => {
            let mut c = env.pinned(HostId::B, core, "wrk")?;
            // wrk takes whole seconds.
            let secs = format!("{}s", wrk_seconds(env.seconds));
            c.args(["-t", "1", "-c", &HTTP_CONNECTIONS.to_string(), "-d", &secs]);
            c.args(["--latency", "--timeout", "5s"]);
            if close {
                c.args(["-H", "Connection: close"]);
            }
            c.arg(format!("http://{target}/"));
            let (output, cpu) = run(c)?;
            parse::wrk(&output).map(|m| with_cpu(m, cpu))
        }
        Client::SurgeHttp { close } => {
            let mut c = surge_load("surge", "http")?;
            c.args(["-c", &HTTP_CONNECTIONS.to_string(), "-d", &seconds]);
            if close {
                c.arg("--close");
            }
            let (_, cpu) = run(c)?;
            parse::surge_load(&read_json()?, LoadFigure::RequestsPerSecond)
                .map(|m| with_cpu(m, cpu))
        }
        Client::KernelRr { connections } => {
            let mut c = surge_load("kernel", "rr")?;
            let total = format!("{}ms", ((env.seconds + env.warmup) * 1000.0).round() as u64);
            let warmup = format!("{}ms", (env.warmup * 1000.0).round() as u64);
            c.args([
                "-c",
                &connections.to_string(),
                "-d",
                &total,
                "--warmup",
                &warmup,
            ]);
            let (_, cpu) = run(c)?;
            parse::surge_load(&read_json()?, LoadFigure::RequestsPerSecond)
                .map(|m| with_cpu(m, cpu))
        }
        Client::Sockperf => {
            let mut c = env.pinned(HostId::B, core, "sockperf")?;
            let secs = whole_seconds(env.seconds).to_string();
            c.args(["ping-pong", "--tcp", "-i", &addr, "-p", &port.to_string()]);
            c.args(["-m", &BODY_LEN.to_string(), "-t", &secs]);
            let (output, cpu) = run(c)?;
            parse::sockperf(&output).map(|m| with_cpu(m, cpu))
        }
        Client::Iperf3 { reverse } => {
            let mut c = env.pinned(HostId::B, core, "iperf3")?;
            let secs = whole_seconds(env.seconds).to_string();
            c.args(["-c", &addr, "-p", &port.to_string(), "-t", &secs, "-J"]);
            if reverse {
                c.arg("-R");
            }
            let (output, cpu) = run(c)?;
            parse::iperf3(&output).map(|m| with_cpu(m, cpu))
        }
        Client::SurgeStream => {
            let mut c = surge_load("surge", "stream")?;
            c.args(["--direction", "up", "-c", "1", "-d", &seconds]);
            let (_, cpu) = run(c)?;
            parse::surge_load(&read_json()?, LoadFigure::GbitSent).map(|m| with_cpu(m, cpu))
        }
        Client::KernelStream { down } => {
            let mut c = surge_load("kernel", "stream")?;
            let direction = if down { "down" } else { "up" };
            c.args(["--direction", direction, "-c", "1", "-d", &seconds]);
            let (_, cpu) = run(c)?;
            let figure = if down {
                LoadFigure::GbitReceived
            } else {
                LoadFigure::GbitSent
            };
            parse::surge_load(&read_json()?, figure).map(|m| with_cpu(m, cpu))
        }
        Client::Frames { .. } | Client::Echo { .. } => unreachable!("handled above"),
    };
    drop(guard);
    let measured = measured.with_context(|| format!("reading {}", files.log.display()))?;
    if !(measured.value.is_finite() && measured.value > 0.0) {
        bail!(
            "{client:?} against {server:?} measured {} (see {})",
            measured.value,
            files.log.display()
        );
    }
    Ok(measured)
}

/// A rate measured in this process (no client program), with the CPUs' busy shares
/// sampled over the whole call: attaching the steering programs and opening the sockets
/// take milliseconds of it, the frames the rest.
fn sampled_whole(
    env: &Env<'_>,
    measure: impl FnOnce() -> anyhow::Result<f64>,
) -> anyhow::Result<Measurement> {
    let before = CpuSnapshot::read(env.cores)?;
    let value = measure()?;
    let after = CpuSnapshot::read(env.cores)?;
    Ok(Measurement {
        value,
        cpu_busy: after.busy_since(&before),
        ..Measurement::default()
    })
}

/// The frame echo of the lab's pair with `window` in flight, reflector and client pinned to
/// the server and client cores; its counters go to the run's log.
fn run_echo(env: &Env<'_>, window: u64, files: &RunFiles) -> anyhow::Result<Measurement> {
    let duration = Duration::from_secs_f64(env.seconds);
    let config = EchoConfig {
        duration,
        frame_len: SMALL_FRAME,
        window,
        cores: Some(env.cores),
        limit: duration + Duration::from_secs(30),
    };
    sampled_whole(env, || {
        let run = crate::datapath::echo_rate(env.lab, &config)?;
        let line = run.describe();
        eprintln!("    {line}");
        std::fs::write(&files.log, format!("{line}\n"))
            .with_context(|| format!("writing {}", files.log.display()))?;
        Ok(run.rate)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nginx_config_serves_the_body_from_its_own_directory() {
        let conf = nginx_config(Path::new("/tmp/x"), "198.18.0.1:8080");
        assert!(conf.contains("listen 198.18.0.1:8080 backlog=4096;"));
        assert!(conf.contains(&format!("return 200 \"{}\";", "h".repeat(64))));
        assert!(conf.contains("pid /tmp/x/nginx.pid;"));
        assert!(conf.contains("keepalive_requests 1000000000;"));
    }

    #[test]
    fn measured_windows_follow_each_clients_options() {
        let window = |client| {
            let w = measured_window(client, 5.0, 1.0);
            (w.skip.as_secs_f64(), w.length.as_secs_f64())
        };
        assert_eq!(window(Client::KernelRr { connections: 10 }), (1.0, 5.0));
        assert_eq!(window(Client::Wrk { close: true }), (0.0, 5.0));
        assert_eq!(window(Client::SurgeHttp { close: false }), (0.0, 5.0));
        // sockperf's RunTime=4.550 for -t 5: 400 ms left out at the start, 50 at the end.
        assert_eq!(window(Client::Sockperf), (0.4, 4.55));
        // wrk rounds to whole seconds, iperf3 rounds up.
        let w = measured_window(Client::Wrk { close: false }, 2.4, 1.0);
        assert_eq!(w.length, Duration::from_secs(2));
        let w = measured_window(Client::Iperf3 { reverse: false }, 2.4, 1.0);
        assert_eq!(w.length, Duration::from_secs(3));
    }

    #[test]
    fn missing_tools_name_their_packages() {
        let err = check_tools(&[("surge-no-such-tool", "some-package")]).expect_err("missing");
        let text = err.to_string();
        assert!(
            text.contains("surge-no-such-tool (package some-package)"),
            "{text}"
        );
        assert!(text.contains("apt-get install -y some-package"), "{text}");
        assert!(check_tools(&[("sh", "dash")]).is_ok());
    }
}

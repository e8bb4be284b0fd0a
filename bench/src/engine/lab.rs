//! The lab part: one veth pair; the same kernel client in host B against
//! surge's engine on AF_XDP in host A (198.18.0.10, an address only surge
//! answers) and against a kernel echo server in host A (198.18.0.1).

use std::{
    net::{Ipv4Addr, SocketAddrV4},
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    thread::JoinHandle,
    time::Duration,
};

use anyhow::{Context, anyhow};
use surge_bpf::SteerProgram;
use surge_datapath::XdpPort;
use surge_lab::{Host, Lab, LabSpec, Topology, enter_netns};
use surge_stack::{
    engine::{Engine, EngineStats},
    iface::Ipv4Cidr,
    runtime::xdp::{XdpConfig, XdpInterface},
    socket::SocketHandle,
    table::BindOptions,
    time::Instant,
    wire::EthernetAddress,
};

use super::{
    ECHO_PORT, EngineArgs, Outcome, Plan, Row, kernel, pin_to, report_case, surge_echo_once,
};

/// The address only surge answers in host A (the kernel of A has 198.18.0.1).
const SURGE_IP: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 10);

/// Which server a case runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Server {
    Surge,
    Kernel,
}

/// Runs every round of the lab part; returns (connections, surge runs, kernel runs).
pub(crate) fn run(
    args: &EngineArgs,
    plan: &Plan,
    stop: &Arc<AtomicBool>,
) -> anyhow::Result<Vec<Row>> {
    let lab =
        Lab::up(&LabSpec::unique("be", Topology::Pair)).context("building the lab (needs root)")?;
    eprintln!(
        "lab {}: {} ({}) <-> {} ({}); surge at {SURGE_IP}",
        lab.name(),
        lab.a().ifname,
        lab.a().addr,
        lab.b().ifname,
        lab.b().addr
    );
    let mut rows = Row::for_each(&args.connections);
    let cores = (args.server_core, args.client_core);
    let idle = Duration::from_micros(args.surge_idle_us);
    'rounds: for round in 0..args.rounds {
        for Row {
            conns,
            surge: surge_runs,
            other: kernel_runs,
        } in &mut rows
        {
            let mut order = [Server::Surge, Server::Kernel];
            if round % 2 == 1 {
                order.reverse();
            }
            for server in order {
                if stop.load(Ordering::Relaxed) {
                    break 'rounds;
                }
                let outcome = run_case(&lab, server, *conns, plan, stop, cores, idle)
                    .with_context(|| format!("{server:?} server, {conns} connection(s)"))?;
                let what = match server {
                    Server::Surge => "lab surge server",
                    Server::Kernel => "lab kernel server",
                };
                report_case(round, what, *conns, &outcome);
                match server {
                    Server::Surge => surge_runs.push(outcome),
                    Server::Kernel => kernel_runs.push(outcome),
                }
            }
        }
    }
    lab.down().context("removing the lab")?;
    Ok(rows)
}

/// One case: start the server in A, run the client in B, stop the server.
fn run_case(
    lab: &Lab,
    server: Server,
    conns: usize,
    plan: &Plan,
    stop: &Arc<AtomicBool>,
    (server_core, client_core): (usize, usize),
    idle: Duration,
) -> anyhow::Result<Outcome> {
    let a = lab.a().clone();
    let limit = plan.limit();
    let server_stop = Arc::new(AtomicBool::new(false));
    // The surge case keeps the XDP program attached while it runs; the kernel
    // case runs without it, as a plain veth.
    let (handle, program, target): (JoinHandle<anyhow::Result<String>>, _, _) = match server {
        Server::Surge => {
            let (engine, listener, program) = surge_server(&a)?;
            let flag = Arc::clone(&server_stop);
            let handle = std::thread::spawn(move || {
                pin_to(server_core)?;
                let (accepted, stats) = surge_echo_loop(engine, listener, &flag, limit, idle);
                Ok(format!("accepted {accepted}, {stats:?}"))
            });
            (
                handle,
                Some(program),
                SocketAddrV4::new(SURGE_IP, ECHO_PORT),
            )
        }
        Server::Kernel => {
            let listener = {
                let _ns = enter_netns(&a.netns)?;
                std::net::TcpListener::bind(SocketAddrV4::new(a.addr, ECHO_PORT))
                    .context("binding the kernel echo server")?
            };
            let flag = Arc::clone(&server_stop);
            let handle = std::thread::spawn(move || {
                pin_to(server_core)?;
                let accepted = kernel::echo_server(listener, &flag, limit)?;
                Ok(format!("accepted {accepted}"))
            });
            (handle, None, SocketAddrV4::new(a.addr, ECHO_PORT))
        }
    };
    let client = {
        let netns = lab.b().netns.clone();
        let plan = *plan;
        let stop = Arc::clone(stop);
        std::thread::spawn(move || {
            let _ns = enter_netns(&netns)?;
            pin_to(client_core)?;
            kernel::client(target, conns, &plan, &stop)
        })
    };
    let outcome = client
        .join()
        .map_err(|_| anyhow!("the client thread panicked"));
    server_stop.store(true, Ordering::Relaxed);
    let served = handle
        .join()
        .map_err(|_| anyhow!("the server thread panicked"))?
        .context("the server")?;
    drop(program);
    let outcome = outcome?.with_context(|| format!("the client (server: {served})"))?;
    if outcome.requests == 0 {
        return Err(anyhow!("no request was answered (server: {served})"));
    }
    Ok(outcome)
}

/// surge's engine on A's veth (queue 0), the steering program, and a listener
/// on `SURGE_IP:ECHO_PORT`.
fn surge_server(a: &Host) -> anyhow::Result<(Engine<XdpPort>, SocketHandle, SteerProgram)> {
    let _ns = enter_netns(&a.netns)?;
    let xdp = XdpConfig {
        mac: Some(EthernetAddress(a.mac)),
        queues: Some(1),
        tcp_ports: vec![ECHO_PORT],
        ..XdpConfig::new(&a.ifname, Ipv4Cidr::new(SURGE_IP, a.prefix_len)?)
    };
    let interface = XdpInterface::attach(&xdp, |_| {})
        .with_context(|| format!("attaching XDP to {}", a.ifname))?;
    let mut engine = interface
        .open_engine(0)
        .context("opening the AF_XDP port and engine")?;
    let program = interface.into_program();
    let listener = engine.tcp_socket()?;
    engine.bind(
        listener,
        SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, ECHO_PORT),
        BindOptions::default(),
    )?;
    engine.listen(listener, 1024)?;
    Ok((engine, listener, program))
}

/// surge's echo server, in-loop: poll, accept, read and echo, until `stop` is
/// raised or `limit` passes; when a poll did nothing it sleeps `idle` (zero:
/// busy-poll). Returns the connections it accepted and the engine's counters.
fn surge_echo_loop(
    mut engine: Engine<XdpPort>,
    listener: SocketHandle,
    stop: &AtomicBool,
    limit: Duration,
    idle: Duration,
) -> (usize, EngineStats) {
    let epoch = std::time::Instant::now();
    // (connection, bytes read but not yet echoed)
    let mut conns: Vec<(SocketHandle, Vec<u8>)> = Vec::new();
    let mut accepted = 0;
    let mut buf = [0u8; 16 * 1024];
    let mut iteration = 0u32;
    loop {
        // The flags are checked every 1024 iterations (an atomic load and a
        // clock read are cheap, but not free next to an idle poll).
        iteration = iteration.wrapping_add(1);
        if iteration % 1024 == 0 && (stop.load(Ordering::Relaxed) || epoch.elapsed() > limit) {
            break;
        }
        let now = Instant::from_micros(epoch.elapsed().as_micros() as u64);
        let busy = engine.poll(now);
        while let Ok((conn, _)) = engine.accept(listener) {
            if let Ok(mut options) = engine.tcp_options(conn) {
                options.nodelay = true;
                let _ = engine.set_tcp_options(conn, options);
            }
            conns.push((conn, Vec::new()));
            accepted += 1;
        }
        conns.retain_mut(|(conn, pending)| surge_echo_once(&mut engine, *conn, pending, &mut buf));
        if !busy && !idle.is_zero() {
            std::thread::sleep(idle);
        }
    }
    for (conn, _) in conns {
        let _ = engine.close(conn);
    }
    let _ = engine.close(listener);
    (accepted, engine.stats())
}

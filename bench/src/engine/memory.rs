//! surge <-> surge on the in-memory link: a client engine and a server engine
//! over `PipeDevice::pair`, both driven by one thread (one core), with the
//! real clock as the engines' clock.

use std::{
    net::{Ipv4Addr, SocketAddrV4},
    sync::atomic::{AtomicBool, Ordering},
    time::Instant,
};

use anyhow::{Context, bail};
use surge_datapath::{Device, PipeConfig, PipeDevice};
use surge_stack::{
    Errno,
    engine::{Engine, EngineConfig, SocketEvent},
    iface::{InterfaceConfig, Ipv4Cidr},
    socket::SocketHandle,
    table::BindOptions,
    time::Instant as EngineInstant,
    wire::EthernetAddress,
};

use super::{ECHO_PORT, Exchange, HandleMap, Outcome, Plan, Recorder, surge_echo_once};

/// The client's side of the in-memory link.
pub(crate) const IP_CLIENT: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
/// The server's side of the in-memory link.
pub(crate) const IP_SERVER: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);
pub(crate) const MAC_CLIENT: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0a];
pub(crate) const MAC_SERVER: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0b];

/// The engine configuration of one side of the in-memory link.
pub(crate) fn engine_config(mac: [u8; 6], ip: Ipv4Addr, seed: u64) -> anyhow::Result<EngineConfig> {
    let iface = InterfaceConfig::new(EthernetAddress(mac), Ipv4Cidr::new(ip, 24)?, None, 1500)?;
    Ok(EngineConfig {
        secrets: surge_stack::secrets::Secrets::from_seed(seed),
        ..EngineConfig::new(iface)
    })
}

/// Both engines, their clock, and the sockets of the echo.
struct Pair {
    client: Engine<PipeDevice>,
    server: Engine<PipeDevice>,
    epoch: Instant,
}

impl Pair {
    /// Sets both pipe ends and both engines to `now` and polls the engine
    /// whose turn it is.
    #[inline]
    fn poll(&mut self, client: bool, now: Instant) {
        let us = now.saturating_duration_since(self.epoch).as_micros() as u64;
        let engine = if client {
            &mut self.client
        } else {
            &mut self.server
        };
        engine.device_mut().set_now(us);
        engine.poll(EngineInstant::from_micros(us));
    }
}

/// The client and server engines on one in-memory pipe, sized for `conns`
/// connections (the echo benchmarks in this module and in `xthread`).
pub(crate) fn pipe_engines(
    conns: usize,
) -> anyhow::Result<(Engine<PipeDevice>, Engine<PipeDevice>)> {
    let mut pipe = PipeConfig::default();
    // Room for a burst from every connection at once.
    pipe.link_capacity = pipe.link_capacity.max(4 * conns as u32 + 64);
    pipe.pool.frame_count = pipe.pool.frame_count.max(8 * conns as u32 + 256);
    let (dc, ds) = PipeDevice::pair(&pipe)?;
    let mut server_config = engine_config(MAC_SERVER, IP_SERVER, 2)?;
    // Every client connects at once, and the first SYNs wait for ARP: their
    // retransmissions arrive together, one second later. Like raising
    // `net.ipv4.tcp_max_syn_backlog` for a benchmark, the SYN queue holds them
    // all (with the default 2048, a burst of 10,000 SYNs takes several rounds
    // of SYN retransmission, 1 s, 2 s, 4 s apart, and outlasts the set-up).
    server_config.listen.max_syn_backlog = server_config.listen.max_syn_backlog.max(conns as u32);
    Ok((
        Engine::new(dc, engine_config(MAC_CLIENT, IP_CLIENT, 1)?)?,
        Engine::new(ds, server_config)?,
    ))
}

/// The closed-loop echo with `conns` connections; see the module docs.
pub(crate) fn surge_echo(conns: usize, plan: &Plan, stop: &AtomicBool) -> anyhow::Result<Outcome> {
    let (client, server) = pipe_engines(conns)?;
    let mut net = Pair {
        client,
        server,
        epoch: Instant::now(),
    };
    let listener = net.server.tcp_socket()?;
    net.server.bind(
        listener,
        SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, ECHO_PORT),
        BindOptions::default(),
    )?;
    net.server.listen(listener, 4096)?;
    let mut clients = Vec::with_capacity(conns);
    for _ in 0..conns {
        let c = net.client.tcp_socket()?;
        let mut options = net.client.tcp_options(c)?;
        options.nodelay = true;
        net.client.set_tcp_options(c, options)?;
        match net
            .client
            .connect(c, SocketAddrV4::new(IP_SERVER, ECHO_PORT))
        {
            Err(Errno::EINPROGRESS) | Ok(()) => {}
            Err(e) => return Err(e).context("connect"),
        }
        clients.push(c);
    }
    // Handshakes, bounded in time.
    let mut served: Vec<(SocketHandle, Vec<u8>)> = Vec::with_capacity(conns);
    let setup_end = Instant::now() + plan.limit();
    let mut pending = clients.clone();
    let mut setup_events: Vec<SocketEvent> = Vec::with_capacity(1024);
    loop {
        let now = Instant::now();
        net.poll(true, now);
        net.poll(false, now);
        while let Ok((conn, _)) = net.server.accept(listener) {
            let mut options = net.server.tcp_options(conn)?;
            options.nodelay = true;
            net.server.set_tcp_options(conn, options)?;
            served.push((conn, Vec::new()));
        }
        // Those still connecting, looked at again only when the client reported
        // events (the setup of 10,000 connections no longer dominates a profile).
        setup_events.clear();
        if net.client.poll_events(&mut setup_events) > 0 {
            pending.retain(|&c| !net.client.readiness(c).is_ok_and(|r| r.writable));
        }
        let connected = conns - pending.len();
        if connected == conns && served.len() == conns {
            break;
        }
        if now >= setup_end || stop.load(Ordering::Relaxed) {
            bail!(
                "{connected} of {conns} connections established, {} accepted",
                served.len()
            );
        }
    }
    let frames_before = frames_sent(&net);
    let outcome = measured_loop(&mut net, &clients, &mut served, plan, stop)?;
    let frames = frames_sent(&net) - frames_before;
    let (c, s) = (net.client.stats(), net.server.stats());
    let (ct, st) = (net.client.tcp_stats(), net.server.tcp_stats());
    let (cd, sd) = (net.client.device().stats(), net.server.device().stats());
    eprintln!(
        "  surge: {frames} frames sent during the run; drops {} + {}, TCP tx_blocked {} + {}, \
         link drops {} + {}, pool empty {} + {}, RST sent {} + {}",
        c.total_drops(),
        s.total_drops(),
        ct.tx_blocked,
        st.tx_blocked,
        cd.link_drops,
        sd.link_drops,
        cd.pool_empty,
        sd.pool_empty,
        c.tcp_rst_sent,
        s.tcp_rst_sent,
    );
    if outcome.requests == 0 {
        bail!("no request was answered");
    }
    Ok(outcome)
}

/// Frames both pipe ends have sent.
fn frames_sent(net: &Pair) -> u64 {
    net.client.device().stats().tx_packets + net.server.device().stats().tx_packets
}

/// The measured part, on its own so a profiler can collect only this
/// (`callgrind --toggle-collect='*measured_loop*'`).
///
/// Driven by the engines' events (`Engine::poll_events`): an iteration looks at
/// the connections whose readiness changed, never at every connection, so its
/// cost follows the requests that moved, not the connection count.
#[inline(never)]
fn measured_loop(
    net: &mut Pair,
    clients: &[SocketHandle],
    served: &mut [(SocketHandle, Vec<u8>)],
    plan: &Plan,
    stop: &AtomicBool,
) -> anyhow::Result<Outcome> {
    let start = Instant::now();
    let mut recorder = Recorder::new(plan, start)?;
    let hard_end = start + plan.limit();
    let mut exchanges = vec![Exchange::idle(start); clients.len()];
    let mut client_index = HandleMap::new();
    for (i, c) in clients.iter().enumerate() {
        client_index.insert(*c, i);
    }
    let mut server_index = HandleMap::new();
    for (i, (c, _)) in served.iter().enumerate() {
        server_index.insert(*c, i);
    }
    let mut buf = [0u8; 16 * 1024];
    let mut events: Vec<SocketEvent> = Vec::with_capacity(1024);
    // The clients with something to do: every one at the start (its first
    // request), then those whose readiness changed.
    let mut work: Vec<usize> = (0..clients.len()).collect();
    let mut iteration = 0u32;
    loop {
        let now = Instant::now();
        iteration = iteration.wrapping_add(1);
        if recorder.done(now) || (iteration % 1024 == 0 && stop.load(Ordering::Relaxed)) {
            break;
        }
        if now >= hard_end {
            bail!("ran past the time limit");
        }
        // The client: collect echoes, start the next requests.
        for i in work.drain(..) {
            exchanges[i].drive(&mut net.client, clients[i], &mut buf, &mut recorder, now)?;
        }
        net.poll(true, now);
        net.poll(false, now);
        // The server: echo on the connections whose readiness changed.
        events.clear();
        net.server.poll_events(&mut events);
        for e in &events {
            if let Some(&i) = server_index.get(e.handle) {
                let (conn, pending) = &mut served[i];
                if !surge_echo_once(&mut net.server, *conn, pending, &mut buf) {
                    bail!("the server lost a connection");
                }
            }
        }
        net.poll(false, now);
        net.poll(true, now);
        events.clear();
        net.client.poll_events(&mut events);
        work.extend(
            events
                .iter()
                .filter_map(|e| client_index.get(e.handle).copied()),
        );
    }
    Ok(recorder.finish())
}

//! surge <-> surge on the in-memory link, one connection per request: the
//! in-memory form of HTTP's `Connection: close`. Each of `conns` client slots
//! connects, sends 64 bytes, reads the 64-byte echo, and sees the server
//! close (the server closes first, as an HTTP server does after a
//! `Connection: close` response, so the TIME-WAIT records are the server's);
//! then the slot closes and connects again. A "request" is one whole
//! connection, timed from `connect` to the end of the echo.
//!
//! Both engines run in one thread on one core, driven by their events
//! (`Engine::poll_events`), with the real clock as the engines' clock.

use std::{
    net::{Ipv4Addr, SocketAddrV4},
    sync::atomic::{AtomicBool, Ordering},
    time::Instant,
};

use anyhow::{Context, bail};
use surge_datapath::{PipeConfig, PipeDevice};
use surge_stack::{
    Errno,
    engine::{Engine, SocketEvent},
    socket::SocketHandle,
    table::BindOptions,
    time::Instant as EngineInstant,
};

use super::{
    ECHO_PORT, HandleMap, MESSAGE_LEN, Outcome, Plan, REQUEST, Recorder,
    memory::{IP_CLIENT, IP_SERVER, MAC_CLIENT, MAC_SERVER, engine_config},
};

/// Where one client slot is in its connection.
#[derive(Clone, Copy, Debug)]
struct Slot {
    /// Its current socket.
    socket: SocketHandle,
    /// When its `connect` was called.
    started: Instant,
    /// Request bytes written.
    written: usize,
    /// Echo bytes read.
    read: usize,
}

/// A server-side connection: echo bytes still owed.
#[derive(Default)]
struct Served {
    /// Request bytes received so far.
    received: usize,
}

/// Counters of one run, printed on stderr.
#[derive(Default)]
struct Tally {
    /// Connections the server accepted.
    accepted: u64,
    /// Connections that completed (echo read, EOF seen).
    completed: u64,
}

/// The churn case; see the module docs.
pub(crate) fn surge_churn(conns: usize, plan: &Plan, stop: &AtomicBool) -> anyhow::Result<Outcome> {
    let mut pipe = PipeConfig::default();
    pipe.link_capacity = pipe.link_capacity.max(8 * conns as u32 + 64);
    pipe.pool.frame_count = pipe.pool.frame_count.max(16 * conns as u32 + 256);
    let (dc, ds) = PipeDevice::pair(&pipe)?;
    let mut server_config = engine_config(MAC_SERVER, IP_SERVER, 2)?;
    server_config.listen.max_syn_backlog = server_config.listen.max_syn_backlog.max(conns as u32);
    let mut client = Engine::new(dc, engine_config(MAC_CLIENT, IP_CLIENT, 1)?)?;
    let mut server = Engine::new(ds, server_config)?;
    let listener = server.tcp_socket()?;
    server.bind(
        listener,
        SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, ECHO_PORT),
        BindOptions::default(),
    )?;
    server.listen(listener, 4096)?;
    let epoch = Instant::now();
    let poll = |engine: &mut Engine<PipeDevice>, now: Instant| {
        let us = now.saturating_duration_since(epoch).as_micros() as u64;
        engine.device_mut().set_now(us);
        engine.poll(EngineInstant::from_micros(us));
    };
    // The first ARP exchange, outside the measured loop.
    let warm = client.tcp_socket()?;
    let _ = client.connect(warm, SocketAddrV4::new(IP_SERVER, ECHO_PORT));
    let arp_end = Instant::now() + plan.limit();
    while !client.readiness(warm).is_ok_and(|r| r.writable) {
        let now = Instant::now();
        if now >= arp_end || stop.load(Ordering::Relaxed) {
            bail!("the first connection did not complete");
        }
        poll(&mut client, now);
        poll(&mut server, now);
        while let Ok((s, _)) = server.accept(listener) {
            let _ = server.close(s);
        }
    }
    let _ = client.close(warm);
    measured_loop(&mut client, &mut server, listener, conns, plan, stop, &poll)
}

/// Opens a new connection for a client slot.
fn open(client: &mut Engine<PipeDevice>, now: Instant) -> anyhow::Result<Slot> {
    let socket = client.tcp_socket().context("client socket")?;
    let mut options = client.tcp_options(socket)?;
    options.nodelay = true;
    client.set_tcp_options(socket, options)?;
    match client.connect(socket, SocketAddrV4::new(IP_SERVER, ECHO_PORT)) {
        Err(Errno::EINPROGRESS) | Ok(()) => {}
        Err(e) => return Err(e).context("connect"),
    }
    Ok(Slot {
        socket,
        started: now,
        written: 0,
        read: 0,
    })
}

/// The measured part, on its own so a profiler can collect only this
/// (`callgrind --toggle-collect='*churn*measured_loop*'`).
#[inline(never)]
fn measured_loop(
    client: &mut Engine<PipeDevice>,
    server: &mut Engine<PipeDevice>,
    listener: SocketHandle,
    conns: usize,
    plan: &Plan,
    stop: &AtomicBool,
    poll: &dyn Fn(&mut Engine<PipeDevice>, Instant),
) -> anyhow::Result<Outcome> {
    let start = Instant::now();
    let mut recorder = Recorder::new(plan, start)?;
    let hard_end = start + plan.limit();
    let mut slots: Vec<Slot> = Vec::with_capacity(conns);
    let mut by_socket: HandleMap<usize> = HandleMap::new();
    let mut served: HandleMap<Served> = HandleMap::new();
    let mut tally = Tally::default();
    for i in 0..conns {
        let slot = open(client, start)?;
        by_socket.insert(slot.socket, i);
        slots.push(slot);
    }
    let mut buf = [0u8; 4096];
    let mut events: Vec<SocketEvent> = Vec::with_capacity(1024);
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
        poll(client, now);
        poll(server, now);
        // The server: accept, read the request, echo it and close.
        events.clear();
        server.poll_events(&mut events);
        for e in &events {
            if e.handle == listener {
                while let Ok((s, _)) = server.accept(listener) {
                    tally.accepted += 1;
                    served.insert(s, Served::default());
                    serve(server, s, &mut served, &mut buf)?;
                }
            } else if served.get(e.handle).is_some() {
                serve(server, e.handle, &mut served, &mut buf)?;
            }
        }
        poll(server, now);
        poll(client, now);
        // The clients: write the request, read the echo, close at EOF, open again.
        events.clear();
        client.poll_events(&mut events);
        for e in &events {
            let Some(&i) = by_socket.get(e.handle) else {
                continue;
            };
            if let Some(done) = drive(client, &mut slots[i], &mut buf)? {
                by_socket.remove(done.socket);
                recorder.answered(done.started, now);
                tally.completed += 1;
                let next = open(client, now)?;
                by_socket.insert(next.socket, i);
                slots[i] = next;
            }
        }
    }
    let (ct, st) = (client.tcp_stats(), server.tcp_stats());
    eprintln!(
        "  surge churn: {} accepted, {} completed; client {ct:?}; server {st:?}; drops {} + {}",
        tally.accepted,
        tally.completed,
        client.stats().total_drops(),
        server.stats().total_drops()
    );
    Ok(recorder.finish())
}

/// The server's step on one connection: read the request; once all of it is
/// in, echo it and close.
fn serve(
    server: &mut Engine<PipeDevice>,
    s: SocketHandle,
    served: &mut HandleMap<Served>,
    buf: &mut [u8],
) -> anyhow::Result<()> {
    let Some(state) = served.get_mut(s) else {
        return Ok(());
    };
    loop {
        match server.recv(s, buf) {
            Ok(0) => bail!("a client closed before its echo"),
            Ok(n) => state.received += n,
            Err(Errno::EAGAIN) => break,
            Err(e) => return Err(e).context("server recv"),
        }
    }
    if state.received >= MESSAGE_LEN {
        // 64 bytes always fit an empty send buffer.
        match server.send(s, &REQUEST) {
            Ok(n) if n == MESSAGE_LEN => {}
            other => bail!("server send: {other:?}"),
        }
        server.close(s).context("server close")?;
        served.remove(s);
    }
    Ok(())
}

/// The client's step on one slot; the slot back when its connection is done
/// (echo read and EOF seen; its socket closed).
fn drive(
    client: &mut Engine<PipeDevice>,
    slot: &mut Slot,
    buf: &mut [u8],
) -> anyhow::Result<Option<Slot>> {
    let s = slot.socket;
    if slot.written < MESSAGE_LEN {
        match client.send(s, &REQUEST[slot.written..]) {
            Ok(n) => slot.written += n,
            Err(Errno::EAGAIN) => return Ok(None),
            Err(e) => return Err(e).context("client send"),
        }
    }
    loop {
        match client.recv(s, buf) {
            Ok(0) => {
                if slot.read != MESSAGE_LEN {
                    bail!("EOF after {} of {MESSAGE_LEN} echo bytes", slot.read);
                }
                client.close(s).context("client close")?;
                return Ok(Some(*slot));
            }
            Ok(n) => {
                let end = slot.read + n;
                if REQUEST.get(slot.read..end) != Some(&buf[..n]) {
                    bail!("the echo is not the request");
                }
                slot.read = end;
            }
            Err(Errno::EAGAIN) => return Ok(None),
            Err(e) => return Err(e).context("client recv"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// A short run completes connections, every one checked end to end.
    #[test]
    fn churn_completes_connections() {
        let plan = Plan {
            warmup: Duration::ZERO,
            measure: Duration::from_secs(5),
            max_requests: 500,
        };
        let stop = AtomicBool::new(false);
        let o = surge_churn(8, &plan, &stop).expect("churn");
        // The last batch of events may complete a few past the budget.
        assert!((500..500 + 8).contains(&o.requests), "{}", o.requests);
    }
}

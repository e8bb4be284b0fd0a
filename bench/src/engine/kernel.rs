//! The kernel's side of the lab benchmark: the closed-loop echo client (one
//! epoll loop for all connections) and the kernel echo server (one epoll
//! thread), both on std/mio sockets in whatever namespace the thread is in.

use std::{
    io::{ErrorKind, Read, Write},
    net::{SocketAddr, SocketAddrV4},
    sync::atomic::{AtomicBool, Ordering},
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use mio::{Events, Interest, Poll, Token};

use super::{Exchange, MESSAGE_LEN, Outcome, Plan, Recorder};

/// How long a connect may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

/// Opens `conns` connections to `target` from the calling thread's namespace
/// and runs the closed loop: each connection sends 64 bytes, waits for the
/// echo, and sends again, for the plan's warm-up and measured window.
pub(crate) fn client(
    target: SocketAddrV4,
    conns: usize,
    plan: &Plan,
    stop: &AtomicBool,
) -> anyhow::Result<Outcome> {
    let mut poll = Poll::new().context("epoll")?;
    let mut streams = Vec::with_capacity(conns);
    for i in 0..conns {
        let s = std::net::TcpStream::connect_timeout(&SocketAddr::V4(target), CONNECT_TIMEOUT)
            .with_context(|| format!("connection {i} to {target}"))?;
        s.set_nodelay(true).context("TCP_NODELAY")?;
        s.set_nonblocking(true).context("O_NONBLOCK")?;
        let mut s = mio::net::TcpStream::from_std(s);
        poll.registry()
            .register(&mut s, Token(i), Interest::READABLE | Interest::WRITABLE)
            .context("registering a connection")?;
        streams.push(s);
    }
    let start = Instant::now();
    let mut recorder = Recorder::new(plan, start)?;
    let hard_end = start + plan.limit();
    let mut exchanges = vec![Exchange::idle(start); conns];
    for (s, x) in streams.iter_mut().zip(&mut exchanges) {
        x.start(start);
        write_request(s, x)?;
    }
    let mut events = Events::with_capacity(1024);
    let mut buf = [0u8; MESSAGE_LEN];
    loop {
        let now = Instant::now();
        if recorder.done(now) || stop.load(Ordering::Relaxed) {
            break;
        }
        if now >= hard_end {
            bail!("the client ran past its time limit");
        }
        poll.poll(&mut events, Some(Duration::from_millis(10)))
            .or_else(|e| {
                if e.kind() == ErrorKind::Interrupted {
                    Ok(())
                } else {
                    Err(e)
                }
            })
            .context("epoll_wait")?;
        for event in &events {
            let i = event.token().0;
            let (Some(s), Some(x)) = (streams.get_mut(i), exchanges.get_mut(i)) else {
                continue;
            };
            if x.busy && x.written < MESSAGE_LEN {
                write_request(s, x)?;
            }
            loop {
                let want = MESSAGE_LEN - x.read;
                let Some(dst) = buf.get_mut(..want) else {
                    break;
                };
                match s.read(dst) {
                    Ok(0) => bail!("connection {i}: the server closed it"),
                    Ok(n) => {
                        if x.on_read(&buf[..n])? {
                            let now = Instant::now();
                            recorder.answered(x.sent_at, now);
                            x.start(now);
                            write_request(s, x)?;
                        }
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(e) => return Err(e).with_context(|| format!("reading connection {i}")),
                }
            }
        }
    }
    Ok(recorder.finish())
}

fn write_request(s: &mut mio::net::TcpStream, x: &mut Exchange) -> anyhow::Result<()> {
    while x.written < MESSAGE_LEN {
        match s.write(x.unwritten()) {
            Ok(0) => bail!("the connection took no bytes"),
            Ok(n) => x.written += n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e).context("writing a request"),
        }
    }
    Ok(())
}

/// The kernel echo server: one epoll loop over `listener` and every
/// connection it accepts, until `stop` is raised or `limit` passes.
/// Returns how many connections it accepted.
pub(crate) fn echo_server(
    listener: std::net::TcpListener,
    stop: &AtomicBool,
    limit: Duration,
) -> anyhow::Result<usize> {
    const LISTENER: Token = Token(usize::MAX);
    listener.set_nonblocking(true).context("O_NONBLOCK")?;
    let mut listener = mio::net::TcpListener::from_std(listener);
    let mut poll = Poll::new().context("epoll")?;
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)
        .context("registering the listener")?;
    // (stream, bytes read but not yet echoed)
    let mut conns: Vec<Option<(mio::net::TcpStream, Vec<u8>)>> = Vec::new();
    let mut accepted = 0;
    let mut events = Events::with_capacity(1024);
    let mut buf = [0u8; 16 * 1024];
    let end = Instant::now() + limit;
    while !stop.load(Ordering::Relaxed) && Instant::now() < end {
        match poll.poll(&mut events, Some(Duration::from_millis(10))) {
            Ok(()) => {}
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(e).context("epoll_wait"),
        }
        for event in &events {
            if event.token() == LISTENER {
                loop {
                    match listener.accept() {
                        Ok((mut s, _)) => {
                            s.set_nodelay(true).context("TCP_NODELAY")?;
                            let token = Token(conns.len());
                            poll.registry()
                                .register(&mut s, token, Interest::READABLE | Interest::WRITABLE)
                                .context("registering a connection")?;
                            conns.push(Some((s, Vec::new())));
                            accepted += 1;
                        }
                        Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                        Err(e) if e.kind() == ErrorKind::Interrupted => {}
                        Err(e) => return Err(e).context("accept"),
                    }
                }
                continue;
            }
            let Some(slot) = conns.get_mut(event.token().0) else {
                continue;
            };
            let Some((s, pending)) = slot else {
                continue;
            };
            if !echo(s, pending, &mut buf) {
                *slot = None;
            }
        }
    }
    Ok(accepted)
}

/// Reads what there is and writes it back; false when the connection is done.
fn echo(s: &mut mio::net::TcpStream, pending: &mut Vec<u8>, buf: &mut [u8]) -> bool {
    loop {
        if !flush(s, pending) {
            return false;
        }
        if !pending.is_empty() {
            // The send buffer is full: wait for WRITABLE before reading more.
            return true;
        }
        match s.read(buf) {
            Ok(0) => return false,
            Ok(n) => pending.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::WouldBlock => return true,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
}

/// Writes as much of `pending` as the socket takes; false on an error.
fn flush(s: &mut mio::net::TcpStream, pending: &mut Vec<u8>) -> bool {
    while !pending.is_empty() {
        match s.write(pending) {
            Ok(0) => return false,
            Ok(n) => {
                pending.drain(..n);
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => return true,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
    true
}

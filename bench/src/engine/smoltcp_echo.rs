//! smoltcp <-> smoltcp on the same in-memory link as surge's in-memory case:
//! two smoltcp 0.12 interfaces over `PipeDevice::pair` (through a
//! `smoltcp::phy::Device` adapter), one thread, the same echo loop.

use std::{
    collections::VecDeque,
    sync::atomic::{AtomicBool, Ordering},
    time::Instant,
};

use anyhow::{Context, anyhow, bail};
use smoltcp::{
    iface::{Config, Interface, SocketHandle, SocketSet},
    phy::{self, DeviceCapabilities, Medium},
    socket::tcp,
    time::Instant as SmolInstant,
    wire::{EthernetAddress, HardwareAddress, IpAddress, IpCidr},
};
use surge_datapath::{Burst, Device, Frame, PipeConfig, PipeDevice};

use super::{
    ECHO_PORT, Exchange, MESSAGE_LEN, Outcome, Plan, Recorder,
    memory::{IP_CLIENT, IP_SERVER, MAC_CLIENT, MAC_SERVER},
};

/// Send and receive buffer of every smoltcp socket.
const SOCKET_BUFFER: usize = 64 * 1024;

/// A `PipeDevice` end seen as a smoltcp device. Received frames are taken
/// from the pipe in bursts; sent frames are collected in a burst and handed
/// to the pipe by [`SmolPipe::flush`] after every interface poll, as surge's
/// engine does at the end of its own poll.
struct SmolPipe {
    dev: PipeDevice,
    rx: Burst,
    rx_queue: VecDeque<Frame>,
    /// The frame being received: smoltcp may transmit (an ARP reply, a RST)
    /// while it holds the receive token, so the bytes are copied out of the
    /// pool first (the RX and TX tokens cannot both borrow the device).
    rx_bytes: Vec<u8>,
    tx: Burst,
    /// Frames smoltcp wanted to send while the pool was empty.
    tx_dropped: u64,
}

impl SmolPipe {
    fn new(dev: PipeDevice) -> Self {
        Self {
            dev,
            rx: Burst::new(),
            rx_queue: VecDeque::with_capacity(64),
            rx_bytes: Vec::with_capacity(2048),
            tx: Burst::new(),
            tx_dropped: 0,
        }
    }

    fn flush(&mut self) {
        self.dev.tx_burst(&mut self.tx);
    }
}

struct SmolRx<'a> {
    bytes: &'a [u8],
}

struct SmolTx<'a> {
    dev: &'a mut PipeDevice,
    tx: &'a mut Burst,
    dropped: &'a mut u64,
}

impl phy::RxToken for SmolRx<'_> {
    fn consume<R, F>(self, f: F) -> R
    where
        F: FnOnce(&[u8]) -> R,
    {
        f(self.bytes)
    }
}

impl phy::TxToken for SmolTx<'_> {
    fn consume<R, F>(self, len: usize, f: F) -> R
    where
        F: FnOnce(&mut [u8]) -> R,
    {
        if self.tx.remaining() == 0 {
            self.dev.tx_burst(self.tx);
        }
        let frame = self.dev.alloc_tx();
        if let Some(mut frame) = frame {
            let buf = self.dev.frame_mut(&frame);
            if let Some(dst) = buf.get_mut(..len) {
                let result = f(dst);
                if frame.set_len(len) {
                    if let Err(frame) = self.tx.push(frame) {
                        self.dev.release_one(frame);
                        *self.dropped += 1;
                    }
                } else {
                    self.dev.release_one(frame);
                    *self.dropped += 1;
                }
                return result;
            }
            self.dev.release_one(frame);
        }
        // No frame (or too short): let smoltcp write somewhere and drop it, as a
        // full NIC ring would.
        *self.dropped += 1;
        let mut scratch = vec![0u8; len];
        f(&mut scratch)
    }
}

impl phy::Device for SmolPipe {
    type RxToken<'a> = SmolRx<'a>;
    type TxToken<'a> = SmolTx<'a>;

    fn receive(&mut self, _now: SmolInstant) -> Option<(SmolRx<'_>, SmolTx<'_>)> {
        if self.rx_queue.is_empty() {
            self.dev.rx_burst(&mut self.rx);
            self.rx_queue.extend(self.rx.drain());
        }
        let frame = self.rx_queue.pop_front()?;
        self.rx_bytes.clear();
        self.rx_bytes.extend_from_slice(self.dev.frame(&frame));
        self.dev.release_one(frame);
        Some((
            SmolRx {
                bytes: &self.rx_bytes,
            },
            SmolTx {
                dev: &mut self.dev,
                tx: &mut self.tx,
                dropped: &mut self.tx_dropped,
            },
        ))
    }

    fn transmit(&mut self, _now: SmolInstant) -> Option<SmolTx<'_>> {
        Some(SmolTx {
            dev: &mut self.dev,
            tx: &mut self.tx,
            dropped: &mut self.tx_dropped,
        })
    }

    fn capabilities(&self) -> DeviceCapabilities {
        let mut caps = DeviceCapabilities::default();
        caps.medium = Medium::Ethernet;
        caps.max_transmission_unit = self.dev.caps().mtu as usize + 14;
        caps
    }
}

/// One smoltcp host: its device, interface and sockets.
struct Host {
    dev: SmolPipe,
    iface: Interface,
    sockets: SocketSet<'static>,
}

impl Host {
    fn new(dev: PipeDevice, mac: [u8; 6], ip: std::net::Ipv4Addr, seed: u64) -> Self {
        let mut dev = SmolPipe::new(dev);
        let mut config = Config::new(HardwareAddress::Ethernet(EthernetAddress(mac)));
        config.random_seed = seed;
        let mut iface = Interface::new(config, &mut dev, SmolInstant::from_micros(0));
        iface.update_ip_addrs(|addrs| {
            // One address on a fresh interface always fits.
            let _ = addrs.push(IpCidr::new(IpAddress::Ipv4(ip), 24));
        });
        Self {
            dev,
            iface,
            sockets: SocketSet::new(Vec::new()),
        }
    }

    fn socket(&mut self) -> SocketHandle {
        let mut s = tcp::Socket::new(
            tcp::SocketBuffer::new(vec![0; SOCKET_BUFFER]),
            tcp::SocketBuffer::new(vec![0; SOCKET_BUFFER]),
        );
        // TCP_NODELAY, as the other contenders.
        s.set_nagle_enabled(false);
        self.sockets.add(s)
    }

    #[inline]
    fn poll(&mut self, epoch: Instant, now: Instant) {
        let us = now.saturating_duration_since(epoch).as_micros() as u64;
        self.dev.dev.set_now(us);
        self.iface.poll(
            SmolInstant::from_micros(us as i64),
            &mut self.dev,
            &mut self.sockets,
        );
        self.dev.flush();
    }
}

/// The closed-loop echo with `conns` connections on smoltcp.
pub(crate) fn smoltcp_echo(
    conns: usize,
    plan: &Plan,
    stop: &AtomicBool,
) -> anyhow::Result<Outcome> {
    let mut pipe = PipeConfig::default();
    pipe.link_capacity = pipe.link_capacity.max(4 * conns as u32 + 64);
    pipe.pool.frame_count = pipe.pool.frame_count.max(8 * conns as u32 + 256);
    let (dc, ds) = PipeDevice::pair(&pipe)?;
    let mut client = Host::new(dc, MAC_CLIENT, IP_CLIENT, 1);
    let mut server = Host::new(ds, MAC_SERVER, IP_SERVER, 2);
    let epoch = Instant::now();
    // smoltcp has no accept: one listening socket per connection to come.
    let mut served = Vec::with_capacity(conns);
    for _ in 0..conns {
        let h = server.socket();
        server
            .sockets
            .get_mut::<tcp::Socket>(h)
            .listen(ECHO_PORT)
            .map_err(|e| anyhow!("listen: {e}"))?;
        served.push(h);
    }
    let mut clients = Vec::with_capacity(conns);
    for i in 0..conns {
        let h = client.socket();
        let local_port = 49152 + u16::try_from(i).context("too many connections")?;
        client
            .sockets
            .get_mut::<tcp::Socket>(h)
            .connect(
                client.iface.context(),
                (IpAddress::Ipv4(IP_SERVER), ECHO_PORT),
                local_port,
            )
            .map_err(|e| anyhow!("connect: {e}"))?;
        clients.push(h);
    }
    let setup_end = Instant::now() + plan.limit();
    loop {
        let now = Instant::now();
        client.poll(epoch, now);
        server.poll(epoch, now);
        let established = |host: &Host, handles: &[SocketHandle]| {
            handles
                .iter()
                .filter(|&&h| host.sockets.get::<tcp::Socket>(h).state() == tcp::State::Established)
                .count()
        };
        let (c, s) = (
            established(&client, &clients),
            established(&server, &served),
        );
        if c == conns && s == conns {
            break;
        }
        if now >= setup_end || stop.load(Ordering::Relaxed) {
            bail!("{c} of {conns} client and {s} server connections established");
        }
    }
    let frames_before = client.dev.dev.stats().tx_packets + server.dev.dev.stats().tx_packets;
    let outcome = measured_loop(
        &mut client,
        &mut server,
        epoch,
        &clients,
        &served,
        plan,
        stop,
    )?;
    let frames =
        client.dev.dev.stats().tx_packets + server.dev.dev.stats().tx_packets - frames_before;
    eprintln!(
        "  smoltcp: {frames} frames sent during the run; link drops {} + {}",
        client.dev.dev.stats().link_drops,
        server.dev.dev.stats().link_drops
    );
    let dropped = client.dev.tx_dropped + server.dev.tx_dropped;
    if dropped > 0 {
        eprintln!("  smoltcp: {dropped} frame(s) dropped for want of a TX frame");
    }
    if outcome.requests == 0 {
        bail!("no request was answered");
    }
    Ok(outcome)
}

#[inline(never)]
fn measured_loop(
    client: &mut Host,
    server: &mut Host,
    epoch: Instant,
    clients: &[SocketHandle],
    served: &[SocketHandle],
    plan: &Plan,
    stop: &AtomicBool,
) -> anyhow::Result<Outcome> {
    let start = Instant::now();
    let mut recorder = Recorder::new(plan, start)?;
    let hard_end = start + plan.limit();
    let mut exchanges = vec![Exchange::idle(start); clients.len()];
    // Bytes read but not yet echoed, per server connection.
    let mut pending: Vec<Vec<u8>> = vec![Vec::new(); served.len()];
    let mut buf = [0u8; 16 * 1024];
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
        for (&h, x) in clients.iter().zip(&mut exchanges) {
            let s = client.sockets.get_mut::<tcp::Socket>(h);
            if x.busy {
                while s.can_recv() {
                    let want = MESSAGE_LEN - x.read;
                    let n = s
                        .recv_slice(&mut buf[..want])
                        .map_err(|e| anyhow!("client recv: {e}"))?;
                    if n == 0 {
                        break;
                    }
                    if x.on_read(&buf[..n])? {
                        recorder.answered(x.sent_at, now);
                        break;
                    }
                }
            }
            if !x.busy {
                x.start(now);
            }
            if x.written < MESSAGE_LEN {
                if !s.may_send() {
                    bail!("a client connection closed");
                }
                x.written += s
                    .send_slice(x.unwritten())
                    .map_err(|e| anyhow!("client send: {e}"))?;
            }
        }
        client.poll(epoch, now);
        server.poll(epoch, now);
        for (&h, pending) in served.iter().zip(&mut pending) {
            let s = server.sockets.get_mut::<tcp::Socket>(h);
            if !s.may_recv() && s.state() != tcp::State::Established {
                bail!("a server connection closed");
            }
            loop {
                if !pending.is_empty() {
                    let n = s
                        .send_slice(pending)
                        .map_err(|e| anyhow!("server send: {e}"))?;
                    pending.drain(..n);
                    if !pending.is_empty() {
                        break;
                    }
                }
                if !s.can_recv() {
                    break;
                }
                let n = s
                    .recv_slice(&mut buf)
                    .map_err(|e| anyhow!("server recv: {e}"))?;
                if n == 0 {
                    break;
                }
                let sent = s
                    .send_slice(&buf[..n])
                    .map_err(|e| anyhow!("server send: {e}"))?;
                pending.extend_from_slice(&buf[sent..n]);
            }
        }
        server.poll(epoch, now);
        client.poll(epoch, now);
    }
    Ok(recorder.finish())
}

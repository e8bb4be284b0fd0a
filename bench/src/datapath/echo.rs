//! The raw AF_XDP frame echo of a lab veth pair: the ceiling of a request/response
//! workload with one frame each way.
//!
//! A client on B keeps `window` small UDP frames in flight to a reflector on A, which turns
//! each received frame into its reply in place (Ethernet, IPv4 and UDP source and
//! destination swapped) and sends that same frame back. No TCP/IP stack runs on either
//! side: each end does only what any stack must (receive a burst, write headers, send a
//! burst). With the two threads pinned to the cores of `surge-bench compare`'s contenders
//! (server in A, client in B), the round trips per second bound the requests per second a
//! stack can answer on those cores with one request frame and one response frame.
//!
//! Both ends own addresses of the lab's 198.18.0.0/24 that no kernel has (surge's server
//! and client addresses in the compare lab); the steering program on each veth sends every
//! frame to them to the AF_XDP socket, so the kernels never see the echo.

use std::net::Ipv4Addr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use surge_bpf::SteerProgram;
use surge_datapath::{Burst, Device, DeviceStats, FrameAccounting, KernelXdpStats, XdpPort};
use surge_lab::{Lab, enter_netns};
use surge_stack::wire::{
    EtherType, EthernetAddress, EthernetFrame, EthernetRepr, IpProtocol, Ipv4Packet, Ipv4Repr,
    TxChecksum, UdpPacket, UdpRepr,
};

use super::{FRAME_LEN, port_config, steer_to};

/// The reflector's address in A (surge's server address in the compare lab).
const REFLECTOR: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 10);
/// The reflector's UDP port.
const REFLECTOR_PORT: u16 = 9000;
/// The client's address in B (surge's client address in the compare lab).
const CLIENT: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 20);
/// The client's UDP port.
const CLIENT_PORT: u16 = 10000;

/// How long the client waits, once it stops sending, for the replies still in flight.
const DRAIN: Duration = Duration::from_millis(200);
/// How long the client goes without a reply, with frames in flight, before it writes
/// them off as lost and fills the window again (a frame lost on a veth never comes back).
const STALL: Duration = Duration::from_millis(200);
/// How long either end waits for its sends to complete after its loop.
const FLUSH: Duration = Duration::from_millis(100);
/// How long the reflector may take to open, pin itself and start polling.
const REFLECTOR_READY: Duration = Duration::from_secs(5);

/// What one echo run does.
#[derive(Clone, Copy, Debug)]
pub(crate) struct EchoConfig {
    /// How long the client sends (the measured interval).
    pub(crate) duration: Duration,
    /// Frame length without FCS: at least 60, at most one UMEM frame.
    pub(crate) frame_len: usize,
    /// Requests in flight (sent, reply not yet received) the client keeps.
    pub(crate) window: u64,
    /// (reflector core, client core); `None`: threads where the scheduler puts them.
    pub(crate) cores: Option<(usize, usize)>,
    /// Bound of the whole run (opening the sockets, sending, draining, joining).
    pub(crate) limit: Duration,
}

/// What a run's client counted.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct ClientCounts {
    /// Requests handed to the kernel.
    pub(crate) sent: u64,
    /// Replies received (each one of our requests, reflected).
    pub(crate) received: u64,
    /// Requests written off after [`STALL`] without a reply.
    pub(crate) lost: u64,
    /// Requests still unanswered when the client stopped (after [`DRAIN`]).
    pub(crate) unanswered: u64,
    /// Frames received that were not a reply from the reflector (dropped).
    pub(crate) strays: u64,
    /// The client's device counters.
    pub(crate) device: DeviceStats,
    /// Whether every frame of the client's pool was back (free, in the fill ring or
    /// still completing a send) at the end.
    pub(crate) frames_balanced: bool,
}

/// What a run's reflector counted.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct ReflectorCounts {
    /// Frames received.
    pub(crate) received: u64,
    /// Frames turned into replies.
    pub(crate) reflected: u64,
    /// Frames that were not an echo request to the reflector (too short, another
    /// protocol or address), dropped.
    pub(crate) dropped: u64,
    /// Replies handed to the kernel.
    pub(crate) sent: u64,
    /// Replies made but not sent when the reflector stopped (released).
    pub(crate) unsent: u64,
    /// The reflector's device counters.
    pub(crate) device: DeviceStats,
    /// As [`ClientCounts::frames_balanced`].
    pub(crate) frames_balanced: bool,
}

/// One echo run's outcome.
#[derive(Clone, Copy, Debug)]
pub(crate) struct EchoRun {
    /// The configured window.
    pub(crate) window: u64,
    /// Replies received while the client was sending.
    pub(crate) round_trips: u64,
    /// The client's sending interval.
    pub(crate) seconds: f64,
    /// Round trips per second: `round_trips / seconds`.
    pub(crate) rate: f64,
    /// The client's counters.
    pub(crate) client: ClientCounts,
    /// The reflector's counters.
    pub(crate) reflector: ReflectorCounts,
}

impl ClientCounts {
    /// Requests sent and neither answered nor written off.
    fn in_flight(&self) -> u64 {
        self.sent - (self.received + self.lost)
    }
}

impl EchoRun {
    /// Every request sent is answered, written off, or was unanswered at the end.
    pub(crate) fn requests_accounted(&self) -> bool {
        let c = &self.client;
        c.sent == c.received + c.lost + c.unanswered
    }

    /// The client's and the reflector's device loop counters and the kernel's drops, as
    /// one line (frames per batch, wakeup syscalls per round trip, `XDP_STATISTICS`).
    pub(crate) fn describe(&self) -> String {
        let (c, r) = (&self.client, &self.reflector);
        let per = |n: u64, d: u64| n as f64 / d.max(1) as f64;
        let kernel = |k: Option<KernelXdpStats>| {
            k.map_or("-".into(), |k| {
                format!(
                    "rx ring full {}, fill ring empty {}, rx dropped {}",
                    k.rx_ring_full, k.fill_ring_empty, k.rx_dropped
                )
            })
        };
        format!(
            "echo, {} in flight: {} round trips in {:.2} s -> {:.0}/s; client sent {} received {} lost {} \
             unanswered {} strays {}, RX batch {:.1}, TX batch {:.1}, wakeups/round trip {:.2}, kernel: {}; \
             reflector received {} reflected {} dropped {} sent {}, RX batch {:.1}, TX batch {:.1}, \
             wakeups/round trip {:.2}, kernel: {}",
            self.window,
            self.round_trips,
            self.seconds,
            self.rate,
            c.sent,
            c.received,
            c.lost,
            c.unanswered,
            c.strays,
            per(c.device.rx_packets, c.device.rx_batches),
            per(c.device.tx_packets, c.device.tx_batches),
            per(c.device.wakeups, c.received),
            kernel(c.device.kernel),
            r.received,
            r.reflected,
            r.dropped,
            r.sent,
            per(r.device.rx_packets, r.device.rx_batches),
            per(r.device.tx_packets, r.device.tx_batches),
            per(r.device.wakeups, c.received),
            kernel(r.device.kernel),
        )
    }
}

/// Runs the echo once on `lab`'s veth pair (queue 0 of each veth): the reflector on A,
/// the client on B, pinned to `config.cores` when given. Returns the round trips per
/// second and both ends' counters; fails when no reply came back.
pub(crate) fn echo_rate(lab: &Lab, config: &EchoConfig) -> anyhow::Result<EchoRun> {
    ensure!(
        (FRAME_LEN..=2048).contains(&config.frame_len),
        "echo frame length {}: 60 to 2048 bytes",
        config.frame_len
    );
    ensure!(config.window >= 1, "echo window: at least 1");
    ensure!(
        config.duration + DRAIN + FLUSH < config.limit,
        "echo duration {:?} leaves no time to drain within the limit {:?}",
        config.duration,
        config.limit
    );
    if let Some((reflector, client)) = config.cores {
        let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
        ensure!(
            reflector < cpus && client < cpus,
            "cores {reflector} and {client}: this machine has {cpus}"
        );
    }
    let deadline = Instant::now() + config.limit;
    let (a, b) = (lab.a(), lab.b());
    let request = datagram(
        Endpoint {
            mac: b.mac,
            addr: CLIENT,
            port: CLIENT_PORT,
        },
        Endpoint {
            mac: a.mac,
            addr: REFLECTOR,
            port: REFLECTOR_PORT,
        },
        config.frame_len,
    )?;
    // The steering programs are detached when they drop, on every path out of here.
    let steer_a = steer_to(a, REFLECTOR, REFLECTOR_PORT)?;
    let steer_b = steer_to(b, CLIENT, CLIENT_PORT)?;
    let stop = Arc::new(AtomicBool::new(false));
    let reflector = start_reflector(lab, &steer_a, config.cores.map(|c| c.0), &stop, deadline)?;
    let client = {
        let _ns = enter_netns(&b.netns)?;
        let mut port = XdpPort::open(&port_config(&b.ifname, 0)).context("opening B's port")?;
        steer_b.register_socket(0, port.fd())?;
        let core = config.cores.map(|c| c.1);
        let config = *config;
        std::thread::spawn(move || -> anyhow::Result<(ClientCounts, u64, f64)> {
            if let Some(core) = core {
                crate::engine::pin_to(core)?;
            }
            Ok(run_client(&mut port, &request, &config, deadline))
        })
    };
    let client = client.join();
    // The reflector stops once the client is done, whatever happened to it.
    stop.store(true, Ordering::Relaxed);
    let reflector = reflector.join();
    let (client, round_trips, seconds) = match client {
        Ok(result) => result.context("the echo client")?,
        Err(_) => bail!("the echo client panicked"),
    };
    let reflector = match reflector {
        Ok(counts) => counts,
        Err(_) => bail!("the echo reflector panicked"),
    };
    drop((steer_a, steer_b));
    let run = EchoRun {
        window: config.window,
        round_trips,
        seconds,
        rate: round_trips as f64 / seconds.max(1e-9),
        client,
        reflector,
    };
    ensure!(
        run.round_trips > 0,
        "no echo came back ({} sent, reflector received {})",
        client.sent,
        reflector.received
    );
    Ok(run)
}

/// Opens A's port, starts the reflector thread (pinned to `core` when given) and waits
/// until it is polling.
fn start_reflector(
    lab: &Lab,
    steer: &SteerProgram,
    core: Option<usize>,
    stop: &Arc<AtomicBool>,
    deadline: Instant,
) -> anyhow::Result<JoinHandle<ReflectorCounts>> {
    let a = lab.a();
    let mut port = {
        let _ns = enter_netns(&a.netns)?;
        XdpPort::open(&port_config(&a.ifname, 0)).context("opening A's port")?
    };
    steer.register_socket(0, port.fd())?;
    let (ready_tx, ready_rx) = mpsc::channel::<Result<(), String>>();
    let stop_thread = Arc::clone(stop);
    let handle = std::thread::spawn(move || {
        if let Some(core) = core
            && let Err(e) = crate::engine::pin_to(core)
        {
            let _ = ready_tx.send(Err(format!("{e:#}")));
            return ReflectorCounts::default();
        }
        let _ = ready_tx.send(Ok(()));
        run_reflector(&mut port, &stop_thread, deadline)
    });
    let ready = ready_rx.recv_timeout(REFLECTOR_READY);
    if !matches!(ready, Ok(Ok(()))) {
        stop.store(true, Ordering::Relaxed);
        let _ = handle.join();
        match ready {
            Ok(Err(e)) => bail!("the echo reflector: {e}"),
            _ => bail!("the echo reflector did not start within {REFLECTOR_READY:?}"),
        }
    }
    Ok(handle)
}

/// One end of the echo.
#[derive(Clone, Copy, Debug)]
struct Endpoint {
    mac: [u8; 6],
    addr: Ipv4Addr,
    port: u16,
}

/// A UDP/IPv4 frame of `len` bytes (without FCS) from `src` to `dst`, with both
/// checksums; the data is a fixed pattern.
fn datagram(src: Endpoint, dst: Endpoint, len: usize) -> anyhow::Result<Vec<u8>> {
    let eth = EthernetRepr {
        src_addr: EthernetAddress(src.mac),
        dst_addr: EthernetAddress(dst.mac),
        vlan: None,
        ethertype: EtherType::Ipv4,
    };
    let udp_len = len
        .checked_sub(eth.header_len() + 20)
        .context("frame too short for the headers")?;
    let ip = Ipv4Repr::new(src.addr, dst.addr, IpProtocol::Udp, udp_len, 64);
    let mut frame = vec![0u8; len];
    eth.emit(&mut EthernetFrame::new_unchecked(&mut frame[..]))?;
    let ip_start = eth.header_len();
    let udp_start = ip_start + ip.header_len();
    ip.emit(
        &mut Ipv4Packet::new_unchecked(&mut frame[ip_start..]),
        TxChecksum::Compute,
    )?;
    let payload: Vec<u8> = (0..udp_len.saturating_sub(8))
        .map(|i| (i as u8).wrapping_mul(37).wrapping_add(11))
        .collect();
    UdpRepr {
        src_port: src.port,
        dst_port: dst.port,
    }
    .emit_datagram(
        &mut frame[udp_start..],
        src.addr,
        dst.addr,
        &payload,
        TxChecksum::Compute,
    )?;
    Ok(frame)
}

/// Turns an echo request to the reflector into its reply, in place: Ethernet, IPv4 and
/// UDP source and destination swapped, nothing else written. Returns false, changing
/// nothing, for any other frame (too short, not UDP/IPv4, a fragment, another address or
/// port).
///
/// Both checksums stay valid without being touched. RFC 1071 §2 (A), (B): the
/// one's-complement sum of 16-bit words is commutative and associative. The IPv4 header
/// checksum sums the header's words; each address is two whole words (offsets 12 and 16),
/// so the swap permutes the words and keeps the sum. The UDP checksum sums the
/// pseudo-header (the two addresses again) and the datagram, whose ports are whole words
/// (offsets 0 and 2): the same. The tests check the reply byte for byte against one built
/// from scratch with fresh checksums.
fn reflect(frame: &mut [u8]) -> bool {
    let Ok(mut eth) = EthernetFrame::new_checked(&mut *frame) else {
        return false;
    };
    if eth.ethertype() != EtherType::Ipv4 {
        return false;
    }
    let Ok(mut ip) = Ipv4Packet::new_checked(eth.payload_mut()) else {
        return false;
    };
    if ip.version() != 4
        || ip.protocol() != IpProtocol::Udp
        || ip.more_frags()
        || ip.frag_offset() != 0
        || ip.dst_addr() != REFLECTOR
    {
        return false;
    }
    let (ip_src, ip_dst) = (ip.src_addr(), ip.dst_addr());
    let Ok(mut udp) = UdpPacket::new_checked(ip.payload_mut()) else {
        return false;
    };
    if udp.dst_port() != REFLECTOR_PORT {
        return false;
    }
    let (src_port, dst_port) = (udp.src_port(), udp.dst_port());
    udp.set_src_port(dst_port);
    udp.set_dst_port(src_port);
    ip.set_src_addr(ip_dst);
    ip.set_dst_addr(ip_src);
    let (mac_src, mac_dst) = (eth.src_addr(), eth.dst_addr());
    eth.set_src_addr(mac_dst);
    eth.set_dst_addr(mac_src);
    true
}

/// Whether `frame` is the reflector's reply to the client.
fn is_reply(frame: &[u8]) -> bool {
    let Ok(eth) = EthernetFrame::new_checked(frame) else {
        return false;
    };
    if eth.ethertype() != EtherType::Ipv4 {
        return false;
    }
    let Ok(ip) = Ipv4Packet::new_checked(eth.payload()) else {
        return false;
    };
    if ip.protocol() != IpProtocol::Udp || ip.src_addr() != REFLECTOR || ip.dst_addr() != CLIENT {
        return false;
    }
    UdpPacket::new_checked(ip.payload())
        .is_ok_and(|udp| udp.src_port() == REFLECTOR_PORT && udp.dst_port() == CLIENT_PORT)
}

/// Hands `tx` to the kernel, as much as its ring takes; returns how many frames left.
/// With nothing received (`received`) and nothing sent, gives the CPU up for a moment.
fn send_or_yield(port: &mut XdpPort, tx: &mut Burst, received: usize) -> u64 {
    let before = tx.len();
    port.tx_burst(tx);
    let sent = (before - tx.len()) as u64;
    if received == 0 && sent == 0 {
        std::thread::yield_now();
    }
    sent
}

/// Whether every frame of `port`'s pool is back and accounted for.
fn settled(accounting: FrameAccounting) -> bool {
    accounting.balanced() && accounting.held == 0 && accounting.large_held == 0
}

/// Waits (at most [`FLUSH`]) for the kernel to complete `port`'s sends, then releases
/// what `tx` still holds; returns how many that was.
fn flush(port: &mut XdpPort, tx: &mut Burst) -> u64 {
    let until = Instant::now() + FLUSH;
    let mut empty = Burst::new();
    while port.accounting().tx_ring > 0 && Instant::now() < until {
        if port.tx_burst(&mut empty) == 0 {
            std::thread::yield_now();
        }
    }
    let unsent = tx.len() as u64;
    port.release(tx);
    unsent
}

/// The reflector's loop: receive a burst, turn each request into its reply in place, send
/// the same frames back; until `stop` or `deadline`.
///
/// No copy: a received frame is a handle into the port's pool, and the TX burst takes the
/// same handle, as the engine answers an ICMP echo (`engine/icmp.rs`). It receives only
/// when the previous replies have all left (a full TX ring pushes back on the client
/// instead of dropping replies).
fn run_reflector(port: &mut XdpPort, stop: &AtomicBool, deadline: Instant) -> ReflectorCounts {
    let mut counts = ReflectorCounts::default();
    let (mut rx, mut tx) = (Burst::new(), Burst::new());
    while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
        let mut received = 0;
        if tx.is_empty() {
            received = port.rx_burst(&mut rx);
            counts.received += received as u64;
            for frame in rx.drain() {
                let len = frame.len();
                let replied = port.frame_mut(&frame).get_mut(..len).is_some_and(reflect);
                if !replied {
                    counts.dropped += 1;
                    port.release_one(frame);
                    continue;
                }
                match tx.push(frame) {
                    Ok(()) => counts.reflected += 1,
                    Err(frame) => {
                        // Cannot happen: `tx` was empty and a burst holds what `rx` does.
                        counts.dropped += 1;
                        port.release_one(frame);
                    }
                }
            }
        }
        counts.sent += send_or_yield(port, &mut tx, received);
    }
    counts.unsent = flush(port, &mut tx);
    counts.device = port.stats();
    counts.frames_balanced = settled(port.accounting());
    counts
}

/// The client's loop: keep `config.window` requests in flight for `config.duration`,
/// counting replies, then wait up to [`DRAIN`] for the ones in flight. Returns its
/// counters, the replies received while sending, and the sending interval in seconds.
fn run_client(
    port: &mut XdpPort,
    request: &[u8],
    config: &EchoConfig,
    deadline: Instant,
) -> (ClientCounts, u64, f64) {
    let mut counts = ClientCounts::default();
    let (mut rx, mut tx) = (Burst::new(), Burst::new());
    let started = Instant::now();
    let stop_sending = (started + config.duration).min(deadline);
    let mut measured: Option<(u64, f64)> = None;
    let mut drain_until = deadline;
    let mut last_reply = started;
    loop {
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        if measured.is_none() && now >= stop_sending {
            measured = Some((counts.received, (now - started).as_secs_f64()));
            drain_until = (now + DRAIN).min(deadline);
            // Requests written but not handed to the kernel are not sent: drop them.
            port.release(&mut tx);
        }
        let in_flight = counts.in_flight();
        if measured.is_some() && (in_flight == 0 || now >= drain_until) {
            break;
        }
        let replies_before = counts.received;
        let received = port.rx_burst(&mut rx);
        for frame in rx.iter() {
            if !is_reply(port.frame(frame)) {
                counts.strays += 1;
            } else if counts.received + counts.lost < counts.sent {
                counts.received += 1;
            } else if counts.lost > 0 {
                // A request written off came back after all.
                counts.lost -= 1;
                counts.received += 1;
            } else {
                // More replies than requests (a duplicate): not ours to count.
                counts.strays += 1;
            }
        }
        port.release(&mut rx);
        if counts.received > replies_before {
            last_reply = now;
        }
        if measured.is_none() {
            let in_flight = counts.in_flight();
            if in_flight > 0 && now.saturating_duration_since(last_reply) > STALL {
                counts.lost += in_flight;
                last_reply = now;
            }
            let in_flight = counts.in_flight();
            // Each request is written into a fresh frame (60 bytes copied): what a stack's
            // client does too, writing its headers and request into a TX frame.
            while in_flight + (tx.len() as u64) < config.window && tx.remaining() > 0 {
                let Some(mut frame) = port.alloc_tx() else {
                    break;
                };
                let written = match port.frame_mut(&frame).get_mut(..request.len()) {
                    Some(buf) => {
                        buf.copy_from_slice(request);
                        frame.set_len(request.len())
                    }
                    None => false,
                };
                if !written {
                    port.release_one(frame);
                    break;
                }
                if let Err(frame) = tx.push(frame) {
                    port.release_one(frame);
                    break;
                }
            }
        }
        counts.sent += send_or_yield(port, &mut tx, received);
    }
    flush(port, &mut tx);
    let (round_trips, seconds) =
        measured.unwrap_or_else(|| (counts.received, started.elapsed().as_secs_f64()));
    // The loop keeps `received + lost <= sent`: what is neither back nor written off
    // was still unanswered when the client stopped.
    counts.unanswered = counts.in_flight();
    counts.device = port.stats();
    counts.frames_balanced = settled(port.accounting());
    (counts, round_trips, seconds)
}

#[cfg(test)]
mod tests {
    use super::*;

    const A_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0a];
    const B_MAC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x0b];

    fn client() -> Endpoint {
        Endpoint {
            mac: B_MAC,
            addr: CLIENT,
            port: CLIENT_PORT,
        }
    }

    fn reflector() -> Endpoint {
        Endpoint {
            mac: A_MAC,
            addr: REFLECTOR,
            port: REFLECTOR_PORT,
        }
    }

    #[test]
    fn a_reflected_request_is_the_reply_built_from_scratch() {
        for len in [60, 64, 128, 1514] {
            let mut frame = datagram(client(), reflector(), len).expect("request");
            let reply = datagram(reflector(), client(), len).expect("reply");
            assert_ne!(frame, reply);
            assert!(reflect(&mut frame));
            // Byte for byte, checksums included: the swap kept them valid.
            assert_eq!(frame, reply, "{len}-byte frame");
            assert!(is_reply(&frame));
            let ip = Ipv4Packet::new_checked(&frame[14..]).expect("ipv4");
            assert!(ip.verify_checksum());
            let udp = UdpPacket::new_checked(ip.payload()).expect("udp");
            assert_ne!(udp.checksum(), 0);
            assert!(udp.verify_checksum(REFLECTOR, CLIENT));
        }
    }

    #[test]
    fn frames_that_are_not_requests_are_left_alone() {
        let request = datagram(client(), reflector(), 60).expect("request");
        // Every truncation, down to nothing: refused, never a panic.
        for len in 0..request.len() {
            let mut short = request[..len].to_vec();
            let before = short.clone();
            assert!(!reflect(&mut short), "{len} bytes");
            assert_eq!(short, before);
            assert!(!is_reply(&short));
        }
        // A reply is not a request (another address), nor is a request to another port.
        let mut reply = datagram(reflector(), client(), 60).expect("reply");
        assert!(!reflect(&mut reply));
        let other_port = Endpoint {
            port: REFLECTOR_PORT + 1,
            ..reflector()
        };
        let mut wrong = datagram(client(), other_port, 60).expect("request");
        assert!(!reflect(&mut wrong));
        // Not IPv4.
        let mut arp = request.clone();
        arp[12..14].copy_from_slice(&0x0806u16.to_be_bytes());
        assert!(!reflect(&mut arp));
        // A request is not a reply.
        assert!(!is_reply(&request));
    }

    #[test]
    fn a_frame_too_short_for_the_headers_is_refused() {
        assert!(datagram(client(), reflector(), 41).is_err());
        assert!(datagram(client(), reflector(), 42).is_ok());
    }
}

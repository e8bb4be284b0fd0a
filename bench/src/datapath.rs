//! `surge-bench datapath`: 64-byte frames from an AF_XDP socket on one end of
//! a lab veth pair to an AF_XDP socket on the other, through surge-datapath,
//! through a minimal loop written directly on xsk-rs (the reference), and
//! through kernel AF_PACKET sockets; same lab, same run, rounds interleaved,
//! medians and ratios printed as a table. [`echo_rate`] is the frame echo of the
//! same kind of pair, the ceiling of request/response workloads.

use std::{
    net::Ipv4Addr,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    thread::JoinHandle,
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use surge_bpf::{AttachMode, SteerConfig, SteerProgram};
use surge_datapath::{
    Burst, Device, PortConfig, XdpPort,
    baseline::{
        Credit, LoopResult, PacketReceiver, PacketSender, RECEIVE_GRACE, XskRsReceiver, XskRsSender,
    },
};
use surge_lab::{Host, Lab, LabSpec, Topology, enter_netns};

mod echo;

pub(crate) use echo::{EchoConfig, EchoRun, echo_rate};

/// Arguments of `surge-bench datapath`.
#[derive(clap::Args)]
pub struct DatapathArgs {
    /// Frames sent per run (split over the queues).
    #[arg(long, default_value_t = 1_000_000)]
    frames: u64,
    /// Run only with this many queues (1 or 2); default: both.
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=2))]
    queues: Option<u16>,
    /// Rounds per variant (the median is reported).
    #[arg(long, default_value_t = 3)]
    rounds: u32,
    /// Time limit of one run, in seconds.
    #[arg(long, default_value_t = 30)]
    limit_secs: u64,
    /// Closed loop: frames in flight (sent, not yet received) allowed over all
    /// queues, the same for every variant, so no receiver ring overflows; 0 is
    /// the open loop (senders as fast as the kernel takes, receivers drop what
    /// they cannot keep up with).
    #[arg(long, default_value_t = 1024)]
    window: u64,
}

/// The address the receiver owns (only the XDP program knows it).
const DST: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 20);
const DST_PORT: u16 = 9000;
/// 60 bytes on the wire, 64 with the FCS.
const FRAME_LEN: usize = 60;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Variant {
    Surge,
    XskRs,
    AfPacket,
}

/// One run's outcome.
#[derive(Clone, Copy, Debug)]
struct Run {
    sent: u64,
    received: u64,
    pps: f64,
    /// CPU time of our sender and receiver threads per received frame (ns):
    /// less sensitive than `pps` to other load on a shared machine.
    cpu_ns_per_frame: f64,
    /// Frames per sender ring operation (or `sendmmsg`) that moved any.
    tx_batch: f64,
    /// Frames per receiver ring operation (or `recvmmsg`) that moved any.
    rx_batch: f64,
    /// Sender syscalls (`sendto` wakeups, `sendmmsg`) per frame sent.
    tx_syscalls_per_frame: f64,
    /// Receiver syscalls (`recvfrom` wakeups, `recvmmsg`) per frame received.
    rx_syscalls_per_frame: f64,
    /// Frames the kernel dropped at the receivers because the RX ring was
    /// full (`XDP_STATISTICS` `rx_ring_full`, summed over queues; AF_XDP only).
    rx_ring_full: u64,
    /// Times the kernel found a receiver's fill ring empty (summed; AF_XDP only).
    fill_ring_empty: u64,
    /// Frames received per queue.
    per_queue: [u64; 2],
}

/// CPU time (user + system) of the calling thread, from /proc (10 ms ticks).
fn thread_cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap_or_default();
    // After the `(comm)`: field 3 (state) comes first; utime and stime are fields 14 and 15.
    let after_comm = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let ticks: u64 = after_comm
        .split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|f| f.parse::<u64>().ok())
        .sum();
    Duration::from_millis(ticks * 10)
}

/// Runs `f` on a new thread, returning its result and the thread's CPU time.
fn spawn_measured<F>(f: F) -> Worker
where
    F: FnOnce() -> LoopResult + Send + 'static,
{
    std::thread::spawn(move || {
        let before = thread_cpu_time();
        let result = f();
        (result, thread_cpu_time().saturating_sub(before))
    })
}

/// Runs the datapath benchmark.
pub fn run(args: DatapathArgs) -> anyhow::Result<()> {
    if args.frames == 0 || args.rounds == 0 {
        bail!("--frames and --rounds must be at least 1");
    }
    let queue_counts: Vec<u16> = args.queues.map_or(vec![1, 2], |q| vec![q]);
    let limit = Duration::from_secs(args.limit_secs.max(1));
    let mut rows = Vec::new();
    for &queues in &queue_counts {
        let mut spec = LabSpec::unique("bench-dp", Topology::Pair);
        spec.queues = queues;
        spec.threaded_napi = true;
        let lab = Lab::up(&spec).context("building the lab (needs root)")?;
        let (a, b) = (lab.a().clone(), lab.b().clone());
        let program = steer_to_receiver(&b)?;
        let mut results: Vec<(Variant, Run)> = Vec::new();
        for round in 0..args.rounds {
            // Rotate the order each round so no variant always runs first.
            let mut order = [Variant::Surge, Variant::XskRs, Variant::AfPacket];
            order.rotate_left(round as usize % 3);
            for variant in order {
                let run = run_variant(
                    variant,
                    &a,
                    &b,
                    &program,
                    queues,
                    args.frames,
                    args.window,
                    limit,
                )
                .with_context(|| format!("{variant:?} with {queues} queue(s)"))?;
                eprintln!(
                    "  queues {queues} {variant:?}: sent {} received {} -> {:.3} Mpps, {:.0} CPU ns/frame",
                    run.sent,
                    run.received,
                    run.pps / 1e6,
                    run.cpu_ns_per_frame
                );
                results.push((variant, run));
            }
        }
        drop(program);
        lab.down().context("removing the lab")?;
        rows.push((queues, results));
    }
    print_table(&args, &rows);
    Ok(())
}

/// The raw AF_XDP frame rate of `lab`'s veth pair: `frames` frames of `frame_len` bytes
/// (without FCS; at most the lab's MTU + 14) from an AF_XDP socket on A's veth (queue 0)
/// to one on B's, through surge-datapath, closed loop (1024 in flight). A frame longer
/// than one UMEM frame is written into a large frame and leaves as a multi-buffer chain,
/// as the stack's segments do. Returns frames received per second. `surge-bench compare`
/// uses it as the ceiling its connection rates are set against, `surge-bench bulk` as
/// the ceiling of one bulk connection.
pub(crate) fn frame_rate(
    lab: &Lab,
    frames: u64,
    frame_len: usize,
    limit: Duration,
) -> anyhow::Result<f64> {
    anyhow::ensure!(
        frame_len >= FRAME_LEN,
        "frame length {frame_len}: at least {FRAME_LEN}"
    );
    let (a, b) = (lab.a().clone(), lab.b().clone());
    let program = steer_to_receiver(&b)?;
    // The window counts packets; a multi-buffer packet takes a descriptor per 4 KiB part
    // in the receiver's RX ring (2048 slots), so the window shrinks with the parts.
    let parts = frame_len.div_ceil(4096) as u64;
    let window = 1024 / parts;
    let run = run_variant_sized(
        Variant::Surge,
        &a,
        &b,
        &program,
        (1, frames, window),
        frame_len,
        limit,
    )?;
    drop(program);
    eprintln!(
        "    frame rate, {frame_len}-byte frames, {window} in flight: sent {} received {}, \
         {:.0} CPU ns/frame, TX batch {:.1}, TX syscalls/1k {:.1}, rx ring full {}, fill ring empty {}",
        run.sent,
        run.received,
        run.cpu_ns_per_frame,
        run.tx_batch,
        run.tx_syscalls_per_frame * 1000.0,
        run.rx_ring_full,
        run.fill_ring_empty
    );
    anyhow::ensure!(run.received > 0, "no frame arrived ({} sent)", run.sent);
    Ok(run.pps)
}

/// The steering program on B's veth: frames to `DST:DST_PORT` go to the AF_XDP sockets.
fn steer_to_receiver(b: &Host) -> anyhow::Result<SteerProgram> {
    steer_to(b, DST, DST_PORT)
}

/// The steering program on `host`'s veth: frames to `addr` (an address only the program
/// knows, not the kernel's) and UDP port `port` go to the AF_XDP sockets.
fn steer_to(host: &Host, addr: Ipv4Addr, port: u16) -> anyhow::Result<SteerProgram> {
    let _ns = enter_netns(&host.netns)?;
    let config = SteerConfig {
        local_addrs: vec![addr],
        udp_ports: vec![port],
        ..SteerConfig::default()
    };
    SteerProgram::attach(&host.ifname, &config, AttachMode::Auto)
        .with_context(|| format!("attaching the XDP program to {}", host.ifname))
}

/// Per-round ratios of surge's pps to `other`'s in the same round (runs next
/// to each other in time see similar machine load), sorted.
fn paired_ratios(results: &[(Variant, Run)], other: Variant) -> Vec<f64> {
    let surge = results
        .iter()
        .filter(|(v, _)| *v == Variant::Surge)
        .map(|(_, r)| r.pps);
    let theirs = results
        .iter()
        .filter(|(v, _)| *v == other)
        .map(|(_, r)| r.pps);
    let mut ratios: Vec<f64> = surge.zip(theirs).map(|(s, o)| s / o.max(1e-9)).collect();
    ratios.sort_by(f64::total_cmp);
    ratios
}

/// Median of sorted values (NaN if none).
fn median_of(sorted: &[f64]) -> f64 {
    sorted.get(sorted.len() / 2).copied().unwrap_or(f64::NAN)
}

/// `median (min-max)` of sorted ratios.
fn spread(sorted: &[f64]) -> String {
    match (sorted.first(), sorted.last()) {
        (Some(lo), Some(hi)) => format!("{:.2}x ({lo:.2}-{hi:.2})", median_of(sorted)),
        _ => "-".into(),
    }
}

/// Median over the rounds of one variant of `f`.
fn median_by(results: &[(Variant, Run)], variant: Variant, f: impl Fn(&Run) -> f64) -> f64 {
    let mut values: Vec<f64> = results
        .iter()
        .filter(|(v, _)| *v == variant)
        .map(|(_, r)| f(r))
        .collect();
    values.sort_by(f64::total_cmp);
    median_of(&values)
}

/// Medians of one variant: (pps, CPU ns per frame, frames received).
fn median(results: &[(Variant, Run)], variant: Variant) -> (f64, f64, u64) {
    let mut runs: Vec<Run> = results
        .iter()
        .filter(|(v, _)| *v == variant)
        .map(|(_, r)| *r)
        .collect();
    runs.sort_by(|x, y| x.pps.total_cmp(&y.pps));
    let mid = runs[runs.len() / 2];
    let mut cpu: Vec<f64> = runs.iter().map(|r| r.cpu_ns_per_frame).collect();
    cpu.sort_by(f64::total_cmp);
    (mid.pps, cpu[cpu.len() / 2], mid.received)
}

fn print_table(args: &DatapathArgs, rows: &[(u16, Vec<(Variant, Run)>)]) {
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "machine: {cpus} CPUs, load average {}",
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    println!(
        "surge-bench datapath: 64-byte frames (60 B + FCS), XSK -> XSK across one veth pair (copy mode, threaded NAPI), \
         {} frames per run, median of {} interleaved rounds, {}",
        args.frames,
        args.rounds,
        if args.window == 0 {
            "open loop".to_string()
        } else {
            format!("closed loop ({} frames in flight at most)", args.window)
        }
    );
    println!(
        "| queues | surge-datapath Mpps | xsk-rs direct Mpps | AF_PACKET Mpps | surge / xsk-rs: median of per-round ratios (min-max) | surge / AF_PACKET (same) \
         | CPU ns/frame: surge, xsk-rs, AF_PACKET | frames received: surge, xsk-rs, AF_PACKET |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- |");
    for (queues, results) in rows {
        let (surge, surge_cpu, surge_rx) = median(results, Variant::Surge);
        let (xsk, xsk_cpu, xsk_rx) = median(results, Variant::XskRs);
        let (packet, packet_cpu, packet_rx) = median(results, Variant::AfPacket);
        println!(
            "| {queues} | {:.3} | {:.3} | {:.3} | {} | {} | {surge_cpu:.0}, {xsk_cpu:.0}, {packet_cpu:.0} \
             | {surge_rx}, {xsk_rx}, {packet_rx} |",
            surge / 1e6,
            xsk / 1e6,
            packet / 1e6,
            spread(&paired_ratios(results, Variant::XskRs)),
            spread(&paired_ratios(results, Variant::AfPacket))
        );
    }
    println!();
    println!(
        "Loop behaviour (medians over rounds): frames per batch, syscalls per 1000 frames, \
         kernel drops at the receivers (rx ring full), fill ring found empty, share of frames on queue 0"
    );
    println!(
        "| queues | variant | TX batch | RX batch | TX syscalls / 1k | RX syscalls / 1k | rx ring full | fill ring empty | queue 0 share |"
    );
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    for (queues, results) in rows {
        for variant in [Variant::Surge, Variant::XskRs, Variant::AfPacket] {
            let m = |f: &dyn Fn(&Run) -> f64| median_by(results, variant, f);
            println!(
                "| {queues} | {variant:?} | {:.1} | {:.1} | {:.1} | {:.1} | {:.0} | {:.0} | {:.2} |",
                m(&|r| r.tx_batch),
                m(&|r| r.rx_batch),
                m(&|r| r.tx_syscalls_per_frame * 1000.0),
                m(&|r| r.rx_syscalls_per_frame * 1000.0),
                m(&|r| r.rx_ring_full as f64),
                m(&|r| r.fill_ring_empty as f64),
                m(&|r| r.per_queue[0] as f64 / r.received.max(1) as f64),
            );
        }
    }
}

/// A UDP/IPv4 frame of `len` bytes (at least 60) from A to `DST:9000`; `flow` picks the
/// source port.
fn template(a: &Host, b: &Host, flow: u16, len: usize) -> Vec<u8> {
    let mut f = vec![0u8; len.max(FRAME_LEN)];
    f[0..6].copy_from_slice(&b.mac);
    f[6..12].copy_from_slice(&a.mac);
    f[12..14].copy_from_slice(&0x0800u16.to_be_bytes());
    let ip_len = (f.len() - 14) as u16;
    f[14] = 0x45;
    f[16..18].copy_from_slice(&ip_len.to_be_bytes());
    f[22] = 64;
    f[23] = 17;
    f[26..30].copy_from_slice(&a.addr.octets());
    f[30..34].copy_from_slice(&DST.octets());
    let checksum = ipv4_checksum(&f[14..34]);
    f[24..26].copy_from_slice(&checksum.to_be_bytes());
    f[34..36].copy_from_slice(&(10000 + flow).to_be_bytes());
    f[36..38].copy_from_slice(&DST_PORT.to_be_bytes());
    f[38..40].copy_from_slice(&(ip_len - 20).to_be_bytes());
    // UDP checksum 0: none (RFC 768).
    f
}

/// RFC 1071 over the IPv4 header.
fn ipv4_checksum(header: &[u8]) -> u16 {
    let mut sum: u32 = header
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

fn is_ours(frame: &[u8]) -> bool {
    frame.len() >= 38
        && frame[12..14] == [8, 0]
        && frame[30..34] == DST.octets()
        && frame[36..38] == DST_PORT.to_be_bytes()
}

type Worker = JoinHandle<(LoopResult, Duration)>;

#[allow(clippy::too_many_arguments)]
fn run_variant(
    variant: Variant,
    a: &Host,
    b: &Host,
    program: &SteerProgram,
    queues: u16,
    frames: u64,
    window: u64,
    limit: Duration,
) -> anyhow::Result<Run> {
    let shape = (queues, frames, window);
    run_variant_sized(variant, a, b, program, shape, FRAME_LEN, limit)
}

/// [`run_variant`] with frames of `frame_len` bytes; `(queues, frames, window)`.
fn run_variant_sized(
    variant: Variant,
    a: &Host,
    b: &Host,
    program: &SteerProgram,
    (queues, frames, window): (u16, u64, u64),
    frame_len: usize,
    limit: Duration,
) -> anyhow::Result<Run> {
    let deadline = Instant::now() + limit;
    let senders_done = Arc::new(AtomicBool::new(false));
    let credit = Arc::new(Credit::new(window));
    let per_queue = frames / u64::from(queues);
    let mut receivers: Vec<Worker> = Vec::new();
    let mut senders: Vec<Worker> = Vec::new();
    {
        let _ns = enter_netns(&b.netns)?;
        for q in 0..queues {
            let done = Arc::clone(&senders_done);
            let credit = Arc::clone(&credit);
            let q32 = u32::from(q);
            receivers.push(match variant {
                Variant::Surge => {
                    let mut port = XdpPort::open(&port_config(&b.ifname, q32))?;
                    program.register_socket(q32, port.fd())?;
                    spawn_measured(move || {
                        surge_receive(&mut port, per_queue, &credit, &done, deadline)
                    })
                }
                Variant::XskRs => {
                    let mut receiver = XskRsReceiver::open(&b.ifname, q32)?;
                    program.register_socket(q32, receiver.fd())?;
                    spawn_measured(move || receiver.run(per_queue, &credit, &done, deadline))
                }
                Variant::AfPacket => {
                    program.unregister_socket(q32)?;
                    let fanout =
                        (queues > 1).then_some(0x5e00 + (std::process::id() as u16 & 0xff));
                    let mut receiver = PacketReceiver::open(&b.ifname, fanout)?;
                    spawn_measured(move || receiver.run(frames, is_ours, &credit, &done, deadline))
                }
            });
        }
    }
    {
        let _ns = enter_netns(&a.netns)?;
        for q in 0..queues {
            let frame = template(a, b, q, frame_len);
            let credit = Arc::clone(&credit);
            let q32 = u32::from(q);
            senders.push(match variant {
                Variant::Surge => {
                    let mut port = XdpPort::open(&port_config(&a.ifname, q32))?;
                    spawn_measured(move || {
                        surge_send(&mut port, &frame, per_queue, &credit, deadline)
                    })
                }
                Variant::XskRs => {
                    let mut sender = XskRsSender::open(&a.ifname, q32)?;
                    spawn_measured(move || sender.run(&frame, per_queue, &credit, deadline))
                }
                Variant::AfPacket => {
                    let mut sender = PacketSender::open(&a.ifname)?;
                    spawn_measured(move || sender.run(&frame, per_queue, &credit, deadline))
                }
            });
        }
    }
    let sent: Vec<(LoopResult, Duration)> = senders
        .into_iter()
        .map(|h| h.join().expect("sender thread"))
        .collect();
    senders_done.store(true, Ordering::Relaxed);
    let received: Vec<(LoopResult, Duration)> = receivers
        .into_iter()
        .map(|h| h.join().expect("receiver thread"))
        .collect();
    let cpu: Duration = sent.iter().chain(&received).map(|(_, cpu)| *cpu).sum();
    let sent: Vec<LoopResult> = sent.into_iter().map(|(r, _)| r).collect();
    let received: Vec<LoopResult> = received.into_iter().map(|(r, _)| r).collect();
    for q in 0..queues {
        program.unregister_socket(u32::from(q))?;
    }
    let sum = |rs: &[LoopResult], f: fn(&LoopResult) -> u64| rs.iter().map(f).sum::<u64>();
    let frames_sent = sum(&sent, |r| r.frames);
    let frames_received = sum(&received, |r| r.frames);
    let mut per_queue = [0u64; 2];
    for (slot, r) in per_queue.iter_mut().zip(&received) {
        *slot = r.frames;
    }
    let start = sent.iter().map(|r| r.started).min().context("no sender")?;
    let end = received
        .iter()
        .map(|r| r.last_frame)
        .max()
        .context("no receiver")?;
    let total_received: u64 = received.iter().map(|r| r.frames).sum();
    let seconds = end.saturating_duration_since(start).as_secs_f64().max(1e-9);
    Ok(Run {
        sent: frames_sent,
        received: total_received,
        pps: total_received as f64 / seconds,
        cpu_ns_per_frame: cpu.as_nanos() as f64 / total_received.max(1) as f64,
        tx_batch: frames_sent as f64 / sum(&sent, |r| r.batches).max(1) as f64,
        rx_batch: frames_received as f64 / sum(&received, |r| r.batches).max(1) as f64,
        tx_syscalls_per_frame: sum(&sent, |r| r.syscalls) as f64 / frames_sent.max(1) as f64,
        rx_syscalls_per_frame: sum(&received, |r| r.syscalls) as f64
            / frames_received.max(1) as f64,
        rx_ring_full: sum(&received, |r| r.kernel.map_or(0, |k| k.rx_ring_full)),
        fill_ring_empty: sum(&received, |r| r.kernel.map_or(0, |k| k.fill_ring_empty)),
        per_queue,
    })
}

fn port_config(ifname: &str, queue: u32) -> PortConfig {
    let mut config = PortConfig::new(ifname, queue);
    // The same sizes as the xsk-rs reference: 4096 frames of 4 KiB, rings of 2048, no hugepages.
    config.pool.frame_count = 4096;
    config.ring_size = 2048;
    config.pool.huge_pages = false;
    config
}

fn surge_send(
    port: &mut XdpPort,
    template: &[u8],
    count: u64,
    credit: &Credit,
    deadline: Instant,
) -> LoopResult {
    let started = Instant::now();
    let mut tx = Burst::new();
    let mut sent = 0u64;
    let mut stalled = None;
    while sent < count && Instant::now() < deadline {
        let allowance = credit.allowance(&mut stalled);
        if allowance == 0 {
            std::thread::yield_now();
        }
        while tx.remaining() > 0
            && sent + (tx.len() as u64) < count
            && (tx.len() as u64) < allowance
        {
            let Some(mut frame) = port.alloc_tx_for(template.len()) else {
                break;
            };
            if let Some(buf) = port.frame_mut(&frame).get_mut(..template.len()) {
                buf.copy_from_slice(template);
            }
            if !frame.set_len(template.len()) || tx.push(frame).is_err() {
                break;
            }
        }
        // Packets that left the burst (`tx_burst` returns descriptors: several per
        // multi-buffer packet).
        let before = tx.len();
        port.tx_burst(&mut tx);
        let n = (before - tx.len()) as u64;
        sent += n;
        credit.sent(n);
    }
    // Let the kernel finish what is on the ring (bounded), then hand back leftovers.
    while port.accounting().tx_ring > 0 && Instant::now() < deadline {
        if port.tx_burst(&mut tx) == 0 {
            std::thread::yield_now();
        }
    }
    port.release(&mut tx);
    let stats = port.stats();
    LoopResult {
        frames: sent,
        started,
        last_frame: Instant::now(),
        batches: stats.tx_batches,
        syscalls: stats.wakeups,
        kernel: stats.kernel,
    }
}

fn surge_receive(
    port: &mut XdpPort,
    expected: u64,
    credit: &Credit,
    senders_done: &AtomicBool,
    deadline: Instant,
) -> LoopResult {
    let started = Instant::now();
    let mut last_frame = started;
    let mut frames = 0u64;
    let mut rx = Burst::new();
    let mut idle_since: Option<Instant> = None;
    while frames < expected && Instant::now() < deadline {
        let n = port.rx_burst(&mut rx);
        if n > 0 {
            frames += n as u64;
            port.release(&mut rx);
            credit.received(n as u64);
            last_frame = Instant::now();
            idle_since = None;
            continue;
        }
        if senders_done.load(Ordering::Relaxed) {
            let since = *idle_since.get_or_insert_with(Instant::now);
            if since.elapsed() > RECEIVE_GRACE {
                break;
            }
        }
        std::thread::yield_now();
    }
    let stats = port.stats();
    LoopResult {
        frames,
        started,
        last_frame,
        batches: stats.rx_batches,
        syscalls: stats.wakeups,
        kernel: stats.kernel,
    }
}

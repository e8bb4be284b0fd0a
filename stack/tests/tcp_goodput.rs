//! Goodput under loss in virtual time (issue 14): 10 ms RTT, a 100 Mbit/s bottleneck with a
//! drop-tail queue of one bandwidth-delay product, random loss of 1 %, 5 % and 10 % and
//! Gilbert-Elliott burst loss on the data path. The default (SACK + RACK-TLP + PRR + CUBIC)
//! against NewReno without SACK recovery (surge's sender before) and against BBR (with SACK +
//! RACK-TLP, paced), on the same seeds.
//!
//! Everything runs on the pair's virtual clock: the numbers are properties of the algorithms,
//! identical on every machine. `cargo test --test tcp_goodput -- --nocapture` prints the table.

mod tcp_support;

use core::time::Duration;
use sha2::{Digest, Sha256};
use surge_stack::tcp::{CongestionAlgorithm, LossRecovery, TcpConfig};
use tcp_support::pair::{GilbertElliott, LinkConfig, Pair, Source, drain_into};

/// Bytes per transfer.
const LEN: u64 = 8 * 1024 * 1024;
/// Seeds per cell.
const SEEDS: [u64; 3] = [1, 2, 3];

/// The bottleneck: 100 Mbit/s (80 ns per byte), 5 ms each way, a 10 ms (one BDP) queue.
fn bottleneck(loss: f64, burst: Option<GilbertElliott>) -> (LinkConfig, LinkConfig) {
    let data = LinkConfig {
        delay: Duration::from_millis(5),
        nanos_per_byte: 80,
        max_queue: Some(Duration::from_millis(10)),
        loss,
        burst,
        ..LinkConfig::default()
    };
    let acks = LinkConfig {
        delay: Duration::from_millis(5),
        ..LinkConfig::default()
    };
    (data, acks)
}

fn buffers(cfg: TcpConfig) -> TcpConfig {
    TcpConfig {
        send_buffer: 1 << 20,
        recv_buffer: 1 << 20,
        ..cfg
    }
}

fn new_default() -> TcpConfig {
    buffers(TcpConfig::default())
}

fn bbr() -> TcpConfig {
    buffers(TcpConfig {
        congestion: CongestionAlgorithm::Bbr,
        ..TcpConfig::default()
    })
}

fn newreno() -> TcpConfig {
    buffers(TcpConfig {
        congestion: CongestionAlgorithm::NewReno,
        loss_recovery: LossRecovery::NewReno,
        ..TcpConfig::default()
    })
}

/// One client-to-server transfer of `LEN` bytes; returns goodput in Mbit/s (virtual time),
/// after checking the bytes arrived intact.
fn goodput(cfg: &TcpConfig, loss: f64, burst: Option<GilbertElliott>, seed: u64) -> f64 {
    transfer(cfg, loss, burst, seed, Duration::ZERO).goodput
}

/// What one transfer measured.
struct Transfer {
    /// Goodput over the whole transfer, Mbit/s.
    goodput: f64,
    /// Goodput from half to nine tenths of the bytes received (after start-up, before the
    /// tail's Nagle and delayed-ACK waits), Mbit/s.
    steady: f64,
    /// Mean and longest queueing delay at the bottleneck from half the bytes on.
    mean_queue: Duration,
    max_queue: Duration,
}

/// As [`goodput`], with timers rounded up to `tick` (an engine's timer wheel); also
/// measures the second half of the transfer.
fn transfer(
    cfg: &TcpConfig,
    loss: f64,
    burst: Option<GilbertElliott>,
    seed: u64,
    tick: Duration,
) -> Transfer {
    let (c2s, s2c) = bottleneck(loss, burst);
    let mut p = Pair::with_links(cfg, cfg, c2s, s2c, seed);
    p.timer_tick = tick;
    p.handshake();
    let mut halfway = None;
    let mut nine_tenths = None;
    let start = p.now;
    let mut src = Source::new(seed, LEN);
    let (mut sent, mut got) = (Sha256::new(), Sha256::new());
    let mut received = 0u64;
    let mut buf = vec![0u8; 64 * 1024];
    for _ in 0..50_000_000u64 {
        src.pump(&mut p.client, |b| sent.update(b));
        let server = p.server.as_mut().expect("server");
        received += drain_into(server, &mut buf, |b| got.update(b)).0 as u64;
        if received == LEN {
            break;
        }
        if halfway.is_none() && received >= LEN / 2 {
            halfway = Some((p.now, received));
            p.c2s.reset_queue_stats();
        }
        if nine_tenths.is_none() && received >= LEN / 10 * 9 {
            nine_tenths = Some((p.now, received));
        }
        assert!(p.step(), "idle before the transfer finished");
        assert!(
            p.now - start < Duration::from_secs(3600),
            "an hour of virtual time"
        );
    }
    assert_eq!(received, LEN);
    assert_eq!(sent.finalize(), got.finalize(), "the bytes arrived intact");
    let secs = (p.now - start).as_secs_f64();
    let (half_at, half_bytes) = halfway.expect("half the transfer passed");
    let (late_at, late_bytes) = nine_tenths.expect("nine tenths passed");
    Transfer {
        goodput: LEN as f64 * 8.0 / secs / 1e6,
        steady: (late_bytes - half_bytes) as f64 * 8.0 / (late_at - half_at).as_secs_f64() / 1e6,
        mean_queue: p.c2s.mean_queue_delay(),
        max_queue: p.c2s.max_queue_delay,
    }
}

struct Row {
    name: &'static str,
    loss: f64,
    burst: Option<GilbertElliott>,
}

/// Mean goodput over the seeds.
fn mean(cfg: &TcpConfig, row: &Row) -> (f64, Vec<f64>) {
    let v: Vec<f64> = SEEDS
        .iter()
        .map(|&s| goodput(cfg, row.loss, row.burst, s))
        .collect();
    (v.iter().sum::<f64>() / v.len() as f64, v)
}

#[test]
fn goodput_under_loss_sack_rack_cubic_beats_newreno() {
    // Bursts: about 1 segment in 100 enters a bad state that lasts 4 segments on average and
    // loses half of them; about 2 % overall.
    let ge = GilbertElliott {
        good_to_bad: 0.01,
        bad_to_good: 0.25,
        loss_good: 0.001,
        loss_bad: 0.5,
    };
    let rows = [
        Row {
            name: "0 %",
            loss: 0.0,
            burst: None,
        },
        Row {
            name: "1 %",
            loss: 0.01,
            burst: None,
        },
        Row {
            name: "5 %",
            loss: 0.05,
            burst: None,
        },
        Row {
            name: "10 %",
            loss: 0.10,
            burst: None,
        },
        Row {
            name: "Gilbert-Elliott",
            loss: 0.0,
            burst: Some(ge),
        },
    ];
    println!(
        "goodput, Mbit/s (virtual time; 100 Mbit/s, 10 ms RTT, 1 BDP queue, {} MiB, seeds {SEEDS:?})",
        LEN >> 20
    );
    println!(
        "| loss | SACK + RACK-TLP + CUBIC | NewReno | ratio | BBR (SACK + RACK-TLP) | BBR / CUBIC |"
    );
    println!("| --- | --- | --- | --- | --- | --- |");
    let mut at5 = None;
    for row in &rows {
        let (new, new_v) = mean(&new_default(), row);
        let (old, old_v) = mean(&newreno(), row);
        let (bbr, bbr_v) = mean(&bbr(), row);
        let name = match row.burst {
            Some(ge) => format!("{} ({:.1} % mean)", row.name, ge.mean_loss() * 100.0),
            None => row.name.to_string(),
        };
        println!(
            "| {name} | {new:.1} | {old:.1} | {:.1}x | {bbr:.1} | {:.1}x |",
            new / old,
            bbr / new
        );
        if row.loss == 0.05 {
            at5 = Some((new_v, old_v, bbr_v));
        }
    }
    // The property the issue asks for: at 5 % loss the new default beats NewReno, seed by seed;
    // and BBR, which does not take random loss for congestion, beats CUBIC.
    let (new_v, old_v, bbr_v) = at5.expect("the 5 % row ran");
    for (((n, o), b), seed) in new_v.iter().zip(&old_v).zip(&bbr_v).zip(SEEDS) {
        assert!(n > o, "seed {seed}: {n:.1} Mbit/s vs NewReno {o:.1}");
        assert!(b > n, "seed {seed}: BBR {b:.1} Mbit/s vs CUBIC {n:.1}");
    }
}

#[test]
fn bbr_fills_the_bottleneck_without_a_standing_queue() {
    // No loss, timers on a 1 ms wheel as in the engine: BBR's pacing keeps the 100 Mbit/s
    // link busy while its model (bandwidth × min RTT, gain 2 on the window, 1 on the pacing
    // rate but for one probing RTT in eight) keeps the queue short, where CUBIC fills the
    // 10 ms drop-tail queue until it loses.
    // Without loss the links draw nothing at random: one seed is every seed.
    let tick = Duration::from_millis(1);
    let seed = SEEDS[0];
    let b = transfer(&bbr(), 0.0, None, seed, tick);
    let c = transfer(&new_default(), 0.0, None, seed, tick);
    println!(
        "seed {seed}: BBR {:.1} Mbit/s ({:.1} in steady state), queue mean {:?} max {:?}; \
         CUBIC {:.1} ({:.1}), queue mean {:?} max {:?}",
        b.goodput,
        b.steady,
        b.mean_queue,
        b.max_queue,
        c.goodput,
        c.steady,
        c.mean_queue,
        c.max_queue
    );
    // 8 MiB includes start-up: the second half shows the steady state.
    assert!(b.goodput > 80.0, "seed {seed}: BBR {:.1} Mbit/s", b.goodput);
    assert!(
        b.steady > 90.0,
        "seed {seed}: BBR {:.1} Mbit/s after start-up on a 100 Mbit/s link",
        b.steady
    );
    assert!(
        b.mean_queue <= Duration::from_millis(5),
        "seed {seed}: BBR kept a standing queue of {:?} (CUBIC fills the 10 ms queue)",
        b.mean_queue
    );
}

#[test]
fn clean_bottleneck_is_filled() {
    // Without random loss, HyStart++ and CUBIC keep the 100 Mbit/s link busy: more than 80 %
    // of it over 8 MiB, including slow start.
    let row = Row {
        name: "0 %",
        loss: 0.0,
        burst: None,
    };
    let (g, _) = mean(&new_default(), &row);
    assert!(g > 80.0, "goodput {g:.1} Mbit/s on a 100 Mbit/s link");
}

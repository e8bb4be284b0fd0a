//! Jumbo frames between surge's engine on AF_XDP and the Linux kernel, in a
//! fresh lab whose veth pair has MTU 9000: the port binds with multi-buffer
//! descriptors (XDP_USE_SG), segments of 8948 bytes (MSS 8960, timestamps on)
//! go each way as three-descriptor chains. A kernel client sends 20 MB through
//! a surge echo server and a surge client 20 MB through a kernel echo server,
//! each SHA-256-checked both ways; the kernel's 8000-byte ping is answered.
//! Root tests. Durations are printed, never asserted.

#[path = "support/lab_engine.rs"]
mod lab_engine;

#[path = "support/lab_transfer.rs"]
mod lab_transfer;

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use lab_engine::{SURGE_IP, assert_no_leaks, engine_on_a, run_engine};
use lab_transfer::{kernel_client_through_surge_echo, surge_client_through_kernel_echo};
use surge_datapath::{Device, XdpPort};
use surge_lab::{HostId, Lab, LabSpec, Topology};
use surge_stack::engine::Engine;

/// Bytes sent each way.
const SIZE: usize = 20_000_000;
/// Bound on each transfer (it takes about a second).
const LIMIT: Duration = Duration::from_secs(120);
/// The lab's MTU.
const MTU: u32 = 9000;

/// A pair lab whose veths have MTU 9000.
fn jumbo_lab(prefix: &str) -> Lab {
    let mut spec = LabSpec::unique(prefix, Topology::Pair);
    spec.mtu = MTU;
    Lab::up(&spec).expect("lab (root tests need root)")
}

/// The multi-buffer checks on an engine that moved jumbo segments both ways.
fn assert_jumbo_segments(engine: &Engine<XdpPort>) {
    let caps = engine.device().caps();
    assert_eq!(caps.mtu, MTU);
    assert!(engine.device().multi_buffer(), "bound with XDP_USE_SG");
    let stats = engine.device().stats();
    // 20 MB in 8948-byte segments is ~2,235 of them; most ride three descriptors.
    assert!(
        stats.rx_multi_buffer > 1000 && stats.tx_multi_buffer > 1000,
        "segments came and went as descriptor chains: {stats:?}"
    );
    assert_eq!(
        (
            stats.rx_chain_no_large_frame,
            stats.rx_chain_too_long,
            stats.rx_chain_bad_part
        ),
        (0, 0, 0),
        "{stats:?}"
    );
    // Their checksums went to the kernel as TX metadata in front of each
    // chain's first descriptor; the lab's veths have TX checksumming off, so
    // A's kernel completed them in software over every fragment and B's
    // kernel verified them (a wrong one would have stalled the transfer).
    assert!(
        stats.tx_checksum_offloaded > 1000,
        "chains carried checksum requests: {stats:?}"
    );
    let kernel = stats.kernel.expect("XDP_STATISTICS");
    assert_eq!(
        kernel.tx_invalid_descs, 0,
        "every chain was valid: {kernel:?}"
    );
    assert_eq!(engine.device().accounting().large_held, 0);
}

#[test]
fn kernel_client_sends_20_megabytes_of_jumbo_segments_through_a_surge_echo_server() {
    let lab = jumbo_lab("eng-jumbo-s");
    let (engine, _program) = engine_on_a(&lab, vec![7]);
    let engine = kernel_client_through_surge_echo(&lab, engine, SIZE, LIMIT, "MTU 9000: ");
    assert_jumbo_segments(&engine);
}

#[test]
fn surge_client_sends_20_megabytes_of_jumbo_segments_through_a_kernel_echo_server() {
    let lab = jumbo_lab("eng-jumbo-c");
    let (engine, _program) = engine_on_a(&lab, vec![]);
    let engine = surge_client_through_kernel_echo(&lab, engine, 9009, SIZE, LIMIT, "MTU 9000: ");
    assert_jumbo_segments(&engine);
}

#[test]
fn the_kernels_8000_byte_ping_is_answered() {
    let lab = jumbo_lab("eng-jumbo-p");
    let (engine, _program) = engine_on_a(&lab, vec![]);
    let stop = Arc::new(AtomicBool::new(false));
    let run = run_engine(engine, Arc::clone(&stop), LIMIT, |_| false);
    // 8000 bytes of payload, not fragmented (-M do): 8028-byte IP packets.
    let ping = lab
        .exec(
            HostId::B,
            &[
                "ping",
                "-c",
                "3",
                "-i",
                "0.2",
                "-W",
                "2",
                "-s",
                "8000",
                "-M",
                "do",
                &SURGE_IP.to_string(),
            ],
        )
        .expect("ping");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (engine, _) = run.join().expect("engine thread");
    assert!(
        ping.status.success(),
        "the jumbo ping was not answered: {}\nengine {:?}\ndevice {:?}",
        String::from_utf8_lossy(&ping.stdout),
        engine.stats(),
        engine.device().stats()
    );
    assert!(
        engine.stats().icmp_echo_replies >= 3,
        "{:?}",
        engine.stats()
    );
    let stats = engine.device().stats();
    assert!(
        stats.rx_multi_buffer >= 3 && stats.tx_multi_buffer >= 3,
        "{stats:?}"
    );
    assert_no_leaks(&engine);
    assert_eq!(engine.device().accounting().large_held, 0);
}

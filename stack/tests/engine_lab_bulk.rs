//! 100 MB each way between surge's engine on AF_XDP and the Linux kernel's stack,
//! in a fresh lab: a kernel client in host B sends 100 MB to a surge echo server
//! and checks the SHA-256 of what comes back; a surge client sends 100 MB to a
//! kernel echo server in host B, which hashes what it received, and checks the
//! SHA-256 of the echo. Root tests. Durations are printed, never asserted.

#[path = "support/lab_engine.rs"]
mod lab_engine;

#[path = "support/lab_transfer.rs"]
mod lab_transfer;

use std::time::Duration;

use lab_engine::engine_on_a;
use lab_transfer::{kernel_client_through_surge_echo, surge_client_through_kernel_echo};
use surge_lab::{Lab, LabSpec, Topology};

/// Bytes sent each way.
const SIZE: usize = 100_000_000;
/// Bound on each transfer (it takes a few seconds).
const LIMIT: Duration = Duration::from_secs(120);

#[test]
fn kernel_client_sends_100_megabytes_through_a_surge_echo_server() {
    let lab = Lab::up(&LabSpec::unique("eng-bulk-s", Topology::Pair))
        .expect("lab (root tests need root)");
    let (engine, _program) = engine_on_a(&lab, vec![7]);
    kernel_client_through_surge_echo(&lab, engine, SIZE, LIMIT, "");
}

#[test]
fn surge_client_sends_100_megabytes_through_a_kernel_echo_server() {
    let lab = Lab::up(&LabSpec::unique("eng-bulk-c", Topology::Pair))
        .expect("lab (root tests need root)");
    let (engine, _program) = engine_on_a(&lab, vec![]);
    surge_client_through_kernel_echo(&lab, engine, 9000, SIZE, LIMIT, "");
}

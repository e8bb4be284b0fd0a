//! The robustness suite: hostile frames (crafted with scapy in host B by
//! `tests/hostile/hostile.py`) against surge's engine on AF_XDP in host A, and
//! the same frames against the Linux kernel of host A, the oracle.
//!
//! For every case the table below says what a good stack answers (the kernel's
//! answer, checked first; where surge differs by design, both are written and
//! the reason given), what surge counts (the drop reason, "handled" when nothing
//! is dropped, or the XDP program's counter when the frame never reaches surge),
//! and that a kernel TCP connection from host B to the target, open through the
//! whole run, still echoes after the case. Cases on an established connection
//! also say whether that connection survived.
//!
//! A root test: CI runs as root, and it fails loudly without it (or without
//! Debian's `python3-scapy`, which `ci/setup` installs).

#[path = "support/lab_engine.rs"]
mod lab_engine;

use core::net::{Ipv4Addr, SocketAddrV4};
use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use lab_engine::{EchoServer, SURGE_IP, SteerPorts, engine_on_a_with, listen, run_engine_with};
use surge_bpf::{Counter, SteerProgram};
use surge_lab::{HostId, Lab, LabSpec, Topology};
use surge_stack::Errno;
use surge_stack::engine::{DropReason, EngineStats};
use surge_stack::table::BindOptions;
use surge_stack::wire::EthernetAddress;

/// Debian's interpreter, where `python3-scapy` lives (not a pyenv shim's).
const PYTHON: &str = "/usr/bin/python3";
const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/hostile/hostile.py");
/// An address of the link that no kernel owns: the hostile frames come from it,
/// so no kernel of host B answers the replies on its own.
const SPOOFED: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 77);
const OPEN_PORT: u16 = 7;
const CLOSED_PORT: u16 = 9;

/// One hostile case and its expected outcome.
struct Case {
    /// The case's name in `hostile.py`.
    name: &'static str,
    /// What the Linux kernel answers (the oracle; checked).
    kernel: &'static str,
    /// What surge answers, when it differs from the kernel by design (the
    /// reason is in the comment next to the case).
    surge: Option<&'static str>,
    /// What surge counts: `drop:<reason>`, `handled` (no drop) or
    /// `xdp:<counter>` (the XDP program leaves the frame to the kernel).
    counted: &'static str,
    /// On an established connection: whether it survives (`alive`/`dead`);
    /// `na` for the others.
    conn: &'static str,
}

const fn case(name: &'static str, kernel: &'static str, counted: &'static str) -> Case {
    Case {
        name,
        kernel,
        surge: None,
        counted,
        conn: "na",
    }
}

const fn est(
    name: &'static str,
    kernel: &'static str,
    counted: &'static str,
    conn: &'static str,
) -> Case {
    Case {
        name,
        kernel,
        surge: None,
        counted,
        conn,
    }
}

const fn differs(
    name: &'static str,
    kernel: &'static str,
    surge: &'static str,
    counted: &'static str,
) -> Case {
    Case {
        name,
        kernel,
        surge: Some(surge),
        counted,
        conn: "na",
    }
}

const CASES: &[Case] = &[
    // Ethernet and ARP (RFC 826, RFC 5227)
    case("arp_request_for_target", "arp_reply", "handled"),
    case("arp_probe_for_target", "arp_reply", "handled"),
    case(
        "arp_request_for_other_address",
        "none",
        "xdp:pass_arp_other",
    ),
    case("arp_truncated", "none", "xdp:pass_malformed"),
    case("arp_bad_hardware_length", "none", "xdp:pass_malformed"),
    // RFC 5227 §2.4 (b): a host that sees its address claimed defends it once
    // with an announcement; Linux leaves conflict detection to user space.
    differs(
        "arp_spoofing_target_address",
        "none",
        "arp_announce",
        "drop:bad_source",
    ),
    case("eth_header_only", "none", "xdp:pass_malformed"),
    case("eth_ipv6_ethertype", "none", "xdp:pass_other_ethertype"),
    case("eth_vlan_tagged_syn", "none", "xdp:pass_other_ethertype"),
    case("eth_full_size_frame", "synack", "handled"),
    // IPv4 (RFC 791, RFC 1122 §3.2.1)
    case("ip_truncated_header", "none", "xdp:pass_malformed"),
    case("ip_version_6", "none", "drop:bad_version"),
    case("ip_header_length_4", "none", "drop:bad_header_len"),
    case("ip_header_length_past_end", "none", "drop:truncated"),
    case("ip_total_length_past_end", "none", "drop:truncated"),
    case("ip_total_length_65535", "none", "drop:truncated"),
    case("ip_total_length_below_header", "none", "drop:bad_length"),
    case("ip_bad_checksum", "none", "drop:bad_checksum"),
    case("ip_padding_after_total_length", "synack", "handled"),
    case("ip_source_broadcast", "none", "drop:bad_source"),
    case("ip_source_multicast", "none", "drop:bad_source"),
    case("ip_source_is_target", "none", "drop:bad_source"),
    case("ip_source_zero", "none", "drop:bad_source"),
    case("ip_unknown_protocol", "icmp_3_2", "drop:unsupported"),
    case("ip_options_nop_eol", "synack", "handled"),
    case("ip_ttl_zero", "synack", "handled"),
    // TCP to a listener and to a closed port (RFC 9293 §3.10.7.1, §3.10.7.2)
    case("tcp_syn_open_port", "synack", "handled"),
    case("tcp_syn_closed_port", "rstack", "drop:tcp_no_connection"),
    case("tcp_ack_closed_port", "rst", "drop:tcp_no_connection"),
    case("tcp_fin_closed_port", "rstack", "drop:tcp_no_connection"),
    case("tcp_data_closed_port", "rst", "drop:tcp_no_connection"),
    case("tcp_rst_closed_port", "none", "drop:tcp_no_connection"),
    case("tcp_syn_fin_open_port", "none", "drop:tcp_bad_flags"),
    case("tcp_syn_rst_open_port", "none", "drop:tcp_rejected"),
    case("tcp_no_flags_open_port", "none", "drop:tcp_rejected"),
    case("tcp_xmas_open_port", "none", "drop:tcp_rejected"),
    case("tcp_ack_open_port", "rst", "handled"),
    case("tcp_syn_ack_open_port", "rst", "handled"),
    case("tcp_bad_checksum", "none", "drop:bad_checksum"),
    case("tcp_data_offset_4", "none", "drop:bad_header_len"),
    case("tcp_data_offset_past_end", "none", "drop:truncated"),
    case("tcp_header_truncated", "none", "drop:truncated"),
    case("tcp_option_length_0", "synack", "handled"),
    case("tcp_option_length_1", "synack", "handled"),
    case("tcp_option_overlong", "synack", "handled"),
    case("tcp_mss_wrong_length", "synack", "handled"),
    case("tcp_window_scale_200", "synack", "handled"),
    case("tcp_syn_with_data", "synack", "handled"),
    // ICMP (RFC 792, RFC 1122 §3.2.2, RFC 5927)
    case("icmp_echo_request", "icmp_0_0", "handled"),
    case("icmp_echo_bad_checksum", "none", "drop:bad_checksum"),
    case("icmp_truncated", "none", "drop:truncated"),
    case("icmp_unknown_type", "none", "drop:unsupported"),
    case("icmp_unreachable_forged_tcp", "none", "drop:icmp_ignored"),
    case(
        "icmp_unreachable_quote_too_short",
        "none",
        "drop:icmp_ignored",
    ),
    // UDP (RFC 768, RFC 1122 §4.1.3.1)
    case("udp_closed_port", "icmp_3_3", "drop:udp_no_port"),
    case(
        "udp_zero_checksum_closed_port",
        "icmp_3_3",
        "drop:udp_no_port",
    ),
    case("udp_bad_checksum", "none", "drop:bad_checksum"),
    case("udp_length_past_end", "none", "drop:truncated"),
    case("udp_length_below_8", "none", "drop:bad_length"),
    case("udp_open_port_echo", "udp", "handled"),
    // Fragments (RFC 791, RFC 815; overlaps drop the datagram as RFC 5722 asks for IPv6)
    case("fragments_syn_in_order", "synack", "handled"),
    case("fragments_syn_reversed", "synack", "handled"),
    case("fragments_syn_three_pieces", "synack", "handled"),
    case("fragments_syn_overlapping", "none", "drop:fragment_overlap"),
    case("fragments_last_only", "none", "handled"),
    case("fragments_udp_closed_port", "icmp_3_3", "drop:udp_no_port"),
    // RFC 1858 §3.2: a first fragment too short for the whole transport header
    // is refused (a filter-evasion device); Linux reassembles it.
    differs(
        "fragments_syn_tiny_first",
        "synack",
        "none",
        "drop:fragment_tiny",
    ),
    // An established connection (RFC 5961, RFC 9293 §3.10.7.4, RFC 5927)
    // RFC 5961 §3.2: a RST out of the window is dropped silently (the
    // connection counts it, not the engine).
    est("est_rst_out_of_window", "none", "handled", "alive"),
    est("est_rst_in_window_not_exact", "ack", "handled", "alive"),
    // The test's own RST after the check, on a connection already gone, hits
    // the listener and is ignored there (counted).
    est("est_rst_exact", "none", "drop:tcp_rejected", "dead"),
    est("est_syn_in_window", "ack", "handled", "alive"),
    est("est_data_beyond_window", "ack", "handled", "alive"),
    est("est_ack_of_unsent_data", "ack", "handled", "alive"),
    est("est_data_in_window", "ack", "handled", "alive"),
    est("est_icmp_frag_needed_bad_seq", "none", "handled", "alive"),
    est(
        "est_icmp_port_unreachable_in_window",
        "none",
        "handled",
        "alive",
    ),
];

/// One result line of `hostile.py run`.
#[derive(Debug)]
struct Outcome {
    answer: String,
    side: String,
    conn: String,
}

/// `hostile.py run` in host B against `target`, driven case by case.
struct Runner {
    child: Child,
    stdin: std::process::ChildStdin,
    stdout: BufReader<std::process::ChildStdout>,
}

impl Runner {
    fn start(lab: &Lab, target: Ipv4Addr) -> Runner {
        let b = lab.b();
        let mac = EthernetAddress(b.mac).to_string();
        let target_mac = EthernetAddress(lab.a().mac).to_string();
        let mut child = lab
            .command(HostId::B, PYTHON)
            .expect("command in B")
            .args([SCRIPT, "run", &b.ifname, &mac])
            .args([SPOOFED.to_string(), target.to_string(), target_mac])
            .args([OPEN_PORT.to_string(), CLOSED_PORT.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("hostile.py (needs /usr/bin/python3 with python3-scapy)");
        let stdin = child.stdin.take().expect("stdin");
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout"));
        let mut line = String::new();
        stdout.read_line(&mut line).expect("ready line");
        assert_eq!(
            line.trim(),
            "ready",
            "hostile.py did not start against {target}"
        );
        Runner {
            child,
            stdin,
            stdout,
        }
    }

    fn run(&mut self, name: &str) -> Outcome {
        writeln!(self.stdin, "{name}").expect("case to hostile.py");
        self.stdin.flush().expect("flush");
        let mut line = String::new();
        self.stdout.read_line(&mut line).expect("result line");
        let fields: Vec<&str> = line.split_whitespace().collect();
        match fields.as_slice() {
            ["result", got, answer, side, conn] if *got == name => Outcome {
                answer: (*answer).to_string(),
                side: (*side).to_string(),
                conn: (*conn).to_string(),
            },
            _ => panic!("hostile.py answered {line:?} to {name}"),
        }
    }
}

impl Drop for Runner {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The change in surge's counters over one case.
fn counted(before: &EngineStats, after: &EngineStats, xdp: (&[u64], &[u64])) -> String {
    let mut drops: Vec<String> = DropReason::ALL
        .iter()
        .filter(|r| after.dropped(**r) > before.dropped(**r))
        .map(|r| format!("drop:{}", r.name()))
        .collect();
    if drops.is_empty() {
        let passed: Vec<String> = Counter::ALL
            .iter()
            .enumerate()
            .filter(|(i, c)| c.name().starts_with("pass") && xdp.1[*i] > xdp.0[*i])
            .map(|(_, c)| format!("xdp:{}", c.name()))
            .collect();
        drops = passed;
    }
    if drops.is_empty() {
        "handled".to_string()
    } else {
        drops.join("+")
    }
}

fn xdp_counters(program: &SteerProgram) -> Vec<u64> {
    let counters = program.counters().expect("XDP counters");
    Counter::ALL.iter().map(|c| counters.get(*c)).collect()
}

#[test]
fn hostile_frames_get_the_answers_of_a_good_stack_and_leave_the_rest_unharmed() {
    let lab =
        Lab::up(&LabSpec::unique("hostile", Topology::Pair)).expect("lab (root tests need root)");
    let (a, b) = (lab.a().clone(), lab.b().clone());
    // The kernel of A reaches the spoofed source through B's MAC, as surge does.
    let out = lab
        .exec(
            HostId::A,
            &[
                "ip",
                "neigh",
                "replace",
                &SPOOFED.to_string(),
                "lladdr",
                &EthernetAddress(b.mac).to_string(),
                "nud",
                "permanent",
                "dev",
                &a.ifname,
            ],
        )
        .expect("ip neigh");
    assert!(out.status.success(), "ip neigh: {out:?}");
    let mut oracle_server = lab
        .command(HostId::A, PYTHON)
        .expect("command in A")
        .args([SCRIPT, "serve", &a.addr.to_string(), &OPEN_PORT.to_string()])
        .stdout(Stdio::piped())
        .spawn()
        .expect("kernel echo server");
    let mut ready = String::new();
    BufReader::new(oracle_server.stdout.as_mut().expect("stdout"))
        .read_line(&mut ready)
        .expect("ready");
    assert_eq!(ready.trim(), "ready");

    // The oracle first: every expected answer is what the Linux kernel does.
    let mut kernel = Runner::start(&lab, a.addr);
    let mut failures = Vec::new();
    for c in CASES {
        let got = kernel.run(c.name);
        if got.answer != c.kernel || got.side != "side_ok" || got.conn != c.conn {
            failures.push(format!(
                "kernel {}: answered {} ({}, conn {}), the table says {} (conn {})",
                c.name, got.answer, got.side, got.conn, c.kernel, c.conn
            ));
        }
    }
    drop(kernel);
    let _ = oracle_server.kill();
    let _ = oracle_server.wait();

    // Then surge, with its counters read around each case.
    let (mut engine, program) = engine_on_a_with(
        &lab,
        SteerPorts {
            tcp: vec![OPEN_PORT],
            udp: vec![OPEN_PORT],
        },
        |config| {
            config
                .static_neighbors
                .push((SPOOFED, EthernetAddress(b.mac)));
        },
    );
    let listener = listen(&mut engine, OPEN_PORT, 128);
    let udp = engine.udp_socket().expect("udp socket");
    engine
        .bind(
            udp,
            SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, OPEN_PORT),
            BindOptions {
                privileged: true,
                ..BindOptions::default()
            },
        )
        .expect("bind udp");
    let stats = Arc::new(Mutex::new(engine.stats()));
    let stop = Arc::new(AtomicBool::new(false));
    let published = Arc::clone(&stats);
    let handle = run_engine_with(
        engine,
        Arc::clone(&stop),
        Duration::from_secs(280),
        EchoServer::new(listener),
        move |e, server| {
            server.step(e);
            let mut buf = [0u8; 2048];
            while let Ok((n, _, from)) = e.recv_from(udp, &mut buf) {
                match e.send_to(udp, &buf[..n], Some(from)) {
                    Ok(_) | Err(Errno::EAGAIN) => {}
                    Err(err) => panic!("udp echo: {err:?}"),
                }
            }
            *published.lock().expect("stats") = e.stats();
            false
        },
    );
    let mut surge = Runner::start(&lab, SURGE_IP);
    let mut table = Vec::new();
    for c in CASES {
        let before = *stats.lock().expect("stats");
        let xdp_before = xdp_counters(&program);
        let got = surge.run(c.name);
        std::thread::sleep(Duration::from_millis(20));
        let after = *stats.lock().expect("stats");
        let xdp_after = xdp_counters(&program);
        let count = counted(&before, &after, (&xdp_before, &xdp_after));
        let want = c.surge.unwrap_or(c.kernel);
        if got.answer != want || got.side != "side_ok" || got.conn != c.conn || count != c.counted {
            failures.push(format!(
                "surge {}: answered {} ({}, conn {}), counted {}; the table says {} (conn {}), {}",
                c.name, got.answer, got.side, got.conn, count, want, c.conn, c.counted
            ));
        }
        table.push(format!("{:40} {:14} {}", c.name, got.answer, count));
    }
    drop(surge);
    stop.store(true, Ordering::Relaxed);
    let (engine, server, _) = handle.join().expect("engine thread");
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}\n\nsurge's answers:\n{}\nengine: {:?}\nserver failed {}",
        failures.len(),
        CASES.len() * 2,
        failures.join("\n"),
        table.join("\n"),
        engine.stats(),
        server.failed,
    );
    assert!(CASES.len() >= 40, "the issue asks for at least 40 kinds");
}

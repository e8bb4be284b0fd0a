//! The steering program's decisions, frame by frame, through
//! `BPF_PROG_TEST_RUN` (root: loading BPF needs it; fails loudly otherwise).
//!
//! With no AF_XDP socket in the XSKMAP, a frame the program would steer to
//! surge falls back to the kernel and is counted as `PassNoSocket`; every
//! other reason has its own counter, so each case checks exactly one counter.

use std::net::Ipv4Addr;

use surge_bpf::{Counter, SteerConfig, SteerProgram, Verdict};

const OURS: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 10);
const SHARED: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
const OTHER: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 99);
const PEER: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 2);

fn program() -> SteerProgram {
    let config = SteerConfig {
        local_addrs: vec![OURS],
        shared_addrs: vec![SHARED],
        tcp_ports: vec![80],
        udp_ports: vec![53],
        ephemeral_ports: Some(40000..=49999),
        icmp: true,
    };
    SteerProgram::load(&config).expect("loading the XDP program (needs root)")
}

fn ethernet(ethertype: u16) -> Vec<u8> {
    let mut frame = vec![0x02, 0, 0, 0, 0, 0x0a, 0x02, 0, 0, 0, 0, 0x02];
    frame.extend(ethertype.to_be_bytes());
    frame
}

fn arp(target: Ipv4Addr) -> Vec<u8> {
    let mut frame = ethernet(0x0806);
    frame.extend([0, 1, 8, 0, 6, 4, 0, 1, 2, 0, 0, 0, 0, 2]);
    frame.extend(PEER.octets());
    frame.extend([0; 6]);
    frame.extend(target.octets());
    frame
}

fn ipv4(dst: Ipv4Addr, protocol: u8, l4: &[u8]) -> Vec<u8> {
    let mut frame = ethernet(0x0800);
    let total = (20 + l4.len()) as u16;
    frame.extend([0x45, 0]);
    frame.extend(total.to_be_bytes());
    frame.extend([0, 1, 0, 0, 64, protocol, 0, 0]);
    frame.extend(PEER.octets());
    frame.extend(dst.octets());
    frame.extend(l4);
    frame
}

fn ports(dst_port: u16) -> Vec<u8> {
    let mut l4 = 12345u16.to_be_bytes().to_vec();
    l4.extend(dst_port.to_be_bytes());
    l4.extend([0; 16]);
    l4
}

/// Runs `frame` and checks it was passed to the kernel for exactly `reason`.
fn expect(program: &SteerProgram, frame: &[u8], reason: Counter) {
    expect_counted(program, frame, &[reason]);
}

/// Runs `frame` and checks it was passed to the kernel, moving exactly the
/// counters `reasons`.
fn expect_counted(program: &SteerProgram, frame: &[u8], reasons: &[Counter]) {
    let before = program.counters().expect("counters");
    let verdict = program.test_run(frame).expect("test run");
    let after = program.counters().expect("counters");
    assert_eq!(verdict, Verdict::Pass, "{reasons:?}");
    for counter in Counter::ALL {
        let delta = after.get(counter) - before.get(counter);
        let want = u64::from(reasons.contains(&counter));
        assert_eq!(
            delta, want,
            "frame {frame:02x?}: counter {counter:?} moved by {delta}, expected {reasons:?}"
        );
    }
}

#[test]
fn arp_is_ours_only_for_our_exclusive_addresses() {
    let p = program();
    expect(&p, &arp(OURS), Counter::PassNoSocket);
    expect_counted(
        &p,
        &arp(OTHER),
        &[Counter::PassArpOther, Counter::ArpCopied],
    );
    expect_counted(
        &p,
        &arp(SHARED),
        &[Counter::PassArpShared, Counter::ArpCopied],
    );
    let mut not_ethernet = arp(OURS);
    not_ethernet[15] = 6; // htype 6
    expect(&p, &not_ethernet, Counter::PassMalformed);
    expect(&p, &arp(OURS)[..24], Counter::PassMalformed);
}

#[test]
fn arp_passed_to_the_kernel_is_copied_to_the_arp_seen_ring() {
    let p = program();
    let mut seen = p.arp_seen().expect("mapping the arp_seen ring");
    assert_eq!(seen.drain(|_| panic!("nothing yet")), 0);
    // A gratuitous ARP (sender = target = the peer), a request for another
    // host, a request for the shared address: each copied, first 42 bytes.
    let mut gratuitous = arp(PEER);
    gratuitous.extend([0xee; 18]); // Ethernet padding: not copied
    let frames = [gratuitous, arp(OTHER), arp(SHARED)];
    for frame in &frames {
        assert_eq!(p.test_run(frame).expect("test run"), Verdict::Pass);
    }
    // A probe (sender 0.0.0.0) teaches nothing and is not copied; ARP for our
    // exclusive address comes to surge itself and is not copied either.
    let mut probe = arp(OTHER);
    probe[28..32].copy_from_slice(&[0; 4]);
    expect(&p, &probe, Counter::PassArpOther);
    expect(&p, &arp(OURS), Counter::PassNoSocket);
    let mut got = Vec::new();
    assert_eq!(seen.drain(|record| got.push(record.to_vec())), 3);
    for (record, frame) in got.iter().zip(&frames) {
        assert_eq!(record[..], frame[..42], "the Ethernet header and ARP body");
    }
    assert_eq!(seen.drain(|_| panic!("drained already")), 0);
    assert_eq!(seen.delivered(), 3);
}

#[test]
fn a_full_arp_seen_ring_loses_copies_not_frames() {
    let p = program();
    let mut seen = p.arp_seen().expect("mapping the arp_seen ring");
    // 64 KiB of 48-byte records (42 + an 8-byte header, rounded to 8): 1365
    // fit; the rest are counted as lost and still passed to the kernel.
    let frame = arp(OTHER);
    for _ in 0..2000 {
        assert_eq!(p.test_run(&frame).expect("test run"), Verdict::Pass);
    }
    let counters = p.counters().expect("counters");
    let (copied, lost) = (
        counters.get(Counter::ArpCopied),
        counters.get(Counter::ArpCopyLost),
    );
    assert_eq!(counters.get(Counter::PassArpOther), 2000);
    assert_eq!(copied + lost, 2000);
    assert!(lost > 0, "the ring filled: {copied} copied");
    assert_eq!(seen.drain(|r| assert_eq!(r, &frame[..42])) as u64, copied);
    // Drained, it takes copies again.
    expect_counted(&p, &frame, &[Counter::PassArpOther, Counter::ArpCopied]);
    assert_eq!(seen.drain(|_| {}), 1);
}

#[test]
fn ipv4_to_a_shared_address_is_ours_for_owned_ports_ephemeral_range_and_icmp() {
    let p = program();
    expect(&p, &ipv4(SHARED, 6, &ports(80)), Counter::PassNoSocket);
    expect(&p, &ipv4(SHARED, 17, &ports(53)), Counter::PassNoSocket);
    expect(&p, &ipv4(SHARED, 6, &ports(45000)), Counter::PassNoSocket);
    expect(&p, &ipv4(SHARED, 17, &ports(40000)), Counter::PassNoSocket);
    expect(&p, &ipv4(SHARED, 17, &ports(49999)), Counter::PassNoSocket);
    expect(&p, &ipv4(SHARED, 6, &ports(81)), Counter::PassPortNotOwned);
    expect(&p, &ipv4(SHARED, 17, &ports(80)), Counter::PassPortNotOwned);
    expect(
        &p,
        &ipv4(SHARED, 6, &ports(50000)),
        Counter::PassPortNotOwned,
    );
    expect(&p, &ipv4(SHARED, 6, &ports(22)), Counter::PassPortNotOwned);
    expect(&p, &ipv4(OTHER, 6, &ports(80)), Counter::PassOtherAddr);
    expect(
        &p,
        &ipv4(SHARED, 1, &[8, 0, 0, 0, 0, 1, 0, 1]),
        Counter::PassNoSocket,
    );
    expect(&p, &ipv4(SHARED, 47, &[0; 8]), Counter::PassProtoNotOwned);
    p.set_options(Some(40000..=49999), false).expect("options");
    expect(
        &p,
        &ipv4(SHARED, 1, &[8, 0, 0, 0, 0, 1, 0, 1]),
        Counter::PassProtoNotOwned,
    );
    p.set_options(None, false).expect("options");
    expect(
        &p,
        &ipv4(SHARED, 6, &ports(45000)),
        Counter::PassPortNotOwned,
    );
    p.remove_port(6, 80).expect("remove");
    expect(&p, &ipv4(SHARED, 6, &ports(80)), Counter::PassPortNotOwned);
    p.remove_addr(SHARED).expect("remove");
    expect(&p, &ipv4(SHARED, 17, &ports(53)), Counter::PassOtherAddr);
}

#[test]
fn every_ipv4_frame_to_an_exclusive_address_is_ours() {
    let p = program();
    // Closed ports too: surge answers them (RST, ICMP port unreachable).
    for (protocol, port) in [(6, 80), (6, 81), (17, 53), (17, 80), (6, 50000)] {
        expect(
            &p,
            &ipv4(OURS, protocol, &ports(port)),
            Counter::PassNoSocket,
        );
    }
    // Fragments, other protocols and malformed headers: surge reassembles or
    // counts the drop by reason (no socket here, so the fallback counts).
    let mut fragment = ipv4(OURS, 6, &ports(80));
    fragment[21] = 0x10;
    expect(&p, &fragment, Counter::PassNoSocket);
    expect(&p, &ipv4(OURS, 47, &[0; 8]), Counter::PassNoSocket);
    let mut short_ihl = ipv4(OURS, 6, &ports(80));
    short_ihl[14] = 0x44;
    expect(&p, &short_ihl, Counter::PassNoSocket);
    // Shorter than an IPv4 header: the address cannot be read.
    expect(&p, &ipv4(OURS, 6, &[])[..14 + 19], Counter::PassMalformed);
    p.set_options(None, false).expect("options");
    expect(
        &p,
        &ipv4(OURS, 1, &[8, 0, 0, 0, 0, 1, 0, 1]),
        Counter::PassNoSocket,
    );
}

#[test]
fn other_ethertypes_and_fragments_and_malformed_headers_to_a_shared_address_go_to_the_kernel() {
    let p = program();
    expect(&p, &ethernet(0x86dd), Counter::PassOtherEthertype);
    let mut fragment = ipv4(SHARED, 6, &ports(80));
    fragment[20] = 0x20; // MF
    expect(&p, &fragment, Counter::PassFragment);
    let mut later_fragment = ipv4(SHARED, 6, &ports(80));
    later_fragment[21] = 0x10; // offset 16
    expect(&p, &later_fragment, Counter::PassFragment);
    let mut short_ihl = ipv4(SHARED, 6, &ports(80));
    short_ihl[14] = 0x44;
    expect(&p, &short_ihl, Counter::PassMalformed);
    let mut version6 = ipv4(SHARED, 6, &ports(80));
    version6[14] = 0x65;
    expect(&p, &version6, Counter::PassMalformed);
    let mut long_ihl = ipv4(SHARED, 6, &[]);
    long_ihl[14] = 0x4f; // 60-byte header, frame ends after 20
    expect(&p, &long_ihl, Counter::PassMalformed);
    expect(
        &p,
        &ipv4(SHARED, 6, &ports(80))[..14 + 10],
        Counter::PassMalformed,
    );
    expect(
        &p,
        &ipv4(SHARED, 6, &ports(80))[..14 + 22],
        Counter::PassMalformed,
    );
}

#[test]
fn frames_shorter_than_ethernet_never_crash() {
    let p = program();
    for len in 0..14 {
        let frame = vec![0u8; len];
        match p.test_run(&frame) {
            // The kernel refuses XDP test runs below ETH_HLEN.
            Err(_) => {}
            Ok(verdict) => assert_eq!(verdict, Verdict::Pass, "len {len}"),
        }
    }
}

#[test]
fn random_frames_are_always_passed_or_steered_never_dropped() {
    let p = program();
    // A small deterministic generator: the same frames on every run.
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for i in 0..500 {
        let len = 14 + (next() % 120) as usize;
        let mut frame: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        // Bias half of them towards plausible ARP/IPv4 to our address.
        if i % 2 == 0 {
            frame[12..14].copy_from_slice(if i % 4 == 0 { &[8, 0] } else { &[8, 6] });
            if len >= 34 {
                frame[30..34].copy_from_slice(&OURS.octets());
            }
        }
        let verdict = p.test_run(&frame).expect("test run");
        assert_eq!(
            verdict,
            Verdict::Pass,
            "no socket registered: everything is passed"
        );
    }
    let counters = p.counters().expect("counters");
    assert_eq!(counters.passed(), 500);
    assert_eq!(counters.redirected(), 0);
}

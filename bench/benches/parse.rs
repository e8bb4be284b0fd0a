//! Whole-frame parse of an Ethernet/IPv4/TCP frame with timestamps and 12 bytes
//! of data (captured from the Linux stack): surge's `parse_frame` verifying every
//! checksum and trusting offload, side by side with smoltcp's layer-by-layer parse
//! of the same frame.
//!
//!   cargo bench -p surge-bench --bench parse -- --warm-up-time 1 --measurement-time 3

use criterion::{Criterion, black_box};
use surge_stack::wire::ChecksumMode;
use surge_stack::wire::frame::{Network, Transport, parse_frame};

/// 198.18.0.1:39444 -> 198.18.0.2:7777 [P.] with NOP NOP TS, "hello surge\n".
#[rustfmt::skip]
const FRAME: [u8; 78] = [
    0x02, 0x00, 0x00, 0x00, 0x00, 0x02, 0x02, 0x00, 0x00, 0x00, 0x00, 0x01, 0x08, 0x00,
    0x45, 0x00, 0x00, 0x40, 0xbe, 0xff, 0x40, 0x00, 0x40, 0x06, 0x00, 0x00, 0xc6, 0x12, 0x00, 0x01, 0xc6, 0x12, 0x00, 0x02,
    0x9a, 0x14, 0x1e, 0x61, 0xcd, 0x24, 0x5a, 0x4e, 0x94, 0x90, 0x2f, 0x8e, 0x80, 0x18, 0x00, 0x3f, 0x00, 0x00, 0x00, 0x00,
    0x01, 0x01, 0x08, 0x0a, 0x78, 0xa1, 0x50, 0x39, 0x1a, 0x0b, 0x4c, 0x2e,
    b'h', b'e', b'l', b'l', b'o', b' ', b's', b'u', b'r', b'g', b'e', b'\n',
];

/// The frame with valid IPv4 and TCP checksums filled in.
fn frame() -> Vec<u8> {
    use surge_stack::wire::{Ipv4Packet, tcp};
    let mut f = FRAME.to_vec();
    Ipv4Packet::new_unchecked(&mut f[14..34]).fill_checksum();
    let src = core::net::Ipv4Addr::new(198, 18, 0, 1);
    let dst = core::net::Ipv4Addr::new(198, 18, 0, 2);
    tcp::fill_checksum(&mut f[34..], src, dst).expect("segment length is valid");
    f
}

fn surge_parse(bytes: &[u8], mode: ChecksumMode) -> usize {
    match parse_frame(bytes, mode) {
        Ok(f) => match f.network {
            Network::Ipv4 {
                transport: Transport::Tcp { header, payload },
                ..
            } => {
                header.seq_number as usize
                    + payload.len()
                    + header.options.timestamp.map_or(0, |t| t.0 as usize)
            }
            _ => 0,
        },
        Err(_) => 0,
    }
}

fn smoltcp_parse(bytes: &[u8], caps: &smoltcp::phy::ChecksumCapabilities) -> usize {
    use smoltcp::wire::*;
    let Ok(eth) = EthernetFrame::new_checked(bytes) else {
        return 0;
    };
    let Ok(_eth_repr) = EthernetRepr::parse(&eth) else {
        return 0;
    };
    let Ok(ip) = Ipv4Packet::new_checked(eth.payload()) else {
        return 0;
    };
    let Ok(ip_repr) = Ipv4Repr::parse(&ip, caps) else {
        return 0;
    };
    let Ok(tcp) = TcpPacket::new_checked(ip.payload()) else {
        return 0;
    };
    let Ok(tcp_repr) = TcpRepr::parse(
        &tcp,
        &IpAddress::Ipv4(ip_repr.src_addr),
        &IpAddress::Ipv4(ip_repr.dst_addr),
        caps,
    ) else {
        return 0;
    };
    tcp_repr.seq_number.0 as u32 as usize
        + tcp_repr.payload.len()
        + tcp_repr.timestamp.map_or(0, |t| t.tsval as usize)
}

fn bench_parse(c: &mut Criterion) {
    let bytes = frame();
    assert_ne!(
        surge_parse(&bytes, ChecksumMode::Verify),
        0,
        "the frame parses with checksums verified"
    );
    let verify = smoltcp::phy::ChecksumCapabilities::default();
    let trust = smoltcp::phy::ChecksumCapabilities::ignored();
    assert_eq!(
        smoltcp_parse(&bytes, &verify),
        surge_parse(&bytes, ChecksumMode::Verify)
    );

    let mut group = c.benchmark_group("parse-eth-ipv4-tcp-ts");
    group.bench_function("surge-verify", |b| {
        b.iter(|| surge_parse(black_box(&bytes), ChecksumMode::Verify))
    });
    group.bench_function("surge-trust", |b| {
        b.iter(|| surge_parse(black_box(&bytes), ChecksumMode::Trust))
    });
    group.bench_function("smoltcp-verify", |b| {
        b.iter(|| smoltcp_parse(black_box(&bytes), &verify))
    });
    group.bench_function("smoltcp-trust", |b| {
        b.iter(|| smoltcp_parse(black_box(&bytes), &trust))
    });
    group.finish();
}

/// Interleaved best-of-rounds ns per parse, which loaded machines disturb less
/// than criterion's statistics.
fn print_interleaved(bytes: &[u8]) {
    let verify = smoltcp::phy::ChecksumCapabilities::default();
    let trust = smoltcp::phy::ChecksumCapabilities::ignored();
    let cases: [(&str, &dyn Fn() -> usize); 4] = [
        ("surge-verify", &|| {
            surge_parse(black_box(bytes), ChecksumMode::Verify)
        }),
        ("surge-trust", &|| {
            surge_parse(black_box(bytes), ChecksumMode::Trust)
        }),
        ("smoltcp-verify", &|| {
            smoltcp_parse(black_box(bytes), &verify)
        }),
        ("smoltcp-trust", &|| smoltcp_parse(black_box(bytes), &trust)),
    ];
    let mut best = [f64::MAX; 4];
    for _round in 0..300 {
        for (i, (_, f)) in cases.iter().enumerate() {
            let start = std::time::Instant::now();
            for _ in 0..2000 {
                black_box(f());
            }
            best[i] = best[i].min(start.elapsed().as_nanos() as f64 / 2000.0);
        }
    }
    println!("\nEthernet/IPv4/TCP+timestamps frame parse, ns, interleaved best of 300 rounds");
    for ((name, _), ns) in cases.iter().zip(best) {
        println!("{name:>16} {ns:>8.1}");
    }
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    bench_parse(&mut c);
    c.final_summary();
    print_interleaved(&frame());
}

//! Internet checksum throughput: surge's AVX2, SSE2 and scalar paths (and the
//! dispatched `sum`) side by side with smoltcp's and the `internet-checksum`
//! crate's, on the same L1-resident buffers, in one run. Ends with two tables of
//! GB/s and ratios: criterion's medians, and an interleaved best-of-rounds
//! measurement (every implementation timed in turn, round after round, keeping
//! each one's fastest round), which shared, loaded machines disturb far less.
//!
//!   cargo bench -p surge-bench --bench checksum -- --warm-up-time 1 --measurement-time 3

use criterion::{BenchmarkId, Criterion, Throughput, black_box};
use std::path::PathBuf;
use surge_stack::checksum::{self, SumPath};

const SIZES: [usize; 4] = [64, 576, 1500, 9000];

/// The implementations compared, by criterion function name.
const IMPLS: [&str; 6] = [
    "surge-avx2",
    "surge-sse2",
    "surge-scalar",
    "surge-dispatch",
    "smoltcp",
    "internet-checksum",
];

fn buffer(len: usize) -> Vec<u8> {
    let mut x: u32 = 0x9e37_79b9;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            x as u8
        })
        .collect()
}

/// smoltcp 0.12 keeps `wire::ip::checksum` crate-private; ICMPv4's
/// `verify_checksum` is exactly `checksum::data(buffer) == !0`, so it measures
/// the same code with one compare added.
fn smoltcp_verify(data: &[u8]) -> bool {
    smoltcp::wire::Icmpv4Packet::new_unchecked(data).verify_checksum()
}

fn bench_checksum(c: &mut Criterion) {
    let mut group = c.benchmark_group("checksum");
    for size in SIZES {
        let data = buffer(size);
        // Every implementation agrees on this buffer before anything is timed.
        let want = checksum::scalar::sum_reference(&data);
        for path in SumPath::ALL {
            assert_eq!(
                checksum::sum_with(path, &data).unwrap_or(want),
                want,
                "{path:?}"
            );
        }
        assert_eq!(
            u16::from_be_bytes(internet_checksum::checksum(&data)),
            !want
        );
        assert_eq!(smoltcp_verify(&data), want == 0xffff);

        group.throughput(Throughput::Bytes(size as u64));
        for (name, path) in [
            ("surge-avx2", SumPath::Avx2),
            ("surge-sse2", SumPath::Sse2),
            ("surge-scalar", SumPath::Scalar),
        ] {
            if path.is_available() {
                group.bench_with_input(BenchmarkId::new(name, size), &data, |b, d| {
                    b.iter(|| checksum::sum_with(path, black_box(d)))
                });
            } else {
                eprintln!("{name}: this CPU cannot run it; not measured");
            }
        }
        group.bench_with_input(BenchmarkId::new("surge-dispatch", size), &data, |b, d| {
            b.iter(|| checksum::sum(black_box(d)))
        });
        group.bench_with_input(BenchmarkId::new("smoltcp", size), &data, |b, d| {
            b.iter(|| smoltcp_verify(black_box(d)))
        });
        group.bench_with_input(
            BenchmarkId::new("internet-checksum", size),
            &data,
            |b, d| b.iter(|| internet_checksum::checksum(black_box(d))),
        );
    }
    group.finish();
}

/// criterion's output directory: `$CRITERION_HOME`, else `<target>/criterion`,
/// where this binary lives in `<target>/<profile>/deps/`.
fn criterion_dir() -> Option<PathBuf> {
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        return Some(PathBuf::from(home));
    }
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        return Some(PathBuf::from(dir).join("criterion"));
    }
    Some(
        std::env::current_exe()
            .ok()?
            .ancestors()
            .nth(3)?
            .join("criterion"),
    )
}

/// Median time per iteration in ns from criterion's `new/estimates.json` (the
/// median, not the mean: this machine is shared and outliers are common).
fn median_ns(dir: &std::path::Path, name: &str, size: usize) -> Option<f64> {
    let path = dir
        .join("checksum")
        .join(name)
        .join(size.to_string())
        .join("new/estimates.json");
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()?;
    json["median"]["point_estimate"].as_f64()
}

fn print_table() {
    let Some(dir) = criterion_dir() else { return };
    print_header("checksum throughput, GB/s, criterion medians of this run (higher is better)");
    for size in SIZES {
        let ns: Vec<Option<f64>> = IMPLS.iter().map(|n| median_ns(&dir, n, size)).collect();
        print_row(size, &ns);
    }
}

/// One implementation under test.
type SumFn = fn(&[u8]) -> u16;

/// The implementations as plain functions, in `IMPLS` order (`None`: the CPU
/// cannot run it).
fn impl_fns() -> Vec<Option<SumFn>> {
    let avail = |p: SumPath| p.is_available();
    vec![
        avail(SumPath::Avx2).then_some(
            (|d: &[u8]| checksum::sum_with(SumPath::Avx2, d).unwrap_or(0)) as fn(&[u8]) -> u16,
        ),
        avail(SumPath::Sse2).then_some(
            (|d: &[u8]| checksum::sum_with(SumPath::Sse2, d).unwrap_or(0)) as fn(&[u8]) -> u16,
        ),
        Some(|d: &[u8]| checksum::sum_with(SumPath::Scalar, d).unwrap_or(0)),
        Some(checksum::sum),
        Some(|d: &[u8]| u16::from(smoltcp_verify(d))),
        Some(|d: &[u8]| u16::from_be_bytes(internet_checksum::checksum(d))),
    ]
}

/// Best-of-rounds ns per call for every implementation, interleaved.
fn interleaved_best(data: &[u8]) -> Vec<Option<f64>> {
    let fns = impl_fns();
    let iters = (200_000 / data.len().max(64)).max(20) as u32;
    let mut best = vec![f64::MAX; fns.len()];
    for _round in 0..300 {
        for (i, f) in fns.iter().enumerate() {
            let Some(f) = f else { continue };
            let start = std::time::Instant::now();
            for _ in 0..iters {
                black_box(f(black_box(data)));
            }
            best[i] = best[i].min(start.elapsed().as_nanos() as f64 / f64::from(iters));
        }
    }
    fns.iter().zip(best).map(|(f, b)| f.map(|_| b)).collect()
}

fn print_row(size: usize, ns: &[Option<f64>]) {
    print!("{size:>6}");
    for t in ns {
        match t {
            Some(t) => print!(" {:>17.2}", size as f64 / t),
            None => print!(" {:>17}", "-"),
        }
    }
    let ratio = |a: Option<f64>, b: Option<f64>| match (a, b) {
        (Some(a), Some(b)) => format!("{:.2}x", b / a),
        _ => "-".to_string(),
    };
    println!(" {:>12} {:>12}", ratio(ns[0], ns[2]), ratio(ns[0], ns[4]));
}

fn print_header(title: &str) {
    println!("\n{title}");
    print!("{:>6}", "bytes");
    for name in IMPLS {
        print!(" {name:>17}");
    }
    println!(" {:>12} {:>12}", "avx2/scalar", "avx2/smoltcp");
}

fn main() {
    let mut c = Criterion::default().configure_from_args();
    bench_checksum(&mut c);
    c.final_summary();
    print_table();
    print_header("checksum throughput, GB/s, interleaved best of 300 rounds (higher is better)");
    for size in SIZES {
        print_row(size, &interleaved_best(&buffer(size)));
    }
}

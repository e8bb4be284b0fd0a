//! Checksum tests: RFC examples, every path against the reference, pieces and
//! incremental updates.

use super::*;
use proptest::prelude::*;

/// A deterministic byte pattern (xorshift) for large buffers.
fn pattern(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

#[test]
fn rfc1071_example() {
    // RFC 1071 §3: 00 01 f2 03 f4 f5 f6 f7 -> sum ddf2.
    let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
    for path in SumPath::ALL {
        if let Some(s) = sum_with(path, &data) {
            assert_eq!(s, 0xddf2, "{path:?}");
        }
    }
    assert_eq!(scalar::sum_reference(&data), 0xddf2);
    assert_eq!(sum(&data), 0xddf2);
}

#[test]
fn known_ipv4_header_checksum() {
    // A classic example header whose checksum field is b861.
    let mut hdr = [
        0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00, 0xc0, 0xa8, 0x00,
        0x01, 0xc0, 0xa8, 0x00, 0xc7,
    ];
    assert_eq!(checksum(&hdr), 0xb861);
    hdr[10..12].copy_from_slice(&0xb861u16.to_be_bytes());
    assert_eq!(
        sum(&hdr),
        0xffff,
        "a header with its checksum sums to all ones"
    );
}

#[test]
fn odd_lengths_and_empty() {
    assert_eq!(sum(&[]), 0);
    assert_eq!(sum(&[0xab]), 0xab00);
    assert_eq!(sum(&[0x12, 0x34, 0x56]), 0x1234 + 0x5600);
    assert_eq!(sum(&[0xff; 2]), 0xffff);
    // Carries wrap around: ffff + 0001 = 0001 (one's complement).
    assert_eq!(sum(&[0xff, 0xff, 0x00, 0x01]), 0x0001);
}

#[test]
fn dispatcher_picks_an_available_path() {
    let path = selected_path();
    assert!(path.is_available());
    if SumPath::Avx2.is_available() {
        assert_eq!(path, SumPath::Avx2);
    }
    #[cfg(target_arch = "x86_64")]
    assert!(SumPath::Sse2.is_available(), "SSE2 is baseline on x86_64");
}

#[test]
fn every_path_on_all_ones_large() {
    // Worst case for carries: every byte 0xff, the largest jumbo size.
    let data = vec![0xffu8; 9216];
    for path in SumPath::ALL {
        if let Some(s) = sum_with(path, &data) {
            assert_eq!(s, scalar::sum_reference(&data), "{path:?}");
        }
    }
}

#[test]
fn every_path_on_buffers_spanning_several_simd_blocks() {
    // SIMD lane accumulators are widened every 512 KiB (AVX2) / 1 MiB (SSE2):
    // cross those boundaries with the extreme words (all ones, all zeros) and
    // with random data.
    for (len, fill) in [
        (3 << 20 | 37, Some(0xffu8)),
        ((1 << 20) + 64, Some(0)),
        ((5 << 19) + 3, None),
    ] {
        let data = match fill {
            Some(b) => vec![b; len],
            None => pattern(len, 99),
        };
        let want = scalar::sum_reference(&data);
        for path in SumPath::ALL {
            if let Some(s) = sum_with(path, &data) {
                assert_eq!(s, want, "{path:?} len {len}");
            }
        }
    }
}

#[test]
fn every_length_and_alignment_exhaustive_small() {
    let buf = pattern(64 + 300, 7);
    for offset in 0..64 {
        for len in 0..=300 {
            let data = &buf[offset..offset + len];
            let want = scalar::sum_reference(data);
            for path in SumPath::ALL {
                if let Some(s) = sum_with(path, data) {
                    assert_eq!(s, want, "{path:?} offset {offset} len {len}");
                }
            }
        }
    }
}

#[test]
fn pseudo_header_matches_bytes() {
    let src = Ipv4Addr::new(198, 18, 0, 1);
    let dst = Ipv4Addr::new(198, 18, 0, 2);
    let bytes = [198, 18, 0, 1, 198, 18, 0, 2, 0, 6, 0x05, 0xdc];
    assert_eq!(
        pseudo_header_ipv4(src, dst, 6, 1500),
        scalar::sum_reference(&bytes)
    );
}

proptest! {
    #[test]
    fn pseudo_header_is_the_sum_of_its_words(src: u32, dst: u32, protocol: u8, length: u16) {
        let (s, d) = (src.to_be_bytes(), dst.to_be_bytes());
        let mut bytes = vec![s[0], s[1], s[2], s[3], d[0], d[1], d[2], d[3], 0, protocol];
        bytes.extend(length.to_be_bytes());
        let got = pseudo_header_ipv4(Ipv4Addr::from(src), Ipv4Addr::from(dst), protocol, length);
        prop_assert_eq!(got, scalar::sum_reference(&bytes));
    }
}

#[test]
fn incremental_update_rfc1624_example() {
    // RFC 1624 §4: HC = 0xdd2f, m = 0x5555 -> m' = 0x3285 gives HC' = 0x0000.
    assert_eq!(update(0xdd2f, 0x5555, 0x3285), 0x0000);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn paths_equal_reference(len in 0usize..=9216, offset in 0usize..64, seed: u64) {
        let buf = pattern(len + 64, seed);
        let data = &buf[offset..offset + len];
        let want = scalar::sum_reference(data);
        for path in SumPath::ALL {
            if let Some(s) = sum_with(path, data) {
                prop_assert_eq!(s, want, "{:?}", path);
            }
        }
        prop_assert_eq!(sum(data), want);
    }

    #[test]
    fn pieces_equal_contiguous(len in 0usize..=3000, cuts in proptest::collection::vec(0usize..=3000, 0..5), seed: u64) {
        let data = pattern(len, seed);
        let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c.min(len)).collect();
        cuts.sort_unstable();
        let mut pieces: Vec<&[u8]> = Vec::new();
        let mut start = 0;
        for c in cuts {
            pieces.push(&data[start..c]);
            start = c;
        }
        pieces.push(&data[start..]);
        prop_assert_eq!(sum_pieces(&pieces), scalar::sum_reference(&data));
    }

    #[test]
    fn incremental_equals_recompute(len in 1usize..=200, seed: u64, at in 0usize..100, new: u16, new32: u32) {
        let mut data = pattern(len * 2 + 4, seed);
        let at = (at % (len + 1)) * 2; // an even offset of a 16-bit field
        let before = checksum(&data);
        let old = u16::from_be_bytes([data[at], data[at + 1]]);
        data[at..at + 2].copy_from_slice(&new.to_be_bytes());
        let after = checksum(&data);
        // Equal as one's-complement numbers (0x0000 and 0xffff both mean zero).
        let got = update(before, old, new);
        prop_assert!(got == after || (got | after == 0xffff && got & after == 0), "{got:04x} vs {after:04x}");

        // A 32-bit field at an even offset.
        let old32 = u32::from_be_bytes([data[at], data[at + 1], data[at + 2], data[at + 3]]);
        let before = checksum(&data);
        data[at..at + 4].copy_from_slice(&new32.to_be_bytes());
        let after = checksum(&data);
        let got = update_u32(before, old32, new32);
        prop_assert!(got == after || (got | after == 0xffff && got & after == 0), "{got:04x} vs {after:04x}");
    }
}

#[test]
fn fold16_of_extremes() {
    assert_eq!(fold16(0), 0);
    assert_eq!(fold16(u64::MAX), 0xffff);
    assert_eq!(fold16(0xffff), 0xffff);
    assert_eq!(fold16(0x1_0000), 1);
    assert_eq!(fold16(0xffff_ffff), 0xffff);
    assert_eq!(fold16(0x1_0000_0000), 1);
    assert_eq!(fold16(0xffff_0000_ffff_0000), 0xffff);
    // Every carry of every fold step at once.
    assert_eq!(fold16(0xffff_ffff_ffff_fffe), 0xfffe);
}

/// The carries an add-with-carry chain can produce, in and out of every block
/// and tail size: all-ones data on top of an all-ones (or almost) accumulator.
#[test]
fn add_native_carries_on_all_ones() {
    let data = [0xffu8; 300];
    for len in 0..=300 {
        let want = scalar::sum_reference(&data[..len]);
        for acc in [0, 1, u64::MAX, u64::MAX - 1, 0xffff] {
            let got = fold_native(scalar::add_native(acc, &data[..len]));
            let acc_sum = fold_native(acc);
            assert_eq!(got, add(acc_sum, want), "len {len} acc {acc:#x}");
            assert_eq!(fold_native(add_native(acc, &data[..len])), got);
        }
    }
}

#[test]
fn add_native_zero_only_for_zero() {
    assert_eq!(scalar::add_native(0, &[0; 97]), 0);
    assert_ne!(scalar::add_native(0, &[0xff; 2]), 0);
    assert_ne!(scalar::add_native(u64::MAX, &[0x00, 0x01]), 0);
}

#[test]
fn verifies_a_header_with_its_checksum() {
    let mut hdr = [
        0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00, 0xc0, 0xa8, 0x00,
        0x01, 0xc0, 0xa8, 0x00, 0xc7,
    ];
    assert!(!verifies(add_native(0, &hdr)));
    hdr[10..12].copy_from_slice(&0xb861u16.to_be_bytes());
    assert!(verifies(add_native(0, &hdr)));
    // All zeros sum to positive zero, which does not verify.
    assert!(!verifies(add_native(0, &[0; 20])));
}

proptest! {
    #[test]
    fn add_native_equals_reference(len in 0usize..=600, offset in 0usize..16, seed: u64, acc: u64) {
        let buf = pattern(len + 16, seed);
        let data = &buf[offset..offset + len];
        let want = add(fold_native(acc), scalar::sum_reference(data));
        prop_assert_eq!(fold_native(scalar::add_native(acc, data)), want);
        prop_assert_eq!(fold_native(add_native(acc, data)), want);
    }

    #[test]
    fn pseudo_header_native_forms_are_the_sum_of_its_words(src: u32, dst: u32, protocol: u8, length: u16) {
        // `pseudo_header_ipv4` is the folded native sum: both native forms (the
        // addresses as two words, and as the 8 bytes of an IPv4 header) against the
        // RFC 1071 reference over the pseudo-header's bytes.
        let (s, d) = (src.to_be_bytes(), dst.to_be_bytes());
        let mut bytes = vec![s[0], s[1], s[2], s[3], d[0], d[1], d[2], d[3], 0, protocol];
        bytes.extend(length.to_be_bytes());
        let want = scalar::sum_reference(&bytes);
        let (a, b) = (Ipv4Addr::from(src), Ipv4Addr::from(dst));
        prop_assert_eq!(fold_native(pseudo_header_ipv4_native(a, b, protocol, length)), want);
        let addresses = [s[0], s[1], s[2], s[3], d[0], d[1], d[2], d[3]];
        prop_assert_eq!(fold_native(pseudo_header_ipv4_native_at(&addresses, protocol, length)), want);
    }
}

//! SIMD one's-complement sums for x86_64 (SSE2 and AVX2): the only `unsafe` in
//! `surge-stack`, fenced in this module.
//!
//! Both paths defer carries (RFC 1071 §2 (C)): `pmaddwd` against a vector of ones
//! adds adjacent 16-bit words into 32-bit lanes in one instruction. It multiplies
//! *signed* words, so every word is biased by -32768 first (xor 0x8000) and the
//! bias is added back once at the end. Lanes are widened to 64 bits every block,
//! long before they could overflow. Four independent accumulators hide the
//! latency. Unaligned loads are used throughout, so any alignment works; the last
//! bytes go through the scalar tail.
#![allow(unsafe_code)]

use super::{SumFn, SumPath};

/// True when the CPU has SSE2 (always on x86_64).
pub(super) fn has_sse2() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("sse2")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// True when the CPU has AVX2.
pub(super) fn has_avx2() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// The fastest SIMD path this CPU supports, as an unfolded native-word sum
/// function, or `None` when there is none. Called once by the dispatcher.
pub(super) fn select() -> Option<(SumPath, SumFn)> {
    #[cfg(target_arch = "x86_64")]
    {
        if has_avx2() {
            return Some((SumPath::Avx2, x86::avx2_checked_native));
        }
        if has_sse2() {
            return Some((SumPath::Sse2, x86::sse2_checked_native));
        }
    }
    None
}

/// Folded sum by the SSE2 path; `None` when the CPU lacks SSE2.
pub(super) fn sum_sse2(data: &[u8]) -> Option<u16> {
    #[cfg(target_arch = "x86_64")]
    {
        if has_sse2() {
            return Some(super::fold_native(x86::sse2_checked_native(data)));
        }
    }
    let _ = data;
    None
}

/// Folded sum by the AVX2 path; `None` when the CPU lacks AVX2.
pub(super) fn sum_avx2(data: &[u8]) -> Option<u16> {
    #[cfg(target_arch = "x86_64")]
    {
        if has_avx2() {
            return Some(super::fold_native(x86::avx2_checked_native(data)));
        }
    }
    let _ = data;
    None
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::super::scalar::add_native;
    use std::arch::x86_64::*;

    /// SSE2 sum, after the caller's feature check.
    ///
    /// This is a safe `fn` because it re-checks the feature: the check is a
    /// relaxed load of a cached flag, cheaper than one loop iteration.
    pub(super) fn sse2_checked_native(data: &[u8]) -> u64 {
        if std::arch::is_x86_feature_detected!("sse2") {
            // Safety: the CPU supports SSE2, checked just above.
            unsafe { sse2_native(data) }
        } else {
            super::super::scalar::sum_native(data)
        }
    }

    /// AVX2 sum, after the caller's feature check (see [`sse2_checked_native`]).
    pub(super) fn avx2_checked_native(data: &[u8]) -> u64 {
        if std::arch::is_x86_feature_detected!("avx2") {
            // Safety: the CPU supports AVX2, checked just above.
            unsafe { avx2_native(data) }
        } else {
            super::super::scalar::sum_native(data)
        }
    }

    /// Bias that maps an unsigned 16-bit word `w` to the signed `w - 32768`.
    const BIAS: i16 = i16::MIN;

    /// Adds one accumulator may take before the i32 lanes are widened and reset.
    /// Each `madd` adds a value in `[-65536, 65534]` to a lane, so a lane holds
    /// 2^15 - 1 adds; blocks are sized so no accumulator gets more than 16384
    /// (+3 for the AVX2 remainder vectors).
    const MAX_VECTORS_PER_LANE: usize = 16_384;

    /// The true sum of native words from a biased lane total: every madd lane
    /// summed two words each biased by -32768.
    fn unbias(lane_total: i64, words: u64) -> u64 {
        // words * 32768 restores the bias; the result is the exact (non-negative)
        // sum of the words.
        (lane_total + (words as i64) * 32_768) as u64
    }

    #[target_feature(enable = "sse2")]
    fn sse2_native(data: &[u8]) -> u64 {
        // RFC 1071 §2 (C): defer carries. `pmaddwd` against ones adds adjacent
        // words pairwise into 32-bit lanes in one instruction; it is signed, so
        // each word is first biased by -32768 (xor 0x8000) and the bias is
        // removed once at the end.
        let bias = _mm_set1_epi16(BIAS);
        let ones = _mm_set1_epi16(1);
        let mut total: i64 = 0;
        let mut words: u64 = 0;
        let mut rest = data;
        while rest.len() >= 64 {
            let take = (rest.len() / 64).min(MAX_VECTORS_PER_LANE) * 64;
            let (block, tail) = rest.split_at(take);
            rest = tail;
            let mut acc = [_mm_setzero_si128(); 4];
            for chunk in block.chunks_exact(64) {
                for (i, acc) in acc.iter_mut().enumerate() {
                    let lane = &chunk[i * 16..i * 16 + 16];
                    // Safety: `lane` is 16 readable bytes; loadu has no alignment need.
                    let v = unsafe { _mm_loadu_si128(lane.as_ptr().cast()) };
                    *acc = _mm_add_epi32(*acc, _mm_madd_epi16(_mm_xor_si128(v, bias), ones));
                }
            }
            for acc in acc {
                let mut out = [0i32; 4];
                // Safety: `out` is 16 writable bytes; storeu has no alignment need.
                unsafe { _mm_storeu_si128(out.as_mut_ptr().cast(), acc) };
                total += out.iter().map(|&x| i64::from(x)).sum::<i64>();
            }
            words += (take / 2) as u64;
        }
        add_native(unbias(total, words), rest)
    }

    #[target_feature(enable = "avx2")]
    fn avx2_native(data: &[u8]) -> u64 {
        // The SSE2 scheme on 256-bit vectors: bias, `vpmaddwd` against ones,
        // four independent i32 accumulators, unbias once.
        let bias = _mm256_set1_epi16(BIAS);
        let ones = _mm256_set1_epi16(1);
        let mut total = _mm256_setzero_si256(); // 4 x i64
        let mut words: u64 = 0;
        let mut rest = data;
        while rest.len() >= 32 {
            let take = (rest.len() / 32).min(MAX_VECTORS_PER_LANE) * 32;
            let (block, tail) = rest.split_at(take);
            rest = tail;
            let mut acc = [_mm256_setzero_si256(); 4];
            let mut chunks = block.chunks_exact(128);
            for chunk in &mut chunks {
                for (i, acc) in acc.iter_mut().enumerate() {
                    let lane = &chunk[i * 32..i * 32 + 32];
                    // Safety: `lane` is 32 readable bytes; loadu has no alignment need.
                    let v = unsafe { _mm256_loadu_si256(lane.as_ptr().cast()) };
                    *acc =
                        _mm256_add_epi32(*acc, _mm256_madd_epi16(_mm256_xor_si256(v, bias), ones));
                }
            }
            for (i, lane) in chunks.remainder().chunks_exact(32).enumerate() {
                // Safety: `lane` is 32 readable bytes; loadu has no alignment need.
                let v = unsafe { _mm256_loadu_si256(lane.as_ptr().cast()) };
                acc[i] =
                    _mm256_add_epi32(acc[i], _mm256_madd_epi16(_mm256_xor_si256(v, bias), ones));
            }
            // Four lanes together could exceed i32: widen before adding them.
            total = _mm256_add_epi64(total, widen_add(acc));
            words += (take / 2) as u64;
        }
        let mut out = [0i64; 4];
        // Safety: `out` is 32 writable bytes; storeu has no alignment need.
        unsafe { _mm256_storeu_si256(out.as_mut_ptr().cast(), total) };
        add_native(unbias(out.iter().sum(), words), rest)
    }

    /// Sums four vectors of 8 x i32 into 4 x i64 without overflow.
    #[target_feature(enable = "avx2")]
    fn widen_add(acc: [__m256i; 4]) -> __m256i {
        let mut total = _mm256_setzero_si256();
        for a in acc {
            let lo = _mm256_cvtepi32_epi64(_mm256_castsi256_si128(a));
            let hi = _mm256_cvtepi32_epi64(_mm256_extracti128_si256::<1>(a));
            total = _mm256_add_epi64(total, _mm256_add_epi64(lo, hi));
        }
        total
    }
}

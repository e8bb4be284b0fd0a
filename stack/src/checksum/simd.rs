//! SIMD one's-complement sums for x86_64 (SSE2 and AVX2): the only `unsafe` in
//! `surge-stack`, fenced in this module.
//!
//! Both paths use the scalar algorithm, vectorised: every 64-bit lane is split into
//! its two 32-bit halves, which are added into 64-bit lane accumulators, so no
//! carry is ever lost (RFC 1071 §2 (C), deferred carries). Four independent
//! accumulators hide the add latency. Unaligned loads are used throughout, so any
//! alignment of the buffer works.
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
    use super::super::scalar::sum_tail;
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

    #[target_feature(enable = "sse2")]
    fn sse2_native(data: &[u8]) -> u64 {
        let mask = _mm_set1_epi64x(0xffff_ffff);
        let mut acc = [_mm_setzero_si128(); 4];
        let mut blocks = data.chunks_exact(64);
        for block in &mut blocks {
            for (i, acc) in acc.iter_mut().enumerate() {
                let lane = &block[i * 16..i * 16 + 16];
                // Safety: `lane` is 16 readable bytes; loadu has no alignment need.
                let v = unsafe { _mm_loadu_si128(lane.as_ptr().cast()) };
                let lo = _mm_and_si128(v, mask);
                let hi = _mm_srli_epi64::<32>(v);
                *acc = _mm_add_epi64(*acc, _mm_add_epi64(lo, hi));
            }
        }
        let mut total = _mm_add_epi64(_mm_add_epi64(acc[0], acc[1]), _mm_add_epi64(acc[2], acc[3]));
        let mut rest = blocks.remainder().chunks_exact(16);
        for lane in &mut rest {
            // Safety: `lane` is 16 readable bytes; loadu has no alignment need.
            let v = unsafe { _mm_loadu_si128(lane.as_ptr().cast()) };
            total = _mm_add_epi64(
                total,
                _mm_add_epi64(_mm_and_si128(v, mask), _mm_srli_epi64::<32>(v)),
            );
        }
        let mut out = [0u64; 2];
        // Safety: `out` is 16 writable bytes; storeu has no alignment need.
        unsafe { _mm_storeu_si128(out.as_mut_ptr().cast(), total) };
        // Each lane holds < 2^33 per 16 bytes summed, far below u64 overflow for
        // any buffer that fits in memory; fold the two lanes with end-around carry.
        let (s, c) = out[0].overflowing_add(out[1]);
        sum_tail(rest.remainder(), s + u64::from(c))
    }

    #[target_feature(enable = "avx2")]
    fn avx2_native(data: &[u8]) -> u64 {
        let mask = _mm256_set1_epi64x(0xffff_ffff);
        let mut acc = [_mm256_setzero_si256(); 4];
        let mut blocks = data.chunks_exact(128);
        for block in &mut blocks {
            for (i, acc) in acc.iter_mut().enumerate() {
                let lane = &block[i * 32..i * 32 + 32];
                // Safety: `lane` is 32 readable bytes; loadu has no alignment need.
                let v = unsafe { _mm256_loadu_si256(lane.as_ptr().cast()) };
                let lo = _mm256_and_si256(v, mask);
                let hi = _mm256_srli_epi64::<32>(v);
                *acc = _mm256_add_epi64(*acc, _mm256_add_epi64(lo, hi));
            }
        }
        let mut total = _mm256_add_epi64(
            _mm256_add_epi64(acc[0], acc[1]),
            _mm256_add_epi64(acc[2], acc[3]),
        );
        let mut rest = blocks.remainder().chunks_exact(32);
        for lane in &mut rest {
            // Safety: `lane` is 32 readable bytes; loadu has no alignment need.
            let v = unsafe { _mm256_loadu_si256(lane.as_ptr().cast()) };
            total = _mm256_add_epi64(
                total,
                _mm256_add_epi64(_mm256_and_si256(v, mask), _mm256_srli_epi64::<32>(v)),
            );
        }
        let mut out = [0u64; 4];
        // Safety: `out` is 32 writable bytes; storeu has no alignment need.
        unsafe { _mm256_storeu_si256(out.as_mut_ptr().cast(), total) };
        // Lanes are far below 2^62 for any real buffer: plain adds cannot overflow.
        sum_tail(rest.remainder(), out[0] + out[1] + out[2] + out[3])
    }
}

//! AVX2 kernel: the [`lanes`](super::lanes) pipeline on 8 nonces per 256-bit register.
//! AVX2 has no rotate, so each rotation is two shifts and an OR.

use core::arch::x86_64::*;

use super::job::Job;
use super::lanes::{Lanes, scan_lanes};

/// Eight 32-bit lanes. Only created inside [`scan`], which requires AVX2.
#[derive(Clone, Copy)]
pub(crate) struct Avx2(__m256i);

macro_rules! ror {
    ($x:expr, $n:literal) => {
        _mm256_or_si256(
            _mm256_srli_epi32::<$n>($x),
            _mm256_slli_epi32::<{ 32 - $n }>($x),
        )
    };
}

#[inline(always)]
fn xor(a: __m256i, b: __m256i) -> __m256i {
    // SAFETY: reached only from `scan`, compiled with AVX2 and called after detecting it.
    unsafe { _mm256_xor_si256(a, b) }
}

/// Byte-reverses each 32-bit lane.
#[inline(always)]
fn bswap(x: __m256i) -> __m256i {
    // SAFETY: as for `xor`.
    unsafe {
        let m = _mm256_set_epi8(
            12, 13, 14, 15, 8, 9, 10, 11, 4, 5, 6, 7, 0, 1, 2, 3, 12, 13, 14, 15, 8, 9, 10, 11, 4,
            5, 6, 7, 0, 1, 2, 3,
        );
        _mm256_shuffle_epi8(x, m)
    }
}

// SAFETY (all methods): reached only from `scan`, compiled with AVX2 and called after the
// feature was detected.
impl Lanes for Avx2 {
    const N: u32 = 8;
    #[inline(always)]
    fn splat(x: u32) -> Self {
        Avx2(unsafe { _mm256_set1_epi32(x as i32) })
    }
    #[inline(always)]
    fn add(self, o: Self) -> Self {
        Avx2(unsafe { _mm256_add_epi32(self.0, o.0) })
    }
    #[inline(always)]
    fn bsig0(self) -> Self {
        let x = self.0;
        Avx2(unsafe { xor(xor(ror!(x, 2), ror!(x, 13)), ror!(x, 22)) })
    }
    #[inline(always)]
    fn bsig1(self) -> Self {
        let x = self.0;
        Avx2(unsafe { xor(xor(ror!(x, 6), ror!(x, 11)), ror!(x, 25)) })
    }
    #[inline(always)]
    fn ssig0(self) -> Self {
        let x = self.0;
        Avx2(unsafe { xor(xor(ror!(x, 7), ror!(x, 18)), _mm256_srli_epi32::<3>(x)) })
    }
    #[inline(always)]
    fn ssig1(self) -> Self {
        let x = self.0;
        Avx2(unsafe { xor(xor(ror!(x, 17), ror!(x, 19)), _mm256_srli_epi32::<10>(x)) })
    }
    #[inline(always)]
    fn ch(e: Self, f: Self, g: Self) -> Self {
        Avx2(xor(g.0, unsafe { _mm256_and_si256(e.0, xor(f.0, g.0)) }))
    }
    #[inline(always)]
    fn maj(a: Self, b: Self, c: Self) -> Self {
        Avx2(xor(b.0, unsafe {
            _mm256_and_si256(xor(a.0, b.0), xor(b.0, c.0))
        }))
    }
    #[inline(always)]
    fn nonce_words(base: u32) -> Self {
        let n = unsafe {
            _mm256_add_epi32(
                _mm256_set1_epi32(base as i32),
                _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),
            )
        };
        Avx2(bswap(n))
    }
    #[inline(always)]
    fn le_mask(self, top: u32) -> u32 {
        unsafe {
            let x = bswap(self.0);
            let le = _mm256_cmpeq_epi32(_mm256_min_epu32(x, _mm256_set1_epi32(top as i32)), x);
            _mm256_movemask_ps(_mm256_castsi256_ps(le)) as u32
        }
    }
}

/// # Safety
/// The CPU must support AVX2.
#[target_feature(enable = "avx2")]
pub(crate) unsafe fn scan(j: &Job, first: u32, count: u32, out: &mut Vec<u32>) {
    scan_lanes::<Avx2>(j, first, count, out);
}

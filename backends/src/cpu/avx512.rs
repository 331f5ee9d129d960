//! AVX-512 kernel: the [`lanes`](super::lanes) pipeline on 16 nonces per 512-bit register,
//! using the native rotate and three-input logic (`vpternlogd`) so `Σ`, `σ`, `Ch` and `Maj`
//! each cost one logic instruction after their rotations. Needs only AVX-512F.

use core::arch::x86_64::*;

use super::job::Job;
use super::lanes::{Lanes, scan_lanes};

/// Sixteen 32-bit lanes. Only created inside functions that require AVX-512F.
#[derive(Clone, Copy)]
pub(crate) struct Avx512(pub(crate) __m512i);

/// `vpternlogd` truth tables: bit `(a << 2) | (b << 1) | c` of the immediate is the result.
const XOR3: i32 = 0x96;
const CHOOSE: i32 = 0xca;
const MAJORITY: i32 = 0xe8;

/// Byte-reverses each 32-bit lane with AVX-512F only (no `vpshufb`, which is AVX-512BW).
#[inline(always)]
fn bswap(x: __m512i) -> __m512i {
    // SAFETY: reached only from functions compiled with AVX-512F, called after detecting it.
    unsafe {
        _mm512_ternarylogic_epi32::<CHOOSE>(
            _mm512_set1_epi32(0xff00_ff00_u32 as i32),
            _mm512_ror_epi32::<8>(x),
            _mm512_ror_epi32::<24>(x),
        )
    }
}

// SAFETY (all methods): reached only from functions compiled with AVX-512F and called after
// the feature was detected.
impl Lanes for Avx512 {
    const N: u32 = 16;
    #[inline(always)]
    fn splat(x: u32) -> Self {
        Avx512(unsafe { _mm512_set1_epi32(x as i32) })
    }
    #[inline(always)]
    fn add(self, o: Self) -> Self {
        Avx512(unsafe { _mm512_add_epi32(self.0, o.0) })
    }
    #[inline(always)]
    fn bsig0(self) -> Self {
        let x = self.0;
        Avx512(unsafe {
            _mm512_ternarylogic_epi32::<XOR3>(
                _mm512_ror_epi32::<2>(x),
                _mm512_ror_epi32::<13>(x),
                _mm512_ror_epi32::<22>(x),
            )
        })
    }
    #[inline(always)]
    fn bsig1(self) -> Self {
        let x = self.0;
        Avx512(unsafe {
            _mm512_ternarylogic_epi32::<XOR3>(
                _mm512_ror_epi32::<6>(x),
                _mm512_ror_epi32::<11>(x),
                _mm512_ror_epi32::<25>(x),
            )
        })
    }
    #[inline(always)]
    fn ssig0(self) -> Self {
        let x = self.0;
        Avx512(unsafe {
            _mm512_ternarylogic_epi32::<XOR3>(
                _mm512_ror_epi32::<7>(x),
                _mm512_ror_epi32::<18>(x),
                _mm512_srli_epi32::<3>(x),
            )
        })
    }
    #[inline(always)]
    fn ssig1(self) -> Self {
        let x = self.0;
        Avx512(unsafe {
            _mm512_ternarylogic_epi32::<XOR3>(
                _mm512_ror_epi32::<17>(x),
                _mm512_ror_epi32::<19>(x),
                _mm512_srli_epi32::<10>(x),
            )
        })
    }
    #[inline(always)]
    fn ch(e: Self, f: Self, g: Self) -> Self {
        Avx512(unsafe { _mm512_ternarylogic_epi32::<CHOOSE>(e.0, f.0, g.0) })
    }
    #[inline(always)]
    fn maj(a: Self, b: Self, c: Self) -> Self {
        Avx512(unsafe { _mm512_ternarylogic_epi32::<MAJORITY>(a.0, b.0, c.0) })
    }
    #[inline(always)]
    fn nonce_words(base: u32) -> Self {
        let n = unsafe {
            _mm512_add_epi32(
                _mm512_set1_epi32(base as i32),
                _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
            )
        };
        Avx512(bswap(n))
    }
    #[inline(always)]
    fn le_mask(self, top: u32) -> u32 {
        unsafe {
            u32::from(_mm512_cmple_epu32_mask(
                bswap(self.0),
                _mm512_set1_epi32(top as i32),
            ))
        }
    }
}

/// # Safety
/// The CPU must support AVX-512F.
#[target_feature(enable = "avx512f")]
pub(crate) unsafe fn scan(j: &Job, first: u32, count: u32, out: &mut Vec<u32>) {
    scan_lanes::<Avx512>(j, first, count, out);
}

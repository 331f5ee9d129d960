//! Hybrid kernel: SHA-NI runs the rounds, AVX-512 computes the message schedules.
//!
//! Measured on Zen 4: `sha256rnds2` issues once a cycle but `sha256msg2` only every other
//! cycle on the same unit, so in a plain SHA-NI kernel the schedule takes about 40 % of the SHA
//! unit's time. Here the SHA unit does nothing but rounds; the schedule words (plus `K`) for
//! 16 nonces are computed one nonce per 32-bit lane with AVX-512 and stored as per-nonce
//! pairs `[W[2p]+K[2p], W[2p+1]+K[2p+1]]`, exactly the operand `sha256rnds2` takes, so each
//! SHA round pair costs one 8-byte load.
//!
//! The two units work on different batches of 16 nonces at once (software pipelining). Each
//! loop iteration `i` has two segments:
//! - X: SHA-NI hashes block 2 of batch `i` (table `t1`, made in the previous iteration) and
//!   writes its digests to `dig`; meanwhile AVX-512 reads `dig` (batch `i-1`'s digests, read at
//!   the start of the segment, before they are overwritten) and builds the second hash's
//!   table `t2`.
//! - Y: SHA-NI runs the second hash of batch `i-1` from `t2`; meanwhile AVX-512 builds `t1`
//!   for batch `i+1`.
//!
//! Within a segment the SHA steps and the vector steps are interleaved in program order, so
//! the out-of-order window always holds both kinds of work.
//!
//! On Zen 4 the two compete for execution ports more than one would hope (`sha256rnds2`
//! shares a pipe with the AVX-512 rotates), so the gain over plain AVX-512 is about 8 %,
//! not the 1.7x the two units' separate throughputs would allow.
//!
//! On Intel it is a trap: `sha256rnds2` exists only in legacy SSE encoding, and an Intel Xeon
//! with SHA-NI and AVX-512 charged an SSE/AVX state transition for it with the AVX-512 upper
//! state dirty, about 65 kH/s per thread against AVX-512's 20 MH/s. That is why the default
//! kernel is chosen by timing each one at start (`Kernel::fastest`), not by feature flags.

// Lane loops index several per-lane arrays in lockstep; iterators would obscure that.
#![allow(clippy::needless_range_loop)]

use core::arch::x86_64::*;

use super::avx512::Avx512;
use super::job::{IV, Job, K, KW_BLOCK2, KW_HASH2};
use super::lanes::{Lanes, block2_w, hash2_w};
use super::shani::ShaConsts;

/// Nonces per batch: one AVX-512 register.
const N: usize = 16;
/// SHA-NI lanes advanced together: `sha256rnds2` has latency 4 and throughput 1.
const SHA_LANES: usize = 4;
/// Round pairs per hash and nonce (block 2 starts at round 2; hash 2 stops after round 61).
const PAIRS: usize = 31;
/// SHA steps per segment: one round pair of `SHA_LANES` nonces each.
const SHA_STEPS: usize = N / SHA_LANES * PAIRS;
/// Vector steps per segment: one table row each (rows that are the same for every nonce
/// are skipped but still counted, which spreads the work evenly enough).
const T1_ROWS: usize = 32;
const T2_ROWS: usize = 31;

/// The 64-bit slot that `unpacklo/unpackhi` followed by two stores give vector lane `j`.
const fn slot(j: usize) -> usize {
    (if j % 4 < 2 { 0 } else { N / 2 }) + 2 * (j / 4) + j % 2
}

/// Where word `i` (`a..h`) of a digest lies in its slot of `dig`: `abef` is stored as
/// `[f, e, b, a]`, then `cdgh` as `[h, g, d, c]`.
const DIGEST_POS: [u32; 8] = [3, 2, 7, 6, 1, 0, 5, 4];

#[repr(C, align(64))]
struct Tables {
    /// Block 2 of hash 1, row `p` = round pair `p` (rows 1 and 8..=31 used).
    t1: [[u64; N]; T1_ROWS],
    /// Hash 2, row `p` = round pair `p` (rows 0..=3 and 8..=30 used).
    t2: [[u64; N]; T2_ROWS],
    /// Hash-1 digests by slot.
    dig: [[u32; 8]; N],
    /// Hash-2 digest word 7 by slot.
    h7: [u32; N],
}

// SAFETY (every `unsafe` block below): reached only from `scan`, which is compiled with
// `sha,sse2,ssse3,sse4.1,avx512f` and called after detecting them. Pointers are to fields of
// `Tables`, 64-byte aligned, in bounds by construction.

/// Stores the pairs `(a[j], b[j])` of every lane into `row`, lane `j` at `slot(j)`.
#[inline(always)]
fn store_pairs(row: &mut [u64; N], a: Avx512, b: Avx512) {
    unsafe {
        let p = row.as_mut_ptr() as *mut __m512i;
        _mm512_store_si512(p, _mm512_unpacklo_epi32(a.0, b.0));
        _mm512_store_si512(p.add(1), _mm512_unpackhi_epi32(a.0, b.0));
    }
}

#[inline(always)]
fn pair(lo: u32, hi: u32) -> __m128i {
    unsafe { _mm_setr_epi32(lo as i32, hi as i32, 0, 0) }
}

/// `SHA_LANES` SHA-NI lanes.
struct ShaLanes {
    abef: [__m128i; SHA_LANES],
    cdgh: [__m128i; SHA_LANES],
}

impl ShaLanes {
    #[inline(always)]
    fn new(abef: __m128i, cdgh: __m128i) -> Self {
        ShaLanes {
            abef: [abef; SHA_LANES],
            cdgh: [cdgh; SHA_LANES],
        }
    }

    #[inline(always)]
    fn rnds2(&mut self, msgk: [__m128i; SHA_LANES]) {
        for l in 0..SHA_LANES {
            self.cdgh[l] = unsafe { _mm_sha256rnds2_epu32(self.cdgh[l], self.abef[l], msgk[l]) };
        }
        core::mem::swap(&mut self.abef, &mut self.cdgh);
    }
}

struct Pipeline<'a> {
    job: &'a Job,
    c: ShaConsts,
    tab: Tables,
}

impl Pipeline<'_> {
    /// `msgk` of round pair `row` for the SHA lanes of group `g`, from `table`.
    #[inline(always)]
    fn load_pairs(table: &[[u64; N]], row: usize, g: usize) -> [__m128i; SHA_LANES] {
        core::array::from_fn(|l| unsafe {
            _mm_loadl_epi64(&table[row][g * SHA_LANES + l] as *const u64 as *const __m128i)
        })
    }

    /// SHA step `k` of segment X: round pair `k % 31` + 1 of block 2 for lane group `k / 31`.
    #[inline(always)]
    fn sha1_step(&mut self, s: &mut ShaLanes, k: usize) {
        let (g, p) = (k / PAIRS, k % PAIRS + 1);
        if p == 1 {
            *s = ShaLanes::new(self.c.abef2, self.c.cdgh2);
        }
        let msgk = match p {
            2..=7 => [pair(KW_BLOCK2[2 * p], KW_BLOCK2[2 * p + 1]); SHA_LANES],
            _ => Self::load_pairs(&self.tab.t1, p, g),
        };
        s.rnds2(msgk);
        if p == PAIRS {
            for l in 0..SHA_LANES {
                unsafe {
                    let d = self.tab.dig[g * SHA_LANES + l].as_mut_ptr() as *mut __m128i;
                    _mm_store_si128(d, _mm_add_epi32(s.abef[l], self.c.mid_abef));
                    _mm_store_si128(d.add(1), _mm_add_epi32(s.cdgh[l], self.c.mid_cdgh));
                }
            }
        }
    }

    /// SHA step `k` of segment Y: round pair `k % 31` of hash 2 for lane group `k / 31`.
    #[inline(always)]
    fn sha2_step(&mut self, s: &mut ShaLanes, k: usize) {
        let (g, p) = (k / PAIRS, k % PAIRS);
        if p == 0 {
            *s = ShaLanes::new(self.c.iv_abef, self.c.iv_cdgh);
        }
        let msgk = match p {
            4..=7 => [pair(KW_HASH2[2 * p], KW_HASH2[2 * p + 1]); SHA_LANES],
            _ => Self::load_pairs(&self.tab.t2, p, g),
        };
        s.rnds2(msgk);
        if p == PAIRS - 1 {
            // After rounds 60 and 61 the new `f` (dword 0) is `e` after round 60, which is `h`
            // after round 63.
            for l in 0..SHA_LANES {
                let e61 = unsafe { _mm_cvtsi128_si32(s.abef[l]) } as u32;
                self.tab.h7[g * SHA_LANES + l] = e61.wrapping_add(IV[7]);
            }
        }
    }

    /// Vector step `p` of segment Y: row `p` of `t1` for the batch starting at `base`.
    #[inline(always)]
    fn vec1_step(&mut self, w: &mut [Avx512; 64], p: usize, base: u32) {
        let sp = Avx512::splat;
        let j = self.job;
        match p {
            0 => w[3] = Avx512::nonce_words(base),
            1 => store_pairs(
                &mut self.tab.t1[1],
                sp(K[2].wrapping_add(j.w[2])),
                w[3].add(sp(K[3])),
            ),
            2..=7 => {}
            _ => {
                let t = 2 * p;
                w[t] = block2_w(j, w, t);
                w[t + 1] = block2_w(j, w, t + 1);
                store_pairs(
                    &mut self.tab.t1[p],
                    w[t].add(sp(K[t])),
                    w[t + 1].add(sp(K[t + 1])),
                );
            }
        }
    }

    /// Vector step `p` of segment X: row `p` of `t2` from the digests in `dig`.
    #[inline(always)]
    fn vec2_step(&mut self, w: &mut [Avx512; 64], p: usize) {
        let sp = Avx512::splat;
        match p {
            0 => {
                let base = self.tab.dig.as_ptr() as *const i32;
                for (i, x) in w.iter_mut().take(8).enumerate() {
                    let idx: [i32; N] =
                        core::array::from_fn(|l| (8 * slot(l) as u32 + DIGEST_POS[i]) as i32);
                    *x = Avx512(unsafe {
                        _mm512_i32gather_epi32::<4>(_mm512_loadu_si512(idx.as_ptr().cast()), base)
                    });
                }
                store_pairs(&mut self.tab.t2[0], w[0].add(sp(K[0])), w[1].add(sp(K[1])));
            }
            1..=3 => {
                let t = 2 * p;
                store_pairs(
                    &mut self.tab.t2[p],
                    w[t].add(sp(K[t])),
                    w[t + 1].add(sp(K[t + 1])),
                );
            }
            4..=7 => {}
            30 => {
                // Only round 60 matters; round 61's word is never looked at.
                w[60] = hash2_w(w, 60);
                let wk = w[60].add(sp(K[60]));
                store_pairs(&mut self.tab.t2[30], wk, wk);
            }
            _ => {
                let t = 2 * p;
                w[t] = hash2_w(w, t);
                w[t + 1] = hash2_w(w, t + 1);
                store_pairs(
                    &mut self.tab.t2[p],
                    w[t].add(sp(K[t])),
                    w[t + 1].add(sp(K[t + 1])),
                );
            }
        }
    }
}

/// Calls `$f!(k)` for k in 0..124 (`SHA_STEPS`).
macro_rules! each_sha_step {
    ($f:ident) => {
        each_sha_step!(@ $f 0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25
            26 27 28 29 30 31 32 33 34 35 36 37 38 39 40 41 42 43 44 45 46 47 48 49 50 51 52 53
            54 55 56 57 58 59 60 61 62 63 64 65 66 67 68 69 70 71 72 73 74 75 76 77 78 79 80 81
            82 83 84 85 86 87 88 89 90 91 92 93 94 95 96 97 98 99 100 101 102 103 104 105 106
            107 108 109 110 111 112 113 114 115 116 117 118 119 120 121 122 123);
    };
    (@ $f:ident $($k:literal)*) => { $( $f!($k); )* };
}

/// Calls `$f!(p)` for the table rows that differ between nonces, 8..32.
macro_rules! each_row {
    ($f:ident) => {
        each_row!(@ $f 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30 31);
    };
    (@ $f:ident $($p:literal)*) => { $( $f!($p); )* };
}

/// The vector steps to run after SHA step `k`: `total` of them spread over the segment.
#[inline(always)]
const fn vector_steps_after(k: usize, total: usize) -> (usize, usize) {
    (k * total / SHA_STEPS, (k + 1) * total / SHA_STEPS)
}

/// Segment X: SHA-NI block 2 from `t1` -> `dig`, AVX-512 `dig` -> `t2`.
#[inline(always)]
fn segment_x(pl: &mut Pipeline<'_>) {
    let z = Avx512::splat(0);
    let mut w = [z; 64];
    let mut s = ShaLanes::new(pl.c.abef2, pl.c.cdgh2);
    macro_rules! step {
        ($k:literal) => {
            let (from, to) = vector_steps_after($k, T2_ROWS);
            if from < to {
                pl.vec2_step(&mut w, from);
            }
            pl.sha1_step(&mut s, $k);
        };
    }
    each_sha_step!(step);
}

/// Segment Y: SHA-NI hash 2 from `t2` -> `h7`, AVX-512 `t1` for the batch at `next`.
#[inline(always)]
fn segment_y(pl: &mut Pipeline<'_>, next: u32) {
    let z = Avx512::splat(0);
    let mut w = [z; 64];
    let mut s = ShaLanes::new(pl.c.iv_abef, pl.c.iv_cdgh);
    macro_rules! step {
        ($k:literal) => {
            let (from, to) = vector_steps_after($k, T1_ROWS);
            if from < to {
                pl.vec1_step(&mut w, from, next);
            }
            if from + 1 < to {
                pl.vec1_step(&mut w, from + 1, next);
            }
            pl.sha2_step(&mut s, $k);
        };
    }
    each_sha_step!(step);
}

/// # Safety
/// The CPU must support SHA, SSE2, SSSE3, SSE4.1 and AVX-512F.
#[target_feature(enable = "sha,sse2,ssse3,sse4.1,avx512f")]
pub(crate) unsafe fn scan(j: &Job, first: u32, count: u32, out: &mut Vec<u32>) {
    const { assert!(T1_ROWS <= 2 * SHA_STEPS && T2_ROWS <= SHA_STEPS) };
    let mut pl = Pipeline {
        job: j,
        c: ShaConsts::new(j),
        tab: Tables {
            t1: [[0; N]; T1_ROWS],
            t2: [[0; N]; T2_ROWS],
            dig: [[0; 8]; N],
            h7: [0; N],
        },
    };
    // Prologue: the first batch's block-2 table.
    {
        let mut w = [Avx512::splat(0); 64];
        macro_rules! row {
            ($p:literal) => {
                pl.vec1_step(&mut w, $p, first);
            };
        }
        row!(0);
        row!(1);
        each_row!(row);
    }
    let batches = u64::from(count).div_ceil(N as u64);
    // One extra iteration drains the pipeline; its hash-1 half hashes nonces past the range,
    // whose results are never read.
    for i in 0..=batches {
        let next = first.wrapping_add(((i + 1) * N as u64) as u32);
        segment_x(&mut pl);
        segment_y(&mut pl, next);
        if i == 0 {
            continue;
        }
        let start = (i - 1) * N as u64;
        for lane in 0..N {
            let offset = start + lane as u64;
            if pl.tab.h7[slot(lane)].swap_bytes() <= j.top && offset < u64::from(count) {
                out.push(first.wrapping_add(offset as u32));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn slots_are_a_permutation() {
        let mut seen = [false; super::N];
        for j in 0..super::N {
            assert!(!seen[super::slot(j)]);
            seen[super::slot(j)] = true;
        }
    }
}

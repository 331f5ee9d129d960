//! SHA-NI kernel: `S` nonces in flight, each in its own pair of state registers, advanced in
//! lockstep. One SHA-256 stream is bound by the latency of `sha256rnds2`; independent lanes
//! fill the gaps so the unit runs at its throughput instead.
//!
//! The work for one group of `S` nonces is written as 32 steps ([`ShaPipe::step`]), two
//! `sha256rnds2` each (one for the first and the last), with the message schedule done by
//! `sha256msg1`/`sha256msg2` and the nonce-independent parts precomputed.
//!
//! Register layout is the one the instructions use: `abef = [f, e, b, a]` and
//! `cdgh = [h, g, d, c]` (lowest dword first); a message group is `[W4k .. W4k+3]`.

// Lane loops index several per-lane arrays in lockstep; iterators would obscure that.
#![allow(clippy::needless_range_loop)]

use core::arch::x86_64::*;

use super::job::{
    BLOCK2_W30C, IV, Job, K, KW_BLOCK2, KW_HASH2, LEN_DIGEST, LEN_HEADER, PAD_BIT, ssig0,
};

/// Per-job constants in register form.
#[derive(Clone, Copy)]
pub(crate) struct ShaConsts {
    pub(crate) abef2: __m128i,
    pub(crate) cdgh2: __m128i,
    /// `[W0, W1, W2, 0]` of block 2; the nonce goes in dword 3.
    m0: __m128i,
    /// `[K2 + W2, 0, 0, 0]`; `K3 + W3` goes in dword 1.
    k23: __m128i,
    /// `msg1(W4..7, W8..11) + [W13, W14, W15, W16]`, all nonce independent.
    x5: __m128i,
    /// `msg1(W12..15, W16..19)`, nonce independent since `W16` is.
    y7: __m128i,
    pub(crate) mid_abef: __m128i,
    pub(crate) mid_cdgh: __m128i,
    pub(crate) iv_abef: __m128i,
    pub(crate) iv_cdgh: __m128i,
    top: u32,
}

// SAFETY (every `unsafe` block in this file): reached only from functions compiled with
// `sha,sse2,ssse3,sse4.1` and called after those features were detected.

#[inline(always)]
fn setr(a: u32, b: u32, c: u32, d: u32) -> __m128i {
    unsafe { _mm_setr_epi32(a as i32, b as i32, c as i32, d as i32) }
}

#[inline(always)]
fn abef(s: &[u32; 8]) -> __m128i {
    setr(s[5], s[4], s[1], s[0])
}

#[inline(always)]
fn cdgh(s: &[u32; 8]) -> __m128i {
    setr(s[7], s[6], s[3], s[2])
}

#[inline(always)]
fn kq(table: &[u32], i: usize) -> __m128i {
    setr(table[i], table[i + 1], table[i + 2], table[i + 3])
}

#[inline(always)]
fn add(a: __m128i, b: __m128i) -> __m128i {
    unsafe { _mm_add_epi32(a, b) }
}

/// `[b1, b2, b3, a0]`: the `W[t-7]` words of the next group.
#[inline(always)]
fn alignr(a: __m128i, b: __m128i) -> __m128i {
    unsafe { _mm_alignr_epi8::<4>(a, b) }
}

#[inline(always)]
fn msg1(a: __m128i, b: __m128i) -> __m128i {
    unsafe { _mm_sha256msg1_epu32(a, b) }
}

#[inline(always)]
fn msg2(a: __m128i, b: __m128i) -> __m128i {
    unsafe { _mm_sha256msg2_epu32(a, b) }
}

impl ShaConsts {
    #[inline(always)]
    pub(crate) fn new(j: &Job) -> Self {
        ShaConsts {
            abef2: abef(&j.st2),
            cdgh2: cdgh(&j.st2),
            m0: setr(j.w[0], j.w[1], j.w[2], 0),
            k23: setr(K[2].wrapping_add(j.w[2]), 0, 0, 0),
            x5: setr(PAD_BIT, 0, LEN_HEADER, j.w16),
            y7: setr(0, 0, BLOCK2_W30C, LEN_HEADER.wrapping_add(ssig0(j.w16))),
            mid_abef: abef(&j.mid),
            mid_cdgh: cdgh(&j.mid),
            iv_abef: abef(&IV),
            iv_cdgh: cdgh(&IV),
            top: j.top,
        }
    }
}

/// `S` lanes of SHA-256d in flight.
struct ShaPipe<const S: usize> {
    abef: [__m128i; S],
    cdgh: [__m128i; S],
    /// The last four message groups, group `k` in slot `k % 4`.
    g: [[__m128i; S]; 4],
    /// Digest word 7 of each lane once step 31 has run.
    h7: [u32; S],
}

impl<const S: usize> ShaPipe<S> {
    #[inline(always)]
    fn new() -> Self {
        let z = unsafe { _mm_setzero_si128() };
        ShaPipe {
            abef: [z; S],
            cdgh: [z; S],
            g: [[z; S]; 4],
            h7: [0; S],
        }
    }

    /// Two rounds on every lane with `msgk[l]`'s low two dwords as `K + W`.
    #[inline(always)]
    fn rnds2(&mut self, msgk: [__m128i; S]) {
        for l in 0..S {
            self.cdgh[l] = unsafe { _mm_sha256rnds2_epu32(self.cdgh[l], self.abef[l], msgk[l]) };
        }
        core::mem::swap(&mut self.abef, &mut self.cdgh);
    }

    /// Four rounds on every lane.
    #[inline(always)]
    fn rnds4(&mut self, msgk: [__m128i; S]) {
        self.rnds2(msgk);
        self.rnds2(msgk.map(|m| unsafe { _mm_shuffle_epi32::<0x0e>(m) }));
    }

    /// Four rounds with the same `K + W` on every lane.
    #[inline(always)]
    fn rnds4_const(&mut self, msgk: __m128i) {
        self.rnds4([msgk; S]);
    }

    /// Computes message group `k` (>= 8, or >= 24 for hash 2's steps) from the previous four.
    #[inline(always)]
    fn next_group(&mut self, k: usize) {
        for l in 0..S {
            let (a, b) = (self.g[k % 4][l], self.g[(k + 1) % 4][l]);
            let (c, d) = (self.g[(k + 2) % 4][l], self.g[(k + 3) % 4][l]);
            self.g[k % 4][l] = msg2(add(msg1(a, b), alignr(d, c)), d);
        }
    }

    /// Rounds `4k .. 4k+4` with message group `k`.
    #[inline(always)]
    fn rounds_group(&mut self, k: usize) {
        let kq = kq(&K, 4 * k);
        self.rnds4(self.g[k % 4].map(|g| add(g, kq)));
    }

    /// Step `step` (0..32, a literal after inlining) for the nonces `base .. base + S`
    /// (wrapping; only step 0 reads `base`).
    #[inline(always)]
    fn step(&mut self, c: &ShaConsts, step: usize, base: u32) {
        match step {
            // Hash 1, block 2: rounds 2 and 3 (0 and 1 are in the precomputed state).
            0 => {
                let mut k23 = [c.k23; S];
                for l in 0..S {
                    let w3 = base.wrapping_add(l as u32).swap_bytes();
                    self.g[0][l] = unsafe { _mm_insert_epi32::<3>(c.m0, w3 as i32) };
                    k23[l] = unsafe { _mm_insert_epi32::<1>(c.k23, w3.wrapping_add(K[3]) as i32) };
                }
                self.abef = [c.abef2; S];
                self.cdgh = [c.cdgh2; S];
                self.rnds2(k23);
            }
            1..=3 => self.rnds4_const(kq(&KW_BLOCK2, 4 * step)),
            4 => {
                let m1 = setr(PAD_BIT, 0, 0, 0);
                let m3 = setr(0, 0, 0, LEN_HEADER);
                for l in 0..S {
                    self.g[0][l] = msg2(msg1(self.g[0][l], m1), m3);
                }
                self.rounds_group(4);
            }
            5 => {
                for l in 0..S {
                    self.g[1][l] = msg2(c.x5, self.g[0][l]);
                }
                self.rounds_group(5);
            }
            6 => {
                for l in 0..S {
                    let (g4, g5) = (self.g[0][l], self.g[1][l]);
                    self.g[2][l] = msg2(alignr(g5, g4), g5);
                }
                self.rounds_group(6);
            }
            7 => {
                for l in 0..S {
                    let (g5, g6) = (self.g[1][l], self.g[2][l]);
                    self.g[3][l] = msg2(add(c.y7, alignr(g6, g5)), g6);
                }
                self.rounds_group(7);
            }
            8..=15 => {
                self.next_group(step);
                self.rounds_group(step);
                if step == 15 {
                    for l in 0..S {
                        self.abef[l] = add(self.abef[l], c.mid_abef);
                        self.cdgh[l] = add(self.cdgh[l], c.mid_cdgh);
                    }
                }
            }
            // Hash 2 over the digest `[a, b, c, d]`, `[e, f, g, h]`.
            16 => {
                for l in 0..S {
                    let (abef, cdgh) = (self.abef[l], self.cdgh[l]);
                    unsafe {
                        self.g[0][l] = _mm_shuffle_epi32::<0x1b>(_mm_unpackhi_epi64(cdgh, abef));
                        self.g[1][l] = _mm_shuffle_epi32::<0x1b>(_mm_unpacklo_epi64(cdgh, abef));
                    }
                }
                self.abef = [c.iv_abef; S];
                self.cdgh = [c.iv_cdgh; S];
                self.rounds_group(0);
            }
            17 => self.rounds_group(1),
            18 | 19 => self.rnds4_const(kq(&KW_HASH2, 4 * (step - 16))),
            20 => {
                let n3 = setr(0, 0, 0, LEN_DIGEST);
                for l in 0..S {
                    self.g[0][l] = msg2(msg1(self.g[0][l], self.g[1][l]), n3);
                }
                self.rounds_group(4);
            }
            21 => {
                let n2 = setr(PAD_BIT, 0, 0, 0);
                let n3 = setr(0, 0, 0, LEN_DIGEST);
                for l in 0..S {
                    let (d1, g4) = (self.g[1][l], self.g[0][l]);
                    self.g[1][l] = msg2(add(msg1(d1, n2), alignr(g4, n3)), g4);
                }
                self.rounds_group(5);
            }
            22 => {
                // msg1(W8..11, W12..15) of the digest's padding.
                let x6 = setr(PAD_BIT, 0, 0, 0);
                for l in 0..S {
                    let (g4, g5) = (self.g[0][l], self.g[1][l]);
                    self.g[2][l] = msg2(add(x6, alignr(g5, g4)), g5);
                }
                self.rounds_group(6);
            }
            23 => {
                let n3 = setr(0, 0, 0, LEN_DIGEST);
                for l in 0..S {
                    let (g4, g5, g6) = (self.g[0][l], self.g[1][l], self.g[2][l]);
                    self.g[3][l] = msg2(add(msg1(n3, g4), alignr(g6, g5)), g6);
                }
                self.rounds_group(7);
            }
            24..=30 => {
                self.next_group(step - 16);
                self.rounds_group(step - 16);
            }
            // Rounds 60 and 61: the new `f` is `e` after round 60, which is `h` after 63.
            _ => {
                self.next_group(15);
                let kq = kq(&K, 60);
                for l in 0..S {
                    let msgk = add(self.g[3][l], kq);
                    let r = unsafe { _mm_sha256rnds2_epu32(self.cdgh[l], self.abef[l], msgk) };
                    self.h7[l] = unsafe { _mm_cvtsi128_si32(r) as u32 }.wrapping_add(IV[7]);
                }
            }
        }
    }
}

/// Pushes the lanes of a finished pipe (nonces `base ..`) that are candidates, ignoring lanes
/// at or past `left` (outside the range).
#[inline(always)]
fn push_candidates(h7: &[u32], top: u32, base: u32, left: u32, out: &mut Vec<u32>) {
    for (l, &h) in h7.iter().enumerate() {
        if h.swap_bytes() <= top && (l as u32) < left {
            out.push(base.wrapping_add(l as u32));
        }
    }
}

/// Runs all 32 steps of one pipe.
macro_rules! run_pipe {
    ($pipe:expr, $c:expr, $base:expr) => {
        $pipe.step($c, 0, $base);
        $pipe.step($c, 1, $base);
        $pipe.step($c, 2, $base);
        $pipe.step($c, 3, $base);
        $pipe.step($c, 4, $base);
        $pipe.step($c, 5, $base);
        $pipe.step($c, 6, $base);
        $pipe.step($c, 7, $base);
        $pipe.step($c, 8, $base);
        $pipe.step($c, 9, $base);
        $pipe.step($c, 10, $base);
        $pipe.step($c, 11, $base);
        $pipe.step($c, 12, $base);
        $pipe.step($c, 13, $base);
        $pipe.step($c, 14, $base);
        $pipe.step($c, 15, $base);
        $pipe.step($c, 16, $base);
        $pipe.step($c, 17, $base);
        $pipe.step($c, 18, $base);
        $pipe.step($c, 19, $base);
        $pipe.step($c, 20, $base);
        $pipe.step($c, 21, $base);
        $pipe.step($c, 22, $base);
        $pipe.step($c, 23, $base);
        $pipe.step($c, 24, $base);
        $pipe.step($c, 25, $base);
        $pipe.step($c, 26, $base);
        $pipe.step($c, 27, $base);
        $pipe.step($c, 28, $base);
        $pipe.step($c, 29, $base);
        $pipe.step($c, 30, $base);
        $pipe.step($c, 31, $base);
    };
}

/// # Safety
/// The CPU must support SHA, SSE2, SSSE3 and SSE4.1.
#[target_feature(enable = "sha,sse2,ssse3,sse4.1")]
pub(crate) unsafe fn scan<const S: usize>(j: &Job, first: u32, count: u32, out: &mut Vec<u32>) {
    let c = ShaConsts::new(j);
    let mut pipe = ShaPipe::<S>::new();
    let mut i = 0u32;
    while i < count {
        let base = first.wrapping_add(i);
        run_pipe!(pipe, &c, base);
        push_candidates(&pipe.h7, c.top, base, count - i, out);
        i = i.saturating_add(S as u32);
    }
}

//! The SHA-256d nonce pipeline written once over a "vector of 32-bit lanes" ([`Lanes`]), one
//! nonce per lane: the portable kernel instantiates it with `u32`, the AVX2 and AVX-512 kernels
//! with their registers; the hybrid kernel uses only its message schedule ([`block2_w`],
//! [`hash2_w`]). Every index into the state and schedule arrays is a literal, so after
//! inlining the arrays become registers.
//!
//! The pipeline starts block 2 at round 4 (rounds 0..=3 are precomputed, round 3 being linear
//! in the nonce), skips the nonce-independent schedule words and the padding words of both
//! hashes, and stops the second hash at round 60: digest word 7 is `h` after round 63, which is
//! already `e` after round 60, and the rounds 57..=59 need not produce `a`.

use super::job::{
    BLOCK2_W30C, HASH2_A1, HASH2_E1, HASH2_W17C, HASH2_W23C, HASH2_W30C, IV, Job, K, KW_BLOCK2,
    KW_HASH2, LEN_DIGEST, LEN_HEADER, PAD_BIT,
};

/// A vector of 32-bit lanes, one nonce each. All arithmetic wraps.
///
/// Implementations for SIMD registers may only be instantiated inside a function compiled
/// with (and reached only after detecting) their target feature; every method is
/// `#[inline(always)]` so it becomes part of that function.
pub(crate) trait Lanes: Copy {
    /// Nonces per vector.
    const N: u32;
    fn splat(x: u32) -> Self;
    fn add(self, o: Self) -> Self;
    /// `Σ0`
    fn bsig0(self) -> Self;
    /// `Σ1`
    fn bsig1(self) -> Self;
    /// `σ0`
    fn ssig0(self) -> Self;
    /// `σ1`
    fn ssig1(self) -> Self;
    fn ch(e: Self, f: Self, g: Self) -> Self;
    fn maj(a: Self, b: Self, c: Self) -> Self;
    /// `W3` for nonces `base, base+1, ...` (wrapping): each nonce byte-swapped.
    fn nonce_words(base: u32) -> Self;
    /// Bit `i` set when lane `i`, byte-swapped, is `<= top`.
    fn le_mask(self, top: u32) -> u32;
}

/// One round at step `t` on a rotating state: logical `a` lives in `s[(8 - t % 8) % 8]`, so
/// no variable moves; only `d` (new `e`) and `h` (new `a`) are written.
#[inline(always)]
fn round<V: Lanes>(s: &mut [V; 8], t: usize, kw: V) {
    let r = 8 - t % 8;
    let (a, b, c, d) = (s[r % 8], s[(r + 1) % 8], s[(r + 2) % 8], s[(r + 3) % 8]);
    let (e, f, g, h) = (
        s[(r + 4) % 8],
        s[(r + 5) % 8],
        s[(r + 6) % 8],
        s[(r + 7) % 8],
    );
    // h + kw is ready early; keep it off the e -> e dependency chain.
    let t1 = e.bsig1().add(V::ch(e, f, g)).add(h.add(kw));
    let t2 = a.bsig0().add(V::maj(a, b, c));
    s[(r + 3) % 8] = d.add(t1);
    s[(r + 7) % 8] = t1.add(t2);
}

/// A round whose new `a` is never read again: only the new `e`.
#[inline(always)]
fn round_e<V: Lanes>(s: &mut [V; 8], t: usize, kw: V) -> V {
    let r = 8 - t % 8;
    let d = s[(r + 3) % 8];
    let (e, f, g, h) = (
        s[(r + 4) % 8],
        s[(r + 5) % 8],
        s[(r + 6) % 8],
        s[(r + 7) % 8],
    );
    let t1 = e.bsig1().add(V::ch(e, f, g)).add(h.add(kw));
    let new_e = d.add(t1);
    s[(r + 3) % 8] = new_e;
    new_e
}

/// The state array for step `t` holding logical `[a..h] = v`.
#[inline(always)]
fn state_at<V: Lanes>(t: usize, v: [V; 8]) -> [V; 8] {
    let r = 8 - t % 8;
    let mut s = v;
    for (k, x) in v.into_iter().enumerate() {
        s[(r + k) % 8] = x;
    }
    s
}

/// `σ1(W[t-2]) + W[t-7] + σ0(W[t-15]) + W[t-16]`
#[inline(always)]
fn sched<V: Lanes>(w: &[V; 64], t: usize) -> V {
    w[t - 2]
        .ssig1()
        .add(w[t - 7])
        .add(w[t - 15].ssig0().add(w[t - 16]))
}

/// Calls `$f!(t)` for each literal.
macro_rules! each {
    ($f:ident: $($t:literal)*) => { $( $f!($t); )* };
}

/// Schedule word `t` (16..=63) of block 2 of the first hash, given the earlier ones (`w[3]`
/// is the nonce word; `w[0..3]` and the padding words are never read: they are in `j`).
/// `t` is a literal after inlining, so the `match` folds away.
#[inline(always)]
pub(crate) fn block2_w<V: Lanes>(j: &Job, w: &[V; 64], t: usize) -> V {
    let sp = V::splat;
    match t {
        16 => sp(j.w16),
        17 => sp(j.w17),
        18 => sp(j.w18c).add(w[3].ssig0()),
        19 => sp(j.w19c).add(w[3]),
        20 => w[18].ssig1().add(sp(PAD_BIT)),
        21 => w[19].ssig1(),
        22 => w[20].ssig1().add(sp(LEN_HEADER)),
        23 => w[21].ssig1().add(w[16]),
        24 => w[22].ssig1().add(w[17]),
        25..=29 => w[t - 2].ssig1().add(w[t - 7]),
        30 => w[28].ssig1().add(w[23]).add(sp(BLOCK2_W30C)),
        31 => w[29].ssig1().add(w[24]).add(sp(j.w31c)),
        32 => w[30].ssig1().add(w[25]).add(sp(j.w32c)),
        _ => sched(w, t),
    }
}

/// Schedule word `t` (16..=60) of the second hash, whose `w[0..8]` are the first digest.
#[inline(always)]
pub(crate) fn hash2_w<V: Lanes>(w: &[V; 64], t: usize) -> V {
    let sp = V::splat;
    match t {
        16 => w[1].ssig0().add(w[0]),
        17 => w[2].ssig0().add(w[1]).add(sp(HASH2_W17C)),
        18..=21 => w[t - 2].ssig1().add(w[t - 15].ssig0()).add(w[t - 16]),
        22 => w[20]
            .ssig1()
            .add(w[7].ssig0())
            .add(w[6])
            .add(sp(LEN_DIGEST)),
        23 => w[21].ssig1().add(w[16]).add(w[7]).add(sp(HASH2_W23C)),
        24 => w[22].ssig1().add(w[17]).add(sp(PAD_BIT)),
        25..=29 => w[t - 2].ssig1().add(w[t - 7]),
        30 => w[28].ssig1().add(w[23]).add(sp(HASH2_W30C)),
        31 => w[29]
            .ssig1()
            .add(w[24])
            .add(w[16].ssig0())
            .add(sp(LEN_DIGEST)),
        _ => sched(w, t),
    }
}

/// Digest word 7 of SHA-256d as the SHA state word (not yet byte-swapped) for the nonces
/// whose `W3` is `w3`.
#[inline(always)]
pub(crate) fn top_word<V: Lanes>(j: &Job, w3: V) -> V {
    let sp = V::splat;
    // ---- hash 1, block 2, from round 4 ----
    let mut s = state_at(
        4,
        [
            sp(j.a4).add(w3),
            sp(j.st3[0]),
            sp(j.st3[1]),
            sp(j.st3[2]),
            sp(j.e4).add(w3),
            sp(j.st3[4]),
            sp(j.st3[5]),
            sp(j.st3[6]),
        ],
    );
    macro_rules! pad_round {
        ($t:literal) => {
            round(&mut s, $t, sp(KW_BLOCK2[$t]));
        };
    }
    each!(pad_round: 4 5 6 7 8 9 10 11 12 13 14 15);
    let mut w = [sp(0); 64];
    w[3] = w3;
    macro_rules! r1 {
        ($t:literal) => {
            w[$t] = block2_w(j, &w, $t);
            round(&mut s, $t, sp(K[$t]).add(w[$t]));
        };
    }
    each!(r1: 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30 31 32 33 34 35 36 37 38 39 40 41
        42 43 44 45 46 47 48 49 50 51 52 53 54 55 56 57 58 59 60 61 62 63);

    // The rotating state is back to a..h at t = 64.
    let mut w = [sp(0); 64];
    for (i, x) in w.iter_mut().take(8).enumerate() {
        *x = s[i].add(sp(j.mid[i]));
    }

    // ---- hash 2 ----
    let mut s = state_at(
        1,
        [
            w[0].add(sp(HASH2_A1)),
            sp(IV[0]),
            sp(IV[1]),
            sp(IV[2]),
            w[0].add(sp(HASH2_E1)),
            sp(IV[4]),
            sp(IV[5]),
            sp(IV[6]),
        ],
    );
    macro_rules! r2 {
        ($t:literal) => {
            round(&mut s, $t, sp(K[$t]).add(w[$t]));
        };
    }
    each!(r2: 1 2 3 4 5 6 7);
    macro_rules! pad2_round {
        ($t:literal) => {
            round(&mut s, $t, sp(KW_HASH2[$t]));
        };
    }
    each!(pad2_round: 8 9 10 11 12 13 14 15);
    macro_rules! r2s {
        ($t:literal) => {
            w[$t] = hash2_w(&w, $t);
            round(&mut s, $t, sp(K[$t]).add(w[$t]));
        };
    }
    each!(r2s: 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30 31 32 33 34 35 36 37 38 39 40 41
        42 43 44 45 46 47 48 49 50 51 52 53 54 55 56);
    macro_rules! r2e {
        ($t:literal) => {
            w[$t] = hash2_w(&w, $t);
            round_e(&mut s, $t, sp(K[$t]).add(w[$t]));
        };
    }
    each!(r2e: 57 58 59);
    w[60] = hash2_w(&w, 60);
    round_e(&mut s, 60, sp(K[60]).add(w[60])).add(sp(IV[7]))
}

/// Hashes nonces `first .. first + count` (count >= 1, no wrap past `u32::MAX` within the
/// range) `V::N` at a time and pushes every candidate nonce (digest word 7 `<= job.top`).
/// The last vector may run past the range; those lanes are masked off.
#[inline(always)]
pub(crate) fn scan_lanes<V: Lanes>(j: &Job, first: u32, count: u32, out: &mut Vec<u32>) {
    let mut i = 0u32;
    while i < count {
        let base = first.wrapping_add(i);
        let h7 = top_word(j, V::nonce_words(base));
        let mut m = h7.le_mask(j.top);
        if m != 0 {
            let left = count - i;
            if left < V::N {
                m &= (1u32 << left) - 1;
            }
            while m != 0 {
                out.push(base.wrapping_add(m.trailing_zeros()));
                m &= m - 1;
            }
        }
        i = i.saturating_add(V::N);
    }
}

impl Lanes for u32 {
    const N: u32 = 1;
    #[inline(always)]
    fn splat(x: u32) -> Self {
        x
    }
    #[inline(always)]
    fn add(self, o: Self) -> Self {
        self.wrapping_add(o)
    }
    #[inline(always)]
    fn bsig0(self) -> Self {
        super::job::bsig0(self)
    }
    #[inline(always)]
    fn bsig1(self) -> Self {
        super::job::bsig1(self)
    }
    #[inline(always)]
    fn ssig0(self) -> Self {
        super::job::ssig0(self)
    }
    #[inline(always)]
    fn ssig1(self) -> Self {
        super::job::ssig1(self)
    }
    #[inline(always)]
    fn ch(e: Self, f: Self, g: Self) -> Self {
        g ^ (e & (f ^ g))
    }
    #[inline(always)]
    fn maj(a: Self, b: Self, c: Self) -> Self {
        b ^ ((a ^ b) & (b ^ c))
    }
    #[inline(always)]
    fn nonce_words(base: u32) -> Self {
        base.swap_bytes()
    }
    #[inline(always)]
    fn le_mask(self, top: u32) -> u32 {
        u32::from(self.swap_bytes() <= top)
    }
}

/// The portable kernel: scalar, one nonce at a time.
pub(crate) fn scan_portable(j: &Job, first: u32, count: u32, out: &mut Vec<u32>) {
    scan_lanes::<u32>(j, first, count, out);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::{HeaderTemplate, ScanTarget, sha256d};

    fn header(seed: u8) -> HeaderTemplate {
        let mut h = [0u8; 80];
        for (i, b) in h.iter_mut().enumerate() {
            *b = (i as u8).wrapping_mul(91).wrapping_add(seed);
        }
        HeaderTemplate(h)
    }

    #[test]
    fn top_word_is_digest_word_7() {
        let hdr = header(3);
        let job = Job::new(&hdr, &ScanTarget::from_le_bytes([0; 32]));
        for nonce in [0u32, 1, 0x1234_5678, u32::MAX] {
            let d = sha256d(&hdr.with_nonce(nonce));
            let want = u32::from_be_bytes([d[28], d[29], d[30], d[31]]);
            assert_eq!(top_word::<u32>(&job, nonce.swap_bytes()), want);
        }
    }
}

//! SHA-256 on the host, for every backend's per-job precomputation: the constants, the round
//! and compression functions, and [`HeaderPrecompute`] — the midstate of header bytes 0..64 and
//! everything about block 2 and the second hash that does not depend on the nonce. Each kernel
//! (CPU lanes, OpenCL/CUDA, WGSL) takes its inputs from here, so they share one derivation.
//!
//! Naming follows FIPS 180-4: `W[t]` message schedule, `a..h` working variables, `Σ0 Σ1`
//! (`bsig*`) the round functions, `σ0 σ1` (`ssig*`) the schedule functions. In block 2 of the
//! first hash the words are `W0` merkle tail, `W1` ntime, `W2` nbits, `W3` the nonce as SHA-256
//! reads it (the byte swap of the little-endian header field), `W4..W15` fixed padding for an
//! 80-byte message.

use crate::device::HeaderTemplate;

pub(crate) const K: [u32; 64] = [
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
];

pub(crate) const IV: [u32; 8] = [
    0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
];

/// `W4` of block 2 and `W8` of the second hash: the padding's leading 1 bit.
pub(crate) const PAD_BIT: u32 = 0x8000_0000;
/// Message length in bits, the last schedule word of block 2 (80 bytes) ...
pub(crate) const LEN_HEADER: u32 = 640;
/// ... and of the second hash (32 bytes).
#[allow(dead_code)] // only the CPU kernels use it
pub(crate) const LEN_DIGEST: u32 = 256;

#[inline(always)]
pub(crate) const fn bsig0(x: u32) -> u32 {
    x.rotate_right(2) ^ x.rotate_right(13) ^ x.rotate_right(22)
}
#[inline(always)]
pub(crate) const fn bsig1(x: u32) -> u32 {
    x.rotate_right(6) ^ x.rotate_right(11) ^ x.rotate_right(25)
}
#[inline(always)]
pub(crate) const fn ssig0(x: u32) -> u32 {
    x.rotate_right(7) ^ x.rotate_right(18) ^ (x >> 3)
}
#[inline(always)]
pub(crate) const fn ssig1(x: u32) -> u32 {
    x.rotate_right(17) ^ x.rotate_right(19) ^ (x >> 10)
}
#[inline(always)]
pub(crate) const fn ch(e: u32, f: u32, g: u32) -> u32 {
    g ^ (e & (f ^ g))
}
#[inline(always)]
pub(crate) const fn maj(a: u32, b: u32, c: u32) -> u32 {
    b ^ ((a ^ b) & (b ^ c))
}

/// One scalar round on `s = [a..h]` with `kw = K[t] + W[t]`. Only used for precomputation,
/// where clarity beats speed.
pub(crate) const fn round(s: [u32; 8], kw: u32) -> [u32; 8] {
    let [a, b, c, d, e, f, g, h] = s;
    let t1 = h
        .wrapping_add(bsig1(e))
        .wrapping_add(ch(e, f, g))
        .wrapping_add(kw);
    let t2 = bsig0(a).wrapping_add(maj(a, b, c));
    [t1.wrapping_add(t2), a, b, c, d.wrapping_add(t1), e, f, g]
}

/// Plain SHA-256 compression of one 64-byte block (for the midstate only).
pub(crate) fn compress(state: [u32; 8], block: &[u8; 64]) -> [u32; 8] {
    let mut w = [0u32; 64];
    for (wi, c) in w.iter_mut().zip(block.chunks_exact(4)) {
        *wi = u32::from_be_bytes([c[0], c[1], c[2], c[3]]);
    }
    for t in 16..64 {
        w[t] = ssig1(w[t - 2])
            .wrapping_add(w[t - 7])
            .wrapping_add(ssig0(w[t - 15]))
            .wrapping_add(w[t - 16]);
    }
    let s = (0..64).fold(state, |s, t| round(s, K[t].wrapping_add(w[t])));
    std::array::from_fn(|i| state[i].wrapping_add(s[i]))
}

/// The nonce-independent part of one header's SHA-256d.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct HeaderPrecompute {
    /// State after block 1 (header bytes 0..64).
    pub mid: [u32; 8],
    /// Block-2 words 0..3 (`w[3]`, the nonce, is 0 here).
    pub w: [u32; 4],
    /// State after rounds 0..=1 of block 2 (SHA-NI does rounds in pairs, so it starts here).
    pub st2: [u32; 8],
    /// State `a..h` after rounds 0..=2 of block 2.
    pub st3: [u32; 8],
    /// After round 3: `a = a4 + W3`, `e = e4 + W3`, the rest is `st3` shifted (t1 is linear
    /// in `W3`).
    pub a4: u32,
    pub e4: u32,
    /// Nonce-independent schedule words and parts: `W18 = w18c + σ0(W3)`, `W19 = w19c + W3`,
    /// `W31 = σ1(W29) + W24 + w31c`, `W32 = σ1(W30) + W25 + w32c`.
    pub w16: u32,
    pub w17: u32,
    pub w18c: u32,
    pub w19c: u32,
    pub w31c: u32,
    pub w32c: u32,
}

impl HeaderPrecompute {
    pub fn new(header: &HeaderTemplate) -> HeaderPrecompute {
        let h = &header.0;
        let mut block1 = [0u8; 64];
        block1.copy_from_slice(&h[..64]);
        let mid = compress(IV, &block1);
        let be = |i: usize| u32::from_be_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]);
        let w = [be(64), be(68), be(72), 0];
        let st2 = round(round(mid, K[0].wrapping_add(w[0])), K[1].wrapping_add(w[1]));
        let st3 = round(st2, K[2].wrapping_add(w[2]));
        // Round 3 with W3 = 0; a and e are then linear in W3.
        let r3 = round(st3, K[3]);
        // W5..W14 are 0, W4 = PAD_BIT, W15 = LEN_HEADER.
        let w16 = ssig0(w[1]).wrapping_add(w[0]);
        let w17 = ssig1(LEN_HEADER)
            .wrapping_add(ssig0(w[2]))
            .wrapping_add(w[1]);
        HeaderPrecompute {
            mid,
            w,
            st2,
            st3,
            a4: r3[0],
            e4: r3[4],
            w16,
            w17,
            w18c: ssig1(w16).wrapping_add(w[2]),
            w19c: ssig1(w17).wrapping_add(ssig0(PAD_BIT)),
            w31c: ssig0(w16).wrapping_add(LEN_HEADER),
            w32c: ssig0(w17).wrapping_add(w16),
        }
    }

    /// The state after round 3 with `W3 = 0`.
    #[allow(dead_code)] // only the OpenCL/CUDA kernels take it whole
    pub fn r3(&self) -> [u32; 8] {
        let s = self.st3;
        [self.a4, s[0], s[1], s[2], self.e4, s[4], s[5], s[6]]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::Digest;

    #[test]
    fn compress_matches_sha2_midstate_by_full_hash() {
        // sha256("abc") is a single padded block.
        let mut block = [0u8; 64];
        block[..3].copy_from_slice(b"abc");
        block[3] = 0x80;
        block[63] = 24;
        let out = compress(IV, &block);
        let bytes: Vec<u8> = out.iter().flat_map(|w| w.to_be_bytes()).collect();
        assert_eq!(bytes[..], sha2::Sha256::digest(b"abc")[..]);
    }

    #[test]
    fn round3_is_linear_in_the_nonce() {
        let hdr = HeaderTemplate(std::array::from_fn(|i| (i as u8).wrapping_mul(37) ^ 11));
        let p = HeaderPrecompute::new(&hdr);
        assert_eq!(p.r3(), round(p.st3, K[3]));
        for w3 in [0u32, 1, 0xdead_beef, u32::MAX] {
            let r = round(p.st3, K[3].wrapping_add(w3));
            assert_eq!(r[0], p.a4.wrapping_add(w3));
            assert_eq!(r[4], p.e4.wrapping_add(w3));
        }
    }
}

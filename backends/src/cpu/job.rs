//! Per-job precomputation shared by every CPU kernel: the header's nonce-independent part
//! ([`crate::sha256::HeaderPrecompute`], shared with the GPU backends) plus the constants of
//! the second hash that the CPU lanes fold into their rounds.

use crate::device::{HeaderTemplate, ScanTarget};
use crate::sha256::HeaderPrecompute;
pub(crate) use crate::sha256::{
    IV, K, LEN_DIGEST, LEN_HEADER, PAD_BIT, bsig0, bsig1, ch, maj, ssig0, ssig1,
};

/// `K[t] + W[t]` for the rounds of block 2 whose `W` is padding (4..=15); entries 0..4 unused.
pub(crate) const KW_BLOCK2: [u32; 16] = {
    let mut kw = [0u32; 16];
    let mut t = 4;
    while t < 16 {
        kw[t] = K[t];
        t += 1;
    }
    kw[4] = K[4].wrapping_add(PAD_BIT);
    kw[15] = K[15].wrapping_add(LEN_HEADER);
    kw
};

/// `K[t] + W[t]` for the rounds of the second hash whose `W` is padding (8..=15).
pub(crate) const KW_HASH2: [u32; 16] = {
    let mut kw = [0u32; 16];
    let mut t = 8;
    while t < 16 {
        kw[t] = K[t];
        t += 1;
    }
    kw[8] = K[8].wrapping_add(PAD_BIT);
    kw[15] = K[15].wrapping_add(LEN_DIGEST);
    kw
};

/// Round 0 of the second hash starts from the IV, so all of it but `W0` is a constant:
/// after it, `a = W0 + HASH2_A1`, `e = W0 + HASH2_E1`.
const HASH2_T1_0: u32 = IV[7]
    .wrapping_add(bsig1(IV[4]))
    .wrapping_add(ch(IV[4], IV[5], IV[6]))
    .wrapping_add(K[0]);
pub(crate) const HASH2_A1: u32 =
    HASH2_T1_0.wrapping_add(bsig0(IV[0]).wrapping_add(maj(IV[0], IV[1], IV[2])));
pub(crate) const HASH2_E1: u32 = HASH2_T1_0.wrapping_add(IV[3]);
/// Constant parts of the second hash's schedule (`W9..W14 = 0`).
pub(crate) const HASH2_W17C: u32 = ssig1(LEN_DIGEST);
pub(crate) const HASH2_W23C: u32 = ssig0(PAD_BIT);
pub(crate) const HASH2_W30C: u32 = ssig0(LEN_DIGEST);
/// `σ0(W15)` of block 2, part of its `W30`.
pub(crate) const BLOCK2_W30C: u32 = ssig0(LEN_HEADER);

/// Everything a kernel needs for one header and target.
#[derive(Clone, Debug)]
pub(crate) struct Job {
    pub header: HeaderTemplate,
    pub target: ScanTarget,
    /// Candidates are the nonces whose digest word 7, read little-endian, is `<= top`.
    pub top: u32,
    /// State after block 1 (header bytes 0..64).
    pub mid: [u32; 8],
    /// Block-2 words 0..3 (`w[3]`, the nonce, is 0 here).
    pub w: [u32; 4],
    /// State `a..h` after rounds 0..=2 of block 2 (nonce independent).
    pub st3: [u32; 8],
    /// After round 3: `a = a4 + W3`, `e = e4 + W3`, the rest is `st3` shifted.
    pub a4: u32,
    pub e4: u32,
    /// State after rounds 0..=1 (SHA-NI does rounds in pairs, so it starts from here).
    pub st2: [u32; 8],
    /// Nonce-independent schedule words and parts: `W18 = w18c + σ0(W3)`, `W19 = w19c + W3`,
    /// `W31 = σ1(W29) + W24 + w31c`, `W32 = σ1(W30) + W25 + w32c`.
    pub w16: u32,
    pub w17: u32,
    pub w18c: u32,
    pub w19c: u32,
    pub w31c: u32,
    pub w32c: u32,
}

impl Job {
    pub fn new(header: &HeaderTemplate, target: &ScanTarget) -> Job {
        let p = HeaderPrecompute::new(header);
        Job {
            header: *header,
            target: *target,
            top: target.top_word(),
            mid: p.mid,
            w: p.w,
            st3: p.st3,
            a4: p.a4,
            e4: p.e4,
            st2: p.st2,
            w16: p.w16,
            w17: p.w17,
            w18c: p.w18c,
            w19c: p.w19c,
            w31c: p.w31c,
            w32c: p.w32c,
        }
    }

    /// The full check every candidate goes through before it is reported.
    pub fn meets(&self, nonce: u32) -> bool {
        self.target
            .is_met_by(&crate::device::sha256d(&self.header.with_nonce(nonce)))
    }
}

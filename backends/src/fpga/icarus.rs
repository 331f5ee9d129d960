//! The Icarus serial protocol's data: the 64-byte job a board is sent, the 4-byte reply it
//! answers with, and how a reply is matched to a job on the CPU (with the small nonce offsets
//! some bitstreams have). Facts as in cgminer/bfgminer's `driver-icarus.c`; see
//! `docs/fpga.md`.
//!
//! A board counts W3, the SHA-256 message word of header bytes 76..79 read big-endian, and
//! answers those 4 bytes. Read big-endian they are the board's counter (hashes done on that
//! chip); read little-endian they are the block header's nonce field.

use crate::device::HeaderTemplate;
use crate::sha256::{IV, compress};

/// The job bytes of cgminer's golden job (block 171874): a working board answers `00 01 87 a2`.
pub const GOLDEN_JOB: [u8; 64] = {
    const HEX: &[u8; 128] = b"4679ba4ec99876bf4bfe086082b400254df6c356451471139a3afa71e48f544a000000000000000000000000000000000000000087320b1a1426674f2fa722ce";
    let mut out = [0u8; 64];
    let mut i = 0;
    while i < 64 {
        out[i] = (nibble(HEX[2 * i]) << 4) | nibble(HEX[2 * i + 1]);
        i += 1;
    }
    out
};

/// The W3 a board answers the golden job with (at 32 zero bits, from counter 0).
pub const GOLDEN_W3: u32 = 0x0001_87a2;

const fn nibble(c: u8) -> u8 {
    match c {
        b'0'..=b'9' => c - b'0',
        b'a'..=b'f' => c - b'a' + 10,
        _ => panic!("not hex"),
    }
}

/// Offsets tried, in order, when a reply's W3 is not itself a hit: bitstreams that subtract
/// their pipeline depth answer a few counts early or late.
pub const NONCE_OFFSETS: [i32; 17] = [0, -1, 1, -2, 2, -3, 3, -4, 4, -5, 5, -6, 6, -7, 7, -8, 8];

/// One job as the board sees it: the midstate of header bytes 0..63 and header bytes 64..75.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IcarusJob {
    midstate: [u32; 8],
    /// Header bytes 64..76: merkle tail, ntime, nbits (W0..W2 of block 2).
    tail: [u8; 12],
}

impl IcarusJob {
    pub fn from_header(header: &HeaderTemplate) -> IcarusJob {
        let mut first = [0u8; 64];
        first.copy_from_slice(&header.0[..64]);
        let mut tail = [0u8; 12];
        tail.copy_from_slice(&header.0[64..76]);
        IcarusJob {
            midstate: compress(IV, &first),
            tail,
        }
    }

    /// From the 64 bytes on the wire (what `to_bytes` writes; the golden job).
    pub fn from_bytes(b: &[u8; 64]) -> IcarusJob {
        let mut midstate = [0u32; 8];
        for (i, w) in midstate.iter_mut().rev().enumerate() {
            *w = u32::from_be_bytes([b[4 * i], b[4 * i + 1], b[4 * i + 2], b[4 * i + 3]]);
        }
        let mut tail = [0u8; 12];
        tail[8..12].copy_from_slice(&b[52..56]);
        tail[4..8].copy_from_slice(&b[56..60]);
        tail[0..4].copy_from_slice(&b[60..64]);
        IcarusJob { midstate, tail }
    }

    /// The packet: midstate words H7..H0 each big-endian, 20 bytes of fill, then header
    /// bytes 72..75, 68..71, 64..67.
    pub fn to_bytes(&self) -> [u8; 64] {
        let mut ob = [0u8; 64];
        for (i, w) in self.midstate.iter().rev().enumerate() {
            ob[4 * i..4 * i + 4].copy_from_slice(&w.to_be_bytes());
        }
        ob[52..56].copy_from_slice(&self.tail[8..12]);
        ob[56..60].copy_from_slice(&self.tail[4..8]);
        ob[60..64].copy_from_slice(&self.tail[0..4]);
        ob
    }

    /// The number of leading zero bits of SHA-256d (as a 256-bit little-endian integer, the
    /// way targets are compared) when W3 is `w3`, capped at 32: what a board compares with
    /// its hit threshold.
    pub fn zero_bits(&self, w3: u32) -> u32 {
        let mut block = [0u8; 64];
        block[..12].copy_from_slice(&self.tail);
        block[12..16].copy_from_slice(&w3.to_be_bytes());
        block[16] = 0x80;
        block[62..64].copy_from_slice(&640u16.to_be_bytes());
        let first = compress(self.midstate, &block);
        let mut second = [0u8; 64];
        for (i, w) in first.iter().enumerate() {
            second[4 * i..4 * i + 4].copy_from_slice(&w.to_be_bytes());
        }
        second[32] = 0x80;
        second[62..64].copy_from_slice(&256u16.to_be_bytes());
        let digest = compress(IV, &second);
        // Digest bytes 28..31 are H7 big-endian; the integer's top 32 bits read them
        // little-endian.
        digest[7].swap_bytes().leading_zeros()
    }

    /// The W3 a reply stands for on this job: the reply itself or the first offset of it whose
    /// hash has at least `zero_bits` leading zero bits.
    pub fn match_reply(&self, reply: u32, zero_bits: u32) -> Option<u32> {
        NONCE_OFFSETS
            .iter()
            .map(|&d| reply.wrapping_add_signed(d))
            .find(|&w3| self.zero_bits(w3) >= zero_bits.min(32))
    }
}

/// The header nonce (bytes 76..79 read little-endian) of a W3.
pub fn nonce_of(w3: u32) -> u32 {
    w3.swap_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::device::sha256d;

    #[test]
    fn golden_job_hits_at_its_known_counter() {
        let job = IcarusJob::from_bytes(&GOLDEN_JOB);
        assert_eq!(job.to_bytes(), GOLDEN_JOB);
        assert_eq!(job.zero_bits(GOLDEN_W3), 32);
        assert_eq!(job.match_reply(GOLDEN_W3, 32), Some(GOLDEN_W3));
        // A bitstream that answers three counts early still matches.
        assert_eq!(job.match_reply(GOLDEN_W3 - 3, 32), Some(GOLDEN_W3));
        assert_eq!(job.match_reply(0x1234_5678, 32), None);
    }

    /// The board's arithmetic (midstate + block 2 + second hash) equals SHA-256d of the header
    /// with the nonce written little-endian, and the packet layout is the documented one.
    #[test]
    fn packet_and_hit_check_agree_with_sha256d() {
        let mut h = [0u8; 80];
        for (i, b) in h.iter_mut().enumerate() {
            *b = (i as u8).wrapping_mul(37).wrapping_add(11);
        }
        let t = HeaderTemplate(h);
        let job = IcarusJob::from_header(&t);
        let ob = job.to_bytes();
        assert_eq!(&ob[52..56], &h[72..76]);
        assert_eq!(&ob[56..60], &h[68..72]);
        assert_eq!(&ob[60..64], &h[64..68]);
        assert_eq!(&ob[32..52], &[0u8; 20]);
        assert_eq!(IcarusJob::from_bytes(&ob), job);
        for w3 in [0u32, 1, 0xdead_beef, u32::MAX] {
            let d = sha256d(&t.with_nonce(nonce_of(w3)));
            let top = u32::from_le_bytes([d[28], d[29], d[30], d[31]]);
            assert_eq!(job.zero_bits(w3), top.leading_zeros());
        }
        let full = HeaderTemplate(h).with_nonce(nonce_of(0x0102_0304));
        assert_eq!(&full[76..80], &[1, 2, 3, 4]);
    }
}

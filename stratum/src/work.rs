//! The SHA-256d work model: the only code in the project that knows Stratum byte order.
//!
//! A pool sends a job as hex fields in several different byte orders; this module turns them
//! into an 80-byte header in the order it is hashed, and turns a found nonce back into the
//! `mining.submit` parameters the pool expects. Downstream code sees [`HeaderBytes`] and a
//! [`Target`] and nothing else.
//!
//! Byte orders, once:
//! - `prevhash` on the wire is the header-order hash with each 4-byte word byte-swapped
//!   ([`PrevHashWire`]).
//! - merkle branch entries and the coinbase hash are in header (internal) order ([`Hash256`]).
//! - `version`, `nbits`, `ntime` are big-endian hex of numbers stored little-endian in the header.
//! - `nonce` in `mining.submit` is big-endian hex of the number stored little-endian at bytes 76..80.
//! - Stratum V2 sends `prev_hash` and `merkle_root` as U256 in header (internal) order and
//!   version, nTime, nBits, nonce as little-endian integers, i.e. as plain numbers
//!   ([`Job::header_only`]).
//!
//! A Stratum V2 standard-channel job is header-only: the pool fixed the merkle root, so there
//! is no coinbase and no extranonce2. It becomes the same [`Job`] with `merkle_root` set and an
//! [`Extranonce`] whose extranonce2 has 0 bytes ([`Extranonce::header_only`]), so the engine
//! searches it by version rolling, nonce and nTime exactly as it searches a V1 job.

use std::fmt;
use std::str::FromStr;

use sha2::{Digest, Sha256};

/// Errors turning pool-supplied fields into work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WorkError {
    #[error("{field}: invalid hex")]
    BadHex { field: &'static str },
    #[error("{field}: expected {expected} bytes, got {got}")]
    BadLength {
        field: &'static str,
        expected: usize,
        got: usize,
    },
    #[error("extranonce2 size {0} is outside 1..=8 (0 only for header-only work)")]
    BadExtranonce2Size(usize),
    #[error("extranonce2 has {got} bytes, the pool asked for {expected}")]
    Extranonce2SizeMismatch { expected: usize, got: usize },
    #[error("difficulty {0} is not a positive finite number")]
    BadDifficulty(String),
}

/// Decodes hex into exactly `N` bytes.
fn hex_array<const N: usize>(field: &'static str, s: &str) -> Result<[u8; N], WorkError> {
    let v = hex::decode(s).map_err(|_| WorkError::BadHex { field })?;
    v.as_slice().try_into().map_err(|_| WorkError::BadLength {
        field,
        expected: N,
        got: v.len(),
    })
}

/// Decodes a big-endian 8-hex-digit number (`version`, `nbits`, `ntime`, `nonce`).
pub fn parse_u32_be_hex(field: &'static str, s: &str) -> Result<u32, WorkError> {
    Ok(u32::from_be_bytes(hex_array::<4>(field, s)?))
}

/// SHA-256d of arbitrary bytes, in internal byte order.
pub fn sha256d(data: &[u8]) -> Hash256 {
    let first = Sha256::digest(data);
    Hash256(Sha256::digest(first).into())
}

/// A 256-bit hash in internal (header) byte order: exactly as SHA-256 outputs it and as it is
/// laid out inside a block header. Displayed reversed, as block explorers show hashes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Hash256(pub [u8; 32]);

impl Hash256 {
    /// From hex already in internal order (merkle branch entries on the wire).
    pub fn from_internal_hex(field: &'static str, s: &str) -> Result<Self, WorkError> {
        hex_array(field, s).map(Hash256)
    }
    pub fn to_internal_hex(&self) -> String {
        hex::encode(self.0)
    }
    /// From the reversed, human display form (block explorers, RPC).
    pub fn from_display_hex(field: &'static str, s: &str) -> Result<Self, WorkError> {
        let mut b: [u8; 32] = hex_array(field, s)?;
        b.reverse();
        Ok(Hash256(b))
    }
    /// The hash as a 256-bit integer (for comparing with a target).
    pub fn to_u256(&self) -> U256 {
        U256::from_le_bytes(self.0)
    }
}

impl fmt::Display for Hash256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0.iter().rev() {
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Hash256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hash256({self})")
    }
}

/// `prevhash` as Stratum V1 sends it: the header-order hash with every 4-byte word
/// byte-swapped. Kept distinct from [`Hash256`] so the swap cannot be forgotten or done twice.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct PrevHashWire(pub [u8; 32]);

impl PrevHashWire {
    pub fn from_hex(s: &str) -> Result<Self, WorkError> {
        hex_array("prevhash", s).map(PrevHashWire)
    }
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
    pub fn to_header_order(&self) -> Hash256 {
        Hash256(swap_words(self.0))
    }
    pub fn from_header_order(h: &Hash256) -> Self {
        PrevHashWire(swap_words(h.0))
    }
}

impl fmt::Debug for PrevHashWire {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PrevHashWire({})", self.to_hex())
    }
}

fn swap_words(mut b: [u8; 32]) -> [u8; 32] {
    for w in b.chunks_exact_mut(4) {
        w.reverse();
    }
    b
}

/// An unsigned 256-bit integer, little-endian 64-bit limbs. Targets and hashes are compared
/// as these, never as floats.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct U256(pub [u64; 4]);

impl U256 {
    pub const ZERO: U256 = U256([0; 4]);
    pub const MAX: U256 = U256([u64::MAX; 4]);

    pub fn from_le_bytes(b: [u8; 32]) -> Self {
        let mut l = [0u64; 4];
        for (i, limb) in l.iter_mut().enumerate() {
            let mut w = [0u8; 8];
            w.copy_from_slice(&b[8 * i..8 * i + 8]);
            *limb = u64::from_le_bytes(w);
        }
        U256(l)
    }
    pub fn to_le_bytes(&self) -> [u8; 32] {
        let mut b = [0u8; 32];
        for (i, limb) in self.0.iter().enumerate() {
            b[8 * i..8 * i + 8].copy_from_slice(&limb.to_le_bytes());
        }
        b
    }
    pub fn to_be_bytes(&self) -> [u8; 32] {
        let mut b = self.to_le_bytes();
        b.reverse();
        b
    }
    pub fn from_be_bytes(mut b: [u8; 32]) -> Self {
        b.reverse();
        Self::from_le_bytes(b)
    }
    pub fn is_zero(&self) -> bool {
        self.0 == [0; 4]
    }
    /// Number of significant bits.
    pub fn bits(&self) -> u32 {
        for i in (0..4).rev() {
            if self.0[i] != 0 {
                return 64 * i as u32 + (64 - self.0[i].leading_zeros());
            }
        }
        0
    }
    /// Approximate value as f64 (for difficulty display only).
    pub fn to_f64(&self) -> f64 {
        self.0
            .iter()
            .rev()
            .fold(0.0, |acc, &l| acc * 18446744073709551616.0 + l as f64)
    }
    /// `self << n`, or `None` when bits would fall off the top.
    pub fn checked_shl(&self, n: u32) -> Option<U256> {
        if n == 0 {
            return Some(*self);
        }
        if n >= 256 || self.bits() + n > 256 {
            return if self.is_zero() {
                Some(U256::ZERO)
            } else {
                None
            };
        }
        Some(self.shl(n))
    }
    fn shl(&self, n: u32) -> U256 {
        let (limbs, bits) = ((n / 64) as usize, n % 64);
        let mut r = [0u64; 4];
        for i in (limbs..4).rev() {
            let src = i - limbs;
            r[i] = self.0[src] << bits;
            if bits > 0 && src > 0 {
                r[i] |= self.0[src - 1] >> (64 - bits);
            }
        }
        U256(r)
    }
    pub fn shr(&self, n: u32) -> U256 {
        if n >= 256 {
            return U256::ZERO;
        }
        let (limbs, bits) = ((n / 64) as usize, n % 64);
        let mut r = [0u64; 4];
        for (i, out) in r.iter_mut().enumerate().take(4 - limbs) {
            let src = i + limbs;
            *out = self.0[src] >> bits;
            if bits > 0 && src + 1 < 4 {
                *out |= self.0[src + 1] << (64 - bits);
            }
        }
        U256(r)
    }
    /// Floor division by a non-zero 64-bit divisor.
    pub fn div_u64(&self, d: u64) -> U256 {
        debug_assert!(d != 0);
        let mut r = [0u64; 4];
        let mut rem: u128 = 0;
        for i in (0..4).rev() {
            let cur = (rem << 64) | u128::from(self.0[i]);
            r[i] = (cur / u128::from(d)) as u64;
            rem = cur % u128::from(d);
        }
        U256(r)
    }
}

impl Ord for U256 {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.iter().rev().cmp(other.0.iter().rev())
    }
}
impl PartialOrd for U256 {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Debug for U256 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{}", hex::encode(self.to_be_bytes()))
    }
}

/// The difficulty-1 target of Bitcoin pools: 0xFFFF · 2^208.
pub const DIFF1_TARGET: U256 = U256([0, 0, 0, 0x0000_0000_FFFF_0000]);

/// A share or block target: a hash meets it when, read as a 256-bit integer, it is `<=` it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Target(pub U256);

impl Target {
    pub const MAX: Target = Target(U256::MAX);

    /// The target a pool difficulty stands for: floor(DIFF1 / difficulty), clamped to 2^256-1
    /// (difficulties below ~2^-32 all map to the maximum target).
    pub fn from_difficulty(d: Difficulty) -> Target {
        let (mant, exp) = decompose(d.0);
        // target = 0xFFFF·2^208 / (mant·2^exp), as a long division over enough limbs that the
        // numerator never overflows; anything above 256 bits saturates.
        let shift = 208 - exp;
        if shift < 0 {
            return Target(U256([0xFFFF, 0, 0, 0]).div_u64(mant).shr((-shift) as u32));
        }
        let shift = shift as usize;
        let mut num = vec![0u64; shift / 64 + 2];
        let v = 0xFFFFu128 << (shift % 64);
        num[shift / 64] = v as u64;
        num[shift / 64 + 1] = (v >> 64) as u64;
        let mut rem: u128 = 0;
        for limb in num.iter_mut().rev() {
            let cur = (rem << 64) | u128::from(*limb);
            *limb = (cur / u128::from(mant)) as u64;
            rem = cur % u128::from(mant);
        }
        if num.iter().skip(4).any(|&l| l != 0) {
            return Target::MAX;
        }
        let mut t = [0u64; 4];
        for (o, l) in t.iter_mut().zip(num.iter()) {
            *o = *l;
        }
        Target(U256(t))
    }

    /// Decodes Bitcoin's compact `nbits` form. Negative or overflowing encodings give `None`.
    pub fn from_compact(bits: u32) -> Option<Target> {
        let exp = bits >> 24;
        let mant = bits & 0x007f_ffff;
        if bits & 0x0080_0000 != 0 && mant != 0 {
            return None;
        }
        let t = if exp <= 3 {
            U256([u64::from(mant >> (8 * (3 - exp))), 0, 0, 0])
        } else {
            U256([u64::from(mant), 0, 0, 0]).checked_shl(8 * (exp - 3))?
        };
        Some(Target(t))
    }

    /// Encodes as compact `nbits` (may lose precision, as Bitcoin's does).
    pub fn to_compact(&self) -> u32 {
        let mut size = self.0.bits().div_ceil(8);
        let mut compact = if size <= 3 {
            (self.0.0[0] << (8 * (3 - size))) as u32
        } else {
            self.0.shr(8 * (size - 3)).0[0] as u32
        };
        if compact & 0x0080_0000 != 0 {
            compact >>= 8;
            size += 1;
        }
        compact | (size << 24)
    }

    pub fn is_met_by(&self, hash: &Hash256) -> bool {
        hash.to_u256() <= self.0
    }

    /// Little-endian bytes (byte 31 most significant): the order devices compare hashes in.
    pub fn to_le_bytes(&self) -> [u8; 32] {
        self.0.to_le_bytes()
    }

    /// The pool difficulty this target stands for (approximate; for display and vardiff).
    pub fn to_difficulty(&self) -> f64 {
        DIFF1_TARGET.to_f64() / self.0.to_f64().max(1.0)
    }
}

impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Target({:?})", self.0)
    }
}

/// `value = mant · 2^exp` with `mant` an integer < 2^53.
fn decompose(v: f64) -> (u64, i32) {
    let bits = v.to_bits();
    let raw_exp = ((bits >> 52) & 0x7ff) as i32;
    let frac = bits & ((1u64 << 52) - 1);
    let (mut mant, mut exp) = if raw_exp == 0 {
        (frac, -1074)
    } else {
        (frac | (1u64 << 52), raw_exp - 1075)
    };
    // Strip trailing zero bits so exact powers of two shift instead of dividing.
    while mant != 0 && mant & 1 == 0 {
        mant >>= 1;
        exp += 1;
    }
    (mant, exp)
}

/// A pool share difficulty: positive and finite; fractional values such as 0.001 are legal.
#[derive(Clone, Copy, PartialEq, PartialOrd, Debug)]
pub struct Difficulty(f64);

impl Difficulty {
    pub const ONE: Difficulty = Difficulty(1.0);

    pub fn new(d: f64) -> Result<Difficulty, WorkError> {
        if d.is_finite() && d > 0.0 {
            Ok(Difficulty(d))
        } else {
            Err(WorkError::BadDifficulty(d.to_string()))
        }
    }
    pub fn get(self) -> f64 {
        self.0
    }
    pub fn target(self) -> Target {
        Target::from_difficulty(self)
    }
}

impl fmt::Display for Difficulty {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl FromStr for Difficulty {
    type Err = WorkError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let d: f64 = s
            .trim()
            .parse()
            .map_err(|_| WorkError::BadDifficulty(s.to_string()))?;
        Difficulty::new(d)
    }
}

/// The difficulty a hash achieves (DIFF1 / hash), for "best share" reporting.
pub fn hash_difficulty(hash: &Hash256) -> f64 {
    DIFF1_TARGET.to_f64() / hash.to_u256().to_f64().max(1.0)
}

/// extranonce2: exactly `extranonce2_size` bytes (1..=8) chosen by the miner; 0 bytes (a
/// single, empty value) for header-only work, whose merkle root the pool fixed.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ExtraNonce2 {
    value: u64,
    size: u8,
}

impl ExtraNonce2 {
    /// The `value`-th extranonce2 of `size` bytes (value taken modulo 2^(8·size)); encoded as a
    /// little-endian counter, as cpuminer and most miners roll it.
    pub fn new(value: u64, size: usize) -> Result<Self, WorkError> {
        if size > 8 {
            return Err(WorkError::BadExtranonce2Size(size));
        }
        let mask = if size == 8 {
            u64::MAX
        } else {
            (1u64 << (8 * size)) - 1
        };
        Ok(ExtraNonce2 {
            value: value & mask,
            size: size as u8,
        })
    }
    /// Parses submitted hex, which must be exactly `size` bytes.
    pub fn from_hex(s: &str, size: usize) -> Result<Self, WorkError> {
        let b = hex::decode(s).map_err(|_| WorkError::BadHex {
            field: "extranonce2",
        })?;
        if b.len() != size {
            return Err(WorkError::Extranonce2SizeMismatch {
                expected: size,
                got: b.len(),
            });
        }
        let mut le = [0u8; 8];
        le[..size].copy_from_slice(&b);
        ExtraNonce2::new(u64::from_le_bytes(le), size)
    }
    pub fn value(&self) -> u64 {
        self.value
    }
    pub fn size(&self) -> usize {
        usize::from(self.size)
    }
    /// How many distinct values this size allows (saturating at u64::MAX for 8 bytes).
    pub fn space(size: usize) -> u64 {
        if size >= 8 {
            u64::MAX
        } else {
            1u64 << (8 * size)
        }
    }
    pub fn to_bytes(&self) -> Vec<u8> {
        self.value.to_le_bytes()[..self.size()].to_vec()
    }
    pub fn to_hex(&self) -> String {
        hex::encode(self.to_bytes())
    }
}

impl fmt::Debug for ExtraNonce2 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ExtraNonce2({})", self.to_hex())
    }
}

/// The session's extranonce: extranonce1 from the pool and the size of extranonce2.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Extranonce {
    pub extranonce1: Vec<u8>,
    pub extranonce2_size: usize,
}

impl Extranonce {
    pub fn new(extranonce1_hex: &str, extranonce2_size: u64) -> Result<Self, WorkError> {
        let extranonce1 = hex::decode(extranonce1_hex).map_err(|_| WorkError::BadHex {
            field: "extranonce1",
        })?;
        let size = usize::try_from(extranonce2_size).unwrap_or(usize::MAX);
        if !(1..=8).contains(&size) {
            return Err(WorkError::BadExtranonce2Size(size));
        }
        Ok(Extranonce {
            extranonce1,
            extranonce2_size: size,
        })
    }

    /// The extranonce of header-only work (Stratum V2 standard channels): nothing to roll,
    /// the pool's merkle root already commits to its coinbase.
    pub fn header_only() -> Self {
        Extranonce {
            extranonce1: Vec::new(),
            extranonce2_size: 0,
        }
    }
}

/// A `mining.notify` job, decoded and checked.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Job {
    /// Opaque to the miner: echoed back in `mining.submit`.
    pub job_id: String,
    pub prevhash: PrevHashWire,
    pub coinb1: Vec<u8>,
    pub coinb2: Vec<u8>,
    pub merkle_branch: Vec<Hash256>,
    pub version: u32,
    pub nbits: u32,
    pub ntime: u32,
    pub clean_jobs: bool,
    /// `Some` for header-only work (Stratum V2 standard channels): the merkle root the pool
    /// fixed, in header order. The coinbase fields and merkle branch are then empty and unused.
    pub merkle_root: Option<Hash256>,
}

impl Job {
    /// A header-only job (Stratum V2 `NewMiningJob` + `SetNewPrevHash`): the fields are the
    /// numbers and header-order hashes SV2 sends, nothing to swap. Mine it with
    /// [`Extranonce::header_only`].
    #[allow(clippy::too_many_arguments)]
    pub fn header_only(
        job_id: String,
        prev_hash: Hash256,
        merkle_root: Hash256,
        version: u32,
        nbits: u32,
        ntime: u32,
        clean_jobs: bool,
    ) -> Job {
        Job {
            job_id,
            prevhash: PrevHashWire::from_header_order(&prev_hash),
            coinb1: Vec::new(),
            coinb2: Vec::new(),
            merkle_branch: Vec::new(),
            version,
            nbits,
            ntime,
            clean_jobs,
            merkle_root: Some(merkle_root),
        }
    }

    /// From the hex fields of `mining.notify` (params 1..=7).
    #[allow(clippy::too_many_arguments)]
    pub fn from_hex_fields(
        job_id: String,
        prevhash: &str,
        coinb1: &str,
        coinb2: &str,
        merkle_branch: &[&str],
        version: &str,
        nbits: &str,
        ntime: &str,
        clean_jobs: bool,
    ) -> Result<Job, WorkError> {
        Ok(Job {
            job_id,
            prevhash: PrevHashWire::from_hex(prevhash)?,
            coinb1: hex::decode(coinb1).map_err(|_| WorkError::BadHex { field: "coinb1" })?,
            coinb2: hex::decode(coinb2).map_err(|_| WorkError::BadHex { field: "coinb2" })?,
            merkle_branch: merkle_branch
                .iter()
                .map(|h| Hash256::from_internal_hex("merkle_branch", h))
                .collect::<Result<_, _>>()?,
            version: parse_u32_be_hex("version", version)?,
            nbits: parse_u32_be_hex("nbits", nbits)?,
            ntime: parse_u32_be_hex("ntime", ntime)?,
            clean_jobs,
            merkle_root: None,
        })
    }

    /// coinb1 | extranonce1 | extranonce2 | coinb2.
    pub fn coinbase(&self, en: &Extranonce, en2: &ExtraNonce2) -> Vec<u8> {
        let mut c = Vec::with_capacity(
            self.coinb1.len() + en.extranonce1.len() + en2.size() + self.coinb2.len(),
        );
        c.extend_from_slice(&self.coinb1);
        c.extend_from_slice(&en.extranonce1);
        c.extend_from_slice(&en2.to_bytes());
        c.extend_from_slice(&self.coinb2);
        c
    }

    /// Merkle root: SHA-256d of the coinbase folded with each branch hash on the right, or the
    /// pool's own for header-only work.
    pub fn merkle_root(&self, en: &Extranonce, en2: &ExtraNonce2) -> Hash256 {
        if let Some(root) = self.merkle_root {
            return root;
        }
        let mut root = sha256d(&self.coinbase(en, en2));
        let mut buf = [0u8; 64];
        for b in &self.merkle_branch {
            buf[..32].copy_from_slice(&root.0);
            buf[32..].copy_from_slice(&b.0);
            root = sha256d(&buf);
        }
        root
    }

    /// The header version after rolling: bits inside `mask` come from `rolled`.
    pub fn rolled_version(&self, mask: u32, rolled: u32) -> u32 {
        (self.version & !mask) | (rolled & mask)
    }

    /// The 80-byte header template (nonce field zero) for one extranonce2, ntime and version.
    pub fn header(
        &self,
        en: &Extranonce,
        en2: &ExtraNonce2,
        ntime: u32,
        version: u32,
    ) -> HeaderBytes {
        let mut h = [0u8; 80];
        h[0..4].copy_from_slice(&version.to_le_bytes());
        h[4..36].copy_from_slice(&self.prevhash.to_header_order().0);
        h[36..68].copy_from_slice(&self.merkle_root(en, en2).0);
        h[68..72].copy_from_slice(&ntime.to_le_bytes());
        h[72..76].copy_from_slice(&self.nbits.to_le_bytes());
        HeaderBytes(h)
    }

    /// The network (block) target from nbits, if it decodes.
    pub fn block_target(&self) -> Option<Target> {
        Target::from_compact(self.nbits)
    }

    /// The `mining.notify` params a pool sends for this job: the inverse of
    /// [`Job::from_hex_fields`].
    pub fn notify_params(&self) -> Vec<serde_json::Value> {
        vec![
            self.job_id.clone().into(),
            self.prevhash.to_hex().into(),
            hex::encode(&self.coinb1).into(),
            hex::encode(&self.coinb2).into(),
            self.merkle_branch
                .iter()
                .map(Hash256::to_internal_hex)
                .collect::<Vec<_>>()
                .into(),
            format!("{:08x}", self.version).into(),
            format!("{:08x}", self.nbits).into(),
            format!("{:08x}", self.ntime).into(),
            self.clean_jobs.into(),
        ]
    }
}

/// An 80-byte block header in hashing order.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct HeaderBytes(pub [u8; 80]);

impl HeaderBytes {
    pub fn with_nonce(&self, nonce: u32) -> HeaderBytes {
        let mut h = *self;
        h.0[76..80].copy_from_slice(&nonce.to_le_bytes());
        h
    }
    pub fn hash(&self) -> Hash256 {
        sha256d(&self.0)
    }
    pub fn version(&self) -> u32 {
        u32::from_le_bytes([self.0[0], self.0[1], self.0[2], self.0[3]])
    }
    pub fn nonce(&self) -> u32 {
        u32::from_le_bytes([self.0[76], self.0[77], self.0[78], self.0[79]])
    }
}

impl fmt::Debug for HeaderBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HeaderBytes({})", hex::encode(self.0))
    }
}

/// A candidate share: everything needed to rebuild its header and to submit it.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct Share {
    pub job_id: String,
    pub extranonce2: ExtraNonce2,
    pub ntime: u32,
    pub nonce: u32,
    /// `Some(bits)` when version rolling is in use: the rolled bits (inside the mask).
    pub version_bits: Option<u32>,
}

impl Share {
    /// The `mining.submit` params: [worker, job_id, extranonce2, ntime, nonce, (version_bits)].
    pub fn submit_params(&self, worker: &str) -> Vec<serde_json::Value> {
        let mut p = vec![
            worker.into(),
            self.job_id.clone().into(),
            self.extranonce2.to_hex().into(),
            format!("{:08x}", self.ntime).into(),
            format!("{:08x}", self.nonce).into(),
        ];
        if let Some(v) = self.version_bits {
            p.push(format!("{v:08x}").into());
        }
        p
    }

    /// Rebuilds the full header of this share under `job` (the pool-side check).
    pub fn header(&self, job: &Job, en: &Extranonce, version_mask: u32) -> HeaderBytes {
        let version = match self.version_bits {
            Some(bits) => job.rolled_version(version_mask, bits),
            None => job.version,
        };
        job.header(en, &self.extranonce2, self.ntime, version)
            .with_nonce(self.nonce)
    }
}

/// Checks a nonce against a target: the rule both the worker and the pool apply.
pub fn check_share(header: &HeaderBytes, target: &Target) -> (bool, Hash256) {
    let h = header.hash();
    (target.is_met_by(&h), h)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diff1_target_and_fractions() {
        assert_eq!(Target::from_difficulty(Difficulty::ONE).0, DIFF1_TARGET);
        let t2 = Target::from_difficulty(Difficulty::new(2.0).unwrap());
        assert_eq!(t2.0, DIFF1_TARGET.shr(1));
        // 1/1024 is exact: diff1 << 10
        let t = Target::from_difficulty(Difficulty::new(1.0 / 1024.0).unwrap());
        assert_eq!(t.0, DIFF1_TARGET.checked_shl(10).unwrap());
        // 0.001 is not a power of two: within one ulp of diff1 * 1000
        let t = Target::from_difficulty(Difficulty::new(0.001).unwrap());
        let ratio = t.0.to_f64() / DIFF1_TARGET.to_f64();
        assert!((ratio - 1000.0).abs() < 1e-9, "{ratio}");
        // tiny difficulty saturates instead of wrapping
        let t = Target::from_difficulty(Difficulty::new(1e-30).unwrap());
        assert_eq!(t, Target::MAX);
        let t = Target::from_difficulty(Difficulty::new(1e300).unwrap());
        assert!(t.0.is_zero());
    }

    #[test]
    fn difficulty_rejects_nonsense() {
        for s in ["abc", "0", "-1", "NaN", "inf", ""] {
            assert!(s.parse::<Difficulty>().is_err(), "{s}");
        }
        assert_eq!("0.5".parse::<Difficulty>().unwrap().get(), 0.5);
    }

    #[test]
    fn compact_round_trip() {
        let t = Target::from_compact(0x1d00ffff).unwrap();
        assert_eq!(t.0, DIFF1_TARGET);
        assert_eq!(t.to_compact(), 0x1d00ffff);
        let t = Target::from_compact(0x1b04864c).unwrap();
        assert_eq!(
            hex::encode(t.0.to_be_bytes()),
            "000000000004864c000000000000000000000000000000000000000000000000"
        );
        assert_eq!(t.to_compact(), 0x1b04864c);
        assert!(Target::from_compact(0x04923456).is_none());
        assert!(Target::from_compact(0xff123456).is_none());
    }

    #[test]
    fn extranonce2_encoding() {
        let e = ExtraNonce2::new(0x0102, 4).unwrap();
        assert_eq!(e.to_hex(), "02010000");
        assert_eq!(ExtraNonce2::from_hex("02010000", 4).unwrap(), e);
        assert_eq!(
            ExtraNonce2::from_hex("1b020602", 4).unwrap().value(),
            33948187
        );
        assert!(ExtraNonce2::from_hex("000102", 4).is_err());
        assert_eq!(ExtraNonce2::new(5, 0).unwrap().to_hex(), "");
        assert_eq!(ExtraNonce2::space(0), 1);
        assert!(ExtraNonce2::new(0, 9).is_err());
        assert!(Extranonce::new("00", 0).is_err());
        assert_eq!(ExtraNonce2::new(0x1ff, 1).unwrap().to_hex(), "ff");
        assert_eq!(
            ExtraNonce2::new(u64::MAX, 8).unwrap().to_hex(),
            "ffffffffffffffff"
        );
    }

    #[test]
    fn prevhash_swap_is_an_involution() {
        let mut b = [0u8; 32];
        for (i, x) in b.iter_mut().enumerate() {
            *x = i as u8;
        }
        let w = PrevHashWire(b);
        assert_eq!(&w.to_header_order().0[..4], &[3, 2, 1, 0]);
        assert_eq!(PrevHashWire::from_header_order(&w.to_header_order()), w);
    }

    proptest::proptest! {
        #[test]
        fn u256_shifts_and_order(a in proptest::array::uniform4(proptest::num::u64::ANY), s in 0u32..256) {
            let x = U256(a);
            if let Some(y) = x.checked_shl(s) {
                proptest::prop_assert_eq!(y.shr(s), x);
            }
            proptest::prop_assert!(x.shr(s) <= x);
            proptest::prop_assert_eq!(U256::from_be_bytes(x.to_be_bytes()), x);
        }

        #[test]
        fn target_monotone_in_difficulty(d in 1e-6f64..1e12, f in 1.0001f64..100.0) {
            let lo = Target::from_difficulty(Difficulty::new(d).unwrap());
            let hi = Target::from_difficulty(Difficulty::new(d * f).unwrap());
            proptest::prop_assert!(hi <= lo);
            let back = lo.to_difficulty();
            proptest::prop_assert!((back / d - 1.0).abs() < 1e-9);
        }

        #[test]
        fn compact_decode_never_panics(bits in proptest::num::u32::ANY) {
            if let Some(t) = Target::from_compact(bits) {
                let again = Target::from_compact(t.to_compact());
                proptest::prop_assert_eq!(again, Some(t));
            }
        }

        #[test]
        fn share_params_round_trip(en2 in proptest::num::u64::ANY, size in 1usize..=8, ntime in proptest::num::u32::ANY, nonce in proptest::num::u32::ANY) {
            let e = ExtraNonce2::new(en2, size).unwrap();
            let s = Share { job_id: "j".into(), extranonce2: e, ntime, nonce, version_bits: None };
            let p = s.submit_params("w");
            proptest::prop_assert_eq!(p[2].as_str().unwrap().len(), 2 * size);
            proptest::prop_assert_eq!(ExtraNonce2::from_hex(p[2].as_str().unwrap(), size).unwrap(), e);
            proptest::prop_assert_eq!(parse_u32_be_hex("ntime", p[3].as_str().unwrap()).unwrap(), ntime);
            proptest::prop_assert_eq!(parse_u32_be_hex("nonce", p[4].as_str().unwrap()).unwrap(), nonce);
        }
    }
}

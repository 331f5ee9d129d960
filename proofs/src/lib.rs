//! Groth16 over BN254 for circom circuits, the way snarkjs and rapidsnark do it.
//!
//! - Readers for the files of the circom/snarkjs world: `.zkey` (Groth16 proving key,
//!   [`zkey`]), `.wtns` (witness, [`wtns`]), `.r1cs` (constraint system, [`r1cs`]) and
//!   `verification_key.json` ([`json`]). Binary files are memory-mapped and every section length
//!   is checked against the file before anything is allocated from it, so a truncated or
//!   corrupted file gives an [`Error`], never a panic or an allocation larger than the file.
//! - The prover ([`prover`]) as an explicit pipeline — witness → NTTs → MSMs (A, B in G1 and
//!   G2, C, H) → proof — whose MSMs and NTTs are calls into a [`backends::prove::ProveBackend`].
//!   A [`prover::PreparedKey`] keeps a proving key loaded (and its MSM tables built) across jobs.
//! - The verifier ([`verifier`], arkworks pairing) and snarkjs's JSON shapes for `proof.json`
//!   and `public.json` ([`json`]).

pub mod binfile;
pub mod json;
pub mod mem;
pub mod prover;
pub mod r1cs;
pub mod synth;
pub mod verifier;
pub mod wtns;
pub mod zkey;

use std::path::{Path, PathBuf};

pub use backends::prove::{Fr, G1Affine, G2Affine, Precompute, ProveBackend, ProveError};
pub use json::{Proof, VerifyingKey};
pub use prover::{KeyCache, PreparedKey, ProveOutput, ProveTimings, Prover};
pub use verifier::verify;
pub use wtns::Witness;
pub use zkey::ZkeyHeader;

/// Sets the number of threads the prover's MSMs and NTTs use (rayon's global pool). Only the
/// first call in a process takes effect; returns the number in use.
pub fn init_threads(n: usize) -> usize {
    let _ = rayon::ThreadPoolBuilder::new()
        .num_threads(n.max(1))
        .build_global();
    rayon::current_num_threads()
}

/// Threads the prover's MSMs and NTTs use.
pub fn threads() -> usize {
    rayon::current_num_threads()
}

/// Everything that can go wrong reading files, proving and verifying.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {kind}")]
    Format { path: PathBuf, kind: FormatError },
    #[error("{path}: invalid JSON: {message}")]
    Json { path: PathBuf, message: String },
    #[error("{0}")]
    Mismatch(String),
    #[error("prover backend: {0}")]
    Backend(#[from] ProveError),
    #[error("the proof does not verify against the proving key's own verification key: {0}")]
    SelfCheckFailed(String),
}

impl Error {
    pub(crate) fn format(path: &Path, kind: FormatError) -> Error {
        Error::Format {
            path: path.to_path_buf(),
            kind,
        }
    }
    pub(crate) fn io(path: &Path, source: std::io::Error) -> Error {
        Error::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// What is wrong inside a file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    #[error("not a {expected} file (magic {found:?})")]
    BadMagic {
        expected: &'static str,
        found: String,
    },
    #[error("unsupported {what} version {version}")]
    UnsupportedVersion { what: &'static str, version: u32 },
    #[error("truncated: {what} needs {need} bytes at offset {offset}, the file has {have}")]
    Truncated {
        what: String,
        offset: u64,
        need: u64,
        have: u64,
    },
    #[error("section {0} is missing")]
    MissingSection(u32),
    #[error("section {0} appears more than once")]
    DuplicateSection(u32),
    #[error("section {id} ({what}) has {actual} bytes, expected {expected}")]
    SectionSize {
        id: u32,
        what: &'static str,
        expected: u64,
        actual: u64,
    },
    #[error("zkey protocol {0} is not Groth16 (1)")]
    NotGroth16(u32),
    #[error("{what} is not BN254's (only BN254/bn128 is supported)")]
    WrongCurve { what: &'static str },
    #[error("{what} #{index} is not a canonical field element (not below the modulus)")]
    NotCanonical { what: &'static str, index: u64 },
    #[error("{what} #{index} is not a point on the curve")]
    NotOnCurve { what: &'static str, index: u64 },
    #[error("{what} #{index} is not in the prime-order subgroup")]
    NotInSubgroup { what: &'static str, index: u64 },
    #[error("{0}")]
    Invalid(String),
}

//! `.wtns` witness files (snarkjs `wtns_utils.js`): section 1 = (u32 n8, n8-byte prime,
//! u32 count), section 2 = count values of n8 bytes, little-endian, in canonical (not Montgomery)
//! form. Version 2 is what circom's witness generators and snarkjs write.

use std::path::Path;

use ark_ff::PrimeField;
use backends::prove::ScalarRepr;
use rayon::prelude::*;

use crate::binfile::{self, BinFile, FileBytes};
use crate::{Error, FormatError, Fr};

/// A full assignment of a circuit's wires; `values[0]` is the constant 1, then the public
/// outputs and inputs, then the private signals.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Witness {
    pub values: Vec<ScalarRepr>,
}

impl Witness {
    /// Reads and checks a `.wtns` file.
    pub fn load(path: &Path) -> Result<Witness, Error> {
        let f = FileBytes::open(path)?;
        Witness::parse(f.bytes()).map_err(|k| Error::format(path, k))
    }

    /// Parses the bytes of a `.wtns` file.
    pub fn parse(data: &[u8]) -> Result<Witness, FormatError> {
        let bf = BinFile::parse(data, "wtns", 2)?;
        let mut h = bf.cursor(1, "witness header")?;
        let n8 = h.u32()?;
        if n8 != 32 {
            return Err(FormatError::WrongCurve {
                what: "witness field size",
            });
        }
        if !binfile::is_modulus::<Fr>(h.bytes(32)?) {
            return Err(FormatError::WrongCurve {
                what: "witness prime",
            });
        }
        let count = h.u32()? as u64;
        h.finish(1)?;
        // Checked before the allocation below: the count must match the bytes that are there.
        let body = bf.section_exact(2, "witness values", count * 32)?;
        let values: Vec<ScalarRepr> = body
            .par_chunks_exact(32)
            .map(binfile::canonical::<Fr>)
            .collect::<Option<_>>()
            .ok_or_else(|| {
                let index = body
                    .chunks_exact(32)
                    .position(|c| binfile::canonical::<Fr>(c).is_none())
                    .unwrap_or(0);
                FormatError::NotCanonical {
                    what: "witness value",
                    index: index as u64,
                }
            })?;
        if values
            .first()
            .is_some_and(|v| *v != Fr::from(1u64).into_bigint())
        {
            return Err(FormatError::Invalid(
                "witness value #0 is not 1 (every circom witness starts with the constant 1)"
                    .into(),
            ));
        }
        Ok(Witness { values })
    }

    /// Serialises in snarkjs's layout (tests and tools).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64 + self.values.len() * 32);
        out.extend_from_slice(b"wtns");
        out.extend_from_slice(&2u32.to_le_bytes());
        out.extend_from_slice(&2u32.to_le_bytes());
        out.extend_from_slice(&1u32.to_le_bytes());
        out.extend_from_slice(&40u64.to_le_bytes());
        out.extend_from_slice(&32u32.to_le_bytes());
        for l in Fr::MODULUS.0 {
            out.extend_from_slice(&l.to_le_bytes());
        }
        out.extend_from_slice(&(self.values.len() as u32).to_le_bytes());
        out.extend_from_slice(&2u32.to_le_bytes());
        out.extend_from_slice(&(self.values.len() as u64 * 32).to_le_bytes());
        for v in &self.values {
            for l in v.0 {
                out.extend_from_slice(&l.to_le_bytes());
            }
        }
        out
    }

    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// The most bytes a `.wtns` file of a circuit with `n_vars` variables takes: what
    /// [`Self::to_bytes`] writes (76 bytes of header and section heads, 32 per value) and
    /// room for a section a writer might add. A download is bounded by this, not by a
    /// figure the pool chose.
    pub fn max_file_bytes(n_vars: u32) -> u64 {
        76 + 32 * u64::from(n_vars) + 4096
    }

    /// The public signals (outputs, then public inputs: wires 1..=n_public), as `public.json`
    /// lists them; empty when the witness is shorter than that.
    pub fn public(&self, n_public: usize) -> Vec<Fr> {
        self.values
            .get(1..=n_public)
            .unwrap_or_default()
            .iter()
            .map(|v| Fr::from_bigint(*v).unwrap_or_default())
            .collect()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }
}

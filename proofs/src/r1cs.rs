//! circom `.r1cs` constraint systems (iden3 `r1csfile`): section 1 header (u32 n8, prime,
//! u32 nWires, u32 nPubOut, u32 nPubIn, u32 nPrvIn, u64 nLabels, u32 nConstraints); section 2
//! the constraints, each three linear combinations A, B, C of (u32 count, then count × (u32
//! wire, n8-byte canonical value)); section 3 wire → label ids (u64 each). Sections 4 and 5
//! (custom gates, PLONK only) are refused: their gates' constraints are not in section 2, so
//! a witness check would pass what the circuit does not.
//!
//! The prover does not need the R1CS (the zkey carries A and B); it serves to check a witness
//! against its circuit and to tell which constraint a bad witness breaks.

use std::path::Path;

use ark_ff::{PrimeField, Zero};
use backends::prove::ScalarRepr;

use crate::binfile::{self, BinFile, FileBytes};
use crate::wtns::Witness;
use crate::{Error, FormatError, Fr};

/// One linear combination: (wire, coefficient) pairs.
pub type Lc = Vec<(u32, Fr)>;

/// A · B = C over the wires.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Constraint {
    pub a: Lc,
    pub b: Lc,
    pub c: Lc,
}

/// A parsed constraint system.
#[derive(Clone, Debug)]
pub struct R1cs {
    pub n_wires: u32,
    pub n_pub_out: u32,
    pub n_pub_in: u32,
    pub n_prv_in: u32,
    pub n_labels: u64,
    pub constraints: Vec<Constraint>,
    /// Label id of each wire, when section 3 is present.
    pub wire_to_label: Option<Vec<u64>>,
}

impl R1cs {
    pub fn load(path: &Path) -> Result<R1cs, Error> {
        let f = FileBytes::open(path)?;
        R1cs::parse(f.bytes()).map_err(|k| Error::format(path, k))
    }

    /// Public signals (outputs, then public inputs), the constant 1 excluded.
    pub fn n_public(&self) -> u32 {
        self.n_pub_out + self.n_pub_in
    }

    pub fn parse(data: &[u8]) -> Result<R1cs, FormatError> {
        let bf = BinFile::parse(data, "r1cs", 1)?;
        let mut h = bf.cursor(1, "r1cs header")?;
        if h.u32()? != 32 {
            return Err(FormatError::WrongCurve {
                what: "r1cs field size",
            });
        }
        if !binfile::is_modulus::<Fr>(h.bytes(32)?) {
            return Err(FormatError::WrongCurve { what: "r1cs prime" });
        }
        let n_wires = h.u32()?;
        let n_pub_out = h.u32()?;
        let n_pub_in = h.u32()?;
        let n_prv_in = h.u32()?;
        let n_labels = h.u64()?;
        let n_constraints = h.u32()?;
        h.finish(1)?;
        if (n_pub_out as u64 + n_pub_in as u64 + n_prv_in as u64) >= n_wires.max(1) as u64 {
            return Err(FormatError::Invalid(format!(
                "header: {n_wires} wires cannot hold the declared inputs and outputs"
            )));
        }
        for id in [4, 5] {
            if !matches!(bf.section(id), Err(FormatError::MissingSection(_))) {
                return Err(FormatError::Invalid(format!(
                    "section {id}: custom gates (a PLONK-only circom feature), whose constraints \
                     section 2 does not hold; Groth16 cannot prove this circuit"
                )));
            }
        }
        let mut c = bf.cursor(2, "constraints")?;
        // Each constraint takes at least 12 bytes, so this bounds the allocation by the file.
        let mut constraints = Vec::with_capacity((n_constraints as usize).min(c.remaining() / 12));
        for i in 0..n_constraints {
            let mut lc = || -> Result<Lc, FormatError> {
                let n = c.u32()? as usize;
                if n.saturating_mul(36) > c.remaining() {
                    return Err(FormatError::Invalid(format!(
                        "constraint #{i}: {n} terms do not fit the section"
                    )));
                }
                let mut v = Vec::with_capacity(n);
                for _ in 0..n {
                    let wire = c.u32()?;
                    if wire >= n_wires {
                        return Err(FormatError::Invalid(format!(
                            "constraint #{i}: wire {wire} outside the {n_wires} wires"
                        )));
                    }
                    let val = binfile::canonical::<Fr>(c.bytes(32)?).ok_or(
                        FormatError::NotCanonical {
                            what: "r1cs coefficient",
                            index: i as u64,
                        },
                    )?;
                    v.push((wire, Fr::from_bigint(val).unwrap_or_default()));
                }
                Ok(v)
            };
            let a = lc()?;
            let b = lc()?;
            let cc = lc()?;
            constraints.push(Constraint { a, b, c: cc });
        }
        c.finish(2)?;
        let wire_to_label = match bf.section(3) {
            Ok(_) => {
                let bytes = bf.section_exact(3, "wire to label map", n_wires as u64 * 8)?;
                Some(
                    bytes
                        .chunks_exact(8)
                        .map(|b| {
                            u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
                        })
                        .collect(),
                )
            }
            Err(FormatError::MissingSection(_)) => None,
            Err(e) => return Err(e),
        };
        Ok(R1cs {
            n_wires,
            n_pub_out,
            n_pub_in,
            n_prv_in,
            n_labels,
            constraints,
            wire_to_label,
        })
    }

    /// Checks that `w` has the right length and satisfies every constraint.
    pub fn check_witness(&self, w: &Witness) -> Result<(), Error> {
        if w.len() != self.n_wires as usize {
            return Err(Error::Mismatch(format!(
                "the witness has {} values but the circuit has {} wires: it belongs to another circuit",
                w.len(),
                self.n_wires
            )));
        }
        let vals: Vec<Fr> = w
            .values
            .iter()
            .map(|v: &ScalarRepr| Fr::from_bigint(*v).unwrap_or_default())
            .collect();
        let eval = |lc: &Lc| {
            lc.iter()
                .fold(Fr::zero(), |acc, (wire, k)| acc + vals[*wire as usize] * k)
        };
        for (i, c) in self.constraints.iter().enumerate() {
            if eval(&c.a) * eval(&c.b) != eval(&c.c) {
                return Err(Error::Mismatch(format!(
                    "the witness does not satisfy constraint #{i} of the circuit"
                )));
            }
        }
        Ok(())
    }
}

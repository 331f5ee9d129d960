//! snarkjs Groth16 `.zkey` proving keys (`zkey_utils.js`, `zkey_new.js`).
//!
//! Sections: 1 protocol (u32, 1 = Groth16); 2 header (n8q, q, n8r, r, nVars, nPublic,
//! domainSize, α1, β1, β2, γ2, δ1, δ2); 3 IC (nPublic+1 G1); 4 coefficients of A and B
//! (u32 count, then u32 matrix, u32 constraint, u32 signal, 32-byte value); 5 A (nVars G1);
//! 6 B1 (nVars G1); 7 B2 (nVars G2); 8 C (nVars-nPublic-1 G1); 9 H (domainSize G1);
//! 10 contributions (ignored).
//!
//! Representation, as ffjavascript writes it: coordinates are little-endian Montgomery form
//! (x·2^256 mod q), which is exactly arkworks' internal form, so they load without arithmetic;
//! a G1 point is (x, y), a G2 point (x.c0, x.c1, y.c0, y.c1); the point at infinity is all
//! zeros. A coefficient c is stored as the integer c·R² mod r (R = 2^256), so that one
//! Montgomery multiplication by a plain witness value yields c·w in Montgomery form; we undo one
//! factor of R at load time and keep true values.
//!
//! The H query holds the Lagrange-basis points of the odd coset (τ^(2i+1) terms of the
//! powers of tau), which is what fixes the prover to snarkjs's iFFT → coset-FFT recipe.

use std::path::Path;

use ark_bn254::Fq;
use ark_ff::Field;
use rayon::prelude::*;

use backends::prove::{PackedError, PackedG1, PackedG2};

use crate::binfile::{self, BinFile, FileBytes, Section};
use crate::{Error, FormatError, Fr, G1Affine, G2Affine};

/// Bytes of a G1 / G2 point in a zkey.
pub const G1_BYTES: usize = 64;
pub const G2_BYTES: usize = 128;

/// Sections 1 and 2 of a Groth16 zkey.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ZkeyHeader {
    /// Wires, the constant 1 included.
    pub n_vars: u32,
    /// Public signals (outputs then inputs), the constant 1 excluded.
    pub n_public: u32,
    /// Size of the evaluation domain (a power of two ≥ constraints + public inputs + 1).
    pub domain_size: u32,
    pub alpha1: G1Affine,
    pub beta1: G1Affine,
    pub beta2: G2Affine,
    pub gamma2: G2Affine,
    pub delta1: G1Affine,
    pub delta2: G2Affine,
}

/// One non-zero entry of the A or B matrix.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Coef {
    pub constraint: u32,
    pub signal: u32,
    pub value: Fr,
}

/// The A and B matrices, each sorted by constraint.
#[derive(Clone, Debug, Default)]
pub struct Coefs {
    pub a: Vec<Coef>,
    pub b: Vec<Coef>,
}

/// The point queries of the zkey.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Query {
    A,
    B1,
    B2,
    C,
    H,
    Ic,
}

impl Query {
    fn section(self) -> u32 {
        match self {
            Query::Ic => 3,
            Query::A => 5,
            Query::B1 => 6,
            Query::B2 => 7,
            Query::C => 8,
            Query::H => 9,
        }
    }
    fn name(self) -> &'static str {
        match self {
            Query::Ic => "IC point",
            Query::A => "A point",
            Query::B1 => "B1 point",
            Query::B2 => "B2 point",
            Query::C => "C point",
            Query::H => "H point",
        }
    }
    /// Number of points this query has for a header.
    pub fn count(self, h: &ZkeyHeader) -> u64 {
        match self {
            Query::Ic => h.n_public as u64 + 1,
            Query::A | Query::B1 | Query::B2 => h.n_vars as u64,
            Query::C => h.n_vars as u64 - h.n_public as u64 - 1,
            Query::H => h.domain_size as u64,
        }
    }
}

/// A mapped zkey with its section table and header checked.
pub struct ZkeyFile {
    file: FileBytes,
    sections: Vec<Section>,
    pub header: ZkeyHeader,
}

impl ZkeyFile {
    /// Maps `path` and reads its header.
    pub fn open(path: &Path) -> Result<ZkeyFile, Error> {
        ZkeyFile::from_bytes(FileBytes::open(path)?)
    }

    /// Reads the header of a zkey already in memory.
    pub fn from_bytes(file: FileBytes) -> Result<ZkeyFile, Error> {
        let path = file.path().to_path_buf();
        let (sections, header) = {
            let bf =
                BinFile::parse(file.bytes(), "zkey", 1).map_err(|k| Error::format(&path, k))?;
            let header = parse_header(&bf).map_err(|k| Error::format(&path, k))?;
            (bf.sections, header)
        };
        Ok(ZkeyFile {
            file,
            sections,
            header,
        })
    }

    pub fn path(&self) -> &Path {
        self.file.path()
    }

    fn bin(&self) -> BinFile<'_> {
        BinFile {
            data: self.file.bytes(),
            version: 1,
            sections: self.sections.clone(),
        }
    }

    fn err(&self, k: FormatError) -> Error {
        Error::format(self.file.path(), k)
    }

    /// The verification key the proving key carries (header points and the IC query): what a
    /// pool needs to check proofs for this circuit without keeping the whole key.
    pub fn verifying_key(&self) -> Result<crate::json::VerifyingKey, Error> {
        Ok(crate::json::VerifyingKey {
            alpha1: self.header.alpha1,
            beta2: self.header.beta2,
            gamma2: self.header.gamma2,
            delta2: self.header.delta2,
            ic: self.g1_query(Query::Ic)?,
        })
    }

    /// Section 4: the A and B coefficients, checked and sorted by constraint.
    pub fn coefs(&self) -> Result<Coefs, Error> {
        let coefs = parse_coefs(self.coef_entries()?, &self.header).map_err(|k| self.err(k))?;
        self.release_coef_entries();
        Ok(coefs)
    }

    /// Checks that every point query's section holds exactly the points the header promises,
    /// without reading them: a reader that allocates by the header's counts (the domain's
    /// vectors, say) before it reads the queries calls this first, so a forged header cannot make
    /// it allocate more than the file backs.
    pub fn check_query_sizes(&self) -> Result<(), Error> {
        for q in [
            Query::Ic,
            Query::A,
            Query::B1,
            Query::B2,
            Query::C,
            Query::H,
        ] {
            self.query_bytes(q)?;
        }
        Ok(())
    }

    /// Section 4's entries as stored ([`COEF_ENTRY`] bytes each, count checked), for a reader
    /// that evaluates the matrices without a parsed copy; [`Self::release_coef_entries`] drops
    /// their pages after.
    pub fn coef_entries(&self) -> Result<&[u8], Error> {
        let bf = self.bin();
        let s = bf.section(4).map_err(|k| self.err(k))?;
        let mut c = bf.cursor(4, "coefficients").map_err(|k| self.err(k))?;
        let n = c.u32().map_err(|k| self.err(k))? as u64;
        let expected = 4 + n * COEF_ENTRY as u64;
        if s.len as u64 != expected {
            return Err(self.err(FormatError::SectionSize {
                id: 4,
                what: "coefficients",
                expected,
                actual: s.len as u64,
            }));
        }
        c.bytes(n as usize * COEF_ENTRY).map_err(|k| self.err(k))
    }

    /// Drops the mapped pages of section 4 (after [`Self::coef_entries`] has been read).
    pub fn release_coef_entries(&self) {
        if let Ok(s) = self.bin().section(4)
            && let Some(part) = self.file.bytes().get(s.offset..s.offset + s.len)
        {
            self.file.release(part);
        }
    }

    /// The bytes of query `q`'s section, their size checked against the header.
    fn query_bytes(&self, q: Query) -> Result<&[u8], Error> {
        let size = if q == Query::B2 { G2_BYTES } else { G1_BYTES };
        self.bin()
            .section_exact(q.section(), q.name(), q.count(&self.header) * size as u64)
            .map_err(|k| self.err(k))
    }

    /// A G1 query (A, B1, C or H) read in place from the mapping, every point checked: a
    /// backend prepares it without a parsed copy. [`Self::release_query`] drops its pages once
    /// it is prepared.
    pub fn g1_query_packed(&self, q: Query) -> Result<PackedG1<'_>, Error> {
        if q == Query::B2 {
            return Err(Error::Mismatch("B2 is a G2 query".into()));
        }
        PackedG1::new(self.query_bytes(q)?).map_err(|e| self.err(point_error(e, q.name())))
    }

    /// The B2 query read in place from the mapping, every point checked.
    pub fn b2_query_packed(&self) -> Result<PackedG2<'_>, Error> {
        PackedG2::new(self.query_bytes(Query::B2)?)
            .map_err(|e| self.err(point_error(e, Query::B2.name())))
    }

    /// Drops the mapped pages of query `q` (after it was prepared from [`Self::g1_query_packed`]
    /// or [`Self::b2_query_packed`]); reading it again maps them back in from the file.
    pub fn release_query(&self, q: Query) {
        if let Ok(b) = self.query_bytes(q) {
            self.file.release(b);
        }
    }

    /// A G1 query (A, B1, C, H or IC), each point checked to be on the curve.
    pub fn g1_query(&self, q: Query) -> Result<Vec<G1Affine>, Error> {
        let points = self.g1_query_packed(q)?.to_affine();
        self.release_query(q);
        Ok(points)
    }

    /// The B2 query (G2), each point checked to be on the curve.
    pub fn b2_query(&self) -> Result<Vec<G2Affine>, Error> {
        let points = self.b2_query_packed()?.to_affine();
        self.release_query(Query::B2);
        Ok(points)
    }
}

fn parse_header(bf: &BinFile<'_>) -> Result<ZkeyHeader, FormatError> {
    let mut c = bf.cursor(1, "protocol")?;
    let protocol = c.u32()?;
    if protocol != 1 {
        return Err(FormatError::NotGroth16(protocol));
    }
    let mut c = bf.cursor(2, "Groth16 header")?;
    if c.u32()? != 32 {
        return Err(FormatError::WrongCurve {
            what: "base field size",
        });
    }
    if !binfile::is_modulus::<Fq>(c.bytes(32)?) {
        return Err(FormatError::WrongCurve {
            what: "base field prime q",
        });
    }
    if c.u32()? != 32 {
        return Err(FormatError::WrongCurve {
            what: "scalar field size",
        });
    }
    if !binfile::is_modulus::<Fr>(c.bytes(32)?) {
        return Err(FormatError::WrongCurve {
            what: "scalar field prime r",
        });
    }
    let n_vars = c.u32()?;
    let n_public = c.u32()?;
    let domain_size = c.u32()?;
    if n_vars == 0 || n_public >= n_vars {
        return Err(FormatError::Invalid(format!(
            "header: {n_public} public signals but {n_vars} variables"
        )));
    }
    if !domain_size.is_power_of_two() || domain_size > 1 << 28 {
        return Err(FormatError::Invalid(format!(
            "header: domain size {domain_size} is not a power of two up to 2^28"
        )));
    }
    let g1 = |c: &mut binfile::Cursor<'_>, what| -> Result<G1Affine, FormatError> {
        g1_point(c.bytes(G1_BYTES)?, what)
    };
    let alpha1 = g1(&mut c, "alpha1")?;
    let beta1 = g1(&mut c, "beta1")?;
    let beta2 = g2_point(c.bytes(G2_BYTES)?, "beta2")?;
    let gamma2 = g2_point(c.bytes(G2_BYTES)?, "gamma2")?;
    let delta1 = g1(&mut c, "delta1")?;
    let delta2 = g2_point(c.bytes(G2_BYTES)?, "delta2")?;
    c.finish(2)?;
    for (p, what) in [(&beta2, "beta2"), (&gamma2, "gamma2"), (&delta2, "delta2")] {
        if !p.is_in_correct_subgroup_assuming_on_curve() {
            return Err(FormatError::NotInSubgroup { what, index: 0 });
        }
    }
    Ok(ZkeyHeader {
        n_vars,
        n_public,
        domain_size,
        alpha1,
        beta1,
        beta2,
        gamma2,
        delta1,
        delta2,
    })
}

/// R⁻¹ in Fr (R = 2^256 mod r), to take one Montgomery factor off stored coefficients.
pub fn r_inverse() -> Fr {
    // Invertible: R is a power of two and r is odd.
    Fr::from(2u64).pow([256u64]).inverse().unwrap_or_default()
}

/// Bytes of one entry of section 4: matrix, constraint, signal (u32 each), then the value.
pub const COEF_ENTRY: usize = 12 + 32;

/// The constraint an entry of section 4 belongs to (the entry's bytes 4..8).
pub fn coef_constraint(e: &[u8]) -> u32 {
    u32::from_le_bytes([e[4], e[5], e[6], e[7]])
}

/// Entry #`i` of section 4, checked against the header: its matrix (0 = A, 1 = B) and the
/// coefficient, whose value is c·R as stored (one Montgomery factor too many: the caller takes it
/// off, per coefficient or once per sum).
pub fn coef_entry(e: &[u8], i: usize, h: &ZkeyHeader) -> Result<(u32, Coef), FormatError> {
    let word = |k: usize| u32::from_le_bytes([e[k], e[k + 1], e[k + 2], e[k + 3]]);
    let (matrix, constraint, signal) = (word(0), word(4), word(8));
    let bad = |m: String| FormatError::Invalid(format!("coefficient #{i}: {m}"));
    if matrix > 1 {
        return Err(bad(format!("matrix {matrix} is neither A (0) nor B (1)")));
    }
    if constraint >= h.domain_size {
        return Err(bad(format!(
            "constraint {constraint} outside the domain of {}",
            h.domain_size
        )));
    }
    if signal >= h.n_vars {
        return Err(bad(format!(
            "signal {signal} outside the {} variables",
            h.n_vars
        )));
    }
    let raw = binfile::canonical::<Fr>(&e[12..44]).ok_or(FormatError::NotCanonical {
        what: "coefficient",
        index: i as u64,
    })?;
    Ok((
        matrix,
        Coef {
            constraint,
            signal,
            value: Fr::new_unchecked(raw),
        },
    ))
}

/// Section 4's entries (the bytes after the count) parsed, checked and split by matrix.
fn parse_coefs(body: &[u8], h: &ZkeyHeader) -> Result<Coefs, FormatError> {
    let r_inv = r_inverse();
    let parsed: Vec<(u32, Coef)> = body
        .par_chunks_exact(COEF_ENTRY)
        .enumerate()
        .map(|(i, e)| {
            let (matrix, mut coef) = coef_entry(e, i, h)?;
            // The stored integer is c·R² (mod r); read as Montgomery form it is c·R.
            coef.value *= r_inv;
            Ok((matrix, coef))
        })
        .collect::<Result<_, _>>()?;
    // Exact capacities: growing by doubling would leave up to half of each vector unused.
    let in_a = parsed.iter().filter(|(m, _)| *m == 0).count();
    let mut out = Coefs {
        a: Vec::with_capacity(in_a),
        b: Vec::with_capacity(parsed.len() - in_a),
    };
    for (m, coef) in parsed {
        if m == 0 {
            out.a.push(coef)
        } else {
            out.b.push(coef)
        }
    }
    // snarkjs writes them in constraint order; sort (stably) in case another tool did not.
    for v in [&mut out.a, &mut out.b] {
        if !v.windows(2).all(|w| w[0].constraint <= w[1].constraint) {
            v.sort_by_key(|c| c.constraint);
        }
    }
    Ok(out)
}

/// The format error for a point of `what` that the packed reader refused (by its index there).
fn point_error(e: PackedError, what: &'static str) -> FormatError {
    match e {
        PackedError::NotCanonical(i) => FormatError::NotCanonical {
            what,
            index: i as u64,
        },
        PackedError::NotOnCurve(i) => FormatError::NotOnCurve {
            what,
            index: i as u64,
        },
        PackedError::Length(n) => {
            FormatError::Invalid(format!("{what}: {n} bytes are not whole points"))
        }
    }
}

/// A G1 point from its 64 zkey bytes; all zeros is the point at infinity.
pub fn g1_point(b: &[u8], what: &'static str) -> Result<G1Affine, FormatError> {
    Ok(PackedG1::new(b).map_err(|e| point_error(e, what))?.point(0))
}

/// A G2 point from its 128 zkey bytes (on-curve check only: the subgroup check costs a scalar
/// multiplication per point and the prover's self-verification catches a bad key anyway).
pub fn g2_point(b: &[u8], what: &'static str) -> Result<G2Affine, FormatError> {
    Ok(PackedG2::new(b).map_err(|e| point_error(e, what))?.point(0))
}

//! snarkjs's JSON files: `proof.json`, `public.json` and `verification_key.json`.
//!
//! Numbers are decimal strings. Points are ffjavascript "objects": G1 `[x, y, z]`, G2
//! `[[x0, x1], [y0, y1], [z0, z1]]`, in Jacobian coordinates (snarkjs always writes z = 1, or
//! `[0, 1, 0]` for the point at infinity). Files are written like snarkjs writes them
//! (`JSON.stringify(v, null, 1)`: one-space indent, no trailing newline), so our `proof.json`
//! and `public.json` are byte-identical in shape to snarkjs's.
//!
//! Everything read is checked: values below their modulus, points on the curve and (G2) in the
//! prime-order subgroup, since these files come from outside.

use std::path::Path;

use ark_bn254::{Bn254, Fq, Fq2};
use ark_ec::pairing::Pairing;
use ark_ff::{BigInt, Field, PrimeField, Zero};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{Error, Fr, G1Affine, G2Affine};

/// A Groth16 proof.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Proof {
    pub a: G1Affine,
    pub b: G2Affine,
    pub c: G1Affine,
}

/// A Groth16 verification key (what `snarkjs zkey export verificationkey` writes).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifyingKey {
    pub alpha1: G1Affine,
    pub beta2: G2Affine,
    pub gamma2: G2Affine,
    pub delta2: G2Affine,
    /// IC\[0\] for the constant 1, then one per public signal.
    pub ic: Vec<G1Affine>,
}

impl VerifyingKey {
    pub fn n_public(&self) -> usize {
        self.ic.len().saturating_sub(1)
    }
}

#[derive(Serialize, Deserialize)]
struct ProofJson {
    pi_a: Vec<String>,
    pi_b: Vec<Vec<String>>,
    pi_c: Vec<String>,
    /// `snarkjs groth16 verify` never reads a proof's protocol or curve (only the key's), so
    /// a proof without them is as good.
    #[serde(default = "groth16")]
    protocol: String,
    /// rapidsnark, which proves over BN254 only, leaves it out of the proofs it writes.
    #[serde(default = "bn128")]
    curve: String,
}

fn bn128() -> String {
    "bn128".into()
}

fn groth16() -> String {
    "groth16".into()
}

#[derive(Serialize, Deserialize)]
struct VkJson {
    protocol: String,
    curve: String,
    #[serde(rename = "nPublic")]
    n_public: usize,
    vk_alpha_1: Vec<String>,
    vk_beta_2: Vec<Vec<String>>,
    vk_gamma_2: Vec<Vec<String>>,
    vk_delta_2: Vec<Vec<String>>,
    /// e(α, β), which verifiers may use instead of a fourth pairing. Not trusted on input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    vk_alphabeta_12: Option<Value>,
    #[serde(rename = "IC")]
    ic: Vec<Vec<String>>,
}

/// Serialises like `JSON.stringify(v, null, 1)`.
fn to_snarkjs_string<T: Serialize>(v: &T) -> String {
    let mut out = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b" ");
    let mut ser = serde_json::Serializer::with_formatter(&mut out, fmt);
    // Serialising plain strings and vectors into memory cannot fail.
    if v.serialize(&mut ser).is_err() {
        return String::new();
    }
    String::from_utf8(out).unwrap_or_default()
}

/// A decimal string as a 256-bit integer (digits only; None on overflow or anything else).
pub fn parse_decimal(s: &str) -> Option<[u64; 4]> {
    if s.is_empty() || s.len() > 80 || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut v = [0u64; 4];
    for b in s.bytes() {
        let mut carry = (b - b'0') as u128;
        for limb in v.iter_mut() {
            let t = (*limb as u128) * 10 + carry;
            *limb = t as u64;
            carry = t >> 64;
        }
        if carry != 0 {
            return None;
        }
    }
    Some(v)
}

fn field<F: PrimeField<BigInt = BigInt<4>>>(s: &str) -> Option<F> {
    F::from_bigint(BigInt::new(parse_decimal(s)?))
}

fn fq(s: &str, what: &str) -> Result<Fq, String> {
    field::<Fq>(s).ok_or_else(|| {
        format!("{what}: {s:?} is not a decimal number below the base field modulus")
    })
}

fn g1_from(v: &[String], what: &str) -> Result<G1Affine, String> {
    if v.len() != 2 && v.len() != 3 {
        return Err(format!(
            "{what}: a G1 point has 2 or 3 coordinates, not {}",
            v.len()
        ));
    }
    let (x, y) = (fq(&v[0], what)?, fq(&v[1], what)?);
    let z = if v.len() == 3 {
        fq(&v[2], what)?
    } else {
        Fq::ONE
    };
    let p = if z.is_zero() {
        G1Affine::identity()
    } else {
        // Jacobian (x/z², y/z³), as ffjavascript reads it.
        let zi = z.inverse().ok_or_else(|| format!("{what}: bad z"))?;
        let zi2 = zi.square();
        G1Affine::new_unchecked(x * zi2, y * zi2 * zi)
    };
    if !p.is_on_curve() {
        return Err(format!("{what}: not a point on BN254 G1"));
    }
    Ok(p)
}

fn fq2_from(v: &[String], what: &str) -> Result<Fq2, String> {
    if v.len() != 2 {
        return Err(format!(
            "{what}: an Fq2 element has 2 components, not {}",
            v.len()
        ));
    }
    Ok(Fq2::new(fq(&v[0], what)?, fq(&v[1], what)?))
}

fn g2_from(v: &[Vec<String>], what: &str) -> Result<G2Affine, String> {
    if v.len() != 2 && v.len() != 3 {
        return Err(format!(
            "{what}: a G2 point has 2 or 3 coordinates, not {}",
            v.len()
        ));
    }
    let (x, y) = (fq2_from(&v[0], what)?, fq2_from(&v[1], what)?);
    let z = if v.len() == 3 {
        fq2_from(&v[2], what)?
    } else {
        Fq2::ONE
    };
    let p = if z.is_zero() {
        G2Affine::identity()
    } else {
        let zi = z.inverse().ok_or_else(|| format!("{what}: bad z"))?;
        let zi2 = zi.square();
        G2Affine::new_unchecked(x * zi2, y * zi2 * zi)
    };
    if !p.is_on_curve() {
        return Err(format!("{what}: not a point on BN254 G2"));
    }
    if !p.is_in_correct_subgroup_assuming_on_curve() {
        return Err(format!("{what}: not in the prime-order subgroup of G2"));
    }
    Ok(p)
}

fn g1_to(p: &G1Affine) -> Vec<String> {
    if p.infinity {
        return vec!["0".into(), "1".into(), "0".into()];
    }
    vec![p.x.to_string(), p.y.to_string(), "1".into()]
}

fn g2_to(p: &G2Affine) -> Vec<Vec<String>> {
    if p.infinity {
        return vec![
            vec!["0".into(), "0".into()],
            vec!["1".into(), "0".into()],
            vec!["0".into(), "0".into()],
        ];
    }
    vec![
        vec![p.x.c0.to_string(), p.x.c1.to_string()],
        vec![p.y.c0.to_string(), p.y.c1.to_string()],
        vec!["1".into(), "0".into()],
    ]
}

fn check_header(protocol: &str, curve: &str) -> Result<(), String> {
    if protocol != "groth16" {
        return Err(format!("protocol {protocol:?} is not groth16"));
    }
    // As snarkjs's getCurveFromName reads it: case and punctuation do not count, and BN254
    // goes by three names.
    let name: String = curve
        .chars()
        .filter(char::is_ascii_alphanumeric)
        .map(|c| c.to_ascii_uppercase())
        .collect();
    if !matches!(name.as_str(), "BN128" | "BN254" | "ALTBN128") {
        return Err(format!("curve {curve:?} is not bn128 (BN254)"));
    }
    Ok(())
}

fn read_json(path: &Path) -> Result<String, Error> {
    let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    // JSON files here are small; refuse to pull a huge file into memory by mistake.
    if meta.len() > 64 << 20 {
        return Err(Error::Json {
            path: path.into(),
            message: format!("{} bytes is too large for this file", meta.len()),
        });
    }
    std::fs::read_to_string(path).map_err(|e| Error::io(path, e))
}

fn json_err(path: &Path, message: impl ToString) -> Error {
    Error::Json {
        path: path.into(),
        message: message.to_string(),
    }
}

fn write_file(path: &Path, text: &str) -> Result<(), Error> {
    std::fs::write(path, text).map_err(|e| Error::io(path, e))
}

impl Proof {
    /// `proof.json` text, as snarkjs writes it.
    pub fn to_json(&self) -> String {
        to_snarkjs_string(&ProofJson {
            pi_a: g1_to(&self.a),
            pi_b: g2_to(&self.b),
            pi_c: g1_to(&self.c),
            protocol: "groth16".into(),
            curve: "bn128".into(),
        })
    }

    pub fn from_json(text: &str) -> Result<Proof, String> {
        let j: ProofJson = serde_json::from_str(text).map_err(|e| e.to_string())?;
        check_header(&j.protocol, &j.curve)?;
        Ok(Proof {
            a: g1_from(&j.pi_a, "pi_a")?,
            b: g2_from(&j.pi_b, "pi_b")?,
            c: g1_from(&j.pi_c, "pi_c")?,
        })
    }

    pub fn load(path: &Path) -> Result<Proof, Error> {
        Proof::from_json(&read_json(path)?).map_err(|m| json_err(path, m))
    }

    pub fn save(&self, path: &Path) -> Result<(), Error> {
        write_file(path, &self.to_json())
    }
}

/// `public.json` text for these public signals, as snarkjs writes it.
pub fn public_to_json(public: &[Fr]) -> String {
    if public.is_empty() {
        // snarkjs's writer (bfj, one-space indent) opens a line even for an empty array.
        return "[\n]".into();
    }
    to_snarkjs_string(&public.iter().map(|v| v.to_string()).collect::<Vec<_>>())
}

/// Public signals from `public.json` text (each below r).
pub fn public_from_json(text: &str) -> Result<Vec<Fr>, String> {
    let v: Vec<String> = serde_json::from_str(text).map_err(|e| e.to_string())?;
    v.iter()
        .enumerate()
        .map(|(i, s)| {
            field::<Fr>(s).ok_or_else(|| {
                format!("public signal #{i} ({s:?}) is not a decimal number below r")
            })
        })
        .collect()
}

pub fn load_public(path: &Path) -> Result<Vec<Fr>, Error> {
    public_from_json(&read_json(path)?).map_err(|m| json_err(path, m))
}

pub fn save_public(path: &Path, public: &[Fr]) -> Result<(), Error> {
    write_file(path, &public_to_json(public))
}

/// An Fq12 element as ffjavascript's object: [[c0.c0, c0.c1, c0.c2], [c1.c0, c1.c1, c1.c2]]
/// of Fq2 pairs (the same tower as arkworks: Fq6 = Fq2\[v\]/(v³-(9+u)), Fq12 = Fq6\[w\]/(w²-v)).
fn fq12_to(v: &ark_bn254::Fq12) -> Value {
    let f2 = |x: &Fq2| Value::from(vec![x.c0.to_string(), x.c1.to_string()]);
    let f6 = |x: &ark_bn254::Fq6| Value::from(vec![f2(&x.c0), f2(&x.c1), f2(&x.c2)]);
    Value::from(vec![f6(&v.c0), f6(&v.c1)])
}

impl VerifyingKey {
    /// `verification_key.json` text, as `snarkjs zkey export verificationkey` writes it.
    pub fn to_json(&self) -> String {
        let alphabeta = Bn254::pairing(self.alpha1, self.beta2).0;
        to_snarkjs_string(&VkJson {
            protocol: "groth16".into(),
            curve: "bn128".into(),
            n_public: self.n_public(),
            vk_alpha_1: g1_to(&self.alpha1),
            vk_beta_2: g2_to(&self.beta2),
            vk_gamma_2: g2_to(&self.gamma2),
            vk_delta_2: g2_to(&self.delta2),
            vk_alphabeta_12: Some(fq12_to(&alphabeta)),
            ic: self.ic.iter().map(g1_to).collect(),
        })
    }

    pub fn from_json(text: &str) -> Result<VerifyingKey, String> {
        let j: VkJson = serde_json::from_str(text).map_err(|e| e.to_string())?;
        check_header(&j.protocol, &j.curve)?;
        // `nPublic` comes from the file: usize::MAX must not overflow the count.
        if j.n_public.checked_add(1) != Some(j.ic.len()) {
            return Err(format!(
                "nPublic is {} but IC has {} points (expected nPublic + 1)",
                j.n_public,
                j.ic.len()
            ));
        }
        let ic =
            j.ic.iter()
                .enumerate()
                .map(|(i, p)| g1_from(p, &format!("IC[{i}]")))
                .collect::<Result<_, _>>()?;
        Ok(VerifyingKey {
            alpha1: g1_from(&j.vk_alpha_1, "vk_alpha_1")?,
            beta2: g2_from(&j.vk_beta_2, "vk_beta_2")?,
            gamma2: g2_from(&j.vk_gamma_2, "vk_gamma_2")?,
            delta2: g2_from(&j.vk_delta_2, "vk_delta_2")?,
            ic,
        })
    }

    pub fn load(path: &Path) -> Result<VerifyingKey, Error> {
        VerifyingKey::from_json(&read_json(path)?).map_err(|m| json_err(path, m))
    }

    pub fn save(&self, path: &Path) -> Result<(), Error> {
        write_file(path, &self.to_json())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture_vk() -> String {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/mulchain.vkey.json");
        std::fs::read_to_string(path).unwrap()
    }

    /// `nPublic` is the file's word: `nPublic + 1` overflowed (a panic with overflow checks,
    /// as the fuzz targets and tests build; a wrapped count without).
    #[test]
    fn a_huge_npublic_is_an_error() {
        let mut v: Value = serde_json::from_str(&fixture_vk()).unwrap();
        assert!(VerifyingKey::from_json(&v.to_string()).is_ok());
        for n in [u64::MAX, u64::MAX - 1, 1 << 40] {
            v["nPublic"] = Value::from(n);
            let e = VerifyingKey::from_json(&v.to_string()).unwrap_err();
            assert!(e.contains("nPublic"), "{n}: {e}");
        }
    }

    /// What `snarkjs groth16 verify` accepts: the curve by any of BN254's names, in any case
    /// and punctuation (getCurveFromName), and a proof without protocol or curve (it reads
    /// neither).
    #[test]
    fn files_snarkjs_accepts_are_accepted() {
        let mut v: Value = serde_json::from_str(&fixture_vk()).unwrap();
        for curve in ["bn128", "BN254", "alt_bn128", "bn-128", "AltBn128"] {
            v["curve"] = curve.into();
            assert!(VerifyingKey::from_json(&v.to_string()).is_ok(), "{curve}");
        }
        for curve in ["bls12381", "bn", ""] {
            v["curve"] = curve.into();
            assert!(VerifyingKey::from_json(&v.to_string()).is_err(), "{curve}");
        }
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/mulchain.proof.json");
        let mut p: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let expected = Proof::from_json(&p.to_string()).unwrap();
        let o = p.as_object_mut().unwrap();
        o.remove("protocol");
        o.remove("curve");
        assert_eq!(Proof::from_json(&p.to_string()).unwrap(), expected);
    }

    /// bfj, which writes snarkjs's files, opens a line even in an empty array.
    #[test]
    fn no_public_signals_is_written_as_snarkjs_writes_it() {
        assert_eq!(public_to_json(&[]), "[\n]");
        assert_eq!(public_from_json("[\n]").unwrap(), Vec::<Fr>::new());
        assert_eq!(public_to_json(&[Fr::from(7u64)]), "[\n \"7\"\n]");
    }
}

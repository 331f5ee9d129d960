//! Groth16 verification with arkworks' BN254 pairing, the same check as snarkjs
//! `groth16_verify.js`: e(-A, B) · e(IC₀ + Σ publicᵢ·ICᵢ₊₁, γ) · e(C, δ) · e(α, β) = 1.

use ark_bn254::{Bn254, G1Projective};
use ark_ec::pairing::Pairing;
use ark_ec::{AffineRepr, CurveGroup, VariableBaseMSM};
use ark_ff::Zero;

use crate::json::{Proof, VerifyingKey};
use crate::{Error, Fr};

/// True when `proof` is valid for `public` under `vk`. A wrong number of public signals is an
/// error (the proof is for another circuit), not a `false`.
pub fn verify(vk: &VerifyingKey, proof: &Proof, public: &[Fr]) -> Result<bool, Error> {
    if public.len() != vk.n_public() {
        return Err(Error::Mismatch(format!(
            "{} public signals given, the verification key expects {}",
            public.len(),
            vk.n_public()
        )));
    }
    let cpub = vk.ic[0].into_group()
        + G1Projective::msm(&vk.ic[1..], public)
            .map_err(|_| Error::Mismatch("IC and public signals differ in length".into()))?;
    let g1 = [
        (-proof.a.into_group()).into_affine(),
        cpub.into_affine(),
        proof.c,
        vk.alpha1,
    ];
    let g2 = [proof.b, vk.gamma2, vk.delta2, vk.beta2];
    Ok(Bn254::multi_pairing(g1, g2).is_zero())
}

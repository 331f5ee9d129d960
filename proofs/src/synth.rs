//! Synthetic circuits of any size with a Groth16 setup of our own, written as snarkjs files
//! (`.zkey`, `.wtns`): what `rigworker bench --work prove` proves at 2^16, 2^18 and 2^20
//! constraints without shipping hundreds of megabytes of keys.
//!
//! The circuit is a chain `s_{k+1} = (s_k + 1)·s_k` from a public input `a` to a public output,
//! so every witness value is a full-size field element, as in real circuits. The setup follows
//! snarkjs exactly (`groth16 setup` + `zkey contribute`): one extra A row per public signal,
//! the H query as the Lagrange points of the odd coset of the doubled domain divided by δ,
//! coefficients stored as c·R², points in Montgomery form. Its toxic waste is random and
//! dropped at once: keys fit for benchmarks and tests, not for securing anything.

use std::path::Path;

use ark_ec::scalar_mul::BatchMulPreprocessing;
use ark_ec::{AffineRepr, CurveGroup, PrimeGroup};
use ark_ff::{BigInteger, Field, One, PrimeField, Zero};
use backends::prove::{G1Projective, G2Projective, root_of_unity};
use rand::RngCore;
use rayon::prelude::*;

use crate::wtns::Witness;
use crate::{Error, Fr, G1Affine, G2Affine};

type Fq = ark_bn254::Fq;

/// A synthetic circuit's files, in memory.
pub struct SynthCircuit {
    pub zkey: Vec<u8>,
    pub witness: Witness,
    /// R1CS constraints (the public-input rows snarkjs adds excluded).
    pub constraints: usize,
    pub domain_size: usize,
}

/// Public signals: the output and the input `a`.
const N_PUBLIC: usize = 2;

/// The number of chain constraints that fills a domain of `2^log_domain` points.
pub fn constraints_for_domain(log_domain: u32) -> usize {
    (1usize << log_domain) - N_PUBLIC - 1
}

/// Builds a chain of `constraints` multiplications, its witness, and a fresh setup.
pub fn generate(constraints: usize) -> Result<SynthCircuit, Error> {
    if constraints == 0 || constraints > (1 << 26) {
        return Err(Error::Mismatch(format!(
            "synthetic circuit of {constraints} constraints: choose 1..=2^26"
        )));
    }
    let m = constraints;
    let n = (m + N_PUBLIC + 1).next_power_of_two();
    // Signals: 0 = one, 1 = out, 2 = a, 3.. = s_1..s_{m-1}.
    let n_vars = 3 + m - 1;
    let sig = |k: usize| -> usize {
        // s_0 = a; s_m = out; s_k = signal 2 + k in between.
        if k == 0 {
            2
        } else if k == m {
            1
        } else {
            2 + k
        }
    };
    let mut rng = rand::rng();
    let mut w = vec![Fr::zero(); n_vars];
    w[0] = Fr::one();
    let mut s = random_fr(&mut rng);
    w[2] = s;
    for k in 0..m {
        s *= s + Fr::one();
        w[sig(k + 1)] = s;
    }

    // A: s_k + one; B: s_k; C: s_{k+1}. Then snarkjs's rows binding the public signals.
    let mut a_coefs: Vec<(u32, u32, Fr)> = Vec::with_capacity(2 * m + N_PUBLIC + 1);
    let mut b_coefs: Vec<(u32, u32, Fr)> = Vec::with_capacity(m);
    let mut c_coefs: Vec<(u32, u32, Fr)> = Vec::with_capacity(m);
    for k in 0..m {
        a_coefs.push((k as u32, sig(k) as u32, Fr::one()));
        a_coefs.push((k as u32, 0, Fr::one()));
        b_coefs.push((k as u32, sig(k) as u32, Fr::one()));
        c_coefs.push((k as u32, sig(k + 1) as u32, Fr::one()));
    }
    for i in 0..=N_PUBLIC {
        a_coefs.push(((m + i) as u32, i as u32, Fr::one()));
    }

    // Toxic waste.
    let tau = random_fr(&mut rng);
    let alpha = random_fr(&mut rng);
    let beta = random_fr(&mut rng);
    let gamma = random_fr(&mut rng);
    let delta = random_fr(&mut rng);
    let gamma_inv = gamma
        .inverse()
        .ok_or_else(|| Error::Mismatch("γ = 0".into()))?;
    let delta_inv = delta
        .inverse()
        .ok_or_else(|| Error::Mismatch("δ = 0".into()))?;

    let lag = lagrange_at(n, tau)?;
    let eval = |coefs: &[(u32, u32, Fr)]| {
        let mut v = vec![Fr::zero(); n_vars];
        for &(row, signal, c) in coefs {
            v[signal as usize] += c * lag[row as usize];
        }
        v
    };
    let at = eval(&a_coefs);
    let bt = eval(&b_coefs);
    let ct = eval(&c_coefs);
    let k_of = |i: usize| beta * at[i] + alpha * bt[i] + ct[i];
    let ic: Vec<Fr> = (0..=N_PUBLIC).map(|i| k_of(i) * gamma_inv).collect();
    let cq: Vec<Fr> = (N_PUBLIC + 1..n_vars)
        .map(|i| k_of(i) * delta_inv)
        .collect();
    let lag2 = lagrange_at(2 * n, tau)?;
    let hq: Vec<Fr> = (0..n).map(|i| lag2[2 * i + 1] * delta_inv).collect();
    drop((lag, lag2));

    let g1 = G1Projective::generator();
    let g2 = G2Projective::generator();
    let t1 = BatchMulPreprocessing::new(g1, n_vars.max(n));
    let t2 = BatchMulPreprocessing::new(g2, n_vars);
    let mul1 = |v: &[Fr]| -> Vec<G1Affine> { t1.batch_mul(v) };

    let mut z = Vec::new();
    z.extend_from_slice(b"zkey");
    z.extend_from_slice(&1u32.to_le_bytes());
    z.extend_from_slice(&10u32.to_le_bytes());
    section(&mut z, 1, |b| b.extend_from_slice(&1u32.to_le_bytes()));
    section(&mut z, 2, |b| {
        b.extend_from_slice(&32u32.to_le_bytes());
        b.extend_from_slice(&Fq::MODULUS.to_bytes_le());
        b.extend_from_slice(&32u32.to_le_bytes());
        b.extend_from_slice(&Fr::MODULUS.to_bytes_le());
        b.extend_from_slice(&(n_vars as u32).to_le_bytes());
        b.extend_from_slice(&(N_PUBLIC as u32).to_le_bytes());
        b.extend_from_slice(&(n as u32).to_le_bytes());
        put_g1(b, &(g1 * alpha).into_affine());
        put_g1(b, &(g1 * beta).into_affine());
        put_g2(b, &(g2 * beta).into_affine());
        put_g2(b, &(g2 * gamma).into_affine());
        put_g1(b, &(g1 * delta).into_affine());
        put_g2(b, &(g2 * delta).into_affine());
    });
    section(&mut z, 3, |b| mul1(&ic).iter().for_each(|p| put_g1(b, p)));
    section(&mut z, 4, |b| {
        let r = Fr::from(2u64).pow([256u64]);
        let r2 = r * r;
        b.extend_from_slice(&((a_coefs.len() + b_coefs.len()) as u32).to_le_bytes());
        for (matrix, coefs) in [(0u32, &a_coefs), (1u32, &b_coefs)] {
            for &(row, signal, c) in coefs.iter() {
                b.extend_from_slice(&matrix.to_le_bytes());
                b.extend_from_slice(&row.to_le_bytes());
                b.extend_from_slice(&signal.to_le_bytes());
                b.extend_from_slice(&(c * r2).into_bigint().to_bytes_le());
            }
        }
    });
    section(&mut z, 5, |b| mul1(&at).iter().for_each(|p| put_g1(b, p)));
    section(&mut z, 6, |b| mul1(&bt).iter().for_each(|p| put_g1(b, p)));
    section(&mut z, 7, |b| {
        t2.batch_mul(&bt).iter().for_each(|p| put_g2(b, p))
    });
    section(&mut z, 8, |b| mul1(&cq).iter().for_each(|p| put_g1(b, p)));
    section(&mut z, 9, |b| mul1(&hq).iter().for_each(|p| put_g1(b, p)));
    // Contributions: none recorded (snarkjs would list its ceremony here).
    section(&mut z, 10, |b| {
        b.extend_from_slice(&[0u8; 64]);
        b.extend_from_slice(&0u32.to_le_bytes());
    });
    Ok(SynthCircuit {
        zkey: z,
        witness: Witness {
            values: w.iter().map(|v| v.into_bigint()).collect(),
        },
        constraints: m,
        domain_size: n,
    })
}

/// A uniformly random non-zero field element (512 random bits reduced mod r).
fn random_fr(rng: &mut impl RngCore) -> Fr {
    loop {
        let mut b = [0u8; 64];
        rng.fill_bytes(&mut b);
        let x = Fr::from_le_bytes_mod_order(&b);
        if !x.is_zero() {
            return x;
        }
    }
}

/// Writes `NAME.zkey` and `NAME.wtns` into `dir`.
pub fn write(c: &SynthCircuit, dir: &Path, name: &str) -> Result<(), Error> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let zp = dir.join(format!("{name}.zkey"));
    std::fs::write(&zp, &c.zkey).map_err(|e| Error::io(&zp, e))?;
    let wp = dir.join(format!("{name}.wtns"));
    std::fs::write(&wp, c.witness.to_bytes()).map_err(|e| Error::io(&wp, e))
}

/// L_j(τ) for j in 0..n over the subgroup of size n: (τ^n − 1)/n · ω^j / (τ − ω^j).
fn lagrange_at(n: usize, tau: Fr) -> Result<Vec<Fr>, Error> {
    let omega = root_of_unity(n)
        .ok_or_else(|| Error::Mismatch(format!("no root of unity of order {n}")))?;
    let mut pows = Vec::with_capacity(n);
    let mut x = Fr::one();
    for _ in 0..n {
        pows.push(x);
        x *= omega;
    }
    let mut den: Vec<Fr> = pows.par_iter().map(|wj| tau - wj).collect();
    ark_ff::batch_inversion(&mut den);
    let n_inv = Fr::from(n as u64)
        .inverse()
        .ok_or_else(|| Error::Mismatch("n = 0".into()))?;
    let z = (tau.pow([n as u64]) - Fr::one()) * n_inv;
    Ok(pows
        .par_iter()
        .zip(den.par_iter())
        .map(|(wj, d)| z * wj * d)
        .collect())
}

fn section(out: &mut Vec<u8>, id: u32, body: impl FnOnce(&mut Vec<u8>)) {
    out.extend_from_slice(&id.to_le_bytes());
    let len_at = out.len();
    out.extend_from_slice(&0u64.to_le_bytes());
    let start = out.len();
    body(out);
    let len = (out.len() - start) as u64;
    out[len_at..len_at + 8].copy_from_slice(&len.to_le_bytes());
}

fn put_fq(b: &mut Vec<u8>, x: &Fq) {
    // Montgomery form, as snarkjs stores it (arkworks' internal representation).
    for l in x.0.0 {
        b.extend_from_slice(&l.to_le_bytes());
    }
}

fn put_g1(b: &mut Vec<u8>, p: &G1Affine) {
    match p.xy() {
        Some((x, y)) => {
            put_fq(b, &x);
            put_fq(b, &y);
        }
        None => b.extend_from_slice(&[0u8; 64]),
    }
}

fn put_g2(b: &mut Vec<u8>, p: &G2Affine) {
    match p.xy() {
        Some((x, y)) => {
            put_fq(b, &x.c0);
            put_fq(b, &x.c1);
            put_fq(b, &y.c0);
            put_fq(b, &y.c1);
        }
        None => b.extend_from_slice(&[0u8; 128]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::binfile::FileBytes;
    use crate::prover::{PreparedKey, ProveOptions};
    use crate::zkey::ZkeyFile;
    use backends::prove::CpuProveBackend;
    use std::sync::Arc;
    use std::time::Instant;

    #[test]
    fn synthetic_keys_prove_and_verify() {
        for m in [1usize, 5, 1000] {
            let c = generate(m).unwrap();
            let z =
                ZkeyFile::from_bytes(FileBytes::from_vec("synth.zkey", c.zkey.clone())).unwrap();
            assert_eq!(z.header.domain_size as usize, c.domain_size);
            let key = PreparedKey::from_zkey(
                &z,
                Arc::new(CpuProveBackend::new()),
                crate::Precompute::None,
                Instant::now(),
            )
            .unwrap();
            // The prover's self-check verifies the proof against the key's own vk.
            let out = key
                .prove(&c.witness, ProveOptions { self_check: true })
                .unwrap();
            assert_eq!(out.public.len(), N_PUBLIC);
            // A wrong witness does not verify.
            let mut bad = c.witness.clone();
            let last = bad.values.len() - 1;
            bad.values[last] = Fr::from(7u64).into_bigint();
            assert!(key.prove(&bad, ProveOptions { self_check: true }).is_err());
        }
    }
}

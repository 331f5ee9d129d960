//! The CPU proving backend: our own MSM ([`super::msm`]) and NTT ([`super::ntt`]) over
//! arkworks' BN254 types, both on rayon's thread pool.

use ark_ff::{Field, Zero};

use super::msm::{MsmConfig, PreparedMsm};
use super::{
    Fr, G1Affine, G1Msm, G2Affine, G2Msm, PackedG1, PackedG2, Precompute, ProveBackend, ProveError,
    ScalarRepr, glv, ntt,
};
use std::sync::Arc;

/// MSM and NTT on the CPU (all rayon threads).
#[derive(Debug, Default, Clone)]
pub struct CpuProveBackend {
    /// Overrides the automatic MSM configuration (benchmarks and tuning).
    pub config_override: Option<MsmConfig>,
}

impl CpuProveBackend {
    pub fn new() -> Self {
        CpuProveBackend::default()
    }

    fn config(&self, n: usize, pre: Precompute) -> MsmConfig {
        self.config_override.unwrap_or_else(|| {
            let mut c = MsmConfig::for_size(n, pre == Precompute::Tables);
            // The copy saves one multiplication per point and window; only on the portable
            // path is that worth the memory (the IFMA lanes compute the images a block at a
            // time, and on the `mulx` path the copy never measured faster: see `Precompute`).
            // Tables asked for where they would not pay (`for_size`) get the same.
            c.phi_copy = pre != Precompute::None && c.table_depth == 1 && !c.adx && !c.ifma;
            c
        })
    }
}

/// β and β² (the two primitive cube roots of unity in Fq), as candidates for φ on G1.
fn betas_g1() -> [ark_bn254::Fq; 2] {
    [glv::BETA_G1, glv::BETA_G1.square()]
}

/// The same roots embedded in Fq2, for G2 (there φ acts as λ with the other root).
fn betas_g2() -> [ark_bn254::Fq2; 2] {
    let [a, b] = betas_g1();
    [
        ark_bn254::Fq2::new(a, ark_bn254::Fq::zero()),
        ark_bn254::Fq2::new(b, ark_bn254::Fq::zero()),
    ]
}

impl ProveBackend for CpuProveBackend {
    fn name(&self) -> &str {
        "cpu"
    }

    fn prepare_g1(&self, bases: &[G1Affine], pre: Precompute) -> Result<G1Msm, ProveError> {
        let m = PreparedMsm::<ark_bn254::g1::Config>::new(
            bases,
            self.config(bases.len(), pre),
            &betas_g1(),
        )?;
        Ok(Arc::new(m))
    }

    fn prepare_g2(&self, bases: &[G2Affine], pre: Precompute) -> Result<G2Msm, ProveError> {
        let m = PreparedMsm::<ark_bn254::g2::Config>::new(
            bases,
            self.config(bases.len(), pre),
            &betas_g2(),
        )?;
        Ok(Arc::new(m))
    }

    fn prepare_g1_packed(&self, bases: PackedG1<'_>, pre: Precompute) -> Result<G1Msm, ProveError> {
        let m = PreparedMsm::<ark_bn254::g1::Config>::from_packed(
            bases,
            self.config(bases.len(), pre),
            &betas_g1(),
        )?;
        Ok(Arc::new(m))
    }

    fn prepare_g2_packed(&self, bases: PackedG2<'_>, pre: Precompute) -> Result<G2Msm, ProveError> {
        let m = PreparedMsm::<ark_bn254::g2::Config>::from_packed(
            bases,
            self.config(bases.len(), pre),
            &betas_g2(),
        )?;
        Ok(Arc::new(m))
    }

    fn intt(&self, values: &mut Vec<Fr>) -> Result<(), ProveError> {
        ntt::intt(values)
    }

    fn coset_ntt(&self, values: &mut Vec<Fr>, shift: Fr) -> Result<(), ProveError> {
        ntt::coset_ntt(values, shift)
    }

    fn quotient(
        &self,
        a: Vec<Fr>,
        b: Vec<Fr>,
        c: Vec<Fr>,
        shift: Fr,
    ) -> Result<Vec<ScalarRepr>, ProveError> {
        ntt::quotient(a, b, c, shift)
    }
}

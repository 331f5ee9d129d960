//! Groth16 proving on a real NVIDIA GPU (`backends::prove::gpu::cuda`) against the CPU
//! backend: G1 and G2 MSMs from 2^1 to 2^16 points (random and witness-like scalars, awkward
//! bases), NTTs and coset NTTs to 2^16, the fused quotient and H term, the field kernels, and
//! whole proofs of the committed fixtures that our verifier accepts. The CUDA kernels are the same
//! source that pocl runs in CI (`kernels/opencl/bn254_*.h`), with the carry chains as PTX
//! instructions instead of emulated, so these tests check what CI cannot: the PTX itself.
//! Without a GPU each test prints `SKIPPED (cuda): reason`; `RIGWORKER_REQUIRE_BACKENDS=cuda`
//! (as `hw-tests/run-gpu.sh` sets) makes that a failure.

use std::sync::Arc;

use ark_ec::{CurveGroup, PrimeGroup};
use ark_ff::{PrimeField, UniformRand, Zero};
use ark_std::rand::{RngCore, SeedableRng, rngs::StdRng};
use backends::prove::gpu::cuda::CudaProveDevice;
use backends::prove::gpu::{GpuDevice, GpuProveBackend, Kernel};
use backends::prove::{
    CpuProveBackend, Fr, G1Affine, G1Projective, G2Affine, G2Projective, Precompute, ProveBackend,
    ScalarRepr, root_of_unity,
};

fn gpu() -> Option<GpuProveBackend<CudaProveDevice>> {
    match CudaProveDevice::open(0) {
        Ok(d) => Some(GpuProveBackend::new(d)),
        Err(e) => {
            hw_tests::skip_or_fail("cuda", &e.to_string());
            None
        }
    }
}

fn reprs(s: &[Fr]) -> Vec<ScalarRepr> {
    s.iter().map(|x| x.into_bigint()).collect()
}

fn witness_like(rng: &mut StdRng, n: usize) -> Vec<Fr> {
    (0..n)
        .map(|_| match rng.next_u32() % 10 {
            0..=3 => Fr::zero(),
            4..=6 => Fr::from(1u64),
            7 => Fr::from(u64::from(rng.next_u32() & 0xff)),
            8 => -Fr::from(1u64),
            _ => Fr::rand(rng),
        })
        .collect()
}

#[test]
fn cuda_field_kernels_match_arkworks() {
    let Some(g) = gpu() else { return };
    let dev = g.device();
    let mut rng = StdRng::seed_from_u64(1);
    let n = 4096;
    let a: Vec<ark_bn254::Fq> = (0..n).map(|_| ark_bn254::Fq::rand(&mut rng)).collect();
    let b: Vec<ark_bn254::Fq> = (0..n).map(|_| ark_bn254::Fq::rand(&mut rng)).collect();
    let words = |v: &[ark_bn254::Fq]| -> Vec<u32> {
        v.iter()
            .flat_map(|f| f.0.0.iter().flat_map(|l| [*l as u32, (*l >> 32) as u32]))
            .collect()
    };
    let (bx, by, bo) = (
        dev.alloc(n * 8).unwrap(),
        dev.alloc(n * 8).unwrap(),
        dev.alloc(n * 8).unwrap(),
    );
    dev.write(&bx, &words(&a)).unwrap();
    dev.write(&by, &words(&b)).unwrap();
    dev.launch(Kernel::TestFqMul, n as u32, &[&bx, &by, &bo], &[n as u32])
        .unwrap();
    let mut out = vec![0u32; n * 8];
    dev.read(&bo, &mut out).unwrap();
    let want: Vec<ark_bn254::Fq> = a.iter().zip(&b).map(|(x, y)| *x * y).collect();
    assert_eq!(out, words(&want));
}

#[test]
fn cuda_msms_match_the_cpu() {
    let Some(g) = gpu() else { return };
    let cpu = CpuProveBackend::new();
    let mut rng = StdRng::seed_from_u64(2);
    for log in [1, 2, 5, 8, 11, 12, 14, 16] {
        let n = 1usize << log;
        let gen1 = G1Projective::generator();
        let mut b1: Vec<G1Affine> = G1Projective::normalize_batch(
            &(0..n)
                .map(|_| gen1 * Fr::rand(&mut rng))
                .collect::<Vec<_>>(),
        );
        if n > 4 {
            b1[1] = b1[0];
            b1[2] = -b1[0];
            b1[3] = G1Affine::identity();
        }
        let m_gpu = g.prepare_g1(&b1, Precompute::None).unwrap();
        let m_cpu = cpu.prepare_g1(&b1, Precompute::None).unwrap();
        for s in [
            (0..n).map(|_| Fr::rand(&mut rng)).collect::<Vec<_>>(),
            witness_like(&mut rng, n),
            vec![Fr::from(1u64); n],
        ] {
            let s = reprs(&s);
            assert_eq!(
                m_gpu.msm(&s).unwrap().into_affine(),
                m_cpu.msm(&s).unwrap().into_affine(),
                "G1 2^{log}"
            );
        }
        if log <= 14 {
            let gen2 = G2Projective::generator();
            let b2: Vec<G2Affine> = G2Projective::normalize_batch(
                &(0..n)
                    .map(|_| gen2 * Fr::rand(&mut rng))
                    .collect::<Vec<_>>(),
            );
            let m_gpu = g.prepare_g2(&b2, Precompute::None).unwrap();
            let m_cpu = cpu.prepare_g2(&b2, Precompute::None).unwrap();
            let s = reprs(&witness_like(&mut rng, n));
            assert_eq!(
                m_gpu.msm(&s).unwrap().into_affine(),
                m_cpu.msm(&s).unwrap().into_affine(),
                "G2 2^{log}"
            );
        }
    }
}

#[test]
fn cuda_ntts_match_the_cpu() {
    let Some(g) = gpu() else { return };
    let cpu = CpuProveBackend::new();
    let mut rng = StdRng::seed_from_u64(3);
    for log in 1..=16 {
        let n = 1usize << log;
        let v: Vec<Fr> = (0..n).map(|_| Fr::rand(&mut rng)).collect();
        let (mut a, mut b) = (v.clone(), v);
        g.intt(&mut a).unwrap();
        cpu.intt(&mut b).unwrap();
        assert_eq!(a, b, "intt 2^{log}");
        let shift = root_of_unity(2 * n).unwrap();
        g.coset_ntt(&mut a, shift).unwrap();
        cpu.coset_ntt(&mut b, shift).unwrap();
        assert_eq!(a, b, "coset 2^{log}");
        let vecs: Vec<Vec<Fr>> = (0..3)
            .map(|_| (0..n).map(|_| Fr::rand(&mut rng)).collect())
            .collect();
        assert_eq!(
            g.quotient(vecs[0].clone(), vecs[1].clone(), vecs[2].clone(), shift)
                .unwrap(),
            cpu.quotient(vecs[0].clone(), vecs[1].clone(), vecs[2].clone(), shift)
                .unwrap(),
            "quotient 2^{log}"
        );
        // The fused H term: the quotient's scalars stay on the GPU for the H MSM.
        let bases: Vec<G1Affine> = G1Projective::normalize_batch(
            &(0..n)
                .map(|_| G1Projective::generator() * Fr::rand(&mut rng))
                .collect::<Vec<_>>(),
        );
        let before = backends::prove::device_fallbacks();
        let got = g
            .h_term(
                vecs[0].clone(),
                vecs[1].clone(),
                vecs[2].clone(),
                shift,
                g.prepare_g1(&bases, Precompute::None).unwrap().as_ref(),
            )
            .unwrap();
        assert_eq!(
            backends::prove::device_fallbacks(),
            before,
            "H term 2^{log} fell back to the CPU"
        );
        let d = cpu
            .quotient(vecs[0].clone(), vecs[1].clone(), vecs[2].clone(), shift)
            .unwrap();
        let want = cpu
            .prepare_g1(&bases, Precompute::None)
            .unwrap()
            .msm(&d)
            .unwrap();
        assert_eq!(
            got.point.into_affine(),
            want.into_affine(),
            "H term 2^{log}"
        );
    }
}

#[test]
fn cuda_proofs_of_the_fixtures_verify() {
    let Some(g) = gpu() else { return };
    let backend: Arc<dyn ProveBackend> = Arc::new(g);
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../proofs/fixtures");
    for circuit in ["poseidon", "mulchain"] {
        let key = proofs::prover::PreparedKey::load(
            std::path::Path::new(&format!("{dir}/{circuit}.zkey")),
            backend.clone(),
            Precompute::None,
        )
        .unwrap();
        let w =
            proofs::Witness::load(std::path::Path::new(&format!("{dir}/{circuit}.wtns"))).unwrap();
        let before = backends::prove::device_fallbacks();
        // Self-verification is on: a wrong device result fails here.
        let out = key
            .prove(&w, proofs::prover::ProveOptions { self_check: true })
            .unwrap();
        assert_eq!(
            backends::prove::device_fallbacks(),
            before,
            "{circuit}: an operation fell back to the CPU"
        );
        assert!(proofs::verifier::verify(&key.vk, &out.proof, &out.public).unwrap());
    }
}

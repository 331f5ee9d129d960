//! The GPU proving backends (`backends::prove::gpu`) against the CPU backend, on every device
//! runtime that is present: G1 and G2 MSMs of 2^1..2^12 points with random scalars and the
//! awkward ones (0, 1, r−1, all equal, repeated and opposite bases, points at infinity, a
//! witness-like mix of 0/1/small/large), inverse and coset NTTs of 2^1..2^14 elements, the
//! fused quotient and H term, a device that fails in the middle of each operation (the CPU
//! takes over), and the field kernels. CI runs OpenCL on pocl and wgpu on lavapipe; a
//! runtime without a device prints `SKIPPED (name): reason` and passes, unless
//! `RIGWORKER_REQUIRE_BACKENDS` names it, which makes it fail.
#![cfg(feature = "prove")]
#![cfg(any(feature = "opencl", feature = "wgpu", feature = "cuda"))]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use ark_ec::{CurveGroup, PrimeGroup};
use ark_ff::{PrimeField, UniformRand, Zero};
use ark_std::rand::{RngCore, SeedableRng, rngs::StdRng};
use backends::prove::gpu::{GpuDevice, GpuProveBackend, Kernel};
use backends::prove::{
    CpuProveBackend, Fr, G1Affine, G1Projective, G2Affine, G2Projective, Precompute, ProveBackend,
    ProveError, ScalarRepr, SharedScalars, root_of_unity,
};

fn required(name: &str) -> bool {
    std::env::var("RIGWORKER_REQUIRE_BACKENDS")
        .map(|v| v.split(',').any(|b| b.trim().eq_ignore_ascii_case(name)))
        .unwrap_or(false)
}

/// The backend on device 0 of runtime `name`, or `None` after saying why the test skips.
fn backend(name: &str) -> Option<Arc<dyn ProveBackend>> {
    match backends::prove::open_prove_backend(name, 0) {
        Ok(b) => Some(b),
        Err(e) => {
            assert!(
                !required(name),
                "{name} is required by RIGWORKER_REQUIRE_BACKENDS but cannot prove: {e}"
            );
            println!("SKIPPED ({name}): {e}");
            None
        }
    }
}

/// Every runtime compiled in except the CPU (`RIGWORKER_TEST_PROVE_BACKENDS=opencl` narrows
/// the list while working on one of them).
fn runtimes() -> Vec<&'static str> {
    let only = std::env::var("RIGWORKER_TEST_PROVE_BACKENDS").ok();
    backends::prove::prove_backend_names()
        .into_iter()
        .filter(|n| *n != "cpu")
        .filter(|n| {
            only.as_deref()
                .is_none_or(|o| o.split(',').any(|x| x == *n))
        })
        .collect()
}

fn random_g1(rng: &mut StdRng, n: usize) -> Vec<G1Affine> {
    let g = G1Projective::generator();
    let v: Vec<G1Projective> = (0..n).map(|_| g * Fr::rand(rng)).collect();
    G1Projective::normalize_batch(&v)
}

fn random_g2(rng: &mut StdRng, n: usize) -> Vec<G2Affine> {
    let g = G2Projective::generator();
    let v: Vec<G2Projective> = (0..n).map(|_| g * Fr::rand(rng)).collect();
    G2Projective::normalize_batch(&v)
}

fn reprs(s: &[Fr]) -> Vec<ScalarRepr> {
    s.iter().map(|x| x.into_bigint()).collect()
}

/// The scalar patterns every size is tried with.
#[derive(Clone, Copy, Debug)]
enum Pattern {
    Random,
    Zero,
    One,
    MinusOne,
    AllEqual,
    /// What circom witnesses look like: mostly 0 and 1, some small, a few full-size.
    WitnessLike,
}

const PATTERNS: [Pattern; 6] = [
    Pattern::Random,
    Pattern::Zero,
    Pattern::One,
    Pattern::MinusOne,
    Pattern::AllEqual,
    Pattern::WitnessLike,
];

fn scalars(rng: &mut StdRng, n: usize, p: Pattern) -> Vec<Fr> {
    let same = Fr::rand(rng);
    (0..n)
        .map(|i| match p {
            Pattern::Random => Fr::rand(rng),
            Pattern::Zero => Fr::zero(),
            Pattern::One => Fr::from(1u64),
            Pattern::MinusOne => -Fr::from(1u64),
            Pattern::AllEqual => same,
            Pattern::WitnessLike => match rng.next_u32() % 10 {
                0..=3 => Fr::zero(),
                4..=6 => Fr::from(1u64),
                7 => Fr::from(u64::from(rng.next_u32() & 0xff)),
                8 => -Fr::from(u64::from(i as u32 & 7)),
                _ => Fr::rand(rng),
            },
        })
        .collect()
}

/// Repeated, opposite and infinite bases mixed into a random set.
fn awkward_g1(rng: &mut StdRng, n: usize) -> Vec<G1Affine> {
    let mut b = random_g1(rng, n);
    for i in 1..n {
        match i % 7 {
            1 => b[i] = b[0],
            2 => b[i] = -b[0],
            3 => b[i] = G1Affine::identity(),
            _ => {}
        }
    }
    b
}

fn awkward_g2(rng: &mut StdRng, n: usize) -> Vec<G2Affine> {
    let mut b = random_g2(rng, n);
    for i in 1..n {
        match i % 7 {
            1 => b[i] = b[0],
            2 => b[i] = -b[0],
            3 => b[i] = G2Affine::identity(),
            _ => {}
        }
    }
    b
}

#[test]
fn g1_msm_matches_the_cpu() {
    let cpu = CpuProveBackend::new();
    for name in runtimes() {
        let Some(gpu) = backend(name) else { continue };
        let mut rng = StdRng::seed_from_u64(11);
        for log in 1..=12 {
            let n = 1usize << log;
            let bases = if log % 2 == 0 {
                awkward_g1(&mut rng, n)
            } else {
                random_g1(&mut rng, n)
            };
            let on_gpu = gpu.prepare_g1(&bases, Precompute::None).expect("prepare");
            let on_cpu = cpu.prepare_g1(&bases, Precompute::None).expect("prepare");
            for p in PATTERNS {
                let s = reprs(&scalars(&mut rng, n, p));
                let want = on_cpu.msm(&s).expect("cpu msm");
                let got = on_gpu.msm(&s).expect("gpu msm");
                assert_eq!(
                    got.into_affine(),
                    want.into_affine(),
                    "{name} G1 2^{log} {p:?}"
                );
            }
        }
    }
}

#[test]
fn g2_msm_matches_the_cpu() {
    let cpu = CpuProveBackend::new();
    for name in runtimes() {
        let Some(gpu) = backend(name) else { continue };
        let mut rng = StdRng::seed_from_u64(12);
        for log in (1..=12).step_by(1) {
            let n = 1usize << log;
            let bases = if log % 2 == 0 {
                awkward_g2(&mut rng, n)
            } else {
                random_g2(&mut rng, n)
            };
            let on_gpu = gpu.prepare_g2(&bases, Precompute::None).expect("prepare");
            let on_cpu = cpu.prepare_g2(&bases, Precompute::None).expect("prepare");
            // G2 is slow on a CPU driver: every pattern at small sizes, two at the largest.
            let patterns: &[Pattern] = if log <= 8 {
                &PATTERNS
            } else {
                &[Pattern::Random, Pattern::WitnessLike]
            };
            for p in patterns {
                let s = reprs(&scalars(&mut rng, n, *p));
                let want = on_cpu.msm(&s).expect("cpu msm");
                let got = on_gpu.msm(&s).expect("gpu msm");
                assert_eq!(
                    got.into_affine(),
                    want.into_affine(),
                    "{name} G2 2^{log} {p:?}"
                );
            }
        }
    }
}

/// Narrow and wide windows and tiny chunks force many accumulation levels and long runs
/// split across invocations.
#[cfg(feature = "opencl")]
#[test]
fn msm_configurations_agree() {
    use backends::prove::gpu::GpuMsmConfig;
    use backends::prove::gpu::opencl::OpenClProveDevice;
    let dev = match OpenClProveDevice::open(0) {
        Ok(d) => d,
        Err(e) => {
            assert!(!required("opencl"), "opencl required: {e}");
            println!("SKIPPED (opencl): {e}");
            return;
        }
    };
    let mut gpu = GpuProveBackend::new(dev);
    let cpu = CpuProveBackend::new();
    let mut rng = StdRng::seed_from_u64(13);
    let n = 700;
    let bases = awkward_g1(&mut rng, n);
    let on_cpu = cpu.prepare_g1(&bases, Precompute::None).expect("prepare");
    for (c, chunk) in [(2, 4), (3, 5), (7, 4), (9, 64), (13, 6), (16, 32)] {
        gpu.msm_config = GpuMsmConfig {
            window_bits: Some(c),
            chunk: Some(chunk),
        };
        let on_gpu = gpu.prepare_g1(&bases, Precompute::None).expect("prepare");
        for p in PATTERNS {
            let s = reprs(&scalars(&mut rng, n, p));
            assert_eq!(
                on_gpu.msm(&s).expect("gpu").into_affine(),
                on_cpu.msm(&s).expect("cpu").into_affine(),
                "c={c} chunk={chunk} {p:?}"
            );
        }
    }
}

#[test]
fn ntts_match_the_cpu() {
    let cpu = CpuProveBackend::new();
    for name in runtimes() {
        let Some(gpu) = backend(name) else { continue };
        let mut rng = StdRng::seed_from_u64(14);
        for log in 1..=14 {
            let n = 1usize << log;
            let v: Vec<Fr> = (0..n).map(|_| Fr::rand(&mut rng)).collect();
            let (mut a, mut b) = (v.clone(), v.clone());
            gpu.intt(&mut a).expect("gpu intt");
            cpu.intt(&mut b).expect("cpu intt");
            assert_eq!(a, b, "{name} inverse NTT 2^{log}");
            let shift = root_of_unity(2 * n).expect("root");
            gpu.coset_ntt(&mut a, shift).expect("gpu coset");
            cpu.coset_ntt(&mut b, shift).expect("cpu coset");
            assert_eq!(a, b, "{name} coset NTT 2^{log}");
            // Another shift on the same domain (tables are per shift).
            let other = Fr::from(7u64);
            gpu.coset_ntt(&mut a, other).expect("gpu coset");
            cpu.coset_ntt(&mut b, other).expect("cpu coset");
            assert_eq!(a, b, "{name} coset NTT 2^{log}, shift 7");
        }
    }
}

#[test]
fn quotient_matches_the_cpu() {
    let cpu = CpuProveBackend::new();
    for name in runtimes() {
        let Some(gpu) = backend(name) else { continue };
        let mut rng = StdRng::seed_from_u64(15);
        for log in [1, 2, 5, 10, 13] {
            let n = 1usize << log;
            let mut vecs: Vec<Vec<Fr>> = (0..3)
                .map(|_| (0..n).map(|_| Fr::rand(&mut rng)).collect())
                .collect();
            // Zeros and ones, as real constraint systems give.
            vecs[2][0] = Fr::zero();
            vecs[1][n - 1] = Fr::from(1u64);
            let shift = root_of_unity(2 * n).expect("root");
            let want = cpu
                .quotient(vecs[0].clone(), vecs[1].clone(), vecs[2].clone(), shift)
                .expect("cpu");
            let got = gpu
                .quotient(vecs[0].clone(), vecs[1].clone(), vecs[2].clone(), shift)
                .expect("gpu");
            assert_eq!(got, want, "{name} quotient 2^{log}");
        }
    }
}

/// The fused H term (the quotient's scalars stay on the device for the H MSM) against the
/// CPU's quotient and MSM, and with H bases another backend prepared (no fusing possible).
#[test]
fn h_term_matches_the_cpu() {
    let cpu = CpuProveBackend::new();
    for name in runtimes() {
        let Some(gpu) = backend(name) else { continue };
        let mut rng = StdRng::seed_from_u64(16);
        for log in [1, 3, 6, 9, 12] {
            let n = 1usize << log;
            let vecs: Vec<Vec<Fr>> = (0..3)
                .map(|_| scalars(&mut rng, n, Pattern::WitnessLike))
                .collect();
            let shift = root_of_unity(2 * n).expect("root");
            let bases = awkward_g1(&mut rng, n);
            let d = cpu
                .quotient(vecs[0].clone(), vecs[1].clone(), vecs[2].clone(), shift)
                .expect("cpu quotient");
            let want = cpu
                .prepare_g1(&bases, Precompute::None)
                .expect("prepare")
                .msm(&d)
                .expect("cpu msm")
                .into_affine();
            let own = gpu.prepare_g1(&bases, Precompute::None).expect("prepare");
            let foreign = cpu.prepare_g1(&bases, Precompute::None).expect("prepare");
            for (h, whose) in [(&own, "its own"), (&foreign, "the CPU's")] {
                let got = gpu
                    .h_term(
                        vecs[0].clone(),
                        vecs[1].clone(),
                        vecs[2].clone(),
                        shift,
                        h.as_ref(),
                    )
                    .expect("gpu h term");
                assert_eq!(
                    got.point.into_affine(),
                    want,
                    "{name} H term 2^{log}, {whose} bases"
                );
            }
        }
    }
}

/// A real device whose operations (alloc, write, read, zero, launch), counted from 1, fail from
/// the `fail_at`-th on, as a device lost in the middle of a proof does.
struct Faulty<D> {
    dev: D,
    ops: AtomicUsize,
    fail_at: AtomicUsize,
    /// The most words one `read` has copied back since [`Faulty::arm`].
    largest_read: AtomicUsize,
    /// Words written to the device since [`Faulty::arm`].
    written: AtomicUsize,
}

impl<D: GpuDevice> Faulty<D> {
    fn tick(&self) -> Result<(), ProveError> {
        let k = self.ops.fetch_add(1, Ordering::SeqCst) + 1;
        if k >= self.fail_at.load(Ordering::SeqCst) {
            return Err(ProveError::Device {
                backend: self.dev.backend().into(),
                message: format!("injected fault at operation {k}"),
            });
        }
        Ok(())
    }

    /// Counts from zero again; operations from the `fail_at`-th on fail (`usize::MAX`: none).
    fn arm(&self, fail_at: usize) {
        self.ops.store(0, Ordering::SeqCst);
        self.largest_read.store(0, Ordering::SeqCst);
        self.written.store(0, Ordering::SeqCst);
        self.fail_at.store(fail_at, Ordering::SeqCst);
    }

    fn ops(&self) -> usize {
        self.ops.load(Ordering::SeqCst)
    }
}

impl<D: GpuDevice> GpuDevice for Faulty<D> {
    type Buffer = D::Buffer;
    fn backend(&self) -> &'static str {
        self.dev.backend()
    }
    fn info(&self) -> &backends::device::DeviceInfo {
        self.dev.info()
    }
    fn max_buffer_bytes(&self) -> Option<u64> {
        self.dev.max_buffer_bytes()
    }
    fn alloc(&self, words: usize) -> Result<Self::Buffer, ProveError> {
        self.tick()?;
        self.dev.alloc(words)
    }
    fn write(&self, buf: &Self::Buffer, data: &[u32]) -> Result<(), ProveError> {
        self.tick()?;
        self.written.fetch_add(data.len(), Ordering::SeqCst);
        self.dev.write(buf, data)
    }
    fn read(&self, buf: &Self::Buffer, out: &mut [u32]) -> Result<(), ProveError> {
        self.tick()?;
        self.largest_read.fetch_max(out.len(), Ordering::SeqCst);
        self.dev.read(buf, out)
    }
    fn zero(&self, buf: &Self::Buffer, words: usize) -> Result<(), ProveError> {
        self.tick()?;
        self.dev.zero(buf, words)
    }
    fn launch(
        &self,
        kernel: Kernel,
        threads: u32,
        buffers: &[&Self::Buffer],
        params: &[u32],
    ) -> Result<(), ProveError> {
        self.tick()?;
        self.dev.launch(kernel, threads, buffers, params)
    }
}

/// Every operation a device fails in the middle of (first, middle, last device call) gives the
/// CPU's result, counts one fallback, and leaves the backend working once the device is back.
fn faults_fall_back<D: GpuDevice>(name: &str, dev: D) {
    let gpu = GpuProveBackend::new(Faulty {
        dev,
        ops: AtomicUsize::new(0),
        fail_at: AtomicUsize::new(usize::MAX),
        largest_read: AtomicUsize::new(0),
        written: AtomicUsize::new(0),
    });
    let cpu = CpuProveBackend::new();
    let mut rng = StdRng::seed_from_u64(17);
    let n = 256;
    let bases = awkward_g1(&mut rng, n);
    let g1 = gpu.prepare_g1(&bases, Precompute::None).expect("prepare");
    let bases2 = awkward_g2(&mut rng, 16);
    let g2 = gpu.prepare_g2(&bases2, Precompute::None).expect("prepare");
    let vecs: Vec<Vec<Fr>> = (0..3)
        .map(|_| scalars(&mut rng, n, Pattern::WitnessLike))
        .collect();
    let shift = root_of_unity(2 * n).expect("root");
    let s1 = reprs(&scalars(&mut rng, n, Pattern::WitnessLike));
    let s2 = reprs(&scalars(&mut rng, 16, Pattern::Random));
    let want_g1 = cpu
        .prepare_g1(&bases, Precompute::None)
        .expect("prepare")
        .msm(&s1)
        .expect("cpu")
        .into_affine();
    let want_g2 = cpu
        .prepare_g2(&bases2, Precompute::None)
        .expect("prepare")
        .msm(&s2)
        .expect("cpu")
        .into_affine();
    let want_d = cpu
        .quotient(vecs[0].clone(), vecs[1].clone(), vecs[2].clone(), shift)
        .expect("cpu");
    let want_h = cpu
        .prepare_g1(&bases, Precompute::None)
        .expect("prepare")
        .msm(&want_d)
        .expect("cpu")
        .into_affine();
    // A proof's witness MSMs: A-like and B2-like over all of it, C-like over its tail (as
    // few points as the G2 MSM above: G2 is slow on a CPU device).
    let (m, first) = (16, 3);
    let w = reprs(&scalars(&mut rng, m, Pattern::WitnessLike));
    let g1a = gpu
        .prepare_g1(&bases[..m], Precompute::None)
        .expect("prepare");
    let g1c = gpu
        .prepare_g1(&bases[first..m], Precompute::None)
        .expect("prepare");
    let want_w = (
        cpu.prepare_g1(&bases[..m], Precompute::None)
            .expect("prepare")
            .msm(&w)
            .expect("cpu")
            .into_affine(),
        cpu.prepare_g2(&bases2, Precompute::None)
            .expect("prepare")
            .msm(&w)
            .expect("cpu")
            .into_affine(),
        cpu.prepare_g1(&bases[first..m], Precompute::None)
            .expect("prepare")
            .msm(&w[first..])
            .expect("cpu")
            .into_affine(),
    );
    let f = gpu.device();
    type Op<'a> = Box<dyn Fn() -> bool + 'a>;
    let ops: [(&str, Op); 5] = [
        (
            "G1 MSM",
            Box::new(|| g1.msm(&s1).expect("g1").into_affine() == want_g1),
        ),
        (
            "G2 MSM",
            Box::new(|| g2.msm(&s2).expect("g2").into_affine() == want_g2),
        ),
        (
            "quotient",
            Box::new(|| {
                gpu.quotient(vecs[0].clone(), vecs[1].clone(), vecs[2].clone(), shift)
                    .expect("quotient")
                    == want_d
            }),
        ),
        (
            "H term",
            Box::new(|| {
                gpu.h_term(
                    vecs[0].clone(),
                    vecs[1].clone(),
                    vecs[2].clone(),
                    shift,
                    g1.as_ref(),
                )
                .expect("h term")
                .point
                .into_affine()
                    == want_h
            }),
        ),
        (
            "witness MSMs",
            Box::new(|| {
                let shared = SharedScalars::new(&w);
                let got = (
                    g1a.msm_shared(&shared, 0).expect("a").into_affine(),
                    g2.msm_shared(&shared, 0).expect("b2").into_affine(),
                    g1c.msm_shared(&shared, first).expect("c").into_affine(),
                );
                got == want_w
            }),
        ),
    ];
    for (what, op) in &ops {
        f.arm(usize::MAX);
        // Warm: buffers and tables exist, so the counted run below is the steady state.
        assert!(op(), "{name} {what}: wrong on a working device");
        f.arm(usize::MAX);
        let before = backends::prove::device_fallbacks();
        assert!(op(), "{name} {what}: wrong on a working device");
        let calls = f.ops();
        assert!(calls > 2, "{name} {what}: {calls} device calls");
        if *what == "H term" {
            // The quotient's n scalars went into the MSM without coming back: only a word
            // and the window sums were read.
            let read = f.largest_read.load(Ordering::SeqCst);
            assert!(read < n * 8, "{name}: the H term read {read} words back");
        }
        if *what == "witness MSMs" {
            // One upload for the three MSMs, nothing else written.
            let written = f.written.load(Ordering::SeqCst);
            assert_eq!(
                written,
                m * 8,
                "{name}: the witness MSMs wrote {written} words"
            );
        }
        // Nothing else in this test binary fails on purpose.
        assert_eq!(backends::prove::device_fallbacks(), before, "{name} {what}");
        for fail_at in [1, calls / 2, calls] {
            f.arm(fail_at);
            let before = backends::prove::device_fallbacks();
            assert!(
                op(),
                "{name} {what}: wrong after a fault at call {fail_at} of {calls}"
            );
            assert!(
                backends::prove::device_fallbacks() > before,
                "{name} {what}: a fault at call {fail_at} of {calls} was not counted"
            );
            f.arm(usize::MAX);
            assert!(op(), "{name} {what}: wrong once the device is back");
        }
    }
}

#[test]
fn device_faults_fall_back_to_the_cpu() {
    for name in runtimes() {
        match name {
            #[cfg(feature = "opencl")]
            "opencl" => match backends::prove::gpu::opencl::OpenClProveDevice::open(0) {
                Ok(d) => faults_fall_back(name, d),
                Err(e) => {
                    assert!(!required(name), "{name} required: {e}");
                    println!("SKIPPED ({name}): {e}");
                }
            },
            #[cfg(feature = "wgpu")]
            "wgpu" => match backends::prove::gpu::wgpu::open(0) {
                Ok(d) => faults_fall_back(name, d),
                Err(e) => {
                    assert!(!required(name), "{name} required: {e}");
                    println!("SKIPPED ({name}): {e}");
                }
            },
            #[cfg(feature = "cuda")]
            "cuda" => match backends::prove::gpu::cuda::CudaProveDevice::open(0) {
                Ok(d) => faults_fall_back(name, d),
                Err(e) => {
                    assert!(!required(name), "{name} required: {e}");
                    println!("SKIPPED ({name}): {e}");
                }
            },
            _ => {}
        }
    }
}

#[test]
fn bad_sizes_are_errors_not_fallbacks() {
    for name in runtimes() {
        let Some(gpu) = backend(name) else { continue };
        let mut v = vec![Fr::from(3u64); 3];
        assert!(gpu.intt(&mut v).is_err(), "{name}");
        let bases = random_g1(&mut StdRng::seed_from_u64(1), 4);
        let m = gpu.prepare_g1(&bases, Precompute::None).expect("prepare");
        assert!(m.msm(&reprs(&[Fr::from(1u64); 3])).is_err(), "{name}");
        let five = reprs(&[Fr::from(1u64); 5]);
        let shared = SharedScalars::new(&five);
        assert!(
            m.msm_shared(&shared, 0).is_err(),
            "{name}: 5 scalars for 4 bases"
        );
        assert!(
            m.msm_shared(&shared, 2).is_err(),
            "{name}: 3 scalars for 4 bases"
        );
        assert!(m.msm_shared(&shared, 9).is_err(), "{name}: past the end");
        assert!(m.msm_shared(&shared, 1).is_ok(), "{name}");
        let mut bad = reprs(&[Fr::from(1u64); 4]);
        bad[2] = Fr::MODULUS;
        assert!(m.msm(&bad).is_err(), "{name}: a scalar >= r is refused");
    }
}

#[cfg(feature = "opencl")]
#[test]
fn opencl_field_kernels_match_arkworks() {
    use ark_bn254::{Fq, Fq2};
    use backends::prove::gpu::opencl::OpenClProveDevice;
    use backends::prove::gpu::{GpuDevice, Kernel};
    let dev = match OpenClProveDevice::open(0) {
        Ok(d) => d,
        Err(e) => {
            assert!(!required("opencl"), "opencl required: {e}");
            println!("SKIPPED (opencl): {e}");
            return;
        }
    };
    let mut rng = StdRng::seed_from_u64(16);
    let n = 512;
    let edge = |i: usize| match i {
        0 => Some(Fq::zero()),
        1 => Some(Fq::from(1u64)),
        2 => Some(-Fq::from(1u64)),
        3 => Some(-Fq::from(2u64)),
        _ => None,
    };
    let a: Vec<Fq> = (0..n)
        .map(|i| edge(i).unwrap_or_else(|| Fq::rand(&mut rng)))
        .collect();
    let b: Vec<Fq> = (0..n)
        .map(|i| edge(n - 1 - i).unwrap_or_else(|| Fq::rand(&mut rng)))
        .collect();
    let words = |v: &[Fq]| -> Vec<u32> {
        v.iter()
            .flat_map(|f| f.0.0.iter().flat_map(|l| [*l as u32, (*l >> 32) as u32]))
            .collect()
    };
    let run = |k: Kernel, x: &[u32], y: &[u32], count: usize| -> Vec<u32> {
        let (bx, by, bo) = (
            dev.alloc(x.len()).expect("alloc"),
            dev.alloc(y.len()).expect("alloc"),
            dev.alloc(x.len()).expect("alloc"),
        );
        dev.write(&bx, x).expect("write");
        dev.write(&by, y).expect("write");
        dev.launch(k, count as u32, &[&bx, &by, &bo], &[count as u32])
            .expect("launch");
        let mut out = vec![0u32; x.len()];
        dev.read(&bo, &mut out).expect("read");
        out
    };
    let got = run(Kernel::TestFqMul, &words(&a), &words(&b), n);
    let want: Vec<Fq> = a.iter().zip(&b).map(|(x, y)| *x * y).collect();
    assert_eq!(got, words(&want), "Fq products");

    let a2: Vec<Fq2> = a.chunks(2).map(|c| Fq2::new(c[0], c[1])).collect();
    let b2: Vec<Fq2> = b.chunks(2).map(|c| Fq2::new(c[0], c[1])).collect();
    let w2 = |v: &[Fq2]| -> Vec<u32> {
        let flat: Vec<Fq> = v.iter().flat_map(|f| [f.c0, f.c1]).collect();
        words(&flat)
    };
    let got = run(Kernel::TestFq2Mul, &w2(&a2), &w2(&b2), n / 2);
    let want: Vec<Fq2> = a2.iter().zip(&b2).map(|(x, y)| *x * y).collect();
    assert_eq!(got, w2(&want), "Fq2 products");

    let fa: Vec<Fr> = (0..n).map(|_| Fr::rand(&mut rng)).collect();
    let fb: Vec<Fr> = (0..n)
        .map(|i| {
            if i < 2 {
                -Fr::from(1u64)
            } else {
                Fr::rand(&mut rng)
            }
        })
        .collect();
    let fw = |v: &[Fr]| -> Vec<u32> {
        v.iter()
            .flat_map(|f| f.0.0.iter().flat_map(|l| [*l as u32, (*l >> 32) as u32]))
            .collect()
    };
    let got = run(Kernel::TestFrMul, &fw(&fa), &fw(&fb), n);
    let want: Vec<Fr> = fa.iter().zip(&fb).map(|(x, y)| *x * y).collect();
    assert_eq!(got, fw(&want), "Fr products");
}

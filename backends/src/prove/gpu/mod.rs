//! Groth16 MSM and NTT on a GPU: the host side, written once for every runtime.
//!
//! This module only schedules (sizes, buffers, launches, the last few point additions); the
//! arithmetic is device code from `kernels` and a runtime only implements [`GpuDevice`]
//! (`opencl`, `cuda`, `wgpu`). The kernels and the algorithm are described in
//! `docs/gpu-proving.md`: signed-digit Pippenger whose (bucket, point) entries are grouped by
//! a counting sort on the device, load-balanced bucket accumulation, segmented bucket
//! reduction; radix-2 NTTs with resident twiddles.
//!
//! A device error in the middle of a proof (out of memory, a lost device, a program that does
//! not build) does not fail the proof: the same operation runs on the CPU, a warning is
//! logged and [`super::device_fallbacks`] counts it. Wrong results cannot slip through either:
//! the prover verifies every proof before it is returned.

#[cfg(feature = "cuda")]
pub mod cuda;
pub mod device;
#[cfg(feature = "opencl")]
pub mod opencl;
#[cfg(feature = "wgpu")]
pub mod wgpu;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Instant;

use ark_bn254::{Fq, Fq2};
use ark_ec::AdditiveGroup;
use ark_ec::short_weierstrass::{Affine, Projective, SWCurveConfig};
use ark_ff::{BigInt, Field, One, Zero};

use super::cpu::CpuProveBackend;
use super::{
    FixedBaseMsm, Fr, G1Affine, G1Msm, G1Projective, G2Affine, G2Msm, G2Placement, HTerm, PackedG2,
    Precompute, ProveBackend, ProveError, ScalarRepr, SharedScalars, downcast_msm, glv,
    note_fallback,
};
pub use device::{Curve, GpuDevice, Kernel};

/// Entries each invocation sums per level of the bucket accumulation.
const CHUNK: u32 = 32;
/// Buckets each invocation of the bucket reduction walks. Each walk is a chain of dependent
/// point additions (two per bucket, then the segment's offset as a double-and-add); shorter
/// segments make more, shorter chains, and more segments for the window sums to add up.
const SEGMENT: u32 = 32;
/// Partial sums each invocation of a window-sum level adds up: the levels form a tree, so a
/// window's segment sums cost ⌈log8(segments)⌉ levels of at most 8 dependent additions
/// instead of one chain as long as the segments (512 at 2^20 points with 64-bucket
/// segments: on a GPU, a few threads adding serially while the rest of it waits).
const FOLD: u32 = 8;
/// The pool's buffers for A, B and C while the quotient is computed (A's ends up holding it).
const QUOTIENT_BUFFERS: [&str; 3] = ["quotient_a", "quotient_b", "quotient_c"];
/// NTT domains whose twiddles stay resident (a worker proves a few circuits at most).
const NTT_CACHE: usize = 4;

/// Tuning of the device MSM; the defaults follow the number of points.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GpuMsmConfig {
    /// Window width in bits (2..=16); `None`: chosen from the number of points.
    pub window_bits: Option<u32>,
    /// Entries per invocation and level of the bucket accumulation (`None`: 32; at least 4).
    pub chunk: Option<u32>,
}

/// The window width for `n` points: wide enough that the per-window bucket reduction
/// (2^(c-1) buckets) stays below the per-point work, at most 16 bits.
pub fn window_bits_for(n: usize) -> u32 {
    let log = usize::BITS - n.max(1).leading_zeros();
    log.saturating_sub(4).clamp(4, 16)
}

/// Device bytes a proving key of a `2^log` domain keeps resident (its A, B1, C, H G1 bases
/// and B2 G2 bases), plus the largest MSM's workspace (G2) and the NTT vectors and tables.
pub fn device_bytes_for_domain(log: u32) -> u64 {
    let n = 1usize << log;
    let plan = Plan::new(n, GpuMsmConfig::default());
    let bases = n as u64 * (4 * 64 + 128);
    let ntt = n as u64 * (3 * 32 + 3 * 32);
    bases + plan.workspace_bytes(n, Curve::G2) + ntt
}

/// The largest `log2` domain whose proofs fit `memory_bytes` of device memory (None: not even
/// 2^10).
pub fn max_domain_log_for(memory_bytes: u64) -> Option<u32> {
    (10..=28)
        .rev()
        .find(|&l| device_bytes_for_domain(l) <= memory_bytes)
}

/// One MSM's shape on the device.
#[derive(Clone, Copy, Debug)]
struct Plan {
    c: u32,
    windows: u32,
    buckets: u32,
    chunk: u32,
}

impl Plan {
    fn new(n: usize, cfg: GpuMsmConfig) -> Plan {
        let c = cfg
            .window_bits
            .unwrap_or_else(|| window_bits_for(n))
            .clamp(2, 16);
        Plan {
            c,
            windows: 254 / c + 1,
            buckets: 1 << (c - 1),
            // Each level shrinks the list from len to 2·⌈len/K⌉ entries: only K ≥ 4 always
            // makes progress (K = 3 stays at 4 entries forever).
            chunk: cfg.chunk.unwrap_or(CHUNK).max(4),
        }
    }

    fn total_buckets(&self) -> usize {
        self.windows as usize * self.buckets as usize
    }

    fn segment(&self) -> u32 {
        SEGMENT.min(self.buckets)
    }

    /// The largest single buffer of an MSM of `n` points (runtimes cap buffer sizes).
    fn largest_buffer_bytes(&self, n: usize, curve: Curve) -> u64 {
        let entries = n as u64 * self.windows as u64;
        let xyzz = curve.xyzz_words() as u64 * 4;
        let partial_points = 2 * entries.div_ceil(self.chunk as u64) * xyzz;
        let bucket_sums = self.total_buckets() as u64 * xyzz;
        (32 * n as u64)
            .max(4 * entries)
            .max(partial_points)
            .max(bucket_sums)
    }

    /// Device bytes one MSM of `n` points needs besides its bases (entries sized for the
    /// worst case: every window of every scalar nonzero).
    fn workspace_bytes(&self, n: usize, curve: Curve) -> u64 {
        let n = n as u64;
        let entries = n * self.windows as u64;
        let xyzz = curve.xyzz_words() as u64 * 4;
        let total = self.total_buckets() as u64;
        let partials = 2 * entries.div_ceil(self.chunk as u64);
        32 * n                                   // scalars
            + 8 * entries                        // keys + refs
            + 8 * total                          // counts + cursor
            + total * xyzz                       // bucket sums
            + 2 * partials * (4 + xyzz)          // two partial lists
            + (total / self.segment() as u64) * xyzz // segment sums
            + self.windows as u64 * self.segments().div_ceil(FOLD) as u64 * xyzz // first fold
    }

    /// Reduction segments per window.
    fn segments(&self) -> u32 {
        self.buckets / self.segment()
    }
}

/// The curve-specific part of moving points between arkworks and the device.
pub trait GpuCurve: SWCurveConfig<ScalarField = Fr> {
    /// Which kernels serve this curve.
    const CURVE: Curve;
    /// Appends the affine point's words (all zero for the point at infinity).
    fn push_affine(p: &Affine<Self>, out: &mut Vec<u32>);
    /// An XYZZ point read back from the device.
    fn from_xyzz(words: &[u32]) -> Projective<Self>;
    /// The same bases prepared on the CPU (the fallback).
    fn prepare_cpu(
        cpu: &CpuProveBackend,
        bases: &[Affine<Self>],
    ) -> Result<Arc<dyn FixedBaseMsm<Projective<Self>>>, ProveError>;
}

/// Four 64-bit limbs as eight little-endian 32-bit words: the device layout of every field
/// element and scalar (docs/gpu-proving.md).
fn push_limbs(limbs: &[u64; 4], out: &mut Vec<u32>) {
    for limb in limbs {
        out.push(*limb as u32);
        out.push((*limb >> 32) as u32);
    }
}

fn push_fq(f: &Fq, out: &mut Vec<u32>) {
    push_limbs(&f.0.0, out);
}

fn limbs(words: &[u32]) -> [u64; 4] {
    let mut l = [0u64; 4];
    for (i, v) in l.iter_mut().enumerate() {
        *v = u64::from(words[2 * i]) | (u64::from(words[2 * i + 1]) << 32);
    }
    l
}

fn fq_from(words: &[u32]) -> Fq {
    Fq::new_unchecked(BigInt(limbs(words)))
}

fn fr_from(words: &[u32]) -> Fr {
    Fr::new_unchecked(BigInt(limbs(words)))
}

/// x = X/ZZ, y = Y/ZZZ; ZZ = 0 is the identity. Two inversions per point, and only the
/// window sums come back this way.
fn xyzz_to_projective<P: SWCurveConfig>(
    x: P::BaseField,
    y: P::BaseField,
    zz: P::BaseField,
    zzz: P::BaseField,
) -> Projective<P> {
    if zz.is_zero() || zzz.is_zero() {
        return Projective::zero();
    }
    let (Some(izz), Some(izzz)) = (zz.inverse(), zzz.inverse()) else {
        return Projective::zero();
    };
    Projective::new_unchecked(x * izz, y * izzz, P::BaseField::one())
}

impl GpuCurve for ark_bn254::g1::Config {
    const CURVE: Curve = Curve::G1;

    fn push_affine(p: &Affine<Self>, out: &mut Vec<u32>) {
        if p.infinity {
            out.extend_from_slice(&[0; 16]);
        } else {
            push_fq(&p.x, out);
            push_fq(&p.y, out);
        }
    }

    fn from_xyzz(w: &[u32]) -> Projective<Self> {
        xyzz_to_projective(
            fq_from(&w[0..8]),
            fq_from(&w[8..16]),
            fq_from(&w[16..24]),
            fq_from(&w[24..32]),
        )
    }

    fn prepare_cpu(
        cpu: &CpuProveBackend,
        bases: &[Affine<Self>],
    ) -> Result<Arc<dyn FixedBaseMsm<Projective<Self>>>, ProveError> {
        cpu.prepare_g1(bases, Precompute::None)
    }
}

fn fq2_from(w: &[u32]) -> Fq2 {
    Fq2::new(fq_from(&w[0..8]), fq_from(&w[8..16]))
}

impl GpuCurve for ark_bn254::g2::Config {
    const CURVE: Curve = Curve::G2;

    fn push_affine(p: &Affine<Self>, out: &mut Vec<u32>) {
        if p.infinity {
            out.extend_from_slice(&[0; 32]);
        } else {
            for f in [&p.x.c0, &p.x.c1, &p.y.c0, &p.y.c1] {
                push_fq(f, out);
            }
        }
    }

    fn from_xyzz(w: &[u32]) -> Projective<Self> {
        xyzz_to_projective(
            fq2_from(&w[0..16]),
            fq2_from(&w[16..32]),
            fq2_from(&w[32..48]),
            fq2_from(&w[48..64]),
        )
    }

    fn prepare_cpu(
        cpu: &CpuProveBackend,
        bases: &[Affine<Self>],
    ) -> Result<Arc<dyn FixedBaseMsm<Projective<Self>>>, ProveError> {
        cpu.prepare_g2(bases, Precompute::None)
    }
}

/// Named device buffers that grow on demand and are reused across calls.
struct Pool<B> {
    bufs: HashMap<&'static str, (B, usize)>,
}

impl<B> Pool<B> {
    fn new() -> Self {
        Pool {
            bufs: HashMap::new(),
        }
    }

    fn ensure<D: GpuDevice<Buffer = B>>(
        &mut self,
        dev: &D,
        name: &'static str,
        words: usize,
    ) -> Result<(), ProveError> {
        let words = words.max(1);
        if self.bufs.get(name).is_none_or(|(_, cap)| *cap < words) {
            // Drop the old one first: the device may not hold both.
            self.bufs.remove(name);
            let b = dev.alloc(words)?;
            self.bufs.insert(name, (b, words));
        }
        Ok(())
    }

    /// Buffer `name` out of the pool (allocated if missing or too small), with its capacity in
    /// words; [`Self::put`] returns it.
    fn take<D: GpuDevice<Buffer = B>>(
        &mut self,
        dev: &D,
        name: &'static str,
        words: usize,
    ) -> Result<(B, usize), ProveError> {
        self.ensure(dev, name, words)?;
        self.bufs.remove(name).ok_or_else(|| ProveError::Device {
            backend: "gpu".into(),
            message: format!("internal: buffer {name} was not allocated"),
        })
    }

    fn put(&mut self, name: &'static str, buf: (B, usize)) {
        self.bufs.insert(name, buf);
    }

    fn get(&self, name: &'static str) -> Result<&B, ProveError> {
        self.bufs
            .get(name)
            .map(|(b, _)| b)
            .ok_or_else(|| ProveError::Device {
                backend: "gpu".into(),
                message: format!("internal: buffer {name} was not allocated"),
            })
    }
}

/// Twiddles and scaling factors of one NTT domain, resident on the device.
struct NttTables<B> {
    forward: B,
    inverse: B,
    /// n^-1 at every index (the inverse NTT's scaling).
    n_inv: B,
    /// shift^i (a coset NTT's input scaling), per shift.
    coset: HashMap<[u64; 4], B>,
    /// n^-1 · shift^i (inverse NTT scaling and the coset shift in one pass), per shift.
    fused: HashMap<[u64; 4], B>,
}

/// What one device keeps between calls: MSM workspace and NTT tables.
struct State<B> {
    pool: Pool<B>,
    ntt: HashMap<usize, NttTables<B>>,
}

/// A GPU as a proving backend.
pub struct GpuProveBackend<D: GpuDevice> {
    dev: Arc<D>,
    state: Arc<Mutex<State<D::Buffer>>>,
    cpu: CpuProveBackend,
    /// MSM tuning (tests and benchmarks).
    pub msm_config: GpuMsmConfig,
    /// Whether the G2 MSM runs on the CPU ([`G2Placement::Cpu`]); read when a key is
    /// prepared and when a proof starts its MSMs.
    g2_on_cpu: AtomicBool,
}

impl<D: GpuDevice> GpuProveBackend<D> {
    /// A backend on an opened device.
    pub fn new(dev: D) -> Self {
        GpuProveBackend {
            dev: Arc::new(dev),
            state: Arc::new(Mutex::new(State {
                pool: Pool::new(),
                ntt: HashMap::new(),
            })),
            cpu: CpuProveBackend::new(),
            msm_config: GpuMsmConfig::default(),
            g2_on_cpu: AtomicBool::new(false),
        }
    }

    fn g2_placement(&self) -> G2Placement {
        if self.g2_on_cpu.load(Ordering::Relaxed) {
            G2Placement::Cpu
        } else {
            G2Placement::Device
        }
    }

    /// The device.
    pub fn device(&self) -> &D {
        &self.dev
    }

    fn lock(&self) -> MutexGuard<'_, State<D::Buffer>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn prepare<P: GpuCurve>(&self, bases: &[Affine<P>]) -> Result<Arc<GpuMsm<D, P>>, ProveError> {
        let n = bases.len();
        if n >= (1 << 31) {
            return Err(ProveError::TooManyBases(n));
        }
        let plan = Plan::new(n, self.msm_config);
        let base_bytes = (n * P::CURVE.affine_words() * 4) as u64;
        let need = base_bytes + plan.workspace_bytes(n, P::CURVE);
        let info = self.dev.info();
        if let Some(mem) = info.memory_bytes
            && need > mem
        {
            return Err(self.error(format!(
                "an MSM of {n} points needs about {} MiB on {} ({} MiB): the circuit is too large \
                 for this device; prove it with --backend cpu",
                need >> 20,
                info.name,
                mem >> 20
            )));
        }
        if let Some(max) = self.dev.max_buffer_bytes() {
            let largest = base_bytes.max(plan.largest_buffer_bytes(n, P::CURVE));
            if largest > max {
                return Err(self.error(format!(
                    "an MSM of {n} points needs buffers of {} MiB; {} allows {} MiB per buffer",
                    largest >> 20,
                    info.name,
                    max >> 20
                )));
            }
        }
        let mut words = Vec::with_capacity(n * P::CURVE.affine_words());
        let mut skip = vec![0u32; n.div_ceil(32).max(1)];
        for (i, p) in bases.iter().enumerate() {
            P::push_affine(p, &mut words);
            if p.infinity {
                skip[i / 32] |= 1 << (i % 32);
            }
        }
        let base_buf = self.dev.alloc(words.len())?;
        self.dev.write(&base_buf, &words)?;
        let skip_buf = self.dev.alloc(skip.len())?;
        self.dev.write(&skip_buf, &skip)?;
        Ok(Arc::new(GpuMsm {
            dev: self.dev.clone(),
            state: self.state.clone(),
            bases: base_buf,
            skip: skip_buf,
            n,
            plan,
            host_bases: bases.to_vec(),
            cpu: OnceLock::new(),
            cpu_backend: self.cpu.clone(),
        }))
    }

    fn error(&self, message: String) -> ProveError {
        ProveError::Device {
            backend: self.dev.backend().to_string(),
            message,
        }
    }

    /// The twiddles of domain `n`, made and uploaded on first use.
    fn tables<'a>(
        &self,
        ntt: &'a mut HashMap<usize, NttTables<D::Buffer>>,
        n: usize,
    ) -> Result<&'a mut NttTables<D::Buffer>, ProveError> {
        if !ntt.contains_key(&n) {
            if ntt.len() >= NTT_CACHE {
                ntt.clear();
            }
            let omega = super::root_of_unity(n).ok_or(ProveError::BadNttSize(n))?;
            let omega_inv = omega.inverse().ok_or(ProveError::BadNttSize(n))?;
            let n_inv = Fr::from(n as u64)
                .inverse()
                .ok_or(ProveError::BadNttSize(n))?;
            let forward = self.upload_fr(&powers(omega, (n / 2).max(1)))?;
            let inverse = self.upload_fr(&powers(omega_inv, (n / 2).max(1)))?;
            let n_inv = self.upload_fr(&vec![n_inv; n])?;
            ntt.insert(
                n,
                NttTables {
                    forward,
                    inverse,
                    n_inv,
                    coset: HashMap::new(),
                    fused: HashMap::new(),
                },
            );
        }
        ntt.get_mut(&n)
            .ok_or_else(|| self.error("internal: NTT tables missing".into()))
    }

    fn upload_fr(&self, v: &[Fr]) -> Result<D::Buffer, ProveError> {
        let b = self.dev.alloc(v.len() * 8)?;
        self.write_fr(&b, v)?;
        Ok(b)
    }

    fn write_fr(&self, b: &D::Buffer, v: &[Fr]) -> Result<(), ProveError> {
        let mut words = Vec::with_capacity(v.len() * 8);
        for f in v {
            push_limbs(&f.0.0, &mut words);
        }
        self.dev.write(b, &words)
    }

    fn download_fr(&self, b: &D::Buffer, n: usize) -> Result<Vec<Fr>, ProveError> {
        let mut words = vec![0u32; n * 8];
        self.dev.read(b, &mut words)?;
        Ok(words.chunks_exact(8).map(fr_from).collect())
    }

    /// Bit reversal and the log2(n) radix-2 stages with `twiddles` (ω^k or ω^-k, k < n/2).
    fn ntt_core(
        &self,
        values: &D::Buffer,
        twiddles: &D::Buffer,
        n: usize,
    ) -> Result<(), ProveError> {
        let log_n = n.trailing_zeros();
        let n32 = n as u32;
        self.dev
            .launch(Kernel::FrBitReverse, n32, &[values], &[n32, log_n])?;
        let mut half = 1u32;
        while (half as usize) < n {
            let stride = n32 / (2 * half);
            self.dev.launch(
                Kernel::FrNttStage,
                n32 / 2,
                &[values, twiddles],
                &[half, stride],
            )?;
            half *= 2;
        }
        Ok(())
    }

    fn check_ntt_size(n: usize) -> Result<(), ProveError> {
        if !n.is_power_of_two() || n.trailing_zeros() > 28 {
            return Err(ProveError::BadNttSize(n));
        }
        Ok(())
    }

    fn device_intt(&self, values: &mut [Fr]) -> Result<(), ProveError> {
        let n = values.len();
        let mut st = self.lock();
        let t = self.tables(&mut st.ntt, n)?;
        let v = self.upload_fr(values)?;
        self.ntt_core(&v, &t.inverse, n)?;
        self.dev.launch(
            Kernel::FrMulPointwise,
            n as u32,
            &[&v, &t.n_inv],
            &[n as u32],
        )?;
        let out = self.download_fr(&v, n)?;
        values.copy_from_slice(&out);
        Ok(())
    }

    fn device_coset_ntt(&self, values: &mut [Fr], shift: Fr) -> Result<(), ProveError> {
        let n = values.len();
        let mut st = self.lock();
        let t = self.tables(&mut st.ntt, n)?;
        let key = shift.0.0;
        if let std::collections::hash_map::Entry::Vacant(e) = t.coset.entry(key) {
            e.insert(self.upload_fr(&powers(shift, n))?);
        }
        let factors = t
            .coset
            .get(&key)
            .ok_or_else(|| self.error("internal: coset table missing".into()))?;
        let v = self.upload_fr(values)?;
        self.dev.launch(
            Kernel::FrMulPointwise,
            n as u32,
            &[&v, factors],
            &[n as u32],
        )?;
        self.ntt_core(&v, &t.forward, n)?;
        let out = self.download_fr(&v, n)?;
        values.copy_from_slice(&out);
        Ok(())
    }

    /// Evaluations of A, B, C on the domain → the H MSM's scalars (canonical, in a device
    /// buffer of at least `n` × 8 words, taken from the pool: put it back when done), all on the
    /// device: per vector an inverse NTT whose scaling is fused with the coset shift, a forward
    /// NTT, then (A·B − C) out of Montgomery form. Three uploads, nothing read back.
    fn quotient_on_device(
        &self,
        st: &mut State<D::Buffer>,
        vecs: [&[Fr]; 3],
        shift: Fr,
    ) -> Result<(D::Buffer, usize), ProveError> {
        let n = vecs[0].len();
        let State { pool, ntt } = st;
        let t = self.tables(ntt, n)?;
        let key = shift.0.0;
        if let std::collections::hash_map::Entry::Vacant(e) = t.fused.entry(key) {
            let n_inv = Fr::from(n as u64)
                .inverse()
                .ok_or(ProveError::BadNttSize(n))?;
            e.insert(self.upload_fr(&powers_from(n_inv, shift, n))?);
        }
        let fused = t
            .fused
            .get(&key)
            .ok_or_else(|| self.error("internal: coset table missing".into()))?;
        let mut bufs = Vec::with_capacity(3);
        for (v, name) in vecs.into_iter().zip(QUOTIENT_BUFFERS) {
            let b = pool.take(&*self.dev, name, n * 8)?;
            self.write_fr(&b.0, v)?;
            self.ntt_core(&b.0, &t.inverse, n)?;
            self.dev.launch(
                Kernel::FrMulPointwise,
                n as u32,
                &[&b.0, fused],
                &[n as u32],
            )?;
            self.ntt_core(&b.0, &t.forward, n)?;
            bufs.push(b);
        }
        self.dev.launch(
            Kernel::FrQuotient,
            n as u32,
            &[&bufs[0].0, &bufs[1].0, &bufs[2].0],
            &[n as u32],
        )?;
        let d = bufs.remove(0);
        for (b, name) in bufs.into_iter().zip(&QUOTIENT_BUFFERS[1..]) {
            pool.put(name, b);
        }
        Ok(d)
    }

    /// [`Self::quotient_on_device`], read back.
    fn device_quotient(&self, vecs: [&[Fr]; 3], shift: Fr) -> Result<Vec<ScalarRepr>, ProveError> {
        let n = vecs[0].len();
        let mut st = self.lock();
        let d = self.quotient_on_device(&mut st, vecs, shift)?;
        let mut words = vec![0u32; n * 8];
        self.dev.read(&d.0, &mut words)?;
        st.pool.put(QUOTIENT_BUFFERS[0], d);
        Ok(words.chunks_exact(8).map(|w| BigInt(limbs(w))).collect())
    }

    /// The H term with the quotient's scalars kept on the device for the H MSM.
    fn device_h_term(
        &self,
        h: &GpuMsm<D, ark_bn254::g1::Config>,
        vecs: [&[Fr]; 3],
        shift: Fr,
    ) -> Result<HTerm, ProveError> {
        let t = Instant::now();
        let mut st = self.lock();
        let d = self.quotient_on_device(&mut st, vecs, shift)?;
        // A read waits for all work submitted before it: one word marks where the NTTs end.
        let mut first = [0u32; 1];
        self.dev.read(&d.0, &mut first)?;
        let ntt = t.elapsed();
        let t = Instant::now();
        let point = h.device_msm_locked(&mut st, Scalars::Device(&d.0), 0)?;
        st.pool.put(QUOTIENT_BUFFERS[0], d);
        Ok(HTerm {
            point,
            ntt,
            msm: t.elapsed(),
        })
    }

    /// Whether `h` is a G1 set this backend prepared, of `n` bases: then its MSM can take
    /// scalars that are already on the device.
    fn own_g1<'h>(
        &self,
        h: &'h dyn FixedBaseMsm<G1Projective>,
        n: usize,
    ) -> Option<&'h GpuMsm<D, ark_bn254::g1::Config>> {
        downcast_msm::<GpuMsm<D, ark_bn254::g1::Config>, _>(h)
            .filter(|m| Arc::ptr_eq(&m.state, &self.state) && m.n == n)
    }
}

/// Scalars in the device layout (8 words each).
fn scalar_words(scalars: &[ScalarRepr]) -> Vec<u32> {
    let mut words = Vec::with_capacity(scalars.len() * 8);
    for s in scalars {
        push_limbs(&s.0, &mut words);
    }
    words
}

/// 1, x, x², ... (n values).
fn powers(x: Fr, n: usize) -> Vec<Fr> {
    powers_from(Fr::one(), x, n)
}

/// start, start·x, start·x², ... (n values).
fn powers_from(start: Fr, x: Fr, n: usize) -> Vec<Fr> {
    let mut v = Vec::with_capacity(n);
    let mut acc = start;
    for _ in 0..n {
        v.push(acc);
        acc *= x;
    }
    v
}

impl<D: GpuDevice> ProveBackend for GpuProveBackend<D> {
    fn name(&self) -> &str {
        self.dev.backend()
    }

    /// Uploads the bases once; `Precompute` is a CPU notion (tables) and is ignored here.
    fn prepare_g1(&self, bases: &[G1Affine], _pre: Precompute) -> Result<G1Msm, ProveError> {
        Ok(self.prepare::<ark_bn254::g1::Config>(bases)?)
    }

    /// On the device, or (with [`G2Placement::Cpu`]) as the CPU backend prepares them, with
    /// `pre` honoured.
    fn prepare_g2(&self, bases: &[G2Affine], pre: Precompute) -> Result<G2Msm, ProveError> {
        match self.g2_placement() {
            G2Placement::Device => Ok(self.prepare::<ark_bn254::g2::Config>(bases)?),
            G2Placement::Cpu => self.cpu.prepare_g2(bases, pre),
        }
    }

    fn prepare_g2_packed(&self, bases: PackedG2<'_>, pre: Precompute) -> Result<G2Msm, ProveError> {
        match self.g2_placement() {
            G2Placement::Device => self.prepare_g2(&bases.to_affine(), pre),
            G2Placement::Cpu => self.cpu.prepare_g2_packed(bases, pre),
        }
    }

    fn g2_beside_g1(&self) -> bool {
        self.g2_placement() == G2Placement::Cpu
    }

    fn set_g2_placement(&self, g2: G2Placement) {
        self.g2_on_cpu
            .store(g2 == G2Placement::Cpu, Ordering::Relaxed);
    }

    fn intt(&self, values: &mut Vec<Fr>) -> Result<(), ProveError> {
        Self::check_ntt_size(values.len())?;
        // The device writes `values` only after everything succeeded, so the CPU fallback
        // starts from the untouched input.
        match self.device_intt(values) {
            Ok(()) => Ok(()),
            Err(e) => {
                note_fallback(self.dev.backend(), "inverse NTT", &e);
                self.cpu.intt(values)
            }
        }
    }

    fn coset_ntt(&self, values: &mut Vec<Fr>, shift: Fr) -> Result<(), ProveError> {
        Self::check_ntt_size(values.len())?;
        match self.device_coset_ntt(values, shift) {
            Ok(()) => Ok(()),
            Err(e) => {
                note_fallback(self.dev.backend(), "coset NTT", &e);
                self.cpu.coset_ntt(values, shift)
            }
        }
    }

    fn quotient(
        &self,
        a: Vec<Fr>,
        b: Vec<Fr>,
        c: Vec<Fr>,
        shift: Fr,
    ) -> Result<Vec<ScalarRepr>, ProveError> {
        let n = a.len();
        Self::check_ntt_size(n)?;
        if b.len() != n || c.len() != n {
            return Err(ProveError::LengthMismatch {
                bases: n,
                scalars: b.len().min(c.len()),
            });
        }
        match self.device_quotient([&a, &b, &c], shift) {
            Ok(d) => Ok(d),
            Err(e) => {
                note_fallback(self.dev.backend(), "quotient (NTTs)", &e);
                self.cpu.quotient(a, b, c, shift)
            }
        }
    }

    fn h_bases_first(&self) -> bool {
        true
    }

    fn h_term(
        &self,
        a: Vec<Fr>,
        b: Vec<Fr>,
        c: Vec<Fr>,
        shift: Fr,
        h: &dyn FixedBaseMsm<G1Projective>,
    ) -> Result<HTerm, ProveError> {
        let n = a.len();
        Self::check_ntt_size(n)?;
        let Some(own) = self.own_g1(h, n).filter(|_| b.len() == n && c.len() == n) else {
            // Another backend's bases, or sizes that do not match: the two steps apart, with
            // their own checks and fallbacks.
            return HTerm::in_two_steps(|| self.quotient(a, b, c, shift), |d| h.msm(d));
        };
        match self.device_h_term(own, [&a, &b, &c], shift) {
            Ok(term) => Ok(term),
            Err(e) => {
                note_fallback(self.dev.backend(), "quotient and H MSM", &e);
                HTerm::in_two_steps(|| self.cpu.quotient(a, b, c, shift), |d| own.cpu_msm(d))
            }
        }
    }
}

/// Where an MSM's scalars are: canonical values on the host, or the same layout (8 words
/// each) already on the device.
enum Scalars<'a, B> {
    Host(&'a [ScalarRepr]),
    Device(&'a B),
}

impl<'a, B> Scalars<'a, B> {
    /// The device buffer the MSM's kernels read (the pool's upload buffer for host scalars).
    fn buffer<'p>(&self, pool: &'p Pool<B>) -> Result<&'p B, ProveError>
    where
        'a: 'p,
    {
        match *self {
            Scalars::Host(_) => pool.get("scalars"),
            Scalars::Device(b) => Ok(b),
        }
    }
}

/// A proof's witness on the device ([`SharedScalars`]' copy), for every MSM of the device's
/// state that takes it; freed with the proof's `SharedScalars`.
struct StagedScalars<D: GpuDevice> {
    // Fields drop in order: the buffer before the device it lives on.
    buf: D::Buffer,
    state: Arc<Mutex<State<D::Buffer>>>,
    /// Keeps the device (and its context) alive as long as the buffer.
    _dev: Arc<D>,
}

/// Bases resident on the device, with the host copy the CPU fallback prepares on demand.
pub struct GpuMsm<D: GpuDevice, P: GpuCurve> {
    dev: Arc<D>,
    state: Arc<Mutex<State<D::Buffer>>>,
    bases: D::Buffer,
    skip: D::Buffer,
    n: usize,
    plan: Plan,
    host_bases: Vec<Affine<P>>,
    cpu: OnceLock<Arc<dyn FixedBaseMsm<Projective<P>>>>,
    cpu_backend: CpuProveBackend,
}

impl<D: GpuDevice, P: GpuCurve> GpuMsm<D, P> {
    fn cpu_msm(&self, scalars: &[ScalarRepr]) -> Result<Projective<P>, ProveError> {
        let m = match self.cpu.get() {
            Some(m) => m.clone(),
            None => {
                let m = P::prepare_cpu(&self.cpu_backend, &self.host_bases)?;
                let _ = self.cpu.set(m.clone());
                m
            }
        };
        m.msm(scalars)
    }

    /// The whole MSM on the device; only the window sums come back.
    fn device_msm(&self, scalars: &[ScalarRepr]) -> Result<Projective<P>, ProveError> {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        self.device_msm_locked(&mut st, Scalars::Host(scalars), 0)
    }

    /// The MSM of `shared` from `first` on, reading the device's copy of `shared` (made now
    /// if this is the first MSM to take it).
    fn device_msm_shared(
        &self,
        shared: &SharedScalars<'_>,
        first: usize,
    ) -> Result<Projective<P>, ProveError> {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let own = shared
            .staged::<StagedScalars<D>>()
            .filter(|s| Arc::ptr_eq(&s.state, &self.state));
        let staged = match own {
            Some(s) => s,
            // Another device's copy: this MSM uploads its part, as from the host.
            None if shared.is_staged() => {
                let scalars = shared.from(first, self.n)?;
                return self.device_msm_locked(&mut st, Scalars::Host(scalars), 0);
            }
            None => {
                let buf = self.dev.alloc(shared.len() * 8)?;
                self.dev.write(&buf, &scalar_words(shared.values()))?;
                let copy = StagedScalars {
                    state: self.state.clone(),
                    _dev: self.dev.clone(),
                    buf,
                };
                shared
                    .stage(copy)
                    .ok_or_else(|| self.internal("the staged scalars were not kept"))?
            }
        };
        let first = u32::try_from(first).map_err(|_| ProveError::TooManyBases(first))?;
        self.device_msm_locked(&mut st, Scalars::Device(&staged.buf), first)
    }

    fn internal(&self, what: &str) -> ProveError {
        ProveError::Device {
            backend: self.dev.backend().into(),
            message: format!("internal: {what}"),
        }
    }

    /// [`Self::device_msm`] with the device's state already locked, from scalars on the host
    /// or already on the device (there, `n` of them from index `first` on).
    fn device_msm_locked(
        &self,
        st: &mut State<D::Buffer>,
        scalars: Scalars<'_, D::Buffer>,
        first: u32,
    ) -> Result<Projective<P>, ProveError> {
        let dev = &*self.dev;
        let plan = self.plan;
        let n = self.n;
        let curve = P::CURVE;
        let xyzz = curve.xyzz_words();
        let total = plan.total_buckets();
        let blocks = total.div_ceil(256);
        let pool = &mut st.pool;
        pool.ensure(dev, "counts", total)?;
        pool.ensure(dev, "cursor", total)?;
        pool.ensure(dev, "block_sums", blocks)?;
        pool.ensure(dev, "total", 1)?;
        if let Scalars::Host(host) = scalars {
            pool.ensure(dev, "scalars", n * 8)?;
            dev.write(pool.get("scalars")?, &scalar_words(host))?;
        }
        let shape = [n as u32, plan.c, plan.windows, plan.buckets, first];
        {
            let sc = scalars.buffer(pool)?;
            let (counts, cursor) = (pool.get("counts")?, pool.get("cursor")?);
            let (bs, tot) = (pool.get("block_sums")?, pool.get("total")?);
            dev.zero(counts, total)?;
            dev.launch(
                Kernel::MsmCount,
                n as u32,
                &[sc, &self.skip, counts],
                &shape,
            )?;
            dev.launch(
                Kernel::MsmScanBlocks,
                blocks as u32,
                &[counts, bs],
                &[total as u32],
            )?;
            dev.launch(Kernel::MsmScanTop, 1, &[bs, tot], &[blocks as u32])?;
            dev.launch(
                Kernel::MsmScanAdd,
                total as u32,
                &[counts, bs, cursor],
                &[total as u32],
            )?;
        }
        let mut m = [0u32; 1];
        dev.read(pool.get("total")?, &mut m)?;
        let m = m[0] as usize;
        if m == 0 {
            return Ok(Projective::zero());
        }
        if m > n * plan.windows as usize {
            return Err(ProveError::Device {
                backend: dev.backend().into(),
                message: format!("the device counted {m} entries for {n} scalars"),
            });
        }
        let k = plan.chunk as usize;
        let partials = 2 * m.div_ceil(k);
        pool.ensure(dev, "keys", m)?;
        pool.ensure(dev, "refs", m)?;
        pool.ensure(dev, "bucket_sums", total * xyzz)?;
        pool.ensure(dev, "part_keys_a", partials)?;
        pool.ensure(dev, "part_points_a", partials * xyzz)?;
        pool.ensure(dev, "part_keys_b", partials)?;
        pool.ensure(dev, "part_points_b", partials * xyzz)?;
        let segments = plan.segments();
        let seg_total = plan.windows as usize * segments as usize;
        pool.ensure(dev, "segment_sums", seg_total * xyzz)?;
        let folded = plan.windows as usize * segments.div_ceil(FOLD) as usize;
        pool.ensure(dev, "window_sums", folded * xyzz)?;

        let (keys, refs, sums) = (
            pool.get("keys")?,
            pool.get("refs")?,
            pool.get("bucket_sums")?,
        );
        dev.launch(
            Kernel::MsmScatter,
            n as u32,
            &[
                scalars.buffer(pool)?,
                &self.skip,
                pool.get("cursor")?,
                keys,
                refs,
            ],
            &shape,
        )?;
        dev.zero(sums, total * xyzz)?;
        let mut lists = [
            (pool.get("part_keys_a")?, pool.get("part_points_a")?),
            (pool.get("part_keys_b")?, pool.get("part_points_b")?),
        ];
        let mut len = m;
        let mut threads = len.div_ceil(k);
        let mut last = u32::from(threads == 1);
        dev.launch(
            Kernel::AccBases(curve),
            threads as u32,
            &[&self.bases, keys, refs, sums, lists[0].0, lists[0].1],
            &[len as u32, plan.chunk, last],
        )?;
        while last == 0 {
            len = 2 * threads;
            threads = len.div_ceil(k);
            last = u32::from(threads == 1);
            let (input, output) = (lists[0], lists[1]);
            dev.launch(
                Kernel::AccPartials(curve),
                threads as u32,
                &[input.0, input.1, sums, output.0, output.1],
                &[len as u32, plan.chunk, last],
            )?;
            lists.swap(0, 1);
        }
        let segs = pool.get("segment_sums")?;
        let wins = pool.get("window_sums")?;
        dev.launch(
            Kernel::ReduceSegments(curve),
            seg_total as u32,
            &[sums, segs],
            &[plan.buckets, segments, plan.windows],
        )?;
        // Each level leaves ⌈per/FOLD⌉ sums per window, alternating between the two buffers,
        // until one per window is left.
        let (mut from, mut to) = (segs, wins);
        let mut per = segments;
        while per > 1 {
            let outs = per.div_ceil(FOLD);
            dev.launch(
                Kernel::WindowSum(curve),
                plan.windows * outs,
                &[from, to],
                &[per, plan.windows, FOLD],
            )?;
            per = outs;
            std::mem::swap(&mut from, &mut to);
        }
        let mut out = vec![0u32; plan.windows as usize * xyzz];
        dev.read(from, &mut out)?;

        let mut acc = Projective::<P>::zero();
        for w in out.chunks_exact(xyzz).rev() {
            for _ in 0..plan.c {
                acc.double_in_place();
            }
            acc += P::from_xyzz(w);
        }
        Ok(acc)
    }
}

impl<D: GpuDevice, P: GpuCurve> FixedBaseMsm<Projective<P>> for GpuMsm<D, P> {
    fn len(&self) -> usize {
        self.n
    }

    fn msm(&self, scalars: &[ScalarRepr]) -> Result<Projective<P>, ProveError> {
        if scalars.len() != self.n {
            return Err(ProveError::LengthMismatch {
                bases: self.n,
                scalars: scalars.len(),
            });
        }
        if let Some(bad) = scalars.iter().position(|s| !glv::is_canonical(&s.0)) {
            return Err(ProveError::ScalarOutOfRange { index: bad });
        }
        if self.n == 0 {
            return Ok(Projective::zero());
        }
        match self.device_msm(scalars) {
            Ok(p) => Ok(p),
            Err(e) => {
                note_fallback(self.dev.backend(), "MSM", &e);
                self.cpu_msm(scalars)
            }
        }
    }

    /// As [`Self::msm`], from the device's one copy of `shared`.
    fn msm_shared(
        &self,
        shared: &SharedScalars<'_>,
        first: usize,
    ) -> Result<Projective<P>, ProveError> {
        let scalars = shared.from(first, self.n)?;
        if let Some(bad) = scalars.iter().position(|s| !glv::is_canonical(&s.0)) {
            return Err(ProveError::ScalarOutOfRange { index: bad });
        }
        if self.n == 0 {
            return Ok(Projective::zero());
        }
        match self.device_msm_shared(shared, first) {
            Ok(p) => Ok(p),
            Err(e) => {
                note_fallback(self.dev.backend(), "MSM", &e);
                self.cpu_msm(scalars)
            }
        }
    }

    /// Host bytes (the fallback's copy of the bases); the device holds the bases besides.
    fn memory_bytes(&self) -> usize {
        self.host_bases.len() * std::mem::size_of::<Affine<P>>()
    }
}

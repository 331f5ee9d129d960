//! The Groth16 prover for snarkjs zkeys, as an explicit pipeline:
//!
//! 1. **witness** — the `.wtns` values as field elements;
//! 2. **build ABC** — A·w and B·w evaluated on the domain (the zkey's coefficient section), and
//!    C·w as their pointwise product (R1CS: on every constraint A·B = C);
//! 3. **NTTs** — for each of A, B, C: inverse NTT to coefficients, then forward NTT on the odd
//!    coset ω₂ₙ·H (snarkjs `groth16_prove.js`); then d = a·b − c pointwise. The zkey's H query
//!    already folds in 1/Z on that coset (Z = xⁿ − 1 is the constant −2 there), so d goes
//!    straight into the H MSM;
//! 4. **MSMs** — A (G1), B (G1 and G2) and C (G1, private signals) against the witness, H (G1)
//!    against d;
//! 5. **proof** — with random r, s:
//!    πA = α + Σwᵢ·Aᵢ + r·δ, πB = β + Σwᵢ·B2ᵢ + s·δ, B1 = β + Σwᵢ·B1ᵢ + s·δ,
//!    πC = Σ_private wᵢ·Cᵢ + H + s·πA + r·B1 − r·s·δ;
//! 6. **self-check** (on by default) — the proof is verified against the key's own verification
//!    key before it is handed out.
//!
//! MSMs and NTTs are calls into a [`ProveBackend`]. A [`PreparedKey`] holds everything the
//! pipeline needs from a zkey — the MSMs' prepared bases (tables, device buffers) included — so
//! a worker that proves the same circuit again and again loads and prepares it once
//! ([`KeyCache`]).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use ark_ec::{AffineRepr, CurveGroup};
use ark_ff::{PrimeField, Zero};
use backends::prove::{G1Msm, G1Projective, G2Msm, G2Projective, ScalarRepr, root_of_unity};
use rand::RngCore;
use rayon::prelude::*;

use crate::json::{Proof, VerifyingKey};
use crate::wtns::Witness;
use crate::zkey::{Coef, Query, ZkeyFile, ZkeyHeader};
use crate::{Error, Fr, Precompute, ProveBackend, verifier};

/// Time spent loading and preparing a proving key.
#[derive(Clone, Debug, Default)]
pub struct LoadTimings {
    /// Mapping the file, checking the header, reading coefficients and points.
    pub read: Duration,
    /// Backend preparation of the five MSM base sets (tables, uploads).
    pub prepare: Duration,
    pub total: Duration,
}

/// Time spent in each phase of one proof.
#[derive(Clone, Debug, Default)]
pub struct ProveTimings {
    pub witness: Duration,
    pub build_abc: Duration,
    /// 3 inverse NTTs, 3 coset NTTs and the pointwise a·b − c.
    pub ntt: Duration,
    pub msm_a: Duration,
    pub msm_b1: Duration,
    pub msm_b2: Duration,
    pub msm_c: Duration,
    pub msm_h: Duration,
    /// Blinding and point arithmetic after the MSMs.
    pub assemble: Duration,
    /// Self-verification (None when switched off).
    pub verify: Option<Duration>,
    pub total: Duration,
}

impl ProveTimings {
    /// All five MSMs together.
    pub fn msm_total(&self) -> Duration {
        self.msm_a + self.msm_b1 + self.msm_b2 + self.msm_c + self.msm_h
    }

    /// (phase, duration) pairs in pipeline order, for tables and JSON.
    pub fn phases(&self) -> Vec<(&'static str, Duration)> {
        let mut v = vec![
            ("witness", self.witness),
            ("build_abc", self.build_abc),
            ("ntt", self.ntt),
            ("msm_a_g1", self.msm_a),
            ("msm_b_g1", self.msm_b1),
            ("msm_b_g2", self.msm_b2),
            ("msm_c_g1", self.msm_c),
            ("msm_h_g1", self.msm_h),
            ("assemble", self.assemble),
        ];
        if let Some(v2) = self.verify {
            v.push(("verify", v2));
        }
        v.push(("total", self.total));
        v
    }
}

/// A proof with its public signals.
#[derive(Clone, Debug)]
pub struct ProveOutput {
    pub proof: Proof,
    pub public: Vec<Fr>,
    pub timings: ProveTimings,
}

/// Options of one proof.
#[derive(Clone, Copy, Debug)]
pub struct ProveOptions {
    /// Verify the proof before returning it (on by default).
    pub self_check: bool,
}

impl Default for ProveOptions {
    fn default() -> Self {
        ProveOptions { self_check: true }
    }
}

/// One matrix (A or B) cut into pieces of whole constraints for parallel evaluation.
struct Matrix {
    coefs: Vec<Coef>,
    /// (first coefficient, first constraint) of each piece, ascending.
    cuts: Vec<(usize, u32)>,
}

impl Matrix {
    fn new(coefs: Vec<Coef>, pieces: usize) -> Matrix {
        let mut cuts = vec![(0usize, 0u32)];
        let step = coefs.len().div_ceil(pieces.max(1)).max(1);
        let mut i = step;
        while i < coefs.len() {
            // Move to the first coefficient of the next constraint: pieces own whole rows.
            while i < coefs.len() && coefs[i].constraint == coefs[i - 1].constraint {
                i += 1;
            }
            if i < coefs.len() {
                cuts.push((i, coefs[i].constraint));
            }
            i += step;
        }
        Matrix { coefs, cuts }
    }

    /// out\[constraint\] = Σ coef·w\[signal\] over the domain of size n.
    fn evaluate(&self, w: &[Fr], n: usize) -> Vec<Fr> {
        let mut out = vec![Fr::zero(); n];
        let mut jobs = Vec::with_capacity(self.cuts.len());
        let mut rest = out.as_mut_slice();
        let mut base = 0usize;
        for (k, &(start, con)) in self.cuts.iter().enumerate() {
            let (end, con_end) = match self.cuts.get(k + 1) {
                Some(&(e, c)) => (e, c as usize),
                None => (self.coefs.len(), n),
            };
            // The pieces start at increasing constraints, so each takes a disjoint slice.
            let (head, tail) = std::mem::take(&mut rest).split_at_mut(con_end - base);
            jobs.push((head, &self.coefs[start..end], con as usize));
            rest = tail;
            base = con_end;
        }
        jobs.into_par_iter().for_each(|(slice, coefs, first)| {
            for c in coefs {
                slice[c.constraint as usize - first] += c.value * w[c.signal as usize];
            }
        });
        out
    }
}

/// Everything the prover needs from a zkey, with the MSM bases prepared by a backend.
pub struct PreparedKey {
    pub header: ZkeyHeader,
    pub vk: VerifyingKey,
    a_matrix: Matrix,
    b_matrix: Matrix,
    a: G1Msm,
    b1: G1Msm,
    b2: G2Msm,
    c: G1Msm,
    h: G1Msm,
    backend: Arc<dyn ProveBackend>,
    pub load_timings: LoadTimings,
}

impl std::fmt::Debug for PreparedKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PreparedKey")
            .field("header", &self.header)
            .field("backend", &self.backend.name())
            .finish_non_exhaustive()
    }
}

impl PreparedKey {
    /// Loads a zkey file and prepares it on `backend`.
    pub fn load(
        path: &Path,
        backend: Arc<dyn ProveBackend>,
        pre: Precompute,
    ) -> Result<PreparedKey, Error> {
        let t0 = Instant::now();
        let z = ZkeyFile::open(path)?;
        PreparedKey::from_zkey(&z, backend, pre, t0)
    }

    /// Prepares an opened zkey. Each point query is read, handed to the backend and dropped
    /// before the next, so peak memory stays near one query plus the prepared sets.
    pub fn from_zkey(
        z: &ZkeyFile,
        backend: Arc<dyn ProveBackend>,
        pre: Precompute,
        t0: Instant,
    ) -> Result<PreparedKey, Error> {
        let mut read = Duration::ZERO;
        let mut prepare = Duration::ZERO;
        let h = z.header.clone();
        let t = Instant::now();
        let coefs = z.coefs()?;
        let vk = z.verifying_key()?;
        let pieces = 4 * rayon::current_num_threads().max(1);
        let a_matrix = Matrix::new(coefs.a, pieces);
        let b_matrix = Matrix::new(coefs.b, pieces);
        read += t.elapsed();
        let mut g1 = |q: Query| -> Result<G1Msm, Error> {
            let t = Instant::now();
            let pts = z.g1_query(q)?;
            read += t.elapsed();
            let t = Instant::now();
            let m = backend.prepare_g1(&pts, pre)?;
            prepare += t.elapsed();
            Ok(m)
        };
        let a = g1(Query::A)?;
        let b1 = g1(Query::B1)?;
        let c = g1(Query::C)?;
        let hq = g1(Query::H)?;
        let t = Instant::now();
        let pts = z.b2_query()?;
        read += t.elapsed();
        let t = Instant::now();
        let b2 = backend.prepare_g2(&pts, pre)?;
        prepare += t.elapsed();
        drop(pts);
        Ok(PreparedKey {
            header: h,
            vk,
            a_matrix,
            b_matrix,
            a,
            b1,
            b2,
            c,
            h: hq,
            backend,
            load_timings: LoadTimings {
                read,
                prepare,
                total: t0.elapsed(),
            },
        })
    }

    /// Name of the backend this key was prepared on.
    pub fn backend_name(&self) -> &str {
        self.backend.name()
    }

    /// Bytes held by the prepared MSM bases and the coefficients.
    pub fn memory_bytes(&self) -> usize {
        self.a.memory_bytes()
            + self.b1.memory_bytes()
            + self.b2.memory_bytes()
            + self.c.memory_bytes()
            + self.h.memory_bytes()
            + (self.a_matrix.coefs.len() + self.b_matrix.coefs.len()) * std::mem::size_of::<Coef>()
    }

    /// Proves with fresh random blinding.
    pub fn prove(&self, witness: &Witness, opts: ProveOptions) -> Result<ProveOutput, Error> {
        self.prove_with_blinding(witness, random_fr(), random_fr(), opts)
    }

    /// Proves with the given blinding factors r and s (tests; reproducible proofs).
    pub fn prove_with_blinding(
        &self,
        witness: &Witness,
        r: Fr,
        s: Fr,
        opts: ProveOptions,
    ) -> Result<ProveOutput, Error> {
        let t_total = Instant::now();
        let hd = &self.header;
        let n = hd.domain_size as usize;
        let mut tm = ProveTimings::default();
        if witness.len() != hd.n_vars as usize {
            return Err(Error::Mismatch(format!(
                "the witness has {} values but the proving key's circuit has {} variables: they belong to different circuits",
                witness.len(),
                hd.n_vars
            )));
        }

        // 1. witness
        let t = Instant::now();
        let w = &witness.values;
        let w_fr: Vec<Fr> = w
            .par_iter()
            .map(|v| Fr::from_bigint(*v).unwrap_or_default())
            .collect();
        tm.witness = t.elapsed();

        // 2. A·w, B·w on the domain; C = A∘B
        let t = Instant::now();
        let (a, b) = rayon::join(
            || self.a_matrix.evaluate(&w_fr, n),
            || self.b_matrix.evaluate(&w_fr, n),
        );
        let c: Vec<Fr> = a
            .par_iter()
            .zip(b.par_iter())
            .map(|(x, y)| *x * y)
            .collect();
        drop(w_fr);
        tm.build_abc = t.elapsed();

        // 3. NTTs onto the odd coset, then d = a·b − c (the backend keeps the vectors where
        // it computes: a GPU does all of it on the device)
        let t = Instant::now();
        let shift = root_of_unity(2 * n).ok_or(Error::Mismatch(format!(
            "domain size {n} is too large for BN254's NTT"
        )))?;
        let d: Vec<ScalarRepr> = self.backend.quotient(a, b, c, shift)?;
        tm.ntt = t.elapsed();

        // 4. MSMs
        let msm_a: G1Projective = timed(&mut tm.msm_a, || self.a.msm(w))?;
        let msm_b1: G1Projective = timed(&mut tm.msm_b1, || self.b1.msm(w))?;
        let msm_b2: G2Projective = timed(&mut tm.msm_b2, || self.b2.msm(w))?;
        let msm_c: G1Projective =
            timed(&mut tm.msm_c, || self.c.msm(&w[hd.n_public as usize + 1..]))?;
        let msm_h: G1Projective = timed(&mut tm.msm_h, || self.h.msm(&d))?;

        // 5. blinding and assembly
        let t = Instant::now();
        let delta1 = hd.delta1.into_group();
        let pi_a = hd.alpha1.into_group() + msm_a + delta1 * r;
        let pi_b = hd.beta2.into_group() + msm_b2 + hd.delta2.into_group() * s;
        let b1 = hd.beta1.into_group() + msm_b1 + delta1 * s;
        let pi_c = msm_c + msm_h + pi_a * s + b1 * r - delta1 * (r * s);
        let proof = Proof {
            a: pi_a.into_affine(),
            b: pi_b.into_affine(),
            c: pi_c.into_affine(),
        };
        let public: Vec<Fr> = witness.public(hd.n_public as usize);
        tm.assemble = t.elapsed();

        // 6. self-check
        if opts.self_check {
            let t = Instant::now();
            let ok = verifier::verify(&self.vk, &proof, &public)?;
            tm.verify = Some(t.elapsed());
            if !ok {
                return Err(Error::SelfCheckFailed(
                    "the witness does not satisfy this circuit (a witness of another circuit of the same size?)".into(),
                ));
            }
        }
        tm.total = t_total.elapsed();
        Ok(ProveOutput {
            proof,
            public,
            timings: tm,
        })
    }
}

/// Runs `f`, storing its wall time in `d`.
fn timed<T>(d: &mut Duration, f: impl FnOnce() -> T) -> T {
    let t = Instant::now();
    let out = f();
    *d = t.elapsed();
    out
}

/// A uniformly random field element from the OS-seeded thread RNG (512 bits reduced mod r).
fn random_fr() -> Fr {
    let mut b = [0u8; 64];
    rand::rng().fill_bytes(&mut b);
    Fr::from_le_bytes_mod_order(&b)
}

/// Identity of a file version: a key is reloaded when its file changes.
#[derive(Clone, Debug, PartialEq, Eq)]
struct FileStamp {
    len: u64,
    modified: Option<SystemTime>,
}

fn stamp(path: &Path) -> Result<FileStamp, Error> {
    let m = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
    Ok(FileStamp {
        len: m.len(),
        modified: m.modified().ok(),
    })
}

/// Prepared proving keys kept across jobs, by path (least recently used dropped first).
pub struct KeyCache {
    backend: Arc<dyn ProveBackend>,
    precompute: Precompute,
    max_keys: usize,
    entries: Mutex<Vec<(PathBuf, FileStamp, Arc<PreparedKey>)>>,
    /// Keys loaded from their files so far (a cached key costs none).
    loads: std::sync::atomic::AtomicU64,
}

impl KeyCache {
    /// The backend keys are prepared on.
    pub fn backend_name(&self) -> &str {
        self.backend.name()
    }

    pub fn new(
        backend: Arc<dyn ProveBackend>,
        precompute: Precompute,
        max_keys: usize,
    ) -> KeyCache {
        KeyCache {
            backend,
            precompute,
            max_keys: max_keys.max(1),
            entries: Mutex::new(Vec::new()),
            loads: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// Whether the key at `path` is loaded already (and its file unchanged): [`get`] then
    /// costs nothing.
    ///
    /// [`get`]: KeyCache::get
    pub fn is_loaded(&self, path: &Path) -> bool {
        let Ok(st) = stamp(path) else {
            return false;
        };
        let e = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        e.iter().any(|(p, s, _)| p == path && *s == st)
    }

    /// Whether loading a key also builds its MSM tables (seconds, on every core).
    pub fn precomputes(&self) -> bool {
        self.precompute == Precompute::Tables
    }

    /// How many times a key was loaded from its file (each miss of the cache is one).
    pub fn loads(&self) -> u64 {
        self.loads.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// The prepared key for `path`, loading it if it is new or its file changed. Returns whether
    /// it was already loaded.
    pub fn get(&self, path: &Path) -> Result<(Arc<PreparedKey>, bool), Error> {
        let st = stamp(path)?;
        {
            let mut e = self.entries.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(i) = e.iter().position(|(p, s, _)| p == path && *s == st) {
                let entry = e.remove(i);
                let key = entry.2.clone();
                e.push(entry);
                return Ok((key, true));
            }
        }
        // Loading takes long; do it without holding the lock.
        let key = Arc::new(PreparedKey::load(
            path,
            self.backend.clone(),
            self.precompute,
        )?);
        self.loads
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut e = self.entries.lock().unwrap_or_else(|p| p.into_inner());
        e.retain(|(p, _, _)| p != path);
        while e.len() >= self.max_keys {
            e.remove(0);
        }
        e.push((path.to_path_buf(), st, key.clone()));
        Ok((key, false))
    }
}

/// A prover: a backend, a key cache and options.
pub struct Prover {
    pub cache: KeyCache,
    pub options: ProveOptions,
}

impl Prover {
    pub fn new(backend: Arc<dyn ProveBackend>, precompute: Precompute) -> Prover {
        Prover {
            cache: KeyCache::new(backend, precompute, 2),
            options: ProveOptions::default(),
        }
    }

    /// Proves `wtns` against the (cached) key at `zkey`.
    pub fn prove_files(&self, zkey: &Path, wtns: &Path) -> Result<ProveOutput, Error> {
        let (key, _) = self.cache.get(zkey)?;
        let w = Witness::load(wtns)?;
        key.prove(&w, self.options)
    }
}

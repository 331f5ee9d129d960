//! The Groth16 prover for snarkjs zkeys, as an explicit pipeline:
//!
//! 1. **witness** — the `.wtns` values as field elements;
//! 2. **build ABC** — A·w and B·w evaluated on the domain (the zkey's coefficient section), and
//!    C·w as their pointwise product (R1CS: on every constraint A·B = C);
//! 3. **NTTs and H** — for each of A, B, C: inverse NTT to coefficients, then forward NTT on
//!    the odd coset ω₂ₙ·H (snarkjs `groth16_prove.js`); then d = a·b − c pointwise. The zkey's
//!    H query already folds in 1/Z on that coset (Z = xⁿ − 1 is the constant −2 there), so d
//!    goes straight into the H MSM (G1; on a GPU without leaving the device:
//!    [`ProveBackend::h_term`]);
//! 4. **MSMs** — A (G1), B (G1 and G2) and C (G1, private signals) against the witness;
//! 5. **proof** — with random r, s:
//!    πA = α + Σwᵢ·Aᵢ + r·δ, πB = β + Σwᵢ·B2ᵢ + s·δ, B1 = β + Σwᵢ·B1ᵢ + s·δ,
//!    πC = Σ_private wᵢ·Cᵢ + H + s·πA + r·B1 − r·s·δ;
//! 6. **self-check** (on by default) — the proof is verified against the key's own verification
//!    key before it is handed out.
//!
//! MSMs and NTTs are calls into a [`ProveBackend`]. A [`PreparedKey`] holds everything the
//! pipeline needs from a zkey — the MSMs' prepared bases (tables, device buffers) included — so
//! a worker that proves the same circuit again and again loads and prepares it once
//! ([`KeyCache`]). A single proof streams the key instead ([`prove_once`]): each part is read
//! just before the pipeline needs it and dropped after. Both run the one pipeline over the
//! `KeyParts` trait.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use ark_ec::{AffineRepr, CurveGroup};
use ark_ff::{PrimeField, Zero};
use backends::prove::{
    FixedBaseMsm, G1Msm, G1Projective, G2Msm, G2Projective, HTerm, ProveError, SharedScalars,
    coset_shift,
};
use rand::RngCore;
use rayon::prelude::*;

use crate::json::{Proof, VerifyingKey};
use crate::wtns::Witness;
use crate::zkey::{
    self, COEF_ENTRY, Coef, Query, ZkeyFile, ZkeyHeader, coef_constraint, coef_entry,
};
use crate::{Error, FormatError, Fr, Precompute, ProveBackend, verifier};

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
    /// All five MSMs together (with the G2 MSM beside the G1 ones, `G2Placement::Cpu`, their
    /// sum: more than the time they took).
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

    /// A·w and B·w side by side, and the time they took.
    fn evaluate_pair(a: &Matrix, b: &Matrix, w: &[Fr], n: usize) -> (Vec<Fr>, Vec<Fr>, Duration) {
        let t = Instant::now();
        let (a, b) = rayon::join(|| a.evaluate(w, n), || b.evaluate(w, n));
        (a, b, t.elapsed())
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
            let pts = z.g1_query_packed(q)?;
            read += t.elapsed();
            let t = Instant::now();
            let m = backend.prepare_g1_packed(pts, pre)?;
            z.release_query(q);
            prepare += t.elapsed();
            Ok(m)
        };
        let a = g1(Query::A)?;
        let b1 = g1(Query::B1)?;
        let c = g1(Query::C)?;
        let hq = g1(Query::H)?;
        let t = Instant::now();
        let pts = z.b2_query_packed()?;
        read += t.elapsed();
        let t = Instant::now();
        let b2 = backend.prepare_g2_packed(pts, pre)?;
        z.release_query(Query::B2);
        prepare += t.elapsed();
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
    /// Whether any of the key's MSMs runs on precomputed tables (`Precompute::Tables` builds
    /// them only where they pay).
    pub fn has_tables(&self) -> bool {
        self.a.has_tables()
            || self.b1.has_tables()
            || self.b2.has_tables()
            || self.c.has_tables()
            || self.h.has_tables()
    }

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
        run_pipeline(&mut Resident(self), witness, r, s, opts)
    }
}

/// What the pipeline needs from a proving key, wherever its parts live: resident in a
/// [`PreparedKey`], or read from the zkey part by part while the proof runs ([`prove_once`]).
trait KeyParts {
    fn header(&self) -> &ZkeyHeader;
    fn vk(&self) -> &VerifyingKey;
    fn backend(&self) -> &dyn ProveBackend;
    /// A·w and B·w over the domain of size `n`, and the time the evaluation took (a separate
    /// parse of the coefficients excluded; one that reads them as it sums counts whole).
    fn evaluate_ab(&mut self, w: &[Fr], n: usize) -> Result<(Vec<Fr>, Vec<Fr>, Duration), Error>;
    /// Σ scalars·query (a G1 query) over the witness from index `first` on, and the time the
    /// MSM itself took (reading the query excluded).
    fn msm_g1(
        &mut self,
        q: Query,
        w: &SharedScalars<'_>,
        first: usize,
    ) -> Result<(G1Projective, Duration), Error>;
    /// Σ w·B2 and the time the MSM itself took.
    fn msm_b2(&mut self, w: &SharedScalars<'_>) -> Result<(G2Projective, Duration), Error>;
    /// The B2 query, prepared (to run its MSM on another thread).
    fn b2(&mut self) -> Result<G2Msm, Error>;
    /// The H term from A·w, B·w and C·w on the domain ([`ProveBackend::h_term`]).
    fn h_term(&mut self, a: Vec<Fr>, b: Vec<Fr>, c: Vec<Fr>, shift: Fr) -> Result<HTerm, Error>;
}

/// A key whose bases are prepared and kept.
struct Resident<'a>(&'a PreparedKey);

impl KeyParts for Resident<'_> {
    fn header(&self) -> &ZkeyHeader {
        &self.0.header
    }
    fn vk(&self) -> &VerifyingKey {
        &self.0.vk
    }
    fn backend(&self) -> &dyn ProveBackend {
        self.0.backend.as_ref()
    }
    fn evaluate_ab(&mut self, w: &[Fr], n: usize) -> Result<(Vec<Fr>, Vec<Fr>, Duration), Error> {
        Ok(Matrix::evaluate_pair(
            &self.0.a_matrix,
            &self.0.b_matrix,
            w,
            n,
        ))
    }
    fn msm_g1(
        &mut self,
        q: Query,
        w: &SharedScalars<'_>,
        first: usize,
    ) -> Result<(G1Projective, Duration), Error> {
        let m = match q {
            Query::A => &self.0.a,
            Query::B1 => &self.0.b1,
            Query::C => &self.0.c,
            Query::H => &self.0.h,
            Query::B2 | Query::Ic => {
                return Err(Error::Mismatch(format!("{q:?} is not an MSM of G1")));
            }
        };
        let t = Instant::now();
        let p = m.msm_shared(w, first)?;
        Ok((p, t.elapsed()))
    }
    fn msm_b2(&mut self, w: &SharedScalars<'_>) -> Result<(G2Projective, Duration), Error> {
        let t = Instant::now();
        let p = self.0.b2.msm_shared(w, 0)?;
        Ok((p, t.elapsed()))
    }
    fn h_term(&mut self, a: Vec<Fr>, b: Vec<Fr>, c: Vec<Fr>, shift: Fr) -> Result<HTerm, Error> {
        Ok(self.0.backend.h_term(a, b, c, shift, self.0.h.as_ref())?)
    }
    fn b2(&mut self) -> Result<G2Msm, Error> {
        Ok(self.0.b2.clone())
    }
}

/// A key read while the proof runs: the coefficients just before A·w and B·w, each point query
/// just before its MSM, each dropped (mapping pages included) once used. Peak memory is the
/// proof's vectors plus one query, instead of the whole key.
struct Streamed<'a> {
    zkey: &'a ZkeyFile,
    vk: VerifyingKey,
    backend: Arc<dyn ProveBackend>,
    timings: LoadTimings,
    /// The most bytes of prepared base sets held at one time.
    peak_prepared: usize,
    /// Bytes of a set kept across the next preparations (B2 beside the G1 MSMs).
    held: usize,
}

impl<'a> Streamed<'a> {
    /// Reads query `q` in place from the zkey, prepares it on the backend for one MSM, drops
    /// its pages and runs the MSM.
    fn one<T, M: ?Sized + FixedBaseMsm<G>, G>(
        &mut self,
        q: Query,
        read: impl FnOnce(&'a ZkeyFile) -> Result<T, Error>,
        prepare: impl FnOnce(&dyn ProveBackend, T) -> Result<Arc<M>, ProveError>,
        w: &SharedScalars<'_>,
        first: usize,
    ) -> Result<(G, Duration), Error> {
        let m = self.prepared(q, read, prepare)?;
        let t = Instant::now();
        let p = m.msm_shared(w, first)?;
        Ok((p, t.elapsed()))
    }

    /// Reads query `q` in place from the zkey, prepares it on the backend and drops its pages.
    fn prepared<T, M: ?Sized + FixedBaseMsm<G>, G>(
        &mut self,
        q: Query,
        read: impl FnOnce(&'a ZkeyFile) -> Result<T, Error>,
        prepare: impl FnOnce(&dyn ProveBackend, T) -> Result<Arc<M>, ProveError>,
    ) -> Result<Arc<M>, Error> {
        let zkey = self.zkey;
        let t = Instant::now();
        let points = read(zkey)?;
        self.timings.read += t.elapsed();
        let t = Instant::now();
        let m = prepare(self.backend.as_ref(), points)?;
        zkey.release_query(q);
        self.timings.prepare += t.elapsed();
        self.peak_prepared = self.peak_prepared.max(self.held + m.memory_bytes());
        Ok(m)
    }

    /// The B2 query, read and prepared for one MSM.
    fn b2_query(&mut self) -> Result<G2Msm, Error> {
        self.prepared(
            Query::B2,
            |z| z.b2_query_packed(),
            |b, p| b.prepare_g2_packed(p, Precompute::None),
        )
    }

    /// The H query, read and prepared for one MSM.
    fn h_query(&mut self) -> Result<G1Msm, Error> {
        self.prepared(
            Query::H,
            |z| z.g1_query_packed(Query::H),
            |b, p| b.prepare_g1_packed(p, Precompute::None),
        )
    }
}

impl KeyParts for Streamed<'_> {
    fn header(&self) -> &ZkeyHeader {
        &self.zkey.header
    }
    fn vk(&self) -> &VerifyingKey {
        &self.vk
    }
    fn backend(&self) -> &dyn ProveBackend {
        self.backend.as_ref()
    }
    fn evaluate_ab(&mut self, w: &[Fr], n: usize) -> Result<(Vec<Fr>, Vec<Fr>, Duration), Error> {
        let t = Instant::now();
        let pieces = 4 * rayon::current_num_threads().max(1);
        let entries = self.zkey.coef_entries()?;
        let direct = evaluate_entries(entries, &self.zkey.header, w, pieces).map_err(|k| {
            self.zkey.release_coef_entries();
            Error::format(self.zkey.path(), k)
        })?;
        if let Some((a, b)) = direct {
            self.zkey.release_coef_entries();
            return Ok((a, b, t.elapsed()));
        }
        let coefs = self.zkey.coefs()?;
        let (a, b) = (Matrix::new(coefs.a, pieces), Matrix::new(coefs.b, pieces));
        self.timings.read += t.elapsed();
        Ok(Matrix::evaluate_pair(&a, &b, w, n))
    }
    fn msm_g1(
        &mut self,
        q: Query,
        w: &SharedScalars<'_>,
        first: usize,
    ) -> Result<(G1Projective, Duration), Error> {
        self.one(
            q,
            |z| z.g1_query_packed(q),
            |b, p| b.prepare_g1_packed(p, Precompute::None),
            w,
            first,
        )
    }
    fn msm_b2(&mut self, w: &SharedScalars<'_>) -> Result<(G2Projective, Duration), Error> {
        let m = self.b2_query()?;
        let t = Instant::now();
        let p = m.msm_shared(w, 0)?;
        Ok((p, t.elapsed()))
    }
    /// B2 for an MSM beside the G1 ones: it stays alive while they are prepared.
    fn b2(&mut self) -> Result<G2Msm, Error> {
        let m = self.b2_query()?;
        self.held += m.memory_bytes();
        Ok(m)
    }
    fn h_term(&mut self, a: Vec<Fr>, b: Vec<Fr>, c: Vec<Fr>, shift: Fr) -> Result<HTerm, Error> {
        let backend = self.backend.clone();
        if backend.h_bases_first() {
            let h = self.h_query()?;
            return Ok(backend.h_term(a, b, c, shift, h.as_ref())?);
        }
        // The quotient first: A, B and C are gone before H's bases are read.
        let mut msm_only = Duration::ZERO;
        let mut term = HTerm::in_two_steps(
            || backend.quotient(a, b, c, shift).map_err(Error::from),
            |d| {
                let h = self.h_query()?;
                let t = Instant::now();
                let point = h.msm(d)?;
                msm_only = t.elapsed();
                Ok(point)
            },
        )?;
        // Reading and preparing H are load timings, not MSM.
        term.msm = msm_only;
        Ok(term)
    }
}

/// A·w and B·w over the domain.
type AbEvaluations = (Vec<Fr>, Vec<Fr>);

/// A·w and B·w over the domain straight from section 4's entries (as stored, [`COEF_ENTRY`]
/// bytes each), checked as they are used, without a parsed copy of the matrices. The domain is
/// cut into `pieces` constraint ranges evaluated in parallel; each finds its entries by binary
/// search, so the entries must form a few runs in constraint order (snarkjs writes one, with A
/// and B interleaved per constraint; a writer that puts all of A before all of B makes two).
/// None when they do not: the caller parses and sorts them instead.
fn evaluate_entries(
    entries: &[u8],
    h: &ZkeyHeader,
    w: &[Fr],
    pieces: usize,
) -> Result<Option<AbEvaluations>, FormatError> {
    const MAX_RUNS: usize = 4;
    let n = h.domain_size as usize;
    let count = entries.len() / COEF_ENTRY;
    let entry = |i: usize| &entries[i * COEF_ENTRY..(i + 1) * COEF_ENTRY];
    let con = |i: usize| coef_constraint(entry(i));
    let mut starts = vec![0usize];
    for i in 1..count {
        if con(i) < con(i - 1) {
            if starts.len() == MAX_RUNS {
                return Ok(None);
            }
            starts.push(i);
        }
    }
    let runs: Vec<(usize, usize)> = starts
        .iter()
        .zip(starts.iter().skip(1).chain([&count]))
        .map(|(&s, &e)| (s, e))
        .collect();
    // No range visits an entry past the domain: its run's last entry is checked here.
    for &(_, e) in &runs {
        if e > 0 && con(e - 1) >= h.domain_size {
            coef_entry(entry(e - 1), e - 1, h)?;
        }
    }
    let r_inv = zkey::r_inverse();
    let step = n.div_ceil(pieces.max(1)).max(1);
    let mut a = vec![Fr::zero(); n];
    let mut b = vec![Fr::zero(); n];
    a.par_chunks_mut(step)
        .zip(b.par_chunks_mut(step))
        .enumerate()
        .try_for_each(|(k, (ra, rb))| -> Result<(), FormatError> {
            let lo = (k * step) as u32;
            let hi = lo + ra.len() as u32;
            for &(s, e) in &runs {
                // The run is sorted: its entries of [lo, hi) are one stretch.
                let first = s + partition(e - s, |j| con(s + j) < lo);
                let end = s + partition(e - s, |j| con(s + j) < hi);
                for i in first..end {
                    let (matrix, coef) = coef_entry(entry(i), i, h)?;
                    let row = (coef.constraint - lo) as usize;
                    let v = coef.value * w[coef.signal as usize];
                    if matrix == 0 {
                        ra[row] += v;
                    } else {
                        rb[row] += v;
                    }
                }
            }
            // Each stored value is c·R: one R⁻¹ per sum instead of one per coefficient.
            for x in ra.iter_mut().chain(rb.iter_mut()) {
                *x *= r_inv;
            }
            Ok(())
        })?;
    Ok(Some((a, b)))
}

/// The number of leading indices in 0..len for which `below` holds (it must hold for a prefix).
fn partition(len: usize, below: impl Fn(usize) -> bool) -> usize {
    let (mut lo, mut hi) = (0, len);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        if below(mid) {
            lo = mid + 1;
        } else {
            hi = mid;
        }
    }
    lo
}

/// What [`prove_once`] read from the key besides the proof.
#[derive(Clone, Debug)]
pub struct StreamedKey {
    /// Time spent reading the key's parts and preparing its bases, summed over the proof
    /// (`total` = read + prepare; opening the file is the caller's). Coefficients summed
    /// straight from the file count as evaluation (`build_abc`), not as reading: the one pass
    /// does both.
    pub load_timings: LoadTimings,
    /// The most bytes of prepared base sets alive at one time (the bases' share of peak
    /// memory): the largest set, or B2 plus the largest G1 set where B2's MSM runs beside the
    /// G1 ones.
    pub peak_prepared_bytes: usize,
}

/// Proves once from an opened zkey without keeping the key: each part is read just before it is
/// needed and dropped after, so peak memory stays near the proof's vectors plus the largest query
/// (the B2 query in G2) instead of the whole prepared key. What `rigworker prove` does for a single
/// proof; a worker that proves the same circuit again keeps a [`PreparedKey`] instead.
pub fn prove_once(
    zkey: &ZkeyFile,
    backend: Arc<dyn ProveBackend>,
    witness: &Witness,
    opts: ProveOptions,
) -> Result<(ProveOutput, StreamedKey), Error> {
    prove_once_with_blinding(zkey, backend, witness, random_fr(), random_fr(), opts)
}

/// [`prove_once`] with the given blinding factors r and s (tests; reproducible proofs).
pub fn prove_once_with_blinding(
    zkey: &ZkeyFile,
    backend: Arc<dyn ProveBackend>,
    witness: &Witness,
    r: Fr,
    s: Fr,
    opts: ProveOptions,
) -> Result<(ProveOutput, StreamedKey), Error> {
    let t = Instant::now();
    zkey.check_query_sizes()?;
    let vk = zkey.verifying_key()?;
    let mut parts = Streamed {
        zkey,
        vk,
        backend,
        timings: LoadTimings {
            read: t.elapsed(),
            ..LoadTimings::default()
        },
        peak_prepared: 0,
        held: 0,
    };
    let out = run_pipeline(&mut parts, witness, r, s, opts)?;
    let mut load_timings = parts.timings;
    load_timings.total = load_timings.read + load_timings.prepare;
    Ok((
        out,
        StreamedKey {
            load_timings,
            peak_prepared_bytes: parts.peak_prepared,
        },
    ))
}

/// The proof pipeline (see the module documentation) over a key's parts, with blinding r and s.
fn run_pipeline(
    key: &mut dyn KeyParts,
    witness: &Witness,
    r: Fr,
    s: Fr,
    opts: ProveOptions,
) -> Result<ProveOutput, Error> {
    let t_total = Instant::now();
    let hd = key.header().clone();
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
    let (a, b, spent) = key.evaluate_ab(&w_fr, n)?;
    let t = Instant::now();
    let c: Vec<Fr> = a
        .par_iter()
        .zip(b.par_iter())
        .map(|(x, y)| *x * y)
        .collect();
    drop(w_fr);
    tm.build_abc = spent + t.elapsed();

    // 3. NTTs onto the odd coset, d = a·b − c and the H MSM (the backend keeps the vectors
    // where it computes: a GPU does all of it on the device)
    let shift = coset_shift(n).ok_or(Error::Mismatch(format!(
        "domain size {n} is too large for BN254's NTT"
    )))?;
    let h = key.h_term(a, b, c, shift)?;
    let msm_h = h.point;
    (tm.ntt, tm.msm_h) = (h.ntt, h.msm);

    // 4. the witness's MSMs, all from one `SharedScalars` (a GPU uploads the witness once for
    // the four of them; C takes its private part); the G2 one on another thread where the
    // backend runs it on other hardware than the G1 ones (a GPU with `G2Placement::Cpu`)
    let shared = SharedScalars::new(w);
    let c_first = hd.n_public as usize + 1;
    let ((msm_a, ta), (msm_b1, tb1), (msm_b2, tb2), (msm_c, tc));
    if key.backend().g2_beside_g1() {
        let b2 = key.b2()?;
        let (g1, g2) = std::thread::scope(|scope| {
            let g2 = scope.spawn(|| {
                let t = Instant::now();
                b2.msm(w).map(|p| (p, t.elapsed()))
            });
            let g1 = (|| -> Result<_, Error> {
                Ok((
                    key.msm_g1(Query::A, &shared, 0)?,
                    key.msm_g1(Query::B1, &shared, 0)?,
                    key.msm_g1(Query::C, &shared, c_first)?,
                ))
            })();
            (g1, g2.join())
        });
        let g2 = g2.unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        ((msm_a, ta), (msm_b1, tb1), (msm_c, tc)) = g1?;
        (msm_b2, tb2) = g2?;
    } else {
        (msm_a, ta) = key.msm_g1(Query::A, &shared, 0)?;
        (msm_b1, tb1) = key.msm_g1(Query::B1, &shared, 0)?;
        (msm_b2, tb2) = key.msm_b2(&shared)?;
        (msm_c, tc) = key.msm_g1(Query::C, &shared, c_first)?;
    }
    drop(shared);
    (tm.msm_a, tm.msm_b1, tm.msm_b2, tm.msm_c) = (ta, tb1, tb2, tc);

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
        let ok = verifier::verify(key.vk(), &proof, &public)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture_zkey(name: &str) -> ZkeyFile {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures")
            .join(format!("{name}.zkey"));
        ZkeyFile::open(&path).unwrap()
    }

    /// The direct evaluation takes the entries as they come when they form a few sorted runs
    /// (and then equals the parsed matrices' sums), and declines otherwise.
    #[test]
    fn entries_are_evaluated_in_place_when_they_form_few_runs() {
        let z = fixture_zkey("poseidon");
        let h = &z.header;
        let n = h.domain_size as usize;
        let w: Vec<Fr> = (0..h.n_vars as u64).map(|i| Fr::from(i * i + 3)).collect();
        let coefs = z.coefs().unwrap();
        let expected = (
            Matrix::new(coefs.a.clone(), 3).evaluate(&w, n),
            Matrix::new(coefs.b.clone(), 3).evaluate(&w, n),
        );
        let entries = z.coef_entries().unwrap().to_vec();
        let e = COEF_ENTRY;
        for pieces in [1, 3, 8, 1000] {
            assert_eq!(
                evaluate_entries(&entries, h, &w, pieces).unwrap(),
                Some(expected.clone()),
                "{pieces} pieces"
            );
        }
        // All of A first, then all of B: two runs.
        let (mut first, mut second) = (Vec::new(), Vec::new());
        for x in entries.chunks_exact(e) {
            if x[0] == 0 { &mut first } else { &mut second }.extend_from_slice(x);
        }
        first.extend_from_slice(&second);
        assert_eq!(
            evaluate_entries(&first, h, &w, 5).unwrap(),
            Some(expected.clone())
        );
        // Backwards: one run per entry.
        let reversed: Vec<u8> = entries.chunks_exact(e).rev().flatten().copied().collect();
        assert_eq!(evaluate_entries(&reversed, h, &w, 5).unwrap(), None);
        // A constraint past the domain at a run's end is refused like the parser refuses it.
        let mut bad = entries.clone();
        let last = bad.len() - e;
        bad[last + 4..last + 8].copy_from_slice(&h.domain_size.to_le_bytes());
        assert!(evaluate_entries(&bad, h, &w, 5).is_err());
    }
}

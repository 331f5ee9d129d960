//! Fixed-base multi-scalar multiplication (Pippenger) over short-Weierstrass curves, written for
//! the Groth16 prover's access pattern: the same bases (a proving key's queries) are used again
//! and again with new scalars.
//!
//! - **Signed digits**: scalars are recoded into digits in [-2^(c-1), 2^(c-1)), so a window needs
//!   2^(c-1) buckets instead of 2^c; a negative digit adds the negated point (free in affine).
//! - **GLV** (optional): k = k1 + λ·k2 with 127-bit halves, the second half against φ(P) =
//!   (β·x, y); half the windows, so half the bucket reductions. On the IFMA path a block's
//!   φ(P) are computed eight at a time before its points enter the buckets.
//! - **Batched affine additions**: bucket sums stay affine. Additions are queued and executed
//!   in batches that share one field inversion (Montgomery's trick), which makes an addition
//!   cost about 5 multiplications and a squaring instead of the 11 of a mixed Jacobian one (on
//!   G2 the shared inversion runs over the denominators' norms in Fq, not over Fq2). A
//!   point whose bucket is already in the current batch waits for the next batch; one that
//!   collides twice is spilled, and every doubling or cancellation (equal x) goes to a
//!   Jacobian overflow bucket, so skewed scalars (all ones, say) cannot degrade a batch to one
//!   inversion per addition. Spilled points are summed among themselves per bucket, pairwise
//!   in rounds that are batches too, before they enter their bucket: a witness full of ones
//!   or of equal small values costs batched additions, not Jacobian ones.
//! - **Window width** from a cost model that counts the additions, the bucket reductions and
//!   each batch's share of an inversion, among the widths that leave no nearly empty top
//!   window (whose few distinct digits would pile every point into a handful of buckets).
//! - **Precomputed tables** (optional, kept across jobs): copies of the bases multiplied by
//!   2^(c·j) let `depth` consecutive windows share one set of buckets, so one bucket reduction
//!   (and no doublings) serves all of them.
//! - **Lockstep bucket reduction**: Σ (b+1)·bucket\[b\] is split into segments of 16 buckets
//!   whose running sums advance together, so the reduction too is batched affine additions.
//! - **Field arithmetic picked at run time** ([`super::field`], [`super::ifma`]): batches run
//!   eight additions at a time in AVX-512 IFMA where the CPU has it, with a BMI2/ADX Montgomery
//!   multiplication otherwise, arkworks' portable multiplication as the last resort (additions,
//!   subtractions and the Fq2 product are ours, branch-free and plain Rust, on every path).
//!
//! Work is split over rayon threads by (window group × chunk of points); every task owns its
//! buckets, so there is no sharing while accumulating.
//! The buckets, their batches, the spill and the reduction are [`buckets`]; this file
//! prepares the bases, recodes the scalars and schedules the tasks.

use ark_ec::short_weierstrass::{Affine, Projective, SWCurveConfig};
use ark_ec::{AdditiveGroup, CurveGroup};
use ark_ff::Zero;
use rayon::prelude::*;

mod buckets;

use buckets::{Accumulator, batch_cap};

use super::field::{BatchField, adx_available};
use super::glv::{self, GLV_BITS};
use super::packed::{PackedCoordinate, PackedPoints};
use super::{FixedBaseMsm, Fr, ProveError, ScalarRepr};

/// Tuning of one prepared MSM.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MsmConfig {
    /// Window width c in bits (2..=16).
    pub window_bits: u32,
    /// How many consecutive windows share one bucket set through precomputed tables
    /// (1 = no tables; at least the number of windows = a single bucket set).
    pub table_depth: u32,
    /// Use the GLV endomorphism when the curve offers one.
    pub glv: bool,
    /// Threads the MSM may use (work is split into at least this many tasks).
    pub threads: usize,
    /// Use the BMI2/ADX assembly multiplication ([`super::field`]); ignored on a CPU without
    /// it. Off only to measure or test the portable arithmetic.
    pub adx: bool,
    /// Run batches (G1 and G2) eight at a time in AVX-512 IFMA ([`super::ifma`]); ignored on
    /// a CPU without it. Off only to measure or test the other paths.
    pub ifma: bool,
    /// With GLV and no tables: keep φ(base) = (β·x, y) as a second copy of the bases instead
    /// of multiplying x by β on every use. Costs the bases' memory once more; saves 3–5 % of a
    /// proof on the portable path, nothing measurable on the others (IFMA computes a block's
    /// images in lanes, [`BatchField::beta_images_simd`]).
    pub phi_copy: bool,
}

impl MsmConfig {
    /// A good configuration for `n` bases on this machine, without or with tables. From 2^16
    /// bases on, tables are built only where the cost model says they save at least
    /// [`TABLES_MIN_GAIN_PERCENT`]: they save the bucket reductions and doublings, not the
    /// additions, and at 2^20 points those are a few per cent of an MSM (measured there: no
    /// faster with tables, for 3.4 GB and 71 s of building for a whole key).
    pub fn for_size(n: usize, tables: bool) -> MsmConfig {
        Self::for_threads(n, tables, rayon::current_num_threads())
    }

    /// [`Self::for_size`] for `threads` threads. With many threads, tables can lose even
    /// where they save reductions: one bucket set is split by points over the threads, and each
    /// split reduces all 2^15 buckets (the model puts tables at 2^16 bases 0.65x as fast as none
    /// with 16 threads), so such machines get none there.
    pub fn for_threads(n: usize, tables: bool, threads: usize) -> MsmConfig {
        let threads = threads.max(1);
        let log = usize::BITS - n.max(1).leading_zeros();
        // Every window has its own reduction of 2^(c-1) buckets: pick the width with the least
        // modelled time (additions + reductions, rounded up to whole thread rounds), among the
        // widths whose top window is not nearly empty (see `glv::fills_top_window`: 14 and 15
        // lost 1.5-1.9x to 13 and 16 at 2^20).
        let mut plain = (u64::MAX, 3);
        for c in (3..=16u32).filter(|&c| glv::fills_top_window(GLV_BITS, c)) {
            let t = modelled_time(n, c, 1, threads);
            if t < plain.0 {
                plain = (t, c);
            }
        }
        // One bucket set: only the point additions scale with n, so wide windows pay, up to 16
        // bits: 8 windows per GLV half. Wider windows need 17-18 bits before a window is saved,
        // and then 2^16+ buckets (measured: c = 16 beat 13-15 by 15-25 % at 2^16 and 2^18
        // points).
        let c = log.saturating_sub(1).clamp(4, 16);
        let c = if log >= 15 { 16 } else { c };
        let c = (2..=c)
            .rev()
            .find(|&c| glv::fills_top_window(GLV_BITS, c))
            .unwrap_or(c);
        // Below 2^16 bases the model was never checked against measurements, and tables there
        // cost little: kept whenever asked for.
        let pays = || {
            n < 1 << 16
                || u128::from(plain.0) * 100
                    >= u128::from(modelled_time(n, c, 64, threads))
                        * u128::from(TABLES_MIN_GAIN_PERCENT)
        };
        let (window_bits, table_depth) = if tables && pays() {
            (c, 64)
        } else {
            (plain.1, 1)
        };
        let arith = super::arith::current();
        MsmConfig {
            window_bits,
            table_depth,
            glv: true,
            threads,
            adx: arith.uses_adx(),
            ifma: arith.uses_ifma(),
            phi_copy: false,
        }
    }
}

/// Modelled cost of one batched affine addition and of one bucket in the reduction, in field
/// multiplications.
const ADD_COST: u64 = 7;
const BUCKET_COST: u64 = 27;
/// Modelled fixed cost of one batch of additions, in field multiplications: its shared
/// inversion plus what a batch costs besides its additions. Small bucket sets make small
/// batches, so narrow windows pay it far more often. Fitted to sweeps, not to the inversion
/// alone: since our safegcd (`super::inverse`) that takes 1.05 µs, 66 multiplications, but a
/// model with 66 picked c = 8, 8, 10 at 2^10, 2^11, 2^13 points, which measured 1.18x, 1.29x
/// and 1.26x slower than the c = 10, 10, 13 that this value picks.
const BATCH_FIXED_COST: u64 = 280;

/// The least modelled gain, in per cent of the time without tables, for which
/// [`MsmConfig::for_size`] builds tables. The model said 19 % and 17 % at 2^16 and 2^18 points,
/// where whole proofs measured 14 % and 13 % faster with tables, and 4 % at 2^20, where they
/// measured no faster (AMD EPYC with IFMA, 2 threads; the MSM alone, `msm_timing`: 441 against
/// 444 ms with IFMA, 956 against 998 ms with ADX).
pub const TABLES_MIN_GAIN_PERCENT: u64 = 108;

/// Modelled time of an MSM of `n` bases with windows of `c` bits, `depth` of them sharing one
/// bucket set (1: no tables), split for `threads`.
fn modelled_time(n: usize, c: u32, depth: u32, threads: usize) -> u64 {
    let windows = glv::windows_for(GLV_BITS, c);
    let depth = depth.clamp(1, windows);
    let groups = windows.div_ceil(depth) as usize;
    // Each task adds both GLV halves of its points once per window of its group.
    let (_, t) = plan(n, 2 * depth as usize, groups, 1usize << (c - 1), threads);
    t
}

/// How many point chunks to split each of `groups` bucket sets into for `threads` threads, and
/// the modelled time: rounds of tasks × (additions + reduction of one task).
fn plan(m: usize, parts: usize, groups: usize, nb: usize, threads: usize) -> (usize, u64) {
    let groups = groups.max(1);
    let threads = threads.max(1);
    let mut best = (1usize, u64::MAX);
    let max_chunks = (threads * 2).min(m.div_ceil(256)).max(1);
    for chunks in 1..=max_chunks {
        let tasks = groups * chunks;
        let rounds = tasks.div_ceil(threads) as u64;
        let adds = (m * parts).div_ceil(chunks) as u64;
        let per_task = adds * ADD_COST
            + adds * BATCH_FIXED_COST / batch_cap(nb) as u64
            + nb as u64 * BUCKET_COST;
        let t = rounds * per_task;
        if t < best.1 {
            best = (chunks, t);
        }
    }
    best
}

/// An affine point known not to be at infinity, without arkworks' flag byte (denser tables).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Xy<F> {
    x: F,
    y: F,
}

/// Bases prepared for repeated MSMs.
pub struct PreparedMsm<P: SWCurveConfig> {
    n_inputs: usize,
    /// For each non-zero base, the index of its scalar.
    index: Vec<u32>,
    /// `tables[j][i]` = 2^(c·j)·base(index\[i\]).
    tables: Vec<Vec<Xy<P::BaseField>>>,
    /// β with φ(P) = (β·x, y) = λ·P, when GLV is in use.
    beta: Option<P::BaseField>,
    /// φ(base(index\[i\])), kept when GLV is on without tables (saves a multiplication per
    /// point and window); with tables φ is applied on the fly to keep their memory down.
    phi: Vec<Xy<P::BaseField>>,
    window_bits: u32,
    /// Windows per scalar (per GLV half).
    windows: u32,
    threads: usize,
    adx: bool,
    ifma: bool,
}

impl<P: SWCurveConfig<ScalarField = Fr>> PreparedMsm<P>
where
    P::BaseField: BatchField,
{
    /// Prepares `bases` for MSMs with the given configuration. `betas` are candidate cube roots
    /// of unity for the endomorphism; the one that acts as [`glv::LAMBDA`] on these bases is used
    /// (none → no GLV).
    pub fn new(
        bases: &[Affine<P>],
        config: MsmConfig,
        betas: &[P::BaseField],
    ) -> Result<Self, ProveError> {
        if bases.len() > u32::MAX as usize {
            return Err(ProveError::TooManyBases(bases.len()));
        }
        let index: Vec<u32> = (0..bases.len() as u32)
            .filter(|&i| !bases[i as usize].infinity)
            .collect();
        let base0: Vec<Xy<P::BaseField>> = index
            .iter()
            .map(|&i| Xy {
                x: bases[i as usize].x,
                y: bases[i as usize].y,
            })
            .collect();
        Self::from_parts(bases.len(), index, base0, config, betas)
    }

    /// [`Self::new`] for points read straight from a proving key's bytes: the only copy made is
    /// the prepared one.
    pub fn from_packed(
        bases: PackedPoints<'_, P>,
        config: MsmConfig,
        betas: &[P::BaseField],
    ) -> Result<Self, ProveError>
    where
        P::BaseField: PackedCoordinate,
    {
        if bases.len() > u32::MAX as usize {
            return Err(ProveError::TooManyBases(bases.len()));
        }
        let index: Vec<u32> = (0..bases.len() as u32)
            .into_par_iter()
            .filter(|&i| !bases.is_infinity(i as usize))
            .collect();
        let base0: Vec<Xy<P::BaseField>> = index
            .par_iter()
            .map(|&i| {
                let (x, y) = bases.xy(i as usize).unwrap_or_default();
                Xy { x, y }
            })
            .collect();
        Self::from_parts(bases.len(), index, base0, config, betas)
    }

    /// The prepared MSM over the non-zero bases `base0`, base0\[k\] being input `index[k]` of
    /// `n_inputs`.
    fn from_parts(
        n_inputs: usize,
        index: Vec<u32>,
        base0: Vec<Xy<P::BaseField>>,
        config: MsmConfig,
        betas: &[P::BaseField],
    ) -> Result<Self, ProveError> {
        let c = config.window_bits.clamp(2, 16);
        let beta = if config.glv {
            base0.first().and_then(|p| pick_beta::<P>(p, betas))
        } else {
            None
        };
        let bits = if beta.is_some() { GLV_BITS } else { 253 };
        let windows = glv::windows_for(bits, c);
        let depth = config.table_depth.clamp(1, windows) as usize;
        let mut tables = Vec::with_capacity(depth);
        tables.push(base0);
        for _ in 1..depth {
            let prev = tables.last().map(Vec::as_slice).unwrap_or(&[]);
            tables.push(shift_points::<P>(prev, c));
        }
        let phi = match beta {
            Some(beta) if depth == 1 && config.phi_copy => tables[0]
                .par_iter()
                .map(|p| Xy {
                    x: p.x * beta,
                    y: p.y,
                })
                .collect(),
            _ => Vec::new(),
        };
        Ok(PreparedMsm {
            n_inputs,
            index,
            tables,
            beta,
            phi,
            window_bits: c,
            windows,
            threads: config.threads.max(1),
            adx: config.adx && adx_available(),
            ifma: config.ifma,
        })
    }

    fn depth(&self) -> u32 {
        self.tables.len() as u32
    }

    /// Σ scalars\[i\]·bases\[i\].
    pub fn compute(&self, scalars: &[ScalarRepr]) -> Result<Projective<P>, ProveError> {
        if self.adx {
            self.compute_with::<true>(scalars)
        } else {
            self.compute_with::<false>(scalars)
        }
    }

    /// [`Self::compute`] with the field arithmetic fixed: `ADX` only when the CPU has it.
    fn compute_with<const ADX: bool>(
        &self,
        scalars: &[ScalarRepr],
    ) -> Result<Projective<P>, ProveError> {
        if scalars.len() != self.n_inputs {
            return Err(ProveError::LengthMismatch {
                bases: self.n_inputs,
                scalars: scalars.len(),
            });
        }
        if let Some(bad) = scalars
            .par_iter()
            .position_first(|s| !glv::is_canonical(&s.0))
        {
            return Err(ProveError::ScalarOutOfRange { index: bad });
        }
        let m = self.index.len();
        if m == 0 {
            return Ok(Projective::zero());
        }
        let parts = if self.beta.is_some() { 2 } else { 1 };
        let w = self.windows as usize;
        let c = self.window_bits;
        // Digits in blocks of DCH points: digits[((blk·parts + part)·w + window)·DCH + j], so a
        // task reading one window walks them contiguously.
        const DCH: usize = 1024;
        let blocks = m.div_ceil(DCH);
        let mut digits = vec![0i16; blocks * parts * w * DCH];
        let glv_on = self.beta.is_some();
        digits
            .par_chunks_mut(parts * w * DCH)
            .enumerate()
            .for_each_init(
                || vec![0i32; parts * w],
                |tmp, (blk, out)| {
                    let hi = ((blk + 1) * DCH).min(m);
                    for i in blk * DCH..hi {
                        let j = i - blk * DCH;
                        let k = &scalars[self.index[i] as usize].0;
                        if glv_on {
                            let (m1, n1, m2, n2) = glv::decompose(k);
                            let (lo, hi) = tmp.split_at_mut(w);
                            glv::signed_digits(&[m1 as u64, (m1 >> 64) as u64], n1, c, lo);
                            glv::signed_digits(&[m2 as u64, (m2 >> 64) as u64], n2, c, hi);
                        } else if glv::is_upper_half(k) {
                            glv::signed_digits(&glv::negate_mod_r(k), true, c, tmp);
                        } else {
                            glv::signed_digits(k, false, c, tmp);
                        }
                        for (t, &d) in tmp.iter().enumerate() {
                            out[t * DCH + j] = d as i16;
                        }
                    }
                },
            );

        let depth = self.depth();
        let groups = self.windows.div_ceil(depth) as usize;
        let nb = 1usize << (c - 1);
        // Enough tasks to keep every thread busy; each extra chunk of a group costs one more
        // reduction.
        let (chunks, _) = plan(m, parts, groups, nb, self.threads);
        let chunk_len = m.div_ceil(chunks);
        let tasks: Vec<(usize, usize)> = (0..groups)
            .flat_map(|g| (0..chunks).map(move |k| (g, k)))
            .collect();
        let results: Vec<(usize, Projective<P>)> = tasks
            .par_iter()
            .map_init(
                || (Accumulator::<P, ADX>::new(nb, self.ifma), Vec::new()),
                |(acc, phi_x), &(g, k)| {
                    let lo = k * chunk_len;
                    let hi = ((k + 1) * chunk_len).min(m);
                    let w_lo = g * depth as usize;
                    let w_hi = ((g + 1) * depth as usize).min(w);
                    for win in w_lo..w_hi {
                        let table = &self.tables[win - w_lo];
                        let mut i = lo;
                        while i < hi {
                            let blk = i / DCH;
                            let end = ((blk + 1) * DCH).min(hi);
                            let d0 = &digits[((blk * parts) * w + win) * DCH..][..DCH];
                            for (ii, p) in table.iter().enumerate().take(end).skip(i) {
                                let d = d0[ii - blk * DCH];
                                if d != 0 {
                                    acc.add_signed(d as i32, p);
                                }
                            }
                            if let Some(beta) = self.beta {
                                let d1 = &digits[((blk * parts + 1) * w + win) * DCH..][..DCH];
                                if self.phi.is_empty()
                                    && self.ifma
                                    && P::BaseField::beta_images_simd(
                                        &table[i..end],
                                        |p| &p.x,
                                        &beta,
                                        phi_x,
                                    )
                                {
                                    for (ii, &p) in table.iter().enumerate().take(end).skip(i) {
                                        let d = d1[ii - blk * DCH];
                                        if d != 0 {
                                            let x = phi_x[ii - i];
                                            acc.add_signed(d as i32, &Xy { x, y: p.y });
                                        }
                                    }
                                } else if self.phi.is_empty() {
                                    for (ii, &p) in table.iter().enumerate().take(end).skip(i) {
                                        let d = d1[ii - blk * DCH];
                                        if d != 0 {
                                            acc.add_signed(
                                                d as i32,
                                                &Xy {
                                                    x: p.x.mul_by_beta::<ADX>(&beta),
                                                    y: p.y,
                                                },
                                            );
                                        }
                                    }
                                } else {
                                    for (ii, p) in self.phi.iter().enumerate().take(end).skip(i) {
                                        let d = d1[ii - blk * DCH];
                                        if d != 0 {
                                            acc.add_signed(d as i32, p);
                                        }
                                    }
                                }
                            }
                            i = end;
                        }
                    }
                    (g, acc.finish())
                },
            )
            .collect();

        // Σ_g 2^(c·depth·g)·S_g, Horner from the top group.
        let mut sums = vec![Projective::<P>::zero(); groups];
        for (g, s) in results {
            sums[g] += s;
        }
        let mut total = Projective::<P>::zero();
        for s in sums.iter().rev() {
            for _ in 0..(c * depth) {
                total.double_in_place();
            }
            total += s;
        }
        Ok(total)
    }

    /// Bytes of the bases as kept: the tables, the endomorphism's copy and the index.
    pub fn bytes(&self) -> usize {
        let point = std::mem::size_of::<Xy<P::BaseField>>();
        self.tables.iter().map(|t| t.len() * point).sum::<usize>()
            + self.phi.len() * point
            + self.index.len() * 4
    }
}

impl<P: SWCurveConfig<ScalarField = Fr>> FixedBaseMsm<Projective<P>> for PreparedMsm<P>
where
    P::BaseField: BatchField,
{
    fn len(&self) -> usize {
        self.n_inputs
    }
    fn msm(&self, scalars: &[ScalarRepr]) -> Result<Projective<P>, ProveError> {
        self.compute(scalars)
    }
    fn memory_bytes(&self) -> usize {
        self.bytes()
    }
    fn has_tables(&self) -> bool {
        self.depth() > 1
    }
}

/// The β among `betas` for which φ(p) = λ·p, if any.
fn pick_beta<P: SWCurveConfig<ScalarField = Fr>>(
    p: &Xy<P::BaseField>,
    betas: &[P::BaseField],
) -> Option<P::BaseField> {
    let pt = Affine::<P>::new_unchecked(p.x, p.y);
    let lp = (pt * glv::LAMBDA).into_affine();
    betas
        .iter()
        .copied()
        .find(|b| Affine::<P>::new_unchecked(p.x * b, p.y) == lp)
}

/// 2^c·p for every p, as affine points (parallel; one batched normalisation per chunk).
fn shift_points<P: SWCurveConfig>(points: &[Xy<P::BaseField>], c: u32) -> Vec<Xy<P::BaseField>> {
    points
        .par_chunks(4096)
        .flat_map_iter(|chunk| {
            let proj: Vec<Projective<P>> = chunk
                .iter()
                .map(|p| {
                    let mut q = Projective::<P>::from(Affine::<P>::new_unchecked(p.x, p.y));
                    for _ in 0..c {
                        q.double_in_place();
                    }
                    q
                })
                .collect();
            Projective::<P>::normalize_batch(&proj)
                .into_iter()
                .map(|a| Xy { x: a.x, y: a.y })
        })
        .collect()
}

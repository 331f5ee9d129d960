//! The bucket accumulator of one MSM task: batched affine additions into the buckets of one
//! window group, the spill of points that keep meeting their bucket in the batch, and the
//! lockstep reduction Σ (b+1)·bucket\[b\] (see the parent module for the design).

use ark_ec::AdditiveGroup;
use ark_ec::short_weierstrass::{Affine, Projective, SWCurveConfig};
use ark_ff::Zero;

use super::Xy;
use crate::prove::field::{BatchField, SimdScratch};

/// Additions per batch for `nb` buckets. Bigger batches share the inversion more widely but
/// collide more often with buckets already in the batch; a collision only waits for the next
/// batch, so an eighth of the buckets (collisions near 6 %) is still cheap.
pub(super) fn batch_cap(nb: usize) -> usize {
    (nb / 8).clamp(32, 2048)
}

const OCCUPIED: u8 = 1;
const IN_BATCH: u8 = 2;
const OVERFLOW: u8 = 4;

/// Buckets of one window group with batched affine additions.
pub(super) struct Accumulator<P: SWCurveConfig, const ADX: bool>
where
    P::BaseField: BatchField,
{
    buckets: Vec<Xy<P::BaseField>>,
    flags: Vec<u8>,
    /// Jacobian sums of the points that met their bucket's x (doublings, cancellations), per
    /// bucket. Empty until the first such point: random scalars practically never make one,
    /// and filling it for every task was a fresh 0.4 MB (G1) or 0.8 MB (G2) of writes.
    overflow: Vec<Projective<P>>,
    batch_bucket: Vec<u32>,
    batch_point: Vec<Xy<P::BaseField>>,
    deferred: Vec<(u32, Xy<P::BaseField>)>,
    /// Points that met their bucket in the batch twice: summed among themselves later by
    /// [`Self::flush_spill`], in batches too.
    spill: Vec<(u32, Xy<P::BaseField>)>,
    spill_next: Vec<(u32, Xy<P::BaseField>)>,
    pair_owner: Vec<u32>,
    pair_first: Vec<Xy<P::BaseField>>,
    pair_second: Vec<Xy<P::BaseField>>,
    pair_index: Vec<u32>,
    scratch: BatchScratch<P::BaseField>,
    simd: Option<SimdScratch>,
    cap: usize,
}

impl<P: SWCurveConfig, const ADX: bool> Accumulator<P, ADX>
where
    P::BaseField: BatchField,
{
    pub(super) fn new(nb: usize, simd: bool) -> Self {
        let cap = batch_cap(nb);
        let zero = Xy {
            x: P::BaseField::zero(),
            y: P::BaseField::zero(),
        };
        Accumulator {
            buckets: vec![zero; nb],
            flags: vec![0; nb],
            overflow: Vec::new(),
            batch_bucket: Vec::with_capacity(cap + 64),
            batch_point: Vec::with_capacity(cap + 64),
            deferred: Vec::with_capacity(cap),
            spill: Vec::new(),
            spill_next: Vec::new(),
            pair_owner: Vec::new(),
            pair_first: Vec::new(),
            pair_second: Vec::new(),
            pair_index: Vec::new(),
            scratch: Vec::with_capacity(cap + 64),
            simd: simd.then(SimdScratch::default),
            cap,
        }
    }

    /// Adds ±p (− for a negative digit d) to bucket |d| − 1.
    #[inline]
    pub(super) fn add_signed(&mut self, d: i32, p: &Xy<P::BaseField>) {
        let b = (d.unsigned_abs() - 1) as usize;
        self.insert(b, p, d < 0, false);
        if self.batch_bucket.len() >= self.cap {
            self.flush();
        }
        if self.spill.len() >= SPILL_CAP {
            self.flush_spill();
        }
    }

    /// Queues bucket\[b\] += (−)p. The point is taken by reference and copied once, straight
    /// into the batch (negated there): the common path touches it no more than that.
    #[inline]
    fn insert(&mut self, b: usize, p: &Xy<P::BaseField>, negate: bool, retried: bool) {
        let signed = |p: &Xy<P::BaseField>| Xy {
            x: p.x,
            y: if negate { -p.y } else { p.y },
        };
        let f = self.flags[b];
        if f & OCCUPIED == 0 {
            self.buckets[b] = signed(p);
            self.flags[b] = f | OCCUPIED;
        } else if f & IN_BATCH != 0 {
            if retried {
                self.spill.push((b as u32, signed(p)));
            } else {
                self.deferred.push((b as u32, signed(p)));
            }
        } else if self.buckets[b].x == p.x {
            // Doubling or cancellation: the affine formula divides by zero here.
            self.push_overflow(b, signed(p));
        } else {
            self.flags[b] = f | IN_BATCH;
            self.batch_bucket.push(b as u32);
            self.batch_point.push(*p);
            if negate && let Some(q) = self.batch_point.last_mut() {
                q.y = -q.y;
            }
        }
    }

    #[inline]
    fn push_overflow(&mut self, b: usize, p: Xy<P::BaseField>) {
        if self.overflow.is_empty() {
            self.overflow = vec![Projective::<P>::zero(); self.buckets.len()];
        }
        self.overflow[b] += &Affine::<P>::new_unchecked(p.x, p.y);
        self.flags[b] |= OVERFLOW;
    }

    /// Runs the queued additions; the deferred points then start the next batch (a second
    /// chance, without an inversion of their own).
    fn flush(&mut self) {
        self.run_batch();
        if !self.deferred.is_empty() {
            let deferred = std::mem::take(&mut self.deferred);
            for &(b, p) in &deferred {
                self.insert(b as usize, &p, false, true);
            }
            self.deferred = deferred;
            self.deferred.clear();
        }
    }

    /// bucket += point for every queued pair, with one inversion for the whole batch.
    fn run_batch(&mut self) {
        if self.batch_bucket.is_empty() {
            return;
        }
        add_affine_batch::<P::BaseField, ADX>(
            &mut self.buckets,
            &self.batch_bucket,
            &self.batch_point,
            &mut self.scratch,
            &mut self.simd,
        );
        for &b in &self.batch_bucket {
            self.flags[b as usize] &= !IN_BATCH;
        }
        self.batch_bucket.clear();
        self.batch_point.clear();
    }

    /// Sums the spilled points of each bucket among themselves, then into their buckets, all
    /// as batched affine additions. Skewed scalars (a witness full of ones, many equal
    /// values) send most of a window's points to a few buckets; without this every one of
    /// them after the first two per batch took a Jacobian addition, about twice the cost.
    /// Each round pairs neighbours of the same bucket (one shared inversion for all pairs), so
    /// k points of one bucket take k − 1 additions in log2(k) rounds.
    fn flush_spill(&mut self) {
        if self.spill.is_empty() {
            return;
        }
        self.run_batch();
        self.spill.sort_unstable_by_key(|e| e.0);
        loop {
            self.pair_owner.clear();
            self.pair_first.clear();
            self.pair_second.clear();
            self.spill_next.clear();
            let mut i = 0;
            while i < self.spill.len() {
                let (b, p) = self.spill[i];
                match self.spill.get(i + 1) {
                    Some(&(b2, q)) if b2 == b => {
                        if p.x == q.x {
                            // A doubling or a cancellation: the affine formula cannot.
                            self.push_overflow(b as usize, p);
                            self.push_overflow(b as usize, q);
                        } else {
                            self.pair_owner.push(b);
                            self.pair_first.push(p);
                            self.pair_second.push(q);
                        }
                        i += 2;
                    }
                    _ => {
                        self.spill_next.push((b, p));
                        i += 1;
                    }
                }
            }
            if self.pair_owner.is_empty() {
                break;
            }
            let k = self.pair_first.len() as u32;
            self.pair_index.clear();
            self.pair_index.extend(0..k);
            add_affine_batch::<P::BaseField, ADX>(
                &mut self.pair_first,
                &self.pair_index,
                &self.pair_second,
                &mut self.scratch,
                &mut self.simd,
            );
            // Both lists are in bucket order: merge them into the next round's spill.
            self.spill.clear();
            let (mut a, mut c) = (0, 0);
            while a < self.spill_next.len() || c < self.pair_owner.len() {
                let take_pair = c < self.pair_owner.len()
                    && (a == self.spill_next.len() || self.pair_owner[c] <= self.spill_next[a].0);
                if take_pair {
                    self.spill.push((self.pair_owner[c], self.pair_first[c]));
                    c += 1;
                } else {
                    self.spill.push(self.spill_next[a]);
                    a += 1;
                }
            }
        }
        // One point left per bucket: into the buckets, as one more batch.
        let rest = std::mem::take(&mut self.spill_next);
        for &(b, p) in &rest {
            self.insert(b as usize, &p, false, true);
        }
        self.run_batch();
        self.spill_next = rest;
        self.spill_next.clear();
        self.spill.clear();
    }

    /// Σ (b+1)·bucket\[b\], leaving the buckets empty for the next task.
    pub(super) fn finish(&mut self) -> Projective<P> {
        // Retried points never defer again, so one flush and one more batch empty the queue.
        self.flush();
        self.run_batch();
        self.flush_spill();
        let total = if self.buckets.len() >= 2 * SEGMENT {
            self.reduce_segments()
        } else {
            self.reduce_serial()
        };
        for b in 0..self.buckets.len() {
            if self.flags[b] & OVERFLOW != 0 {
                self.overflow[b] = Projective::<P>::zero();
            }
            self.flags[b] = 0;
        }
        total
    }

    /// The textbook running sum from the top bucket, in Jacobian coordinates.
    fn reduce_serial(&self) -> Projective<P> {
        let mut running = Projective::<P>::zero();
        let mut total = Projective::<P>::zero();
        for b in (0..self.buckets.len()).rev() {
            let f = self.flags[b];
            if f & OCCUPIED != 0 {
                running += &self.affine(b);
            }
            if f & OVERFLOW != 0 {
                running += self.overflow[b];
            }
            total += running;
        }
        total
    }

    fn affine(&self, b: usize) -> Affine<P> {
        Affine::<P>::new_unchecked(self.buckets[b].x, self.buckets[b].y)
    }

    /// The running sum of [`Self::reduce_serial`] split over segments of [`SEGMENT`] buckets
    /// that advance in lockstep, so that each step is a batch of independent affine additions
    /// with one shared inversion: for segment s, R_s = Σ bucket\[sL + t\] and
    /// T_s = Σ (t+1)·bucket\[sL + t\]; then Σ (b+1)·bucket\[b\] = Σ T_s + L·Σ s·R_s. A segment
    /// that meets a doubling, a cancellation or an overflow bucket finishes in Jacobian
    /// coordinates instead (random inputs practically never do).
    fn reduce_segments(&mut self) -> Projective<P> {
        let nb = self.buckets.len();
        let mut seg = Segments::<P>::new(nb.div_ceil(SEGMENT));
        let mut idx: Vec<u32> = Vec::with_capacity(seg.len());
        let mut pts: Vec<Xy<P::BaseField>> = Vec::with_capacity(seg.len());
        for t in (0..SEGMENT).rev() {
            // R_s += bucket[sL + t]
            idx.clear();
            pts.clear();
            for s in 0..seg.len() {
                let b = s * SEGMENT + t;
                if b >= nb || self.flags[b] & (OCCUPIED | OVERFLOW) == 0 {
                    continue;
                }
                let f = self.flags[b];
                if seg.slow[s].is_none() && f & OVERFLOW == 0 {
                    let p = self.buckets[b];
                    match &seg.run[s] {
                        None => {
                            seg.run[s] = Some(p);
                            continue;
                        }
                        Some(r) if r.x != p.x => {
                            idx.push(s as u32);
                            pts.push(p);
                            continue;
                        }
                        Some(_) => {}
                    }
                }
                let slow = seg.make_slow(s);
                if f & OCCUPIED != 0 {
                    slow.0 += &self.affine(b);
                }
                if f & OVERFLOW != 0 {
                    slow.0 += self.overflow[b];
                }
            }
            Segments::<P>::add_into::<ADX>(
                &mut seg.run,
                &mut seg.dense,
                &idx,
                &pts,
                &mut self.scratch,
                &mut self.simd,
            );
            // T_s += R_s
            idx.clear();
            pts.clear();
            for s in 0..seg.len() {
                if let Some(slow) = seg.slow[s].as_mut() {
                    slow.1 += slow.0;
                    continue;
                }
                let Some(r) = seg.run[s] else { continue };
                match &seg.tot[s] {
                    None => seg.tot[s] = Some(r),
                    Some(t) if t.x != r.x => {
                        idx.push(s as u32);
                        pts.push(r);
                    }
                    Some(_) => {
                        let slow = seg.make_slow(s);
                        slow.1 += slow.0;
                    }
                }
            }
            Segments::<P>::add_into::<ADX>(
                &mut seg.tot,
                &mut seg.dense,
                &idx,
                &pts,
                &mut self.scratch,
                &mut self.simd,
            );
        }
        seg.combine()
    }
}

/// The state of [`Accumulator::reduce_segments`]: per segment s the running sum R_s and the
/// weighted sum T_s, affine (None = zero), or both in Jacobian coordinates once the segment
/// met a case the affine formula cannot take.
struct Segments<P: SWCurveConfig> {
    run: Vec<Option<Xy<P::BaseField>>>,
    tot: Vec<Option<Xy<P::BaseField>>>,
    slow: Vec<Option<(Projective<P>, Projective<P>)>>,
    /// Dense copies for the batch additions (only the entries named by the batch are read).
    dense: Vec<Xy<P::BaseField>>,
}

impl<P: SWCurveConfig> Segments<P>
where
    P::BaseField: BatchField,
{
    fn new(n: usize) -> Self {
        Segments {
            run: vec![None; n],
            tot: vec![None; n],
            slow: vec![None; n],
            dense: Vec::with_capacity(n),
        }
    }

    fn len(&self) -> usize {
        self.run.len()
    }

    fn proj(p: &Option<Xy<P::BaseField>>) -> Projective<P> {
        match p {
            Some(p) => Affine::<P>::new_unchecked(p.x, p.y).into(),
            None => Projective::<P>::zero(),
        }
    }

    /// Moves segment `s` to Jacobian coordinates (once) and returns its (R_s, T_s).
    fn make_slow(&mut self, s: usize) -> &mut (Projective<P>, Projective<P>) {
        if self.slow[s].is_none() {
            self.slow[s] = Some((Self::proj(&self.run[s]), Self::proj(&self.tot[s])));
        }
        self.slow[s].get_or_insert_with(|| (Projective::<P>::zero(), Projective::<P>::zero()))
    }

    /// target\[idx\[j\]\] += pts\[j\] through a dense copy (the batch wants plain points).
    fn add_into<const ADX: bool>(
        target: &mut [Option<Xy<P::BaseField>>],
        dense: &mut Vec<Xy<P::BaseField>>,
        idx: &[u32],
        pts: &[Xy<P::BaseField>],
        scratch: &mut BatchScratch<P::BaseField>,
        simd: &mut Option<SimdScratch>,
    ) {
        if idx.is_empty() {
            return;
        }
        dense.clear();
        dense.extend(target.iter().map(|p| {
            p.unwrap_or(Xy {
                x: P::BaseField::zero(),
                y: P::BaseField::zero(),
            })
        }));
        add_affine_batch::<P::BaseField, ADX>(dense, idx, pts, scratch, simd);
        for &s in idx {
            target[s as usize] = Some(dense[s as usize]);
        }
    }

    /// Σ T_s + L·Σ s·R_s, the second as a running sum over the segments from the top.
    fn combine(&self) -> Projective<P> {
        let mut sum_t = Projective::<P>::zero();
        let mut acc = Projective::<P>::zero();
        let mut weighted = Projective::<P>::zero();
        for s in (0..self.len()).rev() {
            let (r, t) = match &self.slow[s] {
                Some(v) => *v,
                None => (Self::proj(&self.run[s]), Self::proj(&self.tot[s])),
            };
            sum_t += t;
            if s > 0 {
                acc += r;
                weighted += acc;
            }
        }
        for _ in 0..SEGMENT.trailing_zeros() {
            weighted.double_in_place();
        }
        sum_t + weighted
    }
}

/// Spilled points gathered before they are summed (a bound on the accumulator's memory).
const SPILL_CAP: usize = 4096;

/// Buckets per segment of the lockstep reduction (a power of two): more segments share each
/// inversion more widely, but cost one Jacobian addition each at the end.
const SEGMENT: usize = 16;

/// dst\[idx\[j\]\] += pts\[j\] for every j, affine, with one shared inversion (eight lane
/// inversions on the SIMD path). The indices must be distinct and no point may have its
/// destination's x: the affine formula divides by the difference.
///
/// The scalar path keeps two independent chains of work in flight (two prefix products, then
/// two additions at a time): on the `mulx` path that took 3 % off the G1 MSMs against one
/// addition after the other, measured in whole proofs.
fn add_affine_batch<F: BatchField, const ADX: bool>(
    dst: &mut [Xy<F>],
    idx: &[u32],
    pts: &[Xy<F>],
    scratch: &mut BatchScratch<F>,
    simd: &mut Option<SimdScratch>,
) {
    let n = idx.len();
    if n == 0 {
        return;
    }
    if let Some(sc) = simd.as_mut() {
        if F::add_batch_simd(dst, idx, pts, |p| &p.x, |p| &p.y, sc) {
            return;
        }
        // No SIMD path for this field or CPU: do not ask again.
        *simd = None;
    }
    // The shared inversion runs over the denominators' norms (Fq even on G2: see
    // `BatchField::Norm`). Two product chains, over the even and the odd positions: a `mulx`
    // multiplication's latency (17 ns here) is above its share of the multiplier's throughput
    // (14 ns), and a single chain would leave the multiplier idle between links.
    let norm = |dst: &[Xy<F>], j: usize| {
        pts[j]
            .x
            .sub_fast(&dst[idx[j] as usize].x)
            .norm_with::<ADX>()
    };
    scratch.clear();
    let one = <F::Norm as ark_ff::One>::one();
    let (mut even, mut odd) = (one, one);
    let mut j = 0;
    while j + 1 < n {
        let (ne, no) = (norm(dst, j), norm(dst, j + 1));
        scratch.push((even, ne));
        scratch.push((odd, no));
        even = even.mul_with::<ADX>(&ne);
        odd = odd.mul_with::<ADX>(&no);
        j += 2;
    }
    if j < n {
        let ne = norm(dst, j);
        scratch.push((even, ne));
        even = even.mul_with::<ADX>(&ne);
    }
    // Non-zero: equal x never enters a batch.
    let inv = even
        .mul_with::<ADX>(&odd)
        .inverse_fast()
        .unwrap_or_else(F::Norm::zero);
    // 1/even and 1/odd, each walked back down its own chain.
    let (mut inv_even, mut inv_odd) = (inv.mul_with::<ADX>(&odd), inv.mul_with::<ADX>(&even));
    #[inline(always)]
    fn add_one<F: BatchField, const ADX: bool>(
        dst: &mut [Xy<F>],
        b: usize,
        p: &Xy<F>,
        (before, norm): &BatchEntry<F>,
        chain: &mut F::Norm,
    ) {
        let q = dst[b];
        let inv_norm = chain.mul_with::<ADX>(before);
        *chain = chain.mul_with::<ADX>(norm);
        let inv_den = p.x.sub_fast(&q.x).inverse_with_norm::<ADX>(&inv_norm);
        let lambda = p.y.sub_fast(&q.y).mul_with::<ADX>(&inv_den);
        let x3 = lambda.square_with::<ADX>().sub_fast(&q.x.add_fast(&p.x));
        let y3 = lambda.mul_with::<ADX>(&q.x.sub_fast(&x3)).sub_fast(&q.y);
        dst[b] = Xy { x: x3, y: y3 };
    }
    // Two additions at a time, their steps interleaved: one addition is a chain of four
    // dependent multiplications, longer than the reorder window can look past, so written one
    // after the other they would run mostly one at a time.
    #[inline(always)]
    fn add_two<F: BatchField, const ADX: bool>(
        dst: &mut [Xy<F>],
        (b, c): (usize, usize),
        (p, r): (&Xy<F>, &Xy<F>),
        (entry_p, entry_r): (&BatchEntry<F>, &BatchEntry<F>),
        (chain_p, chain_r): (&mut F::Norm, &mut F::Norm),
    ) {
        let (q, s) = (dst[b], dst[c]);
        let inv_norm_p = chain_p.mul_with::<ADX>(&entry_p.0);
        let inv_norm_r = chain_r.mul_with::<ADX>(&entry_r.0);
        *chain_p = chain_p.mul_with::<ADX>(&entry_p.1);
        *chain_r = chain_r.mul_with::<ADX>(&entry_r.1);
        let inv_p = p.x.sub_fast(&q.x).inverse_with_norm::<ADX>(&inv_norm_p);
        let inv_r = r.x.sub_fast(&s.x).inverse_with_norm::<ADX>(&inv_norm_r);
        let lambda_p = p.y.sub_fast(&q.y).mul_with::<ADX>(&inv_p);
        let lambda_r = r.y.sub_fast(&s.y).mul_with::<ADX>(&inv_r);
        let x3_p = lambda_p.square_with::<ADX>().sub_fast(&q.x.add_fast(&p.x));
        let x3_r = lambda_r.square_with::<ADX>().sub_fast(&s.x.add_fast(&r.x));
        let y3_p = lambda_p
            .mul_with::<ADX>(&q.x.sub_fast(&x3_p))
            .sub_fast(&q.y);
        let y3_r = lambda_r
            .mul_with::<ADX>(&s.x.sub_fast(&x3_r))
            .sub_fast(&s.y);
        dst[b] = Xy { x: x3_p, y: y3_p };
        dst[c] = Xy { x: x3_r, y: y3_r };
    }
    let mut j = n;
    if n % 2 == 1 {
        j -= 1;
        add_one::<F, ADX>(dst, idx[j] as usize, &pts[j], &scratch[j], &mut inv_even);
    }
    while j >= 2 {
        add_two::<F, ADX>(
            dst,
            (idx[j - 1] as usize, idx[j - 2] as usize),
            (&pts[j - 1], &pts[j - 2]),
            (&scratch[j - 1], &scratch[j - 2]),
            (&mut inv_odd, &mut inv_even),
        );
        j -= 2;
    }
}

/// Per position of a batch: the prefix product of its chain before it, and its denominator's
/// norm.
type BatchEntry<F> = (<F as BatchField>::Norm, <F as BatchField>::Norm);
type BatchScratch<F> = Vec<BatchEntry<F>>;

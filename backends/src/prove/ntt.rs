//! The number-theoretic transforms of the Groth16 H polynomial over BN254's scalar field, on
//! the CPU: in place, with no bit-reversal pass and few passes over memory.
//!
//! The prover needs, for each of A·w, B·w and C·w, the inverse NTT (evaluations on the subgroup
//! H → coefficients) followed by the forward NTT on the coset shift·H. Done as two textbook
//! transforms that is two bit-reversal permutations and two scaling passes per vector. Here:
//!
//! - the inverse is a decimation-in-frequency (Gentleman–Sande) transform: natural order in,
//!   coefficients out in bit-reversed order;
//! - the coset transform is a decimation-in-time (Cooley–Tukey) one: bit-reversed order in,
//!   natural order out; so the two meet in bit-reversed order and no permutation runs at all;
//! - between them each coefficient i is multiplied by shiftⁱ/n, one multiplication;
//! - the small stages of both transforms and the scaling run block by block on
//!   [`BLOCK`]-element pieces that stay in the core's cache; only the stages whose butterflies
//!   span more than a block walk the whole vector;
//! - one twiddle table serves both directions: `T[h + j] = ω_{2h}^j`, and the inverse
//!   butterfly's ω_{2h}^{−j} = −ω_{2h}^{h−j} costs nothing more than swapping a subtraction.
//!
//! The butterflies and the scaling run on the MSM's arithmetic path: eight at a time in IFMA
//! lanes ([`super::ifma::dif_span8`] and its siblings; the few butterflies of levels narrower
//! than 16 and j < 8 of an inverse group take the scalar path) where the CPU has it, else one
//! at a time with the `mulx` assembly ([`super::field::fr_mul`]), else arkworks'; the scalar
//! butterflies add and subtract without branches on every path ([`super::field::fr_add`]). The
//! root of unity is [`super::root_of_unity`]'s, the one snarkjs and rapidsnark use.

use ark_ff::{Field, One, PrimeField};
use rayon::prelude::*;

use super::field::{adx_available, fr_add, fr_mul, fr_sub};
use super::ifma;
use super::{Fr, ProveError, ScalarRepr, root_of_unity};

/// Elements per cache block (2^13 · 32 bytes = 256 KiB, well inside a core's L2).
const BLOCK: usize = 1 << 13;

/// Butterflies per parallel task in the stages that span more than a block.
const SPAN_TASK: usize = 1 << 11;

/// The twiddle table of one domain size: `t[h + j] = ω_{2h}^j` for every power of two h < n
/// and j < h (`t[0]` unused).
struct Twiddles {
    t: Vec<Fr>,
}

impl Twiddles {
    fn new(n: usize) -> Result<Twiddles, ProveError> {
        let omega = root_of_unity(n).ok_or(ProveError::BadNttSize(n))?;
        let mut t = vec![Fr::one(); n.max(2)];
        if n >= 2 {
            // The top level holds ω_n^j; every lower level is every other entry of the one above.
            let half = n / 2;
            t[half..n]
                .par_chunks_mut(4096)
                .enumerate()
                .for_each(|(k, chunk)| {
                    let mut w = omega.pow([(k * 4096) as u64]);
                    for x in chunk {
                        *x = w;
                        w *= omega;
                    }
                });
            let mut h = half / 2;
            while h >= 1 {
                let (low, high) = t.split_at_mut(2 * h);
                for j in 0..h {
                    low[h + j] = high[2 * j];
                }
                h /= 2;
            }
        }
        Ok(Twiddles { t })
    }

    /// ω_{2h}^j for j < h.
    fn level(&self, h: usize) -> &[Fr] {
        &self.t[h..2 * h]
    }
}

/// Inverse butterflies of one level over groups of 2h: (a, b) → (a + b, (a − b)·ω_{2h}^{−j}).
fn dif_level<const ADX: bool, const IFMA: bool>(v: &mut [Fr], h: usize, tw: &[Fr]) {
    for group in v.chunks_exact_mut(2 * h) {
        let (lo, hi) = group.split_at_mut(h);
        dif_span::<ADX, IFMA>(lo, hi, 0, h, tw);
    }
}

/// The butterflies j0..j0+lo.len() of one inverse group (`tw` the whole level): eight at a
/// time in IFMA lanes when `IFMA` (set only where the CPU has it).
#[inline]
fn dif_span<const ADX: bool, const IFMA: bool>(
    lo: &mut [Fr],
    hi: &mut [Fr],
    j0: usize,
    h: usize,
    tw: &[Fr],
) {
    if IFMA && lo.len().is_multiple_of(8) && lo.len() >= 16 {
        // j = 0 has no entry in the level's table (its factor is 1): the first eight run on
        // the scalar path.
        let skip = if j0 == 0 { 8 } else { 0 };
        let (lo_head, lo_rest) = lo.split_at_mut(skip);
        let (hi_head, hi_rest) = hi.split_at_mut(skip);
        dif_scalar::<ADX>(lo_head, hi_head, j0, h, tw);
        // SAFETY: IFMA is set only where `ifma::available()`; both halves have the same length,
        // a multiple of 8, and j0 + skip ≥ 1 with j0 + len ≤ h = tw.len().
        unsafe { ifma::dif_span8(lo_rest, hi_rest, j0 + skip, tw) };
        return;
    }
    dif_scalar::<ADX>(lo, hi, j0, h, tw);
}

#[inline]
fn dif_scalar<const ADX: bool>(lo: &mut [Fr], hi: &mut [Fr], j0: usize, h: usize, tw: &[Fr]) {
    for (k, (a, b)) in lo.iter_mut().zip(hi.iter_mut()).enumerate() {
        let j = j0 + k;
        let (x, y) = (*a, *b);
        *a = fr_add(&x, &y);
        // ω_{2h}^{−j} = −ω_{2h}^{h−j}, so (x − y)·ω^{−j} = (y − x)·ω_{2h}^{h−j}.
        *b = if j == 0 {
            fr_sub(&x, &y)
        } else {
            fr_mul::<ADX>(&fr_sub(&y, &x), &tw[h - j])
        };
    }
}

/// Forward butterflies of one level over groups of 2h: (a, b) → (a + ω_{2h}^j·b, a − ω_{2h}^j·b).
fn dit_level<const ADX: bool, const IFMA: bool>(v: &mut [Fr], h: usize, tw: &[Fr]) {
    for group in v.chunks_exact_mut(2 * h) {
        let (lo, hi) = group.split_at_mut(h);
        dit_span::<ADX, IFMA>(lo, hi, 0, tw);
    }
}

#[inline]
fn dit_span<const ADX: bool, const IFMA: bool>(lo: &mut [Fr], hi: &mut [Fr], j0: usize, tw: &[Fr]) {
    if IFMA && lo.len().is_multiple_of(8) && lo.len() >= 8 {
        // SAFETY: IFMA is set only where `ifma::available()`; both halves have the same length,
        // a multiple of 8, and j0 + len ≤ tw.len() (tw\[0\] = 1 covers j = 0).
        unsafe { ifma::dit_span8(lo, hi, j0, tw) };
        return;
    }
    for (k, (a, b)) in lo.iter_mut().zip(hi.iter_mut()).enumerate() {
        let j = j0 + k;
        let x = *a;
        let y = if j == 0 { *b } else { fr_mul::<ADX>(b, &tw[j]) };
        *a = fr_add(&x, &y);
        *b = fr_sub(&x, &y);
    }
}

/// One level whose groups are larger than a block, split into parallel spans.
fn wide_level<const ADX: bool, const IFMA: bool>(v: &mut [Fr], h: usize, tw: &[Fr], inverse: bool) {
    for group in v.chunks_exact_mut(2 * h) {
        let (lo, hi) = group.split_at_mut(h);
        lo.par_chunks_mut(SPAN_TASK)
            .zip(hi.par_chunks_mut(SPAN_TASK))
            .enumerate()
            .for_each(|(k, (l, r))| {
                if inverse {
                    dif_span::<ADX, IFMA>(l, r, k * SPAN_TASK, h, tw);
                } else {
                    dit_span::<ADX, IFMA>(l, r, k * SPAN_TASK, tw);
                }
            });
    }
}

/// The reversal of the low `bits` bits of `i`.
fn bit_reverse(i: usize, bits: u32) -> usize {
    if bits == 0 {
        0
    } else {
        i.reverse_bits() >> (usize::BITS - bits)
    }
}

fn check_size(n: usize) -> Result<u32, ProveError> {
    if !n.is_power_of_two() || n.trailing_zeros() > 28 {
        return Err(ProveError::BadNttSize(n));
    }
    Ok(n.trailing_zeros())
}

/// What runs on each block between the two transforms' wide levels.
enum Middle<'a> {
    /// Finish the inverse, then multiply position k (coefficient rev(k)) by its factor.
    InverseThenScale { outer: &'a [Fr], inner: &'a [Fr] },
    /// Only the inverse.
    Inverse,
    /// Multiply position k by its factor, then start the forward transform.
    ScaleThenForward { outer: &'a [Fr], inner: &'a [Fr] },
}

/// Evaluations on H (natural order) → n·coefficients, in bit-reversed order, with `middle` run
/// on each cache block right after its last inverse level; then, when `forward`, the forward
/// transform back to natural order.
fn transform<const ADX: bool, const IFMA: bool>(
    v: &mut [Fr],
    tw: &Twiddles,
    inverse: bool,
    middle: &Middle<'_>,
    forward: bool,
) {
    let n = v.len();
    if n < 2 {
        if let Middle::InverseThenScale { outer, inner }
        | Middle::ScaleThenForward { outer, inner } = middle
        {
            for x in v.iter_mut() {
                *x *= outer[0] * inner[0];
            }
        }
        return;
    }
    let block = BLOCK.min(n);
    if inverse {
        let mut h = n / 2;
        while 2 * h > block {
            wide_level::<ADX, IFMA>(v, h, tw.level(h), true);
            h /= 2;
        }
    }
    v.par_chunks_mut(block).enumerate().for_each(|(q, blk)| {
        if inverse {
            let mut h = block / 2;
            while h >= 1 {
                dif_level::<ADX, IFMA>(blk, h, tw.level(h));
                h /= 2;
            }
        }
        match middle {
            Middle::InverseThenScale { outer, inner }
            | Middle::ScaleThenForward { outer, inner } => {
                // Position q·B + i holds coefficient rev(i)·(n/B) + rev(q): its factor is
                // inner[rev(i)]·outer[q], with `inner` already indexed by position.
                let o = outer[q];
                if IFMA && blk.len().is_multiple_of(8) {
                    // SAFETY: IFMA is set only where `ifma::available()`; `inner` has one factor
                    // per element of the block, a multiple of 8.
                    unsafe { ifma::scale8(blk, &inner[..blk.len()], &o) };
                } else {
                    for (x, f) in blk.iter_mut().zip(inner.iter()) {
                        *x = fr_mul::<ADX>(x, &fr_mul::<ADX>(f, &o));
                    }
                }
            }
            Middle::Inverse => {}
        }
        if forward {
            let mut h = 1;
            while h < block {
                dit_level::<ADX, IFMA>(blk, h, tw.level(h));
                h *= 2;
            }
        }
    });
    if forward {
        let mut h = block;
        while h < n {
            wide_level::<ADX, IFMA>(v, h, tw.level(h), false);
            h *= 2;
        }
    }
}

/// The scaling factors of position k = q·B + i in bit-reversed order, for coefficient index
/// rev(k) = rev_B(i)·(n/B) + rev_{n/B}(q): `inner[i] = s^(rev_B(i)·n/B)` and
/// `outer[q] = s^rev_{n/B}(q) · scale`, so that factor(k) = inner\[i\]·outer\[q\].
fn coset_factors(n: usize, s: Fr, scale: Fr) -> (Vec<Fr>, Vec<Fr>) {
    let block = BLOCK.min(n.max(1));
    let blocks = n.max(1) / block;
    let b_bits = block.trailing_zeros();
    let q_bits = blocks.trailing_zeros();
    let step = s.pow([blocks as u64]);
    let mut powers = Vec::with_capacity(block);
    let mut p = Fr::one();
    for _ in 0..block {
        powers.push(p);
        p *= step;
    }
    let inner = (0..block).map(|i| powers[bit_reverse(i, b_bits)]).collect();
    let mut qpow = Vec::with_capacity(blocks);
    let mut p = scale;
    for _ in 0..blocks {
        qpow.push(p);
        p *= s;
    }
    let outer = (0..blocks).map(|q| qpow[bit_reverse(q, q_bits)]).collect();
    (inner, outer)
}

/// Permutes `v` from bit-reversed to natural order (or back: the permutation is its own
/// inverse).
fn bit_reverse_permute(v: &mut [Fr]) {
    let bits = v.len().trailing_zeros();
    for i in 0..v.len() {
        let j = bit_reverse(i, bits);
        if i < j {
            v.swap(i, j);
        }
    }
}

fn n_inverse(n: usize) -> Fr {
    Fr::from(n as u64).inverse().unwrap_or_default()
}

/// [`transform`] on the arithmetic path the MSM uses too (`--prove-arith` or the CPU's best):
/// butterflies eight at a time in IFMA lanes, else the `mulx` assembly, else arkworks'.
fn transform_dispatch(
    v: &mut [Fr],
    tw: &Twiddles,
    inverse: bool,
    middle: &Middle<'_>,
    forward: bool,
) {
    let path = super::arith::current();
    if path.uses_ifma() && ifma::available() && adx_available() {
        transform::<true, true>(v, tw, inverse, middle, forward)
    } else if path.uses_adx() && adx_available() {
        transform::<true, false>(v, tw, inverse, middle, forward)
    } else {
        transform::<false, false>(v, tw, inverse, middle, forward)
    }
}

/// In place: evaluations on H (natural order) → coefficients (natural order).
pub fn intt(v: &mut [Fr]) -> Result<(), ProveError> {
    check_size(v.len())?;
    let tw = Twiddles::new(v.len())?;
    transform_dispatch(v, &tw, true, &Middle::Inverse, false);
    bit_reverse_permute(v);
    let inv = n_inverse(v.len());
    v.par_iter_mut().for_each(|x| *x *= inv);
    Ok(())
}

/// In place: coefficients (natural order) → evaluations at shift·ωⁱ (natural order).
pub fn coset_ntt(v: &mut [Fr], shift: Fr) -> Result<(), ProveError> {
    let n = v.len();
    check_size(n)?;
    let tw = Twiddles::new(n)?;
    bit_reverse_permute(v);
    let (inner, outer) = coset_factors(n, shift, Fr::one());
    transform_dispatch(
        v,
        &tw,
        false,
        &Middle::ScaleThenForward {
            outer: &outer,
            inner: &inner,
        },
        true,
    );
    Ok(())
}

/// The H MSM's scalars: each of a, b, c (evaluations on H) is interpolated and evaluated on
/// shift·H, then a·b − c is taken pointwise and returned in canonical form.
pub fn quotient(
    mut a: Vec<Fr>,
    mut b: Vec<Fr>,
    mut c: Vec<Fr>,
    shift: Fr,
) -> Result<Vec<ScalarRepr>, ProveError> {
    let n = a.len();
    check_size(n)?;
    if b.len() != n || c.len() != n {
        return Err(ProveError::BadNttSize(b.len().max(c.len())));
    }
    let tw = Twiddles::new(n)?;
    let (inner, outer) = coset_factors(n, shift, n_inverse(n));
    let middle = Middle::InverseThenScale {
        outer: &outer,
        inner: &inner,
    };
    let to_coset = |v: &mut Vec<Fr>| transform_dispatch(v, &tw, true, &middle, true);
    rayon::join(
        || to_coset(&mut a),
        || rayon::join(|| to_coset(&mut b), || to_coset(&mut c)),
    );
    // d = a·b − c, written over a so that no fourth vector exists at the peak.
    a.par_iter_mut()
        .zip(b.par_iter())
        .zip(c.par_iter())
        // The canonical value is parked in the Fr's limbs (not a valid Montgomery value any
        // more) so the conversion runs in parallel; the move below only unwraps it.
        .for_each(|((x, y), z)| *x = Fr::new_unchecked((*x * y - z).into_bigint()));
    drop((b, c));
    // Same size and alignment, so this reuses a's buffer.
    Ok(a.into_iter().map(|x| x.0).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ark_ff::UniformRand;
    use ark_poly::{EvaluationDomain, Radix2EvaluationDomain};

    fn random(n: usize, seed: u64) -> Vec<Fr> {
        use ark_std::rand::SeedableRng;
        let mut rng = ark_std::rand::rngs::StdRng::seed_from_u64(seed);
        (0..n).map(|_| Fr::rand(&mut rng)).collect()
    }

    /// Every arithmetic path (IFMA lanes, the `mulx` assembly, arkworks') gives the same inverse,
    /// coset and fused transforms, at sizes below, at and above a cache block (each path the
    /// CPU has; CI's machines have ADX, some IFMA).
    #[test]
    fn every_arithmetic_path_transforms_alike() {
        if !(adx_available() && ifma::available()) {
            eprintln!(
                "only the paths this CPU has are compared (ADX {}, IFMA {})",
                adx_available(),
                ifma::available()
            );
        }
        for log in [1, 3, 4, 5, 13, 14, 15] {
            let n = 1usize << log;
            let tw = Twiddles::new(n).unwrap();
            let shift = root_of_unity(2 * n).expect("root");
            let (inner, outer) = coset_factors(n, shift, n_inverse(n));
            let middle = Middle::InverseThenScale {
                outer: &outer,
                inner: &inner,
            };
            let scale_first = Middle::ScaleThenForward {
                outer: &outer,
                inner: &inner,
            };
            for (inverse, mid, forward) in [
                (true, &Middle::Inverse, false),
                (true, &middle, true),
                (false, &scale_first, true),
            ] {
                let mut portable = random(n, log as u64);
                let (mut asm, mut lanes) = (portable.clone(), portable.clone());
                transform::<false, false>(&mut portable, &tw, inverse, mid, forward);
                if adx_available() {
                    transform::<true, false>(&mut asm, &tw, inverse, mid, forward);
                    assert_eq!(asm, portable, "mulx, 2^{log}, forward {forward}");
                }
                if adx_available() && ifma::available() {
                    transform::<true, true>(&mut lanes, &tw, inverse, mid, forward);
                    assert_eq!(lanes, portable, "IFMA, 2^{log}, forward {forward}");
                }
            }
        }
    }

    /// Every size from 2^0 to 2^15 (past two cache blocks, so the wide levels run too), against
    /// arkworks' radix-2 domain on the same root of unity.
    #[test]
    fn transforms_match_arkworks() {
        for log in 0..=15u32 {
            let n = 1usize << log;
            let d = Radix2EvaluationDomain::<Fr>::new(n).expect("domain");
            assert_eq!(d.size(), n);
            assert_eq!(Some(d.group_gen()), root_of_unity(n), "2^{log}");
            let shift = root_of_unity(2 * n).expect("root");
            let v = random(n, log as u64);

            let mut ours = v.clone();
            intt(&mut ours).expect("intt");
            let mut theirs = v.clone();
            d.ifft_in_place(&mut theirs);
            assert_eq!(ours, theirs, "intt 2^{log}");

            let mut ours = v.clone();
            coset_ntt(&mut ours, shift).expect("coset");
            let mut theirs = v.clone();
            d.get_coset(shift).expect("coset").fft_in_place(&mut theirs);
            assert_eq!(ours, theirs, "coset ntt 2^{log}");

            // The fused quotient against the two arkworks transforms and the product.
            let (a, b, c) = (
                v.clone(),
                random(n, 100 + log as u64),
                random(n, 200 + log as u64),
            );
            let to_coset = |mut x: Vec<Fr>| {
                d.ifft_in_place(&mut x);
                d.get_coset(shift).expect("coset").fft_in_place(&mut x);
                x
            };
            let (ea, eb, ec) = (
                to_coset(a.clone()),
                to_coset(b.clone()),
                to_coset(c.clone()),
            );
            let want: Vec<ScalarRepr> = (0..n)
                .map(|i| (ea[i] * eb[i] - ec[i]).into_bigint())
                .collect();
            assert_eq!(
                quotient(a, b, c, shift).expect("quotient"),
                want,
                "quotient 2^{log}"
            );
        }
    }

    /// Coefficients that are all zero but one, through a shift other than the prover's: the
    /// result is a single scaled power sequence, which catches a factor on the wrong position.
    #[test]
    fn a_single_coefficient_gives_its_powers() {
        let n = 1 << 14;
        let shift = Fr::from(7u64);
        let omega = root_of_unity(n).expect("root");
        for k in [0usize, 1, 5, n / 2 + 3, n - 1] {
            let mut v = vec![Fr::from(0u64); n];
            v[k] = Fr::one();
            coset_ntt(&mut v, shift).expect("coset");
            for i in [0usize, 1, 2, 4097, n - 1] {
                let x = shift * omega.pow([i as u64]);
                assert_eq!(v[i], x.pow([k as u64]), "coefficient {k}, point {i}");
            }
        }
    }

    #[test]
    fn bad_sizes_are_refused() {
        let mut v = vec![Fr::one(); 12];
        assert!(matches!(intt(&mut v), Err(ProveError::BadNttSize(12))));
        assert!(matches!(
            coset_ntt(&mut v, Fr::one()),
            Err(ProveError::BadNttSize(12))
        ));
        let v8 = vec![Fr::one(); 8];
        assert!(quotient(v8.clone(), v8.clone(), vec![Fr::one(); 4], Fr::one()).is_err());
    }
}

//! Eight field operations at a time in AVX-512 IFMA: the batched affine additions of a bucket
//! batch over Fq for G1 and over Fq2 (Karatsuba on the Fq lanes) for G2, and the NTT's
//! butterflies and scaling over Fr ([`dif_span8`], [`dit_span8`], [`scale8`]). The lane
//! arithmetic is generic over the modulus (`Modulus52`), so both fields share it.
//!
//! On a CPU with AVX-512 IFMA (`vpmadd52luq`/`vpmadd52huq`) eight 254-bit Montgomery
//! multiplications in 52-bit limbs take 27 ns when independent ones follow each other (39 ns
//! of latency), against 14 ns for one `mulx` multiplication (measured here), because the
//! scalar multiplier is a single port while IFMA multiplies eight limb pairs per instruction.
//! The batch of [`super::msm`] maps onto eight lanes directly: lane `l` owns the entries
//! `8k + l`, so each lane keeps its own running products for the shared-inversion trick and the
//! lanes never depend on one another. Like the scalar batch, the lanes keep two product chains
//! (even and odd groups of eight) and walk them back two groups at a time, and G2 inverts its
//! denominators' norms in Fq rather than the Fq2 values. Only the eight lane products are
//! inverted together on the scalar side.
//!
//! Values stay in arkworks' Montgomery form (x·2^256 mod p) everywhere; only inside this module
//! they are split into five 52-bit limbs. A Montgomery product with R = 2^260 of (16·a, b) is
//! a·b·2^256, so multiplying one operand by 16 — a shift of its limbs — keeps arkworks' form
//! without any conversion multiplication: buckets and points are read and written in place,
//! and the result is bit-for-bit what the scalar path computes.

#[cfg(target_arch = "x86_64")]
// Limb loops walk several limb arrays in lockstep; indices read clearer than zipped iterators.
#[allow(clippy::needless_range_loop)]
mod imp {
    use std::arch::x86_64::*;

    use ark_bn254::{Fq, Fq2, Fr};
    use ark_ff::One;
    use ark_ff::fields::models::fp::MontConfig;

    use crate::prove::field::BatchField;

    /// A prime below 2^254 in 52-bit limbs, with −m⁻¹ mod 2^52: what the lane arithmetic
    /// reduces by.
    pub(super) trait Modulus52 {
        const LIMBS: [u64; 5];
        const INV: u64;
    }

    /// Four 64-bit limbs as five 52-bit ones.
    const fn limbs52(m: [u64; 4]) -> [u64; 5] {
        [
            m[0] & MASK52,
            ((m[0] >> 52) | (m[1] << 12)) & MASK52,
            ((m[1] >> 40) | (m[2] << 24)) & MASK52,
            ((m[2] >> 28) | (m[3] << 36)) & MASK52,
            m[3] >> 16,
        ]
    }

    /// BN254's base field p (the MSM's coordinates).
    pub(super) struct BaseField;
    impl Modulus52 for BaseField {
        const LIMBS: [u64; 5] = limbs52(<ark_bn254::FqConfig as MontConfig<4>>::MODULUS.0);
        // −p⁻¹ mod 2^64 reduced mod 2^52 is −p⁻¹ mod 2^52.
        const INV: u64 = <ark_bn254::FqConfig as MontConfig<4>>::INV & MASK52;
    }

    /// BN254's scalar field r (the NTTs).
    pub(super) struct ScalarField;
    impl Modulus52 for ScalarField {
        const LIMBS: [u64; 5] = limbs52(<ark_bn254::FrConfig as MontConfig<4>>::MODULUS.0);
        const INV: u64 = <ark_bn254::FrConfig as MontConfig<4>>::INV & MASK52;
    }

    const MASK52: u64 = (1 << 52) - 1;

    /// Eight field elements, limb `j` of lane `l` in lane `l` of `self.0[j]`; every limb below
    /// 2^52 and the value below p.
    #[derive(Clone, Copy)]
    struct V([__m512i; 5]);

    #[inline]
    #[target_feature(enable = "avx512f")]
    fn splat(x: u64) -> __m512i {
        _mm512_set1_epi64(x as i64)
    }

    /// Four 64-bit limbs (one vector each) → five 52-bit limbs.
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn from64(x: [__m512i; 4]) -> V {
        let m = splat(MASK52);
        V([
            _mm512_and_si512(x[0], m),
            _mm512_and_si512(
                _mm512_or_si512(_mm512_srli_epi64(x[0], 52), _mm512_slli_epi64(x[1], 12)),
                m,
            ),
            _mm512_and_si512(
                _mm512_or_si512(_mm512_srli_epi64(x[1], 40), _mm512_slli_epi64(x[2], 24)),
                m,
            ),
            _mm512_and_si512(
                _mm512_or_si512(_mm512_srli_epi64(x[2], 28), _mm512_slli_epi64(x[3], 36)),
                m,
            ),
            _mm512_srli_epi64(x[3], 16),
        ])
    }

    /// Five 52-bit limbs → four 64-bit limbs.
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn to64(v: V) -> [__m512i; 4] {
        let l = v.0;
        [
            _mm512_or_si512(l[0], _mm512_slli_epi64(l[1], 52)),
            _mm512_or_si512(_mm512_srli_epi64(l[1], 12), _mm512_slli_epi64(l[2], 40)),
            _mm512_or_si512(_mm512_srli_epi64(l[2], 24), _mm512_slli_epi64(l[3], 28)),
            _mm512_or_si512(_mm512_srli_epi64(l[3], 36), _mm512_slli_epi64(l[4], 16)),
        ]
    }

    /// r − m where that is not negative, for normalised limbs of r < 2m.
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn reduce_once<M: Modulus52>(r: [__m512i; 5]) -> V {
        let m = splat(MASK52);
        let mut s = [_mm512_setzero_si512(); 5];
        let mut borrow = _mm512_setzero_si512();
        for j in 0..5 {
            let d = _mm512_sub_epi64(_mm512_sub_epi64(r[j], splat(M::LIMBS[j])), borrow);
            borrow = _mm512_srli_epi64(d, 63);
            s[j] = _mm512_and_si512(d, m);
        }
        // A borrow out of the top limb means r < p: keep r.
        let keep = _mm512_cmpneq_epi64_mask(borrow, _mm512_setzero_si512());
        for j in 0..5 {
            s[j] = _mm512_mask_blend_epi64(keep, s[j], r[j]);
        }
        V(s)
    }

    /// a·b in arkworks' Montgomery form (a·b·2^-256 of the stored values).
    #[inline]
    #[target_feature(enable = "avx512f,avx512ifma")]
    fn mul_mod<M: Modulus52>(a: V, b: V) -> V {
        let m = splat(MASK52);
        let z = _mm512_setzero_si512();
        let a = a.0;
        // 16·a < 16p < 2^258: five 52-bit limbs shifted by four bits.
        let a16 = [
            _mm512_and_si512(_mm512_slli_epi64(a[0], 4), m),
            _mm512_and_si512(
                _mm512_or_si512(_mm512_slli_epi64(a[1], 4), _mm512_srli_epi64(a[0], 48)),
                m,
            ),
            _mm512_and_si512(
                _mm512_or_si512(_mm512_slli_epi64(a[2], 4), _mm512_srli_epi64(a[1], 48)),
                m,
            ),
            _mm512_and_si512(
                _mm512_or_si512(_mm512_slli_epi64(a[3], 4), _mm512_srli_epi64(a[2], 48)),
                m,
            ),
            _mm512_or_si512(_mm512_slli_epi64(a[4], 4), _mm512_srli_epi64(a[3], 48)),
        ];
        let pinv = splat(M::INV);
        // Operand scanning over b's limbs. Each accumulator gets at most four 52-bit terms per
        // round and keeps them for at most five rounds: below 2^57, no 64-bit overflow. Round i
        // works on t[i..i + 6] and retires t[i]; indexing instead of shifting the window keeps
        // every accumulator in a register (shifting an array made LLVM copy it through the
        // stack, five spills and reloads per round).
        let mut t = [z; 11];
        for i in 0..5 {
            let bi = b.0[i];
            for j in 0..5 {
                t[i + j] = _mm512_madd52lo_epu64(t[i + j], a16[j], bi);
                t[i + j + 1] = _mm512_madd52hi_epu64(t[i + j + 1], a16[j], bi);
            }
            let q = _mm512_madd52lo_epu64(z, t[i], pinv);
            for j in 0..5 {
                let pj = splat(M::LIMBS[j]);
                t[i + j] = _mm512_madd52lo_epu64(t[i + j], pj, q);
                t[i + j + 1] = _mm512_madd52hi_epu64(t[i + j + 1], pj, q);
            }
            // t[i] ≡ 0 mod 2^52 now: carry its high part up and retire the limb.
            t[i + 1] = _mm512_add_epi64(t[i + 1], _mm512_srli_epi64(t[i], 52));
        }
        // (16a·b + q·p) / 2^260 < 2p: normalise the limbs, then subtract p once if needed.
        let mut r = [z; 5];
        let mut c = z;
        for j in 0..5 {
            let v = _mm512_add_epi64(t[5 + j], c);
            r[j] = _mm512_and_si512(v, m);
            c = _mm512_srli_epi64(v, 52);
        }
        reduce_once::<M>(r)
    }

    /// a·b mod p.
    #[inline]
    #[target_feature(enable = "avx512f,avx512ifma")]
    fn mul(a: V, b: V) -> V {
        mul_mod::<BaseField>(a, b)
    }

    /// a − b mod p.
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn sub(a: V, b: V) -> V {
        sub_mod::<BaseField>(a, b)
    }

    /// a − b mod m.
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn sub_mod<M: Modulus52>(a: V, b: V) -> V {
        let m = splat(MASK52);
        let mut r = [_mm512_setzero_si512(); 5];
        let mut c = _mm512_setzero_si512();
        for j in 0..5 {
            let d = _mm512_add_epi64(_mm512_sub_epi64(a.0[j], b.0[j]), c);
            r[j] = _mm512_and_si512(d, m);
            c = _mm512_srai_epi64(d, 52);
        }
        // Negative (a < b): add m back; the carry out of the top limb wraps away.
        let neg = _mm512_cmpneq_epi64_mask(c, _mm512_setzero_si512());
        let mut c = _mm512_setzero_si512();
        for j in 0..5 {
            let v = _mm512_add_epi64(
                _mm512_add_epi64(r[j], _mm512_maskz_mov_epi64(neg, splat(M::LIMBS[j]))),
                c,
            );
            r[j] = _mm512_and_si512(v, m);
            c = _mm512_srli_epi64(v, 52);
        }
        V(r)
    }

    /// Gathers four 64-bit limbs at `base + offsets + 8j` into a [`V`].
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn gather(base: *const u8, offsets: __m512i, k: __mmask8) -> V {
        let mut x = [_mm512_setzero_si512(); 4];
        for (j, xj) in x.iter_mut().enumerate() {
            let o = _mm512_add_epi64(offsets, splat(8 * j as u64));
            // SAFETY: the caller's offsets point at four limbs inside the array for every lane
            // in `k`; other lanes are not read.
            *xj = unsafe {
                _mm512_mask_i64gather_epi64::<1>(_mm512_setzero_si512(), k, o, base as *const i64)
            };
        }
        from64(x)
    }

    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn scatter(base: *mut u8, offsets: __m512i, k: __mmask8, v: V) {
        let x = to64(v);
        for (j, xj) in x.iter().enumerate() {
            let o = _mm512_add_epi64(offsets, splat(8 * j as u64));
            // SAFETY: as in `gather`; the lanes of one batch write distinct buckets.
            unsafe { _mm512_mask_i64scatter_epi64::<1>(base as *mut i64, k, o, *xj) };
        }
    }

    #[inline]
    #[target_feature(enable = "avx512f")]
    fn splat_v(f: &Fq) -> V {
        let l = (f.0).0;
        from64([splat(l[0]), splat(l[1]), splat(l[2]), splat(l[3])])
    }

    /// The eight lanes of `v` as arkworks elements.
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn lanes(v: V) -> [Fq; 8] {
        let x = to64(v);
        let mut limbs = [[0u64; 8]; 4];
        for j in 0..4 {
            // SAFETY: 8 u64 are 64 bytes, what an unaligned store writes.
            unsafe { _mm512_storeu_si512(limbs[j].as_mut_ptr() as *mut __m512i, x[j]) };
        }
        std::array::from_fn(|l| {
            Fq::new_unchecked(ark_ff::BigInt([
                limbs[0][l],
                limbs[1][l],
                limbs[2][l],
                limbs[3][l],
            ]))
        })
    }

    #[inline]
    #[target_feature(enable = "avx512f")]
    fn from_lanes(f: &[Fq; 8]) -> V {
        let mut x = [_mm512_setzero_si512(); 4];
        for (j, xj) in x.iter_mut().enumerate() {
            let col: [u64; 8] = std::array::from_fn(|l| (f[l].0).0[j]);
            // SAFETY: an unaligned load of 64 bytes from an array of 8 u64.
            *xj = unsafe { _mm512_loadu_si512(col.as_ptr() as *const __m512i) };
        }
        from64(x)
    }

    /// Byte offsets of group `k`'s buckets and points (entries 8k..8k+8), and its lane mask.
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn group(bucket_of: &[u32], k: usize, stride: u64) -> (__m512i, __m512i, __mmask8) {
        let live = (bucket_of.len() - 8 * k).min(8);
        let mask: __mmask8 = if live == 8 { 0xff } else { (1u8 << live) - 1 };
        let mut b = [0u64; 8];
        let mut p = [0u64; 8];
        for l in 0..live {
            b[l] = bucket_of[8 * k + l] as u64 * stride;
            p[l] = (8 * k + l) as u64 * stride;
        }
        // SAFETY: unaligned loads of 64 bytes from arrays of 8 u64.
        unsafe {
            (
                _mm512_loadu_si512(b.as_ptr() as *const __m512i),
                _mm512_loadu_si512(p.as_ptr() as *const __m512i),
                mask,
            )
        }
    }

    /// a + b mod p.
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn add(a: V, b: V) -> V {
        add_mod::<BaseField>(a, b)
    }

    /// a + b mod m.
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn add_mod<M: Modulus52>(a: V, b: V) -> V {
        let m = splat(MASK52);
        let mut r = [_mm512_setzero_si512(); 5];
        let mut c = _mm512_setzero_si512();
        for j in 0..5 {
            let v = _mm512_add_epi64(_mm512_add_epi64(a.0[j], b.0[j]), c);
            r[j] = _mm512_and_si512(v, m);
            c = _mm512_srli_epi64(v, 52);
        }
        reduce_once::<M>(r)
    }

    /// Eight Fq2 elements (c0 + c1·u, u² = −1).
    #[derive(Clone, Copy)]
    struct V2 {
        c0: V,
        c1: V,
    }

    /// Karatsuba: three multiplications.
    #[inline]
    #[target_feature(enable = "avx512f,avx512ifma")]
    fn mul2(a: V2, b: V2) -> V2 {
        let v0 = mul(a.c0, b.c0);
        let v1 = mul(a.c1, b.c1);
        let s = mul(add(a.c0, a.c1), add(b.c0, b.c1));
        V2 {
            c0: sub(v0, v1),
            c1: sub(sub(s, v0), v1),
        }
    }

    /// (a + bu)² = (a + b)(a − b) + 2ab·u: two multiplications.
    #[inline]
    #[target_feature(enable = "avx512f,avx512ifma")]
    fn square2(a: V2) -> V2 {
        let ab = mul(a.c0, a.c1);
        V2 {
            c0: mul(add(a.c0, a.c1), sub(a.c0, a.c1)),
            c1: add(ab, ab),
        }
    }

    /// N(a) = a0² + a1², in Fq (see `BatchField::Norm`).
    #[inline]
    #[target_feature(enable = "avx512f,avx512ifma")]
    fn norm2(a: V2) -> V {
        add(mul(a.c0, a.c0), mul(a.c1, a.c1))
    }

    /// 1/a = conj(a)/N(a), given 1/N(a).
    #[inline]
    #[target_feature(enable = "avx512f,avx512ifma")]
    fn inverse2(a: V2, inv_norm: V) -> V2 {
        let z = V([_mm512_setzero_si512(); 5]);
        V2 {
            c0: mul(a.c0, inv_norm),
            c1: sub(z, mul(a.c1, inv_norm)),
        }
    }

    /// Fq is its own norm field.
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn norm1(a: V) -> V {
        a
    }

    #[inline]
    #[target_feature(enable = "avx512f")]
    fn inverse1(_a: V, inv_norm: V) -> V {
        inv_norm
    }

    #[inline]
    #[target_feature(enable = "avx512f,avx512ifma")]
    fn square1(a: V) -> V {
        mul(a, a)
    }

    #[inline]
    #[target_feature(enable = "avx512f")]
    fn sub2(a: V2, b: V2) -> V2 {
        V2 {
            c0: sub(a.c0, b.c0),
            c1: sub(a.c1, b.c1),
        }
    }

    /// The byte offset of `field` inside `elem`. The gathers and scatters read and write every
    /// element at this offset, so it must lie inside the element: a coordinate accessor that
    /// points elsewhere panics here instead of reading out of bounds.
    fn field_offset<T, F>(elem: &T, field: &F) -> usize {
        let offset = (field as *const F as usize).checked_sub(elem as *const T as usize);
        match offset {
            Some(o) if o + std::mem::size_of::<F>() <= std::mem::size_of::<T>() => o,
            _ => panic!("a coordinate accessor must return a field of the element it is given"),
        }
    }

    /// Byte offsets of an element's Fq parts inside it (c0, c1 for Fq2; one part for Fq).
    type Parts = [usize; 2];

    fn parts1(_: &Fq) -> Parts {
        [0, 0]
    }

    fn parts2(x: &Fq2) -> Parts {
        [field_offset(x, &x.c0), field_offset(x, &x.c1)]
    }

    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn gather1(base: *const u8, offsets: __m512i, k: __mmask8, _parts: Parts) -> V {
        // SAFETY: forwarded from the caller.
        unsafe { gather(base, offsets, k) }
    }

    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn scatter1(base: *mut u8, offsets: __m512i, k: __mmask8, _parts: Parts, v: V) {
        // SAFETY: forwarded from the caller.
        unsafe { scatter(base, offsets, k, v) }
    }

    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn gather2(base: *const u8, offsets: __m512i, k: __mmask8, parts: Parts) -> V2 {
        // SAFETY: forwarded from the caller; the parts lie inside the element.
        unsafe {
            V2 {
                c0: gather(base, _mm512_add_epi64(offsets, splat(parts[0] as u64)), k),
                c1: gather(base, _mm512_add_epi64(offsets, splat(parts[1] as u64)), k),
            }
        }
    }

    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn scatter2(base: *mut u8, offsets: __m512i, k: __mmask8, parts: Parts, v: V2) {
        // SAFETY: forwarded from the caller; the parts lie inside the element.
        unsafe {
            scatter(
                base,
                _mm512_add_epi64(offsets, splat(parts[0] as u64)),
                k,
                v.c0,
            );
            scatter(
                base,
                _mm512_add_epi64(offsets, splat(parts[1] as u64)),
                k,
                v.c1,
            );
        }
    }

    #[inline]
    #[target_feature(enable = "avx512f")]
    fn blend(k: __mmask8, a: V, b: V) -> V {
        let mut r = a;
        for j in 0..5 {
            r.0[j] = _mm512_mask_blend_epi64(k, a.0[j], b.0[j]);
        }
        r
    }

    /// Scratch space kept between batches.
    #[derive(Default)]
    pub struct Scratch {
        /// Per group of eight: the chain's product before it, and its denominators' norms.
        prefix: Vec<V>,
        norm: Vec<V>,
    }

    /// The batch loop, once per field: G1 over [`V`], G2 over [`V2`]. Both invert their
    /// denominators' norms in Fq (`BatchField::Norm`), so the shared inversion is the same code.
    macro_rules! add_batch_fn {
        ($name:ident, $field:ty, $parts:expr, $mul:ident, $square:ident, $sub:ident,
         $norm:ident, $inverse:ident, $gather:ident, $scatter:ident) => {
            /// bucket\[b_j\] += point_j for every j, the lanes' inversions shared.
            ///
            /// # Safety
            /// The CPU must have AVX-512F and AVX-512 IFMA. `x_of`/`y_of` return references
            /// into the element they are given; every `b_j` indexes `buckets`, the `b_j` are
            /// distinct, and no point's x equals its bucket's x.
            #[target_feature(enable = "avx512f,avx512ifma")]
            pub unsafe fn $name<T>(
                buckets: &mut [T],
                bucket_of: &[u32],
                points: &[T],
                x_of: impl Fn(&T) -> &$field,
                y_of: impl Fn(&T) -> &$field,
                scratch: &mut Scratch,
            ) {
                let n = bucket_of.len();
                debug_assert_eq!(points.len(), n);
                if n == 0 || buckets.is_empty() {
                    return;
                }
                let b0 = &buckets[0];
                let xo = splat(field_offset(b0, x_of(b0)) as u64);
                let yo = splat(field_offset(b0, y_of(b0)) as u64);
                let parts: Parts = $parts(x_of(b0));
                let stride = std::mem::size_of::<T>() as u64;
                let bucket_base = buckets.as_mut_ptr() as *mut u8;
                let point_base = points.as_ptr() as *const u8;
                let groups = n.div_ceil(8);
                let one = splat_v(&Fq::one());
                scratch.prefix.clear();
                scratch.norm.clear();
                // Two product chains, over the even and the odd groups: one lane
                // multiplication's latency is well above its share of the multiplier's
                // throughput (measured: 39 against 27 ns), so one chain would leave it idle.
                let mut acc = [one, one];
                for k in 0..groups {
                    let (b_off, p_off, mask) = group(bucket_of, k, stride);
                    // SAFETY: offsets of live lanes address buckets[b_j] and points[8k + l].
                    let (qx, px) = unsafe {
                        (
                            $gather(bucket_base, _mm512_add_epi64(b_off, xo), mask, parts),
                            $gather(point_base, _mm512_add_epi64(p_off, xo), mask, parts),
                        )
                    };
                    // Idle lanes multiply by one.
                    let norm = blend(mask, one, $norm($sub(px, qx)));
                    let c = k & 1;
                    scratch.prefix.push(acc[c]);
                    scratch.norm.push(norm);
                    acc[c] = mul(acc[c], norm);
                }
                // One inversion for the eight lane products of both chains (none is zero: no
                // point has its bucket's x, and a non-zero element has a non-zero norm).
                let prods = lanes(mul(acc[0], acc[1]));
                let mut run = [Fq::one(); 8];
                let mut all = Fq::one();
                for l in 0..8 {
                    run[l] = all;
                    all *= prods[l];
                }
                let mut inv_all = all.inverse_fast().unwrap_or_default();
                let mut invs = [Fq::one(); 8];
                for l in (0..8).rev() {
                    invs[l] = inv_all * run[l];
                    inv_all *= prods[l];
                }
                let inv = from_lanes(&invs);
                // 1/chain for each chain, walked back down separately.
                let mut inv = [mul(inv, acc[1]), mul(inv, acc[0])];
                // Two groups at a time (one of each chain), their steps interleaved.
                let mut k = groups;
                while k > 0 {
                    let pair = k >= 2;
                    let (k1, k0) = (k - 1, if pair { k - 2 } else { k - 1 });
                    let (b1, p1, m1) = group(bucket_of, k1, stride);
                    let (b0, p0, m0) = group(bucket_of, k0, stride);
                    let (c1, c0) = (k1 & 1, k0 & 1);
                    let inv_norm1 = mul(inv[c1], scratch.prefix[k1]);
                    inv[c1] = mul(inv[c1], scratch.norm[k1]);
                    let inv_norm0 = if pair {
                        let v = mul(inv[c0], scratch.prefix[k0]);
                        inv[c0] = mul(inv[c0], scratch.norm[k0]);
                        v
                    } else {
                        inv_norm1
                    };
                    // SAFETY: as above.
                    let (qx1, qy1, px1, py1, qx0, qy0, px0, py0) = unsafe {
                        (
                            $gather(bucket_base, _mm512_add_epi64(b1, xo), m1, parts),
                            $gather(bucket_base, _mm512_add_epi64(b1, yo), m1, parts),
                            $gather(point_base, _mm512_add_epi64(p1, xo), m1, parts),
                            $gather(point_base, _mm512_add_epi64(p1, yo), m1, parts),
                            $gather(bucket_base, _mm512_add_epi64(b0, xo), m0, parts),
                            $gather(bucket_base, _mm512_add_epi64(b0, yo), m0, parts),
                            $gather(point_base, _mm512_add_epi64(p0, xo), m0, parts),
                            $gather(point_base, _mm512_add_epi64(p0, yo), m0, parts),
                        )
                    };
                    let inv1 = $inverse($sub(px1, qx1), inv_norm1);
                    let inv0 = $inverse($sub(px0, qx0), inv_norm0);
                    let l1 = $mul($sub(py1, qy1), inv1);
                    let l0 = $mul($sub(py0, qy0), inv0);
                    let x1 = $sub($sub($square(l1), qx1), px1);
                    let x0 = $sub($sub($square(l0), qx0), px0);
                    let y1 = $sub($mul(l1, $sub(qx1, x1)), qy1);
                    let y0 = $sub($mul(l0, $sub(qx0, x0)), qy0);
                    // SAFETY: live lanes write their own (distinct) buckets; without a pair
                    // both halves computed the same group, written once.
                    unsafe {
                        $scatter(bucket_base, _mm512_add_epi64(b1, xo), m1, parts, x1);
                        $scatter(bucket_base, _mm512_add_epi64(b1, yo), m1, parts, y1);
                        if pair {
                            $scatter(bucket_base, _mm512_add_epi64(b0, xo), m0, parts, x0);
                            $scatter(bucket_base, _mm512_add_epi64(b0, yo), m0, parts, y0);
                        }
                    }
                    k = if pair { k - 2 } else { k - 1 };
                }
            }
        };
    }

    add_batch_fn!(
        add_batch_g1,
        Fq,
        parts1,
        mul,
        square1,
        sub,
        norm1,
        inverse1,
        gather1,
        scatter1
    );
    add_batch_fn!(
        add_batch_g2,
        Fq2,
        parts2,
        mul2,
        square2,
        sub2,
        norm2,
        inverse2,
        gather2,
        scatter2
    );

    /// x·β for every point's x, eight at a time: the endomorphism's images φ(P) = (β·x, y) of
    /// a block of bases, where one `mulx` multiplication per point took a tenth of an
    /// addition's time.
    macro_rules! beta_images_fn {
        ($name:ident, $field:ty, $lane:ty, $parts:expr, $gather:ident, $scatter:ident,
         $scale:expr) => {
            /// out\[i\] = x_of(points\[i\])·β.
            ///
            /// # Safety
            /// The CPU must have AVX-512F and AVX-512 IFMA; `x_of` returns a reference into the
            /// element it is given.
            #[target_feature(enable = "avx512f,avx512ifma")]
            pub unsafe fn $name<T>(
                points: &[T],
                x_of: impl Fn(&T) -> &$field,
                beta: &Fq,
                out: &mut Vec<$field>,
            ) {
                let n = points.len();
                out.clear();
                out.resize(n, <$field>::default());
                let Some(p0) = points.first() else { return };
                let xo = field_offset(p0, x_of(p0));
                let parts: Parts = $parts(x_of(p0));
                let stride = std::mem::size_of::<T>() as u64;
                let size = std::mem::size_of::<$field>() as u64;
                let bv = splat_v(beta);
                let point_base = points.as_ptr() as *const u8;
                let out_base = out.as_mut_ptr() as *mut u8;
                for k in 0..n.div_ceil(8) {
                    let live = (n - 8 * k).min(8);
                    let mask: __mmask8 = if live == 8 { 0xff } else { (1u8 << live) - 1 };
                    let lane = |step: u64, first: u64| {
                        let v: [u64; 8] =
                            std::array::from_fn(|l| first + (8 * k + l) as u64 * step);
                        // SAFETY: an unaligned load of 64 bytes from an array of 8 u64.
                        unsafe { _mm512_loadu_si512(v.as_ptr() as *const __m512i) }
                    };
                    // SAFETY: live lanes address points[8k + l] and out[8k + l], both in bounds.
                    unsafe {
                        let x: $lane = $gather(point_base, lane(stride, xo as u64), mask, parts);
                        $scatter(out_base, lane(size, 0), mask, parts, $scale(x, bv));
                    }
                }
            }
        };
    }

    beta_images_fn!(
        beta_images_g1,
        Fq,
        V,
        parts1,
        gather1,
        scatter1,
        |x: V, b: V| mul(x, b)
    );
    beta_images_fn!(
        beta_images_g2,
        Fq2,
        V2,
        parts2,
        gather2,
        scatter2,
        |x: V2, b: V| V2 {
            c0: mul(x.c0, b),
            c1: mul(x.c1, b),
        }
    );

    /// Eight consecutive scalar-field elements at `p` (arkworks' layout: four 64-bit limbs
    /// each) as lanes: an 8×4 transpose in eight two-source permutes.
    ///
    /// # Safety
    /// `p` must point at 32 readable u64.
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn load8(p: *const u64) -> [__m512i; 4] {
        // SAFETY: the caller's 32 u64, read as four unaligned 64-byte vectors.
        let r: [__m512i; 4] =
            std::array::from_fn(|k| unsafe { _mm512_loadu_si512(p.add(8 * k) as *const __m512i) });
        let idx = |v: [i64; 8]| _mm512_set_epi64(v[7], v[6], v[5], v[4], v[3], v[2], v[1], v[0]);
        let (ia, ib) = (
            idx([0, 4, 8, 12, 1, 5, 9, 13]),
            idx([2, 6, 10, 14, 3, 7, 11, 15]),
        );
        let t0 = _mm512_permutex2var_epi64(r[0], ia, r[1]);
        let t1 = _mm512_permutex2var_epi64(r[0], ib, r[1]);
        let t2 = _mm512_permutex2var_epi64(r[2], ia, r[3]);
        let t3 = _mm512_permutex2var_epi64(r[2], ib, r[3]);
        let (lo, hi) = (
            idx([0, 1, 2, 3, 8, 9, 10, 11]),
            idx([4, 5, 6, 7, 12, 13, 14, 15]),
        );
        [
            _mm512_permutex2var_epi64(t0, lo, t2),
            _mm512_permutex2var_epi64(t0, hi, t2),
            _mm512_permutex2var_epi64(t1, lo, t3),
            _mm512_permutex2var_epi64(t1, hi, t3),
        ]
    }

    /// The inverse of [`load8`]: lanes back to eight elements at `p`.
    ///
    /// # Safety
    /// `p` must point at 32 writable u64.
    #[inline]
    #[target_feature(enable = "avx512f")]
    unsafe fn store8(p: *mut u64, l: [__m512i; 4]) {
        let idx = |v: [i64; 8]| _mm512_set_epi64(v[7], v[6], v[5], v[4], v[3], v[2], v[1], v[0]);
        let (za, zb) = (
            idx([0, 8, 1, 9, 2, 10, 3, 11]),
            idx([4, 12, 5, 13, 6, 14, 7, 15]),
        );
        let u0 = _mm512_permutex2var_epi64(l[0], za, l[1]);
        let u1 = _mm512_permutex2var_epi64(l[2], za, l[3]);
        let u2 = _mm512_permutex2var_epi64(l[0], zb, l[1]);
        let u3 = _mm512_permutex2var_epi64(l[2], zb, l[3]);
        let (lo, hi) = (
            idx([0, 1, 8, 9, 2, 3, 10, 11]),
            idx([4, 5, 12, 13, 6, 7, 14, 15]),
        );
        let r = [
            _mm512_permutex2var_epi64(u0, lo, u1),
            _mm512_permutex2var_epi64(u0, hi, u1),
            _mm512_permutex2var_epi64(u2, lo, u3),
            _mm512_permutex2var_epi64(u2, hi, u3),
        ];
        for (k, v) in r.iter().enumerate() {
            // SAFETY: the caller's 32 u64, written as four unaligned 64-byte vectors.
            unsafe { _mm512_storeu_si512(p.add(8 * k) as *mut __m512i, *v) };
        }
    }

    // The NTT kernels read a slice of Fr as its limbs: four u64 each, nothing else.
    const _: () = assert!(
        std::mem::size_of::<Fr>() == 32 && std::mem::align_of::<Fr>() == 8,
        "Fr is not four packed u64"
    );

    fn limbs_ptr(x: &[Fr]) -> *const u64 {
        x.as_ptr() as *const u64
    }

    fn limbs_mut(x: &mut [Fr]) -> *mut u64 {
        x.as_mut_ptr() as *mut u64
    }

    /// The inverse (decimation-in-frequency) butterflies of `ntt`'s `dif_span`, eight at a
    /// time: (a, b) → (a + b, (b − a)·tw\[h − j\]) for j = j0 + k.
    ///
    /// # Safety
    /// The CPU must have AVX-512F and AVX-512 IFMA; `lo` and `hi` have the same length, a
    /// multiple of 8; j0 ≥ 1 and j0 + len ≤ h = `tw.len()`, so every twiddle index is inside
    /// `tw`.
    #[target_feature(enable = "avx512f,avx512ifma")]
    pub unsafe fn dif_span8(lo: &mut [Fr], hi: &mut [Fr], j0: usize, tw: &[Fr]) {
        let h = tw.len();
        // The bounds the loads below rely on, checked: a wrong call panics, it cannot read or
        // write outside the slices.
        assert!(lo.len() == hi.len() && lo.len().is_multiple_of(8));
        assert!(j0 >= 1 && j0 + lo.len() <= h);
        let rev = _mm512_set_epi64(0, 1, 2, 3, 4, 5, 6, 7);
        for k in (0..lo.len()).step_by(8) {
            let j = j0 + k;
            // SAFETY: k + 8 ≤ len for both halves; tw[h − j − 7 ..= h − j] lies in tw because
            // 1 ≤ j and j + 7 < h.
            unsafe {
                let a = from64(load8(limbs_ptr(&lo[k..])));
                let b = from64(load8(limbs_ptr(&hi[k..])));
                let w = load8(limbs_ptr(&tw[h - j - 7..]));
                let w = from64(w.map(|x| _mm512_permutexvar_epi64(rev, x)));
                let s = add_mod::<ScalarField>(a, b);
                let d = mul_mod::<ScalarField>(sub_mod::<ScalarField>(b, a), w);
                store8(limbs_mut(&mut lo[k..]), to64(s));
                store8(limbs_mut(&mut hi[k..]), to64(d));
            }
        }
    }

    /// The forward (decimation-in-time) butterflies of `ntt`'s `dit_span`, eight at a time:
    /// (a, b) → (a + tw\[j\]·b, a − tw\[j\]·b) for j = j0 + k.
    ///
    /// # Safety
    /// The CPU must have AVX-512F and AVX-512 IFMA; `lo` and `hi` have the same length, a
    /// multiple of 8, and j0 + len ≤ `tw.len()`.
    #[target_feature(enable = "avx512f,avx512ifma")]
    pub unsafe fn dit_span8(lo: &mut [Fr], hi: &mut [Fr], j0: usize, tw: &[Fr]) {
        assert!(lo.len() == hi.len() && lo.len().is_multiple_of(8));
        assert!(j0 + lo.len() <= tw.len());
        for k in (0..lo.len()).step_by(8) {
            // SAFETY: k + 8 ≤ len for both halves and j0 + k + 8 ≤ tw.len().
            unsafe {
                let a = from64(load8(limbs_ptr(&lo[k..])));
                let b = from64(load8(limbs_ptr(&hi[k..])));
                let w = from64(load8(limbs_ptr(&tw[j0 + k..])));
                let y = mul_mod::<ScalarField>(b, w);
                store8(limbs_mut(&mut lo[k..]), to64(add_mod::<ScalarField>(a, y)));
                store8(limbs_mut(&mut hi[k..]), to64(sub_mod::<ScalarField>(a, y)));
            }
        }
    }

    /// x\[i\] ·= f\[i\]·o for every i (the NTT's scaling between the transforms), eight at a
    /// time.
    ///
    /// # Safety
    /// The CPU must have AVX-512F and AVX-512 IFMA; `x` and `f` have the same length, a
    /// multiple of 8.
    #[target_feature(enable = "avx512f,avx512ifma")]
    pub unsafe fn scale8(x: &mut [Fr], f: &[Fr], o: &Fr) {
        assert!(x.len() == f.len() && x.len().is_multiple_of(8));
        let l = (o.0).0;
        let ov = from64([splat(l[0]), splat(l[1]), splat(l[2]), splat(l[3])]);
        for k in (0..x.len()).step_by(8) {
            // SAFETY: k + 8 ≤ len for both.
            unsafe {
                let a = from64(load8(limbs_ptr(&x[k..])));
                let b = from64(load8(limbs_ptr(&f[k..])));
                let r = mul_mod::<ScalarField>(a, mul_mod::<ScalarField>(b, ov));
                store8(limbs_mut(&mut x[k..]), to64(r));
            }
        }
    }

    /// True when this CPU has AVX-512F and AVX-512 IFMA.
    pub fn available() -> bool {
        static IFMA: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        *IFMA.get_or_init(|| {
            std::arch::is_x86_feature_detected!("avx512f")
                && std::arch::is_x86_feature_detected!("avx512ifma")
        })
    }

    #[cfg(test)]
    mod tests {
        #[target_feature(enable = "avx512f")]
        fn lanes2(v: V2) -> [Fq2; 8] {
            let (a, b) = (lanes(v.c0), lanes(v.c1));
            std::array::from_fn(|l| Fq2::new(a[l], b[l]))
        }

        #[target_feature(enable = "avx512f")]
        fn from_lanes2(f: &[Fq2; 8]) -> V2 {
            V2 {
                c0: from_lanes(&std::array::from_fn(|l| f[l].c0)),
                c1: from_lanes(&std::array::from_fn(|l| f[l].c1)),
            }
        }
        use super::*;
        use ark_ff::{Field, UniformRand};

        /// The endomorphism's images of a block, tails of every length included, against one
        /// multiplication at a time; G2's x is an Fq2 scaled by β in Fq.
        #[test]
        fn beta_images_match_scalar_multiplication() {
            if !available() {
                eprintln!("skipping: this CPU has no AVX-512 IFMA");
                return;
            }
            let mut rng = ark_std::test_rng();
            let beta = Fq::rand(&mut rng);
            for n in 0..27 {
                let g1: Vec<(Fq, Fq)> = (0..n)
                    .map(|_| (Fq::rand(&mut rng), Fq::rand(&mut rng)))
                    .collect();
                let g2: Vec<(Fq2, Fq2)> = (0..n)
                    .map(|_| (Fq2::rand(&mut rng), Fq2::rand(&mut rng)))
                    .collect();
                let (mut out1, mut out2) = (vec![Fq::one(); 3], Vec::new());
                // SAFETY: IFMA checked above; the closures return references into their element.
                unsafe {
                    beta_images_g1(&g1, |p| &p.0, &beta, &mut out1);
                    beta_images_g2(&g2, |p| &p.1, &beta, &mut out2);
                }
                assert_eq!(
                    out1,
                    g1.iter().map(|p| p.0 * beta).collect::<Vec<_>>(),
                    "G1, {n} points"
                );
                let want2: Vec<Fq2> = g2
                    .iter()
                    .map(|p| Fq2::new(p.1.c0 * beta, p.1.c1 * beta))
                    .collect();
                assert_eq!(out2, want2, "G2, {n} points");
            }
        }

        /// An accessor that points outside the element is refused before any lane reads.
        #[test]
        fn an_accessor_outside_the_element_is_refused() {
            if !available() {
                eprintln!("skipping: this CPU has no AVX-512 IFMA");
                return;
            }
            static ELSEWHERE: Fq = Fq::new(ark_ff::BigInt([3, 0, 0, 0]));
            let points = vec![(Fq::one(), Fq::one()); 9];
            let refused = std::panic::catch_unwind(|| {
                let mut out = Vec::new();
                // SAFETY: IFMA checked above; the accessor is refused before any lane reads.
                unsafe { beta_images_g1(&points, |_| &ELSEWHERE, &Fq::one(), &mut out) };
            });
            assert!(
                refused.is_err(),
                "an accessor outside the element was accepted"
            );
            // The same accessor on the element's own coordinate is accepted.
            let mut out = Vec::new();
            // SAFETY: IFMA checked above; `.0` lies inside the element.
            unsafe { beta_images_g1(&points, |p| &p.0, &Fq::one(), &mut out) };
            assert_eq!(out, vec![Fq::one(); 9]);
        }

        /// The NTT kernels' lane arithmetic over the scalar field r, edges included, through
        /// the same transposing loads and stores the kernels use.
        #[test]
        fn scalar_field_lanes_match_arkworks() {
            if !available() {
                eprintln!("skipping: this CPU has no AVX-512 IFMA");
                return;
            }
            let mut rng = ark_std::test_rng();
            let edge = crate::prove::field::tests::fr_edge_values();
            for round in 0..300 {
                let pick = |k: usize, rng: &mut _| -> [Fr; 8] {
                    std::array::from_fn(|l| {
                        if round < 25 {
                            edge[(k * round + l) % edge.len()]
                        } else {
                            Fr::rand(rng)
                        }
                    })
                };
                let a = pick(1, &mut rng);
                let b = pick(3, &mut rng);
                let mut out = [[Fr::from(0u64); 8]; 3];
                // SAFETY: IFMA checked above; each array holds eight elements (32 u64).
                unsafe {
                    let va = from64(load8(limbs_ptr(&a)));
                    let vb = from64(load8(limbs_ptr(&b)));
                    store8(limbs_mut(&mut out[0]), to64(mul_mod::<ScalarField>(va, vb)));
                    store8(limbs_mut(&mut out[1]), to64(add_mod::<ScalarField>(va, vb)));
                    store8(limbs_mut(&mut out[2]), to64(sub_mod::<ScalarField>(va, vb)));
                }
                for l in 0..8 {
                    assert_eq!(out[0][l].0, (a[l] * b[l]).0, "{} · {}", a[l], b[l]);
                    assert_eq!(out[1][l].0, (a[l] + b[l]).0, "{} + {}", a[l], b[l]);
                    assert_eq!(out[2][l].0, (a[l] - b[l]).0, "{} − {}", a[l], b[l]);
                }
            }
        }

        #[test]
        fn lane_arithmetic_matches_arkworks() {
            if !available() {
                eprintln!("skipping: this CPU has no AVX-512 IFMA");
                return;
            }
            let mut rng = ark_std::test_rng();
            let edge = [
                Fq::from(0u64),
                Fq::from(1u64),
                -Fq::from(1u64),
                -Fq::from(2u64),
                Fq::new_unchecked(ark_ff::BigInt([
                    0x3c208c16d87cfd46,
                    0x97816a916871ca8d,
                    0xb85045b68181585d,
                    0x30644e72e131a029,
                ])),
            ];
            for round in 0..300 {
                let a: [Fq; 8] = std::array::from_fn(|l| {
                    if round < 5 {
                        edge[(round + l) % 5]
                    } else {
                        Fq::rand(&mut rng)
                    }
                });
                let b: [Fq; 8] = std::array::from_fn(|l| {
                    if round < 5 {
                        edge[(2 * round + l) % 5]
                    } else {
                        Fq::rand(&mut rng)
                    }
                });
                // SAFETY: IFMA checked above.
                let (m, s) = unsafe {
                    let (va, vb) = (from_lanes(&a), from_lanes(&b));
                    (lanes(mul(va, vb)), lanes(sub(va, vb)))
                };
                // SAFETY: IFMA checked above.
                unsafe {
                    let x: [Fq2; 8] = std::array::from_fn(|l| Fq2::new(a[l], b[7 - l]));
                    let y: [Fq2; 8] = std::array::from_fn(|l| Fq2::new(b[l], a[(l + 3) % 8]));
                    let (vx, vy) = (from_lanes2(&x), from_lanes2(&y));
                    let (m2, s2) = (lanes2(mul2(vx, vy)), lanes2(sub2(vx, vy)));
                    let q2 = lanes2(square2(vx));
                    let n2 = lanes(norm2(vx));
                    let i2 = lanes2(inverse2(
                        vx,
                        from_lanes(&n2.map(|n| n.inverse().unwrap_or_default())),
                    ));
                    for l in 0..8 {
                        assert_eq!(m2[l], x[l] * y[l]);
                        assert_eq!(s2[l], x[l] - y[l]);
                        assert_eq!(q2[l], x[l].square());
                        assert_eq!(n2[l], x[l].c0.square() + x[l].c1.square());
                        assert_eq!(i2[l], x[l].inverse().unwrap_or_default());
                    }
                }
                for l in 0..8 {
                    assert_eq!(m[l], a[l] * b[l], "{} * {}", a[l], b[l]);
                    assert_eq!(m[l].0, (a[l] * b[l]).0, "canonical limbs");
                    assert_eq!(s[l], a[l] - b[l], "{} - {}", a[l], b[l]);
                    assert_eq!(s[l].0, (a[l] - b[l]).0, "canonical limbs");
                }
            }
        }
    }
}

#[cfg(target_arch = "x86_64")]
pub use imp::{
    Scratch, add_batch_g1, add_batch_g2, available, beta_images_g1, beta_images_g2, dif_span8,
    dit_span8, scale8,
};

/// No IFMA off x86-64.
#[cfg(not(target_arch = "x86_64"))]
pub fn available() -> bool {
    false
}

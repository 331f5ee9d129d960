//! BN254 field arithmetic for the MSM's inner loop (base field) and the NTTs (scalar field:
//! [`fr_mul`]), on arkworks' own representation.
//!
//! The MSM spends nearly all its time in the batched affine additions: about six Fq
//! multiplications per point and window in G1, and Fq2 ones in G2. arkworks' multiplication is
//! generic Rust (its `asm` path is compiled in only when the *whole build* targets BMI2+ADX,
//! which a portable binary cannot), and on this code path the compiler did not inline it. Here
//! the same Montgomery form (arkworks' limbs, so values pass between the two without
//! conversion) gets:
//!
//! - a 4-limb Montgomery multiplication in x86-64 assembly using `mulx` with two independent
//!   carry chains (`adcx` on CF, `adox` on OF), chosen at run time when the CPU has BMI2 and ADX
//!   ([`adx_available`]), arkworks' generic code otherwise; one routine for both fields, the
//!   modulus passed in (both moduli leave the top limb's high bit free, which it relies on);
//! - Fq2 multiplication by Karatsuba with lazy reduction (three 512-bit products, two
//!   Montgomery reductions instead of three; u² = −1 in BN254's Fq2), in plain Rust on every
//!   path (see [`fq2_mul_lazy`] for why), squaring by the complex-squaring identity over the
//!   `mulx` multiplication;
//! - branch-free addition and subtraction (arkworks' branch on a comparison that random field
//!   elements lose half the time), also the NTT butterflies' ([`fr_add`], [`fr_sub`]);
//! - everything `#[inline(always)]`, so the batch loop has no calls in it.
//!
//! The choice is a const generic (`ADX`): the MSM picks it once per call, and each instance of
//! the loop is compiled with one kind of arithmetic only.

use ark_bn254::{Fq, Fq2};
use ark_ff::fields::models::fp::{Fp256, MontBackend, MontConfig};
use ark_ff::{Field, Zero};

/// True when this CPU can run the `mulx`/`adcx`/`adox` multiplication.
pub fn adx_available() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        static ADX: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        *ADX.get_or_init(|| {
            std::arch::is_x86_feature_detected!("bmi2")
                && std::arch::is_x86_feature_detected!("adx")
        })
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// The field operations the batched affine addition needs, in two implementations selected by
/// `ADX` (true only after [`adx_available`] said so).
pub trait BatchField: Field {
    fn mul_with<const ADX: bool>(&self, other: &Self) -> Self;
    fn square_with<const ADX: bool>(&self) -> Self;
    /// self − other without a data-dependent branch (same value as `-`).
    fn sub_fast(&self, other: &Self) -> Self;
    /// self + other without a data-dependent branch (same value as `+`).
    fn add_fast(&self, other: &Self) -> Self;

    /// The field a batch's shared inversion runs in. A batch inverts every denominator d
    /// through one inversion and three multiplications per element; on G2 those would be Fq2
    /// multiplications, but 1/d = d̄ / N(d) with the norm N(d) = d·d̄ in Fq, so the batch
    /// inverts norms instead: two Fq squarings and five Fq multiplications per element in
    /// place of three Fq2 multiplications. Fq is its own norm field (N(d) = d).
    type Norm: BatchField;
    /// N(self), non-zero for non-zero self.
    fn norm_with<const ADX: bool>(&self) -> Self::Norm;
    /// 1/self, given 1/N(self).
    fn inverse_with_norm<const ADX: bool>(&self, inv_norm: &Self::Norm) -> Self;

    /// self⁻¹ (None for zero): the inversion each batch of affine additions shares.
    fn inverse_fast(&self) -> Option<Self> {
        self.inverse()
    }

    /// self·β for the endomorphism's β, which lies in the base field Fq even on G2.
    fn mul_by_beta<const ADX: bool>(&self, beta: &Self) -> Self {
        self.mul_with::<ADX>(beta)
    }

    /// out\[i\] = x_of(points\[i\])·β with SIMD when this field has such a path on this CPU
    /// and β lies in Fq; returns whether it did (false: `out` untouched, multiply one by one).
    /// `x_of` locates the coordinate inside `T` (the SIMD path panics otherwise).
    fn beta_images_simd<T>(
        _points: &[T],
        _x_of: impl Fn(&T) -> &Self,
        _beta: &Self,
        _out: &mut Vec<Self>,
    ) -> bool {
        false
    }

    /// Runs a whole batch of affine additions bucket\[b_j\] += point_j with SIMD when this
    /// field has such a path on this CPU, and returns whether it did (false: nothing was
    /// touched, run the scalar loop). `x_of`/`y_of` locate the coordinates inside `T`. The
    /// caller guarantees the batch invariants: distinct buckets, no point with its bucket's x.
    fn add_batch_simd<T>(
        _buckets: &mut [T],
        _bucket_of: &[u32],
        _points: &[T],
        _x_of: impl Fn(&T) -> &Self,
        _y_of: impl Fn(&T) -> &Self,
        _scratch: &mut SimdScratch,
    ) -> bool {
        false
    }
}

/// Scratch space of the SIMD batch path, kept by each bucket accumulator.
#[cfg(target_arch = "x86_64")]
pub type SimdScratch = super::ifma::Scratch;
/// Scratch space of the SIMD batch path (none off x86-64).
#[cfg(not(target_arch = "x86_64"))]
#[derive(Default)]
pub struct SimdScratch;

/// A modulus, then −modulus⁻¹ mod 2^64: the assembly reads both through one pointer.
type ModulusConsts = [u64; 5];

/// A modulus and its Montgomery constant, as arkworks defines them (nothing typed twice).
const fn modulus_consts<C: MontConfig<4>>() -> ModulusConsts {
    let m = C::MODULUS.0;
    [m[0], m[1], m[2], m[3], C::INV]
}

/// BN254's base field: p (G1 and G2 coordinates, the MSM).
static FQ_CONSTS: ModulusConsts = modulus_consts::<ark_bn254::FqConfig>();

/// BN254's scalar field: r (the NTTs).
static FR_CONSTS: ModulusConsts = modulus_consts::<ark_bn254::FrConfig>();

/// a·b·2^-256 mod m for a, b < m (Montgomery form), result < m; m is `consts`' modulus, whose
/// top limb must be below 2^63 − 1 (both of BN254's fields qualify).
///
/// # Safety
/// The CPU must support BMI2 and ADX.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn mont_mul_adx(a: &[u64; 4], b: &[u64; 4], consts: &ModulusConsts) -> [u64; 4] {
    let (r0, r1, r2, r4): (u64, u64, u64, u64);
    // CIOS with the "no carry" shortcut (p's top limb is below 2^63 - 1): after each of the
    // four rounds the running value t < 2p fits four limbs plus one, so no sixth word exists.
    // Round i multiplies a by b[i] into t (low halves on the CF chain, high halves on the OF
    // chain), then adds m·p with m = t0·(−p⁻¹) so the low word cancels, and drops it. The five
    // t registers rotate by one per round; the result ends in (r4, r0, r1, r2).
    unsafe {
        std::arch::asm!(
            // round 0: t = a·b0 in (r0..r4)
            "mov rdx, qword ptr [{b}]",
            "xor eax, eax",
            "mulx {r1}, {r0}, qword ptr [{a}]",
            "mulx {r2}, {lo}, qword ptr [{a} + 8]",
            "adcx {r1}, {lo}",
            "mulx {r3}, {lo}, qword ptr [{a} + 16]",
            "adcx {r2}, {lo}",
            "mulx {r4}, {lo}, qword ptr [{a} + 24]",
            "adcx {r3}, {lo}",
            "adcx {r4}, rax",
            // reduce: t0 = r0
            "mov rdx, {r0}",
            "imul rdx, qword ptr [{p} + 32]",
            "xor eax, eax",
            "mulx {hi}, {lo}, qword ptr [{p}]",
            "adcx {lo}, {r0}",
            "adox {r1}, {hi}",
            "mulx {hi}, {lo}, qword ptr [{p} + 8]",
            "adcx {r1}, {lo}",
            "adox {r2}, {hi}",
            "mulx {hi}, {lo}, qword ptr [{p} + 16]",
            "adcx {r2}, {lo}",
            "adox {r3}, {hi}",
            "mulx {hi}, {lo}, qword ptr [{p} + 24]",
            "adcx {r3}, {lo}",
            "adox {r4}, {hi}",
            "adcx {r4}, rax",
            // round 1: t = (r1, r2, r3, r4, r0 = new top)
            "mov rdx, qword ptr [{b} + 8]",
            "xor eax, eax",
            "mulx {hi}, {lo}, qword ptr [{a}]",
            "adcx {r1}, {lo}",
            "adox {r2}, {hi}",
            "mulx {hi}, {lo}, qword ptr [{a} + 8]",
            "adcx {r2}, {lo}",
            "adox {r3}, {hi}",
            "mulx {hi}, {lo}, qword ptr [{a} + 16]",
            "adcx {r3}, {lo}",
            "adox {r4}, {hi}",
            "mulx {r0}, {lo}, qword ptr [{a} + 24]",
            "adcx {r4}, {lo}",
            "adox {r0}, rax",
            "adcx {r0}, rax",
            "mov rdx, {r1}",
            "imul rdx, qword ptr [{p} + 32]",
            "xor eax, eax",
            "mulx {hi}, {lo}, qword ptr [{p}]",
            "adcx {lo}, {r1}",
            "adox {r2}, {hi}",
            "mulx {hi}, {lo}, qword ptr [{p} + 8]",
            "adcx {r2}, {lo}",
            "adox {r3}, {hi}",
            "mulx {hi}, {lo}, qword ptr [{p} + 16]",
            "adcx {r3}, {lo}",
            "adox {r4}, {hi}",
            "mulx {hi}, {lo}, qword ptr [{p} + 24]",
            "adcx {r4}, {lo}",
            "adox {r0}, {hi}",
            "adcx {r0}, rax",
            // round 2: t = (r2, r3, r4, r0, r1 = new top)
            "mov rdx, qword ptr [{b} + 16]",
            "xor eax, eax",
            "mulx {hi}, {lo}, qword ptr [{a}]",
            "adcx {r2}, {lo}",
            "adox {r3}, {hi}",
            "mulx {hi}, {lo}, qword ptr [{a} + 8]",
            "adcx {r3}, {lo}",
            "adox {r4}, {hi}",
            "mulx {hi}, {lo}, qword ptr [{a} + 16]",
            "adcx {r4}, {lo}",
            "adox {r0}, {hi}",
            "mulx {r1}, {lo}, qword ptr [{a} + 24]",
            "adcx {r0}, {lo}",
            "adox {r1}, rax",
            "adcx {r1}, rax",
            "mov rdx, {r2}",
            "imul rdx, qword ptr [{p} + 32]",
            "xor eax, eax",
            "mulx {hi}, {lo}, qword ptr [{p}]",
            "adcx {lo}, {r2}",
            "adox {r3}, {hi}",
            "mulx {hi}, {lo}, qword ptr [{p} + 8]",
            "adcx {r3}, {lo}",
            "adox {r4}, {hi}",
            "mulx {hi}, {lo}, qword ptr [{p} + 16]",
            "adcx {r4}, {lo}",
            "adox {r0}, {hi}",
            "mulx {hi}, {lo}, qword ptr [{p} + 24]",
            "adcx {r0}, {lo}",
            "adox {r1}, {hi}",
            "adcx {r1}, rax",
            // round 3: t = (r3, r4, r0, r1, r2 = new top)
            "mov rdx, qword ptr [{b} + 24]",
            "xor eax, eax",
            "mulx {hi}, {lo}, qword ptr [{a}]",
            "adcx {r3}, {lo}",
            "adox {r4}, {hi}",
            "mulx {hi}, {lo}, qword ptr [{a} + 8]",
            "adcx {r4}, {lo}",
            "adox {r0}, {hi}",
            "mulx {hi}, {lo}, qword ptr [{a} + 16]",
            "adcx {r0}, {lo}",
            "adox {r1}, {hi}",
            "mulx {r2}, {lo}, qword ptr [{a} + 24]",
            "adcx {r1}, {lo}",
            "adox {r2}, rax",
            "adcx {r2}, rax",
            "mov rdx, {r3}",
            "imul rdx, qword ptr [{p} + 32]",
            "xor eax, eax",
            "mulx {hi}, {lo}, qword ptr [{p}]",
            "adcx {lo}, {r3}",
            "adox {r4}, {hi}",
            "mulx {hi}, {lo}, qword ptr [{p} + 8]",
            "adcx {r4}, {lo}",
            "adox {r0}, {hi}",
            "mulx {hi}, {lo}, qword ptr [{p} + 16]",
            "adcx {r0}, {lo}",
            "adox {r1}, {hi}",
            "mulx {hi}, {lo}, qword ptr [{p} + 24]",
            "adcx {r1}, {lo}",
            "adox {r2}, {hi}",
            "adcx {r2}, rax",
            a = in(reg) a.as_ptr(),
            b = in(reg) b.as_ptr(),
            p = in(reg) consts.as_ptr(),
            r0 = out(reg) r0,
            r1 = out(reg) r1,
            r2 = out(reg) r2,
            r3 = out(reg) _,
            r4 = out(reg) r4,
            lo = out(reg) _,
            hi = out(reg) _,
            out("rax") _,
            out("rdx") _,
            options(pure, readonly, nostack),
        );
    }
    reduce_once([r4, r0, r1, r2], consts)
}

/// BN254's base-field modulus p.
const P: [u64; 4] = <ark_bn254::FqConfig as MontConfig<4>>::MODULUS.0;

/// t − m if t ≥ m, for t < 2m (m: the first four limbs of `m`).
#[inline(always)]
fn reduce_once(t: [u64; 4], m: &[u64]) -> [u64; 4] {
    let (s0, b0) = sub_borrow(t[0], m[0], false);
    let (s1, b1) = sub_borrow(t[1], m[1], b0);
    let (s2, b2) = sub_borrow(t[2], m[2], b1);
    let (s3, b3) = sub_borrow(t[3], m[3], b2);
    if b3 { t } else { [s0, s1, s2, s3] }
}

/// a − b mod m for a, b < m, without a branch. arkworks' subtraction (and its addition) branch
/// on a comparison of the two values, which on random field elements goes either way as often:
/// an affine addition has seven of them next to its six multiplications. Branch-free (together
/// with the two chains of `msm::buckets`' batch) the G1 MSMs took 6–10 % less time; the NTT's
/// butterflies on the `mulx` path 5 % less.
#[inline(always)]
fn sub_mod(a: &[u64; 4], b: &[u64; 4], m: &[u64]) -> [u64; 4] {
    let (d0, b0) = sub_borrow(a[0], b[0], false);
    let (d1, b1) = sub_borrow(a[1], b[1], b0);
    let (d2, b2) = sub_borrow(a[2], b[2], b1);
    let (d3, b3) = sub_borrow(a[3], b[3], b2);
    let mask = (b3 as u64).wrapping_neg();
    add_limbs(
        &[d0, d1, d2, d3],
        &[m[0] & mask, m[1] & mask, m[2] & mask, m[3] & mask],
    )
}

/// a + b mod m for a, b < m (m < 2^255, so the sum does not wrap), without a branch.
#[inline(always)]
fn add_mod(a: &[u64; 4], b: &[u64; 4], m: &[u64]) -> [u64; 4] {
    reduce_once(add_limbs(a, b), m)
}

/// a + b over N limbs (callers keep the sum below 2^(64·N)).
#[inline(always)]
fn add_limbs<const N: usize>(a: &[u64; N], b: &[u64; N]) -> [u64; N] {
    let mut out = [0u64; N];
    let mut carry = false;
    for i in 0..N {
        (out[i], carry) = add_carry(a[i], b[i], carry);
    }
    out
}

/// a − b over N limbs, wrapping modulo 2^(64·N) (the field code keeps a ≥ b; the GLV
/// decomposition uses the wrap).
#[inline(always)]
pub(crate) fn sub_limbs<const N: usize>(a: &[u64; N], b: &[u64; N]) -> [u64; N] {
    let mut out = [0u64; N];
    let mut borrow = false;
    for i in 0..N {
        (out[i], borrow) = sub_borrow(a[i], b[i], borrow);
    }
    out
}

#[inline(always)]
fn sub_borrow(a: u64, b: u64, borrow: bool) -> (u64, bool) {
    #[cfg(target_arch = "x86_64")]
    {
        // The intrinsic is one `sbb`; the portable form below compiles to two subtractions,
        // `setb`s and an `or` per limb.
        let mut out = 0u64;
        #[allow(unused_unsafe)]
        // SAFETY: `sbb` is baseline x86-64; the intrinsic has no other precondition.
        let c = unsafe { std::arch::x86_64::_subborrow_u64(borrow as u8, a, b, &mut out) };
        (out, c != 0)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let (d, o1) = a.overflowing_sub(b);
        let (d, o2) = d.overflowing_sub(borrow as u64);
        (d, o1 | o2)
    }
}

/// a + b + carry, and the carry out (one `adc` on x86-64, see [`sub_borrow`]).
#[inline(always)]
fn add_carry(a: u64, b: u64, carry: bool) -> (u64, bool) {
    #[cfg(target_arch = "x86_64")]
    {
        let mut out = 0u64;
        #[allow(unused_unsafe)]
        // SAFETY: `adc` is baseline x86-64; the intrinsic has no other precondition.
        let c = unsafe { std::arch::x86_64::_addcarry_u64(carry as u8, a, b, &mut out) };
        (out, c != 0)
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let (s, o1) = a.overflowing_add(b);
        let (s, o2) = s.overflowing_add(carry as u64);
        (s, o1 | o2)
    }
}

/// a·b as eight limbs, no reduction.
#[inline(always)]
const fn mul_wide(a: &[u64; 4], b: &[u64; 4]) -> [u64; 8] {
    let mut t = [0u64; 8];
    let mut i = 0;
    while i < 4 {
        let mut carry = 0u64;
        let mut j = 0;
        while j < 4 {
            let s = (a[j] as u128) * (b[i] as u128) + t[i + j] as u128 + carry as u128;
            t[i + j] = s as u64;
            carry = (s >> 64) as u64;
            j += 1;
        }
        t[i + 4] = carry;
        i += 1;
    }
    t
}

/// p², the multiple of p that keeps a difference of two products non-negative.
const P_SQUARED: [u64; 8] = mul_wide(&P, &P);

/// −p⁻¹ mod 2^64.
const P_INV: u64 = <ark_bn254::FqConfig as MontConfig<4>>::INV;

/// Montgomery reduction t·2^-256 mod p of t < p·2^256, result < p.
#[inline(always)]
fn redc(mut t: [u64; 8]) -> [u64; 4] {
    // Each round adds m·p so that limb i cancels; the carry out of limb i + 4 waits in `top`
    // and enters limb i + 5 with the next round.
    let mut top = 0u64;
    for i in 0..4 {
        let m = t[i].wrapping_mul(P_INV);
        let mut carry = 0u64;
        for j in 0..4 {
            let s = (m as u128) * (P[j] as u128) + t[i + j] as u128 + carry as u128;
            t[i + j] = s as u64;
            carry = (s >> 64) as u64;
        }
        let s = t[i + 4] as u128 + carry as u128 + top as u128;
        t[i + 4] = s as u64;
        top = (s >> 64) as u64;
    }
    // t < p·2^256 leaves (t + m·p)/2^256 < 2p < 2^255: `top` is zero here.
    reduce_once([t[4], t[5], t[6], t[7]], &P)
}

/// Karatsuba in Fq2 with one Montgomery reduction per output coefficient instead of one per
/// product: three wide products, two reductions (u² = −1). Plain 128-bit Rust on purpose:
/// measured in the G2 MSM on the `mulx` path, Karatsuba over three `mulx` multiplications was
/// 15 % slower, and this same scheme with its products and reductions in `mulx` assembly 12 %
/// slower (three opaque blocks; here the compiler interleaves the independent products).
#[inline(always)]
fn fq2_mul_lazy(a: &Fq2, b: &Fq2) -> Fq2 {
    let (a0, a1, b0, b1) = (&(a.c0.0).0, &(a.c1.0).0, &(b.c0.0).0, &(b.c1.0).0);
    let v0 = mul_wide(a0, b0);
    let v1 = mul_wide(a1, b1);
    // a0 + a1 < 2p < 2^255: no reduction needed before the product.
    let s = mul_wide(&add_limbs(a0, a1), &add_limbs(b0, b1));
    // c0 = v0 − v1 + p² ∈ [0, 2p²); c1 = s − v0 − v1 = a0·b1 + a1·b0 ∈ [0, 2p²); 2p² < p·2^256.
    let c0 = redc(sub_limbs(&add_limbs(&v0, &P_SQUARED), &v1));
    let c1 = redc(sub_limbs(&sub_limbs(&s, &v0), &v1));
    Fq2::new(
        Fq::new_unchecked(ark_ff::BigInt(c0)),
        Fq::new_unchecked(ark_ff::BigInt(c1)),
    )
}

/// a·b in the field of `C`, with the `mulx` assembly on `consts` (C's) when `ADX` (which
/// callers set only after [`adx_available`] said so), arkworks' multiplication otherwise.
#[inline(always)]
fn mont_mul<C: MontConfig<4>, const ADX: bool>(
    a: &Fp256<MontBackend<C, 4>>,
    b: &Fp256<MontBackend<C, 4>>,
    #[allow(unused_variables)] consts: &ModulusConsts,
) -> Fp256<MontBackend<C, 4>> {
    #[cfg(target_arch = "x86_64")]
    if ADX {
        // SAFETY: ADX is true only when `adx_available()` returned true.
        let r = unsafe { mont_mul_adx(&(a.0).0, &(b.0).0, consts) };
        return Fp256::new_unchecked(ark_ff::BigInt(r));
    }
    *a * b
}

#[inline(always)]
fn fq_mul<const ADX: bool>(a: &Fq, b: &Fq) -> Fq {
    mont_mul::<ark_bn254::FqConfig, ADX>(a, b, &FQ_CONSTS)
}

/// a·b in BN254's scalar field: the NTTs' multiplication (see [`mont_mul`]).
#[inline(always)]
pub fn fr_mul<const ADX: bool>(a: &ark_bn254::Fr, b: &ark_bn254::Fr) -> ark_bn254::Fr {
    mont_mul::<ark_bn254::FrConfig, ADX>(a, b, &FR_CONSTS)
}

/// a − b in the field of `C`, branch-free ([`sub_mod`]).
#[inline(always)]
fn mont_sub<C: MontConfig<4>>(
    a: &Fp256<MontBackend<C, 4>>,
    b: &Fp256<MontBackend<C, 4>>,
) -> Fp256<MontBackend<C, 4>> {
    Fp256::new_unchecked(ark_ff::BigInt(sub_mod(&(a.0).0, &(b.0).0, &C::MODULUS.0)))
}

/// a + b in the field of `C`, branch-free ([`add_mod`]).
#[inline(always)]
fn mont_add<C: MontConfig<4>>(
    a: &Fp256<MontBackend<C, 4>>,
    b: &Fp256<MontBackend<C, 4>>,
) -> Fp256<MontBackend<C, 4>> {
    Fp256::new_unchecked(ark_ff::BigInt(add_mod(&(a.0).0, &(b.0).0, &C::MODULUS.0)))
}

/// a − b in BN254's scalar field without a branch: the NTT butterflies' subtraction.
#[inline(always)]
pub fn fr_sub(a: &ark_bn254::Fr, b: &ark_bn254::Fr) -> ark_bn254::Fr {
    mont_sub::<ark_bn254::FrConfig>(a, b)
}

/// a + b in BN254's scalar field without a branch: the NTT butterflies' addition.
#[inline(always)]
pub fn fr_add(a: &ark_bn254::Fr, b: &ark_bn254::Fr) -> ark_bn254::Fr {
    mont_add::<ark_bn254::FrConfig>(a, b)
}

impl BatchField for Fq {
    type Norm = Fq;
    #[inline(always)]
    fn norm_with<const ADX: bool>(&self) -> Fq {
        *self
    }
    #[inline(always)]
    fn inverse_with_norm<const ADX: bool>(&self, inv_norm: &Fq) -> Fq {
        *inv_norm
    }
    #[inline(always)]
    fn sub_fast(&self, other: &Self) -> Self {
        mont_sub::<ark_bn254::FqConfig>(self, other)
    }
    #[inline(always)]
    fn add_fast(&self, other: &Self) -> Self {
        mont_add::<ark_bn254::FqConfig>(self, other)
    }

    fn inverse_fast(&self) -> Option<Self> {
        super::inverse::fq_inverse(self)
    }

    #[inline(always)]
    fn mul_with<const ADX: bool>(&self, other: &Self) -> Self {
        fq_mul::<ADX>(self, other)
    }
    #[inline(always)]
    fn square_with<const ADX: bool>(&self) -> Self {
        if ADX {
            fq_mul::<ADX>(self, self)
        } else {
            self.square()
        }
    }

    fn beta_images_simd<T>(
        points: &[T],
        x_of: impl Fn(&T) -> &Self,
        beta: &Self,
        out: &mut Vec<Self>,
    ) -> bool {
        #[cfg(target_arch = "x86_64")]
        if super::ifma::available() {
            // SAFETY: IFMA is present.
            unsafe { super::ifma::beta_images_g1(points, x_of, beta, out) };
            return true;
        }
        let _ = (points, x_of, beta, out);
        false
    }

    fn add_batch_simd<T>(
        buckets: &mut [T],
        bucket_of: &[u32],
        points: &[T],
        x_of: impl Fn(&T) -> &Self,
        y_of: impl Fn(&T) -> &Self,
        scratch: &mut SimdScratch,
    ) -> bool {
        #[cfg(target_arch = "x86_64")]
        if super::ifma::available() {
            // SAFETY: IFMA is present; the batch invariants are the caller's (see the trait).
            unsafe { super::ifma::add_batch_g1(buckets, bucket_of, points, x_of, y_of, scratch) };
            return true;
        }
        let _ = (buckets, bucket_of, points, x_of, y_of, scratch);
        false
    }
}

impl BatchField for Fq2 {
    type Norm = Fq;
    /// (a + bu)(a − bu) = a² + b² (u² = −1); zero only for zero, −1 being a non-square in Fq.
    #[inline(always)]
    fn norm_with<const ADX: bool>(&self) -> Fq {
        self.c0
            .square_with::<ADX>()
            .add_fast(&self.c1.square_with::<ADX>())
    }
    #[inline(always)]
    fn inverse_with_norm<const ADX: bool>(&self, inv_norm: &Fq) -> Fq2 {
        Fq2::new(
            self.c0.mul_with::<ADX>(inv_norm),
            Fq::zero().sub_fast(&self.c1.mul_with::<ADX>(inv_norm)),
        )
    }
    #[inline(always)]
    fn sub_fast(&self, other: &Self) -> Self {
        Fq2::new(self.c0.sub_fast(&other.c0), self.c1.sub_fast(&other.c1))
    }
    #[inline(always)]
    fn add_fast(&self, other: &Self) -> Self {
        Fq2::new(self.c0.add_fast(&other.c0), self.c1.add_fast(&other.c1))
    }

    fn inverse_fast(&self) -> Option<Self> {
        super::inverse::fq2_inverse(self)
    }

    #[inline(always)]
    fn mul_by_beta<const ADX: bool>(&self, beta: &Self) -> Self {
        if beta.c1.is_zero() {
            // Two multiplications instead of three and the Karatsuba additions.
            Fq2::new(
                fq_mul::<ADX>(&self.c0, &beta.c0),
                fq_mul::<ADX>(&self.c1, &beta.c0),
            )
        } else {
            self.mul_with::<ADX>(beta)
        }
    }

    /// The lazy Karatsuba on every path: it is plain Rust, and in the batch it beat both
    /// arkworks' product (portable G2 MSM −5 to −10 %) and the `mulx` alternatives (see
    /// [`fq2_mul_lazy`]).
    #[inline(always)]
    fn mul_with<const ADX: bool>(&self, other: &Self) -> Self {
        fq2_mul_lazy(self, other)
    }
    fn beta_images_simd<T>(
        points: &[T],
        x_of: impl Fn(&T) -> &Self,
        beta: &Self,
        out: &mut Vec<Self>,
    ) -> bool {
        #[cfg(target_arch = "x86_64")]
        if super::ifma::available() && beta.c1.is_zero() {
            // SAFETY: IFMA is present.
            unsafe { super::ifma::beta_images_g2(points, x_of, &beta.c0, out) };
            return true;
        }
        let _ = (points, x_of, beta, out);
        false
    }

    fn add_batch_simd<T>(
        buckets: &mut [T],
        bucket_of: &[u32],
        points: &[T],
        x_of: impl Fn(&T) -> &Self,
        y_of: impl Fn(&T) -> &Self,
        scratch: &mut SimdScratch,
    ) -> bool {
        #[cfg(target_arch = "x86_64")]
        if super::ifma::available() {
            // SAFETY: IFMA is present; the batch invariants are the caller's (see the trait).
            unsafe { super::ifma::add_batch_g2(buckets, bucket_of, points, x_of, y_of, scratch) };
            return true;
        }
        let _ = (buckets, bucket_of, points, x_of, y_of, scratch);
        false
    }

    #[inline(always)]
    fn square_with<const ADX: bool>(&self) -> Self {
        if !ADX {
            return self.square();
        }
        // (a + bu)² = (a + b)(a − b) + 2ab·u.
        let ab = fq_mul::<ADX>(&self.c0, &self.c1);
        let c0 = fq_mul::<ADX>(&self.c0.add_fast(&self.c1), &self.c0.sub_fast(&self.c1));
        Fq2::new(c0, ab.add_fast(&ab))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use ark_ff::{BigInt, BigInteger, Fp2Config, PrimeField, UniformRand, Zero};

    /// Fr's edges: 0, 1, 2, −1, −2, and stored limbs at the largest canonical value (the
    /// scalar-field kernels' and the branch-free operations' tests share them).
    pub(crate) fn fr_edge_values() -> Vec<ark_bn254::Fr> {
        use ark_bn254::Fr;
        let mut top = Fr::MODULUS;
        top.0[0] -= 1;
        vec![
            Fr::zero(),
            Fr::from(1u64),
            Fr::from(2u64),
            -Fr::from(1u64),
            -Fr::from(2u64),
            Fr::new_unchecked(top),
        ]
    }

    fn edge_values() -> Vec<Fq> {
        let p_minus = |k: u64| -Fq::from(k);
        vec![
            Fq::from(0u64),
            Fq::from(1u64),
            Fq::from(2u64),
            p_minus(1),
            p_minus(2),
            Fq::from_bigint(BigInt([
                u64::MAX,
                u64::MAX,
                u64::MAX,
                0x3064_4e72_e131_a028,
            ]))
            .unwrap_or_default(),
            Fq::new_unchecked(BigInt([
                0x3c208c16d87cfd46,
                0x97816a916871ca8d,
                0xb85045b68181585d,
                0x30644e72e131a029,
            ])),
        ]
    }

    #[test]
    fn branch_free_addition_and_subtraction_match_arkworks() {
        let mut rng = ark_std::test_rng();
        let mut values = edge_values();
        values.extend((0..40).map(|_| Fq::rand(&mut rng)));
        for a in &values {
            for b in &values {
                assert_eq!(a.sub_fast(b), *a - b, "{a} − {b}");
                assert_eq!(a.add_fast(b), *a + b, "{a} + {b}");
                let (x, y) = (Fq2::new(*a, *b), Fq2::new(*b, *a));
                assert_eq!(x.sub_fast(&y), x - y);
                assert_eq!(x.add_fast(&y), x + y);
            }
        }
        let mut scalars = fr_edge_values();
        scalars.extend((0..40).map(|_| ark_bn254::Fr::rand(&mut rng)));
        for a in &scalars {
            for b in &scalars {
                assert_eq!(fr_sub(a, b), *a - b, "{a} − {b}");
                assert_eq!(fr_add(a, b), *a + b, "{a} + {b}");
            }
        }
    }

    /// x's norm and 1/x through it, on one multiplication path.
    fn inverse_through_norm<F: BatchField, const ADX: bool>(x: &F) -> (F::Norm, F) {
        let norm = x.norm_with::<ADX>();
        (
            norm,
            x.inverse_with_norm::<ADX>(&norm.inverse().unwrap_or_default()),
        )
    }

    #[test]
    fn inverses_through_the_norm_match_arkworks() {
        let mut rng = ark_std::test_rng();
        let mut values = edge_values();
        values.extend((0..20).map(|_| Fq::rand(&mut rng)));
        for a in &values {
            if let Some(inv_a) = a.inverse() {
                assert_eq!(inverse_through_norm::<Fq, false>(a).1, inv_a);
            }
            for b in values.iter().take(12) {
                let x = Fq2::new(*a, *b);
                let Some(expect) = x.inverse() else { continue };
                let mut paths = vec![("portable", inverse_through_norm::<Fq2, false>(&x))];
                if adx_available() {
                    paths.push(("mulx", inverse_through_norm::<Fq2, true>(&x)));
                }
                for (path, (norm, inv)) in paths {
                    assert!(!norm.is_zero(), "norm of {x} ({path})");
                    assert_eq!(inv, expect, "1/({x}) ({path})");
                }
            }
        }
    }

    #[test]
    fn lazy_fq2_multiplication_matches_arkworks() {
        // Pure Rust, so it runs on every CPU; the edges (0, 1, p − 1, limbs at their maximum)
        // push the unreduced sums and products to their bounds.
        let mut rng = ark_std::test_rng();
        let mut values = edge_values();
        values.extend((0..40).map(|_| Fq::rand(&mut rng)));
        let pairs: Vec<Fq2> = values
            .iter()
            .flat_map(|a| values.iter().take(12).map(move |b| Fq2::new(*a, *b)))
            .collect();
        for a in &pairs {
            for b in pairs.iter().step_by(7) {
                assert_eq!(fq2_mul_lazy(a, b), *a * b, "{a} · {b}");
            }
        }
        assert_eq!(P_SQUARED, {
            let p = ark_ff::BigInt::<4>(P);
            let mut wide = [0u64; 8];
            let (lo, hi) = p.mul(&p);
            wide[..4].copy_from_slice(&lo.0);
            wide[4..].copy_from_slice(&hi.0);
            wide
        });
    }

    #[test]
    fn adx_multiplication_matches_arkworks() {
        if !adx_available() {
            eprintln!("skipping: this CPU has no BMI2/ADX, only the portable path runs");
            return;
        }
        let mut rng = ark_std::test_rng();
        let mut values = edge_values();
        values.extend((0..2000).map(|_| Fq::rand(&mut rng)));
        for a in &values {
            for b in values.iter().take(64) {
                assert_eq!(a.mul_with::<true>(b), *a * b, "{a} · {b}");
            }
            assert_eq!(a.square_with::<true>(), a.square());
        }
        for _ in 0..2000 {
            let a = Fq2::rand(&mut rng);
            let b = Fq2::rand(&mut rng);
            assert_eq!(a.mul_with::<true>(&b), a * b);
            assert_eq!(a.square_with::<true>(), a.square());
        }
    }

    /// The same assembly with the scalar field's modulus (the NTTs'), on Fr's edges and random
    /// values.
    #[test]
    fn adx_scalar_field_multiplication_matches_arkworks() {
        use ark_bn254::Fr;
        let mut rng = ark_std::test_rng();
        let mut values = fr_edge_values();
        values.extend((0..1500).map(|_| Fr::rand(&mut rng)));
        for a in &values {
            for b in values.iter().take(40) {
                assert_eq!(fr_mul::<false>(a, b), *a * b);
                if adx_available() {
                    assert_eq!(fr_mul::<true>(a, b), *a * b, "{a} · {b}");
                }
            }
        }
    }

    #[test]
    fn fq2_nonresidue_is_minus_one() {
        assert_eq!(ark_bn254::Fq2Config::NONRESIDUE, -Fq::from(1u64));
    }

    #[test]
    fn portable_path_matches_arkworks() {
        let mut rng = ark_std::test_rng();
        for _ in 0..100 {
            let a = Fq2::rand(&mut rng);
            let b = Fq2::rand(&mut rng);
            assert_eq!(a.mul_with::<false>(&b), a * b);
            assert_eq!(a.c0.square_with::<false>(), a.c0.square());
            // β in Fq (the endomorphism's) and a general one.
            let beta = Fq2::new(b.c0, Fq::zero());
            assert_eq!(a.mul_by_beta::<false>(&beta), a * beta);
            assert_eq!(a.mul_by_beta::<false>(&b), a * b);
            if adx_available() {
                assert_eq!(a.mul_by_beta::<true>(&beta), a * beta);
                assert_eq!(a.mul_by_beta::<true>(&b), a * b);
            }
        }
    }
}

//! Scalar recoding for the MSM: the BN254 GLV decomposition and signed-digit windows.
//!
//! BN254 has an endomorphism φ(x, y) = (β·x, y) that acts on the prime-order group as
//! multiplication by λ (λ³ = 1 mod r). Writing k = k1 + λ·k2 with |k1|, |k2| < 2^127 turns one
//! 254-bit scalar into two 127-bit ones, so an MSM over n points needs half as many windows
//! (the bucket reductions halve) at the price of a multiplication by β per point.
//!
//! The decomposition is Babai rounding against a short lattice basis (v1, v2) of
//! {(a, b) : a + λ·b ≡ 0 mod r}, with the divisions by r replaced by multiplications by
//! precomputed ⌊2^256·b/r⌋ and a shift: a rounding error of one step only makes |k1|, |k2| a little
//! larger, and the basis is short enough that they stay below 2^127 (tests check the bound and
//! the identity). All arithmetic is wrapping 256-bit: the results are small, so their two's
//! complement images are exact.

use ark_ff::{BigInt, MontFp};

use super::Fr;
use super::field::sub_limbs;

/// λ with φ(P) = λ·P on G1 for φ(x, y) = (β·x, y), β = [`BETA_G1`].
pub const LAMBDA: Fr =
    MontFp!("21888242871839275217838484774961031246154997185409878258781734729429964517155");

/// The cube root of unity in Fq that goes with [`LAMBDA`] on G1 (the same β, squared, goes with
/// it on G2: the backend checks which one on the bases themselves).
pub const BETA_G1: ark_bn254::Fq =
    MontFp!("21888242871839275220042445260109153167277707414472061641714758635765020556616");

// Lattice basis v1 = (A1, -B1_ABS), v2 = (A2, B2) and the rounding multipliers
// G1 = ⌊2^256·B2/r⌋, G2 = ⌊2^256·B1_ABS/r⌋ (derived with exact integer arithmetic; see tests).
const A1: u128 = 0x6f4d8248eeb859fc_8211bbeb7d4f1128;
const B1_ABS: u128 = 0x89d3256894d213e3;
const A2: u128 = 0x89d3256894d213e3;
const B2: u128 = 0x6f4d8248eeb859fd_0be4e1541221250b;
const G1: [u64; 3] = [0x5398fd0300ff6565, 0x4ccef014a773d2d2, 0x2];
const G2: [u64; 2] = [0xd91d232ec7e0b3d7, 0x2];

/// The scalar field modulus r, little-endian limbs.
pub const MODULUS: [u64; 4] = [
    0x43e1f593f0000001,
    0x2833e84879b97091,
    0xb85045b68181585d,
    0x30644e72e131a029,
];

/// Bit length bound of the two halves: |k1|, |k2| < 2^GLV_BITS.
pub const GLV_BITS: u32 = 127;

/// A tighter bound on |k1| and |k2|: (1 + 1/8)·(B1 + B2) ≈ 0.978·2^127. Babai's rounding leaves
/// (k1, k2) = e1·v1 + e2·v2 with e_i ∈ [0, 1 + d_i), d_i what the truncated multipliers lose at
/// k < r (d1 < 0.016, d2 < 0.082, computed exactly from G1 and G2), so |k1| ≤ e1·A1 + e2·A2 and
/// |k2| ≤ e1·B1 + e2·B2 both stay below it (the largest seen in tests: 0.94·2^127). The windows
/// need it: where c divides 128, a half above (2^(c-1) - 1)·2^(128-c) fills the top window and a
/// carry from below pushes its digit out of range (c = 4: above 0.875·2^127).
pub const GLV_MAX: u128 = (B1_ABS + B2) + ((B1_ABS + B2) >> 3) + 1;

/// True when `k` (canonical limbs) is below r.
#[inline]
pub fn is_canonical(k: &[u64; 4]) -> bool {
    for i in (0..4).rev() {
        if k[i] != MODULUS[i] {
            return k[i] < MODULUS[i];
        }
    }
    false
}

/// (k·g) >> 256 for a 4-limb k and a small multiplier g of N limbs, whose result fits 128
/// bits. Schoolbook rows of N limbs, each row's carry its top limb: with N fixed the loops
/// unroll (the slice form with its carry-propagation loop made the decomposition take 42 ns a
/// scalar, against 14–18 ns now).
#[inline]
fn mul_shift_256<const N: usize>(k: &[u64; 4], g: &[u64; N]) -> u128 {
    let mut prod = [0u64; 8];
    for (i, &ki) in k.iter().enumerate() {
        let mut carry: u128 = 0;
        for (j, &gj) in g.iter().enumerate() {
            let t = (ki as u128) * (gj as u128) + prod[i + j] as u128 + carry;
            prod[i + j] = t as u64;
            carry = t >> 64;
        }
        // prod[i + N] has not been written by an earlier row, so the carry lands there whole.
        prod[i + N] = carry as u64;
    }
    (prod[4] as u128) | ((prod[5] as u128) << 64)
}

/// Full 128×128 → 256-bit product.
#[inline]
fn mul_128(a: u128, b: u128) -> [u64; 4] {
    let (a0, a1) = (a as u64 as u128, (a >> 64) as u64 as u128);
    let (b0, b1) = (b as u64 as u128, (b >> 64) as u64 as u128);
    let p00 = a0 * b0;
    let p01 = a0 * b1;
    let p10 = a1 * b0;
    let p11 = a1 * b1;
    let mid = (p00 >> 64) + (p01 as u64 as u128) + (p10 as u64 as u128);
    let hi = p11 + (p01 >> 64) + (p10 >> 64) + (mid >> 64);
    [p00 as u64, mid as u64, hi as u64, (hi >> 64) as u64]
}

/// Magnitude and sign of a wrapping 256-bit value known to be in (-2^128, 2^128).
#[inline]
fn signed_small(v: [u64; 4]) -> (u128, bool) {
    if v[3] >> 63 == 1 {
        let neg = sub_limbs(&[0; 4], &v);
        ((neg[0] as u128) | ((neg[1] as u128) << 64), true)
    } else {
        ((v[0] as u128) | ((v[1] as u128) << 64), false)
    }
}

/// k = k1 + λ·k2 (mod r) for canonical k < r; returns (|k1|, k1 < 0, |k2|, k2 < 0), both
/// magnitudes below 2^127.
#[inline]
pub fn decompose(k: &[u64; 4]) -> (u128, bool, u128, bool) {
    let c1 = mul_shift_256(k, &G1);
    let c2 = mul_shift_256(k, &G2);
    // k1 = k - c1·A1 - c2·A2 ; k2 = c1·B1_ABS - c2·B2  (v1 = (A1, -B1_ABS), v2 = (A2, B2)).
    let k1 = sub_limbs(&sub_limbs(k, &mul_128(c1, A1)), &mul_128(c2, A2));
    let k2 = sub_limbs(&mul_128(c1, B1_ABS), &mul_128(c2, B2));
    let (m1, n1) = signed_small(k1);
    let (m2, n2) = signed_small(k2);
    (m1, n1, m2, n2)
}

/// Number of signed `c`-bit windows for the MSM's magnitudes: the GLV halves (`bits` =
/// [`GLV_BITS`], bounded by [`GLV_MAX`]) or any value below 2^bits.
pub fn windows_for(bits: u32, c: u32) -> u32 {
    if bits == GLV_BITS {
        let m = GLV_MAX;
        windows_for_max(&[m as u64, (m >> 64) as u64, 0, 0], c)
    } else {
        let mut max = [0u64; 4];
        for (i, l) in max.iter_mut().enumerate() {
            let b = bits.saturating_sub(64 * i as u32).min(64);
            *l = if b == 64 { u64::MAX } else { (1u64 << b) - 1 };
        }
        windows_for_max(&max, c)
    }
}

/// Number of signed `c`-bit windows that hold every magnitude up to `max` (little-endian
/// limbs). Digits lie in [-2^(c-1), 2^(c-1)) and each may carry one into the next window, so
/// the top window's own bits of `max` must stay below 2^(c-1) - 1.
pub fn windows_for_max(max: &[u64; 4], c: u32) -> u32 {
    let limit = (1u64 << (c - 1)) - 1;
    let mut top = *max;
    let mut w = 1;
    while top[1] | top[2] | top[3] != 0 || top[0] >= limit {
        for i in 0..4 {
            top[i] = (top[i] >> c) | top.get(i + 1).map_or(0, |&h| h << (64 - c));
        }
        w += 1;
    }
    w
}

/// Whether windows of `c` bits cover `bits` (plus the signed digits' headroom bit) without a
/// nearly empty top window. A top window of t ≪ c bits has only about 2^t distinct digits, so
/// nearly every point of that window lands in a handful of buckets, collides with itself in
/// the batch and takes the slow Jacobian path (measured at 2^20 points: c = 14 and 15, whose
/// top windows hold 2 and 8 bits, 1.5–1.9× slower than c = 13 and 16).
pub fn fills_top_window(bits: u32, c: u32) -> bool {
    let w = windows_for(bits, c);
    let top = bits + 1 - c * (w - 1);
    top + 2 >= c
}

/// Writes the signed base-2^c digits of ±`mag` into `out` (`out.len()` windows as
/// [`windows_for_max`] counts them for a bound on `mag`), least significant first; each digit
/// is in [-2^(c-1), 2^(c-1)).
#[inline]
pub fn signed_digits(mag: &[u64], negative: bool, c: u32, out: &mut [i32]) {
    let mask = (1u64 << c) - 1;
    let half = 1i64 << (c - 1);
    let full = 1i64 << c;
    let mut carry = 0i64;
    for (w, o) in out.iter_mut().enumerate() {
        let bit = w as u32 * c;
        let limb = (bit / 64) as usize;
        let shift = bit % 64;
        let mut v = if limb < mag.len() {
            mag[limb] >> shift
        } else {
            0
        };
        if shift + c > 64 && limb + 1 < mag.len() {
            v |= mag[limb + 1] << (64 - shift);
        }
        let mut d = (v & mask) as i64 + carry;
        if d >= half {
            d -= full;
            carry = 1;
        } else {
            carry = 0;
        }
        *o = if negative { -d as i32 } else { d as i32 };
    }
    debug_assert_eq!(carry, 0, "scalar too large for the windows");
}

/// r - k for canonical 0 < k < r.
#[inline]
pub fn negate_mod_r(k: &[u64; 4]) -> [u64; 4] {
    sub_limbs(&MODULUS, k)
}

/// True when k > (r-1)/2, i.e. when r - k is the smaller magnitude.
#[inline]
pub fn is_upper_half(k: &[u64; 4]) -> bool {
    // (r-1)/2, little-endian.
    const HALF: [u64; 4] = [
        0xa1f0fac9f8000000,
        0x9419f4243cdcb848,
        0xdc2822db40c0ac2e,
        0x183227397098d014,
    ];
    for i in (0..4).rev() {
        if k[i] != HALF[i] {
            return k[i] > HALF[i];
        }
    }
    false
}

/// Converts a canonical field element representation into limbs.
#[inline]
pub fn limbs(k: &BigInt<4>) -> &[u64; 4] {
    &k.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use ark_ff::{BigInteger, Field, PrimeField, UniformRand};

    fn to_fr(mag: u128, neg: bool) -> Fr {
        let f = Fr::from(mag);
        if neg { -f } else { f }
    }

    #[test]
    fn constants_match_arkworks() {
        assert_eq!(MODULUS, Fr::MODULUS.0);
        let half = Fr::MODULUS_MINUS_ONE_DIV_TWO;
        assert!(!is_upper_half(&half.0));
        let mut above = half;
        above.add_with_carry(&BigInt::from(1u64));
        assert!(is_upper_half(&above.0));
        assert_eq!(LAMBDA * LAMBDA * LAMBDA, Fr::from(1u64));
        // v1 and v2 are in the lattice.
        assert_eq!(Fr::from(A1) - LAMBDA * Fr::from(B1_ABS), Fr::from(0u64));
        assert_eq!(Fr::from(A2) + LAMBDA * Fr::from(B2), Fr::from(0u64));
    }

    #[test]
    fn decomposition_identity_and_bound() {
        let mut rng = ark_std::test_rng();
        let mut specials: Vec<Fr> = vec![
            Fr::from(0u64),
            Fr::from(1u64),
            -Fr::from(1u64),
            Fr::from(2u64).pow([253]),
        ];
        specials.extend((0..20000).map(|_| Fr::rand(&mut rng)));
        for k in specials {
            let kb = k.into_bigint();
            let (m1, n1, m2, n2) = decompose(&kb.0);
            assert!(m1 <= GLV_MAX && m2 <= GLV_MAX);
            assert_eq!(to_fr(m1, n1) + LAMBDA * to_fr(m2, n2), k);
        }
    }

    /// The GLV bound's ingredient: a truncated multiplier G = ⌊2^256·B/r⌋ loses
    /// k·(2^256·B − G·r)/(r·2^256) of a step at k < r, under 1/8 when 2^256·B − G·r < 2^253,
    /// which `GLV_MAX`'s (1 + 1/8) allows for.
    #[test]
    fn glv_max_covers_the_rounding() {
        for (b, g) in [(B2, &G1[..]), (B1_ABS, &G2[..])] {
            // 2^256·b − g·r, in 9 limbs: b·2^256 is b's limbs moved up four.
            let mut lhs = [0u64; 9];
            lhs[4] = b as u64;
            lhs[5] = (b >> 64) as u64;
            let mut gr = [0u64; 9];
            for (i, &gi) in g.iter().enumerate() {
                let mut carry = 0u128;
                for (j, &rj) in MODULUS.iter().enumerate() {
                    let t = gr[i + j] as u128 + gi as u128 * rj as u128 + carry;
                    gr[i + j] = t as u64;
                    carry = t >> 64;
                }
                gr[i + 4] = carry as u64;
            }
            let mut diff = [0u64; 9];
            let mut borrow = false;
            for i in 0..9 {
                let (d, b1) = lhs[i].overflowing_sub(gr[i]);
                let (d, b2) = d.overflowing_sub(borrow as u64);
                diff[i] = d;
                borrow = b1 | b2;
            }
            assert!(!borrow, "G must not exceed 2^256·B/r");
            // 0 ≤ diff < r (G is the floor), and 8·diff < 2^256: the loss k·diff/(r·2^256)
            // stays under 1/8 for every k < r.
            assert!(diff[4..].iter().all(|&l| l == 0));
            let d = BigInt::<4>([diff[0], diff[1], diff[2], diff[3]]);
            assert!(d.num_bits() <= 253, "{d}");
        }
        // GLV_MAX (0.978·2^127) stays within the halves' 127 bits.
        const { assert!(GLV_MAX < 1u128 << GLV_BITS) };
    }

    /// The windows hold the extreme magnitudes: GLV_MAX itself (its digits in range and
    /// summing back) at every width, and any value below 2^bits for the plain path.
    #[test]
    fn windows_hold_their_bounds() {
        for c in 2..=16u32 {
            for (max, w) in [
                (
                    [GLV_MAX as u64, (GLV_MAX >> 64) as u64, 0, 0],
                    windows_for(GLV_BITS, c),
                ),
                (
                    [u64::MAX, u64::MAX, u64::MAX, (1 << 61) - 1],
                    windows_for(253, c),
                ),
            ] {
                // The worst digits: every window at its largest, so every carry happens.
                let mut d = vec![0i32; w as usize];
                signed_digits(&max, false, c, &mut d);
                let lim = 1i32 << (c - 1);
                assert!(
                    d.iter().all(|&x| (-lim..lim).contains(&x)),
                    "c = {c}: {d:?}"
                );
                let mut acc = BigInt::<4>([0; 4]);
                for &x in d.iter().rev() {
                    acc <<= c;
                    if x >= 0 {
                        acc.add_with_carry(&BigInt::from(x as u64));
                    } else {
                        acc.sub_with_borrow(&BigInt::from((-x) as u64));
                    }
                }
                assert_eq!(acc.0, max, "c = {c}");
            }
        }
        // Where c divides 128 the GLV halves need one window more than 128/c only when the
        // bound reaches the top window's limit: c = 2 and 4, not 8 or 16.
        assert_eq!(windows_for(GLV_BITS, 4), 33);
        assert_eq!(windows_for(GLV_BITS, 8), 16);
        assert_eq!(windows_for(GLV_BITS, 16), 8);
    }

    #[test]
    fn signed_digits_roundtrip() {
        let mut rng = ark_std::test_rng();
        for c in [4u32, 7, 11, 13, 16] {
            for _ in 0..200 {
                let k = Fr::rand(&mut rng).into_bigint();
                let w = windows_for(254, c) as usize;
                let mut d = vec![0i32; w];
                signed_digits(&k.0, false, c, &mut d);
                let mut acc = Fr::from(0u64);
                for (i, &di) in d.iter().enumerate().rev() {
                    acc *= Fr::from(1u64 << c);
                    acc += if di < 0 {
                        -Fr::from((-di) as u64)
                    } else {
                        Fr::from(di as u64)
                    };
                    assert!(di >= -(1 << (c - 1)) && di < (1 << (c - 1)), "digit {i}");
                }
                assert_eq!(acc, Fr::from_bigint(k).unwrap());
            }
        }
    }
}

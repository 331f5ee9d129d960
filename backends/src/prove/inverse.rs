//! Modular inversion in BN254's Fq by Bernstein–Yang "safegcd" divsteps, the variable-time
//! form libsecp256k1 uses (`modinv64_var`): 62 divsteps at a time on machine words, applied to
//! 5×62-bit signed limbs with 128-bit products.
//!
//! Every batch of affine additions in the MSM shares one inversion; arkworks' binary extended
//! Euclid takes 3.8 µs for it, and it was 6 % of a whole 2^16 proof. This takes 1.05 µs
//! (`benches/benches/field_inverse.rs`).
//! Like arkworks' inversion this runs in time that depends on the value: the MSM's inputs are
//! a public key's points and differences of them.

use ark_bn254::{Fq, Fq2};
use ark_ff::{BigInt, Field, MontConfig, Zero};

const M62: u64 = u64::MAX >> 2;

/// A signed integer Σ v\[i\]·2^(62·i); limbs 0..3 in [0, 2^62) between operations, the top one
/// signed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Signed62([i64; 5]);

impl Signed62 {
    const fn from_limbs(l: [u64; 4]) -> Signed62 {
        Signed62([
            (l[0] & M62) as i64,
            ((l[0] >> 62 | l[1] << 2) & M62) as i64,
            ((l[1] >> 60 | l[2] << 4) & M62) as i64,
            ((l[2] >> 58 | l[3] << 6) & M62) as i64,
            (l[3] >> 56) as i64,
        ])
    }

    /// The value as 4 limbs; only for values in [0, 2^256) with limbs in range.
    fn to_limbs(self) -> [u64; 4] {
        let v = self.0.map(|x| x as u64);
        [
            v[0] | v[1] << 62,
            v[1] >> 2 | v[2] << 60,
            v[2] >> 4 | v[3] << 58,
            v[3] >> 6 | v[4] << 56,
        ]
    }
}

/// The modulus in signed-62 form and its inverse modulo 2^62.
struct Modulus {
    p: Signed62,
    p_inv62: u64,
}

const fn inverse_mod_2_64(x: u64) -> u64 {
    // Newton: each step doubles the correct low bits (x·x ≡ 1 mod 8 for odd x gives 3).
    let mut y = x;
    let mut i = 0;
    while i < 5 {
        y = y.wrapping_mul(2u64.wrapping_sub(x.wrapping_mul(y)));
        i += 1;
    }
    y
}

const FQ_LIMBS: [u64; 4] = [
    0x3c208c16d87cfd47,
    0x97816a916871ca8d,
    0xb85045b68181585d,
    0x30644e72e131a029,
];

const FQ: Modulus = Modulus {
    p: Signed62::from_limbs(FQ_LIMBS),
    p_inv62: inverse_mod_2_64(FQ_LIMBS[0]) & M62,
};

/// The 2×2 matrix of 62 divsteps, scaled by 2^62: [f', g'] = [[u, v], [q, r]]·[f, g] / 2^62.
struct Transition {
    u: i64,
    v: i64,
    q: i64,
    r: i64,
}

/// 62 divsteps on the low words of f and g (f odd), several at a time where the low bits allow.
/// Returns the new η (= −δ).
fn divsteps_62_var(mut eta: i64, f0: u64, g0: u64, t: &mut Transition) -> i64 {
    let (mut u, mut v, mut q, mut r) = (1u64, 0u64, 0u64, 1u64);
    let (mut f, mut g) = (f0, g0);
    let mut i: u32 = 62;
    loop {
        // A sentinel bit counts zeros only up to i.
        let zeros = (g | (u64::MAX << i)).trailing_zeros();
        g >>= zeros;
        u <<= zeros;
        v <<= zeros;
        eta -= i64::from(zeros);
        i -= zeros;
        if i == 0 {
            break;
        }
        let w: u64;
        let m: u64;
        if eta < 0 {
            eta = -eta;
            (f, g) = (g, f.wrapping_neg());
            (u, q) = (q, u.wrapping_neg());
            (v, r) = (r, v.wrapping_neg());
            // Cancel up to 6 bits of g at once, no more than i, nor past eta + 1 (where η's
            // sign flips again).
            let limit = (eta + 1).min(i64::from(i)) as u32;
            m = (u64::MAX >> (64 - limit)) & 63;
            w = f
                .wrapping_mul(g)
                .wrapping_mul(f.wrapping_mul(f).wrapping_sub(2))
                & m;
        } else {
            // Up to 4 bits: η tends to be small here.
            let limit = (eta + 1).min(i64::from(i)) as u32;
            m = (u64::MAX >> (64 - limit)) & 15;
            let w0 = f.wrapping_add((f.wrapping_add(1) & 4) << 1);
            w = w0.wrapping_neg().wrapping_mul(g) & m;
        }
        g = g.wrapping_add(f.wrapping_mul(w));
        q = q.wrapping_add(u.wrapping_mul(w));
        r = r.wrapping_add(v.wrapping_mul(w));
        debug_assert_eq!(g & m, 0);
    }
    *t = Transition {
        u: u as i64,
        v: v as i64,
        q: q as i64,
        r: r as i64,
    };
    eta
}

#[inline(always)]
fn mul(a: i64, b: i64) -> i128 {
    i128::from(a) * i128::from(b)
}

/// [d, e] = t·[d, e] / 2^62 modulo p: a multiple of p is added so the low 62 bits vanish.
/// Keeps d and e in (−2p, p).
fn update_de_62(d: &mut Signed62, e: &mut Signed62, t: &Transition, m: &Modulus) {
    let (dv, ev, p) = (d.0, e.0, m.p.0);
    let (u, v, q, r) = (t.u, t.v, t.q, t.r);
    // [md, me] start as [u, q] if d is negative, plus [v, r] if e is negative.
    let sd = dv[4] >> 63;
    let se = ev[4] >> 63;
    let mut md = (u & sd) + (v & se);
    let mut me = (q & sd) + (r & se);
    let mut cd = mul(u, dv[0]) + mul(v, ev[0]);
    let mut ce = mul(q, dv[0]) + mul(r, ev[0]);
    // Make t·[d, e] + p·[md, me] divisible by 2^62.
    md -= (m.p_inv62.wrapping_mul(cd as u64).wrapping_add(md as u64) & M62) as i64;
    me -= (m.p_inv62.wrapping_mul(ce as u64).wrapping_add(me as u64) & M62) as i64;
    cd += mul(p[0], md);
    ce += mul(p[0], me);
    debug_assert_eq!(cd as u64 & M62, 0);
    debug_assert_eq!(ce as u64 & M62, 0);
    cd >>= 62;
    ce >>= 62;
    for k in 1..5 {
        cd += mul(u, dv[k]) + mul(v, ev[k]) + mul(p[k], md);
        ce += mul(q, dv[k]) + mul(r, ev[k]) + mul(p[k], me);
        d.0[k - 1] = (cd as u64 & M62) as i64;
        e.0[k - 1] = (ce as u64 & M62) as i64;
        cd >>= 62;
        ce >>= 62;
    }
    d.0[4] = cd as i64;
    e.0[4] = ce as i64;
}

/// [f, g] = t·[f, g] / 2^62 over the low `len` limbs (exact: the low 62 bits are zero).
fn update_fg_62_var(len: usize, f: &mut Signed62, g: &mut Signed62, t: &Transition) {
    let (u, v, q, r) = (t.u, t.v, t.q, t.r);
    let mut cf = mul(u, f.0[0]) + mul(v, g.0[0]);
    let mut cg = mul(q, f.0[0]) + mul(r, g.0[0]);
    debug_assert_eq!(cf as u64 & M62, 0);
    debug_assert_eq!(cg as u64 & M62, 0);
    cf >>= 62;
    cg >>= 62;
    for k in 1..len {
        cf += mul(u, f.0[k]) + mul(v, g.0[k]);
        cg += mul(q, f.0[k]) + mul(r, g.0[k]);
        f.0[k - 1] = (cf as u64 & M62) as i64;
        g.0[k - 1] = (cg as u64 & M62) as i64;
        cf >>= 62;
        cg >>= 62;
    }
    f.0[len - 1] = cf as i64;
    g.0[len - 1] = cg as i64;
}

/// r·sign mod p in [0, p), for r in (−2p, p) and sign ±1 (its sign bit is what counts).
fn normalize_62(r: &mut Signed62, sign: i64, m: &Modulus) {
    let p = m.p.0;
    let mut v = r.0;
    let add = v[4] >> 63;
    for k in 0..5 {
        v[k] += p[k] & add;
    }
    let neg = sign >> 63;
    for x in v.iter_mut() {
        *x = (*x ^ neg) - neg;
    }
    let carry = |v: &mut [i64; 5]| {
        for k in 0..4 {
            v[k + 1] += v[k] >> 62;
            v[k] &= M62 as i64;
        }
    };
    carry(&mut v);
    let add = v[4] >> 63;
    for k in 0..5 {
        v[k] += p[k] & add;
    }
    carry(&mut v);
    r.0 = v;
}

/// x⁻¹ mod p for x in [0, p) given as 4 limbs; None for 0.
fn modinv_var(x: [u64; 4], m: &Modulus) -> Option<[u64; 4]> {
    if x == [0; 4] {
        return None;
    }
    let mut d = Signed62([0; 5]);
    let mut e = Signed62([1, 0, 0, 0, 0]);
    let mut f = m.p;
    let mut g = Signed62::from_limbs(x);
    let mut len = 5;
    let mut eta = -1i64;
    let mut t = Transition {
        u: 0,
        v: 0,
        q: 0,
        r: 0,
    };
    // At most 12·62 divsteps suffice for 256-bit inputs; the bound only guards a broken
    // invariant from looping forever.
    for _ in 0..20 {
        eta = divsteps_62_var(eta, f.0[0] as u64, g.0[0] as u64, &mut t);
        update_de_62(&mut d, &mut e, &t, m);
        update_fg_62_var(len, &mut f, &mut g, &t);
        if g.0[0] == 0 && g.0[1..len].iter().all(|&l| l == 0) {
            // g = 0: f = ±gcd = ±1 (p is prime and x ≠ 0).
            normalize_62(&mut d, f.0[len - 1], m);
            return Some(d.to_limbs());
        }
        let (fnl, gnl) = (f.0[len - 1], g.0[len - 1]);
        // Both top limbs 0 or −1: drop a limb, folding its sign into the one below.
        if len > 1 && (fnl ^ (fnl >> 63)) == 0 && (gnl ^ (gnl >> 63)) == 0 {
            f.0[len - 2] |= ((fnl as u64) << 62) as i64;
            g.0[len - 2] |= ((gnl as u64) << 62) as i64;
            len -= 1;
        }
    }
    None
}

/// a⁻¹ in Fq (None for zero), equal to arkworks' `inverse`.
pub fn fq_inverse(a: &Fq) -> Option<Fq> {
    // a is stored as aR; safegcd gives (aR)⁻¹ = a⁻¹R⁻¹, and one Montgomery multiplication by
    // the element whose stored form is R³ makes that a⁻¹R, the stored form of a⁻¹.
    let y = modinv_var((a.0).0, &FQ)?;
    let r3 = Fq::new_unchecked(<ark_bn254::FqConfig as MontConfig<4>>::R2).square();
    Some(Fq::new_unchecked(BigInt(y)) * r3)
}

/// a⁻¹ in Fq2 = conj(a) / N(a), N(a) = c0² + c1² (u² = −1); None for zero.
pub fn fq2_inverse(a: &Fq2) -> Option<Fq2> {
    if a.is_zero() {
        return None;
    }
    let n = a.c0.square() + a.c1.square();
    let n_inv = fq_inverse(&n)?;
    Some(Fq2::new(a.c0 * n_inv, -(a.c1 * n_inv)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ark_ff::{One, UniformRand};

    #[test]
    fn signed62_round_trips_and_the_modulus_constants_hold() {
        assert_eq!(FQ.p.to_limbs(), FQ_LIMBS);
        assert_eq!(FQ_LIMBS[0].wrapping_mul(inverse_mod_2_64(FQ_LIMBS[0])), 1);
        assert_eq!(FQ.p_inv62.wrapping_mul(FQ.p.0[0] as u64) & M62, 1);
        let x = [u64::MAX, 1, 1 << 63, 0x0123_4567_89ab_cdef];
        assert_eq!(Signed62::from_limbs(x).to_limbs(), x);
    }

    /// Equal to arkworks on random values and on the ones at the edges of the limb layout.
    #[test]
    fn fq_inverse_matches_arkworks() {
        assert_eq!(fq_inverse(&Fq::zero()), None);
        let mut edge = vec![Fq::one(), -Fq::one(), Fq::from(2u64), -Fq::from(2u64)];
        for bits in [61u32, 62, 63, 64, 123, 124, 125, 186, 187, 188, 248, 253] {
            let two = Fq::from(2u64);
            let p = two.pow([u64::from(bits)]);
            edge.extend([p, p - Fq::one(), p + Fq::one(), -p]);
        }
        // Stored (Montgomery) limbs at the edges too, which is what the algorithm sees: near
        // 0, near p, and around every 62-bit limb boundary (2^62k and 2^62k ± 1).
        let mut raws = vec![
            [1u64, 0, 0, 0],
            [0, 1, 0, 0],
            [0, 0, 0, 1],
            [FQ_LIMBS[0] - 1, FQ_LIMBS[1], FQ_LIMBS[2], FQ_LIMBS[3]],
        ];
        for k in [62u32, 124, 186, 248] {
            let mut pow = [0u64; 4];
            pow[(k / 64) as usize] = 1 << (k % 64);
            let mut below = pow;
            for limb in below.iter_mut() {
                let (v, borrow) = limb.overflowing_sub(1);
                *limb = v;
                if !borrow {
                    break;
                }
            }
            let mut above = pow;
            above[0] |= 1;
            raws.extend([pow, below, above]);
        }
        for raw in raws {
            edge.push(Fq::new_unchecked(BigInt(raw)));
        }
        let mut rng = ark_std::test_rng();
        let random = (0..20_000).map(|_| Fq::rand(&mut rng));
        for a in edge.into_iter().chain(random) {
            let inv = fq_inverse(&a).expect("non-zero");
            assert_eq!(Some(inv), a.inverse(), "{a}");
            assert!((inv * a).is_one());
        }
    }

    #[test]
    fn fq2_inverse_matches_arkworks() {
        assert_eq!(fq2_inverse(&Fq2::zero()), None);
        let mut rng = ark_std::test_rng();
        let edge = [
            Fq2::one(),
            Fq2::new(Fq::zero(), Fq::one()),
            Fq2::new(-Fq::one(), Fq::zero()),
        ];
        for a in edge
            .into_iter()
            .chain((0..2000).map(|_| Fq2::rand(&mut rng)))
        {
            assert_eq!(fq2_inverse(&a), a.inverse(), "{a}");
        }
    }
}

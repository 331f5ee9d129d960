// Point arithmetic on BN254's G1 (over Fq) and G2 (over Fq2, the twist), written once:
// `kernels::wgsl::bn254_kernel` instantiates it by replacing CURVE_ with g1_ / g2_ and FIELD_
// with fq_ / fq2_. Both curves are y^2 = x^3 + b with a = 0, and b never enters an addition
// or doubling formula, so the same code serves both. Not a complete module on its own.
//
// Points are kept in XYZZ coordinates (x = X/ZZ, y = Y/ZZZ, with ZZ^3 = ZZZ^2): additions
// need no inversion and the formulas are cheaper than Jacobian ones. ZZ = 0 is the identity,
// so an all-zero buffer is all identities. Affine inputs use all-zero words for the point at
// infinity ((0, 0) is not on either curve). Formulas from the Explicit-Formulas Database
// ("xyzz" for short Weierstrass curves): madd-2008-s, add-2008-s, dbl-2008-s-1 and
// mdbl-2008-s-1, each with the special cases those formulas leave out (an identity operand,
// equal points, opposite points).

struct CURVE_affine {
    x: FIELD_t,
    y: FIELD_t,
}

struct CURVE_xyzz {
    x: FIELD_t,
    y: FIELD_t,
    zz: FIELD_t,
    zzz: FIELD_t,
}

const CURVE_AFFINE_WORDS: u32 = 2u * FIELD_WORDS;
const CURVE_XYZZ_WORDS: u32 = 4u * FIELD_WORDS;

fn CURVE_identity() -> CURVE_xyzz {
    return CURVE_xyzz(FIELD_zero(), FIELD_zero(), FIELD_zero(), FIELD_zero());
}

fn CURVE_is_identity(p: CURVE_xyzz) -> bool {
    return FIELD_is_zero(p.zz);
}

fn CURVE_affine_is_infinity(a: CURVE_affine) -> bool {
    return FIELD_is_zero(a.x) && FIELD_is_zero(a.y);
}

fn CURVE_affine_from_block(b: block_t) -> CURVE_affine {
    return CURVE_affine(FIELD_from_block(b, 0u), FIELD_from_block(b, FIELD_WORDS));
}

fn CURVE_xyzz_from_block(b: block_t) -> CURVE_xyzz {
    return CURVE_xyzz(
        FIELD_from_block(b, 0u),
        FIELD_from_block(b, FIELD_WORDS),
        FIELD_from_block(b, 2u * FIELD_WORDS),
        FIELD_from_block(b, 3u * FIELD_WORDS));
}

fn CURVE_xyzz_to_block(b: ptr<function, block_t>, p: CURVE_xyzz) {
    FIELD_to_block(b, 0u, p.x);
    FIELD_to_block(b, FIELD_WORDS, p.y);
    FIELD_to_block(b, 2u * FIELD_WORDS, p.zz);
    FIELD_to_block(b, 3u * FIELD_WORDS, p.zzz);
}

// -a (the point at infinity stays all zero).
fn CURVE_affine_neg(a: CURVE_affine) -> CURVE_affine {
    return CURVE_affine(a.x, FIELD_neg(a.y));
}

// 2a for an affine a (mdbl-2008-s-1). Infinity is not passed here (the callers check).
fn CURVE_mdbl(a: CURVE_affine) -> CURVE_xyzz {
    let u = FIELD_dbl(a.y);
    let v = FIELD_sqr(u);
    let w = FIELD_mul(u, v);
    let s = FIELD_mul(a.x, v);
    let x2 = FIELD_sqr(a.x);
    let m = FIELD_add(FIELD_dbl(x2), x2);
    let x3 = FIELD_sub(FIELD_sqr(m), FIELD_dbl(s));
    let y3 = FIELD_sub(FIELD_mul(m, FIELD_sub(s, x3)), FIELD_mul(w, a.y));
    return CURVE_xyzz(x3, y3, v, w);
}

// 2p (dbl-2008-s-1 with a = 0). The identity doubles to the identity by itself (ZZ3 = V*ZZ1).
fn CURVE_dbl(p: CURVE_xyzz) -> CURVE_xyzz {
    let u = FIELD_dbl(p.y);
    let v = FIELD_sqr(u);
    let w = FIELD_mul(u, v);
    let s = FIELD_mul(p.x, v);
    let x2 = FIELD_sqr(p.x);
    let m = FIELD_add(FIELD_dbl(x2), x2);
    let x3 = FIELD_sub(FIELD_sqr(m), FIELD_dbl(s));
    let y3 = FIELD_sub(FIELD_mul(m, FIELD_sub(s, x3)), FIELD_mul(w, p.y));
    return CURVE_xyzz(x3, y3, FIELD_mul(v, p.zz), FIELD_mul(w, p.zzz));
}

// p + a for an affine a (madd-2008-s).
fn CURVE_add_mixed(p: CURVE_xyzz, a: CURVE_affine) -> CURVE_xyzz {
    if (CURVE_affine_is_infinity(a)) {
        return p;
    }
    if (CURVE_is_identity(p)) {
        return CURVE_xyzz(a.x, a.y, FIELD_one(), FIELD_one());
    }
    let u2 = FIELD_mul(a.x, p.zz);
    let s2 = FIELD_mul(a.y, p.zzz);
    let pp_ = FIELD_sub(u2, p.x);
    let r = FIELD_sub(s2, p.y);
    if (FIELD_is_zero(pp_)) {
        // Same x: the same point (double it) or its opposite (the sum is the identity).
        if (FIELD_is_zero(r)) {
            return CURVE_mdbl(a);
        }
        return CURVE_identity();
    }
    let pp = FIELD_sqr(pp_);
    let ppp = FIELD_mul(pp_, pp);
    let q = FIELD_mul(p.x, pp);
    let x3 = FIELD_sub(FIELD_sub(FIELD_sqr(r), ppp), FIELD_dbl(q));
    let y3 = FIELD_sub(FIELD_mul(r, FIELD_sub(q, x3)), FIELD_mul(p.y, ppp));
    return CURVE_xyzz(x3, y3, FIELD_mul(p.zz, pp), FIELD_mul(p.zzz, ppp));
}

// p + q (add-2008-s).
fn CURVE_add(p: CURVE_xyzz, q: CURVE_xyzz) -> CURVE_xyzz {
    if (CURVE_is_identity(q)) {
        return p;
    }
    if (CURVE_is_identity(p)) {
        return q;
    }
    let u1 = FIELD_mul(p.x, q.zz);
    let u2 = FIELD_mul(q.x, p.zz);
    let s1 = FIELD_mul(p.y, q.zzz);
    let s2 = FIELD_mul(q.y, p.zzz);
    let pp_ = FIELD_sub(u2, u1);
    let r = FIELD_sub(s2, s1);
    if (FIELD_is_zero(pp_)) {
        if (FIELD_is_zero(r)) {
            return CURVE_dbl(p);
        }
        return CURVE_identity();
    }
    let pp = FIELD_sqr(pp_);
    let ppp = FIELD_mul(pp_, pp);
    let qq = FIELD_mul(u1, pp);
    let x3 = FIELD_sub(FIELD_sub(FIELD_sqr(r), ppp), FIELD_dbl(qq));
    let y3 = FIELD_sub(FIELD_mul(r, FIELD_sub(qq, x3)), FIELD_mul(s1, ppp));
    let zz3 = FIELD_mul(FIELD_mul(p.zz, q.zz), pp);
    let zzz3 = FIELD_mul(FIELD_mul(p.zzz, q.zzz), ppp);
    return CURVE_xyzz(x3, y3, zz3, zzz3);
}

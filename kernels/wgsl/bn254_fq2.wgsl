// Fq2 = Fq[u] / (u^2 + 1), BN254's quadratic extension (G2's coordinates), over the fq_
// instance of bn254_field.wgsl. Not a complete module on its own.
//
// An element is c0 + c1*u: 16 words, c0 then c1, each as arkworks stores an Fq (Montgomery
// form), so arkworks' `Fq2` is copied unchanged. The function names mirror the field template's
// (fq2_add for fq_add, ...) so that bn254_curve.wgsl is instantiated over either.

struct fq2_t {
    c0: fq_t,
    c1: fq_t,
}

const fq2_WORDS: u32 = 16u;

fn fq2_zero() -> fq2_t {
    return fq2_t(fq_zero(), fq_zero());
}

fn fq2_one() -> fq2_t {
    return fq2_t(fq_one(), fq_zero());
}

fn fq2_is_zero(a: fq2_t) -> bool {
    return fq_is_zero(a.c0) && fq_is_zero(a.c1);
}

fn fq2_eq(a: fq2_t, b: fq2_t) -> bool {
    return fq_eq(a.c0, b.c0) && fq_eq(a.c1, b.c1);
}

fn fq2_add(a: fq2_t, b: fq2_t) -> fq2_t {
    return fq2_t(fq_add(a.c0, b.c0), fq_add(a.c1, b.c1));
}

fn fq2_dbl(a: fq2_t) -> fq2_t {
    return fq2_add(a, a);
}

fn fq2_sub(a: fq2_t, b: fq2_t) -> fq2_t {
    return fq2_t(fq_sub(a.c0, b.c0), fq_sub(a.c1, b.c1));
}

fn fq2_neg(a: fq2_t) -> fq2_t {
    return fq2_t(fq_neg(a.c0), fq_neg(a.c1));
}

// Karatsuba: three Fq multiplications. (a0 + a1 u)(b0 + b1 u) = a0 b0 - a1 b1
// + ((a0 + a1)(b0 + b1) - a0 b0 - a1 b1) u.
fn fq2_mul(a: fq2_t, b: fq2_t) -> fq2_t {
    let v0 = fq_mul(a.c0, b.c0);
    let v1 = fq_mul(a.c1, b.c1);
    let s = fq_mul(fq_add(a.c0, a.c1), fq_add(b.c0, b.c1));
    return fq2_t(fq_sub(v0, v1), fq_sub(fq_sub(s, v0), v1));
}

// Complex squaring: two Fq multiplications. (a0 + a1 u)^2 = (a0 + a1)(a0 - a1) + 2 a0 a1 u.
fn fq2_sqr(a: fq2_t) -> fq2_t {
    let m = fq_mul(a.c0, a.c1);
    return fq2_t(fq_mul(fq_add(a.c0, a.c1), fq_sub(a.c0, a.c1)), fq_dbl(m));
}

fn fq2_from_block(b: block_t, o: u32) -> fq2_t {
    return fq2_t(fq_from_block(b, o), fq_from_block(b, o + 8u));
}

fn fq2_to_block(b: ptr<function, block_t>, o: u32, v: fq2_t) {
    fq_to_block(b, o, v.c0);
    fq_to_block(b, o + 8u, v.c1);
}

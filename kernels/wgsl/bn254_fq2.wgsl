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

// Karatsuba: three Fq multiplications, (a0 + a1 u)(b0 + b1 u) = a0 b0 - a1 b1
// + ((a0 + a1)(b0 + b1) - a0 b0 - a1 b1) u, made by one call site of fq_mul in a loop of three
// whose operands are picked with selects: every fq_mul call site is a full copy of the
// multiplication once inlined, and with three of them the G2 kernels took minutes to compile
// on lavapipe. GPU compilers unroll the loop again (the selects then fold away).
fn fq2_mul(a: fq2_t, b: fq2_t) -> fq2_t {
    let sa = fq_add(a.c0, a.c1);
    let sb = fq_add(b.c0, b.c1);
    var v0 = fq_zero();
    var v1 = fq_zero();
    var v2 = fq_zero();
    for (var i = 0u; i < 3u; i++) {
        let v = fq_mul(fq_pick3(a.c0, a.c1, sa, i), fq_pick3(b.c0, b.c1, sb, i));
        if (i == 0u) {
            v0 = v;
        } else if (i == 1u) {
            v1 = v;
        } else {
            v2 = v;
        }
    }
    return fq2_t(fq_sub(v0, v1), fq_sub(fq_sub(v2, v0), v1));
}

// x, y or z for i = 0, 1, 2, word by word (selects, not an indexed array: lavapipe compiles
// dynamically indexed arrays of field elements into very slow code).
fn fq_pick3(x: fq_t, y: fq_t, z: fq_t, i: u32) -> fq_t {
    let b1 = i == 1u;
    let b2 = i == 2u;
    return fq_t(
        select(select(x[0], y[0], b1), z[0], b2),
        select(select(x[1], y[1], b1), z[1], b2),
        select(select(x[2], y[2], b1), z[2], b2),
        select(select(x[3], y[3], b1), z[3], b2),
        select(select(x[4], y[4], b1), z[4], b2),
        select(select(x[5], y[5], b1), z[5], b2),
        select(select(x[6], y[6], b1), z[6], b2),
        select(select(x[7], y[7], b1), z[7], b2));
}

// A square is a product (one more Fq multiplication than complex squaring, but no second
// copy of the multiplication in the code).
fn fq2_sqr(a: fq2_t) -> fq2_t {
    return fq2_mul(a, a);
}

fn fq2_from_block(b: block_t, o: u32) -> fq2_t {
    return fq2_t(fq_from_block(b, o), fq_from_block(b, o + 8u));
}

fn fq2_to_block(b: ptr<function, block_t>, o: u32, v: fq2_t) {
    fq_to_block(b, o, v.c0);
    fq_to_block(b, o + 8u, v.c1);
}

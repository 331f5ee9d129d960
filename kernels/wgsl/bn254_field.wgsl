// Montgomery arithmetic in one prime field of BN254, written once for Fq and Fr:
// `kernels::wgsl::bn254_kernel` instantiates it by replacing the prefix FIELD_ with fq_ or
// fr_ (the moduli are in bn254_common.wgsl). Not a complete module on its own.
//
// An element is 8 words of 32 bits, little-endian, in Montgomery form with R = 2^256: exactly
// arkworks' limbs, so values are copied between host and device unchanged. Values are always
// fully reduced (< p), as arkworks keeps them.
//
// Multiplication is CIOS Montgomery multiplication on 16 limbs of 16 bits held in u32: every
// step computes t + a*b + carry <= (2^16-1) + (2^16-1)^2 + (2^16-1) = 2^32 - 1, so it fits a
// u32 without 64-bit integers (which WGSL lacks), and 16 x 16 bits keeps R = 2^256. Both moduli
// leave the top bit of the top limb clear (p < 2^254), so the reduction may use the "no-carry"
// variant (no extra limb of carry per step; Gnark's optimisation) and ends below 2p.
//
// Limb arrays are only ever indexed by constants (straight-line code within a step), so the
// limbs stay in registers on every driver.

alias FIELD_t = array<u32, 8>;
const FIELD_WORDS: u32 = 8u;

fn FIELD_zero() -> FIELD_t {
    return FIELD_t();
}

fn FIELD_one() -> FIELD_t {
    return FIELD_ONE;
}

fn FIELD_is_zero(a: FIELD_t) -> bool {
    return (a[0] | a[1] | a[2] | a[3] | a[4] | a[5] | a[6] | a[7]) == 0u;
}

fn FIELD_eq(a: FIELD_t, b: FIELD_t) -> bool {
    return ((a[0] ^ b[0]) | (a[1] ^ b[1]) | (a[2] ^ b[2]) | (a[3] ^ b[3])
        | (a[4] ^ b[4]) | (a[5] ^ b[5]) | (a[6] ^ b[6]) | (a[7] ^ b[7])) == 0u;
}

// a mod p for a < 2p.
fn FIELD_reduce(a: FIELD_t) -> FIELD_t {
    let d0 = sbb(a[0], FIELD_P32[0], 0u);
    let d1 = sbb(a[1], FIELD_P32[1], d0.y);
    let d2 = sbb(a[2], FIELD_P32[2], d1.y);
    let d3 = sbb(a[3], FIELD_P32[3], d2.y);
    let d4 = sbb(a[4], FIELD_P32[4], d3.y);
    let d5 = sbb(a[5], FIELD_P32[5], d4.y);
    let d6 = sbb(a[6], FIELD_P32[6], d5.y);
    let d7 = sbb(a[7], FIELD_P32[7], d6.y);
    if (d7.y != 0u) {
        return a;
    }
    return FIELD_t(d0.x, d1.x, d2.x, d3.x, d4.x, d5.x, d6.x, d7.x);
}

fn FIELD_add(a: FIELD_t, b: FIELD_t) -> FIELD_t {
    // a + b < 2p < 2^255: nothing carries out of word 7.
    let s0 = adc(a[0], b[0], 0u);
    let s1 = adc(a[1], b[1], s0.y);
    let s2 = adc(a[2], b[2], s1.y);
    let s3 = adc(a[3], b[3], s2.y);
    let s4 = adc(a[4], b[4], s3.y);
    let s5 = adc(a[5], b[5], s4.y);
    let s6 = adc(a[6], b[6], s5.y);
    let s7 = adc(a[7], b[7], s6.y);
    return FIELD_reduce(FIELD_t(s0.x, s1.x, s2.x, s3.x, s4.x, s5.x, s6.x, s7.x));
}

fn FIELD_dbl(a: FIELD_t) -> FIELD_t {
    return FIELD_add(a, a);
}

fn FIELD_sub(a: FIELD_t, b: FIELD_t) -> FIELD_t {
    let d0 = sbb(a[0], b[0], 0u);
    let d1 = sbb(a[1], b[1], d0.y);
    let d2 = sbb(a[2], b[2], d1.y);
    let d3 = sbb(a[3], b[3], d2.y);
    let d4 = sbb(a[4], b[4], d3.y);
    let d5 = sbb(a[5], b[5], d4.y);
    let d6 = sbb(a[6], b[6], d5.y);
    let d7 = sbb(a[7], b[7], d6.y);
    if (d7.y == 0u) {
        return FIELD_t(d0.x, d1.x, d2.x, d3.x, d4.x, d5.x, d6.x, d7.x);
    }
    // a < b: a - b + 2^256 + p wraps past 2^256 to a - b + p.
    let s0 = adc(d0.x, FIELD_P32[0], 0u);
    let s1 = adc(d1.x, FIELD_P32[1], s0.y);
    let s2 = adc(d2.x, FIELD_P32[2], s1.y);
    let s3 = adc(d3.x, FIELD_P32[3], s2.y);
    let s4 = adc(d4.x, FIELD_P32[4], s3.y);
    let s5 = adc(d5.x, FIELD_P32[5], s4.y);
    let s6 = adc(d6.x, FIELD_P32[6], s5.y);
    let s7 = adc(d7.x, FIELD_P32[7], s6.y);
    return FIELD_t(s0.x, s1.x, s2.x, s3.x, s4.x, s5.x, s6.x, s7.x);
}

// -a (0 stays 0).
fn FIELD_neg(a: FIELD_t) -> FIELD_t {
    return FIELD_sub(FIELD_zero(), a);
}

// The 16 limbs of 16 bits of a, little-endian.
fn FIELD_unpack(a: FIELD_t) -> array<u32, 16> {
    return array<u32, 16>(
        a[0] & 0xffffu, a[0] >> 16u,
        a[1] & 0xffffu, a[1] >> 16u,
        a[2] & 0xffffu, a[2] >> 16u,
        a[3] & 0xffffu, a[3] >> 16u,
        a[4] & 0xffffu, a[4] >> 16u,
        a[5] & 0xffffu, a[5] >> 16u,
        a[6] & 0xffffu, a[6] >> 16u,
        a[7] & 0xffffu, a[7] >> 16u);
}

// One outer step of no-carry CIOS: (t + x*bi + m*p) / 2^16, with m chosen so the division is
// exact. t < 2p on entry and exit (limbs < 2^16).
fn FIELD_step(t: array<u32, 16>, x: array<u32, 16>, bi: u32) -> array<u32, 16> {
    var r: array<u32, 16>;
    var s = t[0] + x[0] * bi;
    var a = s >> 16u;
    let m = ((s & 0xffffu) * FIELD_INV) & 0xffffu;
    var c = ((s & 0xffffu) + m * FIELD_P16[0]) >> 16u;
    s = t[1] + x[1] * bi + a;
    a = s >> 16u;
    s = (s & 0xffffu) + m * FIELD_P16[1] + c;
    c = s >> 16u;
    r[0] = s & 0xffffu;
    s = t[2] + x[2] * bi + a;
    a = s >> 16u;
    s = (s & 0xffffu) + m * FIELD_P16[2] + c;
    c = s >> 16u;
    r[1] = s & 0xffffu;
    s = t[3] + x[3] * bi + a;
    a = s >> 16u;
    s = (s & 0xffffu) + m * FIELD_P16[3] + c;
    c = s >> 16u;
    r[2] = s & 0xffffu;
    s = t[4] + x[4] * bi + a;
    a = s >> 16u;
    s = (s & 0xffffu) + m * FIELD_P16[4] + c;
    c = s >> 16u;
    r[3] = s & 0xffffu;
    s = t[5] + x[5] * bi + a;
    a = s >> 16u;
    s = (s & 0xffffu) + m * FIELD_P16[5] + c;
    c = s >> 16u;
    r[4] = s & 0xffffu;
    s = t[6] + x[6] * bi + a;
    a = s >> 16u;
    s = (s & 0xffffu) + m * FIELD_P16[6] + c;
    c = s >> 16u;
    r[5] = s & 0xffffu;
    s = t[7] + x[7] * bi + a;
    a = s >> 16u;
    s = (s & 0xffffu) + m * FIELD_P16[7] + c;
    c = s >> 16u;
    r[6] = s & 0xffffu;
    s = t[8] + x[8] * bi + a;
    a = s >> 16u;
    s = (s & 0xffffu) + m * FIELD_P16[8] + c;
    c = s >> 16u;
    r[7] = s & 0xffffu;
    s = t[9] + x[9] * bi + a;
    a = s >> 16u;
    s = (s & 0xffffu) + m * FIELD_P16[9] + c;
    c = s >> 16u;
    r[8] = s & 0xffffu;
    s = t[10] + x[10] * bi + a;
    a = s >> 16u;
    s = (s & 0xffffu) + m * FIELD_P16[10] + c;
    c = s >> 16u;
    r[9] = s & 0xffffu;
    s = t[11] + x[11] * bi + a;
    a = s >> 16u;
    s = (s & 0xffffu) + m * FIELD_P16[11] + c;
    c = s >> 16u;
    r[10] = s & 0xffffu;
    s = t[12] + x[12] * bi + a;
    a = s >> 16u;
    s = (s & 0xffffu) + m * FIELD_P16[12] + c;
    c = s >> 16u;
    r[11] = s & 0xffffu;
    s = t[13] + x[13] * bi + a;
    a = s >> 16u;
    s = (s & 0xffffu) + m * FIELD_P16[13] + c;
    c = s >> 16u;
    r[12] = s & 0xffffu;
    s = t[14] + x[14] * bi + a;
    a = s >> 16u;
    s = (s & 0xffffu) + m * FIELD_P16[14] + c;
    c = s >> 16u;
    r[13] = s & 0xffffu;
    s = t[15] + x[15] * bi + a;
    a = s >> 16u;
    s = (s & 0xffffu) + m * FIELD_P16[15] + c;
    c = s >> 16u;
    r[14] = s & 0xffffu;
    r[15] = c + a;
    return r;
}

// a * b / R mod p (Montgomery multiplication): 16 steps, four per iteration of a loop.
//
// Why a loop of four: Mesa's NIR (lavapipe, RADV) inlines every function, so the body is
// repeated at every call site, and a fully unrolled multiplication made the G2 kernels too
// big to compile in reasonable time on lavapipe. But llvmpipe (lavapipe's back end, Mesa 22)
// also stops every loop of an invocation once all its loops together have run 65535
// iterations (its guard against endless loops), silently, so a loop per step (17 counted
// iterations per multiplication) ran out within a few thousand multiplications. Four
// iterations (five counted) keep both in bounds; bn254_common.wgsl gives the budget.
// b's words are shifted out of a register copy rather than indexed, so no array is ever
// indexed dynamically.
fn FIELD_mul(a: FIELD_t, b: FIELD_t) -> FIELD_t {
    let x = FIELD_unpack(a);
    var y = b;
    var t = array<u32, 16>();
    for (var i = 0u; i < 4u; i++) {
        t = FIELD_step(t, x, y[0] & 0xffffu);
        t = FIELD_step(t, x, y[0] >> 16u);
        t = FIELD_step(t, x, y[1] & 0xffffu);
        t = FIELD_step(t, x, y[1] >> 16u);
        y = FIELD_t(y[2], y[3], y[4], y[5], y[6], y[7], 0u, 0u);
    }
    return FIELD_reduce(FIELD_t(
        t[0] | (t[1] << 16u),
        t[2] | (t[3] << 16u),
        t[4] | (t[5] << 16u),
        t[6] | (t[7] << 16u),
        t[8] | (t[9] << 16u),
        t[10] | (t[11] << 16u),
        t[12] | (t[13] << 16u),
        t[14] | (t[15] << 16u)));
}

fn FIELD_sqr(a: FIELD_t) -> FIELD_t {
    return FIELD_mul(a, a);
}

// The canonical value of a Montgomery-form element: a / R mod p.
fn FIELD_from_montgomery(a: FIELD_t) -> FIELD_t {
    return FIELD_mul(a, FIELD_t(1u, 0u, 0u, 0u, 0u, 0u, 0u, 0u));
}

// The element at words o .. o+8 of a scratch block.
fn FIELD_from_block(b: block_t, o: u32) -> FIELD_t {
    return FIELD_t(b[o], b[o + 1u], b[o + 2u], b[o + 3u], b[o + 4u], b[o + 5u], b[o + 6u], b[o + 7u]);
}

fn FIELD_to_block(b: ptr<function, block_t>, o: u32, v: FIELD_t) {
    (*b)[o + 0u] = v[0];
    (*b)[o + 1u] = v[1];
    (*b)[o + 2u] = v[2];
    (*b)[o + 3u] = v[3];
    (*b)[o + 4u] = v[4];
    (*b)[o + 5u] = v[5];
    (*b)[o + 6u] = v[6];
    (*b)[o + 7u] = v[7];
}

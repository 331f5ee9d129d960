/*
 * BN254 field arithmetic shared by the OpenCL C and CUDA C proving kernels: Fq (the base
 * field of G1 and G2), Fq2 = Fq[u]/(u^2 + 1) (G2's coordinates) and Fr (the scalar field, for
 * the NTT). An element is 8 little-endian 32-bit words in Montgomery form with R = 2^256,
 * which is exactly arkworks' 4 x u64 layout, so values cross between host and device as raw
 * bytes (docs/gpu-proving.md).
 *
 * The runtime prelude (bn254.cl for OpenCL, ../cuda/bn254.cu for CUDA) defines DEV (a device
 * function qualifier), GLOBAL, KERNEL, GID, ATOMIC_INC and the carry-chain primitives
 * MAD_LO_CC, MADC_LO_CC, MAD_HI_CC, MADC_HI_CC, ADDC_CC, ADDC with CARRY_DECL. On CUDA those
 * are single PTX instructions (mad.lo.cc.u32, madc.hi.cc.u32, ...) whose carry flag links
 * them; on OpenCL they are the same operations with the flag in a variable. The Montgomery
 * multiplication below is written once in those terms, so the instruction sequence a GPU runs
 * under CUDA is the one the OpenCL tests check on the CPU (pocl).
 */

typedef struct {
    uint w[8];
} fe_t;

typedef struct {
    fe_t c0, c1;
} fe2_t;

/* Moduli, -m^-1 mod 2^32, and R mod m (Montgomery one). */
#define FQ_MOD 0xd87cfd47u, 0x3c208c16u, 0x6871ca8du, 0x97816a91u, 0x8181585du, 0xb85045b6u, 0xe131a029u, 0x30644e72u
#define FQ_INV 0xe4866389u
#define FQ_ONE 0xc58f0d9du, 0xd35d438du, 0xf5c70b3du, 0x0a78eb28u, 0x7879462cu, 0x666ea36fu, 0x9a07df2fu, 0x0e0a77c1u
#define FR_MOD 0xf0000001u, 0x43e1f593u, 0x79b97091u, 0x2833e848u, 0x8181585du, 0xb85045b6u, 0xe131a029u, 0x30644e72u
#define FR_INV 0xefffffffu
#define FR_ONE 0x4ffffffbu, 0xac96341cu, 0x9f60cd29u, 0x36fc7695u, 0x7879462eu, 0x666ea36fu, 0x9a07df2fu, 0x0e0a77c1u

#define MOD_PARAMS uint m0, uint m1, uint m2, uint m3, uint m4, uint m5, uint m6, uint m7

DEV void fe_set(fe_t *r, uint a0, uint a1, uint a2, uint a3, uint a4, uint a5, uint a6, uint a7) {
    r->w[0] = a0; r->w[1] = a1; r->w[2] = a2; r->w[3] = a3;
    r->w[4] = a4; r->w[5] = a5; r->w[6] = a6; r->w[7] = a7;
}

DEV void fe_zero(fe_t *r) {
    for (int i = 0; i < 8; i++) r->w[i] = 0;
}

DEV int fe_is_zero(const fe_t *a) {
    uint x = 0;
    for (int i = 0; i < 8; i++) x |= a->w[i];
    return x == 0;
}

DEV void fe_load(fe_t *r, GLOBAL const uint *src) {
    for (int i = 0; i < 8; i++) r->w[i] = src[i];
}

DEV void fe_store(GLOBAL uint *dst, const fe_t *a) {
    for (int i = 0; i < 8; i++) dst[i] = a->w[i];
}

/* t >= m ? t - m : t, for t < 2m. */
DEV void mod_reduce_once(uint *t, MOD_PARAMS) {
    uint m[8] = {m0, m1, m2, m3, m4, m5, m6, m7};
    uint d[8];
    ulong borrow = 0;
    for (int i = 0; i < 8; i++) {
        ulong s = (ulong)t[i] - m[i] - borrow;
        d[i] = (uint)s;
        borrow = (s >> 32) & 1;
    }
    /* No borrow out: t >= m, take the difference. */
    if (!borrow)
        for (int i = 0; i < 8; i++) t[i] = d[i];
}

/* r = a + b mod m (a, b < m < 2^254, so the sum fits 8 words). */
DEV void mod_add(fe_t *r, const fe_t *a, const fe_t *b, MOD_PARAMS) {
    uint t[8];
    ulong c = 0;
    for (int i = 0; i < 8; i++) {
        c += (ulong)a->w[i] + b->w[i];
        t[i] = (uint)c;
        c >>= 32;
    }
    mod_reduce_once(t, m0, m1, m2, m3, m4, m5, m6, m7);
    for (int i = 0; i < 8; i++) r->w[i] = t[i];
}

/* r = a - b mod m. */
DEV void mod_sub(fe_t *r, const fe_t *a, const fe_t *b, MOD_PARAMS) {
    uint m[8] = {m0, m1, m2, m3, m4, m5, m6, m7};
    uint t[8];
    ulong borrow = 0;
    for (int i = 0; i < 8; i++) {
        ulong s = (ulong)a->w[i] - b->w[i] - borrow;
        t[i] = (uint)s;
        borrow = (s >> 32) & 1;
    }
    if (borrow) {
        ulong c = 0;
        for (int i = 0; i < 8; i++) {
            c += (ulong)t[i] + m[i];
            t[i] = (uint)c;
            c >>= 32;
        }
    }
    for (int i = 0; i < 8; i++) r->w[i] = t[i];
}

/*
 * t[0..10] += x * y[0..8]: the low halves of the eight products in one carry chain, the high
 * halves (one word up) in a second. Written out, not looped, so that on CUDA each line is one
 * carry-linked instruction and nothing between them can clobber the flag.
 */
#define MUL_ROW(t, x, y0, y1, y2, y3, y4, y5, y6, y7)                                      \
    MAD_LO_CC(t[0], x, y0, t[0]);                                                         \
    MADC_LO_CC(t[1], x, y1, t[1]);                                                        \
    MADC_LO_CC(t[2], x, y2, t[2]);                                                        \
    MADC_LO_CC(t[3], x, y3, t[3]);                                                        \
    MADC_LO_CC(t[4], x, y4, t[4]);                                                        \
    MADC_LO_CC(t[5], x, y5, t[5]);                                                        \
    MADC_LO_CC(t[6], x, y6, t[6]);                                                        \
    MADC_LO_CC(t[7], x, y7, t[7]);                                                        \
    ADDC_CC(t[8], t[8], 0u);                                                              \
    ADDC(t[9], t[9], 0u);                                                                 \
    MAD_HI_CC(t[1], x, y0, t[1]);                                                         \
    MADC_HI_CC(t[2], x, y1, t[2]);                                                        \
    MADC_HI_CC(t[3], x, y2, t[3]);                                                        \
    MADC_HI_CC(t[4], x, y3, t[4]);                                                        \
    MADC_HI_CC(t[5], x, y4, t[5]);                                                        \
    MADC_HI_CC(t[6], x, y5, t[6]);                                                        \
    MADC_HI_CC(t[7], x, y6, t[7]);                                                        \
    MADC_HI_CC(t[8], x, y7, t[8]);                                                        \
    ADDC(t[9], t[9], 0u);

/*
 * Montgomery product a * b * 2^-256 mod m (CIOS, 32-bit words). Each round adds a * b[i],
 * then the multiple of m that clears the lowest word, and drops that word. With a, b < m the
 * running value stays below 2m, so t[8] and t[9] only ever hold carries and one conditional
 * subtraction finishes. r may alias a or b.
 */
DEV void mont_mul(fe_t *r, const fe_t *a, const fe_t *b, MOD_PARAMS, uint inv) {
    uint t[10];
    CARRY_DECL
    for (int i = 0; i < 10; i++) t[i] = 0;
    const uint a0 = a->w[0], a1 = a->w[1], a2 = a->w[2], a3 = a->w[3];
    const uint a4 = a->w[4], a5 = a->w[5], a6 = a->w[6], a7 = a->w[7];
#pragma unroll
    for (int i = 0; i < 8; i++) {
        const uint bi = b->w[i];
        MUL_ROW(t, bi, a0, a1, a2, a3, a4, a5, a6, a7)
        const uint q = t[0] * inv;
        MUL_ROW(t, q, m0, m1, m2, m3, m4, m5, m6, m7)
        /* t[0] is now zero: divide by 2^32. */
        for (int j = 0; j < 9; j++) t[j] = t[j + 1];
        t[9] = 0;
    }
    mod_reduce_once(t, m0, m1, m2, m3, m4, m5, m6, m7);
    for (int i = 0; i < 8; i++) r->w[i] = t[i];
}

/* Fq */
DEV void fq_add(fe_t *r, const fe_t *a, const fe_t *b) { mod_add(r, a, b, FQ_MOD); }
DEV void fq_sub(fe_t *r, const fe_t *a, const fe_t *b) { mod_sub(r, a, b, FQ_MOD); }
DEV void fq_mul(fe_t *r, const fe_t *a, const fe_t *b) { mont_mul(r, a, b, FQ_MOD, FQ_INV); }
DEV void fq_sqr(fe_t *r, const fe_t *a) { mont_mul(r, a, a, FQ_MOD, FQ_INV); }
DEV void fq_one(fe_t *r) { fe_set(r, FQ_ONE); }

/* Fr */
DEV void fr_add(fe_t *r, const fe_t *a, const fe_t *b) { mod_add(r, a, b, FR_MOD); }
DEV void fr_sub(fe_t *r, const fe_t *a, const fe_t *b) { mod_sub(r, a, b, FR_MOD); }
DEV void fr_mul(fe_t *r, const fe_t *a, const fe_t *b) { mont_mul(r, a, b, FR_MOD, FR_INV); }
/* Montgomery form -> canonical: a * 1 * R^-1. */
DEV void fr_from_mont(fe_t *r, const fe_t *a) {
    fe_t one;
    fe_set(&one, 1u, 0u, 0u, 0u, 0u, 0u, 0u, 0u);
    mont_mul(r, a, &one, FR_MOD, FR_INV);
}

/* Fq2 = Fq[u]/(u^2 + 1) */
DEV void fq2_add(fe2_t *r, const fe2_t *a, const fe2_t *b) {
    fq_add(&r->c0, &a->c0, &b->c0);
    fq_add(&r->c1, &a->c1, &b->c1);
}
DEV void fq2_sub(fe2_t *r, const fe2_t *a, const fe2_t *b) {
    fq_sub(&r->c0, &a->c0, &b->c0);
    fq_sub(&r->c1, &a->c1, &b->c1);
}
/* Karatsuba: three Fq products. */
DEV_NOINLINE void fq2_mul(fe2_t *r, const fe2_t *a, const fe2_t *b) {
    fe_t v0, v1, sa, sb;
    fq_mul(&v0, &a->c0, &b->c0);
    fq_mul(&v1, &a->c1, &b->c1);
    fq_add(&sa, &a->c0, &a->c1);
    fq_add(&sb, &b->c0, &b->c1);
    fq_mul(&sa, &sa, &sb);
    fq_sub(&sa, &sa, &v0);
    fq_sub(&r->c1, &sa, &v1);
    fq_sub(&r->c0, &v0, &v1);
}
/* (c0 + c1 u)^2 = (c0 + c1)(c0 - c1) + 2 c0 c1 u: two Fq products. */
DEV_NOINLINE void fq2_sqr(fe2_t *r, const fe2_t *a) {
    fe_t s, d, p;
    fq_add(&s, &a->c0, &a->c1);
    fq_sub(&d, &a->c0, &a->c1);
    fq_mul(&p, &a->c0, &a->c1);
    fq_mul(&r->c0, &s, &d);
    fq_add(&r->c1, &p, &p);
}
DEV int fq2_is_zero(const fe2_t *a) { return fe_is_zero(&a->c0) && fe_is_zero(&a->c1); }
DEV void fq2_zero(fe2_t *r) {
    fe_zero(&r->c0);
    fe_zero(&r->c1);
}
DEV void fq2_one(fe2_t *r) {
    fq_one(&r->c0);
    fe_zero(&r->c1);
}
DEV void fq2_load(fe2_t *r, GLOBAL const uint *src) {
    fe_load(&r->c0, src);
    fe_load(&r->c1, src + 8);
}
DEV void fq2_store(GLOBAL uint *dst, const fe2_t *a) {
    fe_store(dst, &a->c0);
    fe_store(dst + 8, &a->c1);
}

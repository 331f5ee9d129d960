/*
 * Curve arithmetic and the MSM bucket kernels, written once over a field FE and instantiated
 * for G1 (bn254_g1.h) and G2 (bn254_g2.h): the field and the names come from those macros.
 *
 * Points accumulate in XYZZ coordinates (x = X/ZZ, y = Y/ZZZ; ZZ = 0 is the identity): a mixed
 * addition of an affine base costs 8 multiplications + 2 squarings and needs no inversion.
 * Formulas: add-2008-s, madd-2008-s, dbl-2008-s-1, mdbl-2008-s-1 (a = 0), with the cases they
 * exclude (identity, equal points, opposite points) handled here, since real witnesses repeat
 * bases and scalars.
 */

typedef struct {
    FE x, y;
} CURVE_FN(affine);

typedef struct {
    FE x, y, zz, zzz;
} CURVE_FN(xyzz);

DEV void CURVE_FN(set_identity)(CURVE_FN(xyzz) *p) {
    FE_ZERO(&p->x);
    FE_ZERO(&p->y);
    FE_ZERO(&p->zz);
    FE_ZERO(&p->zzz);
}

DEV void CURVE_FN(load_xyzz)(CURVE_FN(xyzz) *p, GLOBAL const uint *src) {
    FE_LOAD(&p->x, src);
    FE_LOAD(&p->y, src + FE_WORDS);
    FE_LOAD(&p->zz, src + 2 * FE_WORDS);
    FE_LOAD(&p->zzz, src + 3 * FE_WORDS);
}

DEV void CURVE_FN(store_xyzz)(GLOBAL uint *dst, const CURVE_FN(xyzz) *p) {
    FE_STORE(dst, &p->x);
    FE_STORE(dst + FE_WORDS, &p->y);
    FE_STORE(dst + 2 * FE_WORDS, &p->zz);
    FE_STORE(dst + 3 * FE_WORDS, &p->zzz);
}

/* p = 2p (dbl-2008-s-1; the identity stays the identity since ZZ3 = V * ZZ1). */
DEV_NOINLINE void CURVE_FN(dbl)(CURVE_FN(xyzz) *p) {
    FE u, v, w, s, m, t;
    FE_ADD(&u, &p->y, &p->y);
    FE_SQR(&v, &u);
    FE_MUL(&w, &u, &v);
    FE_MUL(&s, &p->x, &v);
    FE_SQR(&t, &p->x);
    FE_ADD(&m, &t, &t);
    FE_ADD(&m, &m, &t);
    FE_SQR(&t, &m);
    FE_SUB(&t, &t, &s);
    FE_SUB(&t, &t, &s); /* X3 = M^2 - 2S */
    FE_SUB(&s, &s, &t);
    FE_MUL(&s, &m, &s);
    FE_MUL(&u, &w, &p->y);
    FE_SUB(&p->y, &s, &u); /* Y3 = M(S - X3) - W*Y1 */
    p->x = t;
    FE_MUL(&p->zz, &p->zz, &v);
    FE_MUL(&p->zzz, &p->zzz, &w);
}

/* p = 2q for an affine q (mdbl-2008-s-1). */
DEV_NOINLINE void CURVE_FN(dbl_affine)(CURVE_FN(xyzz) *p, const CURVE_FN(affine) *q) {
    FE u, v, w, s, m, t;
    FE_ADD(&u, &q->y, &q->y);
    FE_SQR(&v, &u);
    FE_MUL(&w, &u, &v);
    FE_MUL(&s, &q->x, &v);
    FE_SQR(&t, &q->x);
    FE_ADD(&m, &t, &t);
    FE_ADD(&m, &m, &t);
    FE_SQR(&t, &m);
    FE_SUB(&t, &t, &s);
    FE_SUB(&t, &t, &s);
    FE_SUB(&s, &s, &t);
    FE_MUL(&s, &m, &s);
    FE_MUL(&u, &w, &q->y);
    FE_SUB(&p->y, &s, &u);
    p->x = t;
    p->zz = v;
    p->zzz = w;
}

/* p += q for an affine q that is not the point at infinity (madd-2008-s). */
DEV_NOINLINE void CURVE_FN(add_affine)(CURVE_FN(xyzz) *p, const CURVE_FN(affine) *q) {
    if (FE_IS_ZERO(&p->zz)) {
        p->x = q->x;
        p->y = q->y;
        FE_ONE(&p->zz);
        FE_ONE(&p->zzz);
        return;
    }
    FE u2, s2, pp, ppp, r, qq, t;
    FE_MUL(&u2, &q->x, &p->zz);
    FE_MUL(&s2, &q->y, &p->zzz);
    FE_SUB(&u2, &u2, &p->x); /* P = U2 - X1 */
    FE_SUB(&r, &s2, &p->y);  /* R = S2 - Y1 */
    if (FE_IS_ZERO(&u2)) {
        if (FE_IS_ZERO(&r))
            CURVE_FN(dbl_affine)(p, q);
        else
            CURVE_FN(set_identity)(p);
        return;
    }
    FE_SQR(&pp, &u2);
    FE_MUL(&ppp, &u2, &pp);
    FE_MUL(&qq, &p->x, &pp);
    FE_SQR(&t, &r);
    FE_SUB(&t, &t, &ppp);
    FE_SUB(&t, &t, &qq);
    FE_SUB(&t, &t, &qq); /* X3 = R^2 - PPP - 2Q */
    FE_SUB(&qq, &qq, &t);
    FE_MUL(&qq, &r, &qq);
    FE_MUL(&s2, &p->y, &ppp);
    FE_SUB(&p->y, &qq, &s2); /* Y3 = R(Q - X3) - Y1*PPP */
    p->x = t;
    FE_MUL(&p->zz, &p->zz, &pp);
    FE_MUL(&p->zzz, &p->zzz, &ppp);
}

/* p += q (add-2008-s). */
DEV_NOINLINE void CURVE_FN(add)(CURVE_FN(xyzz) *p, const CURVE_FN(xyzz) *q) {
    if (FE_IS_ZERO(&q->zz))
        return;
    if (FE_IS_ZERO(&p->zz)) {
        *p = *q;
        return;
    }
    FE u1, u2, s1, s2, pp, ppp, qq, t;
    FE_MUL(&u1, &p->x, &q->zz);
    FE_MUL(&u2, &q->x, &p->zz);
    FE_MUL(&s1, &p->y, &q->zzz);
    FE_MUL(&s2, &q->y, &p->zzz);
    FE_SUB(&u2, &u2, &u1); /* P */
    FE_SUB(&s2, &s2, &s1); /* R */
    if (FE_IS_ZERO(&u2)) {
        if (FE_IS_ZERO(&s2))
            CURVE_FN(dbl)(p);
        else
            CURVE_FN(set_identity)(p);
        return;
    }
    FE_SQR(&pp, &u2);
    FE_MUL(&ppp, &u2, &pp);
    FE_MUL(&qq, &u1, &pp);
    FE_SQR(&t, &s2);
    FE_SUB(&t, &t, &ppp);
    FE_SUB(&t, &t, &qq);
    FE_SUB(&t, &t, &qq); /* X3 */
    FE_SUB(&qq, &qq, &t);
    FE_MUL(&qq, &s2, &qq);
    FE_MUL(&s1, &s1, &ppp);
    FE_SUB(&p->y, &qq, &s1); /* Y3 */
    p->x = t;
    FE_MUL(&p->zz, &p->zz, &q->zz);
    FE_MUL(&p->zz, &p->zz, &pp);
    FE_MUL(&p->zzz, &p->zzz, &q->zzz);
    FE_MUL(&p->zzz, &p->zzz, &ppp);
}

/* Base `ref & 0x7fffffff`, negated when bit 31 is set (a negative signed digit). */
DEV void CURVE_FN(load_base)(CURVE_FN(affine) *q, GLOBAL const uint *bases, uint ref) {
    GLOBAL const uint *src = bases + (ulong)(ref & 0x7fffffffu) * (2 * FE_WORDS);
    FE_LOAD(&q->x, src);
    FE_LOAD(&q->y, src + FE_WORDS);
    if (ref >> 31) {
        FE z;
        FE_ZERO(&z);
        FE_SUB(&q->y, &z, &q->y);
    }
}

/*
 * Where a run's sum goes (docs/gpu-proving.md): a run that neither starts nor ends its chunk
 * is a whole bucket; the chunk's first and last runs become entries 2t and 2t+1 of the next
 * level's list (a lone run also writes the identity at 2t+1, so that list has no holes); on
 * the last level every run is whole.
 */
DEV void CURVE_FN(emit_run)(const CURVE_FN(xyzz) *acc, uint key, uint t, int first, int last_run,
                            uint last_level, GLOBAL uint *bucket_sums, GLOBAL uint *out_keys,
                            GLOBAL uint *out_points) {
    const ulong pw = 4 * FE_WORDS;
    if (last_level || (!first && !last_run)) {
        CURVE_FN(store_xyzz)(bucket_sums + (ulong)key * pw, acc);
        return;
    }
    if (first) {
        out_keys[2 * t] = key;
        CURVE_FN(store_xyzz)(out_points + (ulong)(2 * t) * pw, acc);
        if (last_run) {
            CURVE_FN(xyzz) id;
            CURVE_FN(set_identity)(&id);
            out_keys[2 * t + 1] = key;
            CURVE_FN(store_xyzz)(out_points + (ulong)(2 * t + 1) * pw, &id);
        }
    } else {
        out_keys[2 * t + 1] = key;
        CURVE_FN(store_xyzz)(out_points + (ulong)(2 * t + 1) * pw, acc);
    }
}

/* First level: sums affine bases (through `refs`) run by run over chunks of K entries. */
KERNEL void CURVE_FN(acc_bases)(GLOBAL const uint *bases, GLOBAL const uint *keys,
                                GLOBAL const uint *refs, GLOBAL uint *bucket_sums,
                                GLOBAL uint *out_keys, GLOBAL uint *out_points, uint len, uint k,
                                uint last_level) {
    const uint t = GID;
    if ((ulong)t * k >= len)
        return;
    const uint start = t * k;
    const uint end = min(start + k, len);
    uint i = start;
    while (i < end) {
        const uint key = keys[i];
        CURVE_FN(xyzz) acc;
        CURVE_FN(set_identity)(&acc);
        uint j = i;
        while (j < end && keys[j] == key) {
            CURVE_FN(affine) q;
            CURVE_FN(load_base)(&q, bases, refs[j]);
            CURVE_FN(add_affine)(&acc, &q);
            j++;
        }
        CURVE_FN(emit_run)(&acc, key, t, i == start, j == end, last_level, bucket_sums, out_keys,
                           out_points);
        i = j;
    }
}

/* Later levels: the same over the previous level's (key, XYZZ partial sum) list. */
KERNEL void CURVE_FN(acc_partials)(GLOBAL const uint *in_keys, GLOBAL const uint *in_points,
                                   GLOBAL uint *bucket_sums, GLOBAL uint *out_keys,
                                   GLOBAL uint *out_points, uint len, uint k, uint last_level) {
    const uint t = GID;
    if ((ulong)t * k >= len)
        return;
    const uint start = t * k;
    const uint end = min(start + k, len);
    uint i = start;
    while (i < end) {
        const uint key = in_keys[i];
        CURVE_FN(xyzz) acc;
        CURVE_FN(set_identity)(&acc);
        uint j = i;
        while (j < end && in_keys[j] == key) {
            CURVE_FN(xyzz) q;
            CURVE_FN(load_xyzz)(&q, in_points + (ulong)j * (4 * FE_WORDS));
            CURVE_FN(add)(&acc, &q);
            j++;
        }
        CURVE_FN(emit_run)(&acc, key, t, i == start, j == end, last_level, bucket_sums, out_keys,
                           out_points);
        i = j;
    }
}

/*
 * Bucket reduction of one segment of one window: Σ (j + 1)·B[j] over the segment's buckets
 * j = s·L .. s·L + L - 1, as the running-sum trick within the segment plus s·L times the
 * segment's plain sum (double-and-add; s·L < 2^16).
 */
KERNEL void CURVE_FN(reduce_segments)(GLOBAL const uint *bucket_sums, GLOBAL uint *segment_sums,
                                      uint buckets, uint segments, uint windows) {
    const uint t = GID;
    if (t >= windows * segments)
        return;
    const uint w = t / segments;
    const uint s = t % segments;
    const uint len = buckets / segments;
    const ulong pw = 4 * FE_WORDS;
    GLOBAL const uint *base = bucket_sums + ((ulong)w * buckets + (ulong)s * len) * pw;
    CURVE_FN(xyzz) running, acc, b;
    CURVE_FN(set_identity)(&running);
    CURVE_FN(set_identity)(&acc);
    for (uint j = len; j-- > 0;) {
        CURVE_FN(load_xyzz)(&b, base + (ulong)j * pw);
        CURVE_FN(add)(&running, &b);
        CURVE_FN(add)(&acc, &running);
    }
    const uint offset = s * len;
    if (offset != 0) {
        CURVE_FN(xyzz) m;
        CURVE_FN(set_identity)(&m);
        int top = 31;
        while (!((offset >> top) & 1u))
            top--;
        for (int bit = top; bit >= 0; bit--) {
            CURVE_FN(dbl)(&m);
            if ((offset >> bit) & 1u)
                CURVE_FN(add)(&m, &running);
        }
        CURVE_FN(add)(&acc, &m);
    }
    CURVE_FN(store_xyzz)(segment_sums + (ulong)t * pw, &acc);
}

/* One level of adding up each window's partial sums (its segments' sums at first): window w
 * has `per_window` of them in `in`; output j of window w is the sum of its inputs
 * j·group .. j·group+group (fewer at the end), written at w·⌈per_window/group⌉ + j. The host
 * repeats this until one sum per window is left: a tree, so the dependent additions are
 * group·log_group(segments), not one per segment. */
KERNEL void CURVE_FN(window_sum)(GLOBAL const uint *in, GLOBAL uint *out, uint per_window,
                                 uint windows, uint group) {
    const uint t = GID;
    const uint outs = (per_window + group - 1) / group;
    if (t >= windows * outs)
        return;
    const uint w = t / outs;
    const uint start = (t % outs) * group;
    const uint end = min(start + group, per_window);
    const ulong pw = 4 * FE_WORDS;
    CURVE_FN(xyzz) acc, b;
    CURVE_FN(set_identity)(&acc);
    for (uint s = start; s < end; s++) {
        CURVE_FN(load_xyzz)(&b, in + ((ulong)w * per_window + s) * pw);
        CURVE_FN(add)(&acc, &b);
    }
    CURVE_FN(store_xyzz)(out + (ulong)t * pw, &acc);
}

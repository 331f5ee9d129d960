/*
 * The curve-independent proving kernels: the scalar side of the MSM (signed-digit windows,
 * counting sort of the (bucket, point) entries), the radix-2 NTT over Fr, the quotient
 * A·B − C, and the field test kernels. Buffers and parameters: docs/gpu-proving.md.
 */

/* Bits pos .. pos + c of a 256-bit scalar (c <= 16; bits past 255 read as zero). */
DEV uint scalar_bits(const uint *s, uint pos, uint c) {
    const uint w = pos >> 5;
    const uint b = pos & 31;
    if (w >= 8)
        return 0;
    ulong v = s[w];
    if (w + 1 < 8)
        v |= (ulong)s[w + 1] << 32;
    return (uint)(v >> b) & ((1u << c) - 1u);
}

DEV int msm_skipped(GLOBAL const uint *skip, uint i) { return (skip[i >> 5] >> (i & 31)) & 1u; }

/*
 * Window w's signed digit of scalar s, given the carry from window w - 1: a value above
 * 2^(c-1) becomes value - 2^c and carries one into the next window. Returns the magnitude
 * (0 for no entry) and sets *neg.
 */
DEV uint msm_digit(const uint *s, uint w, uint c, uint buckets, uint *carry, uint *neg) {
    const uint v = scalar_bits(s, w * c, c) + *carry;
    if (v > buckets) {
        *carry = 1;
        *neg = 1;
        return (1u << c) - v;
    }
    *carry = 0;
    *neg = 0;
    return v;
}

KERNEL void msm_count(GLOBAL const uint *scalars, GLOBAL const uint *skip, GLOBAL uint *counts,
                      uint n, uint c, uint windows, uint buckets, uint first) {
    const uint i = GID;
    if (i >= n || msm_skipped(skip, i))
        return;
    uint s[8];
    for (int k = 0; k < 8; k++) s[k] = scalars[((ulong)first + i) * 8 + k];
    uint carry = 0, neg;
    for (uint w = 0; w < windows; w++) {
        const uint d = msm_digit(s, w, c, buckets, &carry, &neg);
        if (d != 0)
            ATOMIC_INC(&counts[w * buckets + d - 1]);
    }
}

KERNEL void msm_scan_blocks(GLOBAL uint *counts, GLOBAL uint *block_sums, uint total) {
    const uint b = GID;
    const ulong start = (ulong)b * 256;
    if (start >= total)
        return;
    const uint end = (uint)min(start + 256, (ulong)total);
    uint sum = 0;
    for (uint g = (uint)start; g < end; g++) {
        const uint v = counts[g];
        counts[g] = sum;
        sum += v;
    }
    block_sums[b] = sum;
}

KERNEL void msm_scan_top(GLOBAL uint *block_sums, GLOBAL uint *total_out, uint blocks) {
    if (GID != 0)
        return;
    uint sum = 0;
    for (uint b = 0; b < blocks; b++) {
        const uint v = block_sums[b];
        block_sums[b] = sum;
        sum += v;
    }
    total_out[0] = sum;
}

KERNEL void msm_scan_add(GLOBAL uint *counts, GLOBAL const uint *block_sums, GLOBAL uint *cursor,
                         uint total) {
    const uint g = GID;
    if (g >= total)
        return;
    const uint o = counts[g] + block_sums[g >> 8];
    counts[g] = o;
    cursor[g] = o;
}

KERNEL void msm_scatter(GLOBAL const uint *scalars, GLOBAL const uint *skip, GLOBAL uint *cursor,
                        GLOBAL uint *keys, GLOBAL uint *refs, uint n, uint c, uint windows,
                        uint buckets, uint first) {
    const uint i = GID;
    if (i >= n || msm_skipped(skip, i))
        return;
    uint s[8];
    for (int k = 0; k < 8; k++) s[k] = scalars[((ulong)first + i) * 8 + k];
    uint carry = 0, neg;
    for (uint w = 0; w < windows; w++) {
        const uint d = msm_digit(s, w, c, buckets, &carry, &neg);
        if (d != 0) {
            const uint g = w * buckets + d - 1;
            const uint p = ATOMIC_INC(&cursor[g]);
            keys[p] = g;
            refs[p] = i | (neg << 31);
        }
    }
}

/* NTT over Fr. (`half` is a type in OpenCL C: the butterfly distance is `span`.) */

KERNEL void fr_bit_reverse(GLOBAL uint *values, uint n, uint log_n) {
    const uint i = GID;
    if (i >= n || log_n == 0)
        return;
    const uint j = BITREV32(i) >> (32 - log_n);
    if (i < j) {
        fe_t a, b;
        fe_load(&a, values + (ulong)i * 8);
        fe_load(&b, values + (ulong)j * 8);
        fe_store(values + (ulong)i * 8, &b);
        fe_store(values + (ulong)j * 8, &a);
    }
}

KERNEL void fr_ntt_stage(GLOBAL uint *values, GLOBAL const uint *twiddles, uint span, uint stride) {
    const uint t = GID;
    if ((ulong)t >= (ulong)span * stride)
        return;
    const uint j = t % span;
    const ulong i = (ulong)(t - j) * 2 + j;
    fe_t a, b, w;
    fe_load(&a, values + i * 8);
    fe_load(&b, values + (i + span) * 8);
    fe_load(&w, twiddles + (ulong)j * stride * 8);
    fr_mul(&b, &b, &w);
    fe_t sum, diff;
    fr_add(&sum, &a, &b);
    fr_sub(&diff, &a, &b);
    fe_store(values + i * 8, &sum);
    fe_store(values + (i + span) * 8, &diff);
}

KERNEL void fr_mul_pointwise(GLOBAL uint *values, GLOBAL const uint *factors, uint n) {
    const uint i = GID;
    if (i >= n)
        return;
    fe_t a, f;
    fe_load(&a, values + (ulong)i * 8);
    fe_load(&f, factors + (ulong)i * 8);
    fr_mul(&a, &a, &f);
    fe_store(values + (ulong)i * 8, &a);
}

KERNEL void fr_quotient(GLOBAL uint *a, GLOBAL const uint *b, GLOBAL const uint *c, uint n) {
    const uint i = GID;
    if (i >= n)
        return;
    fe_t x, y, z;
    fe_load(&x, a + (ulong)i * 8);
    fe_load(&y, b + (ulong)i * 8);
    fe_load(&z, c + (ulong)i * 8);
    fr_mul(&x, &x, &y);
    fr_sub(&x, &x, &z);
    fr_from_mont(&x, &x);
    fe_store(a + (ulong)i * 8, &x);
}

/* Field tests: out[i] = a[i] * b[i]. */

KERNEL void test_fq_mul(GLOBAL const uint *a, GLOBAL const uint *b, GLOBAL uint *out, uint n) {
    const uint i = GID;
    if (i >= n)
        return;
    fe_t x, y;
    fe_load(&x, a + (ulong)i * 8);
    fe_load(&y, b + (ulong)i * 8);
    fq_mul(&x, &x, &y);
    fe_store(out + (ulong)i * 8, &x);
}

KERNEL void test_fr_mul(GLOBAL const uint *a, GLOBAL const uint *b, GLOBAL uint *out, uint n) {
    const uint i = GID;
    if (i >= n)
        return;
    fe_t x, y;
    fe_load(&x, a + (ulong)i * 8);
    fe_load(&y, b + (ulong)i * 8);
    fr_mul(&x, &x, &y);
    fe_store(out + (ulong)i * 8, &x);
}

KERNEL void test_fq2_mul(GLOBAL const uint *a, GLOBAL const uint *b, GLOBAL uint *out, uint n) {
    const uint i = GID;
    if (i >= n)
        return;
    fe2_t x, y;
    fq2_load(&x, a + (ulong)i * 16);
    fq2_load(&y, b + (ulong)i * 16);
    fq2_mul(&x, &x, &y);
    fq2_store(out + (ulong)i * 16, &x);
}

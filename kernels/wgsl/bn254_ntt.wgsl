// The NTT over BN254's scalar field Fr (docs/gpu-proving.md, "NTT"), over the fr_ instance of
// bn254_field.wgsl: values and twiddles in Montgomery form, 8 words each.
//
// Sections (`// @kernel NAME`) are cut as in bn254_msm.wgsl; every storage buffer is
// read_write for the reason given there.

// @kernel fr_bit_reverse
// Swaps values[i] and values[rev(i)] (rev: the low log_n bits reversed) where i < rev(i).
@group(0) @binding(0) var<storage, read_write> values: array<u32>;
@group(0) @binding(1) var<uniform> prm: array<vec4<u32>, 2>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn fr_bit_reverse(@builtin(global_invocation_id) gid: vec3<u32>,
                  @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = thread_index(gid, nwg);
    let n = prm[0].x;
    let log_n = prm[0].y;
    // log_n = 0 (n = 1) has nothing to swap, and a shift by 32 would not be one.
    if (i >= thread_count() || i >= n || log_n == 0u) {
        return;
    }
    let j = reverseBits(i) >> (32u - log_n);
    if (i >= j) {
        return;
    }
    for (var k = 0u; k < 8u; k++) {
        let a = values[8u * i + k];
        values[8u * i + k] = values[8u * j + k];
        values[8u * j + k] = a;
    }
}

// @kernel fr_ntt_stage
// One radix-2 stage: invocation t takes j = t mod half, i = (t - j)*2 + j and replaces
// (v[i], v[i+half]) by (v[i] + w v[i+half], v[i] - w v[i+half]) with w = twiddles[j*stride].
@group(0) @binding(0) var<storage, read_write> values: array<u32>;
@group(0) @binding(1) var<storage, read_write> twiddles: array<u32>;
@group(0) @binding(2) var<uniform> prm: array<vec4<u32>, 2>;

fn load_value(i: u32) -> fr_t {
    let o = 8u * i;
    return fr_t(values[o], values[o + 1u], values[o + 2u], values[o + 3u],
                values[o + 4u], values[o + 5u], values[o + 6u], values[o + 7u]);
}

fn store_value(i: u32, v: fr_t) {
    let o = 8u * i;
    for (var k = 0u; k < 8u; k++) {
        values[o + k] = v[k];
    }
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn fr_ntt_stage(@builtin(global_invocation_id) gid: vec3<u32>,
                @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = thread_index(gid, nwg);
    let half = prm[0].x;
    let stride = prm[0].y;
    if (t >= thread_count() || half == 0u) {
        return;
    }
    let j = t % half;
    let i = (t - j) * 2u + j;
    let o = 8u * j * stride;
    let w = fr_t(twiddles[o], twiddles[o + 1u], twiddles[o + 2u], twiddles[o + 3u],
                 twiddles[o + 4u], twiddles[o + 5u], twiddles[o + 6u], twiddles[o + 7u]);
    let u = load_value(i);
    let x = fr_mul(w, load_value(i + half));
    store_value(i, fr_add(u, x));
    store_value(i + half, fr_sub(u, x));
}

// @kernel fr_mul_pointwise
// values[i] *= factors[i].
@group(0) @binding(0) var<storage, read_write> values: array<u32>;
@group(0) @binding(1) var<storage, read_write> factors: array<u32>;
@group(0) @binding(2) var<uniform> prm: array<vec4<u32>, 2>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn fr_mul_pointwise(@builtin(global_invocation_id) gid: vec3<u32>,
                    @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = thread_index(gid, nwg);
    if (i >= thread_count() || i >= prm[0].x) {
        return;
    }
    let o = 8u * i;
    let a = fr_t(values[o], values[o + 1u], values[o + 2u], values[o + 3u],
                 values[o + 4u], values[o + 5u], values[o + 6u], values[o + 7u]);
    let b = fr_t(factors[o], factors[o + 1u], factors[o + 2u], factors[o + 3u],
                 factors[o + 4u], factors[o + 5u], factors[o + 6u], factors[o + 7u]);
    let r = fr_mul(a, b);
    for (var k = 0u; k < 8u; k++) {
        values[o + k] = r[k];
    }
}

// @kernel fr_quotient
// a[i] = from_montgomery(a[i] b[i] - c[i]): the H MSM's scalars, canonical.
@group(0) @binding(0) var<storage, read_write> a: array<u32>;
@group(0) @binding(1) var<storage, read_write> b: array<u32>;
@group(0) @binding(2) var<storage, read_write> c: array<u32>;
@group(0) @binding(3) var<uniform> prm: array<vec4<u32>, 2>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn fr_quotient(@builtin(global_invocation_id) gid: vec3<u32>,
               @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = thread_index(gid, nwg);
    if (i >= thread_count() || i >= prm[0].x) {
        return;
    }
    let o = 8u * i;
    let x = fr_t(a[o], a[o + 1u], a[o + 2u], a[o + 3u], a[o + 4u], a[o + 5u], a[o + 6u], a[o + 7u]);
    let y = fr_t(b[o], b[o + 1u], b[o + 2u], b[o + 3u], b[o + 4u], b[o + 5u], b[o + 6u], b[o + 7u]);
    let z = fr_t(c[o], c[o + 1u], c[o + 2u], c[o + 3u], c[o + 4u], c[o + 5u], c[o + 6u], c[o + 7u]);
    let r = fr_from_montgomery(fr_sub(fr_mul(x, y), z));
    for (var k = 0u; k < 8u; k++) {
        a[o + k] = r[k];
    }
}

// The point half of the MSM (docs/gpu-proving.md, "Bucket accumulation" and "Bucket
// reduction"), written once for G1 and G2 over bn254_curve.wgsl: `kernels::wgsl::bn254_kernel`
// replaces CURVE_ with g1_ / g2_ and FIELD_ with fq_ / fq2_, so the entry points are
// g1_acc_bases, g2_acc_bases, ...
//
// Sections (`// @kernel NAME`, NAME without the curve prefix) are cut as in bn254_msm.wgsl;
// every storage buffer is read_write for the reason given there.

// Words `o .. o + len` of a storage buffer cannot be passed to a function in WGSL, so each
// kernel copies points into a scratch block itself; these only convert.

// @kernel acc_bases
// Sums the sorted entries t*K .. t*K+K run by run, adding affine bases (negated where the
// reference's sign bit is set). Runs that neither start nor end the chunk are whole buckets;
// the first and the last go to the next level's list at 2t and 2t+1 (see the spec). With
// last = 1 (one invocation covers the whole list) every run is a whole bucket.
@group(0) @binding(0) var<storage, read_write> bases: array<u32>;
@group(0) @binding(1) var<storage, read_write> keys: array<u32>;
@group(0) @binding(2) var<storage, read_write> refs: array<u32>;
@group(0) @binding(3) var<storage, read_write> bucket_sums: array<u32>;
@group(0) @binding(4) var<storage, read_write> out_keys: array<u32>;
@group(0) @binding(5) var<storage, read_write> out_points: array<u32>;
@group(0) @binding(6) var<uniform> prm: array<vec4<u32>, 2>;

fn load_entry(e: u32) -> CURVE_affine {
    let r = refs[e];
    let o = (r & 0x7fffffffu) * CURVE_AFFINE_WORDS;
    var b: block_t;
    for (var k = 0u; k < CURVE_AFFINE_WORDS; k++) {
        b[k] = bases[o + k];
    }
    let a = CURVE_affine_from_block(b);
    if ((r >> 31u) != 0u) {
        return CURVE_affine_neg(a);
    }
    return a;
}

fn write_bucket(key: u32, p: CURVE_xyzz) {
    var b: block_t;
    CURVE_xyzz_to_block(&b, p);
    let o = key * CURVE_XYZZ_WORDS;
    for (var k = 0u; k < CURVE_XYZZ_WORDS; k++) {
        bucket_sums[o + k] = b[k];
    }
}

fn write_partial(slot: u32, key: u32, p: CURVE_xyzz) {
    var b: block_t;
    CURVE_xyzz_to_block(&b, p);
    out_keys[slot] = key;
    let o = slot * CURVE_XYZZ_WORDS;
    for (var k = 0u; k < CURVE_XYZZ_WORDS; k++) {
        out_points[o + k] = b[k];
    }
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn CURVE_acc_bases(@builtin(global_invocation_id) gid: vec3<u32>,
                   @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = thread_index(gid, nwg);
    let len = prm[0].x;
    let chunk = prm[0].y;
    let last = prm[0].z != 0u;
    if (t >= thread_count() || chunk == 0u || t >= (len + chunk - 1u) / chunk) {
        return;
    }
    let start = t * chunk;
    let end = start + min(chunk, len - start);
    var key = keys[start];
    var acc = CURVE_identity();
    var first = true;
    for (var e = start; e < end; e++) {
        let g = keys[e];
        if (g != key) {
            if (first && !last) {
                write_partial(2u * t, key, acc);
            } else {
                write_bucket(key, acc);
            }
            first = false;
            key = g;
            acc = CURVE_identity();
        }
        acc = CURVE_add_mixed(acc, load_entry(e));
    }
    if (last) {
        write_bucket(key, acc);
    } else if (first) {
        // A single run: its sum at 2t and the identity under the same key at 2t+1, so the
        // next list stays sorted and has no holes.
        write_partial(2u * t, key, acc);
        write_partial(2u * t + 1u, key, CURVE_identity());
    } else {
        write_partial(2u * t + 1u, key, acc);
    }
}

// @kernel acc_partials
// The same over a list of (key, XYZZ partial sum) pairs from the previous level.
@group(0) @binding(0) var<storage, read_write> in_keys: array<u32>;
@group(0) @binding(1) var<storage, read_write> in_points: array<u32>;
@group(0) @binding(2) var<storage, read_write> bucket_sums: array<u32>;
@group(0) @binding(3) var<storage, read_write> out_keys: array<u32>;
@group(0) @binding(4) var<storage, read_write> out_points: array<u32>;
@group(0) @binding(5) var<uniform> prm: array<vec4<u32>, 2>;

fn load_entry(e: u32) -> CURVE_xyzz {
    let o = e * CURVE_XYZZ_WORDS;
    var b: block_t;
    for (var k = 0u; k < CURVE_XYZZ_WORDS; k++) {
        b[k] = in_points[o + k];
    }
    return CURVE_xyzz_from_block(b);
}

fn write_bucket(key: u32, p: CURVE_xyzz) {
    var b: block_t;
    CURVE_xyzz_to_block(&b, p);
    let o = key * CURVE_XYZZ_WORDS;
    for (var k = 0u; k < CURVE_XYZZ_WORDS; k++) {
        bucket_sums[o + k] = b[k];
    }
}

fn write_partial(slot: u32, key: u32, p: CURVE_xyzz) {
    var b: block_t;
    CURVE_xyzz_to_block(&b, p);
    out_keys[slot] = key;
    let o = slot * CURVE_XYZZ_WORDS;
    for (var k = 0u; k < CURVE_XYZZ_WORDS; k++) {
        out_points[o + k] = b[k];
    }
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn CURVE_acc_partials(@builtin(global_invocation_id) gid: vec3<u32>,
                      @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = thread_index(gid, nwg);
    let len = prm[0].x;
    let chunk = prm[0].y;
    let last = prm[0].z != 0u;
    if (t >= thread_count() || chunk == 0u || t >= (len + chunk - 1u) / chunk) {
        return;
    }
    let start = t * chunk;
    let end = start + min(chunk, len - start);
    var key = in_keys[start];
    var acc = CURVE_identity();
    var first = true;
    for (var e = start; e < end; e++) {
        let g = in_keys[e];
        if (g != key) {
            if (first && !last) {
                write_partial(2u * t, key, acc);
            } else {
                write_bucket(key, acc);
            }
            first = false;
            key = g;
            acc = CURVE_identity();
        }
        acc = CURVE_add(acc, load_entry(e));
    }
    if (last) {
        write_bucket(key, acc);
    } else if (first) {
        write_partial(2u * t, key, acc);
        write_partial(2u * t + 1u, key, CURVE_identity());
    } else {
        write_partial(2u * t + 1u, key, acc);
    }
}

// @kernel reduce_segments
// Invocation w*S + s: the L = buckets / S buckets s*L .. s*L+L of window w, weighted by their
// position: sum_j (j - s*L + 1) * bucket[j] by the running-sum trick (from the top bucket
// down), plus s*L * sum_j bucket[j] by double-and-add.
//
// Written as one loop around a single CURVE_add, whose operands a small state machine picks:
// Mesa's NIR (lavapipe, RADV) inlines every call, and each call site of a G2 addition is
// thousands of instructions, so separate loops for the two parts took minutes to compile.
// Doublings are additions of a point to itself (CURVE_add doubles equal points).
@group(0) @binding(0) var<storage, read_write> bucket_sums: array<u32>;
@group(0) @binding(1) var<storage, read_write> segment_sums: array<u32>;
@group(0) @binding(2) var<uniform> prm: array<vec4<u32>, 2>;

fn load_bucket(j: u32) -> CURVE_xyzz {
    let o = j * CURVE_XYZZ_WORDS;
    var b: block_t;
    for (var k = 0u; k < CURVE_XYZZ_WORDS; k++) {
        b[k] = bucket_sums[o + k];
    }
    return CURVE_xyzz_from_block(b);
}

// The additions, in order: per bucket j (from the top) running += bucket[j], sum += running;
// then per bit of offset = s*L (from the top) prod += prod and, where the bit is set,
// prod += running; last sum += prod.
const OP_RUNNING: u32 = 0u;
const OP_SUM: u32 = 1u;
const OP_DOUBLE: u32 = 2u;
const OP_ADD: u32 = 3u;
const OP_FINAL: u32 = 4u;

@compute @workgroup_size(WORKGROUP_SIZE)
fn CURVE_reduce_segments(@builtin(global_invocation_id) gid: vec3<u32>,
                         @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = thread_index(gid, nwg);
    let buckets = prm[0].x;
    let segs = prm[0].y;
    let windows = prm[0].z;
    if (t >= thread_count() || segs == 0u || t >= windows * segs) {
        return;
    }
    let w = t / segs;
    let s = t % segs;
    let l = buckets / segs;
    let first = w * buckets + s * l;
    let offset = s * l;
    var running = CURVE_identity();
    var sum = CURVE_identity();
    var prod = CURVE_identity();
    // Buckets still to add, and the op for the current one.
    var j = l;
    var op = OP_RUNNING;
    // Bits of offset still to process (from the top).
    var bit = select(0u, 32u - countLeadingZeros(offset), offset != 0u);
    loop {
        if (j == 0u && op <= OP_SUM) {
            op = select(OP_FINAL, OP_DOUBLE, bit > 0u);
        }
        var a = sum;
        var b = prod;
        switch op {
            case OP_RUNNING: {
                a = running;
                b = load_bucket(first + j - 1u);
            }
            case OP_SUM: {
                b = running;
            }
            case OP_DOUBLE: {
                a = prod;
            }
            case OP_ADD: {
                a = prod;
                b = running;
            }
            default: {}
        }
        let r = CURVE_add(a, b);
        if (op == OP_FINAL) {
            sum = r;
            break;
        }
        if (op == OP_RUNNING) {
            running = r;
            op = OP_SUM;
        } else if (op == OP_SUM) {
            sum = r;
            j -= 1u;
            op = OP_RUNNING;
        } else {
            prod = r;
            if (op == OP_DOUBLE && ((offset >> (bit - 1u)) & 1u) != 0u) {
                op = OP_ADD;
            } else {
                bit -= 1u;
                op = select(OP_FINAL, OP_DOUBLE, bit > 0u);
            }
        }
    }
    var b: block_t;
    CURVE_xyzz_to_block(&b, sum);
    let o = t * CURVE_XYZZ_WORDS;
    for (var k = 0u; k < CURVE_XYZZ_WORDS; k++) {
        segment_sums[o + k] = b[k];
    }
}

// @kernel window_sum
// One level of adding up each window's partial sums (its segments' sums at first): window w has
// prm.x of them in `partials_in`; output j of window w is the sum of its inputs j·group ..
// j·group+group (fewer at the end), written at w·⌈per_window/group⌉ + j. The host repeats
// this until one sum per window is left (a tree: few dependent additions per invocation).
@group(0) @binding(0) var<storage, read_write> partials_in: array<u32>;
@group(0) @binding(1) var<storage, read_write> partials_out: array<u32>;
@group(0) @binding(2) var<uniform> prm: array<vec4<u32>, 2>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn CURVE_window_sum(@builtin(global_invocation_id) gid: vec3<u32>,
                    @builtin(num_workgroups) nwg: vec3<u32>) {
    let t = thread_index(gid, nwg);
    let per_window = prm[0].x;
    let windows = prm[0].y;
    let group = prm[0].z;
    let outs = (per_window + group - 1u) / group;
    if (t >= thread_count() || t >= windows * outs) {
        return;
    }
    let w = t / outs;
    let start = (t % outs) * group;
    let end = min(start + group, per_window);
    var sum = CURVE_identity();
    for (var s = start; s < end; s++) {
        let o = (w * per_window + s) * CURVE_XYZZ_WORDS;
        var b: block_t;
        for (var k = 0u; k < CURVE_XYZZ_WORDS; k++) {
            b[k] = partials_in[o + k];
        }
        sum = CURVE_add(sum, CURVE_xyzz_from_block(b));
    }
    var b: block_t;
    CURVE_xyzz_to_block(&b, sum);
    let o = t * CURVE_XYZZ_WORDS;
    for (var k = 0u; k < CURVE_XYZZ_WORDS; k++) {
        partials_out[o + k] = b[k];
    }
}

// The scalar half of the MSM (docs/gpu-proving.md, "MSM"): signed-digit windows of the
// scalars, grouped by bucket with a counting sort (count, exclusive prefix sum in three
// kernels, scatter). No field arithmetic: everything is on 32-bit words.
//
// The file is split into sections, one per kernel, at the `// @kernel NAME` lines;
// `kernels::wgsl::bn254_kernel` builds a kernel's module from bn254_common.wgsl, the text
// before the first section and that kernel's section. Each section declares its own bindings
// (buffers in the order the spec lists them, then the parameters).
//
// Every storage buffer is declared read_write, even where a kernel only reads it: wgpu rejects
// a launch that binds one buffer both read-only and writable, and OpenCL/CUDA callers may pass
// the same buffer twice (an unused output, say).

// Window w of a canonical scalar (8 words, little-endian) as (|d|, d < 0, carry out), given
// the carry out of window w - 1. The window's bits are w*c .. w*c + c (1 <= c <= 31); a value
// above 2^(c-1) becomes value - 2^c with a carry of 1. The top window (windows = floor(254/c)
// + 1, scalars < r < 2^254) never carries out.
fn window_digit(s: array<u32, 8>, w: u32, c: u32, carry: u32) -> vec3<u32> {
    let off = w * c;
    let word = off >> 5u;
    let sh = off & 31u;
    var bits = 0u;
    if (word < 8u) {
        bits = s[word] >> sh;
        if (sh + c > 32u && word + 1u < 8u) {
            bits |= s[word + 1u] << (32u - sh);
        }
    }
    bits &= (1u << c) - 1u;
    let v = bits + carry;
    if (v > (1u << (c - 1u))) {
        return vec3<u32>((1u << c) - v, 1u, 1u);
    }
    return vec3<u32>(v, 0u, 0u);
}

// Whether base i is marked as the point at infinity (bit i % 32 of word i / 32).
fn skipped(word: u32, i: u32) -> bool {
    return ((word >> (i & 31u)) & 1u) != 0u;
}

// @kernel msm_count
// counts[g] += 1 for every entry (global bucket g) of scalar i (read at first + i: an MSM may
// take a suffix of a vector already on the device).
@group(0) @binding(0) var<storage, read_write> scalars: array<u32>;
@group(0) @binding(1) var<storage, read_write> skip: array<u32>;
@group(0) @binding(2) var<storage, read_write> counts: array<atomic<u32>>;
@group(0) @binding(3) var<uniform> prm: array<vec4<u32>, 2>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn msm_count(@builtin(global_invocation_id) gid: vec3<u32>,
             @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = thread_index(gid, nwg);
    let n = prm[0].x;
    let c = prm[0].y;
    let windows = prm[0].z;
    let buckets = prm[0].w;
    let first = prm[1].x;
    if (i >= thread_count() || i >= n || skipped(skip[i >> 5u], i)) {
        return;
    }
    var s: array<u32, 8>;
    for (var k = 0u; k < 8u; k++) {
        s[k] = scalars[8u * (first + i) + k];
    }
    var carry = 0u;
    for (var w = 0u; w < windows; w++) {
        let d = window_digit(s, w, c, carry);
        carry = d.z;
        if (d.x != 0u) {
            atomicAdd(&counts[w * buckets + d.x - 1u], 1u);
        }
    }
}

// @kernel msm_scan_blocks
// Exclusive prefix sum of block b (256 counts) in place; the block's total to block_sums[b].
@group(0) @binding(0) var<storage, read_write> counts: array<u32>;
@group(0) @binding(1) var<storage, read_write> block_sums: array<u32>;
@group(0) @binding(2) var<uniform> prm: array<vec4<u32>, 2>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn msm_scan_blocks(@builtin(global_invocation_id) gid: vec3<u32>,
                   @builtin(num_workgroups) nwg: vec3<u32>) {
    let b = thread_index(gid, nwg);
    let total = prm[0].x;
    if (b >= thread_count() || b >= (total + 255u) / 256u) {
        return;
    }
    let start = 256u * b;
    let end = min(start + 256u, total);
    var sum = 0u;
    for (var g = start; g < end; g++) {
        let v = counts[g];
        counts[g] = sum;
        sum += v;
    }
    block_sums[b] = sum;
}

// @kernel msm_scan_top
// Exclusive prefix sum of the block sums in place (one invocation); the grand total to
// total_out[0].
@group(0) @binding(0) var<storage, read_write> block_sums: array<u32>;
@group(0) @binding(1) var<storage, read_write> total_out: array<u32>;
@group(0) @binding(2) var<uniform> prm: array<vec4<u32>, 2>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn msm_scan_top(@builtin(global_invocation_id) gid: vec3<u32>,
                @builtin(num_workgroups) nwg: vec3<u32>) {
    if (thread_index(gid, nwg) != 0u) {
        return;
    }
    let blocks = prm[0].x;
    var sum = 0u;
    for (var b = 0u; b < blocks; b++) {
        let v = block_sums[b];
        block_sums[b] = sum;
        sum += v;
    }
    total_out[0] = sum;
}

// @kernel msm_scan_add
// Adds the block offsets: counts[g] becomes bucket g's first entry; the scatter's cursor
// starts there.
@group(0) @binding(0) var<storage, read_write> counts: array<u32>;
@group(0) @binding(1) var<storage, read_write> block_sums: array<u32>;
@group(0) @binding(2) var<storage, read_write> cursor: array<u32>;
@group(0) @binding(3) var<uniform> prm: array<vec4<u32>, 2>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn msm_scan_add(@builtin(global_invocation_id) gid: vec3<u32>,
                @builtin(num_workgroups) nwg: vec3<u32>) {
    let g = thread_index(gid, nwg);
    if (g >= thread_count() || g >= prm[0].x) {
        return;
    }
    let v = counts[g] + block_sums[g / 256u];
    counts[g] = v;
    cursor[g] = v;
}

// @kernel msm_scatter
// Writes every entry of scalar i at its bucket's cursor: keys[p] = g, refs[p] = i | sign << 31.
@group(0) @binding(0) var<storage, read_write> scalars: array<u32>;
@group(0) @binding(1) var<storage, read_write> skip: array<u32>;
@group(0) @binding(2) var<storage, read_write> cursor: array<atomic<u32>>;
@group(0) @binding(3) var<storage, read_write> keys: array<u32>;
@group(0) @binding(4) var<storage, read_write> refs: array<u32>;
@group(0) @binding(5) var<uniform> prm: array<vec4<u32>, 2>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn msm_scatter(@builtin(global_invocation_id) gid: vec3<u32>,
               @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = thread_index(gid, nwg);
    let n = prm[0].x;
    let c = prm[0].y;
    let windows = prm[0].z;
    let buckets = prm[0].w;
    let first = prm[1].x;
    if (i >= thread_count() || i >= n || skipped(skip[i >> 5u], i)) {
        return;
    }
    var s: array<u32, 8>;
    for (var k = 0u; k < 8u; k++) {
        s[k] = scalars[8u * (first + i) + k];
    }
    var carry = 0u;
    for (var w = 0u; w < windows; w++) {
        let d = window_digit(s, w, c, carry);
        carry = d.z;
        if (d.x != 0u) {
            let g = w * buckets + d.x - 1u;
            let p = atomicAdd(&cursor[g], 1u);
            keys[p] = g;
            refs[p] = i | (d.y << 31u);
        }
    }
}

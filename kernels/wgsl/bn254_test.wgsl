// Test kernels: one multiplication per invocation in Fq, Fr or Fq2, so that the field code the
// MSM and NTT kernels are built on is checked against arkworks on its own
// (backends/tests/prove_wgpu_field.rs). FIELD_ is replaced by fq_, fr_ or fq2_, the field of
// the kernel being built, so the three kernels share one section.
//
// Every storage buffer is read_write, as in bn254_msm.wgsl.

// @kernel test_mul
// out[i] = a[i] * b[i] (Montgomery form; 8 words per element, 16 for Fq2).
@group(0) @binding(0) var<storage, read_write> a: array<u32>;
@group(0) @binding(1) var<storage, read_write> b: array<u32>;
@group(0) @binding(2) var<storage, read_write> out: array<u32>;
@group(0) @binding(3) var<uniform> prm: array<vec4<u32>, 2>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn test_FIELD_mul(@builtin(global_invocation_id) gid: vec3<u32>,
            @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = thread_index(gid, nwg);
    if (i >= thread_count() || i >= prm[0].x) {
        return;
    }
    let o = i * FIELD_WORDS;
    var x: block_t;
    var y: block_t;
    for (var k = 0u; k < FIELD_WORDS; k++) {
        x[k] = a[o + k];
        y[k] = b[o + k];
    }
    var r: block_t;
    FIELD_to_block(&r, 0u, FIELD_mul(FIELD_from_block(x, 0u), FIELD_from_block(y, 0u)));
    for (var k = 0u; k < FIELD_WORDS; k++) {
        out[o + k] = r[k];
    }
}

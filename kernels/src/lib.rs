//! Device code as text, compiled by each runtime at run time (or shipped as PTX that the CUDA
//! driver JIT-compiles). OpenCL C and CUDA C share one SHA-256d source and one BN254 proving
//! source through small macro preludes; WGSL is written separately (32-bit only). This crate imports nothing.

/// The SHA-256d nonce-search kernel's interface, the same in OpenCL C and CUDA C (both are
/// built from `opencl/sha256d_common.h`, which documents each argument).
pub mod sha256d {
    /// The kernel's entry point, in both languages.
    pub const KERNEL: &str = "sha256d_scan";
    /// Arguments before the per-job words: the result buffer, its capacity (in nonces), the
    /// first nonce of the launch and the number of nonces in it.
    pub const LAUNCH_ARGS: usize = 4;
    /// Per-job words that follow them, in this order: midstate (8), the state before round 4
    /// of block 2 (8), W16, W17, the nonce-independent parts of W18, W19, W31, W32 (6) and the
    /// target's top word (1).
    pub const JOB_WORDS: usize = 23;
}

/// OpenCL C for the OpenCL backend (`backends::opencl`).
pub mod opencl {
    /// The complete program: the OpenCL spelling of the shared macros (`sha256d.cl`)
    /// followed by the shared SHA-256d source. Concatenated here because an OpenCL run-time
    /// compiler cannot see files, so the `.cl` file cannot `#include` the header.
    pub const SOURCE: &str = concat!(
        include_str!("../opencl/sha256d.cl"),
        include_str!("../opencl/sha256d_common.h")
    );

    /// The BN254 proving program (MSM, NTT, field tests; `docs/gpu-proving.md`): the OpenCL
    /// spelling of the shared macros (`bn254.cl`), then the shared field source, the curve
    /// template once for G1 and once for G2, and the kernels, in the order `cuda/bn254.cu`
    /// includes them.
    pub const BN254: &str = concat!(
        include_str!("../opencl/bn254.cl"),
        include_str!("../opencl/bn254_field.h"),
        include_str!("../opencl/bn254_g1.h"),
        include_str!("../opencl/bn254_curve.h"),
        include_str!("../opencl/bn254_g2.h"),
        include_str!("../opencl/bn254_curve.h"),
        include_str!("../opencl/bn254_kernels.h")
    );
}

/// CUDA for the CUDA backend (`backends::cuda`).
pub mod cuda {
    /// PTX generated from `cuda/sha256d.cu` by `cuda/build-ptx.sh` (clang, no CUDA toolkit);
    /// the driver JIT-compiles it for the GPU. `kernels/tests/sources.rs` checks it is current.
    pub const PTX: &str = include_str!("../cuda/sha256d.ptx");

    /// PTX of the BN254 proving program, generated from `cuda/bn254.cu` (which includes the
    /// shared `opencl/bn254_*.h` sources) by `cuda/build-ptx.sh`; checked like [`PTX`].
    pub const BN254_PTX: &str = include_str!("../cuda/bn254.ptx");
}

/// WGSL for the WebGPU backend (`backends::wgpu`).
pub mod wgsl {
    /// SHA-256d nonce search: the `main` entry point, bind group 0 = (uniform parameters,
    /// storage buffer of found nonces); the layout is documented in the file.
    pub const SHA256D: &str = include_str!("../wgsl/sha256d.wgsl");

    // ---- Groth16 proving over BN254 (docs/gpu-proving.md; `backends::prove::gpu::wgpu`) ----
    //
    // WGSL has no includes and no generics, and each kernel binds its own buffers, so every
    // proving kernel is its own module, assembled here from the pieces below: the common part,
    // the field template instantiated for the fields it needs, the curve template for its
    // group, the text before the first `// @kernel` line of its file and its own section.

    /// Invocations per workgroup of every proving kernel (`WORKGROUP_SIZE` in
    /// `bn254_common.wgsl`): a launch of `threads` invocations dispatches ⌈threads / 64⌉
    /// workgroups, as a 2-D grid where they exceed the per-dimension limit.
    pub const BN254_WORKGROUP_SIZE: u32 = 64;
    /// Words in each proving kernel's uniform parameter block (`array<vec4<u32>, 2>`).
    pub const BN254_PARAM_WORDS: usize = 8;
    /// The parameter word that carries the launch's invocation count (the last one; a kernel's
    /// own parameters take at most 4 words, from word 0), so every kernel can stop past it.
    pub const BN254_THREADS_WORD: usize = 7;

    /// What every proving kernel starts with: launch geometry, 32-bit carry helpers, the
    /// moduli and Montgomery constants of Fq and Fr.
    pub const BN254_COMMON: &str = include_str!("../wgsl/bn254_common.wgsl");
    /// Montgomery arithmetic in one prime field (16-bit-limb CIOS multiplication), a template:
    /// `FIELD_` stands for `fq_` or `fr_` (see [`bn254_field`]).
    pub const BN254_FIELD: &str = include_str!("../wgsl/bn254_field.wgsl");
    /// Fq2 = Fq\[u\]/(u² + 1) over the `fq_` field (functions `fq2_*`).
    pub const BN254_FQ2: &str = include_str!("../wgsl/bn254_fq2.wgsl");
    /// XYZZ point arithmetic, a template: `CURVE_` stands for `g1_` / `g2_` and `FIELD_` for
    /// `fq_` / `fq2_` (see [`bn254_curve`]).
    pub const BN254_CURVE: &str = include_str!("../wgsl/bn254_curve.wgsl");
    /// Sections `msm_count`, `msm_scan_blocks`, `msm_scan_top`, `msm_scan_add`, `msm_scatter`.
    pub const BN254_MSM: &str = include_str!("../wgsl/bn254_msm.wgsl");
    /// Sections `acc_bases`, `acc_partials`, `reduce_segments`, `window_sum`, over the curve
    /// template (entry points `g1_acc_bases`, `g2_acc_bases`, ...).
    pub const BN254_BUCKETS: &str = include_str!("../wgsl/bn254_buckets.wgsl");
    /// Sections `fr_bit_reverse`, `fr_ntt_stage`, `fr_mul_pointwise`, `fr_quotient`.
    pub const BN254_NTT: &str = include_str!("../wgsl/bn254_ntt.wgsl");
    /// Section `test_mul` over the field template (entry points `test_fq_mul`, `test_fr_mul`,
    /// `test_fq2_mul`).
    pub const BN254_TEST: &str = include_str!("../wgsl/bn254_test.wgsl");

    /// The entry points of the proving kernels, as `docs/gpu-proving.md` names them (the same
    /// names as `backends::prove::gpu::device::Kernel::name`).
    pub const BN254_KERNELS: [&str; 20] = [
        "msm_count",
        "msm_scan_blocks",
        "msm_scan_top",
        "msm_scan_add",
        "msm_scatter",
        "g1_acc_bases",
        "g2_acc_bases",
        "g1_acc_partials",
        "g2_acc_partials",
        "g1_reduce_segments",
        "g2_reduce_segments",
        "g1_window_sum",
        "g2_window_sum",
        "fr_bit_reverse",
        "fr_ntt_stage",
        "fr_mul_pointwise",
        "fr_quotient",
        "test_fq_mul",
        "test_fr_mul",
        "test_fq2_mul",
    ];

    /// The field template for `prefix` `"fq"` or `"fr"` (functions `fq_mul`, ..., type `fq_t`).
    pub fn bn254_field(prefix: &str) -> String {
        BN254_FIELD.replace("FIELD_", &format!("{prefix}_"))
    }

    /// The curve template for `curve` `"g1"` (over `fq`) or `"g2"` (over `fq2`): functions
    /// `g1_add`, ..., types `g1_affine`, `g1_xyzz`. Needs the field (and for G2 [`BN254_FQ2`])
    /// before it.
    pub fn bn254_curve(curve: &str) -> String {
        curve_template(BN254_CURVE, curve)
    }

    fn curve_template(text: &str, curve: &str) -> String {
        let field = if curve == "g2" { "fq2_" } else { "fq_" };
        text.replace("CURVE_", &format!("{curve}_"))
            .replace("FIELD_", field)
    }

    /// The part of a sectioned file that `name`'s module needs: the text before the first
    /// `// @kernel` line and the section `// @kernel name` (up to the next such line).
    fn section(file: &str, name: &str) -> Option<String> {
        const MARK: &str = "// @kernel ";
        let mut prelude = String::new();
        let mut found: Option<String> = None;
        let mut current: Option<&str> = None;
        for line in file.lines() {
            if let Some(rest) = line.strip_prefix(MARK) {
                if found.is_some() {
                    break;
                }
                current = Some(rest.trim());
                if current == Some(name) {
                    found = Some(String::new());
                }
            }
            match (&mut found, current) {
                (Some(body), _) => {
                    body.push_str(line);
                    body.push('\n');
                }
                (None, None) => {
                    prelude.push_str(line);
                    prelude.push('\n');
                }
                (None, Some(_)) => {}
            }
        }
        found.map(|body| prelude + &body)
    }

    /// The complete WGSL module of proving kernel `name` (one of [`BN254_KERNELS`]), whose
    /// entry point is `name`; `None` for any other name. The buffers are bindings 0, 1, ... of
    /// group 0 in the order the spec lists them, all `read_write` storage arrays of `u32`, and
    /// the parameters are `var<uniform> prm: array<vec4<u32>, 2>` at the next binding, with the
    /// launch's invocation count in word [`BN254_THREADS_WORD`].
    pub fn bn254_kernel(name: &str) -> Option<String> {
        let mut src = String::from(BN254_COMMON);
        if name.starts_with("msm_") {
            src.push_str(&section(BN254_MSM, name)?);
        } else if let Some(rest) = name
            .strip_prefix("g1_")
            .or_else(|| name.strip_prefix("g2_"))
        {
            let curve = &name[..2];
            src.push_str(&bn254_field("fq"));
            if curve == "g2" {
                src.push_str(BN254_FQ2);
            }
            src.push_str(&bn254_curve(curve));
            src.push_str(&curve_template(&section(BN254_BUCKETS, rest)?, curve));
        } else if name.starts_with("fr_") {
            src.push_str(&bn254_field("fr"));
            src.push_str(&section(BN254_NTT, name)?);
        } else {
            let field = match name {
                "test_fq_mul" => "fq_",
                "test_fr_mul" => "fr_",
                "test_fq2_mul" => "fq2_",
                _ => return None,
            };
            src.push_str(&bn254_field(if field == "fr_" { "fr" } else { "fq" }));
            if field == "fq2_" {
                src.push_str(BN254_FQ2);
            }
            src.push_str(&section(BN254_TEST, "test_mul")?.replace("FIELD_", field));
        }
        Some(src)
    }
}

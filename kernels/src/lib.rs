//! Device code as text, compiled by each runtime at run time (or shipped as PTX that the CUDA
//! driver JIT-compiles). OpenCL C and CUDA C share one SHA-256d source through a small macro
//! header; WGSL is written separately (32-bit only). This crate imports nothing.

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
}

/// CUDA for the CUDA backend (`backends::cuda`).
pub mod cuda {
    /// PTX generated from `cuda/sha256d.cu` by `cuda/build-ptx.sh` (clang, no CUDA toolkit);
    /// the driver JIT-compiles it for the GPU. `kernels/tests/sources.rs` checks it is current.
    pub const PTX: &str = include_str!("../cuda/sha256d.ptx");
}

/// WGSL for the WebGPU backend (`backends::wgpu`).
pub mod wgsl {
    /// SHA-256d nonce search: the `main` entry point, bind group 0 = (uniform parameters,
    /// storage buffer of found nonces); the layout is documented in the file.
    pub const SHA256D: &str = include_str!("../wgsl/sha256d.wgsl");
}

//! What a GPU runtime must provide to prove: buffers of 32-bit words, copies, zeroing and
//! kernel launches, in submission order. The scheduler in [`super`] needs nothing else, so
//! OpenCL, CUDA and wgpu differ only here. The kernels and their arguments are listed in
//! `docs/gpu-proving.md`.

use crate::device::DeviceInfo;
use crate::prove::ProveError;

/// The two BN254 groups an MSM can run over.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Curve {
    /// Points over Fq (16 words affine, 32 words XYZZ).
    G1,
    /// Points over Fq2 (32 words affine, 64 words XYZZ).
    G2,
}

impl Curve {
    /// Words of an affine point.
    pub fn affine_words(self) -> usize {
        match self {
            Curve::G1 => 16,
            Curve::G2 => 32,
        }
    }

    /// Words of an XYZZ point.
    pub fn xyzz_words(self) -> usize {
        2 * self.affine_words()
    }
}

/// Every kernel of the proving programs (`docs/gpu-proving.md` gives buffers and parameters).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kernel {
    MsmCount,
    MsmScanBlocks,
    MsmScanTop,
    MsmScanAdd,
    MsmScatter,
    AccBases(Curve),
    AccPartials(Curve),
    ReduceSegments(Curve),
    WindowSum(Curve),
    FrBitReverse,
    FrNttStage,
    FrMulPointwise,
    FrQuotient,
    TestFqMul,
    TestFrMul,
    TestFq2Mul,
}

impl Kernel {
    /// Every kernel, in a fixed order (runtimes build them all when a device is opened).
    pub const ALL: [Kernel; 20] = [
        Kernel::MsmCount,
        Kernel::MsmScanBlocks,
        Kernel::MsmScanTop,
        Kernel::MsmScanAdd,
        Kernel::MsmScatter,
        Kernel::AccBases(Curve::G1),
        Kernel::AccBases(Curve::G2),
        Kernel::AccPartials(Curve::G1),
        Kernel::AccPartials(Curve::G2),
        Kernel::ReduceSegments(Curve::G1),
        Kernel::ReduceSegments(Curve::G2),
        Kernel::WindowSum(Curve::G1),
        Kernel::WindowSum(Curve::G2),
        Kernel::FrBitReverse,
        Kernel::FrNttStage,
        Kernel::FrMulPointwise,
        Kernel::FrQuotient,
        Kernel::TestFqMul,
        Kernel::TestFrMul,
        Kernel::TestFq2Mul,
    ];

    /// The entry point's name, the same in OpenCL C, CUDA C and WGSL.
    pub fn name(self) -> &'static str {
        use Curve::{G1, G2};
        match self {
            Kernel::MsmCount => "msm_count",
            Kernel::MsmScanBlocks => "msm_scan_blocks",
            Kernel::MsmScanTop => "msm_scan_top",
            Kernel::MsmScanAdd => "msm_scan_add",
            Kernel::MsmScatter => "msm_scatter",
            Kernel::AccBases(G1) => "g1_acc_bases",
            Kernel::AccBases(G2) => "g2_acc_bases",
            Kernel::AccPartials(G1) => "g1_acc_partials",
            Kernel::AccPartials(G2) => "g2_acc_partials",
            Kernel::ReduceSegments(G1) => "g1_reduce_segments",
            Kernel::ReduceSegments(G2) => "g2_reduce_segments",
            Kernel::WindowSum(G1) => "g1_window_sum",
            Kernel::WindowSum(G2) => "g2_window_sum",
            Kernel::FrBitReverse => "fr_bit_reverse",
            Kernel::FrNttStage => "fr_ntt_stage",
            Kernel::FrMulPointwise => "fr_mul_pointwise",
            Kernel::FrQuotient => "fr_quotient",
            Kernel::TestFqMul => "test_fq_mul",
            Kernel::TestFrMul => "test_fr_mul",
            Kernel::TestFq2Mul => "test_fq2_mul",
        }
    }

    /// How many buffers the kernel takes (its parameters follow them).
    pub fn buffers(self) -> usize {
        match self {
            Kernel::MsmCount => 3,
            Kernel::MsmScanBlocks => 2,
            Kernel::MsmScanTop => 2,
            Kernel::MsmScanAdd => 3,
            Kernel::MsmScatter => 5,
            Kernel::AccBases(_) => 6,
            Kernel::AccPartials(_) => 5,
            Kernel::ReduceSegments(_) => 2,
            Kernel::WindowSum(_) => 2,
            Kernel::FrBitReverse => 1,
            Kernel::FrNttStage => 2,
            Kernel::FrMulPointwise => 2,
            Kernel::FrQuotient => 3,
            Kernel::TestFqMul | Kernel::TestFrMul | Kernel::TestFq2Mul => 3,
        }
    }

    /// How many `uint` parameters the kernel takes.
    pub fn params(self) -> usize {
        match self {
            Kernel::MsmCount | Kernel::MsmScatter => 5,
            Kernel::MsmScanBlocks | Kernel::MsmScanTop | Kernel::MsmScanAdd => 1,
            Kernel::AccBases(_) | Kernel::AccPartials(_) => 3,
            Kernel::ReduceSegments(_) => 3,
            Kernel::WindowSum(_) => 3,
            Kernel::FrBitReverse | Kernel::FrNttStage => 2,
            Kernel::FrMulPointwise | Kernel::FrQuotient => 1,
            Kernel::TestFqMul | Kernel::TestFrMul | Kernel::TestFq2Mul => 1,
        }
    }
}

/// One GPU as the proving scheduler drives it. Work is executed in submission order (one
/// in-order queue); `read` waits for everything submitted before it. Implementations are
/// shared between threads (the prover runs its three NTTs at once), so they serialize
/// submissions internally.
pub trait GpuDevice: Send + Sync + 'static {
    /// A device buffer of 32-bit words.
    type Buffer: Send + Sync;

    /// The backend's name as `--backend` spells it (`opencl`, `cuda`, `wgpu`).
    fn backend(&self) -> &'static str;
    /// The device, as `rigworker devices` lists it.
    fn info(&self) -> &DeviceInfo;
    /// Bytes the device lets one buffer have (`None`: no limit beyond its memory).
    fn max_buffer_bytes(&self) -> Option<u64>;
    /// A buffer of `words` words (at least one), contents undefined.
    fn alloc(&self, words: usize) -> Result<Self::Buffer, ProveError>;
    /// Copies `data` into the start of `buf`.
    fn write(&self, buf: &Self::Buffer, data: &[u32]) -> Result<(), ProveError>;
    /// Copies the start of `buf` into `out`, after all work submitted so far.
    fn read(&self, buf: &Self::Buffer, out: &mut [u32]) -> Result<(), ProveError>;
    /// Sets the first `words` words of `buf` to zero.
    fn zero(&self, buf: &Self::Buffer, words: usize) -> Result<(), ProveError>;
    /// Runs `threads` invocations of `kernel` (`buffers` and `params` as the kernel table
    /// says; `threads` may be any positive number).
    fn launch(
        &self,
        kernel: Kernel,
        threads: u32,
        buffers: &[&Self::Buffer],
        params: &[u32],
    ) -> Result<(), ProveError>;
}

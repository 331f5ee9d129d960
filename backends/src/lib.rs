//! Hashing devices behind one trait.
//!
//! This crate owns device discovery and the nonce search. It never sees Stratum: the engine
//! hands it an 80-byte [`HeaderTemplate`] (already in header byte order), a [`NonceRange`] and a
//! [`ScanTarget`], and gets back every nonce whose SHA-256d meets the target. Byte-order
//! conversion from the wire happens in `stratum::work` and nowhere else.

#[cfg(feature = "cpu")]
pub mod cpu;
#[cfg(feature = "cuda")]
pub mod cuda;
pub mod device;
#[cfg(feature = "fpga")]
pub mod fpga;
#[cfg(any(feature = "opencl", feature = "cuda"))]
mod gpu;
#[cfg(feature = "opencl")]
pub mod opencl;
#[cfg(feature = "prove")]
pub mod prove;
// The SHA-256 constants and rounds the hashing backends share (not the prover).
#[cfg(any(
    feature = "cpu",
    feature = "cuda",
    feature = "opencl",
    feature = "wgpu",
    feature = "fpga"
))]
mod sha256;
#[cfg(feature = "wgpu")]
pub mod wgpu;

pub use device::{
    BackendError, BackendKind, BackendUnavailable, DeviceInfo, HashBackend, HashWorker,
    HeaderTemplate, NonceRange, ScanControl, ScanOutcome, ScanTarget, sha256d,
};

/// Every backend compiled into this build, in the order `--backend all` tries them.
// Each backend is pushed under its own cargo feature, so `vec![]` cannot express this (the
// lint is reported on the whole block, so it is allowed on the function).
#[allow(clippy::vec_init_then_push)]
pub fn compiled_backends() -> Vec<Box<dyn HashBackend>> {
    #[allow(unused_mut)]
    let mut v: Vec<Box<dyn HashBackend>> = Vec::new();
    #[cfg(feature = "cpu")]
    v.push(Box::new(cpu::CpuBackend::new()));
    #[cfg(feature = "cuda")]
    v.push(Box::new(cuda::CudaBackend::new()));
    #[cfg(feature = "opencl")]
    v.push(Box::new(opencl::OpenClBackend::new()));
    #[cfg(feature = "wgpu")]
    v.push(Box::new(wgpu::WgpuBackend::new()));
    #[cfg(feature = "fpga")]
    v.push(Box::new(fpga::FpgaBackend::new()));
    v
}

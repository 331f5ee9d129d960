//! The CUDA backend: every NVIDIA GPU the driver reports.
//!
//! `libcuda` is opened at run time by `cudarc`'s dynamic loading, never linked, and the
//! kernel ships as PTX (`kernels::cuda::PTX`, generated from the shared OpenCL/CUDA source by
//! clang) that the driver JIT-compiles for the GPU, so neither building nor running needs a
//! CUDA toolkit. `cudarc` panics when the library or one of its symbols is missing, so every
//! entry point first checks that the library loads and then runs each driver call under
//! `catch_unwind`: a rig without a driver gets `BackendUnavailable`, never a panic. This
//! module only drives the stream: the launch loop, launch-size tuning and the CPU re-check
//! of every candidate are shared with OpenCL in `gpu.rs`.

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use cudarc::driver::sys::{CUdevice_attribute, CUresult};
use cudarc::driver::{
    CudaContext, CudaFunction, CudaSlice, CudaStream, DriverError, LaunchConfig, PinnedHostSlice,
    PushKernelArg, result,
};
use cudarc::nvrtc::Ptx;
use kernels::sha256d::JOB_WORDS;

use crate::device::{
    BackendError, BackendKind, BackendUnavailable, DeviceInfo, HashBackend, HashWorker,
};
use crate::gpu::{DeviceQueue, GpuWorker, INITIAL_RESULTS, KernelJob, SLOTS};

/// Threads per block: a multiple of the warp size that every GPU since Kepler runs at full
/// occupancy with this kernel's register use.
const BLOCK: u32 = 256;
/// Nonces each thread hashes (the kernel's grid-stride loop): fewer blocks to schedule.
const NONCES_PER_THREAD: u32 = 8;

/// NVIDIA GPUs through the CUDA driver API.
#[derive(Clone, Debug, Default)]
pub struct CudaBackend {
    intensity: Option<u32>,
}

impl CudaBackend {
    /// Launch sizes tuned per GPU at start (about 50–100 ms per launch).
    pub fn new() -> Self {
        CudaBackend { intensity: None }
    }

    /// `Some(n)`: every launch hashes `2^n` nonces (clamped to 2^10..=2^31) instead of the
    /// tuned size; `None`: tune (the default).
    pub fn with_intensity(mut self, intensity: Option<u32>) -> Self {
        self.intensity = intensity;
        self
    }
}

fn unavailable(reason: impl Into<String>) -> BackendUnavailable {
    BackendUnavailable {
        backend: BackendKind::Cuda,
        reason: reason.into(),
    }
}

fn panic_message(p: &(dyn Any + Send)) -> String {
    p.downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| p.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".to_string())
}

/// Runs driver calls, turning both their errors and a panic inside `cudarc` (a symbol this
/// driver lacks) into an error message.
pub(crate) fn guarded<T>(
    what: &str,
    f: impl FnOnce() -> Result<T, DriverError>,
) -> Result<T, String> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(format!("{what}: {e}")),
        Err(p) => Err(format!(
            "{what}: the CUDA driver library failed: {}",
            panic_message(&*p)
        )),
    }
}

fn device_error(msg: String) -> BackendError {
    BackendError::Device(format!("CUDA {msg}"))
}

/// Whether the driver library can be opened, before anything touches `cudarc`'s loader
/// (which panics when it cannot).
fn probe() -> Result<(), BackendUnavailable> {
    // SAFETY: only tries to dlopen the candidate library names, and closes what it opened.
    let present = catch_unwind(|| unsafe { cudarc::driver::sys::is_culib_present() });
    if present.unwrap_or(false) {
        Ok(())
    } else {
        Err(unavailable(
            "libcuda.so.1 not found (no NVIDIA driver installed)",
        ))
    }
}

/// Every GPU the driver reports, without creating contexts (listing must not allocate
/// device memory).
pub(crate) fn enumerate() -> Result<Vec<DeviceInfo>, BackendUnavailable> {
    probe()?;
    let count = match catch_unwind(|| result::init().and_then(|()| result::device::get_count())) {
        Ok(Ok(n)) => n,
        Ok(Err(DriverError(CUresult::CUDA_ERROR_NO_DEVICE))) => {
            return Err(unavailable("no CUDA device (the driver found no GPU)"));
        }
        Ok(Err(e)) => return Err(unavailable(format!("the CUDA driver failed to start: {e}"))),
        Err(p) => {
            return Err(unavailable(format!(
                "the CUDA driver library failed: {}",
                panic_message(&*p)
            )));
        }
    };
    if count <= 0 {
        return Err(unavailable("no CUDA device (the driver found no GPU)"));
    }
    (0..count)
        .map(|i| {
            guarded("querying a device", || {
                let dev = result::device::get(i)?;
                let attr = |a| unsafe { result::device::get_attribute(dev, a) };
                let sms = attr(CUdevice_attribute::CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT)?;
                let major = attr(CUdevice_attribute::CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR)?;
                let minor = attr(CUdevice_attribute::CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR)?;
                // SAFETY: `dev` is a valid device handle from `get`.
                let memory = unsafe { result::device::total_mem(dev) }?;
                Ok(DeviceInfo {
                    backend: BackendKind::Cuda,
                    index: i as usize,
                    name: result::device::get_name(dev)?.trim().to_string(),
                    compute_units: u32::try_from(sms).unwrap_or(0),
                    memory_bytes: Some(memory as u64),
                    detail: format!("sm_{major}{minor}, PTX JIT"),
                })
            })
            .map_err(unavailable)
        })
        .collect()
}

impl HashBackend for CudaBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Cuda
    }

    fn devices(&self) -> Result<Vec<DeviceInfo>, BackendUnavailable> {
        enumerate()
    }

    /// One stream per worker; `threads == 0` means one.
    fn open(&self, index: usize, threads: usize) -> Result<Vec<Box<dyn HashWorker>>, BackendError> {
        let info = enumerate()?
            .into_iter()
            .nth(index)
            .ok_or(BackendError::NoSuchDevice {
                backend: BackendKind::Cuda,
                index,
            })?;
        (0..threads.max(1))
            .map(|_| {
                let q = CuQueue::new(index)?;
                Ok(Box::new(GpuWorker::new(info.clone(), q, self.intensity))
                    as Box<dyn HashWorker>)
            })
            .collect()
    }
}

/// One result slot: device buffer `[counter, nonces...]` and its pinned host copy.
struct Slot {
    dev: CudaSlice<u32>,
    /// Its completion event is created with `CU_EVENT_BLOCKING_SYNC`, so waiting for it
    /// sleeps instead of spinning a core.
    host: PinnedHostSlice<u32>,
    capacity: u32,
}

/// A GPU's context, the loaded kernel and one stream (in order, which double buffering
/// relies on).
struct CuQueue {
    slots: Vec<Slot>,
    func: CudaFunction,
    stream: Arc<CudaStream>,
    ctx: Arc<CudaContext>,
    job: [u32; JOB_WORDS],
}

impl CuQueue {
    fn new(ordinal: usize) -> Result<CuQueue, BackendError> {
        let (ctx, stream, func) = guarded("set-up", || {
            let ctx = CudaContext::new(ordinal)?;
            let stream = ctx.new_stream()?;
            let module = ctx.load_module(Ptx::from_src(kernels::cuda::PTX))?;
            let func = module.load_function(kernels::sha256d::KERNEL)?;
            Ok((ctx, stream, func))
        })
        .map_err(device_error)?;
        let mut q = CuQueue {
            slots: Vec::new(),
            func,
            stream,
            ctx,
            job: [0; JOB_WORDS],
        };
        for _ in 0..SLOTS {
            let slot = q.new_slot(INITIAL_RESULTS)?;
            q.slots.push(slot);
        }
        Ok(q)
    }

    fn new_slot(&self, capacity: u32) -> Result<Slot, BackendError> {
        let words = capacity as usize + 1;
        guarded("result buffer", || {
            let dev = self.stream.alloc_zeros::<u32>(words)?;
            // SAFETY: the host copy is only read after a copy from `dev` filled it; flags 0:
            // ordinary (cached) pinned memory, which the host reads fast.
            let host = unsafe { self.ctx.alloc_pinned_with_flags::<u32>(words, 0) }?;
            Ok(Slot {
                dev,
                host,
                capacity,
            })
        })
        .map_err(device_error)
    }
}

impl DeviceQueue for CuQueue {
    fn set_job(&mut self, job: &KernelJob) -> Result<(), BackendError> {
        // CUDA copies kernel arguments at each launch, so the words are kept here.
        self.job = job.words;
        Ok(())
    }

    fn capacity(&self, slot: usize) -> u32 {
        self.slots[slot].capacity
    }

    fn grow(&mut self, slot: usize, capacity: u32) -> Result<(), BackendError> {
        // The old buffers' drops wait for the work that still uses them.
        self.slots[slot] = self.new_slot(capacity)?;
        Ok(())
    }

    fn enqueue(&mut self, slot: usize, base: u32, count: u32) -> Result<(), BackendError> {
        let threads = count.div_ceil(NONCES_PER_THREAD);
        let cfg = LaunchConfig {
            grid_dim: (threads.div_ceil(BLOCK), 1, 1),
            block_dim: (BLOCK, 1, 1),
            shared_mem_bytes: 0,
        };
        let (stream, func, job) = (&self.stream, &self.func, &self.job);
        let s = &mut self.slots[slot];
        guarded("launch", || {
            stream.memset_zeros(&mut s.dev.slice_mut(0..1))?;
            let capacity = s.capacity;
            let mut b = stream.launch_builder(func);
            b.arg(&mut s.dev).arg(&capacity).arg(&base).arg(&count);
            for w in job {
                b.arg(w);
            }
            // SAFETY: the arguments match `sha256d_scan` in `kernels/opencl/sha256d_common.h`
            // (a buffer of `capacity + 1` u32, then `LAUNCH_ARGS - 1 + JOB_WORDS` uints), and
            // the kernel writes only `out[0..=capacity]`.
            unsafe { b.launch(cfg) }?;
            stream.memcpy_dtoh(&s.dev, &mut s.host)
        })
        .map_err(device_error)
    }

    fn wait(&mut self, slot: usize, out: &mut Vec<u32>) -> Result<u32, BackendError> {
        let s = &self.slots[slot];
        // `as_slice` synchronizes on the copy's blocking-sync event.
        let host = guarded("waiting for results", || s.host.as_slice()).map_err(device_error)?;
        let n = host[0];
        let stored = n.min(s.capacity) as usize;
        out.extend_from_slice(&host[1..=stored]);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// On a machine without the NVIDIA driver, listing says so, and nothing panics.
    #[test]
    fn without_a_driver_devices_are_unavailable() {
        if probe().is_ok() {
            println!("SKIPPED: libcuda is present here; hw-tests/tests/cuda.rs covers this rig");
            return;
        }
        let err = CudaBackend::new()
            .devices()
            .expect_err("no driver, no devices");
        assert_eq!(err.backend, BackendKind::Cuda);
        assert!(
            err.reason.contains("libcuda.so.1 not found"),
            "{}",
            err.reason
        );
        match CudaBackend::new().open(0, 1) {
            Err(BackendError::Unavailable(e)) => assert_eq!(e, err),
            Err(e) => panic!("expected Unavailable, got {e}"),
            Ok(_) => panic!("opened a CUDA device without a driver"),
        }
    }
}

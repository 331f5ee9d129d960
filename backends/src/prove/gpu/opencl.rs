//! The OpenCL runtime for the GPU prover: the devices the hashing backend enumerates
//! (`crate::opencl`), the BN254 program built from `kernels::opencl::BN254` when a device is
//! opened, one in-order queue. Buffers are written and read with blocking copies (the
//! scheduler reads only a few words per MSM, and the NTT vectors once), launches are queued.

use std::collections::HashMap;
use std::mem::ManuallyDrop;
use std::ptr;
use std::sync::{Mutex, MutexGuard};

use opencl3::command_queue::{CommandQueue, enqueue_fill_buffer, enqueue_write_buffer};
use opencl3::context::Context;
use opencl3::device::{CL_DEVICE_TYPE_CPU, Device};
use opencl3::error_codes::ClError;
use opencl3::kernel::Kernel as ClKernel;
use opencl3::memory::{Buffer, CL_MEM_READ_WRITE, ClMem};
use opencl3::program::Program;
use opencl3::types::CL_BLOCKING;

use super::device::{GpuDevice, Kernel};
use crate::device::DeviceInfo;
use crate::opencl::{enumerate, setup_lock};
use crate::prove::ProveError;

/// Work-items per work-group on a GPU (lowered to what a kernel allows).
const LOCAL_SIZE_GPU: usize = 64;

fn err(what: &str, e: ClError) -> ProveError {
    ProveError::Device {
        backend: "opencl".into(),
        message: format!("{what}: {e} ({})", e.0),
    }
}

/// A device buffer.
pub struct ClBuffer {
    buf: Buffer<u32>,
    words: usize,
}

struct Queue {
    queue: CommandQueue,
    kernels: HashMap<Kernel, (ClKernel, usize)>,
}

/// An OpenCL device with the proving program built.
pub struct OpenClProveDevice {
    info: DeviceInfo,
    max_alloc: Option<u64>,
    // Released in `Drop` under the setup lock (pocl tears devices down with the last context).
    queue: ManuallyDrop<Mutex<Queue>>,
    context: ManuallyDrop<Context>,
}

impl OpenClProveDevice {
    /// Opens OpenCL device `index` (as `rigworker devices` numbers them) and builds the
    /// proving program for it (seconds on a CPU driver; drivers cache the binary).
    pub fn open(index: usize) -> Result<OpenClProveDevice, ProveError> {
        let found = enumerate()
            .map_err(|e| ProveError::Device {
                backend: "opencl".into(),
                message: e.reason,
            })?
            .into_iter()
            .nth(index)
            .ok_or_else(|| ProveError::Device {
                backend: "opencl".into(),
                message: format!("there is no OpenCL device {index}"),
            })?;
        let _setup = setup_lock();
        let dev = Device::new(found.id);
        let context = Context::from_device(&dev).map_err(|e| err("context", e))?;
        let queue =
            CommandQueue::create_default(&context, 0).map_err(|e| err("command queue", e))?;
        let program = Program::create_and_build_from_source(&context, kernels::opencl::BN254, "")
            .map_err(|log| ProveError::Device {
            backend: "opencl".into(),
            message: format!("building the BN254 proving program failed: {log}"),
        })?;
        let is_cpu = dev.dev_type().unwrap_or(0) & CL_DEVICE_TYPE_CPU != 0;
        let mut kernels = HashMap::new();
        for k in Kernel::ALL {
            let kernel = ClKernel::create(&program, k.name()).map_err(|e| err(k.name(), e))?;
            let max = kernel.get_work_group_size(found.id).unwrap_or(1).max(1);
            // pocl runs a work-group as a loop over its items: any size does.
            let local = if is_cpu {
                16.min(max)
            } else {
                LOCAL_SIZE_GPU.min(max)
            };
            kernels.insert(k, (kernel, local));
        }
        Ok(OpenClProveDevice {
            info: found.info,
            max_alloc: dev.max_mem_alloc_size().ok(),
            queue: ManuallyDrop::new(Mutex::new(Queue { queue, kernels })),
            context: ManuallyDrop::new(context),
        })
    }

    fn queue(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for OpenClProveDevice {
    fn drop(&mut self) {
        let _setup = setup_lock();
        let _ = self.queue().queue.finish();
        // SAFETY: each is dropped exactly once, here, and never used afterwards.
        unsafe {
            ManuallyDrop::drop(&mut self.queue);
            ManuallyDrop::drop(&mut self.context);
        }
    }
}

impl GpuDevice for OpenClProveDevice {
    type Buffer = ClBuffer;

    fn backend(&self) -> &'static str {
        "opencl"
    }

    fn info(&self) -> &DeviceInfo {
        &self.info
    }

    fn max_buffer_bytes(&self) -> Option<u64> {
        self.max_alloc
    }

    fn alloc(&self, words: usize) -> Result<ClBuffer, ProveError> {
        let words = words.max(1);
        // SAFETY: no host pointer; the buffer is only used through this device's queue.
        let buf = unsafe {
            Buffer::<u32>::create(&self.context, CL_MEM_READ_WRITE, words, ptr::null_mut())
        }
        .map_err(|e| err(&format!("allocating {} MiB", (words * 4) >> 20), e))?;
        Ok(ClBuffer { buf, words })
    }

    fn write(&self, buf: &ClBuffer, data: &[u32]) -> Result<(), ProveError> {
        if data.len() > buf.words {
            return Err(err("write past a buffer's end", ClError(-30)));
        }
        let q = self.queue();
        // SAFETY: a blocking write of `data`, which fits the buffer, that returns only once
        // the runtime no longer reads the host memory.
        unsafe {
            enqueue_write_buffer(
                q.queue.get(),
                buf.buf.get(),
                CL_BLOCKING,
                0,
                std::mem::size_of_val(data),
                data.as_ptr() as *const std::ffi::c_void as *mut std::ffi::c_void,
                0,
                ptr::null(),
            )
        }
        .map(|_| ())
        .map_err(|e| err("writing a buffer", ClError(e)))
    }

    fn read(&self, buf: &ClBuffer, out: &mut [u32]) -> Result<(), ProveError> {
        if out.len() > buf.words {
            return Err(err("read past a buffer's end", ClError(-30)));
        }
        let q = self.queue();
        // SAFETY: a blocking read into `out`, which the buffer covers; the in-order queue
        // runs it after every command queued before.
        unsafe {
            q.queue
                .enqueue_read_buffer(&buf.buf, CL_BLOCKING, 0, out, &[])
        }
        .map(|_| ())
        .map_err(|e| err("reading a buffer (or a kernel before it failed)", e))
    }

    fn zero(&self, buf: &ClBuffer, words: usize) -> Result<(), ProveError> {
        let words = words.min(buf.words);
        if words == 0 {
            return Ok(());
        }
        let q = self.queue();
        static PATTERN: u32 = 0;
        // SAFETY: the pattern is copied when the command is queued (and is static anyway);
        // the range lies within the buffer.
        unsafe {
            enqueue_fill_buffer(
                q.queue.get(),
                buf.buf.get(),
                &PATTERN as *const u32 as *const std::ffi::c_void as *mut std::ffi::c_void,
                4,
                0,
                words * 4,
                0,
                ptr::null(),
            )
        }
        .map(|_| ())
        .map_err(|e| err("zeroing a buffer", ClError(e)))
    }

    fn launch(
        &self,
        kernel: Kernel,
        threads: u32,
        buffers: &[&ClBuffer],
        params: &[u32],
    ) -> Result<(), ProveError> {
        if buffers.len() != kernel.buffers() || params.len() != kernel.params() {
            return Err(ProveError::Device {
                backend: "opencl".into(),
                message: format!("{}: wrong number of arguments", kernel.name()),
            });
        }
        if threads == 0 {
            return Ok(());
        }
        let q = self.queue();
        let (k, local) = q.kernels.get(&kernel).ok_or_else(|| ProveError::Device {
            backend: "opencl".into(),
            message: format!("kernel {} is missing", kernel.name()),
        })?;
        let global = (threads as usize).div_ceil(*local) * *local;
        // SAFETY: the arguments match the kernel's signature (docs/gpu-proving.md: buffers,
        // then `uint` parameters), checked by count above; buffers outlive the queue's use of
        // them because the scheduler reads results (a blocking call) before releasing any.
        unsafe {
            let mut i = 0u32;
            for b in buffers {
                k.set_arg(i, &b.buf.get())
                    .map_err(|e| err("kernel argument", e))?;
                i += 1;
            }
            for p in params {
                k.set_arg(i, p).map_err(|e| err("kernel argument", e))?;
                i += 1;
            }
            q.queue
                .enqueue_nd_range_kernel(k.get(), 1, ptr::null(), &global, local, &[])
                .map_err(|e| err(&format!("launching {}", kernel.name()), e))?;
        }
        Ok(())
    }
}

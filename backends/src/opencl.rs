//! The OpenCL backend: every device of every OpenCL platform (GPUs, and CPUs through pocl,
//! which is how CI runs these kernels without a GPU).
//!
//! `libOpenCL.so.1` (the ICD loader) is opened at run time by `opencl3`'s dynamic loading,
//! never linked, so the binary starts on a rig without OpenCL and `devices` says why there
//! is none. The kernel is `kernels::opencl::SOURCE`, built for each device when a worker is
//! opened. This module only drives the queue: the launch loop, launch-size tuning and the
//! CPU re-check of every candidate are shared with CUDA in `gpu.rs`.

use std::ffi::c_void;
use std::mem::ManuallyDrop;
use std::ptr;
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use opencl3::command_queue::CommandQueue;
use opencl3::context::Context;
use opencl3::device::{
    CL_DEVICE_TYPE_ACCELERATOR, CL_DEVICE_TYPE_ALL, CL_DEVICE_TYPE_CPU, CL_DEVICE_TYPE_GPU, Device,
};
use opencl3::error_codes::{CL_PLATFORM_NOT_FOUND_KHR, ClError, DLOPEN_RUNTIME_LOAD_FAILED};
use opencl3::event::{CL_COMPLETE, Event};
use opencl3::kernel::Kernel;
use opencl3::memory::{Buffer, CL_MEM_READ_WRITE, ClMem};
use opencl3::program::Program;
use opencl3::types::{CL_NON_BLOCKING, cl_device_id, cl_event, cl_int};

use crate::device::{
    BackendError, BackendKind, BackendUnavailable, DeviceInfo, HashBackend, HashWorker,
};
use crate::gpu::{DeviceQueue, GpuWorker, INITIAL_RESULTS, KernelJob, SLOTS};

/// Work-items per work-group: a multiple of every GPU's SIMD width (32 NVIDIA, 64 AMD),
/// lowered to what the device allows for this kernel.
const LOCAL_SIZE: usize = 256;
/// Nonces each work-item hashes on a GPU (the kernel's grid-stride loop): fewer work-items
/// to schedule, and the per-job arguments are loaded once per several hashes.
const NONCES_PER_ITEM_GPU: u32 = 4;

/// OpenCL devices as hashing devices.
#[derive(Clone, Debug, Default)]
pub struct OpenClBackend {
    intensity: Option<u32>,
}

impl OpenClBackend {
    /// Launch sizes tuned per device at start (about 50–100 ms per launch).
    pub fn new() -> Self {
        OpenClBackend { intensity: None }
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
        backend: BackendKind::OpenCl,
        reason: reason.into(),
    }
}

fn device_error(what: &str, e: ClError) -> BackendError {
    BackendError::Device(format!("OpenCL {what}: {e} ({})", e.0))
}

/// A device found by enumeration, with what `devices` reports about it.
pub(crate) struct Found {
    pub(crate) id: cl_device_id,
    pub(crate) info: DeviceInfo,
}

/// Serializes device discovery and set-up. Drivers are not all thread-safe there: pocl
/// crashed in `clGetDeviceInfo` while another thread created a context (seen with pocl 3.1,
/// tests running in parallel). Launches and waits do not take it.
static SETUP: Mutex<()> = Mutex::new(());

pub(crate) fn setup_lock() -> std::sync::MutexGuard<'static, ()> {
    SETUP.lock().unwrap_or_else(|e| e.into_inner())
}

/// Every usable device of every platform, in platform order (`--devices` indexes this list).
pub(crate) fn enumerate() -> Result<Vec<Found>, BackendUnavailable> {
    let _setup = setup_lock();
    let platforms = match opencl3::platform::get_platforms() {
        Ok(p) => p,
        Err(ClError(DLOPEN_RUNTIME_LOAD_FAILED)) => {
            return Err(unavailable(
                "libOpenCL.so.1 not found (install an OpenCL ICD loader such as \
                 ocl-icd-libopencl1, and a driver)",
            ));
        }
        Err(ClError(CL_PLATFORM_NOT_FOUND_KHR)) => return Err(no_platform()),
        Err(e) => {
            return Err(unavailable(format!(
                "listing platforms failed: {e} ({})",
                e.0
            )));
        }
    };
    if platforms.is_empty() {
        return Err(no_platform());
    }
    let mut found = Vec::new();
    for platform in &platforms {
        let platform_name = platform.name().unwrap_or_default().trim().to_string();
        // CL_DEVICE_NOT_FOUND: a platform without devices (a driver installed for absent
        // hardware); any other error also only costs this platform its devices.
        let Ok(ids) = platform.get_devices(CL_DEVICE_TYPE_ALL) else {
            continue;
        };
        for id in ids {
            let dev = Device::new(id);
            // Devices that cannot build our source cannot run it.
            if !dev.available().unwrap_or(false) || !dev.compiler_available().unwrap_or(false) {
                continue;
            }
            let kind = match dev.dev_type().unwrap_or(0) {
                t if t & CL_DEVICE_TYPE_GPU != 0 => "gpu",
                t if t & CL_DEVICE_TYPE_CPU != 0 => "cpu",
                t if t & CL_DEVICE_TYPE_ACCELERATOR != 0 => "accelerator",
                _ => "other",
            };
            // "OpenCL 3.0 <vendor text>": the first two words say which OpenCL.
            let version = dev.version().unwrap_or_default();
            let version = version
                .split_whitespace()
                .take(2)
                .collect::<Vec<_>>()
                .join(" ");
            found.push(Found {
                id,
                info: DeviceInfo {
                    backend: BackendKind::OpenCl,
                    index: found.len(),
                    name: dev.name().unwrap_or_default().trim().to_string(),
                    compute_units: dev.max_compute_units().unwrap_or(0),
                    memory_bytes: dev.global_mem_size().ok(),
                    detail: format!("{platform_name}, {kind}, {version}"),
                },
            });
        }
    }
    if found.is_empty() {
        return Err(unavailable(format!(
            "no OpenCL device with a compiler on {} platform(s)",
            platforms.len()
        )));
    }
    Ok(found)
}

fn no_platform() -> BackendUnavailable {
    unavailable(
        "no OpenCL platform (the ICD loader found no driver in /etc/OpenCL/vendors; install one, \
         e.g. pocl-opencl-icd or a GPU driver)",
    )
}

impl HashBackend for OpenClBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::OpenCl
    }

    fn devices(&self) -> Result<Vec<DeviceInfo>, BackendUnavailable> {
        Ok(enumerate()?.into_iter().map(|f| f.info).collect())
    }

    /// One queue per worker; `threads == 0` means one.
    fn open(&self, index: usize, threads: usize) -> Result<Vec<Box<dyn HashWorker>>, BackendError> {
        let dev = enumerate()?
            .into_iter()
            .nth(index)
            .ok_or(BackendError::NoSuchDevice {
                backend: BackendKind::OpenCl,
                index,
            })?;
        (0..threads.max(1))
            .map(|_| {
                let q = ClQueue::new(dev.id)?;
                Ok(
                    Box::new(GpuWorker::new(dev.info.clone(), q, self.intensity))
                        as Box<dyn HashWorker>,
                )
            })
            .collect()
    }
}

/// Set from the runtime's event callback when a slot's result read completes, so the worker
/// thread sleeps on a condition variable instead of in `clWaitForEvents`, which some drivers
/// implement by spinning a core.
#[derive(Default)]
struct Signal {
    done: Mutex<bool>,
    cv: Condvar,
}

/// The event callback. `user` is an `Arc<Signal>` leaked by `ClQueue::enqueue` for exactly
/// this call.
extern "C" fn on_read_complete(_event: cl_event, _status: cl_int, user: *mut c_void) {
    // SAFETY: `user` came from `Arc::into_raw` in `enqueue`, and the runtime calls this once.
    let signal = unsafe { Arc::from_raw(user as *const Signal) };
    *signal.done.lock().unwrap_or_else(|e| e.into_inner()) = true;
    signal.cv.notify_all();
}

/// One result slot: the device buffer (`[counter, nonces...]`) and its host copy.
struct Slot {
    buf: Buffer<u32>,
    capacity: u32,
    /// Written by the runtime between `enqueue` and `wait`: never touched in between.
    host: Vec<u32>,
    /// The read of `buf` into `host`, and whether its callback was registered.
    pending: Option<(Event, Arc<Signal>, bool)>,
}

fn new_slot(context: &Context, capacity: u32) -> Result<Slot, BackendError> {
    let words = capacity as usize + 1;
    // SAFETY: no host pointer is given; the buffer is only accessed through the queue.
    let buf = unsafe { Buffer::<u32>::create(context, CL_MEM_READ_WRITE, words, ptr::null_mut()) }
        .map_err(|e| device_error("result buffer", e))?;
    Ok(Slot {
        buf,
        capacity,
        host: vec![0; words],
        pending: None,
    })
}

/// A device, its compiled kernel and one in-order command queue.
struct ClQueue {
    slots: Vec<Slot>,
    // Released in `Drop`, in this order, under `SETUP` (ManuallyDrop so `Drop` can).
    kernel: ManuallyDrop<Kernel>,
    queue: ManuallyDrop<CommandQueue>,
    context: ManuallyDrop<Context>,
    local: usize,
    per_item: u32,
}

impl ClQueue {
    fn new(id: cl_device_id) -> Result<ClQueue, BackendError> {
        let _setup = setup_lock();
        let dev = Device::new(id);
        let context = Context::from_device(&dev).map_err(|e| device_error("context", e))?;
        // In order, no profiling: double buffering relies on launches completing in order.
        let queue = CommandQueue::create_default(&context, 0)
            .map_err(|e| device_error("command queue", e))?;
        let program = Program::create_and_build_from_source(&context, kernels::opencl::SOURCE, "")
            .map_err(|log| {
                BackendError::Device(format!(
                    "OpenCL: building the SHA-256d kernel failed: {log}"
                ))
            })?;
        let kernel = Kernel::create(&program, kernels::sha256d::KERNEL)
            .map_err(|e| device_error("kernel", e))?;
        let max_local = kernel.get_work_group_size(id).unwrap_or(1).max(1);
        let local = LOCAL_SIZE.min(max_local);
        // On a CPU device (pocl) work-items are iterations of a loop the runtime runs per
        // work-group, so there is no scheduling cost to amortize (measured: 1 to 4 nonces per
        // item and work-groups of 8 to 1024 give the same rate on pocl 3.1).
        let is_cpu = dev.dev_type().unwrap_or(0) & CL_DEVICE_TYPE_CPU != 0;
        let per_item = if is_cpu { 1 } else { NONCES_PER_ITEM_GPU };
        // Created before `ClQueue` exists: its `Drop` takes `SETUP`, which is held here.
        let slots = (0..SLOTS)
            .map(|_| new_slot(&context, INITIAL_RESULTS))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(ClQueue {
            slots,
            kernel: ManuallyDrop::new(kernel),
            queue: ManuallyDrop::new(queue),
            context: ManuallyDrop::new(context),
            local,
            per_item,
        })
    }

    /// Waits for `slot`'s read (see `Signal`), then checks how its commands ended.
    fn finish_slot(&mut self, slot: usize) -> Result<(), BackendError> {
        let Some((event, signal, callback)) = self.slots[slot].pending.take() else {
            return Ok(());
        };
        if callback {
            let mut done = signal.done.lock().unwrap_or_else(|e| e.into_inner());
            while !*done {
                let (guard, timeout) = signal
                    .cv
                    .wait_timeout(done, Duration::from_millis(200))
                    .unwrap_or_else(|e| e.into_inner());
                done = guard;
                // A callback that never comes (a driver bug) must not hang the worker: the
                // event's own status says whether the read is complete.
                if !*done && timeout.timed_out() {
                    match event.command_execution_status() {
                        Ok(s) if s.0 <= CL_COMPLETE => break,
                        Ok(_) => {}
                        Err(e) => return Err(device_error("waiting for results", e)),
                    }
                }
            }
        } else {
            event
                .wait()
                .map_err(|e| device_error("waiting for results", e))?;
        }
        match event.command_execution_status() {
            // Negative: the read, or the kernel it waited for, failed.
            Ok(s) if s.0 < 0 => Err(BackendError::Device(format!(
                "OpenCL launch failed with status {}",
                s.0
            ))),
            Ok(_) => Ok(()),
            Err(e) => Err(device_error("result status", e)),
        }
    }
}

impl Drop for ClQueue {
    fn drop(&mut self) {
        // Releasing the last context may tear devices down (pocl does): not while another
        // thread sets one up.
        let _setup = setup_lock();
        // Pending reads write into `Slot::host`: they must be done before it is freed.
        let _ = self.queue.finish();
        self.slots.clear();
        // SAFETY: each is dropped exactly once, here, and not used afterwards.
        unsafe {
            ManuallyDrop::drop(&mut self.kernel);
            ManuallyDrop::drop(&mut self.queue);
            ManuallyDrop::drop(&mut self.context);
        }
    }
}

/// The counter's reset value, static because a non-blocking write reads it later.
static ZERO: [u32; 1] = [0];

impl DeviceQueue for ClQueue {
    fn set_job(&mut self, job: &KernelJob) -> Result<(), BackendError> {
        // Argument values are captured at each enqueue, so setting the job's arguments once
        // per scan is enough, and launches already queued keep theirs.
        for (i, w) in job.words.iter().enumerate() {
            let index = (kernels::sha256d::LAUNCH_ARGS + i) as u32;
            // SAFETY: argument `index` of `sha256d_scan` is a `uint`.
            unsafe { self.kernel.set_arg(index, w) }
                .map_err(|e| device_error("kernel argument", e))?;
        }
        Ok(())
    }

    fn capacity(&self, slot: usize) -> u32 {
        self.slots[slot].capacity
    }

    fn grow(&mut self, slot: usize, capacity: u32) -> Result<(), BackendError> {
        self.finish_slot(slot)?;
        self.slots[slot] = new_slot(&self.context, capacity)?;
        Ok(())
    }

    fn enqueue(&mut self, slot: usize, base: u32, count: u32) -> Result<(), BackendError> {
        // Never the case in the launch loop; keeps `host` safe if it ever were.
        self.finish_slot(slot)?;
        let threads = count.div_ceil(self.per_item) as usize;
        let global = threads.div_ceil(self.local) * self.local;
        let s = &mut self.slots[slot];
        // SAFETY (all below): `buf` holds `capacity + 1` u32 and lives until the queue is
        // finished (`grow` and `Drop` finish first); `ZERO` is static; `host` has the same
        // length as `buf` and is not touched until `finish_slot` saw the read complete; the
        // arguments match the kernel's signature (`kernels/opencl/sha256d_common.h`).
        unsafe {
            self.queue
                .enqueue_write_buffer(&mut s.buf, CL_NON_BLOCKING, 0, &ZERO, &[])
                .map_err(|e| device_error("clearing the counter", e))?;
            let k = &self.kernel;
            k.set_arg(0, &s.buf.get())
                .map_err(|e| device_error("kernel argument", e))?;
            k.set_arg(1, &s.capacity)
                .map_err(|e| device_error("kernel argument", e))?;
            k.set_arg(2, &base)
                .map_err(|e| device_error("kernel argument", e))?;
            k.set_arg(3, &count)
                .map_err(|e| device_error("kernel argument", e))?;
            self.queue
                .enqueue_nd_range_kernel(k.get(), 1, ptr::null(), &global, &self.local, &[])
                .map_err(|e| device_error("launch", e))?;
            let event = self
                .queue
                .enqueue_read_buffer(&s.buf, CL_NON_BLOCKING, 0, &mut s.host, &[])
                .map_err(|e| device_error("reading results", e))?;
            let signal = Arc::new(Signal::default());
            let user = Arc::into_raw(signal.clone()) as *mut c_void;
            let callback = event
                .set_callback(CL_COMPLETE, on_read_complete, user)
                .is_ok();
            if !callback {
                // Not registered, so never called: take the reference back.
                drop(Arc::from_raw(user as *const Signal));
            }
            s.pending = Some((event, signal, callback));
        }
        // Submit now: some drivers hold commands until a flush or a blocking call.
        self.queue.flush().map_err(|e| device_error("flush", e))?;
        Ok(())
    }

    fn wait(&mut self, slot: usize, out: &mut Vec<u32>) -> Result<u32, BackendError> {
        self.finish_slot(slot)?;
        let s = &self.slots[slot];
        let n = s.host[0];
        let stored = n.min(s.capacity) as usize;
        out.extend_from_slice(&s.host[1..=stored]);
        Ok(n)
    }
}

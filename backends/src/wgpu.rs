//! The WebGPU backend: SHA-256d nonce search in WGSL (`kernels::wgsl::SHA256D`) through `wgpu`.
//!
//! Only the Vulkan, Metal and DX12 backends of wgpu are compiled in (no GL). wgpu opens the
//! Vulkan loader with `dlopen` at run time, so the binary starts, and this backend reports
//! why it has no device, on a machine without Vulkan. With Mesa's lavapipe (a Vulkan driver
//! running on the CPU) the WGSL kernel is tested on machines without a GPU.
//!
//! Per job the host computes what does not depend on the nonce (midstate of header bytes
//! 0..64, the first rounds of block 2, the fixed schedule terms) and hands it to the kernel
//! with each dispatch. The kernel reports *candidates* (digest word 7 within the target's top
//! word); each one is re-hashed here and checked against the full target before it is
//! reported, like the CPU backend does.
//!
//! Each worker owns its own `wgpu::Device` and two sets of buffers ("slots"): while the host
//! reads the results of one dispatch the device already runs the next, and waiting is a
//! blocking `Device::poll`, so the worker thread sleeps instead of spinning. The number of
//! nonces per dispatch is tuned when the worker is opened so one dispatch takes 50–100 ms
//! (or set with [`WgpuBackend::with_intensity`]).

use std::collections::VecDeque;
use std::ops::RangeInclusive;
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use crate::device::{
    BackendError, BackendKind, BackendUnavailable, DeviceInfo, HashBackend, HashWorker,
    HeaderTemplate, NonceRange, ScanControl, ScanOutcome, ScanTarget, sha256d,
};
use crate::sha256::HeaderPrecompute;

/// Invocations per workgroup; must match `WORKGROUP_SIZE` in the WGSL.
pub const WORKGROUP_SIZE: u32 = 64;
/// Nonces each invocation hashes; must match `PER_INVOCATION` in the WGSL.
pub const PER_INVOCATION: u32 = 4;
/// Accepted intensities (log2 of nonces per dispatch). Below 2^8 the launch overhead
/// dominates; 2^31 keeps every offset in the kernel within 32 bits.
pub const INTENSITY_RANGE: RangeInclusive<u32> = 8..=31;

/// Nonces per workgroup.
const NONCES_PER_GROUP: u32 = WORKGROUP_SIZE * PER_INVOCATION;
/// WebGPU's default `max_compute_workgroups_per_dimension` (the device's own is used).
#[cfg(test)]
const MAX_GROUPS_PER_DIM: u32 = 65_535;
/// Result slots of a normal dispatch. Targets at pool difficulty give about one candidate per
/// 2^32 nonces, so this overflows only with very easy targets; then the batch is rescanned.
const FOUND_CAPACITY: u32 = 1024;
/// The largest result buffer an overflow rescan allocates (in slots); a sub-range at most this
/// long cannot overflow it, which bounds the rescan.
const MAX_FOUND_CAPACITY: u32 = 1 << 24;
/// Bytes of the uniform `Params` block (7 × vec4<u32>).
const PARAMS_BYTES: usize = 7 * 16;
/// Tuning aims for dispatches of 50–100 ms: long enough that launch and readback costs vanish,
/// short enough that a cancelled job wastes little device time.
const TUNE_MAX_DISPATCH: Duration = Duration::from_millis(100);
/// Calibration dispatches grow until one takes at least this long (to time it reliably).
const TUNE_MIN_SAMPLE: Duration = Duration::from_millis(20);
/// Each `Device::poll` waits at most this long; `MAX_POLL_RETRIES` of them in a row mean a hung
/// device (wgpu itself would wait forever).
pub(crate) const POLL_TIMEOUT: Duration = Duration::from_secs(60);
pub(crate) const MAX_POLL_RETRIES: u32 = 2;

/// The wgpu backends this crate may use: no GL (the GL backend needs a display and is slow).
fn wanted_backends() -> ::wgpu::Backends {
    ::wgpu::Backends::VULKAN | ::wgpu::Backends::METAL | ::wgpu::Backends::DX12
}

/// WebGPU adapters (Vulkan/Metal/DX12) as hashing devices.
#[derive(Clone, Debug, Default)]
pub struct WgpuBackend {
    /// log2 of nonces per dispatch; `None`: tuned when a worker is opened.
    intensity: Option<u32>,
}

impl WgpuBackend {
    /// Dispatch size tuned per device when a worker is opened.
    pub fn new() -> Self {
        WgpuBackend { intensity: None }
    }

    /// Fixes the dispatch size to 2^`log2` nonces (clamped to [`INTENSITY_RANGE`]) instead of
    /// tuning it; `None` restores tuning.
    pub fn with_intensity(mut self, log2: Option<u32>) -> Self {
        self.intensity = log2.map(clamp_intensity);
        self
    }

    /// The fixed intensity, if one was set.
    pub fn intensity(&self) -> Option<u32> {
        self.intensity
    }
}

fn clamp_intensity(log2: u32) -> u32 {
    log2.clamp(*INTENSITY_RANGE.start(), *INTENSITY_RANGE.end())
}

fn unavailable(reason: String) -> BackendUnavailable {
    BackendUnavailable {
        backend: BackendKind::Wgpu,
        reason,
    }
}

fn device_error(what: &str, e: impl std::fmt::Display) -> BackendError {
    BackendError::Device(format!("wgpu: {what}: {e}"))
}

/// A fresh instance per call: an adapter may be asked for only one device, and enumerating
/// is cheap next to creating a device.
pub(crate) fn instance() -> Result<::wgpu::Instance, BackendUnavailable> {
    // `Instance::new` panics when no backend is compiled for this platform (e.g. Metal-only
    // features on Linux); say so instead.
    if !::wgpu::Instance::enabled_backend_features().intersects(wanted_backends()) {
        return Err(unavailable(
            "none of wgpu's Vulkan/Metal/DX12 backends is built for this platform".into(),
        ));
    }
    // API validation layers are for debugging wgpu itself; WGPU_DEBUG etc. still work.
    let mut descriptor = ::wgpu::InstanceDescriptor::new_without_display_handle();
    descriptor.backends = wanted_backends();
    descriptor.flags = ::wgpu::InstanceFlags::empty().with_env();
    Ok(::wgpu::Instance::new(descriptor))
}

pub(crate) fn adapters(
    instance: &::wgpu::Instance,
) -> Result<Vec<::wgpu::Adapter>, BackendUnavailable> {
    let adapters = pollster::block_on(instance.enumerate_adapters(wanted_backends()));
    if adapters.is_empty() {
        Err(unavailable(no_adapter_reason()))
    } else {
        Ok(adapters)
    }
}

/// Why no adapter was found, as precisely as we can tell: wgpu only logs it.
fn no_adapter_reason() -> String {
    #[cfg(target_os = "linux")]
    {
        if !vulkan_loader_present() {
            return "no Vulkan/Metal/DX12 adapter found: the Vulkan loader (libvulkan.so.1) cannot be \
                    loaded (install libvulkan1 and a Vulkan driver; mesa-vulkan-drivers \
                    provides lavapipe, which runs on the CPU)"
                .into();
        }
        "no Vulkan/Metal/DX12 adapter found: the Vulkan loader is installed but lists no usable \
         device (install a Vulkan driver for the GPU, or mesa-vulkan-drivers for lavapipe)"
            .into()
    }
    #[cfg(not(target_os = "linux"))]
    {
        "no Vulkan/Metal/DX12 adapter found (is a Vulkan loader and a driver installed?)".into()
    }
}

/// Whether `libvulkan.so.1` can be loaded (only to word the message above).
#[cfg(target_os = "linux")]
fn vulkan_loader_present() -> bool {
    // SAFETY: the name is a valid C string; the handle is closed again right away and no
    // symbol from it is used. The Vulkan loader has no harmful load-time side effects.
    unsafe {
        let h = libc::dlopen(
            c"libvulkan.so.1".as_ptr(),
            libc::RTLD_LAZY | libc::RTLD_LOCAL,
        );
        if h.is_null() {
            return false;
        }
        libc::dlclose(h);
    }
    true
}

fn device_type_name(t: ::wgpu::DeviceType) -> &'static str {
    match t {
        ::wgpu::DeviceType::DiscreteGpu => "discrete GPU",
        ::wgpu::DeviceType::IntegratedGpu => "integrated GPU",
        ::wgpu::DeviceType::VirtualGpu => "virtual GPU",
        ::wgpu::DeviceType::Cpu => "cpu",
        ::wgpu::DeviceType::Other => "other",
    }
}

pub(crate) fn adapter_info(index: usize, adapter: &::wgpu::Adapter) -> DeviceInfo {
    let a = adapter.get_info();
    // wgpu does not expose compute units; a CPU adapter (lavapipe) uses every core.
    let compute_units = if a.device_type == ::wgpu::DeviceType::Cpu {
        std::thread::available_parallelism()
            .map(|n| u32::try_from(n.get()).unwrap_or(u32::MAX))
            .unwrap_or(1)
    } else {
        0
    };
    let driver = [a.driver.as_str(), a.driver_info.as_str()]
        .iter()
        .filter(|s| !s.is_empty())
        .copied()
        .collect::<Vec<_>>()
        .join(" ");
    let mut detail = format!("{} {}", a.backend, device_type_name(a.device_type));
    if !driver.is_empty() {
        detail.push_str(&format!(" ({driver})"));
    }
    DeviceInfo {
        backend: BackendKind::Wgpu,
        index,
        name: a.name,
        compute_units,
        memory_bytes: None,
        detail,
    }
}

impl HashBackend for WgpuBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Wgpu
    }

    fn devices(&self) -> Result<Vec<DeviceInfo>, BackendUnavailable> {
        let instance = instance()?;
        Ok(adapters(&instance)?
            .iter()
            .enumerate()
            .map(|(i, a)| adapter_info(i, a))
            .collect())
    }

    /// One worker (its own device and queue) per thread; `threads == 0` means 1.
    fn open(&self, index: usize, threads: usize) -> Result<Vec<Box<dyn HashWorker>>, BackendError> {
        (0..threads.max(1))
            .map(|_| {
                let instance = instance()?;
                let mut adapters = adapters(&instance)?;
                if index >= adapters.len() {
                    return Err(BackendError::NoSuchDevice {
                        backend: BackendKind::Wgpu,
                        index,
                    });
                }
                let adapter = adapters.swap_remove(index);
                let info = adapter_info(index, &adapter);
                WgpuWorker::new(&adapter, info, self.intensity)
                    .map(|w| Box::new(w) as Box<dyn HashWorker>)
            })
            .collect()
    }
}

/// The device objects every dispatch needs.
struct Gpu {
    device: ::wgpu::Device,
    queue: ::wgpu::Queue,
    pipeline: ::wgpu::ComputePipeline,
    layout: ::wgpu::BindGroupLayout,
    /// `max_compute_workgroups_per_dimension`: larger grids go 2-D.
    max_groups: u32,
    /// The first error wgpu reported outside an error scope (it would panic otherwise).
    error: Arc<Mutex<Option<String>>>,
}

impl Gpu {
    fn new(adapter: &::wgpu::Adapter) -> Result<Gpu, BackendError> {
        let (device, queue) =
            pollster::block_on(adapter.request_device(&::wgpu::DeviceDescriptor {
                label: Some("rigworker sha256d"),
                required_features: ::wgpu::Features::empty(),
                // The adapter's own limits: larger result buffers for overflow rescans where allowed.
                required_limits: adapter.limits(),
                ..Default::default()
            }))
            .map_err(|e| device_error("cannot open the device", e))?;

        let error = Arc::new(Mutex::new(None));
        let sink = error.clone();
        device.on_uncaptured_error(Arc::new(move |e: ::wgpu::Error| {
            record(&sink, e.to_string())
        }));
        let sink = error.clone();
        device.set_device_lost_callback(move |reason, msg| {
            record(&sink, format!("device lost ({reason:?}): {msg}"));
        });

        // Shader compilation and pipeline errors are caught here instead of later.
        let internal_scope = device.push_error_scope(::wgpu::ErrorFilter::Internal);
        let validation_scope = device.push_error_scope(::wgpu::ErrorFilter::Validation);
        let module = device.create_shader_module(::wgpu::ShaderModuleDescriptor {
            label: Some("sha256d.wgsl"),
            source: ::wgpu::ShaderSource::Wgsl(kernels::wgsl::SHA256D.into()),
        });
        let entry = |binding, ty| ::wgpu::BindGroupLayoutEntry {
            binding,
            visibility: ::wgpu::ShaderStages::COMPUTE,
            ty: ::wgpu::BindingType::Buffer {
                ty,
                has_dynamic_offset: false,
                min_binding_size: None,
            },
            count: None,
        };
        let layout = device.create_bind_group_layout(&::wgpu::BindGroupLayoutDescriptor {
            label: Some("sha256d"),
            entries: &[
                entry(0, ::wgpu::BufferBindingType::Uniform),
                entry(1, ::wgpu::BufferBindingType::Storage { read_only: false }),
            ],
        });
        let pipeline_layout = device.create_pipeline_layout(&::wgpu::PipelineLayoutDescriptor {
            label: Some("sha256d"),
            bind_group_layouts: &[Some(&layout)],
            immediate_size: 0,
        });
        let pipeline = device.create_compute_pipeline(&::wgpu::ComputePipelineDescriptor {
            label: Some("sha256d"),
            layout: Some(&pipeline_layout),
            module: &module,
            entry_point: Some("main"),
            compilation_options: Default::default(),
            cache: None,
        });
        // Scopes pop innermost first.
        for scope in [validation_scope, internal_scope] {
            if let Some(e) = pollster::block_on(scope.pop()) {
                return Err(device_error("cannot build the SHA-256d kernel", e));
            }
        }
        let max_groups = device.limits().max_compute_workgroups_per_dimension;
        Ok(Gpu {
            device,
            queue,
            pipeline,
            layout,
            max_groups,
            error,
        })
    }

    /// The error wgpu reported asynchronously, if any: the device is then unusable.
    fn check(&self) -> Result<(), BackendError> {
        match self.error.lock() {
            Ok(g) => match g.as_ref() {
                Some(e) => Err(BackendError::Device(format!("wgpu: {e}"))),
                None => Ok(()),
            },
            Err(_) => Err(BackendError::Device("wgpu: error state poisoned".into())),
        }
    }

    /// Blocks (the thread sleeps in the driver) until `submission` has finished and the
    /// callbacks of finished work (buffer mappings) have run.
    fn wait(&self, submission: ::wgpu::SubmissionIndex) -> Result<(), BackendError> {
        let mut tries = 0;
        loop {
            match self.device.poll(::wgpu::PollType::Wait {
                submission_index: Some(submission.clone()),
                timeout: Some(POLL_TIMEOUT),
            }) {
                Ok(_) => return self.check(),
                Err(::wgpu::PollError::Timeout) if tries < MAX_POLL_RETRIES => tries += 1,
                Err(e) => {
                    self.check()?;
                    return Err(device_error("waiting for a dispatch", e));
                }
            }
        }
    }
}

fn record(sink: &Mutex<Option<String>>, msg: String) {
    if let Ok(mut g) = sink.lock() {
        g.get_or_insert(msg);
    }
}

/// The buffers of one dispatch in flight.
struct Slot {
    params: ::wgpu::Buffer,
    /// `{ count: atomic<u32>, nonces: array<u32> }`
    found: ::wgpu::Buffer,
    /// `found` copied here for the host to map.
    readback: ::wgpu::Buffer,
    bind: ::wgpu::BindGroup,
    capacity: u32,
}

impl Slot {
    fn new(gpu: &Gpu, capacity: u32) -> Slot {
        let d = &gpu.device;
        let found_bytes = 4 + 4 * u64::from(capacity);
        let params = d.create_buffer(&::wgpu::BufferDescriptor {
            label: Some("sha256d params"),
            size: PARAMS_BYTES as u64,
            usage: ::wgpu::BufferUsages::UNIFORM | ::wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let found = d.create_buffer(&::wgpu::BufferDescriptor {
            label: Some("sha256d found"),
            size: found_bytes,
            usage: ::wgpu::BufferUsages::STORAGE
                | ::wgpu::BufferUsages::COPY_SRC
                | ::wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let readback = d.create_buffer(&::wgpu::BufferDescriptor {
            label: Some("sha256d readback"),
            size: found_bytes,
            usage: ::wgpu::BufferUsages::MAP_READ | ::wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let bind = d.create_bind_group(&::wgpu::BindGroupDescriptor {
            label: Some("sha256d"),
            layout: &gpu.layout,
            entries: &[
                ::wgpu::BindGroupEntry {
                    binding: 0,
                    resource: params.as_entire_binding(),
                },
                ::wgpu::BindGroupEntry {
                    binding: 1,
                    resource: found.as_entire_binding(),
                },
            ],
        });
        Slot {
            params,
            found,
            readback,
            bind,
            capacity,
        }
    }
}

/// Nonce-independent inputs of the kernel for one header, in `Params` order (without `run`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct JobParams([u32; 24]);

/// One submitted dispatch: nonces `base .. base + count` on `slot`.
struct Pending {
    slot: usize,
    base: u32,
    count: u32,
    submission: ::wgpu::SubmissionIndex,
}

/// What a finished dispatch reported.
enum Readout {
    /// Every candidate, in no particular order.
    Complete(Vec<u32>),
    /// More candidates than the buffer holds (this many in all): rescan.
    Overflow(u32),
}

/// One WebGPU device driven by one thread.
pub struct WgpuWorker {
    info: DeviceInfo,
    gpu: Gpu,
    slots: [Slot; 2],
    /// The slot the next dispatch uses (they alternate).
    next_slot: usize,
    /// log2 of nonces per dispatch.
    intensity: u32,
}

impl WgpuWorker {
    fn new(
        adapter: &::wgpu::Adapter,
        mut info: DeviceInfo,
        intensity: Option<u32>,
    ) -> Result<Self, BackendError> {
        let gpu = Gpu::new(adapter)?;
        let slots = [
            Slot::new(&gpu, FOUND_CAPACITY),
            Slot::new(&gpu, FOUND_CAPACITY),
        ];
        let mut w = WgpuWorker {
            info: info.clone(),
            gpu,
            slots,
            next_slot: 0,
            intensity: 16,
        };
        w.intensity = match intensity {
            Some(i) => clamp_intensity(i),
            None => w.tune()?,
        };
        w.gpu.check()?;
        info.detail
            .push_str(&format!(", 2^{} nonces/dispatch", w.intensity));
        w.info = info;
        Ok(w)
    }

    /// log2 of nonces per dispatch.
    pub fn intensity(&self) -> u32 {
        self.intensity
    }

    /// Nonces per dispatch.
    pub fn batch_nonces(&self) -> u32 {
        1 << self.intensity
    }

    /// Picks the intensity whose dispatch takes at most 100 ms and (the rate being constant)
    /// more than 50 ms: powers of two apart, exactly one falls in that window.
    fn tune(&mut self) -> Result<u32, BackendError> {
        let job = job_params(&HeaderTemplate([0x5a; 80]));
        // A zero target: candidates are so rare that readback costs nothing.
        let top = 0;
        // The first dispatch also pays for lazy driver work (shader compile, allocation).
        self.dispatch_and_read(0, &job, top, 0, 1 << 12)?;
        let mut log2 = 12u32;
        loop {
            let t0 = Instant::now();
            self.dispatch_and_read(0, &job, top, 0, 1 << log2)?;
            let dt = t0.elapsed().max(Duration::from_micros(1));
            if dt >= TUNE_MIN_SAMPLE || log2 >= *INTENSITY_RANGE.end() {
                let rate = f64::from(1u32 << log2) / dt.as_secs_f64();
                let best = (rate * TUNE_MAX_DISPATCH.as_secs_f64()).log2().floor();
                // `best` is finite and non-negative here; the clamp bounds the cast.
                let best = best.clamp(0.0, f64::from(*INTENSITY_RANGE.end())) as u32;
                return Ok(clamp_intensity(best));
            }
            // Jump close to the sample length in one step when the dispatch was far too short.
            let ratio = TUNE_MIN_SAMPLE.as_secs_f64() / dt.as_secs_f64();
            let step = (ratio.log2().floor() as u32).clamp(1, 4);
            log2 = (log2 + step).min(*INTENSITY_RANGE.end());
        }
    }

    fn params_bytes(job: &JobParams, base: u32, count: u32, top: u32) -> [u8; PARAMS_BYTES] {
        let mut b = [0u8; PARAMS_BYTES];
        let run = [base, count, top, 0];
        for (i, w) in job.0.iter().chain(run.iter()).enumerate() {
            b[4 * i..4 * i + 4].copy_from_slice(&w.to_le_bytes());
        }
        b
    }

    /// Queues one dispatch of `count` (>= 1) nonces from `base` on `slot`; returns at once.
    fn submit(
        slot: &Slot,
        gpu: &Gpu,
        job: &JobParams,
        top: u32,
        base: u32,
        count: u32,
    ) -> ::wgpu::SubmissionIndex {
        gpu.queue
            .write_buffer(&slot.params, 0, &Self::params_bytes(job, base, count, top));
        let mut enc = gpu
            .device
            .create_command_encoder(&::wgpu::CommandEncoderDescriptor {
                label: Some("sha256d"),
            });
        // Only the counter needs resetting: slots past it are never read.
        enc.clear_buffer(&slot.found, 0, Some(4));
        {
            let mut pass = enc.begin_compute_pass(&::wgpu::ComputePassDescriptor {
                label: Some("sha256d"),
                timestamp_writes: None,
            });
            pass.set_pipeline(&gpu.pipeline);
            pass.set_bind_group(0, &slot.bind, &[]);
            let (x, y) = grid(count, gpu.max_groups);
            pass.dispatch_workgroups(x, y, 1);
        }
        enc.copy_buffer_to_buffer(&slot.found, 0, &slot.readback, 0, slot.found.size());
        gpu.queue.submit([enc.finish()])
    }

    /// Waits for a submitted dispatch and reads its results.
    fn read(
        slot: &Slot,
        gpu: &Gpu,
        submission: ::wgpu::SubmissionIndex,
    ) -> Result<Readout, BackendError> {
        let (tx, rx) = mpsc::channel();
        // Requested before waiting, so the wait below also completes the mapping.
        slot.readback
            .slice(..)
            .map_async(::wgpu::MapMode::Read, move |r| {
                let _ = tx.send(r);
            });
        gpu.wait(submission)?;
        let mapped = match rx.try_recv() {
            Ok(r) => r,
            // Not yet delivered: one more blocking poll runs the callback.
            Err(_) => {
                gpu.device
                    .poll(::wgpu::PollType::wait_indefinitely())
                    .map_err(|e| device_error("mapping results", e))?;
                rx.try_recv().map_err(|_| {
                    BackendError::Device("wgpu: result buffer was never mapped".into())
                })?
            }
        };
        mapped.map_err(|e| device_error("mapping results", e))?;
        let out = {
            let data = slot
                .readback
                .slice(..)
                .get_mapped_range()
                .map_err(|e| device_error("reading results", e))?;
            let word = |i: usize| {
                data.get(4 * i..4 * i + 4)
                    .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            };
            let count = word(0).unwrap_or(0);
            if count > slot.capacity {
                Readout::Overflow(count)
            } else {
                Readout::Complete((1..=count as usize).filter_map(word).collect())
            }
        };
        slot.readback.unmap();
        Ok(out)
    }

    /// Submits and waits for one dispatch, rescanning on overflow until every candidate is
    /// known. Used for tuning and for overflow rescans, where nothing else is in flight.
    fn dispatch_and_read(
        &mut self,
        slot: usize,
        job: &JobParams,
        top: u32,
        base: u32,
        count: u32,
    ) -> Result<Vec<u32>, BackendError> {
        let s = &self.slots[slot];
        let sub = Self::submit(s, &self.gpu, job, top, base, count);
        match Self::read(s, &self.gpu, sub)? {
            Readout::Complete(v) => Ok(v),
            Readout::Overflow(n) => self.rescan(job, top, base, count, n),
        }
    }

    /// All candidates of `base .. base + count`, whose first dispatch found `total` (more than
    /// its buffer held). A dispatch with a buffer of `total` slots catches them all; when that
    /// is too big, the range is halved until a part's length fits (then it cannot overflow).
    fn rescan(
        &self,
        job: &JobParams,
        top: u32,
        base: u32,
        count: u32,
        total: u32,
    ) -> Result<Vec<u32>, BackendError> {
        let max_slots = u32::try_from(
            (self.gpu.device.limits().max_storage_buffer_binding_size / 4).saturating_sub(1),
        )
        .unwrap_or(u32::MAX)
        .clamp(FOUND_CAPACITY, MAX_FOUND_CAPACITY);
        let big = Slot::new(
            &self.gpu,
            total
                .checked_next_power_of_two()
                .unwrap_or(u32::MAX)
                .min(max_slots),
        );
        let mut out = Vec::new();
        let mut todo = vec![(base, count)];
        while let Some((b, n)) = todo.pop() {
            let sub = Self::submit(&big, &self.gpu, job, top, b, n);
            match Self::read(&big, &self.gpu, sub)? {
                Readout::Complete(v) => out.extend(v),
                Readout::Overflow(_) if n > 1 => {
                    let half = n / 2;
                    todo.push((b + half, n - half));
                    todo.push((b, half));
                }
                // A single nonce cannot overflow a buffer of at least one slot.
                Readout::Overflow(_) => {
                    return Err(BackendError::Device(
                        "wgpu: result counter is inconsistent".into(),
                    ));
                }
            }
        }
        Ok(out)
    }

    /// Keeps the candidates that are in the dispatched range and meet the full target,
    /// ascending (the kernel's atomic counter orders them arbitrarily).
    fn finish(
        header: &HeaderTemplate,
        target: &ScanTarget,
        base: u32,
        count: u32,
        mut cands: Vec<u32>,
        found: &mut Vec<u32>,
    ) {
        cands.sort_unstable();
        cands.dedup();
        let last = u64::from(base) + u64::from(count) - 1;
        found.extend(cands.into_iter().filter(|&n| {
            n >= base && u64::from(n) <= last && target.is_met_by(&sha256d(&header.with_nonce(n)))
        }));
    }
}

/// Workgroups for `count` nonces as an `x × y` grid within the per-dimension limit.
fn grid(count: u32, max_per_dim: u32) -> (u32, u32) {
    let groups = count.div_ceil(NONCES_PER_GROUP).max(1);
    let x = groups.min(max_per_dim.max(1));
    (x, groups.div_ceil(x))
}

impl HashWorker for WgpuWorker {
    fn info(&self) -> &DeviceInfo {
        &self.info
    }

    fn min_scan_nonces(&self) -> u64 {
        u64::from(self.batch_nonces())
    }

    fn scan(
        &mut self,
        header: &HeaderTemplate,
        target: &ScanTarget,
        range: NonceRange,
        ctl: &ScanControl,
        found: &mut Vec<u32>,
    ) -> Result<ScanOutcome, BackendError> {
        self.gpu.check()?;
        let job = job_params(header);
        let top = target.top_word();
        let batch = u64::from(self.batch_nonces());
        let end = u64::from(range.end);
        let mut next = u64::from(range.start);
        let mut done = 0u64;
        let mut in_flight: VecDeque<Pending> = VecDeque::with_capacity(2);
        let mut stop = false;
        loop {
            if ctl.is_cancelled() {
                stop = true;
            }
            if in_flight.is_empty() && (stop || next > end) {
                return Ok(ScanOutcome {
                    hashes_done: done,
                    cancelled: stop,
                });
            }
            // Two dispatches queued: the device runs one while the host reads the other.
            // After a cancel nothing new is queued, but a dispatch already in flight is still
            // read: its hashes were done and its nonces may still be accepted (the engine
            // decides), and the queue is in order, so the next scan would wait for it anyway.
            while !stop && in_flight.len() < 2 && next <= end {
                // `next <= end <= u32::MAX` and `count <= end - next + 1`: no wrap.
                let count = (end - next + 1).min(batch) as u32;
                let slot = self.next_slot;
                self.next_slot ^= 1;
                let base = next as u32;
                let submission = Self::submit(&self.slots[slot], &self.gpu, &job, top, base, count);
                in_flight.push_back(Pending {
                    slot,
                    base,
                    count,
                    submission,
                });
                next += u64::from(count);
            }
            let Some(p) = in_flight.pop_front() else {
                continue;
            };
            let cands = match Self::read(&self.slots[p.slot], &self.gpu, p.submission)? {
                Readout::Complete(v) => v,
                Readout::Overflow(total) => self.rescan(&job, top, p.base, p.count, total)?,
            };
            Self::finish(header, target, p.base, p.count, cands, found);
            done += u64::from(p.count);
            ctl.add_hashes(u64::from(p.count));
        }
    }
}

// ---- host-side precomputation (the kernel's `Params`) ----

/// The kernel's nonce-independent inputs (see the WGSL's `Params`): block 2's words are
/// `W0..W2` from header bytes 64..76, `W3` the nonce, `W4` the padding bit, `W5..W14` zero and
/// `W15` the length.
fn job_params(header: &HeaderTemplate) -> JobParams {
    let pre = HeaderPrecompute::new(header);
    let (mid, st3) = (pre.mid, pre.st3);
    let r3 = pre.r3();
    let (w16, w17, w18c, w19c, w31c, w32c) =
        (pre.w16, pre.w17, pre.w18c, pre.w19c, pre.w31c, pre.w32c);
    let mut p = [0u32; 24];
    p[..8].copy_from_slice(&mid);
    p[8..16].copy_from_slice(&st3);
    p[16..24].copy_from_slice(&[r3[0], r3[4], w16, w17, w18c, w19c, w31c, w32c]);
    JobParams(p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sha256::{K, round};

    /// The precomputed state, continued with the nonce the way the kernel does it, reaches
    /// the real first-hash state after block 2's round 3.
    #[test]
    fn round3_is_linear_in_the_nonce() {
        let hdr = HeaderTemplate(std::array::from_fn(|i| (i as u8).wrapping_mul(29) ^ 0x33));
        let p = job_params(&hdr);
        let st3: [u32; 8] = p.0[8..16].try_into().unwrap();
        for nonce in [0u32, 1, 0x1234_5678, u32::MAX] {
            let w3 = nonce.swap_bytes();
            let r = round(st3, K[3].wrapping_add(w3));
            assert_eq!(r[0], p.0[16].wrapping_add(w3));
            assert_eq!(r[4], p.0[17].wrapping_add(w3));
        }
    }

    #[test]
    fn grid_covers_every_nonce_within_limits() {
        for count in [1u32, 255, 256, 257, 1 << 20, (1 << 24) + 3, 1 << 31] {
            let (x, y) = grid(count, MAX_GROUPS_PER_DIM);
            assert!(x <= MAX_GROUPS_PER_DIM && y <= MAX_GROUPS_PER_DIM);
            let covered = u64::from(x) * u64::from(y) * u64::from(NONCES_PER_GROUP);
            assert!(covered >= u64::from(count), "{count}");
            // At most one row of workgroups more than needed.
            assert!(covered - u64::from(count) < u64::from(x + 1) * u64::from(NONCES_PER_GROUP));
        }
    }

    #[test]
    fn intensity_is_clamped() {
        assert_eq!(
            WgpuBackend::new().with_intensity(Some(3)).intensity(),
            Some(8)
        );
        assert_eq!(
            WgpuBackend::new().with_intensity(Some(40)).intensity(),
            Some(31)
        );
        assert_eq!(
            WgpuBackend::new().with_intensity(Some(20)).intensity(),
            Some(20)
        );
        assert_eq!(WgpuBackend::new().with_intensity(None).intensity(), None);
    }

    /// The WGSL parses and validates (no device needed), and its constants match ours.
    #[test]
    fn wgsl_validates() {
        let src = kernels::wgsl::SHA256D;
        let module = naga::front::wgsl::parse_str(src)
            .unwrap_or_else(|e| panic!("{}", e.emit_to_string(src)));
        naga::valid::Validator::new(
            naga::valid::ValidationFlags::all(),
            naga::valid::Capabilities::empty(),
        )
        .validate(&module)
        .unwrap_or_else(|e| panic!("{e:?}"));
        assert!(src.contains(&format!("const WORKGROUP_SIZE: u32 = {WORKGROUP_SIZE}u;")));
        assert!(src.contains(&format!("const PER_INVOCATION: u32 = {PER_INVOCATION}u;")));
    }
}

//! The WebGPU runtime of GPU proving: [`WgpuProveDevice`] implements [`GpuDevice`] on one wgpu
//! adapter (Vulkan, Metal or DX12; lavapipe runs it on the CPU), with the WGSL kernels of
//! `kernels::wgsl` (one module per kernel, all built when the device is opened).
//!
//! Every operation goes to the device's single queue in call order: each launch, clear and
//! read-back copy is its own submission, and `write` uses `Queue::write_buffer`, which wgpu
//! runs before the next submission and after the ones already made, so host writes stay in
//! order with kernels. `read` maps a staging buffer and blocks in `Device::poll`.
//!
//! wgpu reports validation and out-of-memory errors through error scopes, which belong to the
//! whole device, so every call that can raise one holds [`WgpuProveDevice`]'s lock from its
//! `push_error_scope` to its `pop_error_scope`, and the errors become
//! [`ProveError::Device`]. Errors outside a scope (device loss, say) are recorded by the
//! device's callbacks and returned by the next call; wgpu would panic on them otherwise.
//!
//! The launch geometry is the WGSL's (`kernels::wgsl::BN254_WORKGROUP_SIZE` invocations per
//! workgroup, an x × y grid of workgroups beyond the per-dimension limit) and the invocation
//! count travels in word `BN254_THREADS_WORD` of the parameter block.
//!
//! On lavapipe the kernels are correct but slow to build (Mesa compiles each pipeline when it
//! is first dispatched: seconds for G1, tens of seconds for G2 on a small CPU; its disk cache
//! keeps them afterwards), and llvmpipe caps the loop iterations of one invocation, which
//! bounds the additions per invocation; `kernels/wgsl/bn254_common.wgsl` gives the numbers.

use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use ::wgpu::util::DeviceExt;
use kernels::wgsl::{BN254_PARAM_WORDS, BN254_THREADS_WORD, BN254_WORKGROUP_SIZE};

use super::device::{GpuDevice, Kernel};
use crate::device::DeviceInfo;
use crate::prove::ProveError;

/// The backend's name, in errors and as `--backend` spells it.
const BACKEND: &str = "wgpu";
/// Bytes of the uniform parameter block (`array<vec4<u32>, 2>`).
const PARAMS_BYTES: usize = BN254_PARAM_WORDS * 4;
/// `Device::poll` gives up after 60 s per call. A proving kernel on lavapipe may legitimately
/// run for minutes, so a wait is retried this often before the device is declared hung.
const MAX_WAIT_POLLS: u32 = 10;
/// Host data is copied into wgpu's staging memory in pieces of at most this many bytes, so a
/// large upload does not need a second copy of itself.
const WRITE_CHUNK_BYTES: usize = 16 << 20;

fn device_error(message: impl Into<String>) -> ProveError {
    ProveError::Device {
        backend: BACKEND.into(),
        message: message.into(),
    }
}

/// Opens wgpu adapter `index` (numbered as the hashing backend lists them, `rigworker
/// devices`) for proving and builds every proving kernel.
pub fn open(index: usize) -> Result<WgpuProveDevice, ProveError> {
    WgpuProveDevice::open(index)
}

/// A buffer of 32-bit words on a [`WgpuProveDevice`].
pub struct WgpuBuffer {
    buffer: ::wgpu::Buffer,
    words: usize,
}

impl WgpuBuffer {
    /// Capacity in 32-bit words.
    pub fn words(&self) -> usize {
        self.words
    }
}

/// One kernel, ready to bind and dispatch.
struct Pipeline {
    kernel: Kernel,
    pipeline: ::wgpu::ComputePipeline,
    layout: ::wgpu::BindGroupLayout,
}

/// One WebGPU adapter, opened for proving.
pub struct WgpuProveDevice {
    info: DeviceInfo,
    device: ::wgpu::Device,
    queue: ::wgpu::Queue,
    /// In the order of [`Kernel::ALL`].
    pipelines: Vec<Pipeline>,
    /// `max_compute_workgroups_per_dimension`.
    max_groups: u32,
    /// The largest buffer that can also be bound whole as storage, in bytes (a multiple of 4).
    max_buffer_bytes: u64,
    /// The first error wgpu reported outside an error scope: the device is unusable after it.
    error: Arc<Mutex<Option<String>>>,
    /// Held from each `push_error_scope` to its `pop_error_scope` (see the module comment).
    lock: Mutex<()>,
}

impl WgpuProveDevice {
    /// See [`open`].
    pub fn open(index: usize) -> Result<WgpuProveDevice, ProveError> {
        let instance = crate::wgpu::instance().map_err(|e| device_error(e.reason))?;
        let mut adapters = crate::wgpu::adapters(&instance).map_err(|e| device_error(e.reason))?;
        if index >= adapters.len() {
            return Err(device_error(format!(
                "no adapter #{index} ({} found)",
                adapters.len()
            )));
        }
        let adapter = adapters.swap_remove(index);
        let info = crate::wgpu::adapter_info(index, &adapter);
        let (device, queue) =
            pollster::block_on(adapter.request_device(&::wgpu::DeviceDescriptor {
                label: Some("rigworker prove"),
                required_features: ::wgpu::Features::empty(),
                // The adapter's own limits, not WebGPU's defaults: larger buffers and up to
                // seven bindings per kernel.
                required_limits: adapter.limits(),
                ..Default::default()
            }))
            .map_err(|e| device_error(format!("cannot open {}: {e}", info.name)))?;

        let error = Arc::new(Mutex::new(None));
        let sink = error.clone();
        device.on_uncaptured_error(Arc::new(move |e: ::wgpu::Error| {
            record(&sink, e.to_string())
        }));
        let sink = error.clone();
        device.set_device_lost_callback(move |reason, msg| {
            record(&sink, format!("device lost ({reason:?}): {msg}"));
        });

        let limits = device.limits();
        let max_buffer_bytes = limits
            .max_buffer_size
            .min(limits.max_storage_buffer_binding_size)
            & !3;
        let mut dev = WgpuProveDevice {
            info,
            device,
            queue,
            pipelines: Vec::with_capacity(Kernel::ALL.len()),
            max_groups: limits.max_compute_workgroups_per_dimension.max(1),
            max_buffer_bytes,
            error,
            lock: Mutex::new(()),
        };
        let needed = Kernel::ALL.iter().map(|k| k.buffers()).max().unwrap_or(0);
        if (limits.max_storage_buffers_per_shader_stage as usize) < needed {
            return Err(device_error(format!(
                "{} allows {} storage buffers per kernel; proving needs {needed}",
                dev.info.name, limits.max_storage_buffers_per_shader_stage
            )));
        }
        for kernel in Kernel::ALL {
            let pipeline = dev.build(kernel)?;
            dev.pipelines.push(pipeline);
        }
        Ok(dev)
    }

    /// Compiles one kernel's module and pipeline. The bind group layout is explicit (every
    /// buffer a read-write storage binding, then the uniform parameters), so a shader whose
    /// bindings differ from the kernel table fails here rather than at its first launch.
    fn build(&self, kernel: Kernel) -> Result<Pipeline, ProveError> {
        let name = kernel.name();
        let source = kernels::wgsl::bn254_kernel(name)
            .ok_or_else(|| device_error(format!("no WGSL for kernel {name}")))?;
        let storage = ::wgpu::BufferBindingType::Storage { read_only: false };
        let entries: Vec<::wgpu::BindGroupLayoutEntry> = (0..kernel.buffers())
            .map(|_| storage)
            .chain([::wgpu::BufferBindingType::Uniform])
            .enumerate()
            .map(|(binding, ty)| ::wgpu::BindGroupLayoutEntry {
                binding: binding as u32,
                visibility: ::wgpu::ShaderStages::COMPUTE,
                ty: ::wgpu::BindingType::Buffer {
                    ty,
                    has_dynamic_offset: false,
                    min_binding_size: None,
                },
                count: None,
            })
            .collect();
        self.scoped(&format!("building kernel {name}"), || {
            let module = self
                .device
                .create_shader_module(::wgpu::ShaderModuleDescriptor {
                    label: Some(name),
                    source: ::wgpu::ShaderSource::Wgsl(source.into()),
                });
            let layout = self
                .device
                .create_bind_group_layout(&::wgpu::BindGroupLayoutDescriptor {
                    label: Some(name),
                    entries: &entries,
                });
            let pipeline_layout =
                self.device
                    .create_pipeline_layout(&::wgpu::PipelineLayoutDescriptor {
                        label: Some(name),
                        bind_group_layouts: &[Some(&layout)],
                        immediate_size: 0,
                    });
            let pipeline =
                self.device
                    .create_compute_pipeline(&::wgpu::ComputePipelineDescriptor {
                        label: Some(name),
                        layout: Some(&pipeline_layout),
                        module: &module,
                        entry_point: Some(name),
                        compilation_options: Default::default(),
                        cache: None,
                    });
            Pipeline {
                kernel,
                pipeline,
                layout,
            }
        })
    }

    fn pipeline(&self, kernel: Kernel) -> Result<&Pipeline, ProveError> {
        self.pipelines
            .iter()
            .find(|p| p.kernel == kernel)
            .ok_or_else(|| device_error(format!("kernel {} was not built", kernel.name())))
    }

    fn lock(&self) -> Result<MutexGuard<'_, ()>, ProveError> {
        // The guarded state is wgpu's error-scope stack, which a panicking holder leaves
        // balanced or not at all (push and pop are adjacent calls); going on is safe.
        Ok(self.lock.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// The error wgpu reported outside a scope, if any.
    fn check(&self) -> Result<(), ProveError> {
        match self.error.lock() {
            Ok(g) => match g.as_ref() {
                Some(e) => Err(device_error(e.clone())),
                None => Ok(()),
            },
            Err(_) => Err(device_error("error state poisoned")),
        }
    }

    /// Runs `f` (device calls that may raise wgpu errors) inside error scopes, under the lock;
    /// any error they raise becomes a [`ProveError`] saying `what` failed.
    fn scoped<T>(&self, what: &str, f: impl FnOnce() -> T) -> Result<T, ProveError> {
        let _guard = self.lock()?;
        self.check()?;
        const FILTERS: [::wgpu::ErrorFilter; 3] = [
            ::wgpu::ErrorFilter::OutOfMemory,
            ::wgpu::ErrorFilter::Validation,
            ::wgpu::ErrorFilter::Internal,
        ];
        let scopes = FILTERS.map(|filter| self.device.push_error_scope(filter));
        let out = f();
        let mut first = None;
        // Innermost first, as wgpu requires.
        for scope in scopes.into_iter().rev() {
            if let Some(e) = pollster::block_on(scope.pop()) {
                first.get_or_insert(e.to_string());
            }
        }
        match first {
            Some(e) => Err(device_error(format!("{what}: {e}"))),
            None => Ok(out),
        }
    }

    /// Blocks until `submission` has run (the thread sleeps in the driver).
    fn wait(&self, submission: &::wgpu::SubmissionIndex) -> Result<(), ProveError> {
        for _ in 0..MAX_WAIT_POLLS {
            match self.device.poll(::wgpu::PollType::Wait {
                submission_index: Some(submission.clone()),
                timeout: Some(crate::wgpu::POLL_TIMEOUT),
            }) {
                Ok(_) => return self.check(),
                Err(::wgpu::PollError::Timeout) => continue,
                Err(e) => {
                    self.check()?;
                    return Err(device_error(format!("waiting for the device: {e}")));
                }
            }
        }
        self.check()?;
        Err(device_error(format!(
            "the device did not finish within {MAX_WAIT_POLLS} poll timeouts (hung?)"
        )))
    }

    fn check_len(&self, what: &str, buf: &WgpuBuffer, words: usize) -> Result<(), ProveError> {
        if words > buf.words {
            return Err(device_error(format!(
                "{what} of {words} words on a buffer of {}",
                buf.words
            )));
        }
        Ok(())
    }

    /// Workgroups for `threads` invocations as an x × y grid within the per-dimension limit.
    fn grid(&self, threads: u32) -> Result<(u32, u32), ProveError> {
        let groups = threads.div_ceil(BN254_WORKGROUP_SIZE);
        let x = groups.min(self.max_groups);
        let y = groups.div_ceil(x);
        if y > self.max_groups {
            return Err(device_error(format!(
                "{threads} invocations exceed the device's grid"
            )));
        }
        Ok((x, y))
    }
}

fn record(sink: &Mutex<Option<String>>, msg: String) {
    if let Ok(mut g) = sink.lock() {
        g.get_or_insert(msg);
    }
}

impl GpuDevice for WgpuProveDevice {
    type Buffer = WgpuBuffer;

    fn backend(&self) -> &'static str {
        BACKEND
    }

    fn info(&self) -> &DeviceInfo {
        &self.info
    }

    fn max_buffer_bytes(&self) -> Option<u64> {
        Some(self.max_buffer_bytes)
    }

    fn alloc(&self, words: usize) -> Result<WgpuBuffer, ProveError> {
        let words = words.max(1);
        let bytes = (words as u64)
            .checked_mul(4)
            .filter(|&b| b <= self.max_buffer_bytes)
            .ok_or_else(|| {
                device_error(format!(
                    "a buffer of {words} words exceeds the device's limit of {} bytes",
                    self.max_buffer_bytes
                ))
            })?;
        let buffer = self.scoped("allocating a buffer", || {
            self.device.create_buffer(&::wgpu::BufferDescriptor {
                label: Some("prove"),
                size: bytes,
                usage: ::wgpu::BufferUsages::STORAGE
                    | ::wgpu::BufferUsages::COPY_SRC
                    | ::wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            })
        })?;
        Ok(WgpuBuffer { buffer, words })
    }

    fn write(&self, buf: &WgpuBuffer, data: &[u32]) -> Result<(), ProveError> {
        self.check_len("a write", buf, data.len())?;
        let words_per_chunk = WRITE_CHUNK_BYTES / 4;
        let mut bytes = Vec::with_capacity(WRITE_CHUNK_BYTES.min(4 * data.len()));
        for (i, chunk) in data.chunks(words_per_chunk).enumerate() {
            bytes.clear();
            bytes.extend(chunk.iter().flat_map(|w| w.to_le_bytes()));
            let offset = (i * WRITE_CHUNK_BYTES) as u64;
            let Some(size) = ::wgpu::BufferSize::new(4 * chunk.len() as u64) else {
                continue;
            };
            let written = self.scoped("writing a buffer", || {
                let Some(mut view) = self.queue.write_buffer_with(&buf.buffer, offset, size) else {
                    return false;
                };
                view.copy_from_slice(&bytes);
                true
            })?;
            if !written {
                return Err(device_error("no staging memory for a write"));
            }
        }
        Ok(())
    }

    fn read(&self, buf: &WgpuBuffer, out: &mut [u32]) -> Result<(), ProveError> {
        self.check_len("a read", buf, out.len())?;
        let bytes = 4 * out.len() as u64;
        let (tx, rx) = mpsc::channel();
        let (staging, submission) = self.scoped("reading a buffer", || {
            let staging = self.device.create_buffer(&::wgpu::BufferDescriptor {
                label: Some("prove readback"),
                // A zero-sized read still waits for the queue, through a 4-byte copy.
                size: bytes.max(4),
                usage: ::wgpu::BufferUsages::MAP_READ | ::wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            });
            let mut enc = self
                .device
                .create_command_encoder(&::wgpu::CommandEncoderDescriptor {
                    label: Some("prove read"),
                });
            enc.copy_buffer_to_buffer(&buf.buffer, 0, &staging, 0, bytes.max(4));
            let submission = self.queue.submit([enc.finish()]);
            // Requested before waiting, so the wait below also completes the mapping.
            staging
                .slice(..)
                .map_async(::wgpu::MapMode::Read, move |r| {
                    let _ = tx.send(r);
                });
            (staging, submission)
        })?;
        // Waiting happens outside the lock: other threads keep submitting meanwhile.
        self.wait(&submission)?;
        // Another thread's poll may be the one that runs the callback; wait for it a while.
        let mut polls = 0;
        let mapped = loop {
            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(r) => break r,
                Err(RecvTimeoutError::Timeout) if polls < 100 => {
                    polls += 1;
                    let _ = self.device.poll(::wgpu::PollType::Poll);
                }
                Err(_) => {
                    self.check()?;
                    return Err(device_error("the read-back buffer was never mapped"));
                }
            }
        };
        mapped.map_err(|e| device_error(format!("mapping the read-back buffer: {e}")))?;
        {
            let data = staging
                .slice(..)
                .get_mapped_range()
                .map_err(|e| device_error(format!("reading the read-back buffer: {e}")))?;
            for (w, b) in out.iter_mut().zip(data.chunks_exact(4)) {
                *w = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
            }
        }
        staging.unmap();
        Ok(())
    }

    fn zero(&self, buf: &WgpuBuffer, words: usize) -> Result<(), ProveError> {
        self.check_len("zeroing", buf, words)?;
        if words == 0 {
            return Ok(());
        }
        self.scoped("zeroing a buffer", || {
            let mut enc = self
                .device
                .create_command_encoder(&::wgpu::CommandEncoderDescriptor {
                    label: Some("prove zero"),
                });
            enc.clear_buffer(&buf.buffer, 0, Some(4 * words as u64));
            self.queue.submit([enc.finish()]);
        })
    }

    fn launch(
        &self,
        kernel: Kernel,
        threads: u32,
        buffers: &[&WgpuBuffer],
        params: &[u32],
    ) -> Result<(), ProveError> {
        let name = kernel.name();
        if buffers.len() != kernel.buffers() || params.len() != kernel.params() {
            return Err(device_error(format!(
                "{name} takes {} buffers and {} parameters, not {} and {}",
                kernel.buffers(),
                kernel.params(),
                buffers.len(),
                params.len()
            )));
        }
        if params.len() > BN254_THREADS_WORD {
            return Err(device_error(format!("{name}: too many parameters")));
        }
        if threads == 0 {
            return Ok(());
        }
        let (x, y) = self.grid(threads)?;
        let mut words = [0u32; BN254_PARAM_WORDS];
        words[..params.len()].copy_from_slice(params);
        words[BN254_THREADS_WORD] = threads;
        let mut bytes = [0u8; PARAMS_BYTES];
        for (dst, w) in bytes.chunks_exact_mut(4).zip(words) {
            dst.copy_from_slice(&w.to_le_bytes());
        }
        let p = self.pipeline(kernel)?;
        self.scoped(name, || {
            // A fresh uniform buffer per launch: a shared one rewritten with `write_buffer`
            // would hold only the last launch's parameters by the time earlier ones run.
            let uniform = self
                .device
                .create_buffer_init(&::wgpu::util::BufferInitDescriptor {
                    label: Some(name),
                    contents: &bytes,
                    usage: ::wgpu::BufferUsages::UNIFORM,
                });
            let entries: Vec<::wgpu::BindGroupEntry> = buffers
                .iter()
                .map(|b| b.buffer.as_entire_binding())
                .chain([uniform.as_entire_binding()])
                .enumerate()
                .map(|(binding, resource)| ::wgpu::BindGroupEntry {
                    binding: binding as u32,
                    resource,
                })
                .collect();
            let bind = self.device.create_bind_group(&::wgpu::BindGroupDescriptor {
                label: Some(name),
                layout: &p.layout,
                entries: &entries,
            });
            let mut enc = self
                .device
                .create_command_encoder(&::wgpu::CommandEncoderDescriptor { label: Some(name) });
            {
                let mut pass = enc.begin_compute_pass(&::wgpu::ComputePassDescriptor {
                    label: Some(name),
                    timestamp_writes: None,
                });
                pass.set_pipeline(&p.pipeline);
                pass.set_bind_group(0, &bind, &[]);
                pass.dispatch_workgroups(x, y, 1);
            }
            self.queue.submit([enc.finish()]);
        })
    }
}

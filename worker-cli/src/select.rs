//! From `--backend/--devices/--threads` to the backends and workers to run.

use anyhow::{Result, anyhow, bail};
use backends::{BackendKind, DeviceInfo, HashBackend, HashWorker};

use crate::cli::{DeviceArgs, FpgaArgs};

/// Every compiled-in backend, configured from the device flags (CPU kernel and pinning, GPU
/// intensity).
pub fn backends(args: &DeviceArgs) -> Result<Vec<Box<dyn HashBackend>>> {
    let mut out: Vec<Box<dyn HashBackend>> = Vec::new();
    for b in backends::compiled_backends() {
        let configured: Box<dyn HashBackend> = match b.kind() {
            BackendKind::Cpu => {
                let cpu = match &args.cpu_kernel {
                    Some(k) => backends::cpu::CpuBackend::with_kernel(
                        k.parse().map_err(|e| anyhow!("{e}"))?,
                    ),
                    None => backends::cpu::CpuBackend::new(),
                };
                Box::new(cpu.pin_threads(args.cpu_affinity))
            }
            #[cfg(feature = "gpu")]
            BackendKind::OpenCl => {
                Box::new(backends::opencl::OpenClBackend::new().with_intensity(args.intensity))
            }
            #[cfg(feature = "gpu")]
            BackendKind::Cuda => {
                Box::new(backends::cuda::CudaBackend::new().with_intensity(args.intensity))
            }
            #[cfg(feature = "gpu")]
            BackendKind::Wgpu => {
                Box::new(backends::wgpu::WgpuBackend::new().with_intensity(args.intensity))
            }
            // Not compiled in: `compiled_backends` never lists them.
            #[cfg(not(feature = "gpu"))]
            BackendKind::OpenCl | BackendKind::Cuda | BackendKind::Wgpu => continue,
            BackendKind::Fpga => Box::new(backends::fpga::FpgaBackend::with_config(fpga_config(
                &args.fpga,
            )?)),
        };
        out.push(configured);
    }
    Ok(out)
}

/// The FPGA driver's settings from the `--fpga*` flags.
pub fn fpga_config(args: &FpgaArgs) -> Result<backends::fpga::FpgaConfig> {
    let mut c = backends::fpga::FpgaConfig {
        ports: args.fpga_ports.clone(),
        hash_time: args.fpga_hs,
        reopen: args.fpga_reopen,
        ..Default::default()
    };
    if let Some(b) = args.fpga_baud {
        c.baud = b;
    }
    if let Some(w) = args.fpga_work_division {
        c.work_division = w;
    }
    if let Some(z) = args.fpga_zero_bits {
        c.zero_bits = z;
    }
    if let Some(t) = args.fpga_probe_timeout {
        c.probe_timeout = crate::commands::seconds("--fpga-probe-timeout", t)?;
    }
    if let Some(f) = args.fpga_first_counter {
        c.first_counter = f;
    }
    c.validate().map_err(|e| anyhow!("--fpga: {e}"))?;
    Ok(c)
}

/// Names accepted by `--backend`.
pub fn compiled_names() -> Vec<&'static str> {
    backends::compiled_backends()
        .iter()
        .map(|b| b.kind().name())
        .collect()
}

/// The backends `--backend` asks for (default: cpu).
pub fn chosen(args: &DeviceArgs) -> Result<Vec<Box<dyn HashBackend>>> {
    let all = backends(args)?;
    let wanted: Vec<String> = if args.backend.is_empty() && !args.fpga.fpga_ports.is_empty() {
        // Boards named without a backend: mine on them, not on the CPU as well.
        vec!["fpga".into()]
    } else if args.backend.is_empty() {
        vec!["cpu".into()]
    } else {
        args.backend
            .iter()
            .map(|s| s.trim().to_ascii_lowercase())
            .collect()
    };
    if wanted.iter().any(|w| w == "all") {
        return Ok(all);
    }
    for w in &wanted {
        if !all.iter().any(|b| b.kind().name() == w) {
            bail!(
                "backend {w:?} is not compiled into this build (compiled in: {})",
                compiled_names().join(", ")
            );
        }
    }
    Ok(all
        .into_iter()
        .filter(|b| wanted.iter().any(|w| w == b.kind().name()))
        .collect())
}

/// The devices `--devices` picks (all when it is empty).
pub fn by_index<'a>(devices: &'a [DeviceInfo], args: &DeviceArgs) -> Vec<&'a DeviceInfo> {
    devices
        .iter()
        .filter(|d| args.devices.is_empty() || args.devices.contains(&d.index))
        .collect()
}

/// The error for a `--devices` list that matches none of a backend's devices.
pub fn no_such_device(kind: BackendKind, devices: &[DeviceInfo], args: &DeviceArgs) -> String {
    format!(
        "{kind}: none of the devices {:?} exists (found {})",
        args.devices,
        devices.len()
    )
}

/// Worker threads to open on one device: `--threads` for the CPU (0 = one per core), one
/// queue for a GPU.
pub fn threads_for(kind: BackendKind, args: &DeviceArgs) -> usize {
    if kind == BackendKind::Cpu {
        args.threads.unwrap_or(0)
    } else {
        1
    }
}

/// How much longer systemd waits for start-up each time a device starts opening.
pub const OPEN_TIMEOUT_EXTENSION: std::time::Duration = std::time::Duration::from_secs(120);

/// Opens the workers for `mine` and `bench`. With `--backend all`, a backend with no device
/// is skipped with a warning; a backend named explicitly must have one.
pub fn open_workers(args: &DeviceArgs) -> Result<Vec<Box<dyn HashWorker>>> {
    let explicit = !args.backend.iter().any(|b| b.eq_ignore_ascii_case("all"));
    let notify = crate::sdnotify::Notifier::from_env();
    let mut workers = Vec::new();
    for backend in chosen(args)? {
        let devices = match backend.devices() {
            Ok(d) => d,
            Err(e) if !explicit => {
                tracing::warn!("{e}; skipped");
                continue;
            }
            Err(e) => bail!("{e}"),
        };
        let selected: Vec<_> = by_index(&devices, args)
            .into_iter()
            // With `all`, an OpenCL/WebGPU driver that runs on the CPU (pocl, lavapipe) would
            // only compete with the CPU backend for the same cores.
            .filter(|d| {
                let software = backend.kind() != BackendKind::Cpu
                    && d.detail.to_ascii_lowercase().contains(" cpu");
                if !explicit && software {
                    tracing::info!(
                        "{}#{} {} runs on the CPU; skipped with --backend all",
                        backend.kind(),
                        d.index,
                        d.name
                    );
                }
                explicit || !software
            })
            .collect();
        if selected.is_empty() && explicit {
            bail!(no_such_device(backend.kind(), &devices, args));
        }
        for d in selected {
            // Opening a GPU compiles or loads its kernels and tunes its launch size: seconds
            // per device, minutes on a big rig, so systemd is told to wait longer each time.
            if let Some(n) = &notify {
                let _ = n.extend_timeout(OPEN_TIMEOUT_EXTENSION);
                let _ = n.status(&format!(
                    "opening {}#{} {}",
                    backend.kind(),
                    d.index,
                    d.name
                ));
            }
            let started = std::time::Instant::now();
            if backend.kind() != BackendKind::Cpu {
                tracing::info!(
                    "opening {}#{} {}: building kernels and tuning the launch size",
                    backend.kind(),
                    d.index,
                    d.name
                );
            }
            let opened = backend.open(d.index, threads_for(backend.kind(), args))?;
            if backend.kind() != BackendKind::Cpu {
                tracing::info!(
                    secs = started.elapsed().as_secs_f64(),
                    "{}#{} ready (launch tuning done)",
                    backend.kind(),
                    d.index
                );
            }
            workers.extend(opened);
        }
    }
    if workers.is_empty() {
        bail!("no device to run on");
    }
    Ok(workers)
}

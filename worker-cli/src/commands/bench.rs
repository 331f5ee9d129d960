//! `rigworker bench`: each device's hashrate as the median of one-second intervals, with an
//! impossible target so the figure is pure search speed. Table or `--json`; `--plot` also
//! draws every interval's rate per device as an SVG chart.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use backends::{
    BackendKind, HashBackend, HashWorker, HeaderTemplate, NonceRange, ScanControl, ScanTarget,
};
use serde::Serialize;

use crate::cli::{BenchArgs, DeviceArgs};
use crate::engine::stats::format_rate;
use crate::plot::{Chart, Series, rate_unit, svg};
use crate::progress::{Progress, ProgressMode};

#[derive(Serialize, Debug, Clone)]
pub struct BenchResult {
    pub backend: String,
    pub device: usize,
    pub name: String,
    pub detail: String,
    pub threads: usize,
    /// Median of the per-interval rates, hashes per second.
    pub median_hps: f64,
    pub min_hps: f64,
    pub max_hps: f64,
    pub intervals: usize,
    /// Every interval's rate in time order (H/s): what `--plot` draws.
    pub rates_hps: Vec<f64>,
}

/// Runs `workers` together for `seconds` (at least one interval) and returns per-interval
/// hashrates (H/s).
pub fn measure(workers: Vec<Box<dyn HashWorker>>, seconds: Duration) -> Vec<f64> {
    let stop = Arc::new(AtomicBool::new(false));
    let mut header = [0u8; 80];
    for (i, b) in header.iter_mut().enumerate() {
        *b = (i as u8)
            .wrapping_mul(97)
            .wrapping_add(rand::random::<u8>());
    }
    let header = HeaderTemplate(header);
    let target = ScanTarget::from_le_bytes([0; 32]);
    let ctls: Vec<Arc<ScanControl>> = workers
        .iter()
        .map(|_| Arc::new(ScanControl::new()))
        .collect();
    let handles: Vec<_> = workers
        .into_iter()
        .zip(ctls.iter().cloned())
        .enumerate()
        .map(|(i, (mut w, ctl))| {
            let stop = stop.clone();
            std::thread::spawn(move || {
                if w.start_on_thread().is_err() {
                    return;
                }
                let mut found = Vec::new();
                // Each worker starts in its own 2^28-nonce region. A scan covers several of
                // the device's tuned launches, so a GPU keeps two in flight as it does when
                // mining instead of idling between short calls.
                let step = w
                    .min_scan_nonces()
                    .saturating_mul(8)
                    .clamp(1 << 22, 1 << 31);
                let mut next: u64 = (i as u64) << 28;
                while !stop.load(Ordering::Relaxed) {
                    let start = (next & 0xffff_ffff) as u32;
                    let end = start.saturating_add((step - 1) as u32);
                    next += step;
                    // A board searches whole headers (it times its own range); stopping
                    // cancels it.
                    let range = if w.searches_whole_headers() {
                        NonceRange::FULL
                    } else {
                        NonceRange { start, end }
                    };
                    if let Err(e) = w.scan(&header, &target, range, &ctl, &mut found) {
                        eprintln!("{}: {e}", w.info().name);
                        // A board that lost its line comes back on a later call (it is
                        // reopened and re-probed); a CPU or GPU error is final.
                        if !w.searches_whole_headers() {
                            return;
                        }
                        std::thread::sleep(Duration::from_millis(200));
                    }
                }
            })
        })
        .collect();
    let total = |c: &[Arc<ScanControl>]| c.iter().map(|c| c.hashes()).sum::<u64>();
    // One warm-up second (clocks ramp, caches fill) is not counted.
    std::thread::sleep(Duration::from_secs(1));
    let mut rates = Vec::new();
    let mut last = (Instant::now(), total(&ctls));
    let start = Instant::now();
    // Checked: a library caller may pass any Duration; one too far ahead means "until stopped".
    let end = start.checked_add(seconds.max(Duration::from_secs(1)));
    while end.is_none_or(|end| Instant::now() < end) {
        std::thread::sleep(Duration::from_secs(1));
        let now = (Instant::now(), total(&ctls));
        rates.push((now.1 - last.1) as f64 / now.0.duration_since(last.0).as_secs_f64());
        last = now;
    }
    stop.store(true, Ordering::Relaxed);
    for c in &ctls {
        c.cancel();
    }
    for h in handles {
        let _ = h.join();
    }
    rates
}

pub fn median(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn bench_backend(
    backend: &dyn HashBackend,
    args: &DeviceArgs,
    seconds: Duration,
    args_json: bool,
    out: &mut Vec<BenchResult>,
) -> Result<()> {
    let devices = match backend.devices() {
        Ok(d) => d,
        Err(e) => {
            eprintln!("{e}");
            return Ok(());
        }
    };
    let selected = crate::select::by_index(&devices, args);
    if selected.is_empty() {
        bail!(crate::select::no_such_device(
            backend.kind(),
            &devices,
            args
        ));
    }
    for d in selected {
        let workers = backend.open(d.index, crate::select::threads_for(backend.kind(), args))?;
        let n = workers.len();
        eprintln!(
            "benchmarking {}#{} {} ({}) with {n} thread(s) for {} s...",
            backend.kind(),
            d.index,
            d.name,
            d.detail,
            seconds.as_secs_f64()
        );
        let shown = Progress::spinner(
            ProgressMode::detect(args_json),
            &format!("benchmarking {}#{}", backend.kind(), d.index),
        );
        let rates = measure(workers, seconds);
        drop(shown);
        let mut sorted = rates.clone();
        let (min, max) = rates
            .iter()
            .fold((f64::MAX, 0.0f64), |(lo, hi), &r| (lo.min(r), hi.max(r)));
        out.push(BenchResult {
            backend: backend.kind().to_string(),
            device: d.index,
            name: d.name.clone(),
            detail: d.detail.clone(),
            threads: n,
            median_hps: median(&mut sorted),
            min_hps: if rates.is_empty() { 0.0 } else { min },
            max_hps: max,
            intervals: rates.len(),
            rates_hps: rates,
        });
    }
    Ok(())
}

pub fn run(args: &BenchArgs) -> Result<()> {
    if args.work == crate::cli::WorkKind::Prove {
        return super::bench_prove::run(args);
    }
    if !args.against.is_empty() {
        anyhow::bail!("--against compares provers: it needs --work prove");
    }
    let seconds = super::seconds("--seconds", args.seconds)?;
    let mut results = Vec::new();
    let backends = crate::select::chosen(&args.devices)?;
    for b in &backends {
        if b.kind() == BackendKind::Cpu && args.all_kernels {
            for k in backends::cpu::Kernel::available() {
                let cpu = backends::cpu::CpuBackend::with_kernel(k)
                    .pin_threads(args.devices.cpu_affinity);
                bench_backend(&cpu, &args.devices, seconds, args.json, &mut results)?;
            }
        } else {
            bench_backend(b.as_ref(), &args.devices, seconds, args.json, &mut results)?;
        }
    }
    if let Some(path) = &args.plot {
        write_plot(path, &results)?;
    }
    if args.json {
        println!("{}", serde_json::to_string_pretty(&results)?);
    } else {
        println!(
            "{:<8} {:<4} {:<28} {:<26} {:>7} {:>14} {:>14} {:>14}",
            "backend", "dev", "name", "kernel", "threads", "median", "min", "max"
        );
        for r in &results {
            let name: String = r.name.chars().take(28).collect();
            println!(
                "{:<8} {:<4} {:<28} {:<26} {:>7} {:>14} {:>14} {:>14}",
                r.backend,
                r.device,
                name,
                r.detail,
                r.threads,
                format_rate(Some(r.median_hps)),
                format_rate(Some(r.min_hps)),
                format_rate(Some(r.max_hps))
            );
        }
    }
    Ok(())
}

/// The hashrate chart: one series per benchmarked device (and per CPU kernel with
/// `--all-kernels`), one point per interval.
pub fn hash_chart(results: &[BenchResult]) -> Chart {
    let top = results
        .iter()
        .flat_map(|r| r.rates_hps.iter().copied())
        .fold(0.0f64, f64::max);
    let (div, unit) = rate_unit(top, "H/s");
    Chart {
        title: "Hashrate per one-second interval (after 1 s warm-up)".into(),
        x_label: "time since the device's warm-up (s)".into(),
        y_label: format!("hashrate ({unit})"),
        series: results
            .iter()
            .map(|r| Series {
                name: format!("{}#{} {} ({})", r.backend, r.device, r.name, r.detail),
                // Interval i ends about i+1 seconds after the warm-up (measure sleeps 1 s).
                points: r
                    .rates_hps
                    .iter()
                    .enumerate()
                    .map(|(i, h)| ((i + 1) as f64, h / div))
                    .collect(),
            })
            .collect(),
        x_ticks: None,
    }
}

fn write_plot(path: &std::path::Path, results: &[BenchResult]) -> Result<()> {
    let doc = svg("rigworker bench: SHA-256d", &[hash_chart(results)]);
    std::fs::write(path, doc).with_context(|| format!("writing the plot {}", path.display()))?;
    eprintln!("plot written to {}", path.display());
    Ok(())
}

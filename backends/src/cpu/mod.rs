//! The CPU backend: SHA-256d nonce search on the host's cores.
//!
//! One device (the CPU), one worker per thread. Each worker runs a [`Kernel`] chosen once at
//! start-up from what the CPU supports (or forced, for tests, benches and `--cpu-kernel`).
//! All kernels share the per-job precomputation in `job` and report only *candidates* (digest
//! word 7 within the target's top word); every candidate is re-hashed with `sha2` and checked
//! against the full target here before it is reported, so a kernel bug can lose speed or
//! nonces but never report a wrong one (and the tests compare the sets exactly).

mod affinity;
mod job;
mod lanes;

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;
#[cfg(target_arch = "x86_64")]
mod hybrid;
#[cfg(target_arch = "x86_64")]
mod shani;

use std::fmt;
use std::str::FromStr;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::device::{
    BackendError, BackendKind, BackendUnavailable, DeviceInfo, HashBackend, HashWorker,
    HeaderTemplate, NonceRange, ScanControl, ScanOutcome, ScanTarget,
};
use job::Job;

/// SHA-NI lanes in flight in the [`Kernel::ShaNi`] kernel.
const SHA_LANES: usize = 2;

/// A SHA-256d search implementation.
#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash)]
pub enum Kernel {
    /// Scalar Rust, one nonce at a time; runs everywhere.
    Portable,
    /// SHA extensions (x86-64), several nonces interleaved.
    ShaNi,
    /// AVX2, 8 nonces per register.
    Avx2,
    /// AVX-512F, 16 nonces per register.
    Avx512,
    /// SHA-NI for the rounds and AVX-512 for the message schedules, software-pipelined so
    /// both units work at once.
    ShaNiAvx512,
}

/// The name given to [`Kernel::from_str`] is not a kernel.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown CPU kernel {0:?} (expected one of: portable, sha-ni, avx2, avx512, sha-ni+avx512)"
)]
pub struct UnknownKernel(pub String);

type ScanFn = unsafe fn(&Job, u32, u32, &mut Vec<u32>);

impl Kernel {
    /// Every kernel, supported here or not, fastest-first on the machines measured (see
    /// [`Kernel::detect`]).
    pub const ALL: [Kernel; 5] = [
        Kernel::ShaNiAvx512,
        Kernel::Avx512,
        Kernel::ShaNi,
        Kernel::Avx2,
        Kernel::Portable,
    ];

    /// The name `--cpu-kernel` and [`FromStr`] take.
    pub fn name(self) -> &'static str {
        match self {
            Kernel::Portable => "portable",
            Kernel::ShaNi => "sha-ni",
            Kernel::Avx2 => "avx2",
            Kernel::Avx512 => "avx512",
            Kernel::ShaNiAvx512 => "sha-ni+avx512",
        }
    }

    /// What runs, with lane counts, e.g. `"avx512 x16"`; `DeviceInfo::detail` shows it.
    pub fn description(self) -> String {
        match self {
            Kernel::Portable => "portable x1".to_string(),
            Kernel::ShaNi => format!("sha-ni x{SHA_LANES}"),
            Kernel::Avx2 => "avx2 x8".to_string(),
            Kernel::Avx512 => "avx512 x16".to_string(),
            Kernel::ShaNiAvx512 => "sha-ni x4 rounds + avx512 x16 schedule".to_string(),
        }
    }

    /// Nonces hashed per inner-loop iteration.
    pub fn lanes(self) -> u32 {
        match self {
            Kernel::Portable => 1,
            Kernel::ShaNi => SHA_LANES as u32,
            Kernel::Avx2 => 8,
            Kernel::Avx512 => 16,
            Kernel::ShaNiAvx512 => 16,
        }
    }

    /// The CPU features this kernel needs (for messages).
    pub fn required_features(self) -> &'static str {
        match self {
            Kernel::Portable => "none",
            Kernel::ShaNi => "x86-64 sha, ssse3, sse4.1",
            Kernel::Avx2 => "x86-64 avx2",
            Kernel::Avx512 => "x86-64 avx512f",
            Kernel::ShaNiAvx512 => "x86-64 sha, ssse3, sse4.1, avx512f",
        }
    }

    /// Whether this CPU can run the kernel (detected at run time).
    pub fn is_supported(self) -> bool {
        #[cfg(target_arch = "x86_64")]
        {
            let sha = || {
                std::arch::is_x86_feature_detected!("sha")
                    && std::arch::is_x86_feature_detected!("sse2")
                    && std::arch::is_x86_feature_detected!("ssse3")
                    && std::arch::is_x86_feature_detected!("sse4.1")
            };
            let avx2 = || std::arch::is_x86_feature_detected!("avx2");
            let avx512 = || std::arch::is_x86_feature_detected!("avx512f");
            match self {
                Kernel::Portable => true,
                Kernel::ShaNi => sha(),
                Kernel::Avx2 => avx2(),
                Kernel::Avx512 => avx512(),
                Kernel::ShaNiAvx512 => sha() && avx512(),
            }
        }
        #[cfg(not(target_arch = "x86_64"))]
        {
            self == Kernel::Portable
        }
    }

    /// The kernels this CPU supports, fastest first.
    pub fn available() -> Vec<Kernel> {
        Kernel::ALL
            .into_iter()
            .filter(|k| k.is_supported())
            .collect()
    }

    /// The fastest supported kernel on this machine, measured once per process: each
    /// candidate hashes for a few milliseconds on one thread and the best rate wins. The same
    /// instruction mix is fastest on one microarchitecture and slow on another (the SHA-NI +
    /// AVX-512 hybrid leads on Zen 4 and ran at 1/300 of AVX-512's speed on an Intel Xeon
    /// with both features), so a fixed order cannot be right everywhere.
    pub fn fastest() -> Kernel {
        Kernel::rates()
            .first()
            .map_or(Kernel::Portable, |&(k, _)| k)
    }

    /// This machine's measured rate (one thread) of every kernel [`Kernel::measure`] times,
    /// fastest first; measured on first use, once per process.
    pub fn rates() -> &'static [(Kernel, f64)] {
        static RATES: OnceLock<Vec<(Kernel, f64)>> = OnceLock::new();
        RATES.get_or_init(|| Kernel::measure(Duration::from_millis(15)))
    }

    /// Hashes per second of each supported kernel (the portable one only when it is the only
    /// one), measured for about `each` on the calling thread; fastest first.
    pub fn measure(each: Duration) -> Vec<(Kernel, f64)> {
        let mut kernels = Kernel::available();
        if kernels.len() > 1 {
            kernels.retain(|&k| k != Kernel::Portable);
        }
        let header = HeaderTemplate(std::array::from_fn(|i| (i as u8).wrapping_mul(31)));
        let job = Job::new(&header, &ScanTarget::from_le_bytes([0; 32]));
        let mut out = Vec::new();
        let mut found = Vec::new();
        for k in kernels {
            let scan_fn = k.scan_fn();
            // Small chunks so even a kernel that is slow here costs milliseconds.
            let chunk = 4096u32.div_ceil(k.lanes()) * k.lanes();
            // SAFETY: `k` is supported (from `available`); chunks never wrap.
            unsafe { scan_fn(&job, 0, chunk, &mut found) };
            let t = Instant::now();
            let mut n = 0u64;
            let mut first = chunk;
            while t.elapsed() < each {
                // SAFETY: as above; `first` stays far below u32::MAX - chunk.
                unsafe { scan_fn(&job, first, chunk, &mut found) };
                n += u64::from(chunk);
                first = first.wrapping_add(chunk) % (1 << 30);
                found.clear();
            }
            out.push((k, n as f64 / t.elapsed().as_secs_f64()));
        }
        out.sort_by(|a, b| b.1.total_cmp(&a.1));
        out
    }

    /// The first supported kernel in the order of [`Kernel::ALL`] (no measuring).
    pub fn detect() -> Kernel {
        Kernel::ALL
            .into_iter()
            .find(|k| k.is_supported())
            .unwrap_or(Kernel::Portable)
    }

    /// Nonces per batch: about 2 ms of this kernel's measured speed here (the bound on how
    /// late a cancel is seen), a multiple of the lane count, at most 64 Ki. A kernel that
    /// is slow on this machine (the hybrid on Intel) gets small batches, not late cancels.
    fn batch(self) -> u32 {
        let default: u32 = if self == Kernel::Portable {
            1 << 13
        } else {
            1 << 16
        };
        let lanes = self.lanes();
        let measured = Kernel::rates()
            .iter()
            .find(|(k, _)| *k == self)
            .map(|&(_, rate)| (rate * 0.002) as u32);
        let target = measured.unwrap_or(default).clamp(16 * lanes, default);
        target.div_ceil(lanes) * lanes
    }

    /// The kernel's entry point: hashes `count` nonces from `first` and pushes the candidates.
    /// Calling it is only sound when `self.is_supported()`.
    fn scan_fn(self) -> ScanFn {
        match self {
            Kernel::Portable => lanes::scan_portable,
            #[cfg(target_arch = "x86_64")]
            Kernel::ShaNi => shani::scan::<SHA_LANES>,
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx2 => avx2::scan,
            #[cfg(target_arch = "x86_64")]
            Kernel::Avx512 => avx512::scan,
            #[cfg(target_arch = "x86_64")]
            Kernel::ShaNiAvx512 => hybrid::scan,
            #[cfg(not(target_arch = "x86_64"))]
            _ => lanes::scan_portable,
        }
    }
}

impl fmt::Display for Kernel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Kernel {
    type Err = UnknownKernel;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim().to_ascii_lowercase();
        let alias = match s.as_str() {
            "sha" | "shani" | "sha_ni" => "sha-ni",
            "avx-512" | "avx512f" => "avx512",
            "scalar" | "generic" => "portable",
            "hybrid" | "sha-ni+avx-512" | "shani+avx512" => "sha-ni+avx512",
            other => other,
        };
        Kernel::ALL
            .into_iter()
            .find(|k| k.name() == alias)
            .ok_or(UnknownKernel(s))
    }
}

/// The CPU as a hashing device.
#[derive(Clone, Debug)]
pub struct CpuBackend {
    /// `None`: [`Kernel::fastest`].
    kernel: Option<Kernel>,
    pin: bool,
}

impl Default for CpuBackend {
    fn default() -> Self {
        Self::new()
    }
}

impl CpuBackend {
    /// The fastest kernel this CPU supports, threads not pinned.
    pub fn new() -> Self {
        CpuBackend {
            kernel: None,
            pin: false,
        }
    }

    /// Forces `kernel`. When the CPU lacks it, `devices` and `open` say so instead of running.
    pub fn with_kernel(kernel: Kernel) -> Self {
        CpuBackend {
            kernel: Some(kernel),
            pin: false,
        }
    }

    /// Pin worker `i` to the `i`-th CPU this process may use (Linux; elsewhere ignored).
    pub fn pin_threads(mut self, pin: bool) -> Self {
        self.pin = pin;
        self
    }

    /// The kernel the workers will run: the forced one, or the fastest measured here.
    pub fn kernel(&self) -> Kernel {
        self.kernel.unwrap_or_else(Kernel::fastest)
    }

    fn check_kernel(&self) -> Result<Kernel, BackendUnavailable> {
        let k = self.kernel();
        if k.is_supported() {
            Ok(k)
        } else {
            Err(BackendUnavailable {
                backend: BackendKind::Cpu,
                reason: format!(
                    "kernel {k} needs {}, which this CPU does not have (available: {})",
                    k.required_features(),
                    Kernel::available()
                        .iter()
                        .map(|k| k.name())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            })
        }
    }

    fn info(&self, kernel: Kernel) -> DeviceInfo {
        DeviceInfo {
            backend: BackendKind::Cpu,
            index: 0,
            name: cpu_model_name(),
            compute_units: std::thread::available_parallelism()
                .map(|n| u32::try_from(n.get()).unwrap_or(u32::MAX))
                .unwrap_or(1),
            memory_bytes: total_memory(),
            detail: kernel.description(),
        }
    }
}

impl HashBackend for CpuBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Cpu
    }

    fn devices(&self) -> Result<Vec<DeviceInfo>, BackendUnavailable> {
        let k = self.check_kernel()?;
        Ok(vec![self.info(k)])
    }

    /// `threads == 0` opens one worker per logical CPU.
    fn open(&self, index: usize, threads: usize) -> Result<Vec<Box<dyn HashWorker>>, BackendError> {
        if index != 0 {
            return Err(BackendError::NoSuchDevice {
                backend: BackendKind::Cpu,
                index,
            });
        }
        let kernel = self.check_kernel()?;
        let info = self.info(kernel);
        let threads = if threads == 0 {
            info.compute_units as usize
        } else {
            threads
        };
        Ok((0..threads)
            .map(|i| {
                Box::new(CpuWorker {
                    info: info.clone(),
                    kernel,
                    pin_to: self.pin.then_some(i),
                    job: None,
                    candidates: Vec::new(),
                }) as Box<dyn HashWorker>
            })
            .collect())
    }
}

/// One thread's worth of CPU hashing.
pub struct CpuWorker {
    info: DeviceInfo,
    /// Checked supported when the worker was opened.
    kernel: Kernel,
    pin_to: Option<usize>,
    /// The last job's precomputation: the engine scans one job in many short slices.
    job: Option<Job>,
    /// Reused between batches.
    candidates: Vec<u32>,
}

impl HashWorker for CpuWorker {
    fn info(&self) -> &DeviceInfo {
        &self.info
    }

    fn start_on_thread(&mut self) -> Result<(), BackendError> {
        if let Some(i) = self.pin_to {
            // An unpinned worker is still correct; not being allowed to pin is not an error.
            let _pinned = affinity::pin_current_thread(i);
        }
        Ok(())
    }

    fn scan(
        &mut self,
        header: &HeaderTemplate,
        target: &ScanTarget,
        range: NonceRange,
        ctl: &ScanControl,
        found: &mut Vec<u32>,
    ) -> Result<ScanOutcome, BackendError> {
        let job = match self.job.take() {
            Some(j) if j.header == *header && j.target == *target => j,
            _ => Job::new(header, target),
        };
        let job = &*self.job.insert(job);
        let scan_fn = self.kernel.scan_fn();
        let batch = u64::from(self.kernel.batch());
        let end = u64::from(range.end);
        let mut next = u64::from(range.start);
        let mut done = 0u64;
        while next <= end {
            if ctl.is_cancelled() {
                return Ok(ScanOutcome {
                    hashes_done: done,
                    cancelled: true,
                });
            }
            let n = (end - next + 1).min(batch);
            self.candidates.clear();
            // SAFETY: `self.kernel` was checked supported in `CpuBackend::open`;
            // `next + n - 1 <= end <= u32::MAX`, so the batch does not wrap.
            unsafe { scan_fn(job, next as u32, n as u32, &mut self.candidates) };
            found.extend(self.candidates.iter().copied().filter(|&c| job.meets(c)));
            done += n;
            ctl.add_hashes(n);
            next += n;
        }
        Ok(ScanOutcome {
            hashes_done: done,
            cancelled: false,
        })
    }
}

/// "model name" from /proc/cpuinfo where there is one.
fn cpu_model_name() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| format!("{} CPU", std::env::consts::ARCH))
}

/// MemTotal from /proc/meminfo, in bytes.
fn total_memory() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = s.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for k in Kernel::ALL {
            assert_eq!(k.name().parse::<Kernel>(), Ok(k));
        }
        assert!("sse9".parse::<Kernel>().is_err());
    }

    #[test]
    fn portable_is_always_available() {
        assert!(Kernel::available().contains(&Kernel::Portable));
        assert!(Kernel::detect().is_supported());
    }

    /// Every supported SIMD kernel is timed (the portable one only when alone), fastest
    /// first, and the default is a supported kernel from that list.
    #[test]
    fn the_default_kernel_is_measured_among_the_supported_ones() {
        let rates = Kernel::measure(Duration::from_millis(3));
        let mut expected = Kernel::available();
        if expected.len() > 1 {
            expected.retain(|&k| k != Kernel::Portable);
        }
        assert_eq!(rates.len(), expected.len());
        assert!(rates.iter().all(|(k, r)| expected.contains(k) && *r > 0.0));
        assert!(rates.windows(2).all(|w| w[0].1 >= w[1].1));
        let k = Kernel::fastest();
        assert!(k.is_supported() && expected.contains(&k));
        assert_eq!(CpuBackend::new().kernel(), k);
    }

    /// The kernels' raw output, before the sha2 re-check in `scan` could hide extra
    /// candidates: exactly the nonces whose digest word 7 is within the top word.
    #[test]
    fn kernels_report_exactly_the_candidates() {
        let mut hdr = [0u8; 80];
        for (i, b) in hdr.iter_mut().enumerate() {
            *b = (i as u8).wrapping_mul(13) ^ 0x5a;
        }
        let hdr = HeaderTemplate(hdr);
        let top: u32 = 0x00ff_ffff;
        let mut t = [0u8; 32];
        t[28..].copy_from_slice(&top.to_le_bytes());
        let job = Job::new(&hdr, &ScanTarget::from_le_bytes(t));
        for (first, count) in [(0u32, 3001u32), (u32::MAX - 2036, 2037), (77, 1)] {
            let want: Vec<u32> = (0..count)
                .map(|i| first + i)
                .filter(|&n| {
                    let d = crate::device::sha256d(&hdr.with_nonce(n));
                    u32::from_le_bytes([d[28], d[29], d[30], d[31]]) <= top
                })
                .collect();
            for k in Kernel::available() {
                let mut got = Vec::new();
                // SAFETY: `available` lists only kernels this CPU supports.
                unsafe { k.scan_fn()(&job, first, count, &mut got) };
                assert_eq!(got, want, "kernel {k}, first {first}, count {count}");
            }
        }
    }

    #[test]
    fn batches_are_whole_iterations() {
        for k in Kernel::ALL {
            assert_eq!(k.batch() % k.lanes(), 0, "{k}");
        }
    }
}

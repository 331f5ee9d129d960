//! The backend contract: what a device is told (header template, nonce range, target),
//! what it reports (every nonce that meets the target, hashes done), and how it is stopped.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use sha2::{Digest, Sha256};

/// An 80-byte block header in header byte order (the bytes that are hashed). The nonce field
/// (bytes 76..80) is ignored: the device writes each candidate nonce there, little-endian.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct HeaderTemplate(pub [u8; 80]);

impl HeaderTemplate {
    /// The header with `nonce` written into bytes 76..80 (little-endian, as hashed).
    pub fn with_nonce(&self, nonce: u32) -> [u8; 80] {
        let mut h = self.0;
        h[76..80].copy_from_slice(&nonce.to_le_bytes());
        h
    }
}

impl fmt::Debug for HeaderTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HeaderTemplate(")?;
        for b in &self.0[..76] {
            write!(f, "{b:02x}")?;
        }
        write!(f, ")")
    }
}

/// SHA-256d of an 80-byte header; the digest exactly as SHA-256 outputs it (the "internal"
/// byte order, i.e. a little-endian 256-bit integer — reversed for display).
pub fn sha256d(header: &[u8; 80]) -> [u8; 32] {
    let first = Sha256::digest(header);
    Sha256::digest(first).into()
}

/// A 256-bit share target. A hash meets it when the hash, read as a little-endian 256-bit
/// integer, is less than or equal to the target.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct ScanTarget {
    /// Little-endian 32-bit words, `words[7]` most significant.
    words: [u32; 8],
}

impl ScanTarget {
    /// From 32 little-endian bytes (byte 31 most significant), the order SHA-256 output has.
    pub fn from_le_bytes(b: [u8; 32]) -> Self {
        let mut words = [0u32; 8];
        for (i, w) in words.iter_mut().enumerate() {
            *w = u32::from_le_bytes([b[4 * i], b[4 * i + 1], b[4 * i + 2], b[4 * i + 3]]);
        }
        ScanTarget { words }
    }

    pub fn to_le_bytes(&self) -> [u8; 32] {
        let mut b = [0u8; 32];
        for (i, w) in self.words.iter().enumerate() {
            b[4 * i..4 * i + 4].copy_from_slice(&w.to_le_bytes());
        }
        b
    }

    /// Little-endian 32-bit words, `[7]` most significant.
    pub fn words(&self) -> [u32; 8] {
        self.words
    }

    /// The most significant 32 bits: kernels reject on this word before comparing the rest.
    pub fn top_word(&self) -> u32 {
        self.words[7]
    }

    /// Whether a SHA-256d digest (as output by SHA-256) meets this target.
    pub fn is_met_by(&self, digest: &[u8; 32]) -> bool {
        for i in (0..8).rev() {
            let h = u32::from_le_bytes([
                digest[4 * i],
                digest[4 * i + 1],
                digest[4 * i + 2],
                digest[4 * i + 3],
            ]);
            if h != self.words[i] {
                return h < self.words[i];
            }
        }
        true
    }
}

/// An inclusive range of nonces: `start..=end`. Inclusive so the full 2^32 space is
/// expressible (`0..=u32::MAX`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct NonceRange {
    pub start: u32,
    pub end: u32,
}

impl NonceRange {
    pub const FULL: NonceRange = NonceRange {
        start: 0,
        end: u32::MAX,
    };

    /// `None` when `start > end`.
    pub fn new(start: u32, end: u32) -> Option<Self> {
        (start <= end).then_some(NonceRange { start, end })
    }

    pub fn len(&self) -> u64 {
        u64::from(self.end - self.start) + 1
    }

    pub fn is_empty(&self) -> bool {
        false
    }
}

/// Shared between the engine and a running scan: the engine raises `cancel` on a job switch;
/// the worker adds to `hashes` after every batch so hashrate can be sampled while it runs.
#[derive(Debug, Default)]
pub struct ScanControl {
    cancel: AtomicBool,
    hashes: AtomicU64,
    hardware_errors: AtomicU64,
}

impl ScanControl {
    pub fn new() -> Self {
        Self::default()
    }
    pub fn cancel(&self) {
        self.cancel.store(true, Ordering::Release);
    }
    pub fn reset_cancel(&self) {
        self.cancel.store(false, Ordering::Release);
    }
    pub fn is_cancelled(&self) -> bool {
        self.cancel.load(Ordering::Acquire)
    }
    pub fn add_hashes(&self, n: u64) {
        self.hashes.fetch_add(n, Ordering::Relaxed);
    }
    /// Total hashes credited since this control was created.
    pub fn hashes(&self) -> u64 {
        self.hashes.load(Ordering::Relaxed)
    }
    /// A result the device sent that is not even a nonce (a short or broken reply on a serial
    /// line): there is nothing to re-check on the CPU, but it is a hardware error all the same.
    pub fn add_hardware_error(&self) {
        self.hardware_errors.fetch_add(1, Ordering::Relaxed);
    }
    /// Broken results counted by `add_hardware_error` since this control was created.
    pub fn hardware_errors(&self) -> u64 {
        self.hardware_errors.load(Ordering::Relaxed)
    }
}

/// How one `scan` call ended.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct ScanOutcome {
    /// Nonces actually hashed in this call (also added to `ScanControl::hashes`).
    pub hashes_done: u64,
    /// True when the scan stopped early because `ScanControl::cancel` was raised.
    pub cancelled: bool,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug, Hash, PartialOrd, Ord)]
pub enum BackendKind {
    Cpu,
    Cuda,
    OpenCl,
    Wgpu,
    Fpga,
}

impl BackendKind {
    pub fn name(self) -> &'static str {
        match self {
            BackendKind::Cpu => "cpu",
            BackendKind::Cuda => "cuda",
            BackendKind::OpenCl => "opencl",
            BackendKind::Wgpu => "wgpu",
            BackendKind::Fpga => "fpga",
        }
    }

    /// The name people write in prose ("CUDA: libcuda.so.1 not found").
    pub fn display_name(self) -> &'static str {
        match self {
            BackendKind::Cpu => "CPU",
            BackendKind::Cuda => "CUDA",
            BackendKind::OpenCl => "OpenCL",
            BackendKind::Wgpu => "WebGPU",
            BackendKind::Fpga => "FPGA",
        }
    }
}

impl fmt::Display for BackendKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What `rigworker devices` lists about one device.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceInfo {
    pub backend: BackendKind,
    /// Index within its backend (`--devices` selects by it).
    pub index: usize,
    pub name: String,
    /// Cores for a CPU, compute units / SMs for a GPU.
    pub compute_units: u32,
    /// Device memory in bytes, when known.
    pub memory_bytes: Option<u64>,
    /// Kernel or code path that will run (e.g. "sha-ni x4 + avx512").
    pub detail: String,
}

/// Why a compiled-in backend has no devices on this machine.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{}: {reason}", backend.display_name())]
pub struct BackendUnavailable {
    pub backend: BackendKind,
    pub reason: String,
}

#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    #[error(transparent)]
    Unavailable(#[from] BackendUnavailable),
    #[error("{backend} device {index} does not exist")]
    NoSuchDevice { backend: BackendKind, index: usize },
    #[error("{0}")]
    Device(String),
    /// The device is gone for good (failed its reset, or never came back): the engine stops
    /// driving it and the other devices go on.
    #[error("device disabled: {0}")]
    Disabled(String),
}

/// A family of devices (CPU, OpenCL, ...): discovery, and opening workers on a device.
pub trait HashBackend: Send + Sync {
    fn kind(&self) -> BackendKind;
    /// The devices this backend can drive here, or why there are none.
    fn devices(&self) -> Result<Vec<DeviceInfo>, BackendUnavailable>;
    /// Open `threads` workers on device `index` (a GPU usually wants 1; the CPU one per core).
    /// Each worker is driven by its own OS thread.
    fn open(&self, index: usize, threads: usize) -> Result<Vec<Box<dyn HashWorker>>, BackendError>;
}

/// One unit of compute driven by one OS thread: a CPU core, a GPU queue.
pub trait HashWorker: Send {
    fn info(&self) -> &DeviceInfo;
    /// Called once on the worker's own thread before the first scan (pin to a core, create a
    /// context...).
    fn start_on_thread(&mut self) -> Result<(), BackendError> {
        Ok(())
    }
    /// The fewest nonces one `scan` call should get to run efficiently (a GPU's tuned launch
    /// size). The engine otherwise hands out slices of well under a millisecond so found
    /// nonces are reported and job switches noticed quickly.
    fn min_scan_nonces(&self) -> u64 {
        1
    }

    /// Whether the device searches whole headers by itself (FPGA boards, USB ASIC sticks: the
    /// Icarus protocol has no nonce range, every job starts at nonce 0). The engine then gives
    /// each call a header nobody has searched, with the full 2^32 range, and takes found
    /// nonces through [`HashWorker::scan_streaming`] as they arrive.
    fn searches_whole_headers(&self) -> bool {
        false
    }

    /// [`HashWorker::scan`] that hands each found nonce to `on_found` as soon as it is
    /// known, for devices whose one call lasts seconds (a board's full range). The default
    /// scans, then reports.
    fn scan_streaming(
        &mut self,
        header: &HeaderTemplate,
        target: &ScanTarget,
        range: NonceRange,
        ctl: &ScanControl,
        on_found: &mut dyn FnMut(u32),
    ) -> Result<ScanOutcome, BackendError> {
        let mut found = Vec::new();
        let outcome = self.scan(header, target, range, ctl, &mut found)?;
        for n in found {
            on_found(n);
        }
        Ok(outcome)
    }

    /// Hash every nonce of `range` over `header`; push each nonce whose SHA-256d meets
    /// `target` into `found` (all of them, not just the first). Checks `ctl.is_cancelled()`
    /// between batches so a job switch stops it within a few milliseconds, and credits hashes
    /// to `ctl` after each batch.
    fn scan(
        &mut self,
        header: &HeaderTemplate,
        target: &ScanTarget,
        range: NonceRange,
        ctl: &ScanControl,
        found: &mut Vec<u32>,
    ) -> Result<ScanOutcome, BackendError>;
}

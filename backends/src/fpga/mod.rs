//! FPGA boards and USB ASIC sticks that speak the Icarus serial protocol (Icarus, Lancelot,
//! Cairnsmore, Block Erupter, and rigworker's own RTL in `kernels/rtl/`).
//!
//! Devices are named by path (`--fpga /dev/ttyUSB0,...`) or found by scanning `ttyUSB*` and
//! `ttyACM*`; either way each is probed with the golden job and kept only if it answers it
//! correctly. Each board is driven by one [`IcarusWorker`] on its own thread: one 64-byte job
//! per whole header, replies matched to the current (or previous) job on the CPU, the range's
//! end found by timing ([`timing`]), hashes credited from the calibrated speed.

pub mod icarus;
pub mod port;
pub mod timing;
mod worker;

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

pub use worker::{IcarusWorker, Reply, ReplyReader};

use crate::device::{
    BackendError, BackendKind, BackendUnavailable, DeviceInfo, HashBackend, HashWorker,
};
use icarus::{GOLDEN_JOB, IcarusJob};
use port::SerialPort;
use timing::{ICARUS_HS, Timing};

/// How the boards are reached and what they are.
#[derive(Clone, Debug)]
pub struct FpgaConfig {
    /// Serial ports of the boards; empty: scan `/dev/ttyUSB*` and `/dev/ttyACM*`.
    pub ports: Vec<PathBuf>,
    pub baud: u32,
    /// Seconds per hash, when known; otherwise measured by the probe and then online.
    pub hash_time: Option<f64>,
    /// Chips that split each board's range (1, 2, 4 or 8).
    pub work_division: u32,
    /// Leading zero bits a board's hit has: 32 (H7 == 0) on real boards; the simulated RTL
    /// is built with fewer.
    pub zero_bits: u32,
    /// Close and reopen the port after every silent range end (some USB-UARTs stop
    /// delivering data otherwise).
    pub reopen: bool,
    /// How long a probe waits for the golden reply.
    pub probe_timeout: Duration,
    /// How long an unplugged board may stay away before it is disabled.
    pub gone_limit: Duration,
    /// Test only: the counter the board starts each job from (the simulated RTL's
    /// `--start-nonce`), so a test can reach the end of a range.
    pub first_counter: u32,
}

impl Default for FpgaConfig {
    fn default() -> Self {
        FpgaConfig {
            ports: Vec::new(),
            baud: 115200,
            hash_time: None,
            work_division: 1,
            zero_bits: 32,
            reopen: false,
            probe_timeout: Duration::from_secs(5),
            gone_limit: Duration::from_secs(600),
            first_counter: 0,
        }
    }
}

impl FpgaConfig {
    /// The settings themselves are consistent (paths are checked by probing).
    pub fn validate(&self) -> Result<(), String> {
        if !port::valid_baud(self.baud) {
            return Err(format!(
                "unsupported baud rate {} (supported: {})",
                self.baud,
                port::BAUD_RATES
            ));
        }
        if ![1, 2, 4, 8].contains(&self.work_division) {
            return Err(format!(
                "work division must be 1, 2, 4 or 8 chips, got {}",
                self.work_division
            ));
        }
        if !(1..=32).contains(&self.zero_bits) {
            return Err(format!(
                "hit zero bits must be 1..=32, got {}",
                self.zero_bits
            ));
        }
        if let Some(hs) = self.hash_time
            && !(hs.is_finite() && hs > 0.0)
        {
            return Err(format!("seconds per hash must be positive, got {hs}"));
        }
        if self.first_counter != 0 && self.work_division != 1 {
            return Err("a first counter needs a work division of 1".into());
        }
        Ok(())
    }

    /// Hashes in one job's range.
    pub(crate) fn range_hashes(&self) -> f64 {
        (1u64 << 32) as f64 - f64::from(self.first_counter)
    }

    /// Hashes a board has done when a chip's counter reads `w3`: the chips split the range
    /// evenly and count in step.
    pub(crate) fn hashes_at(&self, w3: u32) -> f64 {
        let chip_span = (1u64 << 32) / u64::from(self.work_division);
        let local = (u64::from(w3) % chip_span).saturating_sub(u64::from(self.first_counter));
        ((local + 1) * u64::from(self.work_division)) as f64
    }
}

/// A board that passed the probe.
pub(crate) struct Probed {
    pub info: DeviceInfo,
    pub port: SerialPort,
    pub timing: Timing,
}

pub struct FpgaBackend {
    config: FpgaConfig,
    /// Boards found by the last `devices()`, kept open for `open()` so each is probed once.
    probed: Mutex<Vec<Option<Probed>>>,
}

impl Default for FpgaBackend {
    fn default() -> Self {
        Self::new()
    }
}

impl FpgaBackend {
    /// Scans the usual serial ports at the defaults of an Icarus board.
    pub fn new() -> Self {
        Self::with_config(FpgaConfig::default())
    }

    pub fn with_config(config: FpgaConfig) -> Self {
        FpgaBackend {
            config,
            probed: Mutex::new(Vec::new()),
        }
    }

    pub fn config(&self) -> &FpgaConfig {
        &self.config
    }

    fn candidates(&self) -> Vec<PathBuf> {
        if !self.config.ports.is_empty() {
            return self.config.ports.clone();
        }
        let mut out: Vec<PathBuf> = std::fs::read_dir("/dev")
            .map(|d| {
                d.filter_map(|e| e.ok())
                    .map(|e| e.path())
                    .filter(|p| {
                        p.file_name()
                            .and_then(|n| n.to_str())
                            .is_some_and(|n| n.starts_with("ttyUSB") || n.starts_with("ttyACM"))
                    })
                    .collect()
            })
            .unwrap_or_default();
        out.sort();
        out
    }
}

/// Opens `path` and checks it answers the golden job as an Icarus board does; measures its
/// speed on the way when the answer takes long enough to say something.
pub(crate) fn probe(config: &FpgaConfig, path: &Path, index: usize) -> Result<Probed, String> {
    let mut port =
        SerialPort::open(path, config.baud).map_err(|e| format!("{}: {e}", path.display()))?;
    let job = IcarusJob::from_bytes(&GOLDEN_JOB);
    let answer = worker::probe_job(&mut port, config, &job, config.probe_timeout)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let w3 = answer.w3;
    // The golden reply of a fast board comes after a few milliseconds of serial latency and
    // says nothing about its speed; only a hit that came late times the board.
    let measured = answer.timed.map(|(hashes, secs)| secs / hashes);
    let prior = config.hash_time.or(measured).unwrap_or(ICARUS_HS);
    let timing = if config.hash_time.is_some() || measured.is_some() {
        Timing::new(prior)
    } else {
        Timing::assumed(prior)
    };
    let source = if config.hash_time.is_some() {
        "configured"
    } else if measured.is_some() {
        "probed"
    } else {
        "assumed"
    };
    let info = DeviceInfo {
        backend: BackendKind::Fpga,
        index,
        name: format!("Icarus board at {}", path.display()),
        compute_units: config.work_division,
        memory_bytes: None,
        detail: format!(
            "{} baud, {:.3} MH/s {source}, golden nonce {w3:08x}",
            config.baud,
            1e-6 / prior
        ),
    };
    Ok(Probed { info, port, timing })
}

impl HashBackend for FpgaBackend {
    fn kind(&self) -> BackendKind {
        BackendKind::Fpga
    }

    fn devices(&self) -> Result<Vec<DeviceInfo>, BackendUnavailable> {
        let unavailable = |reason: String| BackendUnavailable {
            backend: BackendKind::Fpga,
            reason,
        };
        self.config.validate().map_err(unavailable)?;
        let paths = self.candidates();
        if paths.is_empty() {
            return Err(unavailable(
                "no serial ports (/dev/ttyUSB*, /dev/ttyACM*); name boards with --fpga PATH".into(),
            ));
        }
        // Probed in parallel: each can take up to the probe timeout.
        let t0 = Instant::now();
        let results: Vec<Result<Probed, String>> = std::thread::scope(|s| {
            let handles: Vec<_> = paths
                .iter()
                .enumerate()
                .map(|(i, p)| s.spawn(move || probe(&self.config, p, i)))
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err("the probe thread panicked".into()))
                })
                .collect()
        });
        let mut kept = Vec::new();
        let mut failures = Vec::new();
        for r in results {
            match r {
                Ok(p) => kept.push(p),
                Err(e) => {
                    tracing::warn!("FPGA probe failed: {e}");
                    failures.push(e);
                }
            }
        }
        tracing::debug!(
            boards = kept.len(),
            secs = t0.elapsed().as_secs_f64(),
            "FPGA probe done"
        );
        if kept.is_empty() {
            return Err(unavailable(format!(
                "no Icarus board answered the golden job ({})",
                failures.join("; ")
            )));
        }
        // Indices are positions among the boards that answered.
        for (i, p) in kept.iter_mut().enumerate() {
            p.info.index = i;
        }
        let infos = kept.iter().map(|p| p.info.clone()).collect();
        *self.probed.lock().unwrap_or_else(|e| e.into_inner()) =
            kept.into_iter().map(Some).collect();
        Ok(infos)
    }

    fn open(
        &self,
        index: usize,
        _threads: usize,
    ) -> Result<Vec<Box<dyn HashWorker>>, BackendError> {
        let taken = {
            let mut probed = self.probed.lock().unwrap_or_else(|e| e.into_inner());
            probed.get_mut(index).and_then(Option::take)
        };
        let probed = match taken {
            Some(p) => p,
            None => {
                // Not probed yet (or already opened): probe again.
                self.devices()?;
                let mut probed = self.probed.lock().unwrap_or_else(|e| e.into_inner());
                probed
                    .get_mut(index)
                    .and_then(Option::take)
                    .ok_or(BackendError::NoSuchDevice {
                        backend: BackendKind::Fpga,
                        index,
                    })?
            }
        };
        Ok(vec![Box::new(IcarusWorker::new(
            self.config.clone(),
            probed,
        ))])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_follow_the_work_division() {
        let mut c = FpgaConfig::default();
        assert_eq!(c.hashes_at(0), 1.0);
        assert_eq!(c.hashes_at(99), 100.0);
        c.work_division = 4;
        // Chip 2 of 4 at 100 counts into its quarter: every chip has done 101.
        assert_eq!(c.hashes_at((2 << 30) + 100), 404.0);
        let c = FpgaConfig {
            first_counter: 0xffff_0000,
            ..FpgaConfig::default()
        };
        assert_eq!(c.range_hashes(), 65536.0);
        assert_eq!(c.hashes_at(0xffff_0009), 10.0);
    }

    #[test]
    fn bad_settings_are_explained() {
        let bad = |f: fn(&mut FpgaConfig)| {
            let mut c = FpgaConfig::default();
            f(&mut c);
            c.validate().unwrap_err()
        };
        assert!(bad(|c| c.baud = 1234).contains("baud"));
        assert!(bad(|c| c.work_division = 3).contains("work division"));
        assert!(bad(|c| c.zero_bits = 0).contains("zero bits"));
        assert!(bad(|c| c.hash_time = Some(-1.0)).contains("per hash"));
        assert!(FpgaConfig::default().validate().is_ok());
    }

    #[test]
    fn a_missing_port_is_unavailable_with_the_reason() {
        let b = FpgaBackend::with_config(FpgaConfig {
            ports: vec![PathBuf::from("/nonexistent/ttyUSB9")],
            ..FpgaConfig::default()
        });
        let e = b.devices().unwrap_err();
        assert!(e.to_string().contains("/nonexistent/ttyUSB9"), "{e}");
        assert!(e.to_string().starts_with("FPGA:"), "{e}");
    }
}

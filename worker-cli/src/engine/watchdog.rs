//! The device watchdog's judgement: which devices made no progress for too long while they
//! had work, and whether each gets its context rebuilt or is disabled.
//!
//! Progress is a device's hash counter moving. GPU launches hang and drivers reset without an
//! error ever reaching the host, so a device that stops counting while work is available is
//! assumed wedged: its thread is abandoned (a hung driver call cannot be interrupted), a fresh
//! worker is opened on the same device, and after `max_rebuilds` rebuilds (over the run) the
//! device is disabled while the others go on. Kept free of threads and clocks so
//! the policy is tested exactly.

use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug)]
pub struct WatchdogConfig {
    /// No progress for this long with work available: the device is hung.
    pub timeout: Duration,
    /// Rebuilds of one device before it is disabled.
    pub max_rebuilds: u32,
}

impl Default for WatchdogConfig {
    fn default() -> Self {
        WatchdogConfig {
            timeout: Duration::from_secs(30),
            max_rebuilds: 3,
        }
    }
}

/// What the engine should do about one device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    Rebuild { device: usize, attempt: u32 },
    Disable { device: usize },
}

#[derive(Clone, Debug)]
struct Track {
    hashes: u64,
    since: Instant,
    rebuilds: u32,
    disabled: bool,
}

#[derive(Clone, Debug)]
pub struct Watchdog {
    cfg: WatchdogConfig,
    devices: Vec<Track>,
}

impl Watchdog {
    pub fn new(cfg: WatchdogConfig, devices: usize, now: Instant) -> Watchdog {
        Watchdog {
            cfg,
            devices: vec![
                Track {
                    hashes: 0,
                    since: now,
                    rebuilds: 0,
                    disabled: false,
                };
                devices
            ],
        }
    }

    /// One look at the hash counters. `working[i]` says whether device i should be making
    /// progress (it has work and is not paused): time without work never counts as a hang.
    pub fn check(&mut self, now: Instant, hashes: &[u64], working: &[bool]) -> Vec<Verdict> {
        let mut out = Vec::new();
        for (i, t) in self.devices.iter_mut().enumerate() {
            let h = hashes.get(i).copied().unwrap_or(t.hashes);
            let busy = working.get(i).copied().unwrap_or(false);
            if t.disabled {
                continue;
            }
            if h != t.hashes || !busy {
                t.hashes = h;
                t.since = now;
                continue;
            }
            if now.saturating_duration_since(t.since) < self.cfg.timeout {
                continue;
            }
            t.since = now;
            if t.rebuilds >= self.cfg.max_rebuilds {
                t.disabled = true;
                out.push(Verdict::Disable { device: i });
            } else {
                t.rebuilds += 1;
                out.push(Verdict::Rebuild {
                    device: i,
                    attempt: t.rebuilds,
                });
            }
        }
        out
    }

    /// Rebuilds of device `i` so far.
    pub fn rebuilds(&self, i: usize) -> u32 {
        self.devices.get(i).map_or(0, |t| t.rebuilds)
    }

    /// The rebuilt worker counts from zero again where the old one's counter stood.
    pub fn rebased(&mut self, i: usize, hashes: u64, now: Instant) {
        if let Some(t) = self.devices.get_mut(i) {
            t.hashes = hashes;
            t.since = now;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dog() -> (Watchdog, Instant) {
        let now = Instant::now();
        let cfg = WatchdogConfig {
            timeout: Duration::from_secs(30),
            max_rebuilds: 2,
        };
        (Watchdog::new(cfg, 2, now), now)
    }

    #[test]
    fn a_stalled_device_is_rebuilt_then_disabled_while_others_go_on() {
        let (mut w, t0) = dog();
        let s = |n: u64| t0 + Duration::from_secs(n);
        assert!(w.check(s(10), &[100, 100], &[true, true]).is_empty());
        // Device 0 stops at 100; device 1 keeps counting.
        assert!(w.check(s(39), &[100, 200], &[true, true]).is_empty());
        assert_eq!(
            w.check(s(40), &[100, 300], &[true, true]),
            vec![Verdict::Rebuild {
                device: 0,
                attempt: 1
            }]
        );
        // Still stuck after the rebuild: rebuilt again 30 s later, then disabled.
        assert!(w.check(s(69), &[100, 400], &[true, true]).is_empty());
        assert_eq!(
            w.check(s(70), &[100, 500], &[true, true]),
            vec![Verdict::Rebuild {
                device: 0,
                attempt: 2
            }]
        );
        assert_eq!(
            w.check(s(100), &[100, 600], &[true, true]),
            vec![Verdict::Disable { device: 0 }]
        );
        assert!(w.check(s(200), &[100, 700], &[true, true]).is_empty());
        assert_eq!(w.rebuilds(0), 2);
        assert_eq!(w.rebuilds(1), 0);
    }

    #[test]
    fn time_without_work_is_not_a_hang() {
        let (mut w, t0) = dog();
        let s = |n: u64| t0 + Duration::from_secs(n);
        // The pool is gone for two minutes: no work, no progress, no verdict (the engine
        // looks once a second).
        for n in 0..125 {
            assert!(w.check(s(n), &[0, 0], &[false, false]).is_empty());
        }
        // Work again from 125 s: the clock started at the last look without work, not at the
        // last progress.
        assert!(w.check(s(125), &[0, 0], &[true, true]).is_empty());
        assert!(w.check(s(153), &[0, 0], &[true, true]).is_empty());
        assert_eq!(w.check(s(154), &[0, 0], &[true, true]).len(), 2);
    }

    #[test]
    fn a_rebuilt_device_that_recovers_is_judged_afresh() {
        let (mut w, t0) = dog();
        let s = |n: u64| t0 + Duration::from_secs(n);
        w.check(s(0), &[5, 5], &[true, true]);
        assert_eq!(w.check(s(30), &[5, 6], &[true, true]).len(), 1);
        w.rebased(0, 5, s(30));
        assert!(w.check(s(45), &[900, 7], &[true, true]).is_empty());
        assert!(w.check(s(70), &[1900, 8], &[true, true]).is_empty());
        assert_eq!(w.rebuilds(0), 1);
    }
}

//! Accounting and hashrate.
//!
//! Every nonce a device reports ends in exactly one bucket, so
//! `found = accepted + rejected + stale + hardware_errors + in_flight` holds per device and
//! per pool, across reconnects and failover. A share belongs to the pool whose job it was
//! from the moment it is found to its outcome, whichever session finally answers for it.
//! Hashrate comes from samples of each device's hash counter taken once a second and kept
//! for 15 minutes.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use serde::Serialize;

#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct ShareCounts {
    pub found: u64,
    pub accepted: u64,
    pub rejected: u64,
    pub stale: u64,
    pub hardware_errors: u64,
    pub in_flight: u64,
}

/// Where a share ended up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShareEnd {
    Accepted,
    Rejected,
    Stale,
    HardwareError,
}

impl ShareCounts {
    /// The invariant the engine keeps.
    pub fn balanced(&self) -> bool {
        self.found
            == self.accepted + self.rejected + self.stale + self.hardware_errors + self.in_flight
    }

    /// A share was found: it ends at once (`Some`) or is now in flight to the pool (`None`).
    pub fn record_found(&mut self, end: Option<ShareEnd>) {
        self.found += 1;
        match end {
            Some(end) => self.bump(end),
            None => self.in_flight += 1,
        }
    }

    /// The pool (or the client, for a share it could not send) answered an in-flight share.
    pub fn record_answer(&mut self, end: ShareEnd) {
        // Saturating: an answer with no matching found would be an engine bug, and a bug in
        // the statistics must not take the miner down.
        self.in_flight = self.in_flight.saturating_sub(1);
        self.bump(end);
    }

    fn bump(&mut self, end: ShareEnd) {
        match end {
            ShareEnd::Accepted => self.accepted += 1,
            ShareEnd::Rejected => self.rejected += 1,
            ShareEnd::Stale => self.stale += 1,
            ShareEnd::HardwareError => self.hardware_errors += 1,
        }
    }
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct PoolCounts {
    pub url: String,
    /// Shares found on this pool's jobs, flattened so the JSON reads like a device's counts.
    #[serde(flatten)]
    pub shares: ShareCounts,
    pub connects: u64,
    pub accepted_difficulty: f64,
    pub last_latency_ms: Option<f64>,
    /// Seconds from sending a share to the pool's answer (`/metrics`; not in the summary).
    #[serde(skip)]
    pub submit_latency: Observations,
}

/// Bucket bounds (seconds) for share submit latency: LAN pools answer in about a
/// millisecond, pools across the world in a few hundred.
pub const SUBMIT_LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];
/// Bucket bounds (seconds) for proof phases: from a test circuit's milliseconds to a large
/// circuit's minutes.
pub const PHASE_BUCKETS: &[f64] = &[
    0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0, 60.0, 300.0,
];
/// How many recent observations a median is taken over.
const RECENT: usize = 256;

/// Observations of one quantity: fixed buckets, sum and count for a Prometheus histogram
/// (which needs every observation, not a sample of them), and the most recent ones for a
/// median.
#[derive(Clone, Debug)]
pub struct Observations {
    bounds: &'static [f64],
    /// Per bucket (not cumulative); one more than `bounds` for +Inf.
    counts: Vec<u64>,
    sum: f64,
    count: u64,
    recent: VecDeque<f64>,
}

impl Default for Observations {
    fn default() -> Self {
        Observations::new(SUBMIT_LATENCY_BUCKETS)
    }
}

impl Observations {
    pub fn new(bounds: &'static [f64]) -> Self {
        Observations {
            bounds,
            counts: vec![0; bounds.len() + 1],
            sum: 0.0,
            count: 0,
            recent: VecDeque::new(),
        }
    }

    pub fn observe(&mut self, v: f64) {
        // A NaN would poison the sum forever; time measurements never produce one, but a
        // statistics bug must not corrupt every later scrape.
        if !v.is_finite() {
            return;
        }
        let i = self.bounds.partition_point(|b| *b < v);
        self.counts[i] += 1;
        self.sum += v;
        self.count += 1;
        if self.recent.len() == RECENT {
            self.recent.pop_front();
        }
        self.recent.push_back(v);
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    pub fn sum(&self) -> f64 {
        self.sum
    }

    /// `(upper bound, count in that bucket)` with a last `+Inf` bucket, as
    /// `prometheus_client`'s encoders take them.
    pub fn buckets(&self) -> Vec<(f64, u64)> {
        self.bounds
            .iter()
            .copied()
            .chain(std::iter::once(f64::INFINITY))
            .zip(self.counts.iter().copied())
            .collect()
    }

    /// Median of the last few hundred observations (the mean of the middle two for an even
    /// number); `None` before the first.
    pub fn median(&self) -> Option<f64> {
        let mut v: Vec<f64> = self.recent.iter().copied().collect();
        if v.is_empty() {
            return None;
        }
        v.sort_by(f64::total_cmp);
        let n = v.len();
        Some(if n % 2 == 1 {
            v[n / 2]
        } else {
            (v[n / 2 - 1] + v[n / 2]) / 2.0
        })
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct DeviceStats {
    pub id: String,
    pub backend: String,
    pub name: String,
    pub hashes: u64,
    pub shares: ShareCounts,
    /// H/s over 10 s, 60 s, 15 min (None until that much time has been sampled).
    pub hashrate: [Option<f64>; 3],
    /// `running`, `paused`, `too hot` or `disabled` (see `disabled_reason`).
    pub state: &'static str,
    /// Times the watchdog rebuilt the device's worker after it stopped making progress.
    pub rebuilds: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disabled_reason: Option<String>,
}

/// Samples of cumulative hash counters.
pub struct RateWindow {
    samples: VecDeque<(Instant, u64)>,
    keep: Duration,
}

pub const WINDOWS: [Duration; 3] = [
    Duration::from_secs(10),
    Duration::from_secs(60),
    Duration::from_secs(900),
];

impl Default for RateWindow {
    fn default() -> Self {
        RateWindow {
            samples: VecDeque::new(),
            keep: WINDOWS[2] + Duration::from_secs(2),
        }
    }
}

impl RateWindow {
    pub fn record(&mut self, at: Instant, total: u64) {
        self.samples.push_back((at, total));
        while let Some(&(t, _)) = self.samples.front() {
            if at.duration_since(t) > self.keep {
                self.samples.pop_front();
            } else {
                break;
            }
        }
    }

    /// Rate over the last `window`; `None` until at least half of it has been sampled, so a
    /// fresh start does not print a 15-minute figure made of 3 seconds.
    pub fn rate(&self, window: Duration) -> Option<f64> {
        let &(t1, h1) = self.samples.back()?;
        let (t0, h0) = self
            .samples
            .iter()
            .find(|(t, _)| t1.duration_since(*t) <= window)
            .copied()?;
        let span = t1.duration_since(t0);
        if span < window / 2 || span.is_zero() {
            // Short runs still deserve a number for the shortest window.
            if window == WINDOWS[0] && span >= Duration::from_secs(2) {
                return Some((h1 - h0) as f64 / span.as_secs_f64());
            }
            return None;
        }
        Some((h1 - h0) as f64 / span.as_secs_f64())
    }

    pub fn rates(&self) -> [Option<f64>; 3] {
        [
            self.rate(WINDOWS[0]),
            self.rate(WINDOWS[1]),
            self.rate(WINDOWS[2]),
        ]
    }
}

/// "12.34 MH/s" style.
pub fn format_rate(h: Option<f64>) -> String {
    match h {
        None => "n/a".into(),
        Some(h) => {
            let units = ["H/s", "kH/s", "MH/s", "GH/s", "TH/s", "PH/s"];
            let mut v = h;
            let mut i = 0;
            while v >= 1000.0 && i + 1 < units.len() {
                v /= 1000.0;
                i += 1;
            }
            format!("{v:.2} {}", units[i])
        }
    }
}

/// A difficulty for people: four significant digits (`0.02247`, `1024`; `3.142e12` outside
/// 1e-5..1e6), never the 17 digits of an f64.
pub fn format_difficulty(d: f64) -> String {
    if !d.is_finite() {
        return d.to_string();
    }
    if d == 0.0 {
        return "0".into();
    }
    let exp = d.abs().log10().floor() as i32;
    if !(-5..=5).contains(&exp) {
        let s = format!("{d:.3e}");
        // "1.500e12" → "1.5e12"
        return match s.split_once('e') {
            Some((m, e)) if m.contains('.') => {
                format!("{}e{e}", m.trim_end_matches('0').trim_end_matches('.'))
            }
            _ => s,
        };
    }
    let decimals = (3 - exp).max(0) as usize;
    let s = format!("{d:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn difficulties_have_four_significant_digits() {
        for (d, want) in [
            (0.022468356875660244, "0.02247"),
            (0.001, "0.001"),
            (0.00002, "0.00002"),
            (0.000012345678, "0.00001235"),
            (1.0, "1"),
            (1024.0, "1024"),
            (65536.7, "65537"),
            (123456.0, "123456"),
            (1234567.0, "1.235e6"),
            (3.14159e12, "3.142e12"),
            (1.5e-7, "1.5e-7"),
            (0.0, "0"),
        ] {
            assert_eq!(format_difficulty(d), want, "{d}");
        }
    }

    #[test]
    fn every_share_lands_in_one_bucket() {
        let mut c = ShareCounts::default();
        c.record_found(Some(ShareEnd::HardwareError));
        c.record_found(Some(ShareEnd::Stale));
        c.record_found(None);
        c.record_found(None);
        c.record_found(None);
        assert_eq!(c.in_flight, 3);
        assert!(c.balanced(), "{c:?}");
        c.record_answer(ShareEnd::Accepted);
        c.record_answer(ShareEnd::Rejected);
        assert!(c.balanced(), "{c:?}");
        c.record_answer(ShareEnd::Stale);
        assert_eq!(
            c,
            ShareCounts {
                found: 5,
                accepted: 1,
                rejected: 1,
                stale: 2,
                hardware_errors: 1,
                in_flight: 0,
            }
        );
        // A stray answer cannot drive in_flight below zero.
        c.record_answer(ShareEnd::Accepted);
        assert_eq!(c.in_flight, 0);
    }

    #[test]
    fn pool_counts_serialize_flat() {
        let mut p = PoolCounts {
            url: "stratum+tcp://a:1".into(),
            ..Default::default()
        };
        p.shares.record_found(None);
        let v = serde_json::to_value(&p).unwrap();
        assert_eq!(v["found"], 1);
        assert_eq!(v["in_flight"], 1);
        assert_eq!(v["hardware_errors"], 0);
        assert_eq!(v["url"], "stratum+tcp://a:1");
    }

    #[test]
    fn observations_bucket_and_take_medians() {
        let mut o = Observations::new(&[0.01, 0.1, 1.0]);
        assert_eq!(o.median(), None);
        for v in [0.005, 0.01, 0.05, 0.5, 7.0, f64::NAN] {
            o.observe(v);
        }
        // The NaN is dropped; 0.01 is in the bucket whose upper bound it equals.
        assert_eq!(o.count(), 5);
        assert_eq!(
            o.buckets(),
            vec![(0.01, 2), (0.1, 1), (1.0, 1), (f64::INFINITY, 1)]
        );
        assert!((o.sum() - 7.565).abs() < 1e-12);
        assert_eq!(o.median(), Some(0.05));
        o.observe(0.05);
        assert_eq!(o.median(), Some(0.05));
        o.observe(1.0);
        assert_eq!(o.median(), Some(0.05));
        // An even number: the mean of the middle two.
        o.observe(3.0);
        assert_eq!(o.median(), Some((0.05 + 0.5) / 2.0));
        // Medians follow the recent past only.
        for _ in 0..RECENT {
            o.observe(2.0);
        }
        assert_eq!(o.median(), Some(2.0));
        assert_eq!(o.count(), 8 + RECENT as u64);
    }

    #[test]
    fn windows_need_enough_samples() {
        let mut w = RateWindow::default();
        let t0 = Instant::now();
        for s in 0..=70u64 {
            w.record(t0 + Duration::from_secs(s), s * 1000);
        }
        assert_eq!(w.rate(WINDOWS[0]), Some(1000.0));
        assert_eq!(w.rate(WINDOWS[1]), Some(1000.0));
        assert_eq!(w.rate(WINDOWS[2]), None);
        assert_eq!(format_rate(Some(12_345_678.0)), "12.35 MH/s");
        assert_eq!(format_rate(Some(999.0)), "999.00 H/s");
    }
}

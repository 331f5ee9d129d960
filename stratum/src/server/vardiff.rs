//! Variable difficulty for one connection: after every few accepted shares (or after a long
//! silence) the observed time per share is compared with the target and the difficulty is
//! moved toward it. Pure arithmetic on `Instant`s so it is tested without a network or clock.

use std::time::{Duration, Instant};

/// Vardiff settings. Difficulties are pool difficulties (fractions allowed).
#[derive(Clone, Debug, PartialEq)]
pub struct VardiffConfig {
    /// Aim for one accepted share per this many seconds per connection.
    pub target_share_secs: f64,
    pub min: f64,
    pub max: f64,
    /// Retarget after this many accepted shares (at least 1).
    pub retarget_shares: u32,
}

impl Default for VardiffConfig {
    fn default() -> Self {
        VardiffConfig {
            target_share_secs: 10.0,
            min: 1e-6,
            max: 1e12,
            retarget_shares: 6,
        }
    }
}

impl VardiffConfig {
    pub fn clamp(&self, d: f64) -> f64 {
        d.clamp(self.min, self.max)
    }
}

/// One step never moves the difficulty by more than this factor, so one lucky burst or one
/// quiet spell cannot swing it wildly.
const MAX_STEP: f64 = 4.0;
/// Changes smaller than this fraction are not worth a set_difficulty + notify round.
const MIN_CHANGE: f64 = 0.1;

#[derive(Debug)]
pub(super) struct Vardiff {
    config: VardiffConfig,
    window_start: Instant,
    shares: u32,
}

impl Vardiff {
    pub(super) fn new(config: VardiffConfig, now: Instant) -> Self {
        Vardiff {
            config,
            window_start: now,
            shares: 0,
        }
    }

    /// Restarts the measurement, e.g. after the difficulty was changed by other means.
    pub(super) fn reset(&mut self, now: Instant) {
        self.window_start = now;
        self.shares = 0;
    }

    /// Counts an accepted share; returns a new difficulty when it is time to retarget.
    pub(super) fn on_share(&mut self, now: Instant, current: f64) -> Option<f64> {
        self.shares += 1;
        if self.shares < self.config.retarget_shares.max(1) {
            return None;
        }
        let elapsed = now.saturating_duration_since(self.window_start);
        self.retarget(now, elapsed, self.shares, current)
    }

    /// Called periodically (on every new job): lowers the difficulty of a miner that has been
    /// too slow to reach `retarget_shares` within twice the expected time.
    pub(super) fn on_tick(&mut self, now: Instant, current: f64) -> Option<f64> {
        let elapsed = now.saturating_duration_since(self.window_start);
        let expected =
            self.config.target_share_secs * f64::from(self.config.retarget_shares.max(1));
        if elapsed.as_secs_f64() < 2.0 * expected {
            return None;
        }
        // With zero shares the true rate is unknown but at most one per `elapsed`.
        let shares = self.shares.max(1);
        self.retarget(now, elapsed, shares, current)
    }

    fn retarget(
        &mut self,
        now: Instant,
        elapsed: Duration,
        shares: u32,
        current: f64,
    ) -> Option<f64> {
        self.reset(now);
        // A burst inside one clock tick reads as zero time: treat it as "very fast".
        let per_share = (elapsed.as_secs_f64() / f64::from(shares)).max(1e-9);
        let factor = (self.config.target_share_secs / per_share).clamp(1.0 / MAX_STEP, MAX_STEP);
        let new = self.config.clamp(current * factor);
        if (new / current - 1.0).abs() < MIN_CHANGE {
            return None;
        }
        Some(new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg() -> VardiffConfig {
        VardiffConfig {
            target_share_secs: 10.0,
            min: 0.001,
            max: 100.0,
            retarget_shares: 4,
        }
    }

    #[test]
    fn fast_miner_goes_up_by_at_most_max_step() {
        let t0 = Instant::now();
        let mut v = Vardiff::new(cfg(), t0);
        for i in 1..4 {
            assert_eq!(v.on_share(t0 + Duration::from_millis(i), 1.0), None);
        }
        assert_eq!(v.on_share(t0 + Duration::from_millis(4), 1.0), Some(4.0));
        // the window restarted
        assert_eq!(v.on_share(t0 + Duration::from_millis(5), 4.0), None);
    }

    #[test]
    fn on_target_miner_stays() {
        let t0 = Instant::now();
        let mut v = Vardiff::new(cfg(), t0);
        let mut r = None;
        for i in 1..=4 {
            r = v.on_share(t0 + Duration::from_secs(10 * i), 2.0);
        }
        assert_eq!(r, None);
    }

    #[test]
    fn proportional_and_clamped() {
        let t0 = Instant::now();
        let mut v = Vardiff::new(cfg(), t0);
        for _ in 0..3 {
            v.on_share(t0, 1.0);
        }
        // 4 shares in 20 s = 5 s/share: twice too fast
        assert_eq!(v.on_share(t0 + Duration::from_secs(20), 1.0), Some(2.0));
        let mut v = Vardiff::new(cfg(), t0);
        for _ in 0..3 {
            v.on_share(t0, 90.0);
        }
        assert_eq!(v.on_share(t0, 90.0), Some(100.0));
    }

    #[test]
    fn silence_lowers_difficulty() {
        let t0 = Instant::now();
        let mut v = Vardiff::new(cfg(), t0);
        assert_eq!(v.on_tick(t0 + Duration::from_secs(79), 1.0), None);
        assert_eq!(v.on_tick(t0 + Duration::from_secs(80), 1.0), Some(0.25));
        let mut v = Vardiff::new(cfg(), t0);
        assert_eq!(
            v.on_tick(t0 + Duration::from_secs(1000), 0.002),
            Some(0.001)
        );
        assert_eq!(v.on_tick(t0 + Duration::from_secs(2000), 0.001), None);
    }
}

//! How long a board takes: Hs (seconds per hash), learnt online from when its hits arrive,
//! and what follows from it — when a silent board has finished its range, and how many
//! hashes to credit for the time it ran.
//!
//! A board says nothing at the end of its range, so the host must know its speed: too short
//! a timeout throws away the end of every range; too long leaves the board idle. Each hit of
//! the current job is a sample (hashes done, seconds since the job was sent); a least-squares
//! line through them gives Hs as its slope (the intercept absorbs the serial latency).
//! Samples near the ends of the range are left out: early ones are dominated by latency,
//! late ones may have been overtaken by the next job.

use std::time::Duration;

/// Hs of an Icarus board (380 MH/s), the prior for a board nothing is known about.
pub const ICARUS_HS: f64 = 1.0 / 380e6;

/// Samples closer than this to the job's start say more about the line than the board.
const MIN_SAMPLE_SECS: f64 = 0.05;

/// Weight kept by older samples at each new one: a board that throttles is followed within a
/// few dozen hits.
const FORGET: f64 = 0.97;

#[derive(Clone, Debug)]
pub struct Timing {
    prior: f64,
    /// Whether the prior was configured or measured (not just assumed).
    prior_known: bool,
    // Weighted sums for the least-squares line secs = a + hs * hashes.
    w: f64,
    sx: f64,
    sy: f64,
    sxx: f64,
    sxy: f64,
    samples: u64,
}

impl Timing {
    /// `prior`: seconds per hash to assume until hits say otherwise.
    pub fn new(prior: f64) -> Timing {
        let valid = prior.is_finite() && prior > 0.0;
        Timing {
            prior: if valid { prior } else { ICARUS_HS },
            prior_known: valid,
            w: 0.0,
            sx: 0.0,
            sy: 0.0,
            sxx: 0.0,
            sxy: 0.0,
            samples: 0,
        }
    }

    /// A hit `secs` after the job reached the board, `hashes` into a range of `range`.
    /// Returns whether the sample was used.
    pub fn record(&mut self, hashes: f64, secs: f64, range: f64) -> bool {
        if !(hashes > 0.0 && secs >= MIN_SAMPLE_SECS && hashes < range * (1.0 - 1.0 / 64.0)) {
            return false;
        }
        self.w = self.w * FORGET + 1.0;
        self.sx = self.sx * FORGET + hashes;
        self.sy = self.sy * FORGET + secs;
        self.sxx = self.sxx * FORGET + hashes * hashes;
        self.sxy = self.sxy * FORGET + hashes * secs;
        self.samples += 1;
        true
    }

    pub fn samples(&self) -> u64 {
        self.samples
    }

    /// [`Timing::new`] with a prior nobody measured (an unknown board assumed an Icarus):
    /// until the first hit times it, hashes are credited only as hits prove them.
    pub fn assumed(prior: f64) -> Timing {
        Timing {
            prior_known: false,
            ..Timing::new(prior)
        }
    }

    /// Whether the speed is known well enough to credit hashes from time alone: a wrong
    /// guess would credit hashes the board never did.
    pub fn is_known(&self) -> bool {
        self.prior_known || self.samples > 0
    }

    /// Seconds per hash: the fitted slope when the samples spread enough to fit a line, the
    /// ratio through the origin with one or two, the prior with none.
    pub fn hs(&self) -> f64 {
        if self.samples == 0 {
            return self.prior;
        }
        let through_origin = self.sy / self.sx;
        if self.samples >= 3 {
            let var = self.sxx * self.w - self.sx * self.sx;
            // Demand a spread of at least 10 % of the mean: hits bunched together say
            // nothing about the slope.
            if var > 0.01 * self.sx * self.sx {
                let slope = (self.sxy * self.w - self.sx * self.sy) / var;
                if slope.is_finite() && slope > 0.0 {
                    return slope;
                }
            }
        }
        if through_origin.is_finite() && through_origin > 0.0 {
            through_origin
        } else {
            self.prior
        }
    }

    /// Hashes per second, for display.
    pub fn hashrate(&self) -> f64 {
        1.0 / self.hs()
    }

    /// How long after the job reached the board to send the next one when it stays silent:
    /// the range's time less a margin, so the board is not left idle waiting for the host.
    pub fn range_timeout(&self, range_hashes: f64) -> Duration {
        let full = self.hs() * range_hashes;
        let margin = (full * 0.02).min(0.1);
        Duration::from_secs_f64((full - margin).clamp(0.0, 1e9))
    }

    /// Hashes done `secs` after the job reached the board, at most the range.
    pub fn hashes_after(&self, secs: f64, range_hashes: f64) -> f64 {
        (secs.max(0.0) / self.hs()).min(range_hashes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A software board at 380 MH/s with 3 ms of latency and jitter: the fitted Hs converges
    /// from a prior that is ten times off, and the range timeout is 2^32 hashes' time less
    /// the 100 ms margin.
    #[test]
    fn calibrates_a_380_mhs_board() {
        let true_hs = 1.0 / 380e6;
        let mut t = Timing::new(true_hs * 10.0);
        let range = 4_294_967_296.0;
        let mut x: u64 = 0x9e37_79b9;
        for _ in 0..200 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let hashes = (x % (1 << 32)) as f64;
            let jitter = ((x >> 40) % 1000) as f64 * 1e-6;
            t.record(hashes, 0.003 + jitter + hashes * true_hs, range);
        }
        assert!(t.samples() > 150);
        let err = (t.hs() - true_hs).abs() / true_hs;
        assert!(err < 0.001, "hs {} vs {true_hs} ({err})", t.hs());
        let timeout = t.range_timeout(range).as_secs_f64();
        let expect = range * true_hs - 0.1;
        assert!((timeout - expect).abs() < 0.02, "{timeout} vs {expect}");
        assert!((11.1..11.3).contains(&timeout));
        let credited = t.hashes_after(5.0, range);
        assert!((credited / (5.0 * 380e6) - 1.0).abs() < 0.002);
        assert_eq!(t.hashes_after(100.0, range), range);
    }

    #[test]
    fn samples_near_the_ends_are_ignored() {
        let mut t = Timing::new(ICARUS_HS);
        let range = 1e6;
        assert!(!t.record(10.0, 0.001, range), "latency-dominated");
        assert!(
            !t.record(range - 10.0, 0.5, range),
            "at the end of the range"
        );
        assert!(!t.record(0.0, 0.5, range));
        assert_eq!(t.hs(), ICARUS_HS);
        assert!(t.record(1e5, 1.0, range));
        assert!((t.hs() - 1e-5).abs() < 1e-12);
    }

    /// A board that slows down (thermal throttling) is followed, not averaged away.
    #[test]
    fn follows_a_board_that_slows_down() {
        let mut t = Timing::new(1e-5);
        let range = 1e9;
        for i in 1..=100 {
            let h = (i % 10 + 1) as f64 * 1e6;
            t.record(h, h * 1e-5, range);
        }
        for i in 1..=150 {
            let h = (i % 10 + 1) as f64 * 1e6;
            t.record(h, h * 2e-5, range);
        }
        assert!((t.hs() / 2e-5 - 1.0).abs() < 0.05, "{}", t.hs());
    }

    #[test]
    fn nonsense_priors_fall_back_to_an_icarus() {
        assert_eq!(Timing::new(0.0).hs(), ICARUS_HS);
        assert_eq!(Timing::new(f64::NAN).hs(), ICARUS_HS);
        assert!(!Timing::new(0.0).is_known());
        let mut t = Timing::assumed(ICARUS_HS);
        assert!(!t.is_known());
        t.record(1e5, 1.0, 1e9);
        assert!(t.is_known());
        assert!(Timing::new(1e-5).is_known());
    }
}

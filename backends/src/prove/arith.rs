//! Which field-arithmetic path the CPU prover's MSM runs: AVX-512 IFMA (eight batch lanes),
//! BMI2/ADX (`mulx`/`adcx`/`adox` Montgomery multiplication) or portable Rust. The best one
//! the CPU has is chosen at run time; an operator (or a benchmark) can force a slower one —
//! never one the CPU lacks — so one machine can measure every path it has in one run.
//!
//! The choice is process-wide and read when an MSM is prepared ([`super::msm::MsmConfig`]),
//! so it is made once at start (`--prove-arith`, `RIGWORKER_PROVE_ARITH`) before keys load.

use std::fmt;
use std::str::FromStr;
use std::sync::atomic::{AtomicU8, Ordering};

/// One arithmetic path, fastest first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum ArithPath {
    /// AVX-512 IFMA batches on top of ADX multiplications elsewhere.
    Ifma,
    /// BMI2/ADX multiplication, no vector batches.
    Adx,
    /// Plain Rust (arkworks' own multiplication): any CPU.
    Portable,
}

impl ArithPath {
    pub const ALL: [ArithPath; 3] = [ArithPath::Ifma, ArithPath::Adx, ArithPath::Portable];

    pub fn name(self) -> &'static str {
        match self {
            ArithPath::Ifma => "ifma",
            ArithPath::Adx => "adx",
            ArithPath::Portable => "portable",
        }
    }

    /// Whether this CPU can run the path.
    pub fn available(self) -> bool {
        match self {
            ArithPath::Ifma => super::field::adx_available() && ifma_available(),
            ArithPath::Adx => super::field::adx_available(),
            ArithPath::Portable => true,
        }
    }

    /// The paths this CPU can run, fastest first.
    pub fn available_paths() -> Vec<ArithPath> {
        ArithPath::ALL
            .into_iter()
            .filter(|p| p.available())
            .collect()
    }

    /// The fastest path this CPU has.
    pub fn best() -> ArithPath {
        ArithPath::ALL
            .into_iter()
            .find(|p| p.available())
            .unwrap_or(ArithPath::Portable)
    }

    /// The MSM may use the ADX multiplication.
    pub fn uses_adx(self) -> bool {
        matches!(self, ArithPath::Ifma | ArithPath::Adx)
    }

    /// The MSM may run its batches in IFMA lanes.
    pub fn uses_ifma(self) -> bool {
        self == ArithPath::Ifma
    }
}

impl fmt::Display for ArithPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for ArithPath {
    type Err = String;
    fn from_str(s: &str) -> Result<ArithPath, String> {
        ArithPath::ALL
            .into_iter()
            .find(|p| p.name().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| format!("unknown arithmetic path {s:?} (ifma, adx or portable)"))
    }
}

#[cfg(target_arch = "x86_64")]
fn ifma_available() -> bool {
    super::ifma::available()
}

#[cfg(not(target_arch = "x86_64"))]
fn ifma_available() -> bool {
    false
}

/// A path the CPU cannot run was asked for.
#[derive(Debug, thiserror::Error)]
#[error("this CPU cannot run the {wanted} arithmetic path ({why}); available here: {available}")]
pub struct UnavailablePath {
    pub wanted: ArithPath,
    pub why: &'static str,
    pub available: String,
}

/// 0: not forced (use the best); otherwise 1 + the index in [`ArithPath::ALL`].
static FORCED: AtomicU8 = AtomicU8::new(0);

/// Why `path` cannot run here, with what the CPU has instead.
fn refusal(path: ArithPath) -> UnavailablePath {
    UnavailablePath {
        wanted: path,
        why: match path {
            ArithPath::Ifma => "it needs AVX-512F, AVX-512 IFMA, BMI2 and ADX",
            ArithPath::Adx => "it needs BMI2 and ADX",
            ArithPath::Portable => "",
        },
        available: ArithPath::available_paths()
            .iter()
            .map(|p| p.name())
            .collect::<Vec<_>>()
            .join(", "),
    }
}

/// Forces `path` for every MSM prepared from now on; refused when the CPU lacks it.
pub fn force(path: ArithPath) -> Result<(), UnavailablePath> {
    if !path.available() {
        return Err(refusal(path));
    }
    let i = ArithPath::ALL.iter().position(|p| *p == path).unwrap_or(0);
    FORCED.store(i as u8 + 1, Ordering::Relaxed);
    Ok(())
}

/// The path MSMs prepared now use: the forced one, else the best the CPU has.
pub fn current() -> ArithPath {
    match FORCED.load(Ordering::Relaxed) {
        0 => ArithPath::best(),
        i => ArithPath::ALL
            .get(usize::from(i - 1))
            .copied()
            .unwrap_or_else(ArithPath::best),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_the_best_path_is_available() {
        for p in ArithPath::ALL {
            assert_eq!(p.name().parse::<ArithPath>(), Ok(p));
        }
        assert!("avx2".parse::<ArithPath>().is_err());
        assert!(ArithPath::best().available());
        assert!(ArithPath::Portable.available());
        // What this machine has, for the test log.
        eprintln!("arithmetic paths here: {:?}", ArithPath::available_paths());
    }

    #[test]
    fn a_refusal_names_what_the_path_needs_and_what_the_cpu_has() {
        // Built for every path (whatever this CPU has), without forcing: the choice is
        // process-wide and other tests run beside this one.
        for p in [ArithPath::Ifma, ArithPath::Adx] {
            let text = refusal(p).to_string();
            assert!(
                text.contains(&format!("cannot run the {p} arithmetic path")),
                "{text}"
            );
            assert!(text.contains("ADX") && text.ends_with("portable"), "{text}");
        }
        for p in ArithPath::ALL.into_iter().filter(|p| !p.available()) {
            assert!(force(p).is_err(), "{p}");
        }
    }
}

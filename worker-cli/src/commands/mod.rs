//! One module per subcommand.

pub mod bench;
pub mod bench_prove;
pub mod bench_whole;
pub mod devices;
pub mod mine;
pub mod pool;
pub mod prove;

use std::time::Duration;

use anyhow::{Result, bail};

/// The longest time any flag may give: 10 years. Far beyond any real use, and well inside
/// what `Instant + Duration` can represent (tokio's own "never" is 30 years), so a huge
/// value from a flag, the environment or a config file is a clear error instead of an
/// overflow panic deep in a timer.
pub const MAX_SECONDS: u64 = 10 * 365 * 86_400;

/// A positive, finite number of seconds from `flag` (e.g. `--duration`), at most
/// [`MAX_SECONDS`].
pub fn seconds(flag: &str, secs: f64) -> Result<Duration> {
    if !(secs.is_finite() && secs > 0.0) {
        bail!("{flag} must be a positive number of seconds, got {secs:?}");
    }
    match Duration::try_from_secs_f64(secs) {
        Ok(d) if d > Duration::ZERO && d <= Duration::from_secs(MAX_SECONDS) => Ok(d),
        // Positive but below a nanosecond rounds to zero, which timers cannot use.
        Ok(d) if d.is_zero() => bail!("{flag} must be at least one nanosecond, got {secs:?}"),
        _ => bail!("{flag} must be at most {MAX_SECONDS} seconds (10 years), got {secs:?}"),
    }
}

/// A whole number of seconds from `flag`; 0 counts as 1 (the smallest useful period).
pub fn whole_seconds(flag: &str, secs: u64) -> Result<Duration> {
    if secs > MAX_SECONDS {
        bail!("{flag} must be at most {MAX_SECONDS} seconds (10 years), got {secs}");
    }
    Ok(Duration::from_secs(secs.max(1)))
}

/// A multi-threaded tokio runtime for the network side; devices run on their own threads.
pub fn runtime() -> Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .thread_name("rigworker-io")
        .build()?)
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut int), Ok(mut term)) = (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        ) else {
            // Without signal handlers, wait forever: the process can still be killed.
            return std::future::pending().await;
        };
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Applies `--prove-arith` (refused when the CPU lacks the path) and returns the path the CPU
/// prover's MSMs will run.
pub fn prove_arith(
    forced: Option<backends::prove::arith::ArithPath>,
) -> Result<backends::prove::arith::ArithPath> {
    if let Some(path) = forced {
        backends::prove::arith::force(path)?;
    }
    Ok(backends::prove::arith::current())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_reject_what_would_panic() {
        assert_eq!(seconds("--x", 1.5).unwrap(), Duration::from_millis(1500));
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY, 1e300, 1e19, 4e8, 1e-12] {
            let e = seconds("--x", bad).unwrap_err().to_string();
            assert!(e.contains("--x"), "{bad}: {e}");
        }
        assert!(seconds("--x", MAX_SECONDS as f64).is_ok());
        assert_eq!(whole_seconds("--y", 0).unwrap(), Duration::from_secs(1));
        assert!(whole_seconds("--y", u64::MAX).is_err());
    }
}

//! Shared helpers of the hardware tests: a test whose device is absent prints why it skipped,
//! and fails instead when `RIGWORKER_REQUIRE_BACKENDS` names its backend; the simulated FPGA
//! board ([`fpga`]).

pub mod fpga;

/// Whether `RIGWORKER_REQUIRE_BACKENDS` (comma-separated) names `backend`.
pub fn required(backend: &str) -> bool {
    std::env::var("RIGWORKER_REQUIRE_BACKENDS")
        .map(|v| v.split(',').any(|b| b.trim().eq_ignore_ascii_case(backend)))
        .unwrap_or(false)
}

/// Call when the device a test needs is missing: panics if the backend is required, otherwise
/// prints the reason so a skipped test is visible in the output.
pub fn skip_or_fail(backend: &str, reason: &str) {
    if required(backend) {
        panic!("{backend} is required by RIGWORKER_REQUIRE_BACKENDS but unavailable: {reason}");
    }
    println!("SKIPPED ({backend}): {reason}");
}

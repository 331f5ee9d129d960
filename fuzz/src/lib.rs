//! What the fuzz targets share: one tokio runtime per process (a target runs one input after
//! another on it), and the bound after which an input that has not finished counts as a hang.
//!
//! libFuzzer's own `-timeout` kills a process that stalls; the bound here is shorter and turns a
//! session that never ends into a panic that names what hung.

use std::sync::LazyLock;
use std::time::Duration;

/// How long one input's conversation may take before it is a hang.
pub const HANG: Duration = Duration::from_secs(5);

/// A current-thread runtime with timers and I/O: inputs run one at a time, so one thread
/// keeps them deterministic and cheap.
pub fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: LazyLock<tokio::runtime::Runtime> = LazyLock::new(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("tokio runtime")
    });
    &RT
}

/// Runs `f` within [`HANG`], panicking with `what` when it does not finish.
pub async fn bounded<F: std::future::Future>(what: &str, f: F) -> F::Output {
    match tokio::time::timeout(HANG, f).await {
        Ok(v) => v,
        Err(_) => panic!("hang: {what} did not finish within {HANG:?}"),
    }
}

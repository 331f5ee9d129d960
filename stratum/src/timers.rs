//! Optional deadlines and timers for `tokio::select!` loops: a branch whose timer is off waits
//! forever instead of needing its own guard and async block.

/// Waits for the next tick of an optional timer; a missing timer never ticks.
pub(crate) async fn tick(timer: &mut Option<tokio::time::Interval>) {
    match timer {
        Some(t) => {
            t.tick().await;
        }
        None => std::future::pending().await,
    }
}

/// Sleeps until `deadline`; `None` (off, or beyond what the clock can represent) is never.
pub(crate) async fn sleep_until_or_never(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

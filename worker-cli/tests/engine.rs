//! The engine driven through its library API with real CPU workers and the real built-in
//! pool, plus one device that lies: every nonce it reports beyond the real ones is wrong. The
//! engine must catch each on the CPU, count it as a hardware error of that device, never send
//! it, and keep the accounting balanced. And one device that can be told to hang, for the
//! watchdog: rebuilt when it stops making progress, disabled when it hangs again.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use backends::{
    BackendError, DeviceInfo, HashBackend, HashWorker, HeaderTemplate, NonceRange, ScanControl,
    ScanOutcome, ScanTarget,
};
use stratum::TlsOptions;
use stratum::client::{ClientConfig, PoolConfig};
use stratum::server::{Server, ServerConfig};
use worker_cli::engine::{self, EngineConfig, EngineState, ReopenWorker, WatchdogConfig};

/// A real CPU worker that also reports a wrong nonce next to every right one.
struct LyingWorker {
    inner: Box<dyn HashWorker>,
    info: DeviceInfo,
}

impl HashWorker for LyingWorker {
    fn info(&self) -> &DeviceInfo {
        &self.info
    }
    fn scan(
        &mut self,
        header: &HeaderTemplate,
        target: &ScanTarget,
        range: NonceRange,
        ctl: &ScanControl,
        found: &mut Vec<u32>,
    ) -> Result<ScanOutcome, BackendError> {
        let before = found.len();
        let out = self.inner.scan(header, target, range, ctl, found)?;
        let real: Vec<u32> = found[before..].to_vec();
        for n in real {
            // The neighbour of a share is (with overwhelming probability) not a share.
            let bogus = if n == range.start {
                n.wrapping_add(1)
            } else {
                n - 1
            };
            if range.start <= bogus
                && bogus <= range.end
                && !target.is_met_by(&backends::sha256d(&header.with_nonce(bogus)))
            {
                found.push(bogus);
            }
        }
        Ok(out)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_nonces_are_hardware_errors_and_never_reach_the_pool() {
    let pool = Server::bind(ServerConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        difficulty: 0.002,
        ..Default::default()
    })
    .await
    .unwrap()
    .spawn();
    let cpu = backends::cpu::CpuBackend::new();
    let mut workers = cpu.open(0, 1).unwrap();
    let honest = workers.pop().unwrap();
    let mut info = honest.info().clone();
    info.name = "liar".into();
    let liar: Box<dyn HashWorker> = Box::new(LyingWorker {
        inner: honest,
        info,
    });
    let client = ClientConfig::new(vec![PoolConfig {
        url: pool.url(),
        user: "engine.test".into(),
        password: "x".into(),
        tls: TlsOptions::default(),
    }]);
    let cfg = EngineConfig {
        client,
        print_interval: Duration::from_secs(60),
        duration: None,
        drain_timeout: Duration::from_secs(5),
        proving: None,
        watchdog: None,
        reopen: None,
        temp_limit: None,
    };
    let state = Arc::new(Mutex::new(EngineState::default()));
    let stop = {
        let stats = pool.subscribe_stats();
        async move {
            let mut stats = stats;
            let _ = tokio::time::timeout(
                Duration::from_secs(60),
                stats.wait_for(|s| s.total.accepted >= 3),
            )
            .await;
        }
    };
    let summary = engine::run(cfg, vec![liar], stop, state).await;
    let t = &summary.totals;
    assert!(t.accepted >= 3, "{t:?}");
    assert!(
        t.hardware_errors >= t.accepted,
        "every real share came with a bogus one: {t:?}"
    );
    assert_eq!(t.rejected, 0, "nothing wrong was sent: {t:?}");
    assert!(t.balanced(), "{t:?}");
    assert_eq!(summary.devices[0].shares.hardware_errors, t.hardware_errors);
    let stats = pool.stats();
    assert_eq!(stats.total.rejected_total(), 0);
    assert_eq!(stats.worker("engine.test").accepted, t.accepted);
    pool.shutdown().await;
}

/// Test only: a real CPU worker that hangs inside `scan`, ignoring cancels, while `hung` is
/// set — what a GPU launch does when its driver wedges.
struct HangingWorker {
    inner: Box<dyn HashWorker>,
    hung: Arc<AtomicBool>,
}

impl HashWorker for HangingWorker {
    fn info(&self) -> &DeviceInfo {
        self.inner.info()
    }
    fn scan(
        &mut self,
        header: &HeaderTemplate,
        target: &ScanTarget,
        range: NonceRange,
        ctl: &ScanControl,
        found: &mut Vec<u32>,
    ) -> Result<ScanOutcome, BackendError> {
        while self.hung.load(Ordering::Acquire) {
            std::thread::sleep(Duration::from_millis(10));
        }
        self.inner.scan(header, target, range, ctl, found)
    }
}

fn cpu_worker() -> Box<dyn HashWorker> {
    backends::cpu::CpuBackend::new()
        .open(0, 1)
        .unwrap()
        .pop()
        .unwrap()
}

/// Runs the engine with an honest CPU worker and a hanging one for `secs`, hanging the second
/// after 2 s; `reopen` is what a rebuild gets. Returns the summary and device 1's hashes at
/// the moment it hung.
async fn run_with_a_hang(
    reopen: ReopenWorker,
    hung: Arc<AtomicBool>,
    secs: u64,
) -> (engine::Summary, u64) {
    let pool = Server::bind(ServerConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        difficulty: 0.002,
        ..Default::default()
    })
    .await
    .unwrap()
    .spawn();
    let client = ClientConfig::new(vec![PoolConfig {
        url: pool.url(),
        user: "watchdog.test".into(),
        password: "x".into(),
        tls: TlsOptions::default(),
    }]);
    let cfg = EngineConfig {
        client,
        print_interval: Duration::from_secs(60),
        duration: Some(Duration::from_secs(secs)),
        drain_timeout: Duration::from_secs(5),
        proving: None,
        watchdog: Some(WatchdogConfig {
            timeout: Duration::from_secs(2),
            max_rebuilds: 1,
        }),
        reopen: Some(reopen),
        temp_limit: None,
    };
    let hanging: Box<dyn HashWorker> = Box::new(HangingWorker {
        inner: cpu_worker(),
        hung: hung.clone(),
    });
    let state = Arc::new(Mutex::new(EngineState::default()));
    let (st, h) = (state.clone(), hung.clone());
    let at_hang = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs(2)).await;
        h.store(true, Ordering::Release);
        tokio::time::sleep(Duration::from_millis(1500)).await;
        // Sampled once a second: by now the counter has stopped where the hang began.
        st.lock().unwrap().devices[1].hashes
    });
    let summary = engine::run(
        cfg,
        vec![cpu_worker(), hanging],
        std::future::pending(),
        state,
    )
    .await;
    // Let the abandoned thread come back (it exits, being retired).
    hung.store(false, Ordering::Release);
    let hashes_at_hang = at_hang.await.unwrap();
    let stats = pool.stats();
    assert_eq!(stats.total.rejected_total(), 0);
    assert_eq!(
        stats.worker("watchdog.test").accepted,
        summary.totals.accepted
    );
    pool.shutdown().await;
    (summary, hashes_at_hang)
}

/// A device that hangs is rebuilt on a new thread (here its rebuilt worker is healthy) and
/// goes on mining; the accounting stays exact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_device_is_rebuilt_and_mines_again() {
    let hung = Arc::new(AtomicBool::new(false));
    let reopen: ReopenWorker = Arc::new(|_info: &DeviceInfo| Ok(cpu_worker()));
    let (s, at_hang) = run_with_a_hang(reopen, hung, 12).await;
    let dev = &s.devices[1];
    assert_eq!(dev.rebuilds, 1, "{dev:?}");
    assert_eq!(dev.state, "running", "{dev:?}");
    assert!(
        dev.hashes > at_hang + 1_000_000,
        "no progress after the rebuild: {} then {}",
        at_hang,
        dev.hashes
    );
    assert!(s.totals.balanced(), "{:?}", s.totals);
    assert!(dev.shares.balanced());
}

/// A device that hangs again after its rebuilds is disabled; the other device goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_that_keeps_hanging_is_disabled_while_others_go_on() {
    let hung = Arc::new(AtomicBool::new(false));
    let h = hung.clone();
    // The rebuilt worker hangs too: the device itself is wedged.
    let reopen: ReopenWorker = Arc::new(move |_info: &DeviceInfo| {
        Ok(Box::new(HangingWorker {
            inner: cpu_worker(),
            hung: h.clone(),
        }) as Box<dyn HashWorker>)
    });
    let (s, at_hang) = run_with_a_hang(reopen, hung, 12).await;
    let dev = &s.devices[1];
    assert_eq!(dev.rebuilds, 1, "{dev:?}");
    assert_eq!(dev.state, "disabled", "{dev:?}");
    assert!(
        dev.disabled_reason
            .as_deref()
            .is_some_and(|r| r.contains("hung")),
        "{dev:?}"
    );
    assert!(
        dev.hashes <= at_hang + (1 << 20),
        "a hung device does not count: {dev:?}"
    );
    let other = &s.devices[0];
    assert_eq!(other.state, "running");
    assert!(
        other.hashes > dev.hashes,
        "the other device went on: {other:?}"
    );
    assert!(s.totals.balanced(), "{:?}", s.totals);
}

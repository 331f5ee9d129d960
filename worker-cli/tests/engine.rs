//! The engine driven through its library API with real CPU workers and the real built-in
//! pool, plus one device that lies: every nonce it reports beyond the real ones is wrong. The
//! engine must catch each on the CPU, count it as a hardware error of that device, never send
//! it, and keep the accounting balanced.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use backends::{
    BackendError, DeviceInfo, HashBackend, HashWorker, HeaderTemplate, NonceRange, ScanControl,
    ScanOutcome, ScanTarget,
};
use stratum::TlsOptions;
use stratum::client::{ClientConfig, PoolConfig};
use stratum::server::{Server, ServerConfig};
use worker_cli::engine::{self, EngineConfig, EngineState};

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

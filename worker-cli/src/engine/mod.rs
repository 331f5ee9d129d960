//! The mining engine: the one place that knows both the pool protocol and the devices.
//!
//! It runs the Stratum client, installs each job in the [`Dispatcher`], drives every device
//! worker on its own OS thread, re-checks every nonce a device reports on the CPU before it
//! is submitted, switches jobs (cancelling device scans on `clean_jobs`), keeps exact share
//! accounting and hashrate windows, prints xmrig-style summaries, and shuts down cleanly.

pub mod dispatch;
pub mod prove;
pub mod stats;
pub mod watchdog;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use backends::{BackendError, DeviceInfo, HashWorker, ScanControl};
use serde::Serialize;
use stratum::client::{
    Client, ClientConfig, ClientEvent, ClientHandle, SubmitOutcome, SubmitResult,
};
use stratum::untrusted::escape;
use stratum::work::{Hash256, Share, hash_difficulty};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, error, info, warn};
pub use watchdog::WatchdogConfig;

use crate::sdnotify::Notifier;
use crate::sensors::{GuardAction, Sensors, TempGuard};

pub use dispatch::{Dispatcher, WorkUnit};
use stats::{DeviceStats, PoolCounts, RateWindow, ShareCounts, ShareEnd, format_rate};

/// How long a unit of work should take on one device: long enough that asking for work is
/// rare, short enough that a non-clean job switch is picked up quickly.
const UNIT_TARGET: Duration = Duration::from_millis(250);
/// How long one scan call should take: the bound on how late a found nonce is reported.
const SLICE_TARGET: Duration = Duration::from_micros(300);

pub struct EngineConfig {
    pub client: ClientConfig,
    /// Interval of the periodic speed line.
    pub print_interval: Duration,
    /// Stop by itself after this long (benchmarks, tests, timed runs).
    pub duration: Option<Duration>,
    /// How long to wait for the pool's answers to in-flight shares at shutdown.
    pub drain_timeout: Duration,
    /// Proving jobs (`docs/protocol.md`), when the client subscribes to them.
    pub proving: Option<Arc<prove::ProvingEngine>>,
    /// Rebuild (then disable) devices that stop making progress; `None`: no watchdog.
    pub watchdog: Option<WatchdogConfig>,
    /// Opens a fresh worker on a device, for the watchdog's rebuilds; `None`: a hung device
    /// is disabled at once.
    pub reopen: Option<ReopenWorker>,
    /// Pause a device above this temperature (°C), resume it 5 °C lower.
    pub temp_limit: Option<f64>,
}

/// Opens one new worker on the device described (the watchdog's "rebuild the context").
pub type ReopenWorker =
    Arc<dyn Fn(&DeviceInfo) -> Result<Box<dyn HashWorker>, BackendError> + Send + Sync>;

/// What a device thread and the engine share about the device's health.
#[derive(Default)]
struct Health {
    /// Set when the watchdog abandons this thread: if it ever comes back from its hung call,
    /// it exits instead of taking more work.
    retired: AtomicBool,
    /// Why the thread gave up on the device (its backend disabled it, or it failed to start).
    disabled: Mutex<Option<String>>,
}

impl Health {
    fn disable(&self, why: String) {
        *self.disabled.lock().unwrap_or_else(|e| e.into_inner()) = Some(why);
    }
    fn disabled(&self) -> Option<String> {
        self.disabled
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// A device worker as the engine tracks it.
struct DeviceSlot {
    info: DeviceInfo,
    label: String,
    ctl: Arc<ScanControl>,
    /// Set by [`EngineCommand::SetPaused`]; the device loop holds in [`wait_while_paused`].
    pause: Arc<AtomicBool>,
    /// Set by the temperature guard, apart from `pause` so a device that cools down never
    /// undoes a pause asked through the API.
    thermal: Arc<AtomicBool>,
    /// Set while the device proves (see `DeviceCounters::proving`).
    proving: Arc<AtomicBool>,
    /// The health of the thread now driving the device (a rebuild starts a new one).
    health: Arc<Health>,
    guard: Option<TempGuard>,
    /// Boards that search whole headers keep themselves alive (the FPGA driver reopens,
    /// resets and disables its board, and an unplugged one may take minutes to return), so
    /// the watchdog leaves them alone.
    self_supervised: bool,
}

/// What the HTTP API (or a config reload) asks of a running engine. The sender is in
/// [`EngineState::commands`] while [`run`] runs.
pub enum EngineCommand {
    /// Pause (or resume) the devices with these indices in [`EngineState::devices`].
    SetPaused {
        devices: Vec<usize>,
        paused: bool,
        done: oneshot::Sender<()>,
    },
    /// Move to pool `n` of the list and stay there (`ClientHandle::switch_pool`); `None`
    /// lets failover and fail-back decide again (`ClientHandle::follow_failover`).
    PinPool(Option<usize>),
    /// A new pool list (config reload): counters of pools whose URL is still listed are kept.
    SetPools(Vec<stratum::client::PoolConfig>),
}

/// What became of a nonce a device reported; decided on the device's own thread, so a valid
/// share goes to the pool without waiting for the engine task to be scheduled.
enum Fate {
    /// Did not meet the target when re-hashed on the CPU: never sent.
    HardwareError,
    /// Found on a job the pool told us to abandon: dropped, per protocol.
    Stale,
    Submitted(oneshot::Receiver<SubmitOutcome>),
}

struct Found {
    device: usize,
    nonce: u32,
    hash: Hash256,
    job_id: String,
    pool: usize,
    /// The pool by its configured URL: an index means another pool after a reload that
    /// reorders the list, and the share may still be in flight then.
    pool_url: String,
    difficulty: f64,
    fate: Fate,
}

struct Submitted {
    device: usize,
    /// The pool whose job the share was found on (by configured URL); `outcome.pool_url`
    /// may name another.
    pool_url: String,
    outcome: SubmitOutcome,
    difficulty: f64,
}

/// Live engine state, shared with whoever reports on it (summary lines, later the HTTP API).
#[derive(Default)]
pub struct EngineState {
    pub devices: Vec<DeviceCounters>,
    pub pools: Vec<PoolCounts>,
    pub current_pool: Option<usize>,
    pub difficulty: Option<f64>,
    pub best_share_difficulty: f64,
    pub reconnects: u64,
    pub failovers: u64,
    pub started: Option<Instant>,
    pub total_rate: RateWindow,
    /// The pool the API pinned (`ClientHandle::switch_pool`), while pinned.
    pub pinned_pool: Option<usize>,
    /// Commands into the running engine; `None` before [`run`] starts.
    pub commands: Option<mpsc::UnboundedSender<EngineCommand>>,
    /// The prover, when the worker takes proving jobs.
    pub proving: Option<Arc<prove::ProvingEngine>>,
}

pub struct DeviceCounters {
    pub label: String,
    pub info: DeviceInfo,
    pub shares: ShareCounts,
    pub hashes: u64,
    pub rate: RateWindow,
    /// `ScanControl::hardware_errors` already counted into `shares`.
    pub broken_results: u64,
    /// Held by [`wait_while_paused`] in the device loop while set.
    pub paused: Arc<AtomicBool>,
    /// The device no longer mines: its backend disabled it, or the watchdog did.
    pub disabled: bool,
    /// Why, when it is disabled.
    pub disabled_reason: Option<String>,
    /// Times the watchdog rebuilt the device's worker after it stopped making progress.
    pub rebuilds: u32,
    /// Paused by the temperature guard (`--temp-limit`).
    pub thermal_paused: Arc<AtomicBool>,
    /// Set while this device proves (`mine --prove-backend` naming it): its hashing holds,
    /// the other devices go on.
    pub proving: Arc<AtomicBool>,
    /// log2 of the nonces per launch, for devices that launch in batches (GPUs).
    pub intensity: Option<u32>,
    /// Filled by the sensors where the device has them; `None` where unknown.
    pub temperature_c: Option<f64>,
    pub power_w: Option<f64>,
    pub fan_percent: Option<f64>,
}

impl DeviceCounters {
    pub fn new(label: String, info: DeviceInfo) -> Self {
        DeviceCounters {
            label,
            info,
            shares: ShareCounts::default(),
            hashes: 0,
            rate: RateWindow::default(),
            broken_results: 0,
            paused: Arc::new(AtomicBool::new(false)),
            disabled: false,
            disabled_reason: None,
            rebuilds: 0,
            thermal_paused: Arc::new(AtomicBool::new(false)),
            proving: Arc::new(AtomicBool::new(false)),
            intensity: None,
            temperature_c: None,
            power_w: None,
            fan_percent: None,
        }
    }

    /// `running`, `paused` or `disabled`, as the HTTP API reports it.
    pub fn state_name(&self) -> &'static str {
        if self.disabled {
            "disabled"
        } else if self.paused.load(Ordering::Acquire) {
            "paused"
        } else if self.thermal_paused.load(Ordering::Acquire) {
            "too hot"
        } else if self.proving.load(Ordering::Acquire) {
            "proving"
        } else {
            "running"
        }
    }
}

/// What `mine` prints at the end (and returns to tests).
#[derive(Clone, Debug, Serialize)]
pub struct Summary {
    pub uptime_secs: f64,
    pub hashes: u64,
    pub average_hashrate: f64,
    pub hashrate: [Option<f64>; 3],
    pub totals: ShareCounts,
    pub devices: Vec<DeviceStats>,
    pub pools: Vec<PoolCounts>,
    pub best_share_difficulty: f64,
    pub reconnects: u64,
    pub failovers: u64,
    /// Proving jobs, when the worker takes them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub proving: Option<prove::ProvingCounts>,
}

impl EngineState {
    pub fn summary(&self) -> Summary {
        let mut totals = ShareCounts::default();
        let mut hashes = 0;
        let devices = self
            .devices
            .iter()
            .map(|d| {
                totals.found += d.shares.found;
                totals.accepted += d.shares.accepted;
                totals.rejected += d.shares.rejected;
                totals.stale += d.shares.stale;
                totals.hardware_errors += d.shares.hardware_errors;
                totals.in_flight += d.shares.in_flight;
                hashes += d.hashes;
                DeviceStats {
                    id: d.label.clone(),
                    backend: d.info.backend.to_string(),
                    name: d.info.name.clone(),
                    hashes: d.hashes,
                    shares: d.shares.clone(),
                    hashrate: d.rate.rates(),
                    state: d.state_name(),
                    rebuilds: d.rebuilds,
                    disabled_reason: d.disabled_reason.clone(),
                }
            })
            .collect();
        let uptime = self.started.map_or(0.0, |s| s.elapsed().as_secs_f64());
        Summary {
            uptime_secs: uptime,
            hashes,
            average_hashrate: if uptime > 0.0 {
                hashes as f64 / uptime
            } else {
                0.0
            },
            hashrate: self.total_rate.rates(),
            totals,
            devices,
            pools: self.pools.clone(),
            best_share_difficulty: self.best_share_difficulty,
            reconnects: self.reconnects,
            failovers: self.failovers,
            proving: None,
        }
    }
}

impl Summary {
    /// The human report printed on exit.
    pub fn render(&self) -> String {
        let mut s = String::new();
        let t = &self.totals;
        s.push_str(&format!(
            "summary: uptime {:.1} s, {} hashes, average {}, shares found {} = accepted {} + rejected {} + stale {} + hardware errors {} + in flight {}\n",
            self.uptime_secs,
            self.hashes,
            format_rate(Some(self.average_hashrate)),
            t.found,
            t.accepted,
            t.rejected,
            t.stale,
            t.hardware_errors,
            t.in_flight
        ));
        for d in &self.devices {
            s.push_str(&format!(
                "  device {:<12} {:<28} {:>14} (10s)  accepted {} rejected {} stale {} hw errors {}\n",
                d.id,
                truncate(&d.name, 28),
                format_rate(d.hashrate[0]),
                d.shares.accepted,
                d.shares.rejected,
                d.shares.stale,
                d.shares.hardware_errors
            ));
        }
        for (i, p) in self.pools.iter().enumerate() {
            s.push_str(&format!(
                "  pool #{i} {}: found {} accepted {} rejected {} stale {} hw errors {} in flight {} connects {}\n",
                p.url,
                p.shares.found,
                p.shares.accepted,
                p.shares.rejected,
                p.shares.stale,
                p.shares.hardware_errors,
                p.shares.in_flight,
                p.connects
            ));
        }
        if let Some(p) = &self.proving {
            s.push_str(&format!(
                "  proofs: jobs {}, accepted {}, rejected {}, lost {}, failed {}, refused {}; key downloads {}, key loads {}\n",
                p.jobs,
                p.accepted,
                p.rejected,
                p.lost,
                p.failed,
                p.refused,
                p.key_downloads,
                p.key_loads
            ));
        }
        s.push_str(&format!(
            "  best share difficulty {}, reconnects {}, failovers {}",
            stats::format_difficulty(self.best_share_difficulty),
            self.reconnects,
            self.failovers
        ));
        s
    }
}

fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        s.chars().take(n - 1).collect::<String>() + "…"
    }
}

/// Runs one mining session until `shutdown` resolves or the configured duration passes.
pub async fn run(
    cfg: EngineConfig,
    workers: Vec<Box<dyn HashWorker>>,
    shutdown: impl std::future::Future<Output = ()>,
    state: Arc<Mutex<EngineState>>,
) -> Summary {
    let dispatcher = Arc::new(Dispatcher::new());
    let stop = Arc::new(AtomicBool::new(false));
    let (found_tx, mut found_rx) = mpsc::channel::<Found>(FOUND_QUEUE);
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<Submitted>();

    let (client, mut events, client_task) = Client::spawn(cfg.client.clone());
    let (cmd_tx, mut cmd_rx) = mpsc::unbounded_channel::<EngineCommand>();
    let proof_tx = cfg
        .proving
        .as_ref()
        .map(|p| p.start(client.clone(), dispatcher.clone()));
    let mut slots = Vec::new();
    let mut threads = Vec::new();
    {
        let mut st = lock(&state);
        st.started = Some(Instant::now());
        st.commands = Some(cmd_tx);
        st.proving = cfg.proving.clone();
        st.pools = cfg
            .client
            .pools
            .iter()
            .map(|p| PoolCounts {
                url: p.url.to_string(),
                ..Default::default()
            })
            .collect();
        st.devices.clear();
    }
    for (i, worker) in workers.into_iter().enumerate() {
        let info = worker.info().clone();
        let label = format!(
            "{}{}.{}",
            info.backend,
            info.index,
            slots
                .iter()
                .filter(
                    |s: &&DeviceSlot| s.info.backend == info.backend && s.info.index == info.index
                )
                .count()
        );
        let ctl = Arc::new(ScanControl::new());
        let self_supervised = worker.searches_whole_headers();
        let mut counters = DeviceCounters::new(label.clone(), info.clone());
        let launch = worker.min_scan_nonces();
        counters.intensity = (launch > 1).then(|| launch.ilog2());
        let pause = counters.paused.clone();
        let thermal = counters.thermal_paused.clone();
        if let Some(flag) = cfg
            .proving
            .as_ref()
            .and_then(|p| p.device_pause_for(info.backend.name(), info.index))
        {
            counters.proving = flag;
        }
        let proving = counters.proving.clone();
        lock(&state).devices.push(counters);
        let health = Arc::new(Health::default());
        slots.push(DeviceSlot {
            info,
            label: label.clone(),
            ctl: ctl.clone(),
            pause: pause.clone(),
            thermal: thermal.clone(),
            proving: proving.clone(),
            health: health.clone(),
            guard: cfg.temp_limit.and_then(|l| TempGuard::new(l).ok()),
            self_supervised,
        });
        let ctx = ThreadContext {
            index: i,
            ctl,
            health,
            pause,
            thermal,
            proving,
            dispatcher: dispatcher.clone(),
            client: client.clone(),
            found_tx: found_tx.clone(),
            stop: stop.clone(),
        };
        if let Some(h) = spawn_device(&label, worker, ctx) {
            threads.push((i, h));
        }
    }
    // Kept for the watchdog's rebuilt threads; dropped when the loop ends.
    let rebuild_tx = found_tx;
    info!(
        devices = slots.len(),
        "devices started: {}",
        slots
            .iter()
            .map(|s| s.label.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    // systemd (Type=notify): ready once the devices run; pings from this loop, so a wedged
    // engine stops pinging and is restarted.
    let notify = Notifier::from_env();
    if let Some(n) = &notify
        && let Err(e) = n.ready_with_status(&format!("mining on {} device(s)", slots.len()))
    {
        warn!(error = %e, "sd_notify READY failed");
    }
    let notify_every = crate::sdnotify::watchdog_interval();
    let mut notify_tick = tokio::time::interval(notify_every.unwrap_or(Duration::from_secs(3600)));
    // Sensors are read every few seconds for the API and the temperature guard.
    let sensors = Arc::new(Sensors::detect());
    info!("sensors: {}", sensors.describe());
    let mut sensor_tick = tokio::time::interval(Duration::from_secs(5));
    let mut warned_no_sensor = false;
    let mut watchdog = cfg
        .watchdog
        .map(|w| watchdog::Watchdog::new(w, slots.len(), Instant::now()));

    let mut current_epoch = 0u64;
    let mut sample = tokio::time::interval(Duration::from_secs(1));
    // Checked arithmetic: a period or run time too far in the future to represent means
    // "never", not a panic (tokio itself would panic on a zero period).
    let print_period = cfg.print_interval.max(Duration::from_millis(1));
    let now = tokio::time::Instant::now();
    let mut print = tokio::time::interval_at(
        now.checked_add(print_period)
            .unwrap_or_else(|| far_future(now)),
        print_period,
    );
    let deadline = cfg
        .duration
        .map(|d| now.checked_add(d).unwrap_or_else(|| far_future(now)));
    let timed_out = async {
        match deadline {
            Some(d) => tokio::time::sleep_until(d).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(shutdown);
    tokio::pin!(timed_out);
    let mut in_flight = 0u64;

    loop {
        tokio::select! {
            _ = &mut shutdown => { info!("stop requested"); break }
            _ = &mut timed_out => { info!("run time reached"); break }
            ev = events.recv() => match ev {
                None => { error!("pool client stopped"); break }
                Some(ClientEvent::Work(work)) => {
                    let clean = work.job.clean_jobs || work.epoch != current_epoch;
                    current_epoch = work.epoch;
                    if let Some(q) = &proof_tx { q.note_session(work.epoch); }
                    dispatcher.set_work(work.clone(), clean);
                    if clean {
                        for s in &slots { s.ctl.cancel(); }
                    }
                    {
                        let mut st = lock(&state);
                        st.difficulty = Some(work.difficulty.get());
                        st.current_pool = Some(work.pool);
                    }
                    info!(pool = work.pool, job = %escape(&work.job.job_id), difficulty = %stats::format_difficulty(work.difficulty.get()), clean, "new job");
                }
                Some(ClientEvent::Connected { pool, url, resumed }) => {
                    let mut st = lock(&state);
                    if let Some(p) = st.pools.get_mut(pool) { p.connects += 1; }
                    if st.current_pool.is_some() { st.reconnects += 1; }
                    st.current_pool = Some(pool);
                    info!(pool, %url, resumed, "use pool");
                }
                Some(ClientEvent::Disconnected { pool, reason }) => {
                    warn!(pool, %reason, "pool connection lost; devices wait for new work");
                    dispatcher.clear_work();
                    for s in &slots { s.ctl.cancel(); }
                }
                Some(ClientEvent::PoolMessage { pool, text }) => info!(pool, message = %text, "pool says"),
                Some(ClientEvent::Failover { from, to }) => {
                    let mut st = lock(&state);
                    if st.pinned_pool == Some(to) {
                        // The switch the API asked for, not a failure.
                        info!(from, to, "switched to the pinned pool");
                    } else {
                        // The client releases a pin only by failing over away from it.
                        st.pinned_pool = None;
                        st.failovers += 1;
                        warn!(from, to, "pool failover");
                    }
                }
                Some(ClientEvent::ProofJob { job, pool_host, epoch, .. }) => match &proof_tx {
                    Some(q) => {
                        q.note_session(epoch);
                        q.push(prove::ProofTask { job, pool_host, epoch });
                    }
                    None => debug!(job = %escape(&job.job_id), "proving job ignored: proving is off"),
                },
            },
            Some(f) = found_rx.recv() => {
                if account_found(&state, f, &done_tx) { in_flight += 1; }
            }
            Some(done) = done_rx.recv() => {
                in_flight -= 1;
                record_outcome(&state, &slots, done);
            }
            Some(cmd) = cmd_rx.recv() => apply_command(&state, &slots, &client, cmd),
            _ = sample.tick() => {
                sample_rates(&state, &slots);
                // Stratum V2 channels tell the pool (UpdateChannel, on a change > 10 %).
                if let Some(h) = lock(&state).total_rate.rates()[1] {
                    client.set_nominal_hashrate(h);
                }
                if let Some(w) = watchdog.as_mut() {
                    let ctx = RebuildContext {
                        dispatcher: &dispatcher,
                        client: &client,
                        found_tx: &rebuild_tx,
                        stop: &stop,
                        reopen: cfg.reopen.as_ref(),
                    };
                    guard_devices(w, &mut slots, &mut threads, &state, &ctx);
                }
            }
            _ = notify_tick.tick(), if notify_every.is_some() => {
                if let Some(n) = &notify { let _ = n.watchdog(); }
            }
            _ = sensor_tick.tick() => {
                let infos: Vec<DeviceInfo> = slots.iter().map(|s| s.info.clone()).collect();
                let sensors = sensors.clone();
                // NVML and sysfs reads block for milliseconds: off the async threads.
                if let Ok(readings) = tokio::task::spawn_blocking(move || {
                    infos.iter().map(|d| sensors.read(d)).collect::<Vec<_>>()
                }).await {
                    apply_readings(&state, &mut slots, &readings, &mut warned_no_sensor);
                }
            }
            _ = print.tick() => {
                let line = print_speed(&state);
                if let Some(n) = &notify { let _ = n.status(&line); }
            }
        }
    }

    if let Some(n) = &notify {
        let _ = n.stopping();
    }
    // Stop devices first so nothing new is found, then let in-flight shares be answered.
    drop(rebuild_tx);
    stop.store(true, Ordering::Release);
    dispatcher.shutdown();
    for s in &slots {
        s.ctl.cancel();
    }
    let joined = tokio::task::spawn_blocking(move || {
        for (_, t) in threads {
            let _ = t.join();
        }
    });
    let _ = tokio::time::timeout(Duration::from_secs(5), joined).await;
    // Nonces found in the last moments were submitted like any other: account for them.
    while let Ok(f) = found_rx.try_recv() {
        if account_found(&state, f, &done_tx) {
            in_flight += 1;
        }
    }
    let drain_until = tokio::time::Instant::now() + cfg.drain_timeout;
    while in_flight > 0 {
        match tokio::time::timeout_at(drain_until, done_rx.recv()).await {
            Ok(Some(done)) => {
                in_flight -= 1;
                record_outcome(&state, &slots, done);
            }
            _ => break,
        }
    }
    if in_flight > 0 {
        warn!(in_flight, "pool did not answer every share before shutdown");
    }
    client.shutdown();
    // Shutting the client answers whatever it still holds; collect those answers too.
    let _ = tokio::time::timeout(Duration::from_secs(5), client_task).await;
    while let Ok(done) = done_rx.try_recv() {
        record_outcome(&state, &slots, done);
    }
    sample_rates(&state, &slots);
    let mut summary = lock(&state).summary();
    summary.proving = cfg.proving.as_ref().map(|p| p.snapshot());
    summary
}

/// About 30 years ahead, as tokio uses for "never": always representable.
fn far_future(now: tokio::time::Instant) -> tokio::time::Instant {
    now + Duration::from_secs(86_400 * 365 * 30)
}

fn lock(state: &Mutex<EngineState>) -> std::sync::MutexGuard<'_, EngineState> {
    state.lock().unwrap_or_else(|e| e.into_inner())
}

/// Counts a reported nonce; returns whether it is now in flight to the pool.
///
/// The share is counted for its device and for the pool whose job it was (`f.pool`), and the
/// answer is later booked to that same pool, so the per-pool balance holds even when the
/// session that answers is another one (failover) or the client answers for it locally.
fn account_found(
    state: &Mutex<EngineState>,
    f: Found,
    done_tx: &mpsc::UnboundedSender<Submitted>,
) -> bool {
    let mut st = lock(state);
    let share_diff = hash_difficulty(&f.hash);
    let end = match &f.fate {
        Fate::HardwareError => Some(ShareEnd::HardwareError),
        Fate::Stale => Some(ShareEnd::Stale),
        Fate::Submitted(_) => None,
    };
    let Some(dev) = st.devices.get_mut(f.device) else {
        // Device indices come from the engine itself; a bad one is a bug, not worth a panic.
        warn!(device = f.device, "share from an unknown device ignored");
        return false;
    };
    dev.shares.record_found(end);
    let label = dev.label.clone();
    if let Some(p) = pool_by_url(&mut st, &f.pool_url) {
        p.shares.record_found(end);
    }
    match f.fate {
        Fate::HardwareError => {
            error!(device = %label, nonce = format!("{:08x}", f.nonce), "hardware error: the reported nonce does not meet the target when re-hashed on the CPU; not submitted");
            false
        }
        Fate::Stale => {
            debug!(device = %label, job = %escape(&f.job_id), "share of an abandoned job dropped");
            false
        }
        Fate::Submitted(rx) => {
            if share_diff > st.best_share_difficulty {
                st.best_share_difficulty = share_diff;
            }
            let (tx, device, pool, difficulty) = (done_tx.clone(), f.device, f.pool, f.difficulty);
            let pool_url = f.pool_url;
            tokio::spawn(async move {
                let outcome = rx.await.unwrap_or(SubmitOutcome {
                    result: SubmitResult::Stale("client stopped".into()),
                    pool,
                    pool_url: None,
                    latency: None,
                });
                let _ = tx.send(Submitted {
                    device,
                    pool_url,
                    outcome,
                    difficulty,
                });
            });
            true
        }
    }
}

/// A pool's counters by its configured URL (the key [`EngineCommand::SetPools`] keeps them by).
fn pool_by_url<'a>(st: &'a mut EngineState, url: &str) -> Option<&'a mut PoolCounts> {
    st.pools.iter_mut().find(|p| p.url == url)
}

fn record_outcome(state: &Mutex<EngineState>, slots: &[DeviceSlot], done: Submitted) {
    let mut st = lock(state);
    let label = slots
        .get(done.device)
        .map(|s| s.label.clone())
        .unwrap_or_default();
    let end = match &done.outcome.result {
        SubmitResult::Accepted => ShareEnd::Accepted,
        SubmitResult::Rejected(_) => ShareEnd::Rejected,
        SubmitResult::Stale(_) => ShareEnd::Stale,
    };
    if let Some(dev) = st.devices.get_mut(done.device) {
        dev.shares.record_answer(end);
    }
    // Booked to the pool the share was found for, not `outcome.pool`: a client that answers
    // for a share it never sent (queue overflow, shutdown) names pool 0 or its current pool.
    if let Some(p) = pool_by_url(&mut st, &done.pool_url) {
        p.shares.record_answer(end);
        if end == ShareEnd::Accepted {
            p.accepted_difficulty += done.difficulty;
        }
    }
    // A latency exists only for a share that was really sent, so it belongs to the pool
    // that answered it.
    if let Some(l) = done.outcome.latency
        && let Some(url) = &done.outcome.pool_url
        && let Some(p) = pool_by_url(&mut st, url)
    {
        p.last_latency_ms = Some(l.as_secs_f64() * 1000.0);
        p.submit_latency.observe(l.as_secs_f64());
    }
    let (acc, rej): (u64, u64) = st.devices.iter().fold((0, 0), |(a, r), d| {
        (a + d.shares.accepted, r + d.shares.rejected)
    });
    let latency = done
        .outcome
        .latency
        .map(|l| format!("{} ms", l.as_millis()))
        .unwrap_or_else(|| "-".into());
    match &done.outcome.result {
        SubmitResult::Accepted => info!(
            "accepted ({acc}/{rej}) diff {} device {label} ({latency})",
            stats::format_difficulty(done.difficulty)
        ),
        SubmitResult::Rejected(why) => warn!(
            "rejected ({acc}/{rej}) diff {} device {label}: {why}",
            stats::format_difficulty(done.difficulty)
        ),
        SubmitResult::Stale(why) => info!("stale share from device {label}: {why}"),
    }
}

fn sample_rates(state: &Mutex<EngineState>, slots: &[DeviceSlot]) {
    let now = Instant::now();
    let mut st = lock(state);
    let mut total = 0;
    for (d, s) in st.devices.iter_mut().zip(slots) {
        d.hashes = s.ctl.hashes();
        // Broken replies carry no nonce to re-check: each is a found result that ended as a
        // hardware error, so the device's balance still holds.
        let broken = s.ctl.hardware_errors();
        for _ in d.broken_results..broken {
            d.shares.record_found(Some(ShareEnd::HardwareError));
        }
        d.broken_results = broken;
        if !d.disabled
            && let Some(why) = s.health.disabled()
        {
            d.disabled = true;
            d.disabled_reason = Some(why);
        }
        d.rate.record(now, d.hashes);
        total += d.hashes;
    }
    st.total_rate.record(now, total);
}

fn apply_command(
    state: &Mutex<EngineState>,
    slots: &[DeviceSlot],
    client: &ClientHandle,
    cmd: EngineCommand,
) {
    match cmd {
        EngineCommand::SetPaused {
            devices,
            paused,
            done,
        } => {
            for i in devices {
                if let Some(s) = slots.get(i) {
                    s.pause.store(paused, Ordering::Release);
                    // Ends the scan in progress, so a device with long scans (an FPGA
                    // board's whole header) stops now rather than when its call ends.
                    if paused {
                        s.ctl.cancel();
                    }
                    info!(device = %s.label, paused, "device {}", if paused { "paused" } else { "resumed" });
                }
            }
            let _ = done.send(());
        }
        EngineCommand::PinPool(pool) => {
            lock(state).pinned_pool = pool;
            match pool {
                Some(n) => client.switch_pool(n),
                None => client.follow_failover(),
            }
        }
        EngineCommand::SetPools(pools) => {
            let mut st = lock(state);
            let mut old = std::mem::take(&mut st.pools);
            st.pools = pools
                .iter()
                .map(|p| {
                    let url = p.url.to_string();
                    match old.iter().position(|o| o.url == url) {
                        Some(i) => old.swap_remove(i),
                        None => PoolCounts {
                            url,
                            ..Default::default()
                        },
                    }
                })
                .collect();
            st.pinned_pool = None;
            drop(st);
            client.set_pools(pools);
        }
    }
}

/// Holds the calling device thread while `paused` is set (HTTP API pause), waking every
/// 50 ms to notice a resume or `stop`. Device loops call it before taking each unit.
pub fn wait_while_paused(paused: &AtomicBool, stop: &AtomicBool) {
    while paused.load(Ordering::Acquire) && !stop.load(Ordering::Acquire) {
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Logs the speed line and returns it (for systemd's status).
fn print_speed(state: &Mutex<EngineState>) -> String {
    let st = lock(state);
    let r = st.total_rate.rates();
    let s = st.summary();
    let mut line = format!(
        "speed 10s/60s/15m {} {} {} | shares {}/{} stale {} hw {} | diff {}",
        format_rate(r[0]),
        format_rate(r[1]),
        format_rate(r[2]),
        s.totals.accepted,
        s.totals.rejected,
        s.totals.stale,
        s.totals.hardware_errors,
        st.difficulty.map_or("-".into(), stats::format_difficulty)
    );
    if let Some(p) = &st.proving {
        let c = p.snapshot();
        line.push_str(&format!(
            " | proofs {}/{} failed {}",
            c.accepted, c.rejected, c.failed
        ));
    }
    info!("{line}");
    line
}

/// Found nonces on their way from the device threads to the engine task. A device thread
/// waits when it is full, so hashing slows to what the engine can account for instead of
/// queueing without bound (a pool that makes every nonce a share).
const FOUND_QUEUE: usize = 4096;

/// What a device thread needs to turn a reported nonce into a share.
struct Reporter<'a> {
    index: usize,
    dispatcher: &'a Dispatcher,
    client: &'a ClientHandle,
    found_tx: &'a mpsc::Sender<Found>,
    stop: &'a AtomicBool,
    /// The watchdog gave this thread up: it must not wait on the queue either.
    retired: &'a AtomicBool,
}

impl Reporter<'_> {
    /// The engine's rule: every device result is re-hashed on the CPU before it counts. A
    /// valid one goes to the pool from here, without waiting for the engine task.
    fn report(&self, unit: &WorkUnit, range: backends::NonceRange, nonce: u32) {
        let header = unit.slot.header.with_nonce(nonce);
        let hash = header.hash();
        let valid = range.start <= nonce && nonce <= range.end && unit.work.target.is_met_by(&hash);
        let work = &unit.work;
        let fate = if !valid {
            Fate::HardwareError
        } else if !self.dispatcher.is_live(unit.generation) {
            Fate::Stale
        } else {
            let share = Share {
                job_id: work.job.job_id.clone(),
                extranonce2: unit.slot.extranonce2,
                ntime: unit.slot.ntime,
                nonce,
                version_bits: unit.slot.version_bits,
            };
            Fate::Submitted(self.client.submit_detached(share, work.epoch))
        };
        let mut found = Found {
            device: self.index,
            nonce,
            hash,
            job_id: work.job.job_id.clone(),
            pool: work.pool,
            pool_url: work.pool_url.clone(),
            difficulty: work.difficulty.get(),
            fate,
        };
        // Device threads are plain threads: waiting here is the backpressure. Once the engine
        // stops (or the watchdog retired this thread), a full queue is not waited on.
        loop {
            match self.found_tx.try_send(found) {
                Ok(()) | Err(mpsc::error::TrySendError::Closed(_)) => return,
                Err(mpsc::error::TrySendError::Full(back)) => {
                    if self.stop.load(Ordering::Acquire) || self.retired.load(Ordering::Acquire) {
                        return;
                    }
                    found = back;
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
        }
    }
}

/// What one device thread runs with.
struct ThreadContext {
    index: usize,
    ctl: Arc<ScanControl>,
    health: Arc<Health>,
    pause: Arc<AtomicBool>,
    thermal: Arc<AtomicBool>,
    proving: Arc<AtomicBool>,
    dispatcher: Arc<Dispatcher>,
    client: ClientHandle,
    found_tx: mpsc::Sender<Found>,
    stop: Arc<AtomicBool>,
}

fn spawn_device(
    label: &str,
    worker: Box<dyn HashWorker>,
    ctx: ThreadContext,
) -> Option<std::thread::JoinHandle<()>> {
    let spawned = std::thread::Builder::new()
        .name(format!("dev-{label}"))
        .spawn(move || device_thread(worker, ctx));
    match spawned {
        Ok(h) => Some(h),
        Err(e) => {
            error!(device = %label, error = %e, "could not start the device thread");
            None
        }
    }
}

/// What the watchdog needs to start a device's thread again.
struct RebuildContext<'a> {
    dispatcher: &'a Arc<Dispatcher>,
    client: &'a ClientHandle,
    found_tx: &'a mpsc::Sender<Found>,
    stop: &'a Arc<AtomicBool>,
    reopen: Option<&'a ReopenWorker>,
}

/// One watchdog look: a device that made no progress for too long while it had work gets its
/// worker rebuilt on a new thread (the hung one is abandoned: a stuck driver call cannot be
/// interrupted), or is disabled while the others go on.
fn guard_devices(
    w: &mut watchdog::Watchdog,
    slots: &mut [DeviceSlot],
    threads: &mut Vec<(usize, std::thread::JoinHandle<()>)>,
    state: &Mutex<EngineState>,
    ctx: &RebuildContext<'_>,
) {
    let now = Instant::now();
    let has_work = ctx.dispatcher.has_work();
    let hashes: Vec<u64> = slots.iter().map(|s| s.ctl.hashes()).collect();
    let working: Vec<bool> = slots
        .iter()
        .map(|s| {
            has_work
                && !s.self_supervised
                && s.health.disabled().is_none()
                && !s.pause.load(Ordering::Acquire)
                && !s.thermal.load(Ordering::Acquire)
                && !s.proving.load(Ordering::Acquire)
        })
        .collect();
    for verdict in w.check(now, &hashes, &working) {
        let (i, attempt) = match verdict {
            watchdog::Verdict::Rebuild { device, attempt } => (device, Some(attempt)),
            watchdog::Verdict::Disable { device } => (device, None),
        };
        let Some(slot) = slots.get_mut(i) else {
            continue;
        };
        slot.health.retired.store(true, Ordering::Release);
        slot.ctl.cancel();
        let reopen = match (attempt, ctx.reopen) {
            (Some(attempt), Some(reopen)) => Some((attempt, reopen.clone())),
            _ => None,
        };
        let Some((attempt, reopen)) = reopen else {
            let why = match attempt {
                None => format!("hung again after {} rebuilds", w.rebuilds(i)),
                Some(_) => "hung, and its backend cannot be reopened".to_string(),
            };
            error!(device = %slot.label, reason = %why, "device disabled; the others go on");
            slot.health.disable(why.clone());
            if let Some(d) = lock(state).devices.get_mut(i) {
                d.disabled = true;
                d.disabled_reason = Some(why);
            }
            continue;
        };
        warn!(
            device = %slot.label,
            attempt,
            "no progress for too long: rebuilding the device on a new thread"
        );
        let health = Arc::new(Health::default());
        slot.health = health.clone();
        let t = ThreadContext {
            index: i,
            ctl: slot.ctl.clone(),
            health,
            pause: slot.pause.clone(),
            thermal: slot.thermal.clone(),
            proving: slot.proving.clone(),
            dispatcher: ctx.dispatcher.clone(),
            client: ctx.client.clone(),
            found_tx: ctx.found_tx.clone(),
            stop: ctx.stop.clone(),
        };
        // Opening a device can take seconds (GPU kernel tuning, an FPGA probe): it happens
        // on the new device thread, never on the runtime. A failure disables the device
        // through its health, which the next sample reports.
        let info = slot.info.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("dev-{}", slot.label))
            .spawn(move || match reopen(&info) {
                Ok(worker) => device_thread(worker, t),
                Err(e) => {
                    error!(device = i, error = %e, "could not reopen the hung device; disabled");
                    t.health
                        .disable(format!("hung, and could not be reopened: {e}"));
                }
            });
        match spawned {
            Ok(h) => threads.push((i, h)),
            Err(e) => slot
                .health
                .disable(format!("hung, and no thread could be started: {e}")),
        }
        w.rebased(i, slot.ctl.hashes(), now);
        if let Some(d) = lock(state).devices.get_mut(i) {
            d.rebuilds += 1;
        }
    }
}

/// Stores the sensors' readings for the API and runs the temperature guard of each device.
fn apply_readings(
    state: &Mutex<EngineState>,
    slots: &mut [DeviceSlot],
    readings: &[crate::sensors::Reading],
    warned_no_sensor: &mut bool,
) {
    let mut st = lock(state);
    for (i, (slot, r)) in slots.iter_mut().zip(readings).enumerate() {
        if let Some(d) = st.devices.get_mut(i) {
            d.temperature_c = r.temperature_c;
            d.power_w = r.power_w;
            d.fan_percent = r.fan_percent;
        }
        let Some(g) = slot.guard.as_mut() else {
            continue;
        };
        if r.temperature_c.is_none() && !*warned_no_sensor {
            warn!(device = %slot.label, "no temperature sensor: --temp-limit cannot pause this device");
        }
        match g.update(r.temperature_c) {
            GuardAction::Pause => {
                slot.thermal.store(true, Ordering::Release);
                slot.ctl.cancel();
                warn!(device = %slot.label, temp = ?r.temperature_c, limit = g.limit_c(), "too hot: paused");
            }
            GuardAction::Resume => {
                slot.thermal.store(false, Ordering::Release);
                info!(device = %slot.label, temp = ?r.temperature_c, "cooled down: resumed");
            }
            GuardAction::Keep => {}
        }
    }
    *warned_no_sensor = true;
}

/// The loop each device's OS thread runs: take a unit, scan it, re-check what was found.
fn device_thread(mut worker: Box<dyn HashWorker>, ctx: ThreadContext) {
    let index = ctx.index;
    lower_thread_priority();
    if let Err(e) = worker.start_on_thread() {
        error!(device = index, error = %e, "device failed to start");
        ctx.health.disable(format!("failed to start: {e}"));
        return;
    }
    let reporter = Reporter {
        index,
        dispatcher: &ctx.dispatcher,
        client: &ctx.client,
        found_tx: &ctx.found_tx,
        stop: &ctx.stop,
        retired: &ctx.health.retired,
    };
    let run = Running {
        stop: &ctx.stop,
        retired: &ctx.health.retired,
        pause: &ctx.pause,
        thermal: &ctx.thermal,
        proving: &ctx.proving,
    };
    let disabled = if worker.searches_whole_headers() {
        whole_header_loop(worker.as_mut(), &ctx.ctl, &ctx.dispatcher, &reporter, &run)
    } else {
        sliced_loop(worker.as_mut(), &ctx.ctl, &ctx.dispatcher, &reporter, &run)
    };
    if let Some(why) = disabled {
        error!(device = index, reason = %why, "device disabled; the others go on");
        ctx.health.disable(why);
    }
}

/// Whether a device thread should take more work, and holding it while it is paused.
struct Running<'a> {
    stop: &'a AtomicBool,
    retired: &'a AtomicBool,
    pause: &'a AtomicBool,
    thermal: &'a AtomicBool,
    proving: &'a AtomicBool,
}

impl Running<'_> {
    fn go_on(&self) -> bool {
        !self.stop.load(Ordering::Acquire) && !self.retired.load(Ordering::Acquire)
    }

    fn paused(&self) -> bool {
        self.pause.load(Ordering::Acquire)
            || self.thermal.load(Ordering::Acquire)
            || self.proving.load(Ordering::Acquire)
    }

    /// Before each unit: waits while paused (API or temperature); whether to go on.
    fn ready(&self) -> bool {
        while self.paused() && self.go_on() {
            wait_while_paused(self.pause, self.stop);
            if self.thermal.load(Ordering::Acquire) || self.proving.load(Ordering::Acquire) {
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        self.go_on()
    }
}

/// For devices given nonce ranges (CPU, GPU).
fn sliced_loop(
    worker: &mut dyn HashWorker,
    ctl: &ScanControl,
    dispatcher: &Dispatcher,
    reporter: &Reporter<'_>,
    run: &Running<'_>,
) -> Option<String> {
    let index = reporter.index;
    // Units are claimed for about UNIT_TARGET but scanned in slices of about SLICE_TARGET:
    // a nonce is reported (and a job switch noticed) within a slice, which keeps stale
    // shares near the physical minimum even when the pool switches jobs several times a second.
    let mut rate: f64 = 1e6;
    let mut found = Vec::new();
    while run.ready() {
        let unit_nonces = ((rate * UNIT_TARGET.as_secs_f64()) as u64)
            .max(worker.min_scan_nonces().saturating_mul(2))
            .clamp(1 << 12, 1 << 32);
        let Some(unit) = dispatcher.next_unit(unit_nonces) else {
            break;
        };
        if !run.go_on() {
            break;
        }
        // A cancel aimed at the previous job must not abort this one.
        ctl.reset_cancel();
        // Two launches per call for GPUs, so one can run while the host reads the other.
        let slice = ((rate * SLICE_TARGET.as_secs_f64()) as u64)
            .max(worker.min_scan_nonces().saturating_mul(2))
            .clamp(1 << 12, 1 << 32);
        let mut start = u64::from(unit.range.start);
        let end = u64::from(unit.range.end);
        while start <= end {
            let slice_end = (start + slice - 1).min(end);
            let range = backends::NonceRange {
                start: start as u32,
                end: slice_end as u32,
            };
            found.clear();
            let t0 = Instant::now();
            let outcome = match worker.scan(&unit.template, &unit.target, range, ctl, &mut found) {
                Ok(o) => o,
                Err(BackendError::Disabled(why)) => return Some(why),
                Err(e) => {
                    error!(device = index, error = %e, "scan failed");
                    std::thread::sleep(Duration::from_secs(1));
                    break;
                }
            };
            let secs = t0.elapsed().as_secs_f64();
            if !outcome.cancelled && secs > 0.0 && outcome.hashes_done > 0 {
                // Smoothed, so one descheduled slice does not shrink the next units tenfold.
                rate = 0.8 * rate + 0.2 * (outcome.hashes_done as f64 / secs);
            }
            for &nonce in &found {
                reporter.report(&unit, range, nonce);
            }
            if outcome.cancelled
                || ctl.is_cancelled()
                || dispatcher.generation_changed(unit.generation)
                || !run.go_on()
                || run.paused()
            {
                break;
            }
            start = slice_end + 1;
        }
    }
    None
}

/// For devices that search whole headers by themselves (FPGA boards): one call per header,
/// found nonces reported while it runs, the next fresh header the moment it ends.
fn whole_header_loop(
    worker: &mut dyn HashWorker,
    ctl: &ScanControl,
    dispatcher: &Dispatcher,
    reporter: &Reporter<'_>,
    run: &Running<'_>,
) -> Option<String> {
    let index = reporter.index;
    let mut last_error: Option<String> = None;
    while run.ready() {
        let Some(unit) = dispatcher.next_whole_unit() else {
            break;
        };
        ctl.reset_cancel();
        let range = unit.range;
        let mut on_found = |nonce| reporter.report(&unit, range, nonce);
        match worker.scan_streaming(&unit.template, &unit.target, range, ctl, &mut on_found) {
            Ok(_) => {
                if last_error.take().is_some() {
                    info!(device = index, "device working again");
                }
            }
            Err(BackendError::Disabled(why)) => return Some(why),
            Err(e) => {
                // A board that is unplugged fails every call until it is back: say so once.
                let msg = e.to_string();
                if last_error.as_deref() != Some(msg.as_str()) {
                    error!(device = index, error = %msg, "device failed; retrying");
                }
                last_error = Some(msg);
                std::thread::sleep(Duration::from_secs(1));
            }
        }
    }
    None
}

/// Device threads compute flat out; the network side must still react within microseconds to
/// a job switch or a found share. A lower priority for the computing threads lets the kernel
/// run the I/O threads the moment they wake, instead of after a busy thread's time slice.
fn lower_thread_priority() {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: gettid and setpriority on the calling thread only; failure is harmless.
        unsafe {
            let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
            let _ = libc::setpriority(libc::PRIO_PROCESS, tid, 10);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use backends::BackendKind;

    fn state(pools: usize) -> Arc<Mutex<EngineState>> {
        let info = DeviceInfo {
            backend: BackendKind::Cpu,
            index: 0,
            name: "test".into(),
            compute_units: 1,
            memory_bytes: None,
            detail: String::new(),
        };
        Arc::new(Mutex::new(EngineState {
            devices: vec![DeviceCounters::new("cpu0.0".into(), info)],
            pools: (0..pools)
                .map(|i| PoolCounts {
                    url: format!("stratum+tcp://p{i}:1"),
                    ..Default::default()
                })
                .collect(),
            ..Default::default()
        }))
    }

    fn found(pool: usize, fate: Fate) -> Found {
        Found {
            device: 0,
            nonce: 1,
            hash: Hash256([0xff; 32]),
            job_id: "j".into(),
            pool,
            pool_url: format!("stratum+tcp://p{pool}:1"),
            difficulty: 1.0,
            fate,
        }
    }

    /// Shares found on pool 1's jobs stay pool 1's, even when the answer names pool 0 (the
    /// client answers for overflowed or drained shares with pool 0, and after failover a
    /// share can be judged while another pool is current).
    #[tokio::test]
    async fn shares_are_booked_to_the_pool_whose_job_they_were() {
        let st = state(2);
        let (done_tx, mut done_rx) = mpsc::unbounded_channel();
        let mut replies = Vec::new();
        for _ in 0..3 {
            let (tx, rx) = oneshot::channel();
            replies.push(tx);
            assert!(account_found(&st, found(1, Fate::Submitted(rx)), &done_tx));
        }
        assert!(!account_found(&st, found(1, Fate::Stale), &done_tx));
        assert!(!account_found(&st, found(1, Fate::HardwareError), &done_tx));
        {
            let s = lock(&st);
            assert_eq!(s.pools[1].shares.found, 5);
            assert_eq!(s.pools[1].shares.in_flight, 3);
            assert_eq!(s.pools[1].shares.stale, 1);
            assert_eq!(s.pools[1].shares.hardware_errors, 1);
            assert!(s.pools[1].shares.balanced());
        }
        let results = [
            (SubmitResult::Accepted, 1, Some(Duration::from_millis(5))),
            (SubmitResult::Stale("overflow".into()), 0, None),
            (SubmitResult::Rejected("low difficulty".into()), 0, None),
        ];
        for (tx, (result, pool, latency)) in replies.into_iter().zip(results) {
            let _ = tx.send(SubmitOutcome {
                result,
                pool,
                pool_url: latency.map(|_| format!("stratum+tcp://p{pool}:1")),
                latency,
            });
        }
        for _ in 0..3 {
            let done = done_rx.recv().await.unwrap();
            record_outcome(&st, &[], done);
        }
        let s = lock(&st);
        let p1 = &s.pools[1].shares;
        assert_eq!(
            *p1,
            ShareCounts {
                found: 5,
                accepted: 1,
                rejected: 1,
                stale: 2,
                hardware_errors: 1,
                in_flight: 0,
            }
        );
        assert_eq!(s.pools[0].shares, ShareCounts::default());
        assert_eq!(s.devices[0].shares, *p1);
        assert_eq!(s.pools[1].last_latency_ms, Some(5.0));
    }

    /// A reload that reorders the pools while a share is in flight: the share and its answer
    /// stay with the pool they belong to, which now has another index.
    #[tokio::test]
    async fn a_share_in_flight_across_a_reordering_reload_stays_with_its_pool() {
        let st = state(2);
        let (done_tx, mut done_rx) = mpsc::unbounded_channel();
        let (tx, rx) = oneshot::channel();
        assert!(account_found(&st, found(0, Fate::Submitted(rx)), &done_tx));
        let entry = |i: usize| -> stratum::client::PoolConfig {
            stratum::client::PoolConfig {
                url: format!("stratum+tcp://p{i}:1").parse().unwrap(),
                user: "u".into(),
                password: "x".into(),
                tls: Default::default(),
            }
        };
        // No pool: the client task ends at once, the handle just drops what it is sent.
        let (client, _ev, task) = Client::spawn(ClientConfig::new(Vec::new()));
        let _ = task.await;
        apply_command(
            &st,
            &[],
            &client,
            EngineCommand::SetPools(vec![entry(1), entry(0)]),
        );
        let _ = tx.send(SubmitOutcome {
            result: SubmitResult::Accepted,
            pool: 0,
            pool_url: Some("stratum+tcp://p0:1".into()),
            latency: Some(Duration::from_millis(7)),
        });
        record_outcome(&st, &[], done_rx.recv().await.unwrap());
        let s = lock(&st);
        let p0 = s
            .pools
            .iter()
            .find(|p| p.url == "stratum+tcp://p0:1")
            .unwrap();
        assert_eq!((p0.shares.found, p0.shares.accepted), (1, 1));
        assert_eq!(p0.last_latency_ms, Some(7.0));
        assert_eq!(s.pools[0].url, "stratum+tcp://p1:1");
        assert_eq!(s.pools[0].shares, ShareCounts::default());
        assert_eq!(s.pools[0].last_latency_ms, None);
    }

    /// A share whose answer never comes (client gone) is stale for the pool it was found on.
    #[tokio::test]
    async fn a_lost_answer_is_stale_for_the_share_s_own_pool() {
        let st = state(2);
        let (done_tx, mut done_rx) = mpsc::unbounded_channel();
        let (tx, rx) = oneshot::channel::<SubmitOutcome>();
        assert!(account_found(&st, found(1, Fate::Submitted(rx)), &done_tx));
        drop(tx);
        record_outcome(&st, &[], done_rx.recv().await.unwrap());
        let s = lock(&st);
        assert_eq!(s.pools[1].shares.stale, 1);
        assert!(s.pools[1].shares.balanced() && s.pools[1].shares.in_flight == 0);
        assert!(s.devices[0].shares.balanced());
    }
}

//! Proving jobs inside `mine` (`docs/protocol.md`): a job from `prover.notify` has its zkey
//! fetched through the [`ArtifactCache`] (never twice), its witness fetched or taken inline,
//! hashing paused on the devices the prover needs, the proof made (and verified) off the
//! runtime's threads with keys kept loaded across jobs, hashing resumed, and the proof
//! submitted on the session the job came from. Jobs run one at a time, in arrival order.
//!
//! Nothing a pool sends can grow without bound or stall the prover: at most
//! [`QUEUE_CAPACITY`] jobs wait behind the one being proven (a job beyond them is refused,
//! logged and declined to the pool with `prover.decline`, as is a job that fails); a job's
//! deadline is checked before its artifacts are fetched and the fetch is abandoned when it
//! passes; artifacts come only from the pool's own host or the hosts the operator allowed
//! ([`ArtifactHosts`]); and the largest circuit the worker asks for ([`max_constraints`])
//! follows the memory the rig has.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use proofs::prover::{ProveOptions, ProveTimings};
use proofs::{KeyCache, Witness};
use serde::Serialize;
use stratum::client::{ClientHandle, ProofResult};
use stratum::http::HttpUrl;
use stratum::proving::{ProofJob, WitnessSource};
use tokio::sync::mpsc;
use tracing::{info, warn};

use super::dispatch::Dispatcher;
use super::stats::{Observations, PHASE_BUCKETS};
use crate::artifacts::{ArtifactCache, ArtifactHosts};

/// Proving jobs that may wait behind the one being proven; a job beyond them is refused.
pub const QUEUE_CAPACITY: usize = 4;

/// Memory one proof needs per constraint (per point of the evaluation domain), an estimate
/// with headroom: the key's points (A, B1, C, H in G1, B2 in G2: about 400 bytes), the six
/// NTT vectors, the MSM buckets and copies, the witness. Measured: 93 MB peak for a whole
/// `rigworker prove --repeat 3` at 2^16, the preparation `mine` uses (bases and their GLV
/// images; about 1.4 KiB per constraint, the process included).
pub const BYTES_PER_CONSTRAINT: u64 = 2 << 10;
/// The same with `--prove-precompute`: the MSM tables keep several shifted copies of the
/// key's points.
pub const BYTES_PER_CONSTRAINT_TABLES: u64 = 8 << 10;
/// `max_constraints` where the available memory cannot be read (no `/proc/meminfo`).
pub const FALLBACK_MAX_CONSTRAINTS: u64 = 1 << 20;
/// The largest domain a snarkjs zkey can have.
const ZKEY_MAX_DOMAIN: u64 = 1 << 28;

/// The `max_constraints` to send in `prover.subscribe`: the largest power of two whose proof
/// fits the memory available now, at [`BYTES_PER_CONSTRAINT`] (or
/// [`BYTES_PER_CONSTRAINT_TABLES`] at the sizes where `--prove-precompute` builds tables: the
/// CPU backend's cost model declines them on large keys).
pub fn max_constraints(tables: bool) -> u64 {
    let mem = proofs::mem::available_bytes();
    if !tables {
        return max_constraints_for(mem, BYTES_PER_CONSTRAINT);
    }
    max_constraints_with_tables(mem, |n| {
        backends::prove::MsmConfig::for_size(n, true).table_depth > 1
    })
}

/// [`max_constraints`] with tables, where `builds_tables(n)` says whether a key of `n`
/// constraints gets them.
fn max_constraints_with_tables(mem: Option<u64>, builds_tables: impl Fn(usize) -> bool) -> u64 {
    let Some(bytes) = mem else {
        return FALLBACK_MAX_CONSTRAINTS;
    };
    let mut n = max_constraints_for(mem, BYTES_PER_CONSTRAINT);
    while n > 1
        && builds_tables(usize::try_from(n).unwrap_or(usize::MAX))
        && n.saturating_mul(BYTES_PER_CONSTRAINT_TABLES) > bytes
    {
        n /= 2;
    }
    n
}

/// [`max_constraints`] for `mem` bytes available.
pub fn max_constraints_for(mem: Option<u64>, bytes_per_constraint: u64) -> u64 {
    let Some(mem) = mem else {
        return FALLBACK_MAX_CONSTRAINTS;
    };
    let n = (mem / bytes_per_constraint.max(1)).clamp(1, ZKEY_MAX_DOMAIN);
    1 << n.ilog2()
}

/// Time left before the job's deadline (Unix seconds: a proof is taken up to the end of that
/// second); `None` once it passed.
fn time_left(deadline: u64) -> Option<Duration> {
    // Far beyond any real deadline, and safe to add to any clock.
    const NEVER: Duration = Duration::from_secs(10 * 365 * 86_400);
    let Some(end) = UNIX_EPOCH.checked_add(Duration::from_secs(deadline.saturating_add(1))) else {
        return Some(NEVER);
    };
    end.duration_since(SystemTime::now())
        .ok()
        .filter(|d| !d.is_zero())
        .map(|d| d.min(NEVER))
}

/// A job as the engine receives it from the client.
pub struct ProofTask {
    pub job: Arc<ProofJob>,
    pub pool_host: String,
    pub epoch: u64,
}

/// What the prover has done, for the summary (and later the API).
#[derive(Clone, Debug, Default, Serialize)]
pub struct ProvingCounts {
    pub jobs: u64,
    pub accepted: u64,
    pub rejected: u64,
    /// Lost with the session, or never answered.
    pub lost: u64,
    /// Could not be proven: fetch failed, hash mismatch, bad witness, deadline passed,
    /// artifact host not allowed.
    pub failed: u64,
    /// Refused on arrival: the queue already held [`QUEUE_CAPACITY`] jobs.
    pub refused: u64,
    /// Downloads of proving keys (a cached key costs none).
    pub key_downloads: u64,
    /// Proving keys loaded from their files (a key kept loaded costs none).
    pub key_loads: u64,
    /// Seconds of the last proof's phases (`rigworker prove` names).
    pub last_phases: Vec<(String, f64)>,
    /// Every proof's phase times, by phase name in the order the prover reports them (the
    /// HTTP API's medians and `/metrics` histograms; not in the summary JSON).
    #[serde(skip)]
    pub phase_times: Vec<(String, Observations)>,
}

impl ProvingCounts {
    fn record_phases(&mut self, phases: &[(String, f64)]) {
        for (name, secs) in phases {
            let i = match self.phase_times.iter().position(|(n, _)| n == name) {
                Some(i) => i,
                None => {
                    self.phase_times
                        .push((name.clone(), Observations::new(PHASE_BUCKETS)));
                    self.phase_times.len() - 1
                }
            };
            self.phase_times[i].1.observe(*secs);
        }
    }

    /// Median seconds of each phase over the recent proofs.
    pub fn phase_medians(&self) -> Vec<(String, f64)> {
        self.phase_times
            .iter()
            .filter_map(|(n, o)| o.median().map(|m| (n.clone(), m)))
            .collect()
    }
}

pub struct ProvingEngine {
    cache: ArtifactCache,
    keys: KeyCache,
    options: ProveOptions,
    hosts: ArtifactHosts,
    /// The largest domain this rig asks for (`prover.subscribe`); a pool's larger key is
    /// refused before it is loaded, since loading it could exhaust the memory.
    max_constraints: u64,
    /// The newest pool session (epoch) seen: a job of an older one can no longer be
    /// submitted, so its download and proof are abandoned (a resumed session keeps its epoch).
    session: tokio::sync::watch::Sender<u64>,
    pub counts: Mutex<ProvingCounts>,
    /// The hashing device that proves (a GPU `--prove-backend`): only it pauses while a
    /// proof runs. `None`: the CPU proves, and all hashing pauses.
    device_pause: Option<(String, usize, Arc<AtomicBool>)>,
}

/// Where the engine puts the proving jobs it receives: a bounded queue in front of the prover.
pub struct ProofQueue {
    tx: mpsc::Sender<ProofTask>,
    engine: Arc<ProvingEngine>,
    client: ClientHandle,
}

impl ProofQueue {
    /// A pool session (`epoch`) is current: jobs of older ones are abandoned.
    pub fn note_session(&self, epoch: u64) {
        self.engine.session.send_if_modified(|newest| {
            let newer = epoch > *newest;
            if newer {
                *newest = epoch;
            }
            newer
        });
    }

    /// Queues `task`, or refuses it (logged and counted) when [`QUEUE_CAPACITY`] jobs wait
    /// already: a pool that floods the worker with jobs cannot grow its memory.
    pub fn push(&self, task: ProofTask) {
        match self.tx.try_send(task) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(t)) => {
                self.engine.count(|c| c.refused += 1);
                warn!(
                    job = %stratum::untrusted::escape(&t.job.job_id),
                    waiting = QUEUE_CAPACITY,
                    "proving job refused: the queue is full (declined to the pool)"
                );
                self.client.decline_proof(
                    t.job.job_id.clone(),
                    format!("queue full: {QUEUE_CAPACITY} jobs wait"),
                    t.epoch,
                );
            }
            Err(mpsc::error::TrySendError::Closed(t)) => {
                warn!(job = %stratum::untrusted::escape(&t.job.job_id), "proving job dropped: the prover stopped");
            }
        }
    }
}

/// Why a job was given up: its pool session ended and a new one began, so no proof of it can
/// be submitted any more (counted as lost, not failed).
#[derive(Debug, thiserror::Error)]
#[error("its pool session ended and a new one began: the pool no longer takes a proof of it")]
struct SessionEnded;

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Resumes hashing when dropped, so no error path can leave the devices paused.
enum PauseGuard<'a> {
    /// The CPU proves: every device paused.
    All(&'a Dispatcher),
    /// A GPU proves: only its own hashing paused.
    Device(Arc<AtomicBool>),
}

impl Drop for PauseGuard<'_> {
    fn drop(&mut self) {
        match self {
            PauseGuard::All(d) => d.set_paused(false),
            PauseGuard::Device(flag) => flag.store(false, Ordering::Release),
        }
    }
}

impl ProvingEngine {
    /// Where this worker's proofs run (`cpu`, `opencl`, ...).
    pub fn backend_name(&self) -> String {
        self.keys.backend_name().to_string()
    }

    /// Proofs run on hashing device `index` of `backend`: pause only that device while one
    /// runs, not the whole rig.
    pub fn pausing_device(mut self, backend: &str, index: usize) -> Self {
        self.device_pause = Some((backend.to_string(), index, Arc::new(AtomicBool::new(false))));
        self
    }

    /// The flag the engine's device loop for (`backend`, `index`) holds on, if that device
    /// is the one that proves.
    pub fn device_pause_for(&self, backend: &str, index: usize) -> Option<Arc<AtomicBool>> {
        self.device_pause
            .as_ref()
            .filter(|(b, i, _)| b == backend && *i == index)
            .map(|(_, _, f)| f.clone())
    }

    pub fn new(
        cache: ArtifactCache,
        keys: KeyCache,
        options: ProveOptions,
        hosts: ArtifactHosts,
        max_constraints: u64,
    ) -> ProvingEngine {
        ProvingEngine {
            cache,
            keys,
            options,
            hosts,
            max_constraints,
            session: tokio::sync::watch::Sender::new(0),
            counts: Mutex::new(ProvingCounts::default()),
            device_pause: None,
        }
    }

    /// The largest circuit (constraint domain) this engine proves.
    pub fn max_constraints(&self) -> u64 {
        self.max_constraints
    }

    /// Starts the prover task; jobs go to it through the returned queue.
    pub fn start(
        self: &Arc<Self>,
        client: ClientHandle,
        dispatcher: Arc<Dispatcher>,
    ) -> ProofQueue {
        let (tx, rx) = mpsc::channel(QUEUE_CAPACITY);
        tokio::spawn(self.clone().run(rx, client.clone(), dispatcher));
        ProofQueue {
            tx,
            engine: self.clone(),
            client,
        }
    }

    fn count(&self, f: impl FnOnce(&mut ProvingCounts)) {
        f(&mut self.counts.lock().unwrap_or_else(|p| p.into_inner()));
    }

    pub fn snapshot(&self) -> ProvingCounts {
        let mut c = self
            .counts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        c.key_downloads = self.cache.downloads();
        c.key_loads = self.keys.loads();
        c
    }

    /// Runs jobs from `rx` one after another until the channel closes.
    async fn run(
        self: Arc<Self>,
        mut rx: mpsc::Receiver<ProofTask>,
        client: ClientHandle,
        dispatcher: Arc<Dispatcher>,
    ) {
        while let Some(task) = rx.recv().await {
            self.count(|c| c.jobs += 1);
            let id = task.job.job_id.clone();
            // The job id and errors about its artifacts come from the pool: logged escaped.
            let shown = stratum::untrusted::escape(&id);
            match self.prove(&task, &dispatcher).await {
                Ok((proof, public, timings)) => {
                    let r = client
                        .submit_proof(id.clone(), proof, public, task.epoch)
                        .await;
                    self.count(|c| {
                        match &r {
                            ProofResult::Accepted => c.accepted += 1,
                            ProofResult::Rejected(_) => c.rejected += 1,
                            ProofResult::Lost(_) => c.lost += 1,
                        }
                        c.last_phases = timings
                            .phases()
                            .into_iter()
                            .map(|(n, d)| (n.to_string(), d.as_secs_f64()))
                            .collect();
                        let phases = std::mem::take(&mut c.last_phases);
                        c.record_phases(&phases);
                        c.last_phases = phases;
                    });
                    match r {
                        ProofResult::Accepted => {
                            info!(job = %shown, secs = timings.total.as_secs_f64(), "proof accepted")
                        }
                        ProofResult::Rejected(why) => {
                            warn!(job = %shown, reason = %why, "proof rejected")
                        }
                        ProofResult::Lost(why) => warn!(job = %shown, reason = %why, "proof lost"),
                    }
                }
                Err(e) if e.is::<SessionEnded>() => {
                    self.count(|c| c.lost += 1);
                    warn!(job = %shown, "proving job abandoned: {e}");
                }
                Err(e) => {
                    self.count(|c| c.failed += 1);
                    let why = format!("{e:#}");
                    warn!(job = %shown, error = %stratum::untrusted::escape(&why), "proving job failed (declined to the pool)");
                    // No proof will come: the pool may give the job to another worker now.
                    client.decline_proof(id, why, task.epoch);
                }
            }
        }
    }

    async fn prove(
        self: &Arc<Self>,
        task: &ProofTask,
        dispatcher: &Arc<Dispatcher>,
    ) -> anyhow::Result<(serde_json::Value, Vec<String>, ProveTimings)> {
        let job = &task.job;
        let t0 = Instant::now();
        // A job of a session that is over costs nothing more.
        let mut sessions = self.session.subscribe();
        if *sessions.borrow_and_update() > task.epoch {
            return Err(SessionEnded.into());
        }
        // A job that expired (while it waited, or before it came) costs no download.
        let Some(left) = time_left(job.deadline) else {
            anyhow::bail!("deadline passed before its artifacts were fetched");
        };
        let url = HttpUrl::parse(&job.zkey_url, &task.pool_host)?;
        self.hosts.check(&url, &task.pool_host)?;
        let witness_url = match &job.witness {
            WitnessSource::Inline(_) => None,
            WitnessSource::Url { url, .. } => {
                let u = HttpUrl::parse(url, &task.pool_host)?;
                self.hosts.check(&u, &task.pool_host)?;
                Some(u)
            }
        };
        let fetch = async {
            let zkey = self.cache.get(job.circuit_id, &url, job.zkey_size).await?;
            let wtns = match (&job.witness, &witness_url) {
                (WitnessSource::Url { sha256, size, .. }, Some(u)) => {
                    // The key says how large its witness can be: a pool cannot make the rig
                    // buffer more.
                    let path = zkey.clone();
                    let n_vars = tokio::task::spawn_blocking(move || {
                        proofs::zkey::ZkeyFile::open(&path).map(|z| z.header.n_vars)
                    })
                    .await??;
                    let limit = proofs::Witness::max_file_bytes(n_vars);
                    self.cache.fetch_witness(u, *sha256, *size, limit).await?
                }
                (WitnessSource::Inline(b), _) => b.clone(),
                (WitnessSource::Url { .. }, None) => anyhow::bail!("witness URL missing"),
            };
            anyhow::Ok((zkey, wtns))
        };
        // The session ending for good: the fetch is abandoned like at the deadline.
        let superseded = async {
            loop {
                if sessions.changed().await.is_err() {
                    std::future::pending::<()>().await;
                }
                if *sessions.borrow_and_update() > task.epoch {
                    return;
                }
            }
        };
        // Dropping the fetch at the deadline closes its connection and removes its partial
        // file.
        let fetched = tokio::select! {
            r = tokio::time::timeout(left, fetch) => r,
            () = superseded => return Err(SessionEnded.into()),
        };
        let (zkey, wtns) = fetched.map_err(|_| {
            anyhow::anyhow!(
                "deadline passed while its artifacts were being fetched: fetch abandoned"
            )
        })??;
        if *self.session.borrow() > task.epoch {
            return Err(SessionEnded.into());
        }
        let witness = Witness::parse(&wtns).map_err(|e| anyhow::anyhow!("witness: {e}"))?;
        if now_unix() > job.deadline {
            anyhow::bail!("deadline passed before the proof could start");
        }
        let fetched = t0.elapsed();
        // Loading (and building tables for) a new key runs beside hashing: only the proof
        // itself pauses the devices.
        let this = self.clone();
        let circuit = job.circuit_id;
        let key = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
            if !this.keys.is_loaded(&zkey) {
                let domain = proofs::zkey::ZkeyFile::open(&zkey)?.header.domain_size;
                if u64::from(domain) > this.max_constraints {
                    anyhow::bail!(
                        "its circuit has a domain of {domain} constraints, more than the {} this \
                         rig asked for (max_constraints): refused before loading",
                        this.max_constraints
                    );
                }
                if this.keys.precomputes() {
                    info!(%circuit, "loading proving key and building its MSM tables where they pay (--prove-precompute: seconds on every core)");
                } else {
                    info!(%circuit, "loading proving key");
                }
            }
            let (key, cached) = this.keys.get(&zkey)?;
            if !cached {
                info!(
                    %circuit,
                    secs = key.load_timings.total.as_secs_f64(),
                    tables = key.has_tables(),
                    "proving key loaded"
                );
            }
            Ok(key)
        })
        .await
        .map_err(|e| anyhow::anyhow!("key loader thread: {e}"))??;
        if now_unix() > job.deadline {
            anyhow::bail!("deadline passed while its proving key loaded");
        }
        // The CPU prover uses every core: hashing pauses (units in flight end within a
        // fraction of a second) and resumes when the guard drops, whatever happens.
        let guard = match &self.device_pause {
            Some((_, _, flag)) => {
                flag.store(true, Ordering::Release);
                PauseGuard::Device(flag.clone())
            }
            None => {
                dispatcher.set_paused(true);
                PauseGuard::All(dispatcher)
            }
        };
        let options = self.options;
        let out = tokio::task::spawn_blocking(move || key.prove(&witness, options))
            .await
            .map_err(|e| anyhow::anyhow!("prover thread: {e}"))
            .and_then(|r| r.map_err(anyhow::Error::from));
        drop(guard);
        let out = out?;
        info!(
            job = %stratum::untrusted::escape(&job.job_id),
            fetch_secs = fetched.as_secs_f64(),
            prove_secs = out.timings.total.as_secs_f64(),
            "proof made"
        );
        let proof: serde_json::Value = serde_json::from_str(&out.proof.to_json())?;
        let public: Vec<String> = serde_json::from_str(&proofs::json::public_to_json(&out.public))?;
        Ok((proof, public, out.timings))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_constraints_is_the_largest_power_of_two_that_fits() {
        assert_eq!(max_constraints_for(None, 1), FALLBACK_MAX_CONSTRAINTS);
        assert_eq!(max_constraints_for(Some(3 << 30), 2 << 10), 1 << 20);
        assert_eq!(max_constraints_for(Some(100), 2 << 10), 1);
        assert_eq!(max_constraints_for(Some(u64::MAX), 1), ZKEY_MAX_DOMAIN);
    }

    #[test]
    fn tables_cost_memory_only_where_they_are_built() {
        let gib = 1u64 << 30;
        // Tables everywhere: 8 KiB per constraint.
        assert_eq!(
            max_constraints_with_tables(Some(4 * gib), |_| true),
            1 << 19
        );
        // Tables declined from 2^20 on (the 2-thread cost model): 4 GiB holds a 2^20 proof
        // without them, at 2 KiB per constraint.
        assert_eq!(
            max_constraints_with_tables(Some(4 * gib), |n| n < 1 << 20),
            1 << 21
        );
        // Declined only above 2^21: 2^21 would need 16 GiB with tables, 2^19 fits.
        assert_eq!(
            max_constraints_with_tables(Some(4 * gib), |n| n <= 1 << 21),
            1 << 19
        );
        assert_eq!(
            max_constraints_with_tables(None, |_| true),
            FALLBACK_MAX_CONSTRAINTS
        );
    }
}

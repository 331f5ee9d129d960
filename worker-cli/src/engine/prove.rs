//! Proving jobs inside `mine` (`docs/protocol.md`): a job from `prover.notify` has its zkey
//! fetched through the [`ArtifactCache`] (never twice), its witness fetched or taken inline,
//! hashing paused on the devices the prover needs, the proof made (and verified) off the
//! runtime's threads with keys kept loaded across jobs, hashing resumed, and the proof
//! submitted on the session the job came from. Jobs run one at a time, in arrival order.

use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

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
use crate::artifacts::ArtifactCache;

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
    /// Could not be proven: fetch failed, hash mismatch, bad witness, deadline passed.
    pub failed: u64,
    /// Downloads of proving keys (a cached key costs none).
    pub key_downloads: u64,
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
    pub counts: Mutex<ProvingCounts>,
}

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Resumes hashing when dropped, so no error path can leave the devices paused.
struct PauseGuard<'a>(&'a Dispatcher);

impl Drop for PauseGuard<'_> {
    fn drop(&mut self) {
        self.0.set_paused(false);
    }
}

impl ProvingEngine {
    pub fn new(cache: ArtifactCache, keys: KeyCache, options: ProveOptions) -> ProvingEngine {
        ProvingEngine {
            cache,
            keys,
            options,
            counts: Mutex::new(ProvingCounts::default()),
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
        c
    }

    /// Runs jobs from `rx` one after another until the channel closes.
    pub async fn run(
        self: Arc<Self>,
        mut rx: mpsc::UnboundedReceiver<ProofTask>,
        client: ClientHandle,
        dispatcher: Arc<Dispatcher>,
    ) {
        while let Some(task) = rx.recv().await {
            self.count(|c| c.jobs += 1);
            let id = task.job.job_id.clone();
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
                            info!(job = %id, secs = timings.total.as_secs_f64(), "proof accepted")
                        }
                        ProofResult::Rejected(why) => {
                            warn!(job = %id, reason = %why, "proof rejected")
                        }
                        ProofResult::Lost(why) => warn!(job = %id, reason = %why, "proof lost"),
                    }
                }
                Err(e) => {
                    self.count(|c| c.failed += 1);
                    warn!(job = %id, error = %e, "proving job failed");
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
        let url = HttpUrl::parse(&job.zkey_url, &task.pool_host)?;
        let zkey = self.cache.get(job.circuit_id, &url, job.zkey_size).await?;
        let wtns = match &job.witness {
            WitnessSource::Inline(b) => b.clone(),
            WitnessSource::Url { url, sha256, size } => {
                let u = HttpUrl::parse(url, &task.pool_host)?;
                self.cache.fetch_witness(&u, *sha256, *size).await?
            }
        };
        let witness = Witness::parse(&wtns).map_err(|e| anyhow::anyhow!("witness: {e}"))?;
        if now_unix() > job.deadline {
            anyhow::bail!("deadline passed before the proof could start");
        }
        let fetched = t0.elapsed();
        // The CPU prover uses every core: hashing pauses (units in flight end within a
        // fraction of a second) and resumes when the guard drops, whatever happens.
        dispatcher.set_paused(true);
        let guard = PauseGuard(dispatcher);
        let this = self.clone();
        let circuit = job.circuit_id;
        let out = tokio::task::spawn_blocking(move || -> anyhow::Result<_> {
            let (key, cached) = this.keys.get(&zkey)?;
            if !cached {
                info!(
                    %circuit,
                    secs = key.load_timings.total.as_secs_f64(),
                    "proving key loaded"
                );
            }
            Ok(key.prove(&witness, this.options)?)
        })
        .await
        .map_err(|e| anyhow::anyhow!("prover thread: {e}"))
        .and_then(|r| r);
        drop(guard);
        let out = out?;
        info!(
            job = %job.job_id,
            fetch_secs = fetched.as_secs_f64(),
            prove_secs = out.timings.total.as_secs_f64(),
            "proof made"
        );
        let proof: serde_json::Value = serde_json::from_str(&out.proof.to_json())?;
        let public: Vec<String> = serde_json::from_str(&proofs::json::public_to_json(&out.public))?;
        Ok((proof, public, out.timings))
    }
}

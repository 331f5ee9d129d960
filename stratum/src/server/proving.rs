//! The built-in pool's proving jobs (`--proving-dir`, `docs/protocol.md`): the circuits and
//! witnesses found in a folder, offered in turn to workers that sent `prover.subscribe`, with
//! the zkeys (and large witnesses) served over HTTP by hash, and every submitted proof verified
//! against the circuit's own verification key and the job's public signals.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use proofs::{Fr, Proof, VerifyingKey, Witness};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::http::{ArtifactStore, serve_artifacts};
use crate::proving::{
    ArtifactId, MAX_INLINE_WITNESS, ProofJob, ProofSubmit, ProverCapabilities, WitnessSource, code,
};

/// What the pool offers as proving work.
#[derive(Clone, Debug)]
pub struct ProvingConfig {
    /// Folder of `NAME.zkey` files and their witnesses (`NAME.wtns`, `NAME.*.wtns`).
    pub dir: PathBuf,
    /// Pause between a worker's answered proof and its next job (zero: at once).
    pub interval: Duration,
    /// How long a worker has to submit a proof.
    pub deadline: Duration,
    /// Where the artifact HTTP server listens (default: the pool's address, any port).
    pub http_listen: Option<SocketAddr>,
}

impl ProvingConfig {
    pub fn new(dir: PathBuf) -> ProvingConfig {
        ProvingConfig {
            dir,
            interval: Duration::from_secs(10),
            deadline: Duration::from_secs(600),
            http_listen: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ProvingSetupError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(transparent)]
    Proofs(#[from] proofs::Error),
    #[error("{0}")]
    Invalid(String),
}

struct Circuit {
    name: String,
    id: ArtifactId,
    size: u64,
    vk: VerifyingKey,
    domain_size: u64,
}

struct Task {
    circuit: usize,
    witness: WitnessSource,
    /// Expected public signals (outputs, then public inputs).
    public: Vec<Fr>,
}

/// A job handed to one worker: what its proof is checked against.
#[derive(Clone, Debug)]
pub(crate) struct Issued {
    task: usize,
    deadline: u64,
}

impl Issued {
    /// Unix time after which the job is over (no proof for it is accepted).
    pub(crate) fn deadline(&self) -> u64 {
        self.deadline
    }
}

/// The loaded offer: circuits, witnesses, and the artifact server.
pub(crate) struct ProvingOffer {
    circuits: Vec<Circuit>,
    tasks: Vec<Task>,
    next: AtomicUsize,
    pub(crate) config: ProvingConfig,
    http_base: String,
    http_task: JoinHandle<()>,
}

impl Drop for ProvingOffer {
    fn drop(&mut self) {
        self.http_task.abort();
    }
}

/// Seconds since the Unix epoch (job deadlines are in these).
pub(crate) fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn hash_file(path: &Path) -> Result<(ArtifactId, u64), ProvingSetupError> {
    let data = std::fs::read(path).map_err(|source| ProvingSetupError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    Ok((ArtifactId::of(&data), data.len() as u64))
}

impl ProvingOffer {
    /// Reads the folder, checks each witness against its circuit, and starts serving the
    /// artifacts next to the pool at `pool_addr`.
    pub(crate) async fn load(
        config: ProvingConfig,
        pool_addr: SocketAddr,
    ) -> Result<ProvingOffer, ProvingSetupError> {
        let dir = config.dir.clone();
        let io = |source| ProvingSetupError::Io {
            path: dir.clone(),
            source,
        };
        let mut names: Vec<PathBuf> = std::fs::read_dir(&dir)
            .map_err(io)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        names.sort();
        let store = Arc::new(ArtifactStore::new());
        let mut circuits = Vec::new();
        let mut tasks = Vec::new();
        for zkey in names
            .iter()
            .filter(|p| p.extension().is_some_and(|e| e == "zkey"))
        {
            let stem = zkey
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            let z = proofs::zkey::ZkeyFile::open(zkey)?;
            let vk = z.verifying_key()?;
            let (id, size) = hash_file(zkey)?;
            store.insert(id, zkey.clone());
            let ci = circuits.len();
            let n_public = z.header.n_public as usize;
            let n_vars = z.header.n_vars as usize;
            circuits.push(Circuit {
                name: stem.clone(),
                id,
                size,
                vk,
                domain_size: u64::from(z.header.domain_size),
            });
            drop(z);
            for w in names.iter().filter(|p| {
                let f = p
                    .file_name()
                    .map(|f| f.to_string_lossy().into_owned())
                    .unwrap_or_default();
                f.ends_with(".wtns")
                    && (f == format!("{stem}.wtns") || f.starts_with(&format!("{stem}.")))
            }) {
                let witness = Witness::load(w)?;
                if witness.len() != n_vars {
                    return Err(ProvingSetupError::Invalid(format!(
                        "{}: {} values, but {} has {} variables",
                        w.display(),
                        witness.len(),
                        zkey.display(),
                        n_vars
                    )));
                }
                let bytes = std::fs::read(w).map_err(|source| ProvingSetupError::Io {
                    path: w.clone(),
                    source,
                })?;
                let source = if bytes.len() <= MAX_INLINE_WITNESS {
                    WitnessSource::Inline(bytes)
                } else {
                    let wid = ArtifactId::of(&bytes);
                    store.insert(wid, w.clone());
                    WitnessSource::Url {
                        url: ArtifactStore::path_of(&wid),
                        sha256: wid,
                        size: Some(bytes.len() as u64),
                    }
                };
                tasks.push(Task {
                    circuit: ci,
                    witness: source,
                    public: witness.public(n_public),
                });
            }
        }
        if tasks.is_empty() {
            return Err(ProvingSetupError::Invalid(format!(
                "{}: no NAME.zkey with a NAME.wtns (or NAME.*.wtns) witness found",
                dir.display()
            )));
        }
        let listen = config
            .http_listen
            .unwrap_or_else(|| SocketAddr::new(pool_addr.ip(), 0));
        let listener = TcpListener::bind(listen)
            .await
            .map_err(|source| ProvingSetupError::Io {
                path: PathBuf::from(listen.to_string()),
                source,
            })?;
        let local = listener.local_addr().map_err(io)?;
        // An unspecified address is replaced by the pool's host on the worker's side.
        let http_base = if local.is_ipv6() {
            format!("http://[{}]:{}", local.ip(), local.port())
        } else {
            format!("http://{}:{}", local.ip(), local.port())
        };
        let http_task = tokio::spawn(serve_artifacts(listener, store));
        for c in &circuits {
            tracing::info!(circuit = %c.name, id = %c.id, bytes = c.size, domain = c.domain_size, "offering proving jobs");
        }
        tracing::info!(%http_base, jobs = tasks.len(), "serving proving artifacts");
        Ok(ProvingOffer {
            circuits,
            tasks,
            next: AtomicUsize::new(0),
            config,
            http_base,
            http_task,
        })
    }

    /// The next job a worker with `caps` can prove, round robin; None when none fits.
    pub(crate) fn next_job(
        &self,
        caps: &ProverCapabilities,
        job_id: String,
    ) -> Option<(ProofJob, Issued)> {
        for _ in 0..self.tasks.len() {
            let i = self.next.fetch_add(1, Ordering::Relaxed) % self.tasks.len();
            let t = &self.tasks[i];
            let c = &self.circuits[t.circuit];
            if !caps.accepts_groth16_bn254(c.domain_size) {
                continue;
            }
            let witness = match &t.witness {
                WitnessSource::Url { url, sha256, size } => WitnessSource::Url {
                    url: format!("{}{url}", self.http_base),
                    sha256: *sha256,
                    size: *size,
                },
                w => w.clone(),
            };
            let deadline = now_unix().saturating_add(self.config.deadline.as_secs().max(1));
            let job = ProofJob {
                job_id,
                circuit_id: c.id,
                zkey_url: format!("{}{}", self.http_base, ArtifactStore::path_of(&c.id)),
                zkey_size: Some(c.size),
                witness,
                deadline,
            };
            return Some((job, Issued { task: i, deadline }));
        }
        None
    }

    /// Checks a submitted proof (CPU work: a few pairings; call off the runtime's threads).
    pub(crate) fn check(&self, issued: &Issued, submit: &ProofSubmit) -> Result<(), (i64, String)> {
        if now_unix() > issued.deadline {
            return Err((code::DEADLINE_PASSED, "deadline passed".into()));
        }
        let t = &self.tasks[issued.task];
        let c = &self.circuits[t.circuit];
        let proof = Proof::from_json(&submit.proof.to_string())
            .map_err(|e| (code::OTHER, format!("malformed proof: {e}")))?;
        let public = proofs::json::public_from_json(
            &serde_json::Value::from(submit.public.clone()).to_string(),
        )
        .map_err(|e| (code::OTHER, format!("malformed public signals: {e}")))?;
        if public != t.public {
            return Err((
                code::WRONG_PUBLIC,
                "public signals do not match the job's witness".into(),
            ));
        }
        match proofs::verify(&c.vk, &proof, &public) {
            Ok(true) => Ok(()),
            Ok(false) => Err((code::INVALID_PROOF, "invalid proof".into())),
            Err(e) => Err((code::INVALID_PROOF, format!("invalid proof: {e}"))),
        }
    }

    /// Circuit name of an issued job (for logs and stats).
    pub(crate) fn circuit_name(&self, issued: &Issued) -> &str {
        &self.circuits[self.tasks[issued.task].circuit].name
    }
}

/// Answered job ids a connection remembers to refuse duplicates (the oldest forgotten first;
/// a forgotten one is answered "job not found", still a refusal).
const ANSWERED_KEPT: usize = 1024;

/// What one connection holds of the proving protocol.
#[derive(Default)]
pub(crate) struct ProverState {
    pub(crate) caps: Option<ProverCapabilities>,
    pub(crate) issued: HashMap<String, Issued>,
    /// Jobs already answered on this connection (duplicates are refused), at most
    /// [`ANSWERED_KEPT`] of them.
    pub(crate) answered: std::collections::HashSet<String>,
    answered_order: std::collections::VecDeque<String>,
    /// When to send the next job (None: one is outstanding, or not subscribed).
    pub(crate) next_at: Option<tokio::time::Instant>,
}

impl ProverState {
    pub(crate) fn remember_answered(&mut self, job_id: String) {
        if self.answered.insert(job_id.clone()) {
            self.answered_order.push_back(job_id);
        }
        while self.answered_order.len() > ANSWERED_KEPT {
            if let Some(old) = self.answered_order.pop_front() {
                self.answered.remove(&old);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answered_jobs_are_bounded() {
        let mut p = ProverState::default();
        for i in 0..3 * ANSWERED_KEPT {
            p.remember_answered(format!("p{i}"));
            // A repeat is remembered once.
            p.remember_answered(format!("p{i}"));
        }
        assert_eq!(p.answered.len(), ANSWERED_KEPT);
        assert_eq!(p.answered_order.len(), ANSWERED_KEPT);
        assert!(p.answered.contains(&format!("p{}", 3 * ANSWERED_KEPT - 1)));
        assert!(!p.answered.contains("p0"));
    }
}

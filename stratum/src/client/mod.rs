//! The miner's side of Stratum V1 and V2: one long-lived session to the best reachable pool.
//!
//! [`Client::spawn`] starts a tokio task that owns the connection. It handshakes
//! (configure → subscribe → extranonce.subscribe → authorize → suggest_difficulty), turns
//! notifications into [`Work`] events, submits shares and answers each with a
//! [`SubmitResult`], and survives everything a pool or a network does: malformed lines are
//! logged and skipped, a silent pool is declared dead after the keepalive time, a pool that
//! does not answer the handshake in time or stops taking our writes counts as failed, reconnects
//! back off exponentially with jitter, an ordered list of pools fails over and fails back to
//! the first once it answers again (the policy lives in [`crate::failover`]).
//!
//! The module is split by concern: this file holds the public API (configuration, events,
//! handle); `supervisor` runs sessions one after another and owns failover, fail-back probes,
//! pool switching and shares waiting for a session; `session` speaks Stratum V1 on one
//! connection and `v2` Stratum V2 (a `stratum2+tcp://` pool of the same list: header-only
//! jobs on a standard channel, `docs/protocol.md`).
//!
//! [`ClientHandle::switch_pool`] moves the session to another pool of the list and pins it
//! there: fail-back to the first pool is off while pinned. The pin ends with
//! [`ClientHandle::follow_failover`], with a new pool list that changes the pinned entry
//! ([`ClientHandle::set_pools`]), or when the pinned pool fails `attempts_per_pool`
//! connection attempts in a row: then the client fails over as usual (a rig left on a dead
//! pool would mine nothing) and fail-back to the first pool resumes.
//!
//! Every share handed to [`ClientHandle::submit`] gets exactly one answer: the pool's own, or
//! `Stale` when its session ends first. Shares found while disconnected wait for the next
//! session: if the pool resumes the same session (same extranonce1) they are submitted there,
//! otherwise they are answered `Stale`.
//!
//! Text from the pool that leaves this module (messages, reject reasons, disconnect reasons)
//! is already escaped with [`crate::untrusted::escape`], so callers may log it as it is.

mod session;
mod supervisor;
mod v2;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::{mpsc, oneshot};

use crate::failover::FailoverPolicy;
pub use crate::failover::PoolConfig;
use crate::proving::{ProofJob, ProverCapabilities};
use crate::work::{Difficulty, Extranonce, Job, Share, Target};
use supervisor::Supervisor;

/// Shares handed to [`ClientHandle`] that the session has not taken yet. Beyond it a share is
/// answered `Stale` at once: a pool that sets an absurdly easy difficulty (every nonce a share)
/// or stops reading must not grow the queue until the worker runs out of memory.
pub const MAX_QUEUED_SUBMITS: usize = 4096;

/// The BIP310 mask most pools grant (bits 13..28).
pub const DEFAULT_VERSION_MASK: u32 = 0x1fff_e000;

#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// In order of preference; the first is returned to whenever it is healthy.
    pub pools: Vec<PoolConfig>,
    pub user_agent: String,
    /// A pool that sends nothing for this long is treated as dead; zero never does.
    pub keepalive: Duration,
    pub connect_timeout: Duration,
    /// Each of mining.configure, mining.subscribe and mining.authorize must be answered
    /// within this long after it was sent. A missing subscribe or authorize answer fails the
    /// pool (however much else it sends meanwhile); a missing configure answer means no
    /// version rolling. Zero: no bound.
    pub handshake_timeout: Duration,
    /// A write the pool does not take within this long (it stopped reading and the socket
    /// buffers are full) means the connection is dead. Zero: no bound.
    pub write_timeout: Duration,
    pub backoff_min: Duration,
    pub backoff_max: Duration,
    /// Failed connection attempts in a row before moving to the next pool. A reconnect
    /// request from a session that was not yet healthy counts as one.
    pub attempts_per_pool: u32,
    /// The longest wait a pool's `client.reconnect` is granted. With a backup pool the rig
    /// mines there during any wait rather than sitting idle.
    pub max_reconnect_wait: Duration,
    /// While on a backup pool, how often to probe the first one; zero never fails back.
    pub failback_interval: Duration,
    /// A share the pool has not answered for this long is logged as late. It is still booked
    /// by the pool's answer when one comes, or answered `Stale` when the session ends; a
    /// proof unanswered this long is answered `Lost`.
    pub submit_timeout: Duration,
    /// Ask for version rolling with this mask (BIP310); `None` to not ask.
    pub version_rolling: Option<u32>,
    pub suggest_difficulty: Option<f64>,
    pub extranonce_subscribe: bool,
    /// Ask for proving jobs (`prover.subscribe`, `docs/protocol.md`) with these capabilities.
    pub prover: Option<ProverCapabilities>,
}

impl ClientConfig {
    pub fn new(pools: Vec<PoolConfig>) -> Self {
        ClientConfig {
            pools,
            user_agent: format!("rigworker/{}", env!("CARGO_PKG_VERSION")),
            keepalive: Duration::from_secs(90),
            connect_timeout: Duration::from_secs(10),
            handshake_timeout: Duration::from_secs(10),
            write_timeout: Duration::from_secs(10),
            backoff_min: Duration::from_secs(1),
            backoff_max: Duration::from_secs(60),
            attempts_per_pool: 2,
            max_reconnect_wait: Duration::from_secs(60),
            failback_interval: Duration::from_secs(60),
            submit_timeout: Duration::from_secs(30),
            version_rolling: Some(DEFAULT_VERSION_MASK),
            suggest_difficulty: None,
            extranonce_subscribe: true,
            prover: None,
        }
    }

    /// The part of the configuration that decides which pool comes next.
    pub fn failover_policy(&self) -> FailoverPolicy {
        FailoverPolicy {
            attempts_per_pool: self.attempts_per_pool,
            backoff_min: self.backoff_min,
            backoff_max: self.backoff_max,
            max_reconnect_wait: self.max_reconnect_wait,
        }
    }
}

/// Everything needed to build headers for a job, as it stood when the job arrived.
#[derive(Clone, Debug)]
pub struct Work {
    pub job: Job,
    pub extranonce: Extranonce,
    /// The difficulty in force for this job (a `set_difficulty` applies from the next notify).
    pub difficulty: Difficulty,
    pub target: Target,
    /// The negotiated version-rolling mask, when the pool granted rolling.
    pub version_mask: Option<u32>,
    /// Index of the pool in the configured list, as the list stood when the job arrived.
    pub pool: usize,
    /// The configured URL of that pool: unlike the index, it still names the same pool after
    /// a reload that reordered the list.
    pub pool_url: String,
    /// Changes whenever shares of older work can no longer be submitted.
    pub epoch: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SubmitResult {
    Accepted,
    Rejected(String),
    /// The share's job or session ended before it could count.
    Stale(String),
}

#[derive(Clone, Debug)]
pub struct SubmitOutcome {
    pub result: SubmitResult,
    pub pool: usize,
    /// The configured URL of the pool that answered; `None` when the share was never sent.
    pub pool_url: Option<String>,
    /// Time from sending to the pool's answer (None when never sent).
    pub latency: Option<Duration>,
}

#[derive(Clone, Debug)]
pub enum ClientEvent {
    Connected {
        pool: usize,
        url: String,
        resumed: bool,
    },
    Work(Arc<Work>),
    /// The current work must be abandoned now (clean_jobs, or the session is gone).
    Disconnected {
        pool: usize,
        reason: String,
    },
    /// `client.show_message`; `text` is escaped (safe to log).
    PoolMessage {
        pool: usize,
        text: String,
    },
    Failover {
        from: usize,
        to: usize,
    },
    /// A proving job (`prover.notify`). Its proof can only be submitted in the same session
    /// (`epoch`): the pool keeps proving jobs per connection.
    ProofJob {
        job: Arc<ProofJob>,
        pool: usize,
        /// The pool's host, for artifact URLs whose host is unspecified.
        pool_host: String,
        epoch: u64,
    },
}

/// The pool's answer to a proof.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ProofResult {
    Accepted,
    Rejected(String),
    /// The session the job came from ended (or no answer came) before the proof counted.
    Lost(String),
}

enum Command {
    Submit {
        share: Share,
        epoch: u64,
        reply: oneshot::Sender<SubmitOutcome>,
        /// Held until the session takes the share off the queue.
        _queued: QueueSlot,
    },
    SubmitProof {
        job_id: String,
        proof: Value,
        public: Vec<String>,
        epoch: u64,
        reply: oneshot::Sender<ProofResult>,
    },
    /// `prover.decline` for a job of `epoch` (dropped when that session is gone).
    DeclineProof {
        job_id: String,
        reason: String,
        epoch: u64,
    },
    SwitchPool(usize),
    FollowFailover,
    SetPools(Vec<PoolConfig>),
    /// The rig's hashrate (H/s): Stratum V2 channels are updated with it (`UpdateChannel`).
    NominalHashrate(f32),
    Shutdown,
}

/// One share in the command queue: counted while it waits there.
struct QueueSlot(Arc<AtomicUsize>);

impl Drop for QueueSlot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Handle to a running session; cheap to clone.
#[derive(Clone)]
pub struct ClientHandle {
    tx: mpsc::UnboundedSender<Command>,
    /// Shares in `tx` (at most [`MAX_QUEUED_SUBMITS`]).
    queued: Arc<AtomicUsize>,
}

impl ClientHandle {
    /// Submits a share found on work of `epoch`; resolves when the pool answers (or the share
    /// is known to be stale).
    pub async fn submit(&self, share: Share, epoch: u64) -> SubmitOutcome {
        self.submit_detached(share, epoch)
            .await
            .unwrap_or_else(|_| not_sent(SubmitResult::Stale("client stopped".into()), 0))
    }

    /// Queues a share from any thread (no runtime needed) and returns where its answer will
    /// arrive. Device threads use this so a found share reaches the socket with one wakeup.
    pub fn submit_detached(&self, share: Share, epoch: u64) -> oneshot::Receiver<SubmitOutcome> {
        let (reply, rx) = oneshot::channel();
        if self.queued.fetch_add(1, Ordering::AcqRel) >= MAX_QUEUED_SUBMITS {
            self.queued.fetch_sub(1, Ordering::AcqRel);
            let _ = reply.send(not_sent(
                SubmitResult::Stale("too many shares queued for the pool".into()),
                0,
            ));
            return rx;
        }
        let slot = QueueSlot(self.queued.clone());
        if let Err(mpsc::error::SendError(Command::Submit { reply, .. })) =
            self.tx.send(Command::Submit {
                share,
                epoch,
                reply,
                _queued: slot,
            })
        {
            let _ = reply.send(not_sent(SubmitResult::Stale("client stopped".into()), 0));
        }
        rx
    }

    /// Submits a proof (snarkjs `proof.json` and `public.json` values) for a job of `epoch`.
    pub async fn submit_proof(
        &self,
        job_id: String,
        proof: Value,
        public: Vec<String>,
        epoch: u64,
    ) -> ProofResult {
        let (reply, rx) = oneshot::channel();
        let cmd = Command::SubmitProof {
            job_id,
            proof,
            public,
            epoch,
            reply,
        };
        if self.tx.send(cmd).is_err() {
            return ProofResult::Lost("client stopped".into());
        }
        rx.await
            .unwrap_or_else(|_| ProofResult::Lost("client stopped".into()))
    }

    /// Tells the pool this worker will not prove job `job_id` of `epoch` (`prover.decline`,
    /// `docs/protocol.md`), so it can give the job to another worker. Fire and forget: a pool
    /// that does not know the message answers with an error, which is ignored.
    pub fn decline_proof(&self, job_id: String, reason: String, epoch: u64) {
        let _ = self.tx.send(Command::DeclineProof {
            job_id,
            reason,
            epoch,
        });
    }

    /// Moves to pool `index` of the configured list now and stays there: no fail-back to the
    /// first pool until [`ClientHandle::follow_failover`] (see the module documentation for
    /// when the pin ends by itself). An index outside the list is ignored.
    pub fn switch_pool(&self, index: usize) {
        let _ = self.tx.send(Command::SwitchPool(index));
    }

    /// Ends a pin from [`ClientHandle::switch_pool`]: fail-back to the first pool resumes.
    pub fn follow_failover(&self) {
        let _ = self.tx.send(Command::FollowFailover);
    }

    /// Replaces the pool list (a reloaded config file). A session on a pool whose entry
    /// (URL, user, password, TLS settings) is unchanged at the same index goes on; otherwise
    /// the session ends and the client starts over at the first pool of the new list. An
    /// empty list is ignored: the client would have nowhere to go.
    pub fn set_pools(&self, pools: Vec<PoolConfig>) {
        let _ = self.tx.send(Command::SetPools(pools));
    }

    /// Reports the rig's current hashrate (H/s). A Stratum V2 session tells the pool
    /// (`UpdateChannel`, so it can set the channel's target) when it changed by more than a
    /// tenth since last told; Stratum V1 has no such message.
    pub fn set_nominal_hashrate(&self, hashes_per_second: f64) {
        if hashes_per_second.is_finite() && hashes_per_second >= 0.0 {
            let _ = self
                .tx
                .send(Command::NominalHashrate(hashes_per_second as f32));
        }
    }

    /// Ends the session; queued and in-flight shares are answered before the task exits.
    pub fn shutdown(&self) {
        let _ = self.tx.send(Command::Shutdown);
    }
}

pub struct Client;

impl Client {
    /// Starts the session task. Events arrive on the returned receiver until shutdown.
    pub fn spawn(
        config: ClientConfig,
    ) -> (
        ClientHandle,
        mpsc::UnboundedReceiver<ClientEvent>,
        tokio::task::JoinHandle<()>,
    ) {
        let (tx, rx) = mpsc::unbounded_channel();
        let (etx, erx) = mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            Supervisor::new(config, etx, rx).run().await;
        });
        (
            ClientHandle {
                tx,
                queued: Arc::new(AtomicUsize::new(0)),
            },
            erx,
            task,
        )
    }
}

/// The outcome of a share the client answers itself (never sent, or its session is gone).
fn not_sent(result: SubmitResult, pool: usize) -> SubmitOutcome {
    SubmitOutcome {
        result,
        pool,
        pool_url: None,
        latency: None,
    }
}

//! The miner's side of Stratum V1: one long-lived session to the best reachable pool.
//!
//! [`Client::spawn`] starts a tokio task that owns the connection. It handshakes
//! (configure → subscribe → extranonce.subscribe → authorize → suggest_difficulty), turns
//! notifications into [`Work`] events, submits shares and answers each with a
//! [`SubmitResult`], and survives everything a pool or a network does: malformed lines are
//! logged and skipped, a silent pool is declared dead after the keepalive time, reconnects back
//! off exponentially with jitter, an ordered list of pools fails over and fails back to the
//! first once it answers again.
//!
//! [`ClientHandle::switch_pool`] moves the session to another pool of the list and pins it
//! there: fail-back to the first pool is off while pinned. The pin ends with
//! [`ClientHandle::follow_failover`], with a new pool list that changes the pinned entry
//! ([`ClientHandle::set_pools`]), or when the pinned pool fails `attempts_per_pool`
//! connection attempts in a row: then the client fails over as usual (a rig left on a dead
//! pool would mine nothing) and fail-back to the first pool resumes.
//!
//! Every share handed to [`ClientHandle::submit`] gets exactly one answer. Shares found while
//! disconnected wait for the next session: if the pool resumes the same session (same
//! extranonce1) they are submitted there, otherwise they are answered `Stale`.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::Rng;
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, info, warn};

use crate::connection::{Connection, ConnectionError};
use crate::message::{
    Incoming, PoolMessage, SubscribeResult, error_reason, error_value, request_line, response_line,
};
use crate::proving::{ProofJob, ProofSubmit, ProverCapabilities};
use crate::transport::{PoolUrl, TlsOptions, connect};
use crate::work::{Difficulty, Extranonce, Job, Share, Target};

/// The BIP310 mask most pools grant (bits 13..28).
pub const DEFAULT_VERSION_MASK: u32 = 0x1fff_e000;

/// One pool in the failover list. `Debug` leaves the password out.
#[derive(Clone)]
pub struct PoolConfig {
    pub url: PoolUrl,
    pub user: String,
    pub password: String,
    pub tls: TlsOptions,
}

impl std::fmt::Debug for PoolConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PoolConfig")
            .field("url", &self.url.to_string())
            .field("user", &self.user)
            .finish_non_exhaustive()
    }
}

#[derive(Clone, Debug)]
pub struct ClientConfig {
    /// In order of preference; the first is returned to whenever it is healthy.
    pub pools: Vec<PoolConfig>,
    pub user_agent: String,
    /// A pool that sends nothing for this long is treated as dead.
    pub keepalive: Duration,
    pub connect_timeout: Duration,
    pub backoff_min: Duration,
    pub backoff_max: Duration,
    /// Failed connection attempts in a row before moving to the next pool.
    pub attempts_per_pool: u32,
    /// While on a backup pool, how often to probe the first one; zero never fails back.
    pub failback_interval: Duration,
    /// A submit without an answer for this long is answered `Stale`.
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
            backoff_min: Duration::from_secs(1),
            backoff_max: Duration::from_secs(60),
            attempts_per_pool: 2,
            failback_interval: Duration::from_secs(60),
            submit_timeout: Duration::from_secs(30),
            version_rolling: Some(DEFAULT_VERSION_MASK),
            suggest_difficulty: None,
            extranonce_subscribe: true,
            prover: None,
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
    /// Index of the pool in the configured list.
    pub pool: usize,
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
    },
    SubmitProof {
        job_id: String,
        proof: Value,
        public: Vec<String>,
        epoch: u64,
        reply: oneshot::Sender<ProofResult>,
    },
    SwitchPool(usize),
    FollowFailover,
    SetPools(Vec<PoolConfig>),
    Shutdown,
}

/// Handle to a running session; cheap to clone.
#[derive(Clone)]
pub struct ClientHandle {
    tx: mpsc::UnboundedSender<Command>,
}

impl ClientHandle {
    /// Submits a share found on work of `epoch`; resolves when the pool answers (or the share
    /// is known to be stale).
    pub async fn submit(&self, share: Share, epoch: u64) -> SubmitOutcome {
        let (reply, rx) = oneshot::channel();
        if self
            .tx
            .send(Command::Submit {
                share,
                epoch,
                reply,
            })
            .is_err()
        {
            return SubmitOutcome {
                result: SubmitResult::Stale("client stopped".into()),
                pool: 0,
                latency: None,
            };
        }
        rx.await.unwrap_or(SubmitOutcome {
            result: SubmitResult::Stale("client stopped".into()),
            pool: 0,
            latency: None,
        })
    }

    /// Queues a share from any thread (no runtime needed) and returns where its answer will
    /// arrive. Device threads use this so a found share reaches the socket with one wakeup.
    pub fn submit_detached(&self, share: Share, epoch: u64) -> oneshot::Receiver<SubmitOutcome> {
        let (reply, rx) = oneshot::channel();
        if let Err(mpsc::error::SendError(Command::Submit { reply, .. })) =
            self.tx.send(Command::Submit {
                share,
                epoch,
                reply,
            })
        {
            answer(reply, SubmitResult::Stale("client stopped".into()), 0, None);
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
        (ClientHandle { tx }, erx, task)
    }
}

/// A share waiting for a session or for the pool's answer.
struct QueuedShare {
    share: Share,
    epoch: u64,
    reply: oneshot::Sender<SubmitOutcome>,
}

fn answer(
    reply: oneshot::Sender<SubmitOutcome>,
    result: SubmitResult,
    pool: usize,
    latency: Option<Duration>,
) {
    let _ = reply.send(SubmitOutcome {
        result,
        pool,
        latency,
    });
}

/// Why a session ended.
enum SessionEnd {
    Shutdown,
    /// Connection problem: back off and retry (possibly another pool).
    Failed(String),
    /// The pool asked us to reconnect (maybe elsewhere on the same host) after a wait.
    Reconnect {
        port: Option<u16>,
        wait: Duration,
    },
    /// Switch to another pool now.
    Switch(usize),
    /// The pool list changed under the session: start over at the first pool.
    Reconfigured,
}

struct Supervisor {
    cfg: ClientConfig,
    events: mpsc::UnboundedSender<ClientEvent>,
    cmds: mpsc::UnboundedReceiver<Command>,
    epoch: u64,
    /// (pool, extranonce1) of the last session, to recognise a resumed one.
    last_identity: Option<(usize, Vec<u8>)>,
    /// Subscription id to offer when reconnecting to the same pool.
    last_session_id: Option<(usize, String)>,
    waiting: VecDeque<QueuedShare>,
    shutting_down: bool,
    /// The pool [`ClientHandle::switch_pool`] pinned: no fail-back while set.
    pinned: Option<usize>,
}

const MAX_WAITING_SHARES: usize = 4096;

impl Supervisor {
    fn new(
        cfg: ClientConfig,
        events: mpsc::UnboundedSender<ClientEvent>,
        cmds: mpsc::UnboundedReceiver<Command>,
    ) -> Self {
        Supervisor {
            cfg,
            events,
            cmds,
            epoch: 0,
            last_identity: None,
            last_session_id: None,
            waiting: VecDeque::new(),
            shutting_down: false,
            pinned: None,
        }
    }

    async fn run(mut self) {
        if self.cfg.pools.is_empty() {
            warn!("no pool configured");
            self.drain_stale("no pool configured");
            return;
        }
        let mut pool = 0usize;
        let mut failures = 0u32;
        let mut backoff = self.cfg.backoff_min;
        let mut port_override: Option<u16> = None;
        loop {
            let mut url = self.cfg.pools[pool].url.clone();
            if let Some(p) = port_override.take() {
                url.port = p;
            }
            let started = Instant::now();
            let end = match connect(&url, &self.cfg.pools[pool].tls, self.cfg.connect_timeout).await
            {
                Ok(conn) => self.session(pool, &url, conn).await,
                Err(e) => SessionEnd::Failed(e.to_string()),
            };
            let wait = match end {
                SessionEnd::Shutdown => break,
                SessionEnd::Switch(to) => {
                    let _ = self.events.send(ClientEvent::Failover { from: pool, to });
                    pool = to;
                    failures = 0;
                    backoff = self.cfg.backoff_min;
                    continue;
                }
                SessionEnd::Reconfigured => {
                    pool = 0;
                    failures = 0;
                    backoff = self.cfg.backoff_min;
                    continue;
                }
                SessionEnd::Reconnect { port, wait } => {
                    port_override = port;
                    failures = 0;
                    wait
                }
                SessionEnd::Failed(reason) => {
                    warn!(pool, url = %url, %reason, "pool connection failed");
                    // A session that worked for a while resets the backoff: this is a fresh outage.
                    if started.elapsed() > Duration::from_secs(60) {
                        backoff = self.cfg.backoff_min;
                        failures = 0;
                    }
                    failures += 1;
                    if failures >= self.cfg.attempts_per_pool && self.cfg.pools.len() > 1 {
                        if self.pinned.take().is_some() {
                            warn!(
                                pool,
                                "the pinned pool keeps failing: pin released, failing over as usual"
                            );
                        }
                        let to = (pool + 1) % self.cfg.pools.len();
                        info!(from = pool, to, "failing over to the next pool");
                        let _ = self.events.send(ClientEvent::Failover { from: pool, to });
                        pool = to;
                        failures = 0;
                        Duration::ZERO
                    } else {
                        let w = jitter(backoff);
                        // Saturating: a configured backoff near Duration::MAX must not overflow.
                        backoff = backoff.saturating_mul(2).min(self.cfg.backoff_max);
                        w
                    }
                }
            };
            // Wait, still answering submits (they queue) and commands.
            if !wait.is_zero() {
                debug!(?wait, "waiting before reconnecting");
                // A wait too long for the clock is "until told otherwise" (switch/shutdown).
                let deadline = tokio::time::Instant::now().checked_add(wait);
                loop {
                    tokio::select! {
                        () = sleep_until_or_never(deadline) => break,
                        cmd = self.cmds.recv() => match cmd {
                            None | Some(Command::Shutdown) => { self.shutting_down = true; break }
                            Some(Command::SwitchPool(i)) if i < self.cfg.pools.len() => { pool = i; failures = 0; self.pinned = Some(i); break }
                            Some(Command::SwitchPool(_)) => {}
                            Some(Command::FollowFailover) => self.pinned = None,
                            Some(Command::SetPools(p)) => {
                                if self.replace_pools(p, None) {
                                    pool = 0;
                                    failures = 0;
                                    backoff = self.cfg.backoff_min;
                                    break;
                                }
                            }
                            Some(Command::Submit { share, epoch, reply }) => self.queue(share, epoch, reply),
                            Some(Command::SubmitProof { reply, .. }) => {
                                let _ = reply.send(ProofResult::Lost("not connected: the proving job's session is gone".into()));
                            }
                        }
                    }
                }
                if self.shutting_down {
                    break;
                }
            }
        }
        self.drain_stale("client shut down before the share could be submitted");
    }

    /// Installs a new pool list; returns whether a session on pool `current` (or the wait
    /// for one) must start over because the list changed (always when `current` is `None`
    /// and the list was taken). What was learned about a pool index (resumable session, pin)
    /// is kept only where that index still names the same pool.
    fn replace_pools(&mut self, pools: Vec<PoolConfig>, current: Option<usize>) -> bool {
        if pools.is_empty() {
            warn!("new pool list is empty: keeping the current one");
            return false;
        }
        let old = std::mem::take(&mut self.cfg.pools);
        let unchanged = |i: usize| match (old.get(i), pools.get(i)) {
            (Some(a), Some(b)) => same_pool(a, b),
            _ => false,
        };
        if self
            .last_identity
            .as_ref()
            .is_some_and(|(p, _)| !unchanged(*p))
        {
            self.last_identity = None;
        }
        if self
            .last_session_id
            .as_ref()
            .is_some_and(|(p, _)| !unchanged(*p))
        {
            self.last_session_id = None;
        }
        if self.pinned.is_some_and(|p| !unchanged(p)) {
            info!("pinned pool changed in the new pool list: pin released");
            self.pinned = None;
        }
        let keep = current.is_some_and(unchanged);
        info!(
            pools = pools.len(),
            keep_session = keep,
            "pool list replaced"
        );
        self.cfg.pools = pools;
        !keep
    }

    fn queue(&mut self, share: Share, epoch: u64, reply: oneshot::Sender<SubmitOutcome>) {
        if self.waiting.len() >= MAX_WAITING_SHARES {
            answer(
                reply,
                SubmitResult::Stale("too many shares waiting for a pool".into()),
                0,
                None,
            );
        } else {
            self.waiting.push_back(QueuedShare {
                share,
                epoch,
                reply,
            });
        }
    }

    fn drain_stale(&mut self, reason: &str) {
        for q in self.waiting.drain(..) {
            answer(q.reply, SubmitResult::Stale(reason.into()), 0, None);
        }
    }

    /// Runs one connection from handshake to its end.
    async fn session(&mut self, pool: usize, url: &PoolUrl, conn: Connection) -> SessionEnd {
        let mut s = Session::new(self.cfg.clone(), pool, conn);
        let resume_id = self
            .last_session_id
            .as_ref()
            .filter(|(p, _)| *p == pool)
            .map(|(_, id)| id.clone());
        if let Err(e) = s.send_handshake(resume_id).await {
            return SessionEnd::Failed(e.to_string());
        }
        let keepalive = self.cfg.keepalive;
        let mut last_rx = tokio::time::Instant::now();
        let mut failback = failback_timer(self.cfg.failback_interval);
        // The failback probe runs here, polled alongside the session's own reads, so the live
        // session keeps reading, submitting and following clean jobs while the first pool
        // takes its time to answer (or never does). Dropping it (session over) closes its
        // connection.
        let mut probing: Option<Pin<Box<dyn Future<Output = bool> + Send>>> = None;
        let mut sweep = tokio::time::interval(Duration::from_secs(1));
        let mut established = false;
        let end = loop {
            // A keepalive too large to add to the clock means "never declare the pool dead".
            let keepalive_deadline = last_rx.checked_add(keepalive);
            tokio::select! {
                line = s.conn.read_line() => {
                    last_rx = tokio::time::Instant::now();
                    match line {
                        Ok(Some(line)) => match s.handle_line(&line, &self.events).await {
                            Ok(Some(end)) => break end,
                            Ok(None) => {}
                            Err(e) => break SessionEnd::Failed(e),
                        },
                        Ok(None) => break SessionEnd::Failed("pool closed the connection".into()),
                        Err(e) if e.is_recoverable() => warn!(pool, error = %e, "skipping a bad line from the pool"),
                        Err(e) => break SessionEnd::Failed(e.to_string()),
                    }
                    if !established && s.ready() {
                        established = true;
                        self.on_established(&mut s, url).await;
                    }
                }
                () = sleep_until_or_never(keepalive_deadline) => {
                    break SessionEnd::Failed(format!("no message from the pool for {} s", keepalive.as_secs()));
                }
                cmd = self.cmds.recv() => match cmd {
                    None | Some(Command::Shutdown) => {
                        self.shutting_down = true;
                        break SessionEnd::Shutdown;
                    }
                    Some(Command::SwitchPool(i)) if i < self.cfg.pools.len() => {
                        self.pinned = Some(i);
                        if i != pool {
                            break SessionEnd::Switch(i);
                        }
                        info!(pool, "pinned to the current pool: no fail-back");
                    }
                    Some(Command::SwitchPool(i)) => warn!(pool = i, "switch to a pool not in the list ignored"),
                    Some(Command::FollowFailover) => {
                        if self.pinned.take().is_some() {
                            info!(pool, "pin released: failing back to the first pool when it is healthy");
                        }
                    }
                    Some(Command::SetPools(p)) => {
                        if self.replace_pools(p, Some(pool)) {
                            break SessionEnd::Reconfigured;
                        }
                    }
                    Some(Command::Submit { share, epoch, reply }) => {
                        if !established {
                            self.queue(share, epoch, reply);
                        } else if epoch != self.epoch {
                            answer(reply, SubmitResult::Stale("share from an earlier session".into()), pool, None);
                        } else if let Err(e) = s.submit(share, reply).await {
                            break SessionEnd::Failed(e.to_string());
                        }
                    }
                    Some(Command::SubmitProof { job_id, proof, public, epoch, reply }) => {
                        if !established || epoch != self.epoch {
                            let _ = reply.send(ProofResult::Lost("the proving job's session is gone".into()));
                        } else if let Err(e) = s.submit_proof(job_id, proof, public, reply).await {
                            break SessionEnd::Failed(e.to_string());
                        }
                    }
                },
                _ = tick(&mut failback), if pool != 0 && established && probing.is_none() && self.pinned.is_none() => {
                    debug!(from = pool, "probing the first pool");
                    probing = Some(Box::pin(probe(self.cfg.clone(), 0)));
                }
                healthy = poll_probe(&mut probing), if probing.is_some() => {
                    probing = None;
                    // A pin set while the probe ran wins over its answer.
                    if healthy && self.pinned.is_none() {
                        info!(from = pool, "first pool is healthy again: failing back");
                        break SessionEnd::Switch(0);
                    }
                    debug!(from = pool, "first pool still unhealthy; staying");
                    // The next probe is a full interval after this one ended, not after it
                    // began: a slow probe must not be followed by another at once.
                    if let Some(t) = failback.as_mut() {
                        t.reset();
                    }
                }
                _ = sweep.tick() => s.expire_submits(),
            }
        };
        // Give in-flight submits a moment to be answered before the connection goes.
        if matches!(
            end,
            SessionEnd::Shutdown
                | SessionEnd::Switch(_)
                | SessionEnd::Reconnect { .. }
                | SessionEnd::Reconfigured
        ) && s.has_pending_submits()
        {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
            while s.has_pending_submits() {
                match tokio::time::timeout_at(deadline, s.conn.read_line()).await {
                    Ok(Ok(Some(line))) => {
                        let _ = s.handle_line(&line, &self.events).await;
                    }
                    Ok(Err(e)) if e.is_recoverable() => {}
                    _ => break,
                }
            }
        }
        s.fail_pending("connection to the pool ended before it answered");
        s.conn.shutdown().await;
        if established {
            let reason = match &end {
                SessionEnd::Shutdown => "shutdown".to_string(),
                SessionEnd::Failed(r) => r.clone(),
                SessionEnd::Reconnect { .. } => "pool asked to reconnect".to_string(),
                SessionEnd::Switch(to) => format!("switching to pool {to}"),
                SessionEnd::Reconfigured => "pool list changed".to_string(),
            };
            let _ = self.events.send(ClientEvent::Disconnected { pool, reason });
        }
        end
    }

    async fn on_established(&mut self, s: &mut Session, url: &PoolUrl) {
        let Some(sub) = s.subscription.clone() else {
            return;
        };
        let identity = (s.pool, sub.extranonce.extranonce1.clone());
        let resumed = self.last_identity.as_ref() == Some(&identity) && sub.session_id.is_some();
        if !resumed {
            self.epoch += 1;
        }
        self.last_identity = Some(identity);
        if let Some(id) = &sub.session_id {
            self.last_session_id = Some((s.pool, id.clone()));
        }
        s.epoch = self.epoch;
        info!(pool = s.pool, url = %url, resumed, extranonce1 = %hex::encode(&sub.extranonce.extranonce1), "connected");
        let _ = self.events.send(ClientEvent::Connected {
            pool: s.pool,
            url: url.to_string(),
            resumed,
        });
        s.flush_early_jobs(&self.events);
        for q in std::mem::take(&mut self.waiting) {
            if q.epoch == self.epoch {
                if s.submit(q.share, q.reply).await.is_err() {
                    // The connection broke again; the session loop will notice on its next read.
                }
            } else {
                answer(
                    q.reply,
                    SubmitResult::Stale(
                        "found during a disconnection; the pool started a new session".into(),
                    ),
                    s.pool,
                    None,
                );
            }
        }
    }
}

/// Whether two pool entries would open the same session (same place, same credentials).
fn same_pool(a: &PoolConfig, b: &PoolConfig) -> bool {
    a.url == b.url
        && a.user == b.user
        && a.password == b.password
        && a.tls.fingerprint == b.tls.fingerprint
        && a.tls.insecure == b.tls.insecure
        && a.tls.extra_roots == b.tls.extra_roots
}

/// ±25 % so that many rigs behind one outage do not reconnect in lockstep.
fn jitter(d: Duration) -> Duration {
    let f: f64 = rand::rng().random_range(0.75..1.25);
    // `mul_f64` panics when the product does not fit; a user-given backoff may be huge.
    Duration::try_from_secs_f64(d.as_secs_f64() * f).unwrap_or(Duration::MAX)
}

/// The failback timer: `None` (never fires) when the interval is zero or too large to add to
/// the clock. Missed ticks are delayed, never burst: a backlog of ticks must not turn into a
/// run of back-to-back probes.
fn failback_timer(every: Duration) -> Option<tokio::time::Interval> {
    if every.is_zero() {
        return None;
    }
    let start = tokio::time::Instant::now().checked_add(every)?;
    let mut t = tokio::time::interval_at(start, every);
    t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    Some(t)
}

/// Waits for the next tick of an optional timer; a missing timer never ticks.
async fn tick(timer: &mut Option<tokio::time::Interval>) {
    match timer {
        Some(t) => {
            t.tick().await;
        }
        None => std::future::pending().await,
    }
}

/// Waits for a running probe; with none running, waits forever (the select! guard keeps this
/// branch off then anyway).
async fn poll_probe(probing: &mut Option<Pin<Box<dyn Future<Output = bool> + Send>>>) -> bool {
    match probing {
        Some(p) => p.await,
        None => std::future::pending().await,
    }
}

/// Sleeps until `deadline`; `None` (a deadline beyond what the clock can represent) is never.
async fn sleep_until_or_never(deadline: Option<tokio::time::Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// Whether pool `index` accepts a subscribe and authorize right now. Takes its own copy of
/// the configuration so it can run while the session keeps using the supervisor.
async fn probe(cfg: ClientConfig, index: usize) -> bool {
    let Some(p) = cfg.pools.get(index) else {
        return false;
    };
    let Ok(mut conn) = connect(&p.url, &p.tls, cfg.connect_timeout).await else {
        return false;
    };
    let ok = async {
        conn.write_line(&request_line(
            1,
            "mining.subscribe",
            vec![cfg.user_agent.clone().into()],
        ))
        .await
        .ok()?;
        conn.write_line(&request_line(
            2,
            "mining.authorize",
            vec![p.user.clone().into(), p.password.clone().into()],
        ))
        .await
        .ok()?;
        let (mut sub, mut auth) = (false, false);
        while !(sub && auth) {
            let line = conn.read_line().await.ok()??;
            if let Ok(Incoming::Response { id, result, error }) = Incoming::parse(&line) {
                let good = error.is_null() && !result.is_null() && result != Value::Bool(false);
                match id.as_u64() {
                    Some(1) if good && SubscribeResult::parse(&result).is_ok() => sub = true,
                    Some(2) if good => auth = true,
                    Some(1) | Some(2) => return None,
                    _ => {}
                }
            }
        }
        Some(())
    };
    let r = tokio::time::timeout(cfg.connect_timeout, ok)
        .await
        .ok()
        .flatten()
        .is_some();
    conn.shutdown().await;
    r
}

enum Pending {
    Configure,
    Subscribe,
    ExtranonceSubscribe,
    Authorize,
    SuggestDifficulty,
    ProverSubscribe,
    Submit {
        reply: oneshot::Sender<SubmitOutcome>,
        sent: Instant,
        job_id: String,
    },
    ProofSubmit {
        reply: oneshot::Sender<ProofResult>,
        sent: Instant,
        job_id: String,
    },
}

struct Session {
    cfg: ClientConfig,
    pool: usize,
    conn: Connection,
    next_id: u64,
    pending: HashMap<u64, Pending>,
    subscription: Option<SubscribeResult>,
    authorized: bool,
    /// Difficulty for the next job (set_difficulty applies from the next notify).
    difficulty: Difficulty,
    /// Extranonce for the next job (set_extranonce likewise).
    extranonce: Option<Extranonce>,
    version_mask: Option<u32>,
    /// Jobs that arrived before subscribe/authorize finished.
    early_jobs: Vec<Job>,
    epoch: u64,
}

impl Session {
    fn new(cfg: ClientConfig, pool: usize, conn: Connection) -> Self {
        Session {
            cfg,
            pool,
            conn,
            next_id: 1,
            pending: HashMap::new(),
            subscription: None,
            authorized: false,
            difficulty: Difficulty::ONE,
            extranonce: None,
            version_mask: None,
            early_jobs: Vec::new(),
            epoch: 0,
        }
    }

    fn ready(&self) -> bool {
        self.subscription.is_some() && self.authorized
    }

    fn has_pending_submits(&self) -> bool {
        self.pending
            .values()
            .any(|p| matches!(p, Pending::Submit { .. }))
    }

    async fn call(
        &mut self,
        method: &str,
        params: Vec<Value>,
        kind: Pending,
    ) -> Result<(), ConnectionError> {
        let id = self.next_id;
        self.next_id += 1;
        self.pending.insert(id, kind);
        self.conn
            .write_line(&request_line(id, method, params))
            .await
    }

    async fn send_handshake(&mut self, resume: Option<String>) -> Result<(), ConnectionError> {
        if let Some(mask) = self.cfg.version_rolling {
            self.call(
                "mining.configure",
                vec![json!(["version-rolling"]), json!({"version-rolling.mask": format!("{mask:08x}"), "version-rolling.min-bit-count": 2})],
                Pending::Configure,
            )
            .await?;
        }
        let mut params = vec![Value::from(self.cfg.user_agent.clone())];
        if let Some(id) = resume {
            params.push(id.into());
        }
        self.call("mining.subscribe", params, Pending::Subscribe)
            .await?;
        if self.cfg.extranonce_subscribe {
            self.call(
                "mining.extranonce.subscribe",
                vec![],
                Pending::ExtranonceSubscribe,
            )
            .await?;
        }
        let p = &self.cfg.pools[self.pool];
        let (user, pass) = (p.user.clone(), p.password.clone());
        self.call(
            "mining.authorize",
            vec![user.into(), pass.into()],
            Pending::Authorize,
        )
        .await?;
        if let Some(d) = self.cfg.suggest_difficulty {
            self.call(
                "mining.suggest_difficulty",
                vec![d.into()],
                Pending::SuggestDifficulty,
            )
            .await?;
        }
        if let Some(caps) = &self.cfg.prover {
            let params = caps.to_params();
            self.call("prover.subscribe", params, Pending::ProverSubscribe)
                .await?;
        }
        Ok(())
    }

    async fn submit_proof(
        &mut self,
        job_id: String,
        proof: Value,
        public: Vec<String>,
        reply: oneshot::Sender<ProofResult>,
    ) -> Result<(), ConnectionError> {
        let submit = ProofSubmit {
            worker: self.cfg.pools[self.pool].user.clone(),
            job_id: job_id.clone(),
            proof,
            public,
        };
        self.call(
            "prover.submit",
            submit.to_params(),
            Pending::ProofSubmit {
                reply,
                sent: Instant::now(),
                job_id,
            },
        )
        .await
    }

    async fn submit(
        &mut self,
        share: Share,
        reply: oneshot::Sender<SubmitOutcome>,
    ) -> Result<(), ConnectionError> {
        let user = self.cfg.pools[self.pool].user.clone();
        let params = share.submit_params(&user);
        let job_id = share.job_id.clone();
        self.call(
            "mining.submit",
            params,
            Pending::Submit {
                reply,
                sent: Instant::now(),
                job_id,
            },
        )
        .await
    }

    fn expire_submits(&mut self) {
        let timeout = self.cfg.submit_timeout;
        let expired: Vec<u64> = self
            .pending
            .iter()
            .filter(|(_, p)| match p {
                Pending::Submit { sent, .. } | Pending::ProofSubmit { sent, .. } => {
                    sent.elapsed() > timeout
                }
                _ => false,
            })
            .map(|(id, _)| *id)
            .collect();
        for id in expired {
            let p = self.pending.remove(&id);
            if let Some(Pending::ProofSubmit { reply, job_id, .. }) = p {
                warn!(pool = self.pool, id, job = %job_id, "pool did not answer a proof");
                let _ = reply.send(ProofResult::Lost(format!(
                    "no answer from the pool within {} s",
                    timeout.as_secs()
                )));
            } else if let Some(Pending::Submit { reply, .. }) = p {
                warn!(pool = self.pool, id, "pool did not answer a submit");
                answer(
                    reply,
                    SubmitResult::Stale(format!(
                        "no answer from the pool within {} s",
                        timeout.as_secs()
                    )),
                    self.pool,
                    None,
                );
            }
        }
    }

    fn fail_pending(&mut self, reason: &str) {
        for (_, p) in self.pending.drain() {
            match p {
                Pending::Submit { reply, .. } => {
                    answer(reply, SubmitResult::Stale(reason.into()), self.pool, None)
                }
                Pending::ProofSubmit { reply, .. } => {
                    let _ = reply.send(ProofResult::Lost(reason.into()));
                }
                _ => {}
            }
        }
    }

    fn flush_early_jobs(&mut self, events: &mpsc::UnboundedSender<ClientEvent>) {
        for job in std::mem::take(&mut self.early_jobs) {
            self.emit_job(job, events);
        }
    }

    fn emit_job(&mut self, job: Job, events: &mpsc::UnboundedSender<ClientEvent>) {
        let Some(en) = self
            .extranonce
            .clone()
            .or_else(|| self.subscription.as_ref().map(|s| s.extranonce.clone()))
        else {
            return;
        };
        let work = Work {
            target: Target::from_difficulty(self.difficulty),
            difficulty: self.difficulty,
            version_mask: self.version_mask.filter(|m| *m != 0),
            extranonce: en,
            pool: self.pool,
            epoch: self.epoch,
            job,
        };
        let _ = events.send(ClientEvent::Work(Arc::new(work)));
    }

    /// Handles one line; `Ok(Some(end))` ends the session, `Err` is a fatal protocol error.
    async fn handle_line(
        &mut self,
        line: &str,
        events: &mpsc::UnboundedSender<ClientEvent>,
    ) -> Result<Option<SessionEnd>, String> {
        let msg = match Incoming::parse(line) {
            Ok(m) => m,
            Err(crate::message::ProtocolError::Empty) => return Ok(None),
            Err(e) => {
                warn!(pool = self.pool, error = %e, line = %truncate(line), "ignoring a malformed line from the pool");
                return Ok(None);
            }
        };
        match msg {
            Incoming::Response { id, result, error } => self.handle_response(id, result, error),
            Incoming::Request { id, method, params } if method == "prover.notify" => {
                match ProofJob::from_params(&params) {
                    Ok(job) if self.cfg.prover.is_some() => {
                        info!(pool = self.pool, job = %job.job_id, circuit = %job.circuit_id, "proving job");
                        let _ = events.send(ClientEvent::ProofJob {
                            job: Arc::new(job),
                            pool: self.pool,
                            pool_host: self.cfg.pools[self.pool].url.host.clone(),
                            epoch: self.epoch,
                        });
                    }
                    Ok(job) => {
                        debug!(pool = self.pool, job = %job.job_id, "proving job while not subscribed to proving: ignored");
                    }
                    Err(e) => {
                        warn!(pool = self.pool, error = %e, "ignoring a bad proving job from the pool");
                    }
                }
                if !id.is_null() {
                    self.conn
                        .write_line(&response_line(&id, Value::Bool(true), Value::Null))
                        .await
                        .map_err(|e| e.to_string())?;
                }
                Ok(None)
            }
            Incoming::Request { id, method, params } => {
                let parsed = match PoolMessage::parse(&method, &params) {
                    Ok(m) => m,
                    // The pool changed our extranonce (e.g. an extranonce2 size outside
                    // 1..=8) and we cannot follow: every share from here on would be built on
                    // the wrong coinbase. End the session; a fresh subscribe gets a usable one.
                    Err(e) if method == "mining.set_extranonce" => {
                        warn!(pool = self.pool, error = %e, "unusable mining.set_extranonce: ending the session");
                        return Err(format!("unusable extranonce from the pool: {e}"));
                    }
                    Err(e) => {
                        warn!(pool = self.pool, error = %e, "ignoring a bad message from the pool");
                        return Ok(None);
                    }
                };
                self.handle_pool_message(id, parsed, events)
                    .await
                    .map_err(|e| e.to_string())
            }
        }
    }

    fn handle_response(
        &mut self,
        id: Value,
        result: Value,
        error: Value,
    ) -> Result<Option<SessionEnd>, String> {
        let Some(kind) = id.as_u64().and_then(|i| self.pending.remove(&i)) else {
            warn!(pool = self.pool, id = %id, "response to a request never sent (or already answered): ignored");
            return Ok(None);
        };
        let ok = error.is_null();
        match kind {
            Pending::Configure => {
                if ok && result.get("version-rolling").and_then(Value::as_bool) == Some(true) {
                    let granted = result
                        .get("version-rolling.mask")
                        .and_then(Value::as_str)
                        .and_then(|m| crate::work::parse_u32_be_hex("mask", m).ok())
                        .unwrap_or(0);
                    let mask = granted & self.cfg.version_rolling.unwrap_or(0);
                    info!(
                        pool = self.pool,
                        mask = format!("{mask:08x}"),
                        "version rolling granted"
                    );
                    self.version_mask = Some(mask);
                } else {
                    debug!(pool = self.pool, "pool does not offer version rolling");
                }
            }
            Pending::Subscribe => {
                if !ok {
                    return Err(format!("subscribe refused: {}", error_reason(&error)));
                }
                let sub = SubscribeResult::parse(&result).map_err(|e| e.to_string())?;
                self.subscription = Some(sub);
            }
            Pending::ExtranonceSubscribe => {
                if !ok {
                    debug!(
                        pool = self.pool,
                        "pool does not support extranonce.subscribe"
                    );
                }
            }
            Pending::Authorize => {
                if !ok || result == Value::Bool(false) || result.is_null() {
                    return Err(format!("authorization refused: {}", error_reason(&error)));
                }
                self.authorized = true;
            }
            Pending::SuggestDifficulty => {}
            Pending::ProverSubscribe => {
                if ok && result.as_bool() == Some(true) {
                    info!(pool = self.pool, "pool offers proving jobs");
                } else {
                    info!(pool = self.pool, reason = %error_reason(&error), "pool offers no proving jobs: hashing only");
                }
            }
            Pending::ProofSubmit {
                reply,
                sent,
                job_id,
            } => {
                let r = if ok && result.as_bool() == Some(true) {
                    info!(pool = self.pool, job = %job_id, ms = sent.elapsed().as_millis() as u64, "proof accepted");
                    ProofResult::Accepted
                } else {
                    let reason = if ok {
                        format!("pool answered {result}")
                    } else {
                        error_reason(&error)
                    };
                    warn!(pool = self.pool, job = %job_id, %reason, "proof rejected");
                    ProofResult::Rejected(reason)
                };
                let _ = reply.send(r);
            }
            Pending::Submit {
                reply,
                sent,
                job_id,
            } => {
                let latency = Some(sent.elapsed());
                let r = if ok && result.as_bool() == Some(true) {
                    SubmitResult::Accepted
                } else {
                    let reason = if ok {
                        format!("pool answered {result}")
                    } else {
                        error_reason(&error)
                    };
                    if is_stale_reason(&error, &reason) {
                        SubmitResult::Stale(reason)
                    } else {
                        SubmitResult::Rejected(reason)
                    }
                };
                match &r {
                    SubmitResult::Accepted => {
                        debug!(pool = self.pool, job = %job_id, "share accepted")
                    }
                    SubmitResult::Rejected(why) => {
                        warn!(pool = self.pool, job = %job_id, reason = %why, "share rejected")
                    }
                    SubmitResult::Stale(why) => {
                        info!(pool = self.pool, job = %job_id, reason = %why, "share stale")
                    }
                }
                answer(reply, r, self.pool, latency);
            }
        }
        Ok(None)
    }

    async fn handle_pool_message(
        &mut self,
        id: Value,
        msg: PoolMessage,
        events: &mpsc::UnboundedSender<ClientEvent>,
    ) -> Result<Option<SessionEnd>, ConnectionError> {
        match msg {
            PoolMessage::Notify(job) => {
                if self.ready() {
                    self.emit_job(job, events);
                } else {
                    if job.clean_jobs {
                        self.early_jobs.clear();
                    }
                    self.early_jobs.push(job);
                }
            }
            PoolMessage::SetDifficulty(d) => {
                debug!(
                    pool = self.pool,
                    difficulty = d.get(),
                    "difficulty for the next job"
                );
                self.difficulty = d;
            }
            PoolMessage::SetExtranonce(en) => {
                info!(pool = self.pool, extranonce1 = %hex::encode(&en.extranonce1), size = en.extranonce2_size, "new extranonce for the next job");
                self.extranonce = Some(en);
            }
            PoolMessage::SetVersionMask(m) => {
                if self.version_mask.is_some() {
                    // Replaces the granted mask, but never beyond the bits we asked for.
                    let mask = m & self.cfg.version_rolling.unwrap_or(0);
                    info!(
                        pool = self.pool,
                        mask = format!("{mask:08x}"),
                        "version mask changed"
                    );
                    self.version_mask = Some(mask);
                } else {
                    // Rolling was refused or never negotiated: a mask alone does not switch it
                    // on (the pool would reject the rolled headers, or we never asked to roll).
                    warn!(
                        pool = self.pool,
                        mask = format!("{m:08x}"),
                        "mining.set_version_mask without granted version rolling: ignored"
                    );
                }
            }
            PoolMessage::Reconnect {
                host,
                port,
                wait_secs,
            } => {
                let same_host = host
                    .as_deref()
                    .is_none_or(|h| h == self.cfg.pools[self.pool].url.host);
                if !same_host {
                    // Following a redirect to another host would let anyone who can inject a
                    // line send the rig's hashrate elsewhere.
                    warn!(
                        pool = self.pool,
                        ?host,
                        "client.reconnect to another host ignored; reconnecting to the configured pool"
                    );
                }
                if !id.is_null() {
                    self.conn
                        .write_line(&response_line(&id, Value::Bool(true), Value::Null))
                        .await?;
                }
                return Ok(Some(SessionEnd::Reconnect {
                    port: if same_host { port } else { None },
                    wait: Duration::from_secs(wait_secs),
                }));
            }
            PoolMessage::ShowMessage(text) => {
                info!(pool = self.pool, message = %text, "message from the pool");
                let _ = events.send(ClientEvent::PoolMessage {
                    pool: self.pool,
                    text,
                });
                if !id.is_null() {
                    self.conn
                        .write_line(&response_line(&id, Value::Bool(true), Value::Null))
                        .await?;
                }
            }
            PoolMessage::GetVersion => {
                if !id.is_null() {
                    let ua = self.cfg.user_agent.clone();
                    self.conn
                        .write_line(&response_line(&id, ua.into(), Value::Null))
                        .await?;
                }
            }
            PoolMessage::Ping => {
                if !id.is_null() {
                    self.conn
                        .write_line(&response_line(&id, "pong".into(), Value::Null))
                        .await?;
                }
            }
            PoolMessage::Unknown(method) => {
                debug!(pool = self.pool, %method, "unknown method from the pool");
                if !id.is_null() {
                    self.conn
                        .write_line(&response_line(
                            &id,
                            Value::Null,
                            error_value(20, "Method not supported"),
                        ))
                        .await?;
                }
            }
        }
        Ok(None)
    }
}

/// Stratum has no standard stale code; pools use 21 ("job not found") or say so in words.
fn is_stale_reason(error: &Value, reason: &str) -> bool {
    let code = match error {
        Value::Array(a) => a.first().and_then(Value::as_i64),
        Value::Object(o) => o.get("code").and_then(Value::as_i64),
        _ => None,
    };
    let r = reason.to_ascii_lowercase();
    code == Some(21)
        || r.contains("stale")
        || r.contains("job not found")
        || r.contains("unknown job")
}

fn truncate(s: &str) -> String {
    if s.len() <= 200 {
        s.to_string()
    } else {
        let mut end = 200;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}… ({} bytes)", &s[..end], s.len())
    }
}

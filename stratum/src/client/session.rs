//! One Stratum V1 connection from handshake to its end: the requests in flight and their
//! answers, what the pool told us (subscription, difficulty, extranonce, version mask), jobs
//! turned into [`Work`], and every write bounded in time.
//!
//! The loop that drives a session (timers, commands, fail-back) is the supervisor's; this
//! file only knows the protocol on one connection.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, info, warn};

use super::{
    ClientConfig, ClientEvent, PoolConfig, ProofResult, SubmitOutcome, SubmitResult, Work, not_sent,
};
use crate::connection::{Connection, ConnectionError};
use crate::failover::deadline_after;
use crate::message::{
    Incoming, PoolMessage, SubscribeResult, error_reason, error_value, request_line, response_id,
    response_line,
};
use crate::proving::{ProofDecline, ProofJob, ProofSubmit};
use crate::untrusted::{escape, escape_max};
use crate::work::{Difficulty, Extranonce, Job, Share, Target};

/// Unanswered shares kept per session; beyond it the oldest is answered `Stale`, so a pool
/// that never answers cannot grow the session without bound.
pub(super) const MAX_UNANSWERED_SUBMITS: usize = 4096;

/// Proving jobs kept from before the handshake finished (the prover's queue holds 4 more than
/// the one it proves).
const MAX_EARLY_PROOF_JOBS: usize = 5;

/// Counts one more of something a pool can repeat at will; true when this one is to be logged
/// (the 1st, 2nd, 4th, 8th, ...), so a flood of it cannot flood the log too.
fn count_to_log(n: &mut u64) -> bool {
    *n += 1;
    n.is_power_of_two()
}

/// Why a session ended.
pub(super) enum SessionEnd {
    Shutdown,
    /// Connection problem: back off and retry (possibly another pool). The reason is escaped.
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

/// A session ended by an error; the text may quote the pool, so it is escaped.
pub(super) fn failed(reason: impl std::fmt::Display) -> SessionEnd {
    SessionEnd::Failed(escape(&reason.to_string()))
}

#[derive(Debug, thiserror::Error)]
pub(super) enum SessionError {
    #[error(transparent)]
    Connection(#[from] ConnectionError),
    #[error("the pool took no data for {0:?}: it stopped reading")]
    WriteTimeout(Duration),
    #[error("{0}")]
    Protocol(String),
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
        /// Already reported as late (unanswered for `submit_timeout`).
        late: bool,
    },
    ProofSubmit {
        reply: oneshot::Sender<ProofResult>,
        sent: Instant,
        job_id: String,
    },
    ProofDecline {
        job_id: String,
    },
}

/// Declines that may wait for the pool's answer; beyond them none is sent (a pool that never
/// answers cannot grow the pending map).
const MAX_UNANSWERED_DECLINES: usize = 16;

pub(super) struct Session {
    cfg: ClientConfig,
    pub(super) pool: usize,
    entry: PoolConfig,
    /// `entry.url` as text, stamped on work and answers.
    pool_url: String,
    pub(super) conn: Connection,
    next_id: u64,
    /// By request id, which is also the order of sending.
    pending: BTreeMap<u64, Pending>,
    unanswered_submits: usize,
    /// Shares answered stale because too many were unanswered (logged at powers of two, so a
    /// flood cannot flood the log too).
    dropped_unanswered: u64,
    subscription: Option<SubscribeResult>,
    authorized: bool,
    /// Difficulty for the next job (set_difficulty applies from the next notify).
    difficulty: Difficulty,
    /// Extranonce for the next job (set_extranonce likewise).
    extranonce: Option<Extranonce>,
    version_mask: Option<u32>,
    /// A `mining.set_version_mask` that came before the answer to `mining.configure`.
    early_mask: Option<u32>,
    /// The newest job that arrived before subscribe/authorize finished (older ones are of no
    /// use: each notify is a complete job).
    early_job: Option<Job>,
    /// Proving jobs that arrived before the handshake finished: they belong to the session's
    /// epoch, which is known only then (the newest few are kept).
    early_proof_jobs: VecDeque<ProofJob>,
    pub(super) epoch: u64,
    /// A write failed or timed out: the stream may hold half a line and is not to be used.
    pub(super) write_failed: bool,
    /// Lines from the pool that were understood (a response, or a request we could parse):
    /// only these show the pool is alive, not malformed ones.
    pub(super) understood: u64,
    /// Lines ignored as malformed (logged at powers of two: a flood does not flood the log).
    ignored: u64,
    /// Whether the pool has sent any work (a mining job or a proving job) this session.
    pub(super) work_sent: bool,
    /// The work the devices have, to re-issue when the version mask changes under it (with
    /// its own difficulty and extranonce: newer ones apply from the next job).
    current_work: Option<Arc<Work>>,
}

impl Session {
    pub(super) fn new(cfg: ClientConfig, pool: usize, entry: PoolConfig, conn: Connection) -> Self {
        Session {
            cfg,
            pool,
            pool_url: entry.url.to_string(),
            entry,
            conn,
            next_id: 1,
            pending: BTreeMap::new(),
            unanswered_submits: 0,
            dropped_unanswered: 0,
            subscription: None,
            authorized: false,
            difficulty: Difficulty::ONE,
            extranonce: None,
            version_mask: None,
            early_mask: None,
            early_job: None,
            early_proof_jobs: VecDeque::new(),
            epoch: 0,
            write_failed: false,
            understood: 0,
            ignored: 0,
            work_sent: false,
            current_work: None,
        }
    }

    pub(super) fn ready(&self) -> bool {
        self.subscription.is_some() && self.authorized
    }

    pub(super) fn subscription(&self) -> Option<&SubscribeResult> {
        self.subscription.as_ref()
    }

    pub(super) fn configure_pending(&self) -> bool {
        self.pending
            .values()
            .any(|p| matches!(p, Pending::Configure))
    }

    /// The handshake request still unanswered that fails the pool, if any.
    pub(super) fn handshake_missing(&self) -> Option<&'static str> {
        if self.subscription.is_none() {
            Some("mining.subscribe")
        } else if !self.authorized {
            Some("mining.authorize")
        } else {
            None
        }
    }

    /// mining.configure went unanswered for the handshake timeout: no version rolling in this
    /// session (a late answer is ignored, so the mask never changes under running work).
    pub(super) fn give_up_configure(&mut self) {
        let before = self.pending.len();
        self.pending.retain(|_, p| !matches!(p, Pending::Configure));
        if self.pending.len() != before {
            info!(
                pool = self.pool,
                "pool did not answer mining.configure in time: no version rolling"
            );
        }
        self.early_mask = None;
    }

    /// Whether a full handshake sends requests a pool may close the connection on.
    pub(super) fn has_optional_requests(&self) -> bool {
        self.cfg.version_rolling.is_some() || self.cfg.extranonce_subscribe
    }

    pub(super) fn has_pending_submits(&self) -> bool {
        self.unanswered_submits > 0
    }

    /// Writes one line within the write bound.
    async fn write(&mut self, line: &str) -> Result<(), SessionError> {
        let limit = self.cfg.write_timeout;
        let w = self.conn.write_line(line);
        let r = match deadline_after(limit) {
            None => w.await.map_err(SessionError::from),
            Some(d) => match tokio::time::timeout_at(d, w).await {
                Ok(r) => r.map_err(SessionError::from),
                Err(_) => Err(SessionError::WriteTimeout(limit)),
            },
        };
        if r.is_err() {
            self.write_failed = true;
        }
        r
    }

    async fn call(
        &mut self,
        method: &str,
        params: Vec<Value>,
        kind: Pending,
    ) -> Result<(), SessionError> {
        let id = self.next_id;
        self.next_id += 1;
        if matches!(kind, Pending::Submit { .. }) {
            self.unanswered_submits += 1;
        }
        self.pending.insert(id, kind);
        self.write(&request_line(id, method, params)).await
    }

    fn take_pending(&mut self, id: u64) -> Option<Pending> {
        let p = self.pending.remove(&id)?;
        if matches!(p, Pending::Submit { .. }) {
            self.unanswered_submits -= 1;
        }
        Some(p)
    }

    /// Sends the handshake. `plain`: without the optional requests (`mining.configure`,
    /// `mining.extranonce.subscribe`), for a pool that closed the connection on them.
    pub(super) async fn send_handshake(
        &mut self,
        resume: Option<String>,
        plain: bool,
    ) -> Result<(), SessionError> {
        if let Some(mask) = self.cfg.version_rolling.filter(|_| !plain) {
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
        if self.cfg.extranonce_subscribe && !plain {
            self.call(
                "mining.extranonce.subscribe",
                vec![],
                Pending::ExtranonceSubscribe,
            )
            .await?;
        }
        let (user, pass) = (self.entry.user.clone(), self.entry.password.clone());
        self.call(
            "mining.authorize",
            vec![user.into(), pass.into()],
            Pending::Authorize,
        )
        .await?;
        if let Some(caps) = &self.cfg.prover {
            let params = caps.to_params();
            self.call("prover.subscribe", params, Pending::ProverSubscribe)
                .await?;
        }
        Ok(())
    }

    pub(super) async fn submit_proof(
        &mut self,
        job_id: String,
        proof: Value,
        public: Vec<String>,
        reply: oneshot::Sender<ProofResult>,
    ) -> Result<(), SessionError> {
        let submit = ProofSubmit {
            worker: self.entry.user.clone(),
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

    /// `prover.decline` (bounded by [`MAX_UNANSWERED_DECLINES`]).
    pub(super) async fn decline_proof(
        &mut self,
        job_id: String,
        reason: String,
    ) -> Result<(), SessionError> {
        let waiting = self
            .pending
            .values()
            .filter(|p| matches!(p, Pending::ProofDecline { .. }))
            .count();
        if waiting >= MAX_UNANSWERED_DECLINES {
            debug!(pool = self.pool, job = %escape(&job_id), "decline not sent: {waiting} declines unanswered");
            return Ok(());
        }
        let decline = ProofDecline {
            worker: self.entry.user.clone(),
            job_id: job_id.clone(),
            reason,
        };
        self.call(
            "prover.decline",
            decline.to_params(),
            Pending::ProofDecline { job_id },
        )
        .await
    }

    pub(super) async fn submit(
        &mut self,
        share: Share,
        reply: oneshot::Sender<SubmitOutcome>,
    ) -> Result<(), SessionError> {
        if self.unanswered_submits >= MAX_UNANSWERED_SUBMITS {
            let oldest = self
                .pending
                .iter()
                .find(|(_, p)| matches!(p, Pending::Submit { .. }))
                .map(|(id, _)| *id);
            if let Some(Pending::Submit { reply, .. }) = oldest.and_then(|id| self.take_pending(id))
            {
                if count_to_log(&mut self.dropped_unanswered) {
                    warn!(
                        pool = self.pool,
                        so_far = self.dropped_unanswered,
                        "too many shares without an answer from the pool: the oldest counts as stale"
                    );
                }
                self.answer_local(reply, "the pool did not answer it (too many unanswered)");
            }
        }
        let params = share.submit_params(&self.entry.user);
        self.call(
            "mining.submit",
            params,
            Pending::Submit {
                reply,
                sent: Instant::now(),
                job_id: share.job_id,
                late: false,
            },
        )
        .await
    }

    fn answer_local(&self, reply: oneshot::Sender<SubmitOutcome>, reason: &str) {
        let _ = reply.send(not_sent(SubmitResult::Stale(reason.into()), self.pool));
    }

    /// Runs once a second: proofs unanswered for `submit_timeout` are lost (the proving side
    /// waits on them); shares that late are reported once and still wait for their answer.
    pub(super) fn sweep(&mut self) {
        let timeout = self.cfg.submit_timeout;
        let mut lost = Vec::new();
        for (id, p) in self.pending.iter_mut() {
            match p {
                Pending::ProofSubmit { sent, .. } if sent.elapsed() > timeout => lost.push(*id),
                Pending::Submit {
                    sent, late, job_id, ..
                } if !*late && sent.elapsed() > timeout => {
                    *late = true;
                    warn!(pool = self.pool, id, job = %escape(job_id), "the pool has not answered a share for {timeout:?}; still waiting for its answer");
                }
                _ => {}
            }
        }
        for id in lost {
            if let Some(Pending::ProofSubmit { reply, job_id, .. }) = self.take_pending(id) {
                warn!(pool = self.pool, id, job = %escape(&job_id), "pool did not answer a proof");
                let _ = reply.send(ProofResult::Lost(format!(
                    "no answer from the pool within {timeout:?}"
                )));
            }
        }
    }

    pub(super) fn fail_pending(&mut self, reason: &str) {
        for (_, p) in std::mem::take(&mut self.pending) {
            match p {
                Pending::Submit { reply, .. } => self.answer_local(reply, reason),
                Pending::ProofSubmit { reply, .. } => {
                    let _ = reply.send(ProofResult::Lost(reason.into()));
                }
                _ => {}
            }
        }
        self.unanswered_submits = 0;
    }

    pub(super) fn flush_early_job(&mut self, events: &mpsc::UnboundedSender<ClientEvent>) {
        if let Some(job) = self.early_job.take() {
            self.emit_job(job, events);
        }
        while let Some(job) = self.early_proof_jobs.pop_front() {
            self.emit_proof_job(job, events);
        }
    }

    fn emit_proof_job(&mut self, job: ProofJob, events: &mpsc::UnboundedSender<ClientEvent>) {
        self.work_sent = true;
        info!(pool = self.pool, job = %escape(&job.job_id), circuit = %job.circuit_id, "proving job");
        let _ = events.send(ClientEvent::ProofJob {
            job: Arc::new(job),
            pool: self.pool,
            pool_host: self.entry.url.host.clone(),
            epoch: self.epoch,
        });
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
            pool_url: self.pool_url.clone(),
            epoch: self.epoch,
            job,
        };
        self.send_work(Arc::new(work), events);
    }

    fn send_work(&mut self, work: Arc<Work>, events: &mpsc::UnboundedSender<ClientEvent>) {
        self.work_sent = true;
        self.current_work = Some(work.clone());
        let _ = events.send(ClientEvent::Work(work));
    }

    /// Handles one line; `Ok(Some(end))` ends the session, `Err` is a fatal error.
    pub(super) async fn handle_line(
        &mut self,
        line: &str,
        events: &mpsc::UnboundedSender<ClientEvent>,
    ) -> Result<Option<SessionEnd>, SessionError> {
        let msg = match Incoming::parse(line) {
            Ok(m) => m,
            Err(crate::message::ProtocolError::Empty) => return Ok(None),
            Err(e) => {
                if count_to_log(&mut self.ignored) {
                    warn!(pool = self.pool, error = %escape(&e.to_string()), line = %escape_max(line, 200), ignored_so_far = self.ignored, "ignoring a malformed line from the pool");
                }
                return Ok(None);
            }
        };
        if matches!(msg, Incoming::Response { .. }) {
            self.understood += 1;
        }
        match msg {
            Incoming::Response { id, result, error } => {
                self.handle_response(id, result, error).await
            }
            Incoming::Request { id, method, params } if method == "prover.notify" => {
                match ProofJob::from_params(&params) {
                    Ok(job) if self.cfg.prover.is_some() => {
                        self.understood += 1;
                        if self.ready() {
                            self.emit_proof_job(job, events);
                        } else {
                            if self.early_proof_jobs.len() == MAX_EARLY_PROOF_JOBS {
                                self.early_proof_jobs.pop_front();
                            }
                            self.early_proof_jobs.push_back(job);
                        }
                    }
                    Ok(job) => {
                        debug!(pool = self.pool, job = %escape(&job.job_id), "proving job while not subscribed to proving: ignored");
                    }
                    Err(e) => {
                        warn!(pool = self.pool, error = %escape(&e.to_string()), "ignoring a bad proving job from the pool");
                    }
                }
                if !id.is_null() {
                    self.write(&response_line(&id, Value::Bool(true), Value::Null))
                        .await?;
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
                        warn!(pool = self.pool, error = %escape(&e.to_string()), "unusable mining.set_extranonce: ending the session");
                        return Err(SessionError::Protocol(format!(
                            "unusable extranonce from the pool: {e}"
                        )));
                    }
                    Err(e) => {
                        if count_to_log(&mut self.ignored) {
                            warn!(pool = self.pool, error = %escape(&e.to_string()), ignored_so_far = self.ignored, "ignoring a bad message from the pool");
                        }
                        return Ok(None);
                    }
                };
                self.understood += 1;
                self.handle_pool_message(id, parsed, events).await
            }
        }
    }

    async fn handle_response(
        &mut self,
        id: Value,
        result: Value,
        error: Value,
    ) -> Result<Option<SessionEnd>, SessionError> {
        let Some(kind) = response_id(&id).and_then(|i| self.take_pending(i)) else {
            warn!(pool = self.pool, id = %escape_max(&id.to_string(), 64), "response to a request never sent (or already answered): ignored");
            return Ok(None);
        };
        let ok = error.is_null();
        match kind {
            Pending::Configure => {
                let early = self.early_mask.take();
                if ok && result.get("version-rolling").and_then(Value::as_bool) == Some(true) {
                    let granted = result
                        .get("version-rolling.mask")
                        .and_then(Value::as_str)
                        .and_then(|m| crate::work::parse_u32_be_hex("mask", m).ok())
                        .unwrap_or(0);
                    // A mining.set_version_mask sent before this answer is the pool's word
                    // on the mask in force; either way never beyond the bits we asked for.
                    let mask = early.unwrap_or(granted) & self.cfg.version_rolling.unwrap_or(0);
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
                    return Err(SessionError::Protocol(format!(
                        "subscribe refused: {}",
                        error_reason(&error)
                    )));
                }
                let sub = SubscribeResult::parse(&result)
                    .map_err(|e| SessionError::Protocol(e.to_string()))?;
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
                    return Err(SessionError::Protocol(format!(
                        "authorization refused: {}",
                        error_reason(&error)
                    )));
                }
                self.authorized = true;
                // After the answer, not beside the request: ckpool drops any request from a
                // client it has not authorized yet, and it authorizes on another thread.
                if let Some(d) = self.cfg.suggest_difficulty {
                    self.call(
                        "mining.suggest_difficulty",
                        vec![d.into()],
                        Pending::SuggestDifficulty,
                    )
                    .await?;
                }
            }
            Pending::SuggestDifficulty => {}
            Pending::ProverSubscribe => {
                if ok && result.as_bool() == Some(true) {
                    info!(pool = self.pool, "pool offers proving jobs");
                } else {
                    info!(pool = self.pool, reason = %escape(&error_reason(&error)), "pool offers no proving jobs: hashing only");
                }
            }
            Pending::ProofDecline { job_id } => {
                if !ok {
                    debug!(pool = self.pool, job = %escape(&job_id), reason = %escape(&error_reason(&error)), "pool refused the decline");
                }
            }
            Pending::ProofSubmit {
                reply,
                sent,
                job_id,
            } => {
                let job = escape(&job_id);
                let r = if ok && result.as_bool() == Some(true) {
                    info!(pool = self.pool, %job, ms = sent.elapsed().as_millis() as u64, "proof accepted");
                    ProofResult::Accepted
                } else {
                    let reason = escape(&if ok {
                        format!("pool answered {result}")
                    } else {
                        error_reason(&error)
                    });
                    warn!(pool = self.pool, %job, %reason, "proof rejected");
                    ProofResult::Rejected(reason)
                };
                let _ = reply.send(r);
            }
            Pending::Submit {
                reply,
                sent,
                job_id,
                late,
            } => {
                let latency = Some(sent.elapsed());
                let r = if ok && result.as_bool() == Some(true) {
                    SubmitResult::Accepted
                } else {
                    let raw = if ok {
                        format!("pool answered {result}")
                    } else {
                        error_reason(&error)
                    };
                    let reason = escape(&raw);
                    if is_stale_reason(&error, &raw) {
                        SubmitResult::Stale(reason)
                    } else {
                        SubmitResult::Rejected(reason)
                    }
                };
                let job = escape(&job_id);
                match &r {
                    SubmitResult::Accepted => {
                        debug!(pool = self.pool, %job, late, "share accepted")
                    }
                    SubmitResult::Rejected(why) => {
                        warn!(pool = self.pool, %job, reason = %why, "share rejected")
                    }
                    SubmitResult::Stale(why) => {
                        info!(pool = self.pool, %job, reason = %why, "share stale")
                    }
                }
                let _ = reply.send(SubmitOutcome {
                    result: r,
                    pool: self.pool,
                    pool_url: Some(self.pool_url.clone()),
                    latency,
                });
            }
        }
        Ok(None)
    }

    async fn handle_pool_message(
        &mut self,
        id: Value,
        msg: PoolMessage,
        events: &mpsc::UnboundedSender<ClientEvent>,
    ) -> Result<Option<SessionEnd>, SessionError> {
        match msg {
            PoolMessage::Notify(mut job) => {
                if self.ready() {
                    self.emit_job(job, events);
                } else {
                    // Keep only the newest, but remember that older work was to be dropped.
                    if let Some(older) = self.early_job.take() {
                        job.clean_jobs |= older.clean_jobs;
                    }
                    self.early_job = Some(job);
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
                if let Some(old) = self.version_mask {
                    // Replaces the granted mask, but never beyond the bits we asked for.
                    let mask = m & self.cfg.version_rolling.unwrap_or(0);
                    info!(
                        pool = self.pool,
                        mask = format!("{mask:08x}"),
                        "version mask changed"
                    );
                    self.version_mask = Some(mask);
                    // BIP310: the new mask holds at once, not from the next job. The running
                    // job goes out again under it; shares rolled on bits the pool took back
                    // would be rejected, so those already found are dropped too.
                    if mask != old
                        && self.ready()
                        && let Some(current) = &self.current_work
                    {
                        let mut work = Work::clone(current);
                        work.version_mask = Some(mask).filter(|m| *m != 0);
                        work.job.clean_jobs = old & !mask != 0;
                        self.send_work(Arc::new(work), events);
                    }
                } else if self.configure_pending() {
                    // Some pools send the mask before their answer to mining.configure; it
                    // applies once (and if) that answer grants rolling.
                    debug!(
                        pool = self.pool,
                        mask = format!("{m:08x}"),
                        "version mask before the answer to mining.configure: kept for it"
                    );
                    self.early_mask = Some(m);
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
                let same_host = host.as_deref().is_none_or(|h| h == self.entry.url.host);
                if !same_host {
                    // Following a redirect to another host would let anyone who can inject a
                    // line send the rig's hashrate elsewhere.
                    warn!(
                        pool = self.pool,
                        host = %escape(host.as_deref().unwrap_or("")),
                        "client.reconnect to another host ignored; reconnecting to the configured pool"
                    );
                }
                if !id.is_null() {
                    self.write(&response_line(&id, Value::Bool(true), Value::Null))
                        .await?;
                }
                return Ok(Some(SessionEnd::Reconnect {
                    port: if same_host { port } else { None },
                    wait: Duration::from_secs(wait_secs),
                }));
            }
            PoolMessage::ShowMessage(text) => {
                let text = escape(&text);
                info!(pool = self.pool, message = %text, "message from the pool");
                let _ = events.send(ClientEvent::PoolMessage {
                    pool: self.pool,
                    text,
                });
                if !id.is_null() {
                    self.write(&response_line(&id, Value::Bool(true), Value::Null))
                        .await?;
                }
            }
            PoolMessage::GetVersion => {
                if !id.is_null() {
                    let ua = self.cfg.user_agent.clone();
                    self.write(&response_line(&id, ua.into(), Value::Null))
                        .await?;
                }
            }
            PoolMessage::Ping => {
                if !id.is_null() {
                    self.write(&response_line(&id, "pong".into(), Value::Null))
                        .await?;
                }
            }
            PoolMessage::Unknown(method) => {
                debug!(pool = self.pool, method = %escape_max(&method, 100), "unknown method from the pool");
                if !id.is_null() {
                    self.write(&response_line(
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

//! The client task: runs one session after another (Stratum V1 here, V2 in `v2`) on the pool
//! [`Failover`] picks, waits between them, probes the first pool while on a backup
//! (fail-back), applies the handle's commands (switch, pin, new pool list, shutdown) and keeps
//! shares found while no session is up until one is.
//!
//! Everything that can stall is bounded: the connect, each handshake answer, each write, the
//! pool's silence (keepalive, unless off), a reconnect wait, and the goodbye to a pool.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, info, warn};

use super::session::{Session, SessionEnd, SessionError, failed};
use super::{
    ClientConfig, ClientEvent, Command, PoolConfig, ProofResult, SubmitOutcome, SubmitResult,
    not_sent,
};
use crate::connection::Connection;
use crate::failover::{
    Ended, Failover, Replaced, deadline_after, failback_timer, session_was_healthy,
};
use crate::message::{Incoming, SubscribeResult, request_line};
use crate::timers::{sleep_until_or_never, tick};
use crate::transport::{PoolUrl, Scheme, connect};
use crate::work::Share;

/// Shares kept while no session is up; beyond it they are answered `Stale` at once.
const MAX_WAITING_SHARES: usize = 4096;

/// How long the in-flight shares of a session that ends on purpose (shutdown, switch,
/// reconnect request, new pool list) may take to be answered.
pub(super) const DRAIN: Duration = Duration::from_secs(3);

/// The most a goodbye (TLS close_notify, WebSocket close frame) may take: the pool may have
/// stopped reading.
const GOODBYE: Duration = Duration::from_secs(1);

/// A share waiting for a session.
pub(super) struct QueuedShare {
    pub(super) share: Share,
    pub(super) epoch: u64,
    pub(super) reply: oneshot::Sender<SubmitOutcome>,
}

/// Handshakes in a row a pool hangs up on before it gets one without the optional requests
/// (one could be a restart or a load balancer; two in a row is the pool's habit).
const PLAIN_AFTER_DROPS: u32 = 2;

pub(super) struct Supervisor {
    /// Settings only: the pool list lives in `failover`.
    pub(super) cfg: ClientConfig,
    failover: Option<Failover>,
    pub(super) events: mpsc::UnboundedSender<ClientEvent>,
    pub(super) cmds: mpsc::UnboundedReceiver<Command>,
    pub(super) epoch: u64,
    /// (pool, extranonce1) of the last session, to recognise a resumed one.
    last_identity: Option<(usize, Vec<u8>)>,
    /// Subscription id to offer when reconnecting to the same pool.
    last_session_id: Option<(usize, String)>,
    /// Per pool, how many handshakes in a row it hung up on while they carried the optional
    /// requests (`mining.configure`, `mining.extranonce.subscribe`). From
    /// [`PLAIN_AFTER_DROPS`] on it gets the handshake without them: old ckpool closes on
    /// anything before subscribe, and NiceHash warns some pools close on extranonce.subscribe.
    handshake_drops: HashMap<usize, u32>,
    pub(super) waiting: VecDeque<QueuedShare>,
    pub(super) shutting_down: bool,
    /// The rig's hashrate as last reported (H/s), for Stratum V2 channels.
    pub(super) nominal_hashrate: f32,
}

pub(super) type Probe = Pin<Box<dyn Future<Output = bool> + Send>>;

impl Supervisor {
    pub(super) fn new(
        mut cfg: ClientConfig,
        events: mpsc::UnboundedSender<ClientEvent>,
        cmds: mpsc::UnboundedReceiver<Command>,
    ) -> Self {
        let pools = std::mem::take(&mut cfg.pools);
        let failover = (!pools.is_empty()).then(|| Failover::new(pools, cfg.failover_policy()));
        Supervisor {
            cfg,
            failover,
            events,
            cmds,
            epoch: 0,
            last_identity: None,
            last_session_id: None,
            handshake_drops: HashMap::new(),
            waiting: VecDeque::new(),
            shutting_down: false,
            nominal_hashrate: 0.0,
        }
    }

    pub(super) async fn run(mut self) {
        let Some(mut failover) = self.failover.take() else {
            warn!("no pool configured");
            self.drain_stale("no pool configured", 0);
            return;
        };
        loop {
            let pool = failover.current();
            let url = failover.target();
            let entry = failover.pools()[pool].clone();
            let (end, healthy) = if let Scheme::Sv2(key) = url.scheme {
                super::v2::run(&mut self, &mut failover, pool, entry, &url, key).await
            } else {
                match connect(&url, &entry.tls, self.cfg.connect_timeout).await {
                    Ok(conn) => self.session(&mut failover, pool, entry, &url, conn).await,
                    Err(e) => (failed(e), false),
                }
            };
            let next = match end {
                SessionEnd::Shutdown => break,
                SessionEnd::Switch(to) => {
                    let _ = self.events.send(ClientEvent::Failover { from: pool, to });
                    failover.move_to(to);
                    continue;
                }
                // The new list already put us on its first pool.
                SessionEnd::Reconfigured => continue,
                SessionEnd::Reconnect { port, wait } => {
                    info!(pool, ?port, ?wait, "the pool asked to be reconnected to");
                    failover.ended(Ended::ReconnectAsked { port, wait }, healthy)
                }
                SessionEnd::Failed(reason) => {
                    warn!(pool, url = %url, %reason, "pool connection failed");
                    failover.ended(Ended::Failed, healthy)
                }
            };
            if next.pin_released {
                warn!(
                    pool,
                    "the pinned pool keeps failing: pin released, failing over as usual"
                );
            }
            if let Some((from, to)) = next.failed_over {
                info!(from, to, "failing over to the next pool");
                let _ = self.events.send(ClientEvent::Failover { from, to });
            }
            // Wait, still answering submits (they queue) and commands.
            if !next.wait.is_zero() {
                debug!(wait = ?next.wait, "waiting before reconnecting");
                // A wait too long for the clock is "until told otherwise" (switch/shutdown).
                let deadline = tokio::time::Instant::now().checked_add(next.wait);
                loop {
                    tokio::select! {
                        () = sleep_until_or_never(deadline) => break,
                        cmd = self.cmds.recv() => match cmd {
                            None | Some(Command::Shutdown) => { self.shutting_down = true; break }
                            Some(Command::SwitchPool(i)) => {
                                if failover.pin(i) {
                                    failover.move_to(i);
                                    break;
                                }
                            }
                            Some(Command::FollowFailover) => { failover.unpin(); }
                            Some(Command::SetPools(p)) => {
                                if self.replace_pools(&mut failover, p, None).is_some_and(|r| r.restart) {
                                    break;
                                }
                            }
                            Some(Command::Submit { share, epoch, reply, .. }) => self.queue(share, epoch, reply),
                            Some(Command::SubmitProof { reply, .. }) => {
                                let _ = reply.send(ProofResult::Lost("not connected: the proving job's session is gone".into()));
                            }
                            // The job's session is gone, and the pool with it.
                            Some(Command::DeclineProof { .. }) => {}
                            Some(Command::NominalHashrate(h)) => self.nominal_hashrate = h,
                        }
                    }
                }
                if self.shutting_down {
                    break;
                }
            }
        }
        self.drain_stale("client shut down before the share could be submitted", 0);
    }

    /// `ClientHandle::switch_pool` while a session on `pool` runs (either protocol version):
    /// pin `to`, ending the session when it is another pool.
    pub(super) fn switch_pool(
        &self,
        failover: &mut Failover,
        pool: usize,
        to: usize,
    ) -> Option<SessionEnd> {
        if !failover.pin(to) {
            warn!(pool = to, "switch to a pool not in the list ignored");
            None
        } else if to != pool {
            Some(SessionEnd::Switch(to))
        } else {
            info!(pool, "pinned to the current pool: no fail-back");
            None
        }
    }

    /// `ClientHandle::follow_failover` while a session on `pool` runs.
    pub(super) fn follow_failover(failover: &mut Failover, pool: usize) {
        if failover.unpin() {
            info!(
                pool,
                "pin released: failing back to the first pool when it is healthy"
            );
        }
    }

    /// A reloaded pool list while a session on `pool` runs: the session ends when the list
    /// changed under it.
    pub(super) fn set_pools(
        &mut self,
        failover: &mut Failover,
        pool: usize,
        pools: Vec<PoolConfig>,
    ) -> Option<SessionEnd> {
        self.replace_pools(failover, pools, Some(pool))
            .is_some_and(|r| r.restart)
            .then_some(SessionEnd::Reconfigured)
    }

    /// Installs a new pool list and forgets what was learned about indices whose pool
    /// changed. `None` when the list was refused (empty).
    pub(super) fn replace_pools(
        &mut self,
        failover: &mut Failover,
        pools: Vec<PoolConfig>,
        current: Option<usize>,
    ) -> Option<Replaced> {
        let n = pools.len();
        let Some(r) = failover.replace(pools, current) else {
            warn!("new pool list is empty: keeping the current one");
            return None;
        };
        if self
            .last_identity
            .as_ref()
            .is_some_and(|(p, _)| !r.kept(*p))
        {
            self.last_identity = None;
        }
        if self
            .last_session_id
            .as_ref()
            .is_some_and(|(p, _)| !r.kept(*p))
        {
            self.last_session_id = None;
        }
        self.handshake_drops.retain(|p, _| r.kept(*p));
        info!(pools = n, keep_session = !r.restart, "pool list replaced");
        Some(r)
    }

    pub(super) fn queue(
        &mut self,
        share: Share,
        epoch: u64,
        reply: oneshot::Sender<SubmitOutcome>,
    ) {
        if self.waiting.len() >= MAX_WAITING_SHARES {
            let _ = reply.send(not_sent(
                SubmitResult::Stale("too many shares waiting for a pool".into()),
                0,
            ));
        } else {
            self.waiting.push_back(QueuedShare {
                share,
                epoch,
                reply,
            });
        }
    }

    /// Answers every waiting share stale, booked to `pool`.
    pub(super) fn drain_stale(&mut self, reason: &str, pool: usize) {
        for q in self.waiting.drain(..) {
            let _ = q
                .reply
                .send(not_sent(SubmitResult::Stale(reason.into()), pool));
        }
    }

    /// Runs one connection from handshake to its end; also says whether the session proved
    /// its pool healthy (`failover::session_was_healthy`: work, and useful talk for a minute).
    async fn session(
        &mut self,
        failover: &mut Failover,
        pool: usize,
        entry: PoolConfig,
        url: &PoolUrl,
        conn: Connection,
    ) -> (SessionEnd, bool) {
        let mut s = Session::new(self.cfg.clone(), pool, entry, conn);
        let resume_id = self
            .last_session_id
            .as_ref()
            .filter(|(p, _)| *p == pool)
            .map(|(_, id)| id.clone());
        let plain = self
            .handshake_drops
            .get(&pool)
            .is_some_and(|d| *d >= PLAIN_AFTER_DROPS);
        let offered_resume = resume_id.is_some();
        if let Err(e) = s.send_handshake(resume_id, plain).await {
            return (failed(e), false);
        }
        // The pool hung up before the handshake finished (not a refusal: those are answers).
        let mut closed_in_handshake = false;
        let keepalive = self.cfg.keepalive;
        let handshake_timeout = self.cfg.handshake_timeout;
        // Fixed when the handshake went out: lines from the pool do not move it, so a pool
        // that talks but never authorizes is given up on.
        let mut handshake_deadline = deadline_after(handshake_timeout);
        let mut last_rx = tokio::time::Instant::now();
        let mut failback = failback_timer(self.cfg.failback_interval);
        // The failback probe runs here, polled alongside the session's own reads, so the live
        // session keeps reading, submitting and following clean jobs while the first pool
        // takes its time to answer (or never does). Dropping it (session over) closes its
        // connection.
        let mut probing: Option<Probe> = None;
        let mut sweep = tokio::time::interval(Duration::from_secs(1));
        let mut established: Option<tokio::time::Instant> = None;
        let end = loop {
            // Zero turns the keepalive off; one too large to add to the clock is off too.
            let keepalive_deadline = if keepalive.is_zero() {
                None
            } else {
                last_rx.checked_add(keepalive)
            };
            // A pool that keeps talking but sends no work within the keepalive of the
            // handshake is given up on too: the rig would mine nothing there.
            let work_deadline = match established {
                Some(at) if !keepalive.is_zero() && !s.work_sent => at.checked_add(keepalive),
                _ => None,
            };
            let handshake_open =
                handshake_deadline.is_some() && (established.is_none() || s.configure_pending());
            tokio::select! {
                line = s.conn.read_line() => {
                    match line {
                        Ok(Some(line)) => {
                            // Only a line the pool meant (one we understood) shows it alive:
                            // a pool that sends nothing but garbage is as dead as a silent one.
                            let understood = s.understood;
                            match s.handle_line(&line, &self.events).await {
                                Ok(Some(end)) => break end,
                                Ok(None) => {}
                                Err(e) => break failed(e),
                            }
                            if s.understood != understood {
                                last_rx = tokio::time::Instant::now();
                            }
                        }
                        Ok(None) => {
                            closed_in_handshake = established.is_none();
                            break failed("pool closed the connection");
                        }
                        Err(e) if e.is_recoverable() => warn!(pool, error = %e, "skipping a bad line from the pool"),
                        Err(e) => {
                            closed_in_handshake = established.is_none();
                            break failed(e);
                        }
                    }
                    if established.is_none() && s.ready() {
                        established = Some(tokio::time::Instant::now());
                        if let Err(e) = self.on_established(&mut s, url).await {
                            break failed(e);
                        }
                    }
                }
                () = sleep_until_or_never(keepalive_deadline) => {
                    break failed(format_args!("no message from the pool for {} s", keepalive.as_secs_f64()));
                }
                () = sleep_until_or_never(work_deadline) => {
                    break failed(format_args!("the pool sent no job within {} s of the handshake", keepalive.as_secs_f64()));
                }
                () = sleep_until_or_never(handshake_deadline), if handshake_open => {
                    if let Some(what) = s.handshake_missing() {
                        break failed(format_args!("the pool did not answer {what} within {} s", handshake_timeout.as_secs_f64()));
                    }
                    s.give_up_configure();
                    handshake_deadline = None;
                }
                cmd = self.cmds.recv() => match cmd {
                    None | Some(Command::Shutdown) => {
                        self.shutting_down = true;
                        break SessionEnd::Shutdown;
                    }
                    Some(Command::SwitchPool(i)) => {
                        if let Some(end) = self.switch_pool(failover, pool, i) {
                            break end;
                        }
                    }
                    Some(Command::FollowFailover) => Self::follow_failover(failover, pool),
                    Some(Command::SetPools(p)) => {
                        if let Some(end) = self.set_pools(failover, pool, p) {
                            break end;
                        }
                    }
                    Some(Command::Submit { share, epoch, reply, .. }) => {
                        if established.is_none() {
                            self.queue(share, epoch, reply);
                        } else if epoch != self.epoch {
                            let _ = reply.send(not_sent(SubmitResult::Stale("share from an earlier session".into()), pool));
                        } else if let Err(e) = s.submit(share, reply).await {
                            break failed(e);
                        }
                    }
                    Some(Command::NominalHashrate(h)) => self.nominal_hashrate = h,
                    Some(Command::SubmitProof { job_id, proof, public, epoch, reply }) => {
                        if established.is_none() || epoch != self.epoch {
                            let _ = reply.send(ProofResult::Lost("the proving job's session is gone".into()));
                        } else if let Err(e) = s.submit_proof(job_id, proof, public, reply).await {
                            break failed(e);
                        }
                    }
                    Some(Command::DeclineProof { job_id, reason, epoch }) => {
                        if established.is_some() && epoch == self.epoch
                            && let Err(e) = s.decline_proof(job_id, reason).await
                        {
                            break failed(e);
                        }
                    }
                },
                _ = tick(&mut failback), if pool != 0 && established.is_some() && probing.is_none() && failover.pinned().is_none() => {
                    debug!(from = pool, "probing the first pool");
                    probing = Some(Box::pin(probe(self.cfg.clone(), failover.pools()[0].clone())));
                }
                healthy = poll_probe(&mut probing), if probing.is_some() => {
                    probing = None;
                    // A pin set while the probe ran wins over its answer.
                    if healthy && failover.pinned().is_none() {
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
                _ = sweep.tick() => s.sweep(),
            }
        };
        // Give in-flight submits a moment to be answered before the connection goes (not
        // when the connection is broken: nothing more will come).
        let on_purpose = matches!(
            end,
            SessionEnd::Shutdown
                | SessionEnd::Switch(_)
                | SessionEnd::Reconnect { .. }
                | SessionEnd::Reconfigured
        );
        if on_purpose && s.has_pending_submits() && !s.write_failed {
            let events = &self.events;
            let drain = async {
                while s.has_pending_submits() {
                    match s.conn.read_line().await {
                        Ok(Some(line)) => {
                            let _ = s.handle_line(&line, events).await;
                        }
                        Ok(None) => break,
                        Err(e) if e.is_recoverable() => {}
                        Err(_) => break,
                    }
                }
            };
            let _ = tokio::time::timeout(DRAIN, drain).await;
        }
        s.fail_pending("connection to the pool ended before it answered");
        if !s.write_failed {
            let _ = tokio::time::timeout(GOODBYE, s.conn.shutdown()).await;
        }
        if established.is_some() {
            let reason = match &end {
                SessionEnd::Shutdown => "shutdown".to_string(),
                SessionEnd::Failed(r) => r.clone(),
                SessionEnd::Reconnect { .. } => "pool asked to reconnect".to_string(),
                SessionEnd::Switch(to) => format!("switching to pool {to}"),
                SessionEnd::Reconfigured => "pool list changed".to_string(),
            };
            let _ = self.events.send(ClientEvent::Disconnected { pool, reason });
        }
        if established.is_none() {
            self.after_unfinished_handshake(&s, plain, offered_resume, closed_in_handshake);
        } else if !plain {
            self.handshake_drops.remove(&pool);
        }
        let healthy = established.is_some_and(|t| {
            session_was_healthy(s.work_sent, last_rx.saturating_duration_since(t))
        });
        (end, healthy)
    }

    /// What a handshake that never finished changes for the next one to the same pool.
    fn after_unfinished_handshake(
        &mut self,
        s: &Session,
        plain: bool,
        offered_resume: bool,
        closed: bool,
    ) {
        let pool = s.pool;
        // A pool that forgot (or refuses) the session id we offered would refuse it again;
        // it may also be why the pool hung up, so that drop is not held against the rest.
        if offered_resume && s.subscription().is_none() {
            self.last_session_id = None;
            return;
        }
        if !closed {
            return;
        }
        if plain {
            // Without them it hangs up too: they were not the reason.
            self.handshake_drops.remove(&pool);
        } else if s.has_optional_requests() {
            let drops = self.handshake_drops.entry(pool).or_insert(0);
            *drops += 1;
            if *drops == PLAIN_AFTER_DROPS {
                warn!(
                    pool,
                    drops = *drops,
                    "the pool keeps closing the connection during the handshake: trying it \
                     without mining.configure and mining.extranonce.subscribe (no version rolling)"
                );
            }
        }
    }

    async fn on_established(&mut self, s: &mut Session, url: &PoolUrl) -> Result<(), SessionError> {
        let Some(sub) = s.subscription().cloned() else {
            return Ok(());
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
        s.flush_early_job(&self.events);
        let mut queued = std::mem::take(&mut self.waiting).into_iter();
        while let Some(q) = queued.next() {
            if q.epoch == self.epoch {
                // On a failed write the share is in the session's pending list, which answers
                // it when the session ends; the rest wait for the next session.
                if let Err(e) = s.submit(q.share, q.reply).await {
                    self.waiting.extend(queued);
                    return Err(e);
                }
            } else {
                let _ = q.reply.send(not_sent(
                    SubmitResult::Stale(
                        "found during a disconnection; the pool started a new session".into(),
                    ),
                    s.pool,
                ));
            }
        }
        Ok(())
    }
}

/// Waits for a running probe; with none running, waits forever (the select! guard keeps this
/// branch off then anyway).
pub(super) async fn poll_probe(probing: &mut Option<Probe>) -> bool {
    match probing {
        Some(p) => p.await,
        None => std::future::pending().await,
    }
}

/// Whether `pool` accepts a subscribe and authorize right now. Takes its own copy of the
/// configuration so it can run while the session keeps using the supervisor; the whole
/// exchange, writes included, is bounded by the connect timeout.
pub(super) async fn probe(cfg: ClientConfig, pool: PoolConfig) -> bool {
    if let Scheme::Sv2(key) = pool.url.scheme {
        return super::v2::probe(cfg, pool, key).await;
    }
    let Ok(mut conn) = connect(&pool.url, &pool.tls, cfg.connect_timeout).await else {
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
            vec![pool.user.clone().into(), pool.password.clone().into()],
        ))
        .await
        .ok()?;
        let (mut sub, mut auth) = (false, false);
        while !(sub && auth) {
            let line = conn.read_line().await.ok()??;
            if let Ok(Incoming::Response { id, result, error }) = Incoming::parse(&line) {
                let good = error.is_null() && !result.is_null() && result != Value::Bool(false);
                match crate::message::response_id(&id) {
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
    let _ = tokio::time::timeout(GOODBYE, conn.shutdown()).await;
    r
}

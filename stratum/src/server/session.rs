//! One miner connection of the built-in pool: the Stratum V1 conversation and the independent
//! check of every share.
//!
//! Everything a share is judged by is recorded when its job is sent, per connection: the job,
//! the extranonce1 and the difficulty in force. So a `mining.set_difficulty` applies from the
//! next `mining.notify` on (as miners implement it), a `mining.set_extranonce` applies from the
//! next job, and shares for jobs sent earlier are still judged as they were when sent.
//! A job is stale once a newer block exists, whatever the miner was told.

use std::collections::{HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value, json};
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, broadcast, watch};
use tokio::time::Instant;
use tracing::{debug, info, warn};

use super::job::ServerJob;
use super::proving::{ProverState, now_unix};
use super::stats::RejectReason;
use super::vardiff::Vardiff;
use super::{Control, Extranonce1Lease, Shared};
use crate::connection::{Connection, ConnectionError};
use crate::message::{
    Incoming, MinerRequest, ProtocolError, error_value, request_line, response_line,
};
use crate::proving::{ProofDecline, ProofSubmit, ProverCapabilities, code as proof_code};
use crate::timers::sleep_until_or_never;
use crate::transport::BoxStream;
use crate::untrusted::escape;
use crate::work::{
    Difficulty, ExtraNonce2, Extranonce, Hash256, Share, hash_difficulty, parse_u32_be_hex,
};

/// TLS and WebSocket handshakes must finish within this.
pub(super) const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// A peer that stops reading cannot hold a session forever.
pub(super) const WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// Jobs remembered per connection for judging late shares; older ones read as stale.
pub(super) const MAX_SENT_JOBS: usize = 64;
/// How long closing a connection may wait for the miner to take the close message.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);
/// A peer sending nothing but garbage is cut off after this many bad lines in a row.
const MAX_BAD_LINES: u32 = 32;
const MAX_WORKERS_PER_CONNECTION: usize = 64;
const MAX_WORKER_NAME: usize = 256;

/// Lines written before real messages with `garbage_lines`: each is something a robust
/// client must skip (or answer) without losing the session.
const GARBAGE: &[&str] = &[
    "{this is not json",
    "",
    r#"{"id":987654321,"result":true,"error":null}"#,
    r#"{"id":null,"method":"mining.no_such_method","params":[1,2]}"#,
    r#"{"id":null,"method":"mining.set_difficulty","params":["not a number"]}"#,
    r#"[1,2,3]"#,
    r#"{"id":null,"method":"mining.notify","params":["short"]}"#,
    r#"{"id":"garbage-1","method":"client.no_such_request","params":[]}"#,
    r#"{"id":987654322,"result":null,"error":[20,"answer to nothing",null]}"#,
    "   ",
];

/// The session is over (peer gone, write failed, or it must be cut off).
struct Closed;

type Flow = Result<(), Closed>;

enum Event {
    Read(Result<Option<String>, ConnectionError>),
    NewJob,
    Control(Control),
    LoginTimeout,
    ProofJobDue,
    Shutdown,
    Nothing,
}

/// A job as sent on a connection (V1 or V2), with everything its shares are judged by.
pub(super) struct SentJob {
    pub(super) wire_id: String,
    pub(super) job: Arc<ServerJob>,
    pub(super) extranonce: Extranonce,
    pub(super) difficulty: Difficulty,
    /// Headers accepted for this job, for duplicate detection; forgotten with the job.
    pub(super) accepted: HashSet<Hash256>,
    /// Keeps the job's extranonce1 from being handed to another connection while shares on
    /// the job can still come.
    pub(super) _extranonce1: Arc<Extranonce1Lease>,
}

/// The checks every share gets whichever protocol brought it, once its job is found and its
/// fields are numbers: stale block, nTime window, version bits outside the mask, duplicate,
/// difficulty. The header is rebuilt from the job as sent and hashed here; nothing the miner
/// claims is trusted. On success the share is counted for `worker`.
pub(super) fn judge_share(
    shared: &Shared,
    sent: &mut SentJob,
    share: &Share,
    version_mask: u32,
    worker: &str,
) -> Result<f64, (RejectReason, String)> {
    use RejectReason as R;
    let current_block = shared.jobs.borrow().block;
    if sent.job.block != current_block {
        return Err((
            R::Stale,
            format!("block {} replaced by {current_block}", sent.job.block),
        ));
    }
    let window = shared.config.ntime_window.as_secs();
    let job_ntime = u64::from(sent.job.job.ntime);
    let ntime = share.ntime;
    // Saturating: a configured window near u64::MAX seconds must not overflow.
    if u64::from(ntime) < job_ntime || u64::from(ntime) > job_ntime.saturating_add(window) {
        return Err((
            R::BadNtime,
            format!("{ntime} outside [{job_ntime}, +{window}]"),
        ));
    }
    if let Some(bits) = share.version_bits
        && bits & !version_mask != 0
    {
        return Err((
            R::BadVersion,
            format!("{bits:08x} outside mask {version_mask:08x}"),
        ));
    }
    let hash = share
        .header(&sent.job.job, &sent.extranonce, version_mask)
        .hash();
    let assigned = sent.difficulty;
    // Every job is distinct work (see `job`), so a header can only repeat within one job.
    if sent.accepted.contains(&hash) {
        return Err((R::Duplicate, String::new()));
    }
    let achieved = hash_difficulty(&hash);
    if !assigned.target().is_met_by(&hash) {
        return Err((
            R::LowDifficulty,
            format!("{achieved:.3e} < {}", assigned.get()),
        ));
    }
    if sent.accepted.len() >= shared.config.max_shares_per_job {
        return Err((
            R::Stale,
            format!(
                "job full: {} shares accepted on it already; mine the next job",
                sent.accepted.len()
            ),
        ));
    }
    sent.accepted.insert(hash);
    let max_workers = shared.config.max_worker_stats;
    shared.stats.send_modify(|st| {
        st.total.accept(assigned.get(), achieved);
        st.worker_mut(worker, max_workers)
            .accept(assigned.get(), achieved);
    });
    Ok(achieved)
}

/// Bounds a connection's memory of accepted shares (kept to refuse duplicates) across all its
/// jobs, not only per job: while they remember `max`, the jobs older than this share's
/// (`keep`) are forgotten, oldest first, and shares on them are stale from then on. With the
/// per-job bound in [`judge_share`], a connection remembers at most about 2·`max` headers
/// however it spreads its shares over jobs (a very low difficulty, suggested again and again
/// so that each share lands on a new job).
pub(super) fn make_room(sent: &mut VecDeque<SentJob>, keep: &str, max: usize) {
    let mut total: usize = sent.iter().map(|j| j.accepted.len()).sum();
    while total >= max {
        match sent.front() {
            Some(j) if j.wire_id != keep => {
                total -= j.accepted.len();
                sent.pop_front();
            }
            _ => break,
        }
    }
}

/// Runs one connection to its end. `_permit` holds a slot of `max_connections` until then.
pub(super) async fn run(
    shared: Arc<Shared>,
    tcp: TcpStream,
    peer: SocketAddr,
    _permit: OwnedSemaphorePermit,
) {
    let _count = ConnectionCount(shared.clone());
    let _ = tcp.set_nodelay(true);
    let conn = match tokio::time::timeout(HANDSHAKE_TIMEOUT, open(&shared, tcp)).await {
        Ok(Ok(c)) => c,
        Ok(Err(reason)) => {
            debug!(%peer, %reason, "handshake failed");
            return;
        }
        Err(_) => {
            debug!(%peer, "handshake timed out");
            return;
        }
    };
    let Some(mut session) = Session::new(shared, conn, peer) else {
        warn!(%peer, "connection refused: every extranonce1 value is in use (raise extranonce1_size)");
        return;
    };
    info!(%peer, "miner connected");
    session.run().await;
    // Bounded: closing TLS or WebSocket writes a close message, which a miner that stopped
    // reading never takes (the slot would be held forever).
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, session.conn.shutdown()).await;
    info!(%peer, "miner disconnected");
}

/// Keeps `connections` right however the session ends (including an abort at shutdown).
pub(super) struct ConnectionCount(pub(super) Arc<Shared>);

impl Drop for ConnectionCount {
    fn drop(&mut self) {
        self.0
            .stats
            .send_modify(|s| s.connections = s.connections.saturating_sub(1));
    }
}

async fn open(shared: &Shared, tcp: TcpStream) -> Result<Connection, String> {
    let max_line = shared.config.max_line;
    let stream: BoxStream = match &shared.tls {
        Some(acceptor) => Box::new(
            acceptor
                .accept(tcp)
                .await
                .map_err(|e| format!("TLS: {e}"))?,
        ),
        None => Box::new(tcp),
    };
    if shared.ws {
        let ws_config = crate::connection::ws_config()
            .max_message_size(Some(max_line))
            .max_frame_size(Some(max_line));
        let ws = tokio_tungstenite::accept_async_with_config(stream, Some(ws_config))
            .await
            .map_err(|e| format!("WebSocket: {e}"))?;
        Ok(Connection::from_ws(ws, max_line))
    } else {
        Ok(Connection::from_stream(stream, max_line))
    }
}

struct Session {
    shared: Arc<Shared>,
    conn: Connection,
    peer: SocketAddr,
    jobs_rx: watch::Receiver<Arc<ServerJob>>,
    control_rx: broadcast::Receiver<Control>,
    shutdown_rx: watch::Receiver<bool>,
    session_id: String,
    extranonce: Extranonce,
    /// The lease on `extranonce`'s extranonce1.
    extranonce1: Arc<Extranonce1Lease>,
    subscribed: bool,
    extranonce_subscribed: bool,
    authorized: HashSet<String>,
    /// Set once subscribed and authorized: from then on jobs are sent.
    working: bool,
    /// Negotiated BIP310 mask; 0 when version rolling was not configured.
    version_mask: u32,
    /// The difficulty the next job is sent with.
    difficulty: Difficulty,
    vardiff: Option<Vardiff>,
    /// A vardiff decision taken while judging a share, applied after answering it.
    pending_retarget: Option<Difficulty>,
    sent: VecDeque<SentJob>,
    bad_lines: u32,
    garbage_next: usize,
    prover: ProverState,
}

impl Session {
    /// None when no extranonce1 is free for it.
    fn new(shared: Arc<Shared>, conn: Connection, peer: SocketAddr) -> Option<Self> {
        let lease = shared.extranonce1()?;
        let extranonce1 = lease.value().to_vec();
        let config = &shared.config;
        // A valid difficulty was checked at bind.
        let difficulty = Difficulty::new(config.difficulty).unwrap_or(Difficulty::ONE);
        Some(Session {
            jobs_rx: shared.jobs.subscribe(),
            control_rx: shared.control.subscribe(),
            shutdown_rx: shared.shutdown.subscribe(),
            session_id: hex::encode(&extranonce1),
            extranonce: Extranonce {
                extranonce1,
                extranonce2_size: config.extranonce2_size,
            },
            extranonce1: lease,
            subscribed: false,
            extranonce_subscribed: false,
            authorized: HashSet::new(),
            working: false,
            version_mask: 0,
            difficulty,
            vardiff: config
                .vardiff
                .clone()
                .map(|v| Vardiff::new(v, std::time::Instant::now())),
            pending_retarget: None,
            sent: VecDeque::new(),
            bad_lines: 0,
            garbage_next: 0,
            prover: ProverState::default(),
            conn,
            peer,
            shared,
        })
    }

    async fn run(&mut self) {
        // A login timeout too long to add to the clock means "never".
        let login_deadline = Instant::now().checked_add(self.shared.config.login_timeout);
        loop {
            // Only wait in the select; act after it, when the branch futures (which borrow
            // parts of `self`) are gone.
            let event = tokio::select! {
                () = super::stopped(&mut self.shutdown_rx) => Event::Shutdown,
                line = self.conn.read_line() => Event::Read(line),
                changed = self.jobs_rx.changed() => match changed {
                    Ok(()) => Event::NewJob,
                    Err(_) => Event::Shutdown,
                },
                control = self.control_rx.recv() => match control {
                    Ok(c) => Event::Control(c),
                    Err(broadcast::error::RecvError::Lagged(_)) => Event::Nothing,
                    Err(broadcast::error::RecvError::Closed) => Event::Shutdown,
                },
                () = sleep_until_or_never(login_deadline), if !self.working => Event::LoginTimeout,
                () = sleep_until_or_never(self.prover.next_at) => Event::ProofJobDue,
            };
            let flow = match event {
                Event::Shutdown => Err(Closed),
                Event::Read(line) => self.on_read(line).await,
                Event::NewJob => self.on_new_job().await,
                Event::Control(Control::SetExtranonce) => self.on_set_extranonce().await,
                Event::Control(Control::SetDifficulty(d)) => self.change_difficulty(d).await,
                Event::Nothing => Ok(()),
                Event::ProofJobDue => self.on_proof_job_due().await,
                Event::LoginTimeout => {
                    info!(peer = %self.peer, "closing connection that did not subscribe and authorize in time");
                    Err(Closed)
                }
            };
            if flow.is_err() {
                return;
            }
        }
    }

    async fn on_read(&mut self, line: Result<Option<String>, ConnectionError>) -> Flow {
        match line {
            Ok(Some(line)) => self.on_line(&line).await,
            Ok(None) => Err(Closed),
            Err(ConnectionError::LineTooLong(max)) => {
                warn!(peer = %self.peer, max, "line too long; closing connection");
                Err(Closed)
            }
            Err(e) if e.is_recoverable() => self.bad_line(&e.to_string()),
            Err(e) => {
                debug!(peer = %self.peer, error = %e, "read failed");
                Err(Closed)
            }
        }
    }

    fn bad_line(&mut self, why: &str) -> Flow {
        self.bad_lines += 1;
        debug!(peer = %self.peer, why, "ignoring bad line");
        if self.bad_lines > MAX_BAD_LINES {
            warn!(peer = %self.peer, "too many bad lines in a row; closing connection");
            return Err(Closed);
        }
        Ok(())
    }

    async fn on_line(&mut self, line: &str) -> Flow {
        let (id, method, params) = match Incoming::parse(line) {
            Ok(Incoming::Request { id, method, params }) => (id, method, params),
            // Miners answer pool-initiated requests (client.get_version, ...); nothing waits
            // on those answers here.
            Ok(Incoming::Response { .. }) => return Ok(()),
            Err(ProtocolError::Empty) => return Ok(()),
            // No id can be read from these, so there is nobody to answer.
            Err(e) => return self.bad_line(&e.to_string()),
        };
        self.bad_lines = 0;
        if method.starts_with("prover.") {
            return self.on_prover_request(id, &method, &params).await;
        }
        match MinerRequest::parse(&method, &params) {
            Ok(req) => self.on_request(id, req).await,
            Err(e) => {
                debug!(peer = %self.peer, method, error = %e, "bad request params");
                if method == "mining.submit" {
                    self.count_reject(None, RejectReason::Malformed);
                }
                self.reply_error(&id, 20, &e.to_string()).await
            }
        }
    }

    async fn on_request(&mut self, id: Value, req: MinerRequest) -> Flow {
        match req {
            MinerRequest::Subscribe { user_agent, .. } => {
                debug!(peer = %self.peer, agent = user_agent.as_deref().unwrap_or(""), "subscribe");
                self.subscribed = true;
                let sid = self.session_id.clone();
                let result = json!([
                    [["mining.set_difficulty", sid], ["mining.notify", sid]],
                    hex::encode(&self.extranonce.extranonce1),
                    self.extranonce.extranonce2_size,
                ]);
                self.reply(&id, result).await?;
                self.start_work().await
            }
            MinerRequest::Authorize { user, .. } => {
                // The password is accepted as is and never logged.
                if user.is_empty() || user.len() > MAX_WORKER_NAME {
                    return self.reply_reject(&id, RejectReason::Unauthorized).await;
                }
                if self.authorized.len() >= MAX_WORKERS_PER_CONNECTION
                    && !self.authorized.contains(&user)
                {
                    return self
                        .reply_error(&id, 20, "Too many workers on one connection")
                        .await;
                }
                if !self.authorized.contains(&user) {
                    info!(peer = %self.peer, worker = %escape(&user), "worker authorized");
                }
                self.authorized.insert(user);
                self.reply(&id, Value::Bool(true)).await?;
                self.start_work().await
            }
            MinerRequest::Submit {
                worker,
                job_id,
                extranonce2,
                ntime,
                nonce,
                version_bits,
            } => {
                let submitted = Submitted {
                    job_id: &job_id,
                    extranonce2: &extranonce2,
                    ntime: &ntime,
                    nonce: &nonce,
                    version_bits: version_bits.as_deref(),
                };
                match self.judge(&worker, &submitted) {
                    Ok(()) => {
                        self.reply(&id, Value::Bool(true)).await?;
                        match self.pending_retarget.take() {
                            Some(d) => self.change_difficulty(d).await,
                            None => Ok(()),
                        }
                    }
                    Err((reason, detail)) => {
                        debug!(peer = %self.peer, worker = %escape(&worker), job = %escape(&job_id), %reason, detail, "share rejected");
                        let authorized =
                            self.authorized.contains(&worker).then_some(worker.as_str());
                        self.count_reject(authorized, reason);
                        self.reply_reject(&id, reason).await
                    }
                }
            }
            MinerRequest::Configure { extensions, params } => {
                let result = self.configure(&extensions, &params);
                self.reply(&id, Value::Object(result)).await
            }
            MinerRequest::ExtranonceSubscribe => {
                self.extranonce_subscribed = true;
                self.reply(&id, Value::Bool(true)).await
            }
            MinerRequest::SuggestDifficulty(d) => {
                let d = match &self.shared.config.vardiff {
                    Some(v) => v.clamp(d),
                    None => d,
                };
                self.reply(&id, Value::Bool(true)).await?;
                match Difficulty::new(d) {
                    Ok(d) => self.change_difficulty(d).await,
                    Err(_) => Ok(()),
                }
            }
            MinerRequest::Unknown(method) => {
                debug!(peer = %self.peer, method, "unknown method");
                self.reply_error(&id, 20, "Unknown method").await
            }
        }
    }

    /// BIP310 negotiation: version rolling within the server's mask; every other extension
    /// is declined.
    fn configure(
        &mut self,
        extensions: &[String],
        params: &Map<String, Value>,
    ) -> Map<String, Value> {
        let mut result = Map::new();
        for ext in extensions {
            if ext != "version-rolling" {
                result.insert(ext.clone(), Value::Bool(false));
                continue;
            }
            // A miner that names no mask accepts whatever the pool allows.
            let requested = match params.get("version-rolling.mask") {
                None => Some(u32::MAX),
                Some(v) => v
                    .as_str()
                    .and_then(|s| parse_u32_be_hex("version-rolling.mask", s).ok()),
            };
            let mask = requested
                .map(|m| m & self.shared.config.version_mask)
                .unwrap_or(0);
            if mask == 0 {
                result.insert(ext.clone(), Value::Bool(false));
            } else {
                self.version_mask = mask;
                result.insert(ext.clone(), Value::Bool(true));
                result.insert(
                    "version-rolling.mask".into(),
                    Value::String(format!("{mask:08x}")),
                );
            }
        }
        result
    }

    /// Once subscribed and authorized: the difficulty, then the current job.
    async fn start_work(&mut self) -> Flow {
        if self.working || !self.subscribed || self.authorized.is_empty() {
            return Ok(());
        }
        self.working = true;
        if let Some(v) = &mut self.vardiff {
            v.reset(std::time::Instant::now());
        }
        self.send_difficulty().await?;
        let job = self.jobs_rx.borrow_and_update().clone();
        let id = job.job.job_id.clone();
        self.send_job(job, id, true).await
    }

    async fn on_new_job(&mut self) -> Flow {
        let job = self.jobs_rx.borrow_and_update().clone();
        if !self.working {
            return Ok(());
        }
        let vardiff = self
            .vardiff
            .as_mut()
            .and_then(|v| v.on_tick(std::time::Instant::now(), self.difficulty.get()));
        if let Some(d) = vardiff.and_then(|d| Difficulty::new(d).ok()) {
            self.difficulty = d;
            self.send_difficulty().await?;
        }
        let (id, clean) = (job.job.job_id.clone(), job.job.clean_jobs);
        self.send_job(job, id, clean).await
    }

    /// Vardiff or a miner's suggestion: before work starts it is just the starting
    /// difficulty; afterwards set_difficulty and a variant of the current job under a fresh
    /// id, so shares for the earlier id keep the earlier difficulty.
    async fn change_difficulty(&mut self, d: Difficulty) -> Flow {
        if d == self.difficulty {
            return Ok(());
        }
        self.difficulty = d;
        if let Some(v) = &mut self.vardiff {
            v.reset(std::time::Instant::now());
        }
        if !self.working {
            return Ok(());
        }
        debug!(peer = %self.peer, difficulty = d.get(), "difficulty changed");
        self.send_difficulty().await?;
        let job = self.jobs_rx.borrow().variant(self.shared.job_id());
        let id = job.job.job_id.clone();
        self.send_job(job, id, false).await
    }

    async fn on_set_extranonce(&mut self) -> Flow {
        if !self.extranonce_subscribed {
            return Ok(());
        }
        let Some(lease) = self.shared.extranonce1() else {
            warn!(peer = %self.peer, "no extranonce1 left to change to: keeping this one");
            return Ok(());
        };
        self.extranonce.extranonce1 = lease.value().to_vec();
        self.extranonce1 = lease;
        let params = vec![
            hex::encode(&self.extranonce.extranonce1).into(),
            self.extranonce.extranonce2_size.into(),
        ];
        self.send(&request_line(Value::Null, "mining.set_extranonce", params))
            .await?;
        if !self.working {
            return Ok(());
        }
        // Work under the old extranonce1 is pointless for the miner now: make it switch.
        let job = self.jobs_rx.borrow().variant(self.shared.job_id());
        let id = job.job.job_id.clone();
        self.send_job(job, id, true).await
    }

    async fn send_difficulty(&mut self) -> Flow {
        let line = request_line(
            Value::Null,
            "mining.set_difficulty",
            vec![json!(self.difficulty.get())],
        );
        self.send(&line).await
    }

    async fn send_job(&mut self, job: Arc<ServerJob>, wire_id: String, clean: bool) -> Flow {
        let mut wire = job.job.clone();
        wire.job_id = wire_id.clone();
        // Jobs are watched, not queued: if this connection missed the clean job that started
        // the block, this one must tell the miner to drop its work.
        wire.clean_jobs = clean
            || self
                .sent
                .back()
                .is_some_and(|last| last.job.block != job.block);
        let line = request_line(Value::Null, "mining.notify", wire.notify_params());
        self.sent.push_back(SentJob {
            wire_id,
            job,
            extranonce: self.extranonce.clone(),
            difficulty: self.difficulty,
            accepted: HashSet::new(),
            _extranonce1: self.extranonce1.clone(),
        });
        if self.sent.len() > MAX_SENT_JOBS {
            self.sent.pop_front();
        }
        self.send(&line).await
    }

    /// Checks a share independently of anything the miner claims; on success it is counted.
    fn judge(&mut self, worker: &str, s: &Submitted<'_>) -> Result<(), (RejectReason, String)> {
        use RejectReason as R;
        if !self.subscribed {
            return Err((R::NotSubscribed, String::new()));
        }
        if !self.authorized.contains(worker) {
            return Err((R::Unauthorized, String::new()));
        }
        let expired = || {
            if self.shared.was_issued(s.job_id) {
                (R::Stale, "job expired".into())
            } else {
                (R::UnknownJob, String::new())
            }
        };
        if !self.sent.iter().any(|j| j.wire_id == s.job_id) {
            return Err(expired());
        }
        make_room(
            &mut self.sent,
            s.job_id,
            self.shared.config.max_shares_per_job,
        );
        let Some(index) = self.sent.iter().rposition(|j| j.wire_id == s.job_id) else {
            return Err(expired());
        };
        let sent = &mut self.sent[index];
        let extranonce2 = ExtraNonce2::from_hex(s.extranonce2, sent.extranonce.extranonce2_size)
            .map_err(|e| (R::BadExtranonce2, e.to_string()))?;
        let ntime = parse_u32_be_hex("ntime", s.ntime).map_err(|e| (R::BadNtime, e.to_string()))?;
        let nonce =
            parse_u32_be_hex("nonce", s.nonce).map_err(|e| (R::Malformed, e.to_string()))?;
        let version_bits = match s.version_bits {
            None => None,
            Some(v) => Some(
                parse_u32_be_hex("version_bits", v).map_err(|e| (R::BadVersion, e.to_string()))?,
            ),
        };
        let share = Share {
            job_id: s.job_id.to_string(),
            extranonce2,
            ntime,
            nonce,
            version_bits,
        };
        let achieved = judge_share(&self.shared, sent, &share, self.version_mask, worker)?;
        debug!(peer = %self.peer, worker, job = s.job_id, difficulty = achieved, "share accepted");
        if let Some(v) = &mut self.vardiff
            && let Some(d) = v.on_share(std::time::Instant::now(), self.difficulty.get())
        {
            self.pending_retarget = Difficulty::new(d).ok();
        }
        Ok(())
    }

    /// `prover.subscribe` and `prover.submit` (`docs/protocol.md`).
    async fn on_prover_request(&mut self, id: Value, method: &str, params: &[Value]) -> Flow {
        if self.shared.proving.is_none() {
            return self
                .reply_error(&id, proof_code::OTHER, "this pool offers no proving jobs")
                .await;
        }
        match method {
            "prover.subscribe" => {
                if !self.working {
                    return self
                        .reply_error(&id, 25, "subscribe and authorize before prover.subscribe")
                        .await;
                }
                match ProverCapabilities::from_params(params) {
                    Ok(caps) => {
                        info!(peer = %self.peer, max_constraints = caps.max_constraints, "prover subscribed");
                        self.prover.caps = Some(caps);
                        // One job at a time: subscribing again while holding one does not get
                        // another (each would cost the pool a pairing check).
                        if self.prover.issued.is_empty() {
                            self.prover.next_at = Some(Instant::now());
                        }
                        self.reply(&id, Value::Bool(true)).await
                    }
                    Err(e) => {
                        self.reply_error(&id, proof_code::OTHER, &e.to_string())
                            .await
                    }
                }
            }
            "prover.submit" => {
                let s = match ProofSubmit::from_params(params) {
                    Ok(s) => s,
                    Err(e) => {
                        self.count_proof(Err(proof_code::OTHER));
                        return self
                            .reply_error(&id, proof_code::OTHER, &e.to_string())
                            .await;
                    }
                };
                let verdict = if self.prover.answered.contains(&s.job_id) {
                    Err((proof_code::DUPLICATE, "duplicate proof".to_string()))
                } else if let Some(issued) = self.prover.issued.get(&s.job_id).cloned() {
                    let shared = self.shared.clone();
                    let sub = s.clone();
                    // Pairings take milliseconds: off the runtime's threads.
                    let checked = tokio::task::spawn_blocking(move || match &shared.proving {
                        Some(offer) => offer.check(&issued, &sub),
                        None => Err((proof_code::OTHER, "no proving jobs".into())),
                    })
                    .await;
                    checked
                        .unwrap_or_else(|e| Err((proof_code::OTHER, format!("check failed: {e}"))))
                } else {
                    Err((proof_code::JOB_NOT_FOUND, "job not found".to_string()))
                };
                if let Some(issued) = self.prover.issued.remove(&s.job_id) {
                    self.prover.remember_answered(s.job_id.clone());
                    if let Some(offer) = &self.shared.proving {
                        let circuit = offer.circuit_name(&issued);
                        match &verdict {
                            Ok(()) => {
                                info!(peer = %self.peer, job = %escape(&s.job_id), circuit, "proof accepted")
                            }
                            Err((c, m)) => {
                                warn!(peer = %self.peer, job = %escape(&s.job_id), circuit, code = c, reason = %m, "proof rejected")
                            }
                        }
                    }
                    self.schedule_next_proof_job();
                }
                self.count_proof(verdict.as_ref().map(|_| ()).map_err(|(c, _)| *c));
                match verdict {
                    Ok(()) => self.reply(&id, Value::Bool(true)).await,
                    Err((c, m)) => self.reply_error(&id, c, &m).await,
                }
            }
            "prover.decline" => {
                let d = match ProofDecline::from_params(params) {
                    Ok(d) => d,
                    Err(e) => {
                        return self
                            .reply_error(&id, proof_code::OTHER, &e.to_string())
                            .await;
                    }
                };
                if self.prover.issued.remove(&d.job_id).is_none() {
                    return self
                        .reply_error(&id, proof_code::JOB_NOT_FOUND, "job not found")
                        .await;
                }
                // A declined job is answered: a proof for it later is a duplicate.
                self.prover.remember_answered(d.job_id.clone());
                self.shared.stats.send_modify(|st| st.proofs_declined += 1);
                info!(peer = %self.peer, job = %escape(&d.job_id), reason = %escape(&d.reason), "proving job declined");
                self.schedule_next_proof_job();
                self.reply(&id, Value::Bool(true)).await
            }
            other => {
                self.reply_error(&id, proof_code::OTHER, &format!("unknown method {other}"))
                    .await
            }
        }
    }

    /// Once this worker holds no proving job, its next one goes out after the interval.
    fn schedule_next_proof_job(&mut self) {
        if self.prover.issued.is_empty() {
            let wait = self
                .shared
                .proving
                .as_ref()
                .map(|o| o.config.interval)
                .unwrap_or_default();
            self.prover.next_at = Instant::now().checked_add(wait);
        }
    }

    fn count_proof(&self, verdict: Result<(), i64>) {
        self.shared.stats.send_modify(|st| match verdict {
            Ok(()) => st.proofs_accepted += 1,
            Err(c) => *st.proofs_rejected.entry(c).or_insert(0) += 1,
        });
    }

    /// The timer of the proving side: the job this worker holds is past its deadline (it is
    /// forgotten, and a proof for it is answered as a duplicate), or its next job is due.
    async fn on_proof_job_due(&mut self) -> Flow {
        if self.prover.issued.is_empty() {
            return self.send_proof_job().await;
        }
        let now = now_unix();
        let expired: Vec<String> = self
            .prover
            .issued
            .iter()
            .filter(|(_, i)| i.deadline() < now)
            .map(|(id, _)| id.clone())
            .collect();
        for id in expired {
            self.prover.issued.remove(&id);
            info!(peer = %self.peer, job = %escape(&id), "proving job expired unanswered");
            self.prover.remember_answered(id);
        }
        if self.prover.issued.is_empty() {
            // The next one after the interval, as after an answer.
            self.schedule_next_proof_job();
        } else {
            self.prover.next_at = self.expiry_timer();
        }
        Ok(())
    }

    /// When the earliest deadline of the jobs this worker holds has passed.
    fn expiry_timer(&self) -> Option<Instant> {
        let deadline = self.prover.issued.values().map(|i| i.deadline()).min()?;
        let left = deadline.saturating_sub(now_unix()).saturating_add(1);
        Instant::now().checked_add(Duration::from_secs(left))
    }

    /// Sends the next proving job this worker can take.
    async fn send_proof_job(&mut self) -> Flow {
        self.prover.next_at = None;
        let (Some(offer), Some(caps)) = (&self.shared.proving, &self.prover.caps) else {
            return Ok(());
        };
        let wire_id = format!("p{}", self.shared.job_id());
        let Some((job, issued)) = offer.next_job(caps, wire_id.clone()) else {
            info!(peer = %self.peer, "no proving job fits this worker's capabilities");
            return Ok(());
        };
        self.prover.issued.insert(wire_id, issued);
        self.prover.next_at = self.expiry_timer();
        self.shared.stats.send_modify(|st| st.proof_jobs += 1);
        self.send(&request_line(Value::Null, "prover.notify", job.to_params()))
            .await
    }

    fn count_reject(&self, worker: Option<&str>, reason: RejectReason) {
        count_reject(&self.shared, worker, reason);
    }

    async fn reply(&mut self, id: &Value, result: Value) -> Flow {
        if id.is_null() {
            return Ok(());
        }
        self.send(&response_line(id, result, Value::Null)).await
    }

    async fn reply_error(&mut self, id: &Value, code: i64, message: &str) -> Flow {
        if id.is_null() {
            return Ok(());
        }
        self.send(&response_line(id, Value::Null, error_value(code, message)))
            .await
    }

    async fn reply_reject(&mut self, id: &Value, reason: RejectReason) -> Flow {
        self.reply_error(id, reason.code(), reason.message()).await
    }

    async fn send(&mut self, line: &str) -> Flow {
        if self.shared.config.garbage_lines {
            let garbage = GARBAGE[self.garbage_next % GARBAGE.len()];
            self.garbage_next += 1;
            self.write(garbage).await?;
        }
        self.write(line).await
    }

    async fn write(&mut self, line: &str) -> Flow {
        match tokio::time::timeout(WRITE_TIMEOUT, self.conn.write_line(line)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => {
                debug!(peer = %self.peer, error = %e, "write failed");
                Err(Closed)
            }
            Err(_) => {
                warn!(peer = %self.peer, "peer stopped reading; closing connection");
                Err(Closed)
            }
        }
    }
}

/// Counts a rejected share (for `worker` too when the share named one we know).
pub(super) fn count_reject(shared: &Shared, worker: Option<&str>, reason: RejectReason) {
    let max_workers = shared.config.max_worker_stats;
    shared.stats.send_modify(|st| {
        st.total.reject(reason);
        if let Some(w) = worker {
            st.worker_mut(w, max_workers).reject(reason);
        }
    });
}

/// The share fields of a `mining.submit`, still as the miner wrote them.
struct Submitted<'a> {
    job_id: &'a str,
    extranonce2: &'a str,
    ntime: &'a str,
    nonce: &'a str,
    version_bits: Option<&'a str>,
}

//! The protocol state of one Stratum V2 connection: the standard channel, the current
//! prevhash, future jobs, the jobs that became work, and the shares waiting for an answer;
//! frames from the pool turned into [`Work`] and share answers, shares turned into
//! `SubmitSharesStandard`.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use binary_sv2::{Str0255, U256};
use common_messages_sv2::{MESSAGE_TYPE_RECONNECT, Reconnect};
use mining_sv2::{
    CloseChannel, MESSAGE_TYPE_CLOSE_CHANNEL, MESSAGE_TYPE_MINING_SET_NEW_PREV_HASH,
    MESSAGE_TYPE_NEW_MINING_JOB, MESSAGE_TYPE_OPEN_MINING_CHANNEL_ERROR,
    MESSAGE_TYPE_OPEN_STANDARD_MINING_CHANNEL, MESSAGE_TYPE_OPEN_STANDARD_MINING_CHANNEL_SUCCESS,
    MESSAGE_TYPE_SET_TARGET, MESSAGE_TYPE_SUBMIT_SHARES_ERROR, MESSAGE_TYPE_SUBMIT_SHARES_STANDARD,
    MESSAGE_TYPE_SUBMIT_SHARES_SUCCESS, MESSAGE_TYPE_UPDATE_CHANNEL,
    MESSAGE_TYPE_UPDATE_CHANNEL_ERROR, NewMiningJob, OpenMiningChannelError,
    OpenStandardMiningChannel, OpenStandardMiningChannelSuccess, SetNewPrevHash, SetTarget,
    SubmitSharesError, SubmitSharesStandard, SubmitSharesSuccess, UpdateChannel,
    UpdateChannelError,
};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, info, warn};

use super::super::session::{MAX_UNANSWERED_SUBMITS, SessionEnd};
use super::super::{
    ClientConfig, ClientEvent, PoolConfig, SubmitOutcome, SubmitResult, Work, not_sent,
};
use crate::failover::deadline_after;
use crate::sv2::{Frame, FrameReader, FrameWriter, Sv2Error};
use crate::transport::PoolUrl;
use crate::untrusted::escape;
use crate::work::{Difficulty, Extranonce, Hash256, Job, Share, Target, U256 as Num256};

/// Future jobs kept until a SetNewPrevHash names one; jobs kept for their version on submit.
const MAX_FUTURE_JOBS: usize = 16;
const MAX_KNOWN_JOBS: usize = 64;

/// The current block as the pool announced it.
#[derive(Clone, Copy)]
struct PrevHash {
    hash: Hash256,
    min_ntime: u32,
    nbits: u32,
}

/// A job as the pool sent it (header fields only).
#[derive(Clone, Copy)]
struct HeaderJob {
    id: u32,
    version: u32,
    merkle_root: Hash256,
}

struct PendingShare {
    reply: oneshot::Sender<SubmitOutcome>,
    sent: Instant,
    job_id: u32,
    late: bool,
}

/// What the handshake learned about the channel.
pub(super) struct Channel {
    pub(super) id: u32,
    /// The target for the next job (SetTarget applies from there on, like set_difficulty).
    pub(super) target: Target,
    pub(super) version_mask: Option<u32>,
}

pub(super) struct V2Session {
    cfg: ClientConfig,
    pub(super) pool: usize,
    entry: PoolConfig,
    pool_url: String,
    pub(super) reader: FrameReader,
    pub(super) writer: FrameWriter,
    pub(super) channel: Option<Channel>,
    prev: Option<PrevHash>,
    future: VecDeque<HeaderJob>,
    /// Jobs that became work, newest last: a share's version is rebuilt from its job's.
    known: VecDeque<HeaderJob>,
    next_seq: u32,
    pending: BTreeMap<u32, PendingShare>,
    /// The hashrate the pool was last told.
    told_hashrate: f32,
    pub(super) epoch: u64,
    /// Whether the pool has sent any work this session.
    pub(super) work_sent: bool,
}

/// The next frame, within `limit` (zero: unbounded), as the answer to `what`.
pub(super) async fn answer(
    reader: &mut FrameReader,
    limit: Duration,
    what: &'static str,
) -> Result<Frame, Sv2Error> {
    let next = reader.next();
    let frame = match deadline_after(limit) {
        None => next.await,
        Some(d) => tokio::time::timeout_at(d, next).await.map_err(|_| {
            Sv2Error::Handshake(format!(
                "the pool did not answer {what} within {} s",
                limit.as_secs_f64()
            ))
        })?,
    };
    match frame {
        Err(Sv2Error::Closed) => Err(Sv2Error::Handshake(format!(
            "the pool closed the connection instead of answering {what}"
        ))),
        other => other,
    }
}

pub(super) fn unexpected(msg_type: u8, waiting_for: &'static str) -> Sv2Error {
    Sv2Error::Handshake(format!(
        "message type 0x{msg_type:02x} while waiting for the answer to {waiting_for}"
    ))
}

pub(super) fn str0255<'a>(what: &'static str, s: &'a str) -> Result<Str0255<'a>, Sv2Error> {
    Str0255::try_from(s).map_err(|e| Sv2Error::Encode {
        what,
        reason: format!("{e:?} (at most 255 bytes)"),
    })
}

fn hash_of(bytes: [u8; 32]) -> Hash256 {
    Hash256(bytes)
}

fn target_of(bytes: [u8; 32]) -> Target {
    Target(Num256::from_le_bytes(bytes))
}

impl V2Session {
    pub(super) fn new(
        cfg: ClientConfig,
        pool: usize,
        entry: PoolConfig,
        url: &PoolUrl,
        reader: FrameReader,
        writer: FrameWriter,
        hashrate: f32,
    ) -> Self {
        V2Session {
            cfg,
            pool,
            pool_url: url.to_string(),
            entry,
            reader,
            writer,
            channel: None,
            prev: None,
            future: VecDeque::new(),
            known: VecDeque::new(),
            next_seq: 0,
            pending: BTreeMap::new(),
            told_hashrate: hashrate,
            epoch: 0,
            work_sent: false,
        }
    }

    /// OpenStandardMiningChannel and its answer. Frames for the channel that arrive with
    /// the answer (its first job and prevhash) are kept for the main loop.
    pub(super) async fn open_channel(
        &mut self,
        hashrate: f32,
        version_mask: Option<u32>,
    ) -> Result<(), Sv2Error> {
        let user = self.entry.user.clone();
        let max_target = [0xffu8; 32];
        let open = OpenStandardMiningChannel {
            request_id: 1,
            user_identity: str0255("user identity", &user)?,
            nominal_hash_rate: hashrate,
            max_target: U256::from(&max_target),
        };
        self.writer
            .send(
                "OpenStandardMiningChannel",
                open,
                MESSAGE_TYPE_OPEN_STANDARD_MINING_CHANNEL,
                false,
            )
            .await?;
        let limit = self.cfg.handshake_timeout;
        let mut frame = answer(&mut self.reader, limit, "OpenStandardMiningChannel").await?;
        match frame.msg_type {
            MESSAGE_TYPE_OPEN_STANDARD_MINING_CHANNEL_SUCCESS => {
                let (id, target) = frame.decode(
                    "OpenStandardMiningChannel.Success",
                    |m: OpenStandardMiningChannelSuccess| (m.channel_id, m.target.to_array()),
                )?;
                let target = target_of(target);
                info!(
                    pool = self.pool,
                    channel = id,
                    difficulty = target.to_difficulty(),
                    "standard channel open"
                );
                self.channel = Some(Channel {
                    id,
                    target,
                    version_mask,
                });
                Ok(())
            }
            MESSAGE_TYPE_OPEN_MINING_CHANNEL_ERROR => {
                let code = frame
                    .decode("OpenMiningChannel.Error", |m: OpenMiningChannelError| {
                        escape(&m.error_code.as_utf8_or_hex())
                    })?;
                Err(Sv2Error::Handshake(format!(
                    "the pool refused the mining channel: {code}"
                )))
            }
            other => Err(unexpected(other, "OpenStandardMiningChannel")),
        }
    }

    /// Handles one frame of the running session; `Ok(Some(end))` ends it.
    pub(super) async fn handle_frame(
        &mut self,
        mut frame: Frame,
        events: &mpsc::UnboundedSender<ClientEvent>,
    ) -> Result<Option<SessionEnd>, Sv2Error> {
        if frame.ext_type != 0 {
            debug!(
                pool = self.pool,
                ext = frame.ext_type,
                msg = frame.msg_type,
                "message of an extension we did not ask for: ignored"
            );
            return Ok(None);
        }
        match frame.msg_type {
            MESSAGE_TYPE_NEW_MINING_JOB => {
                let (channel, job, min_ntime) =
                    frame.decode("NewMiningJob", |m: NewMiningJob| {
                        (
                            m.channel_id,
                            HeaderJob {
                                id: m.job_id,
                                version: m.version,
                                merkle_root: hash_of(m.merkle_root.to_array()),
                            },
                            m.min_ntime.into_inner(),
                        )
                    })?;
                if !self.is_our_channel(channel, "NewMiningJob") {
                    return Ok(None);
                }
                match min_ntime {
                    None => {
                        debug!(pool = self.pool, job = job.id, "future job");
                        self.future.push_back(job);
                        if self.future.len() > MAX_FUTURE_JOBS {
                            self.future.pop_front();
                        }
                    }
                    Some(ntime) => match self.prev {
                        Some(prev) => {
                            self.emit(job, prev, ntime.max(prev.min_ntime), false, events)
                        }
                        None => warn!(
                            pool = self.pool,
                            job = job.id,
                            "job for the current block before any SetNewPrevHash: ignored"
                        ),
                    },
                }
            }
            MESSAGE_TYPE_MINING_SET_NEW_PREV_HASH => {
                let (channel, job_id, prev) =
                    frame.decode("SetNewPrevHash", |m: SetNewPrevHash| {
                        (
                            m.channel_id,
                            m.job_id,
                            PrevHash {
                                hash: hash_of(m.prev_hash.to_array()),
                                min_ntime: m.min_ntime,
                                nbits: m.nbits,
                            },
                        )
                    })?;
                if !self.is_our_channel(channel, "SetNewPrevHash") {
                    return Ok(None);
                }
                self.prev = Some(prev);
                match self.future.iter().position(|j| j.id == job_id) {
                    Some(i) => {
                        let job = self.future[i];
                        // Future jobs older than the one activated were for a block that
                        // never came.
                        self.future.drain(..=i);
                        self.emit(job, prev, prev.min_ntime, true, events);
                    }
                    None => {
                        warn!(
                            pool = self.pool,
                            job = job_id,
                            "SetNewPrevHash for a job never sent: waiting for the next job"
                        );
                        // Work on the old block is stale now; nothing valid to mine until the
                        // pool sends a job for this one.
                        let _ = events.send(ClientEvent::Disconnected {
                            pool: self.pool,
                            reason: "new block without a job for it".into(),
                        });
                    }
                }
            }
            MESSAGE_TYPE_SET_TARGET => {
                let (channel, target) = frame.decode("SetTarget", |m: SetTarget| {
                    (m.channel_id, target_of(m.maximum_target.to_array()))
                })?;
                if !self.is_our_channel(channel, "SetTarget") {
                    return Ok(None);
                }
                if let Some(c) = self.channel.as_mut() {
                    debug!(
                        pool = self.pool,
                        difficulty = target.to_difficulty(),
                        "target for the next job"
                    );
                    c.target = target;
                }
            }
            MESSAGE_TYPE_SUBMIT_SHARES_SUCCESS => {
                let (last, count) = frame
                    .decode("SubmitShares.Success", |m: SubmitSharesSuccess| {
                        (m.last_sequence_number, m.new_submits_accepted_count)
                    })?;
                self.answer_success(last, count);
            }
            MESSAGE_TYPE_SUBMIT_SHARES_ERROR => {
                let (seq, code) = frame.decode("SubmitShares.Error", |m: SubmitSharesError| {
                    (m.sequence_number, escape(&m.error_code.as_utf8_or_hex()))
                })?;
                self.answer_error(seq, code);
            }
            MESSAGE_TYPE_UPDATE_CHANNEL_ERROR => {
                let code = frame.decode("UpdateChannel.Error", |m: UpdateChannelError| {
                    escape(&m.error_code.as_utf8_or_hex())
                })?;
                warn!(pool = self.pool, code = %code, "the pool refused our hashrate update");
            }
            MESSAGE_TYPE_CLOSE_CHANNEL => {
                let code = frame.decode("CloseChannel", |m: CloseChannel| {
                    escape(&m.reason_code.as_utf8_or_hex())
                })?;
                return Err(Sv2Error::Handshake(format!(
                    "the pool closed the channel: {code}"
                )));
            }
            MESSAGE_TYPE_RECONNECT => {
                let (host, port) = frame.decode("Reconnect", |m: Reconnect| {
                    (m.new_host.as_utf8_or_hex(), m.new_port)
                })?;
                let same_host = host.is_empty() || host == self.entry.url.host;
                if !same_host {
                    warn!(pool = self.pool, host = %escape(&host), "Reconnect to another host ignored; reconnecting to the configured pool");
                }
                return Ok(Some(SessionEnd::Reconnect {
                    port: (same_host && port != 0).then_some(port),
                    wait: Duration::ZERO,
                }));
            }
            other => {
                // A message of the job declaration or template protocols, or one a pool
                // sends to proxies only: not for us, and harmless to skip.
                debug!(
                    pool = self.pool,
                    msg = other,
                    "message we do not use: ignored"
                );
            }
        }
        Ok(None)
    }

    fn is_our_channel(&self, channel: u32, what: &str) -> bool {
        let ours = self.channel.as_ref().is_some_and(|c| c.id == channel);
        if !ours {
            warn!(
                pool = self.pool,
                channel, "{what} for a channel we did not open: ignored"
            );
        }
        ours
    }

    /// Turns a job on a prevhash into work for the engine.
    fn emit(
        &mut self,
        job: HeaderJob,
        prev: PrevHash,
        ntime: u32,
        clean: bool,
        events: &mpsc::UnboundedSender<ClientEvent>,
    ) {
        let Some(channel) = self.channel.as_ref() else {
            return;
        };
        self.known.retain(|j| j.id != job.id);
        self.known.push_back(job);
        if self.known.len() > MAX_KNOWN_JOBS {
            self.known.pop_front();
        }
        let target = channel.target;
        let work = Work {
            job: Job::header_only(
                job.id.to_string(),
                prev.hash,
                job.merkle_root,
                job.version,
                prev.nbits,
                ntime,
                clean,
            ),
            extranonce: Extranonce::header_only(),
            difficulty: Difficulty::new(target.to_difficulty()).unwrap_or(Difficulty::ONE),
            target,
            version_mask: channel.version_mask,
            pool: self.pool,
            pool_url: self.pool_url.clone(),
            epoch: self.epoch,
        };
        debug!(pool = self.pool, job = job.id, clean, "new work");
        self.work_sent = true;
        let _ = events.send(ClientEvent::Work(Arc::new(work)));
    }

    pub(super) async fn submit(
        &mut self,
        share: Share,
        reply: oneshot::Sender<SubmitOutcome>,
    ) -> Result<(), Sv2Error> {
        let Some(channel) = self.channel.as_ref() else {
            let _ = reply.send(not_sent(
                SubmitResult::Stale("no channel".into()),
                self.pool,
            ));
            return Ok(());
        };
        let channel_id = channel.id;
        let mask = channel.version_mask.unwrap_or(0);
        let job = share
            .job_id
            .parse::<u32>()
            .ok()
            .and_then(|id| self.known.iter().find(|j| j.id == id).copied());
        let Some(job) = job else {
            let _ = reply.send(not_sent(
                SubmitResult::Stale("job no longer known to this session".into()),
                self.pool,
            ));
            return Ok(());
        };
        if self.pending.len() >= MAX_UNANSWERED_SUBMITS
            && let Some((&oldest, _)) = self.pending.iter().next()
            && let Some(p) = self.pending.remove(&oldest)
        {
            warn!(
                pool = self.pool,
                "too many shares without an answer from the pool: the oldest counts as stale"
            );
            let _ = p.reply.send(not_sent(
                SubmitResult::Stale("the pool did not answer it (too many unanswered)".into()),
                self.pool,
            ));
        }
        let version = match share.version_bits {
            Some(bits) => (job.version & !mask) | (bits & mask),
            None => job.version,
        };
        let seq = self.next_seq;
        self.next_seq = self.next_seq.wrapping_add(1);
        self.pending.insert(
            seq,
            PendingShare {
                reply,
                sent: Instant::now(),
                job_id: job.id,
                late: false,
            },
        );
        let msg = SubmitSharesStandard {
            channel_id,
            sequence_number: seq,
            job_id: job.id,
            nonce: share.nonce,
            ntime: share.ntime,
            version,
        };
        self.writer
            .send(
                "SubmitSharesStandard",
                msg,
                MESSAGE_TYPE_SUBMIT_SHARES_STANDARD,
                true,
            )
            .await
    }

    /// Every share up to `last` that is still waiting was accepted.
    fn answer_success(&mut self, last: u32, count: u32) {
        let done: Vec<u32> = self.pending.range(..=last).map(|(s, _)| *s).collect();
        if done.len() != count as usize {
            debug!(
                pool = self.pool,
                count,
                answered = done.len(),
                "SubmitShares.Success count differs from the shares it answers"
            );
        }
        for seq in done {
            if let Some(p) = self.pending.remove(&seq) {
                debug!(
                    pool = self.pool,
                    job = p.job_id,
                    late = p.late,
                    "share accepted"
                );
                let _ = p.reply.send(SubmitOutcome {
                    result: SubmitResult::Accepted,
                    pool: self.pool,
                    pool_url: Some(self.pool_url.clone()),
                    latency: Some(p.sent.elapsed()),
                });
            }
        }
    }

    fn answer_error(&mut self, seq: u32, code: String) {
        let Some(p) = self.pending.remove(&seq) else {
            warn!(
                pool = self.pool,
                seq, "SubmitShares.Error for a share never sent (or already answered): ignored"
            );
            return;
        };
        let result = if code.contains("stale") {
            info!(pool = self.pool, job = p.job_id, reason = %code, "share stale");
            SubmitResult::Stale(code)
        } else {
            warn!(pool = self.pool, job = p.job_id, reason = %code, "share rejected");
            SubmitResult::Rejected(code)
        };
        let _ = p.reply.send(SubmitOutcome {
            result,
            pool: self.pool,
            pool_url: Some(self.pool_url.clone()),
            latency: Some(p.sent.elapsed()),
        });
    }

    /// UpdateChannel when the rig's hashrate moved by more than a tenth since the pool was
    /// last told (a pool sets the channel's target from it; every small wobble is noise).
    pub(super) async fn update_hashrate(&mut self, h: f32) -> Result<(), Sv2Error> {
        let Some(channel) = self.channel.as_ref() else {
            return Ok(());
        };
        let told = self.told_hashrate;
        if (h - told).abs() <= told.abs() * 0.1 && told > 0.0 {
            return Ok(());
        }
        self.told_hashrate = h;
        let max_target = [0xffu8; 32];
        let msg = UpdateChannel {
            channel_id: channel.id,
            nominal_hash_rate: h,
            maximum_target: U256::from(&max_target),
        };
        debug!(pool = self.pool, hashrate = h, "UpdateChannel");
        self.writer
            .send("UpdateChannel", msg, MESSAGE_TYPE_UPDATE_CHANNEL, true)
            .await
    }

    /// Shares unanswered for `submit_timeout` are reported once and still wait for an answer.
    pub(super) fn has_pending(&self) -> bool {
        !self.pending.is_empty()
    }

    pub(super) fn sweep(&mut self) {
        let timeout = self.cfg.submit_timeout;
        for (seq, p) in self.pending.iter_mut() {
            if !p.late && p.sent.elapsed() > timeout {
                p.late = true;
                warn!(
                    pool = self.pool,
                    seq,
                    job = p.job_id,
                    "the pool has not answered a share for {timeout:?}; still waiting for its answer"
                );
            }
        }
    }

    pub(super) fn fail_pending(&mut self, reason: &str) {
        for (_, p) in std::mem::take(&mut self.pending) {
            let _ = p
                .reply
                .send(not_sent(SubmitResult::Stale(reason.into()), self.pool));
        }
    }
}

//! One Stratum V2 connection of the built-in pool: the Noise handshake as responder with a
//! certificate the pool's authority key signs, SetupConnection for the mining protocol,
//! standard channels (header-only miners) and extended channels (proxies such as the
//! reference translator), jobs, targets, and the same independent check of every share as
//! the V1 side ([`judge_share`]).
//!
//! Jobs are the V1 side's ([`ServerJob`]): a standard channel gets the merkle root of the
//! coinbase with the channel's whole extranonce filled in (its own extranonce1 and an
//! all-zero extranonce2), an extended channel gets the coinbase parts and merkle path and
//! rolls the extranonce2 itself. So a V2 share rebuilds, through [`Share::header`], exactly
//! the header a V1 share with that extranonce would, and is judged by the same code.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;

use binary_sv2::{B032, B064K, Seq0255, Str0255, Sv2Option, U256};
use common_messages_sv2::{
    MESSAGE_TYPE_SETUP_CONNECTION, MESSAGE_TYPE_SETUP_CONNECTION_ERROR,
    MESSAGE_TYPE_SETUP_CONNECTION_SUCCESS, Protocol, SetupConnection, SetupConnectionError,
    SetupConnectionSuccess,
};
use mining_sv2::{
    CloseChannel, ERROR_CODE_SUBMIT_SHARES_BAD_EXTRANONCE_SIZE,
    ERROR_CODE_SUBMIT_SHARES_DIFFICULTY_TOO_LOW, ERROR_CODE_SUBMIT_SHARES_DUPLICATE_SHARE,
    ERROR_CODE_SUBMIT_SHARES_INVALID_CHANNEL_ID, ERROR_CODE_SUBMIT_SHARES_INVALID_JOB_ID,
    ERROR_CODE_SUBMIT_SHARES_INVALID_NON_ROLLABLE_VERSION_BIT,
    ERROR_CODE_SUBMIT_SHARES_INVALID_SHARE, ERROR_CODE_SUBMIT_SHARES_STALE_SHARE,
    MESSAGE_TYPE_CLOSE_CHANNEL, MESSAGE_TYPE_MINING_SET_NEW_PREV_HASH,
    MESSAGE_TYPE_NEW_EXTENDED_MINING_JOB, MESSAGE_TYPE_NEW_MINING_JOB,
    MESSAGE_TYPE_OPEN_EXTENDED_MINING_CHANNEL, MESSAGE_TYPE_OPEN_EXTENDED_MINING_CHANNEL_SUCCESS,
    MESSAGE_TYPE_OPEN_MINING_CHANNEL_ERROR, MESSAGE_TYPE_OPEN_STANDARD_MINING_CHANNEL,
    MESSAGE_TYPE_OPEN_STANDARD_MINING_CHANNEL_SUCCESS, MESSAGE_TYPE_SET_TARGET,
    MESSAGE_TYPE_SUBMIT_SHARES_ERROR, MESSAGE_TYPE_SUBMIT_SHARES_EXTENDED,
    MESSAGE_TYPE_SUBMIT_SHARES_STANDARD, MESSAGE_TYPE_SUBMIT_SHARES_SUCCESS,
    MESSAGE_TYPE_UPDATE_CHANNEL, NewExtendedMiningJob, NewMiningJob, OpenExtendedMiningChannel,
    OpenExtendedMiningChannelSuccess, OpenMiningChannelError, OpenStandardMiningChannel,
    OpenStandardMiningChannelSuccess, SetNewPrevHash, SetTarget, SubmitSharesError,
    SubmitSharesExtended, SubmitSharesStandard, SubmitSharesSuccess, UpdateChannel,
};
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, broadcast, watch};
use tokio::time::Instant;
use tracing::{debug, info, warn};

use super::job::ServerJob;
use super::session::{
    ConnectionCount, HANDSHAKE_TIMEOUT, MAX_SENT_JOBS, SentJob, WRITE_TIMEOUT, count_reject,
    judge_share,
};
use super::stats::RejectReason;
use super::vardiff::Vardiff;
use super::{Control, Extranonce1Lease, Shared};
use crate::sv2::{Frame, FrameReader, FrameWriter, Sv2Error, responder_handshake};
use crate::timers::sleep_until_or_never;
use crate::untrusted::escape;
use crate::work::{Difficulty, ExtraNonce2, Extranonce, Share};

/// SetupConnection flags of the mining protocol.
const REQUIRES_WORK_SELECTION: u32 = 1 << 1;
/// SetupConnection.Success flag: the miner must not roll the version.
const REQUIRES_FIXED_VERSION: u32 = 1;
/// Channels one connection may open (a proxy opens one per downstream miner).
const MAX_CHANNELS: usize = 256;

enum Kind {
    /// Header-only: the pool fixes the whole extranonce (extranonce2 all zeros).
    Standard,
    /// The miner (a proxy) rolls extranonce2 itself.
    Extended,
}

struct Channel {
    kind: Kind,
    user: String,
    extranonce: Extranonce,
    /// The lease on `extranonce`'s extranonce1.
    extranonce1: Arc<Extranonce1Lease>,
    sent: VecDeque<SentJob>,
}

struct Session {
    shared: Arc<Shared>,
    peer: SocketAddr,
    reader: FrameReader,
    writer: FrameWriter,
    jobs_rx: watch::Receiver<Arc<ServerJob>>,
    control_rx: broadcast::Receiver<Control>,
    shutdown_rx: watch::Receiver<bool>,
    setup: bool,
    channels: HashMap<u32, Channel>,
    next_channel: u32,
    /// SV2 job ids are per connection; every id below this one was issued here.
    next_job: u32,
    difficulty: Difficulty,
    /// Per connection, as on the V1 side: a new target for all its channels.
    vardiff: Option<Vardiff>,
    version_mask: u32,
}

/// The session is over (peer gone, protocol error, write failed or timed out).
struct Closed;

type Flow = Result<(), Closed>;

/// Runs one Stratum V2 connection to its end. `_permit` holds a slot of `max_connections`.
pub(super) async fn run(
    shared: Arc<Shared>,
    tcp: TcpStream,
    peer: SocketAddr,
    _permit: OwnedSemaphorePermit,
) {
    let _count = ConnectionCount(shared.clone());
    let _ = tcp.set_nodelay(true);
    let Some(authority) = shared.config.sv2.as_ref().map(|c| c.authority.clone()) else {
        return;
    };
    let (reader, writer) =
        match responder_handshake(tcp, &authority, HANDSHAKE_TIMEOUT, WRITE_TIMEOUT).await {
            Ok(rw) => rw,
            Err(e) => {
                debug!(%peer, error = %e, "Stratum V2 handshake failed");
                return;
            }
        };
    info!(%peer, "Stratum V2 miner connected");
    let difficulty = Difficulty::new(shared.config.difficulty).unwrap_or(Difficulty::ONE);
    let s_vardiff = shared
        .config
        .vardiff
        .clone()
        .map(|v| Vardiff::new(v, std::time::Instant::now()));
    let mut s = Session {
        jobs_rx: shared.jobs.subscribe(),
        control_rx: shared.control.subscribe(),
        shutdown_rx: shared.shutdown.subscribe(),
        version_mask: shared.config.version_mask,
        shared,
        peer,
        reader,
        writer,
        setup: false,
        channels: HashMap::new(),
        next_channel: 1,
        next_job: 1,
        difficulty,
        vardiff: s_vardiff,
    };
    s.run().await;
    s.writer.shutdown().await;
    info!(%peer, "Stratum V2 miner disconnected");
}

enum Event {
    Frame(Result<Frame, Sv2Error>),
    NewJob,
    Control(Control),
    LoginTimeout,
    Shutdown,
    Nothing,
}

impl Session {
    async fn run(&mut self) {
        let login_deadline = Instant::now().checked_add(self.shared.config.login_timeout);
        loop {
            let event = tokio::select! {
                () = super::stopped(&mut self.shutdown_rx) => Event::Shutdown,
                frame = self.reader.next() => Event::Frame(frame),
                changed = self.jobs_rx.changed() => match changed {
                    Ok(()) => Event::NewJob,
                    Err(_) => Event::Shutdown,
                },
                control = self.control_rx.recv() => match control {
                    Ok(c) => Event::Control(c),
                    Err(broadcast::error::RecvError::Lagged(_)) => Event::Nothing,
                    Err(broadcast::error::RecvError::Closed) => Event::Shutdown,
                },
                () = sleep_until_or_never(login_deadline), if self.channels.is_empty() => Event::LoginTimeout,
            };
            let flow = match event {
                Event::Shutdown => Err(Closed),
                Event::Frame(Ok(frame)) => self.on_frame(frame).await,
                Event::Frame(Err(Sv2Error::Closed)) => Err(Closed),
                Event::Frame(Err(e)) => {
                    info!(peer = %self.peer, error = %e, "closing Stratum V2 connection");
                    Err(Closed)
                }
                Event::NewJob => self.on_new_job().await,
                Event::Control(Control::SetDifficulty(d)) => self.change_difficulty(d).await,
                Event::Control(Control::SetExtranonce) | Event::Nothing => Ok(()),
                Event::LoginTimeout => {
                    info!(peer = %self.peer, "closing Stratum V2 connection that opened no channel in time");
                    Err(Closed)
                }
            };
            if flow.is_err() {
                return;
            }
        }
    }

    async fn on_frame(&mut self, mut frame: Frame) -> Flow {
        if frame.ext_type != 0 {
            debug!(peer = %self.peer, ext = frame.ext_type, "message of an extension we do not offer: ignored");
            return Ok(());
        }
        if !self.setup && frame.msg_type != MESSAGE_TYPE_SETUP_CONNECTION {
            info!(peer = %self.peer, msg = frame.msg_type, "Stratum V2 message before SetupConnection: closing");
            return Err(Closed);
        }
        let r = match frame.msg_type {
            MESSAGE_TYPE_SETUP_CONNECTION => {
                let m = frame.decode("SetupConnection", |m: SetupConnection| {
                    (m.protocol, m.flags, m.min_version, m.max_version)
                });
                match m {
                    Ok((protocol, flags, min, max)) => {
                        return self.on_setup(protocol, flags, min, max).await;
                    }
                    Err(e) => Err(e),
                }
            }
            MESSAGE_TYPE_OPEN_STANDARD_MINING_CHANNEL => {
                match frame.decode("OpenStandardMiningChannel", |m: OpenStandardMiningChannel| {
                    (m.request_id, m.user_identity.as_utf8_or_hex(), m.max_target.to_array())
                }) {
                    Ok((req, user, max_target)) => {
                        return self.open_channel(req, user, max_target, None).await;
                    }
                    Err(e) => Err(e),
                }
            }
            MESSAGE_TYPE_OPEN_EXTENDED_MINING_CHANNEL => {
                match frame.decode("OpenExtendedMiningChannel", |m: OpenExtendedMiningChannel| {
                    (
                        m.request_id,
                        m.user_identity.as_utf8_or_hex(),
                        m.max_target.to_array(),
                        m.min_extranonce_size,
                    )
                }) {
                    Ok((req, user, max_target, min)) => {
                        return self.open_channel(req, user, max_target, Some(min)).await;
                    }
                    Err(e) => Err(e),
                }
            }
            MESSAGE_TYPE_SUBMIT_SHARES_STANDARD => {
                match frame.decode("SubmitSharesStandard", |m: SubmitSharesStandard| {
                    (m.channel_id, m.sequence_number, m.job_id, m.nonce, m.ntime, m.version)
                }) {
                    Ok((ch, seq, job, nonce, ntime, version)) => {
                        return self
                            .on_submit(ch, seq, job, nonce, ntime, version, None)
                            .await;
                    }
                    Err(e) => Err(e),
                }
            }
            MESSAGE_TYPE_SUBMIT_SHARES_EXTENDED => {
                match frame.decode("SubmitSharesExtended", |m: SubmitSharesExtended| {
                    (
                        m.channel_id,
                        m.sequence_number,
                        m.job_id,
                        m.nonce,
                        m.ntime,
                        m.version,
                        m.extranonce.as_bytes().to_vec(),
                    )
                }) {
                    Ok((ch, seq, job, nonce, ntime, version, en)) => {
                        return self
                            .on_submit(ch, seq, job, nonce, ntime, version, Some(en))
                            .await;
                    }
                    Err(e) => Err(e),
                }
            }
            // Upstream "must stop sending messages for the channel"; a translator closes one
            // per downstream miner that leaves, so channels would otherwise pile up to the cap.
            MESSAGE_TYPE_CLOSE_CHANNEL => frame
                .decode("CloseChannel", |m: CloseChannel| {
                    (m.channel_id, m.reason_code.as_utf8_or_hex())
                })
                .map(|(ch, reason)| {
                    if self.channels.remove(&ch).is_some() {
                        debug!(peer = %self.peer, channel = ch, reason = %escape(&reason), "channel closed by the miner");
                    }
                }),
            MESSAGE_TYPE_UPDATE_CHANNEL => frame
                .decode("UpdateChannel", |m: UpdateChannel| {
                    (m.channel_id, m.nominal_hash_rate)
                })
                .map(|(ch, h)| {
                    debug!(peer = %self.peer, channel = ch, hashrate = h, "miner's nominal hashrate");
                }),
            other => {
                debug!(peer = %self.peer, msg = other, "Stratum V2 message we do not serve: ignored");
                Ok(())
            }
        };
        match r {
            Ok(()) => Ok(()),
            Err(e) => {
                // Binary framing has no resynchronisation point worth trusting after a bad
                // message: the connection ends, the miner reconnects.
                info!(peer = %self.peer, error = %e, "closing Stratum V2 connection");
                if matches!(
                    frame.msg_type,
                    MESSAGE_TYPE_SUBMIT_SHARES_STANDARD | MESSAGE_TYPE_SUBMIT_SHARES_EXTENDED
                ) {
                    // A share that cannot even be read counts like V1's malformed submit.
                    count_reject(&self.shared, None, RejectReason::Malformed);
                }
                Err(Closed)
            }
        }
    }

    async fn on_setup(&mut self, protocol: Protocol, flags: u32, min: u16, max: u16) -> Flow {
        let refuse = if protocol != Protocol::MiningProtocol {
            Some("unsupported-protocol")
        } else if !(min..=max).contains(&2) {
            Some("protocol-version-mismatch")
        } else if flags & REQUIRES_WORK_SELECTION != 0 {
            Some("unsupported-feature-flags")
        } else {
            None
        };
        if let Some(code) = refuse {
            info!(peer = %self.peer, code, "refusing SetupConnection");
            let code = code.to_string();
            let msg = SetupConnectionError {
                flags: REQUIRES_WORK_SELECTION,
                error_code: str0255(&code)?,
            };
            let _ = self
                .send(
                    "SetupConnection.Error",
                    msg,
                    MESSAGE_TYPE_SETUP_CONNECTION_ERROR,
                    false,
                )
                .await;
            return Err(Closed);
        }
        self.setup = true;
        let flags = if self.version_mask == 0 {
            REQUIRES_FIXED_VERSION
        } else {
            0
        };
        let msg = SetupConnectionSuccess {
            used_version: 2,
            flags,
        };
        self.send(
            "SetupConnection.Success",
            msg,
            MESSAGE_TYPE_SETUP_CONNECTION_SUCCESS,
            false,
        )
        .await
    }

    /// Opens a standard channel (`min_extranonce` None) or an extended one, then sends the
    /// current job on it.
    async fn open_channel(
        &mut self,
        request_id: u32,
        user: String,
        max_target: [u8; 32],
        min_extranonce: Option<u16>,
    ) -> Flow {
        let en2_size = self.shared.config.extranonce2_size;
        let refuse = if self.channels.len() >= MAX_CHANNELS {
            Some("channel-capacity-exhausted")
        } else if min_extranonce.is_some_and(|m| usize::from(m) > en2_size) {
            Some("min-extranonce-size-too-large")
        } else if crate::work::U256::from_le_bytes(max_target) < self.difficulty.target().0 {
            Some("max-target-out-of-range")
        } else {
            None
        };
        // The extranonce1 last: only a channel that opens takes one.
        let lease = match refuse {
            Some(code) => Err(code),
            None => self
                .shared
                .extranonce1()
                .ok_or("channel-capacity-exhausted"),
        };
        let lease = match lease {
            Ok(lease) => lease,
            Err(code) => {
                info!(peer = %self.peer, code, "refusing a mining channel");
                let code = code.to_string();
                let msg = OpenMiningChannelError {
                    request_id,
                    error_code: str0255(&code)?,
                };
                return self
                    .send(
                        "OpenMiningChannel.Error",
                        msg,
                        MESSAGE_TYPE_OPEN_MINING_CHANNEL_ERROR,
                        false,
                    )
                    .await;
            }
        };
        let id = self.next_channel;
        self.next_channel = self.next_channel.wrapping_add(1);
        let extranonce = Extranonce {
            extranonce1: lease.value().to_vec(),
            extranonce2_size: en2_size,
        };
        let target = self.difficulty.target().to_le_bytes();
        let user = escape(&user);
        let standard = min_extranonce.is_none();
        info!(peer = %self.peer, channel = id, user = %user, standard, "Stratum V2 channel open");
        if standard {
            // The whole extranonce: extranonce1 and the all-zero extranonce2 the pool fills in.
            let mut prefix = extranonce.extranonce1.clone();
            prefix.resize(prefix.len() + en2_size, 0);
            let msg = OpenStandardMiningChannelSuccess {
                request_id,
                channel_id: id,
                target: U256::from(&target),
                extranonce_prefix: b032(&prefix)?,
                group_channel_id: 0,
            };
            self.send(
                "OpenStandardMiningChannel.Success",
                msg,
                MESSAGE_TYPE_OPEN_STANDARD_MINING_CHANNEL_SUCCESS,
                false,
            )
            .await?;
        } else {
            let msg = OpenExtendedMiningChannelSuccess {
                request_id,
                channel_id: id,
                target: U256::from(&target),
                extranonce_size: en2_size as u16,
                extranonce_prefix: b032(&extranonce.extranonce1)?,
                group_channel_id: 0,
            };
            self.send(
                "OpenExtendedMiningChannel.Success",
                msg,
                MESSAGE_TYPE_OPEN_EXTENDED_MINING_CHANNEL_SUCCESS,
                false,
            )
            .await?;
        }
        self.channels.insert(
            id,
            Channel {
                kind: if standard {
                    Kind::Standard
                } else {
                    Kind::Extended
                },
                user,
                extranonce,
                extranonce1: lease,
                sent: VecDeque::new(),
            },
        );
        let job = self.jobs_rx.borrow().clone();
        self.send_job(id, job, true).await
    }

    async fn on_new_job(&mut self) -> Flow {
        let job = self.jobs_rx.borrow_and_update().clone();
        let clean = job.job.clean_jobs;
        self.send_job_to_all(job, clean).await?;
        let retarget = self
            .vardiff
            .as_mut()
            .and_then(|v| v.on_tick(std::time::Instant::now(), self.difficulty.get()))
            .and_then(|d| Difficulty::new(d).ok());
        match retarget {
            // SetTarget, then a job of its own to carry it.
            Some(d) => self.change_difficulty(d).await,
            None => Ok(()),
        }
    }

    async fn send_job_to_all(&mut self, job: Arc<ServerJob>, clean: bool) -> Flow {
        let ids: Vec<u32> = self.channels.keys().copied().collect();
        for id in ids {
            self.send_job(id, job.clone(), clean).await?;
        }
        Ok(())
    }

    /// Sends `job` on channel `id`: with its prevhash (as a future job activated at once)
    /// when it is `clean` or starts a block this channel has not seen (jobs are watched, not
    /// queued, so a channel may miss the clean job that started a block).
    async fn send_job(&mut self, id: u32, job: Arc<ServerJob>, clean: bool) -> Flow {
        let job_id = self.next_job;
        self.next_job = self.next_job.wrapping_add(1);
        let Some(ch) = self.channels.get_mut(&id) else {
            return Ok(());
        };
        let new_block = clean || ch.sent.back().is_none_or(|s| s.job.block != job.block);
        let min_ntime = (!new_block).then_some(job.job.ntime);
        ch.sent.push_back(SentJob {
            wire_id: job_id.to_string(),
            job: job.clone(),
            extranonce: ch.extranonce.clone(),
            difficulty: self.difficulty,
            accepted: HashSet::new(),
            _extranonce1: ch.extranonce1.clone(),
        });
        if ch.sent.len() > MAX_SENT_JOBS {
            ch.sent.pop_front();
        }
        let w = &job.job;
        match ch.kind {
            Kind::Standard => {
                let zeros =
                    ExtraNonce2::new(0, ch.extranonce.extranonce2_size).map_err(|_| Closed)?;
                let root = w.merkle_root(&ch.extranonce, &zeros).0;
                let msg = NewMiningJob {
                    channel_id: id,
                    job_id,
                    min_ntime: Sv2Option::new(min_ntime),
                    version: w.version,
                    merkle_root: U256::from(&root),
                };
                self.send("NewMiningJob", msg, MESSAGE_TYPE_NEW_MINING_JOB, true)
                    .await?;
            }
            Kind::Extended => {
                let path: Vec<U256<'_>> =
                    w.merkle_branch.iter().map(|h| U256::from(&h.0)).collect();
                let msg = NewExtendedMiningJob {
                    channel_id: id,
                    job_id,
                    min_ntime: Sv2Option::new(min_ntime),
                    version: w.version,
                    version_rolling_allowed: self.version_mask != 0,
                    merkle_path: Seq0255::try_from(path).map_err(|_| Closed)?,
                    coinbase_tx_prefix: B064K::new(&w.coinb1).map_err(|_| Closed)?,
                    coinbase_tx_suffix: B064K::new(&w.coinb2).map_err(|_| Closed)?,
                };
                self.send(
                    "NewExtendedMiningJob",
                    msg,
                    MESSAGE_TYPE_NEW_EXTENDED_MINING_JOB,
                    true,
                )
                .await?;
            }
        }
        if new_block {
            let prev = w.prevhash.to_header_order().0;
            let msg = SetNewPrevHash {
                channel_id: id,
                job_id,
                prev_hash: U256::from(&prev),
                min_ntime: w.ntime,
                nbits: w.nbits,
            };
            self.send(
                "SetNewPrevHash",
                msg,
                MESSAGE_TYPE_MINING_SET_NEW_PREV_HASH,
                true,
            )
            .await?;
        }
        Ok(())
    }

    /// SetTarget on every channel, then a fresh variant of the current job, so shares are
    /// judged by the difficulty of the job they were found on.
    async fn change_difficulty(&mut self, d: Difficulty) -> Flow {
        if d == self.difficulty {
            return Ok(());
        }
        self.difficulty = d;
        if let Some(v) = &mut self.vardiff {
            v.reset(std::time::Instant::now());
        }
        let target = d.target().to_le_bytes();
        let ids: Vec<u32> = self.channels.keys().copied().collect();
        for id in &ids {
            let msg = SetTarget {
                channel_id: *id,
                maximum_target: U256::from(&target),
            };
            self.send("SetTarget", msg, MESSAGE_TYPE_SET_TARGET, true)
                .await?;
        }
        if ids.is_empty() {
            return Ok(());
        }
        let job = self.jobs_rx.borrow().variant(self.shared.job_id());
        self.send_job_to_all(job, false).await
    }

    #[allow(clippy::too_many_arguments)]
    async fn on_submit(
        &mut self,
        channel_id: u32,
        seq: u32,
        job_id: u32,
        nonce: u32,
        ntime: u32,
        version: u32,
        extranonce: Option<Vec<u8>>,
    ) -> Flow {
        let verdict = self.judge(channel_id, job_id, nonce, ntime, version, extranonce);
        match verdict {
            Ok(assigned) => {
                let msg = SubmitSharesSuccess {
                    channel_id,
                    last_sequence_number: seq,
                    new_submits_accepted_count: 1,
                    new_shares_sum: assigned.max(0.0) as u64,
                };
                self.send(
                    "SubmitShares.Success",
                    msg,
                    MESSAGE_TYPE_SUBMIT_SHARES_SUCCESS,
                    true,
                )
                .await?;
                let retarget = self
                    .vardiff
                    .as_mut()
                    .and_then(|v| v.on_share(std::time::Instant::now(), self.difficulty.get()))
                    .and_then(|d| Difficulty::new(d).ok());
                match retarget {
                    Some(d) => self.change_difficulty(d).await,
                    None => Ok(()),
                }
            }
            Err((reason, detail, code)) => {
                let worker = self.channels.get(&channel_id).map(|c| c.user.clone());
                count_reject(&self.shared, worker.as_deref(), reason);
                debug!(peer = %self.peer, channel = channel_id, job = job_id, ?reason, %detail, "share rejected");
                let code = code.to_string();
                let msg = SubmitSharesError {
                    channel_id,
                    sequence_number: seq,
                    error_code: str0255(&code)?,
                };
                self.send(
                    "SubmitShares.Error",
                    msg,
                    MESSAGE_TYPE_SUBMIT_SHARES_ERROR,
                    true,
                )
                .await
            }
        }
    }

    /// [`super::session::make_room`] across every channel of the connection: while they
    /// remember `max_shares_per_job` accepted shares, the oldest job held that is older than
    /// the share's (`keep`; job ids grow) is forgotten, never a channel's newest job.
    fn make_room(&mut self, keep: u32) {
        let max = self.shared.config.max_shares_per_job;
        let keep = u64::from(keep);
        let id_of = |j: &SentJob| j.wire_id.parse::<u64>().unwrap_or(u64::MAX);
        let remembered = |c: &Channel| c.sent.iter().map(|j| j.accepted.len()).sum::<usize>();
        let mut total: usize = self.channels.values().map(remembered).sum();
        while total >= max {
            let oldest = self
                .channels
                .iter()
                .filter(|(_, c)| c.sent.len() > 1)
                .filter_map(|(id, c)| c.sent.front().map(|j| (*id, id_of(j))))
                .filter(|(_, job)| *job < keep)
                .min_by_key(|(_, job)| *job)
                .map(|(id, _)| id);
            let forgotten = oldest
                .and_then(|id| self.channels.get_mut(&id))
                .and_then(|c| c.sent.pop_front());
            match forgotten {
                Some(j) => total -= j.accepted.len(),
                None => break,
            }
        }
    }

    /// Finds the share's job and turns the V2 fields into a [`Share`] for [`judge_share`];
    /// on success, the difficulty it was assigned.
    fn judge(
        &mut self,
        channel_id: u32,
        job_id: u32,
        nonce: u32,
        ntime: u32,
        version: u32,
        extranonce: Option<Vec<u8>>,
    ) -> Result<f64, (RejectReason, String, &'static str)> {
        use RejectReason as R;
        let mask = self.version_mask;
        let no_channel = || {
            (
                R::UnknownJob,
                "no such channel".to_string(),
                ERROR_CODE_SUBMIT_SHARES_INVALID_CHANNEL_ID,
            )
        };
        let wire = job_id.to_string();
        let holds_job = self.channels.get(&channel_id).ok_or_else(no_channel)?;
        if holds_job.sent.iter().any(|j| j.wire_id == wire) {
            self.make_room(job_id);
        }
        let ch = self.channels.get_mut(&channel_id).ok_or_else(no_channel)?;
        let Some(sent) = ch.sent.iter_mut().rev().find(|j| j.wire_id == wire) else {
            return Err(if job_id < self.next_job {
                (
                    R::Stale,
                    "job expired".into(),
                    ERROR_CODE_SUBMIT_SHARES_STALE_SHARE,
                )
            } else {
                (
                    R::UnknownJob,
                    String::new(),
                    ERROR_CODE_SUBMIT_SHARES_INVALID_JOB_ID,
                )
            });
        };
        let job_version = sent.job.job.version;
        if version & !mask != job_version & !mask {
            return Err((
                R::BadVersion,
                format!("{version:08x} changes bits outside mask {mask:08x}"),
                ERROR_CODE_SUBMIT_SHARES_INVALID_NON_ROLLABLE_VERSION_BIT,
            ));
        }
        let size = sent.extranonce.extranonce2_size;
        let extranonce2 = match (&ch.kind, extranonce) {
            (Kind::Standard, _) => ExtraNonce2::new(0, size),
            (Kind::Extended, Some(en)) => ExtraNonce2::from_hex(&hex::encode(en), size),
            (Kind::Extended, None) => ExtraNonce2::from_hex("", size),
        }
        .map_err(|e| {
            (
                R::BadExtranonce2,
                e.to_string(),
                ERROR_CODE_SUBMIT_SHARES_BAD_EXTRANONCE_SIZE,
            )
        })?;
        let share = Share {
            job_id: wire,
            extranonce2,
            ntime,
            nonce,
            version_bits: (mask != 0).then_some(version & mask),
        };
        let assigned = sent.difficulty.get();
        let user = ch.user.clone();
        judge_share(&self.shared, sent, &share, mask, &user).map_err(|(reason, detail)| {
            let code = match reason {
                R::Stale => ERROR_CODE_SUBMIT_SHARES_STALE_SHARE,
                R::Duplicate => ERROR_CODE_SUBMIT_SHARES_DUPLICATE_SHARE,
                R::LowDifficulty => ERROR_CODE_SUBMIT_SHARES_DIFFICULTY_TOO_LOW,
                R::BadVersion => ERROR_CODE_SUBMIT_SHARES_INVALID_NON_ROLLABLE_VERSION_BIT,
                _ => ERROR_CODE_SUBMIT_SHARES_INVALID_SHARE,
            };
            (reason, detail, code)
        })?;
        debug!(peer = %self.peer, channel = channel_id, job = job_id, "share accepted");
        Ok(assigned)
    }

    async fn send<T: binary_sv2::Serialize + binary_sv2::GetSize>(
        &mut self,
        what: &'static str,
        msg: T,
        msg_type: u8,
        channel_msg: bool,
    ) -> Flow {
        match self.writer.send(what, msg, msg_type, channel_msg).await {
            Ok(()) => Ok(()),
            Err(Sv2Error::WriteTimeout(_)) => {
                warn!(peer = %self.peer, "Stratum V2 peer stopped reading; closing connection");
                Err(Closed)
            }
            Err(e) => {
                debug!(peer = %self.peer, error = %e, "Stratum V2 write failed");
                Err(Closed)
            }
        }
    }
}

fn str0255(s: &str) -> Result<Str0255<'_>, Closed> {
    Str0255::try_from(s).map_err(|_| Closed)
}

fn b032(b: &[u8]) -> Result<B032<'_>, Closed> {
    B032::new(b).map_err(|_| Closed)
}

//! The miner's side of Stratum V2 on one connection: Noise handshake against the pool's
//! authority key, SetupConnection for the mining protocol, one standard (header-only) channel,
//! jobs and new prevhashes turned into [`Work`], shares submitted and answered, the channel
//! updated with the rig's hashrate.
//!
//! It runs under the same supervisor as Stratum V1 (`supervisor`): the same pool list and
//! [`Failover`], the same commands, the same bounds (connect, handshake, each write, the
//! pool's silence), the same events and share answers, so the engine cannot tell the two
//! apart. What differs is only the protocol:
//!
//! - `NewMiningJob` without `min_ntime` is a future job: it becomes work only when a
//!   `SetNewPrevHash` names it (then as a clean job); with `min_ntime` it is work on the
//!   current prevhash at once.
//! - `SetTarget`, like V1's `mining.set_difficulty`, applies from the next job on.
//! - Shares are numbered; `SubmitShares.Success` answers every share up to its
//!   `last_sequence_number`, `SubmitShares.Error` one share.
//!
//! This file drives a connection (open, commands, timers, end) like the supervisor drives a
//! V1 session; `session` holds the protocol state of one connection and its messages.

mod session;

use std::time::Duration;

use common_messages_sv2::{
    MESSAGE_TYPE_SETUP_CONNECTION, MESSAGE_TYPE_SETUP_CONNECTION_ERROR,
    MESSAGE_TYPE_SETUP_CONNECTION_SUCCESS, Protocol, SetupConnection, SetupConnectionError,
    SetupConnectionSuccess,
};
use tracing::{debug, info};

use super::session::{SessionEnd, failed};
use super::supervisor::{DRAIN, Probe, Supervisor, poll_probe, probe as probe_pool};
use super::{ClientConfig, ClientEvent, Command, PoolConfig, ProofResult, SubmitResult, not_sent};
use crate::failover::{Failover, failback_timer, session_was_healthy};
use crate::sv2::{
    AuthorityPublicKey, FrameReader, FrameWriter, Sv2Error, connect_tcp, initiator_handshake,
};
use crate::timers::{sleep_until_or_never, tick};
use crate::transport::PoolUrl;
use crate::untrusted::escape;
use session::{V2Session, answer, str0255, unexpected};

/// SetupConnection flags of the mining protocol (SV2 specification, "Mining Protocol").
const REQUIRES_STANDARD_JOBS: u32 = 1;
const REQUIRES_VERSION_ROLLING: u32 = 1 << 2;
/// SetupConnection.Success flag: the pool does not allow version rolling.
const REQUIRES_FIXED_VERSION: u32 = 1;
/// The version bits a standard channel may roll (BIP320), unless the pool fixed the version.
pub const SV2_VERSION_MASK: u32 = 0x1fff_e000;

/// Runs one Stratum V2 connection to `url` from connect to its end; says whether it proved
/// its pool healthy. The supervisor's loop for V1, with the V2 session in place of V1's.
pub(super) async fn run(
    sup: &mut Supervisor,
    failover: &mut Failover,
    pool: usize,
    entry: PoolConfig,
    url: &PoolUrl,
    key: AuthorityPublicKey,
) -> (SessionEnd, bool) {
    // Commands are served while the connection opens, as V1 serves them during its
    // handshake: a shutdown or switch must not wait for a pool that answers slowly.
    let cfg = sup.cfg.clone();
    let opening = open(&cfg, pool, entry, url, key, sup.nominal_hashrate);
    tokio::pin!(opening);
    let mut s = loop {
        tokio::select! {
            r = &mut opening => match r {
                Ok(s) => break s,
                Err(e) => return (failed(e), false),
            },
            cmd = sup.cmds.recv() => match cmd {
                None | Some(Command::Shutdown) => {
                    sup.shutting_down = true;
                    return (SessionEnd::Shutdown, false);
                }
                Some(Command::SwitchPool(i)) => {
                    if failover.pin(i) && i != pool {
                        return (SessionEnd::Switch(i), false);
                    }
                }
                Some(Command::FollowFailover) => {
                    failover.unpin();
                }
                Some(Command::SetPools(p)) => {
                    if sup.replace_pools(failover, p, Some(pool)).is_some_and(|r| r.restart) {
                        return (SessionEnd::Reconfigured, false);
                    }
                }
                Some(Command::Submit { share, epoch, reply, .. }) => sup.queue(share, epoch, reply),
                Some(Command::SubmitProof { reply, .. }) => {
                    let _ = reply.send(ProofResult::Lost("Stratum V2 pools send no proving jobs".into()));
                }
                // No proving job ever came from a V2 session, so there is nothing to decline.
                Some(Command::DeclineProof { .. }) => {}
                Some(Command::NominalHashrate(h)) => sup.nominal_hashrate = h,
            },
        }
    };
    // No session resumption in SV2: every connection is a new channel, older shares stale.
    sup.epoch += 1;
    s.epoch = sup.epoch;
    let established = tokio::time::Instant::now();
    info!(pool, url = %url, channel = s.channel.as_ref().map_or(0, |c| c.id), "connected (Stratum V2)");
    let _ = sup.events.send(ClientEvent::Connected {
        pool,
        url: url.to_string(),
        resumed: false,
    });
    let end = main_loop(sup, failover, &mut s).await;
    let on_purpose = matches!(
        end,
        SessionEnd::Shutdown
            | SessionEnd::Switch(_)
            | SessionEnd::Reconnect { .. }
            | SessionEnd::Reconfigured
    );
    if on_purpose && s.has_pending() && !s.writer.failed {
        let events = sup.events.clone();
        let drain = async {
            while s.has_pending() {
                match s.reader.next().await {
                    Ok(frame) => {
                        let _ = s.handle_frame(frame, &events).await;
                    }
                    Err(_) => break,
                }
            }
        };
        let _ = tokio::time::timeout(DRAIN, drain).await;
    }
    s.fail_pending("connection to the pool ended before it answered");
    s.writer.shutdown().await;
    let reason = match &end {
        SessionEnd::Shutdown => "shutdown".to_string(),
        SessionEnd::Failed(r) => r.clone(),
        SessionEnd::Reconnect { .. } => "pool asked to reconnect".to_string(),
        SessionEnd::Switch(to) => format!("switching to pool {to}"),
        SessionEnd::Reconfigured => "pool list changed".to_string(),
    };
    let _ = sup.events.send(ClientEvent::Disconnected { pool, reason });
    // Frames are authenticated (Noise): any frame is the pool's own, so time established counts.
    (end, session_was_healthy(s.work_sent, established.elapsed()))
}

async fn main_loop(sup: &mut Supervisor, failover: &mut Failover, s: &mut V2Session) -> SessionEnd {
    let pool = s.pool;
    // Shares found while no session was up belong to an earlier epoch: a V2 connection never
    // resumes a session, so they are stale.
    sup.drain_stale(
        "found during a disconnection; the pool started a new session",
        pool,
    );
    let keepalive = sup.cfg.keepalive;
    let mut last_rx = tokio::time::Instant::now();
    let mut failback = failback_timer(sup.cfg.failback_interval);
    let mut probing: Option<Probe> = None;
    let mut sweep = tokio::time::interval(Duration::from_secs(1));
    let opened = tokio::time::Instant::now();
    loop {
        let keepalive_deadline = if keepalive.is_zero() {
            None
        } else {
            last_rx.checked_add(keepalive)
        };
        // A pool that keeps sending frames but no job within the keepalive of opening the
        // channel is given up on: the rig would mine nothing there.
        let work_deadline = if keepalive.is_zero() || s.work_sent {
            None
        } else {
            opened.checked_add(keepalive)
        };
        tokio::select! {
            frame = s.reader.next() => {
                last_rx = tokio::time::Instant::now();
                match frame {
                    Ok(frame) => match s.handle_frame(frame, &sup.events).await {
                        Ok(Some(end)) => return end,
                        Ok(None) => {}
                        Err(e) => return failed(e),
                    },
                    Err(Sv2Error::Closed) => return failed("pool closed the connection"),
                    Err(e) => return failed(e),
                }
            }
            () = sleep_until_or_never(keepalive_deadline) => {
                return failed(format_args!("no message from the pool for {} s", keepalive.as_secs_f64()));
            }
            () = sleep_until_or_never(work_deadline) => {
                return failed(format_args!("the pool sent no job within {} s of opening the channel", keepalive.as_secs_f64()));
            }
            cmd = sup.cmds.recv() => match cmd {
                None | Some(Command::Shutdown) => {
                    sup.shutting_down = true;
                    return SessionEnd::Shutdown;
                }
                Some(Command::SwitchPool(i)) => {
                    if let Some(end) = sup.switch_pool(failover, pool, i) {
                        return end;
                    }
                }
                Some(Command::FollowFailover) => Supervisor::follow_failover(failover, pool),
                Some(Command::SetPools(p)) => {
                    if let Some(end) = sup.set_pools(failover, pool, p) {
                        return end;
                    }
                }
                Some(Command::Submit { share, epoch, reply, .. }) => {
                    if epoch != sup.epoch {
                        let _ = reply.send(not_sent(SubmitResult::Stale("share from an earlier session".into()), pool));
                    } else if let Err(e) = s.submit(share, reply).await {
                        return failed(e);
                    }
                }
                Some(Command::SubmitProof { reply, .. }) => {
                    let _ = reply.send(ProofResult::Lost("Stratum V2 pools send no proving jobs".into()));
                }
                // No proving job ever came from a V2 session, so there is nothing to decline.
                Some(Command::DeclineProof { .. }) => {}
                Some(Command::NominalHashrate(h)) => {
                    sup.nominal_hashrate = h;
                    if let Err(e) = s.update_hashrate(h).await {
                        return failed(e);
                    }
                }
            },
            _ = tick(&mut failback), if pool != 0 && probing.is_none() && failover.pinned().is_none() => {
                debug!(from = pool, "probing the first pool");
                probing = Some(Box::pin(probe_pool(sup.cfg.clone(), failover.pools()[0].clone())));
            }
            healthy = poll_probe(&mut probing), if probing.is_some() => {
                probing = None;
                if healthy && failover.pinned().is_none() {
                    info!(from = pool, "first pool is healthy again: failing back");
                    return SessionEnd::Switch(0);
                }
                debug!(from = pool, "first pool still unhealthy; staying");
                if let Some(t) = failback.as_mut() {
                    t.reset();
                }
            }
            _ = sweep.tick() => s.sweep(),
        }
    }
}

/// Connects, handshakes, sets the connection up and opens the channel, all within the
/// connect and handshake bounds.
async fn open(
    cfg: &ClientConfig,
    pool: usize,
    entry: PoolConfig,
    url: &PoolUrl,
    key: AuthorityPublicKey,
    hashrate: f32,
) -> Result<V2Session, Sv2Error> {
    let (reader, writer, flags) = connect_and_setup(cfg, url, key).await?;
    let version_mask = match cfg.version_rolling {
        Some(mask) if flags & REQUIRES_FIXED_VERSION == 0 => Some(mask & SV2_VERSION_MASK),
        _ => None,
    }
    .filter(|m| *m != 0);
    let mut s = V2Session::new(cfg.clone(), pool, entry, url, reader, writer, hashrate);
    s.open_channel(hashrate, version_mask).await?;
    Ok(s)
}

/// TCP connect, Noise handshake and SetupConnection; returns the flags of the pool's
/// answer. Used by the session and by the fail-back probe.
async fn connect_and_setup(
    cfg: &ClientConfig,
    url: &PoolUrl,
    key: AuthorityPublicKey,
) -> Result<(FrameReader, FrameWriter, u32), Sv2Error> {
    let tcp = connect_tcp(&url.host, url.port, cfg.connect_timeout).await?;
    let (mut reader, mut writer) =
        initiator_handshake(tcp, key, cfg.handshake_timeout, cfg.write_timeout).await?;
    let host = url.host.clone();
    let vendor = "rigworker".to_string();
    let firmware = cfg.user_agent.clone();
    let empty = String::new();
    let mut flags = REQUIRES_STANDARD_JOBS;
    if cfg.version_rolling.is_some() {
        flags |= REQUIRES_VERSION_ROLLING;
    }
    let setup = SetupConnection {
        protocol: Protocol::MiningProtocol,
        min_version: 2,
        max_version: 2,
        flags,
        endpoint_host: str0255("endpoint host", &host)?,
        endpoint_port: url.port,
        vendor: str0255("vendor", &vendor)?,
        hardware_version: str0255("hardware version", &empty)?,
        firmware: str0255("firmware", &firmware)?,
        device_id: str0255("device id", &empty)?,
    };
    writer
        .send(
            "SetupConnection",
            setup,
            MESSAGE_TYPE_SETUP_CONNECTION,
            false,
        )
        .await?;
    let mut frame = answer(&mut reader, cfg.handshake_timeout, "SetupConnection").await?;
    match frame.msg_type {
        MESSAGE_TYPE_SETUP_CONNECTION_SUCCESS => {
            let flags = frame.decode("SetupConnection.Success", |m: SetupConnectionSuccess| {
                m.flags
            })?;
            Ok((reader, writer, flags))
        }
        MESSAGE_TYPE_SETUP_CONNECTION_ERROR => {
            let code = frame.decode("SetupConnection.Error", |m: SetupConnectionError| {
                escape(&m.error_code.as_utf8_or_hex())
            })?;
            Err(Sv2Error::Handshake(format!(
                "the pool refused SetupConnection: {code}"
            )))
        }
        other => Err(unexpected(other, "SetupConnection")),
    }
}

/// Whether the pool at `pool` takes a Noise handshake and a SetupConnection right now; the
/// whole exchange bounded by the connect timeout.
pub(super) async fn probe(cfg: ClientConfig, pool: PoolConfig, key: AuthorityPublicKey) -> bool {
    let limit = cfg.connect_timeout;
    let attempt = async {
        let (_reader, mut writer, _) = connect_and_setup(&cfg, &pool.url, key).await?;
        writer.shutdown().await;
        Ok::<(), Sv2Error>(())
    };
    matches!(tokio::time::timeout(limit, attempt).await, Ok(Ok(())))
}

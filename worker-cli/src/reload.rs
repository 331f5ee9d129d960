//! Config reload for a running `rigworker mine`: on SIGHUP or `POST /api/v1/reload`, the
//! TOML file given with `-c` is read again, merged with the flags and environment exactly as
//! at start (flags and environment still win), and what can change live is applied:
//!
//! - the pool list: URLs, order, users, passwords, TLS pins (`ClientHandle::set_pools`: a
//!   session on an unchanged pool goes on, otherwise the worker reconnects to the new first
//!   pool; a pin from the API is kept only if its pool is unchanged).
//!
//! Everything else (devices, backends, threads, intensity, FPGA settings, timers, version
//! rolling, proving, the HTTP address and token, log format) is fixed when the devices and
//! the session start; a reload that changes such a key says so in `restart_needed` and
//! leaves it as it was. A file that cannot be read or parsed changes nothing.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};
use tracing::{info, warn};

use crate::api::ReloadReply;
use crate::api::views;
use crate::cli::MineArgs;
use crate::config::{FileConfig, PoolEntry, merge_mine, parse};
use crate::engine::{EngineCommand, EngineState};

/// The keys a reload applies; every other changed key needs a restart.
const LIVE_KEYS: &[&str] = &["pools"];

pub struct Reloader {
    /// The flags and environment as given, before the file was merged in.
    flags: MineArgs,
    path: Option<PathBuf>,
    /// The file as last applied, to tell which keys a new version changes.
    applied: toml::Table,
    /// The built-in pool, when `mine` started one: used again if the file lists no pools.
    builtin: Option<PoolEntry>,
    state: Arc<Mutex<EngineState>>,
    config_view: Arc<Mutex<Value>>,
}

impl Reloader {
    pub fn new(
        flags: MineArgs,
        builtin: Option<PoolEntry>,
        state: Arc<Mutex<EngineState>>,
        config_view: Arc<Mutex<Value>>,
    ) -> Reloader {
        let path = flags.config.clone();
        // The file parsed at start; read as a plain table only to compare keys later.
        let applied = path
            .as_ref()
            .and_then(|p| std::fs::read_to_string(p).ok())
            .and_then(|t| toml::from_str(&t).ok())
            .unwrap_or_default();
        Reloader {
            flags,
            path,
            applied,
            builtin,
            state,
            config_view,
        }
    }

    /// Reads the file again and applies what can change live; `Err` says why nothing changed.
    pub fn reload(&mut self) -> ReloadReply {
        let Some(path) = self.path.clone() else {
            return Err("no config file to reload: start rigworker mine with -c FILE".into());
        };
        let text = std::fs::read_to_string(&path)
            .map_err(|e| format!("reading config file {}: {e}", path.display()))?;
        // `parse` never quotes the file: a broken line may hold a password or token, and this
        // answer goes to the log and to the API's client.
        let file: FileConfig =
            parse(&text).map_err(|e| format!("config file {}: {e}", path.display()))?;
        let table: toml::Table =
            parse(&text).map_err(|e| format!("config file {}: {e}", path.display()))?;
        let (merged, pools) =
            merge_mine(self.flags.clone(), &file).map_err(|e| format!("{e:#}"))?;
        let pools = if pools.is_empty() {
            self.builtin.iter().cloned().collect()
        } else {
            pools
        };
        let client =
            crate::commands::mine::client_config(&pools, &merged).map_err(|e| format!("{e:#}"))?;
        let tx = self
            .state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .commands
            .clone()
            .ok_or("the engine is not running")?;
        tx.send(EngineCommand::SetPools(client.pools))
            .map_err(|_| "the engine is not running".to_string())?;

        let mut keys: Vec<&String> = table.keys().chain(self.applied.keys()).collect();
        keys.sort();
        keys.dedup();
        let changed: Vec<String> = keys
            .into_iter()
            .filter(|k| table.get(*k) != self.applied.get(*k))
            .cloned()
            .collect();
        let (applied, restart): (Vec<String>, Vec<String>) = changed
            .into_iter()
            .partition(|k| LIVE_KEYS.contains(&k.as_str()));
        *self.config_view.lock().unwrap_or_else(|e| e.into_inner()) = views::config(
            &merged,
            &pools,
            self.builtin.is_some() && file.pools.is_empty(),
        );
        self.applied = table;
        info!(
            file = %path.display(),
            pools = pools.len(),
            changed = ?applied,
            restart_needed = ?restart,
            "config reloaded"
        );
        Ok(json!({
            "file": path,
            "pools": pools.iter().map(|p| &p.url).collect::<Vec<_>>(),
            "applied": applied,
            "restart_needed": restart,
        }))
    }

    /// Reloads on every SIGHUP and every request from the API, until the runtime ends.
    pub async fn serve(
        mut self,
        mut requests: Option<mpsc::Receiver<oneshot::Sender<ReloadReply>>>,
    ) {
        #[cfg(unix)]
        let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
        #[cfg(not(unix))]
        let mut hup: Option<()> = None;
        loop {
            tokio::select! {
                got = hangup(&mut hup) => {
                    if !got {
                        hup = None;
                        continue;
                    }
                    match self.reload() {
                        Ok(_) => {}
                        Err(why) => warn!(reason = %why, "SIGHUP: config not reloaded"),
                    }
                }
                req = next_request(&mut requests) => match req {
                    Some(reply) => {
                        let r = self.reload();
                        if let Err(why) = &r {
                            warn!(reason = %why, "API: config not reloaded");
                        }
                        let _ = reply.send(r);
                    }
                    None => requests = None,
                },
            }
            if hup.is_none() && requests.is_none() {
                return;
            }
        }
    }
}

/// The next SIGHUP (`true`), or `false` when the signal stream ended; never without one.
#[cfg(unix)]
async fn hangup(hup: &mut Option<tokio::signal::unix::Signal>) -> bool {
    match hup {
        Some(s) => s.recv().await.is_some(),
        None => std::future::pending().await,
    }
}

#[cfg(not(unix))]
async fn hangup(_: &mut Option<()>) -> bool {
    std::future::pending().await
}

async fn next_request(
    r: &mut Option<mpsc::Receiver<oneshot::Sender<ReloadReply>>>,
) -> Option<oneshot::Sender<ReloadReply>> {
    match r {
        Some(r) => r.recv().await,
        None => std::future::pending().await,
    }
}

//! `rigworker mine`: connect to the configured pools (or start the built-in pool on loopback
//! when none is given), mine on the chosen devices until SIGINT/SIGTERM or `--duration`, then
//! print the summary (and write it as JSON with `--summary-json`).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use stratum::client::{ClientConfig, PoolConfig};
use stratum::proving::ProverCapabilities;
use stratum::server::{ProvingConfig, Server, ServerConfig, Sv2Config, VardiffConfig};
use stratum::sv2::AuthorityKeypair;
use stratum::transport::{TlsOptions, parse_fingerprint};
use tracing::{info, warn};

use crate::api::{ApiConfig, ApiContext, ApiServer};
use crate::artifacts::{ArtifactCache, ArtifactHosts};
use crate::cli::MineArgs;
use crate::config::{FileConfig, PoolEntry, merge_mine};
use crate::engine::prove::ProvingEngine;
use crate::engine::{self, EngineConfig, EngineState};
use crate::reload::Reloader;
use proofs::prover::ProveOptions;
use proofs::{KeyCache, Precompute};

/// Runs `mine` with the flags (and environment) in `args` and the config file `file` that
/// `main` already read (it needs the file's `log_format` before logging starts).
pub fn run(args: MineArgs, file: &FileConfig) -> Result<()> {
    // Kept as given, so a config reload merges the new file with the same flags.
    let flags = args.clone();
    let (args, pools) = merge_mine(args, file)?;
    if args.sv2 && !pools.is_empty() {
        bail!(
            "--sv2 mines against the built-in pool over Stratum V2; for a pool of your own give -o stratum2+tcp://HOST:PORT/KEY"
        );
    }
    for (i, p) in pools.iter().enumerate() {
        if p.tls_insecure {
            warn!(
                pool = i,
                // From a flag, the environment or a file: escaped, so it cannot forge lines.
                url = %stratum::untrusted::escape(&p.url),
                "--tls-insecure: this pool's TLS certificate is not checked (encrypted, not \
                 authenticated: anyone on the path can impersonate it). For testing only; pin it \
                 with --tls-fingerprint instead"
            );
        }
    }
    // Checked before anything starts: a public address without a token is refused here.
    let api = args
        .http
        .as_deref()
        .map(|a| ApiConfig::new(a, args.http_token.as_ref().map(|t| t.expose().to_string())))
        .transpose()?;
    // Every time value is checked before anything starts, so a bad one is an error message,
    // never a panic in a timer later.
    let duration = args
        .duration
        .map(|d| super::seconds("--duration", d))
        .transpose()?;
    let print_interval = super::whole_seconds("--print-time", args.print_time.unwrap_or(60))?;
    // Checked before anything starts, like the times above.
    if let Some(limit) = args.temp_limit {
        crate::sensors::TempGuard::new(limit)?;
    }
    let watchdog = match args.watchdog.unwrap_or(30.0) {
        0.0 => None,
        s => Some(crate::engine::WatchdogConfig {
            timeout: super::seconds("--watchdog", s)?,
            max_rebuilds: args.watchdog_rebuilds.unwrap_or(3),
        }),
    };
    // Checked on a throw-away config now, so a bad value is reported before the devices and
    // the built-in pool start.
    apply_client_flags(&mut ClientConfig::new(Vec::new()), &args)?;
    let proving = proving_engine(&args)?;
    let workers = crate::select::open_workers(&args.devices)?;
    let rt = super::runtime()?;
    rt.block_on(async move {
        let mut builtin = None;
        let mut builtin_entry = None;
        let pools = if pools.is_empty() {
            let mut cfg = ServerConfig {
                listen: "127.0.0.1:0".parse()?,
                ..ServerConfig::default()
            };
            if let Some(dir) = &args.proving.proving_dir {
                let mut p = ProvingConfig::new(dir.clone());
                // A demo: the next proving job a few seconds after each answer, hashing
                // in between.
                p.interval = Duration::from_secs(5);
                cfg.proving = Some(p);
            }
            match args.pool_difficulty {
                Some(d) => {
                    cfg.difficulty = d;
                    cfg.vardiff = None;
                }
                None => {
                    // Start easy and let vardiff settle on a share every few seconds, so a new
                    // user sees accepted shares within seconds on any machine.
                    cfg.difficulty = 0.001;
                    cfg.vardiff = Some(VardiffConfig {
                        target_share_secs: 3.0,
                        min: 1e-6,
                        max: 1e12,
                        ..VardiffConfig::default()
                    });
                }
            }
            if args.sv2 {
                // A loopback demo: a fresh authority key each run is enough.
                cfg.sv2 = Some(Sv2Config {
                    listen: "127.0.0.1:0".parse()?,
                    authority: AuthorityKeypair::generate(),
                });
            }
            let server = Server::bind(cfg)
                .await
                .context("starting the built-in pool")?;
            let addr = server.local_addr();
            let handle = server.spawn();
            let url = match handle.sv2_url() {
                Some(url) => url.to_string(),
                None => format!("stratum+tcp://{addr}"),
            };
            info!(%url, "no pool given: mining against the built-in pool");
            builtin = Some(handle);
            let entry = PoolEntry {
                url,
                user: "rigworker.local".into(),
                pass: "x".into(),
                tls_fingerprint: None,
                tls_insecure: false,
            };
            builtin_entry = Some(entry.clone());
            vec![entry]
        } else {
            pools
        };
        let mut client = client_config(&pools, &args)?;
        if let Some(engine) = &proving {
            let max = engine.max_constraints();
            info!(
                max_constraints = max,
                mem_available_mib = proofs::mem::available_bytes().map(|b| b >> 20),
                capped = args.proving.prove_max_constraints.is_some(),
                "proving: the largest circuit this rig asks for (from the memory available, or --prove-max-constraints)"
            );
            client.prover = Some(ProverCapabilities::groth16_bn254(
                max,
                vec![engine.backend_name()],
            ));
        }
        let cfg = EngineConfig {
            client,
            print_interval,
            duration,
            drain_timeout: Duration::from_secs(5),
            proving,
            watchdog,
            reopen: Some(reopen_worker(&args.devices)),
            temp_limit: args.temp_limit,
        };
        let state = Arc::new(Mutex::new(EngineState::default()));
        let config_view = Arc::new(Mutex::new(crate::api::views::config(
            &args,
            &pools,
            builtin_entry.is_some(),
        )));
        let reloader = Reloader::new(flags, builtin_entry, state.clone(), config_view.clone());
        let (reload_tx, reload_rx) = match api {
            Some(_) => {
                let (tx, rx) = tokio::sync::mpsc::channel(4);
                (Some(tx), Some(rx))
            }
            None => (None, None),
        };
        // SIGHUP reloads whether or not the API runs (and no longer ends the process).
        let reload_task = tokio::spawn(reloader.serve(reload_rx));
        let api_task = match &api {
            Some(cfg) => {
                let ctx = ApiContext::new(cfg, state.clone(), config_view, reload_tx);
                Some(ApiServer::bind(cfg, ctx).await?.spawn())
            }
            None => None,
        };
        let summary = engine::run(cfg, workers, super::shutdown_signal(), state).await;
        if let Some(t) = api_task {
            t.abort();
        }
        reload_task.abort();
        println!("{}", summary.render());
        if let Some(path) = &args.summary_json {
            std::fs::write(path, serde_json::to_vec_pretty(&summary)?)
                .with_context(|| format!("writing {}", path.display()))?;
        }
        if let Some(pool) = builtin {
            pool.shutdown().await;
        }
        Ok(())
    })
}

/// How the watchdog rebuilds a device: the same backend, configured from the same flags,
/// opens one new worker on the same device index.
fn reopen_worker(devices: &crate::cli::DeviceArgs) -> crate::engine::ReopenWorker {
    let devices = devices.clone();
    Arc::new(move |info: &backends::DeviceInfo| {
        let backends = crate::select::backends(&devices)
            .map_err(|e| backends::BackendError::Device(e.to_string()))?;
        let backend = backends
            .into_iter()
            .find(|b| b.kind() == info.backend)
            .ok_or_else(|| {
                backends::BackendError::Device(format!("{} is not compiled in", info.backend))
            })?;
        backend
            .open(info.index, 1)?
            .pop()
            .ok_or(backends::BackendError::NoSuchDevice {
                backend: info.backend,
                index: info.index,
            })
    })
}

/// The prover `mine` runs proving jobs on, when asked to take them.
fn proving_engine(args: &MineArgs) -> Result<Option<Arc<ProvingEngine>>> {
    let p = &args.proving;
    if !(p.prove || p.proving_dir.is_some()) {
        return Ok(None);
    }
    if p.proving_dir.is_some() && !args.urls.is_empty() {
        bail!("--proving-dir configures the built-in pool: it cannot be combined with -o");
    }
    if p.proving_dir.is_some() && args.sv2 {
        bail!("--proving-dir: proving jobs travel over Stratum V1 only, not with --sv2");
    }
    let dir = p
        .proving_cache
        .clone()
        .unwrap_or_else(ArtifactCache::default_dir);
    let mb = p.proving_cache_mb.unwrap_or(4096);
    let cache = ArtifactCache::new(dir, mb.saturating_mul(1 << 20), TlsOptions::default())
        .context("proving-key cache")?;
    // Empty when the arguments were built in code (`Default`): the CPU, as on the command line.
    let name = if p.prove_backend.is_empty() {
        "cpu"
    } else {
        p.prove_backend.as_str()
    };
    let arith = super::prove_arith(p.prove_arith)?;
    let backend = backends::prove::open_prove_backend(name, p.prove_device)
        .with_context(|| format!("opening proving backend {name} device {}", p.prove_device))?;
    backend.set_g2_placement(p.prove_g2_on.into());
    tracing::info!(backend = name, cpu_arithmetic = %arith, "proving enabled");
    // Keys stay loaded across jobs: spend the memory that makes each proof faster.
    let pre = if p.prove_precompute {
        Precompute::Tables
    } else {
        Precompute::Endomorphism
    };
    let keys = KeyCache::new(backend, pre, 2);
    let options = ProveOptions {
        self_check: !p.no_verify_proofs,
    };
    let hosts = ArtifactHosts::new(&p.proving_artifact_hosts);
    let max = match p.prove_max_constraints {
        Some(n) => 1 << n.ilog2(),
        None => crate::engine::prove::max_constraints(p.prove_precompute),
    };
    let engine = ProvingEngine::new(cache, keys, options, hosts, max);
    // A GPU that proves pauses only its own hashing; the CPU prover pauses all of it.
    let engine = if name == "cpu" {
        engine
    } else {
        engine.pausing_device(name, p.prove_device)
    };
    Ok(Some(Arc::new(engine)))
}

pub fn client_config(pools: &[PoolEntry], args: &MineArgs) -> Result<ClientConfig> {
    let mut out = Vec::new();
    for p in pools {
        let url = p.url.parse().with_context(|| format!("pool {}", p.url))?;
        let fingerprint = match &p.tls_fingerprint {
            Some(f) => Some(parse_fingerprint(f).map_err(anyhow::Error::msg)?),
            None => None,
        };
        out.push(PoolConfig {
            url,
            user: p.user.clone(),
            password: p.pass.expose().to_string(),
            tls: TlsOptions {
                fingerprint,
                insecure: p.tls_insecure,
                extra_roots: Vec::new(),
            },
        });
    }
    let mut c = ClientConfig::new(out);
    apply_client_flags(&mut c, args)?;
    Ok(c)
}

/// The client settings that come from flags rather than from the pool list.
fn apply_client_flags(c: &mut ClientConfig, args: &MineArgs) -> Result<()> {
    if let Some(k) = args.keepalive {
        // 0 turns the keepalive off (a quiet pool is not declared dead), as documented.
        c.keepalive = match k {
            0 => Duration::ZERO,
            k => super::whole_seconds("--keepalive", k)?,
        };
    }
    if let Some(f) = args.failback_interval {
        c.failback_interval = super::seconds("--failback-interval", f)?;
    }
    if let Some(d) = args.suggest_difficulty
        && !(d.is_finite() && d > 0.0)
    {
        bail!("--suggest-difficulty must be a positive number, got {d}");
    }
    if args.no_version_rolling {
        c.version_rolling = None;
    }
    c.suggest_difficulty = args.suggest_difficulty;
    Ok(())
}

#[cfg(test)]
mod client_flag_tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    fn client_of(argv: &[&str]) -> ClientConfig {
        let cli = Cli::try_parse_from(argv.iter().copied()).unwrap();
        let Command::Mine(args) = cli.command else {
            panic!("mine")
        };
        client_config(&[], &args).unwrap()
    }

    #[test]
    fn keepalive_zero_is_off_and_other_values_are_seconds() {
        let off = client_of(&["rigworker", "mine", "--keepalive", "0"]);
        assert_eq!(off.keepalive, Duration::ZERO);
        let five = client_of(&["rigworker", "mine", "--keepalive", "5"]);
        assert_eq!(five.keepalive, Duration::from_secs(5));
    }
}

//! `rigworker pool`: the built-in Stratum V1 pool on its own (and Stratum V2 beside it with
//! `--sv2`), for LAN rigs, third-party miners, tests and demos. Prints per-worker statistics
//! periodically and on exit.

use anyhow::{Context, Result, bail};
use std::path::PathBuf;

use stratum::server::{
    ProvingConfig, Server, ServerConfig, ServerStats, ServerTransport, Sv2Config, TlsIdentity,
    VardiffConfig,
};
use stratum::sv2::AuthorityKeypair;
use tracing::info;

use crate::cli::PoolArgs;
use crate::config::{FileConfig, merge_pool};

/// Runs `pool` with the flags (and environment) in `args` and the config file `file` that
/// `main` already read.
pub fn run(args: PoolArgs, file: &FileConfig) -> Result<()> {
    let args = merge_pool(args, file);
    let mut cfg = ServerConfig::default();
    if let Some(l) = &args.listen {
        cfg.listen = l
            .parse()
            .with_context(|| format!("--listen {l:?} is not an address:port"))?;
    }
    if let Some(d) = args.difficulty {
        if !(d.is_finite() && d > 0.0) {
            bail!("--difficulty must be positive");
        }
        cfg.difficulty = d;
    }
    if let Some(secs) = args.vardiff {
        // Same bounds and message as every other time flag; the server's own check would
        // name its config field rather than the flag.
        super::seconds("--vardiff", secs)?;
        cfg.vardiff = Some(VardiffConfig {
            target_share_secs: secs,
            ..VardiffConfig::default()
        });
    }
    if let Some(j) = args.job_interval {
        cfg.job_interval = super::seconds("--job-interval", j)?;
    }
    if let Some(m) = args.max_connections {
        cfg.max_connections = m;
    }
    if let Some(dir) = &args.proving_dir {
        let mut p = ProvingConfig::new(dir.clone());
        if let Some(i) = args.proving_interval {
            p.interval = if i == 0.0 {
                std::time::Duration::ZERO
            } else {
                super::seconds("--proving-interval", i)?
            };
        }
        cfg.proving = Some(p);
    }
    cfg.transport = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => {
            let id = TlsIdentity::from_pem_files(cert, key)?;
            if args.websocket {
                ServerTransport::Wss(id)
            } else {
                ServerTransport::Tls(id)
            }
        }
        _ if args.websocket => ServerTransport::Ws,
        _ => ServerTransport::Tcp,
    };
    if let Some(l) = &args.sv2 {
        let listen = l
            .parse()
            .with_context(|| format!("--sv2 {l:?} is not an address:port"))?;
        let path = args.sv2_key.clone().unwrap_or_else(default_key_path);
        let authority = AuthorityKeypair::load_or_create(&path)
            .map_err(anyhow::Error::msg)
            .context("the pool's Stratum V2 authority key")?;
        info!(key_file = %path.display(), "Stratum V2 authority key");
        cfg.sv2 = Some(Sv2Config { listen, authority });
    }
    let print = super::whole_seconds("--print-time", args.print_time.unwrap_or(30))?;
    let rt = super::runtime()?;
    rt.block_on(async move {
        let server = Server::bind(cfg).await.context("starting the pool")?;
        let addr = server.local_addr();
        println!("rigworker pool listening on {addr}");
        let handle = server.spawn();
        println!("miners connect with: -o {}", handle.url());
        if let Some(url) = handle.sv2_url() {
            println!("Stratum V2 miners connect with:");
            // On a line of its own, so scripts can take it as it is.
            println!("{url}");
        }
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + print, print);
        let stop = super::shutdown_signal();
        tokio::pin!(stop);
        loop {
            tokio::select! {
                _ = &mut stop => break,
                _ = tick.tick() => info!("{}", stats_line(&handle.stats())),
            }
        }
        let stats = handle.stats();
        handle.shutdown().await;
        println!("{}", stats_line(&stats));
        for (name, w) in &stats.workers {
            // Names are the miners' words: escaped, so none can rewrite the terminal.
            let name = stratum::untrusted::escape(name);
            println!(
                "  worker {name}: accepted {} rejected {} best difficulty {:.4}",
                w.accepted,
                w.rejected_total(),
                w.best_difficulty
            );
        }
        Ok(())
    })
}

/// Where the pool keeps its authority key unless told: with the rest of the user's state.
fn default_key_path() -> PathBuf {
    let state = std::env::var_os("XDG_STATE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|v| !v.is_empty())
                .map(|h| PathBuf::from(h).join(".local/state"))
        });
    match state {
        Some(dir) => dir.join("rigworker/sv2-authority.key"),
        None => PathBuf::from("rigworker-sv2-authority.key"),
    }
}

fn stats_line(s: &ServerStats) -> String {
    format!(
        "pool: {} connections, {} workers, accepted {} rejected {} ({:?}), jobs {}{}",
        s.connections,
        s.workers.len(),
        s.total.accepted,
        s.total.rejected_total(),
        s.total.rejected,
        s.jobs,
        if s.proof_jobs > 0 {
            format!(
                ", proving jobs {} proofs accepted {} rejected {:?}",
                s.proof_jobs, s.proofs_accepted, s.proofs_rejected
            )
        } else {
            String::new()
        }
    )
}

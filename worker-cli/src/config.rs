//! The TOML config file and its merge with flags and environment.
//!
//! Keys are the long flag names with underscores. Pools are a list of tables:
//!
//! ```toml
//! backend = ["cpu"]
//! threads = 2
//! [[pools]]
//! url = "stratum+ssl://pool.example.com:4333"
//! user = "bc1q...rig1"
//! pass = "x"
//! tls_fingerprint = "ab12..."
//! ```
//!
//! Unknown keys are an error, so a typo never silently falls back to a default.

use std::path::Path;

use anyhow::{Context, Result, bail};
use serde::Deserialize;

use crate::cli::{DeviceArgs, LogFormat, MineArgs, PoolArgs};

#[derive(Deserialize, Debug, Default, Clone)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    #[serde(default)]
    pub pools: Vec<FilePool>,
    pub backend: Option<Vec<String>>,
    pub devices: Option<Vec<usize>>,
    pub threads: Option<usize>,
    pub cpu_affinity: Option<bool>,
    pub cpu_kernel: Option<String>,
    pub intensity: Option<u32>,
    pub fpga: Option<Vec<String>>,
    pub fpga_baud: Option<u32>,
    pub fpga_hs: Option<f64>,
    pub fpga_work_division: Option<u32>,
    pub fpga_zero_bits: Option<u32>,
    pub fpga_reopen: Option<bool>,
    pub fpga_probe_timeout: Option<f64>,
    pub print_time: Option<u64>,
    pub duration: Option<f64>,
    pub keepalive: Option<u64>,
    pub failback_interval: Option<f64>,
    pub no_version_rolling: Option<bool>,
    pub suggest_difficulty: Option<f64>,
    pub pool_difficulty: Option<f64>,
    pub temp_limit: Option<f64>,
    pub watchdog: Option<f64>,
    pub watchdog_rebuilds: Option<u32>,
    pub http: Option<String>,
    pub http_token: Option<String>,
    pub log_format: Option<LogFormat>,
    pub prove: Option<bool>,
    pub proving_dir: Option<String>,
    pub proving_cache: Option<String>,
    pub proving_cache_mb: Option<u64>,
    pub prove_precompute: Option<bool>,
    pub no_verify_proofs: Option<bool>,
    pub proving_interval: Option<f64>,
    // `rigworker pool`
    pub listen: Option<String>,
    pub difficulty: Option<f64>,
    pub vardiff: Option<f64>,
    pub job_interval: Option<f64>,
    pub tls_cert: Option<String>,
    pub tls_key: Option<String>,
    pub websocket: Option<bool>,
    pub max_connections: Option<usize>,
}

#[derive(Deserialize, Debug, Default, Clone)]
#[serde(deny_unknown_fields)]
pub struct FilePool {
    pub url: String,
    pub user: Option<String>,
    pub pass: Option<String>,
    pub tls_fingerprint: Option<String>,
    pub tls_insecure: Option<bool>,
}

impl FileConfig {
    pub fn load(path: &Path) -> Result<FileConfig> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading config file {}", path.display()))?;
        toml::from_str(&text).with_context(|| format!("config file {}", path.display()))
    }

    /// The file at `path`, or an empty config when no file is given.
    pub fn load_optional(path: Option<&Path>) -> Result<FileConfig> {
        path.map_or_else(|| Ok(FileConfig::default()), FileConfig::load)
    }
}

/// A pool after merging flags, environment and file.
#[derive(Clone)]
pub struct PoolEntry {
    pub url: String,
    pub user: String,
    pub pass: String,
    pub tls_fingerprint: Option<String>,
    pub tls_insecure: bool,
}

/// Flags/env win; the file fills what they leave unset. (Flags beat the environment already:
/// clap reads a variable only for a flag not given.)
pub fn merge_mine(mut args: MineArgs, file: &FileConfig) -> Result<(MineArgs, Vec<PoolEntry>)> {
    merge_devices(&mut args.devices, file);
    args.print_time = args.print_time.or(file.print_time);
    args.duration = args.duration.or(file.duration);
    args.keepalive = args.keepalive.or(file.keepalive);
    args.failback_interval = args.failback_interval.or(file.failback_interval);
    args.no_version_rolling |= file.no_version_rolling.unwrap_or(false);
    args.suggest_difficulty = args.suggest_difficulty.or(file.suggest_difficulty);
    args.pool_difficulty = args.pool_difficulty.or(file.pool_difficulty);
    args.temp_limit = args.temp_limit.or(file.temp_limit);
    args.watchdog = args.watchdog.or(file.watchdog);
    args.watchdog_rebuilds = args.watchdog_rebuilds.or(file.watchdog_rebuilds);
    args.http = args.http.take().or(file.http.clone());
    args.http_token = args.http_token.take().or(file.http_token.clone());
    let pr = &mut args.proving;
    pr.prove |= file.prove.unwrap_or(false);
    pr.proving_dir = pr
        .proving_dir
        .take()
        .or(file.proving_dir.as_ref().map(Into::into));
    pr.proving_cache = pr
        .proving_cache
        .take()
        .or(file.proving_cache.as_ref().map(Into::into));
    pr.proving_cache_mb = pr.proving_cache_mb.or(file.proving_cache_mb);
    pr.prove_precompute |= file.prove_precompute.unwrap_or(false);
    pr.no_verify_proofs |= file.no_verify_proofs.unwrap_or(false);

    let pools: Vec<PoolEntry> = if !args.urls.is_empty() {
        // xmrig convention: the k-th -u/-p belongs to the k-th -o; a single one serves all.
        args.urls
            .iter()
            .enumerate()
            .map(|(i, url)| PoolEntry {
                url: url.clone(),
                user: pick(&args.users, i).unwrap_or_else(|| "rigworker".into()),
                pass: pick(&args.passwords, i).unwrap_or_else(|| "x".into()),
                tls_fingerprint: args.tls_fingerprint.clone(),
                tls_insecure: args.tls_insecure,
            })
            .collect()
    } else {
        // The file's pools, but what flags or the environment give wins over each pool's own
        // keys (flags > env > file), with the same k-th-to-k-th rule as for -o.
        file.pools
            .iter()
            .enumerate()
            .map(|(i, p)| PoolEntry {
                url: p.url.clone(),
                user: pick(&args.users, i)
                    .or_else(|| p.user.clone())
                    .unwrap_or_else(|| "rigworker".into()),
                pass: pick(&args.passwords, i)
                    .or_else(|| p.pass.clone())
                    .unwrap_or_else(|| "x".into()),
                tls_fingerprint: args
                    .tls_fingerprint
                    .clone()
                    .or_else(|| p.tls_fingerprint.clone()),
                // A switch can only say "on": given, it wins; absent, the file decides.
                tls_insecure: args.tls_insecure || p.tls_insecure.unwrap_or(false),
            })
            .collect()
    };
    for p in &pools {
        if p.url.trim().is_empty() {
            bail!("empty pool URL");
        }
    }
    Ok((args, pools))
}

fn pick(v: &[String], i: usize) -> Option<String> {
    v.get(i).or(v.last()).cloned()
}

pub fn merge_devices(d: &mut DeviceArgs, file: &FileConfig) {
    if d.backend.is_empty() {
        d.backend = file.backend.clone().unwrap_or_default();
    }
    if d.devices.is_empty() {
        d.devices = file.devices.clone().unwrap_or_default();
    }
    d.threads = d.threads.or(file.threads);
    d.cpu_affinity |= file.cpu_affinity.unwrap_or(false);
    d.cpu_kernel = d.cpu_kernel.clone().or(file.cpu_kernel.clone());
    d.intensity = d.intensity.or(file.intensity);
    let f = &mut d.fpga;
    if f.fpga_ports.is_empty() {
        f.fpga_ports = file
            .fpga
            .iter()
            .flatten()
            .map(std::path::PathBuf::from)
            .collect();
    }
    f.fpga_baud = f.fpga_baud.or(file.fpga_baud);
    f.fpga_hs = f.fpga_hs.or(file.fpga_hs);
    f.fpga_work_division = f.fpga_work_division.or(file.fpga_work_division);
    f.fpga_zero_bits = f.fpga_zero_bits.or(file.fpga_zero_bits);
    f.fpga_reopen |= file.fpga_reopen.unwrap_or(false);
    f.fpga_probe_timeout = f.fpga_probe_timeout.or(file.fpga_probe_timeout);
}

pub fn merge_pool(mut args: PoolArgs, file: &FileConfig) -> PoolArgs {
    args.listen = args.listen.or(file.listen.clone());
    args.difficulty = args.difficulty.or(file.difficulty);
    args.vardiff = args.vardiff.or(file.vardiff);
    args.job_interval = args.job_interval.or(file.job_interval);
    args.tls_cert = args.tls_cert.or(file.tls_cert.clone().map(Into::into));
    args.tls_key = args.tls_key.or(file.tls_key.clone().map(Into::into));
    args.websocket |= file.websocket.unwrap_or(false);
    args.max_connections = args.max_connections.or(file.max_connections);
    args.print_time = args.print_time.or(file.print_time);
    args.proving_dir = args
        .proving_dir
        .or(file.proving_dir.clone().map(Into::into));
    args.proving_interval = args.proving_interval.or(file.proving_interval);
    args
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::{Cli, Command};
    use clap::Parser;

    fn mine_args(flags: &[&str]) -> MineArgs {
        let argv = ["rigworker", "mine"]
            .into_iter()
            .chain(flags.iter().copied());
        match Cli::try_parse_from(argv).unwrap().command {
            Command::Mine(a) => a,
            other => panic!("not mine: {other:?}"),
        }
    }

    const TWO_POOLS: &str = r#"
        [[pools]]
        url = "stratum+ssl://a:1"
        user = "file.a"
        pass = "file-pass-a"
        tls_fingerprint = "aa"
        tls_insecure = false
        [[pools]]
        url = "stratum+ssl://b:2"
        user = "file.b"
        "#;

    #[test]
    fn flags_beat_each_file_pool_s_own_keys() {
        let file: FileConfig = toml::from_str(TWO_POOLS).unwrap();
        // Nothing on the command line: the file decides.
        let (_, pools) = merge_mine(mine_args(&[]), &file).unwrap();
        assert_eq!(pools[0].user, "file.a");
        assert_eq!(pools[0].pass, "file-pass-a");
        assert_eq!(pools[0].tls_fingerprint.as_deref(), Some("aa"));
        assert!(!pools[0].tls_insecure);
        assert_eq!(
            (pools[1].user.as_str(), pools[1].pass.as_str()),
            ("file.b", "x")
        );
        // One flag of each kind serves every file pool and wins over its keys.
        let flags = [
            "-u",
            "flag.user",
            "-p",
            "flag-pass",
            "--tls-fingerprint",
            "bb",
            "--tls-insecure",
        ];
        let (_, pools) = merge_mine(mine_args(&flags), &file).unwrap();
        for p in &pools {
            assert_eq!(p.user, "flag.user");
            assert_eq!(p.pass, "flag-pass");
            assert_eq!(p.tls_fingerprint.as_deref(), Some("bb"));
            assert!(p.tls_insecure);
        }
        assert_eq!(pools[1].url, "stratum+ssl://b:2");
        // Repeated flags go k-th to k-th, as with -o.
        let (_, pools) = merge_mine(mine_args(&["-u", "one", "-u", "two"]), &file).unwrap();
        assert_eq!(
            (pools[0].user.as_str(), pools[1].user.as_str()),
            ("one", "two")
        );
        assert_eq!(pools[0].pass, "file-pass-a");
    }

    #[test]
    fn scalar_flags_beat_the_file() {
        let file: FileConfig =
            toml::from_str("print_time = 5\nduration = 9.0\nlog_format = \"json\"").unwrap();
        assert_eq!(file.log_format, Some(LogFormat::Json));
        let (a, _) = merge_mine(mine_args(&["--print-time", "2"]), &file).unwrap();
        assert_eq!((a.print_time, a.duration), (Some(2), Some(9.0)));
    }

    #[test]
    fn file_parses_and_rejects_typos() {
        let f: FileConfig = toml::from_str(
            r#"
            backend = ["cpu"]
            threads = 3
            [[pools]]
            url = "stratum+tcp://a:1"
            user = "w.r"
            [[pools]]
            url = "stratum+ssl://b:2"
            tls_fingerprint = "00"
            "#,
        )
        .unwrap();
        assert_eq!(f.pools.len(), 2);
        assert_eq!(f.threads, Some(3));
        assert!(toml::from_str::<FileConfig>("treads = 3").is_err());
    }
}

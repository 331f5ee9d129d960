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
//! [[pools]]
//! url = "stratum2+tcp://pool.example.com:34254"
//! authority_key = "9auqWEzQDVyd2oe1JVGFLMLHZtCo2FFqZwtKA5gd9xbuEu7PH72"
//! ```
//!
//! A Stratum V2 pool's authority key may sit in its URL (`stratum2+tcp://HOST:PORT/KEY`) or
//! in `authority_key`; both at once must agree.
//!
//! Unknown keys are an error, so a typo never silently falls back to a default.

use std::path::Path;

use anyhow::{Context, Result, bail};
use serde::Deserialize;

use crate::cli::{DeviceArgs, LogFormat, MineArgs, PoolArgs};
use crate::secret::Secret;

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
    pub http_token: Option<Secret>,
    pub log_format: Option<LogFormat>,
    pub prove: Option<bool>,
    pub proving_dir: Option<String>,
    pub proving_cache: Option<String>,
    pub proving_cache_mb: Option<u64>,
    pub prove_precompute: Option<bool>,
    pub no_verify_proofs: Option<bool>,
    pub proving_artifact_hosts: Option<Vec<String>>,
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
    pub pass: Option<Secret>,
    pub tls_fingerprint: Option<String>,
    pub tls_insecure: Option<bool>,
    /// A Stratum V2 pool's authority public key, when its URL does not end with it.
    pub authority_key: Option<String>,
}

impl FilePool {
    /// The pool's URL with `authority_key` in it (a Stratum V2 URL's last part).
    pub fn url_with_key(&self) -> Result<String> {
        let Some(key) = self.authority_key.as_deref().map(str::trim) else {
            return Ok(self.url.clone());
        };
        let url = self.url.trim().trim_end_matches('/');
        let Some((scheme, rest)) = url.split_once("://") else {
            bail!("pool {url}: authority_key is for stratum2+tcp:// pools only");
        };
        if !scheme.eq_ignore_ascii_case("stratum2+tcp") {
            bail!("pool {url}: authority_key is for stratum2+tcp:// pools only");
        }
        match rest.split_once('/') {
            None => Ok(format!("{url}/{key}")),
            Some((_, in_url)) if in_url == key => Ok(url.to_string()),
            Some(_) => {
                bail!("pool {url}: the URL's authority key and authority_key differ; give it once")
            }
        }
    }
}

impl FileConfig {
    pub fn load(path: &Path) -> Result<FileConfig> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading config file {}", path.display()))?;
        parse(&text).map_err(|e| anyhow::anyhow!("config file {}: {e}", path.display()))
    }

    /// The file at `path`, or an empty config when no file is given.
    pub fn load_optional(path: Option<&Path>) -> Result<FileConfig> {
        path.map_or_else(|| Ok(FileConfig::default()), FileConfig::load)
    }
}

/// Parses a config file's text; the error never quotes the file (see [`toml_error`]).
pub fn parse<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, String> {
    toml::from_str(text).map_err(|e| toml_error(text, &e))
}

/// A TOML error as `line L, column C: MESSAGE`, without the excerpt of the file that toml's
/// own message quotes (the offending line may hold a password or token) and with the values
/// the message quotes redacted; key names (`unknown field `pasword``) stay.
pub fn toml_error(text: &str, e: &toml::de::Error) -> String {
    let message = redact_quoted(e.message().trim());
    match e.span() {
        Some(span) => {
            let start = span.start.min(text.len());
            let before = text.get(..start).unwrap_or("");
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            format!("line {line}, column {column}: {message}")
        }
        None => message,
    }
}

/// Replaces what a message quotes between `"` with `…`, and between backticks unless it reads
/// as a key name or punctuation.
fn redact_quoted(msg: &str) -> String {
    let mut out = String::with_capacity(msg.len());
    let mut rest = msg;
    while let Some(i) = rest.find(['"', '`']) {
        let q = rest[i..].chars().next().unwrap_or('"');
        out.push_str(&rest[..=i]);
        let after = &rest[i + 1..];
        let Some(j) = after.find(q) else {
            // An unclosed quote: drop what follows it.
            out.push('…');
            return out;
        };
        let inner = &after[..j];
        let harmless = q == '`'
            && !inner.is_empty()
            && (inner.chars().all(|c| c.is_ascii_lowercase() || c == '_')
                || inner.chars().all(|c| c.is_ascii_punctuation()));
        out.push_str(if harmless { inner } else { "…" });
        out.push(q);
        rest = &after[j + 1..];
    }
    out.push_str(rest);
    out
}

/// A pool after merging flags, environment and file.
#[derive(Clone, Debug)]
pub struct PoolEntry {
    pub url: String,
    pub user: String,
    pub pass: Secret,
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
    if pr.proving_artifact_hosts.is_empty() {
        pr.proving_artifact_hosts = file.proving_artifact_hosts.clone().unwrap_or_default();
    }

    let pools: Vec<PoolEntry> = if !args.urls.is_empty() {
        // xmrig convention: the k-th -u/-p belongs to the k-th -o; a single one serves all.
        args.urls
            .iter()
            .enumerate()
            .map(|(i, url)| {
                let (fingerprint, insecure) = args.tls_flags_for(i);
                PoolEntry {
                    url: url.clone(),
                    user: pick(&args.users, i).unwrap_or_else(|| "rigworker".into()),
                    pass: pick(&args.passwords, i).unwrap_or_else(|| "x".into()),
                    tls_fingerprint: fingerprint.map(str::to_string),
                    tls_insecure: insecure.unwrap_or(false),
                }
            })
            .collect()
    } else {
        // The file's pools, but what flags or the environment give wins over each pool's own
        // keys (flags > env > file), with the same k-th-to-k-th rule as for -o. The TLS flags
        // belong to one pool each (the first one, with no -o to follow).
        file.pools
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let (fingerprint, insecure) = args.tls_flags_for(i);
                Ok(PoolEntry {
                    url: p.url_with_key()?,
                    user: pick(&args.users, i)
                        .or_else(|| p.user.clone())
                        .unwrap_or_else(|| "rigworker".into()),
                    pass: pick(&args.passwords, i)
                        .or_else(|| p.pass.clone())
                        .unwrap_or_else(|| "x".into()),
                    tls_fingerprint: fingerprint
                        .map(str::to_string)
                        .or_else(|| p.tls_fingerprint.clone()),
                    tls_insecure: insecure.unwrap_or(p.tls_insecure.unwrap_or(false)),
                })
            })
            .collect::<Result<_>>()?
    };
    for (i, p) in pools.iter().enumerate() {
        if p.url.trim().is_empty() {
            bail!("empty pool URL");
        }
        // Never let one silently override the other: a pin already accepts a self-signed
        // certificate, and "insecure" would throw the pin away.
        if p.tls_insecure && p.tls_fingerprint.is_some() {
            bail!(
                "pool {i} ({}): both --tls-insecure and --tls-fingerprint (or tls_insecure and \
                 tls_fingerprint in the config file) apply to it; a pinned certificate needs no \
                 --tls-insecure: drop one of them",
                p.url
            );
        }
    }
    Ok((args, pools))
}

fn pick<T: Clone>(v: &[T], i: usize) -> Option<T> {
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
    use crate::cli::Command;

    fn mine_args(flags: &[&str]) -> MineArgs {
        let argv = ["rigworker", "mine"]
            .into_iter()
            .chain(flags.iter().copied());
        match crate::cli::parse_from(argv).unwrap().command {
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
        assert_eq!(pools[0].pass.expose(), "file-pass-a");
        assert_eq!(pools[0].tls_fingerprint.as_deref(), Some("aa"));
        assert!(!pools[0].tls_insecure);
        assert_eq!(
            (pools[1].user.as_str(), pools[1].pass.expose()),
            ("file.b", "x")
        );
        // One -u/-p serves every file pool and wins over its keys; a TLS flag belongs to one
        // pool (with no -o: the first) and wins over that pool's key.
        let flags = [
            "-u",
            "flag.user",
            "-p",
            "flag-pass",
            "--tls-fingerprint",
            "bb",
        ];
        let (_, pools) = merge_mine(mine_args(&flags), &file).unwrap();
        for p in &pools {
            assert_eq!(p.user, "flag.user");
            assert_eq!(p.pass.expose(), "flag-pass");
            assert!(!p.tls_insecure);
        }
        assert_eq!(pools[0].tls_fingerprint.as_deref(), Some("bb"));
        assert_eq!(pools[1].tls_fingerprint, None);
        assert_eq!(pools[1].url, "stratum+ssl://b:2");
        // --tls-insecure for the first pool would silently drop its pin: refused.
        let e = merge_mine(mine_args(&["--tls-insecure"]), &file)
            .expect_err("insecure and a pin on one pool")
            .to_string();
        assert!(e.contains("--tls-insecure") && e.contains("pool 0"), "{e}");
        // Repeated flags go k-th to k-th, as with -o.
        let (_, pools) = merge_mine(mine_args(&["-u", "one", "-u", "two"]), &file).unwrap();
        assert_eq!(
            (pools[0].user.as_str(), pools[1].user.as_str()),
            ("one", "two")
        );
        assert_eq!(pools[0].pass.expose(), "file-pass-a");
    }

    #[test]
    fn tls_flags_apply_to_the_pool_they_follow() {
        let (_, pools) = merge_mine(
            mine_args(&[
                "-o",
                "stratum+ssl://a:1",
                "--tls-fingerprint",
                "aa",
                "-o",
                "stratum+ssl://b:2,stratum+ssl://c:3",
                "--tls-insecure",
                "-o",
                "stratum+tcp://d:4",
            ]),
            &FileConfig::default(),
        )
        .unwrap();
        let tls: Vec<(Option<&str>, bool)> = pools
            .iter()
            .map(|p| (p.tls_fingerprint.as_deref(), p.tls_insecure))
            .collect();
        assert_eq!(
            tls,
            [
                (Some("aa"), false),
                (None, false),
                (None, true),
                (None, false)
            ]
        );
        // Before any -o: the first pool.
        let (_, pools) = merge_mine(
            mine_args(&["--tls-insecure", "-o", "ssl://a:1", "-o", "ssl://b:2"]),
            &FileConfig::default(),
        )
        .unwrap();
        assert!(pools[0].tls_insecure && !pools[1].tls_insecure);
        // Both for one pool: an error, whichever order.
        for flags in [
            [
                "-o",
                "ssl://a:1",
                "--tls-insecure",
                "--tls-fingerprint",
                "aa",
            ],
            [
                "-o",
                "ssl://a:1",
                "--tls-fingerprint",
                "aa",
                "--tls-insecure",
            ],
        ] {
            assert!(merge_mine(mine_args(&flags), &FileConfig::default()).is_err());
        }
    }

    #[test]
    fn toml_errors_never_quote_the_file() {
        for text in [
            "[[pools]]\nurl = \"stratum+tcp://a:1\"\npass = \"hunter2\n",
            "[[pools]]\nurl = \"stratum+tcp://a:1\"\npass = hunter2\n",
            "[[pools]]\nurl = \"stratum+tcp://a:1\"\npass = 424242\n",
            "http_token = 424242\n",
            "http_token = \"hunter2\" x\n",
            "threads = \"hunter2\"\n",
            "hunter2\n",
        ] {
            let e = parse::<FileConfig>(text).unwrap_err();
            assert!(
                !e.contains("hunter2") && !e.contains("424242"),
                "{text:?}: {e}"
            );
            assert!(e.starts_with("line "), "{e}");
        }
        // Key names stay, so a typo can still be found.
        let e = parse::<FileConfig>("\n\ntreads = 3").unwrap_err();
        assert!(e.contains("line 3") && e.contains("`treads`"), "{e}");
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

    #[test]
    fn a_v2_pool_s_authority_key_can_come_from_its_own_key() {
        const KEY: &str = "9auqWEzQDVyd2oe1JVGFLMLHZtCo2FFqZwtKA5gd9xbuEu7PH72";
        let f: FileConfig = parse(&format!(
            r#"
            [[pools]]
            url = "stratum2+tcp://a:34254"
            authority_key = "{KEY}"
            [[pools]]
            url = "stratum2+tcp://b:34254/{KEY}"
            authority_key = "{KEY}"
            [[pools]]
            url = "stratum+tcp://c:3333"
            "#
        ))
        .unwrap();
        let (_, pools) = merge_mine(mine_args(&[]), &f).unwrap();
        let urls: Vec<&str> = pools.iter().map(|p| p.url.as_str()).collect();
        let a = format!("stratum2+tcp://a:34254/{KEY}");
        let b = format!("stratum2+tcp://b:34254/{KEY}");
        assert_eq!(urls, [a.as_str(), b.as_str(), "stratum+tcp://c:3333"]);
        // What the client parses: a V2 pool URL with its key.
        for p in &pools[..2] {
            let url: stratum::PoolUrl = p.url.parse().unwrap();
            assert_eq!(url.to_string(), p.url);
        }
        let clash: FileConfig = parse(&format!(
            "[[pools]]\nurl = \"stratum2+tcp://a:1/{KEY}\"\nauthority_key = \"other\"\n"
        ))
        .unwrap();
        assert!(merge_mine(mine_args(&[]), &clash).is_err());
        let v1: FileConfig = parse(&format!(
            "[[pools]]\nurl = \"stratum+tcp://a:1\"\nauthority_key = \"{KEY}\"\n"
        ))
        .unwrap();
        assert!(merge_mine(mine_args(&[]), &v1).is_err());
    }
}

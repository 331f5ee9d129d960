//! The deployment files in `contrib/` checked by the tools that consume them: the systemd unit
//! by `systemd-analyze` (verify, and the security exposure score), the Kubernetes manifests by
//! `kubernetes-validate` (offline, against the API schemas it bundles), and the example
//! configs by rigworker's own config parser. Under CI (env `CI`) a missing tool is a failure;
//! elsewhere the test says it skipped.

use std::path::{Path, PathBuf};
use std::process::Command;

use clap::Parser;
use worker_cli::cli::{Cli, Command as Sub};
use worker_cli::config::FileConfig;

const BIN: &str = env!("CARGO_BIN_EXE_rigworker");
/// The exposure score `systemd-analyze security` gave the unit when it was written (systemd
/// 252). A change that raises it must say why here.
const MAX_EXPOSURE: f64 = 1.8;
const EXEC_START: &str = "ExecStart=/usr/local/bin/rigworker mine -c /etc/rigworker/config.toml";

fn contrib(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../contrib")
        .join(rel)
}

fn temp_dir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!(
        "rigworker-contrib-{tag}-{}-{}",
        std::process::id(),
        rand::random::<u32>()
    ));
    std::fs::create_dir_all(&d).expect("temp dir");
    d
}

/// `false` (skip) when the tool is missing outside CI; a failure under CI.
fn tool_present(found: bool, what: &str) -> bool {
    if !found {
        assert!(
            std::env::var_os("CI").is_none(),
            "{what} is required under CI (.ci/setup installs it)"
        );
        println!("SKIPPED: {what} not found (bash .ci/setup installs it)");
    }
    found
}

#[test]
fn the_systemd_unit_verifies_and_its_exposure_stays_low() {
    let present = Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !tool_present(present, "systemd-analyze (Debian package systemd)") {
        return;
    }
    let unit = std::fs::read_to_string(contrib("rigworker.service")).expect("the unit");
    assert_eq!(unit.matches(EXEC_START).count(), 1, "{unit}");
    // verify checks that ExecStart's binary exists and is executable: point it at ours.
    let dir = temp_dir("unit");
    let path = dir.join("rigworker.service");
    let ours = unit.replace(
        EXEC_START,
        &format!("ExecStart={BIN} mine -c /etc/rigworker/config.toml"),
    );
    std::fs::write(&path, ours).expect("write the unit");

    let o = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .expect("systemd-analyze verify");
    let stderr = String::from_utf8_lossy(&o.stderr);
    // verify exits 0 on warnings about the unit (unknown keys, bad values "ignoring"), so any
    // line about our unit is a failure too.
    let about_ours: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("rigworker.service"))
        .collect();
    assert!(
        o.status.success() && about_ours.is_empty(),
        "systemd-analyze verify:\n{stderr}"
    );

    let o = Command::new("systemd-analyze")
        .args(["security", "--offline=yes", "--no-pager"])
        .arg(&path)
        .output()
        .expect("systemd-analyze security");
    let out = String::from_utf8_lossy(&o.stdout);
    let score: f64 = out
        .lines()
        .find_map(|l| {
            l.split("Overall exposure level for rigworker.service:")
                .nth(1)
        })
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| {
            panic!(
                "no exposure score in:\n{out}{}",
                String::from_utf8_lossy(&o.stderr)
            )
        });
    println!("systemd-analyze security: exposure {score}");
    assert!(
        score <= MAX_EXPOSURE,
        "exposure {score} > {MAX_EXPOSURE}:\n{out}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// The command line the unit runs is one rigworker accepts.
#[test]
fn the_unit_s_command_line_parses() {
    let args = EXEC_START
        .trim_start_matches("ExecStart=")
        .split_whitespace()
        .collect::<Vec<_>>();
    let cli = Cli::try_parse_from(args).expect("ExecStart parses");
    match cli.command {
        Sub::Mine(a) => assert_eq!(
            a.config.as_deref(),
            Some(Path::new("/etc/rigworker/config.toml"))
        ),
        other => panic!("not mine: {other:?}"),
    }
}

/// The `config.toml: |` block of the ConfigMap, de-indented.
fn configmap_config() -> String {
    let yaml =
        std::fs::read_to_string(contrib("kubernetes/configmap.yaml")).expect("configmap.yaml");
    let mut lines = yaml.lines().skip_while(|l| l.trim() != "config.toml: |");
    lines.next().expect("a config.toml block");
    let block: Vec<&str> = lines
        .take_while(|l| l.is_empty() || l.starts_with("    "))
        .collect();
    block
        .iter()
        .map(|l| l.strip_prefix("    ").unwrap_or(l))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn the_example_configs_are_valid_rigworker_configs() {
    let f = FileConfig::load(&contrib("config.example.toml")).expect("config.example.toml");
    assert_eq!(f.pools.len(), 2);
    assert_eq!(f.temp_limit, Some(85.0));

    let text = configmap_config();
    let f: FileConfig = toml::from_str(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(f.pools.len(), 2, "{text}");
    assert_eq!(f.backend.as_deref(), Some(&["cuda".to_string()][..]));
    assert!(f.temp_limit.is_some());
    // Credentials come from the Secret, never from the ConfigMap.
    assert!(f.pools.iter().all(|p| p.user.is_none() && p.pass.is_none()));
}

/// kubernetes-validate: $RIGWORKER_KUBERNETES_VALIDATE, then PATH, then the venv .ci/setup
/// makes.
fn kubernetes_validate() -> Option<PathBuf> {
    let works = |p: &Path| {
        Command::new(p)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    };
    if let Some(p) = std::env::var_os("RIGWORKER_KUBERNETES_VALIDATE") {
        return Some(PathBuf::from(p)).filter(|p| works(p));
    }
    if works(Path::new("kubernetes-validate")) {
        return Some("kubernetes-validate".into());
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(cache.join("rigworker-ci/venv/bin/kubernetes-validate")).filter(|p| works(p))
}

#[test]
fn the_kubernetes_manifests_validate_against_the_api_schemas() {
    let tool = kubernetes_validate();
    if !tool_present(tool.is_some(), "kubernetes-validate (PyPI)") {
        return;
    }
    let Some(tool) = tool else { return };
    let mut files: Vec<PathBuf> = std::fs::read_dir(contrib("kubernetes"))
        .expect("contrib/kubernetes")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    assert!(files.len() >= 4, "{files:?}");
    // --strict: unknown fields (a typo in a key) fail too.
    let o = Command::new(&tool)
        .arg("--strict")
        .args(&files)
        .output()
        .expect("run kubernetes-validate");
    let out = format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(o.status.success(), "{out}");
    // One "passed" per file: a file it could not read as a resource is not silently skipped.
    assert_eq!(
        out.matches(" passed for resource ").count(),
        files.len(),
        "{out}"
    );
    for kind in [
        "daemonset/rigworker",
        "configmap/rigworker-config",
        "secret/rigworker-pool",
    ] {
        assert!(out.contains(kind), "{kind} missing:\n{out}");
    }
}

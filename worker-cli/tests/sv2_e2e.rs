//! Stratum V2 as a user meets it: `rigworker pool --sv2` prints the URL miners use on a line
//! of its own and keeps its authority key across restarts; the real `rigworker mine` binary
//! mines on the CPU against a V2 pool (and with `mine --sv2`, against the built-in one) and
//! books its shares exactly as the pool judged them.

use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use stratum::server::{Server, ServerConfig, Sv2Config};
use stratum::sv2::AuthorityKeypair;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_rigworker");
/// Generous: the test machine may be a loaded two-core box.
const WAIT: Duration = Duration::from_secs(120);

fn temp(name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("rigworker-sv2-e2e-{}-{name}", std::process::id()))
}

/// Starts `rigworker pool --sv2`, returns the `stratum2+tcp://` line it prints.
async fn pool_url(key: &std::path::Path) -> String {
    let mut child = Command::new(BIN)
        .args([
            "pool",
            "--listen",
            "127.0.0.1:0",
            "--sv2",
            "127.0.0.1:0",
            "--sv2-key",
        ])
        .arg(key)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start rigworker pool");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let url = tokio::time::timeout(WAIT, async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if line.starts_with("stratum2+tcp://") {
                return line;
            }
        }
        panic!("the pool exited without printing its Stratum V2 URL")
    })
    .await
    .expect("the pool prints its URL");
    let _ = child.kill().await;
    url
}

#[tokio::test]
async fn the_pool_prints_its_url_and_keeps_its_key() {
    let dir = temp("key");
    let _ = std::fs::remove_dir_all(&dir);
    let key = dir.join("authority.key");
    let first = pool_url(&key).await;
    let second = pool_url(&key).await;
    let authority = |u: &str| u.rsplit('/').next().unwrap().to_string();
    assert_eq!(
        authority(&first),
        authority(&second),
        "same key after a restart"
    );
    let url: stratum::PoolUrl = first.parse().expect("the printed URL parses");
    assert!(matches!(url.scheme, stratum::Scheme::Sv2(_)));
    let _ = std::fs::remove_dir_all(&dir);
}

fn summary(path: &std::path::Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).expect("summary written"))
        .expect("summary JSON")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mining_against_a_v2_pool_agrees_with_the_pool() {
    let cfg = ServerConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        difficulty: 1e-4,
        job_interval: Duration::from_secs(600),
        sv2: Some(Sv2Config {
            listen: "127.0.0.1:0".parse().unwrap(),
            authority: AuthorityKeypair::generate(),
        }),
        ..Default::default()
    };
    let pool = Server::bind(cfg).await.expect("bind").spawn();
    let url = pool.sv2_url().unwrap().to_string();
    let path = temp("summary.json");
    let out = tokio::time::timeout(
        WAIT,
        Command::new(BIN)
            .args(["mine", "-o", &url, "-u", "e2e.rig", "-p", "x"])
            .args(["--threads", "1", "--duration", "12", "--print-time", "2"])
            .arg("--summary-json")
            .arg(&path)
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("rigworker exits")
    .expect("run rigworker");
    let text =
        String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("connected (Stratum V2)"), "{text}");
    let s = summary(&path);
    let stats = pool.stats();
    let accepted = s["totals"]["accepted"].as_u64().unwrap();
    assert!(accepted > 0, "{s}");
    assert_eq!(accepted, stats.worker("e2e.rig").accepted, "{s}");
    assert_eq!(s["totals"]["rejected"], 0, "{s}");
    assert_eq!(stats.total.rejected_total(), 0);
    let _ = std::fs::remove_file(&path);
    pool.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mine_sv2_with_no_pool_uses_the_builtin_one_over_v2() {
    let path = temp("builtin.json");
    let out = tokio::time::timeout(
        WAIT,
        Command::new(BIN)
            .args(["mine", "--sv2", "--threads", "1", "--duration", "10"])
            .arg("--summary-json")
            .arg(&path)
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("rigworker exits")
    .expect("run rigworker");
    let text =
        String::from_utf8_lossy(&out.stderr).to_string() + &String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("connected (Stratum V2)"), "{text}");
    let s = summary(&path);
    assert!(s["totals"]["accepted"].as_u64().unwrap() > 0, "{s}");
    assert_eq!(s["totals"]["rejected"], 0, "{s}");
    let _ = std::fs::remove_file(&path);
    // With -o, --sv2 is an error that says what to do instead.
    let out = Command::new(BIN)
        .args(["mine", "--sv2", "-o", "stratum+tcp://127.0.0.1:1"])
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("stratum2+tcp://"));
}

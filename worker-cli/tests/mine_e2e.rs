//! End to end: the real `rigworker` binary mining on the CPU against the built-in pool over
//! loopback. The pool judges every share independently; the worker's own summary must agree
//! with it and keep `found = accepted + rejected + stale + hardware errors + in flight` in
//! total, per device and per pool. Also the log format and the config/env precedence as a
//! user meets them.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use stratum::server::{Server, ServerConfig, ServerHandle};
use tokio::process::{Child, Command};

const BIN: &str = env!("CARGO_BIN_EXE_rigworker");

/// One miner at a time: each saturates the cores, and the stale-rate test measures latency.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
const WAIT: Duration = Duration::from_secs(60);

async fn pool(cfg: ServerConfig) -> ServerHandle {
    Server::bind(cfg).await.expect("bind").spawn()
}

fn pool_config(difficulty: f64) -> ServerConfig {
    ServerConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        difficulty,
        job_interval: Duration::from_secs(30),
        ..Default::default()
    }
}

fn summary_path(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("rigworker-e2e-{}-{name}.json", std::process::id()))
}

fn miner(urls: &[String], extra: &[&str], summary: &PathBuf) -> Child {
    miner_command(urls, extra, summary)
        .spawn()
        .expect("start rigworker")
}

fn miner_command(urls: &[String], extra: &[&str], summary: &PathBuf) -> Command {
    let mut c = Command::new(BIN);
    c.arg("mine");
    for u in urls {
        c.args(["-o", u]);
    }
    c.args([
        "-u",
        "e2e.rig",
        "-p",
        "secret-password",
        "--print-time",
        "1",
        "--summary-json",
    ])
    .arg(summary)
    .args(extra)
    .env("RUST_LOG", "info")
    .stdin(Stdio::null())
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .kill_on_drop(true);
    c
}

async fn finish(child: Child) -> (String, String) {
    let out = tokio::time::timeout(WAIT, child.wait_with_output())
        .await
        .expect("rigworker exits")
        .expect("wait");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(
        out.status.success(),
        "rigworker failed: {:?}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        out.status
    );
    assert!(
        !stderr.contains("secret-password") && !stdout.contains("secret-password"),
        "password leaked into output"
    );
    (stdout, stderr)
}

const BUCKETS: [&str; 5] = [
    "accepted",
    "rejected",
    "stale",
    "hardware_errors",
    "in_flight",
];

/// Asserts `found = accepted + rejected + stale + hardware errors + in flight` for one set of
/// counts and returns them in that order, found first.
fn balanced(what: &str, c: &Value) -> [u64; 6] {
    let n = |k: &str| {
        c[k].as_u64()
            .unwrap_or_else(|| panic!("{what}: no count {k}: {c}"))
    };
    let mut out = [n("found"), 0, 0, 0, 0, 0];
    for (i, k) in BUCKETS.iter().enumerate() {
        out[i + 1] = n(k);
    }
    assert_eq!(
        out[0],
        out[1..].iter().sum::<u64>(),
        "{what} accounting: {c}"
    );
    out
}

/// Reads the summary and checks the accounting in total, per device and per pool, and that
/// devices and pools each add up to the totals (every share belongs to one of each).
fn read_summary(path: &PathBuf) -> Value {
    let s: Value = serde_json::from_slice(&std::fs::read(path).expect("summary written"))
        .expect("summary JSON");
    let totals = balanced("totals", &s["totals"]);
    let sum = |what: &str, list: &Value, counts: fn(&Value) -> &Value| {
        let mut acc = [0u64; 6];
        for (i, item) in list.as_array().expect(what).iter().enumerate() {
            let c = balanced(&format!("{what} {i}"), counts(item));
            for (a, v) in acc.iter_mut().zip(c) {
                *a += v;
            }
        }
        assert_eq!(acc, totals, "{what} add up to the totals: {s}");
    };
    sum("devices", &s["devices"], |d| &d["shares"]);
    sum("pools", &s["pools"], |p| p);
    let _ = std::fs::remove_file(path);
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mines_accepted_shares_and_agrees_with_the_pool() {
    let _serial = SERIAL.lock().await;
    let pool = pool(pool_config(0.002)).await;
    let path = summary_path("basic");
    let child = miner(
        &[pool.url().to_string()],
        &["--threads", "1", "--duration", "4"],
        &path,
    );
    let (stdout, _) = finish(child).await;
    assert!(stdout.contains("summary:"), "{stdout}");
    let s = read_summary(&path);
    let stats = pool.stats();
    let accepted = s["totals"]["accepted"].as_u64().unwrap();
    assert!(accepted > 0, "no accepted shares: {s}");
    assert_eq!(s["totals"]["rejected"], 0);
    assert_eq!(s["totals"]["hardware_errors"], 0);
    assert_eq!(
        stats.worker("e2e.rig").accepted,
        accepted,
        "pool and worker agree"
    );
    assert_eq!(stats.total.rejected_total(), 0);
    assert!(s["hashes"].as_u64().unwrap() > 0);
    pool.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mine_with_no_pool_uses_the_builtin_one() {
    let _serial = SERIAL.lock().await;
    let path = summary_path("builtin");
    let child = miner(
        &[],
        &[
            "--threads",
            "1",
            "--duration",
            "5",
            "--pool-difficulty",
            "0.002",
        ],
        &path,
    );
    let (_, stderr) = finish(child).await;
    assert!(stderr.contains("built-in pool"), "{stderr}");
    let s = read_summary(&path);
    assert!(s["totals"]["accepted"].as_u64().unwrap() > 0, "{s}");
    assert_eq!(s["totals"]["rejected"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pool_switching_jobs_every_200ms_costs_few_stale_shares() {
    let _serial = SERIAL.lock().await;
    // About a hundred shares a second, so a fraction of a percent is measurable. The bound is
    // loose on purpose: each switch costs what the shares found during its latency are worth
    // (1 % is 2 ms per switch at 5 switches a second), and a shared 2-core CI machine shows
    // 0.6 % to 1.3 %. A worker that kept mining the replaced job would lose most shares.
    let cfg = ServerConfig {
        job_interval: Duration::from_millis(200),
        clean_every: 1,
        ..pool_config(0.00005)
    };
    let pool = pool(cfg).await;
    let path = summary_path("switch");
    // One mining thread leaves a core for the pool and the client, as on a real rig where the
    // pool is elsewhere.
    let child = miner(
        &[pool.url().to_string()],
        &["--threads", "1", "--duration", "8"],
        &path,
    );
    finish(child).await;
    let s = read_summary(&path);
    let t = &s["totals"];
    let (acc, stale, rej) = (
        t["accepted"].as_u64().unwrap(),
        t["stale"].as_u64().unwrap(),
        t["rejected"].as_u64().unwrap(),
    );
    assert!(
        pool.stats().blocks >= 20,
        "the pool switched blocks: {:?}",
        pool.stats().blocks
    );
    assert!(acc >= 300, "enough shares to measure: {t}");
    assert_eq!(rej, 0, "{t}");
    let fraction = stale as f64 / (acc + stale) as f64;
    let pool_stale = pool
        .stats()
        .total
        .rejected(stratum::server::RejectReason::Stale);
    eprintln!(
        "job switch every 200 ms: {acc} accepted, {stale} stale ({:.2} %; {pool_stale} of them judged stale by the pool)",
        fraction * 100.0
    );
    assert!(fraction < 0.05, "stale {stale} of {}: {t}", acc + stale);
    pool.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_between_messages_keeps_one_session() {
    let _serial = SERIAL.lock().await;
    let cfg = ServerConfig {
        garbage_lines: true,
        job_interval: Duration::from_millis(500),
        ..pool_config(0.002)
    };
    let pool = pool(cfg).await;
    let path = summary_path("garbage");
    let child = miner(
        &[pool.url().to_string()],
        &["--threads", "1", "--duration", "4"],
        &path,
    );
    finish(child).await;
    let s = read_summary(&path);
    assert!(s["totals"]["accepted"].as_u64().unwrap() > 0, "{s}");
    assert_eq!(s["totals"]["rejected"], 0);
    assert_eq!(s["reconnects"], 0, "{s}");
    assert_eq!(
        pool.stats().connections_total,
        1,
        "one session for the whole run"
    );
    pool.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fails_over_when_the_first_pool_dies_and_fails_back() {
    let _serial = SERIAL.lock().await;
    let first = pool(pool_config(0.002)).await;
    let first_addr = first.local_addr();
    let second = pool(pool_config(0.002)).await;
    let path = summary_path("failover");
    let urls = [first.url().to_string(), second.url().to_string()];
    let child = miner(
        &urls,
        &[
            "--threads",
            "1",
            "--duration",
            "30",
            "--failback-interval",
            "0.5",
        ],
        &path,
    );
    first
        .wait_for(|s| s.total.accepted > 0, WAIT)
        .await
        .expect("shares on the first pool");
    // The last statistics stay readable after the pool is gone.
    let first_stats = first.subscribe_stats();
    first.shutdown().await;
    second
        .wait_for(|s| s.total.accepted > 0, WAIT)
        .await
        .expect("failover: shares on the second pool");
    let back = pool(ServerConfig {
        listen: first_addr,
        ..pool_config(0.002)
    })
    .await;
    back.wait_for(|s| s.total.accepted > 0, WAIT)
        .await
        .expect("fail-back: shares on the first pool again");
    let id = child.id().expect("running") as i32;
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(id, libc::SIGTERM) };
    let (stdout, _) = finish(child).await;
    assert!(stdout.contains("summary:"));
    let s = read_summary(&path);
    assert!(s["failovers"].as_u64().unwrap() >= 2, "{s}");
    assert_eq!(s["totals"]["rejected"], 0, "{s}");
    let pools = s["pools"].as_array().unwrap();
    assert!(
        pools[0]["accepted"].as_u64().unwrap() > 0 && pools[1]["accepted"].as_u64().unwrap() > 0,
        "{s}"
    );
    // Each pool's acceptances are booked to that pool (read_summary already checked that each
    // pool's counts balance). At most what the pool itself counted: a pool that dies may
    // accept a share and lose the answer, which the worker then rightly counts as stale.
    let first_accepted =
        first_stats.borrow().worker("e2e.rig").accepted + back.stats().worker("e2e.rig").accepted;
    assert!(
        pools[0]["accepted"].as_u64().unwrap() <= first_accepted,
        "first pool accepted {first_accepted}: {s}"
    );
    let second_accepted = second.stats().worker("e2e.rig").accepted;
    assert!(
        pools[1]["accepted"].as_u64().unwrap() <= second_accepted,
        "second pool accepted {second_accepted}: {s}"
    );
    second.shutdown().await;
    back.shutdown().await;
}

/// Each stderr line is one JSON object.
fn assert_json_lines(stderr: &str) {
    let mut lines = 0;
    for line in stderr.lines().filter(|l| !l.trim().is_empty()) {
        let v: Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not a JSON log line ({e}): {line}"));
        assert!(v.is_object() && v.get("level").is_some(), "{line}");
        lines += 1;
    }
    assert!(lines > 0, "no log lines at all");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_logs_at_trace_level_never_show_the_password() {
    let _serial = SERIAL.lock().await;
    let pool = pool(pool_config(0.002)).await;
    let path = summary_path("json-trace");
    let mut c = miner_command(
        &[pool.url().to_string()],
        &[
            "--log-format",
            "json",
            "-vv",
            "--threads",
            "1",
            "--duration",
            "3",
        ],
        &path,
    );
    // RUST_LOG would override -vv; this test is about the most verbose level.
    c.env_remove("RUST_LOG");
    let child = c.spawn().expect("start rigworker");
    // finish() also fails if "secret-password" (the -p value) appears anywhere.
    let (_, stderr) = finish(child).await;
    assert_json_lines(&stderr);
    assert!(
        stderr.contains("\"level\":\"DEBUG\"") || stderr.contains("\"level\":\"TRACE\""),
        "-vv logs below info: {stderr}"
    );
    assert!(stderr.contains("accepted"), "{stderr}");
    read_summary(&path);
    pool.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_file_sets_the_log_format_and_the_environment_beats_its_pool_keys() {
    let _serial = SERIAL.lock().await;
    let pool = pool(pool_config(0.002)).await;
    let path = summary_path("config-env");
    let cfg = std::env::temp_dir().join(format!("rigworker-e2e-{}-rig.toml", std::process::id()));
    std::fs::write(
        &cfg,
        format!(
            "log_format = \"json\"\nthreads = 1\n[[pools]]\nurl = \"{}\"\nuser = \"file.rig\"\npass = \"file-secret\"\n",
            pool.url()
        ),
    )
    .unwrap();
    let mut c = Command::new(BIN);
    c.args(["mine", "--duration", "3", "--summary-json"])
        .arg(&path)
        .env_remove("RUST_LOG")
        .env("RIGWORKER_CONFIG", &cfg)
        .env("RIGWORKER_USER", "env.rig")
        .env("RIGWORKER_PASS", "env-secret")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let (stdout, stderr) = finish(c.spawn().expect("start rigworker")).await;
    let _ = std::fs::remove_file(&cfg);
    assert_json_lines(&stderr);
    for secret in ["env-secret", "file-secret"] {
        assert!(
            !stderr.contains(secret) && !stdout.contains(secret),
            "{secret} leaked"
        );
    }
    let s = read_summary(&path);
    let stats = pool.stats();
    assert!(stats.worker("env.rig").accepted > 0, "env user used: {s}");
    assert_eq!(
        stats.worker("env.rig").accepted,
        s["totals"]["accepted"].as_u64().unwrap()
    );
    assert!(
        !stats.workers.contains_key("file.rig"),
        "the file's user lost to RIGWORKER_USER"
    );
    pool.shutdown().await;
}

fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_cleanly_with_a_summary_and_memory_stays_small() {
    let _serial = SERIAL.lock().await;
    let pool = pool(pool_config(0.002)).await;
    let path = summary_path("sigterm");
    let child = miner(&[pool.url().to_string()], &["--threads", "2"], &path);
    pool.wait_for(|s| s.total.accepted >= 2, WAIT)
        .await
        .expect("shares before the signal");
    let pid = child.id().expect("running");
    let rss = rss_kib(pid);
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(pid as i32, libc::SIGTERM) };
    let (stdout, stderr) = finish(child).await;
    assert!(
        stdout.contains("summary:") && stdout.contains("accepted"),
        "{stdout}"
    );
    assert!(stderr.contains("stop requested"), "{stderr}");
    let s = read_summary(&path);
    assert_eq!(
        s["totals"]["in_flight"], 0,
        "every share answered before exit: {s}"
    );
    assert_eq!(
        s["totals"]["accepted"].as_u64().unwrap(),
        pool.stats().worker("e2e.rig").accepted
    );
    if let Some(kib) = rss {
        eprintln!(
            "resident memory while CPU mining: {:.1} MiB",
            kib as f64 / 1024.0
        );
        // A bound that catches a leak or a runaway buffer, far above the ~15 MiB measured,
        // so allocator and thread-stack differences between machines cannot fail it.
        assert!(kib < 256 * 1024, "RSS {kib} KiB");
    }
    pool.shutdown().await;
}

/// A pool offering both kinds of work: the worker proves each proving job (fetching each
/// circuit's key once, however often it proves it), the pool verifies the proofs, and hashing
/// goes on between them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proves_jobs_from_a_pool_that_offers_both_kinds_of_work() {
    let _serial = SERIAL.lock().await;
    let fixtures = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../proofs/fixtures");
    let mut cfg = pool_config(0.002);
    let mut proving = stratum::server::ProvingConfig::new(fixtures);
    proving.interval = Duration::from_millis(500);
    cfg.proving = Some(proving);
    let pool = pool(cfg).await;
    let cache = std::env::temp_dir().join(format!("rigworker-e2e-cache-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&cache);
    let path = summary_path("proving");
    let child = miner(
        &[pool.url().to_string()],
        &[
            "--threads",
            "2",
            "--duration",
            "10",
            "--prove",
            "--proving-cache",
            cache.to_str().unwrap(),
        ],
        &path,
    );
    let (stdout, stderr) = finish(child).await;
    let s = read_summary(&path);
    let p = &s["proving"];
    let accepted = p["accepted"].as_u64().unwrap();
    assert!(accepted >= 3, "proofs accepted: {p}\n{stderr}");
    // The operator sees each key's download and load once, and the proofs in the summary.
    assert_eq!(
        stderr.matches("downloading proving key").count() as u64,
        p["key_downloads"].as_u64().unwrap(),
        "{stderr}"
    );
    assert_eq!(
        stderr.matches("INFO loading proving key").count() as u64,
        p["key_loads"].as_u64().unwrap(),
        "{stderr}"
    );
    assert!(
        stdout.contains(&format!("proofs: jobs {}", p["jobs"])),
        "{stdout}"
    );
    assert!(
        stderr.contains(" | proofs "),
        "speed lines count proofs: {stderr}"
    );
    assert_eq!(p["rejected"], 0, "{p}");
    assert_eq!(p["failed"], 0, "{p}\n{stderr}");
    // Two circuits in the folder: each key downloaded once, then proven from the cache.
    assert_eq!(p["key_downloads"], 2, "{p}");
    let st = pool.stats();
    assert!(st.proofs_accepted >= accepted, "{st:?}");
    assert!(st.proofs_rejected.is_empty(), "{st:?}");
    // Hashing resumed between proofs.
    assert!(s["totals"]["accepted"].as_u64().unwrap() > 0, "{s}");
    assert_eq!(s["totals"]["rejected"], 0);
    let _ = std::fs::remove_dir_all(&cache);
    pool.shutdown().await;
}

/// A worker proving the same circuit again and again loads its key once: the proving-key
/// cache's LRU bookkeeping must not look like a changed file to the prover's key cache.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proving_keys_stay_loaded_across_jobs() {
    let _serial = SERIAL.lock().await;
    let fixtures = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../proofs/fixtures");
    let dir = std::env::temp_dir().join(format!("rigworker-e2e-onecircuit-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for f in ["mulchain.zkey", "mulchain.wtns"] {
        std::fs::copy(fixtures.join(f), dir.join(f)).unwrap();
    }
    let mut cfg = pool_config(0.002);
    let mut proving = stratum::server::ProvingConfig::new(dir.clone());
    proving.interval = Duration::from_millis(200);
    cfg.proving = Some(proving);
    let pool = pool(cfg).await;
    let cache = std::env::temp_dir().join(format!("rigworker-e2e-cache3-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&cache);
    let path = summary_path("key-loads");
    let child = miner(
        &[pool.url().to_string()],
        &[
            "--threads",
            "1",
            "--duration",
            "12",
            "--prove",
            "--proving-cache",
            cache.to_str().unwrap(),
        ],
        &path,
    );
    let (_, stderr) = finish(child).await;
    let s = read_summary(&path);
    let p = &s["proving"];
    let accepted = p["accepted"].as_u64().unwrap();
    assert!(accepted >= 3, "proofs accepted: {p}\n{stderr}");
    assert_eq!(p["failed"], 0, "{p}\n{stderr}");
    assert_eq!(p["key_downloads"], 1, "{p}");
    assert_eq!(p["key_loads"], 1, "the key was loaded again: {p}\n{stderr}");
    assert_eq!(stderr.matches("proving key loaded").count(), 1, "{stderr}");
    assert_eq!(
        stderr.matches("downloading proving key").count(),
        1,
        "{stderr}"
    );
    assert_eq!(
        stderr.matches("INFO loading proving key").count(),
        1,
        "{stderr}"
    );
    let _ = std::fs::remove_dir_all(&cache);
    let _ = std::fs::remove_dir_all(&dir);
    pool.shutdown().await;
}

/// The same with both sides as a user runs them: `rigworker pool --proving-dir` and
/// `rigworker mine --prove`, two processes over loopback.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pool_command_offers_proving_jobs_from_a_folder() {
    use tokio::io::AsyncBufReadExt;
    let _serial = SERIAL.lock().await;
    let fixtures = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../proofs/fixtures");
    let mut pool = Command::new(BIN)
        .args([
            "pool",
            "--listen",
            "127.0.0.1:0",
            "--difficulty",
            "0.002",
            "--proving-interval",
            "0.2",
            "--proving-dir",
        ])
        .arg(&fixtures)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("start rigworker pool");
    let mut lines = tokio::io::BufReader::new(pool.stdout.take().unwrap()).lines();
    let first = tokio::time::timeout(WAIT, lines.next_line())
        .await
        .expect("pool starts")
        .unwrap()
        .unwrap();
    let addr = first.rsplit(' ').next().unwrap().to_string();
    let cache = std::env::temp_dir().join(format!("rigworker-e2e-cache2-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&cache);
    let path = summary_path("pool-proving");
    let child = miner(
        &[format!("stratum+tcp://{addr}")],
        &[
            "--threads",
            "2",
            "--duration",
            "8",
            "--prove",
            "--proving-cache",
            cache.to_str().unwrap(),
        ],
        &path,
    );
    let (_, stderr) = finish(child).await;
    let s = read_summary(&path);
    let p = &s["proving"];
    assert!(p["accepted"].as_u64().unwrap() >= 2, "{p}\n{stderr}");
    assert_eq!(p["rejected"], 0, "{p}");
    assert!(stderr.contains("pool offers proving jobs"), "{stderr}");
    let _ = pool.start_kill();
    let _ = std::fs::remove_dir_all(&cache);
}

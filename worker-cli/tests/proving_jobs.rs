//! Proving jobs from a careless or hostile pool, end to end: the real `rigworker mine --prove`
//! against a scripted Stratum pool over loopback, with an HTTP server that records every
//! artifact request and never finishes a download (a stalled link). The queue of waiting jobs
//! is bounded, an expired job costs no download, a download is abandoned at its job's
//! deadline, artifacts come only from the pool's own host (or the hosts the operator allowed)
//! and redirects are not followed, `max_constraints` follows the rig's memory (or the
//! operator's cap), and a key larger than that is refused before it is loaded.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_rigworker");
const WAIT: Duration = Duration::from_secs(120);

/// One miner at a time: the machine is small.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

type Requests = Arc<Mutex<Vec<String>>>;

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

fn temp(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("rigworker-provejobs-{}-{name}", std::process::id()))
}

/// An artifact server that records each request's path and then holds the connection
/// without a body (a download that never ends); `/redirect` answers 302 to `/redirected`.
async fn stalling_http() -> (u16, Requests) {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = l.local_addr().expect("addr").port();
    let seen: Requests = Arc::default();
    let s = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut c, _)) = l.accept().await {
            let s = s.clone();
            tokio::spawn(async move {
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match c.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&head).to_string();
                let path = head.split(' ').nth(1).unwrap_or_default().to_string();
                s.lock().unwrap().push(path.clone());
                if path == "/redirect" {
                    let _ = c
                        .write_all(
                            format!(
                                "HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:{port}/redirected\r\nContent-Length: 0\r\n\r\n"
                            )
                            .as_bytes(),
                        )
                        .await;
                    return;
                }
                let _ = c
                    .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100000000\r\n\r\nzk")
                    .await;
                // Hold the connection until the worker gives up on it.
                while let Ok(n) = c.read(&mut buf).await {
                    if n == 0 {
                        break;
                    }
                }
            });
        }
    });
    (port, seen)
}

fn requests(r: &Requests) -> Vec<String> {
    r.lock().unwrap().clone()
}

/// A proving job whose zkey comes from `zkey_url`.
fn job(id: &str, zkey_url: &str, deadline: u64) -> Value {
    json!({
        "job_id": id,
        "circuit_id": format!("{:064x}", id.len() * 7 + id.bytes().map(usize::from).sum::<usize>()),
        "zkey_url": zkey_url,
        "zkey_size": 100_000_000u64,
        "witness": {"inline": "00"},
        "deadline": deadline,
    })
}

/// What the scripted pool sends after `prover.subscribe`: jobs, then (optionally) more jobs
/// once the artifact server has seen a request for a path.
struct Script {
    first: Vec<Value>,
    then: Option<(Requests, String, Vec<Value>)>,
    /// Once the artifact server has seen the path, the pool closes the connection; the next
    /// connection is a new session (another extranonce1) whose `prover.subscribe` gets these
    /// jobs.
    next_session: Option<(Requests, String, Vec<Value>)>,
}

/// A Stratum pool that answers the handshake, records `prover.subscribe`'s capabilities and
/// sends the script's jobs right after it.
async fn scripted_pool(script: Script) -> (u16, Arc<Mutex<Option<Value>>>) {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = l.local_addr().expect("addr").port();
    let caps: Arc<Mutex<Option<Value>>> = Arc::default();
    let c = caps.clone();
    let script = Arc::new(Mutex::new(Some(script)));
    let next: Arc<Mutex<Option<Vec<Value>>>> = Arc::default();
    let sessions = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    tokio::spawn(async move {
        while let Ok((conn, _)) = l.accept().await {
            let (c, script, next) = (c.clone(), script.clone(), next.clone());
            let session = sessions.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            tokio::spawn(async move {
                let (r, mut w) = conn.into_split();
                let mut lines = BufReader::new(r).lines();
                while let Ok(Some(line)) = lines.next_line().await {
                    let Ok(msg) = serde_json::from_str::<Value>(&line) else {
                        continue;
                    };
                    let method = msg["method"].as_str().unwrap_or_default().to_string();
                    let result = match method.as_str() {
                        "mining.subscribe" => json!([
                            [["mining.notify", format!("{:02x}", session + 1)]],
                            format!("{:08x}", 0x0800_0002 + session),
                            4
                        ]),
                        _ => json!(true),
                    };
                    let answer = json!({"id": msg["id"], "result": result, "error": null});
                    if w.write_all(format!("{answer}\n").as_bytes()).await.is_err() {
                        return;
                    }
                    if method != "prover.subscribe" {
                        continue;
                    }
                    *c.lock().unwrap() = Some(msg["params"][0].clone());
                    let Some(s) = script.lock().unwrap().take() else {
                        let later = next.lock().unwrap().take();
                        if let Some(jobs) = later {
                            let lines: String = jobs
                                .into_iter()
                                .map(|j| {
                                    format!(
                                        "{}\n",
                                        json!({"id": null, "method": "prover.notify", "params": [j]})
                                    )
                                })
                                .collect();
                            if w.write_all(lines.as_bytes()).await.is_err() {
                                return;
                            }
                        }
                        continue;
                    };
                    let send = |jobs: Vec<Value>| {
                        jobs.into_iter()
                            .map(|j| {
                                format!(
                                    "{}\n",
                                    json!({"id": null, "method": "prover.notify", "params": [j]})
                                )
                            })
                            .collect::<String>()
                    };
                    if w.write_all(send(s.first).as_bytes()).await.is_err() {
                        return;
                    }
                    if let Some((seen, path, jobs)) = s.then {
                        while !requests(&seen).contains(&path) {
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                        if w.write_all(send(jobs).as_bytes()).await.is_err() {
                            return;
                        }
                    }
                    if let Some((seen, path, jobs)) = s.next_session {
                        while !requests(&seen).contains(&path) {
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                        *next.lock().unwrap() = Some(jobs);
                        return;
                    }
                }
            });
        }
    });
    (port, caps)
}

/// Runs `rigworker mine --prove` against the pool for `secs`; returns the summary's
/// `proving` object and the log.
async fn mine(pool_port: u16, secs: &str, extra: &[&str]) -> (Value, String) {
    let summary = temp(&format!("summary-{pool_port}.json"));
    let cache = temp(&format!("cache-{pool_port}"));
    let out = Command::new(BIN)
        .args(["mine", "-o"])
        .arg(format!("stratum+tcp://127.0.0.1:{pool_port}"))
        .args([
            "-u",
            "t.rig",
            "--prove",
            "--no-version-rolling",
            "--threads",
            "1",
            "--duration",
            secs,
            "--proving-cache",
        ])
        .arg(&cache)
        .arg("--summary-json")
        .arg(&summary)
        .args(extra)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("start rigworker")
        .wait_with_output();
    let out = tokio::time::timeout(WAIT, out)
        .await
        .expect("rigworker exits")
        .expect("wait");
    let log = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "rigworker failed:\n{log}");
    let s: Value = serde_json::from_slice(&std::fs::read(&summary).expect("summary written"))
        .expect("summary JSON");
    let _ = std::fs::remove_file(&summary);
    remove_dir(&cache);
    (s["proving"].clone(), log)
}

fn remove_dir(p: &Path) {
    let _ = std::fs::remove_dir_all(p);
}

fn mem_total_bytes() -> Option<u64> {
    proofs::mem::meminfo_bytes("MemTotal:")
}

/// A pool that sends many jobs at once: one is proven (its download stalls here), a few wait,
/// the rest are refused on arrival instead of piling up in memory. The capabilities the
/// worker announced fit the rig's memory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_beyond_the_queue_are_refused_and_max_constraints_fits_the_memory() {
    let _serial = SERIAL.lock().await;
    let (http, seen) = stalling_http().await;
    let far = now_unix() + 3600;
    let url = |i: usize| format!("http://127.0.0.1:{http}/z{i}");
    // The first job is taken (its download starts) before the flood arrives, so exactly
    // QUEUE_CAPACITY (4) of the flood wait and the rest are refused.
    let flood: Vec<Value> = (1..=7)
        .map(|i| job(&format!("j{i}"), &url(i), far))
        .collect();
    let (pool, caps) = scripted_pool(Script {
        first: vec![job("j0", &url(0), far)],
        then: Some((seen.clone(), "/z0".into(), flood)),
        next_session: None,
    })
    .await;
    let (p, log) = mine(pool, "5", &[]).await;
    assert_eq!(p["refused"], 3, "{p}\n{log}");
    assert_eq!(p["jobs"], 1, "{p}\n{log}");
    assert_eq!(requests(&seen), ["/z0"], "{log}");
    assert!(log.contains("queue is full"), "{log}");

    let caps = caps.lock().unwrap().clone().expect("prover.subscribe sent");
    let max = caps["max_constraints"].as_u64().expect("max_constraints");
    assert!(max.is_power_of_two(), "{caps}");
    if let Some(total) = mem_total_bytes() {
        // At least 1 KiB per constraint, whatever the estimate: never more than memory allows.
        assert!(
            max <= total / 1024,
            "max_constraints {max} with {total} bytes of memory"
        );
    }
    assert!(
        log.contains(&format!("max_constraints={max}")),
        "the log says what was asked for:\n{log}"
    );
}

/// An expired job costs no download; a download that is still running at its job's deadline
/// is abandoned, and the next job goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deadlines_are_checked_before_and_during_the_fetch() {
    let _serial = SERIAL.lock().await;
    let (http, seen) = stalling_http().await;
    let now = now_unix();
    let url = |p: &str| format!("http://127.0.0.1:{http}/{p}");
    let (pool, _) = scripted_pool(Script {
        first: vec![
            job("expired", &url("expired"), now - 10),
            job("short", &url("stall"), now + 3),
            job("next", &url("after"), now + 3600),
        ],
        then: None,
        next_session: None,
    })
    .await;
    let (p, log) = mine(pool, "12", &[]).await;
    let r = requests(&seen);
    assert!(!r.contains(&"/expired".to_string()), "{r:?}\n{log}");
    assert!(r.contains(&"/stall".to_string()), "{r:?}\n{log}");
    assert!(
        r.contains(&"/after".to_string()),
        "the stalled fetch was not abandoned at its deadline: {r:?}\n{log}"
    );
    assert!(
        log.contains("deadline passed before its artifacts were fetched"),
        "{log}"
    );
    assert!(log.contains("fetch abandoned"), "{log}");
    assert!(p["failed"].as_u64() >= Some(2), "{p}");
}

/// A pool cannot point the rig at other hosts (its LAN) unless the operator allows them, and
/// a redirect is never followed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn artifacts_come_from_the_pool_s_host_unless_allowed() {
    let _serial = SERIAL.lock().await;
    let (http, seen) = stalling_http().await;
    let far = now_unix() + 3600;
    // `localhost` is another name than the pool's `127.0.0.1`: another host as far as the
    // worker can tell.
    let other = format!("http://localhost:{http}/other-host");
    let (pool, _) = scripted_pool(Script {
        first: vec![
            job("other", &other, far),
            job(
                "redirect",
                &format!("http://127.0.0.1:{http}/redirect"),
                far,
            ),
        ],
        then: None,
        next_session: None,
    })
    .await;
    let (p, log) = mine(pool, "4", &[]).await;
    assert_eq!(requests(&seen), ["/redirect"], "{log}");
    assert!(log.contains("--proving-artifact-hosts"), "{log}");
    assert_eq!(p["failed"], 2, "{p}\n{log}");

    // Allowed by the operator: fetched.
    let (pool, _) = scripted_pool(Script {
        first: vec![job("other", &other, far)],
        then: None,
        next_session: None,
    })
    .await;
    let (_, log) = mine(pool, "4", &["--proving-artifact-hosts", "localhost"]).await;
    assert!(
        requests(&seen).contains(&"/other-host".to_string()),
        "{:?}\n{log}",
        requests(&seen)
    );
}

/// A pool that sends a key larger than the rig asked for (`--prove-max-constraints`): it is
/// refused after its header is read, before it is loaded and prepared, and the job counts as
/// failed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_larger_than_asked_for_is_refused_before_loading() {
    let _serial = SERIAL.lock().await;
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../proofs/fixtures");
    let zkey = fixtures.join("mulchain.zkey");
    let bytes = std::fs::read(&zkey).expect("fixture zkey");
    let wtns = std::fs::read(fixtures.join("mulchain.wtns")).expect("fixture wtns");
    let id = stratum::proving::ArtifactId::of(&bytes);
    let store = Arc::new(stratum::http::ArtifactStore::new());
    store.insert(id, zkey);
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let http = l.local_addr().expect("addr").port();
    let server = tokio::spawn(stratum::http::serve_artifacts(l, store));
    let (pool, caps) = scripted_pool(Script {
        first: vec![json!({
            "job_id": "big",
            "circuit_id": id.to_hex(),
            "zkey_url": format!("http://127.0.0.1:{http}/artifacts/{}", id.to_hex()),
            "zkey_size": bytes.len(),
            "witness": {"inline": wtns.iter().map(|b| format!("{b:02x}")).collect::<String>()},
            "deadline": now_unix() + 3600,
        })],
        then: None,
        next_session: None,
    })
    .await;
    // 3 rounds down to 2: below the fixture's domain.
    let (p, log) = mine(pool, "4", &["--prove-max-constraints", "3"]).await;
    server.abort();
    let caps = caps.lock().unwrap().clone().expect("prover.subscribe sent");
    assert_eq!(caps["max_constraints"], 2, "{caps}");
    assert!(
        log.contains("more than the 2 this rig asked for"),
        "{p}\n{log}"
    );
    assert_eq!(p["key_downloads"], 1, "{p}\n{log}");
    assert_eq!(p["key_loads"], 0, "{p}\n{log}");
    assert_eq!(p["failed"], 1, "{p}\n{log}");
}

/// A job whose pool session ends for good (the pool comes back with a new session) can no
/// longer be submitted: its stalled download is abandoned at once and counted as lost, and
/// the new session's job is fetched without waiting for the old one's deadline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_of_an_ended_session_is_abandoned() {
    let _serial = SERIAL.lock().await;
    let (http, seen) = stalling_http().await;
    let far = now_unix() + 3600;
    let url = |p: &str| format!("http://127.0.0.1:{http}/{p}");
    let (pool, _) = scripted_pool(Script {
        first: vec![job("old", &url("old"), far)],
        then: None,
        next_session: Some((
            seen.clone(),
            "/old".into(),
            vec![job("new", &url("new"), far)],
        )),
    })
    .await;
    let (p, log) = mine(pool, "8", &[]).await;
    let r = requests(&seen);
    assert!(
        r.contains(&"/new".to_string()),
        "the new session's job waited for the old one: {r:?}\n{log}"
    );
    assert!(log.contains("proving job abandoned"), "{log}");
    assert_eq!(p["lost"], 1, "{p}\n{log}");
}

//! The built-in pool over real loopback sockets, driven by a raw miner written here: JSON
//! lines by hand, shares found by a small CPU brute force with `stratum::work`. Nothing
//! sleeps to wait for an event; every wait is on a message or on the stats, with a timeout.

mod common;

use std::collections::VecDeque;
use std::time::Duration;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use stratum::connection::Connection;
use stratum::message::{Incoming, PoolMessage, request_line};
use stratum::server::{
    RejectReason, Server, ServerConfig, ServerHandle, ServerStats, ServerTransport, TlsIdentity,
    VardiffConfig,
};
use stratum::transport::{PoolUrl, TlsOptions, connect};
use stratum::work::{Difficulty, ExtraNonce2, Extranonce, Hash256, Job, Share, Target};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

const WAIT: Duration = Duration::from_secs(5);
/// Low enough that a share takes a few thousand hashes.
const EASY: f64 = 1e-6;
const MASK: u32 = 0x1fff_e000;

fn config() -> ServerConfig {
    ServerConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        difficulty: EASY,
        // Long enough that no timer job interferes with a test unless it asks for one.
        job_interval: Duration::from_secs(600),
        ..Default::default()
    }
}

async fn pool(config: ServerConfig) -> ServerHandle {
    Server::bind(config).await.expect("bind").spawn()
}

async fn wait_stats(
    pool: &ServerHandle,
    what: &str,
    pred: impl FnMut(&ServerStats) -> bool,
) -> ServerStats {
    match pool.wait_for(pred, WAIT).await {
        Some(s) => s,
        None => panic!("timed out waiting for {what}; stats: {:#?}", pool.stats()),
    }
}

/// A job as this miner received it: the difficulty and extranonce in force for it.
#[derive(Clone, Debug)]
struct Work {
    job: Job,
    difficulty: f64,
    extranonce: Extranonce,
}

struct Miner {
    conn: Connection,
    next_id: u64,
    queued: VecDeque<(String, Vec<Value>)>,
    extranonce: Option<Extranonce>,
    difficulty: f64,
    /// Lines skipped because they were not valid, expected messages.
    garbage: usize,
}

impl Miner {
    async fn tcp(pool: &ServerHandle) -> Miner {
        let tcp = TcpStream::connect(pool.local_addr())
            .await
            .expect("connect");
        Miner::over(Connection::from_stream(Box::new(tcp), 1 << 20))
    }

    async fn url(url: &PoolUrl, tls: &TlsOptions) -> Miner {
        Miner::over(connect(url, tls, WAIT).await.expect("connect"))
    }

    fn over(conn: Connection) -> Miner {
        Miner {
            conn,
            next_id: 1,
            queued: VecDeque::new(),
            extranonce: None,
            difficulty: 0.0,
            garbage: 0,
        }
    }

    async fn send_raw(&mut self, line: &str) {
        self.conn.write_line(line).await.expect("write");
    }

    /// The next decodable message; anything else is counted as garbage and skipped.
    async fn read(&mut self) -> Incoming {
        loop {
            let line = tokio::time::timeout(WAIT, self.conn.read_line())
                .await
                .expect("timed out waiting for the pool")
                .expect("read")
                .expect("pool closed the connection");
            match Incoming::parse(&line) {
                Ok(m) => return m,
                Err(_) => self.garbage += 1,
            }
        }
    }

    /// Sends a request and returns its (result, error), queueing notifications read meanwhile.
    async fn call(&mut self, method: &str, params: Value) -> (Value, Value) {
        let id = self.next_id;
        self.next_id += 1;
        let params = params.as_array().cloned().unwrap_or_default();
        self.send_raw(&request_line(id, method, params)).await;
        loop {
            match self.read().await {
                Incoming::Response {
                    id: rid,
                    result,
                    error,
                } if rid == json!(id) => return (result, error),
                Incoming::Response { .. } => self.garbage += 1,
                Incoming::Request { method, params, .. } => self.queue(method, params),
            }
        }
    }

    fn queue(&mut self, method: String, params: Vec<Value>) {
        match PoolMessage::parse(&method, &params) {
            Ok(PoolMessage::Unknown(_)) | Err(_) => self.garbage += 1,
            Ok(_) => self.queued.push_back((method, params)),
        }
    }

    /// The next valid notification from the pool.
    async fn notification(&mut self) -> (String, Vec<Value>) {
        loop {
            if let Some(n) = self.queued.pop_front() {
                return n;
            }
            match self.read().await {
                Incoming::Request { method, params, .. } => self.queue(method, params),
                Incoming::Response { .. } => self.garbage += 1,
            }
        }
    }

    /// Follows set_difficulty / set_extranonce until the next job, as a miner does.
    async fn next_job(&mut self) -> Work {
        loop {
            let (method, params) = self.notification().await;
            match PoolMessage::parse(&method, &params).expect("valid notification") {
                PoolMessage::SetDifficulty(d) => self.difficulty = d.get(),
                PoolMessage::SetExtranonce(e) => self.extranonce = Some(e),
                PoolMessage::Notify(job) => {
                    return Work {
                        job,
                        difficulty: self.difficulty,
                        extranonce: self.extranonce.clone().expect("subscribed"),
                    };
                }
                other => panic!("unexpected {other:?}"),
            }
        }
    }

    async fn subscribe(&mut self) -> Value {
        let (result, error) = self
            .call("mining.subscribe", json!(["raw-test-miner/1.0"]))
            .await;
        assert_eq!(error, Value::Null);
        let en1 = result[1].as_str().expect("extranonce1");
        self.extranonce =
            Some(Extranonce::new(en1, result[2].as_u64().expect("size")).expect("extranonce"));
        result
    }

    async fn authorize(&mut self, user: &str) {
        let (result, error) = self.call("mining.authorize", json!([user, "secret"])).await;
        assert_eq!((result, error), (json!(true), Value::Null));
    }

    /// Subscribe, authorize, and the first job.
    async fn handshake(&mut self, user: &str) -> Work {
        self.subscribe().await;
        self.authorize(user).await;
        self.next_job().await
    }

    async fn submit(&mut self, worker: &str, share: &Share) -> (Value, Value) {
        self.call("mining.submit", Value::from(share.submit_params(worker)))
            .await
    }

    async fn submit_ok(&mut self, worker: &str, share: &Share) {
        let r = self.submit(worker, share).await;
        assert_eq!(r, (json!(true), Value::Null), "share {share:?} was refused");
    }

    async fn submit_rejected(&mut self, worker: &str, share: &Share, code: i64) {
        let (result, error) = self.submit(worker, share).await;
        assert!(
            !result.as_bool().unwrap_or(false),
            "share {share:?} was accepted"
        );
        assert_eq!(error[0], json!(code), "{error}");
    }

    /// Whether the pool closes this connection (EOF or reset) within the timeout.
    async fn is_closed(&mut self) -> bool {
        let closed = async {
            loop {
                match self.conn.read_line().await {
                    Ok(Some(_)) => continue,
                    Ok(None) | Err(_) => return,
                }
            }
        };
        tokio::time::timeout(WAIT, closed).await.is_ok()
    }
}

/// Brute-forces a nonce for `w` whose hash satisfies `accept`, starting at `from`.
fn find_share(
    w: &Work,
    en2: u64,
    version_bits: Option<u32>,
    from: u32,
    accept: impl Fn(&Hash256) -> bool,
) -> Share {
    let extranonce2 = ExtraNonce2::new(en2, w.extranonce.extranonce2_size).unwrap();
    let version = version_bits.map_or(w.job.version, |b| w.job.rolled_version(MASK, b));
    let header = w
        .job
        .header(&w.extranonce, &extranonce2, w.job.ntime, version);
    for nonce in from..u32::MAX {
        if accept(&header.with_nonce(nonce).hash()) {
            return Share {
                job_id: w.job.job_id.clone(),
                extranonce2,
                ntime: w.job.ntime,
                nonce,
                version_bits,
            };
        }
    }
    panic!("no share found");
}

fn target(d: f64) -> Target {
    Difficulty::new(d).unwrap().target()
}

/// A share meeting the job's difficulty.
fn good_share(w: &Work, en2: u64) -> Share {
    let t = target(w.difficulty);
    find_share(w, en2, None, 0, |h| t.is_met_by(h))
}

#[tokio::test]
async fn handshake_notifications_and_an_accepted_share() {
    let pool = pool(config()).await;
    let mut m = Miner::tcp(&pool).await;
    let result = m.subscribe().await;
    // [[["mining.set_difficulty", sid], ["mining.notify", sid]], extranonce1, extranonce2_size]
    let subs = result[0].as_array().unwrap();
    assert_eq!(subs[0][0], "mining.set_difficulty");
    assert_eq!(subs[1][0], "mining.notify");
    assert_eq!(result[1].as_str().unwrap().len(), 8);
    assert_eq!(result[2], 4);
    m.authorize("alice.rig1").await;
    // difficulty first, then a clean job
    let (method, params) = m.notification().await;
    assert_eq!(method, "mining.set_difficulty");
    assert_eq!(params[0].as_f64(), Some(EASY));
    let (method, params) = m.notification().await;
    assert_eq!(method, "mining.notify");
    assert_eq!(params.len(), 9);
    assert_eq!(params[8], json!(true));
    let Ok(PoolMessage::Notify(job)) = PoolMessage::parse(&method, &params) else {
        panic!("bad notify")
    };
    assert_eq!(job.version, 0x2000_0000);
    assert!(job.merkle_branch.len() <= 3);
    let w = Work {
        job,
        difficulty: EASY,
        extranonce: m.extranonce.clone().unwrap(),
    };

    m.submit_ok("alice.rig1", &good_share(&w, 0)).await;
    let s = wait_stats(&pool, "one accepted share", |s| s.total.accepted == 1).await;
    let alice = s.worker("alice.rig1");
    assert_eq!(alice.accepted, 1);
    assert_eq!(alice.accepted_difficulty, EASY);
    assert!(alice.best_difficulty >= EASY);
    assert_eq!(alice.rejected_total(), 0);
    assert_eq!((s.connections, s.connections_total), (1, 1));
    pool.shutdown().await;
}

#[tokio::test]
async fn every_rejection_reason() {
    let pool = pool(config()).await;
    use RejectReason as R;

    // submit before subscribe
    let mut early = Miner::tcp(&pool).await;
    let (_, error) = early
        .call(
            "mining.submit",
            json!(["alice", "0", "00000000", "00000000", "00000000"]),
        )
        .await;
    assert_eq!(error[0], 25);

    let mut m = Miner::tcp(&pool).await;
    let w = m.handshake("alice").await;
    let good = good_share(&w, 1);
    m.submit_ok("alice", &good).await;

    m.submit_rejected("alice", &good, 22).await; // duplicate
    m.submit_rejected("mallory", &good_share(&w, 2), 24).await; // never authorized
    let t = target(w.difficulty);
    let low = find_share(&w, 3, None, 0, |h| !t.is_met_by(h));
    m.submit_rejected("alice", &low, 23).await;
    let unknown = Share {
        job_id: "nope".into(),
        ..good.clone()
    };
    m.submit_rejected("alice", &unknown, 21).await;
    let early_ntime = Share {
        ntime: w.job.ntime - 1,
        ..good.clone()
    };
    m.submit_rejected("alice", &early_ntime, 20).await;
    let late_ntime = Share {
        ntime: w.job.ntime + 7201,
        ..good.clone()
    };
    m.submit_rejected("alice", &late_ntime, 20).await;
    // version rolling was never configured on this connection
    let rolled = Share {
        version_bits: Some(0x0000_2000),
        ..good_share(&w, 4)
    };
    m.submit_rejected("alice", &rolled, 20).await;

    // extranonce2 of the wrong size, and not hex
    let p = good.submit_params("alice");
    for en2 in ["000000", "0000000000", "zzzzzzzz"] {
        let (_, error) = m
            .call("mining.submit", json!([p[0], p[1], en2, p[3], p[4]]))
            .await;
        assert_eq!(error[0], 20, "{en2}");
    }
    let (_, error) = m
        .call("mining.submit", json!([p[0], p[1], p[2], "xyz", p[4]]))
        .await;
    assert_eq!(error[0], 20);
    // malformed: too few params, nonce not hex, wrong types
    for params in [
        json!(["alice", "0"]),
        json!([p[0], p[1], p[2], p[3], "12345"]),
        json!([1, 2, 3, 4, 5]),
    ] {
        let (result, error) = m.call("mining.submit", params.clone()).await;
        assert_eq!(result, Value::Null);
        assert_eq!(error[0], 20, "{params}");
    }

    let s = wait_stats(&pool, "all rejections", |s| s.total.rejected_total() == 15).await;
    let expect = [
        (R::NotSubscribed, 1),
        (R::Duplicate, 1),
        (R::Unauthorized, 1),
        (R::LowDifficulty, 1),
        (R::UnknownJob, 1),
        (R::BadNtime, 3),
        (R::BadVersion, 1),
        (R::BadExtranonce2, 3),
        (R::Malformed, 3),
    ];
    for (reason, n) in expect {
        assert_eq!(s.total.rejected(reason), n, "{reason:?}");
    }
    assert_eq!(s.total.accepted, 1);
    // Only authorized names get their own counts (minus the unparseable ones).
    let alice = s.worker("alice");
    assert_eq!((alice.accepted, alice.rejected_total()), (1, 11));
    assert!(!s.workers.contains_key("mallory"));
    pool.shutdown().await;
}

/// Worker names come from miners: the pool counts at most `max_worker_stats` of them, and
/// drops the least recently active first (the totals keep every share).
#[tokio::test]
async fn per_worker_stats_are_bounded() {
    let pool = pool(ServerConfig {
        max_worker_stats: 3,
        ..config()
    })
    .await;
    let mut names = Vec::new();
    for i in 0..8 {
        // A new connection (and name) each time, as a pool sees reconnecting rigs.
        let name = format!("rig{i}");
        let mut m = Miner::tcp(&pool).await;
        let w = m.handshake(&name).await;
        m.submit_ok(&name, &good_share(&w, 1)).await;
        names.push((name, m, w));
        // rig0 stays active: it must survive the pruning.
        let (n0, m0, w0) = &mut names[0];
        if i > 0 {
            // A duplicate (or, after a new block, stale): rejected, counted for rig0.
            let (result, _) = m0.submit(n0, &good_share(w0, 1)).await;
            assert_ne!(result, json!(true));
        }
    }
    let s = wait_stats(&pool, "every share", |s| s.total.accepted == 8).await;
    assert_eq!(s.total.rejected_total(), 7);
    assert!(s.workers.len() <= 3, "{:?}", s.workers.keys());
    assert!(s.workers.contains_key("rig0"), "{:?}", s.workers.keys());
    assert!(s.workers.contains_key("rig7"), "{:?}", s.workers.keys());
    assert_eq!(s.workers_pruned, 5);
    pool.shutdown().await;
}

/// The headers a connection has accepted on one job are bounded: beyond the bound its shares
/// on that job are stale (duplicates stay duplicates), so a miner at a tiny difficulty cannot
/// grow the pool's memory until the next job.
#[tokio::test]
async fn accepted_shares_per_job_are_bounded() {
    let mut cfg = config();
    cfg.max_shares_per_job = 2;
    let pool = pool(cfg).await;
    let mut m = Miner::tcp(&pool).await;
    let w = m.handshake("alice").await;
    let first = good_share(&w, 0);
    m.submit_ok("alice", &first).await;
    m.submit_ok("alice", &good_share(&w, 1)).await;
    m.submit_rejected("alice", &good_share(&w, 2), 21).await;
    m.submit_rejected("alice", &first, 22).await;
    let s = wait_stats(&pool, "two accepted", |s| s.total.accepted == 2).await;
    assert_eq!(s.worker("alice").accepted, 2);
    pool.shutdown().await;
}

/// And across a connection's jobs: once they remember the bound, the oldest job is forgotten
/// (its shares are stale), so spreading shares over many jobs does not grow the memory either.
#[tokio::test]
async fn accepted_shares_per_connection_are_bounded() {
    let mut cfg = config();
    cfg.max_shares_per_job = 4;
    let pool = pool(cfg).await;
    let mut m = Miner::tcp(&pool).await;
    let w1 = m.handshake("alice").await;
    for en2 in 0..3 {
        m.submit_ok("alice", &good_share(&w1, en2)).await;
    }
    pool.new_job();
    let w2 = m.next_job().await;
    for en2 in 0..3 {
        m.submit_ok("alice", &good_share(&w2, en2)).await;
    }
    // Job 1 made room for job 2's shares: it is forgotten.
    m.submit_rejected("alice", &good_share(&w1, 3), 21).await;
    pool.shutdown().await;
}

#[tokio::test]
async fn stale_after_new_block_but_not_after_new_job() {
    let pool = pool(config()).await;
    let mut m = Miner::tcp(&pool).await;
    let w1 = m.handshake("w").await;

    // a job of the same block keeps older jobs valid
    let id2 = pool.new_job();
    let w2 = m.next_job().await;
    assert_eq!(w2.job.job_id, id2);
    assert!(!w2.job.clean_jobs);
    assert_eq!(w2.job.prevhash, w1.job.prevhash);
    m.submit_ok("w", &good_share(&w1, 1)).await;
    m.submit_ok("w", &good_share(&w2, 1)).await;

    // a new block makes both stale
    let id3 = pool.new_block();
    let w3 = m.next_job().await;
    assert_eq!(w3.job.job_id, id3);
    assert!(w3.job.clean_jobs);
    assert_ne!(w3.job.prevhash, w1.job.prevhash);
    m.submit_rejected("w", &good_share(&w1, 2), 21).await;
    m.submit_rejected("w", &good_share(&w2, 2), 21).await;
    m.submit_ok("w", &good_share(&w3, 2)).await;
    let s = pool.stats();
    assert_eq!(
        (s.total.accepted, s.total.rejected(RejectReason::Stale)),
        (3, 2)
    );
    assert_eq!((s.jobs, s.blocks), (3, 2));
    pool.shutdown().await;
}

#[tokio::test]
async fn fractional_difficulty() {
    // Not a power of two, ~8100x easier than difficulty 1: ~530k hashes per share.
    let d = 0.000_123_4;
    let pool = pool(ServerConfig {
        difficulty: d,
        ..config()
    })
    .await;
    let mut m = Miner::tcp(&pool).await;
    let w = m.handshake("w").await;
    assert_eq!(w.difficulty, d);
    let (t, half) = (target(d), target(d / 2.0));
    // Meets half the difficulty but not the difficulty: refused.
    let almost = find_share(&w, 0, None, 0, |h| half.is_met_by(h) && !t.is_met_by(h));
    m.submit_rejected("w", &almost, 23).await;
    let good = find_share(&w, 0, None, 0, |h| t.is_met_by(h));
    m.submit_ok("w", &good).await;
    let s = pool.stats();
    assert_eq!(s.total.accepted_difficulty, d);
    assert!(s.total.best_difficulty >= d);
    pool.shutdown().await;
}

#[tokio::test]
async fn version_rolling_inside_the_mask() {
    let pool = pool(config()).await;
    let mut m = Miner::tcp(&pool).await;
    let (result, error) = m
        .call(
            "mining.configure",
            json!([["version-rolling", "minimum-difficulty"], {"version-rolling.mask": "ffffffff", "version-rolling.min-bit-count": 2}]),
        )
        .await;
    assert_eq!(error, Value::Null);
    assert_eq!(result["version-rolling"], true);
    assert_eq!(result["version-rolling.mask"], "1fffe000");
    assert_eq!(result["minimum-difficulty"], false);
    let w = m.handshake("w").await;
    let t = target(w.difficulty);

    for bits in [0x0000_2000, 0x1fff_e000, 0x0abc_0000] {
        let share = find_share(&w, 0, Some(bits), 0, |h| t.is_met_by(h));
        m.submit_ok("w", &share).await;
    }
    // one bit outside the mask
    let outside = find_share(&w, 1, Some(0x0000_3000), 0, |h| t.is_met_by(h));
    m.submit_rejected("w", &outside, 20).await;
    // A share found with a rolled version but submitted without it hashes differently.
    let mut from = 0;
    let unrolled = loop {
        let s = find_share(&w, 2, Some(0x0000_4000), from, |h| t.is_met_by(h));
        let unrolled = Share {
            version_bits: None,
            ..s.clone()
        };
        if !t.is_met_by(&unrolled.header(&w.job, &w.extranonce, MASK).hash()) {
            break unrolled;
        }
        from = s.nonce + 1;
    };
    m.submit_rejected("w", &unrolled, 23).await;
    let s = pool.stats();
    assert_eq!(s.total.accepted, 3);
    assert_eq!(s.total.rejected(RejectReason::BadVersion), 1);

    // A miner asking for bits the pool does not allow gets no rolling.
    let mut other = Miner::tcp(&pool).await;
    let (result, _) = other
        .call(
            "mining.configure",
            json!([["version-rolling"], {"version-rolling.mask": "00001fff"}]),
        )
        .await;
    assert_eq!(result["version-rolling"], false);
    pool.shutdown().await;
}

#[tokio::test]
async fn vardiff_applies_from_the_next_job() {
    let vardiff = VardiffConfig {
        target_share_secs: 1000.0,
        min: 1e-7,
        max: 1.0,
        retarget_shares: 3,
    };
    let pool = pool(ServerConfig {
        vardiff: Some(vardiff),
        ..config()
    })
    .await;
    let mut m = Miner::tcp(&pool).await;
    let w1 = m.handshake("w").await;
    for en2 in 0..3 {
        m.submit_ok("w", &good_share(&w1, en2)).await;
    }
    // Three shares in far less than 3000 s: the difficulty goes up by the maximum step,
    // announced before other work of the same block under a new id.
    let w2 = m.next_job().await;
    assert_eq!(w2.difficulty, EASY * 4.0);
    assert_ne!(w2.job.job_id, w1.job.job_id);
    assert_eq!(w2.job.prevhash, w1.job.prevhash);
    assert_ne!(w2.job.merkle_branch, w1.job.merkle_branch);
    assert!(!w2.job.clean_jobs);

    let (old, new) = (target(EASY), target(EASY * 4.0));
    let between = |h: &Hash256| old.is_met_by(h) && !new.is_met_by(h);
    // The old job is still judged at the difficulty it was sent with...
    m.submit_ok("w", &find_share(&w1, 10, None, 0, between))
        .await;
    // ...the new one at the new difficulty.
    m.submit_rejected("w", &find_share(&w2, 10, None, 0, between), 23)
        .await;
    m.submit_ok("w", &good_share(&w2, 11)).await;
    let s = pool.stats();
    // 4 shares credited at the old difficulty, 1 at the new
    assert!(
        (s.total.accepted_difficulty / (8.0 * EASY) - 1.0).abs() < 1e-12,
        "{s:?}"
    );
    pool.shutdown().await;
}

#[tokio::test]
async fn suggest_difficulty_is_honoured_and_clamped() {
    let vardiff = VardiffConfig {
        target_share_secs: 10.0,
        min: 1e-7,
        max: 1e-3,
        retarget_shares: 1000,
    };
    let pool = pool(ServerConfig {
        vardiff: Some(vardiff),
        ..config()
    })
    .await;
    let mut m = Miner::tcp(&pool).await;
    m.call("mining.suggest_difficulty", json!([2e-6])).await;
    let w = m.handshake("w").await;
    assert_eq!(w.difficulty, 2e-6);
    // after work started: set_difficulty and a job at that difficulty, clamped to vardiff max
    let (result, _) = m.call("mining.suggest_difficulty", json!([5.0])).await;
    assert_eq!(result, true);
    let w2 = m.next_job().await;
    assert_eq!(w2.difficulty, 1e-3);
    // the earlier job keeps its difficulty
    m.submit_ok("w", &good_share(&w, 0)).await;
    pool.shutdown().await;
}

#[tokio::test]
async fn set_extranonce_reaches_subscribers() {
    let pool = pool(config()).await;
    let mut m = Miner::tcp(&pool).await;
    let (result, error) = m.call("mining.extranonce.subscribe", json!([])).await;
    assert_eq!((result, error), (json!(true), Value::Null));
    let w1 = m.handshake("w").await;
    let mut plain = Miner::tcp(&pool).await;
    let p1 = plain.handshake("p").await;

    pool.set_extranonce();
    let w2 = m.next_job().await;
    assert_ne!(w2.extranonce.extranonce1, w1.extranonce.extranonce1);
    assert_eq!(w2.extranonce.extranonce2_size, 4);
    assert!(w2.job.clean_jobs);
    m.submit_ok("w", &good_share(&w2, 0)).await;
    // the earlier job under the earlier extranonce1 is still fine
    m.submit_ok("w", &good_share(&w1, 0)).await;
    // a connection that did not subscribe to extranonce changes is left alone
    plain.submit_ok("p", &good_share(&p1, 0)).await;
    pool.new_job();
    assert_eq!(plain.next_job().await.extranonce, p1.extranonce);
    pool.shutdown().await;
}

#[tokio::test]
async fn requests_the_pool_does_not_understand() {
    let pool = pool(config()).await;
    let mut m = Miner::tcp(&pool).await;
    let (result, error) = m.call("mining.get_transactions", json!([])).await;
    assert_eq!(result, Value::Null);
    assert_eq!(error[0], 20);
    // Lines without an id get no answer and do not end the session.
    for line in [
        "{not json",
        "",
        "[1,2]",
        r#"{"id":99,"result":true,"error":null}"#,
        "\u{1}\u{2}",
    ] {
        m.send_raw(line).await;
    }
    m.send_raw(r#"{"id":null,"method":"mining.whatever","params":[]}"#)
        .await;
    // Bad params with an id are answered with an error.
    let (_, error) = m.call("mining.authorize", json!([])).await;
    assert_eq!(error[0], 20);
    let (_, error) = m.call("mining.authorize", json!([""])).await;
    assert_eq!(error[0], 24);
    let (_, error) = m.call("mining.suggest_difficulty", json!(["abc"])).await;
    assert_eq!(error[0], 20);
    let (_, error) = m.call("mining.configure", json!(["version-rolling"])).await;
    assert_eq!(error[0], 20);
    let w = m.handshake("w").await;
    m.submit_ok("w", &good_share(&w, 0)).await;
    assert_eq!(m.garbage, 0);
    pool.shutdown().await;
}

#[tokio::test]
async fn overlong_line_closes_only_that_connection() {
    let pool = pool(ServerConfig {
        max_line: 4096,
        ..config()
    })
    .await;
    let mut good = Miner::tcp(&pool).await;
    let w = good.handshake("good").await;
    let mut bad = Miner::tcp(&pool).await;
    bad.subscribe().await;
    let long = format!(
        r#"{{"id":1,"method":"mining.subscribe","params":["{}"]}}"#,
        "a".repeat(5000)
    );
    bad.send_raw(&long).await;
    assert!(
        bad.is_closed().await,
        "the pool kept a connection that sent an over-long line"
    );
    wait_stats(&pool, "the bad connection to close", |s| s.connections == 1).await;
    good.submit_ok("good", &good_share(&w, 0)).await;
    pool.shutdown().await;
}

#[tokio::test]
async fn max_connections_is_enforced() {
    let pool = pool(ServerConfig {
        max_connections: 2,
        ..config()
    })
    .await;
    let mut a = Miner::tcp(&pool).await;
    a.subscribe().await;
    let mut b = Miner::tcp(&pool).await;
    b.subscribe().await;
    let mut refused = TcpStream::connect(pool.local_addr()).await.unwrap();
    let mut buf = [0u8; 64];
    let n = tokio::time::timeout(WAIT, refused.read(&mut buf))
        .await
        .expect("refused connection left open");
    assert!(matches!(n, Ok(0) | Err(_)), "{n:?}");
    let s = wait_stats(&pool, "a refusal", |s| s.connections_refused == 1).await;
    assert_eq!(s.connections, 2);
    // a slot frees up when a miner leaves
    drop(a);
    wait_stats(&pool, "a disconnect", |s| s.connections == 1).await;
    let mut c = Miner::tcp(&pool).await;
    let w = c.handshake("c").await;
    c.submit_ok("c", &good_share(&w, 0)).await;
    let s = pool.stats();
    assert_eq!((s.connections_total, s.connections_refused), (3, 1));
    drop(b);
    pool.shutdown().await;
}

fn self_signed() -> (TlsIdentity, TlsOptions) {
    let ck =
        rcgen::generate_simple_self_signed(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .unwrap();
    let der = ck.cert.der().to_vec();
    let pin: [u8; 32] = Sha256::digest(&der).into();
    let id = TlsIdentity {
        cert_chain_der: vec![der],
        key_der: ck.signing_key.serialize_der(),
    };
    (
        id,
        TlsOptions {
            fingerprint: Some(pin),
            ..Default::default()
        },
    )
}

async fn one_share_over(transport: ServerTransport, tls: TlsOptions) {
    let pool = pool(ServerConfig {
        transport,
        ..config()
    })
    .await;
    let mut m = Miner::url(&pool.url(), &tls).await;
    let w = m.handshake("w").await;
    m.submit_ok("w", &good_share(&w, 0)).await;
    m.submit_rejected("w", &good_share(&w, 0), 22).await;
    pool.shutdown().await;
}

#[tokio::test]
async fn tls_transport() {
    let (id, tls) = self_signed();
    one_share_over(ServerTransport::Tls(id), tls).await;
}

#[tokio::test]
async fn websocket_transport() {
    one_share_over(ServerTransport::Ws, TlsOptions::default()).await;
}

#[tokio::test]
async fn websocket_over_tls_transport() {
    let (id, tls) = self_signed();
    one_share_over(ServerTransport::Wss(id), tls).await;
}

/// The plain WebSocket client handshake, without the crate's transport code.
#[tokio::test]
async fn websocket_with_a_bare_tungstenite_client() {
    let pool = pool(ServerConfig {
        transport: ServerTransport::Ws,
        ..config()
    })
    .await;
    let tcp = TcpStream::connect(pool.local_addr()).await.unwrap();
    let url = format!("ws://{}/stratum", pool.local_addr());
    let (ws, _) =
        tokio_tungstenite::client_async(url, Box::new(tcp) as stratum::transport::BoxStream)
            .await
            .unwrap();
    let mut m = Miner::over(Connection::from_ws(ws, 1 << 20));
    let w = m.handshake("w").await;
    m.submit_ok("w", &good_share(&w, 0)).await;
    pool.shutdown().await;
}

#[tokio::test]
async fn wrong_tls_pin_is_refused() {
    let (id, _) = self_signed();
    let pool = pool(ServerConfig {
        transport: ServerTransport::Tls(id),
        ..config()
    })
    .await;
    let tls = TlsOptions {
        fingerprint: Some([0; 32]),
        ..Default::default()
    };
    assert!(connect(&pool.url(), &tls, WAIT).await.is_err());
    // `insecure` never silently drops a pin: the wrong pin still refuses the pool.
    let tls = TlsOptions {
        fingerprint: Some([0; 32]),
        insecure: true,
        ..Default::default()
    };
    assert!(connect(&pool.url(), &tls, WAIT).await.is_err());
    // the pool is unaffected
    let s = wait_stats(&pool, "the failed handshakes to end", |s| {
        s.connections == 0 && s.connections_total == 2
    })
    .await;
    assert_eq!(s.total.accepted, 0);
    pool.shutdown().await;
}

#[tokio::test]
async fn jobs_rotate_on_a_timer() {
    let pool = pool(ServerConfig {
        job_interval: Duration::from_millis(20),
        clean_every: 2,
        ..config()
    })
    .await;
    let mut m = Miner::tcp(&pool).await;
    let first = m.handshake("w").await;
    let mut last = first.clone();
    let mut cleans = 0;
    for _ in 0..4 {
        let w = m.next_job().await;
        assert_ne!(w.job.job_id, last.job.job_id);
        // a clean job and only a clean job brings a new prevhash
        assert_eq!(
            w.job.clean_jobs,
            w.job.prevhash != last.job.prevhash,
            "{w:?}"
        );
        cleans += usize::from(w.job.clean_jobs);
        last = w;
    }
    // At least four jobs were made, so a block changed at least once. (A connection that
    // misses a job can see more clean jobs than every other one, never fewer than that.)
    assert!(cleans >= 1, "no clean job among 4 with clean_every 2");
    assert!(pool.stats().jobs >= 5);
    pool.shutdown().await;
}

#[tokio::test]
async fn garbage_lines_between_messages() {
    let pool = pool(ServerConfig {
        garbage_lines: true,
        ..config()
    })
    .await;
    let mut m = Miner::tcp(&pool).await;
    let w = m.handshake("w").await;
    m.submit_ok("w", &good_share(&w, 0)).await;
    m.submit_rejected("w", &good_share(&w, 0), 22).await;
    // a garbage line came before each of: subscribe and authorize answers, set_difficulty,
    // notify, two submit answers
    assert!(m.garbage >= 6, "only {} garbage lines seen", m.garbage);
    pool.shutdown().await;
}

#[tokio::test]
async fn shutdown_closes_connections() {
    let pool = pool(config()).await;
    let addr = pool.local_addr();
    let mut m = Miner::tcp(&pool).await;
    m.handshake("w").await;
    pool.shutdown().await;
    assert!(m.is_closed().await);
    assert!(TcpStream::connect(addr).await.is_err());
}

#[tokio::test]
async fn connections_that_never_log_in_are_closed() {
    let pool = pool(ServerConfig {
        login_timeout: Duration::from_millis(100),
        ..config()
    })
    .await;
    let mut working = Miner::tcp(&pool).await;
    let w = working.handshake("w").await;
    let mut lingering = Miner::tcp(&pool).await;
    lingering.subscribe().await;
    assert!(lingering.is_closed().await);
    wait_stats(&pool, "the lingering connection to close", |s| {
        s.connections == 1
    })
    .await;
    // connected earlier, so past its own deadline too, but it logged in: still served
    working.submit_ok("w", &good_share(&w, 0)).await;
    pool.shutdown().await;
}

#[tokio::test]
async fn huge_configured_durations_do_not_panic() {
    let pool = pool(ServerConfig {
        job_interval: Duration::MAX,
        login_timeout: Duration::MAX,
        ntime_window: Duration::MAX,
        ..config()
    })
    .await;
    let mut m = Miner::tcp(&pool).await;
    let w = m.handshake("w").await;
    m.submit_ok("w", &good_share(&w, 0)).await;
    // A share before the job's ntime is still refused, window or not.
    let early = Share {
        ntime: w.job.ntime - 1,
        ..good_share(&w, 1)
    };
    m.submit_rejected("w", &early, 20).await;
    pool.shutdown().await;
}

#[tokio::test]
async fn a_flood_of_bad_lines_is_cut_off() {
    let pool = pool(config()).await;
    let mut m = Miner::tcp(&pool).await;
    m.subscribe().await;
    for _ in 0..40 {
        m.send_raw("{garbage").await;
    }
    assert!(m.is_closed().await);
    pool.shutdown().await;
}

#[tokio::test]
async fn bind_errors_are_typed() {
    let taken = pool(config()).await;
    let err = Server::bind(ServerConfig {
        listen: taken.local_addr(),
        ..config()
    })
    .await
    .err()
    .unwrap();
    assert!(
        matches!(err, stratum::server::ServerError::Bind { .. }),
        "{err}"
    );
    let err = Server::bind(ServerConfig {
        difficulty: -1.0,
        ..config()
    })
    .await
    .err()
    .unwrap();
    assert!(
        matches!(err, stratum::server::ServerError::Config(_)),
        "{err}"
    );
    let addr = taken.local_addr();
    taken.shutdown().await;
    // the address is free again
    Server::bind(ServerConfig {
        listen: addr,
        ..config()
    })
    .await
    .expect("rebind");
}

/// Worker names are the miner's words: logged escaped, once per name and connection, so a
/// name cannot forge log lines or flood the log by authorizing again and again.
#[tokio::test]
async fn worker_names_are_logged_escaped_and_once() {
    let (logs, _guard) = common::Logs::capture();
    let pool = pool(config()).await;
    let mut m = Miner::tcp(&pool).await;
    m.subscribe().await;
    let forged = "w\n2026-01-01T00:00:00Z  INFO share accepted \u{1b}[2J";
    for _ in 0..5 {
        m.authorize(forged).await;
    }
    pool.shutdown().await;
    let text = logs.text();
    assert_eq!(text.matches("worker authorized").count(), 1, "{text}");
    assert!(!text.contains("\n2026-01-01"), "a forged line: {text}");
    assert!(!text.contains('\u{1b}'), "a terminal escape: {text}");
}

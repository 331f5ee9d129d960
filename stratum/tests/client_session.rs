//! The client session against hand-driven pools over real loopback sockets: each test plays
//! the pool's side line by line, including the ways real pools misbehave (garbage, bad params,
//! silence, redirects, refusals, dying), and checks what the session does.

mod common;

use std::time::Duration;

use common::*;
use serde_json::{Value, json};
use stratum::client::{Client, ClientEvent, SubmitResult};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::time::timeout;

#[tokio::test]
async fn handshake_jobs_difficulty_and_submit_results() {
    let (l, port) = listener().await;
    let (client, mut ev, task) = Client::spawn(config(&[port]));
    let mut pool = PoolSide::accept(&l).await;
    let sub = pool.handshake("08000002", 4).await;
    assert!(sub[0].as_str().unwrap().starts_with("rigworker/"));
    pool.send(r#"{"id":null,"method":"mining.set_difficulty","params":[0.5]}"#)
        .await;
    pool.notify("j1", true).await;
    assert!(matches!(
        next_event(&mut ev).await,
        ClientEvent::Connected { pool: 0, .. }
    ));
    let w = next_work(&mut ev).await;
    assert_eq!(w.job.job_id, "j1");
    assert_eq!(w.difficulty.get(), 0.5);
    assert_eq!(w.version_mask, Some(0x1fffe000));
    assert_eq!(w.extranonce.extranonce2_size, 4);

    // set_difficulty applies from the next notify, not to the job in hand.
    pool.send(r#"{"id":null,"method":"mining.set_difficulty","params":[4]}"#)
        .await;
    pool.notify("j2", false).await;
    let w2 = next_work(&mut ev).await;
    assert_eq!((w2.job.job_id.as_str(), w2.difficulty.get()), ("j2", 4.0));

    // Three submits, three different answers.
    let epoch = w.epoch;
    let c2 = client.clone();
    let answers = tokio::spawn(async move {
        let a = c2.submit(share("j1"), epoch).await;
        let b = c2.submit(share("j2"), epoch).await;
        let c = c2.submit(share("j0"), epoch).await;
        (a, b, c)
    });
    let s1 = pool.recv_method("mining.submit").await;
    assert_eq!(
        s1["params"],
        json!(["wallet.rig", "j1", "07000000", "4d1b2237", "10572b0f"])
    );
    pool.send(&json!({"id": s1["id"], "result": true, "error": null}).to_string())
        .await;
    let s2 = pool.recv_method("mining.submit").await;
    pool.send(
        &json!({"id": s2["id"], "result": null, "error": [23, "Low difficulty share", null]})
            .to_string(),
    )
    .await;
    let s3 = pool.recv_method("mining.submit").await;
    pool.send(
        &json!({"id": s3["id"], "result": null, "error": [21, "Job not found", null]}).to_string(),
    )
    .await;
    let (a, b, c) = timeout(T, answers).await.unwrap().unwrap();
    assert_eq!(a.result, SubmitResult::Accepted);
    assert!(a.latency.is_some());
    assert_eq!(
        b.result,
        SubmitResult::Rejected("Low difficulty share (23)".into())
    );
    assert!(matches!(c.result, SubmitResult::Stale(_)));

    client.shutdown();
    timeout(T, task).await.unwrap().unwrap();
}

#[tokio::test]
async fn garbage_and_bad_params_do_not_end_the_session() {
    let (l, port) = listener().await;
    let (client, mut ev, task) = Client::spawn(config(&[port]));
    let mut pool = PoolSide::accept(&l).await;
    pool.handshake("aa", 2).await;
    pool.notify("good1", true).await;
    assert_eq!(next_work(&mut ev).await.job.job_id, "good1");
    for junk in [
        "",
        "   ",
        "{not json",
        "[]",
        "42",
        r#"{"id":99,"result":true,"error":null}"#,
        r#"{"id":"x","result":true,"error":null}"#,
        r#"{"id":null,"method":"mining.set_difficulty","params":["abc"]}"#,
        r#"{"id":null,"method":"mining.set_difficulty","params":[0]}"#,
        r#"{"id":null,"method":"mining.set_difficulty","params":[-1]}"#,
        r#"{"id":null,"method":"mining.set_difficulty","params":[]}"#,
        r#"{"id":null,"method":"mining.notify","params":["bad","zz"]}"#,
        r#"{"id":null,"method":"mining.notify","params":["bad","xyz","00","00",[],"20000000","1b04864c","4d1b2237",true]}"#,
        r#"{"id":null,"method":"no.such.method","params":[]}"#,
    ] {
        pool.send(junk).await;
    }
    // An unknown method with an id gets an error answer, and so does nothing else.
    pool.send(r#"{"id":5,"method":"no.such.method","params":[]}"#)
        .await;
    let v = pool.recv().await;
    assert_eq!(v["id"], 5);
    assert!(!v["error"].is_null());
    pool.send(r#"{"id":6,"method":"client.get_version","params":[]}"#)
        .await;
    let v = pool.recv().await;
    assert!(v["result"].as_str().unwrap().starts_with("rigworker/"));
    pool.send(r#"{"id":7,"method":"mining.ping","params":[]}"#)
        .await;
    assert_eq!(pool.recv().await["result"], "pong");

    pool.notify("good2", false).await;
    let w = next_work(&mut ev).await;
    assert_eq!(w.job.job_id, "good2");
    // The rejected difficulties were ignored: still 1.
    assert_eq!(w.difficulty.get(), 1.0);

    // An over-long line is skipped, not buffered, and the session goes on.
    let long = format!(
        "{{\"id\":null,\"method\":\"x\",\"params\":[\"{}\"]}}",
        "a".repeat(200_000)
    );
    pool.send(&long).await;
    pool.notify("good3", false).await;
    assert_eq!(next_work(&mut ev).await.job.job_id, "good3");
    // Still one connection: nothing was reconnected.
    assert!(
        timeout(Duration::from_millis(200), l.accept())
            .await
            .is_err()
    );
    client.shutdown();
    timeout(T, task).await.unwrap().unwrap();
}

#[tokio::test]
async fn bad_extranonce2_size_ends_the_session_and_it_reconnects() {
    let (l, port) = listener().await;
    let (client, mut ev, task) = Client::spawn(config(&[port]));
    let mut pool = PoolSide::accept(&l).await;
    pool.handshake("00", 9).await;
    // The session must drop this connection and come back.
    let mut pool2 = PoolSide::accept(&l).await;
    let line = timeout(T, pool.rd.next_line()).await.unwrap().unwrap();
    assert!(line.is_none(), "first connection closed");
    pool2.handshake("00", 4).await;
    pool2.notify("after", true).await;
    assert_eq!(next_work(&mut ev).await.job.job_id, "after");
    client.shutdown();
    timeout(T, task).await.unwrap().unwrap();
}

#[tokio::test]
async fn silent_pool_is_dead_and_shares_found_meanwhile_are_answered() {
    let (l, port) = listener().await;
    let mut cfg = config(&[port]);
    cfg.keepalive = Duration::from_millis(400);
    let (client, mut ev, task) = Client::spawn(cfg);
    let mut pool = PoolSide::accept(&l).await;
    pool.handshake("01020304", 4).await;
    pool.notify("j", true).await;
    let w = next_work(&mut ev).await;
    // Say nothing: the client must give up on us and reconnect.
    loop {
        if let ClientEvent::Disconnected { reason, .. } = next_event(&mut ev).await {
            assert!(reason.contains("no message"), "{reason}");
            break;
        }
    }
    // A share found while disconnected waits for the next session...
    let c2 = client.clone();
    let epoch = w.epoch;
    let pending = tokio::spawn(async move { c2.submit(share("j"), epoch).await });
    // ...which resumes the same session (same extranonce1): it is submitted there.
    let mut pool2 = PoolSide::accept(&l).await;
    let sub = pool2.handshake("01020304", 4).await;
    assert_eq!(sub[1], "sess1", "offers the previous session id");
    let s = pool2.recv_method("mining.submit").await;
    pool2
        .send(&json!({"id": s["id"], "result": true, "error": null}).to_string())
        .await;
    assert_eq!(
        timeout(T, pending).await.unwrap().unwrap().result,
        SubmitResult::Accepted
    );

    // Now a reconnect where the pool starts a new session: old shares are stale, not lost.
    drop(pool2);
    loop {
        if let ClientEvent::Disconnected { .. } = next_event(&mut ev).await {
            break;
        }
    }
    let c3 = client.clone();
    let pending = tokio::spawn(async move { c3.submit(share("j"), epoch).await });
    let mut pool3 = PoolSide::accept(&l).await;
    pool3.handshake("99999999", 4).await;
    assert!(matches!(
        timeout(T, pending).await.unwrap().unwrap().result,
        SubmitResult::Stale(_)
    ));
    client.shutdown();
    timeout(T, task).await.unwrap().unwrap();
}

#[tokio::test]
async fn fails_over_and_fails_back() {
    let (l1, p1) = listener().await;
    let (l2, p2) = listener().await;
    let mut cfg = config(&[p1, p2]);
    cfg.failback_interval = Duration::from_millis(300);
    cfg.attempts_per_pool = 1;
    let (client, mut ev, task) = Client::spawn(cfg);
    let mut a = PoolSide::accept(&l1).await;
    a.handshake("aa", 4).await;
    a.notify("a1", true).await;
    assert_eq!(next_work(&mut ev).await.pool, 0);
    // Pool A dies: its port refuses connections from now on.
    drop(a);
    drop(l1);
    let mut b = PoolSide::accept(&l2).await;
    b.handshake("bb", 4).await;
    b.notify("b1", true).await;
    let w = next_work(&mut ev).await;
    assert_eq!((w.pool, w.job.job_id.as_str()), (1, "b1"));
    // Pool A returns on the same port; the client probes it and goes back.
    let l1 = TcpListener::bind(("127.0.0.1", p1)).await.unwrap();
    let b_task = tokio::spawn(async move {
        // Keep B alive and chatty while the probe runs.
        for i in 0..100 {
            if b.wr
                .write_all(format!("{}\n", notify_line(&format!("b{i}"), false)).as_bytes())
                .await
                .is_err()
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    // First connection to A is the probe: answer subscribe + authorize.
    let mut probe = PoolSide::accept(&l1).await;
    probe.handshake("cc", 4).await;
    let mut a2 = PoolSide::accept(&l1).await;
    a2.handshake("cc", 4).await;
    a2.notify("a2", true).await;
    loop {
        let w = next_work(&mut ev).await;
        if w.pool == 0 {
            assert_eq!(w.job.job_id, "a2");
            break;
        }
    }
    client.shutdown();
    timeout(T, task).await.unwrap().unwrap();
    b_task.abort();
}

#[tokio::test]
async fn client_reconnect_is_honoured_on_the_same_host_only() {
    let (l, port) = listener().await;
    let (l2, port2) = listener().await;
    let (client, mut ev, task) = Client::spawn(config(&[port]));
    let mut pool = PoolSide::accept(&l).await;
    pool.handshake("aa", 4).await;
    pool.notify("j", true).await;
    next_work(&mut ev).await;
    pool.send(
        &json!({"id": null, "method": "client.reconnect", "params": ["127.0.0.1", port2, 0]})
            .to_string(),
    )
    .await;
    let mut moved = PoolSide::accept(&l2).await;
    moved.handshake("aa", 4).await;
    moved.notify("k", true).await;
    assert_eq!(next_work(&mut ev).await.job.job_id, "k");
    // A redirect to another host is not followed: back to the configured pool.
    moved
        .send(
            &json!({"id": null, "method": "client.reconnect", "params": ["evil.example", 1, 0]})
                .to_string(),
        )
        .await;
    let mut back = PoolSide::accept(&l).await;
    back.handshake("aa", 4).await;
    client.shutdown();
    timeout(T, task).await.unwrap().unwrap();
}

#[tokio::test]
async fn refused_authorization_backs_off_and_retries() {
    let (l, port) = listener().await;
    let (client, _ev, task) = Client::spawn(config(&[port]));
    for _ in 0..2 {
        let mut pool = PoolSide::accept(&l).await;
        loop {
            let v = pool.recv().await;
            let id = v["id"].clone();
            if v["method"] == "mining.authorize" {
                assert_eq!(v["params"], json!(["wallet.rig", "secret"]));
                pool.send(
                    &json!({"id": id, "result": false, "error": [24, "Unauthorized worker", null]})
                        .to_string(),
                )
                .await;
                break;
            }
            if v["method"] == "mining.subscribe" {
                pool.send(&json!({"id": id, "result": [[], "00", 4], "error": null}).to_string())
                    .await;
            }
        }
    }
    client.shutdown();
    timeout(T, task).await.unwrap().unwrap();
}

#[tokio::test]
async fn set_extranonce_applies_to_the_next_job_and_the_version_mask_at_once() {
    let (l, port) = listener().await;
    let (client, mut ev, task) = Client::spawn(config(&[port]));
    let mut pool = PoolSide::accept(&l).await;
    pool.handshake("aa", 4).await;
    pool.notify("j1", true).await;
    let w1 = next_work(&mut ev).await;
    assert_eq!(w1.extranonce.extranonce1, vec![0xaa]);
    pool.send(r#"{"id":null,"method":"mining.set_extranonce","params":["bbcc", 2]}"#)
        .await;
    pool.send(r#"{"id":null,"method":"mining.set_version_mask","params":["00ffe000"]}"#)
        .await;
    // The mask holds at once (BIP310): j1 again under it, still on its own extranonce.
    let again = next_work(&mut ev).await;
    assert_eq!(again.job.job_id, "j1");
    assert_eq!(again.version_mask, Some(0x00ffe000));
    assert_eq!(again.extranonce.extranonce1, vec![0xaa]);
    pool.notify("j2", true).await;
    let w2 = next_work(&mut ev).await;
    assert_eq!(
        (
            w2.extranonce.extranonce1.clone(),
            w2.extranonce.extranonce2_size
        ),
        (vec![0xbb, 0xcc], 2)
    );
    assert_eq!(w2.version_mask, Some(0x00ffe000));
    client.shutdown();
    timeout(T, task).await.unwrap().unwrap();
}

#[tokio::test]
async fn unreachable_pool_answers_shares_on_shutdown() {
    // Nothing listens here.
    let port = {
        let s = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        s.local_addr().unwrap().port()
    };
    let (client, _ev, task) = Client::spawn(config(&[port]));
    let c2 = client.clone();
    let pending = tokio::spawn(async move { c2.submit(share("x"), 1).await });
    tokio::time::sleep(Duration::from_millis(100)).await;
    client.shutdown();
    assert!(matches!(
        timeout(T, pending).await.unwrap().unwrap().result,
        SubmitResult::Stale(_)
    ));
    timeout(T, task).await.unwrap().unwrap();
    let _ = TcpStream::connect(("127.0.0.1", port)).await;
}

#[tokio::test]
async fn set_extranonce_with_a_bad_size_ends_the_session_with_a_clear_error() {
    let (l, port) = listener().await;
    let (client, mut ev, task) = Client::spawn(config(&[port]));
    let mut pool = PoolSide::accept(&l).await;
    pool.handshake("aa", 4).await;
    for bad in [r#"["bbcc", 12]"#, r#"["bbcc", 0]"#] {
        pool.notify("j", true).await;
        next_work(&mut ev).await;
        pool.send(&format!(
            r#"{{"id":null,"method":"mining.set_extranonce","params":{bad}}}"#
        ))
        .await;
        loop {
            if let ClientEvent::Disconnected { reason, .. } = next_event(&mut ev).await {
                assert!(reason.contains("is outside 1..=8"), "{reason}");
                break;
            }
        }
        let line = timeout(T, pool.rd.next_line()).await.unwrap().unwrap();
        assert!(line.is_none(), "the session's connection is closed");
        // ...and the normal reconnect policy brings a new session.
        pool = PoolSide::accept(&l).await;
        pool.handshake("aa", 4).await;
    }
    pool.notify("after", true).await;
    let w = next_work(&mut ev).await;
    assert_eq!(w.job.job_id, "after");
    // The rejected extranonce never applied.
    assert_eq!(
        (
            w.extranonce.extranonce1.clone(),
            w.extranonce.extranonce2_size
        ),
        (vec![0xaa], 4)
    );
    client.shutdown();
    timeout(T, task).await.unwrap().unwrap();
}

#[tokio::test]
async fn failback_probe_runs_beside_the_live_session() {
    let (l1, p1) = listener().await;
    let (l2, p2) = listener().await;
    let mut cfg = config(&[p1, p2]);
    cfg.attempts_per_pool = 1;
    cfg.failback_interval = Duration::from_millis(200);
    // The probe of a pool that never answers lasts this long (after its connect).
    cfg.connect_timeout = Duration::from_secs(5);
    let (client, mut ev, task) = Client::spawn(cfg);
    // The first pool hangs up before answering: fail over to the backup.
    drop(PoolSide::accept(&l1).await);
    // From now on the first pool accepts connections and never says a word.
    let (probed_tx, mut probed) = tokio::sync::mpsc::unbounded_channel();
    let silent = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = l1.accept().await {
            held.push(s);
            let _ = probed_tx.send(());
        }
    });
    let mut b = PoolSide::accept(&l2).await;
    b.handshake("bb", 4).await;
    b.notify("b1", true).await;
    assert_eq!(next_work(&mut ev).await.pool, 1);

    timeout(T, probed.recv())
        .await
        .expect("the client probes the first pool")
        .unwrap();
    let probe_started = std::time::Instant::now();
    // While the probe waits for an answer, the backup session follows a clean job...
    b.notify("b2", true).await;
    let w = next_work(&mut ev).await;
    assert_eq!(
        (w.pool, w.job.job_id.as_str(), w.job.clean_jobs),
        (1, "b2", true)
    );
    // ...and submits a share and delivers the pool's answer.
    let c2 = client.clone();
    let epoch = w.epoch;
    let pending = tokio::spawn(async move { c2.submit(share("b2"), epoch).await });
    let s = b.recv_method("mining.submit").await;
    b.send(&json!({"id": s["id"], "result": true, "error": null}).to_string())
        .await;
    let outcome = timeout(T, pending).await.unwrap().unwrap();
    assert_eq!((outcome.result, outcome.pool), (SubmitResult::Accepted, 1));
    assert!(
        probe_started.elapsed() < Duration::from_secs(3),
        "the session waited for the probe: {:?}",
        probe_started.elapsed()
    );
    // The silent first pool is not failed back to.
    assert!(
        timeout(Duration::from_millis(300), async {
            loop {
                if let ClientEvent::Failover { .. } = next_event(&mut ev).await {
                    break;
                }
            }
        })
        .await
        .is_err()
    );
    client.shutdown();
    timeout(T, task).await.unwrap().unwrap();
    silent.abort();
}

#[tokio::test]
async fn version_rolling_uses_only_bits_asked_for_and_granted() {
    let (l, port) = listener().await;
    let mut cfg = config(&[port]);
    cfg.version_rolling = Some(0x1fff_0000);
    let (client, mut ev, task) = Client::spawn(cfg);
    let mut pool = PoolSide::accept(&l).await;
    let granted = json!({"version-rolling": true, "version-rolling.mask": "00ffe000"});
    let hs = pool
        .handshake_with("aa", 4, Some((granted, Value::Null)))
        .await;
    assert_eq!(hs.configure[0], json!(["version-rolling"]));
    assert_eq!(hs.configure[1]["version-rolling.mask"], "1fff0000");
    pool.notify("j1", true).await;
    assert_eq!(next_work(&mut ev).await.version_mask, Some(0x00ff_0000));
    // A new mask from the pool replaces the granted one, still within what was asked.
    pool.send(r#"{"id":null,"method":"mining.set_version_mask","params":["e00f0000"]}"#)
        .await;
    pool.notify("j2", false).await;
    assert_eq!(next_work(&mut ev).await.version_mask, Some(0x000f_0000));
    client.shutdown();
    timeout(T, task).await.unwrap().unwrap();
}

#[tokio::test]
async fn refused_version_rolling_stays_off_even_after_set_version_mask() {
    let refusals = [
        Some((json!({"version-rolling": false}), Value::Null)),
        Some((Value::Null, json!([20, "Method not supported", null]))),
        // Some pools never answer mining.configure at all.
        None,
    ];
    for configure in refusals {
        let (l, port) = listener().await;
        let (client, mut ev, task) = Client::spawn(config(&[port]));
        let mut pool = PoolSide::accept(&l).await;
        pool.handshake_with("aa", 4, configure.clone()).await;
        pool.notify("j1", true).await;
        assert_eq!(next_work(&mut ev).await.version_mask, None, "{configure:?}");
        pool.send(r#"{"id":null,"method":"mining.set_version_mask","params":["1fffe000"]}"#)
            .await;
        pool.notify("j2", false).await;
        let w = next_work(&mut ev).await;
        assert_eq!(
            (w.job.job_id.as_str(), w.version_mask),
            ("j2", None),
            "{configure:?}"
        );
        client.shutdown();
        timeout(T, task).await.unwrap().unwrap();
    }
}

#[tokio::test]
async fn show_message_is_logged_reported_and_the_session_goes_on() {
    let logs = Logs::default();
    let writer = logs.clone();
    let _guard = tracing::subscriber::set_default(
        tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish(),
    );
    let (l, port) = listener().await;
    let (client, mut ev, task) = Client::spawn(config(&[port]));
    let mut pool = PoolSide::accept(&l).await;
    pool.handshake("aa", 4).await;
    pool.notify("j1", true).await;
    next_work(&mut ev).await;
    pool.send(r#"{"id":null,"method":"client.show_message","params":["maintenance at noon"]}"#)
        .await;
    pool.send(r#"{"id":9,"method":"client.show_message","params":["second notice"]}"#)
        .await;
    // A show_message with an id is answered.
    let v = pool.recv().await;
    assert_eq!(
        (v["id"].clone(), v["result"].clone()),
        (json!(9), json!(true))
    );
    for expected in ["maintenance at noon", "second notice"] {
        loop {
            if let ClientEvent::PoolMessage { pool, text } = next_event(&mut ev).await {
                assert_eq!((pool, text.as_str()), (0, expected));
                break;
            }
        }
    }
    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(
        text.contains("message from the pool") && text.contains("maintenance at noon"),
        "{text}"
    );
    // Same session: the next job arrives and nothing reconnected.
    pool.notify("j2", false).await;
    assert_eq!(next_work(&mut ev).await.job.job_id, "j2");
    assert!(
        timeout(Duration::from_millis(200), l.accept())
            .await
            .is_err()
    );
    client.shutdown();
    timeout(T, task).await.unwrap().unwrap();
}

#[tokio::test]
async fn suggest_difficulty_is_sent_only_when_configured() {
    let (l, port) = listener().await;
    let mut cfg = config(&[port]);
    cfg.suggest_difficulty = Some(0.25);
    let (client, mut ev, task) = Client::spawn(cfg);
    let mut pool = PoolSide::accept(&l).await;
    pool.handshake("aa", 4).await;
    let v = pool.recv().await;
    assert_eq!(v["method"], "mining.suggest_difficulty");
    assert_eq!(v["params"], json!([0.25]));
    // A pool that does not support it says so; that is no reason to end the session.
    pool.send(
        &json!({"id": v["id"], "result": null, "error": [20, "Method not supported", null]})
            .to_string(),
    )
    .await;
    pool.notify("j1", true).await;
    assert_eq!(next_work(&mut ev).await.job.job_id, "j1");
    client.shutdown();
    timeout(T, task).await.unwrap().unwrap();

    // Not configured: nothing is sent after authorize (the pong is the very next line).
    let (client, _ev, task) = Client::spawn(config(&[port]));
    let mut pool = PoolSide::accept(&l).await;
    pool.handshake("aa", 4).await;
    pool.send(r#"{"id":77,"method":"mining.ping","params":[]}"#)
        .await;
    let v = pool.recv().await;
    assert_eq!(
        (v["id"].clone(), v["result"].clone()),
        (json!(77), json!("pong"))
    );
    client.shutdown();
    timeout(T, task).await.unwrap().unwrap();
}

#[tokio::test]
async fn huge_backoff_waits_without_panicking() {
    let (l, port) = listener().await;
    let mut cfg = config(&[port]);
    cfg.backoff_min = Duration::MAX;
    cfg.backoff_max = Duration::MAX;
    let (client, _ev, task) = Client::spawn(cfg);
    drop(PoolSide::accept(&l).await);
    // The failed session is followed by an (effectively endless) backoff, not a retry...
    assert!(
        timeout(Duration::from_millis(300), l.accept())
            .await
            .is_err()
    );
    // ...that still answers shares and shutdown.
    let c2 = client.clone();
    let pending = tokio::spawn(async move { c2.submit(share("x"), 1).await });
    tokio::time::sleep(Duration::from_millis(50)).await;
    client.shutdown();
    assert!(matches!(
        timeout(T, pending).await.unwrap().unwrap().result,
        SubmitResult::Stale(_)
    ));
    timeout(T, task)
        .await
        .unwrap()
        .expect("client task did not panic");
}

#[tokio::test]
async fn huge_or_zero_timeouts_do_not_panic_the_session() {
    for failback in [Duration::MAX, Duration::ZERO] {
        let (l1, p1) = listener().await;
        let (l2, p2) = listener().await;
        let mut cfg = config(&[p1, p2]);
        cfg.attempts_per_pool = 1;
        cfg.keepalive = Duration::MAX;
        cfg.submit_timeout = Duration::MAX;
        cfg.connect_timeout = Duration::MAX;
        cfg.failback_interval = failback;
        let (client, mut ev, task) = Client::spawn(cfg);
        drop(PoolSide::accept(&l1).await);
        // On the backup pool, with the failback timer (never) running.
        let mut b = PoolSide::accept(&l2).await;
        b.handshake("bb", 4).await;
        b.notify("b1", true).await;
        let w = next_work(&mut ev).await;
        assert_eq!(w.pool, 1);
        let c2 = client.clone();
        let epoch = w.epoch;
        let pending = tokio::spawn(async move { c2.submit(share("b1"), epoch).await });
        let s = b.recv_method("mining.submit").await;
        b.send(&json!({"id": s["id"], "result": true, "error": null}).to_string())
            .await;
        assert_eq!(
            timeout(T, pending).await.unwrap().unwrap().result,
            SubmitResult::Accepted
        );
        client.shutdown();
        timeout(T, task)
            .await
            .unwrap()
            .unwrap_or_else(|e| panic!("failback {failback:?}: client task failed: {e}"));
    }
}

//! The client against things real pools do that the simple handshake does not show: ckpool's
//! `reject-reason` and its authorize-on-another-thread, pools that hang up on
//! `mining.configure` or `mining.extranonce.subscribe`, BIP310's mask that holds at once,
//! session ids a pool no longer knows, and request ids echoed back as text. Each test plays
//! the pool over a real loopback socket.

mod common;

use common::*;
use serde_json::{Value, json};
use stratum::client::{Client, SubmitResult};
use tokio::time::timeout;

#[tokio::test]
async fn a_new_version_mask_applies_to_the_running_job_at_once() {
    let (l, port) = listener().await;
    let (client, mut ev, task) = Client::spawn(config(&[port]));
    let mut pool = PoolSide::accept(&l).await;
    pool.handshake("aa", 4).await;
    pool.notify("j1", false).await;
    let w = next_work(&mut ev).await;
    assert_eq!(
        (w.job.job_id.as_str(), w.version_mask),
        ("j1", Some(0x1fffe000))
    );
    let (difficulty, extranonce) = (w.difficulty, w.extranonce.clone());
    // A new difficulty and extranonce are for the next job; the mask is for this one too.
    pool.send(r#"{"id":null,"method":"mining.set_difficulty","params":[64]}"#)
        .await;
    pool.send(r#"{"id":null,"method":"mining.set_extranonce","params":["bbcc", 2]}"#)
        .await;
    // Narrowed: no new notify comes, the running job goes out again under the new mask, and
    // what the old one found is dropped (it may roll bits the pool took back).
    pool.send(r#"{"id":null,"method":"mining.set_version_mask","params":["00006000"]}"#)
        .await;
    let w = next_work(&mut ev).await;
    assert_eq!(
        (w.job.job_id.as_str(), w.version_mask),
        ("j1", Some(0x6000))
    );
    assert!(
        w.job.clean_jobs,
        "shares on bits taken back must not be sent"
    );
    assert_eq!(w.difficulty.get(), difficulty.get());
    assert_eq!(w.extranonce.extranonce1, extranonce.extranonce1);
    // Widened: the same, but what was found stays good.
    pool.send(r#"{"id":null,"method":"mining.set_version_mask","params":["1fffe000"]}"#)
        .await;
    let w = next_work(&mut ev).await;
    assert_eq!(
        (w.job.job_id.as_str(), w.version_mask),
        ("j1", Some(0x1fffe000))
    );
    assert!(!w.job.clean_jobs);
    client.shutdown();
    timeout(T, task).await.unwrap().unwrap();
}

#[tokio::test]
async fn ckpool_s_reject_reason_is_the_share_s_reason() {
    let (l, port) = listener().await;
    let (client, mut ev, task) = Client::spawn(config(&[port]));
    let mut pool = PoolSide::accept(&l).await;
    pool.handshake("aa", 4).await;
    pool.notify("j1", true).await;
    let epoch = next_work(&mut ev).await.epoch;
    let c = client.clone();
    let answers = tokio::spawn(async move {
        (
            c.submit(share("j1"), epoch).await,
            c.submit(share("j1"), epoch).await,
        )
    });
    // As ckpool's parse_submit answers: result false, error null, the reason beside them.
    for reason in ["Stale", "Above target"] {
        let s = pool.recv_method("mining.submit").await;
        pool.send(
            &json!({"id": s["id"], "result": false, "error": null, "reject-reason": reason})
                .to_string(),
        )
        .await;
    }
    let (stale, low) = timeout(T, answers).await.unwrap().unwrap();
    assert_eq!(stale.result, SubmitResult::Stale("Stale".into()));
    assert_eq!(low.result, SubmitResult::Rejected("Above target".into()));
    client.shutdown();
    timeout(T, task).await.unwrap().unwrap();
}

#[tokio::test]
async fn suggest_difficulty_waits_for_the_authorize_answer() {
    let (l, port) = listener().await;
    let mut cfg = config(&[port]);
    cfg.suggest_difficulty = Some(0.25);
    let (client, mut ev, task) = Client::spawn(cfg);
    let mut pool = PoolSide::accept(&l).await;
    let auth = loop {
        let v = pool.recv().await;
        match v["method"].as_str() {
            Some("mining.subscribe") => {
                pool.send(&ok_line(&v, json!([[["mining.notify", "s"]], "aa", 4])))
                    .await
            }
            Some("mining.authorize") => break v,
            Some("mining.suggest_difficulty") => {
                panic!("suggested before the pool authorized us: ckpool drops it")
            }
            _ => pool.send(&ok_line(&v, json!(true))).await,
        }
    };
    // ckpool authorizes on another thread: nothing else may come meanwhile.
    let early = timeout(std::time::Duration::from_millis(300), pool.rd.next_line()).await;
    assert!(
        early.is_err(),
        "sent before the authorize answer: {early:?}"
    );
    pool.send(&ok_line(&auth, json!(true))).await;
    let v = pool.recv().await;
    assert_eq!(v["method"], "mining.suggest_difficulty");
    assert_eq!(v["params"], json!([0.25]));
    pool.notify("j1", true).await;
    assert_eq!(next_work(&mut ev).await.job.job_id, "j1");
    client.shutdown();
    timeout(T, task).await.unwrap().unwrap();
}

#[tokio::test]
async fn a_pool_that_hangs_up_on_optional_requests_gets_a_plain_handshake() {
    // Old ckpool closes on anything before mining.subscribe; NiceHash's spec warns some pools
    // close on mining.extranonce.subscribe. Either way the pool hangs up mid-handshake.
    for hang_up_on in ["mining.configure", "mining.extranonce.subscribe"] {
        let (l, port) = listener().await;
        let (client, mut ev, task) = Client::spawn(config(&[port]));
        // Once could be a restart; twice in a row is the pool's habit.
        for _ in 0..2 {
            let mut pool = PoolSide::accept(&l).await;
            loop {
                let v = pool.recv().await;
                if v["method"] == hang_up_on {
                    break;
                }
                if v["method"] == "mining.subscribe" {
                    pool.send(&ok_line(&v, json!([[["mining.notify", "s"]], "aa", 4])))
                        .await;
                }
            }
        }
        // Next time: neither optional request, and the pool works.
        let mut pool = PoolSide::accept(&l).await;
        let mut methods = Vec::new();
        loop {
            let v = pool.recv().await;
            let m = v["method"].as_str().unwrap().to_string();
            match m.as_str() {
                "mining.subscribe" => {
                    pool.send(&ok_line(&v, json!([[["mining.notify", "s2"]], "bb", 4])))
                        .await
                }
                "mining.authorize" => {
                    pool.send(&ok_line(&v, json!(true))).await;
                    methods.push(m);
                    break;
                }
                _ => pool.send(&ok_line(&v, json!(true))).await,
            }
            methods.push(m);
        }
        assert_eq!(
            methods,
            ["mining.subscribe", "mining.authorize"],
            "{hang_up_on}"
        );
        pool.notify("j1", true).await;
        let w = next_work(&mut ev).await;
        assert_eq!((w.job.job_id.as_str(), w.version_mask), ("j1", None));
        client.shutdown();
        timeout(T, task).await.unwrap().unwrap();
    }
}

#[tokio::test]
async fn a_session_id_the_pool_refused_is_not_offered_again() {
    let (l, port) = listener().await;
    let (client, mut ev, task) = Client::spawn(config(&[port]));
    let mut pool = PoolSide::accept(&l).await;
    pool.handshake("aa", 4).await; // session id "sess1"
    pool.notify("j1", true).await;
    next_work(&mut ev).await;
    drop(pool);
    // The pool restarted and refuses the id it handed out.
    let mut pool = PoolSide::accept(&l).await;
    let sub = pool.recv_method("mining.subscribe").await;
    assert_eq!(sub["params"][1], "sess1");
    pool.send(
        &json!({"id": sub["id"], "result": null, "error": [25, "Unknown session", null]})
            .to_string(),
    )
    .await;
    let mut pool = PoolSide::accept(&l).await;
    let sub = pool.recv_method("mining.subscribe").await;
    assert_eq!(sub["params"].as_array().map(Vec::len), Some(1), "{sub}");
    client.shutdown();
    timeout(T, task).await.unwrap().unwrap();
}

#[tokio::test]
async fn responses_with_ids_echoed_as_text_are_matched() {
    let (l, port) = listener().await;
    let (client, mut ev, task) = Client::spawn(config(&[port]));
    let mut pool = PoolSide::accept(&l).await;
    let text_id = |v: &Value| Value::String(v["id"].to_string());
    loop {
        let v = pool.recv().await;
        let result = match v["method"].as_str() {
            Some("mining.subscribe") => json!([[["mining.notify", "s"]], "aa", 4]),
            Some("mining.configure") => json!({"version-rolling": false}),
            _ => json!(true),
        };
        pool.send(&json!({"id": text_id(&v), "result": result, "error": null}).to_string())
            .await;
        if v["method"] == "mining.authorize" {
            break;
        }
    }
    pool.notify("j1", true).await;
    let w = next_work(&mut ev).await;
    let c = client.clone();
    let answer = tokio::spawn(async move { c.submit(share("j1"), w.epoch).await });
    let s = pool.recv_method("mining.submit").await;
    pool.send(&json!({"id": text_id(&s), "result": true, "error": null}).to_string())
        .await;
    let a = timeout(T, answer).await.unwrap().unwrap();
    assert_eq!(a.result, SubmitResult::Accepted);
    client.shutdown();
    timeout(T, task).await.unwrap().unwrap();
}

/// One hang-up mid-handshake (a restart, a load balancer) costs nothing: the next handshake
/// still asks for version rolling.
#[tokio::test]
async fn a_single_hang_up_keeps_the_full_handshake() {
    let (l, port) = listener().await;
    let (client, mut ev, task) = Client::spawn(config(&[port]));
    let mut pool = PoolSide::accept(&l).await;
    pool.recv_method("mining.configure").await;
    drop(pool);
    let mut pool = PoolSide::accept(&l).await;
    let hs = pool
        .handshake_with(
            "aa",
            4,
            Some((
                json!({"version-rolling": true, "version-rolling.mask": "1fffe000"}),
                Value::Null,
            )),
        )
        .await;
    assert_eq!(hs.configure[0], json!(["version-rolling"]));
    pool.notify("j1", true).await;
    assert_eq!(next_work(&mut ev).await.version_mask, Some(0x1fffe000));
    client.shutdown();
    timeout(T, task).await.unwrap().unwrap();
}

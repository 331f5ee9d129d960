//! The client session against hostile or broken pools over real loopback sockets: a pool that
//! stops reading, one that talks but never authorizes, floods jobs before authorizing, keeps
//! asking to be reconnected to or asks for endless waits, tries to forge log lines; plus the
//! keepalive switch, late share answers, an early version mask and answers across a reload
//! that reorders the pools. Timers are configured short; nothing asserts wall-clock speed
//! beyond "before the generous test timeout".

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::*;
use serde_json::{Value, json};
use stratum::client::{Client, ClientEvent, SubmitResult};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpSocket;
use tokio::time::{sleep, timeout};

fn reconnect_line(params: Value) -> String {
    json!({"id": null, "method": "client.reconnect", "params": params}).to_string()
}

/// Every `Work` before the first one from `pool`, and that one.
async fn works_until_pool(
    ev: &mut tokio::sync::mpsc::UnboundedReceiver<ClientEvent>,
    pool: usize,
) -> (Vec<usize>, std::sync::Arc<stratum::Work>) {
    let mut before = Vec::new();
    loop {
        let w = next_work(ev).await;
        if w.pool == pool {
            return (before, w);
        }
        before.push(w.pool);
    }
}

#[tokio::test]
async fn a_pool_that_stops_reading_is_left_within_the_write_bound() {
    // A tiny receive window on the pool's side, so that the client's writes back up soon.
    let sock = TcpSocket::new_v4().unwrap();
    sock.set_recv_buffer_size(2048).unwrap();
    sock.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let p1 = sock.local_addr().unwrap().port();
    let l1 = sock.listen(8).unwrap();
    let (l2, p2) = listener().await;
    let mut cfg = config(&[p1, p2]);
    cfg.write_timeout = Duration::from_millis(500);
    let (client, mut ev, task) = Client::spawn(cfg);
    let mut a = PoolSide::accept(&l1).await;
    a.handshake("aa", 4).await;
    a.notify("a1", true).await;
    let w = next_work(&mut ev).await;
    assert_eq!(w.pool, 0);
    // The pool freezes: it reads nothing more and takes no new connections, but its process
    // (and so the connection) stays, and it keeps sending jobs, so the keepalive never fires.
    drop(l1);
    let chatter = tokio::spawn(async move {
        for i in 0.. {
            let line = format!("{}\n", notify_line(&format!("a{i}"), false));
            if a.wr.write_all(line.as_bytes()).await.is_err() {
                break;
            }
            sleep(Duration::from_millis(100)).await;
        }
        drop(a);
    });
    // Meanwhile the rig finds shares at a high rate.
    let c2 = client.clone();
    let epoch = w.epoch;
    let flood = tokio::spawn(async move {
        loop {
            for _ in 0..64 {
                drop(c2.submit_detached(share("a1"), epoch));
            }
            sleep(Duration::from_millis(1)).await;
        }
    });
    let reason = wait_for(&mut ev, |e| match e {
        ClientEvent::Disconnected { pool: 0, reason } => Some(reason),
        _ => None,
    })
    .await;
    assert!(reason.contains("stopped reading"), "{reason}");
    // Reconnecting fails (the frozen pool takes no connections): over to the backup.
    let mut b = PoolSide::accept(&l2).await;
    b.handshake("bb", 4).await;
    b.notify("b1", true).await;
    let (_, w) = works_until_pool(&mut ev, 1).await;
    assert_eq!(w.job.job_id, "b1");
    flood.abort();
    chatter.abort();
    client.shutdown();
    timeout(T, task).await.unwrap().unwrap();
}

#[tokio::test]
async fn a_pool_that_talks_but_never_authorizes_does_not_hold_the_rig() {
    let (l1, p1) = listener().await;
    let (l2, p2) = listener().await;
    let mut cfg = config(&[p1, p2]);
    cfg.handshake_timeout = Duration::from_secs(1);
    let (client, mut ev, task) = Client::spawn(cfg);
    // Pool A answers everything but mining.authorize and sends jobs and pings all along.
    let a = tokio::spawn(async move {
        let mut conns = 0;
        while let Ok((s, _)) = l1.accept().await {
            conns += 1;
            let mut p = PoolSide::from_stream(s);
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_millis(50));
                loop {
                    tokio::select! {
                        line = p.rd.next_line() => {
                            let Ok(Some(line)) = line else { break };
                            let v: Value = serde_json::from_str(&line).unwrap();
                            let reply = match v["method"].as_str() {
                                Some("mining.authorize") => continue,
                                Some("mining.subscribe") => json!([[], "aa", 4]),
                                _ => json!(true),
                            };
                            if v["id"].is_null() { continue }
                            let line = format!("{}\n", ok_line(&v, reply));
                            if p.wr.write_all(line.as_bytes()).await.is_err() {
                                break;
                            }
                        }
                        _ = tick.tick() => {
                            let chatter = format!(
                                "{}\n{}\n",
                                notify_line("a", true),
                                r#"{"id":"p","method":"mining.ping","params":[]}"#
                            );
                            if p.wr.write_all(chatter.as_bytes()).await.is_err() {
                                break;
                            }
                        }
                    }
                }
            });
            if conns > 50 {
                break;
            }
        }
    });
    let mut b = PoolSide::accept(&l2).await;
    b.handshake("bb", 4).await;
    b.notify("b1", true).await;
    let (before, w) = works_until_pool(&mut ev, 1).await;
    assert!(
        before.is_empty(),
        "work from the unauthorized pool: {before:?}"
    );
    assert_eq!(w.job.job_id, "b1");
    a.abort();
    client.shutdown();
    timeout(T, task).await.unwrap().unwrap();
}

#[tokio::test]
async fn jobs_before_authorization_keep_only_the_newest() {
    let (l, port) = listener().await;
    let (client, mut ev, task) = Client::spawn(config(&[port]));
    let mut pool = PoolSide::accept(&l).await;
    loop {
        let v = pool.recv().await;
        match v["method"].as_str().unwrap() {
            "mining.subscribe" => pool.send(&ok_line(&v, json!([[], "aa", 4]))).await,
            "mining.authorize" => {
                for i in 0..500 {
                    pool.notify(&format!("early{i}"), i == 0).await;
                }
                pool.send(&ok_line(&v, json!(true))).await;
                break;
            }
            _ => pool.send(&ok_line(&v, json!(true))).await,
        }
    }
    pool.notify("after", false).await;
    let w = next_work(&mut ev).await;
    // Only the newest early job, still marked clean (an older one said to drop old work).
    assert_eq!(
        (w.job.job_id.as_str(), w.job.clean_jobs),
        ("early499", true)
    );
    assert_eq!(next_work(&mut ev).await.job.job_id, "after");
    client.shutdown();
    timeout(T, task).await.unwrap().unwrap();
}

#[tokio::test]
async fn the_wait_a_reconnect_request_asks_for_is_capped() {
    let (l, port) = listener().await;
    let mut cfg = config(&[port]);
    cfg.max_reconnect_wait = Duration::from_millis(200);
    let (client, mut ev, task) = Client::spawn(cfg);
    let mut pool = PoolSide::accept(&l).await;
    pool.handshake("aa", 4).await;
    pool.notify("j", true).await;
    next_work(&mut ev).await;
    // "Come back in an hour": the lone pool is retried after the cap instead.
    pool.send(&reconnect_line(json!(["127.0.0.1", port, 3600])))
        .await;
    let mut again = PoolSide::accept(&l).await;
    again.handshake("aa", 4).await;
    client.shutdown();
    timeout(T, task).await.unwrap().unwrap();
}

#[tokio::test]
async fn a_reconnect_wait_is_spent_mining_on_the_backup() {
    let (l1, p1) = listener().await;
    let (l2, p2) = listener().await;
    let (client, mut ev, task) = Client::spawn(config(&[p1, p2]));
    let mut a = PoolSide::accept(&l1).await;
    a.handshake("aa", 4).await;
    a.notify("a1", true).await;
    assert_eq!(next_work(&mut ev).await.pool, 0);
    a.send(&reconnect_line(json!(["127.0.0.1", p1, 30]))).await;
    let moved = wait_for(&mut ev, |e| match e {
        ClientEvent::Failover { from, to } => Some((from, to)),
        _ => None,
    })
    .await;
    assert_eq!(moved, (0, 1));
    let mut b = PoolSide::accept(&l2).await;
    b.handshake("bb", 4).await;
    b.notify("b1", true).await;
    assert_eq!(works_until_pool(&mut ev, 1).await.1.job.job_id, "b1");
    client.shutdown();
    timeout(T, task).await.unwrap().unwrap();
}

#[tokio::test]
async fn repeated_reconnect_requests_do_not_keep_the_rig_off_the_backup() {
    let (l1, p1) = listener().await;
    let (l2, p2) = listener().await;
    let (client, mut ev, task) = Client::spawn(config(&[p1, p2]));
    // Pool A asks to be reconnected to, at once, right after every handshake.
    let a = tokio::spawn(async move {
        loop {
            let Ok((s, _)) = l1.accept().await else { break };
            let mut p = PoolSide::from_stream(s);
            p.handshake("aa", 4).await;
            p.notify("a", true).await;
            p.send(&reconnect_line(json!([]))).await;
        }
    });
    let mut b = PoolSide::accept(&l2).await;
    b.handshake("bb", 4).await;
    b.notify("b1", true).await;
    assert_eq!(works_until_pool(&mut ev, 1).await.1.job.job_id, "b1");
    a.abort();
    client.shutdown();
    timeout(T, task).await.unwrap().unwrap();
}

/// A pool that goes on talking after the handshake but is of no use is left for the backup
/// within the keepalive: one that sends only garbage after its first job (garbage is no sign
/// of life), and one that sends understood messages but never a job.
#[tokio::test]
async fn a_pool_that_talks_but_gives_no_work_is_left() {
    for gives_a_job in [true, false] {
        let (l1, p1) = listener().await;
        let (l2, p2) = listener().await;
        let mut cfg = config(&[p1, p2]);
        cfg.keepalive = Duration::from_secs(1);
        let (client, mut ev, task) = Client::spawn(cfg);
        let a = tokio::spawn(async move {
            loop {
                let Ok((s, _)) = l1.accept().await else { break };
                let mut p = PoolSide::from_stream(s);
                p.handshake("aa", 4).await;
                if gives_a_job {
                    p.notify("a1", true).await;
                }
                for _ in 0..100 {
                    sleep(Duration::from_millis(100)).await;
                    let line = if gives_a_job {
                        "{bad".to_string()
                    } else {
                        json!({"id": null, "method": "mining.set_difficulty", "params": [2]})
                            .to_string()
                    };
                    p.send(&line).await;
                }
            }
        });
        let b = tokio::spawn(async move {
            let mut b = PoolSide::accept(&l2).await;
            b.handshake("bb", 4).await;
            b.notify("b1", true).await;
            // Keep the session open while the test reads its work.
            sleep(Duration::from_secs(20)).await;
        });
        let (_, w) = works_until_pool(&mut ev, 1).await;
        assert_eq!(w.job.job_id, "b1", "gives a job: {gives_a_job}");
        a.abort();
        b.abort();
        client.shutdown();
        timeout(T, task).await.unwrap().unwrap();
    }
}

/// A proving job the pool sends before it answers authorize belongs to the session that
/// follows: it carries that session's epoch (so its proof can be submitted), not a placeholder.
#[tokio::test]
async fn a_proving_job_sent_during_the_handshake_belongs_to_the_session() {
    let (l, port) = listener().await;
    let mut cfg = config(&[port]);
    cfg.prover = Some(stratum::proving::ProverCapabilities::groth16_bn254(
        1 << 10,
        vec!["cpu".into()],
    ));
    let (client, mut ev, task) = Client::spawn(cfg);
    let mut pool = PoolSide::accept(&l).await;
    let job = json!({
        "job_id": "early",
        "circuit_id": format!("{:064x}", 7),
        "zkey_url": "http://127.0.0.1:1/k",
        "witness": {"inline": "00"},
        "deadline": 4_000_000_000u64,
    });
    loop {
        let v = pool.recv().await;
        let id = v["id"].clone();
        match v["method"].as_str().unwrap() {
            "mining.subscribe" => {
                pool.send(
                    &json!({"id": id, "result": [[["mining.notify", "s"]], "aa", 4], "error": null})
                        .to_string(),
                )
                .await
            }
            "mining.authorize" => {
                pool.send(
                    &json!({"id": null, "method": "prover.notify", "params": [job.clone()]})
                        .to_string(),
                )
                .await;
                pool.send(&json!({"id": id, "result": true, "error": null}).to_string())
                    .await;
                break;
            }
            _ => {
                pool.send(&json!({"id": id, "result": true, "error": null}).to_string())
                    .await
            }
        }
    }
    pool.notify("j1", true).await;
    let mut proof_epoch = None;
    let mut work_epoch = None;
    while proof_epoch.is_none() || work_epoch.is_none() {
        match next_event(&mut ev).await {
            ClientEvent::ProofJob { job, epoch, .. } => {
                assert_eq!(job.job_id, "early");
                proof_epoch = Some(epoch);
            }
            ClientEvent::Work(w) => work_epoch = Some(w.epoch),
            _ => {}
        }
    }
    assert_eq!(proof_epoch, work_epoch);
    assert_ne!(proof_epoch, Some(0));
    client.shutdown();
    timeout(T, task).await.unwrap().unwrap();
}

/// A flood of shares (a pool that set an absurdly easy difficulty) against a pool that stopped
/// reading: past `MAX_QUEUED_SUBMITS` waiting in the client, shares are answered stale at once
/// instead of queueing until the worker runs out of memory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_share_flood_is_bounded_in_the_client() {
    let (l, port) = listener().await;
    let (client, mut ev, task) = Client::spawn(config(&[port]));
    let mut pool = PoolSide::accept(&l).await;
    pool.handshake("aa", 4).await;
    pool.notify("j1", true).await;
    let w = next_work(&mut ev).await;
    // The pool reads nothing from now on.
    let c = client.clone();
    let epoch = w.epoch;
    let (stale_at_once, receivers) = tokio::task::spawn_blocking(move || {
        let mut receivers = Vec::with_capacity(200_000);
        let mut stale = 0usize;
        for _ in 0..200_000 {
            let mut rx = c.submit_detached(share("j1"), epoch);
            match rx.try_recv() {
                Ok(o) => {
                    assert!(
                        matches!(&o.result, SubmitResult::Stale(why) if why.contains("queued")),
                        "{:?}",
                        o.result
                    );
                    stale += 1;
                }
                Err(_) => receivers.push(rx),
            }
        }
        (stale, receivers)
    })
    .await
    .unwrap();
    assert!(
        stale_at_once >= 150_000,
        "only {stale_at_once} of 200000 shares were turned away at once"
    );
    drop(pool);
    client.shutdown();
    timeout(T, task).await.unwrap().unwrap();
    // Every share still gets exactly one answer.
    for rx in receivers {
        assert!(timeout(T, rx).await.unwrap().is_ok());
    }
}

/// Two pools that both ask to be reconnected to right after every handshake: each request
/// moves the rig on at once, but after a whole round the move backs off, so the rig does not
/// spin between them (before: hundreds of sessions a second).
#[tokio::test]
async fn pools_that_all_keep_asking_to_reconnect_are_backed_off_from() {
    let (l1, p1) = listener().await;
    let (l2, p2) = listener().await;
    let mut cfg = config(&[p1, p2]);
    cfg.backoff_min = Duration::from_millis(200);
    cfg.backoff_max = Duration::from_millis(400);
    let (client, _ev, task) = Client::spawn(cfg);
    let sessions = Arc::new(AtomicUsize::new(0));
    let pools: Vec<_> = [l1, l2]
        .into_iter()
        .enumerate()
        .map(|(i, l)| {
            let sessions = sessions.clone();
            tokio::spawn(async move {
                loop {
                    let Ok((s, _)) = l.accept().await else { break };
                    sessions.fetch_add(1, Ordering::SeqCst);
                    let mut p = PoolSide::from_stream(s);
                    p.handshake("aa", 4).await;
                    p.notify(&format!("j{i}"), true).await;
                    p.send(&reconnect_line(json!([]))).await;
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let n = sessions.load(Ordering::SeqCst);
    println!("{n} sessions in 3 s");
    // Each round of two pools waits 200-400 ms (+/- jitter) after the first: about 20
    // sessions in 3 s; without the backoff it was hundreds.
    assert!((4..=40).contains(&n), "{n} sessions in 3 s");
    for p in pools {
        p.abort();
    }
    client.shutdown();
    timeout(T, task).await.unwrap().unwrap();
}

#[tokio::test]
async fn text_from_the_pool_cannot_forge_log_lines() {
    let (logs, _guard) = Logs::capture();
    let (l, port) = listener().await;
    let (client, mut ev, task) = Client::spawn(config(&[port]));
    let mut pool = PoolSide::accept(&l).await;
    pool.handshake("aa", 4).await;
    pool.notify("j1", true).await;
    let w = next_work(&mut ev).await;
    let forged = "2030-01-01T00:00:00.000000Z  INFO stratum: FORGED";
    pool.send(
        &json!({"id": null, "method": "client.show_message", "params": [format!("hi\n{forged}\r")]})
            .to_string(),
    )
    .await;
    let text = wait_for(&mut ev, |e| match e {
        ClientEvent::PoolMessage { text, .. } => Some(text),
        _ => None,
    })
    .await;
    assert_eq!(text, format!("hi\\n{forged}\\r"));
    let c2 = client.clone();
    let epoch = w.epoch;
    let pending = tokio::spawn(async move { c2.submit(share("j1"), epoch).await });
    let s = pool.recv_method("mining.submit").await;
    pool.send(
        &json!({"id": s["id"], "result": null, "error": [23, format!("low\n{forged}"), null]})
            .to_string(),
    )
    .await;
    let SubmitResult::Rejected(why) = timeout(T, pending).await.unwrap().unwrap().result else {
        panic!("rejected")
    };
    assert!(!why.contains('\n'), "{why}");
    // A malformed line is quoted in the log, escaped too.
    pool.send(&format!("{{oops\u{1b}[2K\u{202e} {forged}"))
        .await;
    pool.send(&format!("\r{forged}")).await;
    pool.notify("j2", false).await;
    next_work(&mut ev).await;
    client.shutdown();
    timeout(T, task).await.unwrap().unwrap();
    let log = logs.text();
    assert!(log.contains("FORGED"), "the texts were logged: {log}");
    for line in log.lines() {
        assert!(
            !line.starts_with("2030-"),
            "forged line in the log: {line:?}\n{log}"
        );
        assert!(
            !line.contains('\u{1b}') && !line.contains('\u{202e}') && !line.contains('\r'),
            "{line:?}"
        );
    }
}

#[tokio::test]
async fn keepalive_zero_is_off() {
    let (l, port) = listener().await;
    let mut cfg = config(&[port]);
    cfg.keepalive = Duration::ZERO;
    let (client, mut ev, task) = Client::spawn(cfg);
    let mut pool = PoolSide::accept(&l).await;
    pool.handshake("aa", 4).await;
    pool.notify("j", true).await;
    let w = next_work(&mut ev).await;
    // A quiet pool is not a dead one when the keepalive is off.
    let quiet = timeout(Duration::from_millis(700), async {
        loop {
            if let ClientEvent::Disconnected { reason, .. } = next_event(&mut ev).await {
                return reason;
            }
        }
    })
    .await;
    assert!(quiet.is_err(), "session dropped: {quiet:?}");
    let c2 = client.clone();
    let epoch = w.epoch;
    let pending = tokio::spawn(async move { c2.submit(share("j"), epoch).await });
    let s = pool.recv_method("mining.submit").await;
    pool.send(&ok_line(&s, json!(true))).await;
    assert_eq!(
        timeout(T, pending).await.unwrap().unwrap().result,
        SubmitResult::Accepted
    );
    client.shutdown();
    timeout(T, task).await.unwrap().unwrap();
}

#[tokio::test]
async fn a_share_answered_late_is_booked_by_the_pool_s_answer() {
    let (l, port) = listener().await;
    let mut cfg = config(&[port]);
    cfg.submit_timeout = Duration::from_millis(100);
    let (client, mut ev, task) = Client::spawn(cfg);
    let mut pool = PoolSide::accept(&l).await;
    pool.handshake("aa", 4).await;
    pool.notify("j", true).await;
    let w = next_work(&mut ev).await;
    let c2 = client.clone();
    let epoch = w.epoch;
    let pending = tokio::spawn(async move { c2.submit(share("j"), epoch).await });
    let s = pool.recv_method("mining.submit").await;
    // Well past the submit timeout and the client's once-a-second sweep.
    sleep(Duration::from_millis(2200)).await;
    pool.send(&ok_line(&s, json!(true))).await;
    let outcome = timeout(T, pending).await.unwrap().unwrap();
    assert_eq!(outcome.result, SubmitResult::Accepted);
    assert!(outcome.latency.unwrap() >= Duration::from_millis(2200));
    client.shutdown();
    timeout(T, task).await.unwrap().unwrap();
}

#[tokio::test]
async fn a_version_mask_sent_before_the_configure_answer_applies() {
    let granted = json!({"version-rolling": true, "version-rolling.mask": "1fffe000"});
    let refused = json!({"version-rolling": false});
    for (answer, expected) in [(granted, Some(0x00ff_e000)), (refused, None)] {
        let (l, port) = listener().await;
        let (client, mut ev, task) = Client::spawn(config(&[port]));
        let mut pool = PoolSide::accept(&l).await;
        let v = pool.recv_method("mining.configure").await;
        pool.send(r#"{"id":null,"method":"mining.set_version_mask","params":["00ffe000"]}"#)
            .await;
        pool.send(&ok_line(&v, answer.clone())).await;
        pool.handshake_with("aa", 4, None).await;
        pool.notify("j1", true).await;
        assert_eq!(next_work(&mut ev).await.version_mask, expected, "{answer}");
        client.shutdown();
        timeout(T, task).await.unwrap().unwrap();
    }
}

#[tokio::test]
async fn an_unanswered_configure_only_turns_version_rolling_off() {
    let (l, port) = listener().await;
    let mut cfg = config(&[port]);
    cfg.handshake_timeout = Duration::from_millis(600);
    let (client, mut ev, task) = Client::spawn(cfg);
    let mut pool = PoolSide::accept(&l).await;
    let hs = pool.handshake_with("aa", 4, None).await;
    assert!(!hs.configure.is_null());
    pool.notify("j1", true).await;
    assert_eq!(next_work(&mut ev).await.version_mask, None);
    // Past the bound the session goes on; a late grant does not switch rolling on mid-run.
    sleep(Duration::from_millis(1200)).await;
    pool.send(&json!({"id": 1, "result": {"version-rolling": true, "version-rolling.mask": "1fffe000"}, "error": null}).to_string())
        .await;
    pool.notify("j2", false).await;
    let w = next_work(&mut ev).await;
    assert_eq!((w.job.job_id.as_str(), w.version_mask), ("j2", None));
    assert!(
        timeout(Duration::from_millis(200), l.accept())
            .await
            .is_err(),
        "no reconnect"
    );
    client.shutdown();
    timeout(T, task).await.unwrap().unwrap();
}

#[tokio::test]
async fn answers_and_work_name_their_pool_across_a_reload_that_reorders_the_list() {
    let (la, pa) = listener().await;
    let (lb, pb) = listener().await;
    let cfg = config(&[pa, pb]);
    let (a_url, b_url) = (cfg.pools[0].url.to_string(), cfg.pools[1].url.to_string());
    let reordered = vec![cfg.pools[1].clone(), cfg.pools[0].clone()];
    let (client, mut ev, task) = Client::spawn(cfg);
    let mut a = PoolSide::accept(&la).await;
    a.handshake("aa", 4).await;
    a.notify("a1", true).await;
    let w = next_work(&mut ev).await;
    assert_eq!((w.pool, w.pool_url.as_str()), (0, a_url.as_str()));
    let c2 = client.clone();
    let epoch = w.epoch;
    let pending = tokio::spawn(async move { c2.submit(share("a1"), epoch).await });
    let s = a.recv_method("mining.submit").await;
    // The share is in flight when the reload swaps the pools: index 0 is B from now on.
    client.set_pools(reordered);
    sleep(Duration::from_millis(100)).await;
    a.send(&ok_line(&s, json!(true))).await;
    let outcome = timeout(T, pending).await.unwrap().unwrap();
    assert_eq!(outcome.result, SubmitResult::Accepted);
    assert_eq!(outcome.pool_url.as_deref(), Some(a_url.as_str()));
    let mut b = PoolSide::accept(&lb).await;
    b.handshake("bb", 4).await;
    b.notify("b1", true).await;
    let w = next_work(&mut ev).await;
    assert_eq!((w.pool, w.pool_url.as_str()), (0, b_url.as_str()));
    client.shutdown();
    timeout(T, task).await.unwrap().unwrap();
}

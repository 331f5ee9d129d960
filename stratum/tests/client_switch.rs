//! Pool switching and pool-list replacement (the worker's HTTP API and config reload use
//! these) between real built-in pools over loopback: `switch_pool` moves the session and pins
//! it against fail-back, `follow_failover` lets fail-back happen again, `set_pools` keeps a
//! session whose pool is unchanged and moves one whose pool is gone.

use std::time::Duration;

use stratum::TlsOptions;
use stratum::client::{Client, ClientConfig, ClientEvent, PoolConfig};
use stratum::server::{Server, ServerConfig, ServerHandle};
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::time::{Instant, timeout};

const T: Duration = Duration::from_secs(10);

async fn pool() -> ServerHandle {
    let cfg = ServerConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        difficulty: 1e-5,
        job_interval: Duration::from_secs(600),
        ..Default::default()
    };
    Server::bind(cfg).await.unwrap().spawn()
}

fn entry(p: &ServerHandle, user: &str) -> PoolConfig {
    PoolConfig {
        url: format!("stratum+tcp://{}", p.local_addr()).parse().unwrap(),
        user: user.into(),
        password: "x".into(),
        tls: TlsOptions::default(),
    }
}

/// The next `Connected` event: (pool index, url).
async fn connected(ev: &mut UnboundedReceiver<ClientEvent>) -> (usize, String) {
    loop {
        match timeout(T, ev.recv()).await.expect("event in time") {
            Some(ClientEvent::Connected { pool, url, .. }) => return (pool, url),
            Some(_) => continue,
            None => panic!("client stopped"),
        }
    }
}

/// Every `Connected` pool index seen during `d`.
async fn connects_during(ev: &mut UnboundedReceiver<ClientEvent>, d: Duration) -> Vec<usize> {
    let end = Instant::now() + d;
    let mut seen = Vec::new();
    while let Ok(Some(e)) = tokio::time::timeout_at(end, ev.recv()).await {
        if let ClientEvent::Connected { pool, .. } = e {
            seen.push(pool);
        }
    }
    seen
}

#[tokio::test]
async fn switch_pins_against_failback_until_released() {
    let (a, b) = (pool().await, pool().await);
    let mut cfg = ClientConfig::new(vec![entry(&a, "w.a"), entry(&b, "w.b")]);
    // Fail-back would probe the (healthy) first pool five times a second.
    cfg.failback_interval = Duration::from_millis(200);
    let (client, mut ev, task) = Client::spawn(cfg);
    assert_eq!(connected(&mut ev).await.0, 0);

    client.switch_pool(1);
    assert_eq!(connected(&mut ev).await.0, 1);
    // Pinned: many fail-back intervals pass and the session stays on pool 1.
    let seen = connects_during(&mut ev, Duration::from_millis(1500)).await;
    assert!(seen.is_empty(), "pinned session moved: {seen:?}");
    // An index outside the list changes nothing.
    client.switch_pool(7);
    let seen = connects_during(&mut ev, Duration::from_millis(500)).await;
    assert!(seen.is_empty(), "bad index moved the session: {seen:?}");

    // Released: the healthy first pool is probed and the session fails back to it.
    client.follow_failover();
    assert_eq!(connected(&mut ev).await.0, 0);

    client.shutdown();
    timeout(T, task).await.unwrap().unwrap();
    a.shutdown().await;
    b.shutdown().await;
}

#[tokio::test]
async fn set_pools_keeps_an_unchanged_session_and_moves_off_a_removed_pool() {
    let (a, b, c) = (pool().await, pool().await, pool().await);
    let (client, mut ev, task) =
        Client::spawn(ClientConfig::new(vec![entry(&a, "w.a"), entry(&b, "w.b")]));
    let (p, url) = connected(&mut ev).await;
    assert_eq!(
        (p, url.contains(&a.local_addr().port().to_string())),
        (0, true)
    );

    // Pool 0 unchanged, a backup added: the live session goes on.
    client.set_pools(vec![entry(&a, "w.a"), entry(&c, "w.c")]);
    let seen = connects_during(&mut ev, Duration::from_millis(700)).await;
    assert!(seen.is_empty(), "unchanged pool reconnected: {seen:?}");

    // New credentials for pool 0 are a new session.
    client.set_pools(vec![entry(&a, "w.renamed"), entry(&c, "w.c")]);
    assert_eq!(connected(&mut ev).await.0, 0);

    // Pool 0 replaced by another pool: the session moves there.
    client.set_pools(vec![entry(&b, "w.b")]);
    let (p, url) = connected(&mut ev).await;
    assert_eq!(p, 0);
    assert!(
        url.ends_with(&format!(":{}", b.local_addr().port())),
        "{url}"
    );

    // An empty list is refused: the session stays.
    client.set_pools(Vec::new());
    let seen = connects_during(&mut ev, Duration::from_millis(500)).await;
    assert!(seen.is_empty(), "empty list moved the session: {seen:?}");

    client.shutdown();
    timeout(T, task).await.unwrap().unwrap();
    for p in [a, b, c] {
        p.shutdown().await;
    }
}

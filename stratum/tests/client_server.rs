//! The client session and the built-in pool talking to each other over every transport
//! (TCP, TLS with a pinned or trusted self-signed certificate, WebSocket, WebSocket over TLS):
//! a real share is found on the CPU, submitted, accepted, and a duplicate rejected.

use std::sync::Arc;
use std::time::Duration;

mod common;

use sha2::{Digest, Sha256};
use stratum::client::{Client, ClientConfig, ClientEvent, PoolConfig, SubmitResult};
use stratum::server::{Server, ServerConfig, ServerHandle, ServerTransport, TlsIdentity};
use stratum::work::Share;
use stratum::{PoolUrl, TlsOptions, Work};
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::time::timeout;

const T: Duration = Duration::from_secs(10);

fn identity() -> (TlsIdentity, [u8; 32], Vec<u8>) {
    let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let der = ck.cert.der().to_vec();
    let pin: [u8; 32] = Sha256::digest(&der).into();
    (
        TlsIdentity {
            cert_chain_der: vec![der.clone()],
            key_der: ck.signing_key.serialize_der(),
        },
        pin,
        der,
    )
}

async fn pool(transport: ServerTransport) -> ServerHandle {
    let cfg = ServerConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        difficulty: 1e-5,
        job_interval: Duration::from_secs(600),
        transport,
        ..Default::default()
    };
    Server::bind(cfg).await.unwrap().spawn()
}

fn client_config(url: PoolUrl, tls: TlsOptions) -> ClientConfig {
    let mut c = ClientConfig::new(vec![PoolConfig {
        url,
        user: "w.t".into(),
        password: "x".into(),
        tls,
    }]);
    c.backoff_min = Duration::from_millis(50);
    c.backoff_max = Duration::from_millis(200);
    c
}

async fn work(ev: &mut UnboundedReceiver<ClientEvent>) -> Arc<Work> {
    common::next_work(ev).await
}

fn find_share(w: &Work) -> Share {
    common::mine_share(w, 1)
}

async fn share_round_trip(url: PoolUrl, tls: TlsOptions, pool: ServerHandle) {
    let (client, mut ev, task) = Client::spawn(client_config(url, tls));
    let w = work(&mut ev).await;
    let share = find_share(&w);
    assert_eq!(
        client.submit(share.clone(), w.epoch).await.result,
        SubmitResult::Accepted
    );
    let dup = client.submit(share, w.epoch).await.result;
    assert!(
        matches!(dup, SubmitResult::Rejected(ref r) if r.to_lowercase().contains("duplicate")),
        "{dup:?}"
    );
    let stats = pool.stats();
    assert_eq!(stats.worker("w.t").accepted, 1);
    client.shutdown();
    timeout(T, task).await.unwrap().unwrap();
    pool.shutdown().await;
}

#[tokio::test]
async fn over_tcp() {
    let pool = pool(ServerTransport::Tcp).await;
    share_round_trip(pool.url(), TlsOptions::default(), pool).await;
}

#[tokio::test]
async fn over_tls_with_a_pinned_self_signed_certificate() {
    let (id, pin, _) = identity();
    let pool = pool(ServerTransport::Tls(id)).await;
    let url = pool.url();
    assert_eq!(url.scheme, stratum::Scheme::Tls);
    share_round_trip(
        url,
        TlsOptions {
            fingerprint: Some(pin),
            ..Default::default()
        },
        pool,
    )
    .await;
}

#[tokio::test]
async fn over_tls_trusting_the_certificate_as_a_root() {
    let (id, _, der) = identity();
    let pool = pool(ServerTransport::Tls(id)).await;
    // Verified like a public pool: chain to a trusted root and the name "localhost".
    let url: PoolUrl = format!("stratum+ssl://localhost:{}", pool.local_addr().port())
        .parse()
        .unwrap();
    share_round_trip(
        url,
        TlsOptions {
            extra_roots: vec![der],
            ..Default::default()
        },
        pool,
    )
    .await;
}

#[tokio::test]
async fn over_websocket() {
    let pool = pool(ServerTransport::Ws).await;
    let url = pool.url();
    assert_eq!(url.scheme, stratum::Scheme::Ws);
    share_round_trip(url, TlsOptions::default(), pool).await;
}

#[tokio::test]
async fn over_websocket_with_tls() {
    let (id, pin, _) = identity();
    let pool = pool(ServerTransport::Wss(id)).await;
    share_round_trip(
        pool.url(),
        TlsOptions {
            fingerprint: Some(pin),
            ..Default::default()
        },
        pool,
    )
    .await;
}

#[tokio::test]
async fn untrusted_or_mismatched_certificates_never_get_work() {
    let (id, _, _) = identity();
    let pool = pool(ServerTransport::Tls(id)).await;
    for tls in [
        TlsOptions::default(),
        TlsOptions {
            fingerprint: Some([7; 32]),
            ..Default::default()
        },
    ] {
        let (client, mut ev, task) = Client::spawn(client_config(pool.url(), tls));
        let got = timeout(Duration::from_millis(800), work(&mut ev)).await;
        assert!(
            got.is_err(),
            "a certificate that is not trusted must not be mined for"
        );
        client.shutdown();
        timeout(T, task).await.unwrap().unwrap();
    }
    assert_eq!(pool.stats().workers.len(), 0);
    // The explicit insecure switch connects anyway (encrypted, unauthenticated).
    let (client, mut ev, task) = Client::spawn(client_config(
        pool.url(),
        TlsOptions {
            insecure: true,
            ..Default::default()
        },
    ));
    work(&mut ev).await;
    client.shutdown();
    timeout(T, task).await.unwrap().unwrap();
    pool.shutdown().await;
}

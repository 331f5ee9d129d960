//! Pool lines into the client session (`stratum::client`), over a real loopback connection:
//! the input is what a pool sends after the worker's handshake. The client asks for
//! everything it can (version rolling, extranonce.subscribe, suggest_difficulty,
//! prover.subscribe), so its requests carry ids 1 to 6 (configure, subscribe,
//! extranonce.subscribe, authorize, suggest_difficulty, prover.subscribe) and a share queued
//! before the connection goes out as id 7 once the pool has answered subscribe and authorize:
//! inputs can answer any of them.
//!
//! Every session must end once the pool closes, and the client must shut down when told:
//! either not happening within the hang bound is a crash.
#![no_main]

use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use rigworker_fuzz::{bounded, runtime};
use stratum::proving::ProverCapabilities;
use stratum::work::ExtraNonce2;
use stratum::{Client, ClientConfig, PoolConfig, Share, TlsOptions};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

/// One listener for the whole run; each input's connection is told apart by its user name.
static POOL: LazyLock<(TcpListener, u16)> = LazyLock::new(|| {
    let std = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    std.set_nonblocking(true).expect("nonblocking");
    let port = std.local_addr().expect("addr").port();
    let _rt = runtime().enter();
    (TcpListener::from_std(std).expect("listener"), port)
});
static INPUT: AtomicU64 = AtomicU64::new(0);

fuzz_target!(|data: &[u8]| {
    let (listener, port) = &*POOL;
    let user = format!("fuzz.{}", INPUT.fetch_add(1, Ordering::Relaxed));
    runtime().block_on(async {
        let mut cfg = ClientConfig::new(vec![PoolConfig {
            url: format!("stratum+tcp://127.0.0.1:{port}")
                .parse()
                .expect("url"),
            user: user.clone(),
            password: "x".into(),
            tls: TlsOptions::default(),
        }]);
        cfg.suggest_difficulty = Some(2.0);
        cfg.prover = Some(ProverCapabilities::groth16_bn254(
            1 << 20,
            vec!["cpu".into()],
        ));
        // After this input's session, nothing reconnects before the shutdown below.
        cfg.backoff_min = Duration::from_secs(3600);
        cfg.backoff_max = Duration::from_secs(3600);
        let (handle, mut events, task) = Client::spawn(cfg);
        let share = Share {
            job_id: "1".into(),
            extranonce2: ExtraNonce2::new(1, 4).expect("en2"),
            ntime: 0x4d1b_2237,
            nonce: 0x1057_2b0f,
            version_bits: None,
        };
        let answer = handle.submit_detached(share, 1);

        let sock = bounded("the client's connection", async {
            loop {
                let (sock, _) = listener.accept().await.expect("accept");
                // Skip connections of earlier inputs (a client.reconnect with no wait).
                let mut r = BufReader::new(sock);
                let mut line = String::new();
                let mut ours = false;
                while r.read_line(&mut line).await.is_ok_and(|n| n > 0) {
                    if line.contains("mining.authorize") {
                        ours = line.contains(&format!("\"{user}\""));
                        break;
                    }
                    line.clear();
                }
                if ours {
                    break r;
                }
            }
        })
        .await;
        let (mut rd, mut wr) = tokio::io::split(sock);
        // The pool's side: everything in the input, then the end of the stream. Write errors
        // are the client having closed already.
        let write = async {
            let _ = wr.write_all(data).await;
            let _ = wr.shutdown().await;
        };
        // Whatever the client answers, up to its close: the session is over.
        let read = async {
            let mut buf = vec![0u8; 64 * 1024];
            while rd.read(&mut buf).await.is_ok_and(|n| n > 0) {}
        };
        bounded("the session after the pool closed", async {
            tokio::join!(write, read);
        })
        .await;
        handle.shutdown();
        bounded("the client's shutdown", task)
            .await
            .expect("client task");
        // Every share gets exactly one answer.
        bounded("the queued share's answer", answer)
            .await
            .expect("share answered");
        while events.try_recv().is_ok() {}
    });
});

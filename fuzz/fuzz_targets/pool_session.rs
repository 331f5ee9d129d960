//! Miner lines into the built-in pool's session (`stratum::server`), over a real loopback
//! connection: the input is everything a miner sends. The pool runs with vardiff, version
//! rolling, a tiny difficulty (so fuzzed shares can be accepted, not only rejected), a small
//! per-worker stats table and proving jobs from the repository's circuit fixtures (so
//! `prover.subscribe` / `prover.submit` reach the proof verifier).
//!
//! Every session must end once the miner closes: not within the hang bound is a crash.
#![no_main]

use std::sync::LazyLock;
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use rigworker_fuzz::{bounded, runtime};
use stratum::server::{ProvingConfig, Server, ServerConfig, ServerHandle, VardiffConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

static POOL: LazyLock<ServerHandle> = LazyLock::new(|| {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../proofs/fixtures");
    let mut proving = ProvingConfig::new(dir);
    proving.interval = Duration::ZERO;
    let config = ServerConfig {
        listen: "127.0.0.1:0".parse().expect("addr"),
        difficulty: 1e-9,
        vardiff: Some(VardiffConfig::default()),
        job_interval: Duration::from_secs(1),
        clean_every: 3,
        max_worker_stats: 8,
        proving: Some(proving),
        ..Default::default()
    };
    runtime().block_on(async { Server::bind(config).await.expect("bind").spawn() })
});

fuzz_target!(|data: &[u8]| {
    let addr = POOL.local_addr();
    runtime().block_on(async {
        let sock = TcpStream::connect(addr).await.expect("connect");
        let (mut rd, mut wr) = sock.into_split();
        // Write errors are the pool having closed already (a line too long, too much garbage).
        let write = async {
            let _ = wr.write_all(data).await;
            let _ = wr.shutdown().await;
        };
        let read = async {
            let mut buf = vec![0u8; 64 * 1024];
            while rd.read(&mut buf).await.is_ok_and(|n| n > 0) {}
        };
        bounded("the pool's session after the miner closed", async {
            tokio::join!(write, read);
        })
        .await;
    });
});

//! Interoperability with code we did not write: the Stratum Reference Implementation's
//! translator proxy (`translator_sv2`, `cargo install translator_sv2`) between our Stratum V1
//! client and the Stratum V2 side of our pool. The translator opens an extended channel on
//! our pool and serves V1 to our client; a share our client finds must come back accepted and
//! be counted by our pool.
//!
//! Runs when the binary is found (`$RIGWORKER_TRANSLATOR_SV2`, else `translator_sv2` on PATH
//! or in `~/.cargo/bin`) and prints why it skipped otherwise; with
//! `RIGWORKER_REQUIRE_TRANSLATOR=1` a missing binary fails the test instead.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use stratum::client::{Client, ClientConfig, ClientEvent, PoolConfig, SubmitResult};
use stratum::server::{Server, ServerConfig, Sv2Config};
use stratum::sv2::AuthorityKeypair;
use stratum::work::{Difficulty, ExtraNonce2, Share};
use stratum::{PoolUrl, Scheme, TlsOptions};
use tokio::time::timeout;

const T: Duration = Duration::from_secs(120);

fn find_translator() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("RIGWORKER_TRANSLATOR_SV2") {
        return Some(PathBuf::from(p));
    }
    let mut dirs: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect())
        .unwrap_or_default();
    if let Some(h) = std::env::var_os("HOME") {
        dirs.push(PathBuf::from(h).join(".cargo/bin"));
    }
    dirs.into_iter()
        .map(|d| d.join("translator_sv2"))
        .find(|p| p.is_file())
}

/// Kills the translator however the test ends.
struct Proxy(Child);

impl Drop for Proxy {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_v1_client_through_the_reference_translator_to_our_v2_pool() {
    let Some(bin) = find_translator() else {
        let why = "SKIPPED: translator_sv2 not found ($RIGWORKER_TRANSLATOR_SV2, PATH, \
                   ~/.cargo/bin); install it with `cargo install translator_sv2`";
        assert!(
            std::env::var_os("RIGWORKER_REQUIRE_TRANSLATOR").is_none(),
            "{why}"
        );
        eprintln!("{why}");
        return;
    };
    // Our pool: the translator's channel gets this (easy) upstream difficulty.
    let upstream = Difficulty::new(1e-6).unwrap();
    let cfg = ServerConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        difficulty: upstream.get(),
        job_interval: Duration::from_secs(600),
        sv2: Some(Sv2Config {
            listen: "127.0.0.1:0".parse().unwrap(),
            authority: AuthorityKeypair::generate(),
        }),
        ..Default::default()
    };
    let pool = Server::bind(cfg).await.unwrap().spawn();
    let sv2 = pool.sv2_url().unwrap();
    let Scheme::Sv2(key) = sv2.scheme else {
        panic!("not a V2 URL")
    };

    let dir = std::env::temp_dir().join(format!("rigworker-tproxy-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let port = free_port();
    // One upstream channel per downstream miner, with the pool's extranonce2 size (4) as the
    // miner's: our pool refuses a larger minimum.
    let config = format!(
        r#"
downstream_address = "127.0.0.1"
downstream_port = {port}
max_supported_version = 2
min_supported_version = 2
downstream_extranonce2_size = 4
aggregate_channels = false
verify_payout = false

[downstream_difficulty_config]
min_individual_miner_hashrate = 1000.0
shares_per_minute = 60.0
enable_vardiff = false
job_keepalive_interval_secs = 60

[[upstreams]]
address = "{host}"
port = {sv2_port}
authority_pubkey = "{key}"
user_identity = "tproxy.test"
"#,
        host = sv2.host,
        sv2_port = sv2.port,
    );
    let config_path = dir.join("tproxy.toml");
    std::fs::write(&config_path, config).unwrap();
    let log_path = dir.join("tproxy.log");
    let log = std::fs::File::create(&log_path).unwrap();
    eprintln!(
        "running {} -c {} (output in {})",
        bin.display(),
        config_path.display(),
        log_path.display()
    );
    let child = Command::new(&bin)
        .arg("-c")
        .arg(&config_path)
        .stdout(Stdio::from(log.try_clone().unwrap()))
        .stderr(Stdio::from(log))
        .spawn()
        .unwrap();
    let _proxy = Proxy(child);
    let log_text = || std::fs::read_to_string(&log_path).unwrap_or_default();

    // The translator listens once its upstream channel is up.
    let up = timeout(T, async {
        loop {
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await;
    assert!(up.is_ok(), "translator never listened:\n{}", log_text());

    let url: PoolUrl = format!("stratum+tcp://127.0.0.1:{port}").parse().unwrap();
    let mut c = ClientConfig::new(vec![PoolConfig {
        url,
        user: "w.t".into(),
        password: "x".into(),
        tls: TlsOptions::default(),
    }]);
    c.backoff_min = Duration::from_millis(100);
    c.backoff_max = Duration::from_millis(500);
    let (client, mut ev, task) = Client::spawn(c);
    let w = timeout(T, async {
        loop {
            match ev.recv().await {
                Some(ClientEvent::Work(w)) => return w,
                Some(_) => continue,
                None => panic!("client stopped"),
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("no work through the translator:\n{}", log_text()));

    // A share that meets our pool's (upstream) target meets the translator's easier one too.
    let en2 = ExtraNonce2::new(1, w.extranonce.extranonce2_size).unwrap();
    let header = w
        .job
        .header(&w.extranonce, &en2, w.job.ntime, w.job.version);
    let target = upstream.target().min(w.target);
    let nonce = (0..=u32::MAX)
        .find(|n| target.is_met_by(&header.with_nonce(*n).hash()))
        .unwrap();
    let share = Share {
        job_id: w.job.job_id.clone(),
        extranonce2: en2,
        ntime: w.job.ntime,
        nonce,
        version_bits: w.version_mask.map(|m| w.job.version & m),
    };
    let r = client.submit(share, w.epoch).await.result;
    assert_eq!(r, SubmitResult::Accepted, "{}", log_text());
    let stats = pool
        .wait_for(|s| s.total.accepted >= 1, T)
        .await
        .unwrap_or_else(|| panic!("our pool never counted the share:\n{}", log_text()));
    eprintln!("our pool's counts: {:?}", stats.total);
    client.shutdown();
    let _ = timeout(T, task).await;
    pool.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
}

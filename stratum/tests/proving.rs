//! Proving jobs over a real loopback session with the built-in pool (`docs/protocol.md`): the
//! client subscribes to proving, receives `prover.notify` for the circuits in a folder, fetches
//! the zkey (and a large witness) over HTTP by hash, proves with `proofs`, and the pool verifies:
//! a good proof is accepted, the same one again is a duplicate, a tampered proof or wrong public
//! signals are refused with their codes, and a pool without `--proving-dir` says no.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use backends::prove::CpuProveBackend;
use proofs::{Precompute, PreparedKey, Witness};
use serde_json::Value;
use stratum::client::{Client, ClientConfig, ClientEvent, PoolConfig, ProofResult};
use stratum::http::{HttpUrl, fetch};
use stratum::proving::{ArtifactId, ProofJob, ProverCapabilities, WitnessSource};
use stratum::server::{ProvingConfig, Server, ServerConfig, ServerHandle};
use stratum::{ClientHandle, TlsOptions};
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::time::timeout;

const T: Duration = Duration::from_secs(30);

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../proofs/fixtures")
}

async fn pool(proving: Option<ProvingConfig>) -> ServerHandle {
    let cfg = ServerConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        difficulty: 1e-5,
        job_interval: Duration::from_secs(600),
        proving,
        ..Default::default()
    };
    Server::bind(cfg).await.unwrap().spawn()
}

fn client(pool: &ServerHandle) -> (ClientHandle, UnboundedReceiver<ClientEvent>) {
    let mut c = ClientConfig::new(vec![PoolConfig {
        url: pool.url(),
        user: "w.prover".into(),
        password: "x".into(),
        tls: TlsOptions::default(),
    }]);
    c.prover = Some(ProverCapabilities::groth16_bn254(
        1 << 20,
        vec!["cpu".into()],
    ));
    let (h, ev, _task) = Client::spawn(c);
    (h, ev)
}

async fn proof_job(ev: &mut UnboundedReceiver<ClientEvent>) -> (Arc<ProofJob>, String, u64) {
    loop {
        match timeout(T, ev.recv()).await.expect("a proving job in time") {
            Some(ClientEvent::ProofJob {
                job,
                pool_host,
                epoch,
                ..
            }) => return (job, pool_host, epoch),
            Some(_) => {}
            None => panic!("client ended"),
        }
    }
}

async fn download(url: &str, host: &str) -> Vec<u8> {
    let u = HttpUrl::parse(url, host).unwrap();
    let mut out = Vec::new();
    let mut sink = |b: &[u8]| {
        out.extend_from_slice(b);
        Ok(())
    };
    fetch(&u, &TlsOptions::default(), 1 << 30, T, &mut sink)
        .await
        .unwrap();
    out
}

/// Fetches what a job names, checks the hashes, proves; returns (proof, public) as JSON.
async fn prove(job: &ProofJob, host: &str) -> (Value, Vec<String>) {
    let zkey = download(&job.zkey_url, host).await;
    assert_eq!(ArtifactId::of(&zkey), job.circuit_id);
    let wtns = match &job.witness {
        WitnessSource::Inline(b) => b.clone(),
        WitnessSource::Url { url, sha256, .. } => {
            let b = download(url, host).await;
            assert_eq!(ArtifactId::of(&b), *sha256);
            b
        }
    };
    let dir = std::env::temp_dir().join(format!("rigworker-proving-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{}.zkey", job.circuit_id));
    std::fs::write(&path, &zkey).unwrap();
    tokio::task::spawn_blocking(move || {
        let key =
            PreparedKey::load(&path, Arc::new(CpuProveBackend::new()), Precompute::None).unwrap();
        let w = Witness::parse(&wtns).unwrap();
        let out = key.prove(&w, Default::default()).unwrap();
        let proof: Value = serde_json::from_str(&out.proof.to_json()).unwrap();
        let public: Vec<String> =
            serde_json::from_str(&proofs::json::public_to_json(&out.public)).unwrap();
        (proof, public)
    })
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proofs_through_the_built_in_pool_are_verified() {
    let mut cfg = ProvingConfig::new(fixtures());
    cfg.interval = Duration::ZERO;
    let pool = pool(Some(cfg)).await;
    let (h, mut ev) = client(&pool);
    let mut inline = 0;
    let mut by_url = 0;
    // The folder has two circuits: the pool offers them in turn.
    for _ in 0..2 {
        let (job, host, epoch) = proof_job(&mut ev).await;
        match job.witness {
            WitnessSource::Inline(_) => inline += 1,
            WitnessSource::Url { .. } => by_url += 1,
        }
        let (proof, public) = prove(&job, &host).await;
        let r = h
            .submit_proof(job.job_id.clone(), proof.clone(), public.clone(), epoch)
            .await;
        assert_eq!(r, ProofResult::Accepted);
        // Once answered, the same job again is a duplicate.
        let r = h
            .submit_proof(job.job_id.clone(), proof, public, epoch)
            .await;
        assert!(
            matches!(&r, ProofResult::Rejected(m) if m.contains("duplicate")),
            "{r:?}"
        );
    }
    assert_eq!(
        (inline, by_url),
        (1, 1),
        "mulchain's witness inline, poseidon's by URL"
    );

    // A valid proof with wrong public signals, and a tampered proof, are refused.
    let (job, host, epoch) = proof_job(&mut ev).await;
    let (proof, mut public) = prove(&job, &host).await;
    public[0] = "12345".into();
    let r = h
        .submit_proof(job.job_id.clone(), proof.clone(), public, epoch)
        .await;
    assert!(
        matches!(&r, ProofResult::Rejected(m) if m.contains("(24)")),
        "{r:?}"
    );
    let (job, host, epoch) = proof_job(&mut ev).await;
    let (proof2, public2) = prove(&job, &host).await;
    let mut bad = proof2.clone();
    bad["pi_a"] = proof["pi_a"].clone();
    if bad == proof2 {
        bad["pi_a"] = proof2["pi_c"].clone();
    }
    let r = h
        .submit_proof(job.job_id.clone(), bad, public2, epoch)
        .await;
    assert!(
        matches!(&r, ProofResult::Rejected(m) if m.contains("(23)")),
        "{r:?}"
    );
    let r = h
        .submit_proof("p-unknown".into(), proof2, vec![], epoch)
        .await;
    assert!(matches!(&r, ProofResult::Rejected(_)), "{r:?}");
    // A proof for an earlier session's job is never sent.
    let r = h
        .submit_proof(job.job_id.clone(), Value::Null, vec![], epoch + 1)
        .await;
    assert!(matches!(r, ProofResult::Lost(_)), "{r:?}");

    let st = pool.stats();
    assert_eq!(st.proofs_accepted, 2);
    assert_eq!(st.proofs_rejected.get(&22), Some(&2));
    assert_eq!(st.proofs_rejected.get(&24), Some(&1));
    assert_eq!(st.proofs_rejected.get(&23), Some(&1));
    assert!(st.proof_jobs >= 4);
    h.shutdown();
}

/// A job the worker will not prove is declined (`prover.decline`): the pool drops it at once
/// instead of at its deadline (ten minutes here), counts it, and sends the next job; a proof
/// for the declined job is then a duplicate.
#[tokio::test]
async fn a_declined_job_is_dropped_and_the_next_one_comes_at_once() {
    let mut cfg = ProvingConfig::new(fixtures());
    cfg.interval = Duration::ZERO;
    let pool = pool(Some(cfg)).await;
    let (h, mut ev) = client(&pool);
    let (job, host, epoch) = proof_job(&mut ev).await;
    h.decline_proof(
        job.job_id.clone(),
        "queue full\nforged log line".into(),
        epoch,
    );
    let (next, _, _) = proof_job(&mut ev).await;
    assert_ne!(next.job_id, job.job_id);
    assert_eq!(pool.stats().proofs_declined, 1);
    let (proof, public) = prove(&job, &host).await;
    let r = h
        .submit_proof(job.job_id.clone(), proof, public, epoch)
        .await;
    assert!(
        matches!(&r, ProofResult::Rejected(m) if m.contains("duplicate")),
        "{r:?}"
    );
    h.shutdown();
}

#[tokio::test]
async fn a_pool_without_proving_jobs_keeps_the_worker_hashing() {
    let pool = pool(None).await;
    let (h, mut ev) = client(&pool);
    // Hashing work still arrives; no proving job ever does.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
    let mut work = 0;
    while let Ok(Some(e)) = tokio::time::timeout_at(deadline, ev.recv()).await {
        match e {
            ClientEvent::Work(_) => work += 1,
            ClientEvent::ProofJob { .. } => panic!("no proving job expected"),
            _ => {}
        }
    }
    assert!(work >= 1);
    h.shutdown();
}

#[tokio::test]
async fn a_proving_dir_without_witnesses_is_a_clear_error() {
    let dir = std::env::temp_dir().join(format!("rigworker-empty-proving-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let cfg = ServerConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        proving: Some(ProvingConfig::new(dir.clone())),
        ..Default::default()
    };
    let e = Server::bind(cfg).await.err().expect("an error");
    assert!(e.to_string().contains("no NAME.zkey"), "{e}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A miner's side of the pool by hand: requests out, lines in.
struct RawMiner {
    rd: tokio::io::Lines<tokio::io::BufReader<tokio::net::tcp::OwnedReadHalf>>,
    wr: tokio::net::tcp::OwnedWriteHalf,
    next_id: u64,
}

impl RawMiner {
    async fn connect(pool: &ServerHandle) -> RawMiner {
        use tokio::io::AsyncBufReadExt;
        let tcp = tokio::net::TcpStream::connect(pool.local_addr())
            .await
            .unwrap();
        let (r, w) = tcp.into_split();
        RawMiner {
            rd: tokio::io::BufReader::new(r).lines(),
            wr: w,
            next_id: 1,
        }
    }

    async fn send(&mut self, method: &str, params: Value) {
        use tokio::io::AsyncWriteExt;
        let line = serde_json::json!({"id": self.next_id, "method": method, "params": params});
        self.next_id += 1;
        self.wr
            .write_all(format!("{line}\n").as_bytes())
            .await
            .unwrap();
    }

    /// The `prover.notify` job ids that arrive within `d`.
    async fn proof_jobs_within(&mut self, d: Duration) -> Vec<String> {
        let until = tokio::time::Instant::now() + d;
        let mut ids = Vec::new();
        while let Ok(Ok(Some(line))) = tokio::time::timeout_at(until, self.rd.next_line()).await {
            let v: Value = serde_json::from_str(&line).unwrap();
            if v["method"] == "prover.notify" {
                ids.push(v["params"][0]["job_id"].as_str().unwrap_or("").to_string());
            }
        }
        ids
    }
}

/// Each job costs the pool a pairing check when a proof comes: a worker holds one at a time,
/// however often it subscribes, and one it drops is taken back at its deadline.
#[tokio::test]
async fn a_worker_holds_one_proving_job_until_it_answers_or_the_deadline_passes() {
    let mut cfg = ProvingConfig::new(fixtures());
    cfg.interval = Duration::ZERO;
    cfg.deadline = Duration::from_secs(1);
    let pool = pool(Some(cfg)).await;
    let mut m = RawMiner::connect(&pool).await;
    m.send("mining.subscribe", serde_json::json!(["raw/1"]))
        .await;
    m.send("mining.authorize", serde_json::json!(["w", "x"]))
        .await;
    let caps = ProverCapabilities::groth16_bn254(1 << 20, vec!["cpu".into()]);
    for _ in 0..3 {
        m.send("prover.subscribe", Value::Array(caps.to_params()))
            .await;
    }
    let first = m.proof_jobs_within(Duration::from_millis(800)).await;
    assert_eq!(first.len(), 1, "jobs for three subscriptions: {first:?}");
    // Never answered: past its deadline (1 s, whole seconds) it expires and the next one comes.
    let next = m.proof_jobs_within(Duration::from_secs(5)).await;
    assert!(!next.is_empty(), "no job after the first one expired");
    assert_ne!(next[0], first[0]);
    // (Another may have gone out just as the window closed.)
    assert!(pool.stats().proof_jobs > next.len() as u64);
}

//! Stratum V2 end to end over real loopback sockets: our client against our pool (shares
//! accepted and rejected, a job switch and a new prevhash, a target change, a wrong
//! authority key), our client against a pool that misbehaves on purpose (a connection cut in
//! the middle of a frame, a garbage frame, an oversized frame, a handshake that stops
//! halfway, a Stratum V1 server at a V2 address): each must end the session with a clear
//! error and reconnect. Also the SV2 byte order against the real block 100000, and one
//! failover list mixing V1 and V2 pools.

mod common;

use std::sync::Arc;
use std::time::Duration;

use binary_sv2::{B032, B064K, Seq0255, Sv2Option, U256};
use common::Logs;
use common_messages_sv2::{
    MESSAGE_TYPE_SETUP_CONNECTION, MESSAGE_TYPE_SETUP_CONNECTION_SUCCESS, SetupConnectionSuccess,
};
use mining_sv2::{
    MESSAGE_TYPE_NEW_EXTENDED_MINING_JOB, MESSAGE_TYPE_NEW_MINING_JOB,
    MESSAGE_TYPE_OPEN_STANDARD_MINING_CHANNEL, MESSAGE_TYPE_OPEN_STANDARD_MINING_CHANNEL_SUCCESS,
    NewExtendedMiningJob, NewMiningJob, OpenStandardMiningChannel,
    OpenStandardMiningChannelSuccess, SetNewPrevHash,
};
use stratum::client::{Client, ClientConfig, ClientEvent, PoolConfig, SubmitResult};
use stratum::server::{Server, ServerConfig, ServerHandle, Sv2Config};
use stratum::sv2::{
    AuthorityKeypair, FrameReader, FrameWriter, Sv2Error, initiator_handshake, responder_handshake,
};
use stratum::work::{Difficulty, ExtraNonce2, Hash256, Share};
use stratum::{PoolUrl, Scheme, TlsOptions, Work};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::time::timeout;

/// Generous: the test machine may be a loaded two-core box.
const T: Duration = Duration::from_secs(60);

async fn pool(difficulty: f64) -> ServerHandle {
    let cfg = ServerConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        difficulty,
        job_interval: Duration::from_secs(600),
        sv2: Some(Sv2Config {
            listen: "127.0.0.1:0".parse().unwrap(),
            authority: AuthorityKeypair::generate(),
        }),
        ..Default::default()
    };
    Server::bind(cfg).await.unwrap().spawn()
}

fn client_config(urls: Vec<PoolUrl>) -> ClientConfig {
    let pools = urls
        .into_iter()
        .map(|url| PoolConfig {
            url,
            user: "w.t".into(),
            password: "x".into(),
            tls: TlsOptions::default(),
        })
        .collect();
    let mut c = ClientConfig::new(pools);
    c.backoff_min = Duration::from_millis(50);
    c.backoff_max = Duration::from_millis(200);
    c.handshake_timeout = Duration::from_secs(5);
    c.connect_timeout = Duration::from_secs(5);
    c
}

async fn work(ev: &mut UnboundedReceiver<ClientEvent>) -> Arc<Work> {
    common::next_work_within(ev, T).await
}

/// A share of `w` as the engine builds it for header-only work (a 0-byte extranonce2).
fn find_share(w: &Work) -> Share {
    common::mine_share(w, 0)
}

#[test]
fn stratum2_urls_parse_and_print() {
    let key = AuthorityKeypair::generate().public();
    let text = format!("stratum2+tcp://127.0.0.1:34254/{key}");
    let url: PoolUrl = text.parse().unwrap();
    assert_eq!(url.scheme, Scheme::Sv2(key));
    assert_eq!((url.host.as_str(), url.port), ("127.0.0.1", 34254));
    assert_eq!(url.to_string(), text);
    for bad in [
        "stratum2+tcp://127.0.0.1:34254".to_string(),
        "stratum2+tcp://127.0.0.1:34254/".to_string(),
        "stratum2+tcp://127.0.0.1:34254/notakey".to_string(),
        format!("stratum2+tcp://127.0.0.1/{key}"),
    ] {
        assert!(bad.parse::<PoolUrl>().is_err(), "{bad}");
    }
}

/// SV2 sends `prev_hash` and `merkle_root` as U256 in header order and the numbers as
/// numbers: encoded and decoded by binary_sv2 as a pool would send them, the fields of real
/// block 100000 must give back its header and hash through the work model.
#[test]
fn header_only_job_rebuilds_block_100000() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/block-100000.json");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let b = &v["block"];
    let header = hex::decode(b["header_hex"].as_str().unwrap()).unwrap();
    let prev: [u8; 32] = header[4..36].try_into().unwrap();
    let root: [u8; 32] = header[36..68].try_into().unwrap();
    let ntime = b["ntime"].as_u64().unwrap() as u32;
    let nbits = b["nbits"].as_u64().unwrap() as u32;
    let nonce = b["nonce"].as_u64().unwrap() as u32;

    let mut job_bytes = binary_sv2::to_bytes(NewMiningJob {
        channel_id: 1,
        job_id: 7,
        min_ntime: Sv2Option::new(None),
        version: 1,
        merkle_root: U256::from(&root),
    })
    .unwrap();
    let mut prev_bytes = binary_sv2::to_bytes(SetNewPrevHash {
        channel_id: 1,
        job_id: 7,
        prev_hash: U256::from(&prev),
        min_ntime: ntime,
        nbits,
    })
    .unwrap();
    let job: NewMiningJob = binary_sv2::from_bytes(&mut job_bytes).unwrap();
    let sph: SetNewPrevHash = binary_sv2::from_bytes(&mut prev_bytes).unwrap();
    let job = stratum::work::Job::header_only(
        job.job_id.to_string(),
        Hash256(sph.prev_hash.to_array()),
        Hash256(job.merkle_root.to_array()),
        job.version,
        sph.nbits,
        sph.min_ntime,
        true,
    );
    // The explorer's (reversed) forms of the same hashes.
    assert_eq!(
        Hash256(prev).to_string(),
        b["prevhash"].as_str().unwrap(),
        "prev_hash is header order"
    );
    assert_eq!(
        Hash256(root).to_string(),
        b["merkle_root"].as_str().unwrap()
    );
    let en = stratum::work::Extranonce::header_only();
    let en2 = ExtraNonce2::new(0, 0).unwrap();
    let h = job
        .header(&en, &en2, job.ntime, job.version)
        .with_nonce(nonce);
    assert_eq!(hex::encode(h.0), b["header_hex"].as_str().unwrap());
    assert_eq!(h.hash().to_string(), b["block_hash"].as_str().unwrap());
    let target = job.block_target().unwrap();
    assert!(target.is_met_by(&h.hash()));
}

#[tokio::test]
async fn shares_are_accepted_and_duplicates_rejected() {
    let pool = pool(1e-5).await;
    let url = pool.sv2_url().unwrap();
    let (client, mut ev, task) = Client::spawn(client_config(vec![url]));
    let w = work(&mut ev).await;
    assert_eq!(w.extranonce.extranonce2_size, 0, "header-only work");
    assert!(w.job.merkle_root.is_some());
    assert_eq!(w.version_mask, Some(0x1fff_e000));
    let share = find_share(&w);
    assert_eq!(
        client.submit(share.clone(), w.epoch).await.result,
        SubmitResult::Accepted
    );
    let dup = client.submit(share, w.epoch).await.result;
    assert!(
        matches!(dup, SubmitResult::Rejected(ref r) if r.contains("duplicate")),
        "{dup:?}"
    );
    // A rolled version inside the mask is a different header: accepted too.
    let mut rolled = w.as_ref().clone();
    rolled.job.version ^= 0x0000_2000;
    let share = find_share(&rolled);
    assert_eq!(
        client.submit(share, w.epoch).await.result,
        SubmitResult::Accepted
    );
    let stats = pool.stats();
    assert_eq!(stats.worker("w.t").accepted, 2);
    assert_eq!(stats.total.accepted, 2);
    client.shutdown();
    timeout(T, task).await.unwrap().unwrap();
    pool.shutdown().await;
}

#[tokio::test]
async fn job_switch_new_prevhash_and_stale_share() {
    let pool = pool(1e-5).await;
    let (client, mut ev, task) = Client::spawn(client_config(vec![pool.sv2_url().unwrap()]));
    let first = work(&mut ev).await;
    assert!(first.job.clean_jobs);

    pool.new_job();
    let same_block = work(&mut ev).await;
    assert!(!same_block.job.clean_jobs);
    assert_eq!(same_block.job.prevhash, first.job.prevhash);
    assert_ne!(same_block.job.job_id, first.job.job_id);
    assert_ne!(same_block.job.merkle_root, first.job.merkle_root);

    pool.new_block();
    let next_block = work(&mut ev).await;
    assert!(
        next_block.job.clean_jobs,
        "a new prevhash starts a clean job"
    );
    assert_ne!(next_block.job.prevhash, first.job.prevhash);

    // A share of the replaced block: the pool calls it stale, and so do we.
    let old = find_share(&same_block);
    let r = client.submit(old, same_block.epoch).await.result;
    assert!(matches!(r, SubmitResult::Stale(_)), "{r:?}");
    let fresh = find_share(&next_block);
    assert_eq!(
        client.submit(fresh, next_block.epoch).await.result,
        SubmitResult::Accepted
    );
    client.shutdown();
    timeout(T, task).await.unwrap().unwrap();
    pool.shutdown().await;
}

#[tokio::test]
async fn target_change_applies_to_the_next_job() {
    let pool = pool(1e-5).await;
    let (client, mut ev, task) = Client::spawn(client_config(vec![pool.sv2_url().unwrap()]));
    let first = work(&mut ev).await;
    assert_eq!(first.target, Difficulty::new(1e-5).unwrap().target());
    let easier = Difficulty::new(5e-6).unwrap();
    pool.set_difficulty(easier);
    let next = work(&mut ev).await;
    assert_eq!(next.target, easier.target());
    assert!(!next.job.clean_jobs);
    // A share meeting only the easier target counts: the pool judges it by the new one.
    let share = (0..)
        .map(|i| {
            let mut w = next.as_ref().clone();
            w.job.version ^= (i & 0xffff) << 13;
            find_share(&w)
        })
        .find(|s| {
            let h = s.header(&next.job, &next.extranonce, 0x1fff_e000).hash();
            !first.target.is_met_by(&h)
        })
        .unwrap();
    assert_eq!(
        client.submit(share, next.epoch).await.result,
        SubmitResult::Accepted
    );
    client.shutdown();
    timeout(T, task).await.unwrap().unwrap();
    pool.shutdown().await;
}

#[tokio::test]
async fn a_wrong_authority_key_is_refused() {
    let pool = pool(1e-5).await;
    let mut url = pool.sv2_url().unwrap();
    let wrong = AuthorityKeypair::generate().public();
    url.scheme = Scheme::Sv2(wrong);

    // The handshake itself says why.
    let tcp = TcpStream::connect((url.host.as_str(), url.port))
        .await
        .unwrap();
    let r = initiator_handshake(tcp, wrong, T, T).await;
    assert!(
        matches!(r, Err(Sv2Error::WrongAuthority(_))),
        "{:?}",
        r.err()
    );

    // The client never gets work from it, logs the reason and keeps trying.
    let (logs, _guard) = Logs::capture();
    let (client, mut ev, task) = Client::spawn(client_config(vec![url]));
    let before = pool.stats().connections_total;
    pool.wait_for(|s| s.connections_total >= before + 2, T)
        .await
        .expect("the client reconnects");
    while let Ok(e) = ev.try_recv() {
        assert!(
            !matches!(e, ClientEvent::Work(_) | ClientEvent::Connected { .. }),
            "{e:?}"
        );
    }
    assert!(
        logs.text().contains("not signed by authority key"),
        "{}",
        logs.text()
    );
    client.shutdown();
    timeout(T, task).await.unwrap().unwrap();
    pool.shutdown().await;
}

/// One list, two protocols: a V2 pool that fails (wrong key) and a V1 pool after it.
#[tokio::test]
async fn one_failover_list_mixes_v1_and_v2() {
    let pool = pool(1e-5).await;
    let mut bad = pool.sv2_url().unwrap();
    bad.scheme = Scheme::Sv2(AuthorityKeypair::generate().public());
    let mut cfg = client_config(vec![bad, pool.url()]);
    cfg.attempts_per_pool = 1;
    cfg.failback_interval = Duration::ZERO;
    let (client, mut ev, task) = Client::spawn(cfg);
    let w = work(&mut ev).await;
    assert_eq!(w.pool, 1);
    assert_eq!(
        w.extranonce.extranonce2_size, 4,
        "V1 work from the second pool"
    );
    client.shutdown();
    timeout(T, task).await.unwrap().unwrap();
    pool.shutdown().await;
}

// ------------------------------------------------------------------------------------------
// A pool that misbehaves on purpose.

struct BadPool {
    listener: TcpListener,
    key: AuthorityKeypair,
}

impl BadPool {
    async fn new() -> BadPool {
        BadPool {
            listener: TcpListener::bind("127.0.0.1:0").await.unwrap(),
            key: AuthorityKeypair::generate(),
        }
    }

    fn url(&self) -> PoolUrl {
        let port = self.listener.local_addr().unwrap().port();
        format!("stratum2+tcp://127.0.0.1:{port}/{}", self.key.public())
            .parse()
            .unwrap()
    }

    async fn accept(&self) -> TcpStream {
        timeout(T, self.listener.accept())
            .await
            .expect("the client (re)connects")
            .unwrap()
            .0
    }

    /// Handshake, SetupConnection and an open standard channel, as a good pool would.
    async fn accept_channel(&self) -> (FrameReader, FrameWriter) {
        let tcp = self.accept().await;
        let (mut rd, mut wr) = responder_handshake(tcp, &self.key, T, T).await.unwrap();
        let f = timeout(T, rd.next()).await.unwrap().unwrap();
        assert_eq!(f.msg_type, MESSAGE_TYPE_SETUP_CONNECTION);
        wr.send(
            "SetupConnection.Success",
            SetupConnectionSuccess {
                used_version: 2,
                flags: 0,
            },
            MESSAGE_TYPE_SETUP_CONNECTION_SUCCESS,
            false,
        )
        .await
        .unwrap();
        let mut f = timeout(T, rd.next()).await.unwrap().unwrap();
        assert_eq!(f.msg_type, MESSAGE_TYPE_OPEN_STANDARD_MINING_CHANNEL);
        let req = f
            .decode("open", |m: OpenStandardMiningChannel| m.request_id)
            .unwrap();
        let target = [0xffu8; 32];
        wr.send(
            "open",
            OpenStandardMiningChannelSuccess {
                request_id: req,
                channel_id: 1,
                target: U256::from(&target),
                extranonce_prefix: B032::new(&[]).unwrap(),
                group_channel_id: 0,
            },
            MESSAGE_TYPE_OPEN_STANDARD_MINING_CHANNEL_SUCCESS,
            false,
        )
        .await
        .unwrap();
        (rd, wr)
    }
}

/// Runs a client against `bad`, lets `misbehave` spoil the first connection, and checks the
/// client logs `expected` and connects again.
async fn spoiled_connection_reconnects<F, Fut>(expected: &str, handshake: Duration, misbehave: F)
where
    F: FnOnce(BadPool) -> Fut,
    Fut: std::future::Future<Output = BadPool>,
{
    let bad = BadPool::new().await;
    let (logs, _guard) = Logs::capture();
    let mut cfg = client_config(vec![bad.url()]);
    cfg.handshake_timeout = handshake;
    let (client, _ev, task) = Client::spawn(cfg);
    let bad = misbehave(bad).await;
    // The client comes back: a fresh connection, handshake included.
    let _again = bad.accept().await;
    let text = logs.text();
    assert!(text.contains(expected), "expected {expected:?} in:\n{text}");
    assert!(text.contains("pool connection failed"), "{text}");
    client.shutdown();
    timeout(T, task).await.unwrap().unwrap();
}

#[tokio::test]
async fn a_connection_cut_in_the_middle_of_a_frame() {
    spoiled_connection_reconnects("in the middle of a frame", T, |bad| async move {
        let (rd, mut wr) = bad.accept_channel().await;
        let root = [1u8; 32];
        let bytes = wr
            .encode(
                "job",
                NewMiningJob {
                    channel_id: 1,
                    job_id: 1,
                    min_ntime: Sv2Option::new(None),
                    version: 0x2000_0000,
                    merkle_root: U256::from(&root),
                },
                MESSAGE_TYPE_NEW_MINING_JOB,
                true,
            )
            .unwrap();
        wr.write_raw(&bytes[..bytes.len() / 2]).await.unwrap();
        wr.shutdown().await;
        drop((rd, wr));
        bad
    })
    .await;
}

#[tokio::test]
async fn a_garbage_frame() {
    spoiled_connection_reconnects("does not decrypt or decode", T, |bad| async move {
        let (rd, mut wr) = bad.accept_channel().await;
        wr.write_raw(&[0xab; 200]).await.unwrap();
        // Kept open: the client must leave on its own.
        let _ = timeout(Duration::from_secs(2), std::future::pending::<()>()).await;
        drop((rd, wr));
        bad
    })
    .await;
}

#[tokio::test]
async fn an_oversized_frame() {
    spoiled_connection_reconnects("larger than", T, |bad| async move {
        let (rd, mut wr) = bad.accept_channel().await;
        let big = vec![0x55u8; 65_535];
        let msg = NewExtendedMiningJob {
            channel_id: 1,
            job_id: 1,
            min_ntime: Sv2Option::new(None),
            version: 0x2000_0000,
            version_rolling_allowed: true,
            merkle_path: Seq0255::try_from(Vec::<U256>::new()).unwrap(),
            coinbase_tx_prefix: B064K::new(&big).unwrap(),
            coinbase_tx_suffix: B064K::new(&big).unwrap(),
        };
        // The client stops reading once the frame is too big: the write may not finish.
        let bytes = wr
            .encode("big", msg, MESSAGE_TYPE_NEW_EXTENDED_MINING_JOB, true)
            .unwrap();
        assert!(bytes.len() > 128 * 1024);
        let _ = wr.write_raw(&bytes).await;
        let _ = timeout(Duration::from_secs(2), std::future::pending::<()>()).await;
        drop((rd, wr));
        bad
    })
    .await;
}

#[tokio::test]
async fn a_handshake_that_stops_halfway() {
    spoiled_connection_reconnects(
        "handshake did not finish within",
        Duration::from_secs(1),
        |bad| async move {
            let mut tcp = bad.accept().await;
            let mut first = [0u8; 64];
            tcp.read_exact(&mut first).await.unwrap();
            // Part of an answer, then silence.
            tcp.write_all(&[7u8; 100]).await.unwrap();
            let _ = timeout(Duration::from_secs(3), std::future::pending::<()>()).await;
            drop(tcp);
            bad
        },
    )
    .await;
}

#[tokio::test]
async fn a_stratum_v1_server_at_a_v2_address() {
    spoiled_connection_reconnects("Noise handshake failed", T, |bad| async move {
        let mut tcp = bad.accept().await;
        let line = common::notify_line("1", true) + "\n";
        tcp.write_all(line.as_bytes()).await.unwrap();
        let _ = timeout(Duration::from_secs(2), std::future::pending::<()>()).await;
        drop(tcp);
        bad
    })
    .await;
}

/// The pool's side of bad input: garbage on its V2 port ends that connection only.
#[tokio::test]
async fn the_pool_drops_a_garbage_connection_and_keeps_serving() {
    let pool = pool(1e-5).await;
    let url = pool.sv2_url().unwrap();
    let mut raw = TcpStream::connect((url.host.as_str(), url.port))
        .await
        .unwrap();
    raw.write_all(&[0x11; 64]).await.unwrap();
    let mut answer = vec![0u8; 4096];
    // The pool answers the (well-formed enough) first handshake message; then garbage.
    let _ = timeout(T, raw.read(&mut answer)).await.unwrap();
    raw.write_all(&[0xee; 500]).await.unwrap();
    let closed = timeout(T, async {
        loop {
            match raw.read(&mut answer).await {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
        }
    })
    .await;
    assert!(
        closed.is_ok(),
        "the pool closes a connection that sends garbage"
    );
    let (client, mut ev, task) = Client::spawn(client_config(vec![url]));
    let w = work(&mut ev).await;
    assert_eq!(
        client.submit(find_share(&w), w.epoch).await.result,
        SubmitResult::Accepted
    );
    client.shutdown();
    timeout(T, task).await.unwrap().unwrap();
    pool.shutdown().await;
}

/// The pool's extended channels, as a proxy (the reference translator) uses them, driven by
/// hand: the coinbase parts and merkle path rebuild the header of a V1-style job, the share
/// carries its extranonce2, and the pool's checks answer with SV2 error codes.
#[tokio::test]
async fn extended_channels_for_proxies() {
    use common_messages_sv2::{Protocol, SetupConnection};
    use mining_sv2::{
        CloseChannel, MESSAGE_TYPE_CLOSE_CHANNEL, MESSAGE_TYPE_MINING_SET_NEW_PREV_HASH,
        MESSAGE_TYPE_OPEN_EXTENDED_MINING_CHANNEL,
        MESSAGE_TYPE_OPEN_EXTENDED_MINING_CHANNEL_SUCCESS, MESSAGE_TYPE_OPEN_MINING_CHANNEL_ERROR,
        MESSAGE_TYPE_SUBMIT_SHARES_ERROR, MESSAGE_TYPE_SUBMIT_SHARES_EXTENDED,
        MESSAGE_TYPE_SUBMIT_SHARES_SUCCESS, OpenExtendedMiningChannel,
        OpenExtendedMiningChannelSuccess, SubmitSharesError, SubmitSharesExtended,
    };
    use stratum::work::{Extranonce, Job, PrevHashWire};

    let pool = pool(1e-5).await;
    let url = pool.sv2_url().unwrap();
    let Scheme::Sv2(key) = url.scheme else {
        panic!()
    };
    let tcp = TcpStream::connect((url.host.as_str(), url.port))
        .await
        .unwrap();
    let (mut rd, mut wr) = initiator_handshake(tcp, key, T, T).await.unwrap();
    let (host, vendor, empty) = ("127.0.0.1".to_string(), "test".to_string(), String::new());
    let setup = SetupConnection {
        protocol: Protocol::MiningProtocol,
        min_version: 2,
        max_version: 2,
        flags: 0b100,
        endpoint_host: host.as_str().try_into().unwrap(),
        endpoint_port: url.port,
        vendor: vendor.as_str().try_into().unwrap(),
        hardware_version: empty.as_str().try_into().unwrap(),
        firmware: empty.as_str().try_into().unwrap(),
        device_id: empty.as_str().try_into().unwrap(),
    };
    wr.send("setup", setup, MESSAGE_TYPE_SETUP_CONNECTION, false)
        .await
        .unwrap();
    let f = timeout(T, rd.next()).await.unwrap().unwrap();
    assert_eq!(f.msg_type, MESSAGE_TYPE_SETUP_CONNECTION_SUCCESS);

    let user = "proxy.1".to_string();
    let max = [0xffu8; 32];
    let open = |min: u16, req: u32| OpenExtendedMiningChannel {
        request_id: req,
        user_identity: user.as_str().try_into().unwrap(),
        nominal_hash_rate: 1e6,
        max_target: U256::from(&max),
        min_extranonce_size: min,
    };
    // More extranonce than the pool's extranonce2 has: refused, the connection goes on.
    wr.send(
        "open",
        open(9, 1),
        MESSAGE_TYPE_OPEN_EXTENDED_MINING_CHANNEL,
        false,
    )
    .await
    .unwrap();
    let f = timeout(T, rd.next()).await.unwrap().unwrap();
    assert_eq!(f.msg_type, MESSAGE_TYPE_OPEN_MINING_CHANNEL_ERROR);
    wr.send(
        "open",
        open(4, 2),
        MESSAGE_TYPE_OPEN_EXTENDED_MINING_CHANNEL,
        false,
    )
    .await
    .unwrap();
    let mut f = timeout(T, rd.next()).await.unwrap().unwrap();
    assert_eq!(
        f.msg_type,
        MESSAGE_TYPE_OPEN_EXTENDED_MINING_CHANNEL_SUCCESS
    );
    let (channel, size, prefix) = f
        .decode("success", |m: OpenExtendedMiningChannelSuccess| {
            (
                m.channel_id,
                m.extranonce_size,
                m.extranonce_prefix.as_bytes().to_vec(),
            )
        })
        .unwrap();
    assert_eq!(size, 4);
    let mut f = timeout(T, rd.next()).await.unwrap().unwrap();
    assert_eq!(f.msg_type, MESSAGE_TYPE_NEW_EXTENDED_MINING_JOB);
    let (job_id, version, path, c1, c2) = f
        .decode("job", |m: NewExtendedMiningJob| {
            (
                m.job_id,
                m.version,
                m.merkle_path
                    .into_inner()
                    .into_iter()
                    .map(|h| Hash256(h.to_array()))
                    .collect::<Vec<_>>(),
                m.coinbase_tx_prefix.as_bytes().to_vec(),
                m.coinbase_tx_suffix.as_bytes().to_vec(),
            )
        })
        .unwrap();
    let mut f = timeout(T, rd.next()).await.unwrap().unwrap();
    assert_eq!(f.msg_type, MESSAGE_TYPE_MINING_SET_NEW_PREV_HASH);
    let (prev, ntime, nbits) = f
        .decode("prev", |m: SetNewPrevHash| {
            (Hash256(m.prev_hash.to_array()), m.min_ntime, m.nbits)
        })
        .unwrap();
    let job = Job {
        job_id: job_id.to_string(),
        prevhash: PrevHashWire::from_header_order(&prev),
        coinb1: c1,
        coinb2: c2,
        merkle_branch: path,
        version,
        nbits,
        ntime,
        clean_jobs: true,
        merkle_root: None,
    };
    let en = Extranonce {
        extranonce1: prefix,
        extranonce2_size: 4,
    };
    let en2 = ExtraNonce2::new(0x0102_0304, 4).unwrap();
    let header = job.header(&en, &en2, ntime, version);
    let target = Difficulty::new(1e-5).unwrap().target();
    let nonce = (0..=u32::MAX)
        .find(|n| target.is_met_by(&header.with_nonce(*n).hash()))
        .unwrap();
    let submit = |seq: u32, version: u32, extranonce: &'static [u8]| SubmitSharesExtended {
        channel_id: channel,
        sequence_number: seq,
        job_id,
        nonce,
        ntime,
        version,
        extranonce: B032::new(extranonce).unwrap(),
    };
    const EN2: &[u8] = &[4, 3, 2, 1];
    wr.send(
        "share",
        submit(1, version, EN2),
        MESSAGE_TYPE_SUBMIT_SHARES_EXTENDED,
        true,
    )
    .await
    .unwrap();
    let f = timeout(T, rd.next()).await.unwrap().unwrap();
    assert_eq!(f.msg_type, MESSAGE_TYPE_SUBMIT_SHARES_SUCCESS);
    // Each broken share gets its own SV2 error code.
    let cases: [(u32, &'static [u8], &str); 3] = [
        (version, EN2, "duplicate-share"),
        (version, &[4, 3, 2], "bad-extranonce-size"),
        (
            version ^ 0x0000_0100,
            EN2,
            "invalid-non-rollable-version-bit",
        ),
    ];
    for (i, (v, en, code)) in cases.into_iter().enumerate() {
        let seq = 2 + i as u32;
        wr.send(
            "share",
            submit(seq, v, en),
            MESSAGE_TYPE_SUBMIT_SHARES_EXTENDED,
            true,
        )
        .await
        .unwrap();
        let mut f = timeout(T, rd.next()).await.unwrap().unwrap();
        assert_eq!(f.msg_type, MESSAGE_TYPE_SUBMIT_SHARES_ERROR);
        let (s, got) = f
            .decode("error", |m: SubmitSharesError| {
                (m.sequence_number, m.error_code.as_utf8_or_hex())
            })
            .unwrap();
        assert_eq!((s, got.as_str()), (seq, code));
    }
    let stats = pool.stats();
    assert_eq!(stats.worker("proxy.1").accepted, 1);
    assert_eq!(stats.total.rejected_total(), 3);

    // A proxy closes the channel of each downstream miner that leaves: the pool stops serving
    // it and frees its place, however many come and go (the cap is 256 open at once).
    let reason = "downstream gone".to_string();
    let close = |ch: u32| CloseChannel {
        channel_id: ch,
        reason_code: reason.as_str().try_into().unwrap(),
    };
    wr.send("close", close(channel), MESSAGE_TYPE_CLOSE_CHANNEL, false)
        .await
        .unwrap();
    wr.send(
        "share",
        submit(9, version, &[9, 9, 9, 9]),
        MESSAGE_TYPE_SUBMIT_SHARES_EXTENDED,
        true,
    )
    .await
    .unwrap();
    let code = loop {
        let mut f = timeout(T, rd.next()).await.unwrap().unwrap();
        if f.msg_type == MESSAGE_TYPE_SUBMIT_SHARES_ERROR {
            break f
                .decode("error", |m: SubmitSharesError| {
                    m.error_code.as_utf8_or_hex()
                })
                .unwrap();
        }
    };
    assert_eq!(code, "invalid-channel-id");
    for req in 100..400u32 {
        wr.send(
            "open",
            open(4, req),
            MESSAGE_TYPE_OPEN_EXTENDED_MINING_CHANNEL,
            false,
        )
        .await
        .unwrap();
        let ch = loop {
            let mut f = timeout(T, rd.next()).await.unwrap().unwrap();
            assert_ne!(
                f.msg_type, MESSAGE_TYPE_OPEN_MINING_CHANNEL_ERROR,
                "open #{req} refused"
            );
            if f.msg_type == MESSAGE_TYPE_OPEN_EXTENDED_MINING_CHANNEL_SUCCESS {
                break f
                    .decode("success", |m: OpenExtendedMiningChannelSuccess| {
                        m.channel_id
                    })
                    .unwrap();
            }
        };
        wr.send("close", close(ch), MESSAGE_TYPE_CLOSE_CHANNEL, false)
            .await
            .unwrap();
    }
    pool.shutdown().await;
}

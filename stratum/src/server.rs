//! The built-in Stratum V1 pool: a real server for tests, benches and `rigworker pool`.
//!
//! It makes its own work (`job`: random prevhash per block, a coinbase paying a configurable
//! script, synthetic merkle branches), rotates jobs on a timer, speaks the standard V1 dialect
//! that third-party miners such as cpuminer expect (subscribe, authorize, configure with
//! version rolling, extranonce.subscribe, suggest_difficulty, submit), optionally adjusts
//! difficulty per connection (`vardiff`), and validates every share itself (`session`):
//! it never trusts what a miner claims about a share, it rebuilds the header and hashes it.
//!
//! This file owns the configuration, the listener (TCP, TLS, WebSocket, WebSocket over TLS,
//! connection limit), the job timer, and the [`ServerHandle`] that tests and the CLI hold.
//! With [`ServerConfig::sv2`] a second listener speaks Stratum V2 (`sv2`: Noise with the
//! pool's authority key, standard and extended channels) on the same jobs, judged by the same
//! code as V1 shares and counted in the same [`ServerStats`].
//!
//! ```no_run
//! # async fn demo() -> Result<(), stratum::server::ServerError> {
//! use std::time::Duration;
//! use stratum::server::{Server, ServerConfig};
//!
//! let config = ServerConfig { listen: "127.0.0.1:0".parse().unwrap(), difficulty: 0.001, ..Default::default() };
//! let handle = Server::bind(config).await?.spawn();
//! println!("mine at {}", handle.url());
//! let stats = handle.wait_for(|s| s.total.accepted >= 3, Duration::from_secs(60)).await;
//! handle.shutdown().await;
//! # let _ = stats; Ok(()) }
//! ```

mod job;
mod proving;
mod session;
mod stats;
mod sv2;
mod vardiff;

use std::collections::HashSet;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rand::Rng;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, broadcast, watch};
use tokio::task::{JoinHandle, JoinSet};

use crate::timers::tick;
use tracing::{info, warn};

use crate::sv2::AuthorityKeypair;
use crate::transport::{PoolUrl, Scheme};
use crate::work::Difficulty;

pub use proving::{ProvingConfig, ProvingSetupError};
pub use stats::{RejectReason, ServerStats, WorkerStats};
pub use vardiff::VardiffConfig;

use job::{JobMaker, ServerJob};

/// A certificate chain (leaf first) and its private key, both DER. `Debug` hides the key.
#[derive(Clone)]
pub struct TlsIdentity {
    pub cert_chain_der: Vec<Vec<u8>>,
    /// PKCS#8, PKCS#1 or SEC1 DER.
    pub key_der: Vec<u8>,
}

impl TlsIdentity {
    /// Reads a PEM certificate chain and a PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub fn from_pem_files(
        cert: &std::path::Path,
        key: &std::path::Path,
    ) -> Result<TlsIdentity, ServerError> {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let chain = CertificateDer::pem_file_iter(cert)
            .and_then(|it| {
                it.map(|c| c.map(|c| c.to_vec()))
                    .collect::<Result<Vec<_>, _>>()
            })
            .map_err(|e| ServerError::Tls(format!("{}: {e}", cert.display())))?;
        if chain.is_empty() {
            return Err(ServerError::Tls(format!(
                "{}: no CERTIFICATE block",
                cert.display()
            )));
        }
        let key_der = PrivateKeyDer::from_pem_file(key)
            .map_err(|e| ServerError::Tls(format!("{}: {e}", key.display())))?
            .secret_der()
            .to_vec();
        Ok(TlsIdentity {
            cert_chain_der: chain,
            key_der,
        })
    }
}

impl fmt::Debug for TlsIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsIdentity")
            .field("certs", &self.cert_chain_der.len())
            .finish_non_exhaustive()
    }
}

/// What the listener speaks: the four transports the client supports.
#[derive(Clone, Debug, Default)]
pub enum ServerTransport {
    /// `stratum+tcp://`
    #[default]
    Tcp,
    /// `stratum+ssl://`
    Tls(TlsIdentity),
    /// `ws://` (any request path)
    Ws,
    /// `wss://` (any request path)
    Wss(TlsIdentity),
}

/// How the pool behaves. `Default` is a loopback pool on port 3333 at difficulty 1.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// Loopback by default: the pool is for local testing, not for the internet.
    pub listen: SocketAddr,
    pub transport: ServerTransport,
    /// Initial difficulty of every connection; fractions such as 0.001 are fine.
    pub difficulty: f64,
    /// Per-connection variable difficulty; `None` keeps `difficulty` (or what the miner
    /// suggests) for the whole connection.
    pub vardiff: Option<VardiffConfig>,
    /// A new job this often.
    pub job_interval: Duration,
    /// Every `clean_every`-th timer job is a new block (new prevhash, `clean_jobs = true`,
    /// older jobs become stale). 1 = every job; 0 = only [`ServerHandle::new_block`].
    pub clean_every: u32,
    /// scriptPubKey the coinbase pays.
    pub payout_script: Vec<u8>,
    /// Bytes of extranonce1 per connection (1..=16); unique per connection: a value held by
    /// a live connection, V2 channel, or a job sent with it is not handed out again, and when
    /// every value is held a new connection (or channel) is refused.
    pub extranonce1_size: usize,
    /// Bytes of extranonce2 the miner rolls (1..=8).
    pub extranonce2_size: usize,
    /// Version bits miners may roll (BIP310); 0 disables version rolling.
    pub version_mask: u32,
    /// Connections beyond this are closed at accept.
    pub max_connections: usize,
    /// A longer line closes the connection.
    pub max_line: usize,
    /// A share's ntime may be up to this far after the job's ntime (and never before it).
    pub ntime_window: Duration,
    /// A connection not subscribed and authorized this long after connecting is closed.
    /// (Afterwards a miner may stay quiet for as long as it likes: cpuminer sends nothing
    /// between shares. A dead peer then shows up as a failed or stuck job write.)
    pub login_timeout: Duration,
    /// Test option: before every real message write a malformed or unexpected line (bad
    /// JSON, unknown methods, bad params, responses to ids never sent, empty lines) so a
    /// client's robustness can be tested end to end.
    pub garbage_lines: bool,
    /// Proving jobs from a folder of circuits and witnesses (`docs/protocol.md`).
    pub proving: Option<ProvingConfig>,
    /// Worker names counted in [`ServerStats::workers`] at most; beyond, the least recently
    /// active name's counts are dropped (the totals keep them).
    pub max_worker_stats: usize,
    /// Shares a connection may have accepted on one job (remembered to refuse duplicates);
    /// beyond, its shares are stale until the next job. Across its jobs too: while they
    /// remember this many, the oldest job is forgotten (its shares turn stale). Bounds a miner
    /// at a very low difficulty, a long job interval, or shares spread over many jobs.
    pub max_shares_per_job: usize,
    /// Also serve Stratum V2 (`stratum2+tcp://`) on a second address.
    pub sv2: Option<Sv2Config>,
}

/// The Stratum V2 listener of the pool.
#[derive(Clone, Debug)]
pub struct Sv2Config {
    pub listen: SocketAddr,
    /// Signs the Noise certificates; its public half goes into the pool's URL.
    pub authority: AuthorityKeypair,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 3333)),
            transport: ServerTransport::Tcp,
            difficulty: 1.0,
            vardiff: None,
            job_interval: Duration::from_secs(30),
            clean_every: 20,
            // P2WPKH to an all-zero key hash: a valid script nobody can spend.
            payout_script: [0x00, 0x14].into_iter().chain([0u8; 20]).collect(),
            extranonce1_size: 4,
            extranonce2_size: 4,
            version_mask: 0x1fff_e000,
            max_connections: 1024,
            max_line: crate::connection::MAX_LINE,
            ntime_window: Duration::from_secs(7200),
            login_timeout: Duration::from_secs(60),
            garbage_lines: false,
            proving: None,
            max_worker_stats: 4096,
            max_shares_per_job: 1 << 18,
            sv2: None,
        }
    }
}

impl ServerConfig {
    fn validate(&self) -> Result<(), ServerError> {
        let bad = |s: String| Err(ServerError::Config(s));
        if !(self.difficulty.is_finite() && self.difficulty > 0.0) {
            return bad(format!(
                "difficulty {} must be a positive number",
                self.difficulty
            ));
        }
        if let Some(v) = &self.vardiff {
            let ok = |x: f64| x.is_finite() && x > 0.0;
            if !(ok(v.target_share_secs) && ok(v.min) && ok(v.max) && v.min <= v.max) {
                return bad(format!(
                    "vardiff {v:?}: need positive target and 0 < min <= max"
                ));
            }
        }
        if !(1..=16).contains(&self.extranonce1_size) {
            return bad(format!(
                "extranonce1_size {} is outside 1..=16",
                self.extranonce1_size
            ));
        }
        if !(1..=8).contains(&self.extranonce2_size) {
            return bad(format!(
                "extranonce2_size {} is outside 1..=8",
                self.extranonce2_size
            ));
        }
        if self.job_interval.is_zero() {
            return bad("job_interval must be positive".into());
        }
        if self.payout_script.len() > 10_000 {
            return bad("payout_script is longer than 10000 bytes".into());
        }
        if self.max_connections == 0 || self.max_line < 256 {
            return bad("max_connections must be positive and max_line at least 256".into());
        }
        // The accept loop's semaphore holds at most this many permits (it panics beyond).
        if self.max_connections > Semaphore::MAX_PERMITS {
            return bad(format!(
                "max_connections {} is above the most this pool can count ({})",
                self.max_connections,
                Semaphore::MAX_PERMITS
            ));
        }
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("invalid pool configuration: {0}")]
    Config(String),
    #[error("proving jobs: {0}")]
    Proving(#[from] ProvingSetupError),
    #[error("TLS identity: {0}")]
    Tls(String),
    #[error("listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// Sent from the handle to every session.
#[derive(Clone, Copy, Debug)]
enum Control {
    /// Give every extranonce-subscribed connection a new extranonce1.
    SetExtranonce,
    /// A new difficulty for every connection (V1 `mining.set_difficulty`, V2 `SetTarget`),
    /// then a fresh job so shares are judged by the one the miner works to.
    SetDifficulty(Difficulty),
}

/// An extranonce1 in use. The value is not handed out again while a lease on it lives: the
/// connection or channel holds one, and so does every job sent with it (shares on that job
/// are still judged under it).
pub(crate) struct Extranonce1Lease {
    value: Vec<u8>,
    in_use: Arc<Mutex<HashSet<Vec<u8>>>>,
}

impl Extranonce1Lease {
    pub(crate) fn value(&self) -> &[u8] {
        &self.value
    }
}

impl Drop for Extranonce1Lease {
    fn drop(&mut self) {
        self.in_use
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&self.value);
    }
}

/// State every session and the handle share.
struct Shared {
    config: ServerConfig,
    tls: Option<tokio_rustls::TlsAcceptor>,
    ws: bool,
    maker: Mutex<JobMaker>,
    /// The latest job; sessions watch it.
    jobs: watch::Sender<Arc<ServerJob>>,
    /// Source of every job id on the wire (timer jobs and per-connection re-sends), so an id
    /// the server never issued can be told from a stale one.
    next_job_id: AtomicU64,
    next_extranonce1: AtomicU64,
    /// Fills extranonce1 bytes beyond the 8 a counter covers.
    extranonce1_prefix: Vec<u8>,
    /// The extranonce1 values leased out ([`Extranonce1Lease`]).
    extranonce1_in_use: Arc<Mutex<HashSet<Vec<u8>>>>,
    stats: watch::Sender<ServerStats>,
    control: broadcast::Sender<Control>,
    shutdown: watch::Sender<bool>,
    /// Proving jobs on offer, when configured.
    proving: Option<proving::ProvingOffer>,
}

impl Shared {
    fn job_id(&self) -> String {
        format!("{:x}", self.next_job_id.fetch_add(1, Ordering::Relaxed))
    }

    /// Whether `id` looks like one this server has handed out.
    fn was_issued(&self, id: &str) -> bool {
        let issued = self.next_job_id.load(Ordering::Relaxed);
        id.len() <= 16
            && u64::from_str_radix(id, 16).is_ok_and(|n| n < issued)
            && !id.starts_with('+')
    }

    /// The next extranonce1 no connection or channel holds, leased until every holder of the
    /// lease is gone; None when every value of `extranonce1_size` is held. A counter alone
    /// wraps onto live values at small sizes (256 at one byte), and two connections with
    /// one extranonce1 would be credited twice for the same share.
    fn extranonce1(&self) -> Option<Arc<Extranonce1Lease>> {
        let size = self.config.extranonce1_size;
        let space = 1u128 << (8 * size.min(8));
        let mut in_use = self
            .extranonce1_in_use
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if in_use.len() as u128 >= space {
            return None;
        }
        // The counter walks the whole space, so a free value comes within `in_use.len() + 1`.
        loop {
            let n = self
                .next_extranonce1
                .fetch_add(1, Ordering::Relaxed)
                .to_be_bytes();
            let mut e = self.extranonce1_prefix.clone();
            e.extend_from_slice(&n[8 - size.min(8)..]);
            if in_use.insert(e.clone()) {
                return Some(Arc::new(Extranonce1Lease {
                    value: e,
                    in_use: self.extranonce1_in_use.clone(),
                }));
            }
        }
    }

    /// Makes a job and publishes it while still holding the maker, so jobs reach sessions in
    /// the order they were made.
    fn publish(&self, make: impl FnOnce(&mut JobMaker, String) -> Arc<ServerJob>) -> String {
        let mut maker = self.maker.lock().unwrap_or_else(PoisonError::into_inner);
        let job = make(&mut maker, self.job_id());
        let id = job.job.job_id.clone();
        let (clean, block) = (job.job.clean_jobs, job.block);
        self.jobs.send_replace(job);
        self.stats.send_modify(|s| {
            s.jobs += 1;
            s.blocks = block;
        });
        tracing::debug!(job = %id, clean, block, "new job");
        id
    }
}

/// A bound, not yet running pool.
pub struct Server {
    listener: TcpListener,
    sv2_listener: Option<TcpListener>,
    shared: Arc<Shared>,
}

impl Server {
    /// Validates `config`, loads the TLS identity if any, binds the listener and makes the
    /// first job. Nothing is accepted until [`Server::spawn`].
    pub async fn bind(config: ServerConfig) -> Result<Server, ServerError> {
        config.validate()?;
        let (tls, ws) = match &config.transport {
            ServerTransport::Tcp => (None, false),
            ServerTransport::Ws => (None, true),
            ServerTransport::Tls(id) => (Some(tls_acceptor(id)?), false),
            ServerTransport::Wss(id) => (Some(tls_acceptor(id)?), true),
        };
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| ServerError::Bind {
                    addr: config.listen,
                    source,
                })?;
        let sv2_listener = match &config.sv2 {
            Some(sv2) => {
                let bound = TcpListener::bind(sv2.listen).await;
                Some(bound.map_err(|source| ServerError::Bind {
                    addr: sv2.listen,
                    source,
                })?)
            }
            None => None,
        };
        let mut rng = rand::rng();
        let prefix = (0..config.extranonce1_size.saturating_sub(8))
            .map(|_| rng.random())
            .collect();
        let mut maker = JobMaker::new(
            config.payout_script.clone(),
            config.extranonce1_size + config.extranonce2_size,
            config.clean_every,
        );
        let first = maker.rotate("0".into());
        let proving = match &config.proving {
            Some(p) => {
                let addr = listener.local_addr().unwrap_or(config.listen);
                Some(proving::ProvingOffer::load(p.clone(), addr).await?)
            }
            None => None,
        };
        let (jobs, _) = watch::channel(first);
        let shared = Arc::new(Shared {
            tls,
            ws,
            maker: Mutex::new(maker),
            jobs,
            next_job_id: AtomicU64::new(1),
            // A random start so a restarted pool does not hand out the same extranonce1s.
            next_extranonce1: AtomicU64::new(rng.random()),
            extranonce1_prefix: prefix,
            extranonce1_in_use: Arc::default(),
            stats: watch::Sender::new(ServerStats {
                jobs: 1,
                blocks: 1,
                ..Default::default()
            }),
            control: broadcast::channel(16).0,
            shutdown: watch::Sender::new(false),
            proving,
            config,
        });
        Ok(Server {
            listener,
            sv2_listener,
            shared,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .unwrap_or(self.shared.config.listen)
    }

    /// Where the Stratum V2 listener is bound, when there is one.
    pub fn sv2_addr(&self) -> Option<SocketAddr> {
        self.sv2_listener.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// Starts accepting connections and rotating jobs on the current tokio runtime.
    pub fn spawn(self) -> ServerHandle {
        let local_addr = self.local_addr();
        let sv2_addr = self.sv2_addr();
        let shared = self.shared.clone();
        let task = tokio::spawn(serve(self.listener, self.sv2_listener, self.shared));
        info!(%local_addr, transport = transport_name(&shared.config.transport), "pool listening");
        if let Some(addr) = sv2_addr {
            info!(%addr, "pool listening for Stratum V2");
        }
        ServerHandle {
            shared,
            local_addr,
            sv2_addr,
            task: Some(task),
        }
    }
}

fn transport_name(t: &ServerTransport) -> &'static str {
    match t {
        ServerTransport::Tcp => "tcp",
        ServerTransport::Tls(_) => "tls",
        ServerTransport::Ws => "ws",
        ServerTransport::Wss(_) => "wss",
    }
}

fn tls_acceptor(id: &TlsIdentity) -> Result<tokio_rustls::TlsAcceptor, ServerError> {
    let err = |e: &dyn fmt::Display| ServerError::Tls(e.to_string());
    if id.cert_chain_der.is_empty() {
        return Err(ServerError::Tls("empty certificate chain".into()));
    }
    let chain = id
        .cert_chain_der
        .iter()
        .map(|c| CertificateDer::from(c.clone()))
        .collect();
    let key = PrivateKeyDer::try_from(id.key_der.clone()).map_err(|e| err(&e))?;
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| err(&e))?
    .with_no_client_auth()
    .with_single_cert(chain, key)
    .map_err(|e| err(&e))?;
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(config)))
}

/// A pool listening on all interfaces is reached over loopback.
fn reachable(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    }
}

/// The accept loop and the job timer, until shutdown.
async fn serve(listener: TcpListener, sv2_listener: Option<TcpListener>, shared: Arc<Shared>) {
    let limit = Arc::new(Semaphore::new(shared.config.max_connections));
    let mut sessions = JoinSet::new();
    let mut refused = 0u64;
    let mut shutdown = shared.shutdown.subscribe();
    let interval = shared.config.job_interval;
    // An interval too long to add to the clock means no timer jobs at all; tokio caps the
    // period itself, but the first deadline is ours to compute.
    let mut timer = tokio::time::Instant::now()
        .checked_add(interval)
        .map(|start| tokio::time::interval_at(start, interval));
    if let Some(t) = timer.as_mut() {
        t.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    }
    loop {
        tokio::select! {
            () = stopped(&mut shutdown) => break,
            () = tick(&mut timer) => {
                shared.publish(|m, id| m.rotate(id));
            }
            accepted = accept_either(&listener, sv2_listener.as_ref()) => match accepted {
                Ok((tcp, peer, v2)) => {
                    let Ok(permit) = limit.clone().try_acquire_owned() else {
                        refused += 1;
                        // At 1, 2, 4, 8, ...: a flood of connections must not flood the log.
                        if refused.is_power_of_two() {
                            warn!(%peer, max = shared.config.max_connections, refused_so_far = refused, "connection refused: too many connections");
                        }
                        shared.stats.send_modify(|s| s.connections_refused += 1);
                        drop(tcp);
                        continue;
                    };
                    shared.stats.send_modify(|s| {
                        s.connections += 1;
                        s.connections_total += 1;
                    });
                    if v2 {
                        sessions.spawn(sv2::run(shared.clone(), tcp, peer, permit));
                    } else {
                        sessions.spawn(session::run(shared.clone(), tcp, peer, permit));
                    }
                }
                Err(e) => {
                    // Usually out of file descriptors: back off instead of spinning.
                    warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            Some(_) = sessions.join_next(), if !sessions.is_empty() => {}
        }
    }
    drop(listener);
    // Sessions see the same shutdown signal and close their connections; give them a moment.
    let drain = async { while sessions.join_next().await.is_some() {} };
    if tokio::time::timeout(Duration::from_secs(5), drain)
        .await
        .is_err()
    {
        sessions.abort_all();
    }
    info!("pool stopped");
}

/// The next connection on either listener; `true` for the Stratum V2 one.
async fn accept_either(
    v1: &TcpListener,
    v2: Option<&TcpListener>,
) -> std::io::Result<(tokio::net::TcpStream, SocketAddr, bool)> {
    let v2 = async {
        match v2 {
            Some(l) => l.accept().await,
            None => std::future::pending().await,
        }
    };
    tokio::select! {
        r = v1.accept() => r.map(|(t, p)| (t, p, false)),
        r = v2 => r.map(|(t, p)| (t, p, true)),
    }
}

/// Resolves once shutdown was requested (or the handle is gone).
async fn stopped(rx: &mut watch::Receiver<bool>) {
    // The guard `wait_for` returns is not `Send`; it must not live in a select's output.
    let _ = rx.wait_for(|s| *s).await;
}

/// Controls a running pool. Dropping it stops the pool too.
pub struct ServerHandle {
    shared: Arc<Shared>,
    local_addr: SocketAddr,
    sv2_addr: Option<SocketAddr>,
    task: Option<JoinHandle<()>>,
}

impl ServerHandle {
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The URL a local miner connects to (`stratum+tcp://127.0.0.1:PORT`, `wss://…/`, …);
    /// a pool listening on all interfaces is reached over loopback.
    pub fn url(&self) -> PoolUrl {
        let scheme = match self.shared.config.transport {
            ServerTransport::Tcp => Scheme::Tcp,
            ServerTransport::Tls(_) => Scheme::Tls,
            ServerTransport::Ws => Scheme::Ws,
            ServerTransport::Wss(_) => Scheme::Wss,
        };
        PoolUrl {
            scheme,
            host: reachable(self.local_addr.ip()).to_string(),
            port: self.local_addr.port(),
            path: "/".into(),
        }
    }

    /// The Stratum V2 URL a local miner connects to
    /// (`stratum2+tcp://127.0.0.1:PORT/AUTHORITY_KEY`), when the pool serves V2.
    pub fn sv2_url(&self) -> Option<PoolUrl> {
        let addr = self.sv2_addr?;
        let key = self.shared.config.sv2.as_ref()?.authority.public();
        Some(PoolUrl {
            scheme: Scheme::Sv2(key),
            host: reachable(addr.ip()).to_string(),
            port: addr.port(),
            path: "/".into(),
        })
    }

    /// Changes every connection's difficulty now (V1: `mining.set_difficulty`, V2:
    /// `SetTarget`), each followed by a fresh job; shares for jobs sent before keep the
    /// difficulty they were sent with.
    pub fn set_difficulty(&self, difficulty: Difficulty) {
        let _ = self.shared.control.send(Control::SetDifficulty(difficulty));
    }

    pub fn stats(&self) -> ServerStats {
        self.shared.stats.borrow().clone()
    }

    /// A receiver that sees every change of the counters.
    pub fn subscribe_stats(&self) -> watch::Receiver<ServerStats> {
        self.shared.stats.subscribe()
    }

    /// Waits until `pred` holds for the counters; `None` if it did not within `timeout`.
    pub async fn wait_for(
        &self,
        mut pred: impl FnMut(&ServerStats) -> bool,
        timeout: Duration,
    ) -> Option<ServerStats> {
        let mut rx = self.shared.stats.subscribe();
        let r = tokio::time::timeout(timeout, rx.wait_for(|s| pred(s))).await;
        match r {
            Ok(Ok(stats)) => Some(stats.clone()),
            _ => None,
        }
    }

    /// Starts a new block now (new prevhash, `clean_jobs = true`); returns its job id.
    pub fn new_block(&self) -> String {
        self.shared.publish(|m, id| m.make(id, true))
    }

    /// Sends a new job of the current block now (`clean_jobs = false`); returns its job id.
    pub fn new_job(&self) -> String {
        self.shared.publish(|m, id| m.make(id, false))
    }

    /// Gives every connection that sent `mining.extranonce.subscribe` a new extranonce1
    /// (`mining.set_extranonce`, then a clean re-send of the current job). Shares for jobs
    /// sent before stay valid under the extranonce1 they were sent with.
    pub fn set_extranonce(&self) {
        let _ = self.shared.control.send(Control::SetExtranonce);
    }

    /// Stops accepting, closes every connection and waits for the pool's tasks to end.
    pub async fn shutdown(mut self) {
        self.shared.shutdown.send_replace(true);
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        self.shared.shutdown.send_replace(true);
    }
}

impl fmt::Debug for ServerHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerHandle")
            .field("local_addr", &self.local_addr)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_validation() {
        assert!(ServerConfig::default().validate().is_ok());
        let bad = [
            ServerConfig {
                difficulty: 0.0,
                ..Default::default()
            },
            ServerConfig {
                difficulty: f64::NAN,
                ..Default::default()
            },
            ServerConfig {
                extranonce2_size: 0,
                ..Default::default()
            },
            ServerConfig {
                extranonce2_size: 9,
                ..Default::default()
            },
            ServerConfig {
                extranonce1_size: 0,
                ..Default::default()
            },
            ServerConfig {
                extranonce1_size: 17,
                ..Default::default()
            },
            ServerConfig {
                job_interval: Duration::ZERO,
                ..Default::default()
            },
            ServerConfig {
                max_connections: 0,
                ..Default::default()
            },
            ServerConfig {
                max_connections: usize::MAX,
                ..Default::default()
            },
            ServerConfig {
                vardiff: Some(VardiffConfig {
                    min: 2.0,
                    max: 1.0,
                    ..Default::default()
                }),
                ..Default::default()
            },
        ];
        for c in bad {
            assert!(matches!(c.validate(), Err(ServerError::Config(_))), "{c:?}");
        }
    }

    #[tokio::test]
    async fn bad_tls_identity_is_an_error() {
        let id = TlsIdentity {
            cert_chain_der: vec![vec![0x30, 0]],
            key_der: vec![1, 2, 3],
        };
        let config = ServerConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            transport: ServerTransport::Tls(id.clone()),
            ..Default::default()
        };
        assert!(matches!(
            Server::bind(config).await,
            Err(ServerError::Tls(_))
        ));
        assert!(!format!("{id:?}").contains("[1, 2, 3]"));
    }

    #[tokio::test]
    async fn extranonce1_is_unique_and_sized() {
        for size in [1, 4, 8, 12, 16] {
            let config = ServerConfig {
                listen: "127.0.0.1:0".parse().unwrap(),
                extranonce1_size: size,
                ..Default::default()
            };
            let s = Server::bind(config).await.unwrap();
            let a = s.shared.extranonce1().unwrap();
            let b = s.shared.extranonce1().unwrap();
            assert_eq!((a.value().len(), b.value().len()), (size, size));
            assert_ne!(a.value(), b.value());
        }
    }

    /// At one byte the counter wraps after 256: values still held are skipped, and when all
    /// are held there is none to give.
    #[tokio::test]
    async fn extranonce1_values_held_are_not_handed_out_again() {
        let config = ServerConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            extranonce1_size: 1,
            ..Default::default()
        };
        let s = Server::bind(config).await.unwrap();
        let mut held: Vec<_> = (0..256).map(|_| s.shared.extranonce1().unwrap()).collect();
        let values: HashSet<Vec<u8>> = held.iter().map(|l| l.value().to_vec()).collect();
        assert_eq!(values.len(), 256);
        assert!(s.shared.extranonce1().is_none(), "all 256 are held");
        // One is let go (with every job that held it): that one, and only that one, is free.
        let freed = held.swap_remove(100).value().to_vec();
        let again = s.shared.extranonce1().unwrap();
        assert_eq!(again.value(), freed.as_slice());
        assert!(s.shared.extranonce1().is_none());
        drop(held);
        assert!(s.shared.extranonce1().is_some());
    }

    #[tokio::test]
    async fn url_of_a_pool_on_all_interfaces_is_loopback() {
        let config = ServerConfig {
            listen: "0.0.0.0:0".parse().unwrap(),
            transport: ServerTransport::Ws,
            ..Default::default()
        };
        let handle = Server::bind(config).await.unwrap().spawn();
        let url = handle.url();
        assert_eq!((url.scheme, url.host.as_str()), (Scheme::Ws, "127.0.0.1"));
        assert_eq!(url.port, handle.local_addr().port());
        handle.shutdown().await;
    }

    #[tokio::test]
    async fn job_ids_issued() {
        let s = Server::bind(ServerConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            ..Default::default()
        })
        .await
        .unwrap();
        let id = s.shared.job_id();
        assert!(s.shared.was_issued(&id));
        assert!(s.shared.was_issued("0"));
        assert!(!s.shared.was_issued("ff"));
        assert!(!s.shared.was_issued("zz"));
        assert!(!s.shared.was_issued("+1"));
        assert!(!s.shared.was_issued(""));
    }
}

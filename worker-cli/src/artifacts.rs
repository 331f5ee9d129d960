//! The worker's cache of proving keys fetched from pools (`docs/protocol.md`, "Artifacts over
//! HTTP"): files named by their SHA-256 in one folder, bounded in total size (least recently
//! used first out), written under a temporary name and renamed only once the hash matched, and
//! never fetched twice — concurrent requests for one key wait for the one download.
//!
//! The LRU order is the files' access time, set explicitly on each use; the modification time
//! is left alone, so the prover's key cache (which reloads a key whose file changed) keeps a
//! cached key loaded across jobs. [`ArtifactHosts`] says which hosts artifacts may come from.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use sha2::Digest;
use stratum::TlsOptions;
use stratum::http::{HttpError, HttpUrl, fetch};
use stratum::proving::ArtifactId;

/// How long one download may take (a large zkey over a slow link).
const FETCH_TIMEOUT: Duration = Duration::from_secs(900);
/// How often a running key download logs its progress.
const PROGRESS_EVERY: Duration = Duration::from_secs(10);
/// Writes of a download are gathered into pieces this large.
const WRITE_BUFFER_BYTES: usize = 1 << 20;
/// Witnesses are fetched into memory: bounded well below what a rig has.
pub const MAX_WITNESS_BYTES: u64 = 1 << 30;

#[derive(Debug, thiserror::Error)]
pub enum ArtifactError {
    #[error(transparent)]
    Http(#[from] HttpError),
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("download of {expected} has SHA-256 {got}: not the artifact the pool announced")]
    HashMismatch {
        expected: ArtifactId,
        got: ArtifactId,
    },
    #[error(
        "artifact host {host} is not the pool's host {pool_host}: not fetched (allow it with \
         --proving-artifact-hosts)"
    )]
    HostNotAllowed { host: String, pool_host: String },
    #[error("artifact {id} is {size} bytes, more than the cache's {limit}-byte bound")]
    TooLarge {
        id: ArtifactId,
        size: u64,
        limit: u64,
    },
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> ArtifactError + '_ {
    move |source| ArtifactError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// A size-bounded folder of artifacts named by hash.
pub struct ArtifactCache {
    dir: PathBuf,
    max_bytes: u64,
    tls: TlsOptions,
    /// One lock per artifact being fetched, so a second request waits instead of re-fetching;
    /// an entry lives only while some request holds or waits for it.
    fetching: Mutex<HashMap<ArtifactId, Arc<tokio::sync::Mutex<()>>>>,
    /// Files whose content this process has hashed (a cached file is checked once per run).
    verified: Mutex<HashSet<ArtifactId>>,
    downloads: AtomicU64,
}

impl ArtifactCache {
    /// `$XDG_CACHE_HOME/rigworker/zkeys`, else `~/.cache/rigworker/zkeys`, else a folder in
    /// the system's temporary directory.
    pub fn default_dir() -> PathBuf {
        if let Some(x) = std::env::var_os("XDG_CACHE_HOME").filter(|v| !v.is_empty()) {
            return PathBuf::from(x).join("rigworker/zkeys");
        }
        if let Some(h) = std::env::var_os("HOME").filter(|v| !v.is_empty()) {
            return PathBuf::from(h).join(".cache/rigworker/zkeys");
        }
        std::env::temp_dir().join("rigworker-zkeys")
    }

    pub fn new(
        dir: PathBuf,
        max_bytes: u64,
        tls: TlsOptions,
    ) -> Result<ArtifactCache, ArtifactError> {
        std::fs::create_dir_all(&dir).map_err(io_err(&dir))?;
        Ok(ArtifactCache {
            dir,
            max_bytes,
            tls,
            fetching: Mutex::new(HashMap::new()),
            verified: Mutex::new(HashSet::new()),
            downloads: AtomicU64::new(0),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Downloads made by this cache so far (a key already cached costs none).
    pub fn downloads(&self) -> u64 {
        self.downloads.load(Ordering::Relaxed)
    }

    fn path_of(&self, id: &ArtifactId) -> PathBuf {
        self.dir.join(format!("{id}.zkey"))
    }

    /// Artifacts with a request in progress (each has one entry in the lock map).
    pub fn requests_in_progress(&self) -> usize {
        self.fetching
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .len()
    }

    /// The cached file for `id`, downloading it from `url` first if needed.
    pub async fn get(
        &self,
        id: ArtifactId,
        url: &HttpUrl,
        size_hint: Option<u64>,
    ) -> Result<PathBuf, ArtifactError> {
        if let Some(size) = size_hint.filter(|s| *s > self.max_bytes) {
            return Err(ArtifactError::TooLarge {
                id,
                size,
                limit: self.max_bytes,
            });
        }
        // Removes the map entry when the last request for this artifact ends, however it ends
        // (an error, or a caller that gave up waiting: a job past its deadline).
        let entry = LockEntry {
            map: &self.fetching,
            id,
            lock: {
                let mut m = self.fetching.lock().unwrap_or_else(|p| p.into_inner());
                m.entry(id).or_default().clone()
            },
        };
        let _guard = entry.lock.lock().await;
        let path = self.path_of(&id);
        if tokio::fs::try_exists(&path).await.unwrap_or(false) {
            if self.check_cached(&id, &path).await? {
                blocking(&path, mark_used).await;
                return Ok(path);
            }
            tracing::warn!(%id, "cached proving key does not match its hash: fetching it again");
            let _ = tokio::fs::remove_file(&path).await;
        }
        self.download(id, url, &path, size_hint).await?;
        blocking(&path, mark_used).await;
        let (dir, max_bytes) = (self.dir.clone(), self.max_bytes);
        let removed = tokio::task::spawn_blocking(move || evict(&dir, max_bytes, &id))
            .await
            .unwrap_or_default();
        let mut verified = self.verified.lock().unwrap_or_else(|p| p.into_inner());
        for id in removed {
            verified.remove(&id);
        }
        Ok(path)
    }

    /// Hashes a cached file once per process.
    async fn check_cached(&self, id: &ArtifactId, path: &Path) -> Result<bool, ArtifactError> {
        if self
            .verified
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(id)
        {
            return Ok(true);
        }
        let p = path.to_path_buf();
        let got = tokio::task::spawn_blocking(move || hash_file(&p))
            .await
            .map_err(|e| ArtifactError::Io {
                path: path.to_path_buf(),
                source: std::io::Error::other(e.to_string()),
            })?
            .map_err(io_err(path))?;
        let ok = got == *id;
        if ok {
            self.verified
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(*id);
        }
        Ok(ok)
    }

    async fn download(
        &self,
        id: ArtifactId,
        url: &HttpUrl,
        path: &Path,
        size_hint: Option<u64>,
    ) -> Result<(), ArtifactError> {
        let tmp = self.dir.join(format!(
            "{id}.part-{}-{}",
            std::process::id(),
            self.downloads.load(Ordering::Relaxed)
        ));
        let file = tokio::fs::File::create(&tmp)
            .await
            .map_err(io_err(&tmp))?
            .into_std()
            .await;
        // A download abandoned half-way (its job's deadline passed) leaves no partial file.
        let mut part = PartFile(Some(tmp.clone()));
        // Large buffered writes: the body arrives in small pieces on the runtime's threads,
        // which must not stall on one small write each.
        let mut writer = std::io::BufWriter::with_capacity(WRITE_BUFFER_BYTES, file);
        let mut hasher = sha2::Sha256::new();
        self.downloads.fetch_add(1, Ordering::Relaxed);
        let mut progress = DownloadProgress::start(id, url, size_hint);
        let mut sink = |b: &[u8]| {
            hasher.update(b);
            progress.add(b.len());
            writer.write_all(b)
        };
        let n = fetch(url, &self.tls, self.max_bytes, FETCH_TIMEOUT, &mut sink).await?;
        let got = ArtifactId(hasher.finalize().into());
        if got != id {
            return Err(ArtifactError::HashMismatch { expected: id, got });
        }
        // Flush, fsync and rename on a blocking thread: an fsync of a large key takes long.
        let (from, to) = (tmp.clone(), path.to_path_buf());
        tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            let file = writer.into_inner().map_err(|e| e.into_error())?;
            file.sync_all()?;
            std::fs::rename(&from, &to)
        })
        .await
        .map_err(|e| std::io::Error::other(e.to_string()))
        .and_then(|r| r)
        .map_err(io_err(&tmp))?;
        part.0 = None;
        self.verified
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(id);
        tracing::info!(%id, bytes = n, secs = progress.started.elapsed().as_secs_f64(), "fetched proving key");
        Ok(())
    }

    /// Downloads a witness into memory and checks its hash (witnesses are not cached). At
    /// most `limit` bytes (what the circuit's witness can take), the pool's size hint, and
    /// [`MAX_WITNESS_BYTES`].
    pub async fn fetch_witness(
        &self,
        url: &HttpUrl,
        sha256: ArtifactId,
        size_hint: Option<u64>,
        limit: u64,
    ) -> Result<Vec<u8>, ArtifactError> {
        let limit = size_hint
            .unwrap_or(MAX_WITNESS_BYTES)
            .min(limit)
            .min(MAX_WITNESS_BYTES);
        let mut out = Vec::new();
        let mut sink = |b: &[u8]| {
            out.extend_from_slice(b);
            Ok(())
        };
        fetch(url, &self.tls, limit, FETCH_TIMEOUT, &mut sink).await?;
        let got = ArtifactId::of(&out);
        if got != sha256 {
            return Err(ArtifactError::HashMismatch {
                expected: sha256,
                got,
            });
        }
        Ok(out)
    }
}

/// Removes least recently used keys from `dir` until it fits `max_bytes`; `keep` stays.
/// Returns the keys removed. Blocking: file system calls only.
fn evict(dir: &Path, max_bytes: u64, keep: &ArtifactId) -> Vec<ArtifactId> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<(SystemTime, u64, PathBuf)> = rd
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".zkey"))
        .filter_map(|e| {
            let m = e.metadata().ok()?;
            let used = m.accessed().or_else(|_| m.modified()).ok()?;
            Some((used, m.len(), e.path()))
        })
        .collect();
    let mut total: u64 = files.iter().map(|f| f.1).sum();
    files.sort();
    let keep_name = format!("{keep}.zkey");
    let mut removed = Vec::new();
    for (_, len, path) in files {
        if total <= max_bytes {
            break;
        }
        if path
            .file_name()
            .is_some_and(|n| n.to_string_lossy() == keep_name)
        {
            continue;
        }
        if std::fs::remove_file(&path).is_ok() {
            tracing::info!(path = %path.display(), "proving-key cache full: removed the least recently used key");
            total -= len;
            if let Some(id) = path
                .file_stem()
                .and_then(|s| ArtifactId::from_hex(&s.to_string_lossy()))
            {
                removed.push(id);
            }
        }
    }
    removed
}

/// Runs a small blocking file operation on `path` off the runtime's threads.
async fn blocking(path: &Path, f: fn(&Path)) {
    let p = path.to_path_buf();
    let _ = tokio::task::spawn_blocking(move || f(&p)).await;
}

/// The log lines of one key download: where from and how big at the start, then how far
/// every [`PROGRESS_EVERY`], so an operator watching `mine` sees why no proof comes yet.
struct DownloadProgress {
    id: ArtifactId,
    started: Instant,
    last: Instant,
    bytes: u64,
    size: Option<u64>,
}

impl DownloadProgress {
    fn start(id: ArtifactId, url: &HttpUrl, size: Option<u64>) -> DownloadProgress {
        let source = stratum::untrusted::escape(&url.to_string());
        match size {
            Some(s) => tracing::info!(%id, %source, mib = mib(s), "downloading proving key"),
            None => tracing::info!(%id, %source, "downloading proving key (size not announced)"),
        }
        let now = Instant::now();
        DownloadProgress {
            id,
            started: now,
            last: now,
            bytes: 0,
            size,
        }
    }

    fn add(&mut self, n: usize) {
        self.bytes += n as u64;
        if self.last.elapsed() < PROGRESS_EVERY {
            return;
        }
        self.last = Instant::now();
        let secs = self.started.elapsed().as_secs_f64().max(1e-3);
        let rate = mib(self.bytes) / secs;
        let id = self.id;
        match self.size {
            Some(s) => {
                tracing::info!(%id, mib = mib(self.bytes), of_mib = mib(s), mib_per_s = rate, "proving key download")
            }
            None => {
                tracing::info!(%id, mib = mib(self.bytes), mib_per_s = rate, "proving key download")
            }
        }
    }
}

fn mib(bytes: u64) -> f64 {
    (bytes as f64 / (1 << 20) as f64 * 10.0).round() / 10.0
}

fn hash_file(path: &Path) -> std::io::Result<ArtifactId> {
    use std::io::Read;
    let mut f = std::fs::File::open(path)?;
    let mut h = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(ArtifactId(h.finalize().into()))
}

/// Marks a file as just used, for the LRU order: its access time only. (Setting the
/// modification time made the prover's key cache see a changed file and reload the key on
/// every job.)
fn mark_used(path: &Path) {
    if let Ok(f) = std::fs::File::open(path) {
        let _ = f.set_times(std::fs::FileTimes::new().set_accessed(SystemTime::now()));
    }
}

/// One request's share of the per-artifact lock map; the last one out removes the entry.
struct LockEntry<'a> {
    map: &'a Mutex<HashMap<ArtifactId, Arc<tokio::sync::Mutex<()>>>>,
    id: ArtifactId,
    lock: Arc<tokio::sync::Mutex<()>>,
}

impl Drop for LockEntry<'_> {
    fn drop(&mut self) {
        let mut m = self.map.lock().unwrap_or_else(|p| p.into_inner());
        // Clones are only made under the map's lock: two references (the map's and ours)
        // mean nobody else holds or waits for this artifact.
        if m.get(&self.id).is_some_and(|l| Arc::ptr_eq(l, &self.lock))
            && Arc::strong_count(&self.lock) == 2
        {
            m.remove(&self.id);
        }
    }
}

/// A partial download's file, removed on drop unless it was renamed into place.
struct PartFile(Option<PathBuf>);

impl Drop for PartFile {
    fn drop(&mut self) {
        if let Some(p) = self.0.take() {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// The hosts artifacts may be fetched from: the pool's own (the host the worker connected
/// to) and those the operator allowed with `--proving-artifact-hosts` (`*`: any).
#[derive(Clone, Debug, Default)]
pub struct ArtifactHosts {
    extra: Vec<String>,
    any: bool,
}

impl ArtifactHosts {
    pub fn new(allowed: &[String]) -> ArtifactHosts {
        let extra: Vec<String> = allowed
            .iter()
            .map(|h| normalize_host(h))
            .filter(|h| !h.is_empty())
            .collect();
        ArtifactHosts {
            any: extra.iter().any(|h| h == "*"),
            extra,
        }
    }

    /// Refuses `url` unless its host is the pool's or an allowed one.
    pub fn check(&self, url: &HttpUrl, pool_host: &str) -> Result<(), ArtifactError> {
        let host = normalize_host(&url.host);
        if self.any || same_host(&host, &normalize_host(pool_host)) {
            return Ok(());
        }
        if self.extra.iter().any(|h| same_host(&host, h)) {
            return Ok(());
        }
        Err(ArtifactError::HostNotAllowed {
            host: url.host.clone(),
            pool_host: pool_host.to_string(),
        })
    }
}

fn normalize_host(h: &str) -> String {
    let h = h.trim();
    let h = h
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(h);
    h.trim_end_matches('.').to_ascii_lowercase()
}

fn same_host(a: &str, b: &str) -> bool {
    match (a.parse::<std::net::IpAddr>(), b.parse::<std::net::IpAddr>()) {
        (Ok(x), Ok(y)) => x == y,
        _ => a == b,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use stratum::http::{ArtifactStore, serve_artifacts};

    fn tmpdir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("rigworker-cache-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[tokio::test]
    async fn fetches_once_checks_hashes_and_evicts_oldest() {
        let src = tmpdir("src");
        let store = Arc::new(ArtifactStore::new());
        let mut ids = Vec::new();
        for i in 0..3u8 {
            let data = vec![i; 1000];
            let p = src.join(format!("{i}.zkey"));
            std::fs::write(&p, &data).unwrap();
            let id = ArtifactId::of(&data);
            store.insert(id, p);
            ids.push(id);
        }
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        tokio::spawn(serve_artifacts(l, store));
        let url = |id: &ArtifactId| {
            HttpUrl::parse(
                &format!("http://127.0.0.1:{port}{}", ArtifactStore::path_of(id)),
                "127.0.0.1",
            )
            .unwrap()
        };
        let dir = tmpdir("cache");
        let cache = Arc::new(ArtifactCache::new(dir.clone(), 2500, TlsOptions::default()).unwrap());
        // Two concurrent requests for one key make one download.
        let u0 = url(&ids[0]);
        let (a, b) = tokio::join!(
            cache.get(ids[0], &u0, Some(1000)),
            cache.get(ids[0], &u0, None)
        );
        assert_eq!(a.unwrap(), b.unwrap());
        assert_eq!(cache.downloads(), 1);
        // A hit leaves the file's modification time alone (the prover's key cache takes a new
        // one for a changed file and would load the key again).
        let mtime = |p: &Path| std::fs::metadata(p).unwrap().modified().unwrap();
        let p0 = dir.join(format!("{}.zkey", ids[0]));
        let before = mtime(&p0);
        std::thread::sleep(Duration::from_millis(20));
        cache.get(ids[0], &url(&ids[0]), None).await.unwrap();
        assert_eq!(cache.downloads(), 1);
        assert_eq!(mtime(&p0), before, "a cache hit changed the file's mtime");
        // A URL that serves other bytes than the announced hash is rejected, nothing kept.
        let e = cache.get(ids[1], &url(&ids[2]), None).await;
        assert!(
            matches!(e, Err(ArtifactError::HashMismatch { .. })),
            "{e:?}"
        );
        assert!(!dir.join(format!("{}.zkey", ids[1])).exists());
        // Too large for the bound: refused before any download.
        let e = cache.get(ids[1], &url(&ids[1]), Some(10_000)).await;
        assert!(matches!(e, Err(ArtifactError::TooLarge { .. })), "{e:?}");
        // Three keys of 1000 bytes in a 2500-byte cache: the least recently used goes.
        std::thread::sleep(Duration::from_millis(20));
        cache.get(ids[1], &url(&ids[1]), None).await.unwrap();
        std::thread::sleep(Duration::from_millis(20));
        cache.get(ids[2], &url(&ids[2]), None).await.unwrap();
        assert!(!dir.join(format!("{}.zkey", ids[0])).exists());
        assert!(dir.join(format!("{}.zkey", ids[1])).exists());
        assert!(dir.join(format!("{}.zkey", ids[2])).exists());
        // A corrupted cached file is noticed by a new process (a new cache) and fetched again.
        std::fs::write(dir.join(format!("{}.zkey", ids[2])), b"bad").unwrap();
        let fresh = ArtifactCache::new(dir.clone(), 2500, TlsOptions::default()).unwrap();
        let p = fresh.get(ids[2], &url(&ids[2]), None).await.unwrap();
        assert_eq!(std::fs::read(p).unwrap(), vec![2u8; 1000]);
        assert_eq!(fresh.downloads(), 1);
        // The per-artifact locks went with their requests, failed ones included.
        assert_eq!(cache.requests_in_progress(), 0);
        assert_eq!(fresh.requests_in_progress(), 0);
        let _ = std::fs::remove_dir_all(&src);
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A server that answers the head of a large body and then nothing.
    async fn stalling_server() -> (u16, Arc<AtomicU64>) {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        let conns = Arc::new(AtomicU64::new(0));
        let c = conns.clone();
        tokio::spawn(async move {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            while let Ok((mut s, _)) = l.accept().await {
                c.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut buf = [0u8; 4096];
                    let _ = s.read(&mut buf).await;
                    let _ = s
                        .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\nabc")
                        .await;
                    // Hold the connection until the worker closes it.
                    while let Ok(n) = s.read(&mut buf).await {
                        if n == 0 {
                            break;
                        }
                    }
                });
            }
        });
        (port, conns)
    }

    #[tokio::test]
    async fn an_abandoned_download_leaves_no_partial_file_and_no_lock() {
        let (port, conns) = stalling_server().await;
        let dir = tmpdir("abandon");
        let cache = ArtifactCache::new(dir.clone(), 1 << 30, TlsOptions::default()).unwrap();
        let id = ArtifactId([9; 32]);
        let url = HttpUrl::parse(&format!("http://127.0.0.1:{port}/a"), "127.0.0.1").unwrap();
        // The caller gives up (as a job does when its deadline passes) once the download runs.
        let got = tokio::time::timeout(Duration::from_secs(30), async {
            tokio::select! {
                r = cache.get(id, &url, None) => Some(r),
                _ = async {
                    while conns.load(Ordering::SeqCst) == 0
                        || std::fs::read_dir(&dir).unwrap().count() == 0
                    {
                        tokio::time::sleep(Duration::from_millis(10)).await;
                    }
                } => None,
            }
        })
        .await
        .expect("the download started");
        assert!(got.is_none(), "the stalled download finished: {got:?}");
        let left: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert!(left.is_empty(), "left behind: {left:?}");
        assert_eq!(cache.requests_in_progress(), 0);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn artifacts_come_from_the_pool_s_host_or_an_allowed_one() {
        let url = |u: &str| HttpUrl::parse(u, "pool.example").unwrap();
        let none = ArtifactHosts::new(&[]);
        assert!(
            none.check(&url("http://pool.example:81/a"), "pool.example")
                .is_ok()
        );
        assert!(
            none.check(&url("http://POOL.example.:81/a"), "pool.example")
                .is_ok()
        );
        // An unspecified host means the pool's own.
        assert!(
            none.check(&url("http://0.0.0.0:81/a"), "pool.example")
                .is_ok()
        );
        assert!(
            none.check(&url("http://[::1]:81/a"), "0:0:0:0:0:0:0:1")
                .is_ok()
        );
        for bad in [
            "http://192.168.1.1/admin",
            "http://127.0.0.1:81/a",
            "https://cdn.example/a",
            "http://pool.example.evil/a",
        ] {
            let e = none.check(&url(bad), "pool.example").unwrap_err();
            assert!(matches!(e, ArtifactError::HostNotAllowed { .. }), "{bad}");
            assert!(e.to_string().contains("--proving-artifact-hosts"), "{e}");
        }
        let some = ArtifactHosts::new(&["cdn.example".into(), "[::1]".into()]);
        assert!(
            some.check(&url("https://CDN.example/a"), "pool.example")
                .is_ok()
        );
        assert!(some.check(&url("http://[::1]:9/a"), "pool.example").is_ok());
        assert!(
            some.check(&url("http://10.0.0.1/a"), "pool.example")
                .is_err()
        );
        let any = ArtifactHosts::new(&["*".into()]);
        assert!(any.check(&url("http://10.0.0.1/a"), "pool.example").is_ok());
    }
}

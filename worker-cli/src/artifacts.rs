//! The worker's cache of proving keys fetched from pools (`docs/protocol.md`, "Artifacts over
//! HTTP"): files named by their SHA-256 in one folder, bounded in total size (least recently
//! used first out), written under a temporary name and renamed only once the hash matched, and
//! never fetched twice — concurrent requests for one key wait for the one download.

use std::collections::{HashMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use sha2::Digest;
use stratum::TlsOptions;
use stratum::http::{HttpError, HttpUrl, fetch};
use stratum::proving::ArtifactId;

/// How long one download may take (a large zkey over a slow link).
const FETCH_TIMEOUT: Duration = Duration::from_secs(900);
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
    /// One lock per artifact being fetched, so a second request waits instead of re-fetching.
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
        let lock = {
            let mut m = self.fetching.lock().unwrap_or_else(|p| p.into_inner());
            m.entry(id).or_default().clone()
        };
        let _guard = lock.lock().await;
        let path = self.path_of(&id);
        if path.exists() {
            if self.check_cached(&id, &path).await? {
                touch(&path);
                return Ok(path);
            }
            tracing::warn!(%id, "cached proving key does not match its hash: fetching it again");
            let _ = std::fs::remove_file(&path);
        }
        self.download(id, url, &path).await?;
        self.evict(&id);
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
    ) -> Result<(), ArtifactError> {
        let tmp = self.dir.join(format!(
            "{id}.part-{}-{}",
            std::process::id(),
            self.downloads.load(Ordering::Relaxed)
        ));
        let mut file = std::fs::File::create(&tmp).map_err(io_err(&tmp))?;
        let mut hasher = sha2::Sha256::new();
        self.downloads.fetch_add(1, Ordering::Relaxed);
        let started = std::time::Instant::now();
        let mut sink = |b: &[u8]| {
            hasher.update(b);
            file.write_all(b)
        };
        let r = fetch(url, &self.tls, self.max_bytes, FETCH_TIMEOUT, &mut sink).await;
        let result = r.map_err(ArtifactError::from).and_then(|n| {
            file.sync_all().map_err(io_err(&tmp))?;
            let got = ArtifactId(hasher.finalize().into());
            if got != id {
                return Err(ArtifactError::HashMismatch { expected: id, got });
            }
            Ok(n)
        });
        match result {
            Ok(n) => {
                std::fs::rename(&tmp, path).map_err(io_err(path))?;
                self.verified
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(id);
                tracing::info!(%id, bytes = n, secs = started.elapsed().as_secs_f64(), "fetched proving key");
                Ok(())
            }
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                Err(e)
            }
        }
    }

    /// Removes least recently used keys until the folder fits its bound; `keep` stays.
    fn evict(&self, keep: &ArtifactId) {
        let Ok(rd) = std::fs::read_dir(&self.dir) else {
            return;
        };
        let mut files: Vec<(SystemTime, u64, PathBuf)> = rd
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().ends_with(".zkey"))
            .filter_map(|e| {
                let m = e.metadata().ok()?;
                Some((m.modified().ok()?, m.len(), e.path()))
            })
            .collect();
        let mut total: u64 = files.iter().map(|f| f.1).sum();
        files.sort();
        let keep_name = format!("{keep}.zkey");
        for (_, len, path) in files {
            if total <= self.max_bytes {
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
            }
        }
    }

    /// Downloads a witness into memory and checks its hash (witnesses are not cached).
    pub async fn fetch_witness(
        &self,
        url: &HttpUrl,
        sha256: ArtifactId,
        size_hint: Option<u64>,
    ) -> Result<Vec<u8>, ArtifactError> {
        let limit = size_hint
            .unwrap_or(MAX_WITNESS_BYTES)
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

/// Marks a file as just used, for the LRU order.
fn touch(path: &Path) {
    if let Ok(f) = std::fs::File::options().append(true).open(path) {
        let _ = f.set_modified(SystemTime::now());
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
        cache.get(ids[0], &url(&ids[0]), None).await.unwrap();
        assert_eq!(cache.downloads(), 1);
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
        let _ = std::fs::remove_dir_all(&src);
        let _ = std::fs::remove_dir_all(&dir);
    }
}

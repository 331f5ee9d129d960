//! Artifact transfer for proving jobs (`docs/protocol.md`): the pool's side serves files by
//! their SHA-256 at `GET /artifacts/<hex>`, the worker's side downloads a URL with a hard size
//! bound. Plain HTTP/1.1 with one request per connection: all a pool needs to hand out proving
//! keys and witnesses.
//!
//! The fetcher opens the connection itself (URL, TLS with the pool's pin) and lets hyper's
//! HTTP/1 client read the response (hyper is in the binary already, through the API server),
//! so framing follows the RFC rather than a hand-written parser. It streams the body to a
//! caller's sink (so a 100 MB zkey never sits in memory twice) and stops at the size bound
//! instead of trusting the server. Redirects are not followed.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use http_body_util::{BodyExt, Empty};
use hyper::body::{Body, Bytes};
use hyper::client::conn::http1;
use hyper::{Request, header};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

use crate::proving::ArtifactId;
use crate::transport::{TlsOptions, client_tls_config};

/// The longest request or response head either side reads.
const MAX_HEAD: usize = 16 * 1024;
/// The longest a download may go without receiving anything (the response head, then each
/// piece of the body): a stalled server frees the prover long before the whole-exchange bound.
pub const STALL_TIMEOUT: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    #[error("bad artifact URL {0:?} (expected http://host[:port]/path or https://...)")]
    BadUrl(String),
    #[error("{url}: {source}")]
    Io { url: String, source: std::io::Error },
    #[error("{url}: timed out")]
    Timeout { url: String },
    #[error("{url}: nothing received for {} s", .after.as_secs())]
    Stalled { url: String, after: Duration },
    #[error("{url}: TLS: {reason}")]
    Tls { url: String, reason: String },
    #[error("{url}: malformed HTTP response: {reason}")]
    Malformed { url: String, reason: String },
    #[error("{url}: HTTP status {status}")]
    Status { url: String, status: u16 },
    #[error("{url}: larger than the {limit}-byte limit")]
    TooLarge { url: String, limit: u64 },
    #[error("{url}: the sink refused the data: {source}")]
    Sink { url: String, source: std::io::Error },
}

/// A parsed `http://` or `https://` URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpUrl {
    pub tls: bool,
    pub host: String,
    pub port: u16,
    /// Starts with `/`.
    pub path: String,
}

impl HttpUrl {
    /// Parses `url`; a host that is empty or unspecified (`0.0.0.0`, `[::]`) means
    /// `default_host` (the pool's own host), so a pool listening on every address can still
    /// hand out usable links.
    pub fn parse(url: &str, default_host: &str) -> Result<HttpUrl, HttpError> {
        let bad = || HttpError::BadUrl(url.to_string());
        let (tls, rest) = if let Some(r) = url.strip_prefix("http://") {
            (false, r)
        } else if let Some(r) = url.strip_prefix("https://") {
            (true, r)
        } else {
            return Err(bad());
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        if authority.contains('@') || path.contains(char::is_whitespace) {
            return Err(bad());
        }
        let (host, port) = if let Some(r) = authority.strip_prefix('[') {
            let (h, after) = r.split_once(']').ok_or_else(bad)?;
            (h, after.strip_prefix(':'))
        } else {
            match authority.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            }
        };
        let port = match port {
            Some(p) => p.parse::<u16>().ok().filter(|p| *p != 0).ok_or_else(bad)?,
            None if tls => 443,
            None => 80,
        };
        let host = if host.is_empty() || host == "0.0.0.0" || host == "::" {
            default_host.to_string()
        } else {
            host.to_string()
        };
        if host.is_empty() {
            return Err(bad());
        }
        Ok(HttpUrl {
            tls,
            host,
            port,
            path: path.to_string(),
        })
    }
}

impl std::fmt::Display for HttpUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        let scheme = if self.tls { "https" } else { "http" };
        write!(f, "{scheme}://{host}:{}{}", self.port, self.path)
    }
}

trait Stream: AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Stream for T {}

/// Downloads `url` into `sink`, at most `limit` bytes, the whole exchange within `timeout`
/// and never [`STALL_TIMEOUT`] without receiving anything. Returns the number of body bytes.
pub async fn fetch(
    url: &HttpUrl,
    tls: &TlsOptions,
    limit: u64,
    timeout: Duration,
    sink: &mut (dyn FnMut(&[u8]) -> std::io::Result<()> + Send),
) -> Result<u64, HttpError> {
    fetch_with_stall(url, tls, limit, timeout, STALL_TIMEOUT, sink).await
}

/// [`fetch`] with its own bound on the time without receiving anything.
pub async fn fetch_with_stall(
    url: &HttpUrl,
    tls: &TlsOptions,
    limit: u64,
    timeout: Duration,
    stall: Duration,
    sink: &mut (dyn FnMut(&[u8]) -> std::io::Result<()> + Send),
) -> Result<u64, HttpError> {
    let name = url.to_string();
    match tokio::time::timeout(timeout, fetch_inner(url, &name, tls, limit, stall, sink)).await {
        Ok(r) => r,
        Err(_) => Err(HttpError::Timeout { url: name }),
    }
}

async fn fetch_inner(
    url: &HttpUrl,
    name: &str,
    tls: &TlsOptions,
    limit: u64,
    stall: Duration,
    sink: &mut (dyn FnMut(&[u8]) -> std::io::Result<()> + Send),
) -> Result<u64, HttpError> {
    // Connect and the TLS handshake are waits on the network too: a SYN that is never
    // answered, or a server that accepts and says nothing, is a stall like any other.
    let tcp = connect_within(url, name, stall).await?;
    let _ = tcp.set_nodelay(true);
    let stream: Box<dyn Stream> = if url.tls {
        let tls_err = |reason: String| HttpError::Tls {
            url: name.to_string(),
            reason,
        };
        let config = client_tls_config(tls).map_err(|e| tls_err(e.to_string()))?;
        let server_name =
            ServerName::try_from(url.host.clone()).map_err(|e| tls_err(e.to_string()))?;
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let s = within(Some(stall), name, connector.connect(server_name, tcp))
            .await?
            .map_err(|e| tls_err(e.to_string()))?;
        Box::new(s)
    } else {
        Box::new(tcp)
    };
    exchange(stream, url, name, limit, Some(stall), sink).await
}

/// A connection to `url`'s host, each of its addresses given `stall` in turn (an unreachable
/// IPv6 address must not use up the time of the IPv4 one after it), the name lookup too.
async fn connect_within(
    url: &HttpUrl,
    name: &str,
    stall: Duration,
) -> Result<TcpStream, HttpError> {
    let io = |source| HttpError::Io {
        url: name.to_string(),
        source,
    };
    let addrs: Vec<std::net::SocketAddr> = within(
        Some(stall),
        name,
        tokio::net::lookup_host((url.host.as_str(), url.port)),
    )
    .await?
    .map_err(io)?
    .collect();
    let mut last = None;
    for addr in addrs {
        match within(Some(stall), name, TcpStream::connect(addr)).await {
            Ok(Ok(tcp)) => return Ok(tcp),
            Ok(Err(e)) => last = Some(io(e)),
            Err(stalled) => last = Some(stalled),
        }
    }
    Err(last.unwrap_or_else(|| {
        io(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!("{} has no address", url.host),
        ))
    }))
}

/// [`fetch`]'s HTTP exchange over a stream the caller already opened (no connect, no TLS, no
/// timeout): the request for `url` goes out, the response is read with the same framing and
/// size bound. The entry point the fuzz target feeds a server's bytes through (`fuzz/`).
pub async fn fetch_over<S>(
    stream: S,
    url: &HttpUrl,
    limit: u64,
    sink: &mut (dyn FnMut(&[u8]) -> std::io::Result<()> + Send),
) -> Result<u64, HttpError>
where
    S: AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    exchange(Box::new(stream), url, &url.to_string(), limit, None, sink).await
}

async fn exchange(
    stream: Box<dyn Stream>,
    url: &HttpUrl,
    name: &str,
    limit: u64,
    stall: Option<Duration>,
    sink: &mut (dyn FnMut(&[u8]) -> std::io::Result<()> + Send),
) -> Result<u64, HttpError> {
    let host_header = if url.host.contains(':') {
        format!("[{}]:{}", url.host, url.port)
    } else {
        format!("{}:{}", url.host, url.port)
    };
    let request = Request::get(url.path.as_str())
        .header(header::HOST, host_header)
        .header(
            header::USER_AGENT,
            concat!("rigworker/", env!("CARGO_PKG_VERSION")),
        )
        .header(header::ACCEPT, "*/*")
        .header(header::CONNECTION, "close")
        .body(Empty::<Bytes>::new())
        .map_err(|_| HttpError::BadUrl(name.to_string()))?;
    // hyper parses the response: framing (Content-Length, chunked with its CRLFs, read to
    // close), repeated headers and transfer codings as RFC 9112 says; the head is bounded.
    let (mut sender, conn) = http1::Builder::new()
        .max_buf_size(MAX_HEAD)
        .handshake::<_, Empty<Bytes>>(TokioIo::new(stream))
        .await
        .map_err(|e| hyper_error(name, e))?;
    let exchange = async {
        let response = within(stall, name, sender.send_request(request))
            .await?
            .map_err(|e| hyper_error(name, e))?;
        let status = response.status().as_u16();
        // Redirects included: following one would let a pool point the rig anywhere.
        if status != 200 {
            return Err(HttpError::Status {
                url: name.to_string(),
                status,
            });
        }
        let too_large = || HttpError::TooLarge {
            url: name.to_string(),
            limit,
        };
        let mut body = response.into_body();
        // A Content-Length over the bound fails before any byte is read.
        if body.size_hint().lower() > limit {
            return Err(too_large());
        }
        let mut total = 0u64;
        while let Some(frame) = within(stall, name, body.frame()).await? {
            let frame = frame.map_err(|e| hyper_error(name, e))?;
            let Ok(data) = frame.into_data() else {
                continue; // trailers
            };
            total = total.saturating_add(data.len() as u64);
            if total > limit {
                return Err(too_large());
            }
            sink(&data).map_err(|source| HttpError::Sink {
                url: name.to_string(),
                source,
            })?;
        }
        Ok(total)
    };
    // The connection future does the socket work for the exchange: both are driven here, so
    // nothing outlives this call.
    let mut conn = std::pin::pin!(conn);
    let mut exchange = std::pin::pin!(exchange);
    tokio::select! {
        r = &mut exchange => r,
        c = &mut conn => match c {
            Ok(()) => exchange.await,
            Err(e) => Err(hyper_error(name, e)),
        },
    }
}

/// `f`, or [`HttpError::Stalled`] when `stall` passes first (`None`: no bound).
async fn within<T>(
    stall: Option<Duration>,
    name: &str,
    f: impl std::future::Future<Output = T>,
) -> Result<T, HttpError> {
    match stall {
        None => Ok(f.await),
        Some(after) => tokio::time::timeout(after, f)
            .await
            .map_err(|_| HttpError::Stalled {
                url: name.to_string(),
                after,
            }),
    }
}

/// hyper's error as ours: the network failing under us is I/O; everything else (a response
/// that is not HTTP/1.x, bad framing, a body that ends early) is a malformed response.
fn hyper_error(url: &str, e: hyper::Error) -> HttpError {
    use std::error::Error as _;
    let io = e
        .source()
        .and_then(|s| s.downcast_ref::<std::io::Error>())
        .filter(|io| {
            // hyper reports bad framing as I/O errors too (InvalidInput, UnexpectedEof...):
            // only these are the network's doing.
            use std::io::ErrorKind::*;
            matches!(
                io.kind(),
                ConnectionReset | ConnectionAborted | BrokenPipe | NotConnected | TimedOut
            )
        });
    match io {
        Some(io) => HttpError::Io {
            url: url.to_string(),
            source: std::io::Error::new(io.kind(), io.to_string()),
        },
        None => HttpError::Malformed {
            url: url.to_string(),
            reason: match e.source() {
                Some(s) => format!("{e}: {s}"),
                None => e.to_string(),
            },
        },
    }
}

/// Reads up to the blank line that ends an HTTP head; `None` when the peer closes first or
/// the head exceeds [`MAX_HEAD`].
async fn read_head<R: AsyncRead + Unpin>(r: &mut BufReader<R>) -> std::io::Result<Option<String>> {
    let mut head = Vec::new();
    loop {
        let mut line = Vec::new();
        let n = (&mut *r)
            .take((MAX_HEAD - head.len().min(MAX_HEAD)) as u64 + 1)
            .read_until(b'\n', &mut line)
            .await?;
        if n == 0 || head.len() + n > MAX_HEAD {
            return Ok(None);
        }
        if line == b"\r\n" || line == b"\n" {
            break;
        }
        head.extend_from_slice(&line);
    }
    Ok(Some(
        String::from_utf8_lossy(&head)
            .replace("\r\n", "\n")
            .replace('\n', "\r\n"),
    ))
}

/// The files a pool hands out, by SHA-256.
#[derive(Debug, Default)]
pub struct ArtifactStore {
    files: RwLock<HashMap<ArtifactId, PathBuf>>,
}

impl ArtifactStore {
    pub fn new() -> ArtifactStore {
        ArtifactStore::default()
    }

    /// Serves `path` under `id` (its SHA-256, computed by the caller).
    pub fn insert(&self, id: ArtifactId, path: PathBuf) {
        if let Ok(mut m) = self.files.write() {
            m.insert(id, path);
        }
    }

    fn get(&self, id: &ArtifactId) -> Option<PathBuf> {
        self.files.read().ok()?.get(id).cloned()
    }

    /// The URL path of an artifact.
    pub fn path_of(id: &ArtifactId) -> String {
        format!("/artifacts/{id}")
    }
}

/// Serves `GET /artifacts/<sha256>` from `store` on `listener` until the task is dropped.
pub async fn serve_artifacts(listener: TcpListener, store: Arc<ArtifactStore>) {
    serve_artifacts_to(listener, store, MAX_ARTIFACT_CONNECTIONS).await
}

/// Downloads served at once; more wait in the listen queue. Each holds a file and a socket
/// for up to 10 minutes, and the pool's own listeners need descriptors too.
pub const MAX_ARTIFACT_CONNECTIONS: usize = 64;

async fn serve_artifacts_to(listener: TcpListener, store: Arc<ArtifactStore>, max: usize) {
    let slots = Arc::new(tokio::sync::Semaphore::new(max.max(1)));
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let Ok((sock, peer)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let store = store.clone();
        tokio::spawn(async move {
            let r = tokio::time::timeout(Duration::from_secs(600), answer(sock, &store)).await;
            if let Ok(Err(e)) = r {
                tracing::debug!(%peer, "artifact request: {e}");
            }
            drop(slot);
        });
    }
}

async fn answer(sock: TcpStream, store: &ArtifactStore) -> std::io::Result<()> {
    let mut r = BufReader::new(sock);
    let head = match tokio::time::timeout(Duration::from_secs(10), read_head(&mut r)).await {
        Ok(h) => h?,
        Err(_) => None,
    };
    let mut sock = r.into_inner();
    let reply = |status: &str| {
        format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
    };
    let Some(head) = head else {
        sock.write_all(reply("400 Bad Request").as_bytes()).await?;
        return Ok(());
    };
    let first = head.split("\r\n").next().unwrap_or_default();
    let mut parts = first.split(' ');
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    if method != "GET" && method != "HEAD" {
        sock.write_all(reply("405 Method Not Allowed").as_bytes())
            .await?;
        return Ok(());
    }
    let path = target
        .strip_prefix("/artifacts/")
        .and_then(ArtifactId::from_hex)
        .and_then(|id| store.get(&id));
    let Some(path) = path else {
        sock.write_all(reply("404 Not Found").as_bytes()).await?;
        return Ok(());
    };
    let mut file = match tokio::fs::File::open(&path).await {
        Ok(f) => f,
        Err(_) => {
            sock.write_all(reply("404 Not Found").as_bytes()).await?;
            return Ok(());
        }
    };
    let len = file.metadata().await?.len();
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n"
    );
    sock.write_all(head.as_bytes()).await?;
    if method == "GET" {
        // A reader that takes nothing for STALL_TIMEOUT gives its slot up: 64 slow readers
        // must not hold every download slot for the whole-request bound.
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = file.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            tokio::time::timeout(STALL_TIMEOUT, sock.write_all(&buf[..n]))
                .await
                .map_err(|_| std::io::Error::from(std::io::ErrorKind::TimedOut))??;
        }
    }
    sock.flush().await?;
    sock.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_urls() {
        let u = HttpUrl::parse("http://127.0.0.1:8080/artifacts/ab", "pool").unwrap();
        assert_eq!((u.tls, u.host.as_str(), u.port), (false, "127.0.0.1", 8080));
        assert_eq!(u.path, "/artifacts/ab");
        let u = HttpUrl::parse("https://example.com", "pool").unwrap();
        assert_eq!((u.tls, u.port, u.path.as_str()), (true, 443, "/"));
        let u = HttpUrl::parse("http://0.0.0.0:81/x", "pool.lan").unwrap();
        assert_eq!(u.host, "pool.lan");
        let u = HttpUrl::parse("http://[::1]:81/x", "p").unwrap();
        assert_eq!(u.to_string(), "http://[::1]:81/x");
        for bad in [
            "ftp://x/",
            "http://x:0/",
            "http://x:99999/",
            "http://u@x/",
            "x",
        ] {
            assert!(HttpUrl::parse(bad, "p").is_err(), "{bad}");
        }
    }

    async fn fetch_all(url: &str, limit: u64) -> Result<Vec<u8>, HttpError> {
        let u = HttpUrl::parse(url, "127.0.0.1")?;
        let mut out = Vec::new();
        let mut sink = |b: &[u8]| {
            out.extend_from_slice(b);
            Ok(())
        };
        fetch(
            &u,
            &TlsOptions::default(),
            limit,
            Duration::from_secs(10),
            &mut sink,
        )
        .await?;
        Ok(out)
    }

    /// A server that answers the request with `head`, then sends `body` a byte at a time every
    /// `gap`, then waits (holding the connection) for a minute.
    async fn slow_server(head: &'static str, body: &'static [u8], gap: Duration) -> u16 {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        tokio::spawn(async move {
            let (mut s, _) = l.accept().await.unwrap();
            let mut req = [0u8; 1024];
            let _ = s.read(&mut req).await;
            s.write_all(head.as_bytes()).await.unwrap();
            for b in body {
                tokio::time::sleep(gap).await;
                s.write_all(&[*b]).await.unwrap();
            }
            tokio::time::sleep(Duration::from_secs(60)).await;
        });
        port
    }

    /// Whole-exchange bound 30 s, stall bound 0.5 s: `Stalled` (not `Timeout`) says which one
    /// ended it.
    async fn fetch_stalling(scheme: &str, port: u16) -> Result<u64, HttpError> {
        let u = HttpUrl::parse(&format!("{scheme}://127.0.0.1:{port}/k"), "127.0.0.1").unwrap();
        let mut sink = |_: &[u8]| Ok(());
        fetch_with_stall(
            &u,
            &TlsOptions::default(),
            1 << 20,
            Duration::from_secs(30),
            Duration::from_millis(500),
            &mut sink,
        )
        .await
    }

    #[tokio::test]
    async fn a_stalled_download_ends_long_before_its_whole_time_bound() {
        // Nothing after the request, then nothing after part of the body.
        for (head, body) in [
            ("", &b""[..]),
            (
                "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n",
                &b"abc"[..],
            ),
        ] {
            let port = slow_server(head, body, Duration::from_millis(10)).await;
            let r = fetch_stalling("http", port).await;
            assert!(matches!(r, Err(HttpError::Stalled { .. })), "{r:?}");
        }
        // A slow server that keeps sending is not stalled: a byte every 100 ms is enough.
        let port = slow_server(
            "HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\n",
            b"01234567",
            Duration::from_millis(100),
        )
        .await;
        assert_eq!(fetch_stalling("http", port).await.unwrap(), 8);
    }

    #[tokio::test]
    async fn a_connect_or_tls_handshake_that_never_completes_is_a_stall() {
        // A TLS server that accepts and never answers the ClientHello.
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((s, _)) = l.accept().await {
                held.push(s);
            }
        });
        let r = fetch_stalling("https", port).await;
        assert!(matches!(r, Err(HttpError::Stalled { .. })), "TLS: {r:?}");

        // A listener whose accept queue is full: the kernel drops further SYNs, so a connect
        // waits (retrying) as it does for a host that has gone away.
        let sock = tokio::net::TcpSocket::new_v4().unwrap();
        sock.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let full = sock.listen(0).unwrap();
        let port = full.local_addr().unwrap().port();
        let mut queued = Vec::new();
        let mut filled = false;
        for _ in 0..16 {
            match tokio::time::timeout(
                Duration::from_millis(300),
                TcpStream::connect(("127.0.0.1", port)),
            )
            .await
            {
                Ok(Ok(s)) => queued.push(s),
                _ => {
                    filled = true;
                    break;
                }
            }
        }
        assert!(filled, "connects to a full accept queue all completed");
        let r = fetch_stalling("http", port).await;
        assert!(
            matches!(r, Err(HttpError::Stalled { .. })),
            "connect: {r:?}"
        );
        drop((full, queued));
    }

    #[tokio::test]
    async fn downloads_served_at_once_are_capped() {
        use tokio::io::AsyncReadExt;
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        tokio::spawn(serve_artifacts_to(l, Arc::new(ArtifactStore::new()), 2));
        // Two connections that say nothing hold both slots.
        let idle: Vec<TcpStream> = vec![
            TcpStream::connect(("127.0.0.1", port)).await.unwrap(),
            TcpStream::connect(("127.0.0.1", port)).await.unwrap(),
        ];
        let mut third = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        third
            .write_all(b"GET /artifacts/00 HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut reply = Vec::new();
        let waited =
            tokio::time::timeout(Duration::from_millis(500), third.read_to_end(&mut reply)).await;
        assert!(
            waited.is_err(),
            "a third download was served beside two: {reply:?}"
        );
        // One leaves: the third is answered (404: no such artifact).
        drop(idle);
        tokio::time::timeout(Duration::from_secs(20), third.read_to_end(&mut reply))
            .await
            .expect("the third download was never served")
            .unwrap();
        let text = String::from_utf8_lossy(&reply);
        assert!(text.starts_with("HTTP/1.1 404"), "{text}");
    }

    #[tokio::test]
    async fn serves_and_fetches_by_hash_with_a_size_bound() {
        let dir = std::env::temp_dir().join(format!("rigworker-http-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let data: Vec<u8> = (0..200_000u32).map(|i| (i * 7) as u8).collect();
        let file = dir.join("a.bin");
        std::fs::write(&file, &data).unwrap();
        let id = ArtifactId::of(&data);
        let store = Arc::new(ArtifactStore::new());
        store.insert(id, file);
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        tokio::spawn(serve_artifacts(l, store));
        let base = format!("http://127.0.0.1:{port}");
        let got = fetch_all(&format!("{base}{}", ArtifactStore::path_of(&id)), 1 << 20)
            .await
            .unwrap();
        assert_eq!(got, data);
        let e = fetch_all(&format!("{base}{}", ArtifactStore::path_of(&id)), 1000).await;
        assert!(matches!(e, Err(HttpError::TooLarge { .. })), "{e:?}");
        let e = fetch_all(&format!("{base}/artifacts/{}", "0".repeat(64)), 1 << 20).await;
        assert!(
            matches!(e, Err(HttpError::Status { status: 404, .. })),
            "{e:?}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    /// A server that answers with a fixed byte string, for body framings the pool never uses.
    async fn canned(reply: &'static [u8]) -> String {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = l.accept().await {
                let mut b = [0u8; 1024];
                let _ = s.read(&mut b).await;
                let _ = s.write_all(reply).await;
                let _ = s.shutdown().await;
            }
        });
        format!("http://127.0.0.1:{port}/x")
    }

    /// Framings the hand-written parser got wrong: the CRLF that ends each chunk is checked,
    /// a repeated Content-Length counts once when identical and is an error otherwise, and
    /// `gzip, chunked` is framed by its final coding, chunked.
    #[tokio::test]
    async fn framing_follows_http_1_1() {
        let u = canned(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n").await;
        assert_eq!(fetch_all(&u, 100).await.unwrap(), b"abcde");
        let u = canned(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcXY2\r\nde\r\n0\r\n\r\n",
        )
        .await;
        let e = fetch_all(&u, 100).await;
        assert!(matches!(e, Err(HttpError::Malformed { .. })), "{e:?}");
        let u =
            canned(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello").await;
        assert_eq!(fetch_all(&u, 100).await.unwrap(), b"hello");
        let u = canned(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!")
            .await;
        let e = fetch_all(&u, 100).await;
        assert!(matches!(e, Err(HttpError::Malformed { .. })), "{e:?}");
        let u = canned(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n3\r\nabc\r\n1\r\nd\r\n0\r\n\r\n").await;
        assert_eq!(fetch_all(&u, 100).await.unwrap(), b"abcd");
        // A length over the bound is refused before the body is read.
        let u = canned(b"HTTP/1.1 200 OK\r\nContent-Length: 1000000\r\n\r\nabc").await;
        let e = fetch_all(&u, 100).await;
        assert!(matches!(e, Err(HttpError::TooLarge { .. })), "{e:?}");
        // So is a chunked body that grows past it.
        let u = canned(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n40\r\naaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n40\r\naaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n0\r\n\r\n").await;
        let e = fetch_all(&u, 100).await;
        assert!(matches!(e, Err(HttpError::TooLarge { .. })), "{e:?}");
    }

    #[tokio::test]
    async fn chunked_close_delimited_and_broken_bodies() {
        let u = canned(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n").await;
        assert_eq!(fetch_all(&u, 100).await.unwrap(), b"abcde");
        let u = canned(b"HTTP/1.0 200 OK\r\n\r\nhello").await;
        assert_eq!(fetch_all(&u, 100).await.unwrap(), b"hello");
        let u = canned(b"HTTP/1.0 200 OK\r\n\r\nhello").await;
        assert!(matches!(
            fetch_all(&u, 3).await,
            Err(HttpError::TooLarge { .. })
        ));
        let u = canned(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort").await;
        assert!(matches!(
            fetch_all(&u, 100).await,
            Err(HttpError::Malformed { .. })
        ));
        let u = canned(b"garbage\r\n\r\n").await;
        assert!(matches!(
            fetch_all(&u, 100).await,
            Err(HttpError::Malformed { .. })
        ));
        let u = canned(b"HTTP/1.1 302 Found\r\nLocation: /y\r\n\r\n").await;
        assert!(matches!(
            fetch_all(&u, 100).await,
            Err(HttpError::Status { status: 302, .. })
        ));
    }
}

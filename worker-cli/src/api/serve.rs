//! The API's accept loop: HTTP/1 connections served by hyper with bounds that `axum::serve`
//! does not set. A client that connects and never finishes a request head (a stuck script, a
//! slowloris) is closed after [`HEADER_READ_TIMEOUT`]; every connection is closed after
//! [`CONNECTION_TIME`] (once its request in hand is answered, or [`CLOSE_GRACE`] later), so
//! one that trickles a body or never reads its answer cannot keep its slot; and at most
//! [`MAX_CONNECTIONS`] are served at once. Without them, idle connections pile up until the
//! process runs out of file descriptors, and then the pool connection and the device threads
//! fail with it: the API must never be able to take the rig down.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tracing::{debug, warn};

/// How long a connection may take to send a request head, counted from when the server
/// starts waiting for one (so an idle keep-alive connection is also closed after it). A
/// browser or Prometheus sends its head at once and opens a new connection when needed.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// How long one connection is served; then it is closed after the request in hand (a browser
/// or scraper simply opens a new one).
pub const CONNECTION_TIME: Duration = Duration::from_secs(60);
/// How long the request in hand may still take once a connection is past its time.
pub const CLOSE_GRACE: Duration = Duration::from_secs(10);
/// Connections served at once; further ones wait in the listen queue until one closes. The
/// dashboard takes one or two per open browser tab, a scraper one.
pub const MAX_CONNECTIONS: usize = 64;

/// The bounds of one server (tests shorten them).
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub header_read_timeout: Duration,
    pub connection_time: Duration,
    pub close_grace: Duration,
    pub max_connections: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            header_read_timeout: HEADER_READ_TIMEOUT,
            connection_time: CONNECTION_TIME,
            close_grace: CLOSE_GRACE,
            max_connections: MAX_CONNECTIONS,
        }
    }
}

/// Serves `app` on `listener` until the task is dropped. `open` counts the connections being
/// served.
pub async fn serve(listener: TcpListener, app: Router, limits: Limits, open: Arc<AtomicUsize>) {
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let mut accept_errors = 0u64;
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let stream = match listener.accept().await {
            Ok((s, _)) => s,
            Err(e) => {
                // Out of descriptors (EMFILE) or a connection reset before accept: wait a
                // little rather than spin; the next accept may well succeed.
                accept_errors += 1;
                if accept_errors.is_power_of_two() {
                    warn!(error = %e, count = accept_errors, "HTTP API: accept failed");
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(app.clone());
        let open = open.clone();
        open.fetch_add(1, Ordering::Relaxed);
        tokio::spawn(async move {
            let mut builder = http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_read_timeout);
            let conn = builder.serve_connection(TokioIo::new(stream), service);
            tokio::pin!(conn);
            let ended = tokio::select! {
                r = conn.as_mut() => Some(r),
                () = tokio::time::sleep(limits.connection_time) => None,
            };
            let ended = match ended {
                Some(r) => r,
                None => {
                    conn.as_mut().graceful_shutdown();
                    tokio::time::timeout(limits.close_grace, conn.as_mut())
                        .await
                        .unwrap_or(Ok(()))
                }
            };
            if let Err(e) = ended {
                debug!(error = %e, "HTTP API connection ended");
            }
            open.fetch_sub(1, Ordering::Relaxed);
            drop(slot);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::get;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    async fn server(limits: Limits) -> (std::net::SocketAddr, Arc<AtomicUsize>) {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        // POST reads its whole body: a client trickling one holds the request open.
        let app = Router::new().route(
            "/",
            get(|| async { "ok" }).post(|body: String| async move { body.len().to_string() }),
        );
        let open = Arc::new(AtomicUsize::new(0));
        tokio::spawn(serve(l, app, limits, open.clone()));
        (addr, open)
    }

    async fn get_root(addr: std::net::SocketAddr) -> String {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        out
    }

    /// Bounds that fail the test instead of hanging it; generous, since the machine is shared.
    const PATIENCE: Duration = Duration::from_secs(20);

    #[tokio::test]
    async fn a_connection_that_never_sends_a_request_is_closed() {
        let limits = Limits {
            header_read_timeout: Duration::from_millis(300),
            max_connections: 8,
            ..Limits::default()
        };
        let (addr, _) = server(limits).await;
        // Nothing at all, and half a request head.
        for sent in [&b""[..], b"GET / HTTP/1.1\r\nHost:"] {
            let mut s = TcpStream::connect(addr).await.unwrap();
            s.write_all(sent).await.unwrap();
            let mut b = [0u8; 256];
            let r = tokio::time::timeout(PATIENCE, s.read(&mut b)).await;
            // Closed (with or without a 408 first), not left open.
            assert!(r.is_ok(), "the server kept a silent connection open");
        }
    }

    #[tokio::test]
    async fn a_connection_that_trickles_a_body_is_closed_in_time() {
        let limits = Limits {
            connection_time: Duration::from_millis(500),
            close_grace: Duration::from_millis(300),
            ..Limits::default()
        };
        let (addr, open) = server(limits).await;
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n")
            .await
            .unwrap();
        // A byte every 100 ms, for as long as the server takes them (PATIENCE at most).
        let trickle = async {
            loop {
                tokio::time::sleep(Duration::from_millis(100)).await;
                if s.write_all(b"x").await.is_err() {
                    break;
                }
                if open.load(Ordering::Relaxed) == 0 {
                    break;
                }
            }
        };
        tokio::time::timeout(PATIENCE, trickle)
            .await
            .expect("a trickling connection was served for as long as it liked");
    }

    #[tokio::test]
    async fn connections_are_capped_and_idle_ones_make_room() {
        let limits = Limits {
            header_read_timeout: Duration::from_millis(300),
            max_connections: 4,
            ..Limits::default()
        };
        let (addr, open) = server(limits).await;
        let mut idle = Vec::new();
        for _ in 0..20 {
            idle.push(TcpStream::connect(addr).await.unwrap());
        }
        let mut most = 0;
        for _ in 0..20 {
            most = most.max(open.load(Ordering::Relaxed));
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert!((1..=4).contains(&most), "{most} connections served at once");
        // The idle ones time out a few at a time; a real request behind them is answered.
        let reply = tokio::time::timeout(PATIENCE, get_root(addr))
            .await
            .expect("a request behind idle connections was never answered");
        assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
        assert!(reply.ends_with("ok"), "{reply}");
    }
}

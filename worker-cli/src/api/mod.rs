//! The HTTP API of `rigworker mine --http ADDR` (`docs/api.md`): read-only JSON under
//! `/api/v1/`, control requests (pause, resume, pool switch, config reload) behind a bearer
//! token, Prometheus `/metrics`, and the dashboard at `/`. This module owns the listen
//! address rules, the token check, the routes and the server task; [`views`] builds the JSON
//! documents, [`metrics`] the Prometheus exposition, [`history`] the hour of hashrate samples
//! the dashboard charts, [`dashboard`] the embedded page.
//!
//! Why axum (default features off: HTTP/1 on tokio, JSON and query strings only): it is a
//! thin router over hyper (method and path matching, extractors, 404/405 answers); with
//! HTTP/2, forms, WebSockets, macros and tracing layers off, it adds hyper, hyper-util,
//! tower, matchit and serde_urlencoded to a tree that already has tokio, serde and http. The
//! accept loop is ours ([`serve`]): it bounds connections and the time to send a request,
//! which `axum::serve` does not.
//!
//! Security model: the server listens on loopback unless told otherwise, and any other
//! address is refused at start without a token, since a rig's API on a LAN would otherwise
//! let anyone pause it or send its hashrate to another pool. GET requests never change
//! anything and never show a secret; every POST needs `Authorization: Bearer <token>`,
//! compared in constant time, and is refused with 401 (changing nothing) otherwise, also when
//! no token was configured at all.

pub mod dashboard;
pub mod history;
pub mod metrics;
pub mod serve;
pub mod views;

use std::net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::sync::{mpsc, oneshot};
use tracing::info;

use crate::engine::{EngineCommand, EngineState};

/// Where the API listens and who may steer the worker through it.
#[derive(Clone)]
pub struct ApiConfig {
    pub listen: SocketAddr,
    /// The bearer token control requests need; `None`: control is refused.
    pub token: Option<String>,
}

impl std::fmt::Debug for ApiConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiConfig")
            .field("listen", &self.listen)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

impl ApiConfig {
    /// Checks `--http` and `--http-token` (from wherever they came) before anything starts.
    pub fn new(listen: &str, token: Option<String>) -> Result<ApiConfig> {
        let listen = parse_listen(listen)?;
        if token.as_deref().is_some_and(|t| t.trim().is_empty()) {
            bail!("--http-token is empty: give a real token or leave it out");
        }
        if !listen.ip().is_loopback() && token.is_none() {
            bail!(
                "--http {listen} is not a loopback address and no --http-token is set: anyone who \
                 can reach it could pause the rig or switch its pool. Set a token (--http-token, \
                 RIGWORKER_HTTP_TOKEN or http_token in the config file), or listen on 127.0.0.1"
            );
        }
        Ok(ApiConfig { listen, token })
    }
}

/// `PORT` and `:PORT` mean loopback; `HOST:PORT` and `[V6]:PORT` as given (a host name is
/// resolved, `localhost` is always 127.0.0.1).
pub fn parse_listen(s: &str) -> Result<SocketAddr> {
    let s = s.trim();
    let port_only = s.strip_prefix(':').unwrap_or(s);
    if let Ok(port) = port_only.parse::<u16>() {
        return Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port));
    }
    if let Ok(a) = s.parse::<SocketAddr>() {
        return Ok(a);
    }
    let Some((host, port)) = s.rsplit_once(':') else {
        bail!("--http {s:?}: expected PORT, HOST:PORT or [IPV6]:PORT");
    };
    let port: u16 = port
        .parse()
        .with_context(|| format!("--http {s:?}: bad port {port:?}"))?;
    if host.eq_ignore_ascii_case("localhost") {
        return Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port));
    }
    (host, port)
        .to_socket_addrs()
        .with_context(|| format!("--http {s:?}: cannot resolve {host:?}"))?
        .next()
        .with_context(|| format!("--http {s:?}: {host:?} has no address"))
}

/// What a reload request gets back: a report for the client, or why nothing changed.
pub type ReloadReply = std::result::Result<Value, String>;

/// Everything the handlers read or steer.
pub struct ApiContext {
    pub state: Arc<Mutex<EngineState>>,
    /// The effective configuration with secrets redacted (replaced on reload).
    pub config: Arc<Mutex<Value>>,
    /// Where reload requests go (the same task SIGHUP wakes); `None`: reload unavailable.
    pub reload: Option<mpsc::Sender<oneshot::Sender<ReloadReply>>>,
    pub history: Arc<Mutex<history::History>>,
    metrics: metrics::Metrics,
    /// SHA-256 of the token: comparing digests takes the same time whatever the length of
    /// the guess, and the token itself is never kept where a debug print could show it.
    token_digest: Option<[u8; 32]>,
}

impl ApiContext {
    pub fn new(
        cfg: &ApiConfig,
        state: Arc<Mutex<EngineState>>,
        config: Arc<Mutex<Value>>,
        reload: Option<mpsc::Sender<oneshot::Sender<ReloadReply>>>,
    ) -> ApiContext {
        ApiContext {
            metrics: metrics::Metrics::new(state.clone()),
            history: Arc::new(Mutex::new(history::History::default())),
            state,
            config,
            reload,
            token_digest: cfg.token.as_ref().map(|t| Sha256::digest(t).into()),
        }
    }

    /// Whether `headers` carry the configured bearer token.
    fn authorized(&self, headers: &HeaderMap) -> bool {
        let Some(want) = &self.token_digest else {
            return false;
        };
        let Some(given) = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
        else {
            return false;
        };
        let got: [u8; 32] = Sha256::digest(given.trim()).into();
        constant_time_eq(want, &got)
    }

    fn state(&self) -> std::sync::MutexGuard<'_, EngineState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Equality whose time does not depend on where the inputs differ.
fn constant_time_eq(a: &[u8; 32], b: &[u8; 32]) -> bool {
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

/// A bound, not yet serving, API.
pub struct ApiServer {
    listener: tokio::net::TcpListener,
    ctx: Arc<ApiContext>,
}

impl ApiServer {
    /// Binds now, so a port in use is an error at start, before the devices spin up.
    pub async fn bind(cfg: &ApiConfig, ctx: ApiContext) -> Result<ApiServer> {
        let listener = tokio::net::TcpListener::bind(cfg.listen)
            .await
            .with_context(|| format!("--http: cannot listen on {}", cfg.listen))?;
        Ok(ApiServer {
            listener,
            ctx: Arc::new(ctx),
        })
    }

    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.listener.local_addr().ok()
    }

    /// Serves until the returned task is aborted; also starts the history sampler.
    pub fn spawn(self) -> tokio::task::JoinHandle<()> {
        let addr = self.local_addr();
        let ctx = self.ctx.clone();
        tokio::spawn(history::sample_forever(
            ctx.state.clone(),
            ctx.history.clone(),
        ));
        let app = router(ctx);
        if let Some(a) = addr {
            info!(addr = %a, "HTTP API, /metrics and dashboard on http://{a}/");
        }
        tokio::spawn(serve::serve(
            self.listener,
            app,
            serve::Limits::default(),
            Arc::new(Default::default()),
        ))
    }
}

fn router(ctx: Arc<ApiContext>) -> Router {
    Router::new()
        .route("/", get(dashboard::index))
        .route("/dashboard.js", get(dashboard::script))
        .route("/dashboard.css", get(dashboard::style))
        .route("/api/v1/summary", get(summary))
        .route("/api/v1/devices", get(devices))
        .route("/api/v1/pools", get(pools))
        .route("/api/v1/proving", get(proving))
        .route("/api/v1/config", get(config))
        .route("/api/v1/history", get(hashrate_history))
        .route("/api/v1/pause", post(pause))
        .route("/api/v1/resume", post(resume))
        .route("/api/v1/pool/auto", post(pool_auto))
        .route("/api/v1/pool/{n}", post(pool_switch))
        .route("/api/v1/reload", post(reload))
        .route("/metrics", get(prometheus))
        .fallback(not_found)
        .with_state(ctx)
}

type Ctx = State<Arc<ApiContext>>;

/// JSON with the status and `Cache-Control: no-store` (the numbers change every second).
fn json_response(status: StatusCode, v: Value) -> Response {
    let mut r = (status, axum::Json(v)).into_response();
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    r
}

fn error(status: StatusCode, msg: impl Into<String>) -> Response {
    json_response(status, json!({ "error": msg.into() }))
}

fn unauthorized(ctx: &ApiContext) -> Response {
    let msg = if ctx.token_digest.is_some() {
        "missing or wrong bearer token"
    } else {
        "control requests are off: start rigworker with --http-token"
    };
    let mut r = error(StatusCode::UNAUTHORIZED, msg);
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"rigworker\""),
    );
    r
}

async fn not_found() -> Response {
    error(StatusCode::NOT_FOUND, "no such endpoint (see docs/api.md)")
}

async fn summary(State(ctx): Ctx) -> Response {
    let v = views::summary(&ctx.state());
    json_response(StatusCode::OK, v)
}

async fn devices(State(ctx): Ctx) -> Response {
    let v = views::devices(&ctx.state());
    json_response(StatusCode::OK, v)
}

async fn pools(State(ctx): Ctx) -> Response {
    let v = views::pools(&ctx.state());
    json_response(StatusCode::OK, v)
}

async fn proving(State(ctx): Ctx) -> Response {
    let prover = ctx.state().proving.clone();
    json_response(StatusCode::OK, views::proving(prover.as_deref()))
}

async fn config(State(ctx): Ctx) -> Response {
    let v = ctx.config.lock().unwrap_or_else(|e| e.into_inner()).clone();
    json_response(StatusCode::OK, v)
}

async fn hashrate_history(State(ctx): Ctx) -> Response {
    let v = ctx
        .history
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .to_json();
    json_response(StatusCode::OK, v)
}

async fn prometheus(State(ctx): Ctx, headers: HeaderMap) -> Response {
    // Prometheus asks for OpenMetrics first; curl and promtool get the classic text format.
    let open = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("application/openmetrics-text"));
    match ctx.metrics.encode(open) {
        Ok((body, content_type)) => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, HeaderValue::from_static(content_type))],
            body,
        )
            .into_response(),
        Err(e) => error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()),
    }
}

#[derive(Deserialize)]
struct DeviceQuery {
    device: Option<String>,
}

async fn pause(State(ctx): Ctx, headers: HeaderMap, q: Query<DeviceQuery>) -> Response {
    set_paused(&ctx, &headers, q.0.device.as_deref(), true).await
}

async fn resume(State(ctx): Ctx, headers: HeaderMap, q: Query<DeviceQuery>) -> Response {
    set_paused(&ctx, &headers, q.0.device.as_deref(), false).await
}

/// The engine's command channel; `None` while no engine runs.
fn commands(ctx: &ApiContext) -> Option<mpsc::UnboundedSender<EngineCommand>> {
    ctx.state().commands.clone()
}

fn not_running() -> Response {
    error(StatusCode::SERVICE_UNAVAILABLE, "the engine is not running")
}

/// How long a control request waits for the engine to confirm.
const ENGINE_ANSWER: Duration = Duration::from_secs(5);

async fn set_paused(
    ctx: &ApiContext,
    headers: &HeaderMap,
    device: Option<&str>,
    paused: bool,
) -> Response {
    if !ctx.authorized(headers) {
        return unauthorized(ctx);
    }
    let indices = {
        let st = ctx.state();
        match device {
            None => (0..st.devices.len()).collect::<Vec<_>>(),
            // A label (`cpu0.1`) first, then an index into the device list.
            Some(d) => match st
                .devices
                .iter()
                .position(|x| x.label == d)
                .or_else(|| d.parse::<usize>().ok().filter(|i| *i < st.devices.len()))
            {
                Some(i) => vec![i],
                None => {
                    return error(StatusCode::NOT_FOUND, format!("no device {d:?}"));
                }
            },
        }
    };
    let Some(tx) = commands(ctx) else {
        return not_running();
    };
    let (done, answered) = oneshot::channel();
    let cmd = EngineCommand::SetPaused {
        devices: indices,
        paused,
        done,
    };
    if tx.send(cmd).is_err() {
        return not_running();
    }
    match tokio::time::timeout(ENGINE_ANSWER, answered).await {
        Ok(Ok(())) => {
            let v = views::devices(&ctx.state());
            json_response(StatusCode::OK, v)
        }
        _ => error(StatusCode::SERVICE_UNAVAILABLE, "the engine did not answer"),
    }
}

async fn pool_switch(State(ctx): Ctx, headers: HeaderMap, Path(n): Path<String>) -> Response {
    if !ctx.authorized(&headers) {
        return unauthorized(&ctx);
    }
    let count = ctx.state().pools.len();
    let Some(n) = n.parse::<usize>().ok().filter(|n| *n < count) else {
        return error(
            StatusCode::NOT_FOUND,
            format!("no pool {n:?}: pools are numbered 0..{count}"),
        );
    };
    pin(&ctx, Some(n))
}

async fn pool_auto(State(ctx): Ctx, headers: HeaderMap) -> Response {
    if !ctx.authorized(&headers) {
        return unauthorized(&ctx);
    }
    pin(&ctx, None)
}

fn pin(ctx: &ApiContext, pool: Option<usize>) -> Response {
    let Some(tx) = commands(ctx) else {
        return not_running();
    };
    if tx.send(EngineCommand::PinPool(pool)).is_err() {
        return not_running();
    }
    // The switch itself takes a connection and a handshake: answer now, with where to look.
    json_response(
        StatusCode::ACCEPTED,
        json!({ "pinned_pool": pool, "see": "/api/v1/pools" }),
    )
}

async fn reload(State(ctx): Ctx, headers: HeaderMap) -> Response {
    if !ctx.authorized(&headers) {
        return unauthorized(&ctx);
    }
    let Some(tx) = &ctx.reload else {
        return error(StatusCode::SERVICE_UNAVAILABLE, "reload is not available");
    };
    let (reply, answer) = oneshot::channel();
    if tx.send(reply).await.is_err() {
        return error(StatusCode::SERVICE_UNAVAILABLE, "reload is not available");
    }
    match tokio::time::timeout(ENGINE_ANSWER, answer).await {
        Ok(Ok(Ok(report))) => json_response(StatusCode::OK, report),
        Ok(Ok(Err(why))) => error(StatusCode::CONFLICT, why),
        _ => error(StatusCode::SERVICE_UNAVAILABLE, "reload did not answer"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_addresses() {
        let lo = |p| SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), p);
        assert_eq!(parse_listen("4080").unwrap(), lo(4080));
        assert_eq!(parse_listen(":4081").unwrap(), lo(4081));
        assert_eq!(parse_listen("localhost:4082").unwrap(), lo(4082));
        assert_eq!(
            parse_listen("0.0.0.0:4083").unwrap(),
            "0.0.0.0:4083".parse().unwrap()
        );
        assert_eq!(
            parse_listen("[::1]:4084").unwrap(),
            "[::1]:4084".parse().unwrap()
        );
        for bad in ["", "127.0.0.1", "host:port", "1.2.3.4:99999", "::"] {
            assert!(parse_listen(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn non_loopback_needs_a_token() {
        assert!(ApiConfig::new("4080", None).is_ok());
        assert!(ApiConfig::new("[::1]:4080", None).is_ok());
        let e = ApiConfig::new("0.0.0.0:4080", None)
            .unwrap_err()
            .to_string();
        assert!(e.contains("--http-token"), "{e}");
        assert!(ApiConfig::new("0.0.0.0:4080", Some("s3cret".into())).is_ok());
        assert!(ApiConfig::new("4080", Some("  ".into())).is_err());
        // The token never shows in a debug print.
        let c = ApiConfig::new("4080", Some("s3cret".into())).unwrap();
        assert!(!format!("{c:?}").contains("s3cret"));
    }

    #[test]
    fn bearer_token_check() {
        let cfg = ApiConfig::new("4080", Some("s3cret".into())).unwrap();
        let st = Arc::new(Mutex::new(EngineState::default()));
        let ctx = ApiContext::new(&cfg, st.clone(), Arc::new(Mutex::new(Value::Null)), None);
        let with = |v: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::AUTHORIZATION, HeaderValue::from_str(v).unwrap());
            h
        };
        assert!(ctx.authorized(&with("Bearer s3cret")));
        for bad in [
            "Bearer s3cre",
            "Bearer s3cret2",
            "bearer s3cret",
            "s3cret",
            "Basic s3cret",
        ] {
            assert!(!ctx.authorized(&with(bad)), "{bad}");
        }
        assert!(!ctx.authorized(&HeaderMap::new()));
        // No token configured: nothing is authorized.
        let open = ApiContext::new(
            &ApiConfig::new("4080", None).unwrap(),
            st,
            Arc::new(Mutex::new(Value::Null)),
            None,
        );
        assert!(!open.authorized(&with("Bearer ")));
        assert!(!open.authorized(&with("Bearer s3cret")));
    }
}

//! Helpers shared by the client tests: a hand-driven pool over a real loopback socket (the
//! test plays the pool's side line by line), client configurations with short timers, and
//! log capture.

#![allow(dead_code)]

use std::time::Duration;

use serde_json::{Value, json};
use stratum::client::{ClientConfig, ClientEvent, PoolConfig};
use stratum::work::{ExtraNonce2, Share};
use stratum::{PoolUrl, TlsOptions};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc::UnboundedReceiver;
use tokio::time::timeout;

pub const T: Duration = Duration::from_secs(10);

/// The pool's end of one accepted connection.
pub struct PoolSide {
    pub rd: tokio::io::Lines<BufReader<OwnedReadHalf>>,
    pub wr: OwnedWriteHalf,
}

impl PoolSide {
    pub async fn accept(l: &TcpListener) -> PoolSide {
        let (s, _) = timeout(T, l.accept())
            .await
            .expect("client connects")
            .unwrap();
        PoolSide::from_stream(s)
    }
    pub fn from_stream(s: TcpStream) -> PoolSide {
        let (r, w) = s.into_split();
        PoolSide {
            rd: BufReader::new(r).lines(),
            wr: w,
        }
    }
    pub async fn send(&mut self, line: &str) {
        self.wr
            .write_all(format!("{line}\n").as_bytes())
            .await
            .unwrap();
    }
    pub async fn recv(&mut self) -> Value {
        let line = timeout(T, self.rd.next_line())
            .await
            .expect("client sends")
            .unwrap()
            .expect("open");
        serde_json::from_str(&line).unwrap()
    }
    /// Reads requests until one with `method`, answering nothing.
    pub async fn recv_method(&mut self, method: &str) -> Value {
        loop {
            let v = self.recv().await;
            if v["method"] == method {
                return v;
            }
        }
    }
    /// Answers the standard handshake (version rolling granted as asked); returns the
    /// subscribe params.
    pub async fn handshake(&mut self, en1: &str, en2_size: u64) -> Value {
        let granted = json!({"version-rolling": true, "version-rolling.mask": "1fffe000"});
        self.handshake_with(en1, en2_size, Some((granted, Value::Null)))
            .await
            .subscribe
    }
    /// Answers the handshake with `configure` as the (result, error) of mining.configure, or
    /// leaves mining.configure unanswered when it is `None`.
    pub async fn handshake_with(
        &mut self,
        en1: &str,
        en2_size: u64,
        configure: Option<(Value, Value)>,
    ) -> Handshake {
        let mut sub_params = Value::Null;
        let mut configure_params = Value::Null;
        let mut authorized = false;
        while !authorized {
            let v = self.recv().await;
            let id = v["id"].clone();
            match v["method"].as_str().unwrap() {
                "mining.configure" => {
                    configure_params = v["params"].clone();
                    if let Some((result, error)) = &configure {
                        self.send(&json!({"id": id, "result": result, "error": error}).to_string())
                            .await
                    }
                }
                "mining.subscribe" => {
                    sub_params = v["params"].clone();
                    self.send(&json!({"id": id, "result": [[["mining.notify", "sess1"]], en1, en2_size], "error": null}).to_string()).await
                }
                "mining.authorize" => {
                    authorized = true;
                    self.send(&json!({"id": id, "result": true, "error": null}).to_string())
                        .await
                }
                _ => {
                    self.send(&json!({"id": id, "result": true, "error": null}).to_string())
                        .await
                }
            }
        }
        Handshake {
            subscribe: sub_params,
            configure: configure_params,
        }
    }
    pub async fn notify(&mut self, job_id: &str, clean: bool) {
        self.send(&notify_line(job_id, clean)).await;
    }
}

/// What the client sent during a handshake.
pub struct Handshake {
    pub subscribe: Value,
    pub configure: Value,
}

pub fn notify_line(job_id: &str, clean: bool) -> String {
    json!({"id": null, "method": "mining.notify", "params": [
        job_id,
        "1901125004612a1701c3a621d930d31d36b607df1fccc2160002d01c00000000",
        "01000000010000000000000000000000000000000000000000000000000000000000000000ffffffff08",
        "ffffffff0100f2052a01000000434104ac00000000",
        ["c40297f730dd7b5a99567eb8d27b78758f607507c52292d02d4031895b52f2ff"],
        "20000000", "1b04864c", "4d1b2237", clean]})
    .to_string()
}

pub fn config(ports: &[u16]) -> ClientConfig {
    let pools = ports
        .iter()
        .map(|p| PoolConfig {
            url: format!("stratum+tcp://127.0.0.1:{p}")
                .parse::<PoolUrl>()
                .unwrap(),
            user: "wallet.rig".into(),
            password: "secret".into(),
            tls: TlsOptions::default(),
        })
        .collect();
    let mut c = ClientConfig::new(pools);
    c.backoff_min = Duration::from_millis(20);
    c.backoff_max = Duration::from_millis(100);
    c.connect_timeout = Duration::from_secs(2);
    c
}

pub async fn next_event(rx: &mut UnboundedReceiver<ClientEvent>) -> ClientEvent {
    timeout(T, rx.recv())
        .await
        .expect("event in time")
        .expect("client alive")
}

pub async fn next_work(rx: &mut UnboundedReceiver<ClientEvent>) -> std::sync::Arc<stratum::Work> {
    next_work_within(rx, T).await
}

/// The next work, each event awaited at most `t` (the V2 tests allow their handshakes more).
pub async fn next_work_within(
    rx: &mut UnboundedReceiver<ClientEvent>,
    t: Duration,
) -> std::sync::Arc<stratum::Work> {
    loop {
        let ev = timeout(t, rx.recv())
            .await
            .expect("work in time")
            .expect("client alive");
        if let ClientEvent::Work(w) = ev {
            return w;
        }
    }
}

/// Brute-forces a share of `w` on the CPU with extranonce2 `en2`, as the engine would build
/// it (difficulty 1e-5 is about 430k hashes).
pub fn mine_share(w: &stratum::Work, en2: u64) -> Share {
    let en2 = ExtraNonce2::new(en2, w.extranonce.extranonce2_size).unwrap();
    let header = w
        .job
        .header(&w.extranonce, &en2, w.job.ntime, w.job.version);
    let nonce = (0..=u32::MAX)
        .find(|n| w.target.is_met_by(&header.with_nonce(*n).hash()))
        .unwrap();
    Share {
        job_id: w.job.job_id.clone(),
        extranonce2: en2,
        ntime: w.job.ntime,
        nonce,
        version_bits: w.version_mask.map(|m| w.job.version & m),
    }
}

pub async fn listener() -> (TcpListener, u16) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let p = l.local_addr().unwrap().port();
    (l, p)
}

pub fn share(job: &str) -> Share {
    Share {
        job_id: job.into(),
        extranonce2: ExtraNonce2::new(7, 4).unwrap(),
        ntime: 0x4d1b2237,
        nonce: 0x10572b0f,
        version_bits: None,
    }
}

/// Log output captured from the client task (it runs on the test's thread).
#[derive(Clone, Default)]
pub struct Logs(pub std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Logs {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Logs {
    /// Captures this thread's log output (the client task runs on the test's thread) until
    /// the guard is dropped.
    pub fn capture() -> (Logs, tracing::subscriber::DefaultGuard) {
        let logs = Logs::default();
        let writer = logs.clone();
        let guard = tracing::subscriber::set_default(
            tracing_subscriber::fmt()
                .with_writer(move || writer.clone())
                .with_ansi(false)
                .with_max_level(tracing::Level::DEBUG)
                .finish(),
        );
        (logs, guard)
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

/// The answer line to request `v` with `result`.
pub fn ok_line(v: &Value, result: Value) -> String {
    json!({"id": v["id"], "result": result, "error": null}).to_string()
}

/// The next event matching `f`, skipping others.
pub async fn wait_for<T>(
    rx: &mut UnboundedReceiver<ClientEvent>,
    mut f: impl FnMut(ClientEvent) -> Option<T>,
) -> T {
    loop {
        if let Some(t) = f(next_event(rx).await) {
            return t;
        }
    }
}

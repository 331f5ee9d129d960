//! Stratum V1 and V2 for SHA-256d mining: the work model, the wire messages, line framing over
//! TCP/TLS/WebSocket, Stratum V2 over Noise, the miner's client session, and a validating pool
//! server.
//!
//! - [`work`]: the only place that knows Stratum byte order (job → header, share → submit).
//! - [`message`]: JSON-RPC lines to typed requests/notifications, with explicit errors.
//! - [`connection`]: whole lines in and out, bounded line length, any transport.
//! - [`transport`]: pool URLs, TCP / TLS (rustls) / WebSocket connects.
//! - [`client`]: the long-lived Stratum V1 session: handshake, jobs, submits, keepalive.
//! - [`failover`]: which pool next and when (failures, backoff, pin, reconnect requests,
//!   reload), protocol-free so a Stratum V2 session can share it.
//! - [`untrusted`]: text from a peer escaped before it reaches a log.
//! - [`proving`]: the proving-job extension (`prover.*`, `docs/protocol.md`).
//! - [`http`]: artifact transfer for proving jobs (the pool serves, the worker fetches).
//! - [`server`]: the built-in pool used by `rigworker pool`, tests and benches.
//! - [`sv2`]: Stratum V2 keys, Noise handshake and encrypted frames (the reference
//!   implementation's crates), shared by the V2 client session and the pool's V2 listener.

pub mod client;
pub mod connection;
pub mod failover;
pub mod http;
pub mod message;
pub mod proving;
pub mod server;
pub mod sv2;
mod timers;
pub mod transport;
pub mod untrusted;
pub mod work;

pub use client::{
    Client, ClientConfig, ClientEvent, ClientHandle, PoolConfig, ProofResult, SubmitOutcome,
    SubmitResult, Work,
};
pub use transport::{PoolUrl, Scheme, TlsOptions};
pub use work::{Difficulty, ExtraNonce2, Extranonce, Hash256, HeaderBytes, Job, Share, Target};

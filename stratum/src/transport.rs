//! Pool URLs and the byte streams under a Stratum connection: plain TCP, TLS (rustls, system
//! roots by default, optional SHA-256 certificate pin, explicit insecure switch) and WebSocket
//! (plain or over TLS). [`connect`] picks the transport from the URL scheme and returns a
//! [`Connection`](crate::connection::Connection) that reads and writes whole lines.
//! `stratum2+tcp://HOST:PORT/AUTHORITY_KEY` names a Stratum V2 pool in the same list; its
//! (Noise, binary) connection is [`crate::sv2`]'s, not [`connect`]'s.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

use crate::connection::{Connection, MAX_LINE, ws_config};
use crate::sv2::AuthorityPublicKey;

/// Any bidirectional byte stream a connection can run over.
pub trait AsyncStream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> AsyncStream for T {}
pub type BoxStream = Box<dyn AsyncStream>;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Scheme {
    /// `stratum2+tcp://HOST:PORT/KEY`: Stratum V2 over Noise, authenticated by the pool's
    /// authority public key (the URL's path, base58-check as the SV2 specification writes it).
    Sv2(AuthorityPublicKey),
    /// `stratum+tcp://`
    Tcp,
    /// `stratum+ssl://` / `stratum+tls://`
    Tls,
    /// `ws://`
    Ws,
    /// `wss://`
    Wss,
}

/// A pool address as users write it: `stratum+tcp://host:port`, `stratum+ssl://host:port`,
/// `ws://host:port/path`, `wss://host:port/path`, `stratum2+tcp://host:port/AUTHORITY_KEY`
/// (Stratum V2), or bare `host:port` (TCP).
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct PoolUrl {
    pub scheme: Scheme,
    pub host: String,
    pub port: u16,
    /// Request path for WebSocket URLs (`/` when absent).
    pub path: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid pool URL {url:?}: {reason}")]
pub struct UrlError {
    url: String,
    reason: &'static str,
}

impl FromStr for PoolUrl {
    type Err = UrlError;
    fn from_str(url: &str) -> Result<Self, Self::Err> {
        let err = |reason| UrlError {
            url: url.to_string(),
            reason,
        };
        let mut sv2 = false;
        let (scheme, rest) = match url.split_once("://") {
            Some((s, rest)) => {
                let scheme = match s.to_ascii_lowercase().as_str() {
                    "stratum2+tcp" => {
                        sv2 = true;
                        Scheme::Tcp
                    }
                    "stratum+tcp" | "stratum" | "tcp" => Scheme::Tcp,
                    "stratum+ssl" | "stratum+tls" | "ssl" | "tls" => Scheme::Tls,
                    "ws" => Scheme::Ws,
                    "wss" => Scheme::Wss,
                    _ => {
                        return Err(err(
                            "unknown scheme (stratum+tcp, stratum+ssl, ws, wss, stratum2+tcp)",
                        ));
                    }
                };
                (scheme, rest)
            }
            None => (Scheme::Tcp, url),
        };
        let (authority, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        // Credentials in the URL would end up in logs: refuse them.
        if authority.contains('@') {
            return Err(err("credentials belong in -u/-p, not in the URL"));
        }
        let (host, port) = if let Some(r) = authority.strip_prefix('[') {
            let (h, p) = r.split_once("]:").ok_or(err("expected [ipv6]:port"))?;
            (h, p)
        } else {
            authority.rsplit_once(':').ok_or(err("missing :port"))?
        };
        if host.is_empty() {
            return Err(err("missing host"));
        }
        let port: u16 = port
            .parse()
            .map_err(|_| err("port is not a number 1..65535"))?;
        if port == 0 {
            return Err(err("port 0"));
        }
        let (scheme, path) = if sv2 {
            let key = path.trim_start_matches('/').trim_end_matches('/');
            if key.is_empty() {
                return Err(err(
                    "stratum2+tcp needs the pool's authority public key: stratum2+tcp://HOST:PORT/KEY",
                ));
            }
            let key: AuthorityPublicKey = key
                .parse()
                .map_err(|_| err("the authority public key is not a valid base58-check SV2 key"))?;
            (Scheme::Sv2(key), "/")
        } else {
            (scheme, path)
        };
        Ok(PoolUrl {
            scheme,
            host: host.to_string(),
            port,
            path: path.to_string(),
        })
    }
}

impl fmt::Display for PoolUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        match self.scheme {
            Scheme::Tcp => write!(f, "stratum+tcp://{host}:{}", self.port),
            Scheme::Tls => write!(f, "stratum+ssl://{host}:{}", self.port),
            Scheme::Ws => write!(f, "ws://{host}:{}{}", self.port, self.path),
            Scheme::Wss => write!(f, "wss://{host}:{}{}", self.port, self.path),
            Scheme::Sv2(key) => write!(f, "stratum2+tcp://{host}:{}/{key}", self.port),
        }
    }
}

/// How TLS servers are trusted.
#[derive(Clone, Debug, Default)]
pub struct TlsOptions {
    /// SHA-256 of the server's leaf certificate (DER). When set, the chain is not checked
    /// against roots (self-signed pool certificates work) but the pin must match exactly.
    pub fingerprint: Option<[u8; 32]>,
    /// Accept any certificate when no `fingerprint` is given. Only for testing: the
    /// connection is encrypted but not authenticated.
    pub insecure: bool,
    /// Extra trusted roots (DER) in addition to the system's.
    pub extra_roots: Vec<Vec<u8>>,
}

/// Parses a fingerprint as 64 hex digits, with or without ':' separators.
pub fn parse_fingerprint(s: &str) -> Result<[u8; 32], String> {
    let clean: String = s.chars().filter(|c| *c != ':').collect();
    let v = hex::decode(&clean).map_err(|_| format!("TLS fingerprint {s:?} is not hex"))?;
    v.try_into()
        .map_err(|_| "TLS fingerprint must be a SHA-256 (32 bytes)".to_string())
}

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("connect to {0}: timed out")]
    Timeout(String),
    #[error("connect to {url}: {source}")]
    Io { url: String, source: std::io::Error },
    #[error("TLS setup: {0}")]
    TlsConfig(String),
    #[error("WebSocket handshake with {url}: {reason}")]
    WebSocket { url: String, reason: String },
    #[error("{0} is a Stratum V2 pool: it has no line connection")]
    WrongProtocol(String),
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Builds the rustls client configuration for `opts`.
pub fn client_tls_config(opts: &TlsOptions) -> Result<ClientConfig, ConnectError> {
    let builder = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| ConnectError::TlsConfig(e.to_string()))?;
    if opts.insecure || opts.fingerprint.is_some() {
        let verifier = PinnedVerifier {
            // A pin is always checked: `insecure` only stands in for a missing one, it never
            // silently drops it.
            pin: opts.fingerprint,
            provider: provider(),
        };
        return Ok(builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(verifier))
            .with_no_client_auth());
    }
    let mut roots = RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    for cert in native.certs {
        // A malformed system certificate must not stop the others from loading.
        let _ = roots.add(cert);
    }
    for der in &opts.extra_roots {
        roots
            .add(CertificateDer::from(der.clone()))
            .map_err(|e| ConnectError::TlsConfig(format!("extra root: {e}")))?;
    }
    if roots.is_empty() {
        return Err(ConnectError::TlsConfig(
            "no trusted root certificates found (install ca-certificates, or use --tls-fingerprint)".into(),
        ));
    }
    Ok(builder.with_root_certificates(roots).with_no_client_auth())
}

/// Verifies a server by the SHA-256 of its leaf certificate (or not at all when `pin` is
/// `None`, the explicit insecure mode); handshake signatures are always checked so the peer
/// must hold the certificate's key.
#[derive(Debug)]
struct PinnedVerifier {
    pin: Option<[u8; 32]>,
    provider: Arc<rustls::crypto::CryptoProvider>,
}

impl ServerCertVerifier for PinnedVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self.pin {
            None => Ok(ServerCertVerified::assertion()),
            Some(pin) => {
                let got: [u8; 32] = Sha256::digest(end_entity.as_ref()).into();
                if got == pin {
                    Ok(ServerCertVerified::assertion())
                } else {
                    Err(rustls::Error::General(format!(
                        "certificate fingerprint {} does not match the pinned one",
                        hex::encode(got)
                    )))
                }
            }
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// Opens a connection to `url`, choosing the transport by scheme.
pub async fn connect(
    url: &PoolUrl,
    tls: &TlsOptions,
    timeout: Duration,
) -> Result<Connection, ConnectError> {
    let name = url.to_string();
    if let Scheme::Sv2(_) = url.scheme {
        return Err(ConnectError::WrongProtocol(name));
    }
    let fut = async {
        let tcp = TcpStream::connect((url.host.as_str(), url.port))
            .await
            .map_err(|source| ConnectError::Io {
                url: name.clone(),
                source,
            })?;
        let _ = tcp.set_nodelay(true);
        let stream: BoxStream = match url.scheme {
            Scheme::Tcp | Scheme::Ws | Scheme::Sv2(_) => Box::new(tcp),
            Scheme::Tls | Scheme::Wss => {
                let config = client_tls_config(tls)?;
                let server_name = ServerName::try_from(url.host.clone()).map_err(|e| {
                    ConnectError::TlsConfig(format!("server name {}: {e}", url.host))
                })?;
                let s = tokio_rustls::TlsConnector::from(Arc::new(config))
                    .connect(server_name, tcp)
                    .await
                    .map_err(|source| ConnectError::Io {
                        url: name.clone(),
                        source,
                    })?;
                Box::new(s)
            }
        };
        match url.scheme {
            Scheme::Tcp | Scheme::Tls | Scheme::Sv2(_) => {
                Ok(Connection::from_stream(stream, MAX_LINE))
            }
            Scheme::Ws | Scheme::Wss => {
                let ws_url = format!(
                    "{}://{}:{}{}",
                    if url.scheme == Scheme::Ws {
                        "ws"
                    } else {
                        "wss"
                    },
                    if url.host.contains(':') {
                        format!("[{}]", url.host)
                    } else {
                        url.host.clone()
                    },
                    url.port,
                    url.path
                );
                let (ws, _resp) =
                    tokio_tungstenite::client_async_with_config(ws_url, stream, Some(ws_config()))
                        .await
                        .map_err(|e| ConnectError::WebSocket {
                            url: name.clone(),
                            reason: e.to_string(),
                        })?;
                Ok(Connection::from_ws(ws, MAX_LINE))
            }
        }
    };
    tokio::time::timeout(timeout, fut)
        .await
        .map_err(|_| ConnectError::Timeout(url.to_string()))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_pool_urls() {
        let u: PoolUrl = "stratum+tcp://pool.example.com:3333".parse().unwrap();
        assert_eq!(
            (u.scheme, u.host.as_str(), u.port),
            (Scheme::Tcp, "pool.example.com", 3333)
        );
        let u: PoolUrl = "stratum+ssl://[::1]:443".parse().unwrap();
        assert_eq!(
            (u.scheme, u.host.as_str(), u.port),
            (Scheme::Tls, "::1", 443)
        );
        assert_eq!(u.to_string(), "stratum+ssl://[::1]:443");
        let u: PoolUrl = "wss://p:8443/stratum".parse().unwrap();
        assert_eq!((u.scheme, u.path.as_str()), (Scheme::Wss, "/stratum"));
        let u: PoolUrl = "127.0.0.1:3333".parse().unwrap();
        assert_eq!(u.scheme, Scheme::Tcp);
        for bad in [
            "http://x:1",
            "stratum+tcp://x",
            "stratum+tcp://:1",
            "stratum+tcp://x:0",
            "stratum+tcp://u:p@x:1",
            "x:99999",
        ] {
            assert!(bad.parse::<PoolUrl>().is_err(), "{bad}");
        }
    }

    #[test]
    fn fingerprints() {
        let h = "ab".repeat(32);
        assert_eq!(parse_fingerprint(&h).unwrap(), [0xab; 32]);
        let colons = vec!["AB"; 32].join(":");
        assert_eq!(parse_fingerprint(&colons).unwrap(), [0xab; 32]);
        assert!(parse_fingerprint("abcd").is_err());
    }
}

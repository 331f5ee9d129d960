//! Stratum V2 plumbing the client and the built-in pool share: the authority keys and their
//! base58-check text form, the Noise NX handshake (initiator and responder, each bounded in
//! time), and an encrypted frame connection whose reads are bounded in size.
//!
//! The handshake and the frame codec are the Stratum Reference Implementation's own
//! (`noise_sv2`, `codec_sv2`, `framing_sv2`); this module only feeds them bytes from a socket
//! and decides how long to wait and how much to accept. Messages are `mining_sv2` /
//! `common_messages_sv2` structs encoded by `binary_sv2`.
//!
//! Reads run on a task of their own ([`FrameReader`]): the codec wants exact byte counts, and
//! a read that a `select!` cancels halfway would lose bytes. The task hands whole frames (or
//! the error that ended the connection) to a channel, which is safe to wait on anywhere.

use std::fmt;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use binary_sv2::{GetSize, Serialize};
use codec_sv2::{Decrypted, Handshake, NoiseDecoder, NoiseEncoder, TransportEncryptState};
use framing_sv2::framing::MessageFrame;
use noise_sv2::{ELLSWIFT_ENCODING_SIZE, INITIATOR_EXPECTED_HANDSHAKE_MESSAGE_SIZE};
use noise_sv2::{Initiator, Responder};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::work::sha256d;

/// The largest frame (header and payload, encrypted) either side accepts. Mining messages
/// on a standard or extended channel are far smaller (an extended job's coinbase parts are
/// the largest, a few hundred bytes in practice); anything beyond is a broken or hostile
/// peer, and is refused before it is buffered.
pub const MAX_FRAME: usize = 64 * 1024;

/// Frames decoded but not yet taken by the session; the reader waits beyond it.
const FRAME_QUEUE: usize = 64;

/// How long the built-in pool's certificates are valid from the handshake on.
pub const CERT_VALIDITY: Duration = Duration::from_secs(3600);

/// Errors of a Stratum V2 connection. Texts the peer sent never appear here unescaped.
#[derive(Debug, thiserror::Error)]
pub enum Sv2Error {
    #[error("connect to {0}: timed out")]
    ConnectTimeout(String),
    #[error("connect to {url}: {source}")]
    Connect { url: String, source: std::io::Error },
    #[error("the Noise handshake did not finish within {0:?}")]
    HandshakeTimeout(Duration),
    #[error(
        "the pool's certificate is not signed by authority key {0}: wrong key in the URL, or not that pool"
    )]
    WrongAuthority(String),
    #[error("Noise handshake failed: {0}")]
    Handshake(String),
    #[error("the peer closed the connection during the Noise handshake")]
    HandshakeClosed,
    #[error("connection lost: {0}")]
    Io(#[from] std::io::Error),
    #[error("the peer closed the connection")]
    Closed,
    #[error("the connection ended in the middle of a frame ({got} bytes of it read)")]
    CutMidFrame { got: usize },
    #[error("a frame larger than {MAX_FRAME} bytes: refused")]
    Oversized,
    #[error("a frame that does not decrypt or decode: {0}")]
    BadFrame(String),
    #[error("the peer took no data for {0:?}: it stopped reading")]
    WriteTimeout(Duration),
    #[error("cannot encode {what}: {reason}")]
    Encode { what: &'static str, reason: String },
    #[error("malformed {what} message: {reason}")]
    Decode { what: &'static str, reason: String },
    #[error("the reader task stopped")]
    ReaderGone,
}

// ---------------------------------------------------------------------------------------------
// Keys

/// Version of the authority public key encoding (the first two bytes, little-endian).
const PUBKEY_VERSION: u16 = 1;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("not base58")]
    NotBase58,
    #[error("base58 checksum mismatch")]
    Checksum,
    #[error("expected {expected} bytes, got {got}")]
    Length { expected: usize, got: usize },
    #[error("key version {0}, expected {PUBKEY_VERSION}")]
    Version(u16),
    #[error("not a point of secp256k1")]
    NotOnCurve,
    #[error("not a valid secp256k1 secret key")]
    BadSecret,
}

/// A pool's authority public key: the x-only secp256k1 key whose signature on the Noise
/// certificate proves the pool is the one the URL names. Text form: base58-check of the
/// version (1, two bytes little-endian) followed by the 32 key bytes, as the SV2
/// specification and the reference implementation write it.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct AuthorityPublicKey([u8; 32]);

impl AuthorityPublicKey {
    /// From the 32 x-only bytes; `None` when they are not a point of the curve.
    pub fn from_bytes(bytes: [u8; 32]) -> Option<Self> {
        secp256k1::XOnlyPublicKey::from_slice(&bytes)
            .ok()
            .map(|_| AuthorityPublicKey(bytes))
    }

    pub fn to_bytes(&self) -> [u8; 32] {
        self.0
    }
}

impl FromStr for AuthorityPublicKey {
    type Err = KeyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let raw = base58check_decode(s)?;
        if raw.len() != 34 {
            return Err(KeyError::Length {
                expected: 34,
                got: raw.len(),
            });
        }
        let version = u16::from_le_bytes([raw[0], raw[1]]);
        if version != PUBKEY_VERSION {
            return Err(KeyError::Version(version));
        }
        let mut key = [0u8; 32];
        key.copy_from_slice(&raw[2..]);
        AuthorityPublicKey::from_bytes(key).ok_or(KeyError::NotOnCurve)
    }
}

impl fmt::Display for AuthorityPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut raw = Vec::with_capacity(34);
        raw.extend_from_slice(&PUBKEY_VERSION.to_le_bytes());
        raw.extend_from_slice(&self.0);
        f.write_str(&base58check_encode(&raw))
    }
}

impl fmt::Debug for AuthorityPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "AuthorityPublicKey({self})")
    }
}

/// The pool's authority keypair. `Debug` leaves the secret out; the text form of the secret
/// (base58-check of its 32 bytes) is the reference implementation's, so a key file can be
/// shared with its tools.
#[derive(Clone)]
pub struct AuthorityKeypair {
    public: AuthorityPublicKey,
    secret: [u8; 32],
}

impl fmt::Debug for AuthorityKeypair {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthorityKeypair")
            .field("public", &self.public)
            .finish_non_exhaustive()
    }
}

impl AuthorityKeypair {
    /// A fresh random keypair.
    pub fn generate() -> Self {
        use rand::Rng;
        let mut rng = rand::rng();
        loop {
            // All but a negligible fraction of 32-byte strings are valid secrets.
            if let Ok(k) = Self::from_secret(rng.random()) {
                return k;
            }
        }
    }

    pub fn from_secret(secret: [u8; 32]) -> Result<Self, KeyError> {
        let secp = secp256k1::Secp256k1::signing_only();
        let sk = secp256k1::SecretKey::from_slice(&secret).map_err(|_| KeyError::BadSecret)?;
        let kp = secp256k1::Keypair::from_secret_key(&secp, &sk);
        let public = AuthorityPublicKey(kp.x_only_public_key().0.serialize());
        Ok(AuthorityKeypair { public, secret })
    }

    /// From the base58-check text of the secret key.
    pub fn from_secret_text(s: &str) -> Result<Self, KeyError> {
        let raw = base58check_decode(s)?;
        let secret: [u8; 32] = raw.as_slice().try_into().map_err(|_| KeyError::Length {
            expected: 32,
            got: raw.len(),
        })?;
        Self::from_secret(secret)
    }

    pub fn public(&self) -> AuthorityPublicKey {
        self.public
    }

    pub fn secret_text(&self) -> String {
        base58check_encode(&self.secret)
    }

    /// Reads the keypair kept in `path`, or makes one and writes it there (owner-only on
    /// Unix) when the file does not exist yet: the pool's key, and so its URL, survive
    /// restarts.
    pub fn load_or_create(path: &Path) -> Result<Self, String> {
        match std::fs::read_to_string(path) {
            Ok(text) => Self::parse_file(&text).map_err(|e| format!("{}: {e}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let kp = Self::generate();
                let text = format!(
                    "# Stratum V2 authority key of the rigworker built-in pool. Keep it secret:\n\
                     # whoever holds it can impersonate the pool.\n\
                     secret = {}\npublic = {}\n",
                    kp.secret_text(),
                    kp.public
                );
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
                }
                write_private(path, text.as_bytes())
                    .map_err(|e| format!("{}: {e}", path.display()))?;
                Ok(kp)
            }
            Err(e) => Err(format!("{}: {e}", path.display())),
        }
    }

    /// The key file: `secret = KEY` (the public line is informational and must agree).
    fn parse_file(text: &str) -> Result<Self, String> {
        let field = |name: &str| {
            text.lines()
                .filter_map(|l| l.split_once('='))
                .find(|(k, _)| k.trim() == name)
                .map(|(_, v)| v.trim().to_string())
        };
        let secret = field("secret").ok_or("no `secret = ...` line")?;
        let kp = Self::from_secret_text(&secret).map_err(|e| format!("secret key: {e}"))?;
        if let Some(public) = field("public")
            && public != kp.public.to_string()
        {
            return Err("the public key does not belong to the secret key".into());
        }
        Ok(kp)
    }
}

#[cfg(unix)]
fn write_private(path: &Path, data: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(data)
}

#[cfg(not(unix))]
fn write_private(path: &Path, data: &[u8]) -> std::io::Result<()> {
    std::fs::write(path, data)
}

const BASE58: &[u8; 58] = b"123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";

/// Base58 of `data` followed by the first 4 bytes of its SHA-256d (Bitcoin's base58-check).
pub fn base58check_encode(data: &[u8]) -> String {
    let mut full = data.to_vec();
    full.extend_from_slice(&sha256d(data).0[..4]);
    let zeros = full.iter().take_while(|b| **b == 0).count();
    // Base-58 digits, least significant first.
    let mut digits: Vec<u8> = Vec::with_capacity(full.len() * 138 / 100 + 1);
    for &byte in &full[zeros..] {
        let mut carry = u32::from(byte);
        for d in digits.iter_mut() {
            carry += u32::from(*d) << 8;
            *d = (carry % 58) as u8;
            carry /= 58;
        }
        while carry > 0 {
            digits.push((carry % 58) as u8);
            carry /= 58;
        }
    }
    let mut s = String::with_capacity(zeros + digits.len());
    s.extend(std::iter::repeat_n('1', zeros));
    s.extend(
        digits
            .iter()
            .rev()
            .map(|d| char::from(BASE58[usize::from(*d)])),
    );
    s
}

/// The inverse of [`base58check_encode`]; refuses a wrong checksum. Keys are short: longer
/// input is refused before any arithmetic.
pub fn base58check_decode(s: &str) -> Result<Vec<u8>, KeyError> {
    if s.len() > 128 {
        return Err(KeyError::Length {
            expected: 38,
            got: s.len() * 3 / 4,
        });
    }
    let zeros = s.bytes().take_while(|c| *c == b'1').count();
    // Bytes, least significant first.
    let mut bytes: Vec<u8> = Vec::with_capacity(s.len());
    for c in s.bytes().skip(zeros) {
        let mut carry = BASE58
            .iter()
            .position(|b| *b == c)
            .ok_or(KeyError::NotBase58)? as u32;
        for b in bytes.iter_mut() {
            carry += u32::from(*b) * 58;
            *b = (carry & 0xff) as u8;
            carry >>= 8;
        }
        while carry > 0 {
            bytes.push((carry & 0xff) as u8);
            carry >>= 8;
        }
    }
    let mut full = vec![0u8; zeros];
    full.extend(bytes.iter().rev());
    if full.len() < 4 {
        return Err(KeyError::Checksum);
    }
    let (data, check) = full.split_at(full.len() - 4);
    if sha256d(data).0[..4] != *check {
        return Err(KeyError::Checksum);
    }
    Ok(data.to_vec())
}

// ---------------------------------------------------------------------------------------------
// Connection

/// One decrypted frame: the header's fields and the (still binary_sv2-encoded) payload.
#[derive(Debug)]
pub struct Frame {
    pub msg_type: u8,
    pub ext_type: u16,
    pub channel_msg: bool,
    pub payload: Vec<u8>,
}

impl Frame {
    /// Decodes the payload as `T` and hands it to `f` (SV2 messages borrow from the bytes, so
    /// they are turned into what the caller keeps inside `f`).
    pub fn decode<'a, T: binary_sv2::Decodable<'a>, R>(
        &'a mut self,
        what: &'static str,
        f: impl FnOnce(T) -> R,
    ) -> Result<R, Sv2Error> {
        binary_sv2::from_bytes::<T>(&mut self.payload)
            .map(f)
            .map_err(|e| Sv2Error::Decode {
                what,
                reason: format!("{e:?}"),
            })
    }
}

/// The receiving half: frames from the reader task, in order, then the error that ended it.
pub struct FrameReader {
    rx: mpsc::Receiver<Result<Frame, Sv2Error>>,
    task: JoinHandle<()>,
}

impl Drop for FrameReader {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl FrameReader {
    /// The next frame; cancel-safe (a frame is either returned or stays queued).
    pub async fn next(&mut self) -> Result<Frame, Sv2Error> {
        match self.rx.recv().await {
            Some(r) => r,
            None => Err(Sv2Error::ReaderGone),
        }
    }
}

/// The sending half: encrypts and writes one message at a time, each write bounded.
pub struct FrameWriter {
    half: OwnedWriteHalf,
    encoder: NoiseEncoder,
    state: TransportEncryptState,
    write_timeout: Duration,
    /// A write failed or timed out: the stream may hold half a frame.
    pub failed: bool,
}

impl FrameWriter {
    /// Sends `msg` as a frame of `msg_type` (extension 0).
    pub async fn send<T: Serialize + GetSize>(
        &mut self,
        what: &'static str,
        msg: T,
        msg_type: u8,
        channel_msg: bool,
    ) -> Result<(), Sv2Error> {
        let bytes = self.encode(what, msg, msg_type, channel_msg)?;
        self.write_raw(&bytes).await
    }

    /// The encrypted bytes of `msg` as a frame, not written: the cipher state moves on, so
    /// they must be written (tests write part of them to play a connection cut mid-frame).
    pub fn encode<T: Serialize + GetSize>(
        &mut self,
        what: &'static str,
        msg: T,
        msg_type: u8,
        channel_msg: bool,
    ) -> Result<Vec<u8>, Sv2Error> {
        let encode_err = |reason: String| Sv2Error::Encode { what, reason };
        let frame = MessageFrame::from_message(msg, msg_type, 0, channel_msg)
            .map_err(|e| encode_err(format!("{e:?}")))?;
        let bytes = self
            .encoder
            .encode_transport(frame, &mut self.state)
            .map_err(|e| encode_err(e.to_string()))?;
        let bytes: &[u8] = bytes.as_ref();
        Ok(bytes.to_vec())
    }

    /// Writes bytes as they are (tests use it to send what a broken peer would).
    pub async fn write_raw(&mut self, bytes: &[u8]) -> Result<(), Sv2Error> {
        let r = write_bounded(&mut self.half, bytes, self.write_timeout).await;
        if r.is_err() {
            self.failed = true;
        }
        r
    }

    /// Closes our side (bounded: the peer may not read).
    pub async fn shutdown(&mut self) {
        if !self.failed {
            let _ = tokio::time::timeout(Duration::from_secs(1), self.half.shutdown()).await;
        }
    }
}

async fn write_bounded(
    half: &mut OwnedWriteHalf,
    bytes: &[u8],
    limit: Duration,
) -> Result<(), Sv2Error> {
    let w = async {
        half.write_all(bytes).await?;
        half.flush().await
    };
    if limit.is_zero() {
        return w.await.map_err(Sv2Error::Io);
    }
    match tokio::time::timeout(limit, w).await {
        Ok(r) => r.map_err(Sv2Error::Io),
        Err(_) => Err(Sv2Error::WriteTimeout(limit)),
    }
}

/// Connects to `host:port` within `timeout`.
pub async fn connect_tcp(host: &str, port: u16, timeout: Duration) -> Result<TcpStream, Sv2Error> {
    let url = format!("{host}:{port}");
    let tcp = tokio::time::timeout(timeout, TcpStream::connect((host, port)))
        .await
        .map_err(|_| Sv2Error::ConnectTimeout(url.clone()))?
        .map_err(|source| Sv2Error::Connect { url, source })?;
    let _ = tcp.set_nodelay(true);
    Ok(tcp)
}

/// The miner's side of the Noise NX handshake: refuses a pool whose certificate `authority`
/// did not sign. The whole exchange is bounded by `timeout` (zero: unbounded).
pub async fn initiator_handshake(
    tcp: TcpStream,
    authority: AuthorityPublicKey,
    timeout: Duration,
    write_timeout: Duration,
) -> Result<(FrameReader, FrameWriter), Sv2Error> {
    let (mut read, mut write) = tcp.into_split();
    let mut encoder = NoiseEncoder::new();
    let exchange = async {
        let initiator = Initiator::from_raw_k(authority.to_bytes())
            .map_err(|e| Sv2Error::Handshake(format!("{e:?}")))?;
        let (first, hs) = Handshake::initiator(initiator)
            .step_0()
            .map_err(|e| Sv2Error::Handshake(e.to_string()))?;
        let first = encoder.encode_handshake(first);
        write_bounded(&mut write, first.as_ref(), write_timeout).await?;
        let mut answer = [0u8; INITIATOR_EXPECTED_HANDSHAKE_MESSAGE_SIZE];
        read_handshake(&mut read, &mut answer).await?;
        hs.step_2(answer).map_err(|e| match e {
            codec_sv2::Error::NoiseSv2Error(noise_sv2::Error::InvalidCertificate(_)) => {
                Sv2Error::WrongAuthority(authority.to_string())
            }
            other => Sv2Error::Handshake(other.to_string()),
        })
    };
    let transport = bounded(timeout, exchange).await?;
    Ok(finish(read, write, encoder, transport, write_timeout))
}

/// The pool's side of the Noise NX handshake, with a certificate `authority` signs.
pub async fn responder_handshake(
    tcp: TcpStream,
    authority: &AuthorityKeypair,
    timeout: Duration,
    write_timeout: Duration,
) -> Result<(FrameReader, FrameWriter), Sv2Error> {
    let (mut read, mut write) = tcp.into_split();
    let mut encoder = NoiseEncoder::new();
    let exchange = async {
        let responder = Responder::from_authority_kp(
            &authority.public.to_bytes(),
            &authority.secret,
            CERT_VALIDITY,
        )
        .map_err(|e| Sv2Error::Handshake(format!("{e:?}")))?;
        let mut first = [0u8; ELLSWIFT_ENCODING_SIZE];
        read_handshake(&mut read, &mut first).await?;
        let (answer, transport) = Handshake::responder(responder)
            .step_1(first)
            .map_err(|e| Sv2Error::Handshake(e.to_string()))?;
        let answer = encoder.encode_handshake(answer);
        write_bounded(&mut write, answer.as_ref(), write_timeout).await?;
        Ok(transport)
    };
    let transport = bounded(timeout, exchange).await?;
    Ok(finish(read, write, encoder, transport, write_timeout))
}

async fn bounded<T>(
    timeout: Duration,
    f: impl Future<Output = Result<T, Sv2Error>>,
) -> Result<T, Sv2Error> {
    if timeout.is_zero() {
        return f.await;
    }
    tokio::time::timeout(timeout, f)
        .await
        .map_err(|_| Sv2Error::HandshakeTimeout(timeout))?
}

async fn read_handshake(read: &mut OwnedReadHalf, buf: &mut [u8]) -> Result<(), Sv2Error> {
    match read.read_exact(buf).await {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Err(Sv2Error::HandshakeClosed),
        Err(e) => Err(Sv2Error::Io(e)),
    }
}

fn finish(
    read: OwnedReadHalf,
    write: OwnedWriteHalf,
    encoder: NoiseEncoder,
    transport: codec_sv2::Transport,
    write_timeout: Duration,
) -> (FrameReader, FrameWriter) {
    let (state, decrypt) = transport.split();
    let (tx, rx) = mpsc::channel(FRAME_QUEUE);
    let task = tokio::spawn(read_frames(read, decrypt, tx));
    (
        FrameReader { rx, task },
        FrameWriter {
            half: write,
            encoder,
            state,
            write_timeout,
            failed: false,
        },
    )
}

/// Reads, decrypts and forwards frames until the connection ends or breaks; the last item
/// sent is the reason.
async fn read_frames(
    mut read: OwnedReadHalf,
    mut state: codec_sv2::TransportDecryptState,
    tx: mpsc::Sender<Result<Frame, Sv2Error>>,
) {
    let mut decoder = NoiseDecoder::new();
    // Bytes of the current frame read so far.
    let mut got = 0usize;
    let end = loop {
        let want = decoder.writable_len();
        if got + want > MAX_FRAME {
            break Sv2Error::Oversized;
        }
        let buf = decoder.writable();
        match read.read_exact(buf).await {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
                break if got == 0 {
                    Sv2Error::Closed
                } else {
                    Sv2Error::CutMidFrame { got }
                };
            }
            Err(e) => break Sv2Error::Io(e),
        }
        got += want;
        match decoder.next_transport_frame(state) {
            Ok(Decrypted::Frame(mut frame, next)) => {
                state = next;
                got = 0;
                let header = frame.header();
                let f = Frame {
                    msg_type: header.msg_type(),
                    ext_type: header.ext_type_without_channel_msg(),
                    channel_msg: header.channel_msg(),
                    payload: frame.payload().to_vec(),
                };
                if tx.send(Ok(f)).await.is_err() {
                    return;
                }
            }
            Ok(Decrypted::Incomplete(_, next)) => state = next,
            // The cipher state is gone with a failed decryption: nothing after it can be read.
            Err(e) => break Sv2Error::BadFrame(e.to_string()),
        }
    };
    let _ = tx.send(Err(end)).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    // The reference implementation's test authority keys (codec_sv2's test_utils).
    const PUBLIC: &str = "9auqWEzQDVyd2oe1JVGFLMLHZtCo2FFqZwtKA5gd9xbuEu7PH72";
    const SECRET: &str = "mkDLTBBRxdBv998612qipDYoTK3YUrqLe8uWw7gu3iXbSrn2n";

    #[test]
    fn reference_keys_decode_and_belong_together() {
        let public: AuthorityPublicKey = PUBLIC.parse().unwrap();
        assert_eq!(public.to_string(), PUBLIC);
        let kp = AuthorityKeypair::from_secret_text(SECRET).unwrap();
        assert_eq!(kp.public(), public);
        assert_eq!(kp.secret_text(), SECRET);
    }

    #[test]
    fn bad_keys_are_refused() {
        // One character changed: the checksum catches it.
        let mut wrong = PUBLIC.to_string();
        wrong.replace_range(5..6, if &PUBLIC[5..6] == "z" { "y" } else { "z" });
        assert_eq!(wrong.parse::<AuthorityPublicKey>(), Err(KeyError::Checksum));
        assert_eq!(
            "0OIl".parse::<AuthorityPublicKey>(),
            Err(KeyError::NotBase58)
        );
        // A secret key is not a public key.
        assert!(SECRET.parse::<AuthorityPublicKey>().is_err());
        assert!("1".repeat(500).parse::<AuthorityPublicKey>().is_err());
    }

    #[test]
    fn generated_keys_round_trip_through_their_file() {
        let dir = std::env::temp_dir().join(format!("rigworker-sv2-key-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("authority.key");
        let a = AuthorityKeypair::load_or_create(&path).unwrap();
        let b = AuthorityKeypair::load_or_create(&path).unwrap();
        assert_eq!(a.public(), b.public());
        assert_eq!(
            a.public().to_string().parse::<AuthorityPublicKey>(),
            Ok(a.public())
        );
        std::fs::write(&path, "secret = nonsense\n").unwrap();
        assert!(AuthorityKeypair::load_or_create(&path).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn base58_leading_zeros() {
        let data = [0u8, 0, 1, 2, 3];
        let s = base58check_encode(&data);
        assert!(s.starts_with("11"));
        assert_eq!(base58check_decode(&s).unwrap(), data);
    }
}

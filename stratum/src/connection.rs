//! A `Connection` reads and writes whole Stratum lines over any transport.
//!
//! Over a byte stream, frames are newline-delimited; over WebSocket, each text message carries
//! one or more lines. Either way a line longer than the limit is a protocol error and the
//! bytes of that line are discarded as they arrive, so a peer cannot make us buffer without
//! bound. `read_line` is cancel-safe (all partial input lives in the connection's own buffer),
//! so it can sit in a `tokio::select!` next to timers and outgoing work.

use std::collections::VecDeque;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use crate::transport::BoxStream;

/// Longest line accepted: 64 KiB (the largest real notify is a few KiB).
pub const MAX_LINE: usize = 64 * 1024;

pub(crate) fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .max_message_size(Some(MAX_LINE))
        .max_frame_size(Some(MAX_LINE))
}

#[derive(Debug, thiserror::Error)]
pub enum ConnectionError {
    #[error("line longer than {0} bytes")]
    LineTooLong(usize),
    #[error("line is not UTF-8")]
    NotUtf8,
    #[error("connection closed in the middle of a line")]
    Truncated,
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("WebSocket: {0}")]
    WebSocket(String),
}

impl ConnectionError {
    /// Whether the connection can still be used after this error (a bad line was skipped).
    pub fn is_recoverable(&self) -> bool {
        matches!(
            self,
            ConnectionError::LineTooLong(_) | ConnectionError::NotUtf8
        )
    }
}

enum Transport {
    Stream(BoxStream),
    Ws(Box<WebSocketStream<BoxStream>>),
}

pub struct Connection {
    transport: Transport,
    max_line: usize,
    buf: Vec<u8>,
    /// Where the unread bytes of `buf` start: lines are taken by moving it, and the bytes before
    /// it are dropped only once they are half the buffer, so a flood of tiny lines costs linear
    /// time (draining each line moved the rest of the buffer: quadratic).
    start: usize,
    /// Discarding the rest of an over-long line until its newline arrives.
    skipping: bool,
    /// Lines already split out of a WebSocket message.
    pending: VecDeque<String>,
}

impl Connection {
    pub fn from_stream(stream: BoxStream, max_line: usize) -> Self {
        Connection {
            transport: Transport::Stream(stream),
            max_line,
            buf: Vec::new(),
            start: 0,
            skipping: false,
            pending: VecDeque::new(),
        }
    }

    pub fn from_ws(ws: WebSocketStream<BoxStream>, max_line: usize) -> Self {
        Connection {
            transport: Transport::Ws(Box::new(ws)),
            max_line,
            buf: Vec::new(),
            start: 0,
            skipping: false,
            pending: VecDeque::new(),
        }
    }

    /// The next line without its terminator; `Ok(None)` on a clean close. Empty lines are
    /// returned too (the caller decides what they mean). After a recoverable error the
    /// connection is still usable.
    pub async fn read_line(&mut self) -> Result<Option<String>, ConnectionError> {
        loop {
            if let Some(line) = self.pending.pop_front() {
                return Ok(Some(line));
            }
            if let Some(r) = self.take_buffered_line() {
                return r.map(Some);
            }
            match &mut self.transport {
                Transport::Stream(s) => {
                    if self.start > 0 && self.start >= self.buf.len() / 2 {
                        self.buf.drain(..self.start);
                        self.start = 0;
                    }
                    self.buf.reserve(4096);
                    let n = s.read_buf(&mut self.buf).await?;
                    if n == 0 {
                        return if self.buf.len() == self.start || self.skipping {
                            Ok(None)
                        } else {
                            Err(ConnectionError::Truncated)
                        };
                    }
                }
                Transport::Ws(ws) => match ws.next().await {
                    None => return Ok(None),
                    Some(Err(e)) => return Err(ConnectionError::WebSocket(e.to_string())),
                    Some(Ok(Message::Text(t))) => self.split_message(t.as_bytes())?,
                    Some(Ok(Message::Binary(b))) => self.split_message(&b)?,
                    Some(Ok(Message::Close(_))) => return Ok(None),
                    // Pings are answered by tungstenite on the next read or write.
                    Some(Ok(_)) => {}
                },
            }
        }
    }

    fn split_message(&mut self, bytes: &[u8]) -> Result<(), ConnectionError> {
        if bytes.len() > self.max_line {
            return Err(ConnectionError::LineTooLong(self.max_line));
        }
        let text = std::str::from_utf8(bytes).map_err(|_| ConnectionError::NotUtf8)?;
        for l in text.split('\n') {
            let l = l.strip_suffix('\r').unwrap_or(l);
            if !l.trim().is_empty() {
                self.pending.push_back(l.to_string());
            }
        }
        Ok(())
    }

    fn take_buffered_line(&mut self) -> Option<Result<String, ConnectionError>> {
        let unread = &self.buf[self.start..];
        match unread.iter().position(|&b| b == b'\n') {
            Some(i) => {
                let mut line = unread[..=i].to_vec();
                self.start += i + 1;
                if self.start == self.buf.len() {
                    self.buf.clear();
                    self.start = 0;
                }
                if std::mem::take(&mut self.skipping) {
                    // Tail of an over-long line that was already reported.
                    return self.take_buffered_line();
                }
                line.pop();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                if line.len() > self.max_line {
                    return Some(Err(ConnectionError::LineTooLong(self.max_line)));
                }
                Some(String::from_utf8(line).map_err(|_| ConnectionError::NotUtf8))
            }
            None if unread.len() > self.max_line => {
                self.buf.clear();
                self.start = 0;
                if std::mem::replace(&mut self.skipping, true) {
                    None
                } else {
                    Some(Err(ConnectionError::LineTooLong(self.max_line)))
                }
            }
            None if self.skipping => {
                self.buf.clear();
                self.start = 0;
                None
            }
            None => None,
        }
    }

    /// Writes one line (a newline is appended on byte streams) and flushes.
    pub async fn write_line(&mut self, line: &str) -> Result<(), ConnectionError> {
        debug_assert!(!line.contains('\n'));
        match &mut self.transport {
            Transport::Stream(s) => {
                let mut b = Vec::with_capacity(line.len() + 1);
                b.extend_from_slice(line.as_bytes());
                b.push(b'\n');
                s.write_all(&b).await?;
                s.flush().await?;
            }
            Transport::Ws(ws) => {
                ws.send(Message::text(line))
                    .await
                    .map_err(|e| ConnectionError::WebSocket(e.to_string()))?;
            }
        }
        Ok(())
    }

    /// Closes the write side cleanly (FIN / WebSocket close frame).
    pub async fn shutdown(&mut self) {
        match &mut self.transport {
            Transport::Stream(s) => {
                let _ = s.shutdown().await;
            }
            Transport::Ws(ws) => {
                let _ = ws.close(None).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::duplex;

    #[tokio::test]
    async fn lines_limits_and_recovery() {
        let (a, mut b) = duplex(1 << 20);
        let mut c = Connection::from_stream(Box::new(a), 16);
        b.write_all(b"hello\r\n\nx").await.unwrap();
        b.write_all(&[b'y'; 40]).await.unwrap();
        b.write_all(b"\nafter\n\xff\xfe\nlast").await.unwrap();
        drop(b);
        assert_eq!(c.read_line().await.unwrap().as_deref(), Some("hello"));
        assert_eq!(c.read_line().await.unwrap().as_deref(), Some(""));
        assert!(matches!(
            c.read_line().await,
            Err(ConnectionError::LineTooLong(16))
        ));
        assert_eq!(c.read_line().await.unwrap().as_deref(), Some("after"));
        assert!(matches!(c.read_line().await, Err(ConnectionError::NotUtf8)));
        assert!(matches!(
            c.read_line().await,
            Err(ConnectionError::Truncated)
        ));
    }

    /// Many lines, tiny and long, split across reads at every kind of boundary: each comes out
    /// whole and in order, and the buffer holds no more than a read and a partial line.
    #[tokio::test]
    async fn a_flood_of_lines_in_odd_pieces_comes_out_whole() {
        let (a, mut b) = duplex(1 << 10);
        let mut c = Connection::from_stream(Box::new(a), 300);
        let lines: Vec<String> = (0..20_000)
            .map(|i| match i % 5 {
                0 => String::new(),
                1 => "x".into(),
                2 => format!("{{\"id\":{i}}}"),
                3 => "y".repeat(i % 290),
                _ => format!("line {i}"),
            })
            .collect();
        let mut wire = Vec::new();
        for (i, l) in lines.iter().enumerate() {
            wire.extend_from_slice(l.as_bytes());
            wire.extend_from_slice(if i % 3 == 0 { b"\r\n" } else { b"\n" });
        }
        let writer = tokio::spawn(async move {
            let mut rest = &wire[..];
            let mut k = 0usize;
            while !rest.is_empty() {
                let n = [1, 7, 64, 1000, 3][k % 5].min(rest.len());
                b.write_all(&rest[..n]).await.unwrap();
                rest = &rest[n..];
                k += 1;
            }
        });
        for (i, want) in lines.iter().enumerate() {
            let got = c.read_line().await.unwrap();
            assert_eq!(got.as_deref(), Some(want.as_str()), "line {i}");
            assert!(
                c.buf.len() <= 2 * (1024 + 300),
                "buffer holds {}",
                c.buf.len()
            );
        }
        writer.await.unwrap();
        assert_eq!(c.read_line().await.unwrap(), None);
    }

    #[tokio::test]
    async fn endless_line_uses_bounded_memory() {
        let (a, mut b) = duplex(1 << 16);
        let mut c = Connection::from_stream(Box::new(a), 1024);
        let writer = tokio::spawn(async move {
            let chunk = [b'a'; 8192];
            for _ in 0..256 {
                b.write_all(&chunk).await.unwrap();
            }
            b.write_all(b"\nok\n").await.unwrap();
        });
        assert!(matches!(
            c.read_line().await,
            Err(ConnectionError::LineTooLong(1024))
        ));
        assert_eq!(c.read_line().await.unwrap().as_deref(), Some("ok"));
        assert!(
            c.buf.capacity() < 64 * 1024,
            "buffer grew to {}",
            c.buf.capacity()
        );
        writer.await.unwrap();
    }
}

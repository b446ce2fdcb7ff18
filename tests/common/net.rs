//! Loopback ports and plain HTTP to them.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A loopback port nobody listens on right now. Another process may take
/// it before the one it is meant for binds it: where that matters, the
/// caller retries with a new port or starts the child again. (A test that
/// serves in-process binds `127.0.0.1:0` itself and keeps the listener.)
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free loopback port")
}

/// How long a plain request waits for its answer.
const ANSWER_WITHIN: Duration = Duration::from_secs(5);

/// A plain HTTP/1.1 GET to `127.0.0.1:port` (no client library, no proxy):
/// the status and body, or `None` when there is no answer within 5 s.
/// Blocking.
pub fn http_get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(ANSWER_WITHIN)).ok()?;
    s.write_all(request(path).as_bytes()).ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    parse(&text)
}

/// [`http_get`] for async callers (it does not block the runtime).
pub async fn http_get_async(port: u16, path: &str) -> Option<(u16, String)> {
    let exchange = async {
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .ok()?;
        s.write_all(request(path).as_bytes()).await.ok()?;
        let mut bytes = Vec::new();
        s.read_to_end(&mut bytes).await.ok()?;
        parse(&String::from_utf8_lossy(&bytes))
    };
    tokio::time::timeout(ANSWER_WITHIN, exchange)
        .await
        .ok()
        .flatten()
}

/// Whether the service on `port` answers `GET /readyz` with 200. Blocking.
pub fn is_ready(port: u16) -> bool {
    http_get(port, "/readyz").is_some_and(|(s, _)| s == 200)
}

/// [`is_ready`] for async callers.
pub async fn is_ready_async(port: u16) -> bool {
    http_get_async(port, "/readyz")
        .await
        .is_some_and(|(s, _)| s == 200)
}

fn request(path: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
}

fn parse(text: &str) -> Option<(u16, String)> {
    let status = text.split_whitespace().nth(1)?.parse().ok()?;
    let body = text
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_owned();
    Some((status, body))
}

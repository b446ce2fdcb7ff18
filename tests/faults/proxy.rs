//! The fault proxy: sits between a relay and its peer on loopback and, for
//! each request, forwards it faithfully or misbehaves the way networks and
//! overloaded peers do. Headers (`webhook-id`, `webhook-timestamp`,
//! `webhook-signature`, `content-type`) and the body pass unchanged, so the
//! peer's signature check still holds; only delivery is disturbed.
//!
//! It speaks just enough HTTP/1.1 (one request per connection, bodies with
//! `Content-Length`, which is what the relay sends) to be able to close a
//! connection without answering, which a framework would not let it do.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reqwest::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use crate::api::http_client;
use crate::lock;

/// What the proxy does with one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Forward, return the answer.
    Forward,
    /// Close the connection without forwarding or answering.
    DropRequest,
    /// Forward (the peer applies it), then close without answering: the
    /// sender never learns it was delivered.
    DropResponse,
    /// Forward twice (at once or one after the other), return one answer.
    Duplicate,
    /// Wait 50–800 ms, then forward: the peer is slow.
    Delay,
    /// Answer 503 at once, but forward the request 0.2–3 s later anyway: the
    /// sender retries with a newer snapshot that this old one then follows
    /// (reordering).
    Late,
    /// Answer 503 (sometimes with `Retry-After: 1`) without forwarding.
    Unavailable,
    /// Answer 500 without forwarding.
    ServerError,
}

impl Fault {
    pub const ALL: [Fault; 8] = [
        Fault::Forward,
        Fault::DropRequest,
        Fault::DropResponse,
        Fault::Duplicate,
        Fault::Delay,
        Fault::Late,
        Fault::Unavailable,
        Fault::ServerError,
    ];

    /// The name used in `FAULT_WEIGHTS` and in the printed counts.
    pub fn key(self) -> &'static str {
        match self {
            Fault::Forward => "forward",
            Fault::DropRequest => "drop_req",
            Fault::DropResponse => "drop_resp",
            Fault::Duplicate => "dup",
            Fault::Delay => "delay",
            Fault::Late => "late",
            Fault::Unavailable => "503",
            Fault::ServerError => "500",
        }
    }

    fn index(self) -> usize {
        Fault::ALL.iter().position(|f| *f == self).unwrap_or(0)
    }
}

/// Relative weights of the faults, in [`Fault::ALL`] order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Weights(pub [u32; 8]);

impl Default for Weights {
    fn default() -> Self {
        // forward, drop_req, drop_resp, dup, delay, late, 503, 500
        Weights([50, 8, 8, 8, 8, 5, 7, 6])
    }
}

impl Weights {
    /// Parses `forward=50,drop_req=8,…`; kinds not named keep their default.
    pub fn parse(spec: &str) -> Result<Weights, String> {
        let mut w = Weights::default();
        for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (k, v) = part
                .split_once('=')
                .ok_or_else(|| format!("{part:?}: expected KIND=WEIGHT"))?;
            let i = Fault::ALL
                .iter()
                .position(|f| f.key() == k.trim())
                .ok_or_else(|| {
                    let kinds: Vec<_> = Fault::ALL.iter().map(|f| f.key()).collect();
                    format!("unknown fault kind {k:?} (kinds: {})", kinds.join(", "))
                })?;
            w.0[i] = v
                .trim()
                .parse()
                .map_err(|_| format!("{part:?}: weight must be a whole number"))?;
        }
        if w.0.iter().sum::<u32>() == 0 {
            return Err("all weights are zero".into());
        }
        Ok(w)
    }

    fn pick(&self, rng: &mut StdRng) -> Fault {
        let total: u32 = self.0.iter().sum();
        let mut roll = rng.gen_range(0..total);
        for (f, w) in Fault::ALL.iter().zip(self.0) {
            if roll < w {
                return *f;
            }
            roll -= w;
        }
        Fault::Forward
    }
}

impl std::fmt::Display for Weights {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts: Vec<String> = Fault::ALL
            .iter()
            .zip(self.0)
            .map(|(k, w)| format!("{}={w}", k.key()))
            .collect();
        f.write_str(&parts.join(","))
    }
}

/// One fault with its random parameters, drawn under one lock so that a
/// seed gives the same sequence of decisions.
struct Plan {
    fault: Fault,
    delay: Duration,
    concurrent: bool,
    answer_second: bool,
    retry_after: bool,
}

struct Request {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

struct Answer {
    status: u16,
    content_type: Option<String>,
    retry_after: bool,
    body: Vec<u8>,
}

impl Answer {
    fn problem(status: u16, retry_after: bool) -> Answer {
        let title = StatusCode::from_u16(status)
            .ok()
            .and_then(|s| s.canonical_reason())
            .unwrap_or("Error");
        Answer {
            status,
            content_type: Some("application/problem+json".into()),
            retry_after,
            body: serde_json::json!({
                "type": "about:blank", "title": title, "status": status,
                "detail": "injected by the fault proxy", "errors": []
            })
            .to_string()
            .into_bytes(),
        }
    }
}

struct Shared {
    name: &'static str,
    target: String,
    faulty: AtomicBool,
    weights: Weights,
    rng: Mutex<StdRng>,
    counts: [AtomicU64; 8],
    target_down: AtomicU64,
    http: reqwest::Client,
}

/// A running proxy on 127.0.0.1:`port` in front of 127.0.0.1:`target`.
pub struct Proxy {
    pub port: u16,
    shared: Arc<Shared>,
    accept: JoinHandle<()>,
}

/// Hop-by-hop headers, and those reqwest sets itself.
const NOT_FORWARDED: [&str; 8] = [
    "host",
    "content-length",
    "connection",
    "keep-alive",
    "transfer-encoding",
    "te",
    "upgrade",
    "proxy-connection",
];

impl Proxy {
    pub async fn start(name: &'static str, target: u16, weights: Weights, seed: u64) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let port = listener.local_addr().expect("proxy addr").port();
        let shared = Arc::new(Shared {
            name,
            target: format!("http://127.0.0.1:{target}"),
            faulty: AtomicBool::new(true),
            weights,
            rng: Mutex::new(StdRng::seed_from_u64(seed)),
            counts: Default::default(),
            target_down: AtomicU64::new(0),
            // Longer than the relay's own 10 s timeout: the proxy never
            // gives up before the sender does.
            http: http_client(Duration::from_secs(15)),
        });
        let s = shared.clone();
        let accept = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                tokio::spawn(handle(s.clone(), stream));
            }
        });
        Proxy {
            port,
            shared,
            accept,
        }
    }

    /// Turns fault injection on or off (off: every request is forwarded).
    pub fn set_faulty(&self, on: bool) {
        self.shared.faulty.store(on, Ordering::SeqCst);
    }

    /// How many requests met each fault, in [`Fault::ALL`] order.
    pub fn counts(&self) -> [u64; 8] {
        std::array::from_fn(|i| self.shared.counts[i].load(Ordering::Relaxed))
    }

    /// Forwards that failed because the target was down (answered 502).
    pub fn target_down(&self) -> u64 {
        self.shared.target_down.load(Ordering::Relaxed)
    }

    pub fn describe(&self) -> String {
        let c = self.counts();
        let parts: Vec<String> = Fault::ALL
            .iter()
            .zip(c)
            .map(|(f, n)| format!("{}={n}", f.key()))
            .collect();
        format!(
            "proxy {}: requests={} {} target_down={}",
            self.shared.name,
            c.iter().sum::<u64>(),
            parts.join(" "),
            self.target_down()
        )
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

impl Shared {
    fn plan(&self) -> Plan {
        let mut rng = lock(&self.rng);
        let fault = if self.faulty.load(Ordering::SeqCst) {
            self.weights.pick(&mut rng)
        } else {
            Fault::Forward
        };
        let delay = match fault {
            Fault::Late => rng.gen_range(200..=3000),
            _ => rng.gen_range(50..=800),
        };
        Plan {
            fault,
            delay: Duration::from_millis(delay),
            concurrent: rng.gen_bool(0.5),
            answer_second: rng.gen_bool(0.5),
            retry_after: rng.gen_bool(0.5),
        }
    }

    /// Sends `req` to the target; a target that is down answers 502.
    async fn forward(&self, req: &Request) -> Answer {
        match self.try_forward(req).await {
            Some(a) => a,
            None => {
                self.target_down.fetch_add(1, Ordering::Relaxed);
                Answer::problem(502, false)
            }
        }
    }

    async fn try_forward(&self, req: &Request) -> Option<Answer> {
        let method = reqwest::Method::from_bytes(req.method.as_bytes()).ok()?;
        let mut rb = self
            .http
            .request(method, format!("{}{}", self.target, req.path));
        for (k, v) in &req.headers {
            if !NOT_FORWARDED.contains(&k.to_ascii_lowercase().as_str()) {
                rb = rb.header(k.as_str(), v.as_str());
            }
        }
        let res = rb.body(req.body.clone()).send().await.ok()?;
        let status = res.status().as_u16();
        let content_type = res
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = res.bytes().await.ok()?.to_vec();
        Some(Answer {
            status,
            content_type,
            retry_after: false,
            body,
        })
    }
}

async fn handle(shared: Arc<Shared>, mut stream: TcpStream) {
    let Ok(Some(req)) =
        tokio::time::timeout(Duration::from_secs(15), read_request(&mut stream)).await
    else {
        return;
    };
    let plan = shared.plan();
    shared.counts[plan.fault.index()].fetch_add(1, Ordering::Relaxed);
    match plan.fault {
        Fault::Forward => {
            let a = shared.forward(&req).await;
            respond(&mut stream, &a).await;
        }
        // Dropping the stream closes the connection unanswered.
        Fault::DropRequest => {}
        Fault::DropResponse => {
            shared.forward(&req).await;
        }
        Fault::Duplicate => {
            let (a, b) = if plan.concurrent {
                tokio::join!(shared.forward(&req), shared.forward(&req))
            } else {
                let a = shared.forward(&req).await;
                (a, shared.forward(&req).await)
            };
            respond(&mut stream, if plan.answer_second { &b } else { &a }).await;
        }
        Fault::Delay => {
            tokio::time::sleep(plan.delay).await;
            let a = shared.forward(&req).await;
            respond(&mut stream, &a).await;
        }
        Fault::Late => {
            respond(&mut stream, &Answer::problem(503, plan.retry_after)).await;
            tokio::time::sleep(plan.delay).await;
            shared.forward(&req).await;
        }
        Fault::Unavailable => respond(&mut stream, &Answer::problem(503, plan.retry_after)).await,
        Fault::ServerError => respond(&mut stream, &Answer::problem(500, false)).await,
    }
}

/// Reads one request (head and `Content-Length` body); `None` on anything
/// unexpected, which closes the connection.
async fn read_request(stream: &mut TcpStream) -> Option<Request> {
    let mut buf = Vec::with_capacity(16 * 1024);
    let mut chunk = [0u8; 16 * 1024];
    let head_end = loop {
        if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break p;
        }
        if buf.len() > 64 * 1024 {
            return None;
        }
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = std::str::from_utf8(&buf[..head_end]).ok()?;
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let method = first.next()?.to_owned();
    let path = first.next()?.to_owned();
    let mut headers = Vec::new();
    let mut length = 0usize;
    for line in lines {
        let (k, v) = line.split_once(':')?;
        let (k, v) = (k.trim(), v.trim());
        if k.eq_ignore_ascii_case("content-length") {
            length = v.parse().ok()?;
        }
        if k.eq_ignore_ascii_case("transfer-encoding") {
            return None;
        }
        headers.push((k.to_owned(), v.to_owned()));
    }
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < length {
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    body.truncate(length);
    Some(Request {
        method,
        path,
        headers,
        body,
    })
}

async fn respond(stream: &mut TcpStream, a: &Answer) {
    let reason = StatusCode::from_u16(a.status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("");
    let mut head = format!(
        "HTTP/1.1 {} {reason}\r\ncontent-length: {}\r\nconnection: close\r\n",
        a.status,
        a.body.len()
    );
    if let Some(ct) = &a.content_type {
        head.push_str(&format!("content-type: {ct}\r\n"));
    }
    if a.retry_after {
        head.push_str("retry-after: 1\r\n");
    }
    head.push_str("\r\n");
    let _ = stream.write_all(head.as_bytes()).await;
    let _ = stream.write_all(&a.body).await;
    let _ = stream.shutdown().await;
}

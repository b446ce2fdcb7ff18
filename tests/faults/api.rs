//! A small client for the services' HTTP API that says what became of each
//! request: answered, never sent (the service is down), or sent without an
//! answer (it may or may not have acted on it). That three-way split is what
//! lets the checks tell a lost update from a write that was never made.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::Value;

/// Longest a client request may take. Far above any healthy answer: a request
/// that times out is suspicious, and the checks treat its order with care
/// (it may still land later, after newer writes).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// What became of one request.
#[derive(Debug)]
pub enum Reply {
    /// The service answered (the body is `Null` when it is not JSON).
    Answered(StatusCode, Value),
    /// No connection: the request never reached the service.
    Refused,
    /// Sent, but no (complete) answer: it may or may not have been applied.
    /// `timed_out` means the service may still be working on it.
    Lost { timed_out: bool },
}

/// A reqwest client that only ever talks to loopback: no proxy from the
/// environment is used.
pub fn http_client(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .timeout(timeout)
        .connect_timeout(Duration::from_secs(2))
        .build()
        .expect("HTTP client")
}

/// One service's API, with its token.
#[derive(Clone)]
pub struct Api {
    http: reqwest::Client,
    pub base: String,
    token: String,
}

impl Api {
    pub fn new(base: String, token: String) -> Api {
        Api {
            http: http_client(REQUEST_TIMEOUT),
            base,
            token,
        }
    }

    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        idempotency_key: Option<&str>,
    ) -> Reply {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(b);
        }
        if let Some(k) = idempotency_key {
            req = req.header("Idempotency-Key", k);
        }
        let res = match req.send().await {
            Ok(r) => r,
            Err(e) if e.is_connect() => return Reply::Refused,
            Err(e) => {
                return Reply::Lost {
                    timed_out: e.is_timeout(),
                };
            }
        };
        let status = res.status();
        // A cut body means we cannot be sure what the answer was (a create's
        // id, say), so it counts as no answer: the conservative reading.
        match res.bytes().await {
            Ok(bytes) => Reply::Answered(
                status,
                serde_json::from_slice(&bytes).unwrap_or(Value::Null),
            ),
            Err(e) => Reply::Lost {
                timed_out: e.is_timeout(),
            },
        }
    }

    pub async fn get(&self, path: &str) -> Reply {
        self.send(Method::GET, path, None, None).await
    }

    /// GETs until the service answers 200, for at most `within`.
    pub async fn get_ok(&self, path: &str, within: Duration) -> Value {
        let deadline = Instant::now() + within;
        loop {
            let last = match self.get(path).await {
                Reply::Answered(StatusCode::OK, v) => return v,
                other => other,
            };
            assert!(
                Instant::now() < deadline,
                "GET {}{path} did not answer 200 within {within:?}; last: {last:?}",
                self.base
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

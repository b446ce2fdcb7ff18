//! A signed HTTP client for the peer service: every request carries a fresh
//! `webhook-id`, the current time and an HMAC signature (Standard Webhooks).
//! Used by the relay (deliveries) and the reconciler (digests, resends).

use std::time::Duration;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::breaker::Verdict;
use super::signature::{HEADER_ID, HEADER_SIGNATURE, HEADER_TIMESTAMP, Secrets};

/// Why a request to the peer did not produce an answer we can use.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PeerError {
    /// Nothing usable came back: refused, reset, timed out.
    #[error("{0}")]
    Transport(String),
    /// The peer answered with an error status.
    #[error("peer answered {status}{}", if detail.is_empty() { String::new() } else { format!(": {detail}") })]
    Status {
        status: u16,
        detail: String,
        /// From `Retry-After` on 429/503: the peer asks us to wait this long.
        retry_after: Option<Duration>,
    },
    /// A 2xx whose body is not what the protocol says.
    #[error("peer's answer is not understood: {0}")]
    BadAnswer(String),
}

impl PeerError {
    /// True when the peer is up and answered (with an error).
    pub fn is_answer(&self) -> bool {
        matches!(self, PeerError::Status { .. } | PeerError::BadAnswer(_))
    }

    /// How the circuit breaker judges this failure: the peer is down,
    /// overloaded or refusing us (connection error, timeout, 5xx, 429,
    /// 401/403), or it is up and answered about what we sent.
    pub fn verdict(&self) -> Verdict {
        match self {
            PeerError::Transport(_) => Verdict::Failed,
            PeerError::Status { status, .. } => match status {
                401 | 403 | 429 | 500..=599 => Verdict::Failed,
                _ => Verdict::Up,
            },
            PeerError::BadAnswer(_) => Verdict::Up,
        }
    }

    /// True when the failure may come from what was sent (a body the peer
    /// refuses or cannot read), so that sending less of it can help.
    /// Outages, overload (5xx, 429) and bad credentials say nothing about
    /// the items, and splitting would only multiply requests to a peer
    /// that is already struggling.
    pub fn may_be_the_content(&self) -> bool {
        match self {
            PeerError::Status { status, .. } => matches!(status, 400 | 413 | 422),
            PeerError::BadAnswer(_) => true,
            PeerError::Transport(_) => false,
        }
    }

    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            PeerError::Status { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

/// Longest `Retry-After` we honour; a peer cannot park us for longer than
/// the backoff cap.
const MAX_RETRY_AFTER: Duration = super::backoff::CAP;

/// How long a connection to the peer may take to open. On loopback or a
/// LAN it takes milliseconds; a peer that does not accept within this is
/// down, and the breaker should hear so soon.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Debug, Clone)]
pub struct PeerClient {
    client: reqwest::Client,
    base: String,
    secrets: Secrets,
    /// Longest wait for the answer's status and headers.
    answer_timeout: Duration,
}

impl PeerClient {
    /// A client whose requests take at most `timeout` in all, and whose
    /// answers must begin (status and headers) within `answer_timeout`: a
    /// hung peer fails fast instead of holding each request for the whole
    /// `timeout`.
    pub fn new(
        base: &str,
        secrets: Secrets,
        timeout: Duration,
        answer_timeout: Duration,
    ) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(CONNECT_TIMEOUT.min(timeout))
            .pool_idle_timeout(Duration::from_secs(30))
            .build()?;
        Ok(Self {
            client,
            base: base.trim_end_matches('/').to_owned(),
            secrets,
            answer_timeout: answer_timeout.min(timeout),
        })
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    /// POSTs `body` as JSON to `path`, signed, and parses the JSON answer.
    pub async fn post<B: Serialize + ?Sized, R: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<R, PeerError> {
        let body = serde_json::to_vec(body)
            .map_err(|e| PeerError::BadAnswer(format!("cannot encode the request: {e}")))?;
        let id = format!("msg_{}", uuid::Uuid::now_v7().simple());
        let ts = chrono::Utc::now().timestamp();
        let signature = self.secrets.sign(&id, ts, &body);
        let sent = self
            .client
            .post(format!("{}{path}", self.base))
            .header(HEADER_ID, &id)
            .header(HEADER_TIMESTAMP, ts.to_string())
            .header(HEADER_SIGNATURE, signature)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body)
            .send();
        let response = tokio::time::timeout(self.answer_timeout, sent)
            .await
            .map_err(|_| PeerError::Transport(NO_ANSWER_IN_TIME.into()))?
            .map_err(|e| PeerError::Transport(describe_transport(e)))?;
        let status = response.status();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(|s| Duration::from_secs(s).min(MAX_RETRY_AFTER));
        let bytes = response
            .bytes()
            .await
            .map_err(|e| PeerError::Transport(format!("the peer's answer was cut off: {e}")))?;
        if !status.is_success() {
            let detail = serde_json::from_slice::<serde_json::Value>(&bytes)
                .ok()
                .and_then(|v| v.get("detail").and_then(|d| d.as_str()).map(str::to_owned))
                .unwrap_or_default();
            return Err(PeerError::Status {
                status: status.as_u16(),
                detail,
                retry_after: if matches!(status.as_u16(), 429 | 503) {
                    retry_after
                } else {
                    None
                },
            });
        }
        serde_json::from_slice(&bytes).map_err(|e| PeerError::BadAnswer(e.to_string()))
    }
}

const NO_ANSWER_IN_TIME: &str = "the peer did not answer in time";

fn describe_transport(e: reqwest::Error) -> String {
    if e.is_timeout() {
        NO_ANSWER_IN_TIME.into()
    } else if e.is_connect() {
        "cannot connect to the peer (is it running, and is --peer-url right?)".into()
    } else {
        // Without the URL: it is configuration, not news, in every log line.
        format!("request to the peer failed: {}", e.without_url())
    }
}

//! Every setting of a service in one place: [`ServiceConfig`], built from
//! the command line (or by tests), with its defaults in [`defaults`], and
//! the one duration syntax every flag and variable uses ([`Span`]:
//! `72h`, `30m`, `90s`, `500ms`, `7d`, or plain seconds).

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use crate::domain::Role;
use crate::engine::Retention;
use crate::storage::DbOptions;
use crate::sync::signature::Secrets;

/// The documented defaults (`--help` shows them; README lists them).
pub mod defaults {
    use std::time::Duration;

    /// How long a change keeps being retried before it becomes a dead letter.
    pub const RETRY_HORIZON: Duration = Duration::from_secs(72 * 3600);
    /// How often the store reconciles with the warehouse.
    pub const RECONCILE_INTERVAL: Duration = Duration::from_secs(600);
    /// Most orders the relay sends in one request.
    pub const RELAY_BATCH_SIZE: i64 = 256;
    /// Failed requests in a row that open the circuit breaker.
    pub const BREAKER_THRESHOLD: u32 = 5;
    /// How long the breaker stays open before its probe.
    pub const BREAKER_OPEN_FOR: Duration = Duration::from_secs(5);
    /// Longest the relay sleeps when nothing wakes it (commits do).
    pub const IDLE_POLL: Duration = Duration::from_secs(5);
    /// How long a woken relay waits for more changes before it claims a
    /// round that is not a full batch. Chosen by measurement at 500
    /// orders/s on SQLite (alternating runs, 2 busy cores): 10 ms took the
    /// pair from ~1.3 to ~0.93 ms of CPU per order, 20 ms to ~0.80 (about
    /// ten orders a round), with propagation p99 ~25-30 ms; each further
    /// halving of the rounds saves less and costs as much latency.
    pub const RELAY_LINGER: Duration = Duration::from_millis(20);
    /// How long a create (or a staff step) that arrives with nothing else
    /// on its way to the database waits for company before it is written.
    /// Measured at 500 orders/s on SQLite (synchronous=FULL, alternating
    /// runs): 2 ms and 4 ms both took the pair's CPU per order from ~0.57
    /// to ~0.49 ms, for ~0.4 ms of propagation p50 and p99; 8 clients'
    /// create latency was unchanged (their commands are never alone).
    pub const WRITE_LINGER: Duration = Duration::from_millis(2);
    /// How long a round's rows are reserved for the relay that claimed
    /// them: three request timeouts, long enough for a round (which ends
    /// its requests before its lease does), short enough that a crashed
    /// replica's rows are soon taken over.
    pub const RELAY_LEASE: Duration = Duration::from_secs(30);
    /// Longest one request to the peer may take in all.
    pub const PEER_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
    /// Longest wait for the peer's answer to begin. Applying a full batch
    /// takes tens of milliseconds; a peer that has not begun to answer
    /// after this is hung, and five such failures open the breaker in 25 s
    /// rather than 50.
    pub const PEER_ANSWER_TIMEOUT: Duration = Duration::from_secs(5);
    /// How often old records are pruned.
    pub const PRUNE_EVERY: Duration = Duration::from_secs(300);
    /// Database connections per pool.
    pub const DB_MAX_CONNECTIONS: u32 = 8;
    /// Longest a request to this service may take (408 after).
    pub const HTTP_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
}

/// Everything one service needs to run.
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    pub role: Role,
    pub database_url: String,
    pub db: DbOptions,
    /// Base URL of the other service.
    pub peer_url: String,
    /// The first signs; all are accepted (secret rotation).
    pub sync_secrets: Vec<String>,
    pub retry_horizon: Duration,
    pub batch_size: i64,
    /// Failures in a row that open the circuit breaker.
    pub breaker_threshold: u32,
    /// How long the breaker stays open before a probe.
    pub breaker_open_for: Duration,
    /// How often the store reconciles with the warehouse (`None`: never).
    pub reconcile_interval: Option<Duration>,
    /// Longest the relay sleeps when nothing wakes it (commits do).
    pub idle_poll: Duration,
    /// How long a woken relay waits for more before claiming less than a
    /// full batch (`0`: it claims at once).
    pub relay_linger: Duration,
    /// How long a lone create or step waits for others to share its
    /// commit (`0`: it is written at once).
    pub write_linger: Duration,
    /// How long the relay reserves the rows of a round (its requests end
    /// before), and how long one request to the peer may take.
    pub relay_lease: Duration,
    pub request_timeout: Duration,
    /// Longest wait for the peer's answer to begin (status and headers).
    pub answer_timeout: Duration,
    /// How long old records are kept, and how often they are pruned.
    pub retention: Retention,
    pub prune_every: Duration,
}

impl ServiceConfig {
    /// A service of `role` with every default.
    pub fn new(
        role: Role,
        database_url: impl Into<String>,
        peer_url: impl Into<String>,
        secret: impl Into<String>,
    ) -> Self {
        Self {
            role,
            database_url: database_url.into(),
            db: DbOptions::default(),
            peer_url: peer_url.into(),
            sync_secrets: vec![secret.into()],
            retry_horizon: defaults::RETRY_HORIZON,
            batch_size: defaults::RELAY_BATCH_SIZE,
            breaker_threshold: defaults::BREAKER_THRESHOLD,
            breaker_open_for: defaults::BREAKER_OPEN_FOR,
            reconcile_interval: Some(defaults::RECONCILE_INTERVAL),
            idle_poll: defaults::IDLE_POLL,
            relay_linger: defaults::RELAY_LINGER,
            write_linger: defaults::WRITE_LINGER,
            relay_lease: defaults::RELAY_LEASE,
            request_timeout: defaults::PEER_REQUEST_TIMEOUT,
            answer_timeout: defaults::PEER_ANSWER_TIMEOUT,
            retention: Retention::default(),
            prune_every: defaults::PRUNE_EVERY,
        }
    }

    /// Checks what can be checked before opening anything.
    pub fn validate(&self) -> anyhow::Result<Secrets> {
        // A store may have no --peer-url: its warehouses are rows it is told
        // about (`fulfillment warehouse add`); a warehouse has one store.
        if self.peer_url.is_empty() && self.role == Role::Warehouse {
            anyhow::bail!(
                "--peer-url is required for a warehouse: give the store's base URL, e.g. http://127.0.0.1:8000"
            );
        }
        if !self.peer_url.is_empty() {
            let url = reqwest::Url::parse(&self.peer_url)
                .map_err(|e| anyhow::anyhow!("--peer-url {:?} is not a URL ({e}); give the other service's base URL, e.g. http://127.0.0.1:8001", self.peer_url))?;
            if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
                anyhow::bail!(
                    "--peer-url must be an http:// or https:// URL with a host, e.g. http://127.0.0.1:8001"
                );
            }
        }
        if self.sync_secrets.first().is_none_or(|s| s.is_empty()) {
            anyhow::bail!(
                "a sync secret is required: set --sync-secret (FULFILLMENT_SYNC_SECRET) to the same value on both services"
            );
        }
        Secrets::new(&self.sync_secrets)
            .ok_or_else(|| anyhow::anyhow!("a sync secret is required: set --sync-secret (FULFILLMENT_SYNC_SECRET) to the same value on both services"))
    }
}

/// Longest duration a setting takes: far beyond any sensible value, and far
/// from overflowing the microsecond arithmetic it feeds.
const MAX_DURATION: Duration = Duration::from_secs(100 * 365 * 86400);

/// Parses `72h`, `30m`, `90s`, `500ms`, `7d` or plain seconds, up to 100
/// years.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len()));
    let too_long = || format!("{s:?} is too long; give at most 100 years (e.g. 36500d)");
    let n: u64 = match num.parse() {
        Ok(n) => n,
        // Digits only, but more than a u64 holds.
        Err(_) if !num.is_empty() => return Err(too_long()),
        Err(_) => return Err(format!("{s:?} is not a duration like 72h, 30m or 90s")),
    };
    let per_unit: u64 = match unit {
        "ms" => 1,
        "" | "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => {
            return Err(format!(
                "{s:?}: unknown unit {unit:?} (use ms, s, m, h or d)"
            ));
        }
    };
    n.checked_mul(per_unit)
        .map(Duration::from_millis)
        .filter(|d| *d <= MAX_DURATION)
        .ok_or_else(too_long)
}

/// A duration as flags and variables write it: parsed by
/// [`parse_duration`], shown in the largest unit that divides it (`72h`),
/// so a default shows in `--help` as it would be typed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Span(pub Duration);

impl FromStr for Span {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_duration(s).map(Span)
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0.as_millis();
        // Hours at most: "72h" reads better than "3d".
        for (unit, size) in [("h", 3_600_000), ("m", 60_000), ("s", 1_000)] {
            if ms >= size && ms.is_multiple_of(size) {
                return write!(f, "{}{unit}", ms / size);
            }
        }
        if ms == 0 {
            f.write_str("0")
        } else {
            write!(f, "{ms}ms")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("72h"), Ok(Duration::from_secs(72 * 3600)));
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert!(parse_duration("soon").is_err());
        assert!(parse_duration("5y").is_err());
        assert_eq!(parse_duration("7d"), Ok(Duration::from_secs(7 * 86400)));
        for huge in ["99999999999d", "99999999999999999999", "36501d"] {
            let e = parse_duration(huge).expect_err(huge);
            assert!(e.contains("too long"), "{huge}: {e}");
        }
    }

    #[test]
    fn spans_show_as_typed_and_read_back() {
        for (d, text) in [
            (defaults::RETRY_HORIZON, "72h"),
            (defaults::RECONCILE_INTERVAL, "10m"),
            (Duration::from_secs(90), "90s"),
            (Duration::from_millis(2500), "2500ms"),
            (Duration::ZERO, "0"),
        ] {
            assert_eq!(Span(d).to_string(), text);
            assert_eq!(text.parse::<Span>(), Ok(Span(d)));
        }
    }
}

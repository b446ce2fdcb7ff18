//! The relay: a background task that drains this side's outbox to the peer.
//!
//! It wakes at once when a local commit enqueues something, and otherwise
//! sleeps until the next row is due (at most `idle_poll`), so an idle
//! service uses no CPU. Each round leases a batch of due rows, reads the
//! current snapshot of each order, sends them in one signed request and
//! settles every row from the peer's per-item answer. A failed request puts
//! every row of the batch on its own backoff schedule; rows past the retry
//! horizon, and items the peer rejects, become dead letters.

use std::sync::Arc;
use std::time::Duration;

use rand::SeedableRng;
use tokio::sync::{Notify, watch};

use super::backoff;
use super::breaker::Breaker;
use super::signature::{HEADER_ID, HEADER_SIGNATURE, HEADER_TIMESTAMP, Secrets};
use crate::domain::snapshot::{
    ContentSnapshot, FulfillmentSnapshot, ItemOutcome, SyncBatch, SyncBatchResult,
};
use crate::domain::{OrderId, Role};
use crate::engine::{Engine, count};
use crate::storage::outbox::{self, Claimed, Settle};
use crate::storage::{StorageError, now_micros, orders};

/// Tunables of the relay, with the defaults documented on the CLI.
#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// Base URL of the peer service.
    pub peer_url: String,
    pub secrets: Secrets,
    /// Most orders per request.
    pub batch_size: i64,
    /// How long a claimed row is reserved for this relay.
    pub lease: Duration,
    pub request_timeout: Duration,
    /// Longest sleep when nothing is due (a safety net; commits wake the relay).
    pub idle_poll: Duration,
    /// After this long failing, a row becomes a dead letter.
    pub retry_horizon: Duration,
}

impl RelayConfig {
    pub fn new(peer_url: String, secrets: Secrets) -> Self {
        Self {
            peer_url,
            secrets,
            batch_size: 256,
            lease: Duration::from_secs(60),
            request_timeout: Duration::from_secs(10),
            idle_poll: Duration::from_secs(5),
            retry_horizon: Duration::from_secs(72 * 3600),
        }
    }
}

pub struct Relay {
    engine: Engine,
    cfg: RelayConfig,
    client: reqwest::Client,
    breaker: Arc<Breaker>,
    endpoint: String,
}

/// What a round did.
enum Round {
    /// Nothing was due.
    Idle,
    /// A batch was sent (whatever the answer); look again at once.
    Worked,
    /// The breaker is open; wait this long.
    Paused(Duration),
}

impl Relay {
    pub fn new(
        engine: Engine,
        cfg: RelayConfig,
        breaker: Arc<Breaker>,
    ) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .timeout(cfg.request_timeout)
            .connect_timeout(Duration::from_secs(5))
            .pool_idle_timeout(Duration::from_secs(30))
            .build()?;
        let endpoint = format!("{}/api/v1/sync/changes", cfg.peer_url.trim_end_matches('/'));
        Ok(Self {
            engine,
            cfg,
            client,
            breaker,
            endpoint,
        })
    }

    /// Runs until `shutdown` turns true. A batch in flight is finished first.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let wake: Arc<Notify> = self.engine.wake_handle();
        let mut rng = rand::rngs::StdRng::from_entropy();
        tracing::info!(peer = self.engine.peer(), url = %self.cfg.peer_url, "relay started");
        loop {
            if *shutdown.borrow() {
                break;
            }
            let wait = match self.round(&mut rng).await {
                Ok(Round::Worked) => continue,
                Ok(Round::Paused(d)) => d,
                Ok(Round::Idle) => self.idle_wait().await,
                Err(e) => {
                    tracing::error!(error = %e, "relay round failed; retrying in 1 s");
                    Duration::from_secs(1)
                }
            };
            tokio::select! {
                _ = wake.notified() => {}
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.changed() => {}
            }
        }
        tracing::info!(peer = self.engine.peer(), "relay stopped");
    }

    /// How long to sleep when nothing is due: until the next row is, capped.
    async fn idle_wait(&self) -> Duration {
        let next = match self.engine.db().reader().acquire().await {
            Ok(mut c) => outbox::next_due(&mut c, self.engine.peer())
                .await
                .ok()
                .flatten(),
            Err(_) => None,
        };
        match next {
            Some(t) => {
                Duration::from_micros((t - now_micros()).max(1_000) as u64).min(self.cfg.idle_poll)
            }
            None => self.cfg.idle_poll,
        }
    }

    async fn round(&self, rng: &mut impl rand::Rng) -> Result<Round, StorageError> {
        if let Err(wait) = self.breaker.allow() {
            return Ok(Round::Paused(wait));
        }
        let now = now_micros();
        let lease_until = now + self.cfg.lease.as_micros() as i64;
        let peer = self.engine.peer();
        let claimed = outbox::claim(
            self.engine.db(),
            peer,
            now,
            lease_until,
            self.cfg.batch_size,
        )
        .await?;
        if claimed.is_empty() {
            return Ok(Round::Idle);
        }

        // The snapshot of each order as it is now: the newest version wins.
        let ids: Vec<OrderId> = claimed
            .iter()
            .filter_map(|c| OrderId::parse(&c.order_id))
            .collect();
        let loaded = {
            let mut c = self.engine.db().reader().acquire().await?;
            orders::load_many(&mut c, &ids).await?
        };
        let mut sent: Vec<(&Claimed, i64)> = Vec::with_capacity(claimed.len());
        let mut missing: Vec<&Claimed> = Vec::new();
        let mut changes = Vec::with_capacity(claimed.len());
        for row in &claimed {
            let found = loaded.iter().find(|o| o.id.to_string() == row.order_id);
            let snapshot = found.and_then(|o| match self.engine.role() {
                Role::Store => serde_json::to_value(ContentSnapshot::from_domain(
                    o.id,
                    &o.number,
                    o.store_version,
                    &o.content,
                    o.created_at,
                ))
                .ok()
                .map(|v| (v, o.store_version)),
                Role::Warehouse => o.fulfillment.as_ref().and_then(|f| {
                    serde_json::to_value(FulfillmentSnapshot::from_domain(
                        o.id,
                        o.warehouse_version,
                        f,
                    ))
                    .ok()
                    .map(|v| (v, o.warehouse_version))
                }),
            });
            match snapshot {
                Some((v, version)) => {
                    changes.push(v);
                    sent.push((row, version));
                }
                None => missing.push(row),
            }
        }

        let answer = if changes.is_empty() {
            Ok(vec![])
        } else {
            self.send(changes).await
        };
        let now = now_micros();
        let mut tx = self.engine.db().begin().await?;
        for row in missing {
            let how = Settle::Dead {
                reason: "the order no longer exists in this database".into(),
            };
            outbox::settle(&mut tx, peer, &row.order_id, row.version, &how, now).await?;
            outbox::record_attempt(
                &mut tx,
                peer,
                &row.order_id,
                now,
                "error",
                Some("order missing locally"),
                None,
            )
            .await?;
        }
        match answer {
            Ok(results) => {
                self.breaker.success();
                let mut delivered = 0;
                for ((row, version), result) in sent.iter().zip(results) {
                    let how = match result.outcome {
                        ItemOutcome::Applied | ItemOutcome::Stale => {
                            delivered += 1;
                            Settle::Delivered
                        }
                        ItemOutcome::Rejected => {
                            let reason = result
                                .reason
                                .unwrap_or_else(|| "rejected by the peer".into());
                            tracing::warn!(order_id = %row.order_id, %reason, "peer rejected a snapshot; it is now a dead letter");
                            Settle::Dead { reason }
                        }
                    };
                    outbox::settle(&mut tx, peer, &row.order_id, *version, &how, now).await?;
                    let detail = match &how {
                        Settle::Dead { reason } => Some(reason.as_str()),
                        _ => None,
                    };
                    outbox::record_attempt(
                        &mut tx,
                        peer,
                        &row.order_id,
                        now,
                        result.outcome.as_str(),
                        detail,
                        None,
                    )
                    .await?;
                }
                count(&self.engine.metrics().delivered, delivered);
            }
            Err(error) => {
                self.breaker.failure();
                count(&self.engine.metrics().delivery_failures, sent.len() as u64);
                tracing::warn!(peer, %error, orders = sent.len(), "delivery failed; will retry");
                let horizon = self.cfg.retry_horizon.as_micros() as i64;
                for (row, version) in &sent {
                    let attempt = u32::try_from(row.attempts + 1).unwrap_or(u32::MAX);
                    let next = now + backoff::delay(attempt, rng).as_micros() as i64;
                    let (how, next_retry) = if now - row.enqueued_at > horizon {
                        let reason =
                            format!("gave up after the retry horizon; last error: {error}");
                        (Settle::Dead { reason }, None)
                    } else {
                        (
                            Settle::Retry {
                                error: error.clone(),
                                next_attempt_at: next,
                            },
                            Some(next),
                        )
                    };
                    outbox::settle(&mut tx, peer, &row.order_id, *version, &how, now).await?;
                    outbox::record_attempt(
                        &mut tx,
                        peer,
                        &row.order_id,
                        now,
                        "error",
                        Some(&error),
                        next_retry,
                    )
                    .await?;
                }
            }
        }
        tx.commit().await?;
        Ok(Round::Worked)
    }

    /// Sends one signed batch; `Err` is a human-readable reason to retry.
    async fn send(
        &self,
        changes: Vec<serde_json::Value>,
    ) -> Result<Vec<crate::domain::snapshot::ItemResult>, String> {
        let n = changes.len();
        let body = serde_json::to_vec(&SyncBatch { changes })
            .map_err(|e| format!("cannot encode batch: {e}"))?;
        let id = format!("msg_{}", uuid::Uuid::now_v7().simple());
        let ts = chrono::Utc::now().timestamp();
        let signature = self.cfg.secrets.sign(&id, ts, &body);
        let response = self
            .client
            .post(&self.endpoint)
            .header(HEADER_ID, &id)
            .header(HEADER_TIMESTAMP, ts.to_string())
            .header(HEADER_SIGNATURE, signature)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await
            .map_err(|e| describe_transport(&e))?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .map_err(|e| format!("peer's answer was cut: {e}"))?;
        if !status.is_success() {
            let detail = serde_json::from_slice::<serde_json::Value>(&bytes)
                .ok()
                .and_then(|v| v.get("detail").and_then(|d| d.as_str()).map(str::to_owned))
                .unwrap_or_default();
            return Err(format!("peer answered {status} {detail}").trim().to_owned());
        }
        let parsed: SyncBatchResult = serde_json::from_slice(&bytes)
            .map_err(|e| format!("peer's answer is not a sync result: {e}"))?;
        if parsed.results.len() != n {
            return Err(format!(
                "peer answered {} results for {n} items",
                parsed.results.len()
            ));
        }
        Ok(parsed.results)
    }
}

fn describe_transport(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "peer did not answer in time".into()
    } else if e.is_connect() {
        "cannot connect to the peer (is it running, and is --peer-url right?)".into()
    } else {
        format!("request to the peer failed: {e}")
    }
}

//! Pruning: nothing grows forever. Delivered outbox rows, old delivery
//! attempts, expired idempotency keys, remembered webhook ids, old
//! reconciliation records and old minutes of sync history are deleted in small batches by a background task,
//! never on a request's path, so a prune never holds the writer for long.

use std::time::Duration;

use sqlx::AnyConnection;

use super::{Db, Result, now_micros};

/// How long each kind of record is kept (the documented defaults).
#[derive(Debug, Clone)]
pub struct Retention {
    /// Delivered outbox rows (an order without a row is shown as synced).
    pub delivered: Duration,
    /// Delivery attempts shown in an order's sync timeline.
    pub attempts: Duration,
    /// Idempotency keys: docs/API.md promises 24 h.
    pub idempotency: Duration,
    /// Webhook ids: a replay is refused by the timestamp check after
    /// 2 × 300 s, so ids need keeping only that long (with a margin).
    pub webhook_ids: Duration,
    pub reconcile_runs: Duration,
    /// Minutes of sync history (the admin sync page charts the last day).
    pub sync_history: Duration,
}

impl Default for Retention {
    fn default() -> Self {
        Self {
            delivered: Duration::from_secs(24 * 3600),
            attempts: Duration::from_secs(7 * 24 * 3600),
            idempotency: Duration::from_secs(24 * 3600),
            webhook_ids: Duration::from_secs(15 * 60),
            reconcile_runs: Duration::from_secs(30 * 24 * 3600),
            sync_history: Duration::from_secs(2 * 24 * 3600),
        }
    }
}

/// Rows deleted per statement.
pub const BATCH: i64 = 1000;

/// Each kind of record with its retention `r`: a statement that deletes at
/// most `$2` ([`BATCH`]) of them older than the cutoff `$1`. (Row-value
/// `IN` works on both backends and keeps each delete small.)
fn targets(r: &Retention) -> [(&'static str, Duration); 6] {
    [
        (
            "DELETE FROM outbox WHERE (peer, order_id) IN (SELECT peer, order_id FROM outbox \
             WHERE state = 'delivered' AND delivered_at < $1 LIMIT $2)",
            r.delivered,
        ),
        (
            "DELETE FROM sync_attempts WHERE id IN (SELECT id FROM sync_attempts WHERE at < $1 LIMIT $2)",
            r.attempts,
        ),
        (
            "DELETE FROM idempotency_keys WHERE (caller, key) IN (SELECT caller, key FROM idempotency_keys \
             WHERE created_at < $1 LIMIT $2)",
            r.idempotency,
        ),
        (
            "DELETE FROM seen_webhooks WHERE id IN (SELECT id FROM seen_webhooks WHERE seen_at < $1 LIMIT $2)",
            r.webhook_ids,
        ),
        (
            "DELETE FROM reconcile_runs WHERE id IN (SELECT id FROM reconcile_runs \
             WHERE finished_at < $1 LIMIT $2)",
            r.reconcile_runs,
        ),
        (
            "DELETE FROM sync_history WHERE (peer, minute_at) IN (SELECT peer, minute_at FROM sync_history \
             WHERE minute_at < $1 LIMIT $2)",
            r.sync_history,
        ),
    ]
}

async fn prune_batch(c: &mut AnyConnection, sql: &'static str, cutoff: i64) -> Result<u64> {
    Ok(sqlx::query(sql)
        .bind(cutoff)
        .bind(BATCH)
        .execute(&mut *c)
        .await?
        .rows_affected())
}

/// Deletes everything past its retention, a batch at a time (each batch its
/// own short transaction). Returns how many rows went.
pub async fn prune(db: &Db, r: &Retention) -> Result<u64> {
    let now = now_micros();
    let mut total = 0;
    for (sql, age) in targets(r) {
        let cutoff = now - age.as_micros() as i64;
        loop {
            // Through the writer, like every write: on SQLite a batch
            // shares a commit with whatever else is waiting.
            let n = db
                .write(move |c| Box::pin(prune_batch(c, sql, cutoff)))
                .await?;
            total += n;
            if n < BATCH as u64 {
                break;
            }
            // Let queued writers in between batches.
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    Ok(total)
}

//! What reconciliation reads and writes: per-range digests of both version
//! counters, the versions of a small range row by row, version bumps, and
//! the record of each pass.

use serde::{Deserialize, Serialize};
use sqlx::AnyConnection;

use super::Result;
use crate::domain::role::{self, Counter};

/// The digest of a range of order ids `[lo, hi)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, sqlx::FromRow)]
pub struct RangeDigest {
    pub count: i64,
    pub store: i64,
    pub warehouse: i64,
}

/// Each row contributes `(version · K + id_hash) mod P` (P prime, every term
/// below 2^31), so changing any version changes the sum unless a second
/// change in the same range cancels it exactly. Plain SQL arithmetic, the
/// same on both backends, read from a covering index. `warehouse` (at the
/// store) keeps to the orders routed to that warehouse.
pub async fn range_digest(
    c: &mut AnyConnection,
    lo: &str,
    hi: &str,
    warehouse: Option<&str>,
) -> Result<RangeDigest> {
    let q = match warehouse {
        None => sqlx::query_as::<_, RangeDigest>(RANGE_DIGEST),
        Some(w) => sqlx::query_as::<_, RangeDigest>(RANGE_DIGEST_OF_WAREHOUSE).bind(w),
    };
    // The bounds come after the warehouse, as both texts number them.
    Ok(q.bind(lo).bind(hi).fetch_one(&mut *c).await?)
}

pub(super) const RANGE_DIGEST: &str = "SELECT COUNT(*) AS count, \
     CAST(COALESCE(SUM((store_version * 2654435761 + id_hash) % 2147483647), 0) AS BIGINT) AS store, \
     CAST(COALESCE(SUM((warehouse_version * 2654435761 + id_hash) % 2147483647), 0) AS BIGINT) AS warehouse \
     FROM orders WHERE id >= $1 AND id < $2";

pub(super) const RANGE_DIGEST_OF_WAREHOUSE: &str = "SELECT COUNT(*) AS count, \
     CAST(COALESCE(SUM((store_version * 2654435761 + id_hash) % 2147483647), 0) AS BIGINT) AS store, \
     CAST(COALESCE(SUM((warehouse_version * 2654435761 + id_hash) % 2147483647), 0) AS BIGINT) AS warehouse \
     FROM orders WHERE warehouse = $1 AND id >= $2 AND id < $3";

/// Both version counters of one order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, sqlx::FromRow)]
pub struct Versions {
    pub id: String,
    pub store_version: i64,
    pub warehouse_version: i64,
}

impl Versions {
    pub fn pair(&self) -> role::Versions {
        role::Versions {
            store: self.store_version,
            warehouse: self.warehouse_version,
        }
    }
}

/// The versions of the orders in `[lo, hi)` (of `warehouse`'s orders, at
/// the store), by id, at most `limit`.
pub async fn range_versions(
    c: &mut AnyConnection,
    lo: &str,
    hi: &str,
    limit: i64,
    warehouse: Option<&str>,
) -> Result<Vec<Versions>> {
    let q = match warehouse {
        None => sqlx::query_as::<_, Versions>(
            "SELECT id, store_version, warehouse_version FROM orders \
             WHERE id >= $1 AND id < $2 ORDER BY id LIMIT $3",
        ),
        Some(w) => sqlx::query_as::<_, Versions>(
            "SELECT id, store_version, warehouse_version FROM orders \
             WHERE warehouse = $1 AND id >= $2 AND id < $3 ORDER BY id LIMIT $4",
        )
        .bind(w),
    };
    Ok(q.bind(lo).bind(hi).bind(limit).fetch_all(&mut *c).await?)
}

/// Raises `counter` of an order to `version` (when lower), so the next
/// snapshot its side sends wins over a copy the peer holds from before a
/// rollback. Returns false when the order is unknown or already higher.
pub async fn raise_version(
    c: &mut AnyConnection,
    counter: Counter,
    id: &str,
    version: i64,
) -> Result<bool> {
    let sql = match counter {
        Counter::Store => {
            "UPDATE orders SET store_version = $2 WHERE id = $1 AND store_version < $2"
        }
        Counter::Warehouse => {
            "UPDATE orders SET warehouse_version = $2 WHERE id = $1 AND warehouse_version < $2"
        }
    };
    let n = sqlx::query(sql)
        .bind(id)
        .bind(version)
        .execute(&mut *c)
        .await?
        .rows_affected();
    Ok(n == 1)
}

/// The current value of one version counter of an order.
pub async fn version(c: &mut AnyConnection, counter: Counter, id: &str) -> Result<Option<i64>> {
    let sql = match counter {
        Counter::Store => "SELECT store_version FROM orders WHERE id = $1",
        Counter::Warehouse => "SELECT warehouse_version FROM orders WHERE id = $1",
    };
    Ok(sqlx::query_scalar::<_, i64>(sql)
        .bind(id)
        .fetch_optional(&mut *c)
        .await?)
}

/// One reconciliation pass, as recorded.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Run {
    pub started_at: i64,
    pub finished_at: i64,
    pub compared: i64,
    pub differences: i64,
    pub repaired: i64,
    pub report: String,
    pub error: Option<String>,
}

pub async fn record_run(c: &mut AnyConnection, run: &Run) -> Result<()> {
    sqlx::query(
        "INSERT INTO reconcile_runs (started_at, finished_at, compared, differences, repaired, report, error) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(run.started_at)
    .bind(run.finished_at)
    .bind(run.compared)
    .bind(run.differences)
    .bind(run.repaired)
    .bind(run.report.as_str())
    .bind(run.error.as_deref())
    .execute(&mut *c)
    .await?;
    Ok(())
}

pub async fn last_run(c: &mut AnyConnection) -> Result<Option<Run>> {
    Ok(sqlx::query_as::<_, Run>(
        "SELECT started_at, finished_at, compared, differences, repaired, report, error \
         FROM reconcile_runs ORDER BY id DESC LIMIT 1",
    )
    .fetch_optional(&mut *c)
    .await?)
}

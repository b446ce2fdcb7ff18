//! Bulk rows for the reconciliation scenario: the same minimal orders, with
//! the same ids, versions and `id_hash`, written straight into both
//! databases (multi-row INSERTs in large transactions), so that a pass has
//! a million unchanged orders to compare without creating them over HTTP.
//!
//! The rows hold only the orders table's NOT NULL columns (no lines, no
//! prices): reconciliation reads ids and versions only, and the bench never
//! fetches these orders.

use std::sync::atomic::{AtomicU64, Ordering};

use super::progress::Progress;
use crate::domain::warehouse::WarehouseName;
use crate::storage::bench::{analyze_orders, bulk_orders, route_bulk_orders};
use crate::storage::{Db, now_micros};

/// Rows per INSERT statement.
const ROWS_PER_STATEMENT: u64 = 500;
/// Rows per transaction.
const ROWS_PER_TX: u64 = 100_000;

/// Writes `n` identical orders into both databases, in parallel.
pub async fn orders(store: &Db, warehouse: &Db, n: u64, progress: &Progress) -> anyhow::Result<()> {
    let done = AtomicU64::new(0);
    progress.set("rows written", 0, 2 * n);
    let now = now_micros();
    tokio::try_join!(
        fill(store, n, now, &done, progress),
        fill(warehouse, n, now, &done, progress)
    )?;
    // The pair's store knows its warehouse as `main` (its --peer-url).
    route_bulk_orders(store, WarehouseName::MAIN).await?;
    analyze_orders(store).await?;
    Ok(())
}

async fn fill(
    db: &Db,
    n: u64,
    now: i64,
    done: &AtomicU64,
    progress: &Progress,
) -> anyhow::Result<()> {
    let advance = |rows: u64| progress.advance(done.fetch_add(rows, Ordering::Relaxed) + rows);
    let mut i = 0;
    while i < n {
        let end = (i + ROWS_PER_TX).min(n);
        bulk_orders(db, i, end, ROWS_PER_STATEMENT, now, &advance).await?;
        i = end;
    }
    analyze_orders(db).await?;
    Ok(())
}

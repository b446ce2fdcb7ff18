//! Bulk rows for the reconciliation scenario: the same minimal orders, with
//! the same ids, versions and `id_hash`, written straight into both
//! databases (multi-row INSERTs in large transactions), so that a pass has
//! a million unchanged orders to compare without creating them over HTTP.
//!
//! The rows hold only the orders table's NOT NULL columns (no lines, no
//! prices): reconciliation reads ids and versions only, and the bench never
//! fetches these orders.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

use sqlx::Executor;

use super::progress::Progress;
use crate::domain::digest::id_hash;
use crate::storage::{Backend, Db, now_micros};

/// Rows per INSERT statement.
const ROWS_PER_STATEMENT: u64 = 500;
/// Rows per transaction.
const ROWS_PER_TX: u64 = 100_000;

/// The id of bulk order `i`: a valid UUID (version 7 layout) that sorts
/// before every id the store makes.
fn id(i: u64) -> String {
    format!("00000000-0000-7000-8000-{i:012x}")
}

/// Writes `n` identical orders into both databases, in parallel.
pub async fn orders(store: &Db, warehouse: &Db, n: u64, progress: &Progress) -> anyhow::Result<()> {
    let done = AtomicU64::new(0);
    progress.set("rows written", 0, 2 * n);
    let now = now_micros();
    tokio::try_join!(
        fill(store, n, now, &done, progress),
        fill(warehouse, n, now, &done, progress)
    )?;
    Ok(())
}

async fn fill(
    db: &Db,
    n: u64,
    now: i64,
    done: &AtomicU64,
    progress: &Progress,
) -> anyhow::Result<()> {
    let mut i = 0;
    while i < n {
        let tx_end = (i + ROWS_PER_TX).min(n);
        let mut tx = db.begin().await?;
        while i < tx_end {
            let end = (i + ROWS_PER_STATEMENT).min(tx_end);
            tx.execute(sqlx::raw_sql(&statement(i, end, now))).await?;
            let total = done.fetch_add(end - i, Ordering::Relaxed) + (end - i);
            progress.advance(total);
            i = end;
        }
        tx.commit().await?;
    }
    if db.backend() == Backend::Postgres {
        // What autovacuum would do shortly after such a load.
        db.reader().execute(sqlx::raw_sql("ANALYZE orders")).await?;
    }
    Ok(())
}

/// One INSERT of rows `[from, to)`. Every value is made here, never read
/// from outside, so inlining them is safe.
fn statement(from: u64, to: u64, now: i64) -> String {
    let mut sql = String::with_capacity(((to - from) * 200) as usize + 300);
    sql.push_str(
        "INSERT INTO orders (id, number, store_version, warehouse_version, customer_name, \
         customer_email, ship_name, ship_line1, ship_city, ship_postal_code, ship_country, \
         status, created_at, updated_at, id_hash) VALUES ",
    );
    for i in from..to {
        let id = id(i);
        if i > from {
            sql.push(',');
        }
        let _ = write!(
            sql,
            "('{id}','BENCH-{i:08}',1,1,'Bench Customer','bench@example.com','Bench Customer',\
             '1 Bench Street','Benchville','00000','GB','pending',{now},{now},{})",
            id_hash(&id)
        );
    }
    sql
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::OrderId;

    #[test]
    fn ids_are_order_ids_in_order() {
        assert!(OrderId::parse(&id(0)).is_some());
        assert!(OrderId::parse(&id(999_999)).is_some());
        assert!(id(9) < id(10) && id(255) < id(256));
        assert!(id(1_000_000) < OrderId::new().to_string());
    }

    #[test]
    fn statement_has_one_tuple_per_row() {
        let sql = statement(10, 13, 1);
        assert_eq!(sql.matches("'GB','pending'").count(), 3);
        assert!(sql.contains(&id(12)) && !sql.contains(&id(13)));
    }
}

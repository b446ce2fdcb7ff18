//! What `fulfillment bench` reads and writes in databases directly, beside
//! the services it measures: fresh PostgreSQL databases for a run (dropped
//! afterwards), a million bulk orders for the reconciliation scenario, and
//! a read-only probe that sees what a service applied (from its audit
//! trail). Nothing a service runs uses this.

use sqlx::{AnyConnection, AnyPool, Connection, Executor};

use super::bulk::{self, Val};
use super::{Db, Dialect, Result, Sql, StorageError, describe, install_drivers};
use crate::domain::digest::id_hash;

/// Connects to a PostgreSQL server's admin database.
async fn admin(admin_url: &str) -> Result<AnyConnection> {
    install_drivers();
    AnyConnection::connect(admin_url)
        .await
        .map_err(|e| StorageError::Unavailable(describe(&e)))
}

/// Checks that the PostgreSQL server at `admin_url` answers.
pub async fn check_server(admin_url: &str) -> Result<()> {
    admin(admin_url).await?.close().await.ok();
    Ok(())
}

/// The server's version and the settings that make its commits durable,
/// as `(name, value)`: `server_version`, `fsync`, `synchronous_commit`,
/// `full_page_writes`.
pub async fn server_settings(admin_url: &str) -> Result<Vec<(String, String)>> {
    let mut c = admin(admin_url).await?;
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT name::TEXT, setting::TEXT FROM pg_settings \
         WHERE name IN ('server_version', 'fsync', 'synchronous_commit', 'full_page_writes') \
         ORDER BY name = 'server_version' DESC, name",
    )
    .fetch_all(&mut c)
    .await?;
    c.close().await.ok();
    Ok(rows)
}

/// Creates an empty database `name` (letters, digits and `_` only: the
/// bench makes the names) on the server at `admin_url`. (A database's name
/// is an identifier, which no statement takes as a parameter: this and the
/// drops below are the only statements built at run time.)
pub async fn create_database(admin_url: &str, name: &str) -> Result<()> {
    let mut c = admin(admin_url).await?;
    c.execute(format!("CREATE DATABASE {name}").as_str())
        .await?;
    c.close().await.ok();
    Ok(())
}

/// Drops the databases `names` (closing their connections by force where
/// the server can). Returns those that could not be dropped, with why.
pub async fn drop_databases(admin_url: &str, names: &[String]) -> Vec<(String, String)> {
    let mut failed = Vec::new();
    let mut c = match admin(admin_url).await {
        Ok(c) => c,
        Err(e) => {
            return names.iter().map(|n| (n.clone(), e.to_string())).collect();
        }
    };
    for name in names {
        let forced = format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)");
        if c.execute(forced.as_str()).await.is_err() {
            // Before PostgreSQL 13 there is no FORCE.
            let plain = format!("DROP DATABASE IF EXISTS {name}");
            if let Err(e) = c.execute(plain.as_str()).await {
                failed.push((name.clone(), describe(&e)));
            }
        }
    }
    c.close().await.ok();
    failed
}

/// The id of bulk order `i`: a valid UUID (version 7 layout) that sorts
/// before every id the store makes.
pub fn bulk_id(i: u64) -> String {
    format!("00000000-0000-7000-8000-{i:012x}")
}

/// Writes bulk orders `[from, to)` in one transaction, `per_statement` rows
/// per INSERT: the orders table's NOT NULL columns only (no lines, no
/// prices), with the same ids, versions and `id_hash` in any database, so
/// both sides of a pair hold identical orders. Calls `done` after each
/// statement with the rows it wrote.
pub async fn bulk_orders(
    db: &Db,
    from: u64,
    to: u64,
    per_statement: u64,
    now: i64,
    done: &(dyn Fn(u64) + Sync),
) -> Result<()> {
    let mut tx = db.begin().await?;
    let mut i = from;
    while i < to {
        let end = (i + per_statement).min(to);
        sqlx::query(INSERT_BULK.on(&tx))
            .bind(now)
            .bind(bulk_rows(i, end))
            .execute(&mut *tx)
            .await?;
        done(end - i);
        i = end;
    }
    tx.commit().await?;
    Ok(())
}

/// [`bulk_orders`]' statement: argument the time, then the rows `[id,
/// number, id_hash]`.
const INSERT_BULK: Sql = Sql {
    sqlite: "INSERT INTO orders (id, number, store_version, warehouse_version, customer_name, \
             customer_email, ship_name, ship_line1, ship_city, ship_postal_code, ship_country, \
             status, created_at, updated_at, id_hash) \
             SELECT value ->> 0, value ->> 1, 1, 1, 'Bench Customer', 'bench@example.com', 'Bench Customer', \
             '1 Bench Street', 'Benchville', '00000', 'GB', 'pending', $1, $1, value ->> 2 \
             FROM json_each($2)",
    postgres: "INSERT INTO orders (id, number, store_version, warehouse_version, customer_name, \
               customer_email, ship_name, ship_line1, ship_city, ship_postal_code, ship_country, \
               status, created_at, updated_at, id_hash) \
               SELECT value ->> 0, value ->> 1, 1, 1, 'Bench Customer', 'bench@example.com', 'Bench Customer', \
               '1 Bench Street', 'Benchville', '00000', 'GB', 'pending', $1, $1, (value ->> 2)::bigint \
               FROM jsonb_array_elements($2::jsonb) AS e(value)",
};

/// Routes the store's bulk orders (all of them) to `warehouse`, as the
/// store does when it creates orders.
pub async fn route_bulk_orders(store: &Db, warehouse: &str) -> Result<()> {
    let mut tx = store.begin().await?;
    sqlx::query("UPDATE orders SET warehouse = $1 WHERE warehouse IS NULL")
        .bind(warehouse)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

/// Fresh planner statistics after a bulk load (what autovacuum would do
/// shortly after; nothing to do on SQLite).
pub async fn analyze_orders(db: &Db) -> Result<()> {
    if db.dialect() == Dialect::Postgres {
        db.reader().execute(sqlx::raw_sql("ANALYZE orders")).await?;
    }
    Ok(())
}

/// The rows of bulk orders `[from, to)` as [`INSERT_BULK`] takes them.
fn bulk_rows(from: u64, to: u64) -> String {
    let ids: Vec<String> = (from..to).map(bulk_id).collect();
    let numbers: Vec<String> = (from..to).map(|i| format!("BENCH-{i:08}")).collect();
    let mut rows: Vec<Val> = Vec::with_capacity(ids.len() * 3);
    for (id, number) in ids.iter().zip(&numbers) {
        rows.extend([
            Val::from(id.as_str()),
            number.as_str().into(),
            id_hash(id).into(),
        ]);
    }
    bulk::rows(3, &rows)
}

/// A read-only connection to a service's database, to see what it applied.
/// Cheap to clone (the pool is shared).
#[derive(Clone)]
pub struct Probe(AnyPool);

/// What a service did since a mark in its audit trail, and what it has
/// waiting to send ([`Probe::activity`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Activity {
    /// Snapshots applied from its peer.
    pub applied: u64,
    /// Writes from its own clients (creates, updates).
    pub accepted: u64,
    /// Outbox rows pending now.
    pub pending: u64,
}

impl Probe {
    pub async fn open(url: &str) -> Result<Probe> {
        install_drivers();
        let url = match url.strip_prefix("sqlite://") {
            Some(path) => format!("sqlite://{path}?mode=ro"),
            None => url.to_owned(),
        };
        Ok(Probe(
            sqlx::any::AnyPoolOptions::new()
                .max_connections(1)
                .connect(&url)
                .await
                .map_err(|e| StorageError::Unavailable(describe(&e)))?,
        ))
    }

    /// The highest audit entry id: later entries are newer.
    pub async fn audit_mark(&self) -> Result<i64> {
        let n: Option<i64> = sqlx::query_scalar("SELECT MAX(id) FROM audit_log")
            .fetch_one(&self.0)
            .await?;
        Ok(n.unwrap_or(0))
    }

    /// Count and latest time of the audit entries after `mark` written when
    /// applying the peer's snapshots (`changes` as given, or any other).
    pub async fn applied_since(
        &self,
        mark: i64,
        changes: Option<&str>,
    ) -> Result<(u64, Option<i64>)> {
        let sql = match changes {
            Some(_) => {
                "SELECT COUNT(*), MAX(at) FROM audit_log WHERE id > $1 AND actor_kind = 'sync' AND changes = $2"
            }
            None => {
                "SELECT COUNT(*), MAX(at) FROM audit_log WHERE id > $1 AND actor_kind = 'sync' AND changes <> $2"
            }
        };
        let (n, last): (i64, Option<i64>) = sqlx::query_as(sql)
            .bind(mark)
            .bind(changes.unwrap_or(""))
            .fetch_one(&self.0)
            .await?;
        Ok((n.max(0) as u64, last))
    }

    /// The order ids and apply times (µs) of the audit entries after
    /// `mark` written when applying the peer's snapshots with `changes`
    /// (`created`: the peer's new orders).
    pub async fn applied_ids(&self, mark: i64, changes: &str) -> Result<Vec<(String, i64)>> {
        Ok(sqlx::query_as(
            "SELECT order_id, at FROM audit_log WHERE id > $1 AND actor_kind = 'sync' AND changes = $2",
        )
        .bind(mark)
        .bind(changes)
        .fetch_all(&self.0)
        .await?)
    }

    /// [`Activity`] since the audit entry `mark`, with the rows pending
    /// for `peers` (whom this service sends to): each count by an index
    /// (the audit trail's id, the outbox's peer and state).
    pub async fn activity(&self, mark: i64, peers: &[String]) -> Result<Activity> {
        let (applied, accepted): (i64, i64) = sqlx::query_as(
            "SELECT COUNT(CASE WHEN actor_kind = 'sync' THEN 1 END), \
                    COUNT(CASE WHEN actor_kind <> 'sync' THEN 1 END) \
             FROM audit_log WHERE id > $1",
        )
        .bind(mark)
        .fetch_one(&self.0)
        .await?;
        let mut pending = 0;
        for peer in peers {
            let n: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM outbox WHERE peer = $1 AND state = 'pending'",
            )
            .bind(peer)
            .fetch_one(&self.0)
            .await?;
            pending += n.max(0) as u64;
        }
        let n = |v: i64| v.max(0) as u64;
        Ok(Activity {
            applied: n(applied),
            accepted: n(accepted),
            pending,
        })
    }

    pub async fn order_count(&self) -> Result<u64> {
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM orders")
            .fetch_one(&self.0)
            .await?;
        Ok(n.max(0) as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::OrderId;

    #[test]
    fn bulk_ids_are_order_ids_in_order() {
        assert!(OrderId::parse(&bulk_id(0)).is_some());
        assert!(OrderId::parse(&bulk_id(999_999)).is_some());
        assert!(bulk_id(9) < bulk_id(10) && bulk_id(255) < bulk_id(256));
        assert!(bulk_id(1_000_000) < OrderId::new().to_string());
    }

    #[test]
    fn bulk_rows_are_one_json_array_per_order() {
        let rows: Vec<(String, String, i64)> = serde_json::from_str(&bulk_rows(10, 13)).unwrap();
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[2].0, bulk_id(12));
        assert_eq!(rows[2].1, "BENCH-00000012");
        assert_eq!(rows[2].2, id_hash(&bulk_id(12)));
    }
}

//! Numbered migrations, one file per backend, applied at start-up by every
//! command that opens a database.
//!
//! Some migrations belong to one role only: the store's money tables never
//! exist in a warehouse database. The role is recorded in the database on
//! first open, so a store database opened as a warehouse (or the reverse) is
//! refused instead of quietly mixed up.

use sqlx::{Executor, Row};

use super::{ConnectError, Db, Dialect, Sql, now_micros};
use crate::domain::Role;

struct Migration {
    version: i64,
    name: &'static str,
    /// `None`: both roles.
    only: Option<Role>,
    sql: Sql,
}

const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "core",
        only: None,
        sql: Sql {
            sqlite: include_str!("../../migrations/sqlite/0001_core.sql"),
            postgres: include_str!("../../migrations/postgres/0001_core.sql"),
        },
    },
    Migration {
        version: 2,
        name: "store_money",
        only: Some(Role::Store),
        sql: Sql {
            sqlite: include_str!("../../migrations/sqlite/0002_store_money.sql"),
            postgres: include_str!("../../migrations/postgres/0002_store_money.sql"),
        },
    },
    Migration {
        version: 3,
        name: "admin_sessions",
        only: None,
        sql: Sql {
            sqlite: include_str!("../../migrations/sqlite/0003_admin_sessions.sql"),
            postgres: include_str!("../../migrations/postgres/0003_admin_sessions.sql"),
        },
    },
    Migration {
        version: 4,
        name: "byte_order_ids",
        only: None,
        sql: Sql {
            sqlite: include_str!("../../migrations/sqlite/0004_byte_order_ids.sql"),
            postgres: include_str!("../../migrations/postgres/0004_byte_order_ids.sql"),
        },
    },
    Migration {
        version: 5,
        name: "idempotency_per_caller",
        only: None,
        sql: Sql {
            sqlite: include_str!("../../migrations/sqlite/0005_idempotency_per_caller.sql"),
            postgres: include_str!("../../migrations/postgres/0005_idempotency_per_caller.sql"),
        },
    },
    Migration {
        version: 6,
        name: "login_throttle",
        only: None,
        sql: Sql {
            sqlite: include_str!("../../migrations/sqlite/0006_login_throttle.sql"),
            postgres: include_str!("../../migrations/postgres/0006_login_throttle.sql"),
        },
    },
    Migration {
        version: 7,
        name: "store_warehouses",
        only: Some(Role::Store),
        sql: Sql {
            sqlite: include_str!("../../migrations/sqlite/0007_store_warehouses.sql"),
            postgres: include_str!("../../migrations/postgres/0007_store_warehouses.sql"),
        },
    },
    Migration {
        version: 8,
        name: "outbox_by_order",
        only: None,
        sql: Sql {
            sqlite: include_str!("../../migrations/sqlite/0008_outbox_by_order.sql"),
            postgres: include_str!("../../migrations/postgres/0008_outbox_by_order.sql"),
        },
    },
    Migration {
        version: 9,
        name: "store_peers_by_warehouse",
        only: Some(Role::Store),
        sql: Sql {
            sqlite: include_str!("../../migrations/sqlite/0009_store_peers_by_warehouse.sql"),
            postgres: include_str!("../../migrations/postgres/0009_store_peers_by_warehouse.sql"),
        },
    },
    Migration {
        version: 10,
        name: "order_parts",
        only: None,
        sql: Sql {
            sqlite: include_str!("../../migrations/sqlite/0010_order_parts.sql"),
            postgres: include_str!("../../migrations/postgres/0010_order_parts.sql"),
        },
    },
    Migration {
        version: 11,
        name: "store_items",
        only: Some(Role::Store),
        sql: Sql {
            sqlite: include_str!("../../migrations/sqlite/0011_store_items.sql"),
            postgres: include_str!("../../migrations/postgres/0011_store_items.sql"),
        },
    },
    Migration {
        version: 12,
        name: "parcel_lines",
        only: None,
        sql: Sql {
            sqlite: include_str!("../../migrations/sqlite/0012_parcel_lines.sql"),
            postgres: include_str!("../../migrations/postgres/0012_parcel_lines.sql"),
        },
    },
    Migration {
        version: 13,
        name: "rejections",
        only: None,
        sql: Sql {
            sqlite: include_str!("../../migrations/sqlite/0013_rejections.sql"),
            postgres: include_str!("../../migrations/postgres/0013_rejections.sql"),
        },
    },
    Migration {
        version: 14,
        name: "typed_holds",
        only: None,
        sql: Sql {
            sqlite: include_str!("../../migrations/sqlite/0014_typed_holds.sql"),
            postgres: include_str!("../../migrations/postgres/0014_typed_holds.sql"),
        },
    },
    Migration {
        version: 15,
        name: "warehouse_withdrawn",
        only: Some(Role::Warehouse),
        sql: Sql {
            sqlite: include_str!("../../migrations/sqlite/0015_warehouse_withdrawn.sql"),
            postgres: include_str!("../../migrations/postgres/0015_warehouse_withdrawn.sql"),
        },
    },
    Migration {
        version: 16,
        name: "audit_diff_dead_letters",
        only: None,
        sql: Sql {
            sqlite: include_str!("../../migrations/sqlite/0016_audit_diff_dead_letters.sql"),
            postgres: include_str!("../../migrations/postgres/0016_audit_diff_dead_letters.sql"),
        },
    },
    Migration {
        version: 17,
        name: "sync_history",
        only: None,
        sql: Sql {
            sqlite: include_str!("../../migrations/sqlite/0017_sync_history.sql"),
            postgres: include_str!("../../migrations/postgres/0017_sync_history.sql"),
        },
    },
    // One number, one file per role: a database runs the one of its role
    // (they differ only in the status column an index ranks).
    Migration {
        version: 18,
        name: "lists",
        only: Some(Role::Store),
        sql: Sql {
            sqlite: include_str!("../../migrations/sqlite/0018_lists_store.sql"),
            postgres: include_str!("../../migrations/postgres/0018_lists_store.sql"),
        },
    },
    Migration {
        version: 18,
        name: "lists",
        only: Some(Role::Warehouse),
        sql: Sql {
            sqlite: include_str!("../../migrations/sqlite/0018_lists_warehouse.sql"),
            postgres: include_str!("../../migrations/postgres/0018_lists_warehouse.sql"),
        },
    },
    // Order numbers without a row lock held to commit (store only).
    Migration {
        version: 19,
        name: "order_numbers",
        only: Some(Role::Store),
        sql: Sql {
            sqlite: include_str!("../../migrations/sqlite/0019_order_numbers.sql"),
            postgres: include_str!("../../migrations/postgres/0019_order_numbers.sql"),
        },
    },
    // One number, one file per role: each drops the indexes its role's
    // queries do not need.
    Migration {
        version: 20,
        name: "fewer_indexes",
        only: Some(Role::Store),
        sql: Sql {
            sqlite: include_str!("../../migrations/sqlite/0020_fewer_indexes_store.sql"),
            postgres: include_str!("../../migrations/postgres/0020_fewer_indexes_store.sql"),
        },
    },
    Migration {
        version: 20,
        name: "fewer_indexes",
        only: Some(Role::Warehouse),
        sql: Sql {
            sqlite: include_str!("../../migrations/sqlite/0020_fewer_indexes_warehouse.sql"),
            postgres: include_str!("../../migrations/postgres/0020_fewer_indexes_warehouse.sql"),
        },
    },
    // One number, one file per role: each makes its role's tables with
    // composite or text keys WITHOUT ROWID (SQLite only), and the store's
    // unit prices move into its items (both databases).
    Migration {
        version: 21,
        name: "without_rowid",
        only: Some(Role::Store),
        sql: Sql {
            sqlite: include_str!("../../migrations/sqlite/0021_without_rowid_store.sql"),
            postgres: include_str!("../../migrations/postgres/0021_without_rowid_store.sql"),
        },
    },
    Migration {
        version: 21,
        name: "without_rowid",
        only: Some(Role::Warehouse),
        sql: Sql {
            sqlite: include_str!("../../migrations/sqlite/0021_without_rowid_warehouse.sql"),
            postgres: include_str!("../../migrations/postgres/0021_without_rowid_warehouse.sql"),
        },
    },
];

/// An arbitrary constant: the PostgreSQL advisory lock that keeps two
/// processes starting together from migrating at once.
const MIGRATION_LOCK: i64 = 0x0f_f11e_d000;

/// Applies the pending migrations of `role`. Returns how many were applied.
pub async fn run(db: &Db, role: Role) -> Result<usize, ConnectError> {
    let fail = |e: sqlx::Error| ConnectError::Migrate(e.to_string());
    let _borrow = db.queue.as_ref().map(super::writer::Queue::borrow);
    let mut conn = db.write.acquire().await.map_err(fail)?;
    if db.dialect == Dialect::Postgres {
        conn.execute(
            sqlx::query("SELECT 1 FROM (SELECT pg_advisory_lock($1)) AS l").bind(MIGRATION_LOCK),
        )
        .await
        .map_err(fail)?;
    }
    let result = apply(&mut conn, db.dialect, role).await;
    if db.dialect == Dialect::Postgres {
        // Released on disconnect too; this just frees it early.
        let _ = conn
            .execute(
                sqlx::query("SELECT 1 FROM (SELECT pg_advisory_unlock($1)) AS l")
                    .bind(MIGRATION_LOCK),
            )
            .await;
    }
    result
}

async fn apply(
    conn: &mut sqlx::AnyConnection,
    dialect: Dialect,
    role: Role,
) -> Result<usize, ConnectError> {
    let fail = |e: sqlx::Error| ConnectError::Migrate(e.to_string());
    conn.execute(sqlx::raw_sql(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL);
         CREATE TABLE IF NOT EXISTS service_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);",
    ))
    .await
    .map_err(fail)?;

    let recorded: Option<String> = sqlx::query("SELECT value FROM service_meta WHERE key = 'role'")
        .fetch_optional(&mut *conn)
        .await
        .map_err(fail)?
        .map(|r| r.try_get(0))
        .transpose()
        .map_err(fail)?;
    match recorded.as_deref().map(Role::parse) {
        Some(Some(r)) if r == role => {}
        Some(Some(r)) => {
            return Err(ConnectError::WrongRole(format!(
                "this database belongs to the {r}, not the {role}; point --database-url at the {role}'s database"
            )));
        }
        Some(None) => {
            return Err(ConnectError::WrongRole(
                "the database records an unknown role".into(),
            ));
        }
        None => {
            sqlx::query("INSERT INTO service_meta (key, value) VALUES ('role', $1)")
                .bind(role.as_str())
                .execute(&mut *conn)
                .await
                .map_err(fail)?;
        }
    }

    let applied: Vec<i64> = sqlx::query("SELECT version FROM schema_migrations")
        .fetch_all(&mut *conn)
        .await
        .map_err(fail)?
        .iter()
        .map(|r| r.try_get::<i64, _>(0))
        .collect::<Result<_, _>>()
        .map_err(fail)?;

    let mut count = 0;
    for m in MIGRATIONS
        .iter()
        .filter(|m| m.only.is_none_or(|r| r == role))
    {
        if applied.contains(&m.version) {
            continue;
        }
        let sql = m.sql.text(dialect);
        let step = |e: sqlx::Error| {
            ConnectError::Migrate(format!("migration {} ({}): {e}", m.version, m.name))
        };
        let mut tx = sqlx::Connection::begin(&mut *conn).await.map_err(step)?;
        tx.execute(sqlx::raw_sql(sql)).await.map_err(step)?;
        sqlx::query(
            "INSERT INTO schema_migrations (version, name, applied_at) VALUES ($1, $2, $3)",
        )
        .bind(m.version)
        .bind(m.name)
        .bind(now_micros())
        .execute(&mut *tx)
        .await
        .map_err(step)?;
        tx.commit().await.map_err(step)?;
        tracing::info!(version = m.version, name = m.name, "applied migration");
        count += 1;
    }
    Ok(count)
}

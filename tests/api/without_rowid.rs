//! Migration 21: on SQLite the tables with composite or text primary keys
//! become WITHOUT ROWID tables (one b-tree per table instead of two: fewer
//! pages written per order). A database from before it keeps every row of
//! them, with the same keys and indexes, and works on; on PostgreSQL the
//! migration does nothing and the rows are kept all the same.

use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::{AnyConnection, Connection, Executor};

use crate::both_backends;
use crate::helpers::*;

/// The tables migration 21 rebuilds at each role.
const STORE_TABLES: [&str; 7] = [
    "order_lines",
    "order_items",
    "order_prices",
    "order_line_prices",
    "shipments",
    "outbox",
    "seen_webhooks",
];
const WAREHOUSE_TABLES: [&str; 4] = ["order_lines", "shipments", "outbox", "seen_webhooks"];

/// Runs `sql` (several statements) against the database at `url`.
async fn script_at(url: &str, sql: &str) {
    sqlx::any::install_default_drivers();
    let mut c = AnyConnection::connect(url).await.expect("connect");
    c.execute(sqlx::raw_sql(sql)).await.expect("script");
    c.close().await.ok();
}

/// Every row of each of `tables`, sorted (a table's scan order may change
/// with its layout; its content must not).
async fn rows_of(side: &Side, tables: &[&str]) -> Vec<(String, Vec<String>)> {
    let mut out = Vec::new();
    for t in tables {
        let mut rows: Vec<String> = side
            .dump_table(t)
            .await
            .lines()
            .map(str::to_owned)
            .collect();
        rows.sort();
        out.push((t.to_string(), rows));
    }
    out
}

/// The SQL that made `table` (SQLite).
async fn table_sql(side: &Side, table: &str) -> String {
    side.sql(&format!(
        "SELECT sql FROM sqlite_schema WHERE type = 'table' AND name = '{table}'"
    ))
    .await
    .concat()
}

/// The names of the indexes on `table` (SQLite), sorted.
async fn index_names(side: &Side, table: &str) -> Vec<String> {
    let mut names = side
        .sql(&format!(
            "SELECT name FROM sqlite_schema WHERE type = 'index' AND tbl_name = '{table}' AND sql IS NOT NULL"
        ))
        .await;
    names.sort();
    names
}

/// Turns `table` back into the rowid table it was before migration 21
/// (SQLite): the same definition without `WITHOUT ROWID`, the same rows and
/// indexes.
async fn back_to_rowid(side: &Side, table: &str) {
    let sql = table_sql(side, table).await;
    assert!(
        sql.ends_with("WITHOUT ROWID"),
        "{table} is not WITHOUT ROWID after migration 21: {sql}"
    );
    let old = sql
        .trim_end_matches("WITHOUT ROWID")
        .trim_end()
        .replacen(&format!("\"{table}\""), &format!("{table}_old"), 1)
        .replacen(
            &format!("TABLE {table} "),
            &format!("TABLE {table}_old "),
            1,
        );
    assert!(old.contains(&format!("{table}_old")), "{old}");
    let indexes = side
        .sql(&format!(
            "SELECT sql FROM sqlite_schema WHERE type = 'index' AND tbl_name = '{table}' AND sql IS NOT NULL"
        ))
        .await;
    let mut script = format!(
        "{old};\nINSERT INTO {table}_old SELECT * FROM {table};\nDROP TABLE {table};\n\
         ALTER TABLE {table}_old RENAME TO {table};\n"
    );
    for i in indexes {
        script.push_str(&i);
        script.push_str(";\n");
    }
    script_at(&side.db.url, &script).await;
    assert!(
        !table_sql(side, table).await.contains("WITHOUT ROWID"),
        "{table} was not turned back into a rowid table"
    );
}

async fn ship(warehouse: &Side, id: &str) {
    for step in [
        json!({"status": "picking"}),
        json!({"status": "packed"}),
        json!({"status": "shipped", "carrier": "UPS", "tracking_number": "1Z021"}),
    ] {
        let (s, body) = warehouse
            .post(&format!("/api/v1/orders/{id}/fulfillment"), &step)
            .await;
        assert_eq!(s, StatusCode::OK, "{body}");
    }
}

/// Waits until every outbox row of `side` is delivered (nothing in flight
/// that a restart would change).
async fn all_delivered(side: &Side) {
    eventually(20, "every outbox row delivered", || async {
        let left = side
            .sql("SELECT COUNT(*) FROM outbox WHERE state <> 'delivered'")
            .await;
        (left == ["0"]).then_some(())
    })
    .await;
}

async fn migration_21_keeps_every_row(b: Backend) {
    let Some(mut pair) = Pair::start(b).await else {
        return;
    };
    let mut ids = Vec::new();
    for name in ["Ada", "Grace", "Edsger"] {
        let mut body = order_body(name);
        body["lines"]
            .as_array_mut()
            .expect("lines")
            .push(json!({"sku": "GAD-2", "name": "Gadget", "quantity": 1, "unit_price": 250}));
        let (s, o) = pair.store.post("/api/v1/orders", &body).await;
        assert_eq!(s, StatusCode::CREATED, "{o}");
        ids.push(id_of(&o));
    }
    for id in &ids {
        wait_for_order(&pair.warehouse, id, "order at the warehouse", |_| true).await;
    }
    ship(&pair.warehouse, &ids[0]).await;
    wait_for_order(&pair.store, &ids[0], "store sees shipped", |o| {
        o["fulfillment"]["status"] == "shipped"
    })
    .await;
    all_delivered(&pair.store).await;
    all_delivered(&pair.warehouse).await;
    pair.store.stop().await;
    pair.warehouse.stop().await;

    let sides: [(&Side, &[&str]); 2] = [
        (&pair.store, &STORE_TABLES),
        (&pair.warehouse, &WAREHOUSE_TABLES),
    ];
    let mut before = Vec::new();
    let mut indexes = Vec::new();
    for (side, tables) in sides {
        let rows = rows_of(side, tables).await;
        // Something of each table to keep (the seen webhook-ids too: the
        // store received the warehouse's changes, the warehouse the store's).
        for (t, r) in &rows {
            assert!(!r.is_empty(), "{:?}: {t} is empty", side.role);
        }
        before.push(rows);
        if b == Backend::Sqlite {
            let mut names = Vec::new();
            for t in tables {
                names.push(index_names(side, t).await);
                back_to_rowid(side, t).await;
            }
            indexes.push(names);
        }
        side.sql("DELETE FROM schema_migrations WHERE version = 21")
            .await;
    }

    pair.store.restart().await;
    pair.warehouse.restart().await;
    let sides: [(&Side, &[&str]); 2] = [
        (&pair.store, &STORE_TABLES),
        (&pair.warehouse, &WAREHOUSE_TABLES),
    ];
    for (k, (side, tables)) in sides.into_iter().enumerate() {
        assert_eq!(
            side.sql("SELECT COUNT(*) FROM schema_migrations WHERE version = 21")
                .await,
            ["1"],
            "{:?}: migration 21 ran again",
            side.role
        );
        assert_eq!(rows_of(side, tables).await, before[k], "{:?}", side.role);
        if b == Backend::Sqlite {
            for (i, t) in tables.iter().enumerate() {
                let sql = table_sql(side, t).await;
                assert!(sql.ends_with("WITHOUT ROWID"), "{:?}: {sql}", side.role);
                assert_eq!(index_names(side, t).await, indexes[k][i], "{t}");
            }
        }
    }

    // The migrated tables are read and written as before: the shipped
    // order with its parcel and prices, and a new order that travels.
    let (s, shipped) = pair.store.get(&format!("/api/v1/orders/{}", ids[0])).await;
    assert_eq!(s, StatusCode::OK, "{shipped}");
    assert_eq!(shipped["fulfillment"]["tracking_number"], "1Z021");
    assert_eq!(shipped["lines"][1]["unit_price"], 250);
    let id = id_of(&create_order(&pair.store, "Barbara").await);
    let back = wait_for_order(&pair.store, &id, "the new order's state is back", |o| {
        o["fulfillment"]["status"] == "pending" && o["sync"]["state"] == "synced"
    })
    .await;
    assert_eq!(back["lines"][0]["sku"], "WID-1");
    let at_warehouse: Value =
        wait_for_order(&pair.warehouse, &id, "at the warehouse", |_| true).await;
    assert_eq!(at_warehouse["lines"][0]["quantity"], 2);
    assert_eq!(
        pair.warehouse
            .sql(&format!(
                "SELECT sku FROM order_lines WHERE order_id = '{id}'"
            ))
            .await,
        ["WID-1"]
    );
    pair.stop().await;
}

both_backends!(migration_21_keeps_every_row);

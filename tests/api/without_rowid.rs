//! Migration 21: on SQLite the tables with composite or text primary keys
//! become WITHOUT ROWID tables (one b-tree per table instead of two: fewer
//! pages written per order), and on both databases each item holds its
//! unit price (order_line_prices is gone). A database from before keeps
//! every row, price and index and works on; edits write the prices where
//! they now are.

use reqwest::StatusCode;
use serde_json::{Value, json};
use sqlx::{AnyConnection, Connection, Executor};

use crate::both_backends;
use crate::helpers::*;

/// The tables migration 21 rebuilds at each role.
const STORE_TABLES: [&str; 6] = [
    "order_lines",
    "order_items",
    "order_prices",
    "shipments",
    "outbox",
    "seen_webhooks",
];
const WAREHOUSE_TABLES: [&str; 4] = ["order_lines", "shipments", "outbox", "seen_webhooks"];

/// Runs `sql` (several statements) against the database at `url`.
async fn script_at(url: &str, sql: &str) {
    fulfillment::storage::install_drivers();
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
    if table == "outbox" {
        // Before, the outbox's key was (peer, order_id), and an index on
        // order_id found an order's rows.
        assert!(script.contains("PRIMARY KEY (order_id, peer)"), "{script}");
        script = script.replace(
            "PRIMARY KEY (order_id, peer)",
            "PRIMARY KEY (peer, order_id)",
        );
        script.push_str("CREATE INDEX outbox_order ON outbox (order_id);\n");
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

/// The store's tables as they were before migration 21: the unit prices
/// in order_line_prices, not in order_items.
const PRICES_APART: &str = "CREATE TABLE order_line_prices (
    order_id    TEXT NOT NULL REFERENCES orders (id),
    line_no     BIGINT NOT NULL,
    unit_price  BIGINT NOT NULL,
    PRIMARY KEY (order_id, line_no));
INSERT INTO order_line_prices (order_id, line_no, unit_price)
    SELECT order_id, line_no, unit_price FROM order_items;
ALTER TABLE order_items DROP COLUMN unit_price;";

/// Whether the store's database has a table `name`.
async fn has_table(side: &Side, b: Backend, name: &str) -> bool {
    let q = match b {
        Backend::Sqlite => {
            format!("SELECT COUNT(*) FROM sqlite_schema WHERE type = 'table' AND name = '{name}'")
        }
        Backend::Postgres => format!(
            "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = '{name}'"
        ),
    };
    side.sql(&q).await == ["1"]
}

/// The stored unit prices of an order's items, in line order.
async fn stored_prices(store: &Side, id: &str) -> Vec<String> {
    store
        .sql(&format!(
            "SELECT unit_price FROM order_items WHERE order_id = '{id}' ORDER BY line_no"
        ))
        .await
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
        if side.role == fulfillment::domain::Role::Store {
            script_at(&side.db.url, PRICES_APART).await;
            assert!(has_table(side, b, "order_line_prices").await);
            assert_eq!(
                side.sql("SELECT COUNT(*) FROM order_line_prices").await,
                ["6"],
                "two lines for each of three orders"
            );
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
                if *t == "outbox" {
                    assert!(sql.contains("PRIMARY KEY (order_id, peer)"), "{sql}");
                }
                assert_eq!(index_names(side, t).await, indexes[k][i], "{t}");
            }
        }
    }

    assert!(
        !has_table(&pair.store, b, "order_line_prices").await,
        "order_line_prices is still there"
    );
    for id in &ids {
        assert_eq!(stored_prices(&pair.store, id).await, ["1999", "250"]);
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

    // Edits write the prices where they are now: a price alone (the lines
    // stay), then a line added (the items are written anew).
    let edit = |lines: Value| json!({ "lines": lines });
    let widget =
        |price: i64| json!({"sku": "WID-1", "name": "Widget", "quantity": 2, "unit_price": price});
    let gadget = json!({"sku": "GAD-2", "name": "Gadget", "quantity": 1, "unit_price": 250});
    let tape = json!({"sku": "TAPE-9", "name": "Tape", "quantity": 3, "unit_price": 75});
    let (s, body) = pair
        .store
        .patch(
            &format!("/api/v1/orders/{}", ids[1]),
            &edit(json!([widget(1500), gadget.clone()])),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(stored_prices(&pair.store, &ids[1]).await, ["1500", "250"]);
    let (s, body) = pair
        .store
        .patch(
            &format!("/api/v1/orders/{}", ids[2]),
            &edit(json!([widget(1999), gadget, tape])),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(
        stored_prices(&pair.store, &ids[2]).await,
        ["1999", "250", "75"]
    );
    let (_, read) = pair.store.get(&format!("/api/v1/orders/{}", ids[2])).await;
    assert_eq!(read["lines"][2]["unit_price"], 75, "{read}");
    let (_, read) = pair.store.get(&format!("/api/v1/orders/{}", ids[1])).await;
    assert_eq!(read["lines"][0]["unit_price"], 1500, "{read}");
    pair.stop().await;
}

both_backends!(migration_21_keeps_every_row);

//! No money at the warehouse (docs/DESIGN.md §5.2): after orders with distinctive
//! prices are created, edited, synced and shipped, nothing the warehouse has
//! or says contains a price, total or currency: not a table, not a column,
//! not the raw SQLite file bytes, not an API answer, not a log line.

use reqwest::StatusCode;
use serde_json::json;

use crate::both_backends;
use crate::helpers::*;

both_backends!(warehouse_never_holds_or_shows_money);

/// Distinctive amounts, looked for as text where money must not be. Twelve
/// digits each: six could turn up by chance inside a microsecond time, a
/// UUID or a metric's float (one run in some hundreds failed so).
pub const PRICE: i64 = 987_654_319_873;
pub const NEW_PRICE: i64 = 876_543_219_871;
pub const SHIPPING: i64 = 456_789_123_457;
const QTY: i64 = 3;

/// Every value that must not appear at the warehouse, as text.
fn forbidden() -> Vec<String> {
    let mut v: Vec<String> = [
        PRICE,
        NEW_PRICE,
        SHIPPING,
        PRICE * QTY,
        PRICE * QTY + SHIPPING,
        NEW_PRICE * QTY + SHIPPING,
    ]
    .iter()
    .map(i64::to_string)
    .collect();
    v.extend(["price", "total", "currency", "shipping_cost", "\"CHF\""].map(String::from));
    v
}

fn assert_clean(what: &str, text: &str) {
    let lower = text.to_lowercase();
    for f in forbidden() {
        assert!(!lower.contains(&f.to_lowercase()), "{what} contains {f:?}");
    }
}

async fn warehouse_never_holds_or_shows_money(b: Backend) {
    // Capture every log line of both services: the service's own events at
    // debug level, libraries as in production (sqlx's debug level echoes SQL
    // text, which is not a log of the service).
    let log = CapturedLogs::install("info,fulfillment=debug,sqlx=warn");

    let Some(pair) = Pair::start(b).await else {
        return;
    };
    let mut ids = Vec::new();
    for i in 0..3 {
        let mut body = order_body(&format!("Money {i}"));
        body["lines"] =
            json!([{"sku": "GOLD-1", "name": "Gold bar", "quantity": QTY, "unit_price": PRICE}]);
        body["shipping_cost"] = json!(SHIPPING);
        body["currency"] = json!("CHF");
        let (s, o) = pair.store.post("/api/v1/orders", &body).await;
        assert_eq!(s, StatusCode::CREATED, "{o}");
        assert_eq!(o["total"], PRICE * QTY + SHIPPING);
        ids.push(id_of(&o));
    }
    // A price edit and a content edit travel too (the content only).
    let (s, _) = pair
        .store
        .patch(
            &format!("/api/v1/orders/{}", ids[1]),
            &json!({"lines": [{"sku": "GOLD-1", "name": "Gold bar", "quantity": QTY, "unit_price": NEW_PRICE}], "notes": "edited twice"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    wait_for_order(&pair.warehouse, &ids[1], "the edit", |o| {
        o["notes"] == "edited twice"
    })
    .await;
    let wh = &pair.warehouse;
    for step in [
        json!({"status": "picking"}),
        json!({"status": "packed"}),
        json!({"status": "shipped", "carrier": "UPS", "tracking_number": "1Z"}),
    ] {
        let (s, _) = wh
            .post(&format!("/api/v1/orders/{}/fulfillment", ids[0]), &step)
            .await;
        assert_eq!(s, StatusCode::OK);
    }
    for id in &ids {
        wait_for_order(&pair.store, id, "round trip", |o| {
            o["sync"]["state"] == "synced" && !o["fulfillment"]["status"].is_null()
        })
        .await;
    }
    let (_, store_view) = pair.store.get(&format!("/api/v1/orders/{}", ids[0])).await;
    assert_eq!(store_view["currency"], "CHF", "the store does show money");

    assert_warehouse_clean(b, &pair.warehouse, &ids).await;
    pair.stop().await;

    // Neither service logs money (the store does not log bodies either).
    // First, proof that the services' lines were captured at all: the
    // creates, the warehouse's steps and both relays.
    let text = log.checked_text(&[
        "order created",
        "fulfillment changed",
        "relay started",
        ids[0].as_str(),
    ]);
    for value in forbidden().iter().take(6) {
        assert!(
            !text.contains(value.as_str()),
            "a log line contains {value}"
        );
    }
    for word in ["price", "currency"] {
        assert!(
            !text.to_lowercase().contains(word),
            "a log line mentions {word}"
        );
    }
}

/// Nothing `wh` has or says contains money: every API answer about `ids`,
/// its metrics, every table, column and value of its database, and (on
/// SQLite) the raw bytes of its files.
async fn assert_warehouse_clean(b: Backend, wh: &Side, ids: &[String]) {
    // Every API answer of the warehouse.
    let mut paths = vec![
        "/api/v1/orders?limit=500".to_owned(),
        "/api/v1/sync/status".to_owned(),
        "/api/v1/openapi.json".to_owned(),
    ];
    for id in ids {
        paths.extend([
            format!("/api/v1/orders/{id}"),
            format!("/api/v1/orders/{id}/audit"),
            format!("/api/v1/orders/{id}/sync"),
        ]);
    }
    for p in &paths {
        let (s, body) = wh.get(p).await;
        assert_eq!(s, StatusCode::OK, "{p}");
        assert_clean(&format!("warehouse {p}"), &body.to_string());
    }
    let metrics = reqwest::get(format!("{}/metrics", wh.url))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    // Prometheus names counters `…_total` (docs/API.md requires
    // fulfillment_sync_delivered_total): a naming convention, not money.
    assert_clean("warehouse /metrics", &metrics.replace("_total", ""));

    // Every table, column and value in the warehouse's database.
    let tables = match b {
        Backend::Sqlite => {
            wh.sql("SELECT name FROM sqlite_master WHERE type = 'table'")
                .await
        }
        Backend::Postgres => {
            wh.sql("SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'public'")
                .await
        }
    };
    assert!(
        tables.iter().any(|t| t == "orders") && tables.len() > 5,
        "{tables:?}"
    );
    let schema = match b {
        Backend::Sqlite => wh.sql("SELECT sql FROM sqlite_master WHERE sql IS NOT NULL").await,
        Backend::Postgres => {
            wh.sql("SELECT table_name || '.' || column_name FROM information_schema.columns WHERE table_schema = 'public'")
                .await
        }
    };
    assert_clean("warehouse schema", &schema.join("\n"));
    for t in &tables {
        let dump = wh.dump_table(t).await;
        assert_clean(&format!("warehouse table {t}"), &dump);
    }
    // The raw bytes of the SQLite files (database and write-ahead log).
    if b == Backend::Sqlite {
        let path = wh.db.url.trim_start_matches("sqlite://").to_owned();
        for file in [path.clone(), format!("{path}-wal")] {
            if let Ok(bytes) = std::fs::read(&file) {
                assert_clean(
                    &format!("raw file {file}"),
                    &String::from_utf8_lossy(&bytes),
                );
            }
        }
    }
}

both_backends!(two_warehouses_never_hold_or_show_money);

/// The same with one store and two warehouses, each holding only its own
/// orders: neither has or shows money.
async fn two_warehouses_never_hold_or_show_money(b: Backend) {
    let Some(t) = crate::routing::three(b).await else {
        return;
    };
    let mut by_warehouse: Vec<(&Side, Vec<String>)> = Vec::new();
    for (wh, country) in [(&t.eu, "GB"), (&t.us, "US")] {
        let mut ids = Vec::new();
        for i in 0..2 {
            let mut body = order_body(&format!("Money {country} {i}"));
            body["shipping_address"]["country"] = json!(country);
            body["lines"] = json!([{"sku": "GOLD-1", "name": "Gold bar", "quantity": QTY, "unit_price": PRICE}]);
            body["shipping_cost"] = json!(SHIPPING);
            body["currency"] = json!("CHF");
            let (s, o) = t.store.post("/api/v1/orders", &body).await;
            assert_eq!(s, StatusCode::CREATED, "{o}");
            ids.push(id_of(&o));
        }
        for id in &ids {
            wait_for_order(wh, id, "the order at its warehouse", |_| true).await;
            wait_for_order(&t.store, id, "the round trip", |o| {
                o["sync"]["state"] == "synced" && !o["fulfillment"]["status"].is_null()
            })
            .await;
        }
        by_warehouse.push((wh, ids));
    }
    for (wh, ids) in &by_warehouse {
        assert_warehouse_clean(b, wh, ids).await;
    }
}

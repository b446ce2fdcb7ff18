//! The whole path of an order: store → warehouse (without money) →
//! fulfillment back to the store; edits, holds and cancel requests.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::*;

both_backends!(
    order_reaches_warehouse_without_money,
    fulfillment_comes_back_to_the_store,
    patch_propagates_and_is_refused_once_picking,
    cancel_before_shipping_cancels,
    cancel_after_shipping_is_rejected_and_visible,
    hold_and_release_return_to_previous_state,
    edit_arriving_after_pick_is_applied_and_flagged,
);

const MONEY_KEYS: [&str; 6] = [
    "unit_price",
    "line_total",
    "subtotal",
    "shipping_cost",
    "total",
    "currency",
];

/// Every object key anywhere in a JSON value.
fn keys(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                out.push(k.clone());
                keys(v, out);
            }
        }
        Value::Array(a) => a.iter().for_each(|v| keys(v, out)),
        _ => {}
    }
}

async fn order_reaches_warehouse_without_money(b: Backend) {
    let Some(pair) = Pair::start(b).await else {
        return;
    };
    let created = create_order(&pair.store, "Ada Lovelace").await;
    assert_eq!(created["number"], "SO-000001");
    assert_eq!(created["status"], "open");
    assert_eq!(created["subtotal"], 3998);
    assert_eq!(created["total"], 4498);
    assert_eq!(created["lines"][0]["line_total"], 3998);
    assert_eq!(
        created["fulfillment"]["status"],
        Value::Null,
        "not reported yet"
    );
    assert_eq!(created["sync"]["store_version"], 1);
    let id = id_of(&created);

    let at_wh = wait_for_order(&pair.warehouse, &id, "order at the warehouse", |_| true).await;
    assert_eq!(at_wh["number"], "SO-000001");
    assert_eq!(at_wh["status"], "pending");
    assert_eq!(at_wh["customer"]["name"], "Ada Lovelace");
    assert_eq!(
        at_wh["lines"][0],
        json!({"sku": "WID-1", "name": "Widget", "quantity": 2, "shipped_quantity": 0,
               "cancelled_quantity": 0, "rejected_quantity": 0})
    );
    assert_eq!(at_wh["deliver_by"], "2026-12-01T17:00:00Z");
    assert_eq!(at_wh["cancel_requested"], false);
    let mut k = Vec::new();
    keys(&at_wh, &mut k);
    for money in MONEY_KEYS {
        assert!(
            !k.iter().any(|x| x == money),
            "warehouse order shows {money}: {at_wh}"
        );
    }
    // Not in the warehouse's database either: no such table or column exists.
    let schema_query = match b {
        Backend::Sqlite => "SELECT sql FROM sqlite_master WHERE sql IS NOT NULL",
        Backend::Postgres => {
            "SELECT table_name || '.' || column_name FROM information_schema.columns WHERE table_schema = 'public'"
        }
    };
    let schema = pair
        .warehouse
        .sql(schema_query)
        .await
        .join("\n")
        .to_lowercase();
    assert!(
        schema.contains("order_lines"),
        "the schema query sees the tables"
    );
    for word in ["price", "total", "currency", "shipping_cost"] {
        assert!(!schema.contains(word), "warehouse schema mentions {word}");
    }

    // The warehouse's first fulfillment state comes back to the store.
    let back = wait_for_order(&pair.store, &id, "store sees pending", |o| {
        o["fulfillment"]["status"] == "pending" && o["sync"]["state"] == "synced"
    })
    .await;
    assert_eq!(back["sync"]["warehouse_version"], 1);
    pair.stop().await;
}

async fn ship(warehouse: &Side, id: &str) -> Value {
    for step in [json!({"status": "picking"}), json!({"status": "packed"})] {
        let (s, body) = warehouse
            .post(&format!("/api/v1/orders/{id}/fulfillment"), &step)
            .await;
        assert_eq!(s, StatusCode::OK, "{body}");
    }
    let (s, body) = warehouse
        .post(
            &format!("/api/v1/orders/{id}/fulfillment"),
            &json!({"status": "shipped", "carrier": "UPS", "tracking_number": "1Z999"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "shipped");
    body
}

async fn fulfillment_comes_back_to_the_store(b: Backend) {
    let Some(pair) = Pair::start(b).await else {
        return;
    };
    let id = id_of(&create_order(&pair.store, "Grace Hopper").await);
    wait_for_order(&pair.warehouse, &id, "order at the warehouse", |_| true).await;
    let shipped = ship(&pair.warehouse, &id).await;
    assert!(shipped["shipped_at"].is_string());

    let at_store = wait_for_order(&pair.store, &id, "store sees shipped", |o| {
        o["fulfillment"]["status"] == "shipped"
    })
    .await;
    let f = &at_store["fulfillment"];
    assert_eq!(f["carrier"], "UPS");
    assert_eq!(f["tracking_number"], "1Z999");
    assert_eq!(f["shipped_at"], shipped["shipped_at"]);
    assert_eq!(
        at_store["sync"]["warehouse_version"], 4,
        "pending, picking, packed, shipped"
    );
    // Stored, not just answered.
    let stored = pair
        .store
        .sql(&format!("SELECT status FROM orders WHERE id = '{id}'"))
        .await;
    assert_eq!(stored, ["shipped"]);
    let tracking = pair
        .store
        .sql(&format!(
            "SELECT tracking_number FROM shipments WHERE order_id = '{id}'"
        ))
        .await;
    assert_eq!(tracking, ["1Z999"]);

    // Each side's audit trail names who changed what.
    let (_, audit) = pair.store.get(&format!("/api/v1/orders/{id}/audit")).await;
    let items = audit["items"].as_array().expect("items");
    assert_eq!(items[0]["actor"], json!({"kind": "token", "name": "tests"}));
    assert_eq!(items[0]["changes"], json!(["created"]));
    assert!(items.iter().any(|e| {
        e["actor"]["kind"] == "sync"
            && e["changes"]
                .as_array()
                .is_some_and(|c| c.contains(&json!("shipment")))
    }));
    let (_, wh_audit) = pair
        .warehouse
        .get(&format!("/api/v1/orders/{id}/audit"))
        .await;
    assert_eq!(
        wh_audit["items"][0]["actor"],
        json!({"kind": "sync", "name": "store"})
    );
    assert!(
        wh_audit["items"]
            .as_array()
            .expect("items")
            .iter()
            .any(|e| e["actor"]["kind"] == "token")
    );

    // The delivery timeline shows the peer's answers.
    let (_, timeline) = pair
        .warehouse
        .get(&format!("/api/v1/orders/{id}/sync"))
        .await;
    assert_eq!(timeline["state"], "synced");
    assert!(
        timeline["attempts"]
            .as_array()
            .is_some_and(|a| !a.is_empty() && a[0]["outcome"] == "applied"),
        "{timeline}"
    );
    pair.stop().await;
}

async fn patch_propagates_and_is_refused_once_picking(b: Backend) {
    let Some(pair) = Pair::start(b).await else {
        return;
    };
    let id = id_of(&create_order(&pair.store, "Alan Turing").await);
    let path = format!("/api/v1/orders/{id}");
    let (s, patched) = pair
        .store
        .patch(
            &path,
            &json!({"notes": "ring twice", "lines": [
                {"sku": "TAPE-9", "name": "Paper tape", "quantity": 3, "unit_price": 250},
                {"sku": "WID-1", "name": "Widget", "quantity": 1, "unit_price": 1999}],
                "shipping_cost": 0}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{patched}");
    assert_eq!(patched["total"], 750 + 1999);
    assert_eq!(patched["sync"]["store_version"], 2);

    let at_wh = wait_for_order(
        &pair.warehouse,
        &id,
        "patched content at the warehouse",
        |o| o["notes"] == "ring twice",
    )
    .await;
    assert_eq!(at_wh["lines"].as_array().map(Vec::len), Some(2));
    assert_eq!(at_wh["lines"][0]["sku"], "TAPE-9");
    assert_eq!(at_wh["sync"]["store_version"], 2);

    let (s, _) = pair
        .warehouse
        .post(
            &format!("{path}/fulfillment"),
            &json!({"status": "picking"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    wait_for_order(&pair.store, &id, "store learns of picking", |o| {
        o["fulfillment"]["status"] == "picking"
    })
    .await;
    let (s, problem) = pair.store.patch(&path, &json!({"notes": "too late"})).await;
    assert_eq!(s, StatusCode::CONFLICT, "{problem}");
    assert!(
        problem["detail"]
            .as_str()
            .is_some_and(|d| d.contains("picking")),
        "{problem}"
    );
    let (_, after) = pair.store.get(&path).await;
    assert_eq!(
        after["notes"], "ring twice",
        "a refused edit changes nothing"
    );
    assert_eq!(after["sync"]["store_version"], 2);
    pair.stop().await;
}

async fn cancel_before_shipping_cancels(b: Backend) {
    let Some(pair) = Pair::start(b).await else {
        return;
    };
    let id = id_of(&create_order(&pair.store, "Hedy Lamarr").await);
    let path = format!("/api/v1/orders/{id}");
    wait_for_order(&pair.warehouse, &id, "order at the warehouse", |_| true).await;
    let (s, body) = pair
        .store
        .post(
            &format!("{path}/cancel"),
            &json!({"reason": "changed mind"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "cancel_requested");
    let v = body["sync"]["store_version"].clone();
    // An empty POST (no body, no content type) is a cancel without a reason.
    let r = pair
        .store
        .http
        .post(format!("{}{path}/cancel", pair.store.url))
        .bearer_auth(&pair.store.token)
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), StatusCode::OK);
    let (s, again) = pair.store.post(&format!("{path}/cancel"), &json!({})).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        again["sync"]["store_version"], v,
        "repeating the request is a no-op"
    );

    let wh = wait_for_order(&pair.warehouse, &id, "warehouse cancels", |o| {
        o["status"] == "cancelled"
    })
    .await;
    assert_eq!(wh["cancel_requested"], true);
    assert_eq!(wh["cancel_reason"], "changed mind");
    wait_for_order(&pair.store, &id, "store sees cancelled", |o| {
        o["fulfillment"]["status"] == "cancelled"
    })
    .await;
    let (s, _) = pair.store.patch(&path, &json!({"notes": "x"})).await;
    assert_eq!(s, StatusCode::CONFLICT, "no edits after a cancel request");
    let (s, p) = pair
        .warehouse
        .post(
            &format!("{path}/fulfillment"),
            &json!({"status": "picking"}),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert!(
        p["detail"]
            .as_str()
            .is_some_and(|d| d.contains("cancelled")),
        "{p}"
    );
    pair.stop().await;
}

async fn cancel_after_shipping_is_rejected_and_visible(b: Backend) {
    let Some(pair) = Pair::start(b).await else {
        return;
    };
    let id = id_of(&create_order(&pair.store, "Katherine Johnson").await);
    wait_for_order(&pair.warehouse, &id, "order at the warehouse", |_| true).await;
    ship(&pair.warehouse, &id).await;
    let (s, _) = pair
        .store
        .post(&format!("/api/v1/orders/{id}/cancel"), &json!({}))
        .await;
    assert_eq!(s, StatusCode::OK);
    let wh = wait_for_order(&pair.warehouse, &id, "warehouse answers the cancel", |o| {
        !o["cancel_rejected_reason"].is_null()
    })
    .await;
    assert_eq!(wh["status"], "shipped");
    let st = wait_for_order(&pair.store, &id, "store sees the refusal", |o| {
        !o["fulfillment"]["cancel_rejected_reason"].is_null()
    })
    .await;
    assert_eq!(st["fulfillment"]["status"], "shipped");
    assert_eq!(st["status"], "cancel_requested");
    pair.stop().await;
}

async fn hold_and_release_return_to_previous_state(b: Backend) {
    let Some(pair) = Pair::start(b).await else {
        return;
    };
    let id = id_of(&create_order(&pair.store, "Edsger Dijkstra").await);
    let path = format!("/api/v1/orders/{id}/fulfillment");
    wait_for_order(&pair.warehouse, &id, "order at the warehouse", |_| true).await;
    assert_eq!(
        pair.warehouse
            .post(&path, &json!({"status": "picking"}))
            .await
            .0,
        StatusCode::OK
    );
    let (s, body) = pair
        .warehouse
        .post(&path, &json!({"status": "on_hold"}))
        .await;
    assert_eq!(
        s,
        StatusCode::UNPROCESSABLE_ENTITY,
        "a hold needs a reason: {body}"
    );
    assert_eq!(body["errors"][0]["field"], "reason");
    let (s, held) = pair
        .warehouse
        .post(
            &path,
            &json!({"status": "on_hold", "reason": "out of stock"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(held["hold_reason"], "out of stock");
    let st = wait_for_order(&pair.store, &id, "store sees the hold", |o| {
        o["fulfillment"]["status"] == "on_hold"
    })
    .await;
    assert_eq!(st["fulfillment"]["hold_reason"], "out of stock");
    let (s, released) = pair
        .warehouse
        .post(&path, &json!({"status": "released"}))
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        released["status"], "picking",
        "release returns to the state it left"
    );
    assert_eq!(released["hold_reason"], Value::Null);
    wait_for_order(&pair.store, &id, "store sees the release", |o| {
        o["fulfillment"]["status"] == "picking"
    })
    .await;
    pair.stop().await;
}

/// The store edits an order it still believes pending while the warehouse
/// already picks it: the edit is applied (the store owns content) and flagged.
async fn edit_arriving_after_pick_is_applied_and_flagged(b: Backend) {
    let Some(pair) = Pair::start(b).await else {
        return;
    };
    let id = id_of(&create_order(&pair.store, "Barbara Liskov").await);
    wait_for_order(&pair.warehouse, &id, "order at the warehouse", |_| true).await;
    // Hold back fulfillment news: stop the store, pick at the warehouse,
    // then edit at the store before the news can arrive.
    let mut pair = pair;
    pair.store.stop().await;
    let (s, _) = pair
        .warehouse
        .post(
            &format!("/api/v1/orders/{id}/fulfillment"),
            &json!({"status": "picking"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let engine_db = pair.store.db.url.clone();
    // Edit directly through a store engine on the same database while the
    // store service is down (the way an in-flight edit would land).
    let db = fulfillment::storage::Db::open(
        &engine_db,
        fulfillment::domain::Role::Store,
        &Default::default(),
    )
    .await
    .expect("open store db");
    let engine = fulfillment::engine::Engine::new(db.clone(), fulfillment::domain::Role::Store);
    let patch: fulfillment::domain::order::PatchOrderInput =
        serde_json::from_value(json!({"notes": "gift wrap"})).expect("patch");
    engine
        .patch_order(
            &fulfillment::domain::Actor::Token("tests".into()),
            fulfillment::domain::OrderId::parse(&id).expect("id"),
            &patch,
        )
        .await
        .expect("edit accepted while the store still thinks pending");
    db.close().await;
    pair.store.restart().await;

    let wh = wait_for_order(&pair.warehouse, &id, "edit applied at the warehouse", |o| {
        o["notes"] == "gift wrap"
    })
    .await;
    assert_eq!(wh["status"], "picking");
    assert_eq!(wh["content_changed_after_pick"], true);
    let st = wait_for_order(&pair.store, &id, "store sees the flag", |o| {
        o["fulfillment"]["content_changed_after_pick"] == true
    })
    .await;
    assert_eq!(st["fulfillment"]["status"], "picking");
    pair.stop().await;
}

//! One store, two warehouses (`eu` and `us`, each its own service with its
//! own secret): orders are routed whole by destination and SKU, each
//! warehouse receives only its own; one warehouse down never delays the
//! other; a warehouse cannot change another's orders; an order no
//! warehouse takes waits until `route` finds one.

use std::time::{Duration, Instant};

use fulfillment::domain::warehouse::WarehouseInput;
use fulfillment::sync::signature::Secrets;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::*;

both_backends!(
    orders_go_to_the_warehouse_that_takes_them,
    one_warehouse_down_never_delays_another,
    a_warehouse_cannot_change_another_warehouses_orders,
);

pub use crate::helpers::{EU_SECRET, Three, US_SECRET, three};

/// The example order, shipping to `country`, its one line of `sku`.
pub fn order_to(name: &str, country: &str, sku: &str) -> Value {
    let mut body = order_body(name);
    body["shipping_address"]["country"] = json!(country);
    body["lines"][0]["sku"] = json!(sku);
    body
}

/// Creates `body` at the store (201) and returns the order's id.
pub async fn create(store: &Side, body: &Value) -> String {
    let (s, o) = store.post("/api/v1/orders", body).await;
    assert_eq!(s, StatusCode::CREATED, "{o}");
    id_of(&o)
}

/// Whether `side` has the order `id`.
pub async fn has(side: &Side, id: &str) -> bool {
    side.get(&format!("/api/v1/orders/{id}")).await.0 == StatusCode::OK
}

async fn orders_go_to_the_warehouse_that_takes_them(b: Backend) {
    let Some(t) = three(b).await else { return };
    let gb = create(&t.store, &order_to("London", "GB", "WID-1")).await;
    let us = create(&t.store, &order_to("Boston", "US", "WID-1")).await;
    wait_for_order(&t.eu, &gb, "the GB order at eu", |_| true).await;
    wait_for_order(&t.us, &us, "the US order at us", |_| true).await;
    wait_for_order(&t.store, &gb, "eu's fulfillment back at the store", |o| {
        o["fulfillment"]["status"] == "pending"
    })
    .await;
    assert!(!has(&t.us, &gb).await, "us never sees eu's order");
    assert!(!has(&t.eu, &us).await, "eu never sees us's order");
    let routed = t
        .store
        .sql(&format!(
            "SELECT warehouse FROM orders WHERE id IN ('{gb}', '{us}') ORDER BY warehouse"
        ))
        .await;
    assert_eq!(routed, ["eu", "us"]);

    // Nobody ships to Japan: the order is taken (201) and waits, routed
    // nowhere, sent nowhere.
    let jp = create(&t.store, &order_to("Tokyo", "JP", "WID-1")).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!has(&t.eu, &jp).await && !has(&t.us, &jp).await);
    assert_eq!(
        t.store
            .sql(&format!(
                "SELECT COUNT(*) FROM outbox WHERE order_id = '{jp}'"
            ))
            .await,
        ["0"]
    );
    // Once a warehouse ships there, `route` sends it.
    let engine = t.store.service.as_ref().expect("running").engine();
    engine
        .update_warehouse(
            "us",
            &WarehouseInput {
                countries: Some(vec!["US".into(), "CA".into(), "JP".into()]),
                ..Default::default()
            },
        )
        .await
        .expect("us ships to Japan");
    let id = fulfillment::domain::OrderId::parse(&jp).expect("id");
    engine
        .route_order(&fulfillment::domain::Actor::System("test".into()), id)
        .await
        .expect("routed");
    wait_for_order(&t.us, &jp, "the JP order at us", |_| true).await;
    assert!(!has(&t.eu, &jp).await);
}

async fn one_warehouse_down_never_delays_another(b: Backend) {
    let Some(mut t) = three(b).await else { return };
    t.us.stop().await;
    // us's relay fails and backs off; its breaker opens.
    let mut to_us = Vec::new();
    for i in 0..5 {
        to_us.push(create(&t.store, &order_to(&format!("US {i}"), "US", "WID-1")).await);
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    // eu's orders still arrive at once.
    let started = Instant::now();
    let mut to_eu = Vec::new();
    for i in 0..5 {
        to_eu.push(create(&t.store, &order_to(&format!("EU {i}"), "GB", "WID-1")).await);
    }
    for id in &to_eu {
        wait_for_order(&t.eu, id, "eu's order arrives while us is down", |_| true).await;
    }
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "eu's orders took {:?} while us was down",
        started.elapsed()
    );
    // eu's rows are settled once its answers are back (an order can be at
    // eu a moment before the store has written down eu's answer); then
    // only us's five wait.
    let st = eventually(5, "only us's five pending", || async {
        let (_, st) = t.store.get("/api/v1/sync/status").await;
        (st["pending"] == 5).then_some(st)
    })
    .await;
    let us_entry = st["warehouses"]
        .as_array()
        .and_then(|w| w.iter().find(|w| w["name"] == "us"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(us_entry["pending"], 5, "us's five wait: {st}");
    assert!(
        t.store
            .service
            .as_ref()
            .expect("running")
            .peers()
            .state("eu")
            == fulfillment::sync::breaker::BreakerState::Closed
    );
    // us comes back: its orders arrive.
    t.us.restart().await;
    for id in &to_us {
        wait_for_order(&t.us, id, "us's order arrives once it is back", |_| true).await;
    }
}

async fn a_warehouse_cannot_change_another_warehouses_orders(b: Backend) {
    let Some(t) = three(b).await else { return };
    let gb = create(&t.store, &order_to("London", "GB", "WID-1")).await;
    wait_for_order(&t.store, &gb, "eu reports the order", |o| {
        o["fulfillment"]["status"] == "pending"
    })
    .await;
    // `us`, signing with its own secret, claims eu's order has shipped.
    let snapshot = |tracking: &str| {
        json!({"changes": [{
            "id": gb, "warehouse_version": 99, "status": "shipped",
            "carrier": "UPS", "tracking_number": tracking,
            "shipped_at": "2026-11-29T12:00:00Z",
            "cancel_rejected_reason": null, "content_changed_after_pick": false,
            "hold_reason": null, "held_from": null
        }]})
    };
    let answer = send_signed_as(&t.store, US_SECRET, &snapshot("FORGED")).await;
    assert_eq!(answer["results"][0]["outcome"], "rejected", "{answer}");
    assert!(
        answer["results"][0]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("another warehouse")),
        "{answer}"
    );
    let (_, o) = t.store.get(&format!("/api/v1/orders/{gb}")).await;
    assert_eq!(o["fulfillment"]["status"], "pending", "unchanged: {o}");
    assert_eq!(o["sync"]["warehouse_version"], 1, "{o}");
    // The same change signed by eu, whose order it is, applies.
    let answer = send_signed_as(&t.store, EU_SECRET, &snapshot("1Z-EU")).await;
    assert_eq!(answer["results"][0]["outcome"], "applied", "{answer}");
    let (_, o) = t.store.get(&format!("/api/v1/orders/{gb}")).await;
    assert_eq!(o["fulfillment"]["tracking_number"], "1Z-EU", "{o}");
    let ts = chrono::Utc::now().timestamp();
    // A secret nobody has is refused outright.
    let (s, _) = {
        let body = json!({"changes": []}).to_string();
        let signature =
            Secrets::new(&["nobody's"])
                .expect("secret")
                .sign("msg_x", ts, body.as_bytes());
        let res = t
            .store
            .http
            .post(format!("{}/api/v1/sync/changes", t.store.url))
            .header("webhook-id", "msg_x")
            .header("webhook-timestamp", ts.to_string())
            .header("webhook-signature", signature)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .expect("sent");
        (res.status(), ())
    };
    assert_eq!(s, StatusCode::UNAUTHORIZED);
}

/// POSTs `body` to `side`'s `/api/v1/sync/changes` signed with `secret`
/// and returns the (200) answer.
async fn send_signed_as(side: &Side, secret: &str, body: &Value) -> Value {
    let body = body.to_string();
    let id = format!("msg_{}", uuid::Uuid::now_v7().simple());
    let ts = chrono::Utc::now().timestamp();
    let signature = Secrets::new(&[secret])
        .expect("secret")
        .sign(&id, ts, body.as_bytes());
    let res = side
        .http
        .post(format!("{}/api/v1/sync/changes", side.url))
        .header("webhook-id", &id)
        .header("webhook-timestamp", ts.to_string())
        .header("webhook-signature", signature)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("sent");
    assert_eq!(res.status(), StatusCode::OK);
    res.json().await.expect("json")
}

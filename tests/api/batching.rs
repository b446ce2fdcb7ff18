//! Commands that arrive together are written together (creates at the
//! store, fulfillment steps at the warehouse). Batching must not change
//! what each caller sees or what is stored: every create gets its own id
//! and number, and concurrent steps on one order are taken one after the
//! other, each checked against the state the one before left.

use std::collections::HashSet;

use futures_util::future::join_all;
use reqwest::StatusCode;
use serde_json::json;

use crate::both_backends;
use crate::helpers::*;

both_backends!(
    concurrent_creates_each_get_their_own_order,
    concurrent_steps_on_one_order_are_taken_once,
);

async fn concurrent_creates_each_get_their_own_order(b: Backend) {
    let Some(pair) = Pair::start(b).await else {
        return;
    };
    let names: Vec<String> = (0..60).map(|i| format!("Customer {i}")).collect();
    let bodies: Vec<_> = names.iter().map(|n| order_body(n)).collect();
    let created = join_all(bodies.iter().map(|b| pair.store.post("/api/v1/orders", b))).await;
    let mut ids = HashSet::new();
    let mut numbers = HashSet::new();
    for ((status, body), name) in created.iter().zip(&names) {
        assert_eq!(*status, StatusCode::CREATED, "{body}");
        // Each answer is the caller's own order, not a neighbour's.
        assert_eq!(body["customer"]["name"], name.as_str(), "{body}");
        assert_eq!(body["sync"]["state"], "pending", "{body}");
        assert!(ids.insert(id_of(body)));
        assert!(numbers.insert(body["number"].as_str().unwrap().to_owned()));
    }
    let count = |table: &'static str| {
        let store = &pair.store;
        async move { store.sql(&format!("SELECT COUNT(*) FROM {table}")).await[0].clone() }
    };
    assert_eq!(count("orders").await, "60");
    assert_eq!(count("order_prices").await, "60");
    // (The warehouse's answers may already be adding lines of their own.)
    assert_eq!(count("audit_log WHERE changes = 'created'").await, "60");
    let queued = pair
        .store
        .sql("SELECT COUNT(DISTINCT order_id) FROM outbox")
        .await;
    assert_eq!(queued[0], "60");
    for id in &ids {
        wait_for_order(&pair.warehouse, id, "order at the warehouse", |_| true).await;
    }
    pair.stop().await;
}

async fn concurrent_steps_on_one_order_are_taken_once(b: Backend) {
    let Some(pair) = Pair::start(b).await else {
        return;
    };
    let hot = id_of(&create_order(&pair.store, "Hot Order").await);
    let others: Vec<String> = join_all((0..5).map(|i| {
        let store = &pair.store;
        async move { id_of(&create_order(store, &format!("Other {i}")).await) }
    }))
    .await;
    for id in others.iter().chain([&hot]) {
        wait_for_order(&pair.warehouse, id, "order at the warehouse", |_| true).await;
    }

    // Ten "start picking" on one order, five on others, and one on an order
    // that does not exist, all at once.
    let unknown = "01890a5d-ac96-774b-bcce-b302099a8057";
    let step = json!({"status": "picking"});
    let targets: Vec<&str> = std::iter::repeat_n(hot.as_str(), 10)
        .chain(others.iter().map(String::as_str))
        .chain([unknown])
        .collect();
    let paths: Vec<String> = targets
        .iter()
        .map(|id| format!("/api/v1/orders/{id}/fulfillment"))
        .collect();
    let answers = join_all(paths.iter().map(|p| pair.warehouse.post(p, &step))).await;

    let hot_ok = answers[..10]
        .iter()
        .filter(|(s, _)| *s == StatusCode::OK)
        .count();
    assert_eq!(hot_ok, 1, "exactly one step on the hot order: {answers:?}");
    for (s, body) in &answers[..10] {
        if *s != StatusCode::OK {
            assert_eq!(*s, StatusCode::CONFLICT, "{body}");
        }
    }
    for (s, body) in &answers[10..15] {
        assert_eq!(*s, StatusCode::OK, "{body}");
        assert_eq!(body["status"], "picking", "{body}");
        assert_eq!(body["sync"]["warehouse_version"], 2, "{body}");
    }
    assert_eq!(answers[15].0, StatusCode::NOT_FOUND, "{:?}", answers[15]);

    // Stored: one version step and one audit line per order that moved.
    let stored = pair
        .warehouse
        .sql(&format!(
            "SELECT warehouse_version || ' ' || status FROM orders WHERE id = '{hot}'"
        ))
        .await;
    assert_eq!(stored, vec!["2 picking".to_owned()]);
    let steps = pair
        .warehouse
        .sql("SELECT COUNT(*) FROM audit_log WHERE actor_kind = 'token'")
        .await;
    assert_eq!(steps[0], "6");
    for id in others.iter().chain([&hot]) {
        wait_for_order(&pair.store, id, "store sees picking", |o| {
            o["fulfillment"]["status"] == "picking"
        })
        .await;
    }
    pair.stop().await;
}

//! A peer that is down loses nothing and blocks nothing: orders created while
//! the warehouse is stopped are answered at once and arrive when it returns.

use std::time::{Duration, Instant};

use reqwest::StatusCode;

use crate::both_backends;
use crate::helpers::*;

both_backends!(orders_created_while_warehouse_is_down_all_arrive);

async fn orders_created_while_warehouse_is_down_all_arrive(b: Backend) {
    let Some(mut pair) = Pair::start(b).await else {
        return;
    };
    pair.warehouse.stop().await;
    let mut ids = Vec::new();
    let mut slowest = Duration::ZERO;
    for i in 0..30 {
        let t = Instant::now();
        ids.push(id_of(
            &create_order(&pair.store, &format!("Outage {i}")).await,
        ));
        slowest = slowest.max(t.elapsed());
    }
    // A generous bound: what matters is that no create waits for the peer
    // (a request timeout to it would be 10 s).
    assert!(
        slowest < Duration::from_secs(2),
        "a create waited {slowest:?} while the peer was down"
    );
    let st = eventually(10, "deliveries fail and are retried", || async {
        let (_, st) = pair.store.get("/api/v1/sync/status").await;
        let (_, o) = pair.store.get(&format!("/api/v1/orders/{}", ids[0])).await;
        (o["sync"]["state"] == "failing").then_some(st)
    })
    .await;
    assert_eq!(st["pending"], 30, "{st}");
    // Repeated failures open the circuit breaker (visible in the status and
    // the metrics); it closes again once the peer answers.
    eventually(30, "the breaker opens", || async {
        let (_, st) = pair.store.get("/api/v1/sync/status").await;
        (st["breaker"] == "open" || st["breaker"] == "half_open").then_some(())
    })
    .await;
    let metrics = reqwest::get(format!("{}/metrics", pair.store.url))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("fulfillment_sync_breaker_state") && !l.ends_with(" 0")),
        "{metrics}"
    );
    let (_, one) = pair.store.get(&format!("/api/v1/orders/{}", ids[0])).await;
    assert!(
        one["sync"]["last_error"]
            .as_str()
            .is_some_and(|e| !e.is_empty()),
        "{one}"
    );

    pair.warehouse.restart().await;
    let wh = &pair.warehouse;
    eventually(
        40,
        "every order reaches the restarted warehouse",
        || async {
            let (s, list) = wh.get("/api/v1/orders?limit=500").await;
            (s == StatusCode::OK && list["items"].as_array().map(Vec::len) == Some(30))
                .then_some(())
        },
    )
    .await;
    let store = &pair.store;
    eventually(
        40,
        "the store sees every order synced and reported",
        || async {
            let (_, list) = store.get("/api/v1/orders?limit=500").await;
            let items = list["items"].as_array()?.clone();
            items
                .iter()
                .all(|o| o["sync"]["state"] == "synced" && o["fulfillment"]["status"] == "pending")
                .then_some(())
        },
    )
    .await;
    let (_, st) = pair.store.get("/api/v1/sync/status").await;
    assert_eq!(st["pending"], 0);
    assert_eq!(st["breaker"], "closed");
    pair.stop().await;
}

//! The relay's linger (`--relay-linger`) and the next round claimed with
//! the last one's settle: with the default, an order created alone still
//! reaches the warehouse well under a second, in a request of its own;
//! orders created one after the other travel in a few requests, not one
//! per order. Requests are
//! counted where they land: the warehouse remembers one `webhook-id` per
//! signed request it takes (reconciliation, which signs requests too, is
//! off here).

use std::time::{Duration, Instant};

use reqwest::StatusCode;

use crate::both_backends;
use crate::helpers::*;
use fulfillment::config::defaults;

both_backends!(
    a_lone_order_reaches_the_warehouse_promptly,
    a_burst_travels_in_few_requests,
);

/// Signed requests the warehouse has taken so far.
async fn requests_at(warehouse: &Side) -> i64 {
    let n = warehouse.sql("SELECT COUNT(*) FROM seen_webhooks").await;
    n[0].parse().expect("a count")
}

async fn a_lone_order_reaches_the_warehouse_promptly(b: Backend) {
    let Some(pair) = Pair::start_with(b, |c| c.reconcile_interval = None).await else {
        return;
    };
    assert_eq!(pair.store.cfg.relay_linger, defaults::RELAY_LINGER);
    let before = requests_at(&pair.warehouse).await;
    for i in 0..3 {
        let name = format!("Alone {i}");
        let id = id_of(&create_order(&pair.store, &name).await);
        let created = Instant::now();
        let there = eventually(5, "the order is at the warehouse", || async {
            let (status, body) = pair.warehouse.get(&format!("/api/v1/orders/{id}")).await;
            (status == StatusCode::OK).then_some(body)
        })
        .await;
        let took = created.elapsed();
        assert!(
            took < Duration::from_millis(900),
            "order {i} took {took:?} to reach the warehouse"
        );
        assert_eq!(there["customer"]["name"], name.as_str(), "{there}");
        // Nothing else is waiting, so the next order is alone as well.
        wait_for_order(&pair.store, &id, "the order is synced", |o| {
            o["sync"]["state"] == "synced"
        })
        .await;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Each lone order went in one request: none was lost, none was sent
    // twice (a round claimed with a settle sends what it claimed, once).
    assert_eq!(requests_at(&pair.warehouse).await - before, 3);
    let held = pair.warehouse.sql("SELECT COUNT(*) FROM orders").await;
    assert_eq!(held[0], "3");
    pair.stop().await;
}

async fn a_burst_travels_in_few_requests(b: Backend) {
    // Long enough that the bound below is tight even on a slow machine.
    const LINGER: Duration = Duration::from_millis(300);
    const ORDERS: usize = 40;
    let Some(pair) = Pair::start_with(b, |c| {
        c.reconcile_interval = None;
        c.relay_linger = LINGER;
    })
    .await
    else {
        return;
    };
    let before = requests_at(&pair.warehouse).await;
    // One at a time, a few milliseconds apart, as everyday traffic comes
    // (orders created together share a commit, and so a wake-up, anyway).
    let started = Instant::now();
    let mut ids = Vec::with_capacity(ORDERS);
    for i in 0..ORDERS {
        ids.push(id_of(
            &create_order(&pair.store, &format!("Burst {i}")).await,
        ));
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let burst = started.elapsed();
    for id in &ids {
        wait_for_order(&pair.store, id, "the order is synced", |o| {
            o["sync"]["state"] == "synced"
        })
        .await;
    }
    let held = pair.warehouse.sql("SELECT COUNT(*) FROM orders").await;
    assert_eq!(
        held[0],
        ORDERS.to_string(),
        "every order is at the warehouse"
    );
    // A round's claim comes at least a linger after the one before (the
    // first, a linger after the wake-up), so while the burst lasts there
    // is at most one request per linger, and one more takes the rest.
    let requests = requests_at(&pair.warehouse).await - before;
    let bound = 2 + (burst.as_millis() / LINGER.as_millis()) as i64;
    assert!(
        (1..=bound).contains(&requests),
        "{ORDERS} orders created in {burst:?} went in {requests} requests; at most {bound} expected"
    );
    pair.stop().await;
}

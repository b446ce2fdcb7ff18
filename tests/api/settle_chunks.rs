//! A large round (100 orders, far more than an everyday round of under 32)
//! is settled with what the warehouse answered for each row: every row ends
//! delivered, its lease ended, the first fulfillment state of each new
//! order applied at the store, and the relay goes on to later rounds. (It
//! guarded a version that settled such rounds in several writes, one per
//! group commit; see docs/DESIGN.md §3.2.)

use std::time::Duration;

use futures_util::future::join_all;
use reqwest::StatusCode;

use crate::both_backends;
use crate::helpers::*;

both_backends!(a_large_round_settles_every_row_with_its_answer);

/// Signed requests the warehouse has taken so far.
async fn requests_at(warehouse: &Side) -> i64 {
    let n = warehouse.sql("SELECT COUNT(*) FROM seen_webhooks").await;
    n[0].parse().expect("a count")
}

async fn a_large_round_settles_every_row_with_its_answer(b: Backend) {
    const ORDERS: usize = 100;
    // Long enough that every create lands before the relay claims: the
    // orders go in one or two rounds, so at least one holds more than a
    // chunk.
    let Some(pair) = Pair::start_with(b, |c| {
        c.reconcile_interval = None;
        c.relay_linger = Duration::from_secs(2);
    })
    .await
    else {
        return;
    };
    let before = requests_at(&pair.warehouse).await;
    let names: Vec<String> = (0..ORDERS).map(|i| format!("Chunked {i}")).collect();
    let bodies: Vec<_> = names.iter().map(|n| order_body(n)).collect();
    let created = join_all(bodies.iter().map(|b| pair.store.post("/api/v1/orders", b))).await;
    let mut ids = Vec::with_capacity(ORDERS);
    for (status, body) in &created {
        assert_eq!(*status, StatusCode::CREATED, "{body}");
        ids.push(id_of(body));
    }
    for id in &ids {
        let o = wait_for_order(&pair.store, id, "the order is synced", |o| {
            o["sync"]["state"] == "synced"
        })
        .await;
        // What the warehouse answered was applied with the settle.
        assert_eq!(o["sync"]["warehouse_version"], 1, "{o}");
    }
    let requests = requests_at(&pair.warehouse).await - before;
    assert!(
        (1..=2).contains(&requests),
        "{ORDERS} orders went in {requests} requests; one or two rounds expected"
    );
    // Stored: every order at the warehouse, every outbox row at the store
    // delivered and its lease ended, none left pending or dead.
    let held = pair.warehouse.sql("SELECT COUNT(*) FROM orders").await;
    assert_eq!(held[0], ORDERS.to_string());
    let open = pair
        .store
        .sql("SELECT COUNT(*) FROM outbox WHERE state <> 'delivered' OR lease_until <> 0")
        .await;
    assert_eq!(open[0], "0", "{}", pair.store.dump_table("outbox").await);
    let learned = pair
        .store
        .sql("SELECT COUNT(*) FROM orders WHERE warehouse_version = 1")
        .await;
    assert_eq!(learned[0], ORDERS.to_string());

    // The relay goes on: a later order travels as well.
    let later = id_of(&create_order(&pair.store, "Later").await);
    wait_for_order(&pair.store, &later, "the later order is synced", |o| {
        o["sync"]["state"] == "synced"
    })
    .await;
    pair.stop().await;
}

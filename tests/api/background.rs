//! The background tasks a service runs on its own: the store's periodic
//! reconciler repairs a row lost by hand without anyone asking, and the
//! pruner deletes records past their retention on its schedule.

use std::time::{Duration, Instant};

use fulfillment::storage::prune::Retention;
use reqwest::StatusCode;
use serde_json::json;

use crate::both_backends;
use crate::helpers::*;

both_backends!(
    the_periodic_reconciler_repairs_without_being_asked,
    the_pruner_deletes_old_records_on_its_own,
);

async fn the_periodic_reconciler_repairs_without_being_asked(b: Backend) {
    let Some(pair) = Pair::start_with(b, |cfg| {
        cfg.reconcile_interval = Some(Duration::from_secs(1));
    })
    .await
    else {
        return;
    };
    let mut ids = Vec::new();
    for i in 0..3 {
        ids.push(id_of(
            &create_order(&pair.store, &format!("Periodic {i}")).await,
        ));
    }
    for id in &ids {
        wait_for_order(&pair.store, id, "round trip", |o| {
            o["sync"]["state"] == "synced" && o["fulfillment"]["status"] == "pending"
        })
        .await;
    }
    // Lose an order at the warehouse by hand (nothing in any outbox says so).
    let wh = &pair.warehouse;
    let lost = &ids[1];
    for table in ["order_lines", "shipments"] {
        wh.sql(&format!("DELETE FROM {table} WHERE order_id = '{lost}'"))
            .await;
    }
    wh.sql(&format!("DELETE FROM orders WHERE id = '{lost}'"))
        .await;
    let (s, _) = wh.get(&format!("/api/v1/orders/{lost}")).await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // No reconcile call: the store's own schedule finds and resends it.
    let back = wait_for_order(wh, lost, "the lost order comes back by itself", |_| true).await;
    assert_eq!(back["customer"]["name"], "Periodic 1");
    let (_, st) = pair.store.get("/api/v1/sync/status").await;
    assert!(st["last_reconciliation"]["finished_at"].is_string(), "{st}");
    let repaired = pair
        .store
        .sql("SELECT COUNT(*) FROM reconcile_runs WHERE differences > 0 AND repaired > 0")
        .await;
    assert_ne!(repaired, ["0"], "a recorded pass found and repaired it");
    // The warehouse only answers reconciliation; it never runs it.
    assert_eq!(wh.sql("SELECT COUNT(*) FROM reconcile_runs").await, ["0"]);
    // And it keeps running: more passes follow.
    let before: i64 = pair.store.sql("SELECT COUNT(*) FROM reconcile_runs").await[0]
        .parse()
        .expect("a count");
    eventually(10, "another periodic pass", || async {
        let now: i64 = pair.store.sql("SELECT COUNT(*) FROM reconcile_runs").await[0]
            .parse()
            .expect("a count");
        (now > before).then_some(())
    })
    .await;
    pair.stop().await;
}

/// Retention of every kind of record in the pruner test: long enough that a
/// record is certainly still there when checked right after it is made,
/// short enough for the test.
const KEEP: Duration = Duration::from_secs(2);

async fn counts(side: &Side, tables: &[&str]) -> Vec<i64> {
    let mut v = Vec::new();
    for t in tables {
        v.push(
            side.sql(&format!("SELECT COUNT(*) FROM {t}")).await[0]
                .parse()
                .expect("a count"),
        );
    }
    v
}

async fn the_pruner_deletes_old_records_on_its_own(b: Backend) {
    let Some(pair) = Pair::start_with(b, |cfg| {
        cfg.retention = Retention {
            delivered: KEEP,
            attempts: KEEP,
            idempotency: KEEP,
            webhook_ids: KEEP,
            reconcile_runs: KEEP,
            sync_history: KEEP,
        };
        cfg.prune_every = Duration::from_secs(1);
    })
    .await
    else {
        return;
    };
    let store_tables = [
        "outbox",
        "sync_attempts",
        "idempotency_keys",
        "seen_webhooks",
    ];
    let wh_tables = ["outbox", "sync_attempts", "seen_webhooks"];
    // Two rounds: the pruner runs again and again, not only once.
    for round in 0..2 {
        let made = Instant::now();
        let mut ids = Vec::new();
        for i in 0..3 {
            let res = pair
                .store
                .http
                .post(format!("{}/api/v1/orders", pair.store.url))
                .bearer_auth(&pair.store.token)
                .header("idempotency-key", format!("prune-{round}-{i}"))
                .json(&order_body(&format!("Prune {round}-{i}")))
                .send()
                .await
                .expect("sent");
            assert_eq!(res.status(), StatusCode::CREATED);
            ids.push(id_of(&res.json().await.expect("json")));
        }
        // A step at the warehouse makes the warehouse deliver too.
        wait_for_order(&pair.warehouse, &ids[0], "arrives", |_| true).await;
        let (s, _) = pair
            .warehouse
            .post(
                &format!("/api/v1/orders/{}/fulfillment", ids[0]),
                &json!({"status": "picking"}),
            )
            .await;
        assert_eq!(s, StatusCode::OK);
        wait_for_order(&pair.store, &ids[0], "the step arrives", |o| {
            o["fulfillment"]["status"] == "picking" && o["sync"]["state"] == "synced"
        })
        .await;
        for id in &ids {
            wait_for_order(&pair.store, id, "delivered", |o| {
                o["sync"]["state"] == "synced"
            })
            .await;
        }
        let fresh = (
            counts(&pair.store, &store_tables).await,
            counts(&pair.warehouse, &wh_tables).await,
        );
        if made.elapsed() < KEEP {
            // Young records stay: every kind is there.
            assert!(
                fresh.0.iter().chain(&fresh.1).all(|n| *n > 0),
                "round {round}: store {store_tables:?} = {:?}, warehouse {wh_tables:?} = {:?}",
                fresh.0,
                fresh.1
            );
        }
        // Once past their retention, the pruner deletes them on its own.
        eventually(15, "old records are pruned", || async {
            let store = counts(&pair.store, &store_tables).await;
            let wh = counts(&pair.warehouse, &wh_tables).await;
            store.iter().chain(&wh).all(|n| *n == 0).then_some(())
        })
        .await;
        // What is never pruned stays; delivered orders still show synced.
        let (_, o) = pair.store.get(&format!("/api/v1/orders/{}", ids[0])).await;
        assert_eq!(o["sync"]["state"], "synced", "{o}");
        assert_eq!(o["fulfillment"]["status"], "picking", "{o}");
    }
    assert_eq!(pair.store.sql("SELECT COUNT(*) FROM orders").await, ["6"]);
    assert_eq!(
        pair.warehouse.sql("SELECT COUNT(*) FROM orders").await,
        ["6"]
    );
    assert_ne!(
        pair.store.sql("SELECT COUNT(*) FROM audit_log").await,
        ["0"],
        "the audit trail is never pruned"
    );
    pair.stop().await;
}

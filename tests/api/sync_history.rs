//! The sync history the admin sync page charts: each relay writes, per
//! peer and per minute, what it delivered (with how long the changes
//! waited), what failed and the backlog it saw. Checked in the tables:
//! deliveries land in the minute and under the warehouse they went to,
//! a warehouse that is down shows failures and a backlog under its own
//! name only, a warehouse's history is kept under `store`, and the pruner
//! deletes minutes older than two days, not younger ones. The list the
//! page shows beside the charts puts failing changes before those not
//! tried yet, the longest waiting first, and stops at its limit.

use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;

use crate::both_backends;
use crate::helpers::*;
use crate::routing::{create, order_to};

both_backends!(
    deliveries_and_failures_land_in_their_minute_and_warehouse,
    minutes_older_than_two_days_are_pruned,
    the_waiting_list_puts_failing_changes_first_and_is_capped,
);

const MINUTE: i64 = 60_000_000;

fn now_micros() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

/// One number from `side`'s database (`0` when the query finds no row or
/// a NULL, as a SUM over no rows).
async fn number(side: &Side, sql: &str) -> i64 {
    side.sql(sql)
        .await
        .first()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

async fn sum(side: &Side, column: &str, peer: &str) -> i64 {
    number(
        side,
        &format!("SELECT CAST(SUM({column}) AS BIGINT) FROM sync_history WHERE peer = '{peer}'"),
    )
    .await
}

async fn deliveries_and_failures_land_in_their_minute_and_warehouse(b: Backend) {
    let Some(mut t) = three(b).await else { return };
    let started = now_micros();
    let mut gb = Vec::new();
    for i in 0..3 {
        gb.push(create(&t.store, &order_to(&format!("London {i}"), "GB", "WID-1")).await);
    }
    let us = [
        create(&t.store, &order_to("Boston 0", "US", "WID-1")).await,
        create(&t.store, &order_to("Boston 1", "US", "WID-1")).await,
    ];
    for id in gb.iter().chain(&us) {
        wait_for_order(&t.store, id, "the order is synced", |o| {
            o["sync"]["state"] == "synced"
        })
        .await;
    }
    // The relays write what they counted once they have nothing to do.
    eventually(10, "3 deliveries to eu and 2 to us recorded", || async {
        (sum(&t.store, "delivered", "eu").await >= 3 && sum(&t.store, "delivered", "us").await >= 2)
            .then_some(())
    })
    .await;
    let done = now_micros();
    assert_eq!(sum(&t.store, "delivered", "eu").await, 3, "one per order");
    assert_eq!(sum(&t.store, "delivered", "us").await, 2);
    assert_eq!(sum(&t.store, "failed", "eu").await, 0);
    assert_eq!(sum(&t.store, "delay_count", "eu").await, 3);
    // Each order waited from its create to its delivery: less than the
    // whole test so far, and something.
    let longest = number(
        &t.store,
        "SELECT MAX(delay_max) FROM sync_history WHERE peer = 'eu'",
    )
    .await;
    assert!(
        longest > 0 && longest <= done - started,
        "longest wait {longest} µs"
    );
    assert!(sum(&t.store, "delay_sum", "eu").await >= longest);
    // Deliveries are in the minutes they happened in, each row on a
    // minute's start.
    for minute in t
        .store
        .sql("SELECT minute_at FROM sync_history WHERE delivered > 0")
        .await
    {
        let m: i64 = minute.parse().expect("a minute");
        assert_eq!(m % MINUTE, 0, "{m} is a minute's start");
        assert!(
            m >= started - started.rem_euclid(MINUTE) && m <= done,
            "minute {m} outside the test's {started}..{done}"
        );
    }
    assert_eq!(
        number(
            &t.store,
            "SELECT COUNT(*) FROM sync_history WHERE peer NOT IN ('eu', 'us')"
        )
        .await,
        0,
        "the store's history is per warehouse"
    );

    // eu goes down: its new orders fail and wait, under eu only.
    t.eu.stop().await;
    let down = [
        create(&t.store, &order_to("Paris 0", "FR", "WID-1")).await,
        create(&t.store, &order_to("Paris 1", "FR", "WID-1")).await,
    ];
    eventually(20, "eu's failures and backlog recorded", || async {
        let failed = sum(&t.store, "failed", "eu").await;
        let backlog = number(
            &t.store,
            "SELECT MAX(backlog) FROM sync_history WHERE peer = 'eu'",
        )
        .await;
        (failed >= 2 && backlog >= 2).then_some(())
    })
    .await;
    assert!(
        number(
            &t.store,
            "SELECT MAX(backlog) FROM sync_history WHERE peer = 'eu'"
        )
        .await
            <= 5,
        "no more waited for eu than it was ever sent"
    );
    assert_eq!(sum(&t.store, "failed", "us").await, 0, "us did not fail");
    assert_eq!(sum(&t.store, "delivered", "us").await, 2);
    assert_eq!(
        sum(&t.store, "delivered", "eu").await,
        3,
        "nothing new reached eu"
    );
    let (_, o) = t.store.get(&format!("/api/v1/orders/{}", down[0])).await;
    assert_eq!(o["sync"]["state"], "failing", "{o}");

    // A warehouse keeps its history of what it sends the store.
    let (s, _) =
        t.us.post(
            &format!("/api/v1/orders/{}/fulfillment", us[0]),
            &json!({"status": "picking"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    wait_for_order(&t.store, &us[0], "picking reaches the store", |o| {
        o["fulfillment"]["status"] == "picking"
    })
    .await;
    eventually(10, "us records its delivery to the store", || async {
        (sum(&t.us, "delivered", "store").await >= 1).then_some(())
    })
    .await;
    assert_eq!(
        number(
            &t.us,
            "SELECT COUNT(*) FROM sync_history WHERE peer <> 'store'"
        )
        .await,
        0,
        "a warehouse's only peer is the store"
    );
    t.store.stop().await;
    t.us.stop().await;
}

async fn minutes_older_than_two_days_are_pruned(b: Backend) {
    let Some(pair) = Pair::start_with(b, |cfg| {
        cfg.prune_every = Duration::from_secs(1);
    })
    .await
    else {
        return;
    };
    let now = now_micros();
    let minute = now - now.rem_euclid(MINUTE);
    let day = 24 * 60 * MINUTE;
    let (old, kept) = (minute - 3 * day, minute - day - 23 * 60 * MINUTE);
    for at in [old, kept] {
        pair.store
            .sql(&format!(
                "INSERT INTO sync_history (peer, minute_at, delivered) VALUES ('warehouse', {at}, 7)"
            ))
            .await;
    }
    eventually(15, "the three-day-old minute is pruned", || async {
        let left = pair
            .store
            .sql(&format!(
                "SELECT COUNT(*) FROM sync_history WHERE minute_at = {old}"
            ))
            .await;
        (left == ["0"]).then_some(())
    })
    .await;
    assert_eq!(
        pair.store
            .sql(&format!(
                "SELECT delivered FROM sync_history WHERE minute_at = {kept}"
            ))
            .await,
        ["7"],
        "a minute 47 hours old is kept"
    );
    pair.stop().await;
}

async fn the_waiting_list_puts_failing_changes_first_and_is_capped(b: Backend) {
    // A peer that is down; the breaker opens at the first failure and
    // stays open, so what is created afterwards is not tried.
    let peer = FakePeer::start(|_| FakeAnswer::status(503)).await;
    let Some(store) = Side::start_alone(fulfillment::domain::Role::Store, b, &peer.url, |cfg| {
        cfg.breaker_threshold = 1;
        cfg.breaker_open_for = Duration::from_secs(120);
    })
    .await
    else {
        return;
    };
    let failing = id_of(&create_order(&store, "Failing A").await);
    wait_for_order(&store, &failing, "the first order fails", |o| {
        o["sync"]["state"] == "failing"
    })
    .await;
    let later = [
        id_of(&create_order(&store, "Pending B").await),
        id_of(&create_order(&store, "Pending C").await),
    ];
    let engine = store.service.as_ref().expect("running").engine();
    let all = engine.waiting(None, 10).await.expect("the waiting list");
    let ids: Vec<&str> = all.iter().map(|q| q.order_id.as_str()).collect();
    assert_eq!(
        ids,
        [&failing, &later[0], &later[1]],
        "failing first, then the longest waiting"
    );
    assert!(all[0].attempts >= 1 && all[0].last_error.is_some());
    assert!(
        all[1..]
            .iter()
            .all(|q| q.attempts == 0 && q.last_error.is_none())
    );
    let (_, c) = store.get(&format!("/api/v1/orders/{}", later[0])).await;
    assert_eq!(all[1].number.as_deref(), c["number"].as_str());
    assert_eq!(all[1].customer.as_deref(), Some("Pending B"));
    assert_eq!(all[1].parent_id.as_deref(), Some(later[0].as_str()));
    assert_eq!(all[0].peer, "main");
    assert_eq!(engine.failing_count(None).await.expect("count"), 1);
    assert_eq!(
        engine
            .failing_count(Some("elsewhere"))
            .await
            .expect("count"),
        0
    );
    let capped = engine.waiting(None, 2).await.expect("the waiting list");
    assert_eq!(capped.len(), 2, "the list stops at its limit");
    assert!(
        engine
            .waiting(Some("elsewhere"), 10)
            .await
            .expect("list")
            .is_empty()
    );
    assert!(
        engine
            .dead_letters(None, 10)
            .await
            .expect("list")
            .is_empty()
    );
}

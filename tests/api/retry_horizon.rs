//! The retry horizon: a change the peer never takes is retried with backoff
//! until it has waited longer than `retry_horizon`, then becomes a dead
//! letter that says why, is not retried any more, and is delivered once
//! replayed with the peer back.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::json;

use crate::both_backends;
use crate::helpers::*;

both_backends!(retry_horizon_turns_a_failing_change_into_a_dead_letter);

async fn retry_horizon_turns_a_failing_change_into_a_dead_letter(b: Backend) {
    let Some(mut pair) = Pair::start_with(b, short_horizon).await else {
        return;
    };
    pair.warehouse.stop().await;
    let created = Instant::now();
    let id = id_of(&create_order(&pair.store, "Horizon").await);
    let dead = wait_for_order(&pair.store, &id, "the order becomes a dead letter", |o| {
        o["sync"]["state"] == "dead"
    })
    .await;
    let took = created.elapsed();
    assert!(
        took >= SHORT_HORIZON,
        "dead after {took:?}, before the {SHORT_HORIZON:?} horizon was over"
    );
    let last_error = dead["sync"]["last_error"].as_str().unwrap_or_default();
    assert!(
        last_error.starts_with("gave up after the retry horizon; last error: ")
            && last_error.contains("cannot connect to the peer"),
        "{dead}"
    );
    assert_eq!(
        outbox_ids(&pair.store, "dead").await,
        std::slice::from_ref(&id)
    );
    let (_, st) = pair.store.get("/api/v1/sync/status").await;
    assert_eq!(
        (st["dead"].as_i64(), st["pending"].as_i64()),
        (Some(1), Some(0)),
        "{st}"
    );
    let (_, listed) = pair.store.get("/api/v1/orders?sync=dead").await;
    assert_eq!(listed["items"][0]["id"], id.as_str(), "{listed}");

    // It was retried before it was given up: several failed attempts, each
    // but the last with a next retry, the last with none.
    let (_, timeline) = pair.store.get(&format!("/api/v1/orders/{id}/sync")).await;
    let attempts = timeline["attempts"].as_array().cloned().unwrap_or_default();
    assert!(attempts.len() >= 2, "retried before giving up: {timeline}");
    assert!(
        attempts.iter().all(|a| a["outcome"] == "error"),
        "{timeline}"
    );
    assert!(attempts[0]["next_retry_at"].is_null(), "{timeline}");
    assert!(
        attempts[1..].iter().all(|a| a["next_retry_at"].is_string()),
        "{timeline}"
    );
    // A dead letter is left alone: no more attempts.
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let (_, later) = pair.store.get(&format!("/api/v1/orders/{id}/sync")).await;
    assert_eq!(later["attempts"], timeline["attempts"], "not retried");

    // The warehouse is back; the replay delivers it.
    pair.warehouse.restart().await;
    let (s, r) = pair
        .store
        .post("/api/v1/sync/replay", &json!({"ids": [id]}))
        .await;
    assert_eq!(
        (s, r["replayed"].as_i64()),
        (StatusCode::OK, Some(1)),
        "{r}"
    );
    let at_wh = wait_for_order(&pair.warehouse, &id, "the replayed order arrives", |_| true).await;
    assert_eq!(at_wh["customer"]["name"], "Horizon");
    wait_for_order(&pair.store, &id, "synced with its first fulfillment", |o| {
        o["sync"]["state"] == "synced" && o["fulfillment"]["status"] == "pending"
    })
    .await;
    let (_, st) = pair.store.get("/api/v1/sync/status").await;
    assert_eq!(
        (st["dead"].as_i64(), st["pending"].as_i64()),
        (Some(0), Some(0)),
        "{st}"
    );
    assert_eq!(outbox_ids(&pair.store, "delivered").await, [id]);
    pair.stop().await;
}

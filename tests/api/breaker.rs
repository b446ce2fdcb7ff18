//! The circuit breaker judges the peer, not our data: a peer that answers
//! 5xx or 429, or refuses the whole request (401/403), counts as failing
//! just like one that is down; once open, nothing is sent until a single
//! probe; an overloaded peer is never hammered by batch splitting; a round
//! ends its requests before its lease does; and a retry is never further
//! away than the backoff cap, whatever the clock did.

use std::time::{Duration, Instant};

use fulfillment::domain::Role;
use reqwest::StatusCode;
use serde_json::Value;

use crate::both_backends;
use crate::helpers::*;

both_backends!(
    a_peer_answering_503_opens_the_breaker,
    a_refusing_peer_opens_the_breaker_and_status_says_why,
    a_peer_answering_500_is_not_sent_split_batches,
    a_round_never_outlives_its_lease,
    rows_scheduled_by_a_fast_clock_are_retried_at_once,
);

/// A store delivering to `peer`, with `orders` created and waiting.
async fn store_with_orders(b: Backend, peer: &FakePeer, orders: usize) -> Option<Side> {
    store_with_orders_and(b, peer, orders, |_| {}).await
}

async fn store_with_orders_and(
    b: Backend,
    peer: &FakePeer,
    orders: usize,
    tweak: impl FnOnce(&mut fulfillment::service::ServiceConfig),
) -> Option<Side> {
    let store = Side::start_alone(Role::Store, b, &peer.url, tweak).await?;
    for i in 0..orders {
        create_order(&store, &format!("Breaker {i}")).await;
    }
    Some(store)
}

fn sync_requests(peer: &FakePeer) -> Vec<Seen> {
    peer.seen()
        .into_iter()
        .filter(|s| s.path == "/api/v1/sync/changes")
        .collect()
}

async fn status(store: &Side) -> Value {
    let (s, st) = store.get("/api/v1/sync/status").await;
    assert_eq!(s, StatusCode::OK, "{st}");
    st
}

async fn a_peer_answering_503_opens_the_breaker(b: Backend) {
    let peer = FakePeer::start(|_| FakeAnswer::status(503)).await;
    let Some(store) = store_with_orders(b, &peer, 5).await else {
        return;
    };
    let st = eventually(15, "the breaker opens", || async {
        let st = status(&store).await;
        (st["breaker"] == "open").then_some(st)
    })
    .await;
    assert_eq!(st["pending"], 5, "{st}");
    // Five failed requests open it; while open (0.5 s here) nothing goes
    // out, then one probe at a time. Over the next three seconds that is at
    // most about six probes; a breaker that never opened would keep going
    // at the pace of the rows' backoff.
    let before = sync_requests(&peer).len();
    assert!(
        (5..=7).contains(&before),
        "{before} requests to open the breaker"
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    let probes = sync_requests(&peer).len() - before;
    assert!(
        probes <= 7,
        "{probes} requests in 3 s while the breaker was open or probing"
    );
    let st = status(&store).await;
    assert_ne!(st["breaker"], "closed", "{st}");
    let detail = st["last_error"]["detail"].as_str().unwrap_or_default();
    assert!(detail.contains("503"), "status says why: {st}");
    // Nothing was lost or given up on: the orders wait, failing.
    let (_, list) = store.get("/api/v1/orders?sync=failing").await;
    assert_eq!(list["items"].as_array().map(Vec::len), Some(5), "{list}");
}

async fn a_refusing_peer_opens_the_breaker_and_status_says_why(b: Backend) {
    // What a receiver whose clock is ten minutes off answers.
    let peer = FakePeer::start(|_| FakeAnswer {
        status: 401,
        body: serde_json::json!({"type": "about:blank", "title": "Unauthorized", "status": 401,
            "detail": "sync request refused: webhook-timestamp is more than 300 seconds away from the receiver's clock; check both clocks"}),
        delay: Duration::ZERO,
    })
    .await;
    let Some(store) = store_with_orders(b, &peer, 3).await else {
        return;
    };
    let st = eventually(15, "the breaker opens on refusals", || async {
        let st = status(&store).await;
        (st["breaker"] == "open").then_some(st)
    })
    .await;
    let detail = st["last_error"]["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains("401") && detail.contains("check both clocks"),
        "{st}"
    );
    assert!(st["last_error"]["at"].is_string(), "{st}");
}

async fn a_peer_answering_500_is_not_sent_split_batches(b: Backend) {
    let peer = FakePeer::start(|_| FakeAnswer::status(500)).await;
    // The breaker opens at the first failure and stays open: each request
    // the peer sees is one round's.
    let Some(mut store) = store_with_orders_and(b, &peer, 1, |cfg| {
        cfg.breaker_threshold = 1;
        cfg.breaker_open_for = Duration::from_secs(60);
    })
    .await
    else {
        return;
    };
    eventually(10, "the breaker opens", || async {
        (status(&store).await["breaker"] == "open").then_some(())
    })
    .await;
    assert_eq!(sync_requests(&peer).len(), 1);
    for i in 0..16 {
        create_order(&store, &format!("Batch {i}")).await;
    }
    // A restart closes the breaker: the next round sends the waiting
    // orders in one batch.
    store.restart().await;
    eventually(10, "the batch is tried", || async {
        (sync_requests(&peer).len() > 1).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let requests = sync_requests(&peer);
    assert_eq!(
        requests.len(),
        2,
        "a 500 for the whole batch is one failure, not a reason to split it"
    );
    assert!(FakePeer::batch_ids(&requests[1]).len() >= 16);
    assert_eq!(status(&store).await["breaker"], "open");
}

async fn a_round_never_outlives_its_lease(b: Backend) {
    // A slow peer that refuses any batch of more than one item as content
    // it cannot read: the relay splits, and splitting 16 items takes 31
    // requests (24 at most per round), 0.6 s each. With a 4 s lease a
    // round must stop sending early: every request must arrive while the
    // lease on its rows still has a whole request's time to run, or
    // another relay could take the rows over while they are being sent.
    use std::sync::{Arc, Mutex};
    let db_url: Arc<Mutex<Option<String>>> = Arc::default();
    let late: Arc<Mutex<Vec<String>>> = Arc::default();
    let (url, late_in) = (db_url.clone(), late.clone());
    let peer = FakePeer::start(move |seen| {
        let batch = FakePeer::batch_ids(seen);
        let url = url.lock().expect("url").clone();
        if let (Some(id), Some(url)) = (batch.first(), url) {
            let lease: i64 = tokio::task::block_in_place(|| {
                tokio::runtime::Handle::current().block_on(sql_at(
                    &url,
                    &format!("SELECT lease_until FROM outbox WHERE order_id = '{id}'"),
                ))
            })
            .first()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
            let left = lease - fulfillment::storage::now_micros();
            if left < 1_000_000 {
                late_in.lock().expect("late").push(format!(
                    "a batch of {} arrived with {:.2} s of its lease left",
                    batch.len(),
                    left as f64 / 1e6
                ));
            }
        }
        let mut a = FakeAnswer::status(if batch.len() > 1 { 422 } else { 503 });
        a.delay = Duration::from_millis(600);
        a
    })
    .await;
    let Some(store) = Side::start_alone(Role::Store, b, &peer.url, |cfg| {
        cfg.relay_lease = Duration::from_secs(4);
        cfg.request_timeout = Duration::from_secs(1);
        cfg.breaker_threshold = 1000;
    })
    .await
    else {
        return;
    };
    *db_url.lock().expect("url") = Some(store.db.url.clone());
    for i in 0..16 {
        create_order(&store, &format!("Lease {i}")).await;
    }
    tokio::time::sleep(Duration::from_secs(8)).await;
    let requests = sync_requests(&peer);
    assert!(
        requests.iter().any(|r| FakePeer::batch_ids(r).len() > 2),
        "the orders went out in batches"
    );
    assert!(
        requests.len() >= 8,
        "the peer saw {} requests",
        requests.len()
    );
    let late = late.lock().expect("late").clone();
    assert!(late.is_empty(), "{late:#?}");
}

async fn rows_scheduled_by_a_fast_clock_are_retried_at_once(b: Backend) {
    let Some(mut pair) = Pair::start(b).await else {
        return;
    };
    pair.warehouse.stop().await;
    let id = id_of(&create_order(&pair.store, "Clock").await);
    wait_for_order(&pair.store, &id, "a failed attempt", |o| {
        o["sync"]["state"] == "failing"
    })
    .await;
    // What a store whose clock ran ten minutes ahead leaves behind once
    // its clock is set right: a retry (and a lease) ten minutes away.
    let later = fulfillment::storage::now_micros() + 600_000_000;
    pair.store
        .sql(&format!(
            "UPDATE outbox SET next_attempt_at = {later}, lease_until = {later} WHERE order_id = '{id}'"
        ))
        .await;
    pair.warehouse.restart().await;
    let started = Instant::now();
    let (s, _) = eventually(
        20,
        "the order arrives without waiting out the clock",
        || async {
            let (s, body) = pair.warehouse.get(&format!("/api/v1/orders/{id}")).await;
            (s == StatusCode::OK).then_some((s, body))
        },
    )
    .await;
    assert_eq!(s, StatusCode::OK);
    assert!(started.elapsed() < Duration::from_secs(15));
    pair.stop().await;
}

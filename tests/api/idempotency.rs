//! `Idempotency-Key` on create: a retried request creates nothing new.

use fulfillment::domain::Role;
use fulfillment::engine::credentials;
use reqwest::StatusCode;
use serde_json::Value;

use crate::both_backends;
use crate::helpers::*;

both_backends!(
    same_key_same_body_creates_once,
    keys_belong_to_their_caller,
    keys_from_before_callers_still_answer_a_retry,
);

async fn same_key_same_body_creates_once(b: Backend) {
    let Some(pair) = Pair::start(b).await else {
        return;
    };
    let url = format!("{}/api/v1/orders", pair.store.url);
    let post = |key: &'static str, body: serde_json::Value| {
        pair.store
            .http
            .post(&url)
            .bearer_auth(&pair.store.token)
            .header("idempotency-key", key)
            .json(&body)
            .send()
    };
    let first = post("k-1", order_body("Ada")).await.expect("sent");
    assert_eq!(first.status(), StatusCode::CREATED);
    let first: serde_json::Value = first.json().await.expect("json");
    // Concurrent and sequential retries all get the first answer.
    let (a, b2) = tokio::join!(
        post("k-1", order_body("Ada")),
        post("k-1", order_body("Ada"))
    );
    for r in [a, b2] {
        let r = r.expect("sent");
        assert_eq!(r.status(), StatusCode::CREATED);
        let body: serde_json::Value = r.json().await.expect("json");
        assert_eq!(body["id"], first["id"]);
        assert_eq!(body["number"], first["number"]);
    }
    let other = post("k-1", order_body("Someone else")).await.expect("sent");
    assert_eq!(other.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(pair.store.sql("SELECT COUNT(*) FROM orders").await, ["1"]);
    // Another key is another order.
    let second = post("k-2", order_body("Ada")).await.expect("sent");
    assert_eq!(second.status(), StatusCode::CREATED);
    assert_eq!(pair.store.sql("SELECT COUNT(*) FROM orders").await, ["2"]);
    pair.stop().await;
}

async fn post_keyed(side: &Side, token: &str, key: &str, name: &str) -> (StatusCode, Value) {
    let res = side
        .http
        .post(format!("{}/api/v1/orders", side.url))
        .bearer_auth(token)
        .header("idempotency-key", key)
        .json(&order_body(name))
        .send()
        .await
        .expect("sent");
    (res.status(), res.json().await.expect("json"))
}

async fn keys_belong_to_their_caller(b: Backend) {
    let Some(pair) = Pair::start(b).await else {
        return;
    };
    let store = &pair.store;
    let db = store.service.as_ref().expect("running").engine().db();
    // Another client, even one whose token has the same name.
    let other = credentials::create_token(db, Role::Store, "tests")
        .await
        .expect("token");
    let (s, mine) = post_keyed(store, &store.token, "order-1", "Ada").await;
    assert_eq!(s, StatusCode::CREATED, "{mine}");
    let (s, theirs) = post_keyed(store, &other, "order-1", "Ada").await;
    assert_eq!(s, StatusCode::CREATED, "{theirs}");
    assert_ne!(
        theirs["id"], mine["id"],
        "another caller's key is another order, never the first caller's"
    );
    assert_eq!(store.sql("SELECT COUNT(*) FROM orders").await, ["2"]);
    // Each caller's retry still gets its own first answer.
    for (token, first) in [(&store.token, &mine), (&other, &theirs)] {
        let (s, again) = post_keyed(store, token, "order-1", "Ada").await;
        assert_eq!((s, &again["id"]), (StatusCode::CREATED, &first["id"]));
    }
    // And a different body under one's own key is still refused.
    let (s, body) = post_keyed(store, &other, "order-1", "Someone else").await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(store.sql("SELECT COUNT(*) FROM orders").await, ["2"]);
    pair.stop().await;
}

async fn keys_from_before_callers_still_answer_a_retry(b: Backend) {
    let Some(pair) = Pair::start(b).await else {
        return;
    };
    let store = &pair.store;
    // A key stored before keys had callers (migration 5 keeps those with
    // an empty caller): a client retrying across the upgrade gets the
    // first answer, not a second order.
    let (s, first) = post_keyed(store, &store.token, "upgrade-1", "Ada").await;
    assert_eq!(s, StatusCode::CREATED);
    store
        .sql("UPDATE idempotency_keys SET caller = '' WHERE key = 'upgrade-1'")
        .await;
    let (s, again) = post_keyed(store, &store.token, "upgrade-1", "Ada").await;
    assert_eq!((s, &again["id"]), (StatusCode::CREATED, &first["id"]));
    assert_eq!(store.sql("SELECT COUNT(*) FROM orders").await, ["1"]);
    pair.stop().await;
}

//! `Idempotency-Key` on create: a retried request creates nothing new.

use reqwest::StatusCode;

use crate::both_backends;
use crate::helpers::*;

both_backends!(same_key_same_body_creates_once);

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

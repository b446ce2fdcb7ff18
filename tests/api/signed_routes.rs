//! Every signed peer route refuses a replay: a captured request (same
//! `webhook-id`, timestamp and signature) sent again within the 300 s the
//! signature stays valid changes nothing and answers 409. Timestamps far
//! from now, however far, are a plain 401.

use std::time::Duration;

use fulfillment::sync::signature::Secrets;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::*;

both_backends!(
    every_signed_route_refuses_a_replayed_request,
    timestamps_at_the_ends_of_the_range_are_refused_cleanly,
);

/// A request as the peer would sign it.
struct Signed {
    id: String,
    ts: String,
    signature: String,
    body: String,
}

fn sign(body: &Value) -> Signed {
    let secrets = Secrets::new(&[SECRET]).expect("secret");
    let id = format!("msg_{}", uuid::Uuid::now_v7().simple());
    let ts = chrono::Utc::now().timestamp();
    let body = body.to_string();
    Signed {
        signature: secrets.sign(&id, ts, body.as_bytes()),
        id,
        ts: ts.to_string(),
        body,
    }
}

async fn send(side: &Side, path: &str, r: &Signed) -> (StatusCode, Value) {
    let res = side
        .http
        .post(format!("{}{path}", side.url))
        .header("webhook-id", &r.id)
        .header("webhook-timestamp", &r.ts)
        .header("webhook-signature", &r.signature)
        .header("content-type", "application/json")
        .body(r.body.clone())
        .send()
        .await
        .expect("request sent");
    let status = res.status();
    (status, res.json().await.unwrap_or(Value::Null))
}

async fn attempts_of(side: &Side, id: &str) -> String {
    side.sql(&format!(
        "SELECT COUNT(*) FROM sync_attempts WHERE order_id = '{id}'"
    ))
    .await
    .concat()
}

async fn every_signed_route_refuses_a_replayed_request(b: Backend) {
    let Some(pair) = Pair::start(b).await else {
        return;
    };
    let id = id_of(&create_order(&pair.store, "Replay").await);
    wait_for_order(&pair.store, &id, "the round trip", |o| {
        o["fulfillment"]["status"] == "pending"
    })
    .await;
    let everything = json!({"lo": "", "hi": "~"});
    for (path, body) in [
        ("/api/v1/sync/digests", json!({"ranges": [everything]})),
        (
            "/api/v1/sync/versions",
            json!({"range": everything, "limit": 10}),
        ),
    ] {
        let request = sign(&body);
        let (s, first) = send(&pair.warehouse, path, &request).await;
        assert_eq!(s, StatusCode::OK, "{path}: {first}");
        let (s, again) = send(&pair.warehouse, path, &request).await;
        assert_eq!(s, StatusCode::CONFLICT, "{path} replayed: {again}");
        assert!(
            again["detail"]
                .as_str()
                .unwrap_or("")
                .contains("webhook-id"),
            "{again}"
        );
    }

    // /resend changes state: the warehouse enqueues its snapshot again.
    let request = sign(&json!({"items": [{"id": id}]}));
    let (s, answer) = send(&pair.warehouse, "/api/v1/sync/resend", &request).await;
    assert_eq!((s, answer["resent"].as_i64()), (StatusCode::OK, Some(1)));
    eventually(10, "the resent snapshot is delivered", || async {
        let (_, st) = pair.warehouse.get("/api/v1/sync/status").await;
        (st["pending"] == 0).then_some(())
    })
    .await;
    let before = attempts_of(&pair.warehouse, &id).await;
    let (s, again) = send(&pair.warehouse, "/api/v1/sync/resend", &request).await;
    assert_eq!(s, StatusCode::CONFLICT, "replayed resend: {again}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (_, st) = pair.warehouse.get("/api/v1/sync/status").await;
    assert_eq!(st["pending"], 0, "the replay enqueued nothing: {st}");
    assert_eq!(
        attempts_of(&pair.warehouse, &id).await,
        before,
        "and sent nothing"
    );
    pair.stop().await;
}

async fn timestamps_at_the_ends_of_the_range_are_refused_cleanly(b: Backend) {
    let Some(pair) = Pair::start(b).await else {
        return;
    };
    for ts in [i64::MIN, i64::MIN + 1, i64::MAX, -1] {
        let mut request = sign(&json!({"changes": []}));
        request.ts = ts.to_string();
        let (s, body) = send(&pair.warehouse, "/api/v1/sync/changes", &request).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED, "timestamp {ts}: {body}");
        assert!(
            body["detail"]
                .as_str()
                .unwrap_or("")
                .contains("check both clocks"),
            "{body}"
        );
    }
    pair.stop().await;
}

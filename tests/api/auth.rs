//! Nobody gets in where they don't belong: API tokens on every /api/v1
//! route, signatures on the sync endpoint.

use fulfillment::sync::signature::Secrets;
use reqwest::StatusCode;
use serde_json::json;

use crate::both_backends;
use crate::helpers::*;

both_backends!(
    api_needs_a_valid_token,
    sync_endpoint_needs_a_valid_signature
);

async fn api_needs_a_valid_token(b: Backend) {
    let Some(pair) = Pair::start(b).await else {
        return;
    };
    let url = format!("{}/api/v1/orders", pair.store.url);
    let client = &pair.store.http;
    let r = client.get(&url).send().await.expect("sent");
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    for bad in [
        "Bearer nope",
        "Basic YWRtaW46YWRtaW4=",
        "Bearer ",
        &format!("Bearer {}", pair.warehouse.token),
    ] {
        let r = client
            .get(&url)
            .header("authorization", bad)
            .send()
            .await
            .expect("sent");
        assert_eq!(
            r.status(),
            StatusCode::UNAUTHORIZED,
            "{bad:?} must be refused (the warehouse's token is useless at the store)"
        );
    }
    let r = client
        .post(&url)
        .json(&order_body("Mallory"))
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    for path in [
        "/api/v1/sync/status",
        "/api/v1/orders/00000000-0000-0000-0000-000000000000/audit",
    ] {
        let r = client
            .get(format!("{}{path}", pair.warehouse.url))
            .send()
            .await
            .expect("sent");
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{path}");
    }
    let r = client
        .post(format!("{}/api/v1/sync/replay", pair.store.url))
        .json(&json!({"all": true}))
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(pair.store.sql("SELECT COUNT(*) FROM orders").await, ["0"]);
    // Tokens are stored only as hashes.
    let stored = pair.store.sql("SELECT token_hash FROM api_tokens").await;
    assert!(!stored.iter().any(|h| h.contains(&pair.store.token)));
    pair.stop().await;
}

fn content_item(id: &str, version: i64) -> serde_json::Value {
    json!({
        "id": id, "number": "SO-900001", "store_version": version,
        "customer": {"name": "Eve", "email": "eve@example.com"},
        "shipping_address": {"name": "Eve", "line1": "1 Way", "city": "Paris", "postal_code": "75001", "country": "FR"},
        "lines": [{"sku": "S-1", "name": "Thing", "quantity": 1}],
        "cancel_requested": false, "created_at": "2026-11-25T10:00:00Z"
    })
}

async fn signed_post(
    side: &Side,
    secret: &str,
    id: &str,
    ts: i64,
    body: &[u8],
) -> (StatusCode, serde_json::Value) {
    let sig = Secrets::new(&[secret]).expect("secret").sign(id, ts, body);
    let r = side
        .http
        .post(format!("{}/api/v1/sync/changes", side.url))
        .header("content-type", "application/json")
        .header("webhook-id", id)
        .header("webhook-timestamp", ts.to_string())
        .header("webhook-signature", sig)
        .body(body.to_vec())
        .send()
        .await
        .expect("sent");
    let s = r.status();
    (s, r.json().await.unwrap_or(serde_json::Value::Null))
}

async fn sync_endpoint_needs_a_valid_signature(b: Backend) {
    let Some(pair) = Pair::start(b).await else {
        return;
    };
    let wh = &pair.warehouse;
    let now = chrono::Utc::now().timestamp();
    let order_id = uuid::Uuid::now_v7().to_string();
    let body = serde_json::to_vec(&json!({"changes": [content_item(&order_id, 1)]})).expect("json");

    // Unsigned.
    let r = wh
        .http
        .post(format!("{}/api/v1/sync/changes", wh.url))
        .header("content-type", "application/json")
        .body(body.clone())
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    // Wrong secret, old and future timestamps, tampered body.
    assert_eq!(
        signed_post(wh, "wrong", "m1", now, &body).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        signed_post(wh, SECRET, "m2", now - 310, &body).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        signed_post(wh, SECRET, "m3", now + 310, &body).await.0,
        StatusCode::UNAUTHORIZED
    );
    let sig = Secrets::new(&[SECRET])
        .expect("secret")
        .sign("m4", now, &body);
    let mut tampered = body.clone();
    let pos = tampered
        .iter()
        .position(|&c| c == b'E')
        .expect("a letter to change");
    tampered[pos] = b'M';
    let r = wh
        .http
        .post(format!("{}/api/v1/sync/changes", wh.url))
        .header("content-type", "application/json")
        .header("webhook-id", "m4")
        .header("webhook-timestamp", now.to_string())
        .header("webhook-signature", sig)
        .body(tampered)
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        wh.sql("SELECT COUNT(*) FROM orders").await,
        ["0"],
        "nothing forged was stored"
    );

    // A valid one applies; replaying the same webhook-id is refused.
    let (s, res) = signed_post(wh, SECRET, "m5", now, &body).await;
    assert_eq!(s, StatusCode::OK, "{res}");
    assert_eq!(res["results"][0]["outcome"], "applied");
    let (s, _) = signed_post(wh, SECRET, "m5", now, &body).await;
    assert_eq!(s, StatusCode::CONFLICT, "replayed webhook-id");
    // Same snapshot under a new id: harmless, answered stale.
    let (_, res) = signed_post(wh, SECRET, "m6", now, &body).await;
    assert_eq!(res["results"][0]["outcome"], "stale");

    // Money sent to the warehouse is rejected, not stored; the rest applies.
    let other = uuid::Uuid::now_v7().to_string();
    let mut priced = content_item(&other, 1);
    priced["lines"][0]["unit_price"] = json!(1999);
    priced["number"] = json!("SO-900002");
    let mut fine = content_item(&uuid::Uuid::now_v7().to_string(), 1);
    fine["number"] = json!("SO-900003");
    let body =
        serde_json::to_vec(&json!({"changes": [priced, {"garbage": true}, fine]})).expect("json");
    let (s, res) = signed_post(wh, SECRET, "m7", now, &body).await;
    assert_eq!(s, StatusCode::OK, "{res}");
    let outcomes: Vec<&str> = res["results"]
        .as_array()
        .expect("results")
        .iter()
        .filter_map(|r| r["outcome"].as_str())
        .collect();
    assert_eq!(outcomes, ["rejected", "rejected", "applied"]);
    assert!(
        res["results"][0]["reason"]
            .as_str()
            .is_some_and(|r| r.contains("unit_price")),
        "{res}"
    );
    assert_eq!(
        wh.sql(&format!("SELECT COUNT(*) FROM orders WHERE id = '{other}'"))
            .await,
        ["0"]
    );

    // The store takes only fulfillment snapshots.
    let body = serde_json::to_vec(&json!({"changes": [content_item(&order_id, 2)]})).expect("json");
    let (s, res) = signed_post(&pair.store, SECRET, "m8", now, &body).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(res["results"][0]["outcome"], "rejected");
    pair.stop().await;
}

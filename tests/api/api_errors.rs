//! The error contract of docs/API.md: every error is problem+json with the right
//! status, and a refused request changes nothing.

use reqwest::StatusCode;
use serde_json::json;

use crate::both_backends;
use crate::helpers::*;

both_backends!(
    invalid_create_lists_every_field_and_creates_nothing,
    unreadable_requests_get_4xx,
    methods_not_allowed_on_each_side,
    invalid_transitions_name_the_current_status,
    unknown_orders_and_routes,
    list_parameters_are_validated,
    operational_endpoints,
);

async fn count_orders(side: &Side) -> usize {
    let (s, list) = side.get("/api/v1/orders?limit=500").await;
    assert_eq!(s, StatusCode::OK);
    list["items"].as_array().map_or(0, Vec::len)
}

async fn invalid_create_lists_every_field_and_creates_nothing(b: Backend) {
    let Some(pair) = Pair::start(b).await else {
        return;
    };
    let mut body = order_body("Ada");
    body["customer"]["email"] = json!("not-an-email");
    body["shipping_address"]["country"] = json!("XX");
    body["lines"][0]["quantity"] = json!(0);
    body["lines"][0]["unit_price"] = json!(-5);
    body["currency"] = json!("ZZZ");
    body["shipping_address"]["city"] = json!("");
    let (s, p) = pair.store.post("/api/v1/orders", &body).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{p}");
    assert_eq!(p["status"], 422);
    let fields: Vec<&str> = p["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .filter_map(|e| e["field"].as_str())
        .collect();
    for f in [
        "customer.email",
        "shipping_address.country",
        "shipping_address.city",
        "lines[0].quantity",
        "lines[0].unit_price",
        "currency",
    ] {
        assert!(fields.contains(&f), "{f} not reported: {fields:?}");
    }
    for (tweak, field) in [
        (json!({"lines": []}), "lines"),
        (
            json!({"lines": [{"sku": "A", "name": "B", "quantity": 10001, "unit_price": 1}]}),
            "lines[0].quantity",
        ),
        (json!({"notes": "x".repeat(501)}), "notes"),
        (json!({"deliver_by": "tomorrow"}), "deliver_by"),
    ] {
        let mut body = order_body("Ada");
        for (k, v) in tweak.as_object().expect("object") {
            body[k] = v.clone();
        }
        let (s, p) = pair.store.post("/api/v1/orders", &body).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{p}");
        assert_eq!(p["errors"][0]["field"], field, "{p}");
    }
    // Wrong types and unknown fields are 422 too, naming the field.
    let mut body = order_body("Ada");
    body["lines"][0]["quantity"] = json!("two");
    let (s, p) = pair.store.post("/api/v1/orders", &body).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        p["errors"][0]["field"]
            .as_str()
            .is_some_and(|f| f.contains("quantity")),
        "{p}"
    );
    let mut body = order_body("Ada");
    body["discount"] = json!(5);
    let (s, p) = pair.store.post("/api/v1/orders", &body).await;
    assert_eq!(
        s,
        StatusCode::UNPROCESSABLE_ENTITY,
        "unknown fields are refused: {p}"
    );
    assert_eq!(count_orders(&pair.store).await, 0, "nothing was created");
    assert_eq!(pair.store.sql("SELECT COUNT(*) FROM outbox").await, ["0"]);
    pair.stop().await;
}

async fn unreadable_requests_get_4xx(b: Backend) {
    let Some(pair) = Pair::start(b).await else {
        return;
    };
    let url = format!("{}/api/v1/orders", pair.store.url);
    let send = |body: Vec<u8>, ct: &'static str| {
        pair.store
            .http
            .post(&url)
            .bearer_auth(&pair.store.token)
            .header("content-type", ct)
            .body(body)
            .send()
    };
    let r = send(b"{\"customer\": ".to_vec(), "application/json")
        .await
        .expect("sent");
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    let r = send(
        serde_json::to_vec(&order_body("A")).expect("json"),
        "text/plain",
    )
    .await
    .expect("sent");
    assert_eq!(r.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    let big = format!("{{\"notes\": \"{}\"}}", "x".repeat(1024 * 1024 + 10));
    let r = send(big.into_bytes(), "application/json")
        .await
        .expect("sent");
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let r = send(b"[1, 2]".to_vec(), "application/json")
        .await
        .expect("sent");
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let r = send(
        "{\"customer\": {\"name\": \"'; DROP TABLE orders;--\"}}".into(),
        "application/json",
    )
    .await
    .expect("sent");
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(count_orders(&pair.store).await, 0);
    pair.stop().await;
}

async fn methods_not_allowed_on_each_side(b: Backend) {
    let Some(pair) = Pair::start(b).await else {
        return;
    };
    let id = id_of(&create_order(&pair.store, "Ada").await);
    wait_for_order(&pair.warehouse, &id, "order at the warehouse", |_| true).await;
    let path = format!("/api/v1/orders/{id}");

    let (s, p) = pair
        .warehouse
        .post("/api/v1/orders", &order_body("W"))
        .await;
    assert_eq!(s, StatusCode::METHOD_NOT_ALLOWED, "{p}");
    assert_eq!(p["status"], 405);
    for side in [&pair.store, &pair.warehouse] {
        let (s, _) = side.call(reqwest::Method::DELETE, &path, None).await;
        assert_eq!(
            s,
            StatusCode::METHOD_NOT_ALLOWED,
            "DELETE at the {}",
            side.role
        );
    }
    let (s, _) = pair.warehouse.patch(&path, &json!({"notes": "x"})).await;
    assert_eq!(s, StatusCode::METHOD_NOT_ALLOWED);
    let (s, _) = pair
        .warehouse
        .post(&format!("{path}/cancel"), &json!({}))
        .await;
    assert_eq!(s, StatusCode::METHOD_NOT_ALLOWED);
    let (s, _) = pair
        .store
        .post(
            &format!("{path}/fulfillment"),
            &json!({"status": "picking"}),
        )
        .await;
    assert_eq!(s, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(count_orders(&pair.warehouse).await, 1);
    let (_, still) = pair.store.get(&path).await;
    assert_eq!(still["sync"]["store_version"], 1, "nothing changed");
    pair.stop().await;
}

async fn invalid_transitions_name_the_current_status(b: Backend) {
    let Some(pair) = Pair::start(b).await else {
        return;
    };
    let id = id_of(&create_order(&pair.store, "Ada").await);
    wait_for_order(&pair.warehouse, &id, "order at the warehouse", |_| true).await;
    let path = format!("/api/v1/orders/{id}/fulfillment");
    for bad in [
        json!({"status": "packed"}),
        json!({"status": "released"}),
        json!({"status": "shipped", "carrier": "UPS", "tracking_number": "1"}),
    ] {
        let (s, p) = pair.warehouse.post(&path, &bad).await;
        assert_eq!(s, StatusCode::CONFLICT, "{bad} from pending: {p}");
        assert!(
            p["detail"].as_str().is_some_and(|d| d.contains("pending")),
            "{p}"
        );
    }
    let (s, p) = pair
        .warehouse
        .post(&path, &json!({"status": "shipped"}))
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let fields: Vec<&str> = p["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .filter_map(|e| e["field"].as_str())
        .collect();
    assert_eq!(fields, ["carrier", "tracking_number"]);
    let (s, _) = pair
        .warehouse
        .post(&path, &json!({"status": "teleported"}))
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let (_, o) = pair.warehouse.get(&format!("/api/v1/orders/{id}")).await;
    assert_eq!(o["status"], "pending");
    assert_eq!(
        o["sync"]["warehouse_version"], 1,
        "refused transitions change nothing"
    );
    pair.stop().await;
}

async fn unknown_orders_and_routes(b: Backend) {
    let Some(pair) = Pair::start(b).await else {
        return;
    };
    let unknown = uuid::Uuid::now_v7();
    let (s, p) = pair.store.get(&format!("/api/v1/orders/{unknown}")).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(p["status"], 404);
    let (s, _) = pair
        .warehouse
        .post(
            &format!("/api/v1/orders/{unknown}/fulfillment"),
            &json!({"status": "picking"}),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, _) = pair
        .store
        .patch(&format!("/api/v1/orders/{unknown}"), &json!({"notes": "x"}))
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (s, p) = pair.store.get("/api/v1/orders/not-a-uuid").await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{p}");
    assert_eq!(p["errors"][0]["field"], "id", "{p}");
    let (s, p) = pair.store.get("/api/v1/nothing-here").await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(p["status"], 404);
    let (s, _) = pair
        .store
        .call(reqwest::Method::PUT, "/api/v1/orders", None)
        .await;
    assert_eq!(s, StatusCode::METHOD_NOT_ALLOWED);
    pair.stop().await;
}

async fn list_parameters_are_validated(b: Backend) {
    let Some(pair) = Pair::start(b).await else {
        return;
    };
    for q in [
        "limit=0",
        "limit=501",
        "limit=ten",
        "status=lost",
        "updated_since=yesterday",
        "cursor=zzz",
        "sync=maybe",
    ] {
        let (s, p) = pair.store.get(&format!("/api/v1/orders?{q}")).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{q}: {p}");
    }
    let id = id_of(&create_order(&pair.store, "Ada").await);
    wait_for_order(&pair.store, &id, "reported", |o| {
        o["fulfillment"]["status"] == "pending"
    })
    .await;
    let (_, l) = pair.store.get("/api/v1/orders?status=pending").await;
    assert_eq!(l["items"].as_array().map(Vec::len), Some(1));
    let (_, l) = pair.store.get("/api/v1/orders?status=shipped").await;
    assert_eq!(l["items"].as_array().map(Vec::len), Some(0));
    let (_, l) = pair
        .store
        .get("/api/v1/orders?status=open&updated_since=2020-01-01T00:00:00Z")
        .await;
    assert_eq!(l["items"].as_array().map(Vec::len), Some(1));
    let (_, l) = pair
        .store
        .get("/api/v1/orders?updated_since=2999-01-01T00:00:00Z")
        .await;
    assert_eq!(l["items"].as_array().map(Vec::len), Some(0));
    pair.stop().await;
}

async fn operational_endpoints(b: Backend) {
    let Some(pair) = Pair::start(b).await else {
        return;
    };
    for side in [&pair.store, &pair.warehouse] {
        let r = reqwest::get(format!("{}/healthz", side.url))
            .await
            .expect("healthz");
        assert_eq!(r.status(), StatusCode::OK);
        let r = reqwest::get(format!("{}/readyz", side.url))
            .await
            .expect("readyz");
        assert_eq!(r.status(), StatusCode::OK);
        let (s, st) = side.get("/api/v1/sync/status").await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(st["breaker"], "closed");
        assert!(st["pending"].is_i64() && st["dead"].is_i64(), "{st}");
    }
    let id = id_of(&create_order(&pair.store, "Ada").await);
    wait_for_order(&pair.store, &id, "round trip", |o| {
        o["fulfillment"]["status"] == "pending"
    })
    .await;
    let metrics = reqwest::get(format!("{}/metrics", pair.store.url))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(
        metrics.contains("# TYPE fulfillment_outbox_pending gauge"),
        "{metrics}"
    );
    let delivered = metrics
        .lines()
        .find(|l| l.starts_with("fulfillment_sync_delivered_total"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse::<u64>().ok());
    assert!(delivered.is_some_and(|n| n >= 1), "{metrics}");
    let (_, st) = pair.store.get("/api/v1/sync/status").await;
    assert!(st["last_delivered_at"].is_string(), "{st}");
    for side in [&pair.store, &pair.warehouse] {
        let (s, doc) = side.get("/api/v1/openapi.json").await;
        assert_eq!(s, StatusCode::OK);
        assert_eq!(doc["openapi"], "3.1.0");
        assert!(doc["paths"]["/api/v1/orders"].is_object());
    }
    let r = reqwest::get(format!("{}/api/v1/openapi.json", pair.store.url))
        .await
        .expect("sent");
    assert_eq!(
        r.status(),
        StatusCode::UNAUTHORIZED,
        "like every /api/v1 route"
    );
    pair.stop().await;
}

/// A client that never finishes its request headers is disconnected after
/// the header-read timeout instead of holding a connection forever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unfinished_headers_are_cut_off() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Some(pair) = Pair::start(Backend::Sqlite).await else {
        return;
    };
    let mut stream = tokio::net::TcpStream::connect(pair.store.url.trim_start_matches("http://"))
        .await
        .expect("connect");
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .expect("write");
    let started = std::time::Instant::now();
    let mut buf = [0u8; 256];
    let closed = tokio::time::timeout(std::time::Duration::from_secs(30), async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(_) => continue,
            }
        }
    })
    .await;
    assert!(closed.is_ok(), "the connection was still open after 30 s");
    let waited = started.elapsed();
    let limit = fulfillment::service::HEADER_READ_TIMEOUT;
    assert!(
        waited >= limit - std::time::Duration::from_secs(1),
        "closed too early: {waited:?}"
    );
    pair.stop().await;
}

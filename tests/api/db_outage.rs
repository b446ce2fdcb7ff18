//! The database goes away and comes back: a service on a PostgreSQL cluster
//! of its own (so stopping it disturbs no other test) answers every request
//! within 5 s with one truthful 503 while the server is stopped, and serves
//! again as soon as it is back, with nothing acknowledged lost.

use std::time::{Duration, Instant};

use fulfillment::domain::Role;
use fulfillment::engine::credentials;
use fulfillment::service::{Service, ServiceConfig};
use reqwest::StatusCode;
use serde_json::Value;
use tokio::net::TcpListener;

use crate::helpers::*;
use crate::pg_cluster::PgCluster;

/// What every answer for an unreachable database says.
const UNREACHABLE: &str = "the database cannot be reached";

struct Answer {
    status: StatusCode,
    retry_after: Option<String>,
    content_type: Option<String>,
    body: Value,
    took: Duration,
}

async fn call(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    token: &str,
    body: Option<&Value>,
) -> Answer {
    let started = Instant::now();
    let mut req = http.request(method, url).bearer_auth(token);
    if let Some(b) = body {
        req = req.json(b);
    }
    let res = req.send().await.expect("request sent");
    let header = |name| {
        res.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let (status, retry_after, content_type) = (
        res.status(),
        header(reqwest::header::RETRY_AFTER),
        header(reqwest::header::CONTENT_TYPE),
    );
    let text = res.text().await.expect("body");
    Answer {
        status,
        retry_after,
        content_type,
        body: serde_json::from_str(&text).unwrap_or(Value::String(text)),
        took: started.elapsed(),
    }
}

fn assert_unreachable(what: &str, a: &Answer) {
    assert!(
        a.took < Duration::from_secs(5),
        "{what} took {:?} with the database down",
        a.took
    );
    assert_eq!(
        a.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{what}: {:?}",
        a.body
    );
    assert!(
        a.retry_after
            .as_deref()
            .is_some_and(|v| v.parse::<u64>().is_ok()),
        "{what}: 503 without Retry-After"
    );
    assert_eq!(
        a.content_type.as_deref(),
        Some("application/problem+json"),
        "{what}"
    );
    let detail = a.body["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains(UNREACHABLE) && detail.contains("nothing was changed"),
        "{what}: {detail}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_down_answers_503_fast_and_recovers_at_once() {
    let log = CapturedLogs::install("warn");
    let Some(pg) = PgCluster::start() else {
        return;
    };
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    // The peer is never there: this test is about the database.
    let cfg = ServiceConfig::new(Role::Store, &pg.url, "http://127.0.0.1:9", SECRET);
    let service = Service::start(cfg, listener).await.expect("service starts");
    let token = credentials::create_token(service.engine().db(), Role::Store, "outage")
        .await
        .expect("token");
    let base = format!("http://{addr}");
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .expect("client");
    let get = |path: &str| {
        let (http, url, token) = (http.clone(), format!("{base}{path}"), token.clone());
        async move { call(&http, reqwest::Method::GET, &url, &token, None).await }
    };
    let post = |path: &str, body: Value| {
        let (http, url, token) = (http.clone(), format!("{base}{path}"), token.clone());
        async move { call(&http, reqwest::Method::POST, &url, &token, Some(&body)).await }
    };

    let mut acknowledged = Vec::new();
    for i in 0..5 {
        let a = post("/api/v1/orders", order_body(&format!("Before {i}"))).await;
        assert_eq!(a.status, StatusCode::CREATED, "{:?}", a.body);
        acknowledged.push(a.body["id"].as_str().expect("id").to_owned());
    }
    assert_eq!(get("/readyz").await.status, StatusCode::OK);

    pg.stop_server();
    // The API token is cached for 2 s; past that, authentication needs the
    // database too, and must fail the same way.
    tokio::time::sleep(Duration::from_millis(2100)).await;

    let one = get(&format!("/api/v1/orders/{}", acknowledged[0])).await;
    assert_unreachable("GET an order", &one);
    assert_unreachable("list orders", &get("/api/v1/orders").await);
    assert_unreachable(
        "create an order",
        &post("/api/v1/orders", order_body("During")).await,
    );
    // Creates that arrive together are written as one batch.
    let batch: Vec<_> = (0..6)
        .map(|i| tokio::spawn(post("/api/v1/orders", order_body(&format!("Batch {i}")))))
        .collect();
    for (i, a) in batch.into_iter().enumerate() {
        assert_unreachable(
            &format!("create {i} of a batch"),
            &a.await.expect("request task"),
        );
    }
    let ready = get("/readyz").await;
    assert_eq!(
        ready.status,
        StatusCode::SERVICE_UNAVAILABLE,
        "{:?}",
        ready.body
    );
    assert!(
        ready.took < Duration::from_millis(2500),
        "/readyz took {:?}",
        ready.took
    );
    assert!(
        ready.body["detail"]
            .as_str()
            .is_some_and(|d| d.contains("not ready")),
        "{:?}",
        ready.body
    );
    let metrics = get("/metrics").await;
    assert!(
        metrics.took < Duration::from_secs(5),
        "/metrics took {:?}",
        metrics.took
    );
    assert!(
        metrics.status == StatusCode::OK || metrics.status == StatusCode::SERVICE_UNAVAILABLE,
        "{:?}",
        metrics.status
    );

    // Every one of those requests met the outage: the log says so once
    // (then once per 10 s), not once per request.
    {
        let text = log.text();
        let lines = |needle: &str| text.lines().filter(|l| l.contains(needle)).count();
        // The first, and a summary per 10 s of outage.
        assert!((1..=3).contains(&lines("answered 503")), "{text}");
        assert_eq!(lines("response failed"), 0, "{text}");
    }

    pg.start_server();
    let back = Instant::now();
    let first = get(&format!("/api/v1/orders/{}", acknowledged[0])).await;
    assert_eq!(first.status, StatusCode::OK, "{:?}", first.body);
    let created = post("/api/v1/orders", order_body("After")).await;
    assert_eq!(created.status, StatusCode::CREATED, "{:?}", created.body);
    assert_eq!(get("/readyz").await.status, StatusCode::OK);
    assert!(
        back.elapsed() < Duration::from_secs(3),
        "serving again took {:?} after the server was back",
        back.elapsed()
    );
    // Every request from now on succeeds (none left waiting on the outage).
    for _ in 0..20 {
        let a = get("/api/v1/orders?limit=100").await;
        assert_eq!(a.status, StatusCode::OK, "{:?}", a.body);
    }

    // Nothing acknowledged was lost; nothing answered 503 was written.
    let list = get("/api/v1/orders?limit=100").await;
    let names: Vec<&str> = list.body["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|o| o["customer"]["name"].as_str().unwrap_or_default())
        .collect();
    for id in &acknowledged {
        assert_eq!(
            get(&format!("/api/v1/orders/{id}")).await.status,
            StatusCode::OK,
            "acknowledged order {id} is there"
        );
    }
    assert_eq!(names.len(), 6, "{names:?}");
    assert!(names.contains(&"After"), "{names:?}");
    assert!(
        !names
            .iter()
            .any(|n| n.starts_with("During") || n.starts_with("Batch")),
        "{names:?}"
    );
    service.stop().await;
    drop(pg);
}

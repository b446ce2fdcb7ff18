//! One poison order does not hold back a batch: when the peer answers a
//! whole batch with an error that may come from its content (here 422), the
//! relay splits the batch in halves until the poison order fails alone, and
//! every other order of the batch is delivered in that same round, once.
//!
//! Deterministic: a small proxy of this test's own (not the fault proxy)
//! forwards everything between store and warehouse unchanged, except that
//! it answers 422 to any sync batch that contains the poison order's id.

use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode as AxStatus};
use axum::response::{IntoResponse, Response};
use reqwest::StatusCode;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::both_backends;
use crate::helpers::*;

both_backends!(a_poison_order_is_isolated_by_splitting_the_batch);

/// One `POST /api/v1/sync/changes` the proxy saw.
#[derive(Debug, Clone)]
struct Seen {
    items: usize,
    poison: bool,
    status: u16,
}

#[derive(Clone)]
struct ProxyState {
    target: String,
    poison: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    http: reqwest::Client,
}

/// Forwards every request to `target` unchanged, except sync batches that
/// contain `poison`, which it answers 422 itself.
struct PoisonProxy {
    url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    task: JoinHandle<()>,
}

impl PoisonProxy {
    async fn start(target: &str, poison: &str) -> PoisonProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let state = ProxyState {
            target: target.to_owned(),
            poison: poison.to_owned(),
            seen: seen.clone(),
            http: reqwest::Client::new(),
        };
        let app = axum::Router::new().fallback(relay).with_state(state);
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        PoisonProxy { url, seen, task }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

impl Drop for PoisonProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn relay(State(p): State<ProxyState>, req: Request) -> Response {
    let (parts, body) = req.into_parts();
    let Ok(body) = axum::body::to_bytes(body, 16 << 20).await else {
        return AxStatus::BAD_REQUEST.into_response();
    };
    let path = parts
        .uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    let is_batch = path == "/api/v1/sync/changes";
    let items = if is_batch {
        serde_json::from_slice::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v["changes"].as_array().map(Vec::len))
            .unwrap_or(0)
    } else {
        0
    };
    let poison = is_batch && String::from_utf8_lossy(&body).contains(&p.poison);
    let record = |status: u16| {
        if is_batch && let Ok(mut s) = p.seen.lock() {
            s.push(Seen {
                items,
                poison,
                status,
            });
        }
    };
    if poison {
        record(422);
        let problem = serde_json::json!({
            "type": "about:blank", "title": "Unprocessable Entity", "status": 422,
            "detail": "poison order (test proxy)", "errors": []
        });
        return (
            AxStatus::UNPROCESSABLE_ENTITY,
            [("content-type", "application/problem+json")],
            problem.to_string(),
        )
            .into_response();
    }
    let mut forward = p
        .http
        .request(parts.method.clone(), format!("{}{path}", p.target))
        .body(body);
    for (k, v) in &parts.headers {
        if !matches!(
            k.as_str(),
            "host" | "content-length" | "connection" | "transfer-encoding"
        ) {
            forward = forward.header(k, v);
        }
    }
    let Ok(answer) = forward.send().await else {
        record(502);
        return AxStatus::BAD_GATEWAY.into_response();
    };
    let status = answer.status();
    record(status.as_u16());
    let mut headers = HeaderMap::new();
    if let Some(ct) = answer.headers().get("content-type") {
        headers.insert("content-type", ct.clone());
    }
    let bytes = answer.bytes().await.unwrap_or_default();
    let mut response = Response::new(Body::from(bytes));
    *response.status_mut() = AxStatus::from_u16(status.as_u16()).unwrap_or(AxStatus::BAD_GATEWAY);
    *response.headers_mut() = headers;
    response
}

const ORDERS: usize = 20;

/// How many requests the relay's first round made: replays its halving
/// over what the proxy saw (a failed batch of n is followed by its first
/// half, n/2 items, then the rest), checking that each request is the one
/// the relay should send next, until no half is left to send.
fn first_round(seen: &[Seen]) -> usize {
    let mut todo = vec![ORDERS];
    let mut i = 0;
    while let Some(n) = todo.pop() {
        let s = seen
            .get(i)
            .unwrap_or_else(|| panic!("the first round stops after {i} requests: {seen:?}"));
        assert_eq!(
            s.items, n,
            "request {i} is not the half the relay should send next: {seen:?}"
        );
        if s.status != 200 && n > 1 {
            todo.push(n - n / 2);
            todo.push(n / 2);
        }
        i += 1;
    }
    i
}

async fn a_poison_order_is_isolated_by_splitting_the_batch(b: Backend) {
    let Some(mut pair) = Pair::start(b).await else {
        return;
    };
    // Orders queue up while the warehouse is down...
    pair.warehouse.stop().await;
    let mut ids = Vec::new();
    for i in 0..ORDERS {
        ids.push(id_of(
            &create_order(&pair.store, &format!("Split {i}")).await,
        ));
    }
    let poison = ids[ORDERS / 3].clone();
    // ...and all become due at once: with the store stopped, its outbox is
    // set due now by hand, so the restarted relay's first round takes every
    // order in one batch.
    pair.store.stop().await;
    pair.store
        .sql("UPDATE outbox SET next_attempt_at = 0, lease_until = 0")
        .await;
    assert_eq!(
        outbox_ids(&pair.store, "pending").await,
        sorted(&ids),
        "all {ORDERS} wait"
    );
    pair.warehouse.restart().await;
    let proxy = PoisonProxy::start(&pair.warehouse.url, &poison).await;
    pair.store.cfg.peer_url = proxy.url.clone();
    pair.store.restart().await;

    // Every other order arrives, and the store learns it was delivered.
    for id in ids.iter().filter(|id| **id != poison) {
        wait_for_order(&pair.warehouse, id, "a healthy order arrives", |_| true).await;
        wait_for_order(&pair.store, id, "delivered", |o| {
            o["sync"]["state"] == "synced" && o["fulfillment"]["status"] == "pending"
        })
        .await;
    }
    // The poison order is retried alone (a second request holding only it,
    // after the first round).
    let seen = eventually(20, "the poison order is retried alone", || async {
        let seen = proxy.seen();
        (seen.iter().filter(|s| s.poison && s.items == 1).count() >= 2).then_some(seen)
    })
    .await;
    let round = first_round(&seen);
    let first = &seen[..round];
    eprintln!("first round: {first:?}");
    assert_eq!(
        (first[0].items, first[0].poison),
        (ORDERS, true),
        "the first request carries the whole batch: {first:?}"
    );
    // Isolating one item of n takes about 2·log2(n)+1 requests: a failing
    // half and a passing half per level, plus the whole batch.
    let bound = 2 * (ORDERS as f64).log2().ceil() as usize + 1;
    assert!(
        round <= bound.min(24),
        "{round} requests in the first round (bound {bound}): {first:?}"
    );
    // Within that round the poison order ended up alone, and every healthy
    // order went through, once.
    assert_eq!(
        first.iter().filter(|s| s.poison && s.items == 1).count(),
        1,
        "{first:?}"
    );
    assert!(
        first.iter().all(|s| s.poison == (s.status == 422)),
        "{first:?}"
    );
    let healthy_sent: usize = first.iter().filter(|s| !s.poison).map(|s| s.items).sum();
    assert_eq!(healthy_sent, ORDERS - 1, "{first:?}");
    assert!(
        seen[round..]
            .iter()
            .all(|s| s.poison && s.items == 1 && s.status == 422),
        "later rounds carry the poison order alone: {seen:?}"
    );
    // And the store's own records agree: no healthy order ever had its
    // delivery refused.
    for id in ids.iter().filter(|id| **id != poison) {
        let (_, timeline) = pair.store.get(&format!("/api/v1/orders/{id}/sync")).await;
        let attempts = timeline["attempts"].as_array().cloned().unwrap_or_default();
        assert_eq!(attempts[0]["outcome"], "applied", "{timeline}");
        assert!(
            !attempts
                .iter()
                .any(|a| a["detail"].as_str().is_some_and(|d| d.contains("422"))),
            "a healthy order was refused with the poison one: {timeline}"
        );
    }

    // The poison order is still failing (not lost, not dead: 422 is not a
    // rejection of the item) and its timeline shows the peer's answer.
    let (s, _) = pair
        .warehouse
        .get(&format!("/api/v1/orders/{poison}"))
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (_, o) = pair.store.get(&format!("/api/v1/orders/{poison}")).await;
    assert_eq!(o["sync"]["state"], "failing", "{o}");
    assert!(
        o["sync"]["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("422")),
        "{o}"
    );
    // (The proxy sees a request before the store has settled its answer:
    // wait for the second refusal to be written down.)
    eventually(
        10,
        "two refusals in the poison order's timeline",
        || async {
            let (_, timeline) = pair
                .store
                .get(&format!("/api/v1/orders/{poison}/sync"))
                .await;
            let refused = timeline["attempts"].as_array().map_or(0, |a| {
                a.iter()
                    .filter(|t| {
                        t["outcome"] == "error"
                            && t["detail"].as_str().is_some_and(|d| d.contains("422"))
                    })
                    .count()
            });
            (refused >= 2).then_some(())
        },
    )
    .await;
    let (_, st) = pair.store.get("/api/v1/sync/status").await;
    assert_eq!(
        (st["pending"].as_i64(), st["dead"].as_i64()),
        (Some(1), Some(0)),
        "{st}"
    );
    assert_eq!(outbox_ids(&pair.store, "pending").await, [poison]);
    pair.stop().await;
}

//! A clock that is wrong, then set right (with `faketime`, the warehouse
//! runs ten minutes ahead for a while). While the clocks are apart every
//! request between the services is refused (401: the signature's timestamp
//! is out of tolerance): each sender counts that as failed (its breaker
//! opens), logs why, and shows the error in `/api/v1/sync/status`. Once the
//! clock is right again, what the fast clock scheduled ten minutes out is
//! retried at once, not after waiting the difference out.

use std::time::{Duration, Instant};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::api::{Api, Reply};
use crate::cluster::{Backend, Cluster, Ports, start};
use crate::lock;
use crate::workload::order_body;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite() {
    a_clock_set_back_parks_nothing(Backend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres() {
    a_clock_set_back_parks_nothing(Backend::Postgres).await;
}

/// libfaketime, which moves the clock of a program it is preloaded into.
const LIBFAKETIME: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1";

/// The environment that runs a program ten minutes ahead; `None` when
/// libfaketime is not installed (outside CI; under CI=true that fails the
/// test). Preloaded directly rather than through the `faketime` command,
/// so that killing the child kills the service itself.
fn ten_minutes_ahead() -> Option<Vec<(String, String)>> {
    if !crate::common::have(std::path::Path::new(LIBFAKETIME).exists(), || {
        "libfaketime is not installed (apt-get install faketime; scripts/test does)".into()
    }) {
        return None;
    }
    Some(
        [
            ("LD_PRELOAD", LIBFAKETIME),
            ("FAKETIME", "+600s"),
            // Timers (tokio's) keep the real monotonic clock; only the wall
            // clock (signatures, stored times) is ahead.
            ("FAKETIME_DONT_FAKE_MONOTONIC", "1"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .to_vec(),
    )
}

async fn post(api: &Api, path: &str, body: &Value) -> Value {
    match api.send(Method::POST, path, Some(body), None).await {
        Reply::Answered(s, v) if s.is_success() => v,
        other => panic!("POST {path}: {other:?}"),
    }
}

/// Waits until `check` holds for the JSON at `path`, for at most `secs`.
async fn until(api: &Api, path: &str, secs: u64, what: &str, check: impl Fn(&Value) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let last = api.get(path).await;
        if let Reply::Answered(StatusCode::OK, v) = &last
            && check(v)
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: not within {secs} s; last {path}: {last:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn refused_for_the_clock(status: &Value) -> bool {
    status["breaker"] != "closed"
        && status["last_error"]["detail"]
            .as_str()
            .is_some_and(|d| d.contains("401") && d.contains("check both clocks"))
}

async fn a_clock_set_back_parks_nothing(backend: Backend) {
    let Some(fast) = ten_minutes_ahead() else {
        return;
    };
    let Some(cluster) = Cluster::prepare(backend, Ports::direct()).await else {
        return;
    };
    let (store, warehouse) = cluster.apis();
    start(&cluster.store).await;
    start(cluster.warehouse()).await;
    let id = post(&store, "/api/v1/orders", &order_body("Clock")).await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let order = format!("/api/v1/orders/{id}");
    until(&store, &order, 20, "the first round trip", |o| {
        o["fulfillment"]["status"] == "pending"
    })
    .await;

    // The warehouse's clock jumps ten minutes ahead.
    lock(cluster.warehouse()).env = fast;
    start(cluster.warehouse()).await;
    // Both directions are refused now; each sender sees it and says so.
    post(
        &warehouse,
        &format!("{order}/fulfillment"),
        &json!({"status": "picking"}),
    )
    .await;
    let second = post(&store, "/api/v1/orders", &order_body("Clock 2")).await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    until(
        &warehouse,
        "/api/v1/sync/status",
        60,
        "the warehouse's breaker opens on the store's refusals",
        refused_for_the_clock,
    )
    .await;
    until(
        &store,
        "/api/v1/sync/status",
        60,
        "the store's breaker opens on the warehouse's refusals",
        refused_for_the_clock,
    )
    .await;
    until(&store, &order, 5, "the step has not arrived", |o| {
        o["fulfillment"]["status"] == "pending"
    })
    .await;
    for node in [&cluster.store, cluster.warehouse()] {
        let log = lock(node).log_tail(400);
        assert!(
            log.contains("delivery failed") && log.contains("check both clocks"),
            "the sending relay logs why:\n{log}"
        );
    }

    // The clock is set right. The warehouse's retry of the step was
    // scheduled by the fast clock, ten minutes out in real time: it must
    // go now, not in ten minutes.
    lock(cluster.warehouse()).env = Vec::new();
    start(cluster.warehouse()).await;
    let fixed = Instant::now();
    until(&store, &order, 30, "the step reaches the store", |o| {
        o["fulfillment"]["status"] == "picking"
    })
    .await;
    until(
        &warehouse,
        &format!("/api/v1/orders/{second}"),
        30,
        "the second order reaches the warehouse",
        |_| true,
    )
    .await;
    eprintln!(
        "clock[{backend}]: converged {:.1} s after the clock was set right",
        fixed.elapsed().as_secs_f64()
    );
    until(&warehouse, "/api/v1/sync/status", 10, "all sent", |s| {
        s["pending"] == 0 && s["breaker"] == "closed"
    })
    .await;
    cluster.finish().await;
}

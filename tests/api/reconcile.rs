//! Reconciliation repairs what the outbox cannot know about: rows deleted or
//! rolled back by hand in either database.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::*;

both_backends!(
    reconcile_repairs_rows_deleted_or_rolled_back_by_hand,
    reconcile_is_a_job_the_api_starts_and_reports,
    the_warehouse_answers_reconciliation_but_never_runs_it,
);

/// Starts a pass (202 with the job), follows it to its end and returns
/// its report.
async fn reconcile(side: &Side) -> Value {
    let (s, job) = side.post("/api/v1/sync/reconcile", &json!({})).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{job}");
    assert_eq!(job["state"], "running", "{job}");
    let done = eventually(30, "the reconciliation job ends", || async {
        let (s, job) = side.get("/api/v1/sync/reconcile").await;
        assert_eq!(s, StatusCode::OK, "{job}");
        (job["state"] != "running").then_some(job)
    })
    .await;
    assert_eq!(done["state"], "finished", "{done}");
    assert!(done["finished_at"].is_string(), "{done}");
    done["report"].clone()
}

fn differences(r: &Value) -> i64 {
    [
        "resent_to_peer",
        "raised_locally",
        "requested_from_peer",
        "orphans",
    ]
    .iter()
    .map(|k| r[k].as_i64().unwrap_or(0))
    .sum()
}

async fn reconcile_repairs_rows_deleted_or_rolled_back_by_hand(b: Backend) {
    let Some(pair) = Pair::start(b).await else {
        return;
    };
    let mut ids = Vec::new();
    for i in 0..12 {
        ids.push(id_of(
            &create_order(&pair.store, &format!("Reconcile {i}")).await,
        ));
    }
    let (s, _) = pair
        .store
        .patch(
            &format!("/api/v1/orders/{}", ids[1]),
            &json!({"notes": "second version"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    wait_for_order(&pair.warehouse, &ids[1], "the edit", |o| {
        o["notes"] == "second version"
    })
    .await;
    for id in &ids {
        wait_for_order(&pair.store, id, "round trip", |o| {
            o["fulfillment"]["status"] == "pending"
        })
        .await;
    }

    let clean = reconcile(&pair.store).await;
    assert_eq!(
        (
            clean["local_orders"].as_i64(),
            clean["peer_orders"].as_i64()
        ),
        (Some(12), Some(12)),
        "{clean}"
    );
    assert_eq!(differences(&clean), 0, "nothing to repair yet: {clean}");

    // Break the warehouse by hand: lose one order, roll another back.
    let wh = &pair.warehouse;
    let (lost, rolled, unheard) = (&ids[0], &ids[1], &ids[2]);
    for table in ["order_lines", "shipments"] {
        wh.sql(&format!("DELETE FROM {table} WHERE order_id = '{lost}'"))
            .await;
    }
    wh.sql(&format!("DELETE FROM orders WHERE id = '{lost}'"))
        .await;
    wh.sql(&format!(
        "UPDATE orders SET store_version = 1, notes = 'stale' WHERE id = '{rolled}'"
    ))
    .await;
    // And the store: forget what the warehouse reported about another.
    pair.store
        .sql(&format!(
            "UPDATE orders SET warehouse_version = 0, status = NULL WHERE id = '{unheard}'"
        ))
        .await;

    let report = reconcile(&pair.store).await;
    assert_eq!(report["peer_orders"], 11, "{report}");
    assert_eq!(
        report["resent_to_peer"], 2,
        "the lost and the rolled-back order: {report}"
    );
    assert_eq!(
        report["requested_from_peer"], 1,
        "the store's forgotten fulfillment: {report}"
    );
    assert_eq!(report["orphans"], 0);

    let back = wait_for_order(wh, lost, "the lost order is back at the warehouse", |_| {
        true
    })
    .await;
    assert_eq!(back["customer"]["name"], "Reconcile 0");
    wait_for_order(wh, rolled, "the rolled-back order is current again", |o| {
        o["notes"] == "second version"
    })
    .await;
    wait_for_order(&pair.store, unheard, "the store hears again", |o| {
        o["fulfillment"]["status"] == "pending"
    })
    .await;

    // Converged: the next pass finds nothing, also through the CLI.
    let again = eventually(20, "a clean pass", || async {
        let r = reconcile(&pair.store).await;
        (differences(&r) == 0).then_some(r)
    })
    .await;
    assert_eq!(again["peer_orders"], 12);
    let (ok, stdout, stderr) = crate::common::process::run(
        &[
            "reconcile",
            "--role",
            "store",
            "--database-url",
            &pair.store.db.url,
            "--peer-url",
            &wh.url,
            "--sync-secret",
            SECRET,
        ],
        None,
    );
    assert!(ok, "{stdout}\n{stderr}");
    assert!(
        stdout.contains("compared 12 local and 12 peer orders")
            && stdout.contains("found 0 difference(s)"),
        "{stdout}"
    );
    // A warehouse the store does not have: refused, naming it.
    let (ok, _, stderr) = crate::common::process::run(
        &[
            "reconcile",
            "--role",
            "store",
            "--database-url",
            &pair.store.db.url,
            "--peer-url",
            &wh.url,
            "--sync-secret",
            SECRET,
            "--warehouse",
            "nope",
        ],
        None,
    );
    assert!(
        !ok && stderr.contains("no warehouse is named \"nope\""),
        "{stderr}"
    );

    let (_, status) = pair.store.get("/api/v1/sync/status").await;
    assert_eq!(status["last_reconciliation"]["differences"], 0, "{status}");
    // The peer endpoints are signed like the changes endpoint.
    let r = pair
        .store
        .http
        .post(format!("{}/api/v1/sync/digests", wh.url))
        .json(&json!({"ranges": []}))
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    pair.stop().await;
}

async fn reconcile_is_a_job_the_api_starts_and_reports(b: Backend) {
    // A peer that takes two seconds to answer anything and then fails: a
    // pass that outlasts any request a client would wait for.
    let peer = FakePeer::start(|_| {
        let mut a = FakeAnswer::status(503);
        a.delay = std::time::Duration::from_secs(2);
        a
    })
    .await;
    let Some(store) = Side::start_alone(fulfillment::domain::Role::Store, b, &peer.url, |cfg| {
        cfg.reconcile_interval = None;
    })
    .await
    else {
        return;
    };
    let (s, none) = store.get("/api/v1/sync/reconcile").await;
    assert_eq!(s, StatusCode::NOT_FOUND, "nothing ran yet: {none}");
    let asked = std::time::Instant::now();
    let res = store
        .http
        .post(format!("{}/api/v1/sync/reconcile", store.url))
        .bearer_auth(&store.token)
        .send()
        .await
        .expect("sent");
    assert!(
        asked.elapsed() < std::time::Duration::from_secs(1),
        "answered at once"
    );
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    assert_eq!(
        res.headers().get("location").and_then(|v| v.to_str().ok()),
        Some("/api/v1/sync/reconcile")
    );
    let job: Value = res.json().await.expect("json");
    assert_eq!(job["state"], "running", "{job}");
    assert!(job["started_at"].is_string(), "{job}");
    // One at a time.
    let (s, busy) = store.post("/api/v1/sync/reconcile", &json!({})).await;
    assert_eq!(s, StatusCode::CONFLICT, "{busy}");
    let (s, now) = store.get("/api/v1/sync/reconcile").await;
    assert_eq!((s, &now["state"]), (StatusCode::OK, &json!("running")));
    // It ends (failed: the peer said 503), and says why, here and in the
    // sync status.
    let done = eventually(10, "the job ends", || async {
        let (_, job) = store.get("/api/v1/sync/reconcile").await;
        (job["state"] != "running").then_some(job)
    })
    .await;
    assert_eq!(done["state"], "failed", "{done}");
    assert!(
        done["error"].as_str().unwrap_or("").contains("503"),
        "{done}"
    );
    let (_, status) = store.get("/api/v1/sync/status").await;
    assert!(
        status["last_reconciliation"]["error"]
            .as_str()
            .unwrap_or("")
            .contains("503"),
        "{status}"
    );
    // And the next one may start.
    let (s, job) = store.post("/api/v1/sync/reconcile", &json!({})).await;
    assert_eq!(s, StatusCode::ACCEPTED, "{job}");
}

/// Reconciliation runs from the store (it holds every order whole, money
/// included, so it can recreate what the warehouse lacks); the warehouse
/// answers it. Its API refuses to start one (405, like every other command
/// of the other side), as its admin page and the CLI do.
async fn the_warehouse_answers_reconciliation_but_never_runs_it(b: Backend) {
    let Some(pair) = Pair::start(b).await else {
        return;
    };
    let res = pair
        .warehouse
        .http
        .post(format!("{}/api/v1/sync/reconcile", pair.warehouse.url))
        .bearer_auth(&pair.warehouse.token)
        .send()
        .await
        .expect("sent");
    assert_eq!(res.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(
        res.headers().get("allow").and_then(|v| v.to_str().ok()),
        Some("GET")
    );
    let body: Value = res.json().await.expect("json");
    assert!(
        body["detail"]
            .as_str()
            .unwrap_or("")
            .contains("runs from the store"),
        "{body}"
    );
    let (s, _) = pair.warehouse.get("/api/v1/sync/reconcile").await;
    assert_eq!(s, StatusCode::NOT_FOUND, "it never ran one");
    let (ok, _, stderr) = crate::common::process::run(
        &[
            "reconcile",
            "--role",
            "warehouse",
            "--database-url",
            &pair.warehouse.db.url,
            "--peer-url",
            &pair.store.url,
            "--sync-secret",
            SECRET,
        ],
        None,
    );
    assert!(!ok && stderr.contains("runs from the store"), "{stderr}");
    pair.stop().await;
}

//! Dead letters: a snapshot the peer rejects goes dead at once with the
//! peer's reason, holds nothing else back, and is sent again by a replay
//! (API or CLI) once fixed. Old records are pruned.

use reqwest::StatusCode;
use serde_json::json;

use crate::both_backends;
use crate::helpers::*;

both_backends!(
    rejected_snapshot_goes_dead_and_replays,
    pruning_removes_old_records_only
);

async fn rejected_snapshot_goes_dead_and_replays(b: Backend) {
    let Some(pair) = Pair::start(b).await else {
        return;
    };
    let poison = id_of(&create_order(&pair.store, "Poison").await);
    wait_for_order(&pair.store, &poison, "first delivery", |o| {
        o["sync"]["state"] == "synced"
    })
    .await;
    // Give the order a number the warehouse refuses (longer than 32
    // characters), then edit it so a new snapshot is sent.
    let long = "SO-".to_owned() + &"9".repeat(40);
    pair.store
        .sql(&format!(
            "UPDATE orders SET number = '{long}' WHERE id = '{poison}'"
        ))
        .await;
    let (s, _) = pair
        .store
        .patch(
            &format!("/api/v1/orders/{poison}"),
            &json!({"notes": "now poison"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    // Others created meanwhile still flow.
    let healthy: Vec<String> = {
        let mut v = Vec::new();
        for i in 0..5 {
            v.push(id_of(
                &create_order(&pair.store, &format!("Healthy {i}")).await,
            ));
        }
        v
    };
    let dead = wait_for_order(&pair.store, &poison, "the poison order goes dead", |o| {
        o["sync"]["state"] == "dead"
    })
    .await;
    assert!(
        dead["sync"]["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("number")),
        "{dead}"
    );
    for id in &healthy {
        wait_for_order(&pair.warehouse, id, "healthy orders arrive", |_| true).await;
    }
    let (_, st) = pair.store.get("/api/v1/sync/status").await;
    assert_eq!(st["dead"], 1, "{st}");
    let (_, timeline) = pair
        .store
        .get(&format!("/api/v1/orders/{poison}/sync"))
        .await;
    assert_eq!(timeline["attempts"][0]["outcome"], "rejected", "{timeline}");
    let (_, listed) = pair.store.get("/api/v1/orders?sync=dead").await;
    assert_eq!(listed["items"].as_array().map(Vec::len), Some(1));

    // A dry run counts, a replay of the unfixed order goes dead again.
    let (s, r) = pair
        .store
        .post(
            "/api/v1/sync/replay",
            &json!({"all": true, "dry_run": true}),
        )
        .await;
    assert_eq!(
        (s, r["replayed"].as_i64()),
        (StatusCode::OK, Some(1)),
        "{r}"
    );
    let (_, st) = pair.store.get("/api/v1/sync/status").await;
    assert_eq!(st["dead"], 1, "a dry run changes nothing");
    let (s, r) = pair
        .store
        .post("/api/v1/sync/replay", &json!({"ids": [poison]}))
        .await;
    assert_eq!(
        (s, r["replayed"].as_i64()),
        (StatusCode::OK, Some(1)),
        "{r}"
    );
    wait_for_order(&pair.store, &poison, "dead again", |o| {
        o["sync"]["state"] == "dead"
    })
    .await;

    // Fixed by hand, replayed from the CLI: delivered.
    pair.store
        .sql(&format!(
            "UPDATE orders SET number = 'SO-FIXED' WHERE id = '{poison}'"
        ))
        .await;
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_fulfillment"))
        .args([
            "outbox",
            "replay",
            "--role",
            "store",
            "--database-url",
            &pair.store.db.url,
            "--id",
            &poison,
        ])
        .output()
        .expect("replay runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("1 dead letter(s) replayed"),
        "{stdout}"
    );
    // (Numbers are immutable: the warehouse keeps the one it first got.)
    wait_for_order(&pair.warehouse, &poison, "the fixed order arrives", |o| {
        o["notes"] == "now poison"
    })
    .await;
    wait_for_order(&pair.store, &poison, "synced", |o| {
        o["sync"]["state"] == "synced"
    })
    .await;
    let (s, r) = pair
        .store
        .post("/api/v1/sync/replay", &json!({"all": true, "ids": []}))
        .await;
    assert_eq!(
        s,
        StatusCode::UNPROCESSABLE_ENTITY,
        "exactly one selector: {r}"
    );
    pair.stop().await;
}

async fn pruning_removes_old_records_only(b: Backend) {
    let Some(pair) = Pair::start(b).await else {
        return;
    };
    let id = id_of(&create_order(&pair.store, "Prune").await);
    wait_for_order(&pair.store, &id, "round trip", |o| {
        o["sync"]["state"] == "synced" && o["fulfillment"]["status"] == "pending"
    })
    .await;
    let db = fulfillment::storage::Db::open(
        &pair.store.db.url,
        fulfillment::domain::Role::Store,
        &Default::default(),
    )
    .await
    .expect("open");
    let keep_all = fulfillment::storage::prune::Retention::default();
    assert_eq!(
        fulfillment::storage::prune::prune(&db, &keep_all)
            .await
            .expect("prune"),
        0,
        "nothing is old yet"
    );
    let zero = std::time::Duration::ZERO;
    let now_everything = fulfillment::storage::prune::Retention {
        delivered: zero,
        attempts: zero,
        idempotency: zero,
        webhook_ids: zero,
        reconcile_runs: zero,
    };
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    let n = fulfillment::storage::prune::prune(&db, &now_everything)
        .await
        .expect("prune");
    assert!(
        n >= 2,
        "the delivered row, its attempt and the seen webhook id: {n}"
    );
    db.close().await;
    assert_eq!(pair.store.sql("SELECT COUNT(*) FROM outbox").await, ["0"]);
    assert_eq!(
        pair.store.sql("SELECT COUNT(*) FROM sync_attempts").await,
        ["0"]
    );
    let (_, o) = pair.store.get(&format!("/api/v1/orders/{id}")).await;
    assert_eq!(o["sync"]["state"], "synced", "no outbox row means synced");
    assert_eq!(
        pair.store.sql("SELECT COUNT(*) FROM orders").await,
        ["1"],
        "orders are never pruned"
    );
    pair.stop().await;
}

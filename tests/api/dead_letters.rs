//! Dead letters: a snapshot the peer rejects goes dead at once with the
//! peer's reason, holds nothing else back, and is sent again by a replay
//! (API or CLI) once fixed. A replay selects by time or by ids and moves
//! nothing else. Old records are pruned.

use reqwest::StatusCode;
use serde_json::json;

use crate::both_backends;
use crate::helpers::*;

both_backends!(
    rejected_snapshot_goes_dead_and_replays,
    pruning_removes_old_records_only,
    replay_selects_dead_letters_by_time_or_by_ids,
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
    let (ok, stdout, _) = crate::common::process::run(
        &[
            "outbox",
            "replay",
            "--role",
            "store",
            "--database-url",
            &pair.store.db.url,
            "--id",
            &poison,
        ],
        None,
    );
    assert!(
        ok && stdout.contains("1 dead letter(s) replayed"),
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
        sync_history: zero,
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

/// `POST /api/v1/sync/replay` with `since` replays only the dead letters
/// whose change was queued at or after that time; with `ids`, exactly those;
/// a dry run only counts.
async fn replay_selects_dead_letters_by_time_or_by_ids(b: Backend) {
    let Some(mut pair) = Pair::start_with(b, short_horizon).await else {
        return;
    };
    pair.warehouse.stop().await;
    let early = create_dead_letters(&pair.store, &["Early 0", "Early 1", "Early 2"]).await;
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let since = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let late = create_dead_letters(&pair.store, &["Late 0", "Late 1"]).await;
    let all: Vec<String> = early.iter().chain(&late).cloned().collect();
    assert_eq!(outbox_ids(&pair.store, "dead").await, sorted(&all));

    let replay = |body: serde_json::Value| {
        let store = &pair.store;
        async move {
            let (s, r) = store.post("/api/v1/sync/replay", &body).await;
            assert_eq!(s, StatusCode::OK, "{body}: {r}");
            r["replayed"].as_i64().expect("a count")
        }
    };
    assert_eq!(
        replay(json!({"since": since, "dry_run": true})).await,
        2,
        "only the later two"
    );
    assert_eq!(
        outbox_ids(&pair.store, "dead").await,
        sorted(&all),
        "a dry run changes nothing"
    );

    pair.warehouse.restart().await;
    assert_eq!(replay(json!({"since": since})).await, 2);
    for id in &late {
        wait_for_order(&pair.warehouse, id, "a later dead letter arrives", |_| true).await;
    }
    eventually(20, "the later rows are delivered", || async {
        (outbox_ids(&pair.store, "delivered").await == sorted(&late)).then_some(())
    })
    .await;
    assert_eq!(
        outbox_ids(&pair.store, "dead").await,
        sorted(&early),
        "the earlier ones stay dead"
    );
    for id in &early {
        let (s, _) = pair.warehouse.get(&format!("/api/v1/orders/{id}")).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "{id} was not replayed");
    }
    let (_, st) = pair.store.get("/api/v1/sync/status").await;
    assert_eq!(st["dead"], 3, "{st}");

    // Several ids at once: exactly those.
    let chosen = [early[0].clone(), early[2].clone()];
    assert_eq!(replay(json!({"ids": chosen, "dry_run": true})).await, 2);
    assert_eq!(replay(json!({"ids": chosen})).await, 2);
    for id in &chosen {
        wait_for_order(&pair.store, id, "a chosen dead letter is delivered", |o| {
            o["sync"]["state"] == "synced"
        })
        .await;
    }
    assert_eq!(outbox_ids(&pair.store, "dead").await, [early[1].clone()]);
    // Nothing was queued after now.
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
    assert_eq!(replay(json!({"since": now})).await, 0);
    assert_eq!(outbox_ids(&pair.store, "dead").await, [early[1].clone()]);
    pair.stop().await;
}

/// On PostgreSQL a replay made by another process (the CLI, another
/// replica) wakes the service's relay at once through NOTIFY, instead of
/// waiting for its idle poll (a minute here). (SQLite has one process per
/// file and no NOTIFY: there the relay polls.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_elsewhere_wakes_the_relay_on_postgres() {
    let Some(mut pair) = Pair::start_with(Backend::Postgres, |cfg| {
        short_horizon(cfg);
        cfg.idle_poll = std::time::Duration::from_secs(60);
    })
    .await
    else {
        return;
    };
    pair.warehouse.stop().await;
    let ids = create_dead_letters(&pair.store, &["Elsewhere"]).await;
    pair.warehouse.restart().await;
    // Another process's engine on the same database.
    let db = fulfillment::storage::Db::open(
        &pair.store.db.url,
        fulfillment::domain::Role::Store,
        &fulfillment::storage::DbOptions::default(),
    )
    .await
    .expect("open the store's database");
    let elsewhere = fulfillment::engine::Engine::new(db, fulfillment::domain::Role::Store);
    let n = elsewhere
        .replay_dead_letters(fulfillment::storage::outbox::ReplaySelection::All, false)
        .await
        .expect("replay");
    assert_eq!(n, 1);
    let asked = std::time::Instant::now();
    wait_for_order(
        &pair.warehouse,
        &ids[0],
        "the replayed order arrives",
        |_| true,
    )
    .await;
    assert!(
        asked.elapsed() < std::time::Duration::from_secs(10),
        "woken, not polled: {:?}",
        asked.elapsed()
    );
    elsewhere.db().close().await;
    pair.stop().await;
}

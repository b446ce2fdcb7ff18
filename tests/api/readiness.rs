//! `/readyz` means the database takes writes: it probes the write path
//! requests use (on SQLite, the group-commit writer task), within ~2 s, and
//! says why when it is not ready.

use std::time::{Duration, Instant};

use reqwest::StatusCode;

use crate::both_backends;
use crate::helpers::*;

both_backends!(ready_when_the_database_takes_writes);

async fn readyz(side: &Side) -> (StatusCode, String, Duration) {
    let started = Instant::now();
    let res = side
        .http
        .get(format!("{}/readyz", side.url))
        .timeout(Duration::from_secs(30))
        .send()
        .await
        .expect("sent");
    let status = res.status();
    let text = res.text().await.expect("body");
    (status, text, started.elapsed())
}

async fn ready_when_the_database_takes_writes(b: Backend) {
    let Some(pair) = Pair::start(b).await else {
        return;
    };
    let (status, body, _) = readyz(&pair.store).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    if b == Backend::Postgres {
        // The probe is a write transaction; a stopped server is the test
        // in db_outage.
        pair.stop().await;
        return;
    }
    let service = pair.store.service.as_ref().expect("running");
    let db = service.engine().db().clone();

    // A writer stuck on a write: reads still work, writes do not.
    let (release, stuck) = tokio::sync::oneshot::channel::<()>();
    let blocked = tokio::spawn({
        let db = db.clone();
        async move {
            db.write(move |_c| {
                Box::pin(async move {
                    let _ = stuck.await;
                    Ok::<_, fulfillment::storage::StorageError>(())
                })
            })
            .await
        }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (status, body, took) = readyz(&pair.store).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(took < Duration::from_secs(3), "/readyz took {took:?}");
    assert!(body.contains("did not take a write within 2 s"), "{body}");
    let (status, _) = pair.store.get("/api/v1/orders").await;
    assert_eq!(status, StatusCode::OK, "reads still work");
    let _ = release.send(());
    blocked.await.expect("task").expect("the stuck write ends");
    let (status, body, _) = readyz(&pair.store).await;
    assert_eq!(status, StatusCode::OK, "{body}");

    // A writer task that died (a panic in a write): not ready, and writes
    // answer 503, while reads would still answer.
    let _ = db
        .write(|_c| {
            Box::pin(async move {
                if true {
                    panic!("test: the writer task dies");
                }
                Ok::<_, fulfillment::storage::StorageError>(())
            })
        })
        .await;
    let (status, body, took) = readyz(&pair.store).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(took < Duration::from_secs(3), "/readyz took {took:?}");
    assert!(body.contains("writer has stopped"), "{body}");
    let (status, _) = pair.store.get("/api/v1/orders").await;
    assert_eq!(status, StatusCode::OK, "reads still work");
    let (status, problem) = pair
        .store
        .post("/api/v1/orders", &order_body("No writer"))
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{problem}");
    pair.stop().await;
}

/// A group commit that fails leaves the SQLite writer with no transaction
/// open: a COMMIT refused by a deferred foreign key keeps SQLite's
/// transaction open, and without a rollback every later write would fail
/// ("cannot start a transaction within a transaction").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_writer_recovers_from_a_failed_commit() {
    let Some(pair) = Pair::start(Backend::Sqlite).await else {
        return;
    };
    let db = pair
        .store
        .service
        .as_ref()
        .expect("running")
        .engine()
        .db()
        .clone();
    let refused = db
        .write(|c| {
            Box::pin(async move {
                sqlx::query("PRAGMA defer_foreign_keys = ON")
                    .execute(&mut *c)
                    .await?;
                sqlx::query(
                    "INSERT INTO order_lines (order_id, line_no, sku, name, quantity) \
                     VALUES ('no-such-order', 1, 'X', 'X', 1)",
                )
                .execute(&mut *c)
                .await?;
                Ok::<_, fulfillment::storage::StorageError>(())
            })
        })
        .await;
    assert!(refused.is_err(), "the commit is refused");
    for i in 0..3 {
        let (status, body) = pair
            .store
            .post("/api/v1/orders", &order_body(&format!("After {i}")))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
    let (status, body, _) = readyz(&pair.store).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        pair.store
            .sql("SELECT COUNT(*) FROM order_lines WHERE order_id = 'no-such-order'")
            .await,
        ["0"]
    );
    pair.stop().await;
}

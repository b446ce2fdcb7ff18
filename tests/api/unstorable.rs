//! Text PostgreSQL cannot store (a NUL character) is a 400 that changes
//! nothing, not a 500, even on a path that forgot to check it: every input
//! is validated before it reaches the database, and this is the net under
//! that. (SQLite stores such text, so this is PostgreSQL's alone.)

use axum::response::IntoResponse;
use fulfillment::domain::Role;
use fulfillment::http::error::{ApiError, UNSTORABLE};
use fulfillment::storage::{Db, ErrorKind, StorageError};

use crate::helpers::*;

#[tokio::test]
async fn text_the_database_cannot_store_is_a_400_that_writes_nothing() {
    let Some(store_db) = TestDb::new(Backend::Postgres).await else {
        return;
    };
    let db = Db::open(&store_db.url, Role::Store, &Default::default())
        .await
        .expect("db");
    let counters = || sql_at(&store_db.url, "SELECT COUNT(*)::text FROM counters");
    let before = counters().await;
    let e = db
        .write(|c| {
            Box::pin(async move {
                sqlx::query("INSERT INTO counters (name, value) VALUES ('fine', 1)")
                    .execute(&mut *c)
                    .await?;
                sqlx::query("INSERT INTO counters (name, value) VALUES ($1, 1)")
                    .bind("a\0b")
                    .execute(&mut *c)
                    .await?;
                Ok::<_, StorageError>(())
            })
        })
        .await
        .expect_err("PostgreSQL refuses a NUL in text");
    assert_eq!(e.kind(), ErrorKind::Unstorable, "{e}");
    assert_eq!(counters().await, before, "nothing of the write was kept");

    let answer = ApiError::from(e).into_response();
    assert_eq!(answer.status(), 400);
    let body = axum::body::to_bytes(answer.into_body(), 64 * 1024)
        .await
        .expect("body");
    let problem: serde_json::Value = serde_json::from_slice(&body).expect("problem+json");
    assert_eq!(problem["detail"], UNSTORABLE, "{problem}");

    // The database goes on taking writes.
    db.write(|c| {
        Box::pin(async move {
            sqlx::query("INSERT INTO counters (name, value) VALUES ('after', 1)")
                .execute(&mut *c)
                .await?;
            Ok::<_, StorageError>(())
        })
    })
    .await
    .expect("a write after");
    db.close().await;
}

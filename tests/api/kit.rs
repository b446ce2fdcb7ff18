//! The test kit (`tests/common`) keeps its promises: a test's databases
//! are gone when it is done (unless it asked to keep them after a panic),
//! and a child inherits no configuration and dies with its handle.

use std::panic::AssertUnwindSafe;

use sqlx::{Connection, PgConnection};

use crate::common::db::TestDb;
use crate::common::pg::{self, PgDb};
use crate::common::process::Cmd;

async fn exists(admin: &str, name: &str) -> bool {
    let mut c = PgConnection::connect(admin).await.expect("connect");
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM pg_database WHERE datname = $1")
        .bind(name)
        .fetch_one(&mut c)
        .await
        .expect("count");
    c.close().await.ok();
    n == 1
}

#[tokio::test]
async fn postgres_databases_are_dropped_when_done_and_kept_after_a_panic_on_request() {
    let Some(admin) = pg::admin_url("the test kit's PostgreSQL test") else {
        return;
    };
    // Dropped, although a connection (a service's pool, say) still uses it.
    let db = PgDb::create(&admin, "t").await;
    let name = db.name.clone();
    assert!(exists(&admin, &name).await);
    let mut held = PgConnection::connect(&db.url).await.expect("connect");
    sqlx::query("SELECT 1")
        .execute(&mut held)
        .await
        .expect("select");
    drop(db);
    assert!(!exists(&admin, &name).await, "{name} was not dropped");

    // Dropped when the test panics...
    let db = PgDb::create(&admin, "t").await;
    let name = db.name.clone();
    let panicked = std::panic::catch_unwind(AssertUnwindSafe(move || {
        let _db = db;
        panic!("a failing test (on purpose)");
    }));
    assert!(panicked.is_err());
    assert!(!exists(&admin, &name).await, "{name} was not dropped");

    // ...unless it is to be kept for a post-mortem.
    let db = PgDb::create(&admin, "t").await.keep_on_panic();
    let name = db.name.clone();
    let panicked = std::panic::catch_unwind(AssertUnwindSafe(move || {
        let _db = db;
        panic!("a failing test (on purpose)");
    }));
    assert!(panicked.is_err());
    assert!(exists(&admin, &name).await, "{name} was not kept");
    pg::drop_database(&admin, &name).expect("drop the kept database");
    assert!(!exists(&admin, &name).await);
}

#[test]
fn sqlite_databases_are_removed_when_done() {
    let db = TestDb::sqlite();
    let file = std::path::PathBuf::from(db.url.strip_prefix("sqlite://").expect("a SQLite URL"));
    let dir = file.parent().expect("its dir").to_owned();
    assert!(dir.is_dir());
    drop(db);
    assert!(!dir.exists(), "{} is left", dir.display());
}

#[test]
fn a_child_inherits_no_configuration_and_dies_with_its_handle() {
    let out = Cmd::program("env")
        .env("FULFILLMENT_GIVEN", "1")
        .output(None);
    assert!(out.status.success());
    let env = String::from_utf8_lossy(&out.stdout);
    for line in env.lines() {
        let key = line
            .split('=')
            .next()
            .unwrap_or_default()
            .to_ascii_uppercase();
        assert!(
            key == "FULFILLMENT_GIVEN"
                || !(key.starts_with("FULFILLMENT_")
                    || key == "DATABASE_URL"
                    || key == "RUST_LOG"
                    || key.ends_with("_PROXY")),
            "inherited: {line}"
        );
    }
    assert!(env.lines().any(|l| l == "FULFILLMENT_GIVEN=1"), "{env}");
    assert!(env.lines().any(|l| l == "NO_COLOR=1"), "{env}");

    let mut child = Cmd::program("sleep").arg("60").spawn();
    let pid = child.pid();
    assert!(child.is_running());
    drop(child);
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "the child {pid} outlived its handle"
    );
}

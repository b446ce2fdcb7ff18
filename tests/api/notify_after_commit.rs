//! PostgreSQL's wake-up of other processes' relays is sent after the commit
//! that asked for it (a NOTIFY inside the transaction serialised every
//! notifying commit's fsync behind one cluster-wide lock): it still reaches
//! other processes, it never announces a row that is not committed, a
//! rolled-back write sends none, and the CLI's replay, whose process exits
//! right after its write, still wakes the service. PostgreSQL only: SQLite
//! has one process per database and wakes its relay in memory.

use std::time::Duration;

use fulfillment::domain::{OrderId, Role};
use fulfillment::engine::Engine;
use fulfillment::storage::outbox::{self, ReplaySelection};
use fulfillment::storage::{Db, StorageError, now_micros};
use sqlx::postgres::PgListener;

use crate::helpers::*;

/// The channel a store's relays (delivering to warehouses) listen on.
const CHANNEL: &str = "fulfillment_outbox_warehouse";

/// Waits up to `secs` for a notification on `l`; `None` when none came.
async fn next(l: &mut PgListener, secs: u64) -> Option<String> {
    tokio::time::timeout(Duration::from_secs(secs), l.recv())
        .await
        .ok()
        .map(|n| n.expect("listener connection").channel().to_owned())
}

async fn outbox_row(url: &str, id: OrderId) -> Vec<String> {
    sql_at(
        url,
        &format!("SELECT state || ' v' || version FROM outbox WHERE order_id = '{id}'"),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbox_commits_wake_other_processes_after_the_commit() {
    let Some(store_db) = TestDb::new(Backend::Postgres).await else {
        return;
    };
    // "Another process": a listener on its own connection, as a replica's
    // relay listens.
    let mut listener = PgListener::connect(&store_db.url).await.expect("listen");
    listener.listen(CHANNEL).await.expect("listen");
    let db = Db::open(&store_db.url, Role::Store, &Default::default())
        .await
        .expect("db");

    // A committed enqueue wakes the listener, and by the time it is woken
    // the row is there for it to claim (from any connection).
    let id = OrderId::new();
    db.write(move |c| {
        Box::pin(async move { outbox::enqueue(c, "main", id, 1, now_micros()).await })
    })
    .await
    .expect("enqueue");
    assert_eq!(next(&mut listener, 5).await.as_deref(), Some(CHANNEL));
    assert_eq!(outbox_row(&store_db.url, id).await, ["pending v1"]);

    // A write that enqueues and then fails is rolled back: no row, and no
    // wake-up for it.
    let lost = OrderId::new();
    let failed = db
        .write(move |c| {
            Box::pin(async move {
                outbox::enqueue(c, "main", lost, 1, now_micros()).await?;
                Err::<(), _>(StorageError::Commit("given up on purpose".into()))
            })
        })
        .await;
    assert!(failed.is_err());
    assert_eq!(
        next(&mut listener, 1).await,
        None,
        "a rollback wakes no one"
    );
    assert!(outbox_row(&store_db.url, lost).await.is_empty());

    // Many commits at once: every one is committed, and the listener is
    // woken after the last of them (wake-ups fold together, none is lost).
    let writes: Vec<_> = (0..20)
        .map(|i| {
            let db = db.clone();
            tokio::spawn(async move {
                let id = OrderId::new();
                db.write(move |c| {
                    Box::pin(async move { outbox::enqueue(c, "main", id, i, now_micros()).await })
                })
                .await
                .expect("enqueue");
                id
            })
        })
        .collect();
    let mut ids = Vec::new();
    for w in writes {
        ids.push(w.await.expect("task"));
    }
    let woken = tokio::time::Instant::now();
    assert_eq!(next(&mut listener, 5).await.as_deref(), Some(CHANNEL));
    // Drain what else came: at most one per commit.
    let mut more = 0;
    while next(&mut listener, 1).await.is_some() {
        more += 1;
    }
    assert!(more < 20, "{more} extra wake-ups for 20 commits");
    assert!(woken.elapsed() < Duration::from_secs(5));
    let pending = sql_at(
        &store_db.url,
        "SELECT COUNT(*) FROM outbox WHERE state = 'pending'",
    )
    .await;
    assert_eq!(pending, ["21"]);

    // The CLI's replay: its process exits right after the write (no close,
    // no task left to run), and the service is still woken.
    let dead = OrderId::new();
    sql_at(
        &store_db.url,
        &format!(
            "INSERT INTO outbox (peer, order_id, version, state, attempts, enqueued_at, next_attempt_at, lease_until) \
             VALUES ('main', '{dead}', 3, 'dead', 5, 1, 1, 0)"
        ),
    )
    .await;
    let cli = std::thread::spawn({
        let url = store_db.url.clone();
        move || {
            // A runtime of its own, dropped at once: what exiting does to
            // any task the write might have left behind.
            let rt = tokio::runtime::Runtime::new().expect("runtime");
            let n = rt.block_on(async {
                let db = Db::open(&url, Role::Store, &Default::default())
                    .await
                    .expect("db");
                let engine = Engine::new(db, Role::Store);
                engine
                    .replay_dead_letters(ReplaySelection::Ids(vec![dead]), false)
                    .await
                    .expect("replay")
            });
            drop(rt);
            n
        }
    });
    assert_eq!(cli.join().expect("cli"), 1);
    assert_eq!(next(&mut listener, 5).await.as_deref(), Some(CHANNEL));
    assert_eq!(outbox_row(&store_db.url, dead).await, ["pending v3"]);

    db.close().await;
    drop(listener);
    drop(store_db);
}

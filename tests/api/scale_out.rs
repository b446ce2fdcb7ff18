//! Scale-out on PostgreSQL: two store replicas (each with its relay) on one
//! database. Rows are claimed with SKIP LOCKED and leases, commits in one
//! process wake relays in others (LISTEN/NOTIFY), a crashed relay's leased
//! rows are taken over, and every order is applied exactly once in effect.

use std::time::Duration;

use fulfillment::domain::{Actor, OrderId, Role};
use fulfillment::engine::{Engine, credentials};
use fulfillment::service::{Service, ServiceConfig};
use fulfillment::storage::Db;
use reqwest::StatusCode;
use tokio::net::TcpListener;

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_store_replicas_on_one_postgres_database() {
    let Some(store_db) = TestDb::new(Backend::Postgres).await else {
        return;
    };
    let Some(wh_db) = TestDb::new(Backend::Postgres).await else {
        return;
    };
    let listeners = [
        TcpListener::bind("127.0.0.1:0").await.expect("bind"),
        TcpListener::bind("127.0.0.1:0").await.expect("bind"),
        TcpListener::bind("127.0.0.1:0").await.expect("bind"),
    ];
    let addrs: Vec<_> = listeners
        .iter()
        .map(|l| l.local_addr().expect("addr"))
        .collect();
    let [l1, l2, lw] = listeners;
    let cfg = |role, url: &str, peer: std::net::SocketAddr| {
        let mut c = ServiceConfig::new(role, url, format!("http://{peer}"), SECRET);
        // Long enough that only wake-ups (in-process or NOTIFY) explain
        // prompt deliveries.
        c.idle_poll = Duration::from_secs(120);
        c
    };
    // Both replicas start (and migrate) at once.
    let (s1, s2) = tokio::join!(
        Service::start(cfg(Role::Store, &store_db.url, addrs[2]), l1),
        Service::start(cfg(Role::Store, &store_db.url, addrs[2]), l2),
    );
    let (s1, s2) = (s1.expect("store 1"), s2.expect("store 2"));
    let wh = Service::start(cfg(Role::Warehouse, &wh_db.url, addrs[0]), lw)
        .await
        .expect("warehouse");
    let token = credentials::create_token(s1.engine().db(), Role::Store, "tests")
        .await
        .expect("token");
    let wh_token = credentials::create_token(wh.engine().db(), Role::Warehouse, "tests")
        .await
        .expect("token");
    let http = reqwest::Client::new();

    // Orders created at both replicas concurrently (the token is shared: it
    // lives in the database).
    let create = |url: String| {
        let http = http.clone();
        let token = token.clone();
        async move {
            let r = http
                .post(format!("{url}/api/v1/orders"))
                .bearer_auth(&token)
                .json(&order_body("Replica"))
                .send()
                .await
                .expect("sent");
            assert_eq!(r.status(), StatusCode::CREATED);
            r.json::<serde_json::Value>().await.expect("json")
        }
    };
    let mut tasks = Vec::new();
    for i in 0..40 {
        let url = if i % 2 == 0 { s1.url() } else { s2.url() };
        tasks.push(tokio::spawn(create(url)));
    }
    let mut ids = Vec::new();
    for t in tasks {
        ids.push(id_of(&t.await.expect("task")));
    }
    let count_at_wh = || async {
        let r = http
            .get(format!("{}/api/v1/orders?limit=500", wh.url()))
            .bearer_auth(&wh_token)
            .send()
            .await
            .ok()?;
        let v: serde_json::Value = r.json().await.ok()?;
        v["items"].as_array().map(Vec::len)
    };
    eventually(30, "all 40 orders at the warehouse", || async {
        (count_at_wh().await == Some(40)).then_some(())
    })
    .await;
    // Exactly once in effect: one creation each, and 40 applied snapshots.
    let mut c = wh.engine().db().reader().acquire().await.expect("conn");
    let created: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM audit_log WHERE changes = 'created'")
            .fetch_one(&mut *c)
            .await
            .expect("count");
    assert_eq!(created, 40);
    drop(c);
    let metrics = reqwest::get(format!("{}/metrics", wh.url()))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    let applied = metrics
        .lines()
        .find(|l| l.starts_with("fulfillment_sync_applied_total"))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse::<f64>().ok());
    assert_eq!(applied, Some(40.0), "{metrics}");

    // A commit in another process (here: an engine on its own pool, as the
    // CLI would be) wakes the replicas' relays through NOTIFY.
    let other = Engine::new(
        Db::open(&store_db.url, Role::Store, &Default::default())
            .await
            .expect("db"),
        Role::Store,
    );
    let target = OrderId::parse(&ids[0]).expect("id");
    other
        .request_cancel(&Actor::System("other process".into()), target, None)
        .await
        .expect("cancel");
    eventually(
        15,
        "the cancel reaches the warehouse without waiting for the 120 s poll",
        || async {
            wh.engine()
                .get(target)
                .await
                .ok()
                .filter(|v| v.order.content.cancel.is_some())
                .map(|_| ())
        },
    )
    .await;

    // A relay that died holding a lease: its row is taken over once the
    // lease expires.
    let lost = OrderId::parse(&ids[1]).expect("id");
    let id = lost.to_string();
    wh.engine()
        .db()
        .write(move |c| {
            Box::pin(async move {
                for sql in [
                    "DELETE FROM order_lines WHERE order_id = $1",
                    "DELETE FROM orders WHERE id = $1",
                ] {
                    sqlx::query(sql).bind(&id).execute(&mut *c).await?;
                }
                Ok::<_, fulfillment::storage::StorageError>(())
            })
        })
        .await
        .expect("delete");
    let (now, id) = (fulfillment::storage::now_micros(), lost.to_string());
    other
        .db()
        .write(move |c| {
            Box::pin(async move {
                sqlx::query("UPDATE outbox SET state = 'pending', next_attempt_at = $2, lease_until = $3 WHERE order_id = $1")
                    .bind(&id)
                    .bind(now)
                    .bind(now + 2_000_000)
                    .execute(&mut *c)
                    .await?;
                sqlx::query("SELECT 1 FROM (SELECT pg_notify('fulfillment_outbox_warehouse', '')) AS n")
                    .execute(&mut *c)
                    .await?;
                Ok::<_, fulfillment::storage::StorageError>(())
            })
        })
        .await
        .expect("lease");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        wh.engine().get(lost).await.is_err(),
        "a leased row is left alone while the lease runs"
    );
    eventually(15, "the expired lease is taken over", || async {
        wh.engine().get(lost).await.ok().map(|_| ())
    })
    .await;

    other.db().close().await;
    s1.stop().await;
    s2.stop().await;
    wh.stop().await;
    drop((store_db, wh_db));
}

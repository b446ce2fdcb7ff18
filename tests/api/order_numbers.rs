//! Order numbers: unique and increasing under concurrent creates, also when
//! two store processes share one database (the second one's memory of the
//! counter goes stale on SQLite), and kept across migration 19, which moved
//! them to a sequence on PostgreSQL and to an in-memory counter backed by
//! its row on SQLite.

use std::collections::HashSet;

use fulfillment::service::Service;
use reqwest::StatusCode;
use serde_json::Value;
use tokio::net::TcpListener;

use crate::both_backends;
use crate::helpers::*;

/// The sequence number of `SO-000042` (a head row's number).
fn seq(number: &str) -> i64 {
    number
        .strip_prefix("SO-")
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("not an order number: {number}"))
}

/// Posts an order to the service at `url`: its status and body.
async fn post_order(
    http: &reqwest::Client,
    url: &str,
    token: &str,
    name: &str,
) -> (StatusCode, Value) {
    let r = http
        .post(format!("{url}/api/v1/orders"))
        .bearer_auth(token)
        .json(&order_body(name))
        .send()
        .await
        .expect("sent");
    let status = r.status();
    (status, r.json().await.expect("json"))
}

/// The (id, number) of a created order's body.
fn created(status: StatusCode, body: &Value) -> (String, i64) {
    assert_eq!(status, StatusCode::CREATED, "create failed: {body}");
    let number = body["number"].as_str().expect("a number");
    (id_of(body), seq(number))
}

/// Creates an order at the service at `url`; returns (id, number).
async fn create_at(http: &reqwest::Client, url: &str, token: &str, name: &str) -> (String, i64) {
    let (status, body) = post_order(http, url, token, name).await;
    created(status, &body)
}

/// [`create_at`], retried as a client would while the answer is 503: two
/// processes writing one SQLite file may find it busy (SQLite has one
/// writer per file; a write that began as a read cannot wait for it).
async fn create_retrying(
    http: &reqwest::Client,
    url: &str,
    token: &str,
    name: &str,
) -> (String, i64) {
    for _ in 0..50 {
        let (status, body) = post_order(http, url, token, name).await;
        if status == StatusCode::SERVICE_UNAVAILABLE {
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            continue;
        }
        return created(status, &body);
    }
    panic!("still unavailable after 50 tries");
}

/// Every order's number as the store's API lists it, by id.
async fn listed_numbers(store: &Side) -> Vec<(String, i64)> {
    let (status, list) = store.get("/api/v1/orders?limit=500").await;
    assert_eq!(status, StatusCode::OK, "{list}");
    list["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|o| (id_of(o), seq(o["number"].as_str().expect("number"))))
        .collect()
}

async fn numbers_are_unique_and_increase_under_concurrent_creates(b: Backend) {
    let Some(pair) = Pair::start(b).await else {
        return;
    };
    let store = &pair.store;
    // Eight clients, each creating one order after the other: batches of
    // several orders are in flight together.
    let mut clients = Vec::new();
    for client in 0..8 {
        let (http, url, token) = (store.http.clone(), store.url.clone(), store.token.clone());
        clients.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            for i in 0..12 {
                mine.push(create_at(&http, &url, &token, &format!("Client {client}-{i}")).await);
            }
            mine
        }));
    }
    let mut all = Vec::new();
    for c in clients {
        let mine = c.await.expect("client");
        // One client's creates follow each other: their numbers increase.
        let numbers: Vec<i64> = mine.iter().map(|(_, n)| *n).collect();
        assert!(
            numbers.windows(2).all(|w| w[0] < w[1]),
            "one client's numbers do not increase: {numbers:?}"
        );
        all.extend(mine);
    }
    let distinct: HashSet<i64> = all.iter().map(|(_, n)| *n).collect();
    assert_eq!(distinct.len(), 96, "numbers given twice: {all:?}");
    // A create after all of them gets a number above theirs.
    let (_, last) = create_at(&store.http, &store.url, &store.token, "Last").await;
    assert!(
        distinct.iter().all(|n| *n < last),
        "{last} after {distinct:?}"
    );
    // The store answers with the numbers it gave.
    let listed = listed_numbers(store).await;
    assert_eq!(listed.len(), 97);
    for (id, n) in &all {
        assert!(
            listed.contains(&(id.clone(), *n)),
            "order {id} listed without its number {n}"
        );
    }
    pair.stop().await;
}

async fn two_store_processes_on_one_database_never_share_a_number(b: Backend) {
    let Some(pair) = Pair::start(b).await else {
        return;
    };
    let store = &pair.store;
    // A second store service on the same database: its own writer, its own
    // memory of the counter.
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let other_url = format!("http://{}", listener.local_addr().expect("addr"));
    let other = Service::start(store.cfg.clone(), listener)
        .await
        .expect("second store starts");
    let http = &store.http;
    // Alternating: each process must see the numbers the other took (on
    // SQLite, each one's memory is stale every time).
    let mut previous = 0;
    for i in 0..6 {
        let url = if i % 2 == 0 { &store.url } else { &other_url };
        let (_, n) = create_retrying(http, url, &store.token, &format!("Alternating {i}")).await;
        assert!(n > previous, "number {n} after {previous}");
        previous = n;
    }
    // Both at once.
    let mut tasks = Vec::new();
    for i in 0..40 {
        let url = if i % 2 == 0 {
            store.url.clone()
        } else {
            other_url.clone()
        };
        let (http, token) = (http.clone(), store.token.clone());
        tasks.push(tokio::spawn(async move {
            create_retrying(&http, &url, &token, &format!("Both {i}")).await
        }));
    }
    for t in tasks {
        t.await.expect("task");
    }
    let listed = listed_numbers(store).await;
    assert_eq!(listed.len(), 46);
    let distinct: HashSet<i64> = listed.iter().map(|(_, n)| *n).collect();
    assert_eq!(distinct.len(), 46, "numbers given twice: {listed:?}");
    other.stop().await;
    pair.stop().await;
}

async fn migration_keeps_numbers_and_continues_after_the_counter(b: Backend) {
    let Some(mut pair) = Pair::start(b).await else {
        return;
    };
    let mut before = Vec::new();
    for i in 0..3 {
        let o = create_order(&pair.store, &format!("Before {i}")).await;
        before.push((id_of(&o), seq(o["number"].as_str().expect("number"))));
    }
    assert_eq!(
        before.iter().map(|(_, n)| *n).collect::<Vec<_>>(),
        [1, 2, 3]
    );
    pair.store.stop().await;
    // Back to the schema before migration 19: numbers came from the
    // counters row only, here one that had moved past the last order (a
    // rolled-back batch leaves such a gap).
    let url = pair.store.db.url.clone();
    if b == Backend::Postgres {
        sql_at(&url, "DROP SEQUENCE order_numbers").await;
    }
    sql_at(&url, "DELETE FROM counters WHERE name = 'order_number'").await;
    sql_at(
        &url,
        "INSERT INTO counters (name, value) VALUES ('order_number', 40)",
    )
    .await;
    sql_at(&url, "DELETE FROM schema_migrations WHERE version = 19").await;
    pair.store.restart().await;
    assert_eq!(
        pair.store
            .sql("SELECT COUNT(*) FROM schema_migrations WHERE version = 19")
            .await,
        ["1"]
    );
    let (_, n) = create_at(
        &pair.store.http,
        &pair.store.url,
        &pair.store.token,
        "After",
    )
    .await;
    assert_eq!(n, 41, "the first number after the migration");
    let listed = listed_numbers(&pair.store).await;
    for old in &before {
        assert!(listed.contains(old), "{old:?} lost its number: {listed:?}");
    }
    pair.stop().await;
}

both_backends!(
    numbers_are_unique_and_increase_under_concurrent_creates,
    two_store_processes_on_one_database_never_share_a_number,
    migration_keeps_numbers_and_continues_after_the_counter,
);

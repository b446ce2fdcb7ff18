//! Every list, sort, digest and lookup of `orders` stays on an index after
//! migration 20 dropped the ones no query needed: SQLite's query plans, for
//! both roles. (SQLite plans without statistics, so an empty database
//! shows the plans a full one gets. PostgreSQL plans by its statistics,
//! and an empty table is scanned whatever its indexes: no check there.)
//!
//! The same for the relay's statements of the outbox (migration 21 keyed
//! it `(order_id, peer)` and dropped its per-order index). Also that
//! SQLite's multi-row statements decode each row once (`bulk`).

use sqlx::AnyConnection;

use super::orders::{
    self, Arg, Direction, ListFilter, Seek, Sort, SortKey, StatusFilter, list_query,
};
use super::{Db, DbOptions, digests, parts};
use crate::domain::fulfillment::FulfillmentStatus;
use crate::domain::{OrderId, Role};

/// The query plan of `sql` with `args`, one line per step.
async fn plan(c: &mut AnyConnection, sql: &str, args: Vec<Arg>) -> Vec<String> {
    let text = format!("EXPLAIN QUERY PLAN {sql}");
    let mut q = sqlx::query_as::<_, (i64, i64, i64, String)>(&text);
    for a in args {
        q = match a {
            Arg::Text(s) => q.bind(s),
            Arg::Int(i) => q.bind(i),
        };
    }
    q.fetch_all(&mut *c)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .into_iter()
        .map(|r| r.3)
        .collect()
}

fn text(s: &str) -> Arg {
    Arg::Text(s.into())
}

/// No step reads `orders` (the outer table, not a correlated subquery's
/// alias) row by row without an index.
fn on_index(what: &str, plan: &[String]) {
    table_on_index("orders", what, plan);
}

/// No step reads `table` row by row without an index.
fn table_on_index(table: &str, what: &str, plan: &[String]) {
    let scan = format!("SCAN {table}");
    for step in plan {
        if *step == scan || step.starts_with(&format!("{scan} ")) && !step.contains("INDEX") {
            panic!("{what} scans {table} without an index: {plan:?}");
        }
    }
}

fn uses(what: &str, plan: &[String], index: &str) {
    assert!(
        plan.iter()
            .any(|s| s.starts_with("SEARCH orders USING") && s.contains(index)),
        "{what} does not search {index}: {plan:?}"
    );
}

async fn open(role: Role) -> (tempfile::TempDir, Db) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let url = format!("sqlite://{}", dir.path().join("p.db").display());
    let db = Db::open(&url, role, &DbOptions::default())
        .await
        .expect("open");
    (dir, db)
}

async fn lists_are_on_indexes(c: &mut AnyConnection, store: bool) {
    let seek = Seek {
        key: 3,
        id: OrderId::new(),
    };
    for key in SortKey::ALL {
        for descending in [true, false] {
            for seek in [
                None,
                Some((Direction::After, seek)),
                Some((Direction::Before, seek)),
            ] {
                for status in [
                    None,
                    Some(FulfillmentStatus::Pending),
                    Some(FulfillmentStatus::Shipped),
                ] {
                    let f = ListFilter {
                        status: status.map(StatusFilter::Fulfillment),
                        limit: 50,
                        orders_only: store,
                        sort: Sort { key, descending },
                        seek,
                        ..ListFilter::default()
                    };
                    let what = format!(
                        "list (store: {store}) by {key:?} desc {descending}, seek {}, status {status:?}",
                        seek.is_some()
                    );
                    let (sql, args) = list_query(&f);
                    let p = plan(c, &sql, args).await;
                    on_index(&what, &p);
                    match status {
                        // Unfiltered, a page is read in the sort's order
                        // from its index, never sorted afterwards.
                        None => assert!(
                            !p.iter().any(|s| s.contains("TEMP B-TREE")),
                            "{what} sorts: {p:?}"
                        ),
                        // Filtered by status, newest first: the rank
                        // index, in id order. (By status, SQLite sorts
                        // the one rank's rows, as it did by the index on
                        // the status before; by another key, it picks.)
                        Some(_) if key == SortKey::Created => {
                            uses(&what, &p, "orders_status_rank_id");
                            assert!(
                                !p.iter().any(|s| s.contains("TEMP B-TREE")),
                                "{what} sorts: {p:?}"
                            );
                        }
                        Some(_) if key == SortKey::Status => {
                            uses(&what, &p, "orders_status_rank_id");
                        }
                        Some(_) => {}
                    }
                    // A count of every order reads them all, whichever way.
                    if status.is_some() {
                        let what = format!("count of {what}");
                        let (sql, args) = orders::count_query(&f, None);
                        uses(&what, &plan(c, &sql, args).await, "orders_status_rank_id");
                    }
                }
            }
        }
    }
}

/// A search reads every order's name and e-mail whatever the indexes (a
/// substring), but finds the orders with a SKU through `index`.
async fn searches_skus_by_index(c: &mut AnyConnection, store: bool, index: &str) {
    let f = ListFilter {
        search: Some("SKU-1".into()),
        limit: 50,
        orders_only: store,
        ..ListFilter::default()
    };
    let (sql, args) = list_query(&f);
    let p = plan(c, &sql, args).await;
    assert!(
        p.iter()
            .any(|s| s.contains(&format!("USING INDEX {index} (sku=?)"))
                || s.contains(&format!("USING COVERING INDEX {index} (sku=?)"))),
        "a search (store: {store}) does not find SKUs through {index}: {p:?}"
    );
}

#[tokio::test]
async fn the_stores_queries_of_orders_are_on_indexes() {
    let (_dir, db) = open(Role::Store).await;
    let mut c = db.reader().acquire().await.expect("connection");
    lists_are_on_indexes(&mut c, true).await;
    searches_skus_by_index(&mut c, true, "order_items_sku").await;
    let p = plan(
        &mut c,
        digests::RANGE_DIGEST_OF_WAREHOUSE,
        vec![text("main"), text("0"), text("f")],
    )
    .await;
    uses(
        "a warehouse's range digest",
        &p,
        "COVERING INDEX orders_warehouse",
    );
    let p = plan(&mut c, parts::PARTS_OF.sqlite, vec![text("[]")]).await;
    uses("an order's parts", &p, "orders_parts");
    let p = plan(&mut c, parts::STATUSES_OF.sqlite, vec![text("[]")]).await;
    uses("the statuses of an order's parts", &p, "orders_parts");
    let p = plan(
        &mut c,
        "SELECT order_id FROM orders WHERE id = $1",
        vec![text("x")],
    )
    .await;
    uses("the order of a part", &p, "sqlite_autoindex_orders_1");
    drop(c);
    db.close().await;
}

#[tokio::test]
async fn the_warehouses_queries_of_orders_are_on_indexes() {
    let (_dir, db) = open(Role::Warehouse).await;
    let mut c = db.reader().acquire().await.expect("connection");
    lists_are_on_indexes(&mut c, false).await;
    searches_skus_by_index(&mut c, false, "order_lines_sku").await;
    let p = plan(&mut c, digests::RANGE_DIGEST, vec![text("0"), text("f")]).await;
    uses("a range digest", &p, "COVERING INDEX orders_digest");
    drop(c);
    db.close().await;
}

/// The relay's claim, count of due rows, settle and end of leases, and
/// the sync state of a batch, find their outbox rows through the key or
/// the due index, never by reading the outbox, at both roles.
#[tokio::test]
async fn the_relays_queries_of_the_outbox_are_on_indexes() {
    use super::outbox as ob;
    for role in [Role::Store, Role::Warehouse] {
        let (_dir, db) = open(role).await;
        let mut c = db.reader().acquire().await.expect("connection");
        let cases = [
            (
                "the claim",
                ob::CLAIM.sqlite,
                vec![text("main"), Arg::Int(1), Arg::Int(2), Arg::Int(10)],
            ),
            (
                "the count of due rows",
                ob::DUE_COUNT,
                vec![text("main"), Arg::Int(1), Arg::Int(10)],
            ),
            (
                "the settle",
                ob::SETTLE_DELIVERED.sqlite,
                vec![Arg::Int(1), text("[]")],
            ),
            (
                "the end of leases",
                ob::END_LEASES.sqlite,
                vec![text("main"), text("[]")],
            ),
            (
                "the sync state of a batch",
                ob::SYNC_INFO.sqlite,
                vec![text("[]")],
            ),
        ];
        for (what, sql, args) in cases {
            let p = plan(&mut c, sql, args).await;
            let what = format!("{what} ({role})");
            table_on_index("outbox", &what, &p);
            assert!(
                p.iter().any(|s| s.starts_with("SEARCH outbox USING")),
                "{what} does not search the outbox by an index: {p:?}"
            );
        }
        drop(c);
        db.close().await;
    }
}

/// The multi-row statements that read many columns of each row decode it
/// once (see `bulk`): their program calls `jsonb` once, however many
/// columns it reads. Flattened over the fence, it would call it (render
/// and parse the row again) once per column: 3x slower.
#[tokio::test]
async fn row_statements_decode_each_row_once() {
    use super::{audit, orders as o};
    use sqlx::Row;
    for role in [Role::Store, Role::Warehouse] {
        let (_dir, db) = open(role).await;
        let mut c = db.reader().acquire().await.expect("connection");
        let mut texts = vec![
            ("orders", o::INSERT_ORDERS.sqlite),
            ("lines", o::INSERT_LINES.sqlite),
            ("shipments", o::INSERT_SHIPMENTS.sqlite),
            ("fulfillments", o::UPDATE_FULFILLMENTS.sqlite),
            ("audit", audit::INSERT_RECORDS.sqlite),
        ];
        if role == Role::Store {
            texts.push(("routed orders", o::INSERT_STORE_ORDERS.sqlite));
            texts.push(("items", parts::INSERT_ITEMS.sqlite));
        }
        for (what, sql) in texts {
            let program = sqlx::query(&format!("EXPLAIN {sql}"))
                .fetch_all(&mut *c)
                .await
                .unwrap_or_else(|e| panic!("{what}: {e}"));
            let calls = program
                .iter()
                .filter(|op| {
                    let code: String = op.try_get(1).unwrap_or_default();
                    let p4: Option<String> = op.try_get(5).unwrap_or_default();
                    code.starts_with("Function") && p4.is_some_and(|f| f.starts_with("jsonb("))
                })
                .count();
            assert_eq!(calls, 1, "{what} ({role}) decodes each row {calls} times");
        }
        drop(c);
        db.close().await;
    }
}

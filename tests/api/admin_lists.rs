//! The admin order list's sorts and pages (`Engine::list_page`, what
//! `/admin/orders` shows): for every sort, both ways, on both sides, a walk
//! forward page by page and one back from the end each see every order
//! exactly once, in the order the API's own data says (key, then id), with
//! the right count and position on each page; a filter's count is what it
//! keeps. The store's list includes orders no warehouse has reported
//! (their status is null, ranked first).

use fulfillment::domain::Role;
use fulfillment::engine::{Direction, ListFilter, Seek, Sort, SortKey};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::*;

both_backends!(every_sort_pages_both_ways_over_every_order);

const PAGE: u32 = 5;

/// Every order the API lists at `side`.
async fn api_orders(side: &Side) -> Vec<Value> {
    let (s, page) = side.get("/api/v1/orders?limit=500").await;
    assert_eq!(s, StatusCode::OK, "{page}");
    page["items"].as_array().expect("items").clone()
}

fn micros(v: &Value) -> Option<i64> {
    v.as_str().map(|t| {
        t.parse::<chrono::DateTime<chrono::Utc>>()
            .expect("an RFC 3339 time")
            .timestamp_micros()
    })
}

/// The ids of `orders` in `sort`'s order, from the API's data.
fn expected(orders: &[Value], role: Role, sort: Sort) -> Vec<String> {
    let key = |o: &Value| -> i64 {
        match sort.key {
            SortKey::Created => 0,
            SortKey::Updated => micros(&o["updated_at"]).expect("updated_at"),
            SortKey::Status => {
                let status = match role {
                    Role::Store => &o["fulfillment"]["status"],
                    Role::Warehouse => &o["status"],
                };
                status_rank(status) as i64
            }
            SortKey::DeliverBy => micros(&o["deliver_by"]).unwrap_or(i64::MAX),
        }
    };
    let mut v: Vec<(i64, String)> = orders.iter().map(|o| (key(o), id_of(o))).collect();
    v.sort();
    if sort.descending {
        v.reverse();
    }
    v.into_iter().map(|(_, id)| id).collect()
}

/// Walks the list at `side` forward from the top, then back from its last
/// order, checking each page's count and position; returns the forward ids.
async fn walk(side: &Side, sort: Sort, search: Option<&str>) -> Vec<String> {
    let engine = side.service.as_ref().expect("running").engine();
    let filter = |seek| ListFilter {
        sort,
        seek,
        limit: PAGE,
        search: search.map(str::to_owned),
        ..Default::default()
    };
    let mut ids: Vec<String> = Vec::new();
    let mut seeks: Vec<Seek> = Vec::new();
    let mut total = None;
    loop {
        let seek = seeks.last().map(|s| (Direction::After, *s));
        let page = engine.list_page(&filter(seek)).await.expect("a page");
        let t = *total.get_or_insert(page.total);
        assert_eq!(page.total, t, "{sort:?}: the count changed between pages");
        assert_eq!(page.before, ids.len() as i64, "{sort:?}: position");
        assert_eq!(page.views.len(), page.seeks.len());
        assert!(page.views.len() <= PAGE as usize);
        for (v, s) in page.views.iter().zip(&page.seeks) {
            assert_eq!(v.order.id, s.id);
            ids.push(v.order.id.to_string());
        }
        seeks.extend(page.seeks);
        if page.views.is_empty() || ids.len() as i64 == t {
            break;
        }
    }
    assert_eq!(
        ids.len() as i64,
        total.unwrap_or(0),
        "{sort:?}: every order once"
    );
    // Back from the last order: each page the one before, nearest last.
    let Some(last) = seeks.last().copied() else {
        return ids;
    };
    let mut back: Vec<String> = vec![last.id.to_string()];
    let mut from = last;
    while back.len() < ids.len() {
        let page = engine
            .list_page(&filter(Some((Direction::Before, from))))
            .await
            .expect("a page");
        assert!(!page.views.is_empty(), "{sort:?}: a page back was empty");
        let first = ids.len() - back.len() - page.views.len();
        assert_eq!(page.before, first as i64, "{sort:?}: position going back");
        let page_ids: Vec<String> = page.views.iter().map(|v| v.order.id.to_string()).collect();
        assert_eq!(
            page_ids,
            ids[first..first + page_ids.len()],
            "{sort:?}: a page back"
        );
        from = page.seeks[0];
        back.splice(0..0, page_ids);
    }
    assert_eq!(back, ids, "{sort:?}: back and forth differ");
    ids
}

async fn every_sort_pages_both_ways_over_every_order(b: Backend) {
    let Some(mut pair) = Pair::start(b).await else {
        return;
    };
    let mut ids = Vec::new();
    for i in 0..12u32 {
        let mut body = order_body(&format!("Person {i}"));
        body["deliver_by"] = if i % 3 == 0 {
            Value::Null
        } else {
            // Repeating deadlines: ties go by id.
            json!(format!("2026-12-0{}T10:00:00Z", 1 + i % 4))
        };
        let (s, o) = pair.store.post("/api/v1/orders", &body).await;
        assert_eq!(s, StatusCode::CREATED, "{o}");
        ids.push(id_of(&o));
    }
    for id in &ids {
        wait_for_order(&pair.warehouse, id, "the order at the warehouse", |_| true).await;
    }
    for (i, id) in ids.iter().enumerate() {
        let steps: &[Value] = match i % 4 {
            1 => &[json!({"status": "picking"})],
            2 => &[json!({"status": "on_hold", "reason": "recount"})],
            3 => &[
                json!({"status": "picking"}),
                json!({"status": "packed"}),
                json!({"status": "shipped", "carrier": "UPS", "tracking_number": "1Z"}),
            ],
            _ => &[],
        };
        for step in steps {
            let (s, o) = pair
                .warehouse
                .post(&format!("/api/v1/orders/{id}/fulfillment"), step)
                .await;
            assert_eq!(s, StatusCode::OK, "{o}");
        }
    }
    for id in &ids {
        wait_for_order(
            &pair.store,
            id,
            "the warehouse's status at the store",
            |o| o["sync"]["state"] == "synced" && !o["fulfillment"]["status"].is_null(),
        )
        .await;
    }
    // The warehouse's list first, while it runs.
    let at_wh = api_orders(&pair.warehouse).await;
    assert_eq!(at_wh.len(), 12);
    for key in SortKey::ALL {
        for descending in [false, true] {
            let sort = Sort { key, descending };
            let got = walk(&pair.warehouse, sort, None).await;
            assert_eq!(
                got,
                expected(&at_wh, Role::Warehouse, sort),
                "warehouse {sort:?}"
            );
        }
    }
    // Orders no warehouse has reported: the warehouse is down.
    pair.warehouse.stop().await;
    for i in 12..15u32 {
        create_order(&pair.store, &format!("Person {i}")).await;
    }
    let at_store = api_orders(&pair.store).await;
    assert_eq!(at_store.len(), 15);
    assert_eq!(
        at_store
            .iter()
            .filter(|o| o["fulfillment"]["status"].is_null())
            .count(),
        3
    );
    for key in SortKey::ALL {
        for descending in [false, true] {
            let sort = Sort { key, descending };
            let got = walk(&pair.store, sort, None).await;
            assert_eq!(
                got,
                expected(&at_store, Role::Store, sort),
                "store {sort:?}"
            );
        }
    }
    // A filter counts what it keeps: "person 1" is 1, 10, 11, 12, 13 and 14.
    let kept: Vec<Value> = at_store
        .iter()
        .filter(|o| {
            o["customer"]["name"]
                .as_str()
                .is_some_and(|n| n.starts_with("Person 1"))
        })
        .cloned()
        .collect();
    assert_eq!(kept.len(), 6);
    let sort = Sort {
        key: SortKey::DeliverBy,
        descending: false,
    };
    let got = walk(&pair.store, sort, Some("person 1")).await;
    assert_eq!(got, expected(&kept, Role::Store, sort));
    pair.stop().await;
}

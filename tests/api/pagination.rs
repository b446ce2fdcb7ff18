//! Cursor pagination: a walk sees every existing order exactly once, even
//! while new orders are being created.

use std::collections::HashSet;

use reqwest::StatusCode;

use crate::both_backends;
use crate::helpers::*;

both_backends!(cursor_walk_sees_each_order_once);

async fn cursor_walk_sees_each_order_once(b: Backend) {
    let Some(pair) = Pair::start(b).await else {
        return;
    };
    let mut existing = HashSet::new();
    for i in 0..25 {
        existing.insert(id_of(
            &create_order(&pair.store, &format!("Customer {i}")).await,
        ));
    }
    let store = &pair.store;
    let writer = async {
        for i in 0..20 {
            create_order(store, &format!("Late {i}")).await;
        }
    };
    let reader = async {
        let mut seen: Vec<String> = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let q = match &cursor {
                Some(c) => format!("/api/v1/orders?limit=4&cursor={c}"),
                None => "/api/v1/orders?limit=4".to_owned(),
            };
            let (s, page) = store.get(&q).await;
            assert_eq!(s, StatusCode::OK, "{page}");
            for o in page["items"].as_array().expect("items") {
                seen.push(id_of(o));
            }
            match page["next_cursor"].as_str() {
                Some(c) => cursor = Some(c.to_owned()),
                None => break,
            }
            tokio::task::yield_now().await;
        }
        seen
    };
    let ((), seen) = tokio::join!(writer, reader);
    let unique: HashSet<&String> = seen.iter().collect();
    assert_eq!(unique.len(), seen.len(), "an order was listed twice");
    for id in &existing {
        assert!(unique.contains(id), "order {id} was skipped");
    }
    pair.stop().await;
}

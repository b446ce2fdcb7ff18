//! Rotating the sync secret as README.md describes ("Rotating the sync
//! secret": both sides accept old and new, then both sign with new, then
//! old is dropped; one side restarted at a time), with orders and
//! fulfillment steps flowing before, during and after: nothing is refused
//! and nothing is lost. A side that knows only an unrelated secret is
//! refused (401), and what it sends or should receive waits, not lost.

use reqwest::StatusCode;
use serde_json::json;

use crate::both_backends;
use crate::helpers::*;

both_backends!(rotating_the_sync_secret_loses_nothing);

const OLD: &str = SECRET;
const NEW: &str = "the-new-sync-secret";
const UNRELATED: &str = "a-secret-nobody-else-knows";

/// Orders created at the store, and the one fulfillment step taken on each
/// (after it arrived at the warehouse).
struct Traffic {
    created: Vec<String>,
    stepped: Vec<String>,
}

impl Traffic {
    /// Creates an order at the store, and takes the warehouse's first step
    /// on the order created the time before.
    async fn flow(&mut self, pair: &Pair, tag: &str) {
        if let Some(prev) = self.created.last().cloned() {
            wait_for_order(
                &pair.warehouse,
                &prev,
                "the order reaches the warehouse",
                |_| true,
            )
            .await;
            let (s, body) = pair
                .warehouse
                .post(
                    &format!("/api/v1/orders/{prev}/fulfillment"),
                    &json!({"status": "picking"}),
                )
                .await;
            assert_eq!(s, StatusCode::OK, "{body}");
            self.stepped.push(prev);
        }
        let id = id_of(&create_order(&pair.store, &format!("Rotation {tag}")).await);
        self.created.push(id);
    }
}

async fn restart_with(side: &mut Side, secrets: &[&str]) {
    side.cfg.sync_secrets = secrets.iter().map(|s| s.to_string()).collect();
    side.restart().await;
}

/// Every delivery attempt refused for its signature, at `side`.
async fn refusals(side: &Side) -> Vec<String> {
    side.sql("SELECT order_id || ': ' || detail FROM sync_attempts WHERE detail LIKE '%401%'")
        .await
}

async fn rotating_the_sync_secret_loses_nothing(b: Backend) {
    let Some(mut pair) = Pair::start(b).await else {
        return;
    };
    let mut t = Traffic {
        created: Vec::new(),
        stepped: Vec::new(),
    };
    t.flow(&pair, "before").await;
    // The documented steps; each finishes on both sides before the next,
    // and traffic flows between the restarts (while the sides differ).
    let steps: [(&str, &[&str], bool); 3] = [
        ("1: also accept new", &[OLD, NEW], true),
        ("2: sign with new", &[NEW, OLD], false),
        ("3: drop old", &[NEW], true),
    ];
    for (step, secrets, store_first) in steps {
        for first in [store_first, !store_first] {
            let side = if first {
                &mut pair.store
            } else {
                &mut pair.warehouse
            };
            restart_with(side, secrets).await;
            t.flow(&pair, step).await;
        }
    }
    t.flow(&pair, "after").await;

    // Nothing lost: every order at the warehouse, every step at the store,
    // both outboxes drained.
    for id in &t.created {
        wait_for_order(
            &pair.warehouse,
            id,
            "every order reaches the warehouse",
            |_| true,
        )
        .await;
    }
    for id in &t.stepped {
        wait_for_order(&pair.store, id, "every step reaches the store", |o| {
            o["fulfillment"]["status"] == "picking" && o["sync"]["state"] == "synced"
        })
        .await;
    }
    assert_eq!(t.created.len(), 8);
    assert_eq!(t.stepped.len(), 7);
    for side in [&pair.store, &pair.warehouse] {
        eventually(20, "the outbox drains", || async {
            let (_, st) = side.get("/api/v1/sync/status").await;
            (st["pending"] == 0 && st["dead"] == 0).then_some(())
        })
        .await;
        // Done in this order, the rotation never refused a delivery.
        assert_eq!(
            refusals(side).await,
            Vec::<String>::new(),
            "{:?}",
            side.role
        );
    }

    // A store that knows only an unrelated secret: its deliveries are
    // refused, and so are the warehouse's to it; both wait.
    restart_with(&mut pair.store, &[UNRELATED]).await;
    let waiting = id_of(&create_order(&pair.store, "Rotation unrelated").await);
    let stepped = t.stepped[0].clone();
    let (s, body) = pair
        .warehouse
        .post(
            &format!("/api/v1/orders/{stepped}/fulfillment"),
            &json!({"status": "packed"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    let o = wait_for_order(
        &pair.store,
        &waiting,
        "the store's delivery is refused",
        |o| o["sync"]["state"] == "failing",
    )
    .await;
    assert!(
        o["sync"]["last_error"]
            .as_str()
            .is_some_and(|e| e.starts_with("peer answered 401")),
        "{o}"
    );
    let refused = eventually(20, "the warehouse's delivery is refused", || async {
        let r = refusals(&pair.warehouse).await;
        (!r.is_empty()).then_some(r)
    })
    .await;
    assert!(
        refused.iter().all(|r| r.starts_with(&stepped)),
        "{refused:?}"
    );
    let (s, _) = pair
        .warehouse
        .get(&format!("/api/v1/orders/{waiting}"))
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let (_, at_store) = pair.store.get(&format!("/api/v1/orders/{stepped}")).await;
    assert_eq!(at_store["fulfillment"]["status"], "picking", "{at_store}");
    // Waiting, not lost: both rows are pending, none dead.
    assert_eq!(
        outbox_ids(&pair.store, "pending").await,
        std::slice::from_ref(&waiting)
    );
    assert_eq!(
        outbox_ids(&pair.warehouse, "pending").await,
        std::slice::from_ref(&stepped)
    );

    // With the right secret back, both arrive.
    restart_with(&mut pair.store, &[NEW]).await;
    wait_for_order(
        &pair.warehouse,
        &waiting,
        "the waiting order arrives",
        |_| true,
    )
    .await;
    wait_for_order(&pair.store, &stepped, "the waiting step arrives", |o| {
        o["fulfillment"]["status"] == "packed"
    })
    .await;
    for side in [&pair.store, &pair.warehouse] {
        assert!(outbox_ids(side, "dead").await.is_empty());
    }
    pair.stop().await;
}

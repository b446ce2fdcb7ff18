//! The audit trail's `diff`: every entry gives each changed field's old and
//! new value (objects and lists whole), on both sides, and the warehouse's
//! entries never hold money. Entries from before values were kept read as
//! `"diff": []`.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::*;
// Distinctive amounts: none may appear at the warehouse.
use crate::no_money::{NEW_PRICE, PRICE, SHIPPING};

both_backends!(audit_entries_give_old_and_new_values);

/// The audit trail of `id` at `side`.
async fn trail(side: &Side, id: &str) -> Vec<Value> {
    let (s, body) = side.get(&format!("/api/v1/orders/{id}/audit")).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    body["items"].as_array().cloned().expect("items")
}

/// The `(from, to)` of `field` in the entries of `items` that changed it.
fn changes_of(items: &[Value], field: &str) -> Vec<(Value, Value)> {
    items
        .iter()
        .flat_map(|e| e["diff"].as_array().cloned().unwrap_or_default())
        .filter(|c| c["field"] == field)
        .map(|c| (c["from"].clone(), c["to"].clone()))
        .collect()
}

/// Every entry's `diff` names exactly its `changes`, in order.
fn assert_diff_matches_changes(items: &[Value]) {
    for e in items {
        let changes = e["changes"].as_array().expect("changes");
        let diff = e["diff"].as_array().expect("diff is a list");
        if changes == &[json!("created")] || changes == &[json!("routing")] {
            assert!(diff.is_empty(), "an event has no values: {e}");
            continue;
        }
        let fields: Vec<&Value> = diff.iter().map(|c| &c["field"]).collect();
        assert_eq!(
            fields,
            changes.iter().collect::<Vec<_>>(),
            "diff and changes disagree: {e}"
        );
        for c in diff {
            assert_ne!(c["from"], c["to"], "a field that did not change: {e}");
        }
    }
}

async fn audit_entries_give_old_and_new_values(b: Backend) {
    let Some(pair) = Pair::start(b).await else {
        return;
    };
    let (store, wh) = (&pair.store, &pair.warehouse);
    let mut body = order_body("Audit Ada");
    body["lines"] = json!([{"sku": "WID-1", "name": "Widget", "quantity": 2, "unit_price": PRICE}]);
    body["shipping_cost"] = json!(SHIPPING);
    let (s, o) = store.post("/api/v1/orders", &body).await;
    assert_eq!(s, StatusCode::CREATED, "{o}");
    let id = id_of(&o);
    wait_for_order(wh, &id, "the order reaches the warehouse", |_| true).await;

    // The store edits notes, address, a line's quantity and price, and the
    // shipping cost.
    let mut address = body["shipping_address"].clone();
    address["city"] = json!("Leeds");
    let (s, edited) = store
        .patch(
            &format!("/api/v1/orders/{id}"),
            &json!({
                "notes": "ring twice",
                "shipping_address": address,
                "lines": [{"sku": "WID-1", "name": "Widget", "quantity": 3, "unit_price": NEW_PRICE}],
                "shipping_cost": 0,
            }),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{edited}");
    let at_store = trail(store, &id).await;
    let edit = at_store.last().expect("an entry for the edit");
    assert_eq!(edit["actor"]["kind"], "token");
    assert_eq!(
        edit["changes"],
        json!(["shipping_address", "lines", "notes", "shipping_cost"])
    );
    assert_diff_matches_changes(&at_store);
    assert_eq!(
        changes_of(&at_store, "notes"),
        [(json!("leave at the door"), json!("ring twice"))]
    );
    let addr = changes_of(&at_store, "shipping_address");
    assert_eq!(addr[0].0["city"], "London");
    assert_eq!(addr[0].1["city"], "Leeds");
    assert_eq!(
        addr[0].1, address,
        "an object field is given whole: {addr:?}"
    );
    let lines = changes_of(&at_store, "lines");
    assert_eq!(
        lines,
        [(
            json!([{"sku": "WID-1", "name": "Widget", "quantity": 2, "unit_price": PRICE}]),
            json!([{"sku": "WID-1", "name": "Widget", "quantity": 3, "unit_price": NEW_PRICE}]),
        )],
        "the store's lines carry their prices"
    );
    assert_eq!(
        changes_of(&at_store, "shipping_cost"),
        [(json!(SHIPPING), json!(0))]
    );

    // The warehouse gets the content change, without money.
    wait_for_order(wh, &id, "the edit reaches the warehouse", |o| {
        o["notes"] == "ring twice"
    })
    .await;
    for step in [
        json!({"status": "picking"}),
        json!({"status": "packed"}),
        json!({"status": "shipped", "carrier": "UPS", "tracking_number": "1Z999"}),
    ] {
        let (s, r) = wh
            .post(&format!("/api/v1/orders/{id}/fulfillment"), &step)
            .await;
        assert_eq!(s, StatusCode::OK, "{r}");
    }
    let at_wh = trail(wh, &id).await;
    assert_diff_matches_changes(&at_wh);
    assert_eq!(at_wh[0]["changes"], json!(["created"]));
    assert_eq!(
        changes_of(&at_wh, "lines"),
        [(
            json!([{"sku": "WID-1", "name": "Widget", "quantity": 2}]),
            json!([{"sku": "WID-1", "name": "Widget", "quantity": 3}]),
        )],
        "the warehouse's lines have no price"
    );
    assert_eq!(changes_of(&at_wh, "shipping_address")[0].1, address);
    assert_eq!(
        changes_of(&at_wh, "status"),
        [
            (json!("pending"), json!("picking")),
            (json!("picking"), json!("packed")),
            (json!("packed"), json!("shipped")),
        ]
    );
    let parcels = changes_of(&at_wh, "shipment");
    assert_eq!(parcels.len(), 1, "{at_wh:?}");
    assert_eq!(parcels[0].0, json!([]));
    assert_eq!(parcels[0].1[0]["carrier"], "UPS");
    assert_eq!(parcels[0].1[0]["tracking_number"], "1Z999");
    assert_eq!(
        parcels[0].1[0]["lines"],
        json!([{"sku": "WID-1", "quantity": 3}]),
        "a list field is given whole"
    );
    // Who did what: the store's edit by sync, the steps by the token.
    assert_eq!(at_wh[1]["actor"], json!({"kind": "sync", "name": "store"}));
    assert_eq!(at_wh.last().expect("entries")["actor"]["kind"], "token");

    // The store learns the fulfillment; then asks to cancel, which the
    // warehouse refuses (already shipped).
    wait_for_order(store, &id, "shipped at the store", |o| {
        o["fulfillment"]["status"] == "shipped"
    })
    .await;
    let (s, r) = store
        .post(
            &format!("/api/v1/orders/{id}/cancel"),
            &json!({"reason": "changed their mind"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{r}");
    wait_for_order(store, &id, "the refusal reaches the store", |o| {
        !o["fulfillment"]["cancel_rejected_reason"].is_null()
    })
    .await;
    let at_store = trail(store, &id).await;
    assert_diff_matches_changes(&at_store);
    // The statuses the store learned chain: each starts where the last
    // ended, from none to shipped (the relay may fold steps together).
    let statuses = changes_of(&at_store, "status");
    assert_eq!(statuses[0].0, Value::Null, "{statuses:?}");
    for w in statuses.windows(2) {
        assert_eq!(w[0].1, w[1].0, "{statuses:?}");
    }
    assert_eq!(statuses.last().map(|s| &s.1), Some(&json!("shipped")));
    assert_eq!(
        changes_of(&at_store, "cancel_request"),
        [(Value::Null, json!({"reason": "changed their mind"}))]
    );
    assert_eq!(
        changes_of(&at_store, "cancel_rejected_reason"),
        [(Value::Null, json!("order was already shipped"))]
    );
    let at_wh = trail(wh, &id).await;
    assert_diff_matches_changes(&at_wh);
    assert_eq!(
        changes_of(&at_wh, "cancel_request"),
        [(Value::Null, json!({"reason": "changed their mind"}))]
    );
    let refusal = at_wh.last().expect("entries");
    assert_eq!(
        refusal["actor"],
        json!({"kind": "system", "name": "warehouse"})
    );
    assert_eq!(
        changes_of(std::slice::from_ref(refusal), "cancel_rejected_reason"),
        [(Value::Null, json!("order was already shipped"))]
    );

    // No money in anything the warehouse's trail says.
    let text = serde_json::to_string(&at_wh).expect("json").to_lowercase();
    for word in ["price", "minor", "shipping_cost", "total", "currency"] {
        assert!(!text.contains(word), "the warehouse's trail names {word}");
    }
    for amount in [PRICE, NEW_PRICE, SHIPPING] {
        assert!(
            !text.contains(&amount.to_string()),
            "the warehouse's trail holds {amount}"
        );
    }
    // ... nor in what it stored.
    let stored = wh.dump_table("audit_log").await.to_lowercase();
    assert!(stored.contains("ring twice"), "values are stored: {stored}");
    assert!(!stored.contains("price") && !stored.contains(&PRICE.to_string()));
    // The store stored its prices (the check above can see them).
    let stored = store.dump_table("audit_log").await;
    assert!(stored.contains(&NEW_PRICE.to_string()));

    // An entry from before values were kept (no diff stored) reads as [].
    let n = trail(wh, &id).await.len();
    wh.sql(&format!(
        "INSERT INTO audit_log (order_id, at, actor_kind, actor_name, changes) \
         VALUES ('{id}', 1, 'admin', 'old', 'notes')"
    ))
    .await;
    let at_wh = trail(wh, &id).await;
    assert_eq!(at_wh.len(), n + 1);
    let old = at_wh.last().expect("the old entry");
    assert_eq!(old["changes"], json!(["notes"]));
    assert_eq!(old["diff"], json!([]));

    // The answer is documented: `diff` in each side's document.
    for side in [store, wh] {
        let (_, doc) = side.get("/api/v1/openapi.json").await;
        let entry = &doc["components"]["schemas"]["AuditEntry"];
        assert!(
            entry["properties"]["diff"].is_object(),
            "no diff in {entry}"
        );
        assert!(
            entry["required"]
                .as_array()
                .is_some_and(|r| r.contains(&json!("diff"))),
            "{entry}"
        );
        assert!(doc["components"]["schemas"]["FieldChange"]["properties"]["from"].is_object());
    }
    pair.stop().await;
}

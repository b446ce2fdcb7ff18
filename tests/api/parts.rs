//! Split orders: one store, `eu` stocking widgets (`WID-`) and `us`
//! stocking boxes (`BOX-`), both shipping everywhere. An order of both is
//! split into two parts, each at its own warehouse with only its lines;
//! the store rolls their fulfillment up; unrouted lines wait for `route`;
//! edits and cancellation reach every part.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::*;
use crate::routing::{Three, three};

both_backends!(
    a_split_order_ships_from_two_warehouses,
    unrouted_lines_wait_for_route,
    edits_and_cancel_reach_every_part,
    parcels_ship_chosen_quantities_and_a_cancel_stops_the_rest,
    rejected_lines_go_to_the_next_warehouse,
    typed_holds_are_released_by_the_side_that_placed_them,
    an_edit_may_move_every_line_off_the_first_part,
);

/// Row locks exist on PostgreSQL only (SQLite has one writer).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_later_parts_delivery_locks_its_orders_rows_in_order_postgres() {
    a_later_parts_delivery_locks_its_orders_rows_in_order(Backend::Postgres).await
}

/// [`three`], with `eu` taking widgets and `us` boxes, anywhere.
async fn by_sku(b: Backend) -> Option<Three> {
    let t = three(b).await?;
    for (name, prefix) in [("eu", "WID-"), ("us", "BOX-")] {
        let (s, w) = t
            .store
            .patch(
                &format!("/api/v1/warehouses/{name}"),
                &json!({"countries": [], "sku_prefixes": [prefix]}),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{w}");
    }
    Some(t)
}

/// An order to the US of these `(sku, quantity)` lines at 10.00 each.
fn order_of(name: &str, lines: &[(&str, u32)]) -> Value {
    let mut body = order_body(name);
    body["shipping_address"]["country"] = json!("US");
    body["lines"] = lines
        .iter()
        .map(|(sku, q)| json!({"sku": sku, "name": sku, "quantity": q, "unit_price": 1000}))
        .collect();
    body
}

async fn create(store: &Side, body: &Value) -> Value {
    let (s, o) = store.post("/api/v1/orders", body).await;
    assert_eq!(s, StatusCode::CREATED, "{o}");
    o
}

fn skus(lines: &Value) -> Vec<(String, u64)> {
    lines
        .as_array()
        .expect("lines")
        .iter()
        .map(|l| {
            (
                l["sku"].as_str().expect("sku").to_owned(),
                l["quantity"].as_u64().expect("quantity"),
            )
        })
        .collect()
}

fn line(x: &str, q: u64) -> (String, u64) {
    (x.to_owned(), q)
}

async fn step(warehouse: &Side, id: &str, body: Value) {
    let (s, o) = warehouse
        .post(&format!("/api/v1/orders/{id}/fulfillment"), &body)
        .await;
    assert_eq!(s, StatusCode::OK, "{o}");
}

async fn ship(warehouse: &Side, id: &str, tracking: &str) {
    step(warehouse, id, json!({"status": "picking"})).await;
    step(warehouse, id, json!({"status": "packed"})).await;
    step(
        warehouse,
        id,
        json!({"status": "shipped", "carrier": "UPS", "tracking_number": tracking}),
    )
    .await;
}

/// The ids of the store's orders listed with `query`.
async fn listed(store: &Side, query: &str) -> Vec<String> {
    let (s, page) = store.get(&format!("/api/v1/orders?{query}")).await;
    assert_eq!(s, StatusCode::OK, "{page}");
    page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(id_of)
        .collect()
}

async fn a_split_order_ships_from_two_warehouses(b: Backend) {
    let Some(t) = by_sku(b).await else { return };
    let o = create(&t.store, &order_of("Split", &[("WID-1", 2), ("BOX-1", 1)])).await;
    let id = id_of(&o);
    let number = o["number"].as_str().expect("number").to_owned();
    // The store's order keeps every line and its money; its parts say who
    // has what: the first (eu, by name) has the order's id.
    assert_eq!(
        skus(&o["lines"]),
        [line("WID-1", 2), line("BOX-1", 1)],
        "{o}"
    );
    assert_eq!(o["total"], 3 * 1000 + 500, "{o}");
    let parts = o["parts"].as_array().expect("parts");
    assert_eq!(parts.len(), 2, "{o}");
    assert_eq!(parts[0]["id"], id.as_str());
    assert_eq!(parts[0]["warehouse"], "eu");
    assert_eq!(skus(&parts[0]["lines"]), [line("WID-1", 2)]);
    assert_eq!(parts[1]["warehouse"], "us");
    assert_eq!(skus(&parts[1]["lines"]), [line("BOX-1", 1)]);
    assert_eq!(o["routing"]["unrouted_lines"], json!([]));
    let second = id_of(&parts[1]);

    // Each warehouse holds its part and only its lines; neither the other's.
    let at_eu = wait_for_order(&t.eu, &id, "eu's part", |_| true).await;
    assert_eq!(skus(&at_eu["lines"]), [line("WID-1", 2)], "{at_eu}");
    assert_eq!(at_eu["order_id"], id.as_str());
    assert_eq!(at_eu["part"], 1);
    assert_eq!(at_eu["number"], number.as_str());
    let at_us = wait_for_order(&t.us, &second, "us's part", |_| true).await;
    assert_eq!(skus(&at_us["lines"]), [line("BOX-1", 1)], "{at_us}");
    assert_eq!(at_us["order_id"], id.as_str());
    assert_eq!(at_us["part"], 2);
    assert_eq!(at_us["number"], format!("{number}-2"));
    for (side, other) in [(&t.eu, &second), (&t.us, &id)] {
        let (s, _) = side.get(&format!("/api/v1/orders/{other}")).await;
        assert_eq!(
            s,
            StatusCode::NOT_FOUND,
            "a warehouse holds only its own part"
        );
    }
    // The store knows the order by its id only, and lists it once.
    let (s, _) = t.store.get(&format!("/api/v1/orders/{second}")).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    assert_eq!(listed(&t.store, "limit=100").await, [id.as_str()]);
    assert_eq!(listed(&t.store, "search=BOX-1").await, [id.as_str()]);

    // eu ships its part: the order is partly shipped.
    ship(&t.eu, &id, "1Z-EU").await;
    let o = wait_for_order(&t.store, &id, "eu's parcel at the store", |o| {
        o["fulfillment"]["status"] == "partially_shipped"
    })
    .await;
    assert_eq!(o["parts"][0]["status"], "shipped", "{o}");
    assert_eq!(o["parts"][0]["lines"][0]["shipped_quantity"], 2, "{o}");
    assert_eq!(o["parts"][0]["shipments"][0]["tracking_number"], "1Z-EU");
    assert_eq!(o["parts"][1]["status"], "pending", "{o}");
    assert_eq!(o["fulfillment"]["tracking_number"], "1Z-EU");
    assert_eq!(
        listed(&t.store, "status=partially_shipped").await,
        [id.as_str()]
    );
    assert!(listed(&t.store, "status=shipped").await.is_empty());

    // us ships the rest: shipped, with the latest parcel.
    ship(&t.us, &second, "1Z-US").await;
    let o = wait_for_order(&t.store, &id, "the whole order shipped", |o| {
        o["fulfillment"]["status"] == "shipped"
    })
    .await;
    assert_eq!(o["fulfillment"]["tracking_number"], "1Z-US", "{o}");
    assert_eq!(listed(&t.store, "status=shipped").await, [id.as_str()]);
    // The order's audit trail tells both warehouses' reports, each part's
    // labelled (the first part's are the order's own); the second part's
    // id gives its entries alone, unlabelled.
    let (s, audit) = t.store.get(&format!("/api/v1/orders/{id}/audit")).await;
    assert_eq!(s, StatusCode::OK, "{audit}");
    let shipped_by = |audit: &Value| -> Vec<Value> {
        audit["items"]
            .as_array()
            .expect("items")
            .iter()
            .filter(|e| {
                e["diff"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .any(|c| c["field"] == "status" && c["to"] == "shipped")
            })
            .map(|e| e["part"].clone())
            .collect()
    };
    assert_eq!(
        shipped_by(&audit),
        [Value::Null, json!({"part": 2, "warehouse": "us"})],
        "{audit}"
    );
    let times: Vec<&str> = audit["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|e| e["at"].as_str().expect("at"))
        .collect();
    assert!(
        times.windows(2).all(|w| w[0] <= w[1]),
        "oldest first: {times:?}"
    );
    let (s, own) = t.store.get(&format!("/api/v1/orders/{second}/audit")).await;
    assert_eq!(s, StatusCode::OK, "{own}");
    assert_eq!(shipped_by(&own), [Value::Null], "{own}");
    let synced = wait_for_order(&t.store, &id, "every part synced", |o| {
        o["sync"]["state"] == "synced"
    })
    .await;
    assert!(
        synced["parts"]
            .as_array()
            .expect("parts")
            .iter()
            .all(|p| p["sync"]["state"] == "synced"),
        "{synced}"
    );
    // The store's tables: one order (its items, its money), two part rows.
    assert_eq!(
        t.store
            .sql(&format!(
                "SELECT COUNT(*) FROM orders WHERE order_id = '{id}'"
            ))
            .await,
        ["2"]
    );
    assert_eq!(
        t.store
            .sql(&format!(
                "SELECT COUNT(*) FROM order_items WHERE order_id = '{id}'"
            ))
            .await,
        ["2"]
    );
}

async fn unrouted_lines_wait_for_route(b: Backend) {
    let Some(t) = by_sku(b).await else { return };
    // Nobody stocks ZZZ-: the widget goes to eu, the rest waits.
    let o = create(&t.store, &order_of("Partly", &[("WID-1", 1), ("ZZZ-1", 3)])).await;
    let id = id_of(&o);
    assert_eq!(o["parts"].as_array().expect("parts").len(), 1, "{o}");
    assert_eq!(o["parts"][0]["warehouse"], "eu");
    let unrouted = &o["routing"]["unrouted_lines"];
    assert_eq!(unrouted[0]["sku"], "ZZZ-1", "{o}");
    assert_eq!(unrouted[0]["quantity"], 3);
    let reason = unrouted[0]["reason"].as_str().expect("reason");
    assert!(
        reason.contains("ZZZ-1") && reason.contains("US"),
        "{reason}"
    );
    // Nothing of it is routed: nothing travels, and it shows as waiting.
    let none = create(&t.store, &order_of("Nowhere", &[("ZZZ-2", 1)])).await;
    let none_id = id_of(&none);
    assert_eq!(none["parts"], json!([]), "{none}");
    assert_eq!(none["sync"]["state"], "pending");
    assert!(
        none["sync"]["last_error"]
            .as_str()
            .is_some_and(|e| e.contains("ZZZ-2")),
        "{none}"
    );
    assert!(
        listed(&t.store, "sync_state=pending")
            .await
            .contains(&none_id)
    );
    // `route` with nothing new changes nothing.
    let (s, again) = t
        .store
        .post(&format!("/api/v1/orders/{id}/route"), &json!({}))
        .await;
    assert_eq!(s, StatusCode::OK, "{again}");
    assert_eq!(again["parts"].as_array().expect("parts").len(), 1);
    assert_eq!(again["sync"]["store_version"], 1, "nothing was rewritten");
    // Bad requests change nothing.
    let (s, _) = t
        .store
        .post(
            &format!("/api/v1/orders/{id}/route"),
            &json!({"force": true}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let (s, _) =
        t.eu.post(&format!("/api/v1/orders/{id}/route"), &json!({}))
            .await;
    assert_eq!(s, StatusCode::METHOD_NOT_ALLOWED);

    // us stocks ZZZ- from now on: route sends the waiting lines there.
    let (s, _) = t
        .store
        .patch(
            "/api/v1/warehouses/us",
            &json!({"sku_prefixes": ["BOX-", "ZZZ-"]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    let (s, routed) = t
        .store
        .post(&format!("/api/v1/orders/{id}/route"), &json!({}))
        .await;
    assert_eq!(s, StatusCode::OK, "{routed}");
    assert_eq!(routed["routing"]["unrouted_lines"], json!([]), "{routed}");
    let parts = routed["parts"].as_array().expect("parts");
    assert_eq!(parts.len(), 2, "{routed}");
    assert_eq!(parts[1]["warehouse"], "us");
    assert_eq!(skus(&parts[1]["lines"]), [line("ZZZ-1", 3)]);
    let at_us = wait_for_order(&t.us, &id_of(&parts[1]), "the routed line at us", |_| true).await;
    assert_eq!(skus(&at_us["lines"]), [line("ZZZ-1", 3)]);
    // The order nothing was routed of goes whole, under its own id (no
    // body at all is fine too).
    let (_, routed) = t
        .store
        .call(
            reqwest::Method::POST,
            &format!("/api/v1/orders/{none_id}/route"),
            None,
        )
        .await;
    assert_eq!(routed["parts"][0]["id"], none_id.as_str(), "{routed}");
    let at_us = wait_for_order(&t.us, &none_id, "the whole order at us", |_| true).await;
    assert_eq!(at_us["part"], 1);
    assert_eq!(skus(&at_us["lines"]), [line("ZZZ-2", 1)]);
    let (_, audit) = t.store.get(&format!("/api/v1/orders/{id}/audit")).await;
    assert!(audit.to_string().contains("routing"), "{audit}");
}

async fn edits_and_cancel_reach_every_part(b: Backend) {
    let Some(t) = by_sku(b).await else { return };
    let o = create(&t.store, &order_of("Edited", &[("WID-1", 1), ("BOX-1", 1)])).await;
    let id = id_of(&o);
    let second = id_of(&o["parts"][1]);
    wait_for_order(&t.eu, &id, "eu's part", |_| true).await;
    wait_for_order(&t.us, &second, "us's part", |_| true).await;

    // An edit of the notes reaches both parts.
    let (s, edited) = t
        .store
        .patch(
            &format!("/api/v1/orders/{id}"),
            &json!({"notes": "ring twice"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{edited}");
    for (side, part) in [(&t.eu, &id), (&t.us, &second)] {
        wait_for_order(side, part, "the new notes at both warehouses", |o| {
            o["notes"] == "ring twice"
        })
        .await;
    }

    // An edit of the lines routes afresh: boxes are gone, so us's part is
    // withdrawn (cancelled there) and eu's holds both widgets.
    let (s, edited) = t
        .store
        .patch(
            &format!("/api/v1/orders/{id}"),
            &json!({"lines": [
                {"sku": "WID-1", "name": "Widget", "quantity": 1, "unit_price": 1000},
                {"sku": "WID-2", "name": "Widget 2", "quantity": 4, "unit_price": 250}
            ]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{edited}");
    assert_eq!(edited["parts"][1]["withdrawn"], true, "{edited}");
    assert_eq!(skus(&edited["lines"]), [line("WID-1", 1), line("WID-2", 4)]);
    let at_eu = wait_for_order(&t.eu, &id, "both widgets at eu", |o| {
        o["lines"].as_array().is_some_and(|l| l.len() == 2)
    })
    .await;
    assert_eq!(skus(&at_eu["lines"]), [line("WID-1", 1), line("WID-2", 4)]);
    wait_for_order(&t.us, &second, "us's part cancelled", |o| {
        o["status"] == "cancelled"
    })
    .await;
    let o = wait_for_order(&t.store, &id, "the withdrawal back at the store", |o| {
        o["parts"][1]["status"] == "cancelled" && o["fulfillment"]["status"] == "pending"
    })
    .await;
    assert_eq!(o["parts"].as_array().expect("parts").len(), 2, "{o}");

    // A cancel reaches every part still live: eu's.
    let (s, _) = t
        .store
        .post(
            &format!("/api/v1/orders/{id}/cancel"),
            &json!({"reason": "changed mind"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    wait_for_order(&t.eu, &id, "eu's part cancelled", |o| {
        o["status"] == "cancelled"
    })
    .await;
    let o = wait_for_order(&t.store, &id, "the order cancelled", |o| {
        o["fulfillment"]["status"] == "cancelled"
    })
    .await;
    assert_eq!(o["status"], "cancel_requested");
    // Once cancelled, nothing is editable.
    let (s, _) = t
        .store
        .patch(&format!("/api/v1/orders/{id}"), &json!({"notes": "late"}))
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
}

async fn parcels_ship_chosen_quantities_and_a_cancel_stops_the_rest(b: Backend) {
    let Some(t) = by_sku(b).await else { return };
    let o = create(
        &t.store,
        &order_of("Parcels", &[("WID-1", 2), ("BOX-1", 3)]),
    )
    .await;
    let id = id_of(&o);
    let second = id_of(&o["parts"][1]);
    wait_for_order(&t.eu, &id, "eu's part", |_| true).await;
    wait_for_order(&t.us, &second, "us's part", |_| true).await;
    let parcel = |of: Value| json!({"carrier": "DHL", "tracking_number": "JD-1", "lines": of});
    let shipments = format!("/api/v1/orders/{id}/shipments");

    // Not before picking.
    let (s, _) =
        t.eu.post(
            &shipments,
            &parcel(json!([{"sku": "WID-1", "quantity": 1}])),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    step(&t.eu, &id, json!({"status": "picking"})).await;
    // Bad parcels change nothing: a SKU of another part, more than is
    // there, missing fields, the store.
    let (s, p) =
        t.eu.post(
            &shipments,
            &parcel(json!([{"sku": "BOX-1", "quantity": 1}])),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{p}");
    assert_eq!(p["errors"][0]["field"], "lines[0].sku", "{p}");
    let (s, p) =
        t.eu.post(
            &shipments,
            &parcel(json!([{"sku": "WID-1", "quantity": 3}])),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{p}");
    assert!(
        p["detail"].as_str().is_some_and(|d| d.contains("2 left")),
        "{p}"
    );
    let (s, p) = t.eu.post(&shipments, &json!({"lines": []})).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{p}");
    let fields: Vec<&str> = p["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .filter_map(|e| e["field"].as_str())
        .collect();
    assert_eq!(fields, ["carrier", "tracking_number", "lines"], "{p}");
    let (s, _) = t
        .store
        .post(
            &shipments,
            &parcel(json!([{"sku": "WID-1", "quantity": 1}])),
        )
        .await;
    assert_eq!(s, StatusCode::METHOD_NOT_ALLOWED);
    let (_, at_eu) = t.eu.get(&format!("/api/v1/orders/{id}")).await;
    assert_eq!(at_eu["status"], "picking", "{at_eu}");
    assert_eq!(at_eu["shipments"], json!([]));

    // One widget now: partly shipped, here and at the store.
    let (s, first) =
        t.eu.post(
            &shipments,
            &parcel(json!([{"sku": "WID-1", "quantity": 1}])),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{first}");
    assert_eq!(first["id"], 1);
    assert_eq!(first["lines"], json!([{"sku": "WID-1", "quantity": 1}]));
    let (_, at_eu) = t.eu.get(&format!("/api/v1/orders/{id}")).await;
    assert_eq!(at_eu["status"], "partially_shipped", "{at_eu}");
    assert_eq!(at_eu["lines"][0]["shipped_quantity"], 1);
    let o = wait_for_order(&t.store, &id, "the first parcel at the store", |o| {
        o["parts"][0]["status"] == "partially_shipped"
    })
    .await;
    assert_eq!(o["fulfillment"]["status"], "partially_shipped", "{o}");
    assert_eq!(o["parts"][0]["lines"][0]["shipped_quantity"], 1, "{o}");
    // The rest with `shipped`: a second parcel of what was left.
    step(
        &t.eu,
        &id,
        json!({"status": "shipped", "carrier": "UPS", "tracking_number": "1Z-2"}),
    )
    .await;
    let (_, at_eu) = t.eu.get(&format!("/api/v1/orders/{id}")).await;
    assert_eq!(at_eu["status"], "shipped");
    assert_eq!(
        at_eu["shipments"][1]["lines"],
        json!([{"sku": "WID-1", "quantity": 1}])
    );
    assert_eq!(at_eu["tracking_number"], "1Z-2", "the latest parcel's");

    // us ships one box of three, then the order is cancelled: us's part
    // ends shipped with two boxes cancelled; eu's, shipped, stays so.
    step(&t.us, &second, json!({"status": "picking"})).await;
    let (s, _) =
        t.us.post(
            &format!("/api/v1/orders/{second}/shipments"),
            &parcel(json!([{"sku": "BOX-1", "quantity": 1}])),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, _) = t
        .store
        .post(&format!("/api/v1/orders/{id}/cancel"), &json!({}))
        .await;
    assert_eq!(s, StatusCode::OK);
    let at_us = wait_for_order(&t.us, &second, "the cancel at us", |o| {
        o["cancel_requested"] == true && o["status"] == "shipped"
    })
    .await;
    assert_eq!(at_us["lines"][0]["shipped_quantity"], 1, "{at_us}");
    assert_eq!(at_us["lines"][0]["cancelled_quantity"], 2, "{at_us}");
    assert!(at_us["cancel_rejected_reason"].is_string(), "{at_us}");
    let o = wait_for_order(&t.store, &id, "everything settled at the store", |o| {
        o["fulfillment"]["status"] == "shipped"
            && o["parts"][1]["lines"][0]["cancelled_quantity"] == 2
            && o["parts"][0]["cancel_rejected_reason"].is_string()
    })
    .await;
    let all = o["fulfillment"]["shipments"].as_array().expect("shipments");
    let from: Vec<&str> = all.iter().filter_map(|s| s["warehouse"].as_str()).collect();
    assert_eq!(from, ["eu", "eu", "us"], "{o}");
}

async fn rejected_lines_go_to_the_next_warehouse(b: Backend) {
    let Some(t) = three(b).await else { return };
    // Both stock everything and ship everywhere; eu is preferred.
    for (name, priority) in [("eu", 0), ("us", 1)] {
        let (s, w) = t
            .store
            .patch(
                &format!("/api/v1/warehouses/{name}"),
                &json!({"countries": [], "priority": priority}),
            )
            .await;
        assert_eq!(s, StatusCode::OK, "{w}");
    }
    let o = create(
        &t.store,
        &order_of("Rejected", &[("WID-1", 2), ("BOX-1", 1)]),
    )
    .await;
    let id = id_of(&o);
    assert_eq!(
        o["parts"].as_array().expect("parts").len(),
        1,
        "whole to eu: {o}"
    );
    wait_for_order(&t.eu, &id, "the order at eu", |_| true).await;
    let reject = format!("/api/v1/orders/{id}/reject");
    let refuse = |sku: &str, q: u32, why: &str| json!({"lines": [{"sku": sku, "quantity": q}], "reason": why});

    // Bad rejections change nothing.
    let (s, p) = t.eu.post(&reject, &refuse("ZZZ-1", 1, "gone")).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{p}");
    assert_eq!(p["errors"][0]["field"], "lines[0].sku");
    let (s, p) = t.eu.post(&reject, &refuse("WID-1", 3, "gone")).await;
    assert_eq!(s, StatusCode::CONFLICT, "{p}");
    let (s, p) =
        t.eu.post(
            &reject,
            &json!({"lines": [{"sku": "WID-1", "quantity": 1}]}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{p}");
    assert_eq!(p["errors"][0]["field"], "reason");
    let (s, _) = t.store.post(&reject, &refuse("WID-1", 1, "gone")).await;
    assert_eq!(s, StatusCode::METHOD_NOT_ALLOWED);
    let (_, at_eu) = t.eu.get(&format!("/api/v1/orders/{id}")).await;
    assert_eq!(at_eu["lines"][0]["quantity"], 2, "{at_eu}");
    assert_eq!(at_eu["lines"][0]["rejected_quantity"], 0);

    // eu is out of one widget: it leaves eu's part and goes to us.
    let (s, at_eu) =
        t.eu.post(&reject, &refuse("WID-1", 1, "out of stock"))
            .await;
    assert_eq!(s, StatusCode::OK, "{at_eu}");
    assert_eq!(at_eu["lines"][0]["quantity"], 1, "{at_eu}");
    assert_eq!(at_eu["lines"][0]["rejected_quantity"], 1);
    assert_eq!(at_eu["status"], "pending");
    let o = wait_for_order(&t.store, &id, "the widget routed to us", |o| {
        o["parts"].as_array().is_some_and(|p| p.len() == 2)
    })
    .await;
    assert_eq!(o["parts"][0]["lines"][0]["rejected_quantity"], 1, "{o}");
    assert_eq!(o["parts"][0]["lines"][0]["quantity"], 1, "{o}");
    assert_eq!(o["parts"][1]["warehouse"], "us");
    assert_eq!(skus(&o["parts"][1]["lines"]), [line("WID-1", 1)]);
    assert_eq!(o["routing"]["unrouted_lines"], json!([]));
    let second = id_of(&o["parts"][1]);
    wait_for_order(&t.us, &second, "the widget at us", |_| true).await;

    // us has none either: nobody is left, so it waits with both reasons.
    let (s, at_us) =
        t.us.post(
            &format!("/api/v1/orders/{second}/reject"),
            &refuse("WID-1", 1, "damaged"),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{at_us}");
    assert_eq!(at_us["status"], "rejected", "nothing left: {at_us}");
    let o = wait_for_order(&t.store, &id, "the widget unrouted", |o| {
        o["routing"]["unrouted_lines"]
            .as_array()
            .is_some_and(|u| !u.is_empty())
    })
    .await;
    let unrouted = &o["routing"]["unrouted_lines"][0];
    assert_eq!(unrouted["sku"], "WID-1", "{o}");
    assert_eq!(unrouted["quantity"], 1);
    let reason = unrouted["reason"].as_str().expect("reason");
    assert!(
        reason.contains("out of stock") && reason.contains("damaged"),
        "{reason}"
    );
    assert_eq!(o["parts"][1]["status"], "rejected", "{o}");
    // The rest of the order carries on: eu still has a widget and a box.
    assert_eq!(o["fulfillment"]["status"], "pending", "{o}");
    // Not once work started.
    step(&t.eu, &id, json!({"status": "picking"})).await;
    let (s, _) = t.eu.post(&reject, &refuse("BOX-1", 1, "late")).await;
    assert_eq!(s, StatusCode::CONFLICT);
}

async fn typed_holds_are_released_by_the_side_that_placed_them(b: Backend) {
    let Some(t) = by_sku(b).await else { return };
    let o = create(&t.store, &order_of("Held", &[("WID-1", 1), ("BOX-1", 1)])).await;
    let id = id_of(&o);
    let second = id_of(&o["parts"][1]);
    wait_for_order(&t.eu, &id, "eu's part", |_| true).await;
    wait_for_order(&t.us, &second, "us's part", |_| true).await;
    let holds = format!("/api/v1/orders/{id}/holds");

    // Bad holds change nothing.
    let (s, p) = t
        .store
        .post(&holds, &json!({"type": "nope", "reason": "x"}))
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{p}");
    let (s, p) = t.store.post(&holds, &json!({"type": "payment"})).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{p}");
    assert_eq!(p["errors"][0]["field"], "reason", "{p}");
    let (s, _) = t
        .store
        .post(&format!("{holds}/not-a-uuid/release"), &json!({}))
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, _) = t
        .store
        .post(
            &format!("{holds}/{}/release", uuid::Uuid::now_v7()),
            &json!({}),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // The store holds the order for a payment check: both parts stop.
    let (s, payment) = t
        .store
        .post(
            &holds,
            &json!({"type": "payment", "reason": "card declined"}),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED, "{payment}");
    assert_eq!(payment["type"], "payment");
    assert_eq!(payment["placed_by"], "store");
    assert_eq!(payment["released_at"], Value::Null);
    let payment_id = payment["id"].as_str().expect("id").to_owned();
    for (side, part) in [(&t.eu, &id), (&t.us, &second)] {
        let held = wait_for_order(side, part, "the store's hold at the warehouse", |o| {
            o["status"] == "on_hold"
        })
        .await;
        assert_eq!(held["hold_reason"], "card declined", "{held}");
        assert_eq!(held["holds"][0]["placed_by"], "store", "{held}");
    }
    // Nothing moves while it holds, and a warehouse cannot release it.
    let (s, _) =
        t.eu.post(
            &format!("/api/v1/orders/{id}/fulfillment"),
            &json!({"status": "picking"}),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT);
    let (s, p) =
        t.eu.post(&format!("{holds}/{payment_id}/release"), &json!({}))
            .await;
    assert_eq!(s, StatusCode::CONFLICT, "{p}");
    let (s, p) =
        t.eu.post(
            &format!("/api/v1/orders/{id}/fulfillment"),
            &json!({"status": "released"}),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{p}");

    // eu holds its part too, for stock.
    let (s, stock) =
        t.eu.post(&holds, &json!({"type": "stock", "reason": "recount"}))
            .await;
    assert_eq!(s, StatusCode::CREATED, "{stock}");
    assert_eq!(stock["placed_by"], "warehouse");
    let stock_id = stock["id"].as_str().expect("id").to_owned();
    let o = wait_for_order(&t.store, &id, "both holds at the store", |o| {
        o["fulfillment"]["holds"]
            .as_array()
            .is_some_and(|h| h.len() == 2)
    })
    .await;
    assert_eq!(o["fulfillment"]["status"], "on_hold", "{o}");
    assert_eq!(o["parts"][0]["holds"].as_array().expect("holds").len(), 2);
    // The store cannot release eu's hold.
    let (s, p) = t
        .store
        .post(&format!("{holds}/{stock_id}/release"), &json!({}))
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{p}");
    assert!(
        p["detail"].as_str().is_some_and(|d| d.contains("eu")),
        "{p}"
    );

    // The store releases its hold: us goes back to pending; eu stays held
    // by its own.
    let (s, o) = t
        .store
        .post(&format!("{holds}/{payment_id}/release"), &json!({}))
        .await;
    assert_eq!(s, StatusCode::OK, "{o}");
    // At once, before any warehouse answers: only eu's hold holds.
    assert_eq!(o["fulfillment"]["hold_reason"], "recount", "{o}");
    assert_eq!(o["fulfillment"]["holds"].as_array().map(Vec::len), Some(1));
    wait_for_order(&t.us, &second, "us free again", |o| {
        o["status"] == "pending"
    })
    .await;
    let at_eu = wait_for_order(&t.eu, &id, "eu still held by its own", |o| {
        o["holds"][0]["released_at"].is_string()
    })
    .await;
    assert_eq!(at_eu["status"], "on_hold", "{at_eu}");
    assert_eq!(at_eu["hold_reason"], "recount");
    let (s, _) = t
        .store
        .post(&format!("{holds}/{payment_id}/release"), &json!({}))
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "already released");
    // eu releases its own: pending, and work goes on.
    let (s, at_eu) =
        t.eu.call(
            reqwest::Method::POST,
            &format!("{holds}/{stock_id}/release"),
            None,
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{at_eu}");
    assert_eq!(at_eu["status"], "pending");
    step(&t.eu, &id, json!({"status": "picking"})).await;
    wait_for_order(&t.store, &id, "no hold left at the store", |o| {
        o["fulfillment"]["holds"] == json!([]) && o["parts"][0]["status"] == "picking"
    })
    .await;
    let (_, o) = t.store.get(&format!("/api/v1/orders/{id}")).await;
    assert_eq!(o["fulfillment"]["hold_reason"], Value::Null, "{o}");
}

/// A later part's fulfillment arriving at the store also rewrites its
/// order's first row (the rolled-up status), and an edit locks every row of
/// the order in id order. The delivery must lock in that same order: the
/// first row before the part (ids are time-ordered, the first row is made
/// first), never the part while it waits for the first row. Otherwise an
/// edit and a delivery of the same order each hold a row the other waits
/// for: PostgreSQL breaks the deadlock by failing one (a 500 answer to the
/// edit, found by the fault test with two warehouses).
async fn a_later_parts_delivery_locks_its_orders_rows_in_order(b: Backend) {
    use sqlx::{Connection, Executor, PgConnection};
    let Some(t) = by_sku(b).await else { return };
    let o = create(&t.store, &order_of("Locks", &[("WID-1", 1), ("BOX-1", 1)])).await;
    let (id, second) = (id_of(&o), id_of(&o["parts"][1]));
    assert!(id < second, "the first row's id sorts first: {id} {second}");
    wait_for_order(&t.us, &second, "us's part", |_| true).await;
    wait_for_order(&t.store, &id, "both parts reported", |o| {
        o["parts"][1]["status"] == "pending" && o["sync"]["state"] == "synced"
    })
    .await;

    // Someone (an edit, say) holds the order's first row.
    let mut holder = PgConnection::connect(&t.store.db.url)
        .await
        .expect("connect");
    holder.execute("BEGIN").await.expect("begin");
    holder
        .execute(format!("SELECT id FROM orders WHERE id = '{id}' FOR UPDATE").as_str())
        .await
        .expect("lock the first row");
    // us holds its part (the order's rolled-up status changes with it):
    // the delivery reaches the store and waits.
    step(
        &t.us,
        &second,
        json!({"status": "on_hold", "reason": "no boxes"}),
    )
    .await;
    let mut watcher = PgConnection::connect(&t.store.db.url)
        .await
        .expect("connect");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let waiting: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM pg_stat_activity \
             WHERE datname = current_database() AND wait_event_type = 'Lock'",
        )
        .fetch_one(&mut watcher)
        .await
        .expect("pg_stat_activity");
        if waiting > 0 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the delivery never waited for the first row"
        );
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    // It waits holding nothing: the part's row is free for the holder.
    let part = holder
        .execute(format!("SELECT id FROM orders WHERE id = '{second}' FOR UPDATE NOWAIT").as_str())
        .await;
    assert!(
        part.is_ok(),
        "the delivery locked the part's row before its order's first row: {part:?}"
    );
    holder.execute("COMMIT").await.expect("commit");
    wait_for_order(&t.store, &id, "us's hold at the store", |o| {
        o["parts"][1]["status"] == "on_hold" && o["fulfillment"]["status"] == "on_hold"
    })
    .await;
    watcher.close().await.ok();
    holder.close().await.ok();
}

/// The first part carries the order's id and is the order's own record: an
/// edit that moves all its lines elsewhere withdraws it (its warehouse
/// cancels it) without the order looking cancelled, and the order goes on.
async fn an_edit_may_move_every_line_off_the_first_part(b: Backend) {
    let Some(t) = by_sku(b).await else { return };
    let o = create(&t.store, &order_of("Moved", &[("WID-1", 1)])).await;
    let id = id_of(&o);
    wait_for_order(&t.eu, &id, "the order at eu", |_| true).await;
    let (s, moved) = t
        .store
        .patch(
            &format!("/api/v1/orders/{id}"),
            &json!({"lines": [{"sku": "BOX-1", "name": "Box", "quantity": 2, "unit_price": 300}]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{moved}");
    assert_eq!(moved["status"], "open", "nobody asked to cancel: {moved}");
    assert_eq!(moved["parts"][0]["withdrawn"], true, "{moved}");
    assert_eq!(moved["parts"][1]["warehouse"], "us");
    let second = id_of(&moved["parts"][1]);
    let at_eu = wait_for_order(&t.eu, &id, "eu cancels its withdrawn part", |o| {
        o["status"] == "cancelled"
    })
    .await;
    assert!(
        at_eu["cancel_reason"]
            .as_str()
            .is_some_and(|r| r.contains("other warehouses")),
        "{at_eu}"
    );
    wait_for_order(&t.us, &second, "the boxes at us", |_| true).await;
    let o = wait_for_order(&t.store, &id, "the order follows us's part", |o| {
        o["fulfillment"]["status"] == "pending" && o["parts"][0]["status"] == "cancelled"
    })
    .await;
    assert_eq!(o["status"], "open", "{o}");
    assert_eq!(skus(&o["lines"]), [line("BOX-1", 2)]);
    // Later edits reach the live part, and a cancel reaches it too.
    let (s, edited) = t
        .store
        .patch(
            &format!("/api/v1/orders/{id}"),
            &json!({"notes": "side door"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{edited}");
    assert_eq!(edited["notes"], "side door");
    wait_for_order(&t.us, &second, "the notes at us", |o| {
        o["notes"] == "side door"
    })
    .await;
    let (s, _) = t
        .store
        .post(&format!("/api/v1/orders/{id}/cancel"), &json!({}))
        .await;
    assert_eq!(s, StatusCode::OK);
    wait_for_order(&t.us, &second, "us cancels", |o| o["status"] == "cancelled").await;
    wait_for_order(&t.store, &id, "the order cancelled", |o| {
        o["fulfillment"]["status"] == "cancelled" && o["status"] == "cancel_requested"
    })
    .await;
}

//! The operator's lists and the admin's chrome (issue 15), at 1280 px and
//! at a phone's 390 px:
//!
//! - one vocabulary: the sync filter, badges and the sync and warehouses
//!   pages say Pending, Synced, Failing, Dead letter, never the old words;
//! - a cancelled order says "Cancelled" in the store's list, and a refused
//!   cancel says so in both sides' lists and on the order page;
//! - post/redirect/get: a notice shows once, its cookie is gone after the
//!   page and the URL never carries it; reloading after a form (one that
//!   worked, one that failed) never sends it again;
//! - the list's count, its next and previous pages and its sort orders,
//!   each compared with the API's orders (ids, in order);
//! - at 390 px: an order is a card under 100 px, the header is one height
//!   on every page, nothing is wider than the screen, a totals footer keeps
//!   label and amount on one line.
//!
//! Every step is checked against the API or the database too.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use fantoccini::Locator;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::driver::Browser;
use crate::helpers::{
    Backend, Pair, Side, create_order, id_of, order_body, short_horizon, status_rank,
    wait_for_order,
};
use crate::parts::sign_in;
use crate::{ADMIN, PASSWORD, add_admin, count, shots};

crate::both_backends!(
    one_vocabulary_and_cancel_outcomes_in_both_lists,
    notices_show_once_and_no_form_is_sent_twice,
    the_list_counts_pages_both_ways_and_sorts,
    at_phone_width_lists_are_cards_and_the_header_keeps_its_height,
);

/// A store and a warehouse (each side's config changed by `tweak`), an
/// admin on both, and a browser; `None` to skip.
async fn setup(
    backend: Backend,
    tweak: impl Fn(&mut fulfillment::service::ServiceConfig),
) -> Option<(Pair, Browser)> {
    if !crate::driver::available() {
        return None;
    }
    let pair = Pair::start_with(backend, tweak).await?;
    for side in [&pair.store, &pair.warehouse] {
        add_admin(side, ADMIN, PASSWORD).await;
    }
    Some((pair, Browser::start().await))
}

/// The order ids of the list's rows, top to bottom.
async fn row_ids(b: &Browser) -> Vec<String> {
    let mut out = Vec::new();
    for tr in b
        .client
        .find_all(Locator::Css("table.orders tbody tr"))
        .await
        .expect("rows")
    {
        out.push(
            tr.attr("data-order-id")
                .await
                .expect("attr")
                .unwrap_or_default(),
        );
    }
    out
}

/// The texts of every element matching `css`.
async fn texts(b: &Browser, css: &str) -> Vec<String> {
    let mut out = Vec::new();
    for el in b.client.find_all(Locator::Css(css)).await.expect("find") {
        out.push(el.text().await.expect("text"));
    }
    out
}

/// Runs a script in the page and returns its number.
async fn number(b: &Browser, script: &str) -> f64 {
    b.client
        .execute(script, vec![])
        .await
        .unwrap_or_else(|e| panic!("{script}: {e}"))
        .as_f64()
        .unwrap_or_else(|| panic!("{script}: not a number"))
}

/// Moves an order through the warehouse's steps by the API, one per
/// status in `to` (`picking`, `packed`, `shipped`, `on_hold`).
async fn advance(wh: &Side, id: &str, to: &[&str]) {
    for s in to {
        let body = match *s {
            "shipped" => {
                json!({"status": "shipped", "carrier": "UPS", "tracking_number": format!("1Z{id}")})
            }
            "on_hold" => json!({"status": "on_hold", "reason": "recount"}),
            other => json!({"status": other}),
        };
        let (status, o) = wh
            .post(&format!("/api/v1/orders/{id}/fulfillment"), &body)
            .await;
        assert_eq!(status, StatusCode::OK, "{s}: {o}");
    }
}

/// Every order the API lists at `side`, newest first.
async fn api_orders(side: &Side) -> Vec<Value> {
    let (s, page) = side.get("/api/v1/orders?limit=500").await;
    assert_eq!(s, StatusCode::OK, "{page}");
    page["items"].as_array().expect("items").clone()
}

fn ids(orders: &[&Value]) -> Vec<String> {
    orders.iter().map(|o| id_of(o)).collect()
}

fn time(v: &Value) -> Option<DateTime<Utc>> {
    v.as_str()
        .map(|t| t.parse::<DateTime<Utc>>().expect("an RFC 3339 time"))
}

/// Saves what the browser shows as docs/screenshots/NAME.png, at the
/// window's size (the driver's screenshots are 1280 px wide), when
/// FULFILLMENT_SCREENSHOTS=1.
async fn phone_shot(b: &Browser, name: &str) {
    if std::env::var("FULFILLMENT_SCREENSHOTS").as_deref() != Ok("1") {
        return;
    }
    let png = b.client.screenshot().await.expect("screenshot");
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("docs/screenshots");
    std::fs::create_dir_all(&dir).expect("screenshot dir");
    std::fs::write(dir.join(format!("{name}.png")), png).expect("write screenshot");
}

// ---------------------------------------------------------------------------

async fn one_vocabulary_and_cancel_outcomes_in_both_lists(backend: Backend) {
    let Some((mut pair, b)) = setup(backend, short_horizon).await else {
        return;
    };
    let plain = id_of(&create_order(&pair.store, "Plain Order").await);
    let cancelled = id_of(&create_order(&pair.store, "Cancel Me").await);
    let refused = id_of(&create_order(&pair.store, "Too Late").await);
    for id in [&plain, &cancelled, &refused] {
        wait_for_order(&pair.warehouse, id, "the order at the warehouse", |_| true).await;
    }
    advance(&pair.warehouse, &refused, &["picking", "packed", "shipped"]).await;
    wait_for_order(&pair.store, &refused, "shipped at the store", |o| {
        o["fulfillment"]["status"] == "shipped"
    })
    .await;
    for id in [&cancelled, &refused] {
        let (s, o) = pair
            .store
            .post(&format!("/api/v1/orders/{id}/cancel"), &json!({}))
            .await;
        assert_eq!(s, StatusCode::OK, "{o}");
    }
    // The API: the store's own status is the request (API.md: open or
    // cancel_requested), the outcome is the warehouse's answer.
    let c = wait_for_order(&pair.store, &cancelled, "cancelled at the store", |o| {
        o["fulfillment"]["status"] == "cancelled" && o["sync"]["state"] == "synced"
    })
    .await;
    assert_eq!(c["status"], "cancel_requested", "{c}");
    let r = wait_for_order(&pair.store, &refused, "the refusal at the store", |o| {
        o["fulfillment"]["cancel_rejected_reason"].is_string() && o["sync"]["state"] == "synced"
    })
    .await;
    assert_eq!(r["fulfillment"]["status"], "shipped", "{r}");
    assert_eq!(
        r["fulfillment"]["cancel_rejected_reason"], "order was already shipped",
        "{r}"
    );
    let refusal = "Cancel refused: order was already shipped";
    let row = |id: &str, css: &str| format!("tr[data-order-id='{id}'] {css}");

    // The warehouse's list shows the refusal too.
    let wh = pair.warehouse.url.clone();
    b.login(&wh, ADMIN, PASSWORD).await;
    b.reload_until(
        20,
        "the refusal in the warehouse's list",
        crate::driver::TextContains(refusal),
    )
    .await;
    assert_eq!(b.text(&row(&refused, "[data-status]")).await, "Shipped");
    assert_eq!(b.text(&row(&refused, "[data-cancel]")).await, refusal);
    assert_eq!(b.text(&row(&cancelled, "[data-status]")).await, "Cancelled");
    assert!(!b.exists(&row(&cancelled, "[data-cancel]")).await);

    // A dead letter: the warehouse is down, the store gives up.
    pair.warehouse.stop().await;
    let dead = id_of(&create_order(&pair.store, "Never Arrives").await);
    wait_for_order(&pair.store, &dead, "a dead letter", |o| {
        o["sync"]["state"] == "dead"
    })
    .await;

    let store = pair.store.url.clone();
    b.login(&store, ADMIN, PASSWORD).await;
    assert_eq!(
        texts(&b, "#sync option").await,
        [
            "Any sync state",
            "Pending",
            "Synced",
            "Failing",
            "Dead letter"
        ]
    );
    assert_eq!(b.text(&row(&cancelled, "[data-status]")).await, "Cancelled");
    assert!(
        !b.exists(&row(&cancelled, "[data-cancel]")).await,
        "a cancelled order still says the request"
    );
    assert_eq!(b.text(&row(&refused, "[data-status]")).await, "Shipped");
    assert_eq!(b.text(&row(&refused, "[data-cancel]")).await, refusal);
    assert_eq!(b.text(&row(&plain, "[data-col=sync]")).await, "Synced");
    assert_eq!(b.text(&row(&dead, "[data-col=sync]")).await, "Dead letter");
    assert_eq!(
        b.text(&row(&dead, "[data-status]")).await,
        "Not at warehouse yet"
    );
    // Every column fits at 1280 px: the card does not scroll.
    let spare = number(
        &b,
        "const c = document.querySelector('.orders-card'); return c.clientWidth - c.scrollWidth",
    )
    .await;
    assert!(spare >= 0.0, "the list is {} px too wide", -spare);
    if shots(backend) {
        b.screenshot("orders-outcomes").await;
    }
    // The filter by the new word finds exactly the dead letter, counted.
    b.find("#sync")
        .await
        .select_by_value("dead")
        .await
        .expect("choose dead");
    b.click(".filters button[type=submit]").await;
    assert_eq!(row_ids(&b).await, vec![dead.clone()]);
    assert_eq!(b.text("#order-count").await, "1 order");
    let (_, api) = pair.store.get("/api/v1/orders?sync=dead").await;
    assert_eq!(api["items"].as_array().map(Vec::len), Some(1), "{api}");

    // The order pages: the outcome beside the status.
    b.goto(&format!("{store}/admin/orders/{refused}")).await;
    assert_eq!(b.text("#fulfillment-status").await, "Shipped");
    assert_eq!(b.text("#cancel-outcome").await, refusal);
    b.goto(&format!("{store}/admin/orders/{cancelled}")).await;
    assert_eq!(b.text("#fulfillment-status").await, "Cancelled");
    assert!(!b.exists("#cancel-outcome").await);
    b.goto(&format!("{store}/admin/orders/{dead}")).await;
    assert!(b.page_text().await.contains("Dead letter"));

    // The sync and warehouses pages say the same words.
    b.goto(&format!("{store}/admin/warehouses")).await;
    assert_eq!(b.text("#wh-main [data-health]").await, "Dead letter");
    b.goto(&format!("{store}/admin/sync")).await;
    // (Its stat labels are upper case on the screen.)
    let sync = b.page_text().await.to_lowercase();
    assert!(
        sync.contains("dead letters") && sync.contains("pending"),
        "{sync}"
    );
    for page in ["/admin/orders", "/admin/sync", "/admin/warehouses"] {
        b.goto(&format!("{store}{page}")).await;
        let text = b.page_text().await.to_lowercase();
        for old in [
            "Sending",
            "Retrying",
            "Stopped",
            "Waiting to send",
            "Healthy",
        ] {
            assert!(!text.contains(old), "{page} still says {old}");
        }
    }
    b.close().await;
    pair.stop().await;
}

async fn notices_show_once_and_no_form_is_sent_twice(backend: Backend) {
    let Some((pair, b)) = setup(backend, |_| {}).await else {
        return;
    };
    let (store, wh) = (&pair.store, &pair.warehouse);
    b.login(&store.url, ADMIN, PASSWORD).await;

    // A form that fails: back on its own page (a GET), errors beside the
    // fields, what was typed kept; the kept form is taken off the session.
    b.goto(&format!("{}/admin/orders/new", store.url)).await;
    b.fill("#customer-name", "Typed Name").await;
    b.fill("#customer-email", "not-an-email").await;
    b.fill("#lines-0-sku", "WID-1").await;
    b.click(".form-actions .btn-primary").await;
    assert_eq!(b.path().await, "/admin/orders/new");
    assert!(b.exists("#form-errors").await, "no errors shown");
    assert!(b.exists(".field.has-error #customer-email").await);
    assert_eq!(b.value("#customer-name").await, "Typed Name");
    assert_eq!(b.value("#customer-email").await, "not-an-email");
    assert_eq!(b.value("#lines-0-sku").await, "WID-1");
    assert_eq!(
        count(
            store,
            "SELECT COUNT(*) FROM admin_sessions WHERE flash IS NOT NULL"
        )
        .await,
        0,
        "the kept form stays on the session after it was shown"
    );
    // A reload reads the page again: the errors (read once) are gone, so
    // the form was not sent again, and nothing was created.
    b.client.refresh().await.expect("reload");
    assert_eq!(b.path().await, "/admin/orders/new");
    assert!(
        !b.exists("#form-errors").await,
        "the reload sent the form again"
    );
    assert_eq!(b.value("#customer-name").await, "");
    assert_eq!(count(store, "SELECT COUNT(*) FROM orders").await, 0);

    // A form that works: the order's page says so once.
    b.fill("#customer-name", "Grace Hopper").await;
    b.fill("#customer-email", "grace@example.com").await;
    b.fill("#shipping-address-name", "Grace Hopper").await;
    b.fill("#shipping-address-line1", "1 Harbour Road").await;
    b.fill("#shipping-address-city", "Arlington").await;
    b.fill("#shipping-address-postal-code", "22201").await;
    b.fill("#shipping-address-country", "US").await;
    b.fill("#currency", "USD").await;
    b.fill("#lines-0-sku", "COB-1").await;
    b.fill("#lines-0-name", "COBOL manual").await;
    b.fill("#lines-0-quantity", "2").await;
    b.fill("#lines-0-unit-price", "19.99").await;
    b.click(".form-actions .btn-primary").await;
    let id = b
        .path()
        .await
        .strip_prefix("/admin/orders/")
        .expect("on the order's page")
        .to_owned();
    assert!(!b.url().await.contains("notice"), "{}", b.url().await);
    assert!(b.text("#notice").await.contains("Order created"));
    assert_eq!(
        b.cookie("store_admin_notice").await,
        None,
        "the notice cookie outlived its page"
    );
    b.client.refresh().await.expect("reload");
    assert!(!b.exists("#notice").await, "the notice showed twice");
    let (_, list) = store.get("/api/v1/orders").await;
    assert_eq!(list["items"].as_array().map(Vec::len), Some(1), "{list}");
    assert_eq!(count(store, "SELECT COUNT(*) FROM orders").await, 1);

    // A notice does not follow to another page either.
    b.click(&format!("a[href='/admin/orders/{id}/edit']")).await;
    b.fill("#lines-0-quantity", "3").await;
    b.click(".form-actions .btn-primary").await;
    assert!(b.text("#notice").await.contains("Changes saved"));
    b.goto(&format!("{}/admin/orders", store.url)).await;
    assert!(!b.exists("#notice").await);
    let (_, o) = store.get(&format!("/api/v1/orders/{id}")).await;
    assert_eq!(o["lines"][0]["quantity"], 3);
    assert_eq!(o["sync"]["store_version"], 2, "edited once: {o}");

    // The warehouse: a step's notice once; a refused step (a shipment
    // without a tracking number, the browser's own check taken away) comes
    // back with its error and the carrier typed, and a reload neither shows
    // it again nor sends it.
    wait_for_order(wh, &id, "the edit at the warehouse", |o| {
        o["lines"][0]["quantity"] == 3
    })
    .await;
    b.login(&wh.url, ADMIN, PASSWORD).await;
    b.goto(&format!("{}/admin/orders/{id}", wh.url)).await;
    b.click("button[value=pick]").await;
    assert_eq!(b.text("#notice").await, "Picking started.");
    b.client.refresh().await.expect("reload");
    assert!(!b.exists("#notice").await);
    assert_eq!(b.cookie("warehouse_admin_notice").await, None);
    b.click("button[value=pack]").await;
    b.client
        .execute(
            "document.querySelectorAll('[required]').forEach(e => e.removeAttribute('required'))",
            vec![],
        )
        .await
        .expect("script");
    b.fill("#carrier-input", "UPS").await;
    b.click("button[value=ship]").await;
    assert_eq!(b.path().await, format!("/admin/orders/{id}"));
    assert!(
        b.page_text().await.contains("Tracking number is required"),
        "no error beside the field"
    );
    assert_eq!(b.value("#carrier-input").await, "UPS");
    b.client.refresh().await.expect("reload");
    assert!(!b.page_text().await.contains("Tracking number is required"));
    let (_, at_wh) = wh.get(&format!("/api/v1/orders/{id}")).await;
    assert_eq!(at_wh["status"], "packed", "{at_wh}");
    let (_, audit) = wh.get(&format!("/api/v1/orders/{id}/audit")).await;
    let audit_len = audit["items"].as_array().map_or(0, Vec::len);

    // The store's warehouses page: the same mechanism.
    sign_in(&b, &store.url).await;
    b.goto(&format!("{}/admin/warehouses", store.url)).await;
    b.fill("#new-name", "eu").await;
    b.fill("#new-url", "not a url").await;
    b.click("#add-warehouse button[type=submit]").await;
    assert_eq!(b.path().await, "/admin/warehouses");
    assert!(b.exists("#form-errors").await);
    assert_eq!(b.value("#new-name").await, "eu");
    b.client.refresh().await.expect("reload");
    assert!(!b.exists("#form-errors").await);
    let (_, ws) = store.get("/api/v1/warehouses").await;
    assert_eq!(ws["items"].as_array().map(Vec::len), Some(1), "{ws}");
    // Nothing happened at the warehouse meanwhile.
    let (_, audit) = wh.get(&format!("/api/v1/orders/{id}/audit")).await;
    assert_eq!(audit["items"].as_array().map_or(0, Vec::len), audit_len);
    b.close().await;
    pair.stop().await;
}

async fn the_list_counts_pages_both_ways_and_sorts(backend: Backend) {
    let Some((pair, b)) = setup(backend, |_| {}).await else {
        return;
    };
    let (store, wh) = (&pair.store, &pair.warehouse);
    // 30 orders: every fourth without a deadline, the rest due on days
    // that repeat (ties are broken by id).
    let mut created = Vec::new();
    for i in 0..30u32 {
        let mut body = order_body(&format!("Customer {i:02}"));
        body["deliver_by"] = if i % 4 == 0 {
            Value::Null
        } else {
            json!(format!(
                "2026-12-{:02}T{:02}:00:00Z",
                1 + (i * 7) % 9,
                8 + i % 3
            ))
        };
        body["lines"][0]["quantity"] = json!(1 + i % 3);
        let (s, o) = store.post("/api/v1/orders", &body).await;
        assert_eq!(s, StatusCode::CREATED, "{o}");
        created.push(id_of(&o));
    }
    for id in &created {
        wait_for_order(wh, id, "the order at the warehouse", |_| true).await;
    }
    // Statuses to sort by, at the warehouse.
    for (i, id) in created.iter().enumerate() {
        let steps: &[&str] = match i % 5 {
            1 => &["picking"],
            2 => &["picking", "packed"],
            3 => &["on_hold"],
            4 => &["picking", "packed", "shipped"],
            _ => &[],
        };
        advance(wh, id, steps).await;
    }
    for id in &created {
        wait_for_order(store, id, "everything back at the store", |o| {
            o["sync"]["state"] == "synced" && !o["fulfillment"]["status"].is_null()
        })
        .await;
    }
    let all = api_orders(store).await;
    assert_eq!(all.len(), 30);
    let newest: Vec<&Value> = all.iter().collect();

    b.login(&store.url, ADMIN, PASSWORD).await;
    assert_eq!(b.text("#order-count").await, "1\u{2013}25 of 30 orders");
    assert_eq!(row_ids(&b).await, ids(&newest[..25]));
    assert!(!b.exists("#page-previous").await);
    b.click("#page-next").await;
    assert_eq!(b.text("#order-count").await, "26\u{2013}30 of 30 orders");
    assert_eq!(row_ids(&b).await, ids(&newest[25..]));
    assert!(!b.exists("#page-next").await);
    b.click("#page-previous").await;
    assert!(b.url().await.contains("before="), "{}", b.url().await);
    assert_eq!(row_ids(&b).await, ids(&newest[..25]));
    assert_eq!(b.text("#order-count").await, "1\u{2013}25 of 30 orders");
    assert!(!b.exists("#page-previous").await);

    // Deliver by, soonest first (none last), by its column's link; then
    // its next page; then the other way round.
    let mut due: Vec<&Value> = all.iter().collect();
    due.sort_by_key(|o| {
        (
            time(&o["deliver_by"]).map_or(i64::MAX, |t| t.timestamp_micros()),
            id_of(o),
        )
    });
    b.click("th a[data-sort=deliver_by]").await;
    assert_eq!(
        b.find("th[aria-sort]")
            .await
            .attr("aria-sort")
            .await
            .expect("attr")
            .as_deref(),
        Some("ascending")
    );
    assert_eq!(row_ids(&b).await, ids(&due[..25]));
    if shots(backend) {
        b.screenshot("orders-by-deliver-by").await;
    }
    b.click("#page-next").await;
    assert_eq!(row_ids(&b).await, ids(&due[25..]));
    b.click("#page-previous").await;
    assert_eq!(row_ids(&b).await, ids(&due[..25]));
    b.click("th a[data-sort=deliver_by]").await;
    due.reverse();
    assert_eq!(row_ids(&b).await, ids(&due[..25]));

    // Recently changed first.
    let mut updated: Vec<&Value> = all.iter().collect();
    updated.sort_by_key(|o| (time(&o["updated_at"]), id_of(o)));
    updated.reverse();
    b.click("th a[data-sort=updated]").await;
    assert_eq!(row_ids(&b).await, ids(&updated[..25]));

    // The warehouse sorts by status with the sort menu (a phone has no
    // column headings), pending first; a filter counts what it keeps.
    let at_wh = api_orders(wh).await;
    let mut by_status: Vec<&Value> = at_wh.iter().collect();
    by_status.sort_by_key(|o| (status_rank(&o["status"]), id_of(o)));
    b.login(&wh.url, ADMIN, PASSWORD).await;
    b.find("#sort")
        .await
        .select_by_value("status")
        .await
        .expect("sort by status");
    b.click(".filters button[type=submit]").await;
    assert_eq!(row_ids(&b).await, ids(&by_status[..25]));
    let statuses: HashMap<String, String> = at_wh
        .iter()
        .map(|o| (id_of(o), o["status"].as_str().unwrap_or("").to_owned()))
        .collect();
    assert_eq!(statuses[&row_ids(&b).await[0]], "pending");
    b.click("#page-next").await;
    assert_eq!(row_ids(&b).await, ids(&by_status[25..]));
    b.find("#status")
        .await
        .select_by_value("picking")
        .await
        .expect("filter");
    b.click(".filters button[type=submit]").await;
    let picking = statuses.values().filter(|s| *s == "picking").count();
    assert_eq!(b.text("#order-count").await, format!("{picking} orders"));
    assert_eq!(row_ids(&b).await.len(), picking);
    // What a picker triages by.
    let first = &at_wh[0];
    let id = id_of(first);
    let cell = |col: &str| format!("tr[data-order-id='{id}'] [data-col={col}]");
    b.goto(&format!("{}/admin/orders", wh.url)).await;
    assert_eq!(b.text(&cell("destination")).await, "London, GB");
    assert_eq!(
        b.text(&cell("items")).await,
        first["lines"][0]["quantity"].to_string()
    );
    if let Some(t) = time(&first["deliver_by"]) {
        assert_eq!(
            b.text(&cell("deliver_by")).await,
            t.format("%Y-%m-%d %H:%M").to_string()
        );
    }
    if shots(backend) {
        b.screenshot("warehouse-orders-triage").await;
    }
    // A sort or page that is not the list's is refused, and says what to do.
    b.goto(&format!("{}/admin/orders?sort=id;drop", wh.url))
        .await;
    assert!(b.page_text().await.contains("Check the filters"));
    assert!(row_ids(&b).await.is_empty());
    b.close().await;
    pair.stop().await;
}

async fn at_phone_width_lists_are_cards_and_the_header_keeps_its_height(backend: Backend) {
    let Some((pair, b)) = setup(backend, |_| {}).await else {
        return;
    };
    let (store, wh) = (&pair.store, &pair.warehouse);
    let mut long = order_body("Maximilian Alexander Featherstonehaugh-Cholmondeley");
    long["shipping_address"]["city"] = json!("Llanfairpwllgwyngyll");
    long["shipping_cost"] = json!(123_456_789);
    let (s, o) = store.post("/api/v1/orders", &long).await;
    assert_eq!(s, StatusCode::CREATED, "{o}");
    let long = id_of(&o);
    let shipped = id_of(&create_order(store, "Shipped Then Cancelled").await);
    let plain = id_of(&create_order(store, "Plain").await);
    for id in [&long, &shipped, &plain] {
        wait_for_order(wh, id, "the order at the warehouse", |_| true).await;
    }
    advance(wh, &shipped, &["picking", "packed", "shipped"]).await;
    wait_for_order(store, &shipped, "shipped at the store", |o| {
        o["fulfillment"]["status"] == "shipped"
    })
    .await;
    store
        .post(&format!("/api/v1/orders/{shipped}/cancel"), &json!({}))
        .await;
    wait_for_order(store, &shipped, "the refusal at the store", |o| {
        o["fulfillment"]["cancel_rejected_reason"].is_string()
    })
    .await;

    b.set_window_size(390, 844).await;
    let mut header = Vec::new();
    let inner = number(&b, "return document.documentElement.clientWidth").await;
    assert!(
        (380.0..=390.0).contains(&inner),
        "the viewport is {inner} px wide"
    );
    for (side, pages) in [
        (
            store,
            vec![
                "/admin/orders".to_owned(),
                "/admin/sync".to_owned(),
                format!("/admin/orders/{long}"),
                "/admin/orders/new".to_owned(),
                "/admin/warehouses".to_owned(),
                "/admin/tokens".to_owned(),
            ],
        ),
        (
            wh,
            vec![
                "/admin/orders".to_owned(),
                "/admin/sync".to_owned(),
                format!("/admin/orders/{long}"),
                "/admin/tokens".to_owned(),
            ],
        ),
    ] {
        sign_in(&b, &side.url).await;
        let mut heights = Vec::new();
        for page in &pages {
            b.goto(&format!("{}{page}", side.url)).await;
            heights.push(
                number(
                    &b,
                    "return document.querySelector('.topbar').getBoundingClientRect().height",
                )
                .await,
            );
            let wide = number(&b, "return document.documentElement.scrollWidth").await;
            assert!(wide <= 390.0, "{} {page} is {wide} px wide", side.role);
        }
        assert!(
            heights.iter().all(|h| (h - heights[0]).abs() < 0.5),
            "{}: the header's height changes per page: {heights:?} for {pages:?}",
            side.role
        );
        // Two short lines (brand and sign-out; the navigation), whichever
        // side and however many links: not a third of the screen.
        assert!(
            heights[0] <= 90.0,
            "{}: the header takes {} px",
            side.role,
            heights[0]
        );
        header.push(heights[0]);
        // The list: one compact card per order, numbers unbroken.
        b.goto(&format!("{}/admin/orders", side.url)).await;
        let rows = number(
            &b,
            "return document.querySelectorAll('table.orders tbody tr').length",
        )
        .await;
        assert_eq!(rows, 3.0);
        let tallest = number(
            &b,
            "return Math.max(...Array.from(document.querySelectorAll('table.orders tbody tr')).map(r => r.getBoundingClientRect().height))",
        )
        .await;
        assert!(
            tallest <= 100.0,
            "{}: an order takes {tallest} px",
            side.role
        );
        let broken = number(
            &b,
            "return Array.from(document.querySelectorAll('table.orders .order-link, table.orders .badge, table.orders .num'))
               .filter(e => e.offsetParent !== null)
               .filter(e => { const r = document.createRange(); r.selectNodeContents(e);
                              const tops = new Set(Array.from(r.getClientRects()).map(x => Math.round(x.top)));
                              return tops.size > 1; }).length",
        )
        .await;
        assert_eq!(broken, 0.0, "{}: a number or badge wraps", side.role);
        let clipped = number(
            &b,
            "return Array.from(document.querySelectorAll(
                 'table.orders .c-order a, table.orders [data-status], table.orders .c-sync .badge, table.orders .c-total'))
               .filter(e => e.offsetParent !== null)
               .filter(e => { const r = e.getBoundingClientRect(), c = e.closest('td').getBoundingClientRect();
                              return r.left < c.left - 0.5 || r.right > c.right + 0.5; }).length",
        )
        .await;
        assert_eq!(clipped, 0.0, "{}: a number or badge is cut off", side.role);
        phone_shot(&b, &format!("phone-{}-orders", side.role)).await;
    }
    assert!(
        (header[0] - header[1]).abs() < 0.5,
        "the store's header and the warehouse's differ: {header:?}"
    );
    // The store's list shows the refusal on the phone too (shortened,
    // whole in its title).
    sign_in(&b, &store.url).await;
    let badge = format!("tr[data-order-id='{shipped}'] [data-cancel]");
    assert_eq!(
        b.find(&badge)
            .await
            .attr("title")
            .await
            .expect("attr")
            .as_deref(),
        Some("Cancel refused: order was already shipped")
    );
    // A totals footer keeps label and amount on one line each.
    b.goto(&format!("{}/admin/orders/{long}", store.url)).await;
    let split = number(
        &b,
        "return Array.from(document.querySelectorAll('#lines tfoot tr')).filter(tr => {
           const [th, td] = [tr.querySelector('th'), tr.querySelector('td')];
           const [a, c] = [th.getBoundingClientRect(), td.getBoundingClientRect()];
           return Math.abs(a.top - c.top) > 2 || c.height > 30; }).length",
    )
    .await;
    assert_eq!(split, 0.0, "the totals footer breaks");
    let total = b.text("#order-total").await;
    let (_, o) = store.get(&format!("/api/v1/orders/{long}")).await;
    assert_eq!(o["total"], 123_456_789 + 3998, "{o}");
    assert_eq!(total, "1,234,607.87 GBP");
    phone_shot(&b, "phone-store-order").await;
    b.close().await;
    pair.stop().await;
}

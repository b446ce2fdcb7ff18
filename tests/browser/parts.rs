//! Several warehouses in the admin UI: a store and two warehouse services
//! (`eu` and `us`, the API tests' [`three`]) driven through the browser.
//! A split order ships in parcels from both warehouses and the store's
//! page follows it part by part; a line rejected at one warehouse moves to
//! the other, then waits unrouted until a warehouse added on the
//! warehouses page takes it; the warehouses page adds, changes and
//! deactivates a warehouse and never shows a secret. Each step is checked
//! through the API or SQL too, not only on the page.

use fulfillment::domain::Role;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::driver::Browser;
use crate::helpers::{Backend, Side, Three, id_of, order_body, three, wait_for_order};
use crate::{ADMIN, PASSWORD, add_admin, count, raw_http, shots};

crate::both_backends!(
    a_split_order_ships_in_parcels_from_two_warehouses,
    a_rejected_line_moves_on_then_waits_for_a_new_warehouse,
    the_warehouses_page_adds_changes_and_deactivates,
);

/// [`three`] with an admin on every side, and a browser; `None` to skip.
pub(crate) async fn setup(b: Backend) -> Option<(Three, Browser)> {
    if !crate::driver::available() {
        return None;
    }
    let t = three(b).await?;
    for side in [&t.store, &t.eu, &t.us] {
        add_admin(side, ADMIN, PASSWORD).await;
    }
    Some((t, Browser::start().await))
}

pub(crate) async fn stop(mut t: Three) {
    t.store.stop().await;
    t.eu.stop().await;
    t.us.stop().await;
}

/// Signs in on `base` unless this browser's session there still holds
/// (the warehouses share one cookie name on 127.0.0.1, so moving between
/// them means signing in again; the store's session stays).
pub(crate) async fn sign_in(b: &Browser, base: &str) {
    b.goto(&format!("{base}/admin/orders")).await;
    if b.path().await == "/admin/login" {
        b.login(base, ADMIN, PASSWORD).await;
    }
}

/// Sets each warehouse's countries, SKU prefixes and priority.
/// Routes `WID-` lines to `eu` and `BOX-` lines to `us`, both shipping
/// everywhere: an order with one line of each splits in two parts.
pub(crate) async fn split_widgets_and_boxes(store: &Side) {
    configure(
        store,
        &[
            ("eu", json!({"countries": [], "sku_prefixes": ["WID-"]})),
            ("us", json!({"countries": [], "sku_prefixes": ["BOX-"]})),
        ],
    )
    .await;
}

pub(crate) async fn configure(store: &Side, settings: &[(&str, Value)]) {
    for (name, body) in settings {
        let (s, w) = store
            .patch(&format!("/api/v1/warehouses/{name}"), body)
            .await;
        assert_eq!(s, StatusCode::OK, "{w}");
    }
}

/// Creates an order to the US of these `(sku, quantity)` lines.
pub(crate) async fn create(store: &Side, name: &str, lines: &[(&str, u32)]) -> Value {
    let mut body = order_body(name);
    body["shipping_address"]["country"] = json!("US");
    body["lines"] = lines
        .iter()
        .map(|(sku, q)| json!({"sku": sku, "name": format!("Item {sku}"), "quantity": q, "unit_price": 1000}))
        .collect();
    let (s, o) = store.post("/api/v1/orders", &body).await;
    assert_eq!(s, StatusCode::CREATED, "{o}");
    o
}

/// The text of one cell of the line of `sku` in `scope` (`#lines`,
/// `#part-2`): `col` is `quantity`, `shipped`, `rejected`, ...
async fn cell(b: &Browser, scope: &str, sku: &str, col: &str) -> String {
    b.text(&format!("{scope} tr[data-sku='{sku}'] [data-col={col}]"))
        .await
}

/// Fills the quantity input of `sku` in the form `form` (`#parcel-form`).
async fn quantity(b: &Browser, form: &str, sku: &str, q: &str) {
    b.fill(&format!("{form} input[data-sku='{sku}']"), q).await;
}

/// Makes the page's confirmation questions answer yes (a form with
/// `data-confirm` asks before it is sent).
async fn accept_confirms(b: &Browser) {
    b.client
        .execute("window.confirm = () => true", vec![])
        .await
        .expect("accept confirmations");
}

/// Reloads the page until `css` exists.
pub(crate) async fn reload_until_exists(b: &Browser, secs: u64, what: &str, css: &str) {
    struct Exists<'a>(&'a str);
    impl crate::driver::AsyncCheck for Exists<'_> {
        async fn holds(&self, b: &Browser) -> bool {
            b.exists(self.0).await
        }
    }
    b.reload_until(secs, what, Exists(css)).await;
}

/// Reloads the page until the text of `css` is `want`.
pub(crate) async fn reload_until_text(b: &Browser, secs: u64, css: &str, want: &str) {
    struct Text<'a>(&'a str, &'a str);
    impl crate::driver::AsyncCheck for Text<'_> {
        async fn holds(&self, b: &Browser) -> bool {
            b.exists(self.0).await && b.text(self.0).await == self.1
        }
    }
    b.reload_until(secs, &format!("{css} to read {want:?}"), Text(css, want))
        .await;
}

// ---------------------------------------------------------------------------

async fn a_split_order_ships_in_parcels_from_two_warehouses(backend: Backend) {
    let Some((t, b)) = setup(backend).await else {
        return;
    };
    split_widgets_and_boxes(&t.store).await;
    let o = create(&t.store, "Split Parcels", &[("WID-1", 3), ("BOX-1", 1)]).await;
    let id = id_of(&o);
    let second = id_of(&o["parts"][1]);
    wait_for_order(&t.eu, &id, "eu's part", |_| true).await;
    wait_for_order(&t.us, &second, "us's part", |_| true).await;

    // The store's page lists both parts, each with its own lines.
    sign_in(&b, &t.store.url).await;
    let store_page = format!("{}/admin/orders/{id}", t.store.url);
    b.goto(&store_page).await;
    reload_until_text(&b, 20, "#part-1 [data-part-status]", "Pending").await;
    assert_eq!(
        b.find("#part-1")
            .await
            .attr("data-warehouse")
            .await
            .ok()
            .flatten()
            .as_deref(),
        Some("eu")
    );
    assert_eq!(
        b.find("#part-2")
            .await
            .attr("data-warehouse")
            .await
            .ok()
            .flatten()
            .as_deref(),
        Some("us")
    );
    assert_eq!(cell(&b, "#part-1", "WID-1", "quantity").await, "3");
    assert!(
        !b.exists("#part-1 tr[data-sku='BOX-1']").await,
        "eu's part holds a box"
    );
    assert_eq!(cell(&b, "#part-2", "BOX-1", "quantity").await, "1");
    assert!(!b.exists("#unrouted").await);

    // eu: no parcel before picking; then one widget, then a bad parcel or
    // two, then the rest.
    sign_in(&b, &t.eu.url).await;
    let eu_page = format!("{}/admin/orders/{id}", t.eu.url);
    b.goto(&eu_page).await;
    assert!(
        !b.exists("#parcel-form").await,
        "a parcel form before picking"
    );
    b.click("button[value=pick]").await;
    assert_eq!(
        b.value("#parcel-form input[data-sku='WID-1']").await,
        "3",
        "the quantity defaults to what is left"
    );
    quantity(&b, "#parcel-form", "WID-1", "1").await;
    b.fill("#parcel-carrier", "DHL").await;
    b.fill("#parcel-tracking", "EU-PARCEL-1").await;
    b.click("#parcel-form button[type=submit]").await;
    assert!(b.page_text().await.contains("Parcel shipped"));
    assert_eq!(b.text("#fulfillment-status").await, "Partially shipped");
    assert_eq!(cell(&b, "#lines", "WID-1", "shipped").await, "1");
    assert_eq!(cell(&b, "#lines", "WID-1", "left").await, "2");
    assert!(b.text("#parcels").await.contains("EU-PARCEL-1"));
    let (_, at_eu) = t.eu.get(&format!("/api/v1/orders/{id}")).await;
    assert_eq!(at_eu["status"], "partially_shipped", "{at_eu}");
    assert_eq!(
        at_eu["shipments"][0]["lines"],
        json!([{"sku": "WID-1", "quantity": 1}])
    );

    // More than is left: refused (409), said beside the line, nothing changed.
    quantity(&b, "#parcel-form", "WID-1", "5").await;
    b.fill("#parcel-carrier", "DHL").await;
    b.fill("#parcel-tracking", "EU-TOO-MUCH").await;
    b.click("#parcel-form button[type=submit]").await;
    let text = b.page_text().await;
    assert!(
        text.contains("Not shipped") && text.contains("5 of WID-1 asked, 2 left to ship"),
        "{text}"
    );
    let err = b
        .text("#parcel-form td.has-error input[data-sku='WID-1'] ~ p.error")
        .await;
    assert!(err.contains("more than the 2 left to ship"), "{err}");
    assert_eq!(
        b.value("#parcel-tracking").await,
        "EU-TOO-MUCH",
        "typed values kept"
    );
    // A missing tracking number: the error sits at the field.
    quantity(&b, "#parcel-form", "WID-1", "2").await;
    b.fill("#parcel-tracking", "").await;
    b.click("#parcel-form button[type=submit]").await;
    let err = b.text(".field.has-error #parcel-tracking ~ p.error").await;
    assert!(err.contains("Tracking number"), "{err}");
    assert_eq!(b.value("#parcel-carrier").await, "DHL");
    // A parcel of nothing: said above the lines.
    quantity(&b, "#parcel-form", "WID-1", "0").await;
    b.fill("#parcel-tracking", "EU-EMPTY").await;
    b.click("#parcel-form button[type=submit]").await;
    assert!(
        b.text("#parcel-lines-error")
            .await
            .contains("at least one line")
    );
    let (_, at_eu) = t.eu.get(&format!("/api/v1/orders/{id}")).await;
    assert_eq!(
        at_eu["shipments"].as_array().map(Vec::len),
        Some(1),
        "{at_eu}"
    );
    if shots(backend) {
        b.screenshot("warehouse-parcel").await;
    }

    // The store sees eu's first parcel: partly shipped.
    sign_in(&b, &t.store.url).await;
    b.goto(&store_page).await;
    reload_until_text(&b, 20, "#fulfillment-status", "Partially shipped").await;
    assert_eq!(
        b.text("#part-1 [data-part-status]").await,
        "Partially shipped"
    );
    assert_eq!(cell(&b, "#part-1", "WID-1", "shipped").await, "1");
    assert!(b.text("#part-1 .parcels").await.contains("EU-PARCEL-1"));
    assert_eq!(b.text("#part-2 [data-part-status]").await, "Pending");

    // eu ships the rest (the quantity left is the default).
    sign_in(&b, &t.eu.url).await;
    b.goto(&eu_page).await;
    assert_eq!(b.value("#parcel-form input[data-sku='WID-1']").await, "2");
    b.fill("#parcel-carrier", "DHL").await;
    b.fill("#parcel-tracking", "EU-PARCEL-2").await;
    b.click("#parcel-form button[type=submit]").await;
    assert_eq!(b.text("#fulfillment-status").await, "Shipped");
    assert!(!b.exists("#parcel-form").await, "nothing left to ship");
    assert_eq!(cell(&b, "#lines", "WID-1", "left").await, "0");

    // us picks, packs and ships its box with the parcel form.
    sign_in(&b, &t.us.url).await;
    b.goto(&format!("{}/admin/orders/{second}", t.us.url)).await;
    assert!(b.page_text().await.contains("Part 2 of a store order"));
    b.click("button[value=pick]").await;
    b.click("button[value=pack]").await;
    b.fill("#parcel-carrier", "UPS").await;
    b.fill("#parcel-tracking", "US-PARCEL-1").await;
    b.click("#parcel-form button[type=submit]").await;
    assert_eq!(b.text("#fulfillment-status").await, "Shipped");

    // The store: shipped, every parcel listed under its part.
    sign_in(&b, &t.store.url).await;
    b.goto(&store_page).await;
    reload_until_text(&b, 20, "#fulfillment-status", "Shipped").await;
    reload_until_text(&b, 20, "#part-2 [data-part-status]", "Shipped").await;
    let eu_parcels = b.text("#part-1 .parcels").await;
    assert!(
        eu_parcels.contains("EU-PARCEL-1") && eu_parcels.contains("EU-PARCEL-2"),
        "{eu_parcels}"
    );
    assert!(!eu_parcels.contains("EU-TOO-MUCH"));
    assert!(b.text("#part-2 .parcels").await.contains("US-PARCEL-1"));
    assert_eq!(cell(&b, "#part-1", "WID-1", "shipped").await, "3");
    assert_eq!(
        b.text("#tracking-number").await,
        "US-PARCEL-1",
        "the latest parcel"
    );
    let o = wait_for_order(&t.store, &id, "shipped at the store", |o| {
        o["fulfillment"]["status"] == "shipped"
    })
    .await;
    let tracking: Vec<&str> = o["fulfillment"]["shipments"]
        .as_array()
        .expect("shipments")
        .iter()
        .filter_map(|s| s["tracking_number"].as_str())
        .collect();
    assert_eq!(
        tracking,
        ["EU-PARCEL-1", "EU-PARCEL-2", "US-PARCEL-1"],
        "{o}"
    );
    if shots(backend) {
        b.screenshot("store-order-parts").await;
    }
    b.close().await;
    stop(t).await;
}

async fn a_rejected_line_moves_on_then_waits_for_a_new_warehouse(backend: Backend) {
    let Some((t, b)) = setup(backend).await else {
        return;
    };
    // Both take everything, everywhere; eu is preferred: the order goes
    // to eu whole.
    configure(
        &t.store,
        &[
            ("eu", json!({"countries": [], "priority": 0})),
            ("us", json!({"countries": [], "priority": 1})),
        ],
    )
    .await;
    let o = create(&t.store, "Rejected Widget", &[("WID-1", 2), ("BOX-1", 1)]).await;
    let id = id_of(&o);
    assert_eq!(o["parts"].as_array().map(Vec::len), Some(1), "{o}");
    wait_for_order(&t.eu, &id, "the order at eu", |_| true).await;

    // eu rejects one widget. A rejection without a reason, or of more
    // than the order holds, is refused first.
    sign_in(&b, &t.eu.url).await;
    let eu_page = format!("{}/admin/orders/{id}", t.eu.url);
    b.goto(&eu_page).await;
    assert_eq!(b.value("#reject-form input[data-sku='WID-1']").await, "0");
    quantity(&b, "#reject-form", "WID-1", "1").await;
    accept_confirms(&b).await;
    b.click("#reject-form button[type=submit]").await;
    let err = b.text(".field.has-error #reject-reason ~ p.error").await;
    assert!(err.contains("Reason"), "{err}");
    assert_eq!(b.value("#reject-form input[data-sku='WID-1']").await, "1");
    quantity(&b, "#reject-form", "WID-1", "3").await;
    b.fill("#reject-reason", "out of stock").await;
    accept_confirms(&b).await;
    b.click("#reject-form button[type=submit]").await;
    assert!(b.page_text().await.contains("Not rejected"));
    let err = b
        .text("#reject-form td.has-error input[data-sku='WID-1'] ~ p.error")
        .await;
    assert!(err.contains("more than the 2 held"), "{err}");
    let (_, at_eu) = t.eu.get(&format!("/api/v1/orders/{id}")).await;
    assert_eq!(at_eu["lines"][0]["rejected_quantity"], 0, "{at_eu}");
    quantity(&b, "#reject-form", "WID-1", "1").await;
    accept_confirms(&b).await;
    b.click("#reject-form button[type=submit]").await;
    assert!(b.page_text().await.contains("Lines rejected"));
    assert_eq!(cell(&b, "#lines", "WID-1", "quantity").await, "1");
    assert_eq!(cell(&b, "#lines", "WID-1", "rejected").await, "1");
    assert!(b.text("#rejections").await.contains("out of stock"));
    let (_, at_eu) = t.eu.get(&format!("/api/v1/orders/{id}")).await;
    assert_eq!(at_eu["lines"][0]["rejected_quantity"], 1, "{at_eu}");
    assert_eq!(at_eu["status"], "pending");

    // The store routed it to us: a second part, shown with eu's refusal.
    sign_in(&b, &t.store.url).await;
    let store_page = format!("{}/admin/orders/{id}", t.store.url);
    b.goto(&store_page).await;
    reload_until_exists(
        &b,
        20,
        "us's part on the store's page",
        "#part-2[data-warehouse=us]",
    )
    .await;
    assert_eq!(cell(&b, "#part-2", "WID-1", "quantity").await, "1");
    reload_until_text(
        &b,
        20,
        "#part-1 tr[data-sku='WID-1'] [data-col=rejected]",
        "1",
    )
    .await;
    assert!(b.text("#part-1").await.contains("out of stock"));
    assert!(!b.exists("#unrouted").await);
    let o = wait_for_order(&t.store, &id, "the widget routed to us", |o| {
        o["parts"].as_array().is_some_and(|p| p.len() == 2)
    })
    .await;
    let second = id_of(&o["parts"][1]);
    wait_for_order(&t.us, &second, "the widget at us", |_| true).await;

    // us has none either: nobody is left, so the widget waits unrouted.
    sign_in(&b, &t.us.url).await;
    b.goto(&format!("{}/admin/orders/{second}", t.us.url)).await;
    quantity(&b, "#reject-form", "WID-1", "1").await;
    b.fill("#reject-reason", "damaged").await;
    accept_confirms(&b).await;
    b.click("#reject-form button[type=submit]").await;
    assert_eq!(b.text("#fulfillment-status").await, "Rejected");
    assert!(!b.exists("#reject-form").await);

    sign_in(&b, &t.store.url).await;
    b.goto(&store_page).await;
    reload_until_exists(&b, 20, "the widget unrouted", "#unrouted").await;
    let reason = b
        .text("#unrouted tr[data-sku='WID-1'] .unrouted-reason")
        .await;
    assert!(
        reason.contains("out of stock") && reason.contains("damaged"),
        "{reason}"
    );
    reload_until_text(&b, 20, "#part-2 [data-part-status]", "Rejected").await;
    // Route again with nothing new: nothing changes, and the page says so.
    b.click("form[action$='/route'] button").await;
    assert!(
        b.page_text()
            .await
            .contains("No warehouse takes the waiting lines yet")
    );
    assert!(b.exists("#unrouted").await);
    if shots(backend) {
        b.screenshot("store-order-unrouted").await;
    }

    // A third warehouse, added on the warehouses page with a secret of its
    // own, takes it once routed again.
    let mut spare = Side::start_alone(Role::Warehouse, backend, &t.store.url, |cfg| {
        cfg.sync_secrets = vec!["spare-sync-secret".to_owned()];
    })
    .await
    .expect("a third warehouse");
    b.click("#unrouted a[href='/admin/warehouses']").await;
    b.fill("#new-name", "spare").await;
    b.fill("#new-url", &spare.url).await;
    b.fill("#new-secret", "spare-sync-secret").await;
    b.click("#add-warehouse button[type=submit]").await;
    assert!(b.page_text().await.contains("Warehouse spare added"));
    assert!(!b.source().await.contains("spare-sync-secret"));
    b.goto(&store_page).await;
    b.click("form[action$='/route'] button").await;
    assert!(
        b.page_text()
            .await
            .contains("Every waiting line is routed now")
    );
    assert!(!b.exists("#unrouted").await);
    assert_eq!(
        b.find("#part-3")
            .await
            .attr("data-warehouse")
            .await
            .ok()
            .flatten()
            .as_deref(),
        Some("spare")
    );
    assert_eq!(cell(&b, "#part-3", "WID-1", "quantity").await, "1");
    let (_, o) = t.store.get(&format!("/api/v1/orders/{id}")).await;
    assert_eq!(o["routing"]["unrouted_lines"], json!([]), "{o}");
    let third = id_of(&o["parts"][2]);
    // It reached the new warehouse (signed with its own secret), and its
    // answer came back.
    let at_spare = wait_for_order(&spare, &third, "the widget at spare", |_| true).await;
    assert_eq!(at_spare["lines"][0]["sku"], "WID-1", "{at_spare}");
    reload_until_text(&b, 20, "#part-3 [data-part-status]", "Pending").await;
    let (_, audit) = t.store.get(&format!("/api/v1/orders/{id}/audit")).await;
    assert!(audit.to_string().contains("admin"), "{audit}");
    b.close().await;
    spare.stop().await;
    stop(t).await;
}

async fn the_warehouses_page_adds_changes_and_deactivates(backend: Backend) {
    let Some((t, b)) = setup(backend).await else {
        return;
    };
    let store = &t.store;
    const SECRETS: [&str; 3] = [
        "first-secret-never-shown",
        "second-secret-never-shown",
        "third-secret-never-shown",
    ];
    let no_secret_in = |src: &str, at: &str| {
        for s in SECRETS {
            assert!(!src.contains(s), "{at}: the page shows a secret");
        }
    };
    sign_in(&b, &store.url).await;
    b.click("a[href='/admin/warehouses']").await;
    assert_eq!(b.path().await, "/admin/warehouses");
    assert!(b.exists("#wh-eu").await && b.exists("#wh-us").await);
    assert_eq!(b.text("#wh-eu [data-col=countries]").await, "GB, DE, FR");
    assert!(
        b.text("#wh-eu [data-col=delivery]")
            .await
            .contains("breaker closed")
    );

    // Every bad field is named beside it; nothing is added, and the
    // secret typed is not sent back.
    b.fill("#new-name", "Bad Name").await;
    b.fill("#new-url", "ftp://nowhere").await;
    b.fill("#new-countries", "GB, XX").await;
    b.fill("#new-priority", "high").await;
    b.fill("#new-secret", SECRETS[0]).await;
    b.click("#add-warehouse button[type=submit]").await;
    for (field, says) in [
        ("new-name", "Name must be"),
        ("new-url", "URL must be"),
        ("new-countries", "Countries item 2"),
        ("new-priority", "Priority must be a whole number"),
    ] {
        let err = b
            .text(&format!(".field.has-error #{field} ~ p.error"))
            .await;
        assert!(err.starts_with(says), "{field}: {err}");
    }
    assert_eq!(
        b.value("#new-url").await,
        "ftp://nowhere",
        "typed values kept"
    );
    assert_eq!(
        b.value("#new-secret").await,
        "",
        "the secret is not sent back"
    );
    no_secret_in(&b.source().await, "the add form with errors");
    let (_, list) = store.get("/api/v1/warehouses").await;
    assert_eq!(list["items"].as_array().map(Vec::len), Some(2), "{list}");

    // Added.
    b.fill("#new-name", "spare").await;
    b.fill("#new-url", "http://127.0.0.1:9/").await;
    b.fill("#new-countries", "gb, de").await;
    b.fill("#new-sku-prefixes", "WID-, BOX-").await;
    b.fill("#new-priority", "5").await;
    b.fill("#new-secret", SECRETS[1]).await;
    b.click("#add-warehouse button[type=submit]").await;
    assert!(b.page_text().await.contains("Warehouse spare added"));
    assert_eq!(
        b.text("#wh-spare [data-col=url]").await,
        "http://127.0.0.1:9"
    );
    assert_eq!(b.text("#wh-spare [data-col=countries]").await, "GB, DE");
    assert_eq!(
        b.text("#wh-spare [data-col=sku_prefixes]").await,
        "WID-, BOX-"
    );
    assert_eq!(b.text("#wh-spare [data-col=priority]").await, "5");
    assert_eq!(b.text("#wh-spare [data-col=active]").await, "Active");
    no_secret_in(&b.source().await, "the list after adding");
    let (s, w) = store.get("/api/v1/warehouses/spare").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(w["countries"], json!(["GB", "DE"]), "{w}");
    assert_eq!(w["sku_prefixes"], json!(["WID-", "BOX-"]));
    assert_eq!(w["priority"], 5);
    assert_eq!(w["active"], true);
    assert_eq!(
        count(
            store,
            &format!(
                "SELECT COUNT(*) FROM warehouses WHERE name = 'spare' AND secret = '{}'",
                SECRETS[1]
            )
        )
        .await,
        1,
        "the secret typed is the one kept"
    );
    if shots(backend) {
        b.screenshot("warehouses").await;
    }

    // Changed: a bad priority first (nothing changes, the error is at the
    // field in spare's form, left open), then for real with a new secret.
    b.click_in_page("#change-spare summary").await;
    b.fill("#edit-spare-priority", "99999999").await;
    b.fill("#edit-spare-secret", SECRETS[2]).await;
    b.click("#edit-spare button[type=submit]").await;
    let err = b
        .text("#edit-spare .field.has-error #edit-spare-priority ~ p.error")
        .await;
    assert!(err.contains("between"), "{err}");
    assert_eq!(b.value("#edit-spare-secret").await, "");
    no_secret_in(&b.source().await, "the change form with errors");
    let (_, w) = store.get("/api/v1/warehouses/spare").await;
    assert_eq!(w["priority"], 5, "{w}");
    b.fill("#edit-spare-url", "http://127.0.0.1:10").await;
    b.fill("#edit-spare-countries", "").await;
    b.fill("#edit-spare-priority", "-3").await;
    b.fill("#edit-spare-secret", SECRETS[2]).await;
    b.click("#edit-spare button[type=submit]").await;
    assert!(b.page_text().await.contains("Warehouse spare saved"));
    assert_eq!(b.text("#wh-spare [data-col=countries]").await, "everywhere");
    no_secret_in(&b.source().await, "the list after a change");
    let (_, w) = store.get("/api/v1/warehouses/spare").await;
    assert_eq!(w["url"], "http://127.0.0.1:10", "{w}");
    assert_eq!(w["countries"], json!([]));
    assert_eq!(w["priority"], -3);
    assert_eq!(
        count(
            store,
            &format!(
                "SELECT COUNT(*) FROM warehouses WHERE name = 'spare' AND secret = '{}'",
                SECRETS[2]
            )
        )
        .await,
        1,
        "the new secret is kept"
    );
    // Saving without a secret keeps the one it has.
    b.click_in_page("#change-spare summary").await;
    b.fill("#edit-spare-priority", "-2").await;
    b.click("#edit-spare button[type=submit]").await;
    assert_eq!(
        count(
            store,
            &format!(
                "SELECT COUNT(*) FROM warehouses WHERE name = 'spare' AND secret = '{}'",
                SECRETS[2]
            )
        )
        .await,
        1,
        "an empty secret field changed the secret"
    );

    // Preferred now (priority -2, everywhere): a new widget order goes to
    // spare. Deactivated, the next goes to eu.
    let gb = |name: &str| {
        let mut o = order_body(name);
        o["lines"][0]["sku"] = json!("WID-9");
        o
    };
    let (_, o) = store.post("/api/v1/orders", &gb("Before")).await;
    assert_eq!(o["parts"][0]["warehouse"], "spare", "{o}");
    b.click_in_page("#change-spare summary").await;
    b.click_in_page("#edit-spare-active").await;
    b.click("#edit-spare button[type=submit]").await;
    assert_eq!(b.text("#wh-spare [data-col=active]").await, "Inactive");
    let (_, w) = store.get("/api/v1/warehouses/spare").await;
    assert_eq!(w["active"], false, "{w}");
    let (_, o) = store.post("/api/v1/orders", &gb("After")).await;
    assert_eq!(o["parts"][0]["warehouse"], "eu", "{o}");
    // Its orders still show, and it still lists with its delivery.
    assert!(
        b.text("#wh-spare [data-col=delivery]")
            .await
            .contains("waiting")
    );
    no_secret_in(&b.source().await, "the list after deactivating");

    // Without the CSRF token nothing is added.
    let session = b.cookie("store_admin_session").await.expect("session");
    let res = raw_http()
        .post(format!("{}/admin/warehouses", store.url))
        .header("cookie", format!("store_admin_session={session}"))
        .form(&[("name", "forged"), ("url", "http://127.0.0.1:11")])
        .send()
        .await
        .expect("post");
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert_eq!(
        count(
            store,
            "SELECT COUNT(*) FROM warehouses WHERE name = 'forged'"
        )
        .await,
        0
    );

    // The warehouse has no such page, and no link to it.
    sign_in(&b, &t.eu.url).await;
    assert!(!b.exists("a[href='/admin/warehouses']").await);
    b.goto(&format!("{}/admin/warehouses", t.eu.url)).await;
    assert!(b.page_text().await.contains("Not found"));
    b.close().await;
    stop(t).await;
}

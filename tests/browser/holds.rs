//! Typed holds in the admin UI, with one store and two warehouses (`eu`
//! takes widgets, `us` boxes): the store's payment hold stops both parts
//! of a split order, each warehouse lists it (and may not release it or
//! pick), a warehouse places and releases a hold of its own, and once the
//! store releases its hold both warehouses pick again. A bad hold shows
//! its errors and changes nothing. Each step is checked through the API
//! too, not only on the page.

use fantoccini::Locator;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::driver::Browser;
use crate::helpers::{Backend, Side, id_of, wait_for_order};
use crate::parts::{
    create, reload_until_exists, reload_until_text, setup, sign_in, split_widgets_and_boxes, stop,
};
use crate::{post_then_get, shots};

crate::both_backends!(a_store_payment_hold_blocks_then_releases);

/// One row of the holds table: `(type, placed_by, active)`, in the
/// page's order (active holds first).
async fn holds(b: &Browser) -> Vec<(String, String, bool)> {
    let mut out = Vec::new();
    for row in b
        .client
        .find_all(Locator::Css("#holds-table tbody tr"))
        .await
        .expect("hold rows")
    {
        let attr = |name: &'static str| {
            let row = row.clone();
            async move { row.attr(name).await.ok().flatten().unwrap_or_default() }
        };
        out.push((
            attr("data-hold-type").await,
            attr("data-placed-by").await,
            attr("data-active").await == "true",
        ));
    }
    out
}

fn row(kind: &str, by: &str, active: bool) -> (String, String, bool) {
    (kind.to_owned(), by.to_owned(), active)
}

/// Fills in and sends the "Place a hold" form (`kind` "" leaves the type
/// unchosen).
async fn place(b: &Browser, kind: &str, reason: &str) {
    b.find("#new-hold-type")
        .await
        .select_by_value(kind)
        .await
        .expect("choose the hold type");
    b.fill("#new-hold-reason", reason).await;
    b.click("#place-hold button[type=submit]").await;
}

/// Posts an admin form as the browser's session would, for requests the
/// page does not offer, and follows its redirect (post/redirect/get): the
/// status and body of the page that says how it went (a refusal is kept
/// for that page, which answers with its status, 409 or 422).
async fn post_form(
    b: &Browser,
    side: &Side,
    path: &str,
    form: &[(&str, &str)],
) -> (StatusCode, String) {
    let cookie_name = format!("{}_admin_session", side.role.as_str());
    let session = b.cookie(&cookie_name).await.expect("session cookie");
    let csrf = b
        .find("#place-hold input[name=csrf]")
        .await
        .prop("value")
        .await
        .expect("csrf")
        .expect("csrf value");
    let mut fields = vec![("csrf", csrf.as_str())];
    fields.extend_from_slice(form);
    post_then_get(
        &side.url,
        &format!("{cookie_name}={session}"),
        path,
        &fields,
    )
    .await
}

fn hold_id(holds: &Value, by: &str) -> String {
    holds
        .as_array()
        .expect("holds")
        .iter()
        .find(|h| h["placed_by"] == by)
        .and_then(|h| h["id"].as_str())
        .unwrap_or_else(|| panic!("no hold placed by the {by}: {holds}"))
        .to_owned()
}

async fn a_store_payment_hold_blocks_then_releases(backend: Backend) {
    let Some((t, b)) = setup(backend).await else {
        return;
    };
    split_widgets_and_boxes(&t.store).await;
    let o = create(&t.store, "Held Order", &[("WID-1", 2), ("BOX-1", 1)]).await;
    let id = id_of(&o);
    let second = id_of(&o["parts"][1]);
    wait_for_order(&t.eu, &id, "eu's part", |_| true).await;
    wait_for_order(&t.us, &second, "us's part", |_| true).await;
    let store_page = format!("{}/admin/orders/{id}", t.store.url);
    let eu_page = format!("{}/admin/orders/{id}", t.eu.url);
    let us_page = format!("{}/admin/orders/{second}", t.us.url);

    // A bad hold at the store: every error beside its field, what was
    // chosen kept, nothing changed.
    sign_in(&b, &t.store.url).await;
    b.goto(&store_page).await;
    assert!(b.exists("#no-holds").await, "holds on a new order");
    let (_, before) = t.store.get(&format!("/api/v1/orders/{id}")).await;
    place(&b, "", "").await;
    let err = b.text(".field.has-error #new-hold-type ~ p.error").await;
    assert_eq!(err, "Type is required");
    let err = b.text(".field.has-error #new-hold-reason ~ p.error").await;
    assert!(err.starts_with("Reason must not be empty"), "{err}");
    place(&b, "payment", "   ").await;
    let err = b.text(".field.has-error #new-hold-reason ~ p.error").await;
    assert!(err.starts_with("Reason"), "{err}");
    assert!(
        !b.exists(".field.has-error #new-hold-type").await,
        "the type was chosen"
    );
    assert_eq!(b.value("#new-hold-type").await, "payment", "choice kept");
    assert!(b.exists("#no-holds").await);
    let (_, after) = t.store.get(&format!("/api/v1/orders/{id}")).await;
    assert_eq!(
        after["sync"]["store_version"], before["sync"]["store_version"],
        "{after}"
    );
    assert_eq!(after["parts"][0]["holds"], json!([]), "{after}");
    assert_eq!(after["parts"][1]["holds"], json!([]), "{after}");

    // The store holds the order for a payment check.
    place(&b, "payment", "card declined").await;
    assert!(b.page_text().await.contains("Hold placed"));
    assert_eq!(holds(&b).await, [row("payment", "store", true)]);
    assert!(
        b.text("#holds-table tr[data-placed-by=store] [data-col=reason]")
            .await
            .contains("card declined")
    );
    assert!(
        b.exists("#holds-table tr[data-placed-by=store] form[action$='/release'] button")
            .await,
        "no release button on the store's own hold"
    );
    let (_, o) = t.store.get(&format!("/api/v1/orders/{id}")).await;
    let payment = hold_id(&o["parts"][0]["holds"], "store");
    assert_eq!(o["parts"][1]["holds"][0]["id"], payment.as_str(), "{o}");
    assert_eq!(o["parts"][0]["holds"][0]["type"], "payment", "{o}");

    // eu: the part is on hold, the store's hold listed without a button,
    // and nothing to pick or release.
    sign_in(&b, &t.eu.url).await;
    b.goto(&eu_page).await;
    reload_until_text(&b, 20, "#fulfillment-status", "On hold").await;
    assert_eq!(holds(&b).await, [row("payment", "store", true)]);
    let note = b
        .text("#holds-table tr[data-placed-by=store] [data-col=release]")
        .await;
    assert_eq!(note, "placed by the store \u{2014} released there");
    assert!(!b.exists("#holds-table form").await, "a release button");
    assert!(!b.exists("button[value=pick]").await, "pick offered");
    assert!(
        !b.exists("button[value=release]").await,
        "release offered for the store's hold"
    );
    assert!(b.exists("#held-by-store").await);
    // Sent anyway, both are refused (409) and change nothing.
    let fulfillment = format!("/admin/orders/{id}/fulfillment");
    let (s, _) = post_form(&b, &t.eu, &fulfillment, &[("action", "pick")]).await;
    assert_eq!(s, StatusCode::CONFLICT);
    let (s, body) = post_form(&b, &t.eu, &fulfillment, &[("action", "release")]).await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert!(body.contains("the store releases them"), "{body}");
    let release_payment = format!("/admin/orders/{id}/holds/{payment}/release");
    let (s, body) = post_form(&b, &t.eu, &release_payment, &[]).await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert!(
        body.contains("Not released") && body.contains("only the store releases it"),
        "{body}"
    );
    let (_, at_eu) = t.eu.get(&format!("/api/v1/orders/{id}")).await;
    assert_eq!(at_eu["status"], "on_hold", "{at_eu}");
    assert_eq!(at_eu["holds"][0]["released_at"], Value::Null, "{at_eu}");

    // eu holds its part for stock too: two holds, a button on its own.
    place(&b, "stock", "recount").await;
    assert!(b.page_text().await.contains("Hold placed"));
    assert_eq!(
        holds(&b).await,
        [
            row("payment", "store", true),
            row("stock", "warehouse", true)
        ]
    );
    assert!(
        b.exists("#holds-table tr[data-placed-by=warehouse] form[action$='/release'] button")
            .await
    );
    let (_, at_eu) = t.eu.get(&format!("/api/v1/orders/{id}")).await;
    let stock = hold_id(&at_eu["holds"], "warehouse");
    if shots(backend) {
        b.screenshot("warehouse-order-holds").await;
    }

    // The store lists both; eu's without a button, and refuses to
    // release it.
    sign_in(&b, &t.store.url).await;
    b.goto(&store_page).await;
    reload_until_exists(
        &b,
        20,
        "eu's hold on the store's page",
        "#holds-table tr[data-placed-by=warehouse][data-warehouse=eu]",
    )
    .await;
    assert_eq!(
        holds(&b).await,
        [
            row("payment", "store", true),
            row("stock", "warehouse", true)
        ]
    );
    let eu_row = "#holds-table tr[data-placed-by=warehouse]";
    assert_eq!(
        b.text(&format!("{eu_row} [data-col=release]")).await,
        "released by warehouse eu"
    );
    assert!(!b.exists(&format!("{eu_row} form")).await);
    let by = b.text(&format!("{eu_row} [data-col=by]")).await;
    assert!(by.contains("warehouse eu") && by.contains("part 1"), "{by}");
    let (s, body) = post_form(
        &b,
        &t.store,
        &format!("/admin/orders/{id}/holds/{stock}/release"),
        &[],
    )
    .await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert!(body.contains("warehouse eu placed this hold"), "{body}");

    // eu releases its own: still held, by the store's.
    sign_in(&b, &t.eu.url).await;
    b.goto(&eu_page).await;
    b.click("#holds-table tr[data-placed-by=warehouse] form button")
        .await;
    assert!(b.page_text().await.contains("Hold released"));
    assert_eq!(b.text("#fulfillment-status").await, "On hold");
    assert_eq!(
        holds(&b).await,
        [
            row("payment", "store", true),
            row("stock", "warehouse", false)
        ]
    );
    assert!(!b.exists("button[value=pick]").await);
    let (_, at_eu) = t.eu.get(&format!("/api/v1/orders/{id}")).await;
    assert_eq!(at_eu["status"], "on_hold", "{at_eu}");
    assert_eq!(at_eu["hold_reason"], "card declined", "{at_eu}");

    // us: held by the store too, nothing to pick.
    sign_in(&b, &t.us.url).await;
    b.goto(&us_page).await;
    reload_until_text(&b, 20, "#fulfillment-status", "On hold").await;
    assert_eq!(holds(&b).await, [row("payment", "store", true)]);
    assert!(!b.exists("button[value=pick]").await);
    assert!(!b.exists("#holds-table form").await);

    // The store lists both (eu's released) and releases its own.
    sign_in(&b, &t.store.url).await;
    b.goto(&store_page).await;
    reload_until_exists(
        &b,
        20,
        "eu's hold released on the store's page",
        "#holds-table tr[data-placed-by=warehouse][data-active=false]",
    )
    .await;
    assert_eq!(
        holds(&b).await,
        [
            row("payment", "store", true),
            row("stock", "warehouse", false)
        ]
    );
    if shots(backend) {
        b.screenshot("store-order-holds").await;
    }
    b.click("#holds-table tr[data-placed-by=store] form button")
        .await;
    assert!(b.page_text().await.contains("Hold released"));
    assert_eq!(
        holds(&b).await,
        [
            row("payment", "store", false),
            row("stock", "warehouse", false)
        ]
    );
    assert!(!b.exists("#holds-table form").await);
    // Released twice: refused, said above the page.
    let (s, body) = post_form(&b, &t.store, &release_payment, &[]).await;
    assert_eq!(s, StatusCode::CONFLICT);
    assert!(body.contains("already released"), "{body}");
    let (_, o) = t.store.get(&format!("/api/v1/orders/{id}")).await;
    assert!(o["parts"][0]["holds"][0]["released_at"].is_string(), "{o}");

    // Both warehouses pick again.
    for (side, page) in [(&t.eu, &eu_page), (&t.us, &us_page)] {
        sign_in(&b, &side.url).await;
        b.goto(page).await;
        reload_until_text(&b, 20, "#fulfillment-status", "Pending").await;
        assert!(!b.exists("#held-by-store").await);
        b.click("button[value=pick]").await;
        assert!(b.page_text().await.contains("Picking started"));
    }
    let (_, at_eu) = t.eu.get(&format!("/api/v1/orders/{id}")).await;
    assert_eq!(at_eu["status"], "picking", "{at_eu}");
    let (_, at_us) = t.us.get(&format!("/api/v1/orders/{second}")).await;
    assert_eq!(at_us["status"], "picking", "{at_us}");
    wait_for_order(&t.store, &id, "both parts picking at the store", |o| {
        o["parts"][0]["status"] == "picking"
            && o["parts"][1]["status"] == "picking"
            && o["fulfillment"]["holds"] == json!([])
    })
    .await;
    b.close().await;
    stop(t).await;
}

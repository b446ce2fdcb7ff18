//! The order page as an operator reads it, at 1280 px and at phone width
//! (390 px): the warehouse's next step comes first on a phone (above
//! lines, customer and details), the store's status and actions too;
//! audit entries read `field: old → new`; timeline times have seconds and
//! a relative time; identical failed deliveries fold into one row with a
//! count, and the moment delivery stopped is an event of its own; at the
//! store, a split order shows each part's deliveries and sync under its
//! warehouse. Each page check is backed by the API or SQL.

use fantoccini::Locator;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::driver::{Browser, TextContains};
use crate::helpers::{
    Backend, Pair, create_dead_letters, create_order, id_of, short_horizon, wait_for_order,
};
use crate::{ADMIN, PASSWORD, add_admin, driver};

crate::both_backends!(
    next_step_comes_first_on_a_phone_and_audit_reads_from_to,
    repeated_failures_fold_and_the_stop_is_marked,
    a_split_orders_page_shows_each_parts_deliveries_and_trail,
);

/// Services (with `tweak`), admins on both sides and a browser; `None` to
/// skip.
async fn setup(
    backend: Backend,
    tweak: impl Fn(&mut fulfillment::service::ServiceConfig),
) -> Option<(Pair, Browser)> {
    if !driver::available() {
        return None;
    }
    let pair = Pair::start_with(backend, tweak).await?;
    for side in [&pair.store, &pair.warehouse] {
        add_admin(side, ADMIN, PASSWORD).await;
    }
    Some((pair, Browser::start().await))
}

/// Where the first element matching `css` is on the page: `(left, top)`
/// in CSS pixels from the page's top-left corner.
async fn place(b: &Browser, css: &str) -> (f64, f64) {
    let v = b
        .client
        .execute(
            "const e = document.querySelector(arguments[0]); if (!e) { return null; } \
             const r = e.getBoundingClientRect(); \
             return [r.left + window.scrollX, r.top + window.scrollY];",
            vec![json!(css)],
        )
        .await
        .expect("script");
    match v.as_array().map(|a| (a[0].as_f64(), a[1].as_f64())) {
        Some((Some(x), Some(y))) => (x, y),
        _ => panic!("no element {css:?} on {}", b.url().await),
    }
}

async fn top(b: &Browser, css: &str) -> f64 {
    place(b, css).await.1
}

/// The window's inner width (the layout's width).
async fn inner_width(b: &Browser) -> i64 {
    b.client
        .execute("return window.innerWidth", vec![])
        .await
        .expect("script")
        .as_i64()
        .expect("a width")
}

/// The texts of every element matching `css`, in page order.
async fn texts(b: &Browser, css: &str) -> Vec<String> {
    let mut out = Vec::new();
    for el in b.client.find_all(Locator::Css(css)).await.expect("find") {
        out.push(el.text().await.expect("text"));
    }
    out
}

/// `HH:MM:SS` somewhere in `s`.
fn has_seconds(s: &str) -> bool {
    let b = s.as_bytes();
    b.windows(8).any(|w| {
        let d = |i: usize| w[i].is_ascii_digit();
        d(0) && d(1) && w[2] == b':' && d(3) && d(4) && w[5] == b':' && d(6) && d(7)
    })
}

/// Every timeline time on the page has seconds, and a relative time
/// beside it; returns how many there are.
async fn assert_times_have_seconds(b: &Browser) -> usize {
    let times = texts(b, "#deliveries .t-when, #audit .t-when").await;
    for t in &times {
        assert!(has_seconds(t), "a timeline time without seconds: {t:?}");
        assert!(
            t.ends_with(" ago") || t.ends_with("now"),
            "no relative time in {t:?}"
        );
    }
    times.len()
}

/// The audit rows for `field` on the page: `(from, to)`.
async fn audit_changes(b: &Browser, field: &str) -> Vec<(String, String)> {
    let from = texts(b, &format!("#audit li[data-field={field}] .d-from")).await;
    let to = texts(b, &format!("#audit li[data-field={field}] .d-to")).await;
    from.into_iter().zip(to).collect()
}

async fn next_step_comes_first_on_a_phone_and_audit_reads_from_to(backend: Backend) {
    let Some((pair, b)) = setup(backend, |_| {}).await else {
        return;
    };
    let (store, wh) = (&pair.store, &pair.warehouse);
    let id = id_of(&create_order(store, "Phone Picker").await);
    wait_for_order(wh, &id, "the order reaches the warehouse", |_| true).await;
    b.login(&wh.url, ADMIN, PASSWORD).await;
    let page = format!("{}/admin/orders/{id}", wh.url);
    b.goto(&page).await;

    // 1280 px: two columns, the next step in the first screen.
    assert_eq!(inner_width(&b).await, 1280);
    let first = "#transitions button[name=action]";
    assert_eq!(
        b.find(first).await.attr("value").await.expect("attr"),
        Some("pick".into())
    );
    let (lines_x, _) = place(&b, "#lines-card").await;
    let (side_x, side_y) = place(&b, "#fulfillment").await;
    assert!(
        side_x > lines_x + 300.0,
        "not two columns at 1280 px: {lines_x} / {side_x}"
    );
    assert!(side_y < 400.0, "the fulfillment card starts at {side_y}");
    assert!(top(&b, first).await < 900.0);

    // 390 px: one column, the next step before lines, customer and details.
    b.set_window_size(390, 844).await;
    assert_eq!(inner_width(&b).await, 390, "the window is not phone-wide");
    b.goto(&page).await;
    let button = top(&b, first).await;
    assert!(
        button < 700.0,
        "the first action button is {button} px down at 390 px"
    );
    for below in ["#lines-card", "#customer-name", "#holds"] {
        let y = top(&b, below).await;
        assert!(
            button < y,
            "{below} ({y}) comes before the next step ({button})"
        );
    }
    let (lines_x, _) = place(&b, "#lines-card").await;
    let (side_x, _) = place(&b, "#fulfillment").await;
    assert!(
        (side_x - lines_x).abs() < 1.0,
        "not one column: {side_x} / {lines_x}"
    );
    let overflow = b
        .client
        .execute(
            "return document.documentElement.scrollWidth - window.innerWidth",
            vec![],
        )
        .await
        .expect("script")
        .as_i64()
        .unwrap_or(0);
    assert!(
        overflow <= 0,
        "the page is {overflow} px wider than the phone"
    );

    // A step taken on the phone: the audit shows the status from → to.
    b.click("button[value=pick]").await;
    assert!(
        top(&b, first).await < 700.0,
        "after a step, the next one is below the first screen"
    );
    assert_eq!(
        audit_changes(&b, "status").await,
        [("Pending".to_owned(), "Picking".to_owned())]
    );
    let row = b.text("#audit li[data-field=status]").await;
    assert!(row.contains("status: Pending → Picking"), "{row}");
    assert!(
        b.text("#audit li.a-entry:last-child .actor")
            .await
            .contains("admin: admin")
    );
    assert!(assert_times_have_seconds(&b).await >= 2);
    let (s, audit) = wh.get(&format!("/api/v1/orders/{id}/audit")).await;
    assert_eq!(s, StatusCode::OK);
    let last = audit["items"]
        .as_array()
        .and_then(|a| a.last())
        .cloned()
        .unwrap_or(Value::Null);
    assert_eq!(
        last["diff"],
        json!([{"field": "status", "from": "pending", "to": "picking"}])
    );
    assert_eq!(last["actor"], json!({"kind": "admin", "name": "admin"}));
    let (_, o) = wh.get(&format!("/api/v1/orders/{id}")).await;
    assert_eq!(o["status"], "picking");

    // The store at 390 px: status and actions first; the status it
    // learned reads from → to, and deliveries have seconds.
    let (s, _) = store
        .post(
            &format!("/api/v1/orders/{id}/cancel"),
            &json!({"reason": "wrong size"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    wait_for_order(store, &id, "the cancel is answered", |o| {
        o["fulfillment"]["status"] == "cancelled"
    })
    .await;
    b.login(&store.url, ADMIN, PASSWORD).await;
    b.goto(&format!("{}/admin/orders/{id}", store.url)).await;
    b.reload_until(
        20,
        "the store's page shows the cancellation",
        TextContains("Cancelled"),
    )
    .await;
    let status_y = top(&b, "#fulfillment").await;
    for below in ["#lines-card", "#customer-name", "#parts"] {
        let y = top(&b, below).await;
        assert!(
            status_y < y,
            "{below} ({y}) comes before the status ({status_y})"
        );
    }
    let statuses = audit_changes(&b, "status").await;
    assert_eq!(
        statuses.last().map(|(_, to)| to.as_str()),
        Some("Cancelled"),
        "{statuses:?}"
    );
    assert_eq!(statuses[0].0, "none", "{statuses:?}");
    let cancel = audit_changes(&b, "cancel_request").await;
    assert_eq!(
        cancel,
        [("none".to_owned(), "requested: wrong size".to_owned())]
    );
    // An object is summarised; its whole value is a click away.
    assert!(
        b.exists("#audit li[data-field=cancel_request] details.d-full")
            .await
    );
    assert!(
        b.exists("#deliveries li[data-outcome=applied]").await,
        "no delivery on the store's page"
    );
    assert!(assert_times_have_seconds(&b).await >= 3);
    // What the page says is what the API says.
    let (_, audit) = store.get(&format!("/api/v1/orders/{id}/audit")).await;
    let api_statuses: Vec<&Value> = audit["items"]
        .as_array()
        .expect("items")
        .iter()
        .flat_map(|e| e["diff"].as_array().into_iter().flatten())
        .filter(|c| c["field"] == "status")
        .collect();
    assert_eq!(api_statuses.len(), statuses.len(), "{audit}");
    assert_eq!(
        api_statuses.last().map(|c| &c["to"]),
        Some(&json!("cancelled"))
    );
    b.close().await;
    pair.stop().await;
}

async fn repeated_failures_fold_and_the_stop_is_marked(backend: Backend) {
    let Some((mut pair, b)) = setup(backend, short_horizon).await else {
        return;
    };
    // The warehouse is down: every delivery fails the same way until the
    // store gives up (a dead letter).
    pair.warehouse.stop().await;
    let id = create_dead_letters(&pair.store, &["Down Dora"])
        .await
        .remove(0);
    let store = &pair.store;
    let (s, sync) = store.get(&format!("/api/v1/orders/{id}/sync")).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(sync["state"], "dead", "{sync}");
    let attempts = sync["attempts"].as_array().cloned().unwrap_or_default();
    assert!(attempts.len() >= 2, "failed only once: {sync}");
    for a in &attempts {
        assert_eq!(a["outcome"], "error", "{sync}");
        assert_eq!(a["detail"], attempts[0]["detail"], "not identical: {sync}");
    }
    let stopped: Vec<String> = store
        .sql(&format!(
            "SELECT CAST(dead_letter AS TEXT) FROM sync_attempts WHERE order_id = '{id}' ORDER BY id"
        ))
        .await;
    assert_eq!(stopped.len(), attempts.len());
    assert_eq!(
        stopped.last().map(String::as_str),
        Some("1"),
        "the last attempt stopped delivery: {stopped:?}"
    );
    assert_eq!(stopped.iter().filter(|s| *s == "1").count(), 1);

    b.login(&store.url, ADMIN, PASSWORD).await;
    let page = format!("{}/admin/orders/{id}", store.url);
    b.goto(&page).await;
    let rows = "#deliveries ol.timeline > li";
    let kinds = texts(&b, rows).await;
    assert_eq!(
        kinds.len(),
        2,
        "one stop event and one folded row: {kinds:?}"
    );
    assert!(b.exists(&format!("{rows}:first-child[data-stopped]")).await);
    assert!(kinds[0].contains("Dead letter") && kinds[0].contains("Delivery stopped here"));
    let folded = b
        .find("#deliveries li[data-outcome=error]")
        .await
        .attr("data-count")
        .await
        .expect("attr");
    assert_eq!(folded, Some(attempts.len().to_string()));
    assert!(
        kinds[1].contains(&format!("× {}", attempts.len())),
        "{:?}",
        kinds[1]
    );
    assert!(kinds[1].contains("since"), "no first time: {:?}", kinds[1]);
    assert_times_have_seconds(&b).await;
    // The stop says why once, and what to do.
    let alert = b.text("#stopped").await;
    assert!(
        alert.to_lowercase().matches("last error").count() <= 1,
        "{alert}"
    );
    assert!(
        alert.contains("Why it stopped") && alert.contains("replay"),
        "{alert}"
    );
    let sync_card = b.text("#sync-card").await;
    assert!(sync_card.contains("Why it stopped"), "{sync_card}");
    assert!(
        sync_card.to_lowercase().matches("last error").count() <= 1,
        "{sync_card}"
    );

    // Back up and replayed: delivered, and the stop stays in the history.
    pair.warehouse.restart().await;
    let store = &pair.store;
    let (s, r) = store
        .post("/api/v1/sync/replay", &json!({"ids": [id]}))
        .await;
    assert_eq!(s, StatusCode::OK, "{r}");
    wait_for_order(store, &id, "the replay is delivered", |o| {
        o["sync"]["state"] == "synced"
    })
    .await;
    b.goto(&page).await;
    let kinds = texts(&b, rows).await;
    assert!(
        b.exists(&format!("{rows}:first-child[data-outcome=applied]"))
            .await,
        "{kinds:?}"
    );
    assert!(b.exists("#deliveries li[data-stopped]").await, "{kinds:?}");
    assert!(!b.exists("#stopped").await, "still says it stopped");
    b.close().await;
    pair.stop().await;
}

/// At the store, an order split between `eu` and `us`: the page has a
/// delivery timeline and sync facts per part, each under its warehouse,
/// and the trail shows what the second part's warehouse reported.
async fn a_split_orders_page_shows_each_parts_deliveries_and_trail(backend: Backend) {
    use crate::parts::{create, reload_until_exists, sign_in, split_widgets_and_boxes, stop};
    let Some((t, b)) = crate::parts::setup(backend).await else {
        return;
    };
    split_widgets_and_boxes(&t.store).await;
    let o = create(&t.store, "Split Timelines", &[("WID-1", 1), ("BOX-1", 2)]).await;
    let id = id_of(&o);
    let second = id_of(&o["parts"][1]);
    wait_for_order(&t.us, &second, "us's part", |_| true).await;
    let (s, r) =
        t.us.post(
            &format!("/api/v1/orders/{second}/fulfillment"),
            &json!({"status": "picking"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{r}");
    wait_for_order(&t.store, &id, "us's picking reaches the store", |o| {
        o["parts"][1]["status"] == "picking"
    })
    .await;

    sign_in(&b, &t.store.url).await;
    b.goto(&format!("{}/admin/orders/{id}", t.store.url)).await;
    reload_until_exists(
        &b,
        20,
        "us's part's deliveries",
        ".deliveries[data-warehouse=us] li[data-outcome=applied]",
    )
    .await;
    assert!(
        b.exists(".deliveries[data-warehouse=eu] li[data-outcome=applied]")
            .await
    );
    let heads = texts(&b, "#deliveries .deliveries h3").await;
    assert_eq!(heads.len(), 2, "{heads:?}");
    assert!(heads[1].to_lowercase().contains("us (part 2"), "{heads:?}");
    let sync: Vec<String> = texts(&b, "#sync-card .sync-part").await;
    assert_eq!(sync.len(), 2, "{sync:?}");
    assert!(sync[0].contains("eu") && sync[1].contains("us"), "{sync:?}");
    // us's report on its part, labelled, among the order's entries.
    let rows = texts(&b, "#audit li.a-entry").await;
    let us_row = rows
        .iter()
        .find(|r| r.contains("part 2 at us") && r.contains("Pending → Picking"))
        .unwrap_or_else(|| panic!("no entry of us's picking: {rows:?}"));
    assert!(us_row.contains("sync: us"), "{us_row}");
    assert_times_have_seconds(&b).await;
    // The API says the same of the part.
    let (_, audit) = t.store.get(&format!("/api/v1/orders/{second}/audit")).await;
    let picked = audit["items"]
        .as_array()
        .expect("items")
        .iter()
        .flat_map(|e| e["diff"].as_array().into_iter().flatten())
        .any(|c| *c == json!({"field": "status", "from": "pending", "to": "picking"}));
    assert!(picked, "{audit}");
    b.close().await;
    stop(t).await;
}

//! Browser tests of the admin UI: real store and warehouse services (the API
//! tests' harness) driven through headless Chromium, once on SQLite and once
//! on PostgreSQL. Each test checks the state afterwards (through the API or
//! SQL), not only what the page shows.
//!
//! `FULFILLMENT_SCREENSHOTS=1` saves screenshots of the main pages to
//! docs/screenshots/ (from the SQLite run).

#[path = "../common/mod.rs"]
mod common;
#[allow(dead_code)]
#[path = "../api/helpers.rs"]
mod helpers;

mod driver;
mod holds;
mod lists;
mod order_page;
mod parts;
mod sync_page;

use driver::{Browser, TextContains};
use fulfillment::engine::credentials;
use helpers::{Backend, Pair, Side, create_order, id_of, wait_for_order};
use reqwest::StatusCode;

const ADMIN: &str = "admin";
const PASSWORD: &str = "correct horse battery";

both_backends!(
    store_creates_and_warehouse_ships,
    wrong_password_gives_no_session_and_repeats_lock_out,
    forms_without_csrf_token_are_refused,
    customer_text_is_escaped_on_both_sides,
    validation_errors_show_next_to_fields_and_keep_values,
    warehouse_buttons_follow_the_state_machine,
    tokens_are_shown_once_and_revoked,
);

/// Services, admins on both sides and a browser; `None` to skip.
async fn setup(backend: Backend) -> Option<(Pair, Browser)> {
    if !driver::available() {
        return None;
    }
    let pair = Pair::start(backend).await?;
    for side in [&pair.store, &pair.warehouse] {
        add_admin(side, ADMIN, PASSWORD).await;
    }
    let browser = Browser::start().await;
    Some((pair, browser))
}

async fn add_admin(side: &Side, user: &str, password: &str) {
    let db = side.service.as_ref().expect("running").engine().db();
    credentials::create_user(db, user, password)
        .await
        .expect("create admin user");
}

fn shots(backend: Backend) -> bool {
    backend == Backend::Sqlite
}

async fn count(side: &Side, sql: &str) -> i64 {
    side.sql(sql)
        .await
        .first()
        .and_then(|v| v.parse().ok())
        .expect("a count")
}

/// An HTTP client that keeps cookies out of it and does not follow
/// redirects, for requests a browser form would never send.
fn raw_http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client")
}

/// Posts an admin form with a session `cookie` (for requests the pages do
/// not offer) and follows its redirect (post/redirect/get): the status and
/// body of the page that says how it went. A refusal is kept for that page,
/// which answers with its status (409, 422).
async fn post_then_get(
    base: &str,
    cookie: &str,
    path: &str,
    form: &[(&str, &str)],
) -> (StatusCode, String) {
    let http = raw_http();
    let res = http
        .post(format!("{base}{path}"))
        .header("cookie", cookie)
        .form(form)
        .send()
        .await
        .expect("post");
    assert_eq!(res.status(), StatusCode::SEE_OTHER, "{path}: no redirect");
    let to = res.headers()["location"]
        .to_str()
        .expect("location")
        .to_owned();
    let res = http
        .get(format!("{base}{to}"))
        .header("cookie", cookie)
        .send()
        .await
        .expect("get");
    let status = res.status();
    (status, res.text().await.expect("body"))
}

// ---------------------------------------------------------------------------

async fn store_creates_and_warehouse_ships(backend: Backend) {
    let Some((pair, b)) = setup(backend).await else {
        return;
    };
    let (store, wh) = (&pair.store, &pair.warehouse);

    b.login(&store.url, ADMIN, PASSWORD).await;
    b.goto(&format!("{}/admin/orders/new", store.url)).await;
    b.fill("#customer-name", "Grace Hopper").await;
    b.fill("#customer-email", "grace@example.com").await;
    b.fill("#customer-company", "Navy").await;
    b.fill("#shipping-address-name", "Grace Hopper").await;
    b.fill("#shipping-address-line1", "1 Harbour Road").await;
    b.fill("#shipping-address-city", "Arlington").await;
    b.fill("#shipping-address-postal-code", "22201").await;
    b.fill("#shipping-address-country", "US").await;
    b.fill("#currency", "USD").await;
    b.fill("#shipping-cost", "4.95").await;
    b.fill("#notes", "Ring twice").await;
    b.fill("#lines-0-sku", "COB-1").await;
    b.fill("#lines-0-name", "COBOL manual").await;
    b.fill("#lines-0-quantity", "2").await;
    b.fill("#lines-0-unit-price", "19.99").await;
    // The script adds a row in the page (no round trip).
    b.click_in_page("[data-add-line]").await;
    assert_eq!(
        b.path().await,
        "/admin/orders/new",
        "add line left the page"
    );
    b.fill("#lines-1-sku", "BUG-9").await;
    b.fill("#lines-1-name", "Moth (framed)").await;
    b.fill("#lines-1-quantity", "1").await;
    b.fill("#lines-1-unit-price", "5").await;
    if shots(backend) {
        b.screenshot("store-new-order").await;
    }
    b.click(".form-actions .btn-primary").await;

    let path = b.path().await;
    let id = path
        .strip_prefix("/admin/orders/")
        .expect("lands on the new order's page")
        .to_owned();
    assert!(b.page_text().await.contains("Order created"));
    let (status, order) = store.get(&format!("/api/v1/orders/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(order["customer"]["name"], "Grace Hopper");
    assert_eq!(order["lines"].as_array().map(Vec::len), Some(2));
    assert_eq!(order["lines"][1]["sku"], "BUG-9");
    assert_eq!(order["lines"][1]["unit_price"], 500);
    assert_eq!(order["currency"], "USD");
    assert_eq!(order["total"], 2 * 1999 + 500 + 495);
    assert_eq!(order["notes"], "Ring twice");
    let number = order["number"].as_str().expect("number").to_owned();
    assert_eq!(b.text("#order-total").await, "49.93 USD");

    // Edited while the warehouse has not started: one more COBOL manual.
    b.click(&format!("a[href='/admin/orders/{id}/edit']")).await;
    assert_eq!(b.value("#lines-0-quantity").await, "2");
    assert_eq!(b.value("#lines-1-unit-price").await, "5.00");
    b.fill("#lines-0-quantity", "3").await;
    b.click(".form-actions .btn-primary").await;
    assert!(b.page_text().await.contains("Changes saved"));
    let (_, order) = store.get(&format!("/api/v1/orders/{id}")).await;
    assert_eq!(order["lines"][0]["quantity"], 3);
    assert_eq!(order["total"], 3 * 1999 + 500 + 495);
    assert_eq!(order["currency"], "USD");

    // The warehouse sees it (after sync) and ships it.
    wait_for_order(wh, &id, "the edit reaches the warehouse", |o| {
        o["lines"][0]["quantity"] == 3
    })
    .await;
    b.login(&wh.url, ADMIN, PASSWORD).await;
    b.reload_until(
        20,
        "the order reaches the warehouse list",
        TextContains(&number),
    )
    .await;
    if shots(backend) {
        b.screenshot("warehouse-orders").await;
    }
    b.click(&format!("a[href='/admin/orders/{id}']")).await;
    assert!(
        !b.page_text().await.contains("USD"),
        "money on the warehouse page"
    );
    b.click("button[value=pick]").await;
    assert!(b.page_text().await.contains("Picking started"));
    b.click("button[value=pack]").await;
    b.fill("#carrier-input", "UPS").await;
    b.fill("#tracking-input", "1Z999AA10123456784").await;
    b.click("button[value=ship]").await;
    assert!(b.page_text().await.contains("Marked as shipped"));
    assert_eq!(b.text("#carrier").await, "UPS");
    let (_, w) = wh.get(&format!("/api/v1/orders/{id}")).await;
    assert_eq!(w["status"], "shipped");
    assert_eq!(w["tracking_number"], "1Z999AA10123456784");

    // Back at the store: carrier and tracking arrive through sync.
    b.goto(&format!("{}/admin/orders/{id}", store.url)).await;
    b.reload_until(
        20,
        "the store's order page shows the shipment",
        TextContains("1Z999AA10123456784"),
    )
    .await;
    assert_eq!(b.text("#carrier").await, "UPS");
    assert_eq!(b.text("#fulfillment-status").await, "Shipped");
    // Editing is closed now, and the edit page says why.
    assert!(
        !b.exists(&format!("a[href='/admin/orders/{id}/edit']"))
            .await
    );
    b.goto(&format!("{}/admin/orders/{id}/edit", store.url))
        .await;
    assert!(
        b.page_text()
            .await
            .contains("the warehouse has already started on this order"),
        "no reason given for the closed edit"
    );
    let o = wait_for_order(store, &id, "shipped at the store", |o| {
        o["fulfillment"]["status"] == "shipped"
    })
    .await;
    assert_eq!(o["fulfillment"]["carrier"], "UPS");
    // The audit trail names the admin on both sides.
    let audit = b.page_text().await;
    assert!(
        audit.contains("admin: admin"),
        "audit trail lacks the admin"
    );
    if shots(backend) {
        b.goto(&format!("{}/admin/orders/{id}", store.url)).await;
        b.screenshot("store-order").await;
        // A few more orders, so that the list looks like a list.
        for name in ["Ada Lovelace", "Alan Turing", "Katherine Johnson"] {
            create_order(store, name).await;
        }
        let last = id_of(&create_order(store, "Edsger Dijkstra").await);
        store
            .post(
                &format!("/api/v1/orders/{last}/cancel"),
                &serde_json::json!({}),
            )
            .await;
        wait_for_order(store, &last, "cancel answered", |o| {
            o["fulfillment"]["status"] == "cancelled"
        })
        .await;
        b.goto(&format!("{}/admin/orders", store.url)).await;
        b.screenshot("orders").await;
        b.goto(&format!("{}/admin/sync", store.url)).await;
        b.screenshot("sync").await;
    }
    b.close().await;
    pair.stop().await;
}

async fn wrong_password_gives_no_session_and_repeats_lock_out(backend: Backend) {
    let Some((pair, b)) = setup(backend).await else {
        return;
    };
    let store = &pair.store;
    b.goto(&format!("{}/admin/login", store.url)).await;
    if shots(backend) {
        b.screenshot("login").await;
    }
    let cookie_name = "store_admin_session";

    b.fill("#username", ADMIN).await;
    b.fill("#password", "not the password").await;
    b.click("form button[type=submit]").await;
    assert_eq!(b.path().await, "/admin/login");
    assert!(b.page_text().await.contains("Wrong username or password"));
    assert_eq!(
        b.cookie(cookie_name).await,
        None,
        "a session cookie was set"
    );
    assert_eq!(count(store, "SELECT COUNT(*) FROM admin_sessions").await, 0);
    b.goto(&format!("{}/admin/orders", store.url)).await;
    assert_eq!(
        b.path().await,
        "/admin/login",
        "orders reachable without a session"
    );

    // Four more failures lock the username; then even the right password
    // is refused, and no session is made.
    for _ in 0..4 {
        b.goto(&format!("{}/admin/login", store.url)).await;
        b.fill("#username", ADMIN).await;
        b.fill("#password", "still wrong").await;
        b.click("form button[type=submit]").await;
    }
    assert!(b.page_text().await.contains("locked"), "no lockout message");
    b.goto(&format!("{}/admin/login", store.url)).await;
    b.fill("#username", ADMIN).await;
    b.fill("#password", PASSWORD).await;
    b.click("form button[type=submit]").await;
    assert_eq!(b.path().await, "/admin/login");
    let text = b.page_text().await;
    assert!(
        text.contains("Sign-in is locked"),
        "locked user got in: {text}"
    );
    assert_eq!(count(store, "SELECT COUNT(*) FROM admin_sessions").await, 0);
    // Five failures and the refused attempt, counted for this address.
    assert_eq!(
        count(
            store,
            "SELECT failures FROM admin_login_throttle WHERE username = 'admin'"
        )
        .await,
        6
    );

    // The lock is per username: another admin signs in, and signing out
    // deletes the session row.
    add_admin(store, "second", PASSWORD).await;
    b.login(&store.url, "second", PASSWORD).await;
    assert_eq!(count(store, "SELECT COUNT(*) FROM admin_sessions").await, 1);
    let stored = store.sql("SELECT id_hash FROM admin_sessions").await;
    let cookie = b.cookie(cookie_name).await.expect("session cookie");
    assert_ne!(stored[0], cookie, "the session id is stored in clear");
    b.click(".signout button").await;
    assert_eq!(b.path().await, "/admin/login");
    assert_eq!(count(store, "SELECT COUNT(*) FROM admin_sessions").await, 0);
    // The old cookie no longer opens anything.
    let res = raw_http()
        .get(format!("{}/admin/orders", store.url))
        .header("cookie", format!("{cookie_name}={cookie}"))
        .send()
        .await
        .expect("request");
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    b.close().await;
    pair.stop().await;
}

async fn forms_without_csrf_token_are_refused(backend: Backend) {
    let Some((pair, b)) = setup(backend).await else {
        return;
    };
    let store = &pair.store;
    let id = id_of(&create_order(store, "Csrf Target").await);
    b.login(&store.url, ADMIN, PASSWORD).await;
    b.goto(&format!("{}/admin/orders/{id}", store.url)).await;
    let session = b
        .cookie("store_admin_session")
        .await
        .expect("session cookie");
    let csrf = b
        .find("form[action$='/cancel'] input[name=csrf]")
        .await
        .prop("value")
        .await
        .expect("csrf")
        .expect("csrf value");
    let http = raw_http();
    let post = |path: String, form: Vec<(&'static str, String)>| {
        http.post(format!("{}{path}", store.url))
            .header("cookie", format!("store_admin_session={session}"))
            .form(&form)
            .send()
    };

    let cancel = format!("/admin/orders/{id}/cancel");
    let no_token = post(cancel.clone(), vec![("reason", "x".into())])
        .await
        .expect("post");
    assert_eq!(no_token.status(), StatusCode::FORBIDDEN);
    let wrong = post(
        cancel.clone(),
        vec![("reason", "x".into()), ("csrf", "forged".into())],
    )
    .await
    .expect("post");
    assert_eq!(wrong.status(), StatusCode::FORBIDDEN);
    let body = wrong.text().await.expect("body");
    assert!(
        body.contains("nothing was changed"),
        "not an HTML error page: {body}"
    );
    let create = post(
        "/admin/orders".into(),
        vec![
            ("customer.name", "Forged".into()),
            ("customer.email", "f@example.com".into()),
        ],
    )
    .await
    .expect("post");
    assert_eq!(create.status(), StatusCode::FORBIDDEN);
    let token = post("/admin/tokens".into(), vec![("name", "forged".into())])
        .await
        .expect("post");
    assert_eq!(token.status(), StatusCode::FORBIDDEN);

    // Nothing changed.
    let (_, o) = store.get(&format!("/api/v1/orders/{id}")).await;
    assert_eq!(o["status"], "open");
    assert_eq!(o["sync"]["store_version"], 1);
    let (_, audit) = store.get(&format!("/api/v1/orders/{id}/audit")).await;
    assert!(
        !audit.to_string().contains("cancel_request"),
        "audit shows a cancel: {audit}"
    );
    assert_eq!(count(store, "SELECT COUNT(*) FROM orders").await, 1);
    assert_eq!(
        count(
            store,
            "SELECT COUNT(*) FROM api_tokens WHERE name = 'forged'"
        )
        .await,
        0
    );

    // The same request with the page's token goes through (so the refusals
    // above were about the token, not the request).
    let ok = post(cancel, vec![("reason", "x".into()), ("csrf", csrf)])
        .await
        .expect("post");
    assert_eq!(ok.status(), StatusCode::SEE_OTHER);
    let (_, o) = store.get(&format!("/api/v1/orders/{id}")).await;
    assert_eq!(o["status"], "cancel_requested");
    b.close().await;
    pair.stop().await;
}

async fn customer_text_is_escaped_on_both_sides(backend: Backend) {
    let Some((pair, b)) = setup(backend).await else {
        return;
    };
    let evil = "<script>alert(1)</script>";
    let id = id_of(&create_order(&pair.store, evil).await);
    wait_for_order(&pair.warehouse, &id, "order at the warehouse", |_| true).await;

    for side in [&pair.store, &pair.warehouse] {
        b.login(&side.url, ADMIN, PASSWORD).await;
        for page in [format!("/admin/orders/{id}"), "/admin/orders".to_owned()] {
            b.goto(&format!("{}{page}", side.url)).await;
            assert!(
                b.client.get_alert_text().await.is_err(),
                "an alert is open on {page}"
            );
            assert!(
                b.page_text().await.contains(evil),
                "{page} does not show the name as text"
            );
            let src = b.source().await;
            assert!(
                src.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
                "{page}: not escaped"
            );
            assert!(!src.contains(evil), "{page}: raw script tag in the page");
            let scripts = b
                .client
                .execute(
                    "return Array.from(document.querySelectorAll('script')).map(s => s.src)",
                    vec![],
                )
                .await
                .expect("script");
            let scripts: Vec<String> = serde_json::from_value(scripts).expect("list");
            assert_eq!(scripts.len(), 1, "{page}: scripts {scripts:?}");
            assert!(scripts[0].ends_with("/admin/static/admin.js"));
        }
    }
    // Stored as typed, not mangled.
    let (_, o) = pair.warehouse.get(&format!("/api/v1/orders/{id}")).await;
    assert_eq!(o["customer"]["name"], evil);
    b.close().await;
    pair.stop().await;
}

async fn validation_errors_show_next_to_fields_and_keep_values(backend: Backend) {
    let Some((pair, b)) = setup(backend).await else {
        return;
    };
    let store = &pair.store;
    b.login(&store.url, ADMIN, PASSWORD).await;
    b.goto(&format!("{}/admin/orders/new", store.url)).await;
    b.fill("#customer-name", "Ada <Lovelace>").await;
    b.fill("#customer-email", "not-an-email").await;
    b.fill("#shipping-address-name", "Ada").await;
    b.fill("#shipping-address-line1", "12 St James's Sq").await;
    b.fill("#shipping-address-postal-code", "SW1Y 4JH").await;
    b.fill("#shipping-address-country", "GB").await;
    b.fill("#lines-0-sku", "WID-1").await;
    b.fill("#lines-0-name", "Widget").await;
    b.fill("#lines-0-quantity", "0").await;
    b.fill("#lines-0-unit-price", "abc").await;
    b.click(".form-actions .btn-primary").await;

    // Kept for the form's own page (post/redirect/get).
    assert_eq!(
        b.path().await,
        "/admin/orders/new",
        "the form was not shown again"
    );
    // Each error sits with its own field.
    let email_error = b.text(".field.has-error #customer-email ~ p.error").await;
    assert!(email_error.contains("Email"), "email error: {email_error}");
    assert!(b.exists(".field.has-error #shipping-address-city").await);
    assert!(
        b.text("#shipping-address-city ~ p.error")
            .await
            .contains("required")
    );
    let q = b.text("td.has-error #lines-0-quantity ~ p.error").await;
    assert!(q.starts_with("Quantity"), "quantity error: {q}");
    let p = b.text("td.has-error #lines-0-unit-price ~ p.error").await;
    assert!(p.contains("amount"), "price error: {p}");
    assert!(!b.exists(".field.has-error #customer-name").await);
    // What was typed is still there.
    assert_eq!(b.value("#customer-name").await, "Ada <Lovelace>");
    assert_eq!(b.value("#customer-email").await, "not-an-email");
    assert_eq!(b.value("#shipping-address-line1").await, "12 St James's Sq");
    assert_eq!(b.value("#lines-0-sku").await, "WID-1");
    assert_eq!(b.value("#lines-0-quantity").await, "0");
    assert_eq!(b.value("#lines-0-unit-price").await, "abc");
    assert!(b.text("#form-errors").await.contains("not saved"));
    if shots(backend) {
        b.screenshot("store-form-errors").await;
    }
    // Nothing was created.
    let (_, list) = store.get("/api/v1/orders").await;
    assert_eq!(list["items"].as_array().map(Vec::len), Some(0));

    // Fixing the fields creates the order.
    b.fill("#customer-email", "ada@example.com").await;
    b.fill("#shipping-address-city", "London").await;
    b.fill("#lines-0-quantity", "3").await;
    b.fill("#lines-0-unit-price", "2.50").await;
    b.click(".form-actions .btn-primary").await;
    assert!(b.page_text().await.contains("Order created"));
    let (_, list) = store.get("/api/v1/orders").await;
    assert_eq!(list["items"][0]["lines"][0]["unit_price"], 250);
    assert_eq!(list["items"][0]["customer"]["name"], "Ada <Lovelace>");
    b.close().await;
    pair.stop().await;
}

async fn warehouse_buttons_follow_the_state_machine(backend: Backend) {
    let Some((pair, b)) = setup(backend).await else {
        return;
    };
    let wh = &pair.warehouse;
    let http = raw_http();

    // Without a session every admin page sends to the login page.
    for path in [
        "/admin/orders",
        "/admin/",
        "/admin/sync",
        "/admin/orders/new",
    ] {
        let res = http
            .get(format!("{}{path}", wh.url))
            .send()
            .await
            .expect("get");
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "{path}");
        assert_eq!(res.headers()["location"], "/admin/login", "{path}");
    }
    b.goto(&format!("{}/admin/orders", wh.url)).await;
    assert_eq!(b.path().await, "/admin/login");

    let id = id_of(&create_order(&pair.store, "Button Test").await);
    wait_for_order(wh, &id, "order at the warehouse", |_| true).await;
    b.login(&wh.url, ADMIN, PASSWORD).await;
    let page = format!("{}/admin/orders/{id}", wh.url);
    let buttons = |b: &Browser| {
        let b = b.client.clone();
        async move {
            let mut out = Vec::new();
            for el in b
                .find_all(fantoccini::Locator::Css("#transitions button[name=action]"))
                .await
                .expect("buttons")
            {
                out.push(el.attr("value").await.expect("attr").unwrap_or_default());
            }
            out
        }
    };
    b.goto(&page).await;
    assert_eq!(buttons(&b).await, ["pick", "hold"]);
    let src = b.source().await;
    for money in ["GBP", "19.99", "Total", "unit_price"] {
        assert!(!src.contains(money), "warehouse page shows {money}");
    }
    b.fill("#hold-reason", "stock count").await;
    b.click("button[value=hold]").await;
    assert_eq!(buttons(&b).await, ["release"]);
    assert!(b.page_text().await.contains("stock count"));
    b.click("button[value=release]").await;
    assert_eq!(buttons(&b).await, ["pick", "hold"]);
    b.click("button[value=pick]").await;
    assert_eq!(buttons(&b).await, ["pack", "hold"]);
    b.click("button[value=pack]").await;
    assert_eq!(buttons(&b).await, ["ship", "hold"]);
    let (_, o) = wh.get(&format!("/api/v1/orders/{id}")).await;
    assert_eq!(o["status"], "packed");
    if shots(backend) {
        b.screenshot("warehouse-order").await;
    }

    // An invalid transition sent anyway is refused and changes nothing.
    let session = b.cookie("warehouse_admin_session").await.expect("cookie");
    let csrf = b
        .find("#transitions input[name=csrf]")
        .await
        .prop("value")
        .await
        .expect("csrf")
        .expect("value");
    let cookie = format!("warehouse_admin_session={session}");
    let fulfillment = format!("/admin/orders/{id}/fulfillment");
    let (status, _) = post_then_get(
        &wh.url,
        &cookie,
        &fulfillment,
        &[("csrf", csrf.as_str()), ("action", "pick")],
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT);
    // Shipping without a tracking number: 422, error at the field.
    let (status, body) = post_then_get(
        &wh.url,
        &cookie,
        &fulfillment,
        &[
            ("csrf", csrf.as_str()),
            ("action", "ship"),
            ("carrier", "UPS"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body.contains("Tracking number is required"), "{body}");
    let (_, o) = wh.get(&format!("/api/v1/orders/{id}")).await;
    assert_eq!(o["status"], "packed");

    // No create page at the warehouse, even signed in.
    let res = http
        .get(format!("{}/admin/orders/new", wh.url))
        .header("cookie", format!("warehouse_admin_session={session}"))
        .send()
        .await
        .expect("get");
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap_or("")
            .starts_with("text/html")
    );
    b.goto(&format!("{}/admin/orders/new", wh.url)).await;
    assert!(b.page_text().await.contains("Not found"));
    assert!(
        !b.exists("a[href='/admin/orders/new']").await,
        "warehouse links to create"
    );
    // Security headers on pages and assets.
    for path in ["/admin/orders", "/admin/static/admin.css"] {
        let res = http
            .get(format!("{}{path}", wh.url))
            .header("cookie", format!("warehouse_admin_session={session}"))
            .send()
            .await
            .expect("get");
        let h = res.headers();
        assert!(
            h["content-security-policy"]
                .to_str()
                .unwrap_or("")
                .contains("script-src 'self'")
        );
        assert_eq!(h["x-frame-options"], "DENY");
        assert_eq!(h["x-content-type-options"], "nosniff");
        assert_eq!(h["referrer-policy"], "same-origin");
    }
    b.close().await;
    pair.stop().await;
}

async fn tokens_are_shown_once_and_revoked(backend: Backend) {
    let Some((pair, b)) = setup(backend).await else {
        return;
    };
    let store = &pair.store;
    b.login(&store.url, ADMIN, PASSWORD).await;
    b.click("a[href='/admin/tokens']").await;
    b.fill("#token-name", "shop <frontend>").await;
    b.click("form[action='/admin/tokens'] button").await;
    let token = b.text("#new-token").await;
    assert!(token.starts_with("fst_"), "token: {token}");
    assert!(b.page_text().await.contains("shop <frontend>"));
    // It opens the API; the database holds only its hash.
    let api = raw_http();
    let get = || {
        api.get(format!("{}/api/v1/orders", store.url))
            .bearer_auth(&token)
            .send()
    };
    assert_eq!(get().await.expect("get").status(), StatusCode::OK);
    assert_eq!(
        count(
            store,
            &format!("SELECT COUNT(*) FROM api_tokens WHERE token_hash = '{token}'")
        )
        .await,
        0
    );
    // Shown once: the list does not show it again.
    b.goto(&format!("{}/admin/tokens", store.url)).await;
    assert!(!b.source().await.contains(&token));
    // Revoke it (the newest token is listed first).
    b.client
        .execute("window.confirm = () => true", vec![])
        .await
        .expect("accept the confirmation");
    b.click("form[action$='/revoke'] button").await;
    assert!(b.page_text().await.contains("Token revoked"));
    assert_eq!(get().await.expect("get").status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        count(
            store,
            "SELECT COUNT(*) FROM api_tokens WHERE name = 'shop <frontend>' AND revoked_at IS NOT NULL"
        )
        .await,
        1
    );
    b.close().await;
    pair.stop().await;
}

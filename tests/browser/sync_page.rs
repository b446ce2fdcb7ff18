//! The sync page tells an operator what is wrong and what happened, at
//! 1280 px and at 390 px: with the warehouse down, the orders waiting are
//! listed as failing with their last error and a link that opens the
//! order, the breaker says it is open, and the charts have the failures
//! and the backlog; once the warehouse is back and everything converged,
//! nothing waits, the breaker is closed and the charts show the
//! deliveries. After every change went dead, the breaker reads "Idle"
//! (never "half open" with nothing to send), the dead letters say why
//! and since when, and "Replay all" delivers them. With several
//! warehouses, the page shows all of them or one (`?warehouse=`), each
//! with its own rows, breaker and charts. Each step is checked through the
//! API or SQL as well as on the page.

use std::time::{Duration, Instant};

use fantoccini::Locator;
use serde_json::Value;

use crate::driver::Browser;
use serde_json::json;

use crate::helpers::{
    Backend, Pair, Side, create_dead_letters, create_order, eventually, id_of, order_body,
    short_horizon, wait_for_order,
};
use crate::{ADMIN, PASSWORD, add_admin, count, shots};

crate::both_backends!(
    the_sync_page_shows_causes_and_history,
    dead_letters_say_why_and_the_idle_breaker_is_not_half_open,
    several_warehouses_are_shown_one_at_a_time,
);

const WIDE: u32 = 1280;
const PHONE: u32 = 390;

/// A pair whose store opens its breaker after two failed requests (so an
/// outage shows within seconds), admins on both sides, and a browser.
async fn setup(
    backend: Backend,
    tweak: impl Fn(&mut fulfillment::service::ServiceConfig),
) -> Option<(Pair, Browser)> {
    if !crate::driver::available() {
        return None;
    }
    let pair = Pair::start_with(backend, |cfg| {
        cfg.breaker_threshold = 2;
        tweak(cfg);
    })
    .await?;
    for side in [&pair.store, &pair.warehouse] {
        add_admin(side, ADMIN, PASSWORD).await;
    }
    Some((pair, Browser::start().await))
}

/// Reloads the page until `check` holds, or fails after `secs` seconds.
async fn reload_until<F, Fut>(b: &Browser, secs: u64, what: &str, check: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if check().await {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {secs} s waiting for: {what} (on {})",
            b.url().await
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
        b.client.refresh().await.expect("reload");
    }
}

async fn texts(b: &Browser, css: &str) -> Vec<String> {
    let mut out = Vec::new();
    for el in b
        .client
        .find_all(Locator::Css(css))
        .await
        .expect("find_all")
    {
        out.push(el.text().await.unwrap_or_default());
    }
    out
}

async fn attr(b: &Browser, css: &str, name: &str) -> Option<String> {
    b.find(css).await.attr(name).await.ok().flatten()
}

/// How many values the chart `id` draws (its `data-points`).
async fn points(b: &Browser, id: &str) -> usize {
    attr(b, &format!("svg#{id}"), "data-points")
        .await
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// A number the page's script computes.
async fn js_number(b: &Browser, script: &str) -> f64 {
    b.client
        .execute(script, vec![])
        .await
        .ok()
        .and_then(|v: Value| v.as_f64())
        .unwrap_or(f64::NAN)
}

/// What must hold at either width: nothing wider than the window, every
/// chart inside it, and the stat values on one line each.
async fn fits(b: &Browser, width: u32) {
    let page = js_number(b, "return document.documentElement.scrollWidth").await;
    assert!(
        page <= f64::from(width),
        "the page is {page} px wide in a {width} px window"
    );
    for id in ["chart-hour-deliveries", "chart-day-delay"] {
        let right = js_number(
            b,
            &format!("return document.getElementById('{id}').getBoundingClientRect().right"),
        )
        .await;
        let w = js_number(
            b,
            &format!("return document.getElementById('{id}').getBoundingClientRect().width"),
        )
        .await;
        assert!(
            right <= f64::from(width) && w >= 250.0,
            "{id} is {w} px wide, ending at {right} px, in a {width} px window"
        );
    }
    // A number never breaks inside itself, nor is it cut: each stat value
    // stays on its line and shows whole.
    let broken = js_number(
        b,
        "return [...document.querySelectorAll('.stat-value')].filter(e => \
         getComputedStyle(e).whiteSpace !== 'nowrap' || e.scrollWidth > e.clientWidth + 1).length",
    )
    .await;
    assert_eq!(
        broken, 0.0,
        "stat values that wrap or are cut at {width} px"
    );
}

async fn the_sync_page_shows_causes_and_history(backend: Backend) {
    let Some((mut pair, b)) = setup(backend, |_| {}).await else {
        return;
    };
    pair.warehouse.stop().await;
    let mut ids = Vec::new();
    let mut numbers = Vec::new();
    for name in ["Ada Outage", "Alan Outage", "Grace Outage"] {
        let o = create_order(&pair.store, name).await;
        numbers.push(o["number"].as_str().expect("number").to_owned());
        ids.push(id_of(&o));
    }
    let store = &pair.store;
    for id in &ids {
        wait_for_order(store, id, "the order fails to go", |o| {
            o["sync"]["state"] == "failing"
        })
        .await;
    }

    b.login(&store.url, ADMIN, PASSWORD).await;
    b.goto(&format!("{}/admin/sync", store.url)).await;
    for width in [WIDE, PHONE] {
        b.set_window_size(width, 900).await;
        reload_until(
            &b,
            20,
            "three failing orders, the breaker open and charts",
            || async {
                let states = texts(&b, "#waiting tbody tr .badge").await;
                let breaker = b.text("#stat-breaker").await;
                states.len() == 3
                    && states.iter().all(|s| s == "Failing")
                    && (breaker == "Open" || breaker == "Half open")
                    && points(&b, "chart-hour-deliveries").await > 0
                    && points(&b, "chart-hour-backlog").await > 0
            },
        )
        .await;
        assert_eq!(b.text("#stat-pending").await, "3");
        assert!(
            b.text("#stat-failing")
                .await
                .starts_with("3 of them failing"),
            "{}",
            b.text("#stat-failing").await
        );
        assert!(
            b.text("#stat-breaker-help").await.contains("warehouse"),
            "the breaker says whom it is about"
        );
        // Each row: its order's number linking to it, and why it failed.
        let links = texts(&b, "#waiting tbody tr a.order-link").await;
        let mut sorted_links = links.clone();
        sorted_links.sort();
        let mut expected = numbers.clone();
        expected.sort();
        assert_eq!(sorted_links, expected);
        for e in texts(&b, "#waiting tbody tr .queue-error").await {
            assert!(
                e.contains("connect") || e.contains("refused") || e.contains("unreachable"),
                "last error {e:?}"
            );
        }
        for next in texts(&b, "#waiting tbody tr td.when").await {
            assert!(
                next.contains(':') || next.contains("now"),
                "next try {next:?} has a time to the second"
            );
        }
        assert_eq!(
            attr(&b, "svg#chart-hour-delay", "role").await.as_deref(),
            Some("img")
        );
        fits(&b, width).await;
        if shots(backend) && width == WIDE {
            b.screenshot("sync-failing").await;
        }
    }
    // The history behind the charts: failures and the backlog, stored.
    assert!(
        count(
            store,
            "SELECT CAST(SUM(failed) AS BIGINT) FROM sync_history"
        )
        .await
            >= 3,
        "failures are recorded"
    );
    assert!(count(store, "SELECT MAX(backlog) FROM sync_history").await >= 1);

    // A row's link opens its order.
    b.set_window_size(WIDE, 900).await;
    b.click(&format!(
        "#waiting tr[data-order='{}'] a.order-link",
        ids[0]
    ))
    .await;
    assert_eq!(b.path().await, format!("/admin/orders/{}", ids[0]));
    assert!(b.page_text().await.contains(&numbers[0]));

    // The warehouse comes back: everything converges.
    pair.warehouse.restart().await;
    let store = &pair.store;
    for id in &ids {
        wait_for_order(store, id, "the order arrives", |o| {
            o["sync"]["state"] == "synced"
        })
        .await;
        let (s, _) = pair.warehouse.get(&format!("/api/v1/orders/{id}")).await;
        assert_eq!(s, reqwest::StatusCode::OK, "{id} is at the warehouse");
    }
    b.goto(&format!("{}/admin/sync", store.url)).await;
    for width in [WIDE, PHONE] {
        b.set_window_size(width, 900).await;
        reload_until(
            &b,
            20,
            "nothing waits and the charts show deliveries",
            || async {
                b.exists("#waiting p.empty").await
                    && b.text("#stat-breaker").await == "Closed"
                    && !b
                        .client
                        .find_all(Locator::Css(
                            "svg#chart-hour-deliveries g[data-series='Delivered'] rect",
                        ))
                        .await
                        .expect("bars")
                        .is_empty()
            },
        )
        .await;
        assert_eq!(b.text("#stat-pending").await, "0");
        assert!(points(&b, "chart-hour-delay").await > 0, "a delay is drawn");
        fits(&b, width).await;
        if shots(backend) && width == WIDE {
            b.screenshot("sync-recovered").await;
        }
    }
    // An idle relay writes its history at most once a second: the last
    // deliveries' counts may land a moment after the page showed the first.
    eventually(5, "deliveries are recorded", || async {
        (count(
            store,
            "SELECT CAST(SUM(delivered) AS BIGINT) FROM sync_history",
        )
        .await
            >= 3)
            .then_some(())
    })
    .await;
    b.close().await;
    pair.stop().await;
}

async fn dead_letters_say_why_and_the_idle_breaker_is_not_half_open(backend: Backend) {
    let Some((mut pair, b)) = setup(backend, short_horizon).await else {
        return;
    };
    pair.warehouse.stop().await;
    let ids = create_dead_letters(&pair.store, &["Dead One", "Dead Two"]).await;
    let store: &Side = &pair.store;
    b.login(&store.url, ADMIN, PASSWORD).await;
    b.goto(&format!("{}/admin/sync", store.url)).await;
    reload_until(&b, 20, "both dead letters listed", || async {
        texts(&b, "#dead-letters tbody tr").await.len() == 2
    })
    .await;
    assert_eq!(b.text("#stat-dead").await, "2");
    assert_eq!(b.text("#stat-pending").await, "0");
    // Nothing waits: the breaker's state says nothing about now.
    // The breaker opened (two failed requests at least) and nothing has
    // closed it; with nothing waiting, that is no news.
    assert_eq!(b.text("#stat-breaker").await, "Idle");
    assert!(
        b.text("#stat-breaker-help")
            .await
            .contains("the next change goes first as a probe")
    );
    assert!(b.exists("#waiting p.empty").await);
    for why in texts(&b, "#dead-letters tbody tr .queue-error").await {
        assert!(why.contains("gave up after the retry horizon"), "{why:?}");
        assert_eq!(
            why.matches("last error").count(),
            1,
            "the reason is said once: {why:?}"
        );
    }
    // (Column heads are shown in capitals.)
    let page = b.page_text().await.to_lowercase();
    assert!(page.contains("why it stopped") && page.contains("dead since"));
    for since in texts(&b, "#dead-letters tbody tr td.when").await {
        assert!(
            since.contains(':') && (since.contains(" ago)") || since.contains("(now)")),
            "{since:?}"
        );
    }

    // Back, and replayed: delivered, and nothing dead is left.
    pair.warehouse.restart().await;
    b.client
        .execute("window.confirm = () => true", vec![])
        .await
        .expect("accept the confirmation");
    b.click("#dead-letters form[action='/admin/sync/replay'] button[name=all]")
        .await;
    let store: &Side = &pair.store;
    for id in &ids {
        wait_for_order(store, id, "the replayed order arrives", |o| {
            o["sync"]["state"] == "synced"
        })
        .await;
    }
    assert_eq!(
        count(store, "SELECT COUNT(*) FROM outbox WHERE state = 'dead'").await,
        0
    );
    b.goto(&format!("{}/admin/sync", store.url)).await;
    reload_until(
        &b,
        20,
        "no dead letter left and the breaker closed",
        || async {
            b.exists("#dead-letters p.empty").await && b.text("#stat-breaker").await == "Closed"
        },
    )
    .await;
    b.close().await;
    pair.stop().await;
}

async fn several_warehouses_are_shown_one_at_a_time(backend: Backend) {
    let Some((mut t, b)) = crate::parts::setup(backend).await else {
        return;
    };
    t.eu.stop().await;
    let to = |country: &str, name: &str| {
        let mut body = order_body(name);
        body["shipping_address"]["country"] = json!(country);
        body
    };
    let mut gb = Vec::new();
    for name in ["London One", "London Two"] {
        let (s, o) = t.store.post("/api/v1/orders", &to("GB", name)).await;
        assert_eq!(s, reqwest::StatusCode::CREATED, "{o}");
        gb.push(id_of(&o));
    }
    let (s, us) = t.store.post("/api/v1/orders", &to("US", "Boston")).await;
    assert_eq!(s, reqwest::StatusCode::CREATED, "{us}");
    let us = id_of(&us);
    for id in &gb {
        wait_for_order(&t.store, id, "the GB order fails to go to eu", |o| {
            o["sync"]["state"] == "failing"
        })
        .await;
    }
    wait_for_order(&t.store, &us, "the US order reaches us", |o| {
        o["sync"]["state"] == "synced"
    })
    .await;

    crate::parts::sign_in(&b, &t.store.url).await;
    b.goto(&format!("{}/admin/sync", t.store.url)).await;
    assert_eq!(
        texts(&b, ".sync-choices a").await,
        ["All warehouses", "eu", "us"]
    );
    reload_until(&b, 20, "eu's two orders waiting", || async {
        texts(&b, "#waiting tbody tr").await.len() == 2
    })
    .await;
    assert_eq!(
        texts(&b, "#waiting tbody td[data-label='Warehouse']").await,
        ["eu", "eu"]
    );

    // us: nothing waits, its delivery is charted, its breaker closed.
    b.click(".sync-choices a[href='/admin/sync?warehouse=us']")
        .await;
    assert_eq!(b.text("h1").await, "Sync with the warehouse us");
    assert_eq!(b.text(".sync-choices a[aria-current='page']").await, "us");
    reload_until(&b, 20, "us's delivery charted", || async {
        points(&b, "chart-hour-deliveries").await > 0
    })
    .await;
    assert!(b.exists("#waiting p.empty").await);
    assert_eq!(b.text("#stat-pending").await, "0");
    assert_eq!(b.text("#stat-breaker").await, "Closed");

    // eu: its two orders, its failures charted, its breaker not closed.
    b.click(".sync-choices a[href='/admin/sync?warehouse=eu']")
        .await;
    assert_eq!(b.text("h1").await, "Sync with the warehouse eu");
    reload_until(&b, 20, "eu's failures charted", || async {
        points(&b, "chart-hour-deliveries").await > 0 && b.text("#stat-breaker").await != "Closed"
    })
    .await;
    assert_eq!(b.text("#stat-pending").await, "2");
    let mut listed: Vec<String> = Vec::new();
    for row in b
        .client
        .find_all(Locator::Css("#waiting tbody tr"))
        .await
        .expect("rows")
    {
        listed.push(
            row.attr("data-order")
                .await
                .ok()
                .flatten()
                .unwrap_or_default(),
        );
    }
    listed.sort();
    gb.sort();
    assert_eq!(listed, gb);
    assert!(
        count(
            &t.store,
            "SELECT CAST(SUM(failed) AS BIGINT) FROM sync_history WHERE peer = 'eu'"
        )
        .await
            > 0
    );
    assert_eq!(
        count(
            &t.store,
            "SELECT COUNT(*) FROM sync_history WHERE peer = 'us' AND failed > 0"
        )
        .await,
        0
    );

    // A warehouse that does not exist: a clear refusal, nothing shown.
    b.goto(&format!("{}/admin/sync?warehouse=nope", t.store.url))
        .await;
    let page = b.page_text().await;
    assert!(
        page.contains("There is no warehouse “nope” here") && !b.exists("#waiting").await,
        "{page}"
    );
    b.close().await;
    crate::parts::stop(t).await;
}

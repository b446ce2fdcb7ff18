//! The store's warehouses over HTTP (`/api/v1/warehouses`, and the
//! `warehouse` of sync status, replay and reconcile), checked by what is
//! there afterwards, not only by status codes: created, read and listed by
//! name with their secret never in any answer; every bad field named and
//! nothing changed; 409, 404 and 405 where due; PATCH changes only what it
//! names; a deactivated warehouse gets no new orders while its earlier
//! ones keep syncing; a warehouse added through the API is delivered to
//! at once; the warehouse service refuses all of it.

use std::time::Duration;

use fulfillment::domain::Role;
use reqwest::header::{ALLOW, HeaderMap, LOCATION};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::*;
use crate::routing::{EU_SECRET, US_SECRET, create, has, order_to, three};

both_backends!(
    a_warehouse_is_created_read_and_listed_by_name_without_its_secret,
    bad_input_names_every_bad_field_and_changes_nothing,
    duplicates_unknown_names_and_delete_are_refused,
    patch_changes_only_the_fields_it_names,
    an_inactive_warehouse_gets_no_new_orders_but_keeps_syncing_its_own,
    a_warehouse_added_through_the_api_is_delivered_to_at_once,
    the_warehouse_service_refuses_the_warehouse_routes,
    sync_status_replay_and_reconcile_know_each_warehouse,
);

const SECRET_A: &str = "a-secret-never-shown-1";
const SECRET_B: &str = "b-secret-never-shown-2";

/// A request with `side`'s token, answered in full: status, headers and
/// body as text (to look for what must not be there, anywhere in it).
async fn raw(
    side: &Side,
    method: Method,
    path: &str,
    body: Option<&Value>,
) -> (StatusCode, HeaderMap, String) {
    let mut req = side
        .http
        .request(method, format!("{}{path}", side.url))
        .bearer_auth(&side.token);
    if let Some(b) = body {
        req = req.json(b);
    }
    let res = req.send().await.expect("request sent");
    let (status, headers) = (res.status(), res.headers().clone());
    (status, headers, res.text().await.expect("body read"))
}

fn json_of(text: &str) -> Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// Fails when `text` (a whole answer) carries any of `secrets`.
fn no_secret(what: &str, text: &str, secrets: &[&str]) {
    for s in secrets {
        assert!(!text.contains(s), "{what} shows a secret: {text}");
    }
    assert!(
        !text.contains("\"secret\""),
        "{what} has a secret field: {text}"
    );
}

/// The fields a problem's `errors` name, sorted.
fn fields(problem: &Value) -> Vec<String> {
    let mut f: Vec<String> = problem["errors"]
        .as_array()
        .map(|e| {
            e.iter()
                .filter_map(|e| e["field"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    f.sort();
    f
}

/// A store with no `--peer-url` and no warehouse.
async fn store_alone(b: Backend) -> Option<Side> {
    Side::start_alone(Role::Store, b, "", |_| {}).await
}

/// The list as answered, its `sync` left out (delivery moves by itself).
async fn listed(store: &Side) -> Vec<Value> {
    let (s, list) = store.get("/api/v1/warehouses").await;
    assert_eq!(s, StatusCode::OK, "{list}");
    list["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(settings)
        .collect()
}

/// A warehouse's settings: the answer without `sync`.
fn settings(w: &Value) -> Value {
    let mut w = w.clone();
    if let Some(o) = w.as_object_mut() {
        o.remove("sync");
    }
    w
}

/// `GET /api/v1/warehouses/{name}`, its settings (200 expected).
async fn read(store: &Side, name: &str) -> Value {
    let (s, w) = store.get(&format!("/api/v1/warehouses/{name}")).await;
    assert_eq!(s, StatusCode::OK, "{w}");
    settings(&w)
}

async fn add(store: &Side, body: &Value) -> Value {
    let (s, w) = store.post("/api/v1/warehouses", body).await;
    assert_eq!(s, StatusCode::CREATED, "{w}");
    w
}

async fn a_warehouse_is_created_read_and_listed_by_name_without_its_secret(b: Backend) {
    let Some(store) = store_alone(b).await else {
        return;
    };
    let secrets = [SECRET_A, SECRET_B];
    let (s, _, text) = raw(&store, Method::GET, "/api/v1/warehouses", None).await;
    assert_eq!((s, json_of(&text)), (StatusCode::OK, json!({"items": []})));

    // Lower-case countries are taken (and kept upper case), duplicates
    // dropped, a trailing `/` of the URL dropped.
    let body = json!({
        "name": "eu-west-2", "url": "http://127.0.0.1:9/", "countries": ["gb", "DE", "GB"],
        "sku_prefixes": ["WID-", "BOX-"], "priority": -5, "active": true, "secret": SECRET_A
    });
    let (s, headers, text) = raw(&store, Method::POST, "/api/v1/warehouses", Some(&body)).await;
    assert_eq!(s, StatusCode::CREATED, "{text}");
    no_secret("the POST answer", &text, &secrets);
    assert_eq!(
        headers.get(LOCATION).and_then(|v| v.to_str().ok()),
        Some("/api/v1/warehouses/eu-west-2")
    );
    let created = json_of(&text);
    let expected = json!({
        "name": "eu-west-2", "url": "http://127.0.0.1:9", "countries": ["GB", "DE"],
        "sku_prefixes": ["WID-", "BOX-"], "priority": -5, "active": true
    });
    assert_eq!(settings(&created), expected, "{created}");
    assert_eq!(created["sync"]["pending"], 0, "{created}");
    assert_eq!(created["sync"]["dead"], 0, "{created}");
    assert_eq!(created["sync"]["breaker"], "closed", "{created}");

    // The Location is where it is read, as created.
    let (s, _, text) = raw(&store, Method::GET, "/api/v1/warehouses/eu-west-2", None).await;
    assert_eq!(s, StatusCode::OK, "{text}");
    no_secret("GET", &text, &secrets);
    assert_eq!(settings(&json_of(&text)), expected);

    // Only name and URL given: every other field takes its default; the
    // store's own secret is used (not shown either).
    let a = add(&store, &json!({"name": "ab", "url": "https://wh.example"})).await;
    assert_eq!(
        settings(&a),
        json!({"name": "ab", "url": "https://wh.example", "countries": [],
               "sku_prefixes": [], "priority": 0, "active": true})
    );
    // Names that sort differently by bytes than by a careless collation.
    for name in ["a-b", "a0", "a"] {
        add(
            &store,
            &json!({"name": name, "url": "http://127.0.0.1:9", "secret": SECRET_B}),
        )
        .await;
    }
    let (s, _, text) = raw(&store, Method::GET, "/api/v1/warehouses", None).await;
    assert_eq!(s, StatusCode::OK);
    no_secret("the list", &text, &secrets);
    let names: Vec<String> = json_of(&text)["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|w| w["name"].as_str().expect("name").to_owned())
        .collect();
    assert_eq!(names, ["a", "a-b", "a0", "ab", "eu-west-2"], "by name");

    // A PATCH that sets a secret answers without it.
    let patch = json!({"secret": SECRET_B, "priority": 1});
    let (s, _, text) = raw(
        &store,
        Method::PATCH,
        "/api/v1/warehouses/eu-west-2",
        Some(&patch),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{text}");
    no_secret("the PATCH answer", &text, &secrets);
    assert_eq!(json_of(&text)["priority"], 1);
    let (s, _, text) = raw(&store, Method::GET, "/api/v1/sync/status", None).await;
    assert_eq!(s, StatusCode::OK);
    no_secret("sync/status", &text, &secrets);
    let status = json_of(&text);
    assert_eq!(
        status["warehouses"]
            .as_array()
            .map(|w| w.iter().map(|w| w["name"].clone()).collect::<Vec<_>>()),
        Some(names.iter().map(|n| json!(n)).collect()),
        "{status}"
    );
    // Nor the problems: a bad value of a secret is named, not echoed.
    let (s, _, text) = raw(
        &store,
        Method::PATCH,
        "/api/v1/warehouses/eu-west-2",
        Some(&json!({"secret": SECRET_A, "priority": "high"})),
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{text}");
    assert!(!text.contains(SECRET_A), "{text}");
    // The secret is what the store signs with, so it is stored; it was
    // stored as given.
    assert_eq!(
        store
            .sql("SELECT secret FROM warehouses WHERE name = 'eu-west-2'")
            .await,
        [SECRET_B]
    );
}

async fn bad_input_names_every_bad_field_and_changes_nothing(b: Backend) {
    let Some(store) = store_alone(b).await else {
        return;
    };
    add(
        &store,
        &json!({"name": "eu", "url": "http://127.0.0.1:9", "countries": ["GB"],
                "sku_prefixes": ["WID-"], "priority": 2}),
    )
    .await;
    let before = listed(&store).await;
    let url = "http://127.0.0.1:9";
    let cases: Vec<(Value, Vec<&str>)> = vec![
        (json!({"name": "EU", "url": url}), vec!["name"]),
        (json!({"name": "eu_west", "url": url}), vec!["name"]),
        (json!({"name": "eu west", "url": url}), vec!["name"]),
        (json!({"name": "é", "url": url}), vec!["name"]),
        (json!({"name": "", "url": url}), vec!["name"]),
        (json!({"name": "a".repeat(33), "url": url}), vec!["name"]),
        (json!({"url": url}), vec!["name"]),
        (json!({"name": "ok", "url": "ftp://127.0.0.1"}), vec!["url"]),
        (json!({"name": "ok", "url": "not a url"}), vec!["url"]),
        (json!({"name": "ok", "url": "http://"}), vec!["url"]),
        (json!({"name": "ok"}), vec!["url"]),
        (
            json!({"name": "ok", "url": url, "countries": ["GB", "XX", "GBR"]}),
            vec!["countries[1]", "countries[2]"],
        ),
        (
            json!({"name": "ok", "url": url, "sku_prefixes": ["WID-", ""]}),
            vec!["sku_prefixes[1]"],
        ),
        (
            json!({"name": "ok", "url": url, "sku_prefixes": [" WID"]}),
            vec!["sku_prefixes[0]"],
        ),
        (
            json!({"name": "ok", "url": url, "priority": 1_000_001}),
            vec!["priority"],
        ),
        (
            json!({"name": "ok", "url": url, "priority": -1_000_001}),
            vec!["priority"],
        ),
        (
            json!({"name": "ok", "url": url, "priority": "high"}),
            vec!["priority"],
        ),
        (
            json!({"name": "ok", "url": url, "active": "yes"}),
            vec!["active"],
        ),
        (
            json!({"name": "ok", "url": url, "countries": vec!["GB"; 251]}),
            vec!["countries"],
        ),
        (
            json!({"name": "ok", "url": url, "secret": ""}),
            vec!["secret"],
        ),
        (
            json!({"name": "ok", "url": url, "secret": "s".repeat(501)}),
            vec!["secret"],
        ),
        // PostgreSQL text cannot hold a NUL: refused, not a 500.
        (
            json!({"name": "ok", "url": url, "secret": "se\u{0}cret"}),
            vec!["secret"],
        ),
        (
            json!({"name": "ok", "url": "http://127.0.0.1:9/a\u{0}b"}),
            vec!["url"],
        ),
        (
            json!({"name": "ok", "url": url, "colour": "red"}),
            vec!["colour"],
        ),
        // Every bad field at once, each named.
        (
            json!({"name": "Bad!", "url": "x", "countries": ["ZZ"], "sku_prefixes": [""],
                   "priority": 2_000_000}),
            vec!["countries[0]", "name", "priority", "sku_prefixes[0]", "url"],
        ),
    ];
    for (body, expected) in &cases {
        let (s, p) = store.post("/api/v1/warehouses", body).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {p}");
        assert_eq!(&fields(&p), expected, "{body}: {p}");
        assert_eq!(listed(&store).await, before, "{body} changed the list");
    }
    let (s, _) = store.get("/api/v1/warehouses/ok").await;
    assert_eq!(s, StatusCode::NOT_FOUND, "no case added `ok`");

    // The same rules for a change; nothing of a refused PATCH applies,
    // not even its valid fields.
    let patches: Vec<(Value, Vec<&str>)> = vec![
        (json!({"url": "nope", "priority": 7}), vec!["url"]),
        (
            json!({"countries": ["XX"], "priority": 7}),
            vec!["countries[0]"],
        ),
        (
            json!({"sku_prefixes": [""], "active": false}),
            vec!["sku_prefixes[0]"],
        ),
        (json!({"priority": 1_000_001}), vec!["priority"]),
        (json!({"name": "other", "priority": 7}), vec!["name"]),
        (json!({"secret": "", "priority": 7}), vec!["secret"]),
        (json!({"active": "no"}), vec!["active"]),
        (json!({"colour": "red", "priority": 7}), vec!["colour"]),
    ];
    for (body, expected) in &patches {
        let (s, p) = store.patch("/api/v1/warehouses/eu", body).await;
        assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body}: {p}");
        assert_eq!(&fields(&p), expected, "{body}: {p}");
        assert_eq!(listed(&store).await, before, "{body} changed the list");
    }
    // Not JSON: 400, nothing changed.
    let res = store
        .http
        .post(format!("{}/api/v1/warehouses", store.url))
        .bearer_auth(&store.token)
        .header("content-type", "application/json")
        .body("{\"name\": \"ok\",")
        .send()
        .await
        .expect("sent");
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert_eq!(listed(&store).await, before);
}

async fn duplicates_unknown_names_and_delete_are_refused(b: Backend) {
    let Some(store) = store_alone(b).await else {
        return;
    };
    add(
        &store,
        &json!({"name": "eu", "url": "http://127.0.0.1:9", "countries": ["GB"]}),
    )
    .await;
    let before = listed(&store).await;

    // A name taken: 409, and the first one is as it was.
    let (s, p) = store
        .post(
            "/api/v1/warehouses",
            &json!({"name": "eu", "url": "http://127.0.0.1:10", "countries": ["US"]}),
        )
        .await;
    assert_eq!(s, StatusCode::CONFLICT, "{p}");
    assert!(
        p["detail"].as_str().is_some_and(|d| d.contains("eu")),
        "{p}"
    );
    assert_eq!(listed(&store).await, before);

    // Unknown names, of any shape: 404.
    for name in ["nope", "EU", "e%20u", "e%00u", "%00", &"a".repeat(40)] {
        let path = format!("/api/v1/warehouses/{name}");
        let (s, p) = store.get(&path).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "GET {name}: {p}");
        let (s, p) = store.patch(&path, &json!({"priority": 1})).await;
        assert_eq!(s, StatusCode::NOT_FOUND, "PATCH {name}: {p}");
    }
    assert_eq!(listed(&store).await, before, "PATCH never creates");

    // DELETE: always 405 with Allow, known or not; nothing goes.
    for name in ["eu", "nope"] {
        let (s, headers, text) = raw(
            &store,
            Method::DELETE,
            &format!("/api/v1/warehouses/{name}"),
            None,
        )
        .await;
        assert_eq!(s, StatusCode::METHOD_NOT_ALLOWED, "{text}");
        assert_eq!(
            headers.get(ALLOW).and_then(|v| v.to_str().ok()),
            Some("GET, PATCH"),
            "{text}"
        );
        assert!(text.contains("active"), "says what to do instead: {text}");
    }
    assert_eq!(listed(&store).await, before);
    assert_eq!(read(&store, "eu").await, before[0]);
    // Other methods the routes do not take.
    let (s, headers, _) = raw(&store, Method::PUT, "/api/v1/warehouses/eu", None).await;
    assert_eq!(s, StatusCode::METHOD_NOT_ALLOWED);
    assert!(headers.get(ALLOW).is_some());
    let (s, _, _) = raw(&store, Method::DELETE, "/api/v1/warehouses", None).await;
    assert_eq!(s, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(listed(&store).await, before);
}

async fn patch_changes_only_the_fields_it_names(b: Backend) {
    let Some(store) = store_alone(b).await else {
        return;
    };
    add(
        &store,
        &json!({"name": "eu", "url": "http://127.0.0.1:9", "countries": ["GB", "DE"],
                "sku_prefixes": ["WID-"], "priority": 4, "secret": SECRET_A}),
    )
    .await;
    add(
        &store,
        &json!({"name": "us", "url": "http://127.0.0.1:10", "countries": ["US"]}),
    )
    .await;
    let us = read(&store, "us").await;
    let mut expected = read(&store, "eu").await;
    let steps: Vec<(Value, &str, Value)> = vec![
        (json!({"priority": -3}), "priority", json!(-3)),
        (
            json!({"url": "http://127.0.0.1:11/"}),
            "url",
            json!("http://127.0.0.1:11"),
        ),
        (json!({"countries": ["fr"]}), "countries", json!(["FR"])),
        (json!({"sku_prefixes": []}), "sku_prefixes", json!([])),
        (json!({"active": false}), "active", json!(false)),
        (json!({"active": true}), "active", json!(true)),
        (json!({"countries": []}), "countries", json!([])),
    ];
    for (body, field, value) in steps {
        let (s, w) = store.patch("/api/v1/warehouses/eu", &body).await;
        assert_eq!(s, StatusCode::OK, "{body}: {w}");
        expected[field] = value;
        assert_eq!(settings(&w), expected, "the answer to {body}");
        assert_eq!(read(&store, "eu").await, expected, "after {body}");
        assert_eq!(read(&store, "us").await, us, "us is untouched by {body}");
    }
    // Nothing named, null, the same name, or only the secret: nothing
    // shown changes (the secret does).
    for body in [
        json!({}),
        json!({"priority": null, "url": null, "countries": null, "active": null}),
        json!({"name": "eu"}),
        json!({"secret": SECRET_B}),
    ] {
        let (s, w) = store.patch("/api/v1/warehouses/eu", &body).await;
        assert_eq!(s, StatusCode::OK, "{body}: {w}");
        assert_eq!(settings(&w), expected, "{body}");
        assert_eq!(read(&store, "eu").await, expected, "after {body}");
    }
    assert_eq!(
        store
            .sql("SELECT secret FROM warehouses WHERE name = 'eu'")
            .await,
        [SECRET_B],
        "the secret changed"
    );
    // A change that leaves the secret out keeps it.
    let (s, _) = store
        .patch("/api/v1/warehouses/eu", &json!({"priority": 9}))
        .await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        store
            .sql("SELECT secret FROM warehouses WHERE name = 'eu'")
            .await,
        [SECRET_B]
    );
}

/// Waits for `eu` to show order `id` with `notes`.
async fn wait_for_notes(side: &Side, id: &str, notes: &str) {
    wait_for_order(
        side,
        id,
        &format!("notes {notes:?} at the warehouse"),
        |o| o["notes"] == notes,
    )
    .await;
}

async fn an_inactive_warehouse_gets_no_new_orders_but_keeps_syncing_its_own(b: Backend) {
    let Some(t) = three(b).await else { return };
    let secrets = [EU_SECRET, US_SECRET];
    let earlier = create(&t.store, &order_to("Before", "GB", "WID-1")).await;
    wait_for_order(&t.eu, &earlier, "the earlier order at eu", |_| true).await;

    let before = read(&t.store, "eu").await;
    let (s, _, text) = raw(
        &t.store,
        Method::PATCH,
        "/api/v1/warehouses/eu",
        Some(&json!({"active": false})),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{text}");
    no_secret("the PATCH answer", &text, &secrets);
    let mut expected = before.clone();
    expected["active"] = json!(false);
    assert_eq!(settings(&json_of(&text)), expected);
    assert_eq!(read(&t.store, "eu").await, expected);

    // A new order to eu's country: taken (201), routed nowhere (nobody
    // else ships to GB), never queued.
    let later = create(&t.store, &order_to("After", "GB", "WID-1")).await;
    // Then an edit of the earlier order: eu's relay sends it, and would
    // have sent the later order with it or before.
    let (s, o) = t
        .store
        .patch(
            &format!("/api/v1/orders/{earlier}"),
            &json!({"notes": "edited while inactive"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{o}");
    wait_for_notes(&t.eu, &earlier, "edited while inactive").await;
    assert!(!has(&t.eu, &later).await, "eu got an order while inactive");
    assert!(!has(&t.us, &later).await, "us does not ship to GB");
    assert_eq!(
        t.store
            .sql(&format!(
                "SELECT COALESCE(warehouse, 'none') FROM orders WHERE id = '{later}'"
            ))
            .await,
        ["none"]
    );
    assert_eq!(
        t.store
            .sql(&format!(
                "SELECT COUNT(*) FROM outbox WHERE order_id = '{later}'"
            ))
            .await,
        ["0"]
    );
    let (s, o) = t.store.get(&format!("/api/v1/orders/{later}")).await;
    assert_eq!(s, StatusCode::OK);
    assert!(o["fulfillment"]["status"].is_null(), "{o}");

    // The earlier order keeps syncing the other way too: eu's change to it
    // is accepted by the store.
    let (s, o) =
        t.eu.post(
            &format!("/api/v1/orders/{earlier}/fulfillment"),
            &json!({"status": "picking"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{o}");
    wait_for_order(&t.store, &earlier, "eu's picking at the store", |o| {
        o["fulfillment"]["status"] == "picking"
    })
    .await;

    // With another warehouse for GB, new GB orders go there instead.
    let (s, w) = t
        .store
        .patch(
            "/api/v1/warehouses/us",
            &json!({"countries": ["US", "CA", "GB"]}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{w}");
    let third = create(&t.store, &order_to("Third", "GB", "WID-1")).await;
    wait_for_order(&t.us, &third, "the third GB order at us", |_| true).await;
    assert!(!has(&t.eu, &third).await);

    // Active again: eu (priority 0, before `us` by name) takes GB again.
    let (s, _) = t
        .store
        .patch("/api/v1/warehouses/eu", &json!({"active": true}))
        .await;
    assert_eq!(s, StatusCode::OK);
    let fourth = create(&t.store, &order_to("Fourth", "GB", "WID-1")).await;
    wait_for_order(&t.eu, &fourth, "the fourth GB order at eu", |_| true).await;
    assert!(!has(&t.us, &fourth).await);
}

async fn a_warehouse_added_through_the_api_is_delivered_to_at_once(b: Backend) {
    let Some(store) = store_alone(b).await else {
        return;
    };
    let Some(nl) = Side::start_alone(Role::Warehouse, b, &store.url, |cfg| {
        cfg.sync_secrets = vec![SECRET_A.to_owned()];
    })
    .await
    else {
        return;
    };
    // Before it is known, an order for NL waits, routed nowhere.
    let waiting = create(&store, &order_to("Early", "NL", "WID-1")).await;

    let w = add(
        &store,
        &json!({"name": "nl", "url": nl.url, "countries": ["NL"], "secret": SECRET_A}),
    )
    .await;
    assert_eq!(w["active"], true);
    let id = create(&store, &order_to("Amsterdam", "NL", "WID-1")).await;
    // Within a few seconds: its relay starts at once, not at the next
    // look at the warehouses (every 5 s).
    eventually(4, "the NL order at the added warehouse", || async {
        has(&nl, &id).await.then_some(())
    })
    .await;
    // Its answer is accepted (signed with its own secret) and comes back.
    wait_for_order(&store, &id, "nl reports the order", |o| {
        o["fulfillment"]["status"] == "pending"
    })
    .await;
    let (s, o) = nl
        .post(
            &format!("/api/v1/orders/{id}/fulfillment"),
            &json!({"status": "picking"}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{o}");
    wait_for_order(&store, &id, "nl's picking at the store", |o| {
        o["fulfillment"]["status"] == "picking"
    })
    .await;
    let st = eventually(5, "nl's delivery in sync/status", || async {
        let (_, st) = store.get("/api/v1/sync/status").await;
        let w = st["warehouses"][0].clone();
        (w["name"] == "nl" && w["pending"] == 0 && w["last_delivered_at"].is_string()).then_some(st)
    })
    .await;
    assert_eq!(st["warehouses"].as_array().map(Vec::len), Some(1), "{st}");
    // The order made before it was added stays where it was (routing is
    // done when an order is made).
    assert!(!has(&nl, &waiting).await);
}

async fn the_warehouse_service_refuses_the_warehouse_routes(b: Backend) {
    let Some(pair) = Pair::start(b).await else {
        return;
    };
    let wh = &pair.warehouse;
    let body = json!({"name": "eu", "url": "http://127.0.0.1:9"});
    for (method, path, body) in [
        (Method::GET, "/api/v1/warehouses", None),
        (Method::POST, "/api/v1/warehouses", Some(&body)),
        (Method::GET, "/api/v1/warehouses/main", None),
        (Method::GET, "/api/v1/warehouses/eu", None),
        (
            Method::PATCH,
            "/api/v1/warehouses/main",
            Some(&json!({"active": false})),
        ),
        (Method::DELETE, "/api/v1/warehouses/main", None),
    ] {
        let (s, headers, text) = raw(wh, method.clone(), path, body).await;
        assert_eq!(s, StatusCode::METHOD_NOT_ALLOWED, "{method} {path}: {text}");
        assert_eq!(
            headers.get(ALLOW).and_then(|v| v.to_str().ok()),
            Some(""),
            "{method} {path}: it takes no method here"
        );
        let p = json_of(&text);
        assert_eq!(p["status"], 405, "{p}");
        assert!(
            p["detail"].as_str().is_some_and(|d| d.contains("store")),
            "{method} {path}: says where it belongs: {p}"
        );
    }
    // The token is checked first, as everywhere.
    let res = wh
        .http
        .get(format!("{}/api/v1/warehouses", wh.url))
        .send()
        .await
        .expect("sent");
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    // Its sync status has no warehouses field (not even an empty one).
    let (s, st) = wh.get("/api/v1/sync/status").await;
    assert_eq!(s, StatusCode::OK);
    assert!(st.get("warehouses").is_none(), "{st}");
    assert!(st.get("pending").is_some(), "{st}");
    // A `warehouse` in a replay at the warehouse is 422 naming it.
    let (s, p) = wh
        .post(
            "/api/v1/sync/replay",
            &json!({"all": true, "warehouse": "main"}),
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{p}");
    assert_eq!(fields(&p), ["warehouse"], "{p}");
    // Without it, it replays (nothing).
    let (s, p) = wh.post("/api/v1/sync/replay", &json!({"all": true})).await;
    assert_eq!(
        (s, p),
        (StatusCode::OK, json!({"replayed": 0, "dry_run": false}))
    );
    // The store's `main` (its --peer-url) is there and listed.
    assert_eq!(
        pair.store.get("/api/v1/warehouses").await.1["items"]
            .as_array()
            .map(|i| i.iter().map(|w| w["name"].clone()).collect::<Vec<_>>()),
        Some(vec![json!("main")])
    );
    pair.stop().await;
}

/// The URL of a loopback port nothing listens on.
async fn nobody() -> String {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", l.local_addr().expect("addr"));
    drop(l);
    url
}

/// `name`'s entry in a sync status.
fn entry<'a>(st: &'a Value, name: &str) -> &'a Value {
    st["warehouses"]
        .as_array()
        .and_then(|a| a.iter().find(|w| w["name"] == name))
        .unwrap_or_else(|| panic!("no {name} in {st}"))
}

/// The sum of `key` over the warehouses of a sync status.
fn sum_of(st: &Value, key: &str) -> i64 {
    st["warehouses"]
        .as_array()
        .expect("warehouses")
        .iter()
        .map(|w| w[key].as_i64().expect("a count"))
        .sum()
}

/// POST `body` to `path` is refused 422 on its `warehouse` field, naming
/// `name` (as Rust quotes it: a NUL shows as `\0`).
async fn refuses_unknown_warehouse(store: &Side, path: &str, body: &Value, name: &str) {
    let (s, p) = store.post(path, body).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{path} {name:?}: {p}");
    assert_eq!(fields(&p), ["warehouse"], "{p}");
    assert!(
        p["detail"]
            .as_str()
            .is_some_and(|d| d.contains(&format!("{name:?}"))),
        "{p}"
    );
}

async fn sync_status_replay_and_reconcile_know_each_warehouse(b: Backend) {
    let Some(store) = Side::start_alone(Role::Store, b, "", |cfg| {
        cfg.breaker_threshold = 1;
        cfg.retry_horizon = Duration::from_secs(4);
        cfg.idle_poll = Duration::from_millis(300);
    })
    .await
    else {
        return;
    };
    let Some(up) = Side::start_alone(Role::Warehouse, b, &store.url, |cfg| {
        cfg.sync_secrets = vec![SECRET_A.to_owned()];
    })
    .await
    else {
        return;
    };
    let down_url = nobody().await;
    for body in [
        json!({"name": "up", "url": up.url, "countries": ["GB"], "secret": SECRET_A}),
        json!({"name": "down", "url": down_url, "countries": ["US"], "secret": SECRET_B}),
        json!({"name": "idle", "url": nobody().await, "countries": ["JP"]}),
    ] {
        add(&store, &body).await;
    }
    let gb = create(&store, &order_to("London", "GB", "WID-1")).await;
    let us = create(&store, &order_to("Boston", "US", "WID-1")).await;
    wait_for_order(&up, &gb, "the GB order at up", |_| true).await;

    // `down` fails: its breaker opens (one failure here) while its order
    // waits; the others are unaffected.
    let st = eventually(
        10,
        "down's order waiting behind an open breaker",
        || async {
            let (_, st) = store.get("/api/v1/sync/status").await;
            let d = entry(&st, "down");
            (d["pending"] == 1 && d["breaker"] != "closed" && d["last_error"].is_object())
                .then_some(st.clone())
        },
    )
    .await;
    let names: Vec<&Value> = st["warehouses"]
        .as_array()
        .expect("warehouses")
        .iter()
        .map(|w| &w["name"])
        .collect();
    assert_eq!(names, ["down", "idle", "up"], "by name: {st}");
    for w in st["warehouses"].as_array().expect("warehouses") {
        for key in [
            "pending",
            "dead",
            "breaker",
            "oldest_pending_seconds",
            "last_delivered_at",
            "last_error",
        ] {
            assert!(w.get(key).is_some(), "{key} missing: {w}");
        }
    }
    let idle = entry(&st, "idle");
    assert_eq!(
        (&idle["pending"], &idle["dead"], &idle["breaker"]),
        (&json!(0), &json!(0), &json!("closed")),
        "{st}"
    );
    assert!(idle["last_delivered_at"].is_null() && idle["last_error"].is_null());
    let u = entry(&st, "up");
    assert_eq!((&u["dead"], &u["breaker"]), (&json!(0), &json!("closed")));
    // The totals are the sums of the warehouses shown in the same answer.
    assert_eq!(st["pending"], sum_of(&st, "pending"), "{st}");
    assert_eq!(st["dead"], sum_of(&st, "dead"), "{st}");
    assert_ne!(st["breaker"], "closed", "the worst breaker: {st}");
    assert!(entry(&st, "down")["oldest_pending_seconds"].is_number());
    assert!(!st.to_string().contains(SECRET_A) && !st.to_string().contains(SECRET_B));
    // The same in each warehouse's own answer.
    let (_, w) = store.get("/api/v1/warehouses/down").await;
    assert_eq!(w["sync"]["pending"], 1, "{w}");
    assert_ne!(w["sync"]["breaker"], "closed", "{w}");

    // Past the retry horizon it is a dead letter, counted as down's (at
    // its first failed attempt after the horizon: with backoff and jitter
    // that can take a while).
    let st = eventually(30, "down's order a dead letter", || async {
        let (_, st) = store.get("/api/v1/sync/status").await;
        (entry(&st, "down")["dead"] == 1).then_some(st.clone())
    })
    .await;
    assert_eq!(
        (&st["dead"], &st["pending"]),
        (&json!(1), &json!(0)),
        "{st}"
    );
    assert_eq!(st["dead"], sum_of(&st, "dead"), "{st}");
    assert_eq!(entry(&st, "up")["dead"], 0);

    // Replay: an unknown warehouse is 422 naming it; nothing moves. So is
    // a name no warehouse could have (PostgreSQL text holds no NUL).
    for name in ["nope", "no\u{0}pe"] {
        let body = json!({"all": true, "warehouse": name});
        refuses_unknown_warehouse(&store, "/api/v1/sync/replay", &body, name).await;
    }
    assert_eq!(outbox_ids(&store, "dead").await, std::slice::from_ref(&us));
    // A known one without dead letters replays none of another's.
    let (s, p) = store
        .post(
            "/api/v1/sync/replay",
            &json!({"all": true, "warehouse": "up"}),
        )
        .await;
    assert_eq!(
        (s, p),
        (StatusCode::OK, json!({"replayed": 0, "dry_run": false}))
    );
    let (s, p) = store
        .post(
            "/api/v1/sync/replay",
            &json!({"ids": [us], "warehouse": "up"}),
        )
        .await;
    assert_eq!((s, p["replayed"].clone()), (StatusCode::OK, json!(0)));
    let (s, p) = store
        .post(
            "/api/v1/sync/replay",
            &json!({"all": true, "warehouse": "down", "dry_run": true}),
        )
        .await;
    assert_eq!(
        (s, p),
        (StatusCode::OK, json!({"replayed": 1, "dry_run": true}))
    );
    assert_eq!(outbox_ids(&store, "dead").await, std::slice::from_ref(&us));

    // `down` comes up elsewhere: its URL changes (its relay restarts), its
    // dead letter is replayed, and arrives.
    let Some(down) = Side::start_alone(Role::Warehouse, b, &store.url, |cfg| {
        cfg.sync_secrets = vec![SECRET_B.to_owned()];
    })
    .await
    else {
        return;
    };
    let (s, w) = store
        .patch("/api/v1/warehouses/down", &json!({"url": down.url}))
        .await;
    assert_eq!(s, StatusCode::OK, "{w}");
    let (s, p) = store
        .post(
            "/api/v1/sync/replay",
            &json!({"all": true, "warehouse": "down"}),
        )
        .await;
    assert_eq!(
        (s, p),
        (StatusCode::OK, json!({"replayed": 1, "dry_run": false}))
    );
    wait_for_order(&down, &us, "the replayed order at down", |_| true).await;
    assert!(!has(&up, &us).await && !has(&down, &gb).await);
    eventually(10, "every outbox drained", || async {
        let (_, st) = store.get("/api/v1/sync/status").await;
        (st["pending"] == 0 && st["dead"] == 0 && entry(&st, "down")["breaker"] == "closed")
            .then_some(())
    })
    .await;

    // Reconcile: an unknown warehouse (of any shape) is 422 naming it,
    // and starts nothing.
    for name in ["nope", "no\u{0}pe"] {
        let body = json!({"warehouse": name});
        refuses_unknown_warehouse(&store, "/api/v1/sync/reconcile", &body, name).await;
    }
    let (s, _) = store.get("/api/v1/sync/reconcile").await;
    assert_eq!(s, StatusCode::NOT_FOUND, "no pass was started");
    // A known one: a pass over that warehouse's orders only.
    let (s, job) = store
        .post("/api/v1/sync/reconcile", &json!({"warehouse": "up"}))
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{job}");
    let done = eventually(30, "the reconciliation with up ends", || async {
        let (_, job) = store.get("/api/v1/sync/reconcile").await;
        (job["state"] != "running").then_some(job)
    })
    .await;
    assert_eq!(done["state"], "finished", "{done}");
    assert_eq!(
        (
            &done["report"]["local_orders"],
            &done["report"]["peer_orders"]
        ),
        (&json!(1), &json!(1)),
        "only up's one order: {done}"
    );
    let (_, st) = store.get("/api/v1/sync/status").await;
    assert!(st["last_reconciliation"]["error"].is_null(), "{st}");
    // `idle` is unreachable: a pass with it alone fails, and says so.
    let (s, _) = store
        .post("/api/v1/sync/reconcile", &json!({"warehouse": "idle"}))
        .await;
    assert_eq!(s, StatusCode::ACCEPTED);
    let done = eventually(30, "the reconciliation with idle ends", || async {
        let (_, job) = store.get("/api/v1/sync/reconcile").await;
        (job["state"] != "running").then_some(job)
    })
    .await;
    assert_eq!(done["state"], "failed", "{done}");
}

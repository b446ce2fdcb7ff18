//! Hostile input and access (docs/DESIGN.md §5.3): whatever a client or a peer
//! sends, the answer is never a 5xx, every 4xx is problem+json, and a
//! refused request leaves the database as it was.
//!
//! - properties over the real HTTP endpoints (store create and PATCH, the
//!   warehouse's fulfillment action, and the signed sync endpoint of both
//!   sides), fed arbitrary bytes, arbitrary JSON and valid bodies with
//!   random mutations, on SQLite and PostgreSQL;
//! - a pure property over the input parsers (never panics; what the store
//!   accepts, the warehouse accepts);
//! - SQL, HTML, quote, backslash, unicode and LIKE metacharacters in every
//!   text field, stored and returned verbatim on both sides;
//! - odd headers, size limits, and a client that sends its body one byte
//!   per second.

use std::cell::{Cell, RefCell};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use fulfillment::domain::order::{CreateOrderInput, PatchOrderInput};
use fulfillment::domain::snapshot::{ContentSnapshot, FulfillmentSnapshot};
use fulfillment::http::extract::parse_json;
use fulfillment::sync::signature::Secrets;
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::both_backends;
use crate::helpers::*;

/// Like `both_backends!`, for tests that drive proptest (which is sync) and
/// so build their own runtime.
macro_rules! both_backends_sync {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[test]
            fn sqlite() {
                super::$name($crate::helpers::Backend::Sqlite)
            }
            #[test]
            fn postgres() {
                super::$name($crate::helpers::Backend::Postgres)
            }
        }
    )*};
}

both_backends_sync!(
    store_create_and_patch_survive_garbage,
    warehouse_fulfillment_survives_garbage,
    signed_sync_garbage_is_refused_or_rejected,
);

both_backends!(
    metacharacters_are_stored_and_returned_verbatim,
    odd_headers_are_refused_cleanly,
    size_limits_answer_4xx,
    no_secret_or_body_is_logged,
);

/// HTTP cases per property and backend: enough to hit every kind of input
/// many times, few enough to keep a run well under a minute.
const CASES: u32 = 128;

// ---------------------------------------------------------------------------
// Strategies
// ---------------------------------------------------------------------------

/// Strings that mean something to one layer or another.
const NASTY: &[&str] = &[
    "'; DROP TABLE orders;--",
    "<script>alert(1)</script>",
    "\u{0}",
    "a\u{0}b",
    "\u{7f}",
    "\u{202e}gnp.exe",
    "\u{200f}",
    "🚚📦",
    "%",
    "_",
    "\\",
    "\"",
    "GB",
    "gb",
    "XX",
    "GBP",
    "gbp",
    "ZZZ",
    "ada@example.com",
    "a@b",
    "@",
    "2026-12-01T17:00:00Z",
    "0000-01-01T00:00:00+23:59",
    "9999-12-31T23:59:59-23:59",
    "SO-000001",
    "00000000-0000-0000-0000-000000000000",
    "pending",
    "picking",
    "packed",
    "shipped",
    "on_hold",
    "released",
    "cancelled",
    "null",
    "1e400",
    "NaN",
];

const KEYS: &[&str] = &[
    "customer",
    "name",
    "email",
    "company",
    "shipping_address",
    "line1",
    "line2",
    "city",
    "region",
    "postal_code",
    "country",
    "lines",
    "sku",
    "quantity",
    "unit_price",
    "currency",
    "shipping_cost",
    "notes",
    "deliver_by",
    "status",
    "carrier",
    "tracking_number",
    "reason",
    "changes",
    "id",
    "number",
    "store_version",
    "warehouse_version",
    "cancel_requested",
    "cancel_reason",
    "created_at",
    "hold_reason",
    "held_from",
    "shipped_at",
    "cancel_rejected_reason",
    "content_changed_after_pick",
    "total",
];

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-zA-Z0-9 @.'%_-]{0,12}",
        2 => any::<String>(),
        2 => prop::sample::select(NASTY).prop_map(str::to_owned),
        1 => Just(String::new()),
        1 => Just("   ".to_owned()),
        1 => (95usize..110).prop_map(|n| "é".repeat(n)),
        1 => (490usize..700).prop_map(|n| "x".repeat(n)),
    ]
}

fn number() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<i64>().prop_map(Value::from),
        prop::sample::select(vec![
            0i64,
            1,
            -1,
            2,
            10_000,
            10_001,
            1_000_000_000,
            1_000_000_001,
            1_000_000_000_000,
            1_000_000_000_001,
            i64::MAX,
            i64::MIN,
        ])
        .prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_filter_map("finite", |f| serde_json::Number::from_f64(f)
            .map(Value::Number)),
    ]
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(KEYS).prop_map(str::to_owned),
        1 => text(),
    ]
}

/// Any JSON value, at most 4 levels deep and a few dozen nodes.
fn arb_json() -> BoxedStrategy<Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        number(),
        text().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::vec((key(), inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().collect())),
        ]
    })
    .boxed()
}

/// One change to a JSON document, at a node chosen by index.
#[derive(Debug, Clone)]
enum Mutation {
    Replace(Index, Value),
    Remove(Index),
    AddKey(Index, String, Value),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        3 => (any::<Index>(), arb_json()).prop_map(|(i, v)| Mutation::Replace(i, v)),
        2 => any::<Index>().prop_map(Mutation::Remove),
        1 => (any::<Index>(), key(), arb_json()).prop_map(|(i, k, v)| Mutation::AddKey(i, k, v)),
    ]
}

#[derive(Debug, Clone)]
enum Seg {
    Key(String),
    At(usize),
}

/// The path of every node of `v` (the root first).
fn nodes(v: &Value, here: &mut Vec<Seg>, out: &mut Vec<Vec<Seg>>) {
    out.push(here.clone());
    match v {
        Value::Object(m) => {
            for (k, child) in m {
                here.push(Seg::Key(k.clone()));
                nodes(child, here, out);
                here.pop();
            }
        }
        Value::Array(a) => {
            for (i, child) in a.iter().enumerate() {
                here.push(Seg::At(i));
                nodes(child, here, out);
                here.pop();
            }
        }
        _ => {}
    }
}

fn node_mut<'a>(v: &'a mut Value, path: &[Seg]) -> &'a mut Value {
    path.iter().fold(v, |v, seg| match seg {
        Seg::Key(k) => &mut v[k.as_str()],
        Seg::At(i) => &mut v[*i],
    })
}

fn mutate(mut v: Value, mutations: &[Mutation]) -> Value {
    for m in mutations {
        let mut all = Vec::new();
        nodes(&v, &mut Vec::new(), &mut all);
        match m {
            Mutation::Replace(i, new) => *node_mut(&mut v, &all[i.index(all.len())]) = new.clone(),
            Mutation::Remove(i) => {
                let Some((last, parent)) = all[i.index(all.len())].split_last() else {
                    continue;
                };
                match (node_mut(&mut v, parent), last) {
                    (Value::Object(m), Seg::Key(k)) => {
                        m.remove(k);
                    }
                    (Value::Array(a), Seg::At(i)) => {
                        a.remove(*i);
                    }
                    _ => {}
                }
            }
            Mutation::AddKey(i, k, new) => {
                if let Value::Object(m) = node_mut(&mut v, &all[i.index(all.len())]) {
                    m.insert(k.clone(), new.clone());
                }
            }
        }
    }
    v
}

/// Request bodies aimed at an endpoint whose valid body looks like
/// `template`: mostly the template with a few mutations, plus arbitrary
/// JSON, arbitrary bytes, and valid JSON cut short or with a byte changed.
fn hostile_body(template: Value) -> BoxedStrategy<Vec<u8>> {
    hostile_body_from(vec![template])
}

/// Like [`hostile_body`], starting from any of several valid bodies.
fn hostile_body_from(templates: Vec<Value>) -> BoxedStrategy<Vec<u8>> {
    let template = move || prop::sample::select(templates.clone());
    prop_oneof![
        1 => template().prop_map(|t| serde_json::to_vec(&t).unwrap_or_default()),
        6 => (template(), prop::collection::vec(mutation(), 1..4))
            .prop_map(|(t, m)| serde_json::to_vec(&mutate(t, &m)).unwrap_or_default()),
        2 => arb_json().prop_map(|v| serde_json::to_vec(&v).unwrap_or_default()),
        1 => prop::collection::vec(any::<u8>(), 0..256),
        1 => (template(), any::<Index>(), any::<u8>(), any::<bool>()).prop_map(|(t, at, byte, cut)| {
            let mut b = serde_json::to_vec(&t).unwrap_or_default();
            let i = at.index(b.len());
            if cut {
                b.truncate(i);
            } else {
                b[i] = byte;
            }
            b
        }),
    ]
    .boxed()
}

fn content_type() -> impl Strategy<Value = Option<&'static str>> {
    prop_oneof![
        8 => Just(Some("application/json")),
        1 => prop::sample::select(vec![
            Some("application/json; charset=utf-8"),
            Some("application/problem+json"),
            Some("text/plain"),
            Some("application/x-www-form-urlencoded"),
            Some("multipart/form-data; boundary=x"),
            Some(""),
            None,
        ]),
    ]
}

// ---------------------------------------------------------------------------
// Valid bodies the mutations start from
// ---------------------------------------------------------------------------

fn patch_template() -> Value {
    let full = order_body("Patched Person");
    json!({
        "customer": full["customer"],
        "shipping_address": full["shipping_address"],
        "lines": [{"sku": "WID-2", "name": "Gadget", "quantity": 3, "unit_price": 250}],
        "notes": "ring twice",
        "shipping_cost": 300,
    })
}

/// Every fulfillment action, so valid moves happen as well as refused ones.
fn fulfillment_templates() -> Vec<Value> {
    vec![
        json!({"status": "picking"}),
        json!({"status": "packed"}),
        json!({"status": "shipped", "carrier": "UPS", "tracking_number": "1Z999"}),
        json!({"status": "on_hold", "reason": "stock"}),
        json!({"status": "released"}),
    ]
}

fn content_item(id: &str, version: i64) -> Value {
    json!({
        "id": id, "number": format!("SO-9{}", &id[30..]), "store_version": version,
        "customer": {"name": "Eve", "email": "eve@example.com", "company": null},
        "shipping_address": {"name": "Eve", "line1": "1 Way", "line2": null, "city": "Paris",
                             "region": null, "postal_code": "75001", "country": "FR"},
        "lines": [{"sku": "S-1", "name": "Thing", "quantity": 1}],
        "notes": null, "deliver_by": null,
        "cancel_requested": false, "cancel_reason": null,
        "created_at": "2026-11-25T10:00:00Z"
    })
}

fn fulfillment_item(id: &str, version: i64) -> Value {
    json!({
        "id": id, "warehouse_version": version, "status": "on_hold",
        "hold_reason": "stock", "held_from": "pending",
        "carrier": null, "tracking_number": null, "shipped_at": null,
        "cancel_rejected_reason": null, "content_changed_after_pick": false
    })
}

// ---------------------------------------------------------------------------
// Checking answers and state
// ---------------------------------------------------------------------------

struct Answer {
    status: StatusCode,
    content_type: String,
    body: Vec<u8>,
}

impl Answer {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body)
            .chars()
            .take(600)
            .collect()
    }
}

/// Sends raw bytes; `bearer` adds the side's token, `headers` anything else.
async fn send(
    side: &Side,
    method: Method,
    path: &str,
    content_type: Option<&str>,
    body: Vec<u8>,
    bearer: bool,
    headers: &[(&str, &str)],
) -> Answer {
    let mut req = side
        .http
        .request(method, format!("{}{path}", side.url))
        .body(body);
    if bearer {
        req = req.bearer_auth(&side.token);
    }
    if let Some(ct) = content_type {
        req = req.header("content-type", ct);
    }
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let res = req.send().await.expect("request sent");
    let status = res.status();
    let content_type = res
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let body = res.bytes().await.expect("body read").to_vec();
    Answer {
        status,
        content_type,
        body,
    }
}

/// Signs `body` with the test secret under webhook-id `id` and posts it to
/// the side's sync endpoint.
async fn send_signed(side: &Side, id: &str, body: Vec<u8>) -> Answer {
    send_signed_to(side, "/api/v1/sync/changes", id, body).await
}

/// Like [`send_signed`], to any signed peer endpoint.
async fn send_signed_to(side: &Side, path: &str, id: &str, body: Vec<u8>) -> Answer {
    let ts = chrono::Utc::now().timestamp();
    let sig = Secrets::new(&[SECRET]).expect("secret").sign(id, ts, &body);
    let ts = ts.to_string();
    send(
        side,
        Method::POST,
        path,
        Some("application/json"),
        body,
        false,
        &[
            ("webhook-id", id),
            ("webhook-timestamp", &ts),
            ("webhook-signature", &sig),
        ],
    )
    .await
}

/// How often each endpoint answered each status, printed at the end of a
/// property so a run shows what it exercised (`--no-capture`).
#[derive(Default)]
struct Tally(RefCell<std::collections::BTreeMap<String, u32>>);

impl Tally {
    fn count(&self, what: &str, status: StatusCode) {
        *self
            .0
            .borrow_mut()
            .entry(format!("{what} {}", status.as_u16()))
            .or_default() += 1;
    }

    fn report(&self, test: &str) {
        let t = self.0.borrow();
        let parts: Vec<String> = t.iter().map(|(k, n)| format!("{k}: {n}")).collect();
        eprintln!("{test}: {}", parts.join(", "));
    }
}

/// No 5xx; a 4xx is a well-formed problem+json with the same status.
fn check_answer(tally: &Tally, a: &Answer, what: &str) -> Result<(), TestCaseError> {
    tally.count(what, a.status);
    prop_assert!(
        a.status.as_u16() < 500,
        "{what}: answered {} {}",
        a.status,
        a.text()
    );
    if a.status.is_client_error() {
        prop_assert_eq!(
            a.content_type.as_str(),
            "application/problem+json",
            "{}: {} {}",
            what,
            a.status,
            a.text()
        );
        let p = a.json();
        prop_assert_eq!(&p["status"], &json!(a.status.as_u16()), "{}: {}", what, p);
        prop_assert!(
            p["type"].is_string()
                && p["title"].is_string()
                && p["detail"].is_string()
                && p["errors"].is_array(),
            "{what}: not a problem: {p}"
        );
    }
    Ok(())
}

/// What a refused request must not change: the number of orders, outbox
/// rows and idempotency keys, and the target order's versions, time stamp
/// and audit trail. (`seen_webhooks` is left out: a signed batch is
/// remembered even when all its items are rejected.)
async fn fingerprint(side: &Side, order_id: &str) -> String {
    let q = format!(
        "SELECT CAST((SELECT COUNT(*) FROM orders) AS TEXT) \
         || '/' || CAST((SELECT COUNT(*) FROM outbox) AS TEXT) \
         || '/' || CAST((SELECT COUNT(*) FROM idempotency_keys) AS TEXT) \
         || '/' || CAST((SELECT COUNT(*) FROM audit_log WHERE order_id = '{order_id}') AS TEXT) \
         || '/' || COALESCE((SELECT CAST(store_version AS TEXT) || ',' \
                             || CAST(warehouse_version AS TEXT) || ',' \
                             || CAST(updated_at AS TEXT) \
                             FROM orders WHERE id = '{order_id}'), '-')"
    );
    side.sql(&q).await.join("")
}

/// Waits until neither side has anything left to deliver, so background
/// sync no longer changes what [`fingerprint`] reads.
async fn settle(pair: &Pair) {
    eventually(30, "both outboxes drained", || async {
        for side in [&pair.store, &pair.warehouse] {
            let (_, st) = side.get("/api/v1/sync/status").await;
            if st["pending"] != 0 {
                return None;
            }
        }
        Some(())
    })
    .await;
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

fn runner() -> TestRunner {
    TestRunner::new(Config {
        cases: CASES,
        failure_persistence: None,
        ..Config::default()
    })
}

/// Starts a pair with one order created at the store and known, with its
/// first fulfillment, on both sides. `None` when the backend is skipped.
fn pair_with_order(rt: &tokio::runtime::Runtime, b: Backend) -> Option<(Pair, String)> {
    rt.block_on(async {
        let pair = Pair::start(b).await?;
        let id = id_of(&create_order(&pair.store, "Target Person").await);
        wait_for_order(&pair.store, &id, "the warehouse's first report", |o| {
            o["fulfillment"]["status"] == "pending"
        })
        .await;
        settle(&pair).await;
        Some((pair, id))
    })
}

// ---------------------------------------------------------------------------
// Properties over HTTP
// ---------------------------------------------------------------------------

fn store_create_and_patch_survive_garbage(b: Backend) {
    let rt = runtime();
    let Some((pair, id)) = pair_with_order(&rt, b) else {
        return;
    };
    let store = &pair.store;
    let before = RefCell::new(rt.block_on(fingerprint(store, &id)));
    let strategy = (
        hostile_body(order_body("Fuzzed Person")),
        hostile_body(patch_template()),
        content_type(),
    );
    let tally = Tally::default();
    let result = runner().run(&strategy, |(create, patch, ct)| {
        rt.block_on(async {
            let a = send(
                store,
                Method::POST,
                "/api/v1/orders",
                ct,
                create.clone(),
                true,
                &[],
            )
            .await;
            check_answer(&tally, &a, "create")?;
            if a.status.is_success() {
                prop_assert_eq!(a.status, StatusCode::CREATED);
                settle(&pair).await;
                *before.borrow_mut() = fingerprint(store, &id).await;
            } else {
                let after = fingerprint(store, &id).await;
                prop_assert_eq!(
                    &after,
                    &*before.borrow(),
                    "a refused create changed the store"
                );
            }
            let path = format!("/api/v1/orders/{id}");
            let a = send(store, Method::PATCH, &path, ct, patch.clone(), true, &[]).await;
            check_answer(&tally, &a, "patch")?;
            if a.status.is_success() {
                settle(&pair).await;
            } else {
                let after = fingerprint(store, &id).await;
                prop_assert_eq!(
                    &after,
                    &*before.borrow(),
                    "a refused patch changed the store"
                );
            }
            *before.borrow_mut() = fingerprint(store, &id).await;
            Ok(())
        })
    });
    tally.report(&format!("{b:?}"));
    if let Err(e) = result {
        panic!("{e}");
    }
    rt.block_on(pair.stop());
}

fn warehouse_fulfillment_survives_garbage(b: Backend) {
    let rt = runtime();
    let Some((pair, id)) = pair_with_order(&rt, b) else {
        return;
    };
    let wh = &pair.warehouse;
    let path = format!("/api/v1/orders/{id}/fulfillment");
    let before = RefCell::new(rt.block_on(fingerprint(wh, &id)));
    let strategy = (hostile_body_from(fulfillment_templates()), content_type());
    let tally = Tally::default();
    let result = runner().run(&strategy, |(body, ct)| {
        rt.block_on(async {
            let a = send(wh, Method::POST, &path, ct, body.clone(), true, &[]).await;
            check_answer(&tally, &a, "fulfillment")?;
            if a.status.is_success() {
                settle(&pair).await;
            } else {
                let after = fingerprint(wh, &id).await;
                prop_assert_eq!(
                    &after,
                    &*before.borrow(),
                    "a refused action changed the warehouse"
                );
            }
            *before.borrow_mut() = fingerprint(wh, &id).await;
            Ok(())
        })
    });
    tally.report(&format!("{b:?}"));
    if let Err(e) = result {
        panic!("{e}");
    }
    rt.block_on(pair.stop());
}

fn signed_sync_garbage_is_refused_or_rejected(b: Backend) {
    let rt = runtime();
    let Some((pair, id)) = pair_with_order(&rt, b) else {
        return;
    };
    let other = uuid::Uuid::now_v7().to_string();
    let to_warehouse = json!({"changes": [content_item(&id, 2), content_item(&other, 1)]});
    let to_store = json!({"changes": [fulfillment_item(&id, 2)]});
    let n = Cell::new(0u32);
    let strategy = (hostile_body(to_warehouse), hostile_body(to_store));
    let tally = Tally::default();
    let result = runner().run(&strategy, |(for_warehouse, for_store)| {
        rt.block_on(async {
            for (side, body) in [(&pair.warehouse, for_warehouse), (&pair.store, for_store)] {
                n.set(n.get() + 1);
                let before = fingerprint(side, &id).await;
                let a = send_signed(side, &format!("hostile-{}", n.get()), body).await;
                let what = format!("sync at the {}", side.role);
                check_answer(&tally, &a, &what)?;
                let applied = a.status.is_success()
                    && a.json()["results"]
                        .as_array()
                        .is_some_and(|r| r.iter().any(|i| i["outcome"] == "applied"));
                if applied {
                    settle(&pair).await;
                } else {
                    let after = fingerprint(side, &id).await;
                    prop_assert_eq!(&after, &before, "{} changed state: {}", what, a.text());
                }
            }
            Ok(())
        })
    });
    tally.report(&format!("{b:?}"));
    if let Err(e) = result {
        panic!("{e}");
    }
    rt.block_on(pair.stop());
}

// ---------------------------------------------------------------------------
// The parsers themselves
// ---------------------------------------------------------------------------

/// Bytes aimed at every parser at once: a mutated create body, content
/// snapshot or fulfillment snapshot, or anything at all.
fn parser_input() -> BoxedStrategy<Vec<u8>> {
    let id = "0190f7a0-0000-7000-8000-000000000001";
    prop_oneof![
        hostile_body(order_body("Unit Person")),
        hostile_body(patch_template()),
        hostile_body(content_item(id, 3)),
        hostile_body(fulfillment_item(id, 3)),
    ]
    .boxed()
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 512,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// Never panics, a refusal is a 400 or a 422 naming at least one field,
    /// and whatever the store's API accepts, the warehouse accepts when it
    /// arrives as a snapshot (or it would become a dead letter).
    #[test]
    fn parsers_never_panic_and_agree(bytes in parser_input()) {
        use axum::response::IntoResponse;
        let (base_content, base_pricing) = serde_json::from_value::<CreateOrderInput>(
            order_body("Base Person"),
        )
        .expect("valid")
        .parse()
        .expect("valid");
        match parse_json::<CreateOrderInput>(&bytes) {
            Ok(input) => match input.parse() {
                Ok((content, pricing)) => {
                    // Totals never overflow.
                    prop_assert!(pricing.total(&content.lines).get() >= 0);
                    let id = fulfillment::domain::OrderId::new();
                    let snap = ContentSnapshot::from_domain(
                        id, "SO-000001", 1, &content, chrono::Utc::now(),
                    );
                    let wire = serde_json::to_vec(&snap).expect("json");
                    let back: ContentSnapshot = serde_json::from_slice(&wire).expect("parses");
                    prop_assert_eq!(back.parse(), Ok(content));
                }
                Err(errors) => prop_assert!(!errors.is_empty()),
            },
            Err(e) => {
                let status = e.into_response().status();
                prop_assert!(
                    status == StatusCode::BAD_REQUEST || status == StatusCode::UNPROCESSABLE_ENTITY,
                    "{status}"
                );
            }
        }
        if let Ok(patch) = parse_json::<PatchOrderInput>(&bytes)
            && let Err(errors) = patch.apply(&base_content, &base_pricing) {
                prop_assert!(!errors.is_empty());
            }
        if let Ok(snap) = serde_json::from_slice::<ContentSnapshot>(&bytes)
            && let Err(errors) = snap.parse() {
                prop_assert!(!errors.is_empty());
            }
        if let Ok(snap) = serde_json::from_slice::<FulfillmentSnapshot>(&bytes)
            && let Ok(f) = snap.parse() {
                // Round trip: what the store keeps is what was sent.
                let again = FulfillmentSnapshot::from_domain(snap.id, snap.warehouse_version, &f);
                prop_assert_eq!(again.parse(), Ok(f));
            }
    }
}

// ---------------------------------------------------------------------------
// Metacharacters
// ---------------------------------------------------------------------------

const SQL: &str = "'; DROP TABLE orders;--";
const HTML: &str = "<script>alert(1)</script>";
const QUOTES: &str = "\"double\" 'single' `back` \\ \\\\ \\n";
const UNICODE: &str = "🚚📦 \u{202e}txt.exe\u{202c} \u{200f}שלום\u{200e} 👩\u{200d}👩\u{200d}👧 é";
const LIKE: &str = "100% _x_ %_%";

async fn metacharacters_are_stored_and_returned_verbatim(b: Backend) {
    let Some(pair) = Pair::start(b).await else {
        return;
    };
    let all = format!("{SQL} {HTML} {QUOTES} {UNICODE} {LIKE}");
    let body = json!({
        "customer": {"name": format!("{SQL} {LIKE}"),
                     "email": "o'neil+%_\"<b>\\x@example.com",
                     "company": all},
        "shipping_address": {"name": HTML, "line1": QUOTES, "line2": UNICODE, "city": SQL,
                             "region": LIKE, "postal_code": all, "country": "GB"},
        "lines": [{"sku": format!("{SQL}{LIKE}"), "name": HTML, "quantity": 1, "unit_price": 1},
                  {"sku": UNICODE, "name": QUOTES, "quantity": 2, "unit_price": 2}],
        "currency": "EUR",
        "notes": all,
    });
    let (s, created) = pair.store.post("/api/v1/orders", &body).await;
    assert_eq!(s, StatusCode::CREATED, "{created}");
    let id = id_of(&created);
    let plain = id_of(&create_order(&pair.store, "Plain Person").await);

    // The text fields both sides show, as (pointer in the request, pointer
    // in the answer).
    let fields = [
        "/customer/name",
        "/customer/email",
        "/customer/company",
        "/shipping_address/name",
        "/shipping_address/line1",
        "/shipping_address/line2",
        "/shipping_address/city",
        "/shipping_address/region",
        "/shipping_address/postal_code",
        "/lines/0/sku",
        "/lines/0/name",
        "/lines/1/sku",
        "/lines/1/name",
        "/notes",
    ];
    let verbatim = |o: &Value, side: &str| {
        for f in fields {
            assert_eq!(o.pointer(f), body.pointer(f), "{side} {f}: {o}");
        }
    };
    verbatim(&created, "store (create)");
    let (_, got) = pair.store.get(&format!("/api/v1/orders/{id}")).await;
    verbatim(&got, "store");
    let at_wh = wait_for_order(&pair.warehouse, &id, "order at the warehouse", |_| true).await;
    verbatim(&at_wh, "warehouse");

    // Metacharacters in the warehouse's text fields reach the store intact.
    let path = format!("/api/v1/orders/{id}/fulfillment");
    let (s, o) = pair
        .warehouse
        .post(&path, &json!({"status": "on_hold", "reason": all}))
        .await;
    assert_eq!(s, StatusCode::OK, "{o}");
    assert_eq!(o["hold_reason"], json!(all));
    let at_store = wait_for_order(&pair.store, &id, "hold at the store", |o| {
        o["fulfillment"]["status"] == "on_hold"
    })
    .await;
    assert_eq!(at_store["fulfillment"]["hold_reason"], json!(all));
    for step in [
        json!({"status": "released"}),
        json!({"status": "picking"}),
        json!({"status": "packed"}),
        json!({"status": "shipped", "carrier": HTML, "tracking_number": format!("{SQL}{LIKE}")}),
    ] {
        let (s, o) = pair.warehouse.post(&path, &step).await;
        assert_eq!(s, StatusCode::OK, "{step}: {o}");
    }
    let at_store = wait_for_order(&pair.store, &id, "shipment at the store", |o| {
        o["fulfillment"]["status"] == "shipped"
    })
    .await;
    assert_eq!(at_store["fulfillment"]["carrier"], HTML);
    assert_eq!(
        at_store["fulfillment"]["tracking_number"],
        json!(format!("{SQL}{LIKE}"))
    );
    // And a cancel reason from the store reaches the warehouse.
    let (s, o) = pair
        .store
        .post(
            &format!("/api/v1/orders/{plain}/cancel"),
            &json!({"reason": all}),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{o}");
    assert_eq!(o["cancel_reason"], json!(all));
    let o = wait_for_order(&pair.warehouse, &plain, "cancel at the warehouse", |o| {
        o["status"] == "cancelled"
    })
    .await;
    assert_eq!(o["cancel_reason"], json!(all));

    // Search: LIKE wildcards match only themselves.
    let search = |q: &'static str| {
        let store = &pair.store;
        async move {
            let url = format!("{}/api/v1/orders", store.url);
            let r = store
                .http
                .get(url)
                .query(&[("q", q)])
                .bearer_auth(&store.token)
                .send()
                .await
                .expect("sent");
            assert_eq!(r.status(), StatusCode::OK, "q={q}");
            let list: Value = r.json().await.expect("json");
            let mut ids: Vec<String> = list["items"]
                .as_array()
                .expect("items")
                .iter()
                .map(id_of)
                .collect();
            ids.sort();
            ids
        }
    };
    assert_eq!(
        search("%").await,
        vec![id.clone()],
        "q=% matches only a literal %"
    );
    assert_eq!(
        search("_").await,
        vec![id.clone()],
        "q=_ matches only a literal _"
    );
    assert_eq!(search("%_%").await, vec![id.clone()]);
    assert!(search("P%n").await.is_empty(), "% is not a wildcard");
    assert!(search("Pl_in").await.is_empty(), "_ is not a wildcard");
    assert_eq!(
        search("\\").await,
        vec![id.clone()],
        "a backslash (in the e-mail)"
    );
    assert!(
        search("\\%").await.is_empty(),
        "a backslash does not escape: \\% occurs nowhere"
    );
    assert_eq!(search("plain").await, vec![plain.clone()]);
    assert_eq!(
        search("o'neil+%_").await,
        vec![id.clone()],
        "e-mail substring"
    );
    assert_eq!(
        search(SQL).await,
        vec![id.clone()],
        "a name part with SQL in it"
    );
    // Exact SKU, metacharacters and all.
    let sku: &'static str = Box::leak(format!("{SQL}{LIKE}").into_boxed_str());
    assert_eq!(search(sku).await, vec![id.clone()]);

    // Nothing was dropped or rewritten along the way: the columns hold the
    // text itself (no escaping at rest), on both sides.
    for side in [&pair.store, &pair.warehouse] {
        assert_eq!(side.sql("SELECT COUNT(*) FROM orders").await, ["2"]);
        let row = |col: &str| format!("SELECT {col} FROM orders WHERE id = '{id}'");
        assert_eq!(side.sql(&row("customer_company")).await, [all.as_str()]);
        assert_eq!(side.sql(&row("ship_name")).await, [HTML]);
        assert_eq!(side.sql(&row("ship_line2")).await, [UNICODE]);
        assert_eq!(side.sql(&row("notes")).await, [all.as_str()]);
        assert_eq!(side.sql(&row("hold_reason")).await, ["NULL"]);
    }
    let (_, audit) = pair.store.get(&format!("/api/v1/orders/{id}/audit")).await;
    assert_eq!(audit["items"][0]["changes"], json!(["created"]));
    pair.stop().await;
}

// ---------------------------------------------------------------------------
// Headers and limits
// ---------------------------------------------------------------------------

async fn odd_headers_are_refused_cleanly(b: Backend) {
    let Some(pair) = Pair::start(b).await else {
        return;
    };
    let store = &pair.store;
    let body = serde_json::to_vec(&order_body("Header Person")).expect("json");
    let create = |key: Vec<u8>| {
        let body = body.clone();
        async move {
            let key = reqwest::header::HeaderValue::from_bytes(&key).expect("header value");
            let r = store
                .http
                .post(format!("{}/api/v1/orders", store.url))
                .bearer_auth(&store.token)
                .header("content-type", "application/json")
                .header("idempotency-key", key)
                .body(body)
                .send()
                .await
                .expect("sent");
            let status = r.status();
            let ct = r.headers()["content-type"]
                .to_str()
                .unwrap_or("")
                .to_owned();
            (status, ct, r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    // Too long, blank, or not visible ASCII: 422 naming the header.
    for bad in [
        vec![b'k'; 256],
        b"   ".to_vec(),
        "clé".as_bytes().to_vec(),
        vec![0xff, 0xfe],
    ] {
        let (s, ct, p) = create(bad.clone()).await;
        assert_eq!(
            s,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{:?}: {p}",
            String::from_utf8_lossy(&bad)
        );
        assert_eq!(ct, "application/problem+json");
        assert_eq!(p["errors"][0]["field"], "Idempotency-Key", "{p}");
    }
    assert_eq!(store.sql("SELECT COUNT(*) FROM orders").await, ["0"]);
    // The longest key, and one full of metacharacters, work and replay.
    for good in [
        "k".repeat(255),
        "'; DROP TABLE idempotency_keys;-- %_\\\"<x>".to_owned(),
    ] {
        let (s, _, first) = create(good.clone().into_bytes()).await;
        assert_eq!(s, StatusCode::CREATED, "{first}");
        let (s, _, again) = create(good.into_bytes()).await;
        assert_eq!(s, StatusCode::CREATED);
        assert_eq!(again["id"], first["id"], "replayed, not created again");
    }
    assert_eq!(store.sql("SELECT COUNT(*) FROM orders").await, ["2"]);

    // webhook-id: printable oddities are just an id; a repeat is refused.
    let wh = &pair.warehouse;
    let item_id = uuid::Uuid::now_v7().to_string();
    let item = content_item(&item_id, 1);
    let batch = serde_json::to_vec(&json!({"changes": [item]})).expect("json");
    let odd = "'; DROP TABLE seen_webhooks;-- %_\\\"<x> {}";
    let a = send_signed(wh, odd, batch.clone()).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text());
    assert_eq!(a.json()["results"][0]["outcome"], "applied");
    let a = send_signed(wh, odd, batch.clone()).await;
    assert_eq!(a.status, StatusCode::CONFLICT, "replayed id: {}", a.text());
    assert_eq!(a.content_type, "application/problem+json");
    assert_eq!(
        wh.sql(&format!(
            "SELECT id FROM seen_webhooks WHERE id = '{}'",
            odd.replace('\'', "''")
        ))
        .await,
        [odd],
        "stored verbatim"
    );
    // Too long, or bytes that are not ASCII: unreadable, so unsigned (401).
    let ts = chrono::Utc::now().timestamp();
    for bad in [vec![b'i'; 201], "clé".as_bytes().to_vec()] {
        let id = String::from_utf8_lossy(&bad).into_owned();
        let sig = Secrets::new(&[SECRET])
            .expect("secret")
            .sign(&id, ts, &batch);
        let r = wh
            .http
            .post(format!("{}/api/v1/sync/changes", wh.url))
            .header("content-type", "application/json")
            .header(
                "webhook-id",
                reqwest::header::HeaderValue::from_bytes(&bad).expect("value"),
            )
            .header("webhook-timestamp", ts.to_string())
            .header("webhook-signature", sig)
            .body(batch.clone())
            .send()
            .await
            .expect("sent");
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{id:?}");
        assert_eq!(r.headers()["content-type"], "application/problem+json");
    }
    // Timestamps that are not numbers, or absurd ones.
    for ts in ["", "abc", "-1", "99999999999999999999999", "1e9", " "] {
        let r = wh
            .http
            .post(format!("{}/api/v1/sync/changes", wh.url))
            .header("content-type", "application/json")
            .header("webhook-id", "ts-check")
            .header("webhook-timestamp", ts)
            .header("webhook-signature", "v1,AAAA")
            .body(batch.clone())
            .send()
            .await
            .expect("sent");
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "timestamp {ts:?}");
    }
    // The refused requests changed nothing: the order applied once is there
    // once, at its first version. (Not a count of all orders: the store's
    // two orders reach the warehouse whenever its relay gets to them.)
    assert_eq!(
        wh.sql(&format!(
            "SELECT store_version FROM orders WHERE id = '{item_id}'"
        ))
        .await,
        ["1"]
    );

    // A path id that is not a UUID, or not even UTF-8, is a 400 problem.
    for path in [
        "/api/v1/orders/%FF",
        "/api/v1/orders/%C3%28/audit",
        "/api/v1/orders/'%20OR%201=1--",
        "/api/v1/orders/%00",
    ] {
        let a = send(store, Method::GET, path, None, vec![], true, &[]).await;
        assert_eq!(a.status, StatusCode::BAD_REQUEST, "{path}: {}", a.text());
        assert_eq!(a.content_type, "application/problem+json", "{path}");
        assert_eq!(a.json()["errors"][0]["field"], "id", "{path}");
    }
    pair.stop().await;
}

async fn size_limits_answer_4xx(b: Backend) {
    let Some(pair) = Pair::start(b).await else {
        return;
    };
    let id = id_of(&create_order(&pair.store, "Limit Person").await);
    wait_for_order(&pair.warehouse, &id, "order at the warehouse", |_| true).await;
    let huge = format!("{{\"notes\": \"{}\"}}", "x".repeat(1024 * 1024)).into_bytes();
    for (side, method, path) in [
        (&pair.store, Method::PATCH, format!("/api/v1/orders/{id}")),
        (
            &pair.store,
            Method::POST,
            format!("/api/v1/orders/{id}/cancel"),
        ),
        (&pair.store, Method::POST, "/api/v1/sync/replay".to_owned()),
        (
            &pair.warehouse,
            Method::POST,
            format!("/api/v1/orders/{id}/fulfillment"),
        ),
    ] {
        let a = send(
            side,
            method.clone(),
            &path,
            Some("application/json"),
            huge.clone(),
            true,
            &[],
        )
        .await;
        assert_eq!(a.status, StatusCode::PAYLOAD_TOO_LARGE, "{method} {path}");
        assert_eq!(a.content_type, "application/problem+json");
    }
    // Signed or not, an oversized sync body is refused before anything else.
    let a = send_signed(&pair.warehouse, "too-big", huge.clone()).await;
    assert_eq!(a.status, StatusCode::PAYLOAD_TOO_LARGE);
    // Nesting deeper than the JSON parser allows is malformed JSON.
    let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000)).into_bytes();
    let a = send(
        &pair.store,
        Method::POST,
        "/api/v1/orders",
        Some("application/json"),
        deep.clone(),
        true,
        &[],
    )
    .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST, "{}", a.text());
    // A sync item is kept as raw JSON until it is parsed on its own, so one
    // nested too deep is rejected like any item that is not a snapshot,
    // and nothing is applied.
    let a = send_signed(&pair.store, "deep", deep).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text());
    let results: serde_json::Value = serde_json::from_str(&a.text()).expect("json");
    assert_eq!(results["results"][0]["outcome"], "rejected", "{results}");
    assert_eq!(results["results"].as_array().map(Vec::len), Some(1));
    // Too many lines, too many batch items, a version beyond any real one.
    let mut many = order_body("Many Lines");
    many["lines"] = json!(vec![many["lines"][0].clone(); 201]);
    let (s, p) = pair.store.post("/api/v1/orders", &many).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(p["errors"][0]["field"], "lines", "{p}");
    let batch = json!({"changes": vec![json!({}); 1001]});
    let a = send_signed(
        &pair.warehouse,
        "too-many",
        serde_json::to_vec(&batch).expect("json"),
    )
    .await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", a.text());
    let far = uuid::Uuid::now_v7().to_string();
    let batch =
        json!({"changes": [content_item(&far, i64::MAX), content_item(&far, 1_000_000_001)]});
    let a = send_signed(
        &pair.warehouse,
        "far-future",
        serde_json::to_vec(&batch).expect("json"),
    )
    .await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text());
    for r in a.json()["results"].as_array().expect("results") {
        assert_eq!(r["outcome"], "rejected", "{r}");
    }
    // Nor can a peer ask for a version to be raised that far.
    let resend = json!({"items": [{"id": id, "above": i64::MAX}]});
    let a = send_signed_to(
        &pair.store,
        "/api/v1/sync/resend",
        "resend-far",
        serde_json::to_vec(&resend).expect("json"),
    )
    .await;
    assert_eq!(a.status, StatusCode::UNPROCESSABLE_ENTITY, "{}", a.text());
    assert_eq!(a.json()["errors"][0]["field"], "items[0].above");
    let (_, o) = pair.store.get(&format!("/api/v1/orders/{id}")).await;
    assert_eq!(o["sync"]["store_version"], 1);
    // Reconciliation still works: no absurd version made it into a digest.
    let (s, job) = pair
        .store
        .call(Method::POST, "/api/v1/sync/reconcile", None)
        .await;
    assert_eq!(s, StatusCode::ACCEPTED, "{job}");
    let job = eventually(20, "the reconciliation ends", || async {
        let (_, job) = pair.store.get("/api/v1/sync/reconcile").await;
        (job["state"] != "running").then_some(job)
    })
    .await;
    assert_eq!(job["state"], "finished", "{job}");
    assert_eq!(
        pair.warehouse.sql("SELECT COUNT(*) FROM orders").await,
        ["1"]
    );
    pair.stop().await;
}

/// A client that sends its body one byte per second is cut off with a 408
/// problem+json once the request timeout passes. Runs the real binary with
/// `FULFILLMENT_REQUEST_TIMEOUT=2s`, so it takes seconds, not 30.
#[test]
fn slow_body_is_cut_off_with_408() {
    let sqlite = crate::common::db::TestDb::sqlite();
    let db = sqlite.url.clone();
    let (ok, token, err) = crate::common::process::run(
        &[
            "token",
            "create",
            "--role",
            "store",
            "--database-url",
            &db,
            "--name",
            "slow",
        ],
        None,
    );
    assert!(ok, "{err}");
    let token = token.trim();
    let port = crate::common::net::free_port();
    let mut child = crate::common::process::Cmd::bin()
        .args(["serve", "--role", "store", "--database-url", &db])
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .args(["--peer-url", "http://127.0.0.1:9"])
        .env("FULFILLMENT_SYNC_SECRET", SECRET)
        .env("FULFILLMENT_REQUEST_TIMEOUT", "2s")
        .spawn();
    child.wait_ready(port, Duration::from_secs(30));
    let result = std::panic::catch_unwind(|| {
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut conn = loop {
            match TcpStream::connect(("127.0.0.1", port)) {
                Ok(c) => break c,
                Err(e) if Instant::now() < deadline => {
                    let _ = e;
                    std::thread::sleep(Duration::from_millis(100));
                }
                Err(e) => panic!("the service did not start: {e}"),
            }
        };
        let body = serde_json::to_vec(&order_body("Slow Person")).expect("json");
        write!(
            conn,
            "POST /api/v1/orders HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )
        .expect("headers sent");
        conn.set_read_timeout(Some(Duration::from_millis(1000)))
            .expect("timeout");
        let started = Instant::now();
        let mut answer = Vec::new();
        for byte in &body {
            // One byte a second, and a look for an answer in between.
            if conn.write_all(&[*byte]).is_err() {
                break;
            }
            let mut buf = [0u8; 4096];
            match conn.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    answer.extend_from_slice(&buf[..n]);
                    break;
                }
                Err(_) => {}
            }
            assert!(
                started.elapsed() < Duration::from_secs(15),
                "still reading the body after 15 s"
            );
        }
        // Read the rest of the answer.
        conn.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        let mut buf = [0u8; 4096];
        while let Ok(n) = conn.read(&mut buf) {
            if n == 0 {
                break;
            }
            answer.extend_from_slice(&buf[..n]);
            if answer.ends_with(b"}") {
                break;
            }
        }
        let elapsed = started.elapsed();
        let text = String::from_utf8_lossy(&answer).into_owned();
        assert!(text.starts_with("HTTP/1.1 408"), "{text:?}");
        assert!(
            text.to_ascii_lowercase()
                .contains("content-type: application/problem+json"),
            "{text}"
        );
        assert!(text.contains("\"status\":408"), "{text}");
        assert!(
            elapsed >= Duration::from_millis(1500) && elapsed < Duration::from_secs(10),
            "cut off after {elapsed:?}, expected about 2 s"
        );
    });
    child.kill();
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
    // Nothing was created.
    let rt = runtime();
    let count = rt.block_on(async {
        fulfillment::storage::install_drivers();
        use sqlx::Connection;
        let mut c = sqlx::AnyConnection::connect(&db).await.expect("connect");
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM orders")
            .fetch_one(&mut c)
            .await
            .expect("count");
        n
    });
    assert_eq!(count, 0);
}

// ---------------------------------------------------------------------------
// Logs
// ---------------------------------------------------------------------------

/// Tokens (good and bad), the sync secret, signatures and request bodies
/// never reach a log line, even at debug level, through successes and
/// refusals alike.
async fn no_secret_or_body_is_logged(b: Backend) {
    let log = CapturedLogs::install("debug,sqlx=warn");
    let Some(pair) = Pair::start(b).await else {
        return;
    };
    let canary = "body-canary-7f3a9c";
    let mut body = order_body(canary);
    body["notes"] = json!(format!("notes {canary}"));
    let (s, o) = pair.store.post("/api/v1/orders", &body).await;
    assert_eq!(s, StatusCode::CREATED, "{o}");
    let id = id_of(&o);
    wait_for_order(&pair.warehouse, &id, "order at the warehouse", |_| true).await;
    // Refusals log a reason; the reason must not carry the secret material.
    let bad_token = "fst_bad-token-canary-51c2";
    let r = pair
        .store
        .http
        .get(format!("{}/api/v1/orders", pair.store.url))
        .bearer_auth(bad_token)
        .send()
        .await
        .expect("sent");
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    let mut invalid = body.clone();
    invalid["customer"]["email"] = json!(format!("not-an-email-{canary}"));
    let (s, _) = pair.store.post("/api/v1/orders", &invalid).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    let batch = serde_json::to_vec(&json!({"changes": [{"note": canary}]})).expect("json");
    let wrong_secret = "wrong-secret-canary-9d1e";
    let ts = chrono::Utc::now().timestamp();
    let bad_sig = Secrets::new(&[wrong_secret])
        .expect("secret")
        .sign("log-1", ts, &batch);
    let a = send(
        &pair.warehouse,
        Method::POST,
        "/api/v1/sync/changes",
        Some("application/json"),
        batch.clone(),
        false,
        &[
            ("webhook-id", "log-1"),
            ("webhook-timestamp", &ts.to_string()),
            ("webhook-signature", &bad_sig),
        ],
    )
    .await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    let good_sig = Secrets::new(&[SECRET])
        .expect("secret")
        .sign("log-2", ts, &batch);
    let a = send_signed(&pair.warehouse, "log-2", batch).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.text());
    let tokens = [pair.store.token.clone(), pair.warehouse.token.clone()];
    pair.stop().await;

    let text = log.checked_text(&["order created", "refused a sync request"]);
    for (what, needle) in [
        ("the store's token", tokens[0].clone()),
        ("the warehouse's token", tokens[1].clone()),
        ("a request body", canary.to_owned()),
        ("a bad token", bad_token.to_owned()),
        ("the sync secret", SECRET.to_owned()),
        ("a wrong secret", wrong_secret.to_owned()),
        ("a bad signature", bad_sig),
        ("a good signature", good_sig),
    ] {
        assert!(!text.contains(&needle), "the log shows {what}: {needle}");
    }
}

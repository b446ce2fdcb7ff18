//! After the faults: read both sides completely, wait until they agree, and
//! check every order against the ledger.
//!
//! - divergence: the warehouse's copy of the store-owned content equals the
//!   store's, the store's copy of the warehouse-owned fulfillment equals the
//!   warehouse's, nothing is missing on either side, every order is synced,
//!   and neither outbox has pending or dead rows;
//! - lost updates: each side's own fields hold its last acknowledged write
//!   (or a later write whose answer was lost).

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::api::{Api, Reply};
use crate::ledger::{Cancel, Ledger, Tracked, WhState, notes_k};

/// Both sides, read one after the other.
pub struct Snapshot {
    pub store: BTreeMap<String, Value>,
    pub warehouse: BTreeMap<String, Value>,
    pub store_status: Value,
    pub warehouse_status: Value,
}

pub async fn list_all(api: &Api) -> Option<BTreeMap<String, Value>> {
    list_all_where(api, "").await
}

/// Every order a side lists with `filter` (say `&status=shipped`).
pub async fn list_all_where(api: &Api, filter: &str) -> Option<BTreeMap<String, Value>> {
    let mut out = BTreeMap::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/orders?limit=500{filter}&cursor={c}"),
            None => format!("/api/v1/orders?limit=500{filter}"),
        };
        let Reply::Answered(StatusCode::OK, page) = api.get(&path).await else {
            return None;
        };
        for o in page["items"].as_array()? {
            out.insert(o["id"].as_str()?.to_owned(), o.clone());
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => return Some(out),
        }
    }
}

pub async fn status(api: &Api) -> Option<Value> {
    match api.get("/api/v1/sync/status").await {
        Reply::Answered(StatusCode::OK, v) => Some(v),
        _ => None,
    }
}

pub async fn snapshot(store: &Api, warehouse: &Api) -> Option<Snapshot> {
    Some(Snapshot {
        store_status: status(store).await?,
        warehouse_status: status(warehouse).await?,
        store: list_all(store).await?,
        warehouse: list_all(warehouse).await?,
    })
}

/// The store-owned content as the store shows it (money left out: the
/// warehouse never has it).
/// An order's lines as the store sent them: SKU, name and quantity (a
/// warehouse's lines also say what became of them).
fn named_lines(o: &Value) -> Vec<Value> {
    o["lines"]
        .as_array()
        .map(|ls| {
            ls.iter()
                .map(|l| json!({"sku": l["sku"], "name": l["name"], "quantity": l["quantity"]}))
                .collect()
        })
        .unwrap_or_default()
}

fn store_content(o: &Value) -> Value {
    json!({
        "number": o["number"], "customer": o["customer"], "shipping_address": o["shipping_address"],
        "lines": named_lines(o), "notes": o["notes"], "deliver_by": o["deliver_by"],
        "cancel_requested": o["status"] == "cancel_requested", "cancel_reason": o["cancel_reason"],
        "store_version": o["sync"]["store_version"],
    })
}

/// The store-owned content as the warehouse holds it.
fn warehouse_content(o: &Value) -> Value {
    json!({
        "number": o["number"], "customer": o["customer"], "shipping_address": o["shipping_address"],
        "lines": named_lines(o), "notes": o["notes"], "deliver_by": o["deliver_by"],
        "cancel_requested": o["cancel_requested"], "cancel_reason": o["cancel_reason"],
        "store_version": o["sync"]["store_version"],
    })
}

pub const FULFILLMENT_FIELDS: [&str; 7] = [
    "status",
    "hold_reason",
    "carrier",
    "tracking_number",
    "shipped_at",
    "cancel_rejected_reason",
    "content_changed_after_pick",
];

/// The warehouse-owned fulfillment as the store holds it.
fn store_fulfillment(o: &Value) -> Value {
    let f = &o["fulfillment"];
    let mut out: serde_json::Map<String, Value> = FULFILLMENT_FIELDS
        .iter()
        .map(|k| ((*k).to_owned(), f[*k].clone()))
        .collect();
    out.insert(
        "warehouse_version".into(),
        o["sync"]["warehouse_version"].clone(),
    );
    Value::Object(out)
}

/// The warehouse-owned fulfillment as the warehouse shows it.
fn warehouse_fulfillment(o: &Value) -> Value {
    let mut out: serde_json::Map<String, Value> = FULFILLMENT_FIELDS
        .iter()
        .map(|k| ((*k).to_owned(), o[*k].clone()))
        .collect();
    out.insert(
        "warehouse_version".into(),
        o["sync"]["warehouse_version"].clone(),
    );
    Value::Object(out)
}

/// The fields in which two objects differ, as `field: a ≠ b`.
pub fn diff(a: &Value, b: &Value) -> String {
    let keys: BTreeSet<&String> = a
        .as_object()
        .into_iter()
        .chain(b.as_object())
        .flat_map(|o| o.keys())
        .collect();
    keys.into_iter()
        .filter(|k| a[k.as_str()] != b[k.as_str()])
        .map(|k| format!("{k}: {} ≠ {}", a[k.as_str()], b[k.as_str()]))
        .collect::<Vec<_>>()
        .join(", ")
}

/// What keeps the two sides from agreeing.
#[derive(Debug, Default)]
pub struct Divergence {
    /// Order id → what differs.
    pub orders: BTreeMap<String, Vec<String>>,
    /// Outbox status problems (pending or dead rows).
    pub outbox: Vec<String>,
}

impl Divergence {
    pub fn is_clean(&self) -> bool {
        self.orders.is_empty() && self.outbox.is_empty()
    }
}

/// The verdict of a convergence run: converged within `bound`, nothing
/// acknowledged lost, no unexpected API answer; each failure names the seed
/// that replays it.
pub fn assert_clean(
    seed: u64,
    bound: Duration,
    div: &Divergence,
    lost: &[String],
    unexpected: &[String],
) {
    assert!(
        div.is_clean(),
        "seed {seed}: the sides did not converge within {}s: {} orders differ, outbox: {:?}",
        bound.as_secs(),
        div.orders.len(),
        div.outbox
    );
    assert!(
        lost.is_empty(),
        "seed {seed}: {} lost updates (first: {})",
        lost.len(),
        lost[0]
    );
    assert!(
        unexpected.is_empty(),
        "seed {seed}: {} unexpected API answers (first: {})",
        unexpected.len(),
        unexpected[0]
    );
}

pub fn divergence(s: &Snapshot) -> Divergence {
    let mut d = Divergence::default();
    let mut note = |id: &str, what: String| d.orders.entry(id.to_owned()).or_default().push(what);
    for (id, so) in &s.store {
        let Some(wo) = s.warehouse.get(id) else {
            note(id, "missing at the warehouse".into());
            continue;
        };
        let (sc, wc) = (store_content(so), warehouse_content(wo));
        if sc != wc {
            note(
                id,
                format!("content (store vs warehouse): {}", diff(&sc, &wc)),
            );
        }
        let (sf, wf) = (store_fulfillment(so), warehouse_fulfillment(wo));
        if sf != wf {
            note(
                id,
                format!("fulfillment (store vs warehouse): {}", diff(&sf, &wf)),
            );
        }
        for (side, o) in [("store", so), ("warehouse", wo)] {
            if o["sync"]["state"] != "synced" {
                note(
                    id,
                    format!(
                        "{side} sync state {} ({})",
                        o["sync"]["state"], o["sync"]["last_error"]
                    ),
                );
            }
        }
    }
    for id in s.warehouse.keys() {
        if !s.store.contains_key(id) {
            note(id, "at the warehouse but not at the store".into());
        }
    }
    for (side, st) in [
        ("store", &s.store_status),
        ("warehouse", &s.warehouse_status),
    ] {
        if st["pending"] != 0 || st["dead"] != 0 {
            d.outbox.push(format!("{side} sync/status {st}"));
        }
    }
    d
}

/// Polls both sides until they agree or `bound` passes. Returns the last
/// snapshot, what still differs, and how long it took.
pub async fn wait_converged(
    store: &Api,
    warehouse: &Api,
    bound: Duration,
) -> (Snapshot, Divergence, Duration) {
    let started = Instant::now();
    let mut last_report = Instant::now();
    loop {
        let snap = snapshot(store, warehouse).await;
        if let Some(snap) = snap {
            let d = divergence(&snap);
            if d.is_clean() || started.elapsed() >= bound {
                return (snap, d, started.elapsed());
            }
            if last_report.elapsed() >= Duration::from_secs(10) {
                last_report = Instant::now();
                eprintln!(
                    "  converging: {:.0}s, {} orders differ; {}",
                    started.elapsed().as_secs_f64(),
                    d.orders.len(),
                    d.outbox.join("; ")
                );
                for id in d.orders.keys().take(2) {
                    for (side, api) in [("store", store), ("warehouse", warehouse)] {
                        eprintln!("    {id} at the {side}: {}", timeline(api, id).await);
                    }
                }
            }
        } else {
            assert!(
                started.elapsed() < bound,
                "the services did not answer while converging"
            );
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// An order's sync state and its latest delivery attempts, in one line.
pub async fn timeline(api: &Api, id: &str) -> String {
    match api.get(&format!("/api/v1/orders/{id}/sync")).await {
        Reply::Answered(StatusCode::OK, t) => {
            let attempts: Vec<String> = t["attempts"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .take(3)
                        .map(|x| {
                            format!(
                                "{} {} {} next={}",
                                x["at"], x["outcome"], x["detail"], x["next_retry_at"]
                            )
                        })
                        .collect()
                })
                .unwrap_or_default();
            format!(
                "state={} store_version={} warehouse_version={} attempts(newest first)={attempts:?}",
                t["state"], t["store_version"], t["warehouse_version"]
            )
        }
        other => format!("{other:?}"),
    }
}

/// Every acknowledged write that the final state does not reflect, one
/// line per problem.
pub fn lost_updates(ledger: &Ledger, s: &Snapshot) -> Vec<String> {
    let mut lost = Vec::new();
    for t in &ledger.orders {
        let Some(so) = s.store.get(&t.id) else {
            lost.push(format!(
                "{}: create was answered 201 but the store does not have it",
                t.id
            ));
            continue;
        };
        if let Some(problem) = store_problem(t, so) {
            lost.push(format!("{} (store): {problem}", t.id));
        }
        if t.wh.tainted {
            continue;
        }
        match s.warehouse.get(&t.id) {
            None if !t.wh.candidates(false).contains(&WhState::fresh().visible()) => {
                lost.push(format!(
                    "{} (warehouse): fulfillment writes were acknowledged but the warehouse does not have the order",
                    t.id
                ));
            }
            None => {}
            Some(wo) => {
                let cancel_requested = wo["cancel_requested"] == true;
                let candidates = t.wh.candidates(cancel_requested);
                match WhState::from_json(wo, None) {
                    Some(v) if candidates.contains(&v.visible()) => {}
                    other => lost.push(format!(
                        "{} (warehouse): state {:?} is none of those the acknowledged writes allow: {:?} (last ack {:?}, unanswered after it {:?})",
                        t.id,
                        other.map(|v| v.visible()),
                        candidates,
                        t.wh.ack,
                        t.wh.unknown
                    )),
                }
            }
        }
    }
    lost
}

/// Whether the store's order shows the last acknowledged store write.
pub fn store_problem(t: &Tracked, so: &Value) -> Option<String> {
    let cancel_requested = so["status"] == "cancel_requested";
    match t.cancel {
        Cancel::Acked if !cancel_requested => {
            return Some("cancel was answered 200 but the order is not cancel_requested".into());
        }
        Cancel::NotAsked if cancel_requested => {
            return Some("cancel_requested although no cancel was sent".into());
        }
        _ => {}
    }
    if t.store_tainted {
        return None;
    }
    let notes = so["notes"].as_str().unwrap_or("");
    let Some(k) = notes_k(notes) else {
        return Some(format!("notes {notes:?} were never written"));
    };
    if !t.store_k_allowed(k) {
        return Some(format!(
            "notes are write {k}, but the last acknowledged write is {} (unanswered after it: {:?})",
            t.acked_k, t.unknown_k
        ));
    }
    let shown: Vec<(String, String, u32)> = so["lines"]
        .as_array()
        .map(|ls| {
            ls.iter()
                .map(|l| {
                    (
                        l["sku"].as_str().unwrap_or("").to_owned(),
                        l["name"].as_str().unwrap_or("").to_owned(),
                        l["quantity"].as_u64().unwrap_or(0) as u32,
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    let expected = t.shape.lines(k);
    (shown != expected).then(|| {
        format!("lines {shown:?} are not those of write {k} ({expected:?}), which set the notes")
    })
}

/// The warehouse's orders by fulfillment status, how many were edited after
/// work on them started and how many cancels came too late: what the run
/// exercised.
pub fn status_histogram(s: &Snapshot) -> String {
    let mut h: BTreeMap<String, usize> = BTreeMap::new();
    for o in s.warehouse.values() {
        *h.entry(o["status"].as_str().unwrap_or("?").to_owned())
            .or_default() += 1;
    }
    let flagged = s
        .warehouse
        .values()
        .filter(|o| o["content_changed_after_pick"] == true)
        .count();
    let rejected = s
        .warehouse
        .values()
        .filter(|o| !o["cancel_rejected_reason"].is_null())
        .count();
    let parts: BTreeSet<String> = h.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!(
        "{} content_changed_after_pick={flagged} cancel_rejected={rejected}",
        parts.into_iter().collect::<Vec<_>>().join(" ")
    )
}

/// The ids of every order at a side (waiting up to 10 s for it to answer).
pub async fn order_ids(api: &Api) -> Vec<String> {
    let mut ids = Vec::new();
    let mut cursor = String::new();
    loop {
        let page = api
            .get_ok(
                &format!("/api/v1/orders?limit=500&cursor={cursor}"),
                Duration::from_secs(10),
            )
            .await;
        for o in page["items"].as_array().expect("items") {
            ids.push(o["id"].as_str().expect("id").to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = c.to_owned(),
            None => return ids,
        }
    }
}

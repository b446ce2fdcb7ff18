//! After the faults, with one store and several warehouses: read every
//! side completely, wait until they agree part by part, and check every
//! order and every part against the ledger.
//!
//! - divergence: every part the store lists (withdrawn ones too) is at its
//!   warehouse with exactly the part's lines and the store's latest content
//!   version; a live part also with the order's content (customer, address,
//!   notes, cancel request, its number); the store's view of each part's
//!   fulfillment equals the warehouse's, and the order's rolled-up
//!   fulfillment is the roll-up of its live parts as the warehouses hold
//!   them (docs/API.md §4.6); the live parts hold exactly the order's lines,
//!   each at a warehouse that stocks it; no warehouse holds anything that
//!   is not one of its parts at the store; the store lists each order
//!   under its rolled-up status (kept apart for the list filter) and no
//!   other; every order and part is synced on both sides, and no outbox
//!   has pending or dead rows;
//! - lost updates: the store's own fields hold its last acknowledged write
//!   (as with one warehouse), and each part's state, at its warehouse and
//!   at the store, is what the acknowledged fulfillment steps allow.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::api::Api;
use crate::ledger::{Ledger, Status, Visible, WhState};
use crate::verify::{
    Divergence, FULFILLMENT_FIELDS, diff, list_all, list_all_where, status, store_problem,
};

/// One warehouse as the checks know it.
pub struct Site<'a> {
    pub name: &'a str,
    /// The SKU prefix it stocks (it ships everywhere).
    pub prefix: &'a str,
    pub api: &'a Api,
}

/// Every side, read one after the other.
pub struct Snapshot {
    pub store: BTreeMap<String, Value>,
    /// By warehouse index.
    pub warehouses: Vec<BTreeMap<String, Value>>,
    pub store_status: Value,
    pub warehouse_status: Vec<Value>,
    /// The ids the store lists under each fulfillment status filter.
    pub store_by_status: BTreeMap<&'static str, BTreeSet<String>>,
}

/// Every status an order's rolled-up fulfillment can have here.
const ROLLED_UP: [&str; 7] = [
    "pending",
    "picking",
    "packed",
    "on_hold",
    "partially_shipped",
    "shipped",
    "cancelled",
];

pub async fn snapshot(store: &Api, sites: &[Site<'_>]) -> Option<Snapshot> {
    let store_status = status(store).await?;
    let mut warehouse_status = Vec::new();
    for s in sites {
        warehouse_status.push(status(s.api).await?);
    }
    let store_orders = list_all(store).await?;
    let mut warehouses = Vec::new();
    for s in sites {
        warehouses.push(list_all(s.api).await?);
    }
    let mut store_by_status = BTreeMap::new();
    for st in ROLLED_UP {
        let listed = list_all_where(store, &format!("&status={st}")).await?;
        store_by_status.insert(st, listed.into_keys().collect());
    }
    Some(Snapshot {
        store: store_orders,
        warehouses,
        store_status,
        warehouse_status,
        store_by_status,
    })
}

/// `(sku, quantity)` of each line, in order.
fn quantities(lines: &Value) -> Vec<(String, u64)> {
    lines
        .as_array()
        .map(|ls| {
            ls.iter()
                .map(|l| {
                    (
                        l["sku"].as_str().unwrap_or("?").to_owned(),
                        l["quantity"].as_u64().unwrap_or(0),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// A part's fulfillment as the store shows it (`parts[i]`), in the
/// warehouse's field names.
fn store_part_fulfillment(p: &Value) -> Value {
    let ship = latest_parcel(p);
    json!({
        "status": p["status"],
        "hold_reason": hold_reason(p),
        "carrier": ship["carrier"],
        "tracking_number": ship["tracking_number"],
        "shipped_at": ship["shipped_at"],
        "cancel_rejected_reason": p["cancel_rejected_reason"],
        "warehouse_version": p["sync"]["warehouse_version"],
    })
}

/// A part's hold reason as its warehouse shows it: the earliest placed
/// active hold's while the part is on hold (`holds` lists every hold,
/// released ones too).
fn hold_reason(p: &Value) -> Value {
    if p["status"] != "on_hold" {
        return Value::Null;
    }
    p["holds"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|h| h["released_at"].is_null())
        .min_by_key(|h| h["placed_at"].as_str().unwrap_or("").to_owned())
        .map_or(Value::Null, |h| h["reason"].clone())
}

/// A part's latest parcel (`shipments` lists them oldest first).
fn latest_parcel(p: &Value) -> &Value {
    p["shipments"]
        .as_array()
        .and_then(|s| s.last())
        .unwrap_or(&Value::Null)
}

/// The same fields as the warehouse holds them.
fn warehouse_part_fulfillment(o: &Value) -> Value {
    json!({
        "status": o["status"],
        "hold_reason": o["hold_reason"],
        "carrier": o["carrier"],
        "tracking_number": o["tracking_number"],
        "shipped_at": o["shipped_at"],
        "cancel_rejected_reason": o["cancel_rejected_reason"],
        "warehouse_version": o["sync"]["warehouse_version"],
    })
}

/// The order's fulfillment rolled up from its live parts as the warehouses
/// hold them (docs/API.md §4.6, written out again here rather than taken
/// from the product): `cancelled` if every part is; `shipped` if every part
/// not cancelled is; `partially_shipped` if something shipped; else
/// `on_hold` if a part is; else the least advanced of pending, picking,
/// packed. The hold reason is the earliest active hold's, the parcel the
/// latest, the cancel refusal the first, the content flag any part's.
fn roll_up(parts: &[&Value]) -> Value {
    if let [only] = parts {
        return FULFILLMENT_FIELDS
            .iter()
            .map(|k| ((*k).to_owned(), only[*k].clone()))
            .collect::<serde_json::Map<_, _>>()
            .into();
    }
    let statuses: Vec<&str> = parts
        .iter()
        .map(|p| p["status"].as_str().unwrap_or("?"))
        .collect();
    let all = |f: &dyn Fn(&str) -> bool| statuses.iter().all(|s| f(s));
    let any = |f: &dyn Fn(&str) -> bool| statuses.iter().any(|s| f(s));
    let status = if all(&|s| s == "cancelled") {
        "cancelled"
    } else if all(&|s| s == "shipped" || s == "cancelled") {
        "shipped"
    } else if any(&|s| s == "shipped") {
        "partially_shipped"
    } else if any(&|s| s == "on_hold") {
        "on_hold"
    } else {
        ["pending", "picking", "packed"]
            .into_iter()
            .find(|s| statuses.contains(s))
            .unwrap_or("?")
    };
    let latest = parts
        .iter()
        .filter(|p| !p["shipped_at"].is_null())
        .max_by_key(|p| p["shipped_at"].as_str().unwrap_or("").to_owned());
    let first = |k: &str| {
        parts
            .iter()
            .map(|p| &p[k])
            .find(|v| !v.is_null())
            .cloned()
            .unwrap_or(Value::Null)
    };
    let parcel = |k: &str| latest.map_or(Value::Null, |p| p[k].clone());
    json!({
        "status": status,
        "hold_reason": parts
            .iter()
            .filter(|p| p["status"] == "on_hold")
            .flat_map(|p| p["holds"].as_array().into_iter().flatten())
            .filter(|h| h["released_at"].is_null())
            .min_by_key(|h| h["placed_at"].as_str().unwrap_or("").to_owned())
            .map_or(Value::Null, |h| h["reason"].clone()),
        "carrier": parcel("carrier"),
        "tracking_number": parcel("tracking_number"),
        "shipped_at": parcel("shipped_at"),
        "cancel_rejected_reason": first("cancel_rejected_reason"),
        "content_changed_after_pick": parts.iter().any(|p| p["content_changed_after_pick"] == true),
    })
}

/// The order's rolled-up fulfillment as the store shows it.
fn store_rolled_up(so: &Value) -> Value {
    let f = &so["fulfillment"];
    FULFILLMENT_FIELDS
        .iter()
        .map(|k| ((*k).to_owned(), f[*k].clone()))
        .collect::<serde_json::Map<_, _>>()
        .into()
}

/// The order-level content a live part carries, as the store shows it
/// (`number` is the part's: the order's, then `-2`, `-3` for later parts).
fn store_content(so: &Value, part_no: u64) -> Value {
    let number = match part_no {
        1 => so["number"].clone(),
        n => json!(format!("{}-{n}", so["number"].as_str().unwrap_or("?"))),
    };
    json!({
        "number": number, "order_id": so["id"], "customer": so["customer"],
        "shipping_address": so["shipping_address"], "notes": so["notes"],
        "deliver_by": so["deliver_by"],
        "cancel_requested": so["status"] == "cancel_requested",
        "cancel_reason": so["cancel_reason"],
    })
}

fn warehouse_content(wo: &Value) -> Value {
    json!({
        "number": wo["number"], "order_id": wo["order_id"], "customer": wo["customer"],
        "shipping_address": wo["shipping_address"], "notes": wo["notes"],
        "deliver_by": wo["deliver_by"], "cancel_requested": wo["cancel_requested"],
        "cancel_reason": wo["cancel_reason"],
    })
}

/// What keeps the sides from agreeing (by store order id, or by the id of
/// what a warehouse holds that no store order has).
pub fn divergence(s: &Snapshot, sites: &[Site<'_>]) -> Divergence {
    let mut d = Divergence::default();
    let mut note = |id: &str, what: String| d.orders.entry(id.to_owned()).or_default().push(what);
    // (warehouse index, part id) of every part the store lists.
    let mut listed: BTreeSet<(usize, String)> = BTreeSet::new();
    for (id, so) in &s.store {
        let parts = so["parts"].as_array().cloned().unwrap_or_default();
        if parts.is_empty() {
            note(id, "the store lists no part".into());
        }
        if so["routing"]["unrouted_lines"] != json!([]) {
            note(
                id,
                format!("unrouted lines {}", so["routing"]["unrouted_lines"]),
            );
        }
        if parts.first().is_some_and(|p| p["id"] != so["id"]) {
            note(
                id,
                format!("the first part is {}, not the order", parts[0]["id"]),
            );
        }
        if so["sync"]["state"] != "synced" {
            note(
                id,
                format!(
                    "store sync state {} ({})",
                    so["sync"]["state"], so["sync"]["last_error"]
                ),
            );
        }
        // The live parts hold the order's lines, each once.
        let mut held: Vec<(String, u64)> = Vec::new();
        let mut live_at: BTreeMap<&str, usize> = BTreeMap::new();
        let mut live_copies: Vec<&Value> = Vec::new();
        let mut all_live_found = true;
        for p in &parts {
            let pid = p["id"].as_str().unwrap_or("?");
            let w_name = p["warehouse"].as_str().unwrap_or("?");
            let live = p["withdrawn"] != true;
            let Some(w) = sites.iter().position(|x| x.name == w_name) else {
                note(
                    id,
                    format!("part {pid} is at an unknown warehouse {w_name:?}"),
                );
                continue;
            };
            listed.insert((w, pid.to_owned()));
            let lines = quantities(&p["lines"]);
            if live {
                held.extend(lines.iter().cloned());
                *live_at.entry(w_name).or_default() += 1;
            }
            for (sku, _) in &lines {
                if !sku.starts_with(sites[w].prefix) {
                    note(
                        id,
                        format!("part {pid} at {w_name} has {sku}, which {w_name} does not stock"),
                    );
                }
            }
            if p["sync"]["state"] != "synced" {
                note(
                    id,
                    format!(
                        "part {pid} ({w_name}) store sync state {} ({})",
                        p["sync"]["state"], p["sync"]["last_error"]
                    ),
                );
            }
            let Some(wo) = s.warehouses[w].get(pid) else {
                note(id, format!("part {pid} missing at {w_name}"));
                all_live_found &= !live;
                continue;
            };
            if live {
                live_copies.push(wo);
            }
            // Exactly the part's lines (names as the order has them).
            let wl = quantities(&wo["lines"]);
            if wl != lines {
                note(
                    id,
                    format!("part {pid} lines: store {lines:?} ≠ {w_name} {wl:?}"),
                );
            }
            if live {
                for l in wo["lines"].as_array().into_iter().flatten() {
                    let named = so["lines"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .find(|x| x["sku"] == l["sku"])
                        .map(|x| &x["name"]);
                    if named != Some(&l["name"]) {
                        note(
                            id,
                            format!(
                                "part {pid} at {w_name}: line {} named {} (order: {named:?})",
                                l["sku"], l["name"]
                            ),
                        );
                    }
                }
            }
            if p["sync"]["store_version"] != wo["sync"]["store_version"] {
                note(
                    id,
                    format!(
                        "part {pid} store_version: store {} ≠ {w_name} {}",
                        p["sync"]["store_version"], wo["sync"]["store_version"]
                    ),
                );
            }
            let part_no = wo["part"].as_u64().unwrap_or(0);
            if live {
                let (sc, wc) = (store_content(so, part_no), warehouse_content(wo));
                if sc != wc {
                    note(
                        id,
                        format!("part {pid} content (store vs {w_name}): {}", diff(&sc, &wc)),
                    );
                }
            } else {
                if wo["cancel_requested"] != true {
                    note(
                        id,
                        format!("withdrawn part {pid} is not asked to cancel at {w_name}"),
                    );
                }
                if wo["order_id"] != so["id"] {
                    note(
                        id,
                        format!(
                            "withdrawn part {pid} at {w_name} has order_id {}",
                            wo["order_id"]
                        ),
                    );
                }
            }
            let (sf, wf) = (store_part_fulfillment(p), warehouse_part_fulfillment(wo));
            if sf != wf {
                note(
                    id,
                    format!(
                        "part {pid} fulfillment (store vs {w_name}): {}",
                        diff(&sf, &wf)
                    ),
                );
            }
            if wo["sync"]["state"] != "synced" {
                note(
                    id,
                    format!(
                        "part {pid} {w_name} sync state {} ({})",
                        wo["sync"]["state"], wo["sync"]["last_error"]
                    ),
                );
            }
        }
        let mut ordered = quantities(&so["lines"]);
        ordered.sort();
        held.sort();
        if ordered != held {
            note(
                id,
                format!("the live parts hold {held:?}, the order {ordered:?}"),
            );
        }
        for (w, n) in live_at {
            if n > 1 {
                note(id, format!("{n} live parts at {w}"));
            }
        }
        if all_live_found && !live_copies.is_empty() {
            let (stored, expected) = (store_rolled_up(so), roll_up(&live_copies));
            if stored != expected {
                note(
                    id,
                    format!(
                        "rolled-up fulfillment (store vs its parts at the warehouses): {}",
                        diff(&stored, &expected)
                    ),
                );
            }
        }
    }
    for (st, ids) in &s.store_by_status {
        for id in ids {
            let is = s.store.get(id).map(|o| &o["fulfillment"]["status"]);
            if is.is_none_or(|is| is != st) {
                note(
                    id,
                    format!("listed under status={st}, but its fulfillment status is {is:?}"),
                );
            }
        }
    }
    for (id, so) in &s.store {
        let Some(st) = so["fulfillment"]["status"].as_str() else {
            continue;
        };
        if !s
            .store_by_status
            .get(st)
            .is_some_and(|ids| ids.contains(id))
        {
            note(
                id,
                format!("not listed under status={st}, its fulfillment status"),
            );
        }
    }
    for (w, held) in s.warehouses.iter().enumerate() {
        for (pid, wo) in held {
            if !listed.contains(&(w, pid.clone())) {
                note(
                    pid,
                    format!(
                        "at {} (order_id {}, lines {:?}) but no store order lists it as a part there",
                        sites[w].name,
                        wo["order_id"],
                        quantities(&wo["lines"])
                    ),
                );
            }
        }
    }
    let mut outbox = |side: &str, st: &Value| {
        if st["pending"] != 0 || st["dead"] != 0 {
            d.outbox.push(format!("{side} sync/status {st}"));
        }
    };
    outbox("store", &s.store_status);
    for st in s.store_status["warehouses"]
        .as_array()
        .into_iter()
        .flatten()
    {
        outbox(&format!("store → {}", st["name"]), st);
    }
    for (site, st) in sites.iter().zip(&s.warehouse_status) {
        outbox(site.name, st);
    }
    d
}

/// Polls every side until they agree or `bound` passes. Returns the last
/// snapshot, what still differs, and how long it took.
pub async fn wait_converged(
    store: &Api,
    sites: &[Site<'_>],
    bound: Duration,
) -> (Snapshot, Divergence, Duration) {
    let started = Instant::now();
    let mut last_report = Instant::now();
    loop {
        if let Some(snap) = snapshot(store, sites).await {
            let d = divergence(&snap, sites);
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
                for (id, what) in d.orders.iter().take(2) {
                    eprintln!("    {id}: {}", what.join("; "));
                    eprintln!(
                        "      at the store: {}",
                        crate::verify::timeline(store, id).await
                    );
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

/// A part's fulfillment as the store shows it, as the ledger models it.
fn store_part_visible(p: &Value) -> Option<Visible> {
    let text = |v: &Value| v.as_str().map(str::to_owned);
    Some(Visible {
        status: Status::parse(p["status"].as_str()?)?,
        hold_reason: text(&hold_reason(p)),
        carrier: text(&latest_parcel(p)["carrier"]),
        tracking: text(&latest_parcel(p)["tracking_number"]),
        cancel_rejected: !p["cancel_rejected_reason"].is_null(),
    })
}

/// Every acknowledged write that the final state does not reflect, one
/// line per problem: the store's writes on each order, and the fulfillment
/// steps on each part, at its warehouse and at the store.
pub fn lost_updates(ledger: &Ledger, s: &Snapshot, sites: &[Site<'_>]) -> Vec<String> {
    let mut lost = Vec::new();
    for t in &ledger.orders {
        match s.store.get(&t.id) {
            None => lost.push(format!(
                "{}: create was answered 201 but the store does not have it",
                t.id
            )),
            Some(so) => {
                if let Some(problem) = store_problem(t, so) {
                    lost.push(format!("{} (store): {problem}", t.id));
                }
            }
        }
    }
    // Each part the store lists, by id: (order id, the part).
    let at_store: BTreeMap<&str, (&str, &Value)> = s
        .store
        .iter()
        .flat_map(|(id, so)| {
            so["parts"]
                .as_array()
                .into_iter()
                .flatten()
                .map(move |p| (p["id"].as_str().unwrap_or("?"), (id.as_str(), p)))
        })
        .collect();
    for p in &ledger.parts {
        let w = sites[p.warehouse].name;
        let Some(wo) = s.warehouses[p.warehouse].get(&p.id) else {
            lost.push(format!(
                "part {} was found at {w} during the run, but {w} does not have it",
                p.id
            ));
            continue;
        };
        let Some((order, sp)) = at_store.get(p.id.as_str()) else {
            lost.push(format!(
                "part {} at {w} (order_id {}) is no part of any store order",
                p.id, wo["order_id"]
            ));
            continue;
        };
        if sp["warehouse"] != w {
            lost.push(format!(
                "part {} of order {order} is at {w}, but the store says it is at {}",
                p.id, sp["warehouse"]
            ));
        }
        if p.wh.tainted {
            continue;
        }
        let candidates = p.wh.candidates(wo["cancel_requested"] == true);
        let at_warehouse = WhState::from_json(wo, None).map(|v| v.visible());
        if !at_warehouse
            .as_ref()
            .is_some_and(|v| candidates.contains(v))
        {
            lost.push(format!(
                "part {} of order {order} ({w}): state {at_warehouse:?} is none of those the acknowledged steps allow: {candidates:?} (last ack {:?}, unanswered after it {:?})",
                p.id, p.wh.ack, p.wh.unknown
            ));
        }
        let shown = store_part_visible(sp);
        if !shown.as_ref().is_some_and(|v| candidates.contains(v)) {
            lost.push(format!(
                "part {} of order {order} ({w}): the store shows {shown:?}, none of the states the acknowledged steps at {w} allow: {candidates:?}",
                p.id
            ));
        }
    }
    lost
}

//! The clients: store tasks that create, edit and cancel orders, warehouse
//! tasks that move them (or, with several warehouses, the parts each
//! warehouse holds) through fulfillment, the hot order edited at both
//! ends, and the chaos task that SIGKILLs and restarts the services. Every
//! outcome goes into the [`Ledger`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::Rng;
use rand::rngs::StdRng;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::api::{Api, Reply};
use crate::cluster::{Node, kill_and_restart};
use crate::ledger::{
    Cancel, Ledger, Shape, Status, Tracked, TrackedPart, WhAction, WhKey, WhState, WhTrack,
};
use crate::lock;

/// Store writer id of the hot order's task.
pub const HOT_WRITER: usize = usize::MAX;

/// Counts of what the clients did and were told.
#[derive(Debug, Default)]
pub struct Stats {
    pub creates: AtomicU64,
    pub store_acked: AtomicU64,
    pub store_conflict: AtomicU64,
    pub store_unknown: AtomicU64,
    pub store_refused: AtomicU64,
    pub cancels_acked: AtomicU64,
    pub hot_store_acked: AtomicU64,
    pub wh_acked: AtomicU64,
    pub wh_conflict: AtomicU64,
    pub wh_not_found: AtomicU64,
    pub wh_unknown: AtomicU64,
    pub wh_refused: AtomicU64,
    pub hot_wh_acked: AtomicU64,
    pub timeouts: AtomicU64,
    /// Answers no client should get (5xx, 4xx other than 404/409).
    pub unexpected: Mutex<Vec<String>>,
}

fn bump(c: &AtomicU64) {
    c.fetch_add(1, Ordering::Relaxed);
}

pub fn get(c: &AtomicU64) -> u64 {
    c.load(Ordering::Relaxed)
}

/// What the client tasks share.
pub struct Run {
    pub seed: u64,
    pub store: Api,
    /// One, or (a store that splits orders) each warehouse by index.
    pub warehouses: Vec<Api>,
    /// The shapes new orders take, one drawn at random per create.
    pub shapes: Vec<Shape>,
    pub ledger: Mutex<Ledger>,
    pub stats: Stats,
    /// When the client phase ends.
    pub until: Instant,
    /// No more creates beyond this many orders.
    pub max_orders: usize,
}

impl Stats {
    fn unexpected(&self, what: String) {
        let mut u = lock(&self.unexpected);
        if u.len() < 50 {
            u.push(what);
        }
    }
}

impl Run {
    fn unexpected(&self, what: String) {
        self.stats.unexpected(what);
    }

    fn running(&self) -> bool {
        Instant::now() < self.until
    }
}

/// A create request body with store write k = 0.
pub fn order_body(name: &str) -> Value {
    shaped_order_body(name, Shape::Plain)
}

/// A create request body of `shape` with store write k = 0.
pub fn shaped_order_body(name: &str, shape: Shape) -> Value {
    json!({
        "customer": {"name": name, "email": "faults@example.com", "company": null},
        "shipping_address": {"name": name, "line1": "1 Loopback Lane", "line2": null,
                             "city": "London", "region": null, "postal_code": "SW1Y 4JH", "country": "GB"},
        "lines": shape.lines_json(0),
        "currency": "GBP",
        "shipping_cost": 500,
        "notes": "n0",
        "deliver_by": "2026-12-01T17:00:00Z"
    })
}

/// Creates an order, repeating the request with the same Idempotency-Key
/// until the store answers 201 (a repeat after a lost answer returns the
/// first order instead of making a second). Returns the order id.
pub async fn create_order(store: &Api, stats: &Stats, key: &str, name: &str) -> String {
    let o = create(store, stats, key, &order_body(name)).await;
    o["id"]
        .as_str()
        .expect("created order has an id")
        .to_owned()
}

/// [`create_order`] with `body`; returns the order as the 201 shows it.
pub async fn create(store: &Api, stats: &Stats, key: &str, body: &Value) -> Value {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        match store
            .send(Method::POST, "/api/v1/orders", Some(body), Some(key))
            .await
        {
            Reply::Answered(StatusCode::CREATED, o) => {
                bump(&stats.creates);
                return o;
            }
            // A refusal of a valid body is a bug (of the test or the store).
            Reply::Answered(s, b) if s.is_client_error() => panic!("create {key}: {s} {b}"),
            Reply::Answered(s, b) => stats.unexpected(format!("create {key}: {s} {b}")),
            Reply::Lost { timed_out } => {
                if timed_out {
                    bump(&stats.timeouts);
                }
            }
            Reply::Refused => {}
        }
        assert!(
            Instant::now() < deadline,
            "the store did not answer create {key} with 201 in 90 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Adds an acknowledged order to the ledger; returns its index.
pub fn track(run: &Run, id: String, hot: bool, writer: usize, shape: Shape) -> usize {
    let mut l = lock(&run.ledger);
    l.orders.push(Tracked::new(id, hot, writer, shape));
    l.orders.len() - 1
}

/// Adds a part found at warehouse `w` to the ledger, unless it is there
/// already; returns its index.
pub fn track_part(run: &Run, id: &str, w: usize, hot: bool, wh: WhTrack) -> usize {
    let mut l = lock(&run.ledger);
    if let Some(i) = l.parts.iter().position(|p| p.id == id) {
        return i;
    }
    l.parts.push(TrackedPart {
        id: id.to_owned(),
        warehouse: w,
        hot,
        wh,
    });
    l.parts.len() - 1
}

/// One store edit: the next notes/lines version of order `idx`.
async fn store_patch(run: &Run, idx: usize) {
    let (id, k, notes, shape) = {
        let mut l = lock(&run.ledger);
        let t = &mut l.orders[idx];
        let k = t.next_k;
        t.next_k += 1;
        (t.id.clone(), k, t.notes(k), t.shape)
    };
    let body = json!({"notes": notes, "lines": shape.lines_json(k)});
    let reply = run
        .store
        .send(
            Method::PATCH,
            &format!("/api/v1/orders/{id}"),
            Some(&body),
            None,
        )
        .await;
    let mut l = lock(&run.ledger);
    let t = &mut l.orders[idx];
    match reply {
        Reply::Answered(StatusCode::OK, _) => {
            t.acked_k = k;
            t.unknown_k.clear();
            bump(&run.stats.store_acked);
            if t.hot {
                bump(&run.stats.hot_store_acked);
            }
        }
        // The store knows the warehouse started, or a cancel was requested.
        Reply::Answered(StatusCode::CONFLICT, _) => bump(&run.stats.store_conflict),
        Reply::Answered(s, b) => {
            // Reported as unexpected; for the checks its fate is unknown.
            if s.is_server_error() {
                t.unknown_k.push(k);
            }
            drop(l);
            run.unexpected(format!("PATCH {id} (k={k}): {s} {b}"));
        }
        Reply::Refused => bump(&run.stats.store_refused),
        Reply::Lost { timed_out } => {
            t.unknown_k.push(k);
            t.store_tainted |= timed_out;
            bump(&run.stats.store_unknown);
            if timed_out {
                bump(&run.stats.timeouts);
            }
        }
    }
}

/// Asks the warehouse, through the store, to cancel order `idx`.
async fn store_cancel(run: &Run, idx: usize) {
    let id = lock(&run.ledger).orders[idx].id.clone();
    let body = json!({"reason": "fault test"});
    let reply = run
        .store
        .send(
            Method::POST,
            &format!("/api/v1/orders/{id}/cancel"),
            Some(&body),
            None,
        )
        .await;
    let mut l = lock(&run.ledger);
    let t = &mut l.orders[idx];
    match reply {
        Reply::Answered(StatusCode::OK, _) => {
            t.cancel = Cancel::Acked;
            bump(&run.stats.cancels_acked);
        }
        Reply::Answered(s, b) => {
            if s.is_server_error() {
                t.cancel = Cancel::Unknown;
            }
            drop(l);
            run.unexpected(format!("cancel {id}: {s} {b}"));
        }
        Reply::Refused => bump(&run.stats.store_refused),
        Reply::Lost { timed_out } => {
            t.cancel = Cancel::Unknown;
            t.store_tainted |= timed_out;
            bump(&run.stats.store_unknown);
        }
    }
}

/// A store client: creates orders, edits its own orders, cancels a few.
pub async fn store_worker(run: Arc<Run>, w: usize, mut rng: StdRng) {
    let mut made = 0;
    while run.running() {
        let (mine, total): (Vec<usize>, usize) = {
            let l = lock(&run.ledger);
            let mine = (0..l.orders.len())
                .filter(|&i| {
                    let t = &l.orders[i];
                    t.store_writer == w && t.cancel == Cancel::NotAsked
                })
                .collect();
            (mine, l.orders.len())
        };
        let roll = rng.gen_range(0..100);
        if (mine.is_empty() || roll < 20) && total < run.max_orders {
            let key = format!("faults-{}-{w}-{made}", run.seed);
            let name = format!("Fault {w}-{made}");
            let shape = match run.shapes.len() {
                1 => run.shapes[0],
                n => run.shapes[rng.gen_range(0..n)],
            };
            let o = create(
                &run.store,
                &run.stats,
                &key,
                &shaped_order_body(&name, shape),
            )
            .await;
            let id = o["id"].as_str().expect("created order has an id");
            track(&run, id.to_owned(), false, w, shape);
            made += 1;
        } else if !mine.is_empty() && roll < 96 {
            store_patch(&run, mine[rng.gen_range(0..mine.len())]).await;
        } else if !mine.is_empty() {
            store_cancel(&run, mine[rng.gen_range(0..mine.len())]).await;
        }
        tokio::time::sleep(Duration::from_millis(rng.gen_range(10..50))).await;
    }
}

/// The hot order at the store: edited as fast as the store answers.
pub async fn hot_store(run: Arc<Run>, idx: usize, mut rng: StdRng) {
    while run.running() {
        store_patch(&run, idx).await;
        tokio::time::sleep(Duration::from_millis(rng.gen_range(2..15))).await;
    }
}

/// The warehouse that holds `key`.
fn wh_api(run: &Run, key: WhKey) -> &Api {
    match key {
        WhKey::Order(_) => &run.warehouses[0],
        WhKey::Part(i) => &run.warehouses[lock(&run.ledger).parts[i].warehouse],
    }
}

/// Reads `key` at its warehouse to know its state before acting.
async fn wh_refresh(run: &Run, key: WhKey) {
    let id = lock(&run.ledger).wh(key).0.to_owned();
    let belief = match wh_api(run, key).get(&format!("/api/v1/orders/{id}")).await {
        Reply::Answered(StatusCode::OK, o) => WhState::from_json(&o, None),
        // Not delivered yet: it will arrive fresh.
        Reply::Answered(StatusCode::NOT_FOUND, _) => Some(WhState::fresh()),
        _ => None,
    };
    lock(&run.ledger).wh(key).2.belief = belief;
}

/// Sends one fulfillment action for `key` and records the outcome.
async fn wh_act(run: &Run, key: WhKey, action: WhAction) {
    let (id, before) = {
        let mut l = lock(&run.ledger);
        let (id, _, wh) = l.wh(key);
        (id.to_owned(), wh.belief.clone())
    };
    let reply = wh_api(run, key)
        .send(
            Method::POST,
            &format!("/api/v1/orders/{id}/fulfillment"),
            Some(&action.body()),
            None,
        )
        .await;
    let mut l = lock(&run.ledger);
    let (_, hot, t) = l.wh(key);
    match reply {
        Reply::Answered(StatusCode::OK, o) => {
            // Where a hold returns to is known only if the state before it
            // was (the API does not show it).
            let held_from = match (&action, &before) {
                (WhAction::Hold { .. }, Some(b)) => Some(b.status),
                _ => None,
            };
            match WhState::from_json(&o, held_from) {
                Some(state) => {
                    t.ack = state.clone();
                    t.unknown.clear();
                    t.belief = Some(state);
                    t.acks += 1;
                    bump(&run.stats.wh_acked);
                    if hot {
                        bump(&run.stats.hot_wh_acked);
                    }
                }
                None => {
                    drop(l);
                    run.unexpected(format!("fulfillment {id}: 200 without a status: {o}"));
                }
            }
        }
        Reply::Answered(StatusCode::CONFLICT, _) => {
            t.belief = None;
            bump(&run.stats.wh_conflict);
        }
        Reply::Answered(StatusCode::NOT_FOUND, _) => bump(&run.stats.wh_not_found),
        Reply::Answered(s, b) => {
            t.belief = None;
            if s.is_server_error() {
                t.unknown.push(action.clone());
            }
            drop(l);
            run.unexpected(format!("fulfillment {id} {action:?}: {s} {b}"));
        }
        Reply::Refused => bump(&run.stats.wh_refused),
        Reply::Lost { timed_out } => {
            t.unknown.push(action);
            t.tainted |= timed_out;
            t.belief = None;
            bump(&run.stats.wh_unknown);
            if timed_out {
                bump(&run.stats.timeouts);
            }
        }
    }
}

/// Mostly valid next steps, with a few invalid ones (answered 409).
fn next_action(s: Status, rng: &mut StdRng, tag: &str) -> Option<WhAction> {
    let roll = rng.gen_range(0..100);
    let hold = || WhAction::Hold {
        reason: format!("hold {tag}"),
    };
    let ship = || WhAction::Ship {
        carrier: "UPS".into(),
        tracking: format!("1Z-{tag}"),
    };
    Some(match s {
        Status::Pending if roll < 60 => WhAction::Pick,
        Status::Pending if roll < 90 => hold(),
        Status::Pending => WhAction::Pack,
        Status::Picking if roll < 60 => WhAction::Pack,
        Status::Picking if roll < 90 => hold(),
        Status::Picking => ship(),
        Status::Packed if roll < 50 => ship(),
        Status::Packed if roll < 90 => hold(),
        Status::Packed => WhAction::Pick,
        Status::OnHold if roll < 85 => WhAction::Release,
        Status::OnHold => WhAction::Pick,
        Status::Shipped | Status::Cancelled => return None,
    })
}

/// What a warehouse client works on.
#[derive(Debug, Clone, Copy)]
pub enum Scope {
    /// The orders of the ledger, at the one warehouse.
    Orders,
    /// The parts found at warehouse `w`.
    Parts(usize),
}

/// The keys of `scope` that client `j` of `of` may move on: not hot, not
/// known to be finished.
fn candidates(l: &Ledger, scope: Scope, j: usize, of: usize) -> Vec<WhKey> {
    let open = |hot: bool, wh: &WhTrack| {
        !hot && wh.belief.as_ref().is_none_or(|b| !b.status.is_terminal())
    };
    match scope {
        Scope::Orders => (0..l.orders.len())
            .filter(|&i| i % of == j && open(l.orders[i].hot, &l.orders[i].wh))
            .map(WhKey::Order)
            .collect(),
        Scope::Parts(w) => (0..l.parts.len())
            .filter(|&i| {
                let p = &l.parts[i];
                p.warehouse == w && i % of == j && open(p.hot, &p.wh)
            })
            .map(WhKey::Part)
            .collect(),
    }
}

/// A warehouse client: moves the orders (or parts) `i % of == j` of its
/// scope through fulfillment.
pub async fn warehouse_worker(run: Arc<Run>, scope: Scope, j: usize, of: usize, mut rng: StdRng) {
    let mut n = 0u32;
    while run.running() {
        let keys = candidates(&lock(&run.ledger), scope, j, of);
        if keys.is_empty() {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        }
        let key = keys[rng.gen_range(0..keys.len())];
        let belief = lock(&run.ledger).wh(key).2.belief.clone();
        match belief {
            None => wh_refresh(&run, key).await,
            Some(b) => {
                n += 1;
                if let Some(a) = next_action(b.status, &mut rng, &format!("{j}-{n}")) {
                    wh_act(&run, key, a).await;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(rng.gen_range(10..50))).await;
    }
}

/// The hot order (or a part of it) at its warehouse: on hold and released,
/// over and over (the store may edit it all along, as it never leaves
/// pending/on_hold).
pub async fn hot_warehouse(run: Arc<Run>, key: WhKey, mut rng: StdRng) {
    let mut n = 0u32;
    while run.running() {
        let belief = lock(&run.ledger).wh(key).2.belief.clone();
        match belief {
            None => wh_refresh(&run, key).await,
            Some(b) => {
                n += 1;
                let a = if b.status == Status::OnHold {
                    WhAction::Release
                } else {
                    WhAction::Hold {
                        reason: format!("hot hold {n}"),
                    }
                };
                wh_act(&run, key, a).await;
            }
        }
        tokio::time::sleep(Duration::from_millis(rng.gen_range(5..30))).await;
    }
}

/// Warehouse `w`'s staff looking at what arrived: lists its orders every
/// 300 ms and adds the parts not seen before to the ledger (as the listing
/// shows them), for the warehouse clients to work on.
pub async fn discover(run: Arc<Run>, w: usize) {
    while run.running() {
        if let Some(found) = crate::verify::list_all(&run.warehouses[w]).await {
            for (id, o) in found {
                let known = lock(&run.ledger).parts.iter().any(|p| p.id == id);
                if !known {
                    let mut wh = WhTrack::new();
                    wh.belief = WhState::from_json(&o, None);
                    track_part(&run, &id, w, false, wh);
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// SIGKILLs one of `nodes` every `every` ms (drawn anew each time) and
/// restarts it (after up to 1.5 s down) on the same port, until `until`.
/// Each time the victim is drawn among the nodes killed least so far, so
/// every node is killed once before any is killed twice. Returns the kills
/// of each node.
pub async fn chaos(
    until: Instant,
    nodes: Vec<Arc<Mutex<Node>>>,
    every: std::ops::Range<u64>,
    enabled: bool,
    mut rng: StdRng,
) -> Vec<u32> {
    let mut kills = vec![0; nodes.len()];
    if !enabled {
        return kills;
    }
    loop {
        let next = Instant::now() + Duration::from_millis(rng.gen_range(every.clone()));
        if next >= until {
            return kills;
        }
        tokio::time::sleep_until(next.into()).await;
        let down = Duration::from_millis(rng.gen_range(0..1500));
        let least = kills.iter().copied().min().unwrap_or(0);
        let victims: Vec<usize> = (0..nodes.len()).filter(|&i| kills[i] == least).collect();
        let v = victims[rng.gen_range(0..victims.len())];
        let t = Instant::now();
        kills[v] += 1;
        kill_and_restart(&nodes[v], down).await;
        eprintln!(
            "  chaos: SIGKILLed the {}, back after {:.1}s",
            lock(&nodes[v]).name,
            t.elapsed().as_secs_f64()
        );
    }
}

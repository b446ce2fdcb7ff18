//! What the clients were told: for every order, the last write each side
//! acknowledged (2xx) and the writes whose fate is unknown (sent, never
//! answered). The checks compare the final state against this, and a small
//! model of the fulfillment state machine (docs/DESIGN.md §1.4) says which final
//! warehouse states the acknowledged and unknown writes allow.
//!
//! Writes to one order are made one at a time (each order has one store
//! writer and one warehouse writer), so "last acknowledged" is well defined.

use std::collections::HashSet;

use serde_json::{Value, json};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Status {
    Pending,
    Picking,
    Packed,
    Shipped,
    OnHold,
    Cancelled,
}

impl Status {
    pub fn parse(s: &str) -> Option<Status> {
        Some(match s {
            "pending" => Status::Pending,
            "picking" => Status::Picking,
            "packed" => Status::Packed,
            "shipped" => Status::Shipped,
            "on_hold" => Status::OnHold,
            "cancelled" => Status::Cancelled,
            _ => return None,
        })
    }

    pub fn is_terminal(self) -> bool {
        matches!(self, Status::Shipped | Status::Cancelled)
    }
}

/// The warehouse-owned fields of an order, as far as the test models them.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct WhState {
    pub status: Status,
    pub hold_reason: Option<String>,
    /// Where a release returns to; `None` when the test cannot know (the API
    /// does not show it).
    pub held_from: Option<Status>,
    pub carrier: Option<String>,
    pub tracking: Option<String>,
    pub cancel_rejected: bool,
}

/// What the API shows of a [`WhState`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Visible {
    pub status: Status,
    pub hold_reason: Option<String>,
    pub carrier: Option<String>,
    pub tracking: Option<String>,
    pub cancel_rejected: bool,
}

fn text(v: &Value) -> Option<String> {
    v.as_str().map(str::to_owned)
}

impl WhState {
    /// An order the warehouse has just received.
    pub fn fresh() -> WhState {
        WhState {
            status: Status::Pending,
            hold_reason: None,
            held_from: None,
            carrier: None,
            tracking: None,
            cancel_rejected: false,
        }
    }

    /// Reads a warehouse order (API JSON).
    pub fn from_json(o: &Value, held_from: Option<Status>) -> Option<WhState> {
        Some(WhState {
            status: Status::parse(o["status"].as_str()?)?,
            hold_reason: text(&o["hold_reason"]),
            held_from,
            carrier: text(&o["carrier"]),
            tracking: text(&o["tracking_number"]),
            cancel_rejected: !o["cancel_rejected_reason"].is_null(),
        })
    }

    pub fn visible(&self) -> Visible {
        Visible {
            status: self.status,
            hold_reason: self.hold_reason.clone(),
            carrier: self.carrier.clone(),
            tracking: self.tracking.clone(),
            cancel_rejected: self.cancel_rejected,
        }
    }

    /// The answer to the store's cancel request: cancelled, unless shipped.
    pub fn answer_cancel(&self) -> WhState {
        let mut next = self.clone();
        match self.status {
            Status::Cancelled => {}
            Status::Shipped => next.cancel_rejected = true,
            _ => {
                next.status = Status::Cancelled;
                next.hold_reason = None;
                next.held_from = None;
            }
        }
        next
    }
}

/// A warehouse staff action (the body of `POST /orders/{id}/fulfillment`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WhAction {
    Pick,
    Pack,
    Ship { carrier: String, tracking: String },
    Hold { reason: String },
    Release,
}

impl WhAction {
    pub fn body(&self) -> Value {
        match self {
            WhAction::Pick => json!({"status": "picking"}),
            WhAction::Pack => json!({"status": "packed"}),
            WhAction::Ship { carrier, tracking } => {
                json!({"status": "shipped", "carrier": carrier, "tracking_number": tracking})
            }
            WhAction::Hold { reason } => json!({"status": "on_hold", "reason": reason}),
            WhAction::Release => json!({"status": "released"}),
        }
    }

    /// The states this action may lead to from `s` (several when the test
    /// does not know where a release returns to); empty when refused.
    pub fn step(&self, s: &WhState) -> Vec<WhState> {
        use Status as S;
        let mut next = s.clone();
        match (self, s.status) {
            (WhAction::Pick, S::Pending) => next.status = S::Picking,
            (WhAction::Pack, S::Picking) => next.status = S::Packed,
            (WhAction::Ship { carrier, tracking }, S::Packed) => {
                next.status = S::Shipped;
                next.carrier = Some(carrier.clone());
                next.tracking = Some(tracking.clone());
            }
            (WhAction::Hold { reason }, S::Pending | S::Picking | S::Packed) => {
                next.status = S::OnHold;
                next.hold_reason = Some(reason.clone());
                next.held_from = Some(s.status);
            }
            (WhAction::Release, S::OnHold) => {
                next.hold_reason = None;
                next.held_from = None;
                let back = match s.held_from {
                    Some(from) => vec![from],
                    None => vec![S::Pending, S::Picking, S::Packed],
                };
                return back
                    .into_iter()
                    .map(|status| WhState {
                        status,
                        ..next.clone()
                    })
                    .collect();
            }
            _ => return vec![],
        }
        vec![next]
    }
}

/// Whether the store's cancel request was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cancel {
    NotAsked,
    /// Sent, never answered.
    Unknown,
    Acked,
}

/// What the warehouse clients were told about one order at a warehouse
/// (the order itself, or one part of a split order).
#[derive(Debug, Clone)]
pub struct WhTrack {
    /// The state in the last 2xx answer of the warehouse.
    pub ack: WhState,
    /// Actions sent after `ack` without an answer.
    pub unknown: Vec<WhAction>,
    /// An action timed out: it may land at any time, so the exact check of
    /// the warehouse's state is skipped.
    pub tainted: bool,
    /// What the warehouse task believes the state is now (`None`: unsure,
    /// read it again before acting).
    pub belief: Option<WhState>,
    /// How many actions were answered 2xx.
    pub acks: u32,
}

impl WhTrack {
    /// An order as the warehouse receives it, nothing done to it yet.
    pub fn new() -> WhTrack {
        WhTrack {
            ack: WhState::fresh(),
            unknown: vec![],
            tainted: false,
            belief: Some(WhState::fresh()),
            acks: 0,
        }
    }

    /// Every visible warehouse state the order may end in: the last
    /// acknowledged one, or what any run of the unanswered actions after it
    /// made of it; then answered if the warehouse got a cancel request.
    pub fn candidates(&self, cancel_requested: bool) -> HashSet<Visible> {
        let mut states = vec![self.ack.clone()];
        for action in &self.unknown {
            let more: Vec<WhState> = states.iter().flat_map(|s| action.step(s)).collect();
            for s in more {
                if !states.contains(&s) {
                    states.push(s);
                }
            }
        }
        states
            .iter()
            .map(|s| {
                if cancel_requested {
                    s.answer_cancel().visible()
                } else {
                    s.visible()
                }
            })
            .collect()
    }
}

/// The lines an order is made of through its store writes: which SKUs
/// (and so, with several warehouses, which warehouses hold its parts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// `SKU-0`…`SKU-2` (one warehouse takes everything).
    Plain,
    /// `A-…` lines only: the `eu` warehouse's, whole.
    OnlyA,
    /// `B-…` lines only: the `us` warehouse's, whole.
    OnlyB,
    /// Always both `A-` and `B-` lines, interleaved, a `B-` line first:
    /// split in two parts at every write.
    Mixed,
    /// Like [`Shape::Mixed`], except every write k with k % 3 == 1 has
    /// `A-` lines only: that edit withdraws the `us` part, and the next
    /// one makes a new `us` part. The `A-` part, which has the order's id,
    /// always keeps lines: withdrawing that one is not exercised, because
    /// the store then shows the order `cancel_requested` (the withdrawal's
    /// cancel request is on the order's own row), refuses every later edit
    /// (409) and sends a later cancel to no part (a known product bug).
    Drift,
}

impl Shape {
    /// The order lines store write `k` sets: their number and quantities
    /// move with k, so a lost or mixed-up write shows in the lines as well
    /// as in the notes.
    pub fn lines(self, k: u32) -> Vec<(String, String, u32)> {
        let q = |j: u32| 1 + (k * 7 + j) % 9;
        let item = |prefix: &str, j: u32, q: u32| {
            (format!("{prefix}-{j}"), format!("Item {prefix}{j}"), q)
        };
        match self {
            Shape::Plain => (0..1 + k % 3)
                .map(|j| (format!("SKU-{j}"), format!("Item {j}"), q(j)))
                .collect(),
            Shape::OnlyA => (0..1 + k % 3).map(|j| item("A", j, q(j))).collect(),
            Shape::OnlyB => (0..1 + k % 3).map(|j| item("B", j, q(j + 3))).collect(),
            Shape::Drift if k % 3 == 1 => (0..1 + k % 2).map(|j| item("A", j, q(j))).collect(),
            Shape::Mixed | Shape::Drift => {
                let (a, b) = (1 + k % 2, 1 + (k / 2) % 2);
                let mut out = Vec::new();
                for j in 0..a.max(b) {
                    if j < b {
                        out.push(item("B", j, q(j + 3)));
                    }
                    if j < a {
                        out.push(item("A", j, q(j)));
                    }
                }
                out
            }
        }
    }

    /// [`Shape::lines`] as the store API takes them.
    pub fn lines_json(self, k: u32) -> Value {
        Value::Array(
            self.lines(k)
                .into_iter()
                .enumerate()
                .map(|(j, (sku, name, quantity))| {
                    json!({"sku": sku, "name": name, "quantity": quantity, "unit_price": 100 * (j as i64 + 1)})
                })
                .collect(),
        )
    }

    pub fn key(self) -> &'static str {
        match self {
            Shape::Plain => "plain",
            Shape::OnlyA => "only_a",
            Shape::OnlyB => "only_b",
            Shape::Mixed => "mixed",
            Shape::Drift => "drift",
        }
    }
}

/// One order's history as the clients saw it.
#[derive(Debug, Clone)]
pub struct Tracked {
    pub id: String,
    /// The order edited hundreds of times at both ends.
    pub hot: bool,
    /// Which store task writes this order.
    pub store_writer: usize,
    /// Which lines its writes set.
    pub shape: Shape,
    /// Store writes set notes to "n<k>" (hot: "hot-<k>") and lines to
    /// `shape.lines(k)`, k increasing per order; the create wrote k = 0.
    pub next_k: u32,
    pub acked_k: u32,
    /// Ks sent after `acked_k` without an answer.
    pub unknown_k: Vec<u32>,
    pub cancel: Cancel,
    /// A store write timed out: it may land at any time, even after newer
    /// ones, so the exact store check is skipped for this order.
    pub store_tainted: bool,
    /// The warehouse's side, with one warehouse (with several, each part's
    /// is in [`Ledger::parts`]).
    pub wh: WhTrack,
}

impl Tracked {
    pub fn new(id: String, hot: bool, store_writer: usize, shape: Shape) -> Tracked {
        Tracked {
            id,
            hot,
            store_writer,
            shape,
            next_k: 1,
            acked_k: 0,
            unknown_k: vec![],
            cancel: Cancel::NotAsked,
            store_tainted: false,
            wh: WhTrack::new(),
        }
    }

    /// The notes value of store write `k`.
    pub fn notes(&self, k: u32) -> String {
        if self.hot {
            format!("hot-{k}")
        } else {
            format!("n{k}")
        }
    }

    /// Whether final notes k is what the acknowledged writes allow: the last
    /// acknowledged one, or a later one whose answer was lost.
    pub fn store_k_allowed(&self, k: u32) -> bool {
        k == self.acked_k || (k > self.acked_k && self.unknown_k.contains(&k))
    }
}

/// One part of a split order as a warehouse's clients found it (listed at
/// its warehouse) and moved it.
#[derive(Debug, Clone)]
pub struct TrackedPart {
    pub id: String,
    /// Index of its warehouse.
    pub warehouse: usize,
    /// A part of the hot order (its own task holds and releases it).
    pub hot: bool,
    pub wh: WhTrack,
}

/// Which order a warehouse action is about, in the [`Ledger`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhKey {
    /// `Ledger::orders[i]`, at the one warehouse.
    Order(usize),
    /// `Ledger::parts[i]`, at its warehouse.
    Part(usize),
}

/// Every order the clients created, in creation order, and every part
/// the warehouse clients found (with several warehouses).
#[derive(Debug, Default)]
pub struct Ledger {
    pub orders: Vec<Tracked>,
    pub parts: Vec<TrackedPart>,
}

impl Ledger {
    /// The id, whether hot, and the warehouse's side of `key`.
    pub fn wh(&mut self, key: WhKey) -> (&str, bool, &mut WhTrack) {
        match key {
            WhKey::Order(i) => {
                let t = &mut self.orders[i];
                (&t.id, t.hot, &mut t.wh)
            }
            WhKey::Part(i) => {
                let p = &mut self.parts[i];
                (&p.id, p.hot, &mut p.wh)
            }
        }
    }
}

/// Reads k back from a notes value written by [`Tracked::notes`].
pub fn notes_k(notes: &str) -> Option<u32> {
    notes
        .strip_prefix("hot-")
        .or_else(|| notes.strip_prefix('n'))?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn candidates_cover_unknown_actions_and_cancel() {
        let mut t = WhTrack::new();
        assert_eq!(t.candidates(false).len(), 1);
        t.unknown = vec![
            WhAction::Pick,
            WhAction::Hold { reason: "r".into() },
            WhAction::Release,
        ];
        let c = t.candidates(false);
        let statuses: HashSet<Status> = c.iter().map(|v| v.status).collect();
        // pending, picking, on_hold (from either), released back to either.
        assert_eq!(
            statuses,
            HashSet::from([Status::Pending, Status::Picking, Status::OnHold])
        );
        let cancelled = t.candidates(true);
        assert!(cancelled.iter().all(|v| v.status == Status::Cancelled));
    }

    #[test]
    fn shapes_route_as_intended() {
        for k in 0..12 {
            let skus = |s: Shape| -> Vec<String> { s.lines(k).into_iter().map(|l| l.0).collect() };
            let has = |s: Shape, prefix: &str| skus(s).iter().any(|x| x.starts_with(prefix));
            assert!(has(Shape::OnlyA, "A-") && !has(Shape::OnlyA, "B-"));
            assert!(has(Shape::OnlyB, "B-") && !has(Shape::OnlyB, "A-"));
            assert!(has(Shape::Mixed, "A-") && has(Shape::Mixed, "B-"));
            // The part with the order's id (eu's) always keeps lines.
            assert!(has(Shape::Drift, "A-"));
            assert_eq!(has(Shape::Drift, "B-"), k % 3 != 1, "k={k}");
            for s in [
                Shape::Plain,
                Shape::OnlyA,
                Shape::OnlyB,
                Shape::Mixed,
                Shape::Drift,
            ] {
                let all = skus(s);
                let unique: HashSet<&String> = all.iter().collect();
                assert_eq!(unique.len(), all.len(), "{s:?} k={k}: a SKU twice");
            }
        }
    }

    #[test]
    fn notes_round_trip() {
        let t = Tracked::new("x".into(), true, 0, Shape::Plain);
        assert_eq!(notes_k(&t.notes(17)), Some(17));
        assert_eq!(notes_k("n3"), Some(3));
        assert_eq!(notes_k("leave at the door"), None);
    }
}

//! The receiving side of sync: applies a batch of the peer's snapshots in
//! one transaction, with version fencing, answering per item.
//!
//! - warehouse: receives content snapshots; inserts new orders, applies newer
//!   content, flags content changed after work started, and answers cancel
//!   requests (which changes fulfillment, so that goes back to the store);
//! - store: receives fulfillment snapshots and keeps the newer ones.
//!
//! An item the receiver cannot parse or accept is `rejected` on its own; the
//! rest of the batch still applies.

use std::collections::{HashMap, HashSet};

use serde_json::value::RawValue;
use sqlx::AnyConnection;

use super::{Engine, Result};
use crate::domain::role::Command;
use crate::domain::snapshot::{ContentSnapshot, FulfillmentSnapshot, ItemOutcome, ItemResult};
use crate::domain::{Actor, FieldError, Fulfillment, Order, OrderContent, OrderId, Role};
use crate::storage::{audit, now_micros, orders, webhooks};

/// Why a whole batch was refused before any item was looked at.
#[derive(Debug, thiserror::Error)]
pub enum BatchRefused {
    #[error("this webhook-id was already processed; a sender must use a new id for every request")]
    Replayed,
}

/// Applies a batch from `from` (who signed it: the store; at the store,
/// the warehouses whose secret verified the signature). `webhook_id` is
/// remembered in the same transaction, so a captured request replayed later
/// is refused. At the store, an item about an order routed to another
/// warehouse is rejected: a warehouse changes only its own orders.
pub async fn apply_batch(
    engine: &Engine,
    from: &[String],
    webhook_id: &str,
    items: &[Box<RawValue>],
) -> Result<std::result::Result<Vec<ItemResult>, BatchRefused>> {
    // Parsed before the write: the writer's time is the scarce one.
    let parsed: Vec<std::result::Result<Parsed, ItemResult>> = items
        .iter()
        .map(|item| Parsed::from_item(engine.role(), item))
        .collect();
    let (this, webhook_id, from) = (engine.clone(), webhook_id.to_owned(), from.to_vec());
    let outcome = engine
        .db()
        .write(move |c| {
            Box::pin(async move { apply_in(&this, c, &from, &webhook_id, parsed).await })
        })
        .await?;
    let Ok(applied) = outcome else {
        return Ok(Err(BatchRefused::Replayed));
    };
    Ok(Ok(applied.finish(engine)))
}

/// Applies, inside the caller's transaction, the fulfillment snapshots the
/// warehouse `from` sent back with its answers to a delivery (at the
/// store). Call [`Applied::finish`] once that transaction has committed.
pub(crate) async fn apply_answers(
    engine: &Engine,
    c: &mut AnyConnection,
    from: &str,
    snaps: Vec<FulfillmentSnapshot>,
) -> Result<Applied> {
    let parsed = snaps.into_iter().map(Parsed::fulfillment).collect();
    apply_parsed(engine, c, &[from.to_owned()], parsed).await
}

/// What a batch did: one result per item, and whether anything was enqueued
/// for the relay.
pub(crate) struct Applied {
    results: Vec<ItemResult>,
    enqueued: bool,
}

impl Applied {
    /// Counts and reports what was applied, once it is committed.
    pub(crate) fn finish(self, engine: &Engine) -> Vec<ItemResult> {
        let applied = self
            .results
            .iter()
            .filter(|r| r.outcome == ItemOutcome::Applied)
            .count();
        engine.metrics().applied.increment(applied as u64);
        if self.enqueued {
            engine.wake_relay();
        }
        self.results
    }
}

/// The batch inside its transaction, unless `webhook_id` was seen before.
async fn apply_in(
    engine: &Engine,
    c: &mut AnyConnection,
    from: &[String],
    webhook_id: &str,
    parsed: Vec<std::result::Result<Parsed, ItemResult>>,
) -> Result<std::result::Result<Applied, BatchRefused>> {
    if !webhooks::remember(c, webhook_id, now_micros()).await? {
        return Ok(Err(BatchRefused::Replayed));
    }
    apply_parsed(engine, c, from, parsed).await.map(Ok)
}

/// The items inside the caller's transaction.
///
/// The orders of the whole batch are loaded in one go, and new orders at
/// the warehouse (the bulk of traffic) are inserted together, so a batch
/// costs a few statements plus one or two per changed order. An order that
/// appears twice in one batch is reloaded before each of its items.
async fn apply_parsed(
    engine: &Engine,
    c: &mut AnyConnection,
    from: &[String],
    parsed: Vec<std::result::Result<Parsed, ItemResult>>,
) -> Result<Applied> {
    let now = now_micros();
    // Who the changes are by, in the audit trail: the sender (at the
    // store, the warehouse each order is routed to).
    let actors: Vec<Actor> = from.iter().map(|f| Actor::Sync(f.clone())).collect();
    let Some(actor) = actors.first() else {
        return Ok(Applied {
            results: Vec::new(),
            enqueued: false,
        });
    };
    let mut seen = HashSet::with_capacity(parsed.len());
    let mut repeated = HashSet::new();
    for p in parsed.iter().flatten() {
        if !seen.insert(p.id()) {
            repeated.insert(p.id());
        }
    }
    let ids: Vec<OrderId> = seen.iter().copied().collect();
    // Fulfillment snapshots (at the store) read no content: no lines.
    let parts = if parsed
        .iter()
        .flatten()
        .any(|p| matches!(p, Parsed::Content(..)))
    {
        orders::Parts::All
    } else {
        orders::Parts::WithoutLines
    };
    let at_store = engine.role().may(Command::ManageWarehouses);
    // At the store a part's news also rewrites its order's first row (the
    // rolled-up status, at the end), so that row is locked now, with the
    // parts, all in id order: the order every writer of an order's rows
    // keeps (an edit locks all of them at once). Locked only at the end, a
    // later part's delivery and an edit of its order would each hold a row
    // the other waits for (PostgreSQL: "deadlock detected", a 500).
    let mut locked = ids.clone();
    if at_store {
        for first in crate::storage::parts::orders_of(c, &ids).await? {
            if !seen.contains(&first) {
                locked.push(first);
            }
        }
    }
    let loaded = orders::load_many_for_update(c, &locked, parts)
        .await?
        .into_iter()
        .filter(|o| seen.contains(&o.id))
        .map(|o| (o.id, o))
        .collect();
    // At the store: the warehouse each order is routed to.
    let routed = if at_store {
        orders::warehouses_of(c, &ids).await?
    } else {
        HashMap::new()
    };
    let mut batch = Batch {
        engine,
        actor,
        now,
        loaded,
        repeated,
        trail: Vec::new(),
        enqueued: false,
        fulfillments: Vec::new(),
        rolled_up: Vec::new(),
        rejected: Vec::new(),
    };

    let mut results: Vec<Option<ItemResult>> = Vec::with_capacity(parsed.len());
    // New orders, and where each one's item and snapshot are.
    let mut new_orders: Vec<Order> = Vec::new();
    let mut new_items: Vec<(usize, ContentSnapshot)> = Vec::new();
    for (i, p) in parsed.into_iter().enumerate() {
        let p = match p {
            Ok(p) => p,
            Err(r) => {
                results.push(Some(r));
                continue;
            }
        };
        let id = p.id();
        match p {
            Parsed::Content(snap, content)
                if !batch.loaded.contains_key(&id) && !batch.repeated.contains(&id) =>
            {
                let order = new_at_warehouse(&snap, content, now);
                new_orders.push(order);
                new_items.push((i, snap));
                results.push(None);
            }
            Parsed::Content(snap, content) => {
                let old = batch.current(c, id).await?;
                results.push(Some(batch.apply_content(c, &snap, content, old).await?));
            }
            Parsed::Fulfillment(snap, f) => {
                let by = match routed.get(&id) {
                    Some(w) => actors.iter().find(|a| a.name() == w),
                    // Not routed: no warehouse has it to report on.
                    None => None,
                };
                let Some(by) = by else {
                    let why = if routed.contains_key(&id) {
                        "this order is routed to another warehouse; a warehouse changes only its own orders"
                    } else {
                        "this order is routed to no warehouse yet; a warehouse changes only its own orders"
                    };
                    results.push(Some(rejected(Some(id), why.into())));
                    continue;
                };
                batch.actor = by;
                let old = batch.current(c, id).await?;
                results.push(Some(batch.apply_fulfillment(c, &snap, f, old).await?));
            }
        }
    }
    if !new_orders.is_empty() {
        let inserted = orders::insert_many(c, &new_orders).await?;
        for ((i, snap), order) in new_items.into_iter().zip(new_orders) {
            let r = if inserted.contains(&order.id) {
                batch
                    .trail
                    .push(audit::Record::event(order.id, actor, "created"));
                // The store learns the order's first fulfillment state
                // from the answer.
                created(&order)
            } else {
                // Taken meanwhile: by a concurrent delivery of this same
                // order (then it is an update like any other), or its number
                // by another order.
                batch.taken(c, &snap, order).await?
            };
            results[i] = Some(r);
        }
    }
    let Batch {
        mut trail,
        mut enqueued,
        fulfillments,
        mut rolled_up,
        mut rejected,
        actor: by,
        ..
    } = batch;
    let fulfillments: Vec<(OrderId, &Fulfillment, i64)> =
        fulfillments.iter().map(|(id, f, v)| (*id, f, *v)).collect();
    if at_store {
        orders::update_fulfillments_at_store(c, &fulfillments, now).await?;
    } else {
        orders::update_fulfillments(c, &fulfillments, now).await?;
    }
    rolled_up.sort_unstable();
    rolled_up.dedup();
    crate::storage::parts::refresh_status(c, &rolled_up).await?;
    // Rejected lines go to the next warehouse that takes them, in this
    // transaction: nothing is lost between the rejection and the new part.
    rejected.sort_unstable();
    rejected.dedup();
    for id in rejected {
        if super::parts::route_again(c, id, now).await? {
            trail.push(audit::Record::event(id, by, "routing"));
            enqueued = true;
        }
    }
    audit::record_many(c, &trail, now).await?;
    let results: Vec<ItemResult> = results.into_iter().flatten().collect();
    Ok(Applied { results, enqueued })
}

/// One item of a batch, parsed for the receiving side. Short-lived and in a
/// batch of at most a thousand, so the size of the content variant is moot.
#[allow(clippy::large_enum_variant)]
enum Parsed {
    Content(ContentSnapshot, OrderContent),
    Fulfillment(FulfillmentSnapshot, Fulfillment),
}

impl Parsed {
    /// Parses an item, or says why it is rejected.
    fn from_item(role: Role, item: &RawValue) -> std::result::Result<Parsed, ItemResult> {
        match role {
            Role::Warehouse => {
                let snap: ContentSnapshot = serde_json::from_str(item.get()).map_err(|e| {
                    rejected(item_id(item), format!("not an order content snapshot: {e}"))
                })?;
                let content = snap
                    .parse()
                    .map_err(|errors| rejected(Some(snap.id), describe(&errors)))?;
                Ok(Parsed::Content(snap, content))
            }
            Role::Store => {
                let snap: FulfillmentSnapshot = serde_json::from_str(item.get()).map_err(|e| {
                    rejected(item_id(item), format!("not a fulfillment snapshot: {e}"))
                })?;
                Parsed::fulfillment(snap)
            }
        }
    }

    /// A fulfillment snapshot whose fields agree, or why it is rejected.
    fn fulfillment(snap: FulfillmentSnapshot) -> std::result::Result<Parsed, ItemResult> {
        match snap.parse() {
            Ok(f) => Ok(Parsed::Fulfillment(snap, f)),
            Err(errors) => Err(rejected(Some(snap.id), describe(&errors))),
        }
    }

    fn id(&self) -> OrderId {
        match self {
            Parsed::Content(s, _) => s.id,
            Parsed::Fulfillment(s, _) => s.id,
        }
    }
}

/// A new order as the warehouse first holds it.
fn new_at_warehouse(snap: &ContentSnapshot, content: OrderContent, now: i64) -> Order {
    let mut fulfillment = Fulfillment::new().settle_holds(&content.holds);
    if content.cancel.is_some() {
        fulfillment = fulfillment.answer_cancel_request();
    }
    Order {
        id: snap.id,
        order_id: snap.order_id.unwrap_or(snap.id),
        part: snap.part.unwrap_or(1),
        number: snap.number.clone(),
        content,
        store_version: snap.store_version,
        warehouse_version: 1,
        fulfillment: Some(fulfillment),
        withdrawn: false,
        created_at: snap.created_at,
        updated_at: crate::storage::from_micros(now),
    }
}

/// What a batch has loaded, and what it writes at its end.
struct Batch<'a> {
    engine: &'a Engine,
    actor: &'a Actor,
    now: i64,
    /// The batch's orders as loaded at its start.
    loaded: HashMap<OrderId, Order>,
    /// Orders that appear more than once: reloaded before each item.
    repeated: HashSet<OrderId>,
    trail: Vec<audit::Record<'a>>,
    /// Whether an item enqueued something for the peer.
    enqueued: bool,
    /// Newer fulfillments (at the store), written together at the end.
    fulfillments: Vec<(OrderId, Fulfillment, i64)>,
    /// The orders whose parts those are (at the store): their rolled-up
    /// status is refreshed at the end.
    rolled_up: Vec<OrderId>,
    /// Orders a warehouse rejected lines of (at the store): those lines
    /// are routed again at the end.
    rejected: Vec<OrderId>,
}

impl Batch<'_> {
    /// The order as it stands before this item.
    async fn current(&mut self, c: &mut AnyConnection, id: OrderId) -> Result<Option<Order>> {
        if self.repeated.contains(&id) {
            Ok(orders::load_for_update(c, id).await?)
        } else {
            Ok(self.loaded.remove(&id))
        }
    }

    /// A new order whose insert found its id or number taken.
    async fn taken(
        &mut self,
        c: &mut AnyConnection,
        snap: &ContentSnapshot,
        order: Order,
    ) -> Result<ItemResult> {
        let id = order.id;
        match orders::load_for_update(c, id).await? {
            None => Ok(rejected(
                Some(id),
                format!("order number {} belongs to another order", order.number),
            )),
            Some(old) => self.update_content(c, snap, order.content, old).await,
        }
    }

    async fn apply_content(
        &mut self,
        c: &mut AnyConnection,
        snap: &ContentSnapshot,
        content: OrderContent,
        old: Option<Order>,
    ) -> Result<ItemResult> {
        let id = snap.id;
        match old {
            // Only an order listed twice in one batch gets here new.
            None => {
                let order = new_at_warehouse(snap, content, self.now);
                if !orders::insert(c, &order).await? {
                    return self.taken(c, snap, order).await;
                }
                audit::event(c, id, self.actor, "created", self.now).await?;
                Ok(created(&order))
            }
            Some(old) => self.update_content(c, snap, content, old).await,
        }
    }

    /// Newer content for an order the warehouse holds.
    async fn update_content(
        &mut self,
        c: &mut AnyConnection,
        snap: &ContentSnapshot,
        content: OrderContent,
        old: Order,
    ) -> Result<ItemResult> {
        let id = snap.id;
        if old.store_version >= snap.store_version {
            let f = old.fulfillment.clone().unwrap_or_default();
            return Ok(answered(id, ItemOutcome::Stale, old.warehouse_version, &f));
        }
        let changed = old.content.diff(&content);
        orders::update_content(c, id, &content, snap.store_version, self.now).await?;
        audit::record(c, id, self.actor, &changed, self.now).await?;
        let before = old.fulfillment.clone().unwrap_or_default();
        let mut after = before.clone();
        let edited = changed
            .iter()
            .any(|f| !matches!(f.field.as_ref(), "cancel_request" | "holds"));
        if edited && before.work_started() {
            // The store owns content, so the edit is applied; staff are
            // told it came after they started.
            after.content_changed_after_pick = true;
        }
        // The store's holds stop (or free) the work here.
        after = after.settle_holds(&content.holds);
        if content.cancel.is_some() {
            after = after.answer_cancel_request();
        }
        if after != before {
            self.engine
                .save_fulfillment(
                    c,
                    &old,
                    &before,
                    &after,
                    &Actor::System("warehouse".into()),
                    self.now,
                )
                .await?;
            // The new state travels through the outbox.
            self.enqueued = true;
            return Ok(outcome(id, ItemOutcome::Applied));
        }
        Ok(answered(
            id,
            ItemOutcome::Applied,
            old.warehouse_version,
            &after,
        ))
    }

    async fn apply_fulfillment(
        &mut self,
        c: &mut AnyConnection,
        snap: &FulfillmentSnapshot,
        fulfillment: Fulfillment,
        old: Option<Order>,
    ) -> Result<ItemResult> {
        let id = snap.id;
        match old {
            None => Ok(rejected(
                Some(id),
                "the store has no order with this id".into(),
            )),
            Some(old) if old.warehouse_version >= snap.warehouse_version => {
                Ok(outcome(id, ItemOutcome::Stale))
            }
            Some(old) => {
                let changed = Fulfillment::diff_from(old.fulfillment.as_ref(), &fulfillment);
                self.rolled_up.push(old.order_id);
                if old.fulfillment.as_ref().map(|f| &f.rejections) != Some(&fulfillment.rejections)
                    && !fulfillment.rejections.is_empty()
                {
                    self.rejected.push(old.order_id);
                }
                if self.repeated.contains(&id) {
                    // Written now: the order's next item reloads it.
                    orders::update_fulfillment(
                        c,
                        id,
                        &fulfillment,
                        snap.warehouse_version,
                        self.now,
                    )
                    .await?;
                } else {
                    self.fulfillments
                        .push((id, fulfillment, snap.warehouse_version));
                }
                if !changed.is_empty() {
                    self.trail
                        .push(audit::Record::changed(id, self.actor, &changed));
                }
                Ok(outcome(id, ItemOutcome::Applied))
            }
        }
    }
}

fn rejected(id: Option<OrderId>, reason: String) -> ItemResult {
    ItemResult {
        id,
        outcome: ItemOutcome::Rejected,
        reason: Some(reason),
        fulfillment: None,
    }
}

fn outcome(id: OrderId, outcome: ItemOutcome) -> ItemResult {
    ItemResult {
        id: Some(id),
        outcome,
        reason: None,
        fulfillment: None,
    }
}

/// The answer to a content item, with the warehouse's fulfillment of the
/// order (`version`, `f`) as it stands after it.
fn answered(id: OrderId, outcome: ItemOutcome, version: i64, f: &Fulfillment) -> ItemResult {
    ItemResult {
        fulfillment: Some(Box::new(FulfillmentSnapshot::from_domain(id, version, f))),
        ..self::outcome(id, outcome)
    }
}

/// The answer to a content item that created `order` at the warehouse.
fn created(order: &Order) -> ItemResult {
    let first = order.fulfillment.clone().unwrap_or_default();
    answered(
        order.id,
        ItemOutcome::Applied,
        order.warehouse_version,
        &first,
    )
}

fn describe(errors: &[FieldError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// The id of an item, if it has a readable one (for the answer).
fn item_id(item: &RawValue) -> Option<OrderId> {
    #[derive(serde::Deserialize)]
    struct Id<'a> {
        #[serde(borrow)]
        id: Option<std::borrow::Cow<'a, str>>,
    }
    serde_json::from_str::<Id>(item.get())
        .ok()?
        .id
        .as_deref()
        .and_then(OrderId::parse)
}

//! The store's commands: create orders (in batches, or one at a time with
//! an idempotency key), edit their content and money, request their
//! cancellation.

use std::collections::BTreeMap;
use std::sync::Arc;

use sqlx::AnyConnection;

use super::batch::{BatchWrite, not_written};
use super::parts::{self, PartView};
use super::{Engine, EngineError, OrderView, Result};
use crate::domain::delivery::{SyncInfo, SyncState};
use crate::domain::diff::Priced;
use crate::domain::holds::{HoldType, MAX_HOLDS, TypedHold};
use crate::domain::order::{CancelRequest, Line, PatchOrderInput};
use crate::domain::parts::{self as domain_parts, Mode, Plan, Unrouted};
use crate::domain::role::Command;
use crate::domain::warehouse::{Warehouse, WarehouseName};
use crate::domain::{Actor, Order, OrderContent, OrderId, Pricing, Role};
use crate::storage::bulk::Script;
use crate::storage::orders::{OrderNumbers, TakenNumbers};
use crate::storage::parts as stored_parts;
use crate::storage::writer::BoxFuture;
use crate::storage::{self, StorageError, audit, idempotency, now_micros, orders, outbox};
use uuid::Uuid;

/// The outcome of a create with an `Idempotency-Key`.
pub enum Created {
    New(Box<OrderView>),
    /// The key was used before with the same body: the first response.
    Replayed(String),
}

/// An `Idempotency-Key` as sent by one caller, with the hash of its request.
#[derive(Debug, Clone, Copy)]
pub struct IdempotencyKey<'a> {
    /// Who sent it (an API token's id, say): keys are per caller.
    pub caller: &'a str,
    pub key: &'a str,
    /// SHA-256 of the canonical request body.
    pub request_hash: &'a str,
}

/// [`IdempotencyKey`], owned, for a write that outlives the request.
#[derive(Clone)]
struct OwnedKey {
    caller: String,
    key: String,
    request_hash: String,
}

/// What a new order is made of, before it has an id and a number.
#[derive(Clone)]
pub(super) struct NewOrder {
    actor: Actor,
    content: OrderContent,
    pricing: Pricing,
}

impl Engine {
    /// Creates an order at the store. With an idempotency key, a repeat of the
    /// same request by the same caller answers the first response (`render`
    /// makes it) and creates nothing.
    ///
    /// Creates without a key that arrive together are written together (see
    /// [`batch`]): one statement per table for the whole batch, and
    /// each is answered once the batch is durable.
    pub async fn create_order(
        &self,
        actor: &Actor,
        content: OrderContent,
        pricing: Pricing,
        idempotency: Option<IdempotencyKey<'_>>,
        render: impl Fn(&OrderView) -> String + Send + Sync + 'static,
    ) -> Result<Created> {
        self.require(Command::CreateOrder)?;
        let order = NewOrder {
            actor: actor.clone(),
            content,
            pricing,
        };
        let Some(key) = idempotency else {
            let view = self.creates.submit(&self.db, &self.wake, order).await?;
            return Ok(Created::New(Box::new(view)));
        };
        let render = Arc::new(render);
        let key = OwnedKey {
            caller: key.caller.to_owned(),
            key: key.key.to_owned(),
            request_hash: key.request_hash.to_owned(),
        };
        // Two requests racing with one key on PostgreSQL: the loser's insert
        // of the key fails, and its second round finds the winner's answer.
        let mut last_err = None;
        for _ in 0..2 {
            let (order, key, render) = (order.clone(), key.clone(), render.clone());
            let numbers = self.db.order_numbers().clone();
            let attempt = self
                .db
                .write(move |c| {
                    Box::pin(async move { create_keyed(c, &numbers, order, key, &*render).await })
                })
                .await;
            match attempt {
                Err(EngineError::Storage(StorageError::Sqlx(sqlx::Error::Database(e))))
                    if e.is_unique_violation() =>
                {
                    last_err = Some(EngineError::Storage(StorageError::Sqlx(
                        sqlx::Error::Database(e),
                    )));
                }
                Ok(created) => {
                    if matches!(created, Created::New(_)) {
                        self.wake_relay();
                    }
                    return Ok(created);
                }
                Err(e) => return Err(e),
            }
        }
        Err(last_err.unwrap_or(EngineError::Conflict("concurrent create".into())))
    }

    /// Changes content or money of an order the warehouse has not started on.
    pub async fn patch_order(
        &self,
        actor: &Actor,
        id: OrderId,
        patch: &PatchOrderInput,
    ) -> Result<OrderView> {
        self.require(Command::EditOrder)?;
        let (this, actor, patch) = (self.clone(), actor.clone(), patch.clone());
        self.db
            .write(move |c| Box::pin(async move { this.patch_in(c, &actor, id, &patch).await }))
            .await?;
        self.wake_relay();
        self.get(id).await
    }

    async fn patch_in(
        &self,
        c: &mut AnyConnection,
        actor: &Actor,
        id: OrderId,
        patch: &PatchOrderInput,
    ) -> Result<()> {
        let now = now_micros();
        let l = parts::load_for_update(c, id).await?;
        let number = &l.head.number;
        let refused = |e| EngineError::Conflict(format!("order {number} cannot be edited: {e}"));
        if l.head_unrouted() || l.head.content.cancel.is_some() {
            // The order's own record (its parts are checked below).
            l.head.store_may_edit().map_err(refused)?;
        }
        // A part its warehouse rejected whole holds nothing to edit.
        let rejected = |o: &Order| {
            o.fulfillment
                .as_ref()
                .is_some_and(|f| f.status == crate::domain::FulfillmentStatus::Rejected)
        };
        for (_, part) in l.parts.iter().filter(|(p, o)| !p.withdrawn && !rejected(o)) {
            part.store_may_edit().map_err(refused)?;
        }
        let pricing = orders::load_pricing(c, &[id])
            .await?
            .remove(&id)
            .ok_or_else(|| StorageError::Corrupt(format!("order {id} has no prices")))?;
        let before = l.content();
        let (content, new_pricing) = patch
            .apply(&before, &pricing)
            .map_err(EngineError::Invalid)?;
        // Money changes are the store's alone: they are audited here, with
        // the content's, and never travel.
        let changed = Priced {
            content: &before,
            pricing: &pricing,
        }
        .diff(&Priced {
            content: &content,
            pricing: &new_pricing,
        });
        if new_pricing != pricing {
            orders::save_pricing(c, id, &new_pricing).await?;
        }
        if content != before {
            // Money is not part of what a warehouse receives, so only a
            // content change moves versions and goes to the outbox. New
            // lines are routed afresh (every part is pending or on hold).
            let plan = if content.lines != before.lines {
                stored_parts::replace_items(c, id, &content.lines, &new_pricing.unit_prices)
                    .await?;
                let warehouses = parts::active(c).await?;
                domain_parts::plan(
                    &content.lines,
                    &content.shipping_address.country,
                    &warehouses,
                    &l.routed()?,
                    Mode::Afresh,
                )
            } else {
                Plan::default()
            };
            parts::write_plan(c, &l, &content, &plan, now).await?;
        } else if !changed.is_empty() {
            orders::touch(c, id, now).await?;
        }
        audit::record(c, id, actor, &changed, now).await?;
        Ok(())
    }

    /// Routes the order's unrouted lines again (after warehouses changed):
    /// they join their warehouse's part that has not started, or make a
    /// new part, and travel. Routed parts are not touched, and an order
    /// whose cancel was asked is left alone. Returns the order, whatever
    /// routing found.
    pub async fn route_order(&self, actor: &Actor, id: OrderId) -> Result<OrderView> {
        self.require(Command::RouteOrder)?;
        let actor = actor.clone();
        let routed = self
            .db
            .write(move |c| {
                Box::pin(async move {
                    let now = now_micros();
                    let written = parts::route_again(c, id, now).await?;
                    if written {
                        audit::event(c, id, &actor, "routing", now).await?;
                    }
                    Ok::<_, EngineError>(written)
                })
            })
            .await?;
        if routed {
            self.wake_relay();
        }
        self.get(id).await
    }

    /// Places a store hold (a payment check, say) on the order: it travels
    /// to every part, whose warehouse keeps it on hold (nothing picked,
    /// packed or shipped) until the store releases it. Returns the order
    /// and the hold.
    pub async fn place_hold(
        &self,
        actor: &Actor,
        id: OrderId,
        kind: HoldType,
        reason: String,
    ) -> Result<(OrderView, TypedHold)> {
        self.require(Command::HoldOrder)?;
        let actor = actor.clone();
        let hold = self
            .db
            .write(move |c| {
                Box::pin(async move {
                    let now = now_micros();
                    let l = parts::load_for_update(c, id).await?;
                    let number = &l.head.number;
                    if l.head.content.cancel.is_some() {
                        return Err(EngineError::Conflict(format!(
                            "order {number} cannot be held: its cancellation was requested"
                        )));
                    }
                    let open = |o: &Order| {
                        o.fulfillment
                            .as_ref()
                            .is_none_or(|f| !f.status.is_terminal())
                    };
                    let live = l.parts.iter().any(|(p, o)| !p.withdrawn && open(o));
                    if !live && l.unrouted()?.is_empty() {
                        return Err(EngineError::Conflict(format!(
                            "order {number} cannot be held: every part of it has shipped or ended"
                        )));
                    }
                    let active = l
                        .head
                        .content
                        .holds
                        .iter()
                        .filter(|h| h.is_active())
                        .count();
                    if active >= MAX_HOLDS {
                        return Err(EngineError::Conflict(format!(
                            "order {number} has {MAX_HOLDS} active holds, the most it may"
                        )));
                    }
                    let hold = TypedHold::new(kind, reason, Role::Store, storage::from_micros(now));
                    let before = l.content();
                    let mut content = before.clone();
                    content.holds.push(hold.clone());
                    crate::domain::holds::prune(&mut content.holds);
                    parts::write_plan(c, &l, &content, &Plan::default(), now).await?;
                    audit::record(c, id, &actor, &before.diff(&content), now).await?;
                    Ok::<_, EngineError>(hold)
                })
            })
            .await?;
        self.wake_relay();
        Ok((self.get(id).await?, hold))
    }

    /// Releases a hold the store placed, on every part. A hold a
    /// warehouse placed is that warehouse's to release (409).
    pub async fn release_hold(
        &self,
        actor: &Actor,
        id: OrderId,
        hold_id: Uuid,
    ) -> Result<OrderView> {
        self.require(Command::HoldOrder)?;
        let actor = actor.clone();
        self.db
            .write(move |c| {
                Box::pin(async move {
                    let now = now_micros();
                    let l = parts::load_for_update(c, id).await?;
                    let before = l.content();
                    let mut content = before.clone();
                    let Some(hold) = content.holds.iter_mut().find(|h| h.id == hold_id) else {
                        let by = l.parts.iter().find(|(_, o)| {
                            o.fulfillment
                                .as_ref()
                                .is_some_and(|f| f.holds.iter().any(|h| h.id == hold_id))
                        });
                        return Err(match by {
                            Some((p, _)) => EngineError::Conflict(format!(
                                "warehouse {} placed this hold; only it releases it",
                                p.warehouse.as_deref().unwrap_or_default()
                            )),
                            None => EngineError::UnknownHold(hold_id.to_string()),
                        });
                    };
                    if !hold.is_active() {
                        return Err(EngineError::Conflict(
                            "this hold was already released".into(),
                        ));
                    }
                    hold.released_at = Some(storage::from_micros(now));
                    crate::domain::holds::prune(&mut content.holds);
                    parts::write_plan(c, &l, &content, &Plan::default(), now).await?;
                    audit::record(c, id, &actor, &before.diff(&content), now).await?;
                    Ok::<_, EngineError>(())
                })
            })
            .await?;
        self.wake_relay();
        self.get(id).await
    }

    /// Asks the warehouse to cancel. Repeating it changes nothing.
    pub async fn request_cancel(
        &self,
        actor: &Actor,
        id: OrderId,
        reason: Option<String>,
    ) -> Result<OrderView> {
        self.require(Command::RequestCancel)?;
        let actor = actor.clone();
        self.db
            .write(move |c| {
                Box::pin(async move {
                    let now = now_micros();
                    let l = parts::load_for_update(c, id).await?;
                    if l.head.content.cancel.is_none() {
                        // Every part not withdrawn is asked (a withdrawn
                        // one was asked already).
                        let before = l.content();
                        let mut content = before.clone();
                        content.cancel = Some(CancelRequest { reason });
                        parts::write_plan(c, &l, &content, &Plan::default(), now).await?;
                        audit::record(c, id, &actor, &before.diff(&content), now).await?;
                    }
                    Ok::<_, EngineError>(())
                })
            })
            .await?;
        self.wake_relay();
        self.get(id).await
    }
}

/// New orders at the store, written in bulk.
pub(super) struct Creates {
    pub(super) numbers: Arc<OrderNumbers>,
}

impl BatchWrite for Creates {
    type Item = NewOrder;

    fn write<'c>(
        &'c self,
        c: &'c mut AnyConnection,
        items: &'c [NewOrder],
    ) -> BoxFuture<'c, Result<Vec<Result<OrderView>>>> {
        Box::pin(async move {
            let views = insert_new(c, &self.numbers, items).await?;
            Ok(views.into_iter().map(Ok).collect())
        })
    }
}

/// A create with an idempotency key: the stored answer when the key was
/// seen with the same body, else the new order and the key saved with it.
async fn create_keyed(
    c: &mut AnyConnection,
    numbers: &OrderNumbers,
    order: NewOrder,
    key: OwnedKey,
    render: &(dyn Fn(&OrderView) -> String + Send + Sync),
) -> Result<Created> {
    let now = now_micros();
    if let Some(stored) = idempotency::find(c, &key.caller, &key.key, now).await? {
        return if stored.request_hash == key.request_hash {
            Ok(Created::Replayed(stored.response))
        } else {
            Err(EngineError::IdempotencyKeyReused)
        };
    }
    let view = insert_new(c, numbers, std::slice::from_ref(&order))
        .await?
        .pop()
        .ok_or_else(not_written)?;
    idempotency::save(
        c,
        &key.caller,
        &key.key,
        &key.request_hash,
        &render(&view),
        now,
    )
    .await?;
    Ok(Created::New(Box::new(view)))
}

/// Writes new orders at the store: numbers, rows, items, money, audit,
/// routing and outbox, one statement per table for the lot. Each order is
/// routed ([`domain_parts::plan`]): whole to the first warehouse that takes
/// every line, else line by line; each warehouse used gets a part, the
/// first (by priority, then name) with the order's id. Lines no warehouse
/// takes wait, unrouted, and do not travel.
async fn insert_new(
    c: &mut AnyConnection,
    numbers: &OrderNumbers,
    new: &[NewOrder],
) -> Result<Vec<OrderView>> {
    let now = now_micros();
    let warehouses = parts::active(c).await?;
    // On SQLite, another process on the same file may have taken numbers
    // since this one last looked: its batch is then refused before any of
    // it ran, and planned again with numbers read from the counter row.
    let mut attempts = 0;
    let (rows, shapes, routed) = loop {
        attempts += 1;
        let taken = numbers.take(c, new.len()).await?;
        let planned = plan_new(c, new, &taken, &warehouses, now);
        match planned.script.run(c).await {
            Err(e) => {
                if taken.taken_elsewhere(&e) {
                    numbers.forget();
                    if attempts < 3 {
                        continue;
                    }
                }
                return Err(e.into());
            }
            Ok(returned) => {
                let inserted = orders::inserted_ids(returned)?;
                if let Some(taken) = planned.rows.iter().find(|(o, _)| !inserted.contains(&o.id)) {
                    // Fresh v7 ids and the next numbers cannot be taken,
                    // unless the database was edited by hand. The caller
                    // rolls the batch back.
                    return Err(EngineError::Conflict(format!(
                        "order number {} is already taken; check the order number counter (PostgreSQL: the order_numbers sequence; SQLite: the counters row)",
                        taken.0.number
                    )));
                }
                break (planned.rows, planned.shapes, planned.routed);
            }
        }
    };
    for w in &routed {
        outbox::notify(c, w).await?;
    }
    let mut rows = rows.into_iter();
    let mut views = Vec::with_capacity(new.len());
    for (n, (count, unrouted)) in new.iter().zip(shapes) {
        let mine: Vec<(Order, Option<WarehouseName>)> = rows.by_ref().take(count).collect();
        let head = mine[0].0.clone();
        let parts: Vec<PartView> = mine
            .into_iter()
            .filter_map(|(order, w)| {
                w.map(|w| PartView {
                    order,
                    warehouse: w.to_string(),
                    withdrawn: false,
                    sync: SyncInfo {
                        state: SyncState::Pending,
                        last_error: None,
                    },
                })
            })
            .collect();
        views.push(parts::compose(
            head,
            Some(n.pricing.clone()),
            n.content.lines.clone(),
            parts,
            unrouted,
        ));
    }
    Ok(views)
}

/// One batch of new orders, planned: its script, and what the answers are
/// made of.
struct PlannedCreates {
    script: Script,
    /// Each order's rows (its first row first), each with its warehouse.
    rows: Vec<(Order, Option<WarehouseName>)>,
    /// Per order: how many rows, and its unrouted lines.
    shapes: Vec<(usize, Vec<Unrouted>)>,
    /// The warehouses the batch enqueued for.
    routed: Vec<String>,
}

/// Plans the writes of [`insert_new`] with the numbers `taken`.
fn plan_new(
    c: &AnyConnection,
    new: &[NewOrder],
    taken: &TakenNumbers,
    warehouses: &[Warehouse],
    now: i64,
) -> PlannedCreates {
    let at = storage::from_micros(now);
    // Each order's rows (its first row first), each with its warehouse.
    let mut rows: Vec<(Order, Option<WarehouseName>)> = Vec::with_capacity(new.len());
    // Per order: how many rows, and its unrouted lines.
    let mut shapes: Vec<(usize, Vec<Unrouted>)> = Vec::with_capacity(new.len());
    for (n, seq) in new.iter().zip(taken.numbers.iter().copied()) {
        let id = OrderId::new();
        let number = crate::domain::order::order_number(seq);
        let plan = domain_parts::plan(
            &n.content.lines,
            &n.content.shipping_address.country,
            warehouses,
            &[],
            Mode::Add,
        );
        let row = |id: OrderId, part: i64, lines: Vec<Line>| Order {
            id,
            order_id: id,
            part,
            number: domain_parts::part_number(&number, part),
            content: OrderContent {
                lines,
                ..n.content.clone()
            },
            store_version: 1,
            warehouse_version: 0,
            fulfillment: None,
            withdrawn: false,
            created_at: at,
            updated_at: at,
        };
        let count = plan.new_parts.len().max(1);
        if plan.new_parts.is_empty() {
            rows.push((row(id, 1, Vec::new()), None));
        }
        for (i, (w, lines)) in plan.new_parts.into_iter().enumerate() {
            let part = i as i64 + 1;
            let mut o = row(if i == 0 { id } else { OrderId::new() }, part, lines);
            o.order_id = id;
            rows.push((o, Some(w)));
        }
        let unrouted = plan
            .unrouted
            .into_iter()
            .map(|u| Unrouted {
                reason: u.reason,
                line: u.line,
            })
            .collect();
        shapes.push((count, unrouted));
    }
    let list: Vec<Order> = rows.iter().map(|(o, _)| o.clone()).collect();
    // One script: on SQLite the inserts are one call to the database.
    let mut script = Script::new(c);
    taken.plan(&mut script);
    let routed_to: Vec<Option<&str>> = rows
        .iter()
        .map(|(_, w)| w.as_ref().map(|w| w.as_str()))
        .collect();
    orders::plan_insert_all(&mut script, &list, &routed_to);
    let heads: Vec<OrderId> = list
        .iter()
        .filter(|o| o.id == o.order_id)
        .map(|o| o.id)
        .collect();
    stored_parts::plan_items(
        &mut script,
        heads.iter().zip(new).map(|(id, n)| {
            (
                *id,
                n.content.lines.as_slice(),
                n.pricing.unit_prices.as_slice(),
            )
        }),
    );
    let prices: Vec<(OrderId, &Pricing)> = heads
        .iter()
        .zip(new)
        .map(|(id, n)| (*id, &n.pricing))
        .collect();
    orders::plan_pricing(&mut script, &prices);
    let trail: Vec<audit::Record> = heads
        .iter()
        .zip(new)
        .map(|(id, n)| audit::Record::event(*id, &n.actor, "created"))
        .collect();
    audit::plan_records(&mut script, &trail, now);
    let mut routed: BTreeMap<&str, Vec<(OrderId, i64)>> = BTreeMap::new();
    for (o, w) in &rows {
        if let Some(w) = w {
            routed
                .entry(w.as_str())
                .or_default()
                .push((o.id, o.store_version));
        }
    }
    for (w, queued) in &routed {
        outbox::plan_enqueue(&mut script, w, queued, now);
    }
    let routed = routed.keys().map(|w| (*w).to_owned()).collect();
    PlannedCreates {
        script,
        rows,
        shapes,
        routed,
    }
}

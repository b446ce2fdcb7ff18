//! The store's commands: create orders (in batches, or one at a time with
//! an idempotency key), edit their content and money, request their
//! cancellation.

use std::collections::BTreeMap;
use std::sync::Arc;

use sqlx::AnyConnection;

use super::batch::{BatchWrite, not_written};
use super::{Engine, EngineError, OrderView, Result};
use crate::domain::delivery::{SyncInfo, SyncState};
use crate::domain::order::{CancelRequest, PatchOrderInput};
use crate::domain::role::Command;
use crate::domain::values::Sku;
use crate::domain::warehouse::{Warehouse, WarehouseName, route};
use crate::domain::{Actor, Order, OrderContent, OrderId, Pricing, Role};
use crate::storage::bulk::Script;
use crate::storage::writer::BoxFuture;
use crate::storage::{self, StorageError, audit, idempotency, now_micros, orders, outbox};

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
            let attempt = self
                .db
                .write(move |c| {
                    Box::pin(async move { create_keyed(c, order, key, &*render).await })
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
        let order = orders::load_for_update(c, id)
            .await?
            .ok_or(EngineError::NotFound(id))?;
        order.store_may_edit().map_err(|e| {
            EngineError::Conflict(format!("order {} cannot be edited: {e}", order.number))
        })?;
        let pricing = orders::load_pricing(c, &[id])
            .await?
            .remove(&id)
            .ok_or_else(|| StorageError::Corrupt(format!("order {id} has no prices")))?;
        let (content, new_pricing) = patch
            .apply(&order.content, &pricing)
            .map_err(EngineError::Invalid)?;
        let mut changed = order.content.changed_fields(&content);
        if new_pricing != pricing {
            for f in patch.fields() {
                if matches!(f, "shipping_cost" | "lines") && !changed.contains(&f) {
                    changed.push(f);
                }
            }
            orders::save_pricing(c, id, &new_pricing).await?;
        }
        if content != order.content {
            // Money is not part of what the warehouse receives, so only a
            // content change moves the version and goes to the outbox.
            let v = order.store_version + 1;
            orders::update_content(c, id, &content, v, now).await?;
            enqueue_to_its_warehouse(c, id, v, now).await?;
        } else if !changed.is_empty() {
            orders::touch(c, id, now).await?;
        }
        if !changed.is_empty() {
            audit::record(c, id, actor, &changed, now).await?;
        }
        Ok(())
    }

    /// Routes an order that is routed nowhere (no warehouse took every line
    /// of it when it was made) to the first warehouse that takes every
    /// line now, and sends it there. A routed order is left alone. Returns
    /// the order, routed or not.
    pub async fn route_order(&self, actor: &Actor, id: OrderId) -> Result<OrderView> {
        self.require(Command::RouteOrder)?;
        let actor = actor.clone();
        let routed = self
            .db
            .write(move |c| {
                Box::pin(async move {
                    let order = orders::load_for_update(c, id)
                        .await?
                        .ok_or(EngineError::NotFound(id))?;
                    if orders::warehouses_of(c, &[id]).await?.contains_key(&id) {
                        return Ok::<_, EngineError>(false);
                    }
                    let warehouses = active_warehouses(c).await?;
                    let Some(w) = whole_route(&order, &warehouses) else {
                        return Ok(false);
                    };
                    let now = now_micros();
                    orders::set_warehouse(c, &[id], w.as_str()).await?;
                    outbox::enqueue(c, w.as_str(), id, order.store_version, now).await?;
                    audit::record(c, id, &actor, &["warehouse"], now).await?;
                    Ok(true)
                })
            })
            .await?;
        if routed {
            self.wake_relay();
        }
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
                    let order = orders::load_for_update(c, id)
                        .await?
                        .ok_or(EngineError::NotFound(id))?;
                    if order.content.cancel.is_none() {
                        let mut content = order.content.clone();
                        content.cancel = Some(CancelRequest { reason });
                        let v = order.store_version + 1;
                        orders::update_content(c, id, &content, v, now).await?;
                        audit::record(c, id, &actor, &["cancel_request"], now).await?;
                        enqueue_to_its_warehouse(c, id, v, now).await?;
                    }
                    Ok::<_, EngineError>(())
                })
            })
            .await?;
        self.wake_relay();
        self.get(id).await
    }
}

/// The store's warehouses (routing skips the inactive ones itself).
async fn active_warehouses(c: &mut AnyConnection) -> Result<Vec<Warehouse>> {
    Ok(storage::warehouses::list(c)
        .await?
        .into_iter()
        .map(|(w, _)| w)
        .collect())
}

/// The warehouse that takes every line of `order`, if one does.
fn whole_route(order: &Order, warehouses: &[Warehouse]) -> Option<WarehouseName> {
    let skus: Vec<&Sku> = order.content.lines.iter().map(|l| &l.sku).collect();
    route(
        &skus,
        &order.content.shipping_address.country,
        warehouses,
        |_, _| false,
    )
    .whole()
    .cloned()
}

/// Enqueues version `v` of order `id` for the warehouse it is routed to
/// (nothing while it is routed nowhere: it travels once routed).
async fn enqueue_to_its_warehouse(
    c: &mut AnyConnection,
    id: OrderId,
    v: i64,
    now: i64,
) -> Result<()> {
    if let Some(w) = orders::warehouses_of(c, &[id]).await?.remove(&id) {
        outbox::enqueue(c, &w, id, v, now).await?;
    }
    Ok(())
}

/// New orders at the store, written in bulk.
pub(super) struct Creates;

impl BatchWrite for Creates {
    type Item = NewOrder;

    fn write<'c>(
        &'c self,
        c: &'c mut AnyConnection,
        items: &'c [NewOrder],
    ) -> BoxFuture<'c, Result<Vec<Result<OrderView>>>> {
        Box::pin(async move {
            let views = insert_new(c, items).await?;
            Ok(views.into_iter().map(Ok).collect())
        })
    }
}

/// A create with an idempotency key: the stored answer when the key was
/// seen with the same body, else the new order and the key saved with it.
async fn create_keyed(
    c: &mut AnyConnection,
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
    let view = insert_new(c, std::slice::from_ref(&order))
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

/// Writes new orders at the store: numbers, rows, money, audit, routing and
/// outbox, one statement per table for the lot. An order goes to the first
/// warehouse that takes every line of it (see [`route`]); one that no
/// warehouse takes whole waits, routed nowhere, and does not travel.
async fn insert_new(c: &mut AnyConnection, new: &[NewOrder]) -> Result<Vec<OrderView>> {
    let now = now_micros();
    let warehouses = active_warehouses(c).await?;
    let at = storage::from_micros(now);
    let first = orders::next_numbers(c, new.len()).await?;
    let list: Vec<Order> = new
        .iter()
        .zip(first..)
        .map(|(n, seq)| Order {
            id: OrderId::new(),
            number: crate::domain::order::order_number(seq),
            content: n.content.clone(),
            store_version: 1,
            warehouse_version: 0,
            fulfillment: None,
            created_at: at,
            updated_at: at,
        })
        .collect();
    // One script: on SQLite the six inserts are one call to the database.
    let mut script = Script::new(c);
    orders::plan_insert_all(&mut script, &list);
    let prices: Vec<(OrderId, &Pricing)> = list
        .iter()
        .zip(new)
        .map(|(o, n)| (o.id, &n.pricing))
        .collect();
    orders::plan_pricing(&mut script, &prices);
    let trail: Vec<audit::Record> = list
        .iter()
        .zip(new)
        .map(|(o, n)| audit::Record {
            id: o.id,
            actor: &n.actor,
            changes: "created".into(),
        })
        .collect();
    audit::plan_records(&mut script, &trail, now);
    let mut routed: BTreeMap<String, Vec<(OrderId, i64)>> = BTreeMap::new();
    for o in &list {
        let skus: Vec<&Sku> = o.content.lines.iter().map(|l| &l.sku).collect();
        let r = route(
            &skus,
            &o.content.shipping_address.country,
            &warehouses,
            |_, _| false,
        );
        if let Some(w) = r.whole() {
            routed
                .entry(w.to_string())
                .or_default()
                .push((o.id, o.store_version));
        }
    }
    for (w, queued) in &routed {
        let ids: Vec<OrderId> = queued.iter().map(|(id, _)| *id).collect();
        orders::plan_set_warehouse(&mut script, &ids, w);
        outbox::plan_enqueue(&mut script, w, queued, now);
    }
    let inserted = orders::inserted_ids(script.run(c).await?)?;
    if let Some(taken) = list.iter().find(|o| !inserted.contains(&o.id)) {
        // Fresh v7 ids and the next numbers cannot be taken, unless the
        // database was edited by hand. The caller rolls the batch back.
        return Err(EngineError::Conflict(format!(
            "order number {} is already taken; check the order_number counter",
            taken.number
        )));
    }
    if !routed.is_empty() {
        outbox::notify(c, Role::Warehouse.as_str()).await?;
    }
    Ok(list
        .into_iter()
        .zip(new)
        .map(|(order, n)| OrderView {
            order,
            pricing: Some(n.pricing.clone()),
            sync: SyncInfo {
                state: SyncState::Pending,
                last_error: None,
            },
        })
        .collect())
}

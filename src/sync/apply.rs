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

use sqlx::AnyConnection;

use crate::domain::snapshot::{ContentSnapshot, FulfillmentSnapshot, ItemOutcome, ItemResult};
use crate::domain::{Actor, FieldError, Fulfillment, Order, OrderId, Role};
use crate::engine::{Engine, Result};
use crate::storage::{audit, now_micros, orders, outbox};

/// Why a whole batch was refused before any item was looked at.
#[derive(Debug, thiserror::Error)]
pub enum BatchRefused {
    #[error("this webhook-id was already processed; a sender must use a new id for every request")]
    Replayed,
}

/// Applies a batch. `webhook_id` is remembered in the same transaction, so a
/// captured request replayed later is refused.
pub async fn apply_batch(
    engine: &Engine,
    webhook_id: &str,
    items: &[serde_json::Value],
) -> Result<std::result::Result<Vec<ItemResult>, BatchRefused>> {
    let (this, webhook_id, items) = (engine.clone(), webhook_id.to_owned(), items.to_vec());
    let outcome = engine
        .db()
        .write(move |c| Box::pin(async move { apply_in(&this, c, &webhook_id, &items).await }))
        .await?;
    let Ok((results, enqueued)) = outcome else {
        return Ok(Err(BatchRefused::Replayed));
    };
    let applied = results
        .iter()
        .filter(|r| r.outcome == ItemOutcome::Applied)
        .count();
    engine.metrics().applied.increment(applied as u64);
    if enqueued {
        engine.wake_relay();
    }
    Ok(Ok(results))
}

/// The batch inside its transaction: results, and whether anything was
/// enqueued for the relay.
async fn apply_in(
    engine: &Engine,
    c: &mut AnyConnection,
    webhook_id: &str,
    items: &[serde_json::Value],
) -> Result<std::result::Result<(Vec<ItemResult>, bool), BatchRefused>> {
    let now = now_micros();
    let fresh = sqlx::query(
        "INSERT INTO seen_webhooks (id, seen_at) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING",
    )
    .bind(webhook_id)
    .bind(now)
    .execute(&mut *c)
    .await?
    .rows_affected();
    if fresh == 0 {
        return Ok(Err(BatchRefused::Replayed));
    }
    let actor = Actor::Sync(engine.peer().to_owned());
    let mut results = Vec::with_capacity(items.len());
    let mut enqueued = false;
    for item in items {
        let r = match engine.role() {
            Role::Warehouse => apply_content(engine, c, &actor, item, now, &mut enqueued).await?,
            Role::Store => apply_fulfillment(engine, c, &actor, item, now).await?,
        };
        results.push(r);
    }
    Ok(Ok((results, enqueued)))
}

fn rejected(id: Option<OrderId>, reason: String) -> ItemResult {
    ItemResult {
        id,
        outcome: ItemOutcome::Rejected,
        reason: Some(reason),
    }
}

fn outcome(id: OrderId, outcome: ItemOutcome) -> ItemResult {
    ItemResult {
        id: Some(id),
        outcome,
        reason: None,
    }
}

fn describe(errors: &[FieldError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("; ")
}

/// The id of an item, if it has a readable one (for the answer).
fn item_id(item: &serde_json::Value) -> Option<OrderId> {
    item.get("id")
        .and_then(|v| v.as_str())
        .and_then(OrderId::parse)
}

async fn apply_content(
    engine: &Engine,
    c: &mut AnyConnection,
    actor: &Actor,
    item: &serde_json::Value,
    now: i64,
    enqueued: &mut bool,
) -> Result<ItemResult> {
    let snap: ContentSnapshot = match serde_json::from_value(item.clone()) {
        Ok(s) => s,
        Err(e) => {
            return Ok(rejected(
                item_id(item),
                format!("not an order content snapshot: {e}"),
            ));
        }
    };
    let content = match snap.parse() {
        Ok(c) => c,
        Err(errors) => return Ok(rejected(Some(snap.id), describe(&errors))),
    };
    let id = snap.id;
    let mut existing = orders::load_for_update(engine.db(), c, id).await?;
    if existing.is_none() {
        let mut fulfillment = Fulfillment::new();
        if content.cancel.is_some() {
            fulfillment = fulfillment.answer_cancel_request();
        }
        let order = Order {
            id,
            number: snap.number.clone(),
            content: content.clone(),
            store_version: snap.store_version,
            warehouse_version: 1,
            fulfillment: Some(fulfillment),
            created_at: snap.created_at,
            updated_at: crate::storage::from_micros(now),
        };
        if orders::insert(c, &order).await? {
            audit::record(c, id, actor, &["created"], now).await?;
            // The store learns the order's first fulfillment state.
            outbox::enqueue(c, engine.peer(), id, 1, now).await?;
            *enqueued = true;
            return Ok(outcome(id, ItemOutcome::Applied));
        }
        // Taken meanwhile: by a concurrent delivery of this same order (then
        // it is an update like any other), or its number by another order.
        existing = orders::load_for_update(engine.db(), c, id).await?;
        if existing.is_none() {
            return Ok(rejected(
                Some(id),
                format!("order number {} belongs to another order", snap.number),
            ));
        }
    }
    match existing {
        None => Ok(rejected(
            Some(id),
            "order vanished while being applied".into(),
        )),
        Some(old) if old.store_version >= snap.store_version => Ok(outcome(id, ItemOutcome::Stale)),
        Some(old) => {
            let changed = old.content.changed_fields(&content);
            orders::update_content(c, id, &content, snap.store_version, now).await?;
            if !changed.is_empty() {
                audit::record(c, id, actor, &changed, now).await?;
            }
            let before = old.fulfillment.clone().unwrap_or_default();
            let mut after = before.clone();
            let edited = changed.iter().any(|f| *f != "cancel_request");
            if edited && before.work_started() {
                // The store owns content, so the edit is applied; staff are
                // told it came after they started.
                after.content_changed_after_pick = true;
            }
            if content.cancel.is_some() {
                after = after.answer_cancel_request();
            }
            if after != before {
                engine
                    .save_fulfillment(
                        c,
                        &old,
                        &before,
                        &after,
                        &Actor::System("warehouse".into()),
                        now,
                    )
                    .await?;
                *enqueued = true;
            }
            Ok(outcome(id, ItemOutcome::Applied))
        }
    }
}

async fn apply_fulfillment(
    engine: &Engine,
    c: &mut AnyConnection,
    actor: &Actor,
    item: &serde_json::Value,
    now: i64,
) -> Result<ItemResult> {
    let snap: FulfillmentSnapshot = match serde_json::from_value(item.clone()) {
        Ok(s) => s,
        Err(e) => {
            return Ok(rejected(
                item_id(item),
                format!("not a fulfillment snapshot: {e}"),
            ));
        }
    };
    let fulfillment = match snap.parse() {
        Ok(f) => f,
        Err(errors) => return Ok(rejected(Some(snap.id), describe(&errors))),
    };
    let id = snap.id;
    match orders::load_for_update(engine.db(), c, id).await? {
        None => Ok(rejected(
            Some(id),
            "the store has no order with this id".into(),
        )),
        Some(old) if old.warehouse_version >= snap.warehouse_version => {
            Ok(outcome(id, ItemOutcome::Stale))
        }
        Some(old) => {
            let changed = match &old.fulfillment {
                Some(before) => before.changed_fields(&fulfillment),
                None => vec!["status"],
            };
            orders::update_fulfillment(c, id, &fulfillment, snap.warehouse_version, now).await?;
            if !changed.is_empty() {
                audit::record(c, id, actor, &changed, now).await?;
            }
            Ok(outcome(id, ItemOutcome::Applied))
        }
    }
}

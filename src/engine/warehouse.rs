//! The warehouse's commands: move orders through fulfillment (staff steps
//! are batched), and the fulfillment changes sync makes.

use std::collections::HashMap;

use sqlx::AnyConnection;

use super::batch::BatchWrite;
use super::{Engine, EngineError, OrderView, Result};
use crate::domain::delivery::SyncInfo;
use crate::domain::fulfillment::StepRefused;
use crate::domain::role::Command;
use crate::domain::{Action, Actor, Fulfillment, Order, OrderId};
use crate::storage::writer::BoxFuture;
use crate::storage::{self, audit, now_micros, orders, outbox};

impl Engine {
    /// Moves an order through fulfillment, or says why it cannot move.
    /// Steps that arrive together are written together (see [`batch`]).
    pub async fn transition(
        &self,
        actor: &Actor,
        id: OrderId,
        action: Action,
    ) -> Result<OrderView> {
        self.require(Command::ChangeFulfillment)?;
        let step = Step {
            actor: actor.clone(),
            id,
            action,
        };
        self.steps.submit(&self.db, &self.wake, step).await
    }

    /// Writes a new fulfillment with the next warehouse version, audits it and
    /// enqueues it for the store (the effects of sync; staff steps go
    /// through [`apply_steps`] in bulk).
    pub(crate) async fn save_fulfillment(
        &self,
        c: &mut AnyConnection,
        order: &Order,
        before: &Fulfillment,
        after: &Fulfillment,
        actor: &Actor,
        now: i64,
    ) -> Result<i64> {
        let v = order.warehouse_version + 1;
        orders::update_fulfillment(c, order.id, after, v, now).await?;
        audit::record(c, order.id, actor, &before.diff(after), now).await?;
        outbox::enqueue(c, self.peer(), order.id, v, now).await?;
        Ok(v)
    }
}

/// One fulfillment step asked for by staff.
pub(super) struct Step {
    actor: Actor,
    id: OrderId,
    action: Action,
}

/// Fulfillment steps at the warehouse, written in bulk.
pub(super) struct Steps {
    pub(super) peer: &'static str,
}

impl BatchWrite for Steps {
    type Item = Step;

    fn write<'c>(
        &'c self,
        c: &'c mut AnyConnection,
        items: &'c [Step],
    ) -> BoxFuture<'c, Result<Vec<Result<OrderView>>>> {
        Box::pin(apply_steps(c, self.peer, items))
    }
}

/// Applies staff steps: the orders are loaded (and locked) together, each
/// step is checked against the order as the steps before it left it (a step
/// that cannot be taken fails alone and changes nothing), and the orders
/// that moved are written once each, with one audit line per step.
async fn apply_steps(
    c: &mut AnyConnection,
    peer: &'static str,
    steps: &[Step],
) -> Result<Vec<Result<OrderView>>> {
    let now = now_micros();
    let at = storage::from_micros(now);
    let mut ids: Vec<OrderId> = steps.iter().map(|s| s.id).collect();
    ids.sort();
    ids.dedup();
    let mut current: HashMap<OrderId, Order> =
        orders::load_many_for_update(c, &ids, orders::Parts::All)
            .await?
            .into_iter()
            .map(|o| (o.id, o))
            .collect();
    let mut moved: Vec<OrderId> = Vec::new();
    let mut trail = Vec::new();
    let mut results: Vec<Result<Order>> = Vec::with_capacity(steps.len());
    for step in steps {
        let Some(order) = current.get_mut(&step.id) else {
            results.push(Err(EngineError::NotFound(step.id)));
            continue;
        };
        let before = order.fulfillment.clone().unwrap_or_default();
        match before.apply(
            step.action.clone(),
            &order.content.lines,
            &order.content.holds,
            at,
        ) {
            Err(StepRefused::Invalid(errors)) => results.push(Err(EngineError::Invalid(errors))),
            Err(StepRefused::UnknownHold(h)) => {
                results.push(Err(EngineError::UnknownHold(h.to_string())));
            }
            Err(e) => results.push(Err(EngineError::Conflict(format!(
                "order {}: {e}",
                order.number
            )))),
            Ok(after) => {
                trail.push(audit::Record::changed(
                    order.id,
                    &step.actor,
                    &before.diff(&after),
                ));
                order.fulfillment = Some(after);
                order.warehouse_version += 1;
                order.updated_at = at;
                if !moved.contains(&order.id) {
                    moved.push(order.id);
                }
                results.push(Ok(order.clone()));
            }
        }
    }
    let writes: Vec<(OrderId, &Fulfillment, i64)> = moved
        .iter()
        .filter_map(|id| current.get(id))
        .filter_map(|o| {
            o.fulfillment
                .as_ref()
                .map(|f| (o.id, f, o.warehouse_version))
        })
        .collect();
    let written = orders::update_fulfillments(c, &writes, now).await?;
    if written.len() != writes.len() {
        // The rows are locked (or the writer is alone), so only a hand edit
        // of the database can get here.
        return Err(EngineError::Conflict(
            "an order changed while it was being updated; try again".into(),
        ));
    }
    audit::record_many(c, &trail, now).await?;
    let queued: Vec<(OrderId, i64)> = writes.iter().map(|(id, _, v)| (*id, *v)).collect();
    outbox::enqueue_many(c, peer, &queued, now).await?;
    let sync = outbox::sync_info(c, &moved).await?;
    Ok(results
        .into_iter()
        .map(|r| {
            r.map(|order| OrderView {
                sync: sync.get(&order.id).cloned().unwrap_or(SyncInfo::SYNCED),
                pricing: None,
                order,
                parts: Vec::new(),
                unrouted: Vec::new(),
            })
        })
        .collect())
}

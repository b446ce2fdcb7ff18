//! The order engine: every command that changes an order, for both roles.
//!
//! Each command is one database transaction that loads the order (locked on
//! PostgreSQL), applies a domain rule, writes the new state, appends to the
//! audit trail and enqueues the order in the outbox. After the commit the
//! relay is woken; no network call ever happens inside a command.
//!
//! What differs between store and warehouse is which commands are allowed
//! (the role rules of [`crate::domain::role`]; [`EngineError::WrongRole`])
//! and whether money is loaded with an order.

use std::collections::HashMap;
use std::sync::Arc;

use sqlx::AnyConnection;
use tokio::sync::Notify;

use crate::domain::delivery::{SyncInfo, SyncState};
use crate::domain::order::{CancelRequest, PatchOrderInput};
use crate::domain::role::{Command, WrongSide};
use crate::domain::{
    Action, Actor, FieldError, Fulfillment, Order, OrderContent, OrderId, Pricing, Role,
};
pub use crate::metrics::Metrics;
mod batch;
pub mod credentials;

use batch::{BatchWrite, Batcher, not_written};

use crate::storage::bulk::Script;
use crate::storage::writer::BoxFuture;
use crate::storage::{self, Db, StorageError, audit, idempotency, now_micros, orders, outbox};

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("no order with id {0}")]
    NotFound(OrderId),
    #[error("{0}")]
    Conflict(String),
    #[error("invalid input")]
    Invalid(Vec<FieldError>),
    #[error("{0}")]
    WrongRole(#[from] WrongSide),
    #[error("this Idempotency-Key was already used with a different request body")]
    IdempotencyKeyReused,
    #[error(transparent)]
    Storage(#[from] StorageError),
}

impl storage::StorageFailure for EngineError {
    fn storage_kind(&self) -> Option<storage::ErrorKind> {
        match self {
            EngineError::Storage(e) => Some(e.kind()),
            _ => None,
        }
    }
}

impl From<sqlx::Error> for EngineError {
    fn from(e: sqlx::Error) -> Self {
        EngineError::Storage(StorageError::Sqlx(e))
    }
}

pub type Result<T, E = EngineError> = std::result::Result<T, E>;

/// An order as shown to users of one side: money only at the store.
#[derive(Debug, Clone)]
pub struct OrderView {
    pub order: Order,
    /// Always `None` at the warehouse.
    pub pricing: Option<Pricing>,
    pub sync: SyncInfo,
}

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

/// One service's engine: its database, its role, and the relay's wake-up.
#[derive(Clone)]
pub struct Engine {
    db: Db,
    role: Role,
    wake: Arc<Notify>,
    metrics: Arc<Metrics>,
    /// Creates without an idempotency key, written together.
    creates: Arc<Batcher<Creates>>,
    /// Fulfillment steps by staff, written together.
    steps: Arc<Batcher<Steps>>,
    tokens: Arc<credentials::TokenCache>,
}

/// What a new order is made of, before it has an id and a number.
#[derive(Clone)]
struct NewOrder {
    actor: Actor,
    content: OrderContent,
    pricing: Pricing,
}

impl Engine {
    pub fn new(db: Db, role: Role) -> Self {
        Self {
            db: db.clone(),
            role,
            wake: Arc::new(Notify::new()),
            metrics: Arc::new(Metrics::new(role)),
            creates: Arc::new(Batcher::new(Creates {
                peer: role.peer().as_str(),
            })),
            steps: Arc::new(Batcher::new(Steps {
                db: db.clone(),
                peer: role.peer().as_str(),
            })),
            tokens: Arc::default(),
        }
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    pub fn role(&self) -> Role {
        self.role
    }

    /// The peer this side's outbox delivers to.
    pub fn peer(&self) -> &'static str {
        self.role.peer().as_str()
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Resolves when a commit enqueued something for the relay.
    pub fn wake_handle(&self) -> Arc<Notify> {
        self.wake.clone()
    }

    /// Tells the relay that new outbox rows are committed.
    pub fn wake_relay(&self) {
        self.wake.notify_one();
    }

    /// `Ok` when this side runs `command` (the role rules decide).
    fn require(&self, command: Command) -> Result<()> {
        Ok(self.role.check(command)?)
    }

    // -- reads ---------------------------------------------------------------

    /// Adds money (store only) and sync state to loaded orders.
    async fn views(&self, c: &mut AnyConnection, list: Vec<Order>) -> Result<Vec<OrderView>> {
        let ids: Vec<OrderId> = list.iter().map(|o| o.id).collect();
        let mut pricing = if self.role.holds_money() {
            orders::load_pricing(c, &ids).await?
        } else {
            Default::default()
        };
        let mut sync = outbox::sync_info(c, self.peer(), &ids).await?;
        Ok(list
            .into_iter()
            .map(|order| OrderView {
                pricing: pricing.remove(&order.id),
                sync: sync.remove(&order.id).unwrap_or(SyncInfo::SYNCED),
                order,
            })
            .collect())
    }

    pub async fn get(&self, id: OrderId) -> Result<OrderView> {
        let mut c = self.db.reader().acquire().await?;
        let found = orders::load_many(&mut c, &[id]).await?;
        self.views(&mut c, found)
            .await?
            .pop()
            .ok_or(EngineError::NotFound(id))
    }

    pub async fn list(&self, filter: &orders::ListFilter) -> Result<Vec<OrderView>> {
        let mut c = self.db.reader().acquire().await?;
        let ids = orders::list_ids(&mut c, self.peer(), filter).await?;
        let found = orders::load_many(&mut c, &ids).await?;
        self.views(&mut c, found).await
    }

    pub async fn audit(&self, id: OrderId) -> Result<Vec<audit::Entry>> {
        let mut c = self.db.reader().acquire().await?;
        if orders::load(&mut c, id).await?.is_none() {
            return Err(EngineError::NotFound(id));
        }
        Ok(audit::list(&mut c, id).await?)
    }

    pub async fn attempts(&self, id: OrderId, limit: i64) -> Result<Vec<outbox::Attempt>> {
        let mut c = self.db.reader().acquire().await?;
        Ok(outbox::attempts(&mut c, self.peer(), id, limit).await?)
    }

    pub async fn outbox_status(&self) -> Result<outbox::OutboxStatus> {
        let mut c = self.db.reader().acquire().await?;
        Ok(outbox::status(&mut c, self.peer()).await?)
    }

    /// The last reconciliation pass recorded in this database.
    pub async fn last_reconcile(&self) -> Result<Option<storage::digests::Run>> {
        let mut c = self.db.reader().acquire().await?;
        Ok(storage::digests::last_run(&mut c).await?)
    }

    /// Moves the selected dead letters back to pending (or, with `dry_run`,
    /// only counts them) and wakes the relay. The API, the admin page and
    /// the CLI all replay through here.
    pub async fn replay_dead_letters(
        &self,
        which: outbox::ReplaySelection,
        dry_run: bool,
    ) -> Result<u64> {
        let peer = self.peer();
        let n = self
            .db
            .write(move |c| {
                Box::pin(async move {
                    let n = outbox::replay(c, peer, &which, dry_run, now_micros()).await?;
                    if n > 0 && !dry_run {
                        // The relays of other processes (the service, when
                        // the CLI replays; other replicas) wake at commit.
                        outbox::notify(c, peer).await?;
                    }
                    Ok::<_, EngineError>(n)
                })
            })
            .await?;
        if !dry_run && n > 0 {
            self.wake_relay();
        }
        Ok(n)
    }

    /// Remembers the `webhook-id` of a signed request from the peer; false
    /// when it was seen before, i.e. the request is a replay.
    pub async fn remember_webhook(&self, id: &str) -> Result<bool> {
        let id = id.to_owned();
        self.db
            .write(move |c| {
                Box::pin(async move {
                    Ok::<_, EngineError>(storage::webhooks::remember(c, &id, now_micros()).await?)
                })
            })
            .await
    }

    // -- store commands -------------------------------------------------------

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
            let (peer, order, key, render) =
                (self.peer(), order.clone(), key.clone(), render.clone());
            let attempt = self
                .db
                .write(move |c| {
                    Box::pin(async move { create_keyed(c, peer, order, key, &*render).await })
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
        let order = orders::load_for_update(&self.db, c, id)
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
            outbox::enqueue(c, self.peer(), id, v, now).await?;
        } else if !changed.is_empty() {
            touch(c, id, now).await?;
        }
        if !changed.is_empty() {
            audit::record(c, id, actor, &changed, now).await?;
        }
        Ok(())
    }

    /// Asks the warehouse to cancel. Repeating it changes nothing.
    pub async fn request_cancel(
        &self,
        actor: &Actor,
        id: OrderId,
        reason: Option<String>,
    ) -> Result<OrderView> {
        self.require(Command::RequestCancel)?;
        let (this, actor) = (self.clone(), actor.clone());
        self.db
            .write(move |c| {
                Box::pin(async move {
                    let now = now_micros();
                    let order = orders::load_for_update(&this.db, c, id)
                        .await?
                        .ok_or(EngineError::NotFound(id))?;
                    if order.content.cancel.is_none() {
                        let mut content = order.content.clone();
                        content.cancel = Some(CancelRequest { reason });
                        let v = order.store_version + 1;
                        orders::update_content(c, id, &content, v, now).await?;
                        audit::record(c, id, &actor, &["cancel_request"], now).await?;
                        outbox::enqueue(c, this.peer(), id, v, now).await?;
                    }
                    Ok::<_, EngineError>(())
                })
            })
            .await?;
        self.wake_relay();
        self.get(id).await
    }

    // -- warehouse commands ---------------------------------------------------

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
        audit::record(c, order.id, actor, &before.changed_fields(after), now).await?;
        outbox::enqueue(c, self.peer(), order.id, v, now).await?;
        Ok(v)
    }
}

/// New orders at the store, written in bulk.
struct Creates {
    peer: &'static str,
}

impl BatchWrite for Creates {
    type Item = NewOrder;

    fn write<'c>(
        &'c self,
        c: &'c mut AnyConnection,
        items: &'c [NewOrder],
    ) -> BoxFuture<'c, Result<Vec<Result<OrderView>>>> {
        Box::pin(async move {
            let views = insert_new(c, self.peer, items).await?;
            Ok(views.into_iter().map(Ok).collect())
        })
    }
}

/// One fulfillment step asked for by staff.
struct Step {
    actor: Actor,
    id: OrderId,
    action: Action,
}

/// Fulfillment steps at the warehouse, written in bulk.
struct Steps {
    db: Db,
    peer: &'static str,
}

impl BatchWrite for Steps {
    type Item = Step;

    fn write<'c>(
        &'c self,
        c: &'c mut AnyConnection,
        items: &'c [Step],
    ) -> BoxFuture<'c, Result<Vec<Result<OrderView>>>> {
        Box::pin(apply_steps(c, &self.db, self.peer, items))
    }
}

/// Applies staff steps: the orders are loaded (and locked) together, each
/// step is checked against the order as the steps before it left it (a step
/// that cannot be taken fails alone and changes nothing), and the orders
/// that moved are written once each, with one audit line per step.
async fn apply_steps(
    c: &mut AnyConnection,
    db: &Db,
    peer: &'static str,
    steps: &[Step],
) -> Result<Vec<Result<OrderView>>> {
    let now = now_micros();
    let at = storage::from_micros(now);
    let mut ids: Vec<OrderId> = steps.iter().map(|s| s.id).collect();
    ids.sort();
    ids.dedup();
    let mut current: HashMap<OrderId, Order> =
        orders::load_many_for_update(db, c, &ids, orders::Parts::All)
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
        match before.apply(step.action.clone(), at) {
            Err(e) => results.push(Err(EngineError::Conflict(format!(
                "order {}: {e}",
                order.number
            )))),
            Ok(after) => {
                trail.push(audit::Record {
                    id: order.id,
                    actor: &step.actor,
                    changes: before.changed_fields(&after).join(","),
                });
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
    let sync = outbox::sync_info(c, peer, &moved).await?;
    Ok(results
        .into_iter()
        .map(|r| {
            r.map(|order| OrderView {
                sync: sync.get(&order.id).cloned().unwrap_or(SyncInfo::SYNCED),
                pricing: None,
                order,
            })
        })
        .collect())
}

/// A create with an idempotency key: the stored answer when the key was
/// seen with the same body, else the new order and the key saved with it.
async fn create_keyed(
    c: &mut AnyConnection,
    peer: &'static str,
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
    let view = insert_new(c, peer, std::slice::from_ref(&order))
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

/// Writes new orders at the store: numbers, rows, money, audit and outbox,
/// one statement per table for the lot.
async fn insert_new(
    c: &mut AnyConnection,
    peer: &'static str,
    new: &[NewOrder],
) -> Result<Vec<OrderView>> {
    let now = now_micros();
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
    let queued: Vec<(OrderId, i64)> = list.iter().map(|o| (o.id, o.store_version)).collect();
    outbox::plan_enqueue(&mut script, peer, &queued, now);
    let inserted = orders::inserted_ids(script.run(c).await?)?;
    if let Some(taken) = list.iter().find(|o| !inserted.contains(&o.id)) {
        // Fresh v7 ids and the next numbers cannot be taken, unless the
        // database was edited by hand. The caller rolls the batch back.
        return Err(EngineError::Conflict(format!(
            "order number {} is already taken; check the order_number counter",
            taken.number
        )));
    }
    outbox::notify(c, peer).await?;
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

async fn touch(c: &mut AnyConnection, id: OrderId, now: i64) -> Result<()> {
    sqlx::query("UPDATE orders SET updated_at = $2 WHERE id = $1")
        .bind(id.to_string())
        .bind(now)
        .execute(&mut *c)
        .await?;
    Ok(())
}

//! The order engine: every command that changes an order, for both roles.
//!
//! Each command is one database transaction that loads the order (locked on
//! PostgreSQL), applies a domain rule, writes the new state, appends to the
//! audit trail and enqueues the order in the outbox. After the commit the
//! relay is woken; no network call ever happens inside a command.
//!
//! What differs between store and warehouse is which commands are allowed
//! ([`EngineError::WrongRole`]) and whether money is loaded with an order.

use std::sync::{Arc, OnceLock};

use chrono::Utc;
use sqlx::AnyConnection;
use tokio::sync::{Notify, mpsc, oneshot};

use crate::domain::order::{CancelRequest, PatchOrderInput};
use crate::domain::{
    Action, Actor, FieldError, Fulfillment, Order, OrderContent, OrderId, Pricing, Role,
};
pub use crate::metrics::Metrics;
use crate::storage::outbox::{SyncInfo, SyncState};
pub mod credentials;

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
    WrongRole(&'static str),
    #[error("this Idempotency-Key was already used with a different request body")]
    IdempotencyKeyReused,
    #[error(transparent)]
    Storage(#[from] StorageError),
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

/// One service's engine: its database, its role, and the relay's wake-up.
#[derive(Clone)]
pub struct Engine {
    db: Db,
    role: Role,
    wake: Arc<Notify>,
    metrics: Arc<Metrics>,
    /// Creates without an idempotency key wait here to be written together.
    creates: Arc<OnceLock<mpsc::Sender<PendingCreate>>>,
    tokens: Arc<credentials::TokenCache>,
}

/// Most creates written in one statement batch.
const MAX_CREATE_BATCH: usize = 256;

/// What a new order is made of, before it has an id and a number.
#[derive(Clone)]
struct NewOrder {
    actor: Actor,
    content: OrderContent,
    pricing: Pricing,
}

/// A create waiting for the next batch, and where its answer goes.
struct PendingCreate {
    order: NewOrder,
    reply: oneshot::Sender<Result<OrderView>>,
}

impl Engine {
    pub fn new(db: Db, role: Role) -> Self {
        Self {
            db,
            role,
            wake: Arc::new(Notify::new()),
            metrics: Arc::new(Metrics::new(role)),
            creates: Arc::new(OnceLock::new()),
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

    fn require(&self, role: Role, what: &'static str) -> Result<()> {
        if self.role == role {
            Ok(())
        } else {
            Err(EngineError::WrongRole(what))
        }
    }

    // -- reads ---------------------------------------------------------------

    /// Adds money (store only) and sync state to loaded orders.
    async fn views(&self, c: &mut AnyConnection, list: Vec<Order>) -> Result<Vec<OrderView>> {
        let ids: Vec<OrderId> = list.iter().map(|o| o.id).collect();
        let mut pricing = match self.role {
            Role::Store => orders::load_pricing(c, &ids).await?,
            Role::Warehouse => Default::default(),
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
                    Ok::<_, EngineError>(
                        outbox::replay(c, peer, &which, dry_run, now_micros()).await?,
                    )
                })
            })
            .await?;
        if !dry_run && n > 0 {
            self.wake_relay();
        }
        Ok(n)
    }

    // -- store commands -------------------------------------------------------

    /// Creates an order at the store. With an idempotency key, a repeat of the
    /// same request answers the first response (`render` makes it) and
    /// creates nothing.
    ///
    /// Creates without a key that arrive together are written together (see
    /// [`create_batches`]): one statement per table for the whole batch, and
    /// each is answered once the batch is durable.
    pub async fn create_order(
        &self,
        actor: &Actor,
        content: OrderContent,
        pricing: Pricing,
        idempotency: Option<(&str, &str)>,
        render: impl Fn(&OrderView) -> String + Send + Sync + 'static,
    ) -> Result<Created> {
        self.require(Role::Store, "orders are created at the store")?;
        let order = NewOrder {
            actor: actor.clone(),
            content,
            pricing,
        };
        let Some((key, hash)) = idempotency else {
            let (reply, answer) = oneshot::channel();
            let stopped = || StorageError::Commit("the order writer has stopped".into());
            self.create_queue()
                .send(PendingCreate { order, reply })
                .await
                .map_err(|_| stopped())?;
            let view = answer.await.map_err(|_| stopped())??;
            return Ok(Created::New(Box::new(view)));
        };
        let render = Arc::new(render);
        let key = (key.to_owned(), hash.to_owned());
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

    /// The queue of [`create_batches`], started on first use.
    fn create_queue(&self) -> &mpsc::Sender<PendingCreate> {
        self.creates.get_or_init(|| {
            let (tx, rx) = mpsc::channel(4 * MAX_CREATE_BATCH);
            // The task holds the database and the wake-up, not the engine:
            // when the last engine goes, the queue closes and the task ends.
            tokio::spawn(create_batches(
                self.db.clone(),
                self.peer(),
                self.wake.clone(),
                rx,
            ));
            tx
        })
    }

    /// Changes content or money of an order the warehouse has not started on.
    pub async fn patch_order(
        &self,
        actor: &Actor,
        id: OrderId,
        patch: &PatchOrderInput,
    ) -> Result<OrderView> {
        self.require(Role::Store, "orders are edited at the store")?;
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
        self.require(Role::Store, "cancellation is requested at the store")?;
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
    pub async fn transition(
        &self,
        actor: &Actor,
        id: OrderId,
        action: Action,
    ) -> Result<OrderView> {
        self.require(Role::Warehouse, "fulfillment is changed at the warehouse")?;
        let (this, actor) = (self.clone(), actor.clone());
        self.db
            .write(move |c| {
                Box::pin(async move {
                    let now = now_micros();
                    let order = orders::load_for_update(&this.db, c, id)
                        .await?
                        .ok_or(EngineError::NotFound(id))?;
                    let current = order.fulfillment.clone().unwrap_or_default();
                    let next = current.apply(action, Utc::now()).map_err(|e| {
                        EngineError::Conflict(format!("order {}: {e}", order.number))
                    })?;
                    this.save_fulfillment(c, &order, &current, &next, &actor, now)
                        .await
                })
            })
            .await?;
        self.wake_relay();
        self.get(id).await
    }

    /// Writes a new fulfillment with the next warehouse version, audits it and
    /// enqueues it for the store. Shared by staff actions and sync effects.
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

/// Takes every create waiting, writes them as one batch, and answers each
/// once the batch is durable. One batch is written at a time: the next one
/// gathers while the last commits (that wait is what makes batches; writing
/// each as it comes would make batches of one).
async fn create_batches(
    db: Db,
    peer: &'static str,
    wake: Arc<Notify>,
    mut queue: mpsc::Receiver<PendingCreate>,
) {
    while let Some(first) = queue.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_CREATE_BATCH {
            match queue.try_recv() {
                Ok(p) => batch.push(p),
                Err(_) => break,
            }
        }
        create_batch(&db, peer, &wake, batch).await;
    }
}

async fn create_batch(db: &Db, peer: &'static str, wake: &Notify, batch: Vec<PendingCreate>) {
    let (orders, replies): (Vec<NewOrder>, Vec<_>) =
        batch.into_iter().map(|p| (p.order, p.reply)).unzip();
    let orders = Arc::new(orders);
    let all = orders.clone();
    let written = db
        .write(move |c| Box::pin(async move { insert_new(c, peer, &all).await }))
        .await;
    match written {
        Ok(views) => {
            wake.notify_one();
            for (reply, view) in replies.into_iter().zip(views) {
                let _ = reply.send(Ok(view));
            }
        }
        Err(e) if replies.len() == 1 => {
            if let Some(reply) = replies.into_iter().next() {
                let _ = reply.send(Err(e));
            }
        }
        Err(_) => {
            // Nothing of the batch was written. Each create alone, so that
            // only the one at fault fails, with its own error.
            let mut any = false;
            for (i, reply) in replies.into_iter().enumerate() {
                let one = orders.clone();
                let r = db
                    .write(move |c| Box::pin(async move { insert_new(c, peer, &one[i..=i]).await }))
                    .await
                    .and_then(|mut v| v.pop().ok_or_else(not_written));
                any |= r.is_ok();
                let _ = reply.send(r);
            }
            if any {
                wake.notify_one();
            }
        }
    }
}

fn not_written() -> EngineError {
    StorageError::Commit("the order was not written".into()).into()
}

/// A create with an idempotency key: the stored answer when the key was
/// seen with the same body, else the new order and the key saved with it.
async fn create_keyed(
    c: &mut AnyConnection,
    peer: &'static str,
    order: NewOrder,
    (key, hash): (String, String),
    render: &(dyn Fn(&OrderView) -> String + Send + Sync),
) -> Result<Created> {
    let now = now_micros();
    if let Some(stored) = idempotency::find(c, &key, now).await? {
        return if stored.request_hash == hash {
            Ok(Created::Replayed(stored.response))
        } else {
            Err(EngineError::IdempotencyKeyReused)
        };
    }
    let view = insert_new(c, peer, std::slice::from_ref(&order))
        .await?
        .pop()
        .ok_or_else(not_written)?;
    idempotency::save(c, &key, &hash, &render(&view), now).await?;
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
    let inserted = orders::insert_many(c, &list).await?;
    if let Some(taken) = list.iter().find(|o| !inserted.contains(&o.id)) {
        // Fresh v7 ids and the next numbers cannot be taken, unless the
        // database was edited by hand.
        return Err(EngineError::Conflict(format!(
            "order number {} is already taken; check the order_number counter",
            taken.number
        )));
    }
    let prices: Vec<(OrderId, &Pricing)> = list
        .iter()
        .zip(new)
        .map(|(o, n)| (o.id, &n.pricing))
        .collect();
    orders::insert_pricing(c, &prices).await?;
    let trail: Vec<audit::Record> = list
        .iter()
        .zip(new)
        .map(|(o, n)| audit::Record {
            id: o.id,
            actor: &n.actor,
            changes: "created".into(),
        })
        .collect();
    audit::record_many(c, &trail, now).await?;
    let queued: Vec<(OrderId, i64)> = list.iter().map(|o| (o.id, o.store_version)).collect();
    outbox::enqueue_many(c, peer, &queued, now).await?;
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

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

use std::sync::Arc;

use sqlx::AnyConnection;
use tokio::sync::Notify;

use crate::domain::delivery::SyncInfo;
use crate::domain::role::{Command, WrongSide};
use crate::domain::{FieldError, Order, OrderId, Pricing, Role};
pub use crate::metrics::Metrics;
pub mod apply;
mod batch;
pub mod credentials;
pub mod delivery;
mod parts;
mod reconcile;
pub mod sessions;
mod store;
mod warehouse;
mod warehouses;

use batch::Batcher;
pub use parts::PartView;
use store::Creates;
pub use store::{Created, IdempotencyKey};
use warehouse::Steps;

use crate::storage::{self, Db, StorageError, audit, now_micros, orders, outbox};

// What the engine's operations take and answer with. Storage keeps these
// shapes; callers name them here, and never reach storage themselves.
pub use crate::storage::audit::Entry as AuditEntry;

/// One entry of an order's audit trail ([`Engine::audit`]).
#[derive(Debug, Clone)]
pub struct TrailEntry {
    /// The part it is about, when that is not the order's first row.
    pub part: Option<TrailPart>,
    pub entry: AuditEntry,
}

/// A part of a split order, as its audit entries name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrailPart {
    pub part: i64,
    pub warehouse: String,
}
pub use crate::storage::digests::{RangeDigest, Run as ReconcileRun, Versions as OrderVersions};
pub use crate::storage::history::Minute as HistoryMinute;
pub use crate::storage::orders::{Direction, ListFilter, Seek, Sort, SortKey, StatusFilter};
pub use crate::storage::outbox::{Attempt, OutboxStatus, Queued, ReplaySelection};
pub use crate::storage::prune::Retention;
pub use delivery::{MINUTE, Tally, minute_of};

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
    #[error("no warehouse named {0}")]
    UnknownWarehouse(String),
    #[error("this order has no hold {0}")]
    UnknownHold(String),
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

/// The wake-ups of this process's relays (one per peer): a commit that
/// enqueued something wakes them all, and each looks for rows of its own.
/// A relay that is busy keeps the wake-up for when it next waits.
/// It also counts the wake-ups, so that a relay can tell whether anything
/// was enqueued since it last looked without asking the database.
#[derive(Default)]
pub struct Wakers(
    std::sync::Mutex<Vec<std::sync::Weak<Notify>>>,
    std::sync::atomic::AtomicU64,
);

impl Wakers {
    /// A wake-up for one more relay (dropped with it).
    pub fn register(&self) -> Arc<Notify> {
        let n = Arc::new(Notify::new());
        let mut all = self.0.lock().unwrap_or_else(|p| p.into_inner());
        all.retain(|w| w.strong_count() > 0);
        all.push(Arc::downgrade(&n));
        n
    }

    pub fn wake_all(&self) {
        self.1.fetch_add(1, std::sync::atomic::Ordering::Release);
        for n in self
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .filter_map(std::sync::Weak::upgrade)
        {
            n.notify_one();
        }
    }

    /// How many wake-ups there have been so far.
    pub fn count(&self) -> u64 {
        self.1.load(std::sync::atomic::Ordering::Acquire)
    }
}

/// One page of a sorted order list ([`Engine::list_page`]).
#[derive(Debug, Clone)]
pub struct ListPage {
    pub views: Vec<OrderView>,
    /// Each order's place in the order of the list (for the next and
    /// previous pages' positions).
    pub seeks: Vec<Seek>,
    /// How many orders match the filters.
    pub total: i64,
    /// How many of them come before this page.
    pub before: i64,
}

/// An order as shown to users of one side: money only at the store.
#[derive(Debug, Clone)]
pub struct OrderView {
    /// At the store, the order: its first row, with the lines as ordered
    /// and the fulfillment rolled up over its parts.
    pub order: Order,
    /// Always `None` at the warehouse.
    pub pricing: Option<Pricing>,
    pub sync: SyncInfo,
    /// The store only: the order's parts, one per warehouse share (one,
    /// for an order a warehouse ships whole). Empty at the warehouse.
    pub parts: Vec<PartView>,
    /// The store only: lines no warehouse takes now, each with why.
    pub unrouted: Vec<crate::domain::parts::Unrouted>,
}

/// One service's engine: its database, its role, and the relay's wake-up.
#[derive(Clone)]
pub struct Engine {
    db: Db,
    role: Role,
    wake: Arc<Wakers>,
    metrics: Arc<Metrics>,
    /// Creates without an idempotency key, written together.
    creates: Arc<Batcher<Creates>>,
    /// Fulfillment steps by staff, written together.
    steps: Arc<Batcher<Steps>>,
    tokens: Arc<credentials::TokenCache>,
    /// Warehouses were added or changed in this process.
    warehouses_changed: Arc<Notify>,
}

impl Engine {
    /// An engine whose lone creates and steps wait the default linger.
    pub fn new(db: Db, role: Role) -> Self {
        Self::with_write_linger(db, role, crate::config::defaults::WRITE_LINGER)
    }

    /// An engine whose lone creates and steps wait up to `linger` for
    /// company before they are written ([`Batcher`]).
    pub fn with_write_linger(db: Db, role: Role, linger: std::time::Duration) -> Self {
        Self {
            db: db.clone(),
            role,
            wake: Arc::default(),
            metrics: Arc::new(Metrics::new(role)),
            creates: Arc::new(Batcher::new(
                Creates {
                    numbers: db.order_numbers().clone(),
                },
                linger,
            )),
            steps: Arc::new(Batcher::new(
                Steps {
                    peer: role.peer().as_str(),
                },
                linger,
            )),
            tokens: Arc::default(),
            warehouses_changed: Arc::default(),
        }
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    pub fn role(&self) -> Role {
        self.role
    }

    /// The side this one delivers to: at a warehouse, the store (the
    /// target of its outbox rows); at the store, the warehouses, each by
    /// its own name in the outbox.
    pub fn peer(&self) -> &'static str {
        self.role.peer().as_str()
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Resolves when a commit enqueued something for the relay.
    pub fn wake_handle(&self) -> Arc<Notify> {
        self.wake.register()
    }

    /// Tells the relays that new outbox rows are committed.
    pub fn wake_relay(&self) {
        self.wake.wake_all();
    }

    /// How many times the relays have been woken so far: unchanged means
    /// nothing was enqueued in between (by this process, or by another
    /// one whose NOTIFY arrived).
    pub fn wake_count(&self) -> u64 {
        self.wake.count()
    }

    /// `Ok` when this side runs `command` (the role rules decide).
    fn require(&self, command: Command) -> Result<()> {
        Ok(self.role.check(command)?)
    }

    // -- reads ---------------------------------------------------------------

    /// A connection for reads that need no transaction.
    async fn read(&self) -> Result<sqlx::pool::PoolConnection<sqlx::Any>> {
        Ok(self.db.reader().acquire().await?)
    }

    /// Adds money (store only) and sync state to loaded orders.
    async fn views(&self, c: &mut AnyConnection, list: Vec<Order>) -> Result<Vec<OrderView>> {
        let ids: Vec<OrderId> = list.iter().map(|o| o.id).collect();
        let mut pricing = if self.role.holds_money() {
            orders::load_pricing(c, &ids).await?
        } else {
            Default::default()
        };
        if self.role == Role::Store {
            return parts::views(c, list, pricing).await;
        }
        let mut sync = outbox::sync_info(c, &ids).await?;
        Ok(list
            .into_iter()
            .map(|order| OrderView {
                pricing: pricing.remove(&order.id),
                sync: sync.remove(&order.id).unwrap_or(SyncInfo::SYNCED),
                order,
                parts: Vec::new(),
                unrouted: Vec::new(),
            })
            .collect())
    }

    /// An order. At the store, the id of an order's later part is not an
    /// order's: not found.
    pub async fn get(&self, id: OrderId) -> Result<OrderView> {
        let mut c = self.read().await?;
        let mut tx = self.snapshot(&mut c).await?;
        let mut found = orders::load_many(&mut tx, &[id]).await?;
        if self.role == Role::Store {
            found.retain(|o| o.order_id == o.id);
        }
        let view = self
            .views(&mut tx, found)
            .await?
            .pop()
            .ok_or(EngineError::NotFound(id))?;
        tx.commit().await?;
        Ok(view)
    }

    pub async fn list(&self, filter: &orders::ListFilter) -> Result<Vec<OrderView>> {
        let mut c = self.read().await?;
        let mut tx = self.snapshot(&mut c).await?;
        let mut filter = filter.clone();
        filter.orders_only = self.role == Role::Store;
        let ids = orders::list_ids(&mut tx, &filter).await?;
        let found = orders::load_many(&mut tx, &ids).await?;
        let views = self.views(&mut tx, found).await?;
        tx.commit().await?;
        Ok(views)
    }

    /// One page of a sorted list (the admin's): at most `filter.limit`
    /// orders on the side of `filter.seek` it names, in the sort's order,
    /// with how many match in all and how many come before the page. All
    /// read in one snapshot, so the counts and the page agree.
    pub async fn list_page(&self, filter: &orders::ListFilter) -> Result<ListPage> {
        let mut c = self.read().await?;
        let mut tx = self.snapshot(&mut c).await?;
        let mut filter = filter.clone();
        filter.orders_only = self.role == Role::Store;
        let mut seeks = orders::list_seeks(&mut tx, &filter).await?;
        let total = orders::count(&mut tx, &filter, None).await?;
        let before = match (seeks.last(), filter.seek) {
            // Going back, the page came nearest first: the last is its top.
            (Some(_), Some((orders::Direction::Before, _))) => {
                seeks.reverse();
                orders::count(&mut tx, &filter, seeks.first()).await?
            }
            (Some(_), Some((orders::Direction::After, _))) => {
                orders::count(&mut tx, &filter, seeks.first()).await?
            }
            (Some(_), None) => 0,
            // Past either end (the orders changed meanwhile): nothing here.
            (None, Some((orders::Direction::After, _))) => total,
            (None, _) => 0,
        };
        let ids: Vec<OrderId> = seeks.iter().map(|s| s.id).collect();
        let found = orders::load_many(&mut tx, &ids).await?;
        let views = self.views(&mut tx, found).await?;
        tx.commit().await?;
        Ok(ListPage {
            views,
            seeks,
            total,
            before,
        })
    }

    /// A read-only transaction whose statements all see one snapshot: an
    /// order is read from several rows (its parts, items, outbox), and a
    /// write committing between two of them must not show half of itself
    /// (a new part without the rejection that made it, say). SQLite's read
    /// transactions are snapshots already; PostgreSQL's default is not.
    async fn snapshot<'c>(
        &self,
        c: &'c mut AnyConnection,
    ) -> Result<sqlx::Transaction<'c, sqlx::Any>> {
        let mut tx = sqlx::Connection::begin(c).await?;
        if self.db.dialect() == storage::Dialect::Postgres {
            sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                .execute(&mut *tx)
                .await?;
        }
        Ok(tx)
    }

    /// The audit trail of `id`, oldest first: its own entries and, for an
    /// order's first row at the store, the entries of each of its other
    /// parts (what their warehouses reported), each labelled with its part.
    /// A part's own id gives the part's entries alone.
    pub async fn audit(&self, id: OrderId) -> Result<Vec<TrailEntry>> {
        let mut c = self.read().await?;
        let mut tx = self.snapshot(&mut c).await?;
        let Some(order_id) = storage::parts::order_of(&mut tx, id).await? else {
            return Err(EngineError::NotFound(id));
        };
        let own = audit::list(&mut tx, id).await?;
        let mut trail: Vec<TrailEntry> = own
            .into_iter()
            .map(|entry| TrailEntry { part: None, entry })
            .collect();
        if self.role == Role::Store && order_id == id {
            let parts = storage::parts::of_orders(&mut tx, &[id]).await?;
            for p in parts.get(&id).into_iter().flatten().filter(|p| p.id != id) {
                let label = TrailPart {
                    part: p.part,
                    warehouse: p.warehouse.clone().unwrap_or_default(),
                };
                trail.extend(audit::list(&mut tx, p.id).await?.into_iter().map(|entry| {
                    TrailEntry {
                        part: Some(label.clone()),
                        entry,
                    }
                }));
            }
            // Stable: the entries of one write keep their order.
            trail.sort_by_key(|t| t.entry.at);
        }
        tx.commit().await?;
        Ok(trail)
    }

    pub async fn attempts(&self, id: OrderId, limit: i64) -> Result<Vec<outbox::Attempt>> {
        let mut c = self.read().await?;
        Ok(outbox::attempts(&mut c, id, limit).await?)
    }

    /// The outbox towards every peer, summed.
    pub async fn outbox_status(&self) -> Result<outbox::OutboxStatus> {
        let mut c = self.read().await?;
        Ok(outbox::status(&mut c, None).await?)
    }

    /// The outbox towards one peer (a warehouse, at the store).
    pub async fn outbox_status_of(&self, peer: &str) -> Result<outbox::OutboxStatus> {
        let mut c = self.read().await?;
        Ok(outbox::status(&mut c, Some(peer)).await?)
    }

    /// The outbox towards each peer, by name. A peer without rows is
    /// missing: nothing waits for it, and nothing was delivered to it
    /// within the retention of delivered rows.
    pub async fn outbox_status_by_peer(
        &self,
    ) -> Result<std::collections::HashMap<String, outbox::OutboxStatus>> {
        let mut c = self.read().await?;
        Ok(outbox::status_by_peer(&mut c).await?)
    }

    /// Changes waiting to reach `peer` (or any peer: `None`), failing
    /// ones first, then the longest waiting; at most `limit`.
    pub async fn waiting(&self, peer: Option<&str>, limit: i64) -> Result<Vec<outbox::Queued>> {
        let mut c = self.read().await?;
        Ok(outbox::queued(&mut c, "pending", peer, limit).await?)
    }

    /// How many changes towards `peer` (or any peer) are failing.
    pub async fn failing_count(&self, peer: Option<&str>) -> Result<i64> {
        let mut c = self.read().await?;
        Ok(outbox::failing_count(&mut c, peer).await?)
    }

    /// Dead letters towards `peer` (or any peer), the change queued
    /// longest ago first; at most `limit`.
    pub async fn dead_letters(
        &self,
        peer: Option<&str>,
        limit: i64,
    ) -> Result<Vec<outbox::Queued>> {
        let mut c = self.read().await?;
        Ok(outbox::queued(&mut c, "dead", peer, limit).await?)
    }

    /// The sync history from `since` (microseconds) on, per minute, of
    /// `peer` or of every peer summed.
    pub async fn sync_history(
        &self,
        peer: Option<&str>,
        since: i64,
    ) -> Result<Vec<storage::history::Minute>> {
        let mut c = self.read().await?;
        Ok(storage::history::minutes(&mut c, peer, since).await?)
    }

    /// The last reconciliation pass recorded in this database.
    pub async fn last_reconcile(&self) -> Result<Option<storage::digests::Run>> {
        let mut c = self.read().await?;
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
        self.replay_dead_letters_to(None, which, dry_run).await
    }

    /// [`Engine::replay_dead_letters`] of the dead letters to one peer (a
    /// warehouse, at the store), or to every peer (`None`).
    pub async fn replay_dead_letters_to(
        &self,
        to: Option<String>,
        which: outbox::ReplaySelection,
        dry_run: bool,
    ) -> Result<u64> {
        let peer = self.peer();
        let n = self
            .db
            .write(move |c| {
                Box::pin(async move {
                    let n = outbox::replay(c, to.as_deref(), &which, dry_run, now_micros()).await?;
                    if n > 0 && !dry_run {
                        // The relays of other processes (the service, when
                        // the CLI replays; other replicas) wake at commit,
                        // with no step after it: the CLI exits right away.
                        outbox::notify_in_transaction(c, peer).await?;
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

    /// Deletes every record past its retention (delivered outbox rows, old
    /// attempts, idempotency keys, webhook ids, reconciliation runs), a
    /// batch at a time. Returns how many rows went.
    pub async fn prune(&self, retention: &Retention) -> Result<u64> {
        Ok(storage::prune::prune(&self.db, retention).await?)
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
}

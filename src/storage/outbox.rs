//! The transactional outbox and each order's sync state towards a peer.
//!
//! A change and its outbox row are written in one transaction
//! ([`enqueue`]). There is at most one row per (peer, order): re-enqueueing
//! an order that is still undelivered only raises the version, so a hot
//! order costs one delivery, not one per edit. The row keeps its retry
//! schedule when bumped, so edits to an order the peer keeps refusing do not
//! turn into a hammering loop.
//!
//! Rows are claimed with a lease: a relay that dies mid-batch leaves rows
//! that become claimable again once the lease expires. On PostgreSQL claims
//! use `FOR UPDATE SKIP LOCKED`, so several relays share the work.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use tokio::sync::{mpsc, watch};

use sqlx::{AnyConnection, AnyPool};

use super::bulk::{self, Script, Val};
use super::{Db, Dialect, Result, Sql, StorageError};
use crate::domain::OrderId;
use crate::domain::delivery::{SyncInfo, SyncState};

/// An outbox row's sync state, as the domain names it: `pending` before
/// the first attempt, `failing` after one, `delivered` rows are synced.
fn sync_state(state: &str, attempts: i64) -> SyncState {
    match (state, attempts) {
        ("dead", _) => SyncState::Dead,
        ("pending", 0) => SyncState::Pending,
        ("pending", _) => SyncState::Failing,
        _ => SyncState::Synced,
    }
}

/// Records that `version` of order `id` must reach `peer`. Call inside the
/// transaction that made the change.
pub async fn enqueue(
    c: &mut AnyConnection,
    peer: &str,
    id: OrderId,
    version: i64,
    now: i64,
) -> Result<()> {
    enqueue_many(c, peer, &[(id, version)], now).await
}

/// [`enqueue`] for many orders at once (one statement). An order
/// listed twice is enqueued once, with its highest version.
pub async fn enqueue_many(
    c: &mut AnyConnection,
    peer: &str,
    list: &[(OrderId, i64)],
    now: i64,
) -> Result<()> {
    if list.is_empty() {
        return Ok(());
    }
    let mut s = Script::new(c);
    plan_enqueue(&mut s, peer, list, now);
    s.run(c).await?;
    notify(c, peer).await
}

/// Plans [`enqueue_many`], except the wake-up of other processes
/// ([`notify`], which the caller sends after the script).
pub fn plan_enqueue(s: &mut Script, peer: &str, list: &[(OrderId, i64)], now: i64) {
    // One statement must not upsert a row twice (PostgreSQL refuses).
    let mut newest: HashMap<OrderId, i64> = HashMap::with_capacity(list.len());
    for &(id, v) in list {
        let e = newest.entry(id).or_insert(v);
        *e = (*e).max(v);
    }
    let keys: Vec<(String, i64)> = list
        .iter()
        .filter_map(|(id, _)| newest.remove(id).map(|v| (id.to_string(), v)))
        .collect();
    let mut rows: Vec<Val> = Vec::with_capacity(keys.len() * 2);
    for (key, v) in &keys {
        rows.extend([Val::from(key.as_str()), (*v).into()]);
    }
    s.rows(
        &ENQUEUE,
        &[Val::from(peer), Val::Int(now), Val::Int(now)],
        2,
        &rows,
    );
}

/// [`plan_enqueue`]'s statement: arguments `peer`, `enqueued_at`,
/// `next_attempt_at`, then the rows `[order_id, version]`.
const ENQUEUE: Sql = Sql {
    sqlite: "INSERT INTO outbox (peer, order_id, version, state, attempts, enqueued_at, next_attempt_at, lease_until) \
             SELECT ?, value ->> 0, value ->> 1, 'pending', 0, ?, ?, 0 FROM json_each(?) WHERE true \
             ON CONFLICT (peer, order_id) DO UPDATE SET \
               version = CASE WHEN excluded.version > outbox.version THEN excluded.version ELSE outbox.version END, \
               attempts = CASE WHEN outbox.state = 'pending' THEN outbox.attempts ELSE 0 END, \
               enqueued_at = CASE WHEN outbox.state = 'pending' THEN outbox.enqueued_at ELSE excluded.enqueued_at END, \
               next_attempt_at = CASE WHEN outbox.state = 'pending' THEN outbox.next_attempt_at ELSE excluded.next_attempt_at END, \
               last_error = CASE WHEN outbox.state = 'pending' THEN outbox.last_error ELSE NULL END, \
               state = 'pending'",
    postgres: "INSERT INTO outbox (peer, order_id, version, state, attempts, enqueued_at, next_attempt_at, lease_until) \
               SELECT $1, value ->> 0, (value ->> 1)::bigint, 'pending', 0, $2, $3, 0 \
               FROM jsonb_array_elements($4::jsonb) AS e(value) \
               ON CONFLICT (peer, order_id) DO UPDATE SET \
                 version = CASE WHEN excluded.version > outbox.version THEN excluded.version ELSE outbox.version END, \
                 attempts = CASE WHEN outbox.state = 'pending' THEN outbox.attempts ELSE 0 END, \
                 enqueued_at = CASE WHEN outbox.state = 'pending' THEN outbox.enqueued_at ELSE excluded.enqueued_at END, \
                 next_attempt_at = CASE WHEN outbox.state = 'pending' THEN outbox.next_attempt_at ELSE excluded.next_attempt_at END, \
                 last_error = CASE WHEN outbox.state = 'pending' THEN outbox.last_error ELSE NULL END, \
                 state = 'pending'",
};

/// Wakes the relays of other processes on this database once the
/// transaction commits (PostgreSQL `NOTIFY`; nothing to do on SQLite, whose
/// one process wakes its relay in memory).
///
/// Inside [`Db::write`] the wake-up is sent after the commit, by the
/// database's [`Notifier`]: a `NOTIFY` in the transaction makes PostgreSQL
/// take one cluster-wide lock at commit and hold it until the commit is on
/// disk, so every notifying transaction (every create, every pick) waited
/// for the one before it to flush, one fsync each instead of one shared
/// by all that commit together. Elsewhere (a bare transaction) it is sent
/// in the transaction, as PostgreSQL delivers it at commit.
///
/// A wake-up lost to a crash between the commit and the notification is
/// covered by the other processes' relays, which poll at least every
/// `idle_poll` (5 s); this process's own relay is woken in memory.
pub async fn notify(c: &mut AnyConnection, peer: &str) -> Result<()> {
    if Dialect::of(c) == Dialect::Postgres {
        let bit = channel_bit(notify_channel(peer));
        if AFTER_COMMIT.try_with(|b| b.set(b.get() | bit)).is_err() {
            notify_in_transaction(c, peer).await?;
        }
    }
    Ok(())
}

/// [`notify`] inside the transaction, delivered by PostgreSQL at its
/// commit, with no step after it: for a process that may exit as soon as
/// its write has committed (the CLI's replay of dead letters, which must
/// wake the running service). Rare writes only: see [`notify`] for what
/// it costs a busy database.
pub async fn notify_in_transaction(c: &mut AnyConnection, peer: &str) -> Result<()> {
    if Dialect::of(c) == Dialect::Postgres {
        // Several in one transaction are folded into one by PostgreSQL.
        sqlx::query("SELECT 1 FROM (SELECT pg_notify($1, '')) AS n")
            .bind(notify_channel(peer))
            .execute(&mut *c)
            .await?;
    }
    Ok(())
}

/// The channels of [`notify_channel`], one bit each, for [`AFTER_COMMIT`].
const CHANNELS: [&str; 2] = ["fulfillment_outbox_store", "fulfillment_outbox_warehouse"];

fn channel_bit(channel: &str) -> u8 {
    if channel == CHANNELS[0] { 1 } else { 2 }
}

tokio::task_local! {
    /// The channels (bits of [`CHANNELS`]) the PostgreSQL write running in
    /// this task asked to notify once it commits; set only inside
    /// [`after_commit`].
    static AFTER_COMMIT: std::cell::Cell<u8>;
}

/// Runs a PostgreSQL write transaction (`write`, which commits or rolls
/// back) and returns, with its result, the channels its [`notify`] calls
/// deferred: [`Notifier::send`] them if it committed.
pub(crate) async fn after_commit<T>(write: impl Future<Output = T>) -> (T, u8) {
    AFTER_COMMIT
        .scope(std::cell::Cell::new(0), async {
            let out = write.await;
            (out, AFTER_COMMIT.with(std::cell::Cell::get))
        })
        .await
}

/// Sends the notifications of committed PostgreSQL writes, from a task of
/// its own, so that a write is answered without waiting for it. Under load
/// the wake-ups of many commits fold into one: a request that arrives while
/// one is being sent is served by the next, which starts after it (so
/// after its commit), and none is sent for nothing.
#[derive(Debug)]
pub(crate) struct Notifier {
    pending: AtomicU8,
    kick: mpsc::Sender<()>,
}

impl Notifier {
    /// Starts the task; it ends when the last handle is dropped.
    pub(crate) fn start(pool: AnyPool) -> Arc<Notifier> {
        let (kick, mut kicked) = mpsc::channel(1);
        let notifier = Arc::new(Notifier {
            pending: AtomicU8::new(0),
            kick,
        });
        let weak = Arc::downgrade(&notifier);
        tokio::spawn(async move {
            // A failure is logged at most once a minute (a database that
            // is down fails every write; their own errors say so).
            let mut logged: Option<std::time::Instant> = None;
            while kicked.recv().await.is_some() {
                let Some(n) = weak.upgrade() else { return };
                let bits = n.pending.swap(0, Ordering::AcqRel);
                drop(n);
                if bits == 0 {
                    continue;
                }
                let channels: Vec<&str> = CHANNELS
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| bits & (1 << i) != 0)
                    .map(|(_, c)| *c)
                    .collect();
                if let Err(e) = send(&pool, &channels).await
                    && logged.is_none_or(|t| t.elapsed() >= Duration::from_secs(60))
                {
                    logged = Some(std::time::Instant::now());
                    // The relays' poll covers a lost wake-up.
                    tracing::warn!(error = %e, "cannot notify other processes of outbox commits; their relays poll instead");
                }
            }
        });
        notifier
    }

    /// Asks for `bits` (of [`CHANNELS`]) to be notified, after the commit
    /// that asked has happened.
    pub(crate) fn send(&self, bits: u8) {
        if bits == 0 {
            return;
        }
        self.pending.fetch_or(bits, Ordering::AcqRel);
        // Full: a kick is waiting, and the task reads `pending` after it.
        let _ = self.kick.try_send(());
    }
}

/// One transaction of its own that only notifies. Without durability
/// (`synchronous_commit` off for it alone): it wrote nothing, and a
/// notification has no use after a crash anyway; so it holds PostgreSQL's
/// notify lock for no fsync.
async fn send(pool: &AnyPool, channels: &[&str]) -> Result<()> {
    let list = serde_json::to_string(channels).map_err(|e| StorageError::Corrupt(e.to_string()))?;
    sqlx::query(
        "SELECT set_config('synchronous_commit', 'off', true), pg_notify(ch, '') \
         FROM jsonb_array_elements_text($1::jsonb) AS ch",
    )
    .bind(list)
    .execute(pool)
    .await?;
    Ok(())
}

/// The LISTEN/NOTIFY channel that wakes relays delivering to `peer`: one
/// per direction, since a database has one side's outbox. A warehouse's
/// only peer is the store; every other peer is a warehouse of the store's.
pub fn notify_channel(peer: &str) -> &'static str {
    if peer == "store" {
        CHANNELS[0]
    } else {
        CHANNELS[1]
    }
}

#[derive(sqlx::FromRow)]
struct InfoRow {
    order_id: String,
    state: String,
    attempts: i64,
    last_error: Option<String>,
}

/// Sync state of the given orders, towards whichever peer each goes to; an
/// order with no row is synced (its row was delivered and pruned, or it
/// never had to travel).
pub async fn sync_info(
    c: &mut AnyConnection,
    ids: &[OrderId],
) -> Result<HashMap<OrderId, SyncInfo>> {
    let mut out = HashMap::new();
    if ids.is_empty() {
        return Ok(out);
    }
    let keys: Vec<String> = ids.iter().map(OrderId::to_string).collect();
    // Planned for its keys each time (see `bulk::fetch_each`): as a
    // prepared statement its generic plan, made while the outbox was
    // nearly empty, scanned the whole outbox for every batch of picks
    // (auto_explain on the updates bench: 1.2 ms a call at 20,000 rows).
    let statements = [(&SYNC_INFO, vec![bulk::Arg::Text(Some(bulk::keys(&keys)))])];
    let rows = bulk::fetch_each(c, &statements)
        .await?
        .into_iter()
        .next()
        .unwrap_or_default();
    for row in &rows {
        let r = <InfoRow as sqlx::FromRow<'_, sqlx::any::AnyRow>>::from_row(row)?;
        if let Some(id) = OrderId::parse(&r.order_id) {
            let state = sync_state(&r.state, r.attempts);
            let last_error = if state == SyncState::Synced {
                None
            } else {
                r.last_error
            };
            out.insert(id, SyncInfo { state, last_error });
        }
    }
    Ok(out)
}

pub(super) const SYNC_INFO: Sql = Sql {
    sqlite: "SELECT order_id, state, attempts, last_error FROM outbox \
             WHERE order_id IN (SELECT value FROM json_each($1))",
    // (`= ANY(ARRAY(...))`: as an IN, a hash join over the whole outbox.)
    postgres: "SELECT order_id, state, attempts, last_error FROM outbox \
               WHERE order_id = ANY(ARRAY(SELECT jsonb_array_elements_text($1::jsonb)))",
};

/// Vacuums the outbox, orders and seen webhook ids and refreshes the
/// planner's statistics of the other tables sync writes (PostgreSQL;
/// outside any transaction; nothing on SQLite, which has no dead rows to
/// collect).
pub async fn tidy(db: &Db) -> Result<()> {
    if db.dialect() == Dialect::Postgres {
        // One statement per call: several in one string would run as one
        // transaction block, where VACUUM is refused.
        for sql in [
            "VACUUM (ANALYZE) outbox",
            "VACUUM (ANALYZE) orders",
            "ANALYZE order_lines",
            "ANALYZE shipments",
            "ANALYZE sync_attempts",
            "ANALYZE audit_log",
            "VACUUM (ANALYZE) seen_webhooks",
        ] {
            sqlx::query(sql).execute(&db.write).await?;
        }
    }
    Ok(())
}

/// A row a relay has leased for delivery.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Claimed {
    pub order_id: String,
    pub version: i64,
    pub attempts: i64,
    pub enqueued_at: i64,
}

/// The rows a claim at `$2` leases towards peer `$1`: pending, due and
/// not leased. One text for [`CLAIM`] and [`due_count`], which must agree:
/// a count of none sends the relay back to sleep.
macro_rules! due_rows {
    () => {
        "FROM outbox WHERE peer = $1 AND state = 'pending' \
         AND next_attempt_at <= $2 AND lease_until <= $2"
    };
}

/// Leases up to `limit` due rows until `lease_until`.
pub async fn claim(
    db: &Db,
    peer: &str,
    now: i64,
    lease_until: i64,
    limit: i64,
) -> Result<Vec<Claimed>> {
    let peer = peer.to_owned();
    db.write(move |c| Box::pin(async move { claim_in(c, &peer, now, lease_until, limit).await }))
        .await
}

/// [`claim`] inside the caller's transaction (the relay claims its next
/// round in the one that settles the last).
pub async fn claim_in(
    c: &mut AnyConnection,
    peer: &str,
    now: i64,
    lease_until: i64,
    limit: i64,
) -> Result<Vec<Claimed>> {
    Ok(sqlx::query_as::<_, Claimed>(CLAIM.on(c))
        .bind(peer)
        .bind(now)
        .bind(lease_until)
        .bind(limit)
        .fetch_all(&mut *c)
        .await?)
}

/// How many rows towards `peer` a claim at `now` would lease, counting
/// no further than `limit` (a read: it leases nothing).
pub async fn due_count(c: &mut AnyConnection, peer: &str, now: i64, limit: i64) -> Result<i64> {
    Ok(sqlx::query_scalar::<_, i64>(DUE_COUNT)
        .bind(peer)
        .bind(now)
        .bind(limit)
        .fetch_one(&mut *c)
        .await?)
}

/// [`due_count`]'s statement.
pub(super) const DUE_COUNT: &str = concat!(
    "SELECT COUNT(*) FROM (SELECT 1 ",
    due_rows!(),
    " LIMIT $3) AS due"
);

/// [`claim`]'s statement. On PostgreSQL the due rows are locked, skipping
/// rows another relay has locked, so several relays share an outbox; on
/// SQLite the one writer claims alone.
pub(super) const CLAIM: Sql = Sql {
    sqlite: concat!(
        "UPDATE outbox SET lease_until = $3 WHERE peer = $1 AND order_id IN (SELECT order_id ",
        due_rows!(),
        " ORDER BY next_attempt_at LIMIT $4) RETURNING order_id, version, attempts, enqueued_at"
    ),
    // `= ANY(ARRAY(...))`, not `IN (...)`: PostgreSQL planned the IN as a
    // hash join over a sequential scan of the whole outbox (delivered rows
    // kept for the retention period included: 3 ms of a claim's 8 at 40,000
    // rows); the array makes it look the claimed rows up by key.
    postgres: concat!(
        "UPDATE outbox SET lease_until = $3 WHERE peer = $1 AND order_id = ANY(ARRAY(SELECT order_id ",
        due_rows!(),
        " ORDER BY next_attempt_at LIMIT $4 FOR UPDATE SKIP LOCKED)) \
         RETURNING order_id, version, attempts, enqueued_at"
    ),
};

/// How one leased row ends this round.
#[derive(Debug, Clone)]
pub enum Settle {
    /// The peer holds `version` (applied now, or already had it).
    Delivered,
    /// The peer refused the data; retrying cannot help.
    Dead { reason: String },
    /// Try again at `next_attempt_at`.
    Retry { error: String, next_attempt_at: i64 },
    /// Not sent this round: not an attempt, the lease just ends.
    Unsent,
}

/// How one leased row ends this round, decided before it is written.
#[derive(Debug, Clone)]
pub struct Settled {
    pub order_id: String,
    /// The version of the snapshot actually sent; a row bumped to a newer
    /// version meanwhile stays pending.
    pub version: i64,
    pub how: Settle,
    /// The attempt's outcome for the timeline (`applied`, `rejected`, ...).
    pub outcome: &'static str,
    pub detail: Option<String>,
    pub next_retry: Option<i64>,
}

/// Ends the leases of a round's rows and appends each attempt to its
/// order's timeline. Deliveries (the common case) are settled together in
/// one statement; failures one by one.
pub async fn settle_many(
    c: &mut AnyConnection,
    peer: &str,
    list: &[Settled],
    now: i64,
) -> Result<()> {
    if list.is_empty() {
        return Ok(());
    }
    let mut delivered: Vec<Val> = Vec::new();
    // The rows this round made dead letters: their attempt is marked so.
    let mut went_dead: Vec<&str> = Vec::new();
    for s in list {
        match &s.how {
            Settle::Delivered => delivered.extend([
                Val::from(s.order_id.as_str()),
                s.version.into(),
                peer.into(),
            ]),
            Settle::Dead { reason } => {
                let dead = sqlx::query(
                    "UPDATE outbox SET state = 'dead', last_error = $4, attempts = attempts + 1 \
                     WHERE peer = $1 AND order_id = $2 AND version <= $3 AND state = 'pending'",
                )
                .bind(peer)
                .bind(s.order_id.as_str())
                .bind(s.version)
                .bind(reason.as_str())
                .execute(&mut *c)
                .await?
                .rows_affected();
                // (A row bumped to a newer version meanwhile stays pending.)
                if dead > 0 {
                    went_dead.push(s.order_id.as_str());
                }
            }
            Settle::Retry {
                error,
                next_attempt_at,
            } => {
                sqlx::query(
                    "UPDATE outbox SET attempts = attempts + 1, last_error = $3, next_attempt_at = $4 \
                     WHERE peer = $1 AND order_id = $2 AND state = 'pending'",
                )
                .bind(peer)
                .bind(s.order_id.as_str())
                .bind(error.as_str())
                .bind(*next_attempt_at)
                .execute(&mut *c)
                .await?;
            }
            Settle::Unsent => {}
        }
    }
    // Deliveries, leases and the timeline in one script.
    let mut s = Script::new(c);
    s.rows(&SETTLE_DELIVERED, &[Val::Int(now)], 3, &delivered);
    let ids: Vec<&str> = list.iter().map(|row| row.order_id.as_str()).collect();
    s.keys(&END_LEASES, &[Val::from(peer)], &ids);
    let mut attempts: Vec<Val> = Vec::with_capacity(list.len() * 5);
    for row in list.iter().filter(|r| !matches!(r.how, Settle::Unsent)) {
        let dead = went_dead.contains(&row.order_id.as_str());
        attempts.extend([
            Val::from(row.order_id.as_str()),
            row.outcome.into(),
            row.detail.as_deref().into(),
            row.next_retry.into(),
            Val::Int(i64::from(dead)),
        ]);
    }
    s.rows(
        &INSERT_ATTEMPTS,
        &[Val::from(peer), Val::Int(now)],
        5,
        &attempts,
    );
    s.run(c).await?;
    Ok(())
}

/// [`settle_many`]'s deliveries: argument `delivered_at`, then the rows
/// `[order_id, version, peer]`. A row bumped past the version sent stays
/// pending. `state || ''` keeps the planner off the (peer, state) index:
/// with it, SQLite walked every pending row once per delivered row (11 ms
/// a batch with a backlog), instead of looking each row up by its key.
/// On PostgreSQL the keys are also given as an array (`= ANY`): with only
/// the join, a planner whose statistics were taken while the outbox was
/// small (a fresh database, before autovacuum's next analyze) joined by
/// hashing a sequential scan of the whole outbox (auto_explain on the
/// updates bench: 3 ms a settle at 20,000 rows); the array is looked up
/// by key whatever the statistics say.
pub(super) const SETTLE_DELIVERED: Sql = Sql {
    sqlite: "UPDATE outbox SET state = 'delivered', attempts = 0, last_error = NULL, delivered_at = ?, \
             lease_until = 0 \
             FROM (SELECT value ->> 0 AS order_id, value ->> 1 AS version, value ->> 2 AS peer \
                   FROM json_each(?)) AS v \
             WHERE outbox.peer = v.peer AND outbox.order_id = v.order_id \
             AND outbox.version <= v.version AND (outbox.state || '') = 'pending'",
    postgres: "UPDATE outbox SET state = 'delivered', attempts = 0, last_error = NULL, delivered_at = $1, \
               lease_until = 0 \
               FROM (SELECT value ->> 0 AS order_id, (value ->> 1)::bigint AS version, value ->> 2 AS peer \
                     FROM jsonb_array_elements($2::jsonb) AS e(value)) AS v \
               WHERE outbox.peer = v.peer AND outbox.order_id = v.order_id \
               AND outbox.version <= v.version AND (outbox.state || '') = 'pending' \
               AND outbox.order_id = ANY(ARRAY(SELECT value ->> 0 FROM jsonb_array_elements($2::jsonb) AS e(value)))",
};

/// [`settle_many`]'s other leases (`peer`, then the round's order ids):
/// delivered rows were released by [`SETTLE_DELIVERED`], and this ends the
/// others' without writing those rows a second time.
pub(super) const END_LEASES: Sql = Sql {
    sqlite: "UPDATE outbox SET lease_until = 0 WHERE peer = ? AND lease_until <> 0 \
             AND order_id IN (SELECT value FROM json_each(?))",
    postgres: "UPDATE outbox SET lease_until = 0 WHERE peer = $1 AND lease_until <> 0 \
               AND order_id = ANY(ARRAY(SELECT jsonb_array_elements_text($2::jsonb)))",
};

/// [`settle_many`]'s timeline: arguments `peer`, `at`, then the rows
/// `[order_id, outcome, detail, next_retry_at, dead_letter]`.
const INSERT_ATTEMPTS: Sql = Sql {
    sqlite: "INSERT INTO sync_attempts (peer, at, order_id, outcome, detail, next_retry_at, dead_letter) \
             SELECT ?, ?, value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4 FROM json_each(?)",
    postgres: "INSERT INTO sync_attempts (peer, at, order_id, outcome, detail, next_retry_at, dead_letter) \
               SELECT $1, $2, value ->> 0, value ->> 1, value ->> 2, (value ->> 3)::bigint, \
               (value ->> 4)::bigint FROM jsonb_array_elements($3::jsonb) AS e(value)",
};

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Attempt {
    pub at: i64,
    pub outcome: String,
    pub detail: Option<String>,
    pub next_retry_at: Option<i64>,
    /// 1: this attempt made the row a dead letter (delivery stopped).
    pub dead_letter: i64,
}

/// The delivery timeline of one order, newest first.
pub async fn attempts(c: &mut AnyConnection, id: OrderId, limit: i64) -> Result<Vec<Attempt>> {
    Ok(sqlx::query_as::<_, Attempt>(
        "SELECT at, outcome, detail, next_retry_at, dead_letter FROM sync_attempts \
         WHERE order_id = $1 ORDER BY id DESC LIMIT $2",
    )
    .bind(id.to_string())
    .bind(limit)
    .fetch_all(&mut *c)
    .await?)
}

/// When the earliest pending row becomes due (microseconds), if any.
pub async fn next_due(c: &mut AnyConnection, peer: &str) -> Result<Option<i64>> {
    Ok(sqlx::query_scalar::<_, Option<i64>>(
        "SELECT MIN(CASE WHEN lease_until > next_attempt_at THEN lease_until ELSE next_attempt_at END) \
         FROM outbox WHERE peer = $1 AND state = 'pending'",
    )
    .bind(peer)
    .fetch_one(&mut *c)
    .await?)
}

/// Makes every pending row scheduled or leased beyond `latest` due `now`
/// (rows a clock that was ahead put out of reach). Returns how many.
pub async fn reschedule_beyond(db: &Db, peer: &str, latest: i64, now: i64) -> Result<u64> {
    let peer = peer.to_owned();
    db.write(move |c| {
        Box::pin(async move {
            Ok(sqlx::query(
                "UPDATE outbox SET next_attempt_at = $3, lease_until = 0 \
                 WHERE peer = $1 AND state = 'pending' AND (next_attempt_at > $2 OR lease_until > $2)",
            )
            .bind(peer)
            .bind(latest)
            .bind(now)
            .execute(&mut *c)
            .await?
            .rows_affected())
        })
    })
    .await
}

#[derive(Debug, Clone, Default, sqlx::FromRow)]
pub struct OutboxStatus {
    pub pending: i64,
    pub dead: i64,
    pub oldest_pending_at: Option<i64>,
    pub last_delivered_at: Option<i64>,
}

/// The outbox towards `peer`, or towards every peer summed (`None`).
pub async fn status(c: &mut AnyConnection, peer: Option<&str>) -> Result<OutboxStatus> {
    Ok(sqlx::query_as::<_, OutboxStatus>(STATUS.on(c))
        .bind(peer)
        .fetch_one(&mut *c)
        .await?)
}

const STATUS: Sql = Sql {
    sqlite: "SELECT COUNT(CASE WHEN state = 'pending' THEN 1 END) AS pending, \
                    COUNT(CASE WHEN state = 'dead' THEN 1 END) AS dead, \
                    MIN(CASE WHEN state = 'pending' THEN enqueued_at END) AS oldest_pending_at, \
                    MAX(delivered_at) AS last_delivered_at \
             FROM outbox WHERE ($1 IS NULL OR peer = $1)",
    postgres: "SELECT COUNT(CASE WHEN state = 'pending' THEN 1 END) AS pending, \
                      COUNT(CASE WHEN state = 'dead' THEN 1 END) AS dead, \
                      MIN(CASE WHEN state = 'pending' THEN enqueued_at END) AS oldest_pending_at, \
                      MAX(delivered_at) AS last_delivered_at \
               FROM outbox WHERE ($1::text IS NULL OR peer = $1)",
};

/// The outbox towards each peer that has rows, by peer: one pass over the
/// table for every warehouse's status at once.
pub async fn status_by_peer(c: &mut AnyConnection) -> Result<HashMap<String, OutboxStatus>> {
    let rows: Vec<PeerStatus> = sqlx::query_as(
        "SELECT peer, COUNT(CASE WHEN state = 'pending' THEN 1 END) AS pending, \
                COUNT(CASE WHEN state = 'dead' THEN 1 END) AS dead, \
                MIN(CASE WHEN state = 'pending' THEN enqueued_at END) AS oldest_pending_at, \
                MAX(delivered_at) AS last_delivered_at \
         FROM outbox GROUP BY peer",
    )
    .fetch_all(&mut *c)
    .await?;
    Ok(rows.into_iter().map(|r| (r.peer, r.status)).collect())
}

#[derive(sqlx::FromRow)]
struct PeerStatus {
    peer: String,
    #[sqlx(flatten)]
    status: OutboxStatus,
}

/// One outbox row as the admin sync page lists it, with its order.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Queued {
    pub peer: String,
    /// The row's order: a part's own id, at a store.
    pub order_id: String,
    /// The order it belongs to (a store order, for a later part), and its
    /// number and customer; `None` when the order is missing.
    pub parent_id: Option<String>,
    pub number: Option<String>,
    pub customer: Option<String>,
    pub attempts: i64,
    pub last_error: Option<String>,
    pub next_attempt_at: i64,
    pub enqueued_at: i64,
    pub lease_until: i64,
    /// The last attempt (for a dead letter: when it became one).
    pub last_attempt_at: Option<i64>,
}

/// Up to `limit` rows in `state` (`pending` or `dead`), towards `peer`
/// or every peer (`None`), most urgent first: failing rows before rows
/// not tried yet, then the change waiting longest.
pub async fn queued(
    c: &mut AnyConnection,
    state: &str,
    peer: Option<&str>,
    limit: i64,
) -> Result<Vec<Queued>> {
    Ok(sqlx::query_as::<_, Queued>(QUEUED.on(c))
        .bind(state)
        .bind(peer)
        .bind(limit)
        .fetch_all(&mut *c)
        .await?)
}

/// [`queued`]'s statement: `state`, `peer` (NULL: every peer), `limit`.
/// The rows are chosen first (by the (peer, state) index, sorting only
/// what is in that state), and only the chosen ones are joined to their
/// order and their last attempt (by the timeline's (order, id) index):
/// with the join and the lookup in the sorted query, both ran for every
/// row of a large backlog.
const QUEUED: Sql = Sql {
    sqlite: "SELECT q.peer, q.order_id, o.order_id AS parent_id, o.number, o.customer_name AS customer, \
                    q.attempts, q.last_error, q.next_attempt_at, q.enqueued_at, q.lease_until, \
                    (SELECT MAX(a.at) FROM sync_attempts a WHERE a.order_id = q.order_id AND a.peer = q.peer) \
                      AS last_attempt_at \
             FROM (SELECT peer, order_id, attempts, last_error, next_attempt_at, enqueued_at, lease_until \
                   FROM outbox WHERE state = $1 AND ($2 IS NULL OR peer = $2) \
                   ORDER BY CASE WHEN attempts > 0 THEN 0 ELSE 1 END, enqueued_at, order_id LIMIT $3) AS q \
             LEFT JOIN orders o ON o.id = q.order_id \
             ORDER BY CASE WHEN q.attempts > 0 THEN 0 ELSE 1 END, q.enqueued_at, q.order_id",
    postgres: "SELECT q.peer, q.order_id, o.order_id AS parent_id, o.number, o.customer_name AS customer, \
                      q.attempts, q.last_error, q.next_attempt_at, q.enqueued_at, q.lease_until, \
                      (SELECT MAX(a.at) FROM sync_attempts a WHERE a.order_id = q.order_id AND a.peer = q.peer) \
                        AS last_attempt_at \
               FROM (SELECT peer, order_id, attempts, last_error, next_attempt_at, enqueued_at, lease_until \
                     FROM outbox WHERE state = $1 AND ($2::text IS NULL OR peer = $2) \
                     ORDER BY CASE WHEN attempts > 0 THEN 0 ELSE 1 END, enqueued_at, order_id LIMIT $3) AS q \
               LEFT JOIN orders o ON o.id = q.order_id \
               ORDER BY CASE WHEN q.attempts > 0 THEN 0 ELSE 1 END, q.enqueued_at, q.order_id",
};

/// How many rows towards `peer` (or every peer) are failing: pending
/// and tried at least once.
pub async fn failing_count(c: &mut AnyConnection, peer: Option<&str>) -> Result<i64> {
    Ok(sqlx::query_scalar::<_, i64>(FAILING.on(c))
        .bind(peer)
        .fetch_one(&mut *c)
        .await?)
}

const FAILING: Sql = Sql {
    sqlite: "SELECT COUNT(*) FROM outbox WHERE state = 'pending' AND attempts > 0 \
             AND ($1 IS NULL OR peer = $1)",
    postgres: "SELECT COUNT(*) FROM outbox WHERE state = 'pending' AND attempts > 0 \
               AND ($1::text IS NULL OR peer = $1)",
};

/// Which dead letters to send again.
#[derive(Debug, Clone)]
pub enum ReplaySelection {
    Ids(Vec<OrderId>),
    All,
    /// Dead letters whose changes were first queued at or after this time.
    Since(i64),
}

/// Moves the selected dead letters back to pending (or, with `dry_run`,
/// only counts them). Returns how many.
pub async fn replay(
    c: &mut AnyConnection,
    peer: Option<&str>,
    which: &ReplaySelection,
    dry_run: bool,
    now: i64,
) -> Result<u64> {
    let (since, ids) = match which {
        ReplaySelection::All => (None, None),
        ReplaySelection::Since(t) => (Some(*t), None),
        ReplaySelection::Ids(ids) if ids.is_empty() => return Ok(0),
        ReplaySelection::Ids(ids) => {
            let keys: Vec<String> = ids.iter().map(OrderId::to_string).collect();
            (None, Some(bulk::keys(&keys)))
        }
    };
    if dry_run {
        let n = sqlx::query_scalar::<_, i64>(COUNT_DEAD.on(c))
            .bind(peer)
            .bind(since)
            .bind(ids)
            .fetch_one(&mut *c)
            .await?;
        return Ok(n.max(0) as u64);
    }
    Ok(sqlx::query(REPLAY.on(c))
        .bind(peer)
        .bind(since)
        .bind(ids)
        .bind(now)
        .execute(&mut *c)
        .await
        .map_err(StorageError::from)?
        .rows_affected())
}

// The selection is written as conditions that hold when their argument is
// NULL (`since`: queued at or after; the ids as JSON), so that each of
// [`replay`]'s statements is one text. Nothing is lost by it: the rows are
// found by `(peer, state)`, and the selection only filters the dead ones.

/// [`replay`]'s count (`dry_run`): `peer` (NULL: every peer), `since`, `ids`.
const COUNT_DEAD: Sql = Sql {
    sqlite: "SELECT COUNT(*) FROM outbox WHERE ($1 IS NULL OR peer = $1) AND state = 'dead' \
             AND ($2 IS NULL OR enqueued_at >= $2) \
             AND ($3 IS NULL OR order_id IN (SELECT value FROM json_each($3)))",
    postgres: "SELECT COUNT(*) FROM outbox WHERE ($1::text IS NULL OR peer = $1) AND state = 'dead' \
               AND ($2::bigint IS NULL OR enqueued_at >= $2) \
               AND ($3::jsonb IS NULL OR order_id IN (SELECT jsonb_array_elements_text($3::jsonb)))",
};

/// [`replay`]'s statement: `peer` (NULL: every peer), `since`, `ids`, `now`.
const REPLAY: Sql = Sql {
    sqlite: "UPDATE outbox SET state = 'pending', attempts = 0, last_error = NULL, lease_until = 0, \
             next_attempt_at = $4, enqueued_at = $4 WHERE ($1 IS NULL OR peer = $1) AND state = 'dead' \
             AND ($2 IS NULL OR enqueued_at >= $2) \
             AND ($3 IS NULL OR order_id IN (SELECT value FROM json_each($3)))",
    postgres: "UPDATE outbox SET state = 'pending', attempts = 0, last_error = NULL, lease_until = 0, \
               next_attempt_at = $4, enqueued_at = $4 WHERE ($1::text IS NULL OR peer = $1) \
               AND state = 'dead' AND ($2::bigint IS NULL OR enqueued_at >= $2) \
               AND ($3::jsonb IS NULL OR order_id IN (SELECT jsonb_array_elements_text($3::jsonb)))",
};

/// Frees every lease on rows for `peer` (a relay starting on a database only
/// it uses). Returns how many were held.
pub async fn release_leases(db: &Db, peer: &str) -> Result<u64> {
    let peer = peer.to_owned();
    db.write(move |c| {
        Box::pin(async move {
            Ok(
                sqlx::query(
                    "UPDATE outbox SET lease_until = 0 WHERE peer = $1 AND lease_until > 0",
                )
                .bind(peer)
                .execute(&mut *c)
                .await?
                .rows_affected(),
            )
        })
    })
    .await
}

/// Wakes `wake` when any process commits to this database's outbox
/// (PostgreSQL LISTEN/NOTIFY), so replicas and CLI replays do not wait for
/// the relay's poll. Reconnects after errors; the poll covers the gaps.
pub async fn listen(
    url: String,
    channel: &'static str,
    wake: impl Fn() + Send + 'static,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        match sqlx::postgres::PgListener::connect(&url).await {
            Ok(mut listener) => match listener.listen(channel).await {
                Ok(()) => loop {
                    tokio::select! {
                        n = listener.recv() => match n {
                            Ok(_) => wake(),
                            Err(e) => {
                                tracing::warn!(error = %e, "LISTEN connection lost; reconnecting");
                                break;
                            }
                        },
                        _ = shutdown.wait_for(|s| *s) => return,
                    }
                },
                Err(e) => tracing::warn!(error = %e, "cannot LISTEN for outbox commits"),
            },
            Err(e) => tracing::warn!(error = %e, "cannot open the LISTEN connection"),
        }
        // Something went wrong: the poll covers the gap; retry shortly.
        wake();
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = shutdown.wait_for(|s| *s) => return,
        }
    }
}

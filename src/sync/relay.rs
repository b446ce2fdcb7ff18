//! The relay: a background task that drains this side's outbox to the peer.
//!
//! It wakes at once when a commit enqueues something (in this process, or in
//! another one through PostgreSQL's LISTEN/NOTIFY), and otherwise sleeps
//! until the next row is due (at most `idle_poll`), so an idle service uses
//! no CPU. Each round leases a batch of due rows, reads the current snapshot
//! of each order, sends them in one signed request and settles every row
//! from the peer's per-item answer.
//!
//! Everyday load is a trickle, not a flood: at 500 orders/s a relay that
//! went at every wake-up sent about one order per round, and paid per order
//! a claim, a settle (two commits), a request and the peer's commit. So a
//! woken relay lingers (`--relay-linger`, 20 ms by default) before claiming
//! less than a full batch, and a small round claims the next one in the
//! transaction that settles it, after letting changes gather for the same
//! linger, but only when something was enqueued meanwhile (the wake-up
//! count says so without asking the database). A full batch never waits,
//! and under heavy load rounds go back to back as before.
//!
//! A failed request puts every row of the batch on its own backoff
//! schedule (or later, when the peer asks with `Retry-After`); rows past
//! the retry horizon, and items the peer rejects, become dead letters.
//!
//! No head-of-line blocking: items are applied one by one at the peer, and
//! when the peer answers a whole batch with an error (one item it cannot
//! digest, say), the batch is split in halves and retried at once, so a
//! poison order ends up failing alone while the rest goes through.
//!
//! Each round's counts (deliveries, failures, how long the delivered
//! changes waited) go to the per-minute sync history, written every few
//! seconds at most ([`super::history`]).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rand::SeedableRng;
use serde_json::value::{RawValue, to_raw_value};
use tokio::sync::{Notify, watch};

use super::backoff;
use super::breaker::{Breaker, Verdict};
use super::history::Recorder;
use super::peer::{PeerClient, PeerError};
use super::signature::Secrets;
use crate::domain::snapshot::{
    ContentSnapshot, FulfillmentSnapshot, ItemOutcome, ItemResult, SyncBatch, SyncBatchResult,
};
use crate::domain::{Order, OrderId, Role};
use crate::engine::delivery::{Claimed, NextClaim, Settle, Settled};
use crate::engine::{Engine, EngineError, Tally};
use crate::storage::now_micros;

/// Tunables of the relay (from the service's [`crate::config::ServiceConfig`]).
#[derive(Debug, Clone)]
pub struct RelayConfig {
    /// The peer's name: `store` at a warehouse, a warehouse's name at the
    /// store. It names the outbox rows this relay delivers.
    pub peer: String,
    /// Base URL of the peer service.
    pub peer_url: String,
    pub secrets: Secrets,
    /// Most orders per request.
    pub batch_size: i64,
    /// How long a claimed row is reserved for this relay.
    pub lease: Duration,
    /// Longest one request to the peer may take in all.
    pub request_timeout: Duration,
    /// Longest wait for the peer's answer to begin (status and headers).
    pub answer_timeout: Duration,
    /// Longest sleep when nothing is due (a safety net; commits wake the relay).
    pub idle_poll: Duration,
    /// How long to let changes gather before claiming less than a full
    /// batch (zero: claim at once).
    pub linger: Duration,
    /// After this long failing, a row becomes a dead letter.
    pub retry_horizon: Duration,
}

pub struct Relay {
    engine: Engine,
    cfg: RelayConfig,
    peer: PeerClient,
    breaker: Arc<Breaker>,
    /// Outbox rows settled since the table was last tidied (PostgreSQL).
    settled_since_tidy: AtomicU64,
}

/// On PostgreSQL, the relay tidies the tables sync rewrites
/// ([`outbox::tidy`]: vacuum the outbox and orders, fresh statistics for the
/// rest) after this many settled rows. Every delivery rewrites an outbox row
/// and usually an order; autovacuum looks at a database about once a minute
/// and waits for a fifth of a table to be dead, and until then claims and
/// loads walked ever more dead rows: propagation at 500 orders/s after a
/// busy minute was 70-80 ms at p50 and 160 ms at p99, and 4.3 / 15.5 ms with
/// this.
const TIDY_EVERY: u64 = 10_000;

/// A round of fewer orders than this (everyday load) lets changes gather
/// for the linger and leases the next round in its settle's transaction.
/// A larger one (heavy load) settles alone and the next round claims at
/// once, in a write of its own, as before the linger: under load that
/// claim rides in a group commit with the creates (no commit of its own
/// to save), and its wait for the writer lets the next round fill.
/// A linger also leases at most this many: a round it makes larger holds
/// the single SQLite writer longer while creates wait. Measured
/// alternately against the previous release: with the next round claimed
/// in the settle right away, heavy-load rounds came smaller and more often
/// (warehouse to store updates -16 %); lingering after every round, they
/// grew and create p99 at 8 clients rose by 2-4 ms.
const GATHER_BELOW: usize = 32;

/// Most requests one round may make while splitting a failing batch.
const MAX_REQUESTS_PER_ROUND: u32 = 24;

/// Time kept back from a round's lease for writing down its outcome: a
/// round starts no request that could still be running this close to the
/// end of its lease.
const SETTLE_MARGIN: Duration = Duration::from_secs(2);

/// What a round did.
enum Round {
    /// Nothing was due.
    Idle,
    /// A batch was sent (whatever the answer): what it delivered and what
    /// failed, and the next round when its settle leased it (empty: nothing
    /// new was due, wait for a wake-up). `None`: claim the next round at once.
    Worked(Tally, Option<Lease>),
    /// The breaker is open; wait this long.
    Paused(Duration),
}

/// Rows leased for one round.
struct Lease {
    rows: Vec<Claimed>,
    /// When they were leased: the round's requests end before the lease.
    at: Instant,
    /// The wake-up count just before they were leased: when it has not
    /// moved by the end of the round, nothing new was enqueued since.
    wakes: u64,
}

impl Lease {
    fn empty() -> Lease {
        Lease {
            rows: Vec::new(),
            at: Instant::now(),
            wakes: 0,
        }
    }
}

/// What to do after a wait.
#[derive(Clone, Copy)]
enum After {
    /// A round at once (the breaker's pause, or an error, is over).
    Round,
    /// Look whether anything is due first, and let more gather.
    Gather,
}

impl Relay {
    pub fn new(
        engine: Engine,
        cfg: RelayConfig,
        breaker: Arc<Breaker>,
    ) -> Result<Self, reqwest::Error> {
        let peer = PeerClient::new(
            &cfg.peer_url,
            cfg.secrets.clone(),
            cfg.request_timeout,
            cfg.answer_timeout,
        )?;
        Ok(Self {
            engine,
            cfg,
            peer,
            breaker,
            settled_since_tidy: AtomicU64::new(0),
        })
    }

    /// Runs until `shutdown` turns true. A batch in flight is finished first.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let wake: Arc<Notify> = self.engine.wake_handle();
        let mut rng = rand::rngs::StdRng::from_entropy();
        let peer = self.cfg.peer.as_str();
        // Leases found at start on a database only this process uses belong
        // to a relay of this service that died (SIGKILL, power loss): free
        // them now instead of waiting for them to expire.
        match self.engine.release_stale_leases(peer).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(rows = n, "released leases left by a previous run"),
            Err(e) => {
                tracing::warn!(error = %e, "cannot release old leases; they expire on their own")
            }
        }
        tracing::info!(peer, url = %self.cfg.peer_url, "relay started");
        let mut history = Recorder::new();
        // The next round, when the last settle leased it.
        let mut next: Option<Lease> = None;
        // A wait before the next round, and what follows it.
        let mut wait: Option<(Duration, After)> = None;
        loop {
            if let Some((d, after)) = wait.take() {
                tokio::select! {
                    _ = wake.notified() => {}
                    _ = tokio::time::sleep(d) => {}
                    _ = shutdown.changed() => {}
                }
                if *shutdown.borrow() {
                    break;
                }
                if matches!(after, After::Gather) && !self.gather(&mut shutdown).await {
                    // Nothing due for this relay (the wake-up was for
                    // another peer's rows, or another replica took them).
                    wait = Some((self.quiet(&mut history).await, After::Gather));
                    continue;
                }
            }
            if *shutdown.borrow() {
                break;
            }
            match self.round(&mut rng, next.take(), &mut shutdown).await {
                Ok(Round::Worked(tally, leased)) => {
                    history.add(now_micros(), &tally);
                    self.write_history(&mut history, false).await;
                    match leased {
                        Some(lease) if lease.rows.is_empty() => {
                            wait = Some((self.quiet(&mut history).await, After::Gather));
                        }
                        leased => next = leased,
                    }
                }
                Ok(Round::Paused(d)) => {
                    self.write_history(&mut history, true).await;
                    wait = Some((d, After::Round));
                }
                Ok(Round::Idle) => {
                    wait = Some((self.quiet(&mut history).await, After::Gather));
                }
                Err(e) => {
                    tracing::error!(error = %e, "relay round failed; retrying in 1 s");
                    wait = Some((Duration::from_secs(1), After::Round));
                }
            }
        }
        // Rows leased for a round that will not run go back at once, rather
        // than when their lease runs out (other replicas may take them).
        if let Some(lease) = next.filter(|l| !l.rows.is_empty()) {
            self.release(lease).await;
        }
        // What the last rounds counted is written before stopping.
        history.add(now_micros(), &Tally::default());
        self.write_history(&mut history, true).await;
        tracing::info!(peer, "relay stopped");
    }

    /// With nothing to do: writes the history that is due, and says how
    /// long to sleep.
    async fn quiet(&self, history: &mut Recorder) -> Duration {
        self.write_history(history, true).await;
        let wait = self.idle_wait().await;
        // Counts not written yet (a write was made less than a moment
        // ago) are written once that moment has passed.
        match history.write_at() {
            Some(at) => wait.min(Duration::from_micros((at - now_micros()).max(1_000) as u64)),
            None => wait,
        }
    }

    /// After a wake-up: false when nothing is due for this relay. Else,
    /// unless a full batch is due already, lets more changes gather for
    /// the linger (fewer, fuller requests and commits), then true.
    async fn gather(&self, shutdown: &mut watch::Receiver<bool>) -> bool {
        let limit = self.cfg.batch_size;
        match self
            .engine
            .due_count(&self.cfg.peer, now_micros(), limit)
            .await
        {
            Ok(0) => return false,
            Ok(n) if n >= limit => return true,
            Ok(_) => {}
            // The round will meet (and report) the same trouble.
            Err(_) => return true,
        }
        if !self.cfg.linger.is_zero() {
            tokio::select! {
                _ = tokio::time::sleep(self.cfg.linger) => {}
                _ = shutdown.changed() => {}
            }
        }
        true
    }

    /// When a lease taken at `now` ends (microseconds).
    fn lease_until(&self, now: i64) -> i64 {
        now + self.cfg.lease.as_micros() as i64
    }

    /// Ends the leases of rows that will not be sent (the relay stops).
    async fn release(&self, lease: Lease) {
        let unsent = lease
            .rows
            .into_iter()
            .map(|row| Settled {
                order_id: row.order_id,
                version: row.version,
                how: Settle::Unsent,
                outcome: "",
                detail: None,
                next_retry: None,
            })
            .collect();
        let peer = self.cfg.peer.as_str();
        if let Err(error) = self
            .engine
            .settle_deliveries(peer, Vec::new(), unsent, now_micros(), None)
            .await
        {
            tracing::warn!(peer, %error, "cannot end the leases of the next round; they expire on their own");
        }
    }

    /// Writes the history that is due ([`Recorder::due`]); `quiet` when
    /// the relay has nothing to do right now. A failed write is logged
    /// quietly (the database being down is reported by the rounds) and
    /// its counts are tried again with the next write.
    async fn write_history(&self, history: &mut Recorder, quiet: bool) {
        let now = now_micros();
        for flush in history.due(now, quiet) {
            match self
                .engine
                .record_history(&self.cfg.peer, flush.minute_at, flush.tally)
                .await
            {
                Ok(()) => history.written(&flush, now),
                Err(error) => {
                    tracing::debug!(peer = self.cfg.peer, %error, "cannot write the sync history");
                    break;
                }
            }
        }
    }

    /// How long to sleep when nothing is due: until the next row is, capped.
    ///
    /// A row is never due later than the backoff cap (plus a lease) from
    /// now. One that is was scheduled by a clock that was ahead and has
    /// since been set back; it would wait out the difference (ten minutes
    /// for a clock ten minutes fast), so it is made due now instead.
    async fn idle_wait(&self) -> Duration {
        let peer = self.cfg.peer.as_str();
        let next = self.engine.next_due(peer).await.ok().flatten();
        let now = now_micros();
        let latest = now + (backoff::CAP + self.cfg.lease).as_micros() as i64;
        match next {
            Some(t) if t > latest => {
                match self.engine.reschedule_beyond(peer, latest, now).await {
                    Ok(n) => tracing::warn!(
                        peer,
                        rows = n,
                        "rows were scheduled further out than the backoff cap (was this clock ahead?); retrying them now"
                    ),
                    Err(error) => {
                        tracing::warn!(peer, %error, "cannot reschedule rows set too far ahead")
                    }
                }
                Duration::from_millis(1)
            }
            Some(t) => Duration::from_micros((t - now).max(1_000) as u64).min(self.cfg.idle_poll),
            None => self.cfg.idle_poll,
        }
    }

    /// The snapshot this side sends for an order (of the fields it owns),
    /// with the version of its counter.
    fn snapshot(&self, o: &Order) -> Option<(Box<RawValue>, i64)> {
        let role = self.engine.role();
        let version = o.versions().of(role.counter());
        let raw = match role {
            Role::Store => to_raw_value(
                &ContentSnapshot::from_domain(o.id, &o.number, version, &o.content, o.created_at)
                    .of_part(o.order_id, o.part)
                    .withdrawn(o.withdrawn),
            ),
            Role::Warehouse => to_raw_value(&FulfillmentSnapshot::from_domain(
                o.id,
                version,
                o.fulfillment.as_ref()?,
            )),
        };
        raw.ok().map(|v| (v, version))
    }

    /// One round: the rows `leased` by the last settle, or claimed now.
    async fn round(
        &self,
        rng: &mut impl rand::Rng,
        leased: Option<Lease>,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Result<Round, EngineError> {
        let peer = self.cfg.peer.as_str();
        // (Rows already leased go through the round even when the breaker
        // has opened since: they are not sent, and their leases end.)
        let lease = match leased {
            Some(lease) => lease,
            None => {
                if let Err(wait) = self.breaker.ready() {
                    return Ok(Round::Paused(wait));
                }
                let (at, wakes, now) = (Instant::now(), self.engine.wake_count(), now_micros());
                let rows = self
                    .engine
                    .claim_deliveries(peer, now, self.lease_until(now), self.cfg.batch_size)
                    .await?;
                Lease { rows, at, wakes }
            }
        };
        if lease.rows.is_empty() {
            return Ok(Round::Idle);
        }
        // Every request of the round ends before the lease does, so no
        // other relay takes over rows this one is still sending.
        let deadline = lease.at + self.cfg.lease.saturating_sub(SETTLE_MARGIN);
        let claimed = lease.rows;

        // The snapshot of each order as it is now: the newest version wins.
        let ids: Vec<OrderId> = claimed
            .iter()
            .filter_map(|c| OrderId::parse(&c.order_id))
            .collect();
        let loaded = self.engine.load_for_sending(&ids).await?;
        let mut sent: Vec<(&Claimed, i64)> = Vec::with_capacity(claimed.len());
        let mut missing: Vec<&Claimed> = Vec::new();
        let mut changes = Vec::with_capacity(claimed.len());
        // By id: a batch is up to 1000 rows, so no quadratic search.
        let by_id: std::collections::HashMap<OrderId, &Order> =
            loaded.iter().map(|o| (o.id, o)).collect();
        for row in &claimed {
            let found = OrderId::parse(&row.order_id).and_then(|id| by_id.get(&id).copied());
            match found.and_then(|o| self.snapshot(o)) {
                Some((v, version)) => {
                    changes.push(v);
                    sent.push((row, version));
                }
                None => missing.push(row),
            }
        }

        let answers = if changes.is_empty() {
            vec![]
        } else {
            self.send_isolating(&changes, deadline).await
        };
        let now = now_micros();
        // Decide every row's fate first, then write them all in one go.
        let mut settled: Vec<Settled> = Vec::with_capacity(claimed.len());
        for row in missing {
            settled.push(Settled {
                order_id: row.order_id.clone(),
                version: row.version,
                how: Settle::Dead {
                    reason: "the order is missing or its stored data is invalid in this database; fix it, then replay".into(),
                },
                outcome: "error",
                detail: Some("order missing or invalid locally".into()),
                next_retry: None,
            });
        }
        let horizon = self.cfg.retry_horizon.as_micros() as i64;
        let (mut delivered, mut failed) = (0u64, 0u64);
        let mut tally = Tally::default();
        // The warehouse's fulfillment of the orders it answered for (the
        // first state of a new order above all), applied with the settling.
        let mut learned: Vec<FulfillmentSnapshot> = Vec::new();
        for ((row, version), answer) in sent.iter().zip(answers) {
            let (how, outcome, detail, next_retry) = match answer {
                // Not sent this round (the breaker opened, or the lease
                // ran short): not an attempt; the lease just ends.
                None => (Settle::Unsent, "", None, None),
                Some(Ok(mut result)) => {
                    // Only what is news: the order as loaded for this round
                    // already holds most (the apply is version-fenced anyway).
                    learned.extend(result.fulfillment.take().map(|f| *f).filter(|f| {
                        by_id
                            .get(&f.id)
                            .is_none_or(|o| o.warehouse_version < f.warehouse_version)
                    }));
                    match result.outcome {
                        ItemOutcome::Applied | ItemOutcome::Stale => {
                            delivered += 1;
                            tally.delivered_after(now - row.enqueued_at);
                            let latency = (now - row.enqueued_at).max(0) as f64 / 1e6;
                            self.engine.metrics().delivery_latency.record(latency);
                            (Settle::Delivered, result.outcome.as_str(), None, None)
                        }
                        ItemOutcome::Rejected => {
                            tally.failed += 1;
                            let reason = result
                                .reason
                                .unwrap_or_else(|| "rejected by the peer".into());
                            tracing::warn!(order_id = %row.order_id, %reason, "peer rejected a snapshot; it is now a dead letter");
                            (
                                Settle::Dead {
                                    reason: reason.clone(),
                                },
                                "rejected",
                                Some(reason),
                                None,
                            )
                        }
                    }
                }
                Some(Err(error)) => {
                    failed += 1;
                    tally.failed += 1;
                    let attempt = u32::try_from(row.attempts + 1).unwrap_or(u32::MAX);
                    let mut wait = backoff::delay(attempt, rng);
                    if let Some(asked) = error.retry_after() {
                        wait = wait.max(asked);
                    }
                    let next = now + wait.as_micros() as i64;
                    let message = error.to_string();
                    if now - row.enqueued_at > horizon {
                        let reason =
                            format!("gave up after the retry horizon; last error: {message}");
                        (Settle::Dead { reason }, "error", Some(message), None)
                    } else {
                        let how = Settle::Retry {
                            error: message.clone(),
                            next_attempt_at: next,
                        };
                        (how, "error", Some(message), Some(next))
                    }
                }
            };
            settled.push(Settled {
                order_id: row.order_id.clone(),
                version: *version,
                how,
                outcome,
                detail,
                next_retry,
            });
        }
        self.tidy_now_and_then(settled.len());
        // There may be rows for the next round after a full batch (more
        // behind it) or a wake-up since this round's claim. After a small
        // round, changes gather for the linger, counted from this round's
        // claim, and this settle leases them; after a large one, the next
        // round claims for itself at once ([`GATHER_BELOW`]).
        let full = claimed.len() as i64 >= self.cfg.batch_size;
        let small = claimed.len() < GATHER_BELOW && !full;
        let woken = self.engine.wake_count() != lease.wakes;
        let wanted = full || woken;
        // (With no linger, rounds go back to back as before it: claimed
        // at once in the settle, they came tiny and many.)
        let lingers = !self.cfg.linger.is_zero();
        let mut claim_next = small && woken && lingers && self.breaker.ready().is_ok();
        if claim_next {
            tokio::select! {
                _ = tokio::time::sleep_until((lease.at + self.cfg.linger).into()) => {}
                _ = shutdown.changed() => {}
            }
            claim_next = !*shutdown.borrow();
        }
        let (at, wakes, claim_now) = (Instant::now(), self.engine.wake_count(), now_micros());
        let next = claim_next.then(|| NextClaim {
            now: claim_now,
            lease_until: self.lease_until(claim_now),
            // More than this due means rounds fill by themselves.
            limit: self.cfg.batch_size.min(GATHER_BELOW as i64),
        });
        // What was learned, how each row ends and the next round's lease,
        // in one transaction.
        let (results, rows) = self
            .engine
            .settle_deliveries(peer, learned, settled, now, next)
            .await?;
        for r in results {
            if r.outcome == ItemOutcome::Rejected {
                tracing::warn!(peer, order_id = ?r.id, reason = ?r.reason,
                    "the peer answered with a fulfillment this side cannot take");
            }
        }
        let m = self.engine.metrics();
        m.delivered.increment(delivered);
        m.delivery_failures.increment(failed);
        let next = if claim_next {
            Some(Lease { rows, at, wakes })
        } else if wanted {
            // A large round, or the breaker is not ready, or the relay
            // stops: the next round claims for itself (or pauses).
            None
        } else {
            // Nothing was enqueued since the claim: nothing to look for
            // until the next wake-up (or a retry falls due).
            Some(Lease::empty())
        };
        Ok(Round::Worked(tally, next))
    }

    /// Counts settled rows and, every [`TIDY_EVERY`] of them on PostgreSQL,
    /// tidies the tables sync rewrites ([`outbox::tidy`]) in the background.
    fn tidy_now_and_then(&self, settled: usize) {
        if !self.engine.needs_tidying() {
            return;
        }
        let n = self
            .settled_since_tidy
            .fetch_add(settled as u64, Ordering::Relaxed)
            + settled as u64;
        if n < TIDY_EVERY {
            return;
        }
        self.settled_since_tidy.store(0, Ordering::Relaxed);
        let engine = self.engine.clone();
        tokio::spawn(async move {
            if let Err(error) = engine.tidy().await {
                tracing::warn!(%error, "could not vacuum or analyse the sync tables; autovacuum will in time");
            }
        });
    }

    /// Sends one signed batch and checks the answer has one result per item.
    async fn send(&self, changes: &[Box<RawValue>]) -> Result<Vec<ItemResult>, PeerError> {
        let n = changes.len();
        let batch = SyncBatch { changes };
        let parsed: SyncBatchResult = self.peer.post("/api/v1/sync/changes", &batch).await?;
        if parsed.results.len() != n {
            return Err(PeerError::BadAnswer(format!(
                "{} results for {n} items",
                parsed.results.len()
            )));
        }
        Ok(parsed.results)
    }

    /// Sends items, splitting the batch in halves when the peer answers it
    /// with an error about its content, so that one item the peer cannot
    /// take fails alone. Every request is one delivery for the breaker:
    /// none goes out while it is open (half-open lets one probe through),
    /// and none starts after `deadline`. Returns, per item, its result, the
    /// error of its smallest batch, or `None` when it was not sent.
    async fn send_isolating(
        &self,
        changes: &[Box<RawValue>],
        deadline: Instant,
    ) -> Vec<Option<Result<ItemResult, PeerError>>> {
        let mut out: Vec<Option<Result<ItemResult, PeerError>>> = vec![None; changes.len()];
        let mut todo: Vec<std::ops::Range<usize>> = Vec::with_capacity(8);
        todo.push(0..changes.len());
        // Isolating one poison item in a batch of n takes about 2·log2(n)
        // requests; the cap keeps a peer that fails everything from costing
        // hundreds per round.
        let mut budget = MAX_REQUESTS_PER_ROUND;
        while let Some(range) = todo.pop() {
            if Instant::now() + self.cfg.request_timeout > deadline || self.breaker.allow().is_err()
            {
                break;
            }
            budget = budget.saturating_sub(1);
            let result = self.send(&changes[range.clone()]).await;
            match &result {
                Ok(_) => self.breaker.report(Verdict::Up),
                Err(error) => {
                    self.breaker.report(error.verdict());
                    self.breaker.note_error(now_micros(), &error.to_string());
                    tracing::warn!(
                        peer = self.cfg.peer,
                        %error,
                        orders = range.len(),
                        "delivery failed; will retry"
                    );
                }
            }
            match result {
                Ok(results) => {
                    for (slot, r) in out[range].iter_mut().zip(results) {
                        *slot = Some(Ok(r));
                    }
                }
                Err(e) if e.may_be_the_content() && range.len() > 1 && budget > 0 => {
                    let mid = range.start + range.len() / 2;
                    todo.push(mid..range.end);
                    todo.push(range.start..mid);
                }
                Err(e) => {
                    for slot in &mut out[range] {
                        *slot = Some(Err(e.clone()));
                    }
                }
            }
        }
        out
    }
}

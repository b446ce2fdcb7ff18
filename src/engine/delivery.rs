//! What the relay reads and writes, as the engine's operations: lease a
//! round of due outbox rows, load the orders to send, settle the round
//! (with what the peer's answers taught, in the same transaction), and the
//! outbox's housekeeping (next due time, rows a wrong clock put out of
//! reach, leases left by a killed run, the LISTEN/NOTIFY wake-up), and the
//! relay's per-minute history.

use tokio::sync::watch;

use super::{Engine, EngineError, Result};
use crate::domain::snapshot::{FulfillmentSnapshot, ItemResult};
use crate::domain::{Order, OrderId};
use crate::storage::{Dialect, StorageError, history, orders, outbox};

pub use crate::storage::history::{MINUTE, Tally, minute_of};
pub use crate::storage::outbox::{Claimed, Settle, Settled};

/// The next round a settle leases in its own transaction
/// ([`Engine::settle_deliveries`]): up to `limit` rows due at `now`,
/// until `lease_until` (microseconds).
#[derive(Debug, Clone, Copy)]
pub struct NextClaim {
    pub now: i64,
    pub lease_until: i64,
    pub limit: i64,
}

impl Engine {
    /// Leases up to `limit` rows due for `peer` until `lease_until`
    /// (microseconds).
    pub async fn claim_deliveries(
        &self,
        peer: &str,
        now: i64,
        lease_until: i64,
        limit: i64,
    ) -> Result<Vec<Claimed>> {
        Ok(outbox::claim(&self.db, peer, now, lease_until, limit).await?)
    }

    /// Loads the orders to send. One order whose stored data no longer
    /// parses (edited by hand, say) must not hold back the others: it is
    /// left out, and so settled as a dead letter with the reason logged.
    pub async fn load_for_sending(&self, ids: &[OrderId]) -> Result<Vec<Order>> {
        let mut c = self.read().await?;
        match orders::load_many(&mut c, ids).await {
            Err(StorageError::Corrupt(_)) => {
                let mut out = Vec::with_capacity(ids.len());
                for id in ids {
                    match orders::load(&mut c, *id).await {
                        Ok(Some(o)) => out.push(o),
                        Ok(None) => {}
                        Err(StorageError::Corrupt(why)) => {
                            tracing::error!(order_id = %id, reason = %why, "cannot send an order whose stored data is invalid");
                        }
                        Err(e) => return Err(e.into()),
                    }
                }
                Ok(out)
            }
            other => Ok(other?),
        }
    }

    /// How many rows for `peer` a claim at `now` would lease, counted up
    /// to `limit` (a read on a reader; it leases nothing).
    pub async fn due_count(&self, peer: &str, now: i64, limit: i64) -> Result<i64> {
        let mut c = self.read().await?;
        Ok(outbox::due_count(&mut c, peer, now, limit).await?)
    }

    /// Ends a round: applies the fulfillment the peer's answers carried
    /// (`learned`, at the store) and settles every row, in one transaction,
    /// so a row is never settled without what its answer taught; with
    /// `next`, the same transaction leases the next round (one commit per
    /// round instead of two). Returns what the learned snapshots did, and
    /// the rows leased for the next round.
    pub async fn settle_deliveries(
        &self,
        peer: &str,
        learned: Vec<FulfillmentSnapshot>,
        settled: Vec<Settled>,
        now: i64,
        next: Option<NextClaim>,
    ) -> Result<(Vec<ItemResult>, Vec<Claimed>)> {
        let (engine, peer) = (self.clone(), peer.to_owned());
        let (applied, claimed) = self
            .db
            .write(move |c| {
                Box::pin(async move {
                    let applied = super::apply::apply_answers(&engine, c, &peer, learned).await?;
                    outbox::settle_many(c, &peer, &settled, now).await?;
                    let claimed = match next {
                        Some(n) => {
                            outbox::claim_in(c, &peer, n.now, n.lease_until, n.limit).await?
                        }
                        None => Vec::new(),
                    };
                    Ok::<_, EngineError>((applied, claimed))
                })
            })
            .await?;
        Ok((applied.finish(self), claimed))
    }

    /// Adds a relay's counts to `peer`'s row of the minute `minute_at` in
    /// the sync history, with the backlog (rows pending for `peer`)
    /// sampled now: counted on a reader, then written in one upsert.
    pub async fn record_history(&self, peer: &str, minute_at: i64, tally: Tally) -> Result<()> {
        let backlog = {
            let mut c = self
                .db
                .reader()
                .acquire()
                .await
                .map_err(StorageError::from)?;
            history::backlog(&mut c, peer).await?
        };
        let peer = peer.to_owned();
        self.db
            .write(move |c| {
                Box::pin(async move {
                    history::record(c, &peer, minute_at, &tally, backlog).await?;
                    Ok::<_, EngineError>(())
                })
            })
            .await
    }

    /// When the earliest row pending for `peer` becomes due
    /// (microseconds), if any.
    pub async fn next_due(&self, peer: &str) -> Result<Option<i64>> {
        let mut c = self.read().await?;
        Ok(outbox::next_due(&mut c, peer).await?)
    }

    /// Makes every row pending for `peer` scheduled or leased beyond
    /// `latest` due `now`. Returns how many.
    pub async fn reschedule_beyond(&self, peer: &str, latest: i64, now: i64) -> Result<u64> {
        Ok(outbox::reschedule_beyond(&self.db, peer, latest, now).await?)
    }

    /// Frees the leases a killed previous run left, where one process owns
    /// the database (SQLite); elsewhere they expire on their own. Returns
    /// how many were held.
    pub async fn release_stale_leases(&self, peer: &str) -> Result<u64> {
        match self.db.dialect() {
            Dialect::Sqlite => Ok(outbox::release_leases(&self.db, peer).await?),
            Dialect::Postgres => Ok(0),
        }
    }

    /// Vacuums and analyses the tables sync rewrites (PostgreSQL; nothing
    /// on SQLite). Returns false when there is nothing to tidy here.
    pub fn needs_tidying(&self) -> bool {
        self.db.dialect() == Dialect::Postgres
    }

    pub async fn tidy(&self) -> Result<()> {
        Ok(outbox::tidy(&self.db).await?)
    }

    /// Wakes this process's relays whenever another process commits to
    /// this database's outbox (PostgreSQL LISTEN/NOTIFY), until `shutdown`;
    /// `None` where one process owns the database.
    pub fn watch_other_processes(
        &self,
        shutdown: watch::Receiver<bool>,
    ) -> Option<tokio::task::JoinHandle<()>> {
        let url = self.db.listen_url()?.to_owned();
        let engine = self.clone();
        Some(tokio::spawn(outbox::listen(
            url,
            outbox::notify_channel(self.peer()),
            move || engine.wake_relay(),
            shutdown,
        )))
    }
}

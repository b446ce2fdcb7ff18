//! What reconciliation reads and writes, as the engine's operations: the
//! digests and versions of id ranges, re-enqueueing orders (raising a
//! rolled-back version first), and the record of each pass. The walk over
//! the id space and the peer protocol are in [`crate::sync::reconcile`].

use super::{Engine, EngineError, Result};
use crate::domain::OrderId;
use crate::domain::role::Command;
use crate::storage::digests::{self, RangeDigest, Run, Versions};
use crate::storage::{now_micros, orders, outbox};

impl Engine {
    /// The digest of each id range `[lo, hi)` in this database: at the
    /// store, of the orders routed to `peer` (the warehouse compared with);
    /// at a warehouse, of all its orders.
    pub async fn range_digests(
        &self,
        peer: &str,
        ranges: &[(&str, &str)],
    ) -> Result<Vec<RangeDigest>> {
        let scope = self.reconcile_scope(peer);
        let mut c = self.read().await?;
        let mut out = Vec::with_capacity(ranges.len());
        for (lo, hi) in ranges {
            out.push(digests::range_digest(&mut c, lo, hi, scope).await?);
        }
        Ok(out)
    }

    /// Both versions of at most `limit` orders of `[lo, hi)` (of `peer`'s
    /// orders, at the store), by id.
    pub async fn range_versions(
        &self,
        peer: &str,
        lo: &str,
        hi: &str,
        limit: i64,
    ) -> Result<Vec<Versions>> {
        let scope = self.reconcile_scope(peer);
        let mut c = self.read().await?;
        Ok(digests::range_versions(&mut c, lo, hi, limit, scope).await?)
    }

    /// Which orders a comparison with `peer` covers: at the store, those
    /// routed to that warehouse; at a warehouse, all of them.
    fn reconcile_scope<'p>(&self, peer: &'p str) -> Option<&'p str> {
        self.role.may(Command::ManageWarehouses).then_some(peer)
    }

    /// Re-enqueues this side's snapshot of each order for `peer`, first
    /// raising its version above `above` where it is not higher (this
    /// side's copy went back in time), in one transaction. At the store only
    /// orders routed to that warehouse count; others are unknown to it.
    /// Returns (resent, unknown here).
    pub async fn resend(
        &self,
        peer: &str,
        items: Vec<(OrderId, Option<i64>)>,
    ) -> Result<(u64, u64)> {
        let counter = self.role.counter();
        let scoped = self.reconcile_scope(peer).is_some();
        let peer = peer.to_owned();
        let (resent, unknown) = self
            .db
            .write(move |c| {
                Box::pin(async move {
                    let now = now_micros();
                    let (mut resent, mut unknown) = (0, 0);
                    let routed = if scoped {
                        let ids: Vec<OrderId> = items.iter().map(|(id, _)| *id).collect();
                        Some(orders::warehouses_of(c, &ids).await?)
                    } else {
                        None
                    };
                    for (id, above) in items {
                        if routed
                            .as_ref()
                            .is_some_and(|r| r.get(&id).map(String::as_str) != Some(&peer))
                        {
                            unknown += 1;
                            continue;
                        }
                        let key = id.to_string();
                        let Some(mut version) = digests::version(c, counter, &key).await? else {
                            unknown += 1;
                            continue;
                        };
                        if let Some(above) = above.filter(|a| version <= *a) {
                            // Callers bound `above`; saturate anyway rather than wrap.
                            version = above.saturating_add(1);
                            digests::raise_version(c, counter, &key, version).await?;
                        }
                        outbox::enqueue(c, &peer, id, version, now).await?;
                        resent += 1;
                    }
                    Ok::<_, EngineError>((resent, unknown))
                })
            })
            .await?;
        if resent > 0 {
            self.wake_relay();
        }
        Ok((resent, unknown))
    }

    /// Records a reconciliation pass (also a failed one).
    pub async fn record_reconcile(&self, run: Run) -> Result<()> {
        self.db
            .write(move |c| {
                Box::pin(async move { Ok::<_, EngineError>(digests::record_run(c, &run).await?) })
            })
            .await
    }
}

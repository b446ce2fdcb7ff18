//! What reconciliation reads and writes, as the engine's operations: the
//! digests and versions of id ranges, re-enqueueing orders (raising a
//! rolled-back version first), and the record of each pass. The walk over
//! the id space and the peer protocol are in [`crate::sync::reconcile`].

use super::{Engine, EngineError, Result};
use crate::domain::OrderId;
use crate::storage::digests::{self, RangeDigest, Run, Versions};
use crate::storage::{now_micros, outbox};

impl Engine {
    /// The digest of each id range `[lo, hi)` in this database.
    pub async fn range_digests(&self, ranges: &[(&str, &str)]) -> Result<Vec<RangeDigest>> {
        let mut c = self.read().await?;
        let mut out = Vec::with_capacity(ranges.len());
        for (lo, hi) in ranges {
            out.push(digests::range_digest(&mut c, lo, hi).await?);
        }
        Ok(out)
    }

    /// Both versions of at most `limit` orders of `[lo, hi)`, by id.
    pub async fn range_versions(&self, lo: &str, hi: &str, limit: i64) -> Result<Vec<Versions>> {
        let mut c = self.read().await?;
        Ok(digests::range_versions(&mut c, lo, hi, limit).await?)
    }

    /// Re-enqueues this side's snapshot of each order, first raising its
    /// version above `above` where it is not higher (this side's copy went
    /// back in time), in one transaction. Returns (resent, unknown here).
    pub async fn resend(&self, items: Vec<(OrderId, Option<i64>)>) -> Result<(u64, u64)> {
        let (counter, peer) = (self.role.counter(), self.peer());
        let (resent, unknown) = self
            .db
            .write(move |c| {
                Box::pin(async move {
                    let now = now_micros();
                    let (mut resent, mut unknown) = (0, 0);
                    for (id, above) in items {
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
                        outbox::enqueue(c, peer, id, version, now).await?;
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

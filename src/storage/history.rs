//! Sync history: per peer and per minute, deliveries, failed attempts, the
//! backlog (pending rows, sampled) and how long delivered changes had
//! waited since they were queued. The relay adds a minute's counts with
//! one upsert ([`record`]) at most once per round, never per order; the
//! admin sync page reads it back per minute ([`minutes`]). Old minutes go
//! with the pruner ([`super::prune`]).

use sqlx::AnyConnection;

use super::{Result, Sql};

/// A minute in microseconds.
pub const MINUTE: i64 = 60_000_000;

/// The start of the minute `t` (microseconds) falls in.
pub fn minute_of(t: i64) -> i64 {
    t.div_euclid(MINUTE) * MINUTE
}

/// What a relay saw during (part of) one minute, added to its row.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    /// Rows the peer took (applied, or already had).
    pub delivered: i64,
    /// Rows whose attempt failed (an error, or refused by the peer).
    pub failed: i64,
    /// Of the delivered rows: how many, the sum and the longest of their
    /// waits from queued to delivered (microseconds).
    pub delay_count: i64,
    pub delay_sum: i64,
    pub delay_max: i64,
}

impl Tally {
    /// Counts one delivered row that waited `delay` microseconds.
    pub fn delivered_after(&mut self, delay: i64) {
        let delay = delay.max(0);
        self.delivered += 1;
        self.delay_count += 1;
        self.delay_sum = self.delay_sum.saturating_add(delay);
        self.delay_max = self.delay_max.max(delay);
    }

    /// Adds another tally's counts to this one.
    pub fn add(&mut self, o: &Tally) {
        self.delivered += o.delivered;
        self.failed += o.failed;
        self.delay_count += o.delay_count;
        self.delay_sum = self.delay_sum.saturating_add(o.delay_sum);
        self.delay_max = self.delay_max.max(o.delay_max);
    }

    pub fn is_empty(&self) -> bool {
        *self == Tally::default()
    }
}

/// How many rows are pending for `peer` now: the backlog a relay samples
/// (counted by the outbox's (peer, state) index, on a reader, so that a
/// large backlog is not counted while holding SQLite's one writer).
pub async fn backlog(c: &mut AnyConnection, peer: &str) -> Result<i64> {
    Ok(sqlx::query_scalar::<_, i64>(
        "SELECT COUNT(*) FROM outbox WHERE peer = $1 AND state = 'pending'",
    )
    .bind(peer)
    .fetch_one(&mut *c)
    .await?)
}

/// Adds `t` and a `backlog` sample to the row of `peer` and `minute_at`;
/// the row keeps the largest backlog sampled in its minute.
pub async fn record(
    c: &mut AnyConnection,
    peer: &str,
    minute_at: i64,
    t: &Tally,
    backlog: i64,
) -> Result<()> {
    sqlx::query(RECORD.on(c))
        .bind(peer)
        .bind(minute_at)
        .bind(t.delivered)
        .bind(t.failed)
        .bind(backlog)
        .bind(t.delay_count)
        .bind(t.delay_sum)
        .bind(t.delay_max)
        .execute(&mut *c)
        .await?;
    Ok(())
}

/// [`record`]'s statement: `peer`, `minute_at`, `delivered`, `failed`,
/// `backlog`, `delay_count`, `delay_sum`, `delay_max`.
const RECORD: Sql = Sql {
    sqlite: "INSERT INTO sync_history (peer, minute_at, delivered, failed, backlog, delay_count, delay_sum, delay_max) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT (peer, minute_at) DO UPDATE SET \
               delivered = sync_history.delivered + excluded.delivered, \
               failed = sync_history.failed + excluded.failed, \
               backlog = MAX(sync_history.backlog, excluded.backlog), \
               delay_count = sync_history.delay_count + excluded.delay_count, \
               delay_sum = sync_history.delay_sum + excluded.delay_sum, \
               delay_max = MAX(sync_history.delay_max, excluded.delay_max)",
    postgres: "INSERT INTO sync_history (peer, minute_at, delivered, failed, backlog, delay_count, delay_sum, delay_max) \
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
               ON CONFLICT (peer, minute_at) DO UPDATE SET \
                 delivered = sync_history.delivered + excluded.delivered, \
                 failed = sync_history.failed + excluded.failed, \
                 backlog = GREATEST(sync_history.backlog, excluded.backlog), \
                 delay_count = sync_history.delay_count + excluded.delay_count, \
                 delay_sum = sync_history.delay_sum + excluded.delay_sum, \
                 delay_max = GREATEST(sync_history.delay_max, excluded.delay_max)",
};

/// One minute of history, of one peer or of every peer summed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, sqlx::FromRow)]
pub struct Minute {
    pub minute_at: i64,
    pub delivered: i64,
    pub failed: i64,
    /// The largest backlog sampled in the minute (summed over peers).
    pub backlog: i64,
    pub delay_count: i64,
    pub delay_sum: i64,
    pub delay_max: i64,
}

/// The recorded minutes from `since` on, oldest first: of `peer`, or of
/// every peer summed (`None`). A minute without a row was not recorded
/// (no relay was running for that peer).
pub async fn minutes(c: &mut AnyConnection, peer: Option<&str>, since: i64) -> Result<Vec<Minute>> {
    Ok(sqlx::query_as::<_, Minute>(MINUTES.on(c))
        .bind(since)
        .bind(peer)
        .fetch_all(&mut *c)
        .await?)
}

/// [`minutes`]'s statement: `since`, `peer` (NULL: every peer). PostgreSQL
/// sums BIGINTs into NUMERIC: cast back.
const MINUTES: Sql = Sql {
    sqlite: "SELECT minute_at, SUM(delivered) AS delivered, SUM(failed) AS failed, \
                    SUM(backlog) AS backlog, SUM(delay_count) AS delay_count, \
                    SUM(delay_sum) AS delay_sum, MAX(delay_max) AS delay_max \
             FROM sync_history WHERE minute_at >= $1 AND ($2 IS NULL OR peer = $2) \
             GROUP BY minute_at ORDER BY minute_at",
    postgres: "SELECT minute_at, SUM(delivered)::bigint AS delivered, SUM(failed)::bigint AS failed, \
                      SUM(backlog)::bigint AS backlog, SUM(delay_count)::bigint AS delay_count, \
                      SUM(delay_sum)::bigint AS delay_sum, MAX(delay_max) AS delay_max \
               FROM sync_history WHERE minute_at >= $1 AND ($2::text IS NULL OR peer = $2) \
               GROUP BY minute_at ORDER BY minute_at",
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minutes_start_on_the_minute() {
        assert_eq!(minute_of(0), 0);
        assert_eq!(minute_of(MINUTE - 1), 0);
        assert_eq!(minute_of(MINUTE), MINUTE);
        assert_eq!(minute_of(-1), -MINUTE);
    }

    #[test]
    fn tallies_add_up() {
        let mut a = Tally::default();
        assert!(a.is_empty());
        a.delivered_after(3);
        a.delivered_after(-5);
        a.failed += 1;
        let mut b = Tally::default();
        b.delivered_after(10);
        a.add(&b);
        assert_eq!(
            a,
            Tally {
                delivered: 3,
                failed: 1,
                delay_count: 3,
                delay_sum: 13,
                delay_max: 10
            }
        );
    }
}

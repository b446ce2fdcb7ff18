//! When a relay writes down its history (the per-minute counts the admin
//! sync page charts). Rounds add their counts to a tally in memory; the
//! tally is written, with a sample of the backlog, in one upsert:
//!
//! - when a round falls in a new minute (the old minute's rest first);
//! - when the relay has nothing to do right now (idle, or the breaker is
//!   open), so a burst shows on the page as soon as it ends, but at most
//!   once per [`QUIET_EVERY`]: at everyday load a relay is idle between
//!   rounds of a few orders, and writing then was a commit per round (the
//!   relay wakes to write what is left once the moment has passed);
//! - at most every [`FLUSH_EVERY`] while the relay works without pause;
//! - at least once a minute, even with nothing to count, so the backlog is
//!   sampled while the breaker keeps everything waiting, and a minute
//!   without a row means no relay was running.
//!
//! So a busy relay writes one small row every few seconds, never one per
//! order or per round.

use std::time::Duration;

use crate::engine::{Tally, minute_of};

/// Longest a working relay keeps counts in memory.
pub const FLUSH_EVERY: Duration = Duration::from_secs(5);

/// Shortest time between two writes made because the relay went quiet.
pub const QUIET_EVERY: Duration = Duration::from_secs(1);

/// What to write: `tally` into the row of `minute_at`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flush {
    pub minute_at: i64,
    pub tally: Tally,
}

#[derive(Debug, Default)]
pub struct Recorder {
    /// The minute the tally belongs to (0: none yet).
    minute: i64,
    tally: Tally,
    /// When the tally was last written (microseconds; 0: never).
    written_at: i64,
    /// The minute of the last write.
    written_minute: i64,
    /// A past minute's counts not written yet.
    owed: Option<Flush>,
}

impl Recorder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a round's counts, taken at `now` (microseconds).
    pub fn add(&mut self, now: i64, t: &Tally) {
        self.roll(now);
        self.tally.add(t);
    }

    /// Moves on to the minute of `now`; the previous minute's unwritten
    /// counts are owed.
    fn roll(&mut self, now: i64) {
        let minute = minute_of(now);
        if minute == self.minute {
            return;
        }
        let old = Flush {
            minute_at: self.minute,
            tally: std::mem::take(&mut self.tally),
        };
        self.minute = minute;
        if old.minute_at != 0 && !old.tally.is_empty() {
            // Owed counts of an older minute whose write failed are
            // dropped: history is a picture, the outbox is the record.
            self.owed = Some(old);
        }
    }

    /// What to write now, if anything: `quiet` when the relay has nothing
    /// to do this moment (idle, or paused by the breaker). The caller
    /// writes the flushes in order, calling [`Recorder::written`] for each
    /// that was written.
    pub fn due(&mut self, now: i64, quiet: bool) -> Vec<Flush> {
        self.roll(now);
        let mut out: Vec<Flush> = self.owed.take().into_iter().collect();
        let unsampled = self.written_minute != self.minute;
        let pending = !self.tally.is_empty();
        let since = now - self.written_at;
        let stale = since >= FLUSH_EVERY.as_micros() as i64;
        let quiet = quiet && since >= QUIET_EVERY.as_micros() as i64;
        if unsampled || (pending && (quiet || stale)) {
            out.push(Flush {
                minute_at: self.minute,
                tally: self.tally,
            });
        }
        out
    }

    /// When counts not written yet are due to be written by a quiet
    /// relay (microseconds), if there are any: it should look again then.
    pub fn write_at(&self) -> Option<i64> {
        let pending = !self.tally.is_empty() || self.owed.is_some();
        pending.then_some(self.written_at + QUIET_EVERY.as_micros() as i64)
    }

    /// Records that `f` was written at `now`: its counts are no longer
    /// owed. (A write that failed is simply not reported: the current
    /// minute's counts stay and go with the next write.)
    pub fn written(&mut self, f: &Flush, now: i64) {
        if f.minute_at == self.minute {
            self.tally = Tally::default();
            self.written_minute = self.minute;
        }
        self.written_at = now;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::MINUTE;

    fn delivered(n: i64) -> Tally {
        Tally {
            delivered: n,
            ..Tally::default()
        }
    }

    const T0: i64 = 1_000 * MINUTE;

    #[test]
    fn a_minute_is_sampled_once_even_with_nothing_to_count() {
        let mut r = Recorder::new();
        let due = r.due(T0 + 1, true);
        assert_eq!(
            due,
            vec![Flush {
                minute_at: T0,
                tally: Tally::default()
            }]
        );
        r.written(&due[0], T0 + 1);
        assert!(r.due(T0 + 2_000_000, true).is_empty(), "sampled already");
        let due = r.due(T0 + MINUTE + 5, true);
        assert_eq!(due.len(), 1, "the next minute is sampled again");
        assert_eq!(due[0].minute_at, T0 + MINUTE);
    }

    #[test]
    fn a_busy_relay_writes_every_few_seconds_and_a_quiet_one_at_once() {
        let mut r = Recorder::new();
        let first = r.due(T0, false);
        r.written(&first[0], T0);
        r.add(T0 + 1_000_000, &delivered(10));
        assert!(r.due(T0 + 1_000_000, false).is_empty(), "not yet");
        r.add(T0 + 2_000_000, &delivered(5));
        let due = r.due(T0 + 2_000_000, true);
        assert_eq!(due[0].tally.delivered, 15, "quiet: written at once");
        assert_eq!(r.write_at(), Some(T0 + QUIET_EVERY.as_micros() as i64));
        r.written(&due[0], T0 + 2_000_000);
        r.add(T0 + 3_000_000, &delivered(1));
        assert!(r.due(T0 + 3_000_000, false).is_empty());
        let later = T0 + 2_000_000 + FLUSH_EVERY.as_micros() as i64;
        assert_eq!(r.due(later, false)[0].tally.delivered, 1, "stale");
    }

    #[test]
    fn a_relay_quiet_between_small_rounds_writes_once_a_moment() {
        let mut r = Recorder::new();
        let first = r.due(T0, true);
        r.written(&first[0], T0);
        assert_eq!(r.write_at(), None, "nothing to write");
        // Rounds of a few orders with idle moments between them.
        for i in 1..10 {
            r.add(T0 + i * 20_000, &delivered(3));
            assert!(r.due(T0 + i * 20_000, true).is_empty(), "round {i}");
        }
        let at = r.write_at().expect("counts are waiting");
        assert_eq!(at, T0 + QUIET_EVERY.as_micros() as i64);
        let due = r.due(at, true);
        assert_eq!(due[0].tally.delivered, 27, "all rounds in one write");
        r.written(&due[0], at);
        assert_eq!(r.write_at(), None);
    }

    #[test]
    fn counts_stay_in_their_minute() {
        let mut r = Recorder::new();
        r.add(T0 + 59 * 1_000_000, &delivered(3));
        r.add(T0 + MINUTE + 1, &delivered(4));
        let due = r.due(T0 + MINUTE + 2, true);
        assert_eq!(
            due,
            vec![
                Flush {
                    minute_at: T0,
                    tally: delivered(3)
                },
                Flush {
                    minute_at: T0 + MINUTE,
                    tally: delivered(4)
                }
            ]
        );
    }

    #[test]
    fn a_failed_write_is_retried_with_the_next() {
        let mut r = Recorder::new();
        r.add(T0, &delivered(2));
        let due = r.due(T0, true);
        assert_eq!(due[0].tally.delivered, 2);
        // Not written (the database was down): still owed.
        r.add(T0 + 1_000_000, &delivered(1));
        assert_eq!(r.due(T0 + 1_000_000, true)[0].tally.delivered, 3);
    }
}

//! Write batching for hot commands (creates at the store, fulfillment steps
//! at the warehouse).
//!
//! A command waits in a [`Batcher`]; the first one to arrive queues a single
//! database write. When that write runs (on SQLite: when the group-commit
//! writer gets to it), it takes every command waiting at that moment and
//! writes them together, one statement per table for the lot. The batch is
//! formed as late as possible: whatever arrived while earlier writes were
//! committing rides along. Each caller is answered once the batch is
//! durable.
//!
//! A command that arrives while no other is in flight (submitted and not
//! answered) would be written alone, one durable commit for one command:
//! at everyday load (hundreds a second, a few milliseconds apart) that is
//! every command. So it waits for company, up to the linger
//! (`--write-linger`, 2 ms), and is written as soon as another one joins
//! it. Under load there is always another command in flight, whose answer
//! brings its client back: nothing waits then, as waiting could only
//! delay a batch that no one else would join.
//!
//! A batch whose write fails is rolled back (by the writer) and its commands
//! are retried one write each, so only a command at fault fails, with its
//! own error. The batch itself needs no savepoint of its own.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use sqlx::AnyConnection;
use tokio::sync::{Notify, oneshot};

use super::{EngineError, OrderView, Result};
use crate::storage::writer::BoxFuture;
use crate::storage::{Db, ErrorKind, StorageError};

/// How one kind of command is written in bulk.
pub(crate) trait BatchWrite: Send + Sync + 'static {
    type Item: Send + Sync + 'static;

    /// Writes `items` inside the caller's transaction: one result per item,
    /// in order. An `Err` for the whole means nothing may be kept.
    fn write<'c>(
        &'c self,
        c: &'c mut AnyConnection,
        items: &'c [Self::Item],
    ) -> BoxFuture<'c, Result<Vec<Result<OrderView>>>>;
}

type Reply = oneshot::Sender<Result<OrderView>>;

/// Commands of one kind waiting to be written together.
pub(crate) struct Batcher<W: BatchWrite> {
    how: W,
    waiting: Mutex<Waiting<W::Item>>,
    /// Commands submitted and not answered yet (nor given up).
    in_flight: AtomicUsize,
    /// Told when a command joins a write that is already scheduled.
    arrived: Notify,
    /// How long a lone command waits for company (see [`Batcher::submit`]).
    linger: Duration,
}

/// Counts a command in flight until it is answered or its caller leaves.
struct InFlight<'a>(&'a AtomicUsize);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

struct Waiting<T> {
    items: Vec<(T, Reply)>,
    /// A write that will take the list is queued and has not taken it yet.
    scheduled: bool,
}

impl<W: BatchWrite> Batcher<W> {
    pub(crate) fn new(how: W, linger: Duration) -> Self {
        Self {
            how,
            waiting: Mutex::new(Waiting {
                items: Vec::new(),
                scheduled: false,
            }),
            in_flight: AtomicUsize::new(0),
            arrived: Notify::new(),
            linger,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Waiting<W::Item>> {
        self.waiting.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Everything waiting; the next command to arrive queues a new write.
    fn take(&self) -> Vec<(W::Item, Reply)> {
        let mut w = self.lock();
        w.scheduled = false;
        std::mem::take(&mut w.items)
    }

    /// Writes `item` with whatever else is waiting (a lone one after the
    /// linger, or as soon as another joins it), and answers once that is
    /// durable. `wake` is notified when something was written (the relay).
    pub(crate) async fn submit(
        self: &Arc<Self>,
        db: &Db,
        wake: &Arc<super::Wakers>,
        item: W::Item,
    ) -> Result<OrderView> {
        let (reply, answer) = oneshot::channel();
        let others = self.in_flight.fetch_add(1, Ordering::AcqRel);
        let _counted = InFlight(&self.in_flight);
        let schedule = {
            let mut w = self.lock();
            w.items.push((item, reply));
            !std::mem::replace(&mut w.scheduled, true)
        };
        if schedule {
            // Alone: nothing else is on its way to be written, so no batch
            // would form by itself; wait a moment for company.
            let linger = (others == 0 && !self.linger.is_zero()).then_some(self.linger);
            // Its own task: the batch must be written even if this request
            // is cancelled meanwhile.
            tokio::spawn(self.clone().drain(db.clone(), wake.clone(), linger));
        } else {
            self.arrived.notify_waiters();
        }
        answer
            .await
            .map_err(|_| StorageError::Unavailable(crate::storage::writer::STOPPED.into()))?
    }

    /// The one write that takes and writes whatever is waiting when it runs.
    async fn drain(self: Arc<Self>, db: Db, wake: Arc<super::Wakers>, linger: Option<Duration>) {
        if let Some(linger) = linger {
            let arrived = self.arrived.notified();
            tokio::pin!(arrived);
            arrived.as_mut().enable();
            // One that came before the wait began is seen here.
            if self.lock().items.len() < 2 {
                let _ = tokio::time::timeout(linger, arrived).await;
            }
        }
        let slot: Arc<Mutex<Taken<W::Item>>> = Arc::new(Mutex::new(Taken::default()));
        let (this, filled) = (self.clone(), slot.clone());
        let written = db
            .write(move |c| {
                Box::pin(async move {
                    let (items, replies): (Vec<W::Item>, Vec<Reply>) =
                        this.take().into_iter().unzip();
                    let result = if items.is_empty() {
                        Ok(Vec::new())
                    } else {
                        this.how.write(c, &items).await
                    };
                    let mut taken = filled.lock().unwrap_or_else(|e| e.into_inner());
                    taken.ran = true;
                    taken.replies = replies;
                    if result.is_err() {
                        taken.failed = items;
                    }
                    result
                })
            })
            .await;
        let Taken {
            ran,
            replies,
            failed,
        } = std::mem::take(&mut *slot.lock().unwrap_or_else(|e| e.into_inner()));
        match written {
            Ok(results) => {
                if results.iter().any(|r| r.is_ok()) {
                    wake.wake_all();
                }
                for (reply, result) in replies.into_iter().zip(results) {
                    // The caller may have gone away (request cancelled).
                    let _ = reply.send(result);
                }
            }
            // The batch failed for its own content (not because the
            // database is unreachable or full, which would fail each
            // command again, one wait each).
            Err(e)
                if failed.len() > 1
                    && matches!(storage_kind(&e), ErrorKind::Other | ErrorKind::Unstorable) =>
            {
                // The batch was rolled back. Each alone, so that only a
                // command at fault fails, with its own error.
                let mut any = false;
                for (item, reply) in failed.into_iter().zip(replies) {
                    let this = self.clone();
                    let result = db
                        .write(move |c| {
                            Box::pin(async move {
                                let mut one =
                                    this.how.write(c, std::slice::from_ref(&item)).await?;
                                one.pop().unwrap_or_else(|| Err(not_written()))
                            })
                        })
                        .await;
                    any |= result.is_ok();
                    let _ = reply.send(result);
                }
                if any {
                    wake.wake_all();
                }
            }
            Err(e) if failed.len() == 1 => {
                // A batch of one: its own error.
                if let Some(reply) = replies.into_iter().next() {
                    let _ = reply.send(Err(e));
                }
            }
            Err(e) => {
                // The commit failed, or the database is unreachable or
                // full, or the write never ran (no connection, the writer
                // stopped) and its commands are still waiting (later ones
                // have a write of their own queued): all are told, with
                // the kind of failure it was.
                let failure = match e {
                    EngineError::Storage(s) => s,
                    other => StorageError::Commit(other.to_string()),
                };
                let stranded = if ran { Vec::new() } else { self.take() };
                let stranded = stranded.into_iter().map(|(_, reply)| reply);
                for reply in replies.into_iter().chain(stranded) {
                    let _ = reply.send(Err(failure.duplicate().into()));
                }
            }
        }
    }
}

/// What a drain's write took: whom to answer and, if the batch failed, its
/// commands (to be tried one by one).
struct Taken<T> {
    /// The write ran and took the waiting commands.
    ran: bool,
    replies: Vec<Reply>,
    failed: Vec<T>,
}

impl<T> Default for Taken<T> {
    fn default() -> Self {
        Self {
            ran: false,
            replies: Vec::new(),
            failed: Vec::new(),
        }
    }
}

fn storage_kind(e: &EngineError) -> ErrorKind {
    match e {
        EngineError::Storage(s) => s.kind(),
        _ => ErrorKind::Other,
    }
}

pub(crate) fn not_written() -> EngineError {
    StorageError::Commit("the write was not made".into()).into()
}

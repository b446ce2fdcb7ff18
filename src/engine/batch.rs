//! Write batching for hot commands (creates at the store, fulfillment steps
//! at the warehouse).
//!
//! A command waits in a [`Batcher`]; the first one to arrive queues a single
//! database write. When that write runs (on SQLite: when the group-commit
//! writer gets to it), it takes every command waiting at that moment and
//! writes them together, one statement per table for the lot. The batch is
//! formed as late as possible: whatever arrived while earlier writes were
//! committing rides along, and a lone command waits for nothing but its own
//! commit. Each caller is answered once the batch is durable.
//!
//! A batch whose write fails is retried one command at a time, each in its
//! own savepoint, so only a command at fault fails, with its own error.

use std::sync::{Arc, Mutex, MutexGuard};

use sqlx::AnyConnection;
use tokio::sync::{Notify, oneshot};

use super::{EngineError, OrderView, Result};
use crate::storage::writer::BoxFuture;
use crate::storage::{Db, StorageError};

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
}

struct Waiting<T> {
    items: Vec<(T, Reply)>,
    /// A write that will take the list is queued and has not taken it yet.
    scheduled: bool,
}

impl<W: BatchWrite> Batcher<W> {
    pub(crate) fn new(how: W) -> Self {
        Self {
            how,
            waiting: Mutex::new(Waiting {
                items: Vec::new(),
                scheduled: false,
            }),
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

    /// Writes `item` with whatever else is waiting, and answers once that is
    /// durable. `wake` is notified when something was written (the relay).
    pub(crate) async fn submit(
        self: &Arc<Self>,
        db: &Db,
        wake: &Arc<Notify>,
        item: W::Item,
    ) -> Result<OrderView> {
        let (reply, answer) = oneshot::channel();
        let schedule = {
            let mut w = self.lock();
            w.items.push((item, reply));
            !std::mem::replace(&mut w.scheduled, true)
        };
        if schedule {
            // Its own task: the batch must be written even if this request
            // is cancelled meanwhile.
            tokio::spawn(self.clone().drain(db.clone(), wake.clone()));
        }
        answer
            .await
            .map_err(|_| StorageError::Commit("the database writer has stopped".into()))?
    }

    /// The one write that takes and writes whatever is waiting when it runs.
    async fn drain(self: Arc<Self>, db: Db, wake: Arc<Notify>) {
        let replies: Arc<Mutex<Vec<Reply>>> = Arc::default();
        let (this, taken) = (self.clone(), replies.clone());
        let written = db
            .write(move |c| {
                Box::pin(async move {
                    let (items, answer_to): (Vec<W::Item>, Vec<Reply>) =
                        this.take().into_iter().unzip();
                    *taken.lock().unwrap_or_else(|e| e.into_inner()) = answer_to;
                    this.write_or_each(c, &items).await
                })
            })
            .await;
        let replies = std::mem::take(&mut *replies.lock().unwrap_or_else(|e| e.into_inner()));
        match written {
            Ok(results) => {
                if results.iter().any(|r| r.is_ok()) {
                    wake.notify_one();
                }
                for (reply, result) in replies.into_iter().zip(results) {
                    // The caller may have gone away (request cancelled).
                    let _ = reply.send(result);
                }
            }
            Err(e) => {
                // Not committed. If the write never ran (the writer stopped),
                // its commands are still waiting: they are told too.
                let why = e.to_string();
                let stranded = self.take().into_iter().map(|(_, reply)| reply);
                for reply in replies.into_iter().chain(stranded) {
                    let _ = reply.send(Err(StorageError::Commit(why.clone()).into()));
                }
            }
        }
    }

    /// All items in one go; if that fails, each alone in its own savepoint.
    async fn write_or_each(
        &self,
        c: &mut AnyConnection,
        items: &[W::Item],
    ) -> Result<Vec<Result<OrderView>>> {
        if items.is_empty() {
            return Ok(Vec::new());
        }
        exec(c, "SAVEPOINT batch").await?;
        match self.how.write(c, items).await {
            Ok(results) => {
                exec(c, "RELEASE SAVEPOINT batch").await?;
                return Ok(results);
            }
            Err(e) if items.len() == 1 => {
                exec(c, "ROLLBACK TO SAVEPOINT batch").await?;
                exec(c, "RELEASE SAVEPOINT batch").await?;
                return Ok(vec![Err(e)]);
            }
            Err(_) => exec(c, "ROLLBACK TO SAVEPOINT batch").await?,
        }
        let mut results = Vec::with_capacity(items.len());
        for one in items.chunks(1) {
            exec(c, "SAVEPOINT one").await?;
            let r = match self.how.write(c, one).await {
                Ok(mut v) => v.pop().unwrap_or_else(|| Err(not_written())),
                Err(e) => Err(e),
            };
            if r.is_err() {
                exec(c, "ROLLBACK TO SAVEPOINT one").await?;
            }
            exec(c, "RELEASE SAVEPOINT one").await?;
            results.push(r);
        }
        exec(c, "RELEASE SAVEPOINT batch").await?;
        Ok(results)
    }
}

async fn exec(c: &mut AnyConnection, sql: &'static str) -> Result<()> {
    sqlx::query(sql).execute(&mut *c).await?;
    Ok(())
}

pub(crate) fn not_written() -> EngineError {
    StorageError::Commit("the write was not made".into()).into()
}

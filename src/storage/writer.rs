//! Group commit for SQLite: one writer task takes every write that is
//! waiting, runs each in its own savepoint inside one transaction, commits
//! once (one fsync for all of them) and only then answers each caller. An
//! acknowledged write is durable (`synchronous=FULL`), and throughput comes
//! from sharing the fsync, not from weakening it.
//!
//! A write that fails rolls back to its savepoint and gets its own error;
//! the others in the group still commit. If the commit itself fails, every
//! write of the group is told so.

use std::future::Future;
use std::pin::Pin;

use sqlx::{AnyConnection, AnyPool, Executor};
use tokio::sync::{mpsc, oneshot};

use super::StorageError;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Most writes that share one transaction.
pub const MAX_GROUP: usize = 256;

/// One write waiting for the writer, with its types erased.
pub(crate) trait Work: Send {
    /// Runs the write on the writer's connection; true when it succeeded.
    fn run<'a>(&'a mut self, c: &'a mut AnyConnection) -> BoxFuture<'a, bool>;
    /// Answers the caller once the group's fate is known.
    fn finish(self: Box<Self>, committed: Result<(), String>);
}

pub(crate) struct Task<T, E, F> {
    f: Option<F>,
    result: Option<Result<T, E>>,
    reply: oneshot::Sender<Result<T, E>>,
}

impl<T, E, F> Task<T, E, F> {
    pub(crate) fn new(f: F, reply: oneshot::Sender<Result<T, E>>) -> Self {
        Self {
            f: Some(f),
            result: None,
            reply,
        }
    }
}

impl<T, E, F> Work for Task<T, E, F>
where
    T: Send + 'static,
    E: From<StorageError> + Send + 'static,
    F: for<'c> FnOnce(&'c mut AnyConnection) -> BoxFuture<'c, Result<T, E>> + Send + 'static,
{
    fn run<'a>(&'a mut self, c: &'a mut AnyConnection) -> BoxFuture<'a, bool> {
        Box::pin(async move {
            let Some(f) = self.f.take() else { return false };
            let r = f(c).await;
            let ok = r.is_ok();
            self.result = Some(r);
            ok
        })
    }

    fn finish(self: Box<Self>, committed: Result<(), String>) {
        let Task { result, reply, .. } = *self;
        let answer = match (result, committed) {
            (Some(Err(e)), _) => Err(e),
            (Some(Ok(v)), Ok(())) => Ok(v),
            (Some(Ok(_)) | None, Err(why)) => Err(E::from(StorageError::Commit(why))),
            (None, Ok(())) => Err(E::from(StorageError::Commit(
                "the write was not run".into(),
            ))),
        };
        // The caller may have gone away (request cancelled): nothing to do.
        let _ = reply.send(answer);
    }
}

pub(crate) type Queue = mpsc::Sender<Box<dyn Work>>;

/// Starts the writer task for `pool` (a single-connection pool).
pub(crate) fn start(pool: AnyPool) -> Queue {
    let (tx, rx) = mpsc::channel(4 * MAX_GROUP);
    tokio::spawn(run(pool, rx));
    tx
}

async fn exec(c: &mut AnyConnection, sql: &str) -> Result<(), String> {
    c.execute(sql).await.map(|_| ()).map_err(|e| e.to_string())
}

async fn run(pool: AnyPool, mut rx: mpsc::Receiver<Box<dyn Work>>) {
    let mut group: Vec<Box<dyn Work>> = Vec::with_capacity(MAX_GROUP);
    while let Some(first) = rx.recv().await {
        group.push(first);
        // Whatever queued up while the last group was committing rides along.
        while group.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(w) => group.push(w),
                Err(_) => break,
            }
        }
        let outcome = commit_group(&pool, &mut group).await;
        if let Err(e) = &outcome {
            tracing::error!(error = %e, writes = group.len(), "group commit failed");
        }
        for w in group.drain(..) {
            w.finish(outcome.clone());
        }
    }
}

/// Runs every write of the group in its own savepoint and commits once.
async fn commit_group(pool: &AnyPool, group: &mut [Box<dyn Work>]) -> Result<(), String> {
    let mut conn = pool.acquire().await.map_err(|e| e.to_string())?;
    let c: &mut AnyConnection = &mut conn;
    exec(c, "BEGIN").await?;
    if let [only] = group {
        // Alone in its transaction, a write needs no savepoint: if it
        // fails, the rollback of the whole transaction undoes just it.
        return if only.run(c).await {
            exec(c, "COMMIT").await
        } else {
            exec(c, "ROLLBACK").await
        };
    }
    let mut result = Ok(());
    for w in group.iter_mut() {
        if let Err(e) = exec(c, "SAVEPOINT w").await {
            result = Err(e);
            break;
        }
        let ok = w.run(c).await;
        let end = if ok {
            exec(c, "RELEASE SAVEPOINT w").await
        } else {
            match exec(c, "ROLLBACK TO SAVEPOINT w").await {
                Ok(()) => exec(c, "RELEASE SAVEPOINT w").await,
                Err(e) => Err(e),
            }
        };
        if let Err(e) = end {
            result = Err(e);
            break;
        }
    }
    match result {
        Ok(()) => exec(c, "COMMIT").await,
        Err(e) => {
            let _ = exec(c, "ROLLBACK").await;
            Err(e)
        }
    }
}

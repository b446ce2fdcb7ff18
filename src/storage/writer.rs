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
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyConnection, AnyPool, Executor};
use tokio::sync::{Notify, mpsc, oneshot};

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

/// The way to the writer task.
#[derive(Clone, Debug)]
pub(crate) struct Queue {
    pub(crate) work: mpsc::Sender<Box<dyn Work>>,
    lend: Arc<Lend>,
}

/// The writer keeps the pool's one connection between groups (taking it
/// back from the pool for every group was a tenth of the writer's time
/// under load). Code that needs the connection itself (a transaction of
/// its own, closing the pool) asks for it here, and the writer gives it
/// back to the pool after its current group.
#[derive(Debug, Default)]
struct Lend {
    wanted: AtomicUsize,
    wake: Notify,
}

/// While alive, the writer leaves the connection in the pool.
pub(crate) struct Borrow(Arc<Lend>);

impl Drop for Borrow {
    fn drop(&mut self) {
        self.0.wanted.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Queue {
    /// Asks the writer to leave the connection in the pool until the
    /// returned guard is dropped (once the connection is acquired).
    pub(crate) fn borrow(&self) -> Borrow {
        self.lend.wanted.fetch_add(1, Ordering::AcqRel);
        self.lend.wake.notify_one();
        Borrow(self.lend.clone())
    }
}

/// Starts the writer task for `pool` (a single-connection pool).
pub(crate) fn start(pool: AnyPool) -> Queue {
    let (work, rx) = mpsc::channel(4 * MAX_GROUP);
    let lend = Arc::new(Lend::default());
    tokio::spawn(run(pool, rx, lend.clone()));
    Queue { work, lend }
}

async fn exec(c: &mut AnyConnection, sql: &str) -> Result<(), String> {
    c.execute(sql).await.map(|_| ()).map_err(|e| e.to_string())
}

async fn run(pool: AnyPool, mut rx: mpsc::Receiver<Box<dyn Work>>, lend: Arc<Lend>) {
    let mut group: Vec<Box<dyn Work>> = Vec::with_capacity(MAX_GROUP);
    let mut held: Option<PoolConnection<Any>> = None;
    loop {
        let first = if held.is_some() {
            tokio::select! {
                w = rx.recv() => w,
                () = lend.wake.notified() => {
                    if lend.wanted.load(Ordering::Acquire) > 0 {
                        held = None;
                    }
                    continue;
                }
            }
        } else {
            rx.recv().await
        };
        let Some(first) = first else { break };
        group.push(first);
        // Whatever queued up while the last group was committing rides along.
        while group.len() < MAX_GROUP {
            match rx.try_recv() {
                Ok(w) => group.push(w),
                Err(_) => break,
            }
        }
        if held.is_none() {
            match pool.acquire().await {
                Ok(conn) => held = Some(conn),
                Err(e) => {
                    tracing::error!(error = %e, "the database writer cannot get its connection");
                }
            }
        }
        let outcome = match held.as_mut() {
            Some(conn) => commit_group(conn, &mut group).await,
            None => Err(
                "the database connection is unavailable; check the database file and disk".into(),
            ),
        };
        if let Err(e) = &outcome {
            tracing::error!(error = %e, writes = group.len(), "group commit failed");
        }
        // After a failure, a fresh connection; and give it up when asked.
        if outcome.is_err() || lend.wanted.load(Ordering::Acquire) > 0 {
            held = None;
        }
        for w in group.drain(..) {
            w.finish(outcome.clone());
        }
    }
}

/// Runs every write of the group in its own savepoint and commits once.
async fn commit_group(
    conn: &mut PoolConnection<Any>,
    group: &mut [Box<dyn Work>],
) -> Result<(), String> {
    let c: &mut AnyConnection = conn;
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

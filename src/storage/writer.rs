//! Group commit for SQLite: one writer thread takes every write that is
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
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock};

use metrics::Counter;

use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyConnection, AnyPool, Executor};
use tokio::sync::{Notify, mpsc, oneshot};

use super::{ErrorKind, StorageError, StorageFailure, classify};
use crate::telemetry::Throttle;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Most writes that share one transaction.
pub const MAX_GROUP: usize = 256;

/// What callers are told when the writer is gone.
pub(crate) const STOPPED: &str =
    "the database writer has stopped; restart the service (its log says why)";

/// Why a group did not commit: its kind survives the trip to every caller
/// of the group (a full disk must not read as a generic failure).
#[derive(Debug, Clone)]
pub(crate) struct Failure {
    kind: ErrorKind,
    why: String,
}

impl Failure {
    fn of(e: &sqlx::Error) -> Failure {
        Failure {
            kind: classify(e),
            why: super::describe(e),
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.why)
    }
}

/// One write waiting for the writer, with its types erased.
pub(crate) trait Work: Send {
    /// Runs the write on the writer's connection; on failure, the kind of
    /// storage failure it met, if any.
    fn run<'a>(
        &'a mut self,
        c: &'a mut AnyConnection,
    ) -> BoxFuture<'a, Result<(), Option<ErrorKind>>>;
    /// Answers the caller once the group's fate is known.
    fn finish(self: Box<Self>, committed: Result<(), Failure>);
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
    E: From<StorageError> + StorageFailure + Send + 'static,
    F: for<'c> FnOnce(&'c mut AnyConnection) -> BoxFuture<'c, Result<T, E>> + Send + 'static,
{
    fn run<'a>(
        &'a mut self,
        c: &'a mut AnyConnection,
    ) -> BoxFuture<'a, Result<(), Option<ErrorKind>>> {
        Box::pin(async move {
            let Some(f) = self.f.take() else {
                return Err(None);
            };
            let r = f(c).await;
            let ran = match &r {
                Ok(_) => Ok(()),
                Err(e) => Err(e.storage_kind()),
            };
            self.result = Some(r);
            ran
        })
    }

    fn finish(self: Box<Self>, committed: Result<(), Failure>) {
        let Task { result, reply, .. } = *self;
        let answer = match (result, committed) {
            (Some(Err(e)), _) => Err(e),
            (Some(Ok(v)), Ok(())) => Ok(v),
            (Some(Ok(_)) | None, Err(f)) => Err(E::from(StorageError::of_kind(f.kind, f.why))),
            (None, Ok(())) => Err(E::from(StorageError::Commit(
                "the write was not run".into(),
            ))),
        };
        // The caller may have gone away (request cancelled): nothing to do.
        let _ = reply.send(answer);
    }
}

/// The way to the writer.
#[derive(Clone, Debug)]
pub(crate) struct Queue {
    pub(crate) work: mpsc::Sender<Box<dyn Work>>,
    lend: Arc<Lend>,
}

/// The writer keeps the pool's one connection between groups (taking it
/// back from the pool for every group was a tenth of the writer's time
/// under load). Code that needs the connection itself (a transaction of
/// its own, closing the pool) asks for it here, and the writer gives it
/// back to the pool after its current group; that code's statements then
/// run on its own thread (the connection runs in place).
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

/// Starts the writer for `pool` (a single-connection pool) on a thread of
/// its own, which drives each group's writes with a runtime of its own: on
/// the native connection ([`super::native`]) their statements run right
/// there, and a commit's fsync holds up no request. The thread ends when
/// the last [`Queue`] is gone. Fails only when the system has no thread or
/// timer left to give.
pub(crate) fn start(pool: AnyPool) -> std::io::Result<Queue> {
    let (work, rx) = mpsc::channel(4 * MAX_GROUP);
    let lend = Arc::new(Lend::default());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let writer = run(pool, rx, lend.clone());
    std::thread::Builder::new()
        .name("db-writer".into())
        .spawn(move || runtime.block_on(writer))?;
    Ok(Queue { work, lend })
}

async fn exec(c: &mut AnyConnection, sql: &str) -> Result<(), Failure> {
    c.execute(sql)
        .await
        .map(|_| ())
        .map_err(|e| Failure::of(&e))
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
        let mut outcome = Ok(());
        if held.is_none() {
            match pool.acquire().await {
                Ok(conn) => held = Some(conn),
                Err(e) => {
                    let mut failure = Failure::of(&e);
                    failure.why = format!("the writer cannot get its connection: {}", failure.why);
                    outcome = Err(failure);
                }
            }
        }
        if let Some(conn) = held.as_mut() {
            outcome = commit_group(conn, &mut group).await;
        }
        if let Err(e) = &outcome {
            log_failure(e, group.len());
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
/// On failure the transaction is rolled back, so the connection is left
/// with none open (SQLite may or may not have rolled back by itself after
/// a failed COMMIT, e.g. on a full disk; either way nothing was written).
async fn commit_group(
    conn: &mut PoolConnection<Any>,
    group: &mut [Box<dyn Work>],
) -> Result<(), Failure> {
    let c: &mut AnyConnection = conn;
    let result = run_group(c, group).await;
    if result.is_err() {
        // Fails harmlessly when no transaction is open any more.
        let _ = exec(c, "ROLLBACK").await;
    }
    result
}

async fn run_group(c: &mut AnyConnection, group: &mut [Box<dyn Work>]) -> Result<(), Failure> {
    if let [only] = group {
        exec(c, "BEGIN").await?;
        // Alone in its transaction, a write needs no savepoint: if it
        // fails, the rollback of the whole transaction undoes just it.
        return if only.run(c).await.is_ok() {
            exec(c, "COMMIT").await
        } else {
            exec(c, "ROLLBACK").await
        };
    }
    // Each step between two writes is one text, one trip to the
    // connection's thread: the end of one write's savepoint joined with
    // the start of the next one's (or with the commit after the last).
    exec(c, "BEGIN; SAVEPOINT w").await?;
    let last = group.len() - 1;
    for (i, w) in group.iter_mut().enumerate() {
        let ran = w.run(c).await;
        let end = match (ran.is_ok(), i == last) {
            (true, false) => "RELEASE SAVEPOINT w; SAVEPOINT w",
            (true, true) => "RELEASE SAVEPOINT w; COMMIT",
            (false, false) => "ROLLBACK TO SAVEPOINT w; RELEASE SAVEPOINT w; SAVEPOINT w",
            (false, true) => "ROLLBACK TO SAVEPOINT w; RELEASE SAVEPOINT w; COMMIT",
        };
        if let Err(mut e) = exec(c, end).await {
            // SQLite may have rolled the whole transaction back after the
            // write's own error (a full disk does): the group failed for
            // that write's reason.
            if let Err(Some(kind)) = ran
                && kind != ErrorKind::Other
            {
                e.kind = kind;
            }
            return Err(e);
        }
    }
    Ok(())
}

/// Logs a failed group. A full disk or a lost database fails every group
/// until it is fixed: those are logged at once, then summarised every
/// interval (see [`Throttle`]).
fn log_failure(e: &Failure, writes: usize) {
    static REPEATS: LazyLock<Throttle> = LazyLock::new(Throttle::default);
    const WHAT: &str = "group commits failed";
    match e.kind {
        ErrorKind::Full => {
            if REPEATS.note("full", &Counter::noop(), WHAT) {
                tracing::error!(error = %e, writes,
                    "group commit failed: the database's disk is full; nothing of it was written. Free space on the database volume");
            }
        }
        ErrorKind::Unavailable => {
            if REPEATS.note("unavailable", &Counter::noop(), WHAT) {
                tracing::error!(error = %e, writes,
                    "group commit failed: the database is unavailable; nothing of it was written. Check the database file, its directory and disk");
            }
        }
        ErrorKind::Unstorable | ErrorKind::Other => {
            tracing::error!(error = %e, writes, "group commit failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Db, DbOptions, StorageError};
    use crate::domain::Role;
    use sqlx::AnyConnection;
    use tokio::sync::oneshot;

    /// Inserts counter `name`; with `fail`, then breaks a constraint, so the
    /// write fails after its insert ran.
    fn insert(
        name: &'static str,
        fail: bool,
    ) -> impl for<'c> FnOnce(&'c mut AnyConnection) -> super::BoxFuture<'c, Result<(), StorageError>>
    + Send
    + 'static {
        move |c| {
            Box::pin(async move {
                sqlx::query("INSERT INTO counters (name, value) VALUES ($1, 1)")
                    .bind(name)
                    .execute(&mut *c)
                    .await?;
                if fail {
                    sqlx::query("INSERT INTO counters (name, value) VALUES ($1, 2)")
                        .bind(name)
                        .execute(&mut *c)
                        .await?;
                }
                Ok(())
            })
        }
    }

    /// Writes queued behind a busy writer share one group (one transaction,
    /// joined savepoint steps): the one that fails, first, in the middle or
    /// last, leaves nothing behind and gets its own error; the others commit.
    #[tokio::test]
    async fn a_failing_write_fails_alone_wherever_it_is_in_its_group() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let url = format!("sqlite://{}", dir.path().join("w.db").display());
        let db = Db::open(&url, Role::Store, &DbOptions::default())
            .await
            .expect("open");
        let cases: [[(&'static str, bool); 3]; 3] = [
            [("a1", true), ("b1", false), ("c1", false)],
            [("a2", false), ("b2", true), ("c2", false)],
            [("a3", false), ("b3", false), ("c3", true)],
        ];
        for case in cases {
            // The writer waits inside this write until the others queued.
            let (go, wait) = oneshot::channel::<()>();
            let blocker = {
                let db = db.clone();
                tokio::spawn(async move {
                    db.write(move |_c| {
                        Box::pin(async move {
                            let _ = wait.await;
                            Ok::<_, StorageError>(())
                        })
                    })
                    .await
                })
            };
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            let mut writes = Vec::new();
            for (name, fail) in case {
                let db = db.clone();
                writes.push(tokio::spawn(
                    async move { db.write(insert(name, fail)).await },
                ));
                // In this order in the queue.
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
            go.send(()).expect("the blocking write waits");
            blocker.await.expect("task").expect("the blocking write");
            for ((name, fail), w) in case.into_iter().zip(writes) {
                let result = w.await.expect("task");
                assert_eq!(result.is_err(), fail, "{name}: {result:?}");
                let stored: Option<i64> =
                    sqlx::query_scalar("SELECT value FROM counters WHERE name = $1")
                        .bind(name)
                        .fetch_optional(db.reader())
                        .await
                        .expect("read");
                let expected = (!fail).then_some(1);
                assert_eq!(stored, expected, "{name}");
            }
        }
        db.close().await;
    }
}

//! Storage: one [`Db`] handle over SQLite or PostgreSQL, the migrations, and
//! a module of plain SQL per aggregate.
//!
//! Both backends run through sqlx's `Any` driver. Every statement is a
//! fixed text in the module of its aggregate, next to the function that
//! runs it: one text where both backends run the same (SQLite accepts `$1`
//! parameters; times are BIGINT microseconds (UTC) and flags BIGINT 0/1 so
//! that they can), or an [`Sql`] pair, a SQLite text and a PostgreSQL text,
//! where they differ (JSON functions, row locks). Which of a pair runs is
//! the connection's [`Dialect`], asked of it with [`Dialect::of`].
//!
//! Parameters are `$n`, except in the SQLite texts of statements that run
//! joined in a [`bulk::Script`], which take `?` (why: there). sqlx finds a
//! numbered SQLite parameter's number by name, a linear walk per
//! parameter; with rows bound as one JSON value a statement has at most a
//! few parameters (17 at most), and measured, that walk was 1-2 µs of a
//! statement's 50 µs at 17 parameters and nothing at one, so `$n` texts
//! stay shared by both dialects.
//!
//! Writes on SQLite go through a single-connection pool: SQLite has one
//! writer anyway, and serialising in-process avoids `SQLITE_BUSY` upgrades
//! of deferred transactions. That connection is opened through our own
//! driver under `Any` ([`native`]), which runs each statement in place on
//! the writer's thread instead of on a connection thread of its own. Reads
//! use their own pool of sqlx's SQLite connections (WAL lets them run
//! beside the writer).

pub mod audit;
pub mod auth;
pub mod bench;
pub mod bulk;
pub mod digests;
pub mod history;
pub mod idempotency;
#[cfg(test)]
mod index_plans;
pub mod migrate;
pub mod native;
pub mod orders;
pub mod outbox;
pub mod parts;
pub mod prune;
pub mod warehouses;
pub mod webhooks;
pub mod writer;

use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::Once;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{Any, AnyPool, Executor, Transaction};

use crate::domain::Role;

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("database error: {0}")]
    Sqlx(#[from] sqlx::Error),
    #[error("stored data is invalid ({0}); was the database edited by hand?")]
    Corrupt(String),
    #[error("the write was not committed: {0}")]
    Commit(String),
    /// The database cannot be reached or does not answer in time; nothing
    /// was written. (A [`StorageError::Sqlx`] may mean the same: ask
    /// [`StorageError::kind`].)
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
    /// The database's disk is full; nothing was written.
    #[error("the database's disk is full: {0}")]
    Full(String),
    /// The database cannot store a value it was given; nothing was written.
    #[error("the database cannot store a value: {0}")]
    Unstorable(String),
}

/// What a storage error means for whoever asked, whatever the backend: the
/// one place where sqlx's errors are sorted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The database is down, unreachable, restarting, or does not answer
    /// in time (no connection within [`ACQUIRE_TIMEOUT`]); the SQLite
    /// writer has stopped. Nothing was changed; a retry later may work.
    Unavailable,
    /// The database's disk is full (SQLITE_FULL, PostgreSQL's `disk_full`
    /// 53100). Nothing was written; it works again once space is freed.
    Full,
    /// The database cannot store a value it was given: PostgreSQL's text
    /// holds no NUL character (22021) and only characters of the
    /// database's encoding (22P05). Nothing was written; the same value
    /// would fail again. Every input is checked before it gets here (a
    /// NUL in a name is refused by its rule); this kind keeps a value some
    /// future path forgot to check a 400 instead of a 500.
    Unstorable,
    /// Anything else: a constraint, bad data, a bug.
    Other,
}

impl StorageError {
    pub fn kind(&self) -> ErrorKind {
        match self {
            StorageError::Sqlx(e) => classify(e),
            StorageError::Unavailable(_) => ErrorKind::Unavailable,
            StorageError::Full(_) => ErrorKind::Full,
            StorageError::Unstorable(_) => ErrorKind::Unstorable,
            StorageError::Corrupt(_) | StorageError::Commit(_) => ErrorKind::Other,
        }
    }

    /// An error of `kind` with the text `why` (one failure told to several
    /// callers, each with its own value).
    pub fn of_kind(kind: ErrorKind, why: String) -> StorageError {
        match kind {
            ErrorKind::Unavailable => StorageError::Unavailable(why),
            ErrorKind::Full => StorageError::Full(why),
            ErrorKind::Unstorable => StorageError::Unstorable(why),
            ErrorKind::Other => StorageError::Commit(why),
        }
    }

    /// The same failure again (same kind and text), for telling another
    /// caller about it.
    pub fn duplicate(&self) -> StorageError {
        let why = match self {
            StorageError::Unavailable(w)
            | StorageError::Full(w)
            | StorageError::Unstorable(w)
            | StorageError::Commit(w) => w.clone(),
            StorageError::Sqlx(e) => describe(e),
            StorageError::Corrupt(_) => self.to_string(),
        };
        StorageError::of_kind(self.kind(), why)
    }
}

/// Errors that may carry a [`StorageError`]: [`Db::write`] asks them what
/// kind of failure a write met (to notice a full disk).
pub trait StorageFailure {
    /// The kind of storage failure, or `None` when the error is not one
    /// (a validation error, a conflict).
    fn storage_kind(&self) -> Option<ErrorKind>;
}

impl StorageFailure for StorageError {
    fn storage_kind(&self) -> Option<ErrorKind> {
        Some(self.kind())
    }
}

/// Sorts a sqlx error into an [`ErrorKind`].
pub fn classify(e: &sqlx::Error) -> ErrorKind {
    match e {
        // Connection refused or reset, TLS, no connection in time, the
        // pool closing (the service stops), SQLite's worker thread gone.
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => ErrorKind::Unavailable,
        sqlx::Error::Database(d) => {
            if let Some(n) = d.try_downcast_ref::<native::NativeError>() {
                sqlite_kind(n.code())
            } else if d.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
                sqlite_kind(d.code().and_then(|c| c.parse().ok()).unwrap_or(0))
            } else if let Some(p) = d.try_downcast_ref::<sqlx::postgres::PgDatabaseError>() {
                postgres_kind(p.code())
            } else {
                ErrorKind::Other
            }
        }
        _ => ErrorKind::Other,
    }
}

/// SQLite result codes (extended codes carry the primary one in their low
/// byte): <https://www.sqlite.org/rescode.html>.
fn sqlite_kind(code: i32) -> ErrorKind {
    match code & 0xff {
        // SQLITE_FULL: a write could not grow the file or its WAL.
        13 => ErrorKind::Full,
        // BUSY and LOCKED (another process holds the file past the busy
        // timeout), READONLY (file or mount not writable), IOERR (the disk
        // failed), CANTOPEN (file gone, or no file descriptor left).
        5 | 6 | 8 | 10 | 14 => ErrorKind::Unavailable,
        _ => ErrorKind::Other,
    }
}

/// PostgreSQL SQLSTATEs: <https://www.postgresql.org/docs/current/errcodes-appendix.html>.
fn postgres_kind(sqlstate: &str) -> ErrorKind {
    match sqlstate {
        "53100" => ErrorKind::Full,
        // Class 08: connection exceptions; 57P01-57P03: the server shuts
        // down, crashed or is starting; 53300: too many connections;
        // 25006: a read-only server (a standby) refuses writes.
        s if s.starts_with("08") => ErrorKind::Unavailable,
        "57P01" | "57P02" | "57P03" | "53300" | "25006" => ErrorKind::Unavailable,
        // character_not_in_repertoire (a NUL in text), untranslatable_character.
        "22021" | "22P05" => ErrorKind::Unstorable,
        _ => ErrorKind::Other,
    }
}

/// Longest a request waits for a database connection. A database that is
/// down is noticed in this time instead of hanging the request (sqlx
/// retries a refused connection until then).
pub const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(3);

/// Longest the readiness probe waits for its write.
pub const READY_TIMEOUT: Duration = Duration::from_secs(2);

/// What the readiness probe writes beside a SQLite database, while its
/// disk is full, to learn whether space was freed.
const SPACE_PROBE_BYTES: usize = 1024 * 1024;

pub type Result<T, E = StorageError> = std::result::Result<T, E>;

/// Which SQL a database runs: SQLite's or PostgreSQL's.
///
/// A statement function, which holds only a connection, asks it with
/// [`Dialect::of`] (the one place that looks at sqlx's driver); code that
/// holds no connection (whether to vacuum, to listen) asks the [`Db`], which
/// opened every connection it hands out for its URL's dialect
/// ([`Db::dialect`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

impl Dialect {
    /// The dialect of the database `c` talks to.
    pub fn of(c: &sqlx::AnyConnection) -> Dialect {
        if c.backend_name().eq_ignore_ascii_case("postgresql") {
            Dialect::Postgres
        } else {
            Dialect::Sqlite
        }
    }
}

/// One statement whose text differs between the dialects, as two fixed
/// texts. (A statement both run alike is a plain string.) Both texts take
/// the same arguments in the same order.
#[derive(Debug, Clone, Copy)]
pub struct Sql {
    pub sqlite: &'static str,
    pub postgres: &'static str,
}

impl Sql {
    /// The text `c`'s database runs.
    pub fn on(&self, c: &sqlx::AnyConnection) -> &'static str {
        self.text(Dialect::of(c))
    }

    pub fn text(&self, dialect: Dialect) -> &'static str {
        match dialect {
            Dialect::Sqlite => self.sqlite,
            Dialect::Postgres => self.postgres,
        }
    }
}

/// SQLite's durability setting. `Full` makes every acknowledged commit
/// survive a power cut; `Normal` in WAL mode may lose the last commits on
/// power loss (never on a process crash) and is several times faster.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, Default)]
pub enum SqliteSync {
    #[default]
    Full,
    Normal,
}

impl SqliteSync {
    /// The pragma that sets it.
    fn pragma(self) -> &'static str {
        match self {
            SqliteSync::Full => "PRAGMA synchronous = FULL",
            SqliteSync::Normal => "PRAGMA synchronous = NORMAL",
        }
    }
}

/// Every SQLite connection's settings (with [`SqliteSync::pragma`]).
const SQLITE_PRAGMAS: &str =
    "PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 10000; PRAGMA foreign_keys = ON";

/// The writer's: statement journals in memory (why: in `Db::connect`), and
/// a checkpoint every 4,000 WAL pages (16 MiB) instead of SQLite's 1,000.
/// A checkpoint copies every page changed since the last one into the
/// database file and fsyncs it, on the writer's thread, between two
/// commits: under e2e load that was 7 % of the writer's time. The pages
/// an order touches are mostly the same few (the right edge of each
/// index, the counters), so four times fewer checkpoints copy them
/// about four times less often, for a WAL file of up to 16 MiB.
const WRITER_PRAGMAS: &str = "PRAGMA temp_store = MEMORY; PRAGMA wal_autocheckpoint = 4000";

/// Each reader's: a page cache of 512 KiB.
const READER_PRAGMAS: &str = "PRAGMA cache_size = -512";

#[derive(Debug, Clone)]
pub struct DbOptions {
    pub sqlite_synchronous: SqliteSync,
    /// Pool size for reads (and for writes on PostgreSQL).
    pub max_connections: u32,
}

impl Default for DbOptions {
    fn default() -> Self {
        Self {
            sqlite_synchronous: SqliteSync::Full,
            max_connections: 8,
        }
    }
}

/// A connected database, migrated for one role.
#[derive(Clone, Debug)]
pub struct Db {
    read: AnyPool,
    write: AnyPool,
    /// SQLite's group-commit writer; `None` on PostgreSQL.
    queue: Option<writer::Queue>,
    dialect: Dialect,
    url_for_listen: Option<String>,
    /// The SQLite file (`None` on PostgreSQL).
    sqlite_path: Option<PathBuf>,
    health: Arc<Health>,
    /// The store's order numbers (see there).
    numbers: Arc<orders::OrderNumbers>,
    /// Sends PostgreSQL's wake-ups after the commits that asked for them
    /// (see [`outbox::notify`]); `None` on SQLite.
    notifier: Option<Arc<outbox::Notifier>>,
}

/// What the write path has learnt about the database, for readiness.
#[derive(Debug, Default)]
struct Health {
    /// A write failed for lack of space; cleared by a readiness probe
    /// whose own write needed new space and got it.
    full: AtomicBool,
}

/// Why the database does not take writes, as the readiness probe found.
#[derive(Debug, thiserror::Error)]
pub enum NotReady {
    #[error(
        "storage full: writes fail because the database's disk is full; free space on the database volume (readiness returns by itself once a write fits)"
    )]
    Full,
    #[error("the database does not take writes ({0}); check that it is running and reachable")]
    Unavailable(String),
    #[error(
        "the database did not take a write within {} s; check that it is running and not overloaded",
        READY_TIMEOUT.as_secs()
    )]
    TimedOut,
    #[error("a test write failed ({0}); see the service's log")]
    Failed(String),
}

pub type Tx = Transaction<'static, Any>;

/// Why a database could not be opened, phrased for a one-line CLI error.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("unsupported database URL (use sqlite://PATH or postgres://USER@HOST/DB)")]
    BadUrl,
    #[error("cannot open the database: {0}")]
    Unreachable(String),
    #[error("cannot migrate the database: {0}")]
    Migrate(String),
    #[error("{0}")]
    WrongRole(String),
}

/// Installs the database drivers `Any` connections choose from (sqlx's and
/// the writer's [`native`] one); code that opens its own `Any` connections
/// calls this, not sqlx's `install_default_drivers`, which would refuse to
/// run after it.
pub fn install_drivers() {
    static ONCE: Once = Once::new();
    // sqlx's drivers, and the writer's in-place SQLite driver beside them.
    ONCE.call_once(|| {
        let drivers = &[
            sqlx::postgres::any::DRIVER,
            sqlx::sqlite::any::DRIVER,
            native::DRIVER,
        ];
        if sqlx::any::install_drivers(drivers).is_err() {
            // Installed already by other code of this process (sqlx's
            // defaults): a SQLite writer then cannot open.
            tracing::warn!(
                "database drivers were installed before the storage layer's; SQLite databases cannot be written. Call fulfillment::storage::install_drivers before opening any connection"
            );
        }
    });
}

/// Adds `mode=rwc` to SQLite URLs so the file is created when missing.
fn normalise_url(url: &str) -> Result<(Dialect, String), ConnectError> {
    if let Some(rest) = url.strip_prefix("sqlite:") {
        let path = rest.trim_start_matches("//");
        if path.is_empty() {
            return Err(ConnectError::BadUrl);
        }
        let sep = if url.contains('?') { '&' } else { '?' };
        let with_mode = if url.contains("mode=") {
            url.to_owned()
        } else {
            format!("{url}{sep}mode=rwc")
        };
        Ok((Dialect::Sqlite, with_mode))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok((Dialect::Postgres, url.to_owned()))
    } else {
        Err(ConnectError::BadUrl)
    }
}

impl Db {
    /// Opens the database and applies the role's migrations.
    pub async fn open(url: &str, role: Role, opts: &DbOptions) -> Result<Db, ConnectError> {
        let db = Self::connect(url, opts).await?;
        migrate::run(&db, role).await?;
        Ok(db)
    }

    async fn connect(url: &str, opts: &DbOptions) -> Result<Db, ConnectError> {
        install_drivers();
        let (dialect, url) = normalise_url(url)?;
        let connect_opts = AnyConnectOptions::from_str(&url).map_err(|_| ConnectError::BadUrl)?;
        let unreachable = |e: sqlx::Error| ConnectError::Unreachable(describe(&e));
        match dialect {
            Dialect::Sqlite => {
                let sync = opts.sqlite_synchronous.pragma();
                // Fixed texts, sent together once per connection.
                let pool = |n: u32, own: &'static str| {
                    let pragmas = [SQLITE_PRAGMAS, sync, own].join("; ");
                    AnyPoolOptions::new()
                        .max_connections(n)
                        .min_connections(1)
                        .acquire_timeout(ACQUIRE_TIMEOUT)
                        // A local file does not drop connections; a ping
                        // before each use would be one more round trip to
                        // the connection's thread for every request.
                        .test_before_acquire(false)
                        .after_connect(move |conn, _| {
                            let pragmas = pragmas.clone();
                            Box::pin(async move {
                                conn.execute(sqlx::raw_sql(&pragmas)).await?;
                                Ok(())
                            })
                        })
                };
                // The writer first: it creates the file and switches it to WAL
                // before readers open it.
                // Its statement journals (the undo of each savepoint and of
                // each multi-row statement) stay in memory: by default one
                // larger than 64 KiB spills to a temporary file, and those
                // writes were 4 % of a store's CPU under load.
                let writer_url = native::url_of(&url).ok_or(ConnectError::BadUrl)?;
                let writer_opts =
                    AnyConnectOptions::from_str(&writer_url).map_err(|_| ConnectError::BadUrl)?;
                let write = pool(1, WRITER_PRAGMAS)
                    .connect_with(writer_opts)
                    .await
                    .map_err(unreachable)?;
                // Readers keep a small page cache each (the writer keeps
                // SQLite's default 2 MiB): the relay's reads go round the
                // pool, and eight full caches were most of a warehouse's
                // memory; a page missing from one is a read from the OS's
                // file cache. Idle readers close after a while.
                let read = pool(opts.max_connections.max(1), READER_PRAGMAS)
                    .idle_timeout(Duration::from_secs(60))
                    .connect_with(connect_opts)
                    .await
                    .map_err(unreachable)?;
                Ok(Db {
                    queue: Some(writer::start(write.clone()).map_err(|e| {
                        ConnectError::Unreachable(format!("cannot start the database writer: {e}"))
                    })?),
                    read,
                    write,
                    dialect,
                    url_for_listen: None,
                    sqlite_path: sqlite_file(&url),
                    health: Arc::default(),
                    numbers: Arc::default(),
                    notifier: None,
                })
            }
            Dialect::Postgres => {
                // One direct attempt first: the pool would retry a refused
                // connection until its acquire timeout, and a wrong URL
                // deserves an answer now.
                let probe = <sqlx::AnyConnection as sqlx::Connection>::connect_with(&connect_opts)
                    .await
                    .map_err(unreachable)?;
                let _ = sqlx::Connection::close(probe).await;
                let pool = AnyPoolOptions::new()
                    .max_connections(opts.max_connections.max(2))
                    .acquire_timeout(ACQUIRE_TIMEOUT)
                    .connect_with(connect_opts)
                    .await
                    .map_err(unreachable)?;
                Ok(Db {
                    queue: None,
                    notifier: Some(outbox::Notifier::start(pool.clone())),
                    read: pool.clone(),
                    write: pool,
                    dialect,
                    url_for_listen: Some(url),
                    sqlite_path: None,
                    health: Arc::default(),
                    numbers: Arc::default(),
                })
            }
        }
    }

    /// The dialect of every connection this database hands out (what
    /// [`Dialect::of`] answers for them), for decisions taken without one.
    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// Where the store's order numbers come from: shared by every write
    /// through this handle.
    pub fn order_numbers(&self) -> &Arc<orders::OrderNumbers> {
        &self.numbers
    }

    /// The pool for reads that need no transaction.
    pub fn reader(&self) -> &AnyPool {
        &self.read
    }

    /// Starts a write transaction of its own, outside the writer's groups:
    /// only for storage's bulk work (the bench's fixtures). Every other
    /// write goes through [`Db::write`], the one write path.
    pub(in crate::storage) async fn begin(&self) -> Result<Tx> {
        // On SQLite the writer holds the one write connection between
        // groups; it hands it back once asked.
        let _borrow = self.queue.as_ref().map(writer::Queue::borrow);
        Ok(self.write.begin().await?)
    }

    /// Runs `f` in a write transaction and answers once it is durable.
    ///
    /// On SQLite, concurrent writes share one transaction and one fsync
    /// (group commit, see [`writer`]); each runs in its own savepoint, so a
    /// write that fails changes nothing and does not affect the others. On
    /// PostgreSQL each write is its own transaction: the server already
    /// shares WAL flushes between concurrent commits, and writers of the
    /// same order queue on row locks.
    ///
    /// A database that cannot be reached fails the write within
    /// [`ACQUIRE_TIMEOUT`] with an error of [`ErrorKind::Unavailable`]; a
    /// full disk with [`ErrorKind::Full`] (and readiness reports it).
    pub async fn write<T, E, F>(&self, f: F) -> std::result::Result<T, E>
    where
        T: Send + 'static,
        E: From<StorageError> + StorageFailure + Send + 'static,
        F: for<'c> FnOnce(
                &'c mut sqlx::AnyConnection,
            ) -> writer::BoxFuture<'c, std::result::Result<T, E>>
            + Send
            + 'static,
    {
        let result = self.write_unchecked(f).await;
        if let Err(e) = &result
            && e.storage_kind() == Some(ErrorKind::Full)
        {
            self.health.full.store(true, Ordering::Relaxed);
        }
        result
    }

    async fn write_unchecked<T, E, F>(&self, f: F) -> std::result::Result<T, E>
    where
        T: Send + 'static,
        E: From<StorageError> + StorageFailure + Send + 'static,
        F: for<'c> FnOnce(
                &'c mut sqlx::AnyConnection,
            ) -> writer::BoxFuture<'c, std::result::Result<T, E>>
            + Send
            + 'static,
    {
        let stopped = || E::from(StorageError::Unavailable(writer::STOPPED.into()));
        match &self.queue {
            Some(queue) => {
                let (reply, answer) = tokio::sync::oneshot::channel();
                queue
                    .work
                    .send(Box::new(writer::Task::new(f, reply)))
                    .await
                    .map_err(|_| stopped())?;
                answer.await.map_err(|_| stopped())?
            }
            None => {
                let (result, wake) = outbox::after_commit(async {
                    let mut tx = self.write.begin().await.map_err(|e| E::from(e.into()))?;
                    match f(&mut tx).await {
                        Ok(v) => {
                            tx.commit().await.map_err(|e| E::from(e.into()))?;
                            Ok(v)
                        }
                        Err(e) => {
                            let _ = tx.rollback().await;
                            Err(e)
                        }
                    }
                })
                .await;
                if result.is_ok()
                    && let Some(notifier) = &self.notifier
                {
                    notifier.send(wake);
                }
                result
            }
        }
    }

    /// Whether the database takes writes: a probe through the same write
    /// path requests use ([`Db::write`]: on SQLite the group-commit
    /// writer), answered within [`READY_TIMEOUT`].
    ///
    /// After a write failed for lack of space, the probe makes sure space
    /// is back before it answers ready: on SQLite it first writes
    /// [`SPACE_PROBE_BYTES`] to a scratch file beside the database (and
    /// removes it), then both backends make a small real write. So
    /// readiness returns by itself once space is freed, without waiting
    /// for a client's write.
    pub async fn check_ready(&self) -> std::result::Result<(), NotReady> {
        match tokio::time::timeout(READY_TIMEOUT, self.probe()).await {
            Ok(r) => r,
            Err(_) => Err(NotReady::TimedOut),
        }
    }

    async fn probe(&self) -> std::result::Result<(), NotReady> {
        let not_ready = |e: StorageError| {
            let why = match &e {
                StorageError::Sqlx(x) => describe(x),
                other => other.to_string(),
            };
            match e.kind() {
                ErrorKind::Full => NotReady::Full,
                ErrorKind::Unavailable => NotReady::Unavailable(why),
                ErrorKind::Unstorable | ErrorKind::Other => NotReady::Failed(why),
            }
        };
        if !self.health.full.load(Ordering::Relaxed) {
            // A transaction through the writer that writes nothing: the
            // write path works, at the cost of no disk write.
            return self
                .write(|c| {
                    Box::pin(async move {
                        sqlx::query("SELECT 1").execute(&mut *c).await?;
                        Ok::<_, StorageError>(())
                    })
                })
                .await
                .map_err(not_ready);
        }
        if let Some(path) = &self.sqlite_path {
            let scratch = path.with_file_name(format!(
                "{}.space-probe",
                path.file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default()
            ));
            let wrote = tokio::task::spawn_blocking(move || space_probe(&scratch))
                .await
                .unwrap_or_else(|e| Err(std::io::Error::other(e)));
            match wrote {
                Ok(()) => {}
                Err(e) if is_out_of_space(&e) => return Err(NotReady::Full),
                Err(e) => {
                    return Err(NotReady::Failed(format!(
                        "cannot write beside the database file: {e}"
                    )));
                }
            }
        }
        // A real write (the role row, rewritten unchanged): a new WAL frame
        // on SQLite, a new row version on PostgreSQL.
        self.write(|c| {
            Box::pin(async move {
                sqlx::query("UPDATE service_meta SET value = value WHERE key = 'role'")
                    .execute(&mut *c)
                    .await?;
                Ok::<_, StorageError>(())
            })
        })
        .await
        .map_err(not_ready)?;
        self.health.full.store(false, Ordering::Relaxed);
        tracing::info!("the database takes writes again (its disk had been full)");
        Ok(())
    }

    /// The URL to open a LISTEN connection with (PostgreSQL only).
    pub fn listen_url(&self) -> Option<&str> {
        self.url_for_listen.as_deref()
    }

    pub async fn close(&self) {
        self.read.close().await;
        // The writer lets go of its connection for good: the pool is closed.
        let _borrow = self.queue.as_ref().map(writer::Queue::borrow);
        self.write.close().await;
    }
}

/// The file of a (normalised) SQLite URL; `None` for an in-memory one.
fn sqlite_file(url: &str) -> Option<PathBuf> {
    let rest = url.strip_prefix("sqlite:")?;
    let path = rest.trim_start_matches("//");
    let path = path.split('?').next().unwrap_or(path);
    (!path.is_empty() && !path.starts_with(':')).then(|| PathBuf::from(path))
}

/// Writes `len` bytes to `path`, flushes them to disk and removes the file.
fn space_probe(path: &std::path::Path) -> std::io::Result<()> {
    use std::io::Write;
    let result = (|| {
        let mut f = std::fs::File::create(path)?;
        f.write_all(&vec![0x55; SPACE_PROBE_BYTES])?;
        f.sync_all()
    })();
    let _ = std::fs::remove_file(path);
    result
}

fn is_out_of_space(e: &std::io::Error) -> bool {
    e.kind() == std::io::ErrorKind::StorageFull || e.raw_os_error() == Some(libc::ENOSPC)
}

/// A short description of a database error without the URL (which may hold
/// a password).
fn describe(e: &sqlx::Error) -> String {
    match e {
        sqlx::Error::Io(io) => format!("{io}; is the server running and the address right?"),
        sqlx::Error::Database(d) => d.message().to_owned(),
        sqlx::Error::PoolTimedOut => {
            "timed out connecting; is the server running and the address right?".into()
        }
        other => other.to_string(),
    }
}

/// Now, as stored: microseconds since the Unix epoch.
pub fn now_micros() -> i64 {
    Utc::now().timestamp_micros()
}

pub fn to_micros(t: DateTime<Utc>) -> i64 {
    t.timestamp_micros()
}

pub fn from_micros(us: i64) -> DateTime<Utc> {
    Utc.timestamp_micros(us).single().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert!(
            matches!(normalise_url("sqlite://a.db"), Ok((Dialect::Sqlite, u)) if u == "sqlite://a.db?mode=rwc")
        );
        assert!(
            matches!(normalise_url("sqlite:///tmp/a.db"), Ok((Dialect::Sqlite, u)) if u == "sqlite:///tmp/a.db?mode=rwc")
        );
        assert!(matches!(
            normalise_url("postgres://u@h/db"),
            Ok((Dialect::Postgres, _))
        ));
        assert!(normalise_url("mysql://x").is_err());
        assert!(normalise_url("sqlite://").is_err());
    }

    #[test]
    fn error_kinds() {
        assert_eq!(sqlite_kind(13), ErrorKind::Full);
        assert_eq!(sqlite_kind(10 | (3 << 8)), ErrorKind::Unavailable); // IOERR_WRITE
        assert_eq!(sqlite_kind(14), ErrorKind::Unavailable);
        assert_eq!(sqlite_kind(2067), ErrorKind::Other); // CONSTRAINT_UNIQUE
        assert_eq!(postgres_kind("53100"), ErrorKind::Full);
        assert_eq!(postgres_kind("57P01"), ErrorKind::Unavailable);
        assert_eq!(postgres_kind("08006"), ErrorKind::Unavailable);
        assert_eq!(postgres_kind("23505"), ErrorKind::Other);
        assert_eq!(postgres_kind("22021"), ErrorKind::Unstorable);
        assert_eq!(
            StorageError::Unstorable("x".into()).duplicate().kind(),
            ErrorKind::Unstorable
        );
        assert_eq!(classify(&sqlx::Error::PoolTimedOut), ErrorKind::Unavailable);
        let e = StorageError::Full("x".into());
        assert_eq!(e.duplicate().kind(), ErrorKind::Full);
        assert_eq!(
            StorageError::Sqlx(sqlx::Error::PoolTimedOut)
                .duplicate()
                .kind(),
            ErrorKind::Unavailable
        );
    }

    #[tokio::test]
    async fn a_db_and_its_connections_agree_on_the_dialect() {
        let dir = tempfile::tempdir().expect("temporary directory");
        let url = format!("sqlite://{}", dir.path().join("d.db").display());
        let db = Db::open(&url, Role::Store, &DbOptions::default())
            .await
            .expect("open");
        assert_eq!(db.dialect(), Dialect::Sqlite);
        let c = db.reader().acquire().await.expect("connection");
        assert_eq!(Dialect::of(&c), db.dialect());
        assert_eq!(WHICH.on(&c), "sqlite");
        drop(c);
        db.close().await;
    }

    const WHICH: Sql = Sql {
        sqlite: "sqlite",
        postgres: "postgres",
    };

    #[test]
    fn sqlite_files() {
        assert_eq!(
            sqlite_file("sqlite:///tmp/a.db?mode=rwc"),
            Some(PathBuf::from("/tmp/a.db"))
        );
        assert_eq!(
            sqlite_file("sqlite://rel.db?mode=rwc"),
            Some(PathBuf::from("rel.db"))
        );
        assert_eq!(sqlite_file("sqlite::memory:"), None);
        assert_eq!(sqlite_file("postgres://u@h/db"), None);
    }
}

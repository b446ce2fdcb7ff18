//! The writer's SQLite connection, run in place: a driver for sqlx's `Any`
//! layer whose statements run on the thread that asks, through SQLite's C
//! API ([`sqlite`]), instead of being sent to a connection thread and
//! waited for.
//!
//! sqlx's own SQLite driver runs each connection on a thread of its own:
//! every statement is a message to that thread and a wake-up back, two
//! context switches or more. For readers that is right (several run at
//! once, beside the async workers). For the one writer it was most of the
//! cost of a write: under load the writer's connection thread was its
//! busiest thread, and at 500 orders/s it switched 11 times per order. The
//! group-commit writer ([`super::writer`]) runs on a thread of its own and
//! drives each group's writes there; with this driver, their statements run
//! on that thread too, one after another, with no hand-off at all.
//!
//! The driver answers through sqlx's `Any` types, so every statement of the
//! storage layer (written against `AnyConnection`, decoded from `AnyRow`)
//! runs on it unchanged, and errors classify as SQLite's do
//! ([`NativeError`] carries the extended result code). It is reached by its
//! own URL scheme ([`SCHEME`]), which only [`super::Db`] uses, for its
//! writer pool; the service's URL stays `sqlite://`.
//!
//! sqlx's `Database` trait asks a driver for types of its own (rows,
//! values, statements) that only its typed API would use; this driver is
//! only ever used through `Any`, so those are empty types that cannot be
//! made (`enum {}`), and the arguments are `Any`'s own values.

mod sqlite;
#[cfg(test)]
mod tests;

use std::borrow::Cow;
use std::marker::PhantomData;
use std::pin::Pin;
use std::str::FromStr;
use std::task::{Context, Poll};
use std::time::Duration;

use futures_core::future::BoxFuture;
use futures_core::stream::{BoxStream, Stream};
use log::LevelFilter;
use sqlx_core::any::{
    Any, AnyArguments, AnyConnectOptions, AnyConnectionBackend, AnyQueryResult, AnyRow,
    AnyStatement, AnyTypeInfo, AnyValueKind,
};
use sqlx_core::arguments::Arguments;
use sqlx_core::column::{Column, ColumnIndex};
use sqlx_core::connection::{ConnectOptions, Connection};
use sqlx_core::database::Database;
use sqlx_core::describe::Describe;
use sqlx_core::encode::{Encode, IsNull};
use sqlx_core::error::BoxDynError;
use sqlx_core::row::Row;
use sqlx_core::statement::Statement;
use sqlx_core::transaction::{Transaction, TransactionManager};
use sqlx_core::types::Type;
use sqlx_core::value::{Value, ValueRef};
use sqlx_core::{Either, Error};

pub use sqlite::NativeError;

/// The URL scheme of the native driver (`sqlite-native://PATH`, otherwise
/// as `sqlite://`).
pub const SCHEME: &str = "sqlite-native";

/// The driver, to install beside sqlx's.
pub const DRIVER: sqlx_core::any::driver::AnyDriver =
    sqlx_core::any::driver::AnyDriver::without_migrate::<NativeSqlite>();

/// `url` (a `sqlite:` URL) for the native driver.
pub fn url_of(sqlite_url: &str) -> Option<String> {
    sqlite_url
        .strip_prefix("sqlite:")
        .map(|rest| format!("{SCHEME}:{rest}"))
}

/// The native SQLite driver (see the module's documentation).
#[derive(Debug)]
pub struct NativeSqlite;

impl Database for NativeSqlite {
    type Connection = NativeConnection;
    type TransactionManager = NativeTransactions;
    type Row = NoRow;
    type QueryResult = AnyQueryResult;
    type Column = NoColumn;
    type TypeInfo = AnyTypeInfo;
    type Value = NoValue;
    type ValueRef<'r> = NoValueRef<'r>;
    type Arguments<'q> = NativeArguments<'q>;
    type ArgumentBuffer<'q> = Vec<AnyValueKind<'q>>;
    type Statement<'q> = NoStatement<'q>;
    /// As sqlx's SQLite driver: code that asks a connection its backend
    /// (the storage layer's dialect) sees SQLite.
    const NAME: &'static str = "SQLite";
    const URL_SCHEMES: &'static [&'static str] = &[SCHEME];
}

/// How to open the database: an SQLite URI filename.
#[derive(Debug, Clone)]
pub struct NativeOptions {
    uri: String,
}

impl NativeOptions {
    /// Reads a `sqlite-native:` URL as sqlx reads the `sqlite:` one (so the
    /// writer and the readers open the same file alike, and a URL sqlx
    /// refuses is refused here too), as an SQLite URI.
    fn parse(url: &str) -> Result<Self, Error> {
        let rest = url
            .strip_prefix(SCHEME)
            .and_then(|r| r.strip_prefix(':'))
            .ok_or_else(|| Error::Configuration(format!("not a {SCHEME}: URL").into()))?;
        let sqlite_url = format!("sqlite:{rest}");
        let parsed = sqlx::sqlite::SqliteConnectOptions::from_str(&sqlite_url)?;
        let file = parsed.get_filename().to_string_lossy().into_owned();
        let query = url::Url::parse(&sqlite_url)
            .map(|u| {
                u.query_pairs()
                    .map(|(k, v)| (k.into_owned(), v.into_owned()))
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default();
        Ok(NativeOptions {
            uri: sqlite_uri(&file, &query),
        })
    }
}

/// The SQLite URI (<https://www.sqlite.org/uri.html>) for `file` with the
/// parameters both understand: `mode` (`rw` when none is given, as sqlx),
/// `cache`, `immutable` and `vfs`.
fn sqlite_uri(file: &str, query: &[(String, String)]) -> String {
    if file == ":memory:" {
        return file.to_owned();
    }
    let mut uri = String::from("file:");
    for b in file.bytes() {
        if b.is_ascii_alphanumeric() || b"/._-~".contains(&b) {
            uri.push(char::from(b));
        } else {
            uri.push_str(&format!("%{b:02X}"));
        }
    }
    let mut mode = "rw".to_owned();
    let mut params = Vec::new();
    for (k, v) in query {
        match k.as_str() {
            "mode" => mode.clone_from(v),
            "cache" | "vfs" => params.push(format!("{k}={v}")),
            "immutable" => params.push(format!("immutable={}", u8::from(v == "true" || v == "1"))),
            _ => {}
        }
    }
    uri.push_str("?mode=");
    uri.push_str(&mode);
    for p in params {
        uri.push('&');
        uri.push_str(&p);
    }
    uri
}

impl FromStr for NativeOptions {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        Self::parse(s)
    }
}

impl TryFrom<&AnyConnectOptions> for NativeOptions {
    type Error = Error;

    fn try_from(opts: &AnyConnectOptions) -> Result<Self, Error> {
        Self::parse(opts.database_url.as_str())
    }
}

impl ConnectOptions for NativeOptions {
    type Connection = NativeConnection;

    fn from_url(url: &url::Url) -> Result<Self, Error> {
        Self::parse(url.as_str())
    }

    fn connect(&self) -> BoxFuture<'_, Result<NativeConnection, Error>> {
        Box::pin(async move {
            Ok(NativeConnection {
                conn: sqlite::Conn::open(&self.uri)?,
                depth: 0,
            })
        })
    }

    /// Statements are not logged one by one (the service logs its
    /// operations; a statement's text says little and its values may be
    /// customers' data).
    fn log_statements(self, _level: LevelFilter) -> Self {
        self
    }

    fn log_slow_statements(self, _level: LevelFilter, _duration: Duration) -> Self {
        self
    }
}

/// An open connection; every call runs to its end before it returns.
pub struct NativeConnection {
    conn: sqlite::Conn,
    /// Transactions opened through sqlx's transaction API (the writer's own
    /// `BEGIN`s are plain statements and do not count, as with sqlx).
    depth: usize,
}

impl std::fmt::Debug for NativeConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NativeConnection")
            .field("depth", &self.depth)
            .finish_non_exhaustive()
    }
}

impl NativeConnection {
    /// Runs `sql` without arguments and without keeping it prepared.
    fn exec(&mut self, sql: &str) -> Result<(), Error> {
        self.conn.run(sql, false, &[], false, &mut Vec::new())
    }

    fn answers(
        &mut self,
        sql: &str,
        persistent: bool,
        arguments: Option<AnyArguments<'_>>,
        first_row: bool,
    ) -> Vec<Result<sqlite::Answer, Error>> {
        // As sqlx: only a statement with arguments is kept prepared (one
        // without is a one-off text: pragmas, `BEGIN`).
        let persistent = persistent && arguments.is_some();
        let args = arguments.map(|a| a.values.0).unwrap_or_default();
        let mut out = Vec::new();
        let result = self.conn.run(sql, persistent, &args, first_row, &mut out);
        let mut answers: Vec<_> = out.into_iter().map(Ok).collect();
        if let Err(e) = result {
            answers.push(Err(e));
        }
        answers
    }
}

/// Answers already computed, as the stream sqlx expects.
struct Ready<T>(std::vec::IntoIter<T>);

impl<T> Stream for Ready<T>
where
    T: Unpin,
{
    type Item = T;

    fn poll_next(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Option<T>> {
        Poll::Ready(self.0.next())
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.0.size_hint()
    }
}

impl AnyConnectionBackend for NativeConnection {
    fn name(&self) -> &str {
        NativeSqlite::NAME
    }

    fn close(self: Box<Self>) -> BoxFuture<'static, Result<(), Error>> {
        drop(self);
        Box::pin(async { Ok(()) })
    }

    fn close_hard(self: Box<Self>) -> BoxFuture<'static, Result<(), Error>> {
        drop(self);
        Box::pin(async { Ok(()) })
    }

    fn ping(&mut self) -> BoxFuture<'_, Result<(), Error>> {
        Box::pin(async move { self.exec("SELECT 1") })
    }

    fn begin(&mut self, statement: Option<Cow<'static, str>>) -> BoxFuture<'_, Result<(), Error>> {
        NativeTransactions::begin(self, statement)
    }

    fn commit(&mut self) -> BoxFuture<'_, Result<(), Error>> {
        NativeTransactions::commit(self)
    }

    fn rollback(&mut self) -> BoxFuture<'_, Result<(), Error>> {
        NativeTransactions::rollback(self)
    }

    fn start_rollback(&mut self) {
        NativeTransactions::start_rollback(self);
    }

    fn get_transaction_depth(&self) -> usize {
        self.depth
    }

    fn shrink_buffers(&mut self) {}

    fn flush(&mut self) -> BoxFuture<'_, Result<(), Error>> {
        Box::pin(async { Ok(()) })
    }

    fn should_flush(&self) -> bool {
        false
    }

    fn fetch_many<'q>(
        &'q mut self,
        query: &'q str,
        persistent: bool,
        arguments: Option<AnyArguments<'q>>,
    ) -> BoxStream<'q, Result<Either<AnyQueryResult, AnyRow>, Error>> {
        let answers = self.answers(query, persistent, arguments, false);
        Box::pin(Ready(answers.into_iter()))
    }

    fn fetch_optional<'q>(
        &'q mut self,
        query: &'q str,
        persistent: bool,
        arguments: Option<AnyArguments<'q>>,
    ) -> BoxFuture<'q, Result<Option<AnyRow>, Error>> {
        let answers = self.answers(query, persistent, arguments, true);
        Box::pin(async move {
            for answer in answers {
                if let Either::Right(row) = answer? {
                    return Ok(Some(row));
                }
            }
            Ok(None)
        })
    }

    fn prepare_with<'c, 'q: 'c>(
        &'c mut self,
        _sql: &'q str,
        _parameters: &[AnyTypeInfo],
    ) -> BoxFuture<'c, Result<AnyStatement<'q>, Error>> {
        Box::pin(async { Err(unsupported("prepared statement objects")) })
    }

    fn describe<'q>(&'q mut self, _sql: &'q str) -> BoxFuture<'q, Result<Describe<Any>, Error>> {
        Box::pin(async { Err(unsupported("describing statements")) })
    }
}

fn unsupported(what: &str) -> Error {
    Error::Configuration(
        format!("the writer's native SQLite connection does not offer {what}; use a reader").into(),
    )
}

impl Connection for NativeConnection {
    type Database = NativeSqlite;
    type Options = NativeOptions;

    fn close(self) -> BoxFuture<'static, Result<(), Error>> {
        AnyConnectionBackend::close(Box::new(self))
    }

    fn close_hard(self) -> BoxFuture<'static, Result<(), Error>> {
        AnyConnectionBackend::close_hard(Box::new(self))
    }

    fn ping(&mut self) -> BoxFuture<'_, Result<(), Error>> {
        AnyConnectionBackend::ping(self)
    }

    fn begin(&mut self) -> BoxFuture<'_, Result<Transaction<'_, NativeSqlite>, Error>> {
        Transaction::begin(self, None)
    }

    fn shrink_buffers(&mut self) {}

    fn flush(&mut self) -> BoxFuture<'_, Result<(), Error>> {
        Box::pin(async { Ok(()) })
    }

    fn should_flush(&self) -> bool {
        false
    }
}

/// sqlx's transactions on the native connection: `BEGIN` at the outside,
/// savepoints inside (named as sqlx's SQLite driver names them).
pub struct NativeTransactions;

impl TransactionManager for NativeTransactions {
    type Database = NativeSqlite;

    fn begin<'c>(
        conn: &'c mut NativeConnection,
        statement: Option<Cow<'static, str>>,
    ) -> BoxFuture<'c, Result<(), Error>> {
        Box::pin(async move {
            let sql = match (statement, conn.depth) {
                (Some(s), 0) => s,
                (Some(_), _) => {
                    return Err(Error::InvalidSavePointStatement);
                }
                (None, 0) => Cow::Borrowed("BEGIN"),
                (None, d) => Cow::Owned(format!("SAVEPOINT _sqlx_savepoint_{d}")),
            };
            conn.exec(&sql)?;
            if !conn.conn.in_transaction() {
                return Err(Error::BeginFailed);
            }
            conn.depth += 1;
            Ok(())
        })
    }

    fn commit(conn: &mut NativeConnection) -> BoxFuture<'_, Result<(), Error>> {
        Box::pin(async move { end(conn, "COMMIT", "RELEASE SAVEPOINT") })
    }

    fn rollback(conn: &mut NativeConnection) -> BoxFuture<'_, Result<(), Error>> {
        Box::pin(async move { end(conn, "ROLLBACK", "ROLLBACK TO SAVEPOINT") })
    }

    fn start_rollback(conn: &mut NativeConnection) {
        // Runs at once (nothing is waited for here); a failed rollback
        // leaves SQLite to end the transaction when the connection closes.
        let _ = end(conn, "ROLLBACK", "ROLLBACK TO SAVEPOINT");
    }

    fn get_transaction_depth(conn: &NativeConnection) -> usize {
        conn.depth
    }
}

/// Ends the innermost transaction: the outer one with `outer` (`COMMIT`,
/// `ROLLBACK`), a savepoint with `inner` and its name.
fn end(conn: &mut NativeConnection, outer: &str, inner: &str) -> Result<(), Error> {
    match conn.depth {
        0 => return Ok(()),
        1 => conn.exec(outer)?,
        d => conn.exec(&format!("{inner} _sqlx_savepoint_{}", d - 1))?,
    }
    conn.depth -= 1;
    Ok(())
}

/// Arguments: `Any`'s values, as they arrive from `AnyArguments`.
#[derive(Default)]
pub struct NativeArguments<'q>(Vec<AnyValueKind<'q>>);

impl<'q> Arguments<'q> for NativeArguments<'q> {
    type Database = NativeSqlite;

    fn reserve(&mut self, additional: usize, _size: usize) {
        self.0.reserve(additional);
    }

    fn add<T>(&mut self, value: T) -> Result<(), BoxDynError>
    where
        T: 'q + Encode<'q, NativeSqlite> + Type<NativeSqlite>,
    {
        let _: IsNull = value.encode(&mut self.0)?;
        Ok(())
    }

    fn len(&self) -> usize {
        self.0.len()
    }
}

sqlx_core::impl_into_arguments_for_arguments!(NativeArguments<'q>);

/// The driver's own row type: never made (rows are `AnyRow`s).
pub enum NoRow {}

impl Row for NoRow {
    type Database = NativeSqlite;

    fn columns(&self) -> &[NoColumn] {
        match *self {}
    }

    fn try_get_raw<I>(&self, _index: I) -> Result<NoValueRef<'_>, Error>
    where
        I: ColumnIndex<Self>,
    {
        match *self {}
    }
}

/// The driver's own column type: never made.
#[derive(Debug)]
pub enum NoColumn {}

impl Column for NoColumn {
    type Database = NativeSqlite;

    fn ordinal(&self) -> usize {
        match *self {}
    }

    fn name(&self) -> &str {
        match *self {}
    }

    fn type_info(&self) -> &AnyTypeInfo {
        match *self {}
    }
}

/// The driver's own value type: never made.
pub enum NoValue {}

impl Value for NoValue {
    type Database = NativeSqlite;

    fn as_ref(&self) -> NoValueRef<'_> {
        match *self {}
    }

    fn type_info(&self) -> Cow<'_, AnyTypeInfo> {
        match *self {}
    }

    fn is_null(&self) -> bool {
        match *self {}
    }
}

/// The driver's own borrowed value type: never made.
pub struct NoValueRef<'r>(NoValue, PhantomData<&'r ()>);

impl ValueRef<'_> for NoValueRef<'_> {
    type Database = NativeSqlite;

    fn to_owned(&self) -> NoValue {
        match self.0 {}
    }

    fn type_info(&self) -> Cow<'_, AnyTypeInfo> {
        match self.0 {}
    }

    fn is_null(&self) -> bool {
        match self.0 {}
    }
}

/// The driver's own statement type: never made.
pub struct NoStatement<'q>(NoValue, PhantomData<&'q ()>);

impl<'q> Statement<'q> for NoStatement<'q> {
    type Database = NativeSqlite;

    fn to_owned(&self) -> NoStatement<'static> {
        match self.0 {}
    }

    fn sql(&self) -> &str {
        match self.0 {}
    }

    fn parameters(&self) -> Option<Either<&[AnyTypeInfo], usize>> {
        match self.0 {}
    }

    fn columns(&self) -> &[NoColumn] {
        match self.0 {}
    }

    sqlx_core::impl_statement_query!(NativeArguments<'_>);
}

//! The SQLite C API, for the writer's connection: a handle that runs a text
//! (one statement or several) in place, on the calling thread, and keeps
//! every text's prepared statements for the connection's life. All of the
//! `unsafe` of the native driver is here, behind [`Conn`].
//!
//! It answers as sqlx's SQLite driver does, so that code written against
//! sqlx's `Any` rows cannot tell them apart: parameters are numbered the
//! same way (an anonymous `?` takes the next argument of the whole call, a
//! `$n` or `?n` the call's n-th, and missing ones are NULL), a value's type
//! is the one SQLite stored (INTEGER as a 64-bit integer, REAL as a double,
//! TEXT, BLOB), errors carry SQLite's extended result code, and every
//! statement of a text ends with its count of changed rows.

use std::borrow::Cow;
use std::collections::HashMap;
use std::ffi::{CStr, CString, c_char, c_int};
use std::ptr::{self, NonNull};
use std::sync::Arc;

use libsqlite3_sys as ffi;
use sqlx_core::any::{
    AnyColumn, AnyQueryResult, AnyRow, AnyTypeInfo, AnyTypeInfoKind, AnyValue, AnyValueKind,
};
use sqlx_core::error::{DatabaseError, ErrorKind};
use sqlx_core::ext::ustr::UStr;
use sqlx_core::{Either, Error};

/// What running a text yields, in order: the rows of each statement, then
/// its result.
pub(super) type Answer = Either<AnyQueryResult, AnyRow>;

/// Texts whose statements are kept prepared, as many as sqlx's SQLite
/// driver keeps per connection (a prepared statement over a 30-column JSON
/// row is tens of KiB of SQLite's memory); past this, the text used least
/// recently is let go.
const KEPT_TEXTS: usize = 100;

/// An open SQLite database, used by one thread at a time.
pub(super) struct Conn {
    kept: HashMap<Box<str>, Prepared>,
    clock: u64,
    db: NonNull<ffi::sqlite3>,
}

// SAFETY: the handle is opened in multi-thread mode (`SQLITE_OPEN_NOMUTEX`):
// it may move between threads as long as two never use it at once, which
// `&mut self` on every use guarantees.
unsafe impl Send for Conn {}

/// A text's statements prepared so far (a text is prepared one statement at
/// a time, as it runs: a statement may use a table an earlier one created).
#[derive(Default)]
struct Prepared {
    statements: Vec<Statement>,
    /// Where in the text the next statement to prepare starts.
    next: usize,
    /// Every statement of the text is prepared.
    complete: bool,
    used: u64,
}

struct Statement {
    raw: NonNull<ffi::sqlite3_stmt>,
    /// Built on the statement's first row, kept while its columns stay.
    columns: Option<Columns>,
}

#[derive(Clone)]
struct Columns {
    list: Vec<AnyColumn>,
    names: Arc<sqlx_core::HashMap<UStr, usize>>,
}

impl Drop for Statement {
    fn drop(&mut self) {
        // SAFETY: the statement is finalized once, here.
        unsafe { ffi::sqlite3_finalize(self.raw.as_ptr()) };
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.kept.clear();
        // SAFETY: every statement of the handle is finalized above (a
        // statement lives only in `kept` or for one call).
        unsafe { ffi::sqlite3_close(self.db.as_ptr()) };
    }
}

/// An error from SQLite, with its extended result code.
#[derive(Debug)]
pub struct NativeError {
    code: c_int,
    message: String,
}

impl NativeError {
    /// SQLite's extended result code.
    pub fn code(&self) -> i32 {
        self.code
    }

    fn of(db: *mut ffi::sqlite3) -> NativeError {
        // SAFETY: `db` is an open handle; the message is copied at once.
        unsafe {
            let code = ffi::sqlite3_extended_errcode(db);
            let message = CStr::from_ptr(ffi::sqlite3_errmsg(db))
                .to_string_lossy()
                .into_owned();
            NativeError { code, message }
        }
    }

    fn new(code: c_int, message: impl Into<String>) -> NativeError {
        NativeError {
            code,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for NativeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // As sqlx's SQLite driver: some messages are ambiguous alone
        // ("database is locked").
        write!(f, "(code: {}) {}", self.code, self.message)
    }
}

impl std::error::Error for NativeError {}

impl DatabaseError for NativeError {
    fn message(&self) -> &str {
        &self.message
    }

    fn code(&self) -> Option<Cow<'_, str>> {
        Some(self.code.to_string().into())
    }

    fn as_error(&self) -> &(dyn std::error::Error + Send + Sync + 'static) {
        self
    }

    fn as_error_mut(&mut self) -> &mut (dyn std::error::Error + Send + Sync + 'static) {
        self
    }

    fn into_error(self: Box<Self>) -> Box<dyn std::error::Error + Send + Sync + 'static> {
        self
    }

    fn kind(&self) -> ErrorKind {
        match self.code {
            ffi::SQLITE_CONSTRAINT_UNIQUE | ffi::SQLITE_CONSTRAINT_PRIMARYKEY => {
                ErrorKind::UniqueViolation
            }
            ffi::SQLITE_CONSTRAINT_FOREIGNKEY => ErrorKind::ForeignKeyViolation,
            ffi::SQLITE_CONSTRAINT_NOTNULL => ErrorKind::NotNullViolation,
            ffi::SQLITE_CONSTRAINT_CHECK => ErrorKind::CheckViolation,
            _ => ErrorKind::Other,
        }
    }
}

fn failed(e: NativeError) -> Error {
    Error::Database(Box::new(e))
}

impl Conn {
    /// Opens `uri` (an SQLite URI filename: `file:PATH?mode=rwc`). The
    /// handle reports extended result codes and waits up to 5 s for a lock
    /// (as sqlx's driver does; the service's pragmas then set its own wait).
    pub(super) fn open(uri: &str) -> Result<Conn, Error> {
        let name = CString::new(uri)
            .map_err(|_| failed(NativeError::new(ffi::SQLITE_MISUSE, "a NUL in the path")))?;
        let flags = ffi::SQLITE_OPEN_READWRITE
            | ffi::SQLITE_OPEN_CREATE
            | ffi::SQLITE_OPEN_URI
            | ffi::SQLITE_OPEN_NOMUTEX
            | ffi::SQLITE_OPEN_PRIVATECACHE;
        let mut db = ptr::null_mut();
        // SAFETY: `name` is a NUL-terminated string; `db` receives a handle
        // (even on failure, then closed here).
        unsafe {
            let rc = ffi::sqlite3_open_v2(name.as_ptr(), &mut db, flags, ptr::null());
            if rc != ffi::SQLITE_OK {
                let e = if db.is_null() {
                    NativeError::new(rc, "cannot open the database")
                } else {
                    NativeError::of(db)
                };
                ffi::sqlite3_close(db);
                return Err(failed(e));
            }
            ffi::sqlite3_extended_result_codes(db, 1);
            ffi::sqlite3_busy_timeout(db, 5000);
        }
        let db = NonNull::new(db)
            .ok_or_else(|| failed(NativeError::new(ffi::SQLITE_NOMEM, "SQLite gave no handle")))?;
        Ok(Conn {
            kept: HashMap::new(),
            clock: 0,
            db,
        })
    }

    /// Runs every statement of `sql` with `args`, appending each one's rows
    /// and result to `out`; with `first_row`, stops at the first row. A
    /// `persistent` text's statements stay prepared for the next call.
    pub(super) fn run(
        &mut self,
        sql: &str,
        persistent: bool,
        args: &[AnyValueKind<'_>],
        first_row: bool,
        out: &mut Vec<Answer>,
    ) -> Result<(), Error> {
        if !persistent {
            let mut once = Prepared::default();
            return run_text(self.db, sql, &mut once, args, first_row, out);
        }
        self.clock += 1;
        let Conn { kept, clock, db } = self;
        // A kept text is one lookup; a new one evicts the least recently
        // used when the cache is full.
        if let Some(prepared) = kept.get_mut(sql) {
            prepared.used = *clock;
            return run_text(*db, sql, prepared, args, first_row, out);
        }
        if kept.len() >= KEPT_TEXTS
            && let Some(oldest) = kept
                .iter()
                .min_by_key(|(_, p)| p.used)
                .map(|(k, _)| k.clone())
        {
            kept.remove(&oldest);
        }
        let prepared = kept.entry(sql.into()).or_default();
        prepared.used = *clock;
        run_text(*db, sql, prepared, args, first_row, out)
    }

    /// Whether a transaction is open (SQLite is not in autocommit mode).
    pub(super) fn in_transaction(&self) -> bool {
        // SAFETY: the handle is open.
        unsafe { ffi::sqlite3_get_autocommit(self.db.as_ptr()) == 0 }
    }
}

fn run_text(
    db: NonNull<ffi::sqlite3>,
    sql: &str,
    prepared: &mut Prepared,
    args: &[AnyValueKind<'_>],
    first_row: bool,
    out: &mut Vec<Answer>,
) -> Result<(), Error> {
    let mut used_args = 0;
    let mut i = 0;
    loop {
        if i == prepared.statements.len() {
            if prepared.complete {
                return Ok(());
            }
            match prepare_next(db, sql, prepared.next)? {
                Some((statement, next)) => {
                    prepared.statements.push(statement);
                    prepared.next = next;
                }
                None => {
                    prepared.complete = true;
                    return Ok(());
                }
            }
        }
        let statement = &mut prepared.statements[i];
        used_args += bind(statement.raw, args, used_args)?;
        let stop = step_all(db, statement, first_row, out);
        // SAFETY: the statement is prepared; a reset ends its read of the
        // database at once, and cleared bindings leave it no pointer into
        // `args` (bound without a copy).
        unsafe {
            ffi::sqlite3_reset(statement.raw.as_ptr());
            ffi::sqlite3_clear_bindings(statement.raw.as_ptr());
        }
        if stop? {
            return Ok(());
        }
        i += 1;
    }
}

/// Prepares the first statement of `sql` from byte `from`; `None` when only
/// blanks and comments are left. Returns where the next statement starts.
fn prepare_next(
    db: NonNull<ffi::sqlite3>,
    sql: &str,
    mut from: usize,
) -> Result<Option<(Statement, usize)>, Error> {
    while from < sql.len() {
        let rest = &sql[from..];
        let mut raw = ptr::null_mut();
        let mut tail: *const c_char = ptr::null();
        let len = c_int::try_from(rest.len()).map_err(|_| {
            failed(NativeError::new(
                ffi::SQLITE_TOOBIG,
                "the statement is too long",
            ))
        })?;
        // SAFETY: `rest` is valid for `len` bytes; SQLite sets `raw` (null
        // for blanks) and `tail` (inside `rest`).
        let rc = unsafe {
            ffi::sqlite3_prepare_v3(
                db.as_ptr(),
                rest.as_ptr().cast(),
                len,
                ffi::SQLITE_PREPARE_PERSISTENT,
                &mut raw,
                &mut tail,
            )
        };
        if rc != ffi::SQLITE_OK {
            return Err(failed(NativeError::of(db.as_ptr())));
        }
        let consumed = if tail.is_null() {
            rest.len()
        } else {
            // SAFETY: `tail` points into `rest` (or just past it).
            usize::try_from(unsafe { tail.offset_from(rest.as_ptr().cast()) }).unwrap_or(rest.len())
        };
        from += consumed.max(1).min(rest.len());
        if let Some(raw) = NonNull::new(raw) {
            return Ok(Some((Statement { raw, columns: None }, from)));
        }
    }
    Ok(None)
}

/// Binds the statement's parameters from `args`, as sqlx's SQLite driver
/// numbers them; returns how many anonymous parameters took an argument.
fn bind(
    raw: NonNull<ffi::sqlite3_stmt>,
    args: &[AnyValueKind<'_>],
    offset: usize,
) -> Result<usize, Error> {
    let stmt = raw.as_ptr();
    let mut next = offset;
    // SAFETY: the statement is prepared; names are read while it lives.
    let count = unsafe { ffi::sqlite3_bind_parameter_count(stmt) };
    for param in 1..=count {
        // SAFETY: as above.
        let name = unsafe { ffi::sqlite3_bind_parameter_name(stmt, param) };
        let n = if name.is_null() {
            next += 1;
            next
        } else {
            // SAFETY: SQLite's parameter names are NUL-terminated UTF-8.
            let name = unsafe { CStr::from_ptr(name) }.to_string_lossy();
            name.strip_prefix('?')
                .or_else(|| name.strip_prefix('$'))
                .and_then(|d| d.parse::<usize>().ok())
                .filter(|n| *n > 0)
                .ok_or_else(|| {
                    Error::Protocol(format!("unsupported SQL parameter {name}: use ?, ?N or $N"))
                })?
        };
        // Unbound parameters are NULL (as in sqlx).
        let Some(value) = args.get(n - 1) else { break };
        bind_value(stmt, param, value)?;
    }
    Ok(next - offset)
}

fn bind_value(
    stmt: *mut ffi::sqlite3_stmt,
    param: c_int,
    value: &AnyValueKind<'_>,
) -> Result<(), Error> {
    // SAFETY: the statement is prepared and `param` one of its parameters.
    // Text and blobs are bound without a copy (SQLITE_STATIC): the caller
    // clears the bindings before `value` can go away.
    let rc = unsafe {
        match value {
            AnyValueKind::Null(_) => ffi::sqlite3_bind_null(stmt, param),
            AnyValueKind::Bool(b) => ffi::sqlite3_bind_int(stmt, param, c_int::from(*b)),
            AnyValueKind::SmallInt(i) => ffi::sqlite3_bind_int(stmt, param, c_int::from(*i)),
            AnyValueKind::Integer(i) => ffi::sqlite3_bind_int(stmt, param, *i),
            AnyValueKind::BigInt(i) => ffi::sqlite3_bind_int64(stmt, param, *i),
            AnyValueKind::Real(r) => ffi::sqlite3_bind_double(stmt, param, f64::from(*r)),
            AnyValueKind::Double(d) => ffi::sqlite3_bind_double(stmt, param, *d),
            AnyValueKind::Text(t) => ffi::sqlite3_bind_text64(
                stmt,
                param,
                t.as_ptr().cast(),
                t.len() as u64,
                ffi::SQLITE_STATIC(),
                ffi::SQLITE_UTF8 as u8,
            ),
            AnyValueKind::Blob(b) => ffi::sqlite3_bind_blob64(
                stmt,
                param,
                b.as_ptr().cast(),
                b.len() as u64,
                ffi::SQLITE_STATIC(),
            ),
            other => {
                return Err(Error::Encode(
                    format!("the native SQLite driver cannot bind {other:?}").into(),
                ));
            }
        }
    };
    if rc == ffi::SQLITE_OK {
        Ok(())
    } else {
        // SAFETY: the statement belongs to an open handle.
        Err(failed(NativeError::of(unsafe {
            ffi::sqlite3_db_handle(stmt)
        })))
    }
}

/// Steps the statement to its end (or first row); true when the caller
/// asked to stop there.
fn step_all(
    db: NonNull<ffi::sqlite3>,
    statement: &mut Statement,
    first_row: bool,
    out: &mut Vec<Answer>,
) -> Result<bool, Error> {
    let stmt = statement.raw.as_ptr();
    loop {
        // SAFETY: the statement is prepared and bound.
        match unsafe { ffi::sqlite3_step(stmt) } {
            ffi::SQLITE_ROW => {
                out.push(Either::Right(row(statement)?));
                if first_row {
                    return Ok(true);
                }
            }
            ffi::SQLITE_DONE => {
                // SAFETY: the handle is open.
                let (changes, rowid) = unsafe {
                    (
                        ffi::sqlite3_changes64(db.as_ptr()),
                        ffi::sqlite3_last_insert_rowid(db.as_ptr()),
                    )
                };
                out.push(Either::Left(AnyQueryResult {
                    rows_affected: u64::try_from(changes).unwrap_or(0),
                    last_insert_id: Some(rowid),
                }));
                return Ok(false);
            }
            _ => return Err(failed(NativeError::of(db.as_ptr()))),
        }
    }
}

/// The statement's current row.
fn row(statement: &mut Statement) -> Result<AnyRow, Error> {
    let stmt = statement.raw.as_ptr();
    // SAFETY: the statement has a current row.
    let count = usize::try_from(unsafe { ffi::sqlite3_column_count(stmt) }).unwrap_or(0);
    if statement.columns.as_ref().map(|c| c.list.len()) != Some(count) {
        statement.columns = Some(columns(stmt, count));
    }
    let Some(columns) = statement.columns.as_ref() else {
        unreachable!("the columns were built above")
    };
    let mut values = Vec::with_capacity(count);
    for (i, column) in columns.list.iter().enumerate() {
        values.push(AnyValue {
            kind: value(stmt, i, column.type_info.kind())?,
        });
    }
    Ok(AnyRow {
        column_names: columns.names.clone(),
        columns: columns.list.clone(),
        values,
    })
}

fn columns(stmt: *mut ffi::sqlite3_stmt, count: usize) -> Columns {
    let mut list = Vec::with_capacity(count);
    let mut names = sqlx_core::HashMap::with_capacity(count);
    for i in 0..count {
        let at = i as c_int;
        // SAFETY: `i` is a column of the prepared statement; the strings are
        // copied at once.
        let (name, declared) = unsafe {
            let name = ffi::sqlite3_column_name(stmt, at);
            let name = if name.is_null() {
                String::new()
            } else {
                CStr::from_ptr(name).to_string_lossy().into_owned()
            };
            let declared = ffi::sqlite3_column_decltype(stmt, at);
            let declared = (!declared.is_null()).then(|| {
                CStr::from_ptr(declared)
                    .to_string_lossy()
                    .to_ascii_uppercase()
            });
            (name, declared)
        };
        let name = UStr::new(&name);
        names.insert(name.clone(), i);
        list.push(AnyColumn {
            ordinal: i,
            name,
            type_info: AnyTypeInfo {
                kind: affinity(declared.as_deref()),
            },
        });
    }
    Columns {
        list,
        names: Arc::new(names),
    }
}

/// The kind of a declared column type, by SQLite's affinity rules.
fn affinity(declared: Option<&str>) -> AnyTypeInfoKind {
    match declared {
        Some(t) if t.contains("INT") => AnyTypeInfoKind::BigInt,
        Some(t) if t.contains("CHAR") || t.contains("CLOB") || t.contains("TEXT") => {
            AnyTypeInfoKind::Text
        }
        Some(t) if t.contains("BLOB") => AnyTypeInfoKind::Blob,
        Some(t) if t.contains("REAL") || t.contains("FLOA") || t.contains("DOUB") => {
            AnyTypeInfoKind::Double
        }
        _ => AnyTypeInfoKind::Null,
    }
}

/// Column `i` of the current row, by the type SQLite stored it as.
fn value(
    stmt: *mut ffi::sqlite3_stmt,
    i: usize,
    declared: AnyTypeInfoKind,
) -> Result<AnyValueKind<'static>, Error> {
    let at = i as c_int;
    // SAFETY: the statement has a current row and `i` is one of its
    // columns; text and blob bytes are copied before the next call on it
    // (the length is read after the pointer, as SQLite asks).
    unsafe {
        Ok(match ffi::sqlite3_column_type(stmt, at) {
            ffi::SQLITE_INTEGER => AnyValueKind::BigInt(ffi::sqlite3_column_int64(stmt, at)),
            ffi::SQLITE_FLOAT => AnyValueKind::Double(ffi::sqlite3_column_double(stmt, at)),
            ffi::SQLITE_TEXT => {
                let p = ffi::sqlite3_column_text(stmt, at);
                let bytes = bytes(p, ffi::sqlite3_column_bytes(stmt, at));
                let text = String::from_utf8(bytes.to_vec()).map_err(|e| Error::ColumnDecode {
                    index: i.to_string(),
                    source: Box::new(e),
                })?;
                AnyValueKind::Text(Cow::Owned(text))
            }
            ffi::SQLITE_BLOB => {
                let p = ffi::sqlite3_column_blob(stmt, at).cast::<u8>();
                let bytes = bytes(p, ffi::sqlite3_column_bytes(stmt, at));
                AnyValueKind::Blob(Cow::Owned(bytes.to_vec()))
            }
            _ => AnyValueKind::Null(declared),
        })
    }
}

/// # Safety
/// `p` is null or valid for `len` bytes until the next call on its statement.
unsafe fn bytes<'a>(p: *const u8, len: c_int) -> &'a [u8] {
    match usize::try_from(len) {
        // SAFETY: as the caller promises.
        Ok(len) if !p.is_null() && len > 0 => unsafe { std::slice::from_raw_parts(p, len) },
        _ => &[],
    }
}

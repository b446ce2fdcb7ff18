//! Multi-row statements: one statement for many rows, so a batch of orders
//! costs a handful of statements instead of a handful per order. On SQLite
//! every statement is a round trip to the connection's worker thread, and
//! those hand-offs, not SQLite itself, were most of the cost of a write.
//!
//! The rows travel as one JSON parameter (`[[v, ...], ...]`, built by
//! [`rows`]), and a list of keys as one JSON array of strings ([`keys`]);
//! each statement unpacks them itself: `json_each(?)` and `value ->> k` on
//! SQLite, `jsonb_array_elements($1::jsonb)` and `(value ->> k)::bigint` on
//! PostgreSQL (whose `->>` gives text). So a statement has one text whatever
//! the number of rows: it is written out in its aggregate's module as an
//! [`Sql`] pair, prepared once per connection and stays small in the
//! statement cache, and a batch binds one value instead of one per cell.
//! (The first version bound every cell of a `VALUES` list, padded to a few
//! power-of-two shapes to keep the texts few; the prepared 64-row
//! statements held megabytes per connection, and binding was a tenth of the
//! writer's CPU.)
//!
//! On SQLite a statement over rows of more than a few columns reads them
//! through a fenced subquery, `FROM (SELECT jsonb(value) AS value FROM
//! json_each(?) LIMIT -1 OFFSET 0)`, not from `json_each(?)` itself:
//! every `value` in the statement is a call into `json_each`, which renders
//! the row's array as text again each time, and each `->>` then parses
//! that text. The subquery turns each row into binary JSON (JSONB) once,
//! and the `OFFSET 0` keeps SQLite from flattening it back into the outer
//! statement (it runs as a co-routine, one row at a time; the `?` keeps its
//! place, so the parameters' order is unchanged). Measured on 200 rows of
//! 30 columns: 13-17 µs a row before, 4.3 µs after; under e2e load the
//! unfenced reads were a fifth of the store's writer thread.
//!
//! Statements planned to run together go in a [`Script`].

use std::fmt::Write as _;

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Executor};

use super::{Dialect, Result, Sql};

/// One bound value of a multi-row statement.
#[derive(Debug, Clone, Copy)]
pub enum Val<'a> {
    Int(i64),
    Text(&'a str),
    OptInt(Option<i64>),
    OptText(Option<&'a str>),
}

impl Val<'_> {
    /// Appends the value as JSON.
    fn write_json(self, out: &mut String) {
        match self {
            Val::Int(i) | Val::OptInt(Some(i)) => {
                let _ = write!(out, "{i}");
            }
            Val::Text(t) | Val::OptText(Some(t)) => json_string(t, out),
            Val::OptInt(None) | Val::OptText(None) => out.push_str("null"),
        }
    }
}

impl From<i64> for Val<'_> {
    fn from(v: i64) -> Self {
        Val::Int(v)
    }
}

impl<'a> From<&'a str> for Val<'a> {
    fn from(v: &'a str) -> Self {
        Val::Text(v)
    }
}

impl From<Option<i64>> for Val<'_> {
    fn from(v: Option<i64>) -> Self {
        Val::OptInt(v)
    }
}

impl<'a> From<Option<&'a str>> for Val<'a> {
    fn from(v: Option<&'a str>) -> Self {
        Val::OptText(v)
    }
}

/// Appends `t` as a JSON string.
fn json_string(t: &str, out: &mut String) {
    out.push('"');
    let mut start = 0;
    for (i, b) in t.bytes().enumerate() {
        let escape = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0..=0x1f => "",
            _ => continue,
        };
        out.push_str(&t[start..i]);
        if escape.is_empty() {
            let _ = write!(out, "\\u{b:04x}");
        } else {
            out.push_str(escape);
        }
        start = i + 1;
    }
    out.push_str(&t[start..]);
    out.push('"');
}

/// `rows` (flat, `cols` values per row) as a JSON array of arrays: the
/// value a multi-row statement unpacks.
pub fn rows(cols: usize, rows: &[Val<'_>]) -> String {
    debug_assert!(cols > 0 && rows.len().is_multiple_of(cols));
    let mut out = String::with_capacity(rows.len() * 16 + 2);
    out.push('[');
    for (r, row) in rows.chunks(cols).enumerate() {
        if r > 0 {
            out.push(',');
        }
        out.push('[');
        for (k, v) in row.iter().enumerate() {
            if k > 0 {
                out.push(',');
            }
            v.write_json(&mut out);
        }
        out.push(']');
    }
    out.push(']');
    out
}

/// `keys` as a JSON array of strings: the value an `IN` list unpacks
/// (`IN (SELECT value FROM json_each($1))` on SQLite,
/// `= ANY(ARRAY(SELECT jsonb_array_elements_text($1::jsonb)))` on
/// PostgreSQL).
///
/// Why `= ANY(ARRAY(...))` and not `IN (SELECT ...)` on PostgreSQL: the
/// planner guesses 100 rows for a set-returning function, so `IN` is
/// planned as a hash join over a sequential scan of the whole table until
/// the table holds some 10,000 rows; `= ANY` of an array is guessed at 10
/// elements and probes the table's key from far smaller tables on. (A
/// prepared statement's generic plan, made while a fresh database's tables
/// were nearly empty, scans either way and keeps doing so as they grow:
/// measured on a fresh store under load, such scans were some 40 % of the
/// server's CPU. Hence the hot key-list statements run unprepared, planned
/// for their keys: in a [`Script`] or through [`fetch_each`].)
pub fn keys<S: AsRef<str>>(keys: &[S]) -> String {
    let mut json = String::with_capacity(keys.len() * 40 + 2);
    json.push('[');
    for (i, k) in keys.iter().enumerate() {
        if i > 0 {
            json.push(',');
        }
        json_string(k.as_ref(), &mut json);
    }
    json.push(']');
    json
}

/// Runs read statements, each with its arguments; returns each one's rows.
///
/// On PostgreSQL they go in one round trip, as one simple-protocol text
/// with the arguments inlined (as in a [`Script`]), and each statement is
/// planned for the keys it is given: a prepared statement's generic plan,
/// made while a fresh database's tables were nearly empty, kept scanning
/// the whole table as it grew (auto_explain on the bench's latency
/// scenario: most slow statements were these reads, by sequential scan).
///
/// On SQLite, statements that take the same arguments (an order's rows,
/// shipments and lines, each by one key list) go in one call too: their
/// texts joined and the arguments bound once (in a joined SQLite text a
/// `$n` is the call's n-th argument, so every statement reads the same
/// ones). Each call is a round trip to the connection's thread, two
/// thread wake-ups, which at everyday load cost more CPU than such small
/// reads. Other statements run prepared, one after another.
pub async fn fetch_each(
    c: &mut AnyConnection,
    statements: &[(&Sql, Vec<Arg>)],
) -> Result<Vec<Vec<AnyRow>>> {
    let dialect = Dialect::of(c);
    if dialect == Dialect::Postgres && statements.iter().all(|(_, args)| inlinable(args)) {
        let text = inlined(statements.iter().map(|(sql, args)| (sql.postgres, args)))?;
        return split_results(c.fetch_many(sqlx::raw_sql(&text)), statements.len()).await;
    }
    if let [(_, args), rest @ ..] = statements
        && dialect == Dialect::Sqlite
        && !rest.is_empty()
        && rest.iter().all(|(_, other)| other == args)
    {
        debug_assert!(
            statements.iter().all(|(sql, _)| !sql.sqlite.contains('?')),
            "SQLite reads joined in one call take `$n` parameters"
        );
        let text = statements
            .iter()
            .map(|(sql, _)| sql.sqlite)
            .collect::<Vec<_>>()
            .join(";\n");
        let query = bound(&text, args.iter().cloned());
        return split_results(c.fetch_many(query), statements.len()).await;
    }
    let mut out = Vec::with_capacity(statements.len());
    for (sql, args) in statements {
        let q = bound(sql.text(dialect), args.iter().cloned());
        out.push(q.fetch_all(&mut *c).await?);
    }
    Ok(out)
}

/// The rows of `statements` statements run in one call: they come statement
/// after statement, each statement's closed by its result (a count).
async fn split_results(
    mut stream: futures_core::stream::BoxStream<
        '_,
        std::result::Result<sqlx::Either<sqlx::any::AnyQueryResult, AnyRow>, sqlx::Error>,
    >,
    statements: usize,
) -> Result<Vec<Vec<AnyRow>>> {
    let mut out: Vec<Vec<AnyRow>> = vec![Vec::new()];
    while let Some(item) = std::future::poll_fn(|cx| stream.as_mut().poll_next(cx)).await {
        match item? {
            sqlx::Either::Right(row) => {
                if let Some(last) = out.last_mut() {
                    last.push(row);
                }
            }
            sqlx::Either::Left(_) => out.push(Vec::new()),
        }
    }
    out.truncate(statements);
    if out.len() != statements {
        return Err(super::StorageError::Corrupt(format!(
            "{statements} statements answered {} results",
            out.len()
        )));
    }
    Ok(out)
}

/// Whether every argument can be written as a literal ([`pg_literal`]):
/// PostgreSQL text never holds a NUL byte, and a query text cannot carry
/// one.
fn inlinable(args: &[Arg]) -> bool {
    args.iter()
        .all(|a| !matches!(a, Arg::Text(Some(t)) if t.contains('\0')))
}

/// PostgreSQL statements with their arguments written in ([`inline_pg`]),
/// as one text for one round trip.
fn inlined<'a>(statements: impl IntoIterator<Item = (&'a str, &'a Vec<Arg>)>) -> Result<String> {
    let mut text = String::new();
    for (sql, args) in statements {
        inline_pg(sql, args, &mut text)?;
        text.push_str(";\n");
    }
    Ok(text)
}

/// `sql` with `args` bound in order.
fn bound<'q>(
    sql: &'q str,
    args: impl IntoIterator<Item = Arg>,
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>> {
    args.into_iter().fold(sqlx::query(sql), |q, a| match a {
        Arg::Int(i) => q.bind(i),
        Arg::Text(t) => q.bind(t),
    })
}

/// `sql` (a PostgreSQL text with `$n` parameters) with each parameter
/// replaced by [`pg_literal`] of its argument, appended to `out`.
///
/// The fixed texts hold `$` only in parameters (no string literal or
/// dollar quote of theirs has one); a `$n` with no argument is an error,
/// not a guess.
fn inline_pg(sql: &str, args: &[Arg], out: &mut String) -> Result<()> {
    let bytes = sql.as_bytes();
    let mut i = 0;
    let mut copied = 0;
    while i < bytes.len() {
        if bytes[i] == b'$' && bytes.get(i + 1).is_some_and(u8::is_ascii_digit) {
            let start = i + 1;
            let mut end = start;
            while end < bytes.len() && bytes[end].is_ascii_digit() {
                end += 1;
            }
            let n: usize = sql[start..end].parse().unwrap_or(0);
            let arg = n.checked_sub(1).and_then(|k| args.get(k)).ok_or_else(|| {
                super::StorageError::Corrupt(format!("statement parameter ${n} has no argument"))
            })?;
            out.push_str(&sql[copied..i]);
            pg_literal(arg, out);
            copied = end;
            i = end;
        } else {
            i += 1;
        }
    }
    out.push_str(&sql[copied..]);
    Ok(())
}

/// `arg` as a PostgreSQL literal of the type sqlx binds it as (`bigint`,
/// `text`), so a statement means the same inlined as bound. Text is
/// dollar-quoted with a tag it does not contain: nothing inside a dollar
/// quote is special, so no content can end it early.
fn pg_literal(arg: &Arg, out: &mut String) {
    match arg {
        Arg::Int(Some(i)) => {
            let _ = write!(out, "({i})::bigint");
        }
        Arg::Int(None) => out.push_str("NULL::bigint"),
        Arg::Text(None) => out.push_str("NULL::text"),
        Arg::Text(Some(t)) => {
            let mut tag = String::from("$q$");
            let mut n = 0u32;
            while t.contains(&tag[..tag.len() - 1]) {
                n += 1;
                tag = format!("$q{n}$");
            }
            out.push_str(&tag);
            out.push_str(t);
            out.push_str(&tag);
            out.push_str("::text");
        }
    }
}

/// One argument of a statement in a [`Script`] (owned: a script outlives
/// the data it was planned from).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Arg {
    Int(Option<i64>),
    Text(Option<String>),
}

impl From<Val<'_>> for Arg {
    fn from(v: Val<'_>) -> Self {
        match v {
            Val::Int(i) => Arg::Int(Some(i)),
            Val::OptInt(i) => Arg::Int(i),
            Val::Text(t) => Arg::Text(Some(t.to_owned())),
            Val::OptText(t) => Arg::Text(t.map(str::to_owned)),
        }
    }
}

/// Statements planned to run together, in order, each one of its module's
/// fixed [`Sql`] texts. On SQLite they go to the connection in one call:
/// their texts joined with `;` (SQLite runs several statements from one
/// text), so a batch's six inserts cost one round trip to the connection's
/// thread instead of six.
///
/// On PostgreSQL several statements also go in one round trip to the
/// server: one text in the simple query protocol (which takes no bound
/// parameters), each statement's `$n` replaced by its argument written as
/// a literal of the type it would have been bound as ([`pg_literal`]:
/// `5::bigint`, a dollar-quoted `...::text`, `NULL::text`). Each round trip
/// is a wait for the server and two process wake-ups; a create batch's
/// seven statements were seven of its thirteen. The server parses and
/// plans those statements each time instead of reusing prepared ones,
/// which for these plain statements over one JSON value costs less than
/// the round trips did. A script with one statement, or with a text
/// argument holding a NUL byte (no literal can), runs prepared as before.
///
/// The SQLite text of a statement that runs in a script takes anonymous
/// `?` parameters, in the order of its arguments: sqlx numbers those in
/// order across the joined statements (it would read `$n` as the call's
/// n-th argument, not the statement's), and binds them by position.
pub struct Script {
    dialect: Dialect,
    parts: Vec<(&'static str, Vec<Arg>)>,
}

impl Script {
    pub fn new(c: &AnyConnection) -> Self {
        Self {
            dialect: Dialect::of(c),
            parts: Vec::new(),
        }
    }

    /// Adds `sql` with `args`.
    pub fn push(&mut self, sql: &Sql, args: Vec<Arg>) {
        debug_assert!(
            !sql.sqlite.contains('$'),
            "a script's SQLite text takes `?` parameters: {}",
            sql.sqlite
        );
        self.parts.push((sql.text(self.dialect), args));
    }

    /// Adds `sql` over `rows` (flat, `cols` values per row; nothing when
    /// there is none): its arguments are `fixed`, then the rows as one JSON
    /// value ([`rows`]).
    pub fn rows(&mut self, sql: &Sql, fixed: &[Val<'_>], cols: usize, rows: &[Val<'_>]) {
        if rows.is_empty() {
            return;
        }
        let mut args: Vec<Arg> = fixed.iter().copied().map(Arg::from).collect();
        args.push(Arg::Text(Some(self::rows(cols, rows))));
        self.push(sql, args);
    }

    /// Adds `sql` over `keys` (nothing when there is none): its arguments
    /// are `fixed`, then the keys as one JSON value ([`keys`]).
    pub fn keys<S: AsRef<str>>(&mut self, sql: &Sql, fixed: &[Val<'_>], keys: &[S]) {
        if keys.is_empty() {
            return;
        }
        let mut args: Vec<Arg> = fixed.iter().copied().map(Arg::from).collect();
        args.push(Arg::Text(Some(self::keys(keys))));
        self.push(sql, args);
    }

    /// Whether every argument can be written as a literal ([`inlinable`]).
    fn inlinable(&self) -> bool {
        self.parts.iter().all(|(_, args)| inlinable(args))
    }

    /// Runs the statements; returns the rows they returned (`RETURNING`),
    /// in order.
    pub async fn run(self, c: &mut AnyConnection) -> Result<Vec<AnyRow>> {
        let parts = match self.dialect {
            Dialect::Postgres if self.parts.len() > 1 && self.inlinable() => {
                let text = inlined(self.parts.iter().map(|(sql, args)| (*sql, args)))?;
                return Ok(c.fetch_all(sqlx::raw_sql(&text)).await?);
            }
            Dialect::Sqlite if self.parts.len() > 1 => {
                let text = self
                    .parts
                    .iter()
                    .map(|(sql, _)| *sql)
                    .collect::<Vec<_>>()
                    .join(";\n");
                let args = self.parts.into_iter().flat_map(|(_, args)| args).collect();
                vec![(std::borrow::Cow::Owned(text), args)]
            }
            _ => self
                .parts
                .into_iter()
                .map(|(sql, args)| (std::borrow::Cow::Borrowed(sql), args))
                .collect(),
        };
        let mut out = Vec::new();
        for (sql, args) in parts {
            out.extend(bound(&sql, args).fetch_all(&mut *c).await?);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_json_arrays() {
        let list = [
            Val::Text("a\"b\\c\n\u{1}é"),
            Val::Int(-3),
            Val::OptText(None),
            Val::OptInt(Some(7)),
        ];
        let json = rows(2, &list);
        assert_eq!(json, r#"[["a\"b\\c\n\u0001é",-3],[null,7]]"#);
        let back: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(back[0][0], "a\"b\\c\n\u{1}é");
    }

    #[test]
    fn postgres_statements_inline_their_arguments_as_typed_literals() {
        let mut out = String::new();
        inline_pg(
            "UPDATE t SET a = $1, b = $2, c = $10 WHERE k = ANY(ARRAY(SELECT jsonb_array_elements_text($3::jsonb)))",
            &[
                Arg::Int(Some(-7)),
                Arg::Text(None),
                Arg::Text(Some(r#"["x$q$y", "it's"]"#.into())),
                Arg::Int(None),
                Arg::Int(None),
                Arg::Int(None),
                Arg::Int(None),
                Arg::Int(None),
                Arg::Int(None),
                Arg::Int(Some(10)),
            ],
            &mut out,
        )
        .unwrap();
        assert_eq!(
            out,
            "UPDATE t SET a = (-7)::bigint, b = NULL::text, c = (10)::bigint WHERE k = \
             ANY(ARRAY(SELECT jsonb_array_elements_text($q1$[\"x$q$y\", \"it's\"]$q1$::text::jsonb)))"
        );
        // A parameter without an argument is refused, not guessed.
        assert!(inline_pg("SELECT $2", &[Arg::Int(Some(1))], &mut String::new()).is_err());
        // Text that holds a NUL byte is not inlined at all.
        let s = Script {
            dialect: Dialect::Postgres,
            parts: vec![("SELECT $1", vec![Arg::Text(Some("a\0b".into()))])],
        };
        assert!(!s.inlinable());
    }

    const EACH: Sql = Sql {
        sqlite: "SELECT value FROM json_each($1) ORDER BY value",
        postgres: "",
    };
    const NONE: Sql = Sql {
        sqlite: "SELECT value FROM json_each($1) WHERE value = 'none'",
        postgres: "",
    };
    const LOUD: Sql = Sql {
        sqlite: "SELECT value || '!' AS value FROM json_each($1) ORDER BY value DESC",
        postgres: "",
    };

    /// Reads by the same keys share one call on SQLite, and each still gets
    /// its own rows, an empty answer included; reads by different keys run
    /// one by one and answer the same.
    #[tokio::test]
    async fn sqlite_reads_by_the_same_keys_answer_each_its_own_rows() {
        use sqlx::Row;
        let dir = tempfile::tempdir().expect("temporary directory");
        let url = format!("sqlite://{}", dir.path().join("b.db").display());
        let db = super::super::Db::open(&url, crate::domain::Role::Store, &Default::default())
            .await
            .expect("open");
        let mut c = db.reader().acquire().await.expect("connection");
        let ab = || vec![Arg::Text(Some(keys(&["a", "b"])))];
        let values = |rows: &Vec<AnyRow>| -> Vec<String> {
            rows.iter().map(|r| r.get::<String, _>("value")).collect()
        };
        let joined = fetch_each(&mut c, &[(&EACH, ab()), (&NONE, ab()), (&LOUD, ab())])
            .await
            .expect("joined reads");
        let got: Vec<Vec<String>> = joined.iter().map(values).collect();
        assert_eq!(got, [vec!["a", "b"], vec![], vec!["b!", "a!"]]);
        let apart = fetch_each(
            &mut c,
            &[
                (&EACH, ab()),
                (&NONE, ab()),
                (&LOUD, vec![Arg::Text(Some(keys(&["c"])))]),
            ],
        )
        .await
        .expect("reads one by one");
        let got: Vec<Vec<String>> = apart.iter().map(values).collect();
        assert_eq!(got, [vec!["a", "b"], vec![], vec!["c!"]]);
        drop(c);
        db.close().await;
    }

    #[test]
    fn keys_are_one_json_array() {
        assert_eq!(keys(&["a", "b\""]), r#"["a","b\""]"#);
        assert_eq!(keys::<&str>(&[]), "[]");
    }
}

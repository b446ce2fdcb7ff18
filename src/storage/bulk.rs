//! Multi-row statements: one statement for many rows, so a batch of orders
//! costs a handful of statements instead of a handful per order. On SQLite
//! every statement is a round trip to the connection's worker thread, and
//! those hand-offs, not SQLite itself, were most of the cost of a write.
//!
//! The rows travel as one JSON parameter (`[[v, ...], ...]`) that the
//! statement unpacks into a table with columns `column1`, `column2`, ...
//! (`json_each` on SQLite, `jsonb_array_elements` on PostgreSQL). So a
//! statement has one text whatever the number of rows: it is prepared once
//! per connection and stays small in the statement cache, and a batch binds
//! one value instead of one per cell. (The first version bound every cell
//! of a `VALUES` list, padded to a few power-of-two shapes to keep the texts
//! few; the prepared 64-row statements held megabytes per connection, and
//! binding was a tenth of the writer's CPU.)

use std::fmt::Write as _;

use sqlx::AnyConnection;
use sqlx::any::AnyRow;

use super::{Backend, Result, anonymous_params, backend_of, positional};

/// One bound value of a multi-row statement.
#[derive(Debug, Clone, Copy)]
pub enum Val<'a> {
    Int(i64),
    Text(&'a str),
    OptInt(Option<i64>),
    OptText(Option<&'a str>),
}

impl Val<'_> {
    fn is_int(self) -> bool {
        matches!(self, Val::Int(_) | Val::OptInt(_))
    }

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

/// `rows` (flat, `cols` values per row) as a JSON array of arrays.
fn json_rows(cols: usize, rows: &[Val<'_>]) -> String {
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

/// The table that unpacks JSON rows bound as `$param`: columns `column1`
/// ... `columnN`, typed like `first_row` (PostgreSQL's `->>` gives text;
/// SQLite's gives the JSON value's own type).
fn rows_table(backend: Backend, param: usize, first_row: &[Val<'_>]) -> String {
    let columns: Vec<String> = first_row
        .iter()
        .enumerate()
        .map(|(k, v)| match backend {
            Backend::Sqlite => format!("value ->> {k} AS column{}", k + 1),
            Backend::Postgres if v.is_int() => {
                format!("(value ->> {k})::bigint AS column{}", k + 1)
            }
            Backend::Postgres => format!("value ->> {k} AS column{}", k + 1),
        })
        .collect();
    let source = match backend {
        Backend::Sqlite => format!("json_each(${param})"),
        Backend::Postgres => format!("jsonb_array_elements(${param}::jsonb) AS e(value)"),
    };
    format!("(SELECT {} FROM {source})", columns.join(", "))
}

/// An `IN` list of `keys` bound as one JSON parameter `$param`: the SQL
/// (`(SELECT ...)`) and the value to bind. One text whatever the number of
/// keys (see the module's notes).
pub(crate) fn in_list(backend: Backend, param: usize, keys: &[String]) -> (String, String) {
    let sql = match backend {
        Backend::Sqlite => format!("(SELECT value FROM json_each(${param}))"),
        Backend::Postgres => format!("(SELECT jsonb_array_elements_text(${param}::jsonb))"),
    };
    let mut json = String::with_capacity(keys.len() * 40 + 2);
    json.push('[');
    for (i, k) in keys.iter().enumerate() {
        if i > 0 {
            json.push(',');
        }
        json_string(k, &mut json);
    }
    json.push(']');
    (sql, json)
}

/// One value as a [`Script`] keeps it (owned: a script outlives the data it
/// was planned from).
#[derive(Debug, Clone)]
enum Arg {
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

/// Statements planned to run together, in order. On SQLite they go to the
/// connection in one call (SQLite runs several statements from one text),
/// so a batch's six inserts cost one round trip to the connection's thread
/// instead of six; on PostgreSQL they run one after another.
pub struct Script {
    backend: Backend,
    parts: Vec<(String, Vec<Arg>)>,
}

impl Script {
    pub fn new(c: &AnyConnection) -> Self {
        Self {
            backend: backend_of(c),
            parts: Vec::new(),
        }
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Adds one plain statement.
    pub fn push(&mut self, sql: &str, args: &[Val<'_>]) {
        let args = args.iter().copied().map(Arg::from).collect();
        self.parts.push((sql.to_owned(), args));
    }

    /// Adds `{head}{rows table}{tail}` over `rows` (flat, `cols` values per
    /// row; nothing when there is none), where the rows table has columns
    /// `column1` ... (see the module's notes). `fixed` values are bound
    /// first, as `$1..$k`; the rows are `$k+1`. Write each `$k` once and
    /// all before the table, so that on SQLite they can become anonymous
    /// `?` (see [`positional`]).
    pub fn add(
        &mut self,
        head: &str,
        tail: &str,
        fixed: &[Val<'_>],
        cols: usize,
        rows: &[Val<'_>],
    ) {
        debug_assert!(cols > 0 && rows.len().is_multiple_of(cols));
        if rows.is_empty() {
            return;
        }
        let table = rows_table(self.backend, fixed.len() + 1, &rows[..cols]);
        let mut args: Vec<Arg> = fixed.iter().copied().map(Arg::from).collect();
        args.push(Arg::Text(Some(json_rows(cols, rows))));
        self.parts.push((format!("{head}{table}{tail}"), args));
    }

    /// Adds a multi-row insert: `{into} SELECT {select} FROM {rows} AS v
    /// WHERE true {tail}` (the `WHERE` settles SQLite's parsing of an `ON
    /// CONFLICT` tail).
    #[allow(clippy::too_many_arguments)]
    pub fn insert(
        &mut self,
        into: &str,
        select: &str,
        tail: &str,
        fixed: &[Val<'_>],
        cols: usize,
        rows: &[Val<'_>],
    ) {
        let head = format!("{into} SELECT {select} FROM ");
        let tail = format!(" AS v WHERE true{tail}");
        self.add(&head, &tail, fixed, cols, rows);
    }

    /// Runs the statements; returns the rows they returned (`RETURNING`),
    /// in order.
    pub async fn run(self, c: &mut AnyConnection) -> Result<Vec<AnyRow>> {
        let parts = match self.backend {
            Backend::Sqlite if self.parts.len() > 1 => {
                // One text, anonymous parameters in order, if every part
                // numbers its own from $1 in order (else one by one).
                let texts: Option<Vec<String>> = self
                    .parts
                    .iter()
                    .map(|(sql, _)| anonymous_params(sql))
                    .collect();
                match texts {
                    Some(texts) => vec![(
                        texts.join(";\n"),
                        self.parts.into_iter().flat_map(|(_, args)| args).collect(),
                    )],
                    None => self.parts,
                }
            }
            _ => self.parts,
        };
        let mut out = Vec::new();
        for (sql, args) in parts {
            let sql = positional(c, &sql);
            let mut q = sqlx::query(&sql);
            for a in args {
                q = match a {
                    Arg::Int(i) => q.bind(i),
                    Arg::Text(t) => q.bind(t),
                };
            }
            out.extend(q.fetch_all(&mut *c).await?);
        }
        Ok(out)
    }
}

/// [`Script::add`] alone.
pub async fn run(
    c: &mut AnyConnection,
    head: &str,
    tail: &str,
    fixed: &[Val<'_>],
    cols: usize,
    rows: &[Val<'_>],
) -> Result<Vec<AnyRow>> {
    let mut s = Script::new(c);
    s.add(head, tail, fixed, cols, rows);
    s.run(c).await
}

/// [`Script::insert`] alone.
#[allow(clippy::too_many_arguments)]
pub async fn insert(
    c: &mut AnyConnection,
    into: &str,
    select: &str,
    tail: &str,
    fixed: &[Val<'_>],
    cols: usize,
    rows: &[Val<'_>],
) -> Result<Vec<AnyRow>> {
    let mut s = Script::new(c);
    s.insert(into, select, tail, fixed, cols, rows);
    s.run(c).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_json_arrays() {
        let rows = [
            Val::Text("a\"b\\c\n\u{1}é"),
            Val::Int(-3),
            Val::OptText(None),
            Val::OptInt(Some(7)),
        ];
        let json = json_rows(2, &rows);
        assert_eq!(json, r#"[["a\"b\\c\n\u0001é",-3],[null,7]]"#);
        let back: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(back[0][0], "a\"b\\c\n\u{1}é");
    }

    #[test]
    fn the_rows_table_types_its_columns_on_postgres() {
        let row = [Val::Text("x"), Val::OptInt(None)];
        assert_eq!(
            rows_table(Backend::Postgres, 2, &row),
            "(SELECT value ->> 0 AS column1, (value ->> 1)::bigint AS column2 \
             FROM jsonb_array_elements($2::jsonb) AS e(value))"
        );
        assert_eq!(
            rows_table(Backend::Sqlite, 1, &row),
            "(SELECT value ->> 0 AS column1, value ->> 1 AS column2 FROM json_each($1))"
        );
    }

    #[test]
    fn in_lists_are_one_json_value() {
        let keys: Vec<String> = ["a", "b"].map(String::from).to_vec();
        let (sql, json) = in_list(Backend::Sqlite, 2, &keys);
        assert_eq!(sql, "(SELECT value FROM json_each($2))");
        assert_eq!(json, r#"["a","b"]"#);
    }
}

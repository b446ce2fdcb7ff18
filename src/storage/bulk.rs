//! Multi-row statements: one `INSERT ... VALUES (...), (...)` (or `UPDATE
//! ... FROM (VALUES ...)`) for many rows, so a batch of orders costs a
//! handful of statements instead of a handful per order. On SQLite every
//! statement is a round trip to the connection's worker thread, and those
//! hand-offs, not SQLite itself, were most of the cost of a write.
//!
//! Rows go in chunks of at most [`MAX_CHUNK`], and each chunk is padded
//! with rows of NULLs up to a power of two: a table has seven statement
//! texts at most (1, 2, 4 ... 64 rows), each prepared once and kept in the
//! connection's statement cache. (Preparing a 64-row insert costs about as
//! much as running it; one text per batch size overflowed the cache.) So
//! every statement given to [`run`] must ignore rows whose first value is
//! NULL: inserts are written `INSERT ... SELECT * FROM (VALUES ...) AS v
//! WHERE column1 IS NOT NULL`, and a NULL key matches nothing in an
//! `UPDATE ... FROM (VALUES ...)` or an `IN (VALUES ...)`.

use sqlx::AnyConnection;
use sqlx::any::AnyRow;

use super::{Backend, Result, anonymous_params, backend_of, positional};

/// Most rows in one statement (64 orders × 26 columns stays far below
/// SQLite's 32,766 and PostgreSQL's 65,535 bound parameters).
pub const MAX_CHUNK: usize = 64;

/// One bound value of a multi-row statement.
#[derive(Debug, Clone, Copy)]
pub enum Val<'a> {
    Int(i64),
    Text(&'a str),
    OptInt(Option<i64>),
    OptText(Option<&'a str>),
}

impl Val<'_> {
    /// NULL of the same type (PostgreSQL types the columns of a VALUES
    /// list from its parameters).
    fn null(self) -> Self {
        match self {
            Val::Int(_) | Val::OptInt(_) => Val::OptInt(None),
            Val::Text(_) | Val::OptText(_) => Val::OptText(None),
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

/// `($first, ...), (...)`: placeholders for `rows` rows of `cols` values.
fn values(first: usize, rows: usize, cols: usize) -> String {
    let mut s = String::with_capacity(rows * cols * 5);
    for r in 0..rows {
        if r > 0 {
            s.push_str(", ");
        }
        s.push('(');
        for k in 0..cols {
            if k > 0 {
                s.push_str(", ");
            }
            s.push('$');
            s.push_str(&(first + r * cols + k).to_string());
        }
        s.push(')');
    }
    s
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

    /// Adds `{head}{VALUES list}{tail}` over `rows` (flat, `cols` values per
    /// row), chunked and padded (see the module's notes). `fixed` values are
    /// bound first, as `$1..$k`, in every chunk; the rows' placeholders
    /// follow them. Write each `$k` once and all before the VALUES list, so
    /// that on SQLite they can become anonymous `?` (see [`positional`]).
    pub fn add(
        &mut self,
        head: &str,
        tail: &str,
        fixed: &[Val<'_>],
        cols: usize,
        rows: &[Val<'_>],
    ) {
        debug_assert!(cols > 0 && rows.len().is_multiple_of(cols));
        for chunk in rows.chunks(MAX_CHUNK * cols) {
            let n = chunk.len() / cols;
            let shape = n.next_power_of_two();
            let padding = chunk[..cols].iter().map(|v| v.null()).cycle();
            let sql = format!("{head}{}{tail}", values(fixed.len() + 1, shape, cols));
            let args = fixed
                .iter()
                .copied()
                .chain(chunk.iter().copied())
                .chain(padding.take((shape - n) * cols))
                .map(Arg::from)
                .collect();
            self.parts.push((sql, args));
        }
    }

    /// Adds a multi-row insert: `{into} SELECT {select} FROM (VALUES ...) AS
    /// v WHERE column1 IS NOT NULL {tail}` (the padding rows are filtered
    /// out; the `WHERE` also settles SQLite's parsing of an `ON CONFLICT`
    /// tail).
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
        let head = format!("{into} SELECT {select} FROM (VALUES ");
        let tail = format!(") AS v WHERE column1 IS NOT NULL{tail}");
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
    fn padding_keeps_the_type() {
        assert!(matches!(Val::Int(3).null(), Val::OptInt(None)));
        assert!(matches!(Val::Text("x").null(), Val::OptText(None)));
    }

    #[test]
    fn placeholders_number_on_from_the_fixed_values() {
        assert_eq!(values(3, 2, 2), "($3, $4), ($5, $6)");
        assert_eq!(values(1, 1, 3), "($1, $2, $3)");
    }
}

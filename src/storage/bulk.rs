//! Multi-row statements: one `INSERT ... VALUES (...), (...)` (or `UPDATE
//! ... FROM (VALUES ...)`) for many rows, so a batch of orders costs a
//! handful of statements instead of a handful per order. On SQLite every
//! statement is a round trip to the connection's worker thread, and those
//! hand-offs, not SQLite itself, were most of the cost of a write.
//!
//! Rows go in chunks whose sizes are powers of two up to [`MAX_CHUNK`], so a
//! table has a few distinct statement texts, each prepared once and kept in
//! the connection's statement cache, rather than one text per batch size.

use sqlx::AnyConnection;
use sqlx::any::AnyRow;

use super::Result;

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

/// The chunk sizes for `n` rows: powers of two, largest first, none above
/// [`MAX_CHUNK`].
fn chunk_sizes(mut n: usize) -> Vec<usize> {
    let mut sizes = Vec::new();
    while n > 0 {
        let size = if n >= MAX_CHUNK {
            MAX_CHUNK
        } else {
            1 << (usize::BITS - 1 - n.leading_zeros())
        };
        sizes.push(size);
        n -= size;
    }
    sizes
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

/// Runs `{head}{VALUES list}{tail}` over `rows` (flat, `cols` values per
/// row), chunked. `fixed` values are bound first, as `$1..$k`, in every
/// chunk; the rows' placeholders follow them. Returns what the statements
/// returned (for `RETURNING`), in chunk order.
pub async fn run(
    c: &mut AnyConnection,
    head: &str,
    tail: &str,
    fixed: &[Val<'_>],
    cols: usize,
    rows: &[Val<'_>],
) -> Result<Vec<AnyRow>> {
    debug_assert!(cols > 0 && rows.len().is_multiple_of(cols));
    let mut out = Vec::new();
    let mut rest = rows;
    for size in chunk_sizes(rows.len() / cols) {
        let (chunk, tail_rows) = rest.split_at(size * cols);
        rest = tail_rows;
        let sql = format!("{head}{}{tail}", values(fixed.len() + 1, size, cols));
        let mut q = sqlx::query(&sql);
        for v in fixed.iter().chain(chunk) {
            q = match *v {
                Val::Int(i) => q.bind(i),
                Val::Text(t) => q.bind(t),
                Val::OptInt(i) => q.bind(i),
                Val::OptText(t) => q.bind(t),
            };
        }
        out.extend(q.fetch_all(&mut *c).await?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_are_powers_of_two_that_add_up() {
        assert_eq!(chunk_sizes(0), Vec::<usize>::new());
        assert_eq!(chunk_sizes(1), vec![1]);
        assert_eq!(chunk_sizes(7), vec![4, 2, 1]);
        assert_eq!(chunk_sizes(64), vec![64]);
        assert_eq!(chunk_sizes(200), vec![64, 64, 64, 8]);
        for n in 0..300 {
            let sizes = chunk_sizes(n);
            assert_eq!(sizes.iter().sum::<usize>(), n);
            assert!(sizes.iter().all(|s| s.is_power_of_two() && *s <= MAX_CHUNK));
        }
    }

    #[test]
    fn placeholders_number_on_from_the_fixed_values() {
        assert_eq!(values(3, 2, 2), "($3, $4), ($5, $6)");
        assert_eq!(values(1, 1, 3), "($1, $2, $3)");
    }
}

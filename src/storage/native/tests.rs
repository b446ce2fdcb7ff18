//! The native driver answers as sqlx's SQLite driver does: the same texts
//! with the same arguments, run on one connection of each to one file,
//! give the same rows, values and counts, and the same errors.

use std::str::FromStr;

use sqlx::any::{AnyConnectOptions, AnyRow};
use sqlx::{AnyConnection, Column, Connection, Row, TypeInfo, ValueRef};

use super::{SCHEME, sqlite_uri, url_of};
use crate::storage::{ErrorKind, classify, install_drivers};

/// A connection to `url` (`sqlite:` for sqlx's driver, `sqlite-native:`
/// for ours).
async fn connect(url: &str) -> AnyConnection {
    install_drivers();
    AnyConnection::connect_with(&AnyConnectOptions::from_str(url).expect("url"))
        .await
        .expect(url)
}

/// One connection through sqlx's SQLite driver and one native, on one file.
async fn pair(dir: &tempfile::TempDir) -> (AnyConnection, AnyConnection) {
    let url = format!("sqlite://{}?mode=rwc", dir.path().join("n.db").display());
    let sqlx_side = connect(&url).await;
    let native_url = url_of(&url).expect("a sqlite URL");
    assert!(native_url.starts_with(SCHEME));
    let native = connect(&native_url).await;
    assert_eq!(native.backend_name(), sqlx_side.backend_name());
    (sqlx_side, native)
}

/// What a row holds, as text: each column's name, the value's type and the
/// value.
fn shown(rows: &[AnyRow]) -> Vec<String> {
    rows.iter()
        .map(|r| {
            (0..r.len())
                .map(|i| {
                    let raw = r.try_get_raw(i).expect("column");
                    let kind = raw.type_info().name().to_owned();
                    let value = if raw.is_null() {
                        "NULL".to_owned()
                    } else if let Ok(v) = r.try_get::<i64, _>(i) {
                        v.to_string()
                    } else if let Ok(v) = r.try_get::<f64, _>(i) {
                        v.to_string()
                    } else if let Ok(v) = r.try_get::<String, _>(i) {
                        format!("{v:?}")
                    } else {
                        format!("{:?}", r.try_get::<Vec<u8>, _>(i).expect("a blob"))
                    };
                    format!("{}:{kind}={value}", r.column(i).name())
                })
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect()
}

/// Runs `sql` with `args` (bound as text, integer or NULL) on both and
/// compares what each returned.
async fn same(
    a: &mut AnyConnection,
    b: &mut AnyConnection,
    sql: &str,
    args: &[Option<Arg>],
) -> Vec<String> {
    let mut answers = Vec::new();
    for c in [a, b] {
        let mut q = sqlx::query(sql);
        for arg in args {
            q = match arg {
                Some(Arg::Int(i)) => q.bind(*i),
                Some(Arg::Text(t)) => q.bind(*t),
                Some(Arg::Blob(b)) => q.bind(b.to_vec()),
                Some(Arg::Real(r)) => q.bind(*r),
                None => q.bind(None::<i64>),
            };
        }
        let rows = q.fetch_all(&mut *c).await.expect(sql);
        answers.push(shown(&rows));
    }
    assert_eq!(answers[0], answers[1], "{sql}");
    answers.pop().unwrap_or_default()
}

#[derive(Clone, Copy)]
enum Arg {
    Int(i64),
    Text(&'static str),
    Blob(&'static [u8]),
    Real(f64),
}

#[tokio::test]
async fn texts_rows_and_parameters_answer_as_with_sqlx() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let (mut a, mut b) = pair(&dir).await;
    // Each side its own table: a table a text creates is used by its next
    // statement (statements are prepared as the text runs).
    for (c, t) in [(&mut a, "ta"), (&mut b, "tb")] {
        sqlx::raw_sql(&format!(
            "CREATE TABLE {t} (k INTEGER PRIMARY KEY, s TEXT, r REAL, b BLOB); \
             INSERT INTO {t} (k, s) VALUES (0, 'zero')"
        ))
        .execute(&mut *c)
        .await
        .expect("create");
    }
    // Values of every storage class, and a NULL.
    let rows = same(
        &mut a,
        &mut b,
        "SELECT $1 AS i, $2 AS t, $3 AS bl, $4 AS re, $5 AS absent",
        &[
            Some(Arg::Int(-7)),
            Some(Arg::Text("é\"; DROP")),
            Some(Arg::Blob(&[0, 1, 255])),
            Some(Arg::Real(2.5)),
            None,
        ],
    )
    .await;
    assert_eq!(rows.len(), 1);
    // Anonymous parameters across joined statements take the call's
    // arguments in order; `$n` is the call's n-th; a missing one is NULL.
    let rows = same(
        &mut a,
        &mut b,
        "SELECT ? AS x, ? AS y; SELECT ? AS z; SELECT $1 AS first, $4 AS missing",
        &[
            Some(Arg::Int(1)),
            Some(Arg::Int(2)),
            Some(Arg::Text("three")),
        ],
    )
    .await;
    assert_eq!(
        rows,
        [
            "x:BIGINT=1 y:BIGINT=2",
            "z:TEXT=\"three\"",
            "first:BIGINT=1 missing:NULL=NULL"
        ]
    );
    // Rows written and returned, then read back; the same text again runs
    // on the statements kept prepared.
    for round in 0..2 {
        for (c, t) in [(&mut a, "ta"), (&mut b, "tb")] {
            let done = sqlx::query(&format!(
                "INSERT INTO {t} (s, r, b) SELECT value, 0.5, x'00ff' FROM json_each($1) RETURNING k, s"
            ))
            .bind(r#"["p","q"]"#)
            .fetch_all(&mut *c)
            .await
            .expect("insert");
            assert_eq!(done.len(), 2, "round {round}");
            let changed = sqlx::query(&format!("UPDATE {t} SET s = s || '!' WHERE k > $1"))
                .bind(0_i64)
                .execute(&mut *c)
                .await
                .expect("update");
            assert_eq!(changed.rows_affected(), 2 + 2 * round, "round {round}");
        }
    }
    let ta = same(&mut a, &mut b, "SELECT * FROM ta ORDER BY k", &[]).await;
    let tb = same(&mut a, &mut b, "SELECT * FROM tb ORDER BY k", &[]).await;
    assert_eq!(ta, tb);
    assert_eq!(ta.len(), 5);
    // A kept statement follows the table when it changes (sqlx's driver
    // keeps the columns it saw first, and fails on the new one: only the
    // native side is asked).
    let q = "SELECT * FROM tb WHERE k = $1";
    let before = sqlx::query(q)
        .bind(0_i64)
        .fetch_one(&mut b)
        .await
        .expect("read");
    sqlx::raw_sql("ALTER TABLE tb ADD COLUMN extra TEXT DEFAULT 'e'")
        .execute(&mut b)
        .await
        .expect("alter");
    let after = sqlx::query(q)
        .bind(0_i64)
        .fetch_one(&mut b)
        .await
        .expect("read");
    assert_eq!(after.len(), before.len() + 1);
    assert_eq!(
        after.try_get::<String, _>("extra").expect("the new column"),
        "e"
    );
    // One row asked for: the first.
    let one: Option<(i64,)> = sqlx::query_as("SELECT k FROM tb ORDER BY k DESC")
        .fetch_optional(&mut b)
        .await
        .expect("read");
    assert_eq!(one, Some((4,)));
    a.close().await.expect("close");
    b.close().await.expect("close");
}

#[tokio::test]
async fn errors_carry_sqlites_codes_and_kinds() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let (mut a, mut b) = pair(&dir).await;
    sqlx::raw_sql("CREATE TABLE u (k TEXT PRIMARY KEY, n INTEGER NOT NULL)")
        .execute(&mut a)
        .await
        .expect("create");
    for c in [&mut a, &mut b] {
        let _ = sqlx::query("INSERT INTO u VALUES ('x', 1)")
            .execute(&mut *c)
            .await;
    }
    let mut seen = Vec::new();
    for c in [&mut a, &mut b] {
        let dup = sqlx::query("INSERT INTO u VALUES ($1, 2)")
            .bind("x")
            .execute(&mut *c)
            .await
            .expect_err("a duplicate key");
        let null = sqlx::query("INSERT INTO u VALUES ('y', NULL)")
            .execute(&mut *c)
            .await
            .expect_err("a NULL");
        let syntax = sqlx::query("SELEC 1")
            .execute(&mut *c)
            .await
            .expect_err("bad SQL");
        let mut row = Vec::new();
        for e in [&dup, &null, &syntax] {
            let d = e.as_database_error().expect("a database error");
            row.push((d.code().map(|c| c.into_owned()), d.kind(), classify(e)));
        }
        assert!(
            dup.as_database_error()
                .is_some_and(|d| d.is_unique_violation())
        );
        assert_eq!(classify(&dup), ErrorKind::Other);
        seen.push(row);
    }
    assert_eq!(
        format!("{:?}", seen[0]),
        format!("{:?}", seen[1]),
        "sqlx's then the native driver's"
    );
    // The connection goes on after its errors.
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM u")
        .fetch_one(&mut b)
        .await
        .expect("read");
    assert_eq!(n, 1);
    // A full database is SQLite's FULL on both.
    for c in [&mut a, &mut b] {
        sqlx::raw_sql("PRAGMA max_page_count = 3")
            .execute(&mut *c)
            .await
            .expect("pragma");
        let e = sqlx::query(
            "WITH RECURSIVE n(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM n WHERE x < 5000) \
             INSERT INTO u SELECT 'k' || x, x FROM n",
        )
        .execute(&mut *c)
        .await
        .expect_err("three pages cannot hold 5000 rows");
        assert_eq!(classify(&e), ErrorKind::Full, "{e}");
    }
}

#[tokio::test]
async fn transactions_and_savepoints_through_sqlx_commit_and_roll_back() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let (_a, mut b) = pair(&dir).await;
    sqlx::raw_sql("CREATE TABLE t (k INTEGER)")
        .execute(&mut b)
        .await
        .expect("create");
    let mut tx = b.begin().await.expect("begin");
    sqlx::query("INSERT INTO t VALUES (1)")
        .execute(&mut *tx)
        .await
        .expect("insert");
    let mut inner = tx.begin().await.expect("savepoint");
    sqlx::query("INSERT INTO t VALUES (2)")
        .execute(&mut *inner)
        .await
        .expect("insert");
    inner.rollback().await.expect("roll back to the savepoint");
    tx.commit().await.expect("commit");
    let dropped = b.begin().await.expect("begin");
    drop(dropped);
    let mut tx = b.begin().await.expect("begin after a dropped transaction");
    sqlx::query("INSERT INTO t VALUES (3)")
        .execute(&mut *tx)
        .await
        .expect("insert");
    tx.rollback().await.expect("roll back");
    let all: Vec<(i64,)> = sqlx::query_as("SELECT k FROM t")
        .fetch_all(&mut b)
        .await
        .expect("read");
    assert_eq!(all, [(1,)]);
}

#[test]
fn urls_become_sqlite_uris_for_the_same_file() {
    let q = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    };
    assert_eq!(
        sqlite_uri("/tmp/a b/x?.db", &q(&[("mode", "rwc")])),
        "file:/tmp/a%20b/x%3F.db?mode=rwc"
    );
    assert_eq!(sqlite_uri("rel.db", &[]), "file:rel.db?mode=rw");
    assert_eq!(
        sqlite_uri(
            "/d/100%.db",
            &q(&[("mode", "ro"), ("immutable", "true"), ("other", "x")])
        ),
        "file:/d/100%25.db?mode=ro&immutable=1"
    );
    assert_eq!(sqlite_uri(":memory:", &[]), ":memory:");
    assert_eq!(
        url_of("sqlite:///abs/x.db?mode=rwc").as_deref(),
        Some("sqlite-native:///abs/x.db?mode=rwc")
    );
    assert_eq!(url_of("postgres://h/db"), None);
}

#[tokio::test]
async fn a_path_with_odd_characters_opens_the_same_file_on_both() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let file = dir.path().join("odd name (1).db");
    let url = format!("sqlite://{}?mode=rwc", file.display());
    let mut native = connect(&url_of(&url).expect("url")).await;
    sqlx::raw_sql("CREATE TABLE here (k INTEGER)")
        .execute(&mut native)
        .await
        .expect("create");
    native.close().await.expect("close");
    assert!(file.exists(), "the file the URL names");
}

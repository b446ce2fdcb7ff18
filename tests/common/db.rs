//! A fresh, empty database for one service, on either backend.

use std::path::Path;

use super::pg::{self, PgDb};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        })
    }
}

/// The URL of the SQLite database in file `file` of `dir`.
pub fn sqlite_url(dir: &Path, file: &str) -> String {
    format!("sqlite://{}", dir.join(file).display())
}

/// A fresh, empty database URL for one service, and what keeps it alive:
/// a temp dir (SQLite) or a [`PgDb`] (PostgreSQL, a `t_…` database), both
/// removed when this is dropped.
pub struct TestDb {
    pub url: String,
    _holds: Holds,
}

enum Holds {
    Dir(tempfile::TempDir),
    Pg(PgDb),
}

impl TestDb {
    /// `None` only when PostgreSQL is unavailable outside CI (the test
    /// skips; see [`pg::admin_url`]).
    pub async fn new(backend: Backend) -> Option<TestDb> {
        match backend {
            Backend::Sqlite => Some(TestDb::sqlite()),
            Backend::Postgres => {
                let admin = pg::admin_url("the PostgreSQL tests")?;
                let db = PgDb::create(&admin, "t").await;
                Some(TestDb {
                    url: db.url.clone(),
                    _holds: Holds::Pg(db),
                })
            }
        }
    }

    /// A SQLite file in a fresh temp dir (no need for a runtime).
    pub fn sqlite() -> TestDb {
        let dir = tempfile::tempdir().expect("temp dir");
        TestDb {
            url: sqlite_url(dir.path(), "test.db"),
            _holds: Holds::Dir(dir),
        }
    }
}

//! The PostgreSQL server of the tests, and fresh databases on it.
//!
//! `FULFILLMENT_TEST_PG_URL` is an admin URL (`scripts/with-postgres` sets
//! it). Without it a PostgreSQL test skips locally but FAILS under
//! `CI=true` ([`admin_url`]). Every database a test creates is a
//! [`PgDb`]: dropped when the test is done.

use std::time::Duration;

use sqlx::{Connection, Executor, PgConnection};

/// The admin URL in `FULFILLMENT_TEST_PG_URL`, or `None`: the test skips.
/// Under `CI=true` a missing URL fails the test instead, so CI never passes
/// without running `what` on PostgreSQL.
pub fn admin_url(what: &str) -> Option<String> {
    let url = std::env::var("FULFILLMENT_TEST_PG_URL").unwrap_or_default();
    super::have(!url.is_empty(), || {
        format!(
            "{what}: PostgreSQL is needed and FULFILLMENT_TEST_PG_URL is not set (scripts/test and scripts/with-postgres set it)"
        )
    })
    .then_some(url)
}

/// `admin` (a server URL) with its database replaced by `name`; the query
/// string, if any, is kept.
pub fn database_url(admin: &str, name: &str) -> String {
    let (head, query) = match admin.split_once('?') {
        Some((h, q)) => (h, Some(q)),
        None => (admin, None),
    };
    let host_start = head.find("://").map_or(0, |i| i + 3);
    let base = match head[host_start..].find('/') {
        Some(i) => &head[..host_start + i],
        None => head,
    };
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}

/// Longest that dropping a database may take before the test goes on
/// without (and says so).
const DROP_WITHIN: Duration = Duration::from_secs(30);

/// A fresh database on the test server, dropped (`WITH (FORCE)`, so
/// connections a service still holds do not stop it) when this is dropped:
/// at the end of the test, also when it panics, unless made with
/// [`PgDb::keep_on_panic`] (then a panicking test leaves it for a
/// post-mortem, and says so) or kept with [`PgDb::keep`].
///
/// Every test database has a language collation (ICU en-US), whatever the
/// server's default: most real clusters have one, and text ranges that
/// assume byte order go wrong only there.
pub struct PgDb {
    pub name: String,
    pub url: String,
    admin: String,
    keep_on_panic: bool,
    kept: bool,
}

impl PgDb {
    /// A new database named `{prefix}_{a fresh UUID}`.
    pub async fn create(admin: &str, prefix: &str) -> PgDb {
        let name = format!("{prefix}_{}", uuid::Uuid::now_v7().simple());
        Self::create_named(admin, &name).await
    }

    /// A new database called `name` (lower-case letters, digits and `_`).
    pub async fn create_named(admin: &str, name: &str) -> PgDb {
        assert!(
            !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'),
            "{name:?} is not a plain database name"
        );
        let mut c = PgConnection::connect(admin)
            .await
            .expect("connect to the test PostgreSQL server");
        c.execute(
            format!(
                "CREATE DATABASE {name} TEMPLATE template0 ENCODING 'UTF8' \
                 LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C'"
            )
            .as_str(),
        )
        .await
        .expect("create test database");
        c.close().await.ok();
        PgDb {
            name: name.to_owned(),
            url: database_url(admin, name),
            admin: admin.to_owned(),
            keep_on_panic: false,
            kept: false,
        }
    }

    /// Leaves the database in place when the test panics.
    pub fn keep_on_panic(mut self) -> PgDb {
        self.keep_on_panic = true;
        self
    }

    /// Leaves the database in place for good; returns its name.
    pub fn keep(mut self) -> String {
        self.kept = true;
        std::mem::take(&mut self.name)
    }
}

impl Drop for PgDb {
    fn drop(&mut self) {
        if self.kept {
            return;
        }
        if self.keep_on_panic && std::thread::panicking() {
            eprintln!("kept the PostgreSQL database {}", self.name);
            return;
        }
        if let Err(e) = drop_database(&self.admin, &self.name) {
            eprintln!("could not drop the test database {}: {e}", self.name);
        }
    }
}

/// `DROP DATABASE IF EXISTS name WITH (FORCE)`, from any context: `Drop`
/// cannot await, and may run on a runtime's thread (where no other runtime
/// may block), so this runs on a thread of its own with a runtime of its
/// own, and waits for it.
pub fn drop_database(admin: &str, name: &str) -> Result<(), String> {
    let (admin, name) = (admin.to_owned(), name.to_owned());
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        rt.block_on(async {
            let dropped = async {
                let mut c = PgConnection::connect(&admin).await?;
                c.execute(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)").as_str())
                    .await?;
                c.close().await
            };
            match tokio::time::timeout(DROP_WITHIN, dropped).await {
                Ok(r) => r.map_err(|e| e.to_string()),
                Err(_) => Err(format!("no answer within {DROP_WITHIN:?}")),
            }
        })
    })
    .join()
    .unwrap_or_else(|_| Err("the dropping thread panicked".into()))
}

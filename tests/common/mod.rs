//! The test kit, shared by every test crate: loopback ports, fresh
//! databases (SQLite or PostgreSQL) that are removed when the test is done,
//! and the built binary as a child process or as a CLI command.
//!
//! A crate directly under `tests/` includes it with `mod common;`, a crate
//! in a directory of its own (`tests/api`, ...) with
//! `#[path = "../common/mod.rs"] mod common;`, at its root: code shared
//! between crates (`tests/api/helpers.rs`) reaches it as `crate::common`.
//!
//! - [`net`]: [`net::free_port`], a blocking [`net::http_get`] and the
//!   `/readyz` probes.
//! - [`pg`]: the test server ([`pg::admin_url`], with its skip-or-fail rule)
//!   and [`pg::PgDb`], a fresh database dropped (`WITH (FORCE)`) on `Drop`.
//! - [`db`]: [`db::Backend`] and [`db::TestDb`], a fresh database on either
//!   backend (a SQLite file in a temp dir, or a [`pg::PgDb`]).
//! - [`process`]: [`process::Cmd`] (the built binary, or another program,
//!   with a scrubbed environment, dying with the test) and
//!   [`process::Proc`] (killed on `Drop`, waits for `/readyz`), and
//!   [`process::run`], a CLI command's status, stdout and stderr.

// Each crate uses a part of the kit.
#![allow(dead_code)]

/// The one rule for a test whose dependency (PostgreSQL, Chromium,
/// libfaketime, a mountable tmpfs, ...) is missing: `true` means go on;
/// otherwise the test skips locally, saying `why` and how to get it, and
/// FAILS under `CI=true`, so CI never passes without running it.
pub fn have(present: bool, why_not: impl FnOnce() -> String) -> bool {
    if present {
        return true;
    }
    let why = why_not();
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "CI=true but this test cannot run: {why}"
    );
    eprintln!("skipping: {why}");
    false
}

pub mod db;
pub mod net;
pub mod pg;
pub mod process;

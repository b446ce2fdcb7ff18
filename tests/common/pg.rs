//! The PostgreSQL server of the tests, shared by every test crate that
//! needs one (included with `#[path]`).

/// The admin URL in `FULFILLMENT_TEST_PG_URL` (which `scripts/with-postgres`
/// sets), or `None`: the test skips. Under `CI=true` a missing URL fails
/// the test instead, so CI never passes without running `what` on
/// PostgreSQL.
pub fn admin_url(what: &str) -> Option<String> {
    match std::env::var("FULFILLMENT_TEST_PG_URL") {
        Ok(u) if !u.is_empty() => Some(u),
        _ => {
            assert!(
                std::env::var("CI").as_deref() != Ok("true"),
                "CI=true but FULFILLMENT_TEST_PG_URL is not set: {what} must run in CI (use scripts/test or scripts/with-postgres)"
            );
            eprintln!(
                "skipping {what}: FULFILLMENT_TEST_PG_URL is not set (scripts/with-postgres sets it)"
            );
            None
        }
    }
}

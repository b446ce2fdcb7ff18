//! Idempotency keys of `POST /api/v1/orders`: the first response of each key
//! is kept (24 h) and answered again to a retry with the same body. Keys
//! belong to their caller: the same key from two callers is two keys.

use sqlx::AnyConnection;

use super::Result;

/// How long a key is remembered.
pub const RETENTION_MICROS: i64 = 24 * 3600 * 1_000_000;

#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Stored {
    pub request_hash: String,
    pub response: String,
}

/// The stored answer for `caller`'s `key`, if it was used within the
/// retention window. (Keys stored before keys had callers have an empty
/// one and answer any caller until they expire.)
pub async fn find(
    c: &mut AnyConnection,
    caller: &str,
    key: &str,
    now: i64,
) -> Result<Option<Stored>> {
    Ok(sqlx::query_as::<_, Stored>(
        "SELECT request_hash, response FROM idempotency_keys \
         WHERE caller IN ($1, '') AND key = $2 AND created_at > $3 ORDER BY caller DESC LIMIT 1",
    )
    .bind(caller)
    .bind(key)
    .bind(now - RETENTION_MICROS)
    .fetch_optional(&mut *c)
    .await?)
}

/// Remembers the answer for `caller`'s `key`. A key still within its
/// window makes the insert fail with a unique violation: the caller lost a
/// race for the key (two of its requests at once).
pub async fn save(
    c: &mut AnyConnection,
    caller: &str,
    key: &str,
    request_hash: &str,
    response: &str,
    now: i64,
) -> Result<()> {
    sqlx::query("DELETE FROM idempotency_keys WHERE caller = $1 AND key = $2 AND created_at <= $3")
        .bind(caller)
        .bind(key)
        .bind(now - RETENTION_MICROS)
        .execute(&mut *c)
        .await?;
    sqlx::query("INSERT INTO idempotency_keys (caller, key, request_hash, response, created_at) VALUES ($1, $2, $3, $4, $5)")
        .bind(caller)
        .bind(key)
        .bind(request_hash)
        .bind(response)
        .bind(now)
        .execute(&mut *c)
        .await?;
    Ok(())
}

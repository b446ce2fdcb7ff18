//! The ids (`webhook-id`) of signed requests from the peer, kept for the
//! timestamp tolerance window (then pruned), so that a captured request
//! cannot be sent again while its signature is still accepted.

use sqlx::AnyConnection;

use super::Result;

/// Remembers `id`; false when it was seen before (a replay).
pub async fn remember(c: &mut AnyConnection, id: &str, now: i64) -> Result<bool> {
    let fresh = sqlx::query(
        "INSERT INTO seen_webhooks (id, seen_at) VALUES ($1, $2) ON CONFLICT (id) DO NOTHING",
    )
    .bind(id)
    .bind(now)
    .execute(&mut *c)
    .await?
    .rows_affected();
    Ok(fresh == 1)
}

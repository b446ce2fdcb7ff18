//! Admin users (argon2id password hashes) and API tokens (SHA-256 hashes).
//! Neither a password nor a token is ever stored in clear.

use sqlx::AnyConnection;
use uuid::Uuid;

use super::{Result, StorageError};

/// Creates a user; `Ok(false)` when the name is taken.
pub async fn create_user(
    c: &mut AnyConnection,
    username: &str,
    password_hash: &str,
    now: i64,
) -> Result<bool> {
    let r = sqlx::query(
        "INSERT INTO users (id, username, password_hash, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT (username) DO NOTHING",
    )
    .bind(Uuid::now_v7().to_string())
    .bind(username)
    .bind(password_hash)
    .bind(now)
    .execute(&mut *c)
    .await
    .map_err(StorageError::from)?;
    Ok(r.rows_affected() == 1)
}

/// The stored password hash of a user.
pub async fn password_hash(c: &mut AnyConnection, username: &str) -> Result<Option<String>> {
    Ok(
        sqlx::query_scalar::<_, String>("SELECT password_hash FROM users WHERE username = $1")
            .bind(username)
            .fetch_optional(&mut *c)
            .await?,
    )
}

pub async fn create_token(
    c: &mut AnyConnection,
    name: &str,
    token_hash: &str,
    now: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO api_tokens (id, name, token_hash, created_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(Uuid::now_v7().to_string())
    .bind(name)
    .bind(token_hash)
    .bind(now)
    .execute(&mut *c)
    .await?;
    Ok(())
}

/// The name of the live token with this hash.
pub async fn token_name(c: &mut AnyConnection, token_hash: &str) -> Result<Option<String>> {
    Ok(sqlx::query_scalar::<_, String>(
        "SELECT name FROM api_tokens WHERE token_hash = $1 AND revoked_at IS NULL",
    )
    .bind(token_hash)
    .fetch_optional(&mut *c)
    .await?)
}

//! Admin users (argon2id password hashes), API tokens (SHA-256 hashes), and
//! the admin UI's sessions (SHA-256 of the session id) and failed sign-ins.
//! Neither a password, a token nor a session id is ever stored in clear.

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

/// A live API token, as requests are authenticated by it.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct LiveToken {
    pub id: String,
    pub name: String,
}

/// The live token with this hash.
pub async fn live_token(c: &mut AnyConnection, token_hash: &str) -> Result<Option<LiveToken>> {
    Ok(sqlx::query_as::<_, LiveToken>(
        "SELECT id, name FROM api_tokens WHERE token_hash = $1 AND revoked_at IS NULL",
    )
    .bind(token_hash)
    .fetch_optional(&mut *c)
    .await?)
}

/// An API token as listed to admins (never the token itself).
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TokenInfo {
    pub id: String,
    pub name: String,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
}

/// Every API token, newest first.
pub async fn list_tokens(c: &mut AnyConnection) -> Result<Vec<TokenInfo>> {
    Ok(sqlx::query_as::<_, TokenInfo>(
        "SELECT id, name, created_at, revoked_at FROM api_tokens ORDER BY created_at DESC, id DESC",
    )
    .fetch_all(&mut *c)
    .await?)
}

/// Revokes a token; `Ok(false)` when there is no live token with that id.
pub async fn revoke_token(c: &mut AnyConnection, id: &str, now: i64) -> Result<bool> {
    let r =
        sqlx::query("UPDATE api_tokens SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL")
            .bind(id)
            .bind(now)
            .execute(&mut *c)
            .await?;
    Ok(r.rows_affected() == 1)
}

/// Admin users by name, with when they were created.
pub async fn list_users(c: &mut AnyConnection) -> Result<Vec<(String, i64)>> {
    Ok(sqlx::query_as::<_, (String, i64)>(
        "SELECT username, created_at FROM users ORDER BY username",
    )
    .fetch_all(&mut *c)
    .await?)
}

// -- admin sessions ------------------------------------------------------------

/// A live admin session.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct Session {
    pub username: String,
    pub csrf_token: String,
    pub expires_at: i64,
    /// A failed form kept for one read (JSON; see `http::admin::flash`).
    pub flash: Option<String>,
}

pub async fn create_session(
    c: &mut AnyConnection,
    id_hash: &str,
    username: &str,
    csrf_token: &str,
    now: i64,
    expires_at: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO admin_sessions (id_hash, username, csrf_token, created_at, expires_at) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(id_hash)
    .bind(username)
    .bind(csrf_token)
    .bind(now)
    .bind(expires_at)
    .execute(&mut *c)
    .await?;
    Ok(())
}

/// The unexpired session with this id hash.
pub async fn find_session(
    c: &mut AnyConnection,
    id_hash: &str,
    now: i64,
) -> Result<Option<Session>> {
    Ok(sqlx::query_as::<_, Session>(
        "SELECT username, csrf_token, expires_at, flash FROM admin_sessions WHERE id_hash = $1 AND expires_at > $2",
    )
    .bind(id_hash)
    .bind(now)
    .fetch_optional(&mut *c)
    .await?)
}

/// Keeps `flash` on the session (replacing any), or clears it (`None`).
pub async fn set_flash(c: &mut AnyConnection, id_hash: &str, flash: Option<&str>) -> Result<()> {
    sqlx::query("UPDATE admin_sessions SET flash = $2 WHERE id_hash = $1")
        .bind(id_hash)
        .bind(flash)
        .execute(&mut *c)
        .await?;
    Ok(())
}

/// Clears the session's flash if it still is `seen` (a newer one, kept
/// meanwhile by another tab, stays); `true` when it was cleared here.
pub async fn take_flash(c: &mut AnyConnection, id_hash: &str, seen: &str) -> Result<bool> {
    let r = sqlx::query("UPDATE admin_sessions SET flash = NULL WHERE id_hash = $1 AND flash = $2")
        .bind(id_hash)
        .bind(seen)
        .execute(&mut *c)
        .await?;
    Ok(r.rows_affected() == 1)
}

pub async fn delete_session(c: &mut AnyConnection, id_hash: &str) -> Result<()> {
    sqlx::query("DELETE FROM admin_sessions WHERE id_hash = $1")
        .bind(id_hash)
        .execute(&mut *c)
        .await?;
    Ok(())
}

/// Deletes expired sessions, and failure counts whose window began at or
/// before `window_cutoff`.
pub async fn prune_logins(c: &mut AnyConnection, now: i64, window_cutoff: i64) -> Result<()> {
    sqlx::query("DELETE FROM admin_sessions WHERE expires_at <= $1")
        .bind(now)
        .execute(&mut *c)
        .await?;
    sqlx::query("DELETE FROM admin_login_throttle WHERE window_start <= $1")
        .bind(window_cutoff)
        .execute(&mut *c)
        .await?;
    Ok(())
}

/// Failed sign-ins of one username from one client address, in the window
/// that began at `window_start`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, sqlx::FromRow)]
pub struct LoginFailures {
    pub failures: i64,
    pub window_start: i64,
}

/// Counts a sign-in attempt as failed before its password is checked, in
/// one statement, so parallel attempts cannot slip past the limit: each
/// gets its own count. A window that began at or before `window_cutoff`
/// starts again at `now`. The count stops growing past `cap`. Clear it
/// with [`clear_login_failures`] when the password was right.
pub async fn count_login_attempt(
    c: &mut AnyConnection,
    username: &str,
    client: &str,
    now: i64,
    window_cutoff: i64,
    cap: i64,
) -> Result<LoginFailures> {
    Ok(sqlx::query_as::<_, LoginFailures>(
        "INSERT INTO admin_login_throttle (username, client, window_start, failures) \
         VALUES ($1, $2, $3, 1) \
         ON CONFLICT (username, client) DO UPDATE SET \
           failures = CASE WHEN admin_login_throttle.window_start <= $4 THEN 1 \
                           WHEN admin_login_throttle.failures >= $5 THEN $5 \
                           ELSE admin_login_throttle.failures + 1 END, \
           window_start = CASE WHEN admin_login_throttle.window_start <= $4 THEN $3 \
                               ELSE admin_login_throttle.window_start END \
         RETURNING failures, window_start",
    )
    .bind(username)
    .bind(client)
    .bind(now)
    .bind(window_cutoff)
    .bind(cap)
    .fetch_one(&mut *c)
    .await?)
}

pub async fn clear_login_failures(
    c: &mut AnyConnection,
    username: &str,
    client: &str,
) -> Result<()> {
    sqlx::query("DELETE FROM admin_login_throttle WHERE username = $1 AND client = $2")
        .bind(username)
        .bind(client)
        .execute(&mut *c)
        .await?;
    Ok(())
}

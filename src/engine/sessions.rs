//! The admin UI's sign-in and sessions. Sessions live in the database
//! (replicas share them); only a SHA-256 of each session id is stored. Failed
//! sign-ins are counted per username and client address before the password
//! is checked, in one atomic step.

use std::sync::OnceLock;
use std::time::Duration;

use super::credentials::{hash_password, random_token, token_hash, verify_password};
use super::{Engine, EngineError, Result};
use crate::storage::{auth, now_micros};

/// How long a session lasts after sign-in.
pub const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);

fn micros(d: Duration) -> i64 {
    d.as_micros() as i64
}

/// A live admin session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminSession {
    pub username: String,
    /// The session's CSRF token, carried by every form.
    pub csrf_token: String,
    /// A failed form kept for one read (see `http::admin::flash`).
    pub flash: Option<String>,
}

/// An argon2id hash of a random password, verified against when the
/// username is unknown so that the answer takes as long as for a real user.
fn dummy_hash() -> &'static str {
    static HASH: OnceLock<String> = OnceLock::new();
    HASH.get_or_init(|| hash_password(&random_token()).unwrap_or_default())
}

/// Failed sign-ins of one username from one client address, within
/// [`SIGN_IN_WINDOW`], that lock that username for that address.
pub const MAX_SIGN_IN_FAILURES: i64 = 5;
/// The window in which failed sign-ins count, and so how long a lock lasts.
pub const SIGN_IN_WINDOW: Duration = Duration::from_secs(15 * 60);

/// A sign-in attempt, counted as failed until its password proves right.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignInAttempt {
    /// Failures of this username from this address in the window, this
    /// attempt included.
    pub failures: i64,
    /// When the window (and so a lock) ends, in microseconds.
    pub window_ends: i64,
}

impl SignInAttempt {
    /// Too many failures already: refuse without checking the password.
    pub fn locked(&self) -> bool {
        self.failures > MAX_SIGN_IN_FAILURES
    }

    /// This failure was the last one allowed: the next attempts are locked.
    pub fn locks_now(&self) -> bool {
        self.failures == MAX_SIGN_IN_FAILURES
    }
}

impl Engine {
    /// The live session with this id (from the session cookie).
    pub async fn admin_session(&self, session_id: &str) -> Result<Option<AdminSession>> {
        let mut c = self.read().await?;
        Ok(
            auth::find_session(&mut c, &token_hash(session_id), now_micros())
                .await?
                .map(|s| AdminSession {
                    username: s.username,
                    csrf_token: s.csrf_token,
                    flash: s.flash,
                }),
        )
    }

    /// Whether `password` is `username`'s. Argon2 is deliberately slow, so
    /// it runs off the async workers; an unknown username takes as long.
    pub async fn admin_password_ok(&self, username: &str, password: &str) -> Result<bool> {
        let mut c = self.read().await?;
        let stored = auth::password_hash(&mut c, username).await?;
        drop(c);
        let known = stored.is_some();
        let hash = stored.unwrap_or_else(|| dummy_hash().to_owned());
        let password = password.to_owned();
        let ok = tokio::task::spawn_blocking(move || verify_password(&password, &hash))
            .await
            .unwrap_or(false);
        Ok(ok && known)
    }

    /// Starts a session for `username`, who signed in from `client` with the
    /// right password: ends the session the browser already had (perhaps
    /// planted), clears this address's failure count and tidies expired
    /// sessions and counts, in one write. Returns the new session's id.
    pub async fn start_admin_session(
        &self,
        username: &str,
        client: &str,
        replacing: Option<&str>,
    ) -> Result<String> {
        let id = random_token();
        let (id_hash, old) = (token_hash(&id), replacing.map(token_hash));
        let (username, client) = (username.to_owned(), client.to_owned());
        self.db
            .write(move |c| {
                Box::pin(async move {
                    let now = now_micros();
                    if let Some(old) = old {
                        auth::delete_session(c, &old).await?;
                    }
                    auth::clear_login_failures(c, &username, &client).await?;
                    auth::prune_logins(c, now, now - micros(SIGN_IN_WINDOW)).await?;
                    auth::create_session(
                        c,
                        &id_hash,
                        &username,
                        &random_token(),
                        now,
                        now + micros(SESSION_TTL),
                    )
                    .await?;
                    Ok::<_, EngineError>(())
                })
            })
            .await?;
        Ok(id)
    }

    /// Keeps a failed form on the session `session_id` for one read.
    pub async fn keep_admin_flash(&self, session_id: &str, flash: String) -> Result<()> {
        let id_hash = token_hash(session_id);
        self.db
            .write(move |c| {
                Box::pin(async move {
                    Ok::<_, EngineError>(auth::set_flash(c, &id_hash, Some(&flash)).await?)
                })
            })
            .await
    }

    /// Takes the failed form `seen` off the session: `true` when it was
    /// still there (so this read is the one that shows it).
    pub async fn take_admin_flash(&self, session_id: &str, seen: String) -> Result<bool> {
        let id_hash = token_hash(session_id);
        self.db
            .write(move |c| {
                Box::pin(async move {
                    Ok::<_, EngineError>(auth::take_flash(c, &id_hash, &seen).await?)
                })
            })
            .await
    }

    /// Ends a session (sign-out).
    pub async fn end_admin_session(&self, session_id: &str) -> Result<()> {
        let id_hash = token_hash(session_id);
        self.db
            .write(move |c| {
                Box::pin(
                    async move { Ok::<_, EngineError>(auth::delete_session(c, &id_hash).await?) },
                )
            })
            .await
    }

    /// Counts a sign-in attempt of `username` from `client` (an address)
    /// before its password is checked: the check and the count are one
    /// atomic step, so parallel attempts cannot get past the limit. Per
    /// username *and* address, so nobody can lock an admin out from
    /// elsewhere. [`Engine::sign_in_succeeded`] clears it.
    pub async fn count_sign_in_attempt(
        &self,
        username: &str,
        client: &str,
    ) -> Result<SignInAttempt> {
        let (username, client) = (username.to_owned(), client.to_owned());
        let window = SIGN_IN_WINDOW.as_micros() as i64;
        let counted = self
            .db()
            .write(move |c| {
                Box::pin(async move {
                    let now = now_micros();
                    Ok::<_, EngineError>(
                        auth::count_login_attempt(
                            c,
                            &username,
                            &client,
                            now,
                            now - window,
                            MAX_SIGN_IN_FAILURES + 1,
                        )
                        .await?,
                    )
                })
            })
            .await?;
        Ok(SignInAttempt {
            failures: counted.failures,
            window_ends: counted.window_start + window,
        })
    }
}

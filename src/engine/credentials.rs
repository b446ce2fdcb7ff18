//! Admin users and API tokens: creation and checking. Passwords are hashed
//! with argon2id; tokens are 256 random bits, stored as SHA-256.

use argon2::password_hash::{PasswordHasher, SaltString, rand_core::OsRng};
use argon2::{Argon2, PasswordHash, PasswordVerifier};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::{Engine, EngineError, Result};
use crate::domain::Role;
use crate::domain::values::{FieldError, required_text};
pub use crate::storage::auth::LiveToken;
use crate::storage::{Db, StorageError, auth, now_micros};

/// Shortest admin password accepted.
pub const MIN_PASSWORD: usize = 8;

/// A fresh API token, prefixed with the role it belongs to so a person can
/// tell them apart (`fst_…` store, `fwt_…` warehouse).
pub fn new_token(role: Role) -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    let prefix = match role {
        Role::Store => "fst",
        Role::Warehouse => "fwt",
    };
    format!("{prefix}_{}", URL_SAFE_NO_PAD.encode(bytes))
}

/// A random password for generated admin accounts.
pub fn new_password() -> String {
    let mut bytes = [0u8; 15];
    rand::thread_rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// SHA-256 (hex) of an API token: what the database stores.
pub fn token_hash(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

pub fn hash_password(password: &str) -> Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| {
            EngineError::Storage(StorageError::Corrupt(format!("cannot hash password: {e}")))
        })
}

pub fn verify_password(password: &str, stored: &str) -> bool {
    PasswordHash::new(stored).is_ok_and(|h| {
        Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}

/// Creates an admin user. Refuses a short password or a taken name.
pub async fn create_user(db: &Db, username: &str, password: &str) -> Result<()> {
    let username =
        required_text("username", username, 100).map_err(|e| EngineError::Invalid(vec![e]))?;
    if password.chars().count() < MIN_PASSWORD {
        return Err(EngineError::Invalid(vec![FieldError::new(
            "password",
            format!("must be at least {MIN_PASSWORD} characters"),
        )]));
    }
    let hash = hash_password(password)?;
    let mut c = db.begin().await?;
    if !auth::create_user(&mut c, &username, &hash, now_micros()).await? {
        return Err(EngineError::Conflict(format!(
            "a user named {username:?} already exists"
        )));
    }
    c.commit().await?;
    Ok(())
}

/// Creates an API token named `name` and returns it (the only time it is seen).
pub async fn create_token(db: &Db, role: Role, name: &str) -> Result<String> {
    let name = required_text("name", name, 100).map_err(|e| EngineError::Invalid(vec![e]))?;
    let token = new_token(role);
    let mut c = db.begin().await?;
    auth::create_token(&mut c, &name, &token_hash(&token), now_micros()).await?;
    c.commit().await?;
    Ok(token)
}

/// How long an API token found valid is trusted without reading the
/// database again. A token revoked in the admin UI stops working at once
/// (the cache is cleared); one revoked through another replica, within this
/// time.
pub const TOKEN_CACHE_TTL: Duration = Duration::from_secs(2);

/// Most tokens remembered; more are rare (a token per client), and the
/// cache is simply emptied when it fills.
const TOKEN_CACHE_MAX: usize = 4096;

/// Recently checked API tokens (by hash), so that authenticating a request
/// costs no database read. Unknown tokens are never remembered.
#[derive(Default)]
pub struct TokenCache {
    seen: Mutex<HashMap<String, (LiveToken, Instant)>>,
}

impl TokenCache {
    fn get(&self, hash: &str) -> Option<LiveToken> {
        let seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        seen.get(hash)
            .filter(|(_, at)| at.elapsed() < TOKEN_CACHE_TTL)
            .map(|(token, _)| token.clone())
    }

    fn put(&self, hash: String, token: LiveToken) {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if seen.len() >= TOKEN_CACHE_MAX {
            seen.clear();
        }
        seen.insert(hash, (token, Instant::now()));
    }

    fn clear(&self) {
        self.seen.lock().unwrap_or_else(|e| e.into_inner()).clear();
    }
}

impl Engine {
    /// The valid (not revoked) API token this is, if it is one.
    pub async fn api_token(&self, token: &str) -> Result<Option<LiveToken>> {
        let hash = token_hash(token);
        if let Some(found) = self.tokens.get(&hash) {
            return Ok(Some(found));
        }
        let mut c = self
            .db()
            .reader()
            .acquire()
            .await
            .map_err(StorageError::from)?;
        let found = auth::live_token(&mut c, &hash).await?;
        if let Some(token) = &found {
            self.tokens.put(hash, token.clone());
        }
        Ok(found)
    }

    /// Forgets every checked token (after a revocation in this process).
    pub fn forget_tokens(&self) {
        self.tokens.clear();
    }
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

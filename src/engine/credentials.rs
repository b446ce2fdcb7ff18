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
/// The longest username (sign-in looks up no longer one).
pub const MAX_USERNAME: usize = 100;

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
    let username = required_text("username", username, MAX_USERNAME)
        .map_err(|e| EngineError::Invalid(vec![e]))?;
    if password.chars().count() < MIN_PASSWORD {
        return Err(EngineError::Invalid(vec![FieldError::new(
            "password",
            format!("must be at least {MIN_PASSWORD} characters"),
        )]));
    }
    let hash = hash_password(password)?;
    db.write(move |c| {
        Box::pin(async move {
            if auth::create_user(c, &username, &hash, now_micros()).await? {
                Ok(())
            } else {
                Err(EngineError::Conflict(format!(
                    "a user named {username:?} already exists"
                )))
            }
        })
    })
    .await
}

/// Creates an API token named `name` and returns it (the only time it is seen).
pub async fn create_token(db: &Db, role: Role, name: &str) -> Result<String> {
    let name = required_text("name", name, 100).map_err(|e| EngineError::Invalid(vec![e]))?;
    let token = new_token(role);
    let hash = token_hash(&token);
    db.write(move |c| {
        Box::pin(async move {
            auth::create_token(c, &name, &hash, now_micros()).await?;
            Ok::<_, EngineError>(())
        })
    })
    .await?;
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
        let mut c = self.read().await?;
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

/// 256 random bits, URL-safe: session ids and CSRF tokens.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

impl Engine {
    /// Creates an API token for this side named `name` and returns it (the
    /// only time it is seen).
    pub async fn create_token(&self, name: &str) -> Result<String> {
        create_token(&self.db, self.role, name).await
    }

    /// Every API token (never the token itself) and every admin user.
    pub async fn tokens_and_users(&self) -> Result<(Vec<auth::TokenInfo>, Vec<(String, i64)>)> {
        let mut c = self.read().await?;
        let tokens = auth::list_tokens(&mut c).await?;
        let users = auth::list_users(&mut c).await?;
        Ok((tokens, users))
    }

    /// Revokes a token; false when there is no live token with that id. It
    /// stops working here at once (the cache is cleared).
    pub async fn revoke_token(&self, id: &str) -> Result<bool> {
        let id = id.to_owned();
        let done = self
            .db
            .write(move |c| {
                Box::pin(async move {
                    Ok::<_, EngineError>(auth::revoke_token(c, &id, now_micros()).await?)
                })
            })
            .await?;
        self.forget_tokens();
        Ok(done)
    }
}

//! Admin users and API tokens: creation and checking. Passwords are hashed
//! with argon2id; tokens are 256 random bits, stored as SHA-256.

use argon2::password_hash::{PasswordHasher, SaltString, rand_core::OsRng};
use argon2::{Argon2, PasswordHash, PasswordVerifier};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};

use super::{EngineError, Result};
use crate::domain::Role;
use crate::domain::values::{FieldError, required_text};
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
